/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The socket ABI's numbers and limits (docs/abi.md), without the codec: what the object
 * model and the public API share with the wire (device name length, guest operations,
 * guest request sizes). Public: installed as <vtsm/vtsm_abi_defs.h>; no CBOR.
 */
#ifndef VTSM_ABI_DEFS_H
#define VTSM_ABI_DEFS_H

#define VTSM_ABI_VERSION 1u

#define VTSM_ABI_FRAME_HDR_SIZE 4u
#define VTSM_ABI_FRAME_MAX      (4u << 20)              /* payload bytes per frame */
#define VTSM_ABI_MAX_DEPTH      8u                      /* top-level map is depth 1 */
#define VTSM_ABI_MAX_ITEMS      4096u                   /* data items per message, all levels */
#define VTSM_ABI_MAX_TSTR       (64u << 10)             /* bytes per text string */
#define VTSM_ABI_MAX_BSTR       ((1u << 20) + 16u)      /* bytes per byte string */
#define VTSM_ABI_DEV_MAX        64u                     /* characters in a device name */
#define VTSM_ABI_DEV_BUF        (VTSM_ABI_DEV_MAX + 1u) /* buffer for a device name + NUL */
#define VTSM_ABI_MAX_SLOT       7u                      /* SPDM certificate slots 0..7 */

/* Guest operations carried in a GUEST_REQUEST body ("gop"). */
enum vtsm_abi_gop {
    VTSM_ABI_GOP_LIST = 0x41,        /* TDIs bound to this TVM */
    VTSM_ABI_GOP_INFO = 0x42,        /* report, measurements, chain, state; nonce -> signed token */
    VTSM_ABI_GOP_ACCEPT = 0x43,      /* tdi_validate / start_interface: CONFIG_LOCKED -> RUN */
    VTSM_ABI_GOP_REJECT = 0x44,      /* tell the host side the TVM refuses the TDI */
    VTSM_ABI_GOP_LOCK = 0x45,        /* LOCK a TDI assigned to it: CONFIG_UNLOCKED -> LOCKED */
    VTSM_ABI_GOP_UNLOCK = 0x46,      /* STOP: -> CONFIG_UNLOCKED, reported to the host */
    VTSM_ABI_GOP_DEBUG_READ = 0x47,  /* the TSM's internal view of the TDI */
    VTSM_ABI_GOP_DEBUG_WRITE = 0x48, /* force the TDI to ERROR (TVMs created with debug) */
    /* MMIO_VALIDATE / TDG.MMIO.ACCEPT / RSI_VDEV_VALIDATE_MAPPING: one range, as mapped */
    VTSM_ABI_GOP_MMIO_VALIDATE = 0x4C,
    /* SDTE_WRITE / TDG.DMAR.ACCEPT / RSI_VDEV_DMA_ENABLE: after every range is validated */
    VTSM_ABI_GOP_DMA_ENABLE = 0x4D,
};
/* Guest request scopes ("scope" of the body): the values of Linux's enum
 * pci_tsm_req_scope. Each operation has one (vtsm_abi_gop_scope). */
enum vtsm_abi_scope {
    VTSM_ABI_SCOPE_INFO = 0,         /* read-only: LIST, INFO */
    VTSM_ABI_SCOPE_STATE_CHANGE = 1, /* LOCK, ACCEPT, UNLOCK, REJECT */
    VTSM_ABI_SCOPE_DEBUG_READ = 2,   /* DEBUG_READ */
    VTSM_ABI_SCOPE_DEBUG_WRITE = 3,  /* DEBUG_WRITE */
};
/* Domain separation prefix of the guest signature: sig = ECDSA-P256-SHA256(prefix || body). */
#define VTSM_ABI_GUEST_SIG_PREFIX "vtsm-guest-request-v1"

#define VTSM_ABI_IDE_STREAMS_MAX  8u  /* DEVICE_CONNECT ide_streams: 0..8 */
#define VTSM_ABI_GUEST_KEY_SIZE   65u /* TVM_CREATE guest_key: 0x04 || X || Y (P-256) */
#define VTSM_ABI_GUEST_SIG_SIZE   64u /* GUEST_REQUEST sig: raw r || s */
#define VTSM_ABI_GUEST_NONCE_SIZE 32u /* guest body nonce */
/* ACCEPT body digests (report_digest, measurements_digest, lock_nonce_digest): at most
 * this many bytes (SHA-384); an empty one names "none seen" and never matches. */
#define VTSM_ABI_GUEST_DIGEST_MAX 48u

#endif
