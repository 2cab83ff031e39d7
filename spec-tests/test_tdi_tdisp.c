/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tsm/tsm_tdi: the TDISP requester operations and the bind / accept / unbind / info /
 * reject flows (docs/abi.md sections 9-10).
 *
 * The SPDM side is real: tsm/spdm connected in-process to the device emulator's responder
 * (vtsm_dev_handle) with a secure session, so measurements, the certificate chain and the
 * negotiated DataTransferSize are the device's. TDISP travels two ways:
 *   - scripted: a TDISP responder written here (from the codec in proto/vtsm_tdisp.h) is
 *     plugged into the channel, so that every malformed or hostile answer can be produced;
 *   - loopback: through vtsm_spdm_req_vendor() into devemu's own TDISP responder, with the
 *     device faults of devemu/README.md.
 * Failure cases first, each asserting the exact status, the rule and what changed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "vtsm_test.h"

#include <openssl/evp.h>

#include "tsm_reply.h"
#include "tsm_tdi.h"
#include "vtsm_abi.h"
#include "vtsm_cose.h"
#include "vtsm_devemu.h"
#include "vtsm_spdm_req.h"
#include "vtsm_tdisp.h"

#define DEV_NAME  "0000:01:00.0"
#define TVM       3
#define OTHER_TVM 4
#define NTDIS     4

/* ================================================================ scripted TDISP device */

enum sfault {
    SF_UNSUPPORTED = 1u << 0,   /* GET_VERSION -> TDISP_ERROR UNSUPPORTED_REQUEST */
    SF_VERSION_11 = 1u << 1,    /* VERSION lists only 1.1 */
    SF_WRONG_FID = 1u << 2,     /* answer names another interface */
    SF_WRONG_PROTO = 1u << 3,   /* answer with protocol ID 0 (IDE_KM) */
    SF_WRONG_VERSION = 1u << 4, /* answer with TDISPVersion 0x11 */
    SF_WRONG_CODE = 1u << 5,    /* answer with another response code */
    SF_LOCK_ERROR = 1u << 6,    /* LOCK -> TDISP_ERROR INVALID_INTERFACE_STATE */
    SF_LEN_CHANGE = 1u << 7,    /* second report chunk claims a longer report */
    SF_BIG_REPORT = 1u << 8,    /* first chunk claims a report over 64 KiB */
    SF_LONG_PORTION = 1u << 9,  /* portion longer than asked */
    SF_OVERLAP = 1u << 10,      /* report: two overlapping ranges */
    SF_OVERFLOW = 1u << 11,     /* report: a range running past the 64-bit address space */
    SF_STATE_DRIFT = 1u << 12,  /* GET_DEVICE_INTERFACE_STATE says RUN while locked */
    SF_ERROR_STATE = 1u << 13,  /* ... says ERROR */
    SF_BAD_NONCE = 1u << 14,    /* START refused with INVALID_NONCE, TDI to ERROR */
    SF_STOP_FAIL = 1u << 15,    /* STOP -> TDISP_ERROR UNSPECIFIED */
    SF_LOCK_GARBLE = 1u << 16,  /* LOCK_INTERFACE_RSP truncated (the device may have locked) */
    SF_FLR_STUCK = 1u << 17,    /* FUNCTION_LEVEL_RESET answered, but the TDI stays as it was */
};

struct sdev {
    unsigned faults;
    uint8_t garble_on; /* SF_WRONG_* apply to answers to this request code */
    uint8_t state[NTDIS];
    uint8_t nonce[NTDIS][VTSM_TDISP_NONCE_SIZE];
    struct vtsm_buf report; /* the same report for every TDI */
    size_t max_portion;     /* device-side cap on a portion (0: none) */
    unsigned calls[256];    /* requests seen, by code */
    size_t max_len_asked;   /* largest GET_DEVICE_INTERFACE_REPORT LENGTH */
    uint8_t last_start_nonce[VTSM_TDISP_NONCE_SIZE];
};

/* ACCEPT as a guest that verified the TDI as it stands (its INFO's digests). */
static vtsm_status accept_as_verified(const struct tsm_tdisp_chan *c, struct tsm_tdi *t,
                                      uint32_t tvm)
{
    struct tsm_tdi_accept_binding b;
    tsm_tdi_current_binding(t, &b);
    return tsm_tdi_accept(c, t, tvm, &b);
}

static void sdev_make_report(struct sdev *s, unsigned ranges, size_t info_len)
{
    struct vtsm_tdisp_report r;
    uint8_t info[1024];
    uint8_t buf[VTSM_TDISP_REPORT_FIXED + 8 * VTSM_TDISP_MMIO_RANGE_SIZE + 4 + sizeof(info)];
    struct vtsm_wr w = vtsm_wr_init(buf, sizeof(buf));

    assert_true(ranges <= 8 && info_len <= sizeof(info));
    memset(&r, 0, sizeof(r));
    for (size_t i = 0; i < info_len; i++)
        info[i] = (uint8_t)(i * 7 + 1);
    r.interface_info = VTSM_TDISP_INFO_DMA_WITHOUT_PASID;
    r.mmio_range_count = ranges;
    for (unsigned i = 0; i < ranges; i++) {
        r.mmio_range[i].first_page = (0x80000000ull >> VTSM_TDISP_PAGE_SHIFT) + (uint64_t)i * 0x100;
        r.mmio_range[i].number_of_pages = 4 + i;
        r.mmio_range[i].range_id = (uint16_t)i;
    }
    if (s->faults & SF_OVERLAP)
        r.mmio_range[1].first_page = r.mmio_range[0].first_page + 1; /* inside range 0 */
    if (s->faults & SF_OVERFLOW)
        r.mmio_range[0].first_page = VTSM_TDISP_MAX_PAGE - 1;
    r.device_specific_info_len = (uint32_t)info_len;
    r.device_specific_info = info;
    assert_int_equal(vtsm_tdisp_report_build(&w, &r), VTSM_OK);
    assert_int_equal(vtsm_buf_set(&s->report, buf, w.len), VTSM_OK);
}

static void sdev_init(struct sdev *s, unsigned faults)
{
    memset(s, 0, sizeof(*s));
    s->faults = faults;
    sdev_make_report(s, 3, 40);
}

static void sdev_free(struct sdev *s)
{
    vtsm_buf_free(&s->report);
}

