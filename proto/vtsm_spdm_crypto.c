/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * SPDM cryptography: DSP0274 1.2/1.3 signing format and key schedule, DSP0277 secured
 * messages over PCI DOE, and the DSP0277 version-negotiation opaque data.
 */
#include "vtsm_spdm_crypto.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "vtsm_buf.h"
#include "vtsm_guard.h"

/* ---- DSP0274 signing format ---- */

#define SIGN_PREFIX_LEN   16 /* "dmtf-spdm-v1.X.*" */
#define SIGN_PREFIX_COUNT 4  /* combined_spdm_prefix = prefix repeated 4 times */
#define SIGN_CONTEXT_LEN  36 /* zero pad + context */
#define SIGN_HEADER_LEN   (SIGN_PREFIX_LEN * SIGN_PREFIX_COUNT + SIGN_CONTEXT_LEN) /* 100 */

static bool spdm_version_ok(uint8_t version)
{
    return version >= VTSM_SPDM_V10 && (version >> 4) < 10 && (version & 0xF) < 10;
}

vtsm_status vtsm_spdm_signing_msg(uint8_t version, const char *context, const uint8_t *hash,
                                  size_t hash_len, uint8_t *out, size_t *out_len)
{
    size_t ctx_len;
    uint8_t *p = out;

    VTSM_ENSURE(hash != NULL && out != NULL && out_len != NULL, VTSM_E_INVAL,
                "signing message: NULL");
    VTSM_ENSURE(hash_len > 0 && hash_len <= VTSM_HASH_MAX, VTSM_E_INVAL,
                "signing message: hash of %zu bytes", hash_len);
    VTSM_ENSURE(spdm_version_ok(version), VTSM_E_INVAL, "SPDM version 0x%02x", version);
    if (version < VTSM_SPDM_V12) {
        /* SPDM 1.0/1.1 sign the transcript hash itself. */
        memmove(out, hash, hash_len);
        *out_len = hash_len;
        return VTSM_OK;
    }
    VTSM_ENSURE(context != NULL, VTSM_E_INVAL, "signing message: NULL context");
    ctx_len = strlen(context);
    VTSM_ENSURE(ctx_len <= SIGN_CONTEXT_LEN, VTSM_E_INVAL,
                "signing context \"%s\" longer than %d bytes", context, SIGN_CONTEXT_LEN);
    /* hash may alias out beyond the header; move it first. */
    memmove(out + SIGN_HEADER_LEN, hash, hash_len);
    /* DSP0274 1.2 "Signature generation": combined_spdm_prefix. */
    for (int i = 0; i < SIGN_PREFIX_COUNT; i++) {
        memcpy(p, "dmtf-spdm-v1.2.*", SIGN_PREFIX_LEN);
        p[11] = (uint8_t)('0' + (version >> 4));
        p[13] = (uint8_t)('0' + (version & 0xF));
        p += SIGN_PREFIX_LEN;
    }
    /* zero_pad, then the context string ending at byte 100. */
    memset(p, 0, SIGN_CONTEXT_LEN - ctx_len);
    memcpy(p + SIGN_CONTEXT_LEN - ctx_len, context, ctx_len);
    *out_len = SIGN_HEADER_LEN + hash_len;
    return VTSM_OK;
}

vtsm_status vtsm_spdm_sign(EVP_PKEY *key, enum vtsm_asym_alg asym, enum vtsm_hash_alg hash,
                           uint8_t version, const char *context, const uint8_t *th, uint8_t *sig)
{
    uint8_t m[SIGN_HEADER_LEN + VTSM_HASH_MAX];
    size_t m_len = 0, h = vtsm_hash_size(hash);

    VTSM_ENSURE(h != 0, VTSM_E_UNSUPPORTED, "hash algorithm %d", (int)hash);
    VTSM_ENSURE(version >= VTSM_SPDM_V12, VTSM_E_UNSUPPORTED,
                "SPDM signing below 1.2 is not supported (version 0x%02x)", version);
    VTSM_GUARD(vtsm_spdm_signing_msg(version, context, th, h, m, &m_len));
    return vtsm_ecdsa_sign(key, asym, hash, m, m_len, sig);
}

