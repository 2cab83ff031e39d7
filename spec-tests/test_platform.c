/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tsm/tsm_platform: root ports, stream IDs and key slots (docs/abi.md
 * section 1). Failure cases first - bad --root-port specs, duplicate ports, stream
 * exhaustion (rule IDE.1), key slot exhaustion (rule IDE.2), unknown root port (rule
 * PLAT.1) - each with its exact status and nothing else changed; then parsing, the
 * default platform, free and reuse, status, and allocation from several threads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tsm_platform.h"
#include "tsm_reply.h"
#include "vtsm_abi.h"
#include "vtsm_test.h"

static void detail_is(const char *want)
{
    if (strcmp(vtsm_err_detail(), want) != 0)
        fail_msg("detail \"%s\", expected \"%s\"", vtsm_err_detail(), want);
}

static void detail_has(const char *needle)
{
    if (!strstr(vtsm_err_detail(), needle))
        fail_msg("detail \"%s\" lacks \"%s\"", vtsm_err_detail(), needle);
}

static void usage_is(struct tsm_platform *p, uint32_t rp, unsigned streams_used,
                     unsigned slots_used)
{
    struct tsm_rp_usage u;
    assert_int_equal(tsm_platform_usage(p, rp, &u), VTSM_OK);
    assert_int_equal(u.streams_used, streams_used);
    assert_int_equal(u.key_slots_used, slots_used);
}

static struct tsm_platform *one_port(const char *spec)
{
    struct tsm_rp_config c;
    struct tsm_platform *p = NULL;
    assert_int_equal(tsm_platform_parse_rp(spec, &c), VTSM_OK);
    assert_int_equal(tsm_platform_new(&c, 1, &p), VTSM_OK);
    return p;
}

/* ---- failures ---- */

static void test_parse_bad_specs(void **state)
{
    static const struct {
        const char *spec;
        const char *needle;
    } bad[] = {
        {"x", "ID must be a decimal number"},
        {"", "ID must be a decimal number"},
        {"0", "STREAMS missing"},
        {"0:", "STREAMS must be a decimal number"},
        {"0:0", "STREAMS 0 outside 1..256"},
        {"0:300", "STREAMS 300 outside 1..256"},
        {"0:257", "STREAMS 257 outside 1..256"},
        {"0:99999", "STREAMS exceeds 65535"},
        {"65536:4", "ID exceeds 65535"},
        {"-1:4", "ID must be a decimal number"},
        {"+1:4", "ID must be a decimal number"},
        {" 1:4", "ID must be a decimal number"},
        {"1 :4", "ID must be a decimal number"},
        {"1:4x", "STREAMS must be a decimal number"},
        {"1:4:", "KEYSLOTS must be a decimal number"},
        {"1:4:1", "KEYSLOTS 1 outside 2..4096"},
        {"1:4:0", "KEYSLOTS 0 outside 2..4096"},
        {"1:4:4097", "KEYSLOTS 4097 outside 2..4096"},
        {"1:4:8:2", "extra field after KEYSLOTS"},
        {"1:4:8 ", "KEYSLOTS must be a decimal number"},
        {"0x1:4", "ID must be a decimal number"},
    };
    struct tsm_rp_config c = {7, 7, 7};
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        vtsm_err_clear();
        if (tsm_platform_parse_rp(bad[i].spec, &c) != VTSM_E_CONFIG)
            fail_msg("spec \"%s\" not refused with E_CONFIG", bad[i].spec);
        detail_has(bad[i].needle);
        /* nothing written */
        assert_int_equal(c.id, 7);
        assert_int_equal(c.streams, 7);
        assert_int_equal(c.key_slots, 7);
    }
    assert_int_equal(tsm_platform_parse_rp(NULL, &c), VTSM_E_INVAL);
    assert_int_equal(tsm_platform_parse_rp("0:4", NULL), VTSM_E_INVAL);
}

