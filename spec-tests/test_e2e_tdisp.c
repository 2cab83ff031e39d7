/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * End to end, TDISP and TVM ownership: real tsmd + tsm-devemu; the test is the host (via
 * the host shim) and the guests (via the guest shim, their requests relayed by the host).
 *  - lifecycle: connect -> tvm_create -> bind -> guest info (token verified) -> guest
 *    accept -> RUN -> unbind -> reclaim; and hot-plug into a TVM that already runs a TDI;
 *  - ownership and forgery: the host tries to accept, TVM B acts on TVM A's TDI, a guest
 *    request replayed or reordered by the host, a bad tag, the same TDI bound twice, bind
 *    on an unconnected device, reclaim / tvm_destroy with bound TDIs — each refused with
 *    its rule and nothing changed;
 *  - device misbehaviour: bad START nonce, overlapping MMIO ranges or one running past the
 *    64-bit address space (FIRST_PAGE counts 4 KiB pages, so misalignment cannot be encoded), a
 * report whose length changes between chunks, state drift, a device reporting ERROR.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "e2e_host.h"
#include "e2e_util.h"
#include "vtsm_abi.h"
#include "vtsm_crypto.h"
#include "vtsm_guest_cbor.h"
#include "vtsm_tdisp.h"

struct fx {
    struct e2e e;
    struct e2e_host hh;
    int port;
    struct vtsm_guest *ga, *gb;
    uint32_t tvm_a, tvm_b;
};

static const char *const *devemu_args;

static struct vtsm_guest *new_guest(struct fx *f, const char *name, uint32_t *tvm)
{
    struct vtsm_guest *g = NULL;
    assert_int_equal(e2e_host_new_tvm(&f->hh, f->e.dir, name, tvm, &g), 0);
    return g;
}

static int setup(void **state)
{
    static struct fx f;
    memset(&f, 0, sizeof(f));
    if (e2e_setup(&f.e, NULL) != 0)
        return -1;
    f.port = e2e_devemu(&f.e, devemu_args);
    if (f.port <= 0 || e2e_host_open(&f.e, &f.hh) != 0 ||
        e2e_host_add_device(&f.hh, "dev0", f.port, 0) != 0)
        return -1;
    struct vtsm_host_connect_opts o = {.ide_streams = 1};
    cbor_item_t *res = NULL;
    if (vtsm_host_device_connect_cbor(f.hh.h, "dev0", &o, &res) != VTSM_OK)
        return -1;
    cbor_decref(&res);
    f.ga = new_guest(&f, "tvmA", &f.tvm_a);
    f.gb = new_guest(&f, "tvmB", &f.tvm_b);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    vtsm_guest_close(f->ga);
    vtsm_guest_close(f->gb);
    e2e_host_close(&f->hh);
    return e2e_teardown(&f->e);
}

static const char *last_err(struct fx *f)
{
    return vtsm_host_last_error(f->hh.h)->detail;
}

static void bind(struct fx *f, uint32_t tdi, uint32_t tvm)
{
    cbor_item_t *res = NULL;
    if (vtsm_host_tdi_bind_cbor(f->hh.h, "dev0", tdi, tvm, 0, &res) != VTSM_OK)
        fail_msg("bind %u: %s", tdi, last_err(f));
    char s[32];
    assert_string_equal(e2e_str(res, "state", s, sizeof(s)), "CONFIG_LOCKED");
    cbor_decref(&res);
}

/* The TDI's state as the host sees it in STATUS. */
static const char *tdi_state(struct fx *f, uint32_t tdi, char *buf, size_t cap)
{
    cbor_item_t *res = NULL;
    buf[0] = '\0';
    assert_int_equal(vtsm_host_status_cbor(f->hh.h, "dev0", &res), VTSM_OK);
    const cbor_item_t *tdis = e2e_get(res, "devices.0.tdis");
    for (size_t i = 0; tdis && i < cbor_array_size(tdis); i++) {
        const cbor_item_t *t = cbor_array_handle(tdis)[i];
        if (e2e_uint(t, "tdi") == tdi)
            e2e_str(t, "state", buf, cap);
    }
    cbor_decref(&res);
    if (!buf[0])
        snprintf(buf, cap, "CONFIG_UNLOCKED"); /* never used */
    return buf;
}

static const char *err_name(struct fx *f);
static vtsm_status guest(struct fx *f, struct vtsm_guest *g, unsigned gop, uint32_t tdi,
                         const uint8_t *nonce, cbor_item_t **res)
{
    cbor_item_t *r = NULL;
    vtsm_status st = vtsm_guest_call_cbor(g, f->hh.h, gop, "dev0", tdi, nonce, NULL, &r);
    if (st && getenv("E2E_DEBUG"))
        fprintf(stderr, "guest 0x%x tdi %u: %s: %s\n", gop, tdi, err_name(f), last_err(f));
    if (res)
        *res = r;
    else if (r)
        cbor_decref(&r);
    return st;
}

static const char *err_name(struct fx *f)
{
    return vtsm_host_last_error(f->hh.h)->name;
}

/* The TSM's last ERROR carried rule id (NULL: no rule field), and the shim parsed it. */
static void expect_rule(struct fx *f, const char *id)
{
    const struct vtsm_host_error *e = vtsm_host_last_error(f->hh.h);
    if (!e->from_tsm || strcmp(e->rule_id, id ? id : "") != 0 ||
        e->rule != (id ? vtsm_rule_parse(id) : VTSM_RULE_NONE) || (id && e->rule == VTSM_RULE_NONE))
        fail_msg("ERROR %s rule '%s' (%s), wanted rule %s", e->name, e->rule_id, e->detail,
                 id ? id : "none");
}

/* ---------------------------------------------------------------- forgery and ownership */

static void test_host_cannot_accept(void **state)
{
    struct fx *f = *state;
    char s[32];
    bind(f, 1, f->tvm_a);
    /* the host builds an ACCEPT for TVM A, signed with a key of its own */
    char path[128];
    snprintf(path, sizeof(path), "%s/host.key", f->e.dir);
    assert_int_equal(vtsm_guest_keygen(path), VTSM_OK);
    struct vtsm_guest *forger = NULL;
    assert_int_equal(vtsm_guest_open(path, f->tvm_a, &forger), VTSM_OK);
    assert_int_equal(guest(f, forger, VTSM_ABI_GOP_ACCEPT, 1, NULL, NULL), VTSM_E_AUTH);
    assert_string_equal(err_name(f), "auth");
    expect_rule(f, "GUEST.1");
    vtsm_guest_close(forger);
    assert_string_equal(tdi_state(f, 1, s, sizeof(s)), "CONFIG_LOCKED");
    /* and there is no host verb that accepts: the opcode space has none */
    assert_null(vtsm_abi_op_name(0x34));
}

