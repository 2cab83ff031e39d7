/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Root ports, their selective IDE stream IDs and key slots (see tsm_platform.h).
 */
#include "tsm_platform.h"

#include <stdlib.h>
#include <string.h>

#include "vtsm_guard.h"
#include "vtsm_log.h"

struct tsm_rp {
    struct tsm_rp_config cfg;
    uint16_t streams_used;
    uint16_t slots_used;
    uint64_t used[TSM_RP_MAX_STREAMS / 64]; /* bit i: stream ID i allocated */
};

struct tsm_platform {
    size_t n;
    struct tsm_rp rp[];
};

/* ---- parsing ---- */

/* One decimal field ending at ':' or NUL, value <= max. */
static vtsm_status parse_field(const char **s, const char *name, uint32_t max, uint32_t *out)
{
    const char *p = *s;
    uint32_t v = 0;

    VTSM_ENSURE(*p >= '0' && *p <= '9', VTSM_E_CONFIG,
                "--root-port: %s must be a decimal number (ID:STREAMS[:KEYSLOTS])", name);
    for (; *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (uint32_t)(*p - '0');
        VTSM_ENSURE(v <= max, VTSM_E_CONFIG, "--root-port: %s exceeds %u", name, max);
    }
    VTSM_ENSURE(*p == ':' || *p == '\0', VTSM_E_CONFIG,
                "--root-port: %s must be a decimal number (ID:STREAMS[:KEYSLOTS])", name);
    *s = p;
    *out = v;
    return VTSM_OK;
}

static vtsm_status check_config(const struct tsm_rp_config *c)
{
    VTSM_ENSURE(c->streams >= 1 && c->streams <= TSM_RP_MAX_STREAMS, VTSM_E_CONFIG,
                "root port %u: STREAMS %u outside 1..%u", c->id, c->streams, TSM_RP_MAX_STREAMS);
    VTSM_ENSURE(c->key_slots >= TSM_RP_SLOTS_PER_SET && c->key_slots <= TSM_RP_MAX_KEY_SLOTS,
                VTSM_E_CONFIG, "root port %u: KEYSLOTS %u outside %u..%u", c->id, c->key_slots,
                TSM_RP_SLOTS_PER_SET, TSM_RP_MAX_KEY_SLOTS);
    return VTSM_OK;
}

vtsm_status tsm_platform_parse_rp(const char *spec, struct tsm_rp_config *out)
{
    uint32_t id, streams, slots;
    struct tsm_rp_config c;

    VTSM_ENSURE(spec != NULL && out != NULL, VTSM_E_INVAL, "--root-port: NULL argument");
    VTSM_GUARD(parse_field(&spec, "ID", UINT16_MAX, &id));
    VTSM_ENSURE(*spec == ':', VTSM_E_CONFIG,
                "--root-port: STREAMS missing (ID:STREAMS[:KEYSLOTS])");
    spec++;
    VTSM_GUARD(parse_field(&spec, "STREAMS", UINT16_MAX, &streams));
    VTSM_ENSURE(streams >= 1 && streams <= TSM_RP_MAX_STREAMS, VTSM_E_CONFIG,
                "--root-port: STREAMS %u outside 1..%u", streams, TSM_RP_MAX_STREAMS);
    slots = streams * TSM_RP_SLOTS_PER_SET;
    if (*spec == ':') {
        spec++;
        VTSM_GUARD(parse_field(&spec, "KEYSLOTS", UINT16_MAX, &slots));
        VTSM_ENSURE(*spec == '\0', VTSM_E_CONFIG,
                    "--root-port: extra field after KEYSLOTS (ID:STREAMS[:KEYSLOTS])");
    }
    c.id = (uint16_t)id;
    c.streams = (uint16_t)streams;
    c.key_slots = (uint16_t)slots;
    VTSM_GUARD(check_config(&c));
    *out = c;
    return VTSM_OK;
}

/* ---- lifecycle ---- */

vtsm_status tsm_platform_new(const struct tsm_rp_config *rps, size_t n, struct tsm_platform **out)
{
    static const struct tsm_rp_config defaults[TSM_PLATFORM_DEFAULT_RP_NUM] = {
        {0, TSM_RP_DEFAULT_STREAMS, TSM_RP_DEFAULT_KEY_SLOTS},
        {1, TSM_RP_DEFAULT_STREAMS, TSM_RP_DEFAULT_KEY_SLOTS},
    };
    struct tsm_platform *p;

    VTSM_ENSURE(out != NULL && (rps != NULL || n == 0), VTSM_E_INVAL, "platform: NULL argument");
    if (n == 0) {
        rps = defaults;
        n = TSM_PLATFORM_DEFAULT_RP_NUM;
    }
    VTSM_ENSURE(n <= TSM_PLATFORM_MAX_RP, VTSM_E_CONFIG, "platform: %zu root ports, at most %u", n,
                TSM_PLATFORM_MAX_RP);
    for (size_t i = 0; i < n; i++) {
        VTSM_GUARD(check_config(&rps[i]));
        for (size_t j = 0; j < i; j++)
            VTSM_ENSURE(rps[j].id != rps[i].id, VTSM_E_CONFIG, "platform: root port %u given twice",
                        rps[i].id);
    }
    p = calloc(1, sizeof(*p) + n * sizeof(p->rp[0]));
    VTSM_ENSURE(p != NULL, VTSM_E_NOMEM, "platform");
    p->n = n;
    for (size_t i = 0; i < n; i++)
        p->rp[i].cfg = rps[i];
    *out = p;
    return VTSM_OK;
}

