/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tsm/spdm against devemu in-process: the requester and the independently written
 * responder (vtsm_dev_handle) joined by a loopback transport that can also play the host
 * adversary (flip, replay or re-address secured messages). Failure cases first — device
 * faults and host attacks, each with its exact status — then full connects (VCA, digests,
 * certificate, measurements in the clear and in the session, vendor message, END_SESSION)
 * for SPDM 1.2 and 1.3 with P-384 and P-256.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vtsm_cert.h"
#include "vtsm_devemu.h"
#include "vtsm_doe.h"
#include "vtsm_spdm_req.h"

enum host_attack {
    HOST_NONE = 0,
    HOST_FLIP,    /* flip a ciphertext bit of the next secured response */
    HOST_REPLAY,  /* deliver the previous secured response instead of the next */
    HOST_SESSION, /* change the SessionID of the next secured response */
    HOST_DROP,    /* the host loses the next response (E_DOE_HOST) */
};

/* The host rewriting a chunk message in the clear (CHUNK_RESPONSE / CHUNK_SEND_ACK). */
enum chunk_attack {
    CHUNK_NONE = 0,
    CHUNK_RSP_HANDLE, /* the first CHUNK_RESPONSE names another Handle */
    CHUNK_RSP_SEQ,    /* the second CHUNK_RESPONSE's ChunkSeqNo skips one */
    CHUNK_RSP_LARGE,  /* the first CHUNK_RESPONSE's LargeMessageSize is 2^31 */
    CHUNK_RSP_SIZE,   /* the first CHUNK_RESPONSE's ChunkSize exceeds LargeMessageSize */
    CHUNK_ACK_HANDLE, /* the first CHUNK_SEND_ACK names another Handle */
    CHUNK_ACK_SEQ,    /* the first CHUNK_SEND_ACK names ChunkSeqNo 1 */
};

struct loop {
    struct vtsm_dev *dev;
    struct vtsm_spdm_req *r;
    enum chunk_attack chunk; /* applied once */
    unsigned chunk_rsps;     /* CHUNK_RESPONSEs seen */
    enum host_attack attack; /* applied once, to the next secured response */
    struct vtsm_buf prev;    /* previous secured response, for HOST_REPLAY */
    unsigned exchanges;
};

static vtsm_status loop_exchange(void *ctx, const uint8_t *req, size_t len, struct vtsm_buf *rsp)
{
    struct loop *l = ctx;
    struct vtsm_doe_obj obj;
    vtsm_status st;

    l->exchanges++;
    st = vtsm_dev_handle(l->dev, req, len, rsp);
    if (st != VTSM_OK)
        return st;
    if (vtsm_doe_parse(rsp->data, rsp->len, &obj) != VTSM_OK)
        return VTSM_OK;
    if (obj.type == VTSM_DOE_TYPE_SPDM &&
        obj.payload_len >= 16 - (l->chunk >= CHUNK_ACK_HANDLE ? 8 : 0) && l->chunk != CHUNK_NONE) {
        uint8_t *m = rsp->data + VTSM_DOE_HEADER_SIZE;
        bool done = true;
        if (m[1] == SPDM_CHUNK_RESPONSE)
            l->chunk_rsps++;
        if (m[1] == SPDM_CHUNK_RESPONSE && l->chunk == CHUNK_RSP_HANDLE)
            m[3] ^= 0x01;
        else if (m[1] == SPDM_CHUNK_RESPONSE && l->chunk == CHUNK_RSP_SEQ && l->chunk_rsps == 2)
            m[4] = 2;
        else if (m[1] == SPDM_CHUNK_RESPONSE && l->chunk == CHUNK_RSP_LARGE)
            m[15] = 0x80;
        else if (m[1] == SPDM_CHUNK_RESPONSE && l->chunk == CHUNK_RSP_SIZE)
            m[10] = 0x01; /* ChunkSize += 64 KiB */
        else if (m[1] == SPDM_CHUNK_SEND_ACK && l->chunk == CHUNK_ACK_HANDLE)
            m[3] ^= 0x01;
        else if (m[1] == SPDM_CHUNK_SEND_ACK && l->chunk == CHUNK_ACK_SEQ)
            m[4] = 1;
        else
            done = false;
        if (done)
            l->chunk = CHUNK_NONE;
    }
    if (obj.type != VTSM_DOE_TYPE_SECURED_SPDM)
        return VTSM_OK;
    switch (l->attack) {
    case HOST_FLIP:
        rsp->data[VTSM_DOE_HEADER_SIZE + 6] ^= 0x80;
        break;
    case HOST_REPLAY:
        assert_true(l->prev.len > 0);
        assert_int_equal(vtsm_buf_set(rsp, l->prev.data, l->prev.len), VTSM_OK);
        break;
    case HOST_SESSION:
        rsp->data[VTSM_DOE_HEADER_SIZE] ^= 0x01; /* ReqSessionID half */
        break;
    case HOST_DROP:
        vtsm_buf_reset(rsp);
        l->attack = HOST_NONE;
        return vtsm_fail(VTSM_E_DOE_HOST, "host dropped the response");
    default:
        assert_int_equal(vtsm_buf_set(&l->prev, rsp->data, rsp->len), VTSM_OK);
        return VTSM_OK;
    }
    l->attack = HOST_NONE;
    return VTSM_OK;
}

