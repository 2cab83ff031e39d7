/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * proto/vtsm_link_frame: the simulated-link frame codec (docs/abi.md
 * section 2). Failure cases first - truncated at every byte, bad magic, bad kind, bad
 * identifiers, length overflow, reserved bytes, trailing bytes, bad encode arguments -
 * each with its exact status; then exact bytes and round trips through seal / open.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vtsm_test.h"

#include "vtsm_link_frame.h"

/* kind 1, stream 5, K1, CPL, counter 0x0102030405060708, 3 bytes, MAC 0x10..0x1b */
static const uint8_t wire_req[] = {
    'V',  'L',  'N',  'K',  0x01, 0x05, 0x01, 0x02, 0x08, 0x07, 0x06, 0x05, 0x04,
    0x03, 0x02, 0x01, 0x03, 0x00, 0xaa, 0xbb, 0xcc, 0x10, 0x11, 0x12, 0x13, 0x14,
    0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x00, 0x00, 0x00, 0x00,
};
/* kind 3, stream 7, K0, PR, counter 9, len 0 */
static const uint8_t wire_fail[] = {
    'V', 'L', 'N', 'K', 0x03, 0x07, 0x00, 0x00, 0x09, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x00,
};

static const uint8_t ct3[3] = {0xaa, 0xbb, 0xcc};

static struct vtsm_link_frame req_frame(void)
{
    struct vtsm_link_frame f = {0};
    f.kind = VTSM_LINK_KIND_CHECK_REQ;
    f.stream_id = 5;
    f.key_set = 1;
    f.substream = VTSM_IDE_SUBSTREAM_CPL;
    f.counter = 0x0102030405060708ull;
    f.len = 3;
    f.ct = ct3;
    for (unsigned i = 0; i < VTSM_IDE_LINK_MAC_SIZE; i++)
        f.tag[i] = (uint8_t)(0x10 + i);
    return f;
}

static void assert_zeroed(const struct vtsm_link_frame *f)
{
    struct vtsm_link_frame z;
    memset(&z, 0, sizeof(z));
    assert_memory_equal(f, &z, sizeof(z));
}

/* ---- decode failures ---- */

static void test_decode_truncated_everywhere(void **state)
{
    struct vtsm_link_frame f;
    (void)state;
    for (size_t n = 0; n < sizeof(wire_req); n++) {
        memset(&f, 0xa5, sizeof(f));
        EXPECT_DETAIL(vtsm_link_frame_decode(wire_req, n, &f), VTSM_E_PEER_TRUNCATED,
                      VTSM_RULE_NONE, "truncated at");
        assert_zeroed(&f);
    }
    for (size_t n = 0; n < sizeof(wire_fail); n++)
        EXPECT_DETAIL(vtsm_link_frame_decode(wire_fail, n, &f), VTSM_E_PEER_TRUNCATED,
                      VTSM_RULE_NONE, "truncated at");
    EXPECT_DETAIL(vtsm_link_frame_decode(wire_req, 4, &f), VTSM_E_PEER_TRUNCATED, VTSM_RULE_NONE,
                  "at kind");
    EXPECT_DETAIL(vtsm_link_frame_decode(wire_req, 20, &f), VTSM_E_PEER_TRUNCATED, VTSM_RULE_NONE,
                  "at ciphertext");
    EXPECT_DETAIL(vtsm_link_frame_decode(wire_req, 25, &f), VTSM_E_PEER_TRUNCATED, VTSM_RULE_NONE,
                  "at tag");
    EXPECT_DETAIL(vtsm_link_frame_decode(NULL, 0, &f), VTSM_E_PEER_TRUNCATED, VTSM_RULE_NONE,
                  "at magic");
}

static void test_decode_bad_magic(void **state)
{
    uint8_t m[sizeof(wire_req)];
    struct vtsm_link_frame f;
    (void)state;
    for (size_t i = 0; i < 4; i++) {
        memcpy(m, wire_req, sizeof(m));
        m[i] ^= 0x20; /* "vLNK", ... */
        EXPECT_DETAIL(vtsm_link_frame_decode(m, sizeof(m), &f), VTSM_E_PEER_MALFORMED,
                      VTSM_RULE_NONE, "magic");
        assert_zeroed(&f);
    }
}

