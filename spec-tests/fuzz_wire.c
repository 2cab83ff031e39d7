/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer targets for the parsers that take bytes from an untrusted party:
 *   FUZZ_REQUESTER  the TSM's SPDM requester fed device responses (the input is split into
 *                   DOE objects by 2-byte length prefixes) through VCA, digests, certificate,
 *                   CHALLENGE and session setup (CHUNK_SEND_ACK / CHUNK_RESPONSE parsing
 *                   too, when the scripted device sets CHUNK_CAP);
 *   FUZZ_DEVICE     the emulated device (with CHUNK_CAP) fed requests the same way;
 *   FUZZ_ABI        the socket ABI decoder;
 *   FUZZ_PARSERS    DOE objects, SPDM certificate chains, DSP0277 secured messages and
 *                   simulated-link frames (also through the device's link end, whose
 *                   configuration writes land in its IDE register blocks);
 *   FUZZ_GUEST      the TSM's guest-request body checks (the input is the body; the harness
 *                   signs it with a registered TVM's key so the parser behind the signature
 *                   check is reached).
 * Built one binary per target (spec-tests/fuzz.cmake) with -DVTSM_FUZZ=ON and clang.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vtsm_abi.h"
#include "vtsm_cert.h"
#include "vtsm_devemu.h"
#include "vtsm_doe.h"
#include "vtsm_link_frame.h"
#include "vtsm_spdm_crypto.h"
#include "vtsm_spdm_req.h"

struct chunks {
    const uint8_t *p;
    size_t len, off;
};

/* Next chunk: u16 LE length then that many bytes (clamped to what is left). */
static __attribute__((unused)) int next_chunk(struct chunks *c, const uint8_t **out, size_t *n)
{
    if (c->len - c->off < 2)
        return 0;
    size_t want = (size_t)c->p[c->off] | ((size_t)c->p[c->off + 1] << 8);
    c->off += 2;
    if (want > c->len - c->off)
        want = c->len - c->off;
    *out = c->p + c->off;
    *n = want;
    c->off += want;
    return 1;
}

#if defined(FUZZ_REQUESTER)
static vtsm_status script_exchange(void *ctx, const uint8_t *req, size_t len, struct vtsm_buf *rsp)
{
    (void)req;
    (void)len;
    const uint8_t *p;
    size_t n;
    if (!next_chunk(ctx, &p, &n))
        return VTSM_E_CLOSED;
    return vtsm_buf_set(rsp, p, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct chunks c = {data, size, 0};
    struct vtsm_spdm_transport tr = {.exchange = script_exchange, .ctx = &c};
    struct vtsm_spdm_req_opts o;
    struct vtsm_spdm_req *r = NULL;
    uint8_t mask, digests[SPDM_MAX_SLOTS][VTSM_HASH_MAX];
    struct vtsm_spdm_meas m;

    vtsm_spdm_req_opts_default(&o);
    o.not_ready_retries = 1;
    if (vtsm_spdm_req_new(&o, &tr, &r) != VTSM_OK)
        return 0;
    if (vtsm_spdm_req_init_connection(r) == VTSM_OK &&
        vtsm_spdm_req_get_digests(r, &mask, digests) == VTSM_OK &&
        vtsm_spdm_req_get_certificate(r, 0) == VTSM_OK &&
        /* CHALLENGE_AUTH (and M1/M2) when the scripted device claims CHAL_CAP */
        (!(vtsm_spdm_req_info(r)->rsp_caps & SPDM_CAP_CHAL) ||
         vtsm_spdm_req_challenge(r, 0) != VTSM_E_CLOSED) &&
        vtsm_spdm_req_start_session(r, 0) == VTSM_OK) {
        memset(&m, 0, sizeof(m));
        vtsm_spdm_req_get_measurements(r, 0, NULL, &m);
        vtsm_spdm_meas_free(&m);
    }
    vtsm_spdm_req_free(r);
    return 0;
}

#elif defined(FUZZ_DEVICE)
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct vtsm_dev_config cfg;
    static int init;
    struct vtsm_dev *d = NULL;
    struct chunks c = {data, size, 0};
    struct vtsm_buf rsp = {0};
    const uint8_t *p;
    size_t n;

    if (!init) {
        vtsm_dev_config_default(&cfg);
        /* CHUNK_CAP (MaxSPDMmsgSize above DataTransferSize): CHUNK_SEND reassembly and
         * CHUNK_GET are reached too */
        cfg.max_spdm_msg_size = 8192;
        init = 1;
    }
    if (vtsm_dev_new(&cfg, &d) != VTSM_OK)
        return 0;
    while (next_chunk(&c, &p, &n))
        vtsm_dev_handle(d, p, n, &rsp);
    vtsm_buf_free(&rsp);
    vtsm_dev_free(d);
    return 0;
}

