/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * End to end, the Linux devsec flow through the tsm-guest CLI: real tsmd, tsm-devemu,
 * tsm-host and tsm-guest processes. The host binds a TDI to a TVM; the guest reads it
 * (info), accepts it (RUN), reads the TSM's view (debug-read), unlocks it (CONFIG_UNLOCKED,
 * still assigned: the host's STATUS shows guest_unlocked), locks it again and accepts it
 * again. DEBUG_WRITE is refused (policy_refused, GUEST.6) unless the TVM was created with
 * --debug; for a debug TVM it moves the TDI to ERROR (TDI.24 in STATUS and debug-read), and
 * the guest recovers by unlock and lock. Every exit code and every rule in the CLI's --json
 * output is asserted; refusals: LOCK of a locked TDI (state, TDI.22), LOCK by another TVM
 * (not_owner, TDI.22) or UNLOCK by it (not_owner, TDI.5), UNLOCK of an unlocked TDI (state,
 * TDI.23), DEBUG_WRITE in ERROR (state, TDI.24).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e_util.h"
#include "vtsm_guest_cbor.h"
#include "vtsm_proc.h"

#define DEV "0000:01:00.0"

struct fx {
    struct e2e e;
    char doe[64];
    char key_a[160], key_b[160];
    char tvm_a[16], tvm_b[16];
};

static struct e2e_run run; /* large: not on the stack */

#define HAS(hay, needle)                                                                           \
    do {                                                                                           \
        if (!strstr((hay), (needle)))                                                              \
            fail_msg("expected \"%s\" in:\n%s", (needle), (hay));                                  \
    } while (0)
#define HAS_NOT(hay, needle)                                                                       \
    do {                                                                                           \
        if (strstr((hay), (needle)))                                                               \
            fail_msg("did not expect \"%s\" in:\n%s", (needle), (hay));                            \
    } while (0)

static void host(struct fx *f, const char *const *argv, int want)
{
    e2e_host(&f->e, &run, argv);
    if (run.status != want)
        fail_msg("tsm-host %s: exit %d (wanted %d)\n%s%s", argv[0], run.status, want, run.out,
                 run.err);
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

/* tsm-guest --json --socket S --key K --tvm N VERB DEV 1 [--doe D]; its exit code must be
 * want; stdout in run.out. */
static void guest(struct fx *f, const char *key, const char *tvm, const char *verb, bool doe,
                  int want)
{
    char op[200], ep[200];
    const char *argv[] = {VTSM_BIN_DIR "/tsm-guest",
                          "--json",
                          "--socket",
                          f->e.sock,
                          "--key",
                          key,
                          "--tvm",
                          tvm,
                          verb,
                          DEV,
                          "1",
                          doe ? "--doe" : NULL,
                          f->doe,
                          NULL};
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
    run.status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
    slurp(op, run.out, sizeof(run.out));
    slurp(ep, run.err, sizeof(run.err));
    if (run.status != want)
        fail_msg("tsm-guest %s: exit %d (wanted %d)\n%s%s", verb, run.status, want, run.out,
                 run.err);
}

/* A refusal: exit 1, {"error": {... name, rule}} on stdout. */
static void refused(struct fx *f, const char *key, const char *tvm, const char *verb, bool doe,
                    const char *name, const char *rule)
{
    char want[64];
    guest(f, key, tvm, verb, doe, 1);
    HAS(run.out, "{\"error\":{");
    snprintf(want, sizeof(want), "\"name\":\"%s\"", name);
    HAS(run.out, want);
    snprintf(want, sizeof(want), "\"rule\":\"%s\"", rule);
    HAS(run.out, want);
    snprintf(want, sizeof(want), "[rule %s]", rule);
    HAS(run.err, want);
}

/* A TVM for a fresh key; its number into out. */
static void new_tvm(struct fx *f, const char *key, const char *name, bool debug, char *out,
                    size_t cap)
{
    struct vtsm_guest *g = NULL;
    uint8_t pub[VTSM_GUEST_PUBKEY_SIZE];
    char hex[2 * VTSM_GUEST_PUBKEY_SIZE + 1];
    assert_int_equal(vtsm_guest_keygen(key), VTSM_OK);
    assert_int_equal(vtsm_guest_open(key, 0, &g), VTSM_OK);
    vtsm_guest_pubkey(g, pub);
    vtsm_guest_close(g);
    vtsm_hex(hex, pub, sizeof(pub));
    const char *argv[] = {
        "--json", "tvm-create", "--name", name, "--guest-key", hex, debug ? "--debug" : NULL, NULL};
    host(f, argv, 0);
    const char *t = strstr(run.out, "\"tvm\":");
    assert_non_null(t);
    snprintf(out, cap, "%lu", strtoul(t + 6, NULL, 10));
    assert_true(strcmp(out, "0") != 0);
}

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
    snprintf(f.key_a, sizeof(f.key_a), "%s/tvm-a.pem", f.e.dir);
    snprintf(f.key_b, sizeof(f.key_b), "%s/tvm-b.pem", f.e.dir);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    return e2e_teardown(&f->e);
}

