/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The tsm-host CLI as a process: usage errors of every command (exit 2, nothing sent),
 * and the IDE / TVM / TDI / relay commands against a fake TSM on a Unix socket in a
 * private directory, with their DOE and link exchanges carried to a tiny
 * spdm-emu-protocol responder on 127.0.0.1 port 0. Failure paths first.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vtsm_abi.h"
#include "vtsm_proc.h"
#include "vtsm_sock.h"

#define WAIT_MS 20000

/* ------------------------------------------------------------------ running tsm-host */

struct run {
    int status; /* exit code, or 128 + signal */
    char out[16384];
    char err[8192];
};

/* Run tsm-host with argv (NULL-terminated) and collect its output; always reaps. */
static void run_cli(const char *const *argv, struct run *r)
{
    memset(r, 0, sizeof(*r));
    int po[2], pe[2];
    assert_int_equal(pipe2(po, O_CLOEXEC), 0);
    assert_int_equal(pipe2(pe, O_CLOEXEC), 0);
    pid_t pid = vtsm_proc_start(VTSM_BIN_DIR, "tsm-host", argv, po[1], pe[1]);
    close(po[1]);
    close(pe[1]);
    assert_true(pid > 0);
    struct pollfd pf[2] = {{.fd = po[0], .events = POLLIN}, {.fd = pe[0], .events = POLLIN}};
    size_t len[2] = {0, 0};
    long end = vtsm_now_ms() + WAIT_MS;
    while ((pf[0].fd >= 0 || pf[1].fd >= 0) && vtsm_now_ms() < end) {
        if (poll(pf, 2, 500) <= 0)
            continue;
        for (int i = 0; i < 2; i++) {
            if (pf[i].fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char *buf = i ? r->err : r->out;
            size_t cap = i ? sizeof(r->err) : sizeof(r->out);
            ssize_t k = read(pf[i].fd, buf + len[i], cap - 1 - len[i]);
            if (k > 0) {
                len[i] += (size_t)k;
                buf[len[i]] = '\0';
            } else {
                close(pf[i].fd);
                pf[i].fd = -1;
            }
        }
    }
    for (int i = 0; i < 2; i++)
        if (pf[i].fd >= 0)
            close(pf[i].fd);
    int st = 0;
    if (waitpid(pid, &st, WNOHANG) == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
    }
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

#define ASSERT_CONTAINS(hay, needle)                                                               \
    do {                                                                                           \
        if (!strstr((hay), (needle)))                                                              \
            fail_msg("'%s' not found in:\n%s", (needle), (hay));                                   \
    } while (0)

/* ------------------------------------------------------------------ DOE responder */

/* The responder's answer: the request with two bytes changed (both kinds of frame). */
static void transform(const uint8_t *req, size_t n, uint8_t *rsp)
{
    memcpy(rsp, req, n);
    if (n > 11) {
        rsp[9] ^= 0x80;
        rsp[11] = (uint8_t)(req[10] ^ 0xa5);
    }
}

struct echo {
    int lfd;
    uint16_t port;
    int requests;
    int link_requests;
    char err[256];
    pthread_t th;
};

static void *echo_main(void *arg)
{
    struct echo *e = arg;
    struct vtsm_buf buf = {0};
    for (;;) {
        int fd = accept4(e->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            break;
        for (;;) {
            uint32_t cmd, tr;
            if (vtsm_sock_recv(fd, &cmd, &tr, &buf, 1u << 20, WAIT_MS) != VTSM_OK)
                break;
            if (cmd == VTSM_SOCK_CMD_CONTINUE || cmd == VTSM_SOCK_CMD_SHUTDOWN) {
                /* tsm-host ends the DOE connection when it exits: answered in kind */
                (void)vtsm_sock_send(fd, cmd, tr, NULL, 0);
                break;
            }
            e->requests++;
            e->link_requests += cmd == VTSM_SOCK_CMD_VTSM_LINK;
            if ((cmd != VTSM_SOCK_CMD_NORMAL && cmd != VTSM_SOCK_CMD_VTSM_LINK) ||
                tr != VTSM_SOCK_TRANSPORT_PCI_DOE || buf.len > 64) {
                snprintf(e->err, sizeof(e->err), "request cmd %u transport %u", cmd, tr);
                break;
            }
            uint8_t rsp[64];
            transform(buf.data, buf.len, rsp);
            if (vtsm_sock_send(fd, cmd, tr, rsp, buf.len) != VTSM_OK)
                break;
        }
        close(fd);
    }
    vtsm_buf_free(&buf);
    return NULL;
}

static struct echo *echo_start(void)
{
    struct echo *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    assert_int_equal(vtsm_tcp_listen("127.0.0.1", 0, &e->lfd, &e->port), VTSM_OK);
    assert_int_equal(pthread_create(&e->th, NULL, echo_main, e), 0);
    return e;
}

static void echo_stop(struct echo *e)
{
    shutdown(e->lfd, SHUT_RDWR);
    pthread_join(e->th, NULL);
    close(e->lfd);
    if (e->err[0])
        fail_msg("responder: %s", e->err);
    free(e);
}

/* ------------------------------------------------------------------ fake TSM */

/* One request the fake expects: its DOE and link exchanges, then a RESULT whose fields
 * reply() adds. */
struct step {
    unsigned op;
    const char *dev; /* device of the exchanges */
    int doe;         /* DOE exchanges (mailbox) */
    int link;        /* link exchanges */
    void (*reply)(cbor_item_t *result);
    vtsm_status error; /* if set, answer ERROR with this status instead */
};

struct fake {
    char dir[64];
    char sock[128];
    int lfd;
    pthread_t th;
    const struct step *steps;
    size_t nsteps;
    cbor_item_t *reqs[8];
    size_t nreqs;
    char err[512];
};

#define FK_CHECK(f, cond)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            if (!(f)->err[0])                                                                      \
                snprintf((f)->err, sizeof((f)->err), "%s:%d: %s", __FILE__, __LINE__, #cond);      \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

static cbor_item_t *fk_recv(int fd, unsigned op)
{
    cbor_item_t *m = NULL;
    uint64_t got = 0;
    if (vtsm_abi_recv(fd, &m, WAIT_MS) != VTSM_OK || vtsm_abi_get_op(m, &got) != VTSM_OK ||
        got != op) {
        if (m)
            cbor_decref(&m);
        return NULL;
    }
    return m;
}

static bool fk_send(int fd, cbor_item_t *m)
{
    vtsm_status st = m ? vtsm_abi_send(fd, m) : VTSM_E_NOMEM;
    if (m)
        cbor_decref(&m);
    return st == VTSM_OK;
}

/* One exchange: the responder's answer must come back unchanged. */
static bool fk_exchange(int fd, uint64_t id, const char *dev, uint64_t seq, bool link)
{
    uint8_t obj[24] = {0x01, 0x00, 0x01, 0x00, 0x06, 0x00, 0x00, 0x00, 0x12, 0x84, 0x00, 0x00};
    uint8_t want[24];
    obj[10] = (uint8_t)seq;
    if (link)
        memcpy(obj, "VLNK", 4);
    transform(obj, sizeof(obj), want);
    cbor_item_t *m = vtsm_abi_doe_pending_msg(id, dev, seq, obj, sizeof(obj));
    if (m && link && vtsm_abi_put_tstr(m, VTSM_ABI_K_CHANNEL, VTSM_ABI_CHANNEL_LINK) != VTSM_OK)
        cbor_decref(&m);
    if (!fk_send(fd, m))
        return false;
    cbor_item_t *r = fk_recv(fd, VTSM_ABI_OP_DOE_RESPONSE);
    const uint8_t *p = NULL;
    size_t n = 0;
    bool ok = r && vtsm_abi_get_bytes(r, VTSM_ABI_K_OBJECT, &p, &n) == VTSM_OK &&
              n == sizeof(want) && memcmp(p, want, n) == 0;
    if (r)
        cbor_decref(&r);
    return ok;
}

/* Serve one step on fd: its request, exchanges and answer. */
static void fk_step(struct fake *f, int fd, const struct step *s, cbor_item_t *m)
{
    cbor_item_t *r = NULL;
    uint64_t id = 0;
    f->reqs[f->nreqs++] = m;
    vtsm_abi_get_id(m, &id);
    uint64_t seq = 1;
    for (int k = 0; k < s->doe; k++)
        FK_CHECK(f, fk_exchange(fd, id, s->dev, seq++, false));
    for (int k = 0; k < s->link; k++)
        FK_CHECK(f, fk_exchange(fd, id, s->dev, seq++, true));
    if (s->error) {
        /* as tsmd does: the refusal recorded under its rule, then the one builder */
        vtsm_refuse(s->error, VTSM_RULE_TVM_2, "TVM 3 has a bound TDI");
        r = vtsm_abi_error_msg(id, s->error, NULL);
    } else {
        r = vtsm_abi_result_msg(id);
        if (s->reply)
            s->reply(r);
    }
    FK_CHECK(f, fk_send(fd, r));
out:
    return;
}

/* Each tsm-host run is one connection: HELLO, then steps until it closes. */
static void *fake_main(void *arg)
{
    struct fake *f = arg;
    size_t next = 0;
    int fd = -1;
    cbor_item_t *m = NULL;
    do {
        struct pollfd p = {.fd = f->lfd, .events = POLLIN};
        FK_CHECK(f, poll(&p, 1, WAIT_MS) == 1);
        fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
        FK_CHECK(f, fd >= 0);
        m = fk_recv(fd, VTSM_ABI_OP_HELLO);
        FK_CHECK(f, m);
        uint64_t id = 0;
        vtsm_abi_get_id(m, &id);
        cbor_decref(&m);
        cbor_item_t *r = vtsm_abi_result_msg(id);
        vtsm_abi_put_uint(r, VTSM_ABI_K_VERSION, 1);
        vtsm_abi_put_tstr(r, VTSM_ABI_K_TSM, "fake-tsm");
        FK_CHECK(f, fk_send(fd, r));
        while (next < f->nsteps && !f->err[0]) {
            uint64_t op = 0;
            vtsm_status st = vtsm_abi_recv(fd, &m, WAIT_MS);
            if (st == VTSM_E_CLOSED)
                break; /* this run is over */
            FK_CHECK(f, st == VTSM_OK && vtsm_abi_get_op(m, &op) == VTSM_OK);
            FK_CHECK(f, op == f->steps[next].op);
            fk_step(f, fd, &f->steps[next++], m);
            m = NULL;
        }
        close(fd);
        fd = -1;
    } while (next < f->nsteps && !f->err[0]);
out:
    if (m)
        cbor_decref(&m);
    if (fd >= 0)
        close(fd);
    return NULL;
}

static struct fake *fake_start(const struct step *steps, size_t nsteps)
{
    struct fake *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/vtsm-cli-test-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->sock, sizeof(f->sock), "%s/tsmd.sock", f->dir);
    f->steps = steps;
    f->nsteps = nsteps;
    f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(f->lfd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, f->sock, strlen(f->sock) + 1);
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(f->lfd, 1), 0);
    assert_int_equal(pthread_create(&f->th, NULL, fake_main, f), 0);
    return f;
}

/* Join the fake and check every step was served. */
static void fake_check(struct fake *f)
{
    pthread_join(f->th, NULL);
    if (f->err[0])
        fail_msg("fake TSM: %s", f->err);
    assert_int_equal(f->nreqs, f->nsteps);
}

static void fake_free(struct fake *f)
{
    close(f->lfd);
    unlink(f->sock);
    rmdir(f->dir);
    for (size_t i = 0; i < f->nreqs; i++)
        cbor_decref(&f->reqs[i]);
    free(f);
}

/* The request has op, id and exactly n further keys. */
static void assert_nkeys(const cbor_item_t *m, size_t n)
{
    assert_int_equal(cbor_map_size(m), 2 + n);
}

/* ------------------------------------------------------------------ usage errors */

/* Every malformed command line exits 2 before anything is sent: the socket named does
 * not exist, so a command that got further would exit 3 instead. */
/* --version is the program's; --help the whole usage, on stdout. */
static void test_version_and_help(void **state)
{
    (void)state;
    struct run r;
    const char *v[] = {"--version", NULL};
    run_cli(v, &r);
    assert_int_equal(r.status, 0);
    ASSERT_CONTAINS(r.out, "tsm-host (vtsm) ");
    const char *h[] = {"status", "--help", NULL};
    run_cli(h, &r);
    assert_int_equal(r.status, 0);
    ASSERT_CONTAINS(r.out, "usage: tsm-host");
    ASSERT_CONTAINS(r.out, "--spdm-version 1.2|1.3");
    ASSERT_CONTAINS(r.out, "--pcap FILE");
}

static void test_usage_errors(void **state)
{
    (void)state;
    static const struct {
        const char *args[10];
        const char *msg;
    } cases[] = {
        {{"bind", NULL}, "bind needs DEV TDI TVM"},
        {{"bind", "dev0", "1", "--doe", "tcp:127.0.0.1:1", NULL}, "bind needs DEV TDI TVM"},
        {{"bind", "dev0", "1", "7", NULL}, "bind needs --doe"},
        {{"bind", "dev0", "x", "7", "--doe", "tcp:127.0.0.1:1", NULL}, "bad TDI 'x'"},
        {{"bind", "dev0", "65536", "7", "--doe", "tcp:127.0.0.1:1", NULL}, "bad TDI '65536'"},
        {{"bind", "dev0", "1", "0", "--doe", "tcp:127.0.0.1:1", NULL}, "bad TVM '0'"},
        {{"bind", "dev/0", "1", "7", "--doe", "tcp:127.0.0.1:1", NULL}, "bad device name"},
        {{"bind", "dev0", "1", "7", "8", "--doe", "tcp:127.0.0.1:1", NULL},
         "unexpected argument '8'"},
        {{"bind", "dev0", "1", "7", "--doe", "tcp:127.0.0.1:1", "--lock-flags", "0x10000", NULL},
         "bad --lock-flags"},
        {{"bind", "dev0", "1", "7", "--doe", "tcp:127.0.0.1:1", "--force", NULL},
         "option --force does not apply to bind"},
        {{"unbind", "dev0", "--doe", "tcp:127.0.0.1:1", NULL}, "unbind needs DEV TDI"},
        {{"unbind", "dev0", "1", NULL}, "unbind needs --doe"},
        {{"unbind", "dev0", "1", "--doe", "tcp:127.0.0.1:1", "--lock-flags", "1", NULL},
         "option --lock-flags does not apply to unbind"},
        {{"tvm-create", NULL}, "tvm-create needs --guest-key HEX"},
        {{"tvm-create", "--guest-key", "04", NULL}, "bad --guest-key"},
        {{"tvm-create", "--guest-key", NULL}, "option \'--guest-key\' is unknown or needs a value"},
        {{"tvm-create", "--name", "", "--guest-key", "04", NULL}, "bad --name"},
        {{"tvm-create", "vm", NULL}, "unexpected argument 'vm'"},
        {{"tvm-destroy", NULL}, "tvm-destroy needs TVM"},
        {{"tvm-destroy", "0", NULL}, "bad TVM '0'"},
        {{"tvm-destroy", "4294967296", NULL}, "bad TVM"},
        {{"tvm-destroy", "1", "--doe", "tcp:127.0.0.1:1", NULL},
         "option --doe does not apply to tvm-destroy"},
        {{"ide-refresh", "dev0", NULL}, "ide-refresh needs --doe"},
        {{"ide-refresh", "--doe", "tcp:127.0.0.1:1", NULL}, "ide-refresh needs DEV"},
        {{"ide-check", "dev0", NULL}, "ide-check needs --doe"},
        {{"ide-check", "dev0", "--doe", "tcp:127.0.0.1:1", "--force", NULL},
         "option --force does not apply to ide-check"},
        {{"connect", "dev0", "--doe", "tcp:127.0.0.1:1", "--ide-streams", "9", NULL},
         "bad --ide-streams '9' (0..8)"},
        {{"connect", "dev0", "--doe", "tcp:127.0.0.1:1", "--ide-streams", NULL},
         "option \'--ide-streams\' is unknown or needs a value"},
        {{"connect", "dev0", "--doe", "tcp:127.0.0.1:1", "--force", NULL},
         "option --force does not apply to connect"},
        {{"reclaim", "dev0", "--doe", "tcp:127.0.0.1:1", "--ide-only", NULL},
         "option --ide-only does not apply to reclaim"},
        {{"relay", NULL}, "relay needs FILE"},
        /* --opt=value, options after the command, the renamed SPDM version option */
        {{"connect", "--ide-streams=9", "dev0", "--doe=tcp:127.0.0.1:1", NULL},
         "bad --ide-streams '9' (0..8)"},
        {{"connect", "dev0", "--doe=tcp:127.0.0.1:1", "--spdm-version=1.5", NULL},
         "bad --spdm-version '1.5' (1.2, 1.3 or 1.4)"},
        {{"--frob", "status", NULL}, "option '--frob' is unknown or needs a value"},
        {{"frob", NULL}, "unknown command 'frob'"},
        {{"relay", "/nonexistent/envelope.cbor", NULL}, "cannot open '/nonexistent/envelope.cbor'"},
        {{"status", "--ide-only", NULL}, "option --ide-only does not apply to status"},
    };
    char dir[] = "/tmp/vtsm-cli-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char sock[64];
    snprintf(sock, sizeof(sock), "%s/none.sock", dir);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *argv[16] = {"--socket", sock};
        size_t n = 2;
        for (size_t k = 0; cases[i].args[k]; k++)
            argv[n++] = cases[i].args[k];
        argv[n] = NULL;
        struct run r;
        run_cli(argv, &r);
        if (r.status != 2)
            fail_msg("case %zu (%s): exit %d, want 2; stderr: %s", i, cases[i].args[0], r.status,
                     r.err);
        ASSERT_CONTAINS(r.err, cases[i].msg);
        /* one line: the cause and a hint, not the whole usage */
        ASSERT_CONTAINS(r.err, "(try 'tsm-host --help')");
        assert_non_null(strchr(r.err, '\n'));
        assert_string_equal(strchr(r.err, '\n'), "\n");
        assert_string_equal(r.out, "");
    }
    /* a file that is not a CBOR map */
    char file[64];
    snprintf(file, sizeof(file), "%s/env.cbor", dir);
    FILE *fp = fopen(file, "wb");
    assert_non_null(fp);
    fputs("not cbor", fp);
    fclose(fp);
    const char *argv[] = {"--socket", sock, "relay", file, NULL};
    struct run r;
    run_cli(argv, &r);
    assert_int_equal(r.status, 2);
    ASSERT_CONTAINS(r.err, "is not a CBOR guest request envelope");
    unlink(file);
    rmdir(dir);
}

/* ------------------------------------------------------------------ against a fake TSM */

static void reply_streams(cbor_item_t *r, bool second_ok)
{
    cbor_item_t *streams = vtsm_abi_array_new();
    for (int i = 0; i < 2; i++) {
        cbor_item_t *s = vtsm_abi_map_new();
        vtsm_abi_put_uint(s, "stream_id", (uint64_t)i);
        vtsm_abi_put_uint(s, "key_set", 1);
        vtsm_abi_put_bool(s, "rp_to_device", true);
        vtsm_abi_put_bool(s, "device_to_rp", i == 0 || second_ok);
        vtsm_abi_push_item(streams, s);
    }
    vtsm_abi_put_tstr(r, "dev", "dev0");
    vtsm_abi_put_item(r, "streams", streams);
}

static void reply_streams_fail(cbor_item_t *r)
{
    reply_streams(r, false);
}

static void reply_streams_pass(cbor_item_t *r)
{
    reply_streams(r, true);
}

/* A failing direction: one line per stream, exit 1, the count on stderr. DOE and link
 * exchanges of the verb both reach the responder over its one TCP connection. */
static void test_ide_check_fail(void **state)
{
    (void)state;
    static const struct step steps[] = {
        {VTSM_ABI_OP_IDE_LINK_CHECK, "dev0", 1, 2, reply_streams_fail, VTSM_OK},
    };
    struct echo *e = echo_start();
    struct fake *f = fake_start(steps, 1);
    char doe[64];
    snprintf(doe, sizeof(doe), "tcp:127.0.0.1:%u", e->port);
    const char *argv[] = {"--socket", f->sock, "ide-check", "dev0", "--doe", doe, NULL};
    struct run r;
    run_cli(argv, &r);
    fake_check(f);
    assert_int_equal(r.status, 1);
    assert_string_equal(r.out, "stream 0 key set 1: rp->device PASS, device->rp PASS\n"
                               "stream 1 key set 1: rp->device PASS, device->rp FAIL\n");
    ASSERT_CONTAINS(r.err, "1 of 2 streams failed the link check");
    assert_nkeys(f->reqs[0], 1);
    fake_free(f);
    assert_int_equal(e->requests, 3);
    assert_int_equal(e->link_requests, 2);
    echo_stop(e);
}

static void test_ide_check_pass_json(void **state)
{
    (void)state;
    static const struct step steps[] = {
        {VTSM_ABI_OP_IDE_LINK_CHECK, "dev0", 0, 1, reply_streams_pass, VTSM_OK},
    };
    struct echo *e = echo_start();
    struct fake *f = fake_start(steps, 1);
    char doe[64];
    snprintf(doe, sizeof(doe), "tcp:127.0.0.1:%u", e->port);
    const char *argv[] = {"--socket", f->sock, "--json", "ide-check", "dev0", "--doe", doe, NULL};
    struct run r;
    run_cli(argv, &r);
    fake_check(f);
    if (r.status != 0)
        fail_msg("exit %d: %s", r.status, r.err);
    assert_string_equal(r.out, "{\"dev\":\"dev0\",\"streams\":["
                               "{\"stream_id\":0,\"key_set\":1,\"rp_to_device\":true,"
                               "\"device_to_rp\":true},"
                               "{\"stream_id\":1,\"key_set\":1,\"rp_to_device\":true,"
                               "\"device_to_rp\":true}]}\n");
    fake_free(f);
    assert_int_equal(e->link_requests, 1);
    echo_stop(e);
}

static void reply_tvm(cbor_item_t *r)
{
    uint8_t ident[4] = {0xab, 0xcd, 0x00, 0x01};
    vtsm_abi_put_uint(r, "tvm", 7);
    vtsm_abi_put_bytes(r, "identity", ident, sizeof(ident));
}

static void test_tvm_create_and_destroy(void **state)
{
    (void)state;
    static const struct step steps[] = {
        {VTSM_ABI_OP_TVM_CREATE, NULL, 0, 0, reply_tvm, VTSM_OK},
        {VTSM_ABI_OP_TVM_DESTROY, NULL, 0, 0, NULL, VTSM_OK},
        {VTSM_ABI_OP_TVM_CREATE, NULL, 0, 0, reply_tvm, VTSM_OK},
    };
    uint8_t key[VTSM_ABI_GUEST_KEY_SIZE];
    char hexkey[2 * sizeof(key) + 1];
    for (size_t i = 0; i < sizeof(key); i++) {
        key[i] = i ? (uint8_t)(0xf0 ^ i) : 0x04;
        sprintf(hexkey + 2 * i, "%02X", key[i]); /* upper case is accepted too */
    }
    struct fake *f = fake_start(steps, 3);
    const char *argv[] = {"--socket",  f->sock,       "--json", "tvm-create", "--name",
                          "guest-one", "--guest-key", hexkey,   NULL};
    struct run r;
    run_cli(argv, &r);
    if (r.status != 0)
        fail_msg("exit %d: %s", r.status, r.err);
    assert_string_equal(r.out, "{\"tvm\":7,\"identity\":\"abcd0001\"}\n");
    const char *argv2[] = {"--socket", f->sock, "tvm-destroy", "7", NULL};
    run_cli(argv2, &r);
    assert_int_equal(r.status, 0);
    /* --debug: the TVM may send DEBUG_WRITE guest requests */
    const char *argv3[] = {"--socket", f->sock,   "tvm-create", "--guest-key",
                           hexkey,     "--debug", NULL};
    run_cli(argv3, &r);
    if (r.status != 0)
        fail_msg("exit %d: %s", r.status, r.err);
    fake_check(f);
    bool dbg = false;
    assert_nkeys(f->reqs[2], 2);
    assert_int_equal(vtsm_abi_get_bool(f->reqs[2], "debug", &dbg), VTSM_OK);
    assert_true(dbg);
    const cbor_item_t *m = f->reqs[0];
    assert_nkeys(m, 2);
    char name[32];
    const uint8_t *p = NULL;
    size_t n = 0;
    assert_int_equal(vtsm_abi_get_tstr(m, "name", name, sizeof(name)), VTSM_OK);
    assert_string_equal(name, "guest-one");
    assert_int_equal(vtsm_abi_get_bytes(m, "guest_key", &p, &n), VTSM_OK);
    assert_int_equal(n, sizeof(key));
    assert_memory_equal(p, key, sizeof(key));
    uint64_t u = 0;
    assert_nkeys(f->reqs[1], 1);
    assert_int_equal(vtsm_abi_get_uint(f->reqs[1], "tvm", &u), VTSM_OK);
    assert_int_equal(u, 7);
    fake_free(f);
}

/* bind / unbind / reclaim --force / connect with IDE options: the requests exactly, and
 * the verbs' DOE exchanges go to the responder. */
static void test_tdi_and_device_options(void **state)
{
    (void)state;
    static const struct step steps[] = {
        {VTSM_ABI_OP_DEVICE_ADD, NULL, 0, 0, NULL, VTSM_OK},
        {VTSM_ABI_OP_DEVICE_CONNECT, "dev0", 2, 0, NULL, VTSM_OK},
        {VTSM_ABI_OP_TDI_BIND, "dev0", 2, 0, NULL, VTSM_OK},
        {VTSM_ABI_OP_TDI_UNBIND, "dev0", 1, 0, NULL, VTSM_OK},
        {VTSM_ABI_OP_IDE_REFRESH, "dev0", 1, 0, NULL, VTSM_OK},
        {VTSM_ABI_OP_DEVICE_RECLAIM, "dev0", 1, 0, NULL, VTSM_OK},
    };
    struct echo *e = echo_start();
    struct fake *f = fake_start(steps, sizeof(steps) / sizeof(steps[0]));
    char doe[64];
    snprintf(doe, sizeof(doe), "tcp:127.0.0.1:%u", e->port);
    const char *const cmds[][10] = {
        {"connect", "dev0", "--doe", doe, "--ide-streams", "2", "--ide-only", NULL},
        {"bind", "dev0", "3", "7", "--doe", doe, "--lock-flags", "0x5", NULL},
        {"unbind", "dev0", "3", "--doe", doe, NULL},
        {"ide-refresh", "dev0", "--doe", doe, NULL},
        {"reclaim", "dev0", "--doe", doe, "--force", NULL},
    };
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        const char *argv[16] = {"--socket", f->sock};
        size_t n = 2;
        for (size_t k = 0; cmds[i][k]; k++)
            argv[n++] = cmds[i][k];
        argv[n] = NULL;
        struct run r;
        run_cli(argv, &r);
        if (r.status != 0)
            fail_msg("%s: exit %d: %s", cmds[i][0], r.status, r.err);
    }
    fake_check(f);
    uint64_t u = 0;
    bool b = false;
    const cbor_item_t *m = f->reqs[1];
    assert_nkeys(m, 3);
    assert_int_equal(vtsm_abi_get_uint(m, "ide_streams", &u), VTSM_OK);
    assert_int_equal(u, 2);
    assert_int_equal(vtsm_abi_get_bool(m, "ide_only", &b), VTSM_OK);
    assert_true(b);
    m = f->reqs[2];
    assert_nkeys(m, 4);
    assert_int_equal(vtsm_abi_get_uint(m, "tdi", &u), VTSM_OK);
    assert_int_equal(u, 3);
    assert_int_equal(vtsm_abi_get_uint(m, "tvm", &u), VTSM_OK);
    assert_int_equal(u, 7);
    assert_int_equal(vtsm_abi_get_uint(m, "lock_flags", &u), VTSM_OK);
    assert_int_equal(u, 5);
    m = f->reqs[3];
    assert_nkeys(m, 2);
    assert_int_equal(vtsm_abi_get_uint(m, "tdi", &u), VTSM_OK);
    assert_int_equal(u, 3);
    assert_nkeys(f->reqs[4], 1);
    m = f->reqs[5];
    assert_nkeys(m, 2);
    assert_int_equal(vtsm_abi_get_bool(m, "force", &b), VTSM_OK);
    assert_true(b);
    fake_free(f);
    assert_int_equal(e->requests, 7);
    assert_int_equal(e->link_requests, 0);
    echo_stop(e);
}

