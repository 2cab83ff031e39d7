/* SPDX-License-Identifier: BSD-3-Clause */
/* MMIO mappings and DMA of a bound TDI: the rules of tsm_mmio.h. */
#include "tsm_mmio.h"

#include <stdlib.h>
#include <string.h>

#include "vtsm_guard.h"

#define PAGE VTSM_TDISP_PAGE_SIZE

/* The parsed report of a bound TDI, on the heap (it holds 64 ranges; flows run on small
 * coroutine stacks). */
static vtsm_status report_of(const struct tsm_tdi *t, struct vtsm_tdisp_report **out)
{
    struct vtsm_tdisp_report *rep = malloc(sizeof(*rep));
    VTSM_ENSURE(rep != NULL, VTSM_E_NOMEM, "MMIO: out of memory");
    vtsm_status st = tsm_tdi_report(t, rep);
    if (st != VTSM_OK) {
        free(rep);
        return st;
    }
    *out = rep;
    return VTSM_OK;
}

/* Last byte of a mapping, false if it runs past 2^64 (or is empty). */
static bool map_last(uint64_t gpa, uint64_t pages, uint64_t *last)
{
    if (pages == 0 || pages > (UINT64_MAX / PAGE) || gpa > UINT64_MAX - (pages * PAGE - 1))
        return false;
    *last = gpa + (pages * PAGE - 1);
    return true;
}

/* Does mapping m (validated or not) overlap [gpa, last]? */
static bool overlaps(const struct tsm_tdi_mmio *m, uint64_t gpa, uint64_t last)
{
    uint64_t ml;
    if (!m->mapped || !map_last(m->gpa, m->pages, &ml))
        return false;
    return m->gpa <= last && gpa <= ml;
}

vtsm_status tsm_tdi_mmio_map(struct tsm_tdi *t, uint32_t range, uint64_t gpa, uint64_t pages)
{
    struct vtsm_tdisp_report *rep = NULL;
    vtsm_status st;

    VTSM_ENSURE(t != NULL, VTSM_E_INVAL, "MMIO map: NULL argument");
    VTSM_ENSURE_RULE(t->state == TSM_TDI_CONFIG_LOCKED, VTSM_E_STATE, VTSM_RULE_MMIO_1,
                     "MMIO map of %s TDI %u refused: it is %s (rule MMIO.1: only while "
                     "CONFIG_LOCKED, before RUN)",
                     t->dev, t->index, tsm_tdi_state_name(t->state));
    VTSM_GUARD(report_of(t, &rep));
    VTSM_ENSURE_RULE_GOTO(range < rep->mmio_range_count, VTSM_E_NOT_FOUND, VTSM_RULE_MMIO_2,
                          "MMIO map of %s TDI %u: its report has %u MMIO ranges, no range %u "
                          "(rule MMIO.2)",
                          t->dev, t->index, rep->mmio_range_count, range);
    struct tsm_tdi_mmio *m = &t->mmio[range];
    VTSM_ENSURE_RULE_GOTO(!m->validated, VTSM_E_STATE, VTSM_RULE_MMIO_3,
                          "MMIO map of %s TDI %u range %u: the guest validated it at 0x%llx "
                          "(rule MMIO.3: a validated range is not mapped again)",
                          t->dev, t->index, range, (unsigned long long)m->gpa);
    if (pages == 0)
        pages = rep->mmio_range[range].number_of_pages;
    m->mapped = true;
    m->gpa = gpa;
    m->pages = pages;
    st = VTSM_OK;
out:
    free(rep);
    return st;
}

/* MMIO.11: the owning guest. */
static vtsm_status check_owner(const struct tsm_tdi *t, uint32_t guest_tvm, const char *what)
{
    VTSM_ENSURE_RULE(guest_tvm != 0 && t->owner_tvm == guest_tvm, VTSM_E_NOT_OWNER,
                     VTSM_RULE_MMIO_11,
                     "%s of %s TDI %u refused: TVM %u does not own it (rule MMIO.11)", what, t->dev,
                     t->index, guest_tvm);
    return VTSM_OK;
}

