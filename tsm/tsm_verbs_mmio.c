/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * MMIO and DMA verbs (docs/abi.md 7.18 and 9.5): the host's TDI_MMIO_MAP and the owning
 * guest's MMIO_VALIDATE and DMA_ENABLE. None needs the device: they check and change the
 * TSM's record of the TDI (tsm_mmio.h) and answer at once.
 */
#include <stdlib.h>
#include <string.h>

#include "tsm_int.h"
#include "tsm_mmio.h"
#include "tsm_reply.h"
#include "tsm_verbs_mmio.h"
#include "vtsm_guard.h"
#include "vtsm_log.h"

/* A TDI no running job holds (PDEV.6): its record may be read and changed now. */
static vtsm_status idle_tdi(struct tsm_pdev *p, struct tsm_tdi *tdi, const char *verb)
{
    VTSM_ENSURE_RULE(!tsm_pdev_tdi_claimed(p, tdi), VTSM_E_BUSY, VTSM_RULE_PDEV_6,
                     "%s refused: %s TDI %u is busy with %s (rule PDEV.6)", verb, p->name,
                     tdi->index, p->job ? p->job->verb : "another verb");
    return VTSM_OK;
}

void tsm_verb_tdi_mmio_map(struct tsm *t, struct tsm_client *c, uint64_t id,
                           const struct vtsm_abi_req *req)
{
    /* decoded: tdi 0..0xFFFF, range 0..63, gpa any, pages 1..2^32-1 or absent */
    uint32_t index = (uint32_t)req->tdi, range = (uint32_t)req->range;
    uint64_t pages = vtsm_abi_req_has(req, VTSM_ABI_F_PAGES) ? req->pages : 0;
    struct tsm_pdev *p = tsm_pdev_find(&t->devs, req->dev);
    struct tsm_tdi *tdi = p ? tsm_pdev_tdi_find(p, index) : NULL;
    cbor_item_t *res = NULL;
    vtsm_status st = VTSM_OK;

    if (!p)
        st = vtsm_refuse(VTSM_E_NOT_FOUND, VTSM_RULE_PDEV_13, "tdi_mmio_map: no device named %s",
                         req->dev);
    else if (!tdi)
        st = vtsm_refuse(VTSM_E_STATE, VTSM_RULE_MMIO_1,
                         "tdi_mmio_map refused: %s TDI %u is CONFIG_UNLOCKED (rule MMIO.1: only "
                         "while CONFIG_LOCKED, before RUN)",
                         p->name, index);
    if (st == VTSM_OK)
        st = idle_tdi(p, tdi, "tdi_mmio_map");
    if (st == VTSM_OK)
        st = tsm_tdi_mmio_map(tdi, range, req->gpa, pages);
    if (st) {
        tsm_client_error(t, c, id, st, vtsm_err_detail());
        return;
    }
    VTSM_INFO("%s TDI %u: host maps MMIO range %u at 0x%llx (%llu pages)", p->name, index, range,
              (unsigned long long)tdi->mmio[range].gpa, (unsigned long long)tdi->mmio[range].pages);
    res = vtsm_abi_result_msg(id);
    if (res && (vtsm_abi_put_tstr(res, VTSM_ABI_K_DEV, p->name) ||
                vtsm_abi_put_uint(res, VTSM_ABI_K_TDI, index) ||
                vtsm_abi_put_tstr(res, VTSM_ABI_K_STATE, tsm_tdi_state_name(tdi->state)) ||
                vtsm_abi_put_uint(res, VTSM_ABI_K_RANGE, range) ||
                vtsm_abi_put_uint(res, VTSM_ABI_K_GPA, tdi->mmio[range].gpa) ||
                vtsm_abi_put_uint(res, VTSM_ABI_K_PAGES, tdi->mmio[range].pages) ||
                tsm_reply_tdi_mmio(res, tdi, true)))
        cbor_decref(&res);
    tsm_client_reply(t, c, res);
}

