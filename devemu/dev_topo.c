/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The device's topology: which functions are TDIs (their requester IDs) and the MMIO
 * ranges each one reports, from options or a small file (devemu/README.md "Topology").
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dev_internal.h"
#include "vtsm_guard.h"

#define PAGE        0x1000ull
#define LINE_MAX_   512
#define SIZE_MAX_TB (1ull << 40) /* one range at most 1 TiB */

void vtsm_dev_topo_init(struct vtsm_dev_topo *t)
{
    memset(t, 0, sizeof(*t));
    t->vf_offset = 1;
    t->vf_stride = 1;
}

/* A number, decimal or 0x hex, at most max. */
static vtsm_status parse_num(const char *key, const char *s, unsigned long long max,
                             unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    VTSM_ENSURE(*s >= '0' && *s <= '9' && *end == '\0' && errno == 0 && v <= max, VTSM_E_CONFIG,
                "topology %s: '%s' is not a number 0..%llu", key, s, max);
    *out = v;
    return VTSM_OK;
}

/* "SIZE[:ATTR]": SIZE in bytes (decimal or 0x hex, optional K, M or G), a multiple of 4 KiB;
 * ATTR msix, pba or non-tee. */
static vtsm_status parse_range(const char *key, char *s, struct vtsm_dev_range *r)
{
    char *attr = strchr(s, ':');
    if (attr)
        *attr++ = '\0';
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    unsigned long long mul = 1;
    if (*end == 'K' || *end == 'k')
        mul = 1ull << 10;
    else if (*end == 'M' || *end == 'm')
        mul = 1ull << 20;
    else if (*end == 'G' || *end == 'g')
        mul = 1ull << 30;
    if (mul != 1)
        end++;
    VTSM_ENSURE(*s >= '0' && *s <= '9' && *end == '\0' && errno == 0 && v > 0 &&
                    v <= SIZE_MAX_TB / mul && (v * mul) % PAGE == 0,
                VTSM_E_CONFIG,
                "topology %s: range size '%s' is not a multiple of 4 KiB up to 1 TiB", key, s);
    r->size = v * mul;
    r->attrs = 0;
    if (!attr)
        return VTSM_OK;
    if (strcmp(attr, "msix") == 0)
        r->attrs = VTSM_TDISP_RANGE_MSIX_TABLE;
    else if (strcmp(attr, "pba") == 0)
        r->attrs = VTSM_TDISP_RANGE_MSIX_PBA;
    else if (strcmp(attr, "non-tee") == 0)
        r->attrs = VTSM_TDISP_RANGE_IS_NON_TEE_MEM;
    else
        return vtsm_fail(VTSM_E_CONFIG,
                         "topology %s: range attribute '%s' is not msix, pba or "
                         "non-tee",
                         key, attr);
    return VTSM_OK;
}

/* "RANGE[,RANGE...]" into l (its rid untouched). */
static vtsm_status parse_ranges(const char *key, const char *value, struct vtsm_dev_tdi *l)
{
    char buf[LINE_MAX_];
    VTSM_ENSURE(strlen(value) < sizeof(buf), VTSM_E_CONFIG, "topology %s: too long", key);
    strcpy(buf, value);
    l->n_ranges = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        VTSM_ENSURE(l->n_ranges < VTSM_DEV_MAX_RANGES, VTSM_E_CONFIG,
                    "topology %s: more than %d ranges", key, VTSM_DEV_MAX_RANGES);
        VTSM_GUARD(parse_range(key, tok, &l->ranges[l->n_ranges]));
        l->n_ranges++;
    }
    VTSM_ENSURE(l->n_ranges > 0, VTSM_E_CONFIG, "topology %s: no range", key);
    return VTSM_OK;
}

