/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Guest requests checked off tsmd's loop (docs/architecture.md "Crypto off the loop"):
 * several guests, each on its own connection, send many signed INFO requests without
 * waiting for the answers. tsmd judges requests that arrive together together, one
 * signature on the crypto worker while the loop checks the next; a TVM's later request
 * queues behind its earlier one on the worker. Asserts that every request is answered
 * RESULT (none refused as a replay, which a later request overtaking an earlier one of
 * the same TVM would cause), each answer echoes its own seq, each guest's answers come in
 * the order sent, and that the host's own requests are served meanwhile.
 */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "e2e_host.h"
#include "e2e_util.h"
#include "vtsm_abi.h"
#include "vtsm_crypto.h"
#include "vtsm_guest_cbor.h"
#include "vtsm_proc.h"

#define GUESTS 3  /* TVMs, each with one bound TDI and its own guest connection */
#define DEPTH  24 /* requests each guest has in flight at once */

struct answer {
    struct guest *g;
    uint64_t seq;
};

struct guest {
    struct vtsm_host *conn;
    struct vtsm_guest *cred;
    uint32_t tvm;
    struct answer ans[DEPTH];
    uint64_t last_seq; /* seq of the last answer received */
    unsigned pending, ok, out_of_order, failures;
    char failure[640];
};

static void on_answer(void *ctx, vtsm_status st, const cbor_item_t *res)
{
    struct answer *a = ctx;
    struct guest *g = a->g;
    g->pending--;
    if (st != VTSM_OK) {
        g->failures++;
        snprintf(g->failure, sizeof(g->failure), "TVM %u seq %llu: %s", g->tvm,
                 (unsigned long long)a->seq, vtsm_host_last_error(g->conn)->detail);
        return;
    }
    if (e2e_uint(res, "seq") != a->seq || e2e_uint(res, "tvm") != g->tvm) {
        g->failures++;
        snprintf(g->failure, sizeof(g->failure), "TVM %u: answer for seq %llu echoes %llu", g->tvm,
                 (unsigned long long)a->seq, (unsigned long long)e2e_uint(res, "seq"));
        return;
    }
    if (a->seq <= g->last_seq)
        g->out_of_order++;
    g->last_seq = a->seq;
    g->ok++;
}