/* connect, a TVM A (debug or not) and a TVM B, TDI 1 bound to A */
static void prepare(struct fx *f, bool debug)
{
    const char *conn[] = {"connect", DEV, "--doe", f->doe, NULL};
    host(f, conn, 0);
    new_tvm(f, f->key_a, "a", debug, f->tvm_a, sizeof(f->tvm_a));
    new_tvm(f, f->key_b, "b", false, f->tvm_b, sizeof(f->tvm_b));
    const char *bind[] = {"bind", DEV, "1", f->tvm_a, "--doe", f->doe, NULL};
    host(f, bind, 0);
}

/* the host's STATUS of the device (one TDI bound) */
static void status(struct fx *f)
{
    const char *st[] = {"--json", "status", DEV, NULL};
    host(f, st, 0);
}

/* info, then accept: RUN */
static void info_accept(struct fx *f)
{
    guest(f, f->key_a, f->tvm_a, "info", false, 0);
    HAS(run.out, "\"state\":\"CONFIG_LOCKED\"");
    guest(f, f->key_a, f->tvm_a, "accept", true, 0);
    HAS(run.out, "\"state\":\"RUN\"");
    HAS(run.out, "\"mmio_enabled\":true");
}

static void test_lock_accept_unlock_relock(void **state)
{
    struct fx *f = *state;
    prepare(f, false);

    /* bound by the host: already CONFIG_LOCKED, a guest LOCK is refused */
    refused(f, f->key_a, f->tvm_a, "lock", true, "state", "TDI.22");
    info_accept(f);
    guest(f, f->key_a, f->tvm_a, "debug-read", false, 0);
    HAS(run.out, "\"state\":\"RUN\"");
    HAS(run.out, "\"after_lock\":true");
    /* not a debug TVM */
    refused(f, f->key_a, f->tvm_a, "debug-write", false, "policy_refused", "GUEST.6");
    /* another TVM may not touch it */
    refused(f, f->key_b, f->tvm_b, "unlock", true, "not_owner", "TDI.5");

    /* the devsec unlock: CONFIG_UNLOCKED, still assigned; the host sees guest_unlocked */
    guest(f, f->key_a, f->tvm_a, "unlock", true, 0);
    HAS(run.out, "\"state\":\"CONFIG_UNLOCKED\"");
    HAS(run.out, "\"acknowledged\":true");
    HAS(run.out, "\"mmio_enabled\":false");
    status(f);
    HAS(run.out, "\"state\":\"CONFIG_UNLOCKED\"");
    HAS(run.out, "\"guest_unlocked\":true");
    refused(f, f->key_a, f->tvm_a, "unlock", true, "state", "TDI.23");
    refused(f, f->key_b, f->tvm_b, "lock", true, "not_owner", "TDI.22");
    refused(f, f->key_a, f->tvm_a, "accept", true, "state", "TDI.4");

    /* lock again, verify again, accept again */
    guest(f, f->key_a, f->tvm_a, "lock", true, 0);
    HAS(run.out, "\"state\":\"CONFIG_LOCKED\"");
    status(f);
    HAS(run.out, "\"state\":\"CONFIG_LOCKED\"");
    HAS_NOT(run.out, "guest_unlocked");
    info_accept(f);
    status(f);
    HAS(run.out, "\"state\":\"RUN\"");
    refused(f, f->key_a, f->tvm_a, "debug-write", false, "policy_refused", "GUEST.6");
    status(f);
    HAS(run.out, "\"state\":\"RUN\"");
}

