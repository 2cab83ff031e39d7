/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Reply maps of tsmd (docs/abi.md). put_item / push_item take over the new item, also on
 * failure: nothing leaks, and the item stays valid (held by its parent) for filling in.
 */
#include "tsm_reply.h"

#include "vtsm_abi.h"
#include "vtsm_guard.h"

vtsm_status tsm_reply_put_meas(cbor_item_t *map, const struct vtsm_spdm_meas *ms, bool after_lock)
{
    cbor_item_t *mm = vtsm_abi_map_new(), *blocks;

    VTSM_GUARD(vtsm_abi_put_item(map, VTSM_ABI_K_MEASUREMENTS, mm));
    VTSM_GUARD(vtsm_abi_put_uint(mm, VTSM_ABI_K_COUNT, ms->num_blocks));
    blocks = vtsm_abi_array_new();
    VTSM_GUARD(vtsm_abi_put_item(mm, VTSM_ABI_K_BLOCKS, blocks));
    for (unsigned i = 0; i < ms->num_blocks; i++) {
        const struct vtsm_spdm_meas_block *b = &ms->blocks[i];
        cbor_item_t *bm = vtsm_abi_map_new();
        VTSM_GUARD(vtsm_abi_push_item(blocks, bm));
        VTSM_GUARD(vtsm_abi_put_uint(bm, VTSM_ABI_K_INDEX, b->index));
        VTSM_GUARD(vtsm_abi_put_uint(bm, VTSM_ABI_K_SPEC, b->spec));
        VTSM_GUARD(
            vtsm_abi_put_uint(bm, VTSM_ABI_K_TYPE, b->value_type & VTSM_SPDM_MEAS_TYPE_MASK));
        VTSM_GUARD(
            vtsm_abi_put_bool(bm, VTSM_ABI_K_RAW, (b->value_type & VTSM_SPDM_MEAS_RAW) != 0));
        VTSM_GUARD(vtsm_abi_put_bytes(bm, VTSM_ABI_K_VALUE, b->value, b->value_size));
    }
    VTSM_GUARD(vtsm_abi_put_bytes(mm, VTSM_ABI_K_RECORD, ms->record.data, ms->record.len));
    VTSM_GUARD(vtsm_abi_put_bytes(mm, VTSM_ABI_K_NONCE, ms->nonce, sizeof(ms->nonce)));
    VTSM_GUARD(
        vtsm_abi_put_bytes(mm, VTSM_ABI_K_RESPONDER_NONCE, ms->rsp_nonce, sizeof(ms->rsp_nonce)));
    VTSM_GUARD(
        vtsm_abi_put_bytes(mm, VTSM_ABI_K_TRANSCRIPT, ms->transcript.data, ms->transcript.len));
    VTSM_GUARD(vtsm_abi_put_bytes(mm, VTSM_ABI_K_SIGNATURE, ms->signature, ms->signature_len));
    return vtsm_abi_put_bool(mm, VTSM_ABI_K_AFTER_LOCK, after_lock);
}