/* Answer one TDISP request the way a device would (plus the scripted faults). */
static vtsm_status sdev_vendor(void *ctx, const uint8_t *payload, size_t len, struct vtsm_buf *rsp)
{
    struct sdev *s = ctx;
    struct vtsm_tdisp_req q;
    uint8_t out[8192];
    struct vtsm_wr w = vtsm_wr_init(out, sizeof(out));
    const uint8_t versions_10[] = {VTSM_TDISP_VERSION_10}, versions_11[] = {0x11};

    /* Our requester only ever sends well-formed requests. */
    assert_int_equal(vtsm_tdisp_parse_request(payload, len, &q), VTSM_OK);
    uint32_t fid = q.hdr.function_id;
    unsigned i = VTSM_TDISP_FID_RID(fid);
    assert_true(i < NTDIS);
    assert_int_equal(fid & VTSM_TDISP_FID_SEG_VALID, 0);
    s->calls[q.hdr.type]++;

#define ERR(code) assert_int_equal(vtsm_tdisp_build_error(&w, fid, (code), 0, NULL, 0), VTSM_OK)
    switch (q.hdr.type) {
    case VTSM_TDISP_GET_VERSION:
        if (s->faults & SF_UNSUPPORTED)
            ERR(VTSM_TDISP_ERR_UNSUPPORTED_REQUEST);
        else
            assert_int_equal(vtsm_tdisp_build_version(
                                 &w, fid, s->faults & SF_VERSION_11 ? versions_11 : versions_10, 1),
                             VTSM_OK);
        break;
    case VTSM_TDISP_GET_CAPABILITIES: {
        struct vtsm_tdisp_caps c = {.dsm_caps = 0,
                                    .lock_interface_flags_supported = 0x7,
                                    .dev_addr_width = 52,
                                    .num_req_this = 1,
                                    .num_req_all = 1};
        c.req_msg_supported[0] = 0xFF;
        assert_int_equal(vtsm_tdisp_build_capabilities(&w, fid, &c), VTSM_OK);
        break;
    }
    case VTSM_TDISP_LOCK_INTERFACE_REQ:
        if ((s->faults & SF_LOCK_ERROR) || s->state[i] != VTSM_TDI_CONFIG_UNLOCKED) {
            ERR(VTSM_TDISP_ERR_INVALID_INTERFACE_STATE);
            break;
        }
        assert_int_equal(vtsm_random(s->nonce[i], VTSM_TDISP_NONCE_SIZE), VTSM_OK);
        s->state[i] = VTSM_TDI_CONFIG_LOCKED;
        assert_int_equal(vtsm_tdisp_build_lock_rsp(&w, fid, s->nonce[i]), VTSM_OK);
        if (s->faults & SF_LOCK_GARBLE)
            w.len -= 5;
        break;
    case VTSM_TDISP_GET_DEVICE_INTERFACE_REPORT: {
        size_t off = q.u.report.offset, want = q.u.report.length, total = s->report.len;
        if (want > s->max_len_asked)
            s->max_len_asked = want;
        if (s->state[i] != VTSM_TDI_CONFIG_LOCKED && s->state[i] != VTSM_TDI_RUN) {
            ERR(VTSM_TDISP_ERR_INVALID_INTERFACE_STATE);
            break;
        }
        assert_true(off < total && want > 0);
        size_t portion = total - off < want ? total - off : want;
        if (s->max_portion && portion > s->max_portion)
            portion = s->max_portion;
        size_t rem = total - off - portion;
        if ((s->faults & SF_LEN_CHANGE) && off > 0)
            rem += 16;
        if (s->faults & SF_BIG_REPORT)
            rem = 0xFFFF;
        if ((s->faults & SF_LONG_PORTION) && portion < total - off)
            portion++, rem--;
        assert_int_equal(vtsm_tdisp_build_report_rsp(&w, fid, s->report.data + off,
                                                     (uint16_t)portion, (uint16_t)rem),
                         VTSM_OK);
        break;
    }
    case VTSM_TDISP_GET_DEVICE_INTERFACE_STATE: {
        uint8_t st = s->state[i];
        if ((s->faults & SF_STATE_DRIFT) && st == VTSM_TDI_CONFIG_LOCKED)
            st = VTSM_TDI_RUN;
        if ((s->faults & SF_ERROR_STATE) && st != VTSM_TDI_CONFIG_UNLOCKED)
            st = VTSM_TDI_ERROR;
        assert_int_equal(vtsm_tdisp_build_state_rsp(&w, fid, st), VTSM_OK);
        break;
    }
    case VTSM_TDISP_START_INTERFACE_REQ:
        memcpy(s->last_start_nonce, q.u.start_nonce, VTSM_TDISP_NONCE_SIZE);
        if (s->state[i] != VTSM_TDI_CONFIG_LOCKED) {
            ERR(VTSM_TDISP_ERR_INVALID_INTERFACE_STATE);
        } else if ((s->faults & SF_BAD_NONCE) ||
                   memcmp(q.u.start_nonce, s->nonce[i], VTSM_TDISP_NONCE_SIZE) != 0) {
            s->state[i] = VTSM_TDI_ERROR;
            ERR(VTSM_TDISP_ERR_INVALID_NONCE);
        } else {
            s->state[i] = VTSM_TDI_RUN;
            assert_int_equal(vtsm_tdisp_build_start_rsp(&w, fid), VTSM_OK);
        }
        break;
    case VTSM_TDISP_STOP_INTERFACE_REQ:
        if (s->faults & SF_STOP_FAIL) {
            ERR(VTSM_TDISP_ERR_UNSPECIFIED);
            break;
        }
        s->state[i] = VTSM_TDI_CONFIG_UNLOCKED;
        assert_int_equal(vtsm_tdisp_build_stop_rsp(&w, fid), VTSM_OK);
        break;
    case VTSM_TDISP_VDM_REQ: { /* the vtsm FUNCTION_LEVEL_RESET */
        assert_int_equal(q.u.vdm.body_len, VTSM_TDISP_VDM_VTSM_BODY);
        assert_int_equal(q.u.vdm.body[0], VTSM_TDISP_VDM_VTSM_FLR);
        if (!(s->faults & SF_FLR_STUCK))
            s->state[i] = VTSM_TDI_CONFIG_UNLOCKED;
        uint8_t body[VTSM_TDISP_VDM_VTSM_BODY] = {VTSM_TDISP_VDM_VTSM_FLR, s->state[i]};
        struct vtsm_tdisp_vdm v = q.u.vdm;
        v.body = body;
        assert_int_equal(vtsm_tdisp_build_vdm(&w, VTSM_TDISP_VDM_RSP, fid, &v), VTSM_OK);
        break;
    }
    default:
        fail_msg("unexpected TDISP request 0x%02x", q.hdr.type);
    }
#undef ERR

    if (s->garble_on == 0 || s->garble_on == q.hdr.type) {
        if (s->faults & SF_WRONG_FID)
            out[5] ^= 0x01; /* FUNCTION_ID RID low byte */
        if (s->faults & SF_WRONG_PROTO)
            out[0] = 0x00;
        if (s->faults & SF_WRONG_VERSION)
            out[1] = 0x11;
        if (s->faults & SF_WRONG_CODE)
            out[2] = VTSM_TDISP_STOP_INTERFACE_RSP;
    }
    return vtsm_buf_set(rsp, out, w.len);
}

/* ================================================================ SPDM session fixture */

struct fix {
    struct vtsm_dev *dev;
    struct vtsm_spdm_req *r;
    struct sdev sd;
    struct tsm_tdisp_chan chan; /* scripted unless loopback */
    struct tsm_tdi tdi[NTDIS];
    unsigned exchanges;
    EVP_PKEY *tsm_key;
    uint8_t kid[32];
    uint8_t identity[32];
};

static vtsm_status loop_exchange(void *ctx, const uint8_t *req, size_t len, struct vtsm_buf *rsp)
{
    struct fix *f = ctx;
    f->exchanges++;
    return vtsm_dev_handle(f->dev, req, len, rsp);
}

struct opts {
    bool loopback;       /* TDISP to devemu's responder, not the script */
    uint32_t dev_faults; /* VTSM_DEV_FAULT_BIT()s */
    bool no_tdisp;       /* devemu without a TDISP responder */
    unsigned sfaults;    /* scripted faults */
    uint32_t dts;        /* device DataTransferSize (0: default) */
};

static void fix_open(struct fix *f, const struct opts *o)
{
    struct vtsm_dev_config cfg;
    struct vtsm_spdm_req_opts ro;
    struct vtsm_spdm_transport tp = {.exchange = loop_exchange, .ctx = f};
    uint8_t mask = 0;

    memset(f, 0, sizeof(*f));
    vtsm_dev_config_default(&cfg);
    cfg.asym = VTSM_ASYM_ECDSA_P256;
    cfg.hash = VTSM_HASH_SHA256;
    cfg.dhe = VTSM_DHE_SECP256R1;
    cfg.faults = o->dev_faults;
    cfg.num_tdis = NTDIS;
    cfg.tdisp = !o->no_tdisp;
    if (o->dts)
        cfg.data_transfer_size = cfg.max_spdm_msg_size = o->dts;
    assert_int_equal(vtsm_dev_new(&cfg, &f->dev), VTSM_OK);
    vtsm_spdm_req_opts_default(&ro);
    assert_int_equal(vtsm_spdm_req_new(&ro, &tp, &f->r), VTSM_OK);
    assert_int_equal(vtsm_spdm_req_init_connection(f->r), VTSM_OK);
    assert_int_equal(vtsm_spdm_req_get_digests(f->r, &mask, NULL), VTSM_OK);
    assert_int_equal(vtsm_spdm_req_get_certificate(f->r, 0), VTSM_OK);
    assert_int_equal(vtsm_spdm_req_start_session(f->r, 0), VTSM_OK);

    sdev_init(&f->sd, o->sfaults);
    f->chan.spdm = f->r;
    f->chan.slot = 0;
    f->chan.dev = DEV_NAME;
    if (!o->loopback) {
        f->chan.vendor = sdev_vendor;
        f->chan.vendor_ctx = &f->sd;
    }
    for (unsigned i = 0; i < NTDIS; i++)
        assert_int_equal(tsm_tdi_init(&f->tdi[i], DEV_NAME, i), VTSM_OK);
    assert_int_equal(vtsm_pkey_load_pem(VTSM_SOURCE_DIR "/pki/tsm/tsm.key", &f->tsm_key), VTSM_OK);
    memset(f->kid, 0x4B, sizeof(f->kid));
    memset(f->identity, 0x1D, sizeof(f->identity));
}

static void fix_close(struct fix *f)
{
    for (unsigned i = 0; i < NTDIS; i++)
        tsm_tdi_reset(&f->tdi[i]);
    sdev_free(&f->sd);
    EVP_PKEY_free(f->tsm_key);
    vtsm_spdm_req_free(f->r);
    vtsm_dev_free(f->dev);
    memset(f, 0, sizeof(*f));
}

static const struct opts scripted = {0};

static bool all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

