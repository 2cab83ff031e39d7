/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Seeds for fuzz_requester and fuzz_device: one real session between the requester and
 * the emulated device, in-process (VCA, digests, certificate, KEY_EXCHANGE + FINISH,
 * measurements in the session, a TDISP and an IDE_KM message, END_SESSION), recorded in
 * the fuzzers' input format (each DOE object as a 2-byte length + its bytes).
 *   fuzz_seedgen DIR   writes DIR/requester/session and DIR/device/session
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "vtsm_devemu.h"
#include "vtsm_doe.h"
#include "vtsm_spdm_req.h"

struct rec {
    struct vtsm_dev *dev;
    FILE *req, *rsp;
};

static void put(FILE *f, const uint8_t *p, size_t n)
{
    if (n > 0xFFFF)
        n = 0xFFFF;
    uint8_t len[2] = {(uint8_t)n, (uint8_t)(n >> 8)};
    fwrite(len, 1, 2, f);
    fwrite(p, 1, n, f);
}

static vtsm_status rec_exchange(void *ctx, const uint8_t *req, size_t len, struct vtsm_buf *rsp)
{
    struct rec *r = ctx;
    vtsm_status st = vtsm_dev_handle(r->dev, req, len, rsp);
    put(r->req, req, len);
    put(r->rsp, rsp->data, rsp->len);
    return st;
}

int main(int argc, char **argv)
{
    char p1[512], p2[512];
    if (argc != 2)
        return 2;
    snprintf(p1, sizeof(p1), "%s/requester", argv[1]);
    snprintf(p2, sizeof(p2), "%s/device", argv[1]);
    mkdir(argv[1], 0755);
    mkdir(p1, 0755);
    mkdir(p2, 0755);
    snprintf(p1, sizeof(p1), "%s/requester/session", argv[1]);
    snprintf(p2, sizeof(p2), "%s/device/session", argv[1]);

    struct vtsm_dev_config cfg;
    struct rec r = {0};
    vtsm_dev_config_default(&cfg);
    if (vtsm_dev_new(&cfg, &r.dev) != VTSM_OK)
        return 1;
    r.rsp = fopen(p1, "wb");
    r.req = fopen(p2, "wb");
    if (!r.rsp || !r.req)
        return 1;

    struct vtsm_spdm_transport tr = {.exchange = rec_exchange, .ctx = &r};
    struct vtsm_spdm_req_opts o;
    struct vtsm_spdm_req *q = NULL;
    uint8_t mask, digests[SPDM_MAX_SLOTS][VTSM_HASH_MAX];
    struct vtsm_spdm_meas m;
    struct vtsm_buf out = {0};
    memset(&m, 0, sizeof(m));
    vtsm_spdm_req_opts_default(&o);
    int rc = 1;
    if (vtsm_spdm_req_new(&o, &tr, &q) == VTSM_OK && vtsm_spdm_req_init_connection(q) == VTSM_OK &&
        vtsm_spdm_req_get_digests(q, &mask, digests) == VTSM_OK &&
        vtsm_spdm_req_get_certificate(q, 0) == VTSM_OK &&
        vtsm_spdm_req_challenge(q, 0) == VTSM_OK && vtsm_spdm_req_start_session(q, 0) == VTSM_OK &&
        vtsm_spdm_req_get_measurements(q, 0, NULL, &m) == VTSM_OK) {
        /* one TDISP GET_VERSION (TDI 0) and one IDE_KM QUERY (port 0) */
        const uint8_t tdisp[] = {0x01, 0x10, 0x81, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
        const uint8_t idekm[] = {0x00, 0x00, 0x00, 0x00};
        vtsm_spdm_req_vendor(q, tdisp, sizeof(tdisp), &out);
        vtsm_spdm_req_vendor(q, idekm, sizeof(idekm), &out);
        rc = vtsm_spdm_req_end_session(q) == VTSM_OK ? 0 : 1;
    }
    vtsm_buf_free(&out);
    vtsm_spdm_meas_free(&m);
    vtsm_spdm_req_free(q);
    vtsm_dev_free(r.dev);
    fclose(r.req);
    fclose(r.rsp);
    if (rc)
        fprintf(stderr, "fuzz_seedgen: the recorded session failed\n");
    return rc;
}
