/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * End to end, IDE: real tsmd + tsm-devemu; the TSM programs both ends of every selective
 * stream through IDE_KM inside the SPDM session and owns the root-port side itself.
 *  - connect with IDE -> the link check passes both ways; refresh -> it passes with the
 *    new key set and a frame under the old keys no longer verifies at the device;
 *    reclaim -> streams freed and a new device takes them;
 *  - nothing the host receives (ABI frames, DOE objects, link frames) holds a key or IV:
 *    the device logs every key it accepted (--key-log) and none appears in the capture;
 *  - a root port of 2 streams refuses a third device with the named error while the
 *    first two keep working;
 *  - device IDE_KM faults: each a clear error, partial programming rolled back, stream
 *    freed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "e2e_host.h"
#include "e2e_util.h"
#include "vtsm_abi.h"
#include "vtsm_link_frame.h"
#include "vtsm_sock.h"

static int cli(struct e2e *e, struct e2e_run *r, const char *verb, const char *dev, int port,
               const char *a1, const char *a2)
{
    char doe[64];
    const char *argv[] = {"--json", verb,           dev, "--doe", e2e_doe(doe, sizeof(doe), port),
                          a1,       a1 ? a2 : NULL, NULL};
    return e2e_host(e, r, argv);
}

static void assert_streams_used(struct e2e *e, unsigned rp, unsigned used)
{
    static struct e2e_run r;
    const char *argv[] = {"--json", "status", NULL};
    assert_int_equal(e2e_host(e, &r, argv), 0);
    char want[96];
    snprintf(want, sizeof(want), "{\"id\":%u,\"streams\":", rp);
    char *at = strstr(r.out, want);
    if (!at)
        fail_msg("root port %u missing in %s", rp, r.out);
    snprintf(want, sizeof(want), "\"streams_used\":%u,", used);
    char *su = strstr(at, "\"streams_used\":");
    if (!su || strncmp(su, want, strlen(want)) != 0)
        fail_msg("root port %u: expected %s in %s", rp, want, at);
}

/* ---- failure cases first ---- */

static void fault_case(void **state, const char *fault, const char *want_name,
                       const char *want_detail)
{
    struct e2e *e = *state;
    static struct e2e_run r;
    const char *args[] = {"--fault", fault, NULL};
    int bad = e2e_devemu(e, args);
    assert_true(bad > 0);
    cli(e, &r, "connect", "bad0", bad, "--ide-streams", "1");
    if (r.status != 1)
        fail_msg("fault %s: expected exit 1, got %d: %s", fault, r.status, r.err);
    E2E_HAS(r.err, want_name);
    E2E_HAS(r.err, want_detail); /* a device's fault: no rule names it, the detail says which */
    if (strstr(r.err, "[rule "))
        fail_msg("fault %s: a device's fault names a TSM rule: %s", fault, r.err);
    /* rolled back: the stream is free again and the device is unconnected */
    assert_streams_used(e, 0, 0);
    /* a good device takes the stream */
    int good = e2e_devemu(e, NULL);
    assert_true(good > 0);
    if (cli(e, &r, "connect", "good0", good, "--ide-streams", "1") != 0)
        fail_msg("good device: %s", r.err);
    E2E_HAS(r.out, "\"stream_id\":0");
    assert_streams_used(e, 0, 1);
    assert_int_equal(cli(e, &r, "ide-check", "good0", good, NULL, NULL), 0);
    E2E_HAS(r.out, "\"rp_to_device\":true");
    E2E_HAS(r.out, "\"device_to_rp\":true");
}

static void test_fault_keyprog_nak(void **s)
{
    fault_case(s, "idekm-nak-keyprog", "peer_nak", "KP_ACK");
}
static void test_fault_wrong_stream(void **s)
{
    fault_case(s, "idekm-wrong-stream", "peer_malformed", "stream_id");
}
static void test_fault_wrong_keyset(void **s)
{
    fault_case(s, "idekm-wrong-keyset", "peer_malformed", "key_sub_stream");
}
static void test_fault_wrong_substream(void **s)
{
    fault_case(s, "idekm-wrong-substream", "peer_malformed", "key_sub_stream");
}
static void test_fault_no_go_ack(void **s)
{
    /* the device never answers: the host reports it could not complete the exchange */
    fault_case(s, "idekm-no-go-ack", "doe_host", "K_SET_GO");
}
static void test_fault_replayed_ack(void **s)
{
    fault_case(s, "idekm-replay-ack", "peer_malformed", "KP_ACK");
}

static const char *const two_stream_port[] = {"--root-port", "0:2", NULL};

