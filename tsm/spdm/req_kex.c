/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DSP0274 "KEY_EXCHANGE request and KEY_EXCHANGE_RSP response messages" and
 * "FINISH request and FINISH_RSP response messages": a secure session authenticated by the
 * responder's certificate (no mutual authentication, handshake not in the clear).
 *
 * KEY_EXCHANGE: header (Param1 = MeasurementSummaryHashType, Param2 = SlotID),
 * ReqSessionID(2), SessionPolicy(1), Reserved(1), RandomData(32), ExchangeData(D),
 * OpaqueDataLength(2), OpaqueData.
 * KEY_EXCHANGE_RSP: header (Param1 = HeartbeatPeriod), RspSessionID(2),
 * MutAuthRequested(1), ReqSlotIDParam(1), RandomData(32), ExchangeData(D),
 * MeasurementSummaryHash(H or 0), OpaqueDataLength(2), OpaqueData, Signature(S),
 * ResponderVerifyData(H).
 * FINISH: header (Param1 = 0: no signature, Param2 = 0), RequesterVerifyData(H).
 * FINISH_RSP: header (ResponderVerifyData only with HANDSHAKE_IN_THE_CLEAR: absent here).
 *
 * Transcripts (DSP0274 "Transcript and transcript hash calculation rules", identical for
 * 1.2 and 1.3 without MULTI_KEY_CONN):
 *   signature  : Hash(VCA || Ct || KEY_EXCHANGE || KEY_EXCHANGE_RSP up to Signature)
 *   TH1        : Hash(VCA || Ct || KEY_EXCHANGE || KEY_EXCHANGE_RSP up to and incl. Signature)
 *                -> handshake secrets; ResponderVerifyData = HMAC(rsp finished key, TH1)
 *   RequesterVerifyData = HMAC(req finished key,
 *                Hash(VCA || Ct || KEY_EXCHANGE || KEY_EXCHANGE_RSP || FINISH header))
 *   TH2        : Hash(VCA || Ct || KEY_EXCHANGE || KEY_EXCHANGE_RSP || FINISH || FINISH_RSP)
 *                -> data secrets
 * with Ct = Hash(the slot's whole SPDM certificate chain) and VCA = message_a.
 * Session ID = ReqSessionID | RspSessionID << 16 (libspdm's composition; on the wire of a
 * secured message it is a little-endian u32, so ReqSessionID's bytes come first).
 */
#include <string.h>

#include <openssl/crypto.h>

#include "spdm_req_int.h"

#define KEX_FIXED       (VTSM__SPDM_HDR + 2 + 1 + 1 + SPDM_RANDOM_SIZE)
#define KEX_OPAQUE_CAP  64
#define KEX_RSP_SID_OFF VTSM__SPDM_HDR

/* DSP0277 versions we offer; the device selects one. */
static const uint16_t secmsg_versions[] = {VTSM_SECMSG_V10, VTSM_SECMSG_V11, VTSM_SECMSG_V12};

struct kex_state {
    struct vtsm_dhe *dhe;
    uint8_t secret[VTSM_DHE_SECRET_MAX];
    uint8_t th[VTSM_HASH_MAX];
    uint8_t verify[VTSM_HASH_MAX];
    struct vtsm_buf req;   /* KEY_EXCHANGE */
    struct vtsm_buf trans; /* VCA || Ct || message_k (|| message_f) */
};

static void kex_state_wipe(struct kex_state *k)
{
    vtsm_dhe_free(k->dhe);
    k->dhe = NULL;
    OPENSSL_cleanse(k->secret, sizeof(k->secret));
    OPENSSL_cleanse(k->th, sizeof(k->th));
    OPENSSL_cleanse(k->verify, sizeof(k->verify));
    vtsm_buf_wipe(&k->req);
    vtsm_buf_wipe(&k->trans);
}

static vtsm_status build_key_exchange(struct vtsm_spdm_req *r, struct kex_state *k, uint8_t slot,
                                      uint16_t req_sid)
{
    uint8_t pub[VTSM_DHE_PUB_MAX], random[SPDM_RANDOM_SIZE], opaque[KEX_OPAQUE_CAP];
    size_t pub_len = vtsm_dhe_pub_size(r->info.dhe), opaque_len = sizeof(opaque);
    struct vtsm_wr w;

    if (r->next_dhe && r->next_dhe_group == r->info.dhe) {
        k->dhe = r->next_dhe; /* made ahead (vtsm_spdm_req_give_dhe) */
        memcpy(pub, r->next_dhe_pub, pub_len);
        r->next_dhe = NULL;
        OPENSSL_cleanse(r->next_dhe_pub, sizeof(r->next_dhe_pub));
    } else {
        vtsm__req_drop_next_dhe(r);
        VTSM_GUARD(vtsm_dhe_generate(r->info.dhe, &k->dhe, pub));
    }
    VTSM_GUARD(vtsm_random(random, sizeof(random)));
    VTSM_GUARD(vtsm_secmsg_opaque_supported(secmsg_versions, VTSM_ARRAY_SIZE(secmsg_versions),
                                            opaque, &opaque_len));
    VTSM_GUARD(vtsm_buf_reserve(&k->req, KEX_FIXED + pub_len + 2 + opaque_len));
    w = vtsm_wr_init(k->req.data, k->req.cap);
    VTSM_GUARD(vtsm_wr_u8(&w, r->info.version));
    VTSM_GUARD(vtsm_wr_u8(&w, SPDM_KEY_EXCHANGE));
    VTSM_GUARD(vtsm_wr_u8(&w, r->opts.meas_summary_hash_type)); /* Param1 */
    VTSM_GUARD(vtsm_wr_u8(&w, slot));                           /* Param2 = SlotID */
    VTSM_GUARD(vtsm_wr_le16(&w, req_sid));
    VTSM_GUARD(vtsm_wr_u8(&w, r->opts.session_policy));
    VTSM_GUARD(vtsm_wr_u8(&w, 0)); /* Reserved */
    VTSM_GUARD(vtsm_wr_bytes(&w, random, sizeof(random)));
    VTSM_GUARD(vtsm_wr_bytes(&w, pub, pub_len));
    VTSM_GUARD(vtsm_wr_le16(&w, (uint16_t)opaque_len));
    VTSM_GUARD(vtsm_wr_bytes(&w, opaque, opaque_len));
    k->req.len = w.len;
    return VTSM_OK;
}

/* Parse and authenticate KEY_EXCHANGE_RSP; derive the handshake keys into r->ks. */
static vtsm_status process_key_exchange_rsp(struct vtsm_spdm_req *r, struct kex_state *k,
                                            uint8_t slot, struct vtsm_rd *rd, uint16_t *rsp_sid)
{
    static const char msg[] = "KEY_EXCHANGE_RSP";
    const size_t H = r->hash_len, D = vtsm_dhe_pub_size(r->info.dhe);
    const size_t S = vtsm_sig_size(r->info.asym);
    const size_t summary_len = r->opts.meas_summary_hash_type ? H : 0;
    uint8_t heartbeat, mut_auth, req_slot;
    uint16_t opaque_len, secmsg_version;
    const uint8_t *peer_pub, *summary, *opaque, *sig, *rsp_verify;
    size_t sig_off;
    vtsm_status st;

    VTSM__RD(vtsm_rd_skip(rd, 2), msg, "header");
    VTSM__RD(vtsm_rd_u8(rd, &heartbeat), msg, "Param1 (HeartbeatPeriod)");
    VTSM__RD(vtsm_rd_skip(rd, 1), msg, "Param2");
    VTSM__RD(vtsm_rd_le16(rd, rsp_sid), msg, "RspSessionID");
    VTSM__RD(vtsm_rd_u8(rd, &mut_auth), msg, "MutAuthRequested");
    VTSM__RD(vtsm_rd_u8(rd, &req_slot), msg, "ReqSlotIDParam");
    VTSM__RD(vtsm_rd_skip(rd, SPDM_RANDOM_SIZE), msg, "RandomData");
    VTSM__RD(vtsm_rd_ref(rd, &peer_pub, D), msg, "ExchangeData");
    VTSM__RD(vtsm_rd_ref(rd, &summary, summary_len), msg, "MeasurementSummaryHash");
    VTSM__RD(vtsm_rd_le16(rd, &opaque_len), msg, "OpaqueDataLength");
    VTSM_ENSURE(opaque_len <= VTSM__SPDM_OPAQUE_MAX, VTSM_E_PEER_MALFORMED,
                "KEY_EXCHANGE_RSP OpaqueDataLength %u exceeds 1024", opaque_len);
    VTSM__RD(vtsm_rd_ref(rd, &opaque, opaque_len), msg, "OpaqueData");
    sig_off = rd->off;
    VTSM__RD(vtsm_rd_ref(rd, &sig, S), msg, "Signature");
    VTSM__RD(vtsm_rd_ref(rd, &rsp_verify, H), msg, "ResponderVerifyData");
    VTSM_GUARD(vtsm__req_end(r, rd, msg));

    /* HeartbeatPeriod is zero unless both sides set HBEAT_CAP (we always do); MUT_AUTH_CAP
     * was not offered, so MutAuthRequested must be off. */
    VTSM_ENSURE(heartbeat == 0 || (r->info.rsp_caps & SPDM_CAP_HBEAT), VTSM_E_PEER_MALFORMED,
                "KEY_EXCHANGE_RSP HeartbeatPeriod %u without HBEAT_CAP", heartbeat);
    VTSM_ENSURE(mut_auth == 0, VTSM_E_PEER_MALFORMED,
                "KEY_EXCHANGE_RSP MutAuthRequested 0x%02x without MUT_AUTH_CAP", mut_auth);
    (void)req_slot; /* meaningful only with MutAuthRequested */

    /* DSP0277 version selection (OpaqueDataFmt1). */
    VTSM_GUARD(vtsm__opaque_check(opaque, opaque_len, msg));
    VTSM_GUARD(vtsm_secmsg_opaque_parse_select(opaque, opaque_len, &secmsg_version));
    bool offered = false;
    for (size_t i = 0; i < VTSM_ARRAY_SIZE(secmsg_versions); i++)
        offered |= (secmsg_version & 0xFF00) == secmsg_versions[i];
    VTSM_ENSURE(offered, VTSM_E_PEER_VERSION,
                "KEY_EXCHANGE_RSP selects secured message version 0x%04x, not offered",
                secmsg_version);

    /* Signature over Hash(VCA || Ct || KEY_EXCHANGE || KEY_EXCHANGE_RSP up to Signature),
     * checked while the DHE secret is derived (on a second thread where the crypto
     * executor has one); nothing is sent, and the secret is not used, unless both
     * succeed. */
    VTSM_GUARD(vtsm_buf_append(&k->trans, rd->p, sig_off));
    VTSM_GUARD(vtsm_hash(r->info.hash, k->trans.data, k->trans.len, k->th));
    struct vtsm_crypto_pending derive;
    VTSM_GUARD(vtsm_dhe_derive_start(k->dhe, peer_pub, D, k->secret, &derive));
    st = vtsm_spdm_verify(r->slot[slot].chain.leaf_key, r->info.asym, r->info.hash, r->info.version,
                          VTSM_SPDM_CTX_KEY_EXCHANGE_RSP, k->th, sig, S);
    if (st != VTSM_OK) {
        vtsm_crypto_wait(&derive);
        if (st == VTSM_E_NOMEM)
            return vtsm_fail(st, "KEY_EXCHANGE_RSP signature check");
        return vtsm_fail(VTSM_E_PEER_SIGNATURE,
                         "KEY_EXCHANGE_RSP signature does not verify with the slot %u leaf key",
                         slot);
    }
    VTSM_GUARD(vtsm_crypto_wait(&derive));
    /* Evidence: the signed bytes and the signature. */
    VTSM_GUARD(vtsm_buf_set(&r->kex_transcript, k->trans.data, k->trans.len));
    memcpy(r->kex_sig, sig, S);
    r->kex_sig_len = S;

    /* TH1 adds the Signature; handshake keys from the DHE secret and TH1. */
    VTSM_GUARD(vtsm_buf_append(&k->trans, sig, S));
    VTSM_GUARD(vtsm_hash(r->info.hash, k->trans.data, k->trans.len, k->th));
    vtsm_dhe_free(k->dhe);
    k->dhe = NULL;
    r->ks.secmsg_version = (uint16_t)(secmsg_version & 0xFF00);
    VTSM_GUARD(vtsm_spdm_ks_handshake(&r->ks, r->info.version, r->info.hash, k->secret,
                                      vtsm_dhe_secret_size(r->info.dhe), k->th));
    OPENSSL_cleanse(k->secret, sizeof(k->secret));

    /* ResponderVerifyData = HMAC(rsp finished key, TH1). */
    VTSM_GUARD(vtsm_spdm_verify_data(&r->ks, false, k->th, k->verify));
    VTSM_ENSURE(CRYPTO_memcmp(k->verify, rsp_verify, H) == 0, VTSM_E_PEER_HMAC,
                "KEY_EXCHANGE_RSP ResponderVerifyData does not match HMAC(finished_key, TH1)");
    VTSM_GUARD(vtsm_buf_append(&k->trans, rsp_verify, H));

    memcpy(r->meas_summary, summary, summary_len);
    r->meas_summary_len = summary_len;
    r->heartbeat_period = heartbeat;
    return VTSM_OK;
}

/* FINISH / FINISH_RSP inside the session with the handshake keys; then the data keys. */
static vtsm_status finish(struct vtsm_spdm_req *r, struct kex_state *k)
{
    static const char msg[] = "FINISH_RSP";
    const size_t H = r->hash_len;
    uint8_t req[VTSM__SPDM_HDR + 2 + VTSM_HASH_MAX];
    struct vtsm_rd rd;
    vtsm_status st = VTSM_OK;
    /* 1.4: OpaqueDataLength (here 0) follows the header, in FINISH and FINISH_RSP. */
    const size_t hdr = VTSM__SPDM_HDR + (r->info.version >= VTSM_SPDM_V14 ? 2 : 0);

    req[0] = r->info.version;
    req[1] = SPDM_FINISH;
    req[2] = 0; /* no Signature: no mutual authentication */
    req[3] = 0; /* ReqSlotID */
    req[4] = req[5] = 0;
    /* RequesterVerifyData = HMAC(req finished key, Hash(... || FINISH up to it)). */
    VTSM_GUARD_GOTO(vtsm_buf_append(&k->trans, req, hdr));
    VTSM_GUARD_GOTO(vtsm_hash(r->info.hash, k->trans.data, k->trans.len, k->th));
    VTSM_GUARD_GOTO(vtsm_spdm_verify_data(&r->ks, true, k->th, req + hdr));
    VTSM_GUARD_GOTO(vtsm_buf_append(&k->trans, req + hdr, H));

    VTSM_GUARD_GOTO(vtsm__req_xfer(r, true, req, hdr + H, SPDM_FINISH_RSP, &rd));
    VTSM__RD_GOTO(vtsm_rd_skip(&rd, VTSM__SPDM_HDR), msg, "header");
    if (r->info.version >= VTSM_SPDM_V14) {
        uint16_t opaque_len;
        VTSM__RD_GOTO(vtsm_rd_le16(&rd, &opaque_len), msg, "OpaqueDataLength");
        VTSM_ENSURE_GOTO(opaque_len <= VTSM__SPDM_OPAQUE_MAX, VTSM_E_PEER_MALFORMED,
                         "FINISH_RSP OpaqueDataLength %u > %u", opaque_len, VTSM__SPDM_OPAQUE_MAX);
        VTSM__RD_GOTO(vtsm_rd_skip(&rd, opaque_len), msg, "OpaqueData");
    }
    VTSM_GUARD_GOTO(vtsm__req_end(r, &rd, msg));

    /* TH2 = Hash(... || FINISH || FINISH_RSP) -> data keys. */
    VTSM_GUARD_GOTO(vtsm_buf_append(&k->trans, rd.p, rd.off));
    VTSM_GUARD_GOTO(vtsm_hash(r->info.hash, k->trans.data, k->trans.len, k->th));
    VTSM_GUARD_GOTO(vtsm_spdm_ks_data(&r->ks, k->th));
out:
    OPENSSL_cleanse(req, sizeof(req));
    return st;
}

vtsm_status vtsm_spdm_req_start_session(struct vtsm_spdm_req *r, uint8_t slot)
{
    vtsm_status st = VTSM_OK;
    struct kex_state k = {0};
    struct vtsm_rd rd;
    uint16_t req_sid = 0, rsp_sid = 0;

    VTSM_ENSURE(r != NULL, VTSM_E_INVAL, "start_session: NULL requester");
    VTSM_ENSURE(slot < SPDM_MAX_SLOTS, VTSM_E_INVAL, "certificate slot %u out of range 0..7", slot);
    VTSM_ENSURE(r->conn == VTSM__CONN_NEGOTIATED, VTSM_E_STATE,
                "KEY_EXCHANGE before the connection is negotiated (VCA)");
    VTSM_ENSURE(!r->keys_ready && !r->info.session_active, VTSM_E_STATE,
                "KEY_EXCHANGE while a session is active (one session at a time)");
    VTSM_ENSURE(r->slot[slot].chain_valid, VTSM_E_STATE,
                "KEY_EXCHANGE with slot %u needs its certificate chain (GET_CERTIFICATE)", slot);

    /* A fresh transcript and no stale evidence. */
    vtsm_buf_reset(&r->kex_transcript);
    r->kex_sig_len = 0;
    r->meas_summary_len = 0;

    while (req_sid == 0)
        VTSM_GUARD_GOTO(vtsm_random(&req_sid, sizeof(req_sid)));
    VTSM_GUARD_GOTO(build_key_exchange(r, &k, slot, req_sid));

    /* VCA || Ct || KEY_EXCHANGE */
    VTSM_GUARD_GOTO(vtsm_buf_append(&k.trans, r->vca.data, r->vca.len));
    VTSM_GUARD_GOTO(vtsm_buf_append(&k.trans, r->slot[slot].digest, r->hash_len));
    VTSM_GUARD_GOTO(vtsm_buf_append(&k.trans, k.req.data, k.req.len));

    VTSM_GUARD_GOTO(vtsm__req_xfer(r, false, k.req.data, k.req.len, SPDM_KEY_EXCHANGE_RSP, &rd));
    VTSM_GUARD_GOTO(process_key_exchange_rsp(r, &k, slot, &rd, &rsp_sid));

    /* Handshake keys are in place: FINISH travels in the session. */
    r->info.session_id = (uint32_t)req_sid | ((uint32_t)rsp_sid << 16);
    r->keys_ready = true;
    r->session_slot = slot;
    VTSM_GUARD_GOTO(finish(r, &k));
    r->info.session_active = true;
    r->info.heartbeat_period = r->heartbeat_period;
    r->info.key_updates = 0;
    st = VTSM_OK;
out:
    if (st != VTSM_OK) {
        /* No half session: keys, DHE private key and evidence of a failed handshake go. */
        vtsm__req_session_drop(r);
        vtsm_buf_reset(&r->kex_transcript);
        r->kex_sig_len = 0;
        r->meas_summary_len = 0;
    }
    kex_state_wipe(&k);
    return st;
}
