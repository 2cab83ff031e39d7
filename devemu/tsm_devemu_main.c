/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tsm-devemu: the emulated TDISP device served over the DMTF spdm-emu socket protocol
 * (the one QEMU's spdm-socket backend speaks) on TCP.
 *
 * One connection at a time. Each NORMAL frame with transport PCI_DOE carries one DOE
 * object; the answer is one NORMAL frame (empty when the device drops the request). A
 * VTSM_LINK frame carries one simulated-link frame and is answered with one (empty when
 * the frame does not decode).
 * CONTINUE and SHUTDOWN are answered in kind and end the connection, not the server (the
 * device keeps its state); TEST is answered with "Server Hello!"; other commands get
 * UNKNOWN. A peer that vanishes mid-frame costs only its connection: the device, with its
 * negotiated state and session, serves the next one. SIGTERM/SIGINT exit with status 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vtsm_crypto.h"
#include "vtsm_devemu.h"
#include "vtsm_doe.h"
#include "vtsm_guard.h"
#include "vtsm_log.h"
#include "vtsm_proc.h"
#include "vtsm_sock.h"

/* A frame whose header arrived must be complete within this time. */
#define FRAME_TIMEOUT_MS 10000
#define FRAME_MAX        (VTSM_DOE_MAX_BYTES)
/* VTSM_SOCK_CMD_VTSM_LINK of abi/vtsm_abi.h (the socket ABI library is not linked here;
 * the value is fixed by docs/abi.md section 8.2). */
#define SOCK_CMD_VTSM_LINK 0x5654u
#define TEST_ANSWER        "Server Hello!"

/* --latency-us: every DOE and link answer leaves this long after its request arrived. */
#define LATENCY_MAX_US 10000000L
static long long g_latency_ns;

static volatile sig_atomic_t g_stop;
static int g_wake[2] = {-1, -1};

static void on_signal(int sig)
{
    int saved = errno;
    (void)sig;
    g_stop = 1;
    if (g_wake[1] >= 0)
        (void)!write(g_wake[1], "x", 1);
    errno = saved;
}

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: tsm-devemu [--port N] [--listen ADDR] [--port-file PATH] [--alg p384|p256]\n"
        "                  [--version 1.2|1.3|both] [--tdis N] [--no-tdisp] [--ide-streams N]\n"
        "                  [--key-log FILE] [--fault NAME]... [--cert-dir DIR] [--latency-us N]\n"
        "                  [--verbose]\n"
        "  --port N         TCP port (default %d; 0 picks a free port)\n"
        "  --listen ADDR    IPv4 address to listen on (default 127.0.0.1)\n"
        "  --port-file PATH write the bound port to PATH (atomically)\n"
        "  --alg ALG        device key algorithm (default p384, or that of --cert-dir)\n"
        "  --version V      SPDM versions offered (default both)\n"
        "  --tdis N         number of TDIs (default 4, 0..255)\n"
        "  --no-tdisp       no TDISP responder: an IDE-only (non-TEE-IO) device\n"
        "  --ide-streams N  selective IDE streams (default 4, 0..256)\n"
        "  --key-log FILE   TEST ONLY: append every IDE key and other secret the device holds\n"
        "  --fault NAME     inject a fault (repeatable):",
        VTSM_SOCK_DEFAULT_PORT);
    for (unsigned i = 0; i < VTSM_DEV_FAULT_COUNT_; i++)
        fprintf(f, " %s", vtsm_dev_fault_name((enum vtsm_dev_fault)i));
    fprintf(f,
            "\n"
            "  --cert-dir DIR   slot 0 from DIR/chain.pem (or root/inter/leaf.pem) and "
            "DIR/leaf.key\n"
            "  --slot N=KIND    certificate slot N (0..7) holds the default chain, the rogue\n"
            "                   chain (not under the test root) or nothing (repeatable)\n"
            "  --data-transfer-size N\n"
            "                   DataTransferSize = MaxSPDMmsgSize (default 4096, 42..65536)\n"
            "  --latency-us N   simulated DOE latency: each DOE or link answer is sent N us\n"
            "                   after its request arrived (default 0, max %ld); the device\n"
            "                   keeps reading and answering meanwhile\n"
            "  --verbose        log every request\n",
            LATENCY_MAX_US);
}

