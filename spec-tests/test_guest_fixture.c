/* SPDX-License-Identifier: BSD-3-Clause */
/* Guest-shim test fixture: evidence builders and a fake TSM (test_guest_fixture.h). */
#include "test_guest_fixture.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "vtsm_abi.h"
#include "vtsm_cose.h"
#include "vtsm_crypto.h"
#include "vtsm_guard.h"
#include "vtsm_tdisp.h"

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        if ((expr) != VTSM_OK)                                                                     \
            goto fail;                                                                             \
    } while (0)

/* ------------------------------------------------------------ evidence */

vtsm_status gf_make_evidence(struct gf_evidence *e)
{
    struct vtsm_tdisp_report r = {0};
    memset(e, 0, sizeof(*e));
    r.interface_info = VTSM_TDISP_INFO_NO_UPDATE_AFTER_LOCK | VTSM_TDISP_INFO_DMA_WITHOUT_PASID;
    r.mmio_range_count = 2;
    r.mmio_range[0] = (struct vtsm_tdisp_mmio_range){0x10000000, 4, 0, 0};
    r.mmio_range[1] = (struct vtsm_tdisp_mmio_range){0x20000000, 1, VTSM_TDISP_RANGE_MSIX_TABLE, 1};
    struct vtsm_wr w = vtsm_wr_init(e->report, sizeof(e->report));
    VTSM_GUARD(vtsm_tdisp_report_build(&w, &r));
    e->report_len = w.len;

    for (size_t i = 0; i < sizeof(e->m1); i++)
        e->m1[i] = (uint8_t)(0x10 + i);
    for (size_t i = 0; i < sizeof(e->m2); i++)
        e->m2[i] = (uint8_t)(0x80 + i);
    /* DSP0274 measurement blocks: Index, MeasurementSpecification (bit 0: DMTF),
     * MeasurementSize, then DMTFSpecMeasurementValueType, ...ValueSize, the value */
    w = vtsm_wr_init(e->record, sizeof(e->record));
    VTSM_GUARD(vtsm_wr_u8(&w, 1));
    VTSM_GUARD(vtsm_wr_u8(&w, 1));
    VTSM_GUARD(vtsm_wr_le16(&w, 3 + sizeof(e->m1)));
    VTSM_GUARD(vtsm_wr_u8(&w, 0x00));
    VTSM_GUARD(vtsm_wr_le16(&w, sizeof(e->m1)));
    VTSM_GUARD(vtsm_wr_bytes(&w, e->m1, sizeof(e->m1)));
    VTSM_GUARD(vtsm_wr_u8(&w, 2));
    VTSM_GUARD(vtsm_wr_u8(&w, 1));
    VTSM_GUARD(vtsm_wr_le16(&w, 3 + sizeof(e->m2)));
    VTSM_GUARD(vtsm_wr_u8(&w, 0x81));
    VTSM_GUARD(vtsm_wr_le16(&w, sizeof(e->m2)));
    VTSM_GUARD(vtsm_wr_bytes(&w, e->m2, sizeof(e->m2)));
    e->record_len = w.len;
    memset(e->chain, 0xc3, sizeof(e->chain));
    memset(e->transcript, 0x7e, sizeof(e->transcript));
    return VTSM_OK;
}

static vtsm_status sha384(const uint8_t *p, size_t n, uint8_t out[48])
{
    return vtsm_hash(VTSM_HASH_SHA384, p, n, out);
}

