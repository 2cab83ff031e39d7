/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * devemu: the TDISP responder, in-process. The TSM's SPDM requester (vtsm_spdm_req) drives
 * the emulated device (vtsm_dev_handle) over a loopback transport and sends hand-built
 * TDISP messages inside a real secure session. Failure cases first - outside the session,
 * no TDISP, header and body errors, every state rule with its exact TDISP_ERROR code and a
 * check that the TDI did not move - then exact bytes, the LOCK / report / START / STOP
 * lifecycle, chunking, state outliving the session, and every TDISP fault. (The portion
 * clamp to a small DataTransferSize is in test_devemu.c, whose hand-written requester can
 * hold a session with a 64-byte DataTransferSize.)
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
#include "vtsm_spdm_req.h"
#include "vtsm_tdisp.h"

/* ---- loopback: requester <-> device ---- */

struct loop {
    struct vtsm_dev *dev;
    struct vtsm_spdm_req *r;
    struct vtsm_buf rsp; /* the last vendor-defined response payload */
};

static vtsm_status loop_exchange(void *ctx, const uint8_t *req, size_t len, struct vtsm_buf *rsp)
{
    struct loop *l = ctx;
    return vtsm_dev_handle(l->dev, req, len, rsp);
}

static void loop_new_requester(struct loop *l)
{
    struct vtsm_spdm_req_opts o;
    struct vtsm_spdm_transport tp = {.exchange = loop_exchange, .ctx = l};
    vtsm_spdm_req_opts_default(&o);
    assert_int_equal(vtsm_spdm_req_new(&o, &tp, &l->r), VTSM_OK);
}

static void loop_session(struct loop *l)
{
    assert_int_equal(vtsm_spdm_req_init_connection(l->r), VTSM_OK);
    assert_int_equal(vtsm_spdm_req_get_certificate(l->r, 0), VTSM_OK);
    assert_int_equal(vtsm_spdm_req_start_session(l->r, 0), VTSM_OK);
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
    assert_int_equal(vtsm_dev_new(&cfg, &l->dev), VTSM_OK);
    loop_new_requester(l);
    loop_session(l);
    return l;
}

static void loop_close(struct loop *l)
{
    vtsm_spdm_req_free(l->r);
    vtsm_dev_free(l->dev);
    vtsm_buf_free(&l->rsp);
    free(l);
}

static vtsm_status vdm(struct loop *l, const uint8_t *p, size_t n)
{
    vtsm_buf_reset(&l->rsp);
    return vtsm_spdm_req_vendor(l->r, p, n, &l->rsp);
}

/* ---- TDISP helpers ---- */

#define MSG_MAX 64

typedef vtsm_status (*build_fn)(struct vtsm_wr *w, uint32_t fid);

/* Send a message built into m (n bytes) and parse the answer as the response to `request`
 * for `fid`; returns the parse status (VTSM_E_PEER_ERROR for a TDISP_ERROR). */
static vtsm_status tdisp(struct loop *l, const uint8_t *m, size_t n, uint8_t request, uint32_t fid,
                         struct vtsm_tdisp_rsp *rsp)
{
    assert_int_equal(vdm(l, m, n), VTSM_OK);
    return vtsm_tdisp_parse_response(l->rsp.data, l->rsp.len, request, fid, rsp);
}

/* The answer is exactly TDISP_ERROR(code, data) for fid. */
static void expect_tdisp_error(const struct loop *l, uint32_t fid, uint32_t code, uint32_t data)
{
    uint8_t want[VTSM_TDISP_HEADER_SIZE + 8] = {0x01, 0x10, VTSM_TDISP_ERROR};
    vtsm_put_le32(want + 5, fid);
    vtsm_put_le32(want + 17, code);
    vtsm_put_le32(want + 21, data);
    assert_int_equal(l->rsp.len, sizeof(want));
    assert_memory_equal(l->rsp.data, want, sizeof(want));
}

static void expect_state(const struct loop *l, unsigned tdi, uint8_t want)
{
    uint8_t s = 0xFF;
    assert_int_equal(vtsm_dev_tdi_state(l->dev, tdi, &s), VTSM_OK);
    assert_int_equal(s, want);
}

static vtsm_status lock(struct loop *l, uint32_t fid, const struct vtsm_tdisp_lock_params *p,
                        uint8_t nonce[VTSM_TDISP_NONCE_SIZE])
{
    uint8_t m[MSG_MAX];
    struct vtsm_wr w = vtsm_wr_init(m, sizeof(m));
    struct vtsm_tdisp_rsp rsp;
    struct vtsm_tdisp_lock_params def = {.flags = VTSM_TDISP_LOCK_NO_FW_UPDATE};
    assert_int_equal(vtsm_tdisp_build_lock_interface(&w, fid, p ? p : &def), VTSM_OK);
    vtsm_status st = tdisp(l, m, w.len, VTSM_TDISP_LOCK_INTERFACE_REQ, fid, &rsp);
    if (st == VTSM_OK && nonce)
        memcpy(nonce, rsp.u.lock_nonce, VTSM_TDISP_NONCE_SIZE);
    return st;
}

static vtsm_status start(struct loop *l, uint32_t fid, const uint8_t nonce[VTSM_TDISP_NONCE_SIZE])
{
    uint8_t m[MSG_MAX];
    struct vtsm_wr w = vtsm_wr_init(m, sizeof(m));
    struct vtsm_tdisp_rsp rsp;
    assert_int_equal(vtsm_tdisp_build_start_interface(&w, fid, nonce), VTSM_OK);
    return tdisp(l, m, w.len, VTSM_TDISP_START_INTERFACE_REQ, fid, &rsp);
}

static vtsm_status simple(struct loop *l, uint32_t fid, uint8_t request, build_fn b,
                          struct vtsm_tdisp_rsp *rsp)
{
    uint8_t m[MSG_MAX];
    struct vtsm_wr w = vtsm_wr_init(m, sizeof(m));
    assert_int_equal(b(&w, fid), VTSM_OK);
    return tdisp(l, m, w.len, request, fid, rsp);
}

static vtsm_status stop(struct loop *l, uint32_t fid)
{
    struct vtsm_tdisp_rsp rsp;
    return simple(l, fid, VTSM_TDISP_STOP_INTERFACE_REQ, vtsm_tdisp_build_stop_interface, &rsp);
}

