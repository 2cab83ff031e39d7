/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The vtsm socket ABI (docs/abi.md is the normative description).
 *
 * A connection carries frames: a 4-byte big-endian length N (1..4 MiB) followed by
 * exactly N bytes holding one CBOR data item, a definite-length map with text keys.
 * Every message has "op"; client requests also carry "id", echoed by the TSM.
 *
 * This module is shared by tsmd (server), the host shim, the CLIs and the tests:
 *   - opcodes, roles, limits and key names
 *   - framing: blocking send/recv, an incremental reader for non-blocking fds,
 *     encode to / decode from memory (decode is the bounded validator)
 *   - map builders and typed getters over libcbor (getters fail with E_ABI_ARG and a
 *     detail naming the key and the expected type)
 *   - requests decoded into a typed struct vtsm_abi_req (the request-field list)
 *   - message builders and a CBOR -> JSON printer
 *
 * Ownership: every function returning a cbor_item_t * returns a new reference that the
 * caller releases with cbor_decref(). Getters borrow from the map they read.
 * None of the functions keeps global state; a reader or item may be used by one thread
 * at a time.
 */
#ifndef VTSM_ABI_H
#define VTSM_ABI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cbor.h>

#include "vtsm_abi_defs.h"
#include "vtsm_ops.h"
#include "vtsm_buf.h"
#include "vtsm_doe.h"
#include "vtsm_err.h"

/* ---- version, roles, limits ---- */

enum vtsm_abi_role {
    VTSM_ABI_ROLE_NONE = 0,
    VTSM_ABI_ROLE_HOST = 1,  /* "host" */
    VTSM_ABI_ROLE_GUEST = 2, /* "guest" */
};

/* ---- opcodes ("op") ---- */

/*
 * The operation table is public (include/vtsm/vtsm_ops.h, VTSM_OPS): everything that
 * names a request comes from it. Its columns as this module reads them:
 *   roles  VTSM_ABI_ROLES_HOST, _GUEST or _ANY: who may send it (after HELLO)
 *   dev    VTSM_ABI_DEV_NONE / _OPTIONAL / _REQUIRED: its "dev" key (a valid device
 *          name, checked with the other fields before the handler runs)
 *   keys   the schema: each a field of VTSM_ABI_REQ_FIELDS (type, range), every other
 *          key refused before any state is touched (vtsm_abi_req_decode)
 */
#define VTSM_ABI_ROLES_HOST  (1u << 1) /* 1 << VTSM_ABI_ROLE_HOST */
#define VTSM_ABI_ROLES_GUEST (1u << 2) /* 1 << VTSM_ABI_ROLE_GUEST */
#define VTSM_ABI_ROLES_ANY   (VTSM_ABI_ROLES_HOST | VTSM_ABI_ROLES_GUEST)
enum vtsm_abi_dev_key { VTSM_ABI_DEV_NONE = 0, VTSM_ABI_DEV_OPTIONAL, VTSM_ABI_DEV_REQUIRED };

#define VTSM_ABI_REQUESTS(X) VTSM_OPS(X)

_Static_assert((int)VTSM_ABI_ROLE_HOST == (int)VTSM_ROLE_HOST &&
                   (int)VTSM_ABI_ROLE_GUEST == (int)VTSM_ROLE_GUEST,
               "the public roles are the ABI's");

enum vtsm_abi_op {
/* client -> TSM */
#define VTSM_ABI_X_OP(NAME, lower, code, roles, dev, keys) VTSM_ABI_OP_##NAME = code,
    VTSM_ABI_REQUESTS(VTSM_ABI_X_OP)
#undef VTSM_ABI_X_OP
    /* TSM -> client */
    VTSM_ABI_OP_RESULT = 0x80,
    VTSM_ABI_OP_ERROR = 0x81,
    VTSM_ABI_OP_DOE_PENDING = 0x82,
    VTSM_ABI_OP_EVENT = 0x88, /* asynchronous, to subscribed host connections (11.4) */
};

/* Dense index of a request in the table (for dispatch tables). */
enum vtsm_abi_req_index {
#define VTSM_ABI_X_IDX(NAME, lower, code, roles, dev, keys) VTSM_ABI_REQ_##NAME,
    VTSM_ABI_REQUESTS(VTSM_ABI_X_IDX)
#undef VTSM_ABI_X_IDX
        VTSM_ABI_REQ_COUNT_
};

/* A request's row: its code, name, roles, dev key and schema. */
struct vtsm_abi_request {
    enum vtsm_abi_op op;
    const char *name;  /* "DEVICE_CONNECT" */
    const char *lower; /* "device_connect" */
    unsigned roles;    /* VTSM_ABI_ROLES_* */
    enum vtsm_abi_dev_key dev;
    const char *const *keys; /* NULL-terminated */
};
extern const struct vtsm_abi_request vtsm_abi_requests[VTSM_ABI_REQ_COUNT_];
/* The row of a client-to-TSM opcode, NULL if op is not one. */
const struct vtsm_abi_request *vtsm_abi_request_find(uint64_t op);

/* Opcode ranges: host TVM/TDI verbs, guest requests (docs/abi.md section 6). */
#define VTSM_ABI_OP_HOST_TDI_FIRST 0x30u
#define VTSM_ABI_OP_HOST_TDI_LAST  0x3Fu
#define VTSM_ABI_OP_GUEST_FIRST    0x40u
#define VTSM_ABI_OP_GUEST_LAST     0x4Fu

/* "DEVICE_CONNECT" etc.; NULL if op is not a defined opcode. */
const char *vtsm_abi_op_name(uint64_t op);
/* "LIST" / "INFO" / "ACCEPT" / "REJECT" / "LOCK" / "UNLOCK" / "DEBUG_READ" / "DEBUG_WRITE";
 * NULL if gop is not a defined guest operation. */
const char *vtsm_abi_gop_name(uint64_t gop);
/* The scope of a guest operation (enum vtsm_abi_scope), -1 if gop is none. */
int vtsm_abi_gop_scope(uint64_t gop);
/* "host" / "guest"; NULL for anything else. */
const char *vtsm_abi_role_name(enum vtsm_abi_role role);
/* "host" -> VTSM_ABI_ROLE_HOST ...; VTSM_ABI_ROLE_NONE if unknown. */
enum vtsm_abi_role vtsm_abi_role_parse(const char *name);

/* ---- key names ---- */

