/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Cryptographic primitives over OpenSSL 3 (EVP only). See vtsm_crypto.h for the shapes.
 *
 * Expected failures caused by the peer (bad signature, bad tag, point off the curve) clear
 * the OpenSSL error queue so it does not grow across a long-lived daemon; local failures
 * leave it for the caller to print.
 */
#include "vtsm_crypto.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "vtsm_guard.h"

/* ---- algorithm tables ---- */

/* OpenSSL's name for the digest. */
static const char *hash_ossl_name(enum vtsm_hash_alg alg)
{
    switch (alg) {
    case VTSM_HASH_SHA256:
        return "SHA256";
    case VTSM_HASH_SHA384:
        return "SHA384";
    default:
        return NULL;
    }
}

/* OpenSSL group name of a DHE group. */
static const char *dhe_group_name(enum vtsm_dhe_group g)
{
    switch (g) {
    case VTSM_DHE_SECP256R1:
        return "prime256v1";
    case VTSM_DHE_SECP384R1:
        return "secp384r1";
    default:
        return NULL;
    }
}

/*
 * Algorithms fetched once per process. OpenSSL 3 resolves an algorithm in its provider
 * store (a locked lookup by name) on every EVP_DigestInit, EVP_MAC/EVP_KDF fetch or
 * EVP_aes_256_gcm() cipher init unless it is handed an object the caller fetched; a connect
 * makes hundreds of those calls. The HMAC contexts hold only the digest choice (no key):
 * each use duplicates one, so the digest is not looked up by name again either. The DHE
 * parameter keys hold only a group: ephemeral keys and imported peer keys copy it instead of
 * building the curve from its name again (constants, Montgomery context, generator).
 * The objects are freed by an atexit handler registered after OpenSSL initialised (handlers
 * run in reverse order, so it runs before OpenSSL's own cleanup).
 */
#define HASH_SLOTS (VTSM_HASH_SHA384 + 1)

static struct {
    EVP_MD *md[HASH_SLOTS];        /* by enum vtsm_hash_alg */
    EVP_MAC_CTX *hmac[HASH_SLOTS]; /* HMAC templates, digest set, no key */
    EVP_CIPHER *gcm;
    EVP_PKEY *dhe_params[VTSM_DHE_SECP384R1 + 1]; /* by enum vtsm_dhe_group; group only */
    bool ok;
} algs;
static CRYPTO_ONCE algs_once = CRYPTO_ONCE_STATIC_INIT;

static void algs_free(void)
{
    algs.ok = false;
    for (int a = 0; a < HASH_SLOTS; a++) {
        EVP_MD_free(algs.md[a]);
        EVP_MAC_CTX_free(algs.hmac[a]);
        algs.md[a] = NULL;
        algs.hmac[a] = NULL;
    }
    EVP_CIPHER_free(algs.gcm);
    algs.gcm = NULL;
    for (int g = 0; g <= VTSM_DHE_SECP384R1; g++) {
        EVP_PKEY_free(algs.dhe_params[g]);
        algs.dhe_params[g] = NULL;
    }
}

/* A key that holds only the domain parameters of group g. */
static EVP_PKEY *dhe_params_new(enum vtsm_dhe_group g)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *params = NULL;
    OSSL_PARAM p[2];

    p[0] =
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)dhe_group_name(g), 0);
    p[1] = OSSL_PARAM_construct_end();
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &params, EVP_PKEY_KEY_PARAMETERS, p) != 1) {
        EVP_PKEY_free(params);
        params = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    return params;
}

static void algs_init(void)
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    bool ok = mac != NULL;

    for (int a = VTSM_HASH_SHA256; a <= VTSM_HASH_SHA384; a++) {
        const char *name = hash_ossl_name((enum vtsm_hash_alg)a);
        OSSL_PARAM params[2];

        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)name, 0);
        params[1] = OSSL_PARAM_construct_end();
        algs.md[a] = EVP_MD_fetch(NULL, name, NULL);
        algs.hmac[a] = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
        ok = ok && algs.md[a] != NULL && algs.hmac[a] != NULL &&
             EVP_MAC_CTX_set_params(algs.hmac[a], params) == 1;
    }
    algs.gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    ok = ok && algs.gcm != NULL;
    for (int g = VTSM_DHE_SECP256R1; g <= VTSM_DHE_SECP384R1; g++) {
        algs.dhe_params[g] = dhe_params_new((enum vtsm_dhe_group)g);
        ok = ok && algs.dhe_params[g] != NULL;
    }
    EVP_MAC_free(mac); /* the contexts hold their own references */
    if (!ok || atexit(algs_free) != 0) {
        algs_free();
        return;
    }
    algs.ok = true;
}

/* VTSM_OK once the algorithms are fetched (thread-safe, first call fetches). */
static vtsm_status algs_ready(void)
{
    if (CRYPTO_THREAD_run_once(&algs_once, algs_init) != 1 || !algs.ok)
        return vtsm_fail(VTSM_E_CRYPTO,
                         "fetching SHA-256/384, HMAC, AES-256-GCM and the DHE groups failed");
    return VTSM_OK;
}

/* The fetched digest of alg; NULL if alg is not supported. Call algs_ready() first. */
static const EVP_MD *hash_md(enum vtsm_hash_alg alg)
{
    return alg == VTSM_HASH_SHA256 || alg == VTSM_HASH_SHA384 ? algs.md[alg] : NULL;
}

