/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The ABI server and the event loop: a Unix socket, one poll loop on tsmd's only thread,
 * one dispatch table. Every request is checked before any state is touched: HELLO
 * first and only once, known opcode, role allowed, then decoded into a struct
 * vtsm_abi_req (no unknown key, every value of its type and range); only then does its
 * handler run.
 *
 * The loop never blocks on a client: replies go to a bounded per-client output queue
 * flushed on POLLOUT; a client that leaves more than cfg.outq_max unread is dropped with
 * a logged reason, as is one that stays silent before HELLO, half-sends a frame or idles
 * past its timeout. Connections are capped per role so guests cannot lock out the host.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "tsm_int.h"
#include "vtsm_guard.h"
#include "vtsm_log.h"
#include "vtsm_path.h"

/* The dispatch table, indexed by the operation table's dense index: a row without its
 * handler does not compile, and the table has exactly one entry per row. */
static const tsm_handler_fn handlers[] = {
#define X_HANDLER(NAME, lower, code, roles, dev, keys) [VTSM_ABI_REQ_##NAME] = tsm_verb_##lower,
    VTSM_ABI_REQUESTS(X_HANDLER)
#undef X_HANDLER
};
_Static_assert(VTSM_ARRAY_SIZE(handlers) == VTSM_ABI_REQ_COUNT_, "dispatch table incomplete");

static volatile sig_atomic_t stop_requested;
static int stop_pipe_fd = -1;

/* Requests taken from one client per loop iteration: a client that floods cannot keep
 * the loop from the others. */
#define FRAMES_PER_TURN 4
/* A client with this much of its replies unread gets no more requests read until it
 * catches up (the loop spends nothing on a client that does not read). */
#define OUTQ_PAUSE (64u << 10)

int64_t tsm_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tsm_config_defaults(struct tsm_config *cfg)
{
    cfg->doe_timeout_ms = 30000;
    cfg->hello_timeout_ms = 10000;
    cfg->frame_timeout_ms = 10000;
    cfg->idle_timeout_ms = 0;
    cfg->key_update_seq = UINT64_C(1) << 32; /* EVENT.1: well before DSP0277's 2^64 - 1 */
    cfg->outq_max = 2 * (VTSM_ABI_FRAME_MAX + VTSM_ABI_FRAME_HDR_SIZE);
    cfg->max_hosts = 64;
    cfg->max_guests = 128;
    cfg->max_unauth = 48;
}

void tsm_client_get(struct tsm_client *c)
{
    c->refs++;
}

void tsm_client_put(struct tsm *t, struct tsm_client *c)
{
    (void)t;
    if (--c->refs > 0)
        return;
    if (c->fd >= 0)
        close(c->fd);
    vtsm_abi_reader_free(&c->reader);
    vtsm_buf_free(&c->out);
    free(c);
}

void tsm_client_kill(struct tsm_client *c, const char *why)
{
    if (c->dead)
        return;
    c->dead = true;
    VTSM_INFO("dropping client fd %d (%s): %s", c->fd, vtsm_abi_role_name(c->role), why);
}

/* Write what the socket takes now. */
static void client_flush(struct tsm_client *c)
{
    while (!c->dead && c->out_off < c->out.len) {
        ssize_t k = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (k <= 0) {
            char why[96];
            snprintf(why, sizeof(why), "write failed: %s", k < 0 ? strerror(errno) : "closed");
            tsm_client_kill(c, why);
            return;
        }
        c->out_off += (size_t)k;
        c->stalled_ms = 0;
    }
    if (c->out_off == c->out.len) {
        vtsm_buf_reset(&c->out);
        c->out_off = 0;
        c->stalled_ms = 0;
    } else if (!c->stalled_ms) {
        c->stalled_ms = tsm_now_ms();
    }
}

vtsm_status tsm_client_send(struct tsm *t, struct tsm_client *c, const cbor_item_t *msg)
{
    struct vtsm_buf frame = {0};
    VTSM_ENSURE(!c->dead, VTSM_E_CLOSED, "client connection is gone");
    vtsm_status st = vtsm_abi_encode(msg, &frame);
    if (st == VTSM_OK && c->out.len - c->out_off + frame.len > t->cfg.outq_max) {
        char why[128];
        snprintf(why, sizeof(why), "it leaves more than %zu bytes of replies unread",
                 t->cfg.outq_max);
        tsm_client_kill(c, why);
        st = vtsm_fail(VTSM_E_CLOSED, "client dropped: %s", why);
    }
    if (st == VTSM_OK) {
        if (c->out_off > 0 && c->out_off == c->out.len) {
            vtsm_buf_reset(&c->out);
            c->out_off = 0;
        }
        st = vtsm_buf_append(&c->out, frame.data, frame.len);
    }
    vtsm_buf_free(&frame);
    if (st == VTSM_OK)
        client_flush(c);
    return st;
}

