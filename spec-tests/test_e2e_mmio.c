/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * MMIO and DMA end to end (docs/abi.md 7.18 and 9.5): a real tsmd and tsm-devemu. The host
 * maps each MMIO range of a bound TDI's interface report (TDI_MMIO_MAP), the owning guest
 * validates them one by one (MMIO_VALIDATE) and enables DMA (DMA_ENABLE), then accepts.
 * Every refusal is asserted by (status, rule); STATUS and INFO are checked to tell the
 * truth after each step, and unbind / ERROR to clear mappings and DMA.
 *
 * tsm-devemu's TDI i reports range 0 = 16 pages and range 1 = the MSI-X table (1 page).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "e2e_host.h"
#include "e2e_util.h"
#include "vtsm_abi.h"
#include "vtsm_guest_cbor.h"
#include "vtsm_tdisp.h"

#define GPA0 0x4000000000ull /* where the host maps TDI 1 range 0 (16 pages) */
#define GPA1 0x4000010000ull /* TDI 1 range 1 (1 page), right after range 0 */

struct fx {
    struct e2e e;
    struct e2e_host hh;
    int port;
    struct vtsm_guest *ga, *gb;
    uint32_t tvm_a, tvm_b;
};

static const char *const *devemu_args;

static int setup(void **state)
{
    static struct fx f;
    memset(&f, 0, sizeof(f));
    if (e2e_setup(&f.e, NULL) != 0)
        return -1;
    f.port = e2e_devemu(&f.e, devemu_args);
    if (f.port <= 0 || e2e_host_open(&f.e, &f.hh) != 0 ||
        e2e_host_add_device(&f.hh, "0000:01:00.0", f.port, 0) != 0)
        return -1;
    struct vtsm_host_connect_opts o = {.ide_streams = 1};
    cbor_item_t *res = NULL;
    if (vtsm_host_device_connect_cbor(f.hh.h, "0000:01:00.0", &o, &res) != VTSM_OK)
        return -1;
    cbor_decref(&res);
    if (e2e_host_new_tvm(&f.hh, f.e.dir, "tvmA", &f.tvm_a, &f.ga) != 0 ||
        e2e_host_new_tvm(&f.hh, f.e.dir, "tvmB", &f.tvm_b, &f.gb) != 0)
        return -1;
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    vtsm_guest_close(f->ga);
    vtsm_guest_close(f->gb);
    e2e_host_close(&f->hh);
    return e2e_teardown(&f->e);
}

static const char *last_err(struct fx *f)
{
    return vtsm_host_last_error(f->hh.h)->detail;
}

/* The TSM's last ERROR named rule id, and the shim parsed it. */
static void expect_rule(struct fx *f, const char *id)
{
    const struct vtsm_host_error *e = vtsm_host_last_error(f->hh.h);
    if (!e->from_tsm || strcmp(e->rule_id, id) != 0 || e->rule != vtsm_rule_parse(id) ||
        e->rule == VTSM_RULE_NONE)
        fail_msg("ERROR %s rule '%s' (%s), wanted rule %s", e->name, e->rule_id, e->detail, id);
}

static void bind(struct fx *f, uint32_t tdi, uint32_t tvm, uint16_t flags)
{
    cbor_item_t *res = NULL;
    if (vtsm_host_tdi_bind_cbor(f->hh.h, "0000:01:00.0", tdi, tvm, flags, &res) != VTSM_OK)
        fail_msg("bind %u: %s", tdi, last_err(f));
    cbor_decref(&res);
}

/* TDI_MMIO_MAP; pages 0: not sent (the range's reported size). */
static vtsm_status map(struct fx *f, uint32_t tdi, uint32_t range, uint64_t gpa, uint64_t pages)
{
    cbor_item_t *req = vtsm_abi_map_new(), *res = NULL;
    assert_non_null(req);
    assert_int_equal(vtsm_abi_put_tstr(req, VTSM_ABI_K_DEV, "0000:01:00.0"), VTSM_OK);
    assert_int_equal(vtsm_abi_put_uint(req, VTSM_ABI_K_TDI, tdi), VTSM_OK);
    assert_int_equal(vtsm_abi_put_uint(req, VTSM_ABI_K_RANGE, range), VTSM_OK);
    assert_int_equal(vtsm_abi_put_uint(req, VTSM_ABI_K_GPA, gpa), VTSM_OK);
    if (pages)
        assert_int_equal(vtsm_abi_put_uint(req, VTSM_ABI_K_PAGES, pages), VTSM_OK);
    vtsm_status st = vtsm_host_call_cbor(f->hh.h, VTSM_OP_TDI_MMIO_MAP, req, &res);
    if (st == VTSM_OK) {
        assert_int_equal(e2e_uint(res, "range"), range);
        assert_int_equal(e2e_uint(res, "gpa"), gpa);
        assert_true(e2e_bool(res, "mmio_map.0.mapped") || range != 0);
    } else if (getenv("E2E_DEBUG")) {
        fprintf(stderr, "map %u/%u: %s\n", tdi, range, last_err(f));
    }
    cbor_decref(&req);
    if (res)
        cbor_decref(&res);
    return st;
}