cbor_item_t *gf_make_claims(const struct gf_evidence *e, const uint8_t nonce[32],
                            const uint8_t identity[32], enum gf_spoil sp)
{
    uint8_t d[48], id[32];
    cbor_item_t *m = vtsm_abi_map_new();
    if (!m)
        return NULL;
    memcpy(id, identity, 32);
    if (sp == GF_SP_CLAIM_IDENTITY)
        id[31] ^= 1;
    TRY(vtsm_abi_put_bytes(m, "nonce", nonce, 32));
    TRY(vtsm_abi_put_uint(m, "tvm", sp == GF_SP_CLAIM_TVM ? GF_TVM + 1 : GF_TVM));
    TRY(vtsm_abi_put_bytes(m, "tvm_identity", id, 32));
    TRY(vtsm_abi_put_tstr(m, "dev", sp == GF_SP_CLAIM_DEV ? "0000:04:00.0" : GF_DEV));
    TRY(vtsm_abi_put_uint(m, "tdi", sp == GF_SP_CLAIM_TDI ? GF_TDI + 1 : GF_TDI));
    TRY(vtsm_abi_put_tstr(m, "state",
                          sp == GF_SP_CLAIM_UNLOCKED ? "CONFIG_UNLOCKED" : "CONFIG_LOCKED"));
    TRY(sha384(e->report, e->report_len, d));
    TRY(vtsm_abi_put_bytes(m, "report_digest", d, 48));
    TRY(sha384(e->chain, sizeof(e->chain), d));
    TRY(vtsm_abi_put_bytes(m, "cert_chain_digest", d, 48));
    TRY(sha384(e->record, e->record_len, d));
    TRY(vtsm_abi_put_bytes(m, "measurements_digest", d, 48));
    TRY(sha384(e->transcript, sizeof(e->transcript), d));
    TRY(vtsm_abi_put_bytes(m, "measurement_transcript_digest", d, 48));
    TRY(vtsm_abi_put_bool(m, "after_lock", sp != GF_SP_CLAIM_NOT_AFTER_LOCK));
    return m;
fail:
    cbor_decref(&m);
    return NULL;
}

EVP_PKEY *gf_load_key(const char *path)
{
    EVP_PKEY *k = NULL;
    return vtsm_pkey_load_pem(path, &k) == VTSM_OK ? k : NULL;
}

EVP_PKEY *gf_tsm_key(void)
{
    return gf_load_key(VTSM_SOURCE_DIR "/pki/tsm/tsm.key");
}

vtsm_status gf_make_token(EVP_PKEY *key, const cbor_item_t *claims, const uint8_t *kid,
                          size_t kid_len, struct vtsm_buf *out)
{
    uint8_t k[VTSM_GUEST_KID_SIZE];
    struct vtsm_buf frame = {0};
    cbor_item_t *def = NULL;
    vtsm_status st;

    if (!kid) {
        X509 *cert = NULL;
        VTSM_GUARD(vtsm_guest_default_tsm_cert(&cert));
        st = vtsm_guest_tsm_kid(cert, k);
        X509_free(cert);
        VTSM_GUARD(st);
        kid = k;
        kid_len = sizeof(k);
    }
    /* vtsm_abi maps are indefinite-length until encoded; COSE signs definite ones only */
    st = vtsm_abi_encode(claims, &frame);
    if (st == VTSM_OK)
        st = vtsm_abi_decode(frame.data + VTSM_ABI_FRAME_HDR_SIZE,
                             frame.len - VTSM_ABI_FRAME_HDR_SIZE, &def);
    if (st == VTSM_OK)
        st = vtsm_cose_sign1(key, def, kid, kid_len, out);
    if (def)
        cbor_decref(&def);
    vtsm_buf_free(&frame);
    return st;
}

