/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tsm-demo - the whole flow with no configuration: start the emulated device and tsmd,
 * act as the host (carry every DOE object between them), connect, show what the TSM
 * verified, reclaim, clean up.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vtsm_abi.h"
#include "vtsm_host.h"
#include "vtsm_proc.h"

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
    if (workdir[0]) {
        char p[128];
        snprintf(p, sizeof(p), "%s/dev.port", workdir);
        unlink(p);
        snprintf(p, sizeof(p), "%s/tsmd.sock", workdir);
        unlink(p);
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

static void print_connect(const cbor_item_t *res)
{
    char a[64], b[64], c[64], d[64], e[64];
    const cbor_item_t *alg = NULL, *trust = NULL, *meas = NULL, *blocks = NULL;
    uint64_t sid = 0;
    const uint8_t *chain = NULL;
    size_t chain_len = 0;
    bool trusted = false;

    vtsm_abi_get_map(res, "algorithms", &alg);
    printf("      SPDM %s: %s, %s, DHE %s, %s\n", tstr(res, "version", a, sizeof(a)),
           tstr(alg, "asym", b, sizeof(b)), tstr(alg, "hash", c, sizeof(c)),
           tstr(alg, "dhe", d, sizeof(d)), tstr(alg, "aead", e, sizeof(e)));
    vtsm_abi_get_bytes(res, "cert_chain", &chain, &chain_len);
    if (vtsm_abi_get_map(res, "trust", &trust) == VTSM_OK)
        vtsm_abi_get_bool(trust, "trusted", &trusted);
    printf("      certificate chain: %zu bytes, %s (%s)\n", chain_len,
           trusted ? "TRUSTED" : "NOT TRUSTED", tstr(trust, "reason", a, sizeof(a)));
    vtsm_abi_get_uint(res, "session_id", &sid);
    printf("      secure session 0x%08llx established (KEY_EXCHANGE signature + verify data "
           "checked)\n",
           (unsigned long long)sid);
    if (vtsm_abi_get_map(res, "measurements", &meas) == VTSM_OK &&
        vtsm_abi_get_array(meas, "blocks", &blocks) == VTSM_OK) {
        size_t n = cbor_array_size(blocks);
        printf("      %zu signed measurement blocks (fresh nonce, signature verified):\n", n);
        for (size_t i = 0; i < n; i++) {
            const cbor_item_t *blk = cbor_array_handle(blocks)[i];
            uint64_t index = 0, type = 0;
            const uint8_t *v = NULL;
            size_t vl = 0;
            char hex[64] = "";
            vtsm_abi_get_uint(blk, "index", &index);
            vtsm_abi_get_uint(blk, "type", &type);
            vtsm_abi_get_bytes(blk, "value", &v, &vl);
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
        vtsm_host_device_add(h, DEV, 0)) {
        fprintf(stderr, "tsm-demo: device setup failed: %s\n", vtsm_host_last_error(h)->detail);
        return 1;
    }
    printf("[3] host   : registered %s under root port 0; its DOE mailbox is %s\n", DEV, doe);

    cbor_item_t *res = NULL;
    struct vtsm_host_connect_opts opts = {0};
    long t0 = vtsm_now_ms();
    st = vtsm_host_device_connect(h, DEV, &opts, &res);
    long t1 = vtsm_now_ms();
    if (st) {
        const struct vtsm_host_error *err = vtsm_host_last_error(h);
        fprintf(stderr, "tsm-demo: device_connect failed: %s (%s): %s\n", err->name, err->source,
                err->detail);
        return 1;
    }
    printf("[4] connect: device_connect done in %ld ms; the host carried %u DOE objects "
           "(the secured ones it can neither read nor forge)\n",
           t1 - t0, cd.exchanges);
    print_connect(res);
    cbor_decref(&res);

    if (vtsm_host_status(h, DEV, &res) == VTSM_OK) {
        const cbor_item_t *devs = NULL;
        char s[32] = "?";
        if (vtsm_abi_get_array(res, "devices", &devs) == VTSM_OK && cbor_array_size(devs) == 1)
            tstr(cbor_array_handle(devs)[0], "state", s, sizeof(s));
        printf("[5] status : %s is %s\n", DEV, s);
        cbor_decref(&res);
    }

    unsigned before = cd.exchanges;
    st = vtsm_host_device_reclaim(h, DEV, &res);
    if (st) {
        fprintf(stderr, "tsm-demo: device_reclaim failed: %s\n", vtsm_host_last_error(h)->detail);
        return 1;
    }
    const cbor_item_t *es = NULL;
    bool ack = false;
    char s[32];
    if (vtsm_abi_get_map(res, "end_session", &es) == VTSM_OK)
        vtsm_abi_get_bool(es, "acknowledged", &ack);
    printf("[6] reclaim: END_SESSION %s (%u DOE objects); session keys wiped; %s is %s\n",
           ack ? "acknowledged" : "not acknowledged", cd.exchanges - before, DEV,
           tstr(res, "state", s, sizeof(s)));
    cbor_decref(&res);

    vtsm_host_close(h);
    vtsm_doe_tcp_close(cd.tcp);
    cleanup();
    printf("[7] done   : tsmd and tsm-devemu stopped\n");
    return 0;
}
