/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Host shim against a fake TSM that speaks the socket ABI from a test thread, and the
 * DOE TCP backend (DOE objects and simulated-link frames) against a tiny
 * spdm-emu-protocol responder on 127.0.0.1 port 0. Failure paths first.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vtsm_abi.h"
#include "vtsm_host_cbor.h"
#include "vtsm_sock.h"

/* ------------------------------------------------------------------ fake TSM */

/*
 * The fake runs a script in its own thread. cmocka asserts must not run there, so a
 * failed expectation is recorded in err and the script stops; the test thread checks
 * err after joining.
 */
struct fake {
    int fd;  /* the TSM's end */
    int lfd; /* listening Unix socket, or -1 */
    pthread_t th;
    void (*script)(struct fake *f);
    char err[512];
    /* scenario knobs and observations */
    uint64_t hello_version;
    const char *error_name_seen;
    char doe_error_seen[256];
    char errs[5][160];         /* error answers to DOE_PENDINGs, in order */
    cbor_item_t *request_seen; /* last verb request received (for option checks) */
    const char *role;          /* role HELLO must ask for; NULL = "host" */
    const char *grant_role;    /* "role" in the HELLO result; NULL = none */
    /* script_sequence: the opcodes expected in order, and every request received */
    const unsigned *ops;
    size_t nops;
    cbor_item_t *reqs[16];
    size_t nreqs;
};

#define FK_CHECK(f, cond)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            if (!(f)->err[0])                                                                      \
                snprintf((f)->err, sizeof((f)->err), "%s:%d: %s (%s)", __FILE__, __LINE__, #cond,  \
                         vtsm_err_detail());                                                       \
            return;                                                                                \
        }                                                                                          \
    } while (0)

static cbor_item_t *fk_recv(struct fake *f, unsigned op)
{
    cbor_item_t *m = NULL;
    vtsm_status st = vtsm_abi_recv(f->fd, &m, 5000);
    uint64_t got = 0;
    if (st != VTSM_OK || vtsm_abi_get_op(m, &got) != VTSM_OK || got != op) {
        if (!f->err[0])
            snprintf(f->err, sizeof(f->err), "fake expected op 0x%x, got status %s op 0x%llx", op,
                     vtsm_status_name(st), (unsigned long long)got);
        if (m)
            cbor_decref(&m);
        return NULL;
    }
    return m;
}

static bool fk_send(struct fake *f, cbor_item_t *m)
{
    vtsm_status st = m ? vtsm_abi_send(f->fd, m) : VTSM_E_NOMEM;
    if (m)
        cbor_decref(&m);
    if (st != VTSM_OK && !f->err[0])
        snprintf(f->err, sizeof(f->err), "fake send failed: %s", vtsm_status_name(st));
    return st == VTSM_OK;
}

static uint64_t id_of(const cbor_item_t *m)
{
    uint64_t id = 0;
    vtsm_abi_get_id(m, &id);
    return id;
}

/* HELLO as host offering version 1 -> RESULT {version 1, tsm}. */
static bool fk_hello(struct fake *f)
{
    cbor_item_t *m = fk_recv(f, VTSM_ABI_OP_HELLO);
    if (!m)
        return false;
    char role[16] = "";
    const cbor_item_t *vers = NULL;
    bool ok = vtsm_abi_check_keys(m, vtsm_abi_keys_hello) == VTSM_OK &&
              vtsm_abi_get_tstr(m, "role", role, sizeof(role)) == VTSM_OK &&
              strcmp(role, f->role ? f->role : "host") == 0 &&
              vtsm_abi_get_array(m, "versions", &vers) == VTSM_OK && cbor_array_size(vers) == 1 &&
              cbor_get_int(cbor_array_handle(vers)[0]) == 1;
    cbor_item_t *r = vtsm_abi_result_msg(id_of(m));
    vtsm_abi_put_uint(r, "version", f->hello_version ? f->hello_version : 1);
    vtsm_abi_put_tstr(r, "tsm", "fake-tsm 0.0");
    if (f->grant_role)
        vtsm_abi_put_tstr(r, "role", f->grant_role);
    cbor_decref(&m);
    if (!ok) {
        snprintf(f->err, sizeof(f->err), "bad HELLO");
        cbor_decref(&r);
        return false;
    }
    return fk_send(f, r);
}

/* The DOE objects the fake asks for, and what the device callbacks answer. */
static void make_obj(uint8_t obj[12], uint8_t tag)
{
    static const uint8_t hdr[8] = {0x01, 0x00, 0x01, 0x00, 0x03, 0x00, 0x00, 0x00};
    memcpy(obj, hdr, 8);
    obj[8] = 0x12;
    obj[9] = 0x84;
    obj[10] = tag;
    obj[11] = 0;
}

static void transform(const uint8_t *req, size_t n, uint8_t *rsp)
{
    memcpy(rsp, req, n);
    rsp[9] = 0x04; /* response code */
    rsp[11] = (uint8_t)(req[10] ^ 0xa5);
}

/* Send DOE_PENDING and check the DOE_RESPONSE carries transform(obj) for the same
 * id/dev/seq. */
static bool fk_exchange(struct fake *f, uint64_t id, const char *dev, uint64_t seq, uint8_t tag)
{
    uint8_t obj[12], want[12];
    make_obj(obj, tag);
    transform(obj, sizeof(obj), want);
    if (!fk_send(f, vtsm_abi_doe_pending_msg(id, dev, seq, obj, sizeof(obj))))
        return false;
    cbor_item_t *r = fk_recv(f, VTSM_ABI_OP_DOE_RESPONSE);
    if (!r)
        return false;
    char rdev[VTSM_ABI_DEV_BUF] = "";
    uint64_t rseq = 0;
    const uint8_t *p = NULL;
    size_t n = 0;
    bool ok = vtsm_abi_check_keys(r, vtsm_abi_keys_doe_response) == VTSM_OK && id_of(r) == id &&
              vtsm_abi_get_dev(r, rdev) == VTSM_OK && !strcmp(rdev, dev) &&
              vtsm_abi_get_uint(r, "seq", &rseq) == VTSM_OK && rseq == seq &&
              vtsm_abi_get_bytes(r, "object", &p, &n) == VTSM_OK && n == sizeof(want) &&
              memcmp(p, want, n) == 0 && !vtsm_abi_find(r, "error");
    if (!ok)
        snprintf(f->err, sizeof(f->err), "bad DOE_RESPONSE for id %llu seq %llu",
                 (unsigned long long)id, (unsigned long long)seq);
    cbor_decref(&r);
    return ok;
}

/* A simulated-link frame as the TSM would send it (the shim never looks inside). */
static void make_link_frame(uint8_t frame[24], uint8_t tag)
{
    memset(frame, 0, 24);
    memcpy(frame, "VLNK", 4);
    frame[4] = 1;    /* check request */
    frame[10] = tag; /* inside the counter: any byte does */
}

/* DOE_PENDING with an extra "channel" (NULL = none, else the item, consumed) and the
 * DOE_RESPONSE it gets: its object must be transform(obj) or, if want_error, an error
 * whose text lands in errbuf. */
static bool fk_exchange_on(struct fake *f, uint64_t id, const char *dev, uint64_t seq,
                           const uint8_t *obj, size_t len, cbor_item_t *channel, bool want_error,
                           char *errbuf, size_t errcap)
{
    uint8_t want[64];
    cbor_item_t *m = vtsm_abi_doe_pending_msg(id, dev, seq, obj, len);
    if (channel && vtsm_abi_put_item(m, "channel", channel) != VTSM_OK) {
        cbor_decref(&m);
        return false;
    }
    if (!fk_send(f, m))
        return false;
    cbor_item_t *r = fk_recv(f, VTSM_ABI_OP_DOE_RESPONSE);
    if (!r)
        return false;
    uint64_t rseq = 0;
    char rdev[VTSM_ABI_DEV_BUF] = "";
    const uint8_t *p = NULL;
    size_t n = 0;
    bool ok = vtsm_abi_check_keys(r, vtsm_abi_keys_doe_response) == VTSM_OK && id_of(r) == id &&
              vtsm_abi_get_dev(r, rdev) == VTSM_OK && !strcmp(rdev, dev) &&
              vtsm_abi_get_uint(r, "seq", &rseq) == VTSM_OK && rseq == seq;
    if (ok && want_error) {
        ok =
            !vtsm_abi_find(r, "object") && vtsm_abi_get_tstr(r, "error", errbuf, errcap) == VTSM_OK;
    } else if (ok) {
        transform(obj, len, want);
        ok = !vtsm_abi_find(r, "error") && vtsm_abi_get_bytes(r, "object", &p, &n) == VTSM_OK &&
             n == len && memcmp(p, want, n) == 0;
    }
    if (!ok)
        snprintf(f->err, sizeof(f->err), "bad DOE_RESPONSE (channel exchange) seq %llu",
                 (unsigned long long)seq);
    cbor_decref(&r);
    return ok;
}

static cbor_item_t *connect_result(uint64_t id, const char *dev)
{
    cbor_item_t *r = vtsm_abi_result_msg(id);
    vtsm_abi_put_tstr(r, "dev", dev);
    vtsm_abi_put_tstr(r, "state", "connected");
    vtsm_abi_put_uint(r, "version", 0x12);
    return r;
}

static void *fake_main(void *arg)
{
    struct fake *f = arg;
    if (f->lfd >= 0) {
        f->fd = accept(f->lfd, NULL, NULL);
        if (f->fd < 0) {
            snprintf(f->err, sizeof(f->err), "accept: %s", strerror(errno));
            return NULL;
        }
    }
    f->script(f);
    return NULL;
}

/* Start a fake on a socketpair; *client_fd is the host's end. */
static struct fake *fake_start(void (*script)(struct fake *), int *client_fd)
{
    struct fake *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    f->fd = sv[1];
    f->lfd = -1;
    f->script = script;
    *client_fd = sv[0];
    return f;
}

static void fake_run(struct fake *f)
{
    assert_int_equal(pthread_create(&f->th, NULL, fake_main, f), 0);
}

/* Join and check the script's expectations. */
static void fake_join(struct fake *f)
{
    pthread_join(f->th, NULL);
    if (f->err[0])
        fail_msg("fake TSM: %s", f->err);
}

static void fake_free(struct fake *f)
{
    if (f->fd >= 0)
        close(f->fd);
    if (f->lfd >= 0)
        close(f->lfd);
    if (f->request_seen)
        cbor_decref(&f->request_seen);
    for (size_t i = 0; i < f->nreqs; i++)
        cbor_decref(&f->reqs[i]);
    free(f);
}

static void fake_finish(struct fake *f)
{
    fake_join(f);
    fake_free(f);
}

/* ------------------------------------------------------------------ device callbacks */

struct dev {
    const char *name;
    int calls;
    int fail_rc;
    size_t last_len;
    uint8_t last[64]; /* the last request seen */
};

static int dev_doe(void *ctx, const uint8_t *req, size_t req_len, uint8_t *rsp, size_t *rsp_len)
{
    struct dev *d = ctx;
    d->calls++;
    d->last_len = req_len < sizeof(d->last) ? req_len : sizeof(d->last);
    memcpy(d->last, req, d->last_len);
    if (d->fail_rc)
        return d->fail_rc;
    if (*rsp_len != VTSM_HOST_DOE_RSP_CAP || req_len > *rsp_len)
        return -EINVAL;
    transform(req, req_len, rsp);
    *rsp_len = req_len;
    return 0;
}

static struct vtsm_host *open_host(int fd)
{
    struct vtsm_host *h = NULL;
    vtsm_status st = vtsm_host_open_fd(fd, &h);
    if (st != VTSM_OK)
        fail_msg("open: %s: %s", vtsm_status_name(st), vtsm_err_detail());
    vtsm_host_set_timeout(h, 5000);
    return h;
}

/* ------------------------------------------------------------------ failure paths */

static void script_hello_refused(struct fake *f)
{
    cbor_item_t *m = fk_recv(f, VTSM_ABI_OP_HELLO);
    FK_CHECK(f, m);
    fk_send(f, vtsm_abi_error_msg(id_of(m), VTSM_E_ABI_VERSION, "no common ABI version"));
    cbor_decref(&m);
}

