/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * devemu: the IDE_KM responder and the simulated link, in-process. The TSM's SPDM
 * requester (vtsm_spdm_req) drives the emulated device (vtsm_dev_handle) over a loopback
 * transport and sends hand-built IDE_KM objects inside a real secure session; link frames
 * go to vtsm_dev_link. Failure cases first, each with its exact KP_ACK Status or SPDM
 * ERROR and a check that nothing else changed; then exact bytes, the key lifecycle, the
 * link check and every IDE_KM fault.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/crypto.h>

#include "vtsm_devemu.h"
#include "vtsm_doe.h"
#include "vtsm_idekm.h"
#include "vtsm_link_frame.h"
#include "vtsm_spdm_req.h"

#define KEYLOG_MAX 64
#define RX         false
#define TX         true

/* ---- loopback: requester <-> device ---- */

struct loop {
    struct vtsm_dev *dev;
    struct vtsm_spdm_req *r;
    struct vtsm_buf rsp; /* the last vendor-defined response payload */
    vtsm_status dev_st;  /* what vtsm_dev_handle returned last */
    unsigned keylog_n;
    char keylog[KEYLOG_MAX][192];
};

static vtsm_status loop_exchange(void *ctx, const uint8_t *req, size_t len, struct vtsm_buf *rsp)
{
    struct loop *l = ctx;
    l->dev_st = vtsm_dev_handle(l->dev, req, len, rsp);
    return l->dev_st;
}

static void keylog_cb(void *ctx, const char *line)
{
    struct loop *l = ctx;
    assert_true(l->keylog_n < KEYLOG_MAX);
    snprintf(l->keylog[l->keylog_n++], sizeof(l->keylog[0]), "%s", line);
}

static void loop_new_requester(struct loop *l)
{
    struct vtsm_spdm_req_opts o;
    struct vtsm_spdm_transport tp = {.exchange = loop_exchange, .ctx = l};
    vtsm_spdm_req_opts_default(&o);
    assert_int_equal(vtsm_spdm_req_new(&o, &tp, &l->r), VTSM_OK);
}

/* A device (default config with faults, or c) and a requester in a secure session. */
static struct loop *loop_open(const struct vtsm_dev_config *c, uint32_t faults)
{
    struct vtsm_dev_config cfg;
    struct loop *l = calloc(1, sizeof(*l));
    assert_non_null(l);
    if (c)
        cfg = *c;
    else
        vtsm_dev_config_default(&cfg);
    cfg.faults |= faults;
    cfg.key_log = keylog_cb;
    cfg.key_log_ctx = l;
    assert_int_equal(vtsm_dev_new(&cfg, &l->dev), VTSM_OK);
    loop_new_requester(l);
    return l;
}

static void loop_session(struct loop *l)
{
    assert_int_equal(vtsm_spdm_req_init_connection(l->r), VTSM_OK);
    assert_int_equal(vtsm_spdm_req_get_certificate(l->r, 0), VTSM_OK);
    assert_int_equal(vtsm_spdm_req_start_session(l->r, 0), VTSM_OK);
}

static void loop_close(struct loop *l)
{
    vtsm_spdm_req_free(l->r);
    vtsm_dev_free(l->dev);
    vtsm_buf_free(&l->rsp);
    OPENSSL_cleanse(l->keylog, sizeof(l->keylog));
    free(l);
}

/* One vendor-defined exchange inside the session; the answer lands in l->rsp. */
static vtsm_status vdm(struct loop *l, const uint8_t *p, size_t n)
{
    vtsm_buf_reset(&l->rsp);
    return vtsm_spdm_req_vendor(l->r, p, n, &l->rsp);
}

/* The requester saw exactly SPDM ERROR(code, data). */
static void expect_spdm_error(const struct loop *l, vtsm_status st, uint8_t code, uint8_t data)
{
    uint8_t got_data = 0xEE;
    assert_int_equal(st, VTSM_E_PEER_ERROR);
    uint8_t got = vtsm_spdm_req_peer_error(l->r, &got_data);
    if (got != code || got_data != data)
        fail_msg("expected ERROR(0x%02x, data 0x%02x), got ERROR(0x%02x, data 0x%02x): %s", code,
                 data, got, got_data, vtsm_err_detail());
}

/* ---- IDE_KM helpers ---- */

static void test_key(struct vtsm_idekm_key *k, uint8_t seed)
{
    for (unsigned i = 0; i < VTSM_IDEKM_KEY_SIZE; i++)
        k->key[i] = (uint8_t)(seed * 7 + i);
    k->ifv = 0x1000000000000000ull * (seed & 0xF) + seed;
}

static vtsm_status key_prog_raw(struct loop *l, uint8_t stream, uint8_t kss, uint8_t port,
                                const struct vtsm_idekm_key *k)
{
    uint8_t m[VTSM_IDEKM_KEY_PROG_SIZE];
    struct vtsm_wr w = vtsm_wr_init(m, sizeof(m));
    assert_int_equal(vtsm_idekm_build_key_prog(&w, stream, 0, port, k), VTSM_OK);
    m[6] = kss; /* as given, reserved bits and sub-streams included */
    vtsm_status st = vdm(l, m, w.len);
    OPENSSL_cleanse(m, sizeof(m));
    return st;
}