struct variant {
    uint8_t version;
    enum vtsm_asym_alg asym;
};

static void loop_open_cfg(struct loop *l, const struct variant *v, uint32_t faults,
                          void (*tweak)(struct vtsm_dev_config *));

static void loop_open(struct loop *l, const struct variant *v, uint32_t faults)
{
    loop_open_cfg(l, v, faults, NULL);
}

static void loop_open_cfg(struct loop *l, const struct variant *v, uint32_t faults,
                          void (*tweak)(struct vtsm_dev_config *))
{
    struct vtsm_dev_config cfg;
    struct vtsm_spdm_req_opts o;
    struct vtsm_spdm_transport tp = {.exchange = loop_exchange, .ctx = l};

    memset(l, 0, sizeof(*l));
    vtsm_dev_config_default(&cfg);
    cfg.versions = v->version == 0x13 ? VTSM_DEV_VER_13 : VTSM_DEV_VER_12;
    cfg.asym = v->asym;
    cfg.hash = v->asym == VTSM_ASYM_ECDSA_P256 ? VTSM_HASH_SHA256 : VTSM_HASH_SHA384;
    cfg.dhe = v->asym == VTSM_ASYM_ECDSA_P256 ? VTSM_DHE_SECP256R1 : VTSM_DHE_SECP384R1;
    cfg.faults = faults;
    if (tweak)
        tweak(&cfg);
    assert_int_equal(vtsm_dev_new(&cfg, &l->dev), VTSM_OK);
    vtsm_spdm_req_opts_default(&o);
    o.not_ready_retries = 4;
    assert_int_equal(vtsm_spdm_req_new(&o, &tp, &l->r), VTSM_OK);
}

static void loop_close(struct loop *l)
{
    vtsm_spdm_req_free(l->r);
    vtsm_dev_free(l->dev);
    vtsm_buf_free(&l->prev);
    memset(l, 0, sizeof(*l));
}

static const struct variant v12_p384 = {0x12, VTSM_ASYM_ECDSA_P384};
static const struct variant v13_p384 = {0x13, VTSM_ASYM_ECDSA_P384};
static const struct variant v12_p256 = {0x12, VTSM_ASYM_ECDSA_P256};
static const struct variant v13_p256 = {0x13, VTSM_ASYM_ECDSA_P256};

/* VCA, digests and the slot 0 chain. */
static void connect_to_chain(struct loop *l)
{
    uint8_t mask = 0;
    assert_int_equal(vtsm_spdm_req_init_connection(l->r), VTSM_OK);
    assert_int_equal(vtsm_spdm_req_get_digests(l->r, &mask, NULL), VTSM_OK);
    assert_true(mask & 0x01);
    assert_int_equal(vtsm_spdm_req_get_certificate(l->r, 0), VTSM_OK);
}

static void connect_to_session(struct loop *l)
{
    connect_to_chain(l);
    assert_int_equal(vtsm_spdm_req_start_session(l->r, 0), VTSM_OK);
    assert_true(vtsm_spdm_req_info(l->r)->session_active);
}

static uint32_t fault(enum vtsm_dev_fault f)
{
    return VTSM_DEV_FAULT_BIT(f);
}

/* ---- failure cases: device faults ---- */

static void test_fault_bad_kex_signature(void **state)
{
    struct loop l;
    size_t n;
    (void)state;
    loop_open(&l, &v12_p384, fault(VTSM_DEV_FAULT_BAD_KEX_SIGNATURE));
    connect_to_chain(&l);
    assert_int_equal(vtsm_spdm_req_start_session(l.r, 0), VTSM_E_PEER_SIGNATURE);
    assert_false(vtsm_spdm_req_info(l.r)->session_active);
    assert_null(vtsm_spdm_req_kex_transcript(l.r));
    assert_null(vtsm_spdm_req_kex_signature(l.r, &n));
    assert_int_equal(n, 0);
    /* nothing half-open: vendor messages are refused locally */
    struct vtsm_buf b = {0};
    const uint8_t p[1] = {0};
    assert_int_equal(vtsm_spdm_req_vendor(l.r, p, 1, &b), VTSM_E_STATE);
    loop_close(&l);
}

/* The responder's ExchangeData is not a curve point (signed, so only the point is wrong):
 * refused where it is imported, at both curves, and nothing is left half-open. */
