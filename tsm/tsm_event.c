/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TSM-to-host events (docs/abi.md 11.4): asynchronous EVENT messages on the host
 * connections that asked for them with EVENTS_SUBSCRIBE. The sink belongs to the tsm
 * object: the subscribed clients are found in its client list, and every event goes out
 * through the client's bounded output queue (tsm_client_send), so an event never blocks
 * the loop, and a subscriber that does not read is dropped like a client that leaves its
 * replies unread (rule EVENT.3).
 *
 * The policy events (EVENT.1 SPDM key update, EVENT.2 IDE key refresh) come from timers
 * the loop runs (tsm_event_tick) and from the session's sequence numbers, checked after
 * each device job (tsm_event_check_seq).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tsm_int.h"
#include "vtsm_log.h"

/* Per connected device: when its policy events are due next. */
struct tsm_event_due {
    char dev[VTSM_ABI_DEV_BUF];
    int64_t key_at;    /* SPDM key update due (0: off) */
    int64_t ide_at;    /* IDE key refresh due (0: off) */
    uint64_t seq_said; /* the key-update threshold was reported for this session */
    struct tsm_event_due *next;
};

static const char *const event_names[TSM_EVENT_COUNT_] = {
    [TSM_EVENT_SPDM_KEY_UPDATE_REQUIRED] = "spdm_key_update_required",
    [TSM_EVENT_IDE_KEY_REFRESH_DUE] = "ide_key_refresh_due",
    [TSM_EVENT_TDI_ERROR] = "tdi_error",
    [TSM_EVENT_SESSION_LOST] = "session_lost",
    [TSM_EVENT_EVIDENCE_CHANGED] = "evidence_changed",
    [TSM_EVENT_TDI_RECOVERED] = "tdi_recovered",
};

const char *tsm_event_name(enum tsm_event_kind k)
{
    return (unsigned)k < TSM_EVENT_COUNT_ ? event_names[k] : "invalid";
}

/* {op: EVENT, id: 0, seq, event, dev, tdi?, rule?, detail?} */
static cbor_item_t *event_msg(uint64_t seq, enum tsm_event_kind k, const char *dev, long tdi,
                              enum vtsm_rule rule, const char *detail)
{
    cbor_item_t *m = vtsm_abi_request_msg(VTSM_ABI_OP_EVENT, 0);
    if (m &&
        (vtsm_abi_put_uint(m, VTSM_ABI_K_SEQ, seq) ||
         vtsm_abi_put_tstr(m, VTSM_ABI_K_EVENT, tsm_event_name(k)) ||
         vtsm_abi_put_tstr(m, VTSM_ABI_K_DEV, dev) ||
         (tdi >= 0 && vtsm_abi_put_uint(m, VTSM_ABI_K_TDI, (uint64_t)tdi)) ||
         (rule != VTSM_RULE_NONE && vtsm_abi_put_tstr(m, VTSM_ABI_K_RULE, vtsm_rule_id(rule))) ||
         (detail && vtsm_abi_put_tstr(m, VTSM_ABI_K_DETAIL, detail))))
        cbor_decref(&m);
    return m;
}

void tsm_event_emit(struct tsm *t, enum tsm_event_kind k, const char *dev, long tdi,
                    enum vtsm_rule rule, const char *detail)
{
    uint64_t seq = ++t->event_seq;
    char which[32] = "";
    if (tdi >= 0)
        snprintf(which, sizeof(which), " TDI %ld", tdi);
    VTSM_INFO("event %llu %s %s%s %s %s", (unsigned long long)seq, tsm_event_name(k), dev, which,
              rule ? vtsm_rule_id(rule) : "-", detail ? detail : "");
    if (t->subscribers == 0)
        return;
    /* the error record belongs to whoever emits: keep it */
    struct vtsm_err_state saved;
    vtsm_err_save(&saved);
    cbor_item_t *m = event_msg(seq, k, dev, tdi, rule, detail);
    for (struct tsm_client *c = t->clients; c && m; c = c->next) {
        if (!c->events || c->dead || (c->events_dev[0] && strcmp(c->events_dev, dev) != 0))
            continue;
        if (tsm_client_send(t, c, m) != VTSM_OK && c->dead)
            VTSM_WARN("event subscriber fd %d dropped: it left events unread (rule EVENT.3)",
                      c->fd);
    }
    if (m)
        cbor_decref(&m);
    else
        VTSM_WARN("event %s for %s not sent: out of memory", tsm_event_name(k), dev);
    vtsm_err_restore(&saved);
}

