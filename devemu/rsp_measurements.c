/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DSP0274 GET_MEASUREMENTS / MEASUREMENTS (1.2, 1.3).
 *
 * GET_MEASUREMENTS: header (Param1 = Attributes: bit 0 SignatureRequested, bit 1
 *   RawBitStreamRequested, bit 2 NewMeasurementRequested (1.3); Param2 =
 *   MeasurementOperation: 0 count, 0xFF all, else one index) |
 *   Nonce (32) and SlotIDParam (1) if SignatureRequested | RequesterContext (8, 1.3)
 * MEASUREMENTS: header (Param1 = TotalNumberOfMeasurementIndices for operation 0, else 0;
 *   Param2 = SlotID [3:0] and ContentChanged [5:4] when signed, else 0) |
 *   NumberOfBlocks (1) | MeasurementRecordLength (3) | MeasurementRecord | Nonce (32) |
 *   OpaqueDataLength (2) | OpaqueData | RequesterContext (8, 1.3) | Signature (if requested)
 *
 * NewMeasurementRequested needs nothing: every answer is computed fresh (MEAS_FRESH_CAP).
 *
 * L1/L2 (1.2+): VCA || every GET_MEASUREMENTS and MEASUREMENTS (without its signature)
 * since the log was last reset, per context (outside or inside the session). A signed
 * response signs it and resets it; any other request resets it (dev_core.c).
 */
#include <string.h>

#include <openssl/crypto.h>

#include "dev_internal.h"
#include "vtsm_guard.h"

static int meas_find(const struct vtsm_dev *d, uint8_t index)
{
    for (size_t i = 0; i < d->cfg.n_meas; i++)
        if (d->cfg.meas[i].index == index)
            return (int)i;
    return -1;
}

static vtsm_status sign_l1l2(struct vtsm_dev *d, struct dev_req *q, const struct dev_slot *s,
                             uint8_t *sig)
{
    struct vtsm_buf *log = dev_l1l2(d, q);
    struct vtsm_hash_ctx *h = NULL;
    uint8_t th[VTSM_HASH_MAX];
    vtsm_status st = VTSM_OK;

    VTSM_GUARD_GOTO(vtsm_hash_ctx_new(d->conn.hash, &h));
    VTSM_GUARD_GOTO(vtsm_hash_ctx_update(h, d->conn.vca.data, d->conn.vca.len));
    VTSM_GUARD_GOTO(vtsm_hash_ctx_update(h, log->data, log->len));
    VTSM_GUARD_GOTO(vtsm_hash_ctx_peek(h, th));
    VTSM_GUARD_GOTO(vtsm_spdm_sign(s->key, d->conn.asym, d->conn.hash, d->conn.version,
                                   VTSM_SPDM_CTX_MEASUREMENTS, th, sig));
out:
    vtsm_hash_ctx_free(h);
    OPENSSL_cleanse(th, sizeof(th));
    return st;
}

