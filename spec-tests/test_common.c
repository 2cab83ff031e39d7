/* SPDX-License-Identifier: BSD-3-Clause */
/* The bounded cursors and the status type: failure cases first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "vtsm_buf.h"
#include "vtsm_guard.h"
#include "vtsm_status.h"

static void test_reader_short_reads_leave_cursor(void **s)
{
    (void)s;
    const uint8_t b[3] = {1, 2, 3};
    struct vtsm_rd r = vtsm_rd_init(b, sizeof(b));
    uint32_t v32;
    uint64_t v64;
    assert_int_equal(vtsm_rd_le32(&r, &v32), VTSM_E_PEER_TRUNCATED);
    assert_int_equal(r.off, 0);
    assert_int_equal(vtsm_rd_le64(&r, &v64), VTSM_E_PEER_TRUNCATED);
    assert_int_equal(vtsm_rd_skip(&r, 4), VTSM_E_PEER_TRUNCATED);
    assert_int_equal(vtsm_rd_skip(&r, SIZE_MAX), VTSM_E_PEER_TRUNCATED);
    struct vtsm_rd sub;
    assert_int_equal(vtsm_rd_sub(&r, &sub, 4), VTSM_E_PEER_TRUNCATED);
    assert_int_equal(r.off, 0);
    assert_int_equal(vtsm_rd_le24(&r, &v32), VTSM_OK);
    assert_int_equal(v32, 0x030201);
    assert_int_equal(vtsm_rd_end(&r), VTSM_OK);
    uint8_t v8;
    assert_int_equal(vtsm_rd_u8(&r, &v8), VTSM_E_PEER_TRUNCATED);
}

static void test_reader_end_detects_trailing(void **s)
{
    (void)s;
    const uint8_t b[4] = {0x34, 0x12, 0xff, 0xee};
    struct vtsm_rd r = vtsm_rd_init(b, sizeof(b));
    uint16_t v;
    assert_int_equal(vtsm_rd_le16(&r, &v), VTSM_OK);
    assert_int_equal(v, 0x1234);
    assert_int_equal(vtsm_rd_end(&r), VTSM_E_PEER_MALFORMED);
    uint32_t be;
    r = vtsm_rd_init(b, 4);
    assert_int_equal(vtsm_rd_be32(&r, &be), VTSM_OK);
    assert_int_equal(be, 0x3412ffee);
}

static void test_writer_overflow_and_patch(void **s)
{
    (void)s;
    uint8_t b[6];
    struct vtsm_wr w = vtsm_wr_init(b, sizeof(b));
    size_t at;
    assert_int_equal(vtsm_wr_reserve(&w, 2, &at), VTSM_OK);
    assert_int_equal(vtsm_wr_le32(&w, 0xaabbccdd), VTSM_OK);
    assert_int_equal(vtsm_wr_u8(&w, 1), VTSM_E_TOO_SMALL);
    assert_int_equal(w.len, 6);
    vtsm_wr_patch_le16(&w, at, (uint16_t)(w.len - 2));
    const uint8_t want[6] = {4, 0, 0xdd, 0xcc, 0xbb, 0xaa};
    assert_memory_equal(b, want, 6);
    uint8_t c[3];
    w = vtsm_wr_init(c, sizeof(c));
    assert_int_equal(vtsm_wr_le24(&w, 0x1000000), VTSM_E_TOO_SMALL);
}

static void test_growable_buffer(void **s)
{
    (void)s;
    struct vtsm_buf b = {0};
    for (int i = 0; i < 1000; i++)
        assert_int_equal(vtsm_buf_append(&b, &i, 1), VTSM_OK);
    assert_int_equal(b.len, 1000);
    assert_true(b.cap >= 1000);
    assert_int_equal(b.data[999], (uint8_t)999);
    assert_int_equal(vtsm_buf_reserve(&b, SIZE_MAX), VTSM_E_NOMEM);
    assert_int_equal(vtsm_buf_set(&b, "xy", 2), VTSM_OK);
    assert_int_equal(b.len, 2);
    vtsm_buf_wipe(&b);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
}

static void test_hex(void **s)
{
    (void)s;
    uint8_t out[4];
    assert_int_equal(vtsm_unhex(out, sizeof(out), "0aFf"), 2);
    assert_int_equal(out[0], 0x0a);
    assert_int_equal(out[1], 0xff);
    assert_int_equal(vtsm_unhex(out, sizeof(out), "abc"), -1);
    assert_string_equal(vtsm_err_detail(), "3 hex digits, not an even number");
    assert_int_equal(vtsm_unhex(out, sizeof(out), "zz"), -1);
    assert_string_equal(vtsm_err_detail(), "'z' at position 1 is not a hex digit");
    assert_int_equal(vtsm_unhex(out, sizeof(out), "0a0g"), -1);
    assert_string_equal(vtsm_err_detail(), "'g' at position 4 is not a hex digit");
    assert_int_equal(vtsm_unhex(out, 1, "0102"), -1);
    assert_string_equal(vtsm_err_detail(), "2 bytes, at most 1");
    char h[5];
    vtsm_hex(h, out, 2);
    assert_string_equal(h, "0aff");
    assert_int_equal(vtsm_unhex(out, sizeof(out), ""), 0);
    assert_int_equal(vtsm_unhex(out, sizeof(out), "DEADbeef"), 4);
    assert_memory_equal(out, "\xde\xad\xbe\xef", 4);
}

static vtsm_status guarded(int fail)
{
    VTSM_ENSURE(fail != 1, VTSM_E_PEER_NONCE, "nonce rule %d", 7);
    VTSM_GUARD(fail == 2 ? VTSM_E_BUSY : VTSM_OK);
    return VTSM_OK;
}

static void test_status_names_sources_detail(void **s)
{
    (void)s;
    assert_string_equal(vtsm_status_name(VTSM_OK), "ok");
    assert_string_equal(vtsm_status_name(VTSM_E_PEER_SIGNATURE), "peer_signature");
    assert_int_equal(vtsm_status_source(VTSM_E_PEER_SIGNATURE), VTSM_SRC_PEER);
    assert_int_equal(vtsm_status_source(VTSM_E_ABI_ROLE), VTSM_SRC_ABI);
    assert_int_equal(vtsm_status_source(VTSM_E_DOE_TRUNCATED), VTSM_SRC_TRANSPORT);
    assert_string_equal(vtsm_source_name(VTSM_SRC_POLICY), "policy");
    assert_int_equal(vtsm_status_from_name("doe_misaligned"), VTSM_E_DOE_MISALIGNED);
    assert_int_equal(vtsm_status_from_name("nope"), VTSM_STATUS_COUNT_);
    assert_string_equal(vtsm_status_name((vtsm_status)9999), "unknown");
    vtsm_err_clear();
    assert_int_equal(guarded(1), VTSM_E_PEER_NONCE);
    assert_string_equal(vtsm_err_detail(), "nonce rule 7");
    assert_int_equal(vtsm_err_status(), VTSM_E_PEER_NONCE);
    assert_int_equal(guarded(2), VTSM_E_BUSY);
    assert_int_equal(guarded(0), VTSM_OK);
    /* every status has a distinct name */
    for (int i = 0; i < VTSM_STATUS_COUNT_; i++) {
        char n[64];
        snprintf(n, sizeof(n), "%s", vtsm_status_name((vtsm_status)i));
        assert_int_equal(vtsm_status_from_name(n), i);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reader_short_reads_leave_cursor),
        cmocka_unit_test(test_reader_end_detects_trailing),
        cmocka_unit_test(test_writer_overflow_and_patch),
        cmocka_unit_test(test_growable_buffer),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_status_names_sources_detail),
    };
    return cmocka_run_group_tests_name("common", tests, NULL, NULL);
}
