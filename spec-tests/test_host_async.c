/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * End to end, asynchronous DOE callbacks of the host shim (vtsm_host_register_doe_async,
 * vtsm_host_doe_complete/_fail) against real tsmd and tsm-devemu processes: many devices
 * in flight through one handle and one event loop, answers given out of order, an
 * exchange failed by the application, a verb that fails (the TSM's DOE timeout) while
 * its exchange is pending, and a handle closed with exchanges pending. Failure paths
 * first.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "e2e_util.h"
#include "vtsm_host_cbor.h"
#include "vtsm_proc.h"
#include "vtsm_sock.h"

#define NDEV 4

/* ------------------------------------------------------------ the recorder */

/* A verb's completion. */
struct done {
    int calls;
    vtsm_status st;
    char detail[512];
    struct vtsm_host *h;
};

static void on_done(void *ctx, vtsm_status st, const cbor_item_t *result)
{
    struct done *d = ctx;
    (void)result;
    d->calls++;
    d->st = st;
    snprintf(d->detail, sizeof(d->detail), "%s",
             st == VTSM_OK ? "" : vtsm_host_last_error(d->h)->detail);
}

/*
 * An asynchronous device that only records what it is asked: each exchange is kept (a
 * copy of the request) until the test answers it through the device's real spdm-emu
 * TCP connection (vtsm_doe_tcp_fn) or fails it.
 */
struct held {
    uint64_t token;
    int dev;
    uint8_t *req;
    size_t len;
};

struct rec {
    struct vtsm_host *h;
    struct vtsm_doe_tcp *tcp[NDEV];
    int dev_of_ctx[NDEV];
    struct held held[64];
    int nheld;
    uint64_t cancelled[64];
    int ncancelled;
    int started;
    int refuse_next; /* refuse the next start with -EAGAIN */
};

static struct rec g_rec;

static int rec_start(void *ctx, struct vtsm_host *h, uint64_t token, const uint8_t *req,
                     size_t req_len)
{
    int dev = *(int *)ctx;
    if (h != g_rec.h || g_rec.nheld == 64)
        return -EINVAL;
    g_rec.started++;
    if (g_rec.refuse_next) {
        g_rec.refuse_next = 0;
        return -EAGAIN;
    }
    struct held *x = &g_rec.held[g_rec.nheld++];
    x->token = token;
    x->dev = dev;
    x->len = req_len;
    x->req = malloc(req_len);
    if (!x->req)
        return -ENOMEM;
    memcpy(x->req, req, req_len);
    return 0;
}

static void rec_cancel(void *ctx, struct vtsm_host *h, uint64_t token)
{
    (void)ctx;
    (void)h;
    if (g_rec.ncancelled < 64)
        g_rec.cancelled[g_rec.ncancelled++] = token;
    for (int i = 0; i < g_rec.nheld; i++) {
        if (g_rec.held[i].token == token) {
            free(g_rec.held[i].req);
            g_rec.held[i] = g_rec.held[--g_rec.nheld];
            return;
        }
    }
}

/* Remove held[i] and return it (the caller frees req). */
static struct held take(int i)
{
    struct held x = g_rec.held[i];
    g_rec.held[i] = g_rec.held[--g_rec.nheld];
    return x;
}

/* Answer held exchange i from the device itself. */
static void answer_held(int i)
{
    static uint8_t rsp[VTSM_HOST_DOE_RSP_CAP];
    struct held x = take(i);
    size_t n = sizeof(rsp);
    int rc = vtsm_doe_tcp_fn(g_rec.tcp[x.dev], x.req, x.len, rsp, &n);
    free(x.req);
    assert_int_equal(rc, 0);
    assert_int_equal(vtsm_host_doe_complete(g_rec.h, x.token, rsp, n), VTSM_OK);
}

/* One round of the TSM connection: wait for it (up to 10 s) and dispatch. */
static void pump(struct vtsm_host *h)
{
    struct pollfd p = {.fd = vtsm_host_fd(h), .events = POLLIN};
    assert_true(poll(&p, 1, 10000) > 0);
    assert_int_equal(vtsm_host_dispatch(h), VTSM_OK);
}

/* tsmd handle + n devemu devices "aN" registered with the recorder. */
static void rec_setup(struct e2e *e, int n, const char *const *dev_args)
{
    memset(&g_rec, 0, sizeof(g_rec));
    assert_int_equal(vtsm_host_open(e->sock, &g_rec.h), VTSM_OK);
    for (int i = 0; i < n; i++) {
        char name[16], doe[64];
        int port = e2e_devemu(e, dev_args);
        assert_true(port > 0);
        snprintf(name, sizeof(name), "0000:%02x:00.0", 0x0a + i);
        assert_int_equal(vtsm_doe_tcp_open(e2e_doe(doe, sizeof(doe), port), &g_rec.tcp[i]),
                         VTSM_OK);
        g_rec.dev_of_ctx[i] = i;
        assert_int_equal(vtsm_host_register_doe_async(g_rec.h, name, rec_start, rec_cancel,
                                                      &g_rec.dev_of_ctx[i]),
                         VTSM_OK);
        assert_int_equal(vtsm_host_device_add_cbor(g_rec.h, name, -1), VTSM_OK);
    }
}

static void rec_teardown(int n)
{
    vtsm_host_close(g_rec.h);
    for (int i = 0; i < n; i++)
        vtsm_doe_tcp_close(g_rec.tcp[i]);
    while (g_rec.nheld)
        free(take(0).req);
}

/* ------------------------------------------------------------------ tests */

/* The application fails one exchange: the verb fails with E_DOE_HOST naming the
 * failure, the token is spent, and the device connects afterwards. */
static void test_application_fails_exchange(void **state)
{
    struct e2e *e = *state;
    const char *args[] = {"--alg", "p256", NULL};
    rec_setup(e, 1, args);
    struct done d = {.h = g_rec.h};
    assert_int_equal(vtsm_host_connect_start_cbor(g_rec.h, "0000:0a:00.0", NULL, on_done, &d),
                     VTSM_OK);
    /* answer two exchanges from the device, fail the third */
    for (int k = 0; k < 3; k++) {
        while (g_rec.nheld == 0)
            pump(g_rec.h);
        assert_int_equal(vtsm_host_doe_pending(g_rec.h), 1);
        if (k < 2) {
            answer_held(0);
            continue;
        }
        struct held x = take(0);
        free(x.req);
        assert_int_equal(vtsm_host_doe_fail(g_rec.h, x.token, -EIO), VTSM_OK);
        assert_int_equal(vtsm_host_doe_pending(g_rec.h), 0);
        /* spent: a second answer is refused and changes nothing */
        uint8_t junk[12] = {0};
        assert_int_equal(vtsm_host_doe_complete(g_rec.h, x.token, junk, sizeof(junk)),
                         VTSM_E_NOT_FOUND);
        assert_int_equal(vtsm_host_doe_fail(g_rec.h, x.token, EIO), VTSM_E_NOT_FOUND);
    }
    while (d.calls == 0)
        pump(g_rec.h);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.st, VTSM_E_DOE_HOST);
    E2E_HAS(d.detail, "DOE exchange failed");
    E2E_HAS(d.detail, strerror(EIO));
    assert_int_equal(g_rec.ncancelled, 0);

    /* a start that refuses (negative errno) fails the verb the same way */
    struct done d2 = {.h = g_rec.h};
    g_rec.refuse_next = 1;
    assert_int_equal(vtsm_host_connect_start_cbor(g_rec.h, "0000:0a:00.0", NULL, on_done, &d2),
                     VTSM_OK);
    while (d2.calls == 0)
        pump(g_rec.h);
    assert_int_equal(d2.st, VTSM_E_DOE_HOST);
    E2E_HAS(d2.detail, strerror(EAGAIN));

    /* the device is still usable: a full connect through the same callbacks */
    struct done d3 = {.h = g_rec.h};
    assert_int_equal(vtsm_host_connect_start_cbor(g_rec.h, "0000:0a:00.0", NULL, on_done, &d3),
                     VTSM_OK);
    while (d3.calls == 0) {
        if (g_rec.nheld)
            answer_held(0);
        else
            pump(g_rec.h);
    }
    if (d3.st != VTSM_OK)
        fail_msg("connect after a failed exchange: %s", d3.detail);
    rec_teardown(1);
}

