/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vtsm-bench - how far a full device_connect is from the cryptography it cannot avoid.
 *
 * Measured in one run, on this machine:
 *   connect  : median wall time of a full device_connect through real processes
 *              (tsmd + tsm-devemu + this process as the host relaying every DOE object)
 *   floor    : median time of the asymmetric operations one connect needs at minimum —
 *              requester and responder ECDHE key generation and derivation, the
 *              responder's two signatures (KEY_EXCHANGE_RSP, MEASUREMENTS) and the
 *              requester's four verifications (those two, plus intermediate and leaf
 *              certificate signatures in chain validation)
 *   ratio    : connect / floor (the overhead of protocol, IPC and everything else)
 *
 *   vtsm-bench [--iterations N] [--alg p384|p256]
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vtsm_abi.h"
#include "vtsm_crypto.h"
#include "vtsm_host.h"
#include "vtsm_proc.h"

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

static double median_ms(long long *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_ll);
    return (n % 2 ? (double)v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0) / 1e6;
}

static int load_key(const char *alg, EVP_PKEY **key)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/pki/%s/leaf.key", VTSM_SOURCE_DIR, alg);
    return vtsm_pkey_load_pem(path, key) == VTSM_OK ? 0 : -1;
}

/* One connect's worth of unavoidable asymmetric cryptography. */
static int floor_once(EVP_PKEY *key, enum vtsm_asym_alg asym, enum vtsm_hash_alg hash,
                      enum vtsm_dhe_group g)
{
    uint8_t pub_a[VTSM_DHE_PUB_MAX], pub_b[VTSM_DHE_PUB_MAX];
    uint8_t sa[VTSM_DHE_SECRET_MAX], sb[VTSM_DHE_SECRET_MAX];
    uint8_t sig[VTSM_SIG_MAX], msg[148];
    struct vtsm_dhe *a = NULL, *b = NULL;
    int rc = -1;
    memset(msg, 0x5a, sizeof(msg));
    if (vtsm_dhe_generate(g, &a, pub_a) || vtsm_dhe_generate(g, &b, pub_b) ||
        vtsm_dhe_derive(a, pub_b, vtsm_dhe_pub_size(g), sa) ||
        vtsm_dhe_derive(b, pub_a, vtsm_dhe_pub_size(g), sb))
        goto out;
    for (int i = 0; i < 2; i++)
        if (vtsm_ecdsa_sign(key, asym, hash, msg, sizeof(msg), sig))
            goto out;
    for (int i = 0; i < 4; i++)
        if (vtsm_ecdsa_verify(key, asym, hash, msg, sizeof(msg), sig, vtsm_sig_size(asym)))
            goto out;
    rc = 0;
out:
    vtsm_dhe_free(a);
    vtsm_dhe_free(b);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {{"iterations", required_argument, 0, 'n'},
                                       {"alg", required_argument, 0, 'a'},
                                       {0, 0, 0, 0}};
    int iters = 30, c;
    const char *alg = "p384";
    while ((c = getopt_long(argc, argv, "n:a:", lo, NULL)) != -1) {
        if (c == 'n' && atoi(optarg) > 0)
            iters = atoi(optarg);
        else if (c == 'a' && (!strcmp(optarg, "p384") || !strcmp(optarg, "p256")))
            alg = optarg;
        else {
            fprintf(stderr, "usage: vtsm-bench [--iterations N] [--alg p384|p256]\n");
            return 2;
        }
    }
    bool p384 = strcmp(alg, "p384") == 0;
    enum vtsm_asym_alg asym = p384 ? VTSM_ASYM_ECDSA_P384 : VTSM_ASYM_ECDSA_P256;
    enum vtsm_hash_alg hash = p384 ? VTSM_HASH_SHA384 : VTSM_HASH_SHA256;
    enum vtsm_dhe_group dhe = p384 ? VTSM_DHE_SECP384R1 : VTSM_DHE_SECP256R1;

    char bindir[PATH_MAX], dir[64] = "/tmp/vtsm-bench-XXXXXX", pf[128], sock[128], doe[64];
    if (vtsm_proc_self_dir(bindir, sizeof(bindir)) || !mkdtemp(dir))
        return 1;
    snprintf(pf, sizeof(pf), "%s/dev.port", dir);
    snprintf(sock, sizeof(sock), "%s/tsmd.sock", dir);
    const char *dargs[] = {"--port", "0", "--port-file", pf, "--alg", alg, NULL};
    const char *targs[] = {"--socket", sock, "--quiet", NULL};
    pid_t dev = vtsm_proc_start(bindir, "tsm-devemu", dargs, -1, -1);
    pid_t tsm = vtsm_proc_start(bindir, "tsmd", targs, -1, -1);
    int port = vtsm_proc_wait_port(pf, 10000);
    struct vtsm_host *h = NULL;
    struct vtsm_doe_tcp *tcp = NULL;
    int rc = 1;
    long long *conn = calloc((size_t)iters, sizeof(long long));
    long long *rec = calloc((size_t)iters, sizeof(long long));
    long long *flo = calloc((size_t)iters * 10, sizeof(long long));
    long long *ide = calloc((size_t)iters, sizeof(long long));
    EVP_PKEY *key = NULL;

