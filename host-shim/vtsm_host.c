/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Host shim: one connection to tsmd, verbs in flight matched by id, DOE_PENDING
 * answered through per-device callbacks (docs/abi.md "The DOE continuation"), the
 * simulated-link channel through per-device link callbacks.
 */
#include "vtsm_host_cbor.h"
#include "vtsm_pcap.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vtsm_abi.h"
#include "vtsm_guard.h"
#include "vtsm_path.h"
#include "vtsm_sock.h"

#define HELLO_TIMEOUT_MS 10000

/* One channel of a device (the DOE mailbox or the simulated link): a synchronous
 * callback (fn) or an asynchronous one (start, with cancel). */
struct chan_cb {
    vtsm_doe_fn fn;
    vtsm_doe_start_fn start;
    vtsm_doe_cancel_fn cancel;
    void *ctx;
};

struct dev_cb {
    struct dev_cb *next;
    char dev[VTSM_ABI_DEV_BUF];
    struct chan_cb doe;  /* DOE mailbox */
    struct chan_cb link; /* simulated link (DOE_PENDING channel "link") */
};

/* A DOE_PENDING handed to an asynchronous callback and not yet answered. */
struct exchange {
    struct exchange *next;
    uint64_t token;
    uint64_t id; /* the verb it belongs to */
    uint64_t seq;
    char dev[VTSM_ABI_DEV_BUF];
    bool link;
    /* copied at start: the exchange keeps the callback it started with */
    vtsm_doe_cancel_fn cancel;
    void *ctx;
};

struct pending {
    struct pending *next;
    uint64_t id;
    unsigned op;
    vtsm_host_done_cbor_fn done_fn;
    void *done_ctx;
};

struct vtsm_host {
    int fd;
    uint64_t next_id;
    int timeout_ms;
    struct vtsm_abi_reader rd;
    struct dev_cb *devs;
    struct pending *pend;
    struct exchange *exch; /* asynchronous DOE exchanges awaiting completion */
    uint64_t next_token;
    struct vtsm_host_error last;
    vtsm_host_trace_fn trace;
    void *trace_ctx;
    struct vtsm_pcap *pcap; /* DOE objects both ways, LINKTYPE_PCI_DOE */
    unsigned version;
    enum vtsm_abi_role role;
    char tsm[128];
    uint8_t *rsp;                /* DOE response buffer, VTSM_HOST_DOE_RSP_CAP bytes */
    vtsm_status dead;            /* VTSM_OK while the connection is usable */
    vtsm_host_event_fn event_fn; /* EVENT messages (docs/abi.md 11.4) */
    void *event_ctx;
};

/* ---- errors ---- */

static void copy_str(char *dst, size_t cap, const char *s)
{
    size_t n = strlen(s);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* A failure of ours (not reported by the TSM): name/source from the status, detail
 * from this thread's vtsm_fail(). */
static void local_error(struct vtsm_host_error *e, vtsm_status st)
{
    e->status = st;
    e->from_tsm = false;
    copy_str(e->name, sizeof(e->name), vtsm_status_name(st));
    copy_str(e->source, sizeof(e->source), vtsm_source_name(vtsm_status_source(st)));
    copy_str(e->detail, sizeof(e->detail),
             vtsm_err_status() == st ? vtsm_err_detail() : vtsm_status_text(st));
    e->rule = vtsm_err_status() == st ? vtsm_err_rule() : vtsm_rule_of_status(st);
    copy_str(e->rule_id, sizeof(e->rule_id), e->rule ? vtsm_rule_id(e->rule) : "");
}

static vtsm_status fail_local(struct vtsm_host *h, vtsm_status st)
{
    local_error(&h->last, st);
    return st;
}

const struct vtsm_host_error *vtsm_host_last_error(const struct vtsm_host *h)
{
    return &h->last;
}

/* ---- sending ---- */

static void trace(struct vtsm_host *h, enum vtsm_host_trace_dir dir, const char *dev,
                  const uint8_t *p, size_t len)
{
    if (h->trace)
        h->trace(h->trace_ctx, dir, dev, p, len);
    /* a capture that cannot be written stops; the verbs go on */
    if (h->pcap && (dir == VTSM_HOST_TRACE_DOE_REQ || dir == VTSM_HOST_TRACE_DOE_RSP) &&
        vtsm_pcap_write(h->pcap, p, len) != VTSM_OK) {
        vtsm_pcap_close(h->pcap);
        h->pcap = NULL;
    }
}

vtsm_status vtsm_host_set_pcap(struct vtsm_host *h, const char *path)
{
    VTSM_ENSURE(h, VTSM_E_INVAL, "NULL handle");
    vtsm_pcap_close(h->pcap);
    h->pcap = NULL;
    if (!path)
        return VTSM_OK;
    vtsm_status st = vtsm_pcap_open(path, VTSM_PCAP_LINKTYPE_PCI_DOE, &h->pcap);
    return st == VTSM_OK ? st : fail_local(h, st);
}

static vtsm_status send_msg(struct vtsm_host *h, const cbor_item_t *msg)
{
    struct vtsm_buf frame = {0};
    vtsm_status st = vtsm_abi_encode(msg, &frame);
    if (st == VTSM_OK) {
        trace(h, VTSM_HOST_TRACE_TO_TSM, NULL, frame.data, frame.len);
        st = vtsm_fd_write_full(h->fd, frame.data, frame.len);
    }
    vtsm_buf_free(&frame);
    return st;
}

/* ---- pending verbs ---- */

static struct pending *find_pending(struct vtsm_host *h, uint64_t id)
{
    for (struct pending *p = h->pend; p; p = p->next)
        if (p->id == id)
            return p;
    return NULL;
}

static void unlink_pending(struct vtsm_host *h, struct pending *p)
{
    for (struct pending **pp = &h->pend; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            p->next = NULL;
            return;
        }
    }
}

/* ---- asynchronous DOE exchanges ---- */

static struct exchange *find_exchange(struct vtsm_host *h, uint64_t token)
{
    for (struct exchange *e = h->exch; e; e = e->next)
        if (e->token == token)
            return e;
    return NULL;
}

static void unlink_exchange(struct vtsm_host *h, struct exchange *x)
{
    for (struct exchange **pp = &h->exch; *pp; pp = &(*pp)->next) {
        if (*pp == x) {
            *pp = x->next;
            x->next = NULL;
            return;
        }
    }
}

/*
 * End, without an answer, every exchange of verb id (all verbs if all): each is
 * removed first, then its cancel callback runs, so a callback that looks at the handle
 * sees the exchange gone.
 */
static void cancel_exchanges(struct vtsm_host *h, uint64_t id, bool all)
{
    struct exchange **pp = &h->exch;
    while (*pp) {
        struct exchange *x = *pp;
        if (!all && x->id != id) {
            pp = &x->next;
            continue;
        }
        *pp = x->next;
        if (x->cancel)
            x->cancel(x->ctx, h, x->token);
        free(x);
        pp = &h->exch; /* the callback may have completed others: start over */
    }
}

/*
 * The verb finished: it is removed, its pending DOE exchanges are cancelled and its
 * done callback runs with h->last describing a failure. Takes over the reference to
 * result.
 */
static void complete(struct vtsm_host *h, struct pending *p, vtsm_status st, cbor_item_t *result,
                     const struct vtsm_host_error *err)
{
    unlink_pending(h, p);
    cancel_exchanges(h, p->id, false);
    if (err)
        h->last = *err;
    if (p->done_fn)
        p->done_fn(p->done_ctx, st, result);
    if (result)
        cbor_decref(&result);
    free(p);
}

/* Complete every verb in flight with e (done callbacks may start new verbs: those stay). */
static void complete_all(struct vtsm_host *h, const struct vtsm_host_error *e)
{
    struct pending *list = h->pend;
    h->pend = NULL;
    while (list) {
        struct pending *p = list;
        list = p->next;
        p->next = h->pend; /* back on the list so complete() finds and unlinks it */
        h->pend = p;
        complete(h, p, e->status, NULL, e);
    }
}

/* The connection is dead: complete every verb in flight with st (idempotent). */
static void fail_all(struct vtsm_host *h, vtsm_status st)
{
    struct vtsm_host_error e;
    if (h->dead == VTSM_OK)
        h->dead = st;
    local_error(&e, h->dead);
    h->last = e;
    complete_all(h, &e);
}

/* ---- incoming messages ---- */

static struct dev_cb *find_dev(struct vtsm_host *h, const char *dev)
{
    struct dev_cb *cb = h->devs;
    while (cb && strcmp(cb->dev, dev) != 0)
        cb = cb->next;
    return cb;
}

/*
 * The channel a DOE_PENDING names: absent = the DOE mailbox, "link" = the simulated
 * link. Anything else is answered with an error naming it (printable ASCII only, so the
 * text stays valid UTF-8 on the wire).
 */
