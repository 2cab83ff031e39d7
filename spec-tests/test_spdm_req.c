/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tsm/spdm: the SPDM requester against a scripted transport — a queue of canned DOE
 * response objects, every request recorded. Failure cases first, each asserting the exact
 * status; then the exact bytes of GET_VERSION / GET_CAPABILITIES / NEGOTIATE_ALGORITHMS
 * written by hand from the DSP0274 1.2 tables, and the paths that succeed (VCA at 1.2 and
 * 1.3, chunked GET_CERTIFICATE, signed GET_MEASUREMENTS with L1/L2 recomputed here).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "vtsm_buf.h"
#include "vtsm_cert.h"
#include "vtsm_doe.h"
#include "vtsm_spdm_req.h"

/* ---- scripted transport ---- */

#define MAX_Q 64

struct script;
/* A response computed from the request (signatures over transcripts with fresh nonces). */
typedef void (*gen_fn)(struct script *s, const uint8_t *spdm_req, size_t len,
                       struct vtsm_buf *spdm_rsp);

struct entry {
    uint8_t *raw; /* whole DOE object, or NULL with gen */
    size_t raw_len;
    uint8_t *spdm; /* the SPDM message inside raw (for transcripts) */
    size_t spdm_len;
    vtsm_status st; /* transport failure instead of a response */
    gen_fn gen;
};

struct script {
    struct entry q[MAX_Q];
    size_t n, next;
    struct vtsm_buf req[MAX_Q]; /* whole DOE request objects */
    size_t nreq;
    struct vtsm_buf vca; /* responder's view of message_a, built by the tests */
    EVP_PKEY *key;       /* responder signing key for gen */
    enum vtsm_asym_alg asym;
    enum vtsm_hash_alg hash;
    uint8_t version;
};

static vtsm_status script_exchange(void *ctx, const uint8_t *req, size_t len, struct vtsm_buf *rsp)
{
    struct script *s = ctx;
    struct entry *e;

    assert_true(s->nreq < MAX_Q);
    assert_int_equal(vtsm_buf_set(&s->req[s->nreq++], req, len), VTSM_OK);
    vtsm_buf_reset(rsp);
    if (s->next >= s->n)
        return vtsm_fail(VTSM_E_CLOSED, "script exhausted");
    e = &s->q[s->next++];
    if (e->st != VTSM_OK)
        return e->st;
    if (e->gen != NULL) {
        struct vtsm_buf spdm = {0};
        e->gen(s, req + VTSM_DOE_HEADER_SIZE, len - VTSM_DOE_HEADER_SIZE, &spdm);
        assert_int_equal(vtsm_doe_build_buf(VTSM_DOE_VENDOR_PCISIG, VTSM_DOE_TYPE_SPDM, spdm.data,
                                            spdm.len, rsp),
                         VTSM_OK);
        vtsm_buf_free(&spdm);
        return VTSM_OK;
    }
    return vtsm_buf_set(rsp, e->raw, e->raw_len);
}

static void q_raw(struct script *s, const uint8_t *p, size_t len)
{
    struct entry *e = &s->q[s->n++];
    assert_true(s->n <= MAX_Q);
    e->raw = malloc(len ? len : 1);
    memcpy(e->raw, p, len);
    e->raw_len = len;
}

/* Queue an SPDM message in a CMA/SPDM DOE object. */
static void q_spdm(struct script *s, const uint8_t *msg, size_t len)
{
    struct vtsm_buf b = {0};
    struct entry *e;

    assert_int_equal(vtsm_doe_build_buf(VTSM_DOE_VENDOR_PCISIG, VTSM_DOE_TYPE_SPDM, msg, len, &b),
                     VTSM_OK);
    q_raw(s, b.data, b.len);
    vtsm_buf_free(&b);
    e = &s->q[s->n - 1];
    e->spdm = malloc(len);
    memcpy(e->spdm, msg, len);
    e->spdm_len = len;
}

#define Q(s, ...)                                                                                  \
    q_spdm((s), (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__}))

static void q_status(struct script *s, vtsm_status st)
{
    s->q[s->n++].st = st;
}

static void q_gen(struct script *s, gen_fn gen)
{
    s->q[s->n++].gen = gen;
}

static void script_free(struct script *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->q[i].raw);
        free(s->q[i].spdm);
    }
    for (size_t i = 0; i < s->nreq; i++)
        vtsm_buf_free(&s->req[i]);
    vtsm_buf_free(&s->vca);
    EVP_PKEY_free(s->key);
    memset(s, 0, sizeof(*s));
}

/* The SPDM payload of recorded request i (DOE header stripped, padding kept). */
static const uint8_t *req_payload(const struct script *s, size_t i, size_t *len)
{
    assert_true(i < s->nreq);
    assert_true(s->req[i].len >= VTSM_DOE_HEADER_SIZE);
    *len = s->req[i].len - VTSM_DOE_HEADER_SIZE;
    return s->req[i].data + VTSM_DOE_HEADER_SIZE;
}

/* ---- canned responses ---- */

#define FLAGS_OK 0x000002D2u /* CERT | MEAS_CAP=10b | ENCRYPT | MAC | KEY_EX */

/* VERSION (always 1.0): Reserved, count 2, entries 1.0 and 1.2, or 1.2 and 1.3 when ver
 * is 1.3 (the requester picks the highest common one). */
static void q_version(struct script *s, uint8_t ver)
{
    if (ver >= 0x13)
        Q(s, 0x10, 0x04, 0x00, 0x00, 0x00, 0x02, 0x00, 0x12, 0x00, 0x13);
    else
        Q(s, 0x10, 0x04, 0x00, 0x00, 0x00, 0x02, 0x00, 0x10, 0x00, 0x12);
}

static void q_caps(struct script *s, uint8_t ver, uint32_t flags)
{
    uint8_t m[20] = {ver, 0x61, 0, 0, 0, 0x0c, 0, 0};
    vtsm_put_le32(m + 8, flags);
    vtsm_put_le32(m + 12, 4096);
    vtsm_put_le32(m + 16, 4096);
    q_spdm(s, m, sizeof(m));
}

struct algos {
    uint8_t ver, nstructs, meas_spec, other, mel, ext_asym, ext_hash;
    uint32_t meas_hash, asym, hash;
    uint8_t st[4][4];
    int length_delta;
    size_t cut; /* bytes to drop from the end */
};

static struct algos algos_p384(uint8_t ver)
{
    struct algos a = {
        .ver = ver,
        .nstructs = 4,
        .meas_spec = 0x01,
        .other = 0x02,
        .meas_hash = 0x04,
        .asym = 0x80,
        .hash = 0x02,
        .st = {{0x02, 0x20, 0x10, 0x00},
               {0x03, 0x20, 0x02, 0x00},
               {0x04, 0x20, 0x00, 0x00},
               {0x05, 0x20, 0x01, 0x00}},
    };
    return a;
}

