/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tsm/tsm_ide against the device emulator in-process: IDE_KM through the TSM's SPDM
 * requester inside a real secure session (tsm_ide_peer_spdm -> vtsm_spdm_req_vendor ->
 * vtsm_dev_handle) and link checks through vtsm_dev_link. A thin wrapper around the peer
 * sees each IDE_KM request and answer in the clear (as the TSM does) and keeps what the
 * device may hold: keys it acknowledged with KP_ACK Status 0 and did not stop since.
 *
 * Failure cases first - each IDE_KM device fault with its exact status and detail, the
 * stream and key slots freed, nothing live at the device and every acknowledged key
 * stopped (where the session survives) - then setup of 1 and 2 streams, link check,
 * refresh (old keys refused afterwards at both ends), teardown and reuse, and no key byte
 * in anything the TSM reports.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tsm_ide.h"
#include "tsm_platform.h"
#include "tsm_reply.h"
#include "vtsm_abi.h"
#include "vtsm_devemu.h"
#include "vtsm_idekm.h"
#include "vtsm_link_frame.h"

#define MAX_LOGGED_KEYS 64

struct loop {
    struct vtsm_dev *dev;
    struct vtsm_spdm_req *r;
    struct tsm_ide_peer spdm; /* the real peer */
    struct tsm_ide_peer peer; /* the wrapper handed to tsm_ide */
    struct tsm_link_transport link;
    /* what the wrapper saw */
    unsigned n_keyprog, n_go, n_stop, n_failed;
    uint8_t held[256][2][3][2]; /* acknowledged KEY_PROG not stopped since */
    /* link frames */
    bool record_link, replay_link;
    struct vtsm_buf last_req, last_rsp, replay;
    /* --key-log lines */
    char keys[MAX_LOGGED_KEYS][65];
    unsigned nkeys;
};

static void key_log(void *ctx, const char *line)
{
    struct loop *l = ctx;
    const char *k = strstr(line, " key ");
    assert_non_null(k);
    assert_true(l->nkeys < MAX_LOGGED_KEYS);
    memcpy(l->keys[l->nkeys], k + 5, 64);
    l->keys[l->nkeys++][64] = '\0';
}

static vtsm_status doe_exchange(void *ctx, const uint8_t *req, size_t len, struct vtsm_buf *rsp)
{
    struct loop *l = ctx;
    vtsm_status st = vtsm_dev_handle(l->dev, req, len, rsp);
    /* as tsm-devemu and the host do: a request the device drops gets an empty answer */
    if (st != VTSM_OK && rsp->len == 0)
        return VTSM_OK;
    return st;
}

static void kss_split(uint8_t kss, unsigned *ks, unsigned *sub, unsigned *dir)
{
    *ks = kss & 1u;
    *dir = (kss & VTSM_IDEKM_DIR_TX) ? 1 : 0;
    *sub = (kss >> 4) % 3;
}

/* The peer tsm_ide uses: the real one, watched. */
static vtsm_status watch_vendor(void *ctx, const uint8_t *req, size_t len, struct vtsm_buf *rsp)
{
    struct loop *l = ctx;
    unsigned ks, sub, dir;
    vtsm_status st = l->spdm.vendor(l->spdm.ctx, req, len, rsp);

    assert_true(len >= 2);
    if (req[1] == VTSM_IDEKM_QUERY)
        return st;
    assert_true(len >= VTSM_IDEKM_SHORT_MSG_SIZE);
    uint8_t stream = req[4];
    kss_split(req[6], &ks, &sub, &dir);
    if (st != VTSM_OK)
        l->n_failed++;
    switch (req[1]) {
    case VTSM_IDEKM_KEY_PROG:
        l->n_keyprog++;
        /* KP_ACK Status is byte 5 */
        if (st == VTSM_OK && rsp->len == VTSM_IDEKM_SHORT_MSG_SIZE && rsp->data[5] == 0)
            l->held[stream][ks][sub][dir] = 1;
        break;
    case VTSM_IDEKM_K_SET_GO:
        l->n_go++;
        break;
    case VTSM_IDEKM_K_SET_STOP:
        l->n_stop++;
        if (st == VTSM_OK)
            l->held[stream][ks][sub][dir] = 0;
        break;
    default:
        fail_msg("unexpected IDE_KM object %u", req[1]);
    }
    return st;
}

