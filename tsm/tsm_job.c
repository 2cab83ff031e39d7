/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Device jobs: every verb that needs a device's DOE mailbox (connect, reclaim, IDE refresh
 * and link check, SPDM key update and heartbeat, TDI bind / unbind, guest accept and info
 * with a nonce) runs as a job on its own coroutine. A job is the device's only DOE
 * requester while it runs (rule PDEV.6); its claim also says which TDIs it owns, so
 * readers skip exactly those. The job yields at each DOE exchange (tsm_proxy.c) and the
 * loop resumes it with the host's answer, a timeout or a close.
 *
 * This module is the only one that creates, resumes or frees jobs and the only writer
 * of pdev->job and pdev->claim.
 */
#include <stdlib.h>
#include <string.h>

#include "tsm_coro.h"
#include "tsm_int.h"
#include "vtsm_doe.h"
#include "vtsm_guard.h"
#include "vtsm_log.h"

struct tsm_tdisp_chan tsm_job_tdisp_chan(struct tsm_pdev *p)
{
    struct tsm_tdisp_chan c = {.spdm = p->spdm, .slot = p->opts.slot, .dev = p->name};
    uint16_t seg, rid;
    /* INTERFACE_IDs: the requester ID, and the DSM's segment (valid) when it is not 0;
     * the segment of a name is 0..0xFF here (TDISP's Requester Segment is 8 bits) */
    if (vtsm_abi_dev_rid(p->name, &seg, &rid) == VTSM_OK) {
        c.dsm_fid = rid;
        if (seg)
            c.seg_bits = (uint32_t)(seg & 0xFF) << 16 | VTSM_TDISP_FID_SEG_VALID;
        c.seg_wide = seg > 0xFF;
    }
    return c;
}

cbor_item_t *tsm_job_error(struct tsm_job *j, vtsm_status st)
{
    return vtsm_abi_error_msg(j->id, st, NULL); /* the error record's detail and rule */
}

/* Make j the one DOE requester of p (rule PDEV.6), owning what it claims. */
static vtsm_status job_claim(struct tsm_job *j, struct tsm_pdev *p, const char *verb,
                             const struct tsm_job_claim *what)
{
    VTSM_ENSURE_RULE(!p->job, VTSM_E_BUSY, VTSM_RULE_PDEV_6,
                     "%s refused: %s is busy with %s (rule PDEV.6: one DOE requester per device "
                     "at a time)",
                     verb, p->name, p->job ? p->job->verb : "");
    j->p = p;
    j->verb = verb;
    if (what)
        j->claim = *what;
    j->tdi_before = -1;
    if (j->claim.has_tdi) {
        const struct tsm_tdi *tdi = tsm_pdev_tdi_find(p, j->claim.tdi);
        j->tdi_before = tdi ? (int)tdi->state : (int)TSM_TDI_CONFIG_UNLOCKED;
    }
    p->job = j;
    p->claim = &j->claim;
    /* What the job owns leaves the kept counts until it ends; a bind reserves its TVM. */
    tsm_pdev_tally_claim(p, -1);
    if (j->claim.tvm)
        tsm_tvm_reserve(&j->t->tvms, j->claim.tvm, 1);
    return VTSM_OK;
}

vtsm_status tsm_job_new(struct tsm *t, struct tsm_pdev *p, const char *verb, uint64_t id,
                        tsm_job_fn run, const struct tsm_job_claim *what, struct tsm_job **out)
{
    VTSM_ENSURE(!t->stopping, VTSM_E_ABORTED, "tsmd is shutting down");
    if (p)
        VTSM_ENSURE_RULE(!p->job, VTSM_E_BUSY, VTSM_RULE_PDEV_6,
                         "%s refused: %s is busy with %s (rule PDEV.6: one DOE requester per "
                         "device at a time)",
                         verb, p->name, p->job ? p->job->verb : "");
    struct tsm_job *j = calloc(1, sizeof(*j));
    VTSM_ENSURE(j, VTSM_E_NOMEM, "%s: out of memory for a job", verb);
    j->t = t;
    j->id = id;
    j->verb = verb;
    j->run = run;
    if (p)
        (void)job_claim(j, p, verb, what); /* p is idle: checked above */
    *out = j;
    return VTSM_OK;
}