size_t vtsm_hash_size(enum vtsm_hash_alg alg)
{
    switch (alg) {
    case VTSM_HASH_SHA256:
        return 32;
    case VTSM_HASH_SHA384:
        return 48;
    default:
        return 0;
    }
}

/* Size of one coordinate / one signature half for a curve. */
static size_t asym_half(enum vtsm_asym_alg alg)
{
    switch (alg) {
    case VTSM_ASYM_ECDSA_P256:
        return 32;
    case VTSM_ASYM_ECDSA_P384:
        return 48;
    default:
        return 0;
    }
}

size_t vtsm_sig_size(enum vtsm_asym_alg alg)
{
    return 2 * asym_half(alg);
}

static size_t dhe_half(enum vtsm_dhe_group g)
{
    switch (g) {
    case VTSM_DHE_SECP256R1:
        return 32;
    case VTSM_DHE_SECP384R1:
        return 48;
    default:
        return 0;
    }
}

size_t vtsm_dhe_pub_size(enum vtsm_dhe_group g)
{
    return 2 * dhe_half(g);
}

size_t vtsm_dhe_secret_size(enum vtsm_dhe_group g)
{
    return dhe_half(g);
}

const char *vtsm_hash_name(enum vtsm_hash_alg alg)
{
    switch (alg) {
    case VTSM_HASH_SHA256:
        return "sha256";
    case VTSM_HASH_SHA384:
        return "sha384";
    default:
        return "none";
    }
}

const char *vtsm_asym_name(enum vtsm_asym_alg alg)
{
    switch (alg) {
    case VTSM_ASYM_ECDSA_P256:
        return "ecdsa-p256";
    case VTSM_ASYM_ECDSA_P384:
        return "ecdsa-p384";
    default:
        return "none";
    }
}

const char *vtsm_dhe_name(enum vtsm_dhe_group g)
{
    switch (g) {
    case VTSM_DHE_SECP256R1:
        return "secp256r1";
    case VTSM_DHE_SECP384R1:
        return "secp384r1";
    default:
        return "none";
    }
}

const char *vtsm_aead_name(enum vtsm_aead_alg a)
{
    return a == VTSM_AEAD_AES_256_GCM ? "aes-256-gcm" : "none";
}

/* ---- random ---- */

vtsm_status vtsm_random(void *out, size_t len)
{
    VTSM_ENSURE(out != NULL || len == 0, VTSM_E_INVAL, "vtsm_random: NULL output");
    VTSM_ENSURE(len <= INT_MAX, VTSM_E_INVAL, "vtsm_random: %zu bytes is too many", len);
    if (len == 0)
        return VTSM_OK;
    VTSM_OSSL(RAND_bytes(out, (int)len));
    return VTSM_OK;
}

/* ---- digests ---- */

vtsm_status vtsm_hash(enum vtsm_hash_alg alg, const void *data, size_t len, uint8_t *out)
{
    const EVP_MD *md;
    unsigned int n = 0;

    VTSM_GUARD(algs_ready());
    md = hash_md(alg);
    VTSM_ENSURE(md != NULL, VTSM_E_UNSUPPORTED, "hash algorithm %d not supported", (int)alg);
    VTSM_ENSURE(out != NULL && (data != NULL || len == 0), VTSM_E_INVAL, "vtsm_hash: NULL");
    VTSM_OSSL(EVP_Digest(data, len, out, &n, md, NULL));
    return VTSM_OK;
}

struct vtsm_hash_ctx {
    enum vtsm_hash_alg alg;
    EVP_MD_CTX *md;
};

vtsm_status vtsm_hash_ctx_new(enum vtsm_hash_alg alg, struct vtsm_hash_ctx **out)
{
    vtsm_status st = VTSM_OK;
    const EVP_MD *md;
    struct vtsm_hash_ctx *c = NULL;

    VTSM_ENSURE(out != NULL, VTSM_E_INVAL, "vtsm_hash_ctx_new: NULL out");
    *out = NULL;
    VTSM_GUARD(algs_ready());
    md = hash_md(alg);
    VTSM_ENSURE(md != NULL, VTSM_E_UNSUPPORTED, "hash algorithm %d not supported", (int)alg);
    c = OPENSSL_zalloc(sizeof(*c));
    VTSM_ENSURE(c != NULL, VTSM_E_NOMEM, "hash context");
    c->alg = alg;
    c->md = EVP_MD_CTX_new();
    VTSM_ENSURE_GOTO(c->md != NULL, VTSM_E_NOMEM, "EVP_MD_CTX_new");
    VTSM_OSSL_GOTO(EVP_DigestInit_ex(c->md, md, NULL));
    *out = c;
    c = NULL;
out:
    vtsm_hash_ctx_free(c);
    return st;
}

vtsm_status vtsm_hash_ctx_update(struct vtsm_hash_ctx *c, const void *data, size_t len)
{
    VTSM_ENSURE(c != NULL && (data != NULL || len == 0), VTSM_E_INVAL, "hash update: NULL");
    if (len == 0)
        return VTSM_OK;
    VTSM_OSSL(EVP_DigestUpdate(c->md, data, len));
    return VTSM_OK;
}

