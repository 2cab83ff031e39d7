/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The device core: DOE data objects in and out (PCIe 6.30), DOE discovery, DSP0277
 * secured messages, and the one dispatch table that decides which SPDM request may run in
 * which state. Responders (rsp_*.c) only see requests the table let through; every
 * refusal becomes an SPDM ERROR message here and nowhere else.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "dev_internal.h"
#include "vtsm_doe.h"
#include "vtsm_guard.h"
#include "vtsm_log.h"

/* Where a request may arrive. */
#define IN_CLEAR   (1u << 0)
#define IN_SESSION (1u << 1)

struct dev_handler {
    uint8_t code;
    uint8_t where;                 /* IN_CLEAR / IN_SESSION */
    enum dev_conn_state min_state; /* connection state required before the responder runs */
    dev_rsp_fn fn;
    const char *name;
};

/*
 * DSP0274 request codes the device answers. Everything else (PSK_EXCHANGE,
 * the encapsulated requests, ...) is answered with ERROR(UnsupportedRequest), as are the
 * chunking requests without CHUNK_CAP.
 * KEY_EXCHANGE and the VCA requests are refused inside a session; FINISH, END_SESSION,
 * HEARTBEAT and KEY_UPDATE need one (outside: SessionRequired from 1.2 on, whatever the
 * connection state; there is no HANDSHAKE_IN_THE_CLEAR_CAP), and all but FINISH an
 * established one.
 * GET_CAPABILITIES and NEGOTIATE_ALGORITHMS check their exact state themselves.
 */
static const struct dev_handler handlers[] = {
    {SPDM_GET_VERSION, IN_CLEAR, DEV_CONN_NONE, dev_rsp_version, "GET_VERSION"},
    {SPDM_GET_CAPABILITIES, IN_CLEAR, DEV_CONN_NONE, dev_rsp_capabilities, "GET_CAPABILITIES"},
    {SPDM_NEGOTIATE_ALGORITHMS, IN_CLEAR, DEV_CONN_AFTER_CAPS, dev_rsp_algorithms,
     "NEGOTIATE_ALGORITHMS"},
    {SPDM_GET_DIGESTS, IN_CLEAR | IN_SESSION, DEV_CONN_NEGOTIATED, dev_rsp_digests, "GET_DIGESTS"},
    {SPDM_GET_CERTIFICATE, IN_CLEAR | IN_SESSION, DEV_CONN_NEGOTIATED, dev_rsp_certificate,
     "GET_CERTIFICATE"},
    {SPDM_GET_MEASUREMENTS, IN_CLEAR | IN_SESSION, DEV_CONN_NEGOTIATED, dev_rsp_measurements,
     "GET_MEASUREMENTS"},
    {SPDM_KEY_EXCHANGE, IN_CLEAR, DEV_CONN_NEGOTIATED, dev_rsp_key_exchange, "KEY_EXCHANGE"},
    {SPDM_FINISH, IN_SESSION, DEV_CONN_NEGOTIATED, dev_rsp_finish, "FINISH"},
    {SPDM_END_SESSION, IN_SESSION, DEV_CONN_NEGOTIATED, dev_rsp_end_session, "END_SESSION"},
    {SPDM_VENDOR_DEFINED_REQUEST, IN_CLEAR | IN_SESSION, DEV_CONN_NEGOTIATED, dev_rsp_vendor,
     "VENDOR_DEFINED_REQUEST"},
    {SPDM_HEARTBEAT, IN_SESSION, DEV_CONN_NEGOTIATED, dev_rsp_heartbeat, "HEARTBEAT"},
    {SPDM_KEY_UPDATE, IN_SESSION, DEV_CONN_NEGOTIATED, dev_rsp_key_update, "KEY_UPDATE"},
    {SPDM_CHALLENGE, IN_CLEAR, DEV_CONN_NEGOTIATED, dev_rsp_challenge, "CHALLENGE"},
    {SPDM_CHUNK_SEND, IN_CLEAR | IN_SESSION, DEV_CONN_AFTER_CAPS, dev_rsp_chunk_send, "CHUNK_SEND"},
    {SPDM_CHUNK_GET, IN_CLEAR | IN_SESSION, DEV_CONN_AFTER_CAPS, dev_rsp_chunk_get, "CHUNK_GET"},
};

static const struct dev_handler *handler_find(uint8_t code)
{
    for (size_t i = 0; i < VTSM_ARRAY_SIZE(handlers); i++)
        if (handlers[i].code == code)
            return &handlers[i];
    return NULL;
}

/* ---- helpers shared with the responders ---- */

vtsm_status dev_refuse(struct dev_req *q, uint8_t spdm_err, uint8_t err_data, vtsm_status st,
                       const char *fmt, ...)
{
    q->err_code = spdm_err;
    q->err_data = err_data;
    va_list ap;
    va_start(ap, fmt);
    vtsm_failv(st, fmt, ap);
    va_end(ap);
    return st;
}