static bool parse_channel(const cbor_item_t *msg, bool *link, char *ebuf, size_t cap)
{
    const cbor_item_t *ch = vtsm_abi_find(msg, VTSM_ABI_K_CHANNEL);
    *link = false;
    if (!ch)
        return true;
    if (!cbor_isa_string(ch) || !cbor_string_is_definite(ch)) {
        snprintf(ebuf, cap, "DOE_PENDING channel must be a text string");
        return false;
    }
    size_t n = cbor_string_length(ch);
    const unsigned char *p = cbor_string_handle(ch);
    if (n == strlen(VTSM_ABI_CHANNEL_LINK) && memcmp(p, VTSM_ABI_CHANNEL_LINK, n) == 0) {
        *link = true;
        return true;
    }
    char shown[33];
    size_t k = n < sizeof(shown) - 1 ? n : sizeof(shown) - 1;
    for (size_t i = 0; i < k; i++)
        shown[i] = p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\'' ? (char)p[i] : '?';
    shown[k] = '\0';
    snprintf(ebuf, cap, "unknown channel '%s%s'", shown, n > k ? "..." : "");
    return false;
}

/* Answer one DOE_PENDING: the response object, or (error non-NULL) the failure text. */
static vtsm_status answer(struct vtsm_host *h, uint64_t id, const char *dev, uint64_t seq,
                          bool link, const uint8_t *rsp, size_t rsp_len, const char *error)
{
    if (!error)
        trace(h, link ? VTSM_HOST_TRACE_LINK_RSP : VTSM_HOST_TRACE_DOE_RSP, dev, rsp, rsp_len);
    cbor_item_t *m =
        vtsm_abi_doe_response_msg(id, dev, seq, error ? NULL : rsp, error ? 0 : rsp_len, error);
    VTSM_ENSURE(m, VTSM_E_NOMEM, "building DOE_RESPONSE");
    vtsm_status st = send_msg(h, m);
    cbor_decref(&m);
    if (st == VTSM_E_CLOSED || st == VTSM_E_IO || st == VTSM_E_TIMEOUT)
        h->dead = st; /* verbs in flight complete at the next dispatch */
    return st;
}

/* The text a failed exchange is answered with; rc is a negative errno. */
static const char *exchange_error(bool link, int rc, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s exchange failed: %s", link ? "link" : "DOE",
             strerror(rc < 0 ? -rc : EIO));
    return buf;
}

/* Hand a DOE_PENDING to an asynchronous callback; it answers through
 * vtsm_host_doe_complete() / vtsm_host_doe_fail(), maybe before returning. */
static vtsm_status start_exchange(struct vtsm_host *h, const struct chan_cb *cb, uint64_t id,
                                  const char *dev, uint64_t seq, bool link, const uint8_t *obj,
                                  size_t len)
{
    char ebuf[160];
    struct exchange *x = calloc(1, sizeof(*x));
    if (!x)
        return answer(h, id, dev, seq, link, NULL, 0, "out of memory");
    x->token = ++h->next_token;
    x->id = id;
    x->seq = seq;
    copy_str(x->dev, sizeof(x->dev), dev);
    x->link = link;
    x->cancel = cb->cancel;
    x->ctx = cb->ctx;
    x->next = h->exch;
    h->exch = x;
    uint64_t token = x->token;
    trace(h, link ? VTSM_HOST_TRACE_LINK_REQ : VTSM_HOST_TRACE_DOE_REQ, dev, obj, len);
    int rc = cb->start(cb->ctx, h, token, obj, len);
    if (rc == 0)
        return VTSM_OK;
    /* refused: answer it ourselves unless the callback already did */
    x = find_exchange(h, token);
    if (!x)
        return VTSM_OK;
    unlink_exchange(h, x);
    free(x);
    return answer(h, id, dev, seq, link, NULL, 0, exchange_error(link, rc, ebuf, sizeof(ebuf)));
}

/*
 * DOE_PENDING: run the device's DOE callback (or, on the link channel, its link
 * callback) and answer with DOE_RESPONSE exactly once; an asynchronous callback
 * answers later.
 */
static vtsm_status on_doe_pending(struct vtsm_host *h, const cbor_item_t *msg)
{
    uint64_t id, seq;
    char dev[VTSM_ABI_DEV_BUF];
    const uint8_t *obj;
    size_t len;
    VTSM_GUARD(vtsm_abi_get_id(msg, &id));
    VTSM_GUARD(vtsm_abi_get_dev(msg, dev));
    VTSM_GUARD(vtsm_abi_get_uint(msg, VTSM_ABI_K_SEQ, &seq));
    VTSM_GUARD(vtsm_abi_get_bytes(msg, VTSM_ABI_K_OBJECT, &obj, &len));

    char ebuf[160];
    bool link = false;
    struct dev_cb *d = find_dev(h, dev);
    /* copied: the callback may re-register and free d */
    struct chan_cb cb = {0};
    if (!parse_channel(msg, &link, ebuf, sizeof(ebuf)))
        return answer(h, id, dev, seq, false, NULL, 0, ebuf);
    if (d)
        cb = link ? d->link : d->doe;
    if (!cb.fn && !cb.start)
        return answer(h, id, dev, seq, link, NULL, 0,
                      link ? "no link callback registered" : "no DOE callback registered");
    if (!find_pending(h, id))
        return answer(h, id, dev, seq, link, NULL, 0, "no such request in flight");
    if (cb.start)
        return start_exchange(h, &cb, id, dev, seq, link, obj, len);
    if (!h->rsp)
        h->rsp = malloc(VTSM_HOST_DOE_RSP_CAP);
    if (!h->rsp)
        return answer(h, id, dev, seq, link, NULL, 0, "out of memory");
    trace(h, link ? VTSM_HOST_TRACE_LINK_REQ : VTSM_HOST_TRACE_DOE_REQ, dev, obj, len);
    size_t rsp_len = VTSM_HOST_DOE_RSP_CAP;
    int rc = cb.fn(cb.ctx, obj, len, h->rsp, &rsp_len);
    if (rc == 0 && rsp_len > VTSM_HOST_DOE_RSP_CAP)
        rc = -EMSGSIZE;
    if (rc != 0)
        return answer(h, id, dev, seq, link, NULL, 0, exchange_error(link, rc, ebuf, sizeof(ebuf)));
    return answer(h, id, dev, seq, link, h->rsp, rsp_len, NULL);
}

vtsm_status vtsm_host_doe_complete(struct vtsm_host *h, uint64_t token, const uint8_t *rsp,
                                   size_t rsp_len)
{
    if (!h)
        return vtsm_fail(VTSM_E_INVAL, "NULL handle");
    struct exchange *x = find_exchange(h, token);
    if (!x)
        return fail_local(h, vtsm_fail(VTSM_E_NOT_FOUND,
                                       "no DOE exchange %llu pending (answered or cancelled)",
                                       (unsigned long long)token));
    if (!rsp && rsp_len)
        return fail_local(h, vtsm_fail(VTSM_E_INVAL, "NULL response"));
    unlink_exchange(h, x);
    char ebuf[160];
    const char *error = NULL;
    if (rsp_len > VTSM_HOST_DOE_RSP_CAP)
        error = exchange_error(x->link, -EMSGSIZE, ebuf, sizeof(ebuf));
    vtsm_status st = VTSM_OK;
    if (h->dead == VTSM_OK)
        st = answer(h, x->id, x->dev, x->seq, x->link, rsp, rsp_len, error);
    else
        st = vtsm_fail(h->dead, "connection to the TSM is closed");
    free(x);
    return st == VTSM_OK ? st : fail_local(h, st);
}

vtsm_status vtsm_host_doe_fail(struct vtsm_host *h, uint64_t token, int err)
{
    if (!h)
        return vtsm_fail(VTSM_E_INVAL, "NULL handle");
    struct exchange *x = find_exchange(h, token);
    if (!x)
        return fail_local(h, vtsm_fail(VTSM_E_NOT_FOUND,
                                       "no DOE exchange %llu pending (answered or cancelled)",
                                       (unsigned long long)token));
    unlink_exchange(h, x);
    char ebuf[160];
    vtsm_status st = VTSM_OK;
    if (h->dead == VTSM_OK)
        st = answer(h, x->id, x->dev, x->seq, x->link, NULL, 0,
                    exchange_error(x->link,
                                   err > 0    ? -err
                                   : err == 0 ? -EIO
                                              : err,
                                   ebuf, sizeof(ebuf)));
    else
        st = vtsm_fail(h->dead, "connection to the TSM is closed");
    free(x);
    return st == VTSM_OK ? st : fail_local(h, st);
}

size_t vtsm_host_doe_pending(const struct vtsm_host *h)
{
    size_t n = 0;
    for (const struct exchange *x = h->exch; x; x = x->next)
        n++;
    return n;
}