static vtsm_status validate(struct fx *f, struct vtsm_guest *g, uint32_t tdi, uint32_t range,
                            uint64_t gpa, uint64_t pages, bool shared)
{
    struct vtsm_guest_mmio m = {.range = range, .gpa = gpa, .pages = pages, .shared = shared};
    cbor_item_t *res = NULL;
    vtsm_status st = vtsm_guest_mmio_validate_cbor(g, f->hh.h, "0000:01:00.0", tdi, &m, &res);
    if (st == VTSM_OK) {
        char path[32];
        snprintf(path, sizeof(path), "mmio_map.%u.validated", range);
        assert_true(e2e_bool(res, path));
        assert_int_equal(e2e_uint(res, "gpa"), gpa);
        assert_int_equal(e2e_bool(res, "private"), !shared);
    } else if (getenv("E2E_DEBUG")) {
        fprintf(stderr, "validate %u/%u: %s\n", tdi, range, last_err(f));
    }
    if (res)
        cbor_decref(&res);
    return st;
}

static vtsm_status dma(struct fx *f, struct vtsm_guest *g, uint32_t tdi)
{
    cbor_item_t *res = NULL;
    vtsm_status st = vtsm_guest_dma_enable_cbor(g, f->hh.h, "0000:01:00.0", tdi, &res);
    if (res)
        cbor_decref(&res);
    return st;
}

/* STATUS's entry of tdi (caller frees *all). */
static const cbor_item_t *status_tdi(struct fx *f, uint32_t tdi, cbor_item_t **all)
{
    assert_int_equal(vtsm_host_status_cbor(f->hh.h, "0000:01:00.0", all), VTSM_OK);
    const cbor_item_t *tdis = e2e_get(*all, "devices.0.tdis");
    for (size_t i = 0; tdis && i < cbor_array_size(tdis); i++) {
        const cbor_item_t *t = cbor_array_handle(tdis)[i];
        if (e2e_uint(t, "tdi") == tdi)
            return t;
    }
    return NULL;
}

/* ---------------------------------------------------------------- the happy path */

