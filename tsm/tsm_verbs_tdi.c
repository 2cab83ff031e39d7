/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Host verbs for IDE (ide_refresh, ide_link_check), TVMs (tvm_create, tvm_destroy) and
 * TDIs (tdi_bind, tdi_unbind), and the guest requests (list, info, accept, reject).
 *
 * Every request is validated before any state is touched; a verb that needs the device
 * runs as a job that claims the device (PDEV.6) and the one TDI it acts on, and commits
 * its state change only through the TDI table (tsm_tdi.c).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "tsm_int.h"
#include "tsm_reply.h"
#include "tsm_verbs_mmio.h"
#include "vtsm_guard.h"
#include "vtsm_log.h"

/* ---------------------------------------------------------------- helpers */

/* The connected, idle device named in msg. verb names the request. */
static vtsm_status connected_pdev(struct tsm *t, const char *dev, const char *verb,
                                  struct tsm_pdev **out)
{
    struct tsm_pdev *p = tsm_pdev_find(&t->devs, dev);
    VTSM_ENSURE_RULE(p, VTSM_E_NOT_FOUND, VTSM_RULE_PDEV_13, "%s: no device named %s", verb, dev);
    VTSM_ENSURE(!t->stopping, VTSM_E_ABORTED, "tsmd is shutting down");
    VTSM_ENSURE_RULE(!p->job, VTSM_E_BUSY, VTSM_RULE_PDEV_6,
                     "%s refused: %s is busy with %s (rule PDEV.6: one DOE requester per device "
                     "at a time)",
                     verb, p->name, p->job ? p->job->verb : "");
    VTSM_ENSURE_RULE(p->state == TSM_PDEV_CONNECTED, VTSM_E_STATE, VTSM_RULE_PDEV_10,
                     "%s refused: %s is %s (rule PDEV.10: this verb needs a connected device)",
                     verb, p->name, tsm_pdev_state_name(p->state));
    *out = p;
    return VTSM_OK;
}

/* Claim p for a job of verb and start it for client c. tune (may be NULL) fills in the
 * job's arguments from args before it starts. */
static vtsm_status run_job(struct tsm *t, struct tsm_client *c, struct tsm_pdev *p,
                           const char *verb, uint64_t id, tsm_job_fn run,
                           const struct tsm_job_claim *what, const struct tsm_job *args)
{
    struct tsm_job *j;
    VTSM_GUARD(tsm_job_new(t, p, verb, id, run, what, &j));
    if (args) {
        j->tdi = args->tdi;
        j->tvm = args->tvm;
        j->lock_flags = args->lock_flags;
        j->force = args->force;
        j->greq = args->greq;
    }
    return tsm_job_start(c, j);
}

/* ---------------------------------------------------------------- IDE */

static cbor_item_t *ide_refresh_run(struct tsm_job *j)
{
    struct tsm_pdev *p = j->p;
    struct tsm_ide_peer peer = tsm_ide_peer_spdm(p->spdm);
    struct tsm_ide_status ide;
    vtsm_status st = tsm_ide_refresh(p->ide, &peer);
    if (st == VTSM_OK) /* fresh keys: the EVENT.2 policy starts over */
        tsm_event_device_reset(j->t, p, false, true);
    if (st == VTSM_OK)
        st = tsm_ide_status(p->ide, &ide);
    if (st)
        return tsm_job_error(j, st);
    cbor_item_t *res = vtsm_abi_result_msg(j->id);
    if (res && (vtsm_abi_put_tstr(res, VTSM_ABI_K_DEV, p->name) || tsm_reply_put_ide(res, &ide)))
        cbor_decref(&res);
    return res;
}

static cbor_item_t *ide_link_check_run(struct tsm_job *j)
{
    struct tsm_pdev *p = j->p;
    struct tsm_link_transport link = {.exchange = tsm_proxy_link_exchange, .ctx = p};
    struct tsm_ide_check check;
    vtsm_status st = tsm_ide_link_check(p->ide, &link, &check);
    if (st)
        return tsm_job_error(j, st);
    cbor_item_t *res = vtsm_abi_result_msg(j->id), *arr;
    if (!res || vtsm_abi_put_tstr(res, VTSM_ABI_K_DEV, p->name))
        goto fail;
    arr = vtsm_abi_array_new(); /* put_item takes it over, also on failure */
    if (vtsm_abi_put_item(res, VTSM_ABI_K_STREAMS, arr) || tsm_reply_push_link_check(arr, &check))
        goto fail;
    return res;
fail:
    if (res)
        cbor_decref(&res);
    return NULL;
}

/* A verb on a connected device that runs as a job: validate, claim, start. need_ide
 * refuses a device connected without IDE streams (rule IDE.3). */
static void device_verb(struct tsm *t, struct tsm_client *c, uint64_t id,
                        const struct vtsm_abi_req *req, const char *verb, tsm_job_fn run,
                        bool need_ide, bool all_keys)
{
    const char *dev = req->dev;
    struct tsm_pdev *p = NULL;
    vtsm_status st = connected_pdev(t, dev, verb, &p);
    if (st == VTSM_OK && need_ide && !p->ide)
        st = vtsm_refuse(VTSM_E_STATE, VTSM_RULE_IDE_3,
                         "%s refused: %s was connected without IDE streams (rule IDE.3: connect "
                         "with ide_streams first)",
                         verb, dev);
    if (st == VTSM_OK) {
        struct tsm_job args = {.force = all_keys};
        st = run_job(t, c, p, verb, id, run, NULL, &args);
    }
    if (st)
        tsm_client_error(t, c, id, st, vtsm_err_detail());
}

void tsm_verb_ide_refresh(struct tsm *t, struct tsm_client *c, uint64_t id,
                          const struct vtsm_abi_req *req)
{
    device_verb(t, c, id, req, "ide_refresh", ide_refresh_run, true, false);
}

void tsm_verb_ide_link_check(struct tsm *t, struct tsm_client *c, uint64_t id,
                             const struct vtsm_abi_req *req)
{
    device_verb(t, c, id, req, "ide_link_check", ide_link_check_run, true, false);
}