void tsm_client_reply(struct tsm *t, struct tsm_client *c, cbor_item_t *msg)
{
    if (!msg) {
        tsm_client_error(t, c, 0, VTSM_E_NOMEM, "out of memory building a reply");
        return;
    }
    vtsm_status st = tsm_client_send(t, c, msg);
    if (st == VTSM_E_ABI_OVERSIZED || st == VTSM_E_INVAL) {
        /* a reply that cannot be encoded is an ERROR, never a dropped connection */
        uint64_t id = 0;
        vtsm_abi_get_id(msg, &id);
        vtsm_refuse(VTSM_E_LIMIT, VTSM_RULE_ABI_11,
                    "the reply cannot be sent: %s (rule ABI.11: ask for less: per device, "
                    "summary, or a page)",
                    vtsm_err_detail());
        tsm_client_error(t, c, id, VTSM_E_LIMIT, NULL);
    }
    cbor_decref(&msg);
}

void tsm_client_error(struct tsm *t, struct tsm_client *c, uint64_t id, vtsm_status st,
                      const char *detail)
{
    cbor_item_t *m = vtsm_abi_error_msg(id, st, detail);
    if (m) {
        tsm_client_send(t, c, m);
        cbor_decref(&m);
    }
}

void tsm_verb_hello(struct tsm *t, struct tsm_client *c, uint64_t id,
                    const struct vtsm_abi_req *req)
{
    enum vtsm_abi_role r = (enum vtsm_abi_role)req->role; /* decoded: host or guest */
    if (!(req->versions & (1ull << VTSM_ABI_VERSION))) {
        tsm_client_error(t, c, id, VTSM_E_ABI_VERSION,
                         "no common ABI version: this TSM speaks version 1 only");
        return;
    }
    unsigned cap = r == VTSM_ABI_ROLE_HOST ? t->cfg.max_hosts : t->cfg.max_guests;
    if (t->nrole[r] >= cap) {
        vtsm_refuse(VTSM_E_LIMIT, VTSM_RULE_ABI_10,
                    "too many %s connections to tsmd (rule ABI.10: at most %u)",
                    vtsm_abi_role_name(r), cap);
        tsm_client_error(t, c, id, VTSM_E_LIMIT, NULL);
        tsm_client_kill(c, vtsm_err_detail());
        return;
    }
    t->nrole[VTSM_ABI_ROLE_NONE]--;
    t->nrole[r]++;
    c->role = r;
    cbor_item_t *res = vtsm_abi_result_msg(id);
    if (res && (vtsm_abi_put_uint(res, VTSM_ABI_K_VERSION, VTSM_ABI_VERSION) ||
                vtsm_abi_put_tstr(res, VTSM_ABI_K_TSM, "vtsm " VTSM_VERSION_STRING) ||
                vtsm_abi_put_tstr(res, VTSM_ABI_K_ROLE, vtsm_abi_role_name(r)))) {
        cbor_decref(&res);
        res = NULL;
    }
    tsm_client_reply(t, c, res);
}

/* Refuse a request. A DOE_RESPONSE gets no reply unless it is refused, and its refusal
 * names the refused opcode, so the host can tell it from a failure of the verb with the
 * same id (the pending exchange, if any, is not disturbed). */
static void refuse_request(struct tsm *t, struct tsm_client *c, uint64_t id, uint64_t op,
                           vtsm_status st)
{
    if (op != VTSM_ABI_OP_DOE_RESPONSE) {
        tsm_client_error(t, c, id, st, vtsm_err_detail());
        return;
    }
    cbor_item_t *m = vtsm_abi_error_msg(id, st, vtsm_err_detail());
    if (m && vtsm_abi_put_uint(m, VTSM_ABI_K_REQUEST_OP, VTSM_ABI_OP_DOE_RESPONSE) == VTSM_OK)
        tsm_client_send(t, c, m);
    if (m)
        cbor_decref(&m);
}

void tsm_verb_doe_response(struct tsm *t, struct tsm_client *c, uint64_t id,
                           const struct vtsm_abi_req *req)
{
    vtsm_status st = tsm_proxy_deliver(t, c, id, req);
    if (st)
        refuse_request(t, c, id, VTSM_ABI_OP_DOE_RESPONSE, st);
}