void tsm_platform_free(struct tsm_platform *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        if (p->rp[i].streams_used || p->rp[i].slots_used)
            VTSM_WARN("platform: root port %u freed with %u streams and %u key slots in use",
                      p->rp[i].cfg.id, p->rp[i].streams_used, p->rp[i].slots_used);
    free(p);
}

static struct tsm_rp *rp_find(const struct tsm_platform *p, uint32_t id)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->rp[i].cfg.id == id)
            return (struct tsm_rp *)&p->rp[i];
    return NULL;
}

bool tsm_platform_has_rp(const struct tsm_platform *p, uint32_t rp)
{
    return p != NULL && rp_find(p, rp) != NULL;
}

size_t tsm_platform_rp_count(const struct tsm_platform *p)
{
    return p ? p->n : 0;
}

uint16_t tsm_platform_rp_id(const struct tsm_platform *p, size_t i)
{
    return p && i < p->n ? p->rp[i].cfg.id : 0;
}

/* ---- allocation ---- */

static bool stream_used(const struct tsm_rp *r, unsigned id)
{
    return (r->used[id / 64] >> (id % 64)) & 1u;
}

static void stream_mark(struct tsm_rp *r, unsigned id, bool used)
{
    if (used)
        r->used[id / 64] |= UINT64_C(1) << (id % 64);
    else
        r->used[id / 64] &= ~(UINT64_C(1) << (id % 64));
}

static vtsm_status slots_check(const struct tsm_rp *r, unsigned n)
{
    unsigned left = (unsigned)r->cfg.key_slots - r->slots_used;
    VTSM_ENSURE_RULE(n <= left, VTSM_E_LIMIT, VTSM_RULE_IDE_2,
                     "no IDE key slot available on root port %u (%u of %u in use, %u needed) "
                     "(rule IDE.2)",
                     r->cfg.id, r->slots_used, r->cfg.key_slots, n);
    return VTSM_OK;
}

static struct tsm_rp *rp_lookup(struct tsm_platform *p, uint32_t rp, vtsm_status *st)
{
    struct tsm_rp *r = rp_find(p, rp);
    if (!r)
        *st = vtsm_refuse(VTSM_E_NOT_FOUND, VTSM_RULE_PLAT_1, "no root port %u (rule PLAT.1)", rp);
    return r;
}

vtsm_status tsm_platform_alloc_streams(struct tsm_platform *p, uint32_t rp, unsigned n,
                                       uint8_t *ids)
{
    vtsm_status st = VTSM_OK;
    struct tsm_rp *r;
    unsigned got = 0;

    VTSM_ENSURE(p != NULL && ids != NULL, VTSM_E_INVAL, "platform: NULL argument");
    VTSM_ENSURE(n >= 1 && n <= TSM_RP_MAX_STREAMS, VTSM_E_INVAL,
                "platform: %u streams requested (1..%u)", n, TSM_RP_MAX_STREAMS);
    r = rp_lookup(p, rp, &st);
    if (!r)
        return st;

    unsigned left = (unsigned)r->cfg.streams - r->streams_used;
    if (left == 0 || n > left) {
        if (n > 1 && left > 0)
            st = vtsm_refuse(VTSM_E_NO_STREAM, VTSM_RULE_IDE_1,
                             "no IDE stream available on root port %u (%u of %u in use, %u needed) "
                             "(rule IDE.1)",
                             r->cfg.id, r->streams_used, r->cfg.streams, n);
        else
            st = vtsm_refuse(
                VTSM_E_NO_STREAM, VTSM_RULE_IDE_1,
                "no IDE stream available on root port %u (%u of %u in use) (rule IDE.1)", r->cfg.id,
                r->streams_used, r->cfg.streams);
        goto out;
    }
    VTSM_GUARD_GOTO(slots_check(r, n * TSM_RP_SLOTS_PER_SET));
    for (unsigned id = 0; id < r->cfg.streams && got < n; id++)
        if (!stream_used(r, id))
            ids[got++] = (uint8_t)id;
    VTSM_ENSURE_GOTO(got == n, VTSM_E_INTERNAL, "platform: stream bitmap of root port %u",
                     r->cfg.id);
    for (unsigned i = 0; i < n; i++)
        stream_mark(r, ids[i], true);
    r->streams_used = (uint16_t)(r->streams_used + n);
    r->slots_used = (uint16_t)(r->slots_used + n * TSM_RP_SLOTS_PER_SET);
out:
    return st;
}