/* ---------------------------------------------------------------- SPDM session upkeep */

/* RESULT {dev, key_updates, heartbeat_period} after a KEY_UPDATE or HEARTBEAT. */
static cbor_item_t *spdm_result(struct tsm_job *j)
{
    const struct vtsm_spdm_info *info = vtsm_spdm_req_info(j->p->spdm);
    cbor_item_t *res = vtsm_abi_result_msg(j->id);
    if (res && (vtsm_abi_put_tstr(res, VTSM_ABI_K_DEV, j->p->name) ||
                vtsm_abi_put_uint(res, VTSM_ABI_K_KEY_UPDATES, info->key_updates) ||
                vtsm_abi_put_uint(res, VTSM_ABI_K_HEARTBEAT_PERIOD, info->heartbeat_period)))
        cbor_decref(&res);
    return res;
}

static cbor_item_t *key_update_run(struct tsm_job *j)
{
    vtsm_status st = vtsm_spdm_req_key_update(j->p->spdm, j->force);
    if (st == VTSM_OK) /* fresh keys: the EVENT.1 policy starts over */
        tsm_event_device_reset(j->t, j->p, true, false);
    return st ? tsm_job_error(j, st) : spdm_result(j);
}

static cbor_item_t *heartbeat_run(struct tsm_job *j)
{
    vtsm_status st = vtsm_spdm_req_heartbeat(j->p->spdm);
    return st ? tsm_job_error(j, st) : spdm_result(j);
}

void tsm_verb_spdm_key_update(struct tsm *t, struct tsm_client *c, uint64_t id,
                              const struct vtsm_abi_req *req)
{
    device_verb(t, c, id, req, "spdm_key_update", key_update_run, false, req->all);
}

void tsm_verb_spdm_heartbeat(struct tsm *t, struct tsm_client *c, uint64_t id,
                             const struct vtsm_abi_req *req)
{
    device_verb(t, c, id, req, "spdm_heartbeat", heartbeat_run, false, false);
}

/* ---------------------------------------------------------------- TVMs */

_Static_assert(TSM_TVM_NAME_MAX == VTSM_ABI_TVM_NAME_MAX, "tvm_create name length");

void tsm_verb_tvm_create(struct tsm *t, struct tsm_client *c, uint64_t id,
                         const struct vtsm_abi_req *req)
{
    const struct tsm_tvm *v = NULL;
    /* guest_key's length and form (rule TVM.1) are the registry's to judge */
    vtsm_status st =
        tsm_tvm_create(&t->tvms, vtsm_abi_req_has(req, VTSM_ABI_F_NAME) ? req->name : NULL,
                       req->guest_key.p, req->guest_key.len, &v);
    cbor_item_t *res = NULL;
    bool debug = vtsm_abi_req_has(req, VTSM_ABI_F_DEBUG) && req->debug;
    if (st == VTSM_OK && debug)
        tsm_tvm_set_debug(&t->tvms, v->id, true);
    if (st == VTSM_OK && (res = vtsm_abi_result_msg(id)) &&
        (vtsm_abi_put_bool(res, VTSM_ABI_K_DEBUG, debug) ||
         vtsm_abi_put_uint(res, VTSM_ABI_K_TVM, v->id) ||
         vtsm_abi_put_tstr(res, VTSM_ABI_K_NAME, v->name) ||
         vtsm_abi_put_bytes(res, VTSM_ABI_K_IDENTITY, v->identity, sizeof(v->identity))))
        cbor_decref(&res);
    if (st)
        tsm_client_error(t, c, id, st, vtsm_err_detail());
    else
        tsm_client_reply(t, c, res);
}

void tsm_verb_tvm_destroy(struct tsm *t, struct tsm_client *c, uint64_t id,
                          const struct vtsm_abi_req *req)
{
    uint32_t tvm = (uint32_t)req->tvm; /* decoded: 0..UINT32_MAX */
    vtsm_status st;
    const struct tsm_tvm *v = tsm_tvm_find(&t->tvms, tvm);
    st = tsm_tvm_destroy(&t->tvms, tvm, v ? v->bound_tdis : 0);
    if (st) {
        tsm_client_error(t, c, id, st, vtsm_err_detail());
        return;
    }
    cbor_item_t *res = vtsm_abi_result_msg(id);
    if (res && vtsm_abi_put_uint(res, VTSM_ABI_K_TVM, tvm))
        cbor_decref(&res);
    tsm_client_reply(t, c, res);
}

/* ---------------------------------------------------------------- TDIs */

static cbor_item_t *tdi_result(struct tsm_job *j, const struct tsm_tdi *tdi)
{
    cbor_item_t *sum = NULL, *res = vtsm_abi_result_msg(j->id);
    if (!res || tsm_reply_tdi_summary(tdi, true, &sum) != VTSM_OK) {
        if (res)
            cbor_decref(&res);
        return NULL;
    }
    /* the summary's fields, flattened into the result */
    size_t n = cbor_map_size(sum);
    struct cbor_pair *pairs = cbor_map_handle(sum);
    vtsm_status st = vtsm_abi_put_tstr(res, VTSM_ABI_K_DEV, j->p->name);
    for (size_t i = 0; i < n && st == VTSM_OK; i++) {
        char key[64];
        size_t kl = cbor_string_length(pairs[i].key);
        if (kl >= sizeof(key))
            continue;
        memcpy(key, cbor_string_handle(pairs[i].key), kl);
        key[kl] = '\0';
        st = vtsm_abi_put_item(res, key, cbor_incref(pairs[i].value));
    }
    cbor_decref(&sum);
    if (st)
        cbor_decref(&res);
    return res;
}

static struct tsm_tdi *job_tdi(struct tsm_job *j)
{
    return tsm_pdev_tdi_find(j->p, j->tdi); /* exists: the job claims it */
}