static void test_exhaustion_third_device_refused(void **state)
{
    struct e2e *e = *state;
    static struct e2e_run r;
    int pa = e2e_devemu(e, NULL), pb = e2e_devemu(e, NULL), pc = e2e_devemu(e, NULL);
    assert_true(pa > 0 && pb > 0 && pc > 0);
    if (cli(e, &r, "connect", "devA", pa, "--ide-streams", "1") != 0)
        fail_msg("devA: %s", r.err);
    if (cli(e, &r, "connect", "devB", pb, "--ide-streams", "1") != 0)
        fail_msg("devB: %s", r.err);
    assert_int_equal(cli(e, &r, "connect", "devC", pc, "--ide-streams", "1"), 1);
    E2E_HAS(r.err, "failed: no_stream (policy): ");
    E2E_HAS(r.err, " [rule IDE.1]\n");
    /* nothing else changed: C is unconnected, A and B keep working */
    const char *st[] = {"--json", "status", "devC", NULL};
    assert_int_equal(e2e_host(e, &r, st), 0);
    E2E_HAS(r.out, "\"state\":\"unconnected\"");
    assert_streams_used(e, 0, 2);
    assert_int_equal(cli(e, &r, "ide-check", "devA", pa, NULL, NULL), 0);
    assert_int_equal(cli(e, &r, "ide-check", "devB", pb, NULL, NULL), 0);
    /* C connects without IDE (the session itself needs no stream) */
    if (cli(e, &r, "connect", "devC", pc, NULL, NULL) != 0)
        fail_msg("devC without IDE: %s", r.err);
    /* reclaim A: its stream is freed and C can take it */
    assert_int_equal(cli(e, &r, "reclaim", "devA", pa, NULL, NULL), 0);
    assert_streams_used(e, 0, 1);
    assert_int_equal(cli(e, &r, "reclaim", "devC", pc, NULL, NULL), 0);
    if (cli(e, &r, "connect", "devC", pc, "--ide-streams", "1") != 0)
        fail_msg("devC after A was reclaimed: %s", r.err);
    assert_int_equal(cli(e, &r, "ide-check", "devC", pc, NULL, NULL), 0);
}

/* The device's key log: every IDE key (hex, AES byte order) and IFV it accepted, and every
 * other secret it holds (SPDM session secrets and keys, TDISP start nonces). */
struct keylog {
    uint8_t keys[64][32];
    uint64_t ifvs[64];
    int n;
    uint8_t secrets[256][64];
    size_t secret_len[256];
    int nsecrets;
};

static void read_keylog(const char *path, struct keylog *kl)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[256];
    kl->n = kl->nsecrets = 0;
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "secret ", 7) == 0) {
            const char *hex = strrchr(line, ' ') + 1;
            assert_true(kl->nsecrets < 256);
            long n = vtsm_unhex(kl->secrets[kl->nsecrets], 64, hex);
            assert_true(n >= 12);
            kl->secret_len[kl->nsecrets++] = (size_t)n;
            continue;
        }
        char *k = strstr(line, " key "), *v = strstr(line, " ifv ");
        assert_non_null(k);
        assert_non_null(v);
        assert_true(kl->n < 64);
        char hex[65];
        memcpy(hex, k + 5, 64);
        hex[64] = '\0';
        assert_int_equal(vtsm_unhex(kl->keys[kl->n], 32, hex), 32);
        kl->ifvs[kl->n] = strtoull(v + 5, NULL, 16);
        kl->n++;
    }
    fclose(f);
}

static void assert_no_key_material(const struct e2e_host *hh, const struct keylog *kl)
{
    for (int i = 0; i < kl->n; i++) {
        uint8_t wire[32], le[8], be[8];
        /* the key as AES bytes, and as IDE_KM carries it (DW7 first, each DW byte-swapped) */
        for (int dw = 0; dw < 8; dw++)
            for (int b = 0; b < 4; b++)
                wire[dw * 4 + b] = kl->keys[i][(7 - dw) * 4 + (3 - b)];
        for (int b = 0; b < 8; b++) {
            le[b] = (uint8_t)(kl->ifvs[i] >> (8 * b));
            be[7 - b] = le[b];
        }
        if (e2e_host_saw(hh, kl->keys[i], 32) || e2e_host_saw(hh, wire, 32))
            fail_msg("key %d reached the host", i);
        if (kl->ifvs[i] && (e2e_host_saw(hh, le, 8) || e2e_host_saw(hh, be, 8)))
            fail_msg("IFV %d reached the host", i);
    }
    for (int i = 0; i < kl->nsecrets; i++)
        if (e2e_host_saw(hh, kl->secrets[i], kl->secret_len[i]))
            fail_msg("secret %d (%zu bytes) reached the host", i, kl->secret_len[i]);
}

