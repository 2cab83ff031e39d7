/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * End to end, host misbehaviour: malformed CBOR, unknown opcode, wrong ABI version,
 * requests before HELLO, unknown keys, stray doe_responses, a second requester on a
 * busy device, and a host that disconnects in the middle of a connect. Each gets its
 * exact error, and tsmd keeps serving.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "e2e_util.h"
#include "vtsm_abi.h"
#include "vtsm_buf.h"
#include "vtsm_sock.h"

/* The next message is an ERROR with status name `name` and rule field `rule` (NULL: none). */
static void expect_error(int fd, const char *name, const char *rule)
{
    char buf[64];
    struct vtsm_abi_error err;
    cbor_item_t *m = e2e_abi_recv(fd);
    assert_non_null(m);
    e2e_err_name(m, buf, sizeof(buf));
    assert_int_equal(vtsm_abi_parse_error(m, &err), VTSM_OK);
    cbor_decref(&m);
    if (strcmp(buf, name) != 0 || strcmp(err.rule_id, rule ? rule : "") != 0)
        fail_msg("expected ERROR %s rule %s, got '%s' rule '%s' (%s)", name, rule ? rule : "none",
                 buf, err.rule_id, err.detail);
    if (rule)
        assert_int_equal(err.rule, vtsm_rule_parse(rule));
}

/* The TSM still answers a fresh client. */
static void assert_serving(struct e2e *e)
{
    int fd = e2e_abi_connect(e, true);
    assert_true(fd >= 0);
    cbor_item_t *m = vtsm_abi_request_msg(VTSM_ABI_OP_STATUS, 9);
    assert_int_equal(e2e_abi_send(fd, m), 0);
    cbor_item_t *r = e2e_abi_recv(fd);
    assert_non_null(r);
    assert_int_equal(e2e_op(r), VTSM_ABI_OP_RESULT);
    cbor_decref(&r);
    close(fd);
}

static void test_malformed_cbor(void **state)
{
    struct e2e *e = *state;
    int fd = e2e_abi_connect(e, true);
    assert_true(fd >= 0);
    /* A whole, well-delimited frame whose body is not valid CBOR. */
    uint8_t frame[] = {0, 0, 0, 3, 0xff, 0x00, 0x13};
    assert_int_equal(vtsm_fd_write_full(fd, frame, sizeof(frame)), VTSM_OK);
    expect_error(fd, "abi_malformed", "ABI.7");
    /* A CBOR array instead of a map. */
    uint8_t frame2[] = {0, 0, 0, 2, 0x81, 0x01};
    assert_int_equal(vtsm_fd_write_full(fd, frame2, sizeof(frame2)), VTSM_OK);
    expect_error(fd, "abi_malformed", "ABI.7");
    /* The connection stays usable after a skipped frame. */
    cbor_item_t *m = vtsm_abi_request_msg(VTSM_ABI_OP_STATUS, 2);
    assert_int_equal(e2e_abi_send(fd, m), 0);
    cbor_item_t *r = e2e_abi_recv(fd);
    assert_non_null(r);
    assert_int_equal(e2e_op(r), VTSM_ABI_OP_RESULT);
    cbor_decref(&r);
    close(fd);
    assert_serving(e);
}

static void test_oversized_frame_closes_connection(void **state)
{
    struct e2e *e = *state;
    int fd = e2e_abi_connect(e, true);
    assert_true(fd >= 0);
    uint8_t hdr[] = {0x01, 0x00, 0x00, 0x00}; /* 16 MiB */
    assert_int_equal(vtsm_fd_write_full(fd, hdr, sizeof(hdr)), VTSM_OK);
    expect_error(fd, "abi_oversized", "ABI.6");
    cbor_item_t *m = NULL;
    assert_int_not_equal(vtsm_abi_recv(fd, &m, 5000), VTSM_OK); /* closed */
    close(fd);
    assert_serving(e);
}

static void test_unknown_opcode(void **state)
{
    struct e2e *e = *state;
    int fd = e2e_abi_connect(e, true);
    assert_true(fd >= 0);
    assert_int_equal(e2e_abi_send(fd, vtsm_abi_request_msg((enum vtsm_abi_op)0x7e, 5)), 0);
    expect_error(fd, "abi_unknown_op", "ABI.2");
    close(fd);
    assert_serving(e);
}

