/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * IDE for one device: IDE_KM requester flows (PCIe 6.x sec. 6.33.3), key refresh, the
 * simulated link check (docs/abi.md section 8.2) and the root-port model's
 * copy of every key (see tsm_ide.h).
 */
#include "tsm_ide.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "vtsm_crypto.h"
#include "vtsm_guard.h"
#include "vtsm_idekm.h"
#include "vtsm_ide_link.h"
#include "vtsm_link_frame.h"
#include "vtsm_log.h"

#define NSUB   3 /* PR, NPR, CPL */
#define DIR_RX 0
#define DIR_TX 1
/* bit of (sub-stream, direction) in a key set's masks */
#define SD_BIT(sub, dir) (1u << ((sub)*2u + (dir)))

/* One key set of one stream, as the root-port model holds it. */
struct ide_set {
    struct vtsm_idekm_key rp_tx[NSUB]; /* = the device's RX keys */
    struct vtsm_idekm_key rp_rx[NSUB]; /* = the device's TX keys */
    uint64_t tx_count[NSUB];           /* link frames the RP protected with rp_tx */
    uint64_t rx_next[NSUB];            /* lowest counter accepted next from the device */
    uint8_t progd;                     /* SD_BIT: KEY_PROG sent (the device may hold it) */
    uint8_t go;                        /* SD_BIT: K_SET_GO sent */
};

struct ide_stream {
    uint8_t id;
    bool link;           /* Link IDE stream (else selective) */
    uint8_t tc;          /* traffic class: stream i carries TC i (one stream per TC) */
    bool tee_limited;    /* Control TEE-Limited Stream: only TEE traffic (T bit set) */
    uint32_t rid1, rid2; /* RID Association 1 / 2 of the root-port model */
    uint32_t addr[VTSM_IDEKM_MAX_ADDR][3]; /* Address Association 1, 2, 3 per block */
    bool device_assoc; /* the device's block holds the same (read back by QUERY) */
    uint8_t key_set;   /* live set */
    uint32_t refreshes;
    struct ide_set set[2];
};

struct tsm_ide_dev {
    struct tsm_platform *pf;
    struct tsm_ide_leftover *left; /* borrowed: what could not be stopped (rule IDE.4) */
    uint32_t root_port;
    unsigned stale_stopped; /* rule IDE.4 */
    struct tsm_ide_devcaps caps;
    uint16_t rid;      /* the device's RID as QUERY_RESP names it: Bus << 8 | DevFuncNum */
    unsigned n_ranges; /* address association ranges (the host's), every stream */
    struct tsm_ide_range ranges[TSM_IDE_MAX_RANGES];
    unsigned n;
    uint8_t ids[TSM_IDE_MAX_ALL];
    struct ide_stream s[TSM_IDE_MAX_ALL];
};

static const char *const sub_names[NSUB] = {"PR", "NPR", "CPL"};
static const char *const dir_names[2] = {"RX", "TX"};

static const char *kp_status_name(uint8_t s)
{
    switch (s) {
    case VTSM_IDEKM_KP_SUCCESS:
        return "SUCCESS";
    case VTSM_IDEKM_KP_INCORRECT_LENGTH:
        return "INCORRECT_LENGTH";
    case VTSM_IDEKM_KP_UNSUPPORTED_PORT_INDEX:
        return "UNSUPPORTED_PORT_INDEX";
    case VTSM_IDEKM_KP_UNSUPPORTED_VALUE:
        return "UNSUPPORTED_VALUE";
    case VTSM_IDEKM_KP_UNSPECIFIED_FAILURE:
        return "UNSPECIFIED_FAILURE";
    default:
        return "reserved";
    }
}

/* ---- peers ---- */

static vtsm_status spdm_vendor(void *ctx, const uint8_t *req, size_t len, struct vtsm_buf *rsp)
{
    return vtsm_spdm_req_vendor(ctx, req, len, rsp);
}

struct tsm_ide_peer tsm_ide_peer_spdm(struct vtsm_spdm_req *r)
{
    struct tsm_ide_peer p = {spdm_vendor, r};
    return p;
}

/* After this status no more best-effort messages are worth sending: the bytes do not move
 * or the session is gone. */
static bool peer_dead(vtsm_status st)
{
    return vtsm_status_source(st) == VTSM_SRC_TRANSPORT || st == VTSM_E_STATE ||
           st == VTSM_E_PEER_DECRYPT || st == VTSM_E_PEER_SESSION_ID;
}

/* A failing status with the IDE_KM step prefixed to the current detail. */
static vtsm_status with_step(vtsm_status st, const char *step)
{
    char d[400];
    snprintf(d, sizeof(d), "%s", vtsm_err_detail());
    return vtsm_refail(st, "IDE_KM %s: %s", step, d[0] ? d : vtsm_status_text(st));
}

/* The first failure's status and detail survive the best-effort rollback messages. */
struct saved_err {
    vtsm_status st;
    enum vtsm_rule rule;
    char detail[512];
};

static void err_save(struct saved_err *e, vtsm_status st)
{
    e->st = st;
    e->rule = vtsm_err_status() == st ? vtsm_err_rule() : VTSM_RULE_NONE;
    snprintf(e->detail, sizeof(e->detail), "%s", vtsm_err_detail());
}

static vtsm_status err_restore(const struct saved_err *e)
{
    return vtsm_refuse(e->st, e->rule, "%s", e->detail);
}

/* ---- key material ---- */

static void set_wipe(struct ide_set *s)
{
    for (unsigned i = 0; i < NSUB; i++) {
        vtsm_idekm_key_wipe(&s->rp_tx[i]);
        vtsm_idekm_key_wipe(&s->rp_rx[i]);
    }
    OPENSSL_cleanse(s, sizeof(*s));
}

static void dev_wipe(struct tsm_ide_dev *d)
{
    for (unsigned i = 0; i < TSM_IDE_MAX_ALL; i++) {
        set_wipe(&d->s[i].set[0]);
        set_wipe(&d->s[i].set[1]);
    }
}

