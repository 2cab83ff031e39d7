/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * proto/vtsm_cose: COSE_Sign1 evidence tokens. The Sig_structure encoding and the raw
 * r||s signature are checked against the COSE WG example sign1-tests/sign-pass-03 (the
 * RFC 9052 C.2.1 ES256 example without its tag); then every refusal. Failure cases first.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vtsm_test.h"

#include <cbor.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "vtsm_buf.h"
#include "vtsm_cbor.h"
#include "vtsm_cose.h"
#include "vtsm_crypto.h"

/* COSE WG Examples sign1-tests/sign-pass-03.json: key "11", P-256. */
static const char ex_x[] = "bac5b11cad8f99f9c72b05cf4b9e26d244dc189f745228255a219a86d6a09eff";
static const char ex_y[] = "20138bf82dc1b6d562be0fa54ab7804a3a64b6d72ccfed6b6fb6ed28bbfc117e";
static const char ex_tbs[] = "846a5369676e61747572653143a101264054546869732069732074686520636f6e"
                             "74656e742e";
static const char ex_token[] =
    "8443a10126a10442313154546869732069732074686520636f6e74656e742e5840eae868ecc176883766c5dc5b"
    "a5b8dca25dab3c2e56a551ce5705b793914348e19f43d6c6ba654472da301b645b293c9ba939295b97c4bdb847"
    "782bff384c5794";

struct fixture {
    EVP_PKEY *p256, *p384, *ex_pub;
};

static size_t unhex(uint8_t *out, size_t cap, const char *hex)
{
    long n = vtsm_unhex(out, cap, hex);
    assert_true(n >= 0);
    return (size_t)n;
}

static EVP_PKEY *pub_from_xy(const char *group, const char *xhex, const char *yhex)
{
    uint8_t pt[1 + 2 * 48];
    size_t n = 1;
    OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *k = NULL;

    pt[0] = 0x04;
    n += unhex(pt + n, sizeof(pt) - n, xhex);
    n += unhex(pt + n, sizeof(pt) - n, yhex);
    assert_non_null(b);
    assert_non_null(ctx);
    assert_int_equal(OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, group, 0), 1);
    assert_int_equal(OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, pt, n), 1);
    params = OSSL_PARAM_BLD_to_param(b);
    assert_non_null(params);
    assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
    assert_int_equal(EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY, params), 1);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(b);
    EVP_PKEY_CTX_free(ctx);
    return k;
}

static int setup(void **state)
{
    static struct fixture f;

    f.p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    f.p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    f.ex_pub = pub_from_xy("P-256", ex_x, ex_y);
    if (!f.p256 || !f.p384 || !f.ex_pub)
        return -1;
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    EVP_PKEY_free(f->p256);
    EVP_PKEY_free(f->p384);
    EVP_PKEY_free(f->ex_pub);
    return 0;
}

/* A payload map: {"nonce": h'00..1f', 1: -2, "tdi": {"state": 2}} */
static cbor_item_t *sample_payload(void)
{
    uint8_t nonce[32];
    cbor_item_t *m = cbor_new_definite_map(3), *inner = cbor_new_definite_map(1);

    for (unsigned i = 0; i < sizeof(nonce); i++)
        nonce[i] = (uint8_t)i;
    assert_true(cbor_map_add(inner, (struct cbor_pair){cbor_move(cbor_build_string("state")),
                                                       cbor_move(cbor_build_uint8(2))}));
    assert_true(cbor_map_add(m, (struct cbor_pair){cbor_move(cbor_build_string("nonce")),
                                                   cbor_move(cbor_build_bytestring(nonce, 32))}));
    assert_true(cbor_map_add(
        m, (struct cbor_pair){cbor_move(cbor_build_uint8(1)), cbor_move(cbor_build_negint8(1))}));
    assert_true(
        cbor_map_add(m, (struct cbor_pair){cbor_move(cbor_build_string("tdi")), cbor_move(inner)}));
    return m;
}

/* ---- a small CBOR writer for hand-made tokens ---- */
struct tok {
    uint8_t b[2048];
    size_t n;
};

static void t_raw(struct tok *t, const void *p, size_t n)
{
    assert_true(t->n + n <= sizeof(t->b));
    if (n)
        memcpy(t->b + t->n, p, n);
    t->n += n;
}

