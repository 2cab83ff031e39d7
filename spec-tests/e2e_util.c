/* SPDX-License-Identifier: BSD-3-Clause */
#include "e2e_util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vtsm_abi.h"
#include "vtsm_proc.h"

static pid_t spawn(struct e2e *e, const char *prog, const char *const *args, int out_fd, int err_fd)
{
    pid_t pid = vtsm_proc_start(VTSM_BIN_DIR, prog, args, out_fd, err_fd);
    if (pid > 0 && e->npids < E2E_MAX_PROCS)
        e->pids[e->npids++] = pid;
    return pid;
}

int e2e_setup(struct e2e *e, const char *const *tsmd_args)
{
    memset(e, 0, sizeof(*e));
    snprintf(e->dir, sizeof(e->dir), "/tmp/vtsm-e2e-XXXXXX");
    if (!mkdtemp(e->dir))
        return -1;
    snprintf(e->sock, sizeof(e->sock), "%s/tsmd.sock", e->dir);
    const char *args[32];
    int n = 0;
    args[n++] = "--socket";
    args[n++] = e->sock;
    args[n++] = "--quiet";
    for (int i = 0; tsmd_args && tsmd_args[i] && n < 31; i++)
        args[n++] = tsmd_args[i];
    args[n] = NULL;
    char logp[400];
    snprintf(logp, sizeof(logp), "%s/tsmd.log", e->dir);
    int logfd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    pid_t pid = spawn(e, "tsmd", args, -1, logfd);
    if (logfd >= 0)
        close(logfd);
    if (pid < 0)
        return -1;
    return vtsm_proc_wait_socket(e->sock, 10000);
}

void e2e_kill(struct e2e *e, pid_t pid)
{
    for (int i = 0; i < e->npids; i++)
        if (e->pids[i] == pid) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            e->pids[i] = e->pids[--e->npids];
            return;
        }
}

int e2e_teardown(struct e2e *e)
{
    /* Ask politely first (tsmd removes its socket), then make sure; always reap. Every
     * daemon must exit 0 on SIGTERM: a crash, a sanitizer report or a leak fails the
     * test that ran it. */
    int bad = 0;
    for (int i = 0; i < e->npids; i++) {
        int st = vtsm_proc_stop(e->pids[i], 5000);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "e2e: process %d ended with status 0x%x\n", (int)e->pids[i], st);
            bad = 1;
        }
    }
    e->npids = 0;
    if (bad) {
        char cmd[200];
        snprintf(cmd, sizeof(cmd), "cat '%s/tsmd.log' >&2", e->dir);
        if (system(cmd) != 0) {
            /* no log */
        }
    }
    if (e->dir[0]) {
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
        if (system(cmd) != 0) {
            /* best effort */
        }
    }
    return bad ? -1 : 0;
}

int e2e_devemu(struct e2e *e, const char *const *args)
{
    int counter = ++e->ndevemu;
    char pf[400];
    snprintf(pf, sizeof(pf), "%s/dev%d.port", e->dir, counter);
    const char *a[32];
    int n = 0;
    a[n++] = "--port";
    a[n++] = "0";
    a[n++] = "--port-file";
    a[n++] = pf;
    for (int i = 0; args && args[i] && n < 31; i++)
        a[n++] = args[i];
    a[n] = NULL;
    /* its log goes to dir/devN.log (e2e_devemu_log) */
    char logp[400];
    snprintf(logp, sizeof(logp), "%s/dev%d.log", e->dir, counter);
    int logfd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    pid_t pid = spawn(e, "tsm-devemu", a, -1, logfd);
    if (logfd >= 0)
        close(logfd);
    if (pid < 0)
        return 0;
    return vtsm_proc_wait_port(pf, 10000);
}

int e2e_devemu_log(const struct e2e *e, int n, char *buf, size_t cap)
{
    char p[400];
    snprintf(p, sizeof(p), "%s/dev%d.log", e->dir, n);
    FILE *f = fopen(p, "r");
    if (!f || cap == 0)
        return f ? (fclose(f), -1) : -1;
    size_t k = fread(buf, 1, cap - 1, f);
    buf[k] = '\0';
    fclose(f);
    return 0;
}

const char *e2e_doe(char *buf, size_t cap, int port)
{
    snprintf(buf, cap, "tcp:127.0.0.1:%d", port);
    return buf;
}