vtsm_status dev_refuse_rule(struct dev_req *q, uint8_t spdm_err, uint8_t err_data, vtsm_status st,
                            enum vtsm_rule rule, const char *fmt, ...)
{
    q->err_code = spdm_err;
    q->err_data = err_data;
    va_list ap;
    va_start(ap, fmt);
    vtsm_refusev(st, rule, fmt, ap);
    va_end(ap);
    return st;
}

vtsm_status dev_req_end(struct dev_req *q, const struct vtsm_rd *r)
{
    size_t left = vtsm_rd_left(r);
    if (left == 0)
        return VTSM_OK;
    /* A plain SPDM message reaches us padded to a whole DW by the DOE layer; the secured
     * message's ApplicationDataLength is exact. */
    bool padding = !q->sess && left < 4;
    for (size_t i = 0; padding && i < left; i++)
        padding = r->p[r->off + i] == 0;
    if (padding)
        return VTSM_OK;
    return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_MALFORMED,
                      "%zu unexpected bytes after the request (request code 0x%02x)", left,
                      q->code);
}

vtsm_status dev_wr_header(const struct dev_req *q, struct vtsm_wr *w, uint8_t code, uint8_t p1,
                          uint8_t p2)
{
    VTSM_GUARD(vtsm_wr_u8(w, q->version));
    VTSM_GUARD(vtsm_wr_u8(w, code));
    VTSM_GUARD(vtsm_wr_u8(w, p1));
    return vtsm_wr_u8(w, p2);
}

struct vtsm_buf *dev_l1l2(struct vtsm_dev *d, const struct dev_req *q)
{
    return q->sess ? &q->sess->l1l2 : &d->conn.l1l2;
}

void dev_secret_log(const struct vtsm_dev *d, const char *label, const uint8_t *p, size_t n)
{
    char line[64 + 2 * 64 + 16];
    if (!d->cfg.secret_log || n > 64)
        return;
    int k = snprintf(line, sizeof(line), "secret %s ", label);
    if (k < 0 || (size_t)k + 2 * n + 1 > sizeof(line))
        return;
    vtsm_hex(line + k, p, n);
    d->cfg.secret_log(d->cfg.secret_log_ctx, line);
    OPENSSL_cleanse(line, sizeof(line));
}

void dev_secret_log_ks(const struct vtsm_dev *d, const struct vtsm_spdm_ks *ks)
{
    if (!d->cfg.secret_log)
        return;
    size_t h = ks->hash_len;
    dev_secret_log(d, "spdm-handshake-secret", ks->handshake_secret, h);
    dev_secret_log(d, "spdm-master-secret", ks->master_secret, h);
    dev_secret_log(d, "spdm-req-finished-key", ks->req_finished_key, h);
    dev_secret_log(d, "spdm-rsp-finished-key", ks->rsp_finished_key, h);
    dev_secret_log(d, "spdm-export-master-secret", ks->export_master_secret, h);
    dev_secret_log(d, "spdm-req-secret", ks->req.secret, h);
    dev_secret_log(d, "spdm-rsp-secret", ks->rsp.secret, h);
    dev_secret_log(d, "spdm-req-key", ks->req.key, sizeof(ks->req.key));
    dev_secret_log(d, "spdm-rsp-key", ks->rsp.key, sizeof(ks->rsp.key));
    dev_secret_log(d, "spdm-req-iv", ks->req.iv, sizeof(ks->req.iv));
    dev_secret_log(d, "spdm-rsp-iv", ks->rsp.iv, sizeof(ks->rsp.iv));
}

void dev_session_end(struct vtsm_dev *d)
{
    struct dev_session *s = &d->sess;
    if (s->state != DEV_SESS_NONE)
        VTSM_INFO("session 0x%08x ended", s->id);
    vtsm_spdm_ks_wipe(&s->ks);
    OPENSSL_cleanse(s->th2, sizeof(s->th2));
    /* Keep the allocations for the next session, but not their contents. */
    struct vtsm_buf th = s->th, l1l2 = s->l1l2, last = s->last_rsp;
    if (th.data)
        OPENSSL_cleanse(th.data, th.cap);
    th.len = 0;
    l1l2.len = 0;
    last.len = 0;
    memset(s, 0, sizeof(*s));
    s->th = th;
    s->l1l2 = l1l2;
    s->last_rsp = last;
    if (d->pending.in_session)
        d->pending.active = false;
    if (d->chunk_rx.in_session)
        dev_chunk_drop(&d->chunk_rx);
    if (d->chunk_tx.in_session)
        dev_chunk_drop(&d->chunk_tx);
}

void dev_conn_reset(struct vtsm_dev *d)
{
    struct dev_conn *c = &d->conn;
    struct vtsm_buf vca = c->vca, l1l2 = c->l1l2, msg_b = c->msg_b;
    vca.len = 0;
    l1l2.len = 0;
    msg_b.len = 0;
    memset(c, 0, sizeof(*c));
    c->vca = vca;
    c->l1l2 = l1l2;
    c->msg_b = msg_b;
    d->pending.active = false;
    dev_chunk_drop(&d->chunk_rx);
    dev_chunk_drop(&d->chunk_tx);
}

/* ---- ERROR (DSP0274 "ERROR") ---- */