/* An EVENT: to the event callback, if one is set; a malformed one is dropped. */
static void on_event(struct vtsm_host *h, cbor_item_t *msg)
{
    char event[64], dev[VTSM_ABI_DEV_BUF], rule[32] = "";
    const char *detail = "";
    size_t detail_len = 0;
    uint64_t seq = 0, tdi = 0;
    bool has_tdi = false, has_rule = false;
    if (!h->event_fn)
        return;
    if (vtsm_abi_get_uint(msg, VTSM_ABI_K_SEQ, &seq) != VTSM_OK ||
        vtsm_abi_get_tstr(msg, VTSM_ABI_K_EVENT, event, sizeof(event)) != VTSM_OK ||
        vtsm_abi_get_tstr(msg, VTSM_ABI_K_DEV, dev, sizeof(dev)) != VTSM_OK ||
        vtsm_abi_opt_uint(msg, VTSM_ABI_K_TDI, &tdi, &has_tdi) != VTSM_OK || tdi > UINT32_MAX ||
        vtsm_abi_opt_tstr(msg, VTSM_ABI_K_RULE, rule, sizeof(rule), &has_rule) != VTSM_OK)
        return;
    if (vtsm_abi_find(msg, VTSM_ABI_K_DETAIL) &&
        vtsm_abi_get_tstr_ref(msg, VTSM_ABI_K_DETAIL, &detail, &detail_len) != VTSM_OK)
        return;
    char *d = strndup(detail, detail_len);
    struct vtsm_result *r = vtsm_result_new(msg);
    if (d && r) {
        struct vtsm_host_event ev = {.seq = seq,
                                     .event = event,
                                     .dev = dev,
                                     .has_tdi = has_tdi,
                                     .tdi = (uint32_t)tdi,
                                     .rule_id = rule,
                                     .rule = vtsm_rule_parse(rule),
                                     .detail = d,
                                     .msg = r};
        h->event_fn(h->event_ctx, &ev);
    }
    free(d);
    vtsm_result_free(r);
}

void vtsm_host_set_event_cb(struct vtsm_host *h, vtsm_host_event_fn fn, void *ctx)
{
    if (!h)
        return;
    h->event_fn = fn;
    h->event_ctx = fn ? ctx : NULL;
}

/* One message from the TSM. Messages about unknown ids are ignored; only a failure to
 * answer (send) is returned, which kills the connection. */
static vtsm_status on_message(struct vtsm_host *h, cbor_item_t *msg)
{
    uint64_t op = 0, id = 0;
    if (vtsm_abi_get_op(msg, &op) != VTSM_OK || vtsm_abi_get_id(msg, &id) != VTSM_OK)
        return VTSM_OK;
    if (op == VTSM_ABI_OP_EVENT) {
        on_event(h, msg);
        return VTSM_OK;
    }
    if (op == VTSM_ABI_OP_DOE_PENDING) {
        vtsm_status st = on_doe_pending(h, msg);
        /* a DOE_PENDING we cannot even parse cannot be answered; keep going */
        return st == VTSM_E_ABI_ARG ? VTSM_OK : st;
    }
    struct pending *p = find_pending(h, id);
    if (op == VTSM_ABI_OP_ERROR) {
        struct vtsm_host_error e = {0};
        struct vtsm_abi_error ae;
        if (vtsm_abi_parse_error(msg, &ae) == VTSM_OK) {
            e.status = ae.status;
            copy_str(e.name, sizeof(e.name), ae.name);
            copy_str(e.source, sizeof(e.source), ae.source);
            copy_str(e.detail, sizeof(e.detail), ae.detail);
            copy_str(e.rule_id, sizeof(e.rule_id), ae.rule_id);
            e.rule = ae.rule;
            e.from_tsm = true;
        } else {
            local_error(&e, VTSM_E_INTERNAL);
        }
        uint64_t req_op = 0;
        bool has_req_op = false;
        vtsm_abi_opt_uint(msg, VTSM_ABI_K_REQUEST_OP, &req_op, &has_req_op);
        if (!p || (has_req_op && req_op == VTSM_ABI_OP_DOE_RESPONSE)) {
            /* Not attributable (id 0), about a verb we gave up on, or a refused
             * DOE_RESPONSE: the verb it names is still in flight. */
            h->last = e;
            return VTSM_OK;
        }
        complete(h, p, e.status, e.from_tsm ? cbor_incref(msg) : NULL, &e);
        return VTSM_OK;
    }
    if (op == VTSM_ABI_OP_RESULT && p)
        complete(h, p, VTSM_OK, cbor_incref(msg), NULL);
    return VTSM_OK;
}

/* Handle every whole frame buffered. */
static vtsm_status drain(struct vtsm_host *h)
{
    const uint8_t *raw;
    size_t rawlen;
    while (h->dead == VTSM_OK && vtsm_abi_reader_frame(&h->rd, &raw, &rawlen)) {
        cbor_item_t *msg = NULL;
        trace(h, VTSM_HOST_TRACE_FROM_TSM, NULL, raw, rawlen);
        vtsm_status st = vtsm_abi_reader_next(&h->rd, &msg);
        if (st == VTSM_E_ABI_MALFORMED)
            continue; /* one bad but well-delimited frame: skip it */
        if (st == VTSM_OK && msg) {
            st = on_message(h, msg);
            cbor_decref(&msg);
        }
        if (st != VTSM_OK)
            return st;
    }
    if (h->dead != VTSM_OK)
        return h->dead;
    /* an oversized length is reported as soon as its header is buffered */
    cbor_item_t *none = NULL;
    vtsm_status st = vtsm_abi_reader_next(&h->rd, &none);
    if (none)
        cbor_decref(&none);
    return st;
}

/* Read and handle everything available now, without blocking. Connection failures are
 * returned and have already completed every verb in flight. */
static vtsm_status pump(struct vtsm_host *h)
{
    uint8_t chunk[16384];
    for (;;) {
        vtsm_status st = drain(h);
        if (st != VTSM_OK)
            goto dead;
        ssize_t k = read(h->fd, chunk, sizeof(chunk));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return VTSM_OK;
        if (k < 0) {
            st = vtsm_fail(errno == ECONNRESET ? VTSM_E_CLOSED : VTSM_E_IO, "read from TSM: %s",
                           strerror(errno));
            goto dead;
        }
        if (k == 0) {
            st = vtsm_abi_reader_partial(&h->rd)
                     ? vtsm_fail(VTSM_E_IO, "TSM closed the connection mid-frame")
                     : vtsm_fail(VTSM_E_CLOSED, "TSM closed the connection");
            goto dead;
        }
        st = vtsm_abi_reader_feed(&h->rd, chunk, (size_t)k);
        if (st != VTSM_OK)
            goto dead;
        continue;
    dead:
        fail_all(h, st);
        return h->dead;
    }
}

/* ---- verbs ---- */

/*
 * Send msg (owned; "op" and "id" are set here) as a new verb that completes through
 * done. *id_out (may be NULL) receives its id.
 */
static vtsm_status start(struct vtsm_host *h, unsigned op, cbor_item_t *msg,
                         vtsm_host_done_cbor_fn done, void *ctx, uint64_t *id_out)
{
    vtsm_status st;
    struct pending *p = NULL;
    VTSM_ENSURE_GOTO(msg, VTSM_E_NOMEM, "building request");
    VTSM_ENSURE_GOTO(h->dead == VTSM_OK, h->dead, "connection to the TSM is closed");
    uint64_t id = h->next_id++;
    VTSM_GUARD_GOTO(vtsm_abi_put_uint(msg, VTSM_ABI_K_OP, op));
    VTSM_GUARD_GOTO(vtsm_abi_put_uint(msg, VTSM_ABI_K_ID, id));
    p = calloc(1, sizeof(*p));
    VTSM_ENSURE_GOTO(p, VTSM_E_NOMEM, "pending request");
    p->id = id;
    p->op = op;
    p->done_fn = done;
    p->done_ctx = ctx;
    st = send_msg(h, msg);
    if (st != VTSM_OK) {
        if (st == VTSM_E_CLOSED || st == VTSM_E_IO)
            h->dead = st; /* other verbs complete at the next dispatch */
        goto out;
    }
    p->next = h->pend;
    h->pend = p;
    if (id_out)
        *id_out = id;
    p = NULL;
out:
    free(p);
    if (msg)
        cbor_decref(&msg);
    if (st != VTSM_OK)
        fail_local(h, st);
    return st;
}

/* ---- the blocking form: start + dispatch until done ---- */

struct waiter {
    struct vtsm_host *h;
    bool done;
    vtsm_status st;
    cbor_item_t *result;
    struct vtsm_host_error err;
};

static void waiter_done(void *ctx, vtsm_status st, const cbor_item_t *result)
{
    struct waiter *w = ctx;
    w->done = true;
    w->st = st;
    w->result = result ? cbor_incref((cbor_item_t *)result) : NULL;
    if (st != VTSM_OK)
        w->err = w->h->last;
}

/* Give up on verb id without completing it: DOE_PENDING for it is refused from now on
 * and its pending exchanges are cancelled. */
static void abandon(struct vtsm_host *h, uint64_t id)
{
    struct pending *p = find_pending(h, id);
    if (!p)
        return;
    unlink_pending(h, p);
    cancel_exchanges(h, id, false);
    free(p);
}

