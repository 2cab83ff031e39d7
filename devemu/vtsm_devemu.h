/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The emulated TDISP device: an SPDM responder (DSP0274 1.2 / 1.3, DSP0277 secured
 * messages) behind a PCI DOE mailbox (PCIe 6.30), with IDE_KM and TDISP responders inside
 * the secure session and one end of a simulated IDE link. One whole DOE data object (or
 * one link frame) goes in, one whole DOE data object (or link frame) comes out; the caller
 * (tsm-devemu, or a test linking the library in-process) moves the bytes.
 *
 * The device owns its state: the negotiated connection (VCA), the secure session, its keys
 * and sequence numbers, its IDE streams and keys, its TDIs. A transport connection coming
 * and going changes none of it.
 *
 * Threading: one device is driven by one thread at a time (the caller serialises).
 */
#ifndef VTSM_DEVEMU_H
#define VTSM_DEVEMU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vtsm_buf.h"
#include "vtsm_crypto.h"
#include "vtsm_err.h"

#define VTSM_DEV_MAX_SLOTS      8
#define VTSM_DEV_MAX_MEAS       16
#define VTSM_DEV_MEAS_VALUE_MAX 128
#define VTSM_DEV_MAX_TDIS       255 /* TDIs of one device (DSM) */
#define VTSM_DEV_MAX_RANGES     8   /* MMIO ranges (BARs) of one TDI */
#define VTSM_DEV_MAX_IDE        256 /* selective IDE streams (8-bit count + 1) */

/* vtsm_dev_config.versions */
#define VTSM_DEV_VER_12 (1u << 0)
#define VTSM_DEV_VER_13 (1u << 1)
#define VTSM_DEV_VER_14 (1u << 2)

/*
 * Fault injection. Each fault is deterministic; devemu/README.md names the message each
 * one hits. vtsm_dev_config.faults is a mask of VTSM_DEV_FAULT_BIT(f).
 */
enum vtsm_dev_fault {
    VTSM_DEV_FAULT_BAD_KEX_SIGNATURE = 0,   /* "bad-kex-signature" */
    VTSM_DEV_FAULT_BAD_MEAS_SIGNATURE,      /* "bad-meas-signature" */
    VTSM_DEV_FAULT_UNTRUSTED_CHAIN,         /* "untrusted-chain" */
    VTSM_DEV_FAULT_TRUNCATE_DOE,            /* "truncate-doe" */
    VTSM_DEV_FAULT_OVERSIZE_DOE,            /* "oversize-doe" */
    VTSM_DEV_FAULT_MISALIGN_DOE,            /* "misalign-doe" */
    VTSM_DEV_FAULT_ERROR_KEX,               /* "error-kex" */
    VTSM_DEV_FAULT_UNEXPECTED_CODE,         /* "unexpected-code" */
    VTSM_DEV_FAULT_WRONG_SESSION_ID,        /* "wrong-session-id" */
    VTSM_DEV_FAULT_REPLAY,                  /* "replay" */
    VTSM_DEV_FAULT_TAMPER,                  /* "tamper" */
    VTSM_DEV_FAULT_NOT_READY,               /* "not-ready" */
    VTSM_DEV_FAULT_IDEKM_NAK_KEYPROG,       /* "idekm-nak-keyprog" */
    VTSM_DEV_FAULT_IDEKM_WRONG_STREAM,      /* "idekm-wrong-stream" */
    VTSM_DEV_FAULT_IDEKM_WRONG_KEYSET,      /* "idekm-wrong-keyset" */
    VTSM_DEV_FAULT_IDEKM_WRONG_SUBSTREAM,   /* "idekm-wrong-substream" */
    VTSM_DEV_FAULT_IDEKM_NO_GO_ACK,         /* "idekm-no-go-ack" */
    VTSM_DEV_FAULT_IDEKM_REPLAY_ACK,        /* "idekm-replay-ack" */
    VTSM_DEV_FAULT_TDISP_BAD_NONCE,         /* "tdisp-bad-nonce" */
    VTSM_DEV_FAULT_TDISP_OVERLAP_MMIO,      /* "tdisp-overlap-mmio" */
    VTSM_DEV_FAULT_TDISP_MMIO_OVERFLOW,     /* "tdisp-mmio-overflow" */
    VTSM_DEV_FAULT_TDISP_REPORT_LENGTH,     /* "tdisp-report-length-change" */
    VTSM_DEV_FAULT_TDISP_STATE_DRIFT,       /* "tdisp-state-drift" */
    VTSM_DEV_FAULT_TDISP_ERROR_STATE,       /* "tdisp-error-state" */
    VTSM_DEV_FAULT_KEY_UPDATE_NO_SWITCH,    /* "key-update-no-switch" */
    VTSM_DEV_FAULT_BAD_KEX_POINT,           /* "bad-kex-point" */
    VTSM_DEV_FAULT_BAD_CHALLENGE_SIGNATURE, /* "bad-challenge-signature" */
    VTSM_DEV_FAULT_WRONG_CERT_CHAIN_HASH,   /* "wrong-cert-chain-hash" */
    VTSM_DEV_FAULT_MEAS_DRIFT_AFTER_LOCK,   /* "meas-drift-after-lock" */
    VTSM_DEV_FAULT_COUNT_
};
#define VTSM_DEV_FAULT_BIT(f) (1u << (unsigned)(f))

