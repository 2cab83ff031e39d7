/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The requester object and the one path every SPDM exchange takes: DOE framing
 * (PCIe 6.30, types 1 and 2), DSP0277 secured messages, the generic response checks and
 * DSP0274 "ERROR response message" handling including ResponseNotReady / RESPOND_IF_READY.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "spdm_req_int.h"
#include "vtsm_doe.h"

/* ---- names for details ---- */

struct code_name {
    uint8_t code;
    const char *name;
};

static const struct code_name spdm_codes[] = {
    {SPDM_GET_DIGESTS, "GET_DIGESTS"},
    {SPDM_GET_CERTIFICATE, "GET_CERTIFICATE"},
    {SPDM_CHALLENGE, "CHALLENGE"},
    {SPDM_GET_VERSION, "GET_VERSION"},
    {SPDM_CHUNK_SEND, "CHUNK_SEND"},
    {SPDM_CHUNK_GET, "CHUNK_GET"},
    {SPDM_GET_MEASUREMENTS, "GET_MEASUREMENTS"},
    {SPDM_GET_CAPABILITIES, "GET_CAPABILITIES"},
    {SPDM_NEGOTIATE_ALGORITHMS, "NEGOTIATE_ALGORITHMS"},
    {SPDM_KEY_EXCHANGE, "KEY_EXCHANGE"},
    {SPDM_FINISH, "FINISH"},
    {SPDM_PSK_EXCHANGE, "PSK_EXCHANGE"},
    {SPDM_PSK_FINISH, "PSK_FINISH"},
    {SPDM_HEARTBEAT, "HEARTBEAT"},
    {SPDM_KEY_UPDATE, "KEY_UPDATE"},
    {SPDM_GET_ENCAPSULATED_REQUEST, "GET_ENCAPSULATED_REQUEST"},
    {SPDM_DELIVER_ENCAPSULATED_RESPONSE, "DELIVER_ENCAPSULATED_RESPONSE"},
    {SPDM_END_SESSION, "END_SESSION"},
    {SPDM_VENDOR_DEFINED_REQUEST, "VENDOR_DEFINED_REQUEST"},
    {SPDM_RESPOND_IF_READY, "RESPOND_IF_READY"},
    {SPDM_DIGESTS, "DIGESTS"},
    {SPDM_CERTIFICATE, "CERTIFICATE"},
    {SPDM_CHALLENGE_AUTH, "CHALLENGE_AUTH"},
    {SPDM_VERSION, "VERSION"},
    {SPDM_MEASUREMENTS, "MEASUREMENTS"},
    {SPDM_CAPABILITIES, "CAPABILITIES"},
    {SPDM_ALGORITHMS, "ALGORITHMS"},
    {SPDM_KEY_EXCHANGE_RSP, "KEY_EXCHANGE_RSP"},
    {SPDM_FINISH_RSP, "FINISH_RSP"},
    {SPDM_HEARTBEAT_ACK, "HEARTBEAT_ACK"},
    {SPDM_KEY_UPDATE_ACK, "KEY_UPDATE_ACK"},
    {SPDM_END_SESSION_ACK, "END_SESSION_ACK"},
    {SPDM_VENDOR_DEFINED_RESPONSE, "VENDOR_DEFINED_RESPONSE"},
    {SPDM_ERROR, "ERROR"},
};

static const struct code_name spdm_errors[] = {
    {SPDM_ERR_INVALID_REQUEST, "InvalidRequest"},
    {SPDM_ERR_BUSY, "Busy"},
    {SPDM_ERR_UNEXPECTED_REQUEST, "UnexpectedRequest"},
    {SPDM_ERR_UNSPECIFIED, "Unspecified"},
    {SPDM_ERR_DECRYPT_ERROR, "DecryptError"},
    {SPDM_ERR_UNSUPPORTED_REQUEST, "UnsupportedRequest"},
    {SPDM_ERR_REQUEST_IN_FLIGHT, "RequestInFlight"},
    {SPDM_ERR_INVALID_RESPONSE_CODE, "InvalidResponseCode"},
    {SPDM_ERR_SESSION_LIMIT_EXCEEDED, "SessionLimitExceeded"},
    {SPDM_ERR_SESSION_REQUIRED, "SessionRequired"},
    {SPDM_ERR_RESET_REQUIRED, "ResetRequired"},
    {SPDM_ERR_RESPONSE_TOO_LARGE, "ResponseTooLarge"},
    {SPDM_ERR_REQUEST_TOO_LARGE, "RequestTooLarge"},
    {SPDM_ERR_LARGE_RESPONSE, "LargeResponse"},
    {SPDM_ERR_MESSAGE_LOST, "MessageLost"},
    {SPDM_ERR_VERSION_MISMATCH, "VersionMismatch"},
    {SPDM_ERR_RESPONSE_NOT_READY, "ResponseNotReady"},
    {SPDM_ERR_REQUEST_RESYNCH, "RequestResynch"},
    {0x44, "OperationFailed"},   /* 1.3 */
    {0x45, "NoPendingRequests"}, /* 1.3 */
    {SPDM_ERR_VENDOR_DEFINED, "VendorDefined"},
};

