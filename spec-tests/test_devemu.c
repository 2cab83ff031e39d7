/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * devemu: the emulated device's SPDM responder, driven in-process with hand-built DOE
 * objects through vtsm_dev_handle().
 *
 * The requester side here is written from the DSP0274/DSP0277 message layouts directly
 * (bytes assembled by hand, transcripts kept as raw concatenations), so a signature or
 * verify-data that checks out means the device followed the transcript rules, not merely
 * agreed with itself. Failure cases first; ERROR responses are checked byte for byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/crypto.h>

#include "vtsm_buf.h"
#include "vtsm_cert.h"
#include "vtsm_crypto.h"
#include "vtsm_devemu.h"
#include "vtsm_doe.h"
#include "vtsm_spdm_crypto.h"
#include "vtsm_spdm_defs.h"

#define V10 0x10
#define V12 0x12
#define V13 0x13
#define ERR 0x7F
/* Requester Flags: ENCRYPT_CAP | MAC_CAP | KEY_EX_CAP. */
#define REQ_FLAGS (SPDM_CAP_ENCRYPT | SPDM_CAP_MAC | SPDM_CAP_KEY_EX)
#define REQ_SID   0xA55A
#define MSG_MAX   70000

/* ---- a small requester, written from the message layouts ---- */

struct rq {
    struct vtsm_dev *d;
    uint8_t ver;
    enum vtsm_hash_alg hash;
    enum vtsm_asym_alg asym;
    enum vtsm_dhe_group dhe;
    size_t hlen;
    struct vtsm_buf vca;
    struct vtsm_buf log;  /* L1/L2 message M outside the session */
    struct vtsm_buf slog; /* ... inside it */
    uint8_t slot_mask;
    uint8_t digests[8][VTSM_HASH_MAX];
    struct vtsm_buf chain;
    struct vtsm_certchain cc;
    bool have_cc;
    uint32_t sid;
    struct vtsm_spdm_ks ks;
    struct vtsm_buf th;
    struct vtsm_buf rsp; /* the last whole DOE response */
    uint8_t doe_type;    /* its data object type */
    uint8_t msg[MSG_MAX];
    size_t msg_len; /* payload (clear, DW padded) or ApplicationData (secured) */
};

static struct rq *rq_new(const struct vtsm_dev_config *c)
{
    struct rq *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    struct vtsm_dev_config def;
    if (!c) {
        vtsm_dev_config_default(&def);
        c = &def;
    }
    assert_int_equal(vtsm_dev_new(c, &r->d), VTSM_OK);
    return r;
}

static void rq_free(struct rq *r)
{
    vtsm_dev_free(r->d);
    vtsm_buf_free(&r->vca);
    vtsm_buf_free(&r->log);
    vtsm_buf_free(&r->slog);
    vtsm_buf_free(&r->chain);
    vtsm_buf_free(&r->th);
    vtsm_buf_free(&r->rsp);
    if (r->have_cc)
        vtsm_certchain_free(&r->cc);
    vtsm_spdm_ks_wipe(&r->ks);
    free(r);
}

/* One raw DOE object in; the device must answer (returns its status). */
static vtsm_status rq_raw(struct rq *r, const uint8_t *obj, size_t len)
{
    vtsm_status st = vtsm_dev_handle(r->d, obj, len, &r->rsp);
    r->doe_type = 0xFF;
    r->msg_len = 0;
    if (st == VTSM_OK) {
        struct vtsm_doe_obj o;
        assert_int_equal(vtsm_doe_parse(r->rsp.data, r->rsp.len, &o), VTSM_OK);
        assert_int_equal(o.vendor_id, VTSM_DOE_VENDOR_PCISIG);
        r->doe_type = o.type;
        assert_true(o.payload_len <= sizeof(r->msg));
        memcpy(r->msg, o.payload, o.payload_len);
        r->msg_len = o.payload_len;
    } else {
        assert_int_equal(r->rsp.len, 0);
    }
    return st;
}

/* An SPDM message in the clear (DOE type 1); the answer lands in r->msg. */
static void rq_clear(struct rq *r, const uint8_t *m, size_t n)
{
    struct vtsm_buf req = {0};
    assert_int_equal(vtsm_doe_build_buf(VTSM_DOE_VENDOR_PCISIG, VTSM_DOE_TYPE_SPDM, m, n, &req),
                     VTSM_OK);
    assert_int_equal(rq_raw(r, req.data, req.len), VTSM_OK);
    assert_int_equal(r->doe_type, VTSM_DOE_TYPE_SPDM);
    vtsm_buf_free(&req);
}

/* An SPDM message inside the session (DOE type 2). Returns the status of opening the
 * answer (a clear answer is copied as is and reported as VTSM_E_STATE). */
static vtsm_status rq_sec(struct rq *r, const uint8_t *m, size_t n)
{
    uint8_t sealed[MSG_MAX];
    size_t sl = sizeof(sealed);
    struct vtsm_buf req = {0};
    assert_int_equal(vtsm_secmsg_seal(&r->ks.req, r->sid, m, n, sealed, &sl), VTSM_OK);
    assert_int_equal(
        vtsm_doe_build_buf(VTSM_DOE_VENDOR_PCISIG, VTSM_DOE_TYPE_SECURED_SPDM, sealed, sl, &req),
        VTSM_OK);
    assert_int_equal(rq_raw(r, req.data, req.len), VTSM_OK);
    vtsm_buf_free(&req);
    if (r->doe_type != VTSM_DOE_TYPE_SECURED_SPDM)
        return VTSM_E_STATE;
    uint8_t sec[MSG_MAX];
    size_t seclen = r->msg_len;
    memcpy(sec, r->msg, seclen);
    size_t app = sizeof(r->msg);
    vtsm_status st = vtsm_secmsg_open(&r->ks.rsp, r->sid, sec, seclen, r->msg, &app);
    r->msg_len = st == VTSM_OK ? app : 0;
    return st;
}

static void rq_send(struct rq *r, bool secured, const uint8_t *m, size_t n)
{
    if (secured)
        assert_int_equal(rq_sec(r, m, n), VTSM_OK);
    else
        rq_clear(r, m, n);
}

/* The answer is exactly ERROR(code, data) in SPDMVersion ver. */
static void expect_error(const struct rq *r, uint8_t ver, uint8_t code, uint8_t data)
{
    assert_true(r->msg_len >= 4);
    assert_int_equal(r->msg[0], ver);
    assert_int_equal(r->msg[1], ERR);
    assert_int_equal(r->msg[2], code);
    assert_int_equal(r->msg[3], data);
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)v);
    put16(p + 2, (uint16_t)(v >> 16));
}
static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)get16(p) | (uint32_t)get16(p + 2) << 16;
}

static void hash_all(const struct rq *r, const struct vtsm_buf *a, const struct vtsm_buf *b,
                     uint8_t *out)
{
    struct vtsm_buf t = {0};
    assert_int_equal(vtsm_buf_append(&t, a->data, a->len), VTSM_OK);
    if (b)
        assert_int_equal(vtsm_buf_append(&t, b->data, b->len), VTSM_OK);
    assert_int_equal(vtsm_hash(r->hash, t.data, t.len, out), VTSM_OK);
    vtsm_buf_free(&t);
}

/* GET_VERSION: 10 84 00 00. */
static void rq_version(struct rq *r)
{
    const uint8_t m[4] = {V10, SPDM_GET_VERSION, 0, 0};
    rq_clear(r, m, sizeof(m));
    assert_int_equal(r->msg[1], SPDM_VERSION);
    size_t n = 6 + 2u * r->msg[5];
    vtsm_buf_reset(&r->vca);
    vtsm_buf_reset(&r->log);
    assert_int_equal(vtsm_buf_append(&r->vca, m, 4), VTSM_OK);
    assert_int_equal(vtsm_buf_append(&r->vca, r->msg, n), VTSM_OK);
}

static void caps_msg(uint8_t *m, uint8_t ver, uint32_t flags, uint32_t dts, uint32_t max)
{
    memset(m, 0, 20);
    m[0] = ver;
    m[1] = SPDM_GET_CAPABILITIES;
    m[5] = 12; /* CTExponent */
    put32(m + 8, flags);
    put32(m + 12, dts);
    put32(m + 16, max);
}

/* The DataTransferSize (= MaxSPDMmsgSize) rq_caps offers; a test may lower it. */
static uint32_t g_req_dts = 4096;

static void rq_caps(struct rq *r, uint8_t ver)
{
    uint8_t m[20];
    caps_msg(m, ver, REQ_FLAGS, g_req_dts, g_req_dts);
    rq_clear(r, m, sizeof(m));
    assert_int_equal(r->msg[1], SPDM_CAPABILITIES);
    r->ver = ver;
    assert_int_equal(vtsm_buf_append(&r->vca, m, 20), VTSM_OK);
    assert_int_equal(vtsm_buf_append(&r->vca, r->msg, 20), VTSM_OK);
}

struct alg_offer {
    uint32_t asym, hash;
    uint16_t dhe, aead, ks;
    uint8_t other, meas_spec;
};

static const struct alg_offer all_offer = {
    SPDM_ASYM_ECDSA_P256 | SPDM_ASYM_ECDSA_P384,
    SPDM_HASH_SHA256 | SPDM_HASH_SHA384,
    SPDM_DHE_SECP256R1 | SPDM_DHE_SECP384R1,
    SPDM_AEAD_AES_128_GCM | SPDM_AEAD_AES_256_GCM,
    SPDM_KEY_SCHEDULE_SPDM,
    SPDM_OPAQUE_DATA_FMT_1,
    SPDM_MEAS_SPEC_DMTF,
};

/* NEGOTIATE_ALGORITHMS with the DHE, AEAD and KeySchedule structures. */
static size_t algs_msg(uint8_t *m, uint8_t ver, const struct alg_offer *o)
{
    size_t n = 32;
    memset(m, 0, 48);
    m[0] = ver;
    m[1] = SPDM_NEGOTIATE_ALGORITHMS;
    m[2] = 3;
    m[6] = o->meas_spec;
    m[7] = o->other;
    put32(m + 8, o->asym);
    put32(m + 12, o->hash);
    const uint8_t types[3] = {SPDM_ALG_TYPE_DHE, SPDM_ALG_TYPE_AEAD, SPDM_ALG_TYPE_KEY_SCHEDULE};
    const uint16_t vals[3] = {o->dhe, o->aead, o->ks};
    for (int i = 0; i < 3; i++) {
        m[n++] = types[i];
        m[n++] = 0x20;
        put16(m + n, vals[i]);
        n += 2;
    }
    put16(m + 4, (uint16_t)n);
    return n;
}

static void rq_algs(struct rq *r, const struct alg_offer *o)
{
    uint8_t m[48];
    size_t n = algs_msg(m, r->ver, o);
    rq_clear(r, m, n);
    assert_int_equal(r->msg[1], SPDM_ALGORITHMS);
    size_t rl = get16(r->msg + 4);
    assert_int_equal(rl, 36 + 4 * 3);
    uint32_t asym = get32(r->msg + 12), hash = get32(r->msg + 16);
    r->asym = asym == SPDM_ASYM_ECDSA_P384 ? VTSM_ASYM_ECDSA_P384 : VTSM_ASYM_ECDSA_P256;
    r->hash = hash == SPDM_HASH_SHA384 ? VTSM_HASH_SHA384 : VTSM_HASH_SHA256;
    r->hlen = vtsm_hash_size(r->hash);
    assert_int_equal(r->msg[36], SPDM_ALG_TYPE_DHE);
    uint16_t dhe = get16(r->msg + 38);
    r->dhe = dhe == SPDM_DHE_SECP384R1 ? VTSM_DHE_SECP384R1 : VTSM_DHE_SECP256R1;
    assert_int_equal(vtsm_buf_append(&r->vca, m, n), VTSM_OK);
    assert_int_equal(vtsm_buf_append(&r->vca, r->msg, rl), VTSM_OK);
}

static void rq_vca(struct rq *r, uint8_t ver)
{
    rq_version(r);
    rq_caps(r, ver);
    rq_algs(r, &all_offer);
}

static void rq_digests(struct rq *r, bool secured)
{
    const uint8_t m[4] = {r->ver, SPDM_GET_DIGESTS, 0, 0};
    rq_send(r, secured, m, 4);
    assert_int_equal(r->msg[1], SPDM_DIGESTS);
    r->slot_mask = r->msg[3];
    const uint8_t *p = r->msg + 4;
    for (int i = 0; i < 8; i++)
        if (r->slot_mask & (1u << i)) {
            memcpy(r->digests[i], p, r->hlen);
            p += r->hlen;
        }
}

