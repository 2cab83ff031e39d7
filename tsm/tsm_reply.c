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