/* Read a whole (small) file into a NUL-terminated heap string. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (cap - n < 4096) {
            char *nb = realloc(buf, cap + 65536);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
            cap += 65536;
        }
        size_t k = fread(buf + n, 1, cap - n - 1, f);
        n += k;
        if (k == 0)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static int append_file(char **all, size_t *all_len, const char *dir, const char *name,
                       bool required)
{
    char path[PATH_MAX];
    size_t len;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    char *s = read_file(path, &len);
    if (!s) {
        if (required)
            VTSM_ERR("cannot read %s: %s", path, strerror(errno));
        return required ? -1 : 0;
    }
    char *n = realloc(*all, *all_len + len + 2);
    if (!n) {
        free(s);
        return -1;
    }
    memcpy(n + *all_len, s, len);
    *all_len += len;
    n[(*all_len)++] = '\n';
    n[*all_len] = '\0';
    *all = n;
    free(s);
    return 0;
}

/* --cert-dir: the chain (DIR/chain.pem, else root.pem + inter.pem + leaf.pem) and key. */
static int load_cert_dir(const char *dir, char **certs, size_t *certs_len, char **key,
                         size_t *key_len)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/chain.pem", dir);
    if (access(path, R_OK) == 0) {
        if (append_file(certs, certs_len, dir, "chain.pem", true))
            return -1;
    } else if (append_file(certs, certs_len, dir, "root.pem", false) ||
               append_file(certs, certs_len, dir, "inter.pem", false) ||
               append_file(certs, certs_len, dir, "leaf.pem", true)) {
        return -1;
    }
    return append_file(key, key_len, dir, "leaf.key", true);
}

/* Write PORT to path through a temporary file and rename, so a reader never sees half. */
static int write_port_file(const char *path, unsigned port)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    int ok = fprintf(f, "%u\n", port) > 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* Wait until fd is readable, a stop signal arrives or timeout_ns (< 0: never) passes.
 * 1 readable, 0 stop, -1 timeout. */
static int wait_readable(int fd, long long timeout_ns)
{
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = g_wake[0], .events = POLLIN}};
    while (!g_stop) {
        struct timespec ts = {.tv_sec = timeout_ns / 1000000000LL,
                              .tv_nsec = timeout_ns % 1000000000LL};
        int r = ppoll(p, 2, timeout_ns < 0 ? NULL : &ts, NULL);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return 0;
        }
        if (r == 0)
            return -1;
        if (p[1].revents)
            return 0;
        if (p[0].revents)
            return 1;
    }
    return 0;
}

/* --key-log (test only): one line per accepted KEY_PROG, flushed at once. */
static void key_log_line(void *ctx, const char *line)
{
    FILE *f = ctx;
    if (fprintf(f, "%s\n", line) < 0 || fflush(f) != 0)
        VTSM_WARN("key log: write failed: %s", strerror(errno));
}

/* An answer held back by --latency-us, in arrival order. */
struct delayed {
    struct delayed *next;
    long long due_ns;
    uint32_t cmd, transport;
    struct vtsm_buf payload;
};

struct reply_queue {
    struct delayed *head, **tail;
};

static void queue_pop_free(struct reply_queue *q)
{
    struct delayed *d = q->head;
    q->head = d->next;
    if (!q->head)
        q->tail = &q->head;
    vtsm_buf_wipe(&d->payload);
    free(d);
}