static void test_wrong_abi_version(void **state)
{
    struct e2e *e = *state;
    int fd = e2e_abi_connect(e, false);
    assert_true(fd >= 0);
    cbor_item_t *m = vtsm_abi_request_msg(VTSM_ABI_OP_HELLO, 1);
    cbor_item_t *v = vtsm_abi_array_new();
    vtsm_abi_push_uint(v, 2);
    vtsm_abi_put_item(m, "versions", v);
    vtsm_abi_put_tstr(m, "role", "host");
    assert_int_equal(e2e_abi_send(fd, m), 0);
    expect_error(fd, "abi_version", "ABI.3");
    close(fd);
    assert_serving(e);
}

static void test_request_before_hello(void **state)
{
    struct e2e *e = *state;
    int fd = e2e_abi_connect(e, false);
    assert_true(fd >= 0);
    assert_int_equal(e2e_abi_send(fd, vtsm_abi_request_msg(VTSM_ABI_OP_STATUS, 3)), 0);
    expect_error(fd, "abi_no_hello", "ABI.1");
    close(fd);
}

static void test_unknown_key_refused(void **state)
{
    struct e2e *e = *state;
    int fd = e2e_abi_connect(e, true);
    assert_true(fd >= 0);
    cbor_item_t *m = vtsm_abi_request_msg(VTSM_ABI_OP_DEVICE_ADD, 4);
    vtsm_abi_put_tstr(m, "dev", "0000:01:00.0");
    vtsm_abi_put_uint(m, "colour", 3);
    assert_int_equal(e2e_abi_send(fd, m), 0);
    expect_error(fd, "abi_arg", "ABI.9");
    /* nothing was registered */
    m = vtsm_abi_request_msg(VTSM_ABI_OP_STATUS, 5);
    vtsm_abi_put_tstr(m, "dev", "0000:01:00.0");
    assert_int_equal(e2e_abi_send(fd, m), 0);
    expect_error(fd, "not_found", "PDEV.13");
    close(fd);
}

/* A value of the wrong type or range is refused (ABI.8) before any handler runs; a
 * refused DOE_RESPONSE says so with request_op, whichever check refused it. */
static void test_bad_value_refused(void **state)
{
    struct e2e *e = *state;
    int fd = e2e_abi_connect(e, true);
    assert_true(fd >= 0);
    cbor_item_t *m = vtsm_abi_request_msg(VTSM_ABI_OP_DEVICE_ADD, 4);
    vtsm_abi_put_tstr(m, VTSM_ABI_K_DEV, "0000:01:00.0");
    vtsm_abi_put_uint(m, VTSM_ABI_K_ROOT_PORT, 0x10000);
    assert_int_equal(e2e_abi_send(fd, m), 0);
    expect_error(fd, "abi_arg", "ABI.8");
    m = vtsm_abi_request_msg(VTSM_ABI_OP_STATUS, 5);
    vtsm_abi_put_uint(m, VTSM_ABI_K_TDI_OFFSET, 1);
    assert_int_equal(e2e_abi_send(fd, m), 0);
    expect_error(fd, "abi_arg", "ABI.8");
    m = vtsm_abi_request_msg(VTSM_ABI_OP_TDI_BIND, 6);
    vtsm_abi_put_tstr(m, VTSM_ABI_K_DEV, "0000:01:00.0");
    vtsm_abi_put_uint(m, VTSM_ABI_K_TDI, 0);
    vtsm_abi_put_tstr(m, VTSM_ABI_K_TVM, "1");
    assert_int_equal(e2e_abi_send(fd, m), 0);
    expect_error(fd, "abi_arg", "ABI.8");

    /* neither object nor error; both; an unknown key */
    static const char *const extra[] = {NULL, VTSM_ABI_K_OBJECT, "colour"};
    static const char *const rule[] = {"ABI.8", "ABI.8", "ABI.9"};
    for (size_t i = 0; i < 3; i++) {
        m = vtsm_abi_request_msg(VTSM_ABI_OP_DOE_RESPONSE, 7);
        vtsm_abi_put_tstr(m, VTSM_ABI_K_DEV, "0000:01:00.0");
        vtsm_abi_put_uint(m, VTSM_ABI_K_SEQ, 1);
        if (extra[i]) {
            vtsm_abi_put_tstr(m, VTSM_ABI_K_ERROR, "no device");
            vtsm_abi_put_bytes(m, extra[i], (const uint8_t *)"12345678", 8);
        }
        assert_int_equal(e2e_abi_send(fd, m), 0);
        cbor_item_t *r = e2e_abi_recv(fd);
        assert_non_null(r);
        struct vtsm_abi_error err;
        uint64_t req_op = 0;
        assert_int_equal(vtsm_abi_parse_error(r, &err), VTSM_OK);
        assert_int_equal(err.status, VTSM_E_ABI_ARG);
        assert_string_equal(err.rule_id, rule[i]);
        assert_int_equal(vtsm_abi_get_uint(r, VTSM_ABI_K_REQUEST_OP, &req_op), VTSM_OK);
        assert_int_equal(req_op, VTSM_ABI_OP_DOE_RESPONSE);
        cbor_decref(&r);
    }
    /* a second HELLO is out of sequence, whatever its values */
    m = vtsm_abi_request_msg(VTSM_ABI_OP_HELLO, 9);
    vtsm_abi_put_tstr(m, VTSM_ABI_K_ROLE, "admin");
    assert_int_equal(e2e_abi_send(fd, m), 0);
    expect_error(fd, "abi_sequence", "ABI.5");
    /* nothing was registered */
    m = vtsm_abi_request_msg(VTSM_ABI_OP_STATUS, 8);
    vtsm_abi_put_tstr(m, VTSM_ABI_K_DEV, "0000:01:00.0");
    assert_int_equal(e2e_abi_send(fd, m), 0);
    expect_error(fd, "not_found", "PDEV.13");
    close(fd);
}

