/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tsm/tsm_ide: IDE_KM requester flows, refresh, link check and teardown against a scripted
 * IDE_KM responder written here (the far end of struct tsm_ide_peer / tsm_link_transport):
 * it parses every request with the proto codec, keeps what a device would keep (programmed
 * and started keys per stream / key set / sub-stream / direction), answers per the codec,
 * and can misbehave on command.
 *
 * Failure cases first, each with its exact status and detail, and a check that nothing
 * else changed: no stream or key slot held, nothing left programmed at the device, no
 * message sent that should not have been. Then full flows: setup of 1 and 2 streams (exact
 * message order), link check, refresh (old keys are refused afterwards), teardown and
 * reuse, status without key bytes.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/crypto.h>

#include "tsm_ide.h"
#include "tsm_reply.h"
#include "tsm_platform.h"
#include "vtsm_abi.h"
#include "vtsm_idekm.h"
#include "vtsm_link_frame.h"
#include "vtsm_test.h"

/* ---- the scripted device ---- */

enum fake_fault {
    F_NONE = 0,
    F_NAK,          /* KEY_PROG #at answered with Status nak_status */
    F_WRONG_STREAM, /* ack #at echoes stream_id + 1 */
    F_WRONG_KEYSET, /* ack #at echoes the other key set */
    F_WRONG_SUB,    /* ack #at echoes another sub-stream */
    F_WRONG_PORT,   /* ack #at echoes port_index 1 */
    F_NO_GO_ACK,    /* K_SET_GO #at gets an empty answer */
    F_REPLAY,       /* KEY_PROG #at answered with the previous KP_ACK */
};

enum link_mode {
    L_OK = 0,
    L_FAIL,    /* always a kind 3 frame */
    L_TAMPER,  /* flip a ciphertext bit of the answer */
    L_WRONG_P, /* answer a different plaintext */
    L_GARBAGE, /* bytes that are not a frame */
    L_KIND1,   /* echo the request frame */
    L_STALE,   /* answer with the frame in stale (a previous answer) */
    L_CLOSE,   /* link transport error */
};

struct fake_key {
    bool prog, go;
    struct vtsm_idekm_key k;
};

struct logged {
    uint8_t obj, stream, kss;
};

struct fake {
    /* QUERY_RESP */
    uint32_t ide_cap;
    uint8_t query_port;
    uint32_t sel0_ctrl, sel0_status; /* selective block 0's Control and Status */
    unsigned extra_dws;              /* zero DWs after the declared blocks */
    /* misbehaviour */
    enum fake_fault fault;
    unsigned fault_at; /* 1-based: KEY_PROG number (K_SET_GO number for F_NO_GO_ACK) */
    bool fault_on_go;  /* wrong-* faults hit K_SET_GO #at instead of KEY_PROG #at */
    uint8_t nak_status;
    unsigned close_at; /* vendor message number (1-based) from which E_CLOSED is returned */
    bool stop_garbage; /* K_SET_STOP answered with a KP_ACK */
    enum link_mode link;
    struct vtsm_buf stale;
    /* state */
    struct fake_key keys[256][2][3][2]; /* stream, key set, sub-stream, direction (0 RX) */
    uint64_t dev_tx[256][2][3];
    unsigned n_msgs, n_keyprog, n_go, n_stop, n_link;
    struct logged log[512];
    unsigned nlog;
    uint8_t last_ack[VTSM_IDEKM_SHORT_MSG_SIZE];
    bool have_last_ack;
    uint8_t seen[64][VTSM_IDEKM_KEY_SIZE]; /* keys accepted, to look for them elsewhere */
    uint64_t seen_ifv[64];
    unsigned nseen;
    struct vtsm_buf last_link_rsp;
};

static void kss_split(uint8_t kss, unsigned *ks, unsigned *sub, unsigned *dir)
{
    *ks = kss & VTSM_IDEKM_KEY_SET_MASK;
    *dir = (kss & VTSM_IDEKM_DIR_MASK) ? 1 : 0;
    *sub = kss >> 4;
}

static uint8_t mangle_kss(const struct fake *f, uint8_t kss)
{
    if (f->fault == F_WRONG_KEYSET)
        return kss ^ VTSM_IDEKM_KEY_SET_MASK;
    if (f->fault == F_WRONG_SUB)
        return (uint8_t)((kss & 0x0f) | ((kss >> 4) == 0 ? 0x10 : 0x00));
    return kss;
}

static vtsm_status fake_vendor(void *ctx, const uint8_t *req, size_t len, struct vtsm_buf *rsp)
{
    struct fake *f = ctx;
    struct vtsm_idekm_req q;
    uint8_t out[512];
    struct vtsm_wr w = vtsm_wr_init(out, sizeof(out));
    unsigned ks, sub, dir;

    f->n_msgs++;
    if (f->close_at && f->n_msgs >= f->close_at)
        return vtsm_fail(VTSM_E_CLOSED, "scripted host went away");
    assert_int_equal(vtsm_idekm_parse_request(req, len, &q), VTSM_OK);
    assert_int_equal(q.port_index, TSM_IDE_PORT_INDEX);
    assert_true(f->nlog < 512);
    f->log[f->nlog++] = (struct logged){q.object_id, q.stream_id, q.key_sub_stream};

    uint8_t stream = q.stream_id, kss = q.key_sub_stream, port = q.port_index;
    kss_split(q.key_sub_stream, &ks, &sub, &dir);
    struct fake_key *k = &f->keys[q.stream_id][ks][sub < 3 ? sub : 0][dir];

    switch (q.object_id) {
    case VTSM_IDEKM_QUERY: {
        struct vtsm_idekm_sel_block sel[VTSM_IDEKM_MAX_SEL];
        struct vtsm_idekm_query_resp r;
        memset(&r, 0, sizeof(r));
        memset(sel, 0, sizeof(sel));
        r.port_index = f->query_port;
        r.max_port_index = f->query_port;
        r.ide_cap = f->ide_cap;
        r.sel_count =
            (f->ide_cap & VTSM_IDE_CAP_SELECTIVE) ? VTSM_IDE_CAP_SEL_NUM(f->ide_cap) + 1 : 0;
        r.sel = sel;
        r.link_count =
            (f->ide_cap & VTSM_IDE_CAP_LINK) ? VTSM_IDE_CAP_LINK_TC_NUM(f->ide_cap) + 1 : 0;
        sel[0].ctrl = f->sel0_ctrl;
        sel[0].status = f->sel0_status;
        assert_int_equal(vtsm_idekm_build_query_resp(&w, &r), VTSM_OK);
        assert_int_equal(vtsm_wr_zeros(&w, 4u * f->extra_dws), VTSM_OK);
        break;
    }
    case VTSM_IDEKM_KEY_PROG: {
        f->n_keyprog++;
        bool hit = !f->fault_on_go && f->fault_at == f->n_keyprog;
        if (hit && f->fault == F_REPLAY && f->have_last_ack) {
            vtsm_idekm_key_wipe(&q.key);
            return vtsm_buf_set(rsp, f->last_ack, sizeof(f->last_ack));
        }
        uint8_t status = hit && f->fault == F_NAK ? f->nak_status : VTSM_IDEKM_KP_SUCCESS;
        if (status == VTSM_IDEKM_KP_SUCCESS) {
            k->k = q.key;
            k->prog = true;
            assert_true(f->nseen < 64);
            memcpy(f->seen[f->nseen], q.key.key, VTSM_IDEKM_KEY_SIZE);
            f->seen_ifv[f->nseen++] = q.key.ifv;
        }
        vtsm_idekm_key_wipe(&q.key);
        if (hit) {
            if (f->fault == F_WRONG_STREAM)
                stream++;
            if (f->fault == F_WRONG_PORT)
                port = 1;
            kss = mangle_kss(f, kss);
        }
        assert_int_equal(vtsm_idekm_build_kp_ack(&w, stream, status, kss, port), VTSM_OK);
        break;
    }
    case VTSM_IDEKM_K_SET_GO: {
        f->n_go++;
        bool hit = f->fault_at == f->n_go && (f->fault_on_go || f->fault == F_NO_GO_ACK);
        if (k->prog)
            k->go = true;
        if (hit && f->fault == F_NO_GO_ACK) {
            vtsm_buf_reset(rsp);
            return VTSM_OK;
        }
        if (hit) {
            if (f->fault == F_WRONG_STREAM)
                stream++;
            if (f->fault == F_WRONG_PORT)
                port = 1;
            kss = mangle_kss(f, kss);
        }
        assert_int_equal(vtsm_idekm_build_gostop_ack(&w, stream, kss, port), VTSM_OK);
        break;
    }
    case VTSM_IDEKM_K_SET_STOP:
        f->n_stop++;
        vtsm_idekm_key_wipe(&k->k);
        k->prog = k->go = false;
        if (f->stop_garbage)
            assert_int_equal(vtsm_idekm_build_kp_ack(&w, stream, 0, kss, port), VTSM_OK);
        else
            assert_int_equal(vtsm_idekm_build_gostop_ack(&w, stream, kss, port), VTSM_OK);
        break;
    default:
        fail_msg("unexpected IDE_KM object %u", q.object_id);
    }
    if (w.len == VTSM_IDEKM_SHORT_MSG_SIZE) {
        memcpy(f->last_ack, out, sizeof(f->last_ack));
        f->have_last_ack = true;
    }
    return vtsm_buf_set(rsp, out, w.len);
}

