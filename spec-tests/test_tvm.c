/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tsm/tsm_tvm: the TVM registry and guest request authentication
 * (docs/abi.md section 9, rules TVM.1-3 and GUEST.1-4). Failure cases
 * first, each asserting the exact status, the rule, and that the TVM's sequence number
 * did not move; then good requests of every operation, and destroy.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "vtsm_test.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "tsm_tvm.h"
#include "vtsm_abi.h"
#include "vtsm_crypto.h"

/* ---- a guest: key pair, body builder, signer ---- */

struct guest {
    EVP_PKEY *key;
    uint8_t pub[TSM_TVM_KEY_SIZE];
};

static void guest_new(struct guest *g)
{
    size_t n = 0;
    g->key = EVP_EC_gen("P-256");
    assert_non_null(g->key);
    assert_int_equal(EVP_PKEY_get_octet_string_param(g->key, OSSL_PKEY_PARAM_PUB_KEY, g->pub,
                                                     sizeof(g->pub), &n),
                     1);
    assert_int_equal(n, TSM_TVM_KEY_SIZE);
    assert_int_equal(g->pub[0], 0x04);
}

static void guest_free(struct guest *g)
{
    EVP_PKEY_free(g->key);
}

/* Encode a CBOR map (the body) without the ABI frame header. */
static void encode_body(cbor_item_t *m, struct vtsm_buf *out)
{
    struct vtsm_buf frame = {0};
    assert_int_equal(vtsm_abi_encode(m, &frame), VTSM_OK);
    assert_int_equal(vtsm_buf_set(out, frame.data + VTSM_ABI_FRAME_HDR_SIZE,
                                  frame.len - VTSM_ABI_FRAME_HDR_SIZE),
                     VTSM_OK);
    vtsm_buf_free(&frame);
}

/* body = {gop, tvm, seq, ? dev, ? tdi} */
static cbor_item_t *body_map(unsigned gop, uint64_t tvm, uint64_t seq, const char *dev, int64_t tdi)
{
    cbor_item_t *m = vtsm_abi_map_new();
    assert_non_null(m);
    assert_int_equal(vtsm_abi_put_uint(m, VTSM_ABI_K_GOP, gop), VTSM_OK);
    assert_int_equal(vtsm_abi_put_uint(m, VTSM_ABI_K_TVM, tvm), VTSM_OK);
    assert_int_equal(vtsm_abi_put_uint(m, VTSM_ABI_K_SEQ, seq), VTSM_OK);
    if (dev)
        assert_int_equal(vtsm_abi_put_tstr(m, VTSM_ABI_K_DEV, dev), VTSM_OK);
    if (tdi >= 0)
        assert_int_equal(vtsm_abi_put_uint(m, VTSM_ABI_K_TDI, (uint64_t)tdi), VTSM_OK);
    return m;
}

/* An ACCEPT body with the three digests of what the guest verified (len bytes each). */
static cbor_item_t *accept_map(uint64_t tvm, uint64_t seq, const char *dev, int64_t tdi, size_t len)
{
    uint8_t d[49];
    cbor_item_t *m = body_map(VTSM_ABI_GOP_ACCEPT, tvm, seq, dev, tdi);
    memset(d, 0xD1, sizeof(d));
    assert_true(len <= sizeof(d));
    assert_int_equal(vtsm_abi_put_bytes(m, VTSM_ABI_K_REPORT_DIGEST, d, len), VTSM_OK);
    assert_int_equal(vtsm_abi_put_bytes(m, VTSM_ABI_K_MEASUREMENTS_DIGEST, d, len), VTSM_OK);
    assert_int_equal(vtsm_abi_put_bytes(m, VTSM_ABI_K_LOCK_NONCE_DIGEST, d, len), VTSM_OK);
    return m;
}

