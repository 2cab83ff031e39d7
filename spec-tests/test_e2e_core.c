/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * End-to-end tests of tsmd's core (docs/architecture.md "The loop and its jobs"), with
 * real tsmd and tsm-devemu processes:
 *  - clients that flood requests without reading do not delay another client, and are
 *    dropped once their unread replies pass the bound; tsmd keeps serving;
 *  - silent, half-open and idle connections time out;
 *  - a bind that loses the SPDM session (a replayed secured response, a killed device)
 *    leaves the device unconnected with no TDIs, as STATUS says, and it reconnects;
 *  - refused unbinds leave no TDI records behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "e2e_host.h"
#include "e2e_util.h"
#include "vtsm_abi.h"
#include "vtsm_guest_cbor.h"

/* The latency bound the issue sets holds for the normal build; sanitizer builds run every
 * process several times slower, so their bound is scaled. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define LATENCY_BOUND_MS 1000
#else
#define LATENCY_BOUND_MS 100
#endif

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait up to ms for the peer to close fd (reading and discarding what comes). */
static bool closed_within(int fd, int ms)
{
    int64_t end = now_ms() + ms;
    char buf[65536];
    for (;;) {
        int left = (int)(end - now_ms());
        if (left <= 0)
            return false;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, left) <= 0)
            continue;
        ssize_t k = read(fd, buf, sizeof(buf));
        if (k == 0 || (k < 0 && errno != EINTR && errno != EAGAIN))
            return true;
    }
}

/* ---------------------------------------------------------------- flooding clients */

static void test_flooding_clients_do_not_delay_others(void **state)
{
    struct e2e *e = *state;
    int flood[4];
    /* one device, so STATUS replies carry something */
    int fd = e2e_abi_connect(e, true);
    assert_true(fd >= 0);
    cbor_item_t *m = vtsm_abi_request_msg(VTSM_ABI_OP_DEVICE_ADD, 2);
    vtsm_abi_put_tstr(m, "dev", "0000:01:00.0");
    assert_int_equal(e2e_abi_send(fd, m), 0);
    cbor_item_t *r = e2e_abi_recv(fd);
    assert_non_null(r);
    assert_int_equal(e2e_op(r), VTSM_ABI_OP_RESULT);
    cbor_decref(&r);

    /* Four clients write STATUS requests as fast as tsmd takes them and never read. */
    struct vtsm_buf req = {0};
    m = vtsm_abi_request_msg(VTSM_ABI_OP_STATUS, 7);
    assert_int_equal(vtsm_abi_encode(m, &req), VTSM_OK);
    cbor_decref(&m);
    for (int i = 0; i < 4; i++) {
        flood[i] = e2e_abi_connect(e, true);
        assert_true(flood[i] >= 0);
        fcntl(flood[i], F_SETFL, O_NONBLOCK);
    }
    int64_t flood_end = now_ms() + 1500;
    size_t sent = 0;
    while (now_ms() < flood_end) {
        for (int i = 0; i < 4; i++)
            for (int k = 0; k < 64; k++) {
                if (flood[i] < 0)
                    continue;
                ssize_t w = write(flood[i], req.data, req.len);
                if (w > 0)
                    sent++;
                if (w < 0 && errno != EAGAIN) {
                    close(flood[i]); /* dropped by tsmd: it stopped reading us */
                    flood[i] = -1;
                }
                if (w < 0)
                    break;
            }
        /* Meanwhile another client: HELLO + STATUS answered within 100 ms. */
        int64_t t0 = now_ms();
        int other = e2e_abi_connect(e, true);
        assert_true(other >= 0);
        m = vtsm_abi_request_msg(VTSM_ABI_OP_STATUS, 9);
        assert_int_equal(e2e_abi_send(other, m), 0);
        r = e2e_abi_recv(other);
        int64_t took = now_ms() - t0;
        assert_non_null(r);
        assert_int_equal(e2e_op(r), VTSM_ABI_OP_RESULT);
        cbor_decref(&r);
        close(other);
        if (took > LATENCY_BOUND_MS)
            fail_msg("HELLO + STATUS took %lld ms while 4 clients flood", (long long)took);
        usleep(20000);
    }
    vtsm_buf_free(&req);
    assert_true(sent > 1000);
    /* tsmd keeps serving the first client */
    m = vtsm_abi_request_msg(VTSM_ABI_OP_STATUS, 3);
    assert_int_equal(e2e_abi_send(fd, m), 0);
    r = e2e_abi_recv(fd);
    assert_non_null(r);
    assert_int_equal(e2e_op(r), VTSM_ABI_OP_RESULT);
    cbor_decref(&r);
    for (int i = 0; i < 4; i++)
        if (flood[i] >= 0)
            close(flood[i]);
    close(fd);
}