vtsm_status vtsm_spdm_verify(EVP_PKEY *pub, enum vtsm_asym_alg asym, enum vtsm_hash_alg hash,
                             uint8_t version, const char *context, const uint8_t *th,
                             const uint8_t *sig, size_t sig_len)
{
    uint8_t m[SIGN_HEADER_LEN + VTSM_HASH_MAX];
    size_t m_len = 0, h = vtsm_hash_size(hash);
    vtsm_status st;

    VTSM_ENSURE(h != 0, VTSM_E_UNSUPPORTED, "hash algorithm %d", (int)hash);
    VTSM_ENSURE(version >= VTSM_SPDM_V12, VTSM_E_UNSUPPORTED,
                "SPDM signatures below 1.2 are not supported (version 0x%02x)", version);
    VTSM_GUARD(vtsm_spdm_signing_msg(version, context, th, h, m, &m_len));
    st = vtsm_ecdsa_verify(pub, asym, hash, m, m_len, sig, sig_len);
    if (st == VTSM_E_PEER_SIGNATURE)
        return vtsm_fail(st, "SPDM %u.%u \"%s\" signature does not verify", version >> 4,
                         version & 0xF, context);
    return st;
}

/* ---- DSP0274 key schedule ---- */

#define BIN_VERSION_LEN 8 /* "spdm1.x " */
#define BIN_MAX         (2 + BIN_VERSION_LEN + 16 + VTSM_HASH_MAX)

vtsm_status vtsm_spdm_bin_concat(uint8_t version, uint16_t length, const char *label,
                                 const uint8_t *context, size_t ctx_len, uint8_t *out,
                                 size_t *out_len)
{
    size_t label_len;
    struct vtsm_wr w;
    char vlabel[BIN_VERSION_LEN] = {'s', 'p', 'd', 'm', 'x', '.', 'y', ' '};

    VTSM_ENSURE(label != NULL && out != NULL && out_len != NULL &&
                    (context != NULL || ctx_len == 0),
                VTSM_E_INVAL, "bin_concat: NULL");
    VTSM_ENSURE(spdm_version_ok(version), VTSM_E_INVAL, "SPDM version 0x%02x", version);
    label_len = strlen(label);
    vlabel[4] = (char)('0' + (version >> 4));
    vlabel[6] = (char)('0' + (version & 0xF));
    w = vtsm_wr_init(out, 2 + BIN_VERSION_LEN + label_len + ctx_len);
    VTSM_GUARD(vtsm_wr_le16(&w, length));
    VTSM_GUARD(vtsm_wr_bytes(&w, vlabel, BIN_VERSION_LEN));
    VTSM_GUARD(vtsm_wr_bytes(&w, label, label_len));
    VTSM_GUARD(vtsm_wr_bytes(&w, context, ctx_len));
    *out_len = w.len;
    return VTSM_OK;
}

/* HKDF-Expand(secret, BinConcat(out_len, version, label, context), out_len). */
static vtsm_status ks_expand(const struct vtsm_spdm_ks *ks, const uint8_t *secret,
                             const char *label, const uint8_t *context, uint8_t *out,
                             size_t out_len)
{
    uint8_t info[BIN_MAX];
    size_t info_len = 0;

    VTSM_GUARD(vtsm_spdm_bin_concat(ks->version, (uint16_t)out_len, label, context,
                                    context ? ks->hash_len : 0, info, &info_len));
    return vtsm_hkdf_expand(ks->hash, secret, ks->hash_len, info, info_len, out, out_len);
}

/* EncryptionKey / IV of one direction from its secret ("key", "iv"; no context). */
static vtsm_status ks_dir_keys(const struct vtsm_spdm_ks *ks, struct vtsm_spdm_dir *d)
{
    VTSM_GUARD(ks_expand(ks, d->secret, "key", NULL, d->key, VTSM_AEAD_KEY_SIZE));
    VTSM_GUARD(ks_expand(ks, d->secret, "iv", NULL, d->iv, VTSM_AEAD_IV_SIZE));
    d->seq = 0;
    d->secmsg_version = ks->secmsg_version;
    return VTSM_OK;
}