static void sign(const struct guest *g, const uint8_t *body, size_t len, uint8_t sig[64])
{
    static const char prefix[] = VTSM_ABI_GUEST_SIG_PREFIX;
    struct vtsm_buf msg = {0};
    assert_int_equal(sizeof(prefix) - 1, 21);
    assert_int_equal(vtsm_buf_append(&msg, prefix, sizeof(prefix) - 1), VTSM_OK);
    assert_int_equal(vtsm_buf_append(&msg, body, len), VTSM_OK);
    assert_int_equal(
        vtsm_ecdsa_sign(g->key, VTSM_ASYM_ECDSA_P256, VTSM_HASH_SHA256, msg.data, msg.len, sig),
        VTSM_OK);
    vtsm_buf_free(&msg);
}

/* A signed request: body bytes (from map m, released) and sig. */
struct req {
    struct vtsm_buf body;
    uint8_t sig[64];
};

static void make_req(struct req *q, const struct guest *g, cbor_item_t *m)
{
    memset(q, 0, sizeof(*q));
    encode_body(m, &q->body);
    cbor_decref(&m);
    sign(g, q->body.data, q->body.len, q->sig);
}

static void free_req(struct req *q)
{
    vtsm_buf_free(&q->body);
}

static vtsm_status verify(struct tsm_tvm_registry *r, uint64_t tvm, const struct req *q,
                          struct vtsm_abi_guest_body *out)
{
    return tsm_tvm_verify_request(r, tvm, q->body.data, q->body.len, q->sig, sizeof(q->sig), out);
}

/* Two registered TVMs, A (1) and B (2). */
struct fix {
    struct tsm_tvm_registry reg;
    struct guest a, b;
    uint32_t ida, idb;
};

static int fix_setup(void **state)
{
    static struct fix f;
    const struct tsm_tvm *v;

    memset(&f, 0, sizeof(f));
    tsm_tvm_registry_init(&f.reg);
    guest_new(&f.a);
    guest_new(&f.b);
    assert_int_equal(tsm_tvm_create(&f.reg, "tvm-a", f.a.pub, sizeof(f.a.pub), &v), VTSM_OK);
    f.ida = v->id;
    assert_int_equal(tsm_tvm_create(&f.reg, NULL, f.b.pub, sizeof(f.b.pub), &v), VTSM_OK);
    f.idb = v->id;
    *state = &f;
    return 0;
}

static int fix_teardown(void **state)
{
    struct fix *f = *state;
    tsm_tvm_registry_fini(&f->reg);
    guest_free(&f->a);
    guest_free(&f->b);
    return 0;
}

static uint64_t last_seq(struct fix *f, uint32_t id)
{
    const struct tsm_tvm *v = tsm_tvm_find(&f->reg, id);
    assert_non_null(v);
    return v->last_seq;
}

/* Accept one good LIST at seq for A (proves seq was not consumed by a failure). */
static void good_list(struct fix *f, uint64_t seq)
{
    struct req q;
    struct vtsm_abi_guest_body out;
    make_req(&q, &f->a, body_map(VTSM_ABI_GOP_LIST, f->ida, seq, NULL, -1));
    EXPECT(verify(&f->reg, f->ida, &q, &out), VTSM_OK, VTSM_RULE_NONE);
    assert_int_equal(out.seq, seq);
    assert_int_equal(last_seq(f, f->ida), seq);
    free_req(&q);
}

/* ---- failure cases: TVM_CREATE ---- */