static void test_debug_tvm_debug_write_and_recovery(void **state)
{
    struct fx *f = *state;
    prepare(f, true);
    info_accept(f);

    /* a debug TVM's DEBUG_WRITE: ERROR as if the device had failed */
    guest(f, f->key_a, f->tvm_a, "debug-write", false, 0);
    HAS(run.out, "\"state\":\"ERROR\"");
    status(f);
    HAS(run.out, "\"state\":\"ERROR\"");
    HAS(run.out, "\"error_rule\":\"TDI.24\"");
    guest(f, f->key_a, f->tvm_a, "debug-read", false, 0);
    HAS(run.out, "\"state\":\"ERROR\"");
    HAS(run.out, "\"error_rule\":\"TDI.24\"");
    refused(f, f->key_a, f->tvm_a, "debug-write", false, "state", "TDI.24");
    refused(f, f->key_a, f->tvm_a, "accept", true, "state", "TDI.4");

    /* the guest's recovery: unlock, lock, verify, accept */
    guest(f, f->key_a, f->tvm_a, "unlock", true, 0);
    HAS(run.out, "\"state\":\"CONFIG_UNLOCKED\"");
    status(f);
    HAS(run.out, "\"guest_unlocked\":true");
    HAS_NOT(run.out, "error_rule");
    refused(f, f->key_a, f->tvm_a, "debug-write", false, "state", "TDI.24");
    guest(f, f->key_a, f->tvm_a, "lock", true, 0);
    HAS(run.out, "\"state\":\"CONFIG_LOCKED\"");
    info_accept(f);
    status(f);
    HAS(run.out, "\"state\":\"RUN\"");
}

/* The Linux devsec flow from its start: the host assigns TDI 1 to TVM A without locking it
 * (tdi_bind assign=true), the TVM cannot be destroyed while it owns it (TVM.2), only the
 * owner LOCKs it (TDI.22), then INFO and ACCEPT take it to RUN; a second assign of the
 * locked TDI is refused (TDI.1). */
static void test_assign_then_guest_lock(void **state)
{
    struct fx *f = *state;
    char tdi_arg[32], tvm_arg[32], dev_arg[64];
    const char *conn[] = {"connect", DEV, "--doe", f->doe, NULL};
    host(f, conn, 0);
    new_tvm(f, f->key_a, "a", false, f->tvm_a, sizeof(f->tvm_a));
    new_tvm(f, f->key_b, "b", false, f->tvm_b, sizeof(f->tvm_b));
    snprintf(dev_arg, sizeof(dev_arg), "dev=%s", DEV);
    snprintf(tdi_arg, sizeof(tdi_arg), "tdi=1");
    snprintf(tvm_arg, sizeof(tvm_arg), "tvm=%s", f->tvm_a);
    const char *assign[] = {"--json",      "tdi_bind", dev_arg, tdi_arg, tvm_arg,
                            "assign=true", "--doe",    f->doe,  NULL};
    host(f, assign, 0);
    HAS(run.out, "\"state\":\"CONFIG_UNLOCKED\"");
    HAS_NOT(run.out, "\"report_digest\"");
    status(f);
    HAS(run.out, "\"state\":\"CONFIG_UNLOCKED\"");
    HAS(run.out, "\"bound_tdis\":1");
    char destroy_tvm[32];
    snprintf(destroy_tvm, sizeof(destroy_tvm), "%s", f->tvm_a);
    const char *destroy[] = {"--json", "tvm-destroy", destroy_tvm, NULL};
    host(f, destroy, 1);
    HAS(run.out, "\"rule\":\"TVM.2\"");

    /* not the owner: TVM B cannot lock it; nothing can be accepted before a lock */
    refused(f, f->key_b, f->tvm_b, "lock", true, "not_owner", "TDI.22");
    refused(f, f->key_a, f->tvm_a, "accept", true, "state", "TDI.4");
    /* the owner locks it, verifies and accepts */
    guest(f, f->key_a, f->tvm_a, "lock", true, 0);
    HAS(run.out, "\"state\":\"CONFIG_LOCKED\"");
    info_accept(f);
    /* assigning the running TDI again is refused */
    host(f, assign, 1);
    HAS(run.out, "\"rule\":\"TDI.1\"");
    status(f);
    HAS(run.out, "\"state\":\"RUN\"");
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lock_accept_unlock_relock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_debug_tvm_debug_write_and_recovery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_assign_then_guest_lock, setup, teardown),
    };
    return cmocka_run_group_tests_name("e2e_guest_devsec", tests, NULL, NULL);
}