cbor_item_t *gf_make_info(const struct gf_evidence *e, uint64_t seq, const uint8_t nonce[32],
                          const struct vtsm_buf *token, enum gf_spoil sp)
{
    uint8_t d[48], report[256], record[256], spdm_nonce[32], tr[64];
    cbor_item_t *m = vtsm_abi_map_new(), *mm, *blocks, *mmio, *b;
    if (!m)
        return NULL;
    memcpy(report, e->report, e->report_len);
    memcpy(record, e->record, e->record_len);
    memcpy(spdm_nonce, nonce, 32);
    memcpy(tr, e->transcript, sizeof(tr));
    if (sp == GF_SP_INFO_REPORT)
        report[e->report_len - 5] ^= 0x10; /* a range's page count */
    if (sp == GF_SP_INFO_RECORD)
        record[10] ^= 0x01; /* a measurement value byte */
    if (sp == GF_SP_INFO_SPDM_NONCE)
        spdm_nonce[0] ^= 1;
    if (sp == GF_SP_INFO_TRANSCRIPT)
        tr[0] ^= 1;

    TRY(vtsm_abi_put_uint(m, "gop", VTSM_ABI_GOP_INFO));
    TRY(vtsm_abi_put_uint(m, "tvm", GF_TVM));
    TRY(vtsm_abi_put_uint(m, "seq", seq));
    TRY(vtsm_abi_put_tstr(m, "dev", GF_DEV));
    TRY(vtsm_abi_put_uint(m, "tdi", GF_TDI));
    TRY(vtsm_abi_put_tstr(m, "state", "CONFIG_LOCKED"));
    TRY(vtsm_abi_put_bytes(m, "report", report, e->report_len));
    TRY(sha384(e->report, e->report_len, d));
    TRY(vtsm_abi_put_bytes(m, "report_digest", d, 48));
    TRY(vtsm_abi_put_uint(m, "interface_info", 0x0003));
    mmio = vtsm_abi_array_new();
    TRY(vtsm_abi_put_item(m, "mmio", mmio));
    for (unsigned i = 0; i < 2; i++) {
        b = vtsm_abi_map_new();
        TRY(vtsm_abi_push_item(mmio, b));
        TRY(vtsm_abi_put_uint(b, "range_id", i));
    }
    mm = vtsm_abi_map_new();
    TRY(vtsm_abi_put_item(m, "measurements", mm));
    blocks = vtsm_abi_array_new();
    TRY(vtsm_abi_put_item(mm, "blocks", blocks));
    for (unsigned i = 1; i <= 2; i++) {
        b = vtsm_abi_map_new();
        TRY(vtsm_abi_push_item(blocks, b));
        TRY(vtsm_abi_put_uint(b, "index", i));
        TRY(vtsm_abi_put_bytes(b, "value", i == 1 ? e->m1 : e->m2, i == 1 ? 32 : 48));
    }
    TRY(vtsm_abi_put_bool(mm, "after_lock", true));
    TRY(vtsm_abi_put_bytes(mm, "record", record, e->record_len));
    TRY(vtsm_abi_put_bytes(mm, "signature", (const uint8_t *)"sig", 3));
    TRY(vtsm_abi_put_bytes(mm, "transcript", tr, sizeof(tr)));
    TRY(vtsm_abi_put_bytes(mm, "nonce", spdm_nonce, 32));
    TRY(vtsm_abi_put_bytes(m, "cert_chain", e->chain, sizeof(e->chain)));
    TRY(sha384(e->chain, sizeof(e->chain), d));
    if (sp == GF_SP_INFO_CHAIN_DIGEST)
        d[0] ^= 1;
    TRY(vtsm_abi_put_bytes(m, "cert_chain_digest", d, 48));
    if (token && sp != GF_SP_INFO_NO_TOKEN)
        TRY(vtsm_abi_put_bytes(m, "token", token->data, token->len));
    return m;
fail:
    cbor_decref(&m);
    return NULL;
}

void gf_good_reference(const struct gf_evidence *e, char *out, size_t cap)
{
    uint8_t rd[48] = {0}, cd[48] = {0};
    char h1[100], h2[100], h3[70], h4[100];
    (void)sha384(e->report, e->report_len, rd);
    (void)sha384(e->chain, sizeof(e->chain), cd);
    vtsm_hex(h1, rd, 48);
    vtsm_hex(h2, cd, 48);
    vtsm_hex(h3, e->m1, 32);
    vtsm_hex(h4, e->m2, 48);
    snprintf(out, cap,
             "# reference values for " GF_DEV " TDI 2\n"
             "\n"
             "report_digest %s\n"
             "cert_chain_digest\t%s   # the device chain\n"
             "interface_info 0x0003\r\n"
             "   mmio_ranges 2\n"
             "measurement 1 %s\n"
             "measurement 2 %s\n",
             h1, h2, h3, h4);
}

/* ------------------------------------------------------------ the fake TSM */

#define FK_CHECK(f, cond)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            if (!(f)->err[0])                                                                      \
                snprintf((f)->err, sizeof((f)->err), "%s:%d: %s (%s)", __FILE__, __LINE__, #cond,  \
                         vtsm_err_detail());                                                       \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

static EVP_PKEY *pub_from_point(const uint8_t pt[VTSM_GUEST_PUBKEY_SIZE])
{
    OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *k = NULL;
    if (b && OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) == 1 &&
        OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, pt, VTSM_GUEST_PUBKEY_SIZE) ==
            1 &&
        (params = OSSL_PARAM_BLD_to_param(b)) != NULL &&
        (ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) != NULL &&
        EVP_PKEY_fromdata_init(ctx) == 1)
        (void)EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY, params);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(b);
    return k;
}