vtsm_status tsm_job_take_device(struct tsm_job *j, struct tsm_pdev *p, const char *verb,
                                const struct tsm_job_claim *what)
{
    VTSM_ENSURE(j->p == NULL, VTSM_E_INVAL, "%s: the job already has a device", verb);
    VTSM_ENSURE(!j->t->stopping, VTSM_E_ABORTED, "tsmd is shutting down");
    VTSM_GUARD(job_claim(j, p, verb, what));
    j->client->devless_jobs--;
    return VTSM_OK;
}

/* Release the claim and free j (the client reference, if taken, is the caller's). */
static void job_release(struct tsm_job *j)
{
    struct tsm_pdev *p = j->p;
    if (p) {
        if (j->claim.tvm)
            tsm_tvm_reserve(&j->t->tvms, j->claim.tvm, -1);
        tsm_pdev_tally_claim(p, +1);
        p->job = NULL;
        p->claim = NULL;
    }
    vtsm_buf_wipe(&j->gbody);
    vtsm_buf_wipe(&j->gsig);
    vtsm_buf_wipe(&j->rsp);
    tsm_coro_free(j->coro);
    free(j);
}

void tsm_job_cancel(struct tsm_job *j)
{
    job_release(j);
}

/*
 * A secured request went unanswered and the session is
 * gone: does the device answer a plaintext GET_VERSION? Then it lives, but no longer
 * knows the session: another requester reset its SPDM connection (SPDM: GET_VERSION
 * resets the connection and ends its sessions). The probe itself resets nothing the TSM
 * still has. The host carries it like any exchange; a host that lies only changes which
 * rule the loss is reported under.
 */
static bool reset_behind_tsm(struct tsm_job *j)
{
    struct tsm_pdev *p = j->p;
    if (!p->secured_unanswered || j->client->dead || j->t->stopping)
        return false;
    static const uint8_t get_version[] = {0x10, 0x84, 0x00, 0x00};
    struct vtsm_buf req = {0}, rsp = {0};
    struct vtsm_doe_obj obj;
    bool answered = false;
    struct vtsm_spdm_transport tr = tsm_proxy_transport(p);
    if (vtsm_doe_build_buf(VTSM_DOE_VENDOR_PCISIG, VTSM_DOE_TYPE_SPDM, get_version,
                           sizeof(get_version), &req) == VTSM_OK &&
        tr.exchange(tr.ctx, req.data, req.len, &rsp) == VTSM_OK &&
        vtsm_doe_parse(rsp.data, rsp.len, &obj) == VTSM_OK &&
        obj.vendor_id == VTSM_DOE_VENDOR_PCISIG && obj.type == VTSM_DOE_TYPE_SPDM &&
        obj.payload_len >= 4 && obj.payload[1] == 0x04 /* VERSION */)
        answered = true;
    vtsm_buf_free(&req);
    vtsm_buf_free(&rsp);
    vtsm_err_clear(); /* the probe's own failure is not the verb's */
    return answered;
}