static void t_head(struct tok *t, unsigned major, uint64_t v)
{
    struct vtsm_buf h = {0};
    assert_int_equal(vtsm_cbor_put_head(&h, major, v), VTSM_OK);
    t_raw(t, h.data, h.len);
    vtsm_buf_free(&h);
}

static void t_bstr(struct tok *t, const void *p, size_t n)
{
    t_head(t, 2, n);
    t_raw(t, p, n);
}

/*
 * A token with whatever headers and payload bytes, signed correctly over its own
 * protected bytes and payload (sig_len lets a test cut the signature short).
 */
static void make_token(struct tok *t, EVP_PKEY *key, const uint8_t *prot, size_t prot_len,
                       const uint8_t *unprot, size_t unprot_len, const uint8_t *payload,
                       size_t payload_len, bool tagged, size_t sig_len)
{
    struct vtsm_buf tbs = {0};
    uint8_t sig[VTSM_SIG_MAX];
    enum vtsm_asym_alg a = vtsm_pkey_asym(key);
    enum vtsm_hash_alg h = a == VTSM_ASYM_ECDSA_P256 ? VTSM_HASH_SHA256 : VTSM_HASH_SHA384;

    assert_int_equal(vtsm_cose_sig_structure(prot, prot_len, payload, payload_len, &tbs), VTSM_OK);
    assert_int_equal(vtsm_ecdsa_sign(key, a, h, tbs.data, tbs.len, sig), VTSM_OK);
    vtsm_buf_free(&tbs);
    t->n = 0;
    if (tagged)
        t_head(t, 6, 18);
    t_head(t, 4, 4);
    t_bstr(t, prot, prot_len);
    t_raw(t, unprot, unprot_len);
    t_bstr(t, payload, payload_len);
    t_bstr(t, sig, sig_len);
}

static const uint8_t prot_es256[] = {0xa1, 0x01, 0x26};
static const uint8_t prot_es384[] = {0xa1, 0x01, 0x38, 0x22};
static const uint8_t unprot_kid[] = {0xa1, 0x04, 0x42, 0x31, 0x31};
static const uint8_t map_payload[] = {0xa1, 0x01, 0x02};

static void sign_sample(EVP_PKEY *key, struct vtsm_buf *out)
{
    cbor_item_t *p = sample_payload();
    assert_int_equal(vtsm_cose_sign1(key, p, (const uint8_t *)"tsm1", 4, out), VTSM_OK);
    cbor_decref(&p);
}

/* ---- failure cases ---- */

static void test_wrong_tag_and_array_length(void **state)
{
    struct fixture *f = *state;
    struct vtsm_buf tok = {0};
    struct tok t;

    sign_sample(f->p256, &tok);
    assert_int_equal(tok.data[0], 0xd2);
    tok.data[0] = 0xd1; /* tag 17, COSE_Mac0 */
    EXPECT_DETAIL(vtsm_cose_verify1(f->p256, tok.data, tok.len, NULL), VTSM_E_PEER_MALFORMED,
                  VTSM_RULE_NONE, "tag 17, COSE_Sign1 is tag 18");
    tok.data[0] = 0xd2;
    tok.data[1] = 0x83; /* the signature becomes a trailing item */
    EXPECT_DETAIL(vtsm_cose_verify1(f->p256, tok.data, tok.len, NULL), VTSM_E_PEER_MALFORMED,
                  VTSM_RULE_NONE, "after the COSE_Sign1");
    EXPECT_DETAIL(vtsm_cose_verify1(f->p256, tok.data + 1, tok.len - 1, NULL),
                  VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE, "after the COSE_Sign1");

    /* 3 elements (no signature) and 5 (an extra one) */
    make_token(&t, f->p256, prot_es256, 3, unprot_kid, 5, map_payload, 3, true, 64);
    t.b[1] = 0x83;
    size_t sig_start = t.n - 66;
    EXPECT_DETAIL(vtsm_cose_verify1(f->p256, t.b, sig_start, NULL), VTSM_E_PEER_MALFORMED,
                  VTSM_RULE_NONE, "expected a 4-element array, got major 4 with 3");
    t.b[1] = 0x85;
    t.b[t.n++] = 0xf6; /* null */
    EXPECT_DETAIL(vtsm_cose_verify1(f->p256, t.b, t.n, NULL), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "with 5");
    /* not an array at all */
    static const uint8_t map[] = {0xd2, 0xa0};
    EXPECT_DETAIL(vtsm_cose_verify1(f->p256, map, sizeof(map), NULL), VTSM_E_PEER_MALFORMED,
                  VTSM_RULE_NONE, "got major 5");
    vtsm_buf_free(&tok);
}

