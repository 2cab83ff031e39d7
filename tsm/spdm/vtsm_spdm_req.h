/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The TSM's SPDM requester (DSP0274 1.2 / 1.3, DSP0277 secured messages over PCI DOE).
 *
 * The requester never touches a device: it builds whole DOE data objects and hands
 * each to transport->exchange(), which returns the device's DOE object (in tsmd the
 * exchange is a continuation through the untrusted host). Every response is parsed
 * with the bounded reader; every signature and HMAC is verified with OpenSSL.
 *
 * Threading: one requester is driven by one thread at a time (the caller serialises).
 */
#ifndef VTSM_SPDM_REQ_H
#define VTSM_SPDM_REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vtsm_buf.h"
#include "vtsm_cert.h"
#include "vtsm_crypto.h"
#include "vtsm_spdm_defs.h"
#include "vtsm_spdm_meas.h"
#include "vtsm_err.h"

struct vtsm_spdm_transport {
    /* Exchange one DOE object (req = a whole data object with header) and return the
     * device's whole DOE object in rsp (reset and filled). Transport failures (host
     * gone, host-reported DOE error, timeout) are returned as E_CLOSED / E_DOE_HOST /
     * E_TIMEOUT and abort the current operation. */
    vtsm_status (*exchange)(void *ctx, const uint8_t *req, size_t req_len, struct vtsm_buf *rsp);
    void *ctx;
};

struct vtsm_spdm_req_opts {
    uint8_t min_version; /* default VTSM_SPDM_V12 */
    uint8_t max_version; /* default VTSM_SPDM_V13; up to VTSM_SPDM_V14 */
    uint32_t base_asym;  /* SPDM_ASYM_* mask offered; default P384|P256 (P-384 preferred) */
    uint32_t base_hash;  /* SPDM_HASH_* mask; default SHA384|SHA256 */
    uint16_t dhe;        /* SPDM_DHE_* mask; default SECP384R1|SECP256R1 */
    uint16_t aead;       /* default AES_256_GCM */
    uint8_t ct_exponent; /* requester CTExponent (default 0) */
    /* DataTransferSize: the largest SPDM message we take in one piece (default 4096,
     * >= 42). We set CHUNK_CAP: a larger response comes by ERROR(LargeResponse) and
     * CHUNK_GET, up to MaxSPDMmsgSize (default 65536, >= DataTransferSize, <= 1 MiB); a
     * request larger than the device's DataTransferSize goes by CHUNK_SEND when the
     * device sets CHUNK_CAP too (SPDM 1.2+). */
    uint32_t data_transfer_size;
    uint32_t max_spdm_msg_size;
    unsigned not_ready_retries; /* ResponseNotReady -> RESPOND_IF_READY attempts (default 8,
                                 * at most 64) */
    /* KEY_EXCHANGE MeasurementSummaryHashType: VTSM_SPDM_MEAS_SUMMARY_NONE or _ALL (default
     * ALL; the hash is kept, see vtsm_spdm_req_meas_summary). */
    uint8_t meas_summary_hash_type;
    /* KEY_EXCHANGE SessionPolicy (1.2+); default TerminationPolicy (bit 0) set: the device
     * ends the session on a runtime firmware / configuration update. */
    uint8_t session_policy;
    /* At SPDM 1.4: send VENDOR_DEFINED_REQUEST in the large form (Param1 bit 7, 4-byte
     * LargeReqLength). Default false: the 2-byte form, as without LARGE_RESP_CAP on both
     * sides. A response must take the request's form. */
    bool vdm_large;
};
#define VTSM_SPDM_MEAS_SUMMARY_NONE 0x00
#define VTSM_SPDM_MEAS_SUMMARY_ALL  0xFF
/* Fill opts with the defaults above. */
void vtsm_spdm_req_opts_default(struct vtsm_spdm_req_opts *opts);

/* Negotiated connection parameters (valid after vtsm_spdm_req_init_connection). */
struct vtsm_spdm_info {
    uint8_t version; /* 0x12 / 0x13 */
    uint32_t rsp_caps;
    uint8_t rsp_ct_exponent;
    uint32_t rsp_data_transfer_size;
    uint32_t rsp_max_spdm_msg_size;
    enum vtsm_asym_alg asym;
    enum vtsm_hash_alg hash;
    enum vtsm_dhe_group dhe;
    enum vtsm_aead_alg aead;
    uint32_t meas_hash_algo; /* SPDM_MEAS_HASH_* chosen by the responder */
    uint8_t slot_mask;       /* from DIGESTS */
    bool session_active;
    uint32_t session_id;
    /* HeartbeatPeriod from KEY_EXCHANGE_RSP in seconds (0: the device wants no
     * HEARTBEAT; only non-zero when both sides set HBEAT_CAP). */
    uint8_t heartbeat_period;
    /* Completed KEY_UPDATE rounds (VerifyNewKey acknowledged) in this session. */
    uint32_t key_updates;
    /* Large messages moved in chunks on this connection: requests by CHUNK_SEND,
     * responses by CHUNK_GET. */
    uint32_t chunk_sends;
    uint32_t chunk_gets;
};