/* The coroutine: the verb, then the checks that keep STATUS truthful whatever it did. */
static void job_main(void *arg)
{
    struct tsm_job *j = arg;
    if (j->p)
        j->p->secured_unanswered = false;
    j->reply = j->run(j);
    tsm_offload_join(j, true); /* background work the verb left behind */
    enum vtsm_rule why = VTSM_RULE_PDEV_12;
    if (j->p && tsm_pdev_session_lost(j->p) && reset_behind_tsm(j))
        why = VTSM_RULE_PDEV_17;
    bool lost = j->p && tsm_pdev_check_session(j->p, j->verb, why);
    if (lost) {
        char detail[200];
        snprintf(detail, sizeof(detail),
                 why == VTSM_RULE_PDEV_17
                     ? "%s no longer knows its SPDM session (reset behind the TSM) in %s; the "
                       "device is disconnected"
                     : "%s lost its SPDM session in %s; the device is disconnected",
                 j->p->name, j->verb);
        tsm_event_emit(j->t, TSM_EVENT_SESSION_LOST, j->p->name, -1, why, detail);
        tsm_event_device_forget(j->t, j->p);
    }
    if (lost && j->reply) {
        /* the verb's ERROR says what it cost: the device is no longer connected */
        uint64_t op = 0;
        vtsm_abi_put_tstr(j->reply, VTSM_ABI_K_STATE, tsm_pdev_state_name(j->p->state));
        if (vtsm_abi_get_op(j->reply, &op) == VTSM_OK && op == VTSM_ABI_OP_ERROR)
            vtsm_abi_put_tstr(j->reply, VTSM_ABI_K_RULE, vtsm_rule_id(why));
    }
}

/* The job's coroutine returned: unlink, answer the client if it is still there, free. */
static void job_finish(struct tsm_job *j)
{
    struct tsm *t = j->t;
    for (struct tsm_job **pp = &t->jobs; *pp; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            t->njobs--;
            break;
        }
    struct tsm_client *c = j->client;
    if (!j->p)
        c->devless_jobs--;
    cbor_item_t *reply = j->reply;
    bool answer = !j->handed_off; /* else the device job it started answers */
    if (j->p && j->claim.has_tdi && j->tdi_before != (int)TSM_TDI_ERROR) {
        /* the verb moved its TDI to ERROR: tell the subscribers, with the rule */
        const struct tsm_tdi *tdi = tsm_pdev_tdi_find(j->p, j->claim.tdi);
        if (tdi && tdi->state == TSM_TDI_ERROR) {
            char rule[32] = "", detail[256] = "";
            bool has = false;
            if (reply) {
                vtsm_abi_opt_tstr(reply, VTSM_ABI_K_RULE, rule, sizeof(rule), &has);
                vtsm_abi_opt_tstr(reply, VTSM_ABI_K_DETAIL, detail, sizeof(detail), &has);
            }
            /* the rule the TDI was moved under, else the one the verb's ERROR names */
            enum vtsm_rule why =
                tdi->error_rule != VTSM_RULE_NONE ? tdi->error_rule : vtsm_rule_parse(rule);
            tsm_event_emit(t, TSM_EVENT_TDI_ERROR, j->p->name, (long)tdi->index, why,
                           detail[0] ? detail : NULL);
            if (why == VTSM_RULE_TDI_21) /* its report or measurements changed since LOCK */
                tsm_event_emit(t, TSM_EVENT_EVIDENCE_CHANGED, j->p->name, (long)tdi->index, why,
                               detail[0] ? detail : NULL);
        }
    }
    if (j->p)
        tsm_event_check_seq(t, j->p);
    j->reply = NULL;
    job_release(j);
    if (!c->dead && answer)
        tsm_client_reply(t, c, reply);
    else if (reply)
        cbor_decref(&reply);
    c->jobs--;
    tsm_client_put(t, c);
}

static struct tsm_job *current_job; /* the job whose coroutine runs now */

struct tsm_job *tsm_job_current(void)
{
    return current_job;
}

unsigned tsm_job_count(const struct tsm *t)
{
    return t->njobs;
}

void tsm_job_resume(struct tsm_job *j)
{
    current_job = j;
    bool done = tsm_coro_resume(j->coro);
    current_job = NULL;
    if (done)
        job_finish(j);
}