/* KEY_PROG answered with a KP_ACK of this Status echoing these fields. */
static void expect_kp_ack(const struct loop *l, uint8_t stream, uint8_t status, uint8_t kss,
                          uint8_t port)
{
    const uint8_t want[8] = {0x00, VTSM_IDEKM_KP_ACK, 0, 0, stream, status, kss, port};
    assert_int_equal(l->rsp.len, 8);
    assert_memory_equal(l->rsp.data, want, 8);
}

static void key_prog_ok(struct loop *l, uint8_t stream, uint8_t kss, const struct vtsm_idekm_key *k)
{
    assert_int_equal(key_prog_raw(l, stream, kss, 0, k), VTSM_OK);
    expect_kp_ack(l, stream, VTSM_IDEKM_KP_SUCCESS, kss, 0);
}

static vtsm_status kset(struct loop *l, bool go, uint8_t stream, uint8_t kss, uint8_t port)
{
    uint8_t m[8];
    struct vtsm_wr w = vtsm_wr_init(m, sizeof(m));
    if (go)
        assert_int_equal(vtsm_idekm_build_k_set_go(&w, stream, kss, port), VTSM_OK);
    else
        assert_int_equal(vtsm_idekm_build_k_set_stop(&w, stream, kss, port), VTSM_OK);
    return vdm(l, m, w.len);
}

static void kset_ok(struct loop *l, bool go, uint8_t stream, uint8_t kss)
{
    const uint8_t want[8] = {0x00, VTSM_IDEKM_K_GOSTOP_ACK, 0, 0, stream, 0, kss, 0};
    assert_int_equal(kset(l, go, stream, kss, 0), VTSM_OK);
    assert_int_equal(l->rsp.len, 8);
    assert_memory_equal(l->rsp.data, want, 8);
}

/* Keys of one stream / key set: keys[substream][dir], seeded from base. */
static void stream_keys(struct vtsm_idekm_key keys[3][2], uint8_t base)
{
    for (unsigned ss = 0; ss < 3; ss++)
        for (unsigned dir = 0; dir < 2; dir++)
            test_key(&keys[ss][dir], (uint8_t)(base + ss * 2 + dir));
}

/* KEY_PROG all six keys of (stream, key set), then K_SET_GO them (RX before TX). */
static void stream_up(struct loop *l, uint8_t stream, unsigned ks, struct vtsm_idekm_key keys[3][2])
{
    for (unsigned ss = 0; ss < 3; ss++)
        for (unsigned dir = 0; dir < 2; dir++)
            key_prog_ok(l, stream, vtsm_idekm_kss(ks, dir, ss), &keys[ss][dir]);
    for (unsigned ss = 0; ss < 3; ss++)
        for (unsigned dir = 0; dir < 2; dir++)
            kset_ok(l, true, stream, vtsm_idekm_kss(ks, dir, ss));
}

/* No key set live anywhere on the device's first n streams. */
static void expect_all_stopped(const struct loop *l, unsigned n)
{
    for (unsigned s = 0; s < n; s++)
        for (unsigned ss = 0; ss < 3; ss++) {
            assert_int_equal(vtsm_dev_ide_live_key_set(l->dev, s, ss, RX), -1);
            assert_int_equal(vtsm_dev_ide_live_key_set(l->dev, s, ss, TX), -1);
        }
}

/* ---- failure cases ---- */

/* IDE_KM outside a secure session: SPDM ERROR UnexpectedRequest, nothing programmed. */
static void test_idekm_outside_session(void **state)
{
    (void)state;
    struct loop *l = loop_open(NULL, 0);
    struct vtsm_buf req = {0}, rsp = {0};
    struct vtsm_doe_obj obj;
    struct vtsm_idekm_key k;

    assert_int_equal(vtsm_spdm_req_init_connection(l->r), VTSM_OK);
    uint8_t ver = vtsm_spdm_req_info(l->r)->version;
    /* The requester refuses locally ... */
    const uint8_t query[4] = {0x00, VTSM_IDEKM_QUERY, 0, 0};
    assert_int_equal(vdm(l, query, 4), VTSM_E_STATE);

    /* ... so send a KEY_PROG in the clear by hand. */
    test_key(&k, 1);
    uint8_t m[11 + VTSM_IDEKM_KEY_PROG_SIZE] = {
        ver, 0xFE, 0, 0, 0x03, 0x00, 0x02, 0x01, 0x00, VTSM_IDEKM_KEY_PROG_SIZE, 0};
    struct vtsm_wr w = vtsm_wr_init(m + 11, VTSM_IDEKM_KEY_PROG_SIZE);
    assert_int_equal(vtsm_idekm_build_key_prog(&w, 0, vtsm_idekm_kss(0, false, 0), 0, &k), VTSM_OK);
    assert_int_equal(
        vtsm_doe_build_buf(VTSM_DOE_VENDOR_PCISIG, VTSM_DOE_TYPE_SPDM, m, sizeof(m), &req),
        VTSM_OK);
    assert_int_equal(vtsm_dev_handle(l->dev, req.data, req.len, &rsp), VTSM_OK);
    assert_int_equal(vtsm_doe_parse(rsp.data, rsp.len, &obj), VTSM_OK);
    assert_int_equal(obj.type, VTSM_DOE_TYPE_SPDM);
    const uint8_t want[4] = {ver, 0x7F, 0x04 /* UnexpectedRequest */, 0x00};
    assert_true(obj.payload_len >= 4);
    assert_memory_equal(obj.payload, want, 4);
    assert_int_equal(l->keylog_n, 0);
    expect_all_stopped(l, 4);

    OPENSSL_cleanse(m, sizeof(m));
    vtsm_buf_wipe(&req);
    vtsm_buf_free(&rsp);
    loop_close(l);
}

