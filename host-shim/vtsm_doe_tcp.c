/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DOE backend for responders speaking the DMTF spdm-emu socket protocol (as QEMU's
 * spdm-socket backend does): each DOE object travels as the payload of one NORMAL
 * command frame with transport type PCI_DOE; the responder answers with one frame.
 * Simulated-link frames share the connection under the vendor command
 * VTSM_SOCK_CMD_VTSM_LINK (docs/abi.md section 8.2).
 *
 * The target is "tcp:HOST:PORT[,OPTION]...". Options:
 *   end=continue  (default) closing sends CONTINUE (0xFFFD, no payload): the peer keeps
 *                 its state and waits for the next connection (spdm-emu's responder
 *                 otherwise takes the bare close for a fatal error and exits)
 *   end=shutdown  closing sends SHUTDOWN (0xFFFE): the peer ends
 *   end=none      closing sends nothing
 * After CONTINUE or SHUTDOWN the answer frame is awaited for END_WAIT_MS at most.
 */
#include "vtsm_host_cbor.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <string.h>
#include <unistd.h>

#include "vtsm_abi.h"
#include "vtsm_guard.h"
#include "vtsm_proc.h"
#include "vtsm_sock.h"

#define DOE_TCP_DEFAULT_TIMEOUT_MS 30000
#define END_WAIT_MS                1000

struct vtsm_doe_tcp {
    char hostport[128];
    uint32_t end_cmd; /* sent on close; 0 for none */
    int fd;
    int timeout_ms;
    struct vtsm_buf rx;
    /* asynchronous exchange in progress (busy) */
    bool busy;
    bool resent;
    struct vtsm_host *h;
    uint64_t token;
    uint32_t want_cmd;
    struct vtsm_buf req; /* kept for one resend after a reconnect */
    uint8_t hdr[VTSM_SOCK_HEADER_SIZE];
    size_t hdr_got;
    size_t body_len;
};

/* One ",OPTION" of the target (opt points past the comma, len excludes the next one). */
static vtsm_status parse_option(struct vtsm_doe_tcp *t, const char *opt, size_t len)
{
    static const struct {
        const char *name;
        uint32_t cmd;
    } ends[] = {
        {"end=continue", VTSM_SOCK_CMD_CONTINUE},
        {"end=shutdown", VTSM_SOCK_CMD_SHUTDOWN},
        {"end=none", 0},
    };
    for (size_t i = 0; i < sizeof(ends) / sizeof(ends[0]); i++) {
        if (strlen(ends[i].name) == len && memcmp(opt, ends[i].name, len) == 0) {
            t->end_cmd = ends[i].cmd;
            return VTSM_OK;
        }
    }
    return vtsm_fail(VTSM_E_INVAL, "unknown DOE backend option '%.*s' (end=continue|shutdown|none)",
                     (int)len, opt);
}

vtsm_status vtsm_doe_tcp_open(const char *spec, struct vtsm_doe_tcp **out)
{
    static const char prefix[] = "tcp:";
    VTSM_ENSURE(out, VTSM_E_INVAL, "out is NULL");
    *out = NULL;
    VTSM_ENSURE(spec && strncmp(spec, prefix, sizeof(prefix) - 1) == 0, VTSM_E_INVAL,
                "DOE backend must be tcp:HOST:PORT[,end=continue|shutdown|none], got '%s'",
                spec ? spec : "(null)");
    const char *hp = spec + sizeof(prefix) - 1;
    const char *comma = strchr(hp, ',');
    size_t hp_len = comma ? (size_t)(comma - hp) : strlen(hp);
    VTSM_ENSURE(hp_len < sizeof(((struct vtsm_doe_tcp *)0)->hostport), VTSM_E_INVAL,
                "DOE backend address too long");
    struct vtsm_doe_tcp *t = calloc(1, sizeof(*t));
    VTSM_ENSURE(t, VTSM_E_NOMEM, "DOE backend");
    memcpy(t->hostport, hp, hp_len);
    t->hostport[hp_len] = '\0';
    t->end_cmd = VTSM_SOCK_CMD_CONTINUE;
    t->fd = -1;
    while (comma) {
        const char *opt = comma + 1;
        comma = strchr(opt, ',');
        vtsm_status st = parse_option(t, opt, comma ? (size_t)(comma - opt) : strlen(opt));
        if (st != VTSM_OK) {
            free(t);
            return st;
        }
    }
    t->timeout_ms = DOE_TCP_DEFAULT_TIMEOUT_MS;
    vtsm_status st = vtsm_tcp_connect(t->hostport, &t->fd);
    if (st != VTSM_OK) {
        free(t);
        return st;
    }
    *out = t;
    return VTSM_OK;
}

void vtsm_doe_tcp_set_timeout(struct vtsm_doe_tcp *t, int timeout_ms)
{
    t->timeout_ms = timeout_ms < 0 ? -1 : timeout_ms;
}

static void drop(struct vtsm_doe_tcp *t)
{
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
}