static void test_other_tvm_refused(void **state)
{
    struct fx *f = *state;
    char s[32];
    bind(f, 1, f->tvm_a);
    uint8_t nonce[32] = {1};
    assert_int_equal(guest(f, f->gb, VTSM_ABI_GOP_INFO, 1, NULL, NULL), VTSM_E_NOT_OWNER);
    expect_rule(f, "TDI.6");
    assert_int_equal(guest(f, f->gb, VTSM_ABI_GOP_INFO, 1, nonce, NULL), VTSM_E_NOT_OWNER);
    assert_int_equal(guest(f, f->gb, VTSM_ABI_GOP_ACCEPT, 1, NULL, NULL), VTSM_E_NOT_OWNER);
    expect_rule(f, "TDI.5");
    assert_string_equal(tdi_state(f, 1, s, sizeof(s)), "CONFIG_LOCKED");
    /* B's own list is empty; A's has the TDI */
    cbor_item_t *res = NULL;
    assert_int_equal(vtsm_guest_call_cbor(f->gb, f->hh.h, VTSM_ABI_GOP_LIST, NULL,
                                          VTSM_GUEST_NO_TDI, NULL, NULL, &res),
                     VTSM_OK);
    assert_int_equal(cbor_array_size(e2e_get(res, "tdis")), 0);
    cbor_decref(&res);
    assert_int_equal(vtsm_guest_call_cbor(f->ga, f->hh.h, VTSM_ABI_GOP_LIST, NULL,
                                          VTSM_GUEST_NO_TDI, NULL, NULL, &res),
                     VTSM_OK);
    assert_int_equal(cbor_array_size(e2e_get(res, "tdis")), 1);
    cbor_decref(&res);
}

static void test_replayed_and_reordered_guest_requests(void **state)
{
    struct fx *f = *state;
    char s[32];
    bind(f, 1, f->tvm_a);
    /* the guest's INFO: what its ACCEPT binds */
    assert_int_equal(guest(f, f->ga, VTSM_ABI_GOP_INFO, 1, NULL, NULL), VTSM_OK);
    cbor_item_t *req1 = NULL, *req2 = NULL, *res = NULL;
    assert_int_equal(vtsm_guest_build_cbor(f->ga, VTSM_ABI_GOP_INFO, "dev0", 1, NULL, NULL, &req1),
                     VTSM_OK);
    assert_int_equal(
        vtsm_guest_build_cbor(f->ga, VTSM_ABI_GOP_ACCEPT, "dev0", 1, NULL, NULL, &req2), VTSM_OK);
    /* reordered: the later request (seq n+1, ACCEPT) is held back, the earlier goes first */
    assert_int_equal(vtsm_host_guest_relay_cbor(f->hh.h, req1, &res), VTSM_OK);
    cbor_decref(&res);
    /* replayed: the same signed INFO again */
    assert_int_equal(vtsm_host_guest_relay_cbor(f->hh.h, req1, &res), VTSM_E_REPLAY);
    expect_rule(f, "GUEST.2");
    if (res)
        cbor_decref(&res);
    /* a request older than the last accepted one is refused too */
    cbor_item_t *req3 = NULL;
    assert_int_equal(
        vtsm_guest_build_cbor(f->ga, VTSM_ABI_GOP_LIST, NULL, VTSM_GUEST_NO_TDI, NULL, NULL, &req3),
        VTSM_OK);
    assert_int_equal(vtsm_host_guest_relay_cbor(f->hh.h, req3, &res), VTSM_OK); /* seq n+2 */
    cbor_decref(&res);
    assert_int_equal(vtsm_host_guest_relay_cbor(f->hh.h, req2, &res), VTSM_E_REPLAY); /* seq n+1 */
    if (res)
        cbor_decref(&res);
    assert_string_equal(tdi_state(f, 1, s, sizeof(s)), "CONFIG_LOCKED"); /* ACCEPT never ran */
    cbor_decref(&req1);
    cbor_decref(&req2);
    cbor_decref(&req3);
}

static void test_bad_tag(void **state)
{
    struct fx *f = *state;
    char s[32];
    bind(f, 1, f->tvm_a);
    assert_int_equal(guest(f, f->ga, VTSM_ABI_GOP_INFO, 1, NULL, NULL), VTSM_OK);
    for (int which = 0; which < 2; which++) {
        cbor_item_t *req = NULL, *res = NULL;
        assert_int_equal(
            vtsm_guest_build_cbor(f->ga, VTSM_ABI_GOP_ACCEPT, "dev0", 1, NULL, NULL, &req),
            VTSM_OK);
        /* flip one bit of the signature, or of the signed body */
        cbor_item_t *v = (cbor_item_t *)vtsm_abi_find(req, which ? "body" : "sig");
        assert_non_null(v);
        cbor_bytestring_handle(v)[which ? 3 : 10] ^= 0x01;
        assert_int_equal(vtsm_host_guest_relay_cbor(f->hh.h, req, &res), VTSM_E_AUTH);
        expect_rule(f, "GUEST.1");
        if (res)
            cbor_decref(&res);
        cbor_decref(&req);
    }
    assert_string_equal(tdi_state(f, 1, s, sizeof(s)), "CONFIG_LOCKED");
    /* the genuine guest still gets through afterwards */
    assert_int_equal(guest(f, f->ga, VTSM_ABI_GOP_ACCEPT, 1, NULL, NULL), VTSM_OK);
    assert_string_equal(tdi_state(f, 1, s, sizeof(s)), "RUN");
}

static void test_bound_twice_and_unconnected(void **state)
{
    struct fx *f = *state;
    cbor_item_t *res = NULL;
    char s[32];
    bind(f, 1, f->tvm_a);
    assert_int_equal(vtsm_host_tdi_bind_cbor(f->hh.h, "dev0", 1, f->tvm_b, 0, &res), VTSM_E_STATE);
    expect_rule(f, "TDI.1");
    if (res)
        cbor_decref(&res);
    assert_string_equal(tdi_state(f, 1, s, sizeof(s)), "CONFIG_LOCKED");
    /* the owner did not change either */
    assert_int_equal(guest(f, f->gb, VTSM_ABI_GOP_ACCEPT, 1, NULL, NULL), VTSM_E_NOT_OWNER);
    /* a device that is registered but not connected */
    int p2 = e2e_devemu(&f->e, NULL);
    assert_int_equal(e2e_host_add_device(&f->hh, "dev1", p2, 0), 0);
    assert_int_equal(vtsm_host_tdi_bind_cbor(f->hh.h, "dev1", 0, f->tvm_a, 0, &res), VTSM_E_STATE);
    expect_rule(f, "PDEV.10");
    if (res)
        cbor_decref(&res);
    /* unknown TVM */
    assert_int_equal(vtsm_host_tdi_bind_cbor(f->hh.h, "dev0", 2, 999, 0, &res), VTSM_E_NOT_FOUND);
    if (res)
        cbor_decref(&res);
}