/* Wait for the verb w belongs to (id), servicing everything else meanwhile. */
static vtsm_status wait_for(struct vtsm_host *h, uint64_t id, struct waiter *w, int timeout_ms,
                            cbor_item_t **result)
{
    vtsm_status st = VTSM_OK;
    while (!w->done) {
        st = vtsm_host_dispatch(h);
        if (w->done || st != VTSM_OK)
            break;
        struct pollfd pfd = {.fd = h->fd, .events = POLLIN};
        int r = poll(&pfd, 1, timeout_ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            fail_all(h, vtsm_fail(VTSM_E_IO, "poll: %s", strerror(errno)));
            break;
        }
        if (r == 0) {
            st = vtsm_fail(VTSM_E_TIMEOUT, "no answer from the TSM within %d ms", timeout_ms);
            break;
        }
    }
    if (!w->done) {
        abandon(h, id);
        return fail_local(h, st);
    }
    st = w->st;
    if (st != VTSM_OK)
        h->last = w->err;
    /* On success the RESULT map; on a TSM-reported failure the ERROR message (it may
     * carry a partial report, e.g. the evidence of a refused device_connect). */
    if (result)
        *result = w->result;
    else if (w->result)
        cbor_decref(&w->result);
    return st;
}

static vtsm_status run_timeout(struct vtsm_host *h, unsigned op, cbor_item_t *msg, int timeout_ms,
                               cbor_item_t **result)
{
    struct waiter w = {.h = h};
    uint64_t id = 0;
    if (result)
        *result = NULL;
    VTSM_GUARD(start(h, op, msg, waiter_done, &w, &id));
    return wait_for(h, id, &w, timeout_ms, result);
}

static vtsm_status run(struct vtsm_host *h, unsigned op, cbor_item_t *msg, cbor_item_t **result)
{
    return run_timeout(h, op, msg, h->timeout_ms, result);
}

static vtsm_status check_dev(struct vtsm_host *h, const char *dev)
{
    vtsm_status st = vtsm_abi_check_dev(dev);
    return st == VTSM_OK ? st : fail_local(h, st);
}

/* A request map holding "dev". */
static cbor_item_t *dev_msg(const char *dev)
{
    cbor_item_t *m = vtsm_abi_map_new();
    if (m && dev && vtsm_abi_put_tstr(m, VTSM_ABI_K_DEV, dev))
        cbor_decref(&m);
    return m;
}

/* Copy the pairs of src (text keys) into dst, replacing keys dst already has. */
static vtsm_status merge(cbor_item_t *dst, const cbor_item_t *src)
{
    VTSM_ENSURE(cbor_isa_map(src), VTSM_E_INVAL, "request fields must be a map");
    size_t n = cbor_map_size(src);
    struct cbor_pair *pairs = cbor_map_handle(src);
    for (size_t i = 0; i < n; i++) {
        const cbor_item_t *k = pairs[i].key;
        VTSM_ENSURE(k && cbor_isa_string(k) && cbor_string_is_definite(k), VTSM_E_INVAL,
                    "request keys must be text strings");
        char key[128];
        size_t kl = cbor_string_length(k);
        VTSM_ENSURE(kl < sizeof(key), VTSM_E_INVAL, "request key too long");
        memcpy(key, cbor_string_handle(k), kl);
        key[kl] = '\0';
        VTSM_GUARD(vtsm_abi_put_item(dst, key, cbor_incref(pairs[i].value)));
    }
    return VTSM_OK;
}

static vtsm_status connect_msg(struct vtsm_host *h, const char *dev,
                               const struct vtsm_host_connect_opts *o, cbor_item_t **out)
{
    vtsm_status st;
    *out = NULL;
    VTSM_GUARD(check_dev(h, dev));
    cbor_item_t *m = dev_msg(dev);
    VTSM_ENSURE_GOTO(m, VTSM_E_NOMEM, "building DEVICE_CONNECT");
    st = VTSM_OK;
    if (o) {
        VTSM_ENSURE_GOTO(o->slot <= VTSM_ABI_MAX_SLOT, VTSM_E_ABI_ARG, "slot %u out of range 0..%u",
                         o->slot, VTSM_ABI_MAX_SLOT);
        if (o->slot)
            VTSM_GUARD_GOTO(vtsm_abi_put_uint(m, VTSM_ABI_K_SLOT, o->slot));
        if (o->allow_untrusted)
            VTSM_GUARD_GOTO(vtsm_abi_put_bool(m, VTSM_ABI_K_ALLOW_UNTRUSTED, true));
        if (o->min_version)
            VTSM_GUARD_GOTO(vtsm_abi_put_uint(m, VTSM_ABI_K_MIN_VERSION, o->min_version));
        if (o->max_version)
            VTSM_GUARD_GOTO(vtsm_abi_put_uint(m, VTSM_ABI_K_MAX_VERSION, o->max_version));
        if (o->asym)
            VTSM_GUARD_GOTO(vtsm_abi_put_tstr(m, VTSM_ABI_K_ASYM, o->asym));
        if (o->hash)
            VTSM_GUARD_GOTO(vtsm_abi_put_tstr(m, VTSM_ABI_K_HASH, o->hash));
        VTSM_ENSURE_GOTO(o->ide_streams <= VTSM_ABI_IDE_STREAMS_MAX, VTSM_E_ABI_ARG,
                         "ide_streams %u out of range 0..%u", o->ide_streams,
                         VTSM_ABI_IDE_STREAMS_MAX);
        if (o->ide_streams)
            VTSM_GUARD_GOTO(vtsm_abi_put_uint(m, VTSM_ABI_K_IDE_STREAMS, o->ide_streams));
        if (o->ide_only)
            VTSM_GUARD_GOTO(vtsm_abi_put_bool(m, VTSM_ABI_K_IDE_ONLY, true));
        if (o->challenge)
            VTSM_GUARD_GOTO(vtsm_abi_put_bool(m, VTSM_ABI_K_CHALLENGE, true));
        if (o->ide_lenient)
            VTSM_GUARD_GOTO(vtsm_abi_put_bool(m, VTSM_ABI_K_IDE_LENIENT, true));
        if (o->stream_ids) {
            VTSM_ENSURE_GOTO(o->n_stream_ids >= 1 && o->n_stream_ids <= VTSM_ABI_IDE_STREAMS_MAX,
                             VTSM_E_ABI_ARG, "stream_ids: %zu IDs, 1..%u", o->n_stream_ids,
                             VTSM_ABI_IDE_STREAMS_MAX);
            VTSM_GUARD_GOTO(
                vtsm_abi_put_bytes(m, VTSM_ABI_K_STREAM_IDS, o->stream_ids, o->n_stream_ids));
        }
        if (o->ide_link)
            VTSM_GUARD_GOTO(vtsm_abi_put_bool(m, VTSM_ABI_K_IDE_LINK, true));
        if (o->ide_addr_ranges)
            VTSM_GUARD_GOTO(vtsm_abi_put_bytes(m, VTSM_ABI_K_IDE_ADDR_RANGES, o->ide_addr_ranges,
                                               o->ide_addr_ranges_len));
        if (o->extra)
            VTSM_GUARD_GOTO(merge(m, o->extra));
    }
    *out = m;
    m = NULL;
out:
    if (m)
        cbor_decref(&m);
    return st == VTSM_OK ? st : fail_local(h, st);
}

vtsm_status vtsm_host_device_add_cbor(struct vtsm_host *h, const char *dev, int root_port)
{
    VTSM_GUARD(check_dev(h, dev));
    cbor_item_t *m = dev_msg(dev);
    if (m && root_port >= 0 && vtsm_abi_put_uint(m, VTSM_ABI_K_ROOT_PORT, (uint64_t)root_port))
        cbor_decref(&m);
    return run(h, VTSM_ABI_OP_DEVICE_ADD, m, NULL);
}

vtsm_status vtsm_host_device_remove_cbor(struct vtsm_host *h, const char *dev)
{
    VTSM_GUARD(check_dev(h, dev));
    return run(h, VTSM_ABI_OP_DEVICE_REMOVE, dev_msg(dev), NULL);
}

vtsm_status vtsm_host_device_connect_cbor(struct vtsm_host *h, const char *dev,
                                          const struct vtsm_host_connect_opts *opts,
                                          cbor_item_t **result)
{
    cbor_item_t *m;
    if (result)
        *result = NULL;
    VTSM_GUARD(connect_msg(h, dev, opts, &m));
    return run(h, VTSM_ABI_OP_DEVICE_CONNECT, m, result);
}

/* DEVICE_RECLAIM {dev, ? force}. */
static vtsm_status reclaim_msg(struct vtsm_host *h, const char *dev, bool force, cbor_item_t **out)
{
    *out = NULL;
    VTSM_GUARD(check_dev(h, dev));
    cbor_item_t *m = dev_msg(dev);
    if (m && force && vtsm_abi_put_bool(m, VTSM_ABI_K_FORCE, true) != VTSM_OK)
        cbor_decref(&m);
    if (!m)
        return fail_local(h, vtsm_fail(VTSM_E_NOMEM, "building DEVICE_RECLAIM"));
    *out = m;
    return VTSM_OK;
}

vtsm_status vtsm_host_device_reclaim_opts_cbor(struct vtsm_host *h, const char *dev, bool force,
                                               cbor_item_t **result)
{
    cbor_item_t *m;
    if (result)
        *result = NULL;
    VTSM_GUARD(reclaim_msg(h, dev, force, &m));
    return run(h, VTSM_ABI_OP_DEVICE_RECLAIM, m, result);
}

vtsm_status vtsm_host_device_reclaim_cbor(struct vtsm_host *h, const char *dev,
                                          cbor_item_t **result)
{
    return vtsm_host_device_reclaim_opts_cbor(h, dev, false, result);
}