static void dispatch(struct tsm *t, struct tsm_client *c, const cbor_item_t *msg)
{
    uint64_t op = 0, id = 0;
    vtsm_status st;

    vtsm_err_clear();
    if ((st = vtsm_abi_get_op(msg, &op)) || (st = vtsm_abi_get_id(msg, &id))) {
        tsm_client_error(t, c, id, st, vtsm_err_detail());
        return;
    }
    const struct vtsm_abi_request *h = vtsm_abi_request_find(op);
    if (!h) {
        char d[96];
        snprintf(d, sizeof(d), "unknown opcode 0x%llx", (unsigned long long)op);
        tsm_client_error(t, c, id, VTSM_E_ABI_UNKNOWN_OP, d);
        return;
    }
    if (c->role == VTSM_ABI_ROLE_NONE && op != VTSM_ABI_OP_HELLO) {
        tsm_client_error(t, c, id, VTSM_E_ABI_NO_HELLO,
                         "HELLO must be the first message on a connection");
        return;
    }
    if (c->role != VTSM_ABI_ROLE_NONE && op == VTSM_ABI_OP_HELLO) {
        tsm_client_error(t, c, id, VTSM_E_ABI_SEQUENCE, "HELLO already done on this connection");
        return;
    }
    if (c->role != VTSM_ABI_ROLE_NONE && !(h->roles & (1u << c->role))) {
        char d[128];
        snprintf(d, sizeof(d), "%s is not allowed for role %s", h->name,
                 vtsm_abi_role_name(c->role));
        tsm_client_error(t, c, id, VTSM_E_ABI_ROLE, d);
        return;
    }
    /* schema, types and ranges: a handler sees only a validated request */
    struct vtsm_abi_req req;
    if ((st = vtsm_abi_req_decode(msg, h, &req))) {
        refuse_request(t, c, id, op, st);
        return;
    }
    handlers[h - vtsm_abi_requests](t, c, id, &req);
}

/* Unlink a dead client; the jobs it started see E_CLOSED at their next tick and hold
 * their references until they end. */
