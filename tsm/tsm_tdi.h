/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TDIs on the TSM side (docs/abi.md sections 9 and 10): the TDI model, the
 * ONE table that drives every TDI state change, the TDISP requester operations (PCIe 6.x
 * ch. 11, carried in SPDM VENDOR_DEFINED messages inside the secure session) and the
 * composite flows the verbs call (bind, accept, unbind, info, reject).
 *
 * State table (TSM view, TDISP names). Requests and who may make them:
 *
 *   from \ request   BIND(host)  UNBIND(host)  ACCEPT(owner)  REJECT/INFO(owner)  DEVICE_ERROR(tsm)
 *   CONFIG_UNLOCKED  LOCKED      -             -              -                   -
 *   CONFIG_LOCKED    -           UNLOCKED      RUN            (stays)             ERROR
 *   RUN              -           UNLOCKED      -              (stays)             ERROR
 *   ERROR            -           UNLOCKED      -              (stays)             -
 * and RESET (host TDI_RESET, the recovery): ERROR -> CONFIG_LOCKED (rule TDI.10; the
 * evidence check is the flow's, TDI.11).
 *
 *   from \ request   LOCK(owner)  UNLOCK(owner)  RELEASE(host)  DEBUG_ERROR(owner)
 * DEBUG_READ(owner) CONFIG_UNLOCKED  LOCKED       -              (stays)        - (stays)
 *   CONFIG_LOCKED    -            UNLOCKED       -              ERROR               (stays)
 *   RUN              -            UNLOCKED       -              ERROR               (stays)
 *   ERROR            -            UNLOCKED       -              -                   (stays)
 *
 * A guest UNLOCK keeps the TDI assigned to its TVM (owner_tvm stays) so that it can LOCK
 * again (the Linux devsec lock/unlock flow); the host ends an assignment with TDI_UNBIND
 * (RELEASE: no device exchange, the device is already unlocked). TDI.22 guest LOCK only
 * from CONFIG_UNLOCKED, of a TDI assigned to it; TDI.23 guest UNLOCK only from
 * CONFIG_LOCKED/RUN/ERROR; TDI.24 DEBUG_WRITE (force ERROR) only from CONFIG_LOCKED/RUN.
 *
 * LIST (not a move: "may this requester see the TDI") is allowed for the host in every
 * state and for the owning guest in every owned state. Rules: TDI.1 bind only from
 * CONFIG_UNLOCKED; TDI.2 unbind only from CONFIG_LOCKED/RUN/ERROR; TDI.3 only the host
 * binds/unbinds; TDI.4 accept only from CONFIG_LOCKED; TDI.5 only the owning guest
 * accepts/rejects; TDI.6 only the owning guest reads info (and lists the TDI); TDI.7
 * device-reported ERROR moves CONFIG_LOCKED/RUN to ERROR; TDI.8 device state disagreeing
 * with the TSM's moves the TDI to ERROR (the same DEVICE_ERROR move). TDI.9 (no TDISP on
 * an ide_only device) is the verb's check: this module knows nothing of the pdev.
 *
 * Refusals are derived from the table, in this order, so that a guest that does not own
 * a TDI learns nothing about its state:
 *   VTSM_E_ABI_ROLE   the requester kind never makes this request (host accepting, guest
 *                     binding, anyone but the TSM reporting DEVICE_ERROR)
 *   VTSM_E_NOT_OWNER  only the owning guest may, and this guest does not own the TDI
 *   VTSM_E_STATE      the requester may, but not from the TDI's current state
 * Each refused under its rule (vtsm_err_rule(), e.g. VTSM_RULE_TDI_4), with a detail such
 * as "accept refused: 0000:01:00.0 TDI 2 is RUN (rule TDI.4: accept only from
 * CONFIG_LOCKED)".
 *
 * Threading: none. Only one flow at a time runs on a device (tsmd: the device's job owns
 * its DOE mailbox), and tsmd runs every flow on its event loop's thread. The flows do
 * every device exchange first and write the TDI only at the end (validate -> do ->
 * update state last), through tsm_tdi_set_state(), which re-checks the move; a device
 * exchange may yield to the loop, so readers such as STATUS run in between and never
 * see a half-written TDI.
 */