static uint8_t error_version(const struct vtsm_dev *d, const struct dev_req *q)
{
    if (q->err_version)
        return q->err_version;
    /* Before GET_CAPABILITIES fixed a version there is none to answer in but 1.0. */
    return d->conn.state >= DEV_CONN_AFTER_CAPS ? d->conn.version : VTSM_SPDM_V10;
}

static size_t build_error(struct vtsm_dev *d, const struct dev_req *q)
{
    struct vtsm_wr w = vtsm_wr_init(d->msg, DEV_MSG_MAX);
    uint8_t code = q->err_code ? q->err_code : SPDM_ERR_UNSPECIFIED;
    uint8_t data = q->err_code ? q->err_data : 0;
    /* 4 + 4 bytes always fit the DEV_MSG_MAX buffer. */
    (void)vtsm_wr_u8(&w, error_version(d, q));
    (void)vtsm_wr_u8(&w, SPDM_ERROR);
    (void)vtsm_wr_u8(&w, code);
    (void)vtsm_wr_u8(&w, data);
    if (q->err_code && q->err_ext_len)
        (void)vtsm_wr_bytes(&w, q->err_ext, q->err_ext_len);
    return w.len;
}

/* ---- dispatch ---- */

static vtsm_status parse_header(struct dev_req *q)
{
    struct vtsm_rd r = vtsm_rd_init(q->msg, q->len);
    if (vtsm_rd_u8(&r, &q->version) || vtsm_rd_u8(&r, &q->code) || vtsm_rd_u8(&r, &q->param1) ||
        vtsm_rd_u8(&r, &q->param2))
        return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_TRUNCATED,
                          "SPDM message of %zu bytes is shorter than its 4-byte header", q->len);
    return VTSM_OK;
}

/* DSP0274 ResponseNotReady: keep the request for RESPOND_IF_READY. */
static vtsm_status not_ready(struct vtsm_dev *d, struct dev_req *q)
{
    struct dev_pending *p = &d->pending;
    VTSM_GUARD(vtsm_buf_set(&p->req, q->msg, q->len));
    p->active = true;
    p->in_session = q->sess != NULL;
    p->session_id = q->sess ? q->sess->id : 0;
    p->code = q->code;
    p->token = d->next_token++;
    q->err_ext[0] = DEV_RDT_EXPONENT;
    q->err_ext[1] = q->code;
    q->err_ext[2] = p->token;
    q->err_ext[3] = DEV_RDTM;
    q->err_ext_len = 4;
    return dev_refuse(q, SPDM_ERR_RESPONSE_NOT_READY, 0, VTSM_E_BUSY,
                      "not-ready fault: request 0x%02x parked with token %u", q->code, p->token);
}

/* Requests whose exchange in the clear is part of M1/M2 message B, and their exact
 * request length (neither is ever padded: both are whole DWs). */
static size_t msg_b_code(uint8_t code)
{
    return code == SPDM_GET_DIGESTS ? 4 : code == SPDM_GET_CERTIFICATE ? 8 : 0;
}

static vtsm_status run_request(struct vtsm_dev *d, struct dev_req *q, struct vtsm_wr *w,
                               bool replayed)
{
    const struct dev_handler *h = handler_find(q->code);

    /* DSP0274 L1/L2: any request other than GET_MEASUREMENTS ends the measurement log.
     * M1/M2 message B: the requests DSP0274 names restart it. The chunks of a large
     * message are no requests of their own: its reassembled request counts. */
    const bool chunk = q->code == SPDM_CHUNK_SEND || q->code == SPDM_CHUNK_GET;
    if (q->code != SPDM_GET_MEASUREMENTS && !chunk)
        vtsm_buf_reset(dev_l1l2(d, q));
    if (vtsm_spdm_resets_m1m2(q->code))
        vtsm_buf_reset(&d->conn.msg_b);
    if (!h)
        return dev_refuse(q, SPDM_ERR_UNSUPPORTED_REQUEST, q->code, VTSM_E_UNSUPPORTED,
                          "request code 0x%02x not supported", q->code);
    if (q->sess && !(h->where & IN_SESSION))
        return dev_refuse(q, SPDM_ERR_UNEXPECTED_REQUEST, 0, VTSM_E_STATE,
                          "%s is not allowed inside a secure session", h->name);
    /* (A FINISH too large for one message comes by CHUNK_SEND: its chunks may pass, the
     * reassembled request meets this check itself.) */
    if (q->sess && q->sess->state == DEV_SESS_HANDSHAKE && q->code != SPDM_FINISH && !chunk)
        return dev_refuse(q, SPDM_ERR_UNEXPECTED_REQUEST, 0, VTSM_E_STATE,
                          "%s during the session handshake (only FINISH)", h->name);
    if (!q->sess && !(h->where & IN_CLEAR)) {
        /* DSP0274 1.2 added SessionRequired for a request only allowed in a session;
         * before a version is negotiated, or below 1.2, it is UnexpectedRequest. */
        bool v12 = d->conn.state >= DEV_CONN_AFTER_CAPS && d->conn.version >= VTSM_SPDM_V12;
        return dev_refuse(q, v12 ? SPDM_ERR_SESSION_REQUIRED : SPDM_ERR_UNEXPECTED_REQUEST, 0,
                          VTSM_E_STATE, "%s is only allowed inside a secure session", h->name);
    }
    if (d->conn.state < h->min_state)
        return dev_refuse(q, SPDM_ERR_UNEXPECTED_REQUEST, 0, VTSM_E_STATE,
                          "%s before the connection reached the required state", h->name);
    if (h->min_state >= DEV_CONN_AFTER_CAPS && q->version != d->conn.version)
        return dev_refuse(q, SPDM_ERR_VERSION_MISMATCH, 0, VTSM_E_PEER_VERSION,
                          "%s with SPDMVersion 0x%02x, negotiated 0x%02x", h->name, q->version,
                          d->conn.version);
    if (q->code == SPDM_GET_MEASUREMENTS && !replayed && dev_fault(d, VTSM_DEV_FAULT_NOT_READY))
        return not_ready(d, q);
    return h->fn(d, q, w);
}

