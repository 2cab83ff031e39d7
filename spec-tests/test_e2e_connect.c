/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * End to end: real tsmd + real tsm-devemu processes, driven by the real tsm-host CLI.
 * device_connect authenticates the emulated device with SPDM over host-proxied DOE;
 * every device fault gives its exact error and leaves the TSM serving other devices.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "e2e_util.h"

/* extra: up to two more CLI arguments (NULL-terminated early if fewer). */
static void connect_json2(struct e2e *e, struct e2e_run *r, const char *dev, int port,
                          const char *extra, const char *extra2)
{
    char doe[64];
    const char *argv[] = {"--json",
                          "connect",
                          dev,
                          "--doe",
                          e2e_doe(doe, sizeof(doe), port),
                          extra,
                          extra ? extra2 : NULL,
                          NULL};
    e2e_host(e, r, argv);
}

static void connect_json(struct e2e *e, struct e2e_run *r, const char *dev, int port,
                         const char *extra)
{
    connect_json2(e, r, dev, port, extra, NULL);
}

/* A device that must still connect cleanly after another device misbehaved. */
static void assert_good_device_connects(struct e2e *e, const char *dev)
{
    static struct e2e_run r;
    int port = e2e_devemu(e, NULL);
    assert_true(port > 0);
    connect_json(e, &r, dev, port, NULL);
    if (r.status != 0)
        fail_msg("good device %s failed to connect: %s", dev, r.err);
    E2E_HAS(r.out, "\"state\":\"connected\"");
    E2E_HAS(r.out, "\"trusted\":true");
    /* measurements in their one shape: taken at connect, not after a lock */
    E2E_HAS(r.out, "\"responder_nonce\":\"");
    E2E_HAS(r.out, "\"after_lock\":false");
    E2E_HAS(r.out, "\"raw\":");
}

static void assert_status(struct e2e *e, const char *dev, const char *state)
{
    static struct e2e_run r;
    const char *argv[] = {"--json", "status", dev, NULL};
    assert_int_equal(e2e_host(e, &r, argv), 0);
    char want[64];
    snprintf(want, sizeof(want), "\"state\":\"%s\"", state);
    E2E_HAS(r.out, want);
}

/* ---- failure cases first: each fault of the device, each with its exact error ---- */

static void fault_case(void **state, const char *fault, const char *want_name)
{
    struct e2e *e = *state;
    static struct e2e_run r;
    const char *args[] = {"--fault", fault, NULL};
    int port = e2e_devemu(e, args);
    assert_true(port > 0);
    connect_json(e, &r, "0000:0b:00.0", port, NULL);
    if (r.status != 1)
        fail_msg("fault %s: expected exit 1, got %d\nstdout: %s\nstderr: %s", fault, r.status,
                 r.out, r.err);
    E2E_HAS(r.err, want_name);
    /* The half-made session is gone and the device can be retried... */
    assert_status(e, "0000:0b:00.0", "unconnected");
    /* ...and the TSM keeps serving other devices. */
    assert_good_device_connects(e, "0000:01:00.0");
    assert_status(e, "0000:01:00.0", "connected");
}

static void test_bad_kex_signature(void **s)
{
    fault_case(s, "bad-kex-signature", "peer_signature");
}
/* the point is refused by the derivation, which tsmd runs on its crypto worker while the
 * signature is checked on the loop: the refusal and its detail come back from there */
static void test_bad_kex_point(void **s)
{
    fault_case(s, "bad-kex-point", "peer_malformed");
}
static void test_bad_meas_signature(void **s)
{
    fault_case(s, "bad-meas-signature", "peer_signature");
}
static void test_truncated_doe(void **s)
{
    fault_case(s, "truncate-doe", "doe_truncated");
}
static void test_oversized_doe(void **s)
{
    fault_case(s, "oversize-doe", "doe_oversized");
}
static void test_misaligned_doe(void **s)
{
    fault_case(s, "misalign-doe", "doe_misaligned");
}
static void test_spdm_error(void **s)
{
    fault_case(s, "error-kex", "peer_error");
}
static void test_unexpected_code(void **s)
{
    fault_case(s, "unexpected-code", "peer_unexpected");
}
static void test_wrong_session_id(void **s)
{
    fault_case(s, "wrong-session-id", "peer_session_id");
}
static void test_replayed_secured_message(void **s)
{
    fault_case(s, "replay", "peer_decrypt");
}
static void test_tampered_secured_message(void **s)
{
    fault_case(s, "tamper", "peer_decrypt");
}

