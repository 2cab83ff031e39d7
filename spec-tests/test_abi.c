/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Socket ABI codec (docs/abi.md): failure cases first, each asserting the exact status
 * and that the detail names the rule; then round trips, the incremental reader and the
 * JSON printer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "vtsm_test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vtsm_abi.h"
#include "vtsm_abi_guest.h"

/* ---- helpers ---- */

static void assert_detail_has(const char *needle)
{
    const char *d = vtsm_err_detail();
    if (!strstr(d, needle))
        fail_msg("detail '%s' does not contain '%s'", d, needle);
}

/* Decode must fail with st under the rule st implies (ABI.7 malformed, ABI.6 oversized);
 * every such refusal has that one rule, so the detail (needle) says which check fired. */
static void expect_decode(const uint8_t *p, size_t n, vtsm_status st, const char *needle)
{
    cbor_item_t *it = (cbor_item_t *)0x1;
    vtsm_err_clear();
    assert_int_equal(vtsm_abi_decode(p, n, &it), st);
    assert_null(it);
    assert_int_equal(vtsm_err_rule(),
                     st == VTSM_E_ABI_OVERSIZED ? VTSM_RULE_ABI_6 : VTSM_RULE_ABI_7);
    assert_detail_has(needle);
}

#define EXPECT_MALFORMED(needle, ...)                                                              \
    do {                                                                                           \
        static const uint8_t b_[] = {__VA_ARGS__};                                                 \
        expect_decode(b_, sizeof(b_), VTSM_E_ABI_MALFORMED, needle);                               \
    } while (0)

static cbor_item_t *decode_ok(const uint8_t *p, size_t n)
{
    cbor_item_t *it = NULL;
    vtsm_status st = vtsm_abi_decode(p, n, &it);
    if (st != VTSM_OK)
        fail_msg("decode failed: %s: %s", vtsm_status_name(st), vtsm_err_detail());
    assert_non_null(it);
    return it;
}

/* Build {"a": <n nested arrays around 0>} as raw CBOR. */
static size_t nested_arrays(uint8_t *out, size_t n)
{
    size_t k = 0;
    out[k++] = 0xa1;
    out[k++] = 0x61;
    out[k++] = 'a';
    for (size_t i = 0; i < n; i++)
        out[k++] = 0x81;
    out[k++] = 0x00;
    return k;
}

static char *json_of(const cbor_item_t *it, bool pretty)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(vtsm_abi_to_json(it, f, pretty), VTSM_OK);
    fclose(f);
    return buf;
}

/* ---- framing failures ---- */

static void test_frame_truncated(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    /* header announces 9 bytes, only 3 arrive before EOF */
    static const uint8_t part[] = {0, 0, 0, 9, 0xa1, 0x62, 'o'};
    assert_int_equal(write(sv[1], part, sizeof(part)), (ssize_t)sizeof(part));
    close(sv[1]);
    cbor_item_t *it = NULL;
    assert_int_equal(vtsm_abi_recv(sv[0], &it, 1000), VTSM_E_IO);
    assert_null(it);
    assert_detail_has("mid-frame");
    close(sv[0]);

    /* truncated inside the header */
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(write(sv[1], part, 2), 2);
    close(sv[1]);
    assert_int_equal(vtsm_abi_recv(sv[0], &it, 1000), VTSM_E_IO);
    close(sv[0]);

    /* truncated CBOR inside a complete frame: the item itself is short */
    EXPECT_MALFORMED("truncated", 0xa1, 0x62, 'o', 'p');
    EXPECT_MALFORMED("truncated", 0xa1, 0x61, 'a', 0x19, 0x01);
    EXPECT_MALFORMED("truncated", 0xa1, 0x61, 'a', 0x43, 1, 2);
    EXPECT_MALFORMED("map declares 2 pairs", 0xa2, 0x61, 'a', 0x01);
}

static void test_frame_length_zero(void **state)
{
    (void)state;
    struct vtsm_abi_reader r;
    vtsm_abi_reader_init(&r);
    static const uint8_t zero[] = {0, 0, 0, 0};
    cbor_item_t *it = NULL;
    assert_int_equal(vtsm_abi_reader_feed(&r, zero, sizeof(zero)), VTSM_OK);
    vtsm_err_clear();
    assert_int_equal(vtsm_abi_reader_next(&r, &it), VTSM_E_ABI_MALFORMED);
    assert_detail_has("frame length 0");
    assert_null(it);
    /* the empty frame was skipped: the stream is still usable */
    assert_false(vtsm_abi_reader_partial(&r));
    vtsm_abi_reader_free(&r);

    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(write(sv[1], zero, sizeof(zero)), 4);
    assert_int_equal(vtsm_abi_recv(sv[0], &it, 1000), VTSM_E_ABI_MALFORMED);
    close(sv[0]);
    close(sv[1]);

    expect_decode((const uint8_t *)"", 0, VTSM_E_ABI_MALFORMED, "empty frame");
}

static void test_frame_oversized(void **state)
{
    (void)state;
    /* 4 MiB + 1 */
    static const uint8_t big[] = {0x00, 0x40, 0x00, 0x01};
    struct vtsm_abi_reader r;
    vtsm_abi_reader_init(&r);
    cbor_item_t *it = NULL;
    assert_int_equal(vtsm_abi_reader_feed(&r, big, sizeof(big)), VTSM_OK);
    vtsm_err_clear();
    assert_int_equal(vtsm_abi_reader_next(&r, &it), VTSM_E_ABI_OVERSIZED);
    assert_detail_has("limit is 4194304");
    /* sticky: the stream cannot be resynchronised */
    static const uint8_t good[] = {0, 0, 0, 4, 0xa1, 0x61, 'a', 0x01};
    assert_int_equal(vtsm_abi_reader_feed(&r, good, sizeof(good)), VTSM_OK);
    assert_int_equal(vtsm_abi_reader_next(&r, &it), VTSM_E_ABI_OVERSIZED);
    vtsm_abi_reader_free(&r);

    /* largest header value */
    static const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff};
    vtsm_abi_reader_init(&r);
    assert_int_equal(vtsm_abi_reader_feed(&r, huge, sizeof(huge)), VTSM_OK);
    assert_int_equal(vtsm_abi_reader_next(&r, &it), VTSM_E_ABI_OVERSIZED);
    vtsm_abi_reader_free(&r);

    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(write(sv[1], big, sizeof(big)), 4);
    assert_int_equal(vtsm_abi_recv(sv[0], &it, 1000), VTSM_E_ABI_OVERSIZED);
    close(sv[0]);
    close(sv[1]);

    /* decode of more than 4 MiB, whatever the content */
    uint8_t *mem = calloc(1, VTSM_ABI_FRAME_MAX + 1);
    assert_non_null(mem);
    mem[0] = 0xa0;
    expect_decode(mem, VTSM_ABI_FRAME_MAX + 1, VTSM_E_ABI_OVERSIZED, "exceeds");
    free(mem);
}

/* ---- item failures ---- */

static void test_trailing_bytes(void **state)
{
    (void)state;
    EXPECT_MALFORMED("1 trailing bytes", 0xa1, 0x61, 'a', 0x01, 0x00);
    EXPECT_MALFORMED("2 trailing bytes", 0xa0, 0xa0, 0xa0);
}

static void test_not_a_map(void **state)
{
    (void)state;
    EXPECT_MALFORMED("not a map", 0x01);
    EXPECT_MALFORMED("not a map", 0x80);
    EXPECT_MALFORMED("not a map", 0x61, 'a');
    EXPECT_MALFORMED("not a map", 0xf5);
}

static void test_non_text_key(void **state)
{
    (void)state;
    EXPECT_MALFORMED("map key is not a text string", 0xa1, 0x01, 0x01);
    EXPECT_MALFORMED("map key is not a text string", 0xa1, 0x41, 'a', 0x01);
    /* nested maps too */
    EXPECT_MALFORMED("map key is not a text string", 0xa1, 0x61, 'm', 0xa1, 0x20, 0x00);
}

/* A map with more keys than the decoder's first key table holds: 1000 distinct keys
 * decode, and a duplicate among them is still found. */
static void test_many_keys(void **state)
{
    static uint8_t b[3 + 1000 * 4];
    size_t n = 0;
    (void)state;
    b[n++] = 0xb9; /* map, 2-byte count */
    b[n++] = 1000 >> 8;
    b[n++] = 1000 & 0xff;
    for (unsigned i = 0; i < 1000; i++) {
        b[n++] = 0x62; /* text(2) */
        b[n++] = (uint8_t)('A' + i / 40);
        b[n++] = (uint8_t)('0' + i % 40);
        b[n++] = 0x01;
    }
    cbor_item_t *it = decode_ok(b, n);
    assert_int_equal(cbor_map_size(it), 1000);
    cbor_decref(&it);
    b[n - 3] = b[4]; /* the last key becomes the first */
    b[n - 2] = b[5];
    expect_decode(b, n, VTSM_E_ABI_MALFORMED, "duplicate map key");
}

static void test_duplicate_key(void **state)
{
    (void)state;
    EXPECT_MALFORMED("duplicate map key 'a'", 0xa2, 0x61, 'a', 0x01, 0x61, 'a', 0x02);
    /* same key with a non-shortest length encoding is still the same key */
    EXPECT_MALFORMED("duplicate map key 'ab'", 0xa3, 0x62, 'a', 'b', 0x01, 0x61, 'z', 0x01, 0x78,
                     0x02, 'a', 'b', 0x02);
    /* in a nested map */
    EXPECT_MALFORMED("duplicate map key 'k'", 0xa1, 0x61, 'm', 0xa2, 0x61, 'k', 0x01, 0x61, 'k',
                     0x01);
    /* equal keys in different maps are fine */
    static const uint8_t ok[] = {0xa2, 0x61, 'k', 0x01, 0x61, 'm', 0xa1, 0x61, 'k', 0x01};
    cbor_item_t *it = decode_ok(ok, sizeof(ok));
    cbor_decref(&it);
}

static void test_indefinite(void **state)
{
    (void)state;
    EXPECT_MALFORMED("indefinite-length", 0xbf, 0x61, 'a', 0x01, 0xff);
    EXPECT_MALFORMED("indefinite-length", 0xa1, 0x61, 'a', 0x9f, 0x01, 0xff);
    EXPECT_MALFORMED("indefinite-length", 0xa1, 0x61, 'a', 0x5f, 0x41, 0x00, 0xff);
    EXPECT_MALFORMED("indefinite-length", 0xa1, 0x61, 'a', 0x7f, 0x61, 'x', 0xff);
    EXPECT_MALFORMED("indefinite-length", 0xa1, 0x7f, 0x61, 'a', 0xff, 0x01);
    EXPECT_MALFORMED("break", 0xa1, 0x61, 'a', 0xff);
}

static void test_tag(void **state)
{
    (void)state;
    EXPECT_MALFORMED("tags not allowed (tag 0)", 0xa1, 0x61, 'a', 0xc0, 0x61, 'x');
    EXPECT_MALFORMED("tags not allowed (tag 24)", 0xa1, 0x61, 'a', 0xd8, 0x18, 0x41, 0x00);
}

static void test_float_and_simple(void **state)
{
    (void)state;
    EXPECT_MALFORMED("floating-point", 0xa1, 0x61, 'a', 0xf9, 0x3c, 0x00);
    EXPECT_MALFORMED("floating-point", 0xa1, 0x61, 'a', 0xfa, 0x3f, 0x80, 0, 0);
    EXPECT_MALFORMED("floating-point", 0xa1, 0x61, 'a', 0xfb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0);
    EXPECT_MALFORMED("simple value 22", 0xa1, 0x61, 'a', 0xf6);
    EXPECT_MALFORMED("simple value 23", 0xa1, 0x61, 'a', 0xf7);
    EXPECT_MALFORMED("simple value 16", 0xa1, 0x61, 'a', 0xf0);
    EXPECT_MALFORMED("simple value 32", 0xa1, 0x61, 'a', 0xf8, 0x20);
    EXPECT_MALFORMED("reserved additional information 28", 0xa1, 0x61, 'a', 0x1c);
}

static void test_depth_bomb(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t n = nested_arrays(buf, 100);
    expect_decode(buf, n, VTSM_E_ABI_MALFORMED, "nesting deeper than 8");
    /* boundary: map (depth 1) + 7 arrays = depth 8 is fine, 8 arrays is not */
    n = nested_arrays(buf, 7);
    cbor_item_t *it = decode_ok(buf, n);
    cbor_decref(&it);
    n = nested_arrays(buf, 8);
    expect_decode(buf, n, VTSM_E_ABI_MALFORMED, "nesting deeper than 8");
}