#elif defined(FUZZ_ABI)
/* A request decoded for row must hold only its row's keys, each within its field's range. */
static void check_req(const struct vtsm_abi_request *row, const struct vtsm_abi_req *r)
{
    uint64_t allowed = 0;
    for (size_t k = 0; row->keys[k]; k++)
        allowed |= 1ull << (size_t)(vtsm_abi_field_find(row->keys[k]) - vtsm_abi_fields);
    if (r->present & ~allowed)
        __builtin_trap();
    for (size_t f = 0; f < VTSM_ABI_F_COUNT_; f++) {
        const struct vtsm_abi_field *d = &vtsm_abi_fields[f];
        const char *m = (const char *)r + d->offset;
        uint64_t v;
        if (!(r->present >> f & 1u))
            continue;
        if (d->type == VTSM_ABI_FT_UINT) {
            memcpy(&v, m, sizeof(v));
            if (v < d->lo || v > d->hi)
                __builtin_trap();
        } else if (d->type == VTSM_ABI_FT_TEXT) {
            if (strlen(m) > d->hi)
                __builtin_trap();
        } else if (d->type == VTSM_ABI_FT_DEV) {
            if (vtsm_abi_check_dev(m) != VTSM_OK)
                __builtin_trap();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cbor_item_t *m = NULL;
    if (vtsm_abi_decode(data, size, &m) == VTSM_OK) {
        struct vtsm_buf frame = {0};
        /* anything accepted must re-encode */
        if (vtsm_abi_encode(m, &frame) != VTSM_OK)
            __builtin_trap();
        vtsm_buf_free(&frame);
        /* and decode as a request of every row without harm */
        for (size_t i = 0; i < VTSM_ABI_REQ_COUNT_; i++) {
            struct vtsm_abi_req r;
            if (vtsm_abi_req_decode(m, &vtsm_abi_requests[i], &r) == VTSM_OK)
                check_req(&vtsm_abi_requests[i], &r);
        }
        cbor_decref(&m);
    }
    return 0;
}

#elif defined(FUZZ_PARSERS)
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vtsm_doe_obj o;
    vtsm_doe_parse(data, size, &o);

    struct vtsm_certchain cc;
    memset(&cc, 0, sizeof(cc));
    if (vtsm_certchain_parse(data, size, VTSM_HASH_SHA384, VTSM_ASYM_ECDSA_P384, &cc) == VTSM_OK)
        vtsm_certchain_free(&cc);

    struct vtsm_spdm_dir dir;
    memset(&dir, 0x11, sizeof(dir));
    dir.seq = 0;
    dir.secmsg_version = 0;
    dir.seq_be = false;
    uint8_t app[4096];
    size_t app_len = sizeof(app);
    vtsm_secmsg_open(&dir, 0x12345678u, data, size, app, &app_len);

    uint16_t versions[VTSM_SECMSG_OPAQUE_MAX_VERSIONS];
    size_t nv = VTSM_SECMSG_OPAQUE_MAX_VERSIONS;
    vtsm_secmsg_opaque_parse_supported(data, size, versions, &nv);
    uint16_t v;
    vtsm_secmsg_opaque_parse_select(data, size, &v);

    struct vtsm_link_frame lf;
    vtsm_link_frame_decode(data, size, &lf);

    static struct vtsm_dev *dev;
    if (!dev) {
        struct vtsm_dev_config c;
        vtsm_dev_config_default(&c);
        c.ide_addr_assoc = 2;
        if (vtsm_dev_new(&c, &dev) != VTSM_OK)
            abort();
    }
    struct vtsm_buf rsp = {0};
    (void)vtsm_dev_link(dev, data, size, &rsp);
    vtsm_buf_free(&rsp);
    return 0;
}

#elif defined(FUZZ_GUEST)
#include <openssl/ec.h>

#include "tsm_tvm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct tsm_tvm_registry reg;
    static EVP_PKEY *key;
    static uint32_t tvm;
    if (!key) {
        uint8_t pub[65];
        size_t pub_len = sizeof(pub);
        key = EVP_EC_gen("P-256");
        if (!key || EVP_PKEY_get_octet_string_param(key, "encoded-pub-key", pub, sizeof(pub),
                                                    &pub_len) != 1)
            __builtin_trap();
        const struct tsm_tvm *v = NULL;
        tsm_tvm_registry_init(&reg);
        if (tsm_tvm_create(&reg, "fuzz", pub, pub_len, &v) != VTSM_OK)
            __builtin_trap();
        tvm = v->id;
    }
    /* sign PREFIX || body so the body reaches the parser */
    size_t plen = strlen(VTSM_ABI_GUEST_SIG_PREFIX);
    uint8_t *msg = malloc(plen + size + 1), sig[64];
    if (!msg)
        return 0;
    memcpy(msg, VTSM_ABI_GUEST_SIG_PREFIX, plen);
    if (size)
        memcpy(msg + plen, data, size);
    if (vtsm_ecdsa_sign(key, VTSM_ASYM_ECDSA_P256, VTSM_HASH_SHA256, msg, plen + size, sig) ==
        VTSM_OK) {
        struct vtsm_abi_guest_body g;
        tsm_tvm_verify_request(&reg, tvm, data, size, sig, sizeof(sig), &g);
    }
    free(msg);
    return 0;
}
#else
#error "define one FUZZ_* target"
#endif