static void test_map_validate_dma_accept_unbind(void **state)
{
    struct fx *f = *state;
    char s[32];
    cbor_item_t *all = NULL, *res = NULL;
    bind(f, 1, f->tvm_a, VTSM_TDISP_LOCK_LOCK_MSIX);

    /* bound, nothing mapped: the STATUS entry stays small (no mmio_map, no dma: DMA off);
     * the guest's INFO lists both reported ranges, unmapped, and DMA off */
    const cbor_item_t *t = status_tdi(f, 1, &all);
    assert_non_null(t);
    assert_null(e2e_get(t, "mmio_map"));
    assert_null(e2e_get(t, "dma"));
    cbor_decref(&all);
    assert_int_equal(vtsm_guest_call_cbor(f->ga, f->hh.h, VTSM_ABI_GOP_INFO, "0000:01:00.0", 1,
                                          NULL, NULL, &res),
                     VTSM_OK);
    assert_int_equal(cbor_array_size(e2e_get(res, "mmio_map")), 2);
    assert_string_equal(e2e_str(res, "dma", s, sizeof(s)), "off");
    assert_int_equal(e2e_uint(res, "mmio_map.0.pages"), 16);
    assert_int_equal(e2e_uint(res, "mmio_map.1.attributes"), VTSM_TDISP_RANGE_MSIX_TABLE);
    assert_false(e2e_bool(res, "mmio_map.0.mapped"));
    assert_false(e2e_bool(res, "mmio_map.0.validated"));
    cbor_decref(&res);

    assert_int_equal(map(f, 1, 0, GPA0, 0), VTSM_OK);
    /* from the first mapping on, STATUS lists every range */
    t = status_tdi(f, 1, &all);
    assert_int_equal(cbor_array_size(e2e_get(t, "mmio_map")), 2);
    assert_false(e2e_bool(t, "mmio_map.1.mapped"));
    cbor_decref(&all);
    assert_int_equal(map(f, 1, 1, GPA1, 1), VTSM_OK);
    t = status_tdi(f, 1, &all);
    assert_true(e2e_bool(t, "mmio_map.1.mapped"));
    assert_int_equal(e2e_uint(t, "mmio_map.0.gpa"), GPA0);
    assert_int_equal(e2e_uint(t, "mmio_map.0.map_pages"), 16);
    assert_int_equal(e2e_uint(t, "mmio_map.1.gpa"), GPA1);
    assert_false(e2e_bool(t, "mmio_map.1.validated"));
    cbor_decref(&all);

    /* the guest validates both (the MSI-X table as private: locked with LOCK_MSIX) */
    assert_int_equal(validate(f, f->ga, 1, 0, GPA0, 16, false), VTSM_OK);
    assert_int_equal(validate(f, f->ga, 1, 1, GPA1, 1, false), VTSM_OK);
    /* again with the same arguments: nothing changes, still a success */
    assert_int_equal(validate(f, f->ga, 1, 1, GPA1, 1, false), VTSM_OK);
    assert_int_equal(dma(f, f->ga, 1), VTSM_OK);
    t = status_tdi(f, 1, &all);
    assert_true(e2e_bool(t, "mmio_map.0.validated"));
    assert_true(e2e_bool(t, "mmio_map.1.private"));
    assert_string_equal(e2e_str(t, "dma", s, sizeof(s)), "enabled");
    assert_string_equal(e2e_str(t, "state", s, sizeof(s)), "CONFIG_LOCKED");
    cbor_decref(&all);

    /* the guest's INFO shows the same */
    assert_int_equal(vtsm_guest_call_cbor(f->ga, f->hh.h, VTSM_ABI_GOP_INFO, "0000:01:00.0", 1,
                                          NULL, NULL, &res),
                     VTSM_OK);
    assert_true(e2e_bool(res, "mmio_map.1.validated"));
    assert_int_equal(e2e_uint(res, "mmio_map.0.gpa"), GPA0);
    assert_string_equal(e2e_str(res, "dma", s, sizeof(s)), "enabled");
    cbor_decref(&res);

    /* accept: RUN, DMA active; the host may no longer map (MMIO.1) */
    assert_int_equal(vtsm_guest_call_cbor(f->ga, f->hh.h, VTSM_ABI_GOP_ACCEPT, "0000:01:00.0", 1,
                                          NULL, NULL, &res),
                     VTSM_OK);
    assert_string_equal(e2e_str(res, "state", s, sizeof(s)), "RUN");
    cbor_decref(&res);
    t = status_tdi(f, 1, &all);
    assert_string_equal(e2e_str(t, "dma", s, sizeof(s)), "active");
    assert_true(e2e_bool(t, "mmio_map.0.validated"));
    cbor_decref(&all);
    assert_int_equal(map(f, 1, 0, GPA0 + 0x100000, 0), VTSM_E_STATE);
    expect_rule(f, "MMIO.1");

    /* unbind clears every mapping and DMA (DMA.3); a rebind starts from nothing */
    assert_int_equal(vtsm_host_tdi_unbind_cbor(f->hh.h, "0000:01:00.0", 1, &res), VTSM_OK);
    cbor_decref(&res);
    t = status_tdi(f, 1, &all);
    assert_null(e2e_get(t, "mmio_map"));
    assert_null(e2e_get(t, "dma"));
    cbor_decref(&all);
    bind(f, 1, f->tvm_a, 0);
    t = status_tdi(f, 1, &all);
    assert_null(e2e_get(t, "mmio_map"));
    cbor_decref(&all);
    assert_int_equal(dma(f, f->ga, 1), VTSM_E_STATE);
    expect_rule(f, "DMA.1");
}

/* ---------------------------------------------------------------- refusals */

static void test_host_map_refusals(void **state)
{
    struct fx *f = *state;
    /* not bound: MMIO.1; no such device: PDEV.13 */
    assert_int_equal(map(f, 3, 0, GPA0, 0), VTSM_E_STATE);
    expect_rule(f, "MMIO.1");
    bind(f, 1, f->tvm_a, 0);
    /* the report has two ranges */
    assert_int_equal(map(f, 1, 2, GPA0, 0), VTSM_E_NOT_FOUND);
    expect_rule(f, "MMIO.2");
    /* a range past the ABI's 64 is refused by the schema */
    assert_int_equal(map(f, 1, 64, GPA0, 0), VTSM_E_ABI_ARG);
    /* a validated range is not mapped again */
    assert_int_equal(map(f, 1, 0, GPA0, 0), VTSM_OK);
    assert_int_equal(validate(f, f->ga, 1, 0, GPA0, 16, false), VTSM_OK);
    assert_int_equal(map(f, 1, 0, GPA0 + 0x100000, 0), VTSM_E_STATE);
    expect_rule(f, "MMIO.3");
    /* an unvalidated one may be */
    assert_int_equal(map(f, 1, 1, GPA1 + 0x1000, 0), VTSM_OK);
    assert_int_equal(map(f, 1, 1, GPA1, 0), VTSM_OK);
    cbor_item_t *all = NULL;
    const cbor_item_t *t = status_tdi(f, 1, &all);
    assert_int_equal(e2e_uint(t, "mmio_map.0.gpa"), GPA0);
    assert_int_equal(e2e_uint(t, "mmio_map.1.gpa"), GPA1);
    cbor_decref(&all);
}

