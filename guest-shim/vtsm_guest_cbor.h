/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The guest shim's CBOR face, for code inside this tree (the CLIs, the demo, the bench
 * and the tests): requests built as libcbor maps, results and claims as libcbor items.
 * Not installed: the public API (include/vtsm/vtsm_guest.h) exposes no CBOR library type;
 * each function here has a public counterpart without the _cbor suffix.
 *
 * Maps returned through cbor_item_t ** belong to the caller (cbor_decref).
 */
#ifndef VTSM_GUEST_CBOR_H
#define VTSM_GUEST_CBOR_H

#include <cbor.h>

#include "vtsm_guest.h"
#include "vtsm_host_cbor.h"

/* ---- building requests ---- */

/*
 * Build a GUEST_REQUEST request map {tvm, body, sig} (the caller, or the host shim, adds
 * "op" and "id"). body = {gop, tvm, seq, ? dev, ? tdi, ? nonce, ? reason} in that order;
 * absent arguments (NULL, tdi VTSM_GUEST_NO_TDI) are not sent. Arguments are checked per
 * operation before seq is touched (E_INVAL, rule GUEST.4):
 *   LIST    no dev, tdi, nonce or reason
 *   INFO    dev and tdi; nonce optional (32 bytes); no reason
 *   ACCEPT  dev and tdi; no nonce or reason
 *   REJECT  dev and tdi; reason optional (valid UTF-8, <= VTSM_GUEST_REASON_MAX bytes)
 * dev must be a valid device name, tdi 0..UINT32_MAX. Then the next seq is reserved and
 * persisted (vtsm_guest_reserve_seq) and the body signed. E_STATE if the handle has tvm 0.
 */
vtsm_status vtsm_guest_build_cbor(struct vtsm_guest *g, unsigned gop, const char *dev, int64_t tdi,
                                  const uint8_t *nonce, const char *reason,
                                  cbor_item_t **envelope_map);

/*
 * Sign arbitrary body bytes into an envelope {tvm: envelope_tvm, body, sig}. No check of
 * the body and no seq handling: for tests and for callers that encode bodies themselves.
 */
vtsm_status vtsm_guest_sign_cbor(const struct vtsm_guest *g, uint32_t envelope_tvm,
                                 const uint8_t *body, size_t len, cbor_item_t **envelope_map);

/*
 * Build a request and send it through `relay` (vtsm_host_guest_relay_cbor: the envelope goes
 * as GUEST_REQUEST), blocking until the TSM answers; relay services the DOE exchanges of
 * the request through its registered callbacks. relay is either a host connection (the
 * host relays guest traffic; vtsm_host_open) or a direct guest connection
 * (vtsm_guest_connect). On VTSM_OK *result is the RESULT map, checked to echo gop, tvm
 * and seq (else E_PEER_MALFORMED); on a TSM-reported failure it is the ERROR message,
 * else NULL. Failures copy the TSM's (or the shim's) detail and rule into the thread's
 * error record (vtsm_err_detail(), vtsm_err_rule()); name, source and the rule as sent
 * are in vtsm_host_last_error(relay). result may be NULL.
 */
vtsm_status vtsm_guest_call_cbor(struct vtsm_guest *g, struct vtsm_host *relay, unsigned gop,
                                 const char *dev, int64_t tdi, const uint8_t *nonce,
                                 const char *reason, cbor_item_t **result);

/*
 * Remember what an INFO result reports of its TDI (dev, tdi, report_digest,
 * measurements_digest, lock_nonce_digest) for the next ACCEPT of that TDI built on this
 * handle. vtsm_guest_call_cbor does it for every INFO it makes. E_PEER_MALFORMED if the
 * result lacks dev/tdi or has a digest longer than 48 bytes.
 */
vtsm_status vtsm_guest_remember_info_cbor(struct vtsm_guest *g, const cbor_item_t *info);

