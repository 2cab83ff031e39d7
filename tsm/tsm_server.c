/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The ABI server: a Unix socket, one poll loop on the main thread, one dispatch table.
 * Every request is checked before any state is touched: HELLO first, known opcode,
 * role allowed, no unknown keys; only then does its handler run.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "tsm_int.h"
#include "vtsm_guard.h"
#include "vtsm_log.h"
#include "vtsm_path.h"

#define ROLE_HOST  (1u << VTSM_ABI_ROLE_HOST)
#define ROLE_GUEST (1u << VTSM_ABI_ROLE_GUEST)

static void handle_hello(struct tsm *t, struct tsm_client *c, uint64_t id, const cbor_item_t *msg);
static void handle_doe_response(struct tsm *t, struct tsm_client *c, uint64_t id,
                                const cbor_item_t *msg);

/* The dispatch table: opcode -> handler, roles allowed, keys allowed. */
static const struct handler {
    uint64_t op;
    tsm_handler_fn fn;
    unsigned roles;
    const char *const *keys;
} handlers[] = {
    {VTSM_ABI_OP_HELLO, handle_hello, ROLE_HOST | ROLE_GUEST, vtsm_abi_keys_hello},
    {VTSM_ABI_OP_DEVICE_ADD, tsm_verb_device_add, ROLE_HOST, vtsm_abi_keys_device_add},
    {VTSM_ABI_OP_DEVICE_REMOVE, tsm_verb_device_remove, ROLE_HOST, vtsm_abi_keys_device_remove},
    {VTSM_ABI_OP_DEVICE_CONNECT, tsm_verb_device_connect, ROLE_HOST, vtsm_abi_keys_device_connect},
    {VTSM_ABI_OP_DEVICE_RECLAIM, tsm_verb_device_reclaim, ROLE_HOST, vtsm_abi_keys_device_reclaim},
    {VTSM_ABI_OP_STATUS, tsm_verb_status, ROLE_HOST, vtsm_abi_keys_status},
    {VTSM_ABI_OP_IDE_REFRESH, tsm_verb_ide_refresh, ROLE_HOST, vtsm_abi_keys_ide_refresh},
    {VTSM_ABI_OP_IDE_LINK_CHECK, tsm_verb_ide_link_check, ROLE_HOST, vtsm_abi_keys_ide_link_check},
    {VTSM_ABI_OP_SPDM_KEY_UPDATE, tsm_verb_spdm_key_update, ROLE_HOST,
     vtsm_abi_keys_spdm_key_update},
    {VTSM_ABI_OP_SPDM_HEARTBEAT, tsm_verb_spdm_heartbeat, ROLE_HOST, vtsm_abi_keys_spdm_heartbeat},
    /* The connection that carries a verb services its DOE exchanges, whatever its role. */
    {VTSM_ABI_OP_DOE_RESPONSE, handle_doe_response, ROLE_HOST | ROLE_GUEST,
     vtsm_abi_keys_doe_response},
    {VTSM_ABI_OP_TVM_CREATE, tsm_verb_tvm_create, ROLE_HOST, vtsm_abi_keys_tvm_create},
    {VTSM_ABI_OP_TVM_DESTROY, tsm_verb_tvm_destroy, ROLE_HOST, vtsm_abi_keys_tvm_destroy},
    {VTSM_ABI_OP_TDI_BIND, tsm_verb_tdi_bind, ROLE_HOST, vtsm_abi_keys_tdi_bind},
    {VTSM_ABI_OP_TDI_UNBIND, tsm_verb_tdi_unbind, ROLE_HOST, vtsm_abi_keys_tdi_unbind},
    /* A guest request is authenticated by the TVM's signature, not by the connection: a
     * host may relay it, a guest may send it directly. */
    {VTSM_ABI_OP_GUEST_REQUEST, tsm_verb_guest_request, ROLE_HOST | ROLE_GUEST,
     vtsm_abi_keys_guest_request},
};

