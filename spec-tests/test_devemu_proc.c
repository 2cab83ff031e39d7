/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tsm-devemu as a process: the spdm-emu socket protocol on TCP loopback, connections that
 * die mid-frame, SHUTDOWN, the device state outliving a connection, and a clean exit 0 on
 * SIGTERM; then IDE_KM, TDISP and the simulated link (VTSM_LINK frames) over TCP with the
 * TSM's requester, --key-log, --no-tdisp and a fault that drops an answer. The child is
 * reaped on every path (killed first if a check failed).
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

#include <openssl/crypto.h>

#include "vtsm_buf.h"
#include "vtsm_crypto.h"
#include "vtsm_doe.h"
#include "vtsm_guard.h"
#include "vtsm_idekm.h"
#include "vtsm_link_frame.h"
#include "vtsm_sock.h"
#include "vtsm_spdm_defs.h"
#include "vtsm_spdm_req.h"
#include "vtsm_tdisp.h"

/* VTSM_SOCK_CMD_VTSM_LINK (abi/vtsm_abi.h). */
#define SOCK_CMD_VTSM_LINK 0x5654u

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

static int make_dir(struct child *c)
{
    snprintf(c->dir, sizeof(c->dir), "/tmp/vtsm-devemu-XXXXXX");
    if (!mkdtemp(c->dir))
        return -1;
    size_t dl = strlen(c->dir);
    if (dl + sizeof("/port") > sizeof(c->port_file))
        return -1;
    memcpy(c->port_file, c->dir, dl);
    memcpy(c->port_file + dl, "/port", sizeof("/port"));
    return 0;
}

/* Start tsm-devemu on a free port with extra arguments (NULL-terminated). */
static int start_child(const char *const *extra)
{
    struct child *c = &g_child;
    const char *args[24] = {"--port", "0", "--port-file", c->port_file};
    int n = 4;
    for (int i = 0; extra && extra[i] && n < 23; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    c->pid = spawn(args, &c->out_fd);
    if (c->pid < 0)
        return -1;
    c->port = read_port_file(c->port_file, 10000);
    return c->port > 0 ? 0 : -1;
}

static int setup(void **state)
{
    (void)state;
    if (make_dir(&g_child))
        return -1;
    return start_child(NULL);
}

static int setup_dir(void **state)
{
    (void)state;
    return make_dir(&g_child);
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
    char keys[160];
    snprintf(keys, sizeof(keys), "%.63s/keys", c->dir);
    unlink(keys);
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
    static const struct {
        const char *args[3];
        int rc;
    } cases[] = {
        {{"--fault", "no-such-fault", NULL}, 2},
        {{"--ide-streams", "257", NULL}, 2},
        {{"--ide-streams", "-1", NULL}, 2},
        {{"--tdis", "256", NULL}, 2},
        {{"--no-tdisp", "extra", NULL}, 2},
        {{"--key-log", "/nonexistent-vtsm-dir/keys", NULL}, 1},
        {{"--spdm-version", "1.1", NULL}, 2},
        {{"--spdm-version", "1.3,", NULL}, 2},
        {{"--spdm-version", "", NULL}, 2},
        {{"--meas-hash", "sha3_256", NULL}, 2},
        {{"--max-clients", "0", NULL}, 2},
        {{"--max-clients", "65", NULL}, 2},
        {{"--max-spdm-msg-size", "41", NULL}, 2},
        {{"--max-spdm-msg-size", "65537", NULL}, 2},
        {{"--max-spdm-msg-size", "100", NULL}, 2}, /* below DataTransferSize 4096 */
        {{"--no-challenge", "extra", NULL}, 2},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int out = -1;
        pid_t pid = spawn(cases[i].args, &out);
        assert_true(pid > 0);
        int st = reap(pid, 5000);
        close(out);
        if (st == -1) {
            kill(pid, SIGKILL);
            reap(pid, 5000);
            fail_msg("tsm-devemu did not exit on %s %s", cases[i].args[0], cases[i].args[1]);
        }
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), cases[i].rc);
    }
}