vtsm_status vtsm_hash_ctx_peek(const struct vtsm_hash_ctx *c, uint8_t *out)
{
    vtsm_status st = VTSM_OK;
    EVP_MD_CTX *tmp = NULL;
    unsigned int n = 0;

    VTSM_ENSURE(c != NULL && out != NULL, VTSM_E_INVAL, "hash peek: NULL");
    tmp = EVP_MD_CTX_new();
    VTSM_ENSURE(tmp != NULL, VTSM_E_NOMEM, "EVP_MD_CTX_new");
    VTSM_OSSL_GOTO(EVP_MD_CTX_copy_ex(tmp, c->md));
    VTSM_OSSL_GOTO(EVP_DigestFinal_ex(tmp, out, &n));
out:
    EVP_MD_CTX_free(tmp);
    return st;
}

vtsm_status vtsm_hash_ctx_dup(const struct vtsm_hash_ctx *c, struct vtsm_hash_ctx **out)
{
    vtsm_status st = VTSM_OK;
    struct vtsm_hash_ctx *d = NULL;

    VTSM_ENSURE(c != NULL && out != NULL, VTSM_E_INVAL, "hash dup: NULL");
    *out = NULL;
    d = OPENSSL_zalloc(sizeof(*d));
    VTSM_ENSURE(d != NULL, VTSM_E_NOMEM, "hash context");
    d->alg = c->alg;
    d->md = EVP_MD_CTX_new();
    VTSM_ENSURE_GOTO(d->md != NULL, VTSM_E_NOMEM, "EVP_MD_CTX_new");
    VTSM_OSSL_GOTO(EVP_MD_CTX_copy_ex(d->md, c->md));
    *out = d;
    d = NULL;
out:
    vtsm_hash_ctx_free(d);
    return st;
}

void vtsm_hash_ctx_free(struct vtsm_hash_ctx *c)
{
    if (c == NULL)
        return;
    EVP_MD_CTX_free(c->md);
    OPENSSL_free(c);
}

/* ---- HMAC / HKDF ---- */

/* One byte string of an HMAC input. */
struct span {
    const void *p;
    size_t len;
};

/* HMAC(key, parts[0] || ... || parts[n-1]) with a duplicate of the fetched template. */
static vtsm_status hmac_parts(enum vtsm_hash_alg alg, const uint8_t *key, size_t key_len,
                              const struct span *parts, size_t n, uint8_t *out)
{
    vtsm_status st = VTSM_OK;
    EVP_MAC_CTX *ctx = NULL;
    size_t h = vtsm_hash_size(alg), got = 0;

    VTSM_GUARD(algs_ready());
    VTSM_ENSURE(h != 0, VTSM_E_UNSUPPORTED, "hash algorithm %d not supported", (int)alg);
    ctx = EVP_MAC_CTX_dup(algs.hmac[alg]);
    VTSM_ENSURE(ctx != NULL, VTSM_E_NOMEM, "EVP_MAC_CTX_dup");
    /* A zero-length key is legal HMAC; give OpenSSL a non-NULL pointer for it. */
    VTSM_OSSL_GOTO(EVP_MAC_init(ctx, key_len ? key : (const uint8_t *)"", key_len, NULL));
    for (size_t i = 0; i < n; i++)
        if (parts[i].len)
            VTSM_OSSL_GOTO(EVP_MAC_update(ctx, parts[i].p, parts[i].len));
    VTSM_OSSL_GOTO(EVP_MAC_final(ctx, out, &got, h));
    VTSM_ENSURE_GOTO(got == h, VTSM_E_CRYPTO, "HMAC of %zu bytes", got);
out:
    /* the context held the keyed pads; EVP_MAC_CTX_free clears them */
    EVP_MAC_CTX_free(ctx);
    return st;
}

vtsm_status vtsm_hmac(enum vtsm_hash_alg alg, const uint8_t *key, size_t key_len, const void *data,
                      size_t len, uint8_t *out)
{
    const struct span part = {data, len};

    VTSM_ENSURE(vtsm_hash_size(alg) != 0, VTSM_E_UNSUPPORTED, "hash algorithm %d not supported",
                (int)alg);
    VTSM_ENSURE(out != NULL && (key != NULL || key_len == 0) && (data != NULL || len == 0),
                VTSM_E_INVAL, "vtsm_hmac: NULL");
    return hmac_parts(alg, key, key_len, &part, 1, out);
}

/* RFC 5869 HKDF over the fetched HMAC (OpenSSL 3.0's HKDF context cannot be duplicated,
 * so a fetched template would not spare the per-call digest lookup there). */
vtsm_status vtsm_hkdf_extract(enum vtsm_hash_alg alg, const uint8_t *salt, size_t salt_len,
                              const uint8_t *ikm, size_t ikm_len, uint8_t *prk)
{
    static const uint8_t zeros[VTSM_HASH_MAX];
    size_t h = vtsm_hash_size(alg);
    const struct span part = {ikm, ikm_len};

    VTSM_ENSURE(h != 0, VTSM_E_UNSUPPORTED, "hash algorithm %d not supported", (int)alg);
    VTSM_ENSURE(prk != NULL && (salt != NULL || salt_len == 0) && (ikm != NULL || ikm_len == 0),
                VTSM_E_INVAL, "hkdf extract: NULL");
    /* RFC 5869 2.2: PRK = HMAC-Hash(salt, IKM); an absent salt is HashLen zeros. */
    if (salt_len == 0)
        return hmac_parts(alg, zeros, h, &part, 1, prk);
    return hmac_parts(alg, salt, salt_len, &part, 1, prk);
}

