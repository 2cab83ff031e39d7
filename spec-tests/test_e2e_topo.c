/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * End to end, topology: devices named by PCI address (canonicalised by tsmd, anything
 * else refused with PDEV.30), real tsmd + tsm-devemu through the host shim.
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
#include "vtsm_crypto.h"
#include "vtsm_guest_cbor.h"

/* One raw request {op, id, dev} and its answer. */
static cbor_item_t *ask(int fd, enum vtsm_abi_op op, uint64_t id, const char *dev)
{
    cbor_item_t *m = vtsm_abi_request_msg(op, id);
    assert_non_null(m);
    if (dev)
        assert_int_equal(vtsm_abi_put_tstr(m, VTSM_ABI_K_DEV, dev), VTSM_OK);
    assert_int_equal(e2e_abi_send(fd, m), 0);
    cbor_item_t *r = e2e_abi_recv(fd);
    assert_non_null(r);
    return r;
}

static void expect_refused(int fd, enum vtsm_abi_op op, const char *dev)
{
    char name[32];
    struct vtsm_abi_error err;
    cbor_item_t *r = ask(fd, op, 5, dev);
    assert_int_equal(e2e_op(r), VTSM_ABI_OP_ERROR);
    e2e_err_name(r, name, sizeof(name));
    assert_int_equal(vtsm_abi_parse_error(r, &err), VTSM_OK);
    cbor_decref(&r);
    if (strcmp(name, "abi_arg") != 0 || err.rule != VTSM_RULE_PDEV_30)
        fail_msg("'%s': expected abi_arg PDEV.30, got %s %s (%s)", dev, name, err.rule_id,
                 err.detail);
}

/* Three spellings of one address are one device; STATUS and replies use the canonical
 * one; names that are no PCI address are refused with PDEV.30 and change nothing. */
