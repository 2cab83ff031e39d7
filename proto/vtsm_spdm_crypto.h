/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * SPDM-specific cryptography shared by the requester (tsm/) and responder (devemu/):
 *  - the DSP0274 1.2/1.3 signing format (combined_spdm_prefix + context + hash),
 *  - the key schedule (DSP0274 "Key schedule"): handshake / data secrets, finished keys,
 *    per-direction AEAD key + IV, key update,
 *  - DSP0277 secured messages as carried over PCI DOE (no sequence number on the wire).
 */
#ifndef VTSM_SPDM_CRYPTO_H
#define VTSM_SPDM_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vtsm_crypto.h"
#include "vtsm_err.h"

/* SPDMVersion byte: 0x12 = 1.2, 0x13 = 1.3 */
#define VTSM_SPDM_V10 0x10
#define VTSM_SPDM_V11 0x11
#define VTSM_SPDM_V12 0x12
#define VTSM_SPDM_V13 0x13
#define VTSM_SPDM_V14 0x14

/* Signing contexts (DSP0274 1.2+, "Signature generation"). */
#define VTSM_SPDM_CTX_CHALLENGE_AUTH   "responder-challenge_auth signing"
#define VTSM_SPDM_CTX_MEASUREMENTS     "responder-measurements signing"
#define VTSM_SPDM_CTX_KEY_EXCHANGE_RSP "responder-key_exchange_rsp signing"
#define VTSM_SPDM_CTX_FINISH           "requester-finish signing"

/*
 * Build the signed message M = combined_spdm_prefix || zero_pad || context || hash
 * for version >= 1.2 (for 1.0/1.1 M is just the hash). out must hold 100 + hash_len;
 * *out_len is set on return (output only). combined_spdm_prefix is "dmtf-spdm-v1.X.*"
 * four times (64 bytes); the context (at most 36 bytes) is right-aligned in the next 36
 * bytes with zeros before it, so it ends at byte 100.
 */
vtsm_status vtsm_spdm_signing_msg(uint8_t version, const char *context, const uint8_t *hash,
                                  size_t hash_len, uint8_t *out, size_t *out_len);
/* Sign / verify a transcript hash th (vtsm_hash_size(hash) bytes) in the SPDM 1.2+ format
 * (uses vtsm_ecdsa_*, which hash M with `hash`). Versions below 1.2 give E_UNSUPPORTED. */
vtsm_status vtsm_spdm_sign(EVP_PKEY *key, enum vtsm_asym_alg asym, enum vtsm_hash_alg hash,
                           uint8_t version, const char *context, const uint8_t *th, uint8_t *sig);
vtsm_status vtsm_spdm_verify(EVP_PKEY *pub, enum vtsm_asym_alg asym, enum vtsm_hash_alg hash,
                             uint8_t version, const char *context, const uint8_t *th,
                             const uint8_t *sig, size_t sig_len);

/* DSP0277 ("Secured Messages using SPDM") versions, as spdm_version_number_t:
 * major in bits 15:12, minor in bits 11:8 (update/alpha in the low byte are ignored). */
#define VTSM_SECMSG_V10 0x1000
#define VTSM_SECMSG_V11 0x1100
#define VTSM_SECMSG_V12 0x1200

/* One direction of a secure session. */
struct vtsm_spdm_dir {
    uint8_t secret[VTSM_HASH_MAX]; /* current handshake or data secret */
    uint8_t key[VTSM_AEAD_KEY_SIZE];
    uint8_t iv[VTSM_AEAD_IV_SIZE];
    uint64_t seq; /* next sequence number to use / expect */
    /*
     * Negotiated DSP0277 version (VTSM_SECMSG_V1x; 0 is taken as 1.2). It selects how the
     * sequence number enters the per-message IV:
     *   1.2      : IV = base IV XOR (seq, 8 bytes little-endian, at IV bytes 0..7)
     *              (DSP0277 1.2 fixes this rule; libspdm uses it unconditionally for 1.2)
     *   1.0, 1.1 : the spec leaves the encoding open; little-endian at the start as above
     *              unless seq_be is set, then IV bytes 4..11 ^= seq big-endian
     *              (libspdm's LIBSPDM_DATA_SEQUENCE_NUMBER_ENDIAN "BIG" option).
     * vtsm_spdm_ks_handshake() copies ks->secmsg_version here; ks_data/ks_update keep it.
     */
    uint16_t secmsg_version;
    bool seq_be; /* only for secmsg_version < 1.2, see above */
};