static void test_hello_refused(void **state)
{
    (void)state;
    int fd;
    struct fake *f = fake_start(script_hello_refused, &fd);
    fake_run(f);
    struct vtsm_host *h = (struct vtsm_host *)0x1;
    vtsm_err_clear();
    assert_int_equal(vtsm_host_open_fd(fd, &h), VTSM_E_ABI_VERSION);
    assert_null(h);
    assert_string_equal(vtsm_err_detail(), "no common ABI version");
    assert_int_equal(vtsm_err_rule(), VTSM_RULE_ABI_3); /* the ERROR's rule, kept */
    fake_finish(f);
}

static void script_hello_wrong_version(struct fake *f)
{
    f->hello_version = 2;
    fk_hello(f);
}

static void test_hello_wrong_version(void **state)
{
    (void)state;
    int fd;
    struct fake *f = fake_start(script_hello_wrong_version, &fd);
    fake_run(f);
    struct vtsm_host *h = NULL;
    assert_int_equal(vtsm_host_open_fd(fd, &h), VTSM_E_ABI_VERSION);
    assert_null(h);
    fake_finish(f);
}

static void test_open_unreachable(void **state)
{
    (void)state;
    char dir[] = "/tmp/vtsm-host-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/none.sock", dir);
    struct vtsm_host *h = NULL;
    assert_int_equal(vtsm_host_open(path, &h), VTSM_E_CLOSED);
    assert_null(h);
    assert_non_null(strstr(vtsm_err_detail(), "cannot reach the TSM"));
    rmdir(dir);
}

static void script_error(struct fake *f)
{
    FK_CHECK(f, fk_hello(f));
    cbor_item_t *m = fk_recv(f, VTSM_ABI_OP_DEVICE_CONNECT);
    FK_CHECK(f, m);
    uint64_t id = id_of(m);
    cbor_decref(&m);
    FK_CHECK(f, fk_exchange(f, id, "dev0", 1, 7));
    fk_send(f, vtsm_abi_error_msg(id, VTSM_E_PEER_SIGNATURE,
                                  "CHALLENGE_AUTH signature (DSP0274 10.8)"));
}

static void test_error_propagates(void **state)
{
    (void)state;
    int fd;
    struct fake *f = fake_start(script_error, &fd);
    fake_run(f);
    struct vtsm_host *h = open_host(fd);
    struct dev d = {.name = "dev0"};
    assert_int_equal(vtsm_host_register_doe(h, "dev0", dev_doe, &d), VTSM_OK);
    cbor_item_t *res = (cbor_item_t *)0x1;
    assert_int_equal(vtsm_host_device_connect_cbor(h, "dev0", NULL, &res), VTSM_E_PEER_SIGNATURE);
    /* the ERROR message itself is handed over (it may carry a partial report) */
    assert_non_null(res);
    uint64_t op = 0;
    assert_int_equal(vtsm_abi_get_op(res, &op), VTSM_OK);
    assert_int_equal(op, VTSM_ABI_OP_ERROR);
    cbor_decref(&res);
    const struct vtsm_host_error *e = vtsm_host_last_error(h);
    assert_int_equal(e->status, VTSM_E_PEER_SIGNATURE);
    assert_string_equal(e->name, "peer_signature");
    assert_string_equal(e->source, "peer");
    assert_string_equal(e->detail, "CHALLENGE_AUTH signature (DSP0274 10.8)");
    assert_string_equal(e->rule_id, ""); /* a peer's fault: no rule */
    assert_int_equal(e->rule, VTSM_RULE_NONE);
    assert_true(e->from_tsm);
    assert_int_equal(d.calls, 1);
    vtsm_host_close(h);
    fake_finish(f);
}

/* DOE_PENDING for a device without a callback: answered with the error text. */
static void script_no_callback(struct fake *f)
{
    FK_CHECK(f, fk_hello(f));
    cbor_item_t *m = fk_recv(f, VTSM_ABI_OP_DEVICE_RECLAIM);
    FK_CHECK(f, m);
    uint64_t id = id_of(m);
    cbor_decref(&m);
    uint8_t obj[12];
    make_obj(obj, 1);
    FK_CHECK(f, fk_send(f, vtsm_abi_doe_pending_msg(id, "devX", 1, obj, sizeof(obj))));
    cbor_item_t *r = fk_recv(f, VTSM_ABI_OP_DOE_RESPONSE);
    FK_CHECK(f, r);
    uint64_t seq = 0;
    FK_CHECK(f, id_of(r) == id);
    FK_CHECK(f, vtsm_abi_get_uint(r, "seq", &seq) == VTSM_OK && seq == 1);
    FK_CHECK(f, vtsm_abi_find(r, "object") == NULL);
    vtsm_abi_get_tstr(r, "error", f->doe_error_seen, sizeof(f->doe_error_seen));
    cbor_decref(&r);
    fk_send(f, vtsm_abi_error_msg(id, VTSM_E_DOE_HOST, f->doe_error_seen));
}

static void test_no_callback(void **state)
{
    (void)state;
    int fd;
    struct fake *f = fake_start(script_no_callback, &fd);
    fake_run(f);
    struct vtsm_host *h = open_host(fd);
    assert_int_equal(vtsm_host_device_reclaim_cbor(h, "devX", NULL), VTSM_E_DOE_HOST);
    assert_string_equal(vtsm_host_last_error(h)->detail, "no DOE callback registered");
    assert_string_equal(vtsm_host_last_error(h)->source, "transport");
    vtsm_host_close(h);
    assert_string_equal(f->doe_error_seen, "no DOE callback registered");
    fake_finish(f);
}

/* A failing callback: the TSM hears "DOE exchange failed: <strerror>". */
static void test_callback_failure(void **state)
{
    (void)state;
    int fd;
    struct fake *f = fake_start(script_no_callback, &fd);
    fake_run(f);
    struct vtsm_host *h = open_host(fd);
    struct dev d = {.name = "devX", .fail_rc = -EIO};
    assert_int_equal(vtsm_host_register_doe(h, "devX", dev_doe, &d), VTSM_OK);
    assert_int_equal(vtsm_host_device_reclaim_cbor(h, "devX", NULL), VTSM_E_DOE_HOST);
    assert_int_equal(d.calls, 1);
    vtsm_host_close(h);
    assert_string_equal(f->doe_error_seen, "DOE exchange failed: Input/output error");
    fake_finish(f);
}

/* The TSM goes away in the middle of a verb. */
static void script_vanish(struct fake *f)
{
    FK_CHECK(f, fk_hello(f));
    cbor_item_t *m = fk_recv(f, VTSM_ABI_OP_DEVICE_CONNECT);
    FK_CHECK(f, m);
    cbor_decref(&m);
    close(f->fd);
    f->fd = -1;
}

static void test_tsm_vanishes(void **state)
{
    (void)state;
    int fd;
    struct fake *f = fake_start(script_vanish, &fd);
    fake_run(f);
    struct vtsm_host *h = open_host(fd);
    assert_int_equal(vtsm_host_device_connect_cbor(h, "dev0", NULL, NULL), VTSM_E_CLOSED);
    const struct vtsm_host_error *e = vtsm_host_last_error(h);
    assert_string_equal(e->source, "transport");
    assert_false(e->from_tsm);
    /* the handle stays closed */
    assert_int_equal(vtsm_host_status_cbor(h, NULL, NULL), VTSM_E_CLOSED);
    assert_int_equal(vtsm_host_dispatch(h), VTSM_E_CLOSED);
    vtsm_host_close(h);
    fake_finish(f);
}

/* The TSM never answers: the blocking call gives up after the timeout, and a late
 * DOE_PENDING for the abandoned verb is refused. */
static void script_silent(struct fake *f)
{
    FK_CHECK(f, fk_hello(f));
    cbor_item_t *m = fk_recv(f, VTSM_ABI_OP_STATUS);
    FK_CHECK(f, m);
    uint64_t id = id_of(m);
    cbor_decref(&m);
    /* wait for the host to give up, then ask for DOE about the dead verb */
    m = fk_recv(f, VTSM_ABI_OP_STATUS);
    FK_CHECK(f, m);
    uint64_t id2 = id_of(m);
    cbor_decref(&m);
    uint8_t obj[12];
    make_obj(obj, 2);
    FK_CHECK(f, fk_send(f, vtsm_abi_doe_pending_msg(id, "dev0", 1, obj, sizeof(obj))));
    cbor_item_t *r = fk_recv(f, VTSM_ABI_OP_DOE_RESPONSE);
    FK_CHECK(f, r);
    vtsm_abi_get_tstr(r, "error", f->doe_error_seen, sizeof(f->doe_error_seen));
    cbor_decref(&r);
    cbor_item_t *res = vtsm_abi_result_msg(id2);
    vtsm_abi_put_item(res, "devices", vtsm_abi_array_new());
    fk_send(f, res);
}

static void test_timeout(void **state)
{
    (void)state;
    int fd;
    struct fake *f = fake_start(script_silent, &fd);
    fake_run(f);
    struct vtsm_host *h = open_host(fd);
    struct dev d = {.name = "dev0"};
    assert_int_equal(vtsm_host_register_doe(h, "dev0", dev_doe, &d), VTSM_OK);
    vtsm_host_set_timeout(h, 100);
    assert_int_equal(vtsm_host_status_cbor(h, NULL, NULL), VTSM_E_TIMEOUT);
    assert_string_equal(vtsm_host_last_error(h)->name, "timeout");
    assert_int_equal(vtsm_host_pending(h), 0);
    vtsm_host_set_timeout(h, 5000);
    cbor_item_t *res = NULL;
    assert_int_equal(vtsm_host_status_cbor(h, NULL, &res), VTSM_OK);
    assert_non_null(res);
    cbor_decref(&res);
    assert_int_equal(d.calls, 0);
    vtsm_host_close(h);
    assert_string_equal(f->doe_error_seen, "no such request in flight");
    fake_finish(f);
}

static void script_hello_only(struct fake *f)
{
    fk_hello(f);
}

static void on_done_unused(void *ctx, vtsm_status st, const cbor_item_t *result)
{
    (void)ctx;
    (void)st;
    (void)result;
    fail_msg("done callback of a verb that was never sent");
}

static void test_local_argument_checks(void **state)
{
    (void)state;
    int fd;
    /* the fake only answers HELLO: nothing else may reach it */
    struct fake *f = fake_start(script_hello_only, &fd);
    fake_run(f);
    struct vtsm_host *h = open_host(fd);
    assert_int_equal(vtsm_host_register_doe(h, "bad/name", dev_doe, NULL), VTSM_E_ABI_ARG);
    assert_string_equal(vtsm_host_last_error(h)->detail,
                        "device name may only hold [A-Za-z0-9:._-]");
    assert_int_equal(vtsm_host_device_add_cbor(h, "", 0), VTSM_E_ABI_ARG);
    struct vtsm_host_connect_opts o = {.slot = 8};
    assert_int_equal(vtsm_host_device_connect_cbor(h, "dev0", &o, NULL), VTSM_E_ABI_ARG);
    assert_string_equal(vtsm_host_last_error(h)->detail, "slot 8 out of range 0..7");
    assert_int_equal(vtsm_host_call_cbor(h, VTSM_ABI_OP_HELLO, NULL, NULL), VTSM_E_INVAL);
    assert_int_equal(vtsm_host_call_cbor(h, VTSM_ABI_OP_RESULT, NULL, NULL), VTSM_E_INVAL);
    assert_int_equal(vtsm_host_pending(h), 0);
    /* unregistering an unknown device is fine */
    assert_int_equal(vtsm_host_register_doe(h, "dev0", NULL, NULL), VTSM_OK);
    vtsm_host_close(h);
    fake_finish(f);
}

/* ---- link channel, roles and the IDE / TVM / TDI verbs: failure paths ---- */

/*
 * Link exchanges that cannot be carried, each answered exactly once with an error and
 * never given to the wrong callback: no link callback (dev0 has only a DOE callback), an
 * unknown channel, a channel that is not text, a failing link callback (dev2), and an
 * unknown channel with characters that must not be echoed.
 */
