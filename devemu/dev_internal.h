/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private state of the emulated device and the contract between the core (DOE layer,
 * secured messages, dispatch: dev_core.c) and the per-message responders (rsp_*.c).
 *
 * A responder gets a parsed request header in struct dev_req and a writer for the SPDM
 * response. It validates, does the work, and updates device state last. To refuse it
 * returns dev_refuse(), which records the SPDM ErrorCode the core will send; the core is
 * the only place that turns a refusal into an ERROR message.
 */
#ifndef VTSM_DEV_INTERNAL_H
#define VTSM_DEV_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "vtsm_buf.h"
#include "vtsm_crypto.h"
#include "vtsm_devemu.h"
#include "vtsm_idekm.h"
#include "vtsm_spdm_crypto.h"
#include "vtsm_spdm_defs.h"
#include "vtsm_err.h"
#include "vtsm_tdisp.h"

/* Largest SPDM message the device builds or accepts (a whole certificate chain portion,
 * a measurement record); requests above it are refused before parsing. */
#define DEV_MSG_MAX 0x10000u
/* DataTransferSize lower bound for SPDM 1.2+ (DSP0274 GET_CAPABILITIES). */
#define DEV_MIN_DATA_TRANSFER_SIZE 42u
/* NEGOTIATE_ALGORITHMS limits for 1.1+ (DSP0274 NEGOTIATE_ALGORITHMS request). */
#define DEV_NEG_ALG_MAX_LENGTH 128u
#define DEV_NEG_ALG_MAX_EXT    20u
/* The responder's fixed part of CAPABILITIES Flags (DSP0274 CAPABILITIES). */
#define DEV_RSP_CAPS                                                                               \
    (SPDM_CAP_CERT | SPDM_CAP_MEAS_SIG | SPDM_CAP_MEAS_FRESH | SPDM_CAP_ENCRYPT | SPDM_CAP_MAC |   \
     SPDM_CAP_KEY_EX)
/* Measurement block constants (DSP0274 "DMTF measurement specification format"). */
#define DEV_SPDM_DMTF_TYPE_RAW 0x80 /* DMTFSpecMeasurementValueType bit 7 */
#define DEV_RDT_EXPONENT       10   /* ResponseNotReady RDTExponent (2^10 us) */
#define DEV_RDTM               2    /* ResponseNotReady RDTM */
/* DSP0277 versions the device implements, most preferred first. */
#define DEV_SECMSG_VERSIONS                                                                        \
    {                                                                                              \
        VTSM_SECMSG_V12, VTSM_SECMSG_V11, VTSM_SECMSG_V10                                          \
    }

/* Connection state (DSP0274 "Connection"/ "Negotiated state"): moves forward only through
 * GET_VERSION -> GET_CAPABILITIES -> NEGOTIATE_ALGORITHMS; GET_VERSION restarts it. */
enum dev_conn_state {
    DEV_CONN_NONE = 0,
    DEV_CONN_AFTER_VERSION,
    DEV_CONN_AFTER_CAPS,
    DEV_CONN_NEGOTIATED,
};

enum dev_sess_state {
    DEV_SESS_NONE = 0,
    DEV_SESS_HANDSHAKE,   /* after KEY_EXCHANGE_RSP: only FINISH, with handshake keys */
    DEV_SESS_ESTABLISHED, /* after FINISH_RSP: data keys */
};

/* One certificate slot: the SPDM chain is built for both base hashes up front, because
 * its RootHash (and the slot digest) depend on the hash negotiated later. */
struct dev_slot {
    bool present;
    EVP_PKEY *key;            /* leaf private key */
    struct vtsm_buf chain[2]; /* [0] SHA-256, [1] SHA-384 */
    uint8_t digest[2][VTSM_HASH_MAX];
};

struct dev_conn {
    enum dev_conn_state state;
    uint8_t version; /* negotiated SPDMVersion byte (valid from AFTER_CAPS) */
    uint32_t req_flags;
    uint8_t req_ct_exponent;
    uint32_t req_data_transfer_size;
    uint32_t req_max_spdm_msg_size;
    enum vtsm_asym_alg asym;
    enum vtsm_hash_alg hash;
    enum vtsm_dhe_group dhe;
    enum vtsm_aead_alg aead;
    uint8_t meas_spec;    /* MeasurementSpecificationSel */
    uint32_t meas_hash;   /* MeasurementHashAlgo (SPDM_MEAS_HASH_*) */
    uint8_t other_params; /* OtherParamsSelection */
    bool key_schedule;    /* SPDM key schedule selected */
    struct vtsm_buf vca;  /* GET_VERSION .. ALGORITHMS (message A) */
    struct vtsm_buf l1l2; /* GET_MEASUREMENTS exchanges outside a session (message M) */
    /* Message B of M1/M2: GET_DIGESTS / DIGESTS and GET_CERTIFICATE / CERTIFICATE
     * exchanged in the clear since it last restarted (dev_core.c, vtsm_spdm_resets_m1m2). */
    struct vtsm_buf msg_b;
};