static void test_untrusted_chain_refused_but_reported(void **state)
{
    struct e2e *e = *state;
    static struct e2e_run r;
    const char *args[] = {"--fault", "untrusted-chain", NULL};
    int port = e2e_devemu(e, args);
    assert_true(port > 0);
    connect_json(e, &r, "0000:0e:00.0", port, NULL);
    assert_int_equal(r.status, 1);
    E2E_HAS(r.err, "peer_untrusted");
    E2E_HAS(r.err, "allow_untrusted");
    /* Evidence reported even though the device was refused. */
    E2E_HAS(r.out, "\"trusted\":false");
    E2E_HAS(r.out, "\"cert_chain\":\"");
    E2E_HAS(r.out, "\"signature\":\"");
    assert_status(e, "0000:0e:00.0", "unconnected");

    /* The connect option decides: with allow_untrusted the device connects, flagged. */
    connect_json(e, &r, "0000:0e:00.0", port, "--allow-untrusted");
    if (r.status != 0)
        fail_msg("allow-untrusted connect failed: %s", r.err);
    E2E_HAS(r.out, "\"trusted\":false");
    E2E_HAS(r.out, "\"state\":\"connected\"");
    assert_good_device_connects(e, "0000:02:00.0");
}

/* ---- then the working paths ---- */

static void test_not_ready_is_retried(void **state)
{
    struct e2e *e = *state;
    static struct e2e_run r;
    const char *args[] = {"--fault", "not-ready", NULL};
    int port = e2e_devemu(e, args);
    assert_true(port > 0);
    connect_json(e, &r, "0000:06:00.0", port, NULL);
    if (r.status != 0)
        fail_msg("ResponseNotReady should be retried with RESPOND_IF_READY: %s", r.err);
    E2E_HAS(r.out, "\"state\":\"connected\"");
}

static void test_connect_status_reclaim_reconnect(void **state)
{
    struct e2e *e = *state;
    static struct e2e_run r;
    char doe[64];
    int port = e2e_devemu(e, NULL);
    assert_true(port > 0);

    connect_json(e, &r, "0000:01:00.0", port, NULL);
    if (r.status != 0)
        fail_msg("connect failed: %s", r.err);
    E2E_HAS(r.out, "\"state\":\"connected\"");
    E2E_HAS(r.out, "\"version\":\"1.3\"");
    E2E_HAS(r.out, "\"asym\":\"ecdsa-p384\"");
    E2E_HAS(r.out, "\"hash\":\"sha384\"");
    E2E_HAS(r.out, "\"dhe\":\"secp384r1\"");
    E2E_HAS(r.out, "\"aead\":\"aes-256-gcm\"");
    E2E_HAS(r.out, "\"trusted\":true");
    E2E_HAS(r.out, "\"session_id\":");
    E2E_HAS(r.out, "\"blocks\":[{");
    E2E_HAS(r.out, "\"transcript\":\"");
    assert_status(e, "0000:01:00.0", "connected");

    /* A second connect of a connected device is refused by the state table. */
    connect_json(e, &r, "0000:01:00.0", port, NULL);
    assert_int_equal(r.status, 1);
    E2E_HAS(r.err, "failed: state (core): ");
    E2E_HAS(r.err, " [rule PDEV.1]\n");

    const char *rec[] = {
        "--json", "reclaim", "0000:01:00.0", "--doe", e2e_doe(doe, sizeof(doe), port), NULL};
    assert_int_equal(e2e_host(e, &r, rec), 0);
    E2E_HAS(r.out, "\"acknowledged\":true");
    E2E_HAS(r.out, "\"state\":\"unconnected\"");
    assert_status(e, "0000:01:00.0", "unconnected");

    /* Reclaim of an unconnected device names its rule. */
    assert_int_equal(e2e_host(e, &r, rec), 1);
    E2E_HAS(r.err, "failed: state (core): ");
    E2E_HAS(r.err, " [rule PDEV.4]\n");

    /* The device (same emulator process, new TCP connection) connects again. */
    connect_json(e, &r, "0000:01:00.0", port, NULL);
    if (r.status != 0)
        fail_msg("reconnect failed: %s", r.err);
    E2E_HAS(r.out, "\"state\":\"connected\"");
}

static void test_connect_p256_spdm12(void **state)
{
    struct e2e *e = *state;
    static struct e2e_run r;
    const char *args[] = {"--alg", "p256", "--spdm-version", "1.2", NULL};
    int port = e2e_devemu(e, args);
    assert_true(port > 0);
    connect_json(e, &r, "0000:03:00.0", port, NULL);
    if (r.status != 0)
        fail_msg("connect failed: %s", r.err);
    E2E_HAS(r.out, "\"version\":\"1.2\"");
    E2E_HAS(r.out, "\"asym\":\"ecdsa-p256\"");
    E2E_HAS(r.out, "\"hash\":\"sha256\"");
    E2E_HAS(r.out, "\"dhe\":\"secp256r1\"");
    E2E_HAS(r.out, "\"trusted\":true");
}