/* Append the entries of the array at key in page to *acc (a new growable array). */
static vtsm_status gather(cbor_item_t **acc, const cbor_item_t *page, const char *key)
{
    const cbor_item_t *arr = vtsm_abi_find(page, key);
    if (!arr)
        return VTSM_OK;
    VTSM_ENSURE(cbor_isa_array(arr), VTSM_E_ABI_ARG, "STATUS '%s' is not an array", key);
    if (!*acc)
        VTSM_ENSURE(*acc = vtsm_abi_array_new(), VTSM_E_NOMEM, "STATUS pages");
    for (size_t i = 0; i < cbor_array_size(arr); i++)
        VTSM_GUARD(vtsm_abi_push_item(*acc, cbor_incref(cbor_array_handle(arr)[i])));
    return VTSM_OK;
}

/* An unsigned field of a page, *present false if absent. */
static vtsm_status page_uint(const cbor_item_t *page, const char *key, uint64_t *v, bool *present)
{
    return vtsm_abi_opt_uint(page, key, v, present);
}

/*
 * STATUS, every page: the TSM answers in pages that each fit one message (docs/abi.md
 * 7.5); this asks for the next page until none is left and gives one result with every
 * device (or every TDI of the one device) and every TVM, without the next_* cursors.
 */
vtsm_status vtsm_host_status_cbor(struct vtsm_host *h, const char *dev, cbor_item_t **result)
{
    cbor_item_t *first = NULL, *devices = NULL, *tdis = NULL, *tvms = NULL, *out = NULL;
    uint64_t offset = 0, tdi_offset = 0, tvm_offset = 0;
    vtsm_status st = VTSM_OK;
    if (result)
        *result = NULL;
    if (dev)
        VTSM_GUARD(check_dev(h, dev));
    for (unsigned pages = 0;; pages++) {
        cbor_item_t *req = dev_msg(dev), *page = NULL;
        if (req && offset)
            st = vtsm_abi_put_uint(req, VTSM_ABI_K_OFFSET, offset);
        if (req && tdi_offset && st == VTSM_OK)
            st = vtsm_abi_put_uint(req, VTSM_ABI_K_TDI_OFFSET, tdi_offset);
        if (req && tvm_offset && st == VTSM_OK)
            st = vtsm_abi_put_uint(req, VTSM_ABI_K_TVM_OFFSET, tvm_offset);
        if (!req || st) {
            if (req)
                cbor_decref(&req);
            st = fail_local(h, vtsm_fail(VTSM_E_NOMEM, "building request"));
            goto out;
        }
        st = run(h, VTSM_ABI_OP_STATUS, req, &page);
        if (st) { /* the ERROR (if any) is the result */
            if (result)
                *result = page;
            else if (page)
                cbor_decref(&page);
            goto out;
        }
        if (!first)
            first = cbor_incref(page);
        uint64_t next = 0, next_tdi = 0, next_tvm = 0, total = 0, total_tvms = 0;
        bool has_next = false, has_tdi = false, has_tvm = false, has_total = false, has_tt = false;
        if (dev) {
            const cbor_item_t *d = vtsm_abi_find(page, VTSM_ABI_K_DEVICES);
            if (d && cbor_isa_array(d) && cbor_array_size(d) == 1)
                st = gather(&tdis, cbor_array_handle(d)[0], VTSM_ABI_K_TDIS);
        } else {
            st = gather(&devices, page, VTSM_ABI_K_DEVICES);
            if (st == VTSM_OK)
                st = gather(&tvms, page, VTSM_ABI_K_TVMS);
        }
        if (st == VTSM_OK)
            st = page_uint(page, VTSM_ABI_K_NEXT_OFFSET, &next, &has_next);
        if (st == VTSM_OK)
            st = page_uint(page, VTSM_ABI_K_NEXT_TDI_OFFSET, &next_tdi, &has_tdi);
        if (st == VTSM_OK)
            st = page_uint(page, VTSM_ABI_K_NEXT_TVM_OFFSET, &next_tvm, &has_tvm);
        if (st == VTSM_OK)
            st = page_uint(page, VTSM_ABI_K_TOTAL_DEVICES, &total, &has_total);
        if (st == VTSM_OK)
            st = page_uint(page, VTSM_ABI_K_TOTAL_TVMS, &total_tvms, &has_tt);
        cbor_decref(&page);
        if (st) {
            st = fail_local(h, st);
            goto out;
        }
        if (!has_next && !has_tdi && !has_tvm)
            break;
        /* each cursor must move on, and a page count bounds a TSM that says otherwise */
        bool moved = (has_next && next > offset) || (has_tdi && next_tdi > tdi_offset) ||
                     (has_tvm && next_tvm > tvm_offset);
        if (!moved || pages > 100000) {
            st = fail_local(h, vtsm_fail(VTSM_E_ABI_ARG, "STATUS pages do not advance"));
            goto out;
        }
        tdi_offset = has_tdi ? next_tdi : tdi_offset;
        offset = has_next ? next : (has_total ? total : offset);
        tvm_offset = has_tvm ? next_tvm : (has_tt ? total_tvms : tvm_offset);
    }
    /* the first page's fields, with the lists of every page */
    out = vtsm_abi_map_new();
    st = out ? VTSM_OK : VTSM_E_NOMEM;
    for (size_t i = 0; st == VTSM_OK && i < cbor_map_size(first); i++) {
        const struct cbor_pair *pr = &cbor_map_handle(first)[i];
        char key[64];
        size_t kl = cbor_string_length(pr->key);
        if (!cbor_isa_string(pr->key) || kl >= sizeof(key))
            continue;
        memcpy(key, cbor_string_handle(pr->key), kl);
        key[kl] = '\0';
        if (strncmp(key, "next_", 5) == 0 || (!dev && strcmp(key, VTSM_ABI_K_TVMS) == 0) ||
            (!dev && strcmp(key, VTSM_ABI_K_DEVICES) == 0))
            continue;
        if (dev && strcmp(key, VTSM_ABI_K_DEVICES) == 0 && tdis) {
            /* the device's entry with every TDI */
            const cbor_item_t *d = cbor_array_handle(pr->value)[0];
            cbor_item_t *nd = vtsm_abi_map_new(), *arr = vtsm_abi_array_new();
            st = nd && arr ? merge(nd, d) : VTSM_E_NOMEM;
            if (st == VTSM_OK) {
                st = vtsm_abi_put_item(nd, VTSM_ABI_K_TDIS, cbor_incref(tdis));
                if (st == VTSM_OK)
                    st = vtsm_abi_push_item(arr, cbor_incref(nd));
                if (st == VTSM_OK)
                    st = vtsm_abi_put_item(out, key, cbor_incref(arr));
            }
            if (nd)
                cbor_decref(&nd);
            if (arr)
                cbor_decref(&arr);
            continue;
        }
        st = vtsm_abi_put_item(out, key, cbor_incref(pr->value));
    }
    if (st == VTSM_OK && devices)
        st = vtsm_abi_put_item(out, VTSM_ABI_K_DEVICES, cbor_incref(devices));
    if (st == VTSM_OK && tvms)
        st = vtsm_abi_put_item(out, VTSM_ABI_K_TVMS, cbor_incref(tvms));
    if (st) {
        st = fail_local(h, vtsm_fail(st, "gathering STATUS pages"));
    } else if (result) {
        *result = out;
        out = NULL;
    }
out:
    if (first)
        cbor_decref(&first);
    if (devices)
        cbor_decref(&devices);
    if (tdis)
        cbor_decref(&tdis);
    if (tvms)
        cbor_decref(&tvms);
    if (out)
        cbor_decref(&out);
    return st;
}

/* IDE_REFRESH / IDE_LINK_CHECK {dev}. */
static vtsm_status dev_only_msg(struct vtsm_host *h, const char *dev, cbor_item_t **out)
{
    *out = NULL;
    VTSM_GUARD(check_dev(h, dev));
    *out = dev_msg(dev);
    return *out ? VTSM_OK : fail_local(h, vtsm_fail(VTSM_E_NOMEM, "building request"));
}

/* TVM_CREATE {? name, guest_key}. */
static vtsm_status tvm_create_msg(struct vtsm_host *h, const char *name,
                                  const uint8_t guest_key[VTSM_ABI_GUEST_KEY_SIZE],
                                  cbor_item_t **out)
{
    *out = NULL;
    if (!guest_key)
        return fail_local(h, vtsm_fail(VTSM_E_INVAL, "TVM_CREATE needs the guest's public key"));
    cbor_item_t *m = vtsm_abi_map_new();
    if (m && name && vtsm_abi_put_tstr(m, VTSM_ABI_K_NAME, name) != VTSM_OK)
        cbor_decref(&m);
    if (m &&
        vtsm_abi_put_bytes(m, VTSM_ABI_K_GUEST_KEY, guest_key, VTSM_ABI_GUEST_KEY_SIZE) != VTSM_OK)
        cbor_decref(&m);
    if (!m)
        return fail_local(h, vtsm_fail(VTSM_E_NOMEM, "building TVM_CREATE"));
    *out = m;
    return VTSM_OK;
}