static struct tsm_event_due *due_find(struct tsm *t, const char *dev, bool make)
{
    for (struct tsm_event_due *d = t->due; d; d = d->next)
        if (strcmp(d->dev, dev) == 0)
            return d;
    if (!make)
        return NULL;
    struct tsm_event_due *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    snprintf(d->dev, sizeof(d->dev), "%s", dev);
    d->next = t->due;
    t->due = d;
    return d;
}

void tsm_event_device_reset(struct tsm *t, const struct tsm_pdev *p, bool key_update,
                            bool ide_refresh)
{
    struct tsm_event_due *d = due_find(t, p->name, true);
    if (!d)
        return;
    int64_t now = tsm_now_ms();
    if (key_update) {
        d->key_at = t->cfg.key_update_interval_ms > 0 ? now + t->cfg.key_update_interval_ms : 0;
        d->seq_said = 0;
    }
    if (ide_refresh)
        d->ide_at =
            t->cfg.ide_refresh_interval_ms > 0 && p->ide ? now + t->cfg.ide_refresh_interval_ms : 0;
}

void tsm_event_device_forget(struct tsm *t, const struct tsm_pdev *p)
{
    for (struct tsm_event_due **pp = &t->due; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->dev, p->name) == 0) {
            struct tsm_event_due *d = *pp;
            *pp = d->next;
            free(d);
            return;
        }
}

void tsm_event_check_seq(struct tsm *t, struct tsm_pdev *p)
{
    if (p->state != TSM_PDEV_CONNECTED || !p->spdm || t->cfg.key_update_seq == 0)
        return;
    uint64_t seq = vtsm_spdm_req_seq(p->spdm);
    struct tsm_event_due *d = due_find(t, p->name, true);
    if (!d || seq < t->cfg.key_update_seq || d->seq_said)
        return;
    d->seq_said = seq;
    char detail[160];
    snprintf(detail, sizeof(detail),
             "the session's sequence number reached %llu (threshold %llu): send "
             "spdm_key_update",
             (unsigned long long)seq, (unsigned long long)t->cfg.key_update_seq);
    tsm_event_emit(t, TSM_EVENT_SPDM_KEY_UPDATE_REQUIRED, p->name, -1, VTSM_RULE_EVENT_1, detail);
}

int64_t tsm_event_tick(struct tsm *t, int64_t now_ms)
{
    int64_t next = INT64_MAX;
    for (struct tsm_event_due *d = t->due; d; d = d->next) {
        struct tsm_pdev *p = tsm_pdev_find(&t->devs, d->dev);
        if (!p || p->state != TSM_PDEV_CONNECTED)
            continue;
        if (d->key_at && now_ms >= d->key_at) {
            char detail[128];
            snprintf(detail, sizeof(detail),
                     "no SPDM key update for %lld ms (--key-update-interval): send "
                     "spdm_key_update",
                     (long long)t->cfg.key_update_interval_ms);
            d->key_at = now_ms + t->cfg.key_update_interval_ms; /* again if nothing is done */
            tsm_event_emit(t, TSM_EVENT_SPDM_KEY_UPDATE_REQUIRED, d->dev, -1, VTSM_RULE_EVENT_1,
                           detail);
        }
        if (d->ide_at && p->ide && now_ms >= d->ide_at) {
            char detail[128];
            snprintf(detail, sizeof(detail),
                     "IDE keys in use for %lld ms (--ide-refresh-interval): send ide_refresh",
                     (long long)t->cfg.ide_refresh_interval_ms);
            d->ide_at = now_ms + t->cfg.ide_refresh_interval_ms;
            tsm_event_emit(t, TSM_EVENT_IDE_KEY_REFRESH_DUE, d->dev, -1, VTSM_RULE_EVENT_2, detail);
        }
        if (d->key_at && d->key_at < next)
            next = d->key_at;
        if (d->ide_at && p->ide && d->ide_at < next)
            next = d->ide_at;
    }
    return next;
}

void tsm_event_fini(struct tsm *t)
{
    while (t->due) {
        struct tsm_event_due *d = t->due;
        t->due = d->next;
        free(d);
    }
}
