/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * CBOR heads (RFC 8949 section 3): the one head writer every encoder of ours uses (the
 * ABI codec, COSE_Sign1).
 */
#ifndef VTSM_CBOR_H
#define VTSM_CBOR_H

#include <stdint.h>

#include "vtsm_buf.h"
#include "vtsm_err.h"

/* Major types (RFC 8949 3.1) */
enum vtsm_cbor_major {
    VTSM_CBOR_UINT = 0,
    VTSM_CBOR_NEGINT = 1,
    VTSM_CBOR_BYTES = 2,
    VTSM_CBOR_TEXT = 3,
    VTSM_CBOR_ARRAY = 4,
    VTSM_CBOR_MAP = 5,
    VTSM_CBOR_TAG = 6,
    VTSM_CBOR_SIMPLE = 7,
};

/* Additional information values with a meaning of their own */
#define VTSM_CBOR_AI_FALSE      20
#define VTSM_CBOR_AI_TRUE       21
#define VTSM_CBOR_AI_INDEFINITE 31

/* Append the head of `major` with argument v in its shortest form (preferred
 * serialization, RFC 8949 4.1). */
vtsm_status vtsm_cbor_put_head(struct vtsm_buf *b, unsigned major, uint64_t v);

/* Append an integer (major 0 for v >= 0, major 1 for v < 0). */
vtsm_status vtsm_cbor_put_int(struct vtsm_buf *b, int64_t v);

/* Append a byte or text string: its head, then its n bytes. */
vtsm_status vtsm_cbor_put_str(struct vtsm_buf *b, unsigned major, const void *p, size_t n);

#endif
