/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tsm-devemu as a process: the spdm-emu socket protocol on TCP loopback, connections that
 * die mid-frame, SHUTDOWN, the device state outliving a connection, and a clean exit 0 on
 * SIGTERM. The child is reaped on every path (killed first if a check failed).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vtsm_buf.h"
#include "vtsm_doe.h"
#include "vtsm_sock.h"
#include "vtsm_spdm_defs.h"

struct child {
    pid_t pid;
    int out_fd; /* the child's stdout */
    char dir[64];
    char port_file[128];
    int port;
};

static struct child g_child = {.pid = -1, .out_fd = -1};

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Wait for the child with a deadline; returns the wait status or -1 on timeout. */
static int reap(pid_t pid, int timeout_ms)
{
    long end = now_ms() + timeout_ms;
    for (;;) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        if (r < 0 && errno != EINTR)
            return -1;
        if (now_ms() > end)
            return -1;
        usleep(10000);
    }
}

static pid_t spawn(const char *const *args, int *out_fd)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        const char *argv[32];
        int n = 0;
        argv[n++] = VTSM_BIN_DIR "/tsm-devemu";
        for (int i = 0; args[i] && n < 31; i++)
            argv[n++] = args[i];
        argv[n] = NULL;
        dup2(p[1], STDOUT_FILENO);
        close(p[0]);
        close(p[1]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        return -1;
    }
    *out_fd = p[0];
    return pid;
}

static int read_port_file(const char *path, int timeout_ms)
{
    long end = now_ms() + timeout_ms;
    while (now_ms() < end) {
        FILE *f = fopen(path, "r");
        if (f) {
            int port = 0;
            int ok = fscanf(f, "%d", &port);
            fclose(f);
            if (ok == 1 && port > 0)
                return port;
        }
        usleep(10000);
    }
    return -1;
}

/* Read one line of the child's stdout (with a deadline). */
static int read_line(int fd, char *buf, size_t cap, int timeout_ms)
{
    size_t n = 0;
    long end = now_ms() + timeout_ms;
    while (n + 1 < cap) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int left = (int)(end - now_ms());
        if (left <= 0 || poll(&pfd, 1, left) <= 0)
            return -1;
        ssize_t k = read(fd, buf + n, 1);
        if (k <= 0)
            return -1;
        if (buf[n] == '\n')
            break;
        n++;
    }
    buf[n] = '\0';
    return (int)n;
}

static int setup(void **state)
{
    (void)state;
    struct child *c = &g_child;
    snprintf(c->dir, sizeof(c->dir), "/tmp/vtsm-devemu-XXXXXX");
    if (!mkdtemp(c->dir))
        return -1;
    size_t dl = strlen(c->dir);
    if (dl + sizeof("/port") > sizeof(c->port_file))
        return -1;
    memcpy(c->port_file, c->dir, dl);
    memcpy(c->port_file + dl, "/port", sizeof("/port"));
    const char *args[] = {"--port", "0", "--port-file", c->port_file, NULL};
    c->pid = spawn(args, &c->out_fd);
    if (c->pid < 0)
        return -1;
    c->port = read_port_file(c->port_file, 10000);
    return c->port > 0 ? 0 : -1;
}

/* Kill and reap whatever is left (a failed test leaves the child running). */
static int teardown(void **state)
{
    (void)state;
    struct child *c = &g_child;
    if (c->pid > 0) {
        kill(c->pid, SIGKILL);
        reap(c->pid, 5000);
        c->pid = -1;
    }
    if (c->out_fd >= 0)
        close(c->out_fd);
    c->out_fd = -1;
    unlink(c->port_file);
    rmdir(c->dir);
    return 0;
}

static int connect_dev(void)
{
    char hp[64];
    int fd = -1;
    snprintf(hp, sizeof(hp), "127.0.0.1:%d", g_child.port);
    assert_int_equal(vtsm_tcp_connect(hp, &fd), VTSM_OK);
    return fd;
}

/* One NORMAL/PCI_DOE exchange: a DOE object carrying msg of the given type. */
static void doe_xchg(int fd, uint8_t type, const uint8_t *msg, size_t len, struct vtsm_buf *rsp,
                     struct vtsm_doe_obj *obj)
{
    struct vtsm_buf req = {0};
    uint32_t cmd, tr;
    assert_int_equal(vtsm_doe_build_buf(VTSM_DOE_VENDOR_PCISIG, type, msg, len, &req), VTSM_OK);
    assert_int_equal(
        vtsm_sock_send(fd, VTSM_SOCK_CMD_NORMAL, VTSM_SOCK_TRANSPORT_PCI_DOE, req.data, req.len),
        VTSM_OK);
    assert_int_equal(vtsm_sock_recv(fd, &cmd, &tr, rsp, 1 << 20, 5000), VTSM_OK);
    assert_int_equal(cmd, VTSM_SOCK_CMD_NORMAL);
    assert_int_equal(tr, VTSM_SOCK_TRANSPORT_PCI_DOE);
    assert_int_equal(vtsm_doe_parse(rsp->data, rsp->len, obj), VTSM_OK);
    vtsm_buf_free(&req);
}