#ifndef TSM_TDI_H
#define TSM_TDI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "vtsm_abi_defs.h"
#include "vtsm_buf.h"
#include "vtsm_crypto.h"
#include "vtsm_spdm_req.h"
#include "vtsm_err.h"
#include "vtsm_tdisp.h"

/* ---- the state table ---- */

enum tsm_tdi_state {
    TSM_TDI_CONFIG_UNLOCKED = VTSM_TDI_CONFIG_UNLOCKED,
    TSM_TDI_CONFIG_LOCKED = VTSM_TDI_CONFIG_LOCKED,
    TSM_TDI_RUN = VTSM_TDI_RUN,
    TSM_TDI_ERROR = VTSM_TDI_ERROR,
    TSM_TDI_STATE_COUNT_
};

enum tsm_tdi_req {
    TSM_TDI_REQ_BIND = 0,     /* host TDI_BIND */
    TSM_TDI_REQ_UNBIND,       /* host TDI_UNBIND (also device_reclaim with force) */
    TSM_TDI_REQ_ACCEPT,       /* guest ACCEPT: CONFIG_LOCKED -> RUN */
    TSM_TDI_REQ_REJECT,       /* guest REJECT: recorded, no state change */
    TSM_TDI_REQ_INFO,         /* guest INFO */
    TSM_TDI_REQ_LIST,         /* guest LIST / host STATUS: may the requester see this TDI */
    TSM_TDI_REQ_DEVICE_ERROR, /* the TSM saw the device report ERROR, or state drift */
    TSM_TDI_REQ_RESET,        /* host TDI_RESET: ERROR -> CONFIG_LOCKED after recovery */
    TSM_TDI_REQ_LOCK,         /* guest LOCK of a TDI assigned to it: CONFIG_UNLOCKED -> LOCKED */
    TSM_TDI_REQ_UNLOCK,       /* guest UNLOCK: STOP, -> CONFIG_UNLOCKED, stays assigned */
    TSM_TDI_REQ_RELEASE,      /* host TDI_UNBIND of an assigned, unlocked TDI */
    TSM_TDI_REQ_DEBUG_ERROR,  /* guest DEBUG_WRITE: force ERROR (debug TVMs only) */
    TSM_TDI_REQ_DEBUG_READ,   /* guest DEBUG_READ: the TSM's internal view */
    TSM_TDI_REQ_ASSIGN,       /* host TDI_BIND assign: CONFIG_UNLOCKED, owned, not locked */
    TSM_TDI_REQ_COUNT_
};

enum tsm_tdi_who {
    TSM_TDI_WHO_HOST = 0,
    TSM_TDI_WHO_OWNER_GUEST, /* a guest: ownership is decided from guest_tvm, see below */
    TSM_TDI_WHO_OTHER_GUEST,
    TSM_TDI_WHO_TSM, /* the TSM itself, acting on what the device reported */
    TSM_TDI_WHO_COUNT_
};

/* One legal move. REJECT, INFO and LIST moves keep the state (to == from). */
struct tsm_tdi_move {
    enum tsm_tdi_state from;
    enum tsm_tdi_req req;
    enum tsm_tdi_who who;
    enum tsm_tdi_state to;
    enum vtsm_rule rule;
};

/* The table itself: every move not listed is refused. For conformance tests. */
extern const struct tsm_tdi_move tsm_tdi_moves[];
extern const size_t tsm_tdi_moves_count;

/* "CONFIG_UNLOCKED" ...; "invalid" out of range. */
const char *tsm_tdi_state_name(enum tsm_tdi_state s);
/* "bind", "unbind", "accept", "reject", "info", "list", "device_error". */
const char *tsm_tdi_req_name(enum tsm_tdi_req r);
/* "host", "owning guest", "guest", "tsm". */
const char *tsm_tdi_who_name(enum tsm_tdi_who w);

/* ---- the TDI ---- */

/* One MMIO_RANGE of a bound TDI's report as the host mapped it into the owning TVM
 * (TDI_MMIO_MAP) and as the guest validated it (MMIO_VALIDATE). */
struct tsm_tdi_mmio {
    bool mapped;    /* the host declared a mapping */
    bool validated; /* the owning guest validated it (the rules of tsm_mmio.h held) */
    bool priv;      /* validated as private (TEE) memory */
    uint64_t gpa;   /* guest-physical address of the range's first byte */
    uint64_t pages; /* 4 KiB pages the host mapped */
};