static void test_decode_bad_kind(void **state)
{
    static const uint8_t kinds[] = {0, 7, 0x81, 0xff};
    uint8_t m[sizeof(wire_req)];
    struct vtsm_link_frame f;
    (void)state;
    for (size_t i = 0; i < sizeof(kinds); i++) {
        memcpy(m, wire_req, sizeof(m));
        m[4] = kinds[i];
        EXPECT_DETAIL(vtsm_link_frame_decode(m, sizeof(m), &f), VTSM_E_PEER_MALFORMED,
                      VTSM_RULE_NONE, "kind");
        assert_zeroed(&f);
    }
}

/* Kinds 4 and 5: plaintext register DWs without a tag, and an empty answer. */
static void test_cfg_write_frames(void **state)
{
    static const uint8_t regs[8] = {0, 1, 0, 0, 1, 1, 0, 0};
    struct vtsm_link_frame f = {
        .kind = VTSM_LINK_KIND_CFG_WRITE, .stream_id = 9, .len = 8, .ct = regs};
    struct vtsm_buf b = {0};
    (void)state;
    assert_int_equal(vtsm_link_frame_encode(&f, &b), VTSM_OK);
    assert_int_equal(b.len, VTSM_LINK_FRAME_HDR_SIZE + 8);
    struct vtsm_link_frame g;
    assert_int_equal(vtsm_link_frame_decode(b.data, b.len, &g), VTSM_OK);
    assert_int_equal(g.kind, VTSM_LINK_KIND_CFG_WRITE);
    assert_int_equal(g.stream_id, 9);
    assert_int_equal(g.len, 8);
    assert_memory_equal(g.ct, regs, 8);
    /* a tag after it is trailing; a length not in whole DWs is malformed */
    uint8_t m[VTSM_LINK_FRAME_HDR_SIZE + 8 + 1];
    memcpy(m, b.data, b.len);
    m[b.len] = 0;
    EXPECT_DETAIL(vtsm_link_frame_decode(m, sizeof(m), &g), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "trailing");
    m[16] = 7;
    EXPECT_DETAIL(vtsm_link_frame_decode(m, VTSM_LINK_FRAME_HDR_SIZE + 7, &g),
                  VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE, "whole DWs");
    f = (struct vtsm_link_frame){.kind = VTSM_LINK_KIND_CFG_DONE, .stream_id = 9};
    assert_int_equal(vtsm_link_frame_encode(&f, &b), VTSM_OK);
    assert_int_equal(b.len, VTSM_LINK_FRAME_HDR_SIZE);
    assert_int_equal(vtsm_link_frame_decode(b.data, b.len, &g), VTSM_OK);
    assert_int_equal(g.kind, VTSM_LINK_KIND_CFG_DONE);
    uint8_t key[32] = {0}, pt[8];
    EXPECT(vtsm_link_frame_open(&g, key, 0, pt, sizeof(pt)), VTSM_E_INVAL, VTSM_RULE_NONE);
    vtsm_buf_free(&b);
}

static void test_decode_bad_ids(void **state)
{
    uint8_t m[sizeof(wire_req)];
    struct vtsm_link_frame f;
    (void)state;
    memcpy(m, wire_req, sizeof(m));
    m[6] = 2;
    EXPECT_DETAIL(vtsm_link_frame_decode(m, sizeof(m), &f), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "key_set 2");
    memcpy(m, wire_req, sizeof(m));
    m[7] = 3;
    EXPECT_DETAIL(vtsm_link_frame_decode(m, sizeof(m), &f), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "substream 3");
}