/* The RP model's key for what the device holds as (sub, dir): the device's RX key is the
 * RP's TX key and vice versa. */
static struct vtsm_idekm_key *mirror_key(struct ide_set *s, unsigned sub, unsigned dir)
{
    return dir == DIR_RX ? &s->rp_tx[sub] : &s->rp_rx[sub];
}

/* ---- IDE_KM messages ---- */

static vtsm_status check_echo(const struct vtsm_idekm_ack *a, const char *msg, uint8_t stream_id,
                              uint8_t kss)
{
    VTSM_ENSURE(a->stream_id == stream_id, VTSM_E_PEER_MALFORMED,
                "%s stream_id %u, expected %u (PCIe 6.33.3: the ack echoes the request)", msg,
                a->stream_id, stream_id);
    VTSM_ENSURE(a->key_sub_stream == kss, VTSM_E_PEER_MALFORMED,
                "%s key_sub_stream 0x%02x, expected 0x%02x (PCIe 6.33.3: the ack echoes the "
                "request)",
                msg, a->key_sub_stream, kss);
    VTSM_ENSURE(a->port_index == TSM_IDE_PORT_INDEX, VTSM_E_PEER_MALFORMED,
                "%s port_index %u, expected %u (PCIe 6.33.3: the ack echoes the request)", msg,
                a->port_index, TSM_IDE_PORT_INDEX);
    return VTSM_OK;
}

/* The device's capability as QUERY_RESP's registers state it. */
static void caps_of(const struct vtsm_idekm_query_resp *q, struct tsm_ide_devcaps *c)
{
    c->ide_cap = q->ide_cap;
    c->link = (q->ide_cap & VTSM_IDE_CAP_LINK) != 0;
    c->link_tcs = q->link_count;
    c->sel_streams = q->sel_count;
    c->tee_limited = (q->ide_cap & VTSM_IDE_CAP_TEE_LIMITED) != 0;
    c->addr_assoc = 0;
    for (unsigned i = 0; i < q->sel_count && i < q->sel_cap; i++) {
        unsigned n = VTSM_IDE_SEL_CAP_ASSOC_NUM(q->sel[i].cap);
        if (i == 0 || n < c->addr_assoc)
            c->addr_assoc = n;
    }
}

/*
 * QUERY(PortIndex 0) -> QUERY_RESP: the register blocks match the capability (rule IDE.5,
 * lenient as the options say), selective IDE with IDE_KM and enough streams. The caller
 * provides q->sel (VTSM_IDEKM_MAX_SEL blocks) and frees it.
 */
static vtsm_status ide_query(const struct tsm_ide_peer *peer, const struct tsm_ide_opts *o,
                             struct vtsm_idekm_query_resp *q, struct tsm_ide_devcaps *caps)
{
    vtsm_status st = VTSM_OK;
    uint8_t req[VTSM_IDEKM_QUERY_SIZE];
    struct vtsm_wr w = vtsm_wr_init(req, sizeof(req));
    struct vtsm_buf rsp = {0};

    VTSM_GUARD_GOTO(vtsm_idekm_build_query(&w, TSM_IDE_PORT_INDEX));
    st = peer->vendor(peer->ctx, req, w.len, &rsp);
    if (st != VTSM_OK) {
        st = with_step(st, "QUERY");
        goto out;
    }
    q->allow_trailing = true;
    st = vtsm_idekm_parse_query_resp(rsp.data, rsp.len, q);
    if (st == VTSM_E_PEER_TRUNCATED) {
        char d[300];
        snprintf(d, sizeof(d), "%s", vtsm_err_detail());
        st = vtsm_refuse(st, VTSM_RULE_IDE_5, "IDE_KM QUERY: %s (rule IDE.5)", d);
        goto out;
    }
    if (st != VTSM_OK) {
        st = with_step(st, "QUERY");
        goto out;
    }
    VTSM_ENSURE_GOTO(q->port_index == TSM_IDE_PORT_INDEX, VTSM_E_PEER_MALFORMED,
                     "IDE_KM QUERY_RESP port_index %u, expected %u (PCIe 6.33.3)", q->port_index,
                     TSM_IDE_PORT_INDEX);
    caps_of(q, caps);
    if (q->trailing) {
        VTSM_ENSURE_RULE_GOTO(o->lenient, VTSM_E_PEER_MALFORMED, VTSM_RULE_IDE_5,
                              "IDE_KM QUERY_RESP: IDE Capability 0x%08x declares %u Link and %u "
                              "Selective IDE register blocks, yet %zu bytes follow them (rule "
                              "IDE.5; connect with ide_lenient to accept this device)",
                              q->ide_cap, q->link_count, q->sel_count, q->trailing);
        caps->lenient = true;
        VTSM_WARN("IDE_KM QUERY_RESP: IDE Capability 0x%08x declares %u Link and %u Selective "
                  "IDE register blocks, yet %zu bytes follow them; ignored under ide_lenient "
                  "(rule IDE.5)",
                  q->ide_cap, q->link_count, q->sel_count, q->trailing);
        if ((q->ide_cap & (VTSM_IDE_CAP_SELECTIVE | VTSM_IDE_CAP_IDE_KM)) == 0) {
            caps->not_reported = true;
            caps->sel_streams = o->nstreams;
            VTSM_WARN("IDE_KM QUERY_RESP: IDE Capability 0 taken as not reported; assuming "
                      "selective IDE with IDE_KM and %u stream(s) (rule IDE.5, ide_lenient)",
                      o->nstreams);
            goto out;
        }
    }
    VTSM_ENSURE_GOTO(q->ide_cap & VTSM_IDE_CAP_SELECTIVE, VTSM_E_PEER_CAPS,
                     "IDE_KM QUERY_RESP: device does not support selective IDE streams "
                     "(IDE Capability 0x%08x)",
                     q->ide_cap);
    VTSM_ENSURE_GOTO(q->ide_cap & VTSM_IDE_CAP_IDE_KM, VTSM_E_PEER_CAPS,
                     "IDE_KM QUERY_RESP: device does not report IDE_KM (IDE Capability 0x%08x)",
                     q->ide_cap);
    VTSM_ENSURE_RULE_GOTO(q->sel_count >= o->nstreams, VTSM_E_PEER_CAPS, VTSM_RULE_IDE_8,
                          "IDE_KM QUERY_RESP: device supports %u selective IDE streams, %u "
                          "requested (rule IDE.8)",
                          q->sel_count, o->nstreams);
out:
    vtsm_buf_free(&rsp);
    return st;
}

