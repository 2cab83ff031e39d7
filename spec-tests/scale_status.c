/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Scale (label "scale"): STATUS answers at sizes that do not fit one ABI message, with
 * real tsmd and tsm-devemu processes. Every page is a RESULT; following next_offset /
 * next_tdi_offset / next_tvm_offset yields every device, TDI and TVM exactly once.
 *  - 1024 registered devices (global pages and the summary form);
 *  - 64 connected devices (the full view, paged);
 *  - 2 devices x 255 bound TDIs (per-device pages of TDIs; the kept bound counts).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "e2e_host.h"
#include "e2e_util.h"
#include "vtsm_abi.h"
#include "vtsm_guest_cbor.h"

/* One STATUS page. */
static cbor_item_t *status_page(struct vtsm_host *h, const char *dev, bool summary, uint64_t offset,
                                uint64_t tdi_offset, uint64_t tvm_offset)
{
    cbor_item_t *req = vtsm_abi_map_new(), *res = NULL;
    if (dev)
        vtsm_abi_put_tstr(req, "dev", dev);
    if (summary)
        vtsm_abi_put_bool(req, "summary", true);
    if (offset)
        vtsm_abi_put_uint(req, "offset", offset);
    if (tdi_offset)
        vtsm_abi_put_uint(req, "tdi_offset", tdi_offset);
    if (tvm_offset)
        vtsm_abi_put_uint(req, "tvm_offset", tvm_offset);
    vtsm_status st = vtsm_host_call_cbor(h, VTSM_ABI_OP_STATUS, req, &res);
    cbor_decref(&req);
    if (st != VTSM_OK)
        fail_msg("STATUS page: %s", vtsm_host_last_error(h)->detail);
    return res;
}

/* Walk the global pages: every device once, in states want_state; returns the count. */
static unsigned all_devices(struct vtsm_host *h, bool summary, const char *want_state,
                            unsigned *pages)
{
    uint64_t offset = 0, total = 0;
    unsigned n = 0;
    *pages = 0;
    for (;;) {
        cbor_item_t *res = status_page(h, NULL, summary, offset, 0, 0);
        (*pages)++;
        const cbor_item_t *devs = e2e_get(res, "devices");
        assert_non_null(devs);
        assert_true(cbor_array_size(devs) > 0);
        for (size_t i = 0; i < cbor_array_size(devs); i++) {
            char s[32];
            e2e_str(cbor_array_handle(devs)[i], "state", s, sizeof(s));
            assert_string_equal(s, want_state);
            n++;
        }
        uint64_t next = e2e_uint(res, "next_offset");
        total = e2e_uint(res, "total_devices");
        cbor_decref(&res);
        if (!next)
            break;
        assert_int_equal(next, n); /* the next page starts where this one ended */
        offset = next;
    }
    assert_int_equal(total, n);
    return n;
}

static void test_status_1024_devices(void **state)
{
    struct e2e *e = *state;
    struct e2e_host hh;
    assert_int_equal(e2e_host_open(e, &hh), 0);
    for (int i = 0; i < 1024; i++) {
        char dev[32];
        snprintf(dev, sizeof(dev), "0000:%02x:%02x.%d", i / 64, (i / 8) % 8, i % 8);
        assert_int_equal(vtsm_host_device_add_cbor(hh.h, dev, i % 2), VTSM_OK);
    }
    unsigned pages = 0;
    assert_int_equal(all_devices(hh.h, false, "unconnected", &pages), 1024);
    assert_true(pages > 1);
    assert_int_equal(all_devices(hh.h, true, "unconnected", &pages), 1024);
    /* the host shim gathers every page into one result */
    cbor_item_t *all = NULL;
    assert_int_equal(vtsm_host_status_cbor(hh.h, NULL, &all), VTSM_OK);
    assert_int_equal(cbor_array_size(e2e_get(all, "devices")), 1024);
    assert_null(e2e_get(all, "next_offset"));
    cbor_decref(&all);
    /* one device by name */
    cbor_item_t *res = status_page(hh.h, "0000:0f:07.7", false, 0, 0, 0);
    char s[32];
    assert_string_equal(e2e_str(res, "devices.0.dev", s, sizeof(s)), "0000:0f:07.7");
    cbor_decref(&res);
    e2e_host_close(&hh);
}

static void test_status_64_connected_devices(void **state)
{
    struct e2e *e = *state;
    struct e2e_host hh;
    static const char *const p256[] = {"--alg", "p256", "--tdis", "1", NULL};
    assert_int_equal(e2e_host_open(e, &hh), 0);
    for (int i = 0; i < 64; i++) {
        char dev[32];
        snprintf(dev, sizeof(dev), "0000:%02x:00.0", i + 1);
        int port = e2e_devemu(e, p256);
        assert_true(port > 0);
        assert_int_equal(e2e_host_add_device(&hh, dev, port, 0), 0);
        cbor_item_t *res = NULL;
        if (vtsm_host_device_connect_cbor(hh.h, dev, NULL, &res) != VTSM_OK)
            fail_msg("connect %s: %s", dev, vtsm_host_last_error(hh.h)->detail);
        cbor_decref(&res);
    }
    unsigned pages = 0;
    assert_int_equal(all_devices(hh.h, false, "connected", &pages), 64);
    assert_int_equal(all_devices(hh.h, true, "connected", &pages), 64);
    assert_int_equal(pages, 1); /* 64 summaries fit one page */
    e2e_host_close(&hh);
}