/* Send now, or (with --latency-us) when the latency has passed since the request. */
static vtsm_status reply(int fd, struct reply_queue *q, long long arrived_ns, uint32_t cmd,
                         uint32_t transport, const struct vtsm_buf *payload)
{
    if (!g_latency_ns)
        return vtsm_sock_send(fd, cmd, transport, payload->data, payload->len);
    struct delayed *d = calloc(1, sizeof(*d));
    VTSM_ENSURE(d, VTSM_E_NOMEM, "delayed answer");
    d->due_ns = arrived_ns + g_latency_ns;
    d->cmd = cmd;
    d->transport = transport;
    if (payload->len && vtsm_buf_set(&d->payload, payload->data, payload->len) != VTSM_OK) {
        free(d);
        return vtsm_fail(VTSM_E_NOMEM, "delayed answer");
    }
    *q->tail = d;
    q->tail = &d->next;
    return VTSM_OK;
}

/* Send the held answers that are due (all of them if all). */
static vtsm_status send_due(int fd, struct reply_queue *q, bool all)
{
    while (q->head && (all || q->head->due_ns <= vtsm_now_ns())) {
        struct delayed *d = q->head;
        vtsm_status st = vtsm_sock_send(fd, d->cmd, d->transport, d->payload.data, d->payload.len);
        queue_pop_free(q);
        VTSM_GUARD(st);
    }
    return VTSM_OK;
}

/* Nanoseconds until the first held answer is due, -1 if none. */
static long long next_due_ns(const struct reply_queue *q)
{
    if (!q->head)
        return -1;
    long long left = q->head->due_ns - vtsm_now_ns();
    return left <= 0 ? 0 : left;
}

/* Serve one connection until it closes, breaks, asks to shut down or we are stopped. */
static void serve(struct vtsm_dev *dev, int fd)
{
    struct vtsm_buf in = {0}, out = {0};
    struct reply_queue q = {.head = NULL, .tail = &q.head};
    unsigned long frames = 0;
    int w;

    while ((w = wait_readable(fd, next_due_ns(&q))) != 0) {
        vtsm_status st = send_due(fd, &q, false);
        if (st != VTSM_OK) {
            VTSM_WARN("send failed: %s (%s)", vtsm_status_name(st), vtsm_err_detail());
            break;
        }
        if (w < 0)
            continue; /* only answers were due */
        uint32_t cmd, transport;
        st = vtsm_sock_recv(fd, &cmd, &transport, &in, FRAME_MAX, FRAME_TIMEOUT_MS);
        long long arrived = vtsm_now_ns();
        if (st == VTSM_E_CLOSED) {
            VTSM_INFO("connection closed by the peer after %lu frames", frames);
            break;
        }
        if (st != VTSM_OK) {
            VTSM_WARN("connection dropped: %s (%s)", vtsm_status_name(st), vtsm_err_detail());
            break;
        }
        frames++;
        if (cmd == VTSM_SOCK_CMD_SHUTDOWN || cmd == VTSM_SOCK_CMD_CONTINUE) {
            /* Session end (spdm-emu): answered in kind, then this connection closes; the
             * device and its state stay for the next one. */
            VTSM_INFO("%s: closing the connection",
                      cmd == VTSM_SOCK_CMD_SHUTDOWN ? "SHUTDOWN" : "CONTINUE");
            if (send_due(fd, &q, true) == VTSM_OK)
                (void)vtsm_sock_send(fd, cmd, transport, NULL, 0);
            break;
        }
        if (transport != VTSM_SOCK_TRANSPORT_PCI_DOE) {
            VTSM_WARN("frame with transport type %u (only PCI_DOE = %u): closing the connection",
                      transport, VTSM_SOCK_TRANSPORT_PCI_DOE);
            break;
        }
        switch (cmd) {
        case VTSM_SOCK_CMD_NORMAL:
            st = vtsm_dev_handle(dev, in.data, in.len, &out);
            if (st != VTSM_OK) {
                VTSM_INFO("DOE object of %zu bytes not answered: %s (%s)", in.len,
                          vtsm_status_name(st), vtsm_err_detail());
                vtsm_buf_reset(&out);
            }
            st = reply(fd, &q, arrived, VTSM_SOCK_CMD_NORMAL, transport, &out);
            break;
        case SOCK_CMD_VTSM_LINK:
            st = vtsm_dev_link(dev, in.data, in.len, &out);
            if (st != VTSM_OK) {
                VTSM_INFO("link frame of %zu bytes not answered: %s (%s)", in.len,
                          vtsm_status_name(st), vtsm_err_detail());
                vtsm_buf_reset(&out);
            }
            st = reply(fd, &q, arrived, SOCK_CMD_VTSM_LINK, transport, &out);
            break;
        case VTSM_SOCK_CMD_TEST:
            /* spdm-emu's answer, with its terminating NUL */
            st = vtsm_buf_set(&out, TEST_ANSWER, sizeof(TEST_ANSWER));
            if (st == VTSM_OK)
                st = reply(fd, &q, arrived, VTSM_SOCK_CMD_TEST, transport, &out);
            break;
        default:
            VTSM_INFO("unknown socket command 0x%x", cmd);
            vtsm_buf_reset(&out);
            st = reply(fd, &q, arrived, VTSM_SOCK_CMD_UNKNOWN, transport, &out);
            break;
        }
        if (st != VTSM_OK) {
            VTSM_WARN("send failed: %s (%s)", vtsm_status_name(st), vtsm_err_detail());
            break;
        }
    }
    while (q.head)
        queue_pop_free(&q);
    vtsm_buf_wipe(&in);
    vtsm_buf_wipe(&out);
}