static void test_guest_validate_refusals(void **state)
{
    struct fx *f = *state;
    bind(f, 1, f->tvm_a, 0);
    /* not mapped yet */
    assert_int_equal(validate(f, f->ga, 1, 0, GPA0, 16, false), VTSM_E_STATE);
    expect_rule(f, "MMIO.4");
    /* a range the report does not have */
    assert_int_equal(validate(f, f->ga, 1, 5, GPA0, 16, false), VTSM_E_NOT_FOUND);
    expect_rule(f, "MMIO.2");
    /* not the owner */
    assert_int_equal(map(f, 1, 0, GPA0 + 0x800, 0), VTSM_OK);
    assert_int_equal(validate(f, f->gb, 1, 0, GPA0 + 0x800, 16, false), VTSM_E_NOT_OWNER);
    expect_rule(f, "MMIO.11");
    /* alignment: the host mapped it off a 4 KiB boundary */
    assert_int_equal(validate(f, f->ga, 1, 0, GPA0 + 0x800, 16, false), VTSM_E_STATE);
    expect_rule(f, "MMIO.7");
    /* ... or so that it runs past 2^64 */
    assert_int_equal(map(f, 1, 0, UINT64_MAX - 0x7FFF, 0), VTSM_OK);
    assert_int_equal(validate(f, f->ga, 1, 0, UINT64_MAX - 0x7FFF, 16, false), VTSM_E_STATE);
    expect_rule(f, "MMIO.7");
    /* size: the host mapped 8 of 16 pages; the guest expects 15 */
    assert_int_equal(map(f, 1, 0, GPA0, 8), VTSM_OK);
    assert_int_equal(validate(f, f->ga, 1, 0, GPA0, 16, false), VTSM_E_STATE);
    expect_rule(f, "MMIO.6");
    assert_int_equal(map(f, 1, 0, GPA0, 16), VTSM_OK);
    assert_int_equal(validate(f, f->ga, 1, 0, GPA0, 15, false), VTSM_E_STATE);
    expect_rule(f, "MMIO.6");
    /* offset: the guest expects it elsewhere than the host mapped it */
    assert_int_equal(validate(f, f->ga, 1, 0, GPA0 + 0x1000, 16, false), VTSM_E_STATE);
    expect_rule(f, "MMIO.5");
    /* overlap with another range of the same TDI: range 1 mapped inside range 0 */
    assert_int_equal(map(f, 1, 1, GPA0 + 0xF000, 0), VTSM_OK);
    assert_int_equal(validate(f, f->ga, 1, 1, GPA0 + 0xF000, 1, true), VTSM_E_STATE);
    expect_rule(f, "MMIO.8");
    assert_int_equal(validate(f, f->ga, 1, 0, GPA0, 16, false), VTSM_E_STATE);
    expect_rule(f, "MMIO.8");
    assert_int_equal(map(f, 1, 1, GPA1, 0), VTSM_OK);
    assert_int_equal(validate(f, f->ga, 1, 0, GPA0, 16, false), VTSM_OK);
    /* overlap with a range of another TDI of the same TVM */
    bind(f, 2, f->tvm_a, 0);
    assert_int_equal(map(f, 2, 0, GPA0 + 0x4000, 0), VTSM_OK);
    assert_int_equal(validate(f, f->ga, 2, 0, GPA0 + 0x4000, 16, false), VTSM_E_STATE);
    expect_rule(f, "MMIO.8");
    /* moved away it validates */
    assert_int_equal(map(f, 2, 0, GPA0 + 0x100000, 0), VTSM_OK);
    assert_int_equal(validate(f, f->ga, 2, 0, GPA0 + 0x100000, 16, false), VTSM_OK);
    /* ... and another TVM's address space is its own */
    bind(f, 3, f->tvm_b, 0);
    assert_int_equal(map(f, 3, 0, GPA0, 0), VTSM_OK);
    assert_int_equal(validate(f, f->gb, 3, 0, GPA0, 16, false), VTSM_OK);
    /* the MSI-X table, locked without LOCK_MSIX: shared only (MMIO.10) */
    assert_int_equal(validate(f, f->ga, 1, 1, GPA1, 1, false), VTSM_E_POLICY_REFUSED);
    expect_rule(f, "MMIO.10");
    /* DMA waits for every range */
    assert_int_equal(dma(f, f->ga, 1), VTSM_E_STATE);
    expect_rule(f, "DMA.1");
    assert_int_equal(validate(f, f->ga, 1, 1, GPA1, 1, true), VTSM_OK);
    /* validated as shared: not again as private */
    assert_int_equal(validate(f, f->ga, 1, 1, GPA1, 1, false), VTSM_E_POLICY_REFUSED);
    expect_rule(f, "MMIO.10");
    assert_int_equal(dma(f, f->gb, 1), VTSM_E_NOT_OWNER);
    expect_rule(f, "MMIO.11");
    assert_int_equal(dma(f, f->ga, 1), VTSM_OK);
    cbor_item_t *all = NULL;
    const cbor_item_t *t = status_tdi(f, 1, &all);
    char s[16];
    assert_false(e2e_bool(t, "mmio_map.1.private"));
    assert_string_equal(e2e_str(t, "dma", s, sizeof(s)), "enabled");
    cbor_decref(&all);
}

