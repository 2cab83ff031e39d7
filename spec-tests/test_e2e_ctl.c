/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * End to end, the device changing behind the TSM's back: real tsmd + tsm-devemu; the test
 * is the host (host shim) and the guest (guest shim, relayed by the host); tsm-devemu's
 * runtime controls `report-change N` and `meas-change` run as separate processes
 * (`tsm-devemu --control`).
 *  - report-change after LOCK, before ACCEPT: GET_DEVICE_INTERFACE_STATE still says
 *    CONFIG_LOCKED, so DEVICE_CHECK finds nothing; the guest's ACCEPT re-reads the report
 *    and refuses RUN (peer_state, TDI.21), STATUS shows ERROR / TDI.21, the subscribers
 *    hear tdi_error and evidence_changed; the change is the device's for good, so the
 *    recovery sees it (TDI.11) until the host brings reference values for it;
 *  - meas-change (the firmware patched in place, its version unchanged) after LOCK: found
 *    the same way (TDI.21) by the re-measurement before RUN;
 *  - both while the TDI runs: the device keeps it RUN and DEVICE_CHECK finds nothing; an
 *    EVIDENCE refresh says the TDI's measurements changed (measurements_changed) and shows
 *    the host the new blocks, the version block unchanged; the TDI stays RUN.
 * And the guest's view of the device's certificates: INFO lists every provisioned slot's
 * digest, bound into the token (slots_digest).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "e2e_host.h"
#include "e2e_util.h"
#include "vtsm_abi.h"
#include "vtsm_crypto.h"
#include "vtsm_guest_cbor.h"
#include "vtsm_host.h"
#include "vtsm_proc.h"
#include "vtsm_tdisp.h"

#define DEV "0000:01:00.0"

struct seen {
    unsigned tdi_error, evidence_changed;
    enum vtsm_rule error_rule, changed_rule;
};

struct fx {
    struct e2e e;
    struct e2e_host hh;
    int port;
    struct vtsm_guest *ga;
    uint32_t tvm_a;
    struct seen seen;
};

static void on_event(void *ctx, const struct vtsm_host_event *ev)
{
    struct seen *s = ctx;
    if (!ev->has_tdi || ev->tdi != 1 || strcmp(ev->dev, DEV) != 0)
        return;
    if (!strcmp(ev->event, "tdi_error")) {
        s->tdi_error++;
        s->error_rule = ev->rule;
    }
    if (!strcmp(ev->event, "evidence_changed")) {
        s->evidence_changed++;
        s->changed_rule = ev->rule;
    }
}

static const char *const *devemu_args;

static int setup(void **state)
{
    static struct fx f;
    memset(&f, 0, sizeof(f));
    if (e2e_setup(&f.e, NULL) != 0)
        return -1;
    f.port = e2e_devemu(&f.e, devemu_args);
    if (f.port <= 0 || e2e_host_open(&f.e, &f.hh) != 0 ||
        e2e_host_add_device(&f.hh, DEV, f.port, 0) != 0)
        return -1;
    struct vtsm_host_connect_opts o = {.ide_streams = 1};
    cbor_item_t *res = NULL;
    if (vtsm_host_device_connect_cbor(f.hh.h, DEV, &o, &res) != VTSM_OK)
        return -1;
    cbor_decref(&res);
    if (e2e_host_new_tvm(&f.hh, f.e.dir, "tvmA", &f.tvm_a, &f.ga) != 0)
        return -1;
    struct vtsm_request sub = {.dev = DEV};
    vtsm_host_set_event_cb(f.hh.h, on_event, &f.seen);
    if (vtsm_host_events_subscribe(f.hh.h, &sub, NULL) != VTSM_OK)
        return -1;
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    vtsm_host_set_event_cb(f->hh.h, NULL, NULL);
    vtsm_guest_close(f->ga);
    e2e_host_close(&f->hh);
    return e2e_teardown(&f->e);
}

static void expect_rule(struct fx *f, const char *name, const char *id)
{
    const struct vtsm_host_error *e = vtsm_host_last_error(f->hh.h);
    if (!e->from_tsm || strcmp(e->name, name) != 0 || strcmp(e->rule_id, id) != 0 ||
        e->rule != vtsm_rule_parse(id))
        fail_msg("ERROR %s rule '%s' (%s), wanted %s / %s", e->name, e->rule_id, e->detail, name,
                 id);
}