static void test_connect_check_refresh_reclaim_no_key_leak(void **state)
{
    struct e2e *e = *state;
    char keylog[128], s[32];
    snprintf(keylog, sizeof(keylog), "%s/keys.log", e->dir);
    const char *args[] = {"--key-log", keylog, NULL};
    int port = e2e_devemu(e, args);
    assert_true(port > 0);
    struct e2e_host hh;
    assert_int_equal(e2e_host_open(e, &hh), 0);
    assert_int_equal(e2e_host_add_device(&hh, "ide0", port, 0), 0);

    struct vtsm_host_connect_opts o = {.ide_streams = 2};
    cbor_item_t *res = NULL;
    if (vtsm_host_device_connect_cbor(hh.h, "ide0", &o, &res) != VTSM_OK)
        fail_msg("connect: %s", vtsm_host_last_error(hh.h)->detail);
    assert_string_equal(e2e_str(res, "ide.streams.0.state", s, sizeof(s)), "active");
    assert_int_equal(e2e_uint(res, "ide.streams.1.stream_id"), 1);
    cbor_decref(&res);

    /* link check: both directions of both streams, key set 0 */
    assert_int_equal(vtsm_host_ide_link_check_cbor(hh.h, "ide0", &res), VTSM_OK);
    for (int i = 0; i < 2; i++) {
        char p[64];
        snprintf(p, sizeof(p), "streams.%d.rp_to_device", i);
        assert_true(e2e_bool(res, p));
        snprintf(p, sizeof(p), "streams.%d.device_to_rp", i);
        assert_true(e2e_bool(res, p));
        snprintf(p, sizeof(p), "streams.%d.key_set", i);
        assert_int_equal(e2e_uint(res, p), 0);
    }
    cbor_decref(&res);
    struct vtsm_buf old = {0};
    assert_int_equal(vtsm_buf_set(&old, hh.last_link_req.data, hh.last_link_req.len), VTSM_OK);
    struct vtsm_doe_tcp *old_tcp = hh.link_tcp;

    /* refresh: the other key set goes live, the old one is stopped and wiped */
    assert_int_equal(vtsm_host_ide_refresh_cbor(hh.h, "ide0", &res), VTSM_OK);
    assert_int_equal(e2e_uint(res, "ide.streams.0.key_set"), 1);
    assert_int_equal(e2e_uint(res, "ide.streams.0.refreshes"), 1);
    cbor_decref(&res);
    assert_int_equal(vtsm_host_ide_link_check_cbor(hh.h, "ide0", &res), VTSM_OK);
    assert_true(e2e_bool(res, "streams.0.rp_to_device"));
    assert_true(e2e_bool(res, "streams.0.device_to_rp"));
    assert_int_equal(e2e_uint(res, "streams.0.key_set"), 1);
    cbor_decref(&res);

    /* the old keys no longer verify: the device refuses a frame sealed under set 0 */
    uint8_t rsp[4096];
    size_t rsp_len = sizeof(rsp);
    assert_int_equal(vtsm_doe_tcp_link_fn(old_tcp, old.data, old.len, rsp, &rsp_len), 0);
    struct vtsm_link_frame f;
    assert_int_equal(vtsm_link_frame_decode(rsp, rsp_len, &f), VTSM_OK);
    assert_int_equal(f.kind, VTSM_LINK_KIND_FAILURE);
    vtsm_buf_free(&old);

    /* the SPDM session rolls its keys; a TDI is locked (its START nonce is a secret too) */
    assert_int_equal(vtsm_host_spdm_key_update_cbor(hh.h, "ide0", true, &res), VTSM_OK);
    cbor_decref(&res);
    static const uint8_t guest_key[65] = {
        0x04, 0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6, 0xe5,
        0x63, 0xa4, 0x40, 0xf2, 0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0, 0xf4,
        0xa1, 0x39, 0x45, 0xd8, 0x98, 0xc2, 0x96, 0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a,
        0x7f, 0x9b, 0x8e, 0xe7, 0xeb, 0x4a, 0x7c, 0x0f, 0x9e, 0x16, 0x2b, 0xce, 0x33,
        0x57, 0x6b, 0x31, 0x5e, 0xce, 0xcb, 0xb6, 0x40, 0x68, 0x37, 0xbf, 0x51, 0xf5};
    uint32_t tvm = 0;
    assert_int_equal(vtsm_host_tvm_create_cbor(hh.h, "leak", guest_key, &tvm, &res), VTSM_OK);
    cbor_decref(&res);
    assert_int_equal(vtsm_host_tdi_bind_cbor(hh.h, "ide0", 0, tvm, 0, &res), VTSM_OK);
    cbor_decref(&res);

    /* nothing the host saw holds a key, an IFV or any other secret of the device */
    struct keylog kl;
    read_keylog(keylog, &kl);
    assert_int_equal(kl.n, 2 * 2 * 6);      /* 2 streams x 2 key sets x 6 sub-streams/directions */
    assert_true(kl.nsecrets >= 2 * 11 + 1); /* handshake + data key schedules, a TDISP nonce */
    /* the capture is real: it holds what the host did see (a DOE object of every exchange,
     * the certificate chain's subject, the device name) */
    assert_true(hh.capture.len > 20000);
    assert_true(e2e_host_saw(&hh, (const uint8_t *)"vtsm emulated device", 20));
    assert_true(e2e_host_saw(&hh, (const uint8_t *)"ide0", 4));
    assert_no_key_material(&hh, &kl);
    assert_int_equal(vtsm_host_tdi_unbind_cbor(hh.h, "ide0", 0, &res), VTSM_OK);
    cbor_decref(&res);

    /* reclaim frees both streams; a new device takes them */
    assert_int_equal(vtsm_host_device_reclaim_cbor(hh.h, "ide0", &res), VTSM_OK);
    cbor_decref(&res);
    assert_int_equal(vtsm_host_status_cbor(hh.h, NULL, &res), VTSM_OK);
    assert_int_equal(e2e_uint(res, "root_ports.0.streams_used"), 0);
    assert_int_equal(e2e_uint(res, "root_ports.0.key_slots_used"), 0);
    cbor_decref(&res);
    int port2 = e2e_devemu(e, NULL);
    assert_true(port2 > 0);
    assert_int_equal(e2e_host_add_device(&hh, "ide1", port2, 0), 0);
    o.ide_streams = 2;
    if (vtsm_host_device_connect_cbor(hh.h, "ide1", &o, &res) != VTSM_OK)
        fail_msg("new device: %s", vtsm_host_last_error(hh.h)->detail);
    assert_int_equal(e2e_uint(res, "ide.streams.0.stream_id"), 0);
    cbor_decref(&res);
    e2e_host_close(&hh);
}

