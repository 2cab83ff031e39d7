/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DSP0274 1.2+ CHUNK_SEND / CHUNK_SEND_ACK and CHUNK_GET / CHUNK_RESPONSE, with CHUNK_CAP
 * on both sides (the device sets it when its MaxSPDMmsgSize exceeds its DataTransferSize).
 *
 * CHUNK_SEND:     header (Param1 bit 0 LastChunk; Param2 Handle) | ChunkSeqNo (2) |
 *                 Reserved (2) | ChunkSize (4) | LargeMessageSize (4, chunk 0 only) |
 *                 SPDMchunk (ChunkSize)
 * CHUNK_SEND_ACK: header (Param1 bit 0 EarlyErrorDetected, never set here; Param2 Handle) |
 *                 ChunkSeqNo (2) | ResponseToLargeRequest (after the last chunk)
 * CHUNK_GET:      header (Param1 reserved; Param2 Handle) | ChunkSeqNo (2)
 * CHUNK_RESPONSE: header (Param1 bit 0 LastChunk; Param2 Handle) | ChunkSeqNo (2) |
 *                 Reserved (2) | ChunkSize (4) | LargeMessageSize (4, chunk 0 only) |
 *                 SPDMchunk
 *
 * The reassembled request is answered as if it had come whole (dev_dispatch), so its
 * transcripts hold the large message; a response too large for one message is kept here
 * and announced by ERROR(LargeResponse) with its Handle (dev_core.c). Illegal sequences are
 * refused under CHUNK.1 (Handle), CHUNK.2 (ChunkSeqNo), CHUNK.3 (sizes) and end the
 * transfer.
 */
#include <string.h>

#include "dev_internal.h"
#include "vtsm_guard.h"
#include "vtsm_log.h"

#define CHUNK_HDR        12
#define CHUNK_LARGE_SIZE 4
#define CHUNK_ACK_HDR    6
#define CHUNK_ATTR_LAST  0x01

bool dev_chunking(const struct vtsm_dev *d)
{
    return (dev_rsp_caps(d) & SPDM_CAP_CHUNK) && d->conn.state >= DEV_CONN_AFTER_CAPS &&
           (d->conn.req_flags & SPDM_CAP_CHUNK) && d->conn.version >= VTSM_SPDM_V12;
}

uint32_t dev_send_limit(const struct vtsm_dev *d)
{
    uint32_t n = d->cfg.data_transfer_size;
    return d->conn.req_data_transfer_size < n ? d->conn.req_data_transfer_size : n;
}

void dev_chunk_drop(struct dev_chunk *c)
{
    vtsm_buf_wipe(&c->buf);
    memset(c, 0, sizeof(*c));
}

static bool same_context(const struct dev_chunk *c, const struct dev_req *q)
{
    return c->in_session == (q->sess != NULL) && (!q->sess || q->sess->id == c->session_id);
}

vtsm_status dev_chunk_stash(struct vtsm_dev *d, const struct dev_req *q, const uint8_t *rsp,
                            size_t len, uint8_t *handle)
{
    struct dev_chunk *c = &d->chunk_tx;
    dev_chunk_drop(c);
    VTSM_GUARD(vtsm_buf_set(&c->buf, rsp, len));
    c->active = true;
    c->in_session = q->sess != NULL;
    c->session_id = q->sess ? q->sess->id : 0;
    c->handle = d->next_chunk_handle++;
    c->total = (uint32_t)len;
    *handle = c->handle;
    VTSM_INFO("response 0x%02x of %zu bytes exceeds %u bytes: ERROR(LargeResponse) handle %u, "
              "to be fetched by CHUNK_GET",
              rsp[1], len, dev_send_limit(d), c->handle);
    return VTSM_OK;
}

/* The chunk transfer ends with this refusal. */
static vtsm_status chunk_refuse(struct dev_chunk *c, struct dev_req *q, uint8_t err,
                                enum vtsm_rule rule, const char *what, unsigned a, unsigned b)
{
    dev_chunk_drop(c);
    return dev_refuse_rule(q, err, 0, VTSM_E_PEER_MALFORMED, rule, "%s (%u, expected %u)", what, a,
                           b);
}