static void test_create_refuses_bad_keys(void **state)
{
    struct fix *f = *state;
    uint8_t k[TSM_TVM_KEY_SIZE];
    char name[TSM_TVM_NAME_MAX + 2];
    const struct tsm_tvm *v = (const struct tsm_tvm *)1;

    memcpy(k, f->a.pub, sizeof(k));
    EXPECT(tsm_tvm_create(&f->reg, NULL, k, 64, &v), VTSM_E_ABI_ARG, VTSM_RULE_TVM_1);
    assert_null(v);
    EXPECT(tsm_tvm_create(&f->reg, NULL, k, 0, NULL), VTSM_E_ABI_ARG, VTSM_RULE_TVM_1);
    k[0] = 0x02; /* compressed form is not accepted */
    EXPECT(tsm_tvm_create(&f->reg, NULL, k, sizeof(k), NULL), VTSM_E_ABI_ARG, VTSM_RULE_TVM_1);
    /* (1, 1) is not on P-256 */
    memset(k, 0, sizeof(k));
    k[0] = 0x04;
    k[32] = 1;
    k[64] = 1;
    EXPECT(tsm_tvm_create(&f->reg, NULL, k, sizeof(k), NULL), VTSM_E_ABI_ARG, VTSM_RULE_TVM_1);
    /* a point on the curve with Y flipped to the wrong parity is off the curve */
    memcpy(k, f->a.pub, sizeof(k));
    k[64] ^= 0x01;
    EXPECT(tsm_tvm_create(&f->reg, NULL, k, sizeof(k), NULL), VTSM_E_ABI_ARG, VTSM_RULE_TVM_1);
    /* one TVM per key */
    EXPECT(tsm_tvm_create(&f->reg, NULL, f->a.pub, sizeof(f->a.pub), NULL), VTSM_E_EXISTS,
           VTSM_RULE_TVM_3);
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    struct guest g;
    guest_new(&g);
    EXPECT_DETAIL(tsm_tvm_create(&f->reg, name, g.pub, sizeof(g.pub), NULL), VTSM_E_ABI_ARG,
                  VTSM_RULE_ABI_8, "name");
    guest_free(&g);
    assert_int_equal(f->reg.count, 2);
    assert_null(tsm_tvm_find(&f->reg, 3));
}

/* ---- failure cases: GUEST_REQUEST ---- */

static void test_unknown_tvm(void **state)
{
    struct fix *f = *state;
    struct req q;
    struct vtsm_abi_guest_body out;

    make_req(&q, &f->a, body_map(VTSM_ABI_GOP_LIST, 77, 1, NULL, -1));
    EXPECT(verify(&f->reg, 77, &q, &out), VTSM_E_NOT_FOUND, VTSM_RULE_TVM_4);
    EXPECT(verify(&f->reg, 0, &q, &out), VTSM_E_NOT_FOUND, VTSM_RULE_TVM_4);
    EXPECT(verify(&f->reg, (1ull << 32) + f->ida, &q, &out), VTSM_E_NOT_FOUND, VTSM_RULE_TVM_4);
    free_req(&q);
}

static void test_bad_signature(void **state)
{
    struct fix *f = *state;
    struct req q;
    struct vtsm_abi_guest_body out;

    make_req(&q, &f->a, body_map(VTSM_ABI_GOP_LIST, f->ida, 1, NULL, -1));
    q.sig[10] ^= 0x01;
    EXPECT(verify(&f->reg, f->ida, &q, &out), VTSM_E_AUTH, VTSM_RULE_GUEST_1);
    q.sig[10] ^= 0x01;
    /* the body is what is signed: one changed byte of it breaks the signature */
    q.body.data[q.body.len - 1] ^= 0x01; /* seq 1 -> 0 */
    EXPECT(verify(&f->reg, f->ida, &q, &out), VTSM_E_AUTH, VTSM_RULE_GUEST_1);
    q.body.data[q.body.len - 1] ^= 0x01;
    /* wrong signature length, and none */
    EXPECT(tsm_tvm_verify_request(&f->reg, f->ida, q.body.data, q.body.len, q.sig, 63, &out),
           VTSM_E_AUTH, VTSM_RULE_GUEST_1);
    EXPECT(tsm_tvm_verify_request(&f->reg, f->ida, q.body.data, q.body.len, NULL, 0, &out),
           VTSM_E_AUTH, VTSM_RULE_GUEST_1);
    /* a signature over the body without the domain prefix */
    assert_int_equal(vtsm_ecdsa_sign(f->a.key, VTSM_ASYM_ECDSA_P256, VTSM_HASH_SHA256, q.body.data,
                                     q.body.len, q.sig),
                     VTSM_OK);
    EXPECT(verify(&f->reg, f->ida, &q, &out), VTSM_E_AUTH, VTSM_RULE_GUEST_1);
    assert_int_equal(out.seq, 0);
    assert_int_equal(last_seq(f, f->ida), 0);
    free_req(&q);
    good_list(f, 1);
}