/* Result of GET_MEASUREMENTS with a signature. All buffers owned by the struct. */
struct vtsm_spdm_meas {
    uint8_t num_blocks;
    struct vtsm_spdm_meas_block *blocks; /* num_blocks entries, pointing into record */
    uint8_t content_changed;             /* MEASUREMENTS Param2 bits 5:4 (1.2+) */
    struct vtsm_buf record;              /* MeasurementRecord (concatenated measurement blocks) */
    uint8_t nonce[SPDM_NONCE_SIZE];      /* requester nonce sent */
    uint8_t rsp_nonce[SPDM_NONCE_SIZE];  /* responder nonce received */
    struct vtsm_buf transcript;          /* L1/L2 bytes the signature covers (DSP0274 10.11.x) */
    uint8_t signature[VTSM_SIG_MAX];
    size_t signature_len;
    uint8_t slot;
};
void vtsm_spdm_meas_free(struct vtsm_spdm_meas *m);

struct vtsm_spdm_req;

vtsm_status vtsm_spdm_req_new(const struct vtsm_spdm_req_opts *opts,
                              const struct vtsm_spdm_transport *transport,
                              struct vtsm_spdm_req **out);
/*
 * Trace hook (NULL: none): each plaintext SPDM message inside a secure session, the
 * request before it is sealed (to_device) and the response after it is opened. For
 * --trace: describe the message, never keep or print its bytes (IDE_KM KEY_PROG carries
 * key material).
 */
typedef void (*vtsm_spdm_trace_fn)(void *ctx, bool to_device, uint32_t session_id,
                                   const uint8_t *msg, size_t len);
void vtsm_spdm_req_set_trace(struct vtsm_spdm_req *r, vtsm_spdm_trace_fn fn, void *ctx);
/* Ends nothing on the wire; wipes all session secrets and frees. NULL is fine. */
void vtsm_spdm_req_free(struct vtsm_spdm_req *r);

/* GET_VERSION, GET_CAPABILITIES, NEGOTIATE_ALGORITHMS (VCA). */
vtsm_status vtsm_spdm_req_init_connection(struct vtsm_spdm_req *r);
/* GET_DIGESTS: slot mask and digests[slot] (hash_len bytes each). */
vtsm_status vtsm_spdm_req_get_digests(struct vtsm_spdm_req *r, uint8_t *slot_mask,
                                      uint8_t digests[SPDM_MAX_SLOTS][VTSM_HASH_MAX]);
/* GET_CERTIFICATE for a slot, chunked; checks the chain's hash equals the slot digest
 * from GET_DIGESTS (if one was fetched) and parses it (vtsm_certchain_parse). The raw
 * chain and parsed chain stay in the requester (see accessors). */
vtsm_status vtsm_spdm_req_get_certificate(struct vtsm_spdm_req *r, uint8_t slot);
/*
 * CHALLENGE / CHALLENGE_AUTH for a slot whose chain was fetched, outside a session. The
 * device must advertise CHAL_CAP (else E_PEER_CAPS, rule PDEV.14). Verifies the signature
 * over M1/M2 (VCA, the GET_DIGESTS / GET_CERTIFICATE exchanges since, CHALLENGE and
 * CHALLENGE_AUTH) with the slot's leaf key (E_PEER_SIGNATURE, rule PDEV.15) and that
 * CertChainHash is the hash of the chain held (E_PEER_DIGEST, rule PDEV.16). The
 * MeasurementSummaryHashType is opts.meas_summary_hash_type. On success the signed
 * transcript and signature are kept (accessors below) until the next CHALLENGE.
 */
vtsm_status vtsm_spdm_req_challenge(struct vtsm_spdm_req *r, uint8_t slot);
const struct vtsm_buf *vtsm_spdm_req_challenge_transcript(const struct vtsm_spdm_req *r);
const uint8_t *vtsm_spdm_req_challenge_signature(const struct vtsm_spdm_req *r, size_t *len);
/* Hand the requester an ephemeral DHE key made ahead of time (while other exchanges were
 * in flight): the next KEY_EXCHANGE uses it instead of generating one, if its group is the
 * negotiated one (else it is freed unused). r owns dhe from here; pub_xy is its public
 * value (raw X||Y). A key is used for one KEY_EXCHANGE at most. */
void vtsm_spdm_req_give_dhe(struct vtsm_spdm_req *r, enum vtsm_dhe_group g, struct vtsm_dhe *dhe,
                            const uint8_t *pub_xy);
/* KEY_EXCHANGE + FINISH using the slot's chain (must have been fetched). On success a
 * secure session is active and later calls can run inside it. */