/* A client that never reads is dropped once its replies stall: tsmd stops reading its
 * requests while its output queue is full, and drops it when nothing drains for the
 * frame time limit. */
static void test_client_that_never_reads_is_dropped(void **unused)
{
    (void)unused;
    struct e2e e;
    static const char *const args[] = {"--frame-timeout-ms", "500", NULL};
    assert_int_equal(e2e_setup(&e, args), 0);
    int fd = e2e_abi_connect(&e, true);
    assert_true(fd >= 0);
    /* a reply bigger than a socket buffer: STATUS of 64 devices */
    for (int i = 0; i < 64; i++) {
        char dev[32];
        snprintf(dev, sizeof(dev), "0000:%02x:00.0", i + 1);
        cbor_item_t *m = vtsm_abi_request_msg(VTSM_ABI_OP_DEVICE_ADD, 100 + (uint64_t)i);
        vtsm_abi_put_tstr(m, "dev", dev);
        assert_int_equal(e2e_abi_send(fd, m), 0);
        cbor_item_t *r = e2e_abi_recv(fd);
        assert_non_null(r);
        cbor_decref(&r);
    }
    struct vtsm_buf req = {0};
    cbor_item_t *m = vtsm_abi_request_msg(VTSM_ABI_OP_STATUS, 7);
    assert_int_equal(vtsm_abi_encode(m, &req), VTSM_OK);
    cbor_decref(&m);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    bool dropped = false;
    int64_t end = now_ms() + 20000;
    while (!dropped && now_ms() < end) {
        ssize_t w = write(fd, req.data, req.len);
        if (w < 0 && errno == EAGAIN) {
            /* tsmd stopped reading us, or our socket is full: did it hang up? */
            struct pollfd p = {.fd = fd, .events = 0};
            poll(&p, 1, 10);
            dropped = (p.revents & (POLLHUP | POLLERR)) != 0;
        } else if (w < 0) {
            dropped = true;
        }
    }
    vtsm_buf_free(&req);
    assert_true(dropped);
    close(fd);
    /* and tsmd serves the next client */
    fd = e2e_abi_connect(&e, true);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(e2e_teardown(&e), 0);
}

/* ---------------------------------------------------------------- time limits */

static void test_silent_half_open_and_idle_clients_time_out(void **unused)
{
    (void)unused;
    struct e2e e;
    static const char *const args[] = {
        "--hello-timeout-ms", "300", "--frame-timeout-ms", "300", "--idle-timeout-ms", "600", NULL};
    assert_int_equal(e2e_setup(&e, args), 0);
    int silent = e2e_abi_connect(&e, false);
    int half = e2e_abi_connect(&e, true);
    int idle = e2e_abi_connect(&e, true);
    int busy = e2e_abi_connect(&e, true);
    assert_true(silent >= 0 && half >= 0 && idle >= 0 && busy >= 0);
    /* two bytes of a frame header, then nothing */
    assert_int_equal(write(half, "\0\0", 2), 2);
    assert_true(closed_within(silent, 3000));
    assert_true(closed_within(half, 3000));
    /* a client that keeps talking is not idle */
    for (int i = 0; i < 8; i++) {
        cbor_item_t *m = vtsm_abi_request_msg(VTSM_ABI_OP_STATUS, 10 + (uint64_t)i);
        assert_int_equal(e2e_abi_send(busy, m), 0);
        cbor_item_t *r = e2e_abi_recv(busy);
        assert_non_null(r);
        assert_int_equal(e2e_op(r), VTSM_ABI_OP_RESULT);
        cbor_decref(&r);
        usleep(150000);
    }
    assert_true(closed_within(idle, 3000));
    close(silent);
    close(half);
    close(idle);
    close(busy);
    assert_int_equal(e2e_teardown(&e), 0);
}