static void q_algos(struct script *s, const struct algos *a)
{
    uint8_t m[64];
    struct vtsm_wr w = vtsm_wr_init(m, sizeof(m));
    size_t at;

    vtsm_wr_u8(&w, a->ver);
    vtsm_wr_u8(&w, 0x63);
    vtsm_wr_u8(&w, a->nstructs);
    vtsm_wr_u8(&w, 0);
    vtsm_wr_reserve(&w, 2, &at);
    vtsm_wr_u8(&w, a->meas_spec);
    vtsm_wr_u8(&w, a->other);
    vtsm_wr_le32(&w, a->meas_hash);
    vtsm_wr_le32(&w, a->asym);
    vtsm_wr_le32(&w, a->hash);
    vtsm_wr_zeros(&w, 11);
    vtsm_wr_u8(&w, a->mel);
    vtsm_wr_u8(&w, a->ext_asym);
    vtsm_wr_u8(&w, a->ext_hash);
    vtsm_wr_zeros(&w, 2);
    for (unsigned i = 0; i < a->nstructs; i++)
        vtsm_wr_bytes(&w, a->st[i], 4);
    vtsm_wr_patch_le16(&w, at, (uint16_t)((int)w.len + a->length_delta));
    q_spdm(s, m, w.len - a->cut);
}

static void q_vca(struct script *s, uint8_t ver)
{
    struct algos a = algos_p384(ver);
    q_version(s, ver);
    q_caps(s, ver, FLAGS_OK);
    q_algos(s, &a);
}

/* ---- fixtures ---- */

struct ctx {
    struct script s;
    struct vtsm_spdm_req *r;
};

static int setup(void **state)
{
    struct ctx *c = calloc(1, sizeof(*c));
    struct vtsm_spdm_transport tp = {.exchange = script_exchange, .ctx = &c->s};

    assert_non_null(c);
    assert_int_equal(vtsm_spdm_req_new(NULL, &tp, &c->r), VTSM_OK);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *c = *state;
    vtsm_spdm_req_free(c->r);
    script_free(&c->s);
    free(c);
    return 0;
}

/* A requester past VCA at 1.2 (P-384, SHA-384, secp384r1). */
static int setup_vca12(void **state)
{
    setup(state);
    struct ctx *c = *state;
    q_vca(&c->s, 0x12);
    assert_int_equal(vtsm_spdm_req_init_connection(c->r), VTSM_OK);
    return 0;
}

static void expect_init(struct ctx *c, vtsm_status want)
{
    vtsm_err_clear(); /* an earlier test's record must not pass for this one's */
    vtsm_status st = vtsm_spdm_req_init_connection(c->r);
    if (st != want)
        fail_msg("init_connection: %s, expected %s (%s)", vtsm_status_name(st),
                 vtsm_status_name(want), vtsm_err_detail());
    assert_int_equal(vtsm_err_status(), want);
}

/* ---- failure cases: VCA ---- */

static void test_opts_refused(void **state)
{
    struct vtsm_spdm_req_opts o;
    struct vtsm_spdm_req *r = NULL;
    struct script s = {0};
    struct vtsm_spdm_transport tp = {.exchange = script_exchange, .ctx = &s};

    (void)state;
    vtsm_spdm_req_opts_default(&o);
    o.max_spdm_msg_size = 4095; /* below DataTransferSize */
    assert_int_equal(vtsm_spdm_req_new(&o, &tp, &r), VTSM_E_CONFIG);
    assert_null(r);
    o.max_spdm_msg_size = 0x100001; /* above 1 MiB */
    assert_int_equal(vtsm_spdm_req_new(&o, &tp, &r), VTSM_E_CONFIG);
    assert_null(r);
    vtsm_spdm_req_opts_default(&o);
    o.min_version = 0x11;
    assert_int_equal(vtsm_spdm_req_new(&o, &tp, &r), VTSM_E_CONFIG);
    vtsm_spdm_req_opts_default(&o);
    o.aead = SPDM_AEAD_AES_128_GCM;
    assert_int_equal(vtsm_spdm_req_new(&o, &tp, &r), VTSM_E_CONFIG);
    vtsm_spdm_req_opts_default(&o);
    o.data_transfer_size = o.max_spdm_msg_size = 41;
    assert_int_equal(vtsm_spdm_req_new(&o, &tp, &r), VTSM_E_CONFIG);
    tp.exchange = NULL;
    assert_int_equal(vtsm_spdm_req_new(NULL, &tp, &r), VTSM_E_INVAL);
}

static void test_truncated_version(void **state)
{
    struct ctx *c = *state;
    /* VersionNumberEntryCount 2 but one entry */
    Q(&c->s, 0x10, 0x04, 0x00, 0x00, 0x00, 0x02, 0x00, 0x12);
    expect_init(c, VTSM_E_PEER_TRUNCATED);
    assert_non_null(strstr(vtsm_err_detail(), "VersionNumberEntry"));
}

static void test_truncated_version_header(void **state)
{
    struct ctx *c = *state;
    Q(&c->s, 0x10, 0x04, 0x00, 0x00); /* no Reserved / count */
    expect_init(c, VTSM_E_PEER_TRUNCATED);
}

static void test_version_zero_entries(void **state)
{
    struct ctx *c = *state;
    Q(&c->s, 0x10, 0x04, 0x00, 0x00, 0x00, 0x00);
    expect_init(c, VTSM_E_PEER_MALFORMED);
}

static void test_no_common_version(void **state)
{
    struct ctx *c = *state;
    /* 1.0 and 1.1 only */
    Q(&c->s, 0x10, 0x04, 0x00, 0x00, 0x00, 0x02, 0x00, 0x10, 0x00, 0x11);
    expect_init(c, VTSM_E_PEER_VERSION);
    assert_int_equal(c->s.nreq, 1);
}

static void test_version_excess_bytes(void **state)
{
    struct ctx *c = *state;
    /* one entry, then 4 bytes the message does not have */
    Q(&c->s, 0x10, 0x04, 0x00, 0x00, 0x00, 0x01, 0x00, 0x12, 0xAA, 0xBB, 0xCC, 0xDD);
    expect_init(c, VTSM_E_PEER_MALFORMED);
}

static void test_truncated_capabilities(void **state)
{
    struct ctx *c = *state;
    q_version(&c->s, 0x12);
    /* 16 of 20 bytes: MaxSPDMmsgSize missing */
    Q(&c->s, 0x12, 0x61, 0, 0, 0, 0x0c, 0, 0, 0xd2, 0x02, 0, 0, 0x00, 0x10, 0, 0);
    expect_init(c, VTSM_E_PEER_TRUNCATED);
    assert_non_null(strstr(vtsm_err_detail(), "MaxSPDMmsgSize"));
}

static void test_missing_capability(void **state)
{
    static const struct {
        uint32_t flags;
        const char *name;
    } cases[] = {
        {FLAGS_OK & ~0x2u, "CERT_CAP"},
        {(FLAGS_OK & ~0x18u) | 0x08u, "MEAS_CAP"}, /* measurements without signature */
        {FLAGS_OK & ~0x18u, "MEAS_CAP"},
        {FLAGS_OK & ~0x200u, "KEY_EX_CAP"},
        {FLAGS_OK & ~0x40u, "ENCRYPT_CAP"},
        {FLAGS_OK & ~0x80u, "MAC_CAP"},
    };
    struct ctx *c = *state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        script_free(&c->s);
        q_version(&c->s, 0x12);
        q_caps(&c->s, 0x12, cases[i].flags);
        expect_init(c, VTSM_E_PEER_CAPS);
        assert_non_null(strstr(vtsm_err_detail(), cases[i].name));
    }
}