/* What GET_DEVICE_INTERFACE_STATE says. */
static uint8_t said_state(struct loop *l, uint32_t fid)
{
    struct vtsm_tdisp_rsp rsp;
    assert_int_equal(
        simple(l, fid, VTSM_TDISP_GET_DEVICE_INTERFACE_STATE, vtsm_tdisp_build_get_state, &rsp),
        VTSM_OK);
    return rsp.u.tdi_state;
}

static vtsm_status report_chunk(struct loop *l, uint32_t fid, uint16_t offset, uint16_t length,
                                struct vtsm_tdisp_rsp *rsp)
{
    uint8_t m[MSG_MAX];
    struct vtsm_wr w = vtsm_wr_init(m, sizeof(m));
    assert_int_equal(vtsm_tdisp_build_get_report(&w, fid, offset, length), VTSM_OK);
    return tdisp(l, m, w.len, VTSM_TDISP_GET_DEVICE_INTERFACE_REPORT, fid, rsp);
}

/* The whole report in chunks of `length`, checking remainder + portion stays consistent
 * (returns E_PEER_MALFORMED if it does not); *chunks counts the requests. */
static vtsm_status read_report(struct loop *l, uint32_t fid, uint16_t length, struct vtsm_buf *out,
                               unsigned *chunks)
{
    struct vtsm_tdisp_rsp rsp;
    size_t total = 0;
    vtsm_buf_reset(out);
    *chunks = 0;
    for (;;) {
        vtsm_status st = report_chunk(l, fid, (uint16_t)out->len, length, &rsp);
        if (st != VTSM_OK)
            return st;
        (*chunks)++;
        size_t end = out->len + rsp.u.report.portion_length + rsp.u.report.remainder_length;
        if (*chunks == 1)
            total = end;
        else if (end != total)
            return VTSM_E_PEER_MALFORMED;
        assert_true(rsp.u.report.portion_length > 0);
        assert_true(rsp.u.report.portion_length <= length);
        assert_int_equal(vtsm_buf_append(out, rsp.u.report.portion, rsp.u.report.portion_length),
                         VTSM_OK);
        if (rsp.u.report.remainder_length == 0)
            return VTSM_OK;
        assert_true(*chunks < 1000);
    }
}

static uint32_t fault(enum vtsm_dev_fault f)
{
    return VTSM_DEV_FAULT_BIT(f);
}

/* ---- failure cases ---- */

/* TDISP outside a secure session: SPDM ERROR UnexpectedRequest; the TDI stays unlocked. */
static void test_tdisp_outside_session(void **state)
{
    (void)state;
    struct vtsm_dev_config cfg;
    struct vtsm_dev *dev;
    struct loop l = {0};
    struct vtsm_buf req = {0}, rsp = {0};
    struct vtsm_doe_obj obj;

    vtsm_dev_config_default(&cfg);
    assert_int_equal(vtsm_dev_new(&cfg, &dev), VTSM_OK);
    l.dev = dev;
    loop_new_requester(&l);
    assert_int_equal(vtsm_spdm_req_init_connection(l.r), VTSM_OK);
    uint8_t ver = vtsm_spdm_req_info(l.r)->version;

    uint8_t m[11 + MSG_MAX] = {ver, 0xFE, 0, 0, 0x03, 0x00, 0x02, 0x01, 0x00};
    struct vtsm_wr w = vtsm_wr_init(m + 11, MSG_MAX);
    struct vtsm_tdisp_lock_params p = {0};
    assert_int_equal(vtsm_tdisp_build_lock_interface(&w, 0, &p), VTSM_OK);
    vtsm_put_le16(m + 9, (uint16_t)w.len);
    assert_int_equal(
        vtsm_doe_build_buf(VTSM_DOE_VENDOR_PCISIG, VTSM_DOE_TYPE_SPDM, m, 11 + w.len, &req),
        VTSM_OK);
    assert_int_equal(vtsm_dev_handle(dev, req.data, req.len, &rsp), VTSM_OK);
    assert_int_equal(vtsm_doe_parse(rsp.data, rsp.len, &obj), VTSM_OK);
    const uint8_t want[4] = {ver, 0x7F, 0x04 /* UnexpectedRequest */, 0x00};
    assert_true(obj.payload_len >= 4);
    assert_memory_equal(obj.payload, want, 4);
    expect_state(&l, 0, VTSM_TDI_CONFIG_UNLOCKED);

    vtsm_buf_free(&req);
    vtsm_buf_free(&rsp);
    vtsm_spdm_req_free(l.r);
    vtsm_dev_free(dev);
}

/* --no-tdisp: an IDE-only device answers TDISP with SPDM ERROR UnsupportedRequest. */
static void test_no_tdisp(void **state)
{
    (void)state;
    struct vtsm_dev_config c;
    uint8_t s;

    vtsm_dev_config_default(&c);
    c.tdisp = false;
    struct loop *l = loop_open(&c, 0);
    uint8_t m[MSG_MAX];
    struct vtsm_wr w = vtsm_wr_init(m, sizeof(m));
    assert_int_equal(vtsm_tdisp_build_get_version(&w, 0), VTSM_OK);
    assert_int_equal(vdm(l, m, w.len), VTSM_E_PEER_ERROR);
    uint8_t data = 0;
    assert_int_equal(vtsm_spdm_req_peer_error(l->r, &data), SPDM_ERR_UNSUPPORTED_REQUEST);
    assert_int_equal(data, 0xfe);
    assert_int_equal(vtsm_dev_tdi_state(l->dev, 0, &s), VTSM_E_NOT_FOUND);
    /* IDE_KM still works. */
    const uint8_t query[4] = {0x00, 0x00, 0, 0};
    assert_int_equal(vdm(l, query, 4), VTSM_OK);
    assert_int_equal(l->rsp.data[1], 0x01);
    loop_close(l);
}

/* Header and body errors: VERSION_MISMATCH, INVALID_INTERFACE, UNSUPPORTED_REQUEST,
 * INVALID_REQUEST, and SPDM ERROR for a message too short to answer. */