static void test_names_canonical_and_refused(void **state)
{
    struct e2e *e = *state;
    char s[64];
    int fd = e2e_abi_connect(e, true);
    assert_true(fd >= 0);

    cbor_item_t *r = ask(fd, VTSM_ABI_OP_DEVICE_ADD, 1, "0000:1:00.0");
    assert_int_equal(e2e_op(r), VTSM_ABI_OP_RESULT);
    assert_string_equal(e2e_str(r, "dev", s, sizeof(s)), "0000:01:00.0");
    cbor_decref(&r);
    /* the same device again, spelt otherwise: idempotent, not a second device */
    r = ask(fd, VTSM_ABI_OP_DEVICE_ADD, 2, "1:00.0");
    assert_int_equal(e2e_op(r), VTSM_ABI_OP_RESULT);
    assert_string_equal(e2e_str(r, "dev", s, sizeof(s)), "0000:01:00.0");
    cbor_decref(&r);
    r = ask(fd, VTSM_ABI_OP_DEVICE_ADD, 3, "0000:0A:1f.7");
    assert_int_equal(e2e_op(r), VTSM_ABI_OP_RESULT);
    assert_string_equal(e2e_str(r, "dev", s, sizeof(s)), "0000:0a:1f.7");
    cbor_decref(&r);

    const char *bad[] = {"foo",     "dev0",     "1:20.0",     "1:00.8",   "00000:01:00.0",
                         "1:00.0 ", "100:00.0", "0000:01:00", ":01:00.0", "0000:01:00.0.0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_refused(fd, VTSM_ABI_OP_DEVICE_ADD, bad[i]);
    expect_refused(fd, VTSM_ABI_OP_STATUS, "foo");
    expect_refused(fd, VTSM_ABI_OP_DEVICE_REMOVE, "foo");

    /* STATUS: exactly the two devices, canonical; asked for by another spelling */
    r = ask(fd, VTSM_ABI_OP_STATUS, 6, NULL);
    assert_int_equal(e2e_op(r), VTSM_ABI_OP_RESULT);
    const cbor_item_t *devs = e2e_get(r, "devices");
    assert_non_null(devs);
    assert_int_equal(cbor_array_size(devs), 2);
    cbor_decref(&r);
    r = ask(fd, VTSM_ABI_OP_STATUS, 7, "0:1:0.0");
    assert_int_equal(e2e_op(r), VTSM_ABI_OP_RESULT);
    assert_string_equal(e2e_str(r, "devices.0.dev", s, sizeof(s)), "0000:01:00.0");
    assert_string_equal(e2e_str(r, "devices.0.state", s, sizeof(s)), "unconnected");
    cbor_decref(&r);
    /* removed by a third spelling */
    r = ask(fd, VTSM_ABI_OP_DEVICE_REMOVE, 8, "00:01:00.0");
    assert_int_equal(e2e_op(r), VTSM_ABI_OP_RESULT);
    cbor_decref(&r);
    r = ask(fd, VTSM_ABI_OP_STATUS, 9, "0000:01:00.0");
    assert_int_equal(e2e_op(r), VTSM_ABI_OP_ERROR);
    cbor_decref(&r);
    close(fd);
}

/* The host registers its DOE callback under a short spelling; tsmd's DOE_PENDINGs name
 * the canonical address and still reach it; the guest names the TDI otherwise again. */
static void test_short_name_connects_and_guest_matches(void **state)
{
    struct e2e *e = *state;
    struct e2e_host hh;
    char s[64];
    int port = e2e_devemu(e, NULL);
    assert_true(port > 0);
    assert_int_equal(e2e_host_open(e, &hh), 0);
    assert_int_equal(e2e_host_add_device(&hh, "2:00.0", port, 0), 0);
    struct vtsm_host_connect_opts o = {.ide_streams = 1};
    cbor_item_t *res = NULL;
    if (vtsm_host_device_connect_cbor(hh.h, "2:0.0", &o, &res) != VTSM_OK)
        fail_msg("connect: %s", vtsm_host_last_error(hh.h)->detail);
    assert_string_equal(e2e_str(res, "dev", s, sizeof(s)), "0000:02:00.0");
    cbor_decref(&res);

    struct vtsm_guest *g = NULL;
    uint32_t tvm = 0;
    assert_int_equal(e2e_host_new_tvm(&hh, e->dir, "tvm", &tvm, &g), 0);
    assert_int_equal(vtsm_host_tdi_bind_cbor(hh.h, "0000:02:00.0", 1, tvm, 0, &res), VTSM_OK);
    cbor_decref(&res);
    uint8_t nonce[32];
    assert_int_equal(vtsm_random(nonce, sizeof(nonce)), VTSM_OK);
    /* the token names 0000:02:00.0, the guest asked about 2:00.0: the same device */
    assert_int_equal(
        vtsm_guest_call_cbor(g, hh.h, VTSM_ABI_GOP_INFO, "2:00.0", 1, nonce, NULL, &res), VTSM_OK);
    assert_string_equal(e2e_str(res, "dev", s, sizeof(s)), "0000:02:00.0");
    cbor_decref(&res);
    assert_int_equal(
        vtsm_guest_call_cbor(g, hh.h, VTSM_ABI_GOP_ACCEPT, "0000:02:00.0", 1, NULL, NULL, &res),
        VTSM_OK);
    assert_string_equal(e2e_str(res, "state", s, sizeof(s)), "RUN");
    cbor_decref(&res);
    /* a guest naming no PCI address is refused with PDEV.30 */
    assert_int_equal(vtsm_guest_call_cbor(g, hh.h, VTSM_ABI_GOP_INFO, "dev2", 1, NULL, NULL, &res),
                     VTSM_E_ABI_ARG);
    if (res)
        cbor_decref(&res);
    assert_int_equal(vtsm_host_last_error(hh.h)->rule, VTSM_RULE_PDEV_30);
    vtsm_guest_close(g);
    e2e_host_close(&hh);
}

/* A host with one connected device from tsm-devemu args, and guests. */
struct topo {
    struct e2e *e;
    struct e2e_host hh;
    const char *dev;
};

static void topo_open(struct topo *t, struct e2e *e, const char *dev, const char *const *args)
{
    t->e = e;
    t->dev = dev;
    int port = e2e_devemu(e, args);
    assert_true(port > 0);
    assert_int_equal(e2e_host_open(e, &t->hh), 0);
    assert_int_equal(e2e_host_add_device(&t->hh, dev, port, 0), 0);
    struct vtsm_host_connect_opts o = {.ide_streams = 1};
    cbor_item_t *res = NULL;
    if (vtsm_host_device_connect_cbor(t->hh.h, dev, &o, &res) != VTSM_OK)
        fail_msg("connect: %s", vtsm_host_last_error(t->hh.h)->detail);
    cbor_decref(&res);
}

/* The STATUS entry of TDI rid, or NULL (res released by the caller). */
static const cbor_item_t *status_tdi(struct topo *t, uint32_t rid, cbor_item_t **res)
{
    assert_int_equal(vtsm_host_status_cbor(t->hh.h, t->dev, res), VTSM_OK);
    const cbor_item_t *tdis = e2e_get(*res, "devices.0.tdis");
    for (size_t i = 0; tdis && i < cbor_array_size(tdis); i++)
        if (e2e_uint(cbor_array_handle(tdis)[i], "tdi") == rid)
            return cbor_array_handle(tdis)[i];
    return NULL;
}

/* bind rid to tvm; the guest checks the evidence with its nonce, then accepts. */
static void bind_and_accept(struct topo *t, uint32_t rid, uint32_t tvm, struct vtsm_guest *g,
                            cbor_item_t **info)
{
    char s[64];
    cbor_item_t *res = NULL, *claims = NULL;
    if (vtsm_host_tdi_bind_cbor(t->hh.h, t->dev, rid, tvm, 0, &res) != VTSM_OK)
        fail_msg("bind 0x%x: %s", rid, vtsm_host_last_error(t->hh.h)->detail);
    assert_string_equal(e2e_str(res, "state", s, sizeof(s)), "CONFIG_LOCKED");
    assert_int_equal(e2e_uint(res, "tdi"), rid);
    cbor_decref(&res);
    uint8_t nonce[32];
    assert_int_equal(vtsm_random(nonce, sizeof(nonce)), VTSM_OK);
    assert_int_equal(
        vtsm_guest_call_cbor(g, t->hh.h, VTSM_ABI_GOP_INFO, t->dev, rid, nonce, NULL, info),
        VTSM_OK);
    const cbor_item_t *tok = e2e_get(*info, "token");
    assert_non_null(tok);
    assert_int_equal(vtsm_guest_verify_token_cbor(cbor_bytestring_handle(tok),
                                                  cbor_bytestring_length(tok), NULL, nonce,
                                                  &claims),
                     VTSM_OK);
    assert_int_equal(e2e_uint(claims, "tdi"), rid);
    assert_int_equal(e2e_uint(claims, "tvm"), tvm);
    cbor_decref(&claims);
    assert_int_equal(
        vtsm_guest_call_cbor(g, t->hh.h, VTSM_ABI_GOP_ACCEPT, t->dev, rid, NULL, NULL, &res),
        VTSM_OK);
    assert_string_equal(e2e_str(res, "state", s, sizeof(s)), "RUN");
    assert_true(e2e_bool(res, "mmio_enabled"));
    cbor_decref(&res);
}

/* The only TDI of the device is function 0xBEEF (bus 0xbe, device 0x1d, function 7): the
 * TSM's probe uses the DSM's own INTERFACE_ID, the TDI is bound by its requester ID and a
 * guest accepts it; a TDI the device does not have is refused by the device and leaves no
 * record. */
static void test_tdi_beef_bound_and_accepted(void **state)
{
    struct e2e *e = *state;
    struct topo t;
    char s[64];
    const char *args[] = {"--tdi", "0xBEEF", "--verbose", NULL};
    topo_open(&t, e, "0000:be:00.0", args);
    struct vtsm_guest *g = NULL;
    uint32_t tvm = 0;
    assert_int_equal(e2e_host_new_tvm(&t.hh, e->dir, "tvm", &tvm, &g), 0);

    cbor_item_t *res = NULL;
    assert_int_equal(vtsm_host_tdi_bind_cbor(t.hh.h, t.dev, 0, tvm, 0, &res), VTSM_E_PEER_ERROR);
    if (res)
        cbor_decref(&res);
    E2E_HAS(vtsm_host_last_error(t.hh.h)->detail, "INVALID_INTERFACE");
    assert_null(status_tdi(&t, 0, &res));
    cbor_decref(&res);

    cbor_item_t *info = NULL;
    bind_and_accept(&t, 0xBEEF, tvm, g, &info);
    /* the report the guest got is the device's report for that function */
    const cbor_item_t *rep = e2e_get(info, "report");
    assert_non_null(rep);
    const char *want = "RID 0xbeef";
    assert_non_null(
        memmem(cbor_bytestring_handle(rep), cbor_bytestring_length(rep), want, strlen(want)));
    cbor_decref(&info);

    const cbor_item_t *st = status_tdi(&t, 0xBEEF, &res);
    assert_non_null(st);
    assert_string_equal(e2e_str(st, "rid", s, sizeof(s)), "0000:be:1d.7");
    assert_string_equal(e2e_str(st, "state", s, sizeof(s)), "RUN");
    assert_int_equal(e2e_uint(st, "tvm"), tvm);
    assert_int_equal(cbor_array_size(e2e_get(st, "mmio")), 2);
    cbor_decref(&res);
    /* the device refused TDI 0 itself: it has no such function (DEVTDI.6) */
    static char log[1 << 20];
    assert_true(e2e_devemu_log(e, 1, log, sizeof(log)) >= 0);
    E2E_HAS(log, "FUNCTION_ID 0x00000000 names no TDI");
    E2E_HAS(log, "rule DEVTDI.6");
    vtsm_guest_close(g);
    e2e_host_close(&t.hh);
}

/* A device in PCI segment 0x12 (0012:be:00.0, tsm-devemu --segment 0x12): every TDISP
 * INTERFACE_ID the TSM sends carries the segment with Requester Segment Valid, so the
 * device finds TDI 0xBEEF, and a guest accepts it; the same device without the segment
 * configured finds no such interface and the bind fails with the device's refusal. */
static void test_tdi_in_a_segment(void **state)
{
    struct e2e *e = *state;
    struct topo t;
    const char *args[] = {"--segment", "0x12", "--tdi", "0xBEEF", "--verbose", NULL};
    topo_open(&t, e, "0012:be:00.0", args);
    struct vtsm_guest *g = NULL;
    uint32_t tvm = 0;
    assert_int_equal(e2e_host_new_tvm(&t.hh, e->dir, "seg", &tvm, &g), 0);
    cbor_item_t *info = NULL;
    bind_and_accept(&t, 0xBEEF, tvm, g, &info);
    cbor_decref(&info);
    static char log[1 << 20];
    assert_true(e2e_devemu_log(e, 1, log, sizeof(log)) >= 0);
    assert_null(strstr(log, "names no TDI"));
    vtsm_guest_close(g);
    e2e_host_close(&t.hh);

    /* the device does not know the segment: the TSM's INTERFACE_ID names nothing */
    struct topo u;
    const char *plain[] = {"--tdi", "0xBEEF", "--verbose", NULL};
    topo_open(&u, e, "0013:be:00.0", plain);
    cbor_item_t *res = NULL;
    assert_int_equal(e2e_host_new_tvm(&u.hh, e->dir, "seg2", &tvm, NULL), 0);
    assert_int_equal(vtsm_host_tdi_bind_cbor(u.hh.h, u.dev, 0xBEEF, tvm, 0, &res),
                     VTSM_E_PEER_ERROR);
    if (res)
        cbor_decref(&res);
    E2E_HAS(vtsm_host_last_error(u.hh.h)->detail, "INVALID_INTERFACE");
    assert_int_equal(e2e_devemu_log(e, 2, log, sizeof(log)), 0);
    E2E_HAS(log, "FUNCTION_ID 0x0113beef names no TDI");
    e2e_host_close(&u.hh);
}

/* A DSM (01:00.0) with two virtual functions (First VF Offset 0x10, stride 2: RIDs 0x0110
 * and 0x0112), each a TDI with the BARs of the topology file, bound to two TVMs: each gets
 * its own report and MMIO ranges, accepts its own TDI and cannot read the other's. */
static void test_dsm_two_vfs_two_tvms(void **state)
{
    struct e2e *e = *state;
    struct topo t;
    char s[64], path[512];
    snprintf(path, sizeof(path), "%s/topo.conf", e->dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "# a DSM with two VFs\n"
               "rid 0x0100\n"
               "vfs 2\n"
               "vf-offset 0x10   # First VF Offset\n"
               "vf-stride 2\n"
               "vf-bars 64K,16K:msix,4K:pba\n");
    fclose(f);
    const char *args[] = {"--topology", path, NULL};
    topo_open(&t, e, "0000:01:00.0", args);
    struct vtsm_guest *ga = NULL, *gb = NULL;
    uint32_t tvm_a = 0, tvm_b = 0;
    assert_int_equal(e2e_host_new_tvm(&t.hh, e->dir, "tvmA", &tvm_a, &ga), 0);
    assert_int_equal(e2e_host_new_tvm(&t.hh, e->dir, "tvmB", &tvm_b, &gb), 0);

    cbor_item_t *ia = NULL, *ib = NULL, *res = NULL;
    bind_and_accept(&t, 0x0110, tvm_a, ga, &ia);
    bind_and_accept(&t, 0x0112, tvm_b, gb, &ib);

    /* distinct reports, each with the configured BARs: 16, 4 and 1 pages */
    const cbor_item_t *ra = e2e_get(ia, "report"), *rb = e2e_get(ib, "report");
    assert_true(cbor_bytestring_length(ra) != cbor_bytestring_length(rb) ||
                memcmp(cbor_bytestring_handle(ra), cbor_bytestring_handle(rb),
                       cbor_bytestring_length(ra)) != 0);
    static const uint64_t pages[] = {16, 4, 1}, attrs[] = {0, 1, 2};
    const cbor_item_t *ma = e2e_get(ia, "mmio"), *mb = e2e_get(ib, "mmio");
    assert_int_equal(cbor_array_size(ma), 3);
    assert_int_equal(cbor_array_size(mb), 3);
    for (size_t i = 0; i < 3; i++) {
        const cbor_item_t *a = cbor_array_handle(ma)[i], *b = cbor_array_handle(mb)[i];
        assert_int_equal(e2e_uint(a, "pages"), pages[i]);
        assert_int_equal(e2e_uint(b, "pages"), pages[i]);
        assert_int_equal(e2e_uint(a, "attributes"), attrs[i]);
        assert_int_equal(e2e_uint(a, "range_id"), i);
        /* B's ranges lie beyond all of A's */
        const cbor_item_t *a_last = cbor_array_handle(ma)[2];
        assert_true(e2e_uint(b, "first_page") >=
                    e2e_uint(a_last, "first_page") + e2e_uint(a_last, "pages"));
    }
    assert_int_equal(e2e_uint(cbor_array_handle(ma)[1], "first_page"),
                     e2e_uint(cbor_array_handle(ma)[0], "first_page") + 16);
    cbor_decref(&ia);
    cbor_decref(&ib);

    /* each guest sees only its own TDI */
    assert_int_equal(
        vtsm_guest_call_cbor(gb, t.hh.h, VTSM_ABI_GOP_INFO, t.dev, 0x0110, NULL, NULL, &res),
        VTSM_E_NOT_OWNER);
    if (res)
        cbor_decref(&res);
    assert_int_equal(vtsm_host_last_error(t.hh.h)->rule, VTSM_RULE_TDI_6);

    /* STATUS: both VFs by RID with their owners and ranges */
    const cbor_item_t *sa = status_tdi(&t, 0x0110, &res);
    assert_non_null(sa);
    assert_string_equal(e2e_str(sa, "rid", s, sizeof(s)), "0000:01:02.0");
    assert_int_equal(e2e_uint(sa, "tvm"), tvm_a);
    assert_int_equal(cbor_array_size(e2e_get(sa, "mmio")), 3);
    cbor_decref(&res);
    const cbor_item_t *sb = status_tdi(&t, 0x0112, &res);
    assert_non_null(sb);
    assert_string_equal(e2e_str(sb, "rid", s, sizeof(s)), "0000:01:02.2");
    assert_int_equal(e2e_uint(sb, "tvm"), tvm_b);
    assert_string_equal(e2e_str(sb, "state", s, sizeof(s)), "RUN");
    cbor_decref(&res);
    /* the DSM itself and a VF number that is not there are no TDIs of this device */
    assert_int_equal(vtsm_host_tdi_bind_cbor(t.hh.h, t.dev, 0x0100, tvm_a, 0, &res),
                     VTSM_E_PEER_ERROR);
    if (res)
        cbor_decref(&res);
    assert_int_equal(vtsm_host_tdi_bind_cbor(t.hh.h, t.dev, 0x0111, tvm_a, 0, &res),
                     VTSM_E_PEER_ERROR);
    if (res)
        cbor_decref(&res);
    vtsm_guest_close(ga);
    vtsm_guest_close(gb);
    e2e_host_close(&t.hh);
}

/* A device whose IDE_KM port is 1 of 0..2: the TSM programs the port QUERY_RESP names
 * (the device refuses KEY_PROG for any other, rule IDEKM.2), the link check passes, a
 * refresh and a reclaim use it too; a device with only port 0 is unchanged. */
static void test_ide_port_from_device(void **state)
{
    struct e2e *e = *state;
    struct topo t;
    const char *args[] = {"--port-index", "1", "--max-port-index", "2", "--verbose", NULL};
    topo_open(&t, e, "0000:03:00.0", args);
    cbor_item_t *res = NULL;
    assert_int_equal(vtsm_host_ide_link_check_cbor(t.hh.h, t.dev, &res), VTSM_OK);
    assert_true(e2e_bool(res, "streams.0.rp_to_device"));
    assert_true(e2e_bool(res, "streams.0.device_to_rp"));
    cbor_decref(&res);
    assert_int_equal(vtsm_host_ide_refresh_cbor(t.hh.h, t.dev, &res), VTSM_OK);
    cbor_decref(&res);
    assert_int_equal(vtsm_host_ide_link_check_cbor(t.hh.h, t.dev, &res), VTSM_OK);
    assert_true(e2e_bool(res, "streams.0.device_to_rp"));
    assert_int_equal(e2e_uint(res, "streams.0.key_set"), 1);
    cbor_decref(&res);
    assert_int_equal(vtsm_host_device_reclaim_cbor(t.hh.h, t.dev, &res), VTSM_OK);
    cbor_decref(&res);
    static char log[1 << 20];
    assert_true(e2e_devemu_log(e, 1, log, sizeof(log)) >= 0);
    assert_null(strstr(log, "IDEKM.2")); /* no message named another port */
    e2e_host_close(&t.hh);
}

/* The host declares the TDIs at connect (tdis): the TSM asks the device for each one's
 * state, lists them in STATUS before any bind, binds only those (rule TDI.31) and keeps
 * them listed after an unbind; a declared TDI the device does not have fails the connect
 * and leaves the device unconnected with no TDIs. */
static void test_connect_declares_tdis(void **state)
{
    struct e2e *e = *state;
    struct e2e_host hh;
    char s[64];
    const char *args[] = {"--rid", "0x0100", "--vfs", "2", "--vf-offset", "0x10", NULL};
    int port = e2e_devemu(e, args);
    assert_true(port > 0);
    assert_int_equal(e2e_host_open(e, &hh), 0);
    assert_int_equal(e2e_host_add_device(&hh, "0000:01:00.0", port, 0), 0);
    struct vtsm_result *pres = NULL;
    cbor_item_t *res = NULL;

    /* 0x0112 is no function of this device (its VFs are 0x0110 and 0x0111) */
    static const uint16_t wrong[] = {0x0110, 0x0112};
    struct vtsm_request r = {.dev = "0000:01:00.0", .tdis = wrong, .tdis_len = 2};
    assert_int_equal(vtsm_host_device_connect(hh.h, &r, &pres), VTSM_E_PEER_ERROR);
    E2E_HAS(vtsm_host_last_error(hh.h)->detail, "INVALID_INTERFACE");
    vtsm_result_free(pres);
    pres = NULL;
    assert_int_equal(vtsm_host_status_cbor(hh.h, "0000:01:00.0", &res), VTSM_OK);
    assert_string_equal(e2e_str(res, "devices.0.state", s, sizeof(s)), "unconnected");
    assert_null(e2e_get(res, "devices.0.tdis"));
    cbor_decref(&res);

    static const uint16_t vfs[] = {0x0110, 0x0111};
    r.tdis = vfs;
    if (vtsm_host_device_connect(hh.h, &r, &pres) != VTSM_OK)
        fail_msg("connect: %s", vtsm_host_last_error(hh.h)->detail);
    vtsm_result_free(pres);
    assert_int_equal(vtsm_host_status_cbor(hh.h, "0000:01:00.0", &res), VTSM_OK);
    assert_int_equal(e2e_uint(res, "devices.0.total_tdis"), 2);
    assert_int_equal(e2e_uint(res, "devices.0.bound_tdis"), 0);
    const cbor_item_t *tdis = e2e_get(res, "devices.0.tdis");
    assert_non_null(tdis);
    assert_int_equal(cbor_array_size(tdis), 2);
    for (size_t i = 0; i < 2; i++) {
        const cbor_item_t *t = cbor_array_handle(tdis)[i];
        uint64_t rid = e2e_uint(t, "tdi");
        assert_true(rid == 0x0110 || rid == 0x0111);
        assert_string_equal(e2e_str(t, "rid", s, sizeof(s)),
                            rid == 0x0110 ? "0000:01:02.0" : "0000:01:02.1");
        assert_string_equal(e2e_str(t, "state", s, sizeof(s)), "CONFIG_UNLOCKED");
    }
    cbor_decref(&res);

    uint32_t tvm = 0;
    assert_int_equal(e2e_host_new_tvm(&hh, e->dir, "tvm", &tvm, NULL), 0);
    /* the DSM itself was not declared: refused before any device exchange */
    assert_int_equal(vtsm_host_tdi_bind_cbor(hh.h, "0000:01:00.0", 0x0100, tvm, 0, &res),
                     VTSM_E_NOT_FOUND);
    if (res)
        cbor_decref(&res);
    assert_int_equal(vtsm_host_last_error(hh.h)->rule, VTSM_RULE_TDI_31);
    assert_int_equal(vtsm_host_tdi_bind_cbor(hh.h, "0000:01:00.0", 0x0111, tvm, 0, &res), VTSM_OK);
    cbor_decref(&res);
    assert_int_equal(vtsm_host_tdi_unbind_cbor(hh.h, "0000:01:00.0", 0x0111, &res), VTSM_OK);
    cbor_decref(&res);
    assert_int_equal(vtsm_host_status_cbor(hh.h, "0000:01:00.0", &res), VTSM_OK);
    assert_int_equal(e2e_uint(res, "devices.0.total_tdis"), 2);
    cbor_decref(&res);
    /* declared TDIs with ide_only: no TDISP to ask (rule TDI.9) */
    assert_int_equal(vtsm_host_device_reclaim_cbor(hh.h, "0000:01:00.0", &res), VTSM_OK);
    cbor_decref(&res);
    r.ide_only = true;
    r.set = VTSM_SET(IDE_ONLY);
    assert_int_equal(vtsm_host_device_connect(hh.h, &r, &pres), VTSM_E_STATE);
    assert_int_equal(vtsm_host_last_error(hh.h)->rule, VTSM_RULE_TDI_9);
    vtsm_result_free(pres);
    e2e_host_close(&hh);

    /* the same from tsm-host: connect --tdis, then status names both functions */
    static struct e2e_run run;
    char doe[64];
    e2e_doe(doe, sizeof(doe), port);
    const char *bad[] = {"connect", "0000:01:00.0", "--doe", doe, "--tdis", "0x110,", NULL};
    assert_int_equal(e2e_host(e, &run, bad), 2);
    const char *conn[] = {"--json", "connect", "01:00.0",     "--doe",
                          doe,      "--tdis",  "0x110,0x111", NULL};
    if (e2e_host(e, &run, conn) != 0)
        fail_msg("tsm-host connect --tdis: %s", run.err);
    E2E_HAS(run.out, "\"state\":\"connected\"");
    const char *st[] = {"--json", "status", "0000:01:00.0", NULL};
    assert_int_equal(e2e_host(e, &run, st), 0);
    E2E_HAS(run.out, "0000:01:02.0");
    E2E_HAS(run.out, "0000:01:02.1");
}

/* A declared TDI that another TSM left locked on the device (TDI state is device state)
 * fails the connect with peer_state, rule TDI.30, and leaves the device unconnected. */
static void test_declared_tdi_locked_elsewhere(void **state)
{
    struct e2e *e = *state;
    struct topo a;
    const char *args[] = {"--tdi", "0x0101", NULL};
    topo_open(&a, e, "0000:01:00.0", args);
    uint32_t tvm = 0;
    assert_int_equal(e2e_host_new_tvm(&a.hh, e->dir, "tvm", &tvm, NULL), 0);
    cbor_item_t *res = NULL;
    assert_int_equal(vtsm_host_tdi_bind_cbor(a.hh.h, a.dev, 0x0101, tvm, 0, &res), VTSM_OK);
    cbor_decref(&res);

    /* a second tsmd, the same device */
    static struct e2e e2;
    assert_int_equal(e2e_setup(&e2, NULL), 0);
    struct e2e_host hh;
    char p[128];
    snprintf(p, sizeof(p), "%s/dev1.port", e->dir);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    int port = 0;
    assert_int_equal(fscanf(f, "%d", &port), 1);
    fclose(f);
    assert_int_equal(e2e_host_open(&e2, &hh), 0);
    assert_int_equal(e2e_host_add_device(&hh, "0000:01:00.0", port, 0), 0);
    static const uint16_t rid[] = {0x0101};
    struct vtsm_request r = {.dev = "0000:01:00.0", .tdis = rid, .tdis_len = 1};
    struct vtsm_result *pres = NULL;
    assert_int_equal(vtsm_host_device_connect(hh.h, &r, &pres), VTSM_E_PEER_STATE);
    assert_int_equal(vtsm_host_last_error(hh.h)->rule, VTSM_RULE_TDI_30);
    E2E_HAS(vtsm_host_last_error(hh.h)->detail, "CONFIG_LOCKED");
    vtsm_result_free(pres);
    char s[32];
    assert_int_equal(vtsm_host_status_cbor(hh.h, "0000:01:00.0", &res), VTSM_OK);
    assert_string_equal(e2e_str(res, "devices.0.state", s, sizeof(s)), "unconnected");
    cbor_decref(&res);
    e2e_host_close(&hh);
    assert_int_equal(e2e_teardown(&e2), 0);
    e2e_host_close(&a.hh);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_names_canonical_and_refused, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_short_name_connects_and_guest_matches,
                                        e2e_fixture_setup, e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_tdi_beef_bound_and_accepted, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_dsm_two_vfs_two_tvms, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_tdi_in_a_segment, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_ide_port_from_device, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_connect_declares_tdis, e2e_fixture_setup,
                                        e2e_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_declared_tdi_locked_elsewhere, e2e_fixture_setup,
                                        e2e_fixture_teardown),
    };
    return cmocka_run_group_tests_name("e2e_topo", tests, NULL, NULL);
}