static void test_huge_counts(void **state)
{
    (void)state;
    /* arrays / maps announcing 2^64-1 or 2^32-1 members backed by one byte */
    EXPECT_MALFORMED("array declares 18446744073709551615 items", 0xa1, 0x61, 'a', 0x9b, 0xff, 0xff,
                     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01);
    EXPECT_MALFORMED("array declares 4294967295 items", 0xa1, 0x61, 'a', 0x9a, 0xff, 0xff, 0xff,
                     0xff, 0x01);
    EXPECT_MALFORMED("map declares 4294967295 pairs", 0xba, 0xff, 0xff, 0xff, 0xff, 0x61, 'a',
                     0x01);
    EXPECT_MALFORMED("map declares", 0xa1, 0x61, 'a', 0xb9, 0xff, 0xff, 0x61, 'b', 0x01);
    /* strings announcing more than the limits, with no bytes behind them */
    EXPECT_MALFORMED("byte string of 18446744073709551615 bytes exceeds", 0xa1, 0x61, 'a', 0x5b,
                     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
    EXPECT_MALFORMED("text string of 4294967295 bytes exceeds", 0xa1, 0x61, 'a', 0x7a, 0xff, 0xff,
                     0xff, 0xff);
}

static void test_item_count(void **state)
{
    (void)state;
    /* {"a": [0 x k]}: 3 + k items */
    size_t k = VTSM_ABI_MAX_ITEMS - 3;
    uint8_t *buf = malloc(16 + k + 1);
    assert_non_null(buf);
    size_t n = 0;
    buf[n++] = 0xa1;
    buf[n++] = 0x61;
    buf[n++] = 'a';
    buf[n++] = 0x99;
    buf[n++] = (uint8_t)(k >> 8);
    buf[n++] = (uint8_t)k;
    memset(buf + n, 0, k);
    cbor_item_t *it = decode_ok(buf, n + k);
    cbor_decref(&it);
    /* one more item is too many */
    buf[5] = (uint8_t)(k + 1);
    buf[4] = (uint8_t)((k + 1) >> 8);
    buf[n + k] = 0;
    expect_decode(buf, n + k + 1, VTSM_E_ABI_MALFORMED, "more than 4096 data items");
    free(buf);
}

static void test_bstr_limit(void **state)
{
    (void)state;
    size_t max = VTSM_ABI_MAX_BSTR;
    uint8_t *buf = calloc(1, max + 16);
    assert_non_null(buf);
    size_t n = 0;
    buf[n++] = 0xa1;
    buf[n++] = 0x61;
    buf[n++] = 'o';
    buf[n++] = 0x5a;
    buf[n++] = (uint8_t)(max >> 24);
    buf[n++] = (uint8_t)(max >> 16);
    buf[n++] = (uint8_t)(max >> 8);
    buf[n++] = (uint8_t)max;
    cbor_item_t *it = decode_ok(buf, n + max);
    const uint8_t *p;
    size_t len;
    assert_int_equal(vtsm_abi_get_bytes(it, "o", &p, &len), VTSM_OK);
    assert_int_equal(len, max);
    cbor_decref(&it);
    /* one byte more, backed by real bytes */
    buf[7] = (uint8_t)(max + 1);
    expect_decode(buf, n + max + 1, VTSM_E_ABI_MALFORMED, "byte string of 1048593 bytes");
    free(buf);
}

static void test_tstr_limit_and_utf8(void **state)
{
    (void)state;
    size_t max = VTSM_ABI_MAX_TSTR;
    uint8_t *buf = malloc(max + 16);
    assert_non_null(buf);
    size_t n = 0;
    buf[n++] = 0xa1;
    buf[n++] = 0x61;
    buf[n++] = 't';
    buf[n++] = 0x7a;
    buf[n++] = 0;
    buf[n++] = (uint8_t)((max + 1) >> 16);
    buf[n++] = (uint8_t)((max + 1) >> 8);
    buf[n++] = (uint8_t)(max + 1);
    memset(buf + n, 'x', max + 1);
    expect_decode(buf, n + max + 1, VTSM_E_ABI_MALFORMED, "text string of 65537 bytes");
    free(buf);

    EXPECT_MALFORMED("not valid UTF-8", 0xa1, 0x61, 'a', 0x61, 0xff);
    EXPECT_MALFORMED("not valid UTF-8", 0xa1, 0x61, 'a', 0x62, 0xc0, 0x80);       /* overlong */
    EXPECT_MALFORMED("not valid UTF-8", 0xa1, 0x61, 'a', 0x63, 0xed, 0xa0, 0x80); /* surrogate */
    EXPECT_MALFORMED("not valid UTF-8", 0xa1, 0x61, 'a', 0x62, 0xe2, 0x82);       /* cut */
    EXPECT_MALFORMED("not valid UTF-8", 0xa1, 0x62, 0xc3, 0x28, 0x01);            /* in a key */
    static const uint8_t ok[] = {0xa1, 0x61, 'a', 0x64, 0xf0, 0x9f, 0x98, 0x80};
    cbor_item_t *it = decode_ok(ok, sizeof(ok));
    cbor_decref(&it);
}

/* ---- getters and schema ---- */

static cbor_item_t *sample_map(void)
{
    cbor_item_t *m = vtsm_abi_map_new();
    assert_non_null(m);
    assert_int_equal(vtsm_abi_put_uint(m, "u", 7), VTSM_OK);
    assert_int_equal(vtsm_abi_put_bool(m, "b", true), VTSM_OK);
    assert_int_equal(vtsm_abi_put_tstr(m, "t", "dev0"), VTSM_OK);
    static const uint8_t bytes[] = {1, 2, 3};
    assert_int_equal(vtsm_abi_put_bytes(m, "y", bytes, sizeof(bytes)), VTSM_OK);
    assert_int_equal(vtsm_abi_put_item(m, "m", vtsm_abi_map_new()), VTSM_OK);
    assert_int_equal(vtsm_abi_put_item(m, "a", vtsm_abi_array_new()), VTSM_OK);
    assert_int_equal(vtsm_abi_put_item(m, "n", cbor_build_negint8(4)), VTSM_OK);
    /* round trip through the wire form so getters see decoder-built items */
    struct vtsm_buf f = {0};
    assert_int_equal(vtsm_abi_encode(m, &f), VTSM_OK);
    cbor_decref(&m);
    m = decode_ok(f.data + 4, f.len - 4);
    vtsm_buf_free(&f);
    return m;
}

#define EXPECT_ARG(call, detail)                                                                   \
    do {                                                                                           \
        vtsm_err_clear();                                                                          \
        assert_int_equal((call), VTSM_E_ABI_ARG);                                                  \
        assert_string_equal(vtsm_err_detail(), detail);                                            \
    } while (0)

static void test_getter_wrong_types(void **state)
{
    (void)state;
    cbor_item_t *m = sample_map();
    uint64_t u;
    bool b, here;
    char s[16];
    const char *sp;
    const uint8_t *p;
    size_t len;
    const cbor_item_t *c;

    EXPECT_ARG(vtsm_abi_get_uint(m, "t", &u), "key 't' must be uint");
    EXPECT_ARG(vtsm_abi_get_uint(m, "n", &u), "key 'n' must be uint");
    EXPECT_ARG(vtsm_abi_get_bool(m, "u", &b), "key 'u' must be bool");
    EXPECT_ARG(vtsm_abi_get_tstr(m, "y", s, sizeof(s)), "key 'y' must be tstr");
    EXPECT_ARG(vtsm_abi_get_tstr_ref(m, "u", &sp, &len), "key 'u' must be tstr");
    EXPECT_ARG(vtsm_abi_get_bytes(m, "t", &p, &len), "key 't' must be bstr");
    EXPECT_ARG(vtsm_abi_get_map(m, "a", &c), "key 'a' must be map");
    EXPECT_ARG(vtsm_abi_get_array(m, "m", &c), "key 'm' must be array");
    EXPECT_ARG(vtsm_abi_opt_uint(m, "b", &u, &here), "key 'b' must be uint");
    EXPECT_ARG(vtsm_abi_opt_bool(m, "t", &b, &here), "key 't' must be bool");
    EXPECT_ARG(vtsm_abi_opt_tstr(m, "u", s, sizeof(s), &here), "key 'u' must be tstr");
    EXPECT_ARG(vtsm_abi_opt_bytes(m, "u", &p, &len, &here), "key 'u' must be bstr");
    EXPECT_ARG(vtsm_abi_opt_map(m, "y", &c, &here), "key 'y' must be map");
    EXPECT_ARG(vtsm_abi_opt_array(m, "y", &c, &here), "key 'y' must be array");

    /* missing keys */
    EXPECT_ARG(vtsm_abi_get_uint(m, "slot", &u), "missing key 'slot'");
    EXPECT_ARG(vtsm_abi_get_bytes(m, "object", &p, &len), "missing key 'object'");
    EXPECT_ARG(vtsm_abi_get_id(m, &u), "missing key 'id'");
    /* too long for the caller's buffer */
    char tiny[4];
    EXPECT_ARG(vtsm_abi_get_tstr(m, "t", tiny, sizeof(tiny)), "key 't' longer than 3 bytes");
    /* not a map at all */
    const cbor_item_t *arr = vtsm_abi_find(m, "a");
    EXPECT_ARG(vtsm_abi_get_uint(arr, "x", &u), "looking up 'x': not a map");

    /* optional and absent: OK, outputs untouched */
    u = 99;
    here = true;
    assert_int_equal(vtsm_abi_opt_uint(m, "absent", &u, &here), VTSM_OK);
    assert_false(here);
    assert_int_equal(u, 99);

    /* and the right types work */
    assert_int_equal(vtsm_abi_get_uint(m, "u", &u), VTSM_OK);
    assert_int_equal(u, 7);
    assert_int_equal(vtsm_abi_get_bool(m, "b", &b), VTSM_OK);
    assert_true(b);
    assert_int_equal(vtsm_abi_get_tstr(m, "t", s, sizeof(s)), VTSM_OK);
    assert_string_equal(s, "dev0");
    assert_int_equal(vtsm_abi_get_bytes(m, "y", &p, &len), VTSM_OK);
    assert_int_equal(len, 3);
    assert_int_equal(p[2], 3);
    assert_int_equal(vtsm_abi_opt_map(m, "m", &c, &here), VTSM_OK);
    assert_true(here);
    assert_true(cbor_isa_map(c));
    assert_int_equal(vtsm_abi_get_array(m, "a", &c), VTSM_OK);
    assert_true(cbor_isa_array(c));
    cbor_decref(&m);
}

static void test_check_keys(void **state)
{
    (void)state;
    cbor_item_t *m = vtsm_abi_request_msg(VTSM_ABI_OP_DEVICE_CONNECT, 5);
    assert_non_null(m);
    assert_int_equal(vtsm_abi_put_tstr(m, "dev", "d"), VTSM_OK);
    assert_int_equal(vtsm_abi_put_uint(m, "slot", 1), VTSM_OK);
    assert_int_equal(vtsm_abi_check_keys(m, vtsm_abi_keys_device_connect), VTSM_OK);
    assert_int_equal(vtsm_abi_put_bool(m, "ide", true), VTSM_OK);
    EXPECT_ARG(vtsm_abi_check_keys(m, vtsm_abi_keys_device_connect),
               "unknown key 'ide' for DEVICE_CONNECT");
    cbor_decref(&m);

    m = vtsm_abi_map_new();
    assert_int_equal(vtsm_abi_put_uint(m, "zzz", 1), VTSM_OK);
    EXPECT_ARG(vtsm_abi_check_keys(m, vtsm_abi_keys_status), "unknown key 'zzz' for message");
    cbor_decref(&m);
}

/* The guest body has no envelope: "op" and "id" are unknown keys there. */
static void test_check_keys_in_body(void **state)
{
    (void)state;
    cbor_item_t *m = vtsm_abi_map_new();
    assert_int_equal(vtsm_abi_put_uint(m, "gop", VTSM_ABI_GOP_LIST), VTSM_OK);
    assert_int_equal(vtsm_abi_put_uint(m, "tvm", 1), VTSM_OK);
    assert_int_equal(vtsm_abi_put_uint(m, "seq", 1), VTSM_OK);
    assert_int_equal(vtsm_abi_check_keys_in(m, vtsm_abi_keys_guest_body, "guest request body"),
                     VTSM_OK);
    assert_int_equal(vtsm_abi_put_uint(m, "op", 0x40), VTSM_OK);
    EXPECT_ARG(vtsm_abi_check_keys_in(m, vtsm_abi_keys_guest_body, "guest request body"),
               "unknown key 'op' for guest request body");
    /* the message form still allows op/id */
    assert_int_equal(vtsm_abi_check_keys(m, vtsm_abi_keys_guest_body), VTSM_OK);
    cbor_decref(&m);

    m = vtsm_abi_map_new();
    assert_int_equal(vtsm_abi_put_uint(m, "id", 1), VTSM_OK);
    EXPECT_ARG(vtsm_abi_check_keys_in(m, vtsm_abi_keys_guest_body, NULL),
               "unknown key 'id' for map");
    cbor_decref(&m);

    cbor_item_t *a = vtsm_abi_array_new();
    EXPECT_ARG(vtsm_abi_check_keys_in(a, vtsm_abi_keys_guest_body, "guest request body"),
               "guest request body is not a map");
    cbor_decref(&a);

    /* a long multi-byte key is cut on a character boundary (the detail stays UTF-8) */
    m = vtsm_abi_map_new();
    char key[200];
    size_t n = 0;
    key[n++] = 'k';
    while (n + 2 < sizeof(key)) {
        key[n++] = (char)0xc3; /* U+00E9 */
        key[n++] = (char)0xa9;
    }
    key[n] = '\0';
    assert_int_equal(vtsm_abi_put_uint(m, key, 1), VTSM_OK);
    vtsm_err_clear();
    assert_int_equal(vtsm_abi_check_keys_in(m, vtsm_abi_keys_guest_body, "body"), VTSM_E_ABI_ARG);
    const char *d = vtsm_err_detail();
    const char *q = strchr(d, '\'');
    const char *e = q ? strchr(q + 1, '\'') : NULL;
    assert_non_null(e);
    assert_int_equal(e - q - 1, 63); /* 'k' + 31 two-byte characters, not 64 bytes */
    cbor_decref(&m);
}

/* Every request schema, exactly (docs/abi.md sections 7 and 8.3). */
static void test_key_lists(void **state)
{
    (void)state;
    static const struct {
        const char *const *keys;
        const char *want;
    } lists[] = {
        {vtsm_abi_keys_device_connect,
         "dev slot allow_untrusted min_version max_version asym hash ide_streams ide_only "
         "challenge ide_lenient stream_ids ide_addr_ranges ide_link tdis"},
        {vtsm_abi_keys_device_reclaim, "dev force"},
        {vtsm_abi_keys_ide_refresh, "dev"},
        {vtsm_abi_keys_ide_link_check, "dev"},
        {vtsm_abi_keys_spdm_key_update, "dev all"},
        {vtsm_abi_keys_spdm_heartbeat, "dev"},
        {vtsm_abi_keys_tvm_create, "name guest_key debug"},
        {vtsm_abi_keys_tvm_destroy, "tvm"},
        {vtsm_abi_keys_tdi_bind, "dev tdi tvm lock_flags assign"},
        {vtsm_abi_keys_tdi_unbind, "dev tdi"},
        {vtsm_abi_keys_guest_request, "tvm body sig"},
        {vtsm_abi_keys_guest_body,
         "gop tvm seq dev tdi nonce reason report_digest measurements_digest "
         "lock_nonce_digest scope range gpa pages private"},
    };
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
        char got[256] = "";
        for (size_t k = 0; lists[i].keys[k]; k++) {
            if (k)
                strcat(got, " ");
            strcat(got, lists[i].keys[k]);
        }
        assert_string_equal(got, lists[i].want);
    }
    /* the key macros spell the same names */
    assert_string_equal(VTSM_ABI_K_FORCE, "force");
    assert_string_equal(VTSM_ABI_K_IDE_STREAMS, vtsm_abi_keys_device_connect[7]);
    assert_string_equal(VTSM_ABI_K_GUEST_KEY, vtsm_abi_keys_tvm_create[1]);
    assert_string_equal(VTSM_ABI_K_LOCK_FLAGS, vtsm_abi_keys_tdi_bind[3]);
    assert_int_equal(strlen(VTSM_ABI_GUEST_SIG_PREFIX), 21);
}