/* RESULT envelope + the guest echo {gop, tvm, seq}. */
static cbor_item_t *guest_result(uint64_t id, uint64_t gop, uint64_t seq)
{
    cbor_item_t *r = vtsm_abi_result_msg(id);
    if (r && (vtsm_abi_put_uint(r, "gop", gop) || vtsm_abi_put_uint(r, "tvm", GF_TVM) ||
              vtsm_abi_put_uint(r, "seq", seq)))
        cbor_decref(&r);
    return r;
}

/* An ERROR as tsmd sends it: the refusal recorded under its rule, then the one builder. */
static bool send_error(struct gf_fake *f, uint64_t id, vtsm_status st, enum vtsm_rule rule,
                       const char *detail)
{
    vtsm_refuse(st, rule, "%s", detail);
    cbor_item_t *e = vtsm_abi_error_msg(id, st, NULL);
    bool ok = e && vtsm_abi_send(f->fd, e) == VTSM_OK;
    if (e)
        cbor_decref(&e);
    return ok;
}

static void serve_info(struct gf_fake *f, uint64_t id, uint64_t seq, const uint8_t *np)
{
    cbor_item_t *claims = NULL, *reply = NULL, *r = NULL;
    EVP_PKEY *tkey = NULL;
    struct vtsm_buf token = {0};
    bool spoil = f->mode == GF_SPOIL;
    uint64_t op;

    f->infos++;
    if (f->mode == GF_NOT_OWNER) {
        FK_CHECK(f, send_error(f, id, VTSM_E_NOT_OWNER, VTSM_RULE_TDI_6,
                               "INFO refused: TVM 4 does not own " GF_DEV " TDI 2 (rule TDI.6)"));
        goto out;
    }
    if (f->mode == GF_DOE_THEN_OK) {
        static const uint8_t obj[8] = {0x01, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00};
        const uint8_t *o;
        size_t ol;
        reply = vtsm_abi_doe_pending_msg(id, GF_DEV, 1, obj, sizeof(obj));
        FK_CHECK(f, reply && vtsm_abi_send(f->fd, reply) == VTSM_OK);
        cbor_decref(&reply);
        FK_CHECK(f, vtsm_abi_recv(f->fd, &r, 10000) == VTSM_OK);
        FK_CHECK(f, vtsm_abi_get_op(r, &op) == VTSM_OK && op == VTSM_ABI_OP_DOE_RESPONSE);
        FK_CHECK(f,
                 vtsm_abi_get_bytes(r, "object", &o, &ol) == VTSM_OK && ol <= sizeof(f->doe_seen));
        memcpy(f->doe_seen, o, ol);
        f->doe_seen_len = ol;
    }
    if (np) {
        tkey = gf_tsm_key();
        FK_CHECK(f, tkey != NULL);
        claims = gf_make_claims(&f->ev, np, f->identity, spoil ? f->spoil : GF_SP_NONE);
        FK_CHECK(f, claims != NULL);
        FK_CHECK(f, gf_make_token(tkey, claims, NULL, 0, &token) == VTSM_OK);
    }
    static const uint8_t zero[32];
    reply = gf_make_info(&f->ev, f->mode == GF_WRONG_ECHO ? seq - 1 : seq, np ? np : zero,
                         np ? &token : NULL, spoil ? f->spoil : GF_SP_NONE);
    FK_CHECK(f, reply != NULL);
    FK_CHECK(f, vtsm_abi_put_uint(reply, "op", VTSM_ABI_OP_RESULT) == VTSM_OK);
    FK_CHECK(f, vtsm_abi_put_uint(reply, "id", id) == VTSM_OK);
    FK_CHECK(f, vtsm_abi_put_uint(reply, "status", 0) == VTSM_OK);
    FK_CHECK(f, vtsm_abi_send(f->fd, reply) == VTSM_OK);
out:
    if (r)
        cbor_decref(&r);
    if (reply)
        cbor_decref(&reply);
    if (claims)
        cbor_decref(&claims);
    vtsm_buf_free(&token);
    EVP_PKEY_free(tkey);
}

/* One GUEST_REQUEST, checked in tsmd's order: signature (GUEST.1), body, tvm (GUEST.3),
 * seq (GUEST.2). */