static void test_not_well_formed(void **state)
{
    struct fixture *f = *state;
    struct vtsm_buf tok = {0};
    uint8_t deep[40];
    static const uint8_t indef[] = {0xd2, 0x9f, 0x40, 0xa0, 0x40, 0x40, 0xff};
    static const uint8_t huge[] = {0xd2, 0x9a, 0xff, 0xff, 0xff, 0xff, 0x40};
    static const uint8_t huge_map[] = {0xbb, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00};
    static const uint8_t long_str[] = {0x84, 0x5a, 0x00, 0x01, 0x00, 0x00, 0x00};
    static const uint8_t reserved_ai[] = {0x84, 0x1c, 0x40, 0x40, 0x40};
    static const uint8_t bad_simple[] = {0x84, 0xf8, 0x10, 0x40, 0x40, 0x40};

    sign_sample(f->p256, &tok);
    EXPECT_DETAIL(vtsm_cose_verify1(f->p256, tok.data, tok.len - 1, NULL), VTSM_E_PEER_MALFORMED,
                  VTSM_RULE_NONE, "left");
    EXPECT_DETAIL(vtsm_cose_verify1(f->p256, NULL, 0, NULL), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "missing");
    EXPECT_DETAIL(vtsm_cose_verify1(f->p256, indef, sizeof(indef), NULL), VTSM_E_PEER_MALFORMED,
                  VTSM_RULE_NONE, "indefinite-length");
    EXPECT_DETAIL(vtsm_cose_verify1(f->p256, huge, sizeof(huge), NULL), VTSM_E_PEER_MALFORMED,
                  VTSM_RULE_NONE, "array of 4294967295 entries");
    EXPECT_DETAIL(vtsm_cose_verify1(f->p256, huge_map, sizeof(huge_map), NULL),
                  VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE, "map of 4294967296 entries");
    EXPECT_DETAIL(vtsm_cose_verify1(f->p256, long_str, sizeof(long_str), NULL),
                  VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE, "string of 65536 bytes");
    EXPECT_DETAIL(vtsm_cose_verify1(f->p256, reserved_ai, sizeof(reserved_ai), NULL),
                  VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE, "reserved additional information 28");
    EXPECT_DETAIL(vtsm_cose_verify1(f->p256, bad_simple, sizeof(bad_simple), NULL),
                  VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE, "simple value 16 in two-byte form");
    /* 18 nested arrays */
    memset(deep, 0x81, 18);
    deep[18] = 0x00;
    EXPECT_DETAIL(vtsm_cose_verify1(f->p256, deep, 19, NULL), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "nested deeper than 16");
    vtsm_buf_free(&tok);
}