/* ---------------------------------------------------------------- session lost in a bind */

/* The host's DOE callback: forwards to the device, or (armed) answers the next exchange
 * with the previous response, as a replaying host would. */
struct replayer {
    struct vtsm_doe_tcp *tcp;
    bool armed;
    uint8_t last[8192];
    size_t last_len;
};

static int replay_doe(void *ctx, const uint8_t *req, size_t req_len, uint8_t *rsp, size_t *rsp_len)
{
    struct replayer *rp = ctx;
    if (rp->armed && rp->last_len && rp->last_len <= *rsp_len) {
        rp->armed = false;
        memcpy(rsp, rp->last, rp->last_len);
        *rsp_len = rp->last_len;
        return 0;
    }
    int rc = vtsm_doe_tcp_fn(rp->tcp, req, req_len, rsp, rsp_len);
    if (rc == 0 && *rsp_len <= sizeof(rp->last)) {
        memcpy(rp->last, rsp, *rsp_len);
        rp->last_len = *rsp_len;
    }
    return rc;
}

struct lost_fx {
    struct e2e e;
    struct e2e_host hh;
    struct replayer rp;
    int port;
    pid_t devemu;
    uint32_t tvm;
};

static void lost_setup(struct lost_fx *f)
{
    memset(f, 0, sizeof(*f));
    assert_int_equal(e2e_setup(&f->e, NULL), 0);
    f->port = e2e_devemu(&f->e, NULL);
    assert_true(f->port > 0);
    f->devemu = f->e.pids[f->e.npids - 1];
    assert_int_equal(e2e_host_open(&f->e, &f->hh), 0);
    assert_int_equal(e2e_host_add_device(&f->hh, "0000:01:00.0", f->port, 0), 0);
    /* replace the device's DOE callback with the replaying one, on the same connection
     * (the device serves one mailbox client) */
    f->rp.tcp = f->hh.tcp[0];
    assert_int_equal(vtsm_host_register_doe(f->hh.h, "0000:01:00.0", replay_doe, &f->rp), VTSM_OK);
    struct vtsm_host_connect_opts o = {.ide_streams = 1};
    cbor_item_t *res = NULL;
    assert_int_equal(vtsm_host_device_connect_cbor(f->hh.h, "0000:01:00.0", &o, &res), VTSM_OK);
    cbor_decref(&res);
    assert_int_equal(e2e_host_new_tvm(&f->hh, f->e.dir, "t", &f->tvm, NULL), 0);
    /* one TDI bound before the session is lost */
    assert_int_equal(vtsm_host_tdi_bind_cbor(f->hh.h, "0000:01:00.0", 1, f->tvm, 0, &res), VTSM_OK);
    cbor_decref(&res);
}

/* STATUS of dev0: state, number of TDI records, and the TVM's bound_tdis. */
static void lost_status(struct lost_fx *f, const char *want_state, size_t want_tdis,
                        uint64_t want_bound)
{
    cbor_item_t *res = NULL;
    char s[32];
    assert_int_equal(vtsm_host_status_cbor(f->hh.h, NULL, &res), VTSM_OK);
    assert_string_equal(e2e_str(res, "devices.0.state", s, sizeof(s)), want_state);
    const cbor_item_t *tdis = e2e_get(res, "devices.0.tdis");
    assert_int_equal(tdis ? cbor_array_size(tdis) : 0, want_tdis);
    assert_int_equal(e2e_uint(res, "tvms.0.bound_tdis"), want_bound);
    cbor_decref(&res);
}

static void lost_reconnect(struct lost_fx *f)
{
    cbor_item_t *res = NULL;
    assert_int_equal(vtsm_host_device_connect_cbor(f->hh.h, "0000:01:00.0", NULL, &res), VTSM_OK);
    cbor_decref(&res);
    lost_status(f, "connected", 0, 0);
    /* and the TVM, with nothing bound, can go */
    assert_int_equal(vtsm_host_tvm_destroy_cbor(f->hh.h, f->tvm, NULL), VTSM_OK);
}