/* tsm-devemu --control 127.0.0.1:PORT CMD [ARG], a separate process: exit code and line */
static int control(struct fx *f, const char *cmd, const char *arg, char *out, size_t cap)
{
    char hp[32];
    snprintf(hp, sizeof(hp), "127.0.0.1:%d", f->port);
    const char *args[] = {"--control", hp, cmd, arg, NULL};
    int po[2];
    if (pipe(po))
        return -1;
    pid_t pid = vtsm_proc_start(VTSM_BIN_DIR, "tsm-devemu", args, po[1], -1);
    close(po[1]);
    size_t n = 0;
    ssize_t k;
    while (pid > 0 && n + 1 < cap && (k = read(po[0], out + n, cap - 1 - n)) > 0)
        n += (size_t)k;
    out[n] = '\0';
    close(po[0]);
    int st = 0;
    if (pid <= 0 || waitpid(pid, &st, 0) < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void bind_tdi(struct fx *f, uint32_t tdi)
{
    cbor_item_t *res = NULL;
    if (vtsm_host_tdi_bind_cbor(f->hh.h, DEV, tdi, f->tvm_a, 0, &res) != VTSM_OK)
        fail_msg("bind %u: %s", tdi, vtsm_host_last_error(f->hh.h)->detail);
    cbor_decref(&res);
}

static vtsm_status guest(struct fx *f, unsigned gop, uint32_t tdi, cbor_item_t **res)
{
    cbor_item_t *r = NULL;
    vtsm_status st = vtsm_guest_call_cbor(f->ga, f->hh.h, gop, DEV, tdi, NULL, NULL, &r);
    if (res)
        *res = r;
    else if (r)
        cbor_decref(&r);
    return st;
}

/* STATUS: the TDI's state, and its error_rule ("-" when absent). */
static void status_tdi(struct fx *f, uint32_t tdi, char *state, char *rule, size_t cap)
{
    cbor_item_t *all = NULL;
    assert_int_equal(vtsm_host_status_cbor(f->hh.h, DEV, &all), VTSM_OK);
    const cbor_item_t *tdis = e2e_get(all, "devices.0.tdis");
    snprintf(state, cap, "(none)");
    snprintf(rule, cap, "-");
    for (size_t i = 0; tdis && i < cbor_array_size(tdis); i++) {
        const cbor_item_t *t = cbor_array_handle(tdis)[i];
        if (e2e_uint(t, "tdi") != tdi)
            continue;
        e2e_str(t, "state", state, cap);
        if (e2e_get(t, "error_rule"))
            e2e_str(t, "error_rule", rule, cap);
    }
    cbor_decref(&all);
}

/* DEVICE_CHECK: TDIs moved to ERROR; TDI 1's device_state */
static uint64_t device_check(struct fx *f, char *dev_state, size_t cap)
{
    struct vtsm_request r = {.dev = DEV};
    struct vtsm_result *res = NULL;
    if (vtsm_host_device_check(f->hh.h, &r, &res) != VTSM_OK)
        fail_msg("device_check: %s", vtsm_host_last_error(f->hh.h)->detail);
    uint64_t errors = 99;
    assert_int_equal(vtsm_result_uint(res, "errors", &errors), VTSM_OK);
    if (vtsm_result_text(res, "tdis.0.device_state", dev_state, cap) != VTSM_OK)
        snprintf(dev_state, cap, "(none)");
    vtsm_result_free(res);
    return errors;
}

/* TDI_RESET of TDI 1, with reference digests or none */
static vtsm_status reset(struct fx *f, const uint8_t *rd, const uint8_t *md, size_t len,
                         struct vtsm_result **out)
{
    struct vtsm_request r = {.dev = DEV,
                             .tdi = 1,
                             .report_digest = rd,
                             .report_digest_len = rd ? len : 0,
                             .measurements_digest = md,
                             .measurements_digest_len = md ? len : 0,
                             .set = VTSM_SET(TDI)};
    return vtsm_host_tdi_reset(f->hh.h, &r, out);
}

/* A change after LOCK that GET_DEVICE_INTERFACE_STATE does not show: DEVICE_CHECK finds
 * nothing; the guest's ACCEPT re-check does (TDI.21) and the TDI is ERROR in STATUS. */
static void found_at_accept(struct fx *f)
{
    char s[32], rule[32];
    assert_int_equal(device_check(f, s, sizeof(s)), 0);
    assert_string_equal(s, "CONFIG_LOCKED");
    status_tdi(f, 1, s, rule, sizeof(s));
    assert_string_equal(s, "CONFIG_LOCKED");

    assert_int_equal(guest(f, VTSM_ABI_GOP_ACCEPT, 1, NULL), VTSM_E_PEER_STATE);
    expect_rule(f, "peer_state", "TDI.21");
    status_tdi(f, 1, s, rule, sizeof(s));
    assert_string_equal(s, "ERROR");
    assert_string_equal(rule, "TDI.21");
    cbor_item_t *res = NULL;
    assert_int_equal(guest(f, VTSM_ABI_GOP_INFO, 1, &res), VTSM_OK);
    assert_string_equal(e2e_str(res, "state", s, sizeof(s)), "ERROR");
    assert_false(e2e_bool(res, "mmio_enabled"));
    cbor_decref(&res);
    /* the events were queued before the ACCEPT's ERROR: the callback has run */
    assert_int_equal(f->seen.tdi_error, 1);
    assert_int_equal(f->seen.error_rule, VTSM_RULE_TDI_21);
    assert_int_equal(f->seen.evidence_changed, 1);
    assert_int_equal(f->seen.changed_rule, VTSM_RULE_TDI_21);
}

/* ---------------------------------------------------------------- report-change */

static void test_report_change_found_at_accept(void **state)
{
    struct fx *f = *state;
    char out[256], s[64];
    cbor_item_t *res = NULL;
    struct vtsm_result *r = NULL;

    /* refused for a TDI the device does not have; a TDI without a lock changes at LOCK */
    assert_int_equal(control(f, "report-change", "99", out, sizeof(out)), 1);
    E2E_HAS(out, "error");
    assert_int_equal(control(f, "report-change", "2", out, sizeof(out)), 0);
    E2E_HAS(out, "ok report-change 2 change 1 at_lock");

    bind_tdi(f, 1);
    assert_int_equal(guest(f, VTSM_ABI_GOP_INFO, 1, &res), VTSM_OK);
    cbor_decref(&res);
    assert_int_equal(control(f, "report-change", "1", out, sizeof(out)), 0);
    E2E_HAS(out, "ok report-change 1 change 1 now");
    found_at_accept(f);

    /* the change is the device's for good: the relock's report is not the bound one */
    assert_int_equal(reset(f, NULL, NULL, 0, &r), VTSM_E_PEER_STATE);
    expect_rule(f, "peer_state", "TDI.11");
    assert_non_null(r);
    assert_string_equal(vtsm_result_text(r, "state", s, sizeof(s)) == VTSM_OK ? s : "?", "ERROR");
    bool same = true;
    assert_int_equal(vtsm_result_bool(r, "same_as_bound", &same), VTSM_OK);
    assert_false(same);
    const uint8_t *rd = NULL, *md = NULL;
    size_t rdl = 0, mdl = 0;
    assert_int_equal(vtsm_result_bytes(r, "report_digest", &rd, &rdl), VTSM_OK);
    assert_int_equal(vtsm_result_bytes(r, "measurements_digest", &md, &mdl), VTSM_OK);
    assert_int_equal(rdl, mdl);
    uint8_t ref_r[64], ref_m[64];
    memcpy(ref_r, rd, rdl);
    memcpy(ref_m, md, mdl);
    size_t hl = rdl;
    vtsm_result_free(r);
    r = NULL;
    assert_int_equal(f->seen.evidence_changed, 2);
    assert_int_equal(f->seen.changed_rule, VTSM_RULE_TDI_11);

    /* with the host's reference values for the changed report: bound again, accepted */
    if (reset(f, ref_r, ref_m, hl, &r) != VTSM_OK)
        fail_msg("tdi_reset with reference values: %s", vtsm_host_last_error(f->hh.h)->detail);
    assert_string_equal(vtsm_result_text(r, "last_event", s, sizeof(s)) == VTSM_OK ? s : "?",
                        "recovered_reference");
    vtsm_result_free(r);
    r = NULL;
    assert_int_equal(guest(f, VTSM_ABI_GOP_INFO, 1, &res), VTSM_OK);
    cbor_decref(&res);
    if (guest(f, VTSM_ABI_GOP_ACCEPT, 1, NULL) != VTSM_OK)
        fail_msg("accept of the changed report: %s", vtsm_host_last_error(f->hh.h)->detail);
    char rule[32];
    status_tdi(f, 1, s, rule, sizeof(s));
    assert_string_equal(s, "RUN");

    /* the report now bound is the changed one */
    struct vtsm_request rq = {.dev = DEV};
    assert_int_equal(vtsm_host_evidence(f->hh.h, &rq, &r), VTSM_OK);
    const uint8_t *rep = NULL;
    size_t rl = 0;
    assert_int_equal(vtsm_result_bytes(r, "tdis.0.report", &rep, &rl), VTSM_OK);
    assert_true(rl > 8 && memmem(rep, rl, "change 1", 8) != NULL);
    vtsm_result_free(r);
}

/* ---------------------------------------------------------------- meas-change */

static void test_meas_change_found_at_accept(void **state)
{
    struct fx *f = *state;
    char out[256];
    cbor_item_t *res = NULL;
    bind_tdi(f, 1);
    assert_int_equal(guest(f, VTSM_ABI_GOP_INFO, 1, &res), VTSM_OK);
    cbor_decref(&res);
    assert_int_equal(control(f, "meas-change", NULL, out, sizeof(out)), 0);
    E2E_HAS(out, "ok meas-change patch 1 version 1.0.0");
    found_at_accept(f);
}

/* ---------------------------------------------------------------- while RUN */

/* EVIDENCE refresh (no raw): TDI 1's measurements_changed, 0/1 (-1 when absent) */
/* An EVIDENCE refresh: measurements_changed of TDI 1 (-1: absent), and its
 * report_changed into *report (-1: absent) if report is not NULL. */
static int refresh_changed2(struct fx *f, int *report)
{
    struct vtsm_request rq = {.dev = DEV, .refresh = true, .set = VTSM_SET(REFRESH)};
    struct vtsm_result *r = NULL;
    uint64_t tdi = 99;
    bool changed = false;
    if (vtsm_host_evidence(f->hh.h, &rq, &r) != VTSM_OK)
        fail_msg("evidence refresh: %s", vtsm_host_last_error(f->hh.h)->detail);
    assert_int_equal(vtsm_result_uint(r, "tdis.0.tdi", &tdi), VTSM_OK);
    assert_int_equal(tdi, 1);
    int rc = vtsm_result_bool(r, "tdis.0.measurements_changed", &changed) == VTSM_OK ? changed : -1;
    if (report)
        *report = vtsm_result_bool(r, "tdis.0.report_changed", &changed) == VTSM_OK ? changed : -1;
    vtsm_result_free(r);
    return rc;
}

static void test_changes_while_running(void **state)
{
    struct fx *f = *state;
    char out[256], s[32], rule[32];
    cbor_item_t *res = NULL;
    struct vtsm_result *r = NULL;
    const uint8_t *p = NULL;
    size_t n = 0;
    bind_tdi(f, 1);
    assert_int_equal(guest(f, VTSM_ABI_GOP_INFO, 1, &res), VTSM_OK);
    cbor_decref(&res);
    assert_int_equal(guest(f, VTSM_ABI_GOP_ACCEPT, 1, NULL), VTSM_OK);
    /* a refresh before any change: the running TDI's measurements and report are the
     * fresh ones */
    int rep = -2;
    assert_true(refresh_changed2(f, &rep) == 0);
    assert_int_equal(rep, 0);

    assert_int_equal(control(f, "report-change", "1", out, sizeof(out)), 0);
    E2E_HAS(out, "ok report-change 1 change 1 now");
    assert_int_equal(control(f, "meas-change", NULL, out, sizeof(out)), 0);
    E2E_HAS(out, "ok meas-change patch 1");
    /* the device keeps the TDI RUN: DEVICE_CHECK (GET_DEVICE_INTERFACE_STATE) sees no
     * disagreement */
    assert_int_equal(device_check(f, s, sizeof(s)), 0);
    assert_string_equal(s, "RUN");
    status_tdi(f, 1, s, rule, sizeof(s));
    assert_string_equal(s, "RUN");

    /* the measurements the TDI was bound to */
    struct vtsm_request rq = {.dev = DEV};
    assert_int_equal(vtsm_host_evidence(f->hh.h, &rq, &r), VTSM_OK);
    uint8_t bound_fw[64];
    assert_int_equal(vtsm_result_bytes(r, "tdis.0.measurements.blocks.1.value", &p, &n), VTSM_OK);
    assert_true(n >= 32 && n <= sizeof(bound_fw));
    memcpy(bound_fw, p, n);
    size_t bl = n;
    vtsm_result_free(r);
    r = NULL;

    /* an EVIDENCE refresh compares: the TSM says the running TDI's measurements and its
     * interface report changed */
    rep = -2;
    assert_true(refresh_changed2(f, &rep) == 1);
    assert_int_equal(rep, 1);
    /* one with raw bit streams shows the host the patched firmware block, the version
     * block still "1.0.0" (no comparison: raw blocks are not what the TDI was bound to) */
    struct vtsm_request rr = {
        .dev = DEV, .refresh = true, .raw = true, .set = VTSM_SET(REFRESH) | VTSM_SET(RAW)};
    assert_int_equal(vtsm_host_evidence(f->hh.h, &rr, &r), VTSM_OK);
    bool changed = false;
    assert_int_not_equal(vtsm_result_bool(r, "tdis.0.measurements_changed", &changed), VTSM_OK);
    assert_int_equal(vtsm_result_bytes(r, "measurements.blocks.3.value", &p, &n), VTSM_OK);
    assert_int_equal(n, 5);
    assert_memory_equal(p, "1.0.0", 5);
    assert_int_equal(vtsm_result_bytes(r, "measurements.blocks.1.value", &p, &n), VTSM_OK);
    assert_int_equal(n, bl);
    assert_memory_not_equal(p, bound_fw, bl);
    /* and the TDI's bound measurements are still the ones of its LOCK */
    assert_int_equal(vtsm_result_bytes(r, "tdis.0.measurements.blocks.1.value", &p, &n), VTSM_OK);
    assert_int_equal(n, bl);
    assert_memory_equal(p, bound_fw, bl);
    vtsm_result_free(r);
    status_tdi(f, 1, s, rule, sizeof(s));
    assert_string_equal(s, "RUN");
    assert_int_equal(f->seen.tdi_error, 0);
}

/* ---------------------------------------------------------------- every slot */

/* The guest's INFO carries the digest of every certificate slot the device provisions
 * (here slots 0 and 1), bound into the token by slots_digest: the guest shim checks them,
 * and a digest the relaying host changed fails the check. */
static const char *const two_slots[] = {"--slot", "1=rogue", NULL};

static void test_guest_info_carries_every_slot(void **state)
{
    struct fx *f = *state;
    cbor_item_t *res = NULL, *claims = NULL;
    struct vtsm_result *r = NULL;
    uint8_t nonce[32];
    const uint8_t *p = NULL;
    size_t n = 0;
    bind_tdi(f, 1);
    assert_int_equal(vtsm_random(nonce, sizeof(nonce)), VTSM_OK);
    assert_int_equal(
        vtsm_guest_call_cbor(f->ga, f->hh.h, VTSM_ABI_GOP_INFO, DEV, 1, nonce, NULL, &res),
        VTSM_OK);
    const cbor_item_t *slots = e2e_get(res, "slots");
    assert_non_null(slots);
    assert_int_equal(cbor_array_size(slots), 2);
    assert_int_equal(e2e_uint(res, "slots.0.slot"), 0);
    assert_int_equal(e2e_uint(res, "slots.1.slot"), 1);
    assert_non_null(e2e_get(res, "slots_digest"));
    assert_int_equal(vtsm_guest_check_evidence_cbor(f->ga, res, DEV, 1, nonce, NULL, NULL, &claims),
                     VTSM_OK);
    assert_non_null(e2e_get(claims, "slots_digest"));
    cbor_decref(&claims);

    /* the same digests the host's EVIDENCE reports */
    struct vtsm_request rq = {.dev = DEV};
    assert_int_equal(vtsm_host_evidence(f->hh.h, &rq, &r), VTSM_OK);
    for (int s = 0; s < 2; s++) {
        char path[64];
        snprintf(path, sizeof(path), "slots.%d.cert_chain_digest", s);
        assert_int_equal(vtsm_result_bytes(r, path, &p, &n), VTSM_OK);
        const cbor_item_t *g = e2e_get(res, path);
        assert_non_null(g);
        assert_int_equal(cbor_bytestring_length(g), n);
        assert_memory_equal(cbor_bytestring_handle(g), p, n);
    }
    vtsm_result_free(r);

    /* a slot digest changed in transit no longer hashes to the signed slots_digest */
    cbor_item_t *d1 = (cbor_item_t *)e2e_get(res, "slots.1.cert_chain_digest");
    cbor_bytestring_handle(d1)[0] ^= 1;
    assert_int_equal(vtsm_guest_check_evidence_cbor(f->ga, res, DEV, 1, nonce, NULL, NULL, &claims),
                     VTSM_E_PEER_DIGEST);
    if (claims)
        cbor_decref(&claims);
    cbor_decref(&res);
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]);
        if (!strcmp(argv[1], "test_guest_info_carries_every_slot"))
            devemu_args = two_slots;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_report_change_found_at_accept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_meas_change_found_at_accept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changes_while_running, setup, teardown),
        cmocka_unit_test_setup_teardown(test_guest_info_carries_every_slot, setup, teardown),
    };
    return cmocka_run_group_tests_name("e2e_ctl", tests, NULL, NULL);
}
