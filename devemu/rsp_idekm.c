/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * IDE_KM responder (PCIe 6.x sec. 6.33.3 "IDE Key Management (IDE_KM)"), reached through
 * VENDOR_DEFINED_REQUEST inside the secure session (rsp_vendor.c refuses it outside).
 *
 *   QUERY       -> QUERY_RESP (port 0 only)
 *   KEY_PROG    -> KP_ACK with a Status: the key and IFV are stored for (stream, key set,
 *                  sub-stream, direction) only with Status 0
 *   K_SET_GO    -> K_GOSTOP_ACK: that key set becomes live for the sub-stream/direction
 *   K_SET_STOP  -> K_GOSTOP_ACK: that key set stops (if live) and its key is wiped
 *
 * Rules, in the order they are checked (each refusal names its rule):
 *   IDEKM.1 the request parses (KEY_PROG: KP_ACK INCORRECT_LENGTH / UNSUPPORTED_VALUE as
 *           the codec finds; other objects: SPDM ERROR InvalidRequest)
 *   IDEKM.2 PortIndex is 0, the only port (KP_ACK UNSUPPORTED_PORT_INDEX)
 *   IDEKM.3 StreamID < the number of selective streams (KP_ACK UNSUPPORTED_VALUE)
 *   IDEKM.4 KEY_PROG never overwrites the live key set of a sub-stream/direction
 *           (KP_ACK UNSPECIFIED_FAILURE; program the other set, as a refresh does)
 *   IDEKM.5 K_SET_GO only for a key set that KEY_PROG programmed for that sub-stream and
 *           direction
 * K_GOSTOP_ACK has no Status field, so a K_SET_GO / K_SET_STOP the device refuses
 * (IDEKM.1/2/3/5) is answered with SPDM ERROR InvalidRequest, as a device whose IDE_KM
 * handler fails does in DMTF spdm-emu; nothing changes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "dev_internal.h"
#include "vtsm_guard.h"
#include "vtsm_log.h"

#define IDE_PORT_INDEX          0  /* the device's only port; MaxPortIndex = 0 */
#define DEV_IDE_SAMPLE_ZERO_DWS 72 /* zero DWs after IDE Capability 0 (sample shape) */

static const char *const substream_names[DEV_IDE_SUBSTREAMS] = {"PR", "NPR", "CPL"};

static unsigned kss_key_set(uint8_t kss)
{
    return kss & VTSM_IDEKM_KEY_SET_MASK;
}

static unsigned kss_dir(uint8_t kss)
{
    return (kss & VTSM_IDEKM_DIR_MASK) ? DEV_IDE_TX : DEV_IDE_RX;
}

static unsigned kss_substream(uint8_t kss)
{
    return kss >> 4;
}

/*
 * KP_ACK written byte for byte. A KP_ACK refusing a malformed KEY_PROG echoes the
 * request's fields as they arrived (reserved bits included), which the codec's builder
 * rightly will not produce; the layout is PCIe 6.x KP_ACK.
 */
static vtsm_status wr_kp_ack(struct vtsm_wr *w, uint8_t stream_id, uint8_t status, uint8_t kss,
                             uint8_t port_index, uint8_t out[VTSM_IDEKM_SHORT_MSG_SIZE])
{
    const uint8_t ack[VTSM_IDEKM_SHORT_MSG_SIZE] = {
        VTSM_PCI_PROTOCOL_ID_IDE_KM, VTSM_IDEKM_KP_ACK, 0, 0, stream_id, status, kss, port_index};
    memcpy(out, ack, sizeof(ack));
    return vtsm_wr_bytes(w, ack, sizeof(ack));
}

static bool nak_sent(const struct dev_session *s, uint8_t stream)
{
    return (s->nak_sent[stream / 8] >> (stream % 8)) & 1;
}