    snprintf(doe, sizeof(doe), "tcp:127.0.0.1:%d", port);
    if (!port || vtsm_proc_wait_socket(sock, 10000) || vtsm_host_open(sock, &h) ||
        vtsm_doe_tcp_open(doe, &tcp) || vtsm_host_register_doe(h, "bench0", vtsm_doe_tcp_fn, tcp) ||
        vtsm_host_register_link(h, "bench0", vtsm_doe_tcp_link_fn, tcp) ||
        vtsm_host_device_add(h, "bench0", 0) || load_key(alg, &key) || !conn || !rec || !flo ||
        !ide) {
        fprintf(stderr, "vtsm-bench: setup failed\n");
        goto out;
    }
    /* one warm-up round, not counted */
    for (int i = -1; i < iters; i++) {
        struct vtsm_host_connect_opts o = {0};
        cbor_item_t *res = NULL;
        long long t0 = vtsm_now_ns();
        if (vtsm_host_device_connect(h, "bench0", &o, &res)) {
            fprintf(stderr, "vtsm-bench: connect failed: %s\n", vtsm_host_last_error(h)->detail);
            goto out;
        }
        long long t1 = vtsm_now_ns();
        cbor_decref(&res);
        if (vtsm_host_device_reclaim(h, "bench0", &res)) {
            fprintf(stderr, "vtsm-bench: reclaim failed\n");
            goto out;
        }
        long long t2 = vtsm_now_ns();
        cbor_decref(&res);
        if (i >= 0) {
            conn[i] = t1 - t0;
            rec[i] = t2 - t1;
        }
    }
    /* the same connect with one selective IDE stream: + QUERY, 6 KEY_PROG, 6 K_SET_GO, and
     * on reclaim 6 K_SET_STOP */
    for (int i = -1; i < iters; i++) {
        struct vtsm_host_connect_opts o = {.ide_streams = 1};
        cbor_item_t *res = NULL;
        long long t0 = vtsm_now_ns();
        if (vtsm_host_device_connect(h, "bench0", &o, &res)) {
            fprintf(stderr, "vtsm-bench: IDE connect failed: %s\n",
                    vtsm_host_last_error(h)->detail);
            goto out;
        }
        long long t1 = vtsm_now_ns();
        cbor_decref(&res);
        if (vtsm_host_device_reclaim(h, "bench0", &res)) {
            fprintf(stderr, "vtsm-bench: reclaim failed\n");
            goto out;
        }
        cbor_decref(&res);
        if (i >= 0)
            ide[i] = t1 - t0;
    }
    int nf = iters * 10;
    for (int i = 0; i < nf; i++) {
        long long t0 = vtsm_now_ns();
        if (floor_once(key, asym, hash, dhe)) {
            fprintf(stderr, "vtsm-bench: crypto floor failed\n");
            goto out;
        }
        flo[i] = vtsm_now_ns() - t0;
    }
    double mc = median_ms(conn, iters), mr = median_ms(rec, iters), mf = median_ms(flo, nf);
    double mi = median_ms(ide, iters);
    printf("vtsm-bench (%s, SPDM session + signed measurements over host-proxied DOE)\n", alg);
    printf("  device_connect median : %8.3f ms  (n=%d)\n", mc, iters);
    printf("  device_reclaim median : %8.3f ms  (n=%d)\n", mr, iters);
    printf("  connect + 1 IDE stream: %8.3f ms  (n=%d)\n", mi, iters);
    printf("  crypto floor median   : %8.3f ms  (n=%d: 2 ECDHE keygen + 2 derive, "
           "2 sign, 4 verify)\n",
           mf, nf);
    printf("  ratio connect/floor   : %8.2f\n", mc / mf);
    printf("  ratio IDE connect/floor: %7.2f\n", mi / mf);
    rc = 0;
out:
    EVP_PKEY_free(key);
    vtsm_host_close(h);
    vtsm_doe_tcp_close(tcp);
    vtsm_proc_stop(tsm, 3000);
    vtsm_proc_stop(dev, 3000);
    unlink(pf);
    unlink(sock);
    rmdir(dir);
    free(conn);
    free(rec);
    free(flo);
    free(ide);
    return rc;
}