/* B's key signing a request the host relays as A's: GUEST.1 (and never reaches GUEST.3). */
static void test_signature_by_other_tvm(void **state)
{
    struct fix *f = *state;
    struct req q;
    struct vtsm_abi_guest_body out;

    make_req(&q, &f->b, body_map(VTSM_ABI_GOP_LIST, f->ida, 1, NULL, -1));
    EXPECT(verify(&f->reg, f->ida, &q, &out), VTSM_E_AUTH, VTSM_RULE_GUEST_1);
    free_req(&q);
    make_req(&q, &f->b, body_map(VTSM_ABI_GOP_LIST, f->idb, 1, NULL, -1));
    EXPECT(verify(&f->reg, f->ida, &q, &out), VTSM_E_AUTH, VTSM_RULE_GUEST_1);
    free_req(&q);
    assert_int_equal(last_seq(f, f->ida), 0);
    assert_int_equal(last_seq(f, f->idb), 0);
}

/* A signs a body naming B and sends it under its own envelope: GUEST.3. */
static void test_body_tvm_mismatch(void **state)
{
    struct fix *f = *state;
    struct req q;
    struct vtsm_abi_guest_body out;

    make_req(&q, &f->a, body_map(VTSM_ABI_GOP_LIST, f->idb, 5, NULL, -1));
    EXPECT(verify(&f->reg, f->ida, &q, &out), VTSM_E_AUTH, VTSM_RULE_GUEST_3);
    free_req(&q);
    assert_int_equal(last_seq(f, f->ida), 0);
    assert_int_equal(last_seq(f, f->idb), 0);
    good_list(f, 5); /* seq 5 was not consumed */
}

static void test_replay_and_reorder(void **state)
{
    struct fix *f = *state;
    struct req q1, q2, q3, q0;
    struct vtsm_abi_guest_body out;

    make_req(&q1, &f->a, body_map(VTSM_ABI_GOP_LIST, f->ida, 1, NULL, -1));
    make_req(&q2, &f->a, body_map(VTSM_ABI_GOP_LIST, f->ida, 2, NULL, -1));
    make_req(&q3, &f->a, body_map(VTSM_ABI_GOP_LIST, f->ida, 3, NULL, -1));
    make_req(&q0, &f->a, body_map(VTSM_ABI_GOP_LIST, f->ida, 0, NULL, -1));
    /* seq 0 is never fresh */
    EXPECT(verify(&f->reg, f->ida, &q0, &out), VTSM_E_REPLAY, VTSM_RULE_GUEST_2);
    /* the host delays 1 and 2 and delivers 3 first */
    EXPECT(verify(&f->reg, f->ida, &q3, &out), VTSM_OK, VTSM_RULE_NONE);
    EXPECT(verify(&f->reg, f->ida, &q1, &out), VTSM_E_REPLAY, VTSM_RULE_GUEST_2);
    EXPECT(verify(&f->reg, f->ida, &q2, &out), VTSM_E_REPLAY, VTSM_RULE_GUEST_2);
    /* ... and replays 3 */
    EXPECT(verify(&f->reg, f->ida, &q3, &out), VTSM_E_REPLAY, VTSM_RULE_GUEST_2);
    assert_int_equal(last_seq(f, f->ida), 3);
    /* B's sequence is its own */
    free_req(&q1);
    make_req(&q1, &f->b, body_map(VTSM_ABI_GOP_LIST, f->idb, 1, NULL, -1));
    EXPECT(verify(&f->reg, f->idb, &q1, &out), VTSM_OK, VTSM_RULE_NONE);
    free_req(&q0);
    free_req(&q1);
    free_req(&q2);
    free_req(&q3);
}

