/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Bounded byte cursors. Every read of untrusted bytes in the project goes through
 * struct vtsm_rd, which has exactly one bounds check (vtsm_rd_need). Writers reserve
 * length fields and patch them after the body.
 *
 * Reader failures return VTSM_E_PEER_TRUNCATED and leave the cursor unchanged, so the
 * caller can report which field was short. Writers return VTSM_E_TOO_SMALL.
 */
#ifndef VTSM_BUF_H
#define VTSM_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vtsm_err.h"

/* ---- reader ---- */
struct vtsm_rd {
    const uint8_t *p;
    size_t len;
    size_t off;
};

static inline struct vtsm_rd vtsm_rd_init(const void *p, size_t len)
{
    struct vtsm_rd r = {(const uint8_t *)p, len, 0};
    return r;
}
static inline size_t vtsm_rd_left(const struct vtsm_rd *r)
{
    return r->len - r->off;
}
/* The one bounds check: are n more bytes available? */
vtsm_status vtsm_rd_need(const struct vtsm_rd *r, size_t n);
vtsm_status vtsm_rd_u8(struct vtsm_rd *r, uint8_t *v);
vtsm_status vtsm_rd_le16(struct vtsm_rd *r, uint16_t *v);
vtsm_status vtsm_rd_le24(struct vtsm_rd *r, uint32_t *v);
vtsm_status vtsm_rd_le32(struct vtsm_rd *r, uint32_t *v);
vtsm_status vtsm_rd_le64(struct vtsm_rd *r, uint64_t *v);
vtsm_status vtsm_rd_be32(struct vtsm_rd *r, uint32_t *v);
/* Copy n bytes out. */
vtsm_status vtsm_rd_bytes(struct vtsm_rd *r, void *out, size_t n);
/* Borrow a pointer to the next n bytes (valid as long as the underlying buffer). */
vtsm_status vtsm_rd_ref(struct vtsm_rd *r, const uint8_t **out, size_t n);
vtsm_status vtsm_rd_skip(struct vtsm_rd *r, size_t n);
/* Split off the next n bytes as a sub-reader. */
vtsm_status vtsm_rd_sub(struct vtsm_rd *r, struct vtsm_rd *sub, size_t n);
/* Succeeds only if all bytes were consumed. */
vtsm_status vtsm_rd_end(const struct vtsm_rd *r);

/* ---- fixed-capacity writer over caller memory ---- */
struct vtsm_wr {
    uint8_t *p;
    size_t cap;
    size_t len;
};

static inline struct vtsm_wr vtsm_wr_init(void *p, size_t cap)
{
    struct vtsm_wr w = {(uint8_t *)p, cap, 0};
    return w;
}
vtsm_status vtsm_wr_u8(struct vtsm_wr *w, uint8_t v);
vtsm_status vtsm_wr_le16(struct vtsm_wr *w, uint16_t v);
vtsm_status vtsm_wr_le24(struct vtsm_wr *w, uint32_t v);
vtsm_status vtsm_wr_le32(struct vtsm_wr *w, uint32_t v);
vtsm_status vtsm_wr_le64(struct vtsm_wr *w, uint64_t v);
vtsm_status vtsm_wr_be32(struct vtsm_wr *w, uint32_t v);
vtsm_status vtsm_wr_bytes(struct vtsm_wr *w, const void *src, size_t n);
vtsm_status vtsm_wr_zeros(struct vtsm_wr *w, size_t n);
/* Reserve n bytes (zeroed) and return their offset, for a length field filled later. */
vtsm_status vtsm_wr_reserve(struct vtsm_wr *w, size_t n, size_t *at);
/* Fill a reserved field. */
void vtsm_wr_patch_le16(struct vtsm_wr *w, size_t at, uint16_t v);
void vtsm_wr_patch_le24(struct vtsm_wr *w, size_t at, uint32_t v);
void vtsm_wr_patch_le32(struct vtsm_wr *w, size_t at, uint32_t v);
void vtsm_wr_patch_be32(struct vtsm_wr *w, size_t at, uint32_t v);

/* ---- growable heap buffer (owner frees with vtsm_buf_free / vtsm_buf_wipe) ---- */
struct vtsm_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
};

vtsm_status vtsm_buf_reserve(struct vtsm_buf *b, size_t extra);
vtsm_status vtsm_buf_append(struct vtsm_buf *b, const void *src, size_t n);
vtsm_status vtsm_buf_set(struct vtsm_buf *b, const void *src, size_t n);
void vtsm_buf_reset(struct vtsm_buf *b); /* len = 0, keeps memory */
void vtsm_buf_free(struct vtsm_buf *b);  /* frees (no wipe) */
void vtsm_buf_wipe(struct vtsm_buf *b);  /* zeroises the whole capacity, then frees */

/* ---- little helpers ---- */
static inline void vtsm_put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void vtsm_put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static inline void vtsm_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline uint16_t vtsm_get_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t vtsm_get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint32_t vtsm_get_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

/* Lower-case hex of n bytes into out (2n+1 bytes). */
void vtsm_hex(char *out, const uint8_t *p, size_t n);
/* The one hex decoder: hex (even length, no separators, either case) into out; returns
 * the bytes written, or -1 with the error detail naming the fault (odd length, too long
 * for cap, the first non-hex digit and its 1-based position) and out untouched. */
long vtsm_unhex(uint8_t *out, size_t cap, const char *hex);

#endif
