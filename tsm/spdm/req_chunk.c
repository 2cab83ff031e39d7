/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DSP0274 1.2+ "CHUNK_SEND request and CHUNK_SEND_ACK response messages" and "CHUNK_GET
 * request and CHUNK_RESPONSE response messages": large SPDM messages carried in chunks
 * when both sides set CHUNK_CAP. Beneath vtsm__req_xfer, so every other file sees whole
 * messages (and the transcripts hold the large messages, never the chunks).
 *
 * CHUNK_SEND:     header (Param1 = attributes, bit 0 LastChunk; Param2 = Handle),
 *                 ChunkSeqNo(2), Reserved(2), ChunkSize(4), LargeMessageSize(4) only in
 *                 chunk 0, SPDMchunk(ChunkSize).
 * CHUNK_SEND_ACK: header (Param1 bit 0 EarlyErrorDetected; Param2 = Handle), ChunkSeqNo(2),
 *                 ResponseToLargeRequest after the last chunk (or an ERROR with
 *                 EarlyErrorDetected).
 * CHUNK_GET:      header (Param1 reserved; Param2 = Handle), ChunkSeqNo(2).
 * CHUNK_RESPONSE: header (Param1 bit 0 LastChunk; Param2 = Handle), ChunkSeqNo(2),
 *                 Reserved(2), ChunkSize(4), LargeMessageSize(4) only in chunk 0,
 *                 SPDMchunk(ChunkSize).
 * ERROR(LargeResponse 0x0F): ExtendedErrorData = Handle(1), to be fetched by CHUNK_GET.
 *
 * Illegal sequences from the device are refused under the CHUNK rules: CHUNK.1 (handle),
 * CHUNK.2 (sequence numbers), CHUNK.3 (sizes).
 */
#include <string.h>

#include <openssl/crypto.h>

#include "spdm_req_int.h"

#define CHUNK_HDR          12 /* header, ChunkSeqNo, Reserved, ChunkSize */
#define CHUNK_LARGE_SIZE   4  /* LargeMessageSize in chunk 0 */
#define CHUNK_ACK_HDR      6  /* header, ChunkSeqNo */
#define CHUNK_GET_SIZE     6
#define CHUNK_ATTR_LAST    0x01
#define CHUNK_ACK_EARLYERR 0x01
#define CHUNK_SEQ_MAX      0xFFFFu

bool vtsm__req_chunking(const struct vtsm_spdm_req *r)
{
    /* From CAPABILITIES on (NEGOTIATE_ALGORITHMS / ALGORITHMS may travel in chunks). */
    return r->info.rsp_data_transfer_size != 0 && r->info.version >= VTSM_SPDM_V12 &&
           (r->info.rsp_caps & SPDM_CAP_CHUNK);
}

/* The header of a chunk response: version, code, attributes, handle, ChunkSeqNo, all
 * checked against what we expect (CHUNK.1, CHUNK.2). An ERROR is the device refusing. */
static vtsm_status chunk_rsp_header(struct vtsm_spdm_req *r, bool secured, struct vtsm_rd *rd,
                                    uint8_t ver, uint8_t code, const char *msg, uint8_t handle,
                                    uint16_t seq, uint8_t *attr)
{
    uint8_t v, c, h;
    uint16_t s;

    VTSM__RD(vtsm_rd_u8(rd, &v), msg, "SPDMVersion");
    VTSM__RD(vtsm_rd_u8(rd, &c), msg, "RequestResponseCode");
    VTSM__RD(vtsm_rd_u8(rd, attr), msg, "Param1");
    VTSM__RD(vtsm_rd_u8(rd, &h), msg, "Param2 (Handle)");
    VTSM_ENSURE(v == ver, VTSM_E_PEER_UNEXPECTED, "%s in SPDMVersion 0x%02x, expected 0x%02x", msg,
                v, ver);
    if (c == SPDM_ERROR) {
        /* As vtsm__req_xfer: RequestResynch voids the connection, DecryptError the
         * session. */
        if (*attr == SPDM_ERR_REQUEST_RESYNCH)
            vtsm__req_conn_reset(r);
        else if (*attr == SPDM_ERR_DECRYPT_ERROR && secured)
            vtsm__req_session_drop(r);
        r->peer_error = *attr;
        r->peer_error_data = h;
        return vtsm_fail(VTSM_E_PEER_ERROR, "device answered ERROR(%s 0x%02x, data 0x%02x) to %s",
                         vtsm__spdm_error_name(*attr), *attr, h,
                         code == SPDM_CHUNK_SEND_ACK ? "CHUNK_SEND" : "CHUNK_GET");
    }
    VTSM_ENSURE(c == code, VTSM_E_PEER_UNEXPECTED, "device answered %s (0x%02x), expected %s",
                vtsm__spdm_code_name(c), c, msg);
    VTSM__RD(vtsm_rd_le16(rd, &s), msg, "ChunkSeqNo");
    if (h != handle)
        return vtsm_refuse(VTSM_E_PEER_MALFORMED, VTSM_RULE_CHUNK_1,
                           "%s Handle %u, the transfer's is %u", msg, h, handle);
    if (s != seq)
        return vtsm_refuse(VTSM_E_PEER_MALFORMED, VTSM_RULE_CHUNK_2,
                           "%s ChunkSeqNo %u, expected %u", msg, s, seq);
    return VTSM_OK;
}