static void test_ide_only_device(void **state)
{
    struct e2e *e = *state;
    static struct e2e_run r;
    const char *args[] = {"--no-tdisp", "--verbose", NULL};
    int port = e2e_devemu(e, args);
    assert_true(port > 0);
    /* a TEE-IO connect needs TDISP; failing after the session is up, the TSM ends the
     * session with END_SESSION before it gives up (the device logs the end) */
    assert_int_equal(cli(e, &r, "connect", "ideonly", port, "--ide-streams", "1"), 1);
    E2E_HAS(r.err, "peer_caps");
    E2E_HAS(r.err, "not TEE-IO");
    static char log[65536];
    assert_int_equal(e2e_devemu_log(e, e->ndevemu, log, sizeof(log)), 0);
    E2E_HAS(log, "established");
    E2E_HAS(log, " ended");
    assert_streams_used(e, 0, 0);
    /* IDE does not require TDISP */
    const char *argv[] = {"--json",        "connect", "ideonly",    "--doe", NULL,
                          "--ide-streams", "1",       "--ide-only", NULL};
    char doe[64];
    argv[4] = e2e_doe(doe, sizeof(doe), port);
    if (e2e_host(e, &r, argv) != 0)
        fail_msg("ide-only connect: %s", r.err);
    assert_int_equal(cli(e, &r, "ide-check", "ideonly", port, NULL, NULL), 0);
    /* and its TDIs cannot be bound */
    const char *tvm[] = {"tvm-create", "--guest-key",
                         "04"
                         "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
                         "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5",
                         NULL};
    if (e2e_host(e, &r, tvm) != 0)
        fail_msg("tvm-create: %s", r.err);
    const char *bind[] = {"bind", "ideonly", "0", "1", "--doe", doe, NULL};
    assert_int_equal(e2e_host(e, &r, bind), 1);
    E2E_HAS(r.err, "failed: state (core): ");
    E2E_HAS(r.err, " [rule TDI.9]\n");
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *at = strstr(hay, needle); at; at = strstr(at + 1, needle))
        n++;
    return n;
}

/*
 * A host that vanishes after the device took some K_SET_GO: the device keeps live keys
 * (they are device state). The next connect finds them (the TSM remembers what it could
 * not stop, and QUERY_RESP shows the stream enabled), stops them with K_SET_STOP before
 * its own KEY_PROG (rule IDE.4) and succeeds at the first attempt.
 */