/* --key-log: one line per accepted key (test only; see vtsm_devemu.h). */
static void key_log(const struct vtsm_dev *d, uint8_t stream, uint8_t kss,
                    const struct vtsm_idekm_key *k)
{
    char hex[2 * VTSM_IDEKM_KEY_SIZE + 1];
    char line[192];

    if (!d->cfg.key_log)
        return;
    vtsm_hex(hex, k->key, VTSM_IDEKM_KEY_SIZE);
    snprintf(line, sizeof(line), "stream %u keyset %u substream %s dir %s key %s ifv %016llx",
             stream, kss_key_set(kss), substream_names[kss_substream(kss)],
             kss_dir(kss) == DEV_IDE_TX ? "TX" : "RX", hex, (unsigned long long)k->ifv);
    d->cfg.key_log(d->cfg.key_log_ctx, line);
    OPENSSL_cleanse(hex, sizeof(hex));
    OPENSSL_cleanse(line, sizeof(line));
}

/*
 * KEY_PROG -> KP_ACK. parse_st is the codec's verdict; on failure r->kp_status holds the
 * Status it suggests and r's fixed fields are echoed as far as they were read.
 */
static vtsm_status key_prog(struct vtsm_dev *d, struct dev_req *q, const struct vtsm_idekm_req *r,
                            vtsm_status parse_st, struct vtsm_wr *w)
{
    struct dev_session *s = q->sess;
    uint8_t status = VTSM_IDEKM_KP_SUCCESS;
    unsigned ks = kss_key_set(r->key_sub_stream), dir = kss_dir(r->key_sub_stream);
    unsigned ss = kss_substream(r->key_sub_stream);
    struct dev_ide_slot *slot = NULL;
    struct dev_ide_stream *blk = NULL;

    s->key_progs++;
    /* idekm-replay-ack: the 2nd KEY_PROG of the session is consumed unprocessed and
     * answered with the bytes of the session's first KP_ACK. */
    if (dev_fault(d, VTSM_DEV_FAULT_IDEKM_REPLAY_ACK) && s->key_progs == 2 &&
        s->have_first_kp_ack) {
        VTSM_INFO("idekm-replay-ack fault: KEY_PROG answered with the first KP_ACK again");
        return vtsm_wr_bytes(w, s->first_kp_ack, sizeof(s->first_kp_ack));
    }

    if (parse_st != VTSM_OK) {
        status = r->kp_status;
        VTSM_INFO("KEY_PROG refused, KP_ACK status %u (rule IDEKM.1): %s", status,
                  vtsm_err_detail());
    } else if (r->port_index != IDE_PORT_INDEX) {
        status = VTSM_IDEKM_KP_UNSUPPORTED_PORT_INDEX;
        VTSM_INFO("KEY_PROG for PortIndex %u: the device has port 0 only (rule IDEKM.2)",
                  r->port_index);
    } else if (!(blk = dev_ide_stream_find(d, r->stream_id, true))) {
        status = VTSM_IDEKM_KP_UNSUPPORTED_VALUE;
        VTSM_INFO("KEY_PROG for StreamID %u: none of the %u selective streams carries it or is "
                  "free (rule IDEKM.3)",
                  r->stream_id, d->cfg.ide_streams);
    } else if (blk->live[ss][dir] == ks) {
        status = VTSM_IDEKM_KP_UNSPECIFIED_FAILURE;
        VTSM_INFO("KEY_PROG into live key set K%u of stream %u %s %s (rule IDEKM.4)", ks,
                  r->stream_id, substream_names[ss], dir == DEV_IDE_TX ? "TX" : "RX");
    } else if (dev_fault(d, VTSM_DEV_FAULT_IDEKM_NAK_KEYPROG) && !nak_sent(s, r->stream_id)) {
        s->nak_sent[r->stream_id / 8] |= (uint8_t)(1u << (r->stream_id % 8));
        status = VTSM_IDEKM_KP_UNSPECIFIED_FAILURE;
        VTSM_INFO("idekm-nak-keyprog fault: first KEY_PROG of stream %u NAKed", r->stream_id);
    } else {
        slot = &blk->slot[ks][ss][dir];
    }

    /* The echo, as the faults bend it. */
    uint8_t stream_echo = r->stream_id, kss_echo = r->key_sub_stream;
    if (dev_fault(d, VTSM_DEV_FAULT_IDEKM_WRONG_STREAM))
        stream_echo = (uint8_t)(stream_echo + 1);
    if (dev_fault(d, VTSM_DEV_FAULT_IDEKM_WRONG_KEYSET))
        kss_echo ^= VTSM_IDEKM_KEY_SET_MASK;
    if (dev_fault(d, VTSM_DEV_FAULT_IDEKM_WRONG_SUBSTREAM) && kss_substream(kss_echo) <= 2)
        kss_echo = (uint8_t)((kss_echo & 0x0F) | (((kss_substream(kss_echo) + 1) % 3) << 4));

    uint8_t ack[VTSM_IDEKM_SHORT_MSG_SIZE];
    VTSM_GUARD(wr_kp_ack(w, stream_echo, status, kss_echo, r->port_index, ack));
    if (!s->have_first_kp_ack) {
        memcpy(s->first_kp_ack, ack, sizeof(ack));
        s->have_first_kp_ack = true;
    }

    /* Update state last: the key lands only with a successful KP_ACK written. */
    if (slot) {
        dev_ide_slot_wipe(slot);
        slot->key = r->key;
        slot->programmed = true;
        slot->counter = 0;
        key_log(d, r->stream_id, r->key_sub_stream, &r->key);
        VTSM_DBG("KEY_PROG: stream %u K%u %s %s programmed", r->stream_id, ks, substream_names[ss],
                 dir == DEV_IDE_TX ? "TX" : "RX");
    }
    return VTSM_OK;
}

