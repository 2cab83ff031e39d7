/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Capture and trace: the DOE objects of a whole lifecycle (connect with IDE, bind, the
 * guest's INFO and ACCEPT, unbind, reclaim) written by the host shim as pcap
 * (LINKTYPE_PCI_DOE), read back by a decoder of this test's own; and tsm-host's --pcap
 * and --trace.
 */
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
#include "vtsm_guest_cbor.h"

#define DEV "0000:06:00.0"

/* ---- a pcap reader of the test's own ---- */

struct rec {
    uint8_t *p;
    uint32_t len;
};

struct capture {
    uint32_t linktype;
    struct rec recs[4096];
    size_t n;
};

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Read a classic little-endian pcap file whole; fails the test on any inconsistency. */
static void read_capture(const char *path, struct capture *c)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t hdr[24];
    assert_int_equal(fread(hdr, 1, sizeof(hdr), f), sizeof(hdr));
    assert_int_equal(le32(hdr), 0xA1B2C3D4u);  /* magic, microseconds */
    assert_int_equal(hdr[4] | hdr[5] << 8, 2); /* version 2.4 */
    assert_int_equal(hdr[6] | hdr[7] << 8, 4);
    c->linktype = le32(hdr + 20);
    uint32_t snaplen = le32(hdr + 16);
    c->n = 0;
    uint8_t rh[16];
    size_t got;
    while ((got = fread(rh, 1, sizeof(rh), f)) == sizeof(rh)) {
        uint32_t incl = le32(rh + 8), orig = le32(rh + 12);
        assert_true(incl <= snaplen);
        assert_int_equal(incl, orig); /* nothing of a DOE object is cut */
        assert_true(c->n < sizeof(c->recs) / sizeof(c->recs[0]));
        c->recs[c->n].p = malloc(incl ? incl : 1);
        assert_non_null(c->recs[c->n].p);
        assert_int_equal(fread(c->recs[c->n].p, 1, incl, f), incl);
        c->recs[c->n].len = incl;
        c->n++;
    }
    assert_int_equal(got, 0); /* no partial record at the end */
    fclose(f);
}

static void free_capture(struct capture *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->recs[i].p);
    c->n = 0;
}

/* Every record one whole DOE object; requests and responses alternate, a clear SPDM
 * response answering its request's code; DOE discovery only before the first SPDM
 * message, which is GET_VERSION at 1.0. Returns the number of secured objects. */
static size_t check_doe_records(const struct capture *c, uint32_t *session)
{
    size_t secured = 0, first_spdm = SIZE_MAX;
    *session = 0;
    assert_int_equal(c->linktype, 292);
    assert_true(c->n >= 2 && c->n % 2 == 0);
    for (size_t i = 0; i < c->n; i++) {
        const uint8_t *p = c->recs[i].p;
        uint32_t len = c->recs[i].len;
        assert_true(len >= 12 && len % 4 == 0);
        assert_int_equal(p[0] | p[1] << 8, 0x0001); /* PCI-SIG */
        uint32_t dw = le32(p + 4) & 0x3FFFFu;
        assert_int_equal((uint32_t)dw * 4u, len); /* the DOE length field says it all */
        assert_true(p[2] <= 2);
        if (p[2] == 0) {
            assert_int_equal(len, 12); /* discovery: one DW each way */
            assert_int_equal(first_spdm, SIZE_MAX);
        } else if (p[2] == 1) {
            if (first_spdm == SIZE_MAX)
                first_spdm = i;
            bool request = (p[9] & 0x80) != 0;
            assert_int_equal(request, i % 2 == 0);
            if (!request && p[9] != 0x7F) /* ERROR answers anything */
                assert_int_equal(p[9] | 0x80, c->recs[i - 1].p[9]);
        } else {
            secured++;
            uint32_t sid = le32(p + 8);
            if (*session == 0)
                *session = sid;
            assert_true(sid != 0);
        }
    }
    /* the first SPDM exchange is GET_VERSION / VERSION, at SPDM 1.0 */
    assert_true(first_spdm != SIZE_MAX && first_spdm % 2 == 0);
    assert_int_equal(c->recs[first_spdm].p[8], 0x10);
    assert_int_equal(c->recs[first_spdm].p[9], 0x84);
    assert_int_equal(c->recs[first_spdm + 1].p[9], 0x04);
    return secured;
}