static const char *lookup(const struct code_name *t, size_t n, uint8_t code, const char *dflt)
{
    for (size_t i = 0; i < n; i++)
        if (t[i].code == code)
            return t[i].name;
    return dflt;
}

const char *vtsm__spdm_code_name(uint8_t code)
{
    return lookup(spdm_codes, VTSM_ARRAY_SIZE(spdm_codes), code, "unknown");
}

const char *vtsm__spdm_error_name(uint8_t code)
{
    return lookup(spdm_errors, VTSM_ARRAY_SIZE(spdm_errors), code, "reserved");
}

/* ---- object ---- */

void vtsm_spdm_req_opts_default(struct vtsm_spdm_req_opts *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->min_version = VTSM_SPDM_V12;
    opts->max_version = VTSM_SPDM_V13;
    opts->base_asym = SPDM_ASYM_ECDSA_P384 | SPDM_ASYM_ECDSA_P256;
    opts->base_hash = SPDM_HASH_SHA384 | SPDM_HASH_SHA256;
    opts->dhe = SPDM_DHE_SECP384R1 | SPDM_DHE_SECP256R1;
    opts->aead = SPDM_AEAD_AES_256_GCM;
    opts->ct_exponent = 0;
    opts->data_transfer_size = 4096;
    opts->max_spdm_msg_size = 65536;
    opts->not_ready_retries = 8;
    opts->meas_summary_hash_type = VTSM_SPDM_MEAS_SUMMARY_ALL;
    opts->session_policy = VTSM__SESSION_POLICY_TERMINATION;
}

static vtsm_status opts_check(const struct vtsm_spdm_req_opts *o)
{
    const uint32_t asym_ok = SPDM_ASYM_ECDSA_P384 | SPDM_ASYM_ECDSA_P256;
    const uint32_t hash_ok = SPDM_HASH_SHA384 | SPDM_HASH_SHA256;
    const uint16_t dhe_ok = SPDM_DHE_SECP384R1 | SPDM_DHE_SECP256R1;

    VTSM_ENSURE(o->min_version >= VTSM_SPDM_V12 && o->max_version <= VTSM_SPDM_V14 &&
                    o->min_version <= o->max_version,
                VTSM_E_CONFIG, "SPDM versions 0x%02x..0x%02x outside 1.2..1.4", o->min_version,
                o->max_version);
    VTSM_ENSURE(o->base_asym != 0 && (o->base_asym & ~asym_ok) == 0, VTSM_E_CONFIG,
                "BaseAsymAlgo 0x%08x: only ECDSA P-256 / P-384 are supported", o->base_asym);
    VTSM_ENSURE(o->base_hash != 0 && (o->base_hash & ~hash_ok) == 0, VTSM_E_CONFIG,
                "BaseHashAlgo 0x%08x: only SHA-256 / SHA-384 are supported", o->base_hash);
    VTSM_ENSURE(o->dhe != 0 && (o->dhe & ~dhe_ok) == 0, VTSM_E_CONFIG,
                "DHE 0x%04x: only secp256r1 / secp384r1 are supported", o->dhe);
    VTSM_ENSURE(o->aead == SPDM_AEAD_AES_256_GCM, VTSM_E_CONFIG,
                "AEAD 0x%04x: only AES-256-GCM is supported", o->aead);
    VTSM_ENSURE(o->data_transfer_size >= VTSM__SPDM_MIN_DTS, VTSM_E_CONFIG,
                "DataTransferSize %u below MinDataTransferSize %u (DSP0274 GET_CAPABILITIES)",
                o->data_transfer_size, VTSM__SPDM_MIN_DTS);
    VTSM_ENSURE(o->data_transfer_size <= VTSM_DOE_MAX_BYTES - VTSM_DOE_HEADER_SIZE, VTSM_E_CONFIG,
                "DataTransferSize %u exceeds one DOE object", o->data_transfer_size);
    VTSM_ENSURE(o->max_spdm_msg_size >= o->data_transfer_size &&
                    o->max_spdm_msg_size <= VTSM__LARGE_MSG_MAX,
                VTSM_E_CONFIG, "MaxSPDMmsgSize %u outside DataTransferSize %u .. %u",
                o->max_spdm_msg_size, o->data_transfer_size, VTSM__LARGE_MSG_MAX);
    VTSM_ENSURE(o->not_ready_retries <= VTSM__NOT_READY_RETRIES_MAX, VTSM_E_CONFIG,
                "not_ready_retries %u exceeds %u", o->not_ready_retries,
                VTSM__NOT_READY_RETRIES_MAX);
    VTSM_ENSURE(o->meas_summary_hash_type == VTSM_SPDM_MEAS_SUMMARY_NONE ||
                    o->meas_summary_hash_type == VTSM_SPDM_MEAS_SUMMARY_ALL,
                VTSM_E_CONFIG, "MeasurementSummaryHashType 0x%02x: only none (0) or all (0xFF)",
                o->meas_summary_hash_type);
    /* 1.2 defines TerminationPolicy only; 1.3 EventAllPolicy needs EVENT_CAP we do not use. */
    VTSM_ENSURE((o->session_policy & ~VTSM__SESSION_POLICY_TERMINATION) == 0, VTSM_E_CONFIG,
                "SessionPolicy 0x%02x: only TerminationPolicy (bit 0) is supported",
                o->session_policy);
    return VTSM_OK;
}

