/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The public host-shim API (include/vtsm/vtsm_host.h) against a real tsmd and a real
 * tsm-devemu: the verb functions generated from the operation table, requests checked
 * before they are sent, results read through accessors, and the header pulling in no
 * CBOR library.
 */
#include "vtsm_guest.h"
#include "vtsm_host.h"

#ifdef LIBCBOR_H_
#error "the public host-shim and guest-shim headers must not include <cbor.h>"
#endif

#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "e2e_util.h"

#define DEV "0000:05:00.0"

struct frames {
    unsigned to_tsm;
};

static void count_frames(void *ctx, enum vtsm_host_trace_dir dir, const char *dev, const uint8_t *p,
                         size_t len)
{
    (void)dev, (void)p, (void)len;
    if (dir == VTSM_HOST_TRACE_TO_TSM)
        ((struct frames *)ctx)->to_tsm++;
}

struct done_rec {
    bool done;
    vtsm_status st;
    bool had_result;
    char state[32];
};

static void on_done(void *ctx, vtsm_status st, const struct vtsm_result *r)
{
    struct done_rec *d = ctx;
    d->done = true;
    d->st = st;
    d->had_result = r != NULL;
    if (r && vtsm_result_text(r, "dev", d->state, sizeof(d->state)) != VTSM_OK)
        d->state[0] = '\0';
}