static vtsm_status link_exchange(void *ctx, const uint8_t *frame, size_t len, struct vtsm_buf *rsp)
{
    struct loop *l = ctx;
    vtsm_status st;
    if (l->record_link)
        assert_int_equal(vtsm_buf_set(&l->last_req, frame, len), VTSM_OK);
    st = vtsm_dev_link(l->dev, frame, len, rsp);
    if (st == VTSM_OK && l->record_link)
        assert_int_equal(vtsm_buf_set(&l->last_rsp, rsp->data, rsp->len), VTSM_OK);
    if (st == VTSM_OK && l->replay_link)
        assert_int_equal(vtsm_buf_set(rsp, l->replay.data, l->replay.len), VTSM_OK);
    return st;
}

static unsigned held_count(const struct loop *l)
{
    unsigned n = 0;
    for (unsigned s = 0; s < 256; s++)
        for (unsigned k = 0; k < 2; k++)
            for (unsigned sub = 0; sub < 3; sub++)
                n += l->held[s][k][sub][0] + l->held[s][k][sub][1];
    return n;
}

/* Key set live at the device for every sub-stream / direction of stream, or -1 if none.
 * Fails the test if the sub-streams disagree. */
static int dev_live(const struct loop *l, unsigned stream)
{
    int ks = vtsm_dev_ide_live_key_set(l->dev, stream, 0, false);
    for (unsigned sub = 0; sub < 3; sub++)
        for (unsigned tx = 0; tx < 2; tx++)
            assert_int_equal(vtsm_dev_ide_live_key_set(l->dev, stream, sub, tx), ks);
    return ks;
}

static void loop_open(struct loop *l, uint32_t faults, unsigned ide_streams)
{
    struct vtsm_dev_config cfg;
    struct vtsm_spdm_transport tp = {.exchange = doe_exchange, .ctx = l};
    uint8_t mask = 0;

    memset(l, 0, sizeof(*l));
    vtsm_dev_config_default(&cfg);
    cfg.faults = faults;
    cfg.ide_streams = ide_streams;
    cfg.key_log = key_log;
    cfg.key_log_ctx = l;
    assert_int_equal(vtsm_dev_new(&cfg, &l->dev), VTSM_OK);
    assert_int_equal(vtsm_spdm_req_new(NULL, &tp, &l->r), VTSM_OK);
    assert_int_equal(vtsm_spdm_req_init_connection(l->r), VTSM_OK);
    assert_int_equal(vtsm_spdm_req_get_digests(l->r, &mask, NULL), VTSM_OK);
    assert_int_equal(vtsm_spdm_req_get_certificate(l->r, 0), VTSM_OK);
    assert_int_equal(vtsm_spdm_req_start_session(l->r, 0), VTSM_OK);
    l->spdm = tsm_ide_peer_spdm(l->r);
    l->peer = (struct tsm_ide_peer){watch_vendor, l};
    l->link = (struct tsm_link_transport){link_exchange, l};
}

static void loop_close(struct loop *l)
{
    vtsm_spdm_req_free(l->r);
    vtsm_dev_free(l->dev);
    vtsm_buf_free(&l->last_req);
    vtsm_buf_free(&l->last_rsp);
    vtsm_buf_free(&l->replay);
    memset(l, 0, sizeof(*l));
}

static struct tsm_platform *platform(void)
{
    struct tsm_platform *p = NULL;
    assert_int_equal(tsm_platform_new(NULL, 0, &p), VTSM_OK);
    return p;
}

static void usage_is(struct tsm_platform *p, uint32_t rp, unsigned streams, unsigned slots)
{
    struct tsm_rp_usage u;
    assert_int_equal(tsm_platform_usage(p, rp, &u), VTSM_OK);
    assert_int_equal(u.streams_used, streams);
    assert_int_equal(u.key_slots_used, slots);
}