/* A TDI back to "never bound": unlocked, unowned, nothing cached. */
static void assert_unbound(const struct tsm_tdi *t)
{
    assert_int_equal(t->state, TSM_TDI_CONFIG_UNLOCKED);
    assert_int_equal(t->owner_tvm, 0);
    assert_false(t->nonce_valid);
    assert_true(all_zero(t->lock_nonce, sizeof(t->lock_nonce)));
    assert_int_equal(t->report.len, 0);
    assert_int_equal(t->digest_len, 0);
    assert_false(t->have_meas);
    assert_false(t->mmio_enabled || t->dma_enabled);
}

static void bind_ok(struct fix *f, unsigned i)
{
    EXPECT(tsm_tdi_bind(&f->chan, &f->tdi[i], TVM, VTSM_TDISP_LOCK_NO_FW_UPDATE, 0), VTSM_OK,
           VTSM_RULE_NONE);
    assert_int_equal(f->tdi[i].state, TSM_TDI_CONFIG_LOCKED);
    assert_int_equal(f->tdi[i].owner_tvm, TVM);
    assert_true(f->tdi[i].nonce_valid);
}

/* ================================================================ scripted: failures */

static void test_probe_not_tee_io(void **state)
{
    struct fix f;
    struct opts o = {.sfaults = SF_UNSUPPORTED};
    (void)state;
    fix_open(&f, &o);
    EXPECT_DETAIL(tsm_tdisp_probe(&f.chan, NULL), VTSM_E_PEER_CAPS, VTSM_RULE_NONE,
                  "connect with ide_only");
    fix_close(&f);
}

static void test_probe_no_tdisp_10(void **state)
{
    struct fix f;
    struct opts o = {.sfaults = SF_VERSION_11};
    (void)state;
    fix_open(&f, &o);
    EXPECT(tsm_tdisp_probe(&f.chan, NULL), VTSM_E_PEER_VERSION, VTSM_RULE_NONE);
    assert_int_equal(f.sd.calls[VTSM_TDISP_GET_CAPABILITIES], 0);
    fix_close(&f);
}

/* Every answer is checked: protocol ID, TDISP version, response code, INTERFACE_ID echo. */
static void test_response_checks(void **state)
{
    static const struct {
        unsigned fault;
        vtsm_status st;
        const char *needle;
    } cases[] = {
        {SF_WRONG_FID, VTSM_E_PEER_MALFORMED, "FUNCTION_ID 0x00000003, not 0x00000002"},
        {SF_WRONG_PROTO, VTSM_E_PEER_MALFORMED, "protocol ID"},
        {SF_WRONG_VERSION, VTSM_E_PEER_VERSION, "TDISPVersion"},
        {SF_WRONG_CODE, VTSM_E_PEER_UNEXPECTED, "STOP_INTERFACE_RSP"},
    };
    (void)state;
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct fix f;
        struct opts o = {.sfaults = cases[k].fault};
        uint8_t st = 0xEE;
        fix_open(&f, &o);
        EXPECT_DETAIL(tsm_tdisp_get_state(&f.chan, 2, &st), cases[k].st, VTSM_RULE_NONE,
                      cases[k].needle);
        assert_int_equal(st, 0xEE);
        /* in a flow: bind's LOCK answer garbled -> the device may be locked: STOP sent */
        f.sd.garble_on = VTSM_TDISP_LOCK_INTERFACE_REQ;
        EXPECT_DETAIL(tsm_tdi_bind(&f.chan, &f.tdi[2], TVM, 0, 0), cases[k].st, VTSM_RULE_NONE,
                      "STOP_INTERFACE_REQ");
        assert_int_equal(f.sd.calls[VTSM_TDISP_STOP_INTERFACE_REQ], 1);
        assert_unbound(&f.tdi[2]);
        fix_close(&f);
    }
}

static void test_bind_refusals_before_any_exchange(void **state)
{
    struct fix f;
    (void)state;
    fix_open(&f, &scripted);
    EXPECT_DETAIL(tsm_tdi_bind(&f.chan, &f.tdi[0], 0, 0, 0), VTSM_E_INVAL, VTSM_RULE_NONE, "TVM 0");
    EXPECT_DETAIL(tsm_tdi_bind(&f.chan, &f.tdi[0], TVM, 0x0100, 0), VTSM_E_ABI_ARG, VTSM_RULE_ABI_8,
                  "lock_flags");
    bind_ok(&f, 0);
    unsigned locks = f.sd.calls[VTSM_TDISP_LOCK_INTERFACE_REQ];
    EXPECT(tsm_tdi_bind(&f.chan, &f.tdi[0], OTHER_TVM, 0, 0), VTSM_E_STATE, VTSM_RULE_TDI_1);
    assert_int_equal(f.sd.calls[VTSM_TDISP_LOCK_INTERFACE_REQ], locks);
    assert_int_equal(f.tdi[0].owner_tvm, TVM);
    fix_close(&f);
}

static void test_lock_refused(void **state)
{
    struct fix f;
    struct opts o = {.sfaults = SF_LOCK_ERROR};
    (void)state;
    fix_open(&f, &o);
    EXPECT_DETAIL(tsm_tdi_bind(&f.chan, &f.tdi[1], TVM, 0, 0), VTSM_E_PEER_ERROR, VTSM_RULE_NONE,
                  "TDISP_ERROR INVALID_INTERFACE_STATE");
    /* a refused LOCK locked nothing: no STOP */
    assert_int_equal(f.sd.calls[VTSM_TDISP_STOP_INTERFACE_REQ], 0);
    assert_unbound(&f.tdi[1]);
    fix_close(&f);
}

static void test_lock_answer_lost(void **state)
{
    struct fix f;
    struct opts o = {.sfaults = SF_LOCK_GARBLE};
    (void)state;
    fix_open(&f, &o);
    EXPECT(tsm_tdi_bind(&f.chan, &f.tdi[1], TVM, 0, 0), VTSM_E_PEER_TRUNCATED, VTSM_RULE_NONE);
    assert_int_equal(f.sd.state[1], VTSM_TDI_CONFIG_UNLOCKED);
    assert_unbound(&f.tdi[1]);
    fix_close(&f);
}

/* Report faults: each fails the bind naming its rule, STOP unlocks the device, the TDI
 * stays unbound with nothing cached. */
static void test_bad_reports(void **state)
{
    static const struct {
        unsigned fault;
        bool big; /* a report of several DataTransferSize-limited chunks */
        vtsm_status st;
        const char *needle;
    } cases[] = {
        {SF_LEN_CHANGE, false, VTSM_E_PEER_MALFORMED, "report length changed between chunks"},
        {SF_BIG_REPORT, false, VTSM_E_PEER_OVERSIZED, "exceeds the 65535-byte limit"},
        {SF_LONG_PORTION, true, VTSM_E_PEER_MALFORMED, "exceeds the LENGTH 224 asked for"},
        {SF_OVERLAP, false, VTSM_E_PEER_MALFORMED, "overlaps range 0"},
        {SF_OVERFLOW, false, VTSM_E_PEER_MALFORMED, "runs past the top"},
    };
    (void)state;
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct fix f;
        struct opts o = {.sfaults = cases[k].fault, .dts = cases[k].big ? 256 : 0};
        fix_open(&f, &o);
        if (cases[k].big)
            sdev_make_report(&f.sd, 8, 600);
        if (cases[k].fault == SF_LEN_CHANGE)
            f.sd.max_portion = 64; /* the device answers in two chunks */
        EXPECT_DETAIL(tsm_tdi_bind(&f.chan, &f.tdi[3], TVM, 0, 0), cases[k].st, VTSM_RULE_NONE,
                      cases[k].needle);
        assert_non_null(strstr(vtsm_err_detail(), "STOP_INTERFACE_REQ answered"));
        assert_non_null(strstr(vtsm_err_detail(), "TDI stays CONFIG_UNLOCKED"));
        assert_int_equal(f.sd.calls[VTSM_TDISP_STOP_INTERFACE_REQ], 1);
        assert_int_equal(f.sd.state[3], VTSM_TDI_CONFIG_UNLOCKED);
        assert_unbound(&f.tdi[3]);
        fix_close(&f);
    }
}