/* GET_CERTIFICATE in 0x400-byte portions; checks the chain against the slot digest. */
static void rq_cert(struct rq *r, uint8_t slot)
{
    uint16_t off = 0;
    vtsm_buf_reset(&r->chain);
    for (;;) {
        uint8_t m[8] = {r->ver, SPDM_GET_CERTIFICATE, slot, 0};
        put16(m + 4, off);
        put16(m + 6, 0x400);
        rq_clear(r, m, 8);
        assert_int_equal(r->msg[1], SPDM_CERTIFICATE);
        assert_int_equal(r->msg[2], slot);
        uint16_t portion = get16(r->msg + 4), rem = get16(r->msg + 6);
        assert_true(portion > 0 && portion <= 0x400);
        assert_int_equal(vtsm_buf_append(&r->chain, r->msg + 8, portion), VTSM_OK);
        off = (uint16_t)(off + portion);
        if (!rem)
            break;
    }
    assert_int_equal(get16(r->chain.data), r->chain.len); /* chain Length */
    uint8_t dg[VTSM_HASH_MAX];
    assert_int_equal(vtsm_hash(r->hash, r->chain.data, r->chain.len, dg), VTSM_OK);
    assert_memory_equal(dg, r->digests[slot], r->hlen);
    if (r->have_cc)
        vtsm_certchain_free(&r->cc);
    assert_int_equal(vtsm_certchain_parse(r->chain.data, r->chain.len, r->hash, r->asym, &r->cc),
                     VTSM_OK);
    r->have_cc = true;
}

/* KEY_EXCHANGE + checks of KEY_EXCHANGE_RSP; returns the signature verdict. */
static vtsm_status rq_key_exchange(struct rq *r, uint8_t slot, uint8_t sum_type)
{
    uint8_t m[512], pub[VTSM_DHE_PUB_MAX], secret[VTSM_DHE_SECRET_MAX], od[64];
    size_t dlen = vtsm_dhe_pub_size(r->dhe), n = 0, od_len = sizeof(od);
    struct vtsm_dhe *dhe = NULL;
    const uint16_t sm[2] = {VTSM_SECMSG_V11, VTSM_SECMSG_V12};

    assert_int_equal(vtsm_dhe_generate(r->dhe, &dhe, pub), VTSM_OK);
    assert_int_equal(vtsm_secmsg_opaque_supported(sm, 2, od, &od_len), VTSM_OK);
    m[n++] = r->ver;
    m[n++] = SPDM_KEY_EXCHANGE;
    m[n++] = sum_type;
    m[n++] = slot;
    put16(m + n, REQ_SID);
    n += 2;
    m[n++] = 0; /* SessionPolicy */
    m[n++] = 0;
    memset(m + n, 0x5A, 32); /* RandomData */
    n += 32;
    memcpy(m + n, pub, dlen);
    n += dlen;
    put16(m + n, (uint16_t)od_len);
    n += 2;
    memcpy(m + n, od, od_len);
    n += od_len;
    rq_clear(r, m, n);
    if (r->msg[1] != SPDM_KEY_EXCHANGE_RSP) {
        vtsm_dhe_free(dhe);
        return VTSM_E_PEER_ERROR;
    }
    const uint8_t *p = r->msg;
    size_t off = 4;
    uint16_t rsp_sid = get16(p + off);
    off += 2;
    assert_int_equal(p[off++], 0); /* MutAuthRequested */
    assert_int_equal(p[off++], 0); /* ReqSlotIDParam */
    off += 32;
    const uint8_t *rsp_pub = p + off;
    off += dlen;
    if (sum_type)
        off += r->hlen;
    uint16_t rod_len = get16(p + off);
    off += 2;
    uint16_t secmsg = 0;
    assert_int_equal(vtsm_secmsg_opaque_parse_select(p + off, rod_len, &secmsg), VTSM_OK);
    assert_int_equal(secmsg, VTSM_SECMSG_V12);
    off += rod_len;
    size_t sig_len = vtsm_sig_size(r->asym);
    const uint8_t *sig = p + off, *verify = p + off + sig_len;
    assert_true(off + sig_len + r->hlen <= r->msg_len);

    /* TH = VCA || Hash(chain) || KEY_EXCHANGE || KEY_EXCHANGE_RSP up to the signature */
    vtsm_buf_reset(&r->th);
    assert_int_equal(vtsm_buf_append(&r->th, r->vca.data, r->vca.len), VTSM_OK);
    assert_int_equal(vtsm_buf_append(&r->th, r->digests[slot], r->hlen), VTSM_OK);
    assert_int_equal(vtsm_buf_append(&r->th, m, n), VTSM_OK);
    assert_int_equal(vtsm_buf_append(&r->th, p, off), VTSM_OK);
    uint8_t th[VTSM_HASH_MAX], th1[VTSM_HASH_MAX], want[VTSM_HASH_MAX];
    hash_all(r, &r->th, NULL, th);
    vtsm_status sig_st = vtsm_spdm_verify(r->cc.leaf_key, r->asym, r->hash, r->ver,
                                          VTSM_SPDM_CTX_KEY_EXCHANGE_RSP, th, sig, sig_len);
    assert_int_equal(vtsm_buf_append(&r->th, sig, sig_len), VTSM_OK);
    hash_all(r, &r->th, NULL, th1);

    assert_int_equal(vtsm_dhe_derive(dhe, rsp_pub, dlen, secret), VTSM_OK);
    vtsm_dhe_free(dhe);
    memset(&r->ks, 0, sizeof(r->ks));
    r->ks.secmsg_version = secmsg;
    assert_int_equal(
        vtsm_spdm_ks_handshake(&r->ks, r->ver, r->hash, secret, vtsm_dhe_secret_size(r->dhe), th1),
        VTSM_OK);
    assert_int_equal(vtsm_spdm_verify_data(&r->ks, false, th1, want), VTSM_OK);
    assert_memory_equal(want, verify, r->hlen); /* ResponderVerifyData */
    assert_int_equal(vtsm_buf_append(&r->th, verify, r->hlen), VTSM_OK);
    r->sid = (uint32_t)REQ_SID | (uint32_t)rsp_sid << 16;
    OPENSSL_cleanse(secret, sizeof(secret));
    return sig_st;
}

static uint8_t finish_msg(struct rq *r, uint8_t *m)
{
    uint8_t th[VTSM_HASH_MAX];
    struct vtsm_buf t = {0};
    m[0] = r->ver;
    m[1] = SPDM_FINISH;
    m[2] = 0;
    m[3] = 0;
    assert_int_equal(vtsm_buf_append(&t, r->th.data, r->th.len), VTSM_OK);
    assert_int_equal(vtsm_buf_append(&t, m, 4), VTSM_OK);
    hash_all(r, &t, NULL, th);
    vtsm_buf_free(&t);
    assert_int_equal(vtsm_spdm_verify_data(&r->ks, true, th, m + 4), VTSM_OK);
    return (uint8_t)(4 + r->hlen);
}

/* FINISH under the handshake keys, FINISH_RSP, then the data keys. */
static void rq_finish(struct rq *r)
{
    uint8_t m[4 + VTSM_HASH_MAX], th2[VTSM_HASH_MAX];
    size_t n = finish_msg(r, m);
    assert_int_equal(rq_sec(r, m, n), VTSM_OK);
    assert_int_equal(r->msg_len, 4);
    const uint8_t want[4] = {r->ver, SPDM_FINISH_RSP, 0, 0};
    assert_memory_equal(r->msg, want, 4);
    assert_int_equal(vtsm_buf_append(&r->th, m, n), VTSM_OK);
    assert_int_equal(vtsm_buf_append(&r->th, r->msg, 4), VTSM_OK);
    hash_all(r, &r->th, NULL, th2);
    assert_int_equal(vtsm_spdm_ks_data(&r->ks, th2), VTSM_OK);
}

static void rq_session(struct rq *r, uint8_t ver)
{
    rq_vca(r, ver);
    rq_digests(r, false);
    rq_cert(r, 0);
    assert_int_equal(rq_key_exchange(r, 0, 0), VTSM_OK);
    rq_finish(r);
}

struct meas_rsp {
    uint8_t p1, p2, blocks;
    uint32_t rec_len;
    const uint8_t *rec;
    size_t exact_len;
};

/* GET_MEASUREMENTS; returns the signature verdict (VTSM_OK when unsigned). The L1/L2 log
 * of the context gains the exchange; a signed one is verified over VCA || log and the log
 * restarts. */
static vtsm_status rq_meas(struct rq *r, bool secured, uint8_t op, bool sign, bool raw,
                           uint8_t slot, struct meas_rsp *out)
{
    uint8_t m[64];
    size_t n = 4;
    m[0] = r->ver;
    m[1] = SPDM_GET_MEASUREMENTS;
    m[2] =
        (uint8_t)((sign ? SPDM_MEAS_ATTR_SIGNATURE : 0) | (raw ? SPDM_MEAS_ATTR_RAW_BITSTREAM : 0));
    m[3] = op;
    if (sign) {
        memset(m + n, 0xC3, 32);
        n += 32;
        m[n++] = slot;
    }
    if (r->ver >= V13) {
        memcpy(m + n, "CONTEXT!", 8);
        n += 8;
    }
    rq_send(r, secured, m, n);
    if (r->msg[1] != SPDM_MEASUREMENTS)
        return VTSM_E_PEER_ERROR;
    struct meas_rsp mr = {.p1 = r->msg[2], .p2 = r->msg[3], .blocks = r->msg[4]};
    mr.rec_len = r->msg[5] | r->msg[6] << 8 | r->msg[7] << 16;
    mr.rec = r->msg + 8;
    size_t off = 8 + mr.rec_len + 32;
    uint16_t od = get16(r->msg + off);
    off += 2 + od;
    if (r->ver >= V13) {
        assert_memory_equal(r->msg + off, "CONTEXT!", 8);
        off += 8;
    }
    size_t sig_len = sign ? vtsm_sig_size(r->asym) : 0;
    mr.exact_len = off + sig_len;
    assert_true(mr.exact_len <= r->msg_len);
    if (secured)
        assert_int_equal(mr.exact_len, r->msg_len);
    struct vtsm_buf *log = secured ? &r->slog : &r->log;
    assert_int_equal(vtsm_buf_append(log, m, n), VTSM_OK);
    assert_int_equal(vtsm_buf_append(log, r->msg, off), VTSM_OK);
    vtsm_status st = VTSM_OK;
    if (sign) {
        uint8_t th[VTSM_HASH_MAX];
        hash_all(r, &r->vca, log, th);
        st = vtsm_spdm_verify(r->cc.leaf_key, r->asym, r->hash, r->ver, VTSM_SPDM_CTX_MEASUREMENTS,
                              th, r->msg + off, sig_len);
        vtsm_buf_reset(log);
    }
    if (out)
        *out = mr;
    return st;
}

static void doe_obj(uint8_t *out, uint16_t vendor, uint8_t type, uint32_t dw,
                    const uint8_t *payload, size_t len)
{
    put32(out, (uint32_t)vendor | (uint32_t)type << 16);
    put32(out + 4, dw);
    if (len)
        memcpy(out + 8, payload, len);
}

/* ==== failure cases ==== */

static void test_doe_garbage_header(void **state)
{
    (void)state;
    struct rq *r = rq_new(NULL);
    uint8_t o[12];
    const uint8_t ver[4] = {V10, SPDM_GET_VERSION, 0, 0};

    doe_obj(o, 0x1234, VTSM_DOE_TYPE_SPDM, 3, ver, 4); /* not PCI-SIG */
    assert_int_equal(rq_raw(r, o, 12), VTSM_E_DOE_HEADER);
    doe_obj(o, VTSM_DOE_VENDOR_PCISIG, 0x07, 3, ver, 4); /* unknown object type */
    assert_int_equal(rq_raw(r, o, 12), VTSM_E_DOE_HEADER);
    doe_obj(o, VTSM_DOE_VENDOR_PCISIG, VTSM_DOE_TYPE_SPDM, 3, ver, 4);
    o[3] = 0x80; /* DW0 reserved bits */
    assert_int_equal(rq_raw(r, o, 12), VTSM_E_DOE_HEADER);
    doe_obj(o, VTSM_DOE_VENDOR_PCISIG, VTSM_DOE_TYPE_SPDM, 3 | (1u << 20), ver, 4);
    assert_int_equal(rq_raw(r, o, 12), VTSM_E_DOE_HEADER);              /* DW1 reserved bits */
    doe_obj(o, VTSM_DOE_VENDOR_PCISIG, VTSM_DOE_TYPE_SPDM, 1, NULL, 0); /* length < 2 DW */
    assert_int_equal(rq_raw(r, o, 8), VTSM_E_DOE_HEADER);
    rq_free(r);
}