/* Link check; flags packed as bit 2i rp_to_device, 2i+1 device_to_rp. */
static unsigned link_check(struct loop *l, struct tsm_ide_dev *d, unsigned key_set)
{
    cbor_item_t *arr = vtsm_abi_array_new();
    struct tsm_ide_check c;
    unsigned bits = 0;
    assert_int_equal(tsm_ide_link_check(d, &l->link, &c), VTSM_OK);
    assert_int_equal(tsm_reply_push_link_check(arr, &c), VTSM_OK);
    assert_int_equal(cbor_array_size(arr), tsm_ide_stream_count(d));
    for (size_t i = 0; i < cbor_array_size(arr); i++) {
        cbor_item_t *m = cbor_array_get(arr, i);
        uint64_t sid = 999, ks = 9;
        bool a = false, b = false;
        assert_int_equal(vtsm_abi_get_uint(m, "stream_id", &sid), VTSM_OK);
        assert_int_equal(vtsm_abi_get_uint(m, "key_set", &ks), VTSM_OK);
        assert_int_equal(vtsm_abi_get_bool(m, "rp_to_device", &a), VTSM_OK);
        assert_int_equal(vtsm_abi_get_bool(m, "device_to_rp", &b), VTSM_OK);
        assert_int_equal(sid, tsm_ide_stream_id(d, (unsigned)i));
        assert_int_equal(ks, key_set);
        bits |= (unsigned)a << (2 * i) | (unsigned)b << (2 * i + 1);
        cbor_decref(&m);
    }
    cbor_decref(&arr);
    return bits;
}

/* ---- failures: device faults ---- */

struct fault_case {
    enum vtsm_dev_fault fault;
    vtsm_status status;
    const char *detail; /* exact */
    bool session_survives;
};

static void run_fault(const struct fault_case *c)
{
    struct loop l;
    struct tsm_platform *pf = platform();
    struct tsm_ide_dev *d = NULL;

    loop_open(&l, VTSM_DEV_FAULT_BIT(c->fault), 4);
    vtsm_err_clear();
    assert_int_equal(tsm_ide_setup(pf, 0, &l.peer, 1, NULL, &d), c->status);
    if (strcmp(vtsm_err_detail(), c->detail) != 0)
        fail_msg("fault %s: detail \"%s\", expected \"%s\"", vtsm_dev_fault_name(c->fault),
                 vtsm_err_detail(), c->detail);
    assert_null(d);
    /* the stream and its key slots are free again, nothing runs at the device */
    usage_is(pf, 0, 0, 0);
    usage_is(pf, 1, 0, 0);
    for (unsigned s = 0; s < 4; s++)
        assert_int_equal(dev_live(&l, s), -1);
    assert_int_equal(vtsm_spdm_req_info(l.r)->session_active, c->session_survives);
    /* every key the device acknowledged was stopped again (and so wiped there) */
    if (c->session_survives)
        assert_int_equal(held_count(&l), 0);
    assert_true(l.n_stop > 0 || !c->session_survives || l.nkeys == 0);
    loop_close(&l);
    tsm_platform_free(pf);
}

static void test_fault_nak_keyprog(void **state)
{
    (void)state;
    const struct fault_case c = {VTSM_DEV_FAULT_IDEKM_NAK_KEYPROG, VTSM_E_PEER_NAK,
                                 "IDE_KM KEY_PROG stream 0 K0 PR RX: KP_ACK Status 4 "
                                 "(UNSPECIFIED_FAILURE)",
                                 true};
    run_fault(&c);
}

static void test_fault_wrong_stream(void **state)
{
    (void)state;
    const struct fault_case c = {
        VTSM_DEV_FAULT_IDEKM_WRONG_STREAM, VTSM_E_PEER_MALFORMED,
        "KP_ACK for stream 0 K0 PR RX: stream_id 1, expected 0 (PCIe 6.33.3: the ack echoes the "
        "request)",
        true};
    run_fault(&c);
}

static void test_fault_wrong_keyset(void **state)
{
    (void)state;
    const struct fault_case c = {VTSM_DEV_FAULT_IDEKM_WRONG_KEYSET, VTSM_E_PEER_MALFORMED,
                                 "KP_ACK for stream 0 K0 PR RX: key_sub_stream 0x01, expected "
                                 "0x00 (PCIe 6.33.3: the ack echoes the request)",
                                 true};
    run_fault(&c);
}

static void test_fault_wrong_substream(void **state)
{
    (void)state;
    const struct fault_case c = {VTSM_DEV_FAULT_IDEKM_WRONG_SUBSTREAM, VTSM_E_PEER_MALFORMED,
                                 "KP_ACK for stream 0 K0 PR RX: key_sub_stream 0x10, expected "
                                 "0x00 (PCIe 6.33.3: the ack echoes the request)",
                                 true};
    run_fault(&c);
}

static void test_fault_replay_ack(void **state)
{
    (void)state;
    const struct fault_case c = {VTSM_DEV_FAULT_IDEKM_REPLAY_ACK, VTSM_E_PEER_MALFORMED,
                                 "KP_ACK for stream 0 K0 PR TX: key_sub_stream 0x00, expected "
                                 "0x02 (PCIe 6.33.3: the ack echoes the request)",
                                 true};
    run_fault(&c);
}

