/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The emulated TDISP device: an SPDM responder (DSP0274 1.2 / 1.3, DSP0277 secured
 * messages) behind a PCI DOE mailbox (PCIe 6.30). One whole DOE data object goes in, one
 * whole DOE data object comes out; the caller (tsm-devemu, or a test linking the library
 * in-process) moves the bytes.
 *
 * The device owns its state: the negotiated connection (VCA), the secure session, its keys
 * and sequence numbers. A transport connection coming and going changes none of it.
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
#include "vtsm_status.h"

#define VTSM_DEV_MAX_SLOTS      8
#define VTSM_DEV_MAX_MEAS       16
#define VTSM_DEV_MEAS_VALUE_MAX 128

/* vtsm_dev_config.versions */
#define VTSM_DEV_VER_12 (1u << 0)
#define VTSM_DEV_VER_13 (1u << 1)

/*
 * Fault injection. Each fault is deterministic; devemu/README.md names the message each
 * one hits. vtsm_dev_config.faults is a mask of VTSM_DEV_FAULT_BIT(f).
 */
enum vtsm_dev_fault {
    VTSM_DEV_FAULT_BAD_KEX_SIGNATURE = 0, /* "bad-kex-signature" */
    VTSM_DEV_FAULT_BAD_MEAS_SIGNATURE,    /* "bad-meas-signature" */
    VTSM_DEV_FAULT_UNTRUSTED_CHAIN,       /* "untrusted-chain" */
    VTSM_DEV_FAULT_TRUNCATE_DOE,          /* "truncate-doe" */
    VTSM_DEV_FAULT_OVERSIZE_DOE,          /* "oversize-doe" */
    VTSM_DEV_FAULT_MISALIGN_DOE,          /* "misalign-doe" */
    VTSM_DEV_FAULT_ERROR_KEX,             /* "error-kex" */
    VTSM_DEV_FAULT_UNEXPECTED_CODE,       /* "unexpected-code" */
    VTSM_DEV_FAULT_WRONG_SESSION_ID,      /* "wrong-session-id" */
    VTSM_DEV_FAULT_REPLAY,                /* "replay" */
    VTSM_DEV_FAULT_TAMPER,                /* "tamper" */
    VTSM_DEV_FAULT_NOT_READY,             /* "not-ready" */
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

struct vtsm_dev_config {
    uint32_t versions;       /* VTSM_DEV_VER_*; default both */
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
    unsigned num_tdis;           /* TDIs behind this device (kept for the TDISP responder) */
    uint32_t faults;             /* mask of VTSM_DEV_FAULT_BIT() */
};

/* Fill c with the defaults above. */
void vtsm_dev_config_default(struct vtsm_dev_config *c);

struct vtsm_dev;

/* Create a device. Every argument is checked first (E_CONFIG names the bad field); keys
 * and chains are copied in. The caller frees *out with vtsm_dev_free. */
vtsm_status vtsm_dev_new(const struct vtsm_dev_config *c, struct vtsm_dev **out);

/*
 * Handle one whole DOE data object (req, len) and write the device's whole DOE data object
 * into rsp (reset, then filled; the caller owns rsp). A request the device must not answer
 * at all (a DOE object that does not parse, an unknown data object type, a secured message
 * for no session) returns an error status and leaves rsp empty. Every SPDM-level refusal
 * is an answer: VTSM_OK with an SPDM ERROR message in rsp.
 */
vtsm_status vtsm_dev_handle(struct vtsm_dev *d, const uint8_t *req, size_t len,
                            struct vtsm_buf *rsp);

/* Wipe every key and secret and free. NULL is fine. */
void vtsm_dev_free(struct vtsm_dev *d);

#endif