/* ---- the lifecycle through the host-shim API ---- */

static void test_capture_of_a_lifecycle(void **state)
{
    struct e2e *e = *state;
    struct e2e_host hh;
    int port = e2e_devemu(e, NULL);
    assert_true(port > 0);
    assert_int_equal(e2e_host_open(e, &hh), 0);
    assert_int_equal(e2e_host_add_device(&hh, DEV, port, 0), 0);
    char path[128];
    snprintf(path, sizeof(path), "%s/life.pcap", e->dir);
    assert_int_equal(vtsm_host_set_pcap(hh.h, path), VTSM_OK);

    struct vtsm_host_connect_opts o = {.ide_streams = 1};
    assert_int_equal(vtsm_host_device_connect_cbor(hh.h, DEV, &o, NULL), VTSM_OK);
    uint32_t tvm = 0;
    struct vtsm_guest *g = NULL;
    assert_int_equal(e2e_host_new_tvm(&hh, e->dir, "cap", &tvm, &g), 0);
    assert_int_equal(vtsm_host_tdi_bind_cbor(hh.h, DEV, 0, tvm, 0, NULL), VTSM_OK);
    struct vtsm_guest_decision d;
    assert_int_equal(vtsm_guest_decide(g, hh.h, DEV, 0, NULL, NULL, &d), VTSM_OK);
    assert_int_equal(d.verdict, VTSM_GUEST_ACCEPT);
    vtsm_guest_decision_clear(&d);
    assert_int_equal(vtsm_guest_call_cbor(g, hh.h, VTSM_ABI_GOP_ACCEPT, DEV, 0, NULL, NULL, NULL),
                     VTSM_OK);
    assert_int_equal(vtsm_host_tdi_unbind_cbor(hh.h, DEV, 0, NULL), VTSM_OK);
    assert_int_equal(vtsm_host_device_reclaim_cbor(hh.h, DEV, NULL), VTSM_OK);
    assert_int_equal(vtsm_host_set_pcap(hh.h, NULL), VTSM_OK); /* stop: the file is whole */

    static struct capture c;
    read_capture(path, &c);
    uint32_t session = 0;
    size_t secured = check_doe_records(&c, &session);
    /* in the clear: VCA, digests, certificate, measurements, KEY_EXCHANGE; in the session:
     * FINISH, IDE_KM, TDISP, END_SESSION. The connect alone has a dozen exchanges. */
    assert_true(c.n > 40);
    assert_true(secured > 20);
    assert_true(c.n - secured >= 12);
    /* every secured object belongs to the one session the connect made */
    for (size_t i = 0; i < c.n; i++)
        if (c.recs[i].p[2] == 2)
            assert_int_equal(le32(c.recs[i].p + 8), session);
    /* KEY_EXCHANGE went in the clear, and its answer too */
    bool kex = false;
    for (size_t i = 0; i + 1 < c.n; i++)
        kex |= c.recs[i].p[2] == 1 && c.recs[i].p[9] == 0xE4 && c.recs[i + 1].p[9] == 0x64;
    assert_true(kex);
    free_capture(&c);

    vtsm_guest_close(g);
    e2e_host_close(&hh);
}

/* ---- tsm-host --pcap and --trace ---- */

