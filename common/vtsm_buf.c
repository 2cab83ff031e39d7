/* SPDX-License-Identifier: BSD-3-Clause */
#include "vtsm_buf.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

vtsm_status vtsm_rd_need(const struct vtsm_rd *r, size_t n)
{
    if (r->off > r->len || n > r->len - r->off)
        return VTSM_E_PEER_TRUNCATED;
    return VTSM_OK;
}

vtsm_status vtsm_rd_u8(struct vtsm_rd *r, uint8_t *v)
{
    if (vtsm_rd_need(r, 1))
        return VTSM_E_PEER_TRUNCATED;
    *v = r->p[r->off++];
    return VTSM_OK;
}

vtsm_status vtsm_rd_le16(struct vtsm_rd *r, uint16_t *v)
{
    if (vtsm_rd_need(r, 2))
        return VTSM_E_PEER_TRUNCATED;
    *v = vtsm_get_le16(r->p + r->off);
    r->off += 2;
    return VTSM_OK;
}

vtsm_status vtsm_rd_le24(struct vtsm_rd *r, uint32_t *v)
{
    if (vtsm_rd_need(r, 3))
        return VTSM_E_PEER_TRUNCATED;
    const uint8_t *p = r->p + r->off;
    *v = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16);
    r->off += 3;
    return VTSM_OK;
}

vtsm_status vtsm_rd_le32(struct vtsm_rd *r, uint32_t *v)
{
    if (vtsm_rd_need(r, 4))
        return VTSM_E_PEER_TRUNCATED;
    *v = vtsm_get_le32(r->p + r->off);
    r->off += 4;
    return VTSM_OK;
}

vtsm_status vtsm_rd_le64(struct vtsm_rd *r, uint64_t *v)
{
    if (vtsm_rd_need(r, 8))
        return VTSM_E_PEER_TRUNCATED;
    *v =
        (uint64_t)vtsm_get_le32(r->p + r->off) | ((uint64_t)vtsm_get_le32(r->p + r->off + 4) << 32);
    r->off += 8;
    return VTSM_OK;
}

vtsm_status vtsm_rd_be32(struct vtsm_rd *r, uint32_t *v)
{
    if (vtsm_rd_need(r, 4))
        return VTSM_E_PEER_TRUNCATED;
    *v = vtsm_get_be32(r->p + r->off);
    r->off += 4;
    return VTSM_OK;
}

vtsm_status vtsm_rd_bytes(struct vtsm_rd *r, void *out, size_t n)
{
    if (vtsm_rd_need(r, n))
        return VTSM_E_PEER_TRUNCATED;
    if (n)
        memcpy(out, r->p + r->off, n);
    r->off += n;
    return VTSM_OK;
}

vtsm_status vtsm_rd_ref(struct vtsm_rd *r, const uint8_t **out, size_t n)
{
    if (vtsm_rd_need(r, n))
        return VTSM_E_PEER_TRUNCATED;
    *out = r->p + r->off;
    r->off += n;
    return VTSM_OK;
}

vtsm_status vtsm_rd_skip(struct vtsm_rd *r, size_t n)
{
    if (vtsm_rd_need(r, n))
        return VTSM_E_PEER_TRUNCATED;
    r->off += n;
    return VTSM_OK;
}

vtsm_status vtsm_rd_sub(struct vtsm_rd *r, struct vtsm_rd *sub, size_t n)
{
    if (vtsm_rd_need(r, n))
        return VTSM_E_PEER_TRUNCATED;
    *sub = vtsm_rd_init(r->p + r->off, n);
    r->off += n;
    return VTSM_OK;
}

vtsm_status vtsm_rd_end(const struct vtsm_rd *r)
{
    return r->off == r->len ? VTSM_OK : VTSM_E_PEER_MALFORMED;
}

static vtsm_status wr_need(const struct vtsm_wr *w, size_t n)
{
    if (w->len > w->cap || n > w->cap - w->len)
        return VTSM_E_TOO_SMALL;
    return VTSM_OK;
}

vtsm_status vtsm_wr_u8(struct vtsm_wr *w, uint8_t v)
{
    if (wr_need(w, 1))
        return VTSM_E_TOO_SMALL;
    w->p[w->len++] = v;
    return VTSM_OK;
}

vtsm_status vtsm_wr_le16(struct vtsm_wr *w, uint16_t v)
{
    if (wr_need(w, 2))
        return VTSM_E_TOO_SMALL;
    vtsm_put_le16(w->p + w->len, v);
    w->len += 2;
    return VTSM_OK;
}

vtsm_status vtsm_wr_le24(struct vtsm_wr *w, uint32_t v)
{
    if (wr_need(w, 3) || v > 0xFFFFFFu)
        return VTSM_E_TOO_SMALL;
    w->p[w->len] = (uint8_t)v;
    w->p[w->len + 1] = (uint8_t)(v >> 8);
    w->p[w->len + 2] = (uint8_t)(v >> 16);
    w->len += 3;
    return VTSM_OK;
}

