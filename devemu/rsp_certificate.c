/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DSP0274 GET_CERTIFICATE / CERTIFICATE.
 *   GET_CERTIFICATE: header (Param1 [3:0] = SlotID; Param2 bit 0 = SlotSizeRequested in
 *                    1.3, reserved in 1.2) | Offset (2) | Length (2)
 *   CERTIFICATE:     header (Param1 [3:0] = SlotID; Param2 = CertificateInfo, 0 without
 *                    multi-key connections) | PortionLength (2) | RemainderLength (2) |
 *                    CertChain (PortionLength)
 * Without CHUNK_CAP a response must fit both sides' DataTransferSize, so the portion is
 * clamped to that (and to the end of the chain).
 */
#include "dev_internal.h"
#include "vtsm_guard.h"

#define CERT_RSP_HEADER 8

vtsm_status dev_rsp_certificate(struct vtsm_dev *d, struct dev_req *q, struct vtsm_wr *w)
{
    struct vtsm_rd r = vtsm_rd_init(q->msg, q->len);
    uint16_t offset, length;
    uint8_t slot = q->param1 & 0xF;
    bool size_only = q->version >= VTSM_SPDM_V13 && (q->param2 & 1);

    VTSM_GUARD(vtsm_rd_skip(&r, 4));
    if (vtsm_rd_le16(&r, &offset) || vtsm_rd_le16(&r, &length))
        return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_TRUNCATED,
                          "GET_CERTIFICATE shorter than 8 bytes (%zu)", q->len);
    VTSM_GUARD(dev_req_end(q, &r));
    if (slot >= VTSM_DEV_MAX_SLOTS)
        return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_MALFORMED,
                          "GET_CERTIFICATE SlotID %u out of range", slot);

    const struct dev_slot *s = &d->slots[slot];
    const struct vtsm_buf *chain = &s->chain[dev_hash_index(d->conn.hash)];
    size_t chain_len = s->present ? chain->len : 0;
    size_t portion = 0, remainder;

    if (size_only) {
        /* 1.3 SlotSizeRequested: no data, RemainderLength = the slot's chain size;
         * Offset and Length are ignored. */
        remainder = chain_len;
    } else {
        if (!s->present)
            return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_NOT_FOUND,
                              "GET_CERTIFICATE for empty slot %u", slot);
        if (offset >= chain_len)
            return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_MALFORMED,
                              "GET_CERTIFICATE Offset %u beyond the %zu-byte chain", offset,
                              chain_len);
        size_t max_msg = d->cfg.data_transfer_size;
        if (d->conn.req_data_transfer_size < max_msg)
            max_msg = d->conn.req_data_transfer_size;
        portion = length;
        if (portion > max_msg - CERT_RSP_HEADER)
            portion = max_msg - CERT_RSP_HEADER;
        if (portion > chain_len - offset)
            portion = chain_len - offset;
        remainder = chain_len - offset - portion;
    }

    VTSM_GUARD(dev_wr_header(q, w, SPDM_CERTIFICATE, slot, 0));
    VTSM_GUARD(vtsm_wr_le16(w, (uint16_t)portion));
    VTSM_GUARD(vtsm_wr_le16(w, (uint16_t)remainder));
    if (portion)
        VTSM_GUARD(vtsm_wr_bytes(w, chain->data + offset, portion));
    return VTSM_OK;
}
