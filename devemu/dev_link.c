/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The device's end of the simulated IDE link (docs/abi.md section 8.2,
 * frames in proto/vtsm_link_frame.h, protection in proto/vtsm_ide_link.h): a check request
 * protected by the root port's TX key is opened with the device's RX key and its plaintext
 * sent back protected by the device's TX key - both of the same stream, key set and
 * sub-stream, both live. Only pass (check response) or fail (failure frame) comes out.
 *
 * Rules (the failure frame's log line names the one that failed):
 *   LINK.1 only check requests (kind 1) are checked
 *   LINK.2 the stream exists and the frame's key set is live for the device's RX side
 *   LINK.3 the counter is not below the next one expected (no replays) and not 2^64-1
 *   LINK.4 the MAC verifies under the RX key (key, key set, stream, sub-stream, counter)
 *   LINK.5 the key set is live for the device's TX side too, to answer
 *
 * Counters: the RX side accepts a frame whose counter is at least the next one it expects
 * and then expects counter + 1 (a replayed or older frame fails; frames the host dropped
 * may be skipped, as with lost TLPs). The TX side counts its own responses from 0. Both
 * restart when KEY_PROG replaces the key.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "dev_internal.h"
#include "vtsm_guard.h"
#include "vtsm_link_frame.h"
#include "vtsm_log.h"

/* A failure frame echoing what the request named: an answer, so VTSM_OK. */
static vtsm_status link_fail(const struct vtsm_link_frame *req, struct vtsm_buf *rsp,
                             enum vtsm_rule rule, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A refusal under a rule is also recorded (status of the rule), for tests and logs. */
static vtsm_status link_fail(const struct vtsm_link_frame *req, struct vtsm_buf *rsp,
                             enum vtsm_rule rule, const char *fmt, ...)
{
    struct vtsm_link_frame f = {.kind = VTSM_LINK_KIND_FAILURE,
                                .stream_id = req->stream_id,
                                .key_set = req->key_set,
                                .substream = req->substream};
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    VTSM_INFO("link check of stream %u K%u sub-stream %u failed: %s", req->stream_id, req->key_set,
              req->substream, why);
    if (rule != VTSM_RULE_NONE)
        (void)vtsm_refuse(vtsm_rule_status(rule), rule, "%s", why);
    return vtsm_link_frame_encode(&f, rsp);
}

/*
 * Link frame kind 4: the root port's configuration writes to the Selective IDE Stream
 * register block carrying Stream ID f->stream_id - RID Association 1, 2, then Address
 * Association 1, 2, 3 of each of its blocks (rule LINK.6: that block exists and exactly
 * those registers are written). Answer: kind 5, or kind 3.
 */
static vtsm_status cfg_write(struct vtsm_dev *d, const struct vtsm_link_frame *f,
                             struct vtsm_buf *rsp)
{
    struct dev_ide_stream *s = dev_ide_stream_find(d, f->stream_id, false);
    unsigned na = d->cfg.ide_addr_assoc;
    size_t want = 4u * (2u + 3u * na);

    if (!s)
        return link_fail(f, rsp, VTSM_RULE_LINK_6,
                         "configuration write: no selective stream carries Stream ID %u (rule "
                         "LINK.6)",
                         f->stream_id);
    if (f->len != want)
        return link_fail(f, rsp, VTSM_RULE_LINK_6,
                         "configuration write of %u bytes: RID association and %u address "
                         "association blocks take %zu (rule LINK.6)",
                         f->len, na, want);
    s->rid1 = vtsm_get_le32(f->ct);
    s->rid2 = vtsm_get_le32(f->ct + 4);
    for (unsigned a = 0; a < na; a++)
        for (unsigned r = 0; r < 3; r++)
            s->addr[a][r] = vtsm_get_le32(f->ct + 8 + 12 * a + 4 * r);
    VTSM_INFO("selective IDE stream block %u (Stream ID %u): RID Association 1 0x%08x, 2 "
              "0x%08x; %u address association block(s)%s",
              (unsigned)(s - d->ide), s->id, s->rid1, s->rid2, na,
              na && (s->addr[0][0] & 1u) ? ", the first valid" : "");
    struct vtsm_link_frame done = {.kind = VTSM_LINK_KIND_CFG_DONE, .stream_id = f->stream_id};
    return vtsm_link_frame_encode(&done, rsp);
}

vtsm_status vtsm_dev_link(struct vtsm_dev *d, const uint8_t *frame, size_t len,
                          struct vtsm_buf *rsp)
{
    struct vtsm_link_frame f;
    uint8_t pt[VTSM_IDE_LINK_MAX_PAYLOAD];
    vtsm_status st;

    VTSM_ENSURE(d && rsp && (frame || len == 0), VTSM_E_INVAL, "vtsm_dev_link: bad arguments");
    vtsm_buf_reset(rsp);
    VTSM_GUARD(vtsm_link_frame_decode(frame, len, &f));

    if (f.kind == VTSM_LINK_KIND_CFG_WRITE)
        return cfg_write(d, &f, rsp);
    if (f.kind == VTSM_LINK_KIND_LINK_CFG) {
        uint32_t ctrl = vtsm_get_le32(f.ct);
        const char *why;
        unsigned tc = (ctrl >> 19) & 7u, id = ctrl >> 24;
        if (id != f.stream_id || dev_ide_link_bind(d, tc, id, &why) != VTSM_OK)
            return link_fail(&f, rsp, VTSM_RULE_LINK_6,
                             "link configuration write (TC%u, Stream ID %u): %s (rule LINK.6)", tc,
                             id, id != f.stream_id ? "Stream ID differs from the frame's" : why);
        struct vtsm_link_frame done = {.kind = VTSM_LINK_KIND_CFG_DONE, .stream_id = f.stream_id};
        return vtsm_link_frame_encode(&done, rsp);
    }
    if (f.kind != VTSM_LINK_KIND_CHECK_REQ)
        return link_fail(&f, rsp, VTSM_RULE_LINK_1,
                         "a frame of kind %u is not a check request (rule LINK.1)", f.kind);
    struct dev_ide_stream *s = dev_ide_stream_find(d, f.stream_id, false);
    if (!s)
        return link_fail(&f, rsp, VTSM_RULE_LINK_2,
                         "no selective stream carries Stream ID %u (rule LINK.2)", f.stream_id);
    if (s->live[f.substream][DEV_IDE_RX] != f.key_set)
        return link_fail(&f, rsp, VTSM_RULE_LINK_2,
                         "key set K%u is not live for receiving (rule LINK.2)", f.key_set);
    struct dev_ide_slot *rx = &s->slot[f.key_set][f.substream][DEV_IDE_RX];
    if (f.counter == UINT64_MAX)
        return link_fail(&f, rsp, VTSM_RULE_LINK_3,
                         "counter 2^64-1 exhausts the invocation field (rule LINK.3)");
    if (f.counter < rx->counter)
        return link_fail(&f, rsp, VTSM_RULE_LINK_3,
                         "counter %llu replays, next accepted %llu (rule LINK.3)",
                         (unsigned long long)f.counter, (unsigned long long)rx->counter);
    st = vtsm_link_frame_open(&f, rx->key.key, rx->key.ifv, pt, sizeof(pt));
    if (st != VTSM_OK) {
        OPENSSL_cleanse(pt, f.len);
        return link_fail(&f, rsp, VTSM_RULE_LINK_4, "%s (rule LINK.4)", vtsm_err_detail());
    }
    rx->counter = f.counter + 1;

    struct dev_ide_slot *tx = &s->slot[f.key_set][f.substream][DEV_IDE_TX];
    if (s->live[f.substream][DEV_IDE_TX] != f.key_set) {
        st = link_fail(&f, rsp, VTSM_RULE_LINK_5,
                       "key set K%u is not live for transmitting (rule LINK.5)", f.key_set);
    } else {
        st = vtsm_link_frame_seal(VTSM_LINK_KIND_CHECK_RSP, tx->key.key, tx->key.ifv, tx->counter,
                                  f.stream_id, f.substream, f.key_set, pt, f.len, rsp);
        if (st == VTSM_OK)
            tx->counter++;
        else
            st = link_fail(&f, rsp, VTSM_RULE_NONE, "cannot protect the answer: %s",
                           vtsm_err_detail());
    }
    OPENSSL_cleanse(pt, f.len);
    return st;
}