static void drain(int fd, char *buf, size_t cap, size_t *len)
{
    ssize_t k;
    while (*len + 1 < cap && (k = read(fd, buf + *len, cap - 1 - *len)) > 0)
        *len += (size_t)k;
    buf[*len] = '\0';
}

int e2e_host(struct e2e *e, struct e2e_run *r, const char *const *argv)
{
    int po[2], pe[2];
    if (pipe2(po, O_CLOEXEC) || pipe2(pe, O_CLOEXEC))
        return -1;
    const char *a[64];
    int n = 0;
    a[n++] = "--socket";
    a[n++] = e->sock;
    for (int i = 0; argv[i] && n < 63; i++)
        a[n++] = argv[i];
    a[n] = NULL;
    pid_t pid = spawn(e, "tsm-host", a, po[1], pe[1]);
    close(po[1]);
    close(pe[1]);
    size_t lo = 0, le = 0;
    struct pollfd pf[2] = {{.fd = po[0], .events = POLLIN}, {.fd = pe[0], .events = POLLIN}};
    int open_fds = 2;
    long end = vtsm_now_ms() + 45000;
    while (open_fds && vtsm_now_ms() < end) {
        if (poll(pf, 2, 1000) <= 0)
            continue;
        for (int i = 0; i < 2; i++) {
            if (pf[i].fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP)))
                continue;
            char *buf = i ? r->err : r->out;
            size_t cap = i ? sizeof(r->err) : sizeof(r->out);
            size_t *len = i ? &le : &lo;
            ssize_t k = read(pf[i].fd, buf + *len, cap - 1 - *len);
            if (k > 0) {
                *len += (size_t)k;
            } else {
                close(pf[i].fd);
                pf[i].fd = -1;
                open_fds--;
            }
            buf[*len] = '\0';
        }
    }
    for (int i = 0; i < 2; i++)
        if (pf[i].fd >= 0) {
            drain(pf[i].fd, i ? r->err : r->out, i ? sizeof(r->err) : sizeof(r->out),
                  i ? &le : &lo);
            close(pf[i].fd);
        }
    int st = 0;
    if (waitpid(pid, &st, 0) < 0)
        return -1;
    for (int i = 0; i < e->npids; i++)
        if (e->pids[i] == pid)
            e->pids[i] = e->pids[--e->npids];
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return r->status;
}

int e2e_abi_connect(struct e2e *e, bool hello)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(e->sock) >= sizeof(sa.sun_path))
        return -1;
    memcpy(sa.sun_path, e->sock, strlen(e->sock) + 1);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        if (s >= 0)
            close(s);
        return -1;
    }
    if (hello) {
        if (e2e_abi_send(s, vtsm_abi_hello_msg(1, VTSM_ABI_ROLE_HOST, "e2e")) != 0) {
            close(s);
            return -1;
        }
        cbor_item_t *r = e2e_abi_recv(s);
        bool ok = r && e2e_op(r) == VTSM_ABI_OP_RESULT;
        if (r)
            cbor_decref(&r);
        if (!ok) {
            close(s);
            return -1;
        }
    }
    return s;
}

int e2e_abi_send(int fd, cbor_item_t *msg)
{
    if (!msg)
        return -1;
    vtsm_status st = vtsm_abi_send(fd, msg);
    cbor_decref(&msg);
    return st == VTSM_OK ? 0 : -1;
}

cbor_item_t *e2e_abi_recv(int fd)
{
    cbor_item_t *m = NULL;
    if (vtsm_abi_recv(fd, &m, 20000) != VTSM_OK)
        return NULL;
    return m;
}

unsigned e2e_op(const cbor_item_t *m)
{
    uint64_t op = 0;
    if (vtsm_abi_get_op(m, &op) != VTSM_OK)
        return 0;
    return (unsigned)op;
}

const char *e2e_err_name(const cbor_item_t *m, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (e2e_op(m) == VTSM_ABI_OP_ERROR)
        vtsm_abi_get_tstr(m, VTSM_ABI_K_NAME, buf, cap);
    return buf;
}

const char *const *e2e_tsmd_args;

int e2e_fixture_setup(void **state)
{
    static struct e2e e;
    if (e2e_setup(&e, e2e_tsmd_args) != 0)
        return -1;
    *state = &e;
    return 0;
}

int e2e_fixture_teardown(void **state)
{
    return e2e_teardown(*state);
}