vtsm_status vtsm__req_chunk_send(struct vtsm_spdm_req *r, bool secured, const uint8_t *req,
                                 size_t len)
{
    static const char msg[] = "CHUNK_SEND_ACK";
    const uint8_t ver = req[0];
    const uint32_t dts = r->info.rsp_data_transfer_size;
    const uint8_t handle = r->chunk_handle++;
    struct vtsm_buf chunk = {0};
    size_t off = 0;
    uint16_t seq = 0;
    vtsm_status st = VTSM_OK;

    VTSM_ENSURE(vtsm__req_chunking(r), VTSM_E_LIMIT,
                "%s of %zu bytes exceeds the device's DataTransferSize %u and the device has "
                "no CHUNK_CAP",
                vtsm__spdm_code_name(req[1]), len, dts);
    VTSM_ENSURE(len <= r->info.rsp_max_spdm_msg_size, VTSM_E_LIMIT,
                "%s of %zu bytes exceeds the device's MaxSPDMmsgSize %u",
                vtsm__spdm_code_name(req[1]), len, r->info.rsp_max_spdm_msg_size);
    /* DataTransferSize >= 42 leaves room for the chunk header and LargeMessageSize. */
    VTSM_GUARD(vtsm_buf_reserve(&chunk, dts));
    for (;;) {
        const size_t room = dts - CHUNK_HDR - (seq == 0 ? CHUNK_LARGE_SIZE : 0);
        const size_t n = len - off < room ? len - off : room;
        const bool last = off + n == len;
        struct vtsm_wr w = vtsm_wr_init(chunk.data, chunk.cap);
        struct vtsm_rd rd;
        uint8_t attr;

        VTSM_GUARD_GOTO(vtsm_wr_u8(&w, ver));
        VTSM_GUARD_GOTO(vtsm_wr_u8(&w, SPDM_CHUNK_SEND));
        VTSM_GUARD_GOTO(vtsm_wr_u8(&w, last ? CHUNK_ATTR_LAST : 0));
        VTSM_GUARD_GOTO(vtsm_wr_u8(&w, handle));
        VTSM_GUARD_GOTO(vtsm_wr_le16(&w, seq));
        VTSM_GUARD_GOTO(vtsm_wr_le16(&w, 0));
        VTSM_GUARD_GOTO(vtsm_wr_le32(&w, (uint32_t)n));
        if (seq == 0)
            VTSM_GUARD_GOTO(vtsm_wr_le32(&w, (uint32_t)len));
        VTSM_GUARD_GOTO(vtsm_wr_bytes(&w, req + off, n));
        VTSM_GUARD_GOTO(vtsm__req_xfer_once(r, secured, chunk.data, w.len));

        rd = vtsm_rd_init(r->rsp.data, r->rsp.len);
        VTSM_GUARD_GOTO(
            chunk_rsp_header(r, secured, &rd, ver, SPDM_CHUNK_SEND_ACK, msg, handle, seq, &attr));
        if (attr & CHUNK_ACK_EARLYERR) {
            /* ResponseToLargeRequest is the ERROR that ended the transfer early. */
            uint8_t v, code, e1 = 0, e2 = 0;
            VTSM__RD_GOTO(vtsm_rd_u8(&rd, &v), msg, "ERROR SPDMVersion");
            VTSM__RD_GOTO(vtsm_rd_u8(&rd, &code), msg, "ERROR code");
            VTSM__RD_GOTO(vtsm_rd_u8(&rd, &e1), msg, "ERROR ErrorCode");
            VTSM__RD_GOTO(vtsm_rd_u8(&rd, &e2), msg, "ERROR ErrorData");
            VTSM_ENSURE_GOTO(code == SPDM_ERROR, VTSM_E_PEER_MALFORMED,
                             "CHUNK_SEND_ACK with EarlyErrorDetected carries 0x%02x, not ERROR",
                             code);
            r->peer_error = e1;
            r->peer_error_data = e2;
            st = vtsm_fail(VTSM_E_PEER_ERROR,
                           "device ended the chunked %s early with ERROR(%s 0x%02x, data 0x%02x)",
                           vtsm__spdm_code_name(req[1]), vtsm__spdm_error_name(e1), e1, e2);
            goto out;
        }
        VTSM_ENSURE_GOTO(attr == 0, VTSM_E_PEER_MALFORMED,
                         "CHUNK_SEND_ACK attributes 0x%02x set reserved bits", attr);
        off += n;
        if (last) {
            /* ResponseToLargeRequest: the response, now the one to parse (the ACK header
             * moves out of the way; DOE padding, if any, stays behind it). */
            VTSM_ENSURE_GOTO(vtsm_rd_left(&rd) >= VTSM__SPDM_HDR, VTSM_E_PEER_TRUNCATED,
                             "CHUNK_SEND_ACK of the last chunk without ResponseToLargeRequest");
            memmove(r->rsp.data, r->rsp.data + CHUNK_ACK_HDR, r->rsp.len - CHUNK_ACK_HDR);
            r->rsp.len -= CHUNK_ACK_HDR;
            r->info.chunk_sends++;
            break;
        }
        VTSM_GUARD_GOTO(vtsm__req_end(r, &rd, msg));
        VTSM_ENSURE_GOTO(seq < CHUNK_SEQ_MAX, VTSM_E_LIMIT,
                         "chunked %s needs more than 65536 chunks", vtsm__spdm_code_name(req[1]));
        seq++;
    }
out:
    vtsm_buf_wipe(&chunk); /* chunks of KEY_PROG carry key bytes */
    return st;
}