/* The device end of the simulated link: check with its RX key, answer with its TX key. */
static vtsm_status fake_link(void *ctx, const uint8_t *frame, size_t len, struct vtsm_buf *rsp)
{
    struct fake *f = ctx;
    struct vtsm_link_frame in, fail = {0};
    uint8_t pt[VTSM_IDE_LINK_MAX_PAYLOAD];
    vtsm_status st = VTSM_OK;

    f->n_link++;
    switch (f->link) {
    case L_CLOSE:
        return vtsm_fail(VTSM_E_CLOSED, "scripted link went away");
    case L_GARBAGE:
        return vtsm_buf_set(rsp, "not a frame at all", 18);
    case L_KIND1:
        return vtsm_buf_set(rsp, frame, len);
    case L_STALE:
        return vtsm_buf_set(rsp, f->stale.data, f->stale.len);
    default:
        break;
    }
    assert_int_equal(vtsm_link_frame_decode(frame, len, &in), VTSM_OK);
    assert_int_equal(in.kind, VTSM_LINK_KIND_CHECK_REQ);
    assert_int_equal(in.substream, VTSM_IDE_SUBSTREAM_PR);
    struct fake_key *rx = &f->keys[in.stream_id][in.key_set][in.substream][0];
    struct fake_key *tx = &f->keys[in.stream_id][in.key_set][in.substream][1];
    if (f->link == L_FAIL || !rx->go || !tx->go ||
        vtsm_link_frame_open(&in, rx->k.key, rx->k.ifv, pt, sizeof(pt)) != VTSM_OK) {
        fail.kind = VTSM_LINK_KIND_FAILURE;
        fail.stream_id = in.stream_id;
        fail.key_set = in.key_set;
        fail.substream = in.substream;
        st = vtsm_link_frame_encode(&fail, rsp);
        goto out;
    }
    if (f->link == L_WRONG_P)
        pt[0] ^= 1;
    uint64_t *ctr = &f->dev_tx[in.stream_id][in.key_set][in.substream];
    st = vtsm_link_frame_seal(VTSM_LINK_KIND_CHECK_RSP, tx->k.key, tx->k.ifv, (*ctr)++,
                              in.stream_id, in.substream, in.key_set, pt, in.len, rsp);
    if (st == VTSM_OK && f->link == L_TAMPER)
        rsp->data[VTSM_LINK_FRAME_HDR_SIZE] ^= 0x40;
out:
    OPENSSL_cleanse(pt, sizeof(pt));
    if (st == VTSM_OK)
        assert_int_equal(vtsm_buf_set(&f->last_link_rsp, rsp->data, rsp->len), VTSM_OK);
    return st;
}

/* Keys the device holds (programmed or started). */
static unsigned fake_held(const struct fake *f)
{
    unsigned n = 0;
    for (unsigned s = 0; s < 256; s++)
        for (unsigned ks = 0; ks < 2; ks++)
            for (unsigned sub = 0; sub < 3; sub++)
                for (unsigned d = 0; d < 2; d++)
                    n += f->keys[s][ks][sub][d].prog || f->keys[s][ks][sub][d].go;
    return n;
}

/* Started keys of (stream, key set). */
static unsigned fake_live(const struct fake *f, unsigned stream, unsigned ks)
{
    unsigned n = 0;
    for (unsigned sub = 0; sub < 3; sub++)
        for (unsigned d = 0; d < 2; d++)
            n += f->keys[stream][ks][sub][d].go;
    return n;
}

static unsigned count_obj(const struct fake *f, uint8_t obj)
{
    unsigned n = 0;
    for (unsigned i = 0; i < f->nlog; i++)
        n += f->log[i].obj == obj;
    return n;
}

/* ---- fixture ---- */

struct fx {
    struct tsm_platform *pf;
    struct fake *dev;
    struct tsm_ide_peer peer;
    struct tsm_link_transport link;
};

static uint32_t caps(unsigned streams)
{
    return VTSM_IDE_CAP_SELECTIVE | VTSM_IDE_CAP_IDE_KM | ((streams - 1u) << 16);
}

static struct fake *fake_new(void)
{
    struct fake *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->ide_cap = caps(4);
    return f;
}

static void fake_free(struct fake *f)
{
    if (!f)
        return;
    vtsm_buf_free(&f->stale);
    vtsm_buf_free(&f->last_link_rsp);
    OPENSSL_cleanse(f, sizeof(*f));
    free(f);
}

