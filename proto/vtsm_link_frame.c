/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Simulated-link frames (docs/abi.md section 8.2; layout in vtsm_link_frame.h).
 */
#include "vtsm_link_frame.h"

#include <string.h>

#include <openssl/crypto.h>

#include "vtsm_guard.h"

#define TAG_RESERVED (VTSM_LINK_FRAME_TAG_SIZE - VTSM_IDE_LINK_MAC_SIZE)

static const char *kind_name(uint8_t kind)
{
    switch (kind) {
    case VTSM_LINK_KIND_CHECK_REQ:
        return "check request";
    case VTSM_LINK_KIND_CHECK_RSP:
        return "check response";
    case VTSM_LINK_KIND_FAILURE:
        return "failure";
    case VTSM_LINK_KIND_CFG_WRITE:
        return "configuration write";
    case VTSM_LINK_KIND_CFG_DONE:
        return "configuration write done";
    case VTSM_LINK_KIND_LINK_CFG:
        return "link configuration write";
    default:
        return "unknown";
    }
}

static bool kind_valid(uint8_t kind)
{
    return kind >= VTSM_LINK_KIND_CHECK_REQ && kind <= VTSM_LINK_KIND_LINK_CFG;
}

/* Kinds that carry the IDE MAC (check request / response). */
static bool kind_tagged(uint8_t kind)
{
    return kind == VTSM_LINK_KIND_CHECK_REQ || kind == VTSM_LINK_KIND_CHECK_RSP;
}

/* Kinds that carry no payload. */
static bool kind_empty(uint8_t kind)
{
    return kind == VTSM_LINK_KIND_FAILURE || kind == VTSM_LINK_KIND_CFG_DONE;
}

vtsm_status vtsm_link_frame_encode(const struct vtsm_link_frame *f, struct vtsm_buf *out)
{
    vtsm_status st = VTSM_OK;
    struct vtsm_wr w;
    bool tagged;

    VTSM_ENSURE(f != NULL && out != NULL, VTSM_E_INVAL, "link frame: NULL argument");
    VTSM_ENSURE(kind_valid(f->kind), VTSM_E_INVAL, "link frame: kind %u (1..6)", f->kind);
    VTSM_ENSURE(f->key_set <= 1, VTSM_E_INVAL, "link frame: key set %u (K0 or K1)", f->key_set);
    VTSM_ENSURE(f->substream <= VTSM_IDE_SUBSTREAM_CPL, VTSM_E_INVAL,
                "link frame: sub-stream %u (PR 0, NPR 1, CPL 2)", f->substream);
    VTSM_ENSURE(f->len <= VTSM_IDE_LINK_MAX_PAYLOAD, VTSM_E_INVAL,
                "link frame: %u ciphertext bytes exceed %u", f->len, VTSM_IDE_LINK_MAX_PAYLOAD);
    VTSM_ENSURE(!kind_empty(f->kind) || f->len == 0, VTSM_E_INVAL,
                "link frame: a %s frame carries no ciphertext", kind_name(f->kind));
    VTSM_ENSURE(f->kind != VTSM_LINK_KIND_CFG_WRITE || f->len % 4 == 0, VTSM_E_INVAL,
                "link frame: a configuration write of %u bytes (whole DWs)", f->len);
    VTSM_ENSURE(f->kind != VTSM_LINK_KIND_LINK_CFG || f->len == 4, VTSM_E_INVAL,
                "link frame: a link configuration write of %u bytes (one DW)", f->len);
    VTSM_ENSURE(f->ct != NULL || f->len == 0, VTSM_E_INVAL, "link frame: NULL ciphertext");

    tagged = kind_tagged(f->kind);
    vtsm_buf_reset(out);
    VTSM_GUARD(vtsm_buf_reserve(out, VTSM_LINK_FRAME_HDR_SIZE + f->len +
                                         (tagged ? VTSM_LINK_FRAME_TAG_SIZE : 0)));
    w = vtsm_wr_init(out->data, out->cap);
    VTSM_GUARD_GOTO(vtsm_wr_bytes(&w, VTSM_LINK_FRAME_MAGIC, VTSM_LINK_FRAME_MAGIC_LEN));
    VTSM_GUARD_GOTO(vtsm_wr_u8(&w, f->kind));
    VTSM_GUARD_GOTO(vtsm_wr_u8(&w, f->stream_id));
    VTSM_GUARD_GOTO(vtsm_wr_u8(&w, f->key_set));
    VTSM_GUARD_GOTO(vtsm_wr_u8(&w, f->substream));
    VTSM_GUARD_GOTO(vtsm_wr_le64(&w, f->counter));
    VTSM_GUARD_GOTO(vtsm_wr_le16(&w, f->len));
    if (f->len)
        VTSM_GUARD_GOTO(vtsm_wr_bytes(&w, f->ct, f->len));
    if (tagged) {
        VTSM_GUARD_GOTO(vtsm_wr_bytes(&w, f->tag, VTSM_IDE_LINK_MAC_SIZE));
        VTSM_GUARD_GOTO(vtsm_wr_zeros(&w, TAG_RESERVED));
    }
    out->len = w.len;
out:
    if (st != VTSM_OK)
        vtsm_buf_reset(out);
    return st;
}