/* One request/response under command cmd. Returns 0, a negative errno, or 1 for
 * "connection had dropped before the response started" (worth one reconnect). */
static int exchange(struct vtsm_doe_tcp *t, uint32_t want_cmd, const uint8_t *req, size_t req_len,
                    uint8_t *rsp, size_t *rsp_len)
{
    vtsm_status st = vtsm_sock_send(t->fd, want_cmd, VTSM_SOCK_TRANSPORT_PCI_DOE, req, req_len);
    if (st == VTSM_E_NOMEM)
        return -ENOMEM;
    if (st != VTSM_OK)
        return 1;
    uint32_t cmd = 0, transport = 0;
    st = vtsm_sock_recv(t->fd, &cmd, &transport, &t->rx, *rsp_len, t->timeout_ms);
    switch (st) {
    case VTSM_OK:
        break;
    case VTSM_E_CLOSED:
        return 1;
    case VTSM_E_TIMEOUT:
        drop(t); /* a late answer would be taken for the next request's */
        return -ETIMEDOUT;
    case VTSM_E_PEER_OVERSIZED:
        drop(t);
        return -EMSGSIZE;
    case VTSM_E_NOMEM:
        drop(t);
        return -ENOMEM;
    default:
        drop(t);
        return -ECONNRESET;
    }
    if (cmd != want_cmd || transport != VTSM_SOCK_TRANSPORT_PCI_DOE || t->rx.len == 0) {
        drop(t);
        return -EPROTO;
    }
    memcpy(rsp, t->rx.data, t->rx.len);
    *rsp_len = t->rx.len;
    return 0;
}

static int exchange_retry(void *ctx, uint32_t cmd, const uint8_t *req, size_t req_len, uint8_t *rsp,
                          size_t *rsp_len)
{
    struct vtsm_doe_tcp *t = ctx;
    if (!t || !req || !rsp || !rsp_len)
        return -EINVAL;
    if (t->busy)
        return -EBUSY; /* an asynchronous exchange is out on this connection */
    for (int attempt = 0; attempt < 2; attempt++) {
        if (t->fd < 0 && vtsm_tcp_connect(t->hostport, &t->fd) != VTSM_OK) {
            t->fd = -1;
            return -ECONNRESET;
        }
        int rc = exchange(t, cmd, req, req_len, rsp, rsp_len);
        if (rc <= 0)
            return rc;
        drop(t); /* dropped: reconnect once and resend */
    }
    return -ECONNRESET;
}

int vtsm_doe_tcp_fn(void *ctx, const uint8_t *req, size_t req_len, uint8_t *rsp, size_t *rsp_len)
{
    return exchange_retry(ctx, VTSM_SOCK_CMD_NORMAL, req, req_len, rsp, rsp_len);
}

int vtsm_doe_tcp_link_fn(void *ctx, const uint8_t *req, size_t req_len, uint8_t *rsp,
                         size_t *rsp_len)
{
    return exchange_retry(ctx, VTSM_SOCK_CMD_VTSM_LINK, req, req_len, rsp, rsp_len);
}

/* ---- asynchronous form ---- */

/* Send the kept request, (re)connecting first if needed. 0 or a negative errno. */
static int async_send(struct vtsm_doe_tcp *t)
{
    t->hdr_got = 0;
    t->body_len = 0;
    vtsm_buf_reset(&t->rx);
    for (int attempt = 0; attempt < 2; attempt++) {
        if (t->fd < 0 && vtsm_tcp_connect(t->hostport, &t->fd) != VTSM_OK) {
            t->fd = -1;
            return -ECONNRESET;
        }
        vtsm_status st = vtsm_sock_send(t->fd, t->want_cmd, VTSM_SOCK_TRANSPORT_PCI_DOE,
                                        t->req.data, t->req.len);
        if (st == VTSM_OK)
            return 0;
        if (st == VTSM_E_NOMEM)
            return -ENOMEM;
        drop(t); /* dropped: reconnect once and resend */
    }
    return -ECONNRESET;
}

static int async_start(struct vtsm_doe_tcp *t, struct vtsm_host *h, uint64_t token, uint32_t cmd,
                       const uint8_t *req, size_t req_len)
{
    if (!t || !h || !req)
        return -EINVAL;
    if (t->busy)
        return -EBUSY;
    if (vtsm_buf_set(&t->req, req, req_len) != VTSM_OK)
        return -ENOMEM;
    t->want_cmd = cmd;
    t->resent = false;
    int rc = async_send(t);
    if (rc != 0)
        return rc;
    t->busy = true;
    t->h = h;
    t->token = token;
    return 0;
}

int vtsm_doe_tcp_start(void *ctx, struct vtsm_host *h, uint64_t token, const uint8_t *req,
                       size_t req_len)
{
    return async_start(ctx, h, token, VTSM_SOCK_CMD_NORMAL, req, req_len);
}