#define VTSM_ABI_K_OP              "op"
#define VTSM_ABI_K_ID              "id"
#define VTSM_ABI_K_STATUS          "status"
#define VTSM_ABI_K_NAME            "name"
#define VTSM_ABI_K_SOURCE          "source"
#define VTSM_ABI_K_DETAIL          "detail"
#define VTSM_ABI_K_RULE            "rule" /* ERROR: id of the rule that refused, "TDI.4" */
#define VTSM_ABI_K_VERSIONS        "versions"
#define VTSM_ABI_K_VERSION         "version"
#define VTSM_ABI_K_ROLE            "role"
#define VTSM_ABI_K_CLIENT          "client"
#define VTSM_ABI_K_TSM             "tsm"
#define VTSM_ABI_K_DEV             "dev"
#define VTSM_ABI_K_ROOT_PORT       "root_port"
#define VTSM_ABI_K_SLOT            "slot"
#define VTSM_ABI_K_ALLOW_UNTRUSTED "allow_untrusted"
#define VTSM_ABI_K_MIN_VERSION     "min_version"
#define VTSM_ABI_K_MAX_VERSION     "max_version"
#define VTSM_ABI_K_ASYM            "asym"
#define VTSM_ABI_K_HASH            "hash"
#define VTSM_ABI_K_SEQ             "seq"
#define VTSM_ABI_K_OBJECT          "object"
#define VTSM_ABI_K_ERROR           "error"
#define VTSM_ABI_K_DEVICES         "devices"
#define VTSM_ABI_K_ALL             "all"         /* SPDM_KEY_UPDATE: UpdateAllKeys */
#define VTSM_ABI_K_REQUEST_OP      "request_op"  /* ERROR: opcode of the refused request */
#define VTSM_ABI_K_IDE_STREAMS     "ide_streams" /* DEVICE_CONNECT: selective streams, 0 = IDE off */
#define VTSM_ABI_K_IDE_ONLY        "ide_only"    /* DEVICE_CONNECT: device need not be TEE-IO */
/* DEVICE_CONNECT: authenticate by CHALLENGE too; in a report, the CHALLENGE evidence */
#define VTSM_ABI_K_CHALLENGE  "challenge"
#define VTSM_ABI_K_CHANNEL    "channel" /* DOE_PENDING: "link" for simulated-link TLPs */
#define VTSM_ABI_K_TVM        "tvm"
#define VTSM_ABI_K_TDI        "tdi"
#define VTSM_ABI_K_GUEST_KEY  "guest_key"  /* TVM_CREATE: SEC1 uncompressed P-256 point */
#define VTSM_ABI_K_LOCK_FLAGS "lock_flags" /* TDI_BIND: TDISP LOCK_INTERFACE flags */
#define VTSM_ABI_K_BODY       "body"       /* GUEST_REQUEST: CBOR-encoded inner request */
#define VTSM_ABI_K_SIG        "sig"        /* GUEST_REQUEST: guest signature over body */
#define VTSM_ABI_K_GOP        "gop"        /* guest body: guest operation */
#define VTSM_ABI_K_NONCE      "nonce"
#define VTSM_ABI_K_REASON     "reason"
#define VTSM_ABI_K_FORCE      "force" /* DEVICE_RECLAIM: unbind bound TDIs first */
/* INFO reply and ACCEPT body: digest of the TDI's LOCK_INTERFACE nonce (the nonce stays secret) */
#define VTSM_ABI_K_LOCK_NONCE_DIGEST     "lock_nonce_digest"
#define VTSM_ABI_K_REFRESH               "refresh" /* EVIDENCE: re-measure and re-read certificates first */
#define VTSM_ABI_K_VCA                   "vca" /* EVIDENCE, INFO: the SPDM VCA transcript */
#define VTSM_ABI_K_VCA_DIGEST            "vca_digest"
#define VTSM_ABI_K_KEX_TRANSCRIPT_DIGEST "kex_transcript_digest"
#define VTSM_ABI_K_SLOTS                 "slots" /* EVIDENCE: every provisioned certificate slot */
#define VTSM_ABI_K_SCOPE                 "scope" /* guest body: the request's scope (enum vtsm_abi_scope) */
#define VTSM_ABI_K_DEBUG                 "debug" /* TVM_CREATE: the TVM may send DEBUG_WRITE requests */
#define VTSM_ABI_K_GUEST_UNLOCKED        "guest_unlocked" /* STATUS TDI: its owner UNLOCKed it */
#define VTSM_ABI_K_LOCK_SEQ              "lock_seq" /* DEBUG_READ: event numbers (after_lock) */
#define VTSM_ABI_K_MEAS_SEQ              "meas_seq"
/* STATUS TDI entry: the rule under which the TSM moved the TDI to ERROR */
#define VTSM_ABI_K_ERROR_RULE "error_rule"

/* Reply fields (docs/abi.md sections 7, 9 and 11), one name each for tsmd, which builds
 * the replies, and for the shims, the CLIs and the guest verifier, which read them. No
 * product code spells a reply key as a literal. */