#define TSM_TDI_REASON_MAX 1024    /* bytes of a guest's REJECT reason (= the guest shim's) */
#define TSM_TDI_MAX_INDEX  0xFFFFu /* FUNCTION_ID RID is 16 bits */

struct tsm_tdi {
    char dev[VTSM_ABI_DEV_BUF]; /* the device, for messages */
    uint32_t index;             /* TDISP FUNCTION_ID RID; segment not valid */
    enum tsm_tdi_state state;   /* written only by tsm_tdi_set_state() */
    uint32_t owner_tvm;         /* 0 = none; set while state != CONFIG_UNLOCKED, and while an
                                 * owner's UNLOCK left the TDI assigned to it */
    uint16_t lock_flags;        /* of the last LOCK_INTERFACE_REQ (a guest LOCK uses them again) */
    bool guest_unlocked;        /* the owner's UNLOCK brought it to CONFIG_UNLOCKED (host STATUS) */
    uint8_t lock_nonce[VTSM_TDISP_NONCE_SIZE]; /* LOCK_INTERFACE_RSP nonce, secret */
    bool nonce_valid;                          /* until START_INTERFACE or unbind */
    struct vtsm_buf report;                    /* the interface report as received */
    uint8_t report_digest[VTSM_HASH_MAX];      /* with the session's negotiated hash */
    size_t digest_len;
    enum vtsm_hash_alg digest_alg;
    bool mmio_enabled, dma_enabled; /* only in RUN, after START_INTERFACE_RSP */
    struct vtsm_spdm_meas meas;     /* fresh GET_MEASUREMENTS taken after LOCK */
    bool have_meas;
    /* the last EVIDENCE refresh re-read the interface report (report_checked) and found
     * it differs from the bound one (report_changed); cleared by a new binding */
    bool report_checked, report_changed;
    /* What ACCEPT binds (digest_alg): the measurement record cached at bind and the LOCK
     * nonce (valid while nonce_valid). */
    uint8_t meas_digest[VTSM_HASH_MAX];
    uint8_t nonce_digest[VTSM_HASH_MAX];
    /* Event order, to compute after_lock: lock_seq is when LOCK_INTERFACE_RSP arrived,
     * meas_seq when the cached measurements did (tsm_tdi_event()); 0 = never. */
    uint64_t lock_seq, meas_seq;
    enum vtsm_rule error_rule; /* why the TSM moved it to ERROR (NONE: not known) */
    bool rejected;             /* the owner said REJECT; guest_rejected holds its reason */
    bool declared; /* named by the host at connect (tdis): kept, and listed, while unbound */
    char guest_rejected[TSM_TDI_REASON_MAX + 1];
    /* the binding's default stream (with lock_flags above: what a recovery locks with again) */
    uint8_t stream_id;
    /* recovery (tdi_reset): how often it relocked, and what the last attempt found */
    uint32_t recoveries;
    char last_event[64];      /* "" / "recovered" / "recovered_reference" / "recovery_refused" */
    enum vtsm_rule last_rule; /* the rule of last_event */
    /* MMIO and DMA (tsm_mmio.h): per MMIO_RANGE of the report, what the host mapped and the
     * guest validated; whether the guest enabled DMA. Cleared on unbind and on ERROR. */
    struct tsm_tdi_mmio mmio[VTSM_TDISP_MAX_MMIO_RANGES];
    bool dma_guest;
};

/* A fresh, unbound TDI (CONFIG_UNLOCKED). dev must be a valid device name, index <=
 * TSM_TDI_MAX_INDEX (E_INVAL otherwise). */
vtsm_status tsm_tdi_init(struct tsm_tdi *t, const char *dev, uint32_t index);
/* Drop everything a binding left: owner, nonce (wiped), report (wiped), digest,
 * measurements, mmio/dma enables, reject reason. Does not touch t->state (only
 * tsm_tdi_set_state writes it). Also the destructor: call it before freeing t. */
void tsm_tdi_reset(struct tsm_tdi *t);

/*
 * May `who` make request `req` on t now? VTSM_OK with *next (may be NULL) = the state the
 * move leads to, or the refusal (E_ABI_ROLE / E_NOT_OWNER / E_STATE, see above) with
 * *next untouched. For guests the OWNER/OTHER distinction is not taken from the caller:
 * a guest is the owner exactly when guest_tvm != 0 and guest_tvm == t->owner_tvm
 * (guest_tvm is ignored for the host and the TSM). E_INVAL for out-of-range enums.
 */
