/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * End to end: the tsm-host CLI ends its DOE connection by the spdm-emu socket protocol
 * (the `end=` option of the tcp: target), against a peer that reports what it received
 * and against the emulated device across several verbs; real tsmd, tsm-devemu and
 * vtsm-split-peer processes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e_util.h"
#include "vtsm_proc.h"

/* A line the peer printed, within timeout_ms ("" at EOF). */
static void read_line(int fd, char *buf, size_t cap, int timeout_ms)
{
    size_t n = 0;
    long end = vtsm_now_ms() + timeout_ms;
    while (n + 1 < cap) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        long left = end - vtsm_now_ms();
        assert_true(left > 0);
        assert_int_equal(poll(&pfd, 1, (int)left), 1);
        ssize_t k = read(fd, buf + n, 1);
        if (k <= 0 || buf[n] == '\n')
            break;
        n++;
    }
    buf[n] = '\0';
}

/* A verb that fails on the device still ends the connection as the target asks; an
 * unknown option is a usage error before any connection. */
static void test_cli_ends_connection(void **state)
{
    struct e2e *e = *state;
    static struct e2e_run r;
    char pf[128], doe[96], line[64];
    int fds[2];
    snprintf(pf, sizeof(pf), "%s/split.port", e->dir);
    const char *args[] = {"--port-file", pf, NULL};
    assert_int_equal(pipe(fds), 0);
    pid_t peer = vtsm_proc_start(VTSM_BIN_DIR, "vtsm-split-peer", args, fds[1], -1);
    close(fds[1]);
    assert_true(peer > 0);
    int port = vtsm_proc_wait_port(pf, 10000);
    if (port <= 0) {
        vtsm_proc_stop(peer, 1000);
        close(fds[0]);
        fail_msg("vtsm-split-peer did not start");
    }

    snprintf(doe, sizeof(doe), "tcp:127.0.0.1:%d,end=bogus", port);
    const char *bad[] = {"connect", "0000:01:00.0", "--doe", doe, NULL};
    assert_int_equal(e2e_host(e, &r, bad), 2);
    E2E_HAS(r.err, "end=continue|shutdown|none");

    /* the echoing peer is no device: the connect fails, the connection ends with CONTINUE */
    snprintf(doe, sizeof(doe), "tcp:127.0.0.1:%d", port);
    const char *cont[] = {"connect", "0000:01:00.0", "--doe", doe, NULL};
    assert_int_equal(e2e_host(e, &r, cont), 1);
    read_line(fds[0], line, sizeof(line), 10000);
    assert_string_equal(line, "end CONTINUE");

    snprintf(doe, sizeof(doe), "tcp:127.0.0.1:%d,end=shutdown", port);
    const char *shut[] = {"connect", "0000:01:00.0", "--doe", doe, NULL};
    assert_int_equal(e2e_host(e, &r, shut), 1);
    read_line(fds[0], line, sizeof(line), 10000);
    assert_string_equal(line, "end SHUTDOWN");
    int st = vtsm_proc_wait(peer, 10000); /* SHUTDOWN ends the peer */
    close(fds[0]);
    unlink(pf);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* Against the emulated device every verb's connection ends with CONTINUE (or SHUTDOWN) and
 * the device keeps its session for the next verb's connection. */
static void test_cli_verbs_across_connections(void **state)
{
    struct e2e *e = *state;
    static struct e2e_run r;
    char doe[96];
    int port = e2e_devemu(e, NULL);
    assert_true(port > 0);
    snprintf(doe, sizeof(doe), "tcp:127.0.0.1:%d", port);
    const char *conn[] = {"--json", "connect", "0000:01:00.0", "--doe", doe, NULL};
    if (e2e_host(e, &r, conn) != 0)
        fail_msg("connect failed: %s", r.err);
    E2E_HAS(r.out, "\"state\":\"connected\"");
    snprintf(doe, sizeof(doe), "tcp:127.0.0.1:%d,end=shutdown", port);
    const char *hb[] = {"heartbeat", "0000:01:00.0", "--doe", doe, NULL};
    if (e2e_host(e, &r, hb) != 0)
        fail_msg("heartbeat failed: %s", r.err);
    snprintf(doe, sizeof(doe), "tcp:127.0.0.1:%d,end=none", port);
    const char *ku[] = {"key-update", "0000:01:00.0", "--doe", doe, NULL};
    if (e2e_host(e, &r, ku) != 0)
        fail_msg("key-update failed: %s", r.err);
    snprintf(doe, sizeof(doe), "tcp:127.0.0.1:%d", port);
    const char *rec[] = {"--json", "reclaim", "0000:01:00.0", "--doe", doe, NULL};
    if (e2e_host(e, &r, rec) != 0)
        fail_msg("reclaim failed: %s", r.err);
    E2E_HAS(r.out, "\"acknowledged\":true");
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cli_ends_connection, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_cli_verbs_across_connections, e2e_fixture_setup,
                                        e2e_fixture_teardown),
    };
    return cmocka_run_group_tests_name("e2e_interop", tests, NULL, NULL);
}
