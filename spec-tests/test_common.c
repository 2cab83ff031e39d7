/* SPDX-License-Identifier: BSD-3-Clause */
/* The bounded cursors and the status type: failure cases first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vtsm_buf.h"
#include "vtsm_guard.h"
#include "vtsm_err.h"

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

/* The one error-wrap helper: a prefix before the detail so far, the rule kept while the
 * status stays. */
static void test_wrap(void **s)
{
    (void)s;
    vtsm_err_clear();
    assert_int_equal(vtsm_refuse(VTSM_E_STATE, VTSM_RULE_TDI_4, "accept refused"), VTSM_E_STATE);
    assert_int_equal(vtsm_wrap(VTSM_E_STATE, "guest %s", "accept"), VTSM_E_STATE);
    assert_string_equal(vtsm_err_detail(), "guest accept: accept refused");
    assert_int_equal(vtsm_err_rule(), VTSM_RULE_TDI_4);
    assert_int_equal(vtsm_wrap(VTSM_E_PEER_MALFORMED, "INFO"), VTSM_E_PEER_MALFORMED);
    assert_string_equal(vtsm_err_detail(), "INFO: guest accept: accept refused");
    assert_int_equal(vtsm_err_status(), VTSM_E_PEER_MALFORMED);
    assert_int_equal(vtsm_err_rule(), VTSM_RULE_NONE);
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

/* Every rule has a unique id of its family's form that parses back to it, a meaning and a
 * status; unknown ids and none parse to VTSM_RULE_NONE. */
static void test_rule_list(void **s)
{
    (void)s;
    assert_null(vtsm_rule_id(VTSM_RULE_NONE));
    assert_null(vtsm_rule_id(VTSM_RULE_COUNT_));
    assert_string_equal(vtsm_rule_text(VTSM_RULE_NONE), "");
    assert_int_equal(vtsm_rule_parse(NULL), VTSM_RULE_NONE);
    assert_int_equal(vtsm_rule_parse(""), VTSM_RULE_NONE);
    assert_int_equal(vtsm_rule_parse("TDI.99"), VTSM_RULE_NONE);
    assert_int_equal(vtsm_rule_parse("TDI.4 "), VTSM_RULE_NONE);
    assert_int_equal(vtsm_rule_parse("tdi.4"), VTSM_RULE_NONE);
    assert_int_equal(vtsm_rule_parse("TDI.4"), VTSM_RULE_TDI_4);
    assert_string_equal(vtsm_rule_id(VTSM_RULE_PDEV_13), "PDEV.13");
    assert_int_equal(vtsm_rule_status(VTSM_RULE_PDEV_6), VTSM_E_BUSY);

    static const char *const families[] = {"PLAT",  "PDEV",  "IDE",   "TVM",    "TDI",
                                           "GUEST", "ABI",   "LINK",  "DEVTDI", "IDEKM",
                                           "VDM",   "CHUNK", "EVENT", "MMIO",   "DMA"};
    for (int r = 1; r < VTSM_RULE_COUNT_; r++) {
        const char *id = vtsm_rule_id((enum vtsm_rule)r);
        assert_non_null(id);
        assert_int_equal(vtsm_rule_parse(id), r);
        assert_true(strlen(vtsm_rule_text((enum vtsm_rule)r)) > 10);
        assert_true((unsigned)vtsm_rule_status((enum vtsm_rule)r) < VTSM_STATUS_COUNT_);
        const char *dot = strchr(id, '.');
        assert_non_null(dot);
        bool known = false;
        for (size_t f = 0; f < VTSM_ARRAY_SIZE(families); f++)
            known |= strlen(families[f]) == (size_t)(dot - id) &&
                     strncmp(families[f], id, (size_t)(dot - id)) == 0;
        if (!known)
            fail_msg("rule %s: unknown family", id);
        assert_true(dot[1] >= '0' && dot[1] <= '9');
        for (int q = 1; q < r; q++)
            if (strcmp(vtsm_rule_id((enum vtsm_rule)q), id) == 0)
                fail_msg("rule id %s appears twice", id);
    }
}

/* The error record carries the rule: vtsm_refuse names it, vtsm_fail names none (or the
 * rule its status implies), vtsm_refail keeps it only for the same status, and clear,
 * save and restore treat it like the status. */
static void test_error_record_rule(void **s)
{
    (void)s;
    vtsm_err_clear();
    assert_int_equal(vtsm_err_rule(), VTSM_RULE_NONE);

    assert_int_equal(vtsm_refuse(VTSM_E_STATE, VTSM_RULE_TDI_4, "accept refused: TDI %u is RUN", 2),
                     VTSM_E_STATE);
    assert_int_equal(vtsm_err_status(), VTSM_E_STATE);
    assert_int_equal(vtsm_err_rule(), VTSM_RULE_TDI_4);
    assert_string_equal(vtsm_err_detail(), "accept refused: TDI 2 is RUN");

    /* context added on the way up keeps the rule ... */
    assert_int_equal(vtsm_refail(VTSM_E_STATE, "job: %s", vtsm_err_detail()), VTSM_E_STATE);
    assert_int_equal(vtsm_err_rule(), VTSM_RULE_TDI_4);
    assert_string_equal(vtsm_err_detail(), "job: accept refused: TDI 2 is RUN");
    /* ... a new status does not */
    assert_int_equal(vtsm_refail(VTSM_E_PEER_CAPS, "x: %s", vtsm_err_detail()), VTSM_E_PEER_CAPS);
    assert_int_equal(vtsm_err_rule(), VTSM_RULE_NONE);

    struct vtsm_err_state saved;
    vtsm_refuse(VTSM_E_NOT_FOUND, VTSM_RULE_TVM_4, "no TVM 7");
    vtsm_err_save(&saved);
    vtsm_fail(VTSM_E_PEER_SIGNATURE, "KEY_EXCHANGE_RSP signature");
    assert_int_equal(vtsm_err_rule(), VTSM_RULE_NONE);
    vtsm_err_restore(&saved);
    assert_int_equal(vtsm_err_status(), VTSM_E_NOT_FOUND);
    assert_int_equal(vtsm_err_rule(), VTSM_RULE_TVM_4);
    assert_string_equal(vtsm_err_detail(), "no TVM 7");

    /* statuses that imply a rule, through vtsm_fail and the guard macros */
    vtsm_fail(VTSM_E_ABI_NO_HELLO, "HELLO first");
    assert_int_equal(vtsm_err_rule(), VTSM_RULE_ABI_1);
    assert_int_equal(vtsm_rule_of_status(VTSM_E_ABI_ARG), VTSM_RULE_ABI_8);
    assert_int_equal(vtsm_rule_of_status(VTSM_E_STATE), VTSM_RULE_NONE);
    vtsm_refuse(VTSM_E_ABI_ARG, VTSM_RULE_ABI_9, "unknown key 'x'");
    assert_int_equal(vtsm_err_rule(), VTSM_RULE_ABI_9);
    vtsm_refuse(VTSM_E_ABI_ARG, VTSM_RULE_COUNT_, "out of range rule");
    assert_int_equal(vtsm_err_rule(), VTSM_RULE_ABI_8);

    vtsm_err_clear();
    assert_int_equal(vtsm_err_status(), VTSM_OK);
    assert_int_equal(vtsm_err_rule(), VTSM_RULE_NONE);
    assert_string_equal(vtsm_err_detail(), "");
}

static vtsm_status ensure_rule(int v)
{
    VTSM_ENSURE_RULE(v != 1, VTSM_E_EXISTS, VTSM_RULE_TVM_3, "TVM %d exists", v);
    vtsm_status st = VTSM_OK;
    VTSM_ENSURE_RULE_GOTO(v != 2, VTSM_E_LIMIT, VTSM_RULE_TVM_5, "TVM %d over the limit", v);
out:
    return st;
}

static void test_guard_rule_forms(void **s)
{
    (void)s;
    vtsm_err_clear();
    assert_int_equal(ensure_rule(0), VTSM_OK);
    assert_int_equal(vtsm_err_rule(), VTSM_RULE_NONE);
    assert_int_equal(ensure_rule(1), VTSM_E_EXISTS);
    assert_int_equal(vtsm_err_rule(), VTSM_RULE_TVM_3);
    assert_int_equal(ensure_rule(2), VTSM_E_LIMIT);
    assert_int_equal(vtsm_err_rule(), VTSM_RULE_TVM_5);
    assert_string_equal(vtsm_err_detail(), "TVM 2 over the limit");
}

/* docs/abi.md section 10.2 lists every rule, one table line each: "| ID | status | meaning |"
 * where status is `name` (the first one given) or an em dash for VTSM_OK, and meaning is
 * the list's text. Every line names a rule of the list, every rule of the list has a line. */
static void test_rules_match_abi_doc(void **s)
{
    (void)s;
    const char *path = VTSM_SOURCE_DIR "/docs/abi.md";
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s", path);
    unsigned seen[VTSM_RULE_COUNT_] = {0};
    char line[1024];
    bool in_rules = false;
    unsigned lines = 0;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "### 10.2 Rules", 14) == 0) {
            in_rules = true;
            continue;
        }
        if (in_rules && strncmp(line, "## ", 3) == 0)
            break;
        if (!in_rules || strncmp(line, "| ", 2) != 0)
            continue;
        /* split "| a | b | c |" */
        char *cols[3] = {0};
        char *p = line + 2;
        int n = 0;
        for (; n < 3; n++) {
            char *bar = strstr(p, " | ");
            if (!bar && n == 2)
                bar = strstr(p, " |");
            if (!bar)
                break;
            *bar = '\0';
            cols[n] = p;
            p = bar + 3;
        }
        if (n != 3 || strcmp(cols[0], "rule") == 0)
            continue; /* the header; "|---|" lines do not start with "| " */
        enum vtsm_rule r = vtsm_rule_parse(cols[0]);
        if (r == VTSM_RULE_NONE)
            fail_msg("docs/abi.md lists rule \"%s\", which include/vtsm/vtsm_rule.h does not have",
                     cols[0]);
        lines++;
        seen[r]++;
        vtsm_status st = vtsm_rule_status(r);
        char want[80];
        if (st == VTSM_OK)
            snprintf(want, sizeof(want), "—");
        else
            snprintf(want, sizeof(want), "`%s`", vtsm_status_name(st));
        if (strncmp(cols[1], want, strlen(want)) != 0)
            fail_msg("docs/abi.md: rule %s comes with %s, the doc says %s", cols[0], want, cols[1]);
        if (strcmp(cols[2], vtsm_rule_text(r)) != 0)
            fail_msg("docs/abi.md: rule %s says \"%s\", include/vtsm/vtsm_rule.h \"%s\"", cols[0],
                     cols[2], vtsm_rule_text(r));
    }
    fclose(f);
    assert_true(in_rules);
    for (int r = 1; r < VTSM_RULE_COUNT_; r++)
        if (seen[r] != 1)
            fail_msg("docs/abi.md lists rule %s %u times (once wanted)",
                     vtsm_rule_id((enum vtsm_rule)r), seen[r]);
    assert_int_equal(lines, VTSM_RULE_COUNT_ - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reader_short_reads_leave_cursor),
        cmocka_unit_test(test_reader_end_detects_trailing),
        cmocka_unit_test(test_writer_overflow_and_patch),
        cmocka_unit_test(test_growable_buffer),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_wrap),
        cmocka_unit_test(test_status_names_sources_detail),
        cmocka_unit_test(test_rule_list),
        cmocka_unit_test(test_error_record_rule),
        cmocka_unit_test(test_guard_rule_forms),
        cmocka_unit_test(test_rules_match_abi_doc),
    };
    return cmocka_run_group_tests_name("common", tests, NULL, NULL);
}
