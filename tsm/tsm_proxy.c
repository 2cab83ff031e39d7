/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The DOE proxy: a firmware-style continuation. The SPDM requester of a device calls
 * exchange(); we hand the DOE object to the host as doe_pending{id, dev, seq, object} and
 * the job yields to the loop until the host answers doe_response with the same id and seq
 * (or disconnects, or the wait times out: tsm_job_tick). The host is untrusted: it may
 * answer late, twice, with the wrong seq, or never; none of that reaches the requester
 * except as a clean error, and a stray doe_response never disturbs the pending exchange.
 */
#include <stdio.h>
#include <string.h>

#include "tsm_coro.h"
#include "tsm_int.h"
#include "vtsm_doe.h"
#include "vtsm_guard.h"
#include "vtsm_trace.h"
#include "vtsm_log.h"

/* One exchange on a channel: NULL = the device's DOE mailbox, "link" = the simulated
 * PCIe link (IDE link check frames). Both travel as DOE_PENDING / DOE_RESPONSE. Runs on
 * the job's coroutine. */
/* --trace: one line per DOE object (not link frames); to_device: a request. */
static void trace_doe(const struct tsm_pdev *p, const uint8_t *obj, size_t len, bool to_device)
{
    char what[160], when[40];
    vtsm_trace_doe(obj, len, what, sizeof(what));
    vtsm_log_timestamp(when, sizeof(when));
    fprintf(stderr, "%s tsmd %s %s %zu bytes %s\n", when, to_device ? "->" : "<-", p->name, len,
            what);
}

/* --trace inside the session: the plaintext message's name, never its bytes. */
void tsm_proxy_trace_secured(void *ctx, bool to_device, uint32_t session_id, const uint8_t *msg,
                             size_t len)
{
    const struct tsm_pdev *p = ctx;
    char what[160], when[40];
    vtsm_trace_spdm(msg, len, what, sizeof(what));
    vtsm_log_timestamp(when, sizeof(when));
    fprintf(stderr, "%s tsmd %s %s %zu bytes in session 0x%08x: %s\n", when,
            to_device ? "->" : "<-", p->name, len, session_id, what);
}

static vtsm_status proxy_exchange_on(struct tsm_pdev *p, const char *channel, const uint8_t *req,
                                     size_t req_len, struct vtsm_buf *rsp)
{
    struct tsm *t = p->tsm;
    struct tsm_job *j = p->job;
    VTSM_ENSURE(j && tsm_coro_current() == j->coro, VTSM_E_INTERNAL,
                "DOE exchange on %s outside the device's job", p->name);
    struct tsm_client *c = j->client;
    VTSM_ENSURE(!t->stopping, VTSM_E_ABORTED, "tsmd is shutting down");
    VTSM_ENSURE(!c->dead, VTSM_E_CLOSED, "host connection gone before DOE exchange on %s", p->name);

    uint64_t seq = ++j->next_seq;
    if (t->cfg.trace && !channel)
        trace_doe(p, req, req_len, true);
    cbor_item_t *m = vtsm_abi_doe_pending_msg(j->id, p->name, seq, req, req_len);
    if (m && channel && vtsm_abi_put_tstr(m, VTSM_ABI_K_CHANNEL, channel) != VTSM_OK)
        cbor_decref(&m);
    VTSM_ENSURE(m, VTSM_E_NOMEM, "doe_pending");
    vtsm_status st = tsm_client_send(t, c, m);
    cbor_decref(&m);
    VTSM_GUARD(st);

    j->seq = seq;
    j->xst = VTSM_OK;
    j->xerror[0] = '\0';
    vtsm_buf_reset(&j->rsp);
    j->deadline_ms = tsm_now_ms() + t->cfg.doe_timeout_ms;
    j->waiting = true;
    tsm_coro_yield();
    j->waiting = false;

    if (!channel && req_len >= VTSM_DOE_HEADER_SIZE && req[2] == VTSM_DOE_TYPE_SECURED_SPDM) {
        /* a secured request the device did not answer (a device that ends the session
         * itself says so, e.g. ERROR(DecryptError) in the clear) */
        p->secured_unanswered = j->xst != VTSM_OK;
    }
    switch (j->xst) {
    case VTSM_OK:
        if (t->cfg.trace && !channel)
            trace_doe(p, j->rsp.data, j->rsp.len, false);
        st = vtsm_buf_set(rsp, j->rsp.data, j->rsp.len);
        break;
    case VTSM_E_DOE_HOST:
        st = vtsm_fail(VTSM_E_DOE_HOST, "host could not perform DOE exchange %llu on %s: %s",
                       (unsigned long long)seq, p->name, j->xerror);
        break;
    default:
        st = vtsm_fail(j->xst, "%s", j->xerror);
        break;
    }
    vtsm_buf_reset(&j->rsp);
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

vtsm_status tsm_proxy_deliver(struct tsm *t, struct tsm_client *c, uint64_t id,
                              const struct vtsm_abi_req *req)
{
    /* decoded: dev, seq, exactly one of object (within the DOE limit) or error */
    const char *dev = req->dev;
    uint64_t seq = req->seq;
    bool has_obj = vtsm_abi_req_has(req, VTSM_ABI_F_OBJECT);

    struct tsm_pdev *p = tsm_pdev_find(&t->devs, dev);
    VTSM_ENSURE(p, VTSM_E_ABI_SEQUENCE, "doe_response for unknown device %s", dev);
    struct tsm_job *j = p->job;
    VTSM_ENSURE(j && j->client == c && j->id == id && j->waiting && j->seq == seq,
                VTSM_E_ABI_SEQUENCE,
                "doe_response (id %llu, seq %llu) matches no pending DOE exchange on %s",
                (unsigned long long)id, (unsigned long long)seq, dev);
    if (has_obj) {
        VTSM_GUARD(vtsm_buf_set(&j->rsp, req->object.p, req->object.len));
        j->xst = VTSM_OK;
    } else {
        snprintf(j->xerror, sizeof(j->xerror), "%s", req->error);
        j->xst = VTSM_E_DOE_HOST;
    }
    j->waiting = false;
    tsm_job_resume(j);
    return VTSM_OK;
}