static void test_reclaim_and_destroy_with_bound_tdis(void **state)
{
    struct fx *f = *state;
    cbor_item_t *res = NULL;
    bind(f, 0, f->tvm_a);
    bind(f, 1, f->tvm_b);
    assert_int_equal(guest(f, f->ga, VTSM_ABI_GOP_ACCEPT, 0, NULL, NULL), VTSM_OK);
    assert_int_equal(vtsm_host_tvm_destroy_cbor(f->hh.h, f->tvm_a, &res), VTSM_E_STATE);
    expect_rule(f, "TVM.2");
    if (res)
        cbor_decref(&res);
    assert_int_equal(vtsm_host_device_reclaim_cbor(f->hh.h, "dev0", &res), VTSM_E_STATE);
    expect_rule(f, "PDEV.9");
    if (res)
        cbor_decref(&res);
    /* with force: every bound TDI is stopped first */
    assert_int_equal(vtsm_host_device_reclaim_opts_cbor(f->hh.h, "dev0", true, &res), VTSM_OK);
    assert_int_equal(cbor_array_size(e2e_get(res, "unbound_tdis")), 2);
    cbor_decref(&res);
    assert_int_equal(vtsm_host_tvm_destroy_cbor(f->hh.h, f->tvm_a, &res), VTSM_OK);
    cbor_decref(&res);
}

/* ---------------------------------------------------------------- device misbehaviour */

static const char *const f_bad_nonce[] = {"--fault", "tdisp-bad-nonce", NULL};
static const char *const f_overlap[] = {"--fault", "tdisp-overlap-mmio", NULL};
static const char *const f_overflow[] = {"--fault", "tdisp-mmio-overflow", NULL};
static const char *const f_length[] = {"--fault", "tdisp-report-length-change", NULL};
static const char *const f_drift[] = {"--fault", "tdisp-state-drift", NULL};
static const char *const f_error[] = {"--fault", "tdisp-error-state", NULL};
static const char *const f_meas_drift[] = {"--fault", "meas-drift-after-lock", NULL};
static const char *const f_two_slots[] = {"--slot", "1=rogue", NULL};

static void bind_refused(void **state, const char *want_detail)
{
    struct fx *f = *state;
    cbor_item_t *res = NULL;
    char s[32];
    assert_int_equal(vtsm_host_tdi_bind_cbor(f->hh.h, "dev0", 1, f->tvm_a, 0, &res),
                     VTSM_E_PEER_MALFORMED);
    expect_rule(f, NULL); /* the device's fault: which one, only the detail says */
    E2E_HAS(last_err(f), want_detail);
    if (res)
        cbor_decref(&res);
    /* the TSM stopped the TDI again: unbound, unowned, and bindable once more */
    assert_string_equal(tdi_state(f, 1, s, sizeof(s)), "CONFIG_UNLOCKED");
    assert_int_equal(guest(f, f->ga, VTSM_ABI_GOP_INFO, 1, NULL, NULL), VTSM_E_NOT_OWNER);
}

static void test_report_overlapping_mmio(void **s)
{
    bind_refused(s, "overlap");
}
static void test_report_mmio_past_address_space(void **s)
{
    bind_refused(s, "runs past the top of the 64-bit address space");
}
static void test_report_length_changes(void **s)
{
    bind_refused(s, "length changed");
}

/* want_rule: the TSM's rule (NULL: a device's refusal, which no TSM rule names: then
 * want_detail, the device's TDISP ErrorCode, says which). */
static void accept_to_error(void **state, vtsm_status want, const char *want_rule,
                            const char *want_detail)
{
    struct fx *f = *state;
    char s[32];
    bind(f, 1, f->tvm_a);
    assert_int_equal(guest(f, f->ga, VTSM_ABI_GOP_ACCEPT, 1, NULL, NULL), want);
    expect_rule(f, want_rule);
    if (want_detail)
        E2E_HAS(last_err(f), want_detail);
    /* the TDI is in ERROR, MMIO and DMA stay disabled */
    assert_string_equal(tdi_state(f, 1, s, sizeof(s)), "ERROR");
    cbor_item_t *res = NULL;
    assert_int_equal(guest(f, f->ga, VTSM_ABI_GOP_INFO, 1, NULL, &res), VTSM_OK);
    assert_false(e2e_bool(res, "mmio_enabled"));
    assert_false(e2e_bool(res, "dma_enabled"));
    cbor_decref(&res);
    /* a second accept is refused by the table; unbind from ERROR works */
    assert_int_equal(guest(f, f->ga, VTSM_ABI_GOP_ACCEPT, 1, NULL, NULL), VTSM_E_STATE);
    expect_rule(f, "TDI.4");
    assert_int_equal(vtsm_host_tdi_unbind_cbor(f->hh.h, "dev0", 1, &res), VTSM_OK);
    cbor_decref(&res);
    assert_string_equal(tdi_state(f, 1, s, sizeof(s)), "CONFIG_UNLOCKED");
}

static void test_device_refuses_start_nonce(void **s)
{
    accept_to_error(s, VTSM_E_PEER_ERROR, NULL, "INVALID_NONCE");
}
static void test_device_state_drift(void **s)
{
    accept_to_error(s, VTSM_E_PEER_STATE, "TDI.8", NULL);
}
static void test_device_reports_error(void **s)
{
    accept_to_error(s, VTSM_E_PEER_STATE, "TDI.7", NULL);
}

/* ---------------------------------------------------------------- ACCEPT binds what was verified
 */

/* The host unbinds and binds the TDI again with other lock flags between the guest's
 * verified INFO and its ACCEPT: the ACCEPT carries the old binding and is refused. */