static void test_fault_bad_kex_point(void **state)
{
    const struct variant *vs[] = {&v12_p384, &v13_p256};
    (void)state;
    for (size_t i = 0; i < 2; i++) {
        struct loop l;
        loop_open(&l, vs[i], fault(VTSM_DEV_FAULT_BAD_KEX_POINT));
        connect_to_chain(&l);
        assert_int_equal(vtsm_spdm_req_start_session(l.r, 0), VTSM_E_PEER_MALFORMED);
        assert_non_null(strstr(vtsm_err_detail(), "not a point on the curve"));
        assert_false(vtsm_spdm_req_info(l.r)->session_active);
        assert_null(vtsm_spdm_req_kex_transcript(l.r));
        loop_close(&l);
    }
}

static void test_fault_bad_meas_signature(void **state)
{
    struct loop l;
    struct vtsm_spdm_meas m;
    (void)state;
    loop_open(&l, &v13_p384, fault(VTSM_DEV_FAULT_BAD_MEAS_SIGNATURE));
    connect_to_chain(&l);
    assert_int_equal(vtsm_spdm_req_get_measurements(l.r, 0, NULL, &m), VTSM_E_PEER_SIGNATURE);
    assert_int_equal(m.num_blocks, 0);
    assert_null(m.blocks);
    loop_close(&l);
}

/* CHALLENGE_AUTH signed wrongly: PDEV.15, no evidence kept, the connection goes on. */
static void test_fault_bad_challenge_signature(void **state)
{
    const struct variant *vs[] = {&v12_p384, &v13_p256};
    (void)state;
    for (size_t i = 0; i < 2; i++) {
        struct loop l;
        size_t n = 1;
        loop_open(&l, vs[i], fault(VTSM_DEV_FAULT_BAD_CHALLENGE_SIGNATURE));
        connect_to_chain(&l);
        assert_int_equal(vtsm_spdm_req_challenge(l.r, 0), VTSM_E_PEER_SIGNATURE);
        assert_int_equal(vtsm_err_rule(), VTSM_RULE_PDEV_15);
        assert_null(vtsm_spdm_req_challenge_transcript(l.r));
        assert_null(vtsm_spdm_req_challenge_signature(l.r, &n));
        assert_int_equal(n, 0);
        loop_close(&l);
    }
}

/* CertChainHash of another chain (signed as sent, so only the hash is wrong): PDEV.16. */
static void test_fault_wrong_cert_chain_hash(void **state)
{
    const struct variant *vs[] = {&v13_p384, &v12_p256};
    (void)state;
    for (size_t i = 0; i < 2; i++) {
        struct loop l;
        loop_open(&l, vs[i], fault(VTSM_DEV_FAULT_WRONG_CERT_CHAIN_HASH));
        connect_to_chain(&l);
        assert_int_equal(vtsm_spdm_req_challenge(l.r, 0), VTSM_E_PEER_DIGEST);
        assert_int_equal(vtsm_err_rule(), VTSM_RULE_PDEV_16);
        assert_null(vtsm_spdm_req_challenge_transcript(l.r));
        loop_close(&l);
    }
}

static void no_chal_cap(struct vtsm_dev_config *c)
{
    c->challenge = false;
}

/* A device without CHAL_CAP is refused before anything is sent (PDEV.14); one that
 * answers CHALLENGE anyway is not asked. Inside a session CHALLENGE is refused locally. */
static void test_challenge_refused(void **state)
{
    struct loop l;
    (void)state;
    loop_open_cfg(&l, &v13_p384, 0, no_chal_cap);
    connect_to_chain(&l);
    assert_int_equal(vtsm_spdm_req_info(l.r)->rsp_caps & SPDM_CAP_CHAL, 0);
    unsigned before = l.exchanges;
    assert_int_equal(vtsm_spdm_req_challenge(l.r, 0), VTSM_E_PEER_CAPS);
    assert_int_equal(vtsm_err_rule(), VTSM_RULE_PDEV_14);
    assert_int_equal(l.exchanges, before);
    loop_close(&l);

    loop_open(&l, &v12_p384, 0);
    connect_to_session(&l);
    assert_int_equal(vtsm_spdm_req_challenge(l.r, 0), VTSM_E_STATE);
    assert_int_equal(vtsm_spdm_req_challenge(l.r, 9), VTSM_E_INVAL);
    loop_close(&l);
}

/* CHALLENGE at every version and key: M1/M2 with B = digests and certificate, then with
 * B empty (right after the previous CHALLENGE), then B = one GET_DIGESTS after a signed
 * GET_MEASUREMENTS; both sides keep B alike or the signature would not verify. A session
 * follows as usual. */
