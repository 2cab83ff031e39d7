/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * End to end, RAS and TSM-to-host events: real tsmd + tsm-devemu; the test is the host
 * (host shim) and the guest (guest shim, relayed by the host); tsm-devemu's runtime
 * controls and `tsm-host events` run as separate processes.
 *  - recovery: a device error on a bound TDI -> the guest's accept finds it (TDI.7,
 *    ERROR) -> TDI_RESET: FLR, relock, re-measure, identical -> CONFIG_LOCKED; the guest
 *    sees it in INFO, accepts, and the IDE link check passes; refusals: reset of a TDI not
 *    in ERROR (TDI.10), malformed reference values (ABI.8);
 *  - firmware update: before LOCK (allowed: a bind after it binds the new measurements),
 *    after LOCK with NO_FW_UPDATE (refused by the device, DEVTDI.8, nothing changes), after
 *    LOCK without it (the TDI goes to ERROR, DEVTDI.9; the recovery sees other
 *    measurements: TDI.11, stays ERROR; with the host's reference values it recovers);
 *  - events: tsm-host events (a separate process) prints tdi_error, evidence_changed,
 *    tdi_recovered with device, TDI and rule; the policy events (key update by interval
 *    and by sequence number, IDE refresh); session_lost when the device dies; a
 *    subscriber that never reads is dropped while tsmd keeps serving.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* POLLRDHUP */
#endif
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
#include <sys/socket.h>
#include <sys/un.h>
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

struct fx {
    struct e2e e;
    struct e2e_host hh;
    int port;
    struct vtsm_guest *ga;
    uint32_t tvm_a;
};

static const char *const *tsmd_args;
static const char *const *devemu_args;

static int setup(void **state)
{
    static struct fx f;
    memset(&f, 0, sizeof(f));
    if (e2e_setup(&f.e, tsmd_args) != 0)
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
    if (e2e_host_new_tvm(&f.hh, f.e.dir, "tvmA", &f.tvm_a, &f.ga) != 0)
        return -1;
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    vtsm_guest_close(f->ga);
    e2e_host_close(&f->hh);
    return e2e_teardown(&f->e);
}

static const struct vtsm_host_error *last(struct fx *f)
{
    return vtsm_host_last_error(f->hh.h);
}

static void expect_rule(struct fx *f, const char *name, const char *id)
{
    const struct vtsm_host_error *e = last(f);
    if (!e->from_tsm || strcmp(e->name, name) != 0 || strcmp(e->rule_id, id) != 0 ||
        e->rule != vtsm_rule_parse(id))
        fail_msg("ERROR %s rule '%s' (%s), wanted %s / %s", e->name, e->rule_id, e->detail, name,
                 id);
}

/* tsm-devemu --control 127.0.0.1:PORT CMD..., a separate process: its exit code and line */
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

static void bind_tdi(struct fx *f, uint32_t tdi, uint16_t flags)
{
    cbor_item_t *res = NULL;
    if (vtsm_host_tdi_bind_cbor(f->hh.h, "dev0", tdi, f->tvm_a, flags, &res) != VTSM_OK)
        fail_msg("bind %u: %s", tdi, last(f)->detail);
    cbor_decref(&res);
}

static vtsm_status guest(struct fx *f, unsigned gop, uint32_t tdi, cbor_item_t **res)
{
    cbor_item_t *r = NULL;
    vtsm_status st = vtsm_guest_call_cbor(f->ga, f->hh.h, gop, "dev0", tdi, NULL, NULL, &r);
    if (res)
        *res = r;
    else if (r)
        cbor_decref(&r);
    return st;
}

/* TDI_RESET through the public shim; ref digests optional. */
static vtsm_status reset(struct fx *f, uint32_t tdi, const uint8_t *rd, const uint8_t *md,
                         size_t len, struct vtsm_result **out)
{
    struct vtsm_request r = {.dev = "dev0",
                             .tdi = tdi,
                             .report_digest = rd,
                             .report_digest_len = rd ? len : 0,
                             .measurements_digest = md,
                             .measurements_digest_len = md ? len : 0,
                             .set = VTSM_SET(TDI)};
    return vtsm_host_tdi_reset(f->hh.h, &r, out);
}

static const char *res_text(const struct vtsm_result *r, const char *path, char *buf, size_t cap)
{
    if (vtsm_result_text(r, path, buf, cap) != VTSM_OK)
        snprintf(buf, cap, "(none)");
    return buf;
}

/* The device moves TDI 1 to ERROR; the guest's ACCEPT finds it (TDI.7) and the TSM moves
 * its TDI to ERROR too. */
static void device_error_found(struct fx *f, uint32_t tdi)
{
    char out[256];
    char n[8];
    snprintf(n, sizeof(n), "%u", tdi);
    if (control(f, "tdi-error", n, out, sizeof(out)) != 0)
        fail_msg("tdi-error: %s", out);
    assert_int_equal(guest(f, VTSM_ABI_GOP_ACCEPT, tdi, NULL), VTSM_E_PEER_STATE);
    expect_rule(f, "peer_state", "TDI.7");
}

/* ---- a background `tsm-host events` ---- */

struct watcher {
    pid_t pid;
    char path[256];
};

static void watch_start(struct fx *f, struct watcher *w, bool json, const char *count)
{
    snprintf(w->path, sizeof(w->path), "%s/events%s.out", f->e.dir, json ? "-json" : "");
    char errp[300];
    snprintf(errp, sizeof(errp), "%s.err", w->path);
    int fd = open(w->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int efd = open(errp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0 && efd >= 0);
    const char *args[] = {"--socket", f->e.sock,   "events", "--count",
                          count,      "--timeout", "40000",  json ? "--json" : NULL,
                          NULL};
    w->pid = vtsm_proc_start(VTSM_BIN_DIR, "tsm-host", args, fd, efd);
    close(fd);
    close(efd);
    assert_true(w->pid > 0);
    /* it says so on stderr once tsmd answered its EVENTS_SUBSCRIBE */
    for (int i = 0; i < 500; i++) {
        char buf[512] = "";
        FILE *ef = fopen(errp, "r");
        size_t n = ef ? fread(buf, 1, sizeof(buf) - 1, ef) : 0;
        buf[n] = '\0';
        if (ef)
            fclose(ef);
        if (strstr(buf, "watching events"))
            return;
        usleep(10000);
    }
    fail_msg("tsm-host events did not subscribe");
}

/* Wait for the watcher to exit (it stops after --count events) and return its output. */
static void watch_end(struct watcher *w, char *out, size_t cap)
{
    int st = 0;
    long end = vtsm_now_ms() + 30000;
    pid_t r = 0;
    while ((r = waitpid(w->pid, &st, WNOHANG)) == 0 && vtsm_now_ms() < end)
        usleep(20000);
    if (r == 0) {
        kill(w->pid, SIGKILL);
        waitpid(w->pid, &st, 0);
    }
    FILE *fp = fopen(w->path, "r");
    size_t n = fp ? fread(out, 1, cap - 1, fp) : 0;
    out[n] = '\0';
    if (fp)
        fclose(fp);
    if (r == 0)
        fail_msg("tsm-host events did not end; it printed:\n%s", out);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* ---------------------------------------------------------------- recovery */

/* What the in-process event callback saw. */
struct seen {
    unsigned n, tdi_error, recovered;
    enum vtsm_rule error_rule;
    uint64_t last_seq;
    bool ordered, has_tdi;
};

static void on_event(void *ctx, const struct vtsm_host_event *ev)
{
    struct seen *s = ctx;
    s->ordered = s->n == 0 || ev->seq > s->last_seq;
    s->last_seq = ev->seq;
    s->n++;
    if (!strcmp(ev->event, "tdi_error")) {
        s->tdi_error++;
        s->error_rule = ev->rule;
        s->has_tdi = ev->has_tdi && ev->tdi == 1 && !strcmp(ev->dev, "dev0");
    }
    if (!strcmp(ev->event, "tdi_recovered") && !strcmp(ev->rule_id, "TDI.10"))
        s->recovered++;
}

static void test_recovery_identical(void **state)
{
    struct fx *f = *state;
    struct vtsm_result *r = NULL;
    char s[64];
    cbor_item_t *res = NULL;
    struct watcher w;
    watch_start(f, &w, false, "2"); /* tdi_error, tdi_recovered */
    /* the test's own host connection subscribes too, for dev0, through the public API */
    struct seen seen = {0};
    struct vtsm_request sub = {.dev = "nodev"};
    assert_int_equal(vtsm_host_events_subscribe(f->hh.h, &sub, NULL), VTSM_E_NOT_FOUND);
    expect_rule(f, "not_found", "PDEV.13");
    sub.dev = "dev0";
    vtsm_host_set_event_cb(f->hh.h, on_event, &seen);
    assert_int_equal(vtsm_host_events_subscribe(f->hh.h, &sub, NULL), VTSM_OK);

    bind_tdi(f, 1, 0);
    /* not in ERROR: refused, nothing changes */
    assert_int_equal(reset(f, 1, NULL, NULL, 0, &r), VTSM_E_STATE);
    expect_rule(f, "state", "TDI.10");
    vtsm_result_free(r);
    r = NULL;
    assert_int_equal(reset(f, 2, NULL, NULL, 0, NULL), VTSM_E_STATE); /* never bound */
    expect_rule(f, "state", "TDI.10");

    device_error_found(f, 1);
    /* reference values of the wrong length: refused before anything is sent */
    uint8_t junk[40] = {0};
    assert_int_equal(reset(f, 1, junk, junk, sizeof(junk), NULL), VTSM_E_ABI_ARG);
    expect_rule(f, "abi_arg", "ABI.8");

    /* the recovery: FLR, relock, re-measure; identical -> CONFIG_LOCKED for its owner */
    if (reset(f, 1, NULL, NULL, 0, &r) != VTSM_OK)
        fail_msg("tdi_reset: %s %s", last(f)->name, last(f)->detail);
    assert_string_equal(res_text(r, "state", s, sizeof(s)), "CONFIG_LOCKED");
    assert_string_equal(res_text(r, "last_event", s, sizeof(s)), "recovered");
    assert_string_equal(res_text(r, "last_rule", s, sizeof(s)), "TDI.10");
    bool same = false;
    assert_int_equal(vtsm_result_bool(r, "same_as_bound", &same), VTSM_OK);
    assert_true(same);
    uint64_t n = 0, tvm = 0;
    assert_int_equal(vtsm_result_uint(r, "recoveries", &n), VTSM_OK);
    assert_int_equal(n, 1);
    assert_int_equal(vtsm_result_uint(r, "tvm", &tvm), VTSM_OK);
    assert_int_equal(tvm, f->tvm_a);
    vtsm_result_free(r);

    /* the owner's INFO says what happened; it accepts again and the link is sound */
    assert_int_equal(guest(f, VTSM_ABI_GOP_INFO, 1, &res), VTSM_OK);
    assert_int_equal(e2e_uint(res, "recoveries"), 1);
    assert_string_equal(e2e_str(res, "last_event", s, sizeof(s)), "recovered");
    assert_string_equal(e2e_str(res, "state", s, sizeof(s)), "CONFIG_LOCKED");
    cbor_decref(&res);
    if (guest(f, VTSM_ABI_GOP_ACCEPT, 1, &res) != VTSM_OK)
        fail_msg("accept after recovery: %s", last(f)->detail);
    assert_string_equal(e2e_str(res, "state", s, sizeof(s)), "RUN");
    cbor_decref(&res);
    assert_int_equal(vtsm_host_ide_link_check_cbor(f->hh.h, "dev0", &res), VTSM_OK);
    assert_true(e2e_bool(res, "streams.0.rp_to_device"));
    assert_true(e2e_bool(res, "streams.0.device_to_rp"));
    cbor_decref(&res);

    /* the callback ran from the shim's blocking calls */
    assert_int_equal(seen.tdi_error, 1);
    assert_int_equal(seen.error_rule, VTSM_RULE_TDI_7);
    assert_true(seen.has_tdi);
    assert_int_equal(seen.recovered, 1);
    assert_true(seen.ordered);
    vtsm_host_set_event_cb(f->hh.h, NULL, NULL);

    char out[8192];
    watch_end(&w, out, sizeof(out));
    E2E_HAS(out, "tdi_error dev=dev0 tdi=1 rule=TDI.7");
    E2E_HAS(out, "tdi_recovered dev=dev0 tdi=1 rule=TDI.10");
}

/* A function-level reset the host made on its own (through config space, here the
 * device's control) drops the lock: the TSM finds the disagreement at ACCEPT (TDI.8) and
 * `tsm-host reset` recovers it. */
static void test_host_flr_and_cli_reset(void **state)
{
    struct fx *f = *state;
    char out[256], doe[64];
    struct e2e_run run;
    bind_tdi(f, 1, 0);
    assert_int_equal(control(f, "flr", "1", out, sizeof(out)), 0);
    assert_int_equal(guest(f, VTSM_ABI_GOP_ACCEPT, 1, NULL), VTSM_E_PEER_STATE);
    expect_rule(f, "peer_state", "TDI.8");
    e2e_doe(doe, sizeof(doe), f->port);
    const char *argv[] = {"--json", "reset", "dev0", "1", "--doe", doe, NULL};
    assert_int_equal(e2e_host(&f->e, &run, argv), 0);
    E2E_HAS(run.out, "\"last_event\":\"recovered\"");
    E2E_HAS(run.out, "\"state\":\"CONFIG_LOCKED\"");
    /* again: not in ERROR any more (TDI.10), exit 1 */
    assert_int_equal(e2e_host(&f->e, &run, argv), 1);
    E2E_HAS(run.out, "TDI.10");
    /* a digest that is no digest: a usage error before anything is sent */
    const char *bad[] = {"reset", "dev0", "1", "--doe", doe, "--report-digest", "abcd", NULL};
    assert_int_equal(e2e_host(&f->e, &run, bad), 2);
    /* the relock has a new nonce: an ACCEPT with what the guest verified before is refused
     * (TDI.20) until it reads the TDI again */
    assert_int_equal(guest(f, VTSM_ABI_GOP_ACCEPT, 1, NULL), VTSM_E_STATE);
    expect_rule(f, "state", "TDI.20");
    cbor_item_t *res = NULL;
    assert_int_equal(guest(f, VTSM_ABI_GOP_INFO, 1, &res), VTSM_OK);
    assert_int_equal(e2e_uint(res, "recoveries"), 1);
    cbor_decref(&res);
    if (guest(f, VTSM_ABI_GOP_ACCEPT, 1, NULL) != VTSM_OK)
        fail_msg("accept after the CLI's recovery: %s", last(f)->detail);
}

/* The device's measurements change after LOCK behind the TSM's back (fault
 * meas-drift-after-lock): the TSM's re-check before RUN moves the TDI to ERROR (TDI.21),
 * the subscribers hear tdi_error and evidence_changed; after the FLR and relock the device
 * measures as bound again, so the recovery relocks it. */
static const char *const f_meas_drift[] = {"--fault", "meas-drift-after-lock", NULL};

static void test_evidence_changed_then_recovered(void **state)
{
    struct fx *f = *state;
    struct watcher w;
    cbor_item_t *res = NULL;
    char s[64];
    watch_start(f, &w, false, "3");
    bind_tdi(f, 1, 0);
    assert_int_equal(guest(f, VTSM_ABI_GOP_INFO, 1, &res), VTSM_OK);
    cbor_decref(&res);
    assert_int_equal(guest(f, VTSM_ABI_GOP_ACCEPT, 1, NULL), VTSM_E_PEER_STATE);
    expect_rule(f, "peer_state", "TDI.21");
    struct vtsm_result *r = NULL;
    if (reset(f, 1, NULL, NULL, 0, &r) != VTSM_OK)
        fail_msg("tdi_reset: %s", last(f)->detail);
    assert_string_equal(res_text(r, "last_event", s, sizeof(s)), "recovered");
    vtsm_result_free(r);
    char out[4096];
    watch_end(&w, out, sizeof(out));
    E2E_HAS(out, "tdi_error dev=dev0 tdi=1 rule=TDI.21");
    E2E_HAS(out, "evidence_changed dev=dev0 tdi=1 rule=TDI.21");
    E2E_HAS(out, "tdi_recovered dev=dev0 tdi=1 rule=TDI.10");
}

/* A TDI in RUN: the device's error, or an FLR the host made, is found by DEVICE_CHECK
 * (TDI.7 / TDI.8), then recovered; the link check passes again. */
static uint64_t device_check(struct fx *f, char *rule, size_t cap)
{
    struct vtsm_request r = {.dev = "dev0"};
    struct vtsm_result *res = NULL;
    if (vtsm_host_device_check(f->hh.h, &r, &res) != VTSM_OK)
        fail_msg("device_check: %s", last(f)->detail);
    uint64_t errors = 99;
    assert_int_equal(vtsm_result_uint(res, "errors", &errors), VTSM_OK);
    res_text(res, "tdis.0.rule", rule, cap);
    vtsm_result_free(res);
    return errors;
}

static void test_device_check_finds_run_tdi_error(void **state)
{
    struct fx *f = *state;
    struct watcher w;
    char out[256], rule[32], s[32];
    cbor_item_t *res = NULL;
    watch_start(f, &w, false, "3");
    bind_tdi(f, 1, 0);
    assert_int_equal(guest(f, VTSM_ABI_GOP_INFO, 1, &res), VTSM_OK);
    cbor_decref(&res);
    assert_int_equal(guest(f, VTSM_ABI_GOP_ACCEPT, 1, NULL), VTSM_OK);
    /* all well: nothing moves */
    assert_int_equal(device_check(f, rule, sizeof(rule)), 0);
    /* a device error on the running TDI */
    assert_int_equal(control(f, "tdi-error", "1", out, sizeof(out)), 0);
    assert_int_equal(device_check(f, rule, sizeof(rule)), 1);
    assert_string_equal(rule, "TDI.7");
    assert_int_equal(guest(f, VTSM_ABI_GOP_INFO, 1, &res), VTSM_OK);
    assert_string_equal(e2e_str(res, "state", s, sizeof(s)), "ERROR");
    assert_false(e2e_bool(res, "mmio_enabled"));
    cbor_decref(&res);
    /* recovered, verified again by the guest, running, the link sound */
    assert_int_equal(reset(f, 1, NULL, NULL, 0, NULL), VTSM_OK);
    assert_int_equal(guest(f, VTSM_ABI_GOP_INFO, 1, &res), VTSM_OK);
    cbor_decref(&res);
    assert_int_equal(guest(f, VTSM_ABI_GOP_ACCEPT, 1, NULL), VTSM_OK);
    assert_int_equal(vtsm_host_ide_link_check_cbor(f->hh.h, "dev0", &res), VTSM_OK);
    assert_true(e2e_bool(res, "streams.0.rp_to_device") && e2e_bool(res, "streams.0.device_to_rp"));
    cbor_decref(&res);
    /* an FLR the host made on the running TDI: CONFIG_UNLOCKED on the device, TDI.8 */
    assert_int_equal(control(f, "flr", "1", out, sizeof(out)), 0);
    assert_int_equal(device_check(f, rule, sizeof(rule)), 1);
    assert_string_equal(rule, "TDI.8");
    char ev[4096];
    watch_end(&w, ev, sizeof(ev));
    E2E_HAS(ev, "tdi_error dev=dev0 tdi=1 rule=TDI.7");
    E2E_HAS(ev, "tdi_recovered dev=dev0 tdi=1 rule=TDI.10");
    E2E_HAS(ev, "tdi_error dev=dev0 tdi=1 rule=TDI.8");
}

/* ---------------------------------------------------------------- firmware update */

/* The measurement record of TDI tdi as its owner's INFO reports it. */
static size_t info_record(struct fx *f, uint32_t tdi, uint8_t *out, size_t cap)
{
    cbor_item_t *res = NULL;
    assert_int_equal(guest(f, VTSM_ABI_GOP_INFO, tdi, &res), VTSM_OK);
    const cbor_item_t *rec = e2e_get(res, "measurements.record");
    assert_non_null(rec);
    size_t n = cbor_bytestring_length(rec);
    assert_true(n <= cap);
    memcpy(out, cbor_bytestring_handle(rec), n);
    cbor_decref(&res);
    return n;
}

static void test_firmware_update_before_lock(void **state)
{
    struct fx *f = *state;
    char out[256];
    uint8_t before[4096], after[4096];
    cbor_item_t *res = NULL;
    bind_tdi(f, 0, 0);
    size_t bl = info_record(f, 0, before, sizeof(before));
    assert_int_equal(vtsm_host_tdi_unbind_cbor(f->hh.h, "dev0", 0, &res), VTSM_OK);
    cbor_decref(&res);
    /* nothing locked: the update is allowed and breaks no lock */
    assert_int_equal(control(f, "fw-update", NULL, out, sizeof(out)), 0);
    E2E_HAS(out, "ok fw-update version 1.0.1 tdis_to_error 0");
    /* a bind after it sees (and binds) the new measurements */
    bind_tdi(f, 0, 0);
    size_t al = info_record(f, 0, after, sizeof(after));
    assert_true(al != bl || memcmp(before, after, bl) != 0);
    if (guest(f, VTSM_ABI_GOP_ACCEPT, 0, NULL) != VTSM_OK)
        fail_msg("accept after the update: %s", last(f)->detail);
    /* an unknown control is refused by the device */
    assert_int_equal(control(f, "reflash", NULL, out, sizeof(out)), 1);
    E2E_HAS(out, "error");
}

static void test_firmware_update_after_lock(void **state)
{
    struct fx *f = *state;
    char out[256], s[64];
    struct vtsm_result *r = NULL;
    struct watcher w;
    watch_start(f, &w, true, "5"); /* tdi_error, evidence_changed x3, tdi_recovered */

    /* NO_FW_UPDATE: the device refuses the update while the lock holds */
    bind_tdi(f, 2, VTSM_TDISP_LOCK_NO_FW_UPDATE);
    assert_int_equal(control(f, "fw-update", NULL, out, sizeof(out)), 1);
    E2E_HAS(out, "error DEVTDI.8");
    assert_int_equal(guest(f, VTSM_ABI_GOP_ACCEPT, 2, NULL), VTSM_OK); /* still sound */
    cbor_item_t *res = NULL;
    assert_int_equal(vtsm_host_tdi_unbind_cbor(f->hh.h, "dev0", 2, &res), VTSM_OK);
    cbor_decref(&res);

    /* without NO_FW_UPDATE the update happens and the lock is broken (DEVTDI.9) */
    bind_tdi(f, 1, 0);
    assert_int_equal(control(f, "fw-update", NULL, out, sizeof(out)), 0);
    E2E_HAS(out, "ok fw-update version 1.0.1 tdis_to_error 1");
    assert_int_equal(guest(f, VTSM_ABI_GOP_ACCEPT, 1, NULL), VTSM_E_PEER_STATE);
    expect_rule(f, "peer_state", "TDI.7");

    /* the recovery sees other measurements: stays ERROR (TDI.11), with what it saw */
    assert_int_equal(reset(f, 1, NULL, NULL, 0, &r), VTSM_E_PEER_STATE);
    expect_rule(f, "peer_state", "TDI.11");
    assert_non_null(r);
    assert_string_equal(res_text(r, "state", s, sizeof(s)), "ERROR");
    bool same = true;
    assert_int_equal(vtsm_result_bool(r, "same_as_bound", &same), VTSM_OK);
    assert_false(same);
    const uint8_t *rd = NULL, *md = NULL;
    size_t rdl = 0, mdl = 0;
    assert_int_equal(vtsm_result_bytes(r, "report_digest", &rd, &rdl), VTSM_OK);
    assert_int_equal(vtsm_result_bytes(r, "measurements_digest", &md, &mdl), VTSM_OK);
    assert_int_equal(rdl, mdl);
    uint8_t ref_r[64], ref_m[64], bad_m[64];
    memcpy(ref_r, rd, rdl);
    memcpy(ref_m, md, mdl);
    memcpy(bad_m, md, mdl);
    bad_m[0] ^= 1;
    size_t hl = rdl;
    vtsm_result_free(r);
    r = NULL;

    /* the guest sees the refused recovery */
    assert_int_equal(guest(f, VTSM_ABI_GOP_INFO, 1, &res), VTSM_OK);
    assert_string_equal(e2e_str(res, "last_event", s, sizeof(s)), "recovery_refused");
    assert_string_equal(e2e_str(res, "last_rule", s, sizeof(s)), "TDI.11");
    assert_string_equal(e2e_str(res, "state", s, sizeof(s)), "ERROR");
    cbor_decref(&res);

    /* wrong reference values: still refused */
    assert_int_equal(reset(f, 1, ref_r, bad_m, hl, NULL), VTSM_E_PEER_STATE);
    expect_rule(f, "peer_state", "TDI.11");
    /* the host's reference values for the new firmware: recovered, the new evidence bound */
    if (reset(f, 1, ref_r, ref_m, hl, &r) != VTSM_OK)
        fail_msg("tdi_reset with reference values: %s", last(f)->detail);
    assert_string_equal(res_text(r, "last_event", s, sizeof(s)), "recovered_reference");
    assert_string_equal(res_text(r, "state", s, sizeof(s)), "CONFIG_LOCKED");
    bool matched = false;
    assert_int_equal(vtsm_result_bool(r, "reference_values_matched", &matched), VTSM_OK);
    assert_true(matched);
    vtsm_result_free(r);
    assert_int_equal(guest(f, VTSM_ABI_GOP_INFO, 1, &res), VTSM_OK);
    assert_int_equal(e2e_uint(res, "recoveries"), 1);
    cbor_decref(&res);
    assert_int_equal(guest(f, VTSM_ABI_GOP_ACCEPT, 1, NULL), VTSM_OK);

    char ev[16384];
    watch_end(&w, ev, sizeof(ev));
    E2E_HAS(ev, "\"event\":\"tdi_error\"");
    E2E_HAS(ev, "\"event\":\"evidence_changed\"");
    E2E_HAS(ev, "\"rule\":\"TDI.11\"");
    E2E_HAS(ev, "\"event\":\"tdi_recovered\"");
    E2E_HAS(ev, "\"tdi\":1");
}

/* ---------------------------------------------------------------- events */

static void test_session_lost_event(void **state)
{
    struct fx *f = *state;
    struct watcher w;
    watch_start(f, &w, false, "1");
    /* the device dies; the next verb loses the session */
    pid_t dev = f->e.pids[1]; /* tsmd is pids[0], the device pids[1] */
    e2e_kill(&f->e, dev);
    cbor_item_t *res = NULL;
    assert_int_not_equal(vtsm_host_spdm_heartbeat_cbor(f->hh.h, "dev0", &res), VTSM_OK);
    if (res)
        cbor_decref(&res);
    char out[4096];
    watch_end(&w, out, sizeof(out));
    E2E_HAS(out, "session_lost dev=dev0 tdi=- rule=PDEV.12");
}

static const char *const policy_args[] = {"--key-update-interval-ms", "300",
                                          "--ide-refresh-interval-ms", "300", NULL};

static void test_policy_events(void **state)
{
    struct fx *f = *state;
    struct watcher w;
    watch_start(f, &w, false, "2");
    char out[4096];
    watch_end(&w, out, sizeof(out));
    E2E_HAS(out, "spdm_key_update_required dev=dev0 tdi=- rule=EVENT.1");
    E2E_HAS(out, "ide_key_refresh_due dev=dev0 tdi=- rule=EVENT.2");
}

static const char *const seq_args[] = {"--key-update-seq", "20", NULL};

static void test_key_update_by_sequence_number(void **state)
{
    struct fx *f = *state;
    struct watcher w;
    watch_start(f, &w, false, "1");
    cbor_item_t *res = NULL;
    /* heartbeats until the session's sequence number passes 20 */
    for (int i = 0; i < 25; i++) {
        assert_int_equal(vtsm_host_spdm_heartbeat_cbor(f->hh.h, "dev0", &res), VTSM_OK);
        cbor_decref(&res);
    }
    char out[4096];
    watch_end(&w, out, sizeof(out));
    E2E_HAS(out, "spdm_key_update_required dev=dev0 tdi=- rule=EVENT.1");
    E2E_HAS(out, "sequence number");
}

/* A subscriber that never reads: dropped once its output stalls (EVENT.3, as for unread
 * replies), while tsmd keeps serving everyone else. Events come every millisecond. */
static const char *const flood_args[] = {"--key-update-interval-ms", "1", "--frame-timeout-ms",
                                         "1000", NULL};

static void test_unread_subscriber_dropped(void **state)
{
    struct fx *f = *state;
    int fd = e2e_abi_connect(&f->e, true);
    assert_true(fd >= 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    cbor_item_t *sub = vtsm_abi_request_msg(VTSM_ABI_OP_EVENTS_SUBSCRIBE, 7);
    assert_int_equal(e2e_abi_send(fd, sub), 0);
    cbor_item_t *ack = e2e_abi_recv(fd);
    assert_non_null(ack);
    assert_int_equal(e2e_op(ack), VTSM_ABI_OP_RESULT);
    cbor_decref(&ack);
    /* read nothing; tsmd stays responsive meanwhile */
    long end = vtsm_now_ms() + 30000;
    bool dropped = false;
    while (!dropped && vtsm_now_ms() < end) {
        cbor_item_t *res = NULL;
        assert_int_equal(vtsm_host_status_cbor(f->hh.h, "dev0", &res), VTSM_OK);
        cbor_decref(&res);
        usleep(200000);
        /* tsmd closed its end: hang-up, while the unread events still sit in the socket */
        struct pollfd pfd = {.fd = fd, .events = POLLRDHUP};
        dropped = poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLHUP | POLLRDHUP));
    }
    assert_true(dropped);
    /* the socket was closed by tsmd: draining it ends in EOF */
    char buf[65536];
    ssize_t k;
    long stop = vtsm_now_ms() + 10000;
    while ((k = read(fd, buf, sizeof(buf))) > 0 && vtsm_now_ms() < stop)
        ;
    assert_true(k <= 0);
    close(fd);
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]);
        if (!strcmp(argv[1], "test_policy_events"))
            tsmd_args = policy_args;
        if (!strcmp(argv[1], "test_key_update_by_sequence_number"))
            tsmd_args = seq_args;
        if (!strcmp(argv[1], "test_unread_subscriber_dropped"))
            tsmd_args = flood_args;
        if (!strcmp(argv[1], "test_evidence_changed_then_recovered"))
            devemu_args = f_meas_drift;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_recovery_identical, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_flr_and_cli_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_evidence_changed_then_recovered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_check_finds_run_tdi_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_firmware_update_before_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_firmware_update_after_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_lost_event, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policy_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_update_by_sequence_number, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unread_subscriber_dropped, setup, teardown),
    };
    return cmocka_run_group_tests_name("e2e_ras", tests, NULL, NULL);
}