/* Link j into the running jobs for client c; with_coro gives it its coroutine now. */
static vtsm_status job_link(struct tsm_client *c, struct tsm_job *j, bool with_coro)
{
    vtsm_status st = with_coro ? tsm_coro_new(job_main, j, &j->coro) : VTSM_OK;
    if (st) {
        job_release(j);
        return st;
    }
    tsm_client_get(c);
    c->jobs++;
    if (!j->p)
        c->devless_jobs++;
    j->client = c;
    j->next = j->t->jobs;
    j->t->jobs = j;
    j->t->njobs++;
    return VTSM_OK;
}

vtsm_status tsm_job_start(struct tsm_client *c, struct tsm_job *j)
{
    VTSM_GUARD(job_link(c, j, true));
    tsm_job_resume(j);
    return VTSM_OK;
}

vtsm_status tsm_job_start_later(struct tsm_client *c, struct tsm_job *j)
{
    struct tsm *t = j->t;
    VTSM_ENSURE(!j->p, VTSM_E_INVAL, "%s: only a device-less job starts later", j->verb);
    VTSM_GUARD(job_link(c, j, false));
    j->ready_next = NULL;
    *(t->ready_tail ? &t->ready_tail->ready_next : &t->ready) = j;
    t->ready_tail = j;
    return VTSM_OK;
}

/* Should queued job j run on a coroutine, so its crypto can go to the worker and the loop
 * runs another job meanwhile? Yes if the worker is idle and there is another job, or if an
 * earlier request of the same TVM is on the worker (j must queue behind it, in order).
 * Otherwise it runs straight on the loop: a coroutine would cost more than it gains. */
static bool wants_coro(struct tsm_job *j)
{
    struct tsm *t = j->t;
    for (const struct tsm_job *o = t->jobs; o && !j->keep_order; o = o->next)
        j->keep_order = o != j && !o->p && o->on_worker && o->gtvm == j->gtvm;
    return j->keep_order || (tsm_offload_fd() >= 0 && !tsm_offload_busy() && t->njobs >= 2);
}

void tsm_job_run_ready(struct tsm *t)
{
    while (t->ready) {
        struct tsm_job *j = t->ready;
        t->ready = j->ready_next;
        if (!t->ready)
            t->ready_tail = NULL;
        if (!wants_coro(j)) {
            j->reply = j->run(j); /* on the loop's stack: its crypto runs in place */
            job_finish(j);
            continue;
        }
        vtsm_status st = tsm_coro_new(job_main, j, &j->coro);
        if (st) {
            j->reply = tsm_job_error(j, st);
            job_finish(j);
            continue;
        }
        tsm_job_resume(j);
    }
}

/* The first waiting job whose wait can end now, with how it ends. */
static struct tsm_job *ended_wait(struct tsm *t, int64_t now_ms, int64_t *nearest)
{
    for (struct tsm_job *j = t->jobs; j; j = j->next) {
        if (!j->waiting)
            continue;
        if (t->stopping) {
            j->xst = vtsm_fail(VTSM_E_ABORTED, "tsmd is shutting down");
        } else if (j->client->dead) {
            j->xst = vtsm_fail(VTSM_E_CLOSED,
                               "host disconnected while DOE exchange %llu on %s was pending",
                               (unsigned long long)j->seq, j->p->name);
        } else if (now_ms >= j->deadline_ms) {
            j->xst =
                vtsm_fail(VTSM_E_TIMEOUT, "no doe_response for exchange %llu on %s within %d ms",
                          (unsigned long long)j->seq, j->p->name, t->cfg.doe_timeout_ms);
        } else {
            if (j->deadline_ms < *nearest)
                *nearest = j->deadline_ms;
            continue;
        }
        snprintf(j->xerror, sizeof(j->xerror), "%s", vtsm_err_detail());
        return j;
    }
    return NULL;
}

int64_t tsm_job_tick(struct tsm *t, int64_t now_ms)
{
    for (;;) {
        int64_t nearest = INT64_MAX;
        struct tsm_job *j = ended_wait(t, now_ms, &nearest);
        if (!j)
            return nearest;
        j->waiting = false;
        tsm_job_resume(j); /* the list may change: scan again */
    }
}