static void test_challenge_ok(void **state)
{
    const struct variant *vs[] = {&v12_p384, &v13_p384, &v12_p256, &v13_p256};
    (void)state;
    for (size_t i = 0; i < 4; i++) {
        struct loop l;
        struct vtsm_spdm_meas m;
        size_t n = 0;
        loop_open(&l, vs[i], 0);
        connect_to_chain(&l);
        assert_true(vtsm_spdm_req_info(l.r)->rsp_caps & SPDM_CAP_CHAL);
        assert_int_equal(vtsm_spdm_req_challenge(l.r, 0), VTSM_OK);
        const struct vtsm_buf *t = vtsm_spdm_req_challenge_transcript(l.r);
        assert_non_null(t);
        const struct vtsm_buf *chain = vtsm_spdm_req_chain_raw(l.r, 0);
        /* M1/M2 holds the whole chain (in CERTIFICATE portions) */
        assert_true(t->len > chain->len);
        assert_non_null(vtsm_spdm_req_challenge_signature(l.r, &n));
        assert_int_equal(n, vtsm_sig_size(vs[i]->asym));
        size_t first = t->len;

        assert_int_equal(vtsm_spdm_req_challenge(l.r, 0), VTSM_OK);
        t = vtsm_spdm_req_challenge_transcript(l.r);
        assert_true(t->len < first - chain->len);

        assert_int_equal(vtsm_spdm_req_get_measurements(l.r, 0, NULL, &m), VTSM_OK);
        vtsm_spdm_meas_free(&m);
        assert_int_equal(vtsm_spdm_req_get_digests(l.r, NULL, NULL), VTSM_OK);
        assert_int_equal(vtsm_spdm_req_challenge(l.r, 0), VTSM_OK);

        assert_int_equal(vtsm_spdm_req_start_session(l.r, 0), VTSM_OK);
        loop_close(&l);
    }
}

static void test_fault_error_kex(void **state)
{
    struct loop l;
    (void)state;
    loop_open(&l, &v12_p256, fault(VTSM_DEV_FAULT_ERROR_KEX));
    connect_to_chain(&l);
    assert_int_equal(vtsm_spdm_req_start_session(l.r, 0), VTSM_E_PEER_ERROR);
    assert_non_null(strstr(vtsm_err_detail(), "KEY_EXCHANGE"));
    assert_false(vtsm_spdm_req_info(l.r)->session_active);
    loop_close(&l);
}

static void test_fault_unexpected_code(void **state)
{
    struct loop l;
    (void)state;
    loop_open(&l, &v12_p384, fault(VTSM_DEV_FAULT_UNEXPECTED_CODE));
    assert_int_equal(vtsm_spdm_req_init_connection(l.r), VTSM_OK);
    assert_int_equal(vtsm_spdm_req_get_digests(l.r, NULL, NULL), VTSM_E_PEER_UNEXPECTED);
    loop_close(&l);
}

static void test_fault_doe(void **state)
{
    static const struct {
        enum vtsm_dev_fault f;
        vtsm_status st;
    } cases[] = {
        {VTSM_DEV_FAULT_TRUNCATE_DOE, VTSM_E_DOE_TRUNCATED},
        {VTSM_DEV_FAULT_OVERSIZE_DOE, VTSM_E_DOE_OVERSIZED},
        {VTSM_DEV_FAULT_MISALIGN_DOE, VTSM_E_DOE_MISALIGNED},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct loop l;
        loop_open(&l, &v12_p384, fault(cases[i].f));
        assert_int_equal(vtsm_spdm_req_init_connection(l.r), VTSM_OK);
        assert_int_equal(vtsm_spdm_req_get_certificate(l.r, 0), cases[i].st);
        assert_null(vtsm_spdm_req_chain(l.r, 0));
        loop_close(&l);
    }
}

static void test_fault_untrusted_chain(void **state)
{
    struct loop l;
    struct vtsm_trust *t = NULL;
    char reason[256];
    (void)state;
    /* The requester takes the chain (trust is the caller's decision) ... */
    loop_open(&l, &v12_p384, fault(VTSM_DEV_FAULT_UNTRUSTED_CHAIN));
    connect_to_chain(&l);
    /* ... and the trust store refuses it. */
    assert_int_equal(vtsm_trust_new(&t), VTSM_OK);
    assert_int_equal(vtsm_trust_add_path(t, VTSM_SOURCE_DIR "/pki/trust/p384-root.pem"), VTSM_OK);
    assert_int_equal(vtsm_trust_verify(t, vtsm_spdm_req_chain(l.r, 0), reason, sizeof(reason)),
                     VTSM_E_PEER_UNTRUSTED);
    vtsm_trust_free(t);
    loop_close(&l);
}

/*
 * A fault on the device's secured responses: whichever secured response it first hits
 * (FINISH_RSP or a later one) must fail with `want`, and no session may remain.
 */
static void secured_fault(const struct variant *v, enum vtsm_dev_fault f, vtsm_status want)
{
    struct loop l;
    struct vtsm_spdm_meas m;
    vtsm_status st;

    loop_open(&l, v, fault(f));
    connect_to_chain(&l);
    st = vtsm_spdm_req_start_session(l.r, 0);
    if (st == VTSM_OK) {
        st = vtsm_spdm_req_get_measurements(l.r, 0, NULL, &m);
        if (st == VTSM_OK) {
            vtsm_spdm_meas_free(&m);
            st = vtsm_spdm_req_get_measurements(l.r, 0, NULL, &m);
        }
    }
    assert_int_equal(st, want);
    assert_int_equal(vtsm_err_status(), want);
    assert_false(vtsm_spdm_req_info(l.r)->session_active);
    assert_int_equal(vtsm_spdm_req_end_session(l.r), VTSM_E_STATE);
    loop_close(&l);
}