#define VTSM_ABI_K_ACKNOWLEDGED                  "acknowledged"
#define VTSM_ABI_K_AEAD                          "aead"
#define VTSM_ABI_K_AFTER_LOCK                    "after_lock"
#define VTSM_ABI_K_ALGORITHMS                    "algorithms"
#define VTSM_ABI_K_ATTRIBUTES                    "attributes"
#define VTSM_ABI_K_BLOCKS                        "blocks"
#define VTSM_ABI_K_BOUND_TDIS                    "bound_tdis"
#define VTSM_ABI_K_BUSY                          "busy"
#define VTSM_ABI_K_CAPABILITIES                  "capabilities"
#define VTSM_ABI_K_CERT_CHAIN                    "cert_chain"
#define VTSM_ABI_K_CERT_CHAIN_DIGEST             "cert_chain_digest"
#define VTSM_ABI_K_CLAIMS                        "claims"
#define VTSM_ABI_K_CONNECTS                      "connects"
#define VTSM_ABI_K_COUNT                         "count"
#define VTSM_ABI_K_DEVICE_TO_RP                  "device_to_rp"
#define VTSM_ABI_K_DHE                           "dhe"
#define VTSM_ABI_K_DMA_ENABLED                   "dma_enabled"
#define VTSM_ABI_K_END_SESSION                   "end_session"
#define VTSM_ABI_K_FIRST_PAGE                    "first_page"
#define VTSM_ABI_K_GUEST_REJECTED                "guest_rejected"
#define VTSM_ABI_K_HEARTBEAT_PERIOD              "heartbeat_period"
#define VTSM_ABI_K_IDE                           "ide"
#define VTSM_ABI_K_IDENTITY                      "identity"
#define VTSM_ABI_K_INDEX                         "index"
#define VTSM_ABI_K_INTERFACE_INFO                "interface_info"
#define VTSM_ABI_K_KEX                           "kex"
#define VTSM_ABI_K_KEY_SET                       "key_set"
#define VTSM_ABI_K_KEY_SLOTS                     "key_slots"
#define VTSM_ABI_K_KEY_SLOTS_USED                "key_slots_used"
#define VTSM_ABI_K_KEY_UPDATES                   "key_updates"
#define VTSM_ABI_K_MEAS_HASH                     "meas_hash"
#define VTSM_ABI_K_MEASUREMENT_TRANSCRIPT_DIGEST "measurement_transcript_digest"
#define VTSM_ABI_K_MEASUREMENTS                  "measurements"
#define VTSM_ABI_K_MEASUREMENTS_DIGEST           "measurements_digest"
#define VTSM_ABI_K_MMIO                          "mmio"
#define VTSM_ABI_K_MMIO_ENABLED                  "mmio_enabled"
#define VTSM_ABI_K_NEXT_OFFSET                   "next_offset"
#define VTSM_ABI_K_NEXT_TDI_OFFSET               "next_tdi_offset"
#define VTSM_ABI_K_NEXT_TVM_OFFSET               "next_tvm_offset"
#define VTSM_ABI_K_OFFSET                        "offset"
#define VTSM_ABI_K_PAGES                         "pages"
#define VTSM_ABI_K_RANGE_ID                      "range_id"
#define VTSM_ABI_K_RAW                           "raw"
#define VTSM_ABI_K_RECORD                        "record"
#define VTSM_ABI_K_REFERENCE_VALUES_MATCHED      "reference_values_matched"
#define VTSM_ABI_K_REFRESHES                     "refreshes"
#define VTSM_ABI_K_REPORT                        "report"
#define VTSM_ABI_K_REPORT_DIGEST                 "report_digest"
#define VTSM_ABI_K_RESPONDER_NONCE               "responder_nonce"
#define VTSM_ABI_K_ROOT_PORTS                    "root_ports"
#define VTSM_ABI_K_RP_TO_DEVICE                  "rp_to_device"
#define VTSM_ABI_K_SESSION_ID                    "session_id"
#define VTSM_ABI_K_SIGNATURE                     "signature"
#define VTSM_ABI_K_SPEC                          "spec"
#define VTSM_ABI_K_STATE                         "state"
#define VTSM_ABI_K_STOP_INTERFACE                "stop_interface"
#define VTSM_ABI_K_STREAM_ID                     "stream_id"
#define VTSM_ABI_K_STREAMS                       "streams"
#define VTSM_ABI_K_STREAMS_USED                  "streams_used"
#define VTSM_ABI_K_SUMMARY                       "summary"
#define VTSM_ABI_K_TDI_OFFSET                    "tdi_offset"
#define VTSM_ABI_K_TDIS                          "tdis"
#define VTSM_ABI_K_ASSIGN                        "assign"
#define VTSM_ABI_K_TEE_IO                        "tee_io"
#define VTSM_ABI_K_TOKEN                         "token"
#define VTSM_ABI_K_TOKEN_VERIFIED                "token_verified"
#define VTSM_ABI_K_TOTAL_DEVICES                 "total_devices"
#define VTSM_ABI_K_TOTAL_TDIS                    "total_tdis"
#define VTSM_ABI_K_TOTAL_TVMS                    "total_tvms"
#define VTSM_ABI_K_TRANSCRIPT                    "transcript"
#define VTSM_ABI_K_TRUST                         "trust"
#define VTSM_ABI_K_TRUSTED                       "trusted"
#define VTSM_ABI_K_TVM_IDENTITY                  "tvm_identity"
#define VTSM_ABI_K_TVM_OFFSET                    "tvm_offset"
#define VTSM_ABI_K_TVMS                          "tvms"
#define VTSM_ABI_K_TYPE                          "type"
#define VTSM_ABI_K_UNBOUND_TDIS                  "unbound_tdis"
#define VTSM_ABI_K_VALUE                         "value"
#define VTSM_ABI_K_VERB                          "verb"
#define VTSM_ABI_K_STALE_STOPPED                 "stale_stopped"
/* report: SPDM messages that travelled in chunks on the connection */
#define VTSM_ABI_K_CHUNKED                  "chunked"
#define VTSM_ABI_K_REQUESTS                 "requests"  /* chunked: by CHUNK_SEND */
#define VTSM_ABI_K_RESPONSES                "responses" /* chunked: by CHUNK_GET */
#define VTSM_ABI_K_EVENT                    "event"
#define VTSM_ABI_K_RECOVERIES               "recoveries"
#define VTSM_ABI_K_LAST_EVENT               "last_event"
#define VTSM_ABI_K_LAST_RULE                "last_rule"
#define VTSM_ABI_K_SAME_AS_BOUND            "same_as_bound"
#define VTSM_ABI_K_DEVICE_STATE             "device_state"
#define VTSM_ABI_K_ERRORS                   "errors"
#define VTSM_ABI_K_IDE_LENIENT              "ide_lenient" /* DEVICE_CONNECT: rule IDE.5 */
#define VTSM_ABI_K_STREAM_IDS               "stream_ids"  /* DEVICE_CONNECT: host-allocated */
#define VTSM_ABI_K_DEVICE_IDE               "device_ide"  /* the device's IDE capability */
#define VTSM_ABI_K_IDE_CAP                  "ide_cap"
#define VTSM_ABI_K_LINK_TCS                 "link_tcs"
#define VTSM_ABI_K_SELECTIVE_STREAMS        "selective_streams"
#define VTSM_ABI_K_ADDR_ASSOC               "addr_assoc"
#define VTSM_ABI_K_TEE_LIMITED              "tee_limited"
#define VTSM_ABI_K_LENIENT                  "lenient"
#define VTSM_ABI_K_KIND                     "kind"
#define VTSM_ABI_K_TC                       "tc"
#define VTSM_ABI_K_RID_BASE                 "rid_base"
#define VTSM_ABI_K_RID_LIMIT                "rid_limit"
#define VTSM_ABI_K_ENABLED                  "enabled"
#define VTSM_ABI_K_AVAILABLE_SECURE_STREAMS "available_secure_streams"
#define VTSM_ABI_K_DEVICE_ASSOC             "device_assoc"
#define VTSM_ABI_K_IDE_ADDR_RANGES          "ide_addr_ranges" /* DEVICE_CONNECT */
#define VTSM_ABI_K_ADDR_RANGES              "addr_ranges"
#define VTSM_ABI_K_BASE                     "base"
#define VTSM_ABI_K_LIMIT                    "limit"
#define VTSM_ABI_K_IDE_LINK                 "ide_link" /* DEVICE_CONNECT: a Link IDE stream */
/* MMIO and DMA (docs/abi.md 7.18, 9.5): TDI_MMIO_MAP and guest body keys, STATUS/INFO keys */
#define VTSM_ABI_K_RANGE         "range"
#define VTSM_ABI_K_GPA           "gpa"
#define VTSM_ABI_K_PRIVATE       "private"
#define VTSM_ABI_K_MMIO_MAP      "mmio_map"
#define VTSM_ABI_K_MAPPED        "mapped"
#define VTSM_ABI_K_MAP_PAGES     "map_pages"
#define VTSM_ABI_K_VALIDATED     "validated"
#define VTSM_ABI_K_DMA           "dma"
#define VTSM_ABI_MMIO_RANGES_MAX 64u /* = VTSM_TDISP_MAX_MMIO_RANGES */
#define VTSM_ABI_K_RID           "rid"
/* INFO and its token: one digest over (slot || digest) of every provisioned slot */
#define VTSM_ABI_K_SLOTS_DIGEST "slots_digest"
/* EVIDENCE refresh, a locked TDI: its bound measurements differ from the fresh ones */
#define VTSM_ABI_K_MEASUREMENTS_CHANGED "measurements_changed"
#define VTSM_ABI_K_REPORT_CHANGED       "report_changed"

