/* SPDX-License-Identifier: BSD-3-Clause */
#include "vtsm_status.h"

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

vtsm_status vtsm_failv(vtsm_status st, const char *fmt, va_list ap)
{
    err_status = st;
    vsnprintf(err_detail, sizeof(err_detail), fmt, ap);
    return st;
}

vtsm_status vtsm_fail(vtsm_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vtsm_failv(st, fmt, ap);
    va_end(ap);
    return st;
}

const char *vtsm_err_detail(void)
{
    return err_detail;
}

vtsm_status vtsm_err_status(void)
{
    return err_status;
}

void vtsm_err_clear(void)
{
    err_detail[0] = '\0';
    err_status = VTSM_OK;
}

void vtsm_err_save(struct vtsm_err_state *out)
{
    *out = err;
}

void vtsm_err_restore(const struct vtsm_err_state *in)
{
    err = *in;
}