/* KEY_PROG of a fresh key + IFV for (stream, key set, sub-stream, direction), KP_ACK checked;
 * the root-port model keeps the mirror in s. */
static vtsm_status key_prog(const struct tsm_ide_peer *peer, uint8_t stream_id, unsigned ks,
                            struct ide_set *s, unsigned sub, unsigned dir)
{
    vtsm_status st = VTSM_OK;
    uint8_t req[VTSM_IDEKM_KEY_PROG_SIZE];
    struct vtsm_wr w = vtsm_wr_init(req, sizeof(req));
    struct vtsm_buf rsp = {0};
    struct vtsm_idekm_ack a;
    struct vtsm_idekm_key *k = mirror_key(s, sub, dir);
    uint8_t kss = vtsm_idekm_kss(ks, dir == DIR_TX, sub);
    char step[64];

    snprintf(step, sizeof(step), "KEY_PROG stream %u K%u %s %s", stream_id, ks, sub_names[sub],
             dir_names[dir]);
    VTSM_GUARD_GOTO(vtsm_random(k->key, sizeof(k->key)));
    VTSM_GUARD_GOTO(vtsm_random(&k->ifv, sizeof(k->ifv)));
    /* Leave room for the link check's counters below the 2^64 invocation-field wrap. */
    k->ifv >>= 1;
    VTSM_GUARD_GOTO(vtsm_idekm_build_key_prog(&w, stream_id, kss, TSM_IDE_PORT_INDEX, k));
    s->progd |= (uint8_t)SD_BIT(sub, dir);
    st = peer->vendor(peer->ctx, req, w.len, &rsp);
    if (st != VTSM_OK) {
        st = with_step(st, step);
        goto out;
    }
    st = vtsm_idekm_parse_kp_ack(rsp.data, rsp.len, &a);
    if (st != VTSM_OK) {
        st = with_step(st, step);
        goto out;
    }
    VTSM_ENSURE_GOTO(a.status == VTSM_IDEKM_KP_SUCCESS, VTSM_E_PEER_NAK,
                     "IDE_KM %s: KP_ACK Status %u (%s)", step, a.status, kp_status_name(a.status));
    snprintf(step, sizeof(step), "KP_ACK for stream %u K%u %s %s:", stream_id, ks, sub_names[sub],
             dir_names[dir]);
    VTSM_GUARD_GOTO(check_echo(&a, step, stream_id, kss));
out:
    OPENSSL_cleanse(req, sizeof(req));
    vtsm_buf_wipe(&rsp);
    return st;
}

/* K_SET_GO or K_SET_STOP for one (stream, key set, sub-stream, direction); K_GOSTOP_ACK
 * checked. */
static vtsm_status k_set(const struct tsm_ide_peer *peer, bool go, uint8_t stream_id, unsigned ks,
                         unsigned sub, unsigned dir)
{
    vtsm_status st = VTSM_OK;
    uint8_t req[VTSM_IDEKM_SHORT_MSG_SIZE];
    struct vtsm_wr w = vtsm_wr_init(req, sizeof(req));
    struct vtsm_buf rsp = {0};
    struct vtsm_idekm_ack a;
    uint8_t kss = vtsm_idekm_kss(ks, dir == DIR_TX, sub);
    char step[64];

    snprintf(step, sizeof(step), "%s stream %u K%u %s %s", go ? "K_SET_GO" : "K_SET_STOP",
             stream_id, ks, sub_names[sub], dir_names[dir]);
    if (go)
        VTSM_GUARD_GOTO(vtsm_idekm_build_k_set_go(&w, stream_id, kss, TSM_IDE_PORT_INDEX));
    else
        VTSM_GUARD_GOTO(vtsm_idekm_build_k_set_stop(&w, stream_id, kss, TSM_IDE_PORT_INDEX));
    st = peer->vendor(peer->ctx, req, w.len, &rsp);
    if (st != VTSM_OK) {
        st = with_step(st, step);
        goto out;
    }
    st = vtsm_idekm_parse_gostop_ack(rsp.data, rsp.len, &a);
    if (st != VTSM_OK) {
        st = with_step(st, step);
        goto out;
    }
    snprintf(step, sizeof(step),
             "K_GOSTOP_ACK for %s stream %u K%u %s %s:", go ? "K_SET_GO" : "K_SET_STOP", stream_id,
             ks, sub_names[sub], dir_names[dir]);
    VTSM_GUARD_GOTO(check_echo(&a, step, stream_id, kss));
out:
    vtsm_buf_free(&rsp);
    return st;
}

/*
 * Best-effort K_SET_STOP of every (sub-stream, direction) in *mask of key set ks, TX before
 * RX; each one the device acknowledged leaves *mask. Errors are logged, not returned;
 * *dead is set (and nothing more sent) once the peer cannot be reached. Returns the first
 * error for callers that report it.
 */
static vtsm_status set_stop(const struct tsm_ide_peer *peer, uint8_t stream_id, unsigned ks,
                            uint8_t *mask, bool *dead)
{
    vtsm_status first = VTSM_OK;
    static const unsigned order[2] = {DIR_TX, DIR_RX};

    for (unsigned o = 0; o < 2; o++)
        for (unsigned sub = 0; sub < NSUB; sub++) {
            unsigned dir = order[o];
            if (!(*mask & SD_BIT(sub, dir)) || !peer || *dead)
                continue;
            vtsm_status st = k_set(peer, false, stream_id, ks, sub, dir);
            if (st == VTSM_OK) {
                *mask &= (uint8_t)~SD_BIT(sub, dir);
                continue;
            }
            VTSM_WARN("IDE: %s (%s), ignored", vtsm_err_detail(), vtsm_status_name(st));
            if (first == VTSM_OK)
                first = st;
            if (peer_dead(st))
                *dead = true;
        }
    return first;
}