static void discovery(int fd, uint8_t index, struct vtsm_doe_disc_rsp *d)
{
    struct vtsm_buf rsp = {0};
    struct vtsm_doe_obj obj;
    uint8_t p[4];
    vtsm_doe_disc_req_payload(index, p);
    doe_xchg(fd, VTSM_DOE_TYPE_DISCOVERY, p, 4, &rsp, &obj);
    assert_int_equal(vtsm_doe_disc_rsp_parse(&obj, d), VTSM_OK);
    vtsm_buf_free(&rsp);
}

/* The server closed this connection: the next read sees EOF (or a reset). */
static void expect_closed(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 5000), 1);
    char b;
    ssize_t k = read(fd, &b, 1);
    assert_true(k == 0 || (k < 0 && errno == ECONNRESET));
}

static void spdm_msg(int fd, const uint8_t *m, size_t n, uint8_t want_code)
{
    struct vtsm_buf rsp = {0};
    struct vtsm_doe_obj obj;
    doe_xchg(fd, VTSM_DOE_TYPE_SPDM, m, n, &rsp, &obj);
    assert_true(obj.payload_len >= 4);
    assert_int_equal(obj.payload[1], want_code);
    vtsm_buf_free(&rsp);
}

static void test_bad_command_line(void **state)
{
    (void)state;
    int out = -1;
    const char *args[] = {"--fault", "no-such-fault", NULL};
    pid_t pid = spawn(args, &out);
    assert_true(pid > 0);
    int st = reap(pid, 5000);
    close(out);
    if (st == -1) {
        kill(pid, SIGKILL);
        reap(pid, 5000);
        fail_msg("tsm-devemu did not exit on a bad --fault");
    }
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 2);
}

