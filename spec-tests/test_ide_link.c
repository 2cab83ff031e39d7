/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * proto/vtsm_ide_link: the simulated IDE link check. It must be exactly AES-256-GCM with
 * the IV and AAD the header documents and a 96-bit MAC, and any mismatch of key, key set,
 * stream, sub-stream, counter or bytes must fail. Failure cases first.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vtsm_test.h"

#include "vtsm_buf.h"
#include "vtsm_crypto.h"
#include "vtsm_ide_link.h"
#include "vtsm_idekm.h"

static const uint8_t key[32] = {0xdf, 0x25, 0x41, 0x52, 0x05, 0x6e, 0x02, 0xe0, 0xef, 0x8b, 0x7f,
                                0xeb, 0x97, 0x39, 0xd4, 0xd9, 0x6a, 0x4e, 0xb8, 0x01, 0x03, 0x24,
                                0x1d, 0xf7, 0xcd, 0x5e, 0x24, 0xb4, 0x9c, 0xcd, 0x27, 0x20};
static const char msg[] = "IDE link check: 32 bytes of TLP.";

struct sealed {
    uint8_t ct[64];
    uint8_t tag[VTSM_IDE_LINK_MAC_SIZE];
};

static void seal(struct sealed *s, uint64_t counter)
{
    assert_int_equal(vtsm_ide_link_protect(key, 1, counter, 3, VTSM_IDE_SUBSTREAM_PR, 0,
                                           (const uint8_t *)msg, 32, s->ct, s->tag),
                     VTSM_OK);
}

/* ---- failure cases ---- */

static void test_wrong_key_and_key_set(void **state)
{
    struct sealed s;
    uint8_t other[32], pt[32];
    static const uint8_t zero[32];

    (void)state;
    seal(&s, 0);
    memcpy(other, key, 32);
    other[31] ^= 0x01;
    memset(pt, 0x55, sizeof(pt));
    EXPECT_DETAIL(
        vtsm_ide_link_check(other, 1, 0, 3, VTSM_IDE_SUBSTREAM_PR, 0, s.ct, 32, s.tag, pt),
        VTSM_E_PEER_DECRYPT, VTSM_RULE_NONE, "stream 3 sub-stream 0 key set K0, TLP 0");
    assert_memory_equal(pt, zero, 32); /* nothing of a failed check is left */
    EXPECT_DETAIL(vtsm_ide_link_check(key, 1, 0, 3, VTSM_IDE_SUBSTREAM_PR, 1, s.ct, 32, s.tag, pt),
                  VTSM_E_PEER_DECRYPT, VTSM_RULE_NONE, "key set K1");
}

static void test_wrong_identifiers_and_counter(void **state)
{
    struct sealed s;

    (void)state;
    seal(&s, 7);
    EXPECT(vtsm_ide_link_check(key, 1, 7, 4, VTSM_IDE_SUBSTREAM_PR, 0, s.ct, 32, s.tag, NULL),
           VTSM_E_PEER_DECRYPT, VTSM_RULE_NONE);
    EXPECT(vtsm_ide_link_check(key, 1, 7, 3, VTSM_IDE_SUBSTREAM_NPR, 0, s.ct, 32, s.tag, NULL),
           VTSM_E_PEER_DECRYPT, VTSM_RULE_NONE);
    EXPECT_DETAIL(
        vtsm_ide_link_check(key, 1, 6, 3, VTSM_IDE_SUBSTREAM_PR, 0, s.ct, 32, s.tag, NULL),
        VTSM_E_PEER_DECRYPT, VTSM_RULE_NONE, "TLP 6");
    EXPECT(vtsm_ide_link_check(key, 2, 7, 3, VTSM_IDE_SUBSTREAM_PR, 0, s.ct, 32, s.tag, NULL),
           VTSM_E_PEER_DECRYPT, VTSM_RULE_NONE);
    /* the same invocation field reached another way is the same IV */
    assert_int_equal(
        vtsm_ide_link_check(key, 2, 6, 3, VTSM_IDE_SUBSTREAM_PR, 0, s.ct, 32, s.tag, NULL),
        VTSM_OK);
    EXPECT(vtsm_ide_link_check(key, 1, 7, 3, VTSM_IDE_SUBSTREAM_PR, 0, s.ct, 31, s.tag, NULL),
           VTSM_E_PEER_DECRYPT, VTSM_RULE_NONE);
}