static void test_check_dev(void **state)
{
    (void)state;
    assert_int_equal(vtsm_abi_check_dev("0000:01:00.0"), VTSM_OK);
    assert_int_equal(vtsm_abi_check_dev("a-b_c.d:E9"), VTSM_OK);
    char longest[VTSM_ABI_DEV_MAX + 2];
    memset(longest, 'x', sizeof(longest));
    longest[VTSM_ABI_DEV_MAX] = '\0';
    assert_int_equal(vtsm_abi_check_dev(longest), VTSM_OK);
    longest[VTSM_ABI_DEV_MAX] = 'x';
    longest[VTSM_ABI_DEV_MAX + 1] = '\0';
    EXPECT_ARG(vtsm_abi_check_dev(longest), "device name must be 1..64 characters");
    EXPECT_ARG(vtsm_abi_check_dev(""), "device name must be 1..64 characters");
    EXPECT_ARG(vtsm_abi_check_dev("a/b"), "device name may only hold [A-Za-z0-9:._-]");
    EXPECT_ARG(vtsm_abi_check_dev("a b"), "device name may only hold [A-Za-z0-9:._-]");

    cbor_item_t *m = vtsm_abi_map_new();
    char dev[VTSM_ABI_DEV_BUF];
    assert_int_equal(vtsm_abi_put_tstrn(m, "dev", "a\0b", 3), VTSM_OK);
    EXPECT_ARG(vtsm_abi_get_dev(m, dev), "key 'dev' contains NUL");
    assert_int_equal(vtsm_abi_put_tstr(m, "dev", "../x"), VTSM_OK);
    EXPECT_ARG(vtsm_abi_get_dev(m, dev), "device name may only hold [A-Za-z0-9:._-]");
    assert_int_equal(vtsm_abi_put_tstr(m, "dev", "pf0"), VTSM_OK);
    assert_int_equal(vtsm_abi_get_dev(m, dev), VTSM_OK);
    assert_string_equal(dev, "pf0");
    cbor_decref(&m);
}

/* PCI addresses: every accepted spelling to its canonical form, the rest refused. */
static void test_dev_canon(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } ok[] = {
        {"0000:01:00.0", "0000:01:00.0"}, {"0000:1:00.0", "0000:01:00.0"},
        {"1:00.0", "0000:01:00.0"},       {"1:0.0", "0000:01:00.0"},
        {"0:0A:1F.7", "0000:0a:1f.7"},    {"ffff:ff:1f.7", "ffff:ff:1f.7"},
        {"00:00.0", "0000:00:00.0"},      {"12:3:4.5", "0012:03:04.5"},
    };
    static const char *const bad[] = {
        "",
        "foo",
        "dev0",
        "1:20.0",
        "1:00.8",
        "1:00.0 ",
        "100:00.0",
        "0000:01:00",
        ":01:00.0",
        "0000:01:00.0.0",
        "0000:100:00.0",
        "00000:01:00.0",
        "0000:01:000.0",
        "0000:01:00.00",
        "0x1:00.0",
        "1:00.-1",
        "g:00.0",
        "1::00.0",
    };
    char out[VTSM_ABI_DEV_BUF];
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        memset(out, 0, sizeof(out));
        if (vtsm_abi_dev_canon(ok[i].in, out) != VTSM_OK)
            fail_msg("'%s' refused: %s", ok[i].in, vtsm_err_detail());
        assert_string_equal(out, ok[i].out);
        assert_true(vtsm_abi_dev_same(ok[i].in, ok[i].out));
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        strcpy(out, "untouched");
        vtsm_err_clear();
        if (vtsm_abi_dev_canon(bad[i], out) != VTSM_E_ABI_ARG)
            fail_msg("'%s' accepted", bad[i]);
        assert_int_equal(vtsm_err_rule(), VTSM_RULE_PDEV_30);
        assert_string_equal(out, "untouched");
    }
    /* canonicalising in place */
    strcpy(out, "2:3.4");
    assert_int_equal(vtsm_abi_dev_canon(out, out), VTSM_OK);
    assert_string_equal(out, "0000:02:03.4");
    uint16_t seg = 0, rid = 0;
    assert_int_equal(vtsm_abi_dev_rid("0001:be:1d.7", &seg, &rid), VTSM_OK);
    assert_int_equal(seg, 1);
    assert_int_equal(rid, 0xBEEF);
    assert_int_equal(vtsm_abi_dev_rid("foo", &seg, &rid), VTSM_E_ABI_ARG);
    /* same device: by address when both are addresses, else by the names as given */
    assert_false(vtsm_abi_dev_same("1:00.0", "1:00.1"));
    assert_true(vtsm_abi_dev_same("pf0", "pf0"));
    assert_false(vtsm_abi_dev_same("pf0", "PF0"));
    assert_false(vtsm_abi_dev_same(NULL, "pf0"));
}

static void test_encode_refuses(void **state)
{
    (void)state;
    struct vtsm_buf f = {0};
    cbor_item_t *m = vtsm_abi_map_new();
    assert_int_equal(vtsm_abi_put_item(m, "f", cbor_build_float8(1.5)), VTSM_OK);
    assert_int_equal(vtsm_abi_encode(m, &f), VTSM_E_INVAL);
    cbor_decref(&m);
    m = vtsm_abi_map_new();
    assert_int_equal(vtsm_abi_put_item(m, "t", cbor_build_tag(1, cbor_move(cbor_build_uint8(1)))),
                     VTSM_OK);
    assert_int_equal(vtsm_abi_encode(m, &f), VTSM_E_INVAL);
    cbor_decref(&m);
    m = cbor_new_definite_array(0);
    assert_int_equal(vtsm_abi_encode(m, &f), VTSM_E_INVAL);
    cbor_decref(&m);
    /* payload over 4 MiB: five 1 MiB byte strings */
    m = vtsm_abi_map_new();
    uint8_t *mb = calloc(1, 1u << 20);
    assert_non_null(mb);
    char key[2] = "a";
    for (int i = 0; i < 5; i++, key[0]++)
        assert_int_equal(vtsm_abi_put_bytes(m, key, mb, 1u << 20), VTSM_OK);
    vtsm_err_clear();
    assert_int_equal(vtsm_abi_encode(m, &f), VTSM_E_ABI_OVERSIZED);
    assert_int_equal(f.len, 0);
    free(mb);
    cbor_decref(&m);
    vtsm_buf_free(&f);
}

/* ---- round trips ---- */

static void test_encode_exact_bytes(void **state)
{
    (void)state;
    cbor_item_t *m = vtsm_abi_request_msg(VTSM_ABI_OP_STATUS, 300);
    struct vtsm_buf f = {0};
    assert_int_equal(vtsm_abi_encode(m, &f), VTSM_OK);
    static const uint8_t want[] = {0,    0,    0,   11,  0xa2, 0x62, 'o', 'p',
                                   0x14, 0x62, 'i', 'd', 0x19, 0x01, 0x2c};
    assert_int_equal(f.len, sizeof(want));
    assert_memory_equal(f.data, want, sizeof(want));
    cbor_decref(&m);
    vtsm_buf_free(&f);
}

