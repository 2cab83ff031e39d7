/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tsm/tsm_mmio: the MMIO and DMA rules of a bound TDI (docs/abi.md 7.18 and 9.5) on the
 * object model alone, at their edges: adjacent mappings, one shared byte, the top of the
 * address space, other TDIs of the same and of another TVM, nothing changed on refusal,
 * and ERROR / unbind clearing everything. Failure cases first.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tsm_mmio.h"
#include "vtsm_test.h"

#define DEV   "0000:01:00.0"
#define OWNER 7
#define OTHER 9
#define PAGE  4096ull

/* A TDI bound to tvm in CONFIG_LOCKED whose report has ranges: 16 pages (range 0), the
 * MSI-X table (1 page), the PBA marked non-TEE (1 page). */
static void bound(struct tsm_tdi *t, uint32_t index, uint32_t tvm, uint16_t lock_flags)
{
    struct vtsm_tdisp_report rep;
    uint8_t buf[256];
    memset(&rep, 0, sizeof(rep));
    rep.interface_info = VTSM_TDISP_INFO_DMA_WITHOUT_PASID;
    rep.mmio_range_count = 3;
    rep.mmio_range[0] = (struct vtsm_tdisp_mmio_range){0x80000, 16, 0, 0};
    rep.mmio_range[1] = (struct vtsm_tdisp_mmio_range){0x80010, 1, VTSM_TDISP_RANGE_MSIX_TABLE, 1};
    rep.mmio_range[2] = (struct vtsm_tdisp_mmio_range){
        0x80011, 1, VTSM_TDISP_RANGE_MSIX_PBA | VTSM_TDISP_RANGE_IS_NON_TEE_MEM, 2};
    struct vtsm_wr w = vtsm_wr_init(buf, sizeof(buf));
    assert_int_equal(vtsm_tdisp_report_build(&w, &rep), VTSM_OK);
    assert_int_equal(tsm_tdi_init(t, DEV, index), VTSM_OK);
    assert_int_equal(vtsm_buf_append(&t->report, buf, w.len), VTSM_OK);
    assert_int_equal(
        tsm_tdi_set_state(t, TSM_TDI_REQ_BIND, TSM_TDI_WHO_HOST, 0, TSM_TDI_CONFIG_LOCKED),
        VTSM_OK);
    t->owner_tvm = tvm;
    t->lock_flags = lock_flags;
}

static void test_map_refusals(void **s)
{
    (void)s;
    struct tsm_tdi t;
    assert_int_equal(tsm_tdi_init(&t, DEV, 1), VTSM_OK);
    EXPECT(tsm_tdi_mmio_map(&t, 0, 0, 0), VTSM_E_STATE, VTSM_RULE_MMIO_1);
    tsm_tdi_reset(&t);
    bound(&t, 1, OWNER, 0);
    EXPECT(tsm_tdi_mmio_map(&t, 3, 0, 0), VTSM_E_NOT_FOUND, VTSM_RULE_MMIO_2);
    EXPECT(tsm_tdi_mmio_map(&t, 0, 0x10000, 0), VTSM_OK, VTSM_RULE_NONE);
    assert_int_equal(t.mmio[0].pages, 16); /* default: the reported size */
    EXPECT(tsm_tdi_mmio_validate(&t, OWNER, 0, 0x10000, 16, true, NULL, 0), VTSM_OK,
           VTSM_RULE_NONE);
    EXPECT(tsm_tdi_mmio_map(&t, 0, 0x20000, 0), VTSM_E_STATE, VTSM_RULE_MMIO_3);
    assert_int_equal(t.mmio[0].gpa, 0x10000);
    tsm_tdi_reset(&t);
}

