/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Cryptographic primitives over OpenSSL 3, in the shapes SPDM needs: raw r||s ECDSA
 * signatures, raw X||Y DHE public keys, HKDF, AES-256-GCM with detached 16-byte tags.
 * Every secret produced here lives in caller memory; callers wipe it with
 * OPENSSL_cleanse(). Functions return VTSM_OK or a status with a vtsm_fail() detail.
 */
#ifndef VTSM_CRYPTO_H
#define VTSM_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "vtsm_err.h"

enum vtsm_hash_alg { VTSM_HASH_NONE = 0, VTSM_HASH_SHA256 = 1, VTSM_HASH_SHA384 = 2 };
enum vtsm_asym_alg { VTSM_ASYM_NONE = 0, VTSM_ASYM_ECDSA_P256 = 1, VTSM_ASYM_ECDSA_P384 = 2 };
enum vtsm_dhe_group { VTSM_DHE_NONE = 0, VTSM_DHE_SECP256R1 = 1, VTSM_DHE_SECP384R1 = 2 };
enum vtsm_aead_alg { VTSM_AEAD_NONE = 0, VTSM_AEAD_AES_256_GCM = 1 };

#define VTSM_HASH_MAX       48 /* largest supported digest (SHA-384) */
#define VTSM_SIG_MAX        96 /* raw r||s for P-384 */
#define VTSM_DHE_PUB_MAX    96 /* raw X||Y for secp384r1 */
#define VTSM_DHE_SECRET_MAX 48
#define VTSM_AEAD_KEY_SIZE  32 /* AES-256-GCM */
#define VTSM_AEAD_IV_SIZE   12
#define VTSM_AEAD_TAG_SIZE  16

size_t vtsm_hash_size(enum vtsm_hash_alg alg);      /* 0 if unsupported */
size_t vtsm_sig_size(enum vtsm_asym_alg alg);       /* raw r||s size */
size_t vtsm_dhe_pub_size(enum vtsm_dhe_group g);    /* raw X||Y size */
size_t vtsm_dhe_secret_size(enum vtsm_dhe_group g); /* shared secret (X coordinate) size */
const char *vtsm_hash_name(enum vtsm_hash_alg alg); /* "sha256" ... */
const char *vtsm_asym_name(enum vtsm_asym_alg alg); /* "ecdsa-p256" ... */
const char *vtsm_dhe_name(enum vtsm_dhe_group g);   /* "secp256r1" ... */
const char *vtsm_aead_name(enum vtsm_aead_alg a);   /* "aes-256-gcm" */

vtsm_status vtsm_random(void *out, size_t len);

/* One-shot digest; out holds vtsm_hash_size(alg) bytes. */
vtsm_status vtsm_hash(enum vtsm_hash_alg alg, const void *data, size_t len, uint8_t *out);

/* Incremental digest whose intermediate value can be read without ending it (transcripts). */
struct vtsm_hash_ctx;
vtsm_status vtsm_hash_ctx_new(enum vtsm_hash_alg alg, struct vtsm_hash_ctx **out);
vtsm_status vtsm_hash_ctx_update(struct vtsm_hash_ctx *c, const void *data, size_t len);
/* Digest of everything so far; c stays usable. */
vtsm_status vtsm_hash_ctx_peek(const struct vtsm_hash_ctx *c, uint8_t *out);
vtsm_status vtsm_hash_ctx_dup(const struct vtsm_hash_ctx *c, struct vtsm_hash_ctx **out);
void vtsm_hash_ctx_free(struct vtsm_hash_ctx *c);

vtsm_status vtsm_hmac(enum vtsm_hash_alg alg, const uint8_t *key, size_t key_len, const void *data,
                      size_t len, uint8_t *out);
/* RFC 5869. prk holds vtsm_hash_size(alg) bytes. */
vtsm_status vtsm_hkdf_extract(enum vtsm_hash_alg alg, const uint8_t *salt, size_t salt_len,
                              const uint8_t *ikm, size_t ikm_len, uint8_t *prk);
vtsm_status vtsm_hkdf_expand(enum vtsm_hash_alg alg, const uint8_t *prk, size_t prk_len,
                             const uint8_t *info, size_t info_len, uint8_t *out, size_t out_len);

/* ECDSA with the raw r||s encoding SPDM uses (each half left-padded to the curve size).
 * The message is hashed with `hash` inside. sig holds vtsm_sig_size(alg) bytes.
 * verify returns E_PEER_SIGNATURE on mismatch, E_PEER_MALFORMED if sig_len is not
 * vtsm_sig_size(alg), E_PEER_ALGO if pub is not a key of curve alg. sign refuses a key of
 * another curve with E_INVAL. */
vtsm_status vtsm_ecdsa_sign(EVP_PKEY *key, enum vtsm_asym_alg alg, enum vtsm_hash_alg hash,
                            const void *msg, size_t len, uint8_t *sig);