/* "bad-kex-signature" etc.; NULL for an unknown value. */
const char *vtsm_dev_fault_name(enum vtsm_dev_fault f);
/* Parse a fault name; E_NOT_FOUND if unknown. */
vtsm_status vtsm_dev_fault_parse(const char *name, enum vtsm_dev_fault *out);

/* What a certificate slot holds. */
enum vtsm_dev_slot_kind {
    VTSM_DEV_SLOT_EMPTY = 0,
    VTSM_DEV_SLOT_DEFAULT, /* the embedded test chain for cfg.asym (under the test root) */
    VTSM_DEV_SLOT_ROGUE,   /* the embedded rogue chain for cfg.asym (NOT under the test root) */
    VTSM_DEV_SLOT_PEM,     /* certs_pem + key_pem below */
};

struct vtsm_dev_slot {
    enum vtsm_dev_slot_kind kind;
    /* VTSM_DEV_SLOT_PEM only: the certificates in PEM, root (or first intermediate) first
     * and leaf last, and the leaf's private key in PEM. Borrowed: vtsm_dev_new copies what
     * it needs, the caller keeps ownership. The leaf key must be an EC key of cfg.asym. */
    const char *certs_pem;
    size_t certs_pem_len;
    const char *key_pem;
    size_t key_pem_len;
};

/* One DMTF measurement block (DSP0274 "Measurement block" / "DMTF measurement
 * specification format"). */
struct vtsm_dev_meas {
    uint8_t index; /* 1..0xEF; blocks are reported in configuration order */
    uint8_t type;  /* DMTFSpecMeasurementValueType bits [6:0], e.g. 0 = immutable ROM */
    /* false: the block is always reported as a digest (MeasurementHashAlgo) of value;
     * true:  value is a raw bit stream, reported raw when the requester sets
     *        RawBitStreamRequested and as its digest otherwise. */
    bool raw;
    bool tcb; /* counted in the TCB MeasurementSummaryHash (type 1) */
    uint8_t value[VTSM_DEV_MEAS_VALUE_MAX];
    size_t value_len;
};

/*
 * TEST ONLY (tsm-devemu --key-log): called once for every KEY_PROG the device accepted,
 * with one NUL-terminated line without newline:
 *   "stream S keyset K substream PR|NPR|CPL dir RX|TX key <64 hex> ifv <16 hex>"
 * (key in AES byte order, IFV as a 64-bit number); secret_log likewise for every other
 * secret the device holds, as it is made:
 *   "secret <label> <hex>"
 * for the SPDM session (handshake / master / data secrets, finished keys, per-direction
 * AEAD keys and IVs, after KEY_EXCHANGE, FINISH and each KEY_UPDATE) and TDISP start
 * nonces ("secret tdisp-nonce-<tdi> ..."). The device legitimately knows all of them; the
 * log exists so tests can prove none reaches the host. The line buffer is wiped after the
 * call: the callback must copy what it keeps.
 */
typedef void (*vtsm_dev_key_log_fn)(void *ctx, const char *line);

