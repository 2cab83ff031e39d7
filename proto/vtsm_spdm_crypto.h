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
#include "vtsm_status.h"

/* SPDMVersion byte: 0x12 = 1.2, 0x13 = 1.3 */
#define VTSM_SPDM_V10 0x10
#define VTSM_SPDM_V11 0x11
#define VTSM_SPDM_V12 0x12
#define VTSM_SPDM_V13 0x13

/* Signing contexts (DSP0274 1.2+, "Signature generation"). */
#define VTSM_SPDM_CTX_CHALLENGE_AUTH "responder-challenge_auth signing"
#define VTSM_SPDM_CTX_MEASUREMENTS "responder-measurements signing"
#define VTSM_SPDM_CTX_KEY_EXCHANGE_RSP "responder-key_exchange_rsp signing"
#define VTSM_SPDM_CTX_FINISH "requester-finish signing"

/*
 * Build the signed message M = combined_spdm_prefix || zero_pad || context || hash
 * for version >= 1.2 (for 1.0/1.1 M is just the hash). out must hold 100 + hash_len.
 */
vtsm_status vtsm_spdm_signing_msg(uint8_t version, const char *context, const uint8_t *hash,
                                  size_t hash_len, uint8_t *out, size_t *out_len);
/* Sign / verify a transcript hash in the SPDM format (uses vtsm_ecdsa_*). */
vtsm_status vtsm_spdm_sign(EVP_PKEY *key, enum vtsm_asym_alg asym, enum vtsm_hash_alg hash,
                           uint8_t version, const char *context, const uint8_t *th,
                           uint8_t *sig);
vtsm_status vtsm_spdm_verify(EVP_PKEY *pub, enum vtsm_asym_alg asym, enum vtsm_hash_alg hash,
                             uint8_t version, const char *context, const uint8_t *th,
                             const uint8_t *sig, size_t sig_len);

/* One direction of a secure session. */
struct vtsm_spdm_dir {
    uint8_t secret[VTSM_HASH_MAX]; /* current handshake or data secret */
    uint8_t key[VTSM_AEAD_KEY_SIZE];
    uint8_t iv[VTSM_AEAD_IV_SIZE];
    uint64_t seq; /* next sequence number to use / expect */
};

struct vtsm_spdm_ks {
    uint8_t version; /* 0x12 or 0x13: selects the "spdm1.x " label prefix */
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

/* BinConcat(Length, Version, Label, Context) from the key schedule; out >= 2+8+label+ctx. */
vtsm_status vtsm_spdm_bin_concat(uint8_t version, uint16_t length, const char *label,
                                 const uint8_t *context, size_t ctx_len, uint8_t *out,
                                 size_t *out_len);
/* After KEY_EXCHANGE_RSP: derive handshake secrets, finished keys and handshake
 * AEAD keys from the DHE shared secret and TH1 = hash of the transcript. seq = 0. */
vtsm_status vtsm_spdm_ks_handshake(struct vtsm_spdm_ks *ks, uint8_t version,
                                   enum vtsm_hash_alg hash, const uint8_t *dhe_secret,
                                   size_t dhe_len, const uint8_t *th1);
/* After FINISH_RSP: derive master and data (application) secrets and keys from TH2.
 * Replaces req/rsp directions with the data keys, seq = 0; wipes handshake material. */
vtsm_status vtsm_spdm_ks_data(struct vtsm_spdm_ks *ks, const uint8_t *th2);
/* KEY_UPDATE: derive the next data secret for one direction ("traffic upd"), seq = 0. */
vtsm_status vtsm_spdm_ks_update(struct vtsm_spdm_ks *ks, bool requester_dir);
/* HMAC(finished_key, th) into out (hash_len bytes): RequesterVerifyData /
 * ResponderVerifyData. */
vtsm_status vtsm_spdm_verify_data(const struct vtsm_spdm_ks *ks, bool requester,
                                  const uint8_t *th, uint8_t *out);
void vtsm_spdm_ks_wipe(struct vtsm_spdm_ks *ks);

/*
 * DSP0277 secured message over PCI DOE:
 *   SessionID (4, LE) | Length (2, LE) | AEAD( ApplicationDataLength (2, LE) |
 *   ApplicationData | RandomData ) | MAC (16)
 * AAD = SessionID | Length; IV = base IV XOR sequence number; Length covers the
 * encrypted part and the MAC. seal/open use and then advance d->seq; open advances
 * only on success, so a replayed or tampered message leaves the state unchanged.
 */
#define VTSM_SECMSG_OVERHEAD (4 + 2 + 2 + VTSM_AEAD_TAG_SIZE)
vtsm_status vtsm_secmsg_seal(struct vtsm_spdm_dir *d, uint32_t session_id, const uint8_t *app,
                             size_t app_len, uint8_t *out, size_t *out_len);
/* Returns E_PEER_SESSION_ID if the session id differs, E_PEER_DECRYPT if the MAC fails,
 * E_PEER_MALFORMED for bad lengths. */
vtsm_status vtsm_secmsg_open(struct vtsm_spdm_dir *d, uint32_t session_id, const uint8_t *in,
                             size_t in_len, uint8_t *app, size_t *app_len);
vtsm_status vtsm_secmsg_session_id(const uint8_t *in, size_t in_len, uint32_t *session_id);

#endif