static void script_link_errors(struct fake *f)
{
    FK_CHECK(f, fk_hello(f));
    cbor_item_t *m = fk_recv(f, VTSM_ABI_OP_IDE_LINK_CHECK);
    FK_CHECK(f, m);
    uint64_t id = id_of(m);
    cbor_decref(&m);
    uint8_t fr[24];
    make_link_frame(fr, 1);
    FK_CHECK(f, fk_exchange_on(f, id, "dev0", 1, fr, sizeof(fr), cbor_build_string("link"), true,
                               f->errs[0], sizeof(f->errs[0])));
    FK_CHECK(f, fk_exchange_on(f, id, "dev1", 2, fr, sizeof(fr), cbor_build_string("pcie"), true,
                               f->errs[1], sizeof(f->errs[1])));
    FK_CHECK(f, fk_exchange_on(f, id, "dev1", 3, fr, sizeof(fr), cbor_build_uint8(7), true,
                               f->errs[2], sizeof(f->errs[2])));
    FK_CHECK(f, fk_exchange_on(f, id, "dev2", 4, fr, sizeof(fr), cbor_build_string("link"), true,
                               f->errs[3], sizeof(f->errs[3])));
    FK_CHECK(f, fk_exchange_on(f, id, "dev1", 5, fr, sizeof(fr),
                               cbor_build_string("it's\tnew zzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"), true,
                               f->errs[4], sizeof(f->errs[4])));
    fk_send(f, vtsm_abi_error_msg(id, VTSM_E_DOE_HOST, f->errs[0]));
}

static void test_link_errors(void **state)
{
    (void)state;
    int fd;
    struct fake *f = fake_start(script_link_errors, &fd);
    fake_run(f);
    struct vtsm_host *h = open_host(fd);
    struct dev d0 = {.name = "dev0"}, d1 = {.name = "dev1"}, l1 = {.name = "dev1"};
    struct dev l2 = {.name = "dev2", .fail_rc = -EIO};
    assert_int_equal(vtsm_host_register_doe(h, "dev0", dev_doe, &d0), VTSM_OK);
    assert_int_equal(vtsm_host_register_doe(h, "dev1", dev_doe, &d1), VTSM_OK);
    assert_int_equal(vtsm_host_register_link(h, "dev1", dev_doe, &l1), VTSM_OK);
    assert_int_equal(vtsm_host_register_link(h, "dev2", dev_doe, &l2), VTSM_OK);
    cbor_item_t *res = NULL;
    assert_int_equal(vtsm_host_ide_link_check_cbor(h, "dev0", &res), VTSM_E_DOE_HOST);
    assert_non_null(res);
    cbor_decref(&res);
    assert_string_equal(vtsm_host_last_error(h)->detail, "no link callback registered");
    vtsm_host_close(h);
    fake_join(f);
    /* the texts the TSM heard (docs/abi.md section 15) */
    assert_string_equal(f->errs[0], "no link callback registered");
    assert_string_equal(f->errs[1], "unknown channel 'pcie'");
    assert_string_equal(f->errs[2], "DOE_PENDING channel must be a text string");
    assert_string_equal(f->errs[3], "link exchange failed: Input/output error");
    assert_string_equal(f->errs[4], "unknown channel 'it?s?new zzzzzzzzzzzzzzzzzzzzzzz...'");
    fake_free(f);
    assert_int_equal(d0.calls, 0);
    assert_int_equal(d1.calls, 0);
    assert_int_equal(l1.calls, 0);
    assert_int_equal(l2.calls, 1);
    assert_int_equal(l2.last_len, 24);
    assert_memory_equal(l2.last, "VLNK", 4);
}

static void script_grant_host(struct fake *f)
{
    f->role = "guest";
    f->grant_role = "host";
    fk_hello(f);
}

/* A guest connection the TSM answers as a host one is refused; an unknown role is
 * refused before anything is sent, and the fd is closed. */
static void test_role_refusals(void **state)
{
    (void)state;
    int fd;
    struct fake *f = fake_start(script_grant_host, &fd);
    fake_run(f);
    struct vtsm_host *h = (struct vtsm_host *)0x1;
    struct vtsm_host_config cfg = {.use_fd = true, .fd = fd, .role = VTSM_ROLE_GUEST};
    vtsm_err_clear();
    assert_int_equal(vtsm_host_open_cfg(&cfg, &h), VTSM_E_ABI_ROLE);
    assert_null(h);
    assert_string_equal(vtsm_err_detail(), "TSM granted role 'host', we asked for 'guest'");
    fake_finish(f);

    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    struct vtsm_host_config bad = {.use_fd = true, .fd = sv[0], .role = (enum vtsm_role)9};
    assert_int_equal(vtsm_host_open_cfg(&bad, &h), VTSM_E_INVAL);
    assert_null(h);
    uint8_t b;
    assert_int_equal(read(sv[1], &b, 1), 0); /* closed, nothing written */
    close(sv[1]);
}

/* TVM_CREATE results without a usable "tvm". */
static void script_tvm_bad_results(struct fake *f)
{
    FK_CHECK(f, fk_hello(f));
    for (int i = 0; i < 3; i++) {
        cbor_item_t *m = fk_recv(f, VTSM_ABI_OP_TVM_CREATE);
        FK_CHECK(f, m);
        cbor_item_t *r = vtsm_abi_result_msg(id_of(m));
        cbor_decref(&m);
        if (i == 1)
            vtsm_abi_put_uint(r, "tvm", 0);
        if (i == 2)
            vtsm_abi_put_uint(r, "tvm", (uint64_t)UINT32_MAX + 1);
        FK_CHECK(f, fk_send(f, r));
    }
}

static void test_tvm_create_bad_result(void **state)
{
    (void)state;
    int fd;
    struct fake *f = fake_start(script_tvm_bad_results, &fd);
    fake_run(f);
    struct vtsm_host *h = open_host(fd);
    uint8_t key[VTSM_ABI_GUEST_KEY_SIZE] = {0x04};
    uint32_t tvm = 99;
    cbor_item_t *res = (cbor_item_t *)0x1;
    assert_int_equal(vtsm_host_tvm_create_cbor(h, NULL, key, &tvm, &res), VTSM_E_ABI_ARG);
    assert_null(res);
    assert_int_equal(tvm, 99);
    assert_string_equal(vtsm_host_last_error(h)->detail, "missing key 'tvm'");
    assert_false(vtsm_host_last_error(h)->from_tsm);
    assert_int_equal(vtsm_host_tvm_create_cbor(h, NULL, key, &tvm, &res), VTSM_E_ABI_ARG);
    assert_string_equal(vtsm_host_last_error(h)->detail,
                        "TVM_CREATE result: tvm 0 out of range 1..4294967295");
    assert_int_equal(vtsm_host_tvm_create_cbor(h, NULL, key, &tvm, NULL), VTSM_E_ABI_ARG);
    assert_int_equal(tvm, 99);
    assert_int_equal(vtsm_host_pending(h), 0);
    vtsm_host_close(h);
    fake_finish(f);
}

static void test_new_verbs_local_checks(void **state)
{
    (void)state;
    int fd;
    /* the fake only answers HELLO: nothing else may reach it */
    struct fake *f = fake_start(script_hello_only, &fd);
    fake_run(f);
    struct vtsm_host *h = open_host(fd);
    struct vtsm_host_connect_opts o = {.ide_streams = 9};
    assert_int_equal(vtsm_host_device_connect_cbor(h, "dev0", &o, NULL), VTSM_E_ABI_ARG);
    assert_string_equal(vtsm_host_last_error(h)->detail, "ide_streams 9 out of range 0..8");
    assert_int_equal(vtsm_host_connect_start_cbor(h, "dev0", &o, on_done_unused, NULL),
                     VTSM_E_ABI_ARG);
    assert_int_equal(vtsm_host_register_link(h, "bad/name", dev_doe, NULL), VTSM_E_ABI_ARG);
    assert_int_equal(vtsm_host_device_reclaim_opts_cbor(h, "", true, NULL), VTSM_E_ABI_ARG);
    assert_int_equal(vtsm_host_ide_refresh_cbor(h, NULL, NULL), VTSM_E_ABI_ARG);
    assert_string_equal(vtsm_host_last_error(h)->detail, "device name missing");
    assert_int_equal(vtsm_host_ide_link_check_cbor(h, "a b", NULL), VTSM_E_ABI_ARG);
    assert_int_equal(vtsm_host_tdi_bind_cbor(h, "bad/name", 0, 1, 0, NULL), VTSM_E_ABI_ARG);
    assert_int_equal(vtsm_host_tdi_unbind_cbor(h, "", 0, NULL), VTSM_E_ABI_ARG);
    assert_int_equal(vtsm_host_tvm_create_cbor(h, "vm", NULL, NULL, NULL), VTSM_E_INVAL);
    assert_int_equal(vtsm_host_guest_relay_cbor(h, NULL, NULL), VTSM_E_INVAL);
    assert_int_equal(vtsm_host_ide_refresh_start_cbor(h, "a/b", on_done_unused, NULL),
                     VTSM_E_ABI_ARG);
    assert_int_equal(vtsm_host_ide_link_check_start_cbor(h, "", on_done_unused, NULL),
                     VTSM_E_ABI_ARG);
    assert_int_equal(vtsm_host_reclaim_opts_start_cbor(h, "", false, on_done_unused, NULL),
                     VTSM_E_ABI_ARG);
    assert_int_equal(vtsm_host_tdi_bind_start_cbor(h, "", 0, 1, 0, on_done_unused, NULL),
                     VTSM_E_ABI_ARG);
    assert_int_equal(vtsm_host_tdi_unbind_start_cbor(h, "", 0, on_done_unused, NULL),
                     VTSM_E_ABI_ARG);
    assert_int_equal(vtsm_host_tvm_create_start_cbor(h, NULL, NULL, on_done_unused, NULL),
                     VTSM_E_INVAL);
    assert_int_equal(vtsm_host_guest_relay_start_cbor(h, NULL, on_done_unused, NULL), VTSM_E_INVAL);
    assert_int_equal(vtsm_host_pending(h), 0);
    /* removing a link callback that was never there, or one of two, is fine */
    assert_int_equal(vtsm_host_register_link(h, "dev0", NULL, NULL), VTSM_OK);
    vtsm_host_close(h);
    fake_finish(f);
}

/* ------------------------------------------------------------------ success paths */

static void script_connect(struct fake *f)
{
    FK_CHECK(f, fk_hello(f));
    cbor_item_t *m = fk_recv(f, VTSM_ABI_OP_DEVICE_CONNECT);
    FK_CHECK(f, m);
    f->request_seen = m;
    uint64_t id = id_of(m);
    char dev[VTSM_ABI_DEV_BUF] = "";
    FK_CHECK(f, vtsm_abi_get_dev(m, dev) == VTSM_OK);
    FK_CHECK(f, fk_exchange(f, id, dev, 1, 0x10));
    FK_CHECK(f, fk_exchange(f, id, dev, 2, 0x20));
    fk_send(f, connect_result(id, dev));
}

struct trace_rec {
    int n[7];
    size_t doe_bytes;
    bool frames_decode;
    uint64_t ops_to[8], ops_from[8];
};

static void recorder(void *ctx, enum vtsm_host_trace_dir dir, const char *dev, const uint8_t *p,
                     size_t len)
{
    struct trace_rec *t = ctx;
    int k = t->n[dir]++;
    if (dir == VTSM_HOST_TRACE_DOE_REQ || dir == VTSM_HOST_TRACE_DOE_RSP ||
        dir == VTSM_HOST_TRACE_LINK_REQ || dir == VTSM_HOST_TRACE_LINK_RSP) {
        if (!dev || strcmp(dev, "dev0"))
            t->frames_decode = false;
        t->doe_bytes += len;
        return;
    }
    if (dev || len < 4 || vtsm_get_be32(p) != len - 4) {
        t->frames_decode = false;
        return;
    }
    cbor_item_t *m = NULL;
    uint64_t op = 0;
    if (vtsm_abi_decode(p + 4, len - 4, &m) != VTSM_OK || vtsm_abi_get_op(m, &op) != VTSM_OK)
        t->frames_decode = false;
    if (k < 8)
        (dir == VTSM_HOST_TRACE_TO_TSM ? t->ops_to : t->ops_from)[k] = op;
    if (m)
        cbor_decref(&m);
}

