/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * COSE_Sign1 (RFC 9052 sec. 4.2, 4.4) with ES256 / ES384 (RFC 9053 sec. 2.1).
 *
 * The envelope is small and fixed, so it is written and read here directly with CBOR
 * heads (RFC 8949 sec. 3) through the bounded reader; libcbor serialises the caller's
 * payload map and decodes it again for the verifier - but only after the bytes were
 * walked here and found well-formed, definite-length, shallow and with every count
 * within the bytes left, and after the signature verified.
 */
#include "vtsm_cose.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vtsm_cbor.h"
#include "vtsm_crypto.h"
#include "vtsm_guard.h"

static const char sig1_context[] = "Signature1";

/* ---- writing: the one head writer (vtsm_cbor.h) ---- */

static vtsm_status put_head(struct vtsm_buf *b, unsigned major, uint64_t v)
{
    return vtsm_cbor_put_head(b, major, v);
}

static vtsm_status put_bstr(struct vtsm_buf *b, const uint8_t *p, size_t n)
{
    return vtsm_cbor_put_str(b, VTSM_CBOR_BYTES, p, n);
}

static vtsm_status put_int(struct vtsm_buf *b, int64_t v)
{
    return vtsm_cbor_put_int(b, v);
}

/* ---- reading CBOR heads (definite lengths only) ---- */

static vtsm_status get_head(struct vtsm_rd *r, uint8_t *major, uint64_t *val)
{
    uint8_t ib, b;

    if (vtsm_rd_u8(r, &ib))
        return vtsm_fail(VTSM_E_PEER_MALFORMED, "COSE_Sign1: CBOR item missing at byte %zu",
                         r->off);
    *major = ib >> 5;
    uint8_t ai = ib & 0x1F;
    if (ai < 24) {
        *val = ai;
        return VTSM_OK;
    }
    if (ai == 31)
        return vtsm_fail(VTSM_E_PEER_MALFORMED,
                         "COSE_Sign1: indefinite-length item or break at byte %zu", r->off - 1);
    if (ai > 27)
        return vtsm_fail(VTSM_E_PEER_MALFORMED,
                         "COSE_Sign1: reserved additional information %u at byte %zu", ai,
                         r->off - 1);
    *val = 0;
    for (size_t i = 0; i < ((size_t)1 << (ai - 24)); i++) {
        if (vtsm_rd_u8(r, &b))
            return vtsm_fail(VTSM_E_PEER_MALFORMED, "COSE_Sign1: CBOR argument cut short");
        *val = (*val << 8) | b;
    }
    if (*major == VTSM_CBOR_SIMPLE && ai == 24 && *val < 32)
        return vtsm_fail(VTSM_E_PEER_MALFORMED,
                         "COSE_Sign1: simple value %u in two-byte form (RFC 8949 3.3)",
                         (unsigned)*val);
    return VTSM_OK;
}

/* Walk one well-formed item; every count is checked against the bytes left first. */
static vtsm_status skip_item(struct vtsm_rd *r, unsigned depth)
{
    uint8_t major;
    uint64_t v;

    VTSM_ENSURE(depth <= VTSM_COSE_MAX_DEPTH, VTSM_E_PEER_MALFORMED,
                "COSE_Sign1: CBOR nested deeper than %u levels", VTSM_COSE_MAX_DEPTH);
    VTSM_GUARD(get_head(r, &major, &v));
    switch (major) {
    case VTSM_CBOR_BYTES:
    case VTSM_CBOR_TEXT:
        VTSM_ENSURE(v <= vtsm_rd_left(r), VTSM_E_PEER_MALFORMED,
                    "COSE_Sign1: string of %llu bytes, %zu left", (unsigned long long)v,
                    vtsm_rd_left(r));
        return vtsm_rd_skip(r, (size_t)v);
    case VTSM_CBOR_ARRAY:
    case VTSM_CBOR_MAP: {
        uint64_t items = v;
        VTSM_ENSURE(v <= vtsm_rd_left(r) && (major == VTSM_CBOR_ARRAY || v <= vtsm_rd_left(r) / 2),
                    VTSM_E_PEER_MALFORMED, "COSE_Sign1: %s of %llu entries, %zu bytes left",
                    major == VTSM_CBOR_ARRAY ? "array" : "map", (unsigned long long)v,
                    vtsm_rd_left(r));
        if (major == VTSM_CBOR_MAP)
            items *= 2;
        for (uint64_t i = 0; i < items; i++)
            VTSM_GUARD(skip_item(r, depth + 1));
        return VTSM_OK;
    }
    case VTSM_CBOR_TAG:
        return skip_item(r, depth + 1);
    default: /* integers, simple values, floats: the head is the whole item */
        return VTSM_OK;
    }
}