/*
 * Verify an evidence token: COSE_Sign1 (vtsm_cose_verify1) with the key of tsm_cert
 * (NULL: the embedded TSM certificate), its kid must be SHA-256 of that certificate's
 * DER, and the claims' nonce must equal `nonce`. On VTSM_OK *claims (if not NULL) is the
 * claims map.
 *   E_PEER_SIGNATURE  signature does not verify, kid missing or naming another key
 *   E_PEER_ALGO       alg missing or not the certificate's curve
 *   E_PEER_MALFORMED  not a COSE_Sign1 holding a map; claims without a 32-byte nonce
 *   E_PEER_NONCE      claims.nonce differs (constant-time compare)
 */
vtsm_status vtsm_guest_verify_token_cbor(const uint8_t *token, size_t len, X509 *tsm_cert,
                                         const uint8_t nonce[VTSM_GUEST_NONCE_SIZE],
                                         cbor_item_t **claims);

/*
 * Compare an INFO result with loaded reference values, in file order. Values come from
 * the result's bytes where possible: interface_info and mmio_ranges from "report"
 * (parsed with vtsm_tdisp_report_parse; "interface_info" / "mmio" only if there is no
 * report), measurements from "measurements.record" ("measurements.blocks" only if there
 * is no record), digests from "report_digest" / "cert_chain_digest".
 *   E_POLICY_REFUSED  the first mismatch: "line N: KEY mismatch: reference X, TDI Y"
 *   E_PEER_MALFORMED  the result lacks or garbles a field a reference value needs
 */
vtsm_status vtsm_guest_ref_check_cbor(const struct vtsm_guest_ref *ref,
                                      const cbor_item_t *info_result);
/* vtsm_guest_ref_load + vtsm_guest_ref_check_cbor. */
vtsm_status vtsm_guest_check_reference_cbor(const cbor_item_t *info_result, const char *ref_path);

/*
 * Check the evidence of an INFO result obtained with `nonce`:
 *   1. its token verifies (vtsm_guest_verify_token_cbor with tsm_cert, NULL = embedded);
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
 *      (vtsm_guest_ref_check_cbor: E_POLICY_REFUSED naming the line and both values).
 * Missing or mistyped fields are E_PEER_MALFORMED. On VTSM_OK *claims (if not NULL) is
 * the verified claims map.
 */
vtsm_status vtsm_guest_check_evidence_cbor(const struct vtsm_guest *g, const cbor_item_t *info,
                                           const char *dev, uint32_t tdi,
                                           const uint8_t nonce[VTSM_GUEST_NONCE_SIZE],
                                           const struct vtsm_guest_ref *ref, X509 *tsm_cert,
                                           cbor_item_t **claims);

/* ---- MMIO and DMA (docs/abi.md 9.5) ---- */

/*
 * MMIO_VALIDATE of one range of TDI tdi of dev (the RSI_VDEV_VALIDATE_MAPPING /
 * MMIO_VALIDATE / TDG.MMIO.ACCEPT shape), and DMA_ENABLE (RSI_VDEV_DMA_ENABLE / SDTE_WRITE
 * / TDG.DMAR.ACCEPT). Signed with the next seq and sent through relay like
 * vtsm_guest_call_cbor, with the same result and error conventions; refusals carry the
 * MMIO.n / DMA.n rules. E_INVAL before anything is sent for a bad range or pages.
 * struct vtsm_guest_mmio is in vtsm_guest.h; the public forms are vtsm_guest_mmio_validate
 * and vtsm_guest_dma_enable.
 */
vtsm_status vtsm_guest_mmio_validate_cbor(struct vtsm_guest *g, struct vtsm_host *relay,
                                          const char *dev, uint32_t tdi,
                                          const struct vtsm_guest_mmio *m, cbor_item_t **result);
vtsm_status vtsm_guest_dma_enable_cbor(struct vtsm_guest *g, struct vtsm_host *relay,
                                       const char *dev, uint32_t tdi, cbor_item_t **result);

#endif