/* What the device may still hold of a key set after a stop: recorded for the next
 * connect (rule IDE.4). */
static void leftover_add(struct tsm_ide_leftover *left, uint8_t stream_id, unsigned ks,
                         uint8_t mask)
{
    if (left && mask) {
        left->mask[stream_id][ks] |= mask;
        VTSM_INFO("IDE: stream %u K%u: sub-stream mask 0x%02x may stay live on the device; the "
                  "next connect stops it (rule IDE.4)",
                  stream_id, ks, mask);
    }
}

/* Stop a key set as far as the device can be reached; record the rest. */
static vtsm_status set_stop_record(struct tsm_ide_leftover *left, const struct tsm_ide_peer *peer,
                                   uint8_t stream_id, unsigned ks, uint8_t mask, bool *dead)
{
    vtsm_status st = set_stop(peer, stream_id, ks, &mask, dead);
    leftover_add(left, stream_id, ks, mask);
    return st;
}

/* Program key set ks on stream s: 6 x KEY_PROG (sub-streams PR, NPR, CPL; RX, TX). */
static vtsm_status program_set(const struct tsm_ide_peer *peer, struct ide_stream *s, unsigned ks)
{
    for (unsigned sub = 0; sub < NSUB; sub++)
        for (unsigned dir = DIR_RX; dir <= DIR_TX; dir++)
            VTSM_GUARD(key_prog(peer, s->id, ks, &s->set[ks], sub, dir));
    return VTSM_OK;
}

/* Start key set ks on stream s: K_SET_GO for every sub-stream, the RX ones first. */
static vtsm_status start_set(const struct tsm_ide_peer *peer, struct ide_stream *s, unsigned ks)
{
    for (unsigned dir = DIR_RX; dir <= DIR_TX; dir++)
        for (unsigned sub = 0; sub < NSUB; sub++) {
            s->set[ks].go |= (uint8_t)SD_BIT(sub, dir);
            VTSM_GUARD(k_set(peer, true, s->id, ks, sub, dir));
        }
    return VTSM_OK;
}

/*
 * Undo key set ks on streams [0, n): K_SET_STOP for everything the device may hold
 * (programmed or started), best effort; keys wiped. The caller's error survives.
 */
static void undo_sets(struct tsm_ide_dev *d, const struct tsm_ide_peer *peer, unsigned n,
                      const unsigned *ks, vtsm_status failure)
{
    struct saved_err e;
    bool dead = peer_dead(failure);

    err_save(&e, failure);
    for (unsigned i = 0; i < n; i++) {
        struct ide_set *set = &d->s[i].set[ks[i]];
        set_stop_record(d->left, peer, d->s[i].id, ks[i], (uint8_t)(set->progd | set->go), &dead);
        set_wipe(set);
    }
    err_restore(&e);
}

/* Selective IDE Stream Control: Enable (bit 0), Stream ID (bits 31:24); Status: state in
 * bits 3:0, 2 = Secure (PCIe 6.x sec. 7.9.26.5). */
#define SEL_CTL_ENABLE       0x1u
#define SEL_CTL_STREAM_ID(c) ((uint8_t)((c) >> 24))
#define SEL_STS_STATE(s)     ((s)&0xFu)
#define SEL_STS_SECURE       0x2u
#define SD_ALL               0x3Fu /* every sub-stream, both directions */

/*
 * Rule IDE.4: before its own KEY_PROG, stop what an earlier connect left live - what left
 * records, and every stream the device reports enabled or secure (both key sets, every
 * sub-stream and direction, as the TSM does not know which it holds). A stop that cannot
 * reach the device fails the connect (the record is kept); one the device refuses is
 * logged and the record dropped.
 */
static vtsm_status stop_stale(struct tsm_ide_dev *d, struct tsm_ide_leftover *left,
                              const struct tsm_ide_peer *peer,
                              const struct vtsm_idekm_query_resp *q)
{
    struct tsm_ide_leftover dev_says;
    bool dead = false;

    memset(&dev_says, 0, sizeof(dev_says));
    for (unsigned i = 0; i < q->sel_count && i < q->sel_cap; i++) {
        const struct vtsm_idekm_sel_block *b = &q->sel[i];
        if ((b->ctrl & SEL_CTL_ENABLE) || SEL_STS_STATE(b->status) == SEL_STS_SECURE) {
            uint8_t id = SEL_CTL_STREAM_ID(b->ctrl);
            dev_says.mask[id][0] = dev_says.mask[id][1] = SD_ALL;
        }
    }
    for (unsigned t = 0; t < q->link_count; t++)
        if ((q->link[t].ctrl & SEL_CTL_ENABLE) ||
            SEL_STS_STATE(q->link[t].status) == SEL_STS_SECURE) {
            uint8_t id = SEL_CTL_STREAM_ID(q->link[t].ctrl);
            dev_says.mask[id][0] = dev_says.mask[id][1] = SD_ALL;
        }
    for (unsigned id = 0; id < 256; id++)
        for (unsigned ks = 0; ks < 2; ks++) {
            uint8_t mine = left ? left->mask[id][ks] : 0;
            uint8_t mask = (uint8_t)(mine | dev_says.mask[id][ks]);
            if (!mask)
                continue;
            VTSM_WARN("IDE: stream %u K%u: %s; K_SET_STOP before programming (rule IDE.4)", id, ks,
                      mine ? "key set left live by an earlier connect"
                           : "the device reports the stream enabled");
            uint8_t before = mask;
            vtsm_status r = set_stop(peer, (uint8_t)id, ks, &mask, &dead);
            for (unsigned b = 0; b < 6; b++)
                if ((before & ~mask) & (1u << b))
                    d->stale_stopped++;
            if (r != VTSM_OK && dead) {
                /* the device cannot be reached: keep the record, fail the connect */
                if (left)
                    left->mask[id][ks] = mask;
                return vtsm_refuse(r, VTSM_RULE_IDE_4,
                                   "IDE: stream %u K%u left live by an earlier connect could not "
                                   "be stopped (rule IDE.4): %s",
                                   id, ks, vtsm_err_detail());
            }
            /* The device answered every stop. One it refused (e.g. no register block
             * carries that Stream ID: the KEY_PROG never reached it) holds nothing to stop;
             * were it lying, the KEY_PROG below would fail on its live key (IDEKM.4). */
            if (r != VTSM_OK)
                VTSM_WARN("IDE: stream %u K%u: the device refused K_SET_STOP; taken as holding "
                          "nothing (rule IDE.4)",
                          id, ks);
            if (left)
                left->mask[id][ks] = 0;
        }
    return VTSM_OK;
}

