/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tsm-demo - the whole flow with no configuration: start the emulated device and tsmd,
 * act as the host (carry every DOE object between them), connect, show what the TSM
 * verified, reclaim, clean up.
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

#define DEV "0000:01:00.0"

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

    char portfile[128], sock[128], doe[64];
    snprintf(portfile, sizeof(portfile), "%s/dev.port", workdir);
    snprintf(sock, sizeof(sock), "%s/tsmd.sock", workdir);

    printf("vtsm demo: a TSM authenticates an emulated TDISP device over host-proxied DOE\n\n");
    const char *dargs[] = {"--port", "0", "--port-file", portfile, NULL};
    int port = start("tsm-devemu", dargs) > 0 ? vtsm_proc_wait_port(portfile, 10000) : 0;
    if (!port) {
        fprintf(stderr, "tsm-demo: tsm-devemu did not start\n");
        return 1;
    }
    snprintf(doe, sizeof(doe), "tcp:127.0.0.1:%d", port);
    printf("[1] device : tsm-devemu serving SPDM over DOE (spdm-emu socket protocol) on "
           "127.0.0.1:%d\n",
           port);

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
    printf("[3] host   : registered %s under root port 0; its DOE mailbox is %s\n", DEV, doe);

    /* ---- device_connect: SPDM session, evidence, IDE ---- */
    cbor_item_t *res = NULL;
    struct vtsm_host_connect_opts opts = {.ide_streams = 1};
    long t0 = vtsm_now_ms();
    st = vtsm_host_device_connect_cbor(h, DEV, &opts, &res);
    long t1 = vtsm_now_ms();
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

    if (vtsm_host_ide_link_check_cbor(h, DEV, &res))
        return fail(h, "ide_link_check");
    printf("[5] link   : IDE link check: root port -> device %s, device -> root port %s "
           "(the host saw only ciphertext)\n",
           bool_at(res, VTSM_ABI_K_STREAMS, VTSM_ABI_K_RP_TO_DEVICE) ? "PASS" : "FAIL",
           bool_at(res, VTSM_ABI_K_STREAMS, VTSM_ABI_K_DEVICE_TO_RP) ? "PASS" : "FAIL");
    cbor_decref(&res);

    /* ---- a TVM whose credential the host never holds ---- */
    char keyp[128];
    snprintf(keyp, sizeof(keyp), "%s/guest.key", workdir);
    struct vtsm_guest *g = NULL;
    uint8_t pub[VTSM_GUEST_PUBKEY_SIZE];
    uint32_t tvm = 0;
    if (vtsm_guest_keygen(keyp) || vtsm_guest_open(keyp, 0, &g))
        return fail(h, "guest key");
    vtsm_guest_pubkey(g, pub);
    vtsm_guest_close(g);
    if (vtsm_host_tvm_create_cbor(h, "demo-tvm", pub, &tvm, &res))
        return fail(h, "tvm_create");
    cbor_decref(&res);
    if (vtsm_guest_open(keyp, tvm, &g))
        return fail(h, "guest open");
    printf("[6] tvm    : TVM %u created; the guest made its own P-256 key, the host registered "
           "only the public half\n",
           tvm);

    /* ---- bind: LOCK_INTERFACE, report fetched and validated ---- */
    char s[64];
    if (vtsm_host_tdi_bind_cbor(h, DEV, 0, tvm, 0, &res))
        return fail(h, "tdi_bind");
    const cbor_item_t *mmio = NULL;
    vtsm_abi_get_array(res, VTSM_ABI_K_MMIO, &mmio);
    /* the reported ranges, for the host's mappings below */
    uint64_t rpages[VTSM_TDISP_MAX_MMIO_RANGES] = {0}, rattr[VTSM_TDISP_MAX_MMIO_RANGES] = {0};
    size_t nranges = mmio ? cbor_array_size(mmio) : 0;
    for (size_t i = 0; i < nranges && i < VTSM_TDISP_MAX_MMIO_RANGES; i++) {
        vtsm_abi_get_uint(cbor_array_handle(mmio)[i], VTSM_ABI_K_PAGES, &rpages[i]);
        vtsm_abi_get_uint(cbor_array_handle(mmio)[i], VTSM_ABI_K_ATTRIBUTES, &rattr[i]);
    }
    printf("[7] bind   : TDI 0 -> TVM %u: %s; interface report validated (%zu MMIO ranges), "
           "MMIO/DMA still disabled\n",
           tvm, tstr(res, VTSM_ABI_K_STATE, s, sizeof(s)),
           mmio ? cbor_array_size(mmio) : (size_t)0);
    cbor_decref(&res);

    /* ---- the guest inspects: fresh evidence bound to its nonce, signed by the TSM ---- */
    uint8_t nonce[VTSM_GUEST_NONCE_SIZE];
    cbor_item_t *claims = NULL;
    const uint8_t *tok = NULL;
    size_t tok_len = 0;
    if (vtsm_random(nonce, sizeof(nonce)) ||
        vtsm_guest_call_cbor(g, h, VTSM_ABI_GOP_INFO, DEV, 0, nonce, NULL, &res))
        return fail(h, "guest info");
    if (vtsm_abi_get_bytes(res, VTSM_ABI_K_TOKEN, &tok, &tok_len) != VTSM_OK ||
        vtsm_guest_verify_token_cbor(tok, tok_len, NULL, nonce, &claims)) {
        fprintf(stderr, "tsm-demo: the TSM token did not verify: %s\n", vtsm_err_detail());
        return 1;
    }
    printf("[8] guest  : info with a fresh nonce: TSM-signed token VERIFIED; the TDI is %s, "
           "measurements taken after lock\n",
           tstr(claims, VTSM_ABI_K_STATE, s, sizeof(s)));
    cbor_decref(&claims);
    cbor_decref(&res);

    /* ---- MMIO and DMA: the host maps each range, the guest validates each, then DMA ---- */
    uint64_t gpa = 0x4000000000ull;
    size_t shared = 0;
    for (size_t i = 0; i < nranges && i < VTSM_TDISP_MAX_MMIO_RANGES; i++) {
        cbor_item_t *req = vtsm_abi_map_new();
        if (!req || vtsm_abi_put_tstr(req, VTSM_ABI_K_DEV, DEV) ||
            vtsm_abi_put_uint(req, VTSM_ABI_K_TDI, 0) ||
            vtsm_abi_put_uint(req, VTSM_ABI_K_RANGE, i) ||
            vtsm_abi_put_uint(req, VTSM_ABI_K_GPA, gpa) ||
            vtsm_host_call_cbor(h, VTSM_OP_TDI_MMIO_MAP, req, &res)) {
            if (req)
                cbor_decref(&req);
            return fail(h, "tdi_mmio_map");
        }
        cbor_decref(&req);
        cbor_decref(&res);
        /* locked without LOCK_MSIX: the MSI-X table and PBA stay shared (rule MMIO.10) */
        bool priv = !(rattr[i] & (VTSM_TDISP_RANGE_MSIX_TABLE | VTSM_TDISP_RANGE_MSIX_PBA |
                                  VTSM_TDISP_RANGE_IS_NON_TEE_MEM));
        struct vtsm_guest_mmio m = {
            .range = (uint32_t)i, .gpa = gpa, .pages = rpages[i], .shared = !priv};
        if (vtsm_guest_mmio_validate_cbor(g, h, DEV, 0, &m, &res))
            return fail(h, "guest mmio_validate");
        cbor_decref(&res);
        shared += !priv;
        gpa += rpages[i] * VTSM_TDISP_PAGE_SIZE;
    }
    if (vtsm_guest_dma_enable_cbor(g, h, DEV, 0, &res))
        return fail(h, "guest dma_enable");
    printf("[8b] mmio  : the host mapped %zu MMIO ranges at 0x4000000000.., the guest validated "
           "each (%zu shared: MSI-X), DMA %s\n",
           nranges, shared, tstr(res, VTSM_ABI_K_DMA, s, sizeof(s)));
    cbor_decref(&res);

    /* ---- accept: only the owning guest can; START_INTERFACE with the lock nonce ---- */
    if (vtsm_guest_call_cbor(g, h, VTSM_ABI_GOP_ACCEPT, DEV, 0, NULL, NULL, &res))
        return fail(h, "guest accept");
    bool mm = false, dma = false;
    vtsm_abi_get_bool(res, VTSM_ABI_K_MMIO_ENABLED, &mm);
    vtsm_abi_get_bool(res, VTSM_ABI_K_DMA_ENABLED, &dma);
    printf("[9] accept : the guest accepted TDI 0: %s, MMIO %s, DMA %s\n",
           tstr(res, VTSM_ABI_K_STATE, s, sizeof(s)), mm ? "enabled" : "disabled",
           dma ? "enabled" : "disabled");
    cbor_decref(&res);

    /* ---- unbind and reclaim ---- */
    if (vtsm_host_tdi_unbind_cbor(h, DEV, 0, &res))
        return fail(h, "tdi_unbind");
    printf("[10] unbind: STOP_INTERFACE; TDI 0 is %s, mappings revoked\n",
           tstr(res, VTSM_ABI_K_STATE, s, sizeof(s)));
    cbor_decref(&res);
    vtsm_guest_close(g);

    unsigned before = cd.exchanges;
    if (vtsm_host_device_reclaim_cbor(h, DEV, &res))
        return fail(h, "device_reclaim");
    const cbor_item_t *es = NULL;
    bool ack = false;
    if (vtsm_abi_get_map(res, VTSM_ABI_K_END_SESSION, &es) == VTSM_OK)
        vtsm_abi_get_bool(es, VTSM_ABI_K_ACKNOWLEDGED, &ack);
    printf("[11] reclaim: K_SET_STOP + END_SESSION %s (%u DOE objects); streams freed, keys "
           "wiped; %s is %s\n",
           ack ? "acknowledged" : "not acknowledged", cd.exchanges - before, DEV,
           tstr(res, VTSM_ABI_K_STATE, s, sizeof(s)));
    cbor_decref(&res);

    vtsm_host_close(h);
    vtsm_doe_tcp_close(cd.tcp);
    cleanup();
    printf("[12] done  : tsmd and tsm-devemu stopped\n");
    return 0;
}