/* Signed, but the body is not a valid bounded CBOR map: abi_malformed. */
static void test_malformed_body(void **state)
{
    struct fix *f = *state;
    static const uint8_t bodies[][12] = {
        {0xff},                                     /* break byte, not an item */
        {0x81, 0x01},                               /* an array, not a map */
        {0xa1, 0x61, 0x61, 0x01, 0x00},             /* {"a": 1} followed by a trailing byte */
        {0xa2, 0x61, 0x61, 0x01, 0x61, 0x61, 0x02}, /* duplicate key */
        {0xbf, 0x61, 0x61, 0x01, 0xff},             /* indefinite-length map */
        {0xa1, 0x01, 0x01},                         /* integer key */
        {0xa1, 0x61, 0x61},                         /* truncated */
    };
    static const size_t lens[] = {1, 2, 5, 7, 5, 3, 3};
    struct vtsm_abi_guest_body out;
    uint8_t sig[64];

    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        sign(&f->a, bodies[i], lens[i], sig);
        EXPECT_DETAIL(tsm_tvm_verify_request(&f->reg, f->ida, bodies[i], lens[i], sig, 64, &out),
                      VTSM_E_ABI_MALFORMED, VTSM_RULE_ABI_7, "guest request body");
    }
    sign(&f->a, bodies[0], 0, sig);
    EXPECT(tsm_tvm_verify_request(&f->reg, f->ida, NULL, 0, sig, 64, &out), VTSM_E_ABI_MALFORMED,
           VTSM_RULE_ABI_7);
    assert_int_equal(last_seq(f, f->ida), 0);
}