/* Every KEY_PROG refusal with its exact KP_ACK Status; no key is stored by any. */
static void test_key_prog_refusals(void **state)
{
    (void)state;
    struct loop *l = loop_open(NULL, 0);
    struct vtsm_idekm_key k;
    uint8_t m[VTSM_IDEKM_KEY_PROG_SIZE + 1];
    const uint8_t pr_rx = vtsm_idekm_kss(0, false, 0);

    loop_session(l);
    test_key(&k, 3);
    struct vtsm_wr w = vtsm_wr_init(m, sizeof(m));
    assert_int_equal(vtsm_idekm_build_key_prog(&w, 1, pr_rx, 0, &k), VTSM_OK);

    /* IDEKM.1: one byte short / one byte over -> INCORRECT_LENGTH, fields echoed. */
    assert_int_equal(vdm(l, m, VTSM_IDEKM_KEY_PROG_SIZE - 1), VTSM_OK);
    expect_kp_ack(l, 1, VTSM_IDEKM_KP_INCORRECT_LENGTH, pr_rx, 0);
    m[VTSM_IDEKM_KEY_PROG_SIZE] = 0;
    assert_int_equal(vdm(l, m, VTSM_IDEKM_KEY_PROG_SIZE + 1), VTSM_OK);
    expect_kp_ack(l, 1, VTSM_IDEKM_KP_INCORRECT_LENGTH, pr_rx, 0);
    /* ... cut inside the fixed fields: nothing to echo. */
    assert_int_equal(vdm(l, m, 5), VTSM_OK);
    expect_kp_ack(l, 0, VTSM_IDEKM_KP_INCORRECT_LENGTH, 0, 0);
    /* IDEKM.1: reserved KeySubStream bits, reserved sub-stream 3, reserved bytes. */
    assert_int_equal(key_prog_raw(l, 1, 0x04, 0, &k), VTSM_OK);
    expect_kp_ack(l, 1, VTSM_IDEKM_KP_UNSUPPORTED_VALUE, 0x04, 0);
    assert_int_equal(key_prog_raw(l, 1, 0x30, 0, &k), VTSM_OK);
    expect_kp_ack(l, 1, VTSM_IDEKM_KP_UNSUPPORTED_VALUE, 0x30, 0);
    m[2] = 0x01;
    assert_int_equal(vdm(l, m, VTSM_IDEKM_KEY_PROG_SIZE), VTSM_OK);
    expect_kp_ack(l, 1, VTSM_IDEKM_KP_UNSUPPORTED_VALUE, pr_rx, 0);
    m[2] = 0;
    /* IDEKM.2: port 1 does not exist. */
    assert_int_equal(key_prog_raw(l, 1, pr_rx, 1, &k), VTSM_OK);
    expect_kp_ack(l, 1, VTSM_IDEKM_KP_UNSUPPORTED_PORT_INDEX, pr_rx, 1);
    /* IDEKM.3: see test_key_prog_stream_ids. */

    /* Nothing was stored: no key logged, and K_SET_GO finds no key (IDEKM.5). */
    assert_int_equal(l->keylog_n, 0);
    expect_spdm_error(l, kset(l, true, 1, pr_rx, 0), 0x01, 0x00);
    expect_all_stopped(l, 4);

    /* IDEKM.4: KEY_PROG into the live key set is refused and keeps the live key. */
    key_prog_ok(l, 1, pr_rx, &k);
    kset_ok(l, true, 1, pr_rx);
    struct vtsm_idekm_key k2;
    test_key(&k2, 4);
    assert_int_equal(key_prog_raw(l, 1, pr_rx, 0, &k2), VTSM_OK);
    expect_kp_ack(l, 1, VTSM_IDEKM_KP_UNSPECIFIED_FAILURE, pr_rx, 0);
    assert_int_equal(l->keylog_n, 1);
    assert_int_equal(vtsm_dev_ide_live_key_set(l->dev, 1, 0, RX), 0);
    /* ... the other key set of the same sub-stream is fine (a refresh). */
    key_prog_ok(l, 1, vtsm_idekm_kss(1, false, 0), &k2);
    assert_int_equal(l->keylog_n, 2);

    OPENSSL_cleanse(m, sizeof(m));
    loop_close(l);
}

