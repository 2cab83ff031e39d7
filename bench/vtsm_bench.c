/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vtsm-bench - how far a full device_connect is from what it cannot avoid.
 *
 * Measured in one run, on this machine, with real tsmd and tsm-devemu processes and this
 * process as the host relaying every DOE object over the spdm-emu TCP protocol:
 *
 *   connect_ms       median wall time of a full device_connect (blocking host API)
 *   exchanges        DOE exchanges in one connect (counted by the host's trace hook)
 *   crypto_floor_ms  median thread CPU time (CLOCK_THREAD_CPUTIME_ID) of the asymmetric
 *                    work one connect needs at minimum: two ephemeral ECDH key
 *                    generations, two ECDH derivations (peer point decoded and checked
 *                    once, as the import does; no second public-key check), the
 *                    device's two signatures (KEY_EXCHANGE_RSP, MEASUREMENTS) and the
 *                    TSM's four verifications (those two, plus the intermediate and leaf
 *                    certificates). Measured between the connects, interleaved with
 *                    them, so both see the same CPU state.
 *   relay_floor_ms   exchanges x the median round trip of a bare DOE object over the
 *                    same path with trivial endpoints: an in-bench endpoint speaking the
 *                    tsmd socket ABI (sends DOE_PENDING, waits for DOE_RESPONSE) on a
 *                    Unix socket, this host shim, and an echoing spdm-emu TCP endpoint;
 *                    sampled after every connect too
 *   connect_floor_ratio       connect / (crypto floor + relay floor), each connect against
 *                    the floor and relay samples taken right after it; the median of
 *                    those ratios (connect_medians_ratio: the ratio of the medians)
 *   ide_connect_floor_ratio   the same for a connect with one selective IDE stream
 *   connect_cpu_ms   CPU time per connect of tsmd, the device and the relaying host;
 *                    connect_work_ratio = (tsmd + device) / crypto floor
 *   concurrent_ratio          N devices (default 16) connecting at once through ONE
 *                    fd-driven host handle with asynchronous DOE callbacks, each
 *                    device answering every DOE object after --latency-us (tsm-devemu
 *                    --latency-us), divided by one connect with the same latency
 *
 *   split_rtt_ms     the round trip against a peer writing frames in four pieces (vtsm-split-peer)
 *
 *   vtsm-bench [--json] [--alg p384|p256] [--iterations N] [--rounds N] [--devices N]
 *              [--latency-us N]
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "vtsm_abi.h"
#include "vtsm_crypto.h"
#include "vtsm_guest_cbor.h"
#include "vtsm_host_cbor.h"
#include "vtsm_proc.h"
#include "vtsm_sock.h"

#define MAX_DEVICES  64
#define FLOOR_PER_IT 3  /* crypto floor samples taken after each connect */
#define RELAY_PER_IT 16 /* bare relay round trips measured after each connect */

struct opts {
    bool json;
    const char *alg;
    int iterations;
    int rounds;
    int devices;
    int latency_us;
};

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

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median_d(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_d);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

/* The median (ms) of a[i] + b[i] (ns) over i < n; -1 without memory. */
static double median_sum_ms(const long long *a, const long long *b, int n)
{
    long long *v = calloc((size_t)n, sizeof(*v));
    if (!v)
        return -1;
    for (int i = 0; i < n; i++)
        v[i] = a[i] + b[i];
    double m = median_ms(v, n);
    free(v);
    return m;
}

static long long thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ------------------------------------------------------------ crypto floor */

struct floor_ctx {
    EVP_PKEY *key; /* the device's leaf key (signs; its public half verifies) */
    enum vtsm_asym_alg asym;
    enum vtsm_hash_alg hash;
    const char *group;
};

static int load_key(const char *alg, EVP_PKEY **key)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/pki/%s/leaf.key", VTSM_SOURCE_DIR, alg);
    return vtsm_pkey_load_pem(path, key) == VTSM_OK ? 0 : -1;
}

static EVP_PKEY *ecdh_keygen(const char *group)
{
    EVP_PKEY *k = NULL;
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (!c || EVP_PKEY_keygen_init(c) <= 0 || EVP_PKEY_CTX_set_group_name(c, group) <= 0 ||
        EVP_PKEY_keygen(c, &k) <= 0)
        k = NULL;
    EVP_PKEY_CTX_free(c);
    return k;
}

/* The peer's public point as it arrives on the wire, decoded (which checks it is on the
 * curve) and used for one derivation without a further check. */