vtsm_status vtsm_hkdf_expand(enum vtsm_hash_alg alg, const uint8_t *prk, size_t prk_len,
                             const uint8_t *info, size_t info_len, uint8_t *out, size_t out_len)
{
    vtsm_status st = VTSM_OK;
    size_t h = vtsm_hash_size(alg);
    uint8_t t[VTSM_HASH_MAX];
    uint8_t counter = 0;

    VTSM_ENSURE(h != 0, VTSM_E_UNSUPPORTED, "hash algorithm %d not supported", (int)alg);
    VTSM_ENSURE(prk != NULL && out != NULL && (info != NULL || info_len == 0), VTSM_E_INVAL,
                "hkdf expand: NULL");
    /* RFC 5869 2.3: PRK of at least HashLen, L <= 255 * HashLen. */
    VTSM_ENSURE(prk_len >= h, VTSM_E_INVAL, "hkdf expand: PRK of %zu bytes < HashLen", prk_len);
    VTSM_ENSURE(out_len > 0 && out_len <= 255 * h, VTSM_E_INVAL, "hkdf expand: L = %zu", out_len);
    /* T(i) = HMAC-Hash(PRK, T(i-1) || info || i), T(0) empty; OKM = first L bytes of T. */
    for (size_t done = 0; done < out_len; done += h) {
        const struct span parts[3] = {{t, counter == 0 ? 0 : h}, {info, info_len}, {&counter, 1}};
        size_t take = out_len - done < h ? out_len - done : h;

        counter++;
        VTSM_GUARD_GOTO(hmac_parts(alg, prk, prk_len, parts, 3, t));
        memcpy(out + done, t, take);
    }
out:
    OPENSSL_cleanse(t, sizeof(t));
    if (st != VTSM_OK)
        OPENSSL_cleanse(out, out_len);
    return st;
}

/* ---- ECDSA ---- */

enum vtsm_asym_alg vtsm_pkey_asym(EVP_PKEY *key)
{
    char group[64];
    size_t glen = 0;
    int nid;

    if (key == NULL || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC)
        return VTSM_ASYM_NONE;
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       &glen) != 1)
        return VTSM_ASYM_NONE;
    nid = OBJ_sn2nid(group);
    if (nid == NID_undef)
        nid = EC_curve_nist2nid(group);
    if (nid == NID_X9_62_prime256v1)
        return VTSM_ASYM_ECDSA_P256;
    if (nid == NID_secp384r1)
        return VTSM_ASYM_ECDSA_P384;
    return VTSM_ASYM_NONE;
}

static vtsm_status ecdsa_sign_now(EVP_PKEY *key, enum vtsm_asym_alg alg, enum vtsm_hash_alg hash,
                                  const void *msg, size_t len, uint8_t *sig)
{
    vtsm_status st = VTSM_OK;
    const EVP_MD *md;
    size_t half = asym_half(alg);
    EVP_MD_CTX *ctx = NULL;
    ECDSA_SIG *es = NULL;
    uint8_t der[160];
    size_t der_len = sizeof(der);
    const unsigned char *p = der;
    const BIGNUM *r = NULL, *s = NULL;

    VTSM_GUARD(algs_ready());
    md = hash_md(hash);
    VTSM_ENSURE(md != NULL && half != 0, VTSM_E_UNSUPPORTED, "ECDSA %s with %s not supported",
                vtsm_asym_name(alg), vtsm_hash_name(hash));
    VTSM_ENSURE(key != NULL && sig != NULL && (msg != NULL || len == 0), VTSM_E_INVAL,
                "ecdsa sign: NULL");
    VTSM_ENSURE(vtsm_pkey_asym(key) == alg, VTSM_E_INVAL, "signing key is not an %s key",
                vtsm_asym_name(alg));
    ctx = EVP_MD_CTX_new();
    VTSM_ENSURE(ctx != NULL, VTSM_E_NOMEM, "EVP_MD_CTX_new");
    VTSM_OSSL_GOTO(EVP_DigestSignInit(ctx, NULL, md, NULL, key));
    VTSM_OSSL_GOTO(EVP_DigestSign(ctx, der, &der_len, msg, len));
    es = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    VTSM_ENSURE_GOTO(es != NULL, VTSM_E_CRYPTO, "d2i_ECDSA_SIG of our own signature");
    ECDSA_SIG_get0(es, &r, &s);
    /* SPDM: r and s each big-endian, left-padded with zeros to the curve size. */
    VTSM_ENSURE_GOTO(BN_bn2binpad(r, sig, (int)half) == (int)half &&
                         BN_bn2binpad(s, sig + half, (int)half) == (int)half,
                     VTSM_E_CRYPTO, "ECDSA r/s wider than the curve");
out:
    ECDSA_SIG_free(es);
    EVP_MD_CTX_free(ctx);
    return st;
}