static bool secmsg_version_ok(uint16_t v)
{
    v &= 0xFF00;
    return v == VTSM_SECMSG_V10 || v == VTSM_SECMSG_V11 || v == VTSM_SECMSG_V12;
}

vtsm_status vtsm_spdm_ks_set_secmsg_version(struct vtsm_spdm_ks *ks, uint16_t secmsg_version)
{
    VTSM_ENSURE(ks != NULL, VTSM_E_INVAL, "ks: NULL");
    VTSM_ENSURE(secmsg_version_ok(secmsg_version), VTSM_E_INVAL, "secured message version 0x%04x",
                secmsg_version);
    ks->secmsg_version = secmsg_version & 0xFF00;
    ks->req.secmsg_version = ks->secmsg_version;
    ks->rsp.secmsg_version = ks->secmsg_version;
    return VTSM_OK;
}

vtsm_status vtsm_spdm_ks_handshake(struct vtsm_spdm_ks *ks, uint8_t version,
                                   enum vtsm_hash_alg hash, const uint8_t *dhe_secret,
                                   size_t dhe_len, const uint8_t *th1)
{
    vtsm_status st = VTSM_OK;
    uint8_t salt0[VTSM_HASH_MAX];
    uint16_t smv;
    bool req_be, rsp_be;
    size_t h = vtsm_hash_size(hash);

    VTSM_ENSURE(ks != NULL && dhe_secret != NULL && th1 != NULL, VTSM_E_INVAL,
                "ks_handshake: NULL");
    VTSM_ENSURE(h != 0, VTSM_E_UNSUPPORTED, "hash algorithm %d", (int)hash);
    VTSM_ENSURE(version >= VTSM_SPDM_V11 && version <= VTSM_SPDM_V14, VTSM_E_INVAL,
                "key schedule for SPDM version 0x%02x", version);
    VTSM_ENSURE(dhe_len > 0 && dhe_len <= VTSM_DHE_SECRET_MAX, VTSM_E_INVAL,
                "DHE secret of %zu bytes", dhe_len);
    smv = ks->secmsg_version ? ks->secmsg_version : VTSM_SECMSG_V12;
    VTSM_ENSURE(secmsg_version_ok(smv), VTSM_E_INVAL, "secured message version 0x%04x", smv);
    req_be = ks->req.seq_be;
    rsp_be = ks->rsp.seq_be;
    vtsm_spdm_ks_wipe(ks);
    ks->version = version;
    ks->hash = hash;
    ks->hash_len = h;
    ks->secmsg_version = smv & 0xFF00;
    ks->req.seq_be = req_be;
    ks->rsp.seq_be = rsp_be;

    /* HandshakeSecret = HKDF-Extract(Salt_0 = zeros(H), IKM = DHE secret). */
    memset(salt0, 0, h);
    VTSM_GUARD_GOTO(vtsm_hkdf_extract(hash, salt0, h, dhe_secret, dhe_len, ks->handshake_secret));
    /* request/response_handshake_secret = HKDF-Expand(HS, bin_str1/2 with TH1, H). */
    VTSM_GUARD_GOTO(ks_expand(ks, ks->handshake_secret, "req hs data", th1, ks->req.secret, h));
    VTSM_GUARD_GOTO(ks_expand(ks, ks->handshake_secret, "rsp hs data", th1, ks->rsp.secret, h));
    /* finished_key = HKDF-Expand(handshake secret of that side, bin_str7, H). */
    VTSM_GUARD_GOTO(ks_expand(ks, ks->req.secret, "finished", NULL, ks->req_finished_key, h));
    VTSM_GUARD_GOTO(ks_expand(ks, ks->rsp.secret, "finished", NULL, ks->rsp_finished_key, h));
    VTSM_GUARD_GOTO(ks_dir_keys(ks, &ks->req));
    VTSM_GUARD_GOTO(ks_dir_keys(ks, &ks->rsp));
out:
    if (st != VTSM_OK)
        vtsm_spdm_ks_wipe(ks);
    return st;
}