static void test_capabilities_inconsistent(void **state)
{
    struct ctx *c = *state;
    q_version(&c->s, 0x12);
    q_caps(&c->s, 0x12, FLAGS_OK | 0x18u); /* MEAS_CAP = 11b reserved */
    expect_init(c, VTSM_E_PEER_MALFORMED);

    script_free(&c->s);
    q_version(&c->s, 0x12);
    /* DataTransferSize 4096 != MaxSPDMmsgSize 8192 without CHUNK_CAP */
    uint8_t m[20] = {0x12, 0x61, 0, 0, 0, 0x0c, 0, 0};
    vtsm_put_le32(m + 8, FLAGS_OK);
    vtsm_put_le32(m + 12, 4096);
    vtsm_put_le32(m + 16, 8192);
    q_spdm(&c->s, m, sizeof(m));
    expect_init(c, VTSM_E_PEER_MALFORMED);
}

static void test_multi_key_only(void **state)
{
    struct ctx *c = *state;
    q_version(&c->s, 0x13);
    q_caps(&c->s, 0x13, FLAGS_OK | (1u << 26)); /* 1.3 MULTI_KEY_CAP = 01b */
    expect_init(c, VTSM_E_PEER_CAPS);
    assert_non_null(strstr(vtsm_err_detail(), "MULTI_KEY_CAP"));
}

static void test_truncated_algorithms(void **state)
{
    struct ctx *c = *state;
    struct algos a = algos_p384(0x12);

    a.cut = 4; /* last AlgStruct missing (whole DW: DOE pads shorter cuts with zeros) */
    q_version(&c->s, 0x12);
    q_caps(&c->s, 0x12, FLAGS_OK);
    q_algos(&c->s, &a);
    expect_init(c, VTSM_E_PEER_TRUNCATED);

    script_free(&c->s);
    a = algos_p384(0x12);
    a.nstructs = 0;
    a.cut = 10; /* inside the fixed part */
    q_version(&c->s, 0x12);
    q_caps(&c->s, 0x12, FLAGS_OK);
    q_algos(&c->s, &a);
    expect_init(c, VTSM_E_PEER_TRUNCATED);
}

static void run_algos(struct ctx *c, const struct algos *a, vtsm_status want)
{
    script_free(&c->s);
    q_version(&c->s, a->ver);
    q_caps(&c->s, a->ver, FLAGS_OK);
    q_algos(&c->s, a);
    expect_init(c, want);
}

static void test_algorithms_not_offered(void **state)
{
    struct ctx *c = *state;
    struct algos a;

    a = algos_p384(0x12);
    a.asym = 0x01; /* RSASSA-2048 */
    run_algos(c, &a, VTSM_E_PEER_ALGO);
    a = algos_p384(0x12);
    a.hash = 0x04; /* SHA-512 */
    run_algos(c, &a, VTSM_E_PEER_ALGO);
    a = algos_p384(0x12);
    a.st[0][2] = 0x01; /* ffdhe2048 */
    run_algos(c, &a, VTSM_E_PEER_ALGO);
    a = algos_p384(0x12);
    a.st[1][2] = 0x01; /* AES-128-GCM */
    run_algos(c, &a, VTSM_E_PEER_ALGO);
    a = algos_p384(0x12);
    a.st[2][2] = 0x01; /* ReqBaseAsymAlg RSASSA-2048 */
    run_algos(c, &a, VTSM_E_PEER_ALGO);
    a = algos_p384(0x12);
    a.other = 0x01; /* OpaqueDataFmt0 */
    run_algos(c, &a, VTSM_E_PEER_ALGO);
    a = algos_p384(0x12);
    a.meas_spec = 0x00;
    run_algos(c, &a, VTSM_E_PEER_ALGO);
    a = algos_p384(0x12);
    a.ext_asym = 1;
    run_algos(c, &a, VTSM_E_PEER_ALGO);
    a = algos_p384(0x13);
    a.mel = 0x01; /* MEL specification, none offered */
    run_algos(c, &a, VTSM_E_PEER_ALGO);
    a = algos_p384(0x12);
    a.st[1][1] = 0x21; /* AlgCount with one external algorithm */
    run_algos(c, &a, VTSM_E_PEER_ALGO);
}

static void test_algorithms_two_bits(void **state)
{
    struct ctx *c = *state;
    struct algos a;

    a = algos_p384(0x12);
    a.asym = 0x90; /* P-256 and P-384 */
    run_algos(c, &a, VTSM_E_PEER_ALGO);
    assert_non_null(strstr(vtsm_err_detail(), "exactly one"));
    a = algos_p384(0x12);
    a.hash = 0x03;
    run_algos(c, &a, VTSM_E_PEER_ALGO);
    a = algos_p384(0x12);
    a.st[0][2] = 0x18; /* both curves */
    run_algos(c, &a, VTSM_E_PEER_ALGO);
    a = algos_p384(0x12);
    a.meas_hash = 0x06;
    run_algos(c, &a, VTSM_E_PEER_ALGO);
    a = algos_p384(0x12);
    a.st[3][2] = 0x00; /* KeySchedule none */
    run_algos(c, &a, VTSM_E_PEER_ALGO);
}

static void test_algorithms_structs(void **state)
{
    struct ctx *c = *state;
    struct algos a;

    a = algos_p384(0x12);
    a.nstructs = 3; /* no KeySchedule selected */
    run_algos(c, &a, VTSM_E_PEER_ALGO);
    a = algos_p384(0x12);
    memcpy(a.st[0], (const uint8_t[]){0x03, 0x20, 0x02, 0x00}, 4); /* AEAD before DHE */
    memcpy(a.st[1], (const uint8_t[]){0x02, 0x20, 0x10, 0x00}, 4);
    run_algos(c, &a, VTSM_E_PEER_MALFORMED);
    a = algos_p384(0x12);
    a.length_delta = 4; /* Length field disagrees */
    run_algos(c, &a, VTSM_E_PEER_MALFORMED);
    a = algos_p384(0x12);
    a.st[3][0] = 0x06; /* unknown AlgType */
    run_algos(c, &a, VTSM_E_PEER_MALFORMED);
}

static void test_error_response(void **state)
{
    struct ctx *c = *state;
    q_version(&c->s, 0x12);
    Q(&c->s, 0x12, 0x7F, 0x04, 0x00); /* ERROR(UnexpectedRequest) */
    expect_init(c, VTSM_E_PEER_ERROR);
    assert_int_equal(vtsm_spdm_req_peer_error(c->r, NULL), SPDM_ERR_UNEXPECTED_REQUEST);
    assert_non_null(strstr(vtsm_err_detail(), "GET_CAPABILITIES"));
}

static void test_not_ready_refused_in_vca(void **state)
{
    struct ctx *c = *state;
    q_version(&c->s, 0x12);
    /* ResponseNotReady is not followed for VCA messages */
    Q(&c->s, 0x12, 0x7F, 0x42, 0x00, 0x00, 0xE1, 0x01, 0x02);
    expect_init(c, VTSM_E_PEER_ERROR);
    assert_int_equal(c->s.nreq, 2);
}

