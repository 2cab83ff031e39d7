/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The socket ABI's operation table and request fields (docs/abi.md sections 6 and 7),
 * public: installed as <vtsm/vtsm_ops.h>. No CBOR.
 *
 * THE OPERATION TABLE: one row per request a client sends to the TSM. Everything that
 * names a request comes from it: the opcode enums, the names, the request schemas (the
 * keys each request may carry besides "op" and "id"), tsmd's dispatch table and handler
 * prototypes, the ABI's request decoder, the host shim's verb functions
 * (vtsm_host_<lower>() and vtsm_host_<lower>_start(), include/vtsm/vtsm_host.h) and
 * tsm-host's commands. Adding a request is a row, a handler and a test
 * (docs/architecture.md "Adding a verb").
 *
 *   X(NAME, lower, code, roles, dev, (keys...))
 *     roles  HOST, GUEST or ANY: who may send it (after HELLO)
 *     dev    NONE / OPTIONAL / REQUIRED: its "dev" key (a valid device name)
 *     keys   the schema: each a field of VTSM_FIELDS; every other key is refused
 *
 * VTSM_OPS_PROTOCOL holds the requests of the protocol itself (HELLO opens a connection,
 * DOE_RESPONSE answers the TSM's DOE_PENDING): the host shim sends them on its own.
 * VTSM_OPS_VERBS holds the verbs a client asks for.
 */
#ifndef VTSM_OPS_H
#define VTSM_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vtsm_abi_defs.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VTSM_OPS_PROTOCOL(X)                                                                       \
    X(HELLO, hello, 0x01, ANY, NONE, ("versions", "role", "client"))                               \
    /* the connection that carries a verb services its DOE exchanges, whatever its role */         \
    X(DOE_RESPONSE, doe_response, 0x20, ANY, REQUIRED, ("dev", "seq", "object", "error"))

#define VTSM_OPS_VERBS(X)                                                                          \
    X(DEVICE_ADD, device_add, 0x10, HOST, REQUIRED, ("dev", "root_port"))                          \
    X(DEVICE_REMOVE, device_remove, 0x11, HOST, REQUIRED, ("dev"))                                 \
    X(DEVICE_CONNECT, device_connect, 0x12, HOST, REQUIRED,                                        \
      ("dev", "slot", "allow_untrusted", "min_version", "max_version", "asym", "hash",             \
       "ide_streams", "ide_only", "challenge", "ide_lenient", "stream_ids", "ide_addr_ranges",     \
       "ide_link", "tdis"))                                                                        \
    X(DEVICE_RECLAIM, device_reclaim, 0x13, HOST, REQUIRED, ("dev", "force"))                      \
    X(STATUS, status, 0x14, HOST, OPTIONAL,                                                        \
      ("dev", "summary", "offset", "tdi_offset", "tvm_offset"))                                    \
    /* switch a device's IDE streams to fresh keys */                                              \
    X(IDE_REFRESH, ide_refresh, 0x15, HOST, REQUIRED, ("dev"))                                     \
    /* prove both link ends hold matching keys */                                                  \
    X(IDE_LINK_CHECK, ide_link_check, 0x16, HOST, REQUIRED, ("dev"))                               \
    /* SPDM KEY_UPDATE / HEARTBEAT in the device's session */                                      \
    X(SPDM_KEY_UPDATE, spdm_key_update, 0x17, HOST, REQUIRED, ("dev", "all"))                      \
    X(SPDM_HEARTBEAT, spdm_heartbeat, 0x18, HOST, REQUIRED, ("dev"))                               \
    /* register a TVM with its guest's public key */                                               \
    X(TVM_CREATE, tvm_create, 0x30, HOST, NONE, ("name", "guest_key", "debug"))                    \
    X(TVM_DESTROY, tvm_destroy, 0x31, HOST, NONE, ("tvm"))                                         \
    /* LOCK_INTERFACE: the TDI is owned by a TVM; STOP_INTERFACE: ownership dropped */             \
    X(TDI_BIND, tdi_bind, 0x32, HOST, REQUIRED, ("dev", "tdi", "tvm", "lock_flags", "assign"))     \
    X(TDI_UNBIND, tdi_unbind, 0x33, HOST, REQUIRED, ("dev", "tdi"))                                \
    /* a signed guest request: relayed by a host or sent by the guest itself (the TVM's            \
     * signature authenticates it, not the connection) */                                          \
    X(GUEST_REQUEST, guest_request, 0x40, ANY, NONE, ("tvm", "body", "sig"))                       \
    /* recovery of a TDI in ERROR: FLR, relock, re-measure; CONFIG_LOCKED only if the evidence     \
     * is what was bound or the host's reference values */                                         \
    X(TDI_RESET, tdi_reset, 0x3A, HOST, REQUIRED,                                                  \
      ("dev", "tdi", "report_digest", "measurements_digest"))                                      \
    /* this connection receives EVENT messages (of one device with dev) from now on */             \
    X(EVENTS_SUBSCRIBE, events_subscribe, 0x1E, HOST, OPTIONAL, ("dev"))                           \
    /* ask the device for the state of every bound TDI; disagreement moves a TDI to ERROR */       \
    X(DEVICE_CHECK, device_check, 0x1D, HOST, REQUIRED, ("dev"))                                   \
    /* the device's evidence: every certificate slot, VCA, KEY_EXCHANGE, measurements,             \
     * interface reports; refresh: re-measure (nonce) and re-read certificates first */            \
    X(EVIDENCE, evidence, 0x19, HOST, REQUIRED, ("dev", "refresh", "nonce", "raw"))                \
    /* the guest-physical address at which the host maps one MMIO_RANGE of a bound TDI's           \
     * interface report (range = its index in the report); the owning guest validates it */        \
    X(TDI_MMIO_MAP, tdi_mmio_map, 0x3C, HOST, REQUIRED, ("dev", "tdi", "range", "gpa", "pages"))

#define VTSM_OPS(X) VTSM_OPS_PROTOCOL(X) VTSM_OPS_VERBS(X)

/* Client-to-TSM opcodes. */
enum vtsm_op {
#define VTSM_X_OP(NAME, lower, code, roles, dev, keys) VTSM_OP_##NAME = code,
    VTSM_OPS(VTSM_X_OP)
#undef VTSM_X_OP
};

/* The role a connection said HELLO as. */
enum vtsm_role {
    VTSM_ROLE_NONE = 0,
    VTSM_ROLE_HOST = 1,  /* "host" */
    VTSM_ROLE_GUEST = 2, /* "guest" */
};

/*
 * THE REQUEST FIELDS: one row per key a request may carry besides "op" and "id", in the
 * order of the ABI's checked list (abi/vtsm_abi.h VTSM_ABI_REQ_FIELDS adds each one's
 * range; a compile-time check keeps the two in step).
 *
 *   X(SYM, member, key, type)
 *     type  UINT      -> uint64_t member
 *           BOOL      -> bool member
 *           TEXT      -> const char *member (NUL-terminated; a device name for "dev")
 *           ENUM      -> const char *member (one of the names docs/abi.md lists)
 *           BYTES     -> const uint8_t *member, size_t member_len
 *           VERSIONS  -> uint64_t member (bit n offers ABI version n)
 *           RIDS      -> const uint16_t *member, size_t member_len (requester IDs)
 */
#define VTSM_FIELDS(X)                                                                             \
    X(VERSIONS, versions, "versions", VERSIONS)                                                    \
    X(ROLE, role, "role", ENUM)                                                                    \
    X(CLIENT, client, "client", TEXT)                                                              \
    X(DEV, dev, "dev", TEXT)                                                                       \
    X(ROOT_PORT, root_port, "root_port", UINT)                                                     \
    X(SLOT, slot, "slot", UINT)                                                                    \
    X(ALLOW_UNTRUSTED, allow_untrusted, "allow_untrusted", BOOL)                                   \
    X(MIN_VERSION, min_version, "min_version", UINT)                                               \
    X(MAX_VERSION, max_version, "max_version", UINT)                                               \
    X(ASYM, asym, "asym", ENUM)                                                                    \
    X(HASH, hash, "hash", ENUM)                                                                    \
    X(IDE_STREAMS, ide_streams, "ide_streams", UINT)                                               \
    X(IDE_ONLY, ide_only, "ide_only", BOOL)                                                        \
    X(FORCE, force, "force", BOOL)                                                                 \
    X(ALL, all, "all", BOOL)                                                                       \
    X(SUMMARY, summary, "summary", BOOL)                                                           \
    X(OFFSET, offset, "offset", UINT)                                                              \
    X(TDI_OFFSET, tdi_offset, "tdi_offset", UINT)                                                  \
    X(TVM_OFFSET, tvm_offset, "tvm_offset", UINT)                                                  \
    X(SEQ, seq, "seq", UINT)                                                                       \
    X(OBJECT, object, "object", BYTES)                                                             \
    X(ERROR, error, "error", TEXT)                                                                 \
    X(NAME, name, "name", TEXT)                                                                    \
    X(GUEST_KEY, guest_key, "guest_key", BYTES)                                                    \
    X(TVM, tvm, "tvm", UINT)                                                                       \
    X(TDI, tdi, "tdi", UINT)                                                                       \
    X(LOCK_FLAGS, lock_flags, "lock_flags", UINT)                                                  \
    X(BODY, body, "body", BYTES)                                                                   \
    X(SIG, sig, "sig", BYTES)                                                                      \
    X(CHALLENGE, challenge, "challenge", BOOL)                                                     \
    X(REPORT_DIGEST, report_digest, "report_digest", BYTES)                                        \
    X(MEASUREMENTS_DIGEST, measurements_digest, "measurements_digest", BYTES)                      \
    X(DEBUG, debug, "debug", BOOL)                                                                 \
    X(REFRESH, refresh, "refresh", BOOL)                                                           \
    X(NONCE, nonce, "nonce", BYTES)                                                                \
    X(RAW, raw, "raw", BOOL)                                                                       \
    X(IDE_LENIENT, ide_lenient, "ide_lenient", BOOL)                                               \
    X(STREAM_IDS, stream_ids, "stream_ids", BYTES)                                                 \
    X(IDE_ADDR_RANGES, ide_addr_ranges, "ide_addr_ranges", BYTES)                                  \
    X(IDE_LINK, ide_link, "ide_link", BOOL)                                                        \
    X(RANGE, range, "range", UINT)                                                                 \
    X(GPA, gpa, "gpa", UINT)                                                                       \
    X(PAGES, pages, "pages", UINT)                                                                 \
    X(TDIS, tdis, "tdis", RIDS)                                                                    \
    X(ASSIGN, assign, "assign", BOOL)

enum vtsm_field {
#define VTSM_X_FIELD(SYM, member, key, type) VTSM_FIELD_##SYM,
    VTSM_FIELDS(VTSM_X_FIELD)
#undef VTSM_X_FIELD
        VTSM_FIELD_COUNT_
};
/* The bit of a field in struct vtsm_request's "set". */
#define VTSM_SET(SYM) (UINT64_C(1) << VTSM_FIELD_##SYM)

#define VTSM_DECL_UINT(m) uint64_t m;
#define VTSM_DECL_BOOL(m) bool m;
#define VTSM_DECL_TEXT(m) const char *m;
#define VTSM_DECL_ENUM(m) const char *m;
#define VTSM_DECL_BYTES(m)                                                                         \
    const uint8_t *m;                                                                              \
    size_t m##_len;
#define VTSM_DECL_VERSIONS(m) uint64_t m;
#define VTSM_DECL_RIDS(m)                                                                          \
    const uint16_t *m;                                                                             \
    size_t m##_len;

/*
 * A request, to send with a verb function. Zero-initialise, fill the members its row
 * names and say which are meant: a pointer member (TEXT, ENUM, BYTES, RIDS) is sent when it is
 * not NULL; a number or bool is sent when its bit is in "set":
 *
 *   struct vtsm_request r = {.dev = "0000:01:00.0", .tdi = 0, .tvm = 1,
 *                            .set = VTSM_SET(TDI) | VTSM_SET(TVM)};
 *   st = vtsm_host_tdi_bind(h, &r, &res);
 *
 * The shim checks the request against the verb's row (keys, types, ranges: the same
 * checks tsmd makes) before sending it; a refusal is E_ABI_ARG with rule ABI.8 or ABI.9
 * and nothing is sent. Borrowed: nothing is kept after the call returns.
 */
struct vtsm_request {
    uint64_t set;
#define VTSM_X_MEMBER(SYM, member, key, type) VTSM_DECL_##type(member)
    VTSM_FIELDS(VTSM_X_MEMBER)
#undef VTSM_X_MEMBER
};

/* "DEVICE_CONNECT" for VTSM_OP_DEVICE_CONNECT etc.; NULL if op is not a request opcode. */
const char *vtsm_op_name(unsigned op);
/* The opcode of a row's name, upper ("TDI_BIND") or lower ("tdi_bind") case; 0 if none. */
unsigned vtsm_op_parse(const char *name);

#ifdef __cplusplus
}
#endif

#endif