static vtsm_status ecdsa_verify_now(EVP_PKEY *pub, enum vtsm_asym_alg alg, enum vtsm_hash_alg hash,
                                    const void *msg, size_t len, const uint8_t *sig, size_t sig_len)
{
    vtsm_status st = VTSM_OK;
    const EVP_MD *md;
    size_t half = asym_half(alg);
    EVP_MD_CTX *ctx = NULL;
    ECDSA_SIG *es = NULL;
    BIGNUM *r = NULL, *s = NULL;
    unsigned char *der = NULL;
    int der_len, rc;

    VTSM_GUARD(algs_ready());
    md = hash_md(hash);
    VTSM_ENSURE(md != NULL && half != 0, VTSM_E_UNSUPPORTED, "ECDSA %s with %s not supported",
                vtsm_asym_name(alg), vtsm_hash_name(hash));
    VTSM_ENSURE(pub != NULL && sig != NULL && (msg != NULL || len == 0), VTSM_E_INVAL,
                "ecdsa verify: NULL");
    VTSM_ENSURE(sig_len == 2 * half, VTSM_E_PEER_MALFORMED,
                "%s signature must be %zu bytes, got %zu", vtsm_asym_name(alg), 2 * half, sig_len);
    VTSM_ENSURE(vtsm_pkey_asym(pub) == alg, VTSM_E_PEER_ALGO, "public key is not an %s key",
                vtsm_asym_name(alg));
    r = BN_bin2bn(sig, (int)half, NULL);
    s = BN_bin2bn(sig + half, (int)half, NULL);
    es = ECDSA_SIG_new();
    VTSM_ENSURE_GOTO(r != NULL && s != NULL && es != NULL, VTSM_E_NOMEM, "ECDSA_SIG");
    VTSM_OSSL_GOTO(ECDSA_SIG_set0(es, r, s));
    r = s = NULL; /* owned by es now */
    der_len = i2d_ECDSA_SIG(es, &der);
    VTSM_ENSURE_GOTO(der_len > 0, VTSM_E_CRYPTO, "i2d_ECDSA_SIG");
    ctx = EVP_MD_CTX_new();
    VTSM_ENSURE_GOTO(ctx != NULL, VTSM_E_NOMEM, "EVP_MD_CTX_new");
    VTSM_OSSL_GOTO(EVP_DigestVerifyInit(ctx, NULL, md, NULL, pub));
    rc = EVP_DigestVerify(ctx, der, (size_t)der_len, msg, len);
    if (rc != 1) {
        /* 0 = mismatch; < 0 = OpenSSL refused the values (e.g. r = 0): both are the peer's. */
        ERR_clear_error();
        st = vtsm_fail(VTSM_E_PEER_SIGNATURE, "%s/%s signature does not verify",
                       vtsm_asym_name(alg), vtsm_hash_name(hash));
    }
out:
    OPENSSL_free(der);
    ECDSA_SIG_free(es);
    BN_free(r);
    BN_free(s);
    EVP_MD_CTX_free(ctx);
    return st;
}

/* ---- ephemeral ECDHE ---- */

struct vtsm_dhe {
    enum vtsm_dhe_group group;
    EVP_PKEY *key;
};

void vtsm_dhe_free(struct vtsm_dhe *d)
{
    if (d == NULL)
        return;
    /* EVP_PKEY_free clears the private scalar (BN_clear_free inside the EC key). */
    EVP_PKEY_free(d->key);
    OPENSSL_free(d);
}

static vtsm_status dhe_generate_now(enum vtsm_dhe_group g, struct vtsm_dhe **out, uint8_t *pub_xy)
{
    vtsm_status st = VTSM_OK;
    const char *gname = dhe_group_name(g);
    size_t half = dhe_half(g);
    struct vtsm_dhe *d = NULL;
    EVP_PKEY_CTX *kctx = NULL;
    uint8_t point[1 + VTSM_DHE_PUB_MAX];
    size_t plen = 0;

    VTSM_ENSURE(out != NULL && pub_xy != NULL, VTSM_E_INVAL, "dhe generate: NULL");
    *out = NULL;
    VTSM_ENSURE(gname != NULL, VTSM_E_UNSUPPORTED, "DHE group %d not supported", (int)g);
    d = OPENSSL_zalloc(sizeof(*d));
    VTSM_ENSURE(d != NULL, VTSM_E_NOMEM, "dhe context");
    d->group = g;
    VTSM_GUARD_GOTO(algs_ready());
    /* The key takes its group from the parameter key. */
    kctx = EVP_PKEY_CTX_new_from_pkey(NULL, algs.dhe_params[g], NULL);
    VTSM_ENSURE_GOTO(kctx != NULL, VTSM_E_NOMEM, "EVP_PKEY_CTX_new_from_pkey(%s)", gname);
    VTSM_OSSL_GOTO(EVP_PKEY_keygen_init(kctx));
    VTSM_OSSL_GOTO(EVP_PKEY_keygen(kctx, &d->key));
    VTSM_OSSL_GOTO(EVP_PKEY_get_octet_string_param(d->key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
                                                   point, sizeof(point), &plen));
    VTSM_ENSURE_GOTO(plen == 1 + 2 * half && point[0] == 0x04, VTSM_E_CRYPTO,
                     "public key is not an uncompressed point");
    memcpy(pub_xy, point + 1, 2 * half);
    *out = d;
    d = NULL;
out:
    EVP_PKEY_CTX_free(kctx);
    vtsm_dhe_free(d);
    return st;
}

/* Import a raw X||Y as a public key of group g; E_PEER_MALFORMED if it is not a valid point.
 * This is the one place a peer's exchange data is validated: both curves have prime order
 * (cofactor 1), so a point on the curve, not at infinity, with coordinates below the field
 * prime is in the prime-order group and the full check's n*Q adds nothing (NIST SP 800-56A
 * rev. 3, 5.6.2.3.4, partial public-key validation). */