/* Simulated-link frames travel on the spdm-emu socket under this vendor command. */
#define VTSM_SOCK_CMD_VTSM_LINK 0x5654u

/* DOE_PENDING "channel" value of the simulated link (absent = the device's DOE mailbox). */
#define VTSM_ABI_CHANNEL_LINK "link"
#define VTSM_ABI_TVM_NAME_MAX 64u /* TVM_CREATE name: bytes of UTF-8 */

/*
 * THE REQUEST FIELDS: one row per key a request may carry besides "op" and "id". Every
 * key of every row of VTSM_ABI_REQUESTS names one of them (a unit test checks it).
 * vtsm_abi_req_decode() checks a request against its row and this list and fills in a
 * struct vtsm_abi_req, so a handler only ever sees typed, range-checked values.
 *
 *   X(SYM, member, key, type, need, a, b)
 *     type  UINT     uint a..b                      -> uint64_t
 *           BOOL     bool                           -> bool
 *           TEXT     tstr of a..b bytes, no NUL     -> char[b + 1], NUL-terminated
 *           TEXTREF  tstr of a..b bytes             -> struct vtsm_abi_text (borrowed)
 *           BYTES    bstr of a..b bytes             -> struct vtsm_abi_bytes (borrowed)
 *           DEV      device name (vtsm_abi_check_dev) -> char[VTSM_ABI_DEV_BUF]
 *           ENUM     tstr, one of the names in a    -> unsigned, 1 + its index
 *           VERSIONS array; its uint elements below 64 -> uint64_t bit mask (other
 *                    elements are ignored: a client may offer versions we do not know)
 *           RIDS     array of a..b distinct uints, each a requester ID 0..0xFFFF
 *                    -> struct vtsm_abi_rids
 *     need  REQUIRED, OPTIONAL, or ROW (required as the row's dev column says)
 * A value of the wrong type or out of range is refused with E_ABI_ARG (rule ABI.8), a
 * missing required key with E_ABI_ARG "missing key 'k'" (ABI.8), an unknown key with
 * E_ABI_ARG (ABI.9). Borrowed values point into the decoded message.
 */
#define VTSM_ABI_DOE_ERROR_MAX 159u /* DOE_RESPONSE error: bytes of text */

