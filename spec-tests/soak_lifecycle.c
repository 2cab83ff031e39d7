/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Soak (label "soak", not in the default run): real tsmd + several tsm-devemu processes
 * driven through the host shim's fd-driven API, every verb in flight on all devices at
 * once, round after round: connect with IDE, link check, bind, guest accept, IDE refresh,
 * link check, unbind, reclaim. Asserts every verb succeeds, that nothing is left
 * allocated at the end (streams, key slots, TDIs) and that tsmd exits cleanly.
 * Rounds: $VTSM_SOAK_ROUNDS (default 20); bounded to 50 s.
 */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "e2e_host.h"
#include "e2e_util.h"
#include "vtsm_abi.h"
#include "vtsm_guest_cbor.h"
#include "vtsm_proc.h"

#define NDEV 6

struct soak {
    struct e2e_host hh;
    char dev[NDEV][16];
    struct vtsm_guest *g[NDEV];
    uint32_t tvm[NDEV];
    unsigned pending, failures;
    char last_failure[640];
};

struct done_ctx {
    struct soak *s;
    int dev;
    bool want_pass; /* link check: every direction must pass */
};

static void on_done(void *ctx, vtsm_status st, const cbor_item_t *res)
{
    struct done_ctx *d = ctx;
    d->s->pending--;
    if (st != VTSM_OK) {
        d->s->failures++;
        snprintf(d->s->last_failure, sizeof(d->s->last_failure), "%s: %s", d->s->dev[d->dev],
                 vtsm_host_last_error(d->s->hh.h)->detail);
        return;
    }
    if (d->want_pass &&
        !(e2e_bool(res, "streams.0.rp_to_device") && e2e_bool(res, "streams.0.device_to_rp"))) {
        d->s->failures++;
        snprintf(d->s->last_failure, sizeof(d->s->last_failure), "%s: link check failed",
                 d->s->dev[d->dev]);
    }
}

static void pump(struct soak *s)
{
    long end = vtsm_now_ms() + 30000;
    while (s->pending && vtsm_now_ms() < end) {
        struct pollfd p = {.fd = vtsm_host_fd(s->hh.h), .events = POLLIN};
        if (poll(&p, 1, 1000) > 0)
            assert_int_equal(vtsm_host_dispatch(s->hh.h), VTSM_OK);
    }
    assert_int_equal(s->pending, 0);
    if (s->failures)
        fail_msg("%u verbs failed; last: %s", s->failures, s->last_failure);
}

enum step { CONNECT, CHECK, BIND, ACCEPT, REFRESH, UNBIND, RECLAIM };

static void all(struct soak *s, enum step step, uint32_t tdi)
{
    static struct done_ctx ctx[NDEV];
    struct vtsm_host_connect_opts o = {.ide_streams = 1};
    for (int i = 0; i < NDEV; i++) {
        ctx[i] = (struct done_ctx){s, i, step == CHECK};
        vtsm_status st = VTSM_E_INTERNAL;
        cbor_item_t *env = NULL;
        switch (step) {
        case CONNECT:
            st = vtsm_host_connect_start_cbor(s->hh.h, s->dev[i], &o, on_done, &ctx[i]);
            break;
        case CHECK:
            st = vtsm_host_ide_link_check_start_cbor(s->hh.h, s->dev[i], on_done, &ctx[i]);
            break;
        case BIND:
            st = vtsm_host_tdi_bind_start_cbor(s->hh.h, s->dev[i], tdi, s->tvm[i], 0, on_done,
                                               &ctx[i]);
            break;
        case ACCEPT:
            /* the guest's INFO first: its ACCEPT carries what INFO reported */
            assert_int_equal(vtsm_guest_call_cbor(s->g[i], s->hh.h, VTSM_ABI_GOP_INFO, s->dev[i],
                                                  tdi, NULL, NULL, NULL),
                             VTSM_OK);
            assert_int_equal(vtsm_guest_build_cbor(s->g[i], VTSM_ABI_GOP_ACCEPT, s->dev[i], tdi,
                                                   NULL, NULL, &env),
                             VTSM_OK);
            st = vtsm_host_guest_relay_start_cbor(s->hh.h, env, on_done, &ctx[i]);
            cbor_decref(&env);
            break;
        case REFRESH:
            st = vtsm_host_ide_refresh_start_cbor(s->hh.h, s->dev[i], on_done, &ctx[i]);
            break;
        case UNBIND:
            st = vtsm_host_tdi_unbind_start_cbor(s->hh.h, s->dev[i], tdi, on_done, &ctx[i]);
            break;
        case RECLAIM:
            st = vtsm_host_reclaim_start_cbor(s->hh.h, s->dev[i], on_done, &ctx[i]);
            break;
        }
        assert_int_equal(st, VTSM_OK);
        s->pending++;
    }
    pump(s);
}

