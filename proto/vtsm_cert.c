/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * SPDM certificate chains (DSP0274 "Certificate chain format") and their validation
 * against a trust store with OpenSSL.
 */
#include "vtsm_cert.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "vtsm_guard.h"

#define CHAIN_HDR 4 /* Length (2) + Reserved (2) */

/* ---- build ---- */

vtsm_status vtsm_certchain_build(enum vtsm_hash_alg hash, const uint8_t *const *ders,
                                 const size_t *der_lens, size_t n, struct vtsm_buf *out)
{
    size_t h = vtsm_hash_size(hash);
    size_t total;
    uint8_t root_hash[VTSM_HASH_MAX];
    uint8_t hdr[CHAIN_HDR];

    VTSM_ENSURE(h != 0, VTSM_E_UNSUPPORTED, "hash algorithm %d", (int)hash);
    VTSM_ENSURE(ders != NULL && der_lens != NULL && out != NULL, VTSM_E_INVAL,
                "certchain build: NULL");
    VTSM_ENSURE(n >= 1 && n <= VTSM_CERT_MAX_CERTS, VTSM_E_INVAL, "%zu certificates", n);
    total = CHAIN_HDR + h;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *p = ders[i];
        X509 *x;

        VTSM_ENSURE(ders[i] != NULL && der_lens[i] > 0 && der_lens[i] <= VTSM_CERT_CHAIN_MAX,
                    VTSM_E_INVAL, "certificate %zu empty or too large", i);
        x = d2i_X509(NULL, &p, (long)der_lens[i]);
        X509_free(x);
        if (x == NULL || (size_t)(p - ders[i]) != der_lens[i]) {
            ERR_clear_error();
            return vtsm_fail(VTSM_E_INVAL, "certificate %zu is not exactly one DER X.509", i);
        }
        total += der_lens[i];
        VTSM_ENSURE(total <= VTSM_CERT_CHAIN_MAX, VTSM_E_INVAL,
                    "certificate chain exceeds %d bytes", VTSM_CERT_CHAIN_MAX);
    }
    VTSM_GUARD(vtsm_hash(hash, ders[0], der_lens[0], root_hash));
    vtsm_put_le16(hdr, (uint16_t)total);
    vtsm_put_le16(hdr + 2, 0);
    vtsm_buf_reset(out);
    VTSM_GUARD(vtsm_buf_reserve(out, total));
    VTSM_GUARD(vtsm_buf_append(out, hdr, sizeof(hdr)));
    VTSM_GUARD(vtsm_buf_append(out, root_hash, h));
    for (size_t i = 0; i < n; i++)
        VTSM_GUARD(vtsm_buf_append(out, ders[i], der_lens[i]));
    return VTSM_OK;
}

/* ---- parse ---- */

/*
 * Size of the DER element (tag + length + content) at the reader's position, from its
 * header alone: a SEQUENCE with a definite length of at most 2 length bytes (a chain is
 * at most 64 KiB, so nothing longer is legal here).
 */
static vtsm_status der_element_size(const struct vtsm_rd *r, size_t *size)
{
    struct vtsm_rd h = *r;
    uint8_t tag = 0, l0 = 0, b = 0;
    size_t len = 0, hdr = 2;

    VTSM_ENSURE(vtsm_rd_u8(&h, &tag) == VTSM_OK && vtsm_rd_u8(&h, &l0) == VTSM_OK,
                VTSM_E_PEER_CHAIN, "certificate header truncated at offset %zu", r->off);
    VTSM_ENSURE(tag == 0x30, VTSM_E_PEER_CHAIN,
                "certificate at offset %zu is not a DER SEQUENCE (tag 0x%02x)", r->off, tag);
    if (l0 < 0x80) {
        len = l0;
    } else {
        size_t nbytes = l0 & 0x7F;

        VTSM_ENSURE(nbytes >= 1 && nbytes <= 2, VTSM_E_PEER_CHAIN,
                    "certificate at offset %zu has length form 0x%02x", r->off, l0);
        for (size_t i = 0; i < nbytes; i++) {
            VTSM_ENSURE(vtsm_rd_u8(&h, &b) == VTSM_OK, VTSM_E_PEER_CHAIN,
                        "certificate length truncated at offset %zu", r->off);
            len = (len << 8) | b;
        }
        hdr += nbytes;
    }
    *size = hdr + len;
    VTSM_ENSURE(vtsm_rd_need(r, *size) == VTSM_OK, VTSM_E_PEER_CHAIN,
                "certificate at offset %zu claims %zu bytes, %zu left", r->off, *size,
                vtsm_rd_left(r));
    return VTSM_OK;
}

