/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tsm-demo - the whole flow with no configuration: start the emulated device (a device
 * security manager, function 0, with two SR-IOV virtual functions) and tsmd, act as the
 * host (carry every DOE object between them) and as two guests; connect the DSM, show what
 * the TSM verified, give each VF to its own TVM (bind, guest INFO and evidence check, MMIO
 * mapped by the host and validated by the guest, DMA, ACCEPT), show that one guest cannot
 * touch the other's VF, then unbind, destroy the TVMs, reclaim and clean up.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vtsm_abi.h"
#include "vtsm_crypto.h"
#include "vtsm_guest_cbor.h"
#include "vtsm_host_cbor.h"
#include "vtsm_proc.h"
#include "vtsm_tdisp.h"

#define DEV "0000:01:00.0" /* the DSM: requester ID 0x0100, function 0 */
#define NVF 2
/* tsm-devemu's topology: VF i at RID 0x0100 + First VF Offset 0x10 + i * VF Stride 1, each
 * with the BARs of a small NIC function (64 KiB registers, the MSI-X table, the PBA) */
static const char *const devemu_topology[] = {
    "--rid", "0x0100",      "--vfs", "2",         "--vf-offset",
    "0x10",  "--vf-stride", "1",     "--vf-bars", "64K,16K:msix,4K:pba"};

static char bindir[PATH_MAX];
static char workdir[64];
static pid_t pids[2];
static int npids;

static void cleanup(void)
{
    for (int i = npids - 1; i >= 0; i--)
        vtsm_proc_stop(pids[i], 3000);
    npids = 0;
    /* Everything the demo made lives in workdir (the port file, tsmd's socket, the guest's
     * private key and its sequence file): remove it all. */
    DIR *d = workdir[0] ? opendir(workdir) : NULL;
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL)
            if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                unlinkat(dirfd(d), de->d_name, 0);
        closedir(d);
    }
    if (workdir[0]) {
        rmdir(workdir);
        workdir[0] = '\0';
    }
}

static void on_signal(int sig)
{
    (void)sig;
    cleanup();
    _exit(130);
}

static pid_t start(const char *prog, const char *const *args)
{
    pid_t pid = vtsm_proc_start(bindir, prog, args, -1, -1);
    if (pid > 0)
        pids[npids++] = pid;
    return pid;
}

struct counting_doe {
    struct vtsm_doe_tcp *tcp;
    unsigned exchanges;
};

static int counting_doe_fn(void *ctx, const uint8_t *req, size_t req_len, uint8_t *rsp,
                           size_t *rsp_len)
{
    struct counting_doe *c = ctx;
    c->exchanges++;
    return vtsm_doe_tcp_fn(c->tcp, req, req_len, rsp, rsp_len);
}

static const char *tstr(const cbor_item_t *m, const char *key, char *buf, size_t cap)
{
    if (!m || vtsm_abi_get_tstr(m, key, buf, cap) != VTSM_OK)
        snprintf(buf, cap, "?");
    return buf;
}

static void hexdump_short(const uint8_t *p, size_t n, char *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 3 < cap && i < 16; i++)
        k += (size_t)snprintf(out + k, cap - k, "%02x", p[i]);
    if (n > 16 && k + 4 < cap)
        snprintf(out + k, cap - k, "...");
}

static int fail(struct vtsm_host *h, const char *what)
{
    const struct vtsm_host_error *err = vtsm_host_last_error(h);
    fprintf(stderr, "tsm-demo: %s failed: %s (%s): %s\n", what, err->name, err->source,
            err->detail[0] ? err->detail : vtsm_err_detail());
    return 1;
}

/* m[k1][k2][0][k3] as uint / bool (0 / false when absent). */
static const cbor_item_t *first_of(const cbor_item_t *m, const char *k1, const char *k2)
{
    const cbor_item_t *v = k1 ? vtsm_abi_find(m, k1) : m;
    v = v && cbor_isa_map(v) ? vtsm_abi_find(v, k2) : NULL;
    return v && cbor_isa_array(v) && cbor_array_size(v) ? cbor_array_handle(v)[0] : NULL;
}

static uint64_t uint_at(const cbor_item_t *m, const char *k1, const char *k2, const char *k3)
{
    uint64_t v = 0;
    const cbor_item_t *e = first_of(m, k1, k2);
    if (e)
        vtsm_abi_get_uint(e, k3, &v);
    return v;
}