vtsm_status vtsm_spdm_ks_data(struct vtsm_spdm_ks *ks, const uint8_t *th2)
{
    vtsm_status st = VTSM_OK;
    uint8_t salt1[VTSM_HASH_MAX];
    uint8_t zeros[VTSM_HASH_MAX];
    size_t h;

    VTSM_ENSURE(ks != NULL && th2 != NULL, VTSM_E_INVAL, "ks_data: NULL");
    h = ks->hash_len;
    VTSM_ENSURE(h != 0 && h == vtsm_hash_size(ks->hash), VTSM_E_STATE,
                "ks_data before ks_handshake");
    memset(zeros, 0, sizeof(zeros));
    /* Salt_1 = HKDF-Expand(HandshakeSecret, bin_str0 "derived", H). */
    VTSM_GUARD_GOTO(ks_expand(ks, ks->handshake_secret, "derived", NULL, salt1, h));
    /* MasterSecret = HKDF-Extract(Salt_1, IKM = zeros(H)). */
    VTSM_GUARD_GOTO(vtsm_hkdf_extract(ks->hash, salt1, h, zeros, h, ks->master_secret));
    /* request/response_data_secret, export_master_secret with TH2 as context. */
    VTSM_GUARD_GOTO(ks_expand(ks, ks->master_secret, "req app data", th2, ks->req.secret, h));
    VTSM_GUARD_GOTO(ks_expand(ks, ks->master_secret, "rsp app data", th2, ks->rsp.secret, h));
    VTSM_GUARD_GOTO(
        ks_expand(ks, ks->master_secret, "exp master", th2, ks->export_master_secret, h));
    VTSM_GUARD_GOTO(ks_dir_keys(ks, &ks->req));
    VTSM_GUARD_GOTO(ks_dir_keys(ks, &ks->rsp));
    /* The handshake phase is over: its secrets must not outlive it. */
    OPENSSL_cleanse(ks->handshake_secret, sizeof(ks->handshake_secret));
    OPENSSL_cleanse(ks->req_finished_key, sizeof(ks->req_finished_key));
    OPENSSL_cleanse(ks->rsp_finished_key, sizeof(ks->rsp_finished_key));
out:
    OPENSSL_cleanse(salt1, sizeof(salt1));
    if (st != VTSM_OK)
        vtsm_spdm_ks_wipe(ks);
    return st;
}

vtsm_status vtsm_spdm_ks_update(struct vtsm_spdm_ks *ks, bool requester_dir)
{
    vtsm_status st = VTSM_OK;
    struct vtsm_spdm_dir *d;
    uint8_t next[VTSM_HASH_MAX];

    VTSM_ENSURE(ks != NULL, VTSM_E_INVAL, "ks_update: NULL");
    VTSM_ENSURE(ks->hash_len != 0, VTSM_E_STATE, "ks_update without a session");
    d = requester_dir ? &ks->req : &ks->rsp;
    /* DSP0274 KEY_UPDATE: new data secret = HKDF-Expand(current, bin_str9 "traffic upd", H). */
    VTSM_GUARD_GOTO(ks_expand(ks, d->secret, "traffic upd", NULL, next, ks->hash_len));
    memcpy(d->secret, next, ks->hash_len);
    VTSM_GUARD_GOTO(ks_dir_keys(ks, d));
out:
    OPENSSL_cleanse(next, sizeof(next));
    return st;
}

vtsm_status vtsm_spdm_verify_data(const struct vtsm_spdm_ks *ks, bool requester, const uint8_t *th,
                                  uint8_t *out)
{
    VTSM_ENSURE(ks != NULL && th != NULL && out != NULL, VTSM_E_INVAL, "verify_data: NULL");
    VTSM_ENSURE(ks->hash_len != 0, VTSM_E_STATE, "verify_data without handshake keys");
    return vtsm_hmac(ks->hash, requester ? ks->req_finished_key : ks->rsp_finished_key,
                     ks->hash_len, th, ks->hash_len, out);
}