/* One MMIO range of a TDI as its interface report shows it. */
struct vtsm_dev_range {
    uint64_t size;  /* bytes: a non-zero multiple of 4 KiB */
    uint16_t attrs; /* VTSM_TDISP_RANGE_MSIX_TABLE / _MSIX_PBA / _IS_NON_TEE_MEM */
};

/* One TDI: the function it is (TDISP INTERFACE_ID FUNCTION_ID RID, segment not valid) and
 * its MMIO layout. n_ranges 0: the default layout (16 pages, then the MSI-X table page). */
struct vtsm_dev_tdi {
    uint16_t rid;
    unsigned n_ranges;
    struct vtsm_dev_range ranges[VTSM_DEV_MAX_RANGES];
};
/*
 * A plaintext SPDM message inside a secure session, as the device sees it: the request
 * after decryption (to_host false) and the response before encryption (to_host true).
 * For --trace: the callback may describe the message (vtsm_trace_spdm) but must not keep
 * or print its bytes (a KEY_PROG carries key material); msg is wiped after the call.
 */
typedef void (*vtsm_dev_msg_trace_fn)(void *ctx, bool to_host, uint32_t session_id,
                                      const uint8_t *msg, size_t len);

struct vtsm_dev_config {
    uint32_t versions;       /* VTSM_DEV_VER_*; default 1.2 and 1.3 */
    enum vtsm_asym_alg asym; /* slot keys' algorithm; default ECDSA P-384 */
    enum vtsm_hash_alg hash; /* preferred base hash (both supported); default SHA-384 */
    enum vtsm_dhe_group dhe; /* preferred DHE group (both supported); default secp384r1 */
    enum vtsm_aead_alg aead; /* AES-256-GCM */
    struct vtsm_dev_slot slots[VTSM_DEV_MAX_SLOTS]; /* default: slot 0 = DEFAULT */
    struct vtsm_dev_meas meas[VTSM_DEV_MAX_MEAS];   /* default: 4 deterministic blocks */
    size_t n_meas;
    uint8_t ct_exponent;         /* CTExponent in CAPABILITIES; default 16 */
    uint32_t data_transfer_size; /* DataTransferSize; default 4096 (>= 42) */
    uint32_t max_spdm_msg_size;  /* MaxSPDMmsgSize; default == data_transfer_size (no
                                  * CHUNK_CAP, so the two must be equal) */
    unsigned num_tdis;           /* TDIs tdi[0..num_tdis-1] (<= VTSM_DEV_MAX_TDIS); default 4 */
    struct vtsm_dev_tdi tdi[VTSM_DEV_MAX_TDIS]; /* default: tdi[i].rid = i, default layout;
                                                 * RIDs distinct */
    /* PCI segment of the device's functions (0..255, TDISP's 8-bit Requester Segment):
     * 0 = INTERFACE_IDs carry no segment (Segment Valid clear); otherwise every TDISP
     * request must name this segment with Segment Valid set. Default 0. */
    unsigned segment;
    bool tdisp;                  /* TDISP responder; default true. false: an IDE-only
                                  * (non-TEE-IO) device, TDISP is UnsupportedRequest */
    unsigned ide_streams;        /* selective IDE streams (stream IDs 0..n-1, <= 256);
                                  * default 4; 0: IDE_KM without selective streams */
    uint8_t ide_port_index;      /* the IDE_KM PortIndex of the device's port; default 0 */
    uint8_t ide_max_port_index;  /* MaxPortIndex in QUERY_RESP (>= ide_port_index); default 0 */
    vtsm_dev_key_log_fn key_log; /* TEST ONLY, see above: KEY_PROG keys; default NULL */
    void *key_log_ctx;
    vtsm_dev_key_log_fn secret_log; /* TEST ONLY, see above: "secret" lines; default NULL */
    void *secret_log_ctx;
    vtsm_dev_msg_trace_fn msg_trace; /* in-session plaintext messages; default NULL */
    void *msg_trace_ctx;
    uint32_t faults;          /* mask of VTSM_DEV_FAULT_BIT() */
    bool key_update;          /* KEY_UPD_CAP and KEY_UPDATE; default true */
    bool heartbeat;           /* HBEAT_CAP and HEARTBEAT; default true */
    uint32_t meas_hash;       /* ALGORITHMS MeasurementHashAlgo: SPDM_MEAS_HASH_SHA256,
                               * _SHA384 or _SHA512; default 0: the digest of the
                               * negotiated base hash */
    uint8_t heartbeat_period; /* KEY_EXCHANGE_RSP HeartbeatPeriod in seconds when both
                               * sides set HBEAT_CAP (else 0); default 60. Reported only:
                               * the emulator never times a session out. */
    bool challenge;           /* CHAL_CAP and CHALLENGE; default true */
    /* The IDE Extended Capability QUERY_RESP reports (PCIe 6.x sec. 7.9.26): */
    unsigned ide_link_tcs;   /* Link IDE streams, one per TC, 0..8; default 0 (no Link IDE) */
    unsigned ide_addr_assoc; /* address association blocks per selective stream, 0..15;
                              * default 0 */
    bool ide_tee_limited;    /* TEE-Limited Stream Supported; default false */
    enum vtsm_dev_ide_query_shape {
        VTSM_DEV_IDE_QUERY_SPEC = 0,   /* the registers above, as PCIe lays them out */
        VTSM_DEV_IDE_QUERY_ZERO73 = 1, /* as the DMTF sample responder: IDE Capability 0
                                        * followed by 72 zero DWs (contradicting itself) */
    } ide_query_shape;
    bool msix_pba; /* each TDI reports a third MMIO range, the MSI-X PBA (1 page
                    * after the table, IS_NON_TEE_MEM); default false */
};