/* Every client-to-TSM opcode the ABI defines has a handler (see docs/abi.md). */
_Static_assert(sizeof(handlers) / sizeof(handlers[0]) == 16, "dispatch table incomplete");

static volatile sig_atomic_t stop_requested;
static int stop_pipe_fd = -1;

void tsm_client_get(struct tsm_client *c)
{
    c->refs++;
}

static void client_free(struct tsm_client *c)
{
    close(c->fd);
    vtsm_abi_reader_free(&c->reader);
    pthread_mutex_destroy(&c->write_lock);
    free(c);
}

void tsm_client_put(struct tsm *t, struct tsm_client *c)
{
    (void)t;
    if (--c->refs == 0)
        client_free(c);
}

vtsm_status tsm_client_send(struct tsm *t, struct tsm_client *c, const cbor_item_t *msg)
{
    pthread_mutex_lock(&c->write_lock);
    vtsm_status st = vtsm_abi_send(c->fd, msg);
    pthread_mutex_unlock(&c->write_lock);
    if (st != VTSM_OK) {
        pthread_mutex_lock(&t->lock);
        if (!c->dead) {
            c->dead = true;
            pthread_cond_broadcast(&t->cond);
            /* Let the poll loop notice and drop the client. */
            if (write(t->wake_pipe[1], "d", 1) < 0) {
                /* the loop will see the hang-up itself */
            }
        }
        pthread_mutex_unlock(&t->lock);
    }
    return st;
}