static void test_accept_refusals_before_any_exchange(void **state)
{
    struct fix f;
    (void)state;
    fix_open(&f, &scripted);
    EXPECT(accept_as_verified(&f.chan, &f.tdi[0], TVM), VTSM_E_NOT_OWNER, VTSM_RULE_TDI_5);
    bind_ok(&f, 0);
    unsigned q = f.sd.calls[VTSM_TDISP_GET_DEVICE_INTERFACE_STATE];
    EXPECT(accept_as_verified(&f.chan, &f.tdi[0], OTHER_TVM), VTSM_E_NOT_OWNER, VTSM_RULE_TDI_5);
    EXPECT(accept_as_verified(&f.chan, &f.tdi[0], 0), VTSM_E_NOT_OWNER, VTSM_RULE_TDI_5);
    assert_int_equal(f.sd.calls[VTSM_TDISP_GET_DEVICE_INTERFACE_STATE], q);
    assert_int_equal(f.tdi[0].state, TSM_TDI_CONFIG_LOCKED);
    assert_true(f.tdi[0].nonce_valid);
    EXPECT(accept_as_verified(&f.chan, &f.tdi[0], TVM), VTSM_OK, VTSM_RULE_NONE);
    EXPECT(accept_as_verified(&f.chan, &f.tdi[0], TVM), VTSM_E_STATE, VTSM_RULE_TDI_4);
    assert_int_equal(f.sd.calls[VTSM_TDISP_START_INTERFACE_REQ], 1);
    fix_close(&f);
}

/* ACCEPT binds what the guest verified (TDI.20): each digest that differs, or is missing,
 * is refused before any device exchange and the TDI stays CONFIG_LOCKED. */
static void test_accept_binding_refused(void **state)
{
    struct fix f;
    struct tsm_tdi_accept_binding b;
    uint8_t other[VTSM_HASH_MAX];
    (void)state;
    fix_open(&f, &scripted);
    bind_ok(&f, 0);
    struct tsm_tdi *t = &f.tdi[0];
    assert_true(tsm_tdi_after_lock(t, t->meas_seq)); /* measured after LOCK_INTERFACE_RSP */
    assert_false(tsm_tdi_after_lock(t, t->lock_seq));
    unsigned q = f.sd.calls[VTSM_TDISP_GET_DEVICE_INTERFACE_STATE];
    for (int which = 0; which < 4; which++) {
        tsm_tdi_current_binding(t, &b);
        memcpy(other,
               which == 0   ? b.report_digest
               : which == 1 ? b.meas_digest
                            : b.lock_digest,
               t->digest_len);
        other[0] ^= 1;
        if (which == 0)
            b.report_digest = other;
        else if (which == 1)
            b.meas_digest = other;
        else if (which == 2)
            b.lock_digest = other;
        else
            b.lock_len = 0; /* "none seen" never matches */
        EXPECT(tsm_tdi_accept(&f.chan, t, TVM, &b), VTSM_E_STATE, VTSM_RULE_TDI_20);
        assert_int_equal(t->state, TSM_TDI_CONFIG_LOCKED);
        assert_true(t->nonce_valid);
    }
    assert_int_equal(f.sd.calls[VTSM_TDISP_GET_DEVICE_INTERFACE_STATE], q);
    assert_int_equal(f.sd.calls[VTSM_TDISP_START_INTERFACE_REQ], 0);
    EXPECT(tsm_tdi_accept(&f.chan, t, TVM, NULL), VTSM_E_INVAL, VTSM_RULE_NONE);
    EXPECT(accept_as_verified(&f.chan, t, TVM), VTSM_OK, VTSM_RULE_NONE);
    assert_true(tsm_tdi_after_lock(t, t->meas_seq)); /* RUN: the lock still holds */
    fix_close(&f);
}

/* Before RUN the TSM re-reads the interface report (TDI.21): a report that changed since
 * LOCK moves the TDI to ERROR, no START is sent. */
static void test_accept_report_changed(void **state)
{
    struct fix f;
    (void)state;
    fix_open(&f, &scripted);
    bind_ok(&f, 1);
    f.sd.report.data[f.sd.report.len - 1] ^= 0x01; /* the device's report changes */
    EXPECT_DETAIL(accept_as_verified(&f.chan, &f.tdi[1], TVM), VTSM_E_PEER_STATE, VTSM_RULE_TDI_21,
                  "interface report changed");
    assert_int_equal(f.tdi[1].state, TSM_TDI_ERROR);
    assert_int_equal(f.tdi[1].error_rule, VTSM_RULE_TDI_21);
    assert_false(f.tdi[1].mmio_enabled || f.tdi[1].dma_enabled || f.tdi[1].nonce_valid);
    assert_false(tsm_tdi_after_lock(&f.tdi[1], f.tdi[1].meas_seq));
    assert_int_equal(f.sd.calls[VTSM_TDISP_START_INTERFACE_REQ], 0);
    fix_close(&f);
}

/* Device state faults at accept: the TDI goes to ERROR, no START is sent, nothing enabled. */
static void test_accept_device_state(void **state)
{
    static const struct {
        unsigned fault;
        enum vtsm_rule rule;
        const char *needle; /* the device's state, as the TSM saw it */
    } cases[] = {
        {SF_STATE_DRIFT, VTSM_RULE_TDI_8, "reports it RUN"},
        {SF_ERROR_STATE, VTSM_RULE_TDI_7, "reports it ERROR"},
    };
    (void)state;
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct fix f;
        struct opts o = {.sfaults = cases[k].fault};
        fix_open(&f, &o);
        bind_ok(&f, 1);
        EXPECT_DETAIL(accept_as_verified(&f.chan, &f.tdi[1], TVM), VTSM_E_PEER_STATE, cases[k].rule,
                      cases[k].needle);
        assert_int_equal(f.tdi[1].state, TSM_TDI_ERROR);
        assert_false(f.tdi[1].mmio_enabled || f.tdi[1].dma_enabled);
        assert_false(f.tdi[1].nonce_valid);
        assert_true(all_zero(f.tdi[1].lock_nonce, sizeof(f.tdi[1].lock_nonce)));
        assert_int_equal(f.sd.calls[VTSM_TDISP_START_INTERFACE_REQ], 0);
        /* ERROR: only unbind helps; the owner may still read info and reject */
        EXPECT(accept_as_verified(&f.chan, &f.tdi[1], TVM), VTSM_E_STATE, VTSM_RULE_TDI_4);
        EXPECT(tsm_tdi_reject(&f.tdi[1], TVM, "device in error"), VTSM_OK, VTSM_RULE_NONE);
        vtsm_status sst = VTSM_E_INTERNAL;
        EXPECT(tsm_tdi_unbind(&f.chan, &f.tdi[1], &sst, NULL, 0), VTSM_OK, VTSM_RULE_NONE);
        assert_int_equal(sst, VTSM_OK);
        assert_unbound(&f.tdi[1]);
        assert_false(f.tdi[1].rejected);
        fix_close(&f);
    }
}

static void test_accept_bad_nonce(void **state)
{
    struct fix f;
    struct opts o = {.sfaults = SF_BAD_NONCE};
    uint8_t nonce[32];
    (void)state;
    fix_open(&f, &o);
    bind_ok(&f, 2);
    memcpy(nonce, f.tdi[2].lock_nonce, 32);
    EXPECT_DETAIL(accept_as_verified(&f.chan, &f.tdi[2], TVM), VTSM_E_PEER_ERROR, VTSM_RULE_NONE,
                  "TDISP_ERROR INVALID_NONCE");
    assert_non_null(strstr(vtsm_err_detail(), "TDI moved to ERROR"));
    /* START carried the LOCK nonce */
    assert_memory_equal(f.sd.last_start_nonce, nonce, 32);
    assert_int_equal(f.tdi[2].state, TSM_TDI_ERROR);
    assert_false(f.tdi[2].mmio_enabled || f.tdi[2].dma_enabled);
    assert_false(f.tdi[2].nonce_valid);
    fix_close(&f);
}

static void test_unbind_device_refuses_stop(void **state)
{
    struct fix f;
    struct opts o = {0};
    char detail[256] = "x";
    vtsm_status sst = VTSM_OK;
    (void)state;
    fix_open(&f, &o);
    EXPECT(tsm_tdi_unbind(&f.chan, &f.tdi[0], &sst, detail, sizeof(detail)), VTSM_E_STATE,
           VTSM_RULE_TDI_2);
    bind_ok(&f, 0);
    EXPECT(accept_as_verified(&f.chan, &f.tdi[0], TVM), VTSM_OK, VTSM_RULE_NONE);
    f.sd.faults |= SF_STOP_FAIL;
    EXPECT(tsm_tdi_unbind(&f.chan, &f.tdi[0], &sst, detail, sizeof(detail)), VTSM_OK,
           VTSM_RULE_NONE);
    assert_int_equal(sst, VTSM_E_PEER_ERROR);
    assert_non_null(strstr(detail, "UNSPECIFIED"));
    assert_unbound(&f.tdi[0]);
    /* without a session the TSM still unbinds */
    f.sd.faults &= ~SF_STOP_FAIL;
    f.sd.state[1] = VTSM_TDI_CONFIG_UNLOCKED;
    bind_ok(&f, 1);
    EXPECT(tsm_tdi_unbind(NULL, &f.tdi[1], &sst, detail, sizeof(detail)), VTSM_OK, VTSM_RULE_NONE);
    assert_int_equal(sst, VTSM_E_CLOSED);
    assert_unbound(&f.tdi[1]);
    fix_close(&f);
}