/* Fill c with the defaults above. */
void vtsm_dev_config_default(struct vtsm_dev_config *c);

/*
 * The device's topology (devemu/README.md "Topology"): a device security manager (DSM,
 * function 0 at RID `rid`) with `pfs` extra physical functions (RIDs rid+1..rid+pfs) and
 * `vfs` SR-IOV virtual functions (RID rid + vf_offset + i * vf_stride), each a TDI with the
 * layout of pf_bars / vf_bars, then the TDIs listed one by one (`tdi`). Used (any option
 * set), it replaces the default TDIs 0..num_tdis-1.
 */
struct vtsm_dev_topo {
    bool used;
    unsigned rid, pfs, vfs, vf_offset, vf_stride; /* defaults 0, 0, 0, 1, 1 */
    unsigned segment;                             /* default 0 */
    struct vtsm_dev_tdi pf_bars, vf_bars;         /* rid unused */
    unsigned n_tdis;
    struct vtsm_dev_tdi tdis[VTSM_DEV_MAX_TDIS];
};
void vtsm_dev_topo_init(struct vtsm_dev_topo *t);
/* One setting, as the command line option without "--" or a topology file line has it:
 * segment, rid, pfs, vfs, vf-offset, vf-stride, pf-bars, vf-bars, tdi. E_CONFIG names what
 * is wrong. */
vtsm_status vtsm_dev_topo_set(struct vtsm_dev_topo *t, const char *key, const char *value);
/* A topology file: one "KEY VALUE" per line, '#' starts a comment. */
vtsm_status vtsm_dev_topo_file(struct vtsm_dev_topo *t, const char *path);
/* Fill c's TDIs from t (if used): E_CONFIG for RIDs past 0xFFFF, repeated, or too many. */
vtsm_status vtsm_dev_topo_apply(const struct vtsm_dev_topo *t, struct vtsm_dev_config *c);

struct vtsm_dev;

/* Create a device. Every argument is checked first (E_CONFIG names the bad field); keys
 * and chains are copied in. The caller frees *out with vtsm_dev_free. */
vtsm_status vtsm_dev_new(const struct vtsm_dev_config *c, struct vtsm_dev **out);

/*
 * Handle one whole DOE data object (req, len) and write the device's whole DOE data object
 * into rsp (reset, then filled; the caller owns rsp). A request the device must not answer
 * at all (a DOE object that does not parse, an unknown data object type, a secured message
 * for no session, a request a fault drops: E_ABORTED) returns an error status and leaves
 * rsp empty. Every SPDM-level refusal
 * is an answer: VTSM_OK with an SPDM ERROR message in rsp.
 */
vtsm_status vtsm_dev_handle(struct vtsm_dev *d, const uint8_t *req, size_t len,
                            struct vtsm_buf *rsp);