static void test_fault_wrong_session_id(void **state)
{
    (void)state;
    secured_fault(&v13_p256, VTSM_DEV_FAULT_WRONG_SESSION_ID, VTSM_E_PEER_SESSION_ID);
}

static void test_fault_tamper(void **state)
{
    (void)state;
    secured_fault(&v12_p384, VTSM_DEV_FAULT_TAMPER, VTSM_E_PEER_DECRYPT);
}

static void test_fault_replay(void **state)
{
    (void)state;
    secured_fault(&v13_p384, VTSM_DEV_FAULT_REPLAY, VTSM_E_PEER_DECRYPT);
}

static void test_fault_not_ready(void **state)
{
    struct loop l;
    struct vtsm_spdm_meas m;
    (void)state;
    /* ResponseNotReady to GET_MEASUREMENTS, then RESPOND_IF_READY; in and out of session */
    loop_open(&l, &v13_p384, fault(VTSM_DEV_FAULT_NOT_READY));
    connect_to_chain(&l);
    unsigned before = l.exchanges;
    assert_int_equal(vtsm_spdm_req_get_measurements(l.r, 0, NULL, &m), VTSM_OK);
    assert_true(l.exchanges >= before + 2);
    assert_true(m.num_blocks > 0);
    vtsm_spdm_meas_free(&m);
    assert_int_equal(vtsm_spdm_req_start_session(l.r, 0), VTSM_OK);
    assert_int_equal(vtsm_spdm_req_get_measurements(l.r, 0, NULL, &m), VTSM_OK);
    vtsm_spdm_meas_free(&m);
    assert_int_equal(vtsm_spdm_req_end_session(l.r), VTSM_OK);
    loop_close(&l);
}

static void test_no_common_version(void **state)
{
    struct loop l;
    struct vtsm_spdm_req_opts o;
    struct vtsm_spdm_transport tp;
    (void)state;
    loop_open(&l, &v12_p384, 0);
    vtsm_spdm_req_free(l.r);
    vtsm_spdm_req_opts_default(&o);
    o.min_version = 0x13;
    tp.exchange = loop_exchange;
    tp.ctx = &l;
    assert_int_equal(vtsm_spdm_req_new(&o, &tp, &l.r), VTSM_OK);
    assert_int_equal(vtsm_spdm_req_init_connection(l.r), VTSM_E_PEER_VERSION);
    loop_close(&l);
}

static void test_vendor_too_large(void **state)
{
    struct loop l;
    struct vtsm_buf b = {0};
    uint8_t *big = calloc(1, 5000);
    (void)state;
    loop_open(&l, &v12_p384, 0);
    connect_to_session(&l);
    /* larger than the device's DataTransferSize: refused before anything is sent */
    unsigned before = l.exchanges;
    assert_int_equal(vtsm_spdm_req_vendor(l.r, big, 5000, &b), VTSM_E_LIMIT);
    assert_int_equal(l.exchanges, before);
    assert_true(vtsm_spdm_req_info(l.r)->session_active);
    assert_int_equal(vtsm_spdm_req_vendor(l.r, big, 0, &b), VTSM_E_INVAL);
    assert_int_equal(vtsm_spdm_req_end_session(l.r), VTSM_OK);
    free(big);
    loop_close(&l);
}

/* ---- failure cases: the host as adversary ---- */

static void test_host_flip(void **state)
{
    struct loop l;
    struct vtsm_spdm_meas m;
    (void)state;
    loop_open(&l, &v12_p384, 0);
    connect_to_session(&l);
    l.attack = HOST_FLIP;
    assert_int_equal(vtsm_spdm_req_get_measurements(l.r, 0, NULL, &m), VTSM_E_PEER_DECRYPT);
    assert_false(vtsm_spdm_req_info(l.r)->session_active);
    /* The device still holds its session; GET_VERSION ends it on both sides, and a new
     * one can be made. */
    connect_to_session(&l);
    assert_int_equal(vtsm_spdm_req_end_session(l.r), VTSM_OK);
    loop_close(&l);
}

static void test_host_flip_finish(void **state)
{
    struct loop l;
    (void)state;
    loop_open(&l, &v13_p256, 0);
    connect_to_chain(&l);
    l.attack = HOST_FLIP; /* FINISH_RSP is the first secured response */
    assert_int_equal(vtsm_spdm_req_start_session(l.r, 0), VTSM_E_PEER_DECRYPT);
    assert_false(vtsm_spdm_req_info(l.r)->session_active);
    loop_close(&l);
}

static void test_host_replay(void **state)
{
    struct loop l;
    uint8_t mask;
    (void)state;
    loop_open(&l, &v12_p256, 0);
    connect_to_session(&l);
    assert_int_equal(vtsm_spdm_req_get_digests(l.r, &mask, NULL), VTSM_OK);
    l.attack = HOST_REPLAY;
    assert_int_equal(vtsm_spdm_req_get_digests(l.r, &mask, NULL), VTSM_E_PEER_DECRYPT);
    assert_false(vtsm_spdm_req_info(l.r)->session_active);
    loop_close(&l);
}