static cbor_item_t *tdi_bind_run(struct tsm_job *j)
{
    struct tsm_tdi *tdi = job_tdi(j);
    struct tsm_tdisp_chan ch = tsm_job_tdisp_chan(j->p);
    uint8_t stream = j->p->ide ? tsm_ide_first_stream(j->p->ide) : 0;
    vtsm_status st = j->force /* assign */ ? tsm_tdi_assign(&ch, tdi, j->tvm, j->lock_flags)
                                           : tsm_tdi_bind(&ch, tdi, j->tvm, j->lock_flags, stream);
    if (st) {
        /* a bind that did not happen leaves no record behind */
        tsm_pdev_tdi_forget(j->p, j->tdi);
        return tsm_job_error(j, st);
    }
    cbor_item_t *res = tdi_result(j, tdi);
    /* the binding: report digest and the MMIO ranges the device reported */
    if (res && !j->force && tsm_reply_tdi_binding(res, tdi) != VTSM_OK)
        cbor_decref(&res);
    return res;
}

static cbor_item_t *tdi_unbind_run(struct tsm_job *j)
{
    struct tsm_tdi *tdi = job_tdi(j);
    struct tsm_tdisp_chan ch = tsm_job_tdisp_chan(j->p);
    vtsm_status stop_st = VTSM_OK;
    char stop_detail[256] = "";
    vtsm_status st = tsm_tdi_unbind(&ch, tdi, &stop_st, stop_detail, sizeof(stop_detail));
    if (st)
        return tsm_job_error(j, st);
    cbor_item_t *res = tdi_result(j, tdi);
    cbor_item_t *stop = vtsm_abi_map_new();
    if (res && stop) {
        vtsm_abi_put_bool(stop, VTSM_ABI_K_ACKNOWLEDGED, stop_st == VTSM_OK);
        vtsm_abi_put_tstr(stop, VTSM_ABI_K_DETAIL,
                          stop_st == VTSM_OK ? "STOP_INTERFACE acknowledged" : stop_detail);
        vtsm_abi_put_item(res, VTSM_ABI_K_STOP_INTERFACE, stop);
    } else if (stop) {
        cbor_decref(&stop);
    }
    return res;
}

_Static_assert(TSM_TDI_MAX_INDEX == 0xFFFFu, "tdi range");

static void tdi_verb(struct tsm *t, struct tsm_client *c, uint64_t id,
                     const struct vtsm_abi_req *req, bool bind)
{
    const char *verb = bind ? "tdi_bind" : "tdi_unbind";
    const char *dev = req->dev;
    /* decoded: tdi 0..0xFFFF, tvm 0..UINT32_MAX, lock_flags 0..0xFFFF (0 if absent) */
    uint32_t tdi_index = (uint32_t)req->tdi, tvm = (uint32_t)req->tvm;
    uint16_t flags = (uint16_t)req->lock_flags;
    bool assign = bind && vtsm_abi_req_has(req, VTSM_ABI_F_ASSIGN) && req->assign;
    const enum tsm_tdi_req breq = assign ? TSM_TDI_REQ_ASSIGN : TSM_TDI_REQ_BIND;
    struct tsm_pdev *p = NULL;
    struct tsm_tdi *tdi = NULL;
    enum tsm_tdi_state next;
    vtsm_status st = connected_pdev(t, dev, verb, &p);
    if (st == VTSM_OK && !p->tdisp)
        st = vtsm_refuse(VTSM_E_STATE, VTSM_RULE_TDI_9,
                         "%s refused: %s was connected ide_only, without TDISP (rule TDI.9)", verb,
                         dev);
    if (st == VTSM_OK && bind && p->opts.n_tdis && !tsm_pdev_tdi_find(p, tdi_index))
        st = vtsm_refuse(VTSM_E_NOT_FOUND, VTSM_RULE_TDI_31,
                         "tdi_bind: %s was connected with its TDIs declared, and 0x%04x is not "
                         "one (rule TDI.31)",
                         dev, tdi_index);
    if (st == VTSM_OK && bind && !tsm_tvm_find(&t->tvms, tvm))
        st = vtsm_refuse(VTSM_E_NOT_FOUND, VTSM_RULE_TVM_4,
                         "tdi_bind: no TVM %u (tvm_create first)", tvm);
    if (st == VTSM_OK && !(tdi = tsm_pdev_tdi_find(p, tdi_index))) {
        /* Never bound: judge the request against a fresh TDI, so a refusal names the same
         * rule without leaving a record behind; only a bind makes one. */
        struct tsm_tdi fresh;
        if ((st = tsm_tdi_init(&fresh, p->name, tdi_index)) == VTSM_OK)
            st =
                tsm_tdi_check(&fresh, bind ? breq : TSM_TDI_REQ_UNBIND, TSM_TDI_WHO_HOST, 0, &next);
        tsm_tdi_reset(&fresh);
        if (st == VTSM_OK)
            st = tsm_pdev_tdi(p, tdi_index, &tdi);
    } else if (st == VTSM_OK) {
        /* an unbind of a TDI its owner unlocked ends the assignment (RELEASE) */
        enum tsm_tdi_req what = bind ? breq
                                : tdi->state == TSM_TDI_CONFIG_UNLOCKED && tdi->owner_tvm != 0
                                    ? TSM_TDI_REQ_RELEASE
                                    : TSM_TDI_REQ_UNBIND;
        st = tsm_tdi_check(tdi, what, TSM_TDI_WHO_HOST, 0, &next);
    }
    if (st == VTSM_OK) {
        struct tsm_job_claim what = {.has_tdi = true, .tdi = tdi_index, .tvm = tvm};
        struct tsm_job args = {.tdi = tdi_index, .tvm = tvm, .lock_flags = flags, .force = assign};
        st = run_job(t, c, p, verb, id, bind ? tdi_bind_run : tdi_unbind_run, &what, &args);
        if (st && bind)
            tsm_pdev_tdi_forget(p, tdi_index);
    }
    if (st)
        tsm_client_error(t, c, id, st, vtsm_err_detail());
}

void tsm_verb_tdi_bind(struct tsm *t, struct tsm_client *c, uint64_t id,
                       const struct vtsm_abi_req *req)
{
    tdi_verb(t, c, id, req, true);
}

