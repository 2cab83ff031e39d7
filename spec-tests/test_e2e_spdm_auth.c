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

/* CHALLENGE at SPDM 1.2, 1.3 and 1.4 (RequesterContext from 1.3 on, the 1.4 signing
 * prefix), P-384 and P-256, with IDE and TDISP. */
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
    if (strstr(r.out, "\"chunked\":")) /* 4096 bytes a message: nothing in chunks */
        fail_msg("a connect without chunks reports chunks:\n%s", r.out);
    assert_status(e, "dev13", "connected", true);

    connect3(e, &r, "dev12", port2, "--challenge", "--spdm-version", "1.2");
    if (r.status != 0)
        fail_msg("connect --challenge at 1.2 failed: %s", r.err);
    E2E_HAS(r.out, "\"version\":\"1.2\"");
    E2E_HAS(r.out, "\"asym\":\"ecdsa-p256\"");
    assert_status(e, "dev12", "connected", true);

    const char *all[] = {"--spdm-version", "all", NULL};
    int port3 = e2e_devemu(e, all);
    assert_true(port3 > 0);
    connect3(e, &r, "dev14", port3, "--challenge", "--spdm-version", "1.4");
    if (r.status != 0)
        fail_msg("connect --challenge at 1.4 failed: %s", r.err);
    E2E_HAS(r.out, "\"version\":\"1.4\"");
    assert_status(e, "dev14", "connected", true);
}

/* Count the lines of a device log holding needle. */
static unsigned log_count(const char *log, const char *needle)
{
    unsigned n = 0;
    for (const char *p = log; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* A device whose DataTransferSize is 48 bytes and MaxSPDMmsgSize 8 KiB (CHUNK_CAP): the
 * whole connect (certificate chain, CHALLENGE, KEY_EXCHANGE, measurements, IDE_KM with
 * KEY_PROG, TDISP probe), a TDI bind (LOCK, interface report, measurements) and a reclaim
 * run with requests in CHUNK_SEND chunks and responses fetched by CHUNK_GET; the device's
 * log shows both were used. */
static void test_full_connect_in_chunks(void **state)
{
    struct e2e *e = *state;
    static struct e2e_run r;
    static char log[1 << 16];
    char doe[64];
    const char *args[] = {
        "--data-transfer-size", "48", "--max-spdm-msg-size", "8192", "--verbose", NULL};
    int port = e2e_devemu(e, args);
    assert_true(port > 0);

    connect3(e, &r, "chunky", port, "--challenge", "--ide-streams", "1");
    if (r.status != 0)
        fail_msg("chunked connect failed: %s", r.err);
    E2E_HAS(r.out, "\"state\":\"connected\"");
    E2E_HAS(r.out, "\"trusted\":true");
    E2E_HAS(r.out, "\"challenge\":{\"transcript\":\"");
    E2E_HAS(r.out, "\"ide\":");
    E2E_HAS(r.out, "\"blocks\":[{");
    /* the TSM's count: KEY_EXCHANGE, FINISH and 6 KEY_PROGs sent in chunks; ALGORITHMS,
     * DIGESTS, CHALLENGE_AUTH, KEY_EXCHANGE_RSP, MEASUREMENTS and TDISP answers fetched */
    E2E_HAS(r.out, "\"chunked\":{\"requests\":8,\"responses\":");
    const char *tvm[] = {"tvm-create", "--guest-key",
                         "04"
                         "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
                         "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5",
                         NULL};
    if (e2e_host(e, &r, tvm) != 0)
        fail_msg("tvm-create: %s", r.err);
    const char *bind[] = {
        "--json", "bind", "chunky", "0", "1", "--doe", e2e_doe(doe, sizeof(doe), port), NULL};
    if (e2e_host(e, &r, bind) != 0)
        fail_msg("bind through chunks failed: %s", r.err);
    assert_status(e, "chunky", "connected", true);
    const char *ck[] = {"ide-check", "chunky", "--doe", e2e_doe(doe, sizeof(doe), port), NULL};
    if (e2e_host(e, &r, ck) != 0)
        fail_msg("ide-check: %s", r.err);
    const char *rec[] = {
        "--json", "reclaim", "chunky", "--force", "--doe", e2e_doe(doe, sizeof(doe), port), NULL};
    if (e2e_host(e, &r, rec) != 0)
        fail_msg("reclaim: %s", r.err);
    E2E_HAS(r.out, "\"acknowledged\":true");

    assert_int_equal(e2e_devemu_log(e, e->ndevemu, log, sizeof(log)), 0);
    /* KEY_EXCHANGE (0xE4) and KEY_PROGs (VENDOR_DEFINED 0xFE) came in chunks... */
    E2E_HAS(log, "large request 0xe4 of ");
    E2E_HAS(log, "large request 0xfe of 59 bytes"); /* IDE_KM KEY_PROG */
    /* ...and CHALLENGE_AUTH (0x03), KEY_EXCHANGE_RSP (0x64) and MEASUREMENTS (0x60) went
     * out by CHUNK_GET */
    E2E_HAS(log, "large response 0x03 of ");
    E2E_HAS(log, "large response 0x64 of ");
    E2E_HAS(log, "large response 0x60 of ");
    unsigned sends = log_count(log, "(CHUNK_SEND)"), gets = log_count(log, "(CHUNK_GET)");
    if (sends < 2 || gets < 4)
        fail_msg("%u chunked requests, %u chunked responses:\n%s", sends, gets, log);
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
        cmocka_unit_test_setup_teardown(test_full_connect_in_chunks, e2e_fixture_setup,
                                        e2e_fixture_teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