/* K_SET_GO / K_SET_STOP / QUERY refusals: SPDM ERROR InvalidRequest, nothing changes. */
static void test_kset_and_query_refusals(void **state)
{
    (void)state;
    struct loop *l = loop_open(NULL, 0);
    struct vtsm_idekm_key k;
    const uint8_t npr_tx = vtsm_idekm_kss(0, true, 1);

    loop_session(l);
    /* IDEKM.5: K_SET_GO before KEY_PROG. */
    expect_spdm_error(l, kset(l, true, 0, npr_tx, 0), 0x01, 0x00);
    test_key(&k, 9);
    key_prog_ok(l, 0, npr_tx, &k);
    /* ... of the other key set, direction or sub-stream than the one programmed. */
    expect_spdm_error(l, kset(l, true, 0, vtsm_idekm_kss(1, true, 1), 0), 0x01, 0x00);
    expect_spdm_error(l, kset(l, true, 0, vtsm_idekm_kss(0, false, 1), 0), 0x01, 0x00);
    expect_spdm_error(l, kset(l, true, 0, vtsm_idekm_kss(0, true, 2), 0), 0x01, 0x00);
    /* IDEKM.2 / IDEKM.3 */
    expect_spdm_error(l, kset(l, true, 0, npr_tx, 1), 0x01, 0x00);
    expect_spdm_error(l, kset(l, true, 4, npr_tx, 0), 0x01, 0x00);
    expect_spdm_error(l, kset(l, false, 4, npr_tx, 0), 0x01, 0x00);
    expect_spdm_error(l, kset(l, false, 0, npr_tx, 1), 0x01, 0x00);
    /* IDEKM.1: malformed objects. */
    const uint8_t go_rsvd[8] = {0x00, VTSM_IDEKM_K_SET_GO, 0, 0, 0, 0x01, npr_tx, 0};
    expect_spdm_error(l, vdm(l, go_rsvd, 8), 0x01, 0x00);
    const uint8_t go_kss[8] = {0x00, VTSM_IDEKM_K_SET_GO, 0, 0, 0, 0, npr_tx | 0x08, 0};
    expect_spdm_error(l, vdm(l, go_kss, 8), 0x01, 0x00);
    const uint8_t go_short[7] = {0x00, VTSM_IDEKM_K_SET_GO, 0, 0, 0, 0, npr_tx};
    expect_spdm_error(l, vdm(l, go_short, 7), 0x01, 0x00);
    const uint8_t stop_long[9] = {0x00, VTSM_IDEKM_K_SET_STOP, 0, 0, 0, 0, npr_tx, 0, 0};
    expect_spdm_error(l, vdm(l, stop_long, 9), 0x01, 0x00);
    const uint8_t kp_ack[8] = {0x00, VTSM_IDEKM_KP_ACK, 0, 0, 0, 0, npr_tx, 0};
    expect_spdm_error(l, vdm(l, kp_ack, 8), 0x01, 0x00);
    const uint8_t unknown[8] = {0x00, 0x07, 0, 0, 0, 0, 0, 0};
    expect_spdm_error(l, vdm(l, unknown, 8), 0x01, 0x00);
    const uint8_t only_id[1] = {0x00};
    expect_spdm_error(l, vdm(l, only_id, 1), 0x01, 0x00);
    const uint8_t query_port1[4] = {0x00, VTSM_IDEKM_QUERY, 0, 1};
    expect_spdm_error(l, vdm(l, query_port1, 4), 0x01, 0x00);
    const uint8_t query_rsvd[4] = {0x00, VTSM_IDEKM_QUERY, 1, 0};
    expect_spdm_error(l, vdm(l, query_rsvd, 4), 0x01, 0x00);
    /* Nothing went live; the programmed key is still there. */
    expect_all_stopped(l, 4);
    kset_ok(l, true, 0, npr_tx);
    assert_int_equal(vtsm_dev_ide_live_key_set(l->dev, 0, 1, TX), 0);
    loop_close(l);
}

/* IDEKM.3: a Stream ID no block carries takes the lowest idle block; none idle: refused.
 * K_SET_GO / K_SET_STOP name a Stream ID some block carries. QUERY_RESP shows the ID. */
static void test_key_prog_stream_ids(void **state)
{
    (void)state;
    struct vtsm_dev_config c;
    vtsm_dev_config_default(&c);
    c.ide_streams = 1;
    c.ide_addr_assoc = 2;
    struct loop *l = loop_open(&c, 0);
    struct vtsm_idekm_key k;
    const uint8_t pr_rx = vtsm_idekm_kss(0, false, 0);
    const uint8_t query[4] = {0x00, VTSM_IDEKM_QUERY, 0, 0};

    loop_session(l);
    test_key(&k, 5);
    key_prog_ok(l, 7, pr_rx, &k); /* block 0 (ID 0, idle) takes Stream ID 7 */
    assert_int_equal(vdm(l, query, 4), VTSM_OK);
    struct vtsm_idekm_sel_block sel[1];
    struct vtsm_idekm_query_resp qr = {.sel = sel, .sel_cap = 1};
    assert_int_equal(vtsm_idekm_parse_query_resp(l->rsp.data, l->rsp.len, &qr), VTSM_OK);
    assert_int_equal(sel[0].ctrl >> 24, 7);
    assert_int_equal(sel[0].cap & 0xF, 2); /* two address association blocks follow */
    /* the only block is busy with ID 7: ID 8 and ID 0 are refused */
    assert_int_equal(key_prog_raw(l, 8, pr_rx, 0, &k), VTSM_OK);
    expect_kp_ack(l, 8, VTSM_IDEKM_KP_UNSUPPORTED_VALUE, pr_rx, 0);
    assert_int_equal(key_prog_raw(l, 0, pr_rx, 0, &k), VTSM_OK);
    expect_kp_ack(l, 0, VTSM_IDEKM_KP_UNSUPPORTED_VALUE, pr_rx, 0);
    expect_spdm_error(l, kset(l, true, 8, pr_rx, 0), 0x01, 0x00);
    /* stopped and wiped, the block is idle again and takes ID 8 */
    kset_ok(l, false, 7, pr_rx);
    key_prog_ok(l, 8, pr_rx, &k);
    kset_ok(l, true, 8, pr_rx);
    assert_int_equal(vtsm_dev_ide_live_key_set(l->dev, 8, 0, false), 0);
    assert_int_equal(vtsm_dev_ide_live_key_set(l->dev, 7, 0, false), -1);
    vtsm_idekm_key_wipe(&k);
    loop_close(l);
}