static void test_tampered(void **state)
{
    struct sealed s;

    (void)state;
    seal(&s, 0);
    s.ct[17] ^= 0x04;
    EXPECT(vtsm_ide_link_check(key, 1, 0, 3, VTSM_IDE_SUBSTREAM_PR, 0, s.ct, 32, s.tag, NULL),
           VTSM_E_PEER_DECRYPT, VTSM_RULE_NONE);
    s.ct[17] ^= 0x04;
    s.tag[11] ^= 0x80;
    EXPECT(vtsm_ide_link_check(key, 1, 0, 3, VTSM_IDE_SUBSTREAM_PR, 0, s.ct, 32, s.tag, NULL),
           VTSM_E_PEER_DECRYPT, VTSM_RULE_NONE);
    s.tag[11] ^= 0x80;
    assert_int_equal(
        vtsm_ide_link_check(key, 1, 0, 3, VTSM_IDE_SUBSTREAM_PR, 0, s.ct, 32, s.tag, NULL),
        VTSM_OK);
}

static void test_bad_arguments(void **state)
{
    uint8_t out[VTSM_IDE_LINK_MAX_PAYLOAD + 1], tag[12];
    uint8_t iv[12];
    static uint8_t big[VTSM_IDE_LINK_MAX_PAYLOAD + 1];

    (void)state;
    EXPECT_DETAIL(vtsm_ide_link_protect(key, 1, 0, 0, 3, 0, big, 16, out, tag), VTSM_E_INVAL,
                  VTSM_RULE_NONE, "sub-stream 3");
    EXPECT_DETAIL(vtsm_ide_link_protect(key, 1, 0, 0, 0, 2, big, 16, out, tag), VTSM_E_INVAL,
                  VTSM_RULE_NONE, "key set 2");
    EXPECT_DETAIL(vtsm_ide_link_protect(key, 1, 0, 0, 0, 0, big, sizeof(big), out, tag),
                  VTSM_E_INVAL, VTSM_RULE_NONE, "4097 bytes");
    EXPECT_DETAIL(vtsm_ide_link_protect(key, UINT64_MAX, 1, 0, 0, 0, big, 16, out, tag),
                  VTSM_E_INVAL, VTSM_RULE_NONE, "wraps");
    EXPECT_DETAIL(vtsm_ide_link_check(key, 2, UINT64_MAX - 1, 0, 0, 0, big, 16, tag, NULL),
                  VTSM_E_INVAL, VTSM_RULE_NONE, "refresh the key");
    EXPECT(vtsm_ide_link_protect(key, 1, 0, 0, 0, 0, big, 16, NULL, tag), VTSM_E_INVAL,
           VTSM_RULE_NONE);
    EXPECT(vtsm_ide_link_check(NULL, 1, 0, 0, 0, 0, big, 16, tag, NULL), VTSM_E_INVAL,
           VTSM_RULE_NONE);
    assert_int_equal(vtsm_ide_link_iv(UINT64_MAX, 0, iv), VTSM_OK);
}

/* ---- the model, exactly ---- */