static void test_unexpected_code(void **state)
{
    struct ctx *c = *state;
    q_version(&c->s, 0x12);
    Q(&c->s, 0x12, 0x63, 0x00, 0x00); /* ALGORITHMS in answer to GET_CAPABILITIES */
    expect_init(c, VTSM_E_PEER_UNEXPECTED);
    assert_non_null(strstr(vtsm_err_detail(), "ALGORITHMS"));
    assert_non_null(strstr(vtsm_err_detail(), "CAPABILITIES"));
}

static void test_wrong_version_byte(void **state)
{
    struct ctx *c = *state;
    q_version(&c->s, 0x12);
    q_caps(&c->s, 0x13, FLAGS_OK); /* 1.3 after 1.2 was chosen */
    expect_init(c, VTSM_E_PEER_UNEXPECTED);
    assert_non_null(strstr(vtsm_err_detail(), "SPDMVersion 0x13"));

    script_free(&c->s);
    Q(&c->s, 0x12, 0x04, 0x00, 0x00, 0x00, 0x01, 0x00, 0x12); /* VERSION must be 1.0 */
    expect_init(c, VTSM_E_PEER_UNEXPECTED);
}

static void test_doe_truncated(void **state)
{
    struct ctx *c = *state;
    /* header claims 5 DW, 3 DW arrive */
    q_raw(&c->s,
          (const uint8_t[]){0x01, 0x00, 0x01, 0x00, 0x05, 0x00, 0x00, 0x00, 0x10, 0x04, 0x00, 0x00},
          12);
    expect_init(c, VTSM_E_DOE_TRUNCATED);
}

static void test_doe_misaligned(void **state)
{
    struct ctx *c = *state;
    q_raw(&c->s, (const uint8_t[]){0x01, 0x00, 0x01, 0x00, 0x03, 0x00, 0x00, 0x00, 0x10, 0x04}, 10);
    expect_init(c, VTSM_E_DOE_MISALIGNED);
}

static void test_doe_wrong_type(void **state)
{
    struct ctx *c = *state;
    /* a secured CMA/SPDM object (type 2) where a plain one is due */
    q_raw(&c->s,
          (const uint8_t[]){0x01, 0x00, 0x02, 0x00, 0x03, 0x00, 0x00, 0x00, 0x10, 0x04, 0x00, 0x00},
          12);
    expect_init(c, VTSM_E_DOE_HEADER);
    script_free(&c->s);
    /* vendor 0x1234 */
    q_raw(&c->s,
          (const uint8_t[]){0x34, 0x12, 0x01, 0x00, 0x03, 0x00, 0x00, 0x00, 0x10, 0x04, 0x00, 0x00},
          12);
    expect_init(c, VTSM_E_DOE_HEADER);
    script_free(&c->s);
    /* a discovery object */
    q_raw(&c->s,
          (const uint8_t[]){0x01, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00},
          12);
    expect_init(c, VTSM_E_DOE_HEADER);
}

static void test_doe_oversized(void **state)
{
    struct ctx *c = *state;
    /* a DOE object carrying one DW more than its header says */
    q_raw(&c->s,
          (const uint8_t[]){0x01, 0x00, 0x01, 0x00, 0x03, 0x00, 0x00, 0x00, 0x10, 0x04, 0x00, 0x00,
                            0x00, 0x00, 0x00, 0x00},
          16);
    expect_init(c, VTSM_E_DOE_OVERSIZED);
}

static void test_transport_failure(void **state)
{
    struct ctx *c = *state;
    q_version(&c->s, 0x12);
    q_status(&c->s, VTSM_E_TIMEOUT);
    expect_init(c, VTSM_E_TIMEOUT);
    /* nothing negotiated survives */
    assert_int_equal(vtsm_spdm_req_info(c->r)->version, 0);
    assert_int_equal(vtsm_spdm_req_get_digests(c->r, NULL, NULL), VTSM_E_STATE);
}

/* ---- failure cases after VCA ---- */

static void test_state_refusals(void **state)
{
    struct ctx *c = *state;
    struct vtsm_spdm_meas m;
    struct vtsm_buf b = {0};
    const uint8_t payload[1] = {0};

    assert_int_equal(vtsm_spdm_req_get_certificate(c->r, 8), VTSM_E_INVAL);
    assert_int_equal(vtsm_spdm_req_start_session(c->r, 0), VTSM_E_STATE); /* no chain */
    assert_int_equal(vtsm_spdm_req_get_measurements(c->r, 0, NULL, &m), VTSM_E_STATE);
    assert_int_equal(vtsm_spdm_req_vendor(c->r, payload, 1, &b), VTSM_E_STATE);
    assert_int_equal(vtsm_spdm_req_end_session(c->r), VTSM_E_STATE);
    assert_int_equal(c->s.nreq, 3); /* only VCA went out */
}

static void q_digests_one(struct script *s, uint8_t ver, const uint8_t digest[48])
{
    uint8_t m[4 + 48] = {ver, 0x01, ver >= 0x13 ? 0x01 : 0x00, 0x01};
    memcpy(m + 4, digest, 48);
    q_spdm(s, m, sizeof(m));
}

static void test_not_ready_then_success(void **state)
{
    struct ctx *c = *state;
    uint8_t digest[48], got[SPDM_MAX_SLOTS][VTSM_HASH_MAX], mask = 0;
    const uint8_t *p;
    size_t n;

    memset(digest, 0x5A, sizeof(digest));
    /* ResponseNotReady: RDTExponent 0, RequestCode GET_DIGESTS, Token 7, RDTM 2 */
    Q(&c->s, 0x12, 0x7F, 0x42, 0x00, 0x00, 0x81, 0x07, 0x02);
    q_digests_one(&c->s, 0x12, digest);
    assert_int_equal(vtsm_spdm_req_get_digests(c->r, &mask, got), VTSM_OK);
    assert_int_equal(mask, 0x01);
    assert_memory_equal(got[0], digest, 48);
    /* the second request is RESPOND_IF_READY(GET_DIGESTS, token 7) */
    assert_int_equal(c->s.nreq, 5);
    p = req_payload(&c->s, 4, &n);
    assert_int_equal(n, 4);
    assert_memory_equal(p, ((const uint8_t[]){0x12, 0xFF, 0x81, 0x07}), 4);
}

