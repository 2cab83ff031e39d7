/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tsmd - the vtsm TSM daemon.
 *
 *   tsmd [--socket PATH] [--trust PATH]... [--doe-timeout-ms N] [--verbose] [--quiet]
 *
 * With no arguments it serves the default socket (see vtsm_path.h) and trusts the
 * embedded test roots of the emulated device (pki/), so the demo needs no configuration.
 * Under systemd it serves the socket it is passed (LISTEN_FDS) and reports readiness
 * (NOTIFY_SOCKET); the exit codes are listed in usage() and docs/install.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "tsm_int.h"
#include "vtsm_crypto.h"
#include "vtsm_guard.h"
#include "vtsm_log.h"
#include "vtsm_path.h"
#include "vtsm_sd.h"
#include "vtsm_version.h"

/* Exit codes (documented in usage() and docs/install.md). */
enum {
    TSMD_EXIT_OK = 0,      /* stopped by SIGTERM or SIGINT */
    TSMD_EXIT_FAILURE = 1, /* could not serve: socket in use, listen failed, loop failed */
    TSMD_EXIT_USAGE = 2,   /* unknown option, bad value, stray argument */
    TSMD_EXIT_CONFIG = 3,  /* a trust or identity file is missing, unreadable, empty or wrong */
};

extern const unsigned char tsm_root_p384[];
extern const unsigned long tsm_root_p384_len;
extern const unsigned char tsm_root_p256[];
extern const unsigned long tsm_root_p256_len;
extern const unsigned char tsm_identity_key[];
extern const unsigned long tsm_identity_key_len;
extern const unsigned char tsm_identity_cert[];
extern const unsigned long tsm_identity_cert_len;

static struct tsm the_tsm;

static void on_signal(int sig)
{
    (void)sig;
    tsm_stop(&the_tsm);
}

/* Load the TSM identity (key + certificate) from PEM text; kid = SHA-256(certificate DER).
 * The key must be the certificate's: a guest verifies tokens with the certificate's key. */
static vtsm_status load_identity(const void *key_pem, size_t key_len, const void *cert_pem,
                                 size_t cert_len, const char *key_name, const char *cert_name,
                                 struct tsm_config *cfg)
{
    vtsm_status st = VTSM_OK;
    X509 *cert = NULL;
    unsigned char *der = NULL;
    BIO *b = BIO_new_mem_buf(cert_pem, (int)cert_len);
    VTSM_ENSURE_GOTO(b, VTSM_E_NOMEM, "identity certificate");
    cert = PEM_read_bio_X509(b, NULL, NULL, NULL);
    VTSM_ENSURE_GOTO(cert, VTSM_E_CONFIG, "%s is not a PEM certificate", cert_name);
    int n = i2d_X509(cert, &der);
    VTSM_ENSURE_GOTO(n > 0, VTSM_E_CONFIG, "identity certificate cannot be encoded");
    VTSM_GUARD_GOTO(vtsm_hash(VTSM_HASH_SHA256, der, (size_t)n, cfg->identity_kid));
    st = vtsm_pkey_from_pem(key_pem, key_len, &cfg->identity_key);
    VTSM_ENSURE_GOTO(st == VTSM_OK, VTSM_E_CONFIG, "%s is not a PEM private key", key_name);
    VTSM_ENSURE_GOTO(vtsm_pkey_asym(cfg->identity_key) != VTSM_ASYM_NONE, VTSM_E_CONFIG,
                     "identity key %s must be ECDSA P-256 or P-384", key_name);
    VTSM_ENSURE_GOTO(EVP_PKEY_eq(cfg->identity_key, X509_get0_pubkey(cert)) == 1, VTSM_E_CONFIG,
                     "identity key %s does not match the certificate %s", key_name, cert_name);
out:
    ERR_clear_error();
    OPENSSL_free(der);
    X509_free(cert);
    BIO_free(b);
    return st;
}

