/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Certificate slots: the leaf key and the chain in the SPDM format (DSP0274 "Certificate
 * chain format"), for each base hash. The default and rogue test PKIs are compiled in
 * (cmake vtsm_embed), so the device needs no files.
 */
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "dev_internal.h"
#include "vtsm_cert.h"
#include "vtsm_guard.h"

#define EMBEDDED(sym)                                                                              \
    extern const unsigned char sym[];                                                              \
    extern const unsigned long sym##_len;

#define EMBEDDED_SET(set)                                                                          \
    EMBEDDED(vtsm_devemu_pki_##set##_root)                                                         \
    EMBEDDED(vtsm_devemu_pki_##set##_inter)                                                        \
    EMBEDDED(vtsm_devemu_pki_##set##_leaf)                                                         \
    EMBEDDED(vtsm_devemu_pki_##set##_key)

EMBEDDED_SET(p384)
EMBEDDED_SET(p256)
EMBEDDED_SET(rogue_p384)
EMBEDDED_SET(rogue_p256)

struct pem_blob {
    const unsigned char *p;
    const unsigned long *len;
};

struct embedded_pki {
    enum vtsm_asym_alg asym;
    bool rogue;
    struct pem_blob certs[3]; /* root, intermediate, leaf */
    struct pem_blob key;
};

#define PKI_ENTRY(set, alg, is_rogue)                                                              \
    {                                                                                              \
        alg, is_rogue,                                                                             \
            {{vtsm_devemu_pki_##set##_root, &vtsm_devemu_pki_##set##_root_len},                    \
             {vtsm_devemu_pki_##set##_inter, &vtsm_devemu_pki_##set##_inter_len},                  \
             {vtsm_devemu_pki_##set##_leaf, &vtsm_devemu_pki_##set##_leaf_len}},                   \
            {vtsm_devemu_pki_##set##_key, &vtsm_devemu_pki_##set##_key_len},                       \
    }

static const struct embedded_pki embedded[] = {
    PKI_ENTRY(p384, VTSM_ASYM_ECDSA_P384, false),
    PKI_ENTRY(p256, VTSM_ASYM_ECDSA_P256, false),
    PKI_ENTRY(rogue_p384, VTSM_ASYM_ECDSA_P384, true),
    PKI_ENTRY(rogue_p256, VTSM_ASYM_ECDSA_P256, true),
};

/* Append every certificate of a PEM text to ders (as DER). */
static vtsm_status pem_certs_to_der(const char *pem, size_t len, STACK_OF(X509) * certs)
{
    VTSM_ENSURE(len <= INT32_MAX, VTSM_E_CONFIG, "certificate PEM too large");
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    VTSM_ENSURE(bio, VTSM_E_NOMEM, "BIO_new_mem_buf");
    vtsm_status st = VTSM_OK;
    for (;;) {
        X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        if (!x)
            break;
        if (!sk_X509_push(certs, x)) {
            X509_free(x);
            st = vtsm_fail(VTSM_E_NOMEM, "sk_X509_push");
            break;
        }
    }
    /* The loop ends on "no more PEM objects", which leaves an error on the queue. */
    ERR_clear_error();
    BIO_free(bio);
    return st;
}

/* Fill one slot from certificates (first = root or first intermediate, last = leaf)
 * and the leaf private key. */
static vtsm_status slot_fill(struct dev_slot *s, enum vtsm_asym_alg asym, STACK_OF(X509) * certs,
                             EVP_PKEY *key, unsigned idx)
{
    vtsm_status st = VTSM_OK;
    int n = sk_X509_num(certs);
    uint8_t *ders[VTSM_CERT_MAX_CERTS] = {0};
    size_t lens[VTSM_CERT_MAX_CERTS] = {0};

    VTSM_ENSURE(n > 0, VTSM_E_CONFIG, "slot %u: no certificate found", idx);
    VTSM_ENSURE(n <= VTSM_CERT_MAX_CERTS, VTSM_E_CONFIG, "slot %u: %d certificates (max %d)", idx,
                n, VTSM_CERT_MAX_CERTS);
    VTSM_ENSURE(vtsm_pkey_asym(key) == asym, VTSM_E_CONFIG, "slot %u: leaf key is not an %s key",
                idx, vtsm_asym_name(asym));
    X509 *leaf = sk_X509_value(certs, n - 1);
    VTSM_ENSURE(EVP_PKEY_eq(X509_get0_pubkey(leaf), key) == 1, VTSM_E_CONFIG,
                "slot %u: private key does not match the leaf certificate", idx);

    for (int i = 0; i < n; i++) {
        int l = i2d_X509(sk_X509_value(certs, i), &ders[i]);
        VTSM_ENSURE_GOTO(l > 0, VTSM_E_CRYPTO, "slot %u: i2d_X509 failed", idx);
        lens[i] = (size_t)l;
    }
    static const enum vtsm_hash_alg hashes[2] = {VTSM_HASH_SHA256, VTSM_HASH_SHA384};
    for (int h = 0; h < 2; h++) {
        VTSM_GUARD_GOTO(vtsm_certchain_build(hashes[h], (const uint8_t *const *)ders, lens,
                                             (size_t)n, &s->chain[h]));
        VTSM_GUARD_GOTO(vtsm_hash(hashes[h], s->chain[h].data, s->chain[h].len, s->digest[h]));
    }
    VTSM_OSSL_GOTO(EVP_PKEY_up_ref(key));
    s->key = key;
    s->present = true;
out:
    for (int i = 0; i < n && i < VTSM_CERT_MAX_CERTS; i++)
        OPENSSL_free(ders[i]);
    return st;
}

static vtsm_status slot_load_pem(struct dev_slot *s, enum vtsm_asym_alg asym, unsigned idx,
                                 const struct pem_blob *certs, size_t n_certs, const char *cpem,
                                 size_t cpem_len, const void *kpem, size_t kpem_len)
{
    vtsm_status st = VTSM_OK;
    EVP_PKEY *key = NULL;
    STACK_OF(X509) *stack = sk_X509_new_null();
    VTSM_ENSURE(stack, VTSM_E_NOMEM, "sk_X509_new_null");

    for (size_t i = 0; i < n_certs; i++)
        VTSM_GUARD_GOTO(pem_certs_to_der((const char *)certs[i].p, *certs[i].len, stack));
    if (cpem)
        VTSM_GUARD_GOTO(pem_certs_to_der(cpem, cpem_len, stack));
    st = vtsm_pkey_from_pem(kpem, kpem_len, &key);
    VTSM_ENSURE_GOTO(st == VTSM_OK, VTSM_E_CONFIG, "slot %u: no private key in the key PEM", idx);
    VTSM_GUARD_GOTO(slot_fill(s, asym, stack, key, idx));
out:
    EVP_PKEY_free(key);
    sk_X509_pop_free(stack, X509_free);
    return st;
}

static const struct embedded_pki *embedded_find(enum vtsm_asym_alg asym, bool rogue)
{
    for (size_t i = 0; i < VTSM_ARRAY_SIZE(embedded); i++)
        if (embedded[i].asym == asym && embedded[i].rogue == rogue)
            return &embedded[i];
    return NULL;
}

vtsm_status dev_slots_load(struct vtsm_dev *d, const struct vtsm_dev_config *c)
{
    bool any = false;
    for (unsigned i = 0; i < VTSM_DEV_MAX_SLOTS; i++) {
        enum vtsm_dev_slot_kind kind = c->slots[i].kind;
        /* untrusted-chain: slot 0 serves the rogue chain and signs with its leaf key. */
        if (i == 0 && (c->faults & VTSM_DEV_FAULT_BIT(VTSM_DEV_FAULT_UNTRUSTED_CHAIN)))
            kind = VTSM_DEV_SLOT_ROGUE;
        struct dev_slot *s = &d->slots[i];
        switch (kind) {
        case VTSM_DEV_SLOT_EMPTY:
            continue;
        case VTSM_DEV_SLOT_DEFAULT:
        case VTSM_DEV_SLOT_ROGUE: {
            const struct embedded_pki *e = embedded_find(c->asym, kind == VTSM_DEV_SLOT_ROGUE);
            VTSM_ENSURE(e, VTSM_E_CONFIG, "slot %u: no embedded PKI for %s", i,
                        vtsm_asym_name(c->asym));
            VTSM_GUARD(slot_load_pem(s, c->asym, i, e->certs, 3, NULL, 0, e->key.p, *e->key.len));
            break;
        }
        case VTSM_DEV_SLOT_PEM:
            VTSM_ENSURE(c->slots[i].certs_pem && c->slots[i].key_pem, VTSM_E_CONFIG,
                        "slot %u: PEM slot without certs_pem/key_pem", i);
            VTSM_GUARD(slot_load_pem(s, c->asym, i, NULL, 0, c->slots[i].certs_pem,
                                     c->slots[i].certs_pem_len, c->slots[i].key_pem,
                                     c->slots[i].key_pem_len));
            break;
        default:
            return vtsm_fail(VTSM_E_CONFIG, "slot %u: unknown kind %d", i, (int)kind);
        }
        any = true;
    }
    VTSM_ENSURE(any, VTSM_E_CONFIG, "no certificate slot populated");
    return VTSM_OK;
}

void dev_slots_free(struct vtsm_dev *d)
{
    for (unsigned i = 0; i < VTSM_DEV_MAX_SLOTS; i++) {
        struct dev_slot *s = &d->slots[i];
        EVP_PKEY_free(s->key);
        vtsm_buf_free(&s->chain[0]);
        vtsm_buf_free(&s->chain[1]);
        memset(s, 0, sizeof(*s));
    }
}