/*
 * Parsed certificates, kept by their exact DER bytes. With OpenSSL 3.0, d2i_X509 decodes
 * the SubjectPublicKeyInfo through the provider decoder machinery, which gathers every
 * decoder and key manager on each call: about 1.5M instructions per certificate, more than
 * an ECDSA P-256 verification, and a third of a whole P-256 connect. A device sends the
 * same chain on every connect and devices of one model share their root and intermediates,
 * so a certificate seen before is not parsed again. An X509 does not change once parsed
 * (its lazily computed extension cache is locked inside OpenSSL) and is reference counted,
 * so chains share one. A hit needs the same length and the same bytes (memcmp): exactly
 * what d2i_X509 consumed before, so the result is what a new parse would give. The least
 * recently used entry makes room; the rest is freed at exit.
 */
#define CERT_CACHE_SLOTS   32
#define CERT_CACHE_DER_MAX 16384 /* larger certificates are parsed every time */

struct cert_slot {
    uint8_t *der;
    size_t len;
    X509 *x;
    uint64_t used; /* cert_cache.tick of the last hit; 0 = free */
};

static struct {
    pthread_mutex_t lock;
    struct cert_slot slot[CERT_CACHE_SLOTS];
    uint64_t tick;
    bool exit_hook; /* cert_cache_free registered with atexit */
} cert_cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void cert_slot_clear(struct cert_slot *e)
{
    X509_free(e->x);
    OPENSSL_free(e->der);
    memset(e, 0, sizeof(*e));
}

static void cert_cache_free(void)
{
    pthread_mutex_lock(&cert_cache.lock);
    for (size_t i = 0; i < CERT_CACHE_SLOTS; i++)
        cert_slot_clear(&cert_cache.slot[i]);
    pthread_mutex_unlock(&cert_cache.lock);
}

/* A new reference to the cached certificate with these DER bytes, or NULL. */
static X509 *cert_cache_get(const uint8_t *der, size_t len)
{
    X509 *x = NULL;

    pthread_mutex_lock(&cert_cache.lock);
    for (size_t i = 0; i < CERT_CACHE_SLOTS; i++) {
        struct cert_slot *e = &cert_cache.slot[i];

        if (e->used != 0 && e->len == len && memcmp(e->der, der, len) == 0) {
            if (X509_up_ref(e->x) == 1) {
                x = e->x;
                e->used = ++cert_cache.tick;
            }
            break;
        }
    }
    pthread_mutex_unlock(&cert_cache.lock);
    return x;
}

/* Keep x (parsed from exactly these DER bytes) for later chains; best effort. */
static void cert_cache_put(const uint8_t *der, size_t len, X509 *x)
{
    struct cert_slot *victim = NULL;

    if (len > CERT_CACHE_DER_MAX)
        return;
    pthread_mutex_lock(&cert_cache.lock);
    /* The exit hook goes in after OpenSSL's (d2i_X509 has initialised it), so it runs
     * first; without it nothing is kept, so nothing is left for LeakSanitizer. */
    if (!cert_cache.exit_hook && atexit(cert_cache_free) == 0)
        cert_cache.exit_hook = true;
    for (size_t i = 0; cert_cache.exit_hook && i < CERT_CACHE_SLOTS; i++) {
        struct cert_slot *e = &cert_cache.slot[i];

        if (e->used != 0 && e->len == len && memcmp(e->der, der, len) == 0) {
            victim = NULL; /* another thread put it meanwhile */
            break;
        }
        if (victim == NULL || e->used < victim->used)
            victim = e;
    }
    if (victim != NULL) {
        uint8_t *copy = OPENSSL_memdup(der, len);

        if (copy != NULL && X509_up_ref(x) == 1) {
            cert_slot_clear(victim);
            victim->der = copy;
            victim->len = len;
            victim->x = x;
            victim->used = ++cert_cache.tick;
        } else {
            OPENSSL_free(copy);
        }
    }
    pthread_mutex_unlock(&cert_cache.lock);
}