void tsm_verb_tdi_unbind(struct tsm *t, struct tsm_client *c, uint64_t id,
                         const struct vtsm_abi_req *req)
{
    tdi_verb(t, c, id, req, false);
}

/* ---------------------------------------------------------------- guest requests */

/* {op: RESULT, id, status: 0, gop, tvm, seq} */
static cbor_item_t *guest_result(uint64_t id, const struct vtsm_abi_guest_body *g)
{
    cbor_item_t *res = vtsm_abi_result_msg(id);
    if (res && (vtsm_abi_put_uint(res, VTSM_ABI_K_GOP, g->gop) ||
                vtsm_abi_put_uint(res, VTSM_ABI_K_TVM, g->tvm) ||
                vtsm_abi_put_uint(res, VTSM_ABI_K_SEQ, g->seq)))
        cbor_decref(&res);
    return res;
}

/* Merge the keys of a map into res (takes over `from`). */
static vtsm_status merge(cbor_item_t *res, cbor_item_t *from)
{
    vtsm_status st = VTSM_OK;
    size_t n = cbor_map_size(from);
    struct cbor_pair *pairs = cbor_map_handle(from);
    for (size_t i = 0; i < n && st == VTSM_OK; i++) {
        char key[64];
        size_t kl = cbor_string_length(pairs[i].key);
        if (kl >= sizeof(key))
            continue;
        memcpy(key, cbor_string_handle(pairs[i].key), kl);
        key[kl] = '\0';
        st = vtsm_abi_put_item(res, key, cbor_incref(pairs[i].value));
    }
    cbor_decref(&from);
    return st;
}

static struct tsm_tdi_info_args info_args(struct tsm *t, const struct vtsm_abi_guest_body *g,
                                          const uint8_t *identity)
{
    struct tsm_tdi_info_args a = {
        .guest_tvm = g->tvm,
        .tvm_identity = identity,
        .nonce = g->has_nonce ? g->nonce : NULL,
        .tsm_key = t->cfg.identity_key,
        .kid = t->cfg.identity_kid,
        .kid_len = sizeof(t->cfg.identity_kid),
    };
    return a;
}

/* INFO's fields: the TDI's view, then its reply map (and token). */
static vtsm_status info_reply(const struct tsm_tdisp_chan *ch, const struct tsm_tdi *tdi,
                              const struct tsm_tdi_info_args *a, cbor_item_t **info)
{
    struct tsm_tdi_info i;
    vtsm_status st = tsm_tdi_info(ch, tdi, a, &i);
    if (st == VTSM_OK)
        st = tsm_reply_tdi_info(&i, a, info);
    tsm_tdi_info_free(&i);
    return st;
}

static cbor_item_t *guest_info_run(struct tsm_job *j)
{
    struct tsm *t = j->t;
    struct tsm_tdi *tdi = job_tdi(j);
    uint8_t identity[TSM_TVM_IDENTITY_SIZE] = {0};
    const struct tsm_tvm *v = tsm_tvm_find(&t->tvms, j->greq.tvm);
    if (v)
        memcpy(identity, v->identity, sizeof(identity));
    struct tsm_tdisp_chan ch = tsm_job_tdisp_chan(j->p);
    struct tsm_tdi_info_args a = info_args(t, &j->greq, identity);
    cbor_item_t *info = NULL;
    vtsm_status st = info_reply(&ch, tdi, &a, &info);
    if (st)
        return tsm_job_error(j, st);
    cbor_item_t *res = guest_result(j->id, &j->greq);
    if (!res || merge(res, info) != VTSM_OK) {
        if (res)
            cbor_decref(&res);
        return NULL;
    }
    return res;
}

/* RESULT {gop, tvm, seq, dev, tdi, state, mmio_enabled, dma_enabled} after a guest move. */
static cbor_item_t *guest_state_result(struct tsm_job *j, const struct tsm_tdi *tdi)
{
    cbor_item_t *res = guest_result(j->id, &j->greq), *sum = NULL;
    if (!res || tsm_reply_tdi_summary(tdi, false, &sum) || merge(res, sum) ||
        vtsm_abi_put_tstr(res, VTSM_ABI_K_DEV, j->p->name)) {
        if (res)
            cbor_decref(&res);
        return NULL;
    }
    return res;
}

static cbor_item_t *guest_accept_run(struct tsm_job *j)
{
    struct tsm_tdi *tdi = job_tdi(j);
    struct tsm_tdisp_chan ch = tsm_job_tdisp_chan(j->p);
    const struct vtsm_abi_guest_body *g = &j->greq;
    struct tsm_tdi_accept_binding b = {
        .report_digest = g->report_digest,
        .report_len = g->report_digest_len,
        .meas_digest = g->meas_digest,
        .meas_len = g->meas_digest_len,
        .lock_digest = g->lock_digest,
        .lock_len = g->lock_digest_len,
    };
    vtsm_status st = tsm_tdi_accept(&ch, tdi, j->greq.tvm, &b);
    if (st)
        return tsm_job_error(j, st);
    return guest_state_result(j, tdi);
}

static cbor_item_t *guest_lock_run(struct tsm_job *j)
{
    struct tsm_tdi *tdi = job_tdi(j);
    struct tsm_tdisp_chan ch = tsm_job_tdisp_chan(j->p);
    uint8_t stream = j->p->ide ? tsm_ide_first_stream(j->p->ide) : 0;
    vtsm_status st = tsm_tdi_guest_lock(&ch, tdi, j->greq.tvm, stream);
    if (st)
        return tsm_job_error(j, st);
    VTSM_INFO("TVM %u locked %s TDI %u", j->greq.tvm, j->p->name, tdi->index);
    return guest_state_result(j, tdi);
}