int vtsm_doe_tcp_link_start(void *ctx, struct vtsm_host *h, uint64_t token, const uint8_t *req,
                            size_t req_len)
{
    return async_start(ctx, h, token, VTSM_SOCK_CMD_VTSM_LINK, req, req_len);
}

void vtsm_doe_tcp_cancel(void *ctx, struct vtsm_host *h, uint64_t token)
{
    struct vtsm_doe_tcp *t = ctx;
    if (!t || !t->busy || t->h != h || t->token != token)
        return;
    t->busy = false;
    t->h = NULL;
    drop(t); /* the device may still answer: that answer must not meet the next request */
}

int vtsm_doe_tcp_fd(const struct vtsm_doe_tcp *t)
{
    return t ? t->fd : -1;
}

bool vtsm_doe_tcp_busy(const struct vtsm_doe_tcp *t)
{
    return t && t->busy;
}

/* End the exchange: answer it (err 0) with the payload in rx, else with err. */
static vtsm_status async_finish(struct vtsm_doe_tcp *t, int err)
{
    struct vtsm_host *h = t->h;
    uint64_t token = t->token;
    t->busy = false;
    t->h = NULL;
    if (err)
        drop(t);
    return err ? vtsm_host_doe_fail(h, token, err)
               : vtsm_host_doe_complete(h, token, t->rx.data, t->rx.len);
}

vtsm_status vtsm_doe_tcp_service(struct vtsm_doe_tcp *t)
{
    if (!t || t->fd < 0)
        return VTSM_OK;
    for (;;) {
        uint8_t *dst;
        size_t want;
        if (t->hdr_got < sizeof(t->hdr)) {
            dst = t->hdr + t->hdr_got;
            want = sizeof(t->hdr) - t->hdr_got;
        } else {
            dst = t->rx.data + t->rx.len;
            want = t->body_len - t->rx.len;
        }
        ssize_t k = want ? recv(t->fd, dst, want, MSG_DONTWAIT) : 0;
        if (k > 0)
            vtsm_sock_quickack(t->fd);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return VTSM_OK;
        if (!t->busy) {
            drop(t); /* closed, or bytes nobody asked for */
            return VTSM_OK;
        }
        if (k < 0 || (k == 0 && want)) {
            bool nothing_yet = t->hdr_got == 0;
            drop(t);
            if (nothing_yet && !t->resent) {
                /* dropped before the answer began: reconnect once and resend */
                t->resent = true;
                int rc = async_send(t);
                if (rc == 0)
                    return VTSM_OK;
                return async_finish(t, rc);
            }
            return async_finish(t, -ECONNRESET);
        }
        if (t->hdr_got < sizeof(t->hdr)) {
            t->hdr_got += (size_t)k;
            if (t->hdr_got < sizeof(t->hdr))
                continue;
            uint32_t cmd = vtsm_get_be32(t->hdr), transport = vtsm_get_be32(t->hdr + 4);
            t->body_len = vtsm_get_be32(t->hdr + 8);
            if (cmd != t->want_cmd || transport != VTSM_SOCK_TRANSPORT_PCI_DOE || t->body_len == 0)
                return async_finish(t, -EPROTO);
            if (t->body_len > VTSM_HOST_DOE_RSP_CAP)
                return async_finish(t, -EMSGSIZE);
            vtsm_buf_reset(&t->rx);
            if (vtsm_buf_reserve(&t->rx, t->body_len) != VTSM_OK)
                return async_finish(t, -ENOMEM);
        } else {
            t->rx.len += (size_t)k;
        }
        if (t->hdr_got == sizeof(t->hdr) && t->rx.len == t->body_len)
            return async_finish(t, 0);
    }
}

/* Session end of the spdm-emu socket protocol: CONTINUE or SHUTDOWN, then the peer's
 * answer (any frame; a peer that does not answer costs END_WAIT_MS at most). */
static void send_end(struct vtsm_doe_tcp *t)
{
    if (t->fd < 0 || !t->end_cmd)
        return;
    if (vtsm_sock_send(t->fd, t->end_cmd, VTSM_SOCK_TRANSPORT_PCI_DOE, NULL, 0) != VTSM_OK)
        return;
    long long until = vtsm_now_ns() + (long long)END_WAIT_MS * 1000000;
    for (;;) {
        long long left_ms = (until - vtsm_now_ns()) / 1000000;
        uint32_t cmd = 0, transport = 0;
        if (left_ms <= 0 || vtsm_sock_recv(t->fd, &cmd, &transport, &t->rx, VTSM_HOST_DOE_RSP_CAP,
                                           (int)left_ms) != VTSM_OK)
            return;
        if (cmd == t->end_cmd || cmd == VTSM_SOCK_CMD_UNKNOWN || !t->busy)
            return; /* else the late answer of an exchange in flight: read on */
    }
}

void vtsm_doe_tcp_close(struct vtsm_doe_tcp *t)
{
    if (!t)
        return;
    send_end(t);
    drop(t);
    vtsm_buf_free(&t->rx);
    vtsm_buf_free(&t->req);
    free(t);
}
