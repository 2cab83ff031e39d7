/* SPDX-License-Identifier: BSD-3-Clause */
#include "vtsm_err.h"

#include <stdio.h>
#include <string.h>

struct status_info {
    enum vtsm_source src;
    const char *name;
    const char *text;
};

static const struct status_info status_table[] = {
#define VTSM_X_INFO(n, s, t) [VTSM_##n] = {VTSM_SRC_##s, #n, t},
    VTSM_STATUS_LIST(VTSM_X_INFO)
#undef VTSM_X_INFO
};

_Static_assert(sizeof(status_table) / sizeof(status_table[0]) == VTSM_STATUS_COUNT_,
               "status table incomplete");

struct rule_info {
    const char *id;
    vtsm_status status;
    const char *text;
};

/* [VTSM_RULE_NONE] stays zero: no id, VTSM_OK, no text. */
static const struct rule_info rule_table[] = {
#define VTSM_X_RULE_INFO(sym, id, st, text) [VTSM_RULE_##sym] = {id, VTSM_##st, text},
    VTSM_RULE_LIST(VTSM_X_RULE_INFO)
#undef VTSM_X_RULE_INFO
};

_Static_assert(sizeof(rule_table) / sizeof(rule_table[0]) == VTSM_RULE_COUNT_,
               "rule table incomplete");

static _Thread_local struct vtsm_err_state err;
#define err_detail err.detail
#define err_status err.status
static _Thread_local char name_buf[64];

enum vtsm_source vtsm_status_source(vtsm_status st)
{
    if ((unsigned)st >= VTSM_STATUS_COUNT_)
        return VTSM_SRC_CORE;
    return status_table[st].src;
}

const char *vtsm_status_name(vtsm_status st)
{
    if ((unsigned)st >= VTSM_STATUS_COUNT_)
        return "unknown";
    /* "E_PEER_SIGNATURE" -> "peer_signature"; "OK" -> "ok" */
    const char *n = status_table[st].name;
    if (n[0] == 'E' && n[1] == '_')
        n += 2;
    size_t i = 0;
    for (; n[i] && i + 1 < sizeof(name_buf); i++)
        name_buf[i] = (char)((n[i] >= 'A' && n[i] <= 'Z') ? n[i] - 'A' + 'a' : n[i]);
    name_buf[i] = '\0';
    return name_buf;
}

const char *vtsm_status_text(vtsm_status st)
{
    if ((unsigned)st >= VTSM_STATUS_COUNT_)
        return "unknown status";
    return status_table[st].text;
}

const char *vtsm_source_name(enum vtsm_source src)
{
    static const char *const names[] = {"none", "core", "crypto", "transport",
                                        "peer", "abi",  "policy"};
    if ((unsigned)src >= sizeof(names) / sizeof(names[0]))
        return "unknown";
    return names[src];
}

vtsm_status vtsm_status_from_name(const char *name)
{
    for (int i = 0; i < VTSM_STATUS_COUNT_; i++)
        if (strcmp(vtsm_status_name((vtsm_status)i), name) == 0)
            return (vtsm_status)i;
    return VTSM_STATUS_COUNT_;
}

const char *vtsm_rule_id(enum vtsm_rule r)
{
    return (unsigned)r < VTSM_RULE_COUNT_ ? rule_table[r].id : NULL;
}

const char *vtsm_rule_text(enum vtsm_rule r)
{
    return r != VTSM_RULE_NONE && (unsigned)r < VTSM_RULE_COUNT_ ? rule_table[r].text : "";
}

vtsm_status vtsm_rule_status(enum vtsm_rule r)
{
    return (unsigned)r < VTSM_RULE_COUNT_ ? rule_table[r].status : VTSM_OK;
}

enum vtsm_rule vtsm_rule_parse(const char *id)
{
    if (id == NULL)
        return VTSM_RULE_NONE;
    for (int r = 1; r < VTSM_RULE_COUNT_; r++)
        if (strcmp(rule_table[r].id, id) == 0)
            return (enum vtsm_rule)r;
    return VTSM_RULE_NONE;
}

enum vtsm_rule vtsm_rule_of_status(vtsm_status st)
{
    switch (st) {
#define VTSM_X_RULE_BY_STATUS(status, sym)                                                         \
    case VTSM_##status:                                                                            \
        return VTSM_RULE_##sym;
        VTSM_RULE_BY_STATUS(VTSM_X_RULE_BY_STATUS)
#undef VTSM_X_RULE_BY_STATUS
    default:
        return VTSM_RULE_NONE;
    }
}

vtsm_status vtsm_refusev(vtsm_status st, enum vtsm_rule rule, const char *fmt, va_list ap)
{
    err_status = st;
    err.rule = rule != VTSM_RULE_NONE && (unsigned)rule < VTSM_RULE_COUNT_
                   ? rule
                   : vtsm_rule_of_status(st);
    vsnprintf(err_detail, sizeof(err_detail), fmt, ap);
    return st;
}

vtsm_status vtsm_refuse(vtsm_status st, enum vtsm_rule rule, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vtsm_refusev(st, rule, fmt, ap);
    va_end(ap);
    return st;
}

vtsm_status vtsm_failv(vtsm_status st, const char *fmt, va_list ap)
{
    return vtsm_refusev(st, VTSM_RULE_NONE, fmt, ap);
}

vtsm_status vtsm_fail(vtsm_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vtsm_refusev(st, VTSM_RULE_NONE, fmt, ap);
    va_end(ap);
    return st;
}

vtsm_status vtsm_refail(vtsm_status st, const char *fmt, ...)
{
    /* the new detail may quote the old one: format into a copy first */
    char d[sizeof(err_detail)];
    enum vtsm_rule keep = err_status == st ? err.rule : VTSM_RULE_NONE;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d, sizeof(d), fmt, ap);
    va_end(ap);
    return vtsm_refuse(st, keep, "%s", d);
}

vtsm_status vtsm_wrap(vtsm_status st, const char *fmt, ...)
{
    char prefix[sizeof(err_detail)], was[sizeof(err_detail)];
    va_list ap;
    snprintf(was, sizeof(was), "%s", err_detail);
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    return vtsm_refail(st, "%s: %s", prefix, was);
}

const char *vtsm_err_detail(void)
{
    return err_detail;
}

vtsm_status vtsm_err_status(void)
{
    return err_status;
}

enum vtsm_rule vtsm_err_rule(void)
{
    return err.rule;
}

void vtsm_err_clear(void)
{
    err_detail[0] = '\0';
    err_status = VTSM_OK;
    err.rule = VTSM_RULE_NONE;
}

void vtsm_err_save(struct vtsm_err_state *out)
{
    *out = err;
}

void vtsm_err_restore(const struct vtsm_err_state *in)
{
    err = *in;
}