/* A device that drifts out of CONFIG_LOCKED: ACCEPT moves the TDI to ERROR, which revokes
 * every mapping and DMA (DMA.3); the guest can validate nothing and enable nothing. */
static void test_error_revokes_mappings_and_dma(void **state)
{
    struct fx *f = *state;
    char s[32];
    cbor_item_t *all = NULL, *res = NULL;
    bind(f, 1, f->tvm_a, VTSM_TDISP_LOCK_LOCK_MSIX);
    assert_int_equal(map(f, 1, 0, GPA0, 0), VTSM_OK);
    assert_int_equal(map(f, 1, 1, GPA1, 0), VTSM_OK);
    assert_int_equal(validate(f, f->ga, 1, 0, GPA0, 16, false), VTSM_OK);
    assert_int_equal(validate(f, f->ga, 1, 1, GPA1, 1, false), VTSM_OK);
    assert_int_equal(dma(f, f->ga, 1), VTSM_OK);
    assert_int_equal(vtsm_guest_call_cbor(f->ga, f->hh.h, VTSM_ABI_GOP_ACCEPT, "0000:01:00.0", 1,
                                          NULL, NULL, &res),
                     VTSM_E_PEER_STATE);
    if (res)
        cbor_decref(&res);
    const cbor_item_t *t = status_tdi(f, 1, &all);
    assert_string_equal(e2e_str(t, "state", s, sizeof(s)), "ERROR");
    assert_null(e2e_get(t, "dma")); /* DMA off, nothing mapped any more */
    assert_null(e2e_get(t, "mmio_map"));
    cbor_decref(&all);
    assert_int_equal(vtsm_guest_call_cbor(f->ga, f->hh.h, VTSM_ABI_GOP_INFO, "0000:01:00.0", 1,
                                          NULL, NULL, &res),
                     VTSM_OK);
    assert_false(e2e_bool(res, "mmio_map.0.mapped"));
    assert_false(e2e_bool(res, "mmio_map.0.validated"));
    assert_false(e2e_bool(res, "mmio_map.1.validated"));
    cbor_decref(&res);
    assert_int_equal(map(f, 1, 0, GPA0, 0), VTSM_E_STATE);
    expect_rule(f, "MMIO.1");
    assert_int_equal(validate(f, f->ga, 1, 0, GPA0, 16, false), VTSM_E_STATE);
    expect_rule(f, "MMIO.12");
    assert_int_equal(dma(f, f->ga, 1), VTSM_E_STATE);
    expect_rule(f, "DMA.2");
}