static void test_tdisp_message_errors(void **state)
{
    (void)state;
    struct loop *l = loop_open(NULL, 0);
    uint8_t m[MSG_MAX];
    struct vtsm_wr w = vtsm_wr_init(m, sizeof(m));

    assert_int_equal(vtsm_tdisp_build_get_state(&w, 2), VTSM_OK);
    const size_t n = w.len; /* 17 */
    /* TDISPVersion 1.1 */
    m[1] = 0x11;
    assert_int_equal(vdm(l, m, n), VTSM_OK);
    expect_tdisp_error(l, 2, VTSM_TDISP_ERR_VERSION_MISMATCH, 0);
    m[1] = 0x10;
    /* No such TDI: RID 4 of 4, a segment, the segment-valid bit. */
    vtsm_put_le32(m + 5, 4);
    assert_int_equal(vdm(l, m, n), VTSM_OK);
    expect_tdisp_error(l, 4, VTSM_TDISP_ERR_INVALID_INTERFACE, 0);
    vtsm_put_le32(m + 5, 0x00010000);
    assert_int_equal(vdm(l, m, n), VTSM_OK);
    expect_tdisp_error(l, 0x00010000, VTSM_TDISP_ERR_INVALID_INTERFACE, 0);
    vtsm_put_le32(m + 5, VTSM_TDISP_FID_SEG_VALID);
    assert_int_equal(vdm(l, m, n), VTSM_OK);
    expect_tdisp_error(l, VTSM_TDISP_FID_SEG_VALID, VTSM_TDISP_ERR_INVALID_INTERFACE, 0);
    vtsm_put_le32(m + 5, 2);
    /* Reserved header fields: INVALID_REQUEST (FUNCTION_ID reserved bits masked off in the
     * answer). */
    m[3] = 1;
    assert_int_equal(vdm(l, m, n), VTSM_OK);
    expect_tdisp_error(l, 2, VTSM_TDISP_ERR_INVALID_REQUEST, 0);
    m[3] = 0;
    m[8] = 0x80; /* FUNCTION_ID bit 31 */
    assert_int_equal(vdm(l, m, n), VTSM_OK);
    expect_tdisp_error(l, 2, VTSM_TDISP_ERR_INVALID_REQUEST, 0);
    m[8] = 0;
    m[16] = 1; /* INTERFACE_ID reserved */
    assert_int_equal(vdm(l, m, n), VTSM_OK);
    expect_tdisp_error(l, 2, VTSM_TDISP_ERR_INVALID_REQUEST, 0);
    m[16] = 0;
    /* Trailing bytes. */
    m[n] = 0;
    assert_int_equal(vdm(l, m, n + 1), VTSM_OK);
    expect_tdisp_error(l, 2, VTSM_TDISP_ERR_INVALID_REQUEST, 0);
    /* Requests not implemented, response codes, undefined codes: UNSUPPORTED_REQUEST. */
    const uint8_t codes[] = {VTSM_TDISP_BIND_P2P_STREAM_REQ, VTSM_TDISP_SET_TDISP_CONFIG_REQ,
                             VTSM_TDISP_VERSION, 0x80, 0xC0};
    for (size_t i = 0; i < sizeof(codes); i++) {
        m[2] = codes[i];
        assert_int_equal(vdm(l, m, n), VTSM_OK);
        expect_tdisp_error(l, 2, VTSM_TDISP_ERR_UNSUPPORTED_REQUEST, codes[i]);
    }
    /* A truncated LOCK body, START without its nonce. */
    m[2] = VTSM_TDISP_LOCK_INTERFACE_REQ;
    memset(m + n, 0, 19);
    assert_int_equal(vdm(l, m, n + 19), VTSM_OK);
    expect_tdisp_error(l, 2, VTSM_TDISP_ERR_INVALID_REQUEST, 0);
    m[n] = 0x20; /* an undefined LOCK flag */
    assert_int_equal(vdm(l, m, n + 20), VTSM_OK);
    expect_tdisp_error(l, 2, VTSM_TDISP_ERR_INVALID_REQUEST, 0);
    m[2] = VTSM_TDISP_START_INTERFACE_REQ;
    assert_int_equal(vdm(l, m, n + 31), VTSM_OK);
    expect_tdisp_error(l, 2, VTSM_TDISP_ERR_INVALID_REQUEST, 0);
    /* Too short to carry an INTERFACE_ID: SPDM ERROR InvalidRequest. */
    assert_int_equal(vdm(l, m, 16), VTSM_E_PEER_ERROR);
    uint8_t data = 0xEE;
    assert_int_equal(vtsm_spdm_req_peer_error(l->r, &data), SPDM_ERR_INVALID_REQUEST);
    assert_int_equal(data, 0);
    expect_state(l, 2, VTSM_TDI_CONFIG_UNLOCKED);
    loop_close(l);
}