vtsm_status tsm_tdi_check(const struct tsm_tdi *t, enum tsm_tdi_req req, enum tsm_tdi_who who,
                          uint32_t guest_tvm, enum tsm_tdi_state *next);

/*
 * The only writer of t->state: the move (t->state, req, who) must be in the table and
 * lead to `to` (E_STATE "no such transition" if it leads elsewhere); otherwise the
 * refusal of tsm_tdi_check. Nothing changes on refusal.
 */
vtsm_status tsm_tdi_set_state(struct tsm_tdi *t, enum tsm_tdi_req req, enum tsm_tdi_who who,
                              uint32_t guest_tvm, enum tsm_tdi_state to);

/* ---- TDISP requester operations ---- */

/*
 * How TDISP messages reach the device: a PCI-SIG VENDOR_DEFINED_REQUEST inside the SPDM
 * session. vendor == NULL means vtsm_spdm_req_vendor(spdm, ...); a test may plug in a
 * scripted TDISP responder (same contract: payload from the protocol ID byte on, rsp
 * reset and filled). spdm is also used for the session's parameters
 * (vtsm_spdm_req_info), GET_MEASUREMENTS (signed with slot's key) and the certificate
 * chain. The caller owns spdm and serialises its use.
 */
struct tsm_tdisp_chan {
    struct vtsm_spdm_req *spdm;
    uint8_t slot;
    const char *dev;  /* device name for details (NULL: "device") */
    uint32_t dsm_fid; /* RID of the DSM (function 0): GET_VERSION, GET_CAPABILITIES */
    /* FUNCTION_ID bits above the RID for every TDI of the device: the requester segment
     * (23:16) with Requester Segment Valid (24) when the DSM's segment is not 0, else 0 */
    uint32_t seg_bits;
    bool seg_wide; /* the DSM's segment exceeds TDISP's 8 bits: no INTERFACE_ID names it */
    vtsm_status (*vendor)(void *ctx, const uint8_t *payload, size_t len, struct vtsm_buf *rsp);
    void *vendor_ctx;
};

/*
 * Every response is checked before it is used: protocol ID (E_PEER_MALFORMED), TDISP
 * version 1.0 (E_PEER_VERSION), the response code answering the request
 * (E_PEER_UNEXPECTED), INTERFACE_ID echoing the request's (E_PEER_MALFORMED), reserved
 * fields and layout (E_PEER_MALFORMED / E_PEER_TRUNCATED). A well-formed TDISP_ERROR is
 * E_PEER_ERROR with a detail naming the TDISP error code and the TDI. Transport and SPDM
 * failures come back as the requester reported them.
 */

/* GET_VERSION (must offer 1.0) and GET_CAPABILITIES for the DSM's INTERFACE_ID
 * (c->dsm_fid; the connect-time probe: both describe the device's TDISP responder).
 * A device without a TDISP responder (SPDM ERROR UnsupportedRequest, or TDISP_ERROR
 * UNSUPPORTED_REQUEST) gives E_PEER_CAPS "device is not TEE-IO capable (no TDISP
 * responder); connect with ide_only". caps may be NULL. */
vtsm_status tsm_tdisp_probe(const struct tsm_tdisp_chan *c, struct vtsm_tdisp_caps *caps);
/* LOCK_INTERFACE_REQ (mmio_reporting_offset 0, no P2P) -> the 32-byte START nonce. nonce
 * is wiped on failure. Unknown flags: E_ABI_ARG. */
vtsm_status tsm_tdisp_lock(const struct tsm_tdisp_chan *c, uint32_t tdi, uint16_t flags,
                           uint8_t default_stream_id, uint8_t nonce[VTSM_TDISP_NONCE_SIZE]);
/*
 * GET_DEVICE_INTERFACE_REPORT in chunks (offset/length) sized so each response fits the
 * negotiated DataTransferSize, until REMAINDER_LENGTH is 0. The first response fixes the
 * total (offset + portion + remainder, at most VTSM_TDISP_REPORT_MAX: else
 * E_PEER_OVERSIZED); a later chunk disagreeing gives E_PEER_MALFORMED "report length
 * changed between chunks", a portion longer than asked E_PEER_MALFORMED. The whole report
 * is then parsed and validated (vtsm_tdisp_report_parse: the detail names the report
 * rule). report is reset and, on success, holds the report bytes; on failure it is empty.
 */