#define VTSM_ABI_REQ_FIELDS(X)                                                                     \
    X(VERSIONS, versions, VTSM_ABI_K_VERSIONS, VERSIONS, REQUIRED, 0, 0)                           \
    X(ROLE, role, VTSM_ABI_K_ROLE, ENUM, REQUIRED, vtsm_abi_role_names, 0)                         \
    X(CLIENT, client, VTSM_ABI_K_CLIENT, TEXTREF, OPTIONAL, 0, VTSM_ABI_MAX_TSTR)                  \
    X(DEV, dev, VTSM_ABI_K_DEV, DEV, ROW, 0, 0)                                                    \
    X(ROOT_PORT, root_port, VTSM_ABI_K_ROOT_PORT, UINT, OPTIONAL, 0, 0xFFFFu)                      \
    X(SLOT, slot, VTSM_ABI_K_SLOT, UINT, OPTIONAL, 0, VTSM_ABI_MAX_SLOT)                           \
    X(ALLOW_UNTRUSTED, allow_untrusted, VTSM_ABI_K_ALLOW_UNTRUSTED, BOOL, OPTIONAL, 0, 0)          \
    /* SPDM 1.2 (0x12), 1.3 (0x13) or 1.4 (0x14) */                                                \
    X(MIN_VERSION, min_version, VTSM_ABI_K_MIN_VERSION, UINT, OPTIONAL, 0x12u, 0x14u)              \
    X(MAX_VERSION, max_version, VTSM_ABI_K_MAX_VERSION, UINT, OPTIONAL, 0x12u, 0x14u)              \
    X(ASYM, asym, VTSM_ABI_K_ASYM, ENUM, OPTIONAL, vtsm_abi_asym_names, 0)                         \
    X(HASH, hash, VTSM_ABI_K_HASH, ENUM, OPTIONAL, vtsm_abi_hash_names, 0)                         \
    X(IDE_STREAMS, ide_streams, VTSM_ABI_K_IDE_STREAMS, UINT, OPTIONAL, 0,                         \
      VTSM_ABI_IDE_STREAMS_MAX)                                                                    \
    X(IDE_ONLY, ide_only, VTSM_ABI_K_IDE_ONLY, BOOL, OPTIONAL, 0, 0)                               \
    X(FORCE, force, VTSM_ABI_K_FORCE, BOOL, OPTIONAL, 0, 0)                                        \
    X(ALL, all, VTSM_ABI_K_ALL, BOOL, OPTIONAL, 0, 0)                                              \
    X(SUMMARY, summary, VTSM_ABI_K_SUMMARY, BOOL, OPTIONAL, 0, 0)                                  \
    X(OFFSET, offset, VTSM_ABI_K_OFFSET, UINT, OPTIONAL, 0, UINT64_MAX)                            \
    X(TDI_OFFSET, tdi_offset, VTSM_ABI_K_TDI_OFFSET, UINT, OPTIONAL, 0, UINT64_MAX)                \
    X(TVM_OFFSET, tvm_offset, VTSM_ABI_K_TVM_OFFSET, UINT, OPTIONAL, 0, UINT64_MAX)                \
    X(SEQ, seq, VTSM_ABI_K_SEQ, UINT, REQUIRED, 0, UINT64_MAX)                                     \
    X(OBJECT, object, VTSM_ABI_K_OBJECT, BYTES, OPTIONAL, 0, VTSM_DOE_MAX_BYTES)                   \
    X(ERROR, error, VTSM_ABI_K_ERROR, TEXT, OPTIONAL, 0, VTSM_ABI_DOE_ERROR_MAX)                   \
    X(NAME, name, VTSM_ABI_K_NAME, TEXT, OPTIONAL, 0, VTSM_ABI_TVM_NAME_MAX)                       \
    /* its length and form are rule TVM.1, judged by tvm_create */                                 \
    X(GUEST_KEY, guest_key, VTSM_ABI_K_GUEST_KEY, BYTES, REQUIRED, 0, VTSM_ABI_MAX_BSTR)           \
    X(TVM, tvm, VTSM_ABI_K_TVM, UINT, REQUIRED, 0, UINT32_MAX)                                     \
    X(TDI, tdi, VTSM_ABI_K_TDI, UINT, REQUIRED, 0, 0xFFFFu)                                        \
    X(LOCK_FLAGS, lock_flags, VTSM_ABI_K_LOCK_FLAGS, UINT, OPTIONAL, 0, 0xFFFFu)                   \
    /* the guest's signed request: judged by the TVM's key (docs/abi.md 9.4) */                    \
    X(BODY, body, VTSM_ABI_K_BODY, BYTES, REQUIRED, 0, VTSM_ABI_MAX_BSTR)                          \
    X(SIG, sig, VTSM_ABI_K_SIG, BYTES, REQUIRED, 0, VTSM_ABI_MAX_BSTR)                             \
    X(CHALLENGE, challenge, VTSM_ABI_K_CHALLENGE, BOOL, OPTIONAL, 0, 0)                            \
    /* TDI_RESET reference values: a SHA-256 / SHA-384 / SHA-512 digest */                         \
    X(REPORT_DIGEST, report_digest, VTSM_ABI_K_REPORT_DIGEST, BYTES, OPTIONAL, 32, 64)             \
    X(MEASUREMENTS_DIGEST, measurements_digest, VTSM_ABI_K_MEASUREMENTS_DIGEST, BYTES, OPTIONAL,   \
      32, 64)                                                                                      \
    X(DEBUG, debug, VTSM_ABI_K_DEBUG, BOOL, OPTIONAL, 0, 0)                                        \
    X(REFRESH, refresh, VTSM_ABI_K_REFRESH, BOOL, OPTIONAL, 0, 0)                                  \
    X(NONCE, nonce, VTSM_ABI_K_NONCE, BYTES, OPTIONAL, 32, 32)                                     \
    X(RAW, raw, VTSM_ABI_K_RAW, BOOL, OPTIONAL, 0, 0)                                              \
    X(IDE_LENIENT, ide_lenient, VTSM_ABI_K_IDE_LENIENT, BOOL, OPTIONAL, 0, 0)                      \
    /* one byte per stream: the stream IDs the host allocated on the device's root port */         \
    X(STREAM_IDS, stream_ids, VTSM_ABI_K_STREAM_IDS, BYTES, OPTIONAL, 1, VTSM_ABI_IDE_STREAMS_MAX) \
    /* 16 bytes per range: base, limit (u64 LE each), 1 MiB granular (rule IDE.9) */               \
    X(IDE_ADDR_RANGES, ide_addr_ranges, VTSM_ABI_K_IDE_ADDR_RANGES, BYTES, OPTIONAL, 16, 240)      \
    X(IDE_LINK, ide_link, VTSM_ABI_K_IDE_LINK, BOOL, OPTIONAL, 0, 0)                               \
    /* TDI_MMIO_MAP: index of an MMIO_RANGE in the report, GPA, size in 4 KiB pages */             \
    X(RANGE, range, VTSM_ABI_K_RANGE, UINT, REQUIRED, 0, VTSM_ABI_MMIO_RANGES_MAX - 1)             \
    X(GPA, gpa, VTSM_ABI_K_GPA, UINT, REQUIRED, 0, UINT64_MAX)                                     \
    X(PAGES, pages, VTSM_ABI_K_PAGES, UINT, OPTIONAL, 1, UINT32_MAX)                               \
    /* DEVICE_CONNECT: the TDIs (requester IDs) the host declares under the DSM */                 \
    X(TDIS, tdis, VTSM_ABI_K_TDIS, RIDS, OPTIONAL, 1, VTSM_ABI_TDIS_MAX)                           \
    /* TDI_BIND: assign the TDI to the TVM without locking it; the guest's LOCK locks it */        \
    X(ASSIGN, assign, VTSM_ABI_K_ASSIGN, BOOL, OPTIONAL, 0, 0)

/* ENUM names, NULL-terminated: the decoded value is 1 + the index (0: absent). */
extern const char *const vtsm_abi_role_names[];
extern const char *const vtsm_abi_asym_names[];
extern const char *const vtsm_abi_hash_names[];
enum { VTSM_ABI_ASYM_ECDSA_P384 = 1, VTSM_ABI_ASYM_ECDSA_P256 };
enum { VTSM_ABI_HASH_SHA384 = 1, VTSM_ABI_HASH_SHA256 };

enum vtsm_abi_ftype {
    VTSM_ABI_FT_UINT,
    VTSM_ABI_FT_BOOL,
    VTSM_ABI_FT_TEXT,
    VTSM_ABI_FT_TEXTREF,
    VTSM_ABI_FT_BYTES,
    VTSM_ABI_FT_DEV,
    VTSM_ABI_FT_ENUM,
    VTSM_ABI_FT_VERSIONS,
    VTSM_ABI_FT_RIDS,
};
enum vtsm_abi_fneed { VTSM_ABI_FN_OPTIONAL, VTSM_ABI_FN_REQUIRED, VTSM_ABI_FN_ROW };

enum vtsm_abi_field_id {
#define VTSM_ABI_X_FID(SYM, member, key, type, need, a, b) VTSM_ABI_F_##SYM,
    VTSM_ABI_REQ_FIELDS(VTSM_ABI_X_FID)
#undef VTSM_ABI_X_FID
        VTSM_ABI_F_COUNT_
};

