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

    VTSM_GUARD(vtsm_abi_put_item(map, "measurements", mm));
    VTSM_GUARD(vtsm_abi_put_uint(mm, "count", ms->num_blocks));
    blocks = vtsm_abi_array_new();
    VTSM_GUARD(vtsm_abi_put_item(mm, "blocks", blocks));
    for (unsigned i = 0; i < ms->num_blocks; i++) {
        const struct vtsm_spdm_meas_block *b = &ms->blocks[i];
        cbor_item_t *bm = vtsm_abi_map_new();
        VTSM_GUARD(vtsm_abi_push_item(blocks, bm));
        VTSM_GUARD(vtsm_abi_put_uint(bm, "index", b->index));
        VTSM_GUARD(vtsm_abi_put_uint(bm, "spec", b->spec));
        VTSM_GUARD(vtsm_abi_put_uint(bm, "type", b->value_type & VTSM_SPDM_MEAS_TYPE_MASK));
        VTSM_GUARD(vtsm_abi_put_bool(bm, "raw", (b->value_type & VTSM_SPDM_MEAS_RAW) != 0));
        VTSM_GUARD(vtsm_abi_put_bytes(bm, "value", b->value, b->value_size));
    }
    VTSM_GUARD(vtsm_abi_put_bytes(mm, "record", ms->record.data, ms->record.len));
    VTSM_GUARD(vtsm_abi_put_bytes(mm, "nonce", ms->nonce, sizeof(ms->nonce)));
    VTSM_GUARD(vtsm_abi_put_bytes(mm, "responder_nonce", ms->rsp_nonce, sizeof(ms->rsp_nonce)));
    VTSM_GUARD(vtsm_abi_put_bytes(mm, "transcript", ms->transcript.data, ms->transcript.len));
    VTSM_GUARD(vtsm_abi_put_bytes(mm, "signature", ms->signature, ms->signature_len));
    return vtsm_abi_put_bool(mm, "after_lock", after_lock);
}