static void test_connect_blocking(void **state)
{
    (void)state;
    int fd;
    struct fake *f = fake_start(script_connect, &fd);
    fake_run(f);
    struct trace_rec t = {.frames_decode = true};
    struct vtsm_host *h = NULL;
    /* the recorder sees every frame from HELLO on */
    struct vtsm_host_config cfg = {
        .use_fd = true, .fd = fd, .client = "test", .trace = recorder, .trace_ctx = &t};
    assert_int_equal(vtsm_host_open_cfg(&cfg, &h), VTSM_OK);
    vtsm_host_set_timeout(h, 5000);
    assert_int_equal(vtsm_host_abi_version(h), 1);
    assert_string_equal(vtsm_host_tsm_name(h), "fake-tsm 0.0");
    struct dev d = {.name = "dev0"};
    assert_int_equal(vtsm_host_register_doe(h, "dev0", dev_doe, &d), VTSM_OK);

    cbor_item_t *extra = vtsm_abi_map_new();
    assert_int_equal(vtsm_abi_put_bool(extra, "ide", true), VTSM_OK);
    struct vtsm_host_connect_opts o = {
        .slot = 3,
        .allow_untrusted = true,
        .min_version = 0x12,
        .max_version = 0x13,
        .asym = "ecdsa-p256",
        .hash = "sha256",
        .extra = extra,
    };
    cbor_item_t *res = NULL;
    vtsm_status st = vtsm_host_device_connect_cbor(h, "dev0", &o, &res);
    if (st != VTSM_OK)
        fail_msg("connect: %s: %s", vtsm_status_name(st), vtsm_host_last_error(h)->detail);
    cbor_decref(&extra);
    assert_non_null(res);
    char s[32];
    assert_int_equal(vtsm_abi_get_tstr(res, "state", s, sizeof(s)), VTSM_OK);
    assert_string_equal(s, "connected");
    cbor_decref(&res);
    assert_int_equal(d.calls, 2);
    assert_int_equal(vtsm_host_pending(h), 0);

    /* trace saw every frame, in order, and every DOE object */
    assert_true(t.frames_decode);
    assert_int_equal(t.n[VTSM_HOST_TRACE_TO_TSM], 4);
    assert_int_equal(t.n[VTSM_HOST_TRACE_FROM_TSM], 4);
    assert_int_equal(t.n[VTSM_HOST_TRACE_DOE_REQ], 2);
    assert_int_equal(t.n[VTSM_HOST_TRACE_DOE_RSP], 2);
    assert_int_equal(t.doe_bytes, 4 * 12);
    assert_int_equal(t.ops_to[0], VTSM_ABI_OP_HELLO);
    assert_int_equal(t.ops_to[1], VTSM_ABI_OP_DEVICE_CONNECT);
    assert_int_equal(t.ops_to[2], VTSM_ABI_OP_DOE_RESPONSE);
    assert_int_equal(t.ops_to[3], VTSM_ABI_OP_DOE_RESPONSE);
    assert_int_equal(t.ops_from[0], VTSM_ABI_OP_RESULT);
    assert_int_equal(t.ops_from[1], VTSM_ABI_OP_DOE_PENDING);
    assert_int_equal(t.ops_from[2], VTSM_ABI_OP_DOE_PENDING);
    assert_int_equal(t.ops_from[3], VTSM_ABI_OP_RESULT);
    vtsm_host_close(h);

    /* the request carried exactly the options */
    fake_join(f);
    const cbor_item_t *rq = f->request_seen;
    assert_non_null(rq);
    const char *const keys[] = {"dev",         "slot",        "allow_untrusted",
                                "min_version", "max_version", "asym",
                                "hash",        "ide",         NULL};
    assert_int_equal(vtsm_abi_check_keys(rq, keys), VTSM_OK);
    uint64_t u;
    bool b;
    assert_int_equal(vtsm_abi_get_uint(rq, "slot", &u), VTSM_OK);
    assert_int_equal(u, 3);
    assert_int_equal(vtsm_abi_get_bool(rq, "allow_untrusted", &b), VTSM_OK);
    assert_true(b);
    assert_int_equal(vtsm_abi_get_uint(rq, "min_version", &u), VTSM_OK);
    assert_int_equal(u, 0x12);
    assert_int_equal(vtsm_abi_get_uint(rq, "max_version", &u), VTSM_OK);
    assert_int_equal(u, 0x13);
    assert_int_equal(vtsm_abi_get_tstr(rq, "asym", s, sizeof(s)), VTSM_OK);
    assert_string_equal(s, "ecdsa-p256");
    assert_int_equal(vtsm_abi_get_tstr(rq, "hash", s, sizeof(s)), VTSM_OK);
    assert_string_equal(s, "sha256");
    assert_int_equal(vtsm_abi_get_bool(rq, "ide", &b), VTSM_OK);
    fake_free(f);
}

/* Default options send only "dev". */
static void test_connect_default_opts(void **state)
{
    (void)state;
    int fd;
    struct fake *f = fake_start(script_connect, &fd);
    fake_run(f);
    struct vtsm_host *h = open_host(fd);
    struct dev d = {.name = "0000:03:00.0"};
    assert_int_equal(vtsm_host_register_doe(h, d.name, dev_doe, &d), VTSM_OK);
    assert_int_equal(vtsm_host_device_connect_cbor(h, d.name, NULL, NULL), VTSM_OK);
    vtsm_host_close(h);
    fake_join(f);
    assert_int_equal(vtsm_abi_check_keys(f->request_seen, vtsm_abi_keys_device_remove), VTSM_OK);
    fake_free(f);
}

/* Two devices in flight on one connection, their exchanges interleaved. */
static void script_two(struct fake *f)
{
    FK_CHECK(f, fk_hello(f));
    cbor_item_t *a = fk_recv(f, VTSM_ABI_OP_DEVICE_CONNECT);
    FK_CHECK(f, a);
    cbor_item_t *b = fk_recv(f, VTSM_ABI_OP_DEVICE_RECLAIM);
    if (!b)
        cbor_decref(&a);
    FK_CHECK(f, b);
    uint64_t ida = id_of(a), idb = id_of(b);
    char deva[VTSM_ABI_DEV_BUF] = "", devb[VTSM_ABI_DEV_BUF] = "";
    vtsm_abi_get_dev(a, deva);
    vtsm_abi_get_dev(b, devb);
    cbor_decref(&a);
    cbor_decref(&b);
    FK_CHECK(f, ida != idb && !strcmp(deva, "devA") && !strcmp(devb, "devB"));

    /* both pendings out before either answer is read */
    uint8_t oa[12], ob[12], want[12];
    make_obj(oa, 0xa1);
    make_obj(ob, 0xb1);
    FK_CHECK(f, fk_send(f, vtsm_abi_doe_pending_msg(idb, "devB", 1, ob, sizeof(ob))));
    FK_CHECK(f, fk_send(f, vtsm_abi_doe_pending_msg(ida, "devA", 1, oa, sizeof(oa))));
    for (int i = 0; i < 2; i++) {
        cbor_item_t *r = fk_recv(f, VTSM_ABI_OP_DOE_RESPONSE);
        FK_CHECK(f, r);
        uint64_t id = id_of(r);
        const uint8_t *p = NULL;
        size_t n = 0;
        transform(id == ida ? oa : ob, 12, want);
        bool ok = (id == ida || id == idb) && vtsm_abi_get_bytes(r, "object", &p, &n) == VTSM_OK &&
                  n == 12 && !memcmp(p, want, 12);
        cbor_decref(&r);
        FK_CHECK(f, ok);
    }
    FK_CHECK(f, fk_exchange(f, ida, "devA", 2, 0xa2));
    FK_CHECK(f, fk_send(f, connect_result(idb, "devB")));
    FK_CHECK(f, fk_exchange(f, ida, "devA", 3, 0xa3));
    fk_send(f, vtsm_abi_error_msg(ida, VTSM_E_PEER_UNTRUSTED, "chain does not validate"));
}

struct done_rec {
    int calls;
    vtsm_status st;
    char dev[VTSM_ABI_DEV_BUF];
    char detail[512];
    struct vtsm_host *h;
    bool error_msg; /* the failure came with the TSM's ERROR message */
};

static void on_done(void *ctx, vtsm_status st, const cbor_item_t *result)
{
    struct done_rec *r = ctx;
    r->calls++;
    r->st = st;
    if (st == VTSM_OK) {
        vtsm_abi_get_dev(result, r->dev);
    } else {
        /* a TSM-reported failure hands over the ERROR message itself */
        uint64_t op = 0;
        if (result)
            assert_int_equal(vtsm_abi_get_op(result, &op), VTSM_OK);
        r->error_msg = result && op == VTSM_ABI_OP_ERROR;
        snprintf(r->detail, sizeof(r->detail), "%s", vtsm_host_last_error(r->h)->detail);
    }
}

static void test_fd_driven_two_devices(void **state)
{
    (void)state;
    int fd;
    struct fake *f = fake_start(script_two, &fd);
    fake_run(f);
    struct vtsm_host *h = open_host(fd);
    struct dev da = {.name = "devA"}, db = {.name = "devB"};
    assert_int_equal(vtsm_host_register_doe(h, "devA", dev_doe, &da), VTSM_OK);
    assert_int_equal(vtsm_host_register_doe(h, "devB", dev_doe, &db), VTSM_OK);
    struct done_rec ra = {.h = h}, rb = {.h = h};
    assert_int_equal(vtsm_host_connect_start_cbor(h, "devA", NULL, on_done, &ra), VTSM_OK);
    assert_int_equal(vtsm_host_reclaim_start_cbor(h, "devB", on_done, &rb), VTSM_OK);
    assert_int_equal(vtsm_host_pending(h), 2);
    assert_int_equal(ra.calls + rb.calls, 0);

    int loops = 0;
    while (vtsm_host_pending(h) > 0 && loops++ < 1000) {
        struct pollfd p = {.fd = vtsm_host_fd(h), .events = POLLIN};
        assert_true(poll(&p, 1, 5000) > 0);
        assert_int_equal(vtsm_host_dispatch(h), VTSM_OK);
    }
    assert_int_equal(ra.calls, 1);
    assert_int_equal(rb.calls, 1);
    assert_int_equal(rb.st, VTSM_OK);
    assert_string_equal(rb.dev, "devB");
    assert_int_equal(ra.st, VTSM_E_PEER_UNTRUSTED);
    assert_string_equal(ra.detail, "chain does not validate");
    assert_true(ra.error_msg);
    assert_int_equal(da.calls, 3);
    assert_int_equal(db.calls, 1);
    vtsm_host_close(h);
    fake_finish(f);
}

/* Closing with verbs in flight completes them with E_ABORTED. */
static void script_hold(struct fake *f)
{
    FK_CHECK(f, fk_hello(f));
    cbor_item_t *m = fk_recv(f, VTSM_ABI_OP_DEVICE_CONNECT);
    FK_CHECK(f, m);
    cbor_decref(&m);
    /* wait for the host to close */
    m = NULL;
    vtsm_abi_recv(f->fd, &m, 5000);
    if (m)
        cbor_decref(&m);
}

static void test_close_aborts(void **state)
{
    (void)state;
    int fd;
    struct fake *f = fake_start(script_hold, &fd);
    fake_run(f);
    struct vtsm_host *h = open_host(fd);
    struct done_rec r = {.h = h};
    assert_int_equal(vtsm_host_connect_start_cbor(h, "devA", NULL, on_done, &r), VTSM_OK);
    vtsm_host_close(h);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.st, VTSM_E_ABORTED);
    fake_finish(f);
}

/* ------------------------------------------------------------------ asynchronous DOE */

/*
 * Two verbs with exchanges out at once: the answers come newest first; a start that
 * answers before returning; an oversized answer (sent as EMSGSIZE); the link channel
 * asynchronously; an ERROR for a verb whose exchange is out (cancelled).
 */
