/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Reply maps about TDIs (docs/abi.md sections 7.10, 7.5 and 9.5): STATUS and LIST
 * entries, TDI_BIND's fields, and INFO with its evidence token, built from the TDI model's
 * plain views (tsm_tdi.h).
 */
#include <stdlib.h>

#include "tsm_mmio.h"
#include "tsm_reply.h"
#include "tsm_tdi.h"
#include "vtsm_abi.h"
#include "vtsm_cose.h"
#include "vtsm_guard.h"

#define TOKEN_CLAIMS 14 /* entries of the evidence token's claims map, lock_nonce_digest aside */

static vtsm_status put_mmio(cbor_item_t *m, const struct vtsm_tdisp_report *rep)
{
    cbor_item_t *arr = vtsm_abi_array_new();

    VTSM_GUARD(vtsm_abi_put_item(m, VTSM_ABI_K_MMIO, arr));
    for (uint32_t i = 0; i < rep->mmio_range_count; i++) {
        const struct vtsm_tdisp_mmio_range *r = &rep->mmio_range[i];
        cbor_item_t *rm = vtsm_abi_map_new();
        VTSM_GUARD(vtsm_abi_push_item(arr, rm));
        VTSM_GUARD(vtsm_abi_put_uint(rm, VTSM_ABI_K_FIRST_PAGE, r->first_page));
        VTSM_GUARD(vtsm_abi_put_uint(rm, VTSM_ABI_K_PAGES, r->number_of_pages));
        VTSM_GUARD(vtsm_abi_put_uint(rm, VTSM_ABI_K_ATTRIBUTES, r->range_attributes));
        VTSM_GUARD(vtsm_abi_put_uint(rm, VTSM_ABI_K_RANGE_ID, r->range_id));
    }
    return VTSM_OK;
}

/* "rid": the TDI's function as a PCI address (its RID in the DSM's segment). */
static vtsm_status put_rid(cbor_item_t *m, const struct tsm_tdi *t)
{
    char fn[VTSM_ABI_DEV_BUF];
    if (t->index > 0xFFFFu || vtsm_abi_dev_fn(t->dev, (uint16_t)t->index, fn) != VTSM_OK)
        return VTSM_OK; /* a name that is no PCI address (unit tests' TDIs) */
    return vtsm_abi_put_tstr(m, VTSM_ABI_K_RID, fn);
}

vtsm_status tsm_reply_tdi_detail(cbor_item_t *m, const struct tsm_tdi *t)
{
    VTSM_GUARD(put_rid(m, t));
    struct vtsm_tdisp_report *rep = malloc(sizeof(*rep));
    vtsm_status st;
    VTSM_ENSURE(rep != NULL, VTSM_E_NOMEM, "TDI summary: out of memory");
    if (t->report.len == 0) {
        free(rep);
        return VTSM_OK;
    }
    st = tsm_tdi_report(t, rep);
    if (st == VTSM_OK)
        st = put_mmio(m, rep);
    free(rep);
    return st;
}

vtsm_status tsm_reply_tdi_binding(cbor_item_t *map, const struct tsm_tdi *t)
{
    struct vtsm_tdisp_report *rep;
    vtsm_status st;

    VTSM_ENSURE(t != NULL && map != NULL, VTSM_E_INVAL, "TDI binding: NULL argument");
    rep = malloc(sizeof(*rep));
    VTSM_ENSURE(rep != NULL, VTSM_E_NOMEM, "TDI binding: out of memory");
    VTSM_GUARD_GOTO(tsm_tdi_report(t, rep));
    VTSM_GUARD_GOTO(vtsm_abi_put_tstr(map, VTSM_ABI_K_DEV, t->dev));
    VTSM_GUARD_GOTO(vtsm_abi_put_uint(map, VTSM_ABI_K_TDI, t->index));
    VTSM_GUARD_GOTO(put_rid(map, t));
    VTSM_GUARD_GOTO(vtsm_abi_put_uint(map, VTSM_ABI_K_TVM, t->owner_tvm));
    VTSM_GUARD_GOTO(vtsm_abi_put_tstr(map, VTSM_ABI_K_STATE, tsm_tdi_state_name(t->state)));
    VTSM_GUARD_GOTO(
        vtsm_abi_put_bytes(map, VTSM_ABI_K_REPORT_DIGEST, t->report_digest, t->digest_len));
    VTSM_GUARD_GOTO(put_mmio(map, rep));
    st = VTSM_OK;
out:
    free(rep);
    return st;
}