/* A configuration file's whole content (at most 1 MiB); every failure names the file. */
static vtsm_status read_file(const char *path, struct vtsm_buf *out)
{
    vtsm_status st = VTSM_OK;
    char chunk[4096];
    ssize_t k;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    VTSM_ENSURE(fd >= 0, VTSM_E_CONFIG, "cannot open %s: %s", path, strerror(errno));
    while ((k = read(fd, chunk, sizeof(chunk))) != 0) {
        if (k < 0 && errno == EINTR)
            continue;
        VTSM_ENSURE_GOTO(k > 0, VTSM_E_CONFIG, "cannot read %s: %s", path, strerror(errno));
        VTSM_ENSURE_GOTO(out->len + (size_t)k <= (1u << 20), VTSM_E_CONFIG,
                         "%s is too large (over 1 MiB)", path);
        VTSM_GUARD_GOTO(vtsm_buf_append(out, chunk, (size_t)k));
    }
    VTSM_ENSURE_GOTO(out->len > 0, VTSM_E_CONFIG, "%s is empty", path);
out:
    OPENSSL_cleanse(chunk, sizeof(chunk));
    close(fd);
    return st;
}

/* A --trust path: a readable, non-empty file or a directory (its files are checked as read). */
static vtsm_status check_trust_path(const char *path)
{
    struct stat sb;
    VTSM_ENSURE(stat(path, &sb) == 0, VTSM_E_CONFIG, "trust path %s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) {
        VTSM_ENSURE(access(path, R_OK | X_OK) == 0, VTSM_E_CONFIG, "trust directory %s: %s", path,
                    strerror(errno));
        return VTSM_OK;
    }
    struct vtsm_buf b = {0};
    vtsm_status st = read_file(path, &b);
    vtsm_buf_free(&b);
    return st;
}

/* A decimal integer in [min, max], the whole argument, or a clear error. */
static bool parse_num(const char *opt, const char *arg, long long min, long long max,
                      long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(arg, &end, 10);
    if (errno || end == arg || *end || v < min || v > max) {
        fprintf(stderr, "tsmd: %s wants an integer in %lld..%lld, not '%s'\n", opt, min, max, arg);
        return false;
    }
    *out = v;
    return true;
}