struct vtsm_abi_text {
    const char *p; /* not NUL-terminated */
    size_t len;
};
struct vtsm_abi_bytes {
    const uint8_t *p;
    size_t len;
};
#define VTSM_ABI_TDIS_MAX 256u /* DEVICE_CONNECT tdis: requester IDs */
struct vtsm_abi_rids {
    unsigned n;
    uint16_t rid[VTSM_ABI_TDIS_MAX];
};

#define VTSM_ABI_DECL_UINT(m, a, b)     uint64_t m;
#define VTSM_ABI_DECL_BOOL(m, a, b)     bool m;
#define VTSM_ABI_DECL_TEXT(m, a, b)     char m[(b) + 1];
#define VTSM_ABI_DECL_TEXTREF(m, a, b)  struct vtsm_abi_text m;
#define VTSM_ABI_DECL_BYTES(m, a, b)    struct vtsm_abi_bytes m;
#define VTSM_ABI_DECL_DEV(m, a, b)      char m[VTSM_ABI_DEV_BUF];
#define VTSM_ABI_DECL_ENUM(m, a, b)     unsigned m;
#define VTSM_ABI_DECL_VERSIONS(m, a, b) uint64_t m;
#define VTSM_ABI_DECL_RIDS(m, a, b)     struct vtsm_abi_rids m;

/* A request, decoded: one member per field (zero when absent) and which are present. */
struct vtsm_abi_req {
    uint64_t present; /* bit VTSM_ABI_F_<SYM> */
#define VTSM_ABI_X_MEMBER(SYM, member, key, type, need, a, b) VTSM_ABI_DECL_##type(member, a, b)
    VTSM_ABI_REQ_FIELDS(VTSM_ABI_X_MEMBER)
#undef VTSM_ABI_X_MEMBER
};
_Static_assert(VTSM_ABI_F_COUNT_ <= 64, "one presence bit per field");
/* The public field list (include/vtsm/vtsm_ops.h) and this one are the same rows in the
 * same order (the keys are compared by a unit test). */