/* DSP0274 RESPOND_IF_READY: Param1 = the original request code, Param2 = the Token. */
static vtsm_status respond_if_ready(struct vtsm_dev *d, struct dev_req *q, struct vtsm_wr *w,
                                    struct dev_req *orig)
{
    struct dev_pending *p = &d->pending;
    bool same_ctx = p->active && p->in_session == (q->sess != NULL) &&
                    (!q->sess || q->sess->id == p->session_id);

    if (!same_ctx) {
        vtsm_buf_reset(dev_l1l2(d, q));
        p->active = false;
        return dev_refuse(q, SPDM_ERR_UNEXPECTED_REQUEST, 0, VTSM_E_STATE,
                          "RESPOND_IF_READY without a pending ResponseNotReady");
    }
    p->active = false;
    if (q->version != d->conn.version)
        return dev_refuse(q, SPDM_ERR_VERSION_MISMATCH, 0, VTSM_E_PEER_VERSION,
                          "RESPOND_IF_READY with SPDMVersion 0x%02x", q->version);
    struct vtsm_rd r = vtsm_rd_init(q->msg, q->len);
    VTSM_GUARD(vtsm_rd_skip(&r, 4));
    VTSM_GUARD(dev_req_end(q, &r));
    if (q->param1 != p->code || q->param2 != p->token)
        return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_MALFORMED,
                          "RESPOND_IF_READY for request 0x%02x token %u, pending 0x%02x token %u",
                          q->param1, q->param2, p->code, p->token);
    memset(orig, 0, sizeof(*orig));
    orig->msg = p->req.data;
    orig->len = p->req.len;
    orig->sess = q->sess;
    VTSM_GUARD(parse_header(orig));
    return run_request(d, orig, w, true);
}

/*
 * Answer one SPDM message: the response, or the ERROR for a refusal, lands in d->msg.
 * Only a local failure to build any message at all is returned as an error.
 */