vtsm_status vtsm_spdm_req_new(const struct vtsm_spdm_req_opts *opts,
                              const struct vtsm_spdm_transport *transport,
                              struct vtsm_spdm_req **out)
{
    struct vtsm_spdm_req_opts def;

    VTSM_ENSURE(transport != NULL && transport->exchange != NULL && out != NULL, VTSM_E_INVAL,
                "spdm_req_new: transport with exchange() and out are required");
    *out = NULL;
    if (opts == NULL) {
        vtsm_spdm_req_opts_default(&def);
        opts = &def;
    }
    VTSM_GUARD(opts_check(opts));

    struct vtsm_spdm_req *r = calloc(1, sizeof(*r));
    VTSM_ENSURE(r != NULL, VTSM_E_NOMEM, "spdm requester");
    r->opts = *opts;
    r->tp = *transport;
    *out = r;
    return VTSM_OK;
}

void vtsm__req_session_drop(struct vtsm_spdm_req *r)
{
    vtsm_spdm_ks_wipe(&r->ks);
    OPENSSL_cleanse(&r->ks, sizeof(r->ks));
    r->keys_ready = false;
    r->info.session_active = false;
    r->info.session_id = 0;
    r->heartbeat_period = 0;
    r->info.heartbeat_period = 0;
    r->info.key_updates = 0;
}

static void slot_clear(struct vtsm__slot *s)
{
    vtsm_buf_free(&s->raw);
    vtsm_certchain_free(&s->chain);
    memset(s, 0, sizeof(*s));
}

void vtsm__req_drop_next_dhe(struct vtsm_spdm_req *r)
{
    vtsm_dhe_free(r->next_dhe);
    r->next_dhe = NULL;
    OPENSSL_cleanse(r->next_dhe_pub, sizeof(r->next_dhe_pub));
}

void vtsm_spdm_req_give_dhe(struct vtsm_spdm_req *r, enum vtsm_dhe_group g, struct vtsm_dhe *dhe,
                            const uint8_t *pub_xy)
{
    if (r == NULL) {
        vtsm_dhe_free(dhe);
        return;
    }
    vtsm__req_drop_next_dhe(r);
    if (dhe == NULL)
        return;
    r->next_dhe = dhe;
    r->next_dhe_group = g;
    memcpy(r->next_dhe_pub, pub_xy, vtsm_dhe_pub_size(g));
}