static void test_soak_lifecycle(void **state)
{
    struct e2e *e = *state;
    static struct soak s;
    memset(&s, 0, sizeof(s));
    const char *env = getenv("VTSM_SOAK_ROUNDS");
    int rounds = env ? atoi(env) : 20;
    assert_int_equal(e2e_host_open(e, &s.hh), 0);
    for (int i = 0; i < NDEV; i++) {
        int port = e2e_devemu(e, NULL);
        assert_true(port > 0);
        snprintf(s.dev[i], sizeof(s.dev[i]), "0000:%02x:00.0", 0x40 + i);
        assert_int_equal(e2e_host_add_device(&s.hh, s.dev[i], port, i % 2), 0);
        char key[128];
        snprintf(key, sizeof(key), "%s/tvm%d.key", e->dir, i);
        assert_int_equal(vtsm_guest_keygen(key), VTSM_OK);
        assert_int_equal(vtsm_guest_open(key, 0, &s.g[i]), VTSM_OK);
        uint8_t pub[VTSM_GUEST_PUBKEY_SIZE];
        vtsm_guest_pubkey(s.g[i], pub);
        cbor_item_t *res = NULL;
        assert_int_equal(vtsm_host_tvm_create_cbor(s.hh.h, s.dev[i], pub, &s.tvm[i], &res),
                         VTSM_OK);
        cbor_decref(&res);
        vtsm_guest_close(s.g[i]);
        assert_int_equal(vtsm_guest_open(key, s.tvm[i], &s.g[i]), VTSM_OK);
    }
    long end = vtsm_now_ms() + 50000;
    int r = 0;
    for (; r < rounds && vtsm_now_ms() < end; r++) {
        uint32_t tdi = (uint32_t)(r % 4);
        all(&s, CONNECT, 0);
        all(&s, CHECK, 0);
        all(&s, BIND, tdi);
        all(&s, ACCEPT, tdi);
        all(&s, REFRESH, 0);
        all(&s, CHECK, 0);
        all(&s, UNBIND, tdi);
        all(&s, RECLAIM, 0);
    }
    print_message("soak: %d rounds x %d devices x 8 verbs\n", r, NDEV);
    assert_true(r >= 1);

    /* nothing left behind */
    cbor_item_t *res = NULL;
    assert_int_equal(vtsm_host_status_cbor(s.hh.h, NULL, &res), VTSM_OK);
    for (int p = 0; p < 2; p++) {
        char path[64];
        snprintf(path, sizeof(path), "root_ports.%d.streams_used", p);
        assert_int_equal(e2e_uint(res, path), 0);
        snprintf(path, sizeof(path), "root_ports.%d.key_slots_used", p);
        assert_int_equal(e2e_uint(res, path), 0);
    }
    for (int i = 0; i < NDEV; i++) {
        char path[64], st[32];
        snprintf(path, sizeof(path), "devices.%d.state", i);
        assert_string_equal(e2e_str(res, path, st, sizeof(st)), "unconnected");
        snprintf(path, sizeof(path), "tvms.%d.bound_tdis", i);
        assert_int_equal(e2e_uint(res, path), 0);
    }
    cbor_decref(&res);
    for (int i = 0; i < NDEV; i++)
        vtsm_guest_close(s.g[i]);
    e2e_host_close(&s.hh);
}

static const char *const soak_platform[] = {"--root-port", "0:4:16", "--root-port", "1:4:16", NULL};

int main(void)
{
    e2e_tsmd_args = soak_platform;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_soak_lifecycle, e2e_fixture_setup,
                                        e2e_fixture_teardown),
    };
    return cmocka_run_group_tests_name("soak", tests, NULL, NULL);
}