/* The bytes hold exactly one well-formed item. */
static vtsm_status check_item(const uint8_t *p, size_t n, const char *what)
{
    struct vtsm_rd r = vtsm_rd_init(p, n);

    VTSM_GUARD(skip_item(&r, 0));
    VTSM_ENSURE(vtsm_rd_left(&r) == 0, VTSM_E_PEER_MALFORMED, "COSE_Sign1: %zu bytes after the %s",
                vtsm_rd_left(&r), what);
    return VTSM_OK;
}

static vtsm_status get_bstr(struct vtsm_rd *r, const uint8_t **p, size_t *n, const char *what)
{
    uint8_t major;
    uint64_t v;

    VTSM_GUARD(get_head(r, &major, &v));
    if (major != VTSM_CBOR_BYTES)
        return vtsm_fail(VTSM_E_PEER_MALFORMED, "COSE_Sign1: %s is not a byte string (major %u)",
                         what, major);
    if (v > vtsm_rd_left(r))
        return vtsm_fail(VTSM_E_PEER_MALFORMED, "COSE_Sign1: %s of %llu bytes, %zu left", what,
                         (unsigned long long)v, vtsm_rd_left(r));
    *n = (size_t)v;
    return vtsm_rd_ref(r, p, *n);
}

/* An integer label or value; false if it is not an integer that fits int64_t. */
static bool head_int(uint8_t major, uint64_t v, int64_t *out)
{
    if (major == VTSM_CBOR_UINT && v <= INT64_MAX) {
        *out = (int64_t)v;
        return true;
    }
    if (major == VTSM_CBOR_NEGINT && v <= INT64_MAX) {
        *out = -1 - (int64_t)v;
        return true;
    }
    return false;
}

/* Protected header: bstr .cbor { 1: alg }; no other label is understood. */
static vtsm_status parse_protected(const uint8_t *p, size_t n, int64_t *alg)
{
    struct vtsm_rd r = vtsm_rd_init(p, n);
    uint8_t major;
    uint64_t pairs, v;
    bool have_alg = false;

    VTSM_ENSURE(n != 0, VTSM_E_PEER_ALGO, "COSE_Sign1: empty protected header, no alg");
    VTSM_GUARD(check_item(p, n, "protected header map"));
    VTSM_GUARD(get_head(&r, &major, &pairs));
    VTSM_ENSURE(major == VTSM_CBOR_MAP, VTSM_E_PEER_MALFORMED,
                "COSE_Sign1: protected header is not a map (major %u)", major);
    for (uint64_t i = 0; i < pairs; i++) {
        int64_t label;
        VTSM_GUARD(get_head(&r, &major, &v));
        VTSM_ENSURE(head_int(major, v, &label), VTSM_E_PEER_MALFORMED,
                    "COSE_Sign1: protected header label is not an integer");
        VTSM_ENSURE(label == VTSM_COSE_HDR_ALG, VTSM_E_PEER_MALFORMED,
                    "COSE_Sign1: protected header label %lld not supported", (long long)label);
        VTSM_ENSURE(!have_alg, VTSM_E_PEER_MALFORMED, "COSE_Sign1: alg appears twice");
        have_alg = true;
        VTSM_GUARD(get_head(&r, &major, &v));
        VTSM_ENSURE(head_int(major, v, alg), VTSM_E_PEER_ALGO,
                    "COSE_Sign1: alg is not an integer algorithm identifier");
    }
    VTSM_ENSURE(have_alg, VTSM_E_PEER_ALGO, "COSE_Sign1: protected header has no alg (label 1)");
    return VTSM_OK;
}