static void reply_guest(cbor_item_t *r)
{
    vtsm_abi_put_uint(r, "gop", VTSM_ABI_GOP_INFO);
    vtsm_abi_put_uint(r, "tvm", 7);
    vtsm_abi_put_uint(r, "seq", 1);
}

/* relay FILE: the envelope goes out unchanged and the DOE exchanges for the device its
 * body names reach the responder. Both file forms: a bare CBOR map and one ABI frame. */
static void test_relay(void **state)
{
    (void)state;
    static const struct step steps[] = {
        {VTSM_ABI_OP_GUEST_REQUEST, "dev1", 1, 0, reply_guest, VTSM_OK},
        {VTSM_ABI_OP_GUEST_REQUEST, "dev1", 2, 0, reply_guest, VTSM_OK},
    };
    cbor_item_t *body = vtsm_abi_map_new();
    vtsm_abi_put_uint(body, "gop", VTSM_ABI_GOP_INFO);
    vtsm_abi_put_uint(body, "tvm", 7);
    vtsm_abi_put_uint(body, "seq", 1);
    vtsm_abi_put_tstr(body, "dev", "dev1");
    vtsm_abi_put_uint(body, "tdi", 0);
    struct vtsm_buf bf = {0}, ef = {0};
    assert_int_equal(vtsm_abi_encode(body, &bf), VTSM_OK);
    cbor_decref(&body);
    uint8_t sig[VTSM_ABI_GUEST_SIG_SIZE];
    memset(sig, 0x5a, sizeof(sig));
    cbor_item_t *env = vtsm_abi_map_new();
    vtsm_abi_put_uint(env, "tvm", 7);
    vtsm_abi_put_bytes(env, "body", bf.data + 4, bf.len - 4);
    vtsm_abi_put_bytes(env, "sig", sig, sizeof(sig));
    assert_int_equal(vtsm_abi_encode(env, &ef), VTSM_OK);
    cbor_decref(&env);

    char dir[] = "/tmp/vtsm-cli-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char bare[64], framed[64];
    snprintf(bare, sizeof(bare), "%s/bare.cbor", dir);
    snprintf(framed, sizeof(framed), "%s/framed.cbor", dir);
    FILE *fp = fopen(bare, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(ef.data + 4, 1, ef.len - 4, fp), ef.len - 4);
    fclose(fp);
    fp = fopen(framed, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(ef.data, 1, ef.len, fp), ef.len);
    fclose(fp);

    struct echo *e = echo_start();
    struct fake *f = fake_start(steps, 2);
    char doe[64];
    snprintf(doe, sizeof(doe), "tcp:127.0.0.1:%u", e->port);
    const char *argv1[] = {"--socket", f->sock, "--json", "relay", bare, "--doe", doe, NULL};
    struct run r;
    run_cli(argv1, &r);
    if (r.status != 0)
        fail_msg("exit %d: %s", r.status, r.err);
    assert_string_equal(r.out, "{\"gop\":66,\"tvm\":7,\"seq\":1}\n");
    const char *argv2[] = {"--socket", f->sock, "relay", "--doe", doe, framed, NULL};
    run_cli(argv2, &r);
    assert_int_equal(r.status, 0);
    fake_check(f);
    for (int i = 0; i < 2; i++) {
        const cbor_item_t *m = f->reqs[i];
        const uint8_t *p = NULL;
        size_t n = 0;
        uint64_t u = 0;
        assert_nkeys(m, 3);
        assert_int_equal(vtsm_abi_get_uint(m, "tvm", &u), VTSM_OK);
        assert_int_equal(u, 7);
        assert_int_equal(vtsm_abi_get_bytes(m, "body", &p, &n), VTSM_OK);
        assert_int_equal(n, bf.len - 4);
        assert_memory_equal(p, bf.data + 4, n);
        assert_int_equal(vtsm_abi_get_bytes(m, "sig", &p, &n), VTSM_OK);
        assert_int_equal(n, sizeof(sig));
        assert_memory_equal(p, sig, n);
    }
    fake_free(f);
    assert_int_equal(e->requests, 3);
    echo_stop(e);
    vtsm_buf_free(&bf);
    vtsm_buf_free(&ef);
    unlink(bare);
    unlink(framed);
    rmdir(dir);
}

