/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * proto/vtsm_spdm_meas: the MeasurementRecord parser (DSP0274 "Measurement block", DMTF
 * measurement value header) against records written byte by byte. Failure cases first.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vtsm_test.h"

#include "vtsm_spdm_defs.h"
#include "vtsm_spdm_meas.h"

#define DMTF SPDM_MEAS_SPEC_DMTF

/* Index 1: a 4-byte digest 0xA0..A3 (type 0); Index 7: a 2-byte raw value 0xB0 B1. */
/* clang-format off */
static const uint8_t rec2[] = {
    0x01, DMTF, 0x07, 0x00, 0x00, 0x04, 0x00, 0xA0, 0xA1, 0xA2, 0xA3,
    0x07, DMTF, 0x05, 0x00, 0x86, 0x02, 0x00, 0xB0, 0xB1};
/* clang-format on */

static struct vtsm_spdm_meas_block blocks[VTSM_SPDM_MEAS_BLOCKS_MAX];

static vtsm_status parse(const uint8_t *p, size_t n, size_t digest, size_t *count)
{
    return vtsm_spdm_meas_parse(p, n, DMTF, digest, blocks, VTSM_SPDM_MEAS_BLOCKS_MAX, count);
}

static void test_truncated(void **state)
{
    size_t n = 99;
    /* every proper prefix that cuts a block fails as truncated, naming the field */
    static const char *const field[] = {"Index", "MeasurementSpecification", "MeasurementSize",
                                        "MeasurementSize", "Measurement"};
    for (size_t len = 1; len < 11; len++) {
        EXPECT_DETAIL(parse(rec2, len, 0, &n), VTSM_E_PEER_TRUNCATED, VTSM_RULE_NONE,
                      len < 4 ? field[len] : field[4]);
        assert_int_equal(n, 0);
    }
    for (size_t len = 12; len < sizeof(rec2); len++)
        EXPECT_DETAIL(parse(rec2, len, 0, &n), VTSM_E_PEER_TRUNCATED, VTSM_RULE_NONE,
                      "MeasurementRecord truncated");
    /* a MeasurementSize too small for the DMTF value header */
    static const uint8_t short_hdr[] = {0x01, DMTF, 0x02, 0x00, 0x00, 0x00};
    EXPECT_DETAIL(parse(short_hdr, sizeof(short_hdr), 0, &n), VTSM_E_PEER_TRUNCATED, VTSM_RULE_NONE,
                  "DMTFSpecMeasurementValueSize");
    /* a ValueSize beyond the block */
    static const uint8_t over[] = {0x01, DMTF, 0x04, 0x00, 0x00, 0x02, 0x00, 0xAA};
    EXPECT_DETAIL(parse(over, sizeof(over), 0, &n), VTSM_E_PEER_TRUNCATED, VTSM_RULE_NONE,
                  "DMTFSpecMeasurementValue");
    (void)state;
}

static void test_malformed(void **state)
{
    size_t n;
    uint8_t b[sizeof(rec2)];

    /* a block longer than its value: MeasurementSize != 3 + ValueSize */
    static const uint8_t slack[] = {0x01, DMTF, 0x05, 0x00, 0x00, 0x01, 0x00, 0xAA, 0xBB};
    EXPECT_DETAIL(parse(slack, sizeof(slack), 0, &n), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "!= 3 + ValueSize 1");
    /* reserved indices */
    memcpy(b, rec2, sizeof(b));
    b[0] = 0x00;
    EXPECT_DETAIL(parse(b, sizeof(b), 0, &n), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "reserved Index 0x00");
    b[0] = 0xFF;
    EXPECT_DETAIL(parse(b, sizeof(b), 0, &n), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "reserved Index 0xff");
    /* an index twice */
    memcpy(b, rec2, sizeof(b));
    b[11] = 0x01;
    EXPECT_DETAIL(parse(b, sizeof(b), 0, &n), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "Index 1 appears twice");
    /* another MeasurementSpecification */
    memcpy(b, rec2, sizeof(b));
    b[12] = 0x02;
    EXPECT_DETAIL(parse(b, sizeof(b), 0, &n), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "MeasurementSpecification 0x02");
    /* a digest of the wrong size for the hash (the raw block is not a digest) */
    EXPECT_DETAIL(parse(rec2, sizeof(rec2), 48, &n), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "block 1 digest is 4 bytes, MeasurementHashAlgo gives 48");
    /* more blocks than the caller has room for */
    EXPECT_DETAIL(vtsm_spdm_meas_parse(rec2, sizeof(rec2), DMTF, 0, blocks, 1, &n),
                  VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE, "9 bytes after its 1 blocks");
    EXPECT(vtsm_spdm_meas_parse(NULL, 4, DMTF, 0, blocks, 1, &n), VTSM_E_INVAL, VTSM_RULE_NONE);
    (void)state;
}

