/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * End to end with real processes: tsmd, tsm-devemu, tsm-host and tsm-guest. A TVM whose
 * key the guest shim made is created with only its public half; two TDIs are bound to
 * it; the guest verifies fresh evidence (token signed by the TSM identity, bound to the
 * report, chain and measurements), accepts one TDI against matching reference values
 * (-> RUN) and rejects the other on a mismatch (the host sees guest_rejected). Replayed
 * and tampered envelopes relayed by the host are refused (rules GUEST.2, GUEST.1).
 * Skipped when tsmd does not answer GUEST_REQUEST.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "e2e_util.h"
#include "vtsm_proc.h"
#include "vtsm_abi.h"
#include "vtsm_guest_cbor.h"
#include "vtsm_host_cbor.h"

#define HAS(hay, needle)                                                                           \
    do {                                                                                           \
        if (!strstr((hay), (needle)))                                                              \
            fail_msg("expected \"%s\" in:\n%s", (needle), (hay));                                  \
    } while (0)

struct fx {
    struct e2e e;
    char doe[64];
    char key[160];
};

static int setup(void **state)
{
    static struct fx f;
    memset(&f, 0, sizeof(f));
    if (e2e_setup(&f.e, NULL) != 0)
        return -1;
    int port = e2e_devemu(&f.e, NULL);
    if (port <= 0)
        return -1;
    e2e_doe(f.doe, sizeof(f.doe), port);
    snprintf(f.key, sizeof(f.key), "%s/tvm.pem", f.e.dir);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    return e2e_teardown(&f->e);
}

static void host(struct fx *f, struct e2e_run *r, const char *const *argv, int want)
{
    e2e_host(&f->e, r, argv);
    if (r->status != want)
        fail_msg("tsm-host %s: exit %d (wanted %d)\n%s%s", argv[0], r->status, want, r->out,
                 r->err);
}

static void slurp(const char *path, char *buf, size_t cap)
{
    FILE *fp = fopen(path, "r");
    size_t n = 0;
    if (fp) {
        n = fread(buf, 1, cap - 1, fp);
        fclose(fp);
    }
    buf[n] = '\0';
}