vtsm_status dev_dispatch(struct vtsm_dev *d, struct dev_req *q, size_t *out_len)
{
    struct vtsm_wr w = vtsm_wr_init(d->msg, DEV_MSG_MAX);
    struct dev_req orig = {0};
    struct dev_req *eff = q;
    vtsm_status st;

    vtsm_err_clear();
    st = parse_header(q);
    if (st == VTSM_OK && !q->nested) {
        /* A chunk transfer lasts while its chunks keep coming. */
        if (q->code != SPDM_CHUNK_SEND)
            dev_chunk_drop(&d->chunk_rx);
        if (q->code != SPDM_CHUNK_GET)
            dev_chunk_drop(&d->chunk_tx);
        /* One message is at most our DataTransferSize (plus DOE padding in the clear);
         * a larger one comes by CHUNK_SEND. */
        if (q->len > (size_t)d->cfg.data_transfer_size + (q->sess ? 0 : 3))
            st = dev_refuse(q, SPDM_ERR_REQUEST_TOO_LARGE, 0, VTSM_E_PEER_OVERSIZED,
                            "request of %zu bytes exceeds DataTransferSize %u", q->len,
                            d->cfg.data_transfer_size);
    }
    if (st == VTSM_OK) {
        if (q->code == SPDM_RESPOND_IF_READY) {
            st = respond_if_ready(d, q, &w, &orig);
            if (orig.msg && orig.code)
                eff = &orig;
        } else {
            d->pending.active = false;
            st = run_request(d, q, &w, false);
        }
    }
    if (st == VTSM_OK && !q->sess && msg_b_code(eff->code) && eff->len >= msg_b_code(eff->code) &&
        d->msg[1] != SPDM_ERROR) {
        /* M1/M2 message B: the request and the response, each at its exact length. */
        st = vtsm_buf_append(&d->conn.msg_b, eff->msg, msg_b_code(eff->code));
        if (st == VTSM_OK)
            st = vtsm_buf_append(&d->conn.msg_b, d->msg, w.len);
    }
    if (st == VTSM_OK && dev_chunking(d) && eff->code != SPDM_CHUNK_SEND &&
        eff->code != SPDM_CHUNK_GET && w.len + q->rsp_reserve > dev_send_limit(d)) {
        /* Too large for one message: kept for CHUNK_GET, announced by ERROR(LargeResponse)
         * with its Handle as ExtendedErrorData. */
        uint8_t handle;
        if (w.len > d->conn.req_max_spdm_msg_size)
            st = dev_refuse(eff, SPDM_ERR_RESPONSE_TOO_LARGE, 0, VTSM_E_PEER_OVERSIZED,
                            "response of %zu bytes exceeds the requester's MaxSPDMmsgSize %u",
                            w.len, d->conn.req_max_spdm_msg_size);
        else
            st = dev_chunk_stash(d, eff, d->msg, w.len, &handle);
        if (st == VTSM_OK) {
            q->err_code = SPDM_ERR_LARGE_RESPONSE;
            q->err_data = 0;
            q->err_ext[0] = handle;
            q->err_ext_len = 1;
            q->err_version = d->msg[0];
            w.len = build_error(d, q);
            q->err_code = 0;
            q->err_ext_len = 0;
        }
    }
    if (st == VTSM_OK) {
        *out_len = w.len;
        VTSM_DBG("request 0x%02x%s answered with 0x%02x (%zu bytes)", eff->code,
                 q->sess ? " (secured)" : "", d->msg[1], w.len);
        return VTSM_OK;
    }
    /* A responder that must not answer (a fault) leaves nothing to send. */
    if (q->drop || eff->drop) {
        VTSM_INFO("request 0x%02x dropped unanswered: %s", eff->code, vtsm_err_detail());
        return st;
    }
    /* RESPOND_IF_READY that ran the parked request reports that request's refusal. */
    if (eff != q && !eff->err_code && q->err_code)
        eff = q;
    /* An ERROR ends the measurement log, except ResponseNotReady, whose request returns. */
    if (eff->err_code != SPDM_ERR_RESPONSE_NOT_READY) {
        vtsm_buf_reset(dev_l1l2(d, eff));
        if (!q->sess)
            vtsm_buf_reset(&d->conn.msg_b);
    }
    if (!eff->err_code)
        VTSM_WARN("request 0x%02x failed locally: %s (%s)", eff->code, vtsm_status_name(st),
                  vtsm_err_detail());
    else
        VTSM_INFO("request 0x%02x refused with ERROR 0x%02x: %s", eff->code, eff->err_code,
                  vtsm_err_detail());
    *out_len = build_error(d, eff);
    return VTSM_OK;
}

/* ---- DOE (PCIe 6.30) ---- */

/* DOE discovery (PCIe 6.30.1.1): index 0 discovery, 1 CMA/SPDM, 2 secured CMA/SPDM; the
 * last names next index 0. An index past the end answers vendor 0xFFFF (as QEMU does). */
static vtsm_status doe_discovery(const struct vtsm_doe_obj *obj, struct vtsm_buf *rsp)
{
    static const uint8_t types[] = {VTSM_DOE_TYPE_DISCOVERY, VTSM_DOE_TYPE_SPDM,
                                    VTSM_DOE_TYPE_SECURED_SPDM};
    uint8_t index, payload[4];
    struct vtsm_doe_disc_rsp r;

    VTSM_GUARD(vtsm_doe_disc_req_parse(obj, &index));
    if (index < VTSM_ARRAY_SIZE(types)) {
        r.vendor_id = VTSM_DOE_VENDOR_PCISIG;
        r.type = types[index];
        r.next_index = (size_t)index + 1 < VTSM_ARRAY_SIZE(types) ? (uint8_t)(index + 1) : 0;
    } else {
        r.vendor_id = 0xFFFF;
        r.type = 0xFF;
        r.next_index = 0;
    }
    vtsm_doe_disc_rsp_payload(&r, payload);
    return vtsm_doe_build_buf(VTSM_DOE_VENDOR_PCISIG, VTSM_DOE_TYPE_DISCOVERY, payload,
                              sizeof(payload), rsp);
}

/* truncate-doe / oversize-doe / misalign-doe: damage the DOE object carrying a
 * CERTIFICATE response (to GET_CERTIFICATE). */
static vtsm_status doe_faults(struct vtsm_dev *d, const struct dev_req *q, struct vtsm_buf *rsp)
{
    static const uint8_t extra[8];
    if (q->code != SPDM_GET_CERTIFICATE || d->msg[1] != SPDM_CERTIFICATE)
        return VTSM_OK;
    if (dev_fault(d, VTSM_DEV_FAULT_TRUNCATE_DOE) && rsp->len >= VTSM_DOE_HEADER_SIZE + 4)
        rsp->len -= 4; /* the header still counts the last DW */
    if (dev_fault(d, VTSM_DEV_FAULT_OVERSIZE_DOE))
        VTSM_GUARD(vtsm_buf_append(rsp, extra, 8)); /* two DW past the header's length */
    if (dev_fault(d, VTSM_DEV_FAULT_MISALIGN_DOE))
        VTSM_GUARD(vtsm_buf_append(rsp, extra, 2)); /* not a whole number of DW */
    return VTSM_OK;
}