void vtsm_certchain_free(struct vtsm_certchain *c)
{
    if (c == NULL)
        return;
    sk_X509_pop_free(c->certs, X509_free);
    EVP_PKEY_free(c->leaf_key);
    memset(c, 0, sizeof(*c));
}

vtsm_status vtsm_certchain_parse(const uint8_t *chain, size_t len, enum vtsm_hash_alg hash,
                                 enum vtsm_asym_alg asym, struct vtsm_certchain *out)
{
    vtsm_status st = VTSM_OK;
    size_t h = vtsm_hash_size(hash);
    struct vtsm_rd r;
    uint16_t length = 0, reserved = 0;
    X509 *x = NULL, *first, *leaf;
    uint8_t digest[VTSM_HASH_MAX];
    enum vtsm_asym_alg leaf_alg;
    EVP_PKEY_CTX *kctx = NULL;
    const uint8_t *first_der = NULL;
    size_t first_len = 0;

    VTSM_ENSURE(out != NULL, VTSM_E_INVAL, "certchain parse: NULL out");
    memset(out, 0, sizeof(*out));
    VTSM_ENSURE(h != 0, VTSM_E_UNSUPPORTED, "hash algorithm %d", (int)hash);
    VTSM_ENSURE(chain != NULL || len == 0, VTSM_E_INVAL, "certchain parse: NULL chain");
    out->hash = hash;
    out->root_hash_len = h;
    out->certs = sk_X509_new_null();
    VTSM_ENSURE(out->certs != NULL, VTSM_E_NOMEM, "certificate stack");

    /* Header: Length | Reserved | RootHash. */
    r = vtsm_rd_init(chain, len);
    VTSM_ENSURE_GOTO(
        vtsm_rd_le16(&r, &length) == VTSM_OK && vtsm_rd_le16(&r, &reserved) == VTSM_OK &&
            vtsm_rd_bytes(&r, out->root_hash, h) == VTSM_OK,
        VTSM_E_PEER_CHAIN, "certificate chain of %zu bytes shorter than its header", len);
    VTSM_ENSURE_GOTO(length == len, VTSM_E_PEER_CHAIN,
                     "certificate chain Length %u differs from the %zu bytes received", length,
                     len);
    VTSM_ENSURE_GOTO(vtsm_rd_left(&r) > 0, VTSM_E_PEER_CHAIN,
                     "certificate chain holds no certificate");

    /* Certificates: each bounded by its own DER header, parsed, exactly consumed. */
    while (vtsm_rd_left(&r) > 0) {
        size_t size = 0;
        const uint8_t *der = NULL;
        const unsigned char *p;

        VTSM_ENSURE_GOTO((size_t)sk_X509_num(out->certs) < VTSM_CERT_MAX_CERTS, VTSM_E_PEER_CHAIN,
                         "certificate chain holds more than %d certificates", VTSM_CERT_MAX_CERTS);
        VTSM_GUARD_GOTO(der_element_size(&r, &size));
        VTSM_GUARD_GOTO(vtsm_rd_ref(&r, &der, size));
        if (first_der == NULL) {
            first_der = der;
            first_len = size;
        }
        x = cert_cache_get(der, size);
        if (x == NULL) {
            p = der;
            x = d2i_X509(NULL, &p, (long)size);
            if (x == NULL || (size_t)(p - der) != size) {
                ERR_clear_error();
                st = vtsm_fail(VTSM_E_PEER_CHAIN, "certificate %d does not parse as DER X.509",
                               sk_X509_num(out->certs));
                goto out;
            }
            cert_cache_put(der, size, x);
        }
        VTSM_ENSURE_GOTO(sk_X509_push(out->certs, x) > 0, VTSM_E_NOMEM, "sk_X509_push");
        x = NULL;
    }