/* MMIO.8: [gpa, last] of range `range` of t against every other mapping of the TVM. */
static vtsm_status check_overlap(const struct tsm_tdi *t, uint32_t range, uint64_t gpa,
                                 uint64_t last, const struct tsm_tdi *const *others, size_t n)
{
    for (uint32_t i = 0; i < VTSM_TDISP_MAX_MMIO_RANGES; i++)
        VTSM_ENSURE_RULE(i == range || !overlaps(&t->mmio[i], gpa, last), VTSM_E_STATE,
                         VTSM_RULE_MMIO_8,
                         "MMIO validate of %s TDI %u range %u: its mapping at 0x%llx overlaps "
                         "range %u's at 0x%llx (rule MMIO.8)",
                         t->dev, t->index, range, (unsigned long long)gpa, i,
                         (unsigned long long)t->mmio[i].gpa);
    for (size_t k = 0; k < n; k++) {
        const struct tsm_tdi *o = others[k];
        if (o == NULL || o == t || o->owner_tvm != t->owner_tvm)
            continue;
        for (uint32_t i = 0; i < VTSM_TDISP_MAX_MMIO_RANGES; i++)
            VTSM_ENSURE_RULE(!overlaps(&o->mmio[i], gpa, last), VTSM_E_STATE, VTSM_RULE_MMIO_8,
                             "MMIO validate of %s TDI %u range %u: its mapping at 0x%llx "
                             "overlaps %s TDI %u range %u of the same TVM (rule MMIO.8)",
                             t->dev, t->index, range, (unsigned long long)gpa, o->dev, o->index, i);
    }
    return VTSM_OK;
}

vtsm_status tsm_tdi_mmio_validate(struct tsm_tdi *t, uint32_t guest_tvm, uint32_t range,
                                  uint64_t gpa, uint64_t pages, bool priv,
                                  const struct tsm_tdi *const *others, size_t n_others)
{
    struct vtsm_tdisp_report *rep = NULL;
    vtsm_status st;
    uint64_t last = 0;

    VTSM_ENSURE(t != NULL && (others != NULL || n_others == 0), VTSM_E_INVAL,
                "MMIO validate: NULL argument");
    VTSM_GUARD(check_owner(t, guest_tvm, "MMIO validate"));
    VTSM_ENSURE_RULE(t->state == TSM_TDI_CONFIG_LOCKED || t->state == TSM_TDI_RUN, VTSM_E_STATE,
                     VTSM_RULE_MMIO_12,
                     "MMIO validate of %s TDI %u refused: it is %s (rule MMIO.12)", t->dev,
                     t->index, tsm_tdi_state_name(t->state));
    VTSM_GUARD(report_of(t, &rep));
    VTSM_ENSURE_RULE_GOTO(range < rep->mmio_range_count, VTSM_E_NOT_FOUND, VTSM_RULE_MMIO_2,
                          "MMIO validate of %s TDI %u: its report has %u MMIO ranges, no range "
                          "%u (rule MMIO.2)",
                          t->dev, t->index, rep->mmio_range_count, range);
    const struct vtsm_tdisp_mmio_range *r = &rep->mmio_range[range];
    struct tsm_tdi_mmio *m = &t->mmio[range];
    VTSM_ENSURE_RULE_GOTO(m->mapped, VTSM_E_STATE, VTSM_RULE_MMIO_4,
                          "MMIO validate of %s TDI %u range %u: the host has not mapped it "
                          "(rule MMIO.4)",
                          t->dev, t->index, range);
    VTSM_ENSURE_RULE_GOTO(
        m->gpa % PAGE == 0 && map_last(m->gpa, m->pages, &last), VTSM_E_STATE, VTSM_RULE_MMIO_7,
        "MMIO validate of %s TDI %u range %u: the host mapped it at 0x%llx, "
        "%llu pages (rule MMIO.7: 4 KiB aligned, below 2^64)",
        t->dev, t->index, range, (unsigned long long)m->gpa, (unsigned long long)m->pages);
    VTSM_ENSURE_RULE_GOTO(m->pages == r->number_of_pages && pages == r->number_of_pages,
                          VTSM_E_STATE, VTSM_RULE_MMIO_6,
                          "MMIO validate of %s TDI %u range %u: the report gives %u pages, the "
                          "host mapped %llu, the guest expects %llu (rule MMIO.6)",
                          t->dev, t->index, range, r->number_of_pages, (unsigned long long)m->pages,
                          (unsigned long long)pages);
    VTSM_ENSURE_RULE_GOTO(gpa == m->gpa, VTSM_E_STATE, VTSM_RULE_MMIO_5,
                          "MMIO validate of %s TDI %u range %u: the guest expects it at 0x%llx, "
                          "the host mapped it at 0x%llx (rule MMIO.5)",
                          t->dev, t->index, range, (unsigned long long)gpa,
                          (unsigned long long)m->gpa);
    VTSM_GUARD_GOTO(check_overlap(t, range, m->gpa, last, others, n_others));
    VTSM_ENSURE_RULE_GOTO(!priv || !(r->range_attributes & VTSM_TDISP_RANGE_IS_NON_TEE_MEM),
                          VTSM_E_POLICY_REFUSED, VTSM_RULE_MMIO_9,
                          "MMIO validate of %s TDI %u range %u: the report marks it "
                          "IS_NON_TEE_MEM, it is not private (rule MMIO.9)",
                          t->dev, t->index, range);
    const uint16_t msix = VTSM_TDISP_RANGE_MSIX_TABLE | VTSM_TDISP_RANGE_MSIX_PBA;
    VTSM_ENSURE_RULE_GOTO(!priv || !(r->range_attributes & msix) ||
                              (t->lock_flags & VTSM_TDISP_LOCK_LOCK_MSIX),
                          VTSM_E_POLICY_REFUSED, VTSM_RULE_MMIO_10,
                          "MMIO validate of %s TDI %u range %u: it holds the MSI-X %s and the "
                          "TDI was locked without LOCK_MSIX (rule MMIO.10)",
                          t->dev, t->index, range,
                          (r->range_attributes & VTSM_TDISP_RANGE_MSIX_TABLE) ? "table" : "PBA");
    VTSM_ENSURE_RULE_GOTO(!m->validated || m->priv == priv, VTSM_E_STATE, VTSM_RULE_MMIO_3,
                          "MMIO validate of %s TDI %u range %u: validated already as %s "
                          "(rule MMIO.3)",
                          t->dev, t->index, range, m->priv ? "private" : "shared");
    m->validated = true;
    m->priv = priv;
    st = VTSM_OK;
out:
    free(rep);
    return st;
}