vtsm_status dev_rsp_chunk_send(struct vtsm_dev *d, struct dev_req *q, struct vtsm_wr *w)
{
    struct dev_chunk *c = &d->chunk_rx;
    struct vtsm_rd r = vtsm_rd_init(q->msg, q->len);
    const bool last = q->param1 & CHUNK_ATTR_LAST;
    const uint8_t handle = q->param2;
    uint16_t seq, rsvd;
    uint32_t size, large = 0;
    const uint8_t *bytes;

    if (!(dev_rsp_caps(d) & SPDM_CAP_CHUNK))
        return dev_refuse(q, SPDM_ERR_UNSUPPORTED_REQUEST, q->code, VTSM_E_UNSUPPORTED,
                          "CHUNK_SEND without CHUNK_CAP");
    if (!dev_chunking(d) || q->nested)
        return dev_refuse(q, SPDM_ERR_UNEXPECTED_REQUEST, 0, VTSM_E_STATE,
                          "CHUNK_SEND from a requester without CHUNK_CAP (or inside a chunk)");
    VTSM_GUARD(vtsm_rd_skip(&r, 4));
    if (vtsm_rd_le16(&r, &seq) || vtsm_rd_le16(&r, &rsvd) || vtsm_rd_le32(&r, &size) ||
        (seq == 0 && vtsm_rd_le32(&r, &large)) || vtsm_rd_ref(&r, &bytes, size)) {
        dev_chunk_drop(c);
        return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_TRUNCATED,
                          "CHUNK_SEND shorter than its fields");
    }
    if (dev_req_end(q, &r) != VTSM_OK) {
        dev_chunk_drop(c);
        return VTSM_E_PEER_MALFORMED;
    }
    if ((q->param1 & ~CHUNK_ATTR_LAST) != 0) {
        dev_chunk_drop(c);
        return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_MALFORMED,
                          "CHUNK_SEND attributes 0x%02x set reserved bits", q->param1);
    }

    if (seq == 0) {
        if (c->active)
            return chunk_refuse(c, q, SPDM_ERR_INVALID_REQUEST, VTSM_RULE_CHUNK_2,
                                "CHUNK_SEND ChunkSeqNo 0 while a transfer is open", seq,
                                c->next_seq);
        if (large > d->cfg.max_spdm_msg_size)
            return chunk_refuse(c, q, SPDM_ERR_REQUEST_TOO_LARGE, VTSM_RULE_CHUNK_3,
                                "CHUNK_SEND LargeMessageSize above MaxSPDMmsgSize", large,
                                d->cfg.max_spdm_msg_size);
        if (large <= d->cfg.data_transfer_size)
            return chunk_refuse(c, q, SPDM_ERR_INVALID_REQUEST, VTSM_RULE_CHUNK_3,
                                "CHUNK_SEND LargeMessageSize not above DataTransferSize", large,
                                d->cfg.data_transfer_size + 1);
        VTSM_GUARD(vtsm_buf_reserve(&c->buf, large));
        c->active = true;
        c->in_session = q->sess != NULL;
        c->session_id = q->sess ? q->sess->id : 0;
        c->handle = handle;
        c->total = large;
        c->next_seq = 0;
        c->chunks = 0;
    } else {
        if (!c->active || !same_context(c, q))
            return chunk_refuse(c, q, SPDM_ERR_INVALID_REQUEST, VTSM_RULE_CHUNK_2,
                                "CHUNK_SEND ChunkSeqNo without a transfer opened by chunk 0", seq,
                                0);
        if (handle != c->handle)
            return chunk_refuse(c, q, SPDM_ERR_INVALID_REQUEST, VTSM_RULE_CHUNK_1,
                                "CHUNK_SEND Handle of another transfer", handle, c->handle);
        if (seq != c->next_seq)
            return chunk_refuse(c, q, SPDM_ERR_INVALID_REQUEST, VTSM_RULE_CHUNK_2,
                                "CHUNK_SEND ChunkSeqNo out of order", seq, c->next_seq);
    }
    if (size == 0 || size > c->total - c->buf.len)
        return chunk_refuse(c, q, SPDM_ERR_INVALID_REQUEST, VTSM_RULE_CHUNK_3,
                            "CHUNK_SEND ChunkSize beyond LargeMessageSize (size, bytes left)", size,
                            (unsigned)(c->total - c->buf.len));
    if (last != (c->buf.len + size == c->total))
        return chunk_refuse(c, q, SPDM_ERR_INVALID_REQUEST, VTSM_RULE_CHUNK_3,
                            "CHUNK_SEND LastChunk disagrees with LargeMessageSize (bytes after "
                            "this chunk, LastChunk)",
                            (unsigned)(c->total - c->buf.len - size), last);
    VTSM_GUARD(vtsm_buf_append(&c->buf, bytes, size));
    c->next_seq++;
    c->chunks++;

    if (!last) {
        VTSM_GUARD(dev_wr_header(q, w, SPDM_CHUNK_SEND_ACK, 0, handle));
        return vtsm_wr_le16(w, seq);
    }

    /* The whole request: answer it as if it had come in one message. */
    struct vtsm_buf msg = c->buf;
    unsigned chunks = c->chunks;
    memset(&c->buf, 0, sizeof(c->buf));
    dev_chunk_drop(c);
    VTSM_INFO("large request 0x%02x of %zu bytes received in %u chunks (CHUNK_SEND)",
              msg.len > 1 ? msg.data[1] : 0, msg.len, chunks);
    struct dev_req inner = {.msg = msg.data,
                            .len = msg.len,
                            .sess = q->sess,
                            .nested = true,
                            .rsp_reserve = CHUNK_ACK_HDR};
    size_t n = 0;
    vtsm_status st = dev_dispatch(d, &inner, &n);
    vtsm_buf_wipe(&msg); /* a KEY_PROG carries key bytes */
    if (st != VTSM_OK) {
        q->drop = inner.drop;
        return st;
    }
    /* ResponseToLargeRequest after the ACK header (dev_dispatch made it fit, announcing a
     * larger one by ERROR(LargeResponse)). */
    VTSM_ENSURE(w->len == 0 && n + CHUNK_ACK_HDR <= w->cap, VTSM_E_INTERNAL,
                "CHUNK_SEND_ACK does not fit");
    memmove(w->p + CHUNK_ACK_HDR, w->p, n);
    VTSM_GUARD(dev_wr_header(q, w, SPDM_CHUNK_SEND_ACK, 0, handle));
    VTSM_GUARD(vtsm_wr_le16(w, seq));
    w->len += n;
    return VTSM_OK;
}