static void test_fault_no_go_ack(void **state)
{
    (void)state;
    /* The dropped K_SET_GO leaves the requester an empty DOE answer: the SPDM requester
     * drops the session, so no K_SET_STOP can follow. Nothing went live at the device. */
    const struct fault_case c = {VTSM_DEV_FAULT_IDEKM_NO_GO_ACK, VTSM_E_DOE_TRUNCATED,
                                 "IDE_KM K_SET_GO stream 0 K0 PR RX: DOE object of 0 bytes is "
                                 "shorter than the 2-DW header",
                                 false};
    struct loop l;
    struct tsm_platform *pf = platform();
    struct tsm_ide_dev *d = NULL;
    loop_open(&l, VTSM_DEV_FAULT_BIT(c.fault), 4);
    vtsm_err_clear();
    assert_int_equal(tsm_ide_setup(pf, 0, &l.peer, 1, NULL, &d), c.status);
    assert_string_equal(vtsm_err_detail(), c.detail);
    assert_null(d);
    usage_is(pf, 0, 0, 0);
    assert_int_equal(dev_live(&l, 0), -1);
    assert_false(vtsm_spdm_req_info(l.r)->session_active);
    assert_int_equal(l.n_go, 1);
    assert_int_equal(l.n_stop, 0); /* after the session is gone nothing more is tried */
    loop_close(&l);
    tsm_platform_free(pf);
}

static void test_device_caps(void **state)
{
    struct loop l;
    struct tsm_platform *pf = platform();
    struct tsm_ide_dev *d = NULL;
    (void)state;
    loop_open(&l, 0, 1);
    vtsm_err_clear();
    assert_int_equal(tsm_ide_setup(pf, 0, &l.peer, 2, NULL, &d), VTSM_E_PEER_CAPS);
    assert_string_equal(vtsm_err_detail(), "IDE_KM QUERY_RESP: device supports 1 selective IDE "
                                           "streams, 2 requested (rule IDE.8)");
    assert_int_equal(vtsm_err_rule(), VTSM_RULE_IDE_8);
    assert_int_equal(l.n_keyprog, 0);
    usage_is(pf, 0, 0, 0);
    loop_close(&l);

    loop_open(&l, 0, 0);
    assert_int_equal(tsm_ide_setup(pf, 0, &l.peer, 1, NULL, &d), VTSM_E_PEER_CAPS);
    assert_non_null(strstr(vtsm_err_detail(), "does not support selective IDE streams"));
    assert_null(d);
    loop_close(&l);
    tsm_platform_free(pf);
}

/* ---- success ---- */

static void test_setup_one_and_two_streams(void **state)
{
    struct loop a, b;
    struct tsm_platform *pf = platform();
    struct tsm_ide_dev *da = NULL, *db = NULL;
    (void)state;
    loop_open(&a, 0, 4);
    loop_open(&b, 0, 4);
    assert_int_equal(tsm_ide_setup(pf, 0, &a.peer, 1, NULL, &da), VTSM_OK);
    assert_int_equal(tsm_ide_setup(pf, 0, &b.peer, 2, NULL, &db), VTSM_OK);
    assert_int_equal(tsm_ide_first_stream(da), 0);
    assert_int_equal(tsm_ide_first_stream(db), 1);
    assert_int_equal(tsm_ide_stream_id(db, 1), 2);
    usage_is(pf, 0, 3, 6);
    assert_int_equal(a.nkeys, 6);
    assert_int_equal(b.nkeys, 12);
    assert_int_equal(dev_live(&a, 0), 0);
    assert_int_equal(dev_live(&b, 1), 0);
    assert_int_equal(dev_live(&b, 2), 0);
    assert_int_equal(dev_live(&b, 0), -1);

    for (int i = 0; i < 3; i++) {
        assert_int_equal(link_check(&a, da, 0), 0x3);
        assert_int_equal(link_check(&b, db, 0), 0xf);
    }
    /* the devices hold different keys: a's frames do not verify at b */
    a.record_link = true;
    assert_int_equal(link_check(&a, da, 0), 0x3);
    struct vtsm_buf rsp = {0};
    assert_int_equal(vtsm_dev_link(b.dev, a.last_req.data, a.last_req.len, &rsp), VTSM_OK);
    struct vtsm_link_frame f;
    assert_int_equal(vtsm_link_frame_decode(rsp.data, rsp.len, &f), VTSM_OK);
    assert_int_equal(f.kind, VTSM_LINK_KIND_FAILURE);
    vtsm_buf_free(&rsp);

    tsm_ide_teardown(da, &a.peer);
    tsm_ide_teardown(db, &b.peer);
    assert_int_equal(held_count(&a) + held_count(&b), 0);
    assert_int_equal(dev_live(&a, 0), -1);
    assert_int_equal(dev_live(&b, 1), -1);
    usage_is(pf, 0, 0, 0);
    loop_close(&a);
    loop_close(&b);
    tsm_platform_free(pf);
}