/* The TSM gives up on a verb (its DOE timeout) while the exchange is pending: the
 * exchange is cancelled (cancel runs with its token), answering it later is refused. */
static void test_verb_fails_while_pending(void **state)
{
    struct e2e *e = *state;
    const char *args[] = {"--alg", "p256", NULL};
    rec_setup(e, 1, args);
    struct done d = {.h = g_rec.h};
    assert_int_equal(vtsm_host_connect_start_cbor(g_rec.h, "0000:0a:00.0", NULL, on_done, &d),
                     VTSM_OK);
    while (g_rec.nheld == 0)
        pump(g_rec.h);
    uint64_t token = g_rec.held[0].token;
    uint8_t *req = g_rec.held[0].req;
    size_t len = g_rec.held[0].len;
    g_rec.held[0].req = NULL; /* kept: answered late below */
    long t0 = vtsm_now_ms();
    while (d.calls == 0)
        pump(g_rec.h);
    assert_true(vtsm_now_ms() - t0 < 5000);
    assert_int_equal(d.st, VTSM_E_TIMEOUT);
    E2E_HAS(d.detail, "no doe_response");
    assert_int_equal(g_rec.ncancelled, 1);
    assert_true(g_rec.cancelled[0] == token);
    assert_int_equal(g_rec.nheld, 0);
    assert_int_equal(vtsm_host_doe_pending(g_rec.h), 0);
    /* the device's late answer has nowhere to go */
    static uint8_t rsp[VTSM_HOST_DOE_RSP_CAP];
    size_t n = sizeof(rsp);
    assert_int_equal(vtsm_doe_tcp_fn(g_rec.tcp[0], req, len, rsp, &n), 0);
    free(req);
    assert_int_equal(vtsm_host_doe_complete(g_rec.h, token, rsp, n), VTSM_E_NOT_FOUND);
    /* and the handle still works: STATUS through the blocking form */
    cbor_item_t *res = NULL;
    assert_int_equal(vtsm_host_status_cbor(g_rec.h, "0000:0a:00.0", &res), VTSM_OK);
    cbor_decref(&res);
    rec_teardown(1);
}