static void fx_open(struct fx *x, const char *rp_spec)
{
    memset(x, 0, sizeof(*x));
    if (rp_spec) {
        struct tsm_rp_config c;
        assert_int_equal(tsm_platform_parse_rp(rp_spec, &c), VTSM_OK);
        assert_int_equal(tsm_platform_new(&c, 1, &x->pf), VTSM_OK);
    } else {
        assert_int_equal(tsm_platform_new(NULL, 0, &x->pf), VTSM_OK);
    }
    x->dev = fake_new();
    x->peer = (struct tsm_ide_peer){fake_vendor, x->dev};
    x->link = (struct tsm_link_transport){fake_link, x->dev};
}

static void fx_close(struct fx *x)
{
    fake_free(x->dev);
    tsm_platform_free(x->pf);
    memset(x, 0, sizeof(*x));
}

static void usage_is(struct tsm_platform *p, uint32_t rp, unsigned streams, unsigned slots)
{
    struct tsm_rp_usage u;
    assert_int_equal(tsm_platform_usage(p, rp, &u), VTSM_OK);
    assert_int_equal(u.streams_used, streams);
    assert_int_equal(u.key_slots_used, slots);
}

static void detail_has(const char *needle)
{
    if (!strstr(vtsm_err_detail(), needle))
        fail_msg("detail \"%s\" lacks \"%s\"", vtsm_err_detail(), needle);
}

/* Run a link check; return the entries' flags packed (bit 2i: rp_to_device, 2i+1:
 * device_to_rp) and check stream IDs / key sets. */
static unsigned link_check(struct fx *x, struct tsm_ide_dev *d, const uint8_t *ids,
                           unsigned key_set, vtsm_status want)
{
    cbor_item_t *arr = vtsm_abi_array_new();
    struct tsm_ide_check c;
    unsigned bits = 0;
    vtsm_err_clear();
    assert_int_equal(tsm_ide_link_check(d, &x->link, &c), want);
    if (want == VTSM_OK) {
        assert_int_equal(c.n, tsm_ide_stream_count(d));
        assert_int_equal(tsm_reply_push_link_check(arr, &c), VTSM_OK);
        assert_int_equal(cbor_array_size(arr), tsm_ide_stream_count(d));
        for (size_t i = 0; i < cbor_array_size(arr); i++) {
            cbor_item_t *m = cbor_array_get(arr, i);
            uint64_t sid = 999, ks = 9;
            bool a = false, b = false;
            assert_int_equal(cbor_map_size(m), 4);
            assert_int_equal(vtsm_abi_get_uint(m, "stream_id", &sid), VTSM_OK);
            assert_int_equal(vtsm_abi_get_uint(m, "key_set", &ks), VTSM_OK);
            assert_int_equal(vtsm_abi_get_bool(m, "rp_to_device", &a), VTSM_OK);
            assert_int_equal(vtsm_abi_get_bool(m, "device_to_rp", &b), VTSM_OK);
            assert_int_equal(sid, ids[i]);
            assert_int_equal(ks, key_set);
            bits |= (unsigned)a << (2 * i) | (unsigned)b << (2 * i + 1);
            cbor_decref(&m);
        }
    }
    cbor_decref(&arr);
    return bits;
}

/* Status of d: checks the shape and returns key_set / refreshes of stream i. */
static void status_of(struct tsm_ide_dev *d, unsigned i, uint32_t rp, uint8_t id, uint64_t ks,
                      uint64_t refreshes)
{
    cbor_item_t *m = vtsm_abi_map_new();
    const cbor_item_t *ide = NULL, *streams = NULL;
    struct tsm_ide_status st;
    uint64_t v;
    assert_int_equal(tsm_ide_status(d, &st), VTSM_OK);
    assert_int_equal(st.n, tsm_ide_stream_count(d));
    assert_int_equal(tsm_reply_put_ide(m, &st), VTSM_OK);
    assert_int_equal(vtsm_abi_get_map(m, "ide", &ide), VTSM_OK);
    assert_int_equal(vtsm_abi_get_uint(ide, "root_port", &v), VTSM_OK);
    assert_int_equal(v, rp);
    assert_int_equal(vtsm_abi_get_array(ide, "streams", &streams), VTSM_OK);
    assert_int_equal(cbor_array_size(streams), tsm_ide_stream_count(d));
    cbor_item_t *s = cbor_array_get(streams, i);
    char state[16];
    assert_int_equal(cbor_map_size(s), 12);
    assert_int_equal(vtsm_abi_get_uint(s, "stream_id", &v), VTSM_OK);
    assert_int_equal(v, id);
    assert_int_equal(vtsm_abi_get_tstr(s, "state", state, sizeof(state)), VTSM_OK);
    assert_string_equal(state, "active");
    assert_int_equal(vtsm_abi_get_uint(s, "key_set", &v), VTSM_OK);
    assert_int_equal(v, ks);
    assert_int_equal(vtsm_abi_get_uint(s, "refreshes", &v), VTSM_OK);
    assert_int_equal(v, refreshes);
    cbor_decref(&s);
    cbor_decref(&m);
}

/* A setup that must fail with want under rule: nothing held anywhere afterwards. needle
 * (a peer's fault no rule names) says which of the device's answers was refused. */
static void setup_fails(struct fx *x, unsigned n, vtsm_status want, enum vtsm_rule rule,
                        const char *needle)
{
    struct tsm_ide_dev *d = (struct tsm_ide_dev *)(uintptr_t)1;
    EXPECT_DETAIL(tsm_ide_setup(x->pf, 0, &x->peer, n, NULL, &d), want, rule, needle);
    assert_ptr_equal(d, (struct tsm_ide_dev *)(uintptr_t)1);
    usage_is(x->pf, 0, 0, 0);
    assert_int_equal(fake_held(x->dev), 0);
}

/* ---- failures: arguments and platform ---- */

static void test_setup_bad_args(void **state)
{
    struct fx x;
    struct tsm_ide_dev *d = NULL;
    (void)state;
    fx_open(&x, NULL);
    assert_int_equal(tsm_ide_setup(x.pf, 0, &x.peer, 0, NULL, &d), VTSM_E_INVAL);
    assert_int_equal(tsm_ide_setup(x.pf, 0, &x.peer, TSM_IDE_MAX_STREAMS + 1, NULL, &d),
                     VTSM_E_INVAL);
    assert_int_equal(tsm_ide_setup(NULL, 0, &x.peer, 1, NULL, &d), VTSM_E_INVAL);
    assert_int_equal(tsm_ide_setup(x.pf, 0, NULL, 1, NULL, &d), VTSM_E_INVAL);
    assert_int_equal(tsm_ide_setup(x.pf, 0, &x.peer, 1, NULL, NULL), VTSM_E_INVAL);
    EXPECT(tsm_ide_setup(x.pf, 2, &x.peer, 1, NULL, &d), VTSM_E_NOT_FOUND, VTSM_RULE_PLAT_1);
    assert_null(d);
    assert_int_equal(x.dev->n_msgs, 0); /* refused before any message */
    assert_int_equal(tsm_ide_refresh(NULL, &x.peer), VTSM_E_INVAL);
    struct tsm_ide_status st;
    assert_int_equal(tsm_ide_status(NULL, &st), VTSM_E_INVAL);
    assert_int_equal(tsm_ide_first_stream(NULL), 0);
    tsm_ide_teardown(NULL, &x.peer);
    fx_close(&x);
}