/* INFO as the verb builds it: the TDI's view, then the reply map and token. */
static vtsm_status info_of(const struct tsm_tdisp_chan *c, const struct tsm_tdi *t,
                           const struct tsm_tdi_info_args *a, cbor_item_t **m)
{
    struct tsm_tdi_info i;
    vtsm_status st = tsm_tdi_info(c, t, a, &i);
    if (st == VTSM_OK) {
        assert_ptr_equal(i.t, t);
        assert_true(a->nonce ? i.meas == &i.fresh : i.meas == &t->meas);
        assert_int_equal(i.digest_len, t->digest_len);
        st = tsm_reply_tdi_info(&i, a, m);
    }
    tsm_tdi_info_free(&i);
    return st;
}

static void test_info_and_reject_refusals(void **state)
{
    struct fix f;
    struct tsm_tdi_info_args a = {.guest_tvm = TVM};
    struct tsm_tdi_info m;
    (void)state;
    fix_open(&f, &scripted);
    a.tvm_identity = f.identity;
    memset(&m, 0x5a, sizeof(m));
    EXPECT(tsm_tdi_info(&f.chan, &f.tdi[0], &a, &m), VTSM_E_NOT_OWNER, VTSM_RULE_TDI_6);
    assert_null(m.t); /* cleared: nothing to free, nothing to show */
    assert_null(m.rep);
    tsm_tdi_info_free(&m);
    EXPECT(tsm_tdi_reject(&f.tdi[0], TVM, NULL), VTSM_E_NOT_OWNER, VTSM_RULE_TDI_5);
    bind_ok(&f, 0);
    a.guest_tvm = OTHER_TVM;
    EXPECT(tsm_tdi_info(&f.chan, &f.tdi[0], &a, &m), VTSM_E_NOT_OWNER, VTSM_RULE_TDI_6);
    tsm_tdi_info_free(&m);
    EXPECT(tsm_tdi_reject(&f.tdi[0], OTHER_TVM, "mine now"), VTSM_E_NOT_OWNER, VTSM_RULE_TDI_5);
    assert_false(f.tdi[0].rejected);
    char big[TSM_TDI_REASON_MAX + 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    EXPECT_DETAIL(tsm_tdi_reject(&f.tdi[0], TVM, big), VTSM_E_ABI_ARG, VTSM_RULE_ABI_8, "reason");
    /* a nonce without the TSM key is a caller bug */
    uint8_t nonce[32] = {1};
    a.guest_tvm = TVM;
    a.nonce = nonce;
    EXPECT_DETAIL(tsm_tdi_info(&f.chan, &f.tdi[0], &a, &m), VTSM_E_INVAL, VTSM_RULE_NONE,
                  "TSM identity key");
    tsm_tdi_info_free(&m);
    fix_close(&f);
}

/* ================================================================ scripted: success */

static void test_report_chunks_fit_dts(void **state)
{
    struct fix f;
    struct opts o = {.dts = 256};
    struct vtsm_buf rep = {0};
    (void)state;
    fix_open(&f, &o);
    sdev_make_report(&f.sd, 8, 600);
    f.sd.state[2] = VTSM_TDI_CONFIG_LOCKED;
    EXPECT(tsm_tdisp_get_report(&f.chan, 2, &rep), VTSM_OK, VTSM_RULE_NONE);
    assert_int_equal(rep.len, f.sd.report.len);
    assert_memory_equal(rep.data, f.sd.report.data, rep.len);
    /* 256 - 32 bytes of VENDOR_DEFINED_RESPONSE and TDISP framing per portion */
    assert_int_equal(f.sd.max_len_asked, 224);
    assert_int_equal(f.sd.calls[VTSM_TDISP_GET_DEVICE_INTERFACE_REPORT],
                     (f.sd.report.len + 223) / 224);
    /* a device cutting portions shorter than asked is followed */
    f.sd.max_portion = 50;
    EXPECT(tsm_tdisp_get_report(&f.chan, 2, &rep), VTSM_OK, VTSM_RULE_NONE);
    assert_memory_equal(rep.data, f.sd.report.data, rep.len);
    vtsm_buf_free(&rep);
    fix_close(&f);
}

static void test_probe_ok(void **state)
{
    struct fix f;
    struct vtsm_tdisp_caps caps;
    (void)state;
    fix_open(&f, &scripted);
    EXPECT(tsm_tdisp_probe(&f.chan, &caps), VTSM_OK, VTSM_RULE_NONE);
    assert_int_equal(caps.lock_interface_flags_supported, 0x7);
    assert_int_equal(caps.dev_addr_width, 52);
    assert_int_equal(f.sd.calls[VTSM_TDISP_GET_VERSION], 1);
    fix_close(&f);
}

/* INFO's map: docs/abi.md section 9, and the token checked with the TSM key. */
static void check_info(struct fix *f, const struct tsm_tdi *t, cbor_item_t *m, const uint8_t *nonce)
{
    const uint8_t *p;
    size_t n;
    uint64_t u;
    bool b;
    char s[80];
    const cbor_item_t *mm, *arr;
    const struct vtsm_spdm_info *info = vtsm_spdm_req_info(f->r);
    size_t hl = vtsm_hash_size(info->hash);
    uint8_t d[VTSM_HASH_MAX];

    assert_int_equal(vtsm_abi_get_tstr(m, "dev", s, sizeof(s)), VTSM_OK);
    assert_string_equal(s, DEV_NAME);
    assert_int_equal(vtsm_abi_get_uint(m, "tdi", &u), VTSM_OK);
    assert_int_equal(u, t->index);
    assert_int_equal(vtsm_abi_get_tstr(m, "state", s, sizeof(s)), VTSM_OK);
    assert_string_equal(s, tsm_tdi_state_name(t->state));
    assert_int_equal(vtsm_abi_get_bytes(m, "report", &p, &n), VTSM_OK);
    assert_int_equal(n, t->report.len);
    assert_int_equal(vtsm_hash(info->hash, p, n, d), VTSM_OK);
    assert_int_equal(vtsm_abi_get_bytes(m, "report_digest", &p, &n), VTSM_OK);
    assert_int_equal(n, hl);
    assert_memory_equal(p, d, hl);
    assert_int_equal(vtsm_abi_get_uint(m, "interface_info", &u), VTSM_OK);
    assert_int_equal(vtsm_abi_get_array(m, "mmio", &arr), VTSM_OK);
    assert_true(cbor_array_size(arr) >= 1);
    const cbor_item_t *r0 = cbor_array_get(arr, 0);
    assert_int_equal(vtsm_abi_get_uint(r0, "first_page", &u), VTSM_OK);
    /* a 4 KiB page number inside the emulated device's MMIO window */
    assert_true(u >= (0x80000000ull >> VTSM_TDISP_PAGE_SHIFT) &&
                u < (0x90000000ull >> VTSM_TDISP_PAGE_SHIFT));
    assert_int_equal(vtsm_abi_get_uint(r0, "pages", &u), VTSM_OK);
    assert_int_equal(vtsm_abi_get_uint(r0, "attributes", &u), VTSM_OK);
    assert_int_equal(vtsm_abi_get_uint(r0, "range_id", &u), VTSM_OK);
    cbor_item_t *r0_owned = (cbor_item_t *)r0;
    cbor_decref(&r0_owned); /* cbor_array_get returned a new reference */
    assert_int_equal(vtsm_abi_get_map(m, "measurements", &mm), VTSM_OK);
    assert_int_equal(vtsm_abi_get_bool(mm, "after_lock", &b), VTSM_OK);
    assert_true(b);
    assert_int_equal(vtsm_abi_get_array(mm, "blocks", &arr), VTSM_OK);
    assert_true(cbor_array_size(arr) >= 1);
    /* the one measurements shape: count and responder_nonce here too */
    assert_int_equal(vtsm_abi_get_uint(mm, "count", &u), VTSM_OK);
    assert_int_equal(u, cbor_array_size(arr));
    assert_int_equal(vtsm_abi_get_bytes(mm, "responder_nonce", &p, &n), VTSM_OK);
    assert_int_equal(n, 32);
    const uint8_t *rec, *tr, *mn;
    size_t rec_len, tr_len, mn_len;
    assert_int_equal(vtsm_abi_get_bytes(mm, "record", &rec, &rec_len), VTSM_OK);
    assert_int_equal(vtsm_abi_get_bytes(mm, "transcript", &tr, &tr_len), VTSM_OK);
    assert_int_equal(vtsm_abi_get_bytes(mm, "signature", &p, &n), VTSM_OK);
    assert_int_equal(n, 64);
    assert_int_equal(vtsm_abi_get_bytes(mm, "nonce", &mn, &mn_len), VTSM_OK);
    const struct vtsm_buf *chain = vtsm_spdm_req_chain_raw(f->r, 0);
    assert_int_equal(vtsm_abi_get_bytes(m, "cert_chain", &p, &n), VTSM_OK);
    assert_int_equal(n, chain->len);
    assert_memory_equal(p, chain->data, n);
    uint8_t cd[VTSM_HASH_MAX];
    assert_int_equal(vtsm_hash(info->hash, chain->data, chain->len, cd), VTSM_OK);
    assert_int_equal(vtsm_abi_get_bytes(m, "cert_chain_digest", &p, &n), VTSM_OK);
    assert_memory_equal(p, cd, hl);

    const cbor_item_t *tok = vtsm_abi_find(m, "token");
    if (!nonce) {
        assert_null(tok);
        assert_int_equal(rec_len, t->meas.record.len);
        assert_memory_equal(rec, t->meas.record.data, rec_len);
        return;
    }
    /* fresh measurements, with the guest's nonce as the SPDM nonce */
    assert_int_equal(mn_len, 32);
    assert_memory_equal(mn, nonce, 32);
    assert_non_null(tok);
    assert_int_equal(vtsm_abi_get_bytes(m, "token", &p, &n), VTSM_OK);
    cbor_item_t *claims = NULL;
    EXPECT(vtsm_cose_verify1(f->tsm_key, p, n, &claims), VTSM_OK, VTSM_RULE_NONE);
    assert_int_equal(vtsm_abi_get_bytes(claims, "nonce", &p, &n), VTSM_OK);
    assert_memory_equal(p, nonce, 32);
    assert_int_equal(vtsm_abi_get_uint(claims, "tvm", &u), VTSM_OK);
    assert_int_equal(u, TVM);
    assert_int_equal(vtsm_abi_get_bytes(claims, "tvm_identity", &p, &n), VTSM_OK);
    assert_memory_equal(p, f->identity, 32);
    assert_int_equal(vtsm_abi_get_tstr(claims, "dev", s, sizeof(s)), VTSM_OK);
    assert_string_equal(s, DEV_NAME);
    assert_int_equal(vtsm_abi_get_uint(claims, "tdi", &u), VTSM_OK);
    assert_int_equal(u, t->index);
    assert_int_equal(vtsm_abi_get_tstr(claims, "state", s, sizeof(s)), VTSM_OK);
    assert_string_equal(s, tsm_tdi_state_name(t->state));
    assert_int_equal(vtsm_abi_get_bytes(claims, "report_digest", &p, &n), VTSM_OK);
    assert_memory_equal(p, t->report_digest, hl);
    assert_int_equal(vtsm_abi_get_bytes(claims, "cert_chain_digest", &p, &n), VTSM_OK);
    assert_memory_equal(p, cd, hl);
    assert_int_equal(vtsm_hash(info->hash, rec, rec_len, d), VTSM_OK);
    assert_int_equal(vtsm_abi_get_bytes(claims, "measurements_digest", &p, &n), VTSM_OK);
    assert_memory_equal(p, d, hl);
    assert_int_equal(vtsm_hash(info->hash, tr, tr_len, d), VTSM_OK);
    assert_int_equal(vtsm_abi_get_bytes(claims, "measurement_transcript_digest", &p, &n), VTSM_OK);
    assert_memory_equal(p, d, hl);
    assert_int_equal(vtsm_abi_get_bool(claims, "after_lock", &b), VTSM_OK);
    assert_true(b);
    cbor_decref(&claims);
}

/* bind -> info -> info(nonce) -> reject -> accept -> RUN -> unbind */
static void run_full_flow(struct fix *f, unsigned i)
{
    struct tsm_tdi *t = &f->tdi[i];
    struct tsm_tdi_info_args a = {.guest_tvm = TVM};
    cbor_item_t *m = NULL;
    uint8_t nonce[32], d[VTSM_HASH_MAX];
    const struct vtsm_spdm_info *info = vtsm_spdm_req_info(f->r);

    a.tvm_identity = f->identity;
    a.tsm_key = f->tsm_key;
    a.kid = f->kid;
    a.kid_len = sizeof(f->kid);

    cbor_item_t *res = vtsm_abi_map_new();
    EXPECT_DETAIL(tsm_reply_tdi_binding(res, t), VTSM_E_STATE, VTSM_RULE_NONE, "not bound");
    bind_ok(f, i);
    EXPECT(tsm_reply_tdi_binding(res, t), VTSM_OK, VTSM_RULE_NONE);
    {
        char s[64];
        uint64_t u;
        const cbor_item_t *arr;
        assert_int_equal(vtsm_abi_get_tstr(res, "state", s, sizeof(s)), VTSM_OK);
        assert_string_equal(s, "CONFIG_LOCKED");
        assert_int_equal(vtsm_abi_get_uint(res, "tvm", &u), VTSM_OK);
        assert_int_equal(u, TVM);
        assert_int_equal(vtsm_abi_get_uint(res, "tdi", &u), VTSM_OK);
        assert_int_equal(u, i);
        assert_int_equal(vtsm_abi_get_array(res, "mmio", &arr), VTSM_OK);
        assert_true(cbor_array_size(arr) >= 1);
        assert_non_null(vtsm_abi_find(res, "report_digest"));
    }
    cbor_decref(&res);
    assert_int_equal(t->digest_len, vtsm_hash_size(info->hash));
    assert_int_equal(vtsm_hash(info->hash, t->report.data, t->report.len, d), VTSM_OK);
    assert_memory_equal(t->report_digest, d, t->digest_len);
    assert_true(t->have_meas && t->meas.num_blocks > 0);
    assert_false(t->mmio_enabled || t->dma_enabled);

    EXPECT(info_of(&f->chan, t, &a, &m), VTSM_OK, VTSM_RULE_NONE);
    check_info(f, t, m, NULL);
    cbor_decref(&m);

    for (unsigned k = 0; k < sizeof(nonce); k++)
        nonce[k] = (uint8_t)(0xA0 ^ k);
    a.nonce = nonce;
    EXPECT(info_of(&f->chan, t, &a, &m), VTSM_OK, VTSM_RULE_NONE);
    check_info(f, t, m, nonce);
    cbor_decref(&m);
    assert_true(t->nonce_valid); /* INFO changes nothing */

    EXPECT(tsm_tdi_reject(t, TVM, "first look: not yet"), VTSM_OK, VTSM_RULE_NONE);
    assert_true(t->rejected);
    assert_int_equal(t->state, TSM_TDI_CONFIG_LOCKED);

    EXPECT(accept_as_verified(&f->chan, t, TVM), VTSM_OK, VTSM_RULE_NONE);
    assert_int_equal(t->state, TSM_TDI_RUN);
    assert_true(t->mmio_enabled && t->dma_enabled);
    assert_false(t->nonce_valid);
    assert_true(all_zero(t->lock_nonce, sizeof(t->lock_nonce)));

    cbor_item_t *sum = NULL;
    char s[64];
    uint64_t u;
    EXPECT(tsm_reply_tdi_summary(t, true, &sum), VTSM_OK, VTSM_RULE_NONE);
    assert_int_equal(vtsm_abi_get_tstr(sum, "state", s, sizeof(s)), VTSM_OK);
    assert_string_equal(s, "RUN");
    assert_int_equal(vtsm_abi_get_uint(sum, "tvm", &u), VTSM_OK);
    assert_int_equal(u, TVM);
    assert_int_equal(vtsm_abi_get_tstr(sum, "guest_rejected", s, sizeof(s)), VTSM_OK);
    assert_string_equal(s, "first look: not yet");
    assert_null(vtsm_abi_find(sum, "dev"));
    cbor_decref(&sum);
    EXPECT(tsm_reply_tdi_summary(t, false, &sum), VTSM_OK, VTSM_RULE_NONE);
    assert_null(vtsm_abi_find(sum, "tvm"));
    assert_null(vtsm_abi_find(sum, "guest_rejected"));
    assert_int_equal(vtsm_abi_get_tstr(sum, "dev", s, sizeof(s)), VTSM_OK);
    cbor_decref(&sum);

    vtsm_status sst = VTSM_E_INTERNAL;
    EXPECT(tsm_tdi_unbind(&f->chan, t, &sst, NULL, 0), VTSM_OK, VTSM_RULE_NONE);
    assert_int_equal(sst, VTSM_OK);
    assert_unbound(t);
    assert_false(t->rejected);
}

static void test_full_flow_scripted(void **state)
{
    struct fix f;
    (void)state;
    fix_open(&f, &scripted);
    EXPECT(tsm_tdisp_probe(&f.chan, NULL), VTSM_OK, VTSM_RULE_NONE);
    run_full_flow(&f, 0);
    assert_int_equal(f.sd.state[0], VTSM_TDI_CONFIG_UNLOCKED);
    /* the TDI can be bound again, to another TVM */
    EXPECT(tsm_tdi_bind(&f.chan, &f.tdi[0], OTHER_TVM, 0, 0), VTSM_OK, VTSM_RULE_NONE);
    assert_int_equal(f.tdi[0].owner_tvm, OTHER_TVM);
    fix_close(&f);
}

/* ================================================================ loopback (devemu) */

static const struct opts loop = {.loopback = true};

static void test_loop_probe_ide_only_device(void **state)
{
    struct fix f;
    struct opts o = {.loopback = true, .no_tdisp = true};
    (void)state;
    fix_open(&f, &o);
    EXPECT_DETAIL(tsm_tdisp_probe(&f.chan, NULL), VTSM_E_PEER_CAPS, VTSM_RULE_NONE,
                  "device is not TEE-IO capable (no TDISP responder); connect with ide_only");
    /* the session survives: the device answered, it did not fail */
    assert_true(vtsm_spdm_req_info(f.r)->session_active);
    fix_close(&f);
}

static void test_loop_bad_reports(void **state)
{
    static const struct {
        enum vtsm_dev_fault fault;
        vtsm_status st;
        const char *needle;
    } cases[] = {
        {VTSM_DEV_FAULT_TDISP_OVERLAP_MMIO, VTSM_E_PEER_MALFORMED, "overlaps range"},
        {VTSM_DEV_FAULT_TDISP_MMIO_OVERFLOW, VTSM_E_PEER_MALFORMED, "runs past the top"},
        {VTSM_DEV_FAULT_TDISP_REPORT_LENGTH, VTSM_E_PEER_MALFORMED,
         "report length changed between chunks"},
    };
    (void)state;
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct fix f;
        struct opts o = {.loopback = true, .dev_faults = VTSM_DEV_FAULT_BIT(cases[k].fault)};
        uint8_t st = 0xEE;
        fix_open(&f, &o);
        EXPECT_DETAIL(tsm_tdi_bind(&f.chan, &f.tdi[1], TVM, 0, 0), cases[k].st, VTSM_RULE_NONE,
                      cases[k].needle);
        assert_non_null(strstr(vtsm_err_detail(), "STOP_INTERFACE_REQ answered"));
        assert_unbound(&f.tdi[1]);
        /* STOP really unlocked the device */
        EXPECT(tsm_tdisp_get_state(&f.chan, 1, &st), VTSM_OK, VTSM_RULE_NONE);
        assert_int_equal(st, VTSM_TDI_CONFIG_UNLOCKED);
        fix_close(&f);
    }
}