static void test_decode_len_overflow(void **state)
{
    uint8_t m[sizeof(wire_req)];
    struct vtsm_link_frame f;
    (void)state;
    /* len beyond the bytes present */
    memcpy(m, wire_req, sizeof(m));
    m[16] = 0x40;
    EXPECT_DETAIL(vtsm_link_frame_decode(m, sizeof(m), &f), VTSM_E_PEER_TRUNCATED, VTSM_RULE_NONE,
                  "ciphertext");
    /* len one beyond the largest TLP payload, and the largest u16 */
    vtsm_put_le16(m + 16, VTSM_IDE_LINK_MAX_PAYLOAD + 1);
    EXPECT_DETAIL(vtsm_link_frame_decode(m, sizeof(m), &f), VTSM_E_PEER_OVERSIZED, VTSM_RULE_NONE,
                  "len 4097");
    vtsm_put_le16(m + 16, 0xffff);
    EXPECT_DETAIL(vtsm_link_frame_decode(m, sizeof(m), &f), VTSM_E_PEER_OVERSIZED, VTSM_RULE_NONE,
                  "len 65535");
    assert_zeroed(&f);
    /* len shorter than the bytes present: the tag is misplaced, the rest trails */
    memcpy(m, wire_req, sizeof(m));
    m[16] = 2;
    EXPECT_DETAIL(vtsm_link_frame_decode(m, sizeof(m), &f), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "");
}

static void test_decode_failure_frame_rules(void **state)
{
    uint8_t m[sizeof(wire_fail) + 16];
    struct vtsm_link_frame f;
    (void)state;
    /* a failure frame with a length */
    memcpy(m, wire_fail, sizeof(wire_fail));
    m[16] = 1;
    m[sizeof(wire_fail)] = 0;
    EXPECT_DETAIL(vtsm_link_frame_decode(m, sizeof(wire_fail) + 1, &f), VTSM_E_PEER_MALFORMED,
                  VTSM_RULE_NONE, "failure frame with len 1");
    /* a failure frame with a tag */
    memcpy(m, wire_fail, sizeof(wire_fail));
    memset(m + sizeof(wire_fail), 0, 16);
    EXPECT_DETAIL(vtsm_link_frame_decode(m, sizeof(m), &f), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "16 trailing bytes after the failure frame");
}

static void test_decode_reserved_and_trailing(void **state)
{
    uint8_t m[sizeof(wire_req) + 1];
    struct vtsm_link_frame f;
    (void)state;
    for (size_t i = 0; i < 4; i++) {
        memcpy(m, wire_req, sizeof(wire_req));
        m[sizeof(wire_req) - 4 + i] = 0x01;
        EXPECT_DETAIL(vtsm_link_frame_decode(m, sizeof(wire_req), &f), VTSM_E_PEER_MALFORMED,
                      VTSM_RULE_NONE, "reserved tag byte");
    }
    memcpy(m, wire_req, sizeof(wire_req));
    m[sizeof(wire_req)] = 0;
    EXPECT_DETAIL(vtsm_link_frame_decode(m, sizeof(m), &f), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "1 trailing bytes after the check request frame");
    EXPECT(vtsm_link_frame_decode(m, sizeof(m), NULL), VTSM_E_INVAL, VTSM_RULE_NONE);
}

/* ---- encode failures ---- */