static void test_new_bad_configs(void **state)
{
    struct tsm_rp_config c[3] = {{0, 4, 8}, {1, 2, 4}, {0, 1, 2}};
    struct tsm_rp_config many[TSM_PLATFORM_MAX_RP + 1];
    struct tsm_platform *p = (struct tsm_platform *)(uintptr_t)1;
    (void)state;

    vtsm_err_clear();
    assert_int_equal(tsm_platform_new(c, 3, &p), VTSM_E_CONFIG);
    detail_is("platform: root port 0 given twice");
    assert_ptr_equal(p, (struct tsm_platform *)(uintptr_t)1);

    c[2].id = 2;
    c[2].streams = 0;
    assert_int_equal(tsm_platform_new(c, 3, &p), VTSM_E_CONFIG);
    detail_has("STREAMS 0 outside 1..256");
    c[2].streams = 1;
    c[2].key_slots = 1;
    assert_int_equal(tsm_platform_new(c, 3, &p), VTSM_E_CONFIG);
    detail_has("KEYSLOTS 1 outside 2..4096");

    for (size_t i = 0; i < TSM_PLATFORM_MAX_RP + 1; i++)
        many[i] = (struct tsm_rp_config){(uint16_t)i, 1, 2};
    assert_int_equal(tsm_platform_new(many, TSM_PLATFORM_MAX_RP + 1, &p), VTSM_E_CONFIG);
    detail_has("at most 64");
    assert_int_equal(tsm_platform_new(NULL, 2, &p), VTSM_E_INVAL);
    assert_int_equal(tsm_platform_new(c, 1, NULL), VTSM_E_INVAL);
    assert_ptr_equal(p, (struct tsm_platform *)(uintptr_t)1);
    /* the maximum is fine */
    assert_int_equal(tsm_platform_new(many, TSM_PLATFORM_MAX_RP, &p), VTSM_OK);
    assert_int_equal(tsm_platform_rp_count(p), TSM_PLATFORM_MAX_RP);
    tsm_platform_free(p);
}

static void test_unknown_root_port(void **state)
{
    struct tsm_platform *p = NULL;
    struct tsm_rp_usage u;
    uint8_t ids[4] = {9, 9, 9, 9};
    (void)state;
    assert_int_equal(tsm_platform_new(NULL, 0, &p), VTSM_OK);
    assert_false(tsm_platform_has_rp(p, 2));
    assert_false(tsm_platform_has_rp(p, 65536)); /* not truncated to port 0 */
    assert_false(tsm_platform_has_rp(NULL, 0));

    vtsm_err_clear();
    EXPECT(tsm_platform_alloc_streams(p, 2, 1, ids), VTSM_E_NOT_FOUND, VTSM_RULE_PLAT_1);
    EXPECT(tsm_platform_alloc_streams(p, 65536, 1, ids), VTSM_E_NOT_FOUND, VTSM_RULE_PLAT_1);
    EXPECT(tsm_platform_alloc_slots(p, 7, 2), VTSM_E_NOT_FOUND, VTSM_RULE_PLAT_1);
    EXPECT(tsm_platform_usage(p, 3, &u), VTSM_E_NOT_FOUND, VTSM_RULE_PLAT_1);
    assert_int_equal(ids[0], 9);
    /* bad counts */
    assert_int_equal(tsm_platform_alloc_streams(p, 0, 0, ids), VTSM_E_INVAL);
    assert_int_equal(tsm_platform_alloc_streams(p, 0, 257, ids), VTSM_E_INVAL);
    assert_int_equal(tsm_platform_alloc_streams(p, 0, 1, NULL), VTSM_E_INVAL);
    assert_int_equal(tsm_platform_alloc_slots(p, 0, 0), VTSM_E_INVAL);
    usage_is(p, 0, 0, 0);
    usage_is(p, 1, 0, 0);
    tsm_platform_free(p);
}

static void test_stream_exhaustion(void **state)
{
    struct tsm_platform *p = one_port("3:4:16");
    uint8_t ids[4], more[2] = {9, 9};
    (void)state;

    assert_int_equal(tsm_platform_alloc_streams(p, 3, 3, ids), VTSM_OK);
    vtsm_err_clear();
    EXPECT(tsm_platform_alloc_streams(p, 3, 2, more), VTSM_E_NO_STREAM, VTSM_RULE_IDE_1);
    usage_is(p, 3, 3, 6);
    assert_int_equal(more[0], 9);
    assert_int_equal(tsm_platform_alloc_streams(p, 3, 1, more), VTSM_OK);
    assert_int_equal(more[0], 3);
    vtsm_err_clear();
    EXPECT(tsm_platform_alloc_streams(p, 3, 1, more), VTSM_E_NO_STREAM, VTSM_RULE_IDE_1);
    usage_is(p, 3, 4, 8);
    /* more than the port has at all */
    tsm_platform_free_streams(p, 3, 3, ids);
    tsm_platform_free_streams(p, 3, 1, more);
    usage_is(p, 3, 0, 0);
    uint8_t five[5];
    EXPECT(tsm_platform_alloc_streams(p, 3, 5, five), VTSM_E_NO_STREAM, VTSM_RULE_IDE_1);
    usage_is(p, 3, 0, 0);
    tsm_platform_free(p);
}