static void client_unlink(struct tsm *t, struct tsm_client *c)
{
    for (struct tsm_client **pp = &t->clients; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    t->nclients--;
    t->nrole[c->role]--;
    if (c->events) {
        c->events = false;
        t->subscribers--;
    }
    shutdown(c->fd, SHUT_RDWR);
    close(c->fd);
    c->fd = -1;
    tsm_client_put(t, c);
}

/* Is c read now? Not while its unread output or its device-less jobs are at their bound. */
static bool readable(const struct tsm_client *c)
{
    return c->out.len - c->out_off < OUTQ_PAUSE && c->devless_jobs < TSM_CLIENT_DEVLESS_MAX;
}

static void client_readable(struct tsm *t, struct tsm_client *c, int64_t now)
{
    for (int n = 0; n < FRAMES_PER_TURN && !c->dead && readable(c); n++) {
        cbor_item_t *msg = NULL;
        vtsm_status st = vtsm_abi_reader_read(&c->reader, c->fd, &msg);
        if (st == VTSM_E_ABI_MALFORMED) {
            /* One whole frame skipped; the stream stays usable. */
            tsm_client_error(t, c, 0, st, vtsm_err_detail());
            continue;
        }
        if (st) {
            if (st == VTSM_E_ABI_OVERSIZED)
                tsm_client_error(t, c, 0, st, vtsm_err_detail());
            tsm_client_kill(c, st == VTSM_E_CLOSED ? "closed by the peer" : vtsm_err_detail());
            return;
        }
        if (!msg)
            break;
        c->active_ms = now;
        unsigned queued = c->devless_jobs;
        dispatch(t, c, msg);
        cbor_decref(&msg);
        /* A request queued as a job runs after this pass: the client's next request is
         * read after it started, so one client's requests start in the order sent. */
        if (c->devless_jobs > queued)
            break;
    }
    /* half-open: a frame begun must complete in time */
    bool partial = vtsm_abi_reader_partial(&c->reader);
    if (!partial)
        c->partial_ms = 0;
    else if (!c->partial_ms)
        c->partial_ms = now;
}

static void accept_client(struct tsm *t, int64_t now)
{
    int fd = accept4(t->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
        return;
    char why[96] = "";
    if (t->nclients >= TSM_MAX_CLIENTS) {
        snprintf(why, sizeof(why), "too many connections to tsmd (rule ABI.10: at most %u)",
                 TSM_MAX_CLIENTS);
    } else if (t->nrole[VTSM_ABI_ROLE_NONE] >= t->cfg.max_unauth) {
        /* Make room by evicting the connection that has waited longest without a HELLO:
         * silent connections cannot keep a real client (which says HELLO at once) out. */
        struct tsm_client *oldest = NULL;
        for (struct tsm_client *x = t->clients; x; x = x->next)
            if (x->role == VTSM_ABI_ROLE_NONE && !x->dead &&
                (!oldest || x->accepted_ms <= oldest->accepted_ms))
                oldest = x;
        if (oldest) {
            vtsm_refuse(VTSM_E_LIMIT, VTSM_RULE_ABI_10,
                        "evicted: %u connections wait for their HELLO (rule ABI.10: at most %u)",
                        t->nrole[VTSM_ABI_ROLE_NONE], t->cfg.max_unauth);
            tsm_client_error(t, oldest, 0, VTSM_E_LIMIT, NULL);
            tsm_client_kill(oldest, vtsm_err_detail());
            client_unlink(t, oldest);
        }
    }
    if (why[0]) {
        /* Say why before closing, so the client sees more than a reset. */
        vtsm_refuse(VTSM_E_LIMIT, VTSM_RULE_ABI_10, "%s", why);
        cbor_item_t *m = vtsm_abi_error_msg(0, VTSM_E_LIMIT, NULL);
        struct vtsm_buf frame = {0};
        if (m && vtsm_abi_encode(m, &frame) == VTSM_OK &&
            send(fd, frame.data, frame.len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
            /* the socket buffer of a new connection takes one small frame */
        }
        vtsm_buf_free(&frame);
        if (m)
            cbor_decref(&m);
        VTSM_INFO("refusing a connection: %s", why);
        close(fd);
        return;
    }
    struct tsm_client *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return;
    }
    c->tsm = t;
    c->fd = fd;
    c->refs = 1; /* the client list's reference */
    c->accepted_ms = c->active_ms = now;
    vtsm_abi_reader_init(&c->reader);
    c->next = t->clients;
    t->clients = c;
    t->nclients++;
    t->nrole[VTSM_ABI_ROLE_NONE]++;
}

/* Time limits of a live client: the deadline it must meet next (INT64_MAX if none), and
 * whether it has already missed one (then *why says which). */
static int64_t client_deadline(const struct tsm *t, const struct tsm_client *c, int64_t now,
                               char *why, size_t why_len)
{
    int64_t d = INT64_MAX;
    if (c->role == VTSM_ABI_ROLE_NONE && t->cfg.hello_timeout_ms > 0) {
        d = c->accepted_ms + t->cfg.hello_timeout_ms;
        snprintf(why, why_len, "no HELLO within %d ms", t->cfg.hello_timeout_ms);
    }
    if (c->partial_ms && t->cfg.frame_timeout_ms > 0 &&
        c->partial_ms + t->cfg.frame_timeout_ms < d) {
        d = c->partial_ms + t->cfg.frame_timeout_ms;
        snprintf(why, why_len, "a frame left incomplete for %d ms", t->cfg.frame_timeout_ms);
    }
    if (c->stalled_ms && t->cfg.frame_timeout_ms > 0 &&
        c->stalled_ms + t->cfg.frame_timeout_ms < d) {
        d = c->stalled_ms + t->cfg.frame_timeout_ms;
        snprintf(why, why_len, "its replies went unread for %d ms", t->cfg.frame_timeout_ms);
    }
    if (c->jobs == 0 && c->out.len == c->out_off && t->cfg.idle_timeout_ms > 0 &&
        c->active_ms + t->cfg.idle_timeout_ms < d) {
        d = c->active_ms + t->cfg.idle_timeout_ms;
        snprintf(why, why_len, "idle for %d ms", t->cfg.idle_timeout_ms);
    }
    (void)now;
    return d;
}

/* An inherited listening socket (systemd socket activation) must be a listening Unix
 * stream socket; it is made non-blocking and its path recorded for messages. */
static vtsm_status tsm_adopt_listener(int fd, char *path, size_t cap)
{
    int type = 0, listening = 0, flags;
    socklen_t len = sizeof(type);
    struct sockaddr_un sa = {0};
    socklen_t salen = sizeof(sa);

    VTSM_ENSURE(getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM,
                VTSM_E_CONFIG, "inherited fd %d is not a stream socket", fd);
    len = sizeof(listening);
    VTSM_ENSURE(getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening,
                VTSM_E_CONFIG, "inherited fd %d is not listening", fd);
    VTSM_ENSURE(getsockname(fd, (struct sockaddr *)&sa, &salen) == 0 && sa.sun_family == AF_UNIX,
                VTSM_E_CONFIG, "inherited fd %d is not a Unix socket", fd);
    VTSM_ENSURE((flags = fcntl(fd, F_GETFL)) >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0,
                VTSM_E_IO, "inherited fd %d: %s", fd, strerror(errno));
    if (sa.sun_path[0])
        snprintf(path, cap, "%.*s", (int)sizeof(sa.sun_path), sa.sun_path);
    else
        snprintf(path, cap, "inherited socket (fd %d)", fd);
    return VTSM_OK;
}

vtsm_status tsm_init(struct tsm *t, const struct tsm_config *cfg)
{
    memset(t, 0, sizeof(*t));
    t->cfg = *cfg;
    tsm_tvm_registry_init(&t->tvms);
    tsm_pdev_registry_init(&t->devs, t, &t->tvms);
    t->listen_fd = -1;
    VTSM_ENSURE(pipe2(t->wake_pipe, O_CLOEXEC | O_NONBLOCK) == 0, VTSM_E_IO, "pipe: %s",
                strerror(errno));
    stop_pipe_fd = t->wake_pipe[1];

    if (cfg->inherited_fd > 0) {
        t->listen_fd = cfg->inherited_fd;
        VTSM_GUARD(
            tsm_adopt_listener(t->listen_fd, t->cfg.socket_path, sizeof(t->cfg.socket_path)));
        return tsm_offload_start();
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    VTSM_ENSURE(strlen(cfg->socket_path) < sizeof(sa.sun_path), VTSM_E_CONFIG,
                "socket path too long: %s", cfg->socket_path);
    strcpy(sa.sun_path, cfg->socket_path);
    if (vtsm_mkdir_parent(cfg->socket_path) != 0)
        return vtsm_fail(VTSM_E_CONFIG, "cannot create the directory of %s: %s", cfg->socket_path,
                         strerror(errno));
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    VTSM_ENSURE(s >= 0, VTSM_E_IO, "socket: %s", strerror(errno));
    /* A stale socket file from a dead tsmd is replaced; a live tsmd is not. */
    struct stat sb;
    if (lstat(cfg->socket_path, &sb) == 0) {
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool live = probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0;
        if (probe >= 0)
            close(probe);
        if (live || !S_ISSOCK(sb.st_mode)) {
            close(s);
            return vtsm_fail(VTSM_E_EXISTS, "%s %s", cfg->socket_path,
                             live ? "is served by a running tsmd" : "exists and is not a socket");
        }
        unlink(cfg->socket_path);
    }
    mode_t old = umask(0077);
    int rc = bind(s, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (rc != 0 || listen(s, 64) != 0) {
        int e = errno;
        close(s);
        return vtsm_fail(VTSM_E_IO, "listen on %s: %s", cfg->socket_path, strerror(e));
    }
    t->listen_fd = s;
    return tsm_offload_start();
}

void tsm_stop(struct tsm *t)
{
    (void)t;
    stop_requested = 1;
    if (stop_pipe_fd >= 0) {
        ssize_t r = write(stop_pipe_fd, "s", 1);
        (void)r;
    }
}

/* Drop the clients marked dead; ends their jobs' waits (E_CLOSED) first. */
static void sweep(struct tsm *t, int64_t now)
{
    bool any = false;
    for (struct tsm_client *c = t->clients; c; c = c->next)
        any |= c->dead;
    if (!any)
        return;
    tsm_job_tick(t, now);
    for (struct tsm_client **pp = &t->clients; *pp;) {
        struct tsm_client *c = *pp;
        if (!c->dead) {
            pp = &c->next;
            continue;
        }
        client_unlink(t, c); /* *pp is now the next client */
    }
}

vtsm_status tsm_run(struct tsm *t)
{
    struct pollfd *pfds = NULL;
    struct tsm_client **owners = NULL;
    size_t cap = 0;
    vtsm_status st = VTSM_OK;

    while (!stop_requested) {
        int64_t now = tsm_now_ms();
        int64_t next = tsm_job_tick(t, now);
        int64_t due = tsm_event_tick(t, now); /* policy events */
        if (due < next)
            next = due;
        /* time limits of the clients */
        for (struct tsm_client *c = t->clients; c; c = c->next) {
            char why[96] = "";
            int64_t d = client_deadline(t, c, now, why, sizeof(why));
            if (d <= now)
                tsm_client_kill(c, why);
            else if (d < next)
                next = d;
        }
        sweep(t, now);

        size_t n = 3 + t->nclients;
        if (n > cap) {
            size_t ncap = n * 2;
            struct pollfd *np = realloc(pfds, ncap * sizeof(*pfds));
            if (np)
                pfds = np;
            struct tsm_client **no = np ? realloc(owners, ncap * sizeof(*owners)) : NULL;
            if (no)
                owners = no;
            if (!np || !no) {
                st = vtsm_fail(VTSM_E_NOMEM, "poll set of %zu descriptors", n);
                break;
            }
            cap = ncap;
        }
        pfds[0] = (struct pollfd){.fd = t->listen_fd, .events = POLLIN};
        pfds[1] = (struct pollfd){.fd = t->wake_pipe[0], .events = POLLIN};
        pfds[2] = (struct pollfd){.fd = tsm_offload_fd(), .events = POLLIN};
        size_t i = 3;
        for (struct tsm_client *c = t->clients; c; c = c->next, i++) {
            short ev = 0;
            if (readable(c))
                ev |= POLLIN;
            if (c->out_off < c->out.len)
                ev |= POLLOUT;
            pfds[i] = (struct pollfd){.fd = c->fd, .events = ev};
            owners[i] = c;
            tsm_client_get(c); /* stays valid while the handlers below run */
        }
        int timeout = -1;
        if (next != INT64_MAX)
            timeout = next - now > INT32_MAX ? INT32_MAX : (int)(next - now);
        int r = poll(pfds, n, timeout);
        if (r < 0 && errno != EINTR) {
            st = vtsm_fail(VTSM_E_IO, "poll: %s", strerror(errno));
            stop_requested = 1;
        }
        now = tsm_now_ms();
        if (r > 0 && (pfds[0].revents & POLLIN))
            accept_client(t, now);
        if (r > 0 && (pfds[1].revents & POLLIN)) {
            char drain[64];
            while (read(t->wake_pipe[0], drain, sizeof(drain)) > 0) {
            }
        }
        if (r > 0 && (pfds[2].revents & POLLIN))
            tsm_offload_complete();
        /* Oldest client first (the list is newest first): a host that closed and
         * reconnects finds its old connection's jobs ended before its new requests. */
        for (i = n; r > 0 && i-- > 3;) {
            struct tsm_client *c = owners[i];
            if (!c->dead && (pfds[i].revents & POLLOUT))
                client_flush(c);
            if (!c->dead && (pfds[i].revents & (POLLIN | POLLHUP | POLLERR)) && readable(c))
                client_readable(t, c, now);
            else if (!c->dead && (pfds[i].revents & (POLLHUP | POLLERR)))
                tsm_client_kill(c, "hung up");
            if (c->dead && c->jobs)
                tsm_job_tick(t, now); /* its jobs end now, releasing their devices */
        }
        tsm_job_run_ready(t); /* the requests just read that run as jobs */
        for (i = 3; i < n; i++)
            tsm_client_put(t, owners[i]);
        sweep(t, now);
    }
    free(pfds);
    free(owners);
    return st;
}

void tsm_fini(struct tsm *t)
{
    /* End every job: each pending exchange fails with E_ABORTED, and a job that tries
     * another is refused at once, so this terminates. */
    t->stopping = true;
    for (unsigned round = 0; t->jobs && round < 1000; round++) {
        tsm_job_run_ready(t);
        tsm_job_tick(t, tsm_now_ms()); /* DOE waits end with E_ABORTED */
        tsm_offload_wait();            /* crypto in flight finishes and its jobs go on */
    }
    tsm_offload_stop();
    while (t->clients) {
        struct tsm_client *c = t->clients;
        c->dead = true;
        client_unlink(t, c);
    }
    tsm_event_fini(t);
    tsm_pdev_registry_fini(&t->devs);
    tsm_tvm_registry_fini(&t->tvms);
    if (t->listen_fd >= 0) {
        close(t->listen_fd);
        if (t->cfg.inherited_fd <= 0) /* an inherited socket's file is its owner's */
            unlink(t->cfg.socket_path);
    }
    close(t->wake_pipe[0]);
    close(t->wake_pipe[1]);
    stop_pipe_fd = -1;
    vtsm_trust_free(t->cfg.trust);
    tsm_platform_free(t->cfg.platform);
    EVP_PKEY_free(t->cfg.identity_key);
}