struct vtsm_spdm_ks {
    uint8_t version; /* 0x12 or 0x13: selects the "spdm1.x " label prefix */
    /* DSP0277 version for both directions (0 = 1.2). Set it (or use
     * vtsm_spdm_ks_set_secmsg_version) before vtsm_spdm_ks_handshake, which preserves it. */
    uint16_t secmsg_version;
    enum vtsm_hash_alg hash;
    size_t hash_len;
    uint8_t handshake_secret[VTSM_HASH_MAX];
    uint8_t master_secret[VTSM_HASH_MAX];
    uint8_t req_finished_key[VTSM_HASH_MAX];
    uint8_t rsp_finished_key[VTSM_HASH_MAX];
    uint8_t export_master_secret[VTSM_HASH_MAX];
    struct vtsm_spdm_dir req; /* requester -> responder */
    struct vtsm_spdm_dir rsp; /* responder -> requester */
};

/* BinConcat(Length, Version, Label, Context) from the key schedule (DSP0274 "Key schedule"):
 * Length as u16 little-endian, then "spdm1.x " (x from version), the label, the context
 * (may be NULL / 0). out must hold 2 + 8 + strlen(label) + ctx_len; *out_len is set on
 * return (output only). */
vtsm_status vtsm_spdm_bin_concat(uint8_t version, uint16_t length, const char *label,
                                 const uint8_t *context, size_t ctx_len, uint8_t *out,
                                 size_t *out_len);
/* After KEY_EXCHANGE_RSP: derive handshake secrets, finished keys and handshake
 * AEAD keys from the DHE shared secret and TH1 = hash of the transcript. seq = 0.
 * Clears *ks except secmsg_version (copied into both directions). version 0x11..0x13. */
vtsm_status vtsm_spdm_ks_handshake(struct vtsm_spdm_ks *ks, uint8_t version,
                                   enum vtsm_hash_alg hash, const uint8_t *dhe_secret,
                                   size_t dhe_len, const uint8_t *th1);
/* After FINISH_RSP: derive master and data (application) secrets and keys from TH2.
 * Replaces req/rsp directions with the data keys, seq = 0; wipes handshake material
 * (handshake secret, finished keys). master_secret and export_master_secret stay until
 * vtsm_spdm_ks_wipe. */
vtsm_status vtsm_spdm_ks_data(struct vtsm_spdm_ks *ks, const uint8_t *th2);
/* KEY_UPDATE: derive the next data secret for one direction ("traffic upd"), seq = 0.
 * A caller that may have to roll back (the peer did not take the new key) keeps a copy of
 * the struct vtsm_spdm_dir from before and wipes it afterwards. */
vtsm_status vtsm_spdm_ks_update(struct vtsm_spdm_ks *ks, bool requester_dir);
/* HMAC(finished_key, th) into out (hash_len bytes): RequesterVerifyData /
 * ResponderVerifyData. */
vtsm_status vtsm_spdm_verify_data(const struct vtsm_spdm_ks *ks, bool requester, const uint8_t *th,
                                  uint8_t *out);
void vtsm_spdm_ks_wipe(struct vtsm_spdm_ks *ks);
/* Set the DSP0277 version on ks and on both directions (E_INVAL unless 1.0/1.1/1.2). */
vtsm_status vtsm_spdm_ks_set_secmsg_version(struct vtsm_spdm_ks *ks, uint16_t secmsg_version);