static void test_setup_no_stream(void **state)
{
    struct fx x;
    struct tsm_ide_dev *a = NULL;
    (void)state;
    fx_open(&x, "0:1");
    assert_int_equal(tsm_ide_setup(x.pf, 0, &x.peer, 1, NULL, &a), VTSM_OK);
    unsigned msgs = x.dev->n_msgs, held = fake_held(x.dev);

    struct tsm_ide_dev *b = NULL;
    EXPECT(tsm_ide_setup(x.pf, 0, &x.peer, 1, NULL, &b), VTSM_E_NO_STREAM, VTSM_RULE_IDE_1);
    assert_null(b);
    /* only the QUERY went out; the first device is untouched */
    assert_int_equal(x.dev->n_msgs, msgs + 1);
    assert_int_equal(x.dev->log[x.dev->nlog - 1].obj, VTSM_IDEKM_QUERY);
    assert_int_equal(fake_held(x.dev), held);
    usage_is(x.pf, 0, 1, 2);
    assert_int_equal(link_check(&x, a, (const uint8_t[]){0}, 0, VTSM_OK), 0x3);
    tsm_ide_teardown(a, &x.peer);
    usage_is(x.pf, 0, 0, 0);
    fx_close(&x);
}

static void test_setup_no_key_slot(void **state)
{
    struct fx x;
    (void)state;
    fx_open(&x, "0:4:2");
    setup_fails(&x, 2, VTSM_E_LIMIT, VTSM_RULE_IDE_2, NULL);
    assert_int_equal(count_obj(x.dev, VTSM_IDEKM_KEY_PROG), 0);
    fx_close(&x);
}

/* ---- failures: QUERY_RESP ---- */

static void test_setup_peer_caps(void **state)
{
    struct fx x;
    (void)state;
    fx_open(&x, NULL);
    x.dev->ide_cap = VTSM_IDE_CAP_LINK | VTSM_IDE_CAP_IDE_KM; /* link IDE only */
    setup_fails(&x, 1, VTSM_E_PEER_CAPS, VTSM_RULE_NONE, "does not support selective IDE streams");
    x.dev->ide_cap = VTSM_IDE_CAP_SELECTIVE | (3u << 16); /* no IDE_KM */
    setup_fails(&x, 1, VTSM_E_PEER_CAPS, VTSM_RULE_NONE, "does not report IDE_KM");
    x.dev->ide_cap = caps(1);
    setup_fails(&x, 2, VTSM_E_PEER_CAPS, VTSM_RULE_IDE_8,
                "device supports 1 selective IDE streams, 2 requested");
    assert_int_equal(count_obj(x.dev, VTSM_IDEKM_KEY_PROG), 0);
    assert_int_equal(count_obj(x.dev, VTSM_IDEKM_QUERY), 3);
    x.dev->ide_cap = caps(4);
    x.dev->query_port = 1;
    setup_fails(&x, 1, VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                "QUERY_RESP port_index 1, expected 0");
    fx_close(&x);
}

/* Rule IDE.4: what left records, and a stream QUERY_RESP shows enabled, are stopped
 * before the first KEY_PROG; stopped bits leave left; the count is reported. */
static void test_setup_stops_stale_keys(void **state)
{
    struct fx x;
    struct tsm_ide_leftover *left = calloc(1, sizeof(*left));
    struct tsm_ide_dev *d = NULL;
    struct tsm_ide_status st;
    (void)state;
    assert_non_null(left);
    fx_open(&x, NULL);
    left->mask[3][1] = 0x05;            /* stream 3 K1: PR RX, NPR RX */
    x.dev->sel0_ctrl = (2u << 24) | 1u; /* block 0: Stream ID 2, enabled */
    assert_int_equal(tsm_ide_setup(x.pf, 0, &x.peer, 1, left, &d), VTSM_OK);
    /* 12 stops for stream 2 (both key sets, all six), 2 for stream 3 K1, all before any
     * KEY_PROG */
    assert_int_equal(x.dev->n_stop, 14);
    unsigned first_kp = x.dev->nlog;
    for (unsigned i = 0; i < x.dev->nlog; i++)
        if (x.dev->log[i].obj == VTSM_IDEKM_KEY_PROG && i < first_kp)
            first_kp = i;
    for (unsigned i = first_kp; i < x.dev->nlog; i++)
        assert_int_not_equal(x.dev->log[i].obj, VTSM_IDEKM_K_SET_STOP);
    assert_int_equal(left->mask[3][1], 0);
    assert_int_equal(left->mask[2][0], 0);
    assert_int_equal(tsm_ide_status(d, &st), VTSM_OK);
    assert_int_equal(st.stale_stopped, 14);
    /* a teardown without a peer cannot stop anything: the live set is recorded */
    uint8_t id = tsm_ide_stream_id(d, 0);
    tsm_ide_teardown(d, NULL);
    assert_int_equal(left->mask[id][0], 0x3F);
    /* the device cannot be reached: the setup fails under IDE.4, the record stays */
    fx_close(&x);
    fx_open(&x, NULL);
    x.dev->close_at = 2; /* QUERY answered, the first K_SET_STOP not */
    EXPECT(tsm_ide_setup(x.pf, 0, &x.peer, 1, left, &d), VTSM_E_CLOSED, VTSM_RULE_IDE_4);
    assert_int_equal(left->mask[id][0], 0x3F);
    usage_is(x.pf, 0, 0, 0);
    /* the device answers but refuses the stops: the record is dropped, setup goes on */
    x.dev->close_at = 0;
    x.dev->stop_garbage = true;
    assert_int_equal(tsm_ide_setup(x.pf, 0, &x.peer, 1, left, &d), VTSM_OK);
    assert_int_equal(left->mask[id][0], 0);
    x.dev->stop_garbage = false;
    tsm_ide_teardown(d, &x.peer);
    free(left);
    fx_close(&x);
}

/* Rule IDE.5: bytes after the declared blocks are refused, accepted leniently; a
 * capability of 0 is then taken as not reported. */