void vtsm_spdm_ks_wipe(struct vtsm_spdm_ks *ks)
{
    if (ks != NULL)
        OPENSSL_cleanse(ks, sizeof(*ks));
}

/* ---- DSP0277 secured messages over PCI DOE ---- */

#define SECMSG_HDR  6 /* SessionID (4) + Length (2); no sequence number for PCI DOE */
#define DOE_PAD_MAX 3

/* Per-message IV: base IV XOR the sequence number (rule in struct vtsm_spdm_dir). */
static void secmsg_iv(const struct vtsm_spdm_dir *d, uint64_t seq, uint8_t iv[VTSM_AEAD_IV_SIZE])
{
    uint16_t v = d->secmsg_version ? (uint16_t)(d->secmsg_version & 0xFF00) : VTSM_SECMSG_V12;

    memcpy(iv, d->iv, VTSM_AEAD_IV_SIZE);
    if (v < VTSM_SECMSG_V12 && d->seq_be) {
        for (int i = 0; i < 8; i++)
            iv[VTSM_AEAD_IV_SIZE - 1 - i] ^= (uint8_t)(seq >> (8 * i));
    } else {
        for (int i = 0; i < 8; i++)
            iv[i] ^= (uint8_t)(seq >> (8 * i));
    }
}

vtsm_status vtsm_secmsg_seal(struct vtsm_spdm_dir *d, uint32_t session_id, const uint8_t *app,
                             size_t app_len, uint8_t *out, size_t *out_len)
{
    vtsm_status st;
    uint8_t iv[VTSM_AEAD_IV_SIZE];
    size_t need = app_len + VTSM_SECMSG_OVERHEAD;
    size_t enc_len = 2 + app_len;

    VTSM_ENSURE(d != NULL && out != NULL && out_len != NULL && (app != NULL || app_len == 0),
                VTSM_E_INVAL, "secmsg seal: NULL");
    VTSM_ENSURE(app_len <= VTSM_SECMSG_APP_MAX, VTSM_E_INVAL,
                "secured message payload of %zu bytes exceeds %d", app_len, VTSM_SECMSG_APP_MAX);
    if (*out_len < need) {
        *out_len = need;
        return vtsm_fail(VTSM_E_TOO_SMALL, "secured message needs %zu bytes", need);
    }
    /* DSP0277: the sequence number must never wrap (keys must be updated first). */
    VTSM_ENSURE(d->seq != UINT64_MAX, VTSM_E_LIMIT, "secured message sequence number exhausted");
    /* Plaintext = ApplicationDataLength | ApplicationData (PCI DOE adds no RandomData). */
    if (app_len)
        memmove(out + SECMSG_HDR + 2, app, app_len);
    vtsm_put_le32(out, session_id);
    vtsm_put_le16(out + 4, (uint16_t)(enc_len + VTSM_AEAD_TAG_SIZE));
    vtsm_put_le16(out + SECMSG_HDR, (uint16_t)app_len);
    secmsg_iv(d, d->seq, iv);
    st = vtsm_aead_seal(d->key, iv, out, SECMSG_HDR, out + SECMSG_HDR, enc_len, out + SECMSG_HDR,
                        out + SECMSG_HDR + enc_len);
    if (st != VTSM_OK) {
        OPENSSL_cleanse(out, need);
        return st;
    }
    d->seq++;
    *out_len = need;
    return VTSM_OK;
}