/*
 * DSP0277 secured message over PCI DOE:
 *   SessionID (4, LE) | Length (2, LE) | AEAD( ApplicationDataLength (2, LE) |
 *   ApplicationData | RandomData ) | MAC (16)
 * AAD = SessionID | Length; IV = base IV XOR sequence number (see struct vtsm_spdm_dir
 * for the byte order); Length covers the encrypted part and the MAC. The PCI DOE binding
 * puts no sequence number on the wire and seal adds no RandomData. seal/open use and then
 * advance d->seq; open advances only on success, so a replayed or tampered message leaves
 * the state unchanged. A sequence number that would wrap is refused with E_LIMIT.
 */
#define VTSM_SECMSG_OVERHEAD (4 + 2 + 2 + VTSM_AEAD_TAG_SIZE)
#define VTSM_SECMSG_APP_MAX  (0xFFFF - 2 - VTSM_AEAD_TAG_SIZE)
/* *out_len: capacity in, bytes written out (app_len + VTSM_SECMSG_OVERHEAD). E_TOO_SMALL
 * sets *out_len to the size needed. app and out may overlap. */
vtsm_status vtsm_secmsg_seal(struct vtsm_spdm_dir *d, uint32_t session_id, const uint8_t *app,
                             size_t app_len, uint8_t *out, size_t *out_len);
/* Returns E_PEER_SESSION_ID if the session id differs, E_PEER_DECRYPT if the MAC fails,
 * E_PEER_MALFORMED for bad lengths (shorter than the header or its Length field, Length
 * below 2 + MAC, ApplicationDataLength beyond the plaintext, or more than 3 bytes after
 * the message: up to 3 are allowed as DOE dword padding). *app_len: capacity in, bytes
 * written out; E_TOO_SMALL sets it to the size needed and leaves d->seq unchanged. */
vtsm_status vtsm_secmsg_open(struct vtsm_spdm_dir *d, uint32_t session_id, const uint8_t *in,
                             size_t in_len, uint8_t *app, size_t *app_len);
/* SessionID of a secured message (E_PEER_MALFORMED if fewer than 4 bytes). */
vtsm_status vtsm_secmsg_session_id(const uint8_t *in, size_t in_len, uint32_t *session_id);

/*
 * DSP0277 secured-message version negotiation, carried in the OpaqueData of KEY_EXCHANGE
 * (supported versions) and KEY_EXCHANGE_RSP (selected version), in the DSP0274 1.2+
 * general opaque data format (OpaqueDataFmt1):
 *   TotalElements (1) | Reserved (3) |
 *   element: ID (1) = 0 (DMTF) | VendorLen (1) = 0 | OpaqueElementDataLen (2, LE) |
 *            SMDataVersion (1) = 1 | SMDataID (1) | SMData | AlignPadding to 4 bytes
 *   SMDataID 0 = version selection: SelectedVersion (2, LE)
 *   SMDataID 1 = supported versions: VersionCount (1) | Versions (2 each, LE)
 * Builders write one element; *len: capacity in, bytes written out (E_TOO_SMALL sets the
 * size needed). Parsers walk every element, skip those of other registries, and refuse
 * (E_PEER_MALFORMED) a malformed list, a missing or duplicated DSP0277 element of the
 * wanted kind, or trailing bytes.
 */
#define VTSM_SECMSG_OPAQUE_MAX_VERSIONS 16
vtsm_status vtsm_secmsg_opaque_supported(const uint16_t *versions, size_t n, uint8_t *out,
                                         size_t *len);
/* *n: capacity of versions in, count out (E_PEER_OVERSIZED if the peer lists more). */
vtsm_status vtsm_secmsg_opaque_parse_supported(const uint8_t *in, size_t in_len, uint16_t *versions,
                                               size_t *n);
vtsm_status vtsm_secmsg_opaque_select(uint16_t version, uint8_t *out, size_t *len);
vtsm_status vtsm_secmsg_opaque_parse_select(const uint8_t *in, size_t in_len, uint16_t *version);

#endif