static cbor_item_t *guest_unlock_run(struct tsm_job *j)
{
    struct tsm_tdi *tdi = job_tdi(j);
    struct tsm_tdisp_chan ch = tsm_job_tdisp_chan(j->p);
    vtsm_status stop_st = VTSM_OK;
    vtsm_status st = tsm_tdi_guest_unlock(&ch, tdi, j->greq.tvm, &stop_st);
    if (st)
        return tsm_job_error(j, st);
    VTSM_INFO("TVM %u unlocked %s TDI %u (STOP_INTERFACE %s)", j->greq.tvm, j->p->name, tdi->index,
              stop_st == VTSM_OK ? "acknowledged" : vtsm_status_name(stop_st));
    cbor_item_t *res = guest_state_result(j, tdi);
    if (res && vtsm_abi_put_bool(res, VTSM_ABI_K_ACKNOWLEDGED, stop_st == VTSM_OK))
        cbor_decref(&res);
    return res;
}

/* A guest operation that needs the device: the guest job takes the device and the TDI
 * and goes on as that device's job. */
static cbor_item_t *guest_on_device(struct tsm_job *j, struct tsm_pdev *p,
                                    const struct vtsm_abi_guest_body *g, const char *verb,
                                    tsm_job_fn run)
{
    struct tsm_job_claim what = {.has_tdi = true, .tdi = g->tdi};
    struct tsm_job args = {.tdi = g->tdi, .greq = *g};
    vtsm_status st;
    if (tsm_job_current() != j) {
        /* running on the loop's stack, where nothing may yield: a device job of its own */
        st = run_job(j->t, j->client, p, verb, j->id, run, &what, &args);
        j->handed_off = st == VTSM_OK;
        return st ? tsm_job_error(j, st) : NULL;
    }
    if ((st = tsm_job_take_device(j, p, verb, &what)) != VTSM_OK)
        return tsm_job_error(j, st);
    j->tdi = args.tdi;
    j->greq = args.greq;
    return run(j);
}

static vtsm_status guest_list(struct tsm *t, uint64_t id, const struct vtsm_abi_guest_body *g,
                              cbor_item_t **out)
{
    cbor_item_t *res = guest_result(id, g), *arr = vtsm_abi_array_new();
    vtsm_status st = res && arr ? VTSM_OK : VTSM_E_NOMEM;
    for (struct tsm_pdev *p = t->devs.head; p && st == VTSM_OK; p = p->next)
        for (struct tsm_tdi_node *n = p->tdis; n && st == VTSM_OK; n = n->next) {
            if (tsm_pdev_tdi_claimed(p, &n->tdi) || n->tdi.owner_tvm != g->tvm)
                continue;
            cbor_item_t *e = NULL;
            if ((st = tsm_reply_tdi_summary(&n->tdi, false, &e)) == VTSM_OK &&
                (st = vtsm_abi_push_item(arr, e)) == VTSM_OK)
                st = vtsm_abi_put_tstr(e, VTSM_ABI_K_DEV, p->name);
        }
    if (st == VTSM_OK) {
        st = vtsm_abi_put_item(res, VTSM_ABI_K_TDIS, arr);
        arr = NULL;
    }
    if (arr)
        cbor_decref(&arr);
    if (st && res)
        cbor_decref(&res);
    *out = res;
    return st;
}

/* A guest request, as a device-less job: its signature check is the heavy part, and runs
 * on the crypto worker when other jobs are in flight (tsm_offload.c). Everything after it
 * looks the TVM, the device and the TDI up again, since the loop served others while the
 * job waited. One worker that finishes tasks in the order given keeps a TVM's requests in
 * the order they came, so their sequence numbers are judged in that order too. */
