/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Shared assertion for cmocka tests (include after <cmocka.h>):
 *
 *   EXPECT(expr, want, needle)
 *
 * clears the thread's error detail, evaluates expr (a vtsm_status), fails the test unless
 * it equals want, and unless the recorded detail contains needle (NULL: any detail). A
 * failure shows both status names and the detail, so a refusal is checked together with
 * the rule it names.
 */
#ifndef VTSM_TEST_H
#define VTSM_TEST_H

#include <stdio.h>
#include <string.h>

#include "vtsm_status.h"

static inline void vtsm_test_expect(const char *what, vtsm_status got, vtsm_status want,
                                    const char *needle)
{
    if (got != want) {
        char g[64];
        snprintf(g, sizeof(g), "%s", vtsm_status_name(got)); /* names share one buffer */
        fail_msg("%s: status %s (%s), wanted %s", what, g, vtsm_err_detail(),
                 vtsm_status_name(want));
    }
    if (needle != NULL && strstr(vtsm_err_detail(), needle) == NULL)
        fail_msg("%s: detail \"%s\" does not name \"%s\"", what, vtsm_err_detail(), needle);
}

#define EXPECT(expr, want, needle)                                                                 \
    do {                                                                                           \
        vtsm_err_clear();                                                                          \
        vtsm_test_expect(#expr, (expr), (want), (needle));                                         \
    } while (0)

#endif