/*
 * Handle one SPDM message outside any session, with no DOE framing (a storage binding
 * carries bare messages): rsp receives the exact response or ERROR message. Errors as
 * vtsm_dev_handle for a request the device must not answer.
 */
vtsm_status vtsm_dev_handle_spdm(struct vtsm_dev *d, const uint8_t *req, size_t len,
                                 struct vtsm_buf *rsp);

/*
 * The simulated IDE link (docs/abi.md section 8.2; frame layout in
 * proto/vtsm_link_frame.h). frame is one link frame as it arrived (untrusted); rsp (reset,
 * then filled; the caller owns it) receives the device's frame:
 *  - a check request (kind 1) for stream S, key set K, sub-stream SS is opened with the
 *    device's RX key of (S, K, SS) - K must be the live key set of (S, SS, RX) and the
 *    frame's counter at least the next one expected (no replays) - and the plaintext goes
 *    back as a check response (kind 2) sealed with the device's TX key of (S, K, SS), whose
 *    key set must be live too, under the device's own TX counter;
 *  - anything the device cannot check (unknown stream, key set not live, MAC mismatch,
 *    replayed counter, a frame of another kind) is answered with a failure frame (kind 3)
 *    echoing stream, key set and sub-stream, VTSM_OK.
 * A frame that does not decode returns its decode error and leaves rsp empty (tsm-devemu
 * answers an empty frame). No secure session is needed: the link is the data path.
 */
vtsm_status vtsm_dev_link(struct vtsm_dev *d, const uint8_t *frame, size_t len,
                          struct vtsm_buf *rsp);

/* Inspection for tests and logs (no secrets). */
/* TDISP state (VTSM_TDI_* of vtsm_tdisp.h) of TDI tdi; E_NOT_FOUND for no such TDI or
 * TDISP disabled. */
vtsm_status vtsm_dev_tdi_state(const struct vtsm_dev *d, unsigned tdi, uint8_t *state);
/* The key set (0/1) live for (stream, substream 0 PR / 1 NPR / 2 CPL, direction), -1 if
 * none or no such stream. */
int vtsm_dev_ide_live_key_set(const struct vtsm_dev *d, unsigned stream, unsigned substream,
                              bool tx);

/* Wipe every key and secret and free. NULL is fine. */
/*
 * Runtime controls (tsm-devemu's control frame, devemu/README.md "Runtime controls").
 *
 * vtsm_dev_firmware_update: a new firmware image is loaded; the firmware measurement
 * blocks (DMTF types 1 and 6) change. Refused (E_STATE, rule DEVTDI.8, nothing changes)
 * while a TDI is CONFIG_LOCKED or RUN with NO_FW_UPDATE; otherwise every locked TDI goes
 * to ERROR (rule DEVTDI.9), and *errored (may be NULL) counts them.
 * vtsm_dev_tdi_fail: a device error on a locked TDI: CONFIG_LOCKED / RUN -> ERROR (rule
 * DEVTDI.10; E_STATE in any other state).
 * vtsm_dev_report_change: TDI tdi's interface report changes (its DEVICE_SPECIFIC_INFO
 * gains " change N"), at once when it holds a report (*locked true; its state stays),
 * else from its next LOCK; for good (a STOP or FLR and a new LOCK build the changed one).
 * vtsm_dev_meas_change: the mutable firmware block (DMTF type 1) measures another image,
 * the version block (type 6) stays; no TDI changes state.
 * vtsm_dev_control: one text command, "fw-update", "meas-change", "tdi-error N", "flr N"
 * or "report-change N"; out gets a one-line answer ("ok ...") on success. E_INVAL for an
 * unknown command.
 */
vtsm_status vtsm_dev_firmware_update(struct vtsm_dev *d, unsigned *errored);
vtsm_status vtsm_dev_tdi_fail(struct vtsm_dev *d, unsigned tdi);
vtsm_status vtsm_dev_report_change(struct vtsm_dev *d, unsigned tdi, bool *locked);
vtsm_status vtsm_dev_meas_change(struct vtsm_dev *d);
vtsm_status vtsm_dev_control(struct vtsm_dev *d, const char *cmd, char *out, size_t cap);
void vtsm_dev_free(struct vtsm_dev *d);

#endif