static void test_rebind_between_info_and_accept(void **state)
{
    struct fx *f = *state;
    char s[32];
    cbor_item_t *res = NULL, *claims = NULL;
    bind(f, 1, f->tvm_a);

    /* the guest verifies the TDI (token, claims, digests): the binding it will accept */
    uint8_t nonce[32];
    assert_int_equal(vtsm_random(nonce, sizeof(nonce)), VTSM_OK);
    assert_int_equal(guest(f, f->ga, VTSM_ABI_GOP_INFO, 1, nonce, &res), VTSM_OK);
    assert_int_equal(
        vtsm_guest_check_evidence_cbor(f->ga, res, "dev0", 1, nonce, NULL, NULL, &claims), VTSM_OK);
    const cbor_item_t *ld = e2e_get(res, "lock_nonce_digest");
    const cbor_item_t *cld = e2e_get(claims, "lock_nonce_digest");
    assert_non_null(ld);
    assert_non_null(cld); /* signed by the TSM too */
    assert_int_equal(cbor_bytestring_length(ld), cbor_bytestring_length(cld));
    assert_memory_equal(cbor_bytestring_handle(ld), cbor_bytestring_handle(cld),
                        cbor_bytestring_length(ld));
    uint8_t old_ld[48];
    size_t old_len = cbor_bytestring_length(ld);
    assert_true(old_len <= sizeof(old_ld));
    memcpy(old_ld, cbor_bytestring_handle(ld), old_len);
    cbor_decref(&claims);
    cbor_decref(&res);

    /* the host swaps the binding underneath: unbind, bind with NO_FW_UPDATE */
    assert_int_equal(vtsm_host_tdi_unbind_cbor(f->hh.h, "dev0", 1, &res), VTSM_OK);
    cbor_decref(&res);
    assert_int_equal(
        vtsm_host_tdi_bind_cbor(f->hh.h, "dev0", 1, f->tvm_a, VTSM_TDISP_LOCK_NO_FW_UPDATE, &res),
        VTSM_OK);
    cbor_decref(&res);
    assert_string_equal(tdi_state(f, 1, s, sizeof(s)), "CONFIG_LOCKED");

    /* the guest's ACCEPT (what it verified) is refused; the TDI is not in RUN */
    assert_int_equal(guest(f, f->ga, VTSM_ABI_GOP_ACCEPT, 1, NULL, NULL), VTSM_E_STATE);
    assert_string_equal(err_name(f), "state");
    expect_rule(f, "TDI.20");
    /* the report carries the lock flags, so it is the first digest that differs */
    E2E_HAS(last_err(f), "report_digest is not the one the guest verified");
    assert_string_equal(tdi_state(f, 1, s, sizeof(s)), "CONFIG_LOCKED");

    /* a fresh INFO shows a new lock nonce digest; verified again, the ACCEPT goes through */
    assert_int_equal(vtsm_random(nonce, sizeof(nonce)), VTSM_OK);
    assert_int_equal(guest(f, f->ga, VTSM_ABI_GOP_INFO, 1, nonce, &res), VTSM_OK);
    ld = e2e_get(res, "lock_nonce_digest");
    assert_non_null(ld);
    assert_int_equal(cbor_bytestring_length(ld), old_len);
    assert_true(memcmp(cbor_bytestring_handle(ld), old_ld, old_len) != 0);
    cbor_decref(&res);
    assert_int_equal(guest(f, f->ga, VTSM_ABI_GOP_ACCEPT, 1, NULL, &res), VTSM_OK);
    assert_string_equal(e2e_str(res, "state", s, sizeof(s)), "RUN");
    cbor_decref(&res);
    /* INFO in RUN: no lock nonce in force any more, after_lock still true */
    assert_int_equal(guest(f, f->ga, VTSM_ABI_GOP_INFO, 1, NULL, &res), VTSM_OK);
    assert_null(e2e_get(res, "lock_nonce_digest"));
    assert_true(e2e_bool(res, "measurements.after_lock"));
    cbor_decref(&res);
}

/* ACCEPT whose digests are not what INFO reported (a guest that checked other bytes, or a
 * relay that changed them) is refused for each of the three; nothing changes. */
static void test_accept_with_other_digests(void **state)
{
    struct fx *f = *state;
    char s[32];
    cbor_item_t *res = NULL;
    bind(f, 1, f->tvm_a);
    assert_int_equal(guest(f, f->ga, VTSM_ABI_GOP_INFO, 1, NULL, &res), VTSM_OK);
    static const char *const keys[] = {"report_digest", "measurements_digest", "lock_nonce_digest"};
    for (size_t k = 0; k < 3; k++) {
        /* remember an INFO with one digest changed by one bit */
        cbor_item_t *copy = vtsm_abi_map_new();
        for (size_t i = 0; i < cbor_map_size(res); i++) {
            struct cbor_pair pr = cbor_map_handle(res)[i];
            char key[64] = "";
            size_t kl = cbor_string_length(pr.key);
            memcpy(key, cbor_string_handle(pr.key), kl < 63 ? kl : 63);
            if (strcmp(key, keys[k]) == 0) {
                uint8_t d[64];
                size_t n = cbor_bytestring_length(pr.value);
                memcpy(d, cbor_bytestring_handle(pr.value), n);
                d[n - 1] ^= 0x80;
                assert_int_equal(vtsm_abi_put_bytes(copy, key, d, n), VTSM_OK);
            } else {
                assert_int_equal(vtsm_abi_put_item(copy, key, cbor_incref(pr.value)), VTSM_OK);
            }
        }
        assert_int_equal(vtsm_guest_remember_info_cbor(f->ga, copy), VTSM_OK);
        cbor_decref(&copy);
        assert_int_equal(guest(f, f->ga, VTSM_ABI_GOP_ACCEPT, 1, NULL, NULL), VTSM_E_STATE);
        expect_rule(f, "TDI.20");
        E2E_HAS(last_err(f), keys[k]);
        assert_string_equal(tdi_state(f, 1, s, sizeof(s)), "CONFIG_LOCKED");
    }
    /* the real INFO's digests pass */
    assert_int_equal(vtsm_guest_remember_info_cbor(f->ga, res), VTSM_OK);
    cbor_decref(&res);
    assert_int_equal(guest(f, f->ga, VTSM_ABI_GOP_ACCEPT, 1, NULL, NULL), VTSM_OK);
    assert_string_equal(tdi_state(f, 1, s, sizeof(s)), "RUN");
}

/* Before RUN the TSM re-measures: the device's firmware changed after LOCK (fault
 * meas-drift-after-lock), so the TDI goes to ERROR and the host sees why. */
static void test_measurements_change_after_lock(void **state)
{
    struct fx *f = *state;
    char s[32];
    cbor_item_t *res = NULL;
    bind(f, 1, f->tvm_a);
    /* INFO without a nonce reports the measurements of the bind (taken after LOCK) */
    assert_int_equal(guest(f, f->ga, VTSM_ABI_GOP_INFO, 1, NULL, &res), VTSM_OK);
    assert_true(e2e_bool(res, "measurements.after_lock"));
    cbor_decref(&res);
    assert_int_equal(guest(f, f->ga, VTSM_ABI_GOP_ACCEPT, 1, NULL, NULL), VTSM_E_PEER_STATE);
    expect_rule(f, "TDI.21");
    E2E_HAS(last_err(f), "measurements changed");
    assert_string_equal(tdi_state(f, 1, s, sizeof(s)), "ERROR");
    /* the host's STATUS says why */
    assert_int_equal(vtsm_host_status_cbor(f->hh.h, "dev0", &res), VTSM_OK);
    const cbor_item_t *tdis = e2e_get(res, "devices.0.tdis");
    char why[32] = "";
    for (size_t i = 0; tdis && i < cbor_array_size(tdis); i++) {
        const cbor_item_t *t = cbor_array_handle(tdis)[i];
        if (e2e_uint(t, "tdi") == 1) {
            e2e_str(t, "error_rule", why, sizeof(why));
            assert_false(e2e_bool(t, "mmio_enabled"));
        }
    }
    assert_string_equal(why, "TDI.21");
    cbor_decref(&res);
    /* in ERROR the measurements are no longer "after lock" */
    assert_int_equal(guest(f, f->ga, VTSM_ABI_GOP_INFO, 1, NULL, &res), VTSM_OK);
    assert_false(e2e_bool(res, "measurements.after_lock"));
    cbor_decref(&res);
    /* unbind recovers the TDI */
    assert_int_equal(vtsm_host_tdi_unbind_cbor(f->hh.h, "dev0", 1, &res), VTSM_OK);
    cbor_decref(&res);
    assert_string_equal(tdi_state(f, 1, s, sizeof(s)), "CONFIG_UNLOCKED");
}