vtsm_status vtsm_secmsg_open(struct vtsm_spdm_dir *d, uint32_t session_id, const uint8_t *in,
                             size_t in_len, uint8_t *app, size_t *app_len)
{
    vtsm_status st = VTSM_OK;
    struct vtsm_rd r;
    uint32_t sid = 0;
    uint16_t length = 0, plain_len;
    const uint8_t *enc = NULL, *tag = NULL;
    size_t enc_len;
    uint8_t iv[VTSM_AEAD_IV_SIZE];
    uint8_t *pt = NULL;

    VTSM_ENSURE(d != NULL && in != NULL && app_len != NULL && (app != NULL || *app_len == 0),
                VTSM_E_INVAL, "secmsg open: NULL");
    r = vtsm_rd_init(in, in_len);
    /* Header -> fixed part -> variable part, each bounded by the reader. */
    VTSM_ENSURE(vtsm_rd_le32(&r, &sid) == VTSM_OK && vtsm_rd_le16(&r, &length) == VTSM_OK,
                VTSM_E_PEER_MALFORMED, "secured message shorter than its %d-byte header",
                SECMSG_HDR);
    VTSM_ENSURE(sid == session_id, VTSM_E_PEER_SESSION_ID,
                "secured message for session 0x%08x, expected 0x%08x", sid, session_id);
    VTSM_ENSURE(length >= 2 + VTSM_AEAD_TAG_SIZE, VTSM_E_PEER_MALFORMED,
                "secured message Length %u below ApplicationDataLength + MAC", length);
    enc_len = (size_t)length - VTSM_AEAD_TAG_SIZE;
    VTSM_ENSURE(vtsm_rd_ref(&r, &enc, enc_len) == VTSM_OK &&
                    vtsm_rd_ref(&r, &tag, VTSM_AEAD_TAG_SIZE) == VTSM_OK,
                VTSM_E_PEER_MALFORMED, "secured message Length %u exceeds the %zu bytes present",
                length, in_len - SECMSG_HDR);
    VTSM_ENSURE(vtsm_rd_left(&r) <= DOE_PAD_MAX, VTSM_E_PEER_MALFORMED,
                "%zu bytes after the secured message", vtsm_rd_left(&r));
    VTSM_ENSURE(d->seq != UINT64_MAX, VTSM_E_LIMIT, "secured message sequence number exhausted");

    pt = OPENSSL_malloc(enc_len);
    VTSM_ENSURE(pt != NULL, VTSM_E_NOMEM, "secured message plaintext");
    secmsg_iv(d, d->seq, iv);
    st = vtsm_aead_open(d->key, iv, in, SECMSG_HDR, enc, enc_len, tag, pt);
    if (st == VTSM_E_PEER_DECRYPT) {
        st = vtsm_fail(VTSM_E_PEER_DECRYPT,
                       "secured message MAC does not verify (session 0x%08x, seq %llu)", session_id,
                       (unsigned long long)d->seq);
        goto out;
    }
    VTSM_GUARD_GOTO(st);
    plain_len = vtsm_get_le16(pt);
    VTSM_ENSURE_GOTO(plain_len <= enc_len - 2, VTSM_E_PEER_MALFORMED,
                     "ApplicationDataLength %u exceeds the %zu decrypted bytes", plain_len,
                     enc_len - 2);
    if (*app_len < plain_len) {
        *app_len = plain_len;
        st = vtsm_fail(VTSM_E_TOO_SMALL, "secured message payload needs %u bytes", plain_len);
        goto out;
    }
    if (plain_len)
        memcpy(app, pt + 2, plain_len);
    *app_len = plain_len;
    d->seq++;
out:
    OPENSSL_clear_free(pt, enc_len);
    return st;
}

vtsm_status vtsm_secmsg_session_id(const uint8_t *in, size_t in_len, uint32_t *session_id)
{
    struct vtsm_rd r = vtsm_rd_init(in, in_len);

    VTSM_ENSURE(session_id != NULL && (in != NULL || in_len == 0), VTSM_E_INVAL,
                "secmsg session id: NULL");
    VTSM_ENSURE(vtsm_rd_le32(&r, session_id) == VTSM_OK, VTSM_E_PEER_MALFORMED,
                "secured message shorter than its SessionID");
    return VTSM_OK;
}

/* ---- DSP0277 version negotiation in OpaqueDataFmt1 ---- */

#define OPAQUE_ID_DMTF       0x00 /* SPDM registry ID of DMTF */
#define SM_DATA_VERSION      0x01 /* SMDataVersion */
#define SM_DATA_ID_SELECTION 0x00 /* SMDataID: version selection */
#define SM_DATA_ID_SUPPORTED 0x01 /* SMDataID: supported version list */