static cbor_item_t *guest_request_run(struct tsm_job *j)
{
    struct tsm *t = j->t;
    struct vtsm_abi_guest_body g;
    struct tsm_pdev *p = NULL;
    struct tsm_tdi *tdi = NULL;
    cbor_item_t *res = NULL;
    enum tsm_tdi_state next;
    vtsm_status st;
    uint64_t id = j->id;

    /* Authenticate first: nothing below runs for a request the TVM did not sign. */
    st = tsm_tvm_verify_request(&t->tvms, j->gtvm, j->gbody.data, j->gbody.len, j->gsig.data,
                                j->gsig.len, &g);
    if (st == VTSM_OK && g.gop == VTSM_ABI_GOP_LIST) {
        st = guest_list(t, id, &g, &res);
        goto reply;
    }
    if (st == VTSM_OK && (!g.has_dev || !g.has_tdi))
        st = vtsm_fail(VTSM_E_ABI_ARG, "guest request 0x%x needs dev and tdi", g.gop);
    if (st == VTSM_OK)
        st = connected_pdev(t, g.dev, "guest request", &p);
    if (st == VTSM_OK && !(tdi = tsm_pdev_tdi_find(p, g.tdi))) {
        /* Never bound: judge the request against a fresh, unowned TDI so the refusal names
         * the same rule, without creating a record for a guest's guess. */
        struct tsm_tdi fresh;
        st = tsm_tdi_init(&fresh, p->name, g.tdi);
        if (st == VTSM_OK) {
            enum vtsm_abi_gop gop = g.gop;
            enum tsm_tdi_req what = gop == VTSM_ABI_GOP_INFO          ? TSM_TDI_REQ_INFO
                                    : gop == VTSM_ABI_GOP_ACCEPT      ? TSM_TDI_REQ_ACCEPT
                                    : gop == VTSM_ABI_GOP_LOCK        ? TSM_TDI_REQ_LOCK
                                    : gop == VTSM_ABI_GOP_UNLOCK      ? TSM_TDI_REQ_UNLOCK
                                    : gop == VTSM_ABI_GOP_DEBUG_READ  ? TSM_TDI_REQ_DEBUG_READ
                                    : gop == VTSM_ABI_GOP_DEBUG_WRITE ? TSM_TDI_REQ_DEBUG_ERROR
                                                                      : TSM_TDI_REQ_REJECT;
            st = tsm_tdi_check(&fresh, what, TSM_TDI_WHO_OWNER_GUEST, g.tvm, &next);
            tsm_tdi_reset(&fresh);
            if (st == VTSM_OK)
                st = vtsm_fail(VTSM_E_NOT_OWNER, "TDI %u of %s is not bound to TVM %u", g.tdi,
                               p->name, g.tvm);
        }
    }
    /* DEBUG_WRITE only from a TVM the host created with debug (rule GUEST.6) */
    if (st == VTSM_OK && g.gop == VTSM_ABI_GOP_DEBUG_WRITE) {
        const struct tsm_tvm *v = tsm_tvm_find(&t->tvms, g.tvm);
        if (!v || !v->debug)
            st = vtsm_refuse(VTSM_E_POLICY_REFUSED, VTSM_RULE_GUEST_6,
                             "DEBUG_WRITE refused: TVM %u was not created with debug (rule "
                             "GUEST.6: %s)",
                             g.tvm, vtsm_rule_text(VTSM_RULE_GUEST_6));
    }
    if (st)
        goto reply;

    switch (g.gop) {
    case VTSM_ABI_GOP_INFO:
        st = tsm_tdi_check(tdi, TSM_TDI_REQ_INFO, TSM_TDI_WHO_OWNER_GUEST, g.tvm, &next);
        if (st == VTSM_OK && g.has_nonce) /* fresh measurements with the guest's nonce */
            return guest_on_device(j, p, &g, "guest info", guest_info_run);
        if (st == VTSM_OK) {
            const struct tsm_tvm *v = tsm_tvm_find(&t->tvms, g.tvm);
            struct tsm_tdisp_chan ch = tsm_job_tdisp_chan(p);
            struct tsm_tdi_info_args a = info_args(t, &g, v->identity);
            cbor_item_t *info = NULL;
            st = info_reply(&ch, tdi, &a, &info);
            if (st == VTSM_OK && (res = guest_result(id, &g)))
                st = merge(res, info);
            else if (info)
                cbor_decref(&info);
        }
        break;
    case VTSM_ABI_GOP_ACCEPT:
        st = tsm_tdi_check(tdi, TSM_TDI_REQ_ACCEPT, TSM_TDI_WHO_OWNER_GUEST, g.tvm, &next);
        if (st == VTSM_OK)
            return guest_on_device(j, p, &g, "guest accept", guest_accept_run);
        break;
    case VTSM_ABI_GOP_LOCK:
        st = tsm_tdi_check(tdi, TSM_TDI_REQ_LOCK, TSM_TDI_WHO_OWNER_GUEST, g.tvm, &next);
        if (st == VTSM_OK)
            return guest_on_device(j, p, &g, "guest lock", guest_lock_run);
        break;
    case VTSM_ABI_GOP_UNLOCK:
        st = tsm_tdi_check(tdi, TSM_TDI_REQ_UNLOCK, TSM_TDI_WHO_OWNER_GUEST, g.tvm, &next);
        if (st == VTSM_OK)
            return guest_on_device(j, p, &g, "guest unlock", guest_unlock_run);
        break;
    case VTSM_ABI_GOP_DEBUG_READ:
        st = tsm_tdi_check(tdi, TSM_TDI_REQ_DEBUG_READ, TSM_TDI_WHO_OWNER_GUEST, g.tvm, &next);
        if (st == VTSM_OK && (res = guest_result(id, &g)) &&
            (vtsm_abi_put_tstr(res, VTSM_ABI_K_DEV, p->name) ||
             vtsm_abi_put_uint(res, VTSM_ABI_K_TDI, tdi->index) ||
             vtsm_abi_put_tstr(res, VTSM_ABI_K_STATE, tsm_tdi_state_name(tdi->state)) ||
             vtsm_abi_put_uint(res, VTSM_ABI_K_LOCK_FLAGS, tdi->lock_flags) ||
             vtsm_abi_put_uint(res, VTSM_ABI_K_LOCK_SEQ, tdi->lock_seq) ||
             vtsm_abi_put_uint(res, VTSM_ABI_K_MEAS_SEQ, tdi->meas_seq) ||
             vtsm_abi_put_bool(res, VTSM_ABI_K_AFTER_LOCK,
                               tsm_tdi_after_lock(tdi, tdi->meas_seq)) ||
             (tdi->error_rule != VTSM_RULE_NONE &&
              vtsm_abi_put_tstr(res, VTSM_ABI_K_ERROR_RULE, vtsm_rule_id(tdi->error_rule)))))
            cbor_decref(&res);
        break;
    case VTSM_ABI_GOP_DEBUG_WRITE:
        st = tsm_tdi_debug_error(tdi, g.tvm);
        if (st == VTSM_OK && (res = guest_result(id, &g)) &&
            (vtsm_abi_put_tstr(res, VTSM_ABI_K_DEV, p->name) ||
             vtsm_abi_put_uint(res, VTSM_ABI_K_TDI, tdi->index) ||
             vtsm_abi_put_tstr(res, VTSM_ABI_K_STATE, tsm_tdi_state_name(tdi->state))))
            cbor_decref(&res);
        if (st == VTSM_OK)
            VTSM_INFO("TVM %u forced %s TDI %u to ERROR (DEBUG_WRITE)", g.tvm, p->name, tdi->index);
        break;
    case VTSM_ABI_GOP_REJECT:
        st = tsm_tdi_reject(tdi, g.tvm, g.has_reason ? g.reason : NULL);
        if (st == VTSM_OK && (res = guest_result(id, &g)) &&
            (vtsm_abi_put_tstr(res, VTSM_ABI_K_DEV, p->name) ||
             vtsm_abi_put_uint(res, VTSM_ABI_K_TDI, tdi->index) ||
             vtsm_abi_put_tstr(res, VTSM_ABI_K_STATE, tsm_tdi_state_name(tdi->state))))
            cbor_decref(&res);
        if (st == VTSM_OK)
            VTSM_INFO("TVM %u rejected %s TDI %u: %s", g.tvm, p->name, tdi->index,
                      g.has_reason ? g.reason : "");
        break;
    case VTSM_ABI_GOP_MMIO_VALIDATE: /* tsm_verbs_mmio.c */
    case VTSM_ABI_GOP_DMA_ENABLE:
        st = tsm_guest_mmio(t, id, &g, p, tdi, &res);
        break;
    default:
        st = vtsm_fail(VTSM_E_ABI_ARG, "unknown guest operation 0x%x", g.gop);
        break;
    }
reply:
    OPENSSL_cleanse(&g, sizeof(g));
    if (st) {
        if (res)
            cbor_decref(&res);
        return tsm_job_error(j, st);
    }
    return res; /* NULL (out of memory) is answered as such */
}