/* Signed, valid CBOR, but keys or values docs/abi.md does not allow: abi_arg. */
static void test_body_keys_and_values(void **state)
{
    struct fix *f = *state;
    struct vtsm_abi_guest_body out;
    struct req q;
    cbor_item_t *m;
    uint8_t n31[31] = {0}, n32[32] = {0};
    char reason[TSM_TDI_REASON_MAX + 2];

/* refused with abi_arg under rule; needle tells apart the ABI.8 causes (NULL: the rule does) */
#define REFUSE(map, rule, needle)                                                                  \
    do {                                                                                           \
        make_req(&q, &f->a, (map));                                                                \
        EXPECT_DETAIL(verify(&f->reg, f->ida, &q, &out), VTSM_E_ABI_ARG, (rule), (needle));        \
        free_req(&q);                                                                              \
    } while (0)

    /* unknown key; "op" / "id" are not body keys either */
    m = body_map(VTSM_ABI_GOP_LIST, f->ida, 1, NULL, -1);
    assert_int_equal(vtsm_abi_put_uint(m, "extra", 1), VTSM_OK);
    REFUSE(m, VTSM_RULE_ABI_9, "unknown key 'extra'");
    m = body_map(VTSM_ABI_GOP_LIST, f->ida, 1, NULL, -1);
    assert_int_equal(vtsm_abi_put_uint(m, "op", VTSM_ABI_OP_GUEST_REQUEST), VTSM_OK);
    REFUSE(m, VTSM_RULE_ABI_9, "unknown key 'op'");
    /* missing and mistyped fields */
    m = vtsm_abi_map_new();
    assert_int_equal(vtsm_abi_put_uint(m, VTSM_ABI_K_TVM, f->ida), VTSM_OK);
    assert_int_equal(vtsm_abi_put_uint(m, VTSM_ABI_K_SEQ, 1), VTSM_OK);
    REFUSE(m, VTSM_RULE_ABI_8, "gop");
    m = body_map(VTSM_ABI_GOP_LIST, f->ida, 1, NULL, -1);
    assert_int_equal(vtsm_abi_put_tstr(m, VTSM_ABI_K_SEQ, "1"), VTSM_OK);
    REFUSE(m, VTSM_RULE_ABI_8, "seq");
    /* unknown operation */
    REFUSE(body_map(0x4F, f->ida, 1, NULL, -1), VTSM_RULE_ABI_8, "gop 0x4f");
    /* a scope that is not the operation's (GUEST.5): INFO is read-only, not STATE_CHANGE */
    m = body_map(VTSM_ABI_GOP_INFO, f->ida, 1, "dev0", 0);
    assert_int_equal(vtsm_abi_put_uint(m, VTSM_ABI_K_SCOPE, VTSM_ABI_SCOPE_STATE_CHANGE), VTSM_OK);
    REFUSE(m, VTSM_RULE_GUEST_5, "scope 1");
    m = body_map(VTSM_ABI_GOP_DEBUG_WRITE, f->ida, 1, "dev0", 0);
    assert_int_equal(vtsm_abi_put_uint(m, VTSM_ABI_K_SCOPE, VTSM_ABI_SCOPE_DEBUG_READ), VTSM_OK);
    REFUSE(m, VTSM_RULE_GUEST_5, "DEBUG_WRITE is of scope 3");
    /* keys an operation does not take, or lacks (GUEST.4) */
    REFUSE(body_map(VTSM_ABI_GOP_LIST, f->ida, 1, "dev0", 0), VTSM_RULE_GUEST_4, NULL);
    REFUSE(body_map(VTSM_ABI_GOP_INFO, f->ida, 1, "dev0", -1), VTSM_RULE_GUEST_4, NULL);
    REFUSE(accept_map(f->ida, 1, NULL, 0, 32), VTSM_RULE_GUEST_4, NULL);
    m = accept_map(f->ida, 1, "dev0", 0, 32);
    assert_int_equal(vtsm_abi_put_bytes(m, VTSM_ABI_K_NONCE, n32, 32), VTSM_OK);
    REFUSE(m, VTSM_RULE_GUEST_4, "takes no nonce");
    /* ACCEPT carries what the guest verified; nothing else does */
    REFUSE(body_map(VTSM_ABI_GOP_ACCEPT, f->ida, 1, "dev0", 0), VTSM_RULE_GUEST_4,
           "needs report_digest");
    m = body_map(VTSM_ABI_GOP_ACCEPT, f->ida, 1, "dev0", 0);
    assert_int_equal(vtsm_abi_put_bytes(m, VTSM_ABI_K_REPORT_DIGEST, n32, 32), VTSM_OK);
    assert_int_equal(vtsm_abi_put_bytes(m, VTSM_ABI_K_MEASUREMENTS_DIGEST, n32, 32), VTSM_OK);
    REFUSE(m, VTSM_RULE_GUEST_4, "needs report_digest");
    m = body_map(VTSM_ABI_GOP_INFO, f->ida, 1, "dev0", 0);
    assert_int_equal(vtsm_abi_put_bytes(m, VTSM_ABI_K_LOCK_NONCE_DIGEST, n32, 32), VTSM_OK);
    REFUSE(m, VTSM_RULE_GUEST_4, "takes no report_digest");
    REFUSE(accept_map(f->ida, 1, "dev0", 0, 49), VTSM_RULE_ABI_8, "at most 48");
    m = body_map(VTSM_ABI_GOP_INFO, f->ida, 1, "dev0", 0);
    assert_int_equal(vtsm_abi_put_tstr(m, VTSM_ABI_K_REASON, "no"), VTSM_OK);
    REFUSE(m, VTSM_RULE_GUEST_4, "takes no reason");
    /* values out of their bounds */
    m = body_map(VTSM_ABI_GOP_INFO, f->ida, 1, "dev0", 0);
    assert_int_equal(vtsm_abi_put_bytes(m, VTSM_ABI_K_NONCE, n31, 31), VTSM_OK);
    REFUSE(m, VTSM_RULE_ABI_8, "nonce of 31 bytes");
    REFUSE(body_map(VTSM_ABI_GOP_INFO, f->ida, 1, "bad dev!", 0), VTSM_RULE_ABI_8,
           "guest request body");
    REFUSE(body_map(VTSM_ABI_GOP_INFO, f->ida, 1, "dev0", 1ll << 32), VTSM_RULE_ABI_8, "tdi");
    REFUSE(body_map(VTSM_ABI_GOP_INFO, 1ull << 32, 1, "dev0", 0), VTSM_RULE_ABI_8, "tvm");
    memset(reason, 'r', sizeof(reason) - 1);
    reason[sizeof(reason) - 1] = '\0';
    m = body_map(VTSM_ABI_GOP_REJECT, f->ida, 1, "dev0", 0);
    assert_int_equal(vtsm_abi_put_tstr(m, VTSM_ABI_K_REASON, reason), VTSM_OK);
    REFUSE(m, VTSM_RULE_ABI_8, "reason");
#undef REFUSE
    assert_int_equal(last_seq(f, f->ida), 0);
    good_list(f, 1);
}