int main(int argc, char **argv)
{
    enum {
        OPT_PORT = 256,
        OPT_LISTEN,
        OPT_PORT_FILE,
        OPT_ALG,
        OPT_VERSION,
        OPT_TDIS,
        OPT_NO_TDISP,
        OPT_IDE_STREAMS,
        OPT_KEY_LOG,
        OPT_FAULT,
        OPT_CERT_DIR,
        OPT_SLOT,
        OPT_DTS,
        OPT_LATENCY,
        OPT_VERBOSE,
        OPT_HELP
    };
    static const struct option opts[] = {
        {"port", required_argument, NULL, OPT_PORT},
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"port-file", required_argument, NULL, OPT_PORT_FILE},
        {"alg", required_argument, NULL, OPT_ALG},
        {"version", required_argument, NULL, OPT_VERSION},
        {"tdis", required_argument, NULL, OPT_TDIS},
        {"no-tdisp", no_argument, NULL, OPT_NO_TDISP},
        {"ide-streams", required_argument, NULL, OPT_IDE_STREAMS},
        {"key-log", required_argument, NULL, OPT_KEY_LOG},
        {"fault", required_argument, NULL, OPT_FAULT},
        {"cert-dir", required_argument, NULL, OPT_CERT_DIR},
        {"slot", required_argument, NULL, OPT_SLOT},
        {"data-transfer-size", required_argument, NULL, OPT_DTS},
        {"latency-us", required_argument, NULL, OPT_LATENCY},
        {"verbose", no_argument, NULL, OPT_VERBOSE},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    struct vtsm_dev_config cfg;
    const char *listen_addr = "127.0.0.1", *port_file = NULL, *cert_dir = NULL, *alg = NULL;
    const char *key_log_path = NULL;
    long port = VTSM_SOCK_DEFAULT_PORT;
    bool verbose = false;
    char *end;
    int c, rc = 1;

    vtsm_dev_config_default(&cfg);
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case OPT_PORT:
            port = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end || port < 0 || port > 65535) {
                fprintf(stderr, "tsm-devemu: bad --port '%s'\n", optarg);
                return 2;
            }
            break;
        case OPT_LISTEN:
            listen_addr = optarg;
            break;
        case OPT_PORT_FILE:
            port_file = optarg;
            break;
        case OPT_ALG:
            if (strcmp(optarg, "p384") && strcmp(optarg, "p256")) {
                fprintf(stderr, "tsm-devemu: --alg is p384 or p256\n");
                return 2;
            }
            alg = optarg;
            break;
        case OPT_VERSION:
            if (!strcmp(optarg, "1.2"))
                cfg.versions = VTSM_DEV_VER_12;
            else if (!strcmp(optarg, "1.3"))
                cfg.versions = VTSM_DEV_VER_13;
            else if (!strcmp(optarg, "both"))
                cfg.versions = VTSM_DEV_VER_12 | VTSM_DEV_VER_13;
            else {
                fprintf(stderr, "tsm-devemu: --version is 1.2, 1.3 or both\n");
                return 2;
            }
            break;
        case OPT_TDIS: {
            long n = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end || n < 0 || n > 255) {
                fprintf(stderr, "tsm-devemu: bad --tdis '%s' (0..255)\n", optarg);
                return 2;
            }
            cfg.num_tdis = (unsigned)n;
            break;
        }
        case OPT_NO_TDISP:
            cfg.tdisp = false;
            break;
        case OPT_IDE_STREAMS: {
            long n = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end || n < 0 || n > VTSM_DEV_MAX_IDE) {
                fprintf(stderr, "tsm-devemu: bad --ide-streams '%s' (0..%d)\n", optarg,
                        VTSM_DEV_MAX_IDE);
                return 2;
            }
            cfg.ide_streams = (unsigned)n;
            break;
        }
        case OPT_KEY_LOG:
            key_log_path = optarg;
            break;
        case OPT_FAULT: {
            enum vtsm_dev_fault f;
            if (vtsm_dev_fault_parse(optarg, &f) != VTSM_OK) {
                fprintf(stderr, "tsm-devemu: unknown fault '%s'\n", optarg);
                usage(stderr);
                return 2;
            }
            cfg.faults |= VTSM_DEV_FAULT_BIT(f);
            break;
        }
        case OPT_SLOT: {
            /* --slot N=default|rogue|empty */
            long n = strtol(optarg, &end, 10);
            if (end == optarg || *end != '=' || n < 0 || n >= VTSM_DEV_MAX_SLOTS ||
                (strcmp(end + 1, "default") && strcmp(end + 1, "rogue") &&
                 strcmp(end + 1, "empty"))) {
                fprintf(stderr, "tsm-devemu: bad --slot '%s' (N=default|rogue|empty, N 0..%d)\n",
                        optarg, VTSM_DEV_MAX_SLOTS - 1);
                return 2;
            }
            cfg.slots[n].kind = !strcmp(end + 1, "default") ? VTSM_DEV_SLOT_DEFAULT
                                : !strcmp(end + 1, "rogue") ? VTSM_DEV_SLOT_ROGUE
                                                            : VTSM_DEV_SLOT_EMPTY;
            break;
        }
        case OPT_DTS: {
            long n = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end || n < 42 || n > 65536) {
                fprintf(stderr, "tsm-devemu: bad --data-transfer-size '%s' (42..65536)\n", optarg);
                return 2;
            }
            /* without CHUNK_CAP, MaxSPDMmsgSize equals DataTransferSize */
            cfg.data_transfer_size = cfg.max_spdm_msg_size = (uint32_t)n;
            break;
        }
        case OPT_LATENCY: {
            long n = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end || n < 0 || n > LATENCY_MAX_US) {
                fprintf(stderr, "tsm-devemu: bad --latency-us '%s' (0..%ld)\n", optarg,
                        LATENCY_MAX_US);
                return 2;
            }
            g_latency_ns = (long long)n * 1000;
            break;
        }
        case OPT_CERT_DIR:
            cert_dir = optarg;
            break;
        case OPT_VERBOSE:
            verbose = true;
            break;
        case OPT_HELP:
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    vtsm_log_init("tsm-devemu", verbose ? VTSM_LOG_DEBUG : VTSM_LOG_WARN);
    setvbuf(stdout, NULL, _IOLBF, 0);

    char *certs = NULL, *key = NULL;
    size_t certs_len = 0, key_len = 0;
    struct vtsm_dev *dev = NULL;
    FILE *key_log = NULL;
    int lfd = -1;
    uint16_t bound = 0;
    bool wrote_port = false;

    if (cert_dir) {
        if (load_cert_dir(cert_dir, &certs, &certs_len, &key, &key_len))
            goto out;
        cfg.slots[0].kind = VTSM_DEV_SLOT_PEM;
        cfg.slots[0].certs_pem = certs;
        cfg.slots[0].certs_pem_len = certs_len;
        cfg.slots[0].key_pem = key;
        cfg.slots[0].key_pem_len = key_len;
        if (!alg) {
            EVP_PKEY *k = NULL;
            if (vtsm_pkey_from_pem(key, key_len, &k) == VTSM_OK &&
                vtsm_pkey_asym(k) == VTSM_ASYM_ECDSA_P256)
                alg = "p256";
            EVP_PKEY_free(k);
        }
    }
    if (alg && !strcmp(alg, "p256")) {
        cfg.asym = VTSM_ASYM_ECDSA_P256;
        cfg.hash = VTSM_HASH_SHA256;
        cfg.dhe = VTSM_DHE_SECP256R1;
    }

    if (key_log_path) {
        key_log = fopen(key_log_path, "a");
        if (!key_log) {
            VTSM_ERR("cannot open key log %s: %s", key_log_path, strerror(errno));
            goto out;
        }
        VTSM_WARN("--key-log %s: every IDE key the device accepts is written there (test only)",
                  key_log_path);
        cfg.key_log = key_log_line;
        cfg.key_log_ctx = key_log;
        cfg.secret_log = key_log_line; /* one file: KEY_PROG keys and "secret" lines */
        cfg.secret_log_ctx = key_log;
    }

    vtsm_status st = vtsm_dev_new(&cfg, &dev);
    if (st != VTSM_OK) {
        VTSM_ERR("device: %s (%s)", vtsm_status_name(st), vtsm_err_detail());
        goto out;
    }
    if (pipe(g_wake) != 0) {
        VTSM_ERR("pipe: %s", strerror(errno));
        goto out;
    }
    for (int i = 0; i < 2; i++) {
        fcntl(g_wake[i], F_SETFD, FD_CLOEXEC);
        fcntl(g_wake[i], F_SETFL, O_NONBLOCK);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    st = vtsm_tcp_listen(listen_addr, (uint16_t)port, &lfd, &bound);
    if (st != VTSM_OK) {
        VTSM_ERR("%s", vtsm_err_detail());
        goto out;
    }
    if (port_file) {
        if (write_port_file(port_file, bound) != 0) {
            VTSM_ERR("cannot write port file %s: %s", port_file, strerror(errno));
            goto out;
        }
        wrote_port = true;
    }
    printf("tsm-devemu listening on %s:%u\n", listen_addr, bound);
    fflush(stdout);
    if (cfg.faults) {
        for (unsigned i = 0; i < VTSM_DEV_FAULT_COUNT_; i++)
            if (cfg.faults & VTSM_DEV_FAULT_BIT(i))
                VTSM_WARN("fault injected: %s", vtsm_dev_fault_name((enum vtsm_dev_fault)i));
    }

    while (wait_readable(lfd, -1) > 0) {
        int cfd = accept(lfd, NULL, NULL);
        if (cfd < 0) {
            if (errno != EINTR && errno != ECONNABORTED)
                VTSM_WARN("accept: %s", strerror(errno));
            continue;
        }
        fcntl(cfd, F_SETFD, FD_CLOEXEC);
        if (vtsm_sock_nodelay(cfd) != VTSM_OK)
            VTSM_WARN("TCP_NODELAY: %s", vtsm_err_detail());
        VTSM_INFO("connection accepted");
        serve(dev, cfd);
        close(cfd);
    }
    rc = g_stop ? 0 : 1;
out:
    if (lfd >= 0)
        close(lfd);
    if (wrote_port)
        unlink(port_file);
    vtsm_dev_free(dev);
    if (key_log)
        fclose(key_log);
    free(certs);
    if (key) {
        OPENSSL_cleanse(key, key_len);
        free(key);
    }
    for (int i = 0; i < 2; i++)
        if (g_wake[i] >= 0)
            close(g_wake[i]);
    return rc;
}