/* TVM_DESTROY {tvm}. */
static vtsm_status tvm_msg(struct vtsm_host *h, uint32_t tvm, cbor_item_t **out)
{
    cbor_item_t *m = vtsm_abi_map_new();
    if (m && vtsm_abi_put_uint(m, VTSM_ABI_K_TVM, tvm) != VTSM_OK)
        cbor_decref(&m);
    *out = m;
    return m ? VTSM_OK : fail_local(h, vtsm_fail(VTSM_E_NOMEM, "building TVM_DESTROY"));
}

/* TDI_BIND {dev, tdi, tvm, ? lock_flags} (bind) or TDI_UNBIND {dev, tdi}. */
static vtsm_status tdi_msg(struct vtsm_host *h, const char *dev, uint32_t tdi, bool bind,
                           uint32_t tvm, uint32_t lock_flags, cbor_item_t **out)
{
    *out = NULL;
    VTSM_GUARD(check_dev(h, dev));
    cbor_item_t *m = dev_msg(dev);
    if (m && vtsm_abi_put_uint(m, VTSM_ABI_K_TDI, tdi) != VTSM_OK)
        cbor_decref(&m);
    if (m && bind && vtsm_abi_put_uint(m, VTSM_ABI_K_TVM, tvm) != VTSM_OK)
        cbor_decref(&m);
    if (m && bind && lock_flags &&
        vtsm_abi_put_uint(m, VTSM_ABI_K_LOCK_FLAGS, lock_flags) != VTSM_OK)
        cbor_decref(&m);
    if (!m)
        return fail_local(h,
                          vtsm_fail(VTSM_E_NOMEM, "building %s", bind ? "TDI_BIND" : "TDI_UNBIND"));
    *out = m;
    return VTSM_OK;
}

static vtsm_status call_msg(struct vtsm_host *h, unsigned op, const cbor_item_t *req,
                            cbor_item_t **out)
{
    *out = NULL;
    if (op == VTSM_ABI_OP_HELLO || op == VTSM_ABI_OP_DOE_RESPONSE || op >= 0x80)
        return fail_local(h, vtsm_fail(VTSM_E_INVAL, "op 0x%x is not a verb", op));
    cbor_item_t *m = vtsm_abi_map_new();
    if (!m)
        return fail_local(h, vtsm_fail(VTSM_E_NOMEM, "building request"));
    vtsm_status st = req ? merge(m, req) : VTSM_OK;
    if (st != VTSM_OK) {
        cbor_decref(&m);
        return fail_local(h, st);
    }
    *out = m;
    return VTSM_OK;
}

vtsm_status vtsm_host_call_cbor(struct vtsm_host *h, unsigned op, const cbor_item_t *req,
                                cbor_item_t **result)
{
    cbor_item_t *m;
    if (result)
        *result = NULL;
    VTSM_GUARD(call_msg(h, op, req, &m));
    return run(h, op, m, result);
}

vtsm_status vtsm_host_spdm_key_update_cbor(struct vtsm_host *h, const char *dev, bool all,
                                           cbor_item_t **result)
{
    cbor_item_t *m;
    if (result)
        *result = NULL;
    VTSM_GUARD(dev_only_msg(h, dev, &m));
    if (all && vtsm_abi_put_bool(m, VTSM_ABI_K_ALL, true) != VTSM_OK) {
        cbor_decref(&m);
        return fail_local(h, vtsm_fail(VTSM_E_NOMEM, "building SPDM_KEY_UPDATE"));
    }
    return run(h, VTSM_ABI_OP_SPDM_KEY_UPDATE, m, result);
}

vtsm_status vtsm_host_spdm_heartbeat_cbor(struct vtsm_host *h, const char *dev,
                                          cbor_item_t **result)
{
    cbor_item_t *m;
    if (result)
        *result = NULL;
    VTSM_GUARD(dev_only_msg(h, dev, &m));
    return run(h, VTSM_ABI_OP_SPDM_HEARTBEAT, m, result);
}

vtsm_status vtsm_host_ide_refresh_cbor(struct vtsm_host *h, const char *dev, cbor_item_t **result)
{
    cbor_item_t *m;
    if (result)
        *result = NULL;
    VTSM_GUARD(dev_only_msg(h, dev, &m));
    return run(h, VTSM_ABI_OP_IDE_REFRESH, m, result);
}

vtsm_status vtsm_host_ide_link_check_cbor(struct vtsm_host *h, const char *dev,
                                          cbor_item_t **result)
{
    cbor_item_t *m;
    if (result)
        *result = NULL;
    VTSM_GUARD(dev_only_msg(h, dev, &m));
    return run(h, VTSM_ABI_OP_IDE_LINK_CHECK, m, result);
}

vtsm_status vtsm_host_tvm_create_cbor(struct vtsm_host *h, const char *name,
                                      const uint8_t guest_key[VTSM_ABI_GUEST_KEY_SIZE],
                                      uint32_t *tvm, cbor_item_t **result)
{
    cbor_item_t *m, *res = NULL;
    if (result)
        *result = NULL;
    VTSM_GUARD(tvm_create_msg(h, name, guest_key, &m));
    vtsm_status st = run(h, VTSM_ABI_OP_TVM_CREATE, m, &res);
    if (st == VTSM_OK) {
        uint64_t v = 0;
        st = vtsm_abi_get_uint(res, VTSM_ABI_K_TVM, &v);
        if (st == VTSM_OK && (v == 0 || v > UINT32_MAX))
            st = vtsm_fail(VTSM_E_ABI_ARG, "TVM_CREATE result: tvm %llu out of range 1..%u",
                           (unsigned long long)v, UINT32_MAX);
        if (st != VTSM_OK) {
            cbor_decref(&res);
            return fail_local(h, st);
        }
        if (tvm)
            *tvm = (uint32_t)v;
    }
    if (result)
        *result = res;
    else if (res)
        cbor_decref(&res);
    return st;
}

vtsm_status vtsm_host_tvm_destroy_cbor(struct vtsm_host *h, uint32_t tvm, cbor_item_t **result)
{
    cbor_item_t *m;
    if (result)
        *result = NULL;
    VTSM_GUARD(tvm_msg(h, tvm, &m));
    return run(h, VTSM_ABI_OP_TVM_DESTROY, m, result);
}

vtsm_status vtsm_host_tdi_bind_cbor(struct vtsm_host *h, const char *dev, uint32_t tdi,
                                    uint32_t tvm, uint32_t lock_flags, cbor_item_t **result)
{
    cbor_item_t *m;
    if (result)
        *result = NULL;
    VTSM_GUARD(tdi_msg(h, dev, tdi, true, tvm, lock_flags, &m));
    return run(h, VTSM_ABI_OP_TDI_BIND, m, result);
}

vtsm_status vtsm_host_tdi_unbind_cbor(struct vtsm_host *h, const char *dev, uint32_t tdi,
                                      cbor_item_t **result)
{
    cbor_item_t *m;
    if (result)
        *result = NULL;
    VTSM_GUARD(tdi_msg(h, dev, tdi, false, 0, 0, &m));
    return run(h, VTSM_ABI_OP_TDI_UNBIND, m, result);
}

vtsm_status vtsm_host_guest_relay_cbor(struct vtsm_host *h, const cbor_item_t *envelope,
                                       cbor_item_t **result)
{
    if (result)
        *result = NULL;
    if (!envelope)
        return fail_local(h, vtsm_fail(VTSM_E_INVAL, "GUEST_REQUEST needs the guest's envelope"));
    return vtsm_host_call_cbor(h, VTSM_ABI_OP_GUEST_REQUEST, envelope, result);
}

/* ---- fd-driven ---- */

int vtsm_host_fd(const struct vtsm_host *h)
{
    return h->fd;
}

size_t vtsm_host_pending(const struct vtsm_host *h)
{
    size_t n = 0;
    for (const struct pending *p = h->pend; p; p = p->next)
        n++;
    return n;
}

vtsm_status vtsm_host_connect_start_cbor(struct vtsm_host *h, const char *dev,
                                         const struct vtsm_host_connect_opts *opts,
                                         vtsm_host_done_cbor_fn done, void *ctx)
{
    cbor_item_t *m;
    VTSM_GUARD(connect_msg(h, dev, opts, &m));
    return start(h, VTSM_ABI_OP_DEVICE_CONNECT, m, done, ctx, NULL);
}

vtsm_status vtsm_host_reclaim_start_cbor(struct vtsm_host *h, const char *dev,
                                         vtsm_host_done_cbor_fn done, void *ctx)
{
    return vtsm_host_reclaim_opts_start_cbor(h, dev, false, done, ctx);
}

vtsm_status vtsm_host_reclaim_opts_start_cbor(struct vtsm_host *h, const char *dev, bool force,
                                              vtsm_host_done_cbor_fn done, void *ctx)
{
    cbor_item_t *m;
    VTSM_GUARD(reclaim_msg(h, dev, force, &m));
    return start(h, VTSM_ABI_OP_DEVICE_RECLAIM, m, done, ctx, NULL);
}

vtsm_status vtsm_host_ide_refresh_start_cbor(struct vtsm_host *h, const char *dev,
                                             vtsm_host_done_cbor_fn done, void *ctx)
{
    cbor_item_t *m;
    VTSM_GUARD(dev_only_msg(h, dev, &m));
    return start(h, VTSM_ABI_OP_IDE_REFRESH, m, done, ctx, NULL);
}