static void test_round_trip_messages(void **state)
{
    (void)state;
    struct vtsm_buf f = {0};
    cbor_item_t *back;
    uint64_t u;
    char s[64];

    /* ERROR */
    cbor_item_t *m = vtsm_abi_error_msg(9, VTSM_E_PEER_SIGNATURE, "CHALLENGE_AUTH signature");
    assert_int_equal(vtsm_abi_encode(m, &f), VTSM_OK);
    back = decode_ok(f.data + 4, f.len - 4);
    struct vtsm_abi_error e;
    assert_int_equal(vtsm_abi_parse_error(back, &e), VTSM_OK);
    assert_int_equal(e.id, 9);
    assert_int_equal(e.status, VTSM_E_PEER_SIGNATURE);
    assert_int_equal(e.status_raw, (uint64_t)VTSM_E_PEER_SIGNATURE);
    assert_string_equal(e.name, "peer_signature");
    assert_string_equal(e.source, "peer");
    assert_string_equal(e.detail, "CHALLENGE_AUTH signature");
    cbor_decref(&m);
    cbor_decref(&back);

    /* RESULT with fields */
    m = vtsm_abi_result_msg(11);
    assert_int_equal(vtsm_abi_put_tstr(m, "state", "connected"), VTSM_OK);
    cbor_item_t *alg = vtsm_abi_map_new();
    assert_int_equal(vtsm_abi_put_tstr(alg, "hash", "sha384"), VTSM_OK);
    assert_int_equal(vtsm_abi_put_item(m, "algorithms", alg), VTSM_OK);
    cbor_item_t *arr = vtsm_abi_array_new();
    assert_int_equal(vtsm_abi_push_uint(arr, 1), VTSM_OK);
    assert_int_equal(vtsm_abi_push_tstr(arr, "x"), VTSM_OK);
    assert_int_equal(vtsm_abi_push_bytes(arr, (const uint8_t *)"\x01", 1), VTSM_OK);
    assert_int_equal(vtsm_abi_push_item(arr, vtsm_abi_map_new()), VTSM_OK);
    assert_int_equal(vtsm_abi_put_item(m, "blocks", arr), VTSM_OK);
    assert_int_equal(vtsm_abi_encode(m, &f), VTSM_OK);
    back = decode_ok(f.data + 4, f.len - 4);
    assert_int_equal(vtsm_abi_get_op(back, &u), VTSM_OK);
    assert_int_equal(u, VTSM_ABI_OP_RESULT);
    assert_int_equal(vtsm_abi_get_id(back, &u), VTSM_OK);
    assert_int_equal(u, 11);
    assert_int_equal(vtsm_abi_get_uint(back, "status", &u), VTSM_OK);
    assert_int_equal(u, 0);
    const cbor_item_t *sub;
    assert_int_equal(vtsm_abi_get_map(back, "algorithms", &sub), VTSM_OK);
    assert_int_equal(vtsm_abi_get_tstr(sub, "hash", s, sizeof(s)), VTSM_OK);
    assert_string_equal(s, "sha384");
    assert_int_equal(vtsm_abi_get_array(back, "blocks", &sub), VTSM_OK);
    assert_int_equal(cbor_array_size(sub), 4);
    cbor_decref(&m);
    cbor_decref(&back);

    /* DOE_PENDING with a large object */
    size_t olen = 1u << 20;
    uint8_t *obj = malloc(olen);
    for (size_t i = 0; i < olen; i++)
        obj[i] = (uint8_t)(i * 7);
    m = vtsm_abi_doe_pending_msg(3, "dev0", 2, obj, olen);
    assert_int_equal(vtsm_abi_encode(m, &f), VTSM_OK);
    back = decode_ok(f.data + 4, f.len - 4);
    assert_int_equal(vtsm_abi_check_keys(back, (const char *const[]){"dev", "seq", "object", NULL}),
                     VTSM_OK);
    const uint8_t *p;
    size_t len;
    assert_int_equal(vtsm_abi_get_bytes(back, "object", &p, &len), VTSM_OK);
    assert_int_equal(len, olen);
    assert_memory_equal(p, obj, olen);
    assert_int_equal(vtsm_abi_get_uint(back, "seq", &u), VTSM_OK);
    assert_int_equal(u, 2);
    free(obj);
    cbor_decref(&m);
    cbor_decref(&back);

    /* HELLO, DOE_RESPONSE (object and error forms) */
    m = vtsm_abi_hello_msg(1, VTSM_ABI_ROLE_HOST, "test");
    assert_int_equal(vtsm_abi_check_keys(m, vtsm_abi_keys_hello), VTSM_OK);
    assert_int_equal(vtsm_abi_get_tstr(m, "role", s, sizeof(s)), VTSM_OK);
    assert_int_equal(vtsm_abi_role_parse(s), VTSM_ABI_ROLE_HOST);
    assert_int_equal(vtsm_abi_get_array(m, "versions", &sub), VTSM_OK);
    assert_int_equal(cbor_get_int(cbor_array_handle(sub)[0]), VTSM_ABI_VERSION);
    cbor_decref(&m);
    m = vtsm_abi_doe_response_msg(4, "d", 1, NULL, 0, "link down");
    assert_int_equal(vtsm_abi_check_keys(m, vtsm_abi_keys_doe_response), VTSM_OK);
    assert_int_equal(vtsm_abi_get_tstr(m, "error", s, sizeof(s)), VTSM_OK);
    assert_string_equal(s, "link down");
    assert_null(vtsm_abi_find(m, "object"));
    cbor_decref(&m);
    m = vtsm_abi_doe_response_msg(4, "d", 1, (const uint8_t *)"\1\0\1\0\2\0\0\0", 8, NULL);
    assert_int_equal(vtsm_abi_get_bytes(m, "object", &p, &len), VTSM_OK);
    assert_int_equal(len, 8);
    assert_null(vtsm_abi_find(m, "error"));
    cbor_decref(&m);
    vtsm_buf_free(&f);
}

static void test_put_replaces(void **state)
{
    (void)state;
    cbor_item_t *m = vtsm_abi_map_new();
    assert_int_equal(vtsm_abi_put_uint(m, "k", 1), VTSM_OK);
    assert_int_equal(vtsm_abi_put_uint(m, "k", 2), VTSM_OK);
    assert_int_equal(cbor_map_size(m), 1);
    uint64_t u;
    assert_int_equal(vtsm_abi_get_uint(m, "k", &u), VTSM_OK);
    assert_int_equal(u, 2);
    /* a failed build does not leak and reports E_NOMEM */
    assert_int_equal(vtsm_abi_put_item(m, "x", NULL), VTSM_E_NOMEM);
    cbor_decref(&m);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(vtsm_abi_op_name(VTSM_ABI_OP_DEVICE_CONNECT), "DEVICE_CONNECT");
    assert_string_equal(vtsm_abi_op_name(0x82), "DOE_PENDING");
    assert_string_equal(vtsm_abi_op_name(0x15), "IDE_REFRESH");
    assert_string_equal(vtsm_abi_op_name(0x16), "IDE_LINK_CHECK");
    assert_string_equal(vtsm_abi_op_name(0x30), "TVM_CREATE");
    assert_string_equal(vtsm_abi_op_name(0x31), "TVM_DESTROY");
    assert_string_equal(vtsm_abi_op_name(0x32), "TDI_BIND");
    assert_string_equal(vtsm_abi_op_name(0x33), "TDI_UNBIND");
    assert_string_equal(vtsm_abi_op_name(0x40), "GUEST_REQUEST");
    assert_string_equal(vtsm_abi_op_name(0x17), "SPDM_KEY_UPDATE");
    assert_string_equal(vtsm_abi_op_name(0x18), "SPDM_HEARTBEAT");
    assert_null(vtsm_abi_op_name(0x1B));
    assert_null(vtsm_abi_op_name(0x34));
    assert_null(vtsm_abi_op_name(0x41)); /* a gop, not an opcode */
    assert_null(vtsm_abi_op_name(UINT64_MAX));
    assert_string_equal(vtsm_abi_gop_name(VTSM_ABI_GOP_LIST), "LIST");
    assert_string_equal(vtsm_abi_gop_name(0x42), "INFO");
    assert_string_equal(vtsm_abi_gop_name(0x43), "ACCEPT");
    assert_string_equal(vtsm_abi_gop_name(0x44), "REJECT");
    assert_null(vtsm_abi_gop_name(0x40));
    assert_string_equal(vtsm_abi_gop_name(0x45), "LOCK");
    assert_string_equal(vtsm_abi_gop_name(0x46), "UNLOCK");
    assert_string_equal(vtsm_abi_gop_name(0x47), "DEBUG_READ");
    assert_string_equal(vtsm_abi_gop_name(0x48), "DEBUG_WRITE");
    assert_null(vtsm_abi_gop_name(0x49));
    /* scopes: Linux's enum pci_tsm_req_scope */
    assert_int_equal(vtsm_abi_gop_scope(VTSM_ABI_GOP_INFO), 0);
    assert_int_equal(vtsm_abi_gop_scope(VTSM_ABI_GOP_LIST), 0);
    assert_int_equal(vtsm_abi_gop_scope(VTSM_ABI_GOP_ACCEPT), 1);
    assert_int_equal(vtsm_abi_gop_scope(VTSM_ABI_GOP_LOCK), 1);
    assert_int_equal(vtsm_abi_gop_scope(VTSM_ABI_GOP_UNLOCK), 1);
    assert_int_equal(vtsm_abi_gop_scope(VTSM_ABI_GOP_REJECT), 1);
    assert_int_equal(vtsm_abi_gop_scope(VTSM_ABI_GOP_DEBUG_READ), 2);
    assert_int_equal(vtsm_abi_gop_scope(VTSM_ABI_GOP_DEBUG_WRITE), 3);
    assert_int_equal(vtsm_abi_gop_scope(0x49), -1);
    assert_string_equal(vtsm_abi_role_name(VTSM_ABI_ROLE_GUEST), "guest");
    assert_int_equal(vtsm_abi_role_parse("root"), VTSM_ABI_ROLE_NONE);
}

/* ---- incremental reader and blocking framing ---- */

static void two_frames(struct vtsm_buf *out)
{
    struct vtsm_buf f = {0};
    cbor_item_t *a = vtsm_abi_doe_pending_msg(1, "dev0", 1, (const uint8_t *)"abcdefgh", 8);
    cbor_item_t *b = vtsm_abi_result_msg(2);
    assert_int_equal(vtsm_abi_encode(a, &f), VTSM_OK);
    assert_int_equal(vtsm_buf_set(out, f.data, f.len), VTSM_OK);
    assert_int_equal(vtsm_abi_encode(b, &f), VTSM_OK);
    assert_int_equal(vtsm_buf_append(out, f.data, f.len), VTSM_OK);
    cbor_decref(&a);
    cbor_decref(&b);
    vtsm_buf_free(&f);
}

static void test_reader_byte_at_a_time(void **state)
{
    (void)state;
    struct vtsm_buf wire = {0};
    two_frames(&wire);
    struct vtsm_abi_reader r;
    vtsm_abi_reader_init(&r);
    uint64_t ids[2];
    int got = 0;
    for (size_t i = 0; i < wire.len; i++) {
        assert_int_equal(vtsm_abi_reader_feed(&r, wire.data + i, 1), VTSM_OK);
        cbor_item_t *m = NULL;
        const uint8_t *raw;
        size_t rawlen;
        bool whole = vtsm_abi_reader_frame(&r, &raw, &rawlen);
        assert_int_equal(vtsm_abi_reader_next(&r, &m), VTSM_OK);
        assert_int_equal(whole, m != NULL);
        if (m) {
            assert_true(got < 2);
            assert_int_equal(vtsm_abi_get_id(m, &ids[got]), VTSM_OK);
            got++;
            cbor_decref(&m);
        } else {
            assert_true(vtsm_abi_reader_partial(&r));
        }
    }
    assert_int_equal(got, 2);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 2);
    assert_false(vtsm_abi_reader_partial(&r));
    vtsm_abi_reader_free(&r);
    vtsm_buf_free(&wire);
}

static void test_reader_skips_malformed(void **state)
{
    (void)state;
    struct vtsm_abi_reader r;
    vtsm_abi_reader_init(&r);
    static const uint8_t bad[] = {0, 0, 0, 2, 0xa1, 0x01};
    static const uint8_t good[] = {0, 0, 0, 4, 0xa1, 0x61, 'a', 0x01};
    assert_int_equal(vtsm_abi_reader_feed(&r, bad, sizeof(bad)), VTSM_OK);
    assert_int_equal(vtsm_abi_reader_feed(&r, good, sizeof(good)), VTSM_OK);
    cbor_item_t *m = NULL;
    assert_int_equal(vtsm_abi_reader_next(&r, &m), VTSM_E_ABI_MALFORMED);
    assert_null(m);
    assert_int_equal(vtsm_abi_reader_next(&r, &m), VTSM_OK);
    assert_non_null(m);
    cbor_decref(&m);
    assert_int_equal(vtsm_abi_reader_next(&r, &m), VTSM_OK);
    assert_null(m);
    vtsm_abi_reader_free(&r);
}

static void test_reader_read_nonblocking(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
    struct vtsm_abi_reader r;
    vtsm_abi_reader_init(&r);
    cbor_item_t *m = NULL;
    assert_int_equal(vtsm_abi_reader_read(&r, sv[0], &m), VTSM_OK); /* EAGAIN */
    assert_null(m);

    struct vtsm_buf wire = {0};
    two_frames(&wire);
    assert_int_equal(write(sv[1], wire.data, 5), 5);
    assert_int_equal(vtsm_abi_reader_read(&r, sv[0], &m), VTSM_OK);
    assert_null(m);
    assert_int_equal(write(sv[1], wire.data + 5, wire.len - 5), (ssize_t)(wire.len - 5));
    int got = 0;
    for (;;) {
        assert_int_equal(vtsm_abi_reader_read(&r, sv[0], &m), VTSM_OK);
        if (!m)
            break;
        got++;
        cbor_decref(&m);
    }
    assert_int_equal(got, 2);
    /* EOF between frames, then inside one */
    close(sv[1]);
    assert_int_equal(vtsm_abi_reader_read(&r, sv[0], &m), VTSM_E_CLOSED);
    close(sv[0]);
    vtsm_abi_reader_free(&r);

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    vtsm_abi_reader_init(&r);
    assert_int_equal(write(sv[1], wire.data, 6), 6);
    close(sv[1]);
    vtsm_err_clear();
    assert_int_equal(vtsm_abi_reader_read(&r, sv[0], &m), VTSM_E_IO);
    assert_detail_has("mid-frame");
    close(sv[0]);
    vtsm_abi_reader_free(&r);
    vtsm_buf_free(&wire);
}