/* LOCK parameter refusals, and every request in the wrong state; the TDI does not move. */
static void test_tdisp_state_refusals(void **state)
{
    (void)state;
    struct loop *l = loop_open(NULL, 0);
    struct vtsm_tdisp_rsp rsp;
    uint8_t nonce[VTSM_TDISP_NONCE_SIZE] = {0};

    /* DEVTDI.1: flags outside LOCK_INTERFACE_FLAGS_SUPPORTED, a P2P mask, a bad offset. */
    struct vtsm_tdisp_lock_params p = {.flags = VTSM_TDISP_LOCK_BIND_P2P};
    assert_int_equal(lock(l, 1, &p, NULL), VTSM_E_PEER_ERROR);
    expect_tdisp_error(l, 1, VTSM_TDISP_ERR_INVALID_REQUEST, 0);
    p.flags = VTSM_TDISP_LOCK_ALL_REQUEST_REDIRECT;
    assert_int_equal(lock(l, 1, &p, NULL), VTSM_E_PEER_ERROR);
    expect_tdisp_error(l, 1, VTSM_TDISP_ERR_INVALID_REQUEST, 0);
    p.flags = 0;
    p.bind_p2p_address_mask = 0xFFFF0000;
    assert_int_equal(lock(l, 1, &p, NULL), VTSM_E_PEER_ERROR);
    expect_tdisp_error(l, 1, VTSM_TDISP_ERR_INVALID_REQUEST, 0);
    p.bind_p2p_address_mask = 0;
    p.mmio_reporting_offset = 0x800;
    assert_int_equal(lock(l, 1, &p, NULL), VTSM_E_PEER_ERROR);
    expect_tdisp_error(l, 1, VTSM_TDISP_ERR_INVALID_REQUEST, 0);
    p.mmio_reporting_offset = 0xFFFFFFFFFFFFF000ull;
    assert_int_equal(lock(l, 1, &p, NULL), VTSM_E_PEER_ERROR);
    expect_tdisp_error(l, 1, VTSM_TDISP_ERR_INVALID_REQUEST, 0);
    expect_state(l, 1, VTSM_TDI_CONFIG_UNLOCKED);

    /* DEVTDI.2 / DEVTDI.3 in CONFIG_UNLOCKED: report before lock, START before lock. */
    assert_int_equal(report_chunk(l, 1, 0, 0x400, &rsp), VTSM_E_PEER_ERROR);
    expect_tdisp_error(l, 1, VTSM_TDISP_ERR_INVALID_INTERFACE_STATE, 0);
    assert_int_equal(start(l, 1, nonce), VTSM_E_PEER_ERROR);
    expect_tdisp_error(l, 1, VTSM_TDISP_ERR_INVALID_INTERFACE_STATE, 0);
    expect_state(l, 1, VTSM_TDI_CONFIG_UNLOCKED);

    /* DEVTDI.1: LOCK twice. */
    assert_int_equal(lock(l, 1, NULL, nonce), VTSM_OK);
    assert_int_equal(lock(l, 1, NULL, NULL), VTSM_E_PEER_ERROR);
    expect_tdisp_error(l, 1, VTSM_TDISP_ERR_INVALID_INTERFACE_STATE, 0);
    expect_state(l, 1, VTSM_TDI_CONFIG_LOCKED);
    /* DEVTDI.2: OFFSET past the end, LENGTH 0. */
    assert_int_equal(report_chunk(l, 1, 0xFFFF, 1, &rsp), VTSM_E_PEER_ERROR);
    expect_tdisp_error(l, 1, VTSM_TDISP_ERR_INVALID_REQUEST, 0);
    assert_int_equal(report_chunk(l, 1, 0, 0, &rsp), VTSM_E_PEER_ERROR);
    expect_tdisp_error(l, 1, VTSM_TDISP_ERR_INVALID_REQUEST, 0);
    expect_state(l, 1, VTSM_TDI_CONFIG_LOCKED);

    /* DEVTDI.4: a wrong nonce -> INVALID_NONCE and ERROR; the right nonce no longer helps. */
    uint8_t wrong[VTSM_TDISP_NONCE_SIZE];
    memcpy(wrong, nonce, sizeof(wrong));
    wrong[31] ^= 0x01;
    assert_int_equal(start(l, 1, wrong), VTSM_E_PEER_ERROR);
    expect_tdisp_error(l, 1, VTSM_TDISP_ERR_INVALID_NONCE, 0);
    expect_state(l, 1, VTSM_TDI_ERROR);
    assert_int_equal(said_state(l, 1), VTSM_TDI_ERROR);
    /* In ERROR: START, LOCK and the report are refused. */
    assert_int_equal(start(l, 1, nonce), VTSM_E_PEER_ERROR);
    expect_tdisp_error(l, 1, VTSM_TDISP_ERR_INVALID_INTERFACE_STATE, 0);
    assert_int_equal(lock(l, 1, NULL, NULL), VTSM_E_PEER_ERROR);
    expect_tdisp_error(l, 1, VTSM_TDISP_ERR_INVALID_INTERFACE_STATE, 0);
    assert_int_equal(report_chunk(l, 1, 0, 0x400, &rsp), VTSM_E_PEER_ERROR);
    expect_tdisp_error(l, 1, VTSM_TDISP_ERR_INVALID_INTERFACE_STATE, 0);
    expect_state(l, 1, VTSM_TDI_ERROR);
    /* Only STOP leaves ERROR. */
    assert_int_equal(stop(l, 1), VTSM_OK);
    expect_state(l, 1, VTSM_TDI_CONFIG_UNLOCKED);

    /* START twice: the second is refused in RUN. */
    assert_int_equal(lock(l, 1, NULL, nonce), VTSM_OK);
    assert_int_equal(start(l, 1, nonce), VTSM_OK);
    assert_int_equal(start(l, 1, nonce), VTSM_E_PEER_ERROR);
    expect_tdisp_error(l, 1, VTSM_TDISP_ERR_INVALID_INTERFACE_STATE, 0);
    assert_int_equal(lock(l, 1, NULL, NULL), VTSM_E_PEER_ERROR);
    expect_tdisp_error(l, 1, VTSM_TDISP_ERR_INVALID_INTERFACE_STATE, 0);
    expect_state(l, 1, VTSM_TDI_RUN);
    /* ... and after STOP, the old nonce is gone: lock again, the old one is refused. */
    assert_int_equal(stop(l, 1), VTSM_OK);
    uint8_t nonce2[VTSM_TDISP_NONCE_SIZE];
    assert_int_equal(lock(l, 1, NULL, nonce2), VTSM_OK);
    assert_true(memcmp(nonce, nonce2, sizeof(nonce)) != 0);
    assert_int_equal(start(l, 1, nonce), VTSM_E_PEER_ERROR);
    expect_tdisp_error(l, 1, VTSM_TDISP_ERR_INVALID_NONCE, 0);
    /* The other TDIs never moved. */
    expect_state(l, 0, VTSM_TDI_CONFIG_UNLOCKED);
    expect_state(l, 2, VTSM_TDI_CONFIG_UNLOCKED);
    expect_state(l, 3, VTSM_TDI_CONFIG_UNLOCKED);
    loop_close(l);
}

/* ---- exact bytes ---- */

static void test_version_capabilities_exact(void **state)
{
    (void)state;
    struct loop *l = loop_open(NULL, 0);
    struct vtsm_tdisp_rsp rsp;

    assert_int_equal(simple(l, 3, VTSM_TDISP_GET_VERSION, vtsm_tdisp_build_get_version, &rsp),
                     VTSM_OK);
    const uint8_t ver[19] = {0x01, 0x10, 0x01, 0, 0, 0x03, 0, 0,    0,   0,
                             0,    0,    0,    0, 0, 0,    0, 0x01, 0x10};
    assert_int_equal(l->rsp.len, sizeof(ver));
    assert_memory_equal(l->rsp.data, ver, sizeof(ver));

    uint8_t m[MSG_MAX];
    struct vtsm_wr w = vtsm_wr_init(m, sizeof(m));
    assert_int_equal(vtsm_tdisp_build_get_capabilities(&w, 0, 0xDEADBEEF), VTSM_OK);
    assert_int_equal(tdisp(l, m, w.len, VTSM_TDISP_GET_CAPABILITIES, 0, &rsp), VTSM_OK);
    /* DSM_CAPS 0; REQ_MSG_SUPPORTED bits 1..7 (0x81..0x87) and 11 (VDM_REQ 0x8B, the vtsm
     * FUNCTION_LEVEL_RESET); LOCK_INTERFACE_FLAGS_SUPPORTED
     * NO_FW_UPDATE | SYSTEM_CACHE_LINE_SIZE | LOCK_MSIX; DEV_ADDR_WIDTH 52; NUM_REQ 0. */
    uint8_t caps[VTSM_TDISP_HEADER_SIZE + 28] = {0x01, 0x10, 0x02};
    caps[VTSM_TDISP_HEADER_SIZE + 4] = 0xFE;
    caps[VTSM_TDISP_HEADER_SIZE + 5] = 0x08;
    caps[VTSM_TDISP_HEADER_SIZE + 20] = 0x07;
    caps[VTSM_TDISP_HEADER_SIZE + 25] = 52;
    assert_int_equal(l->rsp.len, sizeof(caps));
    assert_memory_equal(l->rsp.data, caps, sizeof(caps));
    loop_close(l);
}