void vtsm__req_conn_reset(struct vtsm_spdm_req *r)
{
    vtsm__req_session_drop(r);
    for (size_t i = 0; i < SPDM_MAX_SLOTS; i++)
        slot_clear(&r->slot[i]);
    vtsm_buf_reset(&r->vca);
    vtsm_buf_reset(&r->kex_transcript);
    r->kex_sig_len = 0;
    r->meas_summary_len = 0;
    vtsm_buf_reset(&r->msg_b);
    vtsm_buf_reset(&r->chal_transcript);
    r->chal_sig_len = 0;
    r->supported_slot_mask = 0;
    r->digests_fetched = false;
    r->conn = VTSM__CONN_NONE;
    r->asym_bit = r->hash_bit = 0;
    r->dhe_bit = r->aead_bit = r->req_asym_bit = r->ks_bit = 0;
    r->other_params = r->meas_spec = 0;
    r->hash_len = 0;
    memset(&r->info, 0, sizeof(r->info));
}

void vtsm_spdm_req_free(struct vtsm_spdm_req *r)
{
    if (r == NULL)
        return;
    vtsm__req_conn_reset(r);
    vtsm__req_drop_next_dhe(r);
    vtsm_buf_free(&r->vca);
    vtsm_buf_free(&r->kex_transcript);
    vtsm_buf_free(&r->msg_b);
    vtsm_buf_free(&r->chal_transcript);
    vtsm_buf_free(&r->tx);
    vtsm_buf_free(&r->rx);
    vtsm_buf_wipe(&r->seal);
    vtsm_buf_wipe(&r->rsp);
    OPENSSL_cleanse(r, sizeof(*r));
    free(r);
}

void vtsm_spdm_meas_free(struct vtsm_spdm_meas *m)
{
    if (m == NULL)
        return;
    free(m->blocks);
    vtsm_buf_free(&m->record);
    vtsm_buf_free(&m->transcript);
    memset(m, 0, sizeof(*m));
}

const struct vtsm_spdm_info *vtsm_spdm_req_info(const struct vtsm_spdm_req *r)
{
    return &r->info;
}

uint64_t vtsm_spdm_req_seq(const struct vtsm_spdm_req *r)
{
    if (!r || !r->keys_ready)
        return 0;
    return r->ks.req.seq > r->ks.rsp.seq ? r->ks.req.seq : r->ks.rsp.seq;
}

uint8_t vtsm_spdm_req_peer_error(const struct vtsm_spdm_req *r, uint8_t *data)
{
    if (data)
        *data = r->peer_error_data;
    return r->peer_error;
}

const struct vtsm_buf *vtsm_spdm_req_chain_raw(const struct vtsm_spdm_req *r, uint8_t slot)
{
    if (slot >= SPDM_MAX_SLOTS || !r->slot[slot].chain_valid)
        return NULL;
    return &r->slot[slot].raw;
}

const struct vtsm_certchain *vtsm_spdm_req_chain(const struct vtsm_spdm_req *r, uint8_t slot)
{
    if (slot >= SPDM_MAX_SLOTS || !r->slot[slot].chain_valid)
        return NULL;
    return &r->slot[slot].chain;
}

const struct vtsm_buf *vtsm_spdm_req_kex_transcript(const struct vtsm_spdm_req *r)
{
    return r->kex_sig_len ? &r->kex_transcript : NULL;
}

const uint8_t *vtsm_spdm_req_kex_signature(const struct vtsm_spdm_req *r, size_t *len)
{
    *len = r->kex_sig_len;
    return r->kex_sig_len ? r->kex_sig : NULL;
}

const struct vtsm_buf *vtsm_spdm_req_vca(const struct vtsm_spdm_req *r)
{
    return r->vca.len ? &r->vca : NULL;
}

const uint8_t *vtsm_spdm_req_slot_digest(const struct vtsm_spdm_req *r, uint8_t slot)
{
    if (slot >= SPDM_MAX_SLOTS || !r->slot[slot].digest_valid)
        return NULL;
    return r->slot[slot].digest;
}

const uint8_t *vtsm_spdm_req_meas_summary(const struct vtsm_spdm_req *r, size_t *len)
{
    *len = r->meas_summary_len;
    return r->meas_summary_len ? r->meas_summary : NULL;
}

/* ---- the exchange path ---- */