/* Devices of the bound-TDI case: 2, or VTSM_SCALE_DEVICES (up to 64) for a manual run at
 * the full size (64 x 255 bound TDIs takes a minute or more). */
static int scale_devices(void)
{
    const char *v = getenv("VTSM_SCALE_DEVICES");
    int n = v ? atoi(v) : 2;
    return n < 1 ? 1 : n > 64 ? 64 : n;
}

static void test_status_2_devices_255_bound_tdis(void **state)
{
    struct e2e *e = *state;
    struct e2e_host hh;
    static const char *const many[] = {"--alg", "p256", "--tdis", "255", NULL};
    const int nd = scale_devices();
    char devs[64][16];
    for (int d = 0; d < nd; d++)
        snprintf(devs[d], sizeof(devs[d]), "0000:%02x:00.0", d + 1);
    assert_int_equal(e2e_host_open(e, &hh), 0);
    uint32_t tvm = 0;
    assert_int_equal(e2e_host_new_tvm(&hh, e->dir, "many", &tvm, NULL), 0);
    for (int d = 0; d < nd; d++) {
        int port = e2e_devemu(e, many);
        assert_true(port > 0);
        assert_int_equal(e2e_host_add_device(&hh, devs[d], port, d % 2), 0);
        assert_int_equal(vtsm_host_device_connect_cbor(hh.h, devs[d], NULL, NULL), VTSM_OK);
        for (uint32_t i = 0; i < 255; i++)
            if (vtsm_host_tdi_bind_cbor(hh.h, devs[d], i, tvm, 0, NULL) != VTSM_OK)
                fail_msg("bind %s %u: %s", devs[d], i, vtsm_host_last_error(hh.h)->detail);
    }
    /* per device: page through the TDIs */
    for (int d = 0; d < nd; d++) {
        uint64_t tdi_offset = 0;
        unsigned seen = 0, pages = 0;
        bool have[255] = {false};
        for (;;) {
            cbor_item_t *res = status_page(hh.h, devs[d], false, 0, tdi_offset, 0);
            pages++;
            assert_int_equal(e2e_uint(res, "devices.0.total_tdis"), 255);
            assert_int_equal(e2e_uint(res, "devices.0.bound_tdis"), 255);
            const cbor_item_t *tdis = e2e_get(res, "devices.0.tdis");
            assert_non_null(tdis);
            for (size_t i = 0; i < cbor_array_size(tdis); i++) {
                uint64_t idx = e2e_uint(cbor_array_handle(tdis)[i], "tdi");
                char s[32];
                assert_true(idx < 255 && !have[idx]);
                have[idx] = true;
                assert_string_equal(e2e_str(cbor_array_handle(tdis)[i], "state", s, sizeof(s)),
                                    "CONFIG_LOCKED");
                seen++;
            }
            uint64_t next = e2e_uint(res, "next_tdi_offset");
            cbor_decref(&res);
            if (!next)
                break;
            assert_int_equal(next, seen);
            tdi_offset = next;
        }
        assert_int_equal(seen, 255);
        /* asked for by name, 255 bound TDI entries, each with its RID and MMIO ranges, take
         * a few pages of the message's item budget */
        assert_true(pages > 1 && pages <= 4);
        /* a page from the middle: the rest of the TDIs */
        cbor_item_t *res = status_page(hh.h, devs[d], false, 0, 200, 0);
        assert_int_equal(cbor_array_size(e2e_get(res, "devices.0.tdis")), 55);
        assert_null(e2e_get(res, "next_tdi_offset"));
        cbor_decref(&res);
    }
    /* the global view still answers: every summary on one page, and the TVM's kept count */
    cbor_item_t *res = status_page(hh.h, NULL, true, 0, 0, 0);
    assert_int_equal(cbor_array_size(e2e_get(res, "devices")), nd);
    assert_int_equal(e2e_uint(res, "tvms.0.bound_tdis"), 255u * (unsigned)nd);
    cbor_decref(&res);
    /* the full global view: two such devices do not fit one message together */
    unsigned pages = 0;
    assert_int_equal(all_devices(hh.h, false, "connected", &pages), nd);
    assert_int_equal(pages, nd);
    /* the host shim gathers a device's TDI pages too */
    cbor_item_t *all = NULL;
    assert_int_equal(vtsm_host_status_cbor(hh.h, devs[0], &all), VTSM_OK);
    assert_int_equal(cbor_array_size(e2e_get(all, "devices.0.tdis")), 255);
    cbor_decref(&all);
    /* reclaim with force drops every binding; the counts follow */
    for (int d = 0; d < nd; d++)
        assert_int_equal(vtsm_host_device_reclaim_opts_cbor(hh.h, devs[d], true, NULL), VTSM_OK);
    res = status_page(hh.h, NULL, true, 0, 0, 0);
    assert_int_equal(e2e_uint(res, "tvms.0.bound_tdis"), 0);
    cbor_decref(&res);
    assert_int_equal(vtsm_host_tvm_destroy_cbor(hh.h, tvm, NULL), VTSM_OK);
    e2e_host_close(&hh);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_status_1024_devices, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_status_64_connected_devices, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_status_2_devices_255_bound_tdis, e2e_fixture_setup,
                                        e2e_fixture_teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