vtsm_status vtsm_ecdsa_verify(EVP_PKEY *pub, enum vtsm_asym_alg alg, enum vtsm_hash_alg hash,
                              const void *msg, size_t len, const uint8_t *sig, size_t sig_len);
/* Which vtsm_asym_alg a key is (by curve), VTSM_ASYM_NONE if neither P-256 nor P-384. */
enum vtsm_asym_alg vtsm_pkey_asym(EVP_PKEY *key);

/*
 * Where the heavy operations run: ECDSA sign and verify, and ECDHE key generation and
 * derivation call exec(fn, arg) when one is set, else fn(arg) on the calling thread.
 * tsmd sets one that runs fn on its crypto worker while the calling job yields
 * (docs/architecture.md "Crypto off the loop"). exec must return fn's status with the
 * error record fn left (vtsm_err_save/restore across threads). Set it once, before any
 * thread uses these functions.
 */
typedef vtsm_status (*vtsm_crypto_work_fn)(void *arg);
typedef vtsm_status (*vtsm_crypto_exec_fn)(vtsm_crypto_work_fn fn, void *arg);
void vtsm_crypto_set_exec(vtsm_crypto_exec_fn exec);

/* Ephemeral ECDHE. The private key never leaves the object; free wipes it. */
struct vtsm_dhe;
vtsm_status vtsm_dhe_generate(enum vtsm_dhe_group g, struct vtsm_dhe **out, uint8_t *pub_xy);
/* peer_xy is the raw X||Y. It is validated once, on import, with the partial public-key
 * check a prime-order curve needs (on the curve, not infinity, coordinates in range; no
 * n*Q); an invalid point gives E_PEER_MALFORMED. */
vtsm_status vtsm_dhe_derive(struct vtsm_dhe *d, const uint8_t *peer_xy, size_t peer_len,
                            uint8_t *secret);
void vtsm_dhe_free(struct vtsm_dhe *d);

/*
 * A derivation begun now and collected later, so that the caller can do other work (a
 * signature check) meanwhile: with an executor that can (vtsm_crypto_set_async; tsmd's
 * posts it to its crypto worker) the two run at once, otherwise the derivation runs at
 * start. d, peer_xy and secret must stay valid, and the caller must call
 * vtsm_crypto_wait on every path (it returns the derivation's status and error record).
 */
struct vtsm_crypto_pending {
    void *op;     /* the operation (private) */
    void *handle; /* the executor's, NULL when it ran at start */
    vtsm_status st;
    struct vtsm_err_state err; /* the error record it left, when it ran at start */
};
vtsm_status vtsm_dhe_derive_start(struct vtsm_dhe *d, const uint8_t *peer_xy, size_t peer_len,
                                  uint8_t *secret, struct vtsm_crypto_pending *p);
vtsm_status vtsm_crypto_wait(struct vtsm_crypto_pending *p);
/* start(fn, arg) posts fn(arg) and returns a handle, or NULL when it will not (the caller
 * then runs it through the ordinary path); wait(handle) returns its status with its error
 * record. Set once, like vtsm_crypto_set_exec. */
typedef void *(*vtsm_crypto_start_fn)(vtsm_crypto_work_fn fn, void *arg);
typedef vtsm_status (*vtsm_crypto_wait_fn)(void *handle);
void vtsm_crypto_set_async(vtsm_crypto_start_fn start, vtsm_crypto_wait_fn wait);

/* AES-256-GCM. open returns E_PEER_DECRYPT when the tag does not verify (out is wiped). */
vtsm_status vtsm_aead_seal(const uint8_t key[VTSM_AEAD_KEY_SIZE],
                           const uint8_t iv[VTSM_AEAD_IV_SIZE], const uint8_t *aad, size_t aad_len,
                           const uint8_t *pt, size_t pt_len, uint8_t *ct,
                           uint8_t tag[VTSM_AEAD_TAG_SIZE]);
vtsm_status vtsm_aead_open(const uint8_t key[VTSM_AEAD_KEY_SIZE],
                           const uint8_t iv[VTSM_AEAD_IV_SIZE], const uint8_t *aad, size_t aad_len,
                           const uint8_t *ct, size_t ct_len, const uint8_t tag[VTSM_AEAD_TAG_SIZE],
                           uint8_t *pt);

/* PEM helpers: a private key if the PEM holds one, else a public key (SubjectPublicKeyInfo).
 * The caller frees *out with EVP_PKEY_free. E_NOT_FOUND if the file cannot be opened,
 * E_CONFIG if no key is found. */
vtsm_status vtsm_pkey_load_pem(const char *path, EVP_PKEY **out);
vtsm_status vtsm_pkey_from_pem(const void *pem, size_t len, EVP_PKEY **out);

#endif