void tsm_verb_guest_request(struct tsm *t, struct tsm_client *c, uint64_t id,
                            const struct vtsm_abi_req *req)
{
    struct tsm_job *j = NULL;
    vtsm_status st = tsm_job_new(t, NULL, "guest request", id, guest_request_run, NULL, &j);
    if (st == VTSM_OK) {
        /* the request's fields are borrowed until this returns: the job keeps copies */
        j->gtvm = req->tvm;
        if ((st = vtsm_buf_append(&j->gbody, req->body.p, req->body.len)) != VTSM_OK ||
            (st = vtsm_buf_append(&j->gsig, req->sig.p, req->sig.len)) != VTSM_OK)
            tsm_job_cancel(j);
        else
            st = tsm_job_start_later(c, j); /* replies when it ends */
    }
    if (st)
        tsm_client_error(t, c, id, st, vtsm_err_detail());
}

/* ---------------------------------------------------------------- recovery */

static vtsm_status put_recovery_digests(cbor_item_t *m, const struct tsm_tdi_recovery *r)
{
    if (!r->have_digests)
        return VTSM_OK;
    VTSM_GUARD(vtsm_abi_put_bytes(m, VTSM_ABI_K_REPORT_DIGEST, r->report_digest, r->digest_len));
    VTSM_GUARD(
        vtsm_abi_put_bytes(m, VTSM_ABI_K_MEASUREMENTS_DIGEST, r->meas_digest, r->digest_len));
    VTSM_GUARD(vtsm_abi_put_bool(m, VTSM_ABI_K_SAME_AS_BOUND, r->same_as_bound));
    return vtsm_abi_put_bool(m, VTSM_ABI_K_REFERENCE_VALUES_MATCHED, r->reference_match);
}

/* TDI_RESET: FLR, relock, re-measure (tsm_tdi_recover). The reply, RESULT or ERROR, carries
 * the digests of what the device now reports, so a host can take them to its reference
 * values service; the subscribers hear evidence_changed / tdi_recovered. */
static cbor_item_t *tdi_reset_run(struct tsm_job *j)
{
    struct tsm_tdi *tdi = job_tdi(j);
    struct tsm_tdisp_chan ch = tsm_job_tdisp_chan(j->p);
    struct tsm_tdi_ref ref = {.report_digest = j->ref_report,
                              .report_digest_len = j->ref_report_len,
                              .meas_digest = j->ref_meas,
                              .meas_digest_len = j->ref_meas_len};
    struct tsm_tdi_recovery rec;
    bool has_ref = j->ref_report_len || j->ref_meas_len;
    vtsm_status st = tsm_tdi_recover(&ch, tdi, has_ref ? &ref : NULL, &rec);
    cbor_item_t *res;
    if (st) {
        enum vtsm_rule rule = vtsm_err_rule();
        char detail[256];
        snprintf(detail, sizeof(detail), "%s", vtsm_err_detail());
        res = tsm_job_error(j, st);
        if (res && (vtsm_abi_put_tstr(res, VTSM_ABI_K_STATE, tsm_tdi_state_name(tdi->state)) ||
                    put_recovery_digests(res, &rec)))
            cbor_decref(&res);
        if (rec.have_digests && !rec.same_as_bound)
            tsm_event_emit(j->t, TSM_EVENT_EVIDENCE_CHANGED, j->p->name, (long)tdi->index, rule,
                           detail);
        return res;
    }
    res = tdi_result(j, tdi);
    if (res && put_recovery_digests(res, &rec))
        cbor_decref(&res);
    if (!rec.same_as_bound)
        tsm_event_emit(j->t, TSM_EVENT_EVIDENCE_CHANGED, j->p->name, (long)tdi->index,
                       VTSM_RULE_TDI_11,
                       "the device's evidence changed; the host's reference values match it");
    tsm_event_emit(j->t, TSM_EVENT_TDI_RECOVERED, j->p->name, (long)tdi->index, VTSM_RULE_TDI_10,
                   tdi->last_event);
    return res;
}

void tsm_verb_tdi_reset(struct tsm *t, struct tsm_client *c, uint64_t id,
                        const struct vtsm_abi_req *req)
{
    const char *verb = "tdi_reset";
    uint32_t tdi_index = (uint32_t)req->tdi;
    struct tsm_pdev *p = NULL;
    struct tsm_tdi *tdi = NULL;
    struct tsm_job *j = NULL;
    vtsm_status st = connected_pdev(t, req->dev, verb, &p);
    if (st == VTSM_OK && !p->tdisp)
        st = vtsm_refuse(VTSM_E_STATE, VTSM_RULE_TDI_9,
                         "%s refused: %s was connected ide_only, without TDISP (rule TDI.9)", verb,
                         req->dev);
    if (st == VTSM_OK && !(tdi = tsm_pdev_tdi_find(p, tdi_index))) {
        /* never bound: the table's refusal for a fresh TDI, no record made */
        struct tsm_tdi fresh;
        if ((st = tsm_tdi_init(&fresh, p->name, tdi_index)) == VTSM_OK)
            st = tsm_tdi_check(&fresh, TSM_TDI_REQ_RESET, TSM_TDI_WHO_HOST, 0, NULL);
        tsm_tdi_reset(&fresh);
        if (st == VTSM_OK)
            st = vtsm_fail(VTSM_E_INTERNAL, "%s: TDI %u has no record", verb, tdi_index);
    } else if (st == VTSM_OK) {
        st = tsm_tdi_check(tdi, TSM_TDI_REQ_RESET, TSM_TDI_WHO_HOST, 0, NULL);
    }
    /* reference values: both or neither, each in the binding's hash */
    bool has_r = vtsm_abi_req_has(req, VTSM_ABI_F_REPORT_DIGEST);
    bool has_m = vtsm_abi_req_has(req, VTSM_ABI_F_MEASUREMENTS_DIGEST);
    if (st == VTSM_OK &&
        (has_r != has_m || (has_r && (req->report_digest.len != tdi->digest_len ||
                                      req->measurements_digest.len != tdi->digest_len))))
        st = vtsm_refuse(VTSM_E_ABI_ARG, VTSM_RULE_ABI_8,
                         "%s: reference values are report_digest and measurements_digest "
                         "together, %zu bytes each (the session's hash) (rule ABI.8)",
                         verb, tdi->digest_len);
    if (st == VTSM_OK) {
        struct tsm_job_claim what = {.has_tdi = true, .tdi = tdi_index};
        st = tsm_job_new(t, p, verb, id, tdi_reset_run, &what, &j);
    }
    if (st == VTSM_OK) {
        j->tdi = tdi_index;
        if (has_r) {
            memcpy(j->ref_report, req->report_digest.p, req->report_digest.len);
            j->ref_report_len = req->report_digest.len;
            memcpy(j->ref_meas, req->measurements_digest.p, req->measurements_digest.len);
            j->ref_meas_len = req->measurements_digest.len;
        }
        st = tsm_job_start(c, j);
    }
    if (st)
        tsm_client_error(t, c, id, st, vtsm_err_detail());
}