struct dev_session {
    enum dev_sess_state state;
    uint32_t id; /* ReqSessionID | RspSessionID << 16 */
    uint8_t slot;
    uint16_t secmsg_version;
    struct vtsm_buf th; /* VCA || H(chain) || message K || message F */
    struct vtsm_spdm_ks ks;
    struct vtsm_buf l1l2; /* GET_MEASUREMENTS exchanges inside this session */
    /* FINISH_RSP goes out under the handshake keys; the data keys replace them after. */
    bool data_keys_pending;
    uint8_t th2[VTSM_HASH_MAX];
    unsigned requests;        /* requests received inside the session (replay fault) */
    struct vtsm_buf last_rsp; /* last secured DOE object sent in this session */
    bool terminate;           /* wipe after this response (END_SESSION, DecryptError) */
    /* IDE_KM faults count per session, so every connect meets them again. */
    unsigned key_progs;                              /* KEY_PROG requests seen (idekm-replay-ack) */
    uint8_t first_kp_ack[VTSM_IDEKM_SHORT_MSG_SIZE]; /* the first KP_ACK sent */
    bool have_first_kp_ack;
    uint8_t nak_sent[VTSM_DEV_MAX_IDE / 8]; /* streams whose first KEY_PROG was NAKed */
    /* KEY_UPDATE (rsp_key_update.c): the last request acknowledged (KeyOperation, Tag) and
     * whether its VerifyNewKey is still outstanding. */
    bool ku_seen;
    bool ku_pending;
    uint8_t ku_op;
    uint8_t ku_tag;
};

/* ---- IDE (dev_ide.c, rsp_idekm.c, dev_link.c) ---- */

#define DEV_IDE_KEY_SETS   2
#define DEV_IDE_SUBSTREAMS 3 /* PR, NPR, CPL */
#define DEV_IDE_DIRS       2 /* RX, TX (the device's own receive / transmit side) */
#define DEV_IDE_RX         0
#define DEV_IDE_TX         1
#define DEV_IDE_NONE       0xFF

/* One key of one stream / key set / sub-stream / direction, as KEY_PROG delivered it. */
struct dev_ide_slot {
    bool programmed;
    struct vtsm_idekm_key key;
    /* RX: the lowest invocation count the link still accepts (replays refused);
     * TX: the next invocation count the device uses. Both restart at 0 with KEY_PROG. */
    uint64_t counter;
};

/*
 * One Selective IDE Stream register block. Its Stream ID (Control bits 31:24) starts as
 * its index; a KEY_PROG for a Stream ID no block carries gives it to the lowest idle block
 * (no key programmed or live), as the host writes a Stream ID into a free block.
 */
struct dev_ide_stream {
    uint8_t id;
    bool link;  /* a Link IDE stream block (after the selective ones, one per TC) */
    bool bound; /* link blocks: a Stream ID was written to its Control register */
    /* RID Association 1, 2 and the address association blocks (Register 1, 2, 3), as the
     * root port's configuration writes left them (link frame kind 4); 0 = not valid */
    uint32_t rid1, rid2;
    uint32_t addr[VTSM_IDEKM_MAX_ADDR][3];
    struct dev_ide_slot slot[DEV_IDE_KEY_SETS][DEV_IDE_SUBSTREAMS][DEV_IDE_DIRS];
    uint8_t live[DEV_IDE_SUBSTREAMS][DEV_IDE_DIRS]; /* key set after K_SET_GO, or NONE */
};

/* ---- TDIs (dev_tdi.c, rsp_tdisp.c) ---- */

