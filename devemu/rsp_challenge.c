/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DSP0274 CHALLENGE / CHALLENGE_AUTH (1.2, 1.3, 1.4), authentication by the slot's leaf key.
 *
 * CHALLENGE:      header (Param1 = SlotID 0..7; Param2 = MeasurementSummaryHashType
 *                 0 / 1 (TCB) / 0xFF (all)) | Nonce (32) | RequesterContext (8, 1.3+)
 * CHALLENGE_AUTH: header (Param1 = SlotID [3:0], [7:4] 0 without mutual authentication;
 *                 Param2 = SlotMask, the slots holding a chain) | CertChainHash (H) |
 *                 Nonce (32) | MeasurementSummaryHash (H, or 0 for type 0) |
 *                 OpaqueDataLength (2) | OpaqueData | RequesterContext (8, 1.3+) |
 *                 Signature (S)
 *
 * The signature ("responder-challenge_auth signing", 1.2+ signing format) covers
 * M1/M2 = A || B || C: A = VCA, B = the GET_DIGESTS / DIGESTS and GET_CERTIFICATE /
 * CERTIFICATE exchanged in the clear since B last started (dev_core.c keeps it), C =
 * CHALLENGE || CHALLENGE_AUTH without the signature. B and C restart after the answer.
 * Only outside a session (the dispatch table), and only with CHAL_CAP (cfg.challenge).
 */
#include <string.h>

#include <openssl/crypto.h>

#include "dev_internal.h"
#include "vtsm_guard.h"

#define CHAL_SLOT_MASK 0x0F

static vtsm_status sign_m1m2(struct vtsm_dev *d, const struct dev_slot *s, const uint8_t *req,
                             size_t req_len, const uint8_t *rsp, size_t rsp_len, uint8_t *sig)
{
    struct vtsm_hash_ctx *h = NULL;
    uint8_t th[VTSM_HASH_MAX];
    vtsm_status st = VTSM_OK;

    VTSM_GUARD_GOTO(vtsm_hash_ctx_new(d->conn.hash, &h));
    VTSM_GUARD_GOTO(vtsm_hash_ctx_update(h, d->conn.vca.data, d->conn.vca.len));
    VTSM_GUARD_GOTO(vtsm_hash_ctx_update(h, d->conn.msg_b.data, d->conn.msg_b.len));
    VTSM_GUARD_GOTO(vtsm_hash_ctx_update(h, req, req_len));
    VTSM_GUARD_GOTO(vtsm_hash_ctx_update(h, rsp, rsp_len));
    VTSM_GUARD_GOTO(vtsm_hash_ctx_peek(h, th));
    VTSM_GUARD_GOTO(vtsm_spdm_sign(s->key, d->conn.asym, d->conn.hash, d->conn.version,
                                   VTSM_SPDM_CTX_CHALLENGE_AUTH, th, sig));
out:
    vtsm_hash_ctx_free(h);
    OPENSSL_cleanse(th, sizeof(th));
    return st;
}

vtsm_status dev_rsp_challenge(struct vtsm_dev *d, struct dev_req *q, struct vtsm_wr *w)
{
    struct vtsm_rd r = vtsm_rd_init(q->msg, q->len);
    const uint8_t slot = q->param1, type = q->param2;
    const size_t H = vtsm_hash_size(d->conn.hash);
    const uint8_t *req_ctx = NULL;
    uint8_t nonce[SPDM_NONCE_SIZE], sum[VTSM_HASH_MAX], sig[VTSM_SIG_MAX];
    uint8_t slot_mask = 0;
    vtsm_status st;

    if (!d->cfg.challenge)
        return dev_refuse(q, SPDM_ERR_UNSUPPORTED_REQUEST, q->code, VTSM_E_UNSUPPORTED,
                          "CHALLENGE without CHAL_CAP");
    VTSM_GUARD(vtsm_rd_skip(&r, 4));
    if (vtsm_rd_skip(&r, SPDM_NONCE_SIZE))
        return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_TRUNCATED,
                          "CHALLENGE without its 32-byte Nonce");
    if (q->version >= VTSM_SPDM_V13 && vtsm_rd_ref(&r, &req_ctx, SPDM_REQUESTER_CONTEXT_SIZE))
        return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_TRUNCATED,
                          "CHALLENGE 1.3+ without RequesterContext");
    VTSM_GUARD(dev_req_end(q, &r));
    const size_t req_len = r.off;

    /* SlotID 0xFF names a provisioned public key, which this device does not have. */
    if (slot >= VTSM_DEV_MAX_SLOTS || !d->slots[slot].present)
        return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_NOT_FOUND,
                          "CHALLENGE for slot %u, which holds no certificate chain", slot);
    if (type != SPDM_MEAS_SUMMARY_HASH_NONE && type != SPDM_MEAS_SUMMARY_HASH_TCB &&
        type != SPDM_MEAS_SUMMARY_HASH_ALL)
        return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_MALFORMED,
                          "CHALLENGE MeasurementSummaryHashType 0x%02x", type);
    if (type != SPDM_MEAS_SUMMARY_HASH_NONE && (d->conn.meas_spec == 0 || d->conn.meas_hash == 0))
        return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_STATE,
                          "CHALLENGE asks for a measurement summary without a negotiated "
                          "measurement specification");
    for (unsigned i = 0; i < VTSM_DEV_MAX_SLOTS; i++)
        if (d->slots[i].present)
            slot_mask |= (uint8_t)(1u << i);

    const struct dev_slot *s = &d->slots[slot];
    const size_t rsp_start = w->len;
    VTSM_GUARD(dev_wr_header(q, w, SPDM_CHALLENGE_AUTH, slot & CHAL_SLOT_MASK, slot_mask));
    /* CertChainHash: the base hash of the slot's whole SPDM chain (its DIGESTS entry). */
    uint8_t chain_hash[VTSM_HASH_MAX];
    memcpy(chain_hash, s->digest[dev_hash_index(d->conn.hash)], H);
    if (dev_fault(d, VTSM_DEV_FAULT_WRONG_CERT_CHAIN_HASH))
        chain_hash[0] ^= 0x01; /* signed as sent: only the hash is wrong */
    VTSM_GUARD(vtsm_wr_bytes(w, chain_hash, H));
    VTSM_GUARD(vtsm_random(nonce, sizeof(nonce)));
    VTSM_GUARD(vtsm_wr_bytes(w, nonce, sizeof(nonce)));
    if (type != SPDM_MEAS_SUMMARY_HASH_NONE) {
        VTSM_GUARD(dev_meas_summary(d, type, sum));
        VTSM_GUARD(vtsm_wr_bytes(w, sum, H));
    }
    VTSM_GUARD(vtsm_wr_le16(w, 0)); /* OpaqueDataLength */
    if (req_ctx)
        VTSM_GUARD(vtsm_wr_bytes(w, req_ctx, SPDM_REQUESTER_CONTEXT_SIZE));

    const size_t sig_len = vtsm_sig_size(d->conn.asym);
    st = sign_m1m2(d, s, q->msg, req_len, w->p + rsp_start, w->len - rsp_start, sig);
    /* B and C restart whatever the outcome. */
    vtsm_buf_reset(&d->conn.msg_b);
    VTSM_GUARD(st);
    if (dev_fault(d, VTSM_DEV_FAULT_BAD_CHALLENGE_SIGNATURE))
        sig[sig_len / 2] ^= 0x01;
    st = vtsm_wr_bytes(w, sig, sig_len);
    OPENSSL_cleanse(sig, sizeof(sig));
    return st;
}