static int ecdh_derive(const char *group, EVP_PKEY *mine, EVP_PKEY *peer_key)
{
    uint8_t point[1 + VTSM_DHE_PUB_MAX], secret[VTSM_DHE_SECRET_MAX];
    size_t plen = 0, slen = sizeof(secret);
    int rc = -1;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ic = NULL, *dc = NULL;
    EVP_PKEY *peer = NULL;
    if (EVP_PKEY_get_octet_string_param(peer_key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
                                        sizeof(point), &plen) <= 0)
        goto out;
    bld = OSSL_PARAM_BLD_new();
    if (!bld || !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, plen))
        goto out;
    params = OSSL_PARAM_BLD_to_param(bld);
    ic = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (!params || !ic || EVP_PKEY_fromdata_init(ic) <= 0 ||
        EVP_PKEY_fromdata(ic, &peer, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        goto out;
    dc = EVP_PKEY_CTX_new_from_pkey(NULL, mine, NULL);
    if (!dc || EVP_PKEY_derive_init(dc) <= 0 || EVP_PKEY_derive_set_peer_ex(dc, peer, 0) <= 0 ||
        EVP_PKEY_derive(dc, secret, &slen) <= 0)
        goto out;
    rc = 0;
out:
    OPENSSL_cleanse(secret, sizeof(secret));
    EVP_PKEY_free(peer);
    EVP_PKEY_CTX_free(dc);
    EVP_PKEY_CTX_free(ic);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    return rc;
}

/* One connect's worth of unavoidable asymmetric cryptography; thread CPU ns or -1. */
static long long floor_once(const struct floor_ctx *f)
{
    uint8_t sig[VTSM_SIG_MAX], msg[148];
    memset(msg, 0x5a, sizeof(msg));
    long long t0 = thread_cpu_ns();
    EVP_PKEY *a = ecdh_keygen(f->group), *b = ecdh_keygen(f->group);
    int rc = a && b && !ecdh_derive(f->group, a, b) && !ecdh_derive(f->group, b, a) ? 0 : -1;
    for (int i = 0; i < 2 && rc == 0; i++)
        rc = vtsm_ecdsa_sign(f->key, f->asym, f->hash, msg, sizeof(msg), sig) ? -1 : 0;
    for (int i = 0; i < 4 && rc == 0; i++)
        rc = vtsm_ecdsa_verify(f->key, f->asym, f->hash, msg, sizeof(msg), sig,
                               vtsm_sig_size(f->asym))
                 ? -1
                 : 0;
    long long t1 = thread_cpu_ns();
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
    return rc == 0 ? t1 - t0 : -1;
}

/* ------------------------------------------------------- blocking connects */

/* Counts the DOE objects the host relays (trace hook). */
static void count_doe(void *ctx, enum vtsm_host_trace_dir dir, const char *dev, const uint8_t *p,
                      size_t len)
{
    (void)dev;
    (void)p;
    (void)len;
    if (dir == VTSM_HOST_TRACE_DOE_REQ)
        ++*(int *)ctx;
}

/* CPU time (ns) all threads of pid have run, from /proc/PID/task/TID/schedstat (the
 * scheduler's own nanosecond count; /proc/PID/stat counts clock ticks). */
static long long proc_sched_ns(pid_t pid)
{
    char path[96], buf[128];
    snprintf(path, sizeof(path), "/proc/%ld/task", (long)pid);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    long long sum = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/proc/%ld/task/%.16s/schedstat", (long)pid, e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        unsigned long long ns = 0;
        if (fgets(buf, sizeof(buf), f) && sscanf(buf, "%llu", &ns) == 1)
            sum += (long long)ns;
        fclose(f);
    }
    closedir(d);
    return sum;
}

/* What the timed connects collect, one slot per iteration (the floor and relay samples
 * FLOOR_PER_IT and RELAY_PER_IT per iteration, appended). */
struct samples {
    long long *conn;     /* wall time of each connect */
    long long *tsm_cpu;  /* tsmd's CPU time (all threads) during it */
    long long *dev_cpu;  /* the device's CPU time during it */
    long long *host_cpu; /* this thread's (the host relaying every DOE object) */
    long long *flo;      /* crypto floor samples */
    int nflo;
    long long *rel; /* bare relay round trips */
    int nrel;
};

static int relay_rtt(const char *dir, int rounds, long long *out);

/* Median over the iterations of connect / (floor + exchanges x relay round trip), each
 * with the baselines sampled right after that connect. Call before anything sorts s. */
static double paired_ratio(const struct samples *s, int iterations, int exchanges)
{
    double *r = calloc((size_t)iterations, sizeof(double));
    if (!r)
        return -1;
    for (int i = 0; i < iterations; i++) {
        long long f[FLOOR_PER_IT], q[RELAY_PER_IT];
        memcpy(f, s->flo + i * FLOOR_PER_IT, sizeof(f));
        memcpy(q, s->rel + i * RELAY_PER_IT, sizeof(q));
        double base = median_ms(f, FLOOR_PER_IT) + exchanges * median_ms(q, RELAY_PER_IT);
        r[i] = s->conn[i] / 1e6 / base;
    }
    double m = median_d(r, iterations);
    free(r);
    return m;
}

/*
 * iterations connect + reclaim rounds (one more as warm-up) with ide_streams; after each,
 * FLOOR_PER_IT crypto floor samples and RELAY_PER_IT bare relay round trips, so that
 * every baseline is measured interleaved with the connects it is compared with.
 * *exchanges gets the DOE objects of the last connect.
 */