/* IDEKM.2 / IDEKM.3 for K_SET_GO and K_SET_STOP. */
static vtsm_status check_target(const struct vtsm_dev *d, struct dev_req *q,
                                const struct vtsm_idekm_req *r, const char *name)
{
    if (r->port_index != IDE_PORT_INDEX)
        return dev_refuse_rule(
            q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_MALFORMED, VTSM_RULE_IDEKM_2,
            "IDE_KM %s for PortIndex %u: the device has port 0 only (rule IDEKM.2)", name,
            r->port_index);
    if (!dev_ide_stream_get(d, r->stream_id))
        return dev_refuse_rule(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_MALFORMED,
                               VTSM_RULE_IDEKM_3,
                               "IDE_KM %s for StreamID %u: none of the %u selective streams "
                               "carries it (rule IDEKM.3)",
                               name, r->stream_id, d->cfg.ide_streams);
    return VTSM_OK;
}

static vtsm_status gostop_ack(struct vtsm_wr *w, const struct vtsm_idekm_req *r)
{
    return vtsm_idekm_build_gostop_ack(w, r->stream_id, r->key_sub_stream, r->port_index);
}

/* K_SET_GO -> K_GOSTOP_ACK: the key set goes live for this sub-stream and direction (a
 * key set live before is replaced, as in a key refresh). */
static vtsm_status k_set_go(struct vtsm_dev *d, struct dev_req *q, const struct vtsm_idekm_req *r,
                            struct vtsm_wr *w)
{
    unsigned ks = kss_key_set(r->key_sub_stream), dir = kss_dir(r->key_sub_stream);
    unsigned ss = kss_substream(r->key_sub_stream);

    if (dev_fault(d, VTSM_DEV_FAULT_IDEKM_NO_GO_ACK)) {
        q->drop = true;
        return vtsm_fail(VTSM_E_ABORTED, "idekm-no-go-ack fault: K_SET_GO dropped unanswered");
    }
    VTSM_GUARD(check_target(d, q, r, "K_SET_GO"));
    struct dev_ide_stream *st = dev_ide_stream_find(d, r->stream_id, false);
    if (!st->slot[ks][ss][dir].programmed)
        return dev_refuse_rule(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_STATE, VTSM_RULE_IDEKM_5,
                               "IDE_KM K_SET_GO for stream %u K%u %s %s, which KEY_PROG did not "
                               "program (rule IDEKM.5)",
                               r->stream_id, ks, substream_names[ss],
                               dir == DEV_IDE_TX ? "TX" : "RX");
    VTSM_GUARD(gostop_ack(w, r));
    st->live[ss][dir] = (uint8_t)ks;
    VTSM_DBG("K_SET_GO: stream %u K%u %s %s live", r->stream_id, ks, substream_names[ss],
             dir == DEV_IDE_TX ? "TX" : "RX");
    return VTSM_OK;
}

/* K_SET_STOP -> K_GOSTOP_ACK: stop the key set if live and wipe its key. Stopping a key
 * set that is not live (or was never programmed) is acknowledged: it is already stopped. */