static void test_slot_exhaustion(void **state)
{
    struct tsm_platform *p = one_port("0:4:6");
    uint8_t ids[4] = {9, 9, 9, 9};
    (void)state;

    /* 2 streams need 4 slots: fine; then 2 more need 4 of the 2 left */
    assert_int_equal(tsm_platform_alloc_streams(p, 0, 2, ids), VTSM_OK);
    vtsm_err_clear();
    EXPECT(tsm_platform_alloc_streams(p, 0, 2, ids + 2), VTSM_E_LIMIT, VTSM_RULE_IDE_2);
    usage_is(p, 0, 2, 4); /* no stream taken either */
    assert_int_equal(ids[2], 9);
    /* a refresh of both streams needs 4 more */
    EXPECT(tsm_platform_alloc_slots(p, 0, 4), VTSM_E_LIMIT, VTSM_RULE_IDE_2);
    usage_is(p, 0, 2, 4);
    assert_int_equal(tsm_platform_alloc_slots(p, 0, 2), VTSM_OK);
    usage_is(p, 0, 2, 6);
    EXPECT(tsm_platform_alloc_streams(p, 0, 1, ids + 2), VTSM_E_LIMIT, VTSM_RULE_IDE_2);
    tsm_platform_free_slots(p, 0, 2);
    assert_int_equal(tsm_platform_alloc_streams(p, 0, 1, ids + 2), VTSM_OK);
    assert_int_equal(ids[2], 2);
    usage_is(p, 0, 3, 6);
    tsm_platform_free_streams(p, 0, 2, ids);
    tsm_platform_free_streams(p, 0, 1, ids + 2);
    usage_is(p, 0, 0, 0);
    tsm_platform_free(p);
}

static void test_free_bogus(void **state)
{
    struct tsm_platform *p = one_port("0:4");
    uint8_t ids[1], bogus[2] = {1, 200};
    (void)state;
    assert_int_equal(tsm_platform_alloc_streams(p, 0, 1, ids), VTSM_OK);
    /* freeing what was not allocated changes nothing of what was */
    tsm_platform_free_streams(p, 0, 1, bogus);
    tsm_platform_free_streams(p, 0, 1, bogus + 1);
    usage_is(p, 0, 1, 2);
    tsm_platform_free_slots(p, 0, 10); /* clamped: logged, not underflowed */
    usage_is(p, 0, 1, 0);
    assert_int_equal(tsm_platform_alloc_slots(p, 0, 2), VTSM_OK);
    tsm_platform_free_streams(p, 9, 1, ids); /* unknown port: ignored */
    tsm_platform_free_streams(p, 0, 1, ids);
    usage_is(p, 0, 0, 0);
    tsm_platform_free(p);
}

/* ---- success ---- */

static void test_parse_good_specs(void **state)
{
    struct tsm_rp_config c;
    (void)state;
    assert_int_equal(tsm_platform_parse_rp("0:4", &c), VTSM_OK);
    assert_int_equal(c.id, 0);
    assert_int_equal(c.streams, 4);
    assert_int_equal(c.key_slots, 8);
    assert_int_equal(tsm_platform_parse_rp("1:2:4", &c), VTSM_OK);
    assert_int_equal(c.id, 1);
    assert_int_equal(c.streams, 2);
    assert_int_equal(c.key_slots, 4);
    assert_int_equal(tsm_platform_parse_rp("65535:256:4096", &c), VTSM_OK);
    assert_int_equal(c.id, 65535);
    assert_int_equal(c.streams, 256);
    assert_int_equal(c.key_slots, 4096);
    assert_int_equal(tsm_platform_parse_rp("007:1", &c), VTSM_OK);
    assert_int_equal(c.id, 7);
    assert_int_equal(c.key_slots, 2);
}

static void test_default_platform_and_status(void **state)
{
    struct tsm_platform *p = NULL;
    uint8_t ids[3];
    cbor_item_t *arr = vtsm_abi_array_new();
    (void)state;
    assert_int_equal(tsm_platform_new(NULL, 0, &p), VTSM_OK);
    assert_int_equal(tsm_platform_rp_count(p), 2);
    assert_int_equal(tsm_platform_rp_id(p, 0), 0);
    assert_int_equal(tsm_platform_rp_id(p, 1), 1);
    assert_true(tsm_platform_has_rp(p, 0));
    assert_true(tsm_platform_has_rp(p, 1));
    assert_int_equal(tsm_platform_alloc_streams(p, 1, 3, ids), VTSM_OK);
    assert_int_equal(ids[0], 0);
    assert_int_equal(ids[1], 1);
    assert_int_equal(ids[2], 2);

    /* the plain view, and the reply built from it */
    struct tsm_rp_usage u[2];
    for (size_t i = 0; i < 2; i++)
        assert_int_equal(tsm_platform_usage(p, tsm_platform_rp_id(p, i), &u[i]), VTSM_OK);
    assert_int_equal(tsm_platform_usage(p, 2, &u[0]), VTSM_E_NOT_FOUND);
    assert_int_equal(tsm_reply_push_root_ports(arr, u, 2), VTSM_OK);
    assert_int_equal(cbor_array_size(arr), 2);
    static const uint64_t want[2][6] = {{0, 4, 0, 8, 0, 4}, {1, 4, 3, 8, 6, 1}};
    static const char *const keys[6] = {"id",        "streams",        "streams_used",
                                        "key_slots", "key_slots_used", "available_secure_streams"};
    for (size_t i = 0; i < 2; i++) {
        cbor_item_t *m = cbor_array_get(arr, i);
        assert_int_equal(cbor_map_size(m), 6);
        for (size_t k = 0; k < 6; k++) {
            uint64_t v = 99;
            assert_int_equal(vtsm_abi_get_uint(m, keys[k], &v), VTSM_OK);
            assert_int_equal(v, want[i][k]);
        }
        cbor_decref(&m);
    }
    assert_int_equal(tsm_platform_usage(NULL, 0, &u[0]), VTSM_E_INVAL);
    assert_int_equal(tsm_platform_usage(p, 0, NULL), VTSM_E_INVAL);
    cbor_decref(&arr);
    tsm_platform_free_streams(p, 1, 3, ids);
    tsm_platform_free(p);
}