void tsm_client_reply(struct tsm *t, struct tsm_client *c, cbor_item_t *msg)
{
    if (!msg) {
        tsm_client_error(t, c, 0, VTSM_E_NOMEM, "out of memory building a reply");
        return;
    }
    tsm_client_send(t, c, msg);
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

static void handle_hello(struct tsm *t, struct tsm_client *c, uint64_t id, const cbor_item_t *msg)
{
    const cbor_item_t *versions;
    char role[16];
    vtsm_status st;

    if (c->role != VTSM_ABI_ROLE_NONE) {
        tsm_client_error(t, c, id, VTSM_E_ABI_SEQUENCE, "HELLO already done on this connection");
        return;
    }
    if ((st = vtsm_abi_get_array(msg, VTSM_ABI_K_VERSIONS, &versions)) ||
        (st = vtsm_abi_get_tstr(msg, VTSM_ABI_K_ROLE, role, sizeof(role)))) {
        tsm_client_error(t, c, id, st, vtsm_err_detail());
        return;
    }
    enum vtsm_abi_role r = vtsm_abi_role_parse(role);
    if (r == VTSM_ABI_ROLE_NONE) {
        tsm_client_error(t, c, id, VTSM_E_ABI_ARG, "HELLO role must be \"host\" or \"guest\"");
        return;
    }
    bool ok = false;
    size_t n = cbor_array_size(versions);
    cbor_item_t **items = cbor_array_handle(versions);
    for (size_t i = 0; i < n; i++)
        if (cbor_isa_uint(items[i]) && cbor_get_int(items[i]) == VTSM_ABI_VERSION)
            ok = true;
    if (!ok) {
        tsm_client_error(t, c, id, VTSM_E_ABI_VERSION,
                         "no common ABI version: this TSM speaks version 1 only");
        return;
    }
    c->role = r;
    cbor_item_t *res = vtsm_abi_result_msg(id);
    if (res && (vtsm_abi_put_uint(res, VTSM_ABI_K_VERSION, VTSM_ABI_VERSION) ||
                vtsm_abi_put_tstr(res, VTSM_ABI_K_TSM, "vtsm " VTSM_VERSION_STRING) ||
                vtsm_abi_put_tstr(res, VTSM_ABI_K_ROLE, role))) {
        cbor_decref(&res);
        res = NULL;
    }
    tsm_client_reply(t, c, res);
}

static void handle_doe_response(struct tsm *t, struct tsm_client *c, uint64_t id,
                                const cbor_item_t *msg)
{
    pthread_mutex_lock(&t->lock);
    vtsm_status st = tsm_proxy_deliver(t, c, msg);
    pthread_mutex_unlock(&t->lock);
    /* A doe_response gets no reply unless it is refused; the pending exchange (if any)
     * is not disturbed by a refused one. The refusal names the refused opcode, so the
     * host can tell it from a failure of the verb with the same id. */
    if (st) {
        cbor_item_t *m = vtsm_abi_error_msg(id, st, vtsm_err_detail());
        if (m && vtsm_abi_put_uint(m, VTSM_ABI_K_REQUEST_OP, VTSM_ABI_OP_DOE_RESPONSE) == VTSM_OK)
            tsm_client_send(t, c, m);
        if (m)
            cbor_decref(&m);
    }
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
    const struct handler *h = NULL;
    for (size_t i = 0; i < VTSM_ARRAY_SIZE(handlers); i++)
        if (handlers[i].op == op)
            h = &handlers[i];
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
    if (c->role != VTSM_ABI_ROLE_NONE && !(h->roles & (1u << c->role))) {
        char d[128];
        snprintf(d, sizeof(d), "%s is not allowed for role %s", vtsm_abi_op_name(op),
                 vtsm_abi_role_name(c->role));
        tsm_client_error(t, c, id, VTSM_E_ABI_ROLE, d);
        return;
    }
    if ((st = vtsm_abi_check_keys(msg, h->keys))) {
        tsm_client_error(t, c, id, st, vtsm_err_detail());
        return;
    }
    h->fn(t, c, id, msg);
}

static void client_drop(struct tsm *t, struct tsm_client *c)
{
    pthread_mutex_lock(&t->lock);
    c->dead = true;
    pthread_cond_broadcast(&t->cond);
    for (struct tsm_client **pp = &t->clients; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    shutdown(c->fd, SHUT_RDWR);
    tsm_client_put(t, c);
    pthread_mutex_unlock(&t->lock);
}

static void client_readable(struct tsm *t, struct tsm_client *c)
{
    for (;;) {
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
            if (st != VTSM_E_CLOSED)
                VTSM_INFO("dropping client: %s", vtsm_err_detail());
            client_drop(t, c);
            return;
        }
        if (!msg)
            return;
        dispatch(t, c, msg);
        cbor_decref(&msg);
        if (c->dead) {
            client_drop(t, c);
            return;
        }
    }
}

static void accept_client(struct tsm *t)
{
    int fd = accept4(t->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
        return;
    unsigned n = 0;
    pthread_mutex_lock(&t->lock);
    for (struct tsm_client *x = t->clients; x; x = x->next)
        n++;
    pthread_mutex_unlock(&t->lock);
    if (n >= TSM_MAX_CLIENTS) {
        /* Say why before closing, so the client sees more than a reset. */
        cbor_item_t *m =
            vtsm_abi_error_msg(0, VTSM_E_LIMIT, "too many connections to tsmd (at most 256)");
        if (m) {
            vtsm_abi_send(fd, m);
            cbor_decref(&m);
        }
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
    pthread_mutex_init(&c->write_lock, NULL);
    vtsm_abi_reader_init(&c->reader);
    pthread_mutex_lock(&t->lock);
    c->next = t->clients;
    t->clients = c;
    pthread_mutex_unlock(&t->lock);
}

vtsm_status tsm_init(struct tsm *t, const struct tsm_config *cfg)
{
    memset(t, 0, sizeof(*t));
    t->cfg = *cfg;
    tsm_tvm_registry_init(&t->tvms);
    t->listen_fd = -1;
    pthread_mutex_init(&t->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cond, &ca);
    pthread_condattr_destroy(&ca);
    VTSM_ENSURE(pipe2(t->wake_pipe, O_CLOEXEC | O_NONBLOCK) == 0, VTSM_E_IO, "pipe: %s",
                strerror(errno));
    stop_pipe_fd = t->wake_pipe[1];

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
    return VTSM_OK;
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

vtsm_status tsm_run(struct tsm *t)
{
    struct pollfd *pfds = NULL;
    struct tsm_client **owners = NULL;
    size_t cap = 0;

    while (!stop_requested) {
        pthread_mutex_lock(&t->lock);
        size_t n = 2;
        for (struct tsm_client *c = t->clients; c; c = c->next)
            n++;
        if (n > cap) {
            cap = n * 2;
            pfds = realloc(pfds, cap * sizeof(*pfds));
            owners = realloc(owners, cap * sizeof(*owners));
            if (!pfds || !owners) {
                pthread_mutex_unlock(&t->lock);
                free(pfds);
                free(owners);
                return vtsm_fail(VTSM_E_NOMEM, "poll set");
            }
        }
        pfds[0] = (struct pollfd){.fd = t->listen_fd, .events = POLLIN};
        pfds[1] = (struct pollfd){.fd = t->wake_pipe[0], .events = POLLIN};
        size_t i = 2;
        for (struct tsm_client *c = t->clients; c; c = c->next, i++) {
            pfds[i] = (struct pollfd){.fd = c->fd, .events = POLLIN};
            owners[i] = c;
            tsm_client_get(c); /* keep alive across the unlocked dispatch below */
        }
        pthread_mutex_unlock(&t->lock);

        int r = poll(pfds, n, -1);
        if (r < 0 && errno != EINTR) {
            VTSM_ERR("poll: %s", strerror(errno));
            stop_requested = 1;
        }
        if (r > 0 && (pfds[1].revents & POLLIN)) {
            char drain[64];
            while (read(t->wake_pipe[0], drain, sizeof(drain)) > 0) {
            }
        }
        if (r > 0 && (pfds[0].revents & POLLIN))
            accept_client(t);
        for (i = 2; i < n; i++) {
            struct tsm_client *c = owners[i];
            bool dead;
            pthread_mutex_lock(&t->lock);
            dead = c->dead;
            pthread_mutex_unlock(&t->lock);
            if (r > 0 && !dead && (pfds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                client_readable(t, c);
            else if (dead) {
                /* marked dead by a worker's failed send: make sure it leaves the list */
                pthread_mutex_lock(&t->lock);
                bool listed = false;
                for (struct tsm_client *x = t->clients; x; x = x->next)
                    listed |= (x == c);
                pthread_mutex_unlock(&t->lock);
                if (listed)
                    client_drop(t, c);
            }
            pthread_mutex_lock(&t->lock);
            tsm_client_put(t, c);
            pthread_mutex_unlock(&t->lock);
        }
    }
    free(pfds);
    free(owners);
    return VTSM_OK;
}

void tsm_fini(struct tsm *t)
{
    pthread_mutex_lock(&t->lock);
    t->stopping = true;
    pthread_cond_broadcast(&t->cond);
    while (t->workers)
        pthread_cond_wait(&t->cond, &t->lock);
    while (t->clients) {
        struct tsm_client *c = t->clients;
        t->clients = c->next;
        c->dead = true;
        tsm_client_put(t, c);
    }
    while (t->pdevs) {
        struct tsm_pdev *p = t->pdevs;
        t->pdevs = p->next;
        tsm_pdev_reset(p);
        vtsm_buf_wipe(&p->verb.rsp);
        free(p);
    }
    tsm_tvm_registry_fini(&t->tvms);
    pthread_mutex_unlock(&t->lock);
    if (t->listen_fd >= 0) {
        close(t->listen_fd);
        unlink(t->cfg.socket_path);
    }
    close(t->wake_pipe[0]);
    close(t->wake_pipe[1]);
    stop_pipe_fd = -1;
    vtsm_trust_free(t->cfg.trust);
    tsm_platform_free(t->cfg.platform);
    EVP_PKEY_free(t->cfg.identity_key);
}