static void test_encode_bad_args(void **state)
{
    struct vtsm_buf b = {0};
    struct vtsm_link_frame f;
    (void)state;
    assert_int_equal(vtsm_buf_set(&b, "keep", 4), VTSM_OK);

    f = req_frame();
    f.kind = 0;
    EXPECT_DETAIL(vtsm_link_frame_encode(&f, &b), VTSM_E_INVAL, VTSM_RULE_NONE, "kind 0");
    f = req_frame();
    f.kind = 7;
    EXPECT_DETAIL(vtsm_link_frame_encode(&f, &b), VTSM_E_INVAL, VTSM_RULE_NONE, "kind 7");
    f = req_frame();
    f.kind = VTSM_LINK_KIND_LINK_CFG; /* 3 bytes: not one DW */
    EXPECT_DETAIL(vtsm_link_frame_encode(&f, &b), VTSM_E_INVAL, VTSM_RULE_NONE, "one DW");
    f = req_frame();
    f.kind = VTSM_LINK_KIND_CFG_WRITE; /* 3 bytes: not whole DWs */
    EXPECT_DETAIL(vtsm_link_frame_encode(&f, &b), VTSM_E_INVAL, VTSM_RULE_NONE, "whole DWs");
    f = req_frame();
    f.kind = VTSM_LINK_KIND_CFG_DONE;
    EXPECT_DETAIL(vtsm_link_frame_encode(&f, &b), VTSM_E_INVAL, VTSM_RULE_NONE, "no ciphertext");
    f = req_frame();
    f.key_set = 2;
    EXPECT_DETAIL(vtsm_link_frame_encode(&f, &b), VTSM_E_INVAL, VTSM_RULE_NONE, "key set 2");
    f = req_frame();
    f.substream = 3;
    EXPECT_DETAIL(vtsm_link_frame_encode(&f, &b), VTSM_E_INVAL, VTSM_RULE_NONE, "sub-stream 3");
    f = req_frame();
    f.len = VTSM_IDE_LINK_MAX_PAYLOAD + 1;
    EXPECT_DETAIL(vtsm_link_frame_encode(&f, &b), VTSM_E_INVAL, VTSM_RULE_NONE, "4097");
    f = req_frame();
    f.kind = VTSM_LINK_KIND_FAILURE;
    EXPECT_DETAIL(vtsm_link_frame_encode(&f, &b), VTSM_E_INVAL, VTSM_RULE_NONE, "no ciphertext");
    f = req_frame();
    f.ct = NULL;
    EXPECT_DETAIL(vtsm_link_frame_encode(&f, &b), VTSM_E_INVAL, VTSM_RULE_NONE, "NULL ciphertext");
    EXPECT(vtsm_link_frame_encode(NULL, &b), VTSM_E_INVAL, VTSM_RULE_NONE);
    /* argument errors leave the output alone */
    assert_int_equal(b.len, 4);
    assert_memory_equal(b.data, "keep", 4);
    vtsm_buf_free(&b);
}