struct dev_tdi {
    uint8_t state; /* VTSM_TDI_*; written only by dev_tdi_set_state() */
    uint8_t nonce[VTSM_TDISP_NONCE_SIZE];
    bool nonce_valid; /* the LOCK nonce, until START (or STOP) consumes it */
    uint16_t lock_flags;
    uint8_t default_stream_id;
    uint64_t mmio_offset;
    struct vtsm_buf report;  /* the interface report, built at LOCK */
    uint64_t base;           /* address of the first MMIO range (before the reporting offset) */
    uint64_t mmio_size;      /* bytes from base to the end of the last range */
    unsigned report_changes; /* control report-change: the report differs from the design's */
};

/* One large message in chunks (rsp_chunk.c): a request arriving by CHUNK_SEND (chunk_rx)
 * or a response waiting for CHUNK_GET (chunk_tx). Bound to the context (clear or the
 * session) it started in; any other request ends it. */
struct dev_chunk {
    bool active;
    bool in_session;
    uint32_t session_id;
    uint8_t handle;
    uint16_t next_seq;
    unsigned chunks;
    uint32_t total; /* LargeMessageSize */
    size_t sent;    /* chunk_tx: bytes sent so far */
    struct vtsm_buf buf;
};

/* A request answered with ResponseNotReady, kept for RESPOND_IF_READY. */
struct dev_pending {
    bool active;
    bool in_session;
    uint32_t session_id;
    uint8_t code;
    uint8_t token;
    struct vtsm_buf req;
};

struct vtsm_dev {
    struct vtsm_dev_config cfg; /* slot PEM pointers cleared: borrowed only during new */
    struct dev_slot slots[VTSM_DEV_MAX_SLOTS];
    struct dev_conn conn;
    struct dev_session sess;
    struct dev_pending pending;
    uint16_t next_rsp_session_id;
    uint8_t next_token;
    struct dev_ide_stream *ide; /* cfg.ide_streams entries (NULL for 0) */
    struct dev_tdi *tdis;       /* cfg.num_tdis entries (NULL for 0) */
    struct dev_chunk chunk_rx, chunk_tx;
    uint8_t next_chunk_handle;
    /* Fault meas-drift-after-lock: MEASUREMENTS answered since the last LOCK_INTERFACE_RSP
     * (0 before any), and whether the one being built reports the drifted firmware. */
    uint32_t meas_since_lock;
    bool meas_drift;
    unsigned fw_version;   /* firmware updates applied (vtsm_dev_firmware_update) */
    unsigned flrs;         /* function-level resets done */
    unsigned meas_patches; /* control meas-change: firmware patched, version unchanged */
    uint8_t *msg;          /* SPDM response under construction (DEV_MSG_MAX) */
    uint8_t *plain;        /* decrypted secured request (DEV_MSG_MAX) */
};

/* One SPDM request being answered. */
struct dev_req {
    const uint8_t *msg; /* the whole SPDM message; may carry up to 3 DOE padding bytes */
    size_t len;
    uint8_t version;
    uint8_t code;
    uint8_t param1;
    uint8_t param2;
    struct dev_session *sess; /* the session the request arrived in, NULL in the clear */
    /* Set by dev_refuse(): the ERROR the core sends instead of a response. */
    uint8_t err_code;
    uint8_t err_data;
    uint8_t err_ext[4];
    size_t err_ext_len;
    uint8_t err_version; /* 0: the core picks (negotiated version, else 0x10) */
    /* Set by a responder that must not answer at all (a fault): the core sends nothing
     * and vtsm_dev_handle() returns the responder's error status. */
    bool drop;
    /* A large request reassembled from CHUNK_SEND: its response travels in the last
     * CHUNK_SEND_ACK, which takes rsp_reserve bytes of header before it. */
    bool nested;
    size_t rsp_reserve;
};

typedef vtsm_status (*dev_rsp_fn)(struct vtsm_dev *d, struct dev_req *q, struct vtsm_wr *w);

/*
 * Record the SPDM ERROR (ErrorCode, ErrorData) to send for q and return st with a
 * vtsm_fail() detail. Use as `return dev_refuse(...)`.
 */