static void test_not_ready_sleep_capped(void **state)
{
    struct ctx *c = *state;
    uint8_t digest[48], mask;
    struct timespec t0, t1;

    memset(digest, 0x5A, sizeof(digest));
    /* RDTExponent 40 asks for 2^40 us; the simulator waits at most 100 ms */
    Q(&c->s, 0x12, 0x7F, 0x42, 0x00, 40, 0x81, 0x07, 0x02);
    q_digests_one(&c->s, 0x12, digest);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(vtsm_spdm_req_get_digests(c->r, &mask, NULL), VTSM_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(s >= 0.09 && s < 2.0);
}

static void test_not_ready_exhausted(void **state)
{
    struct ctx *c = *state;
    uint8_t mask;

    for (int i = 0; i < 9; i++) /* the first answer and 8 RESPOND_IF_READY */
        Q(&c->s, 0x12, 0x7F, 0x42, 0x00, 0x00, 0x81, 0x07, 0x02);
    assert_int_equal(vtsm_spdm_req_get_digests(c->r, &mask, NULL), VTSM_E_PEER_NOT_READY);
    assert_int_equal(c->s.nreq, 3 + 9);
}

static void test_not_ready_wrong_request_code(void **state)
{
    struct ctx *c = *state;
    uint8_t mask;
    Q(&c->s, 0x12, 0x7F, 0x42, 0x00, 0x00, 0x82, 0x07, 0x02);
    assert_int_equal(vtsm_spdm_req_get_digests(c->r, &mask, NULL), VTSM_E_PEER_MALFORMED);
    Q(&c->s, 0x12, 0x7F, 0x42, 0x00); /* no extended data */
    assert_int_equal(vtsm_spdm_req_get_digests(c->r, &mask, NULL), VTSM_E_PEER_TRUNCATED);
}

static void test_request_resynch(void **state)
{
    struct ctx *c = *state;
    uint8_t mask;
    Q(&c->s, 0x12, 0x7F, 0x43, 0x00);
    assert_int_equal(vtsm_spdm_req_get_digests(c->r, &mask, NULL), VTSM_E_PEER_ERROR);
    assert_int_equal(vtsm_spdm_req_peer_error(c->r, NULL), SPDM_ERR_REQUEST_RESYNCH);
    /* the connection must be negotiated again */
    assert_int_equal(vtsm_spdm_req_get_digests(c->r, &mask, NULL), VTSM_E_STATE);
}

static void test_digests_truncated(void **state)
{
    struct ctx *c = *state;
    uint8_t mask;
    /* two slots provisioned, one digest */
    uint8_t m[4 + 48] = {0x12, 0x01, 0x00, 0x03};
    q_spdm(&c->s, m, sizeof(m));
    assert_int_equal(vtsm_spdm_req_get_digests(c->r, &mask, NULL), VTSM_E_PEER_TRUNCATED);
}

/* A fake SPDM chain: right Length field, no certificate that parses. */
static void fake_chain(uint8_t *chain, size_t len)
{
    for (size_t i = 0; i < len; i++)
        chain[i] = (uint8_t)(i * 7 + 3);
    vtsm_put_le16(chain, (uint16_t)len);
    chain[2] = chain[3] = 0;
}

static void q_cert(struct script *s, uint8_t ver, uint8_t slot, const uint8_t *portion,
                   uint16_t plen, uint16_t remainder)
{
    uint8_t *m = malloc(8u + plen);
    m[0] = ver;
    m[1] = 0x02;
    m[2] = slot;
    m[3] = 0;
    vtsm_put_le16(m + 4, plen);
    vtsm_put_le16(m + 6, remainder);
    memcpy(m + 8, portion, plen);
    q_spdm(s, m, 8u + plen);
    free(m);
}

static void test_cert_oversized(void **state)
{
    struct ctx *c = *state;
    uint8_t chain[200];

    fake_chain(chain, sizeof(chain));
    /* 200 bytes now and 65400 to come: more than 65535 */
    q_cert(&c->s, 0x12, 0, chain, 200, 65400);
    assert_int_equal(vtsm_spdm_req_get_certificate(c->r, 0), VTSM_E_PEER_OVERSIZED);
    assert_null(vtsm_spdm_req_chain_raw(c->r, 0));
}

static void test_cert_digest_mismatch(void **state)
{
    struct ctx *c = *state;
    uint8_t chain[300], digest[48];

    memset(digest, 0x11, sizeof(digest));
    fake_chain(chain, sizeof(chain));
    q_digests_one(&c->s, 0x12, digest);
    assert_int_equal(vtsm_spdm_req_get_digests(c->r, NULL, NULL), VTSM_OK);
    q_cert(&c->s, 0x12, 0, chain, sizeof(chain), 0);
    assert_int_equal(vtsm_spdm_req_get_certificate(c->r, 0), VTSM_E_PEER_DIGEST);
    assert_null(vtsm_spdm_req_chain(c->r, 0));
    /* a slot the device did not provision is refused without a request */
    size_t before = c->s.nreq;
    assert_int_equal(vtsm_spdm_req_get_certificate(c->r, 1), VTSM_E_NOT_FOUND);
    assert_int_equal(c->s.nreq, before);
}

static void test_cert_inconsistent_chunks(void **state)
{
    struct ctx *c = *state;
    uint8_t chain[300];

    fake_chain(chain, sizeof(chain));
    q_cert(&c->s, 0x12, 0, chain, 100, 200);
    q_cert(&c->s, 0x12, 0, chain + 100, 100, 50); /* now 250 in total */
    assert_int_equal(vtsm_spdm_req_get_certificate(c->r, 0), VTSM_E_PEER_MALFORMED);

    q_cert(&c->s, 0x12, 1, chain, 100, 200); /* wrong slot */
    assert_int_equal(vtsm_spdm_req_get_certificate(c->r, 0), VTSM_E_PEER_MALFORMED);

    q_cert(&c->s, 0x12, 0, chain, 0, 200); /* no progress */
    assert_int_equal(vtsm_spdm_req_get_certificate(c->r, 0), VTSM_E_PEER_MALFORMED);

    /* PortionLength says 100, 60 arrive */
    uint8_t m[8 + 60] = {0x12, 0x02, 0x00, 0x00, 100, 0, 0, 0};
    q_spdm(&c->s, m, sizeof(m));
    assert_int_equal(vtsm_spdm_req_get_certificate(c->r, 0), VTSM_E_PEER_TRUNCATED);
}

static void test_cert_chunks_then_bad_chain(void **state)
{
    struct ctx *c = *state;
    uint8_t chain[9000];
    const uint8_t *p;
    size_t n;

    fake_chain(chain, sizeof(chain));
    /* DataTransferSize 4096 on both sides: portions of at most 4088 */
    q_cert(&c->s, 0x12, 0, chain, 4088, 9000 - 4088);
    q_cert(&c->s, 0x12, 0, chain + 4088, 4088, 9000 - 8176);
    q_cert(&c->s, 0x12, 0, chain + 8176, 824, 0);
    assert_int_equal(vtsm_spdm_req_get_certificate(c->r, 0), VTSM_E_PEER_CHAIN);
    assert_int_equal(c->s.nreq, 6);
    p = req_payload(&c->s, 3, &n);
    assert_memory_equal(p, ((const uint8_t[]){0x12, 0x82, 0x00, 0x00, 0x00, 0x00, 0xF8, 0x0F}), 8);
    p = req_payload(&c->s, 4, &n);
    assert_memory_equal(p, ((const uint8_t[]){0x12, 0x82, 0x00, 0x00, 0xF8, 0x0F, 0xF8, 0x0F}), 8);
    /* the last request asks only for what remains */
    p = req_payload(&c->s, 5, &n);
    assert_memory_equal(p, ((const uint8_t[]){0x12, 0x82, 0x00, 0x00, 0xF0, 0x1F, 0x38, 0x03}), 8);
}

/* ---- exact request bytes (DSP0274 1.2 tables) ---- */

static void test_vca_request_bytes(void **state)
{
    struct ctx *c = *state;
    /* DOE header: vendor 0x0001, type 1; length in DW */
    static const uint8_t get_version[] = {0x01, 0x00, 0x01, 0x00, 0x03, 0x00,
                                          0x00, 0x00, 0x10, 0x84, 0x00, 0x00};
    static const uint8_t get_caps[] = {
        0x01, 0x00, 0x01, 0x00, 0x07, 0x00, 0x00, 0x00, /* 7 DW */
        0x12, 0xE1, 0x00, 0x00,                         /* 1.2 GET_CAPABILITIES */
        0x00, 0x00, 0x00, 0x00,                         /* Reserved, CTExponent 0, Reserved */
        0xC0, 0x62, 0x02, 0x00,                         /* ENCRYPT|MAC|KEY_EX|HBEAT|KEY_UPD|CHUNK */
        0x00, 0x10, 0x00, 0x00,                         /* DataTransferSize 4096 */
        0x00, 0x00, 0x01, 0x00,                         /* MaxSPDMmsgSize 65536 */
    };
    static const uint8_t neg_algs[] = {
        0x01, 0x00, 0x01, 0x00, 0x0E, 0x00, 0x00, 0x00, /* 14 DW */
        0x12, 0xE3, 0x04, 0x00,                         /* 4 ReqAlgStructs */
        0x30, 0x00,                                     /* Length 48 */
        0x01,                                           /* MeasurementSpecification DMTF */
        0x02,                                           /* OtherParamsSupport OpaqueDataFmt1 */
        0x90, 0x00, 0x00, 0x00,                         /* ECDSA P-256 | P-384 */
        0x03, 0x00, 0x00, 0x00,                         /* SHA-256 | SHA-384 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* Reserved */
        0x00, 0x00, 0x00, 0x00, /* ExtAsymCount, ExtHashCount, Reserved, MELspecification */
        0x02, 0x20, 0x18, 0x00, /* DHE: secp256r1 | secp384r1 */
        0x03, 0x20, 0x02, 0x00, /* AEAD: AES-256-GCM */
        0x04, 0x20, 0x90, 0x00, /* ReqBaseAsymAlg: P-256 | P-384 */
        0x05, 0x20, 0x01, 0x00, /* KeySchedule: SPDM */
    };
    const struct vtsm_spdm_info *info;

    q_vca(&c->s, 0x12);
    assert_int_equal(vtsm_spdm_req_init_connection(c->r), VTSM_OK);
    assert_int_equal(c->s.nreq, 3);
    assert_int_equal(c->s.req[0].len, sizeof(get_version));
    assert_memory_equal(c->s.req[0].data, get_version, sizeof(get_version));
    assert_int_equal(c->s.req[1].len, sizeof(get_caps));
    assert_memory_equal(c->s.req[1].data, get_caps, sizeof(get_caps));
    assert_int_equal(c->s.req[2].len, sizeof(neg_algs));
    assert_memory_equal(c->s.req[2].data, neg_algs, sizeof(neg_algs));

    info = vtsm_spdm_req_info(c->r);
    assert_int_equal(info->version, 0x12);
    assert_int_equal(info->rsp_caps, FLAGS_OK);
    assert_int_equal(info->rsp_ct_exponent, 0x0c);
    assert_int_equal(info->rsp_data_transfer_size, 4096);
    assert_int_equal(info->asym, VTSM_ASYM_ECDSA_P384);
    assert_int_equal(info->hash, VTSM_HASH_SHA384);
    assert_int_equal(info->dhe, VTSM_DHE_SECP384R1);
    assert_int_equal(info->aead, VTSM_AEAD_AES_256_GCM);
    assert_int_equal(info->meas_hash_algo, SPDM_MEAS_HASH_SHA384);
    assert_false(info->session_active);
}

static void test_vca_13(void **state)
{
    struct ctx *c = *state;
    struct algos a = algos_p384(0x13);
    uint8_t digest[48], mask = 0;
    const uint8_t *p;
    size_t n;

    a.asym = 0x10; /* P-256 */
    a.hash = 0x01; /* SHA-256 */
    a.st[0][2] = 0x08;
    q_version(&c->s, 0x13);
    q_caps(&c->s, 0x13, FLAGS_OK);
    q_algos(&c->s, &a);
    assert_int_equal(vtsm_spdm_req_init_connection(c->r), VTSM_OK);
    assert_int_equal(vtsm_spdm_req_info(c->r)->version, 0x13);
    assert_int_equal(vtsm_spdm_req_info(c->r)->asym, VTSM_ASYM_ECDSA_P256);
    assert_int_equal(vtsm_spdm_req_info(c->r)->dhe, VTSM_DHE_SECP256R1);
    p = req_payload(&c->s, 1, &n);
    assert_int_equal(p[0], 0x13);

    /* 1.3 DIGESTS: Param1 SupportedSlotMask, Param2 ProvisionedSlotMask; SHA-256 digests */
    memset(digest, 0x33, sizeof(digest));
    uint8_t m[4 + 32] = {0x13, 0x01, 0x03, 0x02};
    memcpy(m + 4, digest, 32);
    q_spdm(&c->s, m, sizeof(m));
    assert_int_equal(vtsm_spdm_req_get_digests(c->r, &mask, NULL), VTSM_OK);
    assert_int_equal(mask, 0x02);

    /* ProvisionedSlotMask outside SupportedSlotMask */
    uint8_t bad[4 + 32] = {0x13, 0x01, 0x01, 0x02};
    q_spdm(&c->s, bad, sizeof(bad));
    assert_int_equal(vtsm_spdm_req_get_digests(c->r, &mask, NULL), VTSM_E_PEER_MALFORMED);
}

/* ---- success with a real chain and hand-signed MEASUREMENTS ---- */

static X509 *self_signed(EVP_PKEY *key)
{
    X509 *x = X509_new();
    X509_NAME *name;

    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"vtsm test", -1, -1,
                               0);
    X509_set_issuer_name(x, name);
    assert_true(X509_sign(x, key, EVP_sha384()) > 0);
    return x;
}