static vtsm_status dhe_import_peer(enum vtsm_dhe_group g, const uint8_t *xy, size_t half,
                                   EVP_PKEY **out)
{
    vtsm_status st = VTSM_OK;
    EVP_PKEY_CTX *cctx = NULL;
    EVP_PKEY *peer = NULL;
    uint8_t point[1 + VTSM_DHE_PUB_MAX];

    VTSM_GUARD(algs_ready());
    point[0] = 0x04; /* SEC 1 2.3.3 uncompressed point */
    memcpy(point + 1, xy, 2 * half);
    peer = EVP_PKEY_new();
    VTSM_ENSURE(peer != NULL, VTSM_E_NOMEM, "EVP_PKEY_new");
    /* The group from the parameter key, then the point, which the decoding refuses if it
     * is not on the curve. */
    VTSM_OSSL_GOTO(EVP_PKEY_copy_parameters(peer, algs.dhe_params[g]));
    if (EVP_PKEY_set1_encoded_public_key(peer, point, 1 + 2 * half) != 1) {
        ERR_clear_error();
        st = vtsm_fail(VTSM_E_PEER_MALFORMED, "%s exchange data is not a point on the curve",
                       vtsm_dhe_name(g));
        goto out;
    }
    /* Partial public-key check: not infinity, coordinates in range, on the curve. */
    cctx = EVP_PKEY_CTX_new_from_pkey(NULL, peer, NULL);
    VTSM_ENSURE_GOTO(cctx != NULL, VTSM_E_NOMEM, "EVP_PKEY_CTX_new_from_pkey");
    if (EVP_PKEY_public_check_quick(cctx) != 1) {
        ERR_clear_error();
        st = vtsm_fail(VTSM_E_PEER_MALFORMED, "%s exchange data fails the public key check",
                       vtsm_dhe_name(g));
        goto out;
    }
    *out = peer;
    peer = NULL;
out:
    EVP_PKEY_free(peer);
    EVP_PKEY_CTX_free(cctx);
    return st;
}

static vtsm_status dhe_derive_now(struct vtsm_dhe *d, const uint8_t *peer_xy, size_t peer_len,
                                  uint8_t *secret)
{
    vtsm_status st = VTSM_OK;
    EVP_PKEY *peer = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    uint8_t buf[VTSM_DHE_SECRET_MAX];
    size_t half, n = sizeof(buf);

    VTSM_ENSURE(d != NULL && peer_xy != NULL && secret != NULL, VTSM_E_INVAL, "dhe derive: NULL");
    half = dhe_half(d->group);
    VTSM_ENSURE(peer_len == 2 * half, VTSM_E_PEER_MALFORMED,
                "%s exchange data must be %zu bytes, got %zu", vtsm_dhe_name(d->group), 2 * half,
                peer_len);
    VTSM_GUARD(dhe_import_peer(d->group, peer_xy, half, &peer));
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, d->key, NULL);
    VTSM_ENSURE_GOTO(ctx != NULL, VTSM_E_NOMEM, "EVP_PKEY_CTX_new_from_pkey");
    VTSM_OSSL_GOTO(EVP_PKEY_derive_init(ctx));
    /* The peer key was validated on import: no second (full) check here. */
    VTSM_OSSL_GOTO(EVP_PKEY_derive_set_peer_ex(ctx, peer, 0));
    VTSM_OSSL_GOTO(EVP_PKEY_derive(ctx, buf, &n));
    /* OpenSSL returns the X coordinate padded to the field size. */
    VTSM_ENSURE_GOTO(n == half, VTSM_E_CRYPTO, "ECDH secret of %zu bytes", n);
    memcpy(secret, buf, half);
out:
    OPENSSL_cleanse(buf, sizeof(buf));
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(peer);
    return st;
}

/* ---- AES-256-GCM ---- */

vtsm_status vtsm_aead_seal(const uint8_t key[VTSM_AEAD_KEY_SIZE],
                           const uint8_t iv[VTSM_AEAD_IV_SIZE], const uint8_t *aad, size_t aad_len,
                           const uint8_t *pt, size_t pt_len, uint8_t *ct,
                           uint8_t tag[VTSM_AEAD_TAG_SIZE])
{
    vtsm_status st = VTSM_OK;
    EVP_CIPHER_CTX *ctx = NULL;
    uint8_t dummy[16];
    int n = 0;

    VTSM_ENSURE(key != NULL && iv != NULL && tag != NULL && (aad != NULL || aad_len == 0) &&
                    ((pt != NULL && ct != NULL) || pt_len == 0),
                VTSM_E_INVAL, "aead seal: NULL");
    VTSM_ENSURE(aad_len <= INT_MAX && pt_len <= INT_MAX, VTSM_E_INVAL, "aead seal: too long");
    VTSM_GUARD(algs_ready());
    ctx = EVP_CIPHER_CTX_new();
    VTSM_ENSURE(ctx != NULL, VTSM_E_NOMEM, "EVP_CIPHER_CTX_new");
    VTSM_OSSL_GOTO(EVP_EncryptInit_ex(ctx, algs.gcm, NULL, NULL, NULL));
    VTSM_OSSL_GOTO(
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, VTSM_AEAD_IV_SIZE, NULL) > 0 ? 1 : 0);
    VTSM_OSSL_GOTO(EVP_EncryptInit_ex(ctx, NULL, NULL, key, iv));
    if (aad_len)
        VTSM_OSSL_GOTO(EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)aad_len));
    if (pt_len) {
        VTSM_OSSL_GOTO(EVP_EncryptUpdate(ctx, ct, &n, pt, (int)pt_len));
        VTSM_ENSURE_GOTO((size_t)n == pt_len, VTSM_E_CRYPTO, "GCM wrote %d of %zu", n, pt_len);
    }
    /* GCM writes nothing at the end; give it a valid pointer all the same. */
    VTSM_OSSL_GOTO(EVP_EncryptFinal_ex(ctx, ct ? ct + pt_len : dummy, &n));
    VTSM_OSSL_GOTO(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, VTSM_AEAD_TAG_SIZE, tag) > 0 ? 1
                                                                                               : 0);