static void test_header_rules(void **state)
{
    struct fixture *f = *state;
    struct tok t;
    static const uint8_t p_int[] = {0x01};
    static const uint8_t p_empty_map[] = {0xa0};
    static const uint8_t p_crit[] = {0xa2, 0x01, 0x26, 0x02, 0x81, 0x01};
    static const uint8_t p_text_alg[] = {0xa1, 0x01, 0x65, 'E', 'S', '2', '5', '6'};
    static const uint8_t p_twice[] = {0xa2, 0x01, 0x26, 0x01, 0x26};
    static const uint8_t p_text_label[] = {0xa1, 0x61, 'a', 0x26};
    static const uint8_t p_trailing[] = {0xa1, 0x01, 0x26, 0x00};
    static const uint8_t u_alg[] = {0xa1, 0x01, 0x26};
    static const uint8_t u_kid_twice[] = {0xa2, 0x04, 0x41, 0x31, 0x04, 0x41, 0x32};
    static const uint8_t u_kid_int[] = {0xa1, 0x04, 0x01};
    static const uint8_t u_array[] = {0x80};

    make_token(&t, f->p256, p_int, 1, unprot_kid, 5, map_payload, 3, true, 64);
    EXPECT_DETAIL(vtsm_cose_verify1(f->p256, t.b, t.n, NULL), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "protected header is not a map");
    make_token(&t, f->p256, NULL, 0, unprot_kid, 5, map_payload, 3, true, 64);
    EXPECT_DETAIL(vtsm_cose_verify1(f->p256, t.b, t.n, NULL), VTSM_E_PEER_ALGO, VTSM_RULE_NONE,
                  "empty protected");
    make_token(&t, f->p256, p_empty_map, 1, unprot_kid, 5, map_payload, 3, true, 64);
    EXPECT_DETAIL(vtsm_cose_verify1(f->p256, t.b, t.n, NULL), VTSM_E_PEER_ALGO, VTSM_RULE_NONE,
                  "no alg");
    make_token(&t, f->p256, p_crit, sizeof(p_crit), unprot_kid, 5, map_payload, 3, true, 64);
    EXPECT_DETAIL(vtsm_cose_verify1(f->p256, t.b, t.n, NULL), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "protected header label 2 not supported");
    make_token(&t, f->p256, p_text_alg, sizeof(p_text_alg), unprot_kid, 5, map_payload, 3, true,
               64);
    EXPECT_DETAIL(vtsm_cose_verify1(f->p256, t.b, t.n, NULL), VTSM_E_PEER_ALGO, VTSM_RULE_NONE,
                  "not an integer");
    make_token(&t, f->p256, p_twice, sizeof(p_twice), unprot_kid, 5, map_payload, 3, true, 64);
    EXPECT_DETAIL(vtsm_cose_verify1(f->p256, t.b, t.n, NULL), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "alg appears twice");
    make_token(&t, f->p256, p_text_label, sizeof(p_text_label), unprot_kid, 5, map_payload, 3, true,
               64);
    EXPECT_DETAIL(vtsm_cose_verify1(f->p256, t.b, t.n, NULL), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "label is not an integer");
    make_token(&t, f->p256, p_trailing, sizeof(p_trailing), unprot_kid, 5, map_payload, 3, true,
               64);
    EXPECT_DETAIL(vtsm_cose_verify1(f->p256, t.b, t.n, NULL), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "after the protected header map");

    make_token(&t, f->p256, prot_es256, 3, u_alg, sizeof(u_alg), map_payload, 3, true, 64);
    EXPECT_DETAIL(vtsm_cose_verify1(f->p256, t.b, t.n, NULL), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "unprotected header label 1 not supported");
    make_token(&t, f->p256, prot_es256, 3, u_kid_twice, sizeof(u_kid_twice), map_payload, 3, true,
               64);
    EXPECT_DETAIL(vtsm_cose_verify1(f->p256, t.b, t.n, NULL), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "kid appears twice");
    make_token(&t, f->p256, prot_es256, 3, u_kid_int, sizeof(u_kid_int), map_payload, 3, true, 64);
    EXPECT_DETAIL(vtsm_cose_verify1(f->p256, t.b, t.n, NULL), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "kid is not a byte string");
    make_token(&t, f->p256, prot_es256, 3, u_array, sizeof(u_array), map_payload, 3, true, 64);
    EXPECT_DETAIL(vtsm_cose_verify1(f->p256, t.b, t.n, NULL), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "unprotected header is not a map");
}

static void test_alg_key_mismatch(void **state)
{
    struct fixture *f = *state;
    struct vtsm_buf tok = {0};
    struct tok t;
    static const uint8_t p_eddsa[] = {0xa1, 0x01, 0x27};

    sign_sample(f->p384, &tok);
    EXPECT_DETAIL(vtsm_cose_verify1(f->p256, tok.data, tok.len, NULL), VTSM_E_PEER_ALGO,
                  VTSM_RULE_NONE, "alg -35 needs ecdsa-p384, the verification key is ecdsa-p256");
    sign_sample(f->p256, &tok);
    EXPECT_DETAIL(vtsm_cose_verify1(f->p384, tok.data, tok.len, NULL), VTSM_E_PEER_ALGO,
                  VTSM_RULE_NONE, "alg -7 needs ecdsa-p256");
    make_token(&t, f->p256, p_eddsa, sizeof(p_eddsa), unprot_kid, 5, map_payload, 3, true, 64);
    EXPECT_DETAIL(vtsm_cose_verify1(f->p256, t.b, t.n, NULL), VTSM_E_PEER_ALGO, VTSM_RULE_NONE,
                  "alg -8 not supported");
    /* ES384 claimed, signed with P-256 */
    make_token(&t, f->p256, prot_es384, sizeof(prot_es384), unprot_kid, 5, map_payload, 3, true,
               64);
    EXPECT_DETAIL(vtsm_cose_verify1(f->p256, t.b, t.n, NULL), VTSM_E_PEER_ALGO, VTSM_RULE_NONE,
                  "alg -35");
    vtsm_buf_free(&tok);
}