static void test_setup_query_resp_contradiction(void **state)
{
    struct fx x;
    struct tsm_ide_dev *d = NULL;
    struct tsm_ide_status st;
    (void)state;
    fx_open(&x, NULL);
    x.dev->extra_dws = 3;
    setup_fails(&x, 1, VTSM_E_PEER_MALFORMED, VTSM_RULE_IDE_5, "12 bytes follow them");
    struct tsm_ide_opts o = {.nstreams = 1, .lenient = true};
    assert_int_equal(tsm_ide_setup_ex(x.pf, 0, &x.peer, &o, NULL, &d), VTSM_OK);
    assert_int_equal(tsm_ide_status(d, &st), VTSM_OK);
    assert_true(st.caps.lenient);
    assert_false(st.caps.not_reported);
    assert_int_equal(st.caps.sel_streams, 4);
    tsm_ide_teardown(d, &x.peer);
    /* the DMTF sample shape: capability 0, 72 zero DWs after it */
    x.dev->ide_cap = 0;
    x.dev->extra_dws = 71;
    setup_fails(&x, 1, VTSM_E_PEER_MALFORMED, VTSM_RULE_IDE_5, "declares 0 Link and 0 Selective");
    o.nstreams = 2;
    assert_int_equal(tsm_ide_setup_ex(x.pf, 0, &x.peer, &o, NULL, &d), VTSM_OK);
    assert_int_equal(tsm_ide_status(d, &st), VTSM_OK);
    assert_true(st.caps.not_reported);
    assert_int_equal(st.caps.sel_streams, 2);
    assert_int_equal(st.n, 2);
    tsm_ide_teardown(d, &x.peer);
    usage_is(x.pf, 0, 0, 0);
    fx_close(&x);
}

/* ---- failures: KEY_PROG / K_SET_GO acks ---- */

static void test_setup_nak_keyprog(void **state)
{
    struct fx x;
    (void)state;
    fx_open(&x, NULL);
    x.dev->fault = F_NAK;
    x.dev->fault_at = 3; /* stream 0 K0 NPR RX */
    x.dev->nak_status = VTSM_IDEKM_KP_UNSPECIFIED_FAILURE;
    setup_fails(&x, 1, VTSM_E_PEER_NAK, VTSM_RULE_NONE,
                "IDE_KM KEY_PROG stream 0 K0 NPR RX: KP_ACK Status 4 (UNSPECIFIED_FAILURE)");
    /* no more KEY_PROG after the NAK; every key that was sent is stopped, TX first */
    assert_int_equal(count_obj(x.dev, VTSM_IDEKM_KEY_PROG), 3);
    assert_int_equal(count_obj(x.dev, VTSM_IDEKM_K_SET_GO), 0);
    assert_int_equal(x.dev->n_stop, 3);
    const struct logged *l = &x.dev->log[x.dev->nlog - 3];
    assert_int_equal(l[0].kss, vtsm_idekm_kss(0, true, 0));
    assert_int_equal(l[1].kss, vtsm_idekm_kss(0, false, 0));
    assert_int_equal(l[2].kss, vtsm_idekm_kss(0, false, 1));

    /* other statuses are named too */
    x.dev->nak_status = VTSM_IDEKM_KP_UNSUPPORTED_VALUE;
    x.dev->n_keyprog = 0;
    x.dev->fault_at = 1;
    setup_fails(&x, 1, VTSM_E_PEER_NAK, VTSM_RULE_NONE, "KP_ACK Status 3 (UNSUPPORTED_VALUE)");
    fx_close(&x);
}

