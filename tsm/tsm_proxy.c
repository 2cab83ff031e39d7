/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The DOE proxy: a firmware-style continuation. The SPDM requester of a device calls
 * exchange(); we hand the DOE object to the host as doe_pending{id, dev, seq, object}
 * and block the worker until the host answers doe_response with the same id and seq
 * (or disconnects, or the wait times out). The host is untrusted: it may answer late,
 * twice, with the wrong seq, or never; none of that reaches the requester except as a
 * clean error, and a stray doe_response never disturbs the pending exchange.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "tsm_int.h"
#include "vtsm_doe.h"
#include "vtsm_guard.h"

static void deadline_after(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* One exchange on a channel: NULL = the device's DOE mailbox, "link" = the simulated
 * PCIe link (IDE link check frames). Both travel as DOE_PENDING / DOE_RESPONSE. */
static vtsm_status proxy_exchange_on(struct tsm_pdev *p, const char *channel, const uint8_t *req,
                                     size_t req_len, struct vtsm_buf *rsp)
{
    struct tsm *t = p->tsm;
    struct tsm_verb *v = &p->verb;
    vtsm_status st = VTSM_OK;

    pthread_mutex_lock(&t->lock);
    struct tsm_client *c = v->client;
    if (!c || c->dead || t->stopping) {
        pthread_mutex_unlock(&t->lock);
        return vtsm_fail(VTSM_E_CLOSED, "host connection gone before DOE exchange on %s", p->name);
    }
    uint64_t seq = ++v->next_seq;
    uint64_t id = v->id;
    v->seq = seq;
    v->waiting = true;
    v->done = false;
    v->error[0] = '\0';
    vtsm_buf_reset(&v->rsp);
    pthread_mutex_unlock(&t->lock);

    cbor_item_t *m = vtsm_abi_doe_pending_msg(id, p->name, seq, req, req_len);
    if (m && channel && vtsm_abi_put_tstr(m, VTSM_ABI_K_CHANNEL, channel) != VTSM_OK)
        cbor_decref(&m);
    st = m ? tsm_client_send(t, c, m) : vtsm_fail(VTSM_E_NOMEM, "doe_pending");
    if (m)
        cbor_decref(&m);

    pthread_mutex_lock(&t->lock);
    if (st == VTSM_OK) {
        struct timespec deadline;
        deadline_after(&deadline, t->cfg.doe_timeout_ms);
        while (!v->done && !c->dead && !t->stopping)
            if (pthread_cond_timedwait(&t->cond, &t->lock, &deadline) == ETIMEDOUT)
                break;
        if (v->done && v->result == VTSM_OK)
            st = vtsm_buf_set(rsp, v->rsp.data, v->rsp.len);
        else if (v->done)
            st = vtsm_fail(VTSM_E_DOE_HOST, "host could not perform DOE exchange %llu on %s: %s",
                           (unsigned long long)seq, p->name, v->error);
        else if (c->dead)
            st = vtsm_fail(VTSM_E_CLOSED,
                           "host disconnected while DOE exchange %llu on %s was pending",
                           (unsigned long long)seq, p->name);
        else if (t->stopping)
            st = vtsm_fail(VTSM_E_ABORTED, "tsmd is shutting down");
        else
            st = vtsm_fail(VTSM_E_TIMEOUT, "no doe_response for exchange %llu on %s within %d ms",
                           (unsigned long long)seq, p->name, t->cfg.doe_timeout_ms);
    }
    v->waiting = false;
    v->done = false;
    vtsm_buf_reset(&v->rsp);
    pthread_mutex_unlock(&t->lock);
    return st;
}

static vtsm_status proxy_exchange(void *ctx, const uint8_t *req, size_t req_len,
                                  struct vtsm_buf *rsp)
{
    return proxy_exchange_on(ctx, NULL, req, req_len, rsp);
}

vtsm_status tsm_proxy_link_exchange(void *ctx, const uint8_t *frame, size_t len,
                                    struct vtsm_buf *rsp)
{
    return proxy_exchange_on(ctx, "link", frame, len, rsp);
}

struct vtsm_spdm_transport tsm_proxy_transport(struct tsm_pdev *p)
{
    struct vtsm_spdm_transport tr = {.exchange = proxy_exchange, .ctx = p};
    return tr;
}

vtsm_status tsm_proxy_deliver(struct tsm *t, struct tsm_client *c, const cbor_item_t *msg)
{
    char dev[VTSM_ABI_DEV_BUF];
    uint64_t id, seq;
    const uint8_t *obj = NULL;
    size_t obj_len = 0;
    char err[160] = "";
    bool has_obj, has_err;

    VTSM_GUARD(vtsm_abi_get_id(msg, &id));
    VTSM_GUARD(vtsm_abi_get_dev(msg, dev));
    VTSM_GUARD(vtsm_abi_get_uint(msg, VTSM_ABI_K_SEQ, &seq));
    VTSM_GUARD(vtsm_abi_opt_bytes(msg, VTSM_ABI_K_OBJECT, &obj, &obj_len, &has_obj));
    VTSM_GUARD(vtsm_abi_opt_tstr(msg, VTSM_ABI_K_ERROR, err, sizeof(err), &has_err));
    VTSM_ENSURE(has_obj != has_err, VTSM_E_ABI_ARG,
                "doe_response carries exactly one of 'object' or 'error'");
    VTSM_ENSURE(!has_obj || obj_len <= VTSM_DOE_MAX_BYTES, VTSM_E_ABI_ARG,
                "doe_response object of %zu bytes exceeds the DOE limit", obj_len);

    struct tsm_pdev *p = tsm_pdev_find(t, dev);
    VTSM_ENSURE(p, VTSM_E_ABI_SEQUENCE, "doe_response for unknown device %s", dev);
    struct tsm_verb *v = &p->verb;
    VTSM_ENSURE(v->client == c && v->id == id && v->waiting && !v->done && v->seq == seq,
                VTSM_E_ABI_SEQUENCE,
                "doe_response (id %llu, seq %llu) matches no pending DOE exchange on %s",
                (unsigned long long)id, (unsigned long long)seq, dev);
    if (has_obj) {
        VTSM_GUARD(vtsm_buf_set(&v->rsp, obj, obj_len));
        v->result = VTSM_OK;
    } else {
        snprintf(v->error, sizeof(v->error), "%s", err);
        v->result = VTSM_E_DOE_HOST;
    }
    v->done = true;
    pthread_cond_broadcast(&t->cond);
    return VTSM_OK;
}