static void test_signature_length(void **state)
{
    struct fixture *f = *state;
    struct tok t;

    make_token(&t, f->p256, prot_es256, 3, unprot_kid, 5, map_payload, 3, true, 63);
    EXPECT_DETAIL(vtsm_cose_verify1(f->p256, t.b, t.n, NULL), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "signature of 63 bytes, ecdsa-p256 needs 64");
    make_token(&t, f->p384, prot_es384, 4, unprot_kid, 5, map_payload, 3, true, 64);
    EXPECT_DETAIL(vtsm_cose_verify1(f->p384, t.b, t.n, NULL), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "signature of 64 bytes, ecdsa-p384 needs 96");
}

static void test_tampering(void **state)
{
    struct fixture *f = *state;
    struct vtsm_buf tok = {0};
    struct tok t;

    for (int curve = 0; curve < 2; curve++) {
        EVP_PKEY *k = curve ? f->p384 : f->p256;
        sign_sample(k, &tok);
        /* the last payload byte (the uint 2 in {"state": 2}) sits before the signature */
        size_t sig_len = curve ? 96 : 64;
        size_t last_payload = tok.len - sig_len - 2 - 1;
        tok.data[last_payload] ^= 0x01;
        EXPECT_DETAIL(vtsm_cose_verify1(k, tok.data, tok.len, NULL), VTSM_E_PEER_SIGNATURE,
                      VTSM_RULE_NONE, "signature does not verify");
        tok.data[last_payload] ^= 0x01;
        tok.data[tok.len - 1] ^= 0x80;
        EXPECT(vtsm_cose_verify1(k, tok.data, tok.len, NULL), VTSM_E_PEER_SIGNATURE,
               VTSM_RULE_NONE);
        tok.data[tok.len - 1] ^= 0x80;
        assert_int_equal(vtsm_cose_verify1(k, tok.data, tok.len, NULL), VTSM_OK);
        /* the kid is unprotected: changing it does not break the signature (RFC 9052) */
        tok.data[curve ? 10 : 9] ^= 0x20;
        assert_int_equal(vtsm_cose_verify1(k, tok.data, tok.len, NULL), VTSM_OK);
    }

    /*
     * Protected header bytes are what is signed, not their meaning: sign {1: -7} in its
     * preferred encoding, then present it as a1 01 38 06 (the same map, longer form).
     */
    make_token(&t, f->p256, prot_es256, 3, unprot_kid, 5, map_payload, 3, true, 64);
    assert_int_equal(vtsm_cose_verify1(f->p256, t.b, t.n, NULL), VTSM_OK);
    struct tok u;
    u.n = 0;
    t_raw(&u, t.b, 2);
    static const uint8_t prot_long[] = {0x44, 0xa1, 0x01, 0x38, 0x06};
    t_raw(&u, prot_long, sizeof(prot_long));
    t_raw(&u, t.b + 6, t.n - 6);
    EXPECT(vtsm_cose_verify1(f->p256, u.b, u.n, NULL), VTSM_E_PEER_SIGNATURE, VTSM_RULE_NONE);
    vtsm_buf_free(&tok);
}