static void test_bind_loses_session_to_replayed_response(void **unused)
{
    (void)unused;
    struct lost_fx f;
    lost_setup(&f);
    lost_status(&f, "connected", 1, 1);
    f.rp.armed = true;
    cbor_item_t *res = NULL;
    assert_int_equal(vtsm_host_tdi_bind_cbor(f.hh.h, "0000:01:00.0", 2, f.tvm, 0, &res),
                     VTSM_E_PEER_DECRYPT);
    char s[32];
    assert_string_equal(e2e_str(res, "state", s, sizeof(s)), "unconnected");
    assert_string_equal(vtsm_host_last_error(f.hh.h)->rule_id, "PDEV.12");
    cbor_decref(&res);
    /* the session is gone: the device is not connected, its TDIs are gone with it */
    lost_status(&f, "unconnected", 0, 0);
    assert_int_equal(vtsm_host_tdi_bind_cbor(f.hh.h, "0000:01:00.0", 2, f.tvm, 0, NULL),
                     VTSM_E_STATE);
    assert_string_equal(vtsm_host_last_error(f.hh.h)->rule_id, "PDEV.10");
    lost_reconnect(&f);
    e2e_host_close(&f.hh);
    assert_int_equal(e2e_teardown(&f.e), 0);
}

static void test_bind_to_killed_device_leaves_truthful_state(void **unused)
{
    (void)unused;
    struct lost_fx f;
    lost_setup(&f);
    e2e_kill(&f.e, f.devemu);
    cbor_item_t *res = NULL;
    vtsm_status st = vtsm_host_tdi_bind_cbor(f.hh.h, "0000:01:00.0", 2, f.tvm, 0, &res);
    assert_int_not_equal(st, VTSM_OK);
    if (res)
        cbor_decref(&res);
    /* Whatever the failure, STATUS agrees with itself: either the session survived (the
     * device stays connected with its bound TDI) or it did not (nothing is left). */
    assert_int_equal(vtsm_host_status_cbor(f.hh.h, NULL, &res), VTSM_OK);
    char s[32];
    e2e_str(res, "devices.0.state", s, sizeof(s));
    cbor_decref(&res);
    if (strcmp(s, "connected") == 0)
        lost_status(&f, "connected", 1, 1);
    else
        lost_status(&f, "unconnected", 0, 0);
    e2e_host_close(&f.hh);
    assert_int_equal(e2e_teardown(&f.e), 0);
}

/* ---------------------------------------------------------------- refused requests */

static void test_refused_unbinds_leave_no_records(void **unused)
{
    (void)unused;
    struct lost_fx f;
    lost_setup(&f);
    for (uint32_t i = 100; i < 400; i++) {
        assert_int_equal(vtsm_host_tdi_unbind_cbor(f.hh.h, "0000:01:00.0", i, NULL), VTSM_E_STATE);
        assert_int_equal(vtsm_host_last_error(f.hh.h)->rule, VTSM_RULE_TDI_2);
    }
    /* only the TDI that was really bound has a record */
    lost_status(&f, "connected", 1, 1);
    e2e_host_close(&f.hh);
    assert_int_equal(e2e_teardown(&f.e), 0);
}

/* ---------------------------------------------------------------- the operation table */

/* tsm-host request: any row of the operation table from the command line, its fields
 * checked against the row's schema before anything is sent. */