_Static_assert((int)VTSM_FIELD_COUNT_ == (int)VTSM_ABI_F_COUNT_, "same request fields");
#define VTSM_ABI_X_SAME(SYM, member, key, type, need, a, b)                                        \
    _Static_assert((int)VTSM_FIELD_##SYM == (int)VTSM_ABI_F_##SYM, "field " #SYM " in step");
VTSM_ABI_REQ_FIELDS(VTSM_ABI_X_SAME)
#undef VTSM_ABI_X_SAME

static inline bool vtsm_abi_req_has(const struct vtsm_abi_req *r, enum vtsm_abi_field_id f)
{
    return (r->present >> f) & 1u;
}

/* A field's row in the list. */
struct vtsm_abi_field {
    const char *key;
    enum vtsm_abi_ftype type;
    enum vtsm_abi_fneed need;
    uint64_t lo, hi;          /* UINT: the range; TEXT, TEXTREF, BYTES: the length */
    const char *const *names; /* ENUM */
    size_t offset;            /* of its member in struct vtsm_abi_req */
};
extern const struct vtsm_abi_field vtsm_abi_fields[VTSM_ABI_F_COUNT_];
/* The field of key, NULL if no request takes it. */
const struct vtsm_abi_field *vtsm_abi_field_find(const char *key);

/*
 * Check msg against its row and decode it into *out (zeroed first): no key outside the
 * row's schema (E_ABI_ARG, rule ABI.9), every required key present and every value of
 * its field's type and range (E_ABI_ARG, rule ABI.8), and the combinations a request
 * must respect: min_version <= max_version, tdi_offset only with dev, and DOE_RESPONSE
 * carrying exactly one of object / error (ABI.8). On failure the thread's error record
 * names the key. Borrowed members stay valid while msg does.
 */
vtsm_status vtsm_abi_req_decode(const cbor_item_t *msg, const struct vtsm_abi_request *row,
                                struct vtsm_abi_req *out);
/*
 * Build the fields of row's request from the public struct (include/vtsm/vtsm_ops.h);
 * "op" and "id" are the sender's to add. A field the row does not take is refused (E_ABI_ARG,
 * ABI.9); the map is then checked with vtsm_abi_req_decode(), so a client refuses what tsmd would
 * before sending. On success *out is a new map.
 */
vtsm_status vtsm_abi_req_encode(const struct vtsm_abi_request *row, const struct vtsm_request *req,
                                cbor_item_t **out);

/*
 * Keys each request may carry besides "op" and "id" (NULL-terminated, for
 * vtsm_abi_check_keys). Indexed views of the tables in docs/abi.md.
 */
#define VTSM_ABI_X_KEYS(NAME, lower, code, roles, dev, keys)                                       \
    extern const char *const vtsm_abi_keys_##lower[];
VTSM_ABI_REQUESTS(VTSM_ABI_X_KEYS)
#undef VTSM_ABI_X_KEYS
/* Keys of the CBOR map inside GUEST_REQUEST "body"; check it with vtsm_abi_check_keys_in()
 * since the body has no "op" / "id" of its own. */
extern const char *const vtsm_abi_keys_guest_body[];

/* ---- framing ---- */

/*
 * Encode one message into a whole frame (4-byte length + CBOR). frame is reset first.
 * The item must be a map with text keys built from definite or indefinite libcbor
 * items (always encoded with definite lengths); tags, floats and non-boolean simple
 * values are refused with E_INVAL, a payload over VTSM_ABI_FRAME_MAX with
 * E_ABI_OVERSIZED.
 */
vtsm_status vtsm_abi_encode(const cbor_item_t *map, struct vtsm_buf *frame);

/*
 * Decode and validate one frame payload (the N bytes after the length), enforcing
 * every rule of docs/abi.md "Decoding rules" before anything is allocated: length 1..
 * VTSM_ABI_FRAME_MAX (else E_ABI_OVERSIZED / E_ABI_MALFORMED), exactly one item, a
 * definite map with text keys at every level, no duplicate keys, depth <=
 * VTSM_ABI_MAX_DEPTH, <= VTSM_ABI_MAX_ITEMS items, string limits, valid UTF-8 text,
 * no indefinite lengths, tags, floats or simple values other than false/true, no
 * trailing bytes. Any violation: E_ABI_MALFORMED with a detail naming the rule.
 * On success *out is a new reference.
 */
vtsm_status vtsm_abi_decode(const uint8_t *p, size_t len, cbor_item_t **out);

/* Encode and write one frame with a single send(MSG_NOSIGNAL) (partial writes resumed). */
vtsm_status vtsm_abi_send(int fd, const cbor_item_t *map);

/*
 * Blocking read of one frame on fd, then vtsm_abi_decode. timeout_ms < 0 waits forever
 * (the timeout applies to each wait for bytes). EOF before the first byte: E_CLOSED;
 * EOF inside a frame: E_IO; length 0: E_ABI_MALFORMED; length > 4 MiB: E_ABI_OVERSIZED
 * (the stream is then unusable: close it).
 */
vtsm_status vtsm_abi_recv(int fd, cbor_item_t **out, int timeout_ms);

/*
 * Incremental reader for non-blocking fds (event loops). Bytes are buffered as fed;
 * the length is checked as soon as the 4-byte header is complete, so an oversized
 * frame is refused before its body is buffered.
 *
 *   struct vtsm_abi_reader r; vtsm_abi_reader_init(&r);
 *   on POLLIN: for (;;) { cbor_item_t *m; st = vtsm_abi_reader_read(&r, fd, &m);
 *                         if (st) { handle error; break; } if (!m) break; handle(m); }
 *   vtsm_abi_reader_free(&r);
 *
 * Errors: E_ABI_MALFORMED refers to one whole, well-delimited frame that has been
 * skipped; the stream stays usable. E_ABI_OVERSIZED leaves the reader failed (every
 * later call repeats it): close the connection.
 */
struct vtsm_abi_reader {
    struct vtsm_buf buf; /* buffered bytes, buf.data[0] is the start of a frame */
    bool failed;         /* sticky after E_ABI_OVERSIZED */
};

void vtsm_abi_reader_init(struct vtsm_abi_reader *r);
void vtsm_abi_reader_free(struct vtsm_abi_reader *r);
/* Buffer len bytes (E_NOMEM only). */
vtsm_status vtsm_abi_reader_feed(struct vtsm_abi_reader *r, const uint8_t *p, size_t len);
/* Next complete message: VTSM_OK with *out set, VTSM_OK with *out == NULL ("need more"),
 * or an error (see above). */
vtsm_status vtsm_abi_reader_next(struct vtsm_abi_reader *r, cbor_item_t **out);
/*
 * Return a buffered message if one is complete; otherwise do one read() on fd (made for
 * O_NONBLOCK fds: EAGAIN means "need more") and try again. Call until *out == NULL,
 * since one read may bring several frames. EOF: E_CLOSED (E_IO if inside a frame).
 */
vtsm_status vtsm_abi_reader_read(struct vtsm_abi_reader *r, int fd, cbor_item_t **out);
/* True if any bytes are buffered (an incomplete frame, or frames not yet taken). */
bool vtsm_abi_reader_partial(const struct vtsm_abi_reader *r);
/* If a whole frame (length prefix included) is buffered, point at its raw bytes and
 * return true; they stay valid until the next call on r. For tracing and logging. */
bool vtsm_abi_reader_frame(const struct vtsm_abi_reader *r, const uint8_t **p, size_t *len);

/* ---- building maps (builders return VTSM_OK or E_NOMEM) ---- */

/* A new, empty, growable map (encoded with a definite length); NULL on OOM. */
cbor_item_t *vtsm_abi_map_new(void);
/* A new, empty, growable array; NULL on OOM. */
cbor_item_t *vtsm_abi_array_new(void);

vtsm_status vtsm_abi_put_uint(cbor_item_t *map, const char *key, uint64_t v);
vtsm_status vtsm_abi_put_bool(cbor_item_t *map, const char *key, bool v);
vtsm_status vtsm_abi_put_tstr(cbor_item_t *map, const char *key, const char *s);
vtsm_status vtsm_abi_put_tstrn(cbor_item_t *map, const char *key, const char *s, size_t n);
vtsm_status vtsm_abi_put_bytes(cbor_item_t *map, const char *key, const uint8_t *p, size_t n);
/* Adds item under key and takes over the caller's reference to item, also on failure
 * (so `vtsm_abi_put_item(m, "k", vtsm_abi_map_new())` never leaks). item NULL: E_NOMEM. */
vtsm_status vtsm_abi_put_item(cbor_item_t *map, const char *key, cbor_item_t *item);

/* Append to an array; push_item takes over the reference like put_item. */
vtsm_status vtsm_abi_push_uint(cbor_item_t *array, uint64_t v);
vtsm_status vtsm_abi_push_tstr(cbor_item_t *array, const char *s);
vtsm_status vtsm_abi_push_bytes(cbor_item_t *array, const uint8_t *p, size_t n);
vtsm_status vtsm_abi_push_item(cbor_item_t *array, cbor_item_t *item);

/* ---- reading maps ---- */

/*
 * Getters. map must be a CBOR map (else E_ABI_ARG "not a map"). A missing key gives
 * E_ABI_ARG "missing key 'k'"; a value of the wrong type E_ABI_ARG
 * "key 'k' must be <type>". The _opt forms return VTSM_OK with *present = false when
 * the key is absent (outputs untouched) and fail like the others when it is present
 * with the wrong type.
 */
/* The value under key (borrowed), or NULL. Non-text keys never match. */
const cbor_item_t *vtsm_abi_find(const cbor_item_t *map, const char *key);

vtsm_status vtsm_abi_get_uint(const cbor_item_t *map, const char *key, uint64_t *v);
vtsm_status vtsm_abi_get_bool(const cbor_item_t *map, const char *key, bool *v);
/* Copy a text string into out (cap bytes incl. NUL). Longer than cap - 1 or holding a
 * NUL byte: E_ABI_ARG "key 'k' longer than N bytes" / "... contains NUL". */
vtsm_status vtsm_abi_get_tstr(const cbor_item_t *map, const char *key, char *out, size_t cap);
/* Borrow a text string (not NUL-terminated). */
vtsm_status vtsm_abi_get_tstr_ref(const cbor_item_t *map, const char *key, const char **p,
                                  size_t *len);
/* Borrow a byte string. */
vtsm_status vtsm_abi_get_bytes(const cbor_item_t *map, const char *key, const uint8_t **p,
                               size_t *len);
vtsm_status vtsm_abi_get_map(const cbor_item_t *map, const char *key, const cbor_item_t **v);
vtsm_status vtsm_abi_get_array(const cbor_item_t *map, const char *key, const cbor_item_t **v);

vtsm_status vtsm_abi_opt_uint(const cbor_item_t *map, const char *key, uint64_t *v, bool *present);
vtsm_status vtsm_abi_opt_bool(const cbor_item_t *map, const char *key, bool *v, bool *present);
vtsm_status vtsm_abi_opt_tstr(const cbor_item_t *map, const char *key, char *out, size_t cap,
                              bool *present);
vtsm_status vtsm_abi_opt_bytes(const cbor_item_t *map, const char *key, const uint8_t **p,
                               size_t *len, bool *present);
vtsm_status vtsm_abi_opt_map(const cbor_item_t *map, const char *key, const cbor_item_t **v,
                             bool *present);
vtsm_status vtsm_abi_opt_array(const cbor_item_t *map, const char *key, const cbor_item_t **v,
                               bool *present);

/* "op" and "id" (uint). A message without "id" gives E_ABI_ARG "missing key 'id'". */
vtsm_status vtsm_abi_get_op(const cbor_item_t *map, uint64_t *op);
vtsm_status vtsm_abi_get_id(const cbor_item_t *map, uint64_t *id);

/*
 * Schema check: every key must be "op", "id" or in allowed (NULL-terminated). The
 * first other key gives E_ABI_ARG "unknown key 'x' for DEVICE_CONNECT" (the op name
 * is taken from the map's "op"; "message" if it has none).
 */
vtsm_status vtsm_abi_check_keys(const cbor_item_t *map, const char *const allowed[]);
/* The same for a map that is not a message (e.g. the guest request body): only the keys
 * in allowed, "op" and "id" included; the detail says "unknown key 'x' for <what>". */
vtsm_status vtsm_abi_check_keys_in(const cbor_item_t *map, const char *const allowed[],
                                   const char *what);

/* Device names: 1..64 characters from [A-Za-z0-9:._-]. E_ABI_ARG naming the rule. */
vtsm_status vtsm_abi_check_dev(const char *dev);
/* Get "dev" from a message and check it; out holds VTSM_ABI_DEV_BUF bytes. */
vtsm_status vtsm_abi_get_dev(const cbor_item_t *map, char out[VTSM_ABI_DEV_BUF]);
/*
 * A device name is a PCI address: [SEGMENT:]BUS:DEVICE.FUNCTION in hex, SEGMENT 1..4
 * digits (0 when left out), BUS 1..2 digits, DEVICE 1..2 digits up to 0x1f, FUNCTION 1
 * digit up to 7, either case. out (may be dev itself) gets the canonical form
 * "ssss:bb:dd.f" in lower case, so "1:00.0", "0000:1:00.0" and "0000:01:00.0" name one
 * device. Anything else: E_ABI_ARG, rule PDEV.30; out is untouched.
 */
vtsm_status vtsm_abi_dev_canon(const char *dev, char out[VTSM_ABI_DEV_BUF]);
/* The segment and requester ID (bus << 8 | device << 3 | function) of a device name
 * (any form vtsm_abi_dev_canon takes); the refusal of vtsm_abi_dev_canon otherwise. */
vtsm_status vtsm_abi_dev_rid(const char *dev, uint16_t *segment, uint16_t *rid);
/* The PCI address of function rid (a requester ID) in the segment of device dsm: out
 * "ssss:bb:dd.f". The refusal of vtsm_abi_dev_canon for a dsm that is no PCI address. */
vtsm_status vtsm_abi_dev_fn(const char *dsm, uint16_t rid, char out[VTSM_ABI_DEV_BUF]);
/* Do a and b name the same device? Canonical forms compared when both are PCI
 * addresses, the names as given otherwise. */
bool vtsm_abi_dev_same(const char *a, const char *b);

/* ---- message builders (return NULL on OOM) ---- */

/* {op: RESULT, id, status: 0}; the caller adds the verb's fields. */
cbor_item_t *vtsm_abi_result_msg(uint64_t id);
/*
 * {op: ERROR, id, status: st, name, source, detail, ? rule}: the one builder of an ERROR.
 * The thread's error record (vtsm_refuse) describes this failure when it holds st and
 * detail is NULL, empty or vtsm_err_detail() itself: then a NULL/empty detail becomes the
 * record's and its rule is sent. Otherwise detail (NULL/empty: the status text) is sent
 * with the rule the status implies, if any (vtsm_rule_of_status).
 */
cbor_item_t *vtsm_abi_error_msg(uint64_t id, vtsm_status st, const char *detail);
/* {op: DOE_PENDING, id, dev, seq, object}. */
cbor_item_t *vtsm_abi_doe_pending_msg(uint64_t id, const char *dev, uint64_t seq,
                                      const uint8_t *obj, size_t len);
/* {op, id}: the start of any client request. */
cbor_item_t *vtsm_abi_request_msg(enum vtsm_abi_op op, uint64_t id);
/* HELLO offering VTSM_ABI_VERSION; client may be NULL. */
cbor_item_t *vtsm_abi_hello_msg(uint64_t id, enum vtsm_abi_role role, const char *client);
/* DOE_RESPONSE carrying the object, or (error != NULL, obj ignored) the host's failure. */
cbor_item_t *vtsm_abi_doe_response_msg(uint64_t id, const char *dev, uint64_t seq,
                                       const uint8_t *obj, size_t len, const char *error);

/* An ERROR message, parsed. Strings are copied and NUL-terminated (truncated to fit). */
struct vtsm_abi_error {
    uint64_t id;
    vtsm_status status; /* VTSM_E_INTERNAL if the number is unknown to us */
    uint64_t status_raw;
    char name[64];
    char source[16];
    char detail[512];
    char rule_id[16];    /* the rule as sent ("TDI.4"), "" if none */
    enum vtsm_rule rule; /* vtsm_rule_parse(rule_id): NONE if absent or unknown to us */
};
/* Parse an ERROR message (missing name/source/detail/rule tolerated: derived or empty). */
vtsm_status vtsm_abi_parse_error(const cbor_item_t *msg, struct vtsm_abi_error *err);

/* How the CLIs report a failure with --json: {"error": {verb, status, name, source,
 * detail, ? rule}} ("rule" when rule is neither NULL nor empty) plus "report" (a new
 * reference is taken) when report is not NULL. NULL on OOM. */
cbor_item_t *vtsm_abi_cli_error(const char *verb, uint64_t status, const char *name,
                                const char *source, const char *detail, const char *rule,
                                const cbor_item_t *report);

/* ---- CBOR -> JSON ---- */

/*
 * Print an item as JSON: maps -> objects (text keys; other keys printed as strings),
 * arrays, unsigned/negative integers as numbers, booleans, null, text as JSON strings
 * (", \ and control characters escaped, \u00XX for controls without a short form,
 * everything else verbatim UTF-8), byte strings as lower-case hex strings. Compact form
 * has no whitespace; pretty form indents by two spaces with "key": value and ends with
 * no newline. Returns E_IO if the stream reports an error.
 */
vtsm_status vtsm_abi_to_json(const cbor_item_t *item, FILE *out, bool pretty);

#endif