/* ---- good requests ---- */

static void test_good_requests(void **state)
{
    struct fix *f = *state;
    struct vtsm_abi_guest_body out;
    struct req q;
    cbor_item_t *m;
    uint8_t nonce[32];

    for (unsigned i = 0; i < sizeof(nonce); i++)
        nonce[i] = (uint8_t)(0xC0 + i);

    /* LIST */
    make_req(&q, &f->a, body_map(VTSM_ABI_GOP_LIST, f->ida, 1, NULL, -1));
    EXPECT(verify(&f->reg, f->ida, &q, &out), VTSM_OK, VTSM_RULE_NONE);
    assert_int_equal(out.gop, VTSM_ABI_GOP_LIST);
    assert_int_equal(out.tvm, f->ida);
    assert_false(out.has_dev || out.has_tdi || out.has_nonce || out.has_reason);
    free_req(&q);

    /* INFO with a nonce; seq may jump */
    m = body_map(VTSM_ABI_GOP_INFO, f->ida, 10, "0000:01:00.0", 3);
    assert_int_equal(vtsm_abi_put_bytes(m, VTSM_ABI_K_NONCE, nonce, 32), VTSM_OK);
    make_req(&q, &f->a, m);
    EXPECT(verify(&f->reg, f->ida, &q, &out), VTSM_OK, VTSM_RULE_NONE);
    assert_int_equal(out.gop, VTSM_ABI_GOP_INFO);
    assert_int_equal(out.seq, 10);
    assert_true(out.has_dev && out.has_tdi && out.has_nonce && !out.has_reason);
    assert_string_equal(out.dev, "0000:01:00.0");
    assert_int_equal(out.tdi, 3);
    assert_memory_equal(out.nonce, nonce, 32);
    free_req(&q);

    /* ACCEPT, and a tdi beyond the TDISP RID is still a well-formed body */
    make_req(&q, &f->a, accept_map(f->ida, 11, "dev0", 0xFFFFFFFFll, 48));
    EXPECT(verify(&f->reg, f->ida, &q, &out), VTSM_OK, VTSM_RULE_NONE);
    assert_int_equal(out.gop, VTSM_ABI_GOP_ACCEPT);
    assert_int_equal(out.tdi, 0xFFFFFFFFu);
    assert_true(out.has_binding);
    assert_int_equal(out.report_digest_len, 48);
    assert_int_equal(out.meas_digest_len, 48);
    assert_int_equal(out.lock_digest_len, 48);
    assert_int_equal(out.lock_digest[47], 0xD1);
    free_req(&q);

    /* REJECT with and without a reason */
    m = body_map(VTSM_ABI_GOP_REJECT, f->ida, 12, "dev0", 1);
    assert_int_equal(vtsm_abi_put_tstr(m, VTSM_ABI_K_REASON, "measurement 3 unknown"), VTSM_OK);
    make_req(&q, &f->a, m);
    EXPECT(verify(&f->reg, f->ida, &q, &out), VTSM_OK, VTSM_RULE_NONE);
    assert_true(out.has_reason);
    assert_string_equal(out.reason, "measurement 3 unknown");
    free_req(&q);
    make_req(&q, &f->a, body_map(VTSM_ABI_GOP_REJECT, f->ida, 13, "dev0", 1));
    EXPECT(verify(&f->reg, f->ida, &q, &out), VTSM_OK, VTSM_RULE_NONE);
    assert_false(out.has_reason);
    free_req(&q);

    const struct tsm_tvm *v = tsm_tvm_find(&f->reg, f->ida);
    assert_int_equal(v->last_seq, 13);
    assert_int_equal(v->requests, 5);
}