vtsm_status vtsm__req_chunk_get(struct vtsm_spdm_req *r, bool secured, uint8_t ver, uint8_t handle)
{
    static const char msg[] = "CHUNK_RESPONSE";
    struct vtsm_buf large = {0};
    uint32_t total = 0;
    uint16_t seq = 0;
    vtsm_status st = VTSM_OK;

    VTSM_ENSURE(vtsm__req_chunking(r), VTSM_E_PEER_MALFORMED,
                "device answered ERROR(LargeResponse) without CHUNK_CAP");
    for (;;) {
        const uint8_t get[CHUNK_GET_SIZE] = {ver,    SPDM_CHUNK_GET, 0,
                                             handle, (uint8_t)seq,   (uint8_t)(seq >> 8)};
        struct vtsm_rd rd;
        uint8_t attr;
        uint32_t size;
        const uint8_t *bytes;

        VTSM_GUARD_GOTO(vtsm__req_xfer_once(r, secured, get, sizeof(get)));
        rd = vtsm_rd_init(r->rsp.data, r->rsp.len);
        VTSM_GUARD_GOTO(
            chunk_rsp_header(r, secured, &rd, ver, SPDM_CHUNK_RESPONSE, msg, handle, seq, &attr));
        VTSM_ENSURE_GOTO((attr & ~CHUNK_ATTR_LAST) == 0, VTSM_E_PEER_MALFORMED,
                         "CHUNK_RESPONSE attributes 0x%02x set reserved bits", attr);
        VTSM__RD_GOTO(vtsm_rd_skip(&rd, 2), msg, "Reserved");
        VTSM__RD_GOTO(vtsm_rd_le32(&rd, &size), msg, "ChunkSize");
        if (seq == 0) {
            VTSM__RD_GOTO(vtsm_rd_le32(&rd, &total), msg, "LargeMessageSize");
            /* A large message is larger than any DataTransferSize may be (the device sends
             * in pieces of its own, smaller, size too), and no larger than we said we take. */
            if (total <= VTSM__SPDM_MIN_DTS || total > r->opts.max_spdm_msg_size) {
                st = vtsm_refuse(VTSM_E_PEER_MALFORMED, VTSM_RULE_CHUNK_3,
                                 "CHUNK_RESPONSE LargeMessageSize %u outside %u..%u", total,
                                 VTSM__SPDM_MIN_DTS + 1, r->opts.max_spdm_msg_size);
                goto out;
            }
            VTSM_GUARD_GOTO(vtsm_buf_reserve(&large, total));
        }
        if (size == 0 || size > total - large.len) {
            st = vtsm_refuse(VTSM_E_PEER_MALFORMED, VTSM_RULE_CHUNK_3,
                             "CHUNK_RESPONSE %u ChunkSize %u with %zu of %u bytes left", seq, size,
                             total - large.len, total);
            goto out;
        }
        VTSM__RD_GOTO(vtsm_rd_ref(&rd, &bytes, size), msg, "SPDMchunk");
        VTSM_GUARD_GOTO(vtsm__req_end(r, &rd, msg));
        VTSM_GUARD_GOTO(vtsm_buf_append(&large, bytes, size));
        const bool complete = large.len == total;
        if ((attr & CHUNK_ATTR_LAST) != complete) {
            st = vtsm_refuse(VTSM_E_PEER_MALFORMED, VTSM_RULE_CHUNK_3,
                             "CHUNK_RESPONSE %u %s LastChunk with %zu of %u bytes received", seq,
                             complete ? "lacks" : "sets", large.len, total);
            goto out;
        }
        if (complete)
            break;
        VTSM_ENSURE_GOTO(seq < CHUNK_SEQ_MAX, VTSM_E_PEER_MALFORMED,
                         "CHUNK_RESPONSE needs more than 65536 chunks");
        seq++;
    }
    /* The large response is the one to parse: exact, no padding. */
    vtsm_buf_wipe(&r->rsp);
    r->rsp = large;
    memset(&large, 0, sizeof(large));
    r->rsp_slack = 0;
    r->info.chunk_gets++;
out:
    vtsm_buf_wipe(&large);
    return st;
}