/* A reader failure on a named field, as the peer's truncation. */
#define RD(expr, field)                                                                            \
    do {                                                                                           \
        if ((expr) != VTSM_OK) {                                                                   \
            st = vtsm_fail(VTSM_E_PEER_TRUNCATED, "link frame: truncated at %s (%zu bytes)",       \
                           field, n);                                                              \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

vtsm_status vtsm_link_frame_decode(const uint8_t *p, size_t n, struct vtsm_link_frame *f)
{
    vtsm_status st = VTSM_OK;
    struct vtsm_rd r;
    const uint8_t *magic, *rsvd;

    VTSM_ENSURE(f != NULL && (p != NULL || n == 0), VTSM_E_INVAL, "link frame: NULL argument");
    memset(f, 0, sizeof(*f));
    r = vtsm_rd_init(p, n);

    /* header */
    RD(vtsm_rd_ref(&r, &magic, VTSM_LINK_FRAME_MAGIC_LEN), "magic");
    VTSM_ENSURE_GOTO(memcmp(magic, VTSM_LINK_FRAME_MAGIC, VTSM_LINK_FRAME_MAGIC_LEN) == 0,
                     VTSM_E_PEER_MALFORMED, "link frame: magic is not \"VLNK\"");
    RD(vtsm_rd_u8(&r, &f->kind), "kind");
    VTSM_ENSURE_GOTO(kind_valid(f->kind), VTSM_E_PEER_MALFORMED,
                     "link frame: kind %u (1 check request, 2 check response, 3 failure, 4 "
                     "configuration write, 5 configuration write done)",
                     f->kind);
    RD(vtsm_rd_u8(&r, &f->stream_id), "stream_id");
    RD(vtsm_rd_u8(&r, &f->key_set), "key_set");
    VTSM_ENSURE_GOTO(f->key_set <= 1, VTSM_E_PEER_MALFORMED, "link frame: key_set %u (0 or 1)",
                     f->key_set);
    RD(vtsm_rd_u8(&r, &f->substream), "substream");
    VTSM_ENSURE_GOTO(f->substream <= VTSM_IDE_SUBSTREAM_CPL, VTSM_E_PEER_MALFORMED,
                     "link frame: substream %u (PR 0, NPR 1, CPL 2)", f->substream);
    RD(vtsm_rd_le64(&r, &f->counter), "counter");
    RD(vtsm_rd_le16(&r, &f->len), "len");

    /* length field, then the variable part */
    VTSM_ENSURE_GOTO(f->len <= VTSM_IDE_LINK_MAX_PAYLOAD, VTSM_E_PEER_OVERSIZED,
                     "link frame: len %u exceeds %u", f->len, VTSM_IDE_LINK_MAX_PAYLOAD);
    if (kind_empty(f->kind)) {
        VTSM_ENSURE_GOTO(f->len == 0, VTSM_E_PEER_MALFORMED,
                         "link frame: %s frame with len %u (must be 0)", kind_name(f->kind),
                         f->len);
    } else if (f->kind == VTSM_LINK_KIND_CFG_WRITE || f->kind == VTSM_LINK_KIND_LINK_CFG) {
        VTSM_ENSURE_GOTO(f->len % 4 == 0, VTSM_E_PEER_MALFORMED,
                         "link frame: configuration write of %u bytes (whole DWs)", f->len);
        VTSM_ENSURE_GOTO(f->kind != VTSM_LINK_KIND_LINK_CFG || f->len == 4, VTSM_E_PEER_MALFORMED,
                         "link frame: link configuration write of %u bytes (one DW)", f->len);
        RD(vtsm_rd_ref(&r, &f->ct, f->len), "register data");
    } else {
        RD(vtsm_rd_ref(&r, &f->ct, f->len), "ciphertext");
        RD(vtsm_rd_bytes(&r, f->tag, VTSM_IDE_LINK_MAC_SIZE), "tag");
        RD(vtsm_rd_ref(&r, &rsvd, TAG_RESERVED), "tag");
        for (size_t i = 0; i < TAG_RESERVED; i++)
            VTSM_ENSURE_GOTO(rsvd[i] == 0, VTSM_E_PEER_MALFORMED,
                             "link frame: reserved tag byte %zu is 0x%02x (must be 0)",
                             VTSM_IDE_LINK_MAC_SIZE + i, rsvd[i]);
    }
    VTSM_ENSURE_GOTO(vtsm_rd_left(&r) == 0, VTSM_E_PEER_MALFORMED,
                     "link frame: %zu trailing bytes after the %s frame", vtsm_rd_left(&r),
                     kind_name(f->kind));
out:
    if (st != VTSM_OK)
        memset(f, 0, sizeof(*f));
    return st;
}

vtsm_status vtsm_link_frame_seal(uint8_t kind, const uint8_t key[VTSM_IDE_LINK_KEY_SIZE],
                                 uint64_t ifv, uint64_t counter, uint8_t stream_id,
                                 uint8_t substream, uint8_t key_set, const uint8_t *pt, size_t len,
                                 struct vtsm_buf *out)
{
    vtsm_status st = VTSM_OK;
    uint8_t ct[VTSM_IDE_LINK_MAX_PAYLOAD];
    struct vtsm_link_frame f = {0};

    VTSM_ENSURE(kind == VTSM_LINK_KIND_CHECK_REQ || kind == VTSM_LINK_KIND_CHECK_RSP, VTSM_E_INVAL,
                "link frame: only check request/response frames are sealed");
    VTSM_ENSURE(len <= VTSM_IDE_LINK_MAX_PAYLOAD, VTSM_E_INVAL,
                "link frame: payload of %zu bytes exceeds %u", len, VTSM_IDE_LINK_MAX_PAYLOAD);
    VTSM_GUARD_GOTO(vtsm_ide_link_protect(key, ifv, counter, stream_id, substream, key_set, pt, len,
                                          ct, f.tag));
    f.kind = kind;
    f.stream_id = stream_id;
    f.key_set = key_set;
    f.substream = substream;
    f.counter = counter;
    f.len = (uint16_t)len;
    f.ct = ct;
    VTSM_GUARD_GOTO(vtsm_link_frame_encode(&f, out));
out:
    OPENSSL_cleanse(ct, len);
    return st;
}

vtsm_status vtsm_link_frame_open(const struct vtsm_link_frame *f,
                                 const uint8_t key[VTSM_IDE_LINK_KEY_SIZE], uint64_t ifv,
                                 uint8_t *pt_out, size_t cap)
{
    VTSM_ENSURE(f != NULL && key != NULL && (pt_out != NULL || cap == 0), VTSM_E_INVAL,
                "link frame: NULL argument");
    VTSM_ENSURE(f->kind == VTSM_LINK_KIND_CHECK_REQ || f->kind == VTSM_LINK_KIND_CHECK_RSP,
                VTSM_E_INVAL, "link frame: a %s frame carries nothing to check",
                kind_name(f->kind));
    VTSM_ENSURE(cap >= f->len, VTSM_E_TOO_SMALL, "link frame: %u plaintext bytes, room for %zu",
                f->len, cap);
    return vtsm_ide_link_check(key, ifv, f->counter, f->stream_id, f->substream, f->key_set, f->ct,
                               f->len, f->tag, f->len ? pt_out : NULL);
}