static void test_host_session_id(void **state)
{
    struct loop l;
    uint8_t mask;
    (void)state;
    loop_open(&l, &v13_p384, 0);
    connect_to_session(&l);
    l.attack = HOST_SESSION;
    assert_int_equal(vtsm_spdm_req_get_digests(l.r, &mask, NULL), VTSM_E_PEER_SESSION_ID);
    assert_false(vtsm_spdm_req_info(l.r)->session_active);
    loop_close(&l);
}

static void test_host_drop(void **state)
{
    struct loop l;
    uint8_t mask;
    (void)state;
    loop_open(&l, &v12_p384, 0);
    connect_to_session(&l);
    l.attack = HOST_DROP;
    assert_int_equal(vtsm_spdm_req_get_digests(l.r, &mask, NULL), VTSM_E_DOE_HOST);
    /* the sequence numbers can no longer be trusted to match: the session is gone */
    assert_false(vtsm_spdm_req_info(l.r)->session_active);
    loop_close(&l);
}

/* ---- chunking (CHUNK_SEND / CHUNK_GET) ---- */

/* A device that takes and sends at most 42 bytes (MinDataTransferSize) per message, 4 KiB
 * in all: from NEGOTIATE_ALGORITHMS on nearly every message travels in chunks. */
static void small_dts(struct vtsm_dev_config *c)
{
    c->data_transfer_size = 42;
    c->max_spdm_msg_size = 4096;
}

/* The host rewrites a chunk message in the clear: each illegal sequence is refused under
 * its CHUNK rule, with nothing half made; the requester takes the next exchange cleanly. */
static void test_chunk_host_attacks(void **state)
{
    static const struct {
        enum chunk_attack a;
        enum vtsm_rule rule;
    } cases[] = {
        {CHUNK_RSP_HANDLE, VTSM_RULE_CHUNK_1}, {CHUNK_RSP_SEQ, VTSM_RULE_CHUNK_2},
        {CHUNK_RSP_LARGE, VTSM_RULE_CHUNK_3},  {CHUNK_RSP_SIZE, VTSM_RULE_CHUNK_3},
        {CHUNK_ACK_HANDLE, VTSM_RULE_CHUNK_1}, {CHUNK_ACK_SEQ, VTSM_RULE_CHUNK_2},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct loop l;
        struct vtsm_spdm_meas m;
        loop_open_cfg(&l, &v13_p384, 0, small_dts);
        connect_to_chain(&l);
        l.chunk = cases[i].a;
        if (cases[i].a == CHUNK_ACK_HANDLE || cases[i].a == CHUNK_ACK_SEQ) {
            /* KEY_EXCHANGE (about 160 bytes) goes by CHUNK_SEND */
            assert_int_equal(vtsm_spdm_req_start_session(l.r, 0), VTSM_E_PEER_MALFORMED);
            assert_false(vtsm_spdm_req_info(l.r)->session_active);
        } else {
            /* MEASUREMENTS (about 500 bytes) comes by CHUNK_GET */
            assert_int_equal(vtsm_spdm_req_get_measurements(l.r, 0, NULL, &m),
                             VTSM_E_PEER_MALFORMED);
            assert_null(m.blocks);
        }
        if (vtsm_err_rule() != cases[i].rule)
            fail_msg("case %zu: rule %s, expected %s (%s)", i, vtsm_rule_id(vtsm_err_rule()),
                     vtsm_rule_id(cases[i].rule), vtsm_err_detail());
        assert_int_equal(l.chunk, CHUNK_NONE);
        loop_close(&l);
    }
}

/* The whole connect through a 42-byte DataTransferSize, both ways, at 1.2 and 1.3: VCA,
 * certificate, CHALLENGE, KEY_EXCHANGE and FINISH (CHUNK_SEND), KEY_EXCHANGE_RSP and
 * MEASUREMENTS (CHUNK_GET), measurements in the session, END_SESSION. */