static void script_async(struct fake *f)
{
    FK_CHECK(f, fk_hello(f));
    cbor_item_t *a = fk_recv(f, VTSM_ABI_OP_DEVICE_CONNECT);
    FK_CHECK(f, a);
    cbor_item_t *b = fk_recv(f, VTSM_ABI_OP_DEVICE_CONNECT);
    if (!b)
        cbor_decref(&a);
    FK_CHECK(f, b);
    uint64_t ida = id_of(a), idb = id_of(b);
    cbor_decref(&a);
    cbor_decref(&b);
    uint8_t oa[12], ob[12], want[12];
    make_obj(oa, 0xa1);
    make_obj(ob, 0xb1);
    FK_CHECK(f, fk_send(f, vtsm_abi_doe_pending_msg(ida, "devA", 1, oa, sizeof(oa))));
    FK_CHECK(f, fk_send(f, vtsm_abi_doe_pending_msg(idb, "devB", 1, ob, sizeof(ob))));
    /* the host answers devB first: the order of the DOE_RESPONSEs shows it */
    for (int i = 0; i < 2; i++) {
        cbor_item_t *r = fk_recv(f, VTSM_ABI_OP_DOE_RESPONSE);
        FK_CHECK(f, r);
        uint64_t id = id_of(r);
        const uint8_t *p = NULL;
        size_t n = 0;
        transform(i == 0 ? ob : oa, 12, want);
        bool ok = id == (i == 0 ? idb : ida) &&
                  vtsm_abi_get_bytes(r, "object", &p, &n) == VTSM_OK && n == 12 &&
                  !memcmp(p, want, 12);
        cbor_decref(&r);
        FK_CHECK(f, ok);
    }
    /* devA answers inside start */
    FK_CHECK(f, fk_exchange(f, ida, "devA", 2, 0xa2));
    /* devA answers with more than VTSM_HOST_DOE_RSP_CAP bytes */
    make_obj(oa, 0xa3);
    FK_CHECK(f, fk_exchange_on(f, ida, "devA", 3, oa, sizeof(oa), NULL, true, f->errs[0],
                               sizeof(f->errs[0])));
    /* devB's link channel */
    uint8_t lf[24];
    make_link_frame(lf, 0x42);
    FK_CHECK(f, fk_exchange_on(f, idb, "devB", 2, lf, sizeof(lf),
                               cbor_build_string(VTSM_ABI_CHANNEL_LINK), false, NULL, 0));
    FK_CHECK(f, fk_send(f, connect_result(ida, "devA")));
    /* devB: an exchange goes out, then the verb fails while it is pending */
    make_obj(ob, 0xb3);
    FK_CHECK(f, fk_send(f, vtsm_abi_doe_pending_msg(idb, "devB", 3, ob, sizeof(ob))));
    /* wait until the host has it (it tells us with a STATUS) */
    cbor_item_t *st = fk_recv(f, VTSM_ABI_OP_STATUS);
    FK_CHECK(f, st);
    uint64_t ids = id_of(st);
    cbor_decref(&st);
    FK_CHECK(f, fk_send(f, vtsm_abi_error_msg(idb, VTSM_E_TIMEOUT, "no doe_response in time")));
    FK_CHECK(f, fk_send(f, vtsm_abi_result_msg(ids)));
    /* nothing more may come: the next thing is the host hanging up */
    cbor_item_t *m = NULL;
    vtsm_status rs = vtsm_abi_recv(f->fd, &m, 5000);
    if (m)
        cbor_decref(&m);
    FK_CHECK(f, rs == VTSM_E_CLOSED);
}

struct async_dev {
    struct vtsm_host *h;
    int mode; /* 0 hold, 1 answer inside start */
    uint64_t tokens[8];
    uint8_t reqs[8][32];
    size_t lens[8];
    int nheld;
    uint64_t cancelled[8];
    int ncancelled;
};

static int async_start(void *ctx, struct vtsm_host *h, uint64_t token, const uint8_t *req,
                       size_t req_len)
{
    struct async_dev *d = ctx;
    if (h != d->h || req_len > sizeof(d->reqs[0]) || d->nheld == 8)
        return -EINVAL;
    if (d->mode == 1) {
        uint8_t rsp[32];
        transform(req, req_len, rsp);
        d->mode = 0;
        return vtsm_host_doe_complete(h, token, rsp, req_len) == VTSM_OK ? 0 : -EIO;
    }
    d->tokens[d->nheld] = token;
    memcpy(d->reqs[d->nheld], req, req_len);
    d->lens[d->nheld++] = req_len;
    return 0;
}

static void async_cancel(void *ctx, struct vtsm_host *h, uint64_t token)
{
    struct async_dev *d = ctx;
    if (h == d->h && d->ncancelled < 8)
        d->cancelled[d->ncancelled++] = token;
}

/* Answer the device's oldest held exchange with transform(req). */
static void async_answer(struct async_dev *d)
{
    uint8_t rsp[32];
    assert_true(d->nheld > 0);
    transform(d->reqs[0], d->lens[0], rsp);
    assert_int_equal(vtsm_host_doe_complete(d->h, d->tokens[0], rsp, d->lens[0]), VTSM_OK);
    d->nheld--;
    memmove(d->tokens, d->tokens + 1, sizeof(d->tokens[0]) * (size_t)d->nheld);
    memmove(d->reqs, d->reqs + 1, sizeof(d->reqs[0]) * (size_t)d->nheld);
    memmove(d->lens, d->lens + 1, sizeof(d->lens[0]) * (size_t)d->nheld);
}

static void pump_until(struct vtsm_host *h, const int *cond, int want)
{
    for (int i = 0; i < 1000 && *cond < want; i++) {
        struct pollfd p = {.fd = vtsm_host_fd(h), .events = POLLIN};
        assert_true(poll(&p, 1, 5000) > 0);
        assert_int_equal(vtsm_host_dispatch(h), VTSM_OK);
    }
    assert_true(*cond >= want);
}

struct trace_count {
    int doe_req, doe_rsp, link_req, link_rsp;
};

static void count_trace(void *ctx, enum vtsm_host_trace_dir dir, const char *dev, const uint8_t *p,
                        size_t len)
{
    struct trace_count *t = ctx;
    (void)dev;
    (void)p;
    (void)len;
    t->doe_req += dir == VTSM_HOST_TRACE_DOE_REQ;
    t->doe_rsp += dir == VTSM_HOST_TRACE_DOE_RSP;
    t->link_req += dir == VTSM_HOST_TRACE_LINK_REQ;
    t->link_rsp += dir == VTSM_HOST_TRACE_LINK_RSP;
}

static void test_async_callbacks(void **state)
{
    (void)state;
    int fd;
    struct fake *f = fake_start(script_async, &fd);
    fake_run(f);
    struct vtsm_host *h = open_host(fd);
    struct trace_count tc = {0};
    vtsm_host_set_trace(h, count_trace, &tc);
    struct async_dev da = {.h = h}, db = {.h = h}, dl = {.h = h};
    assert_int_equal(vtsm_host_register_doe_async(h, "devA", async_start, async_cancel, &da),
                     VTSM_OK);
    assert_int_equal(vtsm_host_register_doe_async(h, "devB", async_start, async_cancel, &db),
                     VTSM_OK);
    assert_int_equal(vtsm_host_register_link_async(h, "devB", async_start, async_cancel, &dl),
                     VTSM_OK);
    struct done_rec ra = {.h = h}, rb = {.h = h};
    assert_int_equal(vtsm_host_connect_start_cbor(h, "devA", NULL, on_done, &ra), VTSM_OK);
    assert_int_equal(vtsm_host_connect_start_cbor(h, "devB", NULL, on_done, &rb), VTSM_OK);

    /* both exchanges out; answer the newer (devB) first */
    pump_until(h, &da.nheld, 1);
    pump_until(h, &db.nheld, 1);
    assert_int_equal(vtsm_host_doe_pending(h), 2);
    assert_true(db.tokens[0] > da.tokens[0]);
    assert_true(da.tokens[0] != 0);
    async_answer(&db);
    async_answer(&da);
    assert_int_equal(vtsm_host_doe_pending(h), 0);

    /* seq 2: answered inside start */
    da.mode = 1;
    pump_until(h, &tc.doe_req, 3);
    assert_int_equal(da.mode, 0);
    assert_int_equal(tc.doe_rsp, 3); /* answered before start returned (seq 3 may be held) */
    /* seq 3: an oversized answer is refused as EMSGSIZE, the token is spent */
    pump_until(h, &da.nheld, 1);
    static uint8_t big[VTSM_HOST_DOE_RSP_CAP + 1];
    uint64_t t3 = da.tokens[0];
    assert_int_equal(vtsm_host_doe_complete(h, t3, big, sizeof(big)), VTSM_OK);
    da.nheld = 0;
    assert_int_equal(vtsm_host_doe_complete(h, t3, big, 12), VTSM_E_NOT_FOUND);

    /* the link exchange of devB goes to its link callback */
    pump_until(h, &dl.nheld, 1);
    assert_int_equal(db.nheld, 0);
    assert_memory_equal(dl.reqs[0], "VLNK", 4);
    async_answer(&dl);
    pump_until(h, &ra.calls, 1);
    assert_int_equal(ra.st, VTSM_OK);

    /* devB's last exchange is out when its verb fails: cancelled, not answered */
    pump_until(h, &db.nheld, 1);
    uint64_t tb = db.tokens[0];
    cbor_item_t *res = NULL;
    assert_int_equal(vtsm_host_status_cbor(h, NULL, &res), VTSM_OK); /* runs until the RESULT */
    cbor_decref(&res);
    assert_int_equal(rb.calls, 1);
    assert_int_equal(rb.st, VTSM_E_TIMEOUT);
    assert_int_equal(db.ncancelled, 1);
    assert_true(db.cancelled[0] == tb);
    assert_int_equal(vtsm_host_doe_pending(h), 0);
    assert_int_equal(vtsm_host_doe_fail(h, tb, EIO), VTSM_E_NOT_FOUND);
    assert_int_equal(da.ncancelled + dl.ncancelled, 0);
    /* the trace saw every asynchronous object both ways (the oversized answer is not
     * traced: it was not sent) */
    assert_int_equal(tc.doe_req, 5);
    assert_int_equal(tc.doe_rsp, 3);
    assert_int_equal(tc.link_req, 1);
    assert_int_equal(tc.link_rsp, 1);
    vtsm_host_close(h);
    fake_join(f);
    if (!strstr(f->errs[0], strerror(EMSGSIZE)))
        fail_msg("oversized answer reported as '%s'", f->errs[0]);
    fake_free(f);
}

/* The TSM vanishes with an exchange out: the verb fails, the exchange is cancelled. */
static void script_async_vanish(struct fake *f)
{
    FK_CHECK(f, fk_hello(f));
    cbor_item_t *a = fk_recv(f, VTSM_ABI_OP_DEVICE_CONNECT);
    FK_CHECK(f, a);
    uint64_t ida = id_of(a);
    cbor_decref(&a);
    uint8_t oa[12];
    make_obj(oa, 0xa1);
    FK_CHECK(f, fk_send(f, vtsm_abi_doe_pending_msg(ida, "devA", 1, oa, sizeof(oa))));
    shutdown(f->fd, SHUT_RDWR);
}

static void test_async_tsm_vanishes(void **state)
{
    (void)state;
    int fd;
    struct fake *f = fake_start(script_async_vanish, &fd);
    fake_run(f);
    struct vtsm_host *h = open_host(fd);
    struct async_dev da = {.h = h};
    assert_int_equal(vtsm_host_register_doe_async(h, "devA", async_start, async_cancel, &da),
                     VTSM_OK);
    struct done_rec ra = {.h = h};
    assert_int_equal(vtsm_host_connect_start_cbor(h, "devA", NULL, on_done, &ra), VTSM_OK);
    vtsm_status st = VTSM_OK;
    for (int i = 0; i < 100 && st == VTSM_OK; i++) {
        struct pollfd p = {.fd = vtsm_host_fd(h), .events = POLLIN};
        assert_true(poll(&p, 1, 5000) > 0);
        st = vtsm_host_dispatch(h);
    }
    assert_int_equal(st, VTSM_E_CLOSED);
    assert_int_equal(da.nheld, 1);
    assert_int_equal(da.ncancelled, 1);
    assert_true(da.cancelled[0] == da.tokens[0]);
    assert_int_equal(ra.calls, 1);
    assert_int_equal(ra.st, VTSM_E_CLOSED);
    uint8_t rsp[12] = {0};
    assert_int_equal(vtsm_host_doe_complete(h, da.tokens[0], rsp, sizeof(rsp)), VTSM_E_NOT_FOUND);
    vtsm_host_close(h);
    fake_finish(f);
}

/* A real Unix socket in a private directory, found through $VTSM_SOCKET. */
static void script_status(struct fake *f)
{
    FK_CHECK(f, fk_hello(f));
    cbor_item_t *m = fk_recv(f, VTSM_ABI_OP_STATUS);
    FK_CHECK(f, m);
    bool ok = vtsm_abi_check_keys(m, (const char *const[]){NULL}) == VTSM_OK;
    uint64_t id = id_of(m);
    cbor_decref(&m);
    FK_CHECK(f, ok);
    cbor_item_t *r = vtsm_abi_result_msg(id);
    cbor_item_t *devs = vtsm_abi_array_new();
    cbor_item_t *d = vtsm_abi_map_new();
    vtsm_abi_put_tstr(d, "dev", "dev0");
    vtsm_abi_push_item(devs, d);
    vtsm_abi_put_item(r, "devices", devs);
    fk_send(f, r);
}