static bool bool_at(const cbor_item_t *m, const char *k2, const char *k3)
{
    bool v = false;
    const cbor_item_t *e = first_of(m, NULL, k2);
    if (e)
        vtsm_abi_get_bool(e, k3, &v);
    return v;
}

static void print_connect(const cbor_item_t *res)
{
    char a[64], b[64], c[64], d[64], e[64];
    const cbor_item_t *alg = NULL, *trust = NULL, *meas = NULL, *blocks = NULL;
    uint64_t sid = 0;
    const uint8_t *chain = NULL;
    size_t chain_len = 0;
    bool trusted = false;

    vtsm_abi_get_map(res, VTSM_ABI_K_ALGORITHMS, &alg);
    printf("      SPDM %s: %s, %s, DHE %s, %s\n", tstr(res, "version", a, sizeof(a)),
           tstr(alg, VTSM_ABI_K_ASYM, b, sizeof(b)), tstr(alg, VTSM_ABI_K_HASH, c, sizeof(c)),
           tstr(alg, VTSM_ABI_K_DHE, d, sizeof(d)), tstr(alg, VTSM_ABI_K_AEAD, e, sizeof(e)));
    vtsm_abi_get_bytes(res, VTSM_ABI_K_CERT_CHAIN, &chain, &chain_len);
    if (vtsm_abi_get_map(res, VTSM_ABI_K_TRUST, &trust) == VTSM_OK)
        vtsm_abi_get_bool(trust, VTSM_ABI_K_TRUSTED, &trusted);
    printf("      certificate chain: %zu bytes, %s (%s)\n", chain_len,
           trusted ? "TRUSTED" : "NOT TRUSTED", tstr(trust, VTSM_ABI_K_REASON, a, sizeof(a)));
    vtsm_abi_get_uint(res, VTSM_ABI_K_SESSION_ID, &sid);
    printf("      secure session 0x%08llx established (KEY_EXCHANGE signature + verify data "
           "checked)\n",
           (unsigned long long)sid);
    if (vtsm_abi_get_map(res, VTSM_ABI_K_MEASUREMENTS, &meas) == VTSM_OK &&
        vtsm_abi_get_array(meas, VTSM_ABI_K_BLOCKS, &blocks) == VTSM_OK) {
        size_t n = cbor_array_size(blocks);
        printf("      %zu signed measurement blocks (fresh nonce, signature verified):\n", n);
        for (size_t i = 0; i < n; i++) {
            const cbor_item_t *blk = cbor_array_handle(blocks)[i];
            uint64_t index = 0, type = 0;
            const uint8_t *v = NULL;
            size_t vl = 0;
            char hex[64] = "";
            vtsm_abi_get_uint(blk, VTSM_ABI_K_INDEX, &index);
            vtsm_abi_get_uint(blk, VTSM_ABI_K_TYPE, &type);
            vtsm_abi_get_bytes(blk, VTSM_ABI_K_VALUE, &v, &vl);
            hexdump_short(v, vl, hex, sizeof(hex));
            printf("        #%llu type %llu: %s\n", (unsigned long long)index,
                   (unsigned long long)type, hex);
        }
    }
}

/* One VF given to one TVM: the guest's handle and what the bind reported. */
struct vf {
    uint32_t rid;  /* the TDI: the VF's requester ID */
    char name[32]; /* ... as a PCI address, as the TSM reports it */
    char key[128]; /* the guest's private key (in the demo dir) */
    struct vtsm_guest *g;
    uint32_t tvm;
    size_t nranges;
    uint64_t pages[VTSM_TDISP_MAX_MMIO_RANGES], attr[VTSM_TDISP_MAX_MMIO_RANGES];
};

/* the rule a refused request carried, as "status, rule X"; false unless the TSM refused it
 * with a rule (a local failure proves nothing about isolation) */
static bool refusal(struct vtsm_host *h, vtsm_status st, char *buf, size_t cap)
{
    const struct vtsm_host_error *err = vtsm_host_last_error(h);
    snprintf(buf, cap, "%s, rule %s", vtsm_status_name(st), err->rule_id);
    if (!err->from_tsm || !err->rule_id[0]) {
        fprintf(stderr, "tsm-demo: refused, but not by the TSM under a rule: %s\n", err->detail);
        return false;
    }
    return true;
}

/* TDI_MMIO_MAP of every reported range of v at consecutive GPAs from gpa0, then the guest's
 * MMIO_VALIDATE of each and its DMA_ENABLE. */