/* Frame, send, receive and unframe one message. On success r->rsp holds the SPDM
 * response (decrypted if secured) and r->rsp_slack the padding it may carry. */
void vtsm_spdm_req_set_trace(struct vtsm_spdm_req *r, vtsm_spdm_trace_fn fn, void *ctx)
{
    r->trace = fn;
    r->trace_ctx = ctx;
}

vtsm_status vtsm__req_xfer_once(struct vtsm_spdm_req *r, bool secured, const uint8_t *req,
                                size_t req_len)
{
    vtsm_status st;
    struct vtsm_doe_obj obj;
    const uint8_t want_type = secured ? VTSM_DOE_TYPE_SECURED_SPDM : VTSM_DOE_TYPE_SPDM;
    const char *what = vtsm__spdm_code_name(req[1]);

    vtsm_buf_reset(&r->rsp);
    if (!secured) {
        VTSM_GUARD(
            vtsm_doe_build_buf(VTSM_DOE_VENDOR_PCISIG, VTSM_DOE_TYPE_SPDM, req, req_len, &r->tx));
    } else {
        size_t n;
        /* DSP0277 secured message: SessionID, Length, AEAD(AppDataLength, SPDM message,
         * RandomData), MAC. Leave room for the sealer's random padding. */
        if (r->trace)
            r->trace(r->trace_ctx, true, r->info.session_id, req, req_len);
        vtsm_buf_reset(&r->seal);
        VTSM_GUARD_GOTO(vtsm_buf_reserve(&r->seal, req_len + VTSM_SECMSG_OVERHEAD + 64));
        n = r->seal.cap;
        VTSM_GUARD_GOTO(
            vtsm_secmsg_seal(&r->ks.req, r->info.session_id, req, req_len, r->seal.data, &n));
        r->seal.len = n;
        VTSM_GUARD_GOTO(vtsm_doe_build_buf(VTSM_DOE_VENDOR_PCISIG, VTSM_DOE_TYPE_SECURED_SPDM,
                                           r->seal.data, r->seal.len, &r->tx));
    }

    vtsm_buf_reset(&r->rx);
    st = r->tp.exchange(r->tp.ctx, r->tx.data, r->tx.len, &r->rx);
    if (st != VTSM_OK) {
        if (vtsm_err_status() != st)
            vtsm_fail(st, "DOE exchange for %s failed (%s)", what, vtsm_status_text(st));
        goto out;
    }

    VTSM_GUARD_GOTO(vtsm_doe_parse(r->rx.data, r->rx.len, &obj));
    if (secured && obj.vendor_id == VTSM_DOE_VENDOR_PCISIG && obj.type == VTSM_DOE_TYPE_SPDM &&
        obj.payload_len >= VTSM__SPDM_HDR && obj.payload[1] == SPDM_ERROR) {
        /* A device that cannot decrypt our message ends the session and says so in the
         * clear (it no longer trusts the keys). Unauthenticated, but the session is void
         * either way. */
        r->peer_error = obj.payload[2];
        r->peer_error_data = obj.payload[3];
        st = vtsm_fail(VTSM_E_PEER_ERROR,
                       "device answered ERROR(%s 0x%02x) in the clear to %s inside the session "
                       "(unauthenticated); session dropped",
                       vtsm__spdm_error_name(obj.payload[2]), obj.payload[2], what);
        goto out;
    }
    VTSM_ENSURE_GOTO(obj.vendor_id == VTSM_DOE_VENDOR_PCISIG && obj.type == want_type,
                     VTSM_E_DOE_HEADER,
                     "response to %s is DOE vendor 0x%04x type %u, expected vendor 0x%04x type "
                     "%u (%s)",
                     what, obj.vendor_id, obj.type, VTSM_DOE_VENDOR_PCISIG, want_type,
                     secured ? "secured CMA/SPDM" : "CMA/SPDM");

    if (!secured) {
        /* The DOE object is padded to a DW: the SPDM message is the payload less at most
         * 3 bytes, which the message parser pins down. */
        VTSM_ENSURE_GOTO(obj.payload_len <= (size_t)r->opts.data_transfer_size + 3,
                         VTSM_E_PEER_OVERSIZED,
                         "response to %s of %zu bytes exceeds our DataTransferSize %u", what,
                         obj.payload_len, r->opts.data_transfer_size);
        VTSM_GUARD_GOTO(vtsm_buf_set(&r->rsp, obj.payload, obj.payload_len));
        r->rsp_slack = 3;
    } else {
        struct vtsm_rd rd = vtsm_rd_init(obj.payload, obj.payload_len);
        uint32_t sid;
        uint16_t length;
        size_t total, n;

        VTSM__RD_GOTO(vtsm_rd_le32(&rd, &sid), "secured message", "SessionID");
        VTSM__RD_GOTO(vtsm_rd_le16(&rd, &length), "secured message", "Length");
        total = 6 + (size_t)length;
        VTSM__RD_GOTO(vtsm_rd_need(&rd, length), "secured message", "encrypted data");
        VTSM_ENSURE_GOTO(obj.payload_len - total < 4, VTSM_E_PEER_MALFORMED,
                         "secured response to %s carries %zu bytes after its Length (DSP0277)",
                         what, obj.payload_len - total);
        VTSM_GUARD_GOTO(vtsm_buf_reserve(&r->rsp, length));
        n = r->rsp.cap;
        VTSM_GUARD_GOTO(
            vtsm_secmsg_open(&r->ks.rsp, r->info.session_id, obj.payload, total, r->rsp.data, &n));
        r->rsp.len = n;
        r->rsp_slack = 0;
        if (r->trace)
            r->trace(r->trace_ctx, false, r->info.session_id, r->rsp.data, r->rsp.len);
        VTSM_ENSURE_GOTO(r->rsp.len <= r->opts.data_transfer_size, VTSM_E_PEER_OVERSIZED,
                         "response to %s of %zu bytes exceeds our DataTransferSize %u", what,
                         r->rsp.len, r->opts.data_transfer_size);
    }
    st = VTSM_OK;
out:
    if (st != VTSM_OK && secured)
        vtsm__req_session_drop(r);
    return st;
}