static void test_unix_socket_default_path(void **state)
{
    (void)state;
    char dir[] = "/tmp/vtsm-host-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof(path), "%s/tsmd.sock", dir);
    struct fake *f = calloc(1, sizeof(*f));
    f->script = script_status;
    f->fd = -1;
    f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(f->lfd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    assert_true(strlen(path) < sizeof(sa.sun_path));
    memcpy(sa.sun_path, path, strlen(path) + 1);
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(f->lfd, 1), 0);
    fake_run(f);

    char *old = getenv("VTSM_SOCKET") ? strdup(getenv("VTSM_SOCKET")) : NULL;
    setenv("VTSM_SOCKET", path, 1);
    struct vtsm_host *h = NULL;
    vtsm_status st = vtsm_host_open(NULL, &h);
    if (old) {
        setenv("VTSM_SOCKET", old, 1);
        free(old);
    } else {
        unsetenv("VTSM_SOCKET");
    }
    assert_int_equal(st, VTSM_OK);
    cbor_item_t *res = NULL;
    assert_int_equal(vtsm_host_status_cbor(h, NULL, &res), VTSM_OK);
    const cbor_item_t *devs;
    assert_int_equal(vtsm_abi_get_array(res, "devices", &devs), VTSM_OK);
    assert_int_equal(cbor_array_size(devs), 1);
    cbor_decref(&res);
    vtsm_host_close(h);
    fake_finish(f);
    unlink(path);
    rmdir(dir);
}

/* IDE_LINK_CHECK: a DOE exchange and a link exchange in one verb, each to its own
 * callback, both traced; after the link callback is removed the DOE callback stays. */
static void script_link_check(struct fake *f)
{
    FK_CHECK(f, fk_hello(f));
    for (int round = 0; round < 2; round++) {
        cbor_item_t *m = fk_recv(f, VTSM_ABI_OP_IDE_LINK_CHECK);
        FK_CHECK(f, m);
        uint64_t id = id_of(m);
        bool ok = vtsm_abi_check_keys(m, vtsm_abi_keys_ide_link_check) == VTSM_OK &&
                  cbor_map_size(m) == 3;
        cbor_decref(&m);
        FK_CHECK(f, ok);
        FK_CHECK(f, fk_exchange(f, id, "dev0", 1, 0x31));
        uint8_t fr[24];
        make_link_frame(fr, 0x32);
        FK_CHECK(f, fk_exchange_on(f, id, "dev0", 2, fr, sizeof(fr), cbor_build_string("link"),
                                   round == 1, f->errs[round], sizeof(f->errs[round])));
        cbor_item_t *r = vtsm_abi_result_msg(id);
        cbor_item_t *streams = vtsm_abi_array_new();
        cbor_item_t *st = vtsm_abi_map_new();
        vtsm_abi_put_uint(st, "stream_id", 0);
        vtsm_abi_put_uint(st, "key_set", 0);
        vtsm_abi_put_bool(st, "rp_to_device", round == 0);
        vtsm_abi_put_bool(st, "device_to_rp", round == 0);
        vtsm_abi_push_item(streams, st);
        vtsm_abi_put_tstr(r, "dev", "dev0");
        vtsm_abi_put_item(r, "streams", streams);
        FK_CHECK(f, fk_send(f, r));
    }
}

static void test_link_channel(void **state)
{
    (void)state;
    int fd;
    struct fake *f = fake_start(script_link_check, &fd);
    fake_run(f);
    struct trace_rec t = {.frames_decode = true};
    struct vtsm_host *h = NULL;
    struct vtsm_host_config cfg = {.use_fd = true, .fd = fd, .trace = recorder, .trace_ctx = &t};
    assert_int_equal(vtsm_host_open_cfg(&cfg, &h), VTSM_OK);
    vtsm_host_set_timeout(h, 5000);
    assert_int_equal(vtsm_host_role(h), VTSM_ABI_ROLE_HOST);
    struct dev d = {.name = "dev0"}, l = {.name = "dev0"};
    assert_int_equal(vtsm_host_register_doe(h, "dev0", dev_doe, &d), VTSM_OK);
    assert_int_equal(vtsm_host_register_link(h, "dev0", dev_doe, &l), VTSM_OK);
    cbor_item_t *res = NULL;
    assert_int_equal(vtsm_host_ide_link_check_cbor(h, "dev0", &res), VTSM_OK);
    const cbor_item_t *streams = NULL;
    assert_int_equal(vtsm_abi_get_array(res, "streams", &streams), VTSM_OK);
    assert_int_equal(cbor_array_size(streams), 1);
    cbor_decref(&res);
    assert_int_equal(d.calls, 1);
    assert_int_equal(l.calls, 1);
    assert_int_equal(d.last_len, 12);
    assert_int_equal(l.last_len, 24);
    assert_memory_equal(l.last, "VLNK", 4);
    assert_int_equal(l.last[10], 0x32);
    assert_true(t.frames_decode);
    assert_int_equal(t.n[VTSM_HOST_TRACE_DOE_REQ], 1);
    assert_int_equal(t.n[VTSM_HOST_TRACE_DOE_RSP], 1);
    assert_int_equal(t.n[VTSM_HOST_TRACE_LINK_REQ], 1);
    assert_int_equal(t.n[VTSM_HOST_TRACE_LINK_RSP], 1);
    assert_int_equal(t.doe_bytes, 2 * 12 + 2 * 24);

    /* the link callback goes, the DOE callback stays */
    assert_int_equal(vtsm_host_register_link(h, "dev0", NULL, NULL), VTSM_OK);
    assert_int_equal(vtsm_host_ide_link_check_cbor(h, "dev0", &res), VTSM_OK);
    cbor_decref(&res);
    assert_int_equal(d.calls, 2);
    assert_int_equal(l.calls, 1);
    assert_int_equal(t.n[VTSM_HOST_TRACE_LINK_REQ], 1);
    vtsm_host_close(h);
    fake_join(f);
    assert_string_equal(f->errs[1], "no link callback registered");
    fake_free(f);
}

/* ---- every new verb's request, exactly ---- */

/* Answer each expected request in order with a RESULT (TVM_CREATE: tvm 7). */
static void script_sequence(struct fake *f)
{
    FK_CHECK(f, fk_hello(f));
    for (size_t i = 0; i < f->nops; i++) {
        cbor_item_t *m = fk_recv(f, f->ops[i]);
        FK_CHECK(f, m);
        f->reqs[f->nreqs++] = m;
        cbor_item_t *r = vtsm_abi_result_msg(id_of(m));
        if (f->ops[i] == VTSM_ABI_OP_TVM_CREATE) {
            uint8_t ident[32] = {0xab};
            vtsm_abi_put_uint(r, "tvm", 7);
            vtsm_abi_put_bytes(r, "identity", ident, sizeof(ident));
        }
        FK_CHECK(f, fk_send(f, r));
    }
}

static void hex(char *out, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", p[i]);
    out[2 * n] = '\0';
}

/*
 * m is a request with op, a uint id, and exactly the keys of spec, a list of
 * "key=T:value" separated by spaces: T is u (uint), s (text), b (bool 0/1) or x (bytes,
 * hex).
 */
static void assert_request(const cbor_item_t *m, unsigned op, const char *spec)
{
    uint64_t got_op = 0, id = 0;
    assert_int_equal(vtsm_abi_get_op(m, &got_op), VTSM_OK);
    assert_int_equal(vtsm_abi_get_id(m, &id), VTSM_OK);
    if (got_op != op)
        fail_msg("op 0x%llx, want 0x%x", (unsigned long long)got_op, op);
    char buf[1024];
    snprintf(buf, sizeof(buf), "%s", spec);
    size_t nkeys = 0;
    for (char *save = NULL, *tok = strtok_r(buf, " ", &save); tok;
         tok = strtok_r(NULL, " ", &save), nkeys++) {
        char *eq = strchr(tok, '=');
        assert_non_null(eq);
        *eq = '\0';
        const char *key = tok, *val = eq + 3;
        char type = eq[1];
        uint64_t u = 0;
        bool b = false;
        char s[600];
        const uint8_t *p = NULL;
        size_t n = 0;
        switch (type) {
        case 'u':
            assert_int_equal(vtsm_abi_get_uint(m, key, &u), VTSM_OK);
            assert_int_equal(u, strtoull(val, NULL, 0));
            break;
        case 's':
            assert_int_equal(vtsm_abi_get_tstr(m, key, s, sizeof(s)), VTSM_OK);
            assert_string_equal(s, val);
            break;
        case 'b':
            assert_int_equal(vtsm_abi_get_bool(m, key, &b), VTSM_OK);
            assert_int_equal(b, val[0] == '1');
            break;
        default:
            assert_int_equal(vtsm_abi_get_bytes(m, key, &p, &n), VTSM_OK);
            assert_true(2 * n < sizeof(s));
            hex(s, p, n);
            assert_string_equal(s, val);
            break;
        }
    }
    if (cbor_map_size(m) != 2 + nkeys)
        fail_msg("request 0x%x has %zu keys, want op, id and '%s'", op, cbor_map_size(m), spec);
}

static const unsigned verb_ops[] = {
    VTSM_ABI_OP_DEVICE_CONNECT, VTSM_ABI_OP_DEVICE_RECLAIM, VTSM_ABI_OP_DEVICE_RECLAIM,
    VTSM_ABI_OP_DEVICE_RECLAIM, VTSM_ABI_OP_IDE_REFRESH,    VTSM_ABI_OP_IDE_LINK_CHECK,
    VTSM_ABI_OP_TVM_CREATE,     VTSM_ABI_OP_TVM_CREATE,     VTSM_ABI_OP_TVM_DESTROY,
    VTSM_ABI_OP_TDI_BIND,       VTSM_ABI_OP_TDI_BIND,       VTSM_ABI_OP_TDI_UNBIND,
    VTSM_ABI_OP_GUEST_REQUEST,
};
#define NVERBS (sizeof(verb_ops) / sizeof(verb_ops[0]))

struct verb_inputs {
    uint8_t key[VTSM_ABI_GUEST_KEY_SIZE];
    uint8_t body[40];
    uint8_t sig[VTSM_ABI_GUEST_SIG_SIZE];
    cbor_item_t *envelope;
    char key_hex[2 * VTSM_ABI_GUEST_KEY_SIZE + 1];
    char body_hex[81];
    char sig_hex[2 * VTSM_ABI_GUEST_SIG_SIZE + 1];
};

static void verb_inputs_init(struct verb_inputs *v)
{
    v->key[0] = 0x04;
    for (size_t i = 1; i < sizeof(v->key); i++)
        v->key[i] = (uint8_t)i;
    for (size_t i = 0; i < sizeof(v->body); i++)
        v->body[i] = (uint8_t)(0xa0 + i);
    for (size_t i = 0; i < sizeof(v->sig); i++)
        v->sig[i] = (uint8_t)(0x40 ^ i);
    hex(v->key_hex, v->key, sizeof(v->key));
    hex(v->body_hex, v->body, sizeof(v->body));
    hex(v->sig_hex, v->sig, sizeof(v->sig));
    /* the envelope as a guest shim hands it over; any op/id in it are the shim's to set */
    v->envelope = vtsm_abi_map_new();
    assert_int_equal(vtsm_abi_put_uint(v->envelope, "op", 0x99), VTSM_OK);
    assert_int_equal(vtsm_abi_put_uint(v->envelope, "id", 12345), VTSM_OK);
    assert_int_equal(vtsm_abi_put_uint(v->envelope, "tvm", 7), VTSM_OK);
    assert_int_equal(vtsm_abi_put_bytes(v->envelope, "body", v->body, sizeof(v->body)), VTSM_OK);
    assert_int_equal(vtsm_abi_put_bytes(v->envelope, "sig", v->sig, sizeof(v->sig)), VTSM_OK);
}