vtsm_status vtsm_wr_le32(struct vtsm_wr *w, uint32_t v)
{
    if (wr_need(w, 4))
        return VTSM_E_TOO_SMALL;
    vtsm_put_le32(w->p + w->len, v);
    w->len += 4;
    return VTSM_OK;
}

vtsm_status vtsm_wr_le64(struct vtsm_wr *w, uint64_t v)
{
    if (wr_need(w, 8))
        return VTSM_E_TOO_SMALL;
    vtsm_put_le32(w->p + w->len, (uint32_t)v);
    vtsm_put_le32(w->p + w->len + 4, (uint32_t)(v >> 32));
    w->len += 8;
    return VTSM_OK;
}

vtsm_status vtsm_wr_be32(struct vtsm_wr *w, uint32_t v)
{
    if (wr_need(w, 4))
        return VTSM_E_TOO_SMALL;
    vtsm_put_be32(w->p + w->len, v);
    w->len += 4;
    return VTSM_OK;
}

vtsm_status vtsm_wr_bytes(struct vtsm_wr *w, const void *src, size_t n)
{
    if (wr_need(w, n))
        return VTSM_E_TOO_SMALL;
    if (n)
        memcpy(w->p + w->len, src, n);
    w->len += n;
    return VTSM_OK;
}

vtsm_status vtsm_wr_zeros(struct vtsm_wr *w, size_t n)
{
    if (wr_need(w, n))
        return VTSM_E_TOO_SMALL;
    if (n)
        memset(w->p + w->len, 0, n);
    w->len += n;
    return VTSM_OK;
}

vtsm_status vtsm_wr_reserve(struct vtsm_wr *w, size_t n, size_t *at)
{
    if (wr_need(w, n))
        return VTSM_E_TOO_SMALL;
    *at = w->len;
    return vtsm_wr_zeros(w, n);
}

void vtsm_wr_patch_le16(struct vtsm_wr *w, size_t at, uint16_t v)
{
    vtsm_put_le16(w->p + at, v);
}

void vtsm_wr_patch_le24(struct vtsm_wr *w, size_t at, uint32_t v)
{
    w->p[at] = (uint8_t)v;
    w->p[at + 1] = (uint8_t)(v >> 8);
    w->p[at + 2] = (uint8_t)(v >> 16);
}

void vtsm_wr_patch_le32(struct vtsm_wr *w, size_t at, uint32_t v)
{
    vtsm_put_le32(w->p + at, v);
}

void vtsm_wr_patch_be32(struct vtsm_wr *w, size_t at, uint32_t v)
{
    vtsm_put_be32(w->p + at, v);
}

vtsm_status vtsm_buf_reserve(struct vtsm_buf *b, size_t extra)
{
    if (extra > SIZE_MAX / 2 - b->len)
        return VTSM_E_NOMEM;
    size_t need = b->len + extra;
    if (need <= b->cap)
        return VTSM_OK;
    size_t ncap = b->cap ? b->cap : 64;
    while (ncap < need)
        ncap *= 2;
    /* Never realloc: the old block may hold secrets and must be wiped. */
    uint8_t *n = malloc(ncap);
    if (!n)
        return VTSM_E_NOMEM;
    if (b->len)
        memcpy(n, b->data, b->len);
    if (b->data) {
        OPENSSL_cleanse(b->data, b->cap);
        free(b->data);
    }
    b->data = n;
    b->cap = ncap;
    return VTSM_OK;
}

vtsm_status vtsm_buf_append(struct vtsm_buf *b, const void *src, size_t n)
{
    if (n == 0)
        return VTSM_OK;
    vtsm_status st = vtsm_buf_reserve(b, n);
    if (st)
        return st;
    memcpy(b->data + b->len, src, n);
    b->len += n;
    return VTSM_OK;
}

vtsm_status vtsm_buf_set(struct vtsm_buf *b, const void *src, size_t n)
{
    vtsm_buf_reset(b);
    return vtsm_buf_append(b, src, n);
}

void vtsm_buf_reset(struct vtsm_buf *b)
{
    b->len = 0;
}

void vtsm_buf_free(struct vtsm_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void vtsm_buf_wipe(struct vtsm_buf *b)
{
    if (b->data)
        OPENSSL_cleanse(b->data, b->cap);
    vtsm_buf_free(b);
}

void vtsm_hex(char *out, const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 0xF];
    }
    out[2 * n] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long vtsm_unhex(uint8_t *out, size_t cap, const char *hex)
{
    size_t n = strlen(hex);
    if (n % 2) {
        vtsm_fail(VTSM_E_INVAL, "%zu hex digits, not an even number", n);
        return -1;
    }
    if (n / 2 > cap) {
        vtsm_fail(VTSM_E_INVAL, "%zu bytes, at most %zu", n / 2, cap);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (hexval(hex[i]) < 0) {
            vtsm_fail(VTSM_E_INVAL, "'%c' at position %zu is not a hex digit", hex[i], i + 1);
            return -1;
        }
    }
    for (size_t i = 0; i < n / 2; i++)
        out[i] = (uint8_t)(hexval(hex[2 * i]) << 4 | hexval(hex[2 * i + 1]));
    return (long)(n / 2);
}