static void test_cli_pcap_and_trace(void **state)
{
    struct e2e *e = *state;
    static struct e2e_run r;
    char doe[64], path[128], opt[160];
    int port = e2e_devemu(e, NULL);
    assert_true(port > 0);
    snprintf(path, sizeof(path), "%s/cli.pcap", e->dir);
    snprintf(opt, sizeof(opt), "--pcap=%s", path);
    const char *conn[] = {
        "--trace",       opt, "connect", DEV, "--doe", e2e_doe(doe, sizeof(doe), port),
        "--root-port=0", NULL};
    if (e2e_host(e, &r, conn) != 0)
        fail_msg("connect: %s", r.err);
    /* one line per DOE object: time, direction, device, size, the message */
    assert_non_null(strstr(r.err, " tsm-host -> " DEV " 12 bytes SPDM 1.0 GET_VERSION\n"));
    assert_non_null(strstr(r.err, " tsm-host <- " DEV " "));
    assert_non_null(strstr(r.err, "SPDM 1.0 VERSION\n"));
    assert_non_null(strstr(r.err, "KEY_EXCHANGE\n"));
    assert_non_null(strstr(r.err, "secured SPDM session 0x"));
    static struct capture c;
    read_capture(path, &c);
    uint32_t session = 0;
    assert_true(check_doe_records(&c, &session) > 0);
    /* as many trace lines as records */
    size_t lines = 0;
    for (const char *p = r.err; (p = strstr(p, " tsm-host ")) != NULL; p++)
        lines++;
    assert_int_equal(lines, c.n);
    free_capture(&c);
    /* the device's own capture (tsm-devemu --pcap) holds the very same objects, in order,
     * and its key log the DHE secret spdm_dump needs to decrypt the session */
    char dpath[128], kpath[128], dopt[160], kopt[160];
    snprintf(dpath, sizeof(dpath), "%s/dev.pcap", e->dir);
    snprintf(kpath, sizeof(kpath), "%s/dev.keys", e->dir);
    snprintf(dopt, sizeof(dopt), "--pcap=%s", dpath);
    snprintf(kopt, sizeof(kopt), "--key-log=%s", kpath);
    const char *dargs[] = {dopt, kopt, "--trace", NULL};
    int dport = e2e_devemu(e, dargs);
    assert_true(dport > 0);
    snprintf(path, sizeof(path), "%s/host2.pcap", e->dir);
    snprintf(opt, sizeof(opt), "--pcap=%s", path);
    const char *conn2[] = {
        opt, "connect", "0000:07:00.0", "--doe", e2e_doe(doe, sizeof(doe), dport), NULL};
    if (e2e_host(e, &r, conn2) != 0)
        fail_msg("connect: %s", r.err);
    static struct capture hc, dc;
    read_capture(path, &hc);
    read_capture(dpath, &dc);
    assert_int_equal(hc.n, dc.n);
    for (size_t i = 0; i < hc.n; i++) {
        assert_int_equal(hc.recs[i].len, dc.recs[i].len);
        assert_memory_equal(hc.recs[i].p, dc.recs[i].p, hc.recs[i].len);
    }
    free_capture(&hc);
    free_capture(&dc);
    static char keys[16384], dlog[65536];
    FILE *kf = fopen(kpath, "r");
    assert_non_null(kf);
    keys[fread(keys, 1, sizeof(keys) - 1, kf)] = '\0';
    fclose(kf);
    assert_non_null(strstr(keys, "secret spdm-dhe-secret "));
    assert_int_equal(e2e_devemu_log(e, e->ndevemu, dlog, sizeof(dlog)), 0);
    assert_non_null(strstr(dlog, " tsm-devemu <- 12 bytes SPDM 1.0 GET_VERSION\n"));
    assert_non_null(strstr(dlog, " tsm-devemu -> "));
    /* a capture file that cannot be made: the verb is not run, a usage error */
    const char *bad[] = {"--pcap", "/nonexistent/dir/x.pcap", "status", NULL};
    assert_int_equal(e2e_host(e, &r, bad), 2);
    assert_non_null(strstr(r.err, "/nonexistent/dir/x.pcap"));
}

/* tsmd --trace: the DOE objects tsmd exchanges, one line each, in its log; --syslog sends
 * the log lines elsewhere (stderr keeps only the trace) */
static void read_tsmd_log(const struct e2e *e, char *buf, size_t cap)
{
    char p[160];
    snprintf(p, sizeof(p), "%s/tsmd.log", e->dir);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    buf[fread(buf, 1, cap - 1, f)] = '\0';
    fclose(f);
}

/* Every "key HEX" of the device's key log is absent from text. */
static void assert_no_keys(const char *keylog, const char *text)
{
    int keys = 0;
    for (const char *k = strstr(keylog, " key "); k; k = strstr(k + 1, " key ")) {
        char hex[65];
        if (sscanf(k, " key %64[0-9a-f]", hex) != 1)
            continue;
        keys++;
        if (strstr(text, hex))
            fail_msg("IDE key %s reached a trace", hex);
    }
    assert_true(keys >= 4); /* KEY_PROG keys of one stream: 2 sub-streams x 2 directions+ */
}