/* The requests both forms must have sent, in order. */
static void check_verb_requests(struct fake *f, const struct verb_inputs *v)
{
    char spec[600];
    assert_int_equal(f->nreqs, NVERBS);
    assert_request(f->reqs[0], VTSM_ABI_OP_DEVICE_CONNECT,
                   "dev=s:dev0 ide_streams=u:2 ide_only=b:1");
    assert_request(f->reqs[1], VTSM_ABI_OP_DEVICE_RECLAIM, "dev=s:dev0 force=b:1");
    assert_request(f->reqs[2], VTSM_ABI_OP_DEVICE_RECLAIM, "dev=s:dev0");
    assert_request(f->reqs[3], VTSM_ABI_OP_DEVICE_RECLAIM, "dev=s:dev0");
    assert_request(f->reqs[4], VTSM_ABI_OP_IDE_REFRESH, "dev=s:dev0");
    assert_request(f->reqs[5], VTSM_ABI_OP_IDE_LINK_CHECK, "dev=s:0000:03:00.0");
    snprintf(spec, sizeof(spec), "name=s:vm-1 guest_key=x:%s", v->key_hex);
    assert_request(f->reqs[6], VTSM_ABI_OP_TVM_CREATE, spec);
    snprintf(spec, sizeof(spec), "guest_key=x:%s", v->key_hex);
    assert_request(f->reqs[7], VTSM_ABI_OP_TVM_CREATE, spec);
    assert_request(f->reqs[8], VTSM_ABI_OP_TVM_DESTROY, "tvm=u:7");
    assert_request(f->reqs[9], VTSM_ABI_OP_TDI_BIND, "dev=s:dev0 tdi=u:3 tvm=u:7 lock_flags=u:5");
    assert_request(f->reqs[10], VTSM_ABI_OP_TDI_BIND, "dev=s:dev0 tdi=u:0 tvm=u:4294967295");
    assert_request(f->reqs[11], VTSM_ABI_OP_TDI_UNBIND, "dev=s:dev0 tdi=u:65535");
    snprintf(spec, sizeof(spec), "tvm=u:7 body=x:%s sig=x:%s", v->body_hex, v->sig_hex);
    assert_request(f->reqs[12], VTSM_ABI_OP_GUEST_REQUEST, spec);
    /* the shim's ids, not the envelope's */
    uint64_t id = 0;
    assert_int_equal(vtsm_abi_get_id(f->reqs[12], &id), VTSM_OK);
    assert_int_not_equal(id, 12345);
}

static void test_verbs_blocking_exact(void **state)
{
    (void)state;
    int fd;
    struct fake *f = fake_start(script_sequence, &fd);
    f->ops = verb_ops;
    f->nops = NVERBS;
    fake_run(f);
    struct vtsm_host *h = open_host(fd);
    struct verb_inputs v = {0};
    verb_inputs_init(&v);
    struct vtsm_host_connect_opts o = {.ide_streams = 2, .ide_only = true};
    cbor_item_t *res = NULL;
    assert_int_equal(vtsm_host_device_connect_cbor(h, "dev0", &o, NULL), VTSM_OK);
    assert_int_equal(vtsm_host_device_reclaim_opts_cbor(h, "dev0", true, NULL), VTSM_OK);
    assert_int_equal(vtsm_host_device_reclaim_opts_cbor(h, "dev0", false, NULL), VTSM_OK);
    assert_int_equal(vtsm_host_device_reclaim_cbor(h, "dev0", NULL), VTSM_OK);
    assert_int_equal(vtsm_host_ide_refresh_cbor(h, "dev0", NULL), VTSM_OK);
    assert_int_equal(vtsm_host_ide_link_check_cbor(h, "0000:03:00.0", NULL), VTSM_OK);
    uint32_t tvm = 0;
    assert_int_equal(vtsm_host_tvm_create_cbor(h, "vm-1", v.key, &tvm, &res), VTSM_OK);
    assert_int_equal(tvm, 7);
    const uint8_t *ident = NULL;
    size_t ilen = 0;
    assert_int_equal(vtsm_abi_get_bytes(res, "identity", &ident, &ilen), VTSM_OK);
    assert_int_equal(ilen, 32);
    cbor_decref(&res);
    assert_int_equal(vtsm_host_tvm_create_cbor(h, NULL, v.key, NULL, NULL), VTSM_OK);
    assert_int_equal(vtsm_host_tvm_destroy_cbor(h, 7, NULL), VTSM_OK);
    assert_int_equal(vtsm_host_tdi_bind_cbor(h, "dev0", 3, 7, 5, NULL), VTSM_OK);
    assert_int_equal(vtsm_host_tdi_bind_cbor(h, "dev0", 0, UINT32_MAX, 0, NULL), VTSM_OK);
    assert_int_equal(vtsm_host_tdi_unbind_cbor(h, "dev0", 0xffff, NULL), VTSM_OK);
    assert_int_equal(vtsm_host_guest_relay_cbor(h, v.envelope, &res), VTSM_OK);
    assert_non_null(res);
    cbor_decref(&res);
    assert_int_equal(vtsm_host_pending(h), 0);
    vtsm_host_close(h);
    fake_join(f);
    check_verb_requests(f, &v);
    cbor_decref(&v.envelope);
    fake_free(f);
}

struct done_count {
    int calls, ok;
};

static void count_done(void *ctx, vtsm_status st, const cbor_item_t *result)
{
    struct done_count *c = ctx;
    c->calls++;
    c->ok += st == VTSM_OK && result != NULL;
}

/* The fd-driven forms send the same requests; all thirteen are in flight at once. */
static void test_verbs_fd_driven_exact(void **state)
{
    (void)state;
    int fd;
    struct fake *f = fake_start(script_sequence, &fd);
    f->ops = verb_ops;
    f->nops = NVERBS;
    fake_run(f);
    struct vtsm_host *h = open_host(fd);
    struct verb_inputs v = {0};
    verb_inputs_init(&v);
    struct vtsm_host_connect_opts o = {.ide_streams = 2, .ide_only = true};
    struct done_count c = {0};
    assert_int_equal(vtsm_host_connect_start_cbor(h, "dev0", &o, count_done, &c), VTSM_OK);
    assert_int_equal(vtsm_host_reclaim_opts_start_cbor(h, "dev0", true, count_done, &c), VTSM_OK);
    assert_int_equal(vtsm_host_reclaim_opts_start_cbor(h, "dev0", false, count_done, &c), VTSM_OK);
    assert_int_equal(vtsm_host_reclaim_start_cbor(h, "dev0", count_done, &c), VTSM_OK);
    assert_int_equal(vtsm_host_ide_refresh_start_cbor(h, "dev0", count_done, &c), VTSM_OK);
    assert_int_equal(vtsm_host_ide_link_check_start_cbor(h, "0000:03:00.0", count_done, &c),
                     VTSM_OK);
    assert_int_equal(vtsm_host_tvm_create_start_cbor(h, "vm-1", v.key, count_done, &c), VTSM_OK);
    assert_int_equal(vtsm_host_tvm_create_start_cbor(h, NULL, v.key, count_done, &c), VTSM_OK);
    assert_int_equal(vtsm_host_tvm_destroy_start_cbor(h, 7, count_done, &c), VTSM_OK);
    assert_int_equal(vtsm_host_tdi_bind_start_cbor(h, "dev0", 3, 7, 5, count_done, &c), VTSM_OK);
    assert_int_equal(vtsm_host_tdi_bind_start_cbor(h, "dev0", 0, UINT32_MAX, 0, count_done, &c),
                     VTSM_OK);
    assert_int_equal(vtsm_host_tdi_unbind_start_cbor(h, "dev0", 0xffff, count_done, &c), VTSM_OK);
    assert_int_equal(vtsm_host_guest_relay_start_cbor(h, v.envelope, count_done, &c), VTSM_OK);
    assert_int_equal(vtsm_host_pending(h), NVERBS);
    int loops = 0;
    while (vtsm_host_pending(h) > 0 && loops++ < 1000) {
        struct pollfd p = {.fd = vtsm_host_fd(h), .events = POLLIN};
        assert_true(poll(&p, 1, 5000) > 0);
        assert_int_equal(vtsm_host_dispatch(h), VTSM_OK);
    }
    assert_int_equal(c.calls, NVERBS);
    assert_int_equal(c.ok, NVERBS);
    vtsm_host_close(h);
    fake_join(f);
    check_verb_requests(f, &v);
    cbor_decref(&v.envelope);
    fake_free(f);
}

/* A guest connection: HELLO names role "guest", the guest's own GUEST_REQUEST goes out
 * as given and its DOE exchange is serviced on the same connection. */
static void script_guest(struct fake *f)
{
    f->role = "guest";
    f->grant_role = "guest";
    FK_CHECK(f, fk_hello(f));
    cbor_item_t *m = fk_recv(f, VTSM_ABI_OP_GUEST_REQUEST);
    FK_CHECK(f, m);
    f->reqs[f->nreqs++] = m;
    uint64_t id = id_of(m);
    FK_CHECK(f, fk_exchange(f, id, "dev0", 1, 0x51));
    cbor_item_t *r = vtsm_abi_result_msg(id);
    vtsm_abi_put_uint(r, "gop", VTSM_ABI_GOP_ACCEPT);
    vtsm_abi_put_uint(r, "tvm", 7);
    vtsm_abi_put_uint(r, "seq", 2);
    fk_send(f, r);
}

static void test_guest_role(void **state)
{
    (void)state;
    int fd;
    struct fake *f = fake_start(script_guest, &fd);
    fake_run(f);
    struct vtsm_host *h = NULL;
    struct vtsm_host_config cfg = {
        .use_fd = true, .fd = fd, .client = "guest-test", .role = VTSM_ROLE_GUEST};
    assert_int_equal(vtsm_host_open_cfg(&cfg, &h), VTSM_OK);
    vtsm_host_set_timeout(h, 5000);
    assert_int_equal(vtsm_host_role(h), VTSM_ABI_ROLE_GUEST);
    struct dev d = {.name = "dev0"};
    assert_int_equal(vtsm_host_register_doe(h, "dev0", dev_doe, &d), VTSM_OK);
    struct verb_inputs v = {0};
    verb_inputs_init(&v);
    cbor_item_t *res = NULL;
    assert_int_equal(vtsm_host_guest_relay_cbor(h, v.envelope, &res), VTSM_OK);
    uint64_t gop = 0;
    assert_int_equal(vtsm_abi_get_uint(res, "gop", &gop), VTSM_OK);
    assert_int_equal(gop, VTSM_ABI_GOP_ACCEPT);
    cbor_decref(&res);
    assert_int_equal(d.calls, 1);
    vtsm_host_close(h);
    fake_join(f);
    char spec[600];
    snprintf(spec, sizeof(spec), "tvm=u:7 body=x:%s sig=x:%s", v.body_hex, v.sig_hex);
    assert_request(f->reqs[0], VTSM_ABI_OP_GUEST_REQUEST, spec);
    cbor_decref(&v.envelope);
    fake_free(f);
}

/* ------------------------------------------------------------------ DOE TCP backend */

enum echo_mode {
    ECHO_OK,
    ECHO_DROP_AFTER_ONE,  /* answer one request per connection, then close */
    ECHO_WRONG_TRANSPORT, /* answer with transport MCTP */
    ECHO_WRONG_COMMAND,   /* answer with command TEST */
    ECHO_BIG,             /* answer with 64 bytes whatever was asked */
    ECHO_LINK_AS_NORMAL,  /* answer a link frame with command NORMAL */
};

struct echo {
    int lfd;
    uint16_t port;
    enum echo_mode mode;
    int accepted;
    int requests;
    int link_requests;
    int ends; /* CONTINUE or SHUTDOWN frames */
    char err[256];
    pthread_t th;
};