    /* RootHash: checkable here only if the chain starts with the root itself. */
    first = sk_X509_value(out->certs, 0);
    out->root_in_chain = (X509_get_extension_flags(first) & EXFLAG_SS) != 0;
    if (out->root_in_chain) {
        /* the root's bytes as received, which d2i_X509 consumed exactly */
        VTSM_GUARD_GOTO(vtsm_hash(hash, first_der, first_len, digest));
        VTSM_ENSURE_GOTO(CRYPTO_memcmp(digest, out->root_hash, h) == 0, VTSM_E_PEER_DIGEST,
                         "certificate chain RootHash is not the %s of its root certificate",
                         vtsm_hash_name(hash));
    }

    /* Leaf key: the algorithm the responder will sign with. */
    leaf = sk_X509_value(out->certs, sk_X509_num(out->certs) - 1);
    out->leaf_key = X509_get_pubkey(leaf);
    VTSM_ENSURE_GOTO(out->leaf_key != NULL, VTSM_E_PEER_CHAIN, "leaf public key unreadable");
    /* The one validation of the responder's signing key, where it is imported. The decoder
     * has put the point on the curve; the partial check adds not-infinity and coordinates in
     * range, which is all a prime-order curve (P-256, P-384) needs: no n*Q. */
    kctx = EVP_PKEY_CTX_new_from_pkey(NULL, out->leaf_key, NULL);
    VTSM_ENSURE_GOTO(kctx != NULL, VTSM_E_NOMEM, "EVP_PKEY_CTX_new_from_pkey");
    VTSM_ENSURE_GOTO(EVP_PKEY_public_check_quick(kctx) == 1, VTSM_E_PEER_CHAIN,
                     "leaf public key fails the public key check");
    leaf_alg = vtsm_pkey_asym(out->leaf_key);
    if (asym == VTSM_ASYM_NONE)
        VTSM_ENSURE_GOTO(leaf_alg != VTSM_ASYM_NONE, VTSM_E_PEER_ALGO,
                         "leaf key is neither ECDSA P-256 nor P-384");
    else
        VTSM_ENSURE_GOTO(leaf_alg == asym, VTSM_E_PEER_ALGO, "leaf key is %s, negotiated %s",
                         vtsm_asym_name(leaf_alg), vtsm_asym_name(asym));
out:
    EVP_PKEY_CTX_free(kctx);
    X509_free(x);
    if (st != VTSM_OK) {
        /* a failed parse leaves nothing behind (freeing *out again is harmless) */
        vtsm_certchain_free(out);
        ERR_clear_error();
    }
    return st;
}

/* ---- trust store ---- */

struct vtsm_trust {
    X509_STORE *store;
};

vtsm_status vtsm_trust_new(struct vtsm_trust **out)
{
    struct vtsm_trust *t;

    VTSM_ENSURE(out != NULL, VTSM_E_INVAL, "trust new: NULL");
    *out = NULL;
    t = OPENSSL_zalloc(sizeof(*t));
    VTSM_ENSURE(t != NULL, VTSM_E_NOMEM, "trust store");
    t->store = X509_STORE_new();
    if (t->store == NULL) {
        OPENSSL_free(t);
        return vtsm_fail(VTSM_E_NOMEM, "X509_STORE_new");
    }
    *out = t;
    return VTSM_OK;
}

void vtsm_trust_free(struct vtsm_trust *t)
{
    if (t == NULL)
        return;
    X509_STORE_free(t->store);
    OPENSSL_free(t);
}

size_t vtsm_trust_count(const struct vtsm_trust *t)
{
    STACK_OF(X509_OBJECT) * objs;
    size_t n = 0;

    if (t == NULL)
        return 0;
    objs = X509_STORE_get0_objects(t->store);
    for (int i = 0; i < sk_X509_OBJECT_num(objs); i++)
        if (X509_OBJECT_get_type(sk_X509_OBJECT_value(objs, i)) == X509_LU_X509)
            n++;
    return n;
}

