/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Recording failures: the setters of the thread's error record whose getters and status
 * table are public (include/vtsm/vtsm_status.h). Library code fails with
 *   return vtsm_refuse(VTSM_E_STATE, VTSM_RULE_TDI_4, "...");  (a rule refused)
 *   return vtsm_fail(VTSM_E_PEER_SIGNATURE, "...");            (no rule of its own)
 */
#ifndef VTSM_ERR_H
#define VTSM_ERR_H

#include <stdarg.h>

#include "vtsm_status.h"

/*
 * Record a refusal under a rule for the current thread and return st:
 *   return vtsm_refuse(VTSM_E_STATE, VTSM_RULE_TDI_4, "accept refused: %s TDI %u is %s",
 *                      dev, tdi, state);
 * The record (status, rule, detail) stays until the next vtsm_refuse()/vtsm_fail() or
 * vtsm_err_clear() on this thread. The detail says what happened in words; the rule is
 * what callers and the ABI carry. rule VTSM_RULE_NONE: the status's own rule, if any.
 */
vtsm_status vtsm_refuse(vtsm_status st, enum vtsm_rule rule, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
vtsm_status vtsm_refusev(vtsm_status st, enum vtsm_rule rule, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
/* A failure that names no rule of its own (the rule of the status, if any, applies):
 *   return vtsm_fail(VTSM_E_PEER_SIGNATURE, "KEY_EXCHANGE_RSP signature (DSP0274 10.12)"); */
vtsm_status vtsm_fail(vtsm_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
vtsm_status vtsm_failv(vtsm_status st, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/*
 * Re-record st with a new detail (typically a prefix before the current one), keeping the
 * recorded rule when the record already holds st: context added on the way up never loses
 * the rule. A different status starts afresh as vtsm_fail() does.
 */
vtsm_status vtsm_refail(vtsm_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * The one error-wrap helper: re-record the failure just recorded as st, its detail
 * prefixed: "<prefix>: <detail so far>" (the rule kept as vtsm_refail keeps it).
 */
vtsm_status vtsm_wrap(vtsm_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The calling thread's error record. Code that runs several logical flows on one thread
 * (tsmd's jobs, each on its own coroutine stack) saves it when a flow yields and restores
 * it when the flow resumes, so one flow's failure detail never leaks into another's. */
struct vtsm_err_state {
    vtsm_status status;
    enum vtsm_rule rule;
    char detail[512];
};
void vtsm_err_save(struct vtsm_err_state *out);
void vtsm_err_restore(const struct vtsm_err_state *in);

#endif