static void test_payload_checked_after_signature(void **state)
{
    struct fixture *f = *state;
    struct tok t;
    cbor_item_t *out = (cbor_item_t *)&t;
    uint8_t deep[40];
    static const uint8_t text[] = {0x63, 'a', 'b', 'c'};
    static const uint8_t two_items[] = {0xa0, 0xa0};

    make_token(&t, f->p256, prot_es256, 3, unprot_kid, 5, text, sizeof(text), true, 64);
    EXPECT_DETAIL(vtsm_cose_verify1(f->p256, t.b, t.n, &out), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "payload is not a map (major 3)");
    assert_null(out);
    for (int i = 0; i < 17; i++) { /* {0: {0: ... {0: 0}}}, 17 maps deep */
        deep[2 * i] = 0xa1;
        deep[2 * i + 1] = 0x00;
    }
    deep[34] = 0x00;
    make_token(&t, f->p256, prot_es256, 3, unprot_kid, 5, deep, 35, true, 64);
    EXPECT_DETAIL(vtsm_cose_verify1(f->p256, t.b, t.n, NULL), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "nested deeper than 16");
    make_token(&t, f->p256, prot_es256, 3, unprot_kid, 5, NULL, 0, true, 64);
    EXPECT_DETAIL(vtsm_cose_verify1(f->p256, t.b, t.n, NULL), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "empty payload");
    make_token(&t, f->p256, prot_es256, 3, unprot_kid, 5, two_items, 2, true, 64);
    EXPECT_DETAIL(vtsm_cose_verify1(f->p256, t.b, t.n, NULL), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "1 bytes after the payload");
    /* tampering with such a payload is caught by the signature first */
    t.b[t.n - 64 - 2 - 1] = 0x60;
    EXPECT(vtsm_cose_verify1(f->p256, t.b, t.n, NULL), VTSM_E_PEER_SIGNATURE, VTSM_RULE_NONE);
}

static void test_sign_refusals(void **state)
{
    struct fixture *f = *state;
    struct vtsm_buf tok = {0};
    cbor_item_t *arr = cbor_new_definite_array(0);
    cbor_item_t *indef = cbor_new_indefinite_map();
    cbor_item_t *p = sample_payload();
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    uint8_t kid[VTSM_COSE_MAX_KID + 1] = {0};

    assert_non_null(ed);
    EXPECT_DETAIL(vtsm_cose_sign1(f->p256, arr, NULL, 0, &tok), VTSM_E_INVAL, VTSM_RULE_NONE,
                  "must be a map");
    EXPECT_DETAIL(vtsm_cose_sign1(ed, p, NULL, 0, &tok), VTSM_E_INVAL, VTSM_RULE_NONE,
                  "neither P-256 nor P-384");
    EXPECT_DETAIL(vtsm_cose_sign1(f->p256, p, kid, sizeof(kid), &tok), VTSM_E_INVAL, VTSM_RULE_NONE,
                  "kid of 65 bytes");
    EXPECT(vtsm_cose_sign1(f->p256, p, NULL, 1, &tok), VTSM_E_INVAL, VTSM_RULE_NONE);
    assert_true(cbor_map_add(
        indef, (struct cbor_pair){cbor_move(cbor_build_uint8(1)), cbor_move(cbor_build_uint8(2))}));
    EXPECT_DETAIL(vtsm_cose_sign1(f->p256, indef, NULL, 0, &tok), VTSM_E_INVAL, VTSM_RULE_NONE,
                  "indefinite-length");
    assert_int_equal(tok.len, 0);
    cbor_decref(&arr);
    cbor_decref(&indef);
    cbor_decref(&p);
    EVP_PKEY_free(ed);
    vtsm_buf_free(&tok);
}

/* ---- published example and round trips ---- */

static void test_sig_structure_matches_cose_wg_example(void **state)
{
    struct vtsm_buf tbs = {0};
    uint8_t want[64];
    size_t n = unhex(want, sizeof(want), ex_tbs);
    static const char content[] = "This is the content.";

    (void)state;
    assert_int_equal(vtsm_cose_sig_structure(prot_es256, sizeof(prot_es256),
                                             (const uint8_t *)content, sizeof(content) - 1, &tbs),
                     VTSM_OK);
    assert_int_equal(tbs.len, n);
    assert_memory_equal(tbs.data, want, n);
    vtsm_buf_free(&tbs);
}

