/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * End to end, tsm-devemu acting like the DMTF sample device (devemu/README.md, "Acting
 * like the DMTF sample device"): SPDM 1.2-1.4 with CHAL_CAP, SHA-512 measurements, an
 * IDE_KM port at PortIndex 1, the sample's QUERY_RESP shape (capability 0 and 72 zero
 * DWORDs) and one TDI, function 0xBEEF. The TSM's whole flow runs against it through the
 * CLIs: strict IDE refuses the sample's QUERY_RESP (IDE.5) and leaves the device
 * unconnected; lenient IDE connects at SPDM 1.4 with CHALLENGE, programs port 1, the IDE
 * link check passes, TDI 0xBEEF is bound, and the guest verifies its token and accepts.
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
#include "vtsm_abi.h"
#include "vtsm_crypto.h"
#include "vtsm_guest_cbor.h"

#define DEV "0000:be:00.0"

/* The option set of devemu/README.md, word for word. */
static const char *const sample_args[] = {
    "--spdm-version",   "all", "--meas-hash", "sha512", "--port-index",      "1",
    "--max-port-index", "1",   "--tdi",       "0xBEEF", "--ide-query-shape", "dmtf-sample",
    "--verbose",        NULL};

static struct e2e_run r;

static void host_ok(struct e2e *e, const char *const *argv)
{
    if (e2e_host(e, &r, argv) != 0)
        fail_msg("tsm-host %s: exit %d: %s%s", argv[0], r.status, r.err, r.out);
}

static void test_tsm_flow_against_the_sample_device(void **state)
{
    struct e2e *e = *state;
    char doe[64], tvm[16];
    int port = e2e_devemu(e, sample_args);
    assert_true(port > 0);
    e2e_doe(doe, sizeof(doe), port);

    /* strict IDE: the sample's QUERY_RESP contradicts itself */
    const char *strict[] = {"--json",      "connect",        DEV,   "--doe",         doe,
                            "--challenge", "--spdm-version", "1.4", "--ide-streams", "1",
                            NULL};
    assert_int_equal(e2e_host(e, &r, strict), 1);
    E2E_HAS(r.out, "\"rule\":\"IDE.5\"");
    const char *status[] = {"--json", "status", DEV, NULL};
    host_ok(e, status);
    E2E_HAS(r.out, "\"state\":\"unconnected\"");

    /* lenient IDE: the whole flow */
    const char *lenient[] = {
        "--json", "connect",       DEV, "--doe",         doe, "--challenge", "--spdm-version",
        "1.4",    "--ide-streams", "1", "--ide-lenient", NULL};
    host_ok(e, lenient);
    E2E_HAS(r.out, "\"version\":\"1.4\"");
    E2E_HAS(r.out, "\"meas_hash\":\"sha512\"");
    E2E_HAS(r.out, "\"challenge\":{");
    const char *check[] = {"ide-check", DEV, "--doe", doe, NULL};
    host_ok(e, check);
    E2E_HAS(r.out, "PASS");

    struct e2e_host hh;
    uint32_t t = 0;
    struct vtsm_guest *g = NULL;
    struct vtsm_doe_tcp *tcp = NULL;
    assert_int_equal(e2e_host_open(e, &hh), 0);
    assert_int_equal(e2e_host_new_tvm(&hh, e->dir, "sample", &t, &g), 0);
    /* this host carries the guest's requests and their DOE exchanges (START_INTERFACE) */
    assert_int_equal(vtsm_doe_tcp_open(doe, &tcp), VTSM_OK);
    assert_int_equal(vtsm_host_register_doe(hh.h, DEV, vtsm_doe_tcp_fn, tcp), VTSM_OK);
    snprintf(tvm, sizeof(tvm), "%u", t);
    const char *bind[] = {"bind", DEV, "0xBEEF", tvm, "--doe", doe, NULL};
    host_ok(e, bind);
    cbor_item_t *res = NULL, *claims = NULL;
    uint8_t nonce[32];
    assert_int_equal(vtsm_random(nonce, sizeof(nonce)), VTSM_OK);
    assert_int_equal(
        vtsm_guest_call_cbor(g, hh.h, VTSM_ABI_GOP_INFO, DEV, 0xBEEF, nonce, NULL, &res), VTSM_OK);
    const cbor_item_t *tok = e2e_get(res, "token");
    assert_non_null(tok);
    assert_int_equal(vtsm_guest_verify_token_cbor(cbor_bytestring_handle(tok),
                                                  cbor_bytestring_length(tok), NULL, nonce,
                                                  &claims),
                     VTSM_OK);
    assert_int_equal(e2e_uint(claims, "tdi"), 0xBEEF);
    cbor_decref(&claims);
    cbor_decref(&res);
    assert_int_equal(
        vtsm_guest_call_cbor(g, hh.h, VTSM_ABI_GOP_ACCEPT, DEV, 0xBEEF, NULL, NULL, &res), VTSM_OK);
    cbor_decref(&res);
    vtsm_guest_close(g);
    e2e_host_close(&hh);
    vtsm_doe_tcp_close(tcp);
    host_ok(e, status);
    E2E_HAS(r.out, "\"state\":\"RUN\"");

    /* port 1 was programmed: the device refuses any other PortIndex (IDEKM.2), and it
     * refused nothing of the lenient connect's IDE_KM */
    static char log[1 << 20];
    assert_int_equal(e2e_devemu_log(e, 1, log, sizeof(log)), 0);
    E2E_HAS(log, "KEY_PROG: stream 0 K0 PR RX programmed");
    assert_null(strstr(log, "IDEKM.2"));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tsm_flow_against_the_sample_device, e2e_fixture_setup,
                                        e2e_fixture_teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