/* Link frame kind 6: the device's Link IDE Stream Control of the stream's TC takes its
 * Stream ID (the host carries it, as it carries configuration writes). */
static vtsm_status link_bind(const struct ide_stream *s, const struct tsm_link_transport *link)
{
    vtsm_status st = VTSM_OK;
    uint8_t ctrl[4];
    struct vtsm_buf frame = {0}, rsp = {0};
    struct vtsm_link_frame f = {
        .kind = VTSM_LINK_KIND_LINK_CFG, .stream_id = s->id, .len = 4, .ct = ctrl};
    struct vtsm_link_frame a;

    VTSM_ENSURE(link != NULL && link->exchange != NULL, VTSM_E_STATE,
                "IDE: a Link IDE stream needs the simulated link to configure the device");
    vtsm_put_le32(ctrl, (uint32_t)s->id << 24 | (uint32_t)s->tc << 19);
    VTSM_GUARD_GOTO(vtsm_link_frame_encode(&f, &frame));
    st = link->exchange(link->ctx, frame.data, frame.len, &rsp);
    if (st != VTSM_OK) {
        st = vtsm_wrap(st, "IDE: Link IDE stream %u configuration", s->id);
        goto out;
    }
    st = vtsm_link_frame_decode(rsp.data, rsp.len, &a);
    if (st != VTSM_OK) {
        st = vtsm_wrap(st, "IDE: Link IDE stream %u configuration: device answer", s->id);
        goto out;
    }
    VTSM_ENSURE_GOTO(a.kind == VTSM_LINK_KIND_CFG_DONE && a.stream_id == s->id, VTSM_E_PEER_STATE,
                     "IDE: the device refused Stream ID %u for its Link IDE stream (TC %u)", s->id,
                     s->tc);
out:
    vtsm_buf_free(&frame);
    vtsm_buf_free(&rsp);
    return st;
}

/* ---- setup / refresh / teardown ---- */

vtsm_status tsm_ide_setup(struct tsm_platform *pf, uint32_t root_port,
                          const struct tsm_ide_peer *peer, unsigned nstreams,
                          struct tsm_ide_leftover *left, struct tsm_ide_dev **out)
{
    struct tsm_ide_opts o = {.nstreams = nstreams};
    return tsm_ide_setup_ex(pf, root_port, peer, &o, left, out);
}

vtsm_status tsm_ide_setup_ex(struct tsm_platform *pf, uint32_t root_port,
                             const struct tsm_ide_peer *peer, const struct tsm_ide_opts *o,
                             struct tsm_ide_leftover *left, struct tsm_ide_dev **out)
{
    vtsm_status st = VTSM_OK;
    struct tsm_ide_dev *d = NULL;
    unsigned ks0[TSM_IDE_MAX_ALL] = {0};
    bool allocated = false;
    struct vtsm_idekm_query_resp q;

    memset(&q, 0, sizeof(q));
    VTSM_ENSURE(pf != NULL && peer != NULL && peer->vendor != NULL && out != NULL && o != NULL,
                VTSM_E_INVAL, "IDE setup: NULL argument");
    unsigned nstreams = o->nstreams;
    VTSM_ENSURE(o->n_ids == 0 || o->n_ids == nstreams, VTSM_E_INVAL,
                "IDE setup: %u stream IDs for %u streams", o->n_ids, nstreams);
    VTSM_ENSURE(nstreams >= 1 && nstreams <= TSM_IDE_MAX_STREAMS, VTSM_E_INVAL,
                "IDE setup: %u streams (1..%u)", nstreams, TSM_IDE_MAX_STREAMS);
    VTSM_ENSURE_RULE(tsm_platform_has_rp(pf, root_port), VTSM_E_NOT_FOUND, VTSM_RULE_PLAT_1,
                     "no root port %u (rule PLAT.1)", root_port);

    d = calloc(1, sizeof(*d));
    VTSM_ENSURE(d != NULL, VTSM_E_NOMEM, "IDE device state");
    d->pf = pf;
    d->left = left;
    d->root_port = root_port;
    q.sel = calloc(VTSM_IDEKM_MAX_SEL, sizeof(*q.sel));
    VTSM_ENSURE_GOTO(q.sel != NULL, VTSM_E_NOMEM, "QUERY_RESP blocks");
    q.sel_cap = VTSM_IDEKM_MAX_SEL;