static int map_validate_dma(struct vtsm_host *h, struct vf *v, uint64_t gpa0, size_t *shared,
                            char *dma, size_t dma_cap)
{
    cbor_item_t *res = NULL;
    uint64_t gpa = gpa0;
    *shared = 0;
    for (size_t i = 0; i < v->nranges; i++) {
        cbor_item_t *req = vtsm_abi_map_new();
        if (!req || vtsm_abi_put_tstr(req, VTSM_ABI_K_DEV, DEV) ||
            vtsm_abi_put_uint(req, VTSM_ABI_K_TDI, v->rid) ||
            vtsm_abi_put_uint(req, VTSM_ABI_K_RANGE, i) ||
            vtsm_abi_put_uint(req, VTSM_ABI_K_GPA, gpa) ||
            vtsm_host_call_cbor(h, VTSM_OP_TDI_MMIO_MAP, req, &res)) {
            if (req)
                cbor_decref(&req);
            return fail(h, "tdi_mmio_map");
        }
        cbor_decref(&req);
        cbor_decref(&res);
        gpa += v->pages[i] * VTSM_TDISP_PAGE_SIZE;
    }
    gpa = gpa0;
    for (size_t i = 0; i < v->nranges; i++) {
        /* locked without LOCK_MSIX: the MSI-X table and PBA stay shared (rule MMIO.10) */
        bool priv = !(v->attr[i] & (VTSM_TDISP_RANGE_MSIX_TABLE | VTSM_TDISP_RANGE_MSIX_PBA |
                                    VTSM_TDISP_RANGE_IS_NON_TEE_MEM));
        struct vtsm_guest_mmio m = {
            .range = (uint32_t)i, .gpa = gpa, .pages = v->pages[i], .shared = !priv};
        if (vtsm_guest_mmio_validate_cbor(v->g, h, DEV, v->rid, &m, &res))
            return fail(h, "guest mmio_validate");
        cbor_decref(&res);
        *shared += !priv;
        gpa += v->pages[i] * VTSM_TDISP_PAGE_SIZE;
    }
    if (vtsm_guest_dma_enable_cbor(v->g, h, DEV, v->rid, &res))
        return fail(h, "guest dma_enable");
    tstr(res, VTSM_ABI_K_DMA, dma, dma_cap);
    cbor_decref(&res);
    return 0;
}