static void test_serve_survive_shutdown_sigterm(void **state)
{
    (void)state;
    struct child *c = &g_child;
    char line[256], want[256];
    struct vtsm_doe_disc_rsp d;
    struct vtsm_buf in = {0};
    uint32_t cmd, tr;

    /* Exactly one line on stdout, flushed, naming the bound port. */
    assert_true(read_line(c->out_fd, line, sizeof(line), 5000) > 0);
    snprintf(want, sizeof(want), "tsm-devemu listening on 127.0.0.1:%d", c->port);
    assert_string_equal(line, want);

    /* 1. TEST gets spdm-emu's "Server Hello!" (with its NUL); DOE discovery works;
     *    unknown commands get UNKNOWN. */
    int fd = connect_dev();
    assert_int_equal(
        vtsm_sock_send(fd, VTSM_SOCK_CMD_TEST, VTSM_SOCK_TRANSPORT_PCI_DOE, "hello", 5), VTSM_OK);
    assert_int_equal(vtsm_sock_recv(fd, &cmd, &tr, &in, 1024, 5000), VTSM_OK);
    assert_int_equal(cmd, VTSM_SOCK_CMD_TEST);
    assert_int_equal(tr, VTSM_SOCK_TRANSPORT_PCI_DOE);
    assert_int_equal(in.len, 14);
    assert_memory_equal(in.data, "Server Hello!", 14);
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

    /* 5. Still serving; CONTINUE is answered with CONTINUE and ends the connection, the
     *    device keeps its state (DIGESTS needs the negotiated algorithms); SHUTDOWN is
     *    answered with SHUTDOWN and closes this connection only. */
    fd = connect_dev();
    const uint8_t dg[4] = {0x12, SPDM_GET_DIGESTS, 0, 0};
    spdm_msg(fd, dg, 4, SPDM_DIGESTS);
    assert_int_equal(
        vtsm_sock_send(fd, VTSM_SOCK_CMD_CONTINUE, VTSM_SOCK_TRANSPORT_PCI_DOE, NULL, 0), VTSM_OK);
    assert_int_equal(vtsm_sock_recv(fd, &cmd, &tr, &in, 1024, 5000), VTSM_OK);
    assert_int_equal(cmd, VTSM_SOCK_CMD_CONTINUE);
    assert_int_equal(in.len, 0);
    expect_closed(fd);
    close(fd);
    fd = connect_dev();
    spdm_msg(fd, dg, 4, SPDM_DIGESTS);
    assert_int_equal(
        vtsm_sock_send(fd, VTSM_SOCK_CMD_SHUTDOWN, VTSM_SOCK_TRANSPORT_PCI_DOE, NULL, 0), VTSM_OK);
    assert_int_equal(vtsm_sock_recv(fd, &cmd, &tr, &in, 1024, 5000), VTSM_OK);
    assert_int_equal(cmd, VTSM_SOCK_CMD_SHUTDOWN);
    expect_closed(fd);
    close(fd);

    /* 6. A frame of a transport the device does not serve gets UNKNOWN (same transport),
     *    and the connection goes on. */
    fd = connect_dev();
    assert_int_equal(vtsm_sock_send(fd, VTSM_SOCK_CMD_NORMAL, VTSM_SOCK_TRANSPORT_MCTP, gv, 4),
                     VTSM_OK);
    assert_int_equal(vtsm_sock_recv(fd, &cmd, &tr, &in, 1024, 5000), VTSM_OK);
    assert_int_equal(cmd, VTSM_SOCK_CMD_UNKNOWN);
    assert_int_equal(tr, VTSM_SOCK_TRANSPORT_MCTP);
    assert_int_equal(in.len, 0);
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

/* ---- IDE_KM, TDISP and the link over TCP ---- */

/* The requester's transport: one NORMAL frame out, one back; an empty answer is a DOE
 * object the device dropped. */
struct sock_tp {
    int fd;
    unsigned empty; /* empty answers seen */
};

static vtsm_status sock_exchange(void *ctx, const uint8_t *req, size_t len, struct vtsm_buf *rsp)
{
    struct sock_tp *t = ctx;
    uint32_t cmd, tr;
    VTSM_GUARD(vtsm_sock_send(t->fd, VTSM_SOCK_CMD_NORMAL, VTSM_SOCK_TRANSPORT_PCI_DOE, req, len));
    VTSM_GUARD(vtsm_sock_recv(t->fd, &cmd, &tr, rsp, 1 << 20, 5000));
    VTSM_ENSURE(cmd == VTSM_SOCK_CMD_NORMAL, VTSM_E_IO, "answer with command 0x%x", cmd);
    if (rsp->len == 0) {
        t->empty++;
        return vtsm_fail(VTSM_E_DOE_HOST, "the device sent no DOE object");
    }
    return VTSM_OK;
}

static struct vtsm_spdm_req *session_over(struct sock_tp *t)
{
    struct vtsm_spdm_req_opts o;
    struct vtsm_spdm_transport tp = {.exchange = sock_exchange, .ctx = t};
    struct vtsm_spdm_req *r = NULL;
    t->fd = connect_dev();
    vtsm_spdm_req_opts_default(&o);
    assert_int_equal(vtsm_spdm_req_new(&o, &tp, &r), VTSM_OK);
    assert_int_equal(vtsm_spdm_req_init_connection(r), VTSM_OK);
    assert_int_equal(vtsm_spdm_req_get_certificate(r, 0), VTSM_OK);
    assert_int_equal(vtsm_spdm_req_start_session(r, 0), VTSM_OK);
    return r;
}

/* One link frame over the socket; the device's answer (possibly empty) in rsp. */
static void link_xchg(int fd, const struct vtsm_buf *frame, struct vtsm_buf *rsp)
{
    uint32_t cmd, tr;
    assert_int_equal(vtsm_sock_send(fd, SOCK_CMD_VTSM_LINK, VTSM_SOCK_TRANSPORT_PCI_DOE,
                                    frame->data, frame->len),
                     VTSM_OK);
    assert_int_equal(vtsm_sock_recv(fd, &cmd, &tr, rsp, 1 << 16, 5000), VTSM_OK);
    assert_int_equal(cmd, SOCK_CMD_VTSM_LINK);
    assert_int_equal(tr, VTSM_SOCK_TRANSPORT_PCI_DOE);
}

static uint8_t tdi_state_over(struct vtsm_spdm_req *r, uint32_t fid)
{
    uint8_t m[32];
    struct vtsm_wr w = vtsm_wr_init(m, sizeof(m));
    struct vtsm_buf rsp = {0};
    struct vtsm_tdisp_rsp tr;
    assert_int_equal(vtsm_tdisp_build_get_state(&w, fid), VTSM_OK);
    assert_int_equal(vtsm_spdm_req_vendor(r, m, w.len, &rsp), VTSM_OK);
    assert_int_equal(vtsm_tdisp_parse_response(rsp.data, rsp.len,
                                               VTSM_TDISP_GET_DEVICE_INTERFACE_STATE, fid, &tr),
                     VTSM_OK);
    vtsm_buf_free(&rsp);
    return tr.u.tdi_state;
}

static void test_ide_tdisp_link_over_tcp(void **state)
{
    (void)state;
    struct child *c = &g_child;
    char keys_path[160], line[256], want[256], hex[65];
    const char *const extra[] = {"--ide-streams", "2", "--tdis", "2", "--key-log", keys_path, NULL};
    struct vtsm_idekm_key k[3][2];
    struct vtsm_buf rsp = {0}, frame = {0};
    struct vtsm_link_frame f;
    struct sock_tp t = {.fd = -1};
    uint8_t m[64], p[32], out[32];

    snprintf(keys_path, sizeof(keys_path), "%.63s/keys", c->dir);
    assert_int_equal(start_child(extra), 0);
    struct vtsm_spdm_req *r = session_over(&t);

    /* Program stream 1, key set 0, with fresh keys, and make it live. */
    assert_int_equal(vtsm_random(k, sizeof(k)), VTSM_OK);
    for (unsigned ss = 0; ss < 3; ss++)
        for (unsigned dir = 0; dir < 2; dir++) {
            struct vtsm_wr w = vtsm_wr_init(m, sizeof(m));
            uint8_t kss = vtsm_idekm_kss(0, dir, ss);
            assert_int_equal(vtsm_idekm_build_key_prog(&w, 1, kss, 0, &k[ss][dir]), VTSM_OK);
            assert_int_equal(vtsm_spdm_req_vendor(r, m, w.len, &rsp), VTSM_OK);
            struct vtsm_idekm_ack ack;
            assert_int_equal(vtsm_idekm_parse_kp_ack(rsp.data, rsp.len, &ack), VTSM_OK);
            assert_int_equal(ack.status, 0);
            w = vtsm_wr_init(m, sizeof(m));
            assert_int_equal(vtsm_idekm_build_k_set_go(&w, 1, kss, 0), VTSM_OK);
            assert_int_equal(vtsm_spdm_req_vendor(r, m, w.len, &rsp), VTSM_OK);
            assert_int_equal(vtsm_idekm_parse_gostop_ack(rsp.data, rsp.len, &ack), VTSM_OK);
        }

    /* A link check over the same connection: the device answers under its TX key. */
    assert_int_equal(vtsm_random(p, sizeof(p)), VTSM_OK);
    assert_int_equal(vtsm_link_frame_seal(VTSM_LINK_KIND_CHECK_REQ, k[0][0].key, k[0][0].ifv, 0, 1,
                                          VTSM_IDE_SUBSTREAM_PR, 0, p, sizeof(p), &frame),
                     VTSM_OK);
    link_xchg(t.fd, &frame, &rsp);
    assert_int_equal(vtsm_link_frame_decode(rsp.data, rsp.len, &f), VTSM_OK);
    assert_int_equal(f.kind, VTSM_LINK_KIND_CHECK_RSP);
    assert_int_equal(vtsm_link_frame_open(&f, k[0][1].key, k[0][1].ifv, out, sizeof(out)), VTSM_OK);
    assert_memory_equal(out, p, sizeof(p));
    /* The same frame again is a replay: a failure frame. An undecodable one: empty. */
    link_xchg(t.fd, &frame, &rsp);
    assert_int_equal(vtsm_link_frame_decode(rsp.data, rsp.len, &f), VTSM_OK);
    assert_int_equal(f.kind, VTSM_LINK_KIND_FAILURE);
    frame.data[0] = 'X';
    link_xchg(t.fd, &frame, &rsp);
    assert_int_equal(rsp.len, 0);

    /* Lock TDI 1, drop the connection; a new connection and session find it locked. */
    struct vtsm_wr w = vtsm_wr_init(m, sizeof(m));
    struct vtsm_tdisp_lock_params lp = {0};
    assert_int_equal(vtsm_tdisp_build_lock_interface(&w, 1, &lp), VTSM_OK);
    assert_int_equal(vtsm_spdm_req_vendor(r, m, w.len, &rsp), VTSM_OK);
    assert_int_equal(tdi_state_over(r, 1), VTSM_TDI_CONFIG_LOCKED);
    vtsm_spdm_req_free(r);
    close(t.fd);
    r = session_over(&t);
    assert_int_equal(tdi_state_over(r, 1), VTSM_TDI_CONFIG_LOCKED);
    assert_int_equal(tdi_state_over(r, 0), VTSM_TDI_CONFIG_UNLOCKED);
    /* ... and the link still runs on the new connection (the next counter). */
    assert_int_equal(vtsm_link_frame_seal(VTSM_LINK_KIND_CHECK_REQ, k[0][0].key, k[0][0].ifv, 1, 1,
                                          VTSM_IDE_SUBSTREAM_PR, 0, p, sizeof(p), &frame),
                     VTSM_OK);
    link_xchg(t.fd, &frame, &rsp);
    assert_int_equal(vtsm_link_frame_decode(rsp.data, rsp.len, &f), VTSM_OK);
    assert_int_equal(f.kind, VTSM_LINK_KIND_CHECK_RSP);
    assert_int_equal(f.counter, 1);
    vtsm_spdm_req_free(r);
    close(t.fd);

    /* --key-log: one line per accepted key, in KEY_PROG order. */
    FILE *kl = fopen(keys_path, "r");
    assert_non_null(kl);
    static const char *const ssn[3] = {"PR", "NPR", "CPL"};
    for (unsigned ss = 0; ss < 3; ss++)
        for (unsigned dir = 0; dir < 2; dir++) {
            vtsm_hex(hex, k[ss][dir].key, 32);
            snprintf(want, sizeof(want),
                     "stream 1 keyset 0 substream %s dir %s key %s ifv %016llx\n", ssn[ss],
                     dir ? "TX" : "RX", hex, (unsigned long long)k[ss][dir].ifv);
            /* the file also holds the device's other secrets ("secret ..." lines) */
            do
                assert_non_null(fgets(line, sizeof(line), kl));
            while (strncmp(line, "secret ", 7) == 0);
            assert_string_equal(line, want);
        }
    while (fgets(line, sizeof(line), kl))
        assert_int_equal(strncmp(line, "secret ", 7), 0); /* no other key lines */
    fclose(kl);

    assert_int_equal(kill(c->pid, SIGTERM), 0);
    int status = reap(c->pid, 10000);
    assert_true(status != -1);
    c->pid = -1;
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    OPENSSL_cleanse(k, sizeof(k));
    vtsm_buf_free(&rsp);
    vtsm_buf_free(&frame);
}

/* --no-tdisp and --fault idekm-no-go-ack: TDISP is UnsupportedRequest; K_SET_GO is answered
 * with an empty NORMAL frame. */
static void test_no_tdisp_and_dropped_go(void **state)
{
    (void)state;
    const char *const extra[] = {"--no-tdisp", "--fault", "idekm-no-go-ack", NULL};
    struct sock_tp t = {.fd = -1};
    struct vtsm_buf rsp = {0};
    struct vtsm_idekm_key k;
    uint8_t m[64];

    assert_int_equal(start_child(extra), 0);
    struct vtsm_spdm_req *r = session_over(&t);
    struct vtsm_wr w = vtsm_wr_init(m, sizeof(m));
    assert_int_equal(vtsm_tdisp_build_get_version(&w, 0), VTSM_OK);
    assert_int_equal(vtsm_spdm_req_vendor(r, m, w.len, &rsp), VTSM_E_PEER_ERROR);
    assert_int_equal(vtsm_spdm_req_peer_error(r, NULL), SPDM_ERR_UNSUPPORTED_REQUEST);

    memset(&k, 0x42, sizeof(k));
    w = vtsm_wr_init(m, sizeof(m));
    assert_int_equal(vtsm_idekm_build_key_prog(&w, 0, 0, 0, &k), VTSM_OK);
    assert_int_equal(vtsm_spdm_req_vendor(r, m, w.len, &rsp), VTSM_OK);
    w = vtsm_wr_init(m, sizeof(m));
    assert_int_equal(vtsm_idekm_build_k_set_go(&w, 0, 0, 0), VTSM_OK);
    assert_int_equal(t.empty, 0);
    assert_int_equal(vtsm_spdm_req_vendor(r, m, w.len, &rsp), VTSM_E_DOE_HOST);
    assert_int_equal(t.empty, 1);
    vtsm_spdm_req_free(r);
    close(t.fd);
    vtsm_buf_free(&rsp);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_command_line),
        cmocka_unit_test_setup_teardown(test_serve_survive_shutdown_sigterm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ide_tdisp_link_over_tcp, setup_dir, teardown),
        cmocka_unit_test_setup_teardown(test_no_tdisp_and_dropped_go, setup_dir, teardown),
    };
    return cmocka_run_group_tests_name("devemu_proc", tests, NULL, NULL);
}
