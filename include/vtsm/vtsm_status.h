/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * One structured status type for the whole project.
 *
 * Every status has a *source* that keeps the peer's faults apart from ours:
 *   core      - our own state machine / resources / arguments
 *   crypto    - an OpenSSL operation failed locally
 *   transport - bytes did not move (socket, DOE framing)
 *   peer      - the other side (device, guest) sent something wrong
 *   abi       - the socket ABI client sent something wrong
 *   policy    - a rule of the TSM refused the request
 * A status is a plain enum value; its source, name and text come from one table.
 * Wire error codes are derived from it only at the ABI boundary.
 *
 * A failing function also records, for the current thread, a human-readable detail and,
 * when a rule refused the request, the rule (vtsm_rule.h) as data: vtsm_refuse().
 * Callers and tests branch on (status, rule), never on the detail's wording.
 */
#ifndef VTSM_STATUS_H
#define VTSM_STATUS_H

#include <stddef.h>

#include "vtsm_rule.h"

#ifdef __cplusplus
extern "C" {
#endif

enum vtsm_source {
    VTSM_SRC_NONE = 0,
    VTSM_SRC_CORE = 1,
    VTSM_SRC_CRYPTO = 2,
    VTSM_SRC_TRANSPORT = 3,
    VTSM_SRC_PEER = 4,
    VTSM_SRC_ABI = 5,
    VTSM_SRC_POLICY = 6,
};

/* X(NAME, SOURCE, "text"). Append new codes at the END OF THE WHOLE LIST only: the
 * numeric value of a code is part of the socket ABI (docs/abi.md). */
#define VTSM_STATUS_LIST(X)                                                                        \
    X(OK, NONE, "success")                                                                         \
    /* core */                                                                                     \
    X(E_NOMEM, CORE, "out of memory")                                                              \
    X(E_INVAL, CORE, "invalid argument")                                                           \
    X(E_STATE, CORE, "operation not allowed in the current state")                                 \
    X(E_BUSY, CORE, "object busy with another operation")                                          \
    X(E_NOT_FOUND, CORE, "no such object")                                                         \
    X(E_EXISTS, CORE, "object already exists")                                                     \
    X(E_TOO_SMALL, CORE, "buffer too small")                                                       \
    X(E_UNSUPPORTED, CORE, "not supported")                                                        \
    X(E_INTERNAL, CORE, "internal error")                                                          \
    X(E_LIMIT, CORE, "resource limit reached")                                                     \
    X(E_ABORTED, CORE, "operation aborted")                                                        \
    X(E_CONFIG, CORE, "invalid configuration")                                                     \
    /* crypto */                                                                                   \
    X(E_CRYPTO, CRYPTO, "cryptographic operation failed")                                          \
    /* transport */                                                                                \
    X(E_IO, TRANSPORT, "I/O error")                                                                \
    X(E_CLOSED, TRANSPORT, "connection closed")                                                    \
    X(E_TIMEOUT, TRANSPORT, "timed out")                                                           \
    X(E_DOE_TRUNCATED, TRANSPORT, "DOE object truncated")                                          \
    X(E_DOE_MISALIGNED, TRANSPORT, "DOE object length not a multiple of 4 bytes")                  \
    X(E_DOE_OVERSIZED, TRANSPORT, "DOE object larger than its header or the 2^18 DW limit")        \
    X(E_DOE_HEADER, TRANSPORT, "DOE header invalid (vendor ID, type or length)")                   \
    X(E_DOE_HOST, TRANSPORT, "host reported a DOE failure")                                        \
    /* peer (device or guest) */                                                                   \
    X(E_PEER_MALFORMED, PEER, "peer message malformed")                                            \
    X(E_PEER_TRUNCATED, PEER, "peer message truncated")                                            \
    X(E_PEER_UNEXPECTED, PEER, "unexpected response code")                                         \
    X(E_PEER_ERROR, PEER, "peer answered with an ERROR message")                                   \
    X(E_PEER_VERSION, PEER, "no common protocol version")                                          \
    X(E_PEER_ALGO, PEER, "no acceptable algorithm")                                                \
    X(E_PEER_CAPS, PEER, "peer lacks a required capability")                                       \
    X(E_PEER_SIGNATURE, PEER, "signature verification failed")                                     \
    X(E_PEER_HMAC, PEER, "verify data (HMAC) mismatch")                                            \
    X(E_PEER_CHAIN, PEER, "certificate chain malformed")                                           \
    X(E_PEER_UNTRUSTED, PEER, "certificate chain not trusted")                                     \
    X(E_PEER_DIGEST, PEER, "digest mismatch")                                                      \
    X(E_PEER_SESSION_ID, PEER, "wrong secure session ID")                                          \
    X(E_PEER_DECRYPT, PEER, "secured message failed authentication (tampered or replayed)")        \
    X(E_PEER_NONCE, PEER, "nonce mismatch")                                                        \
    X(E_PEER_NOT_READY, PEER, "peer not ready after retries")                                      \
    X(E_PEER_OVERSIZED, PEER, "peer message exceeds a limit")                                      \
    X(E_PEER_NAK, PEER, "peer refused the request")                                                \
    X(E_PEER_STATE, PEER, "peer reported an unexpected state")                                     \
    /* abi */                                                                                      \
    X(E_ABI_MALFORMED, ABI, "malformed ABI message")                                               \
    X(E_ABI_UNKNOWN_OP, ABI, "unknown opcode")                                                     \
    X(E_ABI_VERSION, ABI, "unsupported ABI version")                                               \
    X(E_ABI_ROLE, ABI, "operation not allowed for this role")                                      \
    X(E_ABI_NO_HELLO, ABI, "HELLO required first")                                                 \
    X(E_ABI_ARG, ABI, "invalid or missing argument")                                               \
    X(E_ABI_OVERSIZED, ABI, "ABI frame too large")                                                 \
    X(E_ABI_SEQUENCE, ABI, "unexpected message in this sequence")                                  \
    /* policy */                                                                                   \
    X(E_POLICY_REFUSED, POLICY, "refused by TSM policy")                                           \
    X(E_NO_STREAM, POLICY, "no IDE stream available")                                              \
    X(E_NOT_OWNER, POLICY, "requester does not own the object")                                    \
    X(E_AUTH, POLICY, "request authentication failed")                                             \
    X(E_REPLAY, POLICY, "replayed or out-of-order request")

typedef enum vtsm_status {
#define VTSM_X_ENUM(name, src, text) VTSM_##name,
    VTSM_STATUS_LIST(VTSM_X_ENUM)
#undef VTSM_X_ENUM
        VTSM_STATUS_COUNT_
} vtsm_status;

/* Source of a status (VTSM_SRC_*). */
enum vtsm_source vtsm_status_source(vtsm_status st);
/* Stable lower-case name, e.g. "peer_signature" for VTSM_E_PEER_SIGNATURE. */
const char *vtsm_status_name(vtsm_status st);
/* One-line description. */
const char *vtsm_status_text(vtsm_status st);
/* Name of a source: "core", "crypto", "transport", "peer", "abi", "policy". */
const char *vtsm_source_name(enum vtsm_source src);
/* Parse a name from vtsm_status_name(); returns VTSM_STATUS_COUNT_ if unknown. */
vtsm_status vtsm_status_from_name(const char *name);

/* ---- rules (vtsm_rule.h) ---- */

/* "TDI.4" for VTSM_RULE_TDI_4; NULL for VTSM_RULE_NONE or a value out of range. */
const char *vtsm_rule_id(enum vtsm_rule r);
/* The rule's one-line meaning ("" for none). */
const char *vtsm_rule_text(enum vtsm_rule r);
/* The status a refusal under r comes with (VTSM_OK for an outcome rule or none). */
vtsm_status vtsm_rule_status(enum vtsm_rule r);
/* Parse an id ("TDI.4", exact). VTSM_RULE_NONE if the text names no rule. */
enum vtsm_rule vtsm_rule_parse(const char *id);
/* The rule a refusal with status st names when it names no other (ABI.n for the ABI
 * statuses, VTSM_RULE_BY_STATUS), else VTSM_RULE_NONE. */
enum vtsm_rule vtsm_rule_of_status(vtsm_status st);

/* ---- the thread's error record ---- */

/* The calling thread's last failure: its detail in words ("" if none), status and rule.
 * Every failing library call records one (vtsm_host_open() has no handle to ask). */
const char *vtsm_err_detail(void);
vtsm_status vtsm_err_status(void);
enum vtsm_rule vtsm_err_rule(void);
void vtsm_err_clear(void);

#ifdef __cplusplus
}
#endif

#endif