static void *echo_main(void *arg)
{
    struct echo *e = arg;
    struct vtsm_buf buf = {0};
    for (;;) {
        int fd = accept(e->lfd, NULL, NULL);
        if (fd < 0)
            break;
        e->accepted++;
        for (;;) {
            uint32_t cmd, tr;
            vtsm_status st = vtsm_sock_recv(fd, &cmd, &tr, &buf, 1u << 21, 5000);
            if (st != VTSM_OK)
                break;
            if (cmd == VTSM_SOCK_CMD_CONTINUE || cmd == VTSM_SOCK_CMD_SHUTDOWN) {
                e->ends++; /* the backend's session end on close: answered in kind */
                (void)vtsm_sock_send(fd, cmd, tr, NULL, 0);
                break;
            }
            e->requests++;
            e->link_requests += cmd == VTSM_SOCK_CMD_VTSM_LINK;
            if ((cmd != VTSM_SOCK_CMD_NORMAL && cmd != VTSM_SOCK_CMD_VTSM_LINK) ||
                tr != VTSM_SOCK_TRANSPORT_PCI_DOE) {
                snprintf(e->err, sizeof(e->err), "request cmd %u transport %u", cmd, tr);
                break;
            }
            uint8_t rsp[64] = {0};
            size_t n = buf.len < sizeof(rsp) ? buf.len : sizeof(rsp);
            if (e->mode == ECHO_BIG)
                n = sizeof(rsp);
            else
                transform(buf.data, n, rsp);
            uint32_t rcmd = e->mode == ECHO_WRONG_COMMAND    ? VTSM_SOCK_CMD_TEST
                            : e->mode == ECHO_LINK_AS_NORMAL ? VTSM_SOCK_CMD_NORMAL
                                                             : cmd;
            uint32_t rtr = e->mode == ECHO_WRONG_TRANSPORT ? VTSM_SOCK_TRANSPORT_MCTP
                                                           : VTSM_SOCK_TRANSPORT_PCI_DOE;
            if (vtsm_sock_send(fd, rcmd, rtr, rsp, n) != VTSM_OK)
                break;
            if (e->mode == ECHO_DROP_AFTER_ONE)
                break;
        }
        close(fd);
    }
    vtsm_buf_free(&buf);
    return NULL;
}

static struct echo *echo_start(enum echo_mode mode)
{
    struct echo *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    e->mode = mode;
    assert_int_equal(vtsm_tcp_listen("127.0.0.1", 0, &e->lfd, &e->port), VTSM_OK);
    assert_int_equal(pthread_create(&e->th, NULL, echo_main, e), 0);
    return e;
}

static void echo_stop(struct echo *e)
{
    shutdown(e->lfd, SHUT_RDWR);
    pthread_join(e->th, NULL);
    close(e->lfd);
    if (e->err[0])
        fail_msg("echo responder: %s", e->err);
    free(e);
}

static struct vtsm_doe_tcp *doe_open(struct echo *e)
{
    char spec[64];
    snprintf(spec, sizeof(spec), "tcp:127.0.0.1:%u", e->port);
    struct vtsm_doe_tcp *t = NULL;
    assert_int_equal(vtsm_doe_tcp_open(spec, &t), VTSM_OK);
    assert_non_null(t);
    vtsm_doe_tcp_set_timeout(t, 5000);
    return t;
}

static int doe_call(struct vtsm_doe_tcp *t, uint8_t tag, uint8_t *rsp, size_t *len)
{
    uint8_t req[12];
    make_obj(req, tag);
    return vtsm_doe_tcp_fn(t, req, sizeof(req), rsp, len);
}

static void test_doe_tcp_bad_spec(void **state)
{
    (void)state;
    struct vtsm_doe_tcp *t = (struct vtsm_doe_tcp *)0x1;
    assert_int_equal(vtsm_doe_tcp_open("127.0.0.1:2323", &t), VTSM_E_INVAL);
    assert_null(t);
    assert_int_equal(vtsm_doe_tcp_open("tcp:127.0.0.1:99999", &t), VTSM_E_INVAL);
    assert_int_equal(vtsm_doe_tcp_open("tcp:nohost", &t), VTSM_E_INVAL);
    /* nobody listening on a port we just released */
    int lfd;
    uint16_t port;
    assert_int_equal(vtsm_tcp_listen("127.0.0.1", 0, &lfd, &port), VTSM_OK);
    close(lfd);
    char spec[64];
    snprintf(spec, sizeof(spec), "tcp:127.0.0.1:%u", port);
    assert_int_equal(vtsm_doe_tcp_open(spec, &t), VTSM_E_IO);
    vtsm_doe_tcp_close(NULL);
}

static void test_doe_tcp_wrong_transport(void **state)
{
    (void)state;
    struct echo *e = echo_start(ECHO_WRONG_TRANSPORT);
    struct vtsm_doe_tcp *t = doe_open(e);
    uint8_t rsp[64];
    size_t len = sizeof(rsp);
    assert_int_equal(doe_call(t, 1, rsp, &len), -EPROTO);
    vtsm_doe_tcp_close(t);
    echo_stop(e);

    e = echo_start(ECHO_WRONG_COMMAND);
    t = doe_open(e);
    len = sizeof(rsp);
    assert_int_equal(doe_call(t, 1, rsp, &len), -EPROTO);
    vtsm_doe_tcp_close(t);
    echo_stop(e);
}

static void test_doe_tcp_oversized(void **state)
{
    (void)state;
    struct echo *e = echo_start(ECHO_BIG);
    struct vtsm_doe_tcp *t = doe_open(e);
    uint8_t rsp[64];
    size_t len = 16; /* capacity smaller than the 64-byte answer */
    assert_int_equal(doe_call(t, 1, rsp, &len), -EMSGSIZE);
    vtsm_doe_tcp_close(t);
    echo_stop(e);
}

static void test_doe_tcp_exchange_and_reconnect(void **state)
{
    (void)state;
    struct echo *e = echo_start(ECHO_DROP_AFTER_ONE);
    struct vtsm_doe_tcp *t = doe_open(e);
    uint8_t req[12], want[12], rsp[64];
    for (int i = 0; i < 3; i++) {
        size_t len = sizeof(rsp);
        make_obj(req, (uint8_t)(0x40 + i));
        transform(req, sizeof(req), want);
        int rc = vtsm_doe_tcp_fn(t, req, sizeof(req), rsp, &len);
        assert_int_equal(rc, 0);
        assert_int_equal(len, sizeof(want));
        assert_memory_equal(rsp, want, sizeof(want));
    }
    vtsm_doe_tcp_close(t);
    /* one connection per exchange: the backend reconnected after each drop */
    echo_stop(e);
}

/* The whole chain: TSM DOE_PENDING -> shim -> TCP backend -> responder and back. */
static void test_doe_tcp_through_host(void **state)
{
    (void)state;
    struct echo *e = echo_start(ECHO_OK);
    struct vtsm_doe_tcp *t = doe_open(e);
    int fd;
    struct fake *f = fake_start(script_connect, &fd);
    fake_run(f);
    struct vtsm_host *h = open_host(fd);
    assert_int_equal(vtsm_host_register_doe(h, "dev0", vtsm_doe_tcp_fn, t), VTSM_OK);
    cbor_item_t *res = NULL;
    assert_int_equal(vtsm_host_device_connect_cbor(h, "dev0", NULL, &res), VTSM_OK);
    cbor_decref(&res);
    vtsm_host_close(h);
    fake_finish(f);
    vtsm_doe_tcp_close(t);
    assert_int_equal(e->accepted, 1);
    assert_int_equal(e->requests, 2);
    assert_int_equal(e->ends, 1); /* CONTINUE on close */
    echo_stop(e);
}

static int link_call(struct vtsm_doe_tcp *t, uint8_t tag, uint8_t *rsp, size_t *len)
{
    uint8_t fr[24];
    make_link_frame(fr, tag);
    return vtsm_doe_tcp_link_fn(t, fr, sizeof(fr), rsp, len);
}

/* A link frame answered under another command is a protocol error. */
static void test_doe_tcp_link_wrong_command(void **state)
{
    (void)state;
    struct echo *e = echo_start(ECHO_LINK_AS_NORMAL);
    struct vtsm_doe_tcp *t = doe_open(e);
    uint8_t rsp[64];
    size_t len = sizeof(rsp);
    assert_int_equal(link_call(t, 1, rsp, &len), -EPROTO);
    vtsm_doe_tcp_close(t);
    echo_stop(e);
    assert_int_equal(vtsm_doe_tcp_link_fn(NULL, rsp, 1, rsp, &len), -EINVAL);

    e = echo_start(ECHO_WRONG_COMMAND);
    t = doe_open(e);
    len = sizeof(rsp);
    assert_int_equal(link_call(t, 1, rsp, &len), -EPROTO);
    vtsm_doe_tcp_close(t);
    echo_stop(e);
}

/* DOE objects and link frames share one connection, each under its own command. */
static void test_doe_tcp_link_round_trip(void **state)
{
    (void)state;
    struct echo *e = echo_start(ECHO_OK);
    struct vtsm_doe_tcp *t = doe_open(e);
    uint8_t fr[24], want[24], rsp[64];
    size_t len = sizeof(rsp);
    assert_int_equal(doe_call(t, 1, rsp, &len), 0);
    len = sizeof(rsp);
    make_link_frame(fr, 0x77);
    transform(fr, sizeof(fr), want);
    assert_int_equal(vtsm_doe_tcp_link_fn(t, fr, sizeof(fr), rsp, &len), 0);
    assert_int_equal(len, sizeof(want));
    assert_memory_equal(rsp, want, sizeof(want));
    len = sizeof(rsp);
    assert_int_equal(doe_call(t, 2, rsp, &len), 0);
    vtsm_doe_tcp_close(t);
    assert_int_equal(e->accepted, 1);
    assert_int_equal(e->requests, 3);
    assert_int_equal(e->link_requests, 1);
    echo_stop(e);
}

/* TSM link DOE_PENDING -> shim -> TCP backend (command 0x5654) -> responder and back. */
static void test_doe_tcp_link_through_host(void **state)
{
    (void)state;
    struct echo *e = echo_start(ECHO_OK);
    struct vtsm_doe_tcp *t = doe_open(e);
    int fd;
    struct fake *f = fake_start(script_link_check, &fd);
    fake_run(f);
    struct vtsm_host *h = open_host(fd);
    assert_int_equal(vtsm_host_register_doe(h, "dev0", vtsm_doe_tcp_fn, t), VTSM_OK);
    assert_int_equal(vtsm_host_register_link(h, "dev0", vtsm_doe_tcp_link_fn, t), VTSM_OK);
    assert_int_equal(vtsm_host_ide_link_check_cbor(h, "dev0", NULL), VTSM_OK);
    assert_int_equal(vtsm_host_register_link(h, "dev0", NULL, NULL), VTSM_OK);
    assert_int_equal(vtsm_host_ide_link_check_cbor(h, "dev0", NULL), VTSM_OK);
    vtsm_host_close(h);
    fake_finish(f);
    vtsm_doe_tcp_close(t);
    assert_int_equal(e->accepted, 1);
    assert_int_equal(e->requests, 3);
    assert_int_equal(e->link_requests, 1);
    echo_stop(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello_refused),
        cmocka_unit_test(test_hello_wrong_version),
        cmocka_unit_test(test_open_unreachable),
        cmocka_unit_test(test_error_propagates),
        cmocka_unit_test(test_no_callback),
        cmocka_unit_test(test_callback_failure),
        cmocka_unit_test(test_tsm_vanishes),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_local_argument_checks),
        cmocka_unit_test(test_link_errors),
        cmocka_unit_test(test_role_refusals),
        cmocka_unit_test(test_tvm_create_bad_result),
        cmocka_unit_test(test_new_verbs_local_checks),
        cmocka_unit_test(test_doe_tcp_bad_spec),
        cmocka_unit_test(test_doe_tcp_wrong_transport),
        cmocka_unit_test(test_doe_tcp_oversized),
        cmocka_unit_test(test_doe_tcp_link_wrong_command),
        cmocka_unit_test(test_connect_blocking),
        cmocka_unit_test(test_connect_default_opts),
        cmocka_unit_test(test_fd_driven_two_devices),
        cmocka_unit_test(test_close_aborts),
        cmocka_unit_test(test_async_callbacks),
        cmocka_unit_test(test_async_tsm_vanishes),
        cmocka_unit_test(test_unix_socket_default_path),
        cmocka_unit_test(test_link_channel),
        cmocka_unit_test(test_verbs_blocking_exact),
        cmocka_unit_test(test_verbs_fd_driven_exact),
        cmocka_unit_test(test_guest_role),
        cmocka_unit_test(test_doe_tcp_exchange_and_reconnect),
        cmocka_unit_test(test_doe_tcp_through_host),
        cmocka_unit_test(test_doe_tcp_link_round_trip),
        cmocka_unit_test(test_doe_tcp_link_through_host),
    };
    return cmocka_run_group_tests_name("host", tests, NULL, NULL);
}