/* Closing the handle with exchanges pending: every verb completes with E_ABORTED,
 * every exchange is cancelled exactly once, the real TCP backend drops its connection,
 * and a new handle connects the same devices through the same backends. */
static int g_backend_cancels;
static void counting_cancel(void *ctx, struct vtsm_host *h, uint64_t token)
{
    g_backend_cancels++;
    vtsm_doe_tcp_cancel(ctx, h, token);
}

/* tsmd ends a vanished host's jobs on its own time: wait until dev is free again. */
static void wait_unconnected(struct e2e *e, const char *dev)
{
    static struct e2e_run r;
    for (int i = 0; i < 250; i++) {
        const char *argv[] = {"--json", "status", dev, NULL};
        if (e2e_host(e, &r, argv) == 0 && strstr(r.out, "\"state\":\"unconnected\""))
            return;
        usleep(20000);
    }
    fail_msg("%s never became unconnected: %s", dev, r.out);
}

static void test_close_with_exchanges_pending(void **state)
{
    struct e2e *e = *state;
    const char *args[] = {"--alg", "p256", NULL};
    struct vtsm_host *h = NULL;
    struct vtsm_doe_tcp *tcp[NDEV] = {0};
    struct done d[NDEV];
    char name[NDEV][16];
    assert_int_equal(vtsm_host_open(e->sock, &h), VTSM_OK);
    for (int i = 0; i < NDEV; i++) {
        char doe[64];
        int port = e2e_devemu(e, args);
        assert_true(port > 0);
        snprintf(name[i], sizeof(name[i]), "0000:%02x:00.0", 0x20 + i);
        assert_int_equal(vtsm_doe_tcp_open(e2e_doe(doe, sizeof(doe), port), &tcp[i]), VTSM_OK);
        assert_int_equal(
            vtsm_host_register_doe_async(h, name[i], vtsm_doe_tcp_start, counting_cancel, tcp[i]),
            VTSM_OK);
        assert_int_equal(vtsm_host_device_add_cbor(h, name[i], -1), VTSM_OK);
    }
    g_backend_cancels = 0;
    for (int i = 0; i < NDEV; i++) {
        d[i] = (struct done){.h = h};
        assert_int_equal(vtsm_host_connect_start_cbor(h, name[i], NULL, on_done, &d[i]), VTSM_OK);
    }
    /* never service the device connections: every device ends up with one exchange out */
    while (vtsm_host_doe_pending(h) < NDEV)
        pump(h);
    for (int i = 0; i < NDEV; i++) {
        assert_true(vtsm_doe_tcp_busy(tcp[i]));
        assert_int_equal(d[i].calls, 0);
    }
    vtsm_host_close(h);
    assert_int_equal(g_backend_cancels, NDEV);
    for (int i = 0; i < NDEV; i++) {
        assert_int_equal(d[i].calls, 1);
        assert_int_equal(d[i].st, VTSM_E_ABORTED);
        assert_false(vtsm_doe_tcp_busy(tcp[i]));
        assert_int_equal(vtsm_doe_tcp_fd(tcp[i]), -1); /* a late answer cannot leak */
    }

    /* once tsmd has seen the host go and ended its jobs, a new handle connects every
     * device through the same backends (they reconnect) */
    for (int i = 0; i < NDEV; i++)
        wait_unconnected(e, name[i]);
    assert_int_equal(vtsm_host_open(e->sock, &h), VTSM_OK);
    int done = 0;
    for (int i = 0; i < NDEV; i++) {
        d[i] = (struct done){.h = h};
        assert_int_equal(vtsm_host_register_doe_async(h, name[i], vtsm_doe_tcp_start,
                                                      vtsm_doe_tcp_cancel, tcp[i]),
                         VTSM_OK);
        assert_int_equal(vtsm_host_connect_start_cbor(h, name[i], NULL, on_done, &d[i]), VTSM_OK);
    }
    while (done < NDEV) {
        struct pollfd p[NDEV + 1];
        int who[NDEV + 1], n = 0;
        p[n] = (struct pollfd){.fd = vtsm_host_fd(h), .events = POLLIN};
        who[n++] = -1;
        for (int i = 0; i < NDEV; i++)
            if (vtsm_doe_tcp_busy(tcp[i])) {
                p[n] = (struct pollfd){.fd = vtsm_doe_tcp_fd(tcp[i]), .events = POLLIN};
                who[n++] = i;
            }
        assert_true(poll(p, (nfds_t)n, 10000) > 0);
        for (int k = 1; k < n; k++)
            if (p[k].revents)
                assert_int_equal(vtsm_doe_tcp_service(tcp[who[k]]), VTSM_OK);
        if (p[0].revents)
            assert_int_equal(vtsm_host_dispatch(h), VTSM_OK);
        done = 0;
        for (int i = 0; i < NDEV; i++)
            done += d[i].calls;
    }
    for (int i = 0; i < NDEV; i++)
        if (d[i].st != VTSM_OK)
            fail_msg("%s after the first handle closed: %s", name[i], d[i].detail);
    vtsm_host_close(h);
    for (int i = 0; i < NDEV; i++)
        vtsm_doe_tcp_close(tcp[i]);
}

