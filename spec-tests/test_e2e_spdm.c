/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * End to end, SPDM session upkeep: KEY_UPDATE (UpdateKey, UpdateAllKeys) and HEARTBEAT
 * through tsmd on a connected device, after which everything that travels in the session
 * (IDE_KM refresh, TDISP bind, reclaim) still works; and a device that acknowledges a
 * key update without switching keys: a clear error, the device torn down (streams
 * freed), other devices untouched.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "e2e_util.h"

static int host(struct e2e *e, struct e2e_run *r, const char *verb, const char *dev, int port,
                const char *a1, const char *a2)
{
    char doe[64];
    const char *argv[] = {"--json", verb,           dev, "--doe", e2e_doe(doe, sizeof(doe), port),
                          a1,       a1 ? a2 : NULL, NULL};
    return e2e_host(e, r, argv);
}

static void test_device_does_not_switch_keys(void **state)
{
    struct e2e *e = *state;
    static struct e2e_run r;
    const char *fault[] = {"--fault", "key-update-no-switch", NULL};
    int bad = e2e_devemu(e, fault), good = e2e_devemu(e, NULL);
    assert_true(bad > 0 && good > 0);
    if (host(e, &r, "connect", "0000:01:00.0", good, "--ide-streams", "1") != 0)
        fail_msg("good0: %s", r.err);
    if (host(e, &r, "connect", "0000:0b:00.0", bad, "--ide-streams", "1") != 0)
        fail_msg("bad0: %s", r.err);
    /* the session is lost: the error says so and the device is torn down */
    assert_int_equal(host(e, &r, "key-update", "0000:0b:00.0", bad, NULL, NULL), 1);
    E2E_HAS(r.err, "peer_");
    E2E_HAS(r.err, " [rule PDEV.12]\n");
    E2E_HAS(r.out, "\"state\":\"unconnected\"");
    const char *st[] = {"--json", "status", NULL};
    assert_int_equal(e2e_host(e, &r, st), 0);
    E2E_HAS(r.out, "\"streams_used\":1,"); /* only good0's stream is left */
    /* the other device keeps its session, keys and stream */
    assert_int_equal(host(e, &r, "key-update", "0000:01:00.0", good, NULL, NULL), 0);
    assert_int_equal(host(e, &r, "ide-check", "0000:01:00.0", good, NULL, NULL), 0);
    /* and the faulty device can be connected again from scratch */
    if (host(e, &r, "connect", "0000:0b:00.0", bad, NULL, NULL) != 0)
        fail_msg("bad0 again: %s", r.err);
    assert_int_equal(host(e, &r, "heartbeat", "0000:0b:00.0", bad, NULL, NULL), 0);
}

static void test_key_update_and_heartbeat(void **state)
{
    struct e2e *e = *state;
    static struct e2e_run r;
    int port = e2e_devemu(e, NULL);
    assert_true(port > 0);
    if (host(e, &r, "connect", "0000:0d:00.0", port, "--ide-streams", "1") != 0)
        fail_msg("connect: %s", r.err);
    E2E_HAS(r.out, "\"key_updates\":0");
    E2E_HAS(r.out, "\"heartbeat_period\":");
    assert_int_equal(host(e, &r, "key-update", "0000:0d:00.0", port, NULL, NULL), 0);
    E2E_HAS(r.out, "\"key_updates\":1");
    assert_int_equal(host(e, &r, "key-update", "0000:0d:00.0", port, NULL, NULL), 0);
    assert_int_equal(host(e, &r, "key-update", "0000:0d:00.0", port, "--all", NULL), 0);
    E2E_HAS(r.out, "\"key_updates\":3");
    assert_int_equal(host(e, &r, "heartbeat", "0000:0d:00.0", port, NULL, NULL), 0);
    /* the session still carries everything: IDE_KM, TDISP, END_SESSION */
    assert_int_equal(host(e, &r, "ide-refresh", "0000:0d:00.0", port, NULL, NULL), 0);
    assert_int_equal(host(e, &r, "ide-check", "0000:0d:00.0", port, NULL, NULL), 0);
    const char *tvm[] = {"tvm-create", "--guest-key",
                         "04"
                         "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
                         "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5",
                         NULL};
    if (e2e_host(e, &r, tvm) != 0)
        fail_msg("tvm-create: %s", r.err);
    char doe[64];
    const char *bind[] = {
        "bind", "0000:0d:00.0", "0", "1", "--doe", e2e_doe(doe, sizeof(doe), port), NULL};
    if (e2e_host(e, &r, bind) != 0)
        fail_msg("bind after key updates: %s", r.err);
    assert_int_equal(host(e, &r, "key-update", "0000:0d:00.0", port, "--all", NULL), 0);
    assert_int_equal(host(e, &r, "reclaim", "0000:0d:00.0", port, "--force", NULL), 0);
    E2E_HAS(r.out, "\"acknowledged\":true");
    /* a key update on an unconnected device is refused and names the rule */
    assert_int_equal(host(e, &r, "key-update", "0000:0d:00.0", port, NULL, NULL), 1);
    E2E_HAS(r.err, "failed: state (core): ");
    E2E_HAS(r.err, " [rule PDEV.10]\n");
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_device_does_not_switch_keys, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_key_update_and_heartbeat, e2e_fixture_setup,
                                        e2e_fixture_teardown),
    };
    return cmocka_run_group_tests_name("e2e_spdm", tests, NULL, NULL);
}