static int connect_loop(struct vtsm_host *h, int *counter, const struct opts *o, unsigned ide,
                        const struct floor_ctx *f, const pid_t *pids, const char *dir,
                        struct samples *s, int *exchanges)
{
    for (int i = -1; i < o->iterations; i++) {
        struct vtsm_host_connect_opts co = {.ide_streams = ide};
        cbor_item_t *res = NULL;
        *counter = 0;
        long long c0 = proc_sched_ns(pids[0]), d0 = proc_sched_ns(pids[1]);
        long long h0 = thread_cpu_ns(), t0 = vtsm_now_ns();
        if (vtsm_host_device_connect_cbor(h, "0000:01:00.0", &co, &res)) {
            fprintf(stderr, "vtsm-bench: connect failed: %s\n", vtsm_host_last_error(h)->detail);
            if (res)
                cbor_decref(&res);
            return -1;
        }
        long long t1 = vtsm_now_ns(), h1 = thread_cpu_ns();
        long long c1 = proc_sched_ns(pids[0]), d1 = proc_sched_ns(pids[1]);
        *exchanges = *counter;
        cbor_decref(&res);
        if (vtsm_host_device_reclaim_cbor(h, "0000:01:00.0", &res)) {
            fprintf(stderr, "vtsm-bench: reclaim failed: %s\n", vtsm_host_last_error(h)->detail);
            if (res)
                cbor_decref(&res);
            return -1;
        }
        cbor_decref(&res);
        if (i < 0)
            continue;
        s->conn[i] = t1 - t0;
        s->tsm_cpu[i] = c1 - c0;
        s->dev_cpu[i] = d1 - d0;
        s->host_cpu[i] = h1 - h0;
        for (int k = 0; k < FLOOR_PER_IT; k++) {
            long long ns = floor_once(f);
            if (ns < 0) {
                fprintf(stderr, "vtsm-bench: crypto floor failed\n");
                return -1;
            }
            s->flo[s->nflo++] = ns;
        }
        if (relay_rtt(dir, RELAY_PER_IT, s->rel + s->nrel)) {
            fprintf(stderr, "vtsm-bench: relay round trip failed\n");
            return -1;
        }
        s->nrel += RELAY_PER_IT;
    }
    return 0;
}

/* ------------------------------------------------------------ relay floor */

/* The echoing spdm-emu endpoint: every frame goes back as it came. */
struct echo {
    int lfd;
    pthread_t th;
};

static void *echo_main(void *arg)
{
    struct echo *e = arg;
    int fd = accept(e->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    vtsm_sock_nodelay(fd);
    struct vtsm_buf in = {0};
    uint32_t cmd, transport;
    while (vtsm_sock_recv(fd, &cmd, &transport, &in, 1u << 20, -1) == VTSM_OK &&
           vtsm_sock_send(fd, cmd, transport, in.data, in.len) == VTSM_OK) {
    }
    vtsm_buf_free(&in);
    close(fd);
    return NULL;
}

/* The minimal tsmd-ABI endpoint: HELLO, then for the one verb it gets, rounds
 * DOE_PENDING / DOE_RESPONSE round trips (each timed), then RESULT. */
struct abi_end {
    int lfd;
    pthread_t th;
    int rounds;
    long long *rtt;
    int ok;
};

static void *abi_main(void *arg)
{
    struct abi_end *a = arg;
    static const uint8_t obj[12] = {0x01, 0x00, 0x01, 0x00, 0x03, 0x00,
                                    0x00, 0x00, 0x12, 0x84, 0x00, 0x00}; /* GET_VERSION */
    cbor_item_t *m = NULL;
    uint64_t id = 0, op = 0;
    int fd = accept(a->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    /* HELLO */
    if (vtsm_abi_recv(fd, &m, 10000) || vtsm_abi_get_id(m, &id))
        goto out;
    cbor_decref(&m);
    m = vtsm_abi_result_msg(id);
    if (!m || vtsm_abi_put_uint(m, VTSM_ABI_K_VERSION, VTSM_ABI_VERSION) || vtsm_abi_send(fd, m))
        goto out;
    cbor_decref(&m);
    /* the verb */
    if (vtsm_abi_recv(fd, &m, 10000) || vtsm_abi_get_id(m, &id))
        goto out;
    cbor_decref(&m);
    for (int i = 0; i < a->rounds; i++) {
        long long t0 = vtsm_now_ns();
        m = vtsm_abi_doe_pending_msg(id, "relay0", (uint64_t)i, obj, sizeof(obj));
        if (!m || vtsm_abi_send(fd, m))
            goto out;
        cbor_decref(&m);
        if (vtsm_abi_recv(fd, &m, 10000) || vtsm_abi_get_op(m, &op) ||
            op != VTSM_ABI_OP_DOE_RESPONSE || !vtsm_abi_find(m, VTSM_ABI_K_OBJECT))
            goto out;
        cbor_decref(&m);
        a->rtt[i] = vtsm_now_ns() - t0;
    }
    m = vtsm_abi_result_msg(id);
    if (m && vtsm_abi_send(fd, m) == VTSM_OK)
        a->ok = 1;
out:
    if (m)
        cbor_decref(&m);
    /* wait for the host to hang up */
    if (vtsm_abi_recv(fd, &m, 10000) == VTSM_OK && m)
        cbor_decref(&m);
    close(fd);
    return NULL;
}

static int unix_listen(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t n = strlen(path);
    if (n >= sizeof(sa.sun_path))
        return -1;
    memcpy(sa.sun_path, path, n + 1);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -1;
    if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) || listen(s, 4)) {
        close(s);
        return -1;
    }
    return s;
}

/* rounds round trips (ns, into out[]) of a bare DOE object: ABI endpoint -> host shim ->
 * TCP echo, on a path set up for them and torn down after. */