/* NDEV devices in flight at once; the exchanges the TSM has out are answered newest
 * first, so completions run against arrival order, across devices. */
static void test_out_of_order_completion(void **state)
{
    struct e2e *e = *state;
    const char *args[] = {"--alg", "p256", NULL};
    rec_setup(e, NDEV, args);
    struct done d[NDEV];
    for (int i = 0; i < NDEV; i++) {
        char name[16];
        snprintf(name, sizeof(name), "0000:%02x:00.0", 0x0a + i);
        d[i] = (struct done){.h = g_rec.h};
        assert_int_equal(vtsm_host_connect_start_cbor(g_rec.h, name, NULL, on_done, &d[i]),
                         VTSM_OK);
    }
    int reversed = 0, max_in_flight = 0;
    for (;;) {
        int active = 0;
        for (int i = 0; i < NDEV; i++)
            active += d[i].calls == 0;
        if (!active)
            break;
        if (g_rec.nheld < active) {
            pump(g_rec.h);
            continue;
        }
        /* every active device waits on us: answer the newest token first */
        if (g_rec.nheld > max_in_flight)
            max_in_flight = g_rec.nheld;
        assert_int_equal((int)vtsm_host_doe_pending(g_rec.h), g_rec.nheld);
        while (g_rec.nheld) {
            int newest = 0;
            for (int i = 1; i < g_rec.nheld; i++)
                if (g_rec.held[i].token > g_rec.held[newest].token)
                    newest = i;
            reversed += g_rec.nheld > 1;
            answer_held(newest);
        }
    }
    for (int i = 0; i < NDEV; i++)
        if (d[i].st != VTSM_OK)
            fail_msg("a%d: %s", i, d[i].detail);
    assert_int_equal(max_in_flight, NDEV);
    assert_true(reversed > NDEV); /* many answers given before older ones */
    assert_int_equal(g_rec.ncancelled, 0);
    /* the blocking form on the same handle still works with these devices' state */
    cbor_item_t *res = NULL;
    assert_int_equal(vtsm_host_status_cbor(g_rec.h, NULL, &res), VTSM_OK);
    cbor_decref(&res);
    rec_teardown(NDEV);
}

