/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Shared assertions for cmocka tests (include after <cmocka.h>):
 *
 *   EXPECT(expr, want, rule)
 *
 * clears the thread's error record, evaluates expr (a vtsm_status) and fails the test
 * unless it equals want and the record names rule (VTSM_RULE_NONE: a failure no rule
 * names, or a success). A refusal is checked by (status, rule), never by its wording.
 *
 *   EXPECT_DETAIL(expr, want, rule, needle)
 *
 * the same, and the recorded detail must contain needle: only for failures that no rule
 * tells apart (a peer's or a codec's protocol fault with the same status), where the
 * detail is the one precise witness of which check fired.
 *
 * A failure shows both statuses and rules and the detail.
 */
#ifndef VTSM_TEST_H
#define VTSM_TEST_H

#include <stdio.h>
#include <string.h>

#include "vtsm_err.h"

static inline const char *vtsm_test_rule_name(enum vtsm_rule r)
{
    const char *id = vtsm_rule_id(r);
    return id ? id : "none";
}

static inline void vtsm_test_expect(const char *what, vtsm_status got, vtsm_status want,
                                    enum vtsm_rule want_rule, const char *needle)
{
    if (got != want) {
        char g[64];
        snprintf(g, sizeof(g), "%s", vtsm_status_name(got)); /* names share one buffer */
        fail_msg("%s: status %s rule %s (%s), wanted %s rule %s", what, g,
                 vtsm_test_rule_name(vtsm_err_rule()), vtsm_err_detail(), vtsm_status_name(want),
                 vtsm_test_rule_name(want_rule));
    }
    if (want == VTSM_OK && want_rule != VTSM_RULE_NONE)
        fail_msg("%s: a success names no rule (%s wanted)", what, vtsm_test_rule_name(want_rule));
    /* the failure's rule: the record's if it describes this failure, else the status's */
    enum vtsm_rule rule = vtsm_err_status() == got ? vtsm_err_rule() : vtsm_rule_of_status(got);
    if (got != VTSM_OK && rule != want_rule)
        fail_msg("%s: %s with rule %s (%s), wanted rule %s", what, vtsm_status_name(got),
                 vtsm_test_rule_name(rule), vtsm_err_detail(), vtsm_test_rule_name(want_rule));
    if (needle != NULL && strstr(vtsm_err_detail(), needle) == NULL)
        fail_msg("%s: detail \"%s\" does not name \"%s\"", what, vtsm_err_detail(), needle);
}

#define EXPECT(expr, want, rule)                                                                   \
    do {                                                                                           \
        vtsm_err_clear();                                                                          \
        vtsm_test_expect(#expr, (expr), (want), (rule), NULL);                                     \
    } while (0)

#define EXPECT_DETAIL(expr, want, rule, needle)                                                    \
    do {                                                                                           \
        vtsm_err_clear();                                                                          \
        vtsm_test_expect(#expr, (expr), (want), (rule), (needle));                                 \
    } while (0)

#endif