/* The TSM refuses a new verb: exit 1 and its error; the TSM goes away: exit 3. */
static void test_tsm_refusal(void **state)
{
    (void)state;
    static const struct step steps[] = {
        {VTSM_ABI_OP_TVM_DESTROY, NULL, 0, 0, NULL, VTSM_E_STATE},
    };
    struct fake *f = fake_start(steps, 1);
    const char *argv[] = {"--socket", f->sock, "tvm-destroy", "3", NULL};
    struct run r;
    run_cli(argv, &r);
    fake_check(f);
    fake_free(f);
    assert_int_equal(r.status, 1);
    ASSERT_CONTAINS(r.err, "tsm-host: tvm-destroy failed: state (core): TVM 3 has a bound TDI "
                           "[rule TVM.2]\n");
    f = fake_start(steps, 1);
    const char *argv_json[] = {"--socket", f->sock, "--json", "tvm-destroy", "3", NULL};
    run_cli(argv_json, &r);
    fake_check(f);
    fake_free(f);
    assert_int_equal(r.status, 1);
    ASSERT_CONTAINS(r.out, "{\"error\":{\"verb\":\"tvm-destroy\",\"status\":3,\"name\":\"state\","
                           "\"source\":\"core\",\"detail\":\"TVM 3 has a bound TDI\",\"rule\":"
                           "\"TVM.2\"}}\n");

    f = fake_start(steps, 0); /* answers HELLO, then closes */
    const char *argv2[] = {"--socket", f->sock, "--json",          "ide-refresh",
                           "dev0",     "--doe", "tcp:127.0.0.1:1", NULL};
    run_cli(argv2, &r);
    fake_check(f);
    fake_free(f);
    /* the responder address is refused (nobody listens on port 1) before the verb */
    assert_int_equal(r.status, 3);
    ASSERT_CONTAINS(r.out, "{\"error\":{\"verb\":\"ide-refresh\"");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_version_and_help),
        cmocka_unit_test(test_ide_check_fail),
        cmocka_unit_test(test_tsm_refusal),
        cmocka_unit_test(test_ide_check_pass_json),
        cmocka_unit_test(test_tvm_create_and_destroy),
        cmocka_unit_test(test_tdi_and_device_options),
        cmocka_unit_test(test_relay),
    };
    return cmocka_run_group_tests_name("host_cli", tests, NULL, NULL);
}