/* The TDIs of every device owned by tvm (for MMIO.8); *out is malloc'd (NULL if none). */
static vtsm_status tvm_tdis(struct tsm *t, uint32_t tvm, const struct tsm_tdi ***out, size_t *n)
{
    size_t count = 0, k = 0;
    *out = NULL;
    *n = 0;
    for (struct tsm_pdev *p = t->devs.head; p; p = p->next)
        for (struct tsm_tdi_node *d = p->tdis; d; d = d->next)
            count += d->tdi.owner_tvm == tvm;
    if (count == 0)
        return VTSM_OK;
    const struct tsm_tdi **v = calloc(count, sizeof(*v));
    VTSM_ENSURE(v != NULL, VTSM_E_NOMEM, "MMIO validate: out of memory");
    for (struct tsm_pdev *p = t->devs.head; p; p = p->next)
        for (struct tsm_tdi_node *d = p->tdis; d && k < count; d = d->next)
            if (d->tdi.owner_tvm == tvm)
                v[k++] = &d->tdi;
    *out = v;
    *n = k;
    return VTSM_OK;
}

vtsm_status tsm_guest_mmio(struct tsm *t, uint64_t id, const struct vtsm_abi_guest_body *g,
                           struct tsm_pdev *p, struct tsm_tdi *tdi, cbor_item_t **out)
{
    const struct tsm_tdi **others = NULL;
    size_t n = 0;
    vtsm_status st;
    bool mmio = g->gop == VTSM_ABI_GOP_MMIO_VALIDATE;

    *out = NULL;
    VTSM_ENSURE(!mmio || g->has_mmio, VTSM_E_ABI_ARG, "MMIO_VALIDATE needs range, gpa and pages");
    VTSM_GUARD(idle_tdi(p, tdi, mmio ? "MMIO_VALIDATE" : "DMA_ENABLE"));
    if (mmio) {
        VTSM_GUARD(tvm_tdis(t, g->tvm, &others, &n));
        st = tsm_tdi_mmio_validate(tdi, g->tvm, g->range, g->gpa, g->pages, g->priv, others, n);
        free(others);
    } else {
        st = tsm_tdi_dma_enable(tdi, g->tvm);
    }
    if (st)
        return st;
    if (mmio)
        VTSM_INFO("TVM %u validated %s TDI %u MMIO range %u at 0x%llx as %s", g->tvm, p->name,
                  tdi->index, g->range, (unsigned long long)g->gpa, g->priv ? "private" : "shared");
    else
        VTSM_INFO("TVM %u enabled DMA of %s TDI %u", g->tvm, p->name, tdi->index);
    cbor_item_t *res = vtsm_abi_result_msg(id);
    VTSM_ENSURE(res != NULL, VTSM_E_NOMEM, "guest MMIO: out of memory");
    if (vtsm_abi_put_uint(res, VTSM_ABI_K_GOP, g->gop) ||
        vtsm_abi_put_uint(res, VTSM_ABI_K_TVM, g->tvm) ||
        vtsm_abi_put_uint(res, VTSM_ABI_K_SEQ, g->seq) ||
        vtsm_abi_put_tstr(res, VTSM_ABI_K_DEV, p->name) ||
        vtsm_abi_put_uint(res, VTSM_ABI_K_TDI, tdi->index) ||
        vtsm_abi_put_tstr(res, VTSM_ABI_K_STATE, tsm_tdi_state_name(tdi->state)) ||
        (mmio && (vtsm_abi_put_uint(res, VTSM_ABI_K_RANGE, g->range) ||
                  vtsm_abi_put_uint(res, VTSM_ABI_K_GPA, g->gpa) ||
                  vtsm_abi_put_uint(res, VTSM_ABI_K_PAGES, g->pages) ||
                  vtsm_abi_put_bool(res, VTSM_ABI_K_PRIVATE, g->priv))) ||
        tsm_reply_tdi_mmio(res, tdi, true)) {
        cbor_decref(&res);
        return vtsm_fail(VTSM_E_NOMEM, "guest MMIO: out of memory");
    }
    *out = res;
    return VTSM_OK;
}
