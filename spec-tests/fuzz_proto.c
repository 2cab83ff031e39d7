/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer entry for every proto parser that reads peer bytes: IDE_KM (requests,
 * QUERY_RESP, KP_ACK, K_GOSTOP_ACK), TDISP (header, requests, the response to each
 * request), the device interface report, the trace describers of DOE objects and SPDM
 * messages (vtsm_trace_doe / vtsm_trace_spdm), and COSE_Sign1 verification with a fixed
 * P-256 key (the COSE WG example key, so the RFC 9052 example token is a useful seed).
 *
 * Each input is offered to all of them unchanged, and once more with the protocol ID
 * byte forced to the right value so that the fuzzer does not have to find it first.
 * Any status is fine; the sanitizers catch what is not.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cbor.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "vtsm_cose.h"
#include "vtsm_idekm.h"
#include "vtsm_tdisp.h"
#include "vtsm_trace.h"

#define FUZZ_MAX_INPUT 8192

static EVP_PKEY *cose_key(void)
{
    static EVP_PKEY *key;
    static const uint8_t pub[65] = {
        0x04, 0xba, 0xc5, 0xb1, 0x1c, 0xad, 0x8f, 0x99, 0xf9, 0xc7, 0x2b, 0x05, 0xcf,
        0x4b, 0x9e, 0x26, 0xd2, 0x44, 0xdc, 0x18, 0x9f, 0x74, 0x52, 0x28, 0x25, 0x5a,
        0x21, 0x9a, 0x86, 0xd6, 0xa0, 0x9e, 0xff, 0x20, 0x13, 0x8b, 0xf8, 0x2d, 0xc1,
        0xb6, 0xd5, 0x62, 0xbe, 0x0f, 0xa5, 0x4a, 0xb7, 0x80, 0x4a, 0x3a, 0x64, 0xb6,
        0xd7, 0x2c, 0xcf, 0xed, 0x6b, 0x6f, 0xb6, 0xed, 0x28, 0xbb, 0xfc, 0x11, 0x7e};

    if (key)
        return key;
    OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    OSSL_PARAM *params = NULL;
    if (b && ctx && OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0) &&
        OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub)) &&
        (params = OSSL_PARAM_BLD_to_param(b)) != NULL && EVP_PKEY_fromdata_init(ctx) == 1)
        (void)EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(b);
    EVP_PKEY_CTX_free(ctx);
    if (!key)
        abort();
    return key;
}

static void run_idekm(const uint8_t *d, size_t n)
{
    static struct vtsm_idekm_sel_block sel[4];
    struct vtsm_idekm_query_resp qr = {.sel = sel, .sel_cap = 4};
    struct vtsm_idekm_req req;
    struct vtsm_idekm_ack ack;

    (void)vtsm_idekm_parse_request(d, n, &req);
    vtsm_idekm_key_wipe(&req.key);
    (void)vtsm_idekm_parse_query_resp(d, n, &qr);
    /* the lenient reading (bytes beyond the declared blocks counted, rule IDE.5) */
    struct vtsm_idekm_query_resp ql = {.sel = sel, .sel_cap = 4, .allow_trailing = true};
    if (vtsm_idekm_parse_query_resp(d, n, &ql) == VTSM_OK && ql.trailing > n)
        abort();
    (void)vtsm_idekm_parse_kp_ack(d, n, &ack);
    (void)vtsm_idekm_parse_gostop_ack(d, n, &ack);
}

static void run_tdisp(const uint8_t *d, size_t n)
{
    struct vtsm_tdisp_hdr hdr;
    struct vtsm_tdisp_req req;
    struct vtsm_tdisp_rsp rsp;
    uint32_t fid =
        n >= 9 ? (uint32_t)d[5] | (uint32_t)d[6] << 8 | (uint32_t)d[7] << 16 | (uint32_t)d[8] << 24
               : 0;

    (void)vtsm_tdisp_parse_header(d, n, &hdr);
    (void)vtsm_tdisp_parse_request(d, n, &req);
    for (uint8_t t = VTSM_TDISP_GET_VERSION; t <= VTSM_TDISP_STOP_INTERFACE_REQ; t++)
        (void)vtsm_tdisp_parse_response(d, n, t, fid, &rsp);
    (void)vtsm_tdisp_parse_response(d, n, VTSM_TDISP_VDM_REQ, fid, &rsp); /* VDM_RSP */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t copy[FUZZ_MAX_INPUT];
    static struct vtsm_tdisp_report rep;
    cbor_item_t *payload = NULL;
    uint8_t digest[48];

    if (size > FUZZ_MAX_INPUT)
        return 0;

    run_idekm(data, size);
    run_tdisp(data, size);
    if (size) {
        memcpy(copy, data, size);
        copy[0] = VTSM_PCI_PROTOCOL_ID_IDE_KM;
        run_idekm(copy, size);
        copy[0] = VTSM_PCI_PROTOCOL_ID_TDISP;
        run_tdisp(copy, size);
    }

    char line[160];
    vtsm_trace_doe(data, size, line, sizeof(line));
    vtsm_trace_spdm(data, size, line, sizeof(line));
    vtsm_trace_spdm(data, size, line, 8); /* a line cut short */

    if (vtsm_tdisp_report_parse(data, size, &rep) == VTSM_OK)
        (void)vtsm_tdisp_report_hash(VTSM_HASH_SHA256, data, size, digest);

    if (vtsm_cose_verify1(cose_key(), data, size, &payload) == VTSM_OK && payload)
        cbor_decref(&payload);
    return 0;
}