    /* 1. QUERY; 1a. stop what an earlier connect left live (rule IDE.4) */
    VTSM_GUARD_GOTO(ide_query(peer, o, &q, &d->caps));
    d->rid = (uint16_t)((unsigned)q.bus_num << 8 | q.dev_func_num);
    VTSM_ENSURE_RULE_GOTO(!o->link || d->caps.link, VTSM_E_PEER_CAPS, VTSM_RULE_IDE_11,
                          "IDE: a Link IDE stream was asked for; the device's IDE Capability "
                          "0x%08x does not support Link IDE (rule IDE.11)",
                          d->caps.ide_cap);
    VTSM_ENSURE_RULE_GOTO(o->n_ranges <= d->caps.addr_assoc, VTSM_E_PEER_CAPS, VTSM_RULE_IDE_10,
                          "IDE: %u address ranges, the device's selective streams have %u "
                          "address association blocks (rule IDE.10)",
                          o->n_ranges, d->caps.addr_assoc);
    d->n_ranges = o->n_ranges;
    memcpy(d->ranges, o->ranges, sizeof(d->ranges));
    VTSM_GUARD_GOTO(stop_stale(d, left, peer, &q));
    /* 2. stream IDs and key slots (rules IDE.1, IDE.2) */
    if (o->n_ids)
        VTSM_GUARD_GOTO(tsm_platform_claim_streams(pf, root_port, nstreams, o->ids));
    else
        VTSM_GUARD_GOTO(tsm_platform_alloc_streams(pf, root_port, nstreams, d->ids));
    if (o->n_ids)
        memcpy(d->ids, o->ids, nstreams);
    allocated = true;
    d->n = nstreams;
    if (o->link) { /* the Link IDE stream's ID comes from the same port's IDs */
        VTSM_GUARD_GOTO(tsm_platform_alloc_streams(pf, root_port, 1, &d->ids[nstreams]));
        d->n = nstreams + 1;
        d->s[nstreams].link = true;
    }
    for (unsigned i = 0; i < d->n; i++) {
        d->s[i].id = d->ids[i];
        d->s[i].key_set = 0;
        d->s[i].tc = (uint8_t)(i & 7u);
        d->s[i].tee_limited = o->tee && d->caps.tee_limited && !d->s[i].link;
        if (d->s[i].link)
            d->s[i].tc = 0;
    }
    /* the Link IDE stream's Stream ID into the device's Link IDE Stream Control (TC 0) */
    if (o->link)
        VTSM_GUARD_GOTO(link_bind(&d->s[nstreams], o->link_tr));
    /* 3. KEY_PROG K0, every stream; 4. K_SET_GO K0, every stream */
    for (unsigned i = 0; i < d->n; i++)
        VTSM_GUARD_GOTO(program_set(peer, &d->s[i], 0));
    for (unsigned i = 0; i < d->n; i++)
        VTSM_GUARD_GOTO(start_set(peer, &d->s[i], 0));
    free(q.sel);
    *out = d;
    return VTSM_OK;
out:
    if (allocated) {
        undo_sets(d, peer, d->n, ks0, st);
        tsm_platform_free_streams(pf, root_port, d->n, d->ids);
    }
    free(q.sel);
    dev_wipe(d);
    free(d);
    return st;
}

vtsm_status tsm_ide_refresh(struct tsm_ide_dev *d, const struct tsm_ide_peer *peer)
{
    vtsm_status st = VTSM_OK, stop_st = VTSM_OK;
    unsigned newks[TSM_IDE_MAX_ALL];
    struct saved_err e = {0};
    bool dead = false;

    VTSM_ENSURE(d != NULL && peer != NULL && peer->vendor != NULL, VTSM_E_INVAL,
                "IDE refresh: NULL argument");
    VTSM_ENSURE(d->n > 0, VTSM_E_STATE, "IDE refresh: no streams");
    for (unsigned i = 0; i < d->n; i++) {
        newks[i] = d->s[i].key_set ^ 1u;
        /* the other set is idle: nothing programmed, nothing to wipe but be sure */
        set_wipe(&d->s[i].set[newks[i]]);
    }
    VTSM_GUARD(tsm_platform_alloc_slots(d->pf, d->root_port, d->n * TSM_RP_SLOTS_PER_SET));

    for (unsigned i = 0; i < d->n; i++)
        VTSM_GUARD_GOTO(program_set(peer, &d->s[i], newks[i]));
    for (unsigned i = 0; i < d->n; i++)
        VTSM_GUARD_GOTO(start_set(peer, &d->s[i], newks[i]));

    /* Committed: both ends run the new sets. Stop and forget the old ones. */
    for (unsigned i = 0; i < d->n; i++) {
        struct ide_stream *s = &d->s[i];
        unsigned old = s->key_set;
        vtsm_status r = set_stop_record(d->left, peer, s->id, old,
                                        (uint8_t)(s->set[old].progd | s->set[old].go), &dead);
        if (r != VTSM_OK && stop_st == VTSM_OK) {
            stop_st = r;
            err_save(&e, r);
        }
        set_wipe(&s->set[old]);
        s->key_set = (uint8_t)newks[i];
        s->refreshes++;
    }
    tsm_platform_free_slots(d->pf, d->root_port, d->n * TSM_RP_SLOTS_PER_SET);
    if (stop_st != VTSM_OK)
        return vtsm_fail(stop_st, "IDE refresh committed (new key sets live), but %s", e.detail);
    return VTSM_OK;
out:
    undo_sets(d, peer, d->n, newks, st);
    tsm_platform_free_slots(d->pf, d->root_port, d->n * TSM_RP_SLOTS_PER_SET);
    return st;
}

void tsm_ide_teardown(struct tsm_ide_dev *d, const struct tsm_ide_peer *peer)
{
    bool dead = false;

    if (!d)
        return;
    if (peer && !peer->vendor)
        peer = NULL;
    for (unsigned i = 0; i < d->n; i++) {
        struct ide_stream *s = &d->s[i];
        struct ide_set *live = &s->set[s->key_set];
        set_stop_record(d->left, peer, s->id, s->key_set, (uint8_t)(live->progd | live->go), &dead);
    }
    if (d->n)
        tsm_platform_free_streams(d->pf, d->root_port, d->n, d->ids);
    dev_wipe(d);
    OPENSSL_cleanse(d, sizeof(*d));
    free(d);
}

/* ---- link check (docs/abi.md section 8.2) ---- */

struct check_result {
    bool rp_to_device;
    bool device_to_rp;
};

static vtsm_status link_check_stream(struct ide_stream *s, const struct tsm_link_transport *link,
                                     struct check_result *res)
{
    vtsm_status st = VTSM_OK;
    const unsigned sub = VTSM_IDE_SUBSTREAM_PR;
    struct ide_set *set = &s->set[s->key_set];
    uint8_t p[TSM_IDE_CHECK_SIZE], back[VTSM_IDE_LINK_MAX_PAYLOAD];
    struct vtsm_buf frame = {0}, rsp = {0};
    struct vtsm_link_frame f;
    uint64_t counter = set->tx_count[sub];