static void serve_request(struct gf_fake *f, const cbor_item_t *m, uint64_t id)
{
    cbor_item_t *body = NULL, *reply = NULL;
    EVP_PKEY *pub = pub_from_point(f->guest_pub);
    struct vtsm_buf tbs = {0};
    uint64_t tvm = 0, btvm = 0, gop = 0, seq = 0;
    const uint8_t *bp, *sp, *np = NULL;
    size_t bl, sl, nl = 0;
    bool have = false;

    f->requests++;
    FK_CHECK(f, pub != NULL);
    FK_CHECK(f, vtsm_abi_get_uint(m, "tvm", &tvm) == VTSM_OK && tvm == GF_TVM);
    FK_CHECK(f, vtsm_abi_get_bytes(m, "body", &bp, &bl) == VTSM_OK);
    FK_CHECK(f, vtsm_abi_get_bytes(m, "sig", &sp, &sl) == VTSM_OK);
    FK_CHECK(f, vtsm_buf_append(&tbs, VTSM_ABI_GUEST_SIG_PREFIX,
                                sizeof(VTSM_ABI_GUEST_SIG_PREFIX) - 1) == VTSM_OK);
    FK_CHECK(f, vtsm_buf_append(&tbs, bp, bl) == VTSM_OK);
    FK_CHECK(f, vtsm_ecdsa_verify(pub, VTSM_ASYM_ECDSA_P256, VTSM_HASH_SHA256, tbs.data, tbs.len,
                                  sp, sl) == VTSM_OK);
    FK_CHECK(f, vtsm_abi_decode(bp, bl, &body) == VTSM_OK);
    FK_CHECK(f, vtsm_abi_check_keys_in(body, vtsm_abi_keys_guest_body, "guest body") == VTSM_OK);
    FK_CHECK(f, vtsm_abi_get_uint(body, "gop", &gop) == VTSM_OK);
    FK_CHECK(f, vtsm_abi_get_uint(body, "tvm", &btvm) == VTSM_OK && btvm == tvm);
    FK_CHECK(f, vtsm_abi_get_uint(body, "seq", &seq) == VTSM_OK);
    if (seq <= f->last_seq) {
        f->replays++;
        FK_CHECK(f, send_error(f, id, VTSM_E_REPLAY, VTSM_RULE_GUEST_2,
                               "seq not above the last (rule GUEST.2)"));
        goto out;
    }
    f->last_seq = seq;
    FK_CHECK(f, vtsm_abi_opt_bytes(body, "nonce", &np, &nl, &have) == VTSM_OK);
    FK_CHECK(f, !have || nl == 32);
    if (!have)
        np = NULL;

    switch (gop) {
    case VTSM_ABI_GOP_INFO:
        serve_info(f, id, seq, np);
        goto out;
    case VTSM_ABI_GOP_LIST: {
        f->lists++;
        reply = guest_result(id, gop, seq);
        cbor_item_t *arr = vtsm_abi_array_new(), *t = vtsm_abi_map_new();
        FK_CHECK(f, reply && vtsm_abi_put_item(reply, "tdis", arr) == VTSM_OK);
        FK_CHECK(f, vtsm_abi_push_item(arr, t) == VTSM_OK);
        FK_CHECK(f, vtsm_abi_put_tstr(t, "dev", GF_DEV) == VTSM_OK);
        FK_CHECK(f, vtsm_abi_put_uint(t, "tdi", GF_TDI) == VTSM_OK);
        FK_CHECK(f, vtsm_abi_put_tstr(t, "state", "CONFIG_LOCKED") == VTSM_OK);
        break;
    }
    case VTSM_ABI_GOP_ACCEPT:
        f->accepts++;
        reply = guest_result(id, gop, seq);
        FK_CHECK(f, reply && vtsm_abi_put_tstr(reply, "state", "RUN") == VTSM_OK);
        FK_CHECK(f, vtsm_abi_put_bool(reply, "mmio_enabled", true) == VTSM_OK);
        break;
    case VTSM_ABI_GOP_REJECT: {
        bool has_reason = false;
        f->rejects++;
        FK_CHECK(f, vtsm_abi_opt_tstr(body, "reason", f->reason, sizeof(f->reason), &has_reason) ==
                        VTSM_OK);
        reply = guest_result(id, gop, seq);
        FK_CHECK(f, reply != NULL);
        break;
    }
    default:
        FK_CHECK(f, !"unknown gop");
    }
    FK_CHECK(f, vtsm_abi_send(f->fd, reply) == VTSM_OK);
out:
    if (reply)
        cbor_decref(&reply);
    if (body)
        cbor_decref(&body);
    vtsm_buf_free(&tbs);
    EVP_PKEY_free(pub);
}