static void test_refresh(void **state)
{
    struct loop l;
    struct tsm_platform *pf = platform();
    struct tsm_ide_dev *d = NULL;
    struct vtsm_buf old_req = {0}, old_rsp = {0}, rsp = {0};
    struct vtsm_link_frame f;
    (void)state;
    loop_open(&l, 0, 4);
    assert_int_equal(tsm_ide_setup(pf, 0, &l.peer, 2, NULL, &d), VTSM_OK);
    l.record_link = true;
    assert_int_equal(link_check(&l, d, 0), 0xf);
    assert_int_equal(vtsm_buf_set(&old_req, l.last_req.data, l.last_req.len), VTSM_OK);
    assert_int_equal(vtsm_buf_set(&old_rsp, l.last_rsp.data, l.last_rsp.len), VTSM_OK);

    assert_int_equal(tsm_ide_refresh(d, &l.peer), VTSM_OK);
    assert_int_equal(dev_live(&l, 0), 1);
    assert_int_equal(dev_live(&l, 1), 1);
    assert_int_equal(l.nkeys, 24);
    assert_int_equal(held_count(&l), 12); /* K0 stopped and wiped at the device */
    usage_is(pf, 0, 2, 4);

    /* with the new set: both directions pass */
    assert_int_equal(link_check(&l, d, 1), 0xf);
    /* an old K0 request no longer verifies at the device */
    assert_int_equal(vtsm_dev_link(l.dev, old_req.data, old_req.len, &rsp), VTSM_OK);
    assert_int_equal(vtsm_link_frame_decode(rsp.data, rsp.len, &f), VTSM_OK);
    assert_int_equal(f.kind, VTSM_LINK_KIND_FAILURE);
    /* an old K0 answer no longer verifies at the root port */
    assert_int_equal(vtsm_buf_set(&l.replay, old_rsp.data, old_rsp.len), VTSM_OK);
    l.replay_link = true;
    assert_int_equal(link_check(&l, d, 1), 0x5);
    l.replay_link = false;
    assert_int_equal(link_check(&l, d, 1), 0xf);

    /* refresh again: back to K0, fresh keys */
    assert_int_equal(tsm_ide_refresh(d, &l.peer), VTSM_OK);
    assert_int_equal(dev_live(&l, 1), 0);
    assert_int_equal(link_check(&l, d, 0), 0xf);
    cbor_item_t *m = vtsm_abi_map_new();
    const cbor_item_t *ide, *streams;
    uint64_t v = 9;
    struct tsm_ide_status st;
    assert_int_equal(tsm_ide_status(d, &st), VTSM_OK);
    assert_int_equal(tsm_reply_put_ide(m, &st), VTSM_OK);
    assert_int_equal(vtsm_abi_get_map(m, "ide", &ide), VTSM_OK);
    assert_int_equal(vtsm_abi_get_array(ide, "streams", &streams), VTSM_OK);
    cbor_item_t *s1 = cbor_array_get(streams, 1);
    assert_int_equal(vtsm_abi_get_uint(s1, "refreshes", &v), VTSM_OK);
    assert_int_equal(v, 2);
    assert_int_equal(vtsm_abi_get_uint(s1, "key_set", &v), VTSM_OK);
    assert_int_equal(v, 0);
    cbor_decref(&s1);
    cbor_decref(&m);

    tsm_ide_teardown(d, &l.peer);
    assert_int_equal(held_count(&l), 0);
    assert_int_equal(dev_live(&l, 0), -1);
    usage_is(pf, 0, 0, 0);
    vtsm_buf_free(&old_req);
    vtsm_buf_free(&old_rsp);
    vtsm_buf_free(&rsp);
    loop_close(&l);
    tsm_platform_free(pf);
}