/* responder side of VCA as the test wrote it: the canned SPDM bytes, in order */
static void script_vca(struct script *s)
{
    size_t n;
    for (size_t i = 0; i < 3; i++) {
        const uint8_t *p = req_payload(s, i, &n);
        size_t exact = i == 0 ? 4 : i == 1 ? 20 : 48;
        vtsm_buf_append(&s->vca, p, exact);
        vtsm_buf_append(&s->vca, s->q[i].spdm, s->q[i].spdm_len);
    }
}

static uint8_t g_record[2 * (4 + 3 + 48)];

/* MEASUREMENTS for an all-blocks signed request: two digest blocks, signed over
 * L1/L2 = VCA || GET_MEASUREMENTS || MEASUREMENTS-without-Signature. */
static void gen_measurements(struct script *s, const uint8_t *req, size_t len, struct vtsm_buf *out)
{
    const size_t req_len = s->version >= 0x13 ? 4 + 32 + 1 + 8 : 4 + 32 + 1;
    uint8_t nonce[32], th[48], sig[96];
    struct vtsm_buf l = {0};
    struct vtsm_wr w;
    uint8_t m[512];

    assert_true(len >= req_len);
    assert_int_equal(req[1], 0xE0);
    assert_int_equal(req[2], 0x01); /* signature requested */
    assert_int_equal(req[3], 0xFF); /* all blocks */
    memset(nonce, 0xC3, sizeof(nonce));
    w = vtsm_wr_init(m, sizeof(m));
    vtsm_wr_u8(&w, s->version);
    vtsm_wr_u8(&w, 0x60);
    vtsm_wr_u8(&w, 0x00);
    vtsm_wr_u8(&w, req[36] & 0x0F); /* slot */
    vtsm_wr_u8(&w, 2);
    vtsm_wr_le24(&w, sizeof(g_record));
    vtsm_wr_bytes(&w, g_record, sizeof(g_record));
    vtsm_wr_bytes(&w, nonce, sizeof(nonce));
    vtsm_wr_le16(&w, 0); /* OpaqueDataLength */
    if (s->version >= 0x13)
        vtsm_wr_bytes(&w, req + 37, 8); /* RequesterContext echoed */
    vtsm_buf_append(&l, s->vca.data, s->vca.len);
    vtsm_buf_append(&l, req, req_len);
    vtsm_buf_append(&l, m, w.len);
    assert_int_equal(vtsm_hash(s->hash, l.data, l.len, th), VTSM_OK);
    assert_int_equal(
        vtsm_spdm_sign(s->key, s->asym, s->hash, s->version, VTSM_SPDM_CTX_MEASUREMENTS, th, sig),
        VTSM_OK);
    vtsm_wr_bytes(&w, sig, vtsm_sig_size(s->asym));
    vtsm_buf_set(out, m, w.len);
    vtsm_buf_free(&l);
}