static void test_free_and_reuse(void **state)
{
    struct tsm_platform *p = one_port("5:4");
    uint8_t a[2], b[2], c[1];
    (void)state;
    assert_int_equal(tsm_platform_alloc_streams(p, 5, 2, a), VTSM_OK); /* 0, 1 */
    assert_int_equal(tsm_platform_alloc_streams(p, 5, 2, b), VTSM_OK); /* 2, 3 */
    assert_int_equal(b[0], 2);
    assert_int_equal(b[1], 3);
    tsm_platform_free_streams(p, 5, 2, a);
    usage_is(p, 5, 2, 4);
    /* lowest free first */
    assert_int_equal(tsm_platform_alloc_streams(p, 5, 1, c), VTSM_OK);
    assert_int_equal(c[0], 0);
    tsm_platform_free_streams(p, 5, 2, b);
    assert_int_equal(tsm_platform_alloc_streams(p, 5, 2, b), VTSM_OK);
    assert_int_equal(b[0], 1);
    assert_int_equal(b[1], 2);
    usage_is(p, 5, 3, 6);
    tsm_platform_free_streams(p, 5, 1, c);
    tsm_platform_free_streams(p, 5, 2, b);
    usage_is(p, 5, 0, 0);
    tsm_platform_free(p);
}

/* ---- concurrency ---- */

#define OWNERS 8
#define ROUNDS 2000

/* Several owners interleave allocations and frees, each holding what it got until its
 * next turn (tsmd runs every flow on one thread, but flows interleave at each DOE
 * exchange): no stream is ever handed out twice, and everything comes back. */
static void test_interleaved_allocation(void **state)
{
    struct tsm_platform *p = one_port("0:8:12"); /* slots run out before streams do */
    int owner[8] = {0};
    uint8_t held[OWNERS][2];
    unsigned nheld[OWNERS] = {0};
    unsigned got = 0, refused = 0;
    (void)state;
    for (int i = 0; i < ROUNDS; i++)
        for (int me = 0; me < OWNERS; me++) {
            for (unsigned k = 0; k < nheld[me]; k++)
                owner[held[me][k]] = 0;
            if (nheld[me])
                tsm_platform_free_streams(p, 0, nheld[me], held[me]);
            nheld[me] = 0;
            unsigned n = 1 + (unsigned)((i + me) & 1);
            vtsm_status st = tsm_platform_alloc_streams(p, 0, n, held[me]);
            if (st != VTSM_OK) {
                assert_true(st == VTSM_E_NO_STREAM || st == VTSM_E_LIMIT);
                refused++;
                continue;
            }
            got++;
            for (unsigned k = 0; k < n; k++) {
                assert_int_equal(owner[held[me][k]], 0);
                owner[held[me][k]] = me + 1;
            }
            nheld[me] = n;
        }
    for (int me = 0; me < OWNERS; me++)
        if (nheld[me])
            tsm_platform_free_streams(p, 0, nheld[me], held[me]);
    assert_int_equal(got + refused, OWNERS * ROUNDS);
    assert_true(got > 0 && refused > 0);
    usage_is(p, 0, 0, 0);
    tsm_platform_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_bad_specs),
        cmocka_unit_test(test_new_bad_configs),
        cmocka_unit_test(test_unknown_root_port),
        cmocka_unit_test(test_stream_exhaustion),
        cmocka_unit_test(test_slot_exhaustion),
        cmocka_unit_test(test_free_bogus),
        cmocka_unit_test(test_parse_good_specs),
        cmocka_unit_test(test_default_platform_and_status),
        cmocka_unit_test(test_free_and_reuse),
        cmocka_unit_test(test_interleaved_allocation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