static void test_parse(void **state)
{
    size_t n = 0;
    const struct vtsm_spdm_meas_block *m;

    EXPECT(parse(rec2, sizeof(rec2), 4, &n), VTSM_OK, VTSM_RULE_NONE);
    assert_int_equal(n, 2);
    assert_int_equal(blocks[0].index, 1);
    assert_int_equal(blocks[0].spec, DMTF);
    assert_int_equal(blocks[0].size, 7);
    assert_int_equal(blocks[0].value_type, 0);
    assert_int_equal(blocks[0].value_size, 4);
    assert_ptr_equal(blocks[0].value, rec2 + 7);
    assert_int_equal(blocks[1].index, 7);
    assert_int_equal(blocks[1].value_type, 0x86);
    assert_int_equal(blocks[1].value_size, 2);
    assert_ptr_equal(blocks[1].value, rec2 + 18);

    m = vtsm_spdm_meas_find(blocks, n, 7);
    assert_non_null(m);
    assert_memory_equal(m->value, "\xB0\xB1", 2);
    assert_null(vtsm_spdm_meas_find(blocks, n, 2));

    /* an empty record has no blocks; an empty value is a value */
    EXPECT(parse(rec2, 0, 0, &n), VTSM_OK, VTSM_RULE_NONE);
    assert_int_equal(n, 0);
    static const uint8_t empty[] = {0x03, DMTF, 0x03, 0x00, 0x80, 0x00, 0x00};
    EXPECT(parse(empty, sizeof(empty), 48, &n), VTSM_OK, VTSM_RULE_NONE);
    assert_int_equal(n, 1);
    assert_int_equal(blocks[0].value_size, 0);

    /* 254 blocks, indices 1..254, each holding its index: the most a record can hold */
    static uint8_t big[254 * 8];
    for (unsigned i = 0; i < 254; i++) {
        uint8_t *p = big + 8 * i;
        p[0] = (uint8_t)(i + 1), p[1] = DMTF, p[2] = 4, p[3] = 0;
        p[4] = 0x80, p[5] = 1, p[6] = 0, p[7] = (uint8_t)(i + 1);
    }
    EXPECT(parse(big, sizeof(big), 0, &n), VTSM_OK, VTSM_RULE_NONE);
    assert_int_equal(n, 254);
    assert_int_equal(vtsm_spdm_meas_find(blocks, n, 200)->value[0], 200);
    (void)state;
}

/* MeasurementHashAlgo: each defined bit has its digest size and name; SHA-512 digests are
 * size-checked like the others. */
static void test_meas_hash_algos(void **state)
{
    (void)state;
    static const struct {
        uint32_t bit;
        size_t size;
        const char *name;
    } want[] = {
        {SPDM_MEAS_HASH_RAW, 0, "raw"},
        {SPDM_MEAS_HASH_SHA256, 32, "sha256"},
        {SPDM_MEAS_HASH_SHA384, 48, "sha384"},
        {SPDM_MEAS_HASH_SHA512, 64, "sha512"},
        {SPDM_MEAS_HASH_SHA3_256, 32, "sha3_256"},
        {SPDM_MEAS_HASH_SHA3_384, 48, "sha3_384"},
        {SPDM_MEAS_HASH_SHA3_512, 64, "sha3_512"},
        {SPDM_MEAS_HASH_SM3_256, 32, "sm3_256"},
        {1u << 8, 0, "unknown"},
        {0, 0, "unknown"},
        {SPDM_MEAS_HASH_SHA256 | SPDM_MEAS_HASH_SHA512, 0, "unknown"},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_int_equal(vtsm_spdm_meas_hash_size(want[i].bit), want[i].size);
        assert_string_equal(vtsm_spdm_meas_hash_name(want[i].bit), want[i].name);
    }
    /* one 64-byte digest block: accepted for SHA-512, refused for SHA-384 */
    uint8_t rec[4 + 3 + 64] = {0x01, DMTF, 67, 0x00, 0x00, 64, 0x00};
    memset(rec + 7, 0x5A, 64);
    size_t n = 0;
    assert_int_equal(parse(rec, sizeof(rec), vtsm_spdm_meas_hash_size(SPDM_MEAS_HASH_SHA512), &n),
                     VTSM_OK);
    assert_int_equal(n, 1);
    assert_int_equal(blocks[0].value_size, 64);
    EXPECT_DETAIL(parse(rec, sizeof(rec), vtsm_spdm_meas_hash_size(SPDM_MEAS_HASH_SHA384), &n),
                  VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE, "digest is 64 bytes");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_meas_hash_algos),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