vtsm_status dev_refuse(struct dev_req *q, uint8_t spdm_err, uint8_t err_data, vtsm_status st,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* The same, refused under a rule of the device (vtsm_refuse()). */
vtsm_status dev_refuse_rule(struct dev_req *q, uint8_t spdm_err, uint8_t err_data, vtsm_status st,
                            enum vtsm_rule rule, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* The request's exact length ends at r->off: what follows may only be DOE dword padding
 * (fewer than 4 zero bytes, and only outside a secured message). InvalidRequest else. */
vtsm_status dev_req_end(struct dev_req *q, const struct vtsm_rd *r);

/* Responder header: SPDMVersion = the request's, RequestResponseCode, Param1, Param2. */
vtsm_status dev_wr_header(const struct dev_req *q, struct vtsm_wr *w, uint8_t code, uint8_t p1,
                          uint8_t p2);

/* Index of a base hash into dev_slot.chain/digest. */
static inline int dev_hash_index(enum vtsm_hash_alg h)
{
    return h == VTSM_HASH_SHA384 ? 1 : 0;
}

/* The measurement-transcript (L1/L2 message M) buffer of the request's context. */
struct vtsm_buf *dev_l1l2(struct vtsm_dev *d, const struct dev_req *q);

/* Terminate the secure session: wipe keys and transcripts, back to no session. */
void dev_session_end(struct vtsm_dev *d);
/* TEST ONLY (--key-log): log one secret as "secret <label> <hex>"; no-op without a log. */
void dev_secret_log(const struct vtsm_dev *d, const char *label, const uint8_t *p, size_t n);
/* Log every secret of the session's key schedule (after it changed). */
void dev_secret_log_ks(const struct vtsm_dev *d, const struct vtsm_spdm_ks *ks);
/* Back to DEV_CONN_NONE state with everything negotiated forgotten (keeps slots/config). */
void dev_conn_reset(struct vtsm_dev *d);

static inline bool dev_fault(const struct vtsm_dev *d, enum vtsm_dev_fault f)
{
    return (d->cfg.faults & VTSM_DEV_FAULT_BIT(f)) != 0;
}

/*
 * Answer one SPDM message: the response, or the ERROR for a refusal, lands in d->msg
 * (*out_len bytes). A response larger than one message may carry (dev_send_limit, less
 * q->rsp_reserve) is kept for CHUNK_GET and announced by ERROR(LargeResponse) when
 * chunking is negotiated. Only a local failure to build any message, or a dropped request,
 * is returned as an error.
 */
vtsm_status dev_dispatch(struct vtsm_dev *d, struct dev_req *q, size_t *out_len);

/* Chunking (rsp_chunk.c). CHUNK_CAP on both sides, 1.2+. */
bool dev_chunking(const struct vtsm_dev *d);
/* The largest SPDM message the device sends: min(its own DataTransferSize, the
 * requester's). */
uint32_t dev_send_limit(const struct vtsm_dev *d);
void dev_chunk_drop(struct dev_chunk *c);
/* Keep rsp (len bytes, q's context) for CHUNK_GET; *handle names it. */
vtsm_status dev_chunk_stash(struct vtsm_dev *d, const struct dev_req *q, const uint8_t *rsp,
                            size_t len, uint8_t *handle);
vtsm_status dev_rsp_chunk_send(struct vtsm_dev *d, struct dev_req *q, struct vtsm_wr *w);
vtsm_status dev_rsp_chunk_get(struct vtsm_dev *d, struct dev_req *q, struct vtsm_wr *w);

/* Per-request responders (DSP0274 message names). */
/* Function-level reset of TDI i (rule DEVTDI.7): CONFIG_UNLOCKED, nonce and report dropped. */
vtsm_status dev_tdi_flr(struct vtsm_dev *d, unsigned i);
vtsm_status dev_rsp_version(struct vtsm_dev *d, struct dev_req *q, struct vtsm_wr *w);
vtsm_status dev_rsp_capabilities(struct vtsm_dev *d, struct dev_req *q, struct vtsm_wr *w);
vtsm_status dev_rsp_algorithms(struct vtsm_dev *d, struct dev_req *q, struct vtsm_wr *w);
vtsm_status dev_rsp_digests(struct vtsm_dev *d, struct dev_req *q, struct vtsm_wr *w);
vtsm_status dev_rsp_certificate(struct vtsm_dev *d, struct dev_req *q, struct vtsm_wr *w);
vtsm_status dev_rsp_measurements(struct vtsm_dev *d, struct dev_req *q, struct vtsm_wr *w);
vtsm_status dev_rsp_key_exchange(struct vtsm_dev *d, struct dev_req *q, struct vtsm_wr *w);
vtsm_status dev_rsp_finish(struct vtsm_dev *d, struct dev_req *q, struct vtsm_wr *w);
vtsm_status dev_rsp_end_session(struct vtsm_dev *d, struct dev_req *q, struct vtsm_wr *w);
vtsm_status dev_rsp_key_update(struct vtsm_dev *d, struct dev_req *q, struct vtsm_wr *w);
vtsm_status dev_rsp_heartbeat(struct vtsm_dev *d, struct dev_req *q, struct vtsm_wr *w);
vtsm_status dev_rsp_challenge(struct vtsm_dev *d, struct dev_req *q, struct vtsm_wr *w);
/* CAPABILITIES Flags the device sends (DEV_RSP_CAPS plus the configured KEY_UPD / HBEAT). */
uint32_t dev_rsp_caps(const struct vtsm_dev *d);
vtsm_status dev_rsp_vendor(struct vtsm_dev *d, struct dev_req *q, struct vtsm_wr *w);

/* Measurement blocks (dev_meas.c). */
/* Largest MeasurementHashAlgo digest the device makes (SHA-512). */
#define DEV_MEAS_DIGEST_MAX 64
/* Append the block for cfg.meas[i] in the form requested (raw or digest with meas_hash). */
vtsm_status dev_meas_block(const struct vtsm_dev *d, size_t i, bool raw_requested,
                           struct vtsm_wr *w);
/* MeasurementSummaryHash of type (1 = TCB, 0xFF = all) with the base hash into out. */
vtsm_status dev_meas_summary(const struct vtsm_dev *d, uint8_t type, uint8_t *out);

/* PCI-SIG protocol responders (rsp_idekm.c, rsp_tdisp.c): payload/len is the
 * vendor-defined request payload from the protocol ID on; the response payload (from the
 * protocol ID on) goes to w. Refusals at the SPDM level go through dev_refuse(). */
vtsm_status dev_rsp_idekm(struct vtsm_dev *d, struct dev_req *q, const uint8_t *payload, size_t len,
                          struct vtsm_wr *w);
vtsm_status dev_rsp_tdisp(struct vtsm_dev *d, struct dev_req *q, const uint8_t *payload, size_t len,
                          struct vtsm_wr *w);

/* IDE state (dev_ide.c). */
vtsm_status dev_ide_init(struct vtsm_dev *d);
void dev_ide_free(struct vtsm_dev *d);
/* Wipe one key slot (K_SET_STOP, KEY_PROG replacing it). */
void dev_ide_slot_wipe(struct dev_ide_slot *s);
/* The block carrying Stream ID id; with bind, an idle block takes the ID if none carries
 * it (logged). NULL: no such block (rule IDEKM.3). */
struct dev_ide_stream *dev_ide_stream_find(struct vtsm_dev *d, unsigned id, bool bind);
const struct dev_ide_stream *dev_ide_stream_get(const struct vtsm_dev *d, unsigned id);
/* Link frame kind 6: the Link IDE stream of TC tc takes Stream ID id. VTSM_OK, or a
 * status with *why naming the reason (rule LINK.6). */
vtsm_status dev_ide_link_bind(struct vtsm_dev *d, unsigned tc, unsigned id, const char **why);
/* The QUERY_RESP contents for port 0 (sel points to n_sel blocks the caller provides). */
vtsm_status dev_ide_query(const struct vtsm_dev *d, struct vtsm_idekm_query_resp *r,
                          struct vtsm_idekm_sel_block *sel, unsigned n_sel);

/* TDIs (dev_tdi.c). */
vtsm_status dev_tdi_init(struct vtsm_dev *d);
void dev_tdi_free(struct vtsm_dev *d);
/* The one writer of a TDI's state: refuses (E_STATE, naming the rule) any move not in the
 * TDISP transition table. */
vtsm_status dev_tdi_set_state(struct dev_tdi *t, uint8_t to, const char *why);
/* Build TDI i's interface report from its lock parameters (faults applied). */
vtsm_status dev_tdi_build_report(const struct vtsm_dev *d, unsigned i, struct dev_tdi *t);
/* The largest MMIO_REPORTING_OFFSET TDI t's ranges can take without passing 2^64. */
uint64_t dev_tdi_max_mmio_offset(const struct dev_tdi *t);
/* The index of the TDI whose FUNCTION_ID is fid, or -1. */
int dev_tdi_find(const struct vtsm_dev *d, uint32_t fid);
const char *dev_tdi_state_name(uint8_t state);

/* Certificate slots (dev_pki.c). */
vtsm_status dev_slots_load(struct vtsm_dev *d, const struct vtsm_dev_config *c);
void dev_slots_free(struct vtsm_dev *d);

#endif