/* ---- exact bytes ---- */

static void test_query_resp_exact_bytes(void **state)
{
    (void)state;
    struct vtsm_dev_config c;
    vtsm_dev_config_default(&c);
    c.ide_streams = 2;
    struct loop *l = loop_open(&c, 0);
    const uint8_t query[4] = {0x00, VTSM_IDEKM_QUERY, 0, 0};

    loop_session(l);
    assert_int_equal(vdm(l, query, 4), VTSM_OK);
    /* Object 01, rsvd, PortIndex 0, DevFunc 0, Bus 0, Segment 0, MaxPortIndex 0; IDE Cap =
     * selective | IDE_KM | (2 - 1) << 16; IDE Ctrl 0; two selective blocks {Cap 0, Ctrl =
     * stream ID << 24, Status 0 (insecure), RID 1, RID 2}. */
    const uint8_t want[56] = {
        0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* */
        0x42, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, /* IDE Cap, IDE Ctrl */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* stream 0 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,                         /* */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, /* stream 1 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    };
    assert_int_equal(l->rsp.len, sizeof(want));
    assert_memory_equal(l->rsp.data, want, sizeof(want));

    /* It parses, and once stream 1 has a live key set everywhere it reads as enabled and
     * secure. */
    struct vtsm_idekm_sel_block sel[2];
    struct vtsm_idekm_query_resp qr = {.sel = sel, .sel_cap = 2};
    assert_int_equal(vtsm_idekm_parse_query_resp(l->rsp.data, l->rsp.len, &qr), VTSM_OK);
    assert_int_equal(qr.sel_count, 2);
    struct vtsm_idekm_key keys[3][2];
    stream_keys(keys, 0x20);
    stream_up(l, 1, 0, keys);
    assert_int_equal(vdm(l, query, 4), VTSM_OK);
    assert_int_equal(vtsm_idekm_parse_query_resp(l->rsp.data, l->rsp.len, &qr), VTSM_OK);
    assert_int_equal(sel[0].ctrl, 0x00000000u);
    assert_int_equal(sel[0].status, 0);
    assert_int_equal(sel[1].ctrl, 0x01000001u);
    assert_int_equal(sel[1].status, 2);
    OPENSSL_cleanse(keys, sizeof(keys));
    loop_close(l);

    /* A device without selective streams reports only IDE_KM. */
    vtsm_dev_config_default(&c);
    c.ide_streams = 0;
    l = loop_open(&c, 0);
    loop_session(l);
    assert_int_equal(vdm(l, query, 4), VTSM_OK);
    const uint8_t none[16] = {0x00, 0x01, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(l->rsp.len, 16);
    assert_memory_equal(l->rsp.data, none, 16);
    loop_close(l);
}

/* A KP_ACK byte for byte, and the --key-log line for that key. */
static void test_kp_ack_and_key_log_exact(void **state)
{
    (void)state;
    struct loop *l = loop_open(NULL, 0);
    struct vtsm_idekm_key k;

    loop_session(l);
    for (unsigned i = 0; i < VTSM_IDEKM_KEY_SIZE; i++)
        k.key[i] = (uint8_t)(0xA0 + i);
    k.ifv = 0x0123456789ABCDEFull;
    const uint8_t kss = vtsm_idekm_kss(1, true, 1); /* K1, TX, NPR = 0x13 */
    assert_int_equal(kss, 0x13);
    assert_int_equal(key_prog_raw(l, 2, kss, 0, &k), VTSM_OK);
    const uint8_t want[8] = {0x00, 0x03, 0x00, 0x00, 0x02, 0x00, 0x13, 0x00};
    assert_int_equal(l->rsp.len, 8);
    assert_memory_equal(l->rsp.data, want, 8);

    assert_int_equal(l->keylog_n, 1);
    assert_string_equal(l->keylog[0],
                        "stream 2 keyset 1 substream NPR dir TX key "
                        "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf "
                        "ifv 0123456789abcdef");
    /* K_GOSTOP_ACK byte for byte. */
    assert_int_equal(kset(l, true, 2, kss, 0), VTSM_OK);
    const uint8_t ack[8] = {0x00, 0x06, 0x00, 0x00, 0x02, 0x00, 0x13, 0x00};
    assert_int_equal(l->rsp.len, 8);
    assert_memory_equal(l->rsp.data, ack, 8);
    loop_close(l);
}

/* ---- key lifecycle ---- */

static void test_go_refresh_stop(void **state)
{
    (void)state;
    struct loop *l = loop_open(NULL, 0);
    struct vtsm_idekm_key k0[3][2], k1[3][2];

    loop_session(l);
    stream_keys(k0, 0x40);
    stream_keys(k1, 0x50);
    stream_up(l, 3, 0, k0);
    assert_int_equal(l->keylog_n, 6);
    for (unsigned ss = 0; ss < 3; ss++) {
        assert_int_equal(vtsm_dev_ide_live_key_set(l->dev, 3, ss, RX), 0);
        assert_int_equal(vtsm_dev_ide_live_key_set(l->dev, 3, ss, TX), 0);
    }
    /* Refresh: program K1, go, stop K0. */
    stream_up(l, 3, 1, k1);
    for (unsigned ss = 0; ss < 3; ss++)
        for (unsigned dir = 0; dir < 2; dir++)
            kset_ok(l, false, 3, vtsm_idekm_kss(0, dir, ss));
    for (unsigned ss = 0; ss < 3; ss++) {
        assert_int_equal(vtsm_dev_ide_live_key_set(l->dev, 3, ss, RX), 1);
        assert_int_equal(vtsm_dev_ide_live_key_set(l->dev, 3, ss, TX), 1);
    }
    /* K0 was wiped: it cannot go live again without a new KEY_PROG. */
    expect_spdm_error(l, kset(l, true, 3, vtsm_idekm_kss(0, false, 0), 0), 0x01, 0x00);
    /* Stopping K1 stops the stream; stopping again is acknowledged. */
    for (unsigned ss = 0; ss < 3; ss++)
        for (unsigned dir = 0; dir < 2; dir++)
            kset_ok(l, false, 3, vtsm_idekm_kss(1, dir, ss));
    expect_all_stopped(l, 4);
    kset_ok(l, false, 3, vtsm_idekm_kss(1, false, 0));
    OPENSSL_cleanse(k0, sizeof(k0));
    OPENSSL_cleanse(k1, sizeof(k1));
    loop_close(l);
}

/* ---- the simulated link ---- */

/* The root port's check request: P protected with the device's RX key (= RP TX key). */
static void rp_frame(const struct vtsm_idekm_key *dev_rx, uint64_t counter, uint8_t stream,
                     uint8_t key_set, const uint8_t *p, size_t n, struct vtsm_buf *out)
{
    assert_int_equal(vtsm_link_frame_seal(VTSM_LINK_KIND_CHECK_REQ, dev_rx->key, dev_rx->ifv,
                                          counter, stream, VTSM_IDE_SUBSTREAM_PR, key_set, p, n,
                                          out),
                     VTSM_OK);
}

static void expect_link_fail(struct loop *l, const struct vtsm_buf *req, uint8_t stream,
                             uint8_t key_set)
{
    struct vtsm_buf rsp = {0};
    struct vtsm_link_frame f;
    assert_int_equal(vtsm_dev_link(l->dev, req->data, req->len, &rsp), VTSM_OK);
    assert_int_equal(vtsm_link_frame_decode(rsp.data, rsp.len, &f), VTSM_OK);
    assert_int_equal(f.kind, VTSM_LINK_KIND_FAILURE);
    assert_int_equal(f.stream_id, stream);
    assert_int_equal(f.key_set, key_set);
    assert_int_equal(f.substream, VTSM_IDE_SUBSTREAM_PR);
    assert_int_equal(rsp.len, VTSM_LINK_FRAME_HDR_SIZE);
    vtsm_buf_free(&rsp);
}

/* The device answers P under its TX key with its counter `counter`. */
static void expect_link_pass(struct loop *l, const struct vtsm_buf *req,
                             const struct vtsm_idekm_key *dev_tx, uint64_t counter, uint8_t stream,
                             uint8_t key_set, const uint8_t *p, size_t n)
{
    struct vtsm_buf rsp = {0};
    struct vtsm_link_frame f;
    uint8_t out[64];
    assert_int_equal(vtsm_dev_link(l->dev, req->data, req->len, &rsp), VTSM_OK);
    assert_int_equal(vtsm_link_frame_decode(rsp.data, rsp.len, &f), VTSM_OK);
    assert_int_equal(f.kind, VTSM_LINK_KIND_CHECK_RSP);
    assert_int_equal(f.stream_id, stream);
    assert_int_equal(f.key_set, key_set);
    assert_int_equal(f.substream, VTSM_IDE_SUBSTREAM_PR);
    assert_int_equal(f.counter, counter);
    assert_int_equal(f.len, n);
    /* Only ciphertext on the wire. */
    assert_true(memcmp(f.ct, p, n) != 0);
    assert_int_equal(vtsm_link_frame_open(&f, dev_tx->key, dev_tx->ifv, out, sizeof(out)), VTSM_OK);
    assert_memory_equal(out, p, n);
    vtsm_buf_free(&rsp);
}

static void test_link_check(void **state)
{
    (void)state;
    struct loop *l = loop_open(NULL, 0);
    struct vtsm_idekm_key keys[3][2];
    struct vtsm_buf req = {0}, rsp = {0};
    uint8_t p[32];

    for (unsigned i = 0; i < sizeof(p); i++)
        p[i] = (uint8_t)(0x5A ^ i);
    loop_session(l);
    stream_keys(keys, 0x60);
    const struct vtsm_idekm_key *rx = &keys[0][0], *tx = &keys[0][1];

    /* Before any KEY_PROG: stream 1 has nothing live. */
    rp_frame(rx, 0, 1, 0, p, sizeof(p), &req);
    expect_link_fail(l, &req, 1, 0);

    stream_up(l, 1, 0, keys);
    /* Pass, twice: the device's TX counter advances. */
    expect_link_pass(l, &req, tx, 0, 1, 0, p, sizeof(p));
    rp_frame(rx, 1, 1, 0, p, sizeof(p), &req);
    expect_link_pass(l, &req, tx, 1, 1, 0, p, sizeof(p));
    /* A replay of counter 1, and an older counter, fail. */
    expect_link_fail(l, &req, 1, 0);
    rp_frame(rx, 0, 1, 0, p, sizeof(p), &req);
    expect_link_fail(l, &req, 1, 0);
    /* Skipping ahead (frames the host dropped) is fine. */
    rp_frame(rx, 7, 1, 0, p, sizeof(p), &req);
    expect_link_pass(l, &req, tx, 2, 1, 0, p, sizeof(p));
    /* Wrong key (the TX key), unprogrammed stream, key set not live, tampered tag. */
    rp_frame(tx, 8, 1, 0, p, sizeof(p), &req);
    expect_link_fail(l, &req, 1, 0);
    rp_frame(rx, 9, 2, 0, p, sizeof(p), &req);
    expect_link_fail(l, &req, 2, 0);
    rp_frame(rx, 9, 1, 1, p, sizeof(p), &req);
    expect_link_fail(l, &req, 1, 1);
    rp_frame(rx, 9, 200, 0, p, sizeof(p), &req);
    expect_link_fail(l, &req, 200, 0);
    rp_frame(rx, 9, 1, 0, p, sizeof(p), &req);
    req.data[VTSM_LINK_FRAME_HDR_SIZE + sizeof(p)] ^= 1;
    expect_link_fail(l, &req, 1, 0);
    /* A check response sent to the device is not a request. */
    rp_frame(rx, 10, 1, 0, p, sizeof(p), &req);
    req.data[4] = VTSM_LINK_KIND_CHECK_RSP;
    expect_link_fail(l, &req, 1, 0);
    /* A frame that does not decode is not answered. */
    rp_frame(rx, 11, 1, 0, p, sizeof(p), &req);
    assert_int_equal(vtsm_dev_link(l->dev, req.data, req.len - 1, &rsp), VTSM_E_PEER_TRUNCATED);
    assert_int_equal(rsp.len, 0);
    req.data[0] = 'X';
    assert_int_equal(vtsm_dev_link(l->dev, req.data, req.len, &rsp), VTSM_E_PEER_MALFORMED);
    assert_int_equal(rsp.len, 0);
    /* The link still works (counter 12 > 7). */
    rp_frame(rx, 12, 1, 0, p, sizeof(p), &req);
    expect_link_pass(l, &req, tx, 3, 1, 0, p, sizeof(p));

    /* TX side stopped: the device can check but not answer. */
    kset_ok(l, false, 1, vtsm_idekm_kss(0, true, 0));
    rp_frame(rx, 13, 1, 0, p, sizeof(p), &req);
    expect_link_fail(l, &req, 1, 0);
    /* After K_SET_STOP of the RX key set: fail. */
    kset_ok(l, false, 1, vtsm_idekm_kss(0, false, 0));
    rp_frame(rx, 14, 1, 0, p, sizeof(p), &req);
    expect_link_fail(l, &req, 1, 0);
    /* Reprogrammed with the same keys: counters restart at 0. */
    key_prog_ok(l, 1, vtsm_idekm_kss(0, false, 0), rx);
    key_prog_ok(l, 1, vtsm_idekm_kss(0, true, 0), tx);
    kset_ok(l, true, 1, vtsm_idekm_kss(0, false, 0));
    kset_ok(l, true, 1, vtsm_idekm_kss(0, true, 0));
    rp_frame(rx, 0, 1, 0, p, sizeof(p), &req);
    expect_link_pass(l, &req, tx, 0, 1, 0, p, sizeof(p));

    /* The link needs no session: it keeps working after END_SESSION. */
    assert_int_equal(vtsm_spdm_req_end_session(l->r), VTSM_OK);
    rp_frame(rx, 1, 1, 0, p, sizeof(p), &req);
    expect_link_pass(l, &req, tx, 1, 1, 0, p, sizeof(p));

    OPENSSL_cleanse(keys, sizeof(keys));
    vtsm_buf_free(&req);
    vtsm_buf_free(&rsp);
    loop_close(l);
}

/* ---- faults ---- */

static uint32_t fault(enum vtsm_dev_fault f)
{
    return VTSM_DEV_FAULT_BIT(f);
}

/* idekm-nak-keyprog: the first KEY_PROG of each stream in each session is NAKed. */
static void test_fault_nak_keyprog(void **state)
{
    (void)state;
    struct loop *l = loop_open(NULL, fault(VTSM_DEV_FAULT_IDEKM_NAK_KEYPROG));
    struct vtsm_idekm_key k;
    const uint8_t pr_rx = vtsm_idekm_kss(0, false, 0);

    test_key(&k, 0x11);
    loop_session(l);
    assert_int_equal(key_prog_raw(l, 0, pr_rx, 0, &k), VTSM_OK);
    expect_kp_ack(l, 0, VTSM_IDEKM_KP_UNSPECIFIED_FAILURE, pr_rx, 0);
    assert_int_equal(l->keylog_n, 0);
    key_prog_ok(l, 0, pr_rx, &k);
    assert_int_equal(key_prog_raw(l, 1, pr_rx, 0, &k), VTSM_OK);
    expect_kp_ack(l, 1, VTSM_IDEKM_KP_UNSPECIFIED_FAILURE, pr_rx, 0);
    key_prog_ok(l, 1, pr_rx, &k);
    assert_int_equal(l->keylog_n, 2);
    /* A new session meets the fault again. */
    assert_int_equal(vtsm_spdm_req_end_session(l->r), VTSM_OK);
    vtsm_spdm_req_free(l->r);
    loop_new_requester(l);
    loop_session(l);
    assert_int_equal(key_prog_raw(l, 0, vtsm_idekm_kss(1, false, 0), 0, &k), VTSM_OK);
    expect_kp_ack(l, 0, VTSM_IDEKM_KP_UNSPECIFIED_FAILURE, vtsm_idekm_kss(1, false, 0), 0);
    loop_close(l);
}

/* idekm-wrong-stream / -keyset / -substream: every KP_ACK echoes a wrong field; the key
 * itself is stored. */
static void test_fault_wrong_echo(void **state)
{
    (void)state;
    static const struct {
        enum vtsm_dev_fault f;
        uint8_t stream_echo, kss_echo;
    } cases[] = {
        {VTSM_DEV_FAULT_IDEKM_WRONG_STREAM, 3, 0x22},    /* stream 2 + 1 */
        {VTSM_DEV_FAULT_IDEKM_WRONG_KEYSET, 2, 0x23},    /* K0 -> K1 */
        {VTSM_DEV_FAULT_IDEKM_WRONG_SUBSTREAM, 2, 0x02}, /* CPL -> PR */
    };
    struct vtsm_idekm_key k;
    const uint8_t cpl_tx = vtsm_idekm_kss(0, true, 2); /* 0x22 */

    test_key(&k, 0x12);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct loop *l = loop_open(NULL, fault(cases[i].f));
        loop_session(l);
        assert_int_equal(key_prog_raw(l, 2, cpl_tx, 0, &k), VTSM_OK);
        expect_kp_ack(l, cases[i].stream_echo, 0, cases[i].kss_echo, 0);
        assert_int_equal(l->keylog_n, 1);
        kset_ok(l, true, 2, cpl_tx); /* K_GOSTOP_ACK is not bent */
        assert_int_equal(vtsm_dev_ide_live_key_set(l->dev, 2, 2, TX), 0);
        loop_close(l);
    }
}

/* idekm-no-go-ack: K_SET_GO is dropped unanswered (no DOE object) and changes nothing. */
static void test_fault_no_go_ack(void **state)
{
    (void)state;
    struct loop *l = loop_open(NULL, fault(VTSM_DEV_FAULT_IDEKM_NO_GO_ACK));
    struct vtsm_idekm_key k;
    const uint8_t pr_rx = vtsm_idekm_kss(0, false, 0);

    loop_session(l);
    test_key(&k, 0x13);
    key_prog_ok(l, 0, pr_rx, &k);
    assert_int_equal(kset(l, true, 0, pr_rx, 0), VTSM_E_ABORTED);
    assert_int_equal(l->dev_st, VTSM_E_ABORTED);
    assert_int_equal(vtsm_dev_ide_live_key_set(l->dev, 0, 0, RX), -1);
    /* The requester gives up on its session; a new one finds the key still programmed,
     * K_SET_GO dropped again, and K_SET_STOP answered as usual. */
    assert_false(vtsm_spdm_req_info(l->r)->session_active);
    vtsm_spdm_req_free(l->r);
    loop_new_requester(l);
    loop_session(l);
    assert_int_equal(kset(l, true, 0, pr_rx, 0), VTSM_E_ABORTED);
    vtsm_spdm_req_free(l->r);
    loop_new_requester(l);
    loop_session(l);
    kset_ok(l, false, 0, pr_rx);
    assert_int_equal(vtsm_dev_ide_live_key_set(l->dev, 0, 0, RX), -1);
    loop_close(l);
}

/* idekm-replay-ack: the 2nd KEY_PROG of a session gets the 1st KP_ACK's bytes and is not
 * processed; the 3rd is normal again. */
static void test_fault_replay_ack(void **state)
{
    (void)state;
    struct loop *l = loop_open(NULL, fault(VTSM_DEV_FAULT_IDEKM_REPLAY_ACK));
    struct vtsm_idekm_key k;
    const uint8_t pr_rx = vtsm_idekm_kss(0, false, 0), pr_tx = vtsm_idekm_kss(0, true, 0);

    loop_session(l);
    test_key(&k, 0x14);
    key_prog_ok(l, 0, pr_rx, &k);
    assert_int_equal(key_prog_raw(l, 0, pr_tx, 0, &k), VTSM_OK);
    expect_kp_ack(l, 0, 0, pr_rx, 0); /* the first ACK, not the one for TX */
    assert_int_equal(l->keylog_n, 1);
    expect_spdm_error(l, kset(l, true, 0, pr_tx, 0), 0x01, 0x00);
    key_prog_ok(l, 0, pr_tx, &k);
    assert_int_equal(l->keylog_n, 2);
    loop_close(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idekm_outside_session),
        cmocka_unit_test(test_key_prog_refusals),
        cmocka_unit_test(test_kset_and_query_refusals),
        cmocka_unit_test(test_query_resp_exact_bytes),
        cmocka_unit_test(test_key_prog_stream_ids),
        cmocka_unit_test(test_kp_ack_and_key_log_exact),
        cmocka_unit_test(test_go_refresh_stop),
        cmocka_unit_test(test_link_check),
        cmocka_unit_test(test_fault_nak_keyprog),
        cmocka_unit_test(test_fault_wrong_echo),
        cmocka_unit_test(test_fault_no_go_ack),
        cmocka_unit_test(test_fault_replay_ack),
    };
    return cmocka_run_group_tests_name("devemu_idekm", tests, NULL, NULL);
}