/* ---- lifecycle ---- */

/* LOCK -> report (small and large chunks) -> START wrong / right -> STOP, on TDI 2. */
static void test_lock_report_start_stop(void **state)
{
    (void)state;
    struct loop *l = loop_open(NULL, 0);
    struct vtsm_buf small = {0}, large = {0};
    uint8_t nonce[VTSM_TDISP_NONCE_SIZE];
    struct vtsm_tdisp_report rep;
    unsigned chunks;

    struct vtsm_tdisp_lock_params p = {.flags =
                                           VTSM_TDISP_LOCK_NO_FW_UPDATE | VTSM_TDISP_LOCK_LOCK_MSIX,
                                       .default_stream_id = 1,
                                       .mmio_reporting_offset = 0x100000000ull};
    assert_int_equal(said_state(l, 2), VTSM_TDI_CONFIG_UNLOCKED);
    assert_int_equal(lock(l, 2, &p, nonce), VTSM_OK);
    assert_int_equal(said_state(l, 2), VTSM_TDI_CONFIG_LOCKED);

    /* 10-byte chunks and one big request give the same bytes. */
    assert_int_equal(read_report(l, 2, 10, &small, &chunks), VTSM_OK);
    assert_int_equal(chunks, (small.len + 9) / 10);
    assert_true(chunks > 5);
    assert_int_equal(read_report(l, 2, 0xFFFF, &large, &chunks), VTSM_OK);
    assert_int_equal(chunks, 1);
    assert_int_equal(small.len, large.len);
    assert_memory_equal(small.data, large.data, small.len);

    /* It parses and validates, and says what the README promises for TDI 2. */
    assert_int_equal(vtsm_tdisp_report_parse(large.data, large.len, &rep), VTSM_OK);
    assert_int_equal(rep.interface_info,
                     VTSM_TDISP_INFO_DMA_WITHOUT_PASID | VTSM_TDISP_INFO_NO_UPDATE_AFTER_LOCK);
    assert_int_equal(rep.msi_x_message_control, 0x0007);
    assert_int_equal(rep.mmio_range_count, 2);
    /* FIRST_PAGE is a 4 KiB page number: the TDI's MMIO address (with the offset) >> 12 */
    uint64_t base = (0x100000000ull + 0x80000000ull + 2 * 0x100000ull) >> 12;
    assert_int_equal(rep.mmio_range[0].first_page, base);
    assert_int_equal(rep.mmio_range[0].number_of_pages, 16);
    assert_int_equal(rep.mmio_range[0].range_attributes, 0);
    assert_int_equal(rep.mmio_range[0].range_id, 0);
    assert_int_equal(rep.mmio_range[1].first_page, base + 16); /* the next page */
    assert_int_equal(rep.mmio_range[1].number_of_pages, 1);
    assert_int_equal(rep.mmio_range[1].range_attributes, VTSM_TDISP_RANGE_MSIX_TABLE);
    assert_int_equal(rep.mmio_range[1].range_id, 1);
    assert_int_equal(rep.device_specific_info_len, strlen("vtsm-devemu TDI 2 RID 0x0002"));
    assert_memory_equal(rep.device_specific_info, "vtsm-devemu TDI 2 RID 0x0002",
                        rep.device_specific_info_len);

    /* START with the wrong nonce: ERROR; STOP; lock again; START right: RUN. */
    nonce[0] ^= 0xFF;
    assert_int_equal(start(l, 2, nonce), VTSM_E_PEER_ERROR);
    expect_tdisp_error(l, 2, VTSM_TDISP_ERR_INVALID_NONCE, 0);
    assert_int_equal(said_state(l, 2), VTSM_TDI_ERROR);
    assert_int_equal(stop(l, 2), VTSM_OK);
    assert_int_equal(said_state(l, 2), VTSM_TDI_CONFIG_UNLOCKED);
    assert_int_equal(lock(l, 2, NULL, nonce), VTSM_OK);
    assert_int_equal(start(l, 2, nonce), VTSM_OK);
    const uint8_t start_rsp[17] = {0x01, 0x10, 0x06, 0, 0, 0x02};
    assert_int_equal(l->rsp.len, 17);
    assert_memory_equal(l->rsp.data, start_rsp, 17);
    assert_int_equal(said_state(l, 2), VTSM_TDI_RUN);
    /* The report is still served in RUN (this lock had no MMIO_REPORTING_OFFSET). */
    assert_int_equal(read_report(l, 2, 0x400, &large, &chunks), VTSM_OK);
    assert_int_equal(vtsm_tdisp_report_parse(large.data, large.len, &rep), VTSM_OK);
    assert_int_equal(rep.interface_info,
                     VTSM_TDISP_INFO_DMA_WITHOUT_PASID | VTSM_TDISP_INFO_NO_UPDATE_AFTER_LOCK);
    assert_int_equal(rep.mmio_range[0].first_page, (0x80000000ull + 2 * 0x100000ull) >> 12);
    /* STOP -> CONFIG_UNLOCKED; STOP again is acknowledged and changes nothing. */
    assert_int_equal(stop(l, 2), VTSM_OK);
    const uint8_t stop_rsp[17] = {0x01, 0x10, 0x07, 0, 0, 0x02};
    assert_int_equal(l->rsp.len, 17);
    assert_memory_equal(l->rsp.data, stop_rsp, 17);
    assert_int_equal(said_state(l, 2), VTSM_TDI_CONFIG_UNLOCKED);
    assert_int_equal(stop(l, 2), VTSM_OK);
    expect_state(l, 2, VTSM_TDI_CONFIG_UNLOCKED);
    vtsm_buf_free(&small);
    vtsm_buf_free(&large);
    loop_close(l);
}

