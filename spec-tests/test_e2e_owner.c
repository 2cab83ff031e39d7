/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * End to end, who owns the device's SPDM (one requester per DOE mailbox): real tsmd and
 * tsm-devemu, tsm-host as separate processes.
 *  - the host's own CMA (tsm-host native-auth) authenticates an unconnected device, is
 *    refused while the TSM owns it (PDEV.18, nothing reaches the device, the TSM's
 *    session and bound TDI untouched) and works again once the TSM has given it back;
 *  - a host that ignores the claim (native-auth --force) resets the device's SPDM
 *    connection behind the TSM: the TSM's next verb fails under PDEV.17 (the device
 *    answers in the clear but no longer knows the session), the device is unconnected,
 *    its TDIs dropped and the TVM's bound count back to 0; the device connects again;
 *  - a device that dies instead is reported under PDEV.12, not PDEV.17.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "e2e_host.h"
#include "e2e_util.h"

#define DEV "0000:0a:00.0"

static struct e2e_run r;

static void host_ok(struct e2e *e, const char *const *argv)
{
    if (e2e_host(e, &r, argv) != 0)
        fail_msg("tsm-host %s: exit %d: %s%s", argv[0], r.status, r.err, r.out);
}

static void host_refused(struct e2e *e, const char *const *argv, const char *rule)
{
    char want[64];
    assert_int_equal(e2e_host(e, &r, argv), 1);
    snprintf(want, sizeof(want), "\"rule\":\"%s\"", rule);
    E2E_HAS(r.out, want);
}

static void test_native_cma_and_reset_behind_the_tsm(void **state)
{
    struct e2e *e = *state;
    char doe[64], tvm[16];
    int port = e2e_devemu(e, NULL);
    assert_true(port > 0);
    e2e_doe(doe, sizeof(doe), port);

    /* the host authenticates the device itself while no TSM owns it */
    const char *native[] = {"native-auth", DEV, "--doe", doe, NULL};
    host_ok(e, native);
    E2E_HAS(r.out, "chain_trusted: true");
    E2E_HAS(r.out, "challenge: true");

    /* the TSM takes the device, a TDI is bound */
    const char *conn[] = {"connect", DEV, "--doe", doe, "--ide-streams", "1", NULL};
    host_ok(e, conn);
    struct e2e_host hh;
    uint32_t t = 0;
    assert_int_equal(e2e_host_open(e, &hh), 0);
    assert_int_equal(e2e_host_new_tvm(&hh, e->dir, "own", &t, NULL), 0);
    e2e_host_close(&hh);
    snprintf(tvm, sizeof(tvm), "%u", t);
    const char *bind[] = {"bind", DEV, "0", tvm, "--doe", doe, NULL};
    host_ok(e, bind);

    /* native CMA is revoked while the TSM owns it: refused before the device sees it */
    char log_before[65536], log_after[65536];
    assert_int_equal(e2e_devemu_log(e, 1, log_before, sizeof(log_before)), 0);
    const char *native_json[] = {"--json", "native-auth", DEV, "--doe", doe, NULL};
    host_refused(e, native_json, "PDEV.18");
    E2E_HAS(r.out, "\"name\":\"state\"");
    assert_int_equal(e2e_devemu_log(e, 1, log_after, sizeof(log_after)), 0);
    assert_int_equal(strlen(log_after), strlen(log_before));
    const char *hb[] = {"--json", "heartbeat", DEV, "--doe", doe, NULL};
    host_ok(e, hb); /* the TSM's session is untouched */
    const char *status[] = {"--json", "status", DEV, NULL};
    host_ok(e, status);
    E2E_HAS(r.out, "\"state\":\"connected\"");
    E2E_HAS(r.out, "\"bound_tdis\":1");

    /* a host that ignores the claim resets the device's SPDM connection */
    const char *force[] = {"native-auth", DEV, "--doe", doe, "--force", NULL};
    host_ok(e, force);
    host_refused(e, hb, "PDEV.17");
    E2E_HAS(r.out, "\"state\":\"unconnected\"");
    host_ok(e, status);
    E2E_HAS(r.out, "\"state\":\"unconnected\"");
    E2E_HAS(r.out, "\"bound_tdis\":0");
    const char *tvms[] = {"--json", "status", NULL};
    host_ok(e, tvms);
    const char *tv = strstr(r.out, "\"tvms\":[{");
    assert_non_null(tv);
    E2E_HAS(tv, "\"bound_tdis\":0");

    /* given back: the host authenticates it again, and the TSM can take it again */
    host_ok(e, native);
    host_ok(e, conn);
    host_ok(e, hb);
}

static void test_device_that_dies_is_not_a_reset(void **state)
{
    struct e2e *e = *state;
    struct e2e_host hh;
    cbor_item_t *res = NULL;
    int port = e2e_devemu(e, NULL);
    assert_true(port > 0);
    assert_int_equal(e2e_host_open(e, &hh), 0);
    assert_int_equal(e2e_host_add_device(&hh, DEV, port, 0), 0);
    struct vtsm_host_connect_opts o = {0};
    assert_int_equal(vtsm_host_device_connect_cbor(hh.h, DEV, &o, &res), VTSM_OK);
    cbor_decref(&res);
    e2e_kill(e, e->pids[e->npids - 1]);
    assert_int_not_equal(vtsm_host_spdm_heartbeat_cbor(hh.h, DEV, &res), VTSM_OK);
    if (res)
        cbor_decref(&res);
    assert_string_equal(vtsm_host_last_error(hh.h)->rule_id, "PDEV.12");
    e2e_host_close(&hh);
    const char *status[] = {"--json", "status", DEV, NULL};
    host_ok(e, status);
    E2E_HAS(r.out, "\"state\":\"unconnected\"");
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_native_cma_and_reset_behind_the_tsm, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_device_that_dies_is_not_a_reset, e2e_fixture_setup,
                                        e2e_fixture_teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