/* Add every certificate of a PEM stream; *added counts them. */
static vtsm_status trust_add_bio(struct vtsm_trust *t, BIO *bio, size_t *added)
{
    vtsm_status st = VTSM_OK;
    STACK_OF(X509_INFO) *infos = PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL);

    *added = 0;
    if (infos == NULL) {
        ERR_clear_error();
        return vtsm_fail(VTSM_E_CONFIG, "unreadable PEM");
    }
    for (int i = 0; i < sk_X509_INFO_num(infos); i++) {
        X509_INFO *info = sk_X509_INFO_value(infos, i);

        if (info->x509 == NULL)
            continue;
        VTSM_OSSL_GOTO(X509_STORE_add_cert(t->store, info->x509));
        (*added)++;
    }
out:
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    return st;
}

static vtsm_status trust_add_file(struct vtsm_trust *t, const char *path, size_t *added)
{
    vtsm_status st;
    BIO *bio = BIO_new_file(path, "r");

    if (bio == NULL) {
        ERR_clear_error();
        return vtsm_fail(VTSM_E_NOT_FOUND, "cannot open trust file %s", path);
    }
    st = trust_add_bio(t, bio, added);
    BIO_free(bio);
    if (st == VTSM_E_CONFIG)
        return vtsm_fail(st, "no PEM certificate in %s", path);
    return st;
}

static bool has_cert_suffix(const char *name)
{
    size_t n = strlen(name);

    return (n > 4 && strcmp(name + n - 4, ".pem") == 0) ||
           (n > 4 && strcmp(name + n - 4, ".crt") == 0);
}

vtsm_status vtsm_trust_add_path(struct vtsm_trust *t, const char *path)
{
    vtsm_status st = VTSM_OK;
    struct stat sb;
    DIR *dir = NULL;
    struct dirent *de;
    size_t total = 0, added = 0;
    char file[PATH_MAX];

    VTSM_ENSURE(t != NULL && path != NULL, VTSM_E_INVAL, "trust add: NULL");
    VTSM_ENSURE(stat(path, &sb) == 0, VTSM_E_NOT_FOUND, "trust path %s: %s", path, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) {
        VTSM_GUARD(trust_add_file(t, path, &added));
        VTSM_ENSURE(added > 0, VTSM_E_CONFIG, "no certificate in %s", path);
        return VTSM_OK;
    }
    dir = opendir(path);
    VTSM_ENSURE(dir != NULL, VTSM_E_NOT_FOUND, "trust directory %s: %s", path, strerror(errno));
    while ((de = readdir(dir)) != NULL) {
        if (de->d_name[0] == '.' || !has_cert_suffix(de->d_name))
            continue;
        VTSM_ENSURE_GOTO((size_t)snprintf(file, sizeof(file), "%s/%s", path, de->d_name) <
                             sizeof(file),
                         VTSM_E_CONFIG, "trust path too long: %s/%s", path, de->d_name);
        if (stat(file, &sb) != 0 || !S_ISREG(sb.st_mode))
            continue;
        VTSM_GUARD_GOTO(trust_add_file(t, file, &added));
        total += added;
    }
    VTSM_ENSURE_GOTO(total > 0, VTSM_E_CONFIG, "no *.pem / *.crt certificate in %s", path);
out:
    closedir(dir);
    return st;
}

vtsm_status vtsm_trust_add_pem(struct vtsm_trust *t, const void *pem, size_t len)
{
    vtsm_status st;
    BIO *bio;
    size_t added = 0;

    VTSM_ENSURE(t != NULL && pem != NULL, VTSM_E_INVAL, "trust add pem: NULL");
    VTSM_ENSURE(len > 0 && len <= INT_MAX, VTSM_E_INVAL, "trust add pem: length %zu", len);
    bio = BIO_new_mem_buf(pem, (int)len);
    VTSM_ENSURE(bio != NULL, VTSM_E_NOMEM, "BIO_new_mem_buf");
    st = trust_add_bio(t, bio, &added);
    BIO_free(bio);
    VTSM_GUARD(st);
    VTSM_ENSURE(added > 0, VTSM_E_CONFIG, "no certificate in the PEM text");
    return VTSM_OK;
}