vtsm_status vtsm_spdm_req_start_session(struct vtsm_spdm_req *r, uint8_t slot);
/* GET_MEASUREMENTS (operation SPDM_MEAS_OP_ALL) with signature, inside the session if one
 * is active. nonce NULL -> a fresh random nonce. Verifies the signature over L1/L2 with
 * the slot's leaf key. */
vtsm_status vtsm_spdm_req_get_measurements(struct vtsm_spdm_req *r, uint8_t slot,
                                           const uint8_t *nonce, struct vtsm_spdm_meas *out);
/* The same, with RawBitStreamRequested set when raw: the device may answer blocks that
 * support it with the raw bit stream instead of a digest. */
vtsm_status vtsm_spdm_req_get_measurements_ex(struct vtsm_spdm_req *r, uint8_t slot,
                                              const uint8_t *nonce, bool raw,
                                              struct vtsm_spdm_meas *out);
/* Send a PCI-SIG VENDOR_DEFINED_REQUEST inside the session: payload starts with the
 * protocol ID byte. rsp receives the VENDOR_DEFINED_RESPONSE payload (from the protocol
 * ID byte on). Used by IDE_KM and TDISP. */
vtsm_status vtsm_spdm_req_vendor(struct vtsm_spdm_req *r, const uint8_t *payload, size_t len,
                                 struct vtsm_buf *rsp);
/*
 * KEY_UPDATE inside the session (device must advertise KEY_UPD_CAP, else E_PEER_CAPS):
 * UpdateKey (all_keys false: the requester->responder key) or UpdateAllKeys (both
 * directions), then VerifyNewKey under the new key. On success info.key_updates counts
 * up. A device refusing UpdateKey with ERROR gives E_PEER_ERROR and the session stays;
 * every other failure (E_PEER_DECRYPT for a tampered ACK, a wrong echo, a VerifyNewKey
 * the device could not open, ...) ends the session: the keys can no longer be trusted to
 * match, and an update the device acknowledged is never reverted.
 */
vtsm_status vtsm_spdm_req_key_update(struct vtsm_spdm_req *r, bool all_keys);
/* HEARTBEAT inside the session (device must advertise HBEAT_CAP, else E_PEER_CAPS). */
vtsm_status vtsm_spdm_req_heartbeat(struct vtsm_spdm_req *r);
/* END_SESSION inside the session; the session is torn down (secrets wiped) whether or
 * not the device acknowledges. */
vtsm_status vtsm_spdm_req_end_session(struct vtsm_spdm_req *r);

const struct vtsm_spdm_info *vtsm_spdm_req_info(const struct vtsm_spdm_req *r);
/* The highest DSP0277 sequence number the session's data keys have reached (either
 * direction; a KEY_UPDATE restarts its direction at 0); 0 without a session. */
uint64_t vtsm_spdm_req_seq(const struct vtsm_spdm_req *r);
/* The ErrorCode (SPDM_ERR_*) of the SPDM ERROR the device answered the last request with
 * (the failure was E_PEER_ERROR), or 0 if its last answer was not an ERROR; *data (if not
 * NULL) gets its ErrorData. Callers branch on this, never on the detail text. */
uint8_t vtsm_spdm_req_peer_error(const struct vtsm_spdm_req *r, uint8_t *data);
/* Raw SPDM chain of a slot (NULL if not fetched). */
const struct vtsm_buf *vtsm_spdm_req_chain_raw(const struct vtsm_spdm_req *r, uint8_t slot);
const struct vtsm_certchain *vtsm_spdm_req_chain(const struct vtsm_spdm_req *r, uint8_t slot);
/* The signed KEY_EXCHANGE transcript (bytes hashed into TH for the responder signature)
 * and that signature, for evidence. */
const struct vtsm_buf *vtsm_spdm_req_kex_transcript(const struct vtsm_spdm_req *r);
/* The VCA transcript: GET_VERSION, VERSION, GET_CAPABILITIES, CAPABILITIES,
 * NEGOTIATE_ALGORITHMS, ALGORITHMS as exchanged (NULL before any). */
const struct vtsm_buf *vtsm_spdm_req_vca(const struct vtsm_spdm_req *r);
/* The digest (info->hash) GET_DIGESTS gave for a provisioned slot, NULL otherwise. */
const uint8_t *vtsm_spdm_req_slot_digest(const struct vtsm_spdm_req *r, uint8_t slot);
const uint8_t *vtsm_spdm_req_kex_signature(const struct vtsm_spdm_req *r, size_t *len);
/* MeasurementSummaryHash from KEY_EXCHANGE_RSP (NULL, *len = 0 if none was requested or no
 * session was established). */
const uint8_t *vtsm_spdm_req_meas_summary(const struct vtsm_spdm_req *r, size_t *len);

#endif
