/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The one family of guard macros. Convention: functions return vtsm_status;
 * VTSM_OK (0) is success.
 *
 *   VTSM_GUARD(expr)                 propagate a failing status (return form)
 *   VTSM_ENSURE(cond, code, fmt...)  fail with code + detail if !cond (return form)
 *   VTSM_ENSURE_RULE(cond, code, rule, fmt...)   the same, refused under a rule
 *   VTSM_OSSL(expr)                  OpenSSL call must return 1 (return form)
 *
 * The *_GOTO forms assign to a local `vtsm_status st` and jump to the function's
 * single cleanup label `out`, which frees and wipes.
 */
#ifndef VTSM_GUARD_H
#define VTSM_GUARD_H

#include "vtsm_err.h"

#define VTSM_GUARD(expr)                                                                           \
    do {                                                                                           \
        vtsm_status vtsm_st__ = (expr);                                                            \
        if (vtsm_st__ != VTSM_OK)                                                                  \
            return vtsm_st__;                                                                      \
    } while (0)

#define VTSM_ENSURE(cond, code, ...)                                                               \
    do {                                                                                           \
        if (!(cond))                                                                               \
            return vtsm_fail((code), __VA_ARGS__);                                                 \
    } while (0)

#define VTSM_ENSURE_RULE(cond, code, rule, ...)                                                    \
    do {                                                                                           \
        if (!(cond))                                                                               \
            return vtsm_refuse((code), (rule), __VA_ARGS__);                                       \
    } while (0)

#define VTSM_OSSL(expr)                                                                            \
    do {                                                                                           \
        if ((expr) != 1)                                                                           \
            return vtsm_fail(VTSM_E_CRYPTO, "%s failed (%s:%d)", #expr, __FILE__, __LINE__);       \
    } while (0)

#define VTSM_GUARD_GOTO(expr)                                                                      \
    do {                                                                                           \
        st = (expr);                                                                               \
        if (st != VTSM_OK)                                                                         \
            goto out;                                                                              \
    } while (0)

#define VTSM_ENSURE_GOTO(cond, code, ...)                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            st = vtsm_fail((code), __VA_ARGS__);                                                   \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

#define VTSM_ENSURE_RULE_GOTO(cond, code, rule, ...)                                               \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            st = vtsm_refuse((code), (rule), __VA_ARGS__);                                         \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

#define VTSM_OSSL_GOTO(expr)                                                                       \
    do {                                                                                           \
        if ((expr) != 1) {                                                                         \
            st = vtsm_fail(VTSM_E_CRYPTO, "%s failed (%s:%d)", #expr, __FILE__, __LINE__);         \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

#define VTSM_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