static void test_cli_request_any_operation(void **state)
{
    struct e2e *e = *state;
    static struct e2e_run r;
    char doe[64];
    int port = e2e_devemu(e, NULL);
    assert_true(port > 0);
    const char *add[] = {"request", "DEVICE_ADD", "dev=0000:03:00.0", "root_port=1", NULL};
    if (e2e_host(e, &r, add) != 0)
        fail_msg("request DEVICE_ADD: %s", r.err);
    const char *conn[] = {
        "request", "device_connect", "dev=0000:03:00.0", "--doe", e2e_doe(doe, sizeof(doe), port),
        NULL};
    if (e2e_host(e, &r, conn) != 0)
        fail_msg("request DEVICE_CONNECT: %s", r.err);
    const char *st[] = {"--json", "request", "STATUS", "summary=true", NULL};
    assert_int_equal(e2e_host(e, &r, st), 0);
    E2E_HAS(r.out, "\"total_devices\":1");
    E2E_HAS(r.out, "\"state\":\"connected\"");
    /* a refusal by the TSM: exit 1, the rule in the JSON error */
    const char *rm[] = {"--json", "request", "DEVICE_REMOVE", "dev=0000:09:00.0", NULL};
    assert_int_equal(e2e_host(e, &r, rm), 1);
    E2E_HAS(r.out, "\"rule\":\"PDEV.13\"");
    /* usage errors: no such operation, a field the operation does not take */
    const char *bad_op[] = {"request", "DEVICE_FROB", NULL};
    assert_int_equal(e2e_host(e, &r, bad_op), 2);
    const char *bad_key[] = {"request", "STATUS", "zzz=1", NULL};
    assert_int_equal(e2e_host(e, &r, bad_key), 2);
    E2E_HAS(r.err, "STATUS takes no field 'zzz'");
    /* the ABI's own decoder runs in the CLI too: a value out of range, a key missing */
    const char *bad_val[] = {"request", "DEVICE_CONNECT", "dev=0000:03:00.0", "slot=9", NULL};
    assert_int_equal(e2e_host(e, &r, bad_val), 2);
    E2E_HAS(r.err, "slot");
    const char *no_dev[] = {"request", "DEVICE_REMOVE", NULL};
    assert_int_equal(e2e_host(e, &r, no_dev), 2);
    E2E_HAS(r.err, "dev");
    /* status without --json: aligned tables, the session in hex, measurements whole */
    const char *tab[] = {"status", NULL};
    assert_int_equal(e2e_host(e, &r, tab), 0);
    const char *hd = strstr(r.out, "DEVICES\nDEVICE");
    assert_non_null(hd);
    hd += strlen("DEVICES\n");
    const char *row = strchr(hd, '\n') + 1;
    assert_true(strncmp(row, "0000:03:00.0", 12) == 0);
    /* the STATE column starts at the same offset in the header and in the row */
    size_t col = (size_t)(strstr(hd, "STATE") - hd);
    assert_true(strncmp(row + col, "connected", 9) == 0);
    assert_non_null(strstr(row, " 0x"));
    E2E_HAS(r.out, "MEASUREMENTS\nDEVICE");
    E2E_HAS(r.out, "immutable ROM");
    assert_null(strstr(r.out, "sha256:")); /* values, not digests of them */
    /* every verb of the table is a command by its name */
    const char *hb[] = {
        "--json", "spdm_heartbeat", "dev=0000:03:00.0", "--doe", e2e_doe(doe, sizeof(doe), port),
        NULL};
    if (e2e_host(e, &r, hb) != 0)
        fail_msg("spdm_heartbeat: %s", r.err);
    E2E_HAS(r.out, "\"dev\":\"0000:03:00.0\"");
    const char *proto[] = {"hello", NULL};
    assert_int_equal(e2e_host(e, &r, proto), 2);
    const char *reclaim[] = {
        "request", "DEVICE_RECLAIM", "dev=0000:03:00.0", "--doe", e2e_doe(doe, sizeof(doe), port),
        NULL};
    if (e2e_host(e, &r, reclaim) != 0)
        fail_msg("request DEVICE_RECLAIM: %s", r.err);
    /* remove: the named command for DEVICE_REMOVE; then the device is unknown */
    const char *rm_ok[] = {"--json", "remove", "0000:03:00.0", NULL};
    if (e2e_host(e, &r, rm_ok) != 0)
        fail_msg("remove: %s", r.err);
    E2E_HAS(r.out, "\"dev\":\"0000:03:00.0\"");
    const char *gone[] = {"--json", "status", "0000:03:00.0", NULL};
    assert_int_equal(e2e_host(e, &r, gone), 1);
    E2E_HAS(r.out, "\"rule\":\"PDEV.13\"");
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_flooding_clients_do_not_delay_others,
                                        e2e_fixture_setup, e2e_fixture_teardown),
        cmocka_unit_test(test_client_that_never_reads_is_dropped),
        cmocka_unit_test(test_silent_half_open_and_idle_clients_time_out),
        cmocka_unit_test(test_bind_loses_session_to_replayed_response),
        cmocka_unit_test(test_bind_to_killed_device_leaves_truthful_state),
        cmocka_unit_test(test_refused_unbinds_leave_no_records),
        cmocka_unit_test_setup_teardown(test_cli_request_any_operation, e2e_fixture_setup,
                                        e2e_fixture_teardown),
    };
    /* the flooding tests write to connections tsmd may drop: a write error, not a signal */
    signal(SIGPIPE, SIG_IGN);
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
