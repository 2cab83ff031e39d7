/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DSP0274 "CHALLENGE request and CHALLENGE_AUTH response messages" (1.2, 1.3, 1.4).
 *
 * CHALLENGE: header (Param1 = SlotID, Param2 = MeasurementSummaryHashType), Nonce(32),
 * RequesterContext(8) from 1.3 on.
 * CHALLENGE_AUTH: header (Param1 = SlotID [3:0], [7:4] 0 without mutual authentication;
 * Param2 = SlotMask), CertChainHash(H), Nonce(32), MeasurementSummaryHash(H, absent for
 * type 0), OpaqueDataLength(2), OpaqueData, RequesterContext(8) (1.3+), Signature(S).
 *
 * The signature ("responder-challenge_auth signing") covers M1/M2 = A || B || C
 * (DSP0274 "Transcript and transcript hash calculation rules"): A = VCA, B = the
 * GET_DIGESTS / DIGESTS and GET_CERTIFICATE / CERTIFICATE exchanged in the clear since B
 * last restarted (r->msg_b, kept by vtsm__req_xfer and the two message files), C =
 * CHALLENGE || CHALLENGE_AUTH up to the Signature. B restarts after the answer.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "spdm_req_int.h"

#define CHAL_RSP_SLOT_MASK 0x0F