static void test_doe_misaligned_truncated_oversized(void **state)
{
    (void)state;
    struct rq *r = rq_new(NULL);
    uint8_t o[24] = {0};
    const uint8_t ver[4] = {V10, SPDM_GET_VERSION, 0, 0};

    doe_obj(o, VTSM_DOE_VENDOR_PCISIG, VTSM_DOE_TYPE_SPDM, 3, ver, 4);
    assert_int_equal(rq_raw(r, o, 10), VTSM_E_DOE_MISALIGNED);
    assert_int_equal(rq_raw(r, o, 4), VTSM_E_DOE_TRUNCATED); /* not even a header */
    doe_obj(o, VTSM_DOE_VENDOR_PCISIG, VTSM_DOE_TYPE_SPDM, 4, ver, 4);
    assert_int_equal(rq_raw(r, o, 12), VTSM_E_DOE_TRUNCATED); /* header says 16 bytes */
    doe_obj(o, VTSM_DOE_VENDOR_PCISIG, VTSM_DOE_TYPE_SPDM, 3, ver, 4);
    assert_int_equal(rq_raw(r, o, 16), VTSM_E_DOE_OVERSIZED); /* 1 DW past the header */
    /* Discovery request of 2 DW payload instead of 1. */
    doe_obj(o, VTSM_DOE_VENDOR_PCISIG, VTSM_DOE_TYPE_DISCOVERY, 4, NULL, 0);
    assert_int_not_equal(rq_raw(r, o, 16), VTSM_OK);
    rq_free(r);
}

static void test_spdm_header_truncated(void **state)
{
    (void)state;
    struct rq *r = rq_new(NULL);
    uint8_t o[8];

    /* A CMA/SPDM object with no payload: no SPDM header at all -> InvalidRequest, 1.0. */
    doe_obj(o, VTSM_DOE_VENDOR_PCISIG, VTSM_DOE_TYPE_SPDM, 2, NULL, 0);
    assert_int_equal(rq_raw(r, o, 8), VTSM_OK);
    assert_int_equal(r->rsp.len, 12);
    const uint8_t want[12] = {
        0x01, 0x00, 0x01, 0x00, 0x03, 0x00, 0x00, 0x00, V10, ERR, SPDM_ERR_INVALID_REQUEST, 0x00};
    assert_memory_equal(r->rsp.data, want, 12);
    rq_free(r);
}

static void test_capabilities_before_version(void **state)
{
    (void)state;
    struct rq *r = rq_new(NULL);
    uint8_t m[20];

    caps_msg(m, V12, REQ_FLAGS, 4096, 4096);
    rq_clear(r, m, 20);
    /* The whole DOE object, byte for byte: ERROR(UnexpectedRequest) in SPDM 1.0. */
    const uint8_t want[12] = {
        0x01, 0x00, 0x01, 0x00, 0x03, 0x00, 0x00, 0x00, V10, ERR, SPDM_ERR_UNEXPECTED_REQUEST,
        0x00};
    assert_int_equal(r->rsp.len, 12);
    assert_memory_equal(r->rsp.data, want, 12);

    /* NEGOTIATE_ALGORITHMS right after VERSION is just as unexpected. */
    rq_version(r);
    uint8_t a[48];
    size_t n = algs_msg(a, V12, &all_offer);
    rq_clear(r, a, n);
    expect_error(r, V10, SPDM_ERR_UNEXPECTED_REQUEST, 0);
    /* ... and GET_DIGESTS before the algorithms are known. */
    rq_caps(r, V12);
    const uint8_t dg[4] = {V12, SPDM_GET_DIGESTS, 0, 0};
    rq_clear(r, dg, 4);
    expect_error(r, V12, SPDM_ERR_UNEXPECTED_REQUEST, 0);
    /* A second GET_CAPABILITIES after CAPABILITIES. */
    caps_msg(m, V12, REQ_FLAGS, 4096, 4096);
    rq_clear(r, m, 20);
    expect_error(r, V12, SPDM_ERR_UNEXPECTED_REQUEST, 0);
    rq_free(r);
}

static void test_version_mismatch(void **state)
{
    (void)state;
    struct rq *r = rq_new(NULL);

    /* GET_VERSION must be 1.0. */
    const uint8_t gv[4] = {V12, SPDM_GET_VERSION, 0, 0};
    rq_clear(r, gv, 4);
    expect_error(r, V10, SPDM_ERR_VERSION_MISMATCH, 0);
    assert_int_equal(r->msg_len, 4);
    /* GET_CAPABILITIES in a version the device does not offer: answered in 1.0. */
    rq_version(r);
    uint8_t m[20];
    caps_msg(m, 0x11, REQ_FLAGS, 4096, 4096);
    rq_clear(r, m, 20);
    expect_error(r, V10, SPDM_ERR_VERSION_MISMATCH, 0);
    caps_msg(m, 0x14, REQ_FLAGS, 4096, 4096);
    rq_clear(r, m, 20);
    expect_error(r, V10, SPDM_ERR_VERSION_MISMATCH, 0);
    /* After negotiating 1.2, a 1.3 request is a mismatch answered in 1.2. */
    rq_caps(r, V12);
    rq_algs(r, &all_offer);
    const uint8_t dg[4] = {V13, SPDM_GET_DIGESTS, 0, 0};
    rq_clear(r, dg, 4);
    expect_error(r, V12, SPDM_ERR_VERSION_MISMATCH, 0);
    rq_free(r);
}

static void test_unsupported_request(void **state)
{
    (void)state;
    struct rq *r = rq_new(NULL);

    /* Before anything: the code is unknown to the device whatever the state. */
    const uint8_t ch0[4] = {V10, SPDM_PSK_EXCHANGE, 0, 0};
    rq_clear(r, ch0, 4);
    expect_error(r, V10, SPDM_ERR_UNSUPPORTED_REQUEST, SPDM_PSK_EXCHANGE);
    rq_vca(r, V12);
    const uint8_t codes[] = {SPDM_PSK_EXCHANGE, SPDM_CHUNK_GET, SPDM_VERSION, 0x00, 0xF0};
    for (size_t i = 0; i < sizeof(codes); i++) {
        uint8_t m[4] = {V12, codes[i], 0, 0};
        rq_clear(r, m, 4);
        expect_error(r, V12, SPDM_ERR_UNSUPPORTED_REQUEST, codes[i]);
        assert_int_equal(r->msg_len, 4);
    }
    /* HEARTBEAT and KEY_UPDATE exist, but only inside a session: SessionRequired (1.2+). */
    const uint8_t in_session[] = {SPDM_HEARTBEAT, SPDM_KEY_UPDATE};
    for (size_t i = 0; i < sizeof(in_session); i++) {
        uint8_t m[4] = {V12, in_session[i], 1, 0};
        rq_clear(r, m, 4);
        expect_error(r, V12, SPDM_ERR_SESSION_REQUIRED, 0);
    }
    rq_free(r);
    /* at 1.3 too; before any version is negotiated there is no SessionRequired (1.0) */
    r = rq_new(NULL);
    const uint8_t hb10[4] = {V10, SPDM_HEARTBEAT, 0, 0};
    rq_clear(r, hb10, 4);
    expect_error(r, V10, SPDM_ERR_UNEXPECTED_REQUEST, 0);
    rq_vca(r, V13);
    for (size_t i = 0; i < sizeof(in_session); i++) {
        uint8_t m[4] = {V13, in_session[i], 1, 0};
        rq_clear(r, m, 4);
        expect_error(r, V13, SPDM_ERR_SESSION_REQUIRED, 0);
    }
    rq_free(r);
}

static void test_capabilities_invalid(void **state)
{
    (void)state;
    struct rq *r = rq_new(NULL);
    uint8_t m[24];
    struct {
        uint32_t flags, dts, max;
    } bad[] = {
        {SPDM_CAP_KEY_EX, 4096, 4096},                 /* KEY_EX without ENCRYPT/MAC */
        {SPDM_CAP_ENCRYPT | SPDM_CAP_MAC, 4096, 4096}, /* ENCRYPT/MAC without KEY_EX */
        {REQ_FLAGS | SPDM_CAP_CHAL, 4096, 4096},       /* CHAL without CERT */
        {REQ_FLAGS | SPDM_CAP_CERT | SPDM_CAP_PUB_KEY_ID, 4096, 4096},
        {REQ_FLAGS | (3u << 10), 4096, 4096},     /* PSK_CAP reserved value */
        {REQ_FLAGS, 41, 41},                      /* DataTransferSize < 42 */
        {REQ_FLAGS | SPDM_CAP_CHUNK, 8192, 4096}, /* DTS > MaxSPDMmsgSize */
        {REQ_FLAGS, 4096, 8192},                  /* no CHUNK_CAP, DTS != Max */
    };
    rq_version(r);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        caps_msg(m, V12, bad[i].flags, bad[i].dts, bad[i].max);
        rq_clear(r, m, 20);
        expect_error(r, V12, SPDM_ERR_INVALID_REQUEST, 0);
    }
    caps_msg(m, V13, REQ_FLAGS, 4096, 4096);
    rq_clear(r, m, 16); /* truncated */
    expect_error(r, V13, SPDM_ERR_INVALID_REQUEST, 0);
    caps_msg(m, V13, REQ_FLAGS, 4096, 4096);
    memset(m + 20, 0xEE, 4); /* a whole DW of trailing garbage */
    rq_clear(r, m, 24);
    expect_error(r, V13, SPDM_ERR_INVALID_REQUEST, 0);
    /* All refusals left the state where it was: a good request still works. */
    rq_caps(r, V13);
    rq_free(r);
}

