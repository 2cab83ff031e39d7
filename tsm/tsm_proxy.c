/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The DOE proxy: a firmware-style continuation. The SPDM requester of a device calls
 * exchange(); we hand the DOE object to the host as doe_pending{id, dev, seq, object} and
 * the job yields to the loop until the host answers doe_response with the same id and seq
 * (or disconnects, or the wait times out: tsm_job_tick). The host is untrusted: it may
 * answer late, twice, with the wrong seq, or never; none of that reaches the requester
 * except as a clean error, and a stray doe_response never disturbs the pending exchange.
 */
#include <string.h>

#include "tsm_coro.h"
#include "tsm_int.h"
#include "vtsm_doe.h"
#include "vtsm_guard.h"

/* One exchange on a channel: NULL = the device's DOE mailbox, "link" = the simulated
 * PCIe link (IDE link check frames). Both travel as DOE_PENDING / DOE_RESPONSE. Runs on
 * the job's coroutine. */
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

    switch (j->xst) {
    case VTSM_OK:
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
    struct tsm_job *j = p->job;
    VTSM_ENSURE(j && j->client == c && j->id == id && j->waiting && j->seq == seq,
                VTSM_E_ABI_SEQUENCE,
                "doe_response (id %llu, seq %llu) matches no pending DOE exchange on %s",
                (unsigned long long)id, (unsigned long long)seq, dev);
    if (has_obj) {
        VTSM_GUARD(vtsm_buf_set(&j->rsp, obj, obj_len));
        j->xst = VTSM_OK;
    } else {
        snprintf(j->xerror, sizeof(j->xerror), "%s", err);
        j->xst = VTSM_E_DOE_HOST;
    }
    j->waiting = false;
    tsm_job_resume(j);
    return VTSM_OK;
}