static void test_cose_wg_example_signature_verifies(void **state)
{
    struct fixture *f = *state;
    uint8_t tok[1 + 128];
    size_t n = unhex(tok + 1, sizeof(tok) - 1, ex_token);

    /*
     * The example's payload is a text, not a map, so the token is refused - but only
     * after its ES256 signature verified over our Sig_structure (a failure would be
     * E_PEER_SIGNATURE).
     */
    EXPECT_DETAIL(vtsm_cose_verify1(f->ex_pub, tok + 1, n, NULL), VTSM_E_PEER_MALFORMED,
                  VTSM_RULE_NONE, "payload is not a map");
    tok[0] = 0xd2; /* the same with the COSE_Sign1 tag (RFC 9052 C.2.1) */
    EXPECT_DETAIL(vtsm_cose_verify1(f->ex_pub, tok, n + 1, NULL), VTSM_E_PEER_MALFORMED,
                  VTSM_RULE_NONE, "payload is not a map");
    tok[n] ^= 0x01;
    EXPECT(vtsm_cose_verify1(f->ex_pub, tok, n + 1, NULL), VTSM_E_PEER_SIGNATURE, VTSM_RULE_NONE);
    EXPECT(vtsm_cose_verify1(f->p384, tok, n + 1, NULL), VTSM_E_PEER_ALGO, VTSM_RULE_NONE);
}

static void round_trip(EVP_PKEY *key, const uint8_t *want_prefix, size_t prefix_len)
{
    struct vtsm_buf tok = {0};
    cbor_item_t *p = sample_payload(), *out = NULL;
    unsigned char *a = NULL, *b = NULL;
    size_t acap = 0, bcap = 0;

    assert_int_equal(vtsm_cose_sign1(key, p, (const uint8_t *)"tsm1", 4, &tok), VTSM_OK);
    assert_true(tok.len > prefix_len);
    assert_memory_equal(tok.data, want_prefix, prefix_len);
    assert_int_equal(vtsm_cose_verify1(key, tok.data, tok.len, &out), VTSM_OK);
    assert_non_null(out);
    assert_true(cbor_isa_map(out));
    size_t alen = cbor_serialize_alloc(p, &a, &acap);
    size_t blen = cbor_serialize_alloc(out, &b, &bcap);
    assert_int_equal(alen, blen);
    assert_memory_equal(a, b, alen);
    /* the payload bytes sit in the token unchanged */
    assert_memory_equal(tok.data + prefix_len + 2, a, alen);
    free(a);
    free(b);
    cbor_decref(&out);
    cbor_decref(&p);
    vtsm_buf_free(&tok);
}

static void test_round_trip_es256(void **state)
{
    struct fixture *f = *state;
    /* 18([h'a10126', {4: h'74736d31'}, payload ... */
    static const uint8_t prefix[] = {0xd2, 0x84, 0x43, 0xa1, 0x01, 0x26, 0xa1,
                                     0x04, 0x44, 't',  's',  'm',  '1'};
    round_trip(f->p256, prefix, sizeof(prefix));
}

static void test_round_trip_es384(void **state)
{
    struct fixture *f = *state;
    static const uint8_t prefix[] = {0xd2, 0x84, 0x44, 0xa1, 0x01, 0x38, 0x22,
                                     0xa1, 0x04, 0x44, 't',  's',  'm',  '1'};
    round_trip(f->p384, prefix, sizeof(prefix));
}

static void test_empty_kid_and_untagged(void **state)
{
    struct fixture *f = *state;
    struct vtsm_buf tok = {0};
    cbor_item_t *p = sample_payload();

    assert_int_equal(vtsm_cose_sign1(f->p256, p, NULL, 0, &tok), VTSM_OK);
    assert_int_equal(tok.data[6], 0xa0); /* unprotected {} */
    assert_int_equal(vtsm_cose_verify1(f->p256, tok.data, tok.len, NULL), VTSM_OK);
    assert_int_equal(vtsm_cose_verify1(f->p256, tok.data + 1, tok.len - 1, NULL), VTSM_OK);
    cbor_decref(&p);
    vtsm_buf_free(&tok);
}