static void test_guest_requests_in_flight(void **state)
{
    struct e2e *e = *state;
    static struct e2e_host hh;
    static struct guest gs[GUESTS];
    memset(&hh, 0, sizeof(hh));
    memset(gs, 0, sizeof(gs));

    /* a connected device with one TDI bound to each guest's TVM */
    int port = e2e_devemu(e, NULL);
    assert_true(port > 0);
    assert_int_equal(e2e_host_open(e, &hh), 0);
    assert_int_equal(e2e_host_add_device(&hh, "0000:01:00.0", port, 0), 0);
    assert_int_equal(vtsm_host_device_connect_cbor(hh.h, "0000:01:00.0", NULL, NULL), VTSM_OK);
    for (int i = 0; i < GUESTS; i++) {
        char name[16];
        snprintf(name, sizeof(name), "guest%d", i);
        assert_int_equal(e2e_host_new_tvm(&hh, e->dir, name, &gs[i].tvm, &gs[i].cred), 0);
        assert_int_equal(
            vtsm_host_tdi_bind_cbor(hh.h, "0000:01:00.0", (uint32_t)i, gs[i].tvm, 0, NULL),
            VTSM_OK);
        assert_int_equal(vtsm_guest_connect(e->sock, "offload-test", &gs[i].conn), VTSM_OK);
    }

    /* every guest signs all its requests, then all are sent before any answer is read */
    static cbor_item_t *env[DEPTH][GUESTS];
    for (int k = 0; k < DEPTH; k++)
        for (int i = 0; i < GUESTS; i++) {
            assert_int_equal(vtsm_guest_build_cbor(gs[i].cred, VTSM_ABI_GOP_INFO, "0000:01:00.0", i,
                                                   NULL, NULL, &env[k][i]),
                             VTSM_OK);
            gs[i].ans[k] = (struct answer){&gs[i], vtsm_guest_last_seq(gs[i].cred)};
        }
    for (int k = 0; k < DEPTH; k++)
        for (int i = 0; i < GUESTS; i++) {
            vtsm_status st =
                vtsm_host_guest_relay_start_cbor(gs[i].conn, env[k][i], on_answer, &gs[i].ans[k]);
            cbor_decref(&env[k][i]);
            assert_int_equal(st, VTSM_OK);
            gs[i].pending++;
        }

    /* meanwhile the host's own requests are answered */
    cbor_item_t *status = NULL;
    assert_int_equal(vtsm_host_status_cbor(hh.h, NULL, &status), VTSM_OK);
    cbor_decref(&status);

    long end = vtsm_now_ms() + 30000;
    for (;;) {
        struct pollfd p[GUESTS];
        unsigned pending = 0;
        for (int i = 0; i < GUESTS; i++) {
            pending += gs[i].pending;
            p[i] = (struct pollfd){.fd = vtsm_host_fd(gs[i].conn), .events = POLLIN};
        }
        if (!pending || vtsm_now_ms() > end)
            break;
        if (poll(p, GUESTS, 1000) > 0)
            for (int i = 0; i < GUESTS; i++)
                if (p[i].revents)
                    assert_int_equal(vtsm_host_dispatch(gs[i].conn), VTSM_OK);
    }
    for (int i = 0; i < GUESTS; i++) {
        if (gs[i].failures)
            fail_msg("%u requests of TVM %u failed; last: %s", gs[i].failures, gs[i].tvm,
                     gs[i].failure);
        assert_int_equal(gs[i].pending, 0);
        assert_int_equal(gs[i].ok, DEPTH);
        assert_int_equal(gs[i].out_of_order, 0);
        vtsm_host_close(gs[i].conn);
        vtsm_guest_close(gs[i].cred);
    }
    e2e_host_close(&hh);
}

struct done {
    vtsm_status st;
    cbor_item_t *res;
    bool finished;
};

static void on_done(void *ctx, vtsm_status st, const cbor_item_t *res)
{
    struct done *d = ctx;
    d->st = st;
    d->res = res ? cbor_incref((cbor_item_t *)res) : NULL;
    d->finished = true;
}

/* A guest's INFO with a nonce and its ACCEPT need the device: checked while another job
 * runs (a connect of another device, waiting for its exchanges), the request's check may
 * go to the crypto worker and the job then takes the device. Each answer carries a token
 * for the guest's own nonce, the accept locks the TDI into RUN, and the other device's
 * connect completes meanwhile. */