/* The claims the token signs (docs/abi.md section 9.6), into a COSE_Sign1 in token. */
/* What a recovery (tdi_reset) did: recoveries, and the last attempt's outcome and rule. */
static vtsm_status put_recovery(cbor_item_t *m, const struct tsm_tdi *t)
{
    VTSM_GUARD(vtsm_abi_put_uint(m, VTSM_ABI_K_RECOVERIES, t->recoveries));
    if (t->last_event[0])
        VTSM_GUARD(vtsm_abi_put_tstr(m, VTSM_ABI_K_LAST_EVENT, t->last_event));
    if (t->last_event[0] && t->last_rule != VTSM_RULE_NONE)
        VTSM_GUARD(vtsm_abi_put_tstr(m, VTSM_ABI_K_LAST_RULE, vtsm_rule_id(t->last_rule)));
    return VTSM_OK;
}

static vtsm_status sign_token(const struct tsm_tdi_info *i, const struct tsm_tdi_info_args *a,
                              struct vtsm_buf *token)
{
    const struct tsm_tdi *t = i->t;
    const size_t hlen = i->digest_len;
    vtsm_status st;
    /* COSE_Sign1 payloads are definite-length maps (vtsm_cose_sign1). */
    cbor_item_t *claims = cbor_new_definite_map(TOKEN_CLAIMS + (t->nonce_valid ? 1 : 0));

    VTSM_ENSURE(claims != NULL, VTSM_E_NOMEM, "info: out of memory");
    VTSM_GUARD_GOTO(vtsm_abi_put_bytes(claims, VTSM_ABI_K_NONCE, a->nonce, SPDM_NONCE_SIZE));
    VTSM_GUARD_GOTO(vtsm_abi_put_uint(claims, VTSM_ABI_K_TVM, a->guest_tvm));
    VTSM_GUARD_GOTO(vtsm_abi_put_bytes(claims, VTSM_ABI_K_TVM_IDENTITY, a->tvm_identity, 32));
    VTSM_GUARD_GOTO(vtsm_abi_put_tstr(claims, VTSM_ABI_K_DEV, t->dev));
    VTSM_GUARD_GOTO(vtsm_abi_put_uint(claims, VTSM_ABI_K_TDI, t->index));
    VTSM_GUARD_GOTO(vtsm_abi_put_tstr(claims, VTSM_ABI_K_STATE, tsm_tdi_state_name(t->state)));
    VTSM_GUARD_GOTO(vtsm_abi_put_bytes(claims, VTSM_ABI_K_REPORT_DIGEST, t->report_digest, hlen));
    VTSM_GUARD_GOTO(
        vtsm_abi_put_bytes(claims, VTSM_ABI_K_CERT_CHAIN_DIGEST, i->chain_digest, hlen));
    VTSM_GUARD_GOTO(
        vtsm_abi_put_bytes(claims, VTSM_ABI_K_MEASUREMENTS_DIGEST, i->meas_digest, hlen));
    VTSM_GUARD_GOTO(
        vtsm_abi_put_bytes(claims, VTSM_ABI_K_MEASUREMENT_TRANSCRIPT_DIGEST, i->tr_digest, hlen));
    VTSM_GUARD_GOTO(vtsm_abi_put_bool(claims, VTSM_ABI_K_AFTER_LOCK, i->after_lock));
    VTSM_GUARD_GOTO(vtsm_abi_put_bytes(claims, VTSM_ABI_K_VCA_DIGEST, i->vca_digest, hlen));
    VTSM_GUARD_GOTO(
        vtsm_abi_put_bytes(claims, VTSM_ABI_K_KEX_TRANSCRIPT_DIGEST, i->kex_digest, hlen));
    VTSM_GUARD_GOTO(vtsm_abi_put_bytes(claims, VTSM_ABI_K_SLOTS_DIGEST, i->slots_digest, hlen));
    if (t->nonce_valid)
        VTSM_GUARD_GOTO(
            vtsm_abi_put_bytes(claims, VTSM_ABI_K_LOCK_NONCE_DIGEST, t->nonce_digest, hlen));
    st = vtsm_cose_sign1(a->tsm_key, claims, a->kid, a->kid_len, token);
out:
    cbor_decref(&claims);
    return st;
}