/* ---------------------------------------------------------------- device check */

/* DEVICE_CHECK: GET_DEVICE_INTERFACE_STATE for each bound CONFIG_LOCKED / RUN TDI; one that
 * the device reports otherwise goes to ERROR (TDI.7 / TDI.8) and the subscribers hear
 * tdi_error. The job holds the device's mailbox, so no verb binds or unbinds meanwhile. */
static cbor_item_t *device_check_run(struct tsm_job *j)
{
    struct tsm_pdev *p = j->p;
    struct tsm_tdisp_chan ch = tsm_job_tdisp_chan(p);
    cbor_item_t *res = vtsm_abi_result_msg(j->id), *arr = vtsm_abi_array_new();
    vtsm_status st = res && arr ? VTSM_OK : VTSM_E_NOMEM;
    uint64_t errors = 0;
    for (struct tsm_tdi_node *n = p->tdis; n && st == VTSM_OK; n = n->next) {
        struct tsm_tdi *t = &n->tdi;
        if (t->state != TSM_TDI_CONFIG_LOCKED && t->state != TSM_TDI_RUN)
            continue;
        uint8_t ds = 0xFF;
        vtsm_status cst = tsm_tdi_check_device(&ch, t, &ds);
        if (cst != VTSM_OK && cst != VTSM_E_PEER_STATE) {
            st = cst; /* no answer: the verb fails, what was checked so far stands */
            break;
        }
        if (cst == VTSM_E_PEER_STATE) {
            errors++;
            tsm_event_emit(j->t, TSM_EVENT_TDI_ERROR, p->name, (long)t->index, vtsm_err_rule(),
                           vtsm_err_detail());
        }
        cbor_item_t *e = vtsm_abi_map_new();
        if (!e || vtsm_abi_push_item(arr, e) != VTSM_OK ||
            vtsm_abi_put_uint(e, VTSM_ABI_K_TDI, t->index) ||
            vtsm_abi_put_tstr(e, VTSM_ABI_K_STATE, tsm_tdi_state_name(t->state)) ||
            vtsm_abi_put_tstr(e, VTSM_ABI_K_DEVICE_STATE,
                              tsm_tdi_state_name((enum tsm_tdi_state)ds)) ||
            (t->error_rule != VTSM_RULE_NONE && t->state == TSM_TDI_ERROR &&
             vtsm_abi_put_tstr(e, VTSM_ABI_K_RULE, vtsm_rule_id(t->error_rule))))
            st = VTSM_E_NOMEM;
    }
    if (st != VTSM_OK) {
        if (res)
            cbor_decref(&res);
        if (arr)
            cbor_decref(&arr);
        return tsm_job_error(j, st);
    }
    if (vtsm_abi_put_tstr(res, VTSM_ABI_K_DEV, p->name) ||
        vtsm_abi_put_item(res, VTSM_ABI_K_TDIS, arr) ||
        vtsm_abi_put_uint(res, VTSM_ABI_K_ERRORS, errors))
        cbor_decref(&res);
    return res;
}

void tsm_verb_device_check(struct tsm *t, struct tsm_client *c, uint64_t id,
                           const struct vtsm_abi_req *req)
{
    struct tsm_pdev *p = NULL;
    vtsm_status st = connected_pdev(t, req->dev, "device_check", &p);
    if (st == VTSM_OK && !p->tdisp)
        st = vtsm_refuse(VTSM_E_STATE, VTSM_RULE_TDI_9,
                         "device_check refused: %s was connected ide_only, without TDISP (rule "
                         "TDI.9)",
                         req->dev);
    if (st == VTSM_OK)
        st = run_job(t, c, p, "device_check", id, device_check_run, NULL, NULL);
    if (st)
        tsm_client_error(t, c, id, st, vtsm_err_detail());
}

/* ---------------------------------------------------------------- events */

void tsm_verb_events_subscribe(struct tsm *t, struct tsm_client *c, uint64_t id,
                               const struct vtsm_abi_req *req)
{
    const char *dev = vtsm_abi_req_has(req, VTSM_ABI_F_DEV) ? req->dev : NULL;
    if (dev && !tsm_pdev_find(&t->devs, dev)) {
        vtsm_refuse(VTSM_E_NOT_FOUND, VTSM_RULE_PDEV_13, "events_subscribe: no device named %s",
                    dev);
        tsm_client_error(t, c, id, VTSM_E_NOT_FOUND, vtsm_err_detail());
        return;
    }
    if (!c->events)
        t->subscribers++;
    c->events = true;
    snprintf(c->events_dev, sizeof(c->events_dev), "%s", dev ? dev : "");
    cbor_item_t *res = vtsm_abi_result_msg(id);
    if (res && (vtsm_abi_put_uint(res, VTSM_ABI_K_SEQ, t->event_seq) ||
                (dev && vtsm_abi_put_tstr(res, VTSM_ABI_K_DEV, dev))))
        cbor_decref(&res);
    tsm_client_reply(t, c, res);
}