/* The real asynchronous TCP backend: NDEV devices with simulated DOE latency connect and
 * reclaim through one handle and one poll loop; their exchanges overlap. The latency is
 * 5 ms, 25 ms in sanitizer builds, where every process runs several times slower and a
 * short latency can end one device's exchange before the next device's begins. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define MANY_LATENCY_US "25000"
#else
#define MANY_LATENCY_US "5000"
#endif
static void test_tcp_backend_many_devices(void **state)
{
    struct e2e *e = *state;
    const char *args[] = {"--alg", "p256", "--latency-us", MANY_LATENCY_US, NULL};
    struct vtsm_host *h = NULL;
    struct vtsm_doe_tcp *tcp[NDEV] = {0};
    char name[NDEV][16];
    assert_int_equal(vtsm_host_open(e->sock, &h), VTSM_OK);
    for (int i = 0; i < NDEV; i++) {
        char doe[64];
        int port = e2e_devemu(e, args);
        assert_true(port > 0);
        snprintf(name[i], sizeof(name[i]), "0000:%02x:00.0", 0x30 + i);
        assert_int_equal(vtsm_doe_tcp_open(e2e_doe(doe, sizeof(doe), port), &tcp[i]), VTSM_OK);
        assert_int_equal(vtsm_host_register_doe_async(h, name[i], vtsm_doe_tcp_start,
                                                      vtsm_doe_tcp_cancel, tcp[i]),
                         VTSM_OK);
        assert_int_equal(vtsm_host_device_add_cbor(h, name[i], -1), VTSM_OK);
    }
    for (int verb = 0; verb < 2; verb++) {
        struct done d[NDEV];
        size_t max_pending = 0;
        for (int i = 0; i < NDEV; i++) {
            d[i] = (struct done){.h = h};
            vtsm_status st = verb == 0
                                 ? vtsm_host_connect_start_cbor(h, name[i], NULL, on_done, &d[i])
                                 : vtsm_host_reclaim_start_cbor(h, name[i], on_done, &d[i]);
            assert_int_equal(st, VTSM_OK);
        }
        assert_int_equal(vtsm_host_pending(h), NDEV);
        while (vtsm_host_pending(h) > 0) {
            struct pollfd p[NDEV + 1];
            int who[NDEV + 1], n = 0;
            p[n] = (struct pollfd){.fd = vtsm_host_fd(h), .events = POLLIN};
            who[n++] = -1;
            for (int i = 0; i < NDEV; i++)
                if (vtsm_doe_tcp_busy(tcp[i])) {
                    p[n] = (struct pollfd){.fd = vtsm_doe_tcp_fd(tcp[i]), .events = POLLIN};
                    who[n++] = i;
                }
            assert_true(poll(p, (nfds_t)n, 10000) > 0);
            for (int k = 1; k < n; k++)
                if (p[k].revents)
                    assert_int_equal(vtsm_doe_tcp_service(tcp[who[k]]), VTSM_OK);
            if (p[0].revents)
                assert_int_equal(vtsm_host_dispatch(h), VTSM_OK);
            if (vtsm_host_doe_pending(h) > max_pending)
                max_pending = vtsm_host_doe_pending(h);
        }
        for (int i = 0; i < NDEV; i++) {
            assert_int_equal(d[i].calls, 1);
            if (d[i].st != VTSM_OK)
                fail_msg("%s %s: %s", verb ? "reclaim" : "connect", name[i], d[i].detail);
        }
        /* with a latency on every answer, exchanges of several devices were out together */
        assert_true(max_pending >= 2);
    }
    /* a second start on a busy backend is refused, not interleaved */
    assert_int_equal(
        vtsm_doe_tcp_start(tcp[0], h, 1001, (const uint8_t *)"\1\0\1\0\3\0\0\0\x12\x84\0\0", 12),
        0);
    assert_int_equal(
        vtsm_doe_tcp_start(tcp[0], h, 1002, (const uint8_t *)"\1\0\1\0\3\0\0\0\x12\x84\0\0", 12),
        -EBUSY);
    uint8_t rsp[64];
    size_t rsp_len = sizeof(rsp);
    assert_int_equal(
        vtsm_doe_tcp_fn(tcp[0], (const uint8_t *)"\1\0\1\0\3\0\0\0\x12\x84\0\0", 12, rsp, &rsp_len),
        -EBUSY);
    /* the device connection has TCP_NODELAY */
    int nodelay = 0;
    socklen_t sl = sizeof(nodelay);
    assert_int_equal(getsockopt(vtsm_doe_tcp_fd(tcp[0]), IPPROTO_TCP, TCP_NODELAY, &nodelay, &sl),
                     0);
    assert_int_equal(nodelay, 1);
    vtsm_doe_tcp_cancel(tcp[0], h, 1001);
    assert_false(vtsm_doe_tcp_busy(tcp[0]));
    assert_int_equal(vtsm_doe_tcp_fd(tcp[0]), -1);
    vtsm_host_close(h);
    for (int i = 0; i < NDEV; i++)
        vtsm_doe_tcp_close(tcp[i]);
}