static vtsm_status handle_clear(struct vtsm_dev *d, const uint8_t *p, size_t n,
                                struct vtsm_buf *rsp)
{
    struct dev_req q = {.msg = p, .len = n};
    size_t len;
    VTSM_GUARD(dev_dispatch(d, &q, &len));
    VTSM_GUARD(vtsm_doe_build_buf(VTSM_DOE_VENDOR_PCISIG, VTSM_DOE_TYPE_SPDM, d->msg, len, rsp));
    return doe_faults(d, &q, rsp);
}

/*
 * A DSP0277 secured message. A session ID the device does not know is dropped (there is
 * no key to answer under). A message that fails to decrypt ends the session: DSP0274
 * DecryptError terminates it, and the ERROR goes back in the clear because the requester's
 * keys can no longer be trusted to match ours.
 */
static vtsm_status handle_secured(struct vtsm_dev *d, const uint8_t *p, size_t n,
                                  struct vtsm_buf *rsp)
{
    struct dev_session *s = &d->sess;
    uint32_t sid;
    size_t app_len = DEV_MSG_MAX;
    vtsm_status st;

    VTSM_GUARD(vtsm_secmsg_session_id(p, n, &sid));
    VTSM_ENSURE(s->state != DEV_SESS_NONE && sid == s->id, VTSM_E_PEER_SESSION_ID,
                "secured message for unknown session 0x%08x: dropped", sid);
    st = vtsm_secmsg_open(&s->ks.req, sid, p, n, d->plain, &app_len);
    if (st != VTSM_OK) {
        VTSM_WARN("session 0x%08x: request failed to decrypt (%s: %s): DecryptError, session "
                  "terminated",
                  sid, vtsm_status_name(st), vtsm_err_detail());
        dev_session_end(d);
        struct dev_req q = {.err_code = SPDM_ERR_DECRYPT_ERROR};
        size_t len = build_error(d, &q);
        return vtsm_doe_build_buf(VTSM_DOE_VENDOR_PCISIG, VTSM_DOE_TYPE_SPDM, d->msg, len, rsp);
    }

    /* replay: the 2nd request inside the session gets the previous secured response
     * (FINISH_RSP, under the handshake keys) again, byte for byte. */
    s->requests++;
    if (dev_fault(d, VTSM_DEV_FAULT_REPLAY) && s->requests == 2 && s->last_rsp.len) {
        VTSM_INFO("replay fault: resending the previous secured response");
        OPENSSL_cleanse(d->plain, app_len);
        return vtsm_buf_set(rsp, s->last_rsp.data, s->last_rsp.len);
    }

    if (d->cfg.msg_trace)
        d->cfg.msg_trace(d->cfg.msg_trace_ctx, false, sid, d->plain, app_len);
    struct dev_req q = {.msg = d->plain, .len = app_len, .sess = s};
    size_t len;
    st = dev_dispatch(d, &q, &len);
    /* The request is consumed (a KEY_PROG carried key bytes): wipe it before d->plain
     * receives the sealed response. */
    OPENSSL_cleanse(d->plain, app_len);
    VTSM_GUARD(st);

    if (d->cfg.msg_trace)
        d->cfg.msg_trace(d->cfg.msg_trace_ctx, true, sid, d->msg, len);
    uint32_t out_sid = sid;
    if (dev_fault(d, VTSM_DEV_FAULT_WRONG_SESSION_ID))
        out_sid ^= 0x00010000u; /* another RspSessionID */
    size_t sealed = DEV_MSG_MAX + VTSM_SECMSG_OVERHEAD;
    VTSM_GUARD(vtsm_secmsg_seal(&s->ks.rsp, out_sid, d->msg, len, d->plain, &sealed));
    if (dev_fault(d, VTSM_DEV_FAULT_TAMPER))
        d->plain[6] ^= 0x01; /* first ciphertext byte, after SessionID and Length */
    VTSM_GUARD(vtsm_doe_build_buf(VTSM_DOE_VENDOR_PCISIG, VTSM_DOE_TYPE_SECURED_SPDM, d->plain,
                                  sealed, rsp));
    VTSM_GUARD(doe_faults(d, &q, rsp)); /* d->msg still holds the plaintext response */

    if (s->data_keys_pending) {
        /* DSP0274 FINISH_RSP: sent under the handshake keys, then the data keys apply. */
        st = vtsm_spdm_ks_data(&s->ks, s->th2);
        OPENSSL_cleanse(s->th2, sizeof(s->th2));
        if (st == VTSM_OK)
            dev_secret_log_ks(d, &s->ks);
        s->data_keys_pending = false;
        if (st != VTSM_OK) {
            dev_session_end(d);
            return st;
        }
        s->state = DEV_SESS_ESTABLISHED;
        VTSM_INFO("session 0x%08x established", s->id);
    }
    if (s->terminate)
        dev_session_end(d);
    else
        VTSM_GUARD(vtsm_buf_set(&s->last_rsp, rsp->data, rsp->len));
    return VTSM_OK;
}