vtsm_status tsm_reply_tdi_info(const struct tsm_tdi_info *i, const struct tsm_tdi_info_args *a,
                               cbor_item_t **out)
{
    struct vtsm_buf token = {0};
    cbor_item_t *m = NULL;
    vtsm_status st;

    VTSM_ENSURE(i != NULL && i->t != NULL && i->rep != NULL && a != NULL && out != NULL,
                VTSM_E_INVAL, "info reply: NULL argument");
    const struct tsm_tdi *t = i->t;
    *out = NULL;
    m = vtsm_abi_map_new();
    VTSM_ENSURE(m != NULL, VTSM_E_NOMEM, "info: out of memory");
    VTSM_GUARD_GOTO(vtsm_abi_put_tstr(m, VTSM_ABI_K_DEV, t->dev));
    VTSM_GUARD_GOTO(vtsm_abi_put_uint(m, VTSM_ABI_K_TDI, t->index));
    VTSM_GUARD_GOTO(vtsm_abi_put_tstr(m, VTSM_ABI_K_STATE, tsm_tdi_state_name(t->state)));
    VTSM_GUARD_GOTO(vtsm_abi_put_bytes(m, VTSM_ABI_K_REPORT, t->report.data, t->report.len));
    VTSM_GUARD_GOTO(put_recovery(m, t));
    VTSM_GUARD_GOTO(
        vtsm_abi_put_bytes(m, VTSM_ABI_K_REPORT_DIGEST, t->report_digest, t->digest_len));
    VTSM_GUARD_GOTO(vtsm_abi_put_uint(m, VTSM_ABI_K_INTERFACE_INFO, i->rep->interface_info));
    VTSM_GUARD_GOTO(put_mmio(m, i->rep));
    VTSM_GUARD_GOTO(tsm_reply_put_meas(m, i->meas, i->after_lock));
    VTSM_GUARD_GOTO(
        vtsm_abi_put_bytes(m, VTSM_ABI_K_MEASUREMENTS_DIGEST, i->meas_digest, i->digest_len));
    if (t->nonce_valid)
        VTSM_GUARD_GOTO(
            vtsm_abi_put_bytes(m, VTSM_ABI_K_LOCK_NONCE_DIGEST, t->nonce_digest, t->digest_len));
    VTSM_GUARD_GOTO(vtsm_abi_put_bytes(m, VTSM_ABI_K_CERT_CHAIN, i->chain->data, i->chain->len));
    VTSM_GUARD_GOTO(
        vtsm_abi_put_bytes(m, VTSM_ABI_K_CERT_CHAIN_DIGEST, i->chain_digest, i->digest_len));
    /* the session's evidence: VCA, KEY_EXCHANGE transcript and signature, their digests */
    VTSM_GUARD_GOTO(vtsm_abi_put_bytes(m, VTSM_ABI_K_VCA, i->vca->data, i->vca->len));
    VTSM_GUARD_GOTO(vtsm_abi_put_bytes(m, VTSM_ABI_K_VCA_DIGEST, i->vca_digest, i->digest_len));
    cbor_item_t *kex = vtsm_abi_map_new();
    VTSM_GUARD_GOTO(vtsm_abi_put_item(m, VTSM_ABI_K_KEX, kex));
    VTSM_GUARD_GOTO(vtsm_abi_put_bytes(kex, VTSM_ABI_K_TRANSCRIPT, i->kex->data, i->kex->len));
    VTSM_GUARD_GOTO(vtsm_abi_put_bytes(kex, VTSM_ABI_K_SIGNATURE, i->kex_sig, i->kex_sig_len));
    VTSM_GUARD_GOTO(
        vtsm_abi_put_bytes(m, VTSM_ABI_K_KEX_TRANSCRIPT_DIGEST, i->kex_digest, i->digest_len));
    /* every provisioned certificate slot's digest (the chain itself only of the connect slot) */
    cbor_item_t *slots = vtsm_abi_array_new();
    VTSM_GUARD_GOTO(vtsm_abi_put_item(m, VTSM_ABI_K_SLOTS, slots));
    for (uint8_t s = 0; s < 8; s++) {
        if (!(i->slot_mask & (1u << s)))
            continue;
        cbor_item_t *e = vtsm_abi_map_new();
        VTSM_GUARD_GOTO(vtsm_abi_push_item(slots, e));
        VTSM_GUARD_GOTO(vtsm_abi_put_uint(e, VTSM_ABI_K_SLOT, s));
        VTSM_GUARD_GOTO(
            vtsm_abi_put_bytes(e, VTSM_ABI_K_CERT_CHAIN_DIGEST, i->slot_digest[s], i->digest_len));
    }
    VTSM_GUARD_GOTO(vtsm_abi_put_bytes(m, VTSM_ABI_K_SLOTS_DIGEST, i->slots_digest, i->digest_len));
    VTSM_GUARD_GOTO(tsm_reply_tdi_mmio(m, t, true));
    if (a->nonce) {
        VTSM_GUARD_GOTO(sign_token(i, a, &token));
        VTSM_GUARD_GOTO(vtsm_abi_put_bytes(m, VTSM_ABI_K_TOKEN, token.data, token.len));
    }
    *out = m;
    m = NULL;
    st = VTSM_OK;
out:
    if (m)
        cbor_decref(&m);
    vtsm_buf_free(&token);
    return st;
}