static void test_verbs_from_the_table(void **state)
{
    struct e2e *e = *state;
    int port = e2e_devemu(e, NULL);
    assert_true(port > 0);
    struct frames fr = {0};
    struct vtsm_host_config cfg = {.socket_path = e->sock, .trace = count_frames, .trace_ctx = &fr};
    struct vtsm_host *h = NULL;
    assert_int_equal(vtsm_host_open_cfg(&cfg, &h), VTSM_OK);
    assert_int_equal(vtsm_host_role(h), VTSM_ROLE_HOST);
    char spec[64];
    struct vtsm_doe_tcp *t = NULL;
    assert_int_equal(vtsm_doe_tcp_open(e2e_doe(spec, sizeof(spec), port), &t), VTSM_OK);
    assert_int_equal(vtsm_host_register_doe(h, DEV, vtsm_doe_tcp_fn, t), VTSM_OK);

    struct vtsm_result *res = NULL;
    struct vtsm_request add = {.dev = DEV, .root_port = 0, .set = VTSM_SET(ROOT_PORT)};
    assert_int_equal(vtsm_host_device_add(h, &add, &res), VTSM_OK);
    assert_non_null(res);
    assert_false(vtsm_result_is_error(res));
    vtsm_result_free(res);

    /* refused before anything is sent: a field the verb does not take (ABI.9), a value
     * out of range (ABI.8), a required field missing (ABI.8) */
    unsigned sent = fr.to_tsm;
    struct vtsm_request bad = {.dev = DEV, .tdi = 1, .set = VTSM_SET(TDI)};
    assert_int_equal(vtsm_host_device_connect(h, &bad, &res), VTSM_E_ABI_ARG);
    assert_null(res);
    assert_int_equal(vtsm_host_last_error(h)->rule, VTSM_RULE_ABI_9);
    struct vtsm_request far = {.dev = DEV, .ide_streams = 99, .set = VTSM_SET(IDE_STREAMS)};
    assert_int_equal(vtsm_host_device_connect(h, &far, NULL), VTSM_E_ABI_ARG);
    assert_int_equal(vtsm_host_last_error(h)->rule, VTSM_RULE_ABI_8);
    struct vtsm_request nodev = {0};
    assert_int_equal(vtsm_host_tdi_unbind(h, &nodev, NULL), VTSM_E_ABI_ARG);
    assert_int_equal(vtsm_host_request(h, VTSM_OP_HELLO, &nodev, NULL), VTSM_E_INVAL);
    assert_int_equal(fr.to_tsm, sent);

    /* connect with one IDE stream; the result read by path */
    struct vtsm_request conn = {.dev = DEV, .ide_streams = 1, .set = VTSM_SET(IDE_STREAMS)};
    vtsm_status st = vtsm_host_device_connect(h, &conn, &res);
    if (st != VTSM_OK)
        fail_msg("connect: %s", vtsm_host_last_error(h)->detail);
    char text[128];
    assert_int_equal(vtsm_result_text(res, "dev", text, sizeof(text)), VTSM_OK);
    assert_string_equal(text, DEV);
    assert_int_equal(vtsm_result_text(res, "dev", text, 4), VTSM_E_TOO_SMALL);
    assert_int_equal(vtsm_result_text(res, "no_such_key", text, sizeof(text)), VTSM_E_NOT_FOUND);
    uint64_t u = 0;
    assert_int_equal(vtsm_result_uint(res, "dev", &u), VTSM_E_ABI_ARG);
    size_t n = 0;
    assert_int_equal(vtsm_result_count(res, "", &n), VTSM_OK);
    assert_true(n > 3);
    size_t clen = 0;
    const uint8_t *cb = vtsm_result_cbor(res, &clen);
    assert_non_null(cb);
    assert_true(clen > 16);
    assert_int_equal(cb[0] & 0xE0, 0xA0); /* a map */
    char *json = vtsm_result_json(res);
    assert_non_null(json);
    assert_non_null(strstr(json, "\"dev\":\"" DEV "\""));
    free(json);
    vtsm_result_free(res);

    /* a TVM (a guest credential's public key) and a bound TDI */
    uint8_t key[VTSM_ABI_GUEST_KEY_SIZE];
    char key_path[128];
    snprintf(key_path, sizeof(key_path), "%s/api.key", e->dir);
    assert_int_equal(vtsm_guest_keygen(key_path), VTSM_OK);
    struct vtsm_guest *g = NULL;
    assert_int_equal(vtsm_guest_open(key_path, 0, &g), VTSM_OK);
    vtsm_guest_pubkey(g, key);
    vtsm_guest_close(g);
    struct vtsm_request tc = {.name = "api-tvm", .guest_key = key, .guest_key_len = sizeof(key)};
    assert_int_equal(vtsm_host_tvm_create(h, &tc, &res), VTSM_OK);
    uint64_t tvm = 0;
    assert_int_equal(vtsm_result_uint(res, "tvm", &tvm), VTSM_OK);
    assert_true(tvm > 0);
    vtsm_result_free(res);
    struct vtsm_request bind = {
        .dev = DEV, .tdi = 0, .tvm = tvm, .set = VTSM_SET(TDI) | VTSM_SET(TVM)};
    st = vtsm_host_tdi_bind(h, &bind, &res);
    if (st != VTSM_OK)
        fail_msg("bind: %s", vtsm_host_last_error(h)->detail);
    assert_int_equal(vtsm_result_text(res, "state", text, sizeof(text)), VTSM_OK);
    assert_string_equal(text, "CONFIG_LOCKED");
    bool b = true;
    assert_int_equal(vtsm_result_bool(res, "mmio_enabled", &b), VTSM_OK);
    assert_false(b);
    vtsm_result_free(res);

    /* the TSM refuses: the ERROR comes back as the result, with its rule */
    res = NULL;
    st = vtsm_host_tdi_bind(h, &bind, &res);
    assert_int_not_equal(st, VTSM_OK);
    assert_true(vtsm_host_last_error(h)->from_tsm);
    assert_int_not_equal(vtsm_host_last_error(h)->rule, VTSM_RULE_NONE);
    assert_true(strncmp(vtsm_host_last_error(h)->rule_id, "TDI.", 4) == 0);
    assert_non_null(res);
    assert_true(vtsm_result_is_error(res));
    assert_int_equal(vtsm_result_text(res, "rule", text, sizeof(text)), VTSM_OK);
    assert_string_equal(text, vtsm_host_last_error(h)->rule_id);
    vtsm_result_free(res);

    /* the guest: a verdict on its TDI with evidence read through the public result */
    assert_int_equal(vtsm_guest_open(key_path, (uint32_t)tvm, &g), VTSM_OK);
    struct vtsm_guest_decision dec;
    st = vtsm_guest_decide(g, h, DEV, 0, NULL, NULL, &dec);
    if (st != VTSM_OK || dec.verdict != VTSM_GUEST_ACCEPT)
        fail_msg("decide: %d %s", (int)st, dec.reason);
    assert_int_equal(vtsm_result_uint(dec.claims, "tvm", &u), VTSM_OK);
    assert_int_equal(u, tvm);
    assert_int_equal(vtsm_result_text(dec.info, "state", text, sizeof(text)), VTSM_OK);
    assert_string_equal(text, "CONFIG_LOCKED");
    vtsm_guest_decision_clear(&dec);
    /* a request the guest builds, relayed by the host as GUEST_REQUEST fields; the same
     * envelope again is a replay (GUEST.2) */
    struct vtsm_guest_envelope env;
    assert_int_equal(
        vtsm_guest_build(g, VTSM_ABI_GOP_LIST, NULL, VTSM_GUEST_NO_TDI, NULL, NULL, &env), VTSM_OK);
    assert_int_equal(env.tvm, tvm);
    struct vtsm_request gr = {.tvm = env.tvm,
                              .body = env.body,
                              .body_len = env.body_len,
                              .sig = env.sig,
                              .sig_len = sizeof(env.sig),
                              .set = VTSM_SET(TVM)};
    st = vtsm_host_guest_request(h, &gr, &res);
    if (st != VTSM_OK)
        fail_msg("relay LIST: %s", vtsm_host_last_error(h)->detail);
    assert_int_equal(vtsm_result_uint(res, "tvm", &u), VTSM_OK);
    assert_int_equal(u, tvm);
    assert_int_equal(vtsm_result_count(res, "tdis", &n), VTSM_OK);
    assert_int_equal(n, 1);
    vtsm_result_free(res);
    assert_int_equal(vtsm_host_guest_request(h, &gr, NULL), VTSM_E_REPLAY);
    assert_int_equal(vtsm_host_last_error(h)->rule, VTSM_RULE_GUEST_2);
    vtsm_guest_envelope_clear(&env);
    assert_null(env.body);
    /* the same as bytes: encoded by the guest, relayed unread, answered as bytes */
    assert_int_equal(
        vtsm_guest_build(g, VTSM_ABI_GOP_LIST, NULL, VTSM_GUEST_NO_TDI, NULL, NULL, &env), VTSM_OK);
    uint8_t *enc = NULL;
    size_t enc_len = 0;
    assert_int_equal(vtsm_guest_envelope_encode(&env, &enc, &enc_len), VTSM_OK);
    vtsm_guest_envelope_clear(&env);
    sent = fr.to_tsm;
    assert_int_equal(vtsm_host_request_encoded(h, VTSM_OP_GUEST_REQUEST, enc, enc_len - 1, NULL),
                     VTSM_E_ABI_MALFORMED);
    assert_int_equal(vtsm_host_request_encoded(h, VTSM_OP_TDI_BIND, enc, enc_len, NULL),
                     VTSM_E_ABI_ARG); /* not TDI_BIND's fields */
    assert_int_equal(fr.to_tsm, sent);
    st = vtsm_host_request_encoded(h, VTSM_OP_GUEST_REQUEST, enc, enc_len, &res);
    if (st != VTSM_OK)
        fail_msg("relay encoded LIST: %s", vtsm_host_last_error(h)->detail);
    free(enc);
    const uint8_t *wire = vtsm_result_cbor(res, &clen);
    assert_non_null(wire);
    struct vtsm_result *again = NULL;
    assert_int_equal(vtsm_result_decode(wire, clen, &again), VTSM_OK);
    assert_int_equal(vtsm_result_count(again, "tdis", &n), VTSM_OK);
    assert_int_equal(n, 1);
    vtsm_result_free(again);
    assert_int_equal(vtsm_result_decode(wire, clen - 1, &again), VTSM_E_ABI_MALFORMED);
    assert_null(again);
    vtsm_result_free(res);
    vtsm_guest_close(g);

    /* STATUS without a cursor: every page merged; the TDI by path */
    struct vtsm_request sreq = {.dev = DEV};
    assert_int_equal(vtsm_host_status(h, &sreq, &res), VTSM_OK);
    assert_int_equal(vtsm_result_count(res, "devices", &n), VTSM_OK);
    assert_int_equal(n, 1);
    assert_int_equal(vtsm_result_text(res, "devices.0.state", text, sizeof(text)), VTSM_OK);
    assert_string_equal(text, "connected");
    assert_int_equal(vtsm_result_uint(res, "devices.0.bound_tdis", &u), VTSM_OK);
    assert_int_equal(u, 1);
    assert_int_equal(vtsm_result_text(res, "devices.0.tdis.0.state", text, sizeof(text)), VTSM_OK);
    assert_string_equal(text, "CONFIG_LOCKED");
    assert_int_equal(vtsm_result_text(res, "devices.1.state", text, sizeof(text)),
                     VTSM_E_NOT_FOUND);
    assert_int_equal(vtsm_result_text(res, "devices.x", text, sizeof(text)), VTSM_E_ABI_ARG);
    vtsm_result_free(res);

    /* the fd-driven form: reclaim with force, completed from the caller's loop */
    struct done_rec d = {0};
    struct vtsm_request rec = {.dev = DEV, .force = true, .set = VTSM_SET(FORCE)};
    assert_int_equal(vtsm_host_device_reclaim_start(h, &rec, on_done, &d), VTSM_OK);
    assert_false(d.done);
    for (int i = 0; i < 400 && !d.done; i++) {
        struct pollfd pfd = {.fd = vtsm_host_fd(h), .events = POLLIN};
        assert_true(poll(&pfd, 1, 50) >= 0);
        assert_int_equal(vtsm_host_dispatch(h), VTSM_OK);
    }
    assert_true(d.done);
    assert_int_equal(d.st, VTSM_OK);
    assert_true(d.had_result);
    assert_string_equal(d.state, DEV);
    struct vtsm_request sum = {.summary = true, .set = VTSM_SET(SUMMARY)};
    assert_int_equal(vtsm_host_status(h, &sum, &res), VTSM_OK);
    assert_int_equal(vtsm_result_text(res, "devices.0.state", text, sizeof(text)), VTSM_OK);
    assert_string_equal(text, "unconnected");
    vtsm_result_free(res);

    vtsm_host_close(h);
    vtsm_doe_tcp_close(t);
}

/* The request table and the opcode names are one list. */
static void test_op_names(void **state)
{
    (void)state;
    assert_string_equal(vtsm_op_name(VTSM_OP_TDI_BIND), "TDI_BIND");
    assert_int_equal(vtsm_op_parse("tdi_bind"), VTSM_OP_TDI_BIND);
    assert_int_equal(vtsm_op_parse("DEVICE_CONNECT"), VTSM_OP_DEVICE_CONNECT);
    assert_int_equal(vtsm_op_parse("frob"), 0);
    assert_null(vtsm_op_name(0x7F));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_verbs_from_the_table, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test(test_op_names),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