static int relay_rtt(const char *dir, int rounds, long long *out)
{
    char path[128], doe[64];
    struct echo e = {.lfd = -1};
    struct abi_end a = {.lfd = -1, .rounds = rounds};
    struct vtsm_host *h = NULL;
    struct vtsm_doe_tcp *tcp = NULL;
    bool echo_up = false, abi_up = false;
    uint16_t port = 0;
    int rc = -1;
    snprintf(path, sizeof(path), "%s/relay.sock", dir);
    a.rtt = out;
    if (!a.rtt || vtsm_tcp_listen("127.0.0.1", 0, &e.lfd, &port) != VTSM_OK ||
        (a.lfd = unix_listen(path)) < 0)
        goto out;
    echo_up = pthread_create(&e.th, NULL, echo_main, &e) == 0;
    abi_up = echo_up && pthread_create(&a.th, NULL, abi_main, &a) == 0;
    snprintf(doe, sizeof(doe), "tcp:127.0.0.1:%u", port);
    if (!abi_up || vtsm_host_open(path, &h) || vtsm_doe_tcp_open(doe, &tcp) ||
        vtsm_host_register_doe(h, "relay0", vtsm_doe_tcp_fn, tcp))
        goto out;
    cbor_item_t *res = NULL;
    vtsm_status st = vtsm_host_device_connect_cbor(h, "relay0", NULL, &res);
    if (res)
        cbor_decref(&res);
    if (st != VTSM_OK)
        goto out;
    rc = 0;
out:
    vtsm_host_close(h);      /* the ABI endpoint sees EOF */
    vtsm_doe_tcp_close(tcp); /* the echo endpoint sees EOF */
    /* a thread still in accept() returns once its listening socket is shut down */
    if (e.lfd >= 0)
        shutdown(e.lfd, SHUT_RDWR);
    if (a.lfd >= 0)
        shutdown(a.lfd, SHUT_RDWR);
    if (abi_up)
        pthread_join(a.th, NULL);
    if (echo_up)
        pthread_join(e.th, NULL);
    if (!a.ok)
        rc = -1;
    if (e.lfd >= 0)
        close(e.lfd);
    if (a.lfd >= 0)
        close(a.lfd);
    unlink(path);
    return rc;
}

/* ------------------------------------------------- many devices, one loop */

struct conc {
    const pid_t *pids; /* tsmd and the devices, for their CPU time */
    int npids;
    struct vtsm_host *h;
    struct vtsm_doe_tcp *tcp[MAX_DEVICES];
    char name[MAX_DEVICES][20];
    int n;
    int done;
    int failed;
};

/* split_rtt_ms: median round trip of a 64-byte DOE object through the host shim's TCP
 * backend to vtsm-split-peer, which writes each answer in four pieces without
 * TCP_NODELAY as the reference peers and QEMU do (after SPLIT_WARMUP exchanges, so
 * Linux's initial quick-ACK mode is over). */
#define SPLIT_WARMUP 20
#define SPLIT_ROUNDS 200
static int split_rtt(const char *bindir, const char *dir, double *ms)
{
    char pf[128], spec[64];
    snprintf(pf, sizeof(pf), "%s/split.port", dir);
    const char *args[] = {"--port-file", pf, NULL};
    pid_t pid = vtsm_proc_start(bindir, "vtsm-split-peer", args, -1, -1);
    if (pid < 0)
        return -1;
    int port = vtsm_proc_wait_port(pf, 10000), rc = -1;
    struct vtsm_doe_tcp *t = NULL;
    long long d[SPLIT_ROUNDS];
    snprintf(spec, sizeof(spec), "tcp:127.0.0.1:%d,end=shutdown", port);
    if (port > 0 && vtsm_doe_tcp_open(spec, &t) == VTSM_OK) {
        uint8_t req[64] = {0}, rsp[128];
        int i;
        for (i = 0; i < SPLIT_WARMUP + SPLIT_ROUNDS; i++) {
            size_t len = sizeof(rsp);
            long long t0 = vtsm_now_ns();
            if (vtsm_doe_tcp_fn(t, req, sizeof(req), rsp, &len) != 0 || len != sizeof(req))
                break;
            if (i >= SPLIT_WARMUP)
                d[i - SPLIT_WARMUP] = vtsm_now_ns() - t0;
        }
        if (i == SPLIT_WARMUP + SPLIT_ROUNDS) {
            *ms = median_ms(d, SPLIT_ROUNDS);
            rc = 0;
        }
    }
    vtsm_doe_tcp_close(t); /* SHUTDOWN: the peer exits */
    vtsm_proc_stop(pid, 3000);
    unlink(pf);
    return rc;
}

static void conc_done(void *ctx, vtsm_status st, const cbor_item_t *result)
{
    struct conc *c = ctx;
    (void)result;
    c->done++;
    if (st != VTSM_OK) {
        c->failed++;
        fprintf(stderr, "vtsm-bench: concurrent verb failed: %s\n",
                vtsm_host_last_error(c->h)->detail);
    }
}

/* Run the event loop until want verbs completed: the TSM connection and every busy
 * device connection in one poll. */
static int conc_loop(struct conc *c, int want)
{
    struct pollfd p[MAX_DEVICES + 1];
    int who[MAX_DEVICES + 1];
    while (c->done < want) {
        int n = 0;
        p[n] = (struct pollfd){.fd = vtsm_host_fd(c->h), .events = POLLIN};
        who[n++] = -1;
        for (int i = 0; i < c->n; i++) {
            if (vtsm_doe_tcp_busy(c->tcp[i]) && vtsm_doe_tcp_fd(c->tcp[i]) >= 0) {
                p[n] = (struct pollfd){.fd = vtsm_doe_tcp_fd(c->tcp[i]), .events = POLLIN};
                who[n++] = i;
            }
        }
        int r = poll(p, (nfds_t)n, 30000);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            fprintf(stderr, "vtsm-bench: event loop stalled\n");
            return -1;
        }
        for (int k = 1; k < n; k++)
            if (p[k].revents && vtsm_doe_tcp_service(c->tcp[who[k]]) != VTSM_OK)
                return -1;
        if (p[0].revents && vtsm_host_dispatch(c->h) != VTSM_OK)
            return -1;
    }
    return c->failed ? -1 : 0;
}

