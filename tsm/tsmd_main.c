/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tsmd - the vtsm TSM daemon.
 *
 *   tsmd [--socket PATH] [--trust PATH]... [--doe-timeout-ms N] [--verbose] [--quiet]
 *
 * With no arguments it serves the default socket (see vtsm_path.h) and trusts the
 * embedded test roots of the emulated device (pki/), so the demo needs no configuration.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tsm_int.h"
#include "vtsm_log.h"
#include "vtsm_path.h"

extern const unsigned char tsm_root_p384[];
extern const unsigned long tsm_root_p384_len;
extern const unsigned char tsm_root_p256[];
extern const unsigned long tsm_root_p256_len;

static struct tsm the_tsm;

static void on_signal(int sig)
{
    (void)sig;
    tsm_stop(&the_tsm);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tsmd [--socket PATH] [--trust FILE|DIR]... [--doe-timeout-ms N]\n"
            "            [--verbose] [--quiet]\n"
            "  --socket PATH       Unix socket to serve (default: $VTSM_SOCKET, else\n"
            "                      $XDG_RUNTIME_DIR/vtsm/tsmd.sock, else /tmp/vtsm-UID/tsmd.sock)\n"
            "  --trust FILE|DIR    trusted roots: a PEM bundle or a directory of PEM files;\n"
            "                      repeatable; replaces the embedded test roots\n"
            "  --doe-timeout-ms N  how long a verb waits for one doe_response (default 30000)\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"socket", required_argument, 0, 's'},
                                             {"trust", required_argument, 0, 't'},
                                             {"doe-timeout-ms", required_argument, 0, 'T'},
                                             {"verbose", no_argument, 0, 'v'},
                                             {"quiet", no_argument, 0, 'q'},
                                             {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    struct tsm_config cfg = {.doe_timeout_ms = 30000};
    enum vtsm_log_level level = VTSM_LOG_WARN;
    const char *trust_paths[16];
    int ntrust = 0, c;

    if (!vtsm_default_socket_path(cfg.socket_path, sizeof(cfg.socket_path))) {
        fprintf(stderr, "tsmd: default socket path too long\n");
        return 2;
    }
    while ((c = getopt_long(argc, argv, "s:t:T:vqh", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            if (strlen(optarg) >= sizeof(cfg.socket_path)) {
                fprintf(stderr, "tsmd: --socket path too long\n");
                return 2;
            }
            strcpy(cfg.socket_path, optarg);
            break;
        case 't':
            if (ntrust == (int)(sizeof(trust_paths) / sizeof(trust_paths[0]))) {
                fprintf(stderr, "tsmd: too many --trust paths\n");
                return 2;
            }
            trust_paths[ntrust++] = optarg;
            break;
        case 'T':
            cfg.doe_timeout_ms = atoi(optarg);
            if (cfg.doe_timeout_ms <= 0) {
                fprintf(stderr, "tsmd: --doe-timeout-ms must be positive\n");
                return 2;
            }
            break;
        case 'v':
            level = VTSM_LOG_DEBUG;
            break;
        case 'q':
            level = VTSM_LOG_ERROR;
            break;
        case 'h':
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
    vtsm_log_init("tsmd", level);

    vtsm_status st = vtsm_trust_new(&cfg.trust);
    for (int i = 0; st == VTSM_OK && i < ntrust; i++)
        st = vtsm_trust_add_path(cfg.trust, trust_paths[i]);
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
        return 1;
    }

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    st = tsm_init(&the_tsm, &cfg);
    if (st) {
        fprintf(stderr, "tsmd: %s: %s\n", vtsm_status_name(st), vtsm_err_detail());
        vtsm_trust_free(cfg.trust);
        return 1;
    }
    printf("tsmd listening on %s\n", cfg.socket_path);
    fflush(stdout);
    st = tsm_run(&the_tsm);
    tsm_fini(&the_tsm);
    return st == VTSM_OK ? 0 : 1;
}