vtsm_status dev_rsp_measurements(struct vtsm_dev *d, struct dev_req *q, struct vtsm_wr *w)
{
    struct vtsm_rd r = vtsm_rd_init(q->msg, q->len);
    bool sign = q->param1 & SPDM_MEAS_ATTR_SIGNATURE;
    bool raw = q->param1 & SPDM_MEAS_ATTR_RAW_BITSTREAM;
    uint8_t op = q->param2;
    uint8_t slot_param = 0;
    const uint8_t *req_ctx = NULL;

    if (d->conn.meas_spec == 0 || d->conn.meas_hash == 0)
        return dev_refuse(q, SPDM_ERR_UNEXPECTED_REQUEST, 0, VTSM_E_STATE,
                          "GET_MEASUREMENTS without a negotiated measurement specification");
    VTSM_GUARD(vtsm_rd_skip(&r, 4));
    if (sign && (vtsm_rd_skip(&r, SPDM_NONCE_SIZE) || vtsm_rd_u8(&r, &slot_param)))
        return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_TRUNCATED,
                          "signed GET_MEASUREMENTS without Nonce/SlotIDParam");
    if (q->version >= VTSM_SPDM_V13 && vtsm_rd_ref(&r, &req_ctx, SPDM_REQUESTER_CONTEXT_SIZE))
        return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_TRUNCATED,
                          "GET_MEASUREMENTS 1.3 without RequesterContext");
    VTSM_GUARD(dev_req_end(q, &r));
    size_t req_len = r.off;

    const struct dev_slot *s = NULL;
    uint8_t slot = slot_param & 0xF;
    if (sign) {
        if (slot >= VTSM_DEV_MAX_SLOTS || !d->slots[slot].present)
            return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_NOT_FOUND,
                              "GET_MEASUREMENTS signed with slot %u, which holds no key", slot);
        s = &d->slots[slot];
    }
    int one = -1;
    if (op != SPDM_MEAS_OP_COUNT && op != SPDM_MEAS_OP_ALL) {
        one = meas_find(d, op);
        if (one < 0)
            return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_NOT_FOUND,
                              "no measurement block with index %u", op);
    }

    /* Header and record. */
    size_t at_count, at_len;
    uint8_t p1 = op == SPDM_MEAS_OP_COUNT ? (uint8_t)d->cfg.n_meas : 0;
    uint8_t p2 = sign ? slot : 0; /* ContentChanged 00b: no change detection */
    VTSM_GUARD(dev_wr_header(q, w, SPDM_MEASUREMENTS, p1, p2));
    VTSM_GUARD(vtsm_wr_reserve(w, 1, &at_count));
    VTSM_GUARD(vtsm_wr_reserve(w, 3, &at_len));
    size_t rec_start = w->len;
    uint8_t blocks = 0;
    /* Fault meas-drift-after-lock: the firmware changes behind the TSM's back once the
     * device has been measured after a LOCK_INTERFACE_RSP. */
    if (d->meas_since_lock != 0 && d->meas_since_lock < UINT32_MAX)
        d->meas_since_lock++;
    d->meas_drift = dev_fault(d, VTSM_DEV_FAULT_MEAS_DRIFT_AFTER_LOCK) && d->meas_since_lock > 2;
    if (op == SPDM_MEAS_OP_ALL) {
        for (size_t i = 0; i < d->cfg.n_meas; i++, blocks++)
            VTSM_GUARD(dev_meas_block(d, i, raw, w));
    } else if (one >= 0) {
        VTSM_GUARD(dev_meas_block(d, (size_t)one, raw, w));
        blocks = 1;
    }
    d->meas_drift = false;
    w->p[at_count] = blocks;
    vtsm_wr_patch_le24(w, at_len, (uint32_t)(w->len - rec_start));

    /* Nonce, OpaqueData, RequesterContext. */
    uint8_t nonce[SPDM_NONCE_SIZE];
    VTSM_GUARD(vtsm_random(nonce, sizeof(nonce)));
    VTSM_GUARD(vtsm_wr_bytes(w, nonce, sizeof(nonce)));
    VTSM_GUARD(vtsm_wr_le16(w, 0));
    if (req_ctx)
        VTSM_GUARD(vtsm_wr_bytes(w, req_ctx, SPDM_REQUESTER_CONTEXT_SIZE));

    /* The response must fit the requester's buffer: one message, or with chunking its
     * MaxSPDMmsgSize (dev_dispatch then announces it by LargeResponse). */
    size_t total = w->len + (sign ? vtsm_sig_size(d->conn.asym) : 0);
    const uint32_t rsp_max =
        dev_chunking(d) ? d->conn.req_max_spdm_msg_size : d->conn.req_data_transfer_size;
    if (total > rsp_max) {
        uint8_t ext[4];
        vtsm_put_le32(ext, (uint32_t)total);
        memcpy(q->err_ext, ext, 4);
        q->err_ext_len = 4;
        return dev_refuse(q, SPDM_ERR_RESPONSE_TOO_LARGE, 0, VTSM_E_PEER_OVERSIZED,
                          "MEASUREMENTS of %zu bytes exceeds the requester's %u", total, rsp_max);
    }

    /* Update the log: request, then the response without its signature. */
    struct vtsm_buf *log = dev_l1l2(d, q);
    VTSM_GUARD(vtsm_buf_append(log, q->msg, req_len));
    VTSM_GUARD(vtsm_buf_append(log, w->p, w->len));
    if (sign) {
        uint8_t sig[VTSM_SIG_MAX];
        size_t sig_len = vtsm_sig_size(d->conn.asym);
        vtsm_status st = sign_l1l2(d, q, s, sig);
        vtsm_buf_reset(log);
        VTSM_GUARD(st);
        if (dev_fault(d, VTSM_DEV_FAULT_BAD_MEAS_SIGNATURE))
            sig[sig_len / 2] ^= 0x01;
        VTSM_GUARD(vtsm_wr_bytes(w, sig, sig_len));
    }
    return VTSM_OK;
}