vtsm_status vtsm_host_ide_link_check_start_cbor(struct vtsm_host *h, const char *dev,
                                                vtsm_host_done_cbor_fn done, void *ctx)
{
    cbor_item_t *m;
    VTSM_GUARD(dev_only_msg(h, dev, &m));
    return start(h, VTSM_ABI_OP_IDE_LINK_CHECK, m, done, ctx, NULL);
}

vtsm_status vtsm_host_tvm_create_start_cbor(struct vtsm_host *h, const char *name,
                                            const uint8_t guest_key[VTSM_ABI_GUEST_KEY_SIZE],
                                            vtsm_host_done_cbor_fn done, void *ctx)
{
    cbor_item_t *m;
    VTSM_GUARD(tvm_create_msg(h, name, guest_key, &m));
    return start(h, VTSM_ABI_OP_TVM_CREATE, m, done, ctx, NULL);
}

vtsm_status vtsm_host_tvm_destroy_start_cbor(struct vtsm_host *h, uint32_t tvm,
                                             vtsm_host_done_cbor_fn done, void *ctx)
{
    cbor_item_t *m;
    VTSM_GUARD(tvm_msg(h, tvm, &m));
    return start(h, VTSM_ABI_OP_TVM_DESTROY, m, done, ctx, NULL);
}

vtsm_status vtsm_host_tdi_bind_start_cbor(struct vtsm_host *h, const char *dev, uint32_t tdi,
                                          uint32_t tvm, uint32_t lock_flags,
                                          vtsm_host_done_cbor_fn done, void *ctx)
{
    cbor_item_t *m;
    VTSM_GUARD(tdi_msg(h, dev, tdi, true, tvm, lock_flags, &m));
    return start(h, VTSM_ABI_OP_TDI_BIND, m, done, ctx, NULL);
}

vtsm_status vtsm_host_tdi_unbind_start_cbor(struct vtsm_host *h, const char *dev, uint32_t tdi,
                                            vtsm_host_done_cbor_fn done, void *ctx)
{
    cbor_item_t *m;
    VTSM_GUARD(tdi_msg(h, dev, tdi, false, 0, 0, &m));
    return start(h, VTSM_ABI_OP_TDI_UNBIND, m, done, ctx, NULL);
}

vtsm_status vtsm_host_guest_relay_start_cbor(struct vtsm_host *h, const cbor_item_t *envelope,
                                             vtsm_host_done_cbor_fn done, void *ctx)
{
    if (!envelope)
        return fail_local(h, vtsm_fail(VTSM_E_INVAL, "GUEST_REQUEST needs the guest's envelope"));
    return vtsm_host_call_start_cbor(h, VTSM_ABI_OP_GUEST_REQUEST, envelope, done, ctx);
}

vtsm_status vtsm_host_call_start_cbor(struct vtsm_host *h, unsigned op, const cbor_item_t *req,
                                      vtsm_host_done_cbor_fn done, void *ctx)
{
    cbor_item_t *m;
    VTSM_GUARD(call_msg(h, op, req, &m));
    return start(h, op, m, done, ctx, NULL);
}

vtsm_status vtsm_host_dispatch(struct vtsm_host *h)
{
    return pump(h);
}

/* ---- DOE callbacks, tracing, settings ---- */

/* Set one channel of a device; the entry goes when both channels are empty. */
static vtsm_status register_cb(struct vtsm_host *h, const char *dev, bool link,
                               const struct chan_cb *set)
{
    VTSM_GUARD(check_dev(h, dev));
    bool empty = !set->fn && !set->start;
    struct dev_cb **pp = &h->devs;
    while (*pp && strcmp((*pp)->dev, dev) != 0)
        pp = &(*pp)->next;
    if (!*pp) {
        if (empty)
            return VTSM_OK;
        *pp = calloc(1, sizeof(**pp));
        if (!*pp)
            return fail_local(h, vtsm_fail(VTSM_E_NOMEM, "callback entry"));
        copy_str((*pp)->dev, sizeof((*pp)->dev), dev);
    }
    struct dev_cb *cb = *pp;
    struct chan_cb *c = link ? &cb->link : &cb->doe;
    *c = empty ? (struct chan_cb){0} : *set;
    if (!cb->doe.fn && !cb->doe.start && !cb->link.fn && !cb->link.start) {
        *pp = cb->next;
        free(cb);
    }
    return VTSM_OK;
}

vtsm_status vtsm_host_register_doe(struct vtsm_host *h, const char *dev, vtsm_doe_fn fn, void *ctx)
{
    return register_cb(h, dev, false, &(struct chan_cb){.fn = fn, .ctx = ctx});
}

vtsm_status vtsm_host_register_link(struct vtsm_host *h, const char *dev, vtsm_doe_fn fn, void *ctx)
{
    return register_cb(h, dev, true, &(struct chan_cb){.fn = fn, .ctx = ctx});
}

vtsm_status vtsm_host_register_doe_async(struct vtsm_host *h, const char *dev,
                                         vtsm_doe_start_fn start_fn, vtsm_doe_cancel_fn cancel,
                                         void *ctx)
{
    return register_cb(h, dev, false,
                       &(struct chan_cb){.start = start_fn, .cancel = cancel, .ctx = ctx});
}

vtsm_status vtsm_host_register_link_async(struct vtsm_host *h, const char *dev,
                                          vtsm_doe_start_fn start_fn, vtsm_doe_cancel_fn cancel,
                                          void *ctx)
{
    return register_cb(h, dev, true,
                       &(struct chan_cb){.start = start_fn, .cancel = cancel, .ctx = ctx});
}

void vtsm_host_set_trace(struct vtsm_host *h, vtsm_host_trace_fn fn, void *ctx)
{
    h->trace = fn;
    h->trace_ctx = fn ? ctx : NULL;
}

void vtsm_host_set_timeout(struct vtsm_host *h, int timeout_ms)
{
    h->timeout_ms = timeout_ms < 0 ? -1 : timeout_ms;
}

unsigned vtsm_host_abi_version(const struct vtsm_host *h)
{
    return h->version;
}

const char *vtsm_host_tsm_name(const struct vtsm_host *h)
{
    return h->tsm;
}

enum vtsm_role vtsm_host_role(const struct vtsm_host *h)
{
    return (enum vtsm_role)h->role;
}

/* ---- open / close ---- */

/* Unix stream socket connected to path. Failing to connect is E_CLOSED ("cannot reach"). */
static vtsm_status connect_unix(const char *socket_path, int *fd)
{
    char def[sizeof(((struct sockaddr_un *)0)->sun_path)];
    if (!socket_path) {
        socket_path = vtsm_default_socket_path(def, sizeof(def));
        VTSM_ENSURE(socket_path, VTSM_E_INVAL, "default socket path too long");
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t n = strlen(socket_path);
    VTSM_ENSURE(n < sizeof(sa.sun_path), VTSM_E_INVAL, "socket path too long: %s", socket_path);
    memcpy(sa.sun_path, socket_path, n + 1);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    VTSM_ENSURE(s >= 0, VTSM_E_IO, "socket: %s", strerror(errno));
    if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int e = errno;
        close(s);
        return vtsm_fail(VTSM_E_CLOSED, "cannot reach the TSM at %s: %s", socket_path, strerror(e));
    }
    *fd = s;
    return VTSM_OK;
}

vtsm_status vtsm_host_open_cfg(const struct vtsm_host_config *cfg, struct vtsm_host **out)
{
    vtsm_status st;
    cbor_item_t *res = NULL;
    struct vtsm_host *h = NULL;
    int fd = cfg && cfg->use_fd ? cfg->fd : -1;
    if (out)
        *out = NULL;
    VTSM_ENSURE_GOTO(cfg && out, VTSM_E_INVAL, "NULL argument");
    enum vtsm_abi_role role =
        cfg->role == VTSM_ROLE_NONE ? VTSM_ABI_ROLE_HOST : (enum vtsm_abi_role)cfg->role;
    VTSM_ENSURE_GOTO(vtsm_abi_role_name(role), VTSM_E_INVAL, "unknown role %d", (int)cfg->role);
    if (fd < 0)
        VTSM_GUARD_GOTO(connect_unix(cfg->socket_path, &fd));
    h = calloc(1, sizeof(*h));
    VTSM_ENSURE_GOTO(h, VTSM_E_NOMEM, "host handle");
    h->fd = fd;
    fd = -1;
    h->next_id = 1;
    h->timeout_ms = -1;
    h->trace = cfg->trace;
    h->trace_ctx = cfg->trace_ctx;
    vtsm_abi_reader_init(&h->rd);
    int fl = fcntl(h->fd, F_GETFL);
    VTSM_ENSURE_GOTO(fl >= 0 && fcntl(h->fd, F_SETFL, fl | O_NONBLOCK) == 0, VTSM_E_IO,
                     "fcntl(O_NONBLOCK): %s", strerror(errno));

    /* HELLO (docs/abi.md "HELLO") must be the first message */
    st = run_timeout(h, VTSM_ABI_OP_HELLO,
                     vtsm_abi_hello_msg(0, role, cfg->client ? cfg->client : "vtsm-host-shim"),
                     HELLO_TIMEOUT_MS, &res);
    if (st != VTSM_OK) {
        /* keep the TSM's words for the caller: the handle is gone after this */
        st = vtsm_refuse(st, h->last.rule, "%s", h->last.detail);
        goto out;
    }
    uint64_t ver = 0;
    VTSM_GUARD_GOTO(vtsm_abi_get_uint(res, VTSM_ABI_K_VERSION, &ver));
    VTSM_ENSURE_GOTO(ver == VTSM_ABI_VERSION, VTSM_E_ABI_VERSION,
                     "TSM chose ABI version %llu, we offered %u", (unsigned long long)ver,
                     VTSM_ABI_VERSION);
    h->version = (unsigned)ver;
    /* the result may name the role granted: it must be the one asked for */
    char granted[16];
    bool here = false;
    VTSM_GUARD_GOTO(vtsm_abi_opt_tstr(res, VTSM_ABI_K_ROLE, granted, sizeof(granted), &here));
    VTSM_ENSURE_GOTO(!here || vtsm_abi_role_parse(granted) == role, VTSM_E_ABI_ROLE,
                     "TSM granted role '%s', we asked for '%s'", granted, vtsm_abi_role_name(role));
    h->role = role;
    if (vtsm_abi_opt_tstr(res, VTSM_ABI_K_TSM, h->tsm, sizeof(h->tsm), &here) != VTSM_OK)
        h->tsm[0] = '\0';
    *out = h;
    h = NULL;
out:
    if (res)
        cbor_decref(&res);
    if (fd >= 0)
        close(fd);
    if (h) {
        h->trace = NULL; /* nothing more to record */
        vtsm_host_close(h);
    }
    return st;
}