static void test_identity_and_numbers(void **state)
{
    struct fix *f = *state;
    uint8_t id[32];
    const struct tsm_tvm *v = tsm_tvm_find(&f->reg, f->ida);

    assert_int_equal(f->ida, 1);
    assert_int_equal(f->idb, 2);
    assert_non_null(v);
    assert_string_equal(v->name, "tvm-a");
    assert_string_equal(tsm_tvm_find(&f->reg, f->idb)->name, "");
    assert_int_equal(vtsm_hash(VTSM_HASH_SHA256, f->a.pub, 65, id), VTSM_OK);
    assert_memory_equal(v->identity, id, 32);
    assert_null(tsm_tvm_find(&f->reg, 0));
    assert_null(tsm_tvm_find(&f->reg, 3));
}

static void test_destroy(void **state)
{
    struct fix *f = *state;
    struct req q;
    struct vtsm_abi_guest_body out;
    struct guest c;
    const struct tsm_tvm *v;

    EXPECT(tsm_tvm_destroy(&f->reg, f->ida, 2), VTSM_E_STATE, VTSM_RULE_TVM_2);
    assert_non_null(tsm_tvm_find(&f->reg, f->ida));
    EXPECT(tsm_tvm_destroy(&f->reg, 99, 0), VTSM_E_NOT_FOUND, VTSM_RULE_TVM_4);
    assert_int_equal(f->reg.count, 2);
    EXPECT(tsm_tvm_destroy(&f->reg, f->ida, 0), VTSM_OK, VTSM_RULE_NONE);
    assert_null(tsm_tvm_find(&f->reg, f->ida));
    assert_int_equal(f->reg.count, 1);
    /* its requests are no longer accepted */
    make_req(&q, &f->a, body_map(VTSM_ABI_GOP_LIST, f->ida, 1, NULL, -1));
    EXPECT(verify(&f->reg, f->ida, &q, &out), VTSM_E_NOT_FOUND, VTSM_RULE_TVM_4);
    free_req(&q);
    /* numbers are not reused; the same key may register again as a new TVM */
    guest_new(&c);
    EXPECT(tsm_tvm_create(&f->reg, "c", c.pub, sizeof(c.pub), &v), VTSM_OK, VTSM_RULE_NONE);
    assert_int_equal(v->id, 3);
    EXPECT(tsm_tvm_create(&f->reg, "a again", f->a.pub, sizeof(f->a.pub), &v), VTSM_OK,
           VTSM_RULE_NONE);
    assert_int_equal(v->id, 4);
    assert_int_equal(v->last_seq, 0);
    guest_free(&c);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fix_setup, fix_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_create_refuses_bad_keys),
        T(test_unknown_tvm),
        T(test_bad_signature),
        T(test_signature_by_other_tvm),
        T(test_body_tvm_mismatch),
        T(test_replay_and_reorder),
        T(test_malformed_body),
        T(test_body_keys_and_values),
        T(test_good_requests),
        T(test_identity_and_numbers),
        T(test_destroy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