static void test_seal_open_failures(void **state)
{
    uint8_t key[VTSM_IDE_LINK_KEY_SIZE], other[VTSM_IDE_LINK_KEY_SIZE], pt[32], back[32];
    struct vtsm_buf b = {0};
    struct vtsm_link_frame f, g;
    (void)state;
    memset(key, 0x11, sizeof(key));
    memset(other, 0x22, sizeof(other));
    memset(pt, 0x5a, sizeof(pt));

    EXPECT_DETAIL(
        vtsm_link_frame_seal(VTSM_LINK_KIND_FAILURE, key, 0, 0, 1, 0, 0, pt, sizeof(pt), &b),
        VTSM_E_INVAL, VTSM_RULE_NONE, "only check");
    EXPECT_DETAIL(
        vtsm_link_frame_seal(VTSM_LINK_KIND_CHECK_REQ, key, 0, 0, 1, 3, 0, pt, sizeof(pt), &b),
        VTSM_E_INVAL, VTSM_RULE_NONE, "sub-stream 3");
    /* invocation field wrap */
    EXPECT_DETAIL(vtsm_link_frame_seal(VTSM_LINK_KIND_CHECK_REQ, key, UINT64_MAX, 1, 1, 0, 0, pt,
                                       sizeof(pt), &b),
                  VTSM_E_INVAL, VTSM_RULE_NONE, "wraps");
    assert_int_equal(b.len, 0);

    assert_int_equal(
        vtsm_link_frame_seal(VTSM_LINK_KIND_CHECK_REQ, key, 100, 7, 1, 0, 1, pt, sizeof(pt), &b),
        VTSM_OK);
    assert_int_equal(vtsm_link_frame_decode(b.data, b.len, &f), VTSM_OK);
    /* wrong key, wrong IFV */
    memset(back, 0xee, sizeof(back));
    EXPECT_DETAIL(vtsm_link_frame_open(&f, other, 100, back, sizeof(back)), VTSM_E_PEER_DECRYPT,
                  VTSM_RULE_NONE, "does not verify");
    for (size_t i = 0; i < sizeof(back); i++)
        assert_int_equal(back[i], 0); /* wiped */
    EXPECT(vtsm_link_frame_open(&f, key, 101, back, sizeof(back)), VTSM_E_PEER_DECRYPT,
           VTSM_RULE_NONE);
    /* every bound identifier and the counter are authenticated */
    g = f;
    g.stream_id = 2;
    EXPECT(vtsm_link_frame_open(&g, key, 100, back, sizeof(back)), VTSM_E_PEER_DECRYPT,
           VTSM_RULE_NONE);
    g = f;
    g.key_set = 0;
    EXPECT(vtsm_link_frame_open(&g, key, 100, back, sizeof(back)), VTSM_E_PEER_DECRYPT,
           VTSM_RULE_NONE);
    g = f;
    g.substream = 1;
    EXPECT(vtsm_link_frame_open(&g, key, 100, back, sizeof(back)), VTSM_E_PEER_DECRYPT,
           VTSM_RULE_NONE);
    g = f;
    g.counter = 8;
    EXPECT(vtsm_link_frame_open(&g, key, 100, back, sizeof(back)), VTSM_E_PEER_DECRYPT,
           VTSM_RULE_NONE);
    /* tampered ciphertext and MAC */
    b.data[VTSM_LINK_FRAME_HDR_SIZE] ^= 1;
    assert_int_equal(vtsm_link_frame_decode(b.data, b.len, &g), VTSM_OK);
    EXPECT(vtsm_link_frame_open(&g, key, 100, back, sizeof(back)), VTSM_E_PEER_DECRYPT,
           VTSM_RULE_NONE);
    b.data[VTSM_LINK_FRAME_HDR_SIZE] ^= 1;
    b.data[VTSM_LINK_FRAME_HDR_SIZE + sizeof(pt)] ^= 1;
    assert_int_equal(vtsm_link_frame_decode(b.data, b.len, &g), VTSM_OK);
    EXPECT(vtsm_link_frame_open(&g, key, 100, back, sizeof(back)), VTSM_E_PEER_DECRYPT,
           VTSM_RULE_NONE);
    b.data[VTSM_LINK_FRAME_HDR_SIZE + sizeof(pt)] ^= 1;
    /* small output, and a failure frame */
    EXPECT(vtsm_link_frame_open(&f, key, 100, back, sizeof(back) - 1), VTSM_E_TOO_SMALL,
           VTSM_RULE_NONE);
    assert_int_equal(vtsm_link_frame_decode(wire_fail, sizeof(wire_fail), &g), VTSM_OK);
    EXPECT_DETAIL(vtsm_link_frame_open(&g, key, 100, back, sizeof(back)), VTSM_E_INVAL,
                  VTSM_RULE_NONE, "failure frame");
    vtsm_buf_free(&b);
}

/* ---- success ---- */

static void test_exact_bytes(void **state)
{
    struct vtsm_buf b = {0};
    struct vtsm_link_frame f = req_frame(), g;
    (void)state;
    assert_int_equal(vtsm_link_frame_encode(&f, &b), VTSM_OK);
    assert_int_equal(b.len, sizeof(wire_req));
    assert_memory_equal(b.data, wire_req, sizeof(wire_req));

    memset(&f, 0, sizeof(f));
    f.kind = VTSM_LINK_KIND_FAILURE;
    f.stream_id = 7;
    f.counter = 9;
    memset(f.tag, 0xff, sizeof(f.tag)); /* ignored in kind 3 */
    assert_int_equal(vtsm_link_frame_encode(&f, &b), VTSM_OK);
    assert_int_equal(b.len, sizeof(wire_fail));
    assert_memory_equal(b.data, wire_fail, sizeof(wire_fail));

    assert_int_equal(vtsm_link_frame_decode(wire_req, sizeof(wire_req), &g), VTSM_OK);
    assert_int_equal(g.kind, VTSM_LINK_KIND_CHECK_REQ);
    assert_int_equal(g.stream_id, 5);
    assert_int_equal(g.key_set, 1);
    assert_int_equal(g.substream, VTSM_IDE_SUBSTREAM_CPL);
    assert_true(g.counter == 0x0102030405060708ull);
    assert_int_equal(g.len, 3);
    assert_ptr_equal(g.ct, wire_req + VTSM_LINK_FRAME_HDR_SIZE);
    assert_memory_equal(g.tag, wire_req + 21, VTSM_IDE_LINK_MAC_SIZE);

    assert_int_equal(vtsm_link_frame_decode(wire_fail, sizeof(wire_fail), &g), VTSM_OK);
    assert_int_equal(g.kind, VTSM_LINK_KIND_FAILURE);
    assert_int_equal(g.stream_id, 7);
    assert_true(g.counter == 9);
    assert_int_equal(g.len, 0);
    vtsm_buf_free(&b);
}

