/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The body of a GUEST_REQUEST (docs/abi.md section 9.2), decoded into a C struct: the
 * TSM's object model takes the struct and never sees the CBOR.
 */
#ifndef VTSM_ABI_GUEST_H
#define VTSM_ABI_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vtsm_abi_defs.h"
#include "vtsm_err.h"

#define VTSM_ABI_GUEST_REASON_MAX 1024u /* bytes of a REJECT reason */

struct vtsm_abi_guest_body {
    uint32_t gop; /* VTSM_ABI_GOP_* */
    uint32_t tvm;
    uint64_t seq;
    bool has_dev;
    char dev[VTSM_ABI_DEV_BUF];
    bool has_tdi;
    uint32_t tdi;
    bool has_nonce;
    uint8_t nonce[VTSM_ABI_GUEST_NONCE_SIZE];
    bool has_reason;
    char reason[VTSM_ABI_GUEST_REASON_MAX + 1];
    bool has_scope;
    uint32_t scope; /* enum vtsm_abi_scope; when present, the operation's (GUEST.5) */
    /* ACCEPT: what the guest verified (docs/abi.md 9.5); each 0..48 bytes */
    bool has_binding;
    uint8_t report_digest[VTSM_ABI_GUEST_DIGEST_MAX];
    size_t report_digest_len;
    uint8_t meas_digest[VTSM_ABI_GUEST_DIGEST_MAX];
    size_t meas_digest_len;
    uint8_t lock_digest[VTSM_ABI_GUEST_DIGEST_MAX];
    size_t lock_digest_len;
    /* MMIO_VALIDATE: the range (index in the report), the GPA and size the guest expects,
     * and whether it takes the range as private (TEE) memory (absent: true) */
    bool has_mmio;
    uint32_t range;
    uint64_t gpa;
    uint64_t pages;
    bool priv;
};

/*
 * Decode body[0..len): one valid bounded CBOR map (vtsm_abi_decode; E_ABI_MALFORMED) with
 * only the body's keys, each of its type, gop a guest operation, tvm and tdi <= UINT32_MAX,
 * dev a PCI address (canonical on return; rule PDEV.30), nonce 32 bytes, reason at most 1024
 * bytes (E_ABI_ARG), and
 * exactly the keys the operation takes: LIST none of dev/tdi/nonce/reason; INFO dev, tdi,
 * ? nonce; ACCEPT dev, tdi, report_digest, measurements_digest, lock_nonce_digest (each
 * a bstr of 0..48 bytes); REJECT dev, tdi, ? reason; MMIO_VALIDATE dev, tdi, range (0..63),
 * gpa, pages (1..2^32-1), ? private; DMA_ENABLE dev, tdi (E_ABI_ARG, rule GUEST.4). Every
 * detail starts "guest request body". On failure *out is zeroed.
 */
vtsm_status vtsm_abi_guest_body_decode(const uint8_t *body, size_t len,
                                       struct vtsm_abi_guest_body *out);

#endif