out:
    EVP_CIPHER_CTX_free(ctx);
    return st;
}

vtsm_status vtsm_aead_open(const uint8_t key[VTSM_AEAD_KEY_SIZE],
                           const uint8_t iv[VTSM_AEAD_IV_SIZE], const uint8_t *aad, size_t aad_len,
                           const uint8_t *ct, size_t ct_len, const uint8_t tag[VTSM_AEAD_TAG_SIZE],
                           uint8_t *pt)
{
    vtsm_status st = VTSM_OK;
    EVP_CIPHER_CTX *ctx = NULL;
    uint8_t tagcopy[VTSM_AEAD_TAG_SIZE];
    uint8_t dummy[16];
    int n = 0;

    VTSM_ENSURE(key != NULL && iv != NULL && tag != NULL && (aad != NULL || aad_len == 0) &&
                    ((pt != NULL && ct != NULL) || ct_len == 0),
                VTSM_E_INVAL, "aead open: NULL");
    VTSM_ENSURE(aad_len <= INT_MAX && ct_len <= INT_MAX, VTSM_E_INVAL, "aead open: too long");
    memcpy(tagcopy, tag, sizeof(tagcopy));
    VTSM_GUARD(algs_ready());
    ctx = EVP_CIPHER_CTX_new();
    VTSM_ENSURE(ctx != NULL, VTSM_E_NOMEM, "EVP_CIPHER_CTX_new");
    VTSM_OSSL_GOTO(EVP_DecryptInit_ex(ctx, algs.gcm, NULL, NULL, NULL));
    VTSM_OSSL_GOTO(
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, VTSM_AEAD_IV_SIZE, NULL) > 0 ? 1 : 0);
    VTSM_OSSL_GOTO(EVP_DecryptInit_ex(ctx, NULL, NULL, key, iv));
    if (aad_len)
        VTSM_OSSL_GOTO(EVP_DecryptUpdate(ctx, NULL, &n, aad, (int)aad_len));
    if (ct_len) {
        VTSM_OSSL_GOTO(EVP_DecryptUpdate(ctx, pt, &n, ct, (int)ct_len));
        VTSM_ENSURE_GOTO((size_t)n == ct_len, VTSM_E_CRYPTO, "GCM wrote %d of %zu", n, ct_len);
    }
    VTSM_OSSL_GOTO(
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, VTSM_AEAD_TAG_SIZE, tagcopy) > 0 ? 1 : 0);
    /* The tag compare inside DecryptFinal is constant-time (CRYPTO_memcmp). */
    if (EVP_DecryptFinal_ex(ctx, pt ? pt + ct_len : dummy, &n) != 1) {
        ERR_clear_error();
        if (ct_len)
            OPENSSL_cleanse(pt, ct_len);
        st = vtsm_fail(VTSM_E_PEER_DECRYPT, "AES-256-GCM tag does not verify");
    }
out:
    if (st != VTSM_OK && st != VTSM_E_PEER_DECRYPT && ct_len && pt != NULL)
        OPENSSL_cleanse(pt, ct_len);
    EVP_CIPHER_CTX_free(ctx);
    return st;
}

/* ---- PEM ---- */

/* Read a private key, or failing that a public key, from a BIO holding PEM. */
static vtsm_status pkey_from_bio(BIO *(*reopen)(const void *, const void *), const void *a,
                                 const void *b, EVP_PKEY **out)
{
    BIO *bio = reopen(a, b);
    EVP_PKEY *k = NULL;

    VTSM_ENSURE(bio != NULL, VTSM_E_NOT_FOUND, "cannot open PEM source");
    k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (k == NULL) {
        ERR_clear_error();
        bio = reopen(a, b);
        VTSM_ENSURE(bio != NULL, VTSM_E_NOT_FOUND, "cannot open PEM source");
        k = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
        BIO_free(bio);
    }
    if (k == NULL) {
        ERR_clear_error();
        return vtsm_fail(VTSM_E_CONFIG, "no PEM private or public key found");
    }
    *out = k;
    return VTSM_OK;
}

static BIO *open_file(const void *path, const void *unused)
{
    (void)unused;
    return BIO_new_file(path, "r");
}

static BIO *open_mem(const void *pem, const void *lenp)
{
    return BIO_new_mem_buf(pem, (int)*(const size_t *)lenp);
}

vtsm_status vtsm_pkey_load_pem(const char *path, EVP_PKEY **out)
{
    vtsm_status st;

    VTSM_ENSURE(path != NULL && out != NULL, VTSM_E_INVAL, "pkey load: NULL");
    *out = NULL;
    st = pkey_from_bio(open_file, path, NULL, out);
    if (st == VTSM_E_NOT_FOUND) {
        ERR_clear_error();
        return vtsm_fail(VTSM_E_NOT_FOUND, "cannot open key file %s", path);
    }
    if (st != VTSM_OK)
        return vtsm_fail(st, "no PEM private or public key in %s", path);
    return VTSM_OK;
}