/* ---------------------------------------------------------------- guest lock / unlock */

/* The host's STATUS entry of a TDI: *guest_unlocked, and its owner (0: none). */
static uint64_t host_view(struct fx *f, uint32_t tdi, bool *guest_unlocked, char *err_rule,
                          size_t cap)
{
    cbor_item_t *res = NULL;
    uint64_t owner = 0;
    *guest_unlocked = false;
    if (err_rule)
        err_rule[0] = '\0';
    assert_int_equal(vtsm_host_status_cbor(f->hh.h, "dev0", &res), VTSM_OK);
    const cbor_item_t *tdis = e2e_get(res, "devices.0.tdis");
    for (size_t i = 0; tdis && i < cbor_array_size(tdis); i++) {
        const cbor_item_t *t = cbor_array_handle(tdis)[i];
        if (e2e_uint(t, "tdi") != tdi)
            continue;
        if (e2e_get(t, "guest_unlocked"))
            *guest_unlocked = e2e_bool(t, "guest_unlocked");
        if (e2e_get(t, "tvm"))
            owner = e2e_uint(t, "tvm");
        if (err_rule && e2e_get(t, "error_rule"))
            e2e_str(t, "error_rule", err_rule, cap);
    }
    cbor_decref(&res);
    return owner;
}

/* The Linux devsec flow: the guest unlocks its TDI (STOP), locks it again, verifies and
 * accepts; the host sees the unlock and ends the assignment with TDI_UNBIND. */
static void test_guest_unlock_and_relock(void **state)
{
    struct fx *f = *state;
    char s[32];
    bool gu = false;
    cbor_item_t *res = NULL;
    bind(f, 1, f->tvm_a);
    assert_int_equal(guest(f, f->ga, VTSM_ABI_GOP_ACCEPT, 1, NULL, NULL), VTSM_OK);
    assert_string_equal(tdi_state(f, 1, s, sizeof(s)), "RUN");

    /* another TVM may not unlock or lock it */
    assert_int_equal(guest(f, f->gb, VTSM_ABI_GOP_UNLOCK, 1, NULL, NULL), VTSM_E_NOT_OWNER);
    expect_rule(f, "TDI.5");
    /* LOCK of a locked TDI: the table refuses */
    assert_int_equal(guest(f, f->ga, VTSM_ABI_GOP_LOCK, 1, NULL, NULL), VTSM_E_STATE);
    expect_rule(f, "TDI.22");

    /* UNLOCK from RUN: STOP_INTERFACE, CONFIG_UNLOCKED, still assigned to TVM A */
    assert_int_equal(guest(f, f->ga, VTSM_ABI_GOP_UNLOCK, 1, NULL, &res), VTSM_OK);
    assert_string_equal(e2e_str(res, "state", s, sizeof(s)), "CONFIG_UNLOCKED");
    assert_true(e2e_bool(res, "acknowledged"));
    assert_false(e2e_bool(res, "mmio_enabled"));
    cbor_decref(&res);
    assert_int_equal(host_view(f, 1, &gu, NULL, 0), f->tvm_a);
    assert_true(gu);
    assert_string_equal(tdi_state(f, 1, s, sizeof(s)), "CONFIG_UNLOCKED");
    /* a second UNLOCK is refused; INFO and ACCEPT have nothing to show */
    assert_int_equal(guest(f, f->ga, VTSM_ABI_GOP_UNLOCK, 1, NULL, NULL), VTSM_E_STATE);
    expect_rule(f, "TDI.23");
    assert_int_equal(guest(f, f->ga, VTSM_ABI_GOP_INFO, 1, NULL, NULL), VTSM_E_STATE);
    expect_rule(f, "TDI.6");
    /* the assignment counts: TVM A cannot be destroyed */
    assert_int_equal(vtsm_host_tvm_destroy_cbor(f->hh.h, f->tvm_a, &res), VTSM_E_STATE);
    expect_rule(f, "TVM.2");
    if (res)
        cbor_decref(&res);
    /* the guest's LIST still shows it */
    assert_int_equal(vtsm_guest_call_cbor(f->ga, f->hh.h, VTSM_ABI_GOP_LIST, NULL,
                                          VTSM_GUEST_NO_TDI, NULL, NULL, &res),
                     VTSM_OK);
    assert_int_equal(cbor_array_size(e2e_get(res, "tdis")), 1);
    cbor_decref(&res);

    /* LOCK again (TVM B may not), verify, accept */
    assert_int_equal(guest(f, f->gb, VTSM_ABI_GOP_LOCK, 1, NULL, NULL), VTSM_E_NOT_OWNER);
    expect_rule(f, "TDI.22");
    assert_int_equal(guest(f, f->ga, VTSM_ABI_GOP_LOCK, 1, NULL, &res), VTSM_OK);
    assert_string_equal(e2e_str(res, "state", s, sizeof(s)), "CONFIG_LOCKED");
    cbor_decref(&res);
    assert_int_equal(host_view(f, 1, &gu, NULL, 0), f->tvm_a);
    assert_false(gu);
    uint8_t nonce[32];
    cbor_item_t *claims = NULL;
    assert_int_equal(vtsm_random(nonce, sizeof(nonce)), VTSM_OK);
    assert_int_equal(guest(f, f->ga, VTSM_ABI_GOP_INFO, 1, nonce, &res), VTSM_OK);
    assert_int_equal(
        vtsm_guest_check_evidence_cbor(f->ga, res, "dev0", 1, nonce, NULL, NULL, &claims), VTSM_OK);
    cbor_decref(&claims);
    cbor_decref(&res);
    assert_int_equal(guest(f, f->ga, VTSM_ABI_GOP_ACCEPT, 1, NULL, NULL), VTSM_OK);
    assert_string_equal(tdi_state(f, 1, s, sizeof(s)), "RUN");

    /* unlock again; the host ends the assignment (no device exchange needed) */
    assert_int_equal(guest(f, f->ga, VTSM_ABI_GOP_UNLOCK, 1, NULL, NULL), VTSM_OK);
    assert_int_equal(vtsm_host_tdi_unbind_cbor(f->hh.h, "dev0", 1, &res), VTSM_OK);
    cbor_decref(&res);
    assert_int_equal(host_view(f, 1, &gu, NULL, 0), 0);
    assert_int_equal(guest(f, f->ga, VTSM_ABI_GOP_LOCK, 1, NULL, NULL), VTSM_E_NOT_OWNER);
    assert_int_equal(vtsm_host_tdi_unbind_cbor(f->hh.h, "dev0", 1, &res), VTSM_E_STATE);
    expect_rule(f, "TDI.2");
    if (res)
        cbor_decref(&res);
    assert_int_equal(vtsm_host_tvm_destroy_cbor(f->hh.h, f->tvm_b, &res), VTSM_OK);
    cbor_decref(&res);
}

/* Scopes: DEBUG_WRITE only for a TVM created with debug; it forces ERROR, from which the
 * guest recovers with UNLOCK and LOCK. A scope that is not the operation's is refused. */