static void test_device_requests_while_another_job_runs(void **state)
{
    struct e2e *e = *state;
    static struct e2e_host hh;
    memset(&hh, 0, sizeof(hh));
    struct vtsm_guest *g = NULL;
    uint32_t tvm = 0;
    char s[64];

    int port0 = e2e_devemu(e, NULL), port1 = e2e_devemu(e, NULL);
    assert_true(port0 > 0 && port1 > 0);
    assert_int_equal(e2e_host_open(e, &hh), 0);
    assert_int_equal(e2e_host_add_device(&hh, "0000:01:00.0", port0, 0), 0);
    assert_int_equal(e2e_host_add_device(&hh, "0000:02:00.0", port1, 1), 0);
    assert_int_equal(vtsm_host_device_connect_cbor(hh.h, "0000:01:00.0", NULL, NULL), VTSM_OK);
    assert_int_equal(e2e_host_new_tvm(&hh, e->dir, "g", &tvm, &g), 0);
    assert_int_equal(vtsm_host_tdi_bind_cbor(hh.h, "0000:01:00.0", 1, tvm, 0, NULL), VTSM_OK);

    for (int round = 0; round < 4; round++) {
        /* dev1 connects (a job that waits for its exchanges) while the guest asks */
        uint8_t nonce[32];
        cbor_item_t *env = NULL;
        struct done conn = {0}, info = {0};
        assert_int_equal(vtsm_random(nonce, sizeof(nonce)), VTSM_OK);
        assert_int_equal(
            vtsm_guest_build_cbor(g, VTSM_ABI_GOP_INFO, "0000:01:00.0", 1, nonce, NULL, &env),
            VTSM_OK);
        assert_int_equal(vtsm_host_connect_start_cbor(hh.h, "0000:02:00.0", NULL, on_done, &conn),
                         VTSM_OK);
        assert_int_equal(vtsm_host_guest_relay_start_cbor(hh.h, env, on_done, &info), VTSM_OK);
        cbor_decref(&env);
        long end = vtsm_now_ms() + 30000;
        while (!(conn.finished && info.finished) && vtsm_now_ms() < end) {
            struct pollfd p = {.fd = vtsm_host_fd(hh.h), .events = POLLIN};
            if (poll(&p, 1, 1000) > 0)
                assert_int_equal(vtsm_host_dispatch(hh.h), VTSM_OK);
        }
        assert_true(conn.finished && info.finished);
        assert_int_equal(conn.st, VTSM_OK);
        assert_int_equal(info.st, VTSM_OK);
        const cbor_item_t *tok = e2e_get(info.res, "token");
        assert_non_null(tok);
        cbor_item_t *claims = NULL;
        assert_int_equal(vtsm_guest_verify_token_cbor(cbor_bytestring_handle(tok),
                                                      cbor_bytestring_length(tok), NULL, nonce,
                                                      &claims),
                         VTSM_OK);
        assert_int_equal(e2e_uint(claims, "tvm"), tvm);
        cbor_decref(&claims);
        /* what the ACCEPT below binds */
        assert_int_equal(vtsm_guest_remember_info_cbor(g, info.res), VTSM_OK);
        cbor_decref(&info.res);
        cbor_decref(&conn.res);
        assert_int_equal(vtsm_host_device_reclaim_cbor(hh.h, "0000:02:00.0", NULL), VTSM_OK);
    }

    /* ACCEPT the same way: the TDI goes to RUN */
    cbor_item_t *env = NULL;
    struct done conn = {0}, acc = {0};
    assert_int_equal(
        vtsm_guest_build_cbor(g, VTSM_ABI_GOP_ACCEPT, "0000:01:00.0", 1, NULL, NULL, &env),
        VTSM_OK);
    assert_int_equal(vtsm_host_connect_start_cbor(hh.h, "0000:02:00.0", NULL, on_done, &conn),
                     VTSM_OK);
    assert_int_equal(vtsm_host_guest_relay_start_cbor(hh.h, env, on_done, &acc), VTSM_OK);
    cbor_decref(&env);
    long end = vtsm_now_ms() + 30000;
    while (!(conn.finished && acc.finished) && vtsm_now_ms() < end) {
        struct pollfd p = {.fd = vtsm_host_fd(hh.h), .events = POLLIN};
        if (poll(&p, 1, 1000) > 0)
            assert_int_equal(vtsm_host_dispatch(hh.h), VTSM_OK);
    }
    assert_true(conn.finished && acc.finished);
    assert_int_equal(conn.st, VTSM_OK);
    assert_int_equal(acc.st, VTSM_OK);
    assert_string_equal(e2e_str(acc.res, "state", s, sizeof(s)), "RUN");
    cbor_decref(&acc.res);
    cbor_decref(&conn.res);

    vtsm_guest_close(g);
    e2e_host_close(&hh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_guest_requests_in_flight, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_device_requests_while_another_job_runs,
                                        e2e_fixture_setup, e2e_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