static void set_reason(char *reason, size_t reason_len, const char *what, int depth)
{
    if (reason != NULL && reason_len > 0)
        snprintf(reason, reason_len, "%s (depth %d)", what, depth);
}

vtsm_status vtsm_trust_verify(const struct vtsm_trust *t, const struct vtsm_certchain *c,
                              char *reason, size_t reason_len)
{
    vtsm_status st = VTSM_OK;
    X509_STORE_CTX *ctx = NULL;
    STACK_OF(X509) *untrusted = NULL;
    X509_VERIFY_PARAM *param;
    X509 *leaf;
    int n, err, depth;

    if (reason != NULL && reason_len > 0)
        reason[0] = '\0';
    VTSM_ENSURE(t != NULL && c != NULL, VTSM_E_INVAL, "trust verify: NULL");
    n = c->certs ? sk_X509_num(c->certs) : 0;
    VTSM_ENSURE(n > 0, VTSM_E_INVAL, "trust verify: empty chain");
    leaf = sk_X509_value(c->certs, n - 1);
    untrusted = sk_X509_new_null();
    VTSM_ENSURE(untrusted != NULL, VTSM_E_NOMEM, "certificate stack");
    for (int i = 0; i < n - 1; i++)
        VTSM_ENSURE_GOTO(sk_X509_push(untrusted, sk_X509_value(c->certs, i)) > 0, VTSM_E_NOMEM,
                         "sk_X509_push");
    ctx = X509_STORE_CTX_new();
    VTSM_ENSURE_GOTO(ctx != NULL, VTSM_E_NOMEM, "X509_STORE_CTX_new");
    VTSM_OSSL_GOTO(X509_STORE_CTX_init(ctx, t->store, leaf, untrusted));
    /* SPDM defines no X.509 purpose OpenSSL knows; check the chain itself. Time is the
     * current time (the default): ordinary validity checking, nothing more. */
    param = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_ANY);
    X509_VERIFY_PARAM_set_depth(param, VTSM_CERT_MAX_CERTS);
    if (X509_verify_cert(ctx) != 1) {
        err = X509_STORE_CTX_get_error(ctx);
        depth = X509_STORE_CTX_get_error_depth(ctx);
        ERR_clear_error();
        set_reason(reason, reason_len, X509_verify_cert_error_string(err), depth);
        st = vtsm_fail(VTSM_E_PEER_UNTRUSTED, "certificate chain not trusted: %s (depth %d)",
                       X509_verify_cert_error_string(err), depth);
        goto out;
    }
    if (!c->root_in_chain) {
        /* DSP0274: RootHash is the digest of the root; here the root is our anchor. */
        STACK_OF(X509) *vchain = X509_STORE_CTX_get0_chain(ctx);
        X509 *anchor = sk_X509_value(vchain, sk_X509_num(vchain) - 1);
        unsigned char *der = NULL;
        int der_len = i2d_X509(anchor, &der);
        uint8_t digest[VTSM_HASH_MAX];

        VTSM_ENSURE_GOTO(der_len > 0, VTSM_E_CRYPTO, "i2d_X509");
        st = vtsm_hash(c->hash, der, (size_t)der_len, digest);
        OPENSSL_free(der);
        VTSM_GUARD_GOTO(st);
        if (CRYPTO_memcmp(digest, c->root_hash, c->root_hash_len) != 0) {
            set_reason(reason, reason_len, "RootHash does not match the trusted root",
                       sk_X509_num(vchain) - 1);
            st = vtsm_fail(VTSM_E_PEER_DIGEST,
                           "certificate chain RootHash does not match the trusted root");
        }
    }
out:
    X509_STORE_CTX_free(ctx);
    sk_X509_free(untrusted);
    return st;
}
