/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Physical devices and their connection state table.
 *
 *   unconnected --device_connect--> connecting --ok--> connected
 *        ^                              |                  |
 *        +------- failed / aborted -----+          device_reclaim
 *        |                                                 v
 *        +-------------- done (session ended) ------- reclaiming
 *
 * Every refused move names its rule (PDEV.n) so hosts and conformance tests can tell
 * exactly why a request was refused.
 */
#include "tsm_pdev.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vtsm_guard.h"
#include "vtsm_log.h"

static const char *const state_names[TSM_PDEV_STATE_COUNT_] = {
    [TSM_PDEV_UNCONNECTED] = "unconnected",
    [TSM_PDEV_CONNECTING] = "connecting",
    [TSM_PDEV_CONNECTED] = "connected",
    [TSM_PDEV_RECLAIMING] = "reclaiming",
};

const char *tsm_pdev_state_name(enum tsm_pdev_state s)
{
    return (unsigned)s < TSM_PDEV_STATE_COUNT_ ? state_names[s] : "invalid";
}

/* The table: the only legal moves. */
static const struct pdev_move {
    enum tsm_pdev_state from, to;
    enum vtsm_rule rule;
} pdev_moves[] = {
    {TSM_PDEV_UNCONNECTED, TSM_PDEV_CONNECTING, VTSM_RULE_PDEV_1},
    {TSM_PDEV_CONNECTING, TSM_PDEV_CONNECTED, VTSM_RULE_PDEV_2},
    {TSM_PDEV_CONNECTING, TSM_PDEV_UNCONNECTED, VTSM_RULE_PDEV_3},
    {TSM_PDEV_CONNECTED, TSM_PDEV_RECLAIMING, VTSM_RULE_PDEV_4},
    {TSM_PDEV_RECLAIMING, TSM_PDEV_UNCONNECTED, VTSM_RULE_PDEV_5},
};
/* Rules named elsewhere: PDEV.6 one DOE requester per device (tsm_job.c), PDEV.7 one root
 * port per device, PDEV.8 remove only when unconnected, PDEV.9 reclaim with bound TDIs
 * needs force, PDEV.10 TDI / IDE / SPDM verbs need a connected device, PDEV.11 a bounded
 * number of devices, PDEV.12 a session lost in a key update or heartbeat disconnects the
 * device (tsm_verbs_tdi.c). */

vtsm_status tsm_pdev_transition(struct tsm_pdev *p, enum tsm_pdev_state to, const char *verb)
{
    for (size_t i = 0; i < VTSM_ARRAY_SIZE(pdev_moves); i++)
        if (pdev_moves[i].from == p->state && pdev_moves[i].to == to) {
            p->state = to;
            return VTSM_OK;
        }
    /* Refused. A device busy with another verb is the "one DOE requester" rule. */
    if (p->state == TSM_PDEV_CONNECTING || p->state == TSM_PDEV_RECLAIMING)
        return vtsm_refuse(VTSM_E_BUSY, VTSM_RULE_PDEV_6,
                           "%s refused: %s is %s (rule PDEV.6: one DOE requester per device at a "
                           "time)",
                           verb, p->name, state_names[p->state]);
    enum vtsm_rule rule = VTSM_RULE_PDEV_0;
    for (size_t i = 0; i < VTSM_ARRAY_SIZE(pdev_moves); i++)
        if (pdev_moves[i].to == to) {
            rule = pdev_moves[i].rule;
            break;
        }
    return vtsm_refuse(VTSM_E_STATE, rule, "%s refused: %s is %s (rule %s: %s)", verb, p->name,
                       state_names[p->state], vtsm_rule_id(rule), vtsm_rule_text(rule));
}

void tsm_pdev_registry_init(struct tsm_pdev_registry *r, struct tsm *owner,
                            struct tsm_tvm_registry *tvms)
{
    memset(r, 0, sizeof(*r));
    r->owner = owner;
    r->tvms = tvms;
}

void tsm_pdev_registry_fini(struct tsm_pdev_registry *r)
{
    while (r->head) {
        struct tsm_pdev *p = r->head;
        r->head = p->next;
        tsm_pdev_reset(p);
        free(p);
    }
    r->count = 0;
}

struct tsm_pdev *tsm_pdev_find(struct tsm_pdev_registry *r, const char *name)
{
    for (struct tsm_pdev *p = r->head; p; p = p->next)
        if (strcmp(p->name, name) == 0)
            return p;
    return NULL;
}

vtsm_status tsm_pdev_add(struct tsm_pdev_registry *r, const char *name, uint32_t root_port,
                         struct tsm_pdev **out)
{
    struct tsm_pdev *p = tsm_pdev_find(r, name);
    if (p) {
        VTSM_ENSURE_RULE(p->root_port == root_port, VTSM_E_EXISTS, VTSM_RULE_PDEV_7,
                         "device_add refused: %s is already registered under root port %u "
                         "(rule PDEV.7: a device sits under one root port)",
                         name, p->root_port);
        *out = p;
        return VTSM_OK;
    }
    unsigned n = r->count;
    VTSM_ENSURE_RULE(n < TSM_MAX_PDEVS, VTSM_E_LIMIT, VTSM_RULE_PDEV_11,
                     "device_add refused: %u devices are registered (rule PDEV.11: at most %u)", n,
                     TSM_MAX_PDEVS);
    p = calloc(1, sizeof(*p));
    VTSM_ENSURE(p, VTSM_E_NOMEM, "out of memory adding device");
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->root_port = root_port;
    p->tsm = r->owner;
    p->tvms = r->tvms;
    p->state = TSM_PDEV_UNCONNECTED;
    p->next = r->head;
    r->head = p;
    r->count++;
    *out = p;
    return VTSM_OK;
}