static void test_loop_accept_faults(void **state)
{
    static const struct {
        enum vtsm_dev_fault fault;
        vtsm_status st;
        enum vtsm_rule rule;
        const char *needle; /* a peer's fault no TSM rule names: the TDISP ErrorCode */
    } cases[] = {
        {VTSM_DEV_FAULT_TDISP_STATE_DRIFT, VTSM_E_PEER_STATE, VTSM_RULE_TDI_8, NULL},
        {VTSM_DEV_FAULT_TDISP_ERROR_STATE, VTSM_E_PEER_STATE, VTSM_RULE_TDI_7, NULL},
        {VTSM_DEV_FAULT_TDISP_BAD_NONCE, VTSM_E_PEER_ERROR, VTSM_RULE_NONE, "INVALID_NONCE"},
    };
    (void)state;
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct fix f;
        struct opts o = {.loopback = true, .dev_faults = VTSM_DEV_FAULT_BIT(cases[k].fault)};
        vtsm_status sst = VTSM_E_INTERNAL;
        fix_open(&f, &o);
        bind_ok(&f, 2);
        EXPECT_DETAIL(accept_as_verified(&f.chan, &f.tdi[2], TVM), cases[k].st, cases[k].rule,
                      cases[k].needle);
        assert_non_null(strstr(vtsm_err_detail(), "ERROR"));
        assert_int_equal(f.tdi[2].state, TSM_TDI_ERROR);
        assert_false(f.tdi[2].mmio_enabled || f.tdi[2].dma_enabled);
        assert_false(f.tdi[2].nonce_valid);
        EXPECT(tsm_tdi_unbind(&f.chan, &f.tdi[2], &sst, NULL, 0), VTSM_OK, VTSM_RULE_NONE);
        assert_int_equal(sst, VTSM_OK);
        assert_unbound(&f.tdi[2]);
        fix_close(&f);
    }
}