    res->rp_to_device = res->device_to_rp = false;
    VTSM_GUARD_GOTO(vtsm_random(p, sizeof(p)));
    VTSM_GUARD_GOTO(vtsm_link_frame_seal(VTSM_LINK_KIND_CHECK_REQ, set->rp_tx[sub].key,
                                         set->rp_tx[sub].ifv, counter, s->id, (uint8_t)sub,
                                         s->key_set, p, sizeof(p), &frame));
    /* the frame is on its way: its invocation value is used, whatever comes back */
    set->tx_count[sub] = counter + 1;
    VTSM_GUARD_GOTO(link->exchange(link->ctx, frame.data, frame.len, &rsp));
    st = vtsm_link_frame_decode(rsp.data, rsp.len, &f);
    if (st != VTSM_OK) {
        st = vtsm_wrap(st, "link check stream %u: device answer", s->id);
        goto out;
    }
    VTSM_ENSURE_GOTO(
        f.kind != VTSM_LINK_KIND_CHECK_REQ, VTSM_E_PEER_MALFORMED,
        "link check stream %u: device answered with a check request frame (docs/abi.md "
        "section 8.2)",
        s->id);
    if (f.kind == VTSM_LINK_KIND_FAILURE) {
        VTSM_INFO("link check stream %u K%u: device could not check the RP's frame", s->id,
                  s->key_set);
        goto out;
    }
    res->rp_to_device = true; /* the device says it decrypted; P below confirms */
    if (f.stream_id != s->id || f.key_set != s->key_set || f.substream != sub) {
        VTSM_INFO("link check stream %u K%u: answer for stream %u K%u sub-stream %u", s->id,
                  s->key_set, f.stream_id, f.key_set, f.substream);
        goto out;
    }
    if (f.counter < set->rx_next[sub] || f.len != sizeof(p)) {
        VTSM_INFO("link check stream %u K%u: answer counter %llu (expected >= %llu), %u bytes",
                  s->id, s->key_set, (unsigned long long)f.counter,
                  (unsigned long long)set->rx_next[sub], f.len);
        goto out;
    }
    if (vtsm_link_frame_open(&f, set->rp_rx[sub].key, set->rp_rx[sub].ifv, back, sizeof(back)) !=
        VTSM_OK) {
        VTSM_INFO("link check stream %u K%u: answer does not verify with the RP RX key", s->id,
                  s->key_set);
        vtsm_err_clear();
        goto out;
    }
    res->device_to_rp = true;
    set->rx_next[sub] = f.counter + 1 > f.counter ? f.counter + 1 : f.counter;
    res->rp_to_device = CRYPTO_memcmp(back, p, sizeof(p)) == 0;
out:
    OPENSSL_cleanse(p, sizeof(p));
    OPENSSL_cleanse(back, sizeof(back));
    vtsm_buf_free(&frame);
    vtsm_buf_free(&rsp);
    return st;
}

vtsm_status tsm_ide_link_check(struct tsm_ide_dev *d, const struct tsm_link_transport *link,
                               struct tsm_ide_check *out)
{
    VTSM_ENSURE(d != NULL && link != NULL && link->exchange != NULL && out != NULL, VTSM_E_INVAL,
                "IDE link check: NULL argument");
    out->n = 0;
    for (unsigned i = 0; i < d->n; i++) {
        struct check_result r;
        struct ide_stream *s = &d->s[i];
        VTSM_GUARD(link_check_stream(s, link, &r));
        out->s[i].stream_id = s->id;
        out->s[i].key_set = s->key_set;
        out->s[i].rp_to_device = r.rp_to_device;
        out->s[i].device_to_rp = r.device_to_rp;
        out->n = i + 1;
    }
    return VTSM_OK;
}

/* ---- RID / address association ---- */

#define RID_ASSOC_VALID  0x1u
#define ADDR_ASSOC_VALID 0x1u

/* One configuration write frame (kind 4) for stream s; true if the device answered done. */
static bool assoc_write(const struct tsm_ide_dev *d, const struct ide_stream *s,
                        const struct tsm_link_transport *link)
{
    uint8_t regs[4 * (2 + 3 * VTSM_IDEKM_MAX_ADDR)];
    size_t n = 4u * (2u + 3u * d->caps.addr_assoc);
    struct vtsm_buf frame = {0}, rsp = {0};
    struct vtsm_link_frame f = {.kind = VTSM_LINK_KIND_CFG_WRITE, .stream_id = s->id};
    struct vtsm_link_frame a = {0};
    bool ok = false;

    memset(regs, 0, sizeof(regs));
    vtsm_put_le32(regs, s->rid1);
    vtsm_put_le32(regs + 4, s->rid2);
    for (unsigned b = 0; b < d->caps.addr_assoc && b < VTSM_IDEKM_MAX_ADDR; b++)
        for (unsigned r = 0; r < 3; r++)
            vtsm_put_le32(regs + 8 + 12 * b + 4 * r, s->addr[b][r]);
    f.len = (uint16_t)n;
    f.ct = regs;
    if (vtsm_link_frame_encode(&f, &frame) != VTSM_OK ||
        link->exchange(link->ctx, frame.data, frame.len, &rsp) != VTSM_OK) {
        VTSM_WARN("IDE: stream %u: association registers not written to the device: %s", s->id,
                  vtsm_err_detail());
        goto out;
    }
    if (vtsm_link_frame_decode(rsp.data, rsp.len, &a) != VTSM_OK ||
        a.kind != VTSM_LINK_KIND_CFG_DONE || a.stream_id != s->id) {
        VTSM_WARN("IDE: stream %u: the device did not take the association registers (answer "
                  "kind %u)",
                  s->id, a.kind);
        goto out;
    }
    ok = true;
out:
    vtsm_err_clear();
    vtsm_buf_free(&frame);
    vtsm_buf_free(&rsp);
    return ok;
}