/* CPU time (user + system, ns) used so far by pid (0: this process), from /proc. */
static long long proc_cpu_ns(pid_t pid)
{
    char path[64], buf[1024];
    if (pid)
        snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    else
        snprintf(path, sizeof(path), "/proc/self/stat");
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* fields after "(comm)": state is field 3, utime 14, stime 15 */
    const char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    return (long long)((ut + st) * (1000000000ULL / (unsigned long long)sysconf(_SC_CLK_TCK)));
}

/* CPU time of this process, tsmd and the devices together. */
static long long all_cpu_ns(const struct conc *c)
{
    long long sum = proc_cpu_ns(0);
    for (int i = 0; i < c->npids; i++)
        sum += proc_cpu_ns(c->pids[i]);
    return sum;
}

/* Connect devices [0, n) at once and return the wall time (ns), then reclaim them.
 * *cpu gets the CPU time all processes used meanwhile, *loop_cpu that of this thread
 * (the host's event loop). */
static long long conc_round(struct conc *c, int n, long long *cpu, long long *loop_cpu)
{
    c->done = c->failed = 0;
    long long c0 = all_cpu_ns(c), l0 = thread_cpu_ns(), t0 = vtsm_now_ns();
    for (int i = 0; i < n; i++)
        if (vtsm_host_connect_start_cbor(c->h, c->name[i], NULL, conc_done, c))
            return -1;
    if (conc_loop(c, n))
        return -1;
    long long t = vtsm_now_ns() - t0;
    *loop_cpu = thread_cpu_ns() - l0;
    *cpu = all_cpu_ns(c) - c0;
    c->done = 0;
    for (int i = 0; i < n; i++)
        if (vtsm_host_reclaim_start_cbor(c->h, c->name[i], conc_done, c))
            return -1;
    return conc_loop(c, n) ? -1 : t;
}

/* ------------------------------------------------------------------- main */

/* ---- guest INFO throughput: guests asking the TSM about their bound TDI ---- */

#define GUESTS   4   /* one TVM and one bound TDI each (the device's default 4 TDIs) */
#define GUEST_MS 300 /* how long each measurement runs */

struct guest_run {
    const char *sock;
    struct vtsm_guest *g;
    uint32_t tdi;
    long long until_ns;
    long count;
    bool failed;
};

static long long mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* One guest on its own connection: INFO (no nonce) again and again until the deadline. */
static void *guest_main(void *arg)
{
    struct guest_run *r = arg;
    struct vtsm_host *conn = NULL;
    if (vtsm_guest_connect(r->sock, "vtsm-bench", &conn) != VTSM_OK) {
        r->failed = true;
        return NULL;
    }
    while (mono_ns() < r->until_ns) {
        cbor_item_t *res = NULL;
        vtsm_status st = vtsm_guest_call_cbor(r->g, conn, VTSM_ABI_GOP_INFO, "0000:01:00.0", r->tdi,
                                              NULL, NULL, &res);
        if (res)
            cbor_decref(&res);
        if (st != VTSM_OK) {
            r->failed = true;
            break;
        }
        r->count++;
    }
    vtsm_host_close(conn);
    return NULL;
}

/* INFO answers per second with n guests at once (n <= GUESTS); < 0 on failure. */
static double guest_rate(struct guest_run *runs, int n)
{
    pthread_t th[GUESTS];
    long long t0 = mono_ns(), total = 0;
    int started = 0;
    for (int i = 0; i < n; i++) {
        runs[i].count = 0;
        runs[i].until_ns = t0 + GUEST_MS * 1000000LL;
        if (pthread_create(&th[i], NULL, guest_main, &runs[i]) != 0)
            break;
        started++;
    }
    bool failed = started < n;
    for (int i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
        total += runs[i].count;
        failed |= runs[i].failed;
    }
    double secs = (mono_ns() - t0) / 1e9;
    return failed ? -1 : total / secs;
}