vtsm_status vtsm_dev_topo_set(struct vtsm_dev_topo *t, const char *key, const char *value)
{
    unsigned long long v = 0;
    VTSM_ENSURE(t && key && value, VTSM_E_INVAL, "topology: NULL argument");
    t->used = true;
    if (strcmp(key, "segment") == 0) {
        VTSM_GUARD(parse_num(key, value, 0xFF, &v));
        t->segment = (unsigned)v;
    } else if (strcmp(key, "rid") == 0) {
        VTSM_GUARD(parse_num(key, value, 0xFFFF, &v));
        VTSM_ENSURE((v & 7) == 0, VTSM_E_CONFIG, "topology rid 0x%llx is not function 0", v);
        t->rid = (unsigned)v;
    } else if (strcmp(key, "pfs") == 0) {
        VTSM_GUARD(parse_num(key, value, 7, &v));
        t->pfs = (unsigned)v;
    } else if (strcmp(key, "vfs") == 0) {
        VTSM_GUARD(parse_num(key, value, VTSM_DEV_MAX_TDIS, &v));
        t->vfs = (unsigned)v;
    } else if (strcmp(key, "vf-offset") == 0) {
        VTSM_GUARD(parse_num(key, value, 0xFFFF, &v));
        VTSM_ENSURE(v > 0, VTSM_E_CONFIG, "topology vf-offset must be above 0");
        t->vf_offset = (unsigned)v;
    } else if (strcmp(key, "vf-stride") == 0) {
        VTSM_GUARD(parse_num(key, value, 0xFFFF, &v));
        VTSM_ENSURE(v > 0, VTSM_E_CONFIG, "topology vf-stride must be above 0");
        t->vf_stride = (unsigned)v;
    } else if (strcmp(key, "pf-bars") == 0) {
        VTSM_GUARD(parse_ranges(key, value, &t->pf_bars));
    } else if (strcmp(key, "vf-bars") == 0) {
        VTSM_GUARD(parse_ranges(key, value, &t->vf_bars));
    } else if (strcmp(key, "tdi") == 0) {
        /* RID[=RANGES] */
        char rid[32];
        const char *eq = strchr(value, '=');
        size_t n = eq ? (size_t)(eq - value) : strlen(value);
        VTSM_ENSURE(n < sizeof(rid), VTSM_E_CONFIG, "topology tdi: bad RID in '%s'", value);
        memcpy(rid, value, n);
        rid[n] = '\0';
        VTSM_ENSURE(t->n_tdis < VTSM_DEV_MAX_TDIS, VTSM_E_CONFIG, "topology: more than %d TDIs",
                    VTSM_DEV_MAX_TDIS);
        struct vtsm_dev_tdi *d = &t->tdis[t->n_tdis];
        memset(d, 0, sizeof(*d));
        VTSM_GUARD(parse_num(key, rid, 0xFFFF, &v));
        d->rid = (uint16_t)v;
        if (eq)
            VTSM_GUARD(parse_ranges(key, eq + 1, d));
        t->n_tdis++;
    } else {
        return vtsm_fail(VTSM_E_CONFIG, "topology: unknown setting '%s'", key);
    }
    return VTSM_OK;
}

vtsm_status vtsm_dev_topo_file(struct vtsm_dev_topo *t, const char *path)
{
    FILE *f = fopen(path, "r");
    VTSM_ENSURE(f, VTSM_E_CONFIG, "topology file %s: %s", path, strerror(errno));
    char line[LINE_MAX_];
    unsigned no = 0;
    vtsm_status st = VTSM_OK;
    while (st == VTSM_OK && fgets(line, sizeof(line), f)) {
        no++;
        if (!strchr(line, '\n') && !feof(f)) {
            st = vtsm_fail(VTSM_E_CONFIG, "topology file %s:%u: line too long", path, no);
            break;
        }
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *save = NULL, *key = strtok_r(line, " \t\r\n", &save);
        if (!key)
            continue;
        char *value = strtok_r(NULL, " \t\r\n", &save);
        char *extra = value ? strtok_r(NULL, " \t\r\n", &save) : NULL;
        if (!value || extra)
            st = vtsm_fail(VTSM_E_CONFIG, "topology file %s:%u: expected KEY VALUE", path, no);
        else if ((st = vtsm_dev_topo_set(t, key, value)) != VTSM_OK)
            st = vtsm_wrap(st, "topology file %s:%u", path, no);
    }
    fclose(f);
    return st;
}

static vtsm_status add_tdi(struct vtsm_dev_config *c, unsigned rid, const struct vtsm_dev_tdi *l)
{
    VTSM_ENSURE(rid <= 0xFFFF, VTSM_E_CONFIG, "topology: RID 0x%x is past 0xffff", rid);
    VTSM_ENSURE(c->num_tdis < VTSM_DEV_MAX_TDIS, VTSM_E_CONFIG, "topology: more than %d TDIs",
                VTSM_DEV_MAX_TDIS);
    for (unsigned i = 0; i < c->num_tdis; i++)
        VTSM_ENSURE(c->tdi[i].rid != rid, VTSM_E_CONFIG, "topology: RID 0x%04x is two TDIs", rid);
    struct vtsm_dev_tdi *d = &c->tdi[c->num_tdis++];
    *d = *l;
    d->rid = (uint16_t)rid;
    return VTSM_OK;
}

vtsm_status vtsm_dev_topo_apply(const struct vtsm_dev_topo *t, struct vtsm_dev_config *c)
{
    VTSM_ENSURE(t && c, VTSM_E_INVAL, "topology: NULL argument");
    if (!t->used)
        return VTSM_OK;
    c->segment = t->segment;
    c->num_tdis = 0;
    for (unsigned i = 1; i <= t->pfs; i++)
        VTSM_GUARD(add_tdi(c, t->rid + i, &t->pf_bars));
    for (unsigned i = 0; i < t->vfs; i++)
        VTSM_GUARD(add_tdi(c, t->rid + t->vf_offset + i * t->vf_stride, &t->vf_bars));
    for (unsigned i = 0; i < t->n_tdis; i++)
        VTSM_GUARD(add_tdi(c, t->tdis[i].rid, &t->tdis[i]));
    return VTSM_OK;
}