static void test_loop_full_flow(void **state)
{
    struct fix f;
    struct vtsm_tdisp_caps caps;
    uint8_t st = 0xEE;
    (void)state;
    fix_open(&f, &loop);
    EXPECT(tsm_tdisp_probe(&f.chan, &caps), VTSM_OK, VTSM_RULE_NONE);
    run_full_flow(&f, 0);
    run_full_flow(&f, 3);
    EXPECT(tsm_tdisp_get_state(&f.chan, 3, &st), VTSM_OK, VTSM_RULE_NONE);
    assert_int_equal(st, VTSM_TDI_CONFIG_UNLOCKED);
    /* two TDIs of one device bound to two TVMs at once */
    bind_ok(&f, 1);
    EXPECT(tsm_tdi_bind(&f.chan, &f.tdi[2], OTHER_TVM, 0, 0), VTSM_OK, VTSM_RULE_NONE);
    EXPECT(accept_as_verified(&f.chan, &f.tdi[2], TVM), VTSM_E_NOT_OWNER, VTSM_RULE_TDI_5);
    EXPECT(accept_as_verified(&f.chan, &f.tdi[2], OTHER_TVM), VTSM_OK, VTSM_RULE_NONE);
    EXPECT(tsm_tdisp_get_state(&f.chan, 2, &st), VTSM_OK, VTSM_RULE_NONE);
    assert_int_equal(st, VTSM_TDI_RUN);
    EXPECT(tsm_tdisp_get_state(&f.chan, 1, &st), VTSM_OK, VTSM_RULE_NONE);
    assert_int_equal(st, VTSM_TDI_CONFIG_LOCKED);
    fix_close(&f);
}

/* A lost STOP (the host vanished mid-bind) left the device's TDI locked while the TSM holds
 * it unbound: the next bind stops it first and then binds normally. */
static void test_loop_bind_resyncs_stale_lock(void **state)
{
    struct fix f;
    struct vtsm_tdisp_caps caps;
    uint8_t nonce[VTSM_TDISP_NONCE_SIZE], st = 0xEE;
    (void)state;
    fix_open(&f, &loop);
    EXPECT(tsm_tdisp_probe(&f.chan, &caps), VTSM_OK, VTSM_RULE_NONE);
    EXPECT(tsm_tdisp_lock(&f.chan, 1, 0, 0, nonce), VTSM_OK, VTSM_RULE_NONE);
    EXPECT(tsm_tdisp_get_state(&f.chan, 1, &st), VTSM_OK, VTSM_RULE_NONE);
    assert_int_equal(st, VTSM_TDI_CONFIG_LOCKED);
    assert_int_equal(f.tdi[1].state, TSM_TDI_CONFIG_UNLOCKED);
    bind_ok(&f, 1);
    EXPECT(accept_as_verified(&f.chan, &f.tdi[1], TVM), VTSM_OK, VTSM_RULE_NONE);
    EXPECT(tsm_tdisp_get_state(&f.chan, 1, &st), VTSM_OK, VTSM_RULE_NONE);
    assert_int_equal(st, VTSM_TDI_RUN);
    fix_close(&f);
}

/* ================================================================ recovery (tdi_reset) */

/* What a refused recovery must leave exactly as it was. */
struct snap {
    enum tsm_tdi_state state;
    uint32_t owner;
    uint8_t report_digest[VTSM_HASH_MAX], meas_digest[VTSM_HASH_MAX];
    size_t report_len;
};

static void snap_take(const struct tsm_tdi *t, struct snap *s)
{
    s->state = t->state;
    s->owner = t->owner_tvm;
    memcpy(s->report_digest, t->report_digest, sizeof(s->report_digest));
    memcpy(s->meas_digest, t->meas_digest, sizeof(s->meas_digest));
    s->report_len = t->report.len;
}