/* Every frame leaves in one write(): over a SOCK_SEQPACKET pair each write() is one
 * record, so a frame that arrives as one whole record was written at once. */
static void test_frame_is_one_write(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    static uint8_t payload[3000], rec[4096];
    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)i;
    for (size_t len = 0; len <= sizeof(payload); len += 1000) {
        assert_int_equal(
            vtsm_sock_send(sv[0], VTSM_SOCK_CMD_NORMAL, VTSM_SOCK_TRANSPORT_PCI_DOE, payload, len),
            VTSM_OK);
        ssize_t k = recv(sv[1], rec, sizeof(rec), 0);
        assert_int_equal(k, (ssize_t)(VTSM_SOCK_HEADER_SIZE + len));
        assert_memory_equal(rec + VTSM_SOCK_HEADER_SIZE, payload, len);
    }
    close(sv[0]);
    close(sv[1]);
}

static const char *const short_doe_timeout[] = {"--doe-timeout-ms", "400", NULL};

static int setup_short_timeout(void **state)
{
    e2e_tsmd_args = short_doe_timeout;
    int rc = e2e_fixture_setup(state);
    e2e_tsmd_args = NULL;
    return rc;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_is_one_write),
        cmocka_unit_test_setup_teardown(test_application_fails_exchange, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_verb_fails_while_pending, setup_short_timeout,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_close_with_exchanges_pending, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_out_of_order_completion, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_tcp_backend_many_devices, e2e_fixture_setup,
                                        e2e_fixture_teardown),
    };
    return cmocka_run_group_tests_name("host_async", tests, NULL, NULL);
}
