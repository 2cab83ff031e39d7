/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Device jobs: every verb that needs a device's DOE mailbox (connect, reclaim, IDE refresh
 * and link check, TDI bind / unbind, guest accept and info with a nonce) runs as a job on
 * a worker thread. Claiming the device makes the job the device's only DOE requester
 * (rule PDEV.6); the claim also says which TDIs the job owns, so readers skip exactly
 * those while it runs.
 */
#include <stdlib.h>
#include <string.h>

#include "tsm_int.h"
#include "vtsm_guard.h"
#include "vtsm_log.h"

vtsm_status tsm_job_claim(struct tsm_pdev *p, const char *verb, const struct tsm_job_claim *what)
{
    VTSM_ENSURE_RULE(
        !p->claim.busy, VTSM_E_BUSY, VTSM_RULE_PDEV_6,
        "%s refused: %s is busy with %s (rule PDEV.6: one DOE requester per device at a "
        "time)",
        verb, p->name, p->claim.verb ? p->claim.verb : "another verb");
    p->claim = what ? *what : (struct tsm_job_claim){0};
    p->claim.busy = true;
    p->claim.verb = verb;
    return VTSM_OK;
}

static void claim_release(struct tsm_pdev *p)
{
    memset(&p->claim, 0, sizeof(p->claim));
}

bool tsm_pdev_tdi_claimed(const struct tsm_pdev *p, const struct tsm_tdi *t)
{
    return p->claim.busy && (p->claim.all_tdis || (p->claim.has_tdi && p->claim.tdi == t->index));
}

struct tsm_tdisp_chan tsm_job_tdisp_chan(struct tsm_pdev *p)
{
    struct tsm_tdisp_chan c = {.spdm = p->spdm, .slot = p->opts.slot, .dev = p->name};
    return c;
}

cbor_item_t *tsm_job_error(struct tsm_job *j, vtsm_status st)
{
    return vtsm_abi_error_msg(j->id, st, NULL); /* the error record's detail and rule */
}

static void *job_main(void *arg)
{
    struct tsm_job *j = arg;
    struct tsm *t = j->t;
    struct tsm_pdev *p = j->p;

    vtsm_err_clear();
    cbor_item_t *reply = j->run(j);

    pthread_mutex_lock(&t->lock);
    struct tsm_client *c = p->verb.client;
    p->verb.client = NULL;
    claim_release(p);
    pthread_mutex_unlock(&t->lock);

    tsm_client_reply(t, c, reply);

    pthread_mutex_lock(&t->lock);
    tsm_client_put(t, c);
    t->workers--;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);
    free(j);
    return NULL;
}

vtsm_status tsm_job_start(struct tsm *t, struct tsm_client *c, struct tsm_job *j)
{
    struct tsm_pdev *p = j->p;
    if (t->stopping) {
        claim_release(p);
        free(j);
        return vtsm_fail(VTSM_E_ABORTED, "tsmd is shutting down");
    }
    j->t = t;
    tsm_client_get(c);
    p->verb.client = c;
    p->verb.id = j->id;
    p->verb.next_seq = 0;
    p->verb.waiting = p->verb.done = false;
    t->workers++;

    pthread_t th;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&th, &a, job_main, j);
    pthread_attr_destroy(&a);
    if (rc != 0) {
        p->verb.client = NULL;
        t->workers--;
        tsm_client_put(t, c);
        claim_release(p);
        free(j);
        return vtsm_fail(VTSM_E_NOMEM, "cannot start a worker thread");
    }
    return VTSM_OK;
}