vtsm_status tsm_tdisp_get_report(const struct tsm_tdisp_chan *c, uint32_t tdi,
                                 struct vtsm_buf *report);
/* GET_DEVICE_INTERFACE_STATE -> *state (VTSM_TDI_*). */
vtsm_status tsm_tdisp_get_state(const struct tsm_tdisp_chan *c, uint32_t tdi, uint8_t *state);
/* START_INTERFACE_REQ with the LOCK nonce -> START_INTERFACE_RSP. */
vtsm_status tsm_tdisp_start(const struct tsm_tdisp_chan *c, uint32_t tdi,
                            const uint8_t nonce[VTSM_TDISP_NONCE_SIZE]);
/* STOP_INTERFACE_REQ -> STOP_INTERFACE_RSP. */
vtsm_status tsm_tdisp_stop(const struct tsm_tdisp_chan *c, uint32_t tdi);

/* ---- composite flows (each checks the table first; nothing changes on refusal) ---- */

/*
 * Host TDI_BIND: table (BIND by the host, rule TDI.1), then LOCK_INTERFACE_REQ -> nonce,
 * the interface report (chunked, parsed, validated), its digest with the session's hash,
 * fresh signed GET_MEASUREMENTS. Success: CONFIG_LOCKED, owner = tvm, nonce, report,
 * digest and measurements cached, mmio/dma disabled. Any failure after the LOCK was sent
 * sends STOP_INTERFACE_REQ (best effort; its outcome is added to the detail) and leaves
 * the TDI CONFIG_UNLOCKED with nothing cached; a bad report fails with the report's
 * status and rule. tvm must not be 0 (E_INVAL).
 */
vtsm_status tsm_tdi_bind(const struct tsm_tdisp_chan *c, struct tsm_tdi *t, uint32_t tvm,
                         uint16_t lock_flags, uint8_t default_stream_id);
/* Host ASSIGN (TDI_BIND with assign; table: from CONFIG_UNLOCKED, TDI.1): the TDI goes to
 * tvm without a lock (an interface the device has locked is stopped first, as for a
 * bind); lock_flags are what the owner's LOCK will lock with. Counts as bound for the TVM. */
vtsm_status tsm_tdi_assign(const struct tsm_tdisp_chan *c, struct tsm_tdi *t, uint32_t tvm,
                           uint16_t lock_flags);
/* Guest LOCK by guest_tvm of a TDI assigned to it (table: LOCK by the owner, TDI.22): the
 * bind flow with the lock flags of the TDI's last LOCK. */
vtsm_status tsm_tdi_guest_lock(const struct tsm_tdisp_chan *c, struct tsm_tdi *t,
                               uint32_t guest_tvm, uint8_t default_stream_id);
/* Guest UNLOCK by guest_tvm (table: TDI.23): STOP_INTERFACE_REQ, then CONFIG_UNLOCKED
 * whatever the device answered (its answer in *stop_status); the TDI stays assigned to
 * guest_tvm with nothing else cached, guest_unlocked set for the host. */
vtsm_status tsm_tdi_guest_unlock(const struct tsm_tdisp_chan *c, struct tsm_tdi *t,
                                 uint32_t guest_tvm, vtsm_status *stop_status);
/* Guest DEBUG_WRITE by guest_tvm (table: TDI.24): the TDI goes to ERROR as if the device
 * had failed (no device exchange; error_rule TDI.24). The caller checks the TVM's debug
 * permission (rule GUEST.6). */
vtsm_status tsm_tdi_debug_error(struct tsm_tdi *t, uint32_t guest_tvm);

/*
 * Guest ACCEPT by guest_tvm: table (owner only, rule TDI.5; CONFIG_LOCKED only, TDI.4),
 * then b (what the guest verified) against the TDI's report digest, bound measurement
 * digest and LOCK nonce digest, each compared in constant time: any difference is
 * E_STATE, rule TDI.20, and the TDI stays CONFIG_LOCKED (b NULL: E_INVAL). Then
 * GET_DEVICE_INTERFACE_STATE: device ERROR -> TDI ERROR, E_PEER_STATE (rule TDI.7);
 * anything else but CONFIG_LOCKED -> TDI ERROR, E_PEER_STATE (rule TDI.8). Then
 * START_INTERFACE_REQ with the LOCK nonce: any failure (TDISP_ERROR such as INVALID_NONCE,
 * malformed or missing answer) -> TDI ERROR, the error returned. Only on
 * START_INTERFACE_RSP: RUN, mmio_enabled = dma_enabled = true. The nonce is wiped once
 * START was sent. A GET_DEVICE_INTERFACE_STATE that fails to arrive changes nothing.
 */
