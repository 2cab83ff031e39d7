/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vtsm guest shim: the library a TVM (guest) embeds to talk to the TSM. Public: installed
 * as <vtsm/vtsm_guest.h>; needs no CBOR library (results and claims are struct
 * vtsm_result, read with the accessors of vtsm_host.h).
 *
 * The TVM's credential is a P-256 key pair made here; the host registers only its public
 * half at TVM_CREATE (65-byte SEC1 uncompressed point, vtsm_guest_pubkey()). Every guest
 * request is a GUEST_REQUEST envelope (docs/abi.md section 9)
 *
 *   {tvm, body: bstr .cbor {gop, tvm, seq, ? dev, ? tdi, ? nonce, ? reason},
 *    sig: ECDSA-P256-SHA256(VTSM_ABI_GUEST_SIG_PREFIX || body), raw r||s}
 *
 * seq is strictly increasing per TVM. It is persisted next to the key in "<key>.seq"
 * (decimal text, replaced atomically by write-temp + rename, under an advisory lock on
 * the key file), so separate processes using the same key keep increasing.
 *
 * Transport: a real TVM carries the envelope over its own channel; here it travels to
 * tsmd over the socket ABI, normally relayed by a host connection (vtsm_guest_call with a
 * host-shim handle). The connection that carries a guest request services its DOE
 * exchanges, so the relay must have the device's DOE callback registered for requests
 * that reach the device (INFO with a nonce, ACCEPT).
 *
 * Results relayed by the host are NOT authenticated: only the token of an INFO with a
 * nonce is (COSE_Sign1 by the TSM's identity key). vtsm_guest_decide() therefore binds
 * every field it checks to the token before comparing it with reference values.
 *
 * Return convention: vtsm_status (VTSM_OK = 0); every failure records a detail
 * (vtsm_err_detail()) and, when a rule refused, the rule (vtsm_err_rule()). Results returned
 * through struct vtsm_result ** belong to the caller (vtsm_result_free). A handle is not
 * thread-safe; use it from one thread at a time.
 */
#ifndef VTSM_GUEST_H
#define VTSM_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "vtsm_host.h"
#include "vtsm_status.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vtsm_guest;

#define VTSM_GUEST_PUBKEY_SIZE 65 /* 0x04 || X || Y */
#define VTSM_GUEST_SIG_SIZE    64 /* raw r || s */
#define VTSM_GUEST_NONCE_SIZE  32
#define VTSM_GUEST_KID_SIZE    32   /* SHA-256 of the TSM certificate DER */
#define VTSM_GUEST_NO_TDI      (-1) /* tdi argument: no "tdi" key */
#define VTSM_GUEST_REASON_MAX  1024 /* bytes of a REJECT reason */
#define VTSM_GUEST_SEQ_SUFFIX  ".seq"

/* ---- the TVM credential ---- */

/*
 * Make a fresh P-256 key pair and write the private key to key_path (PKCS#8 PEM, mode
 * 0600, created exclusively) and a seq file "<key_path>.seq" holding 0.
 * E_EXISTS if key_path exists (a TVM credential is never replaced), E_IO for file errors.
 */
vtsm_status vtsm_guest_keygen(const char *key_path);

/*
 * Open the credential at key_path for TVM `tvm` (the number TVM_CREATE returned; 0 =
 * not yet known: the handle can give its public key but builds no request).
 *   E_NOT_FOUND  key_path cannot be opened
 *   E_CONFIG     not a P-256 private key in PEM; the file is accessible to group or
 *                others (chmod 600); the seq file is malformed
 */
vtsm_status vtsm_guest_open(const char *key_path, uint32_t tvm, struct vtsm_guest **out);
/* Close and free (the private key is wiped by OpenSSL). NULL is fine. */
void vtsm_guest_close(struct vtsm_guest *g);

/* The public key as TVM_CREATE's guest_key: 0x04 || X || Y. */
void vtsm_guest_pubkey(const struct vtsm_guest *g, uint8_t out[VTSM_GUEST_PUBKEY_SIZE]);
/* The TVM identity the TSM derives: SHA-256(guest_key). */
void vtsm_guest_identity(const struct vtsm_guest *g, uint8_t out[32]);
uint32_t vtsm_guest_tvm(const struct vtsm_guest *g);
/* The last seq this handle used or reserved (0 if none yet). */
uint64_t vtsm_guest_last_seq(const struct vtsm_guest *g);

/* ---- building requests ---- */

/*
 * A signed guest request, ready to travel: GUEST_REQUEST's fields. Relay it with
 *   struct vtsm_request r = {.tvm = env.tvm, .body = env.body, .body_len = env.body_len,
 *                            .sig = env.sig, .sig_len = sizeof(env.sig),
 *                            .set = VTSM_SET(TVM)};
 *   vtsm_host_guest_request(h, &r, &res);
 */
struct vtsm_guest_envelope {
    uint32_t tvm;
    uint8_t *body; /* the CBOR body (docs/abi.md 9.2), owned */
    size_t body_len;
    uint8_t sig[VTSM_GUEST_SIG_SIZE];
};
/* Free what an envelope owns and zero it. */
void vtsm_guest_envelope_clear(struct vtsm_guest_envelope *env);
/* The envelope as one CBOR map {tvm, body, sig} in the ABI's encoding, for a transport
 * that carries bytes (the host relays it with vtsm_host_request_encoded()). *out is to
 * free(). */
vtsm_status vtsm_guest_envelope_encode(const struct vtsm_guest_envelope *env, uint8_t **out,
                                       size_t *len);

/*
 * Build a guest request: body = {gop, tvm, seq, ? dev, ? tdi, ? nonce, ? reason} in that
 * order; absent arguments (NULL, tdi VTSM_GUEST_NO_TDI) are not sent. Arguments are
 * checked per operation before seq is touched (E_INVAL, rule GUEST.4):
 *   LIST    no dev, tdi, nonce or reason
 *   INFO    dev and tdi; nonce optional (32 bytes); no reason
 *   ACCEPT  dev and tdi; no nonce or reason; the handle must have an INFO of (dev, tdi)
 *           (vtsm_guest_remember_info; E_STATE "send INFO first" otherwise), whose
 *           report_digest, measurements_digest and lock_nonce_digest the body carries
 *   REJECT  dev and tdi; reason optional (valid UTF-8, <= VTSM_GUEST_REASON_MAX bytes)
 * dev must be a valid device name, tdi 0..UINT32_MAX. Then the next seq is reserved and
 * persisted (vtsm_guest_reserve_seq) and the body signed. E_STATE if the handle has tvm 0.
 * On VTSM_OK *env holds the request (vtsm_guest_envelope_clear it).
 */
vtsm_status vtsm_guest_build(struct vtsm_guest *g, unsigned gop, const char *dev, int64_t tdi,
                             const uint8_t *nonce, const char *reason,
                             struct vtsm_guest_envelope *env);

/*
 * Remember what an INFO result reports of its TDI (dev, tdi, report_digest,
 * measurements_digest, lock_nonce_digest) for the next ACCEPT of that TDI built on this
 * handle (docs/abi.md 9.5: ACCEPT binds what the guest verified; the TSM refuses it under
 * rule TDI.20 when the TDI's binding is no longer that one). vtsm_guest_call does it for
 * every INFO it makes; a caller that carries requests itself calls it with the INFO
 * result it checked. The handle remembers the last 16 TDIs. E_PEER_MALFORMED if the
 * result lacks dev/tdi or has a digest longer than 48 bytes.
 */
vtsm_status vtsm_guest_remember_info(struct vtsm_guest *g, const struct vtsm_result *info);

/*
 * Reserve the next seq: under the key file's lock, read "<key>.seq", take max(file, last
 * used by this handle) + 1, write it back atomically. Gaps are harmless (the TSM only
 * asks for strictly increasing numbers); reuse never happens. E_LIMIT at 2^64-1.
 */
vtsm_status vtsm_guest_reserve_seq(struct vtsm_guest *g, uint64_t *seq);

/*
 * Sign arbitrary body bytes into an envelope for envelope_tvm. No check of the body and
 * no seq handling: for tests and for callers that encode bodies themselves.
 */
vtsm_status vtsm_guest_sign(const struct vtsm_guest *g, uint32_t envelope_tvm, const uint8_t *body,
                            size_t len, struct vtsm_guest_envelope *env);

/* ---- transport ---- */

/*
 * Build a request and send it through `relay` as GUEST_REQUEST, blocking until the TSM
 * answers; relay services the DOE exchanges of the request through its registered
 * callbacks. relay is either a host connection (the host relays guest traffic;
 * vtsm_host_open) or a direct guest connection (vtsm_guest_connect). On VTSM_OK *result
 * is the RESULT, checked to echo gop, tvm and seq (else E_PEER_MALFORMED); on a
 * TSM-reported failure it is the ERROR, else NULL. Failures copy the TSM's (or the
 * shim's) detail and rule into the thread's error record (vtsm_err_detail(),
 * vtsm_err_rule()); name, source and the rule as sent are in vtsm_host_last_error(relay).
 * result may be NULL. Every INFO result is remembered for the next ACCEPT of its TDI (a
 * successful LOCK or UNLOCK of the TDI forgets it); an ACCEPT of a TDI this handle has no
 * INFO of sends that INFO (without nonce) first.
 */
vtsm_status vtsm_guest_call(struct vtsm_guest *g, struct vtsm_host *relay, unsigned gop,
                            const char *dev, int64_t tdi, const uint8_t *nonce, const char *reason,
                            struct vtsm_result **result);

/*
 * Open a direct connection to tsmd with HELLO role "guest" (a host-shim handle opened
 * with role VTSM_ROLE_GUEST; socket_path NULL: the default path, client NULL:
 * "vtsm-guest-shim"). Register the device's DOE callback on it (vtsm_host_register_doe)
 * before requests that reach the device. Close with vtsm_host_close. Errors as
 * vtsm_host_open_cfg (E_ABI_ROLE if the TSM grants another role).
 */
vtsm_status vtsm_guest_connect(const char *socket_path, const char *client, struct vtsm_host **out);

/* ---- evidence ---- */

/* The TSM certificate compiled into the library (pki/tsm/tsm.pem). Caller X509_free()s. */
vtsm_status vtsm_guest_default_tsm_cert(X509 **out);
/* kid of a TSM certificate: SHA-256 of its DER. */
vtsm_status vtsm_guest_tsm_kid(X509 *tsm_cert, uint8_t kid[VTSM_GUEST_KID_SIZE]);

/*
 * Verify an evidence token: COSE_Sign1 with the key of tsm_cert (NULL: the embedded TSM
 * certificate), its kid must be SHA-256 of that certificate's DER, and the claims' nonce
 * must equal `nonce`. On VTSM_OK *claims (if not NULL) is the claims map.
 *   E_PEER_SIGNATURE  signature does not verify, kid missing or naming another key
 *   E_PEER_ALGO       alg missing or not the certificate's curve
 *   E_PEER_MALFORMED  not a COSE_Sign1 holding a map; claims without a 32-byte nonce
 *   E_PEER_NONCE      claims.nonce differs (constant-time compare)
 */
vtsm_status vtsm_guest_verify_token(const uint8_t *token, size_t len, X509 *tsm_cert,
                                    const uint8_t nonce[VTSM_GUEST_NONCE_SIZE],
                                    struct vtsm_result **claims);

/*
 * Reference values: a text file, one "key value" per line, '#' starts a comment (whole
 * line or after the value), blank lines ignored; each key at most once (measurement: once
 * per index), at least one value:
 *
 *   report_digest      <hex>          digest of the interface report (32 or 48 bytes)
 *   cert_chain_digest  <hex>          digest of the device's SPDM certificate chain
 *   interface_info     <hex>          INTERFACE_INFO of the report, 16 bits, e.g. 0x0001
 *   mmio_ranges        <n>            number of MMIO ranges in the report (decimal)
 *   measurement <index> <hex>         value of measurement block index (1..254): the DMTF
 *                                     measurement value (without its 3-byte header)
 *
 * Hex is even-length, case-insensitive, no separators (interface_info: 1..4 digits with
 * an optional 0x). A malformed file fails with E_CONFIG "FILE line N: ..." naming the
 * problem; an unreadable one with E_NOT_FOUND / E_IO.
 */
struct vtsm_guest_ref;
vtsm_status vtsm_guest_ref_load(const char *ref_path, struct vtsm_guest_ref **out);
/* Same from memory; name is used in messages. */
vtsm_status vtsm_guest_ref_parse(const char *text, size_t len, const char *name,
                                 struct vtsm_guest_ref **out);
void vtsm_guest_ref_free(struct vtsm_guest_ref *ref);
/* Number of values in a loaded reference. */
size_t vtsm_guest_ref_count(const struct vtsm_guest_ref *ref);

/*
 * Compare an INFO result with loaded reference values, in file order. Values come from
 * the result's bytes where possible: interface_info and mmio_ranges from "report"
 * (parsed with vtsm_tdisp_report_parse; "interface_info" / "mmio" only if there is no
 * report), measurements from "measurements.record" ("measurements.blocks" only if there
 * is no record), digests from "report_digest" / "cert_chain_digest".
 *   E_POLICY_REFUSED  the first mismatch: "line N: KEY mismatch: reference X, TDI Y"
 *   E_PEER_MALFORMED  the result lacks or garbles a field a reference value needs
 */
vtsm_status vtsm_guest_ref_check(const struct vtsm_guest_ref *ref,
                                 const struct vtsm_result *info_result);
/* vtsm_guest_ref_load + vtsm_guest_ref_check. */
vtsm_status vtsm_guest_check_reference(const struct vtsm_result *info_result, const char *ref_path);

/* ---- deciding about a TDI ---- */

enum vtsm_guest_verdict {
    VTSM_GUEST_NO_VERDICT = 0,
    VTSM_GUEST_ACCEPT = 1,
    VTSM_GUEST_REJECT = 2,
};

struct vtsm_guest_decision {
    enum vtsm_guest_verdict verdict;
    vtsm_status why;            /* VTSM_OK when accepted; the refusal otherwise */
    char reason[512];           /* accepted: what was checked; rejected: the refusal detail */
    enum vtsm_rule rule;        /* the rule of the refusal (why), VTSM_RULE_NONE if none */
    struct vtsm_result *info;   /* the INFO result (owned; vtsm_guest_decision_clear frees) */
    struct vtsm_result *claims; /* the verified token claims (owned), NULL if not verified */
};

/* Free what a decision owns and zero it. */
void vtsm_guest_decision_clear(struct vtsm_guest_decision *d);

/*
 * Check the evidence of an INFO result obtained with `nonce`:
 *   1. its token verifies (vtsm_guest_verify_token with tsm_cert, NULL = embedded);
 *   2. the claims name this TVM (tvm, tvm_identity), dev and tdi (E_AUTH otherwise),
 *      after_lock is true and state is CONFIG_LOCKED or RUN (E_PEER_STATE);
 *   3. the INFO result is bound to the claims: report hashes to report_digest,
 *      cert_chain to cert_chain_digest, measurements.record to measurements_digest and
 *      measurements.transcript to measurement_transcript_digest, and the result's own
 *      digests equal the claims' (E_PEER_DIGEST) — measurements_digest and
 *      lock_nonce_digest too, which a later ACCEPT carries; vca and kex.transcript, when
 *      the claims name them, hash to vca_digest and kex_transcript_digest;
 *      measurements.nonce, when present, is the nonce (E_PEER_NONCE);
 *   4. with ref (NULL: evidence only) every reference value matches
 *      (vtsm_guest_ref_check: E_POLICY_REFUSED naming the line and both values).
 * Missing or mistyped fields are E_PEER_MALFORMED. On VTSM_OK *claims (if not NULL) is
 * the verified claims map.
 */
vtsm_status vtsm_guest_check_evidence(const struct vtsm_guest *g, const struct vtsm_result *info,
                                      const char *dev, uint32_t tdi,
                                      const uint8_t nonce[VTSM_GUEST_NONCE_SIZE],
                                      const struct vtsm_guest_ref *ref, X509 *tsm_cert,
                                      struct vtsm_result **claims);

/*
 * One call for "should this TVM accept (dev, tdi)?": INFO with a fresh random nonce
 * through relay, then vtsm_guest_check_evidence with ref (may be NULL).
 * Returns VTSM_OK when a verdict was reached: d->verdict ACCEPT (every check passed) or
 * REJECT (d->why and d->reason say which check failed). Returns an error (verdict
 * NO_VERDICT, d->why and d->reason set too) when no evidence could be had: the INFO
 * request failed (transport, or an ERROR from the TSM such as not_owner) or bad
 * arguments. The caller sends ACCEPT or REJECT itself (vtsm_guest_call). d is always
 * initialised; release it with vtsm_guest_decision_clear.
 */
vtsm_status vtsm_guest_decide(struct vtsm_guest *g, struct vtsm_host *relay, const char *dev,
                              uint32_t tdi, const struct vtsm_guest_ref *ref, X509 *tsm_cert,
                              struct vtsm_guest_decision *d);

/* ---- MMIO and DMA (docs/abi.md 9.5) ---- */

/* One MMIO range as the guest expects it: its index in the TDI's interface report (as
 * INFO's mmio_map lists them), the GPA the guest finds it at, its size in 4 KiB pages,
 * and whether the guest keeps it shared rather than private (TEE) memory. */
struct vtsm_guest_mmio {
    uint32_t range;
    uint64_t gpa;
    uint64_t pages;
    bool shared;
};

/*
 * MMIO_VALIDATE of one range of TDI tdi of dev where the host mapped it (the shape of
 * RSI_VDEV_VALIDATE_MAPPING / MMIO_VALIDATE / TDG.MMIO.ACCEPT), and DMA_ENABLE once every
 * range is validated (RSI_VDEV_DMA_ENABLE / SDTE_WRITE / TDG.DMAR.ACCEPT). Signed with the
 * next seq and sent through relay, with the result and error conventions of
 * vtsm_guest_call; the TSM's refusals carry the MMIO.n / DMA.n rules. E_INVAL before
 * anything is sent for a range above 63 or pages outside 1..2^32-1.
 */
vtsm_status vtsm_guest_mmio_validate(struct vtsm_guest *g, struct vtsm_host *relay, const char *dev,
                                     uint32_t tdi, const struct vtsm_guest_mmio *m,
                                     struct vtsm_result **result);
vtsm_status vtsm_guest_dma_enable(struct vtsm_guest *g, struct vtsm_host *relay, const char *dev,
                                  uint32_t tdi, struct vtsm_result **result);

#ifdef __cplusplus
}
#endif

#endif