static void test_send_recv(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    cbor_item_t *m = vtsm_abi_error_msg(0, VTSM_E_ABI_NO_HELLO, "HELLO must come first");
    assert_int_equal(vtsm_abi_send(sv[1], m), VTSM_OK);
    cbor_item_t *back = NULL;
    assert_int_equal(vtsm_abi_recv(sv[0], &back, 1000), VTSM_OK);
    struct vtsm_abi_error e;
    assert_int_equal(vtsm_abi_parse_error(back, &e), VTSM_OK);
    assert_string_equal(e.name, "abi_no_hello");
    assert_string_equal(e.source, "abi");
    cbor_decref(&back);
    cbor_decref(&m);
    /* nothing more: timeout, then EOF */
    assert_int_equal(vtsm_abi_recv(sv[0], &back, 20), VTSM_E_TIMEOUT);
    close(sv[1]);
    assert_int_equal(vtsm_abi_recv(sv[0], &back, 1000), VTSM_E_CLOSED);
    close(sv[0]);
}

/* ---- JSON ---- */

static void test_json_exact(void **state)
{
    (void)state;
    cbor_item_t *m = vtsm_abi_map_new();
    assert_int_equal(vtsm_abi_put_uint(m, "u", 18446744073709551615ull), VTSM_OK);
    assert_int_equal(vtsm_abi_put_item(m, "n", cbor_build_negint64(UINT64_MAX)), VTSM_OK);
    assert_int_equal(vtsm_abi_put_item(m, "n1", cbor_build_negint8(0)), VTSM_OK);
    assert_int_equal(vtsm_abi_put_bool(m, "t", true), VTSM_OK);
    assert_int_equal(vtsm_abi_put_bool(m, "f", false), VTSM_OK);
    assert_int_equal(vtsm_abi_put_tstr(m, "s", "q\"b\\n\n\r\t\b\f\x01\x1f\x7f/\xc3\xa9"), VTSM_OK);
    static const uint8_t bytes[] = {0x00, 0x0f, 0xab, 0xff};
    assert_int_equal(vtsm_abi_put_bytes(m, "b", bytes, sizeof(bytes)), VTSM_OK);
    assert_int_equal(vtsm_abi_put_bytes(m, "e", NULL, 0), VTSM_OK);
    cbor_item_t *a = vtsm_abi_array_new();
    assert_int_equal(vtsm_abi_push_uint(a, 1), VTSM_OK);
    assert_int_equal(vtsm_abi_push_item(a, vtsm_abi_map_new()), VTSM_OK);
    assert_int_equal(vtsm_abi_push_item(a, vtsm_abi_array_new()), VTSM_OK);
    assert_int_equal(vtsm_abi_put_item(m, "a", a), VTSM_OK);
    cbor_item_t *sub = vtsm_abi_map_new();
    assert_int_equal(vtsm_abi_put_tstr(sub, "k\"", "v"), VTSM_OK);
    assert_int_equal(vtsm_abi_put_item(m, "m", sub), VTSM_OK);

    char *j = json_of(m, false);
    assert_string_equal(j,
                        "{\"u\":18446744073709551615,\"n\":-18446744073709551616,\"n1\":-1,"
                        "\"t\":true,\"f\":false,"
                        "\"s\":\"q\\\"b\\\\n\\n\\r\\t\\b\\f\\u0001\\u001f\x7f/\xc3\xa9\","
                        "\"b\":\"000fabff\",\"e\":\"\",\"a\":[1,{},[]],\"m\":{\"k\\\"\":\"v\"}}");
    free(j);

    cbor_item_t *small = vtsm_abi_map_new();
    assert_int_equal(vtsm_abi_put_uint(small, "x", 1), VTSM_OK);
    a = vtsm_abi_array_new();
    assert_int_equal(vtsm_abi_push_bytes(a, bytes, 2), VTSM_OK);
    assert_int_equal(vtsm_abi_push_item(a, vtsm_abi_map_new()), VTSM_OK);
    assert_int_equal(vtsm_abi_put_item(small, "a", a), VTSM_OK);
    sub = vtsm_abi_map_new();
    assert_int_equal(vtsm_abi_put_bool(sub, "ok", true), VTSM_OK);
    assert_int_equal(vtsm_abi_put_item(small, "m", sub), VTSM_OK);
    j = json_of(small, true);
    assert_string_equal(j, "{\n"
                           "  \"x\": 1,\n"
                           "  \"a\": [\n"
                           "    \"000f\",\n"
                           "    {}\n"
                           "  ],\n"
                           "  \"m\": {\n"
                           "    \"ok\": true\n"
                           "  }\n"
                           "}");
    free(j);
    cbor_decref(&small);
    cbor_decref(&m);

    cbor_item_t *empty = vtsm_abi_map_new();
    j = json_of(empty, true);
    assert_string_equal(j, "{}");
    free(j);
    cbor_decref(&empty);
}

/* The numeric status values are part of the ABI (docs/abi.md section 10): pin them. */
static void test_status_numbers_stable(void **state)
{
    (void)state;
    static const struct {
        int value;
        const char *name;
    } abi_v1[] = {
        {0, "ok"},
        {1, "nomem"},
        {2, "inval"},
        {3, "state"},
        {4, "busy"},
        {5, "not_found"},
        {6, "exists"},
        {7, "too_small"},
        {8, "unsupported"},
        {9, "internal"},
        {10, "limit"},
        {11, "aborted"},
        {12, "config"},
        {13, "crypto"},
        {14, "io"},
        {15, "closed"},
        {16, "timeout"},
        {17, "doe_truncated"},
        {18, "doe_misaligned"},
        {19, "doe_oversized"},
        {20, "doe_header"},
        {21, "doe_host"},
        {22, "peer_malformed"},
        {23, "peer_truncated"},
        {24, "peer_unexpected"},
        {25, "peer_error"},
        {26, "peer_version"},
        {27, "peer_algo"},
        {28, "peer_caps"},
        {29, "peer_signature"},
        {30, "peer_hmac"},
        {31, "peer_chain"},
        {32, "peer_untrusted"},
        {33, "peer_digest"},
        {34, "peer_session_id"},
        {35, "peer_decrypt"},
        {36, "peer_nonce"},
        {37, "peer_not_ready"},
        {38, "peer_oversized"},
        {39, "peer_nak"},
        {40, "peer_state"},
        {41, "abi_malformed"},
        {42, "abi_unknown_op"},
        {43, "abi_version"},
        {44, "abi_role"},
        {45, "abi_no_hello"},
        {46, "abi_arg"},
        {47, "abi_oversized"},
        {48, "abi_sequence"},
        {49, "policy_refused"},
        {50, "no_stream"},
        {51, "not_owner"},
        {52, "auth"},
        {53, "replay"},
    };
    for (size_t i = 0; i < sizeof(abi_v1) / sizeof(abi_v1[0]); i++) {
        vtsm_status st = vtsm_status_from_name(abi_v1[i].name);
        if ((int)st != abi_v1[i].value)
            fail_msg("status '%s' is %d, ABI v1 says %d", abi_v1[i].name, (int)st, abi_v1[i].value);
    }
    assert_true(VTSM_STATUS_COUNT_ >= (int)(sizeof(abi_v1) / sizeof(abi_v1[0])));
    /* and what goes on the wire */
    cbor_item_t *m = vtsm_abi_error_msg(1, VTSM_E_ABI_MALFORMED, "x");
    uint64_t u;
    assert_int_equal(vtsm_abi_get_uint(m, "status", &u), VTSM_OK);
    assert_int_equal(u, 41);
    cbor_decref(&m);
}

/* Encode m, decode it and parse it as an ERROR. */
static void error_round_trip(cbor_item_t *m, struct vtsm_abi_error *e)
{
    struct vtsm_buf f = {0};
    assert_non_null(m);
    assert_int_equal(vtsm_abi_encode(m, &f), VTSM_OK);
    cbor_item_t *back = decode_ok(f.data + 4, f.len - 4);
    assert_int_equal(vtsm_abi_parse_error(back, e), VTSM_OK);
    cbor_decref(&back);
    cbor_decref(&m);
    vtsm_buf_free(&f);
}

/* The ERROR carries the rule of the thread's error record when the record describes the
 * failure (same status; the detail is the record's, or none is given), the rule its
 * status implies otherwise, and none when no rule applies. */
static void test_error_rule_field(void **state)
{
    (void)state;
    struct vtsm_abi_error e;

    /* the record's refusal: detail NULL -> the record's detail and rule */
    vtsm_refuse(VTSM_E_STATE, VTSM_RULE_TDI_4, "accept refused: TDI 1 is RUN");
    error_round_trip(vtsm_abi_error_msg(3, VTSM_E_STATE, NULL), &e);
    assert_int_equal(e.status, VTSM_E_STATE);
    assert_string_equal(e.detail, "accept refused: TDI 1 is RUN");
    assert_string_equal(e.rule_id, "TDI.4");
    assert_int_equal(e.rule, VTSM_RULE_TDI_4);

    /* the record's detail passed explicitly */
    error_round_trip(vtsm_abi_error_msg(3, VTSM_E_STATE, vtsm_err_detail()), &e);
    assert_int_equal(e.rule, VTSM_RULE_TDI_4);
    assert_string_equal(e.detail, "accept refused: TDI 1 is RUN");

    /* other words (even equal ones) are not the record's: no rule of the record */
    char copy[128];
    snprintf(copy, sizeof(copy), "%s", vtsm_err_detail());
    error_round_trip(vtsm_abi_error_msg(3, VTSM_E_STATE, copy), &e);
    assert_int_equal(e.rule, VTSM_RULE_NONE);
    error_round_trip(vtsm_abi_error_msg(3, VTSM_E_STATE, "something else"), &e);
    assert_string_equal(e.rule_id, "");
    assert_int_equal(e.rule, VTSM_RULE_NONE);
    /* another status: not the record's rule either; none given -> the status text */
    error_round_trip(vtsm_abi_error_msg(3, VTSM_E_BUSY, NULL), &e);
    assert_int_equal(e.rule, VTSM_RULE_NONE);
    assert_string_equal(e.detail, vtsm_status_text(VTSM_E_BUSY));

    /* a status that implies a rule */
    vtsm_err_clear();
    error_round_trip(vtsm_abi_error_msg(0, VTSM_E_ABI_UNKNOWN_OP, "unknown opcode 0x7f"), &e);
    assert_string_equal(e.rule_id, "ABI.2");
    assert_int_equal(e.rule, VTSM_RULE_ABI_2);

    /* an ERROR without rule (a TSM before the field) and one with a rule we do not know */
    cbor_item_t *m = vtsm_abi_request_msg(VTSM_ABI_OP_ERROR, 4);
    assert_int_equal(vtsm_abi_put_uint(m, VTSM_ABI_K_STATUS, VTSM_E_STATE), VTSM_OK);
    error_round_trip(m, &e);
    assert_int_equal(e.rule, VTSM_RULE_NONE);
    assert_string_equal(e.rule_id, "");
    m = vtsm_abi_request_msg(VTSM_ABI_OP_ERROR, 4);
    assert_int_equal(vtsm_abi_put_uint(m, VTSM_ABI_K_STATUS, VTSM_E_STATE), VTSM_OK);
    assert_int_equal(vtsm_abi_put_tstr(m, VTSM_ABI_K_RULE, "TDI.77"), VTSM_OK);
    error_round_trip(m, &e);
    assert_int_equal(e.rule, VTSM_RULE_NONE);
    assert_string_equal(e.rule_id, "TDI.77");
    /* a rule that is not text is a malformed ERROR */
    m = vtsm_abi_request_msg(VTSM_ABI_OP_ERROR, 4);
    assert_int_equal(vtsm_abi_put_uint(m, VTSM_ABI_K_STATUS, VTSM_E_STATE), VTSM_OK);
    assert_int_equal(vtsm_abi_put_uint(m, VTSM_ABI_K_RULE, 4), VTSM_OK);
    assert_int_equal(vtsm_abi_parse_error(m, &e), VTSM_E_ABI_ARG);
    cbor_decref(&m);

    /* the CLIs' JSON: "rule" after "detail", only when given */
    cbor_item_t *o =
        vtsm_abi_cli_error("accept", VTSM_E_STATE, "state", "core", "d", "TDI.4", NULL);
    char *j = json_of(o, false);
    assert_string_equal(j, "{\"error\":{\"verb\":\"accept\",\"status\":3,\"name\":\"state\","
                           "\"source\":\"core\",\"detail\":\"d\",\"rule\":\"TDI.4\"}}");
    free(j);
    cbor_decref(&o);
    o = vtsm_abi_cli_error("accept", VTSM_E_STATE, "state", "core", "d", "", NULL);
    j = json_of(o, false);
    assert_null(strstr(j, "rule"));
    free(j);
    cbor_decref(&o);
}