static void test_guest_scopes_and_debug(void **state)
{
    struct fx *f = *state;
    char s[32], why[16];
    bool gu;
    cbor_item_t *res = NULL;

    /* TVM A was created without debug */
    bind(f, 1, f->tvm_a);
    assert_int_equal(guest(f, f->ga, VTSM_ABI_GOP_DEBUG_WRITE, 1, NULL, NULL),
                     VTSM_E_POLICY_REFUSED);
    expect_rule(f, "GUEST.6");
    assert_string_equal(tdi_state(f, 1, s, sizeof(s)), "CONFIG_LOCKED");
    /* DEBUG_READ is not DEBUG_WRITE: allowed, read only */
    assert_int_equal(guest(f, f->ga, VTSM_ABI_GOP_DEBUG_READ, 1, NULL, &res), VTSM_OK);
    assert_string_equal(e2e_str(res, "state", s, sizeof(s)), "CONFIG_LOCKED");
    assert_true(e2e_bool(res, "after_lock"));
    assert_true(e2e_uint(res, "meas_seq") > e2e_uint(res, "lock_seq"));
    cbor_decref(&res);

    /* a body whose scope is not its operation's: signed by the guest, refused (GUEST.5) */
    cbor_item_t *body = vtsm_abi_map_new(), *env = NULL;
    struct vtsm_buf frame = {0};
    uint64_t seq = 0;
    assert_int_equal(vtsm_guest_reserve_seq(f->ga, &seq), VTSM_OK);
    assert_int_equal(vtsm_abi_put_uint(body, "gop", VTSM_ABI_GOP_ACCEPT), VTSM_OK);
    assert_int_equal(vtsm_abi_put_uint(body, "tvm", f->tvm_a), VTSM_OK);
    assert_int_equal(vtsm_abi_put_uint(body, "seq", seq), VTSM_OK);
    assert_int_equal(vtsm_abi_put_uint(body, "scope", VTSM_ABI_SCOPE_INFO), VTSM_OK);
    assert_int_equal(vtsm_abi_put_tstr(body, "dev", "dev0"), VTSM_OK);
    assert_int_equal(vtsm_abi_put_uint(body, "tdi", 1), VTSM_OK);
    uint8_t z[32] = {0};
    assert_int_equal(vtsm_abi_put_bytes(body, "report_digest", z, 32), VTSM_OK);
    assert_int_equal(vtsm_abi_put_bytes(body, "measurements_digest", z, 32), VTSM_OK);
    assert_int_equal(vtsm_abi_put_bytes(body, "lock_nonce_digest", z, 32), VTSM_OK);
    assert_int_equal(vtsm_abi_encode(body, &frame), VTSM_OK);
    assert_int_equal(vtsm_guest_sign_cbor(f->ga, f->tvm_a, frame.data + VTSM_ABI_FRAME_HDR_SIZE,
                                          frame.len - VTSM_ABI_FRAME_HDR_SIZE, &env),
                     VTSM_OK);
    assert_int_equal(vtsm_host_guest_relay_cbor(f->hh.h, env, &res), VTSM_E_ABI_ARG);
    expect_rule(f, "GUEST.5");
    if (res)
        cbor_decref(&res);
    cbor_decref(&env);
    cbor_decref(&body);
    vtsm_buf_free(&frame);
    assert_string_equal(tdi_state(f, 1, s, sizeof(s)), "CONFIG_LOCKED");

    /* a debug TVM: the host says so at TVM_CREATE */
    char path[128];
    uint8_t pub[VTSM_GUEST_PUBKEY_SIZE];
    struct vtsm_guest *gd = NULL;
    snprintf(path, sizeof(path), "%s/dbg.key", f->e.dir);
    assert_int_equal(vtsm_guest_keygen(path), VTSM_OK);
    assert_int_equal(vtsm_guest_open(path, 0, &gd), VTSM_OK);
    vtsm_guest_pubkey(gd, pub);
    vtsm_guest_close(gd);
    struct vtsm_request rq = {
        .guest_key = pub, .guest_key_len = sizeof(pub), .debug = true, .set = VTSM_SET(DEBUG)};
    struct vtsm_result *r = NULL;
    assert_int_equal(vtsm_host_request(f->hh.h, VTSM_OP_TVM_CREATE, &rq, &r), VTSM_OK);
    uint64_t dtvm = 0;
    bool dbg = false;
    assert_int_equal(vtsm_result_uint(r, "tvm", &dtvm), VTSM_OK);
    assert_int_equal(vtsm_result_bool(r, "debug", &dbg), VTSM_OK);
    assert_true(dbg);
    vtsm_result_free(r);
    assert_int_equal(vtsm_guest_open(path, (uint32_t)dtvm, &gd), VTSM_OK);

    bind(f, 2, (uint32_t)dtvm);
    assert_int_equal(guest(f, gd, VTSM_ABI_GOP_ACCEPT, 2, NULL, NULL), VTSM_OK);
    assert_int_equal(guest(f, gd, VTSM_ABI_GOP_DEBUG_WRITE, 2, NULL, &res), VTSM_OK);
    assert_string_equal(e2e_str(res, "state", s, sizeof(s)), "ERROR");
    cbor_decref(&res);
    assert_int_equal(host_view(f, 2, &gu, why, sizeof(why)), dtvm);
    assert_string_equal(why, "TDI.24");
    assert_string_equal(tdi_state(f, 2, s, sizeof(s)), "ERROR");
    /* not twice; and TVM A's TDI is untouched */
    assert_int_equal(guest(f, gd, VTSM_ABI_GOP_DEBUG_WRITE, 2, NULL, NULL), VTSM_E_STATE);
    expect_rule(f, "TDI.24");
    assert_string_equal(tdi_state(f, 1, s, sizeof(s)), "CONFIG_LOCKED");
    /* the guest recovers: UNLOCK from ERROR, LOCK, ACCEPT */
    assert_int_equal(guest(f, gd, VTSM_ABI_GOP_UNLOCK, 2, NULL, NULL), VTSM_OK);
    assert_int_equal(guest(f, gd, VTSM_ABI_GOP_LOCK, 2, NULL, NULL), VTSM_OK);
    /* the shim forgot the INFO of the old lock: ACCEPT asks for a new INFO itself */
    assert_int_equal(guest(f, gd, VTSM_ABI_GOP_ACCEPT, 2, NULL, NULL), VTSM_OK);
    assert_string_equal(tdi_state(f, 2, s, sizeof(s)), "RUN");
    vtsm_guest_close(gd);
}

/* ---------------------------------------------------------------- evidence */

/* EVIDENCE: every provisioned slot, VCA, KEY_EXCHANGE, measurements, interface reports;
 * refresh re-measures with the host's nonce and reads every slot's chain, in the session.
 * The device has a second slot (the rogue chain in slot 1). The guest's INFO carries the
 * same items with their digests, bound into the token. */
