/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Interoperability of the spdm-emu socket ends with real processes and sockets:
 * - the host shim's TCP DOE backend ends a connection with CONTINUE (default), SHUTDOWN
 *   or nothing (the `end=` option of the tcp: target), seen by vtsm-split-peer;
 * - against a peer that writes each frame in four pieces without TCP_NODELAY (as the
 *   reference peers and QEMU do) an exchange costs well under a delayed-ACK time;
 * Every child is reaped on every path.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vtsm_host.h"
#include "vtsm_proc.h"
#include "vtsm_sock.h"

struct peer {
    pid_t pid;
    int out; /* read end of the child's stdout */
    int port;
    char dir[32];
    char port_file[64];
};

static struct peer g_peer = {.pid = -1, .out = -1};

/* Start bin/prog with --port-file (and extra args) on a free port; stdout to a pipe. */
static void peer_start(const char *prog, const char *const *extra)
{
    struct peer *p = &g_peer;
    snprintf(p->dir, sizeof(p->dir), "/tmp/vtsm-interop-XXXXXX");
    assert_non_null(mkdtemp(p->dir));
    snprintf(p->port_file, sizeof(p->port_file), "%.31s/port", p->dir);
    const char *args[24];
    int n = 0;
    if (strcmp(prog, "tsm-devemu") == 0) {
        args[n++] = "--port";
        args[n++] = "0";
    }
    args[n++] = "--port-file";
    args[n++] = p->port_file;
    for (int i = 0; extra && extra[i] && n < 23; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    p->pid = vtsm_proc_start(VTSM_BIN_DIR, prog, args, fds[1], -1);
    close(fds[1]);
    p->out = fds[0];
    assert_true(p->pid > 0);
    p->port = vtsm_proc_wait_port(p->port_file, 10000);
    assert_true(p->port > 0);
}

static int teardown(void **state)
{
    (void)state;
    struct peer *p = &g_peer;
    if (p->pid > 0)
        vtsm_proc_stop(p->pid, 2000);
    p->pid = -1;
    if (p->out >= 0)
        close(p->out);
    p->out = -1;
    unlink(p->port_file);
    char tmp[80];
    snprintf(tmp, sizeof(tmp), "%.63s.tmp", p->port_file);
    unlink(tmp);
    rmdir(p->dir);
    return 0;
}

/* The next line the peer printed, within timeout_ms. */
static void peer_line(char *buf, size_t cap, int timeout_ms)
{
    size_t n = 0;
    long end = vtsm_now_ms() + timeout_ms;
    while (n + 1 < cap) {
        struct pollfd pfd = {.fd = g_peer.out, .events = POLLIN};
        long left = end - vtsm_now_ms();
        assert_true(left > 0);
        assert_int_equal(poll(&pfd, 1, (int)left), 1);
        assert_int_equal(read(g_peer.out, buf + n, 1), 1);
        if (buf[n] == '\n')
            break;
        n++;
    }
    buf[n] = '\0';
}

static void target(char *buf, size_t cap, const char *opts)
{
    snprintf(buf, cap, "tcp:127.0.0.1:%d%s", g_peer.port, opts);
}

/* A DOE-object-sized exchange through the backend; the split peer echoes it. */
static void echo_once(struct vtsm_doe_tcp *t, uint8_t tag)
{
    uint8_t req[64], rsp[256];
    size_t rsp_len = sizeof(rsp);
    memset(req, tag, sizeof(req));
    assert_int_equal(vtsm_doe_tcp_fn(t, req, sizeof(req), rsp, &rsp_len), 0);
    assert_int_equal(rsp_len, sizeof(req));
    assert_memory_equal(rsp, req, sizeof(req));
}

static void test_tcp_target_options_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "tcp:127.0.0.1:1,end=bogus",
        "tcp:127.0.0.1:1,shutdown",
        "tcp:127.0.0.1:1,",
        "tcp:127.0.0.1:1,end=continue,end=nope",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct vtsm_doe_tcp *t = (struct vtsm_doe_tcp *)1;
        assert_int_equal(vtsm_doe_tcp_open(bad[i], &t), VTSM_E_INVAL);
        assert_null(t);
    }
}

/* Closing the backend ends the peer's session: CONTINUE by default, nothing with
 * end=none, SHUTDOWN with end=shutdown (the peer then exits 0). */
static void test_session_end_on_close(void **state)
{
    (void)state;
    char spec[96], line[64];
    struct vtsm_doe_tcp *t = NULL;
    peer_start("vtsm-split-peer", NULL);

    target(spec, sizeof(spec), "");
    assert_int_equal(vtsm_doe_tcp_open(spec, &t), VTSM_OK);
    echo_once(t, 1);
    vtsm_doe_tcp_close(t);
    peer_line(line, sizeof(line), 5000);
    assert_string_equal(line, "end CONTINUE");

    target(spec, sizeof(spec), ",end=none");
    assert_int_equal(vtsm_doe_tcp_open(spec, &t), VTSM_OK);
    echo_once(t, 2);
    vtsm_doe_tcp_close(t);
    peer_line(line, sizeof(line), 5000);
    assert_string_equal(line, "end EOF");

    /* explicit continue, and the last option wins */
    target(spec, sizeof(spec), ",end=none,end=continue");
    assert_int_equal(vtsm_doe_tcp_open(spec, &t), VTSM_OK);
    echo_once(t, 3);
    vtsm_doe_tcp_close(t);
    peer_line(line, sizeof(line), 5000);
    assert_string_equal(line, "end CONTINUE");

    target(spec, sizeof(spec), ",end=shutdown");
    assert_int_equal(vtsm_doe_tcp_open(spec, &t), VTSM_OK);
    echo_once(t, 4);
    vtsm_doe_tcp_close(t);
    peer_line(line, sizeof(line), 5000);
    assert_string_equal(line, "end SHUTDOWN");
    int status = vtsm_proc_wait(g_peer.pid, 5000);
    g_peer.pid = -1;
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* Against a peer that writes each frame in four pieces without TCP_NODELAY, a round trip
 * is far below the 40 ms delayed-ACK time it costs when the reader does not re-arm quick
 * ACKs (the median of 100, after 20 warm-up exchanges that Linux's initial quick-ACK
 * mode would hide the delay in). */
static void test_split_writer_round_trip(void **state)
{
    (void)state;
    char spec[96];
    struct vtsm_doe_tcp *t = NULL;
    peer_start("vtsm-split-peer", NULL);
    target(spec, sizeof(spec), "");
    assert_int_equal(vtsm_doe_tcp_open(spec, &t), VTSM_OK);
    for (int i = 0; i < 20; i++)
        echo_once(t, (uint8_t)i);
    enum { N = 100 };
    long long d[N];
    for (int i = 0; i < N; i++) {
        long long t0 = vtsm_now_ns();
        echo_once(t, (uint8_t)i);
        d[i] = vtsm_now_ns() - t0;
    }
    vtsm_doe_tcp_close(t);
    /* median by counting: at least half the exchanges under 5 ms */
    int fast = 0;
    for (int i = 0; i < N; i++)
        fast += d[i] < 5000000LL;
    print_message("split-writer exchanges under 5 ms: %d of %d\n", fast, N);
    assert_true(fast > N / 2);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_target_options_refused),
        cmocka_unit_test_teardown(test_session_end_on_close, teardown),
        cmocka_unit_test_teardown(test_split_writer_round_trip, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