/* Write the table header and one DMTF element holding sm (sm_len bytes), padded to 4. */
static vtsm_status opaque_build(const uint8_t *sm, size_t sm_len, uint8_t *out, size_t *len)
{
    struct vtsm_wr w;
    size_t need = 4 + 4 + sm_len;

    need = (need + 3) & ~(size_t)3;
    VTSM_ENSURE(out != NULL && len != NULL, VTSM_E_INVAL, "opaque data: NULL");
    if (*len < need) {
        *len = need;
        return vtsm_fail(VTSM_E_TOO_SMALL, "opaque data needs %zu bytes", need);
    }
    w = vtsm_wr_init(out, need);
    VTSM_GUARD(vtsm_wr_u8(&w, 1)); /* TotalElements */
    VTSM_GUARD(vtsm_wr_zeros(&w, 3));
    VTSM_GUARD(vtsm_wr_u8(&w, OPAQUE_ID_DMTF));
    VTSM_GUARD(vtsm_wr_u8(&w, 0)); /* VendorLen */
    VTSM_GUARD(vtsm_wr_le16(&w, (uint16_t)sm_len));
    VTSM_GUARD(vtsm_wr_bytes(&w, sm, sm_len));
    VTSM_GUARD(vtsm_wr_zeros(&w, need - w.len)); /* AlignPadding */
    *len = w.len;
    return VTSM_OK;
}

vtsm_status vtsm_secmsg_opaque_supported(const uint16_t *versions, size_t n, uint8_t *out,
                                         size_t *len)
{
    uint8_t sm[3 + 2 * VTSM_SECMSG_OPAQUE_MAX_VERSIONS];
    struct vtsm_wr w = vtsm_wr_init(sm, sizeof(sm));

    VTSM_ENSURE(versions != NULL, VTSM_E_INVAL, "opaque data: NULL versions");
    VTSM_ENSURE(n >= 1 && n <= VTSM_SECMSG_OPAQUE_MAX_VERSIONS, VTSM_E_INVAL,
                "%zu secured message versions", n);
    VTSM_GUARD(vtsm_wr_u8(&w, SM_DATA_VERSION));
    VTSM_GUARD(vtsm_wr_u8(&w, SM_DATA_ID_SUPPORTED));
    VTSM_GUARD(vtsm_wr_u8(&w, (uint8_t)n));
    for (size_t i = 0; i < n; i++)
        VTSM_GUARD(vtsm_wr_le16(&w, versions[i]));
    return opaque_build(sm, w.len, out, len);
}

vtsm_status vtsm_secmsg_opaque_select(uint16_t version, uint8_t *out, size_t *len)
{
    uint8_t sm[4];

    sm[0] = SM_DATA_VERSION;
    sm[1] = SM_DATA_ID_SELECTION;
    vtsm_put_le16(sm + 2, version);
    return opaque_build(sm, sizeof(sm), out, len);
}

/*
 * Walk a general opaque data table (DSP0274 1.2 OpaqueDataFmt1) and return the body of the
 * single DMTF element whose SMDataID is `want` (body = what follows SMDataID).
 */