vtsm_status vtsm_pkey_from_pem(const void *pem, size_t len, EVP_PKEY **out)
{
    VTSM_ENSURE(pem != NULL && out != NULL, VTSM_E_INVAL, "pkey from pem: NULL");
    VTSM_ENSURE(len > 0 && len <= INT_MAX, VTSM_E_INVAL, "pkey from pem: length %zu", len);
    *out = NULL;
    return pkey_from_bio(open_mem, pem, &len, out);
}

/* ---- where the heavy operations run ---- */

static vtsm_crypto_exec_fn crypto_exec;
static vtsm_crypto_start_fn crypto_start;
static vtsm_crypto_wait_fn crypto_wait;

void vtsm_crypto_set_exec(vtsm_crypto_exec_fn exec)
{
    crypto_exec = exec;
}

void vtsm_crypto_set_async(vtsm_crypto_start_fn start, vtsm_crypto_wait_fn wait)
{
    crypto_start = start;
    crypto_wait = wait;
}

/* The arguments of one heavy operation, packed for the executor. */
struct heavy {
    enum { H_SIGN, H_VERIFY, H_DHE_GEN, H_DHE_DERIVE } op;
    EVP_PKEY *key;
    enum vtsm_asym_alg alg;
    enum vtsm_hash_alg hash;
    const void *msg;
    size_t len;
    uint8_t *out;
    const uint8_t *in;
    size_t in_len;
    enum vtsm_dhe_group group;
    struct vtsm_dhe *dhe, **dhe_out;
};

static vtsm_status heavy_run(void *arg)
{
    struct heavy *h = arg;
    switch (h->op) {
    case H_SIGN:
        return ecdsa_sign_now(h->key, h->alg, h->hash, h->msg, h->len, h->out);
    case H_VERIFY:
        return ecdsa_verify_now(h->key, h->alg, h->hash, h->msg, h->len, h->in, h->in_len);
    case H_DHE_GEN:
        return dhe_generate_now(h->group, h->dhe_out, h->out);
    case H_DHE_DERIVE:
        return dhe_derive_now(h->dhe, h->in, h->in_len, h->out);
    }
    return vtsm_fail(VTSM_E_INTERNAL, "unknown heavy operation");
}

static vtsm_status heavy(struct heavy *h)
{
    return crypto_exec ? crypto_exec(heavy_run, h) : heavy_run(h);
}

vtsm_status vtsm_ecdsa_sign(EVP_PKEY *key, enum vtsm_asym_alg alg, enum vtsm_hash_alg hash,
                            const void *msg, size_t len, uint8_t *sig)
{
    struct heavy h = {
        .op = H_SIGN, .key = key, .alg = alg, .hash = hash, .msg = msg, .len = len, .out = sig};
    return heavy(&h);
}

vtsm_status vtsm_ecdsa_verify(EVP_PKEY *pub, enum vtsm_asym_alg alg, enum vtsm_hash_alg hash,
                              const void *msg, size_t len, const uint8_t *sig, size_t sig_len)
{
    struct heavy h = {.op = H_VERIFY,
                      .key = pub,
                      .alg = alg,
                      .hash = hash,
                      .msg = msg,
                      .len = len,
                      .in = sig,
                      .in_len = sig_len};
    return heavy(&h);
}

vtsm_status vtsm_dhe_generate(enum vtsm_dhe_group g, struct vtsm_dhe **out, uint8_t *pub_xy)
{
    struct heavy h = {.op = H_DHE_GEN, .group = g, .dhe_out = out, .out = pub_xy};
    return heavy(&h);
}

vtsm_status vtsm_dhe_derive(struct vtsm_dhe *d, const uint8_t *peer_xy, size_t peer_len,
                            uint8_t *secret)
{
    struct heavy h = {
        .op = H_DHE_DERIVE, .dhe = d, .in = peer_xy, .in_len = peer_len, .out = secret};
    return heavy(&h);
}

vtsm_status vtsm_dhe_derive_start(struct vtsm_dhe *d, const uint8_t *peer_xy, size_t peer_len,
                                  uint8_t *secret, struct vtsm_crypto_pending *p)
{
    VTSM_ENSURE(p != NULL, VTSM_E_INVAL, "dhe_derive_start: NULL");
    memset(p, 0, sizeof(*p));
    struct heavy *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        p->st = vtsm_fail(VTSM_E_NOMEM, "dhe_derive_start");
        return p->st;
    }
    *h = (struct heavy){
        .op = H_DHE_DERIVE, .dhe = d, .in = peer_xy, .in_len = peer_len, .out = secret};
    p->op = h;
    p->handle = crypto_start ? crypto_start(heavy_run, h) : NULL;
    if (p->handle == NULL) {
        struct vtsm_err_state before;
        vtsm_err_save(&before);
        p->st = heavy(h); /* ran now */
        vtsm_err_save(&p->err);
        vtsm_err_restore(&before); /* the caller's record stays as it was until the wait */
    }
    return VTSM_OK;
}

vtsm_status vtsm_crypto_wait(struct vtsm_crypto_pending *p)
{
    if (p == NULL)
        return vtsm_fail(VTSM_E_INVAL, "crypto_wait: NULL");
    vtsm_status st = p->handle ? crypto_wait(p->handle) : p->st;
    if (p->handle == NULL && st != VTSM_OK)
        vtsm_err_restore(&p->err);
    free(p->op);
    memset(p, 0, sizeof(*p));
    return st;
}