/* Unprotected header: { ? 4: kid bstr }. *kid (if asked for) NULL when there is none. */
static vtsm_status parse_unprotected(struct vtsm_rd *r, const uint8_t **kid, size_t *kid_len)
{
    uint8_t major;
    uint64_t pairs, v;
    bool have_kid = false;
    const uint8_t *k = NULL;
    size_t k_len = 0;

    VTSM_GUARD(get_head(r, &major, &pairs));
    VTSM_ENSURE(major == VTSM_CBOR_MAP, VTSM_E_PEER_MALFORMED,
                "COSE_Sign1: unprotected header is not a map (major %u)", major);
    VTSM_ENSURE(pairs <= vtsm_rd_left(r) / 2, VTSM_E_PEER_MALFORMED,
                "COSE_Sign1: unprotected header of %llu entries", (unsigned long long)pairs);
    for (uint64_t i = 0; i < pairs; i++) {
        int64_t label;

        VTSM_GUARD(get_head(r, &major, &v));
        VTSM_ENSURE(head_int(major, v, &label), VTSM_E_PEER_MALFORMED,
                    "COSE_Sign1: unprotected header label is not an integer");
        VTSM_ENSURE(label == VTSM_COSE_HDR_KID, VTSM_E_PEER_MALFORMED,
                    "COSE_Sign1: unprotected header label %lld not supported", (long long)label);
        VTSM_ENSURE(!have_kid, VTSM_E_PEER_MALFORMED, "COSE_Sign1: kid appears twice");
        have_kid = true;
        VTSM_GUARD(get_bstr(r, &k, &k_len, "kid"));
    }
    if (kid) {
        *kid = k;
        *kid_len = k_len;
    }
    return VTSM_OK;
}

/* The envelope up to the payload: [tag 18] [protected bstr, unprotected map, */
static vtsm_status parse_envelope(struct vtsm_rd *r, const uint8_t **prot, size_t *prot_len,
                                  const uint8_t **kid, size_t *kid_len)
{
    uint8_t major;
    uint64_t v;

    VTSM_GUARD(get_head(r, &major, &v));
    if (major == VTSM_CBOR_TAG) {
        VTSM_ENSURE(v == VTSM_COSE_TAG_SIGN1, VTSM_E_PEER_MALFORMED,
                    "COSE_Sign1: tag %llu, COSE_Sign1 is tag 18", (unsigned long long)v);
        VTSM_GUARD(get_head(r, &major, &v));
    }
    VTSM_ENSURE(major == VTSM_CBOR_ARRAY && v == 4, VTSM_E_PEER_MALFORMED,
                "COSE_Sign1: expected a 4-element array, got major %u with %llu", major,
                (unsigned long long)v);
    VTSM_GUARD(get_bstr(r, prot, prot_len, "protected header"));
    return parse_unprotected(r, kid, kid_len);
}

vtsm_status vtsm_cose_kid(const uint8_t *token, size_t len, const uint8_t **kid, size_t *kid_len)
{
    struct vtsm_rd r = vtsm_rd_init(token, len);
    const uint8_t *prot = NULL;
    size_t prot_len = 0;

    VTSM_ENSURE(kid != NULL && kid_len != NULL && (token != NULL || len == 0), VTSM_E_INVAL,
                "COSE_Sign1 kid: NULL argument");
    *kid = NULL;
    *kid_len = 0;
    VTSM_GUARD(check_item(token, len, "COSE_Sign1"));
    return parse_envelope(&r, &prot, &prot_len, kid, kid_len);
}

static vtsm_status alg_params(int64_t alg, enum vtsm_asym_alg *asym, enum vtsm_hash_alg *hash)
{
    switch (alg) {
    case VTSM_COSE_ALG_ES256:
        *asym = VTSM_ASYM_ECDSA_P256;
        *hash = VTSM_HASH_SHA256;
        return VTSM_OK;
    case VTSM_COSE_ALG_ES384:
        *asym = VTSM_ASYM_ECDSA_P384;
        *hash = VTSM_HASH_SHA384;
        return VTSM_OK;
    default:
        return vtsm_fail(VTSM_E_PEER_ALGO,
                         "COSE_Sign1: alg %lld not supported (ES256 -7, ES384 -35)",
                         (long long)alg);
    }
}

vtsm_status vtsm_cose_sig_structure(const uint8_t *protected_hdr, size_t protected_len,
                                    const uint8_t *payload, size_t payload_len,
                                    struct vtsm_buf *out)
{
    vtsm_status st = VTSM_OK;