static void test_serve_survive_shutdown_sigterm(void **state)
{
    (void)state;
    struct child *c = &g_child;
    char line[128], want[128];
    struct vtsm_doe_disc_rsp d;
    struct vtsm_buf in = {0};
    uint32_t cmd, tr;

    /* Exactly one line on stdout, flushed, naming the bound port. */
    assert_true(read_line(c->out_fd, line, sizeof(line), 5000) > 0);
    snprintf(want, sizeof(want), "tsm-devemu listening on 127.0.0.1:%d", c->port);
    assert_string_equal(line, want);

    /* 1. TEST is echoed; DOE discovery works; unknown commands get UNKNOWN. */
    int fd = connect_dev();
    assert_int_equal(
        vtsm_sock_send(fd, VTSM_SOCK_CMD_TEST, VTSM_SOCK_TRANSPORT_PCI_DOE, "hello", 5), VTSM_OK);
    assert_int_equal(vtsm_sock_recv(fd, &cmd, &tr, &in, 1024, 5000), VTSM_OK);
    assert_int_equal(cmd, VTSM_SOCK_CMD_TEST);
    assert_int_equal(in.len, 5);
    assert_memory_equal(in.data, "hello", 5);
    discovery(fd, 0, &d);
    assert_int_equal(d.type, VTSM_DOE_TYPE_DISCOVERY);
    assert_int_equal(d.next_index, 1);
    assert_int_equal(vtsm_sock_send(fd, 0x1234, VTSM_SOCK_TRANSPORT_PCI_DOE, NULL, 0), VTSM_OK);
    assert_int_equal(vtsm_sock_recv(fd, &cmd, &tr, &in, 1024, 5000), VTSM_OK);
    assert_int_equal(cmd, VTSM_SOCK_CMD_UNKNOWN);
    /* Start a connection at the SPDM level: VERSION, CAPABILITIES. */
    const uint8_t gv[4] = {0x10, SPDM_GET_VERSION, 0, 0};
    spdm_msg(fd, gv, 4, SPDM_VERSION);
    uint8_t caps[20] = {0x12, SPDM_GET_CAPABILITIES, 0, 0, 0, 12};
    vtsm_put_le32(caps + 8, SPDM_CAP_ENCRYPT | SPDM_CAP_MAC | SPDM_CAP_KEY_EX);
    vtsm_put_le32(caps + 12, 4096);
    vtsm_put_le32(caps + 16, 4096);
    spdm_msg(fd, caps, 20, SPDM_CAPABILITIES);

    /* 2. Die mid-frame: a header announcing 100 bytes, 10 sent, then FIN. */
    uint8_t partial[22];
    vtsm_put_be32(partial, VTSM_SOCK_CMD_NORMAL);
    vtsm_put_be32(partial + 4, VTSM_SOCK_TRANSPORT_PCI_DOE);
    vtsm_put_be32(partial + 8, 100);
    memset(partial + 12, 0xAB, 10);
    assert_int_equal(vtsm_fd_write_full(fd, partial, sizeof(partial)), VTSM_OK);
    close(fd);

    /* 3. Reconnect: the device kept its state (CAPABILITIES done), so
     *    NEGOTIATE_ALGORITHMS is accepted on the new connection. */
    fd = connect_dev();
    discovery(fd, 2, &d);
    assert_int_equal(d.type, VTSM_DOE_TYPE_SECURED_SPDM);
    assert_int_equal(d.next_index, 0);
    /* 32-byte fixed part, then three AlgStruct entries. */
    uint8_t algs[44] = {
        0x12, SPDM_NEGOTIATE_ALGORITHMS, 3, 0, 44, 0, SPDM_MEAS_SPEC_DMTF, SPDM_OPAQUE_DATA_FMT_1};
    vtsm_put_le32(algs + 8, SPDM_ASYM_ECDSA_P384);
    vtsm_put_le32(algs + 12, SPDM_HASH_SHA384);
    const uint8_t st[12] = {SPDM_ALG_TYPE_DHE,          0x20, SPDM_DHE_SECP384R1,     0,
                            SPDM_ALG_TYPE_AEAD,         0x20, SPDM_AEAD_AES_256_GCM,  0,
                            SPDM_ALG_TYPE_KEY_SCHEDULE, 0x20, SPDM_KEY_SCHEDULE_SPDM, 0};
    memcpy(algs + 32, st, 12);
    spdm_msg(fd, algs, 44, SPDM_ALGORITHMS);

    /* 4. Die mid-header with a reset (RST instead of FIN). */
    assert_int_equal(vtsm_fd_write_full(fd, partial, 7), VTSM_OK);
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);

    /* 5. Still serving; SHUTDOWN closes this connection only. */
    fd = connect_dev();
    const uint8_t dg[4] = {0x12, SPDM_GET_DIGESTS, 0, 0};
    spdm_msg(fd, dg, 4, SPDM_DIGESTS);
    assert_int_equal(
        vtsm_sock_send(fd, VTSM_SOCK_CMD_SHUTDOWN, VTSM_SOCK_TRANSPORT_PCI_DOE, NULL, 0), VTSM_OK);
    assert_int_equal(vtsm_sock_recv(fd, &cmd, &tr, &in, 1024, 5000), VTSM_OK);
    assert_int_equal(cmd, VTSM_SOCK_CMD_SHUTDOWN);
    expect_closed(fd);
    close(fd);

    /* 6. A frame with the wrong transport type costs that connection only. */
    fd = connect_dev();
    assert_int_equal(vtsm_sock_send(fd, VTSM_SOCK_CMD_NORMAL, VTSM_SOCK_TRANSPORT_MCTP, gv, 4),
                     VTSM_OK);
    expect_closed(fd);
    close(fd);
    fd = connect_dev();
    discovery(fd, 1, &d);
    assert_int_equal(d.type, VTSM_DOE_TYPE_SPDM);
    /* A DOE object the device must not answer gets an empty NORMAL frame. */
    uint8_t bad[12] = {0x34, 0x12, 0x01, 0x00, 0x03, 0x00, 0x00, 0x00};
    assert_int_equal(
        vtsm_sock_send(fd, VTSM_SOCK_CMD_NORMAL, VTSM_SOCK_TRANSPORT_PCI_DOE, bad, sizeof(bad)),
        VTSM_OK);
    assert_int_equal(vtsm_sock_recv(fd, &cmd, &tr, &in, 1024, 5000), VTSM_OK);
    assert_int_equal(cmd, VTSM_SOCK_CMD_NORMAL);
    assert_int_equal(in.len, 0);
    close(fd);

    /* 7. SIGTERM: clean exit 0, port file removed. */
    assert_int_equal(kill(c->pid, SIGTERM), 0);
    int status = reap(c->pid, 10000);
    assert_true(status != -1);
    c->pid = -1;
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(access(c->port_file, F_OK), -1);
    vtsm_buf_free(&in);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_command_line),
        cmocka_unit_test_setup_teardown(test_serve_survive_shutdown_sigterm, setup, teardown),
    };
    return cmocka_run_group_tests_name("devemu_proc", tests, NULL, NULL);
}