vtsm_status tsm_pdev_remove(struct tsm_pdev_registry *r, const char *name)
{
    for (struct tsm_pdev **pp = &r->head; *pp; pp = &(*pp)->next) {
        struct tsm_pdev *p = *pp;
        if (strcmp(p->name, name) != 0)
            continue;
        VTSM_ENSURE_RULE(p->state == TSM_PDEV_UNCONNECTED, VTSM_E_STATE, VTSM_RULE_PDEV_8,
                         "device_remove refused: %s is %s (rule PDEV.8: only an unconnected "
                         "device can be removed)",
                         name, state_names[p->state]);
        *pp = p->next;
        r->count--;
        tsm_pdev_reset(p);
        free(p);
        return VTSM_OK;
    }
    return vtsm_refuse(VTSM_E_NOT_FOUND, VTSM_RULE_PDEV_13,
                       "no device named %s (register it with device_add)", name);
}

/* A bound TDI (or one its owner's UNLOCK left assigned) counts once for its device and once
 * for its TVM. */
static void tally(struct tsm_pdev *p, const struct tsm_tdi *tdi, int sign)
{
    if (tdi->owner_tvm == 0)
        return;
    p->bound_tdis = (unsigned)((int)p->bound_tdis + sign);
    tsm_tvm_reserve(p->tvms, tdi->owner_tvm, sign);
}

void tsm_pdev_tally_claim(struct tsm_pdev *p, int sign)
{
    for (struct tsm_tdi_node *n = p->tdis; p->claim && n; n = n->next)
        if (tsm_pdev_tdi_claimed(p, &n->tdi))
            tally(p, &n->tdi, sign);
}

bool tsm_pdev_session_lost(const struct tsm_pdev *p)
{
    return p->state == TSM_PDEV_CONNECTED &&
           !(p->spdm && vtsm_spdm_req_info(p->spdm)->session_active);
}

bool tsm_pdev_check_session(struct tsm_pdev *p, const char *verb, enum vtsm_rule why)
{
    if (!tsm_pdev_session_lost(p))
        return false;
    if (why == VTSM_RULE_PDEV_17)
        VTSM_WARN("%s: %s no longer knows the SPDM session in %s but answers GET_VERSION in the "
                  "clear: its SPDM connection was reset behind the TSM; the device is "
                  "disconnected (rule PDEV.17)",
                  p->name, p->name, verb);
    else
        VTSM_WARN("%s: %s lost its SPDM session in %s; the device is disconnected (rule PDEV.12)",
                  p->name, p->name, verb);
    tsm_pdev_reset(p);
    tsm_pdev_transition(p, TSM_PDEV_RECLAIMING, verb);
    tsm_pdev_transition(p, TSM_PDEV_UNCONNECTED, verb);
    return true;
}

void tsm_pdev_reset(struct tsm_pdev *p)
{
    if (p->ide) {
        tsm_ide_teardown(p->ide, NULL); /* frees streams and slots, wipes keys */
        p->ide = NULL;
    }
    while (p->tdis) {
        struct tsm_tdi_node *n = p->tdis;
        p->tdis = n->next;
        if (!tsm_pdev_tdi_claimed(p, &n->tdi)) /* a running job's TDIs are out of the count */
            tally(p, &n->tdi, -1);
        tsm_tdi_reset(&n->tdi); /* wipes the lock nonce, drops the report */
        free(n);
    }
    p->tdisp = false;
    memset(&p->tdisp_caps, 0, sizeof(p->tdisp_caps));
    vtsm_spdm_req_free(p->spdm);
    p->spdm = NULL;
    vtsm_spdm_meas_free(&p->ev.meas);
    memset(&p->ev, 0, sizeof(p->ev));
}

struct tsm_tdi *tsm_pdev_tdi_find(struct tsm_pdev *p, uint32_t index)
{
    for (struct tsm_tdi_node *n = p->tdis; n; n = n->next)
        if (n->tdi.index == index)
            return &n->tdi;
    return NULL;
}

void tsm_pdev_tdi_forget(struct tsm_pdev *p, uint32_t index)
{
    for (struct tsm_tdi_node **pp = &p->tdis; *pp; pp = &(*pp)->next) {
        struct tsm_tdi_node *n = *pp;
        if (n->tdi.index != index)
            continue;
        if (n->tdi.state == TSM_TDI_CONFIG_UNLOCKED && n->tdi.owner_tvm == 0) {
            *pp = n->next;
            tsm_tdi_reset(&n->tdi);
            free(n);
        }
        return;
    }
}

vtsm_status tsm_pdev_tdi(struct tsm_pdev *p, uint32_t index, struct tsm_tdi **out)
{
    if ((*out = tsm_pdev_tdi_find(p, index)) != NULL)
        return VTSM_OK;
    struct tsm_tdi_node *n = calloc(1, sizeof(*n));
    VTSM_ENSURE(n, VTSM_E_NOMEM, "out of memory for a TDI");
    vtsm_status st = tsm_tdi_init(&n->tdi, p->name, index);
    if (st) {
        free(n);
        return st;
    }
    n->next = p->tdis;
    p->tdis = n;
    *out = &n->tdi;
    return VTSM_OK;
}

bool tsm_pdev_tdi_claimed(const struct tsm_pdev *p, const struct tsm_tdi *t)
{
    const struct tsm_job_claim *c = p->claim;
    return c && (c->all_tdis || (c->has_tdi && c->tdi == t->index));
}

unsigned tsm_pdev_bound_tdis(const struct tsm_pdev *p)
{
    return p->bound_tdis;
}