static void test_evidence_and_refresh(void **state)
{
    struct fx *f = *state;
    struct vtsm_result *r = NULL;
    uint64_t u = 0;
    size_t n = 0;
    const uint8_t *p = NULL;
    bind(f, 1, f->tvm_a);

    struct vtsm_request rq = {.dev = "dev0"};
    assert_int_equal(vtsm_host_evidence(f->hh.h, &rq, &r), VTSM_OK);
    assert_int_equal(vtsm_result_count(r, "slots", &n), VTSM_OK);
    assert_int_equal(n, 2); /* slots 0 and 1 provisioned */
    assert_int_equal(vtsm_result_uint(r, "slots.1.slot", &u), VTSM_OK);
    assert_int_equal(u, 1);
    assert_int_equal(vtsm_result_bytes(r, "slots.0.cert_chain", &p, &n), VTSM_OK);
    assert_true(n > 100);
    /* every provisioned slot: digest and chain, read at connect */
    assert_int_equal(vtsm_result_bytes(r, "slots.1.cert_chain", &p, &n), VTSM_OK);
    assert_true(n > 100);
    assert_int_equal(vtsm_result_bytes(r, "slots.1.cert_chain_digest", &p, &n), VTSM_OK);
    assert_int_equal(vtsm_result_bytes(r, "vca", &p, &n), VTSM_OK);
    assert_true(n > 8 && p[1] == 0x84); /* starts with GET_VERSION */
    assert_int_equal(vtsm_result_bytes(r, "kex.transcript", &p, &n), VTSM_OK);
    assert_int_equal(vtsm_result_bytes(r, "kex.signature", &p, &n), VTSM_OK);
    assert_int_equal(vtsm_result_bytes(r, "measurements.signature", &p, &n), VTSM_OK);
    assert_int_equal(vtsm_result_uint(r, "refreshes", &u), VTSM_OK);
    assert_int_equal(u, 0);
    assert_int_equal(vtsm_result_uint(r, "tdis.0.tdi", &u), VTSM_OK);
    assert_int_equal(u, 1);
    assert_int_equal(vtsm_result_bytes(r, "tdis.0.report", &p, &n), VTSM_OK);
    bool al = false;
    assert_int_equal(vtsm_result_bool(r, "tdis.0.measurements.after_lock", &al), VTSM_OK);
    assert_true(al);
    uint8_t old_meas_nonce[32];
    assert_int_equal(vtsm_result_bytes(r, "measurements.nonce", &p, &n), VTSM_OK);
    memcpy(old_meas_nonce, p, 32);
    vtsm_result_free(r);

    /* a nonce is for a refresh */
    uint8_t nonce[32];
    assert_int_equal(vtsm_random(nonce, sizeof(nonce)), VTSM_OK);
    struct vtsm_request bad = {.dev = "dev0", .nonce = nonce, .nonce_len = 32};
    assert_int_equal(vtsm_host_evidence(f->hh.h, &bad, &r), VTSM_E_ABI_ARG);
    vtsm_result_free(r);
    r = NULL;

    /* refresh with the host's nonce: fresh measurements, every chain read */
    struct vtsm_request rf = {
        .dev = "dev0", .refresh = true, .nonce = nonce, .nonce_len = 32, .set = VTSM_SET(REFRESH)};
    assert_int_equal(vtsm_host_evidence(f->hh.h, &rf, &r), VTSM_OK);
    assert_int_equal(vtsm_result_uint(r, "refreshes", &u), VTSM_OK);
    assert_int_equal(u, 1);
    assert_int_equal(vtsm_result_bytes(r, "measurements.nonce", &p, &n), VTSM_OK);
    assert_int_equal(n, 32);
    assert_memory_equal(p, nonce, 32);
    assert_int_equal(vtsm_result_bytes(r, "slots.1.cert_chain", &p, &n), VTSM_OK);
    assert_true(n > 100);
    bool raw = true;
    assert_int_equal(vtsm_result_bool(r, "measurements.blocks.3.raw", &raw), VTSM_OK);
    assert_false(raw);
    vtsm_result_free(r);
    /* and with the raw bit stream: block 4 (firmware version) comes as "1.0.0" */
    struct vtsm_request rr = {
        .dev = "dev0", .refresh = true, .raw = true, .set = VTSM_SET(REFRESH) | VTSM_SET(RAW)};
    assert_int_equal(vtsm_host_evidence(f->hh.h, &rr, &r), VTSM_OK);
    assert_int_equal(vtsm_result_bool(r, "measurements.blocks.3.raw", &raw), VTSM_OK);
    assert_true(raw);
    assert_int_equal(vtsm_result_bytes(r, "measurements.blocks.3.value", &p, &n), VTSM_OK);
    assert_int_equal(n, 5);
    assert_memory_equal(p, "1.0.0", 5);
    assert_int_equal(vtsm_result_uint(r, "refreshes", &u), VTSM_OK);
    assert_int_equal(u, 2);
    vtsm_result_free(r);
    /* without reconnecting: the session is the same, the TDI still bound */
    char s[32];
    assert_string_equal(tdi_state(f, 1, s, sizeof(s)), "CONFIG_LOCKED");

    /* the guest's INFO: VCA and KEY_EXCHANGE with their digests, bound into the token */
    cbor_item_t *res = NULL, *claims = NULL;
    assert_int_equal(vtsm_random(nonce, sizeof(nonce)), VTSM_OK);
    assert_int_equal(guest(f, f->ga, VTSM_ABI_GOP_INFO, 1, nonce, &res), VTSM_OK);
    assert_non_null(e2e_get(res, "vca"));
    assert_non_null(e2e_get(res, "kex.signature"));
    assert_int_equal(
        vtsm_guest_check_evidence_cbor(f->ga, res, "dev0", 1, nonce, NULL, NULL, &claims), VTSM_OK);
    assert_non_null(e2e_get(claims, "vca_digest"));
    assert_non_null(e2e_get(claims, "kex_transcript_digest"));
    cbor_decref(&claims);
    /* a VCA changed in transit no longer hashes to the signed digest */
    cbor_item_t *vca = (cbor_item_t *)vtsm_abi_find(res, "vca");
    cbor_bytestring_handle(vca)[5] ^= 1;
    assert_int_equal(
        vtsm_guest_check_evidence_cbor(f->ga, res, "dev0", 1, nonce, NULL, NULL, &claims),
        VTSM_E_PEER_DIGEST);
    cbor_bytestring_handle(vca)[5] ^= 1;
    /* so does a lock_nonce_digest changed in transit (what ACCEPT would carry) */
    cbor_item_t *ld = (cbor_item_t *)vtsm_abi_find(res, "lock_nonce_digest");
    cbor_bytestring_handle(ld)[0] ^= 1;
    assert_int_equal(
        vtsm_guest_check_evidence_cbor(f->ga, res, "dev0", 1, nonce, NULL, NULL, &claims),
        VTSM_E_PEER_DIGEST);
    E2E_HAS(vtsm_err_detail(), "lock_nonce_digest");
    cbor_decref(&res);
}