static void test_setup_wrong_echo(void **state)
{
    static const struct {
        enum fake_fault fault;
        unsigned at;
        bool on_go;
        const char *detail;
    } cases[] = {
        {F_WRONG_STREAM, 1, false, "KP_ACK for stream 0 K0 PR RX: stream_id 1, expected 0"},
        {F_WRONG_KEYSET, 2, false,
         "KP_ACK for stream 0 K0 PR TX: key_sub_stream 0x03, expected 0x02"},
        {F_WRONG_SUB, 5, false,
         "KP_ACK for stream 0 K0 CPL RX: key_sub_stream 0x00, expected 0x20"},
        {F_WRONG_PORT, 6, false, "KP_ACK for stream 0 K0 CPL TX: port_index 1, expected 0"},
        {F_WRONG_STREAM, 4, true,
         "K_GOSTOP_ACK for K_SET_GO stream 0 K0 PR TX: stream_id 1, expected 0"},
        {F_WRONG_KEYSET, 1, true,
         "K_GOSTOP_ACK for K_SET_GO stream 0 K0 PR RX: key_sub_stream 0x01, expected 0x00"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fx x;
        fx_open(&x, NULL);
        x.dev->fault = cases[i].fault;
        x.dev->fault_at = cases[i].at;
        x.dev->fault_on_go = cases[i].on_go;
        setup_fails(&x, 1, VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE, cases[i].detail);
        /* everything the device was sent is stopped again */
        unsigned sent = cases[i].on_go ? 6 : cases[i].at;
        assert_int_equal(count_obj(x.dev, VTSM_IDEKM_KEY_PROG), sent);
        assert_int_equal(x.dev->n_stop, sent);
        fx_close(&x);
    }
}

static void test_setup_no_go_ack(void **state)
{
    struct fx x;
    (void)state;
    fx_open(&x, NULL);
    x.dev->fault = F_NO_GO_ACK;
    x.dev->fault_at = 2; /* second K_SET_GO: stream 0 K0 NPR RX */
    setup_fails(&x, 1, VTSM_E_PEER_TRUNCATED, VTSM_RULE_NONE,
                "IDE_KM K_SET_GO stream 0 K0 NPR RX: ");
    assert_int_equal(count_obj(x.dev, VTSM_IDEKM_K_SET_GO), 2);
    assert_int_equal(x.dev->n_stop, 6);
    fx_close(&x);
}

static void test_setup_replay_ack(void **state)
{
    struct fx x;
    (void)state;
    fx_open(&x, NULL);
    x.dev->fault = F_REPLAY;
    x.dev->fault_at = 4; /* NPR TX answered with the KP_ACK of NPR RX */
    setup_fails(&x, 1, VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                "KP_ACK for stream 0 K0 NPR TX: key_sub_stream 0x10, expected 0x12");
    fx_close(&x);
}

static void test_setup_second_stream_fails(void **state)
{
    struct fx x;
    (void)state;
    fx_open(&x, NULL);
    x.dev->fault = F_NAK;
    x.dev->fault_at = 9; /* stream 1 K0 NPR RX */
    x.dev->nak_status = VTSM_IDEKM_KP_INCORRECT_LENGTH;
    setup_fails(&x, 2, VTSM_E_PEER_NAK, VTSM_RULE_NONE,
                "KEY_PROG stream 1 K0 NPR RX: KP_ACK Status 1");
    assert_int_equal(x.dev->n_stop, 6 + 3);
    fx_close(&x);
}

static void test_setup_transport_error(void **state)
{
    struct fx x;
    (void)state;
    fx_open(&x, NULL);
    x.dev->close_at = 4; /* QUERY, KEY_PROG, KEY_PROG, then the host is gone */
    struct tsm_ide_dev *d = NULL;
    vtsm_err_clear();
    assert_int_equal(tsm_ide_setup(x.pf, 0, &x.peer, 1, NULL, &d), VTSM_E_CLOSED);
    assert_string_equal(vtsm_err_detail(),
                        "IDE_KM KEY_PROG stream 0 K0 NPR RX: scripted host went away");
    assert_null(d);
    /* nothing more is sent to a peer that cannot be reached; the TSM side is clean */
    assert_int_equal(x.dev->n_msgs, 4);
    usage_is(x.pf, 0, 0, 0);
    fx_close(&x);
}

static void test_rollback_keeps_first_error(void **state)
{
    struct fx x;
    (void)state;
    fx_open(&x, NULL);
    /* NAK on the third KEY_PROG, and the rollback's K_SET_STOPs get a wrong answer type */
    x.dev->fault = F_NAK;
    x.dev->fault_at = 3;
    x.dev->nak_status = VTSM_IDEKM_KP_UNSPECIFIED_FAILURE;
    x.dev->stop_garbage = true;
    setup_fails(&x, 1, VTSM_E_PEER_NAK, VTSM_RULE_NONE, "KP_ACK Status 4 (UNSPECIFIED_FAILURE)");
    assert_int_equal(x.dev->n_stop, 3); /* all tried: the peer answers */
    fx_close(&x);

    /* after a transport error no rollback message is sent at all */
    fx_open(&x, NULL);
    x.dev->close_at = 9; /* QUERY + 6 KEY_PROG + 1 K_SET_GO, then gone */
    vtsm_err_clear();
    struct tsm_ide_dev *d = NULL;
    assert_int_equal(tsm_ide_setup(x.pf, 0, &x.peer, 1, NULL, &d), VTSM_E_CLOSED);
    detail_has("K_SET_GO stream 0 K0 NPR RX");
    assert_int_equal(x.dev->n_msgs, 9);
    usage_is(x.pf, 0, 0, 0);
    fx_close(&x);
}

/* ---- failures: refresh ---- */

static void test_refresh_no_key_slot(void **state)
{
    struct fx x;
    struct tsm_ide_dev *d = NULL;
    (void)state;
    fx_open(&x, "0:2:4");
    assert_int_equal(tsm_ide_setup(x.pf, 0, &x.peer, 2, NULL, &d), VTSM_OK);
    unsigned msgs = x.dev->n_msgs;
    EXPECT(tsm_ide_refresh(d, &x.peer), VTSM_E_LIMIT, VTSM_RULE_IDE_2);
    assert_int_equal(x.dev->n_msgs, msgs);
    usage_is(x.pf, 0, 2, 4);
    status_of(d, 1, 0, 1, 0, 0);
    assert_int_equal(link_check(&x, d, (const uint8_t[]){0, 1}, 0, VTSM_OK), 0xf);
    tsm_ide_teardown(d, &x.peer);
    fx_close(&x);
}

static void refresh_fails(struct fx *x, struct tsm_ide_dev *d, vtsm_status want, const char *needle)
{
    vtsm_err_clear();
    assert_int_equal(tsm_ide_refresh(d, &x->peer), want);
    detail_has(needle);
    /* the old set runs on, the new one is gone on both ends */
    usage_is(x->pf, 0, 1, 2);
    status_of(d, 0, 0, 0, 0, 0);
    assert_int_equal(fake_live(x->dev, 0, 0), 6);
    assert_int_equal(fake_held(x->dev), 6);
    assert_int_equal(link_check(x, d, (const uint8_t[]){0}, 0, VTSM_OK), 0x3);
}

static void test_refresh_failures_keep_old_set(void **state)
{
    struct fx x;
    struct tsm_ide_dev *d = NULL;
    (void)state;
    fx_open(&x, NULL);
    assert_int_equal(tsm_ide_setup(x.pf, 0, &x.peer, 1, NULL, &d), VTSM_OK);

    x.dev->fault = F_NAK;
    x.dev->nak_status = VTSM_IDEKM_KP_UNSUPPORTED_PORT_INDEX;
    x.dev->fault_at = 6 + 4; /* K1 NPR TX */
    refresh_fails(&x, d, VTSM_E_PEER_NAK,
                  "KEY_PROG stream 0 K1 NPR TX: KP_ACK Status 2 (UNSUPPORTED_PORT_INDEX)");
    assert_int_equal(x.dev->n_stop, 4);

    x.dev->fault = F_NO_GO_ACK;
    x.dev->fault_at = 6 + 5; /* the fifth K_SET_GO of the refresh: K1 NPR TX */
    x.dev->n_stop = 0;
    refresh_fails(&x, d, VTSM_E_PEER_TRUNCATED, "K_SET_GO stream 0 K1 NPR TX");
    assert_int_equal(x.dev->n_stop, 6);

    x.dev->fault = F_WRONG_SUB;
    x.dev->fault_on_go = true;
    x.dev->fault_at = 11 + 1;
    refresh_fails(&x, d, VTSM_E_PEER_MALFORMED, "K_SET_GO stream 0 K1 PR RX: key_sub_stream");

    x.dev->fault = F_NONE;
    x.dev->close_at = x.dev->n_msgs + 2;
    vtsm_err_clear();
    assert_int_equal(tsm_ide_refresh(d, &x.peer), VTSM_E_CLOSED);
    usage_is(x.pf, 0, 1, 2);
    status_of(d, 0, 0, 0, 0, 0);
    tsm_ide_teardown(d, NULL);
    usage_is(x.pf, 0, 0, 0);
    fx_close(&x);
}

/* ---- failures: link check ---- */

static void test_link_check_failures(void **state)
{
    struct fx x;
    struct tsm_ide_dev *d = NULL;
    const uint8_t ids[] = {0, 1};
    (void)state;
    fx_open(&x, NULL);
    assert_int_equal(tsm_ide_setup(x.pf, 0, &x.peer, 2, NULL, &d), VTSM_OK);

    x.dev->link = L_FAIL; /* device could not check */
    assert_int_equal(link_check(&x, d, ids, 0, VTSM_OK), 0x0);
    x.dev->link = L_TAMPER; /* answer does not verify with the RP RX key */
    assert_int_equal(link_check(&x, d, ids, 0, VTSM_OK), 0x5);
    x.dev->link = L_WRONG_P; /* verifies, but the device did not see P */
    assert_int_equal(link_check(&x, d, ids, 0, VTSM_OK), 0xa);
    /* a replayed answer (counter below the expected one) */
    x.dev->link = L_OK;
    assert_int_equal(link_check(&x, d, ids, 0, VTSM_OK), 0xf);
    assert_int_equal(
        vtsm_buf_set(&x.dev->stale, x.dev->last_link_rsp.data, x.dev->last_link_rsp.len), VTSM_OK);
    x.dev->link = L_STALE;
    assert_int_equal(link_check(&x, d, ids, 0, VTSM_OK), 0x1 | 0x4);

    x.dev->link = L_GARBAGE;
    link_check(&x, d, ids, 0, VTSM_E_PEER_MALFORMED);
    detail_has("link check stream 0: device answer: link frame: magic");
    x.dev->link = L_KIND1;
    link_check(&x, d, ids, 0, VTSM_E_PEER_MALFORMED);
    detail_has("device answered with a check request frame");
    x.dev->link = L_CLOSE;
    link_check(&x, d, ids, 0, VTSM_E_CLOSED);
    struct tsm_ide_check c;
    assert_int_equal(tsm_ide_link_check(d, NULL, &c), VTSM_E_INVAL);
    assert_int_equal(tsm_ide_link_check(d, &x.link, NULL), VTSM_E_INVAL);

    /* nothing broke: a good check still passes */
    x.dev->link = L_OK;
    assert_int_equal(link_check(&x, d, ids, 0, VTSM_OK), 0xf);
    tsm_ide_teardown(d, &x.peer);
    fx_close(&x);
}

/* ---- success ---- */

static void test_setup_one_stream(void **state)
{
    struct fx x;
    struct tsm_ide_dev *d = NULL;
    (void)state;
    fx_open(&x, NULL);
    assert_int_equal(tsm_ide_setup(x.pf, 0, &x.peer, 1, NULL, &d), VTSM_OK);
    assert_non_null(d);
    assert_int_equal(tsm_ide_first_stream(d), 0);
    assert_int_equal(tsm_ide_stream_count(d), 1);
    usage_is(x.pf, 0, 1, 2);
    usage_is(x.pf, 1, 0, 0);

    /* QUERY; KEY_PROG PR RX, PR TX, NPR RX, NPR TX, CPL RX, CPL TX; K_SET_GO RX ones first */
    static const uint8_t prog_kss[6] = {0x00, 0x02, 0x10, 0x12, 0x20, 0x22};
    static const uint8_t go_kss[6] = {0x00, 0x10, 0x20, 0x02, 0x12, 0x22};
    assert_int_equal(x.dev->nlog, 13);
    assert_int_equal(x.dev->log[0].obj, VTSM_IDEKM_QUERY);
    for (unsigned i = 0; i < 6; i++) {
        assert_int_equal(x.dev->log[1 + i].obj, VTSM_IDEKM_KEY_PROG);
        assert_int_equal(x.dev->log[1 + i].stream, 0);
        assert_int_equal(x.dev->log[1 + i].kss, prog_kss[i]);
        assert_int_equal(x.dev->log[7 + i].obj, VTSM_IDEKM_K_SET_GO);
        assert_int_equal(x.dev->log[7 + i].kss, go_kss[i]);
    }
    assert_int_equal(fake_live(x.dev, 0, 0), 6);
    /* six fresh keys and IFVs */
    assert_int_equal(x.dev->nseen, 6);
    for (unsigned i = 0; i < 6; i++)
        for (unsigned j = i + 1; j < 6; j++) {
            assert_true(memcmp(x.dev->seen[i], x.dev->seen[j], VTSM_IDEKM_KEY_SIZE) != 0);
            assert_true(x.dev->seen_ifv[i] != x.dev->seen_ifv[j]);
        }
    status_of(d, 0, 0, 0, 0, 0);
    /* both directions work, repeatedly (counters advance) */
    for (int i = 0; i < 3; i++)
        assert_int_equal(link_check(&x, d, (const uint8_t[]){0}, 0, VTSM_OK), 0x3);
    assert_int_equal(x.dev->n_link, 3);
    assert_true(x.dev->dev_tx[0][0][0] == 3);

    tsm_ide_teardown(d, &x.peer);
    assert_int_equal(x.dev->n_stop, 6);
    assert_int_equal(fake_held(x.dev), 0);
    usage_is(x.pf, 0, 0, 0);
    fx_close(&x);
}

static void test_setup_two_streams_two_devices(void **state)
{
    struct fx x;
    struct tsm_ide_dev *a = NULL, *b = NULL;
    struct fake *second = fake_new();
    struct tsm_ide_peer peer2 = {fake_vendor, second};
    struct tsm_link_transport link2 = {fake_link, second};
    (void)state;
    fx_open(&x, NULL);
    assert_int_equal(tsm_ide_setup(x.pf, 0, &x.peer, 2, NULL, &a), VTSM_OK);
    assert_int_equal(tsm_ide_setup(x.pf, 0, &peer2, 2, NULL, &b), VTSM_OK);
    assert_int_equal(tsm_ide_first_stream(a), 0);
    assert_int_equal(tsm_ide_stream_id(a, 1), 1);
    assert_int_equal(tsm_ide_first_stream(b), 2);
    assert_int_equal(tsm_ide_stream_id(b, 1), 3);
    usage_is(x.pf, 0, 4, 8);
    assert_int_equal(fake_live(x.dev, 0, 0) + fake_live(x.dev, 1, 0), 12);
    assert_int_equal(fake_live(second, 2, 0) + fake_live(second, 3, 0), 12);
    /* the port is full: a third device is refused */
    struct tsm_ide_dev *c = NULL;
    struct fake *third = fake_new();
    struct tsm_ide_peer peer3 = {fake_vendor, third};
    EXPECT(tsm_ide_setup(x.pf, 0, &peer3, 1, NULL, &c), VTSM_E_NO_STREAM, VTSM_RULE_IDE_1);
    assert_int_equal(count_obj(third, VTSM_IDEKM_KEY_PROG), 0);
    /* root port 1 is separate */
    assert_int_equal(tsm_ide_setup(x.pf, 1, &peer3, 1, NULL, &c), VTSM_OK);
    assert_int_equal(tsm_ide_first_stream(c), 0);
    usage_is(x.pf, 1, 1, 2);

    assert_int_equal(link_check(&x, a, (const uint8_t[]){0, 1}, 0, VTSM_OK), 0xf);
    struct fx y = x;
    y.link = link2;
    assert_int_equal(link_check(&y, b, (const uint8_t[]){2, 3}, 0, VTSM_OK), 0xf);
    status_of(b, 1, 0, 3, 0, 0);

    /* teardown frees the streams for a new device, lowest first */
    tsm_ide_teardown(a, &x.peer);
    assert_int_equal(fake_held(x.dev), 0);
    usage_is(x.pf, 0, 2, 4);
    struct fake *fourth = fake_new();
    struct tsm_ide_peer peer4 = {fake_vendor, fourth};
    struct tsm_ide_dev *e = NULL;
    assert_int_equal(tsm_ide_setup(x.pf, 0, &peer4, 1, NULL, &e), VTSM_OK);
    assert_int_equal(tsm_ide_first_stream(e), 0);
    /* teardown without a peer sends nothing */
    unsigned msgs = second->n_msgs;
    tsm_ide_teardown(b, NULL);
    assert_int_equal(second->n_msgs, msgs);
    tsm_ide_teardown(e, &peer4);
    tsm_ide_teardown(c, &peer3);
    usage_is(x.pf, 0, 0, 0);
    usage_is(x.pf, 1, 0, 0);
    fake_free(second);
    fake_free(third);
    fake_free(fourth);
    fx_close(&x);
}

static void test_refresh(void **state)
{
    struct fx x;
    struct tsm_ide_dev *d = NULL;
    const uint8_t ids[] = {0, 1};
    struct vtsm_buf old_rsp = {0};
    (void)state;
    fx_open(&x, NULL);
    assert_int_equal(tsm_ide_setup(x.pf, 0, &x.peer, 2, NULL, &d), VTSM_OK);
    assert_int_equal(link_check(&x, d, ids, 0, VTSM_OK), 0xf);
    /* keep a K0 answer of the device for later */
    assert_int_equal(vtsm_buf_set(&old_rsp, x.dev->last_link_rsp.data, x.dev->last_link_rsp.len),
                     VTSM_OK);
    unsigned start = x.dev->nlog;

    assert_int_equal(tsm_ide_refresh(d, &x.peer), VTSM_OK);
    /* 12 x KEY_PROG K1, 12 x K_SET_GO K1, then 12 x K_SET_STOP K0 (TX first) */
    assert_int_equal(x.dev->nlog - start, 36);
    for (unsigned i = 0; i < 12; i++) {
        const struct logged *p = &x.dev->log[start + i], *g = &x.dev->log[start + 12 + i],
                            *s = &x.dev->log[start + 24 + i];
        assert_int_equal(p->obj, VTSM_IDEKM_KEY_PROG);
        assert_int_equal(p->kss & 1, 1);
        assert_int_equal(g->obj, VTSM_IDEKM_K_SET_GO);
        assert_int_equal(g->kss & 1, 1);
        assert_int_equal(s->obj, VTSM_IDEKM_K_SET_STOP);
        assert_int_equal(s->kss & 1, 0);
        assert_int_equal(s->kss & VTSM_IDEKM_DIR_TX, (i % 6) < 3 ? VTSM_IDEKM_DIR_TX : 0);
    }
    assert_int_equal(fake_live(x.dev, 0, 0) + fake_live(x.dev, 1, 0), 0);
    assert_int_equal(fake_live(x.dev, 0, 1) + fake_live(x.dev, 1, 1), 12);
    assert_int_equal(fake_held(x.dev), 12);
    usage_is(x.pf, 0, 2, 4);
    status_of(d, 0, 0, 0, 1, 1);
    status_of(d, 1, 0, 1, 1, 1);
    /* the new set works both ways */
    assert_int_equal(link_check(&x, d, ids, 1, VTSM_OK), 0xf);
    /* an answer under the old set no longer verifies at the root port */
    assert_int_equal(vtsm_buf_set(&x.dev->stale, old_rsp.data, old_rsp.len), VTSM_OK);
    x.dev->link = L_STALE;
    assert_int_equal(link_check(&x, d, ids, 1, VTSM_OK), 0x5);
    x.dev->link = L_OK;

    /* and back to K0 */
    assert_int_equal(tsm_ide_refresh(d, &x.peer), VTSM_OK);
    status_of(d, 1, 0, 1, 0, 2);
    assert_int_equal(link_check(&x, d, ids, 0, VTSM_OK), 0xf);
    assert_int_equal(fake_held(x.dev), 12);
    tsm_ide_teardown(d, &x.peer);
    assert_int_equal(fake_held(x.dev), 0);
    usage_is(x.pf, 0, 0, 0);
    vtsm_buf_free(&old_rsp);
    fx_close(&x);
}

static void test_refresh_old_stop_unacked(void **state)
{
    struct fx x;
    struct tsm_ide_dev *d = NULL;
    (void)state;
    fx_open(&x, NULL);
    assert_int_equal(tsm_ide_setup(x.pf, 0, &x.peer, 1, NULL, &d), VTSM_OK);
    x.dev->stop_garbage = true; /* K_SET_STOP answered with a KP_ACK */
    vtsm_err_clear();
    assert_int_equal(tsm_ide_refresh(d, &x.peer), VTSM_E_PEER_UNEXPECTED);
    detail_has("IDE refresh committed (new key sets live), but IDE_KM K_SET_STOP stream 0 K0");
    /* committed: K1 live on both ends */
    status_of(d, 0, 0, 0, 1, 1);
    usage_is(x.pf, 0, 1, 2);
    x.dev->stop_garbage = false;
    assert_int_equal(link_check(&x, d, (const uint8_t[]){0}, 1, VTSM_OK), 0x3);
    tsm_ide_teardown(d, &x.peer);
    fx_close(&x);
}

static void test_no_key_bytes_in_status(void **state)
{
    struct fx x;
    struct tsm_ide_dev *d = NULL;
    cbor_item_t *m = vtsm_abi_map_new(), *arr = vtsm_abi_array_new();
    unsigned char *buf = NULL;
    size_t cap = 0, n;
    (void)state;
    fx_open(&x, NULL);
    assert_int_equal(tsm_ide_setup(x.pf, 0, &x.peer, 2, NULL, &d), VTSM_OK);
    assert_int_equal(tsm_ide_refresh(d, &x.peer), VTSM_OK);
    struct tsm_ide_status st;
    struct tsm_ide_check c;
    assert_int_equal(tsm_ide_status(d, &st), VTSM_OK);
    assert_int_equal(tsm_reply_put_ide(m, &st), VTSM_OK);
    assert_int_equal(tsm_ide_link_check(d, &x.link, &c), VTSM_OK);
    assert_int_equal(tsm_reply_push_link_check(arr, &c), VTSM_OK);
    assert_int_equal(vtsm_abi_put_item(m, "check", arr), VTSM_OK);
    /* the views themselves hold no key bytes either */
    for (unsigned i = 0; i < x.dev->nseen; i++) {
        assert_null(memmem(&st, sizeof(st), x.dev->seen[i], 8));
        assert_null(memmem(&c, sizeof(c), x.dev->seen[i], 8));
    }
    n = cbor_serialize_alloc(m, &buf, &cap);
    assert_true(n > 0);
    assert_int_equal(x.dev->nseen, 24);
    for (unsigned i = 0; i < x.dev->nseen; i++) {
        assert_null(memmem(buf, n, x.dev->seen[i], 8));
        assert_null(memmem(buf, n, &x.dev->seen_ifv[i], 8));
    }
    free(buf);
    cbor_decref(&m);
    tsm_ide_teardown(d, &x.peer);
    fx_close(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_setup_bad_args),
        cmocka_unit_test(test_setup_no_stream),
        cmocka_unit_test(test_setup_no_key_slot),
        cmocka_unit_test(test_setup_peer_caps),
        cmocka_unit_test(test_setup_stops_stale_keys),
        cmocka_unit_test(test_setup_query_resp_contradiction),
        cmocka_unit_test(test_setup_nak_keyprog),
        cmocka_unit_test(test_setup_wrong_echo),
        cmocka_unit_test(test_setup_no_go_ack),
        cmocka_unit_test(test_setup_replay_ack),
        cmocka_unit_test(test_setup_second_stream_fails),
        cmocka_unit_test(test_setup_transport_error),
        cmocka_unit_test(test_rollback_keeps_first_error),
        cmocka_unit_test(test_refresh_no_key_slot),
        cmocka_unit_test(test_refresh_failures_keep_old_set),
        cmocka_unit_test(test_link_check_failures),
        cmocka_unit_test(test_setup_one_stream),
        cmocka_unit_test(test_setup_two_streams_two_devices),
        cmocka_unit_test(test_refresh),
        cmocka_unit_test(test_refresh_old_stop_unacked),
        cmocka_unit_test(test_no_key_bytes_in_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
