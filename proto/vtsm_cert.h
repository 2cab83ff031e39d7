/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Certificate chains in the SPDM format (DSP0274 "Certificate chain format"):
 *   Length (2, LE, whole chain incl. this header) | Reserved (2) | RootHash (H) |
 *   Certificates (concatenated DER, root or first intermediate first, leaf last)
 * and their validation against a trust store with OpenSSL.
 */
#ifndef VTSM_CERT_H
#define VTSM_CERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "vtsm_buf.h"
#include "vtsm_crypto.h"
#include "vtsm_err.h"

#define VTSM_CERT_CHAIN_MAX 65535 /* Length is a u16 */
#define VTSM_CERT_MAX_CERTS 16

/* Build an SPDM chain from DER certificates (ders[0] = root/first, ders[n-1] = leaf);
 * RootHash is the hash of ders[0]. */
vtsm_status vtsm_certchain_build(enum vtsm_hash_alg hash, const uint8_t *const *ders,
                                 const size_t *der_lens, size_t n, struct vtsm_buf *out);

struct vtsm_certchain {
    STACK_OF(X509) * certs; /* certs[0] first in the chain, last = leaf */
    uint8_t root_hash[VTSM_HASH_MAX];
    size_t root_hash_len;
    EVP_PKEY *leaf_key;      /* owned; public key of the leaf */
    enum vtsm_hash_alg hash; /* algorithm of root_hash */
    /* certs[0] is self-signed, i.e. the root itself, so RootHash was checked against it.
     * Otherwise the chain starts below the root and vtsm_trust_verify checks RootHash
     * against the trust anchor it finds. */
    bool root_in_chain;
};

/*
 * Parse an SPDM chain received from a peer (bounded; each DER parsed with d2i_X509
 * and checked to consume exactly its bytes; at most VTSM_CERT_MAX_CERTS). Checks
 * Length == len, RootHash == H(first cert) when the first cert is the (self-signed) root
 * -> E_PEER_DIGEST, leaf key is an EC key of `asym` (VTSM_ASYM_NONE: P-256 or P-384)
 * -> E_PEER_ALGO, leaf key is a valid point (partial public-key check: on the curve, not
 * infinity, coordinates in range; the only check it gets) -> E_PEER_CHAIN. Malformed chains give
 * E_PEER_CHAIN. Does NOT decide trust. On failure *out holds nothing (it is freed). *out is
 * overwritten; the caller frees it with vtsm_certchain_free (also on failure).
 */
vtsm_status vtsm_certchain_parse(const uint8_t *chain, size_t len, enum vtsm_hash_alg hash,
                                 enum vtsm_asym_alg asym, struct vtsm_certchain *out);
void vtsm_certchain_free(struct vtsm_certchain *c);

/* A set of trusted roots. */
struct vtsm_trust;
vtsm_status vtsm_trust_new(struct vtsm_trust **out);
/* Add roots from a PEM file (bundle), a directory of *.pem / *.crt, or memory.
 * E_NOT_FOUND if the path does not exist, E_CONFIG if no certificate is found. */
vtsm_status vtsm_trust_add_path(struct vtsm_trust *t, const char *path);
vtsm_status vtsm_trust_add_pem(struct vtsm_trust *t, const void *pem, size_t len);
size_t vtsm_trust_count(const struct vtsm_trust *t);
void vtsm_trust_free(struct vtsm_trust *t);

/*
 * Validate a parsed chain against the trust store with X509_verify_cert (leaf = last,
 * the rest untrusted intermediates; a chain whose first cert is itself a trusted root
 * is fine). On failure returns E_PEER_UNTRUSTED and writes OpenSSL's reason
 * (e.g. "unable to get local issuer certificate") into reason (may be NULL; "" on
 * success). If the chain does not carry its root, RootHash must equal the hash of the
 * trust anchor found, else E_PEER_DIGEST.
 */
vtsm_status vtsm_trust_verify(const struct vtsm_trust *t, const struct vtsm_certchain *c,
                              char *reason, size_t reason_len);

#endif