/* A guest request body decoded into its struct (abi/vtsm_abi_guest.h). */
static void test_guest_body_decode(void **state)
{
    (void)state;
    struct vtsm_abi_guest_body b;
    struct vtsm_buf f = {0};
    uint8_t nonce[32];
    for (unsigned i = 0; i < sizeof(nonce); i++)
        nonce[i] = (uint8_t)(0x30 + i);

    /* failure cases first: not CBOR, a key the operation does not take; out zeroed */
    memset(&b, 0x5a, sizeof(b));
    EXPECT(vtsm_abi_guest_body_decode((const uint8_t *)"\xff", 1, &b), VTSM_E_ABI_MALFORMED,
           VTSM_RULE_ABI_7);
    assert_int_equal(b.gop, 0);
    assert_false(b.has_dev);
    cbor_item_t *m = vtsm_abi_map_new();
    assert_int_equal(vtsm_abi_put_uint(m, VTSM_ABI_K_GOP, VTSM_ABI_GOP_LIST), VTSM_OK);
    assert_int_equal(vtsm_abi_put_uint(m, VTSM_ABI_K_TVM, 3), VTSM_OK);
    assert_int_equal(vtsm_abi_put_uint(m, VTSM_ABI_K_SEQ, 9), VTSM_OK);
    assert_int_equal(vtsm_abi_put_bytes(m, VTSM_ABI_K_NONCE, nonce, 32), VTSM_OK);
    assert_int_equal(vtsm_abi_encode(m, &f), VTSM_OK);
    memset(&b, 0x5a, sizeof(b));
    EXPECT_DETAIL(vtsm_abi_guest_body_decode(f.data + VTSM_ABI_FRAME_HDR_SIZE,
                                             f.len - VTSM_ABI_FRAME_HDR_SIZE, &b),
                  VTSM_E_ABI_ARG, VTSM_RULE_GUEST_4, "LIST takes no nonce");
    assert_false(b.has_nonce);
    assert_true(b.nonce[0] == 0 && b.seq == 0);
    cbor_decref(&m);

    /* INFO with its nonce */
    m = vtsm_abi_map_new();
    assert_int_equal(vtsm_abi_put_uint(m, VTSM_ABI_K_GOP, VTSM_ABI_GOP_INFO), VTSM_OK);
    assert_int_equal(vtsm_abi_put_uint(m, VTSM_ABI_K_TVM, 3), VTSM_OK);
    assert_int_equal(vtsm_abi_put_uint(m, VTSM_ABI_K_SEQ, 9), VTSM_OK);
    assert_int_equal(vtsm_abi_put_tstr(m, VTSM_ABI_K_DEV, "0000:01:00.0"), VTSM_OK);
    assert_int_equal(vtsm_abi_put_uint(m, VTSM_ABI_K_TDI, 2), VTSM_OK);
    assert_int_equal(vtsm_abi_put_bytes(m, VTSM_ABI_K_NONCE, nonce, 32), VTSM_OK);
    assert_int_equal(vtsm_abi_encode(m, &f), VTSM_OK);
    EXPECT(vtsm_abi_guest_body_decode(f.data + VTSM_ABI_FRAME_HDR_SIZE,
                                      f.len - VTSM_ABI_FRAME_HDR_SIZE, &b),
           VTSM_OK, VTSM_RULE_NONE);
    assert_int_equal(b.gop, VTSM_ABI_GOP_INFO);
    assert_int_equal(b.tvm, 3);
    assert_int_equal(b.seq, 9);
    assert_true(b.has_dev && b.has_tdi && b.has_nonce && !b.has_reason);
    assert_string_equal(b.dev, "0000:01:00.0");
    assert_int_equal(b.tdi, 2);
    assert_memory_equal(b.nonce, nonce, 32);
    cbor_decref(&m);
    vtsm_buf_free(&f);
}

/* A whole text file, NUL-terminated (the caller frees). */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n > 0);
    rewind(f);
    char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    b[n] = '\0';
    fclose(f);
    return b;
}

/* Every key named in abi/vtsm_abi.h (VTSM_ABI_K_*) is a field of docs/abi.md's grammar
 * ("key:" or "? key:"), and no two names spell the same key: the key list and the
 * documentation cannot drift apart. */
/* ---- requests decoded into struct vtsm_abi_req ---- */

static cbor_item_t *req_msg(enum vtsm_abi_op op)
{
    cbor_item_t *m = vtsm_abi_request_msg(op, 7);
    assert_non_null(m);
    return m;
}

/* Decoding m as its op must fail with E_ABI_ARG under rule, the detail holding needle.
 * Releases m. */
static void expect_req_refused(cbor_item_t *m, enum vtsm_abi_op op, enum vtsm_rule rule,
                               const char *needle)
{
    struct vtsm_abi_req r;
    vtsm_err_clear();
    assert_int_equal(vtsm_abi_req_decode(m, vtsm_abi_request_find(op), &r), VTSM_E_ABI_ARG);
    assert_int_equal(vtsm_err_rule(), rule);
    assert_detail_has(needle);
    cbor_decref(&m);
}

static void req_ok(cbor_item_t *m, enum vtsm_abi_op op, struct vtsm_abi_req *r)
{
    memset(r, 0xA5, sizeof(*r)); /* decode clears what is absent */
    vtsm_status st = vtsm_abi_req_decode(m, vtsm_abi_request_find(op), r);
    if (st != VTSM_OK)
        fail_msg("decode of %s failed: %s", vtsm_abi_op_name(op), vtsm_err_detail());
}

/* one key of a connect request set to a uint, the rest absent */
static cbor_item_t *connect_with_uint(const char *key, uint64_t v)
{
    cbor_item_t *m = req_msg(VTSM_ABI_OP_DEVICE_CONNECT);
    assert_int_equal(vtsm_abi_put_tstr(m, VTSM_ABI_K_DEV, "d0"), VTSM_OK);
    assert_int_equal(vtsm_abi_put_uint(m, key, v), VTSM_OK);
    return m;
}

static void test_req_wrong_type(void **state)
{
    (void)state;
    cbor_item_t *m = req_msg(VTSM_ABI_OP_DEVICE_ADD);
    vtsm_abi_put_tstr(m, VTSM_ABI_K_DEV, "d0");
    vtsm_abi_put_tstr(m, VTSM_ABI_K_ROOT_PORT, "1");
    expect_req_refused(m, VTSM_ABI_OP_DEVICE_ADD, VTSM_RULE_ABI_8, "key 'root_port' must be uint");

    m = req_msg(VTSM_ABI_OP_DEVICE_ADD);
    vtsm_abi_put_uint(m, VTSM_ABI_K_DEV, 1);
    expect_req_refused(m, VTSM_ABI_OP_DEVICE_ADD, VTSM_RULE_ABI_8, "key 'dev' must be tstr");

    m = connect_with_uint(VTSM_ABI_K_ALLOW_UNTRUSTED, 1);
    expect_req_refused(m, VTSM_ABI_OP_DEVICE_CONNECT, VTSM_RULE_ABI_8,
                       "key 'allow_untrusted' must be bool");
    m = connect_with_uint(VTSM_ABI_K_ASYM, 1);
    expect_req_refused(m, VTSM_ABI_OP_DEVICE_CONNECT, VTSM_RULE_ABI_8, "key 'asym' must be tstr");

    m = req_msg(VTSM_ABI_OP_TVM_CREATE);
    vtsm_abi_put_tstr(m, VTSM_ABI_K_GUEST_KEY, "04");
    expect_req_refused(m, VTSM_ABI_OP_TVM_CREATE, VTSM_RULE_ABI_8, "key 'guest_key' must be bstr");

    m = req_msg(VTSM_ABI_OP_HELLO);
    vtsm_abi_put_uint(m, VTSM_ABI_K_VERSIONS, 1);
    vtsm_abi_put_tstr(m, VTSM_ABI_K_ROLE, "host");
    expect_req_refused(m, VTSM_ABI_OP_HELLO, VTSM_RULE_ABI_8, "key 'versions' must be array");

    m = req_msg(VTSM_ABI_OP_HELLO);
    vtsm_abi_put_item(m, VTSM_ABI_K_VERSIONS, vtsm_abi_array_new());
    vtsm_abi_put_tstr(m, VTSM_ABI_K_ROLE, "host");
    vtsm_abi_put_uint(m, VTSM_ABI_K_CLIENT, 3);
    expect_req_refused(m, VTSM_ABI_OP_HELLO, VTSM_RULE_ABI_8, "key 'client' must be tstr");

    m = req_msg(VTSM_ABI_OP_STATUS);
    vtsm_abi_put_uint(m, VTSM_ABI_K_SUMMARY, 0);
    expect_req_refused(m, VTSM_ABI_OP_STATUS, VTSM_RULE_ABI_8, "key 'summary' must be bool");
}

static void test_req_out_of_range(void **state)
{
    (void)state;
    static const struct {
        enum vtsm_abi_op op;
        const char *key;
        uint64_t v;
    } bad[] = {
        {VTSM_ABI_OP_DEVICE_ADD, VTSM_ABI_K_ROOT_PORT, 0x10000},
        {VTSM_ABI_OP_DEVICE_CONNECT, VTSM_ABI_K_SLOT, 8},
        {VTSM_ABI_OP_DEVICE_CONNECT, VTSM_ABI_K_MIN_VERSION, 0x11},
        {VTSM_ABI_OP_DEVICE_CONNECT, VTSM_ABI_K_MIN_VERSION, 0x15},
        {VTSM_ABI_OP_DEVICE_CONNECT, VTSM_ABI_K_MAX_VERSION, 0x10},
        {VTSM_ABI_OP_DEVICE_CONNECT, VTSM_ABI_K_MAX_VERSION, 0x15},
        {VTSM_ABI_OP_DEVICE_CONNECT, VTSM_ABI_K_IDE_STREAMS, VTSM_ABI_IDE_STREAMS_MAX + 1},
        {VTSM_ABI_OP_TDI_UNBIND, VTSM_ABI_K_TDI, 0x10000},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cbor_item_t *m = req_msg(bad[i].op);
        vtsm_abi_put_tstr(m, VTSM_ABI_K_DEV, "d0");
        vtsm_abi_put_uint(m, bad[i].key, bad[i].v);
        char needle[64];
        snprintf(needle, sizeof(needle), "key '%s' is %llu, out of range", bad[i].key,
                 (unsigned long long)bad[i].v);
        expect_req_refused(m, bad[i].op, VTSM_RULE_ABI_8, needle);
    }

    cbor_item_t *m = req_msg(VTSM_ABI_OP_TDI_BIND);
    vtsm_abi_put_tstr(m, VTSM_ABI_K_DEV, "d0");
    vtsm_abi_put_uint(m, VTSM_ABI_K_TDI, 0);
    vtsm_abi_put_uint(m, VTSM_ABI_K_TVM, (uint64_t)UINT32_MAX + 1);
    expect_req_refused(m, VTSM_ABI_OP_TDI_BIND, VTSM_RULE_ABI_8,
                       "key 'tvm' is 4294967296, out of range 0..4294967295");
    m = req_msg(VTSM_ABI_OP_TDI_BIND);
    vtsm_abi_put_tstr(m, VTSM_ABI_K_DEV, "d0");
    vtsm_abi_put_uint(m, VTSM_ABI_K_TDI, 0);
    vtsm_abi_put_uint(m, VTSM_ABI_K_TVM, 1);
    vtsm_abi_put_uint(m, VTSM_ABI_K_LOCK_FLAGS, 0x10000);
    expect_req_refused(m, VTSM_ABI_OP_TDI_BIND, VTSM_RULE_ABI_8, "key 'lock_flags' is 65536");

    /* enumerated text */
    m = req_msg(VTSM_ABI_OP_DEVICE_CONNECT);
    vtsm_abi_put_tstr(m, VTSM_ABI_K_DEV, "d0");
    vtsm_abi_put_tstr(m, VTSM_ABI_K_ASYM, "rsa-3072");
    expect_req_refused(m, VTSM_ABI_OP_DEVICE_CONNECT, VTSM_RULE_ABI_8,
                       "asym must be \"ecdsa-p384\" or \"ecdsa-p256\"");
    m = req_msg(VTSM_ABI_OP_DEVICE_CONNECT);
    vtsm_abi_put_tstr(m, VTSM_ABI_K_DEV, "d0");
    vtsm_abi_put_tstr(m, VTSM_ABI_K_HASH, "sha384 ");
    expect_req_refused(m, VTSM_ABI_OP_DEVICE_CONNECT, VTSM_RULE_ABI_8,
                       "hash must be \"sha384\" or \"sha256\"");
    m = req_msg(VTSM_ABI_OP_HELLO);
    vtsm_abi_put_item(m, VTSM_ABI_K_VERSIONS, vtsm_abi_array_new());
    vtsm_abi_put_tstr(m, VTSM_ABI_K_ROLE, "admin");
    expect_req_refused(m, VTSM_ABI_OP_HELLO, VTSM_RULE_ABI_8, "role must be \"host\" or \"guest\"");

    /* lengths and device names */
    char name[VTSM_ABI_TVM_NAME_MAX + 2];
    memset(name, 'n', sizeof(name));
    name[VTSM_ABI_TVM_NAME_MAX + 1] = '\0';
    m = req_msg(VTSM_ABI_OP_TVM_CREATE);
    vtsm_abi_put_tstr(m, VTSM_ABI_K_NAME, name);
    vtsm_abi_put_bytes(m, VTSM_ABI_K_GUEST_KEY, (const uint8_t *)"\x04", 1);
    expect_req_refused(m, VTSM_ABI_OP_TVM_CREATE, VTSM_RULE_ABI_8,
                       "key 'name' must be 0..64 bytes of text, not 65");
    m = req_msg(VTSM_ABI_OP_TVM_CREATE);
    vtsm_abi_put_tstrn(m, VTSM_ABI_K_NAME, "a\0b", 3);
    vtsm_abi_put_bytes(m, VTSM_ABI_K_GUEST_KEY, (const uint8_t *)"\x04", 1);
    expect_req_refused(m, VTSM_ABI_OP_TVM_CREATE, VTSM_RULE_ABI_8, "key 'name' contains NUL");
    m = req_msg(VTSM_ABI_OP_IDE_REFRESH);
    vtsm_abi_put_tstr(m, VTSM_ABI_K_DEV, "a/b");
    expect_req_refused(m, VTSM_ABI_OP_IDE_REFRESH, VTSM_RULE_PDEV_30,
                       "device name may only hold [A-Za-z0-9:._-]");

    char err[VTSM_ABI_DOE_ERROR_MAX + 2];
    memset(err, 'e', sizeof(err));
    err[VTSM_ABI_DOE_ERROR_MAX + 1] = '\0';
    m = req_msg(VTSM_ABI_OP_DOE_RESPONSE);
    vtsm_abi_put_tstr(m, VTSM_ABI_K_DEV, "d0");
    vtsm_abi_put_uint(m, VTSM_ABI_K_SEQ, 1);
    vtsm_abi_put_tstr(m, VTSM_ABI_K_ERROR, err);
    expect_req_refused(m, VTSM_ABI_OP_DOE_RESPONSE, VTSM_RULE_ABI_8, "key 'error' must be 0..159");
    uint8_t *big = calloc(1, VTSM_DOE_MAX_BYTES + 4);
    assert_non_null(big);
    m = req_msg(VTSM_ABI_OP_DOE_RESPONSE);
    vtsm_abi_put_tstr(m, VTSM_ABI_K_DEV, "d0");
    vtsm_abi_put_uint(m, VTSM_ABI_K_SEQ, 1);
    vtsm_abi_put_bytes(m, VTSM_ABI_K_OBJECT, big, VTSM_DOE_MAX_BYTES + 4);
    expect_req_refused(m, VTSM_ABI_OP_DOE_RESPONSE, VTSM_RULE_ABI_8, "key 'object' of");
    free(big);
}