static void test_guest_role_cannot_connect(void **state)
{
    struct e2e *e = *state;
    int fd = e2e_abi_connect(e, false);
    assert_true(fd >= 0);
    assert_int_equal(e2e_abi_send(fd, vtsm_abi_hello_msg(1, VTSM_ABI_ROLE_GUEST, "g")), 0);
    cbor_item_t *r = e2e_abi_recv(fd);
    assert_non_null(r);
    assert_int_equal(e2e_op(r), VTSM_ABI_OP_RESULT);
    cbor_decref(&r);
    cbor_item_t *m = vtsm_abi_request_msg(VTSM_ABI_OP_DEVICE_CONNECT, 2);
    vtsm_abi_put_tstr(m, "dev", "0000:01:00.0");
    assert_int_equal(e2e_abi_send(fd, m), 0);
    expect_error(fd, "abi_role", "ABI.4");
    close(fd);
}

/* Start a connect on a raw client and return once the first doe_pending arrived. */
static int start_connect_raw(struct e2e *e, const char *dev, uint64_t *seq_out,
                             cbor_item_t **pending_out)
{
    int fd = e2e_abi_connect(e, true);
    assert_true(fd >= 0);
    cbor_item_t *m = vtsm_abi_request_msg(VTSM_ABI_OP_DEVICE_ADD, 10);
    vtsm_abi_put_tstr(m, "dev", dev);
    assert_int_equal(e2e_abi_send(fd, m), 0);
    cbor_item_t *r = e2e_abi_recv(fd);
    assert_non_null(r);
    assert_int_equal(e2e_op(r), VTSM_ABI_OP_RESULT);
    cbor_decref(&r);
    m = vtsm_abi_request_msg(VTSM_ABI_OP_DEVICE_CONNECT, 11);
    vtsm_abi_put_tstr(m, "dev", dev);
    assert_int_equal(e2e_abi_send(fd, m), 0);
    r = e2e_abi_recv(fd);
    assert_non_null(r);
    assert_int_equal(e2e_op(r), VTSM_ABI_OP_DOE_PENDING);
    assert_int_equal(vtsm_abi_get_uint(r, "seq", seq_out), VTSM_OK);
    if (pending_out)
        *pending_out = r;
    else
        cbor_decref(&r);
    return fd;
}

static void wait_status(struct e2e *e, const char *dev, const char *state)
{
    static struct e2e_run r;
    char want[64];
    snprintf(want, sizeof(want), "\"state\":\"%s\"", state);
    for (int i = 0; i < 200; i++) {
        const char *argv[] = {"--json", "status", dev, NULL};
        e2e_host(e, &r, argv);
        if (r.status == 0 && strstr(r.out, want))
            return;
        usleep(20000);
    }
    fail_msg("%s never reached %s: %s", dev, state, r.out);
}