struct tsm_tdi_accept_binding {
    const uint8_t *report_digest; /* as INFO reported them; lengths 0..VTSM_HASH_MAX */
    size_t report_len;
    const uint8_t *meas_digest;
    size_t meas_len;
    const uint8_t *lock_digest;
    size_t lock_len;
};
/* The binding of t as it stands (what an INFO now would report; the lock digest only
 * while the nonce is valid). Points into t. */
void tsm_tdi_current_binding(const struct tsm_tdi *t, struct tsm_tdi_accept_binding *b);
vtsm_status tsm_tdi_accept(const struct tsm_tdisp_chan *c, struct tsm_tdi *t, uint32_t guest_tvm,
                           const struct tsm_tdi_accept_binding *b);
/* A fresh number of the TSM's event order (monotonic, single-threaded like every flow). */
uint64_t tsm_tdi_event(void);
/* Were these measurements taken after the TDI's LOCK_INTERFACE_RSP, with the lock still in
 * force (CONFIG_LOCKED or RUN)? meas_seq is tsm_tdi_event() at their arrival. */
bool tsm_tdi_after_lock(const struct tsm_tdi *t, uint64_t meas_seq);

/*
 * Host TDI_UNBIND: table (rule TDI.2 / TDI.3), STOP_INTERFACE_REQ, then CONFIG_UNLOCKED
 * and tsm_tdi_reset() whatever the device answered. The device's answer goes to
 * *stop_status (VTSM_OK or the failure) and its detail into stop_detail (may be NULL).
 * c may be NULL (no session left): STOP is skipped and *stop_status is E_CLOSED. Returns
 * VTSM_OK once the TDI is unbound, or the table's refusal.
 */
vtsm_status tsm_tdi_unbind(const struct tsm_tdisp_chan *c, struct tsm_tdi *t,
                           vtsm_status *stop_status, char *stop_detail, size_t detail_cap);

/* Guest REJECT by guest_tvm (owner only, rule TDI.5): the reason (NULL: "rejected by the
 * TVM", at most TSM_TDI_REASON_MAX bytes, else E_ABI_ARG) is recorded for STATUS. No
 * device exchange, no state change. */
vtsm_status tsm_tdi_reject(struct tsm_tdi *t, uint32_t guest_tvm, const char *reason);

/* What INFO needs besides the TDI. */
struct tsm_tdi_info_args {
    uint32_t guest_tvm;
    const uint8_t *tvm_identity; /* SHA-256 of the TVM's guest key (32 bytes) */
    const uint8_t *nonce;        /* NULL, or 32 bytes: fresh measurements + token */
    EVP_PKEY *tsm_key;           /* TSM identity key (signs the token) */
    const uint8_t *kid;          /* SHA-256 of the TSM certificate DER */
    size_t kid_len;
};

/*
 * Guest INFO (owner only, rule TDI.6): what the INFO reply and its token are made of
 * (tsm_reply_tdi_info builds them). With a nonce: a fresh GET_MEASUREMENTS whose SPDM
 * nonce IS the guest nonce (those measurements are reported) and the digests the token
 * binds. Every digest uses the session's negotiated hash. The TDI is not modified (the
 * cached measurements stay). Filled in place and not to be copied (meas may point into
 * it); release with tsm_tdi_info_free, also after a failure.
 */