/* Rules that tie two fields together. */
/* DEVICE_CONNECT tdis: an array of 1..256 distinct requester IDs, from the public struct
 * and back; everything else refused with ABI.8. */
static void test_req_tdis(void **state)
{
    (void)state;
    const struct vtsm_abi_request *row = vtsm_abi_request_find(VTSM_ABI_OP_DEVICE_CONNECT);
    static const uint16_t rids[] = {0x0110, 0xBEEF, 0};
    struct vtsm_request r = {.dev = "0000:01:00.0", .tdis = rids, .tdis_len = 3};
    cbor_item_t *m = NULL;
    struct vtsm_abi_req d;
    assert_int_equal(vtsm_abi_req_encode(row, &r, &m), VTSM_OK);
    assert_int_equal(vtsm_abi_req_decode(m, row, &d), VTSM_OK);
    assert_true(vtsm_abi_req_has(&d, VTSM_ABI_F_TDIS));
    assert_int_equal(d.tdis.n, 3);
    assert_int_equal(d.tdis.rid[1], 0xBEEF);
    assert_int_equal(d.tdis.rid[2], 0);
    cbor_decref(&m);

    static const struct {
        int kind; /* 0 not an array, 1 empty, 2 too big an element, 3 twice, 4 too many, 5 text */
        const char *needle;
    } bad[] = {{0, "must be array"}, {1, "must list 1..256"}, {2, "not a requester ID"},
               {3, "listed twice"},  {4, "must list 1..256"}, {5, "not a requester ID"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        m = req_msg(VTSM_ABI_OP_DEVICE_CONNECT);
        vtsm_abi_put_tstr(m, VTSM_ABI_K_DEV, "0000:01:00.0");
        cbor_item_t *a = vtsm_abi_array_new();
        switch (bad[i].kind) {
        case 0:
            cbor_decref(&a);
            vtsm_abi_put_uint(m, VTSM_ABI_K_TDIS, 1);
            break;
        case 2:
            vtsm_abi_push_uint(a, 0x10000);
            break;
        case 3:
            vtsm_abi_push_uint(a, 7);
            vtsm_abi_push_uint(a, 7);
            break;
        case 4:
            for (unsigned k = 0; k <= 256; k++)
                vtsm_abi_push_uint(a, k);
            break;
        case 5:
            vtsm_abi_push_tstr(a, "1");
            break;
        default:
            break;
        }
        if (bad[i].kind != 0)
            vtsm_abi_put_item(m, VTSM_ABI_K_TDIS, a);
        expect_req_refused(m, VTSM_ABI_OP_DEVICE_CONNECT, VTSM_RULE_ABI_8, bad[i].needle);
    }
}

static void test_req_combinations(void **state)
{
    (void)state;
    cbor_item_t *m = connect_with_uint(VTSM_ABI_K_MIN_VERSION, 0x13);
    vtsm_abi_put_uint(m, VTSM_ABI_K_MAX_VERSION, 0x12);
    expect_req_refused(m, VTSM_ABI_OP_DEVICE_CONNECT, VTSM_RULE_ABI_8,
                       "min_version is above max_version");

    m = req_msg(VTSM_ABI_OP_STATUS);
    vtsm_abi_put_uint(m, VTSM_ABI_K_TDI_OFFSET, 2);
    expect_req_refused(m, VTSM_ABI_OP_STATUS, VTSM_RULE_ABI_8, "tdi_offset needs dev");

    m = req_msg(VTSM_ABI_OP_DOE_RESPONSE);
    vtsm_abi_put_tstr(m, VTSM_ABI_K_DEV, "d0");
    vtsm_abi_put_uint(m, VTSM_ABI_K_SEQ, 1);
    expect_req_refused(m, VTSM_ABI_OP_DOE_RESPONSE, VTSM_RULE_ABI_8,
                       "exactly one of 'object' or 'error'");
    m = req_msg(VTSM_ABI_OP_DOE_RESPONSE);
    vtsm_abi_put_tstr(m, VTSM_ABI_K_DEV, "d0");
    vtsm_abi_put_uint(m, VTSM_ABI_K_SEQ, 1);
    vtsm_abi_put_tstr(m, VTSM_ABI_K_ERROR, "no link");
    vtsm_abi_put_bytes(m, VTSM_ABI_K_OBJECT, (const uint8_t *)"12345678", 8);
    expect_req_refused(m, VTSM_ABI_OP_DOE_RESPONSE, VTSM_RULE_ABI_8,
                       "exactly one of 'object' or 'error'");
}

static void test_req_missing_key(void **state)
{
    (void)state;
    cbor_item_t *m = req_msg(VTSM_ABI_OP_DEVICE_ADD);
    vtsm_abi_put_uint(m, VTSM_ABI_K_ROOT_PORT, 0);
    expect_req_refused(m, VTSM_ABI_OP_DEVICE_ADD, VTSM_RULE_ABI_8, "missing key 'dev'");

    m = req_msg(VTSM_ABI_OP_TDI_BIND);
    vtsm_abi_put_tstr(m, VTSM_ABI_K_DEV, "d0");
    vtsm_abi_put_uint(m, VTSM_ABI_K_TDI, 0);
    expect_req_refused(m, VTSM_ABI_OP_TDI_BIND, VTSM_RULE_ABI_8, "missing key 'tvm'");

    m = req_msg(VTSM_ABI_OP_HELLO);
    vtsm_abi_put_item(m, VTSM_ABI_K_VERSIONS, vtsm_abi_array_new());
    expect_req_refused(m, VTSM_ABI_OP_HELLO, VTSM_RULE_ABI_8, "missing key 'role'");

    m = req_msg(VTSM_ABI_OP_GUEST_REQUEST);
    vtsm_abi_put_uint(m, VTSM_ABI_K_TVM, 1);
    vtsm_abi_put_bytes(m, VTSM_ABI_K_BODY, (const uint8_t *)"\xa0", 1);
    expect_req_refused(m, VTSM_ABI_OP_GUEST_REQUEST, VTSM_RULE_ABI_8, "missing key 'sig'");

    m = req_msg(VTSM_ABI_OP_DOE_RESPONSE);
    vtsm_abi_put_tstr(m, VTSM_ABI_K_DEV, "d0");
    vtsm_abi_put_tstr(m, VTSM_ABI_K_ERROR, "x");
    expect_req_refused(m, VTSM_ABI_OP_DOE_RESPONSE, VTSM_RULE_ABI_8, "missing key 'seq'");

    m = req_msg(VTSM_ABI_OP_TVM_CREATE);
    expect_req_refused(m, VTSM_ABI_OP_TVM_CREATE, VTSM_RULE_ABI_8, "missing key 'guest_key'");
}

static void test_req_unknown_key(void **state)
{
    (void)state;
    cbor_item_t *m = req_msg(VTSM_ABI_OP_DEVICE_ADD);
    vtsm_abi_put_tstr(m, VTSM_ABI_K_DEV, "d0");
    vtsm_abi_put_uint(m, VTSM_ABI_K_SLOT, 1); /* a field, but not DEVICE_ADD's */
    expect_req_refused(m, VTSM_ABI_OP_DEVICE_ADD, VTSM_RULE_ABI_9,
                       "unknown key 'slot' for DEVICE_ADD");
    m = req_msg(VTSM_ABI_OP_STATUS);
    vtsm_abi_put_uint(m, "verbose", 1);
    expect_req_refused(m, VTSM_ABI_OP_STATUS, VTSM_RULE_ABI_9, "unknown key 'verbose' for STATUS");
    /* an unknown key is refused before a bad value is looked at */
    m = req_msg(VTSM_ABI_OP_DEVICE_REMOVE);
    vtsm_abi_put_uint(m, VTSM_ABI_K_DEV, 3);
    vtsm_abi_put_bool(m, VTSM_ABI_K_FORCE, true);
    expect_req_refused(m, VTSM_ABI_OP_DEVICE_REMOVE, VTSM_RULE_ABI_9, "unknown key 'force'");
}

static void test_req_decoded(void **state)
{
    (void)state;
    struct vtsm_abi_req r;

    /* every connect option at the edge of its range */
    cbor_item_t *m = connect_with_uint(VTSM_ABI_K_SLOT, VTSM_ABI_MAX_SLOT);
    vtsm_abi_put_bool(m, VTSM_ABI_K_ALLOW_UNTRUSTED, true);
    vtsm_abi_put_uint(m, VTSM_ABI_K_MIN_VERSION, 0x12);
    vtsm_abi_put_uint(m, VTSM_ABI_K_MAX_VERSION, 0x12);
    vtsm_abi_put_tstr(m, VTSM_ABI_K_ASYM, "ecdsa-p256");
    vtsm_abi_put_tstr(m, VTSM_ABI_K_HASH, "sha384");
    vtsm_abi_put_uint(m, VTSM_ABI_K_IDE_STREAMS, VTSM_ABI_IDE_STREAMS_MAX);
    vtsm_abi_put_bool(m, VTSM_ABI_K_IDE_ONLY, false);
    req_ok(m, VTSM_ABI_OP_DEVICE_CONNECT, &r);
    assert_string_equal(r.dev, "d0");
    assert_int_equal(r.slot, 7);
    assert_true(r.allow_untrusted);
    assert_int_equal(r.min_version, 0x12);
    assert_int_equal(r.max_version, 0x12);
    assert_int_equal(r.asym, VTSM_ABI_ASYM_ECDSA_P256);
    assert_int_equal(r.hash, VTSM_ABI_HASH_SHA384);
    assert_int_equal(r.ide_streams, VTSM_ABI_IDE_STREAMS_MAX);
    assert_true(vtsm_abi_req_has(&r, VTSM_ABI_F_IDE_ONLY));
    assert_false(r.ide_only);
    assert_false(vtsm_abi_req_has(&r, VTSM_ABI_F_TVM));
    assert_int_equal(r.tvm, 0); /* absent: zero */
    assert_int_equal(r.present, (1ull << VTSM_ABI_F_DEV) | (1ull << VTSM_ABI_F_SLOT) |
                                    (1ull << VTSM_ABI_F_ALLOW_UNTRUSTED) |
                                    (1ull << VTSM_ABI_F_MIN_VERSION) |
                                    (1ull << VTSM_ABI_F_MAX_VERSION) | (1ull << VTSM_ABI_F_ASYM) |
                                    (1ull << VTSM_ABI_F_HASH) | (1ull << VTSM_ABI_F_IDE_STREAMS) |
                                    (1ull << VTSM_ABI_F_IDE_ONLY));
    cbor_decref(&m);

    /* the 32- and 16-bit fields take their largest values */
    m = req_msg(VTSM_ABI_OP_TDI_BIND);
    vtsm_abi_put_tstr(m, VTSM_ABI_K_DEV, "0000:01:00.0");
    vtsm_abi_put_uint(m, VTSM_ABI_K_TDI, 0xFFFF);
    vtsm_abi_put_uint(m, VTSM_ABI_K_TVM, UINT32_MAX);
    vtsm_abi_put_uint(m, VTSM_ABI_K_LOCK_FLAGS, 0xFFFF);
    req_ok(m, VTSM_ABI_OP_TDI_BIND, &r);
    assert_int_equal(r.tdi, 0xFFFF);
    assert_int_equal(r.tvm, UINT32_MAX);
    assert_int_equal(r.lock_flags, 0xFFFF);
    cbor_decref(&m);

    /* STATUS: dev optional */
    m = req_msg(VTSM_ABI_OP_STATUS);
    vtsm_abi_put_uint(m, VTSM_ABI_K_OFFSET, UINT64_MAX);
    req_ok(m, VTSM_ABI_OP_STATUS, &r);
    assert_int_equal(r.present, 1ull << VTSM_ABI_F_OFFSET);
    assert_string_equal(r.dev, "");
    assert_true(r.offset == UINT64_MAX);
    cbor_decref(&m);

    /* HELLO: versions as a mask of what was offered; elements we cannot know are ignored */
    m = req_msg(VTSM_ABI_OP_HELLO);
    cbor_item_t *v = vtsm_abi_array_new();
    vtsm_abi_push_uint(v, 7);
    vtsm_abi_push_tstr(v, "2");
    vtsm_abi_push_uint(v, 1);
    vtsm_abi_push_uint(v, 64);
    vtsm_abi_put_item(m, VTSM_ABI_K_VERSIONS, v);
    vtsm_abi_put_tstr(m, VTSM_ABI_K_ROLE, "guest");
    vtsm_abi_put_tstr(m, VTSM_ABI_K_CLIENT, "probe");
    req_ok(m, VTSM_ABI_OP_HELLO, &r);
    assert_int_equal(r.versions, (1ull << 7) | (1ull << 1));
    assert_int_equal(r.role, VTSM_ABI_ROLE_GUEST);
    assert_int_equal(r.client.len, 5);
    assert_memory_equal(r.client.p, "probe", 5);
    cbor_decref(&m);

    /* borrowed bytes point into the message; a 64-byte name is the longest */
    char name[VTSM_ABI_TVM_NAME_MAX + 1];
    memset(name, 'n', VTSM_ABI_TVM_NAME_MAX);
    name[VTSM_ABI_TVM_NAME_MAX] = '\0';
    uint8_t key[VTSM_ABI_GUEST_KEY_SIZE] = {0x04, 1, 2, 3};
    m = req_msg(VTSM_ABI_OP_TVM_CREATE);
    vtsm_abi_put_tstr(m, VTSM_ABI_K_NAME, name);
    vtsm_abi_put_bytes(m, VTSM_ABI_K_GUEST_KEY, key, sizeof(key));
    req_ok(m, VTSM_ABI_OP_TVM_CREATE, &r);
    assert_string_equal(r.name, name);
    assert_int_equal(r.guest_key.len, sizeof(key));
    assert_ptr_equal(r.guest_key.p, cbor_bytestring_handle(vtsm_abi_find(m, VTSM_ABI_K_GUEST_KEY)));
    cbor_decref(&m);

    m = req_msg(VTSM_ABI_OP_DOE_RESPONSE);
    vtsm_abi_put_tstr(m, VTSM_ABI_K_DEV, "d0");
    vtsm_abi_put_uint(m, VTSM_ABI_K_SEQ, 3);
    vtsm_abi_put_tstr(m, VTSM_ABI_K_ERROR, "link down");
    req_ok(m, VTSM_ABI_OP_DOE_RESPONSE, &r);
    assert_int_equal(r.seq, 3);
    assert_string_equal(r.error, "link down");
    assert_false(vtsm_abi_req_has(&r, VTSM_ABI_F_OBJECT));
    assert_null(r.object.p);
    cbor_decref(&m);
}

/* Every key of every row of the operation table is a field of the list, and every field
 * is some row's key: the decoder has a type and a range for everything a request takes. */
static void test_req_fields_cover_rows(void **state)
{
    (void)state;
    bool used[VTSM_ABI_F_COUNT_] = {false};
    for (size_t i = 0; i < VTSM_ABI_REQ_COUNT_; i++) {
        const struct vtsm_abi_request *row = &vtsm_abi_requests[i];
        bool has_dev = false;
        for (size_t k = 0; row->keys[k]; k++) {
            const struct vtsm_abi_field *f = vtsm_abi_field_find(row->keys[k]);
            if (!f)
                fail_msg("%s: key '%s' has no field in VTSM_ABI_REQ_FIELDS", row->name,
                         row->keys[k]);
            used[f - vtsm_abi_fields] = true;
            has_dev |= f->type == VTSM_ABI_FT_DEV;
        }
        /* the dev column and the schema agree */
        assert_int_equal(has_dev, row->dev != VTSM_ABI_DEV_NONE);
    }
    for (size_t f = 0; f < VTSM_ABI_F_COUNT_; f++) {
        if (!used[f])
            fail_msg("field '%s' is no request's key", vtsm_abi_fields[f].key);
        assert_ptr_equal(vtsm_abi_field_find(vtsm_abi_fields[f].key), &vtsm_abi_fields[f]);
    }
    assert_null(vtsm_abi_field_find("op"));
    assert_null(vtsm_abi_field_find(NULL));
}

static void test_every_key_documented(void **state)
{
    (void)state;
    char *hdr = slurp(VTSM_SOURCE_DIR "/abi/vtsm_abi.h");
    char *doc = slurp(VTSM_SOURCE_DIR "/docs/abi.md");
    char seen[256][40];
    size_t nseen = 0;
    for (const char *p = hdr; (p = strstr(p, "#define VTSM_ABI_K_")) != NULL; p++) {
        const char *q = strchr(p, '"'), *eol = strchr(p, '\n');
        assert_non_null(q);
        assert_true(q < eol);
        const char *e = strchr(q + 1, '"');
        assert_true(e != NULL && e > q + 1 && (size_t)(e - q) < sizeof(seen[0]));
        char key[40], field[48];
        memcpy(key, q + 1, (size_t)(e - q - 1));
        key[e - q - 1] = '\0';
        for (size_t i = 0; i < nseen; i++)
            if (strcmp(seen[i], key) == 0)
                fail_msg("key \"%s\" is named twice in abi/vtsm_abi.h", key);
        assert_true(nseen < 256);
        snprintf(seen[nseen++], sizeof(seen[0]), "%s", key);
        bool found = false;
        snprintf(field, sizeof(field), "%s:", key);
        for (const char *d = doc; !found && (d = strstr(d, field)) != NULL; d++)
            found = d == doc || !(d[-1] == '_' || (d[-1] >= 'a' && d[-1] <= 'z'));
        if (!found)
            fail_msg("key \"%s\" (abi/vtsm_abi.h) is no field of docs/abi.md", key);
    }
    assert_true(nseen > 100);
    free(hdr);
    free(doc);
}

/* The public field list (vtsm_ops.h) names the same keys as the checked one, row by row;
 * a request built from the public struct decodes back to what was set. */
static void test_public_fields_match(void **state)
{
    (void)state;
    static const char *const pub[] = {
#define X_KEY(SYM, member, key, type) [VTSM_FIELD_##SYM] = key,
        VTSM_FIELDS(X_KEY)
#undef X_KEY
    };
    for (size_t i = 0; i < VTSM_ABI_F_COUNT_; i++)
        assert_string_equal(pub[i], vtsm_abi_fields[i].key);
    const struct vtsm_abi_request *row = vtsm_abi_request_find(VTSM_ABI_OP_DEVICE_CONNECT);
    struct vtsm_request r = {.dev = "0000:01:00.0",
                             .asym = "ecdsa-p256",
                             .ide_streams = 2,
                             .allow_untrusted = false,
                             .set = VTSM_SET(IDE_STREAMS) | VTSM_SET(ALLOW_UNTRUSTED)};
    cbor_item_t *m = NULL;
    assert_int_equal(vtsm_abi_req_encode(row, &r, &m), VTSM_OK);
    struct vtsm_abi_req d;
    assert_int_equal(vtsm_abi_req_decode(m, row, &d), VTSM_OK);
    assert_string_equal(d.dev, "0000:01:00.0");
    assert_int_equal(d.asym, VTSM_ABI_ASYM_ECDSA_P256);
    assert_int_equal(d.ide_streams, 2);
    assert_true(vtsm_abi_req_has(&d, VTSM_ABI_F_ALLOW_UNTRUSTED));
    assert_false(vtsm_abi_req_has(&d, VTSM_ABI_F_SLOT));
    assert_int_equal(cbor_map_size(m), 4);
    cbor_decref(&m);
    r.asym = "rsa";
    assert_int_equal(vtsm_abi_req_encode(row, &r, &m), VTSM_E_ABI_ARG);
    assert_null(m);
    assert_int_equal(vtsm_err_rule(), VTSM_RULE_ABI_8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_public_fields_match),
        cmocka_unit_test(test_frame_truncated),
        cmocka_unit_test(test_frame_length_zero),
        cmocka_unit_test(test_frame_oversized),
        cmocka_unit_test(test_trailing_bytes),
        cmocka_unit_test(test_not_a_map),
        cmocka_unit_test(test_non_text_key),
        cmocka_unit_test(test_duplicate_key),
        cmocka_unit_test(test_many_keys),
        cmocka_unit_test(test_indefinite),
        cmocka_unit_test(test_tag),
        cmocka_unit_test(test_float_and_simple),
        cmocka_unit_test(test_depth_bomb),
        cmocka_unit_test(test_huge_counts),
        cmocka_unit_test(test_item_count),
        cmocka_unit_test(test_bstr_limit),
        cmocka_unit_test(test_tstr_limit_and_utf8),
        cmocka_unit_test(test_getter_wrong_types),
        cmocka_unit_test(test_check_keys),
        cmocka_unit_test(test_check_keys_in_body),
        cmocka_unit_test(test_key_lists),
        cmocka_unit_test(test_check_dev),
        cmocka_unit_test(test_dev_canon),
        cmocka_unit_test(test_req_wrong_type),
        cmocka_unit_test(test_req_out_of_range),
        cmocka_unit_test(test_req_combinations),
        cmocka_unit_test(test_req_tdis),
        cmocka_unit_test(test_req_missing_key),
        cmocka_unit_test(test_req_unknown_key),
        cmocka_unit_test(test_req_decoded),
        cmocka_unit_test(test_req_fields_cover_rows),
        cmocka_unit_test(test_encode_refuses),
        cmocka_unit_test(test_encode_exact_bytes),
        cmocka_unit_test(test_round_trip_messages),
        cmocka_unit_test(test_error_rule_field),
        cmocka_unit_test(test_put_replaces),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_status_numbers_stable),
        cmocka_unit_test(test_every_key_documented),
        cmocka_unit_test(test_guest_body_decode),
        cmocka_unit_test(test_reader_byte_at_a_time),
        cmocka_unit_test(test_reader_skips_malformed),
        cmocka_unit_test(test_reader_read_nonblocking),
        cmocka_unit_test(test_send_recv),
        cmocka_unit_test(test_json_exact),
    };
    return cmocka_run_group_tests_name("abi", tests, NULL, NULL);
}