/* Range 2 of the report: the MSI-X PBA, reported IS_NON_TEE_MEM (devemu --msix-pba). */
static void test_pba_and_non_tee_range(void **state)
{
    struct fx *f = *state;
    cbor_item_t *all = NULL;
    bind(f, 1, f->tvm_a, VTSM_TDISP_LOCK_LOCK_MSIX);
    assert_int_equal(map(f, 1, 0, GPA0, 0), VTSM_OK);
    const cbor_item_t *t = status_tdi(f, 1, &all);
    assert_int_equal(cbor_array_size(e2e_get(t, "mmio_map")), 3);
    assert_int_equal(e2e_uint(t, "mmio_map.2.attributes"),
                     VTSM_TDISP_RANGE_MSIX_PBA | VTSM_TDISP_RANGE_IS_NON_TEE_MEM);
    cbor_decref(&all);
    assert_int_equal(map(f, 1, 0, GPA0, 0), VTSM_OK);
    assert_int_equal(map(f, 1, 1, GPA1, 0), VTSM_OK);
    assert_int_equal(map(f, 1, 2, GPA1 + 0x1000, 0), VTSM_OK);
    assert_int_equal(validate(f, f->ga, 1, 0, GPA0, 16, false), VTSM_OK);
    assert_int_equal(validate(f, f->ga, 1, 1, GPA1, 1, false), VTSM_OK);
    /* non-TEE memory is never private, LOCK_MSIX or not (MMIO.9) */
    assert_int_equal(validate(f, f->ga, 1, 2, GPA1 + 0x1000, 1, false), VTSM_E_POLICY_REFUSED);
    expect_rule(f, "MMIO.9");
    assert_int_equal(dma(f, f->ga, 1), VTSM_E_STATE);
    expect_rule(f, "DMA.1");
    /* the public (CBOR-free) forms */
    struct vtsm_guest_mmio pba = {.range = 2, .gpa = GPA1 + 0x1000, .pages = 1, .shared = true};
    struct vtsm_result *pr = NULL;
    assert_int_equal(vtsm_guest_mmio_validate(f->ga, f->hh.h, "0000:01:00.0", 1, &pba, &pr),
                     VTSM_OK);
    bool priv = true;
    assert_int_equal(vtsm_result_bool(pr, "mmio_map.2.private", &priv), VTSM_OK);
    assert_false(priv);
    vtsm_result_free(pr);
    pr = NULL;
    assert_int_equal(vtsm_guest_dma_enable(f->ga, f->hh.h, "0000:01:00.0", 1, &pr), VTSM_OK);
    char ds[16];
    assert_int_equal(vtsm_result_text(pr, "dma", ds, sizeof(ds)), VTSM_OK);
    assert_string_equal(ds, "enabled");
    vtsm_result_free(pr);
    cbor_item_t *res = NULL;
    assert_int_equal(vtsm_guest_call_cbor(f->ga, f->hh.h, VTSM_ABI_GOP_ACCEPT, "0000:01:00.0", 1,
                                          NULL, NULL, &res),
                     VTSM_OK);
    cbor_decref(&res);
    char s[16];
    t = status_tdi(f, 1, &all);
    assert_string_equal(e2e_str(t, "dma", s, sizeof(s)), "active");
    assert_false(e2e_bool(t, "mmio_map.2.private"));
    cbor_decref(&all);
}

/* Run a shell command line (its output redirected by the caller); the exit code. */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int rc = system(cmd); /* waits for (reaps) the child */
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

static void slurp(const char *path, char *buf, size_t cap)
{
    FILE *fp = fopen(path, "r");
    size_t n = fp ? fread(buf, 1, cap - 1, fp) : 0;
    buf[n] = '\0';
    if (fp)
        fclose(fp);
}

/* The CLIs: tsm-host takes the table verb by name (hex GPA), tsm-guest has mmio-validate
 * and dma-enable; refusals print their rule and exit 1. */
static void test_cli_map_validate_dma(void **state)
{
    struct fx *f = *state;
    struct e2e_run r;
    char out[4096], err[4096], o[160], e[160];
    snprintf(o, sizeof(o), "%s/cli.out", f->e.dir);
    snprintf(e, sizeof(e), "%s/cli.err", f->e.dir);
    bind(f, 1, f->tvm_a, VTSM_TDISP_LOCK_LOCK_MSIX);
    const char *const m0[] = {"tdi_mmio_map", "dev=0000:01:00.0", "tdi=1",
                              "range=0",      "gpa=0x4000000000", NULL};
    assert_int_equal(e2e_host(&f->e, &r, m0), 0);
    const char *const m2[] = {
        "tdi_mmio_map", "dev=0000:01:00.0", "tdi=1", "range=2", "gpa=0", NULL};
    assert_int_equal(e2e_host(&f->e, &r, m2), 1);
    E2E_HAS(r.err, "[rule MMIO.2]");
#define GUEST VTSM_BIN_DIR "/tsm-guest --socket %s --key %s/tvmA.key --tvm %u "
    /* range 1 is not mapped yet: refused with its rule */
    assert_int_equal(sh(GUEST "mmio-validate 0000:01:00.0 1 --range 1 --gpa 0x4000010000 --pages 1 "
                              ">%s 2>%s",
                        f->e.sock, f->e.dir, f->tvm_a, o, e),
                     1);
    slurp(e, err, sizeof(err));
    E2E_HAS(err, "[rule MMIO.4]");
    assert_int_equal(sh(GUEST "--json mmio-validate 0000:01:00.0 1 --range 0 --gpa 0x4000000000 "
                              "--pages 16 >%s 2>%s",
                        f->e.sock, f->e.dir, f->tvm_a, o, e),
                     0);
    slurp(o, out, sizeof(out));
    E2E_HAS(out, "\"validated\":true");
    assert_int_equal(
        sh(GUEST "dma-enable 0000:01:00.0 1 >%s 2>%s", f->e.sock, f->e.dir, f->tvm_a, o, e), 1);
    slurp(e, err, sizeof(err));
    E2E_HAS(err, "[rule DMA.1]");
    const char *const m1[] = {"tdi_mmio_map", "dev=0000:01:00.0", "tdi=1",
                              "range=1",      "gpa=0x4000010000", NULL};
    assert_int_equal(e2e_host(&f->e, &r, m1), 0);
    assert_int_equal(sh(GUEST "mmio-validate 0000:01:00.0 1 --range 1 --gpa 0x4000010000 --pages 1 "
                              "--shared >%s 2>%s",
                        f->e.sock, f->e.dir, f->tvm_a, o, e),
                     0);
    assert_int_equal(
        sh(GUEST "--json dma-enable 0000:01:00.0 1 >%s 2>%s", f->e.sock, f->e.dir, f->tvm_a, o, e),
        0);
    slurp(o, out, sizeof(out));
    E2E_HAS(out, "\"dma\":\"enabled\"");
    /* usage: mmio-validate needs its three options */
    assert_int_equal(sh(GUEST "mmio-validate 0000:01:00.0 1 --range 1 >%s 2>%s", f->e.sock,
                        f->e.dir, f->tvm_a, o, e),
                     2);
#undef GUEST
    const char *const tab[] = {"status", "0000:01:00.0", NULL};
    assert_int_equal(e2e_host(&f->e, &r, tab), 0);
    E2E_HAS(r.out, "MMIO MAP");
    E2E_HAS(r.out, "0x4000000000");
    const char *const st[] = {"--json", "status", "0000:01:00.0", NULL};
    assert_int_equal(e2e_host(&f->e, &r, st), 0);
    E2E_HAS(r.out, "\"mmio_map\"");
    E2E_HAS(r.out, "\"dma\":\"enabled\"");
}

