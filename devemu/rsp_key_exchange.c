/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DSP0274 KEY_EXCHANGE / KEY_EXCHANGE_RSP (1.2, 1.3), with the DSP0277 secured-message
 * version negotiated in the OpaqueData.
 *
 * KEY_EXCHANGE: header (Param1 = MeasurementSummaryHashType 0/1/0xFF, Param2 = SlotID) |
 *   ReqSessionID (2) | SessionPolicy (1) | Reserved (1) | RandomData (32) |
 *   ExchangeData (D) | OpaqueDataLength (2) | OpaqueData
 * KEY_EXCHANGE_RSP: header (Param1 = HeartbeatPeriod, Param2 reserved) | RspSessionID (2) |
 *   MutAuthRequested (1) | ReqSlotIDParam (1) | RandomData (32) | ExchangeData (D) |
 *   MeasurementSummaryHash (H, absent for type 0) | OpaqueDataLength (2) | OpaqueData |
 *   Signature (S) | ResponderVerifyData (H; HANDSHAKE_IN_THE_CLEAR_CAP is not offered)
 *
 * Transcript: TH = VCA || Hash(certificate chain of the slot) || KEY_EXCHANGE ||
 * KEY_EXCHANGE_RSP up to the signature. The signature ("responder-key_exchange_rsp
 * signing") covers Hash(TH); TH1 = Hash(TH || Signature) feeds the handshake key schedule
 * and ResponderVerifyData = HMAC(response finished_key, TH1).
 * SessionID = ReqSessionID | RspSessionID << 16.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "dev_internal.h"
#include "vtsm_guard.h"
#include "vtsm_log.h"

#define KEX_POLICY_EVENT_ALL (1u << 1) /* SessionPolicy EventAllPolicy (1.3) */

/* Highest DSP0277 version both sides list (DEV_SECMSG_VERSIONS is most preferred first). */
static uint16_t secmsg_select(const uint16_t *offered, size_t n)
{
    static const uint16_t mine[] = DEV_SECMSG_VERSIONS;
    for (size_t i = 0; i < VTSM_ARRAY_SIZE(mine); i++)
        for (size_t j = 0; j < n; j++)
            if ((offered[j] & 0xFF00) == mine[i])
                return mine[i];
    return 0;
}

vtsm_status dev_rsp_key_exchange(struct vtsm_dev *d, struct dev_req *q, struct vtsm_wr *w)
{
    struct vtsm_rd r = vtsm_rd_init(q->msg, q->len);
    struct dev_session *s = &d->sess;
    const uint8_t *peer_pub, *opaque;
    uint16_t req_sid, opaque_len;
    uint8_t policy, rsvd;
    size_t dlen = vtsm_dhe_pub_size(d->conn.dhe);
    size_t hlen = vtsm_hash_size(d->conn.hash);
    uint8_t sum_type = q->param1, slot = q->param2;
    uint16_t offered[VTSM_SECMSG_OPAQUE_MAX_VERSIONS];
    size_t n_offered = VTSM_ARRAY_SIZE(offered);
    struct vtsm_dhe *dhe = NULL;
    uint8_t secret[VTSM_DHE_SECRET_MAX], th1[VTSM_HASH_MAX];
    vtsm_status st = VTSM_OK;

    /* Validate. */
    if (!(d->conn.req_flags & SPDM_CAP_KEY_EX))
        return dev_refuse(q, SPDM_ERR_UNSUPPORTED_REQUEST, SPDM_KEY_EXCHANGE, VTSM_E_UNSUPPORTED,
                          "KEY_EXCHANGE but the requester did not set KEY_EX_CAP");
    if (dev_fault(d, VTSM_DEV_FAULT_ERROR_KEX))
        return dev_refuse(q, SPDM_ERR_UNSPECIFIED, 0, VTSM_E_ABORTED,
                          "error-kex fault: KEY_EXCHANGE answered with UnspecifiedError");
    if (!dlen || !d->conn.key_schedule || d->conn.aead != VTSM_AEAD_AES_256_GCM ||
        (q->version >= VTSM_SPDM_V12 && d->conn.other_params != SPDM_OPAQUE_DATA_FMT_1))
        return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_STATE,
                          "KEY_EXCHANGE without negotiated DHE/AEAD/key schedule/OpaqueDataFmt1");
    if (s->state == DEV_SESS_ESTABLISHED)
        return dev_refuse(q, SPDM_ERR_SESSION_LIMIT_EXCEEDED, 0, VTSM_E_LIMIT,
                          "session 0x%08x is active (one session at a time)", s->id);
    VTSM_GUARD(vtsm_rd_skip(&r, 4));
    if (vtsm_rd_le16(&r, &req_sid) || vtsm_rd_u8(&r, &policy) || vtsm_rd_u8(&r, &rsvd) ||
        vtsm_rd_skip(&r, SPDM_RANDOM_SIZE) || vtsm_rd_ref(&r, &peer_pub, dlen) ||
        vtsm_rd_le16(&r, &opaque_len) || vtsm_rd_ref(&r, &opaque, opaque_len))
        return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_TRUNCATED,
                          "KEY_EXCHANGE truncated (%zu bytes, ExchangeData %zu)", q->len, dlen);
    size_t req_len = r.off;
    VTSM_GUARD(dev_req_end(q, &r));
    if (sum_type != 0 && sum_type != 1 && sum_type != 0xFF)
        return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_MALFORMED,
                          "MeasurementSummaryHashType 0x%02x", sum_type);
    if (sum_type && !d->conn.meas_spec)
        return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_STATE,
                          "MeasurementSummaryHash without a negotiated measurement spec");
    if (slot >= VTSM_DEV_MAX_SLOTS || !d->slots[slot].present)
        return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_NOT_FOUND,
                          "KEY_EXCHANGE SlotID 0x%02x holds no certificate chain", slot);
    if (q->version >= VTSM_SPDM_V13 && (policy & KEX_POLICY_EVENT_ALL))
        return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_UNSUPPORTED,
                          "SessionPolicy EventAllPolicy without EVENT_CAP");
    st = vtsm_secmsg_opaque_parse_supported(opaque, opaque_len, offered, &n_offered);
    if (st != VTSM_OK)
        return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, st,
                          "KEY_EXCHANGE OpaqueData: no DSP0277 supported-version list (%s)",
                          vtsm_err_detail());
    uint16_t secmsg = secmsg_select(offered, n_offered);
    if (!secmsg)
        return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_VERSION,
                          "no common secured-message (DSP0277) version among %zu offered",
                          n_offered);

    /* Do. A handshake left unfinished is replaced by this one. */
    const struct dev_slot *sl = &d->slots[slot];
    uint8_t pub[VTSM_DHE_PUB_MAX], rnd[SPDM_RANDOM_SIZE];
    VTSM_GUARD_GOTO(vtsm_dhe_generate(d->conn.dhe, &dhe, pub));
    if (dev_fault(d, VTSM_DEV_FAULT_BAD_KEX_POINT))
        pub[dlen - 1] ^= 0x01; /* Y off by one: no longer on the curve */
    st = vtsm_dhe_derive(dhe, peer_pub, dlen, secret);
    if (st != VTSM_OK) {
        st = dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, st,
                        "KEY_EXCHANGE ExchangeData is not a point on %s",
                        vtsm_dhe_name(d->conn.dhe));
        goto out;
    }
    VTSM_GUARD_GOTO(vtsm_random(rnd, sizeof(rnd)));
    dev_session_end(d);
    uint16_t rsp_sid = d->next_rsp_session_id--;
    if (d->next_rsp_session_id == 0)
        d->next_rsp_session_id = 0xFFFF;

    /* HeartbeatPeriod: zero unless both sides set HBEAT_CAP (DSP0274 KEY_EXCHANGE_RSP). */
    const uint8_t hb =
        (dev_rsp_caps(d) & d->conn.req_flags & SPDM_CAP_HBEAT) ? d->cfg.heartbeat_period : 0;
    VTSM_GUARD_GOTO(dev_wr_header(q, w, SPDM_KEY_EXCHANGE_RSP, hb, 0));
    VTSM_GUARD_GOTO(vtsm_wr_le16(w, rsp_sid));
    VTSM_GUARD_GOTO(vtsm_wr_u8(w, 0)); /* MutAuthRequested */
    VTSM_GUARD_GOTO(vtsm_wr_u8(w, 0)); /* ReqSlotIDParam */
    VTSM_GUARD_GOTO(vtsm_wr_bytes(w, rnd, sizeof(rnd)));
    VTSM_GUARD_GOTO(vtsm_wr_bytes(w, pub, dlen));
    if (sum_type) {
        uint8_t sum[VTSM_HASH_MAX];
        VTSM_GUARD_GOTO(dev_meas_summary(d, sum_type, sum));
        VTSM_GUARD_GOTO(vtsm_wr_bytes(w, sum, hlen));
    }
    uint8_t od[64];
    size_t od_len = sizeof(od);
    VTSM_GUARD_GOTO(vtsm_secmsg_opaque_select(secmsg, od, &od_len));
    VTSM_GUARD_GOTO(vtsm_wr_le16(w, (uint16_t)od_len));
    VTSM_GUARD_GOTO(vtsm_wr_bytes(w, od, od_len));

    /* TH up to the signature, then sign its hash. */
    vtsm_buf_reset(&s->th);
    VTSM_GUARD_GOTO(vtsm_buf_append(&s->th, d->conn.vca.data, d->conn.vca.len));
    VTSM_GUARD_GOTO(vtsm_buf_append(&s->th, sl->digest[dev_hash_index(d->conn.hash)], hlen));
    VTSM_GUARD_GOTO(vtsm_buf_append(&s->th, q->msg, req_len));
    VTSM_GUARD_GOTO(vtsm_buf_append(&s->th, w->p, w->len));
    uint8_t th[VTSM_HASH_MAX], sig[VTSM_SIG_MAX];
    size_t sig_len = vtsm_sig_size(d->conn.asym);
    VTSM_GUARD_GOTO(vtsm_hash(d->conn.hash, s->th.data, s->th.len, th));
    VTSM_GUARD_GOTO(vtsm_spdm_sign(sl->key, d->conn.asym, d->conn.hash, d->conn.version,
                                   VTSM_SPDM_CTX_KEY_EXCHANGE_RSP, th, sig));
    if (dev_fault(d, VTSM_DEV_FAULT_BAD_KEX_SIGNATURE))
        sig[sig_len / 2] ^= 0x01;
    VTSM_GUARD_GOTO(vtsm_wr_bytes(w, sig, sig_len));
    VTSM_GUARD_GOTO(vtsm_buf_append(&s->th, sig, sig_len));

    /* TH1 -> handshake secrets; ResponderVerifyData. */
    VTSM_GUARD_GOTO(vtsm_hash(d->conn.hash, s->th.data, s->th.len, th1));
    s->ks.secmsg_version = secmsg;
    VTSM_GUARD_GOTO(vtsm_spdm_ks_handshake(&s->ks, d->conn.version, d->conn.hash, secret,
                                           vtsm_dhe_secret_size(d->conn.dhe), th1));
    dev_secret_log(d, "spdm-dhe-secret", secret, vtsm_dhe_secret_size(d->conn.dhe));
    dev_secret_log_ks(d, &s->ks);
    uint8_t verify[VTSM_HASH_MAX];
    VTSM_GUARD_GOTO(vtsm_spdm_verify_data(&s->ks, false, th1, verify));
    VTSM_GUARD_GOTO(vtsm_wr_bytes(w, verify, hlen));
    VTSM_GUARD_GOTO(vtsm_buf_append(&s->th, verify, hlen));

    /* Update state last. */
    s->id = (uint32_t)req_sid | ((uint32_t)rsp_sid << 16);
    s->slot = slot;
    s->secmsg_version = secmsg;
    s->state = DEV_SESS_HANDSHAKE;
    VTSM_INFO("KEY_EXCHANGE: session 0x%08x handshake (slot %u, DSP0277 %u.%u)", s->id, slot,
              secmsg >> 12, (secmsg >> 8) & 0xF);
out:
    if (st != VTSM_OK && s->state == DEV_SESS_NONE)
        dev_session_end(d);
    vtsm_dhe_free(dhe);
    OPENSSL_cleanse(secret, sizeof(secret));
    OPENSSL_cleanse(th1, sizeof(th1));
    return st;
}