static vtsm_status opaque_find(const uint8_t *in, size_t in_len, uint8_t want, struct vtsm_rd *body)
{
    struct vtsm_rd r = vtsm_rd_init(in, in_len);
    uint8_t total = 0;
    bool found = false;

    VTSM_ENSURE(in != NULL || in_len == 0, VTSM_E_INVAL, "opaque data: NULL");
    VTSM_ENSURE(vtsm_rd_u8(&r, &total) == VTSM_OK && vtsm_rd_skip(&r, 3) == VTSM_OK,
                VTSM_E_PEER_MALFORMED, "opaque data shorter than its 4-byte header");
    for (unsigned i = 0; i < total; i++) {
        uint8_t id = 0, vlen = 0, smver = 0, smid = 0;
        uint16_t dlen = 0;
        struct vtsm_rd el;

        VTSM_ENSURE(vtsm_rd_u8(&r, &id) == VTSM_OK && vtsm_rd_u8(&r, &vlen) == VTSM_OK &&
                        vtsm_rd_skip(&r, vlen) == VTSM_OK && vtsm_rd_le16(&r, &dlen) == VTSM_OK &&
                        vtsm_rd_sub(&r, &el, dlen) == VTSM_OK,
                    VTSM_E_PEER_MALFORMED, "opaque element %u of %u truncated", i + 1, total);
        /* AlignPadding: every element ends on a 4-byte boundary of the table. */
        VTSM_ENSURE(vtsm_rd_skip(&r, (4 - r.off % 4) % 4) == VTSM_OK, VTSM_E_PEER_MALFORMED,
                    "opaque element %u lacks its alignment padding", i + 1);
        if (id != OPAQUE_ID_DMTF || vlen != 0)
            continue; /* another registry's element: not ours to judge */
        VTSM_ENSURE(vtsm_rd_u8(&el, &smver) == VTSM_OK && vtsm_rd_u8(&el, &smid) == VTSM_OK,
                    VTSM_E_PEER_MALFORMED, "DSP0277 opaque element shorter than 2 bytes");
        VTSM_ENSURE(smver == SM_DATA_VERSION, VTSM_E_PEER_MALFORMED, "DSP0277 SMDataVersion %u",
                    smver);
        if (smid != want)
            continue;
        VTSM_ENSURE(!found, VTSM_E_PEER_MALFORMED, "two DSP0277 elements with SMDataID %u", want);
        found = true;
        *body = el;
        body->p += body->off; /* make the body start at offset 0 */
        body->len -= body->off;
        body->off = 0;
    }
    VTSM_ENSURE(vtsm_rd_end(&r) == VTSM_OK, VTSM_E_PEER_MALFORMED,
                "%zu bytes after the %u opaque elements", vtsm_rd_left(&r), total);
    VTSM_ENSURE(found, VTSM_E_PEER_MALFORMED, "no DSP0277 opaque element with SMDataID %u", want);
    return VTSM_OK;
}

vtsm_status vtsm_secmsg_opaque_parse_supported(const uint8_t *in, size_t in_len, uint16_t *versions,
                                               size_t *n)
{
    struct vtsm_rd body;
    uint8_t count = 0;

    VTSM_ENSURE(versions != NULL && n != NULL, VTSM_E_INVAL, "opaque parse: NULL");
    VTSM_GUARD(opaque_find(in, in_len, SM_DATA_ID_SUPPORTED, &body));
    VTSM_ENSURE(vtsm_rd_u8(&body, &count) == VTSM_OK && count > 0, VTSM_E_PEER_MALFORMED,
                "DSP0277 supported-version list is empty");
    VTSM_ENSURE(vtsm_rd_left(&body) == 2 * (size_t)count, VTSM_E_PEER_MALFORMED,
                "DSP0277 VersionCount %u does not match %zu bytes of versions", count,
                vtsm_rd_left(&body));
    VTSM_ENSURE(count <= *n, VTSM_E_PEER_OVERSIZED,
                "peer lists %u secured message versions, room for %zu", count, *n);
    for (unsigned i = 0; i < count; i++)
        VTSM_GUARD(vtsm_rd_le16(&body, &versions[i]));
    *n = count;
    return VTSM_OK;
}

vtsm_status vtsm_secmsg_opaque_parse_select(const uint8_t *in, size_t in_len, uint16_t *version)
{
    struct vtsm_rd body;

    VTSM_ENSURE(version != NULL, VTSM_E_INVAL, "opaque parse: NULL");
    VTSM_GUARD(opaque_find(in, in_len, SM_DATA_ID_SELECTION, &body));
    VTSM_ENSURE(vtsm_rd_left(&body) == 2, VTSM_E_PEER_MALFORMED,
                "DSP0277 version selection of %zu bytes, expected 2", vtsm_rd_left(&body));
    return vtsm_rd_le16(&body, version);
}