uint32_t tsm_tdi_mmio_count(const struct tsm_tdi *t, uint32_t *validated)
{
    struct vtsm_tdisp_report *rep = NULL;
    uint32_t n = 0, v = 0;
    if (t != NULL && t->report.len != 0 && report_of(t, &rep) == VTSM_OK) {
        n = rep->mmio_range_count;
        for (uint32_t i = 0; i < n && i < VTSM_TDISP_MAX_MMIO_RANGES; i++)
            v += t->mmio[i].validated ? 1 : 0;
        free(rep);
    }
    if (validated)
        *validated = v;
    return n;
}

vtsm_status tsm_tdi_dma_enable(struct tsm_tdi *t, uint32_t guest_tvm)
{
    VTSM_ENSURE(t != NULL, VTSM_E_INVAL, "DMA enable: NULL argument");
    VTSM_GUARD(check_owner(t, guest_tvm, "DMA enable"));
    VTSM_ENSURE_RULE(t->state == TSM_TDI_CONFIG_LOCKED || t->state == TSM_TDI_RUN, VTSM_E_STATE,
                     VTSM_RULE_DMA_2, "DMA enable of %s TDI %u refused: it is %s (rule DMA.2)",
                     t->dev, t->index, tsm_tdi_state_name(t->state));
    uint32_t validated = 0, n = tsm_tdi_mmio_count(t, &validated);
    VTSM_ENSURE_RULE(validated == n, VTSM_E_STATE, VTSM_RULE_DMA_1,
                     "DMA enable of %s TDI %u refused: %u of its %u MMIO ranges validated "
                     "(rule DMA.1)",
                     t->dev, t->index, validated, n);
    t->dma_guest = true;
    return VTSM_OK;
}

const char *tsm_tdi_dma_name(const struct tsm_tdi *t)
{
    if (t == NULL || !t->dma_guest)
        return "off";
    return t->state == TSM_TDI_RUN ? "active" : "enabled";
}
