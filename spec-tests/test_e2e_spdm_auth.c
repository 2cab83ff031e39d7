/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * End to end: device authentication by CHALLENGE (connect option `challenge`, tsm-host
 * --challenge) and SPDM chunking (CHUNK_SEND / CHUNK_GET) with real tsmd, tsm-devemu and
 * tsm-host processes. Failure cases first, each with its (status, rule), the device left
 * unconnected and STATUS truthful; then the working paths.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "e2e_util.h"

/* connect DEV with up to three more CLI arguments (NULL-terminated early if fewer). */
static void connect3(struct e2e *e, struct e2e_run *r, const char *dev, int port, const char *a,
                     const char *b, const char *c)
{
    char doe[64];
    const char *argv[] = {
        "--json",     "connect",         dev, "--doe", e2e_doe(doe, sizeof(doe), port), a,
        a ? b : NULL, a && b ? c : NULL, NULL};
    e2e_host(e, r, argv);
}

/* STATUS of dev: its state, and whether the report holds CHALLENGE evidence. */
static void assert_status(struct e2e *e, const char *dev, const char *state, bool challenged)
{
    static struct e2e_run r;
    const char *argv[] = {"--json", "status", dev, NULL};
    char want[64];
    assert_int_equal(e2e_host(e, &r, argv), 0);
    snprintf(want, sizeof(want), "\"state\":\"%s\"", state);
    E2E_HAS(r.out, want);
    if (challenged)
        E2E_HAS(r.out, "\"challenge\":{\"transcript\":\"");
    else if (strstr(r.out, "\"challenge\":"))
        fail_msg("%s reports CHALLENGE evidence it does not have:\n%s", dev, r.out);
}

/* A refused challenge connect: exit 1, the status and the rule, the device unconnected
 * (STATUS says so), and another device still connects with challenge. */
static void refused_case(void **state, const char *devemu_arg1, const char *devemu_arg2,
                         const char *status, const char *rule)
{
    struct e2e *e = *state;
    static struct e2e_run r;
    const char *args[] = {devemu_arg1, devemu_arg2, NULL};
    int port = e2e_devemu(e, args);
    assert_true(port > 0);
    connect3(e, &r, "bad0", port, "--challenge", NULL, NULL);
    if (r.status != 1)
        fail_msg("expected exit 1, got %d\nstdout: %s\nstderr: %s", r.status, r.out, r.err);
    char want[80];
    snprintf(want, sizeof(want), "\"name\":\"%s\"", status);
    E2E_HAS(r.out, want);
    snprintf(want, sizeof(want), "\"rule\":\"%s\"", rule);
    E2E_HAS(r.out, want);
    assert_status(e, "bad0", "unconnected", false);

    int good = e2e_devemu(e, NULL);
    assert_true(good > 0);
    connect3(e, &r, "good0", good, "--challenge", NULL, NULL);
    if (r.status != 0)
        fail_msg("good device failed to connect with --challenge: %s", r.err);
    assert_status(e, "good0", "connected", true);
    /* and the refused one connects once it is asked without challenge, unless its fault
     * hits that path too (it does not: the faults touch CHALLENGE_AUTH only) */
    connect3(e, &r, "bad0", port, NULL, NULL, NULL);
    if (r.status != 0)
        fail_msg("bad0 without --challenge should connect: %s", r.err);
    assert_status(e, "bad0", "connected", false);
}

static void test_bad_challenge_signature(void **s)
{
    refused_case(s, "--fault", "bad-challenge-signature", "peer_signature", "PDEV.15");
}

static void test_wrong_cert_chain_hash(void **s)
{
    refused_case(s, "--fault", "wrong-cert-chain-hash", "peer_digest", "PDEV.16");
}

static void test_device_without_chal_cap(void **s)
{
    refused_case(s, "--no-challenge", NULL, "peer_caps", "PDEV.14");
}

/* CHALLENGE at SPDM 1.2 and 1.3 (RequesterContext), P-384 and P-256, with IDE and TDISP. */
static void test_connect_with_challenge(void **state)
{
    struct e2e *e = *state;
    static struct e2e_run r;
    const char *p256[] = {"--alg", "p256", NULL};
    int port = e2e_devemu(e, NULL);
    int port2 = e2e_devemu(e, p256);
    assert_true(port > 0 && port2 > 0);

    connect3(e, &r, "dev13", port, "--challenge", "--ide-streams", "1");
    if (r.status != 0)
        fail_msg("connect --challenge failed: %s", r.err);
    E2E_HAS(r.out, "\"version\":\"1.3\"");
    E2E_HAS(r.out, "\"challenge\":{\"transcript\":\"");
    E2E_HAS(r.out, "\"kex\":{");
    assert_status(e, "dev13", "connected", true);

    connect3(e, &r, "dev12", port2, "--challenge", "--spdm-version", "1.2");
    if (r.status != 0)
        fail_msg("connect --challenge at 1.2 failed: %s", r.err);
    E2E_HAS(r.out, "\"version\":\"1.2\"");
    E2E_HAS(r.out, "\"asym\":\"ecdsa-p256\"");
    assert_status(e, "dev12", "connected", true);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bad_challenge_signature, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_wrong_cert_chain_hash, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_device_without_chal_cap, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_connect_with_challenge, e2e_fixture_setup,
                                        e2e_fixture_teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