static void gen_measurements_bad_sig(struct script *s, const uint8_t *req, size_t len,
                                     struct vtsm_buf *out)
{
    gen_measurements(s, req, len, out);
    out->data[out->len - 5] ^= 0x01;
}

static void fill_record(void)
{
    struct vtsm_wr w = vtsm_wr_init(g_record, sizeof(g_record));
    for (uint8_t i = 1; i <= 2; i++) {
        vtsm_wr_u8(&w, i);        /* Index */
        vtsm_wr_u8(&w, 0x01);     /* DMTF */
        vtsm_wr_le16(&w, 3 + 48); /* MeasurementSize */
        vtsm_wr_u8(&w, i - 1);    /* ValueType: digest */
        vtsm_wr_le16(&w, 48);
        for (int k = 0; k < 48; k++)
            vtsm_wr_u8(&w, (uint8_t)(i * 16 + k));
    }
}

static void cert_and_measurements(struct ctx *c, uint8_t ver)
{
    struct vtsm_buf chain = {0};
    X509 *x;
    unsigned char *der = NULL;
    int der_len;
    uint8_t digest[48];
    struct vtsm_spdm_meas m;
    const uint8_t nonce[32] = {1, 2, 3};

    c->s.key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    assert_non_null(c->s.key);
    c->s.asym = VTSM_ASYM_ECDSA_P384;
    c->s.hash = VTSM_HASH_SHA384;
    c->s.version = ver;
    x = self_signed(c->s.key);
    der_len = i2d_X509(x, &der);
    assert_true(der_len > 0);
    const uint8_t *ders[1] = {der};
    size_t lens[1] = {(size_t)der_len};
    assert_int_equal(vtsm_certchain_build(VTSM_HASH_SHA384, ders, lens, 1, &chain), VTSM_OK);
    assert_int_equal(vtsm_hash(VTSM_HASH_SHA384, chain.data, chain.len, digest), VTSM_OK);

    q_vca(&c->s, ver);
    assert_int_equal(vtsm_spdm_req_init_connection(c->r), VTSM_OK);
    script_vca(&c->s);

    q_digests_one(&c->s, ver, digest);
    assert_int_equal(vtsm_spdm_req_get_digests(c->r, NULL, NULL), VTSM_OK);
    /* two portions */
    q_cert(&c->s, ver, 0, chain.data, 100, (uint16_t)(chain.len - 100));
    q_cert(&c->s, ver, 0, chain.data + 100, (uint16_t)(chain.len - 100), 0);
    assert_int_equal(vtsm_spdm_req_get_certificate(c->r, 0), VTSM_OK);
    assert_non_null(vtsm_spdm_req_chain(c->r, 0));
    assert_int_equal(vtsm_spdm_req_chain_raw(c->r, 0)->len, chain.len);
    assert_memory_equal(vtsm_spdm_req_chain_raw(c->r, 0)->data, chain.data, chain.len);

    fill_record();
    q_gen(&c->s, gen_measurements);
    assert_int_equal(vtsm_spdm_req_get_measurements(c->r, 0, nonce, &m), VTSM_OK);
    assert_int_equal(m.num_blocks, 2);
    assert_int_equal(m.blocks[0].index, 1);
    assert_int_equal(m.blocks[1].index, 2);
    assert_int_equal(m.blocks[1].value_type, 1);
    assert_int_equal(m.blocks[1].value_size, 48);
    assert_int_equal(m.blocks[1].value[0], 32);
    assert_memory_equal(m.nonce, nonce, 32);
    assert_int_equal(m.rsp_nonce[0], 0xC3);
    assert_int_equal(m.signature_len, 96);
    assert_int_equal(m.record.len, sizeof(g_record));
    /* the transcript kept is VCA || request || response without the signature */
    assert_memory_equal(m.transcript.data, c->s.vca.data, c->s.vca.len);
    vtsm_spdm_meas_free(&m);

    /* a signature that does not verify */
    q_gen(&c->s, gen_measurements_bad_sig);
    assert_int_equal(vtsm_spdm_req_get_measurements(c->r, 0, NULL, &m), VTSM_E_PEER_SIGNATURE);

    vtsm_buf_free(&chain);
    OPENSSL_free(der);
    X509_free(x);
}

static void test_cert_and_measurements_12(void **state)
{
    cert_and_measurements(*state, 0x12);
}

static void test_cert_and_measurements_13(void **state)
{
    cert_and_measurements(*state, 0x13);
}

/* ---- chunking, scripted device ---- */

#define CAP_CHUNK (1u << 17)

/* VERSION, CAPABILITIES with CHUNK_CAP (DataTransferSize dts, MaxSPDMmsgSize 4096). */
static void q_vc_chunk(struct script *s, uint8_t ver, uint32_t dts)
{
    uint8_t m[20] = {ver, 0x61, 0, 0, 0, 0x0c, 0, 0};
    q_version(s, ver);
    vtsm_put_le32(m + 8, FLAGS_OK | CAP_CHUNK);
    vtsm_put_le32(m + 12, dts);
    vtsm_put_le32(m + 16, 4096);
    q_spdm(s, m, sizeof(m));
}

/* NEGOTIATE_ALGORITHMS (48 bytes) to a device taking 42 per message goes in CHUNK_SEND
 * chunks within 42 bytes; a CHUNK_SEND_ACK with EarlyErrorDetected carries the ERROR that
 * ended the transfer, which is the device's answer. */
static void test_chunk_send_early_error(void **state)
{
    struct ctx *c = *state;
    q_vc_chunk(&c->s, 0x12, 42);
    Q(&c->s, 0x12, 0x05, 0x01, 0x00, 0x00, 0x00, 0x12, 0x7F, 0x01, 0x00);
    expect_init(c, VTSM_E_PEER_ERROR);
    assert_int_equal(vtsm_spdm_req_peer_error(c->r, NULL), 0x01);
    size_t n;
    const uint8_t *p = req_payload(&c->s, 2, &n);
    /* CHUNK_SEND: LastChunk 0, Handle 0, ChunkSeqNo 0, ChunkSize 26, LargeMessageSize 48 */
    assert_true(n >= 42 && n <= 44);
    const uint8_t hdr[16] = {0x12, 0x85, 0x00, 0x00, 0, 0, 0, 0, 26, 0, 0, 0, 48, 0, 0, 0};
    assert_memory_equal(p, hdr, sizeof(hdr));
    assert_int_equal(p[16], 0x12); /* the request itself follows: NEGOTIATE_ALGORITHMS */
    assert_int_equal(p[17], 0xE3);
}