/* TDI state belongs to the device: a new requester, VCA and session find it as it was. */
static void test_state_outlives_session(void **state)
{
    (void)state;
    struct loop *l = loop_open(NULL, 0);
    uint8_t nonce[VTSM_TDISP_NONCE_SIZE];

    assert_int_equal(lock(l, 3, NULL, nonce), VTSM_OK);
    assert_int_equal(vtsm_spdm_req_end_session(l->r), VTSM_OK);
    vtsm_spdm_req_free(l->r);
    loop_new_requester(l);
    loop_session(l);
    expect_state(l, 3, VTSM_TDI_CONFIG_LOCKED);
    assert_int_equal(said_state(l, 3), VTSM_TDI_CONFIG_LOCKED);
    assert_int_equal(start(l, 3, nonce), VTSM_OK);
    assert_int_equal(said_state(l, 3), VTSM_TDI_RUN);
    loop_close(l);
}

/* ---- faults ---- */

static void test_fault_bad_nonce(void **state)
{
    (void)state;
    struct loop *l = loop_open(NULL, fault(VTSM_DEV_FAULT_TDISP_BAD_NONCE));
    uint8_t nonce[VTSM_TDISP_NONCE_SIZE];

    assert_int_equal(lock(l, 0, NULL, nonce), VTSM_OK);
    assert_int_equal(start(l, 0, nonce), VTSM_E_PEER_ERROR);
    expect_tdisp_error(l, 0, VTSM_TDISP_ERR_INVALID_NONCE, 0);
    expect_state(l, 0, VTSM_TDI_ERROR);
    loop_close(l);
}

static void test_fault_bad_reports(void **state)
{
    (void)state;
    static const struct {
        enum vtsm_dev_fault f;
        const char *needle; /* which check of the report parser refused it */
    } cases[] = {
        {VTSM_DEV_FAULT_TDISP_OVERLAP_MMIO, "overlaps range 0"},
        {VTSM_DEV_FAULT_TDISP_MMIO_OVERFLOW, "runs past the top"},
    };
    struct vtsm_tdisp_report rep;
    struct vtsm_buf all = {0};
    unsigned chunks;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct loop *l = loop_open(NULL, fault(cases[i].f));
        assert_int_equal(lock(l, 1, NULL, NULL), VTSM_OK);
        assert_int_equal(read_report(l, 1, 0x400, &all, &chunks), VTSM_OK);
        assert_int_equal(vtsm_tdisp_report_parse(all.data, all.len, &rep), VTSM_E_PEER_MALFORMED);
        if (!strstr(vtsm_err_detail(), cases[i].needle))
            fail_msg("%s: %s", cases[i].needle, vtsm_err_detail());
        loop_close(l);
    }
    vtsm_buf_free(&all);
}

static void test_fault_report_length_change(void **state)
{
    (void)state;
    struct loop *l = loop_open(NULL, fault(VTSM_DEV_FAULT_TDISP_REPORT_LENGTH));
    struct vtsm_tdisp_rsp r0, r1;
    struct vtsm_buf all = {0};
    unsigned chunks;

    assert_int_equal(lock(l, 0, NULL, NULL), VTSM_OK);
    /* Even a large request takes several chunks, and the second disagrees with the first. */
    assert_int_equal(report_chunk(l, 0, 0, 0xFFFF, &r0), VTSM_OK);
    assert_int_equal(r0.u.report.portion_length, 32);
    size_t total = 32 + r0.u.report.remainder_length;
    assert_int_equal(report_chunk(l, 0, 32, 0xFFFF, &r1), VTSM_OK);
    assert_int_equal(32 + r1.u.report.portion_length + r1.u.report.remainder_length, total + 16);
    assert_int_equal(read_report(l, 0, 0xFFFF, &all, &chunks), VTSM_E_PEER_MALFORMED);
    vtsm_buf_free(&all);
    loop_close(l);
}

static void test_fault_state_reports(void **state)
{
    (void)state;
    uint8_t nonce[VTSM_TDISP_NONCE_SIZE];

    /* tdisp-state-drift: RUN while CONFIG_LOCKED, the truth otherwise. */
    struct loop *l = loop_open(NULL, fault(VTSM_DEV_FAULT_TDISP_STATE_DRIFT));
    assert_int_equal(said_state(l, 0), VTSM_TDI_CONFIG_UNLOCKED);
    assert_int_equal(lock(l, 0, NULL, nonce), VTSM_OK);
    assert_int_equal(said_state(l, 0), VTSM_TDI_RUN);
    expect_state(l, 0, VTSM_TDI_CONFIG_LOCKED);
    assert_int_equal(start(l, 0, nonce), VTSM_OK);
    assert_int_equal(said_state(l, 0), VTSM_TDI_RUN);
    loop_close(l);

    /* tdisp-error-state: ERROR once locked (CONFIG_LOCKED or RUN). */
    l = loop_open(NULL, fault(VTSM_DEV_FAULT_TDISP_ERROR_STATE));
    assert_int_equal(said_state(l, 1), VTSM_TDI_CONFIG_UNLOCKED);
    assert_int_equal(lock(l, 1, NULL, nonce), VTSM_OK);
    assert_int_equal(said_state(l, 1), VTSM_TDI_ERROR);
    expect_state(l, 1, VTSM_TDI_CONFIG_LOCKED);
    assert_int_equal(start(l, 1, nonce), VTSM_OK);
    assert_int_equal(said_state(l, 1), VTSM_TDI_ERROR);
    assert_int_equal(stop(l, 1), VTSM_OK);
    assert_int_equal(said_state(l, 1), VTSM_TDI_CONFIG_UNLOCKED);
    loop_close(l);
}

/* ---- FUNCTION_LEVEL_RESET (the vtsm VDM) and the runtime controls ---- */

/* VDM_REQ for fid with vendor vid and body; the answer parsed as VDM_RSP. */
static vtsm_status flr_vdm(struct loop *l, uint32_t fid, uint16_t vid, const uint8_t *body,
                           size_t blen, struct vtsm_tdisp_rsp *rsp)
{
    uint8_t m[MSG_MAX], v[2];
    struct vtsm_wr w = vtsm_wr_init(m, sizeof(m));
    vtsm_put_le16(v, vid);
    struct vtsm_tdisp_vdm q = {.registry_id = VTSM_TDISP_VDM_REGISTRY_PCISIG,
                               .vendor_id_len = 2,
                               .vendor_id = v,
                               .body = body,
                               .body_len = blen};
    assert_int_equal(vtsm_tdisp_build_vdm(&w, VTSM_TDISP_VDM_REQ, fid, &q), VTSM_OK);
    return tdisp(l, m, w.len, VTSM_TDISP_VDM_REQ, fid, rsp);
}