    VTSM_ENSURE(out != NULL && (protected_hdr != NULL || protected_len == 0) &&
                    (payload != NULL || payload_len == 0),
                VTSM_E_INVAL, "Sig_structure: NULL argument");
    vtsm_buf_reset(out);
    VTSM_GUARD_GOTO(put_head(out, VTSM_CBOR_ARRAY, 4));
    VTSM_GUARD_GOTO(put_head(out, VTSM_CBOR_TEXT, sizeof(sig1_context) - 1));
    VTSM_GUARD_GOTO(vtsm_buf_append(out, sig1_context, sizeof(sig1_context) - 1));
    VTSM_GUARD_GOTO(put_bstr(out, protected_hdr, protected_len));
    VTSM_GUARD_GOTO(put_bstr(out, NULL, 0)); /* external_aad */
    VTSM_GUARD_GOTO(put_bstr(out, payload, payload_len));
out:
    if (st != VTSM_OK)
        vtsm_buf_reset(out);
    return st;
}

vtsm_status vtsm_cose_sign1(EVP_PKEY *key, const cbor_item_t *payload, const uint8_t *kid,
                            size_t kid_len, struct vtsm_buf *out)
{
    vtsm_status st = VTSM_OK;
    struct vtsm_buf prot = {0}, tbs = {0};
    unsigned char *pl = NULL;
    size_t pl_cap = 0, pl_len;
    uint8_t sig[VTSM_SIG_MAX];
    enum vtsm_asym_alg asym;
    enum vtsm_hash_alg hash;
    int64_t alg;

    VTSM_ENSURE(key != NULL && payload != NULL && out != NULL && (kid != NULL || kid_len == 0),
                VTSM_E_INVAL, "COSE_Sign1: NULL argument");
    VTSM_ENSURE(kid_len <= VTSM_COSE_MAX_KID, VTSM_E_INVAL,
                "COSE_Sign1: kid of %zu bytes exceeds %u", kid_len, VTSM_COSE_MAX_KID);
    VTSM_ENSURE(cbor_isa_map(payload), VTSM_E_INVAL, "COSE_Sign1: the payload must be a map");
    asym = vtsm_pkey_asym(key);
    VTSM_ENSURE(asym == VTSM_ASYM_ECDSA_P256 || asym == VTSM_ASYM_ECDSA_P384, VTSM_E_INVAL,
                "COSE_Sign1: the signing key is neither P-256 nor P-384");
    alg = asym == VTSM_ASYM_ECDSA_P256 ? VTSM_COSE_ALG_ES256 : VTSM_COSE_ALG_ES384;
    VTSM_GUARD(alg_params(alg, &asym, &hash));

    pl_len = cbor_serialize_alloc(payload, &pl, &pl_cap);
    VTSM_ENSURE_GOTO(pl_len != 0, VTSM_E_NOMEM, "COSE_Sign1: payload serialisation failed");
    /* Sign only what the verifier accepts. */
    if (check_item(pl, pl_len, "payload") != VTSM_OK) {
        char why[160];
        snprintf(why, sizeof(why), "%s", vtsm_err_detail());
        st =
            vtsm_fail(VTSM_E_INVAL, "COSE_Sign1: payload not acceptable to the verifier (%s)", why);
        goto out;
    }

    VTSM_GUARD_GOTO(put_head(&prot, VTSM_CBOR_MAP, 1));
    VTSM_GUARD_GOTO(put_int(&prot, VTSM_COSE_HDR_ALG));
    VTSM_GUARD_GOTO(put_int(&prot, alg));
    VTSM_GUARD_GOTO(vtsm_cose_sig_structure(prot.data, prot.len, pl, pl_len, &tbs));
    VTSM_GUARD_GOTO(vtsm_ecdsa_sign(key, asym, hash, tbs.data, tbs.len, sig));

    vtsm_buf_reset(out);
    VTSM_GUARD_GOTO(put_head(out, VTSM_CBOR_TAG, VTSM_COSE_TAG_SIGN1));
    VTSM_GUARD_GOTO(put_head(out, VTSM_CBOR_ARRAY, 4));
    VTSM_GUARD_GOTO(put_bstr(out, prot.data, prot.len));
    if (kid_len) {
        VTSM_GUARD_GOTO(put_head(out, VTSM_CBOR_MAP, 1));
        VTSM_GUARD_GOTO(put_int(out, VTSM_COSE_HDR_KID));
        VTSM_GUARD_GOTO(put_bstr(out, kid, kid_len));
    } else {
        VTSM_GUARD_GOTO(put_head(out, VTSM_CBOR_MAP, 0));
    }
    VTSM_GUARD_GOTO(put_bstr(out, pl, pl_len));
    VTSM_GUARD_GOTO(put_bstr(out, sig, vtsm_sig_size(asym)));
out:
    if (st != VTSM_OK)
        vtsm_buf_reset(out);
    free(pl);
    vtsm_buf_free(&prot);
    vtsm_buf_free(&tbs);
    return st;
}