/* The one head writer (proto/vtsm_cbor.h): shortest form at every boundary. */
static void test_cbor_heads(void **state)
{
    static const struct {
        unsigned major;
        uint64_t v;
        size_t n;
        uint8_t b[9];
    } tc[] = {
        {0, 0, 1, {0x00}},
        {0, 23, 1, {0x17}},
        {0, 24, 2, {0x18, 0x18}},
        {2, 255, 2, {0x58, 0xff}},
        {3, 256, 3, {0x79, 0x01, 0x00}},
        {4, 65535, 3, {0x99, 0xff, 0xff}},
        {5, 65536, 5, {0xba, 0x00, 0x01, 0x00, 0x00}},
        {6, 0xFFFFFFFFu, 5, {0xda, 0xff, 0xff, 0xff, 0xff}},
        {1, 0x100000000ull, 9, {0x3b, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00}},
    };
    struct vtsm_buf b = {0};
    (void)state;
    for (size_t i = 0; i < sizeof(tc) / sizeof(tc[0]); i++) {
        vtsm_buf_reset(&b);
        assert_int_equal(vtsm_cbor_put_head(&b, tc[i].major, tc[i].v), VTSM_OK);
        assert_int_equal(b.len, tc[i].n);
        assert_memory_equal(b.data, tc[i].b, tc[i].n);
    }
    vtsm_buf_reset(&b);
    assert_int_equal(vtsm_cbor_put_int(&b, -35), VTSM_OK); /* ES384 */
    assert_int_equal(vtsm_cbor_put_int(&b, 4), VTSM_OK);
    assert_int_equal(vtsm_cbor_put_str(&b, VTSM_CBOR_TEXT, "ab", 2), VTSM_OK);
    assert_int_equal(vtsm_cbor_put_str(&b, VTSM_CBOR_BYTES, NULL, 0), VTSM_OK);
    assert_int_equal(b.len, 7);
    assert_memory_equal(b.data,
                        "\x38\x22\x04\x62"
                        "ab"
                        "\x40",
                        7);
    vtsm_buf_free(&b);
}

static void test_kid(void **state)
{
    struct fixture *f = *state;
    struct vtsm_buf tok = {0};
    const uint8_t *kid = (const uint8_t *)"x";
    size_t kid_len = 9;
    cbor_item_t *p = sample_payload();

    /* failure cases first: not well-formed, the envelope cut, no token */
    sign_sample(f->p256, &tok);
    EXPECT(vtsm_cose_kid(tok.data, tok.len - 1, &kid, &kid_len), VTSM_E_PEER_MALFORMED,
           VTSM_RULE_NONE);
    assert_null(kid);
    EXPECT(vtsm_cose_kid(tok.data, 8, &kid, &kid_len), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE);
    tok.data[0] = 0xd1;
    EXPECT_DETAIL(vtsm_cose_kid(tok.data, tok.len, &kid, &kid_len), VTSM_E_PEER_MALFORMED,
                  VTSM_RULE_NONE, "tag 17");
    EXPECT(vtsm_cose_kid(NULL, 4, &kid, &kid_len), VTSM_E_INVAL, VTSM_RULE_NONE);

    /* the kid the signer put in, tagged or not */
    tok.data[0] = 0xd2;
    EXPECT(vtsm_cose_kid(tok.data, tok.len, &kid, &kid_len), VTSM_OK, VTSM_RULE_NONE);
    assert_int_equal(kid_len, 4);
    assert_memory_equal(kid, "tsm1", 4);
    assert_true(kid > tok.data && kid + kid_len < tok.data + tok.len);
    EXPECT(vtsm_cose_kid(tok.data + 1, tok.len - 1, &kid, &kid_len), VTSM_OK, VTSM_RULE_NONE);
    assert_memory_equal(kid, "tsm1", 4);
    /* none */
    assert_int_equal(vtsm_cose_sign1(f->p256, p, NULL, 0, &tok), VTSM_OK);
    EXPECT(vtsm_cose_kid(tok.data, tok.len, &kid, &kid_len), VTSM_OK, VTSM_RULE_NONE);
    assert_null(kid);
    assert_int_equal(kid_len, 0);
    cbor_decref(&p);
    vtsm_buf_free(&tok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wrong_tag_and_array_length),
        cmocka_unit_test(test_not_well_formed),
        cmocka_unit_test(test_header_rules),
        cmocka_unit_test(test_alg_key_mismatch),
        cmocka_unit_test(test_signature_length),
        cmocka_unit_test(test_tampering),
        cmocka_unit_test(test_payload_checked_after_signature),
        cmocka_unit_test(test_sign_refusals),
        cmocka_unit_test(test_sig_structure_matches_cose_wg_example),
        cmocka_unit_test(test_cose_wg_example_signature_verifies),
        cmocka_unit_test(test_round_trip_es256),
        cmocka_unit_test(test_round_trip_es384),
        cmocka_unit_test(test_empty_kid_and_untagged),
        cmocka_unit_test(test_kid),
        cmocka_unit_test(test_cbor_heads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