/* ---------------------------------------------------------------- the working paths */

static void test_lifecycle_with_verified_token(void **state)
{
    struct fx *f = *state;
    char s[64];
    cbor_item_t *res = NULL, *claims = NULL;
    bind(f, 1, f->tvm_a);

    /* the guest asks for fresh evidence with its nonce and checks the TSM's signature */
    uint8_t nonce[32];
    assert_int_equal(vtsm_random(nonce, sizeof(nonce)), VTSM_OK);
    assert_int_equal(guest(f, f->ga, VTSM_ABI_GOP_INFO, 1, nonce, &res), VTSM_OK);
    const cbor_item_t *tok = e2e_get(res, "token");
    assert_non_null(tok);
    assert_int_equal(vtsm_guest_verify_token_cbor(cbor_bytestring_handle(tok),
                                                  cbor_bytestring_length(tok), NULL, nonce,
                                                  &claims),
                     VTSM_OK);
    assert_string_equal(e2e_str(claims, "state", s, sizeof(s)), "CONFIG_LOCKED");
    assert_int_equal(e2e_uint(claims, "tvm"), f->tvm_a);
    assert_true(e2e_bool(claims, "after_lock"));
    const cbor_item_t *rd = e2e_get(claims, "report_digest");
    const cbor_item_t *rd2 = e2e_get(res, "report_digest");
    assert_non_null(rd);
    assert_non_null(rd2);
    assert_int_equal(cbor_bytestring_length(rd), cbor_bytestring_length(rd2));
    assert_memory_equal(cbor_bytestring_handle(rd), cbor_bytestring_handle(rd2),
                        cbor_bytestring_length(rd));
    /* the same token does not verify for another nonce */
    nonce[0] ^= 1;
    cbor_item_t *c2 = NULL;
    assert_int_equal(vtsm_guest_verify_token_cbor(cbor_bytestring_handle(tok),
                                                  cbor_bytestring_length(tok), NULL, nonce, &c2),
                     VTSM_E_PEER_NONCE);
    cbor_decref(&claims);
    cbor_decref(&res);

    /* accept: LOCKED -> RUN, MMIO and DMA enabled only now */
    assert_int_equal(guest(f, f->ga, VTSM_ABI_GOP_ACCEPT, 1, NULL, &res), VTSM_OK);
    assert_string_equal(e2e_str(res, "state", s, sizeof(s)), "RUN");
    assert_true(e2e_bool(res, "mmio_enabled"));
    assert_true(e2e_bool(res, "dma_enabled"));
    cbor_decref(&res);
    assert_string_equal(tdi_state(f, 1, s, sizeof(s)), "RUN");

    /* unbind: STOP_INTERFACE, back to CONFIG_UNLOCKED, nobody owns it */
    assert_int_equal(vtsm_host_tdi_unbind_cbor(f->hh.h, "dev0", 1, &res), VTSM_OK);
    assert_string_equal(e2e_str(res, "state", s, sizeof(s)), "CONFIG_UNLOCKED");
    assert_true(e2e_bool(res, "stop_interface.acknowledged"));
    cbor_decref(&res);
    assert_int_equal(guest(f, f->ga, VTSM_ABI_GOP_INFO, 1, NULL, NULL), VTSM_E_NOT_OWNER);
    assert_int_equal(vtsm_host_device_reclaim_cbor(f->hh.h, "dev0", &res), VTSM_OK);
    cbor_decref(&res);
}

static void test_hotplug_into_running_tvm(void **state)
{
    struct fx *f = *state;
    char s[32];
    cbor_item_t *res = NULL;
    bind(f, 0, f->tvm_a);
    assert_int_equal(guest(f, f->ga, VTSM_ABI_GOP_ACCEPT, 0, NULL, NULL), VTSM_OK);
    /* TVM A is running with TDI 0; TDI 2 is plugged in while it runs */
    bind(f, 2, f->tvm_a);
    assert_string_equal(tdi_state(f, 0, s, sizeof(s)), "RUN");
    assert_int_equal(guest(f, f->ga, VTSM_ABI_GOP_ACCEPT, 2, NULL, NULL), VTSM_OK);
    assert_int_equal(vtsm_guest_call_cbor(f->ga, f->hh.h, VTSM_ABI_GOP_LIST, NULL,
                                          VTSM_GUEST_NO_TDI, NULL, NULL, &res),
                     VTSM_OK);
    assert_int_equal(cbor_array_size(e2e_get(res, "tdis")), 2);
    assert_string_equal(e2e_str(res, "tdis.0.state", s, sizeof(s)), "RUN");
    assert_string_equal(e2e_str(res, "tdis.1.state", s, sizeof(s)), "RUN");
    cbor_decref(&res);
    /* the guest may reject a TDI: the host sees why */
    bind(f, 3, f->tvm_a);
    assert_int_equal(vtsm_guest_call_cbor(f->ga, f->hh.h, VTSM_ABI_GOP_REJECT, "dev0", 3, NULL,
                                          "measurements do not match", &res),
                     VTSM_OK);
    cbor_decref(&res);
    assert_int_equal(vtsm_host_status_cbor(f->hh.h, "dev0", &res), VTSM_OK);
    const cbor_item_t *tdis = e2e_get(res, "devices.0.tdis");
    char why[64] = "";
    for (size_t i = 0; tdis && i < cbor_array_size(tdis); i++) {
        const cbor_item_t *t = cbor_array_handle(tdis)[i];
        if (e2e_uint(t, "tdi") == 3)
            e2e_str(t, "guest_rejected", why, sizeof(why));
    }
    assert_string_equal(why, "measurements do not match");
    cbor_decref(&res);
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]);
        static const struct {
            const char *test;
            const char *const *args;
        } faults[] = {
            {"test_device_refuses_start_nonce", f_bad_nonce},
            {"test_report_overlapping_mmio", f_overlap},
            {"test_report_mmio_past_address_space", f_overflow},
            {"test_report_length_changes", f_length},
            {"test_device_state_drift", f_drift},
            {"test_device_reports_error", f_error},
            {"test_measurements_change_after_lock", f_meas_drift},
            {"test_evidence_and_refresh", f_two_slots},
        };
        for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++)
            if (!strcmp(argv[1], faults[i].test))
                devemu_args = faults[i].args;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_host_cannot_accept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_tvm_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replayed_and_reordered_guest_requests, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bad_tag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bound_twice_and_unconnected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reclaim_and_destroy_with_bound_tdis, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report_overlapping_mmio, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report_mmio_past_address_space, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report_length_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_refuses_start_nonce, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_state_drift, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_reports_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lifecycle_with_verified_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hotplug_into_running_tvm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rebind_between_info_and_accept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accept_with_other_digests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_measurements_change_after_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_guest_unlock_and_relock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_guest_scopes_and_debug, setup, teardown),
        cmocka_unit_test_setup_teardown(test_evidence_and_refresh, setup, teardown),
    };
    return cmocka_run_group_tests_name("e2e_tdisp", tests, NULL, NULL);
}