struct tsm_tdi_info {
    const struct tsm_tdi *t;
    const struct vtsm_spdm_meas *meas; /* the TDI's cached measurements, or &fresh */
    struct vtsm_spdm_meas fresh;       /* with a nonce */
    struct vtsm_tdisp_report *rep;     /* the parsed interface report */
    const struct vtsm_buf *chain;      /* the device's certificate chain */
    bool after_lock;                   /* meas taken after LOCK, lock in force */
    size_t digest_len;
    uint8_t chain_digest[VTSM_HASH_MAX];
    uint8_t meas_digest[VTSM_HASH_MAX]; /* of meas->record */
    uint8_t tr_digest[VTSM_HASH_MAX];   /* with a nonce: of meas->transcript */
    uint8_t vca_digest[VTSM_HASH_MAX];  /* of the SPDM VCA transcript */
    uint8_t kex_digest[VTSM_HASH_MAX];  /* of the KEY_EXCHANGE transcript the device signed */
    const struct vtsm_buf *vca, *kex;   /* those transcripts (the requester's) */
    const uint8_t *kex_sig;             /* and the KEY_EXCHANGE_RSP signature */
    size_t kex_sig_len;
    /* every certificate slot the device's DIGESTS names provisioned: its digest (the
     * session's hash, as DIGESTS gave it), and slots_digest over (slot || digest)... */
    uint8_t slot_mask;
    uint8_t slot_digest[8][VTSM_HASH_MAX];
    uint8_t slots_digest[VTSM_HASH_MAX];
};
vtsm_status tsm_tdi_info(const struct tsm_tdisp_chan *c, const struct tsm_tdi *t,
                         const struct tsm_tdi_info_args *a, struct tsm_tdi_info *out);
void tsm_tdi_info_free(struct tsm_tdi_info *i);

/* The vtsm VDM FUNCTION_LEVEL_RESET (vtsm_tdisp.h) -> *state, the TDI state the device
 * reports after it (VTSM_TDI_*). */
vtsm_status tsm_tdisp_flr(const struct tsm_tdisp_chan *c, uint32_t tdi, uint8_t *state);

/*
 * Host DEVICE_CHECK of one TDI: for a CONFIG_LOCKED or RUN TDI, GET_DEVICE_INTERFACE_STATE;
 * the device in ERROR moves the TDI to ERROR (E_PEER_STATE, rule TDI.7), any other state
 * than the TSM's too (TDI.8), MMIO and DMA off, nonce wiped. *dev_state gets what the
 * device said. A TDI in another state is not asked (VTSM_OK, *dev_state = 0xFF). A lost
 * answer changes nothing.
 */
vtsm_status tsm_tdi_check_device(const struct tsm_tdisp_chan *c, struct tsm_tdi *t,
                                 uint8_t *dev_state);

/* Reference values a host supplies for a recovery: digests (the session's hash) of the
 * interface report and of the measurement record; NULL / 0 when not supplied. */
struct tsm_tdi_ref {
    const uint8_t *report_digest;
    size_t report_digest_len;
    const uint8_t *meas_digest;
    size_t meas_digest_len;
};

/* What a recovery saw (also when it refused): digests of the report and measurement
 * record the device gives after the reset, and whether they matched. */
struct tsm_tdi_recovery {
    size_t digest_len;
    uint8_t report_digest[VTSM_HASH_MAX];
    uint8_t meas_digest[VTSM_HASH_MAX];
    bool have_digests;
    bool same_as_bound;   /* identical to what was bound */
    bool reference_match; /* equal to the host's reference values */
};

/*
 * Host TDI_RESET (recovery of a TDI in ERROR): table (RESET by the host from ERROR, rule
 * TDI.10), then the FLR (vtsm VDM FUNCTION_LEVEL_RESET; the device must report the TDI
 * CONFIG_UNLOCKED, else E_PEER_STATE rule TDI.8), LOCK_INTERFACE_REQ with the binding's
 * flags and stream, the interface report and fresh signed measurements. Only if the
 * report and the measurement record are byte-identical to the bound ones, or their
 * digests equal both of the host's reference values (ref, may be NULL), the TDI returns
 * to CONFIG_LOCKED for the same owner with the new nonce (and, with reference values,
 * the new report and measurements); recoveries counts it. Otherwise STOP_INTERFACE_REQ
 * is sent and the TDI stays ERROR: E_PEER_STATE, rule TDI.11. last_event / last_rule
 * record the outcome either way; out (may be NULL) gets what the device now reports.
 */
vtsm_status tsm_tdi_recover(const struct tsm_tdisp_chan *c, struct tsm_tdi *t,
                            const struct tsm_tdi_ref *ref, struct tsm_tdi_recovery *out);

/* The interface report of a bound TDI, parsed (E_STATE if the TDI is not bound). */
vtsm_status tsm_tdi_report(const struct tsm_tdi *t, struct vtsm_tdisp_report *rep);

#endif