vtsm_status dev_rsp_chunk_get(struct vtsm_dev *d, struct dev_req *q, struct vtsm_wr *w)
{
    struct dev_chunk *c = &d->chunk_tx;
    struct vtsm_rd r = vtsm_rd_init(q->msg, q->len);
    uint16_t seq;

    if (!(dev_rsp_caps(d) & SPDM_CAP_CHUNK))
        return dev_refuse(q, SPDM_ERR_UNSUPPORTED_REQUEST, q->code, VTSM_E_UNSUPPORTED,
                          "CHUNK_GET without CHUNK_CAP");
    if (!dev_chunking(d) || q->nested || !c->active || !same_context(c, q)) {
        dev_chunk_drop(c);
        return dev_refuse(q, SPDM_ERR_UNEXPECTED_REQUEST, 0, VTSM_E_STATE,
                          "CHUNK_GET without a large response to fetch");
    }
    VTSM_GUARD(vtsm_rd_skip(&r, 4));
    if (vtsm_rd_le16(&r, &seq)) {
        dev_chunk_drop(c);
        return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_TRUNCATED,
                          "CHUNK_GET without ChunkSeqNo");
    }
    if (dev_req_end(q, &r) != VTSM_OK) {
        dev_chunk_drop(c);
        return VTSM_E_PEER_MALFORMED;
    }
    if (q->param2 != c->handle)
        return chunk_refuse(c, q, SPDM_ERR_INVALID_REQUEST, VTSM_RULE_CHUNK_1,
                            "CHUNK_GET Handle of another transfer", q->param2, c->handle);
    if (seq != c->next_seq)
        return chunk_refuse(c, q, SPDM_ERR_INVALID_REQUEST, VTSM_RULE_CHUNK_2,
                            "CHUNK_GET ChunkSeqNo out of order", seq, c->next_seq);

    const size_t room = dev_send_limit(d) - CHUNK_HDR - (seq == 0 ? CHUNK_LARGE_SIZE : 0);
    const size_t left = c->total - c->sent;
    const size_t n = left < room ? left : room;
    const bool last = n == left;
    VTSM_GUARD(dev_wr_header(q, w, SPDM_CHUNK_RESPONSE, last ? CHUNK_ATTR_LAST : 0, c->handle));
    VTSM_GUARD(vtsm_wr_le16(w, seq));
    VTSM_GUARD(vtsm_wr_le16(w, 0));
    VTSM_GUARD(vtsm_wr_le32(w, (uint32_t)n));
    if (seq == 0)
        VTSM_GUARD(vtsm_wr_le32(w, c->total));
    VTSM_GUARD(vtsm_wr_bytes(w, c->buf.data + c->sent, n));
    c->sent += n;
    c->next_seq++;
    if (last) {
        VTSM_INFO("large response 0x%02x of %u bytes sent in %u chunks (CHUNK_GET)", c->buf.data[1],
                  c->total, c->next_seq);
        dev_chunk_drop(c);
    }
    return VTSM_OK;
}