static void usage(FILE *f)
{
    fprintf(
        f, "usage: tsmd [--socket PATH] [--trust FILE|DIR]... [--root-port ID:STREAMS[:SLOTS]]...\n"
           "            [--identity KEY.pem:CERT.pem] [--doe-timeout-ms N] [--verbose] [--quiet]\n"
           "  --socket PATH       Unix socket to serve (default: $VTSM_SOCKET, else\n"
           "                      $XDG_RUNTIME_DIR/vtsm/tsmd.sock, else /tmp/vtsm-UID/tsmd.sock)\n"
           "  --trust FILE|DIR    trusted roots: a PEM bundle or a directory of PEM files;\n"
           "                      repeatable; replaces the embedded test roots\n"
           "  --root-port ID:STREAMS[:SLOTS]\n"
           "                      a root port with its selective IDE streams and key slots\n"
           "                      (default slots: 2 per stream); repeatable; default: 0:4:8 1:4:8\n"
           "  --identity KEY:CERT the TSM's signing key and certificate (PEM) for guest evidence\n"
           "                      tokens; default: the embedded test identity (pki/tsm)\n"
           "  --doe-timeout-ms N  how long a verb waits for one doe_response (default 30000)\n"
           "  --hello-timeout-ms N    a connection must send HELLO within N ms (default 10000)\n"
           "  --frame-timeout-ms N    a request frame once begun must complete within N ms\n"
           "                          (default 10000)\n"
           "  --idle-timeout-ms N     drop a client idle for N ms with nothing in flight\n"
           "                          (default 0: never)\n"
           "  --max-unread BYTES      drop a client leaving more replies unread (default 8 MiB)\n"
           "  --max-hosts N, --max-guests N\n"
           "                          connections per role (default 64 and 128; at most 48 more\n"
           "                          may wait for their HELLO)\n"
           "  --key-update-interval-ms N\n"
           "                      EVENT spdm_key_update_required when a device's SPDM keys are\n"
           "                      N ms old (default 0: off)\n"
           "  --key-update-seq N  the same when a session's sequence number reaches N\n"
           "                      (default 4294967296; 0: off)\n"
           "  --ide-refresh-interval-ms N\n"
           "                      EVENT ide_key_refresh_due when IDE keys are N ms old (0: off)\n"
           "  --trace             one line per DOE object tsmd sends to or gets from a device\n"
           "                      (through its host) on stderr: time, direction, device,\n"
           "                      size, message\n"
           "  --syslog            log to syslog (daemon facility) instead of stderr\n"
           "  --version           print the version and exit\n"
           "\n"
           "Options take their value as --opt VALUE or --opt=VALUE.\n"
           "Under systemd tsmd serves the listening socket it is passed (LISTEN_FDS; --socket is\n"
           "then ignored) and reports readiness to NOTIFY_SOCKET.\n"
           "\n"
           "Exit status:\n"
           "  0  stopped by SIGTERM or SIGINT\n"
           "  1  could not serve (socket in use, listen failed, event loop failed)\n"
           "  2  usage error (unknown option, bad value, stray argument)\n"
           "  3  configuration error (a trust or identity file missing, unreadable, empty or\n"
           "     invalid; an identity key that does not match its certificate)\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"socket", required_argument, 0, 's'},
                                             {"trust", required_argument, 0, 't'},
                                             {"doe-timeout-ms", required_argument, 0, 'T'},
                                             {"verbose", no_argument, 0, 'v'},
                                             {"quiet", no_argument, 0, 'q'},
                                             {"help", no_argument, 0, 'h'},
                                             {"root-port", required_argument, 0, 'r'},
                                             {"identity", required_argument, 0, 'i'},
                                             {"hello-timeout-ms", required_argument, 0, 'H'},
                                             {"frame-timeout-ms", required_argument, 0, 'F'},
                                             {"idle-timeout-ms", required_argument, 0, 'I'},
                                             {"max-unread", required_argument, 0, 'U'},
                                             {"max-hosts", required_argument, 0, 'M'},
                                             {"max-guests", required_argument, 0, 'G'},
                                             {"version", no_argument, 0, 'V'},
                                             {"trace", no_argument, 0, 'X'},
                                             {"syslog", no_argument, 0, 'L'},
                                             {"key-update-interval-ms", required_argument, 0, 'K'},
                                             {"key-update-seq", required_argument, 0, 'Q'},
                                             {"ide-refresh-interval-ms", required_argument, 0, 'R'},
                                             {0, 0, 0, 0}};
    struct tsm_config cfg = {0};
    tsm_config_defaults(&cfg);
    long long num;
    enum vtsm_log_level level = VTSM_LOG_WARN;
    bool use_syslog = false;
    const char *trust_paths[16];
    int ntrust = 0, c;
    struct tsm_rp_config rps[TSM_PLATFORM_MAX_RP];
    size_t nrp = 0;
    const char *identity = NULL;

    if (!vtsm_default_socket_path(cfg.socket_path, sizeof(cfg.socket_path))) {
        fprintf(stderr, "tsmd: default socket path too long\n");
        return TSMD_EXIT_CONFIG;
    }
    while ((c = getopt_long(argc, argv, "s:t:T:vqhr:i:H:F:I:U:M:G:", longopts, NULL)) != -1) {
        switch (c) {
        case 'X':
            cfg.trace = true;
            break;
        case 'L':
            use_syslog = true;
            break;
        case 'K':
            if (!parse_num("--key-update-interval-ms", optarg, 0, 1LL << 40, &num))
                return TSMD_EXIT_USAGE;
            cfg.key_update_interval_ms = num;
            break;
        case 'Q':
            if (!parse_num("--key-update-seq", optarg, 0, 1LL << 62, &num))
                return TSMD_EXIT_USAGE;
            cfg.key_update_seq = (uint64_t)num;
            break;
        case 'R':
            if (!parse_num("--ide-refresh-interval-ms", optarg, 0, 1LL << 40, &num))
                return TSMD_EXIT_USAGE;
            cfg.ide_refresh_interval_ms = num;
            break;
        case 's':
            if (strlen(optarg) >= sizeof(cfg.socket_path)) {
                fprintf(stderr, "tsmd: --socket path too long\n");
                return TSMD_EXIT_USAGE;
            }
            strcpy(cfg.socket_path, optarg);
            break;
        case 't':
            if (ntrust == (int)(sizeof(trust_paths) / sizeof(trust_paths[0]))) {
                fprintf(stderr, "tsmd: too many --trust paths\n");
                return TSMD_EXIT_USAGE;
            }
            trust_paths[ntrust++] = optarg;
            break;
        case 'T':
            if (!parse_num("--doe-timeout-ms", optarg, 1, 3600000, &num))
                return TSMD_EXIT_USAGE;
            cfg.doe_timeout_ms = (int)num;
            break;
        case 'H':
            if (!parse_num("--hello-timeout-ms", optarg, 1, 3600000, &num))
                return TSMD_EXIT_USAGE;
            cfg.hello_timeout_ms = (int)num;
            break;
        case 'F':
            if (!parse_num("--frame-timeout-ms", optarg, 1, 3600000, &num))
                return TSMD_EXIT_USAGE;
            cfg.frame_timeout_ms = (int)num;
            break;
        case 'I':
            if (!parse_num("--idle-timeout-ms", optarg, 0, 86400000, &num))
                return TSMD_EXIT_USAGE;
            cfg.idle_timeout_ms = (int)num;
            break;
        case 'U':
            if (!parse_num("--max-unread", optarg, VTSM_ABI_FRAME_MAX + VTSM_ABI_FRAME_HDR_SIZE,
                           1LL << 30, &num))
                return TSMD_EXIT_USAGE;
            cfg.outq_max = (size_t)num;
            break;
        case 'M':
            if (!parse_num("--max-hosts", optarg, 1, 128, &num))
                return TSMD_EXIT_USAGE;
            cfg.max_hosts = (unsigned)num;
            break;
        case 'G':
            if (!parse_num("--max-guests", optarg, 0, 160, &num))
                return TSMD_EXIT_USAGE;
            cfg.max_guests = (unsigned)num;
            break;
        case 'r':
            if (nrp == TSM_PLATFORM_MAX_RP) {
                fprintf(stderr, "tsmd: too many --root-port\n");
                return TSMD_EXIT_USAGE;
            }
            if (tsm_platform_parse_rp(optarg, &rps[nrp]) != VTSM_OK) {
                fprintf(stderr, "tsmd: --root-port %s: %s\n", optarg, vtsm_err_detail());
                return TSMD_EXIT_USAGE;
            }
            nrp++;
            break;
        case 'i':
            identity = optarg;
            break;
        case 'v':
            level = VTSM_LOG_DEBUG;
            break;
        case 'q':
            level = VTSM_LOG_ERROR;
            break;
        case 'h':
            usage(stdout);
            return TSMD_EXIT_OK;
        case 'V':
            printf("tsmd (vtsm) %s\n", vtsm_version());
            return TSMD_EXIT_OK;
        default: /* getopt_long has named the option */
            fprintf(stderr, "tsmd: try 'tsmd --help'\n");
            return TSMD_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "tsmd: unexpected argument '%s' (try 'tsmd --help')\n", argv[optind]);
        return TSMD_EXIT_USAGE;
    }
    vtsm_log_init("tsmd", level);
    if (use_syslog)
        vtsm_log_syslog();

    vtsm_status st = vtsm_trust_new(&cfg.trust);
    for (int i = 0; st == VTSM_OK && i < ntrust; i++) {
        st = check_trust_path(trust_paths[i]);
        if (st == VTSM_OK)
            st = vtsm_trust_add_path(cfg.trust, trust_paths[i]);
    }
    if (st == VTSM_OK && ntrust == 0) {
        st = vtsm_trust_add_pem(cfg.trust, tsm_root_p384, tsm_root_p384_len);
        if (st == VTSM_OK)
            st = vtsm_trust_add_pem(cfg.trust, tsm_root_p256, tsm_root_p256_len);
    }
    if (st == VTSM_OK && vtsm_trust_count(cfg.trust) == 0)
        st = vtsm_fail(VTSM_E_CONFIG, "the trust store is empty");
    if (st) {
        fprintf(stderr, "tsmd: trust store: %s: %s\n", vtsm_status_name(st), vtsm_err_detail());
        vtsm_trust_free(cfg.trust);
        return TSMD_EXIT_CONFIG;
    }

    st = tsm_platform_new(rps, nrp, &cfg.platform);
    if (st == VTSM_OK && identity) {
        char kp[512];
        const char *colon = strchr(identity, ':');
        struct vtsm_buf kb = {0}, cb = {0};
        if (!colon || (size_t)(colon - identity) >= sizeof(kp)) {
            st = vtsm_fail(VTSM_E_CONFIG, "--identity wants KEY.pem:CERT.pem, not '%s'", identity);
        } else {
            memcpy(kp, identity, (size_t)(colon - identity));
            kp[colon - identity] = '\0';
            if ((st = read_file(kp, &kb)) == VTSM_OK && (st = read_file(colon + 1, &cb)) == VTSM_OK)
                st = load_identity(kb.data, kb.len, cb.data, cb.len, kp, colon + 1, &cfg);
        }
        vtsm_buf_wipe(&kb);
        vtsm_buf_free(&cb);
    } else if (st == VTSM_OK) {
        st = load_identity(tsm_identity_key, tsm_identity_key_len, tsm_identity_cert,
                           tsm_identity_cert_len, "(embedded test key)",
                           "(embedded test certificate)", &cfg);
    }
    if (st) {
        fprintf(stderr, "tsmd: configuration: %s: %s\n", vtsm_status_name(st), vtsm_err_detail());
        vtsm_trust_free(cfg.trust);
        tsm_platform_free(cfg.platform);
        EVP_PKEY_free(cfg.identity_key);
        return TSMD_EXIT_CONFIG;
    }

    int nfds = vtsm_sd_listen_fds();
    if (nfds != 0 && nfds != 1) {
        fprintf(stderr, "tsmd: socket activation: %s\n",
                nfds < 0 ? "LISTEN_FDS / LISTEN_PID are malformed or a passed fd is not open"
                         : "more than one socket passed (tsmd serves one)");
        vtsm_trust_free(cfg.trust);
        tsm_platform_free(cfg.platform);
        EVP_PKEY_free(cfg.identity_key);
        return TSMD_EXIT_CONFIG;
    }
    if (nfds == 1)
        cfg.inherited_fd = VTSM_SD_LISTEN_FDS_START;

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    st = tsm_init(&the_tsm, &cfg);
    if (st) {
        fprintf(stderr, "tsmd: %s: %s\n", vtsm_status_name(st), vtsm_err_detail());
        tsm_fini(&the_tsm);
        return TSMD_EXIT_FAILURE;
    }
    printf("tsmd listening on %s\n", the_tsm.cfg.socket_path);
    fflush(stdout);
    char ready[64];
    snprintf(ready, sizeof(ready), "READY=1\nMAINPID=%ld", (long)getpid());
    if (vtsm_sd_notify(ready) < 0)
        fprintf(stderr, "tsmd: NOTIFY_SOCKET: %s\n", strerror(errno));
    st = tsm_run(&the_tsm);
    vtsm_sd_notify("STOPPING=1");
    tsm_fini(&the_tsm);
    return st == VTSM_OK ? TSMD_EXIT_OK : TSMD_EXIT_FAILURE;
}