static void test_stray_doe_response_does_not_disturb(void **state)
{
    struct e2e *e = *state;
    uint64_t seq;
    int fd = start_connect_raw(e, "0000:02:00.0", &seq, NULL);
    /* wrong seq, wrong id, unknown device: each refused, the exchange stays pending */
    uint8_t junk[8] = {1, 0, 1, 0, 2, 0, 0, 0};
    assert_int_equal(
        e2e_abi_send(fd, vtsm_abi_doe_response_msg(11, "0000:02:00.0", seq + 5, junk, 8, NULL)), 0);
    expect_error(fd, "abi_sequence", "ABI.5");
    assert_int_equal(
        e2e_abi_send(fd, vtsm_abi_doe_response_msg(99, "0000:02:00.0", seq, junk, 8, NULL)), 0);
    expect_error(fd, "abi_sequence", "ABI.5");
    assert_int_equal(
        e2e_abi_send(fd, vtsm_abi_doe_response_msg(11, "0000:7f:00.0", seq, junk, 8, NULL)), 0);
    expect_error(fd, "abi_sequence", "ABI.5");
    wait_status(e, "0000:02:00.0", "connecting");
    close(fd);
    wait_status(e, "0000:02:00.0", "unconnected");
}

static void test_second_requester_on_busy_device(void **state)
{
    struct e2e *e = *state;
    static struct e2e_run r;
    char doe[64];
    uint64_t seq;
    int port = e2e_devemu(e, NULL);
    assert_true(port > 0);
    int fd = start_connect_raw(e, "0000:0c:00.0", &seq, NULL);
    /* While the raw client holds the DOE mailbox, a second connect is refused... */
    const char *argv[] = {"connect", "0000:0c:00.0", "--doe", e2e_doe(doe, sizeof(doe), port),
                          NULL};
    assert_int_equal(e2e_host(e, &r, argv), 1);
    E2E_HAS(r.err, "failed: busy (core): ");
    E2E_HAS(r.err, " [rule PDEV.6]\n");
    /* ...while another device proceeds concurrently. */
    const char *argv2[] = {"connect", "0000:10:00.0", "--doe", e2e_doe(doe, sizeof(doe), port),
                           NULL};
    if (e2e_host(e, &r, argv2) != 0)
        fail_msg("other device failed: %s", r.err);
    /* The host disconnects in the middle of the connect: the half-made session is freed
     * and the device can be connected again. */
    close(fd);
    wait_status(e, "0000:0c:00.0", "unconnected");
    const char *rec[] = {"reclaim", "0000:10:00.0", "--doe", e2e_doe(doe, sizeof(doe), port), NULL};
    assert_int_equal(e2e_host(e, &r, rec), 0);
    if (e2e_host(e, &r, argv) != 0)
        fail_msg("reconnect after aborted connect failed: %s", r.err);
}

static void test_host_disconnects_mid_session_setup(void **state)
{
    struct e2e *e = *state;
    static struct e2e_run r;
    char doe[64];
    int port = e2e_devemu(e, NULL);
    assert_true(port > 0);
    uint64_t seq;
    cbor_item_t *pending = NULL;
    int fd = start_connect_raw(e, "0000:0f:00.0", &seq, &pending);
    /* Carry the exchanges to the device for a while (discovery, VCA, digests,
     * certificate), then vanish in the middle of the connect. */
    int dev_fd = -1;
    snprintf(doe, sizeof(doe), "127.0.0.1:%d", port);
    assert_int_equal(vtsm_tcp_connect(doe, &dev_fd), VTSM_OK);
    struct vtsm_buf rsp = {0};
    for (int i = 0; i < 8; i++) {
        if (!pending)
            pending = e2e_abi_recv(fd);
        assert_non_null(pending);
        assert_int_equal(e2e_op(pending), VTSM_ABI_OP_DOE_PENDING);
        const uint8_t *obj;
        size_t len;
        uint32_t cmd, tt;
        assert_int_equal(vtsm_abi_get_uint(pending, "seq", &seq), VTSM_OK);
        assert_int_equal(vtsm_abi_get_bytes(pending, "object", &obj, &len), VTSM_OK);
        assert_int_equal(
            vtsm_sock_send(dev_fd, VTSM_SOCK_CMD_NORMAL, VTSM_SOCK_TRANSPORT_PCI_DOE, obj, len),
            VTSM_OK);
        assert_int_equal(vtsm_sock_recv(dev_fd, &cmd, &tt, &rsp, 1 << 20, 5000), VTSM_OK);
        cbor_decref(&pending);
        assert_int_equal(e2e_abi_send(fd, vtsm_abi_doe_response_msg(11, "0000:0f:00.0", seq,
                                                                    rsp.data, rsp.len, NULL)),
                         0);
    }
    vtsm_buf_free(&rsp);
    close(fd);
    close(dev_fd);
    wait_status(e, "0000:0f:00.0", "unconnected");
    /* The same device connects cleanly afterwards. */
    const char *argv[] = {"connect", "0000:0f:00.0", "--doe", e2e_doe(doe, sizeof(doe), port),
                          NULL};
    if (e2e_host(e, &r, argv) != 0)
        fail_msg("connect after host vanished failed: %s", r.err);
    wait_status(e, "0000:0f:00.0", "connected");
}

