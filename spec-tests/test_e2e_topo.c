/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * End to end, topology: devices named by PCI address (canonicalised by tsmd, anything
 * else refused with PDEV.14), real tsmd + tsm-devemu through the host shim.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "e2e_host.h"
#include "e2e_util.h"
#include "vtsm_abi.h"
#include "vtsm_crypto.h"
#include "vtsm_guest_cbor.h"

/* One raw request {op, id, dev} and its answer. */
static cbor_item_t *ask(int fd, enum vtsm_abi_op op, uint64_t id, const char *dev)
{
    cbor_item_t *m = vtsm_abi_request_msg(op, id);
    assert_non_null(m);
    if (dev)
        assert_int_equal(vtsm_abi_put_tstr(m, VTSM_ABI_K_DEV, dev), VTSM_OK);
    assert_int_equal(e2e_abi_send(fd, m), 0);
    cbor_item_t *r = e2e_abi_recv(fd);
    assert_non_null(r);
    return r;
}

static void expect_refused(int fd, enum vtsm_abi_op op, const char *dev)
{
    char name[32];
    struct vtsm_abi_error err;
    cbor_item_t *r = ask(fd, op, 5, dev);
    assert_int_equal(e2e_op(r), VTSM_ABI_OP_ERROR);
    e2e_err_name(r, name, sizeof(name));
    assert_int_equal(vtsm_abi_parse_error(r, &err), VTSM_OK);
    cbor_decref(&r);
    if (strcmp(name, "abi_arg") != 0 || err.rule != VTSM_RULE_PDEV_14)
        fail_msg("'%s': expected abi_arg PDEV.14, got %s %s (%s)", dev, name, err.rule_id,
                 err.detail);
}

/* Three spellings of one address are one device; STATUS and replies use the canonical
 * one; names that are no PCI address are refused with PDEV.14 and change nothing. */