vtsm_status vtsm_spdm_req_challenge(struct vtsm_spdm_req *r, uint8_t slot)
{
    vtsm_status st = VTSM_OK;
    uint8_t req[VTSM__SPDM_HDR + SPDM_NONCE_SIZE + SPDM_REQUESTER_CONTEXT_SIZE];
    uint8_t nonce[SPDM_NONCE_SIZE], req_ctx[SPDM_REQUESTER_CONTEXT_SIZE];
    uint8_t th[VTSM_HASH_MAX];
    struct vtsm_buf trans = {0};
    struct vtsm_wr w = vtsm_wr_init(req, sizeof(req));
    struct vtsm_rd rd;
    uint8_t p1, p2;
    const uint8_t *chain_hash, *sig;
    size_t signed_len, S, H, summary_len;
    bool v13;
    static const char msg[] = "CHALLENGE_AUTH";

    VTSM_ENSURE(r != NULL, VTSM_E_INVAL, "challenge: NULL requester");
    VTSM_ENSURE(slot < SPDM_MAX_SLOTS, VTSM_E_INVAL, "certificate slot %u out of range 0..7", slot);
    VTSM_ENSURE(r->conn == VTSM__CONN_NEGOTIATED, VTSM_E_STATE,
                "CHALLENGE before the connection is negotiated (VCA)");
    VTSM_ENSURE(!r->info.session_active && !r->keys_ready, VTSM_E_STATE,
                "CHALLENGE is not sent inside a secure session");
    VTSM_ENSURE(r->slot[slot].chain_valid, VTSM_E_STATE,
                "CHALLENGE with slot %u needs its certificate chain (GET_CERTIFICATE)", slot);
    if (!(r->info.rsp_caps & SPDM_CAP_CHAL))
        return vtsm_refuse(VTSM_E_PEER_CAPS, VTSM_RULE_PDEV_14,
                           "device CAPABILITIES Flags 0x%08x lack CHAL_CAP: it cannot be "
                           "authenticated by CHALLENGE",
                           r->info.rsp_caps);
    v13 = r->info.version >= VTSM_SPDM_V13;
    H = r->hash_len;
    S = vtsm_sig_size(r->info.asym);
    summary_len = r->opts.meas_summary_hash_type ? H : 0;
    vtsm_buf_reset(&r->chal_transcript);
    r->chal_sig_len = 0;

    VTSM_GUARD_GOTO(vtsm_random(nonce, sizeof(nonce)));
    VTSM_GUARD_GOTO(vtsm_random(req_ctx, sizeof(req_ctx)));
    VTSM_GUARD_GOTO(vtsm_wr_u8(&w, r->info.version));
    VTSM_GUARD_GOTO(vtsm_wr_u8(&w, SPDM_CHALLENGE));
    VTSM_GUARD_GOTO(vtsm_wr_u8(&w, slot));                           /* Param1 = SlotID */
    VTSM_GUARD_GOTO(vtsm_wr_u8(&w, r->opts.meas_summary_hash_type)); /* Param2 */
    VTSM_GUARD_GOTO(vtsm_wr_bytes(&w, nonce, sizeof(nonce)));
    if (v13)
        VTSM_GUARD_GOTO(vtsm_wr_bytes(&w, req_ctx, sizeof(req_ctx)));

    /* A || B || CHALLENGE, before the exchange: msg_b is kept for exactly this. */
    VTSM_GUARD_GOTO(vtsm_buf_append(&trans, r->vca.data, r->vca.len));
    VTSM_GUARD_GOTO(vtsm_buf_append(&trans, r->msg_b.data, r->msg_b.len));
    VTSM_GUARD_GOTO(vtsm_buf_append(&trans, req, w.len));

    VTSM_GUARD_GOTO(vtsm__req_xfer(r, false, req, w.len, SPDM_CHALLENGE_AUTH, &rd));
    VTSM__RD_GOTO(vtsm_rd_skip(&rd, 2), msg, "header");
    VTSM__RD_GOTO(vtsm_rd_u8(&rd, &p1), msg, "Param1");
    VTSM__RD_GOTO(vtsm_rd_u8(&rd, &p2), msg, "Param2 (SlotMask)");
    VTSM__RD_GOTO(vtsm_rd_ref(&rd, &chain_hash, H), msg, "CertChainHash");
    VTSM__RD_GOTO(vtsm_rd_skip(&rd, SPDM_NONCE_SIZE), msg, "Nonce");
    VTSM__RD_GOTO(vtsm_rd_skip(&rd, summary_len), msg, "MeasurementSummaryHash");
    VTSM_GUARD_GOTO(vtsm__rd_opaque_and_context(&rd, msg, "CHALLENGE", v13 ? req_ctx : NULL));
    signed_len = rd.off;
    VTSM__RD_GOTO(vtsm_rd_ref(&rd, &sig, S), msg, "Signature");
    VTSM_GUARD_GOTO(vtsm__req_end(r, &rd, msg));

    VTSM_ENSURE_GOTO((p1 & CHAL_RSP_SLOT_MASK) == slot, VTSM_E_PEER_MALFORMED,
                     "CHALLENGE_AUTH Param1 names slot %u, we challenged slot %u",
                     p1 & CHAL_RSP_SLOT_MASK, slot);
    /* Bit 7 was BasicMutAuthReq (deprecated); we offered no MUT_AUTH_CAP. */
    VTSM_ENSURE_GOTO((p1 & ~CHAL_RSP_SLOT_MASK) == 0, VTSM_E_PEER_MALFORMED,
                     "CHALLENGE_AUTH Param1 0x%02x sets reserved / mutual authentication bits", p1);
    VTSM_ENSURE_GOTO(p2 & (1u << slot), VTSM_E_PEER_MALFORMED,
                     "CHALLENGE_AUTH SlotMask 0x%02x lacks the challenged slot %u", p2, slot);

    /* Signature over Hash(M1/M2) with the slot's leaf key... */
    VTSM_GUARD_GOTO(vtsm_buf_append(&trans, rd.p, signed_len));
    VTSM_GUARD_GOTO(vtsm_hash(r->info.hash, trans.data, trans.len, th));
    st = vtsm_spdm_verify(r->slot[slot].chain.leaf_key, r->info.asym, r->info.hash, r->info.version,
                          VTSM_SPDM_CTX_CHALLENGE_AUTH, th, sig, S);
    if (st != VTSM_OK) {
        if (st != VTSM_E_NOMEM)
            st = vtsm_refuse(VTSM_E_PEER_SIGNATURE, VTSM_RULE_PDEV_15,
                             "CHALLENGE_AUTH signature over M1/M2 does not verify with the slot "
                             "%u leaf key",
                             slot);
        goto out;
    }
    /* ...and the chain it names is the one we hold (its DIGESTS entry). */
    if (CRYPTO_memcmp(chain_hash, r->slot[slot].digest, H) != 0) {
        st = vtsm_refuse(VTSM_E_PEER_DIGEST, VTSM_RULE_PDEV_16,
                         "CHALLENGE_AUTH CertChainHash differs from the hash of the slot %u "
                         "certificate chain",
                         slot);
        goto out;
    }

    /* Evidence: the signed bytes and the signature. */
    VTSM_GUARD_GOTO(vtsm_buf_set(&r->chal_transcript, trans.data, trans.len));
    memcpy(r->chal_sig, sig, S);
    r->chal_sig_len = S;
    st = VTSM_OK;
out:
    if (st != VTSM_OK) {
        vtsm_buf_reset(&r->chal_transcript);
        r->chal_sig_len = 0;
    }
    /* B restarts after CHALLENGE_AUTH, whatever the outcome. */
    vtsm_buf_reset(&r->msg_b);
    vtsm_buf_free(&trans);
    OPENSSL_cleanse(th, sizeof(th));
    return st;
}

const struct vtsm_buf *vtsm_spdm_req_challenge_transcript(const struct vtsm_spdm_req *r)
{
    return r->chal_sig_len ? &r->chal_transcript : NULL;
}

const uint8_t *vtsm_spdm_req_challenge_signature(const struct vtsm_spdm_req *r, size_t *len)
{
    *len = r->chal_sig_len;
    return r->chal_sig_len ? r->chal_sig : NULL;
}