static void test_chunked_connect(void **state)
{
    const struct variant *vs[] = {&v12_p384, &v13_p384, &v13_p256};
    (void)state;
    for (size_t i = 0; i < sizeof(vs) / sizeof(vs[0]); i++) {
        struct loop l;
        struct vtsm_spdm_meas m;
        loop_open_cfg(&l, vs[i], 0, small_dts);
        connect_to_chain(&l);
        const struct vtsm_spdm_info *info = vtsm_spdm_req_info(l.r);
        assert_true(info->rsp_caps & SPDM_CAP_CHUNK);
        assert_int_equal(info->rsp_data_transfer_size, 42);
        assert_int_equal(info->rsp_max_spdm_msg_size, 4096);
        assert_int_equal(vtsm_spdm_req_challenge(l.r, 0), VTSM_OK);
        assert_int_equal(vtsm_spdm_req_start_session(l.r, 0), VTSM_OK);
        assert_true(info->chunk_sends >= 1); /* KEY_EXCHANGE */
        assert_true(info->chunk_gets >= 2);  /* CHALLENGE_AUTH, KEY_EXCHANGE_RSP */
        uint32_t gets = info->chunk_gets;
        assert_int_equal(vtsm_spdm_req_get_measurements(l.r, 0, NULL, &m), VTSM_OK);
        assert_int_equal(m.num_blocks, 4);
        vtsm_spdm_meas_free(&m);
        assert_int_equal(info->chunk_gets, gets + 1);
        assert_int_equal(vtsm_spdm_req_end_session(l.r), VTSM_OK);
        loop_close(&l);
    }
}

/* ---- full connect ---- */

/* ---- an ephemeral key given ahead (vtsm_spdm_req_give_dhe) ---- */

static bool kex_carries(struct loop *l, const uint8_t *pub, size_t len)
{
    const struct vtsm_buf *t = vtsm_spdm_req_kex_transcript(l->r);
    assert_non_null(t);
    return memmem(t->data, t->len, pub, len) != NULL;
}

static void test_dhe_given_ahead(void **state)
{
    struct loop l;
    struct vtsm_dhe *d = NULL;
    uint8_t pub[VTSM_DHE_PUB_MAX], pub256[VTSM_DHE_PUB_MAX];
    (void)state;
    loop_open(&l, &v13_p384, 0);
    connect_to_chain(&l);
    /* a key of the negotiated group is what KEY_EXCHANGE sends, and the session it
     * agrees works (its private half is the one the derivation used) */
    assert_int_equal(vtsm_dhe_generate(VTSM_DHE_SECP384R1, &d, pub), VTSM_OK);
    vtsm_spdm_req_give_dhe(l.r, VTSM_DHE_SECP384R1, d, pub);
    assert_int_equal(vtsm_spdm_req_start_session(l.r, 0), VTSM_OK);
    assert_true(vtsm_spdm_req_info(l.r)->session_active);
    assert_true(kex_carries(&l, pub, 96));
    assert_int_equal(vtsm_spdm_req_heartbeat(l.r), VTSM_OK);
    /* used once: the next session makes its own */
    assert_int_equal(vtsm_spdm_req_end_session(l.r), VTSM_OK);
    assert_int_equal(vtsm_spdm_req_start_session(l.r, 0), VTSM_OK);
    assert_false(kex_carries(&l, pub, 96));
    assert_int_equal(vtsm_spdm_req_end_session(l.r), VTSM_OK);
    /* a key of another group is freed unused (P-384 was negotiated) */
    d = NULL;
    assert_int_equal(vtsm_dhe_generate(VTSM_DHE_SECP256R1, &d, pub256), VTSM_OK);
    vtsm_spdm_req_give_dhe(l.r, VTSM_DHE_SECP256R1, d, pub256);
    assert_int_equal(vtsm_spdm_req_start_session(l.r, 0), VTSM_OK);
    assert_false(kex_carries(&l, pub256, 64));
    assert_true(vtsm_spdm_req_info(l.r)->session_active);
    /* one given and never used is freed with the requester (ASan would see a leak) */
    d = NULL;
    assert_int_equal(vtsm_dhe_generate(VTSM_DHE_SECP384R1, &d, pub), VTSM_OK);
    vtsm_spdm_req_give_dhe(l.r, VTSM_DHE_SECP384R1, d, pub);
    loop_close(&l);
}