static void expect_flr(struct loop *l, uint32_t fid)
{
    static const uint8_t body[4] = {VTSM_TDISP_VDM_VTSM_FLR};
    struct vtsm_tdisp_rsp rsp;
    assert_int_equal(flr_vdm(l, fid, VTSM_TDISP_VDM_VTSM_VENDOR_ID, body, 4, &rsp), VTSM_OK);
    assert_int_equal(rsp.hdr.type, VTSM_TDISP_VDM_RSP);
    assert_int_equal(rsp.u.vdm.vendor_id_len, 2);
    assert_int_equal(vtsm_get_le16(rsp.u.vdm.vendor_id), VTSM_TDISP_VDM_VTSM_VENDOR_ID);
    const uint8_t want[4] = {VTSM_TDISP_VDM_VTSM_FLR, VTSM_TDI_CONFIG_UNLOCKED, 0, 0};
    assert_int_equal(rsp.u.vdm.body_len, 4);
    assert_memory_equal(rsp.u.vdm.body, want, 4);
    expect_state(l, fid, VTSM_TDI_CONFIG_UNLOCKED);
}

static void test_flr_vdm(void **state)
{
    (void)state;
    struct loop *l = loop_open(NULL, 0);
    uint8_t nonce[VTSM_TDISP_NONCE_SIZE];
    struct vtsm_tdisp_rsp rsp;
    /* refusals first: another vendor's VDM, a malformed vtsm one; nothing changes */
    assert_int_equal(lock(l, 1, NULL, nonce), VTSM_OK);
    static const uint8_t body[4] = {VTSM_TDISP_VDM_VTSM_FLR}, bad_cmd[4] = {0x02},
                         bad_rsvd[4] = {VTSM_TDISP_VDM_VTSM_FLR, 0, 1, 0};
    assert_int_equal(flr_vdm(l, 1, 0x8086, body, 4, &rsp), VTSM_E_PEER_ERROR);
    expect_tdisp_error(l, 1, VTSM_TDISP_ERR_UNSUPPORTED_REQUEST, VTSM_TDISP_VDM_REQ);
    assert_int_equal(flr_vdm(l, 1, VTSM_TDISP_VDM_VTSM_VENDOR_ID, bad_cmd, 4, &rsp),
                     VTSM_E_PEER_ERROR);
    expect_tdisp_error(l, 1, VTSM_TDISP_ERR_INVALID_REQUEST, 0);
    assert_int_equal(flr_vdm(l, 1, VTSM_TDISP_VDM_VTSM_VENDOR_ID, bad_rsvd, 4, &rsp),
                     VTSM_E_PEER_ERROR);
    assert_int_equal(flr_vdm(l, 1, VTSM_TDISP_VDM_VTSM_VENDOR_ID, body, 3, &rsp),
                     VTSM_E_PEER_ERROR);
    expect_tdisp_error(l, 1, VTSM_TDISP_ERR_INVALID_REQUEST, 0);
    expect_state(l, 1, VTSM_TDI_CONFIG_LOCKED);
    /* FLR from CONFIG_LOCKED, RUN, ERROR and CONFIG_UNLOCKED: always CONFIG_UNLOCKED */
    expect_flr(l, 1);
    assert_int_equal(start(l, 1, nonce), VTSM_E_PEER_ERROR); /* the lock's nonce is gone */
    expect_state(l, 1, VTSM_TDI_CONFIG_UNLOCKED);
    assert_int_equal(lock(l, 1, NULL, nonce), VTSM_OK);
    assert_int_equal(start(l, 1, nonce), VTSM_OK);
    expect_state(l, 1, VTSM_TDI_RUN);
    expect_flr(l, 1);
    assert_int_equal(lock(l, 1, NULL, nonce), VTSM_OK);
    nonce[0] ^= 1;
    assert_int_equal(start(l, 1, nonce), VTSM_E_PEER_ERROR);
    expect_state(l, 1, VTSM_TDI_ERROR);
    expect_flr(l, 1);
    expect_flr(l, 1);
    /* after an FLR the TDI locks again and hands out its report */
    assert_int_equal(lock(l, 1, NULL, nonce), VTSM_OK);
    struct vtsm_buf rep = {0};
    unsigned chunks = 0;
    assert_int_equal(read_report(l, 1, 0xFFFF, &rep, &chunks), VTSM_OK);
    vtsm_buf_free(&rep);
    loop_close(l);
}

static void test_runtime_controls(void **state)
{
    (void)state;
    struct loop *l = loop_open(NULL, 0);
    uint8_t nonce[VTSM_TDISP_NONCE_SIZE];
    char out[128];
    unsigned errored = 99;
    struct vtsm_spdm_meas m0, m1, m2;
    memset(&m0, 0, sizeof(m0));
    memset(&m1, 0, sizeof(m1));
    memset(&m2, 0, sizeof(m2));
    assert_int_equal(vtsm_spdm_req_get_measurements(l->r, 0, NULL, &m0), VTSM_OK);

    /* unknown commands and TDIs; a device error only on a locked TDI (DEVTDI.10) */
    assert_int_equal(vtsm_dev_control(l->dev, "reflash", out, sizeof(out)), VTSM_E_INVAL);
    assert_int_equal(vtsm_dev_control(l->dev, "tdi-error 200", out, sizeof(out)), VTSM_E_NOT_FOUND);
    assert_int_equal(vtsm_dev_tdi_fail(l->dev, 0), VTSM_E_STATE);
    assert_int_equal(vtsm_err_rule(), VTSM_RULE_DEVTDI_10);

    /* NO_FW_UPDATE holds: refused (DEVTDI.8), measurements and the lock unchanged */
    assert_int_equal(lock(l, 0, NULL, nonce), VTSM_OK); /* default: NO_FW_UPDATE */
    assert_int_equal(vtsm_dev_firmware_update(l->dev, &errored), VTSM_E_STATE);
    assert_int_equal(vtsm_err_rule(), VTSM_RULE_DEVTDI_8);
    expect_state(l, 0, VTSM_TDI_CONFIG_LOCKED);
    assert_int_equal(vtsm_spdm_req_get_measurements(l->r, 0, NULL, &m1), VTSM_OK);
    assert_int_equal(m1.record.len, m0.record.len);
    assert_memory_equal(m1.record.data, m0.record.data, m0.record.len);

    /* without it: the update happens, the measurements change, the lock breaks */
    assert_int_equal(stop(l, 0), VTSM_OK);
    struct vtsm_tdisp_lock_params none = {.flags = 0};
    assert_int_equal(lock(l, 0, &none, nonce), VTSM_OK);
    assert_int_equal(vtsm_dev_control(l->dev, "fw-update", out, sizeof(out)), VTSM_OK);
    assert_string_equal(out, "ok fw-update version 1.0.1 tdis_to_error 1");
    expect_state(l, 0, VTSM_TDI_ERROR);
    assert_int_equal(vtsm_spdm_req_get_measurements(l->r, 0, NULL, &m2), VTSM_OK);
    assert_true(m2.record.len != m0.record.len ||
                memcmp(m2.record.data, m0.record.data, m0.record.len) != 0);
    /* nothing locked: allowed, no TDI moves */
    expect_flr(l, 0);
    assert_int_equal(vtsm_dev_firmware_update(l->dev, &errored), VTSM_OK);
    assert_int_equal(errored, 0);

    /* a device error on a locked TDI */
    assert_int_equal(lock(l, 3, NULL, nonce), VTSM_OK);
    assert_int_equal(vtsm_dev_control(l->dev, "tdi-error 3", out, sizeof(out)), VTSM_OK);
    expect_state(l, 3, VTSM_TDI_ERROR);
    assert_int_equal(said_state(l, 3), VTSM_TDI_ERROR);
    assert_int_equal(vtsm_dev_control(l->dev, "flr 3", out, sizeof(out)), VTSM_OK);
    expect_state(l, 3, VTSM_TDI_CONFIG_UNLOCKED);
    vtsm_spdm_meas_free(&m0);
    vtsm_spdm_meas_free(&m1);
    vtsm_spdm_meas_free(&m2);
    loop_close(l);
}