vtsm_status tsm_platform_claim_streams(struct tsm_platform *p, uint32_t rp, unsigned n,
                                       const uint8_t *ids)
{
    vtsm_status st = VTSM_OK;
    struct tsm_rp *r;

    VTSM_ENSURE(p != NULL && ids != NULL, VTSM_E_INVAL, "platform: NULL argument");
    VTSM_ENSURE(n >= 1 && n <= TSM_RP_MAX_STREAMS, VTSM_E_INVAL,
                "platform: %u streams named (1..%u)", n, TSM_RP_MAX_STREAMS);
    r = rp_lookup(p, rp, &st);
    if (!r)
        return st;
    for (unsigned i = 0; i < n; i++) {
        VTSM_ENSURE_RULE(ids[i] < r->cfg.streams, VTSM_E_NO_STREAM, VTSM_RULE_IDE_7,
                         "stream ID %u is not a stream of root port %u (IDs 0..%u) (rule IDE.7)",
                         ids[i], r->cfg.id, r->cfg.streams - 1u);
        VTSM_ENSURE_RULE(!stream_used(r, ids[i]), VTSM_E_NO_STREAM, VTSM_RULE_IDE_7,
                         "stream ID %u of root port %u is in use by another device (rule IDE.7)",
                         ids[i], r->cfg.id);
        for (unsigned j = 0; j < i; j++)
            VTSM_ENSURE_RULE(ids[j] != ids[i], VTSM_E_ABI_ARG, VTSM_RULE_IDE_6,
                             "stream ID %u named twice (rule IDE.6)", ids[i]);
    }
    VTSM_GUARD(slots_check(r, n * TSM_RP_SLOTS_PER_SET));
    for (unsigned i = 0; i < n; i++)
        stream_mark(r, ids[i], true);
    r->streams_used = (uint16_t)(r->streams_used + n);
    r->slots_used = (uint16_t)(r->slots_used + n * TSM_RP_SLOTS_PER_SET);
    return VTSM_OK;
}

void tsm_platform_free_streams(struct tsm_platform *p, uint32_t rp, unsigned n, const uint8_t *ids)
{
    struct tsm_rp *r;

    if (!p || !ids || n == 0 || !(r = rp_find(p, rp)))
        return;
    unsigned freed = 0;
    for (unsigned i = 0; i < n; i++) {
        if (ids[i] >= r->cfg.streams || !stream_used(r, ids[i])) {
            VTSM_ERR("platform: stream %u of root port %u freed but not allocated", ids[i], rp);
            continue;
        }
        stream_mark(r, ids[i], false);
        r->streams_used--;
        freed++;
    }
    /* the key slots that went with the streams actually freed */
    unsigned slots = freed * TSM_RP_SLOTS_PER_SET;
    if (slots > r->slots_used) {
        VTSM_ERR("platform: root port %u: %u key slots freed, %u in use", rp, slots, r->slots_used);
        slots = r->slots_used;
    }
    r->slots_used = (uint16_t)(r->slots_used - slots);
}

vtsm_status tsm_platform_alloc_slots(struct tsm_platform *p, uint32_t rp, unsigned n)
{
    vtsm_status st = VTSM_OK;
    struct tsm_rp *r;

    VTSM_ENSURE(p != NULL, VTSM_E_INVAL, "platform: NULL argument");
    VTSM_ENSURE(n >= 1 && n <= TSM_RP_MAX_KEY_SLOTS, VTSM_E_INVAL,
                "platform: %u key slots requested (1..%u)", n, TSM_RP_MAX_KEY_SLOTS);
    r = rp_lookup(p, rp, &st);
    if (!r)
        return st;
    st = slots_check(r, n);
    if (st == VTSM_OK)
        r->slots_used = (uint16_t)(r->slots_used + n);
    return st;
}

void tsm_platform_free_slots(struct tsm_platform *p, uint32_t rp, unsigned n)
{
    struct tsm_rp *r;

    if (!p || n == 0 || !(r = rp_find(p, rp)))
        return;
    if (n > r->slots_used) {
        VTSM_ERR("platform: root port %u: %u key slots freed, %u in use", rp, n, r->slots_used);
        n = r->slots_used;
    }
    r->slots_used = (uint16_t)(r->slots_used - n);
}

/* ---- status ---- */

static void usage_of(const struct tsm_rp *r, struct tsm_rp_usage *u)
{
    u->id = r->cfg.id;
    u->streams = r->cfg.streams;
    u->streams_used = r->streams_used;
    u->key_slots = r->cfg.key_slots;
    u->key_slots_used = r->slots_used;
}

vtsm_status tsm_platform_usage(struct tsm_platform *p, uint32_t rp, struct tsm_rp_usage *out)
{
    vtsm_status st = VTSM_OK;
    struct tsm_rp *r;

    VTSM_ENSURE(p != NULL && out != NULL, VTSM_E_INVAL, "platform: NULL argument");
    r = rp_lookup(p, rp, &st);
    if (!r)
        return st;
    usage_of(r, out);
    return VTSM_OK;
}