static void test_round_trip(void **state)
{
    uint8_t key[VTSM_IDE_LINK_KEY_SIZE], pt[VTSM_IDE_LINK_MAX_PAYLOAD], back[sizeof(pt)];
    static const size_t lens[] = {0, 1, 32, VTSM_IDE_LINK_MAX_PAYLOAD};
    struct vtsm_buf b = {0}, b2 = {0};
    struct vtsm_link_frame f;
    (void)state;
    for (size_t i = 0; i < sizeof(key); i++)
        key[i] = (uint8_t)(i * 7);
    for (size_t i = 0; i < sizeof(pt); i++)
        pt[i] = (uint8_t)(i * 13 + 1);

    for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
        size_t n = lens[k];
        assert_int_equal(vtsm_link_frame_seal(VTSM_LINK_KIND_CHECK_RSP, key, 0x1000, 42, 3,
                                              VTSM_IDE_SUBSTREAM_NPR, 0, pt, n, &b),
                         VTSM_OK);
        assert_int_equal(b.len, VTSM_LINK_FRAME_HDR_SIZE + n + VTSM_LINK_FRAME_TAG_SIZE);
        if (n >= 32) /* the payload is not sent in the clear */
            assert_true(memcmp(b.data + VTSM_LINK_FRAME_HDR_SIZE, pt, 32) != 0);
        assert_int_equal(vtsm_link_frame_decode(b.data, b.len, &f), VTSM_OK);
        assert_int_equal(f.kind, VTSM_LINK_KIND_CHECK_RSP);
        assert_int_equal(f.stream_id, 3);
        assert_int_equal(f.key_set, 0);
        assert_int_equal(f.substream, VTSM_IDE_SUBSTREAM_NPR);
        assert_true(f.counter == 42);
        assert_int_equal(f.len, n);
        memset(back, 0, sizeof(back));
        assert_int_equal(vtsm_link_frame_open(&f, key, 0x1000, back, sizeof(back)), VTSM_OK);
        assert_memory_equal(back, pt, n);
        /* re-encoding the decoded frame gives the same bytes */
        assert_int_equal(vtsm_link_frame_encode(&f, &b2), VTSM_OK);
        assert_int_equal(b2.len, b.len);
        assert_memory_equal(b2.data, b.data, b.len);
    }
    assert_int_equal(VTSM_LINK_FRAME_MAX_SIZE, 18 + 4096 + 16);
    vtsm_buf_free(&b);
    vtsm_buf_free(&b2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_truncated_everywhere),
        cmocka_unit_test(test_decode_bad_magic),
        cmocka_unit_test(test_decode_bad_kind),
        cmocka_unit_test(test_decode_bad_ids),
        cmocka_unit_test(test_cfg_write_frames),
        cmocka_unit_test(test_decode_len_overflow),
        cmocka_unit_test(test_decode_failure_frame_rules),
        cmocka_unit_test(test_decode_reserved_and_trailing),
        cmocka_unit_test(test_encode_bad_args),
        cmocka_unit_test(test_seal_open_failures),
        cmocka_unit_test(test_exact_bytes),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