vtsm_status tsm_reply_put_ide(cbor_item_t *map, const struct tsm_ide_status *s)
{
    cbor_item_t *ide = vtsm_abi_map_new(), *arr;

    VTSM_GUARD(vtsm_abi_put_item(map, VTSM_ABI_K_IDE, ide));
    VTSM_GUARD(vtsm_abi_put_uint(ide, VTSM_ABI_K_ROOT_PORT, s->root_port));
    arr = vtsm_abi_array_new();
    VTSM_GUARD(vtsm_abi_put_item(ide, VTSM_ABI_K_STREAMS, arr));
    for (unsigned i = 0; i < s->n; i++) {
        cbor_item_t *m = vtsm_abi_map_new();
        VTSM_GUARD(vtsm_abi_push_item(arr, m));
        VTSM_GUARD(vtsm_abi_put_uint(m, VTSM_ABI_K_STREAM_ID, s->s[i].stream_id));
        VTSM_GUARD(vtsm_abi_put_tstr(m, VTSM_ABI_K_STATE, "active"));
        VTSM_GUARD(vtsm_abi_put_uint(m, VTSM_ABI_K_KEY_SET, s->s[i].key_set));
        VTSM_GUARD(vtsm_abi_put_uint(m, VTSM_ABI_K_REFRESHES, s->s[i].refreshes));
        VTSM_GUARD(vtsm_abi_put_tstr(m, VTSM_ABI_K_KIND, s->s[i].link ? "link" : "selective"));
        VTSM_GUARD(vtsm_abi_put_uint(m, VTSM_ABI_K_TC, s->s[i].tc));
        VTSM_GUARD(vtsm_abi_put_uint(m, VTSM_ABI_K_RID_BASE, s->s[i].rid_base));
        VTSM_GUARD(vtsm_abi_put_uint(m, VTSM_ABI_K_RID_LIMIT, s->s[i].rid_limit));
        VTSM_GUARD(vtsm_abi_put_bool(m, VTSM_ABI_K_ENABLED, s->s[i].enabled));
        VTSM_GUARD(vtsm_abi_put_bool(m, VTSM_ABI_K_TEE_LIMITED, s->s[i].tee_limited));
        VTSM_GUARD(vtsm_abi_put_bool(m, VTSM_ABI_K_DEVICE_ASSOC, s->s[i].device_assoc));
        cbor_item_t *ranges = vtsm_abi_array_new();
        VTSM_GUARD(vtsm_abi_put_item(m, VTSM_ABI_K_ADDR_RANGES, ranges));
        for (unsigned a = 0; a < s->s[i].n_ranges; a++) {
            cbor_item_t *rm = vtsm_abi_map_new();
            VTSM_GUARD(vtsm_abi_push_item(ranges, rm));
            VTSM_GUARD(vtsm_abi_put_uint(rm, VTSM_ABI_K_BASE, s->s[i].ranges[a].base));
            VTSM_GUARD(vtsm_abi_put_uint(rm, VTSM_ABI_K_LIMIT, s->s[i].ranges[a].limit));
        }
    }
    cbor_item_t *dc = vtsm_abi_map_new();
    VTSM_GUARD(vtsm_abi_put_item(ide, VTSM_ABI_K_DEVICE_IDE, dc));
    VTSM_GUARD(vtsm_abi_put_uint(dc, VTSM_ABI_K_IDE_CAP, s->caps.ide_cap));
    VTSM_GUARD(vtsm_abi_put_uint(dc, VTSM_ABI_K_LINK_TCS, s->caps.link_tcs));
    VTSM_GUARD(vtsm_abi_put_uint(dc, VTSM_ABI_K_SELECTIVE_STREAMS, s->caps.sel_streams));
    VTSM_GUARD(vtsm_abi_put_uint(dc, VTSM_ABI_K_ADDR_ASSOC, s->caps.addr_assoc));
    VTSM_GUARD(vtsm_abi_put_bool(dc, VTSM_ABI_K_TEE_LIMITED, s->caps.tee_limited));
    VTSM_GUARD(vtsm_abi_put_bool(dc, VTSM_ABI_K_LENIENT, s->caps.lenient));
    if (s->stale_stopped)
        VTSM_GUARD(vtsm_abi_put_uint(ide, VTSM_ABI_K_STALE_STOPPED, s->stale_stopped));
    return VTSM_OK;
}

vtsm_status tsm_reply_push_link_check(cbor_item_t *array, const struct tsm_ide_check *c)
{
    for (unsigned i = 0; i < c->n; i++) {
        cbor_item_t *m = vtsm_abi_map_new();
        VTSM_GUARD(vtsm_abi_push_item(array, m));
        VTSM_GUARD(vtsm_abi_put_uint(m, VTSM_ABI_K_STREAM_ID, c->s[i].stream_id));
        VTSM_GUARD(vtsm_abi_put_uint(m, VTSM_ABI_K_KEY_SET, c->s[i].key_set));
        VTSM_GUARD(vtsm_abi_put_bool(m, VTSM_ABI_K_RP_TO_DEVICE, c->s[i].rp_to_device));
        VTSM_GUARD(vtsm_abi_put_bool(m, VTSM_ABI_K_DEVICE_TO_RP, c->s[i].device_to_rp));
    }
    return VTSM_OK;
}

vtsm_status tsm_reply_push_root_ports(cbor_item_t *array, const struct tsm_rp_usage *u, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cbor_item_t *m = vtsm_abi_map_new();
        VTSM_GUARD(vtsm_abi_push_item(array, m));
        VTSM_GUARD(vtsm_abi_put_uint(m, VTSM_ABI_K_ID, u[i].id));
        VTSM_GUARD(vtsm_abi_put_uint(m, VTSM_ABI_K_STREAMS, u[i].streams));
        VTSM_GUARD(vtsm_abi_put_uint(m, VTSM_ABI_K_STREAMS_USED, u[i].streams_used));
        VTSM_GUARD(vtsm_abi_put_uint(m, VTSM_ABI_K_KEY_SLOTS, u[i].key_slots));
        VTSM_GUARD(vtsm_abi_put_uint(m, VTSM_ABI_K_KEY_SLOTS_USED, u[i].key_slots_used));
        VTSM_GUARD(vtsm_abi_put_uint(m, VTSM_ABI_K_AVAILABLE_SECURE_STREAMS,
                                     (uint64_t)u[i].streams - u[i].streams_used));
    }
    return VTSM_OK;
}