static void test_version_option_forces_12(void **state)
{
    struct e2e *e = *state;
    static struct e2e_run r;
    int port = e2e_devemu(e, NULL);
    assert_true(port > 0);
    connect_json2(e, &r, "0000:04:00.0", port, "--spdm-version", "1.2");
    if (r.status != 0)
        fail_msg("connect failed: %s", r.err);
    E2E_HAS(r.out, "\"version\":\"1.2\"");
}

/* SPDM 1.4 when the device offers it and the host asks for it */
static void test_version_option_14(void **state)
{
    struct e2e *e = *state;
    static struct e2e_run r;
    const char *args[] = {"--spdm-version", "all", NULL};
    int port = e2e_devemu(e, args);
    assert_true(port > 0);
    connect_json2(e, &r, "0000:04:01.0", port, "--spdm-version", "1.4");
    if (r.status != 0)
        fail_msg("connect failed: %s", r.err);
    E2E_HAS(r.out, "\"version\":\"1.4\"");
    E2E_HAS(r.out, "\"state\":\"connected\"");
}

/* The connect option picks the certificate slot; the device may provision up to 8. */
static void test_connect_other_slots(void **state)
{
    struct e2e *e = *state;
    static struct e2e_run r;
    const char *args[] = {"--slot", "3=default", "--slot", "5=rogue", NULL};
    int port = e2e_devemu(e, args);
    assert_true(port > 0);
    /* a slot the device did not provision */
    connect_json2(e, &r, "0000:05:00.0", port, "--slot", "6");
    assert_int_equal(r.status, 1);
    E2E_HAS(r.err, "slot 6 is not provisioned");
    /* slot 5 holds a chain that is not under the trusted root */
    connect_json2(e, &r, "0000:05:00.0", port, "--slot", "5");
    assert_int_equal(r.status, 1);
    E2E_HAS(r.err, "peer_untrusted");
    E2E_HAS(r.out, "\"slot\":5");
    /* slot 3 is trusted */
    connect_json2(e, &r, "0000:05:00.0", port, "--slot", "3");
    if (r.status != 0)
        fail_msg("slot 3: %s", r.err);
    E2E_HAS(r.out, "\"slot\":3");
    E2E_HAS(r.out, "\"trusted\":true");
}

/* A device with a small DataTransferSize: the chain arrives in many GET_CERTIFICATE
 * chunks (offset/length, remainder) and everything else still fits. */
static void test_small_transfer_size_chunks_certificate(void **state)
{
    struct e2e *e = *state;
    static struct e2e_run r, big;
    const char *small[] = {"--data-transfer-size", "160", NULL};
    int ps = e2e_devemu(e, small), pb = e2e_devemu(e, NULL);
    assert_true(ps > 0 && pb > 0);
    connect_json2(e, &r, "0000:07:00.0", ps, "--ide-streams", "1");
    if (r.status != 0)
        fail_msg("small transfer size: %s", r.err);
    connect_json(e, &big, "0000:08:00.0", pb, NULL);
    assert_int_equal(big.status, 0);
    /* the same chain either way */
    const char *a = strstr(r.out, "\"cert_chain\":\""), *b = strstr(big.out, "\"cert_chain\":\"");
    assert_non_null(a);
    assert_non_null(b);
    size_t la = strcspn(a + 14, "\""), lb = strcspn(b + 14, "\"");
    assert_true(la > 2 * 1000); /* more than 1000 bytes: at least 7 chunks of < 160 */
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la + 14);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bad_kex_point, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_bad_kex_signature, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_bad_meas_signature, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_truncated_doe, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_oversized_doe, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_misaligned_doe, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_spdm_error, e2e_fixture_setup, e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_unexpected_code, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_wrong_session_id, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_replayed_secured_message, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_tampered_secured_message, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_untrusted_chain_refused_but_reported,
                                        e2e_fixture_setup, e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_not_ready_is_retried, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_connect_status_reclaim_reconnect, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_connect_p256_spdm12, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_connect_other_slots, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_small_transfer_size_chunks_certificate,
                                        e2e_fixture_setup, e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_version_option_14, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_version_option_forces_12, e2e_fixture_setup,
                                        e2e_fixture_teardown),
    };
    return cmocka_run_group_tests_name("e2e_connect", tests, NULL, NULL);
}