static void test_names_canonical_and_refused(void **state)
{
    struct e2e *e = *state;
    char s[64];
    int fd = e2e_abi_connect(e, true);
    assert_true(fd >= 0);

    cbor_item_t *r = ask(fd, VTSM_ABI_OP_DEVICE_ADD, 1, "0000:1:00.0");
    assert_int_equal(e2e_op(r), VTSM_ABI_OP_RESULT);
    assert_string_equal(e2e_str(r, "dev", s, sizeof(s)), "0000:01:00.0");
    cbor_decref(&r);
    /* the same device again, spelt otherwise: idempotent, not a second device */
    r = ask(fd, VTSM_ABI_OP_DEVICE_ADD, 2, "1:00.0");
    assert_int_equal(e2e_op(r), VTSM_ABI_OP_RESULT);
    assert_string_equal(e2e_str(r, "dev", s, sizeof(s)), "0000:01:00.0");
    cbor_decref(&r);
    r = ask(fd, VTSM_ABI_OP_DEVICE_ADD, 3, "0000:0A:1f.7");
    assert_int_equal(e2e_op(r), VTSM_ABI_OP_RESULT);
    assert_string_equal(e2e_str(r, "dev", s, sizeof(s)), "0000:0a:1f.7");
    cbor_decref(&r);

    const char *bad[] = {"foo",     "dev0",     "1:20.0",     "1:00.8",   "00000:01:00.0",
                         "1:00.0 ", "100:00.0", "0000:01:00", ":01:00.0", "0000:01:00.0.0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_refused(fd, VTSM_ABI_OP_DEVICE_ADD, bad[i]);
    expect_refused(fd, VTSM_ABI_OP_STATUS, "foo");
    expect_refused(fd, VTSM_ABI_OP_DEVICE_REMOVE, "foo");

    /* STATUS: exactly the two devices, canonical; asked for by another spelling */
    r = ask(fd, VTSM_ABI_OP_STATUS, 6, NULL);
    assert_int_equal(e2e_op(r), VTSM_ABI_OP_RESULT);
    const cbor_item_t *devs = e2e_get(r, "devices");
    assert_non_null(devs);
    assert_int_equal(cbor_array_size(devs), 2);
    cbor_decref(&r);
    r = ask(fd, VTSM_ABI_OP_STATUS, 7, "0:1:0.0");
    assert_int_equal(e2e_op(r), VTSM_ABI_OP_RESULT);
    assert_string_equal(e2e_str(r, "devices.0.dev", s, sizeof(s)), "0000:01:00.0");
    assert_string_equal(e2e_str(r, "devices.0.state", s, sizeof(s)), "unconnected");
    cbor_decref(&r);
    /* removed by a third spelling */
    r = ask(fd, VTSM_ABI_OP_DEVICE_REMOVE, 8, "00:01:00.0");
    assert_int_equal(e2e_op(r), VTSM_ABI_OP_RESULT);
    cbor_decref(&r);
    r = ask(fd, VTSM_ABI_OP_STATUS, 9, "0000:01:00.0");
    assert_int_equal(e2e_op(r), VTSM_ABI_OP_ERROR);
    cbor_decref(&r);
    close(fd);
}

/* The host registers its DOE callback under a short spelling; tsmd's DOE_PENDINGs name
 * the canonical address and still reach it; the guest names the TDI otherwise again. */
static void test_short_name_connects_and_guest_matches(void **state)
{
    struct e2e *e = *state;
    struct e2e_host hh;
    char s[64];
    int port = e2e_devemu(e, NULL);
    assert_true(port > 0);
    assert_int_equal(e2e_host_open(e, &hh), 0);
    assert_int_equal(e2e_host_add_device(&hh, "2:00.0", port, 0), 0);
    struct vtsm_host_connect_opts o = {.ide_streams = 1};
    cbor_item_t *res = NULL;
    if (vtsm_host_device_connect_cbor(hh.h, "2:0.0", &o, &res) != VTSM_OK)
        fail_msg("connect: %s", vtsm_host_last_error(hh.h)->detail);
    assert_string_equal(e2e_str(res, "dev", s, sizeof(s)), "0000:02:00.0");
    cbor_decref(&res);

    struct vtsm_guest *g = NULL;
    uint32_t tvm = 0;
    assert_int_equal(e2e_host_new_tvm(&hh, e->dir, "tvm", &tvm, &g), 0);
    assert_int_equal(vtsm_host_tdi_bind_cbor(hh.h, "0000:02:00.0", 1, tvm, 0, &res), VTSM_OK);
    cbor_decref(&res);
    uint8_t nonce[32];
    assert_int_equal(vtsm_random(nonce, sizeof(nonce)), VTSM_OK);
    /* the token names 0000:02:00.0, the guest asked about 2:00.0: the same device */
    assert_int_equal(
        vtsm_guest_call_cbor(g, hh.h, VTSM_ABI_GOP_INFO, "2:00.0", 1, nonce, NULL, &res), VTSM_OK);
    assert_string_equal(e2e_str(res, "dev", s, sizeof(s)), "0000:02:00.0");
    cbor_decref(&res);
    assert_int_equal(
        vtsm_guest_call_cbor(g, hh.h, VTSM_ABI_GOP_ACCEPT, "0000:02:00.0", 1, NULL, NULL, &res),
        VTSM_OK);
    assert_string_equal(e2e_str(res, "state", s, sizeof(s)), "RUN");
    cbor_decref(&res);
    /* a guest naming no PCI address is refused with PDEV.14 */
    assert_int_equal(vtsm_guest_call_cbor(g, hh.h, VTSM_ABI_GOP_INFO, "dev2", 1, NULL, NULL, &res),
                     VTSM_E_ABI_ARG);
    assert_int_equal(vtsm_host_last_error(hh.h)->rule, VTSM_RULE_PDEV_14);
    vtsm_guest_close(g);
    e2e_host_close(&hh);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_names_canonical_and_refused, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_short_name_connects_and_guest_matches,
                                        e2e_fixture_setup, e2e_fixture_teardown),
    };
    return cmocka_run_group_tests_name("e2e_topo", tests, NULL, NULL);
}