/* tsm-guest --socket S --key K --tvm N args...; reaped within 45 s. */
static void guest(struct fx *f, struct e2e_run *r, uint32_t tvm, const char *const *args)
{
    const char *argv[32];
    char tv[16], op[200], ep[200];
    int n = 0;
    snprintf(tv, sizeof(tv), "%u", tvm);
    argv[n++] = VTSM_BIN_DIR "/tsm-guest";
    argv[n++] = "--socket";
    argv[n++] = f->e.sock;
    argv[n++] = "--key";
    argv[n++] = f->key;
    argv[n++] = "--tvm";
    argv[n++] = tv;
    for (size_t i = 0; args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    snprintf(op, sizeof(op), "%s/guest.out", f->e.dir);
    snprintf(ep, sizeof(ep), "%s/guest.err", f->e.dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int o = open(op, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(ep, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
            _exit(127);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int ws = vtsm_proc_wait(pid, 45000);
    r->status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
    slurp(op, r->out, sizeof(r->out));
    slurp(ep, r->err, sizeof(r->err));
}

/* A relay connection with the device's DOE responder registered (closed before CLI runs,
 * so the responder serves one host at a time). */
struct relay {
    struct vtsm_host *h;
    struct vtsm_doe_tcp *doe;
};

static void relay_open(struct fx *f, struct relay *r)
{
    assert_int_equal(vtsm_host_open(f->e.sock, &r->h), VTSM_OK);
    vtsm_host_set_timeout(r->h, 30000);
    assert_int_equal(vtsm_doe_tcp_open(f->doe, &r->doe), VTSM_OK);
    assert_int_equal(vtsm_host_register_doe(r->h, "0000:01:00.0", vtsm_doe_tcp_fn, r->doe),
                     VTSM_OK);
}

static void relay_close(struct relay *r)
{
    vtsm_host_close(r->h);
    vtsm_doe_tcp_close(r->doe);
    r->h = NULL;
    r->doe = NULL;
}

/* Reference values taken from verified evidence (as an owner would record them). */
static void reference_from(const cbor_item_t *info, const char *path, bool spoil_measurement)
{
    const uint8_t *rd, *cd, *val;
    size_t rl, cl, vl;
    uint64_t ii, idx;
    const cbor_item_t *mmio, *m, *blocks;
    char h1[100], h2[100], hv[300];

    assert_int_equal(vtsm_abi_get_bytes(info, "report_digest", &rd, &rl), VTSM_OK);
    assert_int_equal(vtsm_abi_get_bytes(info, "cert_chain_digest", &cd, &cl), VTSM_OK);
    assert_int_equal(vtsm_abi_get_uint(info, "interface_info", &ii), VTSM_OK);
    assert_int_equal(vtsm_abi_get_array(info, "mmio", &mmio), VTSM_OK);
    assert_int_equal(vtsm_abi_get_map(info, "measurements", &m), VTSM_OK);
    assert_int_equal(vtsm_abi_get_array(m, "blocks", &blocks), VTSM_OK);
    assert_true(cbor_array_size(blocks) > 0 && rl <= 48 && cl <= 48);
    assert_int_equal(vtsm_abi_get_uint(cbor_array_handle(blocks)[0], "index", &idx), VTSM_OK);
    assert_int_equal(vtsm_abi_get_bytes(cbor_array_handle(blocks)[0], "value", &val, &vl), VTSM_OK);
    assert_true(vl > 0 && vl <= 128);
    vtsm_hex(h1, rd, rl);
    vtsm_hex(h2, cd, cl);
    vtsm_hex(hv, val, vl);
    if (spoil_measurement)
        hv[0] = hv[0] == '0' ? '1' : '0';
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fprintf(fp,
            "# d0 reference values\nreport_digest %s\ncert_chain_digest %s\n"
            "interface_info 0x%04llx\nmmio_ranges %zu\nmeasurement %llu %s\n",
            h1, h2, (unsigned long long)ii, cbor_array_size(mmio), (unsigned long long)idx, hv);
    fclose(fp);
}

static void test_guest_end_to_end(void **state)
{
    struct fx *f = *state;
    static struct e2e_run r;
    struct relay rl = {0};
    struct vtsm_guest *g = NULL;
    uint8_t pub[VTSM_GUEST_PUBKEY_SIZE];
    char pub_hex[2 * VTSM_GUEST_PUBKEY_SIZE + 1], tvm_s[16], ref[200], bad[200];
    cbor_item_t *res = NULL;

    /* the device, and a TVM registered with the public half of the guest's key */
    const char *conn[] = {"connect", "0000:01:00.0", "--doe", f->doe, NULL};
    host(f, &r, conn, 0);
    assert_int_equal(vtsm_guest_keygen(f->key), VTSM_OK);
    assert_int_equal(vtsm_guest_open(f->key, 0, &g), VTSM_OK);
    vtsm_guest_pubkey(g, pub);
    vtsm_guest_close(g);
    vtsm_hex(pub_hex, pub, sizeof(pub));
    const char *create[] = {"--json", "tvm-create", "--name", "g1", "--guest-key", pub_hex, NULL};
    host(f, &r, create, 0);
    const char *t = strstr(r.out, "\"tvm\":");
    assert_non_null(t);
    uint32_t tvm = (uint32_t)strtoul(t + 6, NULL, 10);
    assert_true(tvm >= 1);
    snprintf(tvm_s, sizeof(tvm_s), "%u", tvm);
    const char *bind1[] = {"bind", "0000:01:00.0", "1", tvm_s, "--doe", f->doe, NULL};
    host(f, &r, bind1, 0);
    const char *bind2[] = {"bind", "0000:01:00.0", "2", tvm_s, "--doe", f->doe, NULL};
    host(f, &r, bind2, 0);

    assert_int_equal(vtsm_guest_open(f->key, tvm, &g), VTSM_OK);
    relay_open(f, &rl);
    vtsm_status st =
        vtsm_guest_call_cbor(g, rl.h, VTSM_ABI_GOP_LIST, NULL, VTSM_GUEST_NO_TDI, NULL, NULL, &res);
    if (st != VTSM_OK)
        fail_msg("LIST: %s", vtsm_err_detail());
    cbor_decref(&res);

    /* fresh evidence for TDI 1, verified and bound; then reference values from it */
    struct vtsm_guest_decision d;
    st = vtsm_guest_decide(g, rl.h, "0000:01:00.0", 1, NULL, NULL, &d);
    if (st != VTSM_OK || d.verdict != VTSM_GUEST_ACCEPT)
        fail_msg("decide d0 TDI 1: status %d verdict %d: %s", (int)st, (int)d.verdict, d.reason);
    snprintf(ref, sizeof(ref), "%s/good.ref", f->e.dir);
    snprintf(bad, sizeof(bad), "%s/bad.ref", f->e.dir);
    reference_from(vtsm_result_item(d.info), ref, false);
    reference_from(vtsm_result_item(d.info), bad, true);
    vtsm_guest_decision_clear(&d);

    /* GUEST.2: the host replays a request it relayed; GUEST.1: it alters one */
    cbor_item_t *env = NULL;
    assert_int_equal(
        vtsm_guest_build_cbor(g, VTSM_ABI_GOP_LIST, NULL, VTSM_GUEST_NO_TDI, NULL, NULL, &env),
        VTSM_OK);
    assert_int_equal(vtsm_host_guest_relay_cbor(rl.h, env, &res), VTSM_OK);
    cbor_decref(&res);
    assert_int_equal(vtsm_host_guest_relay_cbor(rl.h, env, &res), VTSM_E_REPLAY);
    assert_string_equal(vtsm_host_last_error(rl.h)->name, "replay");
    assert_string_equal(vtsm_host_last_error(rl.h)->rule_id, "GUEST.2");
    assert_int_equal(vtsm_host_last_error(rl.h)->rule, VTSM_RULE_GUEST_2);
    if (res)
        cbor_decref(&res);
    cbor_decref(&env);
    /* a fresh request whose body the host changes (keeping the signature) */
    const uint8_t *bp, *sp;
    size_t bl, sl;
    uint8_t body[256];
    cbor_item_t *env2 = NULL;
    assert_int_equal(
        vtsm_guest_build_cbor(g, VTSM_ABI_GOP_LIST, NULL, VTSM_GUEST_NO_TDI, NULL, NULL, &env),
        VTSM_OK);
    assert_int_equal(vtsm_abi_get_bytes(env, "body", &bp, &bl), VTSM_OK);
    assert_int_equal(vtsm_abi_get_bytes(env, "sig", &sp, &sl), VTSM_OK);
    assert_true(bl <= sizeof(body));
    memcpy(body, bp, bl);
    body[bl - 1] ^= 0x01; /* the seq's last byte */
    env2 = vtsm_abi_map_new();
    assert_int_equal(vtsm_abi_put_uint(env2, "tvm", tvm), VTSM_OK);
    assert_int_equal(vtsm_abi_put_bytes(env2, "body", body, bl), VTSM_OK);
    assert_int_equal(vtsm_abi_put_bytes(env2, "sig", sp, sl), VTSM_OK);
    assert_int_equal(vtsm_host_guest_relay_cbor(rl.h, env2, &res), VTSM_E_AUTH);
    assert_int_equal(vtsm_host_last_error(rl.h)->rule, VTSM_RULE_GUEST_1);
    if (res)
        cbor_decref(&res);
    cbor_decref(&env2);
    cbor_decref(&env);
    relay_close(&rl);
    vtsm_guest_close(g);

    /* the CLI, as the relaying host: accept TDI 1 against matching values */
    const char *acc1[] = {"accept", "0000:01:00.0", "1", "--reference", ref, "--doe", f->doe, NULL};
    guest(f, &r, tvm, acc1);
    if (r.status != 0)
        fail_msg("accept TDI 1: exit %d\n%s%s", r.status, r.out, r.err);
    HAS(r.out, "state: RUN");
    /* ... and TDI 2 against a spoiled measurement: rejected with the reason */
    const char *acc2[] = {"accept", "0000:01:00.0", "2", "--reference", bad, "--doe", f->doe, NULL};
    guest(f, &r, tvm, acc2);
    if (r.status != 1)
        fail_msg("accept TDI 2: exit %d\n%s%s", r.status, r.out, r.err);
    HAS(r.err, "tsm-guest: accept failed: policy_refused (policy): ");
    HAS(r.err, "mismatch: reference ");
    HAS(r.err, "; TDI rejected");
    /* info with a nonce, the token verified by the CLI */
    const char *info[] = {"info", "0000:01:00.0", "1", "--fresh", "--doe", f->doe, NULL};
    guest(f, &r, tvm, info);
    if (r.status != 0)
        fail_msg("info: exit %d\n%s%s", r.status, r.out, r.err);
    HAS(r.out, "state: RUN");
    HAS(r.out, "token verified");

    /* the host sees RUN for TDI 1 and the guest's rejection of TDI 2 */
    const char *status[] = {"--json", "status", "0000:01:00.0", NULL};
    host(f, &r, status, 0);
    HAS(r.out, "\"state\":\"RUN\"");
    HAS(r.out, "\"guest_rejected\":\"");
    HAS(r.out, "mismatch");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_guest_end_to_end, setup, teardown),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