vtsm_status tsm_reply_tdi_summary(const struct tsm_tdi *t, bool host_view, cbor_item_t **out)
{
    vtsm_status st;
    cbor_item_t *m;

    VTSM_ENSURE(t != NULL && out != NULL, VTSM_E_INVAL, "TDI summary: NULL argument");
    *out = NULL;
    m = vtsm_abi_map_new();
    VTSM_ENSURE(m != NULL, VTSM_E_NOMEM, "TDI summary: out of memory");
    if (!host_view)
        VTSM_GUARD_GOTO(vtsm_abi_put_tstr(m, VTSM_ABI_K_DEV, t->dev));
    VTSM_GUARD_GOTO(vtsm_abi_put_uint(m, VTSM_ABI_K_TDI, t->index));
    VTSM_GUARD_GOTO(vtsm_abi_put_tstr(m, VTSM_ABI_K_STATE, tsm_tdi_state_name(t->state)));
    if (host_view && t->owner_tvm != 0)
        VTSM_GUARD_GOTO(vtsm_abi_put_uint(m, VTSM_ABI_K_TVM, t->owner_tvm));
    VTSM_GUARD_GOTO(vtsm_abi_put_bool(m, VTSM_ABI_K_MMIO_ENABLED, t->mmio_enabled));
    VTSM_GUARD_GOTO(vtsm_abi_put_bool(m, VTSM_ABI_K_DMA_ENABLED, t->dma_enabled));
    if (host_view && t->digest_len != 0)
        VTSM_GUARD_GOTO(
            vtsm_abi_put_bytes(m, VTSM_ABI_K_REPORT_DIGEST, t->report_digest, t->digest_len));
    if (host_view && t->state == TSM_TDI_ERROR && t->error_rule != VTSM_RULE_NONE)
        VTSM_GUARD_GOTO(vtsm_abi_put_tstr(m, VTSM_ABI_K_ERROR_RULE, vtsm_rule_id(t->error_rule)));
    if (host_view && t->guest_unlocked)
        VTSM_GUARD_GOTO(vtsm_abi_put_bool(m, VTSM_ABI_K_GUEST_UNLOCKED, true));
    if (host_view && t->rejected)
        VTSM_GUARD_GOTO(vtsm_abi_put_tstr(m, VTSM_ABI_K_GUEST_REJECTED, t->guest_rejected));
    VTSM_GUARD_GOTO(put_recovery(m, t));
    VTSM_GUARD_GOTO(tsm_reply_tdi_mmio(m, t, false));
    *out = m;
    return VTSM_OK;
out:
    cbor_decref(&m);
    return st;
}