vtsm_status vtsm_dev_handle_spdm(struct vtsm_dev *d, const uint8_t *req, size_t len,
                                 struct vtsm_buf *rsp)
{
    VTSM_ENSURE(d && rsp && (req || len == 0), VTSM_E_INVAL, "vtsm_dev_handle_spdm: bad arguments");
    vtsm_buf_reset(rsp);
    VTSM_ENSURE(len <= DEV_MSG_MAX, VTSM_E_DOE_OVERSIZED,
                "SPDM message of %zu bytes exceeds what the device accepts", len);
    struct dev_req q = {.msg = req, .len = len};
    size_t out;
    VTSM_GUARD(dev_dispatch(d, &q, &out));
    return vtsm_buf_set(rsp, d->msg, out);
}

vtsm_status vtsm_dev_handle(struct vtsm_dev *d, const uint8_t *req, size_t len,
                            struct vtsm_buf *rsp)
{
    struct vtsm_doe_obj obj;

    VTSM_ENSURE(d && rsp && (req || len == 0), VTSM_E_INVAL, "vtsm_dev_handle: bad arguments");
    vtsm_buf_reset(rsp);
    VTSM_GUARD(vtsm_doe_parse(req, len, &obj));
    VTSM_ENSURE(obj.vendor_id == VTSM_DOE_VENDOR_PCISIG, VTSM_E_DOE_HEADER,
                "DOE vendor ID 0x%04x not supported", obj.vendor_id);
    VTSM_ENSURE(obj.payload_len <= DEV_MSG_MAX + VTSM_SECMSG_OVERHEAD + 4, VTSM_E_DOE_OVERSIZED,
                "DOE object of %zu bytes exceeds what the device accepts", obj.payload_len);

    vtsm_status st;
    switch (obj.type) {
    case VTSM_DOE_TYPE_DISCOVERY:
        st = doe_discovery(&obj, rsp);
        break;
    case VTSM_DOE_TYPE_SPDM:
        st = handle_clear(d, obj.payload, obj.payload_len, rsp);
        break;
    case VTSM_DOE_TYPE_SECURED_SPDM:
        st = handle_secured(d, obj.payload, obj.payload_len, rsp);
        break;
    default:
        st = vtsm_fail(VTSM_E_DOE_HEADER, "DOE data object type %u not supported", obj.type);
        break;
    }
    if (st != VTSM_OK)
        vtsm_buf_reset(rsp);
    return st;
}

/* ---- lifetime ---- */

static vtsm_status config_check(const struct vtsm_dev_config *c)
{
    VTSM_ENSURE(c->versions &&
                    !(c->versions & ~(VTSM_DEV_VER_12 | VTSM_DEV_VER_13 | VTSM_DEV_VER_14)),
                VTSM_E_CONFIG, "versions: 1.2, 1.3 and/or 1.4 (mask 0x%x)", c->versions);
    VTSM_ENSURE(c->asym == VTSM_ASYM_ECDSA_P256 || c->asym == VTSM_ASYM_ECDSA_P384, VTSM_E_CONFIG,
                "asym: ECDSA P-256 or P-384");
    VTSM_ENSURE(c->hash == VTSM_HASH_SHA256 || c->hash == VTSM_HASH_SHA384, VTSM_E_CONFIG,
                "hash: SHA-256 or SHA-384");
    VTSM_ENSURE(c->dhe == VTSM_DHE_SECP256R1 || c->dhe == VTSM_DHE_SECP384R1, VTSM_E_CONFIG,
                "dhe: secp256r1 or secp384r1");
    VTSM_ENSURE(c->aead == VTSM_AEAD_AES_256_GCM, VTSM_E_CONFIG, "aead: AES-256-GCM");
    VTSM_ENSURE(c->meas_hash == 0 || c->meas_hash == SPDM_MEAS_HASH_SHA256 ||
                    c->meas_hash == SPDM_MEAS_HASH_SHA384 || c->meas_hash == SPDM_MEAS_HASH_SHA512,
                VTSM_E_CONFIG, "meas_hash: 0, SHA-256, SHA-384 or SHA-512 (0x%x)", c->meas_hash);
    VTSM_ENSURE(c->n_meas <= VTSM_DEV_MAX_MEAS, VTSM_E_CONFIG, "n_meas %zu > %d", c->n_meas,
                VTSM_DEV_MAX_MEAS);
    for (size_t i = 0; i < c->n_meas; i++) {
        const struct vtsm_dev_meas *m = &c->meas[i];
        VTSM_ENSURE(m->index >= 1 && m->index <= 0xEF, VTSM_E_CONFIG,
                    "meas[%zu].index %u outside 1..0xEF", i, m->index);
        VTSM_ENSURE(m->type <= 0x7F, VTSM_E_CONFIG, "meas[%zu].type 0x%x has bit 7 set", i,
                    m->type);
        VTSM_ENSURE(m->value_len <= VTSM_DEV_MEAS_VALUE_MAX, VTSM_E_CONFIG,
                    "meas[%zu].value_len %zu too large", i, m->value_len);
        for (size_t j = 0; j < i; j++)
            VTSM_ENSURE(c->meas[j].index != m->index, VTSM_E_CONFIG,
                        "measurement index %u used twice", m->index);
    }
    VTSM_ENSURE(c->data_transfer_size >= DEV_MIN_DATA_TRANSFER_SIZE &&
                    c->data_transfer_size <= DEV_MSG_MAX,
                VTSM_E_CONFIG, "data_transfer_size %u outside %u..%u", c->data_transfer_size,
                DEV_MIN_DATA_TRANSFER_SIZE, DEV_MSG_MAX);
    /* Equal: no CHUNK_CAP (DSP0274 CAPABILITIES); larger: CHUNK_CAP, large messages in
     * chunks up to MaxSPDMmsgSize. */
    VTSM_ENSURE(c->max_spdm_msg_size >= c->data_transfer_size &&
                    c->max_spdm_msg_size <= DEV_MSG_MAX,
                VTSM_E_CONFIG, "max_spdm_msg_size %u outside data_transfer_size %u..%u",
                c->max_spdm_msg_size, c->data_transfer_size, DEV_MSG_MAX);
    VTSM_ENSURE(c->num_tdis <= VTSM_DEV_MAX_TDIS, VTSM_E_CONFIG, "num_tdis %u > %d", c->num_tdis,
                VTSM_DEV_MAX_TDIS);
    VTSM_ENSURE(c->ide_streams <= VTSM_DEV_MAX_IDE, VTSM_E_CONFIG, "ide_streams %u > %d",
                c->ide_streams, VTSM_DEV_MAX_IDE);
    VTSM_ENSURE(c->ide_link_tcs <= VTSM_IDEKM_MAX_LINK, VTSM_E_CONFIG, "ide_link_tcs %u > %d",
                c->ide_link_tcs, VTSM_IDEKM_MAX_LINK);
    VTSM_ENSURE(c->ide_addr_assoc <= VTSM_IDEKM_MAX_ADDR, VTSM_E_CONFIG, "ide_addr_assoc %u > %d",
                c->ide_addr_assoc, VTSM_IDEKM_MAX_ADDR);
    VTSM_ENSURE(c->ide_query_shape <= VTSM_DEV_IDE_QUERY_ZERO73, VTSM_E_CONFIG,
                "ide_query_shape %d", (int)c->ide_query_shape);
    VTSM_ENSURE(!(c->faults & ~((1u << VTSM_DEV_FAULT_COUNT_) - 1)), VTSM_E_CONFIG,
                "unknown fault bits 0x%x", c->faults);
    return VTSM_OK;
}