int main(int argc, char **argv)
{
    (void)argv;
    if (argc > 1) {
        fprintf(stderr, "usage: tsm-demo   (no arguments)\n");
        return 2;
    }
    if (vtsm_proc_self_dir(bindir, sizeof(bindir)) != 0) {
        fprintf(stderr, "tsm-demo: cannot locate myself\n");
        return 1;
    }
    /* $TMPDIR if its name is short enough for the socket path, else /tmp */
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp ||
        (size_t)snprintf(workdir, sizeof(workdir), "%s/vtsm-demo-XXXXXX", tmp) >= sizeof(workdir))
        snprintf(workdir, sizeof(workdir), "/tmp/vtsm-demo-XXXXXX");
    if (!mkdtemp(workdir)) {
        fprintf(stderr, "tsm-demo: mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    atexit(cleanup);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    setvbuf(stdout, NULL, _IOLBF, 0);

    char portfile[128], sock[128], doe[64], s[64];
    snprintf(portfile, sizeof(portfile), "%s/dev.port", workdir);
    snprintf(sock, sizeof(sock), "%s/tsmd.sock", workdir);

    struct vf vfs[NVF] = {{.rid = 0x0110}, {.rid = 0x0111}};
    for (int i = 0; i < NVF; i++) {
        /* the VF's function as a PCI address (segment 0, bus, device, function) */
        snprintf(vfs[i].name, sizeof(vfs[i].name), "0000:%02x:%02x.%x", vfs[i].rid >> 8,
                 (vfs[i].rid >> 3) & 0x1f, vfs[i].rid & 7);
        snprintf(vfs[i].key, sizeof(vfs[i].key), "%s/guest%d.key", workdir, i + 1);
    }

    printf("vtsm demo: a TSM authenticates an emulated TDISP device over host-proxied DOE and "
           "gives each of its two VFs to its own TVM\n\n");
    size_t ntopo = sizeof(devemu_topology) / sizeof(devemu_topology[0]);
    const char *dargs[4 + sizeof(devemu_topology) / sizeof(devemu_topology[0]) + 1];
    size_t na = 0;
    dargs[na++] = "--port";
    dargs[na++] = "0";
    dargs[na++] = "--port-file";
    dargs[na++] = portfile;
    for (size_t i = 0; i < ntopo; i++)
        dargs[na++] = devemu_topology[i];
    dargs[na] = NULL;
    int port = start("tsm-devemu", dargs) > 0 ? vtsm_proc_wait_port(portfile, 10000) : 0;
    if (!port) {
        fprintf(stderr, "tsm-demo: tsm-devemu did not start\n");
        return 1;
    }
    snprintf(doe, sizeof(doe), "tcp:127.0.0.1:%d", port);
    printf("[1] device : tsm-devemu: DSM %s (function 0) with SR-IOV VFs %s and %s (BARs 64 KiB, "
           "MSI-X table, PBA)\n"
           "             serving SPDM, IDE_KM and TDISP over DOE (spdm-emu socket protocol) on "
           "127.0.0.1:%d\n",
           DEV, vfs[0].name, vfs[1].name, port);

    const char *targs[] = {"--socket", sock, "--quiet", NULL};
    start("tsmd", targs);
    struct vtsm_host *h = NULL;
    vtsm_status st = VTSM_E_CLOSED;
    if (vtsm_proc_wait_socket(sock, 10000) == 0)
        st = vtsm_host_open(sock, &h);
    if (st) {
        fprintf(stderr, "tsm-demo: tsmd did not come up\n");
        return 1;
    }
    printf("[2] tsm    : tsmd on %s (%s, ABI v%u), trusting the embedded test root\n", sock,
           vtsm_host_tsm_name(h), vtsm_host_abi_version(h));

    struct counting_doe cd = {0};
    if (vtsm_doe_tcp_open(doe, &cd.tcp) || vtsm_host_register_doe(h, DEV, counting_doe_fn, &cd) ||
        vtsm_host_register_link(h, DEV, vtsm_doe_tcp_link_fn, cd.tcp) ||
        vtsm_host_device_add_cbor(h, DEV, 0))
        return fail(h, "device setup");
    printf("[3] host   : registered the DSM %s under root port 0; its DOE mailbox is %s\n", DEV,
           doe);

    /* ---- device_connect: SPDM session, evidence, IDE; the host declares the VFs ---- */
    cbor_item_t *res = NULL, *extra = vtsm_abi_map_new(), *rids = vtsm_abi_array_new();
    for (int i = 0; i < NVF && rids; i++)
        if (vtsm_abi_push_uint(rids, vfs[i].rid))
            break;
    if (!extra || !rids || cbor_array_size(rids) != NVF ||
        vtsm_abi_put_item(extra, VTSM_ABI_K_TDIS, rids)) {
        if (extra)
            cbor_decref(&extra);
        fprintf(stderr, "tsm-demo: out of memory\n");
        return 1;
    }
    struct vtsm_host_connect_opts opts = {.ide_streams = 1, .extra = extra};
    long t0 = vtsm_now_ms();
    st = vtsm_host_device_connect_cbor(h, DEV, &opts, &res);
    long t1 = vtsm_now_ms();
    cbor_decref(&extra);
    if (st)
        return fail(h, "device_connect");
    printf("[4] connect: device_connect done in %ld ms; the host carried %u DOE objects "
           "(the secured ones it can neither read nor forge)\n",
           t1 - t0, cd.exchanges);
    print_connect(res);
    printf(
        "      IDE: selective stream %llu on root port 0, key set %llu programmed on both "
        "ends by the TSM (IDE_KM inside the session)\n",
        (unsigned long long)uint_at(res, VTSM_ABI_K_IDE, VTSM_ABI_K_STREAMS, VTSM_ABI_K_STREAM_ID),
        (unsigned long long)uint_at(res, VTSM_ABI_K_IDE, VTSM_ABI_K_STREAMS, VTSM_ABI_K_KEY_SET));
    cbor_decref(&res);
    /* the TSM asked the device for each declared VF's state and keeps them listed */
    if (vtsm_host_status_cbor(h, DEV, &res))
        return fail(h, "status");
    const cbor_item_t *dev0 = first_of(res, NULL, VTSM_ABI_K_DEVICES), *tl = NULL;
    char listed[160] = "";
    size_t nl = 0;
    if (dev0 && vtsm_abi_get_array(dev0, VTSM_ABI_K_TDIS, &tl) == VTSM_OK)
        for (size_t i = 0; i < cbor_array_size(tl); i++) {
            char r[32], t[32];
            const cbor_item_t *e = cbor_array_handle(tl)[i];
            nl += (size_t)snprintf(listed + nl, nl < sizeof(listed) ? sizeof(listed) - nl : 0,
                                   "%s%s %s", i ? ", " : "", tstr(e, VTSM_ABI_K_RID, r, sizeof(r)),
                                   tstr(e, VTSM_ABI_K_STATE, t, sizeof(t)));
        }
    printf("      TDIs the host declared (tdis), checked on the device and listed by the TSM: "
           "%s\n",
           nl ? listed : "none");
    cbor_decref(&res);

    if (vtsm_host_ide_link_check_cbor(h, DEV, &res))
        return fail(h, "ide_link_check");
    printf("[5] link   : IDE link check: root port -> device %s, device -> root port %s "
           "(the host saw only ciphertext)\n",
           bool_at(res, VTSM_ABI_K_STREAMS, VTSM_ABI_K_RP_TO_DEVICE) ? "PASS" : "FAIL",
           bool_at(res, VTSM_ABI_K_STREAMS, VTSM_ABI_K_DEVICE_TO_RP) ? "PASS" : "FAIL");
    cbor_decref(&res);

    /* ---- two TVMs whose credentials the host never holds ---- */
    for (int i = 0; i < NVF; i++) {
        struct vtsm_guest *g = NULL;
        uint8_t pub[VTSM_GUEST_PUBKEY_SIZE];
        char name[16];
        if (vtsm_guest_keygen(vfs[i].key) || vtsm_guest_open(vfs[i].key, 0, &g))
            return fail(h, "guest key");
        vtsm_guest_pubkey(g, pub);
        vtsm_guest_close(g);
        snprintf(name, sizeof(name), "demo-tvm%d", i + 1);
        if (vtsm_host_tvm_create_cbor(h, name, pub, &vfs[i].tvm, &res))
            return fail(h, "tvm_create");
        cbor_decref(&res);
        if (vtsm_guest_open(vfs[i].key, vfs[i].tvm, &vfs[i].g))
            return fail(h, "guest open");
    }
    printf("[6] tvm    : TVM %u and TVM %u created; each guest made its own P-256 key, the host "
           "registered only the public halves\n",
           vfs[0].tvm, vfs[1].tvm);

    /* ---- assign and lock (the Linux devsec flow): the host assigns VF i to TVM i without
     * locking it, then guest i LOCKs its own VF (LOCK_INTERFACE, the report fetched and
     * validated by the TSM) ---- */
    for (int i = 0; i < NVF; i++) {
        struct vf *v = &vfs[i];
        char rid[32];
        struct vtsm_request rq = {.dev = DEV,
                                  .tdi = v->rid,
                                  .tvm = v->tvm,
                                  .assign = true,
                                  .set = VTSM_SET(TDI) | VTSM_SET(TVM) | VTSM_SET(ASSIGN)};
        struct vtsm_result *ar = NULL;
        if (vtsm_host_tdi_bind(h, &rq, &ar))
            return fail(h, "tdi_bind assign");
        char as[32] = "?";
        vtsm_result_text(ar, "state", as, sizeof(as));
        vtsm_result_free(ar);
        if (vtsm_guest_call_cbor(v->g, h, VTSM_ABI_GOP_LOCK, DEV, v->rid, NULL, NULL, &res))
            return fail(h, "guest lock");
        char ls[32];
        tstr(res, VTSM_ABI_K_STATE, ls, sizeof(ls));
        cbor_decref(&res);
        /* the ranges of the report the TSM validated at the lock, from its STATUS */
        if (vtsm_host_status_cbor(h, DEV, &res))
            return fail(h, "status");
        const cbor_item_t *sdev = first_of(res, NULL, VTSM_ABI_K_DEVICES), *stl = NULL,
                          *mmio = NULL;
        if (sdev && vtsm_abi_get_array(sdev, VTSM_ABI_K_TDIS, &stl) == VTSM_OK)
            for (size_t k = 0; k < cbor_array_size(stl); k++) {
                uint64_t t = 0;
                const cbor_item_t *e = cbor_array_handle(stl)[k];
                if (vtsm_abi_get_uint(e, VTSM_ABI_K_TDI, &t) == VTSM_OK && t == v->rid) {
                    vtsm_abi_get_array(e, VTSM_ABI_K_MMIO, &mmio);
                    tstr(e, VTSM_ABI_K_RID, rid, sizeof(rid));
                }
            }
        v->nranges = mmio ? cbor_array_size(mmio) : 0;
        if (v->nranges > VTSM_TDISP_MAX_MMIO_RANGES)
            v->nranges = VTSM_TDISP_MAX_MMIO_RANGES;
        for (size_t k = 0; k < v->nranges; k++) {
            vtsm_abi_get_uint(cbor_array_handle(mmio)[k], VTSM_ABI_K_PAGES, &v->pages[k]);
            vtsm_abi_get_uint(cbor_array_handle(mmio)[k], VTSM_ABI_K_ATTRIBUTES, &v->attr[k]);
        }
        cbor_decref(&res);
        printf("[7] assign : VF%d %s -> TVM %u by the host: %s (not locked)\n"
               "[7] lock   : guest %d locked VF%d: %s (LOCK_INTERFACE); interface report "
               "validated (%zu MMIO ranges), MMIO/DMA off\n",
               i + 1, rid, v->tvm, as, i + 1, i + 1, ls, v->nranges);
    }

    /* ---- each guest inspects: fresh evidence bound to its nonce, signed by the TSM ---- */
    for (int i = 0; i < NVF; i++) {
        struct vf *v = &vfs[i];
        uint8_t nonce[VTSM_GUEST_NONCE_SIZE];
        cbor_item_t *claims = NULL;
        const uint8_t *rd = NULL, *md = NULL;
        size_t rdl = 0, mdl = 0;
        char rh[48] = "", mh[48] = "";
        if (vtsm_random(nonce, sizeof(nonce)) ||
            vtsm_guest_call_cbor(v->g, h, VTSM_ABI_GOP_INFO, DEV, v->rid, nonce, NULL, &res))
            return fail(h, "guest info");
        if (vtsm_guest_check_evidence_cbor(v->g, res, DEV, v->rid, nonce, NULL, NULL, &claims)) {
            fprintf(stderr, "tsm-demo: guest %d: the evidence did not verify: %s\n", i + 1,
                    vtsm_err_detail());
            cbor_decref(&res);
            return 1;
        }
        vtsm_abi_get_bytes(claims, VTSM_ABI_K_REPORT_DIGEST, &rd, &rdl);
        vtsm_abi_get_bytes(claims, VTSM_ABI_K_MEASUREMENTS_DIGEST, &md, &mdl);
        hexdump_short(rd, rdl < 8 ? rdl : 8, rh, sizeof(rh));
        hexdump_short(md, mdl < 8 ? mdl : 8, mh, sizeof(mh));
        printf("[8] guest %d: INFO of VF%d with a fresh nonce: TSM-signed token VERIFIED for TVM "
               "%u; %s, measurements after lock\n"
               "             report digest %s.., measurements digest %s.. match the token\n",
               i + 1, i + 1, v->tvm, tstr(claims, VTSM_ABI_K_STATE, s, sizeof(s)), rh, mh);
        cbor_decref(&claims);
        cbor_decref(&res);
    }

    /* ---- MMIO and DMA: the host maps each range, the guest validates each, then DMA ---- */
    for (int i = 0; i < NVF; i++) {
        size_t shared = 0;
        char dma[32];
        if (map_validate_dma(h, &vfs[i], 0x4000000000ull, &shared, dma, sizeof(dma)))
            return 1;
        printf("[9] mmio %d : the host mapped VF%d's %zu MMIO ranges at GPA 0x4000000000.. of TVM "
               "%u; guest %d validated each (%zu shared: MSI-X), DMA %s\n",
               i + 1, i + 1, vfs[i].nranges, vfs[i].tvm, i + 1, shared, dma);
    }

    /* ---- isolation: guest 1 can neither read nor accept guest 2's VF ---- */
    {
        char r1[64], r2[64];
        struct vf *a = &vfs[0], *b = &vfs[1];
        st = vtsm_guest_call_cbor(a->g, h, VTSM_ABI_GOP_INFO, DEV, b->rid, NULL, NULL, &res);
        if (res)
            cbor_decref(&res);
        if (st == VTSM_OK) {
            fprintf(stderr, "tsm-demo: guest 1 read TVM %u's TDI\n", b->tvm);
            return 1;
        }
        if (!refusal(h, st, r1, sizeof(r1)))
            return 1;
        /* guest 1 presents for VF2 the digests it verified for its own VF1 */
        cbor_item_t *fake = NULL;
        st = vtsm_guest_call_cbor(a->g, h, VTSM_ABI_GOP_INFO, DEV, a->rid, NULL, NULL, &fake);
        if (st)
            return fail(h, "guest info");
        vtsm_abi_put_uint(fake, VTSM_ABI_K_TDI, b->rid);
        st = vtsm_guest_remember_info_cbor(a->g, fake);
        cbor_decref(&fake);
        if (st == VTSM_OK)
            st = vtsm_guest_call_cbor(a->g, h, VTSM_ABI_GOP_ACCEPT, DEV, b->rid, NULL, NULL, &res);
        if (res)
            cbor_decref(&res);
        if (st == VTSM_OK) {
            fprintf(stderr, "tsm-demo: guest 1 accepted TVM %u's TDI\n", b->tvm);
            return 1;
        }
        if (!refusal(h, st, r2, sizeof(r2)))
            return 1;
        printf("[10] isolate: guest 1 (TVM %u) on VF2 of TVM %u: INFO refused (%s), ACCEPT "
               "refused (%s)\n",
               a->tvm, b->tvm, r1, r2);
    }

    /* ---- accept: only the owning guest can; START_INTERFACE with the lock nonce ---- */
    for (int i = 0; i < NVF; i++) {
        struct vf *v = &vfs[i];
        if (vtsm_guest_call_cbor(v->g, h, VTSM_ABI_GOP_ACCEPT, DEV, v->rid, NULL, NULL, &res))
            return fail(h, "guest accept");
        bool mm = false, dma = false;
        vtsm_abi_get_bool(res, VTSM_ABI_K_MMIO_ENABLED, &mm);
        vtsm_abi_get_bool(res, VTSM_ABI_K_DMA_ENABLED, &dma);
        printf("[11] accept: guest %d accepted VF%d %s under TVM %u (the digests it verified): "
               "%s, MMIO %s, DMA %s\n",
               i + 1, i + 1, v->name, v->tvm, tstr(res, VTSM_ABI_K_STATE, s, sizeof(s)),
               mm ? "enabled" : "disabled", dma ? "enabled" : "disabled");
        cbor_decref(&res);
    }

    /* ---- unbind both, destroy the TVMs, reclaim ---- */
    for (int i = 0; i < NVF; i++) {
        if (vtsm_host_tdi_unbind_cbor(h, DEV, vfs[i].rid, &res))
            return fail(h, "tdi_unbind");
        printf("[12] unbind: STOP_INTERFACE; VF%d %s is %s, its mappings and DMA revoked\n", i + 1,
               vfs[i].name, tstr(res, VTSM_ABI_K_STATE, s, sizeof(s)));
        cbor_decref(&res);
    }
    for (int i = 0; i < NVF; i++) {
        vtsm_guest_close(vfs[i].g);
        vfs[i].g = NULL;
        if (vtsm_host_tvm_destroy_cbor(h, vfs[i].tvm, &res))
            return fail(h, "tvm_destroy");
        cbor_decref(&res);
    }
    printf("[13] tvm   : TVM %u and TVM %u destroyed\n", vfs[0].tvm, vfs[1].tvm);

    unsigned before = cd.exchanges;
    if (vtsm_host_device_reclaim_cbor(h, DEV, &res))
        return fail(h, "device_reclaim");
    const cbor_item_t *es = NULL;
    bool ack = false;
    if (vtsm_abi_get_map(res, VTSM_ABI_K_END_SESSION, &es) == VTSM_OK)
        vtsm_abi_get_bool(es, VTSM_ABI_K_ACKNOWLEDGED, &ack);
    printf("[14] reclaim: K_SET_STOP + END_SESSION %s (%u DOE objects); streams freed, keys "
           "wiped; %s is %s\n",
           ack ? "acknowledged" : "not acknowledged", cd.exchanges - before, DEV,
           tstr(res, VTSM_ABI_K_STATE, s, sizeof(s)));
    cbor_decref(&res);

    vtsm_host_close(h);
    vtsm_doe_tcp_close(cd.tcp);
    cleanup();
    printf("[15] done  : tsmd and tsm-devemu stopped, the demo directory removed\n");
    return 0;
}