/* A body built by hand, signed with the next seq and relayed: the TSM's body decoder. */
static vtsm_status raw_body(struct fx *f, struct vtsm_guest *g, unsigned gop, bool with_range,
                            bool with_private)
{
    uint64_t seq = 0;
    struct vtsm_buf frame = {0};
    cbor_item_t *body = vtsm_abi_map_new(), *env = NULL, *res = NULL;
    assert_int_equal(vtsm_guest_reserve_seq(g, &seq), VTSM_OK);
    assert_int_equal(vtsm_abi_put_uint(body, VTSM_ABI_K_GOP, gop), VTSM_OK);
    assert_int_equal(vtsm_abi_put_uint(body, VTSM_ABI_K_TVM, vtsm_guest_tvm(g)), VTSM_OK);
    assert_int_equal(vtsm_abi_put_uint(body, VTSM_ABI_K_SEQ, seq), VTSM_OK);
    assert_int_equal(vtsm_abi_put_tstr(body, VTSM_ABI_K_DEV, "0000:01:00.0"), VTSM_OK);
    assert_int_equal(vtsm_abi_put_uint(body, VTSM_ABI_K_TDI, 1), VTSM_OK);
    if (with_range)
        assert_int_equal(vtsm_abi_put_uint(body, VTSM_ABI_K_RANGE, 0), VTSM_OK);
    assert_int_equal(vtsm_abi_put_uint(body, VTSM_ABI_K_GPA, GPA0), VTSM_OK);
    assert_int_equal(vtsm_abi_put_uint(body, VTSM_ABI_K_PAGES, 16), VTSM_OK);
    if (with_private)
        assert_int_equal(vtsm_abi_put_bool(body, VTSM_ABI_K_PRIVATE, true), VTSM_OK);
    assert_int_equal(vtsm_abi_encode(body, &frame), VTSM_OK);
    assert_int_equal(vtsm_guest_sign_cbor(g, vtsm_guest_tvm(g),
                                          frame.data + VTSM_ABI_FRAME_HDR_SIZE,
                                          frame.len - VTSM_ABI_FRAME_HDR_SIZE, &env),
                     VTSM_OK);
    vtsm_status st = vtsm_host_guest_relay_cbor(f->hh.h, env, &res);
    cbor_decref(&env);
    cbor_decref(&body);
    if (res)
        cbor_decref(&res);
    vtsm_buf_free(&frame);
    return st;
}

