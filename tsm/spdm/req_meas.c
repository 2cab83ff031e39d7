/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DSP0274 "GET_MEASUREMENTS request and MEASUREMENTS response messages", signed.
 *
 * Request: header (Param1 = attributes, bit 0 SignatureRequested; Param2 = operation
 * 0xFF = all blocks), Nonce(32), SlotIDParam (slot [3:0]), and in 1.3
 * RequesterContext(8).
 * Response: header (Param2: SlotID [3:0], ContentChanged [5:4]), NumberOfBlocks,
 * MeasurementRecordLength(3), MeasurementRecord, Nonce(32), OpaqueDataLength(2),
 * OpaqueData, RequesterContext(8) (1.3), Signature.
 *
 * The signature covers L1/L2 (DSP0274 "Transcript and transcript hash calculation
 * rules"): from 1.2 on, L1/L2 = VCA || every GET_MEASUREMENTS / MEASUREMENTS pair since
 * the last signed one, the last response without its Signature. Every request we send is
 * signed, so L1/L2 = VCA || this request || this response less Signature. Inside a session
 * the measurement transcript is the session's own, with the same composition (VCA still
 * leads it), so the rule is the same in and out of a session.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "spdm_req_int.h"

#define MEAS_BLOCK_HDR        4 /* Index, MeasurementSpecification, MeasurementSize(2) */
#define DMTF_VALUE_HDR        3 /* DMTFSpecMeasurementValueType, DMTFSpecMeasurementValueSize(2) */
#define CONTENT_CHANGED_SHIFT 4
#define CONTENT_CHANGED_MASK  0x30

/* Parse the authenticated MeasurementRecord into exactly NumberOfBlocks blocks. */
static vtsm_status parse_record(const struct vtsm_spdm_req *r, struct vtsm_spdm_meas *m)
{
    size_t n;

    m->blocks = calloc(m->num_blocks, sizeof(*m->blocks));
    VTSM_ENSURE(m->blocks != NULL, VTSM_E_NOMEM, "measurement blocks");
    VTSM_GUARD(vtsm_spdm_meas_parse(m->record.data, m->record.len, r->meas_spec,
                                    vtsm_spdm_meas_hash_size(r->info.meas_hash_algo), m->blocks,
                                    m->num_blocks, &n));
    VTSM_ENSURE(n == m->num_blocks, VTSM_E_PEER_MALFORMED,
                "MeasurementRecord holds %zu blocks, NumberOfBlocks is %u", n, m->num_blocks);
    return VTSM_OK;
}

vtsm_status vtsm_spdm_req_get_measurements(struct vtsm_spdm_req *r, uint8_t slot,
                                           const uint8_t *nonce, struct vtsm_spdm_meas *out)
{
    return vtsm_spdm_req_get_measurements_ex(r, slot, nonce, false, out);
}

vtsm_status vtsm_spdm_req_get_measurements_ex(struct vtsm_spdm_req *r, uint8_t slot,
                                              const uint8_t *nonce, bool raw,
                                              struct vtsm_spdm_meas *out)
{
    vtsm_status st = VTSM_OK;
    struct vtsm_spdm_meas m = {0};
    uint8_t req[VTSM__SPDM_HDR + SPDM_NONCE_SIZE + 1 + SPDM_REQUESTER_CONTEXT_SIZE];
    uint8_t req_ctx[SPDM_REQUESTER_CONTEXT_SIZE];
    uint8_t th[VTSM_HASH_MAX];
    struct vtsm_wr w = vtsm_wr_init(req, sizeof(req));
    struct vtsm_rd rd;
    uint8_t p2, nblocks;
    uint32_t rec_len;
    const uint8_t *rec, *sig;
    size_t sig_len, signed_len;
    const bool v13 = r != NULL && r->info.version >= VTSM_SPDM_V13;
    static const char msg[] = "MEASUREMENTS";

    VTSM_ENSURE(r != NULL && out != NULL, VTSM_E_INVAL, "get_measurements: NULL argument");
    VTSM_ENSURE(slot < SPDM_MAX_SLOTS, VTSM_E_INVAL, "certificate slot %u out of range 0..7", slot);
    VTSM_ENSURE(r->conn == VTSM__CONN_NEGOTIATED, VTSM_E_STATE,
                "GET_MEASUREMENTS before the connection is negotiated (VCA)");
    VTSM_ENSURE(r->slot[slot].chain_valid, VTSM_E_STATE,
                "GET_MEASUREMENTS with slot %u needs its certificate chain (GET_CERTIFICATE)",
                slot);
    memset(out, 0, sizeof(*out));

    if (nonce != NULL)
        memcpy(m.nonce, nonce, SPDM_NONCE_SIZE);
    else
        VTSM_GUARD_GOTO(vtsm_random(m.nonce, SPDM_NONCE_SIZE));
    VTSM_GUARD_GOTO(vtsm_random(req_ctx, sizeof(req_ctx)));
    m.slot = slot;