static void test_algorithms_nothing_acceptable(void **state)
{
    (void)state;
    struct {
        struct alg_offer o;
        const char *what;
    } cases[] = {
        {{0x01 /* RSASSA-2048 */, SPDM_HASH_SHA384, SPDM_DHE_SECP384R1, SPDM_AEAD_AES_256_GCM,
          SPDM_KEY_SCHEDULE_SPDM, SPDM_OPAQUE_DATA_FMT_1, 1},
         "asym"},
        {{SPDM_ASYM_ECDSA_P384, 0x04 /* SHA-512 */, SPDM_DHE_SECP384R1, SPDM_AEAD_AES_256_GCM,
          SPDM_KEY_SCHEDULE_SPDM, SPDM_OPAQUE_DATA_FMT_1, 1},
         "hash"},
        {{SPDM_ASYM_ECDSA_P384, SPDM_HASH_SHA384, 0x20 /* secp521r1 */, SPDM_AEAD_AES_256_GCM,
          SPDM_KEY_SCHEDULE_SPDM, SPDM_OPAQUE_DATA_FMT_1, 1},
         "dhe"},
        {{SPDM_ASYM_ECDSA_P384, SPDM_HASH_SHA384, SPDM_DHE_SECP384R1, SPDM_AEAD_AES_128_GCM,
          SPDM_KEY_SCHEDULE_SPDM, SPDM_OPAQUE_DATA_FMT_1, 1},
         "aead"},
        {{SPDM_ASYM_ECDSA_P384, SPDM_HASH_SHA384, SPDM_DHE_SECP384R1, SPDM_AEAD_AES_256_GCM,
          SPDM_KEY_SCHEDULE_SPDM, 0x01 /* OpaqueDataFmt0 only */, 1},
         "opaque format"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rq *r = rq_new(NULL);
        uint8_t m[48];
        rq_version(r);
        rq_caps(r, V12);
        size_t n = algs_msg(m, V12, &cases[i].o);
        rq_clear(r, m, n);
        if (r->msg[1] != ERR)
            fail_msg("nothing acceptable (%s) was accepted", cases[i].what);
        expect_error(r, V12, SPDM_ERR_INVALID_REQUEST, 0);
        rq_free(r);
    }
}

static void test_algorithms_malformed(void **state)
{
    (void)state;
    struct rq *r = rq_new(NULL);
    uint8_t m[48];
    size_t n;

    rq_version(r);
    rq_caps(r, V12);
    n = algs_msg(m, V12, &all_offer);
    put16(m + 4, (uint16_t)(n + 1)); /* Length one too many */
    rq_clear(r, m, n);
    expect_error(r, V12, SPDM_ERR_INVALID_REQUEST, 0);
    n = algs_msg(m, V12, &all_offer);
    put16(m + 4, (uint16_t)(n - 1)); /* one too few */
    rq_clear(r, m, n);
    expect_error(r, V12, SPDM_ERR_INVALID_REQUEST, 0);
    n = algs_msg(m, V12, &all_offer);
    m[33] = 0x30; /* fixed algorithm width 3 */
    rq_clear(r, m, n);
    expect_error(r, V12, SPDM_ERR_INVALID_REQUEST, 0);
    n = algs_msg(m, V12, &all_offer);
    m[36] = SPDM_ALG_TYPE_DHE; /* AlgType not increasing */
    rq_clear(r, m, n);
    expect_error(r, V12, SPDM_ERR_INVALID_REQUEST, 0);
    n = algs_msg(m, V12, &all_offer);
    m[28] = 21; /* ExtAsymCount beyond the limit (and beyond the message) */
    rq_clear(r, m, n);
    expect_error(r, V12, SPDM_ERR_INVALID_REQUEST, 0);
    n = algs_msg(m, V12, &all_offer);
    m[2] = 4; /* Param1 claims a 4th structure that is not there */
    rq_clear(r, m, n);
    expect_error(r, V12, SPDM_ERR_INVALID_REQUEST, 0);
    rq_algs(r, &all_offer); /* still accepted after all that */
    rq_free(r);
}

static void test_certificate_refusals(void **state)
{
    (void)state;
    struct rq *r = rq_new(NULL);
    rq_vca(r, V12);
    rq_digests(r, false);
    uint8_t m[8] = {V12, SPDM_GET_CERTIFICATE, 3, 0, 0, 0, 0x00, 0x04};
    rq_clear(r, m, 8); /* slot 3 is empty */
    expect_error(r, V12, SPDM_ERR_INVALID_REQUEST, 0);
    m[2] = 8; /* no slot 8 */
    rq_clear(r, m, 8);
    expect_error(r, V12, SPDM_ERR_INVALID_REQUEST, 0);
    m[2] = 0xF;
    rq_clear(r, m, 8);
    expect_error(r, V12, SPDM_ERR_INVALID_REQUEST, 0);
    rq_cert(r, 0);
    m[2] = 0;
    put16(m + 4, (uint16_t)r->chain.len); /* Offset = chain length: beyond the end */
    rq_clear(r, m, 8);
    expect_error(r, V12, SPDM_ERR_INVALID_REQUEST, 0);
    put16(m + 4, 0xFFFF);
    rq_clear(r, m, 8);
    expect_error(r, V12, SPDM_ERR_INVALID_REQUEST, 0);
    rq_clear(r, m, 6); /* truncated */
    expect_error(r, V12, SPDM_ERR_INVALID_REQUEST, 0);
    rq_free(r);
}

static void test_session_refusals(void **state)
{
    (void)state;
    struct rq *r = rq_new(NULL);
    rq_vca(r, V12);
    rq_digests(r, false);
    rq_cert(r, 0);

    /* FINISH / END_SESSION outside a session: SessionRequired. */
    const uint8_t fin[4] = {V12, SPDM_FINISH, 0, 0}, end[4] = {V12, SPDM_END_SESSION, 0, 0};
    rq_clear(r, fin, 4);
    expect_error(r, V12, SPDM_ERR_SESSION_REQUIRED, 0);
    rq_clear(r, end, 4);
    expect_error(r, V12, SPDM_ERR_SESSION_REQUIRED, 0);
    /* RESPOND_IF_READY with nothing pending. */
    const uint8_t riy[4] = {V12, SPDM_RESPOND_IF_READY, SPDM_GET_MEASUREMENTS, 1};
    rq_clear(r, riy, 4);
    expect_error(r, V12, SPDM_ERR_UNEXPECTED_REQUEST, 0);

    /* KEY_EXCHANGE without the DSP0277 opaque data, with a bad slot, a bad summary type. */
    uint8_t m[256] = {V12, SPDM_KEY_EXCHANGE, 0, 0};
    size_t dlen = vtsm_dhe_pub_size(r->dhe), n = 40 + dlen;
    struct vtsm_dhe *dhe;
    assert_int_equal(vtsm_dhe_generate(r->dhe, &dhe, m + 40), VTSM_OK);
    vtsm_dhe_free(dhe);
    put16(m + n, 0);
    rq_clear(r, m, n + 2);
    expect_error(r, V12, SPDM_ERR_INVALID_REQUEST, 0);
    m[3] = 2; /* empty slot */
    rq_clear(r, m, n + 2);
    expect_error(r, V12, SPDM_ERR_INVALID_REQUEST, 0);
    m[3] = 0;
    m[2] = 2; /* MeasurementSummaryHashType 2 */
    rq_clear(r, m, n + 2);
    expect_error(r, V12, SPDM_ERR_INVALID_REQUEST, 0);
    rq_clear(r, m, 30); /* truncated */
    expect_error(r, V12, SPDM_ERR_INVALID_REQUEST, 0);
    /* An ExchangeData that is not a curve point. */
    uint8_t od[64];
    size_t od_len = sizeof(od);
    const uint16_t v12 = VTSM_SECMSG_V12;
    assert_int_equal(vtsm_secmsg_opaque_supported(&v12, 1, od, &od_len), VTSM_OK);
    m[2] = 0;
    memset(m + 40, 0x11, dlen);
    put16(m + n, (uint16_t)od_len);
    memcpy(m + n + 2, od, od_len);
    rq_clear(r, m, n + 2 + od_len);
    expect_error(r, V12, SPDM_ERR_INVALID_REQUEST, 0);
    /* No common DSP0277 version (only 1.5 offered). */
    const uint16_t v15 = 0x1500;
    od_len = sizeof(od);
    assert_int_equal(vtsm_secmsg_opaque_supported(&v15, 1, od, &od_len), VTSM_OK);
    assert_int_equal(vtsm_dhe_generate(r->dhe, &dhe, m + 40), VTSM_OK);
    vtsm_dhe_free(dhe);
    put16(m + n, (uint16_t)od_len);
    memcpy(m + n + 2, od, od_len);
    rq_clear(r, m, n + 2 + od_len);
    expect_error(r, V12, SPDM_ERR_INVALID_REQUEST, 0);

    /* A secured message for a session that does not exist is dropped (no answer). */
    struct vtsm_buf req = {0};
    uint8_t fake[32] = {0x5A, 0xA5, 0xFF, 0xFF, 26, 0};
    assert_int_equal(
        vtsm_doe_build_buf(VTSM_DOE_VENDOR_PCISIG, VTSM_DOE_TYPE_SECURED_SPDM, fake, 32, &req),
        VTSM_OK);
    assert_int_equal(rq_raw(r, req.data, req.len), VTSM_E_PEER_SESSION_ID);
    vtsm_buf_free(&req);
    rq_free(r);
}

static void test_measurement_refusals(void **state)
{
    (void)state;
    struct rq *r = rq_new(NULL);
    rq_vca(r, V12);
    rq_digests(r, false);
    rq_cert(r, 0);
    assert_int_equal(rq_meas(r, false, 9, false, false, 0, NULL), VTSM_E_PEER_ERROR);
    expect_error(r, V12, SPDM_ERR_INVALID_REQUEST, 0); /* no block 9 */
    assert_int_equal(rq_meas(r, false, SPDM_MEAS_OP_ALL, true, false, 5, NULL), VTSM_E_PEER_ERROR);
    expect_error(r, V12, SPDM_ERR_INVALID_REQUEST, 0); /* slot 5 holds no key */
    const uint8_t shortm[8] = {V12, SPDM_GET_MEASUREMENTS, 1, 0xFF, 1, 2, 3, 4};
    rq_clear(r, shortm, 8); /* signature requested, Nonce truncated */
    expect_error(r, V12, SPDM_ERR_INVALID_REQUEST, 0);
    /* Measurements without the DMTF measurement specification negotiated. */
    rq_version(r);
    rq_caps(r, V12);
    struct alg_offer o = all_offer;
    o.meas_spec = 0;
    rq_algs(r, &o);
    assert_int_equal(r->msg[6], 0);         /* MeasurementSpecificationSel */
    assert_int_equal(get32(r->msg + 8), 0); /* MeasurementHashAlgo */
    assert_int_equal(rq_meas(r, false, SPDM_MEAS_OP_COUNT, false, false, 0, NULL),
                     VTSM_E_PEER_ERROR);
    expect_error(r, V12, SPDM_ERR_UNEXPECTED_REQUEST, 0);
    rq_free(r);
}

/* CHALLENGE: only once negotiated, only in the clear, only with CHAL_CAP, a provisioned
 * slot, a known summary type and the exact length; B/C are the device's own business. */
static void test_challenge_refusals(void **state)
{
    (void)state;
    uint8_t m[4 + 32 + 8 + 4] = {V13, SPDM_CHALLENGE, 0, 0};
    struct rq *r = rq_new(NULL);
    m[0] = V10;
    rq_clear(r, m, 36);
    expect_error(r, V10, SPDM_ERR_UNEXPECTED_REQUEST, 0); /* before VCA */
    rq_vca(r, V13);
    m[0] = V13;
    rq_clear(r, m, 36); /* 1.3 without RequesterContext */
    expect_error(r, V13, SPDM_ERR_INVALID_REQUEST, 0);
    rq_clear(r, m, 20); /* Nonce truncated */
    expect_error(r, V13, SPDM_ERR_INVALID_REQUEST, 0);
    m[44] = 1;
    rq_clear(r, m, 48); /* a DW of non-zero bytes after the request */
    expect_error(r, V13, SPDM_ERR_INVALID_REQUEST, 0);
    m[44] = 0;
    m[2] = 3; /* slot 3 holds nothing */
    rq_clear(r, m, 44);
    expect_error(r, V13, SPDM_ERR_INVALID_REQUEST, 0);
    m[2] = 0xFF; /* provisioned public key: none */
    rq_clear(r, m, 44);
    expect_error(r, V13, SPDM_ERR_INVALID_REQUEST, 0);
    m[2] = 0;
    m[3] = 2; /* MeasurementSummaryHashType 2 is reserved */
    rq_clear(r, m, 44);
    expect_error(r, V13, SPDM_ERR_INVALID_REQUEST, 0);
    m[3] = 0xFF;
    rq_clear(r, m, 44);
    assert_int_equal(r->msg[1], SPDM_CHALLENGE_AUTH);
    assert_int_equal(r->msg[2], 0);    /* SlotID 0, no mutual authentication */
    assert_int_equal(r->msg[3], 0x01); /* SlotMask: slot 0 */
    /* header | H | nonce | summary H | opaque len | RequesterContext | signature (238),
     * DOE-padded to 240 */
    assert_int_equal(r->msg_len, 4 + 48 + 32 + 48 + 2 + 8 + 96 + 2);
    /* inside a session: UnexpectedRequest */
    rq_session(r, V13);
    assert_int_equal(rq_sec(r, m, 44), VTSM_OK);
    expect_error(r, V13, SPDM_ERR_UNEXPECTED_REQUEST, 0);
    rq_free(r);

    struct vtsm_dev_config c;
    vtsm_dev_config_default(&c);
    c.challenge = false;
    r = rq_new(&c);
    rq_vca(r, V13);
    rq_clear(r, m, 44);
    expect_error(r, V13, SPDM_ERR_UNSUPPORTED_REQUEST, SPDM_CHALLENGE);
    rq_free(r);
}

/* A device taking 64 bytes per message, 4 KiB in all (CHUNK_CAP), after a VCA at 1.3 whose
 * requester sets CHUNK_CAP too. */
static struct rq *chunk_dev(void)
{
    struct vtsm_dev_config c;
    vtsm_dev_config_default(&c);
    c.data_transfer_size = 64;
    c.max_spdm_msg_size = 4096;
    struct rq *r = rq_new(&c);
    uint8_t m[20];
    rq_version(r);
    caps_msg(m, V13, REQ_FLAGS | SPDM_CAP_CHUNK, 4096, 65536);
    rq_clear(r, m, sizeof(m));
    assert_int_equal(r->msg[1], SPDM_CAPABILITIES);
    assert_true(get32(r->msg + 8) & SPDM_CAP_CHUNK);
    assert_int_equal(get32(r->msg + 12), 64);
    assert_int_equal(get32(r->msg + 16), 4096);
    r->ver = V13;
    assert_int_equal(vtsm_buf_append(&r->vca, m, 20), VTSM_OK);
    assert_int_equal(vtsm_buf_append(&r->vca, r->msg, 20), VTSM_OK);
    rq_algs(r, &all_offer);
    return r;
}

/* CHUNK_SEND: Param1 attributes, Param2 handle, ChunkSeqNo, Reserved, ChunkSize,
 * LargeMessageSize (chunk 0), bytes. Returns the message length. */
static size_t chunk_send_msg(uint8_t *m, bool last, uint8_t handle, uint16_t seq, uint32_t large,
                             const uint8_t *bytes, uint32_t size)
{
    size_t n = 12;
    m[0] = V13;
    m[1] = SPDM_CHUNK_SEND;
    m[2] = last ? 1 : 0;
    m[3] = handle;
    put16(m + 4, seq);
    put16(m + 6, 0);
    put32(m + 8, size);
    if (seq == 0) {
        put32(m + 12, large);
        n += 4;
    }
    memcpy(m + n, bytes, size);
    return n + size;
}

static void expect_chunk_refusal(struct rq *r, const uint8_t *m, size_t n, uint8_t err,
                                 enum vtsm_rule rule)
{
    rq_clear(r, m, n);
    expect_error(r, V13, err, 0);
    assert_int_equal(vtsm_err_rule(), rule);
}

/* Illegal chunk sequences, each refused under its rule and ending the transfer. */
static void test_chunk_refusals(void **state)
{
    (void)state;
    uint8_t big[100], m[80];
    memset(big, 0x5A, sizeof(big));
    struct rq *r = chunk_dev();

    /* one message above DataTransferSize */
    uint8_t whole[68] = {V13, SPDM_GET_DIGESTS, 0, 0};
    rq_clear(r, whole, sizeof(whole));
    expect_error(r, V13, SPDM_ERR_REQUEST_TOO_LARGE, 0);
    /* a chunk past 0 without a transfer */
    expect_chunk_refusal(r, m, chunk_send_msg(m, false, 7, 1, 0, big, 20), SPDM_ERR_INVALID_REQUEST,
                         VTSM_RULE_CHUNK_2);
    /* LargeMessageSize within one message, or above MaxSPDMmsgSize */
    expect_chunk_refusal(r, m, chunk_send_msg(m, false, 7, 0, 64, big, 20),
                         SPDM_ERR_INVALID_REQUEST, VTSM_RULE_CHUNK_3);
    expect_chunk_refusal(r, m, chunk_send_msg(m, false, 7, 0, 4097, big, 20),
                         SPDM_ERR_REQUEST_TOO_LARGE, VTSM_RULE_CHUNK_3);
    /* sequence gaps, foreign handles, sizes past LargeMessageSize, a wrong LastChunk */
    const struct {
        bool last;
        uint8_t handle;
        uint16_t seq;
        uint32_t size;
        enum vtsm_rule rule;
    } bad[] = {
        {false, 7, 2, 20, VTSM_RULE_CHUNK_2}, {false, 8, 1, 20, VTSM_RULE_CHUNK_1},
        {false, 7, 1, 40, VTSM_RULE_CHUNK_3}, {true, 7, 1, 20, VTSM_RULE_CHUNK_3},
        {false, 7, 1, 0, VTSM_RULE_CHUNK_3},  {false, 7, 0, 20, VTSM_RULE_CHUNK_2},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        /* chunk 0 of a 70-byte message: 20 bytes, 50 left */
        rq_clear(r, m, chunk_send_msg(m, false, 7, 0, 70, big, 20));
        assert_int_equal(r->msg[1], SPDM_CHUNK_SEND_ACK);
        assert_int_equal(r->msg[3], 7);
        assert_int_equal(get16(r->msg + 4), 0);
        rq_clear(r, m, chunk_send_msg(m, false, 7, 1, 0, big, 20));
        assert_int_equal(r->msg[1], SPDM_CHUNK_SEND_ACK); /* 40 of 70 */
        expect_chunk_refusal(r, m,
                             chunk_send_msg(m, bad[i].last, bad[i].handle,
                                            (uint16_t)(bad[i].seq + 1), 0, big, bad[i].size),
                             SPDM_ERR_INVALID_REQUEST, bad[i].rule);
        /* the transfer is over: its next chunk finds none */
        expect_chunk_refusal(r, m, chunk_send_msg(m, true, 7, 2, 0, big, 30),
                             SPDM_ERR_INVALID_REQUEST, VTSM_RULE_CHUNK_2);
    }
    /* another request ends a transfer too */
    rq_clear(r, m, chunk_send_msg(m, false, 9, 0, 70, big, 20));
    assert_int_equal(r->msg[1], SPDM_CHUNK_SEND_ACK);
    const uint8_t dig[4] = {V13, SPDM_GET_DIGESTS, 0, 0};
    rq_clear(r, dig, 4);
    assert_int_equal(r->msg[1], SPDM_DIGESTS);
    expect_chunk_refusal(r, m, chunk_send_msg(m, true, 9, 1, 0, big, 50), SPDM_ERR_INVALID_REQUEST,
                         VTSM_RULE_CHUNK_2);
    /* CHUNK_GET with nothing to fetch */
    const uint8_t get0[6] = {V13, SPDM_CHUNK_GET, 0, 0, 0, 0};
    rq_clear(r, get0, 6);
    expect_error(r, V13, SPDM_ERR_UNEXPECTED_REQUEST, 0);
    rq_free(r);

    /* without CHUNK_CAP on the device: UnsupportedRequest */
    r = rq_new(NULL);
    rq_vca(r, V13);
    rq_clear(r, m, chunk_send_msg(m, false, 1, 0, 5000, big, 20));
    expect_error(r, V13, SPDM_ERR_UNSUPPORTED_REQUEST, SPDM_CHUNK_SEND);
    rq_free(r);
}

/* A large request in chunks is answered as if it had come whole (here a VENDOR_DEFINED
 * request in the clear, refused under VDM.1 inside the last CHUNK_SEND_ACK); a large
 * response is announced by ERROR(LargeResponse) and fetched by CHUNK_GET, refusing a wrong
 * Handle (CHUNK.1) or ChunkSeqNo (CHUNK.2) and reassembling to the response itself. */
static void test_chunk_send_and_get(void **state)
{
    (void)state;
    uint8_t vdm[100] = {V13, SPDM_VENDOR_DEFINED_REQUEST, 0, 0, SPDM_REGISTRY_ID_PCISIG, 2, 1, 0};
    uint8_t m[80];
    put16(vdm + 8, 90);
    struct rq *r = chunk_dev();
    rq_clear(r, m, chunk_send_msg(m, false, 3, 0, sizeof(vdm), vdm, 48));
    assert_int_equal(r->msg[1], SPDM_CHUNK_SEND_ACK);
    rq_clear(r, m, chunk_send_msg(m, true, 3, 1, 0, vdm + 48, 52));
    assert_int_equal(r->msg[1], SPDM_CHUNK_SEND_ACK);
    assert_int_equal(r->msg[2], 0); /* no EarlyErrorDetected */
    assert_int_equal(r->msg[3], 3);
    assert_int_equal(get16(r->msg + 4), 1);
    /* ResponseToLargeRequest: the ERROR the whole request gets */
    assert_int_equal(r->msg[6], V13);
    assert_int_equal(r->msg[7], ERR);

    /* GET_MEASUREMENTS (all, unsigned): the response does not fit 64 bytes */
    assert_int_equal(rq_meas(r, false, SPDM_MEAS_OP_ALL, false, false, 0, NULL), VTSM_E_PEER_ERROR);
    expect_error(r, V13, SPDM_ERR_LARGE_RESPONSE, 0);
    uint8_t handle = r->msg[4];
    uint8_t get[6] = {V13, SPDM_CHUNK_GET, 0, (uint8_t)(handle + 1), 0, 0};
    rq_clear(r, get, 6);
    expect_error(r, V13, SPDM_ERR_INVALID_REQUEST, 0);
    assert_int_equal(vtsm_err_rule(), VTSM_RULE_CHUNK_1);
    /* the refusal ended it: announce it again */
    assert_int_equal(rq_meas(r, false, SPDM_MEAS_OP_ALL, false, false, 0, NULL), VTSM_E_PEER_ERROR);
    expect_error(r, V13, SPDM_ERR_LARGE_RESPONSE, 0);
    handle = r->msg[4];
    get[3] = handle;
    get[4] = 1;
    rq_clear(r, get, 6);
    expect_error(r, V13, SPDM_ERR_INVALID_REQUEST, 0);
    assert_int_equal(vtsm_err_rule(), VTSM_RULE_CHUNK_2);
    assert_int_equal(rq_meas(r, false, SPDM_MEAS_OP_ALL, false, false, 0, NULL), VTSM_E_PEER_ERROR);
    handle = r->msg[4];
    uint8_t large[4096];
    uint32_t total = 0, got = 0;
    for (uint16_t seq = 0;; seq++) {
        get[3] = handle;
        put16(get + 4, seq);
        rq_clear(r, get, 6);
        assert_int_equal(r->msg[1], SPDM_CHUNK_RESPONSE);
        assert_int_equal(r->msg[3], handle);
        assert_int_equal(get16(r->msg + 4), seq);
        uint32_t size = get32(r->msg + 8);
        size_t hdr = 12;
        if (seq == 0) {
            total = get32(r->msg + 12);
            hdr = 16;
            assert_true(total > 64 && total <= sizeof(large));
        }
        assert_true(hdr + size <= 64); /* each message within DataTransferSize */
        assert_true(got + size <= total);
        memcpy(large + got, r->msg + hdr, size);
        got += size;
        if (r->msg[2] & 1)
            break;
    }
    assert_int_equal(got, total);
    /* the large response is MEASUREMENTS with the 4 default blocks */
    assert_int_equal(large[0], V13);
    assert_int_equal(large[1], SPDM_MEASUREMENTS);
    assert_int_equal(large[4], 4);
    /* and once fetched, there is nothing more */
    put16(get + 4, 99);
    rq_clear(r, get, 6);
    expect_error(r, V13, SPDM_ERR_UNEXPECTED_REQUEST, 0);
    rq_free(r);
}

static void test_config_refused(void **state)
{
    (void)state;
    struct vtsm_dev_config c;
    struct vtsm_dev *d = NULL;

    vtsm_dev_config_default(&c);
    c.data_transfer_size = 41;
    c.max_spdm_msg_size = 41;
    assert_int_equal(vtsm_dev_new(&c, &d), VTSM_E_CONFIG);
    vtsm_dev_config_default(&c);
    c.max_spdm_msg_size = 4095; /* below DataTransferSize */
    assert_int_equal(vtsm_dev_new(&c, &d), VTSM_E_CONFIG);
    c.max_spdm_msg_size = 0x10001; /* above what the device holds */
    assert_int_equal(vtsm_dev_new(&c, &d), VTSM_E_CONFIG);
    vtsm_dev_config_default(&c);
    c.versions = 0;
    assert_int_equal(vtsm_dev_new(&c, &d), VTSM_E_CONFIG);
    vtsm_dev_config_default(&c);
    c.meas[1].index = c.meas[0].index;
    assert_int_equal(vtsm_dev_new(&c, &d), VTSM_E_CONFIG);
    vtsm_dev_config_default(&c);
    c.slots[0].kind = VTSM_DEV_SLOT_EMPTY;
    assert_int_equal(vtsm_dev_new(&c, &d), VTSM_E_CONFIG);
    /* A PEM slot whose key is not the leaf's. */
    vtsm_dev_config_default(&c);
    static const char leaf_chain[] = VTSM_SOURCE_DIR "/pki/p384/chain.pem";
    static const char rogue_key[] = VTSM_SOURCE_DIR "/pki/rogue-p384/leaf.key";
    FILE *f1 = fopen(leaf_chain, "rb"), *f2 = fopen(rogue_key, "rb");
    assert_non_null(f1);
    assert_non_null(f2);
    static char certs[16384], key[4096];
    size_t n1 = fread(certs, 1, sizeof(certs), f1), n2 = fread(key, 1, sizeof(key), f2);
    fclose(f1);
    fclose(f2);
    c.slots[0] = (struct vtsm_dev_slot){VTSM_DEV_SLOT_PEM, certs, n1, key, n2};
    assert_int_equal(vtsm_dev_new(&c, &d), VTSM_E_CONFIG);
    /* A P-384 chain for a P-256 device. */
    vtsm_dev_config_default(&c);
    c.asym = VTSM_ASYM_ECDSA_P256;
    c.slots[0] = (struct vtsm_dev_slot){VTSM_DEV_SLOT_PEM, certs, n1, key, n2};
    assert_int_equal(vtsm_dev_new(&c, &d), VTSM_E_CONFIG);
    assert_null(d);
}

static void test_decrypt_error_ends_session(void **state)
{
    (void)state;
    struct rq *r = rq_new(NULL);
    rq_session(r, V12);

    /* A request sealed with a wrong key: DecryptError in the clear, session gone. */
    struct vtsm_spdm_dir bad = r->ks.req;
    bad.key[0] ^= 1;
    uint8_t m[4] = {V12, SPDM_GET_DIGESTS, 0, 0}, sealed[64];
    size_t sl = sizeof(sealed);
    assert_int_equal(vtsm_secmsg_seal(&bad, r->sid, m, 4, sealed, &sl), VTSM_OK);
    struct vtsm_buf req = {0};
    assert_int_equal(
        vtsm_doe_build_buf(VTSM_DOE_VENDOR_PCISIG, VTSM_DOE_TYPE_SECURED_SPDM, sealed, sl, &req),
        VTSM_OK);
    assert_int_equal(rq_raw(r, req.data, req.len), VTSM_OK);
    assert_int_equal(r->doe_type, VTSM_DOE_TYPE_SPDM);
    expect_error(r, V12, SPDM_ERR_DECRYPT_ERROR, 0);
    /* The correct key no longer works: the session is gone, the message dropped. */
    assert_int_equal(rq_raw(r, req.data, req.len), VTSM_E_PEER_SESSION_ID);
    vtsm_buf_free(&req);
    rq_free(r);
}

static void test_finish_bad_verify_data(void **state)
{
    (void)state;
    struct rq *r = rq_new(NULL);
    rq_vca(r, V13);
    rq_digests(r, false);
    rq_cert(r, 0);
    assert_int_equal(rq_key_exchange(r, 0, 0), VTSM_OK);
    uint8_t m[4 + VTSM_HASH_MAX];
    size_t n = finish_msg(r, m);
    m[5] ^= 0x80;
    assert_int_equal(rq_sec(r, m, n), VTSM_OK); /* answered under the handshake keys */
    expect_error(r, V13, SPDM_ERR_DECRYPT_ERROR, 0);
    /* ... and the session is over: the correct FINISH now finds no session. */
    n = finish_msg(r, m);
    uint8_t sealed[128];
    size_t sl = sizeof(sealed);
    struct vtsm_buf req = {0};
    assert_int_equal(vtsm_secmsg_seal(&r->ks.req, r->sid, m, n, sealed, &sl), VTSM_OK);
    assert_int_equal(
        vtsm_doe_build_buf(VTSM_DOE_VENDOR_PCISIG, VTSM_DOE_TYPE_SECURED_SPDM, sealed, sl, &req),
        VTSM_OK);
    assert_int_equal(rq_raw(r, req.data, req.len), VTSM_E_PEER_SESSION_ID);
    vtsm_buf_free(&req);
    rq_free(r);
}

static void test_in_session_state_rules(void **state)
{
    (void)state;
    struct rq *r = rq_new(NULL);
    rq_vca(r, V12);
    rq_digests(r, false);
    rq_cert(r, 0);
    assert_int_equal(rq_key_exchange(r, 0, 0), VTSM_OK);
    /* Handshake phase: only FINISH. */
    const uint8_t dg[4] = {V12, SPDM_GET_DIGESTS, 0, 0};
    assert_int_equal(rq_sec(r, dg, 4), VTSM_OK);
    expect_error(r, V12, SPDM_ERR_UNEXPECTED_REQUEST, 0);
    rq_finish(r);
    /* Established: no FINISH, no KEY_EXCHANGE/GET_VERSION inside; KEY_EXCHANGE outside is
     * over the session limit. */
    uint8_t fin[4 + VTSM_HASH_MAX] = {V12, SPDM_FINISH, 0, 0};
    assert_int_equal(rq_sec(r, fin, 4 + r->hlen), VTSM_OK);
    expect_error(r, V12, SPDM_ERR_UNEXPECTED_REQUEST, 0);
    const uint8_t gv[4] = {V10, SPDM_GET_VERSION, 0, 0};
    assert_int_equal(rq_sec(r, gv, 4), VTSM_OK);
    expect_error(r, V12, SPDM_ERR_UNEXPECTED_REQUEST, 0);
    uint8_t ke[4] = {V12, SPDM_KEY_EXCHANGE, 0, 0};
    rq_clear(r, ke, 4);
    expect_error(r, V12, SPDM_ERR_SESSION_LIMIT_EXCEEDED, 0);
    /* The session still works. */
    rq_digests(r, true);
    rq_free(r);
}

/* ==== what works ==== */

static void test_doe_discovery_walk(void **state)
{
    (void)state;
    struct rq *r = rq_new(NULL);
    const uint8_t types[3] = {VTSM_DOE_TYPE_DISCOVERY, VTSM_DOE_TYPE_SPDM,
                              VTSM_DOE_TYPE_SECURED_SPDM};
    uint8_t index = 0, o[12];
    for (int i = 0; i < 3; i++) {
        uint8_t p[4];
        vtsm_doe_disc_req_payload(index, p);
        doe_obj(o, VTSM_DOE_VENDOR_PCISIG, VTSM_DOE_TYPE_DISCOVERY, 3, p, 4);
        assert_int_equal(rq_raw(r, o, 12), VTSM_OK);
        assert_int_equal(r->doe_type, VTSM_DOE_TYPE_DISCOVERY);
        struct vtsm_doe_obj obj;
        struct vtsm_doe_disc_rsp d;
        assert_int_equal(vtsm_doe_parse(r->rsp.data, r->rsp.len, &obj), VTSM_OK);
        assert_int_equal(vtsm_doe_disc_rsp_parse(&obj, &d), VTSM_OK);
        assert_int_equal(d.vendor_id, VTSM_DOE_VENDOR_PCISIG);
        assert_int_equal(d.type, types[i]);
        index = d.next_index;
    }
    assert_int_equal(index, 0);
    /* Exact bytes for index 1: vendor 0x0001, type 1, next index 2. */
    uint8_t p1[4] = {1, 0, 0, 0};
    doe_obj(o, VTSM_DOE_VENDOR_PCISIG, VTSM_DOE_TYPE_DISCOVERY, 3, p1, 4);
    assert_int_equal(rq_raw(r, o, 12), VTSM_OK);
    const uint8_t want[12] = {0x01, 0x00, 0x00, 0x00, 0x03, 0x00,
                              0x00, 0x00, 0x01, 0x00, 0x01, 0x02};
    assert_memory_equal(r->rsp.data, want, 12);
    /* Past the end. */
    uint8_t p9[4] = {9, 0, 0, 0};
    doe_obj(o, VTSM_DOE_VENDOR_PCISIG, VTSM_DOE_TYPE_DISCOVERY, 3, p9, 4);
    assert_int_equal(rq_raw(r, o, 12), VTSM_OK);
    assert_int_equal(get16(r->msg), 0xFFFF);
    rq_free(r);
}

static void test_version_exact_bytes(void **state)
{
    (void)state;
    struct rq *r = rq_new(NULL);
    const uint8_t m[4] = {V10, SPDM_GET_VERSION, 0, 0};
    rq_clear(r, m, 4);
    /* 10 04 00 00 | Reserved 00 | Count 2 | 1.2 = 0x1200, 1.3 = 0x1300 (LE) | DOE pad */
    const uint8_t want[12] = {0x10, 0x04, 0x00, 0x00, 0x00, 0x02,
                              0x00, 0x12, 0x00, 0x13, 0x00, 0x00};
    assert_int_equal(r->msg_len, 12);
    assert_memory_equal(r->msg, want, 12);
    rq_free(r);

    struct vtsm_dev_config c;
    vtsm_dev_config_default(&c);
    c.versions = VTSM_DEV_VER_12;
    r = rq_new(&c);
    rq_clear(r, m, 4);
    const uint8_t want12[8] = {0x10, 0x04, 0x00, 0x00, 0x00, 0x01, 0x00, 0x12};
    assert_int_equal(r->msg_len, 8);
    assert_memory_equal(r->msg, want12, 8);
    /* With only 1.2 on offer, 1.3 is a VersionMismatch. */
    uint8_t caps[20];
    caps_msg(caps, V13, REQ_FLAGS, 4096, 4096);
    rq_clear(r, caps, 20);
    expect_error(r, V10, SPDM_ERR_VERSION_MISMATCH, 0);
    rq_free(r);
}

static void test_capabilities_exact_bytes(void **state)
{
    (void)state;
    const uint8_t vers[2] = {V12, V13};
    for (int i = 0; i < 2; i++) {
        struct rq *r = rq_new(NULL);
        rq_version(r);
        uint8_t m[20];
        caps_msg(m, vers[i], REQ_FLAGS, 4096, 4096);
        rq_clear(r, m, 20);
        /* ver 61 00 00 | Reserved | CTExponent 16 | Reserved (2) |
         * Flags = CERT | CHAL | MEAS_CAP=10b | MEAS_FRESH | ENCRYPT | MAC | KEY_EX | HBEAT |
         * KEY_UPD = 0x000062F6 | DataTransferSize 4096 | MaxSPDMmsgSize 4096 */
        const uint8_t want[20] = {vers[i], 0x61, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0xF6, 0x62,
                                  0x00,    0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00};
        assert_int_equal(r->msg_len, 20);
        assert_memory_equal(r->msg, want, 20);
        rq_free(r);
    }
}

static void test_algorithms_selection(void **state)
{
    (void)state;
    struct rq *r = rq_new(NULL);
    rq_vca(r, V13);
    /* Everything offered: the configured P-384 / SHA-384 / secp384r1 win. */
    const uint8_t *a = r->vca.data + r->vca.len - 48;
    assert_int_equal(a[0], V13);
    assert_int_equal(a[1], SPDM_ALGORITHMS);
    assert_int_equal(a[2], 3);
    assert_int_equal(get16(a + 4), 48);
    assert_int_equal(a[6], SPDM_MEAS_SPEC_DMTF);
    assert_int_equal(a[7], SPDM_OPAQUE_DATA_FMT_1);
    assert_int_equal(get32(a + 8), SPDM_MEAS_HASH_SHA384);
    assert_int_equal(get32(a + 12), SPDM_ASYM_ECDSA_P384);
    assert_int_equal(get32(a + 16), SPDM_HASH_SHA384);
    for (int i = 20; i < 36; i++)
        assert_int_equal(a[i], 0); /* reserved, MELspecificationSel, ext counts */
    const uint8_t structs[12] = {SPDM_ALG_TYPE_DHE,          0x20, SPDM_DHE_SECP384R1,     0,
                                 SPDM_ALG_TYPE_AEAD,         0x20, SPDM_AEAD_AES_256_GCM,  0,
                                 SPDM_ALG_TYPE_KEY_SCHEDULE, 0x20, SPDM_KEY_SCHEDULE_SPDM, 0};
    assert_memory_equal(a + 36, structs, 12);
    rq_free(r);

    /* Only SHA-256 and secp256r1 offered: those are chosen (P-384 still signs). */
    r = rq_new(NULL);
    rq_version(r);
    rq_caps(r, V12);
    struct alg_offer o = all_offer;
    o.hash = SPDM_HASH_SHA256;
    o.dhe = SPDM_DHE_SECP256R1;
    rq_algs(r, &o);
    assert_int_equal(r->hash, VTSM_HASH_SHA256);
    assert_int_equal(r->dhe, VTSM_DHE_SECP256R1);
    assert_int_equal(get32(r->msg + 8), SPDM_MEAS_HASH_SHA256);
    rq_digests(r, false);
    rq_cert(r, 0);
    assert_int_equal(rq_key_exchange(r, 0, 0), VTSM_OK);
    rq_finish(r);
    rq_free(r);
}

static void test_digests_certificate_trust(void **state)
{
    (void)state;
    struct vtsm_dev_config c;
    vtsm_dev_config_default(&c);
    c.slots[1].kind = VTSM_DEV_SLOT_ROGUE;
    struct rq *r = rq_new(&c);
    struct vtsm_trust *t = NULL;
    char why[256];

    assert_int_equal(vtsm_trust_new(&t), VTSM_OK);
    assert_int_equal(vtsm_trust_add_path(t, VTSM_SOURCE_DIR "/pki/trust/p384-root.pem"), VTSM_OK);
    rq_vca(r, V12);
    rq_digests(r, false);
    assert_int_equal(r->slot_mask, 0x03);
    assert_int_equal(r->msg[2], 0); /* Param1 reserved in 1.2 */
    rq_cert(r, 1);
    assert_int_equal(vtsm_trust_verify(t, &r->cc, why, sizeof(why)), VTSM_E_PEER_UNTRUSTED);
    rq_cert(r, 0);
    assert_int_equal(vtsm_trust_verify(t, &r->cc, why, sizeof(why)), VTSM_OK);

    /* Small portions: Length is honoured; a huge Length is clamped to DataTransferSize. */
    uint8_t m[8] = {V12, SPDM_GET_CERTIFICATE, 0, 0, 0, 0, 0x10, 0x00};
    rq_clear(r, m, 8);
    assert_int_equal(get16(r->msg + 4), 0x10);
    assert_int_equal(get16(r->msg + 6), get16(r->chain.data) - 0x10);
    put16(m + 6, 0xFFFF);
    rq_clear(r, m, 8);
    assert_true(get16(r->msg + 4) <= 4096 - 8);
    vtsm_trust_free(t);
    rq_free(r);

    /* 1.3: SupportedSlotMask in Param1; SlotSizeRequested. */
    r = rq_new(NULL);
    rq_vca(r, V13);
    rq_digests(r, false);
    assert_int_equal(r->msg[2], 0xFF);
    assert_int_equal(r->msg[3], 0x01);
    rq_cert(r, 0);
    uint8_t sz[8] = {V13, SPDM_GET_CERTIFICATE, 0, 1, 0xFF, 0xFF, 0x55, 0xAA};
    rq_clear(r, sz, 8);
    assert_int_equal(r->msg[1], SPDM_CERTIFICATE);
    assert_int_equal(get16(r->msg + 4), 0);
    assert_int_equal(get16(r->msg + 6), r->chain.len);
    rq_free(r);
}

static void test_measurements(void **state)
{
    (void)state;
    const uint8_t vers[2] = {V12, V13};
    for (int v = 0; v < 2; v++) {
        struct rq *r = rq_new(NULL);
        struct meas_rsp mr;
        rq_vca(r, vers[v]);
        rq_digests(r, false);
        rq_cert(r, 0);
        /* Count, then all unsigned, then one signed: L1/L2 spans all three. */
        assert_int_equal(rq_meas(r, false, SPDM_MEAS_OP_COUNT, false, false, 0, &mr), VTSM_OK);
        assert_int_equal(mr.p1, 4);
        assert_int_equal(mr.blocks, 0);
        assert_int_equal(mr.rec_len, 0);
        assert_int_equal(rq_meas(r, false, SPDM_MEAS_OP_ALL, false, false, 0, &mr), VTSM_OK);
        assert_int_equal(mr.blocks, 4);
        assert_int_equal(mr.rec_len, 4 * (7 + 48));
        for (int i = 0; i < 4; i++) {
            const uint8_t *b = mr.rec + i * 55;
            assert_int_equal(b[0], i + 1);               /* Index */
            assert_int_equal(b[1], SPDM_MEAS_SPEC_DMTF); /* MeasurementSpecification */
            assert_int_equal(get16(b + 2), 51);          /* MeasurementSize */
            assert_int_equal(b[4] & 0x80, 0);            /* digest form */
            assert_int_equal(get16(b + 5), 48);
        }
        assert_int_equal(rq_meas(r, false, 2, true, false, 0, &mr), VTSM_OK);
        assert_int_equal(mr.blocks, 1);
        assert_int_equal(mr.p2, 0); /* SlotID 0, ContentChanged 00b */
        /* The raw bit stream of the firmware version (index 4, type 6). */
        assert_int_equal(rq_meas(r, false, 4, false, true, 0, &mr), VTSM_OK);
        assert_int_equal(mr.rec[4], 0x86);
        assert_int_equal(get16(mr.rec + 5), 5);
        assert_memory_equal(mr.rec + 7, "1.0.0", 5);
        /* A non-measurement request in between restarts L1/L2. */
        rq_digests(r, false);
        vtsm_buf_reset(&r->log);
        assert_int_equal(rq_meas(r, false, SPDM_MEAS_OP_ALL, true, true, 0, &mr), VTSM_OK);
        /* Deterministic content: the same record twice. */
        uint8_t rec1[512];
        memcpy(rec1, mr.rec, mr.rec_len);
        assert_int_equal(rq_meas(r, false, SPDM_MEAS_OP_ALL, true, true, 0, &mr), VTSM_OK);
        assert_memory_equal(rec1, mr.rec, mr.rec_len);
        rq_free(r);
    }
}

static void test_session_full(void **state)
{
    (void)state;
    struct vtsm_dev_config c;
    struct rq *r;

    /* 1.2 and 1.3 with the default P-384 device. */
    for (int v = 0; v < 2; v++) {
        uint8_t ver = v ? V13 : V12;
        r = rq_new(NULL);
        struct meas_rsp mr;
        rq_session(r, ver);
        assert_int_equal(rq_meas(r, true, SPDM_MEAS_OP_COUNT, false, false, 0, &mr), VTSM_OK);
        assert_int_equal(rq_meas(r, true, SPDM_MEAS_OP_ALL, true, false, 0, &mr), VTSM_OK);
        assert_int_equal(mr.blocks, 4);
        rq_digests(r, true);
        /* PCI-SIG vendor-defined request for a protocol the device does not implement
         * (IDE_KM and TDISP are tested in test_devemu_idekm.c / test_devemu_tdisp.c). */
        const uint8_t vdm[12] = {
            ver, SPDM_VENDOR_DEFINED_REQUEST, 0, 0, SPDM_REGISTRY_ID_PCISIG, 0, 2, 0x01, 0x00, 1, 0,
            0x02};
        assert_int_equal(rq_sec(r, vdm, 12), VTSM_OK);
        expect_error(r, ver, SPDM_ERR_UNSUPPORTED_REQUEST, SPDM_VENDOR_DEFINED_REQUEST);
        /* A TDISP message too short to name an interface: InvalidRequest. */
        uint8_t tdisp[12];
        memcpy(tdisp, vdm, 12);
        tdisp[11] = PCI_PROTOCOL_ID_TDISP;
        assert_int_equal(rq_sec(r, tdisp, 12), VTSM_OK);
        expect_error(r, ver, SPDM_ERR_INVALID_REQUEST, 0);
        /* ... and a malformed one (ReqLength beyond the message). */
        uint8_t bad[12];
        memcpy(bad, vdm, 12);
        bad[9] = 9;
        assert_int_equal(rq_sec(r, bad, 12), VTSM_OK);
        expect_error(r, ver, SPDM_ERR_INVALID_REQUEST, 0);
        /* Measurements in the clear keep working next to the session. */
        assert_int_equal(rq_meas(r, false, SPDM_MEAS_OP_ALL, true, false, 0, &mr), VTSM_OK);
        /* END_SESSION: ACK under the session keys, then the session is gone. */
        const uint8_t end[4] = {ver, SPDM_END_SESSION, 0, 0};
        assert_int_equal(rq_sec(r, end, 4), VTSM_OK);
        const uint8_t ack[4] = {ver, SPDM_END_SESSION_ACK, 0, 0};
        assert_int_equal(r->msg_len, 4);
        assert_memory_equal(r->msg, ack, 4);
        uint8_t sealed[64];
        size_t sl = sizeof(sealed);
        struct vtsm_buf req = {0};
        assert_int_equal(vtsm_secmsg_seal(&r->ks.req, r->sid, end, 4, sealed, &sl), VTSM_OK);
        assert_int_equal(vtsm_doe_build_buf(VTSM_DOE_VENDOR_PCISIG, VTSM_DOE_TYPE_SECURED_SPDM,
                                            sealed, sl, &req),
                         VTSM_OK);
        assert_int_equal(rq_raw(r, req.data, req.len), VTSM_E_PEER_SESSION_ID);
        vtsm_buf_free(&req);
        /* A new session on the same connection. */
        assert_int_equal(rq_key_exchange(r, 0, 0xFF), VTSM_OK);
        rq_finish(r);
        rq_digests(r, true);
        rq_free(r);
    }

    /* A P-256 device. */
    vtsm_dev_config_default(&c);
    c.asym = VTSM_ASYM_ECDSA_P256;
    c.hash = VTSM_HASH_SHA256;
    c.dhe = VTSM_DHE_SECP256R1;
    r = rq_new(&c);
    rq_session(r, V13);
    assert_int_equal(r->asym, VTSM_ASYM_ECDSA_P256);
    assert_int_equal(r->hash, VTSM_HASH_SHA256);
    assert_int_equal(r->dhe, VTSM_DHE_SECP256R1);
    assert_int_equal(rq_meas(r, true, SPDM_MEAS_OP_ALL, true, false, 0, NULL), VTSM_OK);
    rq_free(r);
}

static void test_get_version_ends_session(void **state)
{
    (void)state;
    struct rq *r = rq_new(NULL);
    rq_session(r, V13);
    uint8_t m[4] = {V13, SPDM_GET_DIGESTS, 0, 0}, sealed[64];
    size_t sl = sizeof(sealed);
    struct vtsm_spdm_dir keep = r->ks.req;
    rq_version(r);
    assert_int_equal(vtsm_secmsg_seal(&keep, r->sid, m, 4, sealed, &sl), VTSM_OK);
    struct vtsm_buf req = {0};
    assert_int_equal(
        vtsm_doe_build_buf(VTSM_DOE_VENDOR_PCISIG, VTSM_DOE_TYPE_SECURED_SPDM, sealed, sl, &req),
        VTSM_OK);
    assert_int_equal(rq_raw(r, req.data, req.len), VTSM_E_PEER_SESSION_ID);
    vtsm_buf_free(&req);
    /* The connection restarted too: DIGESTS needs VCA again. */
    rq_clear(r, m, 4);
    expect_error(r, V10, SPDM_ERR_UNEXPECTED_REQUEST, 0);
    rq_free(r);
}

static void test_handshake_replaced_by_new_key_exchange(void **state)
{
    (void)state;
    struct rq *r = rq_new(NULL);
    rq_vca(r, V12);
    rq_digests(r, false);
    rq_cert(r, 0);
    assert_int_equal(rq_key_exchange(r, 0, 1), VTSM_OK); /* abandoned */
    assert_int_equal(rq_key_exchange(r, 0, 0), VTSM_OK);
    rq_finish(r);
    rq_digests(r, true);
    rq_free(r);
}

/* ==== faults ==== */

/* A PCI-SIG VENDOR_DEFINED_REQUEST inside the session; the answer lands in r->msg. */
static void rq_vdm(struct rq *r, const uint8_t *p, size_t n)
{
    uint8_t m[11 + 64] = {
        r->ver, SPDM_VENDOR_DEFINED_REQUEST, 0, 0, SPDM_REGISTRY_ID_PCISIG, 0, 2, 0x01, 0x00};
    assert_true(n <= 64);
    put16(m + 9, (uint16_t)n);
    memcpy(m + 11, p, n);
    assert_int_equal(rq_sec(r, m, 11 + n), VTSM_OK);
    assert_int_equal(r->msg[1], SPDM_VENDOR_DEFINED_RESPONSE);
}

/* TDISP GET_DEVICE_INTERFACE_REPORT: the portion is clamped so that the whole SPDM message
 * fits the requester's DataTransferSize (here the 64-byte minimum we can hold a session
 * with: the hand-written requester does not check KEY_EXCHANGE sizes). */
static void test_tdisp_report_portion_fits_dts(void **state)
{
    (void)state;
    g_req_dts = 64;
    struct rq *r = rq_new(NULL);
    rq_session(r, V12);
    g_req_dts = 4096;

    uint8_t lock[17 + 20] = {PCI_PROTOCOL_ID_TDISP, 0x10, 0x83}; /* TDI 0, no flags */
    rq_vdm(r, lock, sizeof(lock));
    assert_int_equal(r->msg_len, 11 + 17 + 32);
    assert_int_equal(r->msg[11 + 2], 0x03); /* LOCK_INTERFACE_RSP */
    uint8_t get[17 + 4] = {PCI_PROTOCOL_ID_TDISP, 0x10, 0x84};
    put16(get + 17, 0);
    put16(get + 19, 0xFFFF);
    size_t total = 0;
    for (uint16_t off = 0;;) {
        put16(get + 17, off);
        rq_vdm(r, get, sizeof(get));
        assert_int_equal(r->msg[11 + 2], 0x04); /* DEVICE_INTERFACE_REPORT */
        uint16_t portion = get16(r->msg + 11 + 17), rem = get16(r->msg + 11 + 19);
        assert_int_equal(get16(r->msg + 9), 17 + 4 + portion); /* RespLength */
        assert_true(r->msg_len <= 64);
        if (rem) {
            /* 64 - VDM header (11) - TDISP header (17) - lengths (4) */
            assert_int_equal(portion, 32);
            assert_int_equal(r->msg_len, 64);
        }
        if (off == 0)
            total = (size_t)portion + rem;
        assert_int_equal(off + portion + rem, total);
        off = (uint16_t)(off + portion);
        if (!rem)
            break;
    }
    /* 16 fixed + 2 MMIO ranges + info length + "vtsm-devemu TDI 0" */
    assert_int_equal(total, 16 + 32 + 4 + 17);
    rq_free(r);
}

static struct rq *fault_dev(enum vtsm_dev_fault f)
{
    struct vtsm_dev_config c;
    vtsm_dev_config_default(&c);
    c.faults = VTSM_DEV_FAULT_BIT(f);
    return rq_new(&c);
}

static void test_fault_names(void **state)
{
    (void)state;
    enum vtsm_dev_fault f;
    for (unsigned i = 0; i < VTSM_DEV_FAULT_COUNT_; i++) {
        const char *n = vtsm_dev_fault_name((enum vtsm_dev_fault)i);
        assert_non_null(n);
        assert_int_equal(vtsm_dev_fault_parse(n, &f), VTSM_OK);
        assert_int_equal(f, i);
    }
    assert_int_equal(vtsm_dev_fault_parse("stall-once", &f), VTSM_E_NOT_FOUND);
    assert_null(vtsm_dev_fault_name(VTSM_DEV_FAULT_COUNT_));
}

static void test_fault_signatures(void **state)
{
    (void)state;
    struct rq *r = fault_dev(VTSM_DEV_FAULT_BAD_KEX_SIGNATURE);
    rq_vca(r, V12);
    rq_digests(r, false);
    rq_cert(r, 0);
    /* The signature fails; the rest of the transcript (ResponderVerifyData) is sound. */
    assert_int_equal(rq_key_exchange(r, 0, 0), VTSM_E_PEER_SIGNATURE);
    assert_int_equal(rq_meas(r, false, SPDM_MEAS_OP_ALL, true, false, 0, NULL), VTSM_OK);
    rq_free(r);

    r = fault_dev(VTSM_DEV_FAULT_BAD_MEAS_SIGNATURE);
    rq_session(r, V13);
    assert_int_equal(rq_meas(r, true, SPDM_MEAS_OP_ALL, true, false, 0, NULL),
                     VTSM_E_PEER_SIGNATURE);
    rq_free(r);
}

static void test_fault_untrusted_chain(void **state)
{
    (void)state;
    struct rq *r = fault_dev(VTSM_DEV_FAULT_UNTRUSTED_CHAIN);
    struct vtsm_trust *t = NULL;
    char why[256];
    assert_int_equal(vtsm_trust_new(&t), VTSM_OK);
    assert_int_equal(vtsm_trust_add_path(t, VTSM_SOURCE_DIR "/pki/roots.pem"), VTSM_OK);
    rq_session(r, V12); /* every signature verifies with the served leaf */
    assert_int_equal(vtsm_trust_verify(t, &r->cc, why, sizeof(why)), VTSM_E_PEER_UNTRUSTED);
    vtsm_trust_free(t);
    rq_free(r);
}

static void test_fault_doe_shapes(void **state)
{
    (void)state;
    const struct {
        enum vtsm_dev_fault f;
        vtsm_status want;
    } cases[] = {
        {VTSM_DEV_FAULT_TRUNCATE_DOE, VTSM_E_DOE_TRUNCATED},
        {VTSM_DEV_FAULT_OVERSIZE_DOE, VTSM_E_DOE_OVERSIZED},
        {VTSM_DEV_FAULT_MISALIGN_DOE, VTSM_E_DOE_MISALIGNED},
    };
    for (size_t i = 0; i < 3; i++) {
        struct rq *r = fault_dev(cases[i].f);
        rq_vca(r, V12);
        rq_digests(r, false); /* other responses are intact */
        uint8_t m[8] = {V12, SPDM_GET_CERTIFICATE, 0, 0, 0, 0, 0x00, 0x04};
        struct vtsm_buf req = {0};
        assert_int_equal(vtsm_doe_build_buf(VTSM_DOE_VENDOR_PCISIG, VTSM_DOE_TYPE_SPDM, m, 8, &req),
                         VTSM_OK);
        assert_int_equal(vtsm_dev_handle(r->d, req.data, req.len, &r->rsp), VTSM_OK);
        struct vtsm_doe_obj o;
        assert_int_equal(vtsm_doe_parse(r->rsp.data, r->rsp.len, &o), cases[i].want);
        vtsm_buf_free(&req);
        rq_free(r);
    }
}

static void test_fault_error_kex_and_unexpected_code(void **state)
{
    (void)state;
    struct rq *r = fault_dev(VTSM_DEV_FAULT_ERROR_KEX);
    rq_vca(r, V13);
    rq_digests(r, false);
    rq_cert(r, 0);
    assert_int_equal(rq_key_exchange(r, 0, 0), VTSM_E_PEER_ERROR);
    expect_error(r, V13, SPDM_ERR_UNSPECIFIED, 0);
    assert_int_equal(r->msg_len, 4);
    rq_free(r);

    r = fault_dev(VTSM_DEV_FAULT_UNEXPECTED_CODE);
    rq_vca(r, V12);
    const uint8_t m[4] = {V12, SPDM_GET_DIGESTS, 0, 0};
    rq_clear(r, m, 4);
    assert_int_equal(r->msg[1], SPDM_CERTIFICATE);
    rq_free(r);
}

static void test_fault_secured(void **state)
{
    (void)state;
    uint8_t m[4 + VTSM_HASH_MAX];
    size_t n;

    /* wrong-session-id: every secured response, from FINISH_RSP on. */
    struct rq *r = fault_dev(VTSM_DEV_FAULT_WRONG_SESSION_ID);
    rq_vca(r, V12);
    rq_digests(r, false);
    rq_cert(r, 0);
    assert_int_equal(rq_key_exchange(r, 0, 0), VTSM_OK);
    n = finish_msg(r, m);
    assert_int_equal(rq_sec(r, m, n), VTSM_E_PEER_SESSION_ID);
    rq_free(r);

    /* tamper: the ciphertext of every secured response. */
    r = fault_dev(VTSM_DEV_FAULT_TAMPER);
    rq_vca(r, V12);
    rq_digests(r, false);
    rq_cert(r, 0);
    assert_int_equal(rq_key_exchange(r, 0, 0), VTSM_OK);
    n = finish_msg(r, m);
    assert_int_equal(rq_sec(r, m, n), VTSM_E_PEER_DECRYPT);
    rq_free(r);

    /* replay: the 2nd request in the session gets FINISH_RSP's bytes again. */
    r = fault_dev(VTSM_DEV_FAULT_REPLAY);
    rq_session(r, V13);
    struct vtsm_buf finish_rsp = {0};
    assert_int_equal(vtsm_buf_set(&finish_rsp, r->rsp.data, r->rsp.len), VTSM_OK);
    const uint8_t dg[4] = {V13, SPDM_GET_DIGESTS, 0, 0};
    assert_int_equal(rq_sec(r, dg, 4), VTSM_E_PEER_DECRYPT);
    assert_int_equal(r->rsp.len, finish_rsp.len);
    assert_memory_equal(r->rsp.data, finish_rsp.data, finish_rsp.len);
    vtsm_buf_free(&finish_rsp);
    rq_free(r);
}

static void test_fault_not_ready(void **state)
{
    (void)state;
    const uint8_t vers[2] = {V12, V13};
    for (int v = 0; v < 2; v++) {
        struct rq *r = fault_dev(VTSM_DEV_FAULT_NOT_READY);
        rq_vca(r, vers[v]);
        rq_digests(r, false);
        rq_cert(r, 0);
        uint8_t ver = vers[v];
        /* An unsigned count first, so L1/L2 spans the retried exchange too. */
        uint8_t m[64] = {ver, SPDM_GET_MEASUREMENTS, 0, SPDM_MEAS_OP_COUNT};
        size_t n = ver >= V13 ? 12 : 4;
        if (ver >= V13)
            memcpy(m + 4, "CONTEXT!", 8);
        rq_clear(r, m, n);
        /* ERROR(ResponseNotReady): RDTExponent, RequestCode, Token, RDTM. */
        expect_error(r, ver, SPDM_ERR_RESPONSE_NOT_READY, 0);
        assert_int_equal(r->msg[5], SPDM_GET_MEASUREMENTS);
        uint8_t token = r->msg[6];
        assert_true(r->msg[7] >= 1);
        /* A wrong token is refused. */
        uint8_t riy[4] = {ver, SPDM_RESPOND_IF_READY, SPDM_GET_MEASUREMENTS, (uint8_t)(token + 1)};
        rq_clear(r, riy, 4);
        expect_error(r, ver, SPDM_ERR_INVALID_REQUEST, 0);
        /* Again, then the right RESPOND_IF_READY gets the MEASUREMENTS. */
        rq_clear(r, m, n);
        token = r->msg[6];
        riy[3] = token;
        rq_clear(r, riy, 4);
        assert_int_equal(r->msg[1], SPDM_MEASUREMENTS);
        assert_int_equal(r->msg[2], 4);
        size_t rl = 8 + 32 + 2 + (ver >= V13 ? 8 : 0);
        assert_int_equal(vtsm_buf_append(&r->log, m, n), VTSM_OK);
        assert_int_equal(vtsm_buf_append(&r->log, r->msg, rl), VTSM_OK);
        /* The signed one after it also goes through ResponseNotReady; its signature
         * covers both GET_MEASUREMENTS requests, never RESPOND_IF_READY. */
        uint8_t s[64] = {ver, SPDM_GET_MEASUREMENTS, SPDM_MEAS_ATTR_SIGNATURE, SPDM_MEAS_OP_ALL};
        memset(s + 4, 0x77, 32);
        s[36] = 0;
        size_t sn = 37;
        if (ver >= V13) {
            memcpy(s + 37, "CONTEXT!", 8);
            sn += 8;
        }
        rq_clear(r, s, sn);
        expect_error(r, ver, SPDM_ERR_RESPONSE_NOT_READY, 0);
        riy[3] = r->msg[6];
        rq_clear(r, riy, 4);
        assert_int_equal(r->msg[1], SPDM_MEASUREMENTS);
        size_t rec = r->msg[5] | r->msg[6] << 8;
        size_t off = 8 + rec + 32 + 2 + (ver >= V13 ? 8 : 0);
        assert_int_equal(vtsm_buf_append(&r->log, s, sn), VTSM_OK);
        assert_int_equal(vtsm_buf_append(&r->log, r->msg, off), VTSM_OK);
        uint8_t th[VTSM_HASH_MAX];
        hash_all(r, &r->vca, &r->log, th);
        assert_int_equal(vtsm_spdm_verify(r->cc.leaf_key, r->asym, r->hash, ver,
                                          VTSM_SPDM_CTX_MEASUREMENTS, th, r->msg + off,
                                          vtsm_sig_size(r->asym)),
                         VTSM_OK);
        rq_free(r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* failure cases first */
        cmocka_unit_test(test_doe_garbage_header),
        cmocka_unit_test(test_doe_misaligned_truncated_oversized),
        cmocka_unit_test(test_spdm_header_truncated),
        cmocka_unit_test(test_capabilities_before_version),
        cmocka_unit_test(test_version_mismatch),
        cmocka_unit_test(test_unsupported_request),
        cmocka_unit_test(test_capabilities_invalid),
        cmocka_unit_test(test_algorithms_nothing_acceptable),
        cmocka_unit_test(test_algorithms_malformed),
        cmocka_unit_test(test_certificate_refusals),
        cmocka_unit_test(test_session_refusals),
        cmocka_unit_test(test_measurement_refusals),
        cmocka_unit_test(test_challenge_refusals),
        cmocka_unit_test(test_chunk_refusals),
        cmocka_unit_test(test_chunk_send_and_get),
        cmocka_unit_test(test_config_refused),
        cmocka_unit_test(test_decrypt_error_ends_session),
        cmocka_unit_test(test_finish_bad_verify_data),
        cmocka_unit_test(test_in_session_state_rules),
        /* what works */
        cmocka_unit_test(test_doe_discovery_walk),
        cmocka_unit_test(test_version_exact_bytes),
        cmocka_unit_test(test_capabilities_exact_bytes),
        cmocka_unit_test(test_algorithms_selection),
        cmocka_unit_test(test_digests_certificate_trust),
        cmocka_unit_test(test_measurements),
        cmocka_unit_test(test_session_full),
        cmocka_unit_test(test_tdisp_report_portion_fits_dts),
        cmocka_unit_test(test_get_version_ends_session),
        cmocka_unit_test(test_handshake_replaced_by_new_key_exchange),
        /* faults */
        cmocka_unit_test(test_fault_names),
        cmocka_unit_test(test_fault_signatures),
        cmocka_unit_test(test_fault_untrusted_chain),
        cmocka_unit_test(test_fault_doe_shapes),
        cmocka_unit_test(test_fault_error_kex_and_unexpected_code),
        cmocka_unit_test(test_fault_secured),
        cmocka_unit_test(test_fault_not_ready),
    };
    return cmocka_run_group_tests_name("devemu", tests, NULL, NULL);
}