static void full_connect(const struct variant *v)
{
    struct loop l;
    struct vtsm_spdm_meas m;
    struct vtsm_trust *t = NULL;
    struct vtsm_buf vrsp = {0};
    char reason[256];
    const struct vtsm_spdm_info *info;
    const char *root = v->asym == VTSM_ASYM_ECDSA_P256 ? VTSM_SOURCE_DIR "/pki/trust/p256-root.pem"
                                                       : VTSM_SOURCE_DIR "/pki/trust/p384-root.pem";
    size_t n;
    uint8_t mask = 0;
    vtsm_status st;

    loop_open(&l, v, 0);
    connect_to_chain(&l);
    info = vtsm_spdm_req_info(l.r);
    assert_int_equal(info->version, v->version);
    assert_int_equal(info->asym, v->asym);
    assert_int_equal(info->aead, VTSM_AEAD_AES_256_GCM);
    assert_true(info->slot_mask & 1);

    /* the chain is the device's test chain, under the test root */
    assert_int_equal(vtsm_trust_new(&t), VTSM_OK);
    assert_int_equal(vtsm_trust_add_path(t, root), VTSM_OK);
    assert_int_equal(vtsm_trust_verify(t, vtsm_spdm_req_chain(l.r, 0), reason, sizeof(reason)),
                     VTSM_OK);
    vtsm_trust_free(t);

    /* signed measurements in the clear */
    assert_int_equal(vtsm_spdm_req_get_measurements(l.r, 0, NULL, &m), VTSM_OK);
    assert_true(m.num_blocks >= 1);
    assert_true(m.transcript.len > m.record.len);
    for (unsigned i = 0; i < m.num_blocks; i++) {
        assert_true(m.blocks[i].index != 0);
        assert_int_equal(m.blocks[i].size, 3u + m.blocks[i].value_size);
    }
    vtsm_spdm_meas_free(&m);

    /* the session */
    assert_int_equal(vtsm_spdm_req_start_session(l.r, 0), VTSM_OK);
    assert_true(info->session_active);
    assert_non_null(vtsm_spdm_req_kex_transcript(l.r));
    assert_non_null(vtsm_spdm_req_kex_signature(l.r, &n));
    assert_int_equal(n, vtsm_sig_size(v->asym));
    assert_non_null(vtsm_spdm_req_meas_summary(l.r, &n));
    assert_int_equal(n, vtsm_hash_size(info->hash));

    /* measurements, digests and the chain again inside the session */
    const uint8_t nonce[32] = {0xAB};
    assert_int_equal(vtsm_spdm_req_get_measurements(l.r, 0, nonce, &m), VTSM_OK);
    assert_int_equal(m.nonce[0], 0xAB);
    vtsm_spdm_meas_free(&m);
    assert_int_equal(vtsm_spdm_req_get_digests(l.r, &mask, NULL), VTSM_OK);
    assert_int_equal(vtsm_spdm_req_get_certificate(l.r, 0), VTSM_OK);

    /* a vendor message: answered, or refused with an authenticated ERROR that leaves the
     * session intact */
    const uint8_t ide_km_query[4] = {PCI_PROTOCOL_ID_IDE_KM, 0x00, 0x00, 0x00};
    st = vtsm_spdm_req_vendor(l.r, ide_km_query, sizeof(ide_km_query), &vrsp);
    assert_true(st == VTSM_OK || st == VTSM_E_PEER_ERROR);
    if (st == VTSM_OK)
        assert_int_equal(vrsp.data[0], PCI_PROTOCOL_ID_IDE_KM);
    assert_true(info->session_active);
    vtsm_buf_free(&vrsp);

    assert_int_equal(vtsm_spdm_req_end_session(l.r), VTSM_OK);
    assert_false(info->session_active);

    /* and a second session on the same connection */
    assert_int_equal(vtsm_spdm_req_start_session(l.r, 0), VTSM_OK);
    assert_int_equal(vtsm_spdm_req_get_measurements(l.r, 0, NULL, &m), VTSM_OK);
    vtsm_spdm_meas_free(&m);
    assert_int_equal(vtsm_spdm_req_end_session(l.r), VTSM_OK);

    /* GET_VERSION again resets everything */
    assert_int_equal(vtsm_spdm_req_init_connection(l.r), VTSM_OK);
    assert_null(vtsm_spdm_req_chain(l.r, 0));
    loop_close(&l);
}

static void test_connect_12_p384(void **state)
{
    (void)state;
    full_connect(&v12_p384);
}

static void test_connect_13_p384(void **state)
{
    (void)state;
    full_connect(&v13_p384);
}

static void test_connect_12_p256(void **state)
{
    (void)state;
    full_connect(&v12_p256);
}

static void test_connect_13_p256(void **state)
{
    (void)state;
    full_connect(&v13_p256);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dhe_given_ahead),
        cmocka_unit_test(test_fault_bad_kex_signature),
        cmocka_unit_test(test_fault_bad_kex_point),
        cmocka_unit_test(test_fault_bad_meas_signature),
        cmocka_unit_test(test_fault_bad_challenge_signature),
        cmocka_unit_test(test_fault_wrong_cert_chain_hash),
        cmocka_unit_test(test_challenge_refused),
        cmocka_unit_test(test_challenge_ok),
        cmocka_unit_test(test_chunk_host_attacks),
        cmocka_unit_test(test_chunked_connect),
        cmocka_unit_test(test_fault_error_kex),
        cmocka_unit_test(test_fault_unexpected_code),
        cmocka_unit_test(test_fault_doe),
        cmocka_unit_test(test_fault_untrusted_chain),
        cmocka_unit_test(test_fault_wrong_session_id),
        cmocka_unit_test(test_fault_tamper),
        cmocka_unit_test(test_fault_replay),
        cmocka_unit_test(test_fault_not_ready),
        cmocka_unit_test(test_no_common_version),
        cmocka_unit_test(test_vendor_too_large),
        cmocka_unit_test(test_host_flip),
        cmocka_unit_test(test_host_flip_finish),
        cmocka_unit_test(test_host_replay),
        cmocka_unit_test(test_host_session_id),
        cmocka_unit_test(test_host_drop),
        cmocka_unit_test(test_connect_12_p384),
        cmocka_unit_test(test_connect_13_p384),
        cmocka_unit_test(test_connect_12_p256),
        cmocka_unit_test(test_connect_13_p256),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