/* report-change N: the report a locked TDI hands out changes at once, its state stays,
 * and a STOP and new LOCK build the changed one again; on an unlocked TDI it waits for the
 * LOCK. meas-change: the measurements change, no TDI moves, whatever the lock flags. */
static void test_report_and_meas_change(void **state)
{
    (void)state;
    struct loop *l = loop_open(NULL, 0);
    uint8_t nonce[VTSM_TDISP_NONCE_SIZE];
    char out[128];
    struct vtsm_buf r0 = {0}, r1 = {0}, r2 = {0}, r3 = {0};
    unsigned chunks = 0;
    struct vtsm_spdm_meas m0, m1;
    memset(&m0, 0, sizeof(m0));
    memset(&m1, 0, sizeof(m1));

    assert_int_equal(vtsm_dev_control(l->dev, "report-change 200", out, sizeof(out)),
                     VTSM_E_NOT_FOUND);
    assert_int_equal(lock(l, 1, NULL, nonce), VTSM_OK);
    assert_int_equal(read_report(l, 1, 0xFFFF, &r0, &chunks), VTSM_OK);
    assert_int_equal(vtsm_dev_control(l->dev, "report-change 1", out, sizeof(out)), VTSM_OK);
    assert_string_equal(out, "ok report-change 1 change 1 now");
    expect_state(l, 1, VTSM_TDI_CONFIG_LOCKED);
    assert_int_equal(read_report(l, 1, 0xFFFF, &r1, &chunks), VTSM_OK);
    assert_int_equal(r1.len, r0.len + 9); /* " change 1" */
    assert_memory_equal(r1.data + r0.len, " change 1", 9);
    /* everything before DEVICE_SPECIFIC_INFO_LEN (4 bytes) and the 28-byte text is unchanged */
    assert_memory_equal(r1.data, r0.data, r0.len - 32);
    /* for good: a new LOCK reports it too */
    assert_int_equal(stop(l, 1), VTSM_OK);
    assert_int_equal(lock(l, 1, NULL, nonce), VTSM_OK);
    assert_int_equal(read_report(l, 1, 0xFFFF, &r2, &chunks), VTSM_OK);
    assert_int_equal(r2.len, r1.len);
    assert_memory_equal(r2.data, r1.data, r1.len);
    /* an unlocked TDI: from its next LOCK */
    assert_int_equal(vtsm_dev_control(l->dev, "report-change 2", out, sizeof(out)), VTSM_OK);
    assert_string_equal(out, "ok report-change 2 change 1 at_lock");
    expect_state(l, 2, VTSM_TDI_CONFIG_UNLOCKED);
    assert_int_equal(lock(l, 2, NULL, nonce), VTSM_OK);
    assert_int_equal(read_report(l, 2, 0xFFFF, &r3, &chunks), VTSM_OK);
    assert_memory_equal(r3.data + r3.len - 9, " change 1", 9);

    /* meas-change: TDI 1 is locked with NO_FW_UPDATE (the default) and stays locked */
    assert_int_equal(vtsm_spdm_req_get_measurements(l->r, 0, NULL, &m0), VTSM_OK);
    assert_int_equal(vtsm_dev_control(l->dev, "meas-change", out, sizeof(out)), VTSM_OK);
    assert_string_equal(out, "ok meas-change patch 1 version 1.0.0");
    expect_state(l, 1, VTSM_TDI_CONFIG_LOCKED);
    assert_int_equal(vtsm_spdm_req_get_measurements(l->r, 0, NULL, &m1), VTSM_OK);
    assert_int_equal(m1.num_blocks, m0.num_blocks);
    assert_true(m1.record.len == m0.record.len &&
                memcmp(m1.record.data, m0.record.data, m0.record.len) != 0);
    vtsm_spdm_meas_free(&m0);
    vtsm_spdm_meas_free(&m1);
    vtsm_buf_free(&r0);
    vtsm_buf_free(&r1);
    vtsm_buf_free(&r2);
    vtsm_buf_free(&r3);
    loop_close(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tdisp_outside_session),
        cmocka_unit_test(test_no_tdisp),
        cmocka_unit_test(test_tdisp_message_errors),
        cmocka_unit_test(test_tdisp_state_refusals),
        cmocka_unit_test(test_version_capabilities_exact),
        cmocka_unit_test(test_lock_report_start_stop),
        cmocka_unit_test(test_state_outlives_session),
        cmocka_unit_test(test_fault_bad_nonce),
        cmocka_unit_test(test_fault_bad_reports),
        cmocka_unit_test(test_fault_report_length_change),
        cmocka_unit_test(test_fault_state_reports),
        cmocka_unit_test(test_flr_vdm),
        cmocka_unit_test(test_runtime_controls),
        cmocka_unit_test(test_report_and_meas_change),
    };
    return cmocka_run_group_tests_name("devemu_tdisp", tests, NULL, NULL);
}
