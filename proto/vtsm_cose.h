/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The TSM-signed evidence token: COSE_Sign1 (RFC 9052 sec. 4.2) with ECDSA (RFC 9053
 * sec. 2.1), built and checked with libcbor.
 *
 *   COSE_Sign1 = 18([ protected: bstr .cbor {1: -7 (ES256) | -35 (ES384)},
 *                     unprotected: {? 4: kid bstr},
 *                     payload: bstr .cbor map,
 *                     signature: bstr (raw r||s, 64 or 96 bytes) ])
 *   signed bytes = Sig_structure = ["Signature1", protected, h'' (external_aad), payload]
 *
 * ES256 signs with P-256 and SHA-256, ES384 with P-384 and SHA-384; the algorithm follows
 * the key's curve. Tokens use definite lengths only; verification refuses indefinite
 * lengths, nesting deeper than 16 levels and any count larger than the bytes left, before
 * anything is allocated.
 */
#ifndef VTSM_COSE_H
#define VTSM_COSE_H

#include <stddef.h>
#include <stdint.h>

#include <cbor.h>
#include <openssl/evp.h>

#include "vtsm_buf.h"
#include "vtsm_err.h"

#define VTSM_COSE_TAG_SIGN1 18
#define VTSM_COSE_HDR_ALG   1
#define VTSM_COSE_HDR_KID   4
#define VTSM_COSE_ALG_ES256 (-7)
#define VTSM_COSE_ALG_ES384 (-35)
#define VTSM_COSE_MAX_DEPTH 16
#define VTSM_COSE_MAX_KID   64

/*
 * Sign `payload` (must be a CBOR map) with `key` (EC P-256 or P-384 private key) into a
 * tagged COSE_Sign1 in *out (replacing its contents; the caller owns and frees out).
 * kid may be NULL when kid_len is 0 (the unprotected header is then empty).
 * VTSM_E_INVAL for a non-map payload, another key type or a kid over 64 bytes.
 */
vtsm_status vtsm_cose_sign1(EVP_PKEY *key, const cbor_item_t *payload, const uint8_t *kid,
                            size_t kid_len, struct vtsm_buf *out);

/*
 * Verify a COSE_Sign1 with `pub` and return its payload map in *payload_out (refcount 1,
 * release with cbor_decref), or pass payload_out NULL to only verify.
 *   VTSM_E_PEER_MALFORMED  not well-formed CBOR, tag other than 18, not a 4-element array,
 *                          headers not maps / unknown labels, wrong signature length,
 *                          payload not a map
 *   VTSM_E_PEER_ALGO       alg missing, unsupported, or not the curve of `pub`
 *   VTSM_E_PEER_SIGNATURE  the signature does not verify
 * The signature is checked before the payload is decoded.
 */
vtsm_status vtsm_cose_verify1(EVP_PKEY *pub, const uint8_t *token, size_t len,
                              cbor_item_t **payload_out);

/*
 * The kid of a COSE_Sign1's unprotected header, pointing into token (*kid NULL, *kid_len
 * 0 if it has none). Checks only that the token is well-formed; verify it first.
 */
vtsm_status vtsm_cose_kid(const uint8_t *token, size_t len, const uint8_t **kid, size_t *kid_len);

/*
 * The Sig_structure bytes for COSE_Sign1 with an empty external_aad (RFC 9052 sec. 4.4),
 * exposed so tests can compare them with published examples.
 */
vtsm_status vtsm_cose_sig_structure(const uint8_t *protected_hdr, size_t protected_len,
                                    const uint8_t *payload, size_t payload_len,
                                    struct vtsm_buf *out);

#endif