static void test_host_vanishes_after_k_set_go(void **state)
{
    struct e2e *e = *state;
    static struct e2e_run r;
    static char log[262144];
    const char *args[] = {"--verbose", NULL};
    int port = e2e_devemu(e, args);
    assert_true(port > 0);
    int devn = e->ndevemu;

    int fd = e2e_abi_connect(e, true);
    assert_true(fd >= 0);
    cbor_item_t *m = vtsm_abi_request_msg(VTSM_ABI_OP_DEVICE_ADD, 10);
    vtsm_abi_put_tstr(m, "dev", "gone0");
    assert_int_equal(e2e_abi_send(fd, m), 0);
    cbor_item_t *res = e2e_abi_recv(fd);
    assert_non_null(res);
    assert_int_equal(e2e_op(res), VTSM_ABI_OP_RESULT);
    cbor_decref(&res);
    m = vtsm_abi_request_msg(VTSM_ABI_OP_DEVICE_CONNECT, 11);
    vtsm_abi_put_tstr(m, "dev", "gone0");
    vtsm_abi_put_uint(m, "ide_streams", 1);
    assert_int_equal(e2e_abi_send(fd, m), 0);

    char doe[64];
    snprintf(doe, sizeof(doe), "127.0.0.1:%d", port);
    int dev_fd = -1;
    assert_int_equal(vtsm_tcp_connect(doe, &dev_fd), VTSM_OK);
    struct vtsm_buf rsp = {0};
    int gos = 0;
    /* carry exchanges until the device made three key sets live (the RX sub-streams) */
    for (int i = 0; i < 200 && gos < 3; i++) {
        cbor_item_t *pending = e2e_abi_recv(fd);
        assert_non_null(pending);
        assert_int_equal(e2e_op(pending), VTSM_ABI_OP_DOE_PENDING);
        const uint8_t *obj;
        size_t len;
        uint64_t seq;
        uint32_t cmd, tt;
        assert_int_equal(vtsm_abi_get_uint(pending, "seq", &seq), VTSM_OK);
        assert_int_equal(vtsm_abi_get_bytes(pending, "object", &obj, &len), VTSM_OK);
        assert_int_equal(
            vtsm_sock_send(dev_fd, VTSM_SOCK_CMD_NORMAL, VTSM_SOCK_TRANSPORT_PCI_DOE, obj, len),
            VTSM_OK);
        assert_int_equal(vtsm_sock_recv(dev_fd, &cmd, &tt, &rsp, 1 << 20, 5000), VTSM_OK);
        cbor_decref(&pending);
        assert_int_equal(
            e2e_abi_send(fd, vtsm_abi_doe_response_msg(11, "gone0", seq, rsp.data, rsp.len, NULL)),
            0);
        assert_int_equal(e2e_devemu_log(e, devn, log, sizeof(log)), 0);
        gos = count_of(log, "K_SET_GO: stream 0 K0");
    }
    assert_int_equal(gos, 3);
    vtsm_buf_free(&rsp);
    close(fd);
    close(dev_fd);

    /* the next connect succeeds at once, and the link works with its keys */
    for (int i = 0; i < 200; i++) {
        const char *st[] = {"--json", "status", "gone0", NULL};
        e2e_host(e, &r, st);
        if (r.status == 0 && strstr(r.out, "\"state\":\"unconnected\""))
            break;
        usleep(20000);
    }
    if (cli(e, &r, "connect", "gone0", port, "--ide-streams", "1") != 0)
        fail_msg("connect after the host vanished: %s", r.err);
    /* the three RX key sets made live, and whatever KEY_PROG reached the device */
    const char *ss = strstr(r.out, "\"stale_stopped\":");
    if (!ss || atoi(ss + strlen("\"stale_stopped\":")) < 3)
        fail_msg("expected stale_stopped >= 3 in %s", r.out);
    assert_int_equal(cli(e, &r, "ide-check", "gone0", port, NULL, NULL), 0);
    E2E_HAS(r.out, "\"rp_to_device\":true");
    E2E_HAS(r.out, "\"device_to_rp\":true");
    /* the device saw the stale key sets stopped before the new KEY_PROG */
    assert_int_equal(e2e_devemu_log(e, devn, log, sizeof(log)), 0);
    const char *stop = strstr(log, "K_SET_STOP: stream 0 K0 PR RX");
    assert_non_null(stop);
    assert_true(count_of(stop, "KEY_PROG: stream 0 K0 PR RX programmed") == 1);
    /* tsmd logs what it stopped, under the rule */
    char path[128];
    snprintf(path, sizeof(path), "%s/tsmd.log", e->dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(log, 1, sizeof(log) - 1, f);
    log[n] = '\0';
    fclose(f);
    E2E_HAS(log, "key set left live by an earlier connect; K_SET_STOP before programming (rule "
                 "IDE.4)");
}

static int connect_args(struct e2e *e, struct e2e_run *r, const char *dev, int port,
                        const char *const *extra)
{
    char doe[64];
    const char *argv[16] = {"--json", "connect", dev, "--doe", e2e_doe(doe, sizeof(doe), port)};
    int n = 5;
    for (int i = 0; extra && extra[i] && n < 15; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    return e2e_host(e, r, argv);
}

/* QUERY_RESP's register blocks are what the TSM goes by: the device's selective streams
 * bound the request (IDE.8), and its Link IDE TCs, address association blocks and
 * TEE-Limited support are reported as the device declared them. */
static void test_query_resp_blocks_used(void **state)
{
    struct e2e *e = *state;
    static struct e2e_run r;
    const char *args[] = {"--ide-streams",    "2", "--ide-link-tcs",    "2",
                          "--ide-addr-assoc", "3", "--ide-tee-limited", NULL};
    int port = e2e_devemu(e, args);
    assert_true(port > 0);
    const char *three[] = {"--ide-streams", "3", NULL};
    assert_int_equal(connect_args(e, &r, "blk0", port, three), 1);
    E2E_HAS(r.err, "peer_caps");
    E2E_HAS(r.err, "supports 2 selective IDE streams, 3 requested");
    E2E_HAS(r.err, " [rule IDE.8]\n");
    assert_streams_used(e, 0, 0);
    const char *two[] = {"--ide-streams", "2", NULL};
    if (connect_args(e, &r, "blk0", port, two) != 0)
        fail_msg("connect: %s", r.err);
    E2E_HAS(r.out, "\"link_tcs\":2");
    E2E_HAS(r.out, "\"selective_streams\":2");
    E2E_HAS(r.out, "\"addr_assoc\":3");
    E2E_HAS(r.out, "\"lenient\":false");
    /* one stream per traffic class, both TEE-limited (a TEE-IO connect, device supports
     * it), and the device's capability says so */
    E2E_HAS(r.out, "\"tc\":0");
    E2E_HAS(r.out, "\"tc\":1");
    assert_int_equal(count_of(r.out, "\"tee_limited\":true"), 3);
    /* IDE Capability: link | selective | IDE_KM | (2-1) TCs << 13 | (2-1) streams << 16 |
     * TEE-limited */
    char want[64];
    snprintf(want, sizeof(want), "\"ide_cap\":%u",
             0x1u | 0x2u | 0x40u | (1u << 13) | (1u << 16) | (1u << 24));
    E2E_HAS(r.out, want);
    assert_int_equal(cli(e, &r, "ide-check", "blk0", port, NULL, NULL), 0);
    E2E_HAS(r.out, "\"device_to_rp\":true");
}

/* The DMTF sample responder's QUERY_RESP (IDE Capability 0, then 72 zero DWs): refused in
 * strict mode under IDE.5, accepted with ide_lenient (the deviation logged under the same
 * rule), and the streams then work. */
static void test_sample_device_query_shape(void **state)
{
    struct e2e *e = *state;
    static struct e2e_run r;
    const char *args[] = {"--ide-query-shape", "dmtf-sample", NULL};
    int port = e2e_devemu(e, args);
    assert_true(port > 0);
    const char *strict[] = {"--ide-streams", "1", NULL};
    assert_int_equal(connect_args(e, &r, "dmtf0", port, strict), 1);
    E2E_HAS(r.err, "failed: peer_malformed (peer): ");
    E2E_HAS(r.err, "IDE Capability 0x00000000 declares 0 Link and 0 Selective");
    E2E_HAS(r.err, " [rule IDE.5]\n");
    assert_streams_used(e, 0, 0);
    const char *lenient[] = {"--ide-streams", "1", "--ide-lenient", NULL};
    if (connect_args(e, &r, "dmtf0", port, lenient) != 0)
        fail_msg("lenient connect: %s", r.err);
    E2E_HAS(r.out, "\"lenient\":true");
    E2E_HAS(r.out, "\"ide_cap\":0");
    assert_streams_used(e, 0, 1);
    assert_int_equal(cli(e, &r, "ide-check", "dmtf0", port, NULL, NULL), 0);
    E2E_HAS(r.out, "\"rp_to_device\":true");
    E2E_HAS(r.out, "\"device_to_rp\":true");
    static char log[65536];
    char path[128];
    snprintf(path, sizeof(path), "%s/tsmd.log", e->dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(log, 1, sizeof(log) - 1, f);
    log[n] = '\0';
    fclose(f);
    E2E_HAS(log, "ignored under ide_lenient (rule IDE.5)");
}

/* A Link IDE stream next to the selective ones: refused for a device without Link IDE
 * (IDE.11); with it, the link stream's Stream ID is configured in the device's Link IDE
 * Stream Control (link frame kind 6) and keyed like the others; the link check and a
 * refresh cover it. */
static void test_link_ide_stream(void **state)
{
    struct e2e *e = *state;
    static struct e2e_run r;
    const char *nolink[] = {NULL};
    int p0 = e2e_devemu(e, nolink);
    const char *withlink[] = {"--ide-link-tcs", "1", "--verbose", NULL};
    int p1 = e2e_devemu(e, withlink);
    assert_true(p0 > 0 && p1 > 0);
    const char *ask[] = {"--ide-streams", "1", "--ide-link", NULL};
    assert_int_equal(connect_args(e, &r, "nolink", p0, ask), 1);
    E2E_HAS(r.err, "failed: peer_caps (peer): ");
    E2E_HAS(r.err, " [rule IDE.11]\n");
    assert_streams_used(e, 0, 0);
    if (connect_args(e, &r, "link0", p1, ask) != 0)
        fail_msg("connect with a link stream: %s", r.err);
    E2E_HAS(r.out, "\"kind\":\"selective\"");
    E2E_HAS(r.out, "\"kind\":\"link\"");
    assert_streams_used(e, 0, 2);
    assert_int_equal(cli(e, &r, "ide-check", "link0", p1, NULL, NULL), 0);
    E2E_HAS(r.out, "\"stream_id\":1,\"key_set\":0,\"rp_to_device\":true,\"device_to_rp\":true");
    assert_int_equal(cli(e, &r, "ide-refresh", "link0", p1, NULL, NULL), 0);
    assert_int_equal(cli(e, &r, "ide-check", "link0", p1, NULL, NULL), 0);
    E2E_HAS(r.out, "\"stream_id\":1,\"key_set\":1,\"rp_to_device\":true,\"device_to_rp\":true");
    static char log[262144];
    assert_int_equal(e2e_devemu_log(e, e->ndevemu, log, sizeof(log)), 0);
    E2E_HAS(log, "link IDE stream block TC0: Stream ID 1");
    assert_int_equal(cli(e, &r, "reclaim", "link0", p1, NULL, NULL), 0);
    assert_streams_used(e, 0, 0);
}

static const char *const eight_stream_port[] = {"--root-port", "0:8", NULL};
static const char *const verbose_tsmd[] = {"--verbose", NULL};

/* The host names the stream IDs it allocated on the root port; the TSM checks them
 * against the port (IDE.7), the request (IDE.6) and the device (IDE.8), programs exactly
 * those, and STATUS shows them with available_secure_streams. */
static void test_host_allocated_stream_ids(void **state)
{
    struct e2e *e = *state;
    static struct e2e_run r;
    const char *verbose[] = {"--verbose", "--ide-addr-assoc", "1", NULL};
    int pa = e2e_devemu(e, verbose);
    const char *one[] = {"--ide-streams", "1", NULL};
    int pb = e2e_devemu(e, one);
    assert_true(pa > 0 && pb > 0);
    const char *badrange[] = {"--stream-ids", "5,6", "--ide-addr-range", "0x80000000-0x80000fff",
                              NULL};
    assert_int_equal(connect_args(e, &r, "hostA", pa, badrange), 1);
    E2E_HAS(r.err, "failed: abi_arg (abi): ");
    E2E_HAS(r.err, " [rule IDE.9]\n");
    const char *tworanges[] = {"--stream-ids",
                               "5,6",
                               "--ide-addr-range",
                               "0x80000000-0x800fffff",
                               "--ide-addr-range",
                               "0x90000000-0x900fffff",
                               NULL};
    assert_int_equal(connect_args(e, &r, "hostA", pa, tworanges), 1);
    E2E_HAS(r.err, " [rule IDE.10]\n");
    assert_streams_used(e, 0, 0);
    const char *ids56[] = {"--stream-ids", "5,6", "--ide-addr-range", "0x80000000-0x801fffff",
                           NULL};
    if (connect_args(e, &r, "hostA", pa, ids56) != 0)
        fail_msg("connect with stream IDs 5,6: %s", r.err);
    E2E_HAS(r.out, "\"stream_id\":5");
    E2E_HAS(r.out, "\"stream_id\":6");
    E2E_HAS(r.out, "\"kind\":\"selective\"");
    /* RID association on both ends: written to the device's blocks down the link and
     * read back by QUERY inside the session */
    assert_int_equal(count_of(r.out, "\"device_assoc\":true"), 2);
    assert_int_equal(
        count_of(r.out, "\"addr_ranges\":[{\"base\":2147483648,\"limit\":2149580799}]"), 2);
    assert_int_equal(cli(e, &r, "ide-check", "hostA", pa, NULL, NULL), 0);
    if (strstr(r.out, "\"device_to_rp\":false") || strstr(r.out, "\"rp_to_device\":false"))
        fail_msg("link check: %s", r.out);
    assert_streams_used(e, 0, 2);
    const char *st[] = {"--json", "status", NULL};
    assert_int_equal(e2e_host(e, &r, st), 0);
    E2E_HAS(r.out, "\"available_secure_streams\":6");
    /* key refresh moves both host-named streams to key set 1 with no gap: the new set is
     * started before the old one is stopped, and the link check passes on it */
    assert_int_equal(cli(e, &r, "ide-refresh", "hostA", pa, NULL, NULL), 0);
    assert_int_equal(cli(e, &r, "ide-check", "hostA", pa, NULL, NULL), 0);
    E2E_HAS(r.out, "\"stream_id\":5,\"key_set\":1");
    E2E_HAS(r.out, "\"stream_id\":6,\"key_set\":1");
    if (strstr(r.out, "\"device_to_rp\":false") || strstr(r.out, "\"rp_to_device\":false"))
        fail_msg("link check after refresh: %s", r.out);

    const char *taken[] = {"--stream-ids", "6", NULL};
    assert_int_equal(connect_args(e, &r, "hostB", pb, taken), 1);
    E2E_HAS(r.err, "failed: no_stream (policy): ");
    E2E_HAS(r.err, " [rule IDE.7]\n");
    const char *outside[] = {"--stream-ids", "9", NULL};
    assert_int_equal(connect_args(e, &r, "hostB", pb, outside), 1);
    E2E_HAS(r.err, " [rule IDE.7]\n");
    const char *twice[] = {"--stream-ids", "1,1", NULL};
    assert_int_equal(connect_args(e, &r, "hostB", pb, twice), 1);
    E2E_HAS(r.err, " [rule IDE.6]\n");
    const char *mismatch[] = {"--ide-streams", "2", "--stream-ids", "3", NULL};
    assert_int_equal(connect_args(e, &r, "hostB", pb, mismatch), 1);
    E2E_HAS(r.err, " [rule IDE.6]\n");
    const char *toomany[] = {"--stream-ids", "1,2", NULL};
    assert_int_equal(connect_args(e, &r, "hostB", pb, toomany), 1);
    E2E_HAS(r.err, " [rule IDE.8]\n");
    assert_streams_used(e, 0, 2);
    const char *seven[] = {"--stream-ids", "7", NULL};
    if (connect_args(e, &r, "hostB", pb, seven) != 0)
        fail_msg("hostB with stream 7: %s", r.err);
    assert_int_equal(cli(e, &r, "ide-check", "hostB", pb, NULL, NULL), 0);
    E2E_HAS(r.out, "\"stream_id\":7");
    E2E_HAS(r.out, "\"device_to_rp\":true");
    assert_streams_used(e, 0, 3);
    /* the device shows which register block took which Stream ID */
    static char log[262144];
    assert_int_equal(e2e_devemu_log(e, 1, log, sizeof(log)), 0);
    E2E_HAS(log, "selective IDE stream block 0: Stream ID 5 (was 0)");
    E2E_HAS(log, "selective IDE stream block 1: Stream ID 6 (was 1)");
    E2E_HAS(log, "selective IDE stream block 0 (Stream ID 5): RID Association 1 0x00000000, 2 "
                 "0x00000001; 1 address association block(s), the first valid");
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    if (argc > 1 && strcmp(argv[1], "test_exhaustion_third_device_refused") == 0)
        e2e_tsmd_args = two_stream_port;
    if (argc > 1 && strcmp(argv[1], "test_host_allocated_stream_ids") == 0)
        e2e_tsmd_args = eight_stream_port;
    if (argc > 1 && (strcmp(argv[1], "test_sample_device_query_shape") == 0 ||
                     strcmp(argv[1], "test_host_vanishes_after_k_set_go") == 0))
        e2e_tsmd_args = verbose_tsmd;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fault_keyprog_nak, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_fault_wrong_stream, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_fault_wrong_keyset, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_fault_wrong_substream, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_fault_no_go_ack, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_fault_replayed_ack, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_exhaustion_third_device_refused, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_connect_check_refresh_reclaim_no_key_leak,
                                        e2e_fixture_setup, e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_ide_only_device, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_host_vanishes_after_k_set_go, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_query_resp_blocks_used, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_sample_device_query_shape, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_host_allocated_stream_ids, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_link_ide_stream, e2e_fixture_setup,
                                        e2e_fixture_teardown),
    };
    return cmocka_run_group_tests_name("e2e_ide", tests, NULL, NULL);
}