/* The body keys of MMIO_VALIDATE: all three needed, private optional, none elsewhere. */
static void test_guest_body_keys(void **state)
{
    struct fx *f = *state;
    bind(f, 1, f->tvm_a, 0);
    assert_int_equal(map(f, 1, 0, GPA0, 0), VTSM_OK);
    /* MMIO_VALIDATE without range */
    assert_int_equal(raw_body(f, f->ga, VTSM_ABI_GOP_MMIO_VALIDATE, false, false), VTSM_E_ABI_ARG);
    expect_rule(f, "GUEST.4");
    /* INFO and DMA_ENABLE take none of them */
    assert_int_equal(raw_body(f, f->ga, VTSM_ABI_GOP_INFO, true, false), VTSM_E_ABI_ARG);
    expect_rule(f, "GUEST.4");
    assert_int_equal(raw_body(f, f->ga, VTSM_ABI_GOP_DMA_ENABLE, true, true), VTSM_E_ABI_ARG);
    expect_rule(f, "GUEST.4");
    /* complete, with or without private: accepted */
    assert_int_equal(raw_body(f, f->ga, VTSM_ABI_GOP_MMIO_VALIDATE, true, false), VTSM_OK);
    assert_int_equal(raw_body(f, f->ga, VTSM_ABI_GOP_MMIO_VALIDATE, true, true), VTSM_OK);
    /* a private range is not validated again as shared */
    assert_int_equal(validate(f, f->ga, 1, 0, GPA0, 16, true), VTSM_E_STATE);
    expect_rule(f, "MMIO.3");
}

/* The owner's UNLOCK (STOP, still assigned) revokes mappings and DMA like an unbind; after
 * its LOCK the host maps again and the guest validates again. */
static void test_unlock_and_relock_start_over(void **state)
{
    struct fx *f = *state;
    char s[32];
    cbor_item_t *all = NULL, *res = NULL;
    bind(f, 1, f->tvm_a, VTSM_TDISP_LOCK_LOCK_MSIX);
    assert_int_equal(map(f, 1, 0, GPA0, 0), VTSM_OK);
    assert_int_equal(map(f, 1, 1, GPA1, 0), VTSM_OK);
    assert_int_equal(validate(f, f->ga, 1, 0, GPA0, 16, false), VTSM_OK);
    assert_int_equal(validate(f, f->ga, 1, 1, GPA1, 1, false), VTSM_OK);
    assert_int_equal(dma(f, f->ga, 1), VTSM_OK);
    assert_int_equal(vtsm_guest_call_cbor(f->ga, f->hh.h, VTSM_ABI_GOP_UNLOCK, "0000:01:00.0", 1,
                                          NULL, NULL, &res),
                     VTSM_OK);
    cbor_decref(&res);
    const cbor_item_t *t = status_tdi(f, 1, &all);
    assert_string_equal(e2e_str(t, "state", s, sizeof(s)), "CONFIG_UNLOCKED");
    assert_null(e2e_get(t, "mmio_map"));
    assert_null(e2e_get(t, "dma"));
    cbor_decref(&all);
    /* unlocked: nothing to map or validate, no DMA */
    assert_int_equal(map(f, 1, 0, GPA0, 0), VTSM_E_STATE);
    expect_rule(f, "MMIO.1");
    assert_int_equal(validate(f, f->ga, 1, 0, GPA0, 16, false), VTSM_E_STATE);
    expect_rule(f, "MMIO.12");
    assert_int_equal(dma(f, f->ga, 1), VTSM_E_STATE);
    expect_rule(f, "DMA.2");
    /* LOCK again: a fresh start */
    assert_int_equal(vtsm_guest_call_cbor(f->ga, f->hh.h, VTSM_ABI_GOP_LOCK, "0000:01:00.0", 1,
                                          NULL, NULL, &res),
                     VTSM_OK);
    cbor_decref(&res);
    assert_int_equal(vtsm_guest_call_cbor(f->ga, f->hh.h, VTSM_ABI_GOP_INFO, "0000:01:00.0", 1,
                                          NULL, NULL, &res),
                     VTSM_OK);
    assert_string_equal(e2e_str(res, "state", s, sizeof(s)), "CONFIG_LOCKED");
    assert_false(e2e_bool(res, "mmio_map.0.mapped"));
    assert_false(e2e_bool(res, "mmio_map.0.validated"));
    assert_string_equal(e2e_str(res, "dma", s, sizeof(s)), "off");
    cbor_decref(&res);
    assert_int_equal(dma(f, f->ga, 1), VTSM_E_STATE);
    expect_rule(f, "DMA.1");
    assert_int_equal(map(f, 1, 0, GPA0, 0), VTSM_OK);
    assert_int_equal(validate(f, f->ga, 1, 0, GPA0, 16, false), VTSM_OK);
}

static const char *const f_drift[] = {"--fault", "tdisp-state-drift", NULL};
static const char *const o_pba[] = {"--msix-pba", NULL};

int main(int argc, char **argv)
{
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]);
        if (!strcmp(argv[1], "test_error_revokes_mappings_and_dma"))
            devemu_args = f_drift;
        if (!strcmp(argv[1], "test_pba_and_non_tee_range"))
            devemu_args = o_pba;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_map_validate_dma_accept_unbind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_map_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_guest_validate_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_revokes_mappings_and_dma, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pba_and_non_tee_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_map_validate_dma, setup, teardown),
        cmocka_unit_test_setup_teardown(test_guest_body_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unlock_and_relock_start_over, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