static vtsm_status k_set_stop(struct vtsm_dev *d, struct dev_req *q, const struct vtsm_idekm_req *r,
                              struct vtsm_wr *w)
{
    unsigned ks = kss_key_set(r->key_sub_stream), dir = kss_dir(r->key_sub_stream);
    unsigned ss = kss_substream(r->key_sub_stream);

    VTSM_GUARD(check_target(d, q, r, "K_SET_STOP"));
    struct dev_ide_stream *st = dev_ide_stream_find(d, r->stream_id, false);
    VTSM_GUARD(gostop_ack(w, r));
    if (st->live[ss][dir] == ks)
        st->live[ss][dir] = DEV_IDE_NONE;
    dev_ide_slot_wipe(&st->slot[ks][ss][dir]);
    VTSM_DBG("K_SET_STOP: stream %u K%u %s %s stopped and wiped", r->stream_id, ks,
             substream_names[ss], dir == DEV_IDE_TX ? "TX" : "RX");
    return VTSM_OK;
}

static vtsm_status query(struct vtsm_dev *d, struct dev_req *q, const struct vtsm_idekm_req *r,
                         struct vtsm_wr *w)
{
    vtsm_status st = VTSM_OK;
    struct vtsm_idekm_query_resp qr;
    struct vtsm_idekm_sel_block *sel = NULL;

    if (r->port_index != IDE_PORT_INDEX)
        return dev_refuse_rule(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_MALFORMED,
                               VTSM_RULE_IDEKM_2,
                               "IDE_KM QUERY for PortIndex %u: the device has port 0 only (rule "
                               "IDEKM.2)",
                               r->port_index);
    if (d->cfg.ide_query_shape == VTSM_DEV_IDE_QUERY_ZERO73) {
        /* The DMTF sample responder's shape: the fixed fields, IDE Capability 0, then 72
         * zero DWs - registers a capability of 0 does not declare. */
        const uint8_t fixed[8] = {
            VTSM_PCI_PROTOCOL_ID_IDE_KM, VTSM_IDEKM_QUERY_RESP, 0, 0, 0, 0, 0, 0};
        VTSM_GUARD(vtsm_wr_bytes(w, fixed, sizeof(fixed)));
        return vtsm_wr_zeros(w, 4u * (1 + DEV_IDE_SAMPLE_ZERO_DWS));
    }
    if (d->cfg.ide_streams) {
        sel = calloc(d->cfg.ide_streams, sizeof(*sel));
        VTSM_ENSURE(sel, VTSM_E_NOMEM, "QUERY_RESP blocks");
    }
    VTSM_GUARD_GOTO(dev_ide_query(d, &qr, sel, d->cfg.ide_streams));
    VTSM_GUARD_GOTO(vtsm_idekm_build_query_resp(w, &qr));
out:
    free(sel);
    return st;
}

vtsm_status dev_rsp_idekm(struct vtsm_dev *d, struct dev_req *q, const uint8_t *payload, size_t len,
                          struct vtsm_wr *w)
{
    struct vtsm_idekm_req r;
    vtsm_status st, pst;

    pst = vtsm_idekm_parse_request(payload, len, &r);
    if (r.object_id == VTSM_IDEKM_KEY_PROG && (pst == VTSM_OK || r.kp_status != 0)) {
        st = key_prog(d, q, &r, pst, w);
        goto out;
    }
    if (pst != VTSM_OK) {
        char why[256]; /* the detail is rewritten below: copy it out first */
        snprintf(why, sizeof(why), "%s", vtsm_err_detail());
        st = dev_refuse_rule(q, SPDM_ERR_INVALID_REQUEST, 0, pst, VTSM_RULE_IDEKM_1,
                             "IDE_KM request refused (rule IDEKM.1): %s", why);
        goto out;
    }
    switch (r.object_id) {
    case VTSM_IDEKM_QUERY:
        st = query(d, q, &r, w);
        break;
    case VTSM_IDEKM_K_SET_GO:
        st = k_set_go(d, q, &r, w);
        break;
    case VTSM_IDEKM_K_SET_STOP:
        st = k_set_stop(d, q, &r, w);
        break;
    default: /* the codec admits requests only */
        st = dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_INTERNAL,
                        "IDE_KM object 0x%02x has no responder", r.object_id);
        break;
    }
out:
    vtsm_idekm_key_wipe(&r.key);
    return st;
}
