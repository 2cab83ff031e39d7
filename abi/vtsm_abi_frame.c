/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ABI framing: 4-byte big-endian length + one CBOR message (docs/abi.md "Frames").
 */
#include "vtsm_abi.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "vtsm_guard.h"
#include "vtsm_sock.h"

/* The one check of a frame's announced length. */
static vtsm_status check_frame_len(uint32_t n)
{
    VTSM_ENSURE(n != 0, VTSM_E_ABI_MALFORMED, "frame length 0");
    VTSM_ENSURE(n <= VTSM_ABI_FRAME_MAX, VTSM_E_ABI_OVERSIZED,
                "frame announces %u bytes, limit is %u", n, VTSM_ABI_FRAME_MAX);
    return VTSM_OK;
}

vtsm_status vtsm_abi_send(int fd, const cbor_item_t *map)
{
    struct vtsm_buf frame = {0};
    vtsm_status st = vtsm_abi_encode(map, &frame);
    if (st == VTSM_OK)
        st = vtsm_fd_write_full(fd, frame.data, frame.len);
    vtsm_buf_free(&frame);
    return st;
}

vtsm_status vtsm_abi_recv(int fd, cbor_item_t **out, int timeout_ms)
{
    VTSM_ENSURE(out, VTSM_E_INVAL, "out is NULL");
    *out = NULL;
    uint8_t hdr[VTSM_ABI_FRAME_HDR_SIZE];
    VTSM_GUARD(vtsm_fd_read_full(fd, hdr, sizeof(hdr), timeout_ms));
    uint32_t n = vtsm_get_be32(hdr);
    VTSM_GUARD(check_frame_len(n));
    struct vtsm_buf body = {0};
    vtsm_status st = vtsm_buf_reserve(&body, n);
    if (st == VTSM_OK) {
        st = vtsm_fd_read_full(fd, body.data, n, timeout_ms);
        if (st == VTSM_E_CLOSED)
            st = vtsm_fail(VTSM_E_IO, "peer closed the connection mid-frame");
    }
    if (st == VTSM_OK)
        st = vtsm_abi_decode(body.data, n, out);
    vtsm_buf_free(&body);
    return st;
}

/* ---- incremental reader ---- */

void vtsm_abi_reader_init(struct vtsm_abi_reader *r)
{
    memset(r, 0, sizeof(*r));
}

void vtsm_abi_reader_free(struct vtsm_abi_reader *r)
{
    vtsm_buf_free(&r->buf);
    r->failed = false;
}

bool vtsm_abi_reader_partial(const struct vtsm_abi_reader *r)
{
    return r->buf.len > 0;
}

bool vtsm_abi_reader_frame(const struct vtsm_abi_reader *r, const uint8_t **p, size_t *len)
{
    if (r->failed || r->buf.len < VTSM_ABI_FRAME_HDR_SIZE)
        return false;
    uint32_t n = vtsm_get_be32(r->buf.data);
    if (n > VTSM_ABI_FRAME_MAX || r->buf.len - VTSM_ABI_FRAME_HDR_SIZE < n)
        return false;
    *p = r->buf.data;
    *len = VTSM_ABI_FRAME_HDR_SIZE + (size_t)n;
    return true;
}

vtsm_status vtsm_abi_reader_feed(struct vtsm_abi_reader *r, const uint8_t *p, size_t len)
{
    if (!len)
        return VTSM_OK;
    return vtsm_buf_append(&r->buf, p, len);
}

/* Drop the first n buffered bytes. */
static void consume(struct vtsm_abi_reader *r, size_t n)
{
    memmove(r->buf.data, r->buf.data + n, r->buf.len - n);
    r->buf.len -= n;
}

vtsm_status vtsm_abi_reader_next(struct vtsm_abi_reader *r, cbor_item_t **out)
{
    VTSM_ENSURE(out, VTSM_E_INVAL, "out is NULL");
    *out = NULL;
    VTSM_ENSURE(!r->failed, VTSM_E_ABI_OVERSIZED, "stream unusable after an oversized frame");
    if (r->buf.len < VTSM_ABI_FRAME_HDR_SIZE)
        return VTSM_OK;
    uint32_t n = vtsm_get_be32(r->buf.data);
    vtsm_status st = check_frame_len(n);
    if (st == VTSM_E_ABI_OVERSIZED) {
        r->failed = true;
        vtsm_buf_free(&r->buf);
        return st;
    }
    if (st != VTSM_OK) { /* length 0: an empty, well-delimited frame */
        consume(r, VTSM_ABI_FRAME_HDR_SIZE);
        return st;
    }
    if (r->buf.len - VTSM_ABI_FRAME_HDR_SIZE < n)
        return VTSM_OK;
    st = vtsm_abi_decode(r->buf.data + VTSM_ABI_FRAME_HDR_SIZE, n, out);
    consume(r, VTSM_ABI_FRAME_HDR_SIZE + (size_t)n);
    return st;
}

vtsm_status vtsm_abi_reader_read(struct vtsm_abi_reader *r, int fd, cbor_item_t **out)
{
    for (;;) {
        VTSM_GUARD(vtsm_abi_reader_next(r, out));
        if (*out)
            return VTSM_OK;
        /* read at most the rest of the current frame (or its header): the reader never
         * holds more than one frame that was not asked for */
        size_t want = VTSM_ABI_FRAME_HDR_SIZE - r->buf.len;
        if (r->buf.len >= VTSM_ABI_FRAME_HDR_SIZE)
            want = VTSM_ABI_FRAME_HDR_SIZE + (size_t)vtsm_get_be32(r->buf.data) - r->buf.len;
        if (want > 65536)
            want = 65536;
        VTSM_GUARD(vtsm_buf_reserve(&r->buf, want));
        ssize_t k = read(fd, r->buf.data + r->buf.len, want);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return VTSM_OK; /* need more */
            return vtsm_fail(errno == ECONNRESET ? VTSM_E_CLOSED : VTSM_E_IO, "read: %s",
                             strerror(errno));
        }
        if (k == 0)
            return r->buf.len ? vtsm_fail(VTSM_E_IO, "peer closed the connection mid-frame")
                              : vtsm_fail(VTSM_E_CLOSED, "peer closed the connection");
        r->buf.len += (size_t)k;
    }
}