static void snap_same(const struct tsm_tdi *t, const struct snap *s)
{
    assert_int_equal(t->state, s->state);
    assert_int_equal(t->owner_tvm, s->owner);
    assert_memory_equal(t->report_digest, s->report_digest, sizeof(s->report_digest));
    assert_memory_equal(t->meas_digest, s->meas_digest, sizeof(s->meas_digest));
    assert_int_equal(t->report.len, s->report_len);
    assert_false(t->mmio_enabled || t->dma_enabled || t->nonce_valid);
}

static void test_recover_refusals(void **state)
{
    struct fix f;
    struct snap sn;
    struct tsm_tdi_recovery rec;
    (void)state;
    fix_open(&f, &(struct opts){.sfaults = SF_FLR_STUCK});
    /* not in ERROR (never bound, CONFIG_LOCKED): refused before any exchange */
    unsigned before = f.sd.calls[VTSM_TDISP_VDM_REQ];
    EXPECT(tsm_tdi_recover(&f.chan, &f.tdi[1], NULL, &rec), VTSM_E_STATE, VTSM_RULE_TDI_10);
    bind_ok(&f, 1);
    EXPECT(tsm_tdi_recover(&f.chan, &f.tdi[1], NULL, &rec), VTSM_E_STATE, VTSM_RULE_TDI_10);
    assert_int_equal(f.sd.calls[VTSM_TDISP_VDM_REQ], before);
    assert_int_equal(f.tdi[1].state, TSM_TDI_CONFIG_LOCKED);
    /* the device reports ERROR at accept: the TSM's TDI goes to ERROR */
    f.sd.state[1] = VTSM_TDI_ERROR;
    EXPECT(accept_as_verified(&f.chan, &f.tdi[1], TVM), VTSM_E_PEER_STATE, VTSM_RULE_TDI_7);
    snap_take(&f.tdi[1], &sn);
    /* a device whose FLR does not unlock the TDI: TDI.8, nothing changes */
    EXPECT(tsm_tdi_recover(&f.chan, &f.tdi[1], NULL, &rec), VTSM_E_PEER_STATE, VTSM_RULE_TDI_8);
    snap_same(&f.tdi[1], &sn);
    assert_false(rec.have_digests);
    assert_string_equal(f.tdi[1].last_event, "recovery_refused");
    assert_int_equal(f.tdi[1].last_rule, VTSM_RULE_TDI_8);
    assert_int_equal(f.tdi[1].recoveries, 0);
    /* a garbled FLR answer: the peer's fault, nothing changes */
    f.sd.faults = SF_WRONG_CODE;
    f.sd.garble_on = VTSM_TDISP_VDM_REQ;
    EXPECT(tsm_tdi_recover(&f.chan, &f.tdi[1], NULL, &rec), VTSM_E_PEER_UNEXPECTED, VTSM_RULE_NONE);
    snap_same(&f.tdi[1], &sn);
    /* the LOCK is refused after the FLR: nothing changes either */
    f.sd.faults = SF_LOCK_ERROR;
    f.sd.garble_on = 0;
    EXPECT(tsm_tdi_recover(&f.chan, &f.tdi[1], NULL, &rec), VTSM_E_PEER_ERROR, VTSM_RULE_NONE);
    snap_same(&f.tdi[1], &sn);
    /* then a sound device: recovered, same owner, new nonce */
    f.sd.faults = 0;
    EXPECT(tsm_tdi_recover(&f.chan, &f.tdi[1], NULL, &rec), VTSM_OK, VTSM_RULE_NONE);
    assert_int_equal(f.tdi[1].state, TSM_TDI_CONFIG_LOCKED);
    assert_int_equal(f.tdi[1].owner_tvm, TVM);
    assert_true(f.tdi[1].nonce_valid && rec.same_as_bound && !rec.reference_match);
    assert_int_equal(f.tdi[1].recoveries, 1);
    assert_string_equal(f.tdi[1].last_event, "recovered");
    EXPECT(accept_as_verified(&f.chan, &f.tdi[1], TVM), VTSM_OK, VTSM_RULE_NONE);
    fix_close(&f);
}

/* devemu's own responder: a firmware update after LOCK, recovery refused (TDI.11) and
 * accepted with the host's reference values. */
static void test_loop_recover_firmware_update(void **state)
{
    struct fix f;
    struct snap sn;
    struct tsm_tdi_recovery rec, rec2;
    struct vtsm_tdisp_caps caps;
    uint8_t st = 0xEE;
    unsigned errored = 0;
    (void)state;
    fix_open(&f, &loop);
    EXPECT(tsm_tdisp_probe(&f.chan, &caps), VTSM_OK, VTSM_RULE_NONE);
    EXPECT(tsm_tdi_bind(&f.chan, &f.tdi[3], TVM, 0, 0), VTSM_OK, VTSM_RULE_NONE);
    assert_int_equal(vtsm_dev_firmware_update(f.dev, &errored), VTSM_OK);
    assert_int_equal(errored, 1);
    EXPECT(accept_as_verified(&f.chan, &f.tdi[3], TVM), VTSM_E_PEER_STATE, VTSM_RULE_TDI_7);
    snap_take(&f.tdi[3], &sn);
    /* other measurements: stays ERROR, the device's TDI stopped, digests reported */
    EXPECT(tsm_tdi_recover(&f.chan, &f.tdi[3], NULL, &rec), VTSM_E_PEER_STATE, VTSM_RULE_TDI_11);
    snap_same(&f.tdi[3], &sn);
    assert_true(rec.have_digests && !rec.same_as_bound && !rec.reference_match);
    assert_memory_equal(rec.report_digest, f.tdi[3].report_digest, rec.digest_len);
    assert_memory_not_equal(rec.meas_digest, f.tdi[3].meas_digest, rec.digest_len);
    EXPECT(tsm_tdisp_get_state(&f.chan, 3, &st), VTSM_OK, VTSM_RULE_NONE);
    assert_int_equal(st, VTSM_TDI_CONFIG_UNLOCKED);
    /* reference values of another length or content: refused the same way */
    struct tsm_tdi_ref ref = {rec.report_digest, rec.digest_len, rec.meas_digest,
                              rec.digest_len - 1};
    EXPECT(tsm_tdi_recover(&f.chan, &f.tdi[3], &ref, &rec2), VTSM_E_PEER_STATE, VTSM_RULE_TDI_11);
    snap_same(&f.tdi[3], &sn);
    /* the right ones: recovered, the new evidence bound */
    ref.meas_digest_len = rec.digest_len;
    EXPECT(tsm_tdi_recover(&f.chan, &f.tdi[3], &ref, &rec2), VTSM_OK, VTSM_RULE_NONE);
    assert_true(rec2.reference_match && !rec2.same_as_bound);
    assert_int_equal(f.tdi[3].state, TSM_TDI_CONFIG_LOCKED);
    assert_memory_equal(f.tdi[3].meas_digest, rec.meas_digest, rec.digest_len);
    assert_string_equal(f.tdi[3].last_event, "recovered_reference");
    EXPECT(accept_as_verified(&f.chan, &f.tdi[3], TVM), VTSM_OK, VTSM_RULE_NONE);
    EXPECT(tsm_tdisp_get_state(&f.chan, 3, &st), VTSM_OK, VTSM_RULE_NONE);
    assert_int_equal(st, VTSM_TDI_RUN);
    fix_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* scripted: failures */
        cmocka_unit_test(test_probe_not_tee_io),
        cmocka_unit_test(test_probe_no_tdisp_10),
        cmocka_unit_test(test_response_checks),
        cmocka_unit_test(test_bind_refusals_before_any_exchange),
        cmocka_unit_test(test_lock_refused),
        cmocka_unit_test(test_lock_answer_lost),
        cmocka_unit_test(test_bad_reports),
        cmocka_unit_test(test_accept_refusals_before_any_exchange),
        cmocka_unit_test(test_accept_device_state),
        cmocka_unit_test(test_accept_binding_refused),
        cmocka_unit_test(test_accept_report_changed),
        cmocka_unit_test(test_accept_bad_nonce),
        cmocka_unit_test(test_unbind_device_refuses_stop),
        cmocka_unit_test(test_info_and_reject_refusals),
        /* scripted: success */
        cmocka_unit_test(test_report_chunks_fit_dts),
        cmocka_unit_test(test_probe_ok),
        cmocka_unit_test(test_full_flow_scripted),
        /* loopback against devemu's TDISP responder */
        cmocka_unit_test(test_loop_probe_ide_only_device),
        cmocka_unit_test(test_loop_bad_reports),
        cmocka_unit_test(test_loop_accept_faults),
        cmocka_unit_test(test_loop_full_flow),
        cmocka_unit_test(test_loop_bind_resyncs_stale_lock),
        cmocka_unit_test(test_recover_refusals),
        cmocka_unit_test(test_loop_recover_firmware_update),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