static void test_teardown_frees_streams(void **state)
{
    struct loop a, b;
    struct tsm_rp_config c = {0, 2, 4};
    struct tsm_platform *pf = NULL;
    struct tsm_ide_dev *da = NULL, *db = NULL;
    (void)state;
    assert_int_equal(tsm_platform_new(&c, 1, &pf), VTSM_OK);
    loop_open(&a, 0, 4);
    loop_open(&b, 0, 4);
    assert_int_equal(tsm_ide_setup(pf, 0, &a.peer, 2, NULL, &da), VTSM_OK);
    vtsm_err_clear();
    assert_int_equal(tsm_ide_setup(pf, 0, &b.peer, 1, NULL, &db), VTSM_E_NO_STREAM);
    assert_int_equal(vtsm_err_rule(), VTSM_RULE_IDE_1);
    assert_int_equal(b.n_keyprog, 0);
    tsm_ide_teardown(da, &a.peer);
    assert_int_equal(dev_live(&a, 0), -1);
    assert_int_equal(dev_live(&a, 1), -1);
    assert_int_equal(tsm_ide_setup(pf, 0, &b.peer, 2, NULL, &db), VTSM_OK);
    assert_int_equal(tsm_ide_first_stream(db), 0);
    assert_int_equal(link_check(&b, db, 0), 0xf);
    tsm_ide_teardown(db, &b.peer);
    usage_is(pf, 0, 0, 0);
    loop_close(&a);
    loop_close(&b);
    tsm_platform_free(pf);
}

static void test_no_key_bytes_reported(void **state)
{
    struct loop l;
    struct tsm_platform *pf = platform();
    struct tsm_ide_dev *d = NULL;
    cbor_item_t *m = vtsm_abi_map_new(), *arr = vtsm_abi_array_new(), *rps = vtsm_abi_array_new();
    unsigned char *buf = NULL;
    size_t cap = 0, n;
    (void)state;
    loop_open(&l, 0, 4);
    l.record_link = true;
    assert_int_equal(tsm_ide_setup(pf, 0, &l.peer, 2, NULL, &d), VTSM_OK);
    assert_int_equal(tsm_ide_refresh(d, &l.peer), VTSM_OK);
    struct tsm_ide_status st;
    struct tsm_ide_check c;
    struct tsm_rp_usage u[2];
    assert_int_equal(tsm_ide_status(d, &st), VTSM_OK);
    assert_int_equal(tsm_reply_put_ide(m, &st), VTSM_OK);
    assert_int_equal(tsm_ide_link_check(d, &l.link, &c), VTSM_OK);
    assert_int_equal(tsm_reply_push_link_check(arr, &c), VTSM_OK);
    assert_int_equal(vtsm_abi_put_item(m, "check", arr), VTSM_OK);
    for (size_t i = 0; i < 2; i++)
        assert_int_equal(tsm_platform_usage(pf, tsm_platform_rp_id(pf, i), &u[i]), VTSM_OK);
    assert_int_equal(tsm_reply_push_root_ports(rps, u, 2), VTSM_OK);
    assert_int_equal(vtsm_abi_put_item(m, "root_ports", rps), VTSM_OK);
    n = cbor_serialize_alloc(m, &buf, &cap);
    assert_true(n > 0);
    assert_int_equal(l.nkeys, 24);
    for (unsigned i = 0; i < l.nkeys; i++) {
        uint8_t key[32];
        assert_int_equal(vtsm_unhex(key, sizeof(key), l.keys[i]), 32);
        assert_null(memmem(buf, n, key, 8));
        /* nor in the link frames the host carries */
        assert_null(memmem(l.last_req.data, l.last_req.len, key, 8));
        assert_null(memmem(l.last_rsp.data, l.last_rsp.len, key, 8));
        /* every key is fresh */
        for (unsigned j = 0; j < i; j++)
            assert_string_not_equal(l.keys[i], l.keys[j]);
    }
    free(buf);
    cbor_decref(&m);
    tsm_ide_teardown(d, &l.peer);
    loop_close(&l);
    tsm_platform_free(pf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fault_nak_keyprog),
        cmocka_unit_test(test_fault_wrong_stream),
        cmocka_unit_test(test_fault_wrong_keyset),
        cmocka_unit_test(test_fault_wrong_substream),
        cmocka_unit_test(test_fault_replay_ack),
        cmocka_unit_test(test_fault_no_go_ack),
        cmocka_unit_test(test_device_caps),
        cmocka_unit_test(test_setup_one_and_two_streams),
        cmocka_unit_test(test_refresh),
        cmocka_unit_test(test_teardown_frees_streams),
        cmocka_unit_test(test_no_key_bytes_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