/* The whole NEGOTIATE_ALGORITHMS in two chunks, ALGORITHMS in the last ACK. */
static void test_chunk_send_two_chunks(void **state)
{
    struct ctx *c = *state;
    struct algos a = algos_p384(0x12);
    uint8_t alg[64];
    q_vc_chunk(&c->s, 0x12, 42);
    Q(&c->s, 0x12, 0x05, 0x00, 0x00, 0x00, 0x00);
    /* ACK of chunk 1 with ResponseToLargeRequest: build ALGORITHMS into a scratch script */
    struct script tmp = {0};
    q_algos(&tmp, &a);
    size_t alen = tmp.q[0].spdm_len;
    assert_true(alen <= sizeof(alg));
    memcpy(alg, tmp.q[0].spdm, alen);
    script_free(&tmp);
    uint8_t ack[6 + 64] = {0x12, 0x05, 0x00, 0x00, 0x01, 0x00};
    memcpy(ack + 6, alg, alen);
    q_spdm(&c->s, ack, 6 + alen);
    expect_init(c, VTSM_OK);
    size_t n;
    const uint8_t *p = req_payload(&c->s, 3, &n);
    /* chunk 1: LastChunk, Handle 0, ChunkSeqNo 1, ChunkSize 22 */
    const uint8_t hdr[12] = {0x12, 0x85, 0x01, 0x00, 1, 0, 0, 0, 22, 0, 0, 0};
    assert_memory_equal(p, hdr, sizeof(hdr));
}

/* ERROR(LargeResponse) to GET_DIGESTS: CHUNK_GET answers that break the rules. */
static void test_chunk_get_refusals(void **state)
{
    static const struct {
        uint8_t rsp[24];
        size_t len;
        enum vtsm_rule rule;
    } bad[] = {
        /* LastChunk with 4 of 52 bytes */
        {{0x12, 0x06, 0x01, 0x07, 0, 0, 0, 0, 4, 0, 0, 0, 52, 0, 0, 0, 0x12, 0x01, 0, 1},
         20,
         VTSM_RULE_CHUNK_3},
        /* ChunkSize 0 */
        {{0x12, 0x06, 0x00, 0x07, 0, 0, 0, 0, 0, 0, 0, 0, 52, 0, 0, 0}, 16, VTSM_RULE_CHUNK_3},
        /* LargeMessageSize 42: no large message */
        {{0x12, 0x06, 0x00, 0x07, 0, 0, 0, 0, 4, 0, 0, 0, 42, 0, 0, 0, 0x12, 0x01, 0, 1},
         20,
         VTSM_RULE_CHUNK_3},
        /* another Handle, another ChunkSeqNo */
        {{0x12, 0x06, 0x00, 0x08, 0, 0, 0, 0, 4, 0, 0, 0, 52, 0, 0, 0, 0x12, 0x01, 0, 1},
         20,
         VTSM_RULE_CHUNK_1},
        {{0x12, 0x06, 0x00, 0x07, 1, 0, 0, 0, 4, 0, 0, 0, 52, 0, 0, 0, 0x12, 0x01, 0, 1},
         20,
         VTSM_RULE_CHUNK_2},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ctx *c;
        setup((void **)&c);
        q_vc_chunk(&c->s, 0x12, 4096);
        struct algos a = algos_p384(0x12);
        q_algos(&c->s, &a);
        expect_init(c, VTSM_OK);
        Q(&c->s, 0x12, 0x7F, 0x0F, 0x00, 0x07); /* ERROR(LargeResponse), Handle 7 */
        q_spdm(&c->s, bad[i].rsp, bad[i].len);
        assert_int_equal(vtsm_spdm_req_get_digests(c->r, NULL, NULL), VTSM_E_PEER_MALFORMED);
        if (vtsm_err_rule() != bad[i].rule)
            fail_msg("case %zu: %s", i, vtsm_err_detail());
        size_t n;
        const uint8_t *p = req_payload(&c->s, 4, &n);
        const uint8_t get[6] = {0x12, 0x86, 0x00, 0x07, 0x00, 0x00}; /* CHUNK_GET 7, 0 */
        assert_memory_equal(p, get, sizeof(get));
        teardown((void **)&c);
    }
}

/* ERROR(LargeResponse) from a device without CHUNK_CAP, or announcing the large response
 * as large again: malformed. */
static void test_large_response_misuse(void **state)
{
    struct ctx *c = *state;
    q_vca(&c->s, 0x12);
    expect_init(c, VTSM_OK);
    Q(&c->s, 0x12, 0x7F, 0x0F, 0x00, 0x01);
    assert_int_equal(vtsm_spdm_req_get_digests(c->r, NULL, NULL), VTSM_E_PEER_MALFORMED);
    assert_non_null(strstr(vtsm_err_detail(), "without CHUNK_CAP"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opts_refused),
        cmocka_unit_test_setup_teardown(test_chunk_send_early_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunk_send_two_chunks, setup, teardown),
        cmocka_unit_test(test_chunk_get_refusals),
        cmocka_unit_test_setup_teardown(test_large_response_misuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_version_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_version_zero_entries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_common_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_version_excess_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_capabilities, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_capability, setup, teardown),
        cmocka_unit_test_setup_teardown(test_capabilities_inconsistent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multi_key_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_algorithms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_algorithms_not_offered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_algorithms_two_bits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_algorithms_structs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_ready_refused_in_vca, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unexpected_code, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_version_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_doe_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_doe_misaligned, setup, teardown),
        cmocka_unit_test_setup_teardown(test_doe_wrong_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_doe_oversized, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transport_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_refusals, setup_vca12, teardown),
        cmocka_unit_test_setup_teardown(test_not_ready_then_success, setup_vca12, teardown),
        cmocka_unit_test_setup_teardown(test_not_ready_sleep_capped, setup_vca12, teardown),
        cmocka_unit_test_setup_teardown(test_not_ready_exhausted, setup_vca12, teardown),
        cmocka_unit_test_setup_teardown(test_not_ready_wrong_request_code, setup_vca12, teardown),
        cmocka_unit_test_setup_teardown(test_request_resynch, setup_vca12, teardown),
        cmocka_unit_test_setup_teardown(test_digests_truncated, setup_vca12, teardown),
        cmocka_unit_test_setup_teardown(test_cert_oversized, setup_vca12, teardown),
        cmocka_unit_test_setup_teardown(test_cert_digest_mismatch, setup_vca12, teardown),
        cmocka_unit_test_setup_teardown(test_cert_inconsistent_chunks, setup_vca12, teardown),
        cmocka_unit_test_setup_teardown(test_cert_chunks_then_bad_chain, setup_vca12, teardown),
        cmocka_unit_test_setup_teardown(test_vca_request_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vca_13, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cert_and_measurements_12, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cert_and_measurements_13, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