vtsm_status vtsm_dev_new(const struct vtsm_dev_config *c, struct vtsm_dev **out)
{
    vtsm_status st = VTSM_OK;
    struct vtsm_dev *d = NULL;

    VTSM_ENSURE(c && out, VTSM_E_INVAL, "vtsm_dev_new: bad arguments");
    *out = NULL;
    VTSM_GUARD(config_check(c));

    d = calloc(1, sizeof(*d));
    VTSM_ENSURE(d, VTSM_E_NOMEM, "device");
    d->cfg = *c;
    for (unsigned i = 0; i < VTSM_DEV_MAX_SLOTS; i++) {
        d->cfg.slots[i].certs_pem = NULL;
        d->cfg.slots[i].key_pem = NULL;
    }
    d->msg = malloc(DEV_MSG_MAX);
    d->plain = malloc(DEV_MSG_MAX + VTSM_SECMSG_OVERHEAD + 64);
    VTSM_ENSURE_GOTO(d->msg && d->plain, VTSM_E_NOMEM, "device buffers");
    VTSM_GUARD_GOTO(dev_slots_load(d, c));
    VTSM_GUARD_GOTO(dev_ide_init(d));
    VTSM_GUARD_GOTO(dev_tdi_init(d));
    d->next_rsp_session_id = 0xFFFF;
    d->next_token = 1;
    *out = d;
    d = NULL;
out:
    vtsm_dev_free(d);
    return st;
}

void vtsm_dev_free(struct vtsm_dev *d)
{
    if (!d)
        return;
    dev_session_end(d);
    vtsm_buf_wipe(&d->sess.th);
    vtsm_buf_wipe(&d->sess.l1l2);
    vtsm_buf_wipe(&d->sess.last_rsp);
    vtsm_buf_wipe(&d->conn.vca);
    vtsm_buf_wipe(&d->conn.l1l2);
    vtsm_buf_wipe(&d->conn.msg_b);
    dev_chunk_drop(&d->chunk_rx);
    dev_chunk_drop(&d->chunk_tx);
    vtsm_buf_wipe(&d->pending.req);
    dev_slots_free(d);
    dev_ide_free(d);
    dev_tdi_free(d);
    if (d->msg) {
        OPENSSL_cleanse(d->msg, DEV_MSG_MAX);
        free(d->msg);
    }
    if (d->plain) {
        OPENSSL_cleanse(d->plain, DEV_MSG_MAX + VTSM_SECMSG_OVERHEAD + 64);
        free(d->plain);
    }
    OPENSSL_cleanse(d, sizeof(*d));
    free(d);
}