/* An untrusted host cannot make tsmd hold unbounded state: devices (PDEV.11) and
 * connections are capped, each with a clear error, and tsmd keeps serving. */
static void test_resource_limits(void **state)
{
    struct e2e *e = *state;
    int fd = e2e_abi_connect(e, true);
    assert_true(fd >= 0);
    char dev[32];
    for (int i = 0; i <= 1024; i++) {
        cbor_item_t *m = vtsm_abi_request_msg(VTSM_ABI_OP_DEVICE_ADD, 100 + (uint64_t)i);
        snprintf(dev, sizeof(dev), "%04x:%02x:00.0", i >> 8, i & 0xff);
        vtsm_abi_put_tstr(m, "dev", dev);
        assert_int_equal(e2e_abi_send(fd, m), 0);
        cbor_item_t *r = e2e_abi_recv(fd);
        assert_non_null(r);
        if (i < 1024) {
            assert_int_equal(e2e_op(r), VTSM_ABI_OP_RESULT);
        } else {
            struct vtsm_abi_error err;
            assert_int_equal(vtsm_abi_parse_error(r, &err), VTSM_OK);
            assert_int_equal(err.status, VTSM_E_LIMIT);
            assert_string_equal(err.name, "limit");
            assert_string_equal(err.rule_id, "PDEV.11");
        }
        cbor_decref(&r);
    }
    /* connections are capped per role: 64 hosts (this one included), 128 guests, 48 more
     * waiting for HELLO; each one over is told why it is refused, and guests or silent
     * connections at their caps never keep a host out */
    int fds[256];
    int n = 0;
    for (; n < 63; n++) {
        fds[n] = e2e_abi_connect(e, true);
        assert_true(fds[n] >= 0);
    }
    int extra = e2e_abi_connect(e, false);
    assert_true(extra >= 0);
    assert_int_equal(e2e_abi_send(extra, vtsm_abi_hello_msg(1, VTSM_ABI_ROLE_HOST, "e2e")), 0);
    expect_error(extra, "limit", "ABI.10");
    close(extra);
    cbor_item_t *r;
    close(fds[--n]); /* a host slot is free again */
    for (int g = 0; g < 128; g++, n++) {
        fds[n] = e2e_abi_connect(e, false);
        assert_true(fds[n] >= 0);
        assert_int_equal(e2e_abi_send(fds[n], vtsm_abi_hello_msg(1, VTSM_ABI_ROLE_GUEST, "g")), 0);
        r = e2e_abi_recv(fds[n]);
        assert_non_null(r);
        assert_int_equal(e2e_op(r), VTSM_ABI_OP_RESULT);
        cbor_decref(&r);
    }
    extra = e2e_abi_connect(e, false);
    assert_int_equal(e2e_abi_send(extra, vtsm_abi_hello_msg(1, VTSM_ABI_ROLE_GUEST, "g")), 0);
    expect_error(extra, "limit", "ABI.10");
    close(extra);
    int first_silent = n;
    for (int u = 0; u < 48; u++, n++) {
        fds[n] = e2e_abi_connect(e, false);
        assert_true(fds[n] >= 0);
    }
    /* a 49th connection evicts the one that waited longest for its HELLO, with a reason */
    extra = e2e_abi_connect(e, false);
    assert_true(extra >= 0);
    expect_error(fds[first_silent], "limit", "ABI.10");
    close(extra);
    /* and still a host gets in */
    int host = e2e_abi_connect(e, true);
    assert_true(host >= 0);
    close(host);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    close(fd);
    /* once the connections are gone tsmd serves again */
    for (int i = 0; i < 100; i++) {
        int probe = e2e_abi_connect(e, true);
        if (probe >= 0) {
            close(probe);
            return;
        }
        usleep(10000);
    }
    fail_msg("tsmd did not serve again after the connections closed");
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_malformed_cbor, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_oversized_frame_closes_connection, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_opcode, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_wrong_abi_version, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_request_before_hello, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_key_refused, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_bad_value_refused, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_guest_role_cannot_connect, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_stray_doe_response_does_not_disturb, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_second_requester_on_busy_device, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_resource_limits, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_host_disconnects_mid_session_setup, e2e_fixture_setup,
                                        e2e_fixture_teardown),
    };
    return cmocka_run_group_tests_name("e2e_abi", tests, NULL, NULL);
}