/* Connect the plain device, give each guest a TVM and bind it one TDI. */
static int guest_setup(struct vtsm_host *h, const char *dir, const char *sock,
                       struct guest_run *runs)
{
    if (vtsm_host_device_connect_cbor(h, "0000:01:00.0", NULL, NULL) != VTSM_OK)
        return -1;
    for (int i = 0; i < GUESTS; i++) {
        char path[128], name[16];
        uint8_t pub[VTSM_GUEST_PUBKEY_SIZE];
        uint32_t tvm = 0;
        struct vtsm_guest *k = NULL;
        snprintf(path, sizeof(path), "%s/guest%d.key", dir, i);
        snprintf(name, sizeof(name), "bench%d", i);
        if (vtsm_guest_keygen(path) != VTSM_OK || vtsm_guest_open(path, 0, &k) != VTSM_OK)
            return -1;
        vtsm_guest_pubkey(k, pub);
        vtsm_guest_close(k);
        if (vtsm_host_tvm_create_cbor(h, name, pub, &tvm, NULL) != VTSM_OK ||
            vtsm_guest_open(path, tvm, &runs[i].g) != VTSM_OK ||
            vtsm_host_tdi_bind_cbor(h, "0000:01:00.0", (uint32_t)i, tvm, 0, NULL) != VTSM_OK)
            return -1;
        unlink(path);
        runs[i].sock = sock;
        runs[i].tdi = (uint32_t)i;
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vtsm-bench [--json] [--alg p384|p256] [--iterations N] [--rounds N]\n"
            "                  [--devices N] [--latency-us N]\n"
            "  --json          print one JSON object (fields: docs/integration.md)\n"
            "  --alg ALG       device key / session algorithms (default p384)\n"
            "  --iterations N  timed connects, plain and with one IDE stream (default 30)\n"
            "  --rounds N      timed rounds of the latency test (default 5)\n"
            "  --devices N     devices connecting at once in the latency test (default 16, "
            "max %d)\n"
            "  --latency-us N  simulated DOE latency of those devices (default 1000)\n",
            MAX_DEVICES);
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    static const struct option lo[] = {
        {"json", no_argument, 0, 'j'},          {"iterations", required_argument, 0, 'n'},
        {"alg", required_argument, 0, 'a'},     {"rounds", required_argument, 0, 'r'},
        {"devices", required_argument, 0, 'd'}, {"latency-us", required_argument, 0, 'l'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    int c;
    *o = (struct opts){
        .alg = "p384", .iterations = 30, .rounds = 5, .devices = 16, .latency_us = 1000};
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        int v = optarg ? atoi(optarg) : 0;
        if (c == 'j')
            o->json = true;
        else if (c == 'n' && v > 0)
            o->iterations = v;
        else if (c == 'r' && v > 0)
            o->rounds = v;
        else if (c == 'd' && v > 0 && v <= MAX_DEVICES)
            o->devices = v;
        else if (c == 'l' && v >= 0 && optarg[0] >= '0' && optarg[0] <= '9')
            o->latency_us = v;
        else if (c == 'a' && (!strcmp(optarg, "p384") || !strcmp(optarg, "p256")))
            o->alg = optarg;
        else if (c == 'h') {
            usage(stdout);
            exit(0);
        } else {
            usage(stderr);
            return -1;
        }
    }
    return optind == argc ? 0 : -1;
}

int main(int argc, char **argv)
{
    struct opts o;
    if (parse_args(argc, argv, &o))
        return 2;
    signal(SIGPIPE, SIG_IGN);
    bool p384 = strcmp(o.alg, "p384") == 0;
    struct floor_ctx fl = {.asym = p384 ? VTSM_ASYM_ECDSA_P384 : VTSM_ASYM_ECDSA_P256,
                           .hash = p384 ? VTSM_HASH_SHA384 : VTSM_HASH_SHA256,
                           .group = p384 ? "secp384r1" : "prime256v1"};

    char bindir[PATH_MAX], dir[64] = "/tmp/vtsm-bench-XXXXXX", pf[128], sock[128], doe[64];
    char lat[16], gdir[64] = "/dev/shm/vtsm-bench-XXXXXX";
    if (vtsm_proc_self_dir(bindir, sizeof(bindir)) || !mkdtemp(dir))
        return 1;
    snprintf(lat, sizeof(lat), "%d", o.latency_us);
    snprintf(sock, sizeof(sock), "%s/tsmd.sock", dir);
    pid_t pids[MAX_DEVICES + 2];
    int npids = 0, ports[MAX_DEVICES + 1] = {0};
    const char *targs[] = {"--socket", sock, "--quiet", NULL};
    pids[npids++] = vtsm_proc_start(bindir, "tsmd", targs, -1, -1);
    /* device 0: no latency (the floor comparison); 1..devices: with latency */
    for (int i = 0; i <= o.devices; i++) {
        snprintf(pf, sizeof(pf), "%s/dev%d.port", dir, i);
        const char *dargs[] = {"--port",       "0",           "--port-file", pf, "--alg", o.alg,
                               "--latency-us", i ? lat : "0", NULL};
        pids[npids++] = vtsm_proc_start(bindir, "tsm-devemu", dargs, -1, -1);
    }
    for (int i = 0; i <= o.devices; i++) {
        snprintf(pf, sizeof(pf), "%s/dev%d.port", dir, i);
        ports[i] = vtsm_proc_wait_port(pf, 10000);
    }

    struct vtsm_host *h = NULL;
    struct vtsm_doe_tcp *tcp = NULL;
    struct conc cc = {.n = o.devices, .pids = pids, .npids = npids};
    int rc = 1, counter = 0, exchanges = 0, ide_exchanges = 0;
    size_t it = (size_t)o.iterations;
    long long *buf = calloc(it * (8 + 2 * FLOOR_PER_IT + 2 * RELAY_PER_IT), sizeof(long long));
    struct samples sp = {0}, si = {0}; /* plain connects; with one IDE stream */
    if (buf) {
        long long *q = buf;
        sp = (struct samples){
            .conn = q, .tsm_cpu = q + it, .dev_cpu = q + 2 * it, .host_cpu = q + 3 * it};
        q += 4 * it;
        si = (struct samples){
            .conn = q, .tsm_cpu = q + it, .dev_cpu = q + 2 * it, .host_cpu = q + 3 * it};
        q = buf + 8 * it;
        sp.flo = q;
        si.flo = q + it * FLOOR_PER_IT;
        q += 2 * it * FLOOR_PER_IT;
        sp.rel = q;
        si.rel = q + it * RELAY_PER_IT;
    }
    long long *one = calloc((size_t)o.rounds, sizeof(long long));
    long long *many = calloc((size_t)o.rounds, sizeof(long long));
    struct vtsm_host_config hc = {.trace = count_doe, .trace_ctx = &counter};

    snprintf(doe, sizeof(doe), "tcp:127.0.0.1:%d", ports[0]);
    hc.socket_path = sock;
    bool setup = ports[0] && !vtsm_proc_wait_socket(sock, 10000) && !vtsm_host_open_cfg(&hc, &h) &&
                 !vtsm_doe_tcp_open(doe, &tcp) &&
                 !vtsm_host_register_doe(h, "0000:01:00.0", vtsm_doe_tcp_fn, tcp) &&
                 !vtsm_host_register_link(h, "0000:01:00.0", vtsm_doe_tcp_link_fn, tcp) &&
                 !vtsm_host_device_add_cbor(h, "0000:01:00.0", 0) && !load_key(o.alg, &fl.key) &&
                 buf && one && many && !vtsm_host_open(sock, &cc.h);
    for (int i = 0; setup && i < o.devices; i++) {
        snprintf(cc.name[i], sizeof(cc.name[i]), "0000:%02x:00.0", 0x10 + i);
        snprintf(doe, sizeof(doe), "tcp:127.0.0.1:%d", ports[i + 1]);
        setup = ports[i + 1] && !vtsm_doe_tcp_open(doe, &cc.tcp[i]) &&
                !vtsm_host_register_doe_async(cc.h, cc.name[i], vtsm_doe_tcp_start,
                                              vtsm_doe_tcp_cancel, cc.tcp[i]) &&
                !vtsm_host_device_add_cbor(cc.h, cc.name[i], -1);
    }
    if (!setup) {
        fprintf(stderr, "vtsm-bench: setup failed\n");
        goto out;
    }
    /* plain connects and connects with one selective IDE stream (+ QUERY, 6 KEY_PROG,
     * 6 K_SET_GO), each followed by crypto floor samples */
    if (connect_loop(h, &counter, &o, 0, &fl, pids, dir, &sp, &exchanges) ||
        connect_loop(h, &counter, &o, 1, &fl, pids, dir, &si, &ide_exchanges))
        goto out;
    double split = 0;
    if (split_rtt(bindir, dir, &split)) {
        fprintf(stderr, "vtsm-bench: split-writer round trip failed\n");
        goto out;
    }
    /* one device with latency, then all of them at once (one warm-up round each) */
    long long cpu_sum = 0, loop_sum = 0;
    for (int r = -1; r < o.rounds; r++) {
        long long cpu = 0, loop = 0;
        long long t1 = conc_round(&cc, 1, &cpu, &loop);
        long long tn = t1 >= 0 ? conc_round(&cc, o.devices, &cpu, &loop) : -1;
        if (tn < 0) {
            fprintf(stderr, "vtsm-bench: concurrent connects failed\n");
            goto out;
        }
        if (r >= 0) {
            one[r] = t1;
            many[r] = tn;
            cpu_sum += cpu;
            loop_sum += loop;
        }
    }

    /* guest INFO: one guest, then all of them at once. The guest shim persists (fsyncs)
     * its sequence number before every request; with its credentials on a disk the rate
     * would be the disk's fsync latency, not the TSM's: they live in memory when it can. */
    struct guest_run runs[GUESTS] = {0};
    double g1 = -1, gn = -1;
    if (!mkdtemp(gdir))
        snprintf(gdir, sizeof(gdir), "%s", dir);
    if (guest_setup(h, gdir, sock, runs) == 0 && (g1 = guest_rate(runs, 1)) > 0)
        gn = guest_rate(runs, GUESTS);
    for (int i = 0; i < GUESTS; i++)
        vtsm_guest_close(runs[i].g);
    if (g1 <= 0 || gn <= 0) {
        fprintf(stderr, "vtsm-bench: guest INFO run failed\n");
        goto out;
    }

    /* each connect against the baselines measured right after it (its FLOOR_PER_IT floor
     * and RELAY_PER_IT relay samples): the median of those ratios follows the machine's
     * speed as it drifts during the run, which one median against another does not */
    double pr = paired_ratio(&sp, o.iterations, exchanges);
    double ipr = paired_ratio(&si, o.iterations, ide_exchanges);
    /* the floor and relay samples of both loops lie back to back */
    int nflo = sp.nflo + si.nflo, nrel = sp.nrel + si.nrel;
    double mf = median_ms(sp.flo, nflo), rtt = median_ms(sp.rel, nrel);
    double relay = exchanges * rtt, ide_relay = ide_exchanges * rtt;
    /* the work both ends did per connect, against the floor: the wall-clock ratio less
     * the waiting (and less any overlap of the two ends) */
    double work = median_sum_ms(sp.tsm_cpu, sp.dev_cpu, o.iterations);
    double ide_work = median_sum_ms(si.tsm_cpu, si.dev_cpu, o.iterations);
    double mc = median_ms(sp.conn, o.iterations), mi = median_ms(si.conn, o.iterations);
    double ct = median_ms(sp.tsm_cpu, o.iterations), cd = median_ms(sp.dev_cpu, o.iterations);
    double ch = median_ms(sp.host_cpu, o.iterations);
    double m1 = median_ms(one, o.rounds), mn = median_ms(many, o.rounds);
    double ccpu = cpu_sum / 1e6 / o.rounds, lcpu = loop_sum / 1e6 / o.rounds;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (o.json) {
        printf("{\"alg\":\"%s\",\"iterations\":%d,\"exchanges\":%d,\"connect_ms\":%.3f,"
               "\"crypto_floor_ms\":%.3f,\"crypto_floor_samples\":%d,\"relay_rtt_ms\":%.4f,"
               "\"relay_floor_ms\":%.3f,\"connect_floor_ratio\":%.3f,\"ide_exchanges\":%d,"
               "\"ide_connect_ms\":%.3f,\"ide_relay_floor_ms\":%.3f,"
               "\"ide_connect_floor_ratio\":%.3f,\"devices\":%d,\"latency_us\":%d,"
               "\"rounds\":%d,\"latency_connect_ms\":%.3f,\"concurrent_connect_ms\":%.3f,"
               "\"concurrent_ratio\":%.3f,\"concurrent_cpu_ms\":%.1f,"
               "\"concurrent_host_loop_cpu_ms\":%.2f,\"cpus\":%ld,"
               "\"guest_info_per_s\":%.0f,\"guests\":%d,\"guest_info_per_s_all\":%.0f,"
               "\"guest_info_scaling\":%.3f,\"split_rtt_ms\":%.4f,\"relay_samples\":%d,"
               "\"connect_cpu_ms\":{\"tsm\":%.3f,\"device\":%.3f,\"host\":%.3f},"
               "\"connect_work_ratio\":%.3f,\"ide_connect_work_ratio\":%.3f,"
               "\"connect_medians_ratio\":%.3f}\n",
               o.alg, o.iterations, exchanges, mc, mf, nflo, rtt, relay, pr, ide_exchanges, mi,
               ide_relay, ipr, o.devices, o.latency_us, o.rounds, m1, mn, mn / m1, ccpu, lcpu, ncpu,
               g1, GUESTS, gn, gn / g1, split, nrel, ct, cd, ch, work / mf, ide_work / mf,
               mc / (mf + relay));
    } else {
        printf("vtsm-bench (%s, SPDM session + signed measurements over host-proxied DOE)\n",
               o.alg);
        printf("  device_connect median      : %8.3f ms  (n=%d, %d DOE exchanges)\n", mc,
               o.iterations, exchanges);
        printf("  connect + 1 IDE stream     : %8.3f ms  (n=%d, %d DOE exchanges)\n", mi,
               o.iterations, ide_exchanges);
        printf("  crypto floor (thread CPU)  : %8.3f ms  (n=%d: 2 ECDH keygen + 2 derive, "
               "2 sign, 4 verify)\n",
               mf, nflo);
        printf("  relay round trip           : %8.4f ms  (n=%d; floor %.3f ms, IDE %.3f ms)\n", rtt,
               nrel, relay, ide_relay);
        printf("  connect / (crypto + relay) : %8.3f  (median of each connect's ratio; of the "
               "medians %.3f)\n",
               pr, mc / (mf + relay));
        printf("  IDE connect / floor        : %8.3f  (of the medians %.3f)\n", ipr,
               mi / (mf + ide_relay));
        printf("  CPU per connect            : tsmd %.3f ms, device %.3f ms, host %.3f ms\n", ct,
               cd, ch);
        printf("  (tsmd + device CPU) / floor: %8.3f  (IDE connect %.3f)\n", work / mf,
               ide_work / mf);
        printf("  1 device, %d us latency    : %8.3f ms  (n=%d)\n", o.latency_us, m1, o.rounds);
        printf("  %d devices at once, 1 loop : %8.3f ms  (ratio %.3f)\n", o.devices, mn, mn / m1);
        printf("    CPU meanwhile, all procs : %8.1f ms  (host loop %.2f ms; %ld CPUs)\n", ccpu,
               lcpu, ncpu);
        printf("  guest INFO, 1 guest        : %8.0f /s\n", g1);
        printf("  guest INFO, %d guests       : %8.0f /s  (x%.2f)\n", GUESTS, gn, gn / g1);
        printf("  split-writer round trip    : %8.4f ms  (n=%d; peer writes 4 pieces, Nagle on)\n",
               split, SPLIT_ROUNDS);
    }
    rc = 0;
out:
    EVP_PKEY_free(fl.key);
    vtsm_host_close(h);
    vtsm_host_close(cc.h);
    vtsm_doe_tcp_close(tcp);
    for (int i = 0; i < o.devices; i++)
        vtsm_doe_tcp_close(cc.tcp[i]);
    for (int i = 0; i < npids; i++)
        if (pids[i] > 0)
            vtsm_proc_stop(pids[i], 3000);
    for (int i = 0; i <= o.devices; i++) {
        snprintf(pf, sizeof(pf), "%s/dev%d.port", dir, i);
        unlink(pf);
    }
    for (int i = 0; i < GUESTS; i++) {
        snprintf(pf, sizeof(pf), "%s/guest%d.key%s", gdir, i, VTSM_GUEST_SEQ_SUFFIX);
        unlink(pf);
    }
    if (strcmp(gdir, dir) != 0)
        rmdir(gdir);
    unlink(sock);
    rmdir(dir);
    free(buf);
    free(one);
    free(many);
    return rc;
}