    VTSM_GUARD_GOTO(vtsm_wr_u8(&w, r->info.version));
    VTSM_GUARD_GOTO(vtsm_wr_u8(&w, SPDM_GET_MEASUREMENTS));
    /* Param1: SignatureRequested, and RawBitStreamRequested when asked (DSP0274 10.11) */
    VTSM_GUARD_GOTO(
        vtsm_wr_u8(&w, SPDM_MEAS_ATTR_SIGNATURE | (raw ? SPDM_MEAS_ATTR_RAW_BITSTREAM : 0)));
    VTSM_GUARD_GOTO(vtsm_wr_u8(&w, SPDM_MEAS_OP_ALL));
    VTSM_GUARD_GOTO(vtsm_wr_bytes(&w, m.nonce, SPDM_NONCE_SIZE));
    VTSM_GUARD_GOTO(vtsm_wr_u8(&w, slot)); /* SlotIDParam */
    if (v13)
        VTSM_GUARD_GOTO(vtsm_wr_bytes(&w, req_ctx, sizeof(req_ctx)));

    VTSM_GUARD_GOTO(vtsm__req_xfer(r, r->info.session_active, req, w.len, SPDM_MEASUREMENTS, &rd));

    /* header -> fixed part -> counts -> variable part */
    VTSM__RD_GOTO(vtsm_rd_skip(&rd, 3), msg, "header");
    VTSM__RD_GOTO(vtsm_rd_u8(&rd, &p2), msg, "Param2");
    VTSM__RD_GOTO(vtsm_rd_u8(&rd, &nblocks), msg, "NumberOfBlocks");
    VTSM__RD_GOTO(vtsm_rd_le24(&rd, &rec_len), msg, "MeasurementRecordLength");
    VTSM_ENSURE_GOTO((p2 & VTSM__SLOT_MASK) == slot, VTSM_E_PEER_MALFORMED,
                     "MEASUREMENTS Param2 names slot %u, we asked for slot %u",
                     p2 & VTSM__SLOT_MASK, slot);
    VTSM_ENSURE_GOTO(nblocks != 0 && nblocks != 0xFF, VTSM_E_PEER_MALFORMED,
                     "MEASUREMENTS for all blocks has NumberOfBlocks %u (1..254)", nblocks);
    VTSM_ENSURE_GOTO(rec_len <= vtsm_rd_left(&rd), VTSM_E_PEER_TRUNCATED,
                     "MEASUREMENTS MeasurementRecordLength %u exceeds the %zu bytes left", rec_len,
                     vtsm_rd_left(&rd));
    VTSM_ENSURE_GOTO(rec_len >= (size_t)nblocks * (MEAS_BLOCK_HDR + DMTF_VALUE_HDR),
                     VTSM_E_PEER_MALFORMED, "MEASUREMENTS record of %u bytes cannot hold %u blocks",
                     rec_len, nblocks);
    VTSM__RD_GOTO(vtsm_rd_ref(&rd, &rec, rec_len), msg, "MeasurementRecord");
    VTSM__RD_GOTO(vtsm_rd_bytes(&rd, m.rsp_nonce, SPDM_NONCE_SIZE), msg, "Nonce");
    VTSM_GUARD_GOTO(
        vtsm__rd_opaque_and_context(&rd, msg, "GET_MEASUREMENTS", v13 ? req_ctx : NULL));
    signed_len = rd.off;
    sig_len = vtsm_sig_size(r->info.asym);
    VTSM__RD_GOTO(vtsm_rd_ref(&rd, &sig, sig_len), msg, "Signature");
    VTSM_GUARD_GOTO(vtsm__req_end(r, &rd, msg));

    /* L1/L2 = VCA || GET_MEASUREMENTS || MEASUREMENTS without Signature. */
    VTSM_GUARD_GOTO(vtsm_buf_append(&m.transcript, r->vca.data, r->vca.len));
    VTSM_GUARD_GOTO(vtsm_buf_append(&m.transcript, req, w.len));
    VTSM_GUARD_GOTO(vtsm_buf_append(&m.transcript, rd.p, signed_len));
    VTSM_GUARD_GOTO(vtsm_hash(r->info.hash, m.transcript.data, m.transcript.len, th));
    st = vtsm_spdm_verify(r->slot[slot].chain.leaf_key, r->info.asym, r->info.hash, r->info.version,
                          VTSM_SPDM_CTX_MEASUREMENTS, th, sig, sig_len);
    if (st != VTSM_OK) {
        if (st != VTSM_E_NOMEM)
            st = vtsm_fail(VTSM_E_PEER_SIGNATURE,
                           "MEASUREMENTS signature over L1/L2 does not verify with the slot %u "
                           "leaf key",
                           slot);
        goto out;
    }
    memcpy(m.signature, sig, sig_len);
    m.signature_len = sig_len;

    /* The record is parsed only once it is authenticated. */
    m.num_blocks = nblocks;
    m.content_changed = (uint8_t)((p2 & CONTENT_CHANGED_MASK) >> CONTENT_CHANGED_SHIFT);
    VTSM_GUARD_GOTO(vtsm_buf_set(&m.record, rec, rec_len));
    VTSM_GUARD_GOTO(parse_record(r, &m));

    *out = m;
    memset(&m, 0, sizeof(m));
    st = VTSM_OK;
out:
    vtsm_spdm_meas_free(&m);
    OPENSSL_cleanse(th, sizeof(th));
    return st;
}