static void test_is_gcm_with_documented_iv_and_aad(void **state)
{
    uint8_t iv[12], aad[8], ct[32], tag16[16];
    struct sealed s;
    static const uint8_t want_iv[] = {0, 0, 0, 0, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x05};
    static const uint8_t want_aad[] = {0x03, 0x21, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00};

    (void)state;
    /* IFV 0x0000000100000002 after 3 TLPs: invocation field 0x0000000100000005 */
    assert_int_equal(vtsm_ide_link_iv(0x0000000100000002ull, 3, iv), VTSM_OK);
    assert_memory_equal(iv, want_iv, 12);
    vtsm_ide_link_aad(3, VTSM_IDE_SUBSTREAM_CPL, 1, 32, aad);
    assert_memory_equal(aad, want_aad, 8);

    assert_int_equal(vtsm_ide_link_protect(key, 0x0000000100000002ull, 3, 3, VTSM_IDE_SUBSTREAM_CPL,
                                           1, (const uint8_t *)msg, 32, s.ct, s.tag),
                     VTSM_OK);
    assert_int_equal(vtsm_aead_seal(key, iv, aad, 8, (const uint8_t *)msg, 32, ct, tag16), VTSM_OK);
    assert_memory_equal(s.ct, ct, 32);
    assert_memory_equal(s.tag, tag16, VTSM_IDE_LINK_MAC_SIZE); /* GCM tag truncated to 96 bits */
}

static void test_round_trip_with_keys_from_key_prog(void **state)
{
    uint8_t wire[VTSM_IDEKM_KEY_PROG_SIZE], pt[VTSM_IDE_LINK_MAX_PAYLOAD];
    uint8_t ct[VTSM_IDE_LINK_MAX_PAYLOAD], tag[12];
    struct vtsm_wr w = vtsm_wr_init(wire, sizeof(wire));
    struct vtsm_idekm_key tsm_key;
    struct vtsm_idekm_req dev;

    (void)state;
    /* TSM programs a fresh key for stream 9, K0, RX, CPL; the device reads it. */
    assert_int_equal(vtsm_random(tsm_key.key, sizeof(tsm_key.key)), VTSM_OK);
    tsm_key.ifv = 1;
    assert_int_equal(vtsm_idekm_build_key_prog(&w, 9, vtsm_idekm_kss(0, false, 2), 0, &tsm_key),
                     VTSM_OK);
    assert_int_equal(vtsm_idekm_parse_request(wire, w.len, &dev), VTSM_OK);

    /* The device sends TLP 0..2 of a 4 KiB payload; the TSM side checks each. */
    for (uint64_t n = 0; n < 3; n++) {
        memset(pt, (int)n, sizeof(pt));
        assert_int_equal(vtsm_ide_link_protect(dev.key.key, dev.key.ifv, n, dev.stream_id,
                                               VTSM_IDE_SUBSTREAM_CPL, 0, pt, sizeof(pt), ct, tag),
                         VTSM_OK);
        memset(pt, 0xEE, sizeof(pt));
        assert_int_equal(vtsm_ide_link_check(tsm_key.key, tsm_key.ifv, n, 9, VTSM_IDE_SUBSTREAM_CPL,
                                             0, ct, sizeof(ct), tag, pt),
                         VTSM_OK);
        assert_int_equal(pt[0], (uint8_t)n);
        assert_int_equal(pt[sizeof(pt) - 1], (uint8_t)n);
    }
    /* A MAC-only TLP (no payload) is checked too. */
    assert_int_equal(vtsm_ide_link_protect(dev.key.key, 1, 3, 9, 2, 0, NULL, 0, NULL, tag),
                     VTSM_OK);
    assert_int_equal(vtsm_ide_link_check(tsm_key.key, 1, 3, 9, 2, 0, NULL, 0, tag, NULL), VTSM_OK);
    EXPECT(vtsm_ide_link_check(tsm_key.key, 1, 4, 9, 2, 0, NULL, 0, tag, NULL), VTSM_E_PEER_DECRYPT,
           VTSM_RULE_NONE);
    vtsm_idekm_key_wipe(&dev.key);
    vtsm_idekm_key_wipe(&tsm_key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wrong_key_and_key_set),
        cmocka_unit_test(test_wrong_identifiers_and_counter),
        cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_is_gcm_with_documented_iv_and_aad),
        cmocka_unit_test(test_round_trip_with_keys_from_key_prog),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