vtsm_status tsm_reply_tdi_mmio(cbor_item_t *m, const struct tsm_tdi *t, bool all)
{
    struct vtsm_tdisp_report *rep = NULL;
    vtsm_status st;

    VTSM_ENSURE(m != NULL && t != NULL, VTSM_E_INVAL, "TDI MMIO: NULL argument");
    bool any = t->dma_guest;
    for (unsigned i = 0; i < VTSM_TDISP_MAX_MMIO_RANGES; i++)
        any |= t->mmio[i].mapped;
    if (!all && !any)
        return VTSM_OK; /* a STATUS / LIST entry: nothing mapped, DMA off (both absent) */
    VTSM_GUARD(vtsm_abi_put_tstr(m, VTSM_ABI_K_DMA, tsm_tdi_dma_name(t)));
    if (t->report.len == 0)
        return VTSM_OK; /* not bound: no report, no ranges */
    rep = malloc(sizeof(*rep));
    VTSM_ENSURE(rep != NULL, VTSM_E_NOMEM, "TDI MMIO: out of memory");
    VTSM_GUARD_GOTO(tsm_tdi_report(t, rep));
    cbor_item_t *arr = vtsm_abi_array_new();
    VTSM_GUARD_GOTO(vtsm_abi_put_item(m, VTSM_ABI_K_MMIO_MAP, arr));
    for (uint32_t i = 0; i < rep->mmio_range_count && i < VTSM_TDISP_MAX_MMIO_RANGES; i++) {
        const struct vtsm_tdisp_mmio_range *r = &rep->mmio_range[i];
        const struct tsm_tdi_mmio *x = &t->mmio[i];
        cbor_item_t *e = vtsm_abi_map_new();
        VTSM_GUARD_GOTO(vtsm_abi_push_item(arr, e));
        VTSM_GUARD_GOTO(vtsm_abi_put_uint(e, VTSM_ABI_K_RANGE, i));
        VTSM_GUARD_GOTO(vtsm_abi_put_uint(e, VTSM_ABI_K_RANGE_ID, r->range_id));
        VTSM_GUARD_GOTO(vtsm_abi_put_uint(e, VTSM_ABI_K_FIRST_PAGE, r->first_page));
        VTSM_GUARD_GOTO(vtsm_abi_put_uint(e, VTSM_ABI_K_PAGES, r->number_of_pages));
        VTSM_GUARD_GOTO(vtsm_abi_put_uint(e, VTSM_ABI_K_ATTRIBUTES, r->range_attributes));
        VTSM_GUARD_GOTO(vtsm_abi_put_bool(e, VTSM_ABI_K_MAPPED, x->mapped));
        if (x->mapped) {
            VTSM_GUARD_GOTO(vtsm_abi_put_uint(e, VTSM_ABI_K_GPA, x->gpa));
            VTSM_GUARD_GOTO(vtsm_abi_put_uint(e, VTSM_ABI_K_MAP_PAGES, x->pages));
        }
        VTSM_GUARD_GOTO(vtsm_abi_put_bool(e, VTSM_ABI_K_VALIDATED, x->validated));
        if (x->validated)
            VTSM_GUARD_GOTO(vtsm_abi_put_bool(e, VTSM_ABI_K_PRIVATE, x->priv));
    }
    st = VTSM_OK;
out:
    free(rep);
    return st;
}