vtsm_status tsm_ide_program_assoc(struct tsm_ide_dev *d, const struct tsm_ide_peer *peer,
                                  const struct tsm_link_transport *link)
{
    vtsm_status st = VTSM_OK;
    bool written[TSM_IDE_MAX_ALL] = {false}, any = false;
    struct vtsm_idekm_query_resp q;
    uint8_t req[VTSM_IDEKM_QUERY_SIZE];
    struct vtsm_wr w = vtsm_wr_init(req, sizeof(req));
    struct vtsm_buf rsp = {0};

    VTSM_ENSURE(d != NULL && peer != NULL && peer->vendor != NULL, VTSM_E_INVAL,
                "IDE association: NULL argument");
    memset(&q, 0, sizeof(q));
    /* the root-port end: the model's registers */
    for (unsigned i = 0; i < d->n; i++) {
        if (d->s[i].link)
            continue; /* Link IDE has no RID / address association */
        d->s[i].rid1 = (uint32_t)d->rid << 8;
        d->s[i].rid2 = ((uint32_t)d->rid << 8) | RID_ASSOC_VALID;
        d->s[i].device_assoc = false;
        memset(d->s[i].addr, 0, sizeof(d->s[i].addr));
        /* Address Association 1: Valid, base bits 31:20 in 19:8, limit bits 31:20 in
         * 31:20; 2: limit bits 63:32; 3: base bits 63:32 (PCIe 6.x sec. 7.9.26.5.5) */
        for (unsigned a = 0; a < d->n_ranges; a++) {
            const struct tsm_ide_range *r = &d->ranges[a];
            d->s[i].addr[a][0] = ADDR_ASSOC_VALID | (uint32_t)((r->base >> 20) & 0xFFFu) << 8 |
                                 (uint32_t)((r->limit >> 20) & 0xFFFu) << 20;
            d->s[i].addr[a][1] = (uint32_t)(r->limit >> 32);
            d->s[i].addr[a][2] = (uint32_t)(r->base >> 32);
        }
    }
    if (!link || !link->exchange || d->caps.not_reported)
        return VTSM_OK;
    /* the device end: configuration writes down the link */
    for (unsigned i = 0; i < d->n; i++) {
        written[i] = !d->s[i].link && assoc_write(d, &d->s[i], link); /* selective only */
        any = any || written[i];
    }
    if (!any)
        return VTSM_OK;
    /* read back inside the SPDM session */
    q.sel = calloc(VTSM_IDEKM_MAX_SEL, sizeof(*q.sel));
    VTSM_ENSURE(q.sel != NULL, VTSM_E_NOMEM, "QUERY_RESP blocks");
    q.sel_cap = VTSM_IDEKM_MAX_SEL;
    q.allow_trailing = true;
    VTSM_GUARD_GOTO(vtsm_idekm_build_query(&w, TSM_IDE_PORT_INDEX));
    st = peer->vendor(peer->ctx, req, w.len, &rsp);
    if (st != VTSM_OK) {
        st = with_step(st, "QUERY (association read-back)");
        goto out;
    }
    if (vtsm_idekm_parse_query_resp(rsp.data, rsp.len, &q) != VTSM_OK) {
        VTSM_WARN("IDE: association read-back: %s", vtsm_err_detail());
        vtsm_err_clear();
        goto out;
    }
    for (unsigned i = 0; i < d->n; i++)
        for (unsigned b = 0; written[i] && b < q.sel_count && b < q.sel_cap; b++)
            if (SEL_CTL_STREAM_ID(q.sel[b].ctrl) == d->s[i].id) {
                bool same = q.sel[b].rid1 == d->s[i].rid1 && q.sel[b].rid2 == d->s[i].rid2;
                for (unsigned a = 0; a < d->caps.addr_assoc; a++)
                    same = same && q.sel[b].addr[a].reg1 == d->s[i].addr[a][0] &&
                           q.sel[b].addr[a].reg2 == d->s[i].addr[a][1] &&
                           q.sel[b].addr[a].reg3 == d->s[i].addr[a][2];
                d->s[i].device_assoc = same;
            }
out:
    free(q.sel);
    vtsm_buf_free(&rsp);
    return st;
}

/* ---- status ---- */

vtsm_status tsm_ide_status(const struct tsm_ide_dev *d, struct tsm_ide_status *out)
{
    VTSM_ENSURE(d != NULL && out != NULL, VTSM_E_INVAL, "IDE status: NULL argument");
    out->root_port = d->root_port;
    out->stale_stopped = d->stale_stopped;
    out->caps = d->caps;
    out->n = d->n;
    for (unsigned i = 0; i < d->n; i++) {
        out->s[i].stream_id = d->s[i].id;
        out->s[i].key_set = d->s[i].key_set;
        out->s[i].refreshes = d->s[i].refreshes;
        out->s[i].tc = d->s[i].tc;
        out->s[i].rid_base = (uint16_t)(d->s[i].rid2 >> 8);
        out->s[i].rid_limit = (uint16_t)(d->s[i].rid1 >> 8);
        out->s[i].enabled = true;
        out->s[i].tee_limited = d->s[i].tee_limited;
        out->s[i].link = d->s[i].link;
        out->s[i].rid1 = d->s[i].rid1;
        out->s[i].rid2 = d->s[i].rid2;
        out->s[i].device_assoc = d->s[i].device_assoc;
        out->s[i].n_ranges = d->s[i].link ? 0 : d->n_ranges;
        memcpy(out->s[i].ranges, d->ranges, sizeof(out->s[i].ranges));
    }
    return VTSM_OK;
}

uint8_t tsm_ide_first_stream(const struct tsm_ide_dev *d)
{
    return d && d->n ? d->ids[0] : 0;
}

unsigned tsm_ide_stream_count(const struct tsm_ide_dev *d)
{
    return d ? d->n : 0;
}

uint8_t tsm_ide_stream_id(const struct tsm_ide_dev *d, unsigned i)
{
    return d && i < d->n ? d->ids[i] : 0;
}