/* One connection: HELLO, then requests until the client closes. */
static void serve_conn(struct gf_fake *f)
{
    cbor_item_t *m = NULL, *reply = NULL;
    uint64_t op = 0, id = 0;

    FK_CHECK(f, vtsm_abi_recv(f->fd, &m, 10000) == VTSM_OK);
    FK_CHECK(f, vtsm_abi_get_op(m, &op) == VTSM_OK && op == VTSM_ABI_OP_HELLO);
    FK_CHECK(f, vtsm_abi_get_id(m, &id) == VTSM_OK);
    FK_CHECK(f, vtsm_abi_get_tstr(m, "role", f->role, sizeof(f->role)) == VTSM_OK);
    reply = vtsm_abi_result_msg(id);
    FK_CHECK(f, reply && vtsm_abi_put_uint(reply, "version", 1) == VTSM_OK);
    FK_CHECK(f, vtsm_abi_put_tstr(reply, "tsm", "fake") == VTSM_OK);
    FK_CHECK(f, vtsm_abi_put_tstr(reply, "role", f->role) == VTSM_OK);
    FK_CHECK(f, vtsm_abi_send(f->fd, reply) == VTSM_OK);
    cbor_decref(&reply);
    cbor_decref(&m);
    for (;;) {
        vtsm_status st = vtsm_abi_recv(f->fd, &m, 10000);
        if (st == VTSM_E_CLOSED)
            break;
        FK_CHECK(f, st == VTSM_OK);
        FK_CHECK(f, vtsm_abi_get_op(m, &op) == VTSM_OK && op == VTSM_ABI_OP_GUEST_REQUEST);
        FK_CHECK(f, vtsm_abi_get_id(m, &id) == VTSM_OK);
        serve_request(f, m, id);
        cbor_decref(&m);
        if (f->err[0])
            break;
    }
out:
    if (m)
        cbor_decref(&m);
    if (reply)
        cbor_decref(&reply);
}

static void *fake_main(void *arg)
{
    struct gf_fake *f = arg;
    if (f->lfd < 0) {
        serve_conn(f);
        return NULL;
    }
    for (;;) {
        struct pollfd p[2] = {{.fd = f->lfd, .events = POLLIN},
                              {.fd = f->stop_rd, .events = POLLIN}};
        if (poll(p, 2, 30000) <= 0 || (p[1].revents & POLLIN))
            break;
        f->fd = accept(f->lfd, NULL, NULL);
        if (f->fd < 0)
            continue;
        serve_conn(f);
        close(f->fd);
        f->fd = -1;
    }
    return NULL;
}

static int start_common(struct gf_fake *f)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    f->stop_rd = p[0];
    f->stop_wr = p[1];
    return pthread_create(&f->th, NULL, fake_main, f) == 0 ? 0 : -1;
}

int gf_fake_start_pair(struct gf_fake *f, int *client_fd)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return -1;
    f->fd = sv[1];
    f->lfd = -1;
    *client_fd = sv[0];
    return start_common(f);
}

int gf_fake_start_listen(struct gf_fake *f, const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
        return -1;
    strcpy(sa.sun_path, path);
    f->fd = -1;
    f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(f->lfd, 4) != 0)
        return -1;
    return start_common(f);
}

int gf_fake_stop(struct gf_fake *f)
{
    if (write(f->stop_wr, "x", 1) != 1 && !f->err[0])
        snprintf(f->err, sizeof(f->err), "cannot stop the fake: %s", strerror(errno));
    pthread_join(f->th, NULL);
    close(f->stop_rd);
    close(f->stop_wr);
    if (f->fd >= 0)
        close(f->fd);
    if (f->lfd >= 0)
        close(f->lfd);
    f->fd = f->lfd = -1;
    return f->err[0] ? -1 : 0;
}