static void test_validate_edges(void **s)
{
    (void)s;
    struct tsm_tdi t, o, x;
    bound(&t, 1, OWNER, VTSM_TDISP_LOCK_LOCK_MSIX);
    bound(&o, 2, OWNER, 0);
    bound(&x, 3, OTHER, 0);
    const struct tsm_tdi *all[] = {&t, &o, &x};

    /* the top of the address space: the last 16 pages fit, one page higher does not */
    uint64_t top = UINT64_MAX - 16 * PAGE + 1;
    EXPECT(tsm_tdi_mmio_map(&t, 0, top + PAGE, 0), VTSM_OK, VTSM_RULE_NONE);
    struct tsm_tdi_mmio before[VTSM_TDISP_MAX_MMIO_RANGES];
    memcpy(before, t.mmio, sizeof(before));
    EXPECT(tsm_tdi_mmio_validate(&t, OWNER, 0, top + PAGE, 16, true, all, 3), VTSM_E_STATE,
           VTSM_RULE_MMIO_7);
    assert_memory_equal(before, t.mmio, sizeof(before)); /* nothing changed */
    EXPECT(tsm_tdi_mmio_map(&t, 0, top, 0), VTSM_OK, VTSM_RULE_NONE);
    EXPECT(tsm_tdi_mmio_validate(&t, OWNER, 0, top, 16, true, all, 3), VTSM_OK, VTSM_RULE_NONE);

    /* adjacent is not overlapping; one shared page is */
    EXPECT(tsm_tdi_mmio_map(&o, 0, top - 16 * PAGE, 0), VTSM_OK, VTSM_RULE_NONE);
    EXPECT(tsm_tdi_mmio_validate(&o, OWNER, 0, top - 16 * PAGE, 16, true, all, 3), VTSM_OK,
           VTSM_RULE_NONE);
    EXPECT(tsm_tdi_mmio_map(&t, 1, top - PAGE, 0), VTSM_OK, VTSM_RULE_NONE);
    EXPECT(tsm_tdi_mmio_validate(&t, OWNER, 1, top - PAGE, 1, true, all, 3), VTSM_E_STATE,
           VTSM_RULE_MMIO_8);
    /* another TVM's mappings never collide with ours */
    EXPECT(tsm_tdi_mmio_map(&x, 0, top, 0), VTSM_OK, VTSM_RULE_NONE);
    EXPECT(tsm_tdi_mmio_validate(&x, OTHER, 0, top, 16, true, all, 3), VTSM_OK, VTSM_RULE_NONE);
    /* not the owner, whatever the state */
    EXPECT(tsm_tdi_mmio_validate(&t, OTHER, 1, top - PAGE, 1, true, all, 3), VTSM_E_NOT_OWNER,
           VTSM_RULE_MMIO_11);
    EXPECT(tsm_tdi_mmio_validate(&t, 0, 1, top - PAGE, 1, true, all, 3), VTSM_E_NOT_OWNER,
           VTSM_RULE_MMIO_11);

    /* MSI-X table private with LOCK_MSIX; the non-TEE PBA never private */
    EXPECT(tsm_tdi_mmio_map(&t, 1, 0x100000, 0), VTSM_OK, VTSM_RULE_NONE);
    EXPECT(tsm_tdi_mmio_map(&t, 2, 0x101000, 0), VTSM_OK, VTSM_RULE_NONE);
    EXPECT(tsm_tdi_mmio_validate(&t, OWNER, 1, 0x100000, 1, true, all, 3), VTSM_OK, VTSM_RULE_NONE);
    EXPECT(tsm_tdi_dma_enable(&t, OWNER), VTSM_E_STATE, VTSM_RULE_DMA_1);
    assert_false(t.dma_guest);
    EXPECT(tsm_tdi_mmio_validate(&t, OWNER, 2, 0x101000, 1, true, all, 3), VTSM_E_POLICY_REFUSED,
           VTSM_RULE_MMIO_9);
    EXPECT(tsm_tdi_mmio_validate(&t, OWNER, 2, 0x101000, 1, false, all, 3), VTSM_OK,
           VTSM_RULE_NONE);
    EXPECT(tsm_tdi_dma_enable(&t, OTHER), VTSM_E_NOT_OWNER, VTSM_RULE_MMIO_11);
    EXPECT(tsm_tdi_dma_enable(&t, OWNER), VTSM_OK, VTSM_RULE_NONE);
    assert_string_equal(tsm_tdi_dma_name(&t), "enabled");
    uint32_t v = 0;
    assert_int_equal(tsm_tdi_mmio_count(&t, &v), 3);
    assert_int_equal(v, 3);

    /* without LOCK_MSIX the table is shared only */
    EXPECT(tsm_tdi_mmio_map(&o, 1, 0x200000, 0), VTSM_OK, VTSM_RULE_NONE);
    EXPECT(tsm_tdi_mmio_validate(&o, OWNER, 1, 0x200000, 1, true, all, 3), VTSM_E_POLICY_REFUSED,
           VTSM_RULE_MMIO_10);

    /* RUN: DMA active; ERROR clears everything, and nothing can be validated or enabled */
    assert_int_equal(
        tsm_tdi_set_state(&t, TSM_TDI_REQ_ACCEPT, TSM_TDI_WHO_OWNER_GUEST, OWNER, TSM_TDI_RUN),
        VTSM_OK);
    assert_string_equal(tsm_tdi_dma_name(&t), "active");
    EXPECT(tsm_tdi_mmio_map(&t, 1, 0x300000, 0), VTSM_E_STATE, VTSM_RULE_MMIO_1);
    assert_int_equal(
        tsm_tdi_set_state(&t, TSM_TDI_REQ_DEVICE_ERROR, TSM_TDI_WHO_TSM, 0, TSM_TDI_ERROR),
        VTSM_OK);
    assert_string_equal(tsm_tdi_dma_name(&t), "off");
    for (unsigned i = 0; i < VTSM_TDISP_MAX_MMIO_RANGES; i++)
        assert_false(t.mmio[i].mapped || t.mmio[i].validated);
    EXPECT(tsm_tdi_mmio_validate(&t, OWNER, 0, top, 16, true, all, 3), VTSM_E_STATE,
           VTSM_RULE_MMIO_12);
    EXPECT(tsm_tdi_dma_enable(&t, OWNER), VTSM_E_STATE, VTSM_RULE_DMA_2);

    /* unbind (reset) clears the other TDI's too */
    assert_true(o.mmio[0].validated);
    tsm_tdi_reset(&o);
    assert_false(o.mmio[0].mapped || o.mmio[0].validated || o.dma_guest);
    tsm_tdi_reset(&t);
    tsm_tdi_reset(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_refusals),
        cmocka_unit_test(test_validate_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