static bool not_ready_allowed(uint8_t req_code)
{
    /* VCA messages are answered at once (libspdm treats ResponseNotReady there as an error,
     * and the connection has no transcript yet to resume). */
    return req_code != SPDM_GET_VERSION && req_code != SPDM_GET_CAPABILITIES &&
           req_code != SPDM_NEGOTIATE_ALGORITHMS;
}

static void not_ready_sleep(uint8_t rdt_exponent)
{
    /* WT = 2^RDTExponent us (DSP0274 ResponseNotReady extended data). Capped for the
     * simulator: a device asking for seconds is waited on for at most 100 ms per retry. */
    uint64_t us = rdt_exponent >= 31 ? VTSM__NOT_READY_SLEEP_CAP_US : (1ull << rdt_exponent);
    if (us > VTSM__NOT_READY_SLEEP_CAP_US)
        us = VTSM__NOT_READY_SLEEP_CAP_US;
    struct timespec ts = {(time_t)(us / 1000000u), (long)(us % 1000000u) * 1000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

vtsm_status vtsm__req_xfer(struct vtsm_spdm_req *r, bool secured, const uint8_t *req,
                           size_t req_len, uint8_t expect, struct vtsm_rd *rsp)
{
    const uint8_t ver = req[0], req_code = req[1];
    const char *what = vtsm__spdm_code_name(req_code);
    const uint8_t *cur = req;
    size_t cur_len = req_len;
    uint8_t riy[VTSM__SPDM_HDR];
    unsigned tries = 0;

    r->peer_error = r->peer_error_data = 0;
    VTSM_ENSURE(req_len >= VTSM__SPDM_HDR, VTSM_E_INTERNAL, "request shorter than a header");
    VTSM_ENSURE(!secured || r->keys_ready, VTSM_E_STATE, "%s needs a secure session", what);
    /* A request larger than the device's DataTransferSize goes in chunks (or not at all). */
    const bool large =
        r->info.rsp_data_transfer_size != 0 && req_len > r->info.rsp_data_transfer_size;

    /* M1/M2 message B: the requests DSP0274 names restart it. */
    if (vtsm_spdm_resets_m1m2(req_code))
        vtsm_buf_reset(&r->msg_b);

    for (;;) {
        uint8_t v, code, p1, p2;
        vtsm_status st = large && cur == req ? vtsm__req_chunk_send(r, secured, cur, cur_len)
                                             : vtsm__req_xfer_once(r, secured, cur, cur_len);
        struct vtsm_rd rd;

        for (unsigned fetched = 0; st == VTSM_OK; fetched++) {
            rd = vtsm_rd_init(r->rsp.data, r->rsp.len);
            VTSM__RD(vtsm_rd_u8(&rd, &v), "response", "SPDMVersion");
            VTSM__RD(vtsm_rd_u8(&rd, &code), "response", "RequestResponseCode");
            VTSM__RD(vtsm_rd_u8(&rd, &p1), "response", "Param1");
            VTSM__RD(vtsm_rd_u8(&rd, &p2), "response", "Param2");
            VTSM_ENSURE(v == ver, VTSM_E_PEER_UNEXPECTED,
                        "device answered %s (0x%02x) to %s with SPDMVersion 0x%02x, expected "
                        "0x%02x",
                        vtsm__spdm_code_name(code), code, what, v, ver);
            if (code != SPDM_ERROR || p1 != SPDM_ERR_LARGE_RESPONSE)
                break;
            /* ERROR(LargeResponse): ExtendedErrorData = Handle; fetch it by CHUNK_GET. A
             * large response is never itself announced as large. */
            uint8_t handle;
            VTSM__RD(vtsm_rd_u8(&rd, &handle), "ERROR(LargeResponse)", "Handle");
            VTSM_ENSURE(fetched == 0, VTSM_E_PEER_MALFORMED,
                        "the large response to %s is ERROR(LargeResponse) again", what);
            st = vtsm__req_chunk_get(r, secured, ver, handle);
        }
        if (st != VTSM_OK) {
            if (!secured)
                vtsm_buf_reset(&r->msg_b);
            return st;
        }

        if (code == SPDM_ERROR) {
            if (p1 == SPDM_ERR_RESPONSE_NOT_READY && not_ready_allowed(req_code)) {
                uint8_t rdt_exp, rq_code, token, rdtm;
                /* ResponseNotReady ExtendedErrorData: RDTExponent, RequestCode, Token, RDTM */
                VTSM__RD(vtsm_rd_u8(&rd, &rdt_exp), "ERROR(ResponseNotReady)", "RDTExponent");
                VTSM__RD(vtsm_rd_u8(&rd, &rq_code), "ERROR(ResponseNotReady)", "RequestCode");
                VTSM__RD(vtsm_rd_u8(&rd, &token), "ERROR(ResponseNotReady)", "Token");
                VTSM__RD(vtsm_rd_u8(&rd, &rdtm), "ERROR(ResponseNotReady)", "RDTM");
                VTSM_ENSURE(rq_code == req_code, VTSM_E_PEER_MALFORMED,
                            "ERROR(ResponseNotReady) names RequestCode 0x%02x, we sent %s (0x%02x)",
                            rq_code, what, req_code);
                VTSM_ENSURE(tries < r->opts.not_ready_retries, VTSM_E_PEER_NOT_READY,
                            "device still answered ERROR(ResponseNotReady 0x42) to %s after %u "
                            "RESPOND_IF_READY attempts",
                            what, tries);
                tries++;
                not_ready_sleep(rdt_exp);
                /* RESPOND_IF_READY: Param1 = original RequestCode, Param2 = Token. */
                riy[0] = ver;
                riy[1] = SPDM_RESPOND_IF_READY;
                riy[2] = req_code;
                riy[3] = token;
                cur = riy;
                cur_len = sizeof(riy);
                continue;
            }
            if (p1 == SPDM_ERR_REQUEST_RESYNCH) {
                /* The device lost its state: everything negotiated is void. */
                vtsm__req_conn_reset(r);
            } else if (p1 == SPDM_ERR_DECRYPT_ERROR && secured) {
                /* DSP0277: the device terminates the session on DecryptError. */
                vtsm__req_session_drop(r);
            }
            r->peer_error = p1;
            r->peer_error_data = p2;
            if (!secured)
                vtsm_buf_reset(&r->msg_b);
            return vtsm_fail(VTSM_E_PEER_ERROR,
                             "device answered ERROR(%s 0x%02x, data 0x%02x) to %s",
                             vtsm__spdm_error_name(p1), p1, p2, what);
        }
        VTSM_ENSURE(code == expect, VTSM_E_PEER_UNEXPECTED,
                    "device answered %s (0x%02x) to %s, expected %s (0x%02x)",
                    vtsm__spdm_code_name(code), code, what, vtsm__spdm_code_name(expect), expect);
        *rsp = vtsm_rd_init(r->rsp.data, r->rsp.len);
        return VTSM_OK;
    }
}

vtsm_status vtsm__req_end(const struct vtsm_spdm_req *r, const struct vtsm_rd *rd, const char *what)
{
    size_t left = vtsm_rd_left(rd);

    VTSM_ENSURE(left <= r->rsp_slack, VTSM_E_PEER_MALFORMED,
                "%s carries %zu bytes beyond its fields", what, left);
    for (size_t i = 0; i < left; i++)
        VTSM_ENSURE(rd->p[rd->off + i] == 0, VTSM_E_PEER_MALFORMED, "%s DOE padding is not zero",
                    what);
    return VTSM_OK;
}

vtsm_status vtsm__rd_opaque_and_context(struct vtsm_rd *rd, const char *msg, const char *req,
                                        const uint8_t req_ctx[SPDM_REQUESTER_CONTEXT_SIZE])
{
    uint16_t opaque_len;
    const uint8_t *opaque, *echo;
    VTSM__RD(vtsm_rd_le16(rd, &opaque_len), msg, "OpaqueDataLength");
    VTSM_ENSURE(opaque_len <= VTSM__SPDM_OPAQUE_MAX, VTSM_E_PEER_MALFORMED,
                "%s OpaqueDataLength %u exceeds 1024", msg, opaque_len);
    VTSM__RD(vtsm_rd_ref(rd, &opaque, opaque_len), msg, "OpaqueData");
    VTSM_GUARD(vtsm__opaque_check(opaque, opaque_len, msg));
    if (req_ctx) {
        VTSM__RD(vtsm_rd_ref(rd, &echo, SPDM_REQUESTER_CONTEXT_SIZE), msg, "RequesterContext");
        VTSM_ENSURE(CRYPTO_memcmp(echo, req_ctx, SPDM_REQUESTER_CONTEXT_SIZE) == 0,
                    VTSM_E_PEER_NONCE, "%s RequesterContext differs from %s", msg, req);
    }
    return VTSM_OK;
}

vtsm_status vtsm__opaque_check(const uint8_t *p, size_t len, const char *what)
{
    struct vtsm_rd rd = vtsm_rd_init(p, len);
    uint8_t total;

    if (len == 0)
        return VTSM_OK;
    VTSM_ENSURE(len % 4 == 0, VTSM_E_PEER_MALFORMED,
                "%s OpaqueData of %zu bytes is not 4-byte aligned (OpaqueDataFmt1)", what, len);
    VTSM__RD(vtsm_rd_u8(&rd, &total), what, "OpaqueData TotalElements");
    VTSM__RD(vtsm_rd_skip(&rd, 3), what, "OpaqueData Reserved");
    VTSM_ENSURE(total >= 1, VTSM_E_PEER_MALFORMED, "%s OpaqueData has TotalElements 0", what);
    for (unsigned i = 0; i < total; i++) {
        uint8_t id, vlen;
        uint16_t dlen;
        size_t start = rd.off, elen;
        const uint8_t *pad;

        VTSM__RD(vtsm_rd_u8(&rd, &id), what, "OpaqueElement ID");
        VTSM__RD(vtsm_rd_u8(&rd, &vlen), what, "OpaqueElement VendorLen");
        VTSM__RD(vtsm_rd_skip(&rd, vlen), what, "OpaqueElement VendorID");
        VTSM__RD(vtsm_rd_le16(&rd, &dlen), what, "OpaqueElementDataLen");
        VTSM__RD(vtsm_rd_skip(&rd, dlen), what, "OpaqueElementData");
        elen = rd.off - start;
        if (elen % 4) {
            size_t padn = 4 - elen % 4;
            VTSM__RD(vtsm_rd_ref(&rd, &pad, padn), what, "OpaqueElement padding");
            for (size_t k = 0; k < padn; k++)
                VTSM_ENSURE(pad[k] == 0, VTSM_E_PEER_MALFORMED,
                            "%s OpaqueElement padding is not zero", what);
        }
    }
    VTSM_ENSURE(vtsm_rd_left(&rd) == 0, VTSM_E_PEER_MALFORMED,
                "%s OpaqueData has %zu bytes after its %u elements", what, vtsm_rd_left(&rd),
                total);
    return VTSM_OK;
}