static void test_tsmd_trace(void **state)
{
    (void)state;
    static struct e2e e;
    static struct e2e_run r;
    static char log[262144], dlog[262144], keys[65536];
    char doe[64], keyfile[200];
    const char *args[] = {"--trace", "--verbose", "--syslog", NULL};
    assert_int_equal(e2e_setup(&e, args), 0);
    snprintf(keyfile, sizeof(keyfile), "%s/keys.log", e.dir);
    const char *dargs[] = {"--trace", "--key-log", keyfile, NULL};
    int port = e2e_devemu(&e, dargs);
    assert_true(port > 0);
    const char *conn[] = {
        "connect", "0000:08:00.0", "--doe", e2e_doe(doe, sizeof(doe), port), "--ide-streams", "1",
        NULL};
    if (e2e_host(&e, &r, conn) != 0)
        fail_msg("connect: %s", r.err);
    struct e2e_host hh;
    uint32_t tvm = 0;
    char tvms[16];
    assert_int_equal(e2e_host_open(&e, &hh), 0);
    assert_int_equal(e2e_host_new_tvm(&hh, e.dir, "tr", &tvm, NULL), 0);
    e2e_host_close(&hh);
    snprintf(tvms, sizeof(tvms), "%u", tvm);
    const char *bind[] = {"bind", "0000:08:00.0", "0", tvms, "--doe", doe, NULL};
    if (e2e_host(&e, &r, bind) != 0)
        fail_msg("bind: %s", r.err);
    read_tsmd_log(&e, log, sizeof(log));
    assert_non_null(strstr(log, " tsmd -> 0000:08:00.0 12 bytes SPDM 1.0 GET_VERSION\n"));
    assert_non_null(strstr(log, " tsmd <- 0000:08:00.0 "));
    assert_non_null(strstr(log, "secured SPDM session 0x"));
    /* inside the session: the messages by name, both ways, IDE_KM and TDISP */
    assert_non_null(strstr(log, " tsmd -> 0000:08:00.0 "));
    E2E_HAS(log, "in session 0x");
    E2E_HAS(log, ": SPDM 1.3 FINISH\n");
    E2E_HAS(log, ": SPDM 1.3 VENDOR_DEFINED_REQUEST IDE_KM KEY_PROG\n");
    E2E_HAS(log, ": SPDM 1.3 VENDOR_DEFINED_RESPONSE IDE_KM KP_ACK\n");
    E2E_HAS(log, ": SPDM 1.3 VENDOR_DEFINED_REQUEST TDISP LOCK_INTERFACE_REQ\n");
    E2E_HAS(log, ": SPDM 1.3 VENDOR_DEFINED_RESPONSE TDISP LOCK_INTERFACE_RSP\n");
    assert_null(strstr(log, "tsmd: info:")); /* --verbose lines went to syslog */
    /* the device's end shows the same messages */
    assert_int_equal(e2e_devemu_log(&e, 1, dlog, sizeof(dlog)), 0);
    E2E_HAS(dlog, " tsm-devemu <- ");
    E2E_HAS(dlog, "in session 0x");
    E2E_HAS(dlog, ": SPDM 1.3 VENDOR_DEFINED_REQUEST IDE_KM KEY_PROG\n");
    E2E_HAS(dlog, ": SPDM 1.3 VENDOR_DEFINED_RESPONSE TDISP LOCK_INTERFACE_RSP\n");
    /* names only: no key the device received appears in either trace */
    FILE *f = fopen(keyfile, "r");
    assert_non_null(f);
    keys[fread(keys, 1, sizeof(keys) - 1, f)] = '\0';
    fclose(f);
    assert_no_keys(keys, log);
    assert_no_keys(keys, dlog);
    assert_int_equal(e2e_teardown(&e), 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_capture_of_a_lifecycle, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_cli_pcap_and_trace, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test(test_tsmd_trace),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