vtsm_status vtsm_cose_verify1(EVP_PKEY *pub, const uint8_t *token, size_t len,
                              cbor_item_t **payload_out)
{
    vtsm_status st = VTSM_OK;
    struct vtsm_rd r = vtsm_rd_init(token, len);
    struct vtsm_buf tbs = {0};
    const uint8_t *prot = NULL, *payload = NULL, *sig = NULL;
    size_t prot_len = 0, payload_len = 0, sig_len = 0;
    enum vtsm_asym_alg asym = VTSM_ASYM_NONE, key_asym;
    enum vtsm_hash_alg hash = VTSM_HASH_NONE;
    int64_t alg = 0;

    if (payload_out)
        *payload_out = NULL;
    VTSM_ENSURE(pub != NULL && (token != NULL || len == 0), VTSM_E_INVAL,
                "COSE_Sign1: NULL argument");

    /* The whole token is one well-formed item before any field is trusted. */
    VTSM_GUARD(check_item(token, len, "COSE_Sign1"));
    VTSM_GUARD(parse_envelope(&r, &prot, &prot_len, NULL, NULL));
    VTSM_GUARD(get_bstr(&r, &payload, &payload_len, "payload"));
    VTSM_GUARD(get_bstr(&r, &sig, &sig_len, "signature"));

    VTSM_GUARD(parse_protected(prot, prot_len, &alg));
    VTSM_GUARD(alg_params(alg, &asym, &hash));
    key_asym = vtsm_pkey_asym(pub);
    VTSM_ENSURE(key_asym == asym, VTSM_E_PEER_ALGO,
                "COSE_Sign1: alg %lld needs %s, the verification key is %s", (long long)alg,
                vtsm_asym_name(asym), vtsm_asym_name(key_asym));
    VTSM_ENSURE(sig_len == vtsm_sig_size(asym), VTSM_E_PEER_MALFORMED,
                "COSE_Sign1: signature of %zu bytes, %s needs %zu", sig_len, vtsm_asym_name(asym),
                vtsm_sig_size(asym));

    VTSM_GUARD_GOTO(vtsm_cose_sig_structure(prot, prot_len, payload, payload_len, &tbs));
    st = vtsm_ecdsa_verify(pub, asym, hash, tbs.data, tbs.len, sig, sig_len);
    if (st == VTSM_E_PEER_SIGNATURE)
        st = vtsm_fail(st, "COSE_Sign1: %s signature does not verify", vtsm_asym_name(asym));
    if (st != VTSM_OK)
        goto out;

    /* Authentic; now the payload must be one well-formed map. */
    VTSM_ENSURE_GOTO(payload_len != 0, VTSM_E_PEER_MALFORMED, "COSE_Sign1: empty payload");
    VTSM_ENSURE_GOTO((payload[0] >> 5) == VTSM_CBOR_MAP, VTSM_E_PEER_MALFORMED,
                     "COSE_Sign1: payload is not a map (major %u)", payload[0] >> 5);
    VTSM_GUARD_GOTO(check_item(payload, payload_len, "payload"));
    if (payload_out) {
        struct cbor_load_result res;
        cbor_item_t *item = cbor_load(payload, payload_len, &res);
        if (!item || res.error.code != CBOR_ERR_NONE || res.read != payload_len ||
            !cbor_isa_map(item)) {
            bool oom = res.error.code == CBOR_ERR_MEMERROR;
            if (item)
                cbor_decref(&item);
            st = vtsm_fail(oom ? VTSM_E_NOMEM : VTSM_E_PEER_MALFORMED,
                           "COSE_Sign1: payload does not decode (libcbor error %d)",
                           (int)res.error.code);
            goto out;
        }
        *payload_out = item;
    }
out:
    vtsm_buf_free(&tbs);
    return st;
}