vtsm_status vtsm_host_open_fd(int fd, struct vtsm_host **out)
{
    struct vtsm_host_config cfg = {.use_fd = true, .fd = fd};
    return vtsm_host_open_cfg(&cfg, out);
}

vtsm_status vtsm_host_open(const char *socket_path, struct vtsm_host **out)
{
    struct vtsm_host_config cfg = {.socket_path = socket_path};
    return vtsm_host_open_cfg(&cfg, out);
}

void vtsm_host_close(struct vtsm_host *h)
{
    if (!h)
        return;
    /* not through vtsm_fail(): closing must not overwrite the thread's error detail */
    struct vtsm_host_error e = {.status = VTSM_E_ABORTED};
    copy_str(e.name, sizeof(e.name), vtsm_status_name(VTSM_E_ABORTED));
    copy_str(e.source, sizeof(e.source), "core");
    copy_str(e.detail, sizeof(e.detail), "host handle closed");
    h->dead = VTSM_E_ABORTED;
    complete_all(h, &e);
    cancel_exchanges(h, 0, true); /* none should be left: each belonged to a verb */
    while (h->devs) {
        struct dev_cb *d = h->devs;
        h->devs = d->next;
        free(d);
    }
    vtsm_abi_reader_free(&h->rd);
    free(h->rsp);
    if (h->fd >= 0)
        close(h->fd);
    vtsm_pcap_close(h->pcap);
    free(h);
}

/* ---- the public verbs: one pair per row of VTSM_OPS_VERBS ---- */

/* The request map of a verb, checked against its row as tsmd would check it. */
static vtsm_status request_msg(struct vtsm_host *h, unsigned op, const struct vtsm_request *req,
                               cbor_item_t **out)
{
    static const struct vtsm_request none;
    const struct vtsm_abi_request *row = vtsm_abi_request_find(op);
    *out = NULL;
    if (!row || op == VTSM_ABI_OP_HELLO || op == VTSM_ABI_OP_DOE_RESPONSE)
        return fail_local(h, vtsm_fail(VTSM_E_INVAL, "op 0x%x is not a verb", op));
    vtsm_status st = vtsm_abi_req_encode(row, req ? req : &none, out);
    return st == VTSM_OK ? st : fail_local(h, st);
}

/* STATUS without a page cursor or summary: every page, merged. */
static bool status_all_pages(unsigned op, const struct vtsm_request *req)
{
    const uint64_t paging =
        VTSM_SET(SUMMARY) | VTSM_SET(OFFSET) | VTSM_SET(TDI_OFFSET) | VTSM_SET(TVM_OFFSET);
    return op == VTSM_ABI_OP_STATUS && (!req || !(req->set & paging));
}

vtsm_status vtsm_host_request(struct vtsm_host *h, unsigned op, const struct vtsm_request *req,
                              struct vtsm_result **result)
{
    cbor_item_t *m = NULL, *res = NULL;
    if (result)
        *result = NULL;
    VTSM_ENSURE(h, VTSM_E_INVAL, "NULL handle");
    VTSM_GUARD(request_msg(h, op, req, &m));
    vtsm_status st;
    if (status_all_pages(op, req)) {
        cbor_decref(&m); /* checked; the pages are asked for one by one */
        st = vtsm_host_status_cbor(h, req ? req->dev : NULL, &res);
    } else {
        st = run(h, op, m, &res);
    }
    vtsm_status taken = vtsm_result_take(st, res, result);
    return taken == st ? st : fail_local(h, taken); /* no memory for the result */
}

vtsm_status vtsm_host_request_encoded(struct vtsm_host *h, unsigned op, const uint8_t *map,
                                      size_t len, struct vtsm_result **result)
{
    cbor_item_t *m = NULL, *res = NULL;
    struct vtsm_abi_req decoded;
    if (result)
        *result = NULL;
    VTSM_ENSURE(h, VTSM_E_INVAL, "NULL handle");
    const struct vtsm_abi_request *row = vtsm_abi_request_find(op);
    if (!row || op == VTSM_ABI_OP_HELLO || op == VTSM_ABI_OP_DOE_RESPONSE)
        return fail_local(h, vtsm_fail(VTSM_E_INVAL, "op 0x%x is not a verb", op));
    vtsm_status st = vtsm_abi_decode(map, len, &m);
    if (st == VTSM_OK && (vtsm_abi_find(m, VTSM_ABI_K_OP) || vtsm_abi_find(m, VTSM_ABI_K_ID)))
        st = vtsm_refuse(VTSM_E_ABI_ARG, VTSM_RULE_ABI_9, "%s: the fields carry no op or id",
                         row->name);
    if (st == VTSM_OK)
        st = vtsm_abi_req_decode(m, row, &decoded);
    /* a decoded map is full; the request gets "op" and "id" in a copy */
    cbor_item_t *msg = st == VTSM_OK ? vtsm_abi_map_new() : NULL;
    if (st == VTSM_OK)
        st = msg ? merge(msg, m) : vtsm_fail(VTSM_E_NOMEM, "building request");
    if (m)
        cbor_decref(&m);
    if (st != VTSM_OK) {
        if (msg)
            cbor_decref(&msg);
        return fail_local(h, st);
    }
    st = run(h, op, msg, &res);
    vtsm_status taken = vtsm_result_take(st, res, result);
    return taken == st ? st : fail_local(h, taken);
}

/* The public completion of a verb started with vtsm_host_request_start. */
struct done_box {
    vtsm_host_done_fn done;
    void *ctx;
};

static void box_done(void *ctx, vtsm_status st, const cbor_item_t *result)
{
    struct done_box b = *(struct done_box *)ctx;
    free(ctx);
    struct vtsm_result *r = result ? vtsm_result_new((cbor_item_t *)result) : NULL;
    if (result && !r && st == VTSM_OK)
        st = vtsm_fail(VTSM_E_NOMEM, "result");
    b.done(b.ctx, st, r);
    vtsm_result_free(r);
}

vtsm_status vtsm_host_request_start(struct vtsm_host *h, unsigned op,
                                    const struct vtsm_request *req, vtsm_host_done_fn done,
                                    void *ctx)
{
    cbor_item_t *m = NULL;
    VTSM_ENSURE(h && done, VTSM_E_INVAL, "NULL handle or done callback");
    VTSM_GUARD(request_msg(h, op, req, &m));
    struct done_box *b = malloc(sizeof(*b));
    if (!b) {
        cbor_decref(&m);
        return fail_local(h, vtsm_fail(VTSM_E_NOMEM, "pending request"));
    }
    b->done = done;
    b->ctx = ctx;
    vtsm_status st = start(h, op, m, box_done, b, NULL);
    if (st != VTSM_OK)
        free(b);
    return st;
}

#define X_VERB(NAME, lower, code, roles, dev, keys)                                                \
    vtsm_status vtsm_host_##lower(struct vtsm_host *h, const struct vtsm_request *req,             \
                                  struct vtsm_result **result)                                     \
    {                                                                                              \
        return vtsm_host_request(h, VTSM_OP_##NAME, req, result);                                  \
    }                                                                                              \
    vtsm_status vtsm_host_##lower##_start(struct vtsm_host *h, const struct vtsm_request *req,     \
                                          vtsm_host_done_fn done, void *ctx)                       \
    {                                                                                              \
        return vtsm_host_request_start(h, VTSM_OP_##NAME, req, done, ctx);                         \
    }
VTSM_OPS_VERBS(X_VERB)
#undef X_VERB
