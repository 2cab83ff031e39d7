/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * proto/vtsm_spdm_crypto: the DSP0274 signing format and key schedule, DSP0277 secured
 * messages over PCI DOE and the DSP0277 version opaque data.
 *
 * The key schedule is recomputed here independently: HKDF written out with raw HMAC
 * (EVP_MAC) calls, and every BinConcat assembled byte by byte from the DSP0274 text
 * (Length u16 LE | "spdm1.x " | Label | Context). Failure cases first.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "vtsm_buf.h"
#include "vtsm_spdm_crypto.h"

/* ---- independent reference: HMAC / HKDF with raw EVP_MAC, BinConcat by hand ---- */

static void ref_hmac(enum vtsm_hash_alg h, const uint8_t *key, size_t key_len, const uint8_t *a,
                     size_t a_len, const uint8_t *b, size_t b_len, uint8_t *out)
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
    OSSL_PARAM p[2];
    size_t n = 0;

    p[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                            h == VTSM_HASH_SHA256 ? "SHA256" : "SHA384", 0);
    p[1] = OSSL_PARAM_construct_end();
    assert_int_equal(EVP_MAC_init(ctx, key, key_len, p), 1);
    if (a_len)
        assert_int_equal(EVP_MAC_update(ctx, a, a_len), 1);
    if (b_len)
        assert_int_equal(EVP_MAC_update(ctx, b, b_len), 1);
    assert_int_equal(EVP_MAC_final(ctx, out, &n, 64), 1);
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
}

/* RFC 5869 2.3, one block at a time. */
static void ref_expand(enum vtsm_hash_alg h, const uint8_t *prk, const uint8_t *info,
                       size_t info_len, uint8_t *out, size_t len)
{
    size_t hl = vtsm_hash_size(h), done = 0;
    uint8_t t[64 + 256 + 1], block[64];
    size_t t_len = 0;

    for (uint8_t i = 1; done < len; i++) {
        memcpy(t + t_len, info, info_len);
        t[t_len + info_len] = i;
        ref_hmac(h, prk, hl, t, t_len + info_len + 1, NULL, 0, block);
        memcpy(out + done, block, len - done < hl ? len - done : hl);
        done += hl;
        memcpy(t, block, hl);
        t_len = hl;
    }
}

/* BinConcat(Length, Version, Label, Context) assembled from the spec text. */
static size_t ref_bin(uint8_t *out, uint16_t length, uint8_t version, const char *label,
                      const uint8_t *ctx, size_t ctx_len)
{
    size_t n = 0;

    out[n++] = (uint8_t)(length & 0xFF);
    out[n++] = (uint8_t)(length >> 8);
    memcpy(out + n, version == 0x12 ? "spdm1.2 " : "spdm1.3 ", 8);
    n += 8;
    memcpy(out + n, label, strlen(label));
    n += strlen(label);
    if (ctx_len)
        memcpy(out + n, ctx, ctx_len);
    return n + ctx_len;
}

static void ref_derive(enum vtsm_hash_alg h, uint8_t version, const uint8_t *secret,
                       const char *label, const uint8_t *ctx, size_t len, uint8_t *out)
{
    uint8_t info[128];
    size_t info_len =
        ref_bin(info, (uint16_t)len, version, label, ctx, ctx ? vtsm_hash_size(h) : 0);

    ref_expand(h, secret, info, info_len, out, len);
}

/* ---- key schedule ---- */

static void test_ks_refusals(void **state)
{
    struct vtsm_spdm_ks ks;
    uint8_t dhe[48] = {1}, th[48] = {2}, out[48];

    (void)state;
    memset(&ks, 0, sizeof(ks));
    assert_int_equal(vtsm_spdm_ks_handshake(&ks, 0x12, VTSM_HASH_NONE, dhe, 48, th),
                     VTSM_E_UNSUPPORTED);
    assert_int_equal(vtsm_spdm_ks_handshake(&ks, 0x10, VTSM_HASH_SHA384, dhe, 48, th),
                     VTSM_E_INVAL);
    assert_int_equal(vtsm_spdm_ks_handshake(&ks, 0x12, VTSM_HASH_SHA384, dhe, 0, th), VTSM_E_INVAL);
    assert_int_equal(vtsm_spdm_ks_data(&ks, th), VTSM_E_STATE);
    assert_int_equal(vtsm_spdm_ks_update(&ks, true), VTSM_E_STATE);
    assert_int_equal(vtsm_spdm_verify_data(&ks, true, th, out), VTSM_E_STATE);
    assert_int_equal(vtsm_spdm_ks_set_secmsg_version(&ks, 0x1300), VTSM_E_INVAL);
    ks.secmsg_version = 0x0900;
    assert_int_equal(vtsm_spdm_ks_handshake(&ks, 0x12, VTSM_HASH_SHA384, dhe, 48, th),
                     VTSM_E_INVAL);
}

static void test_bin_concat_layout(void **state)
{
    uint8_t out[64], want[64], th[32];
    size_t n = 0;

    (void)state;
    memset(th, 0xA5, sizeof(th));
    assert_int_equal(vtsm_spdm_bin_concat(0x13, 0x0130, "req hs data", th, 32, out, &n), VTSM_OK);
    assert_int_equal(n, 2 + 8 + 11 + 32);
    assert_int_equal(ref_bin(want, 0x0130, 0x13, "req hs data", th, 32), n);
    assert_memory_equal(out, want, n);
    assert_memory_equal(out, "\x30\x01spdm1.3 req hs data", 21);
    assert_int_equal(vtsm_spdm_bin_concat(0x12, 12, "iv", NULL, 0, out, &n), VTSM_OK);
    assert_int_equal(n, 12);
    assert_memory_equal(out, "\x0c\x00spdm1.2 iv", 12);
}

static void check_schedule(uint8_t version, enum vtsm_hash_alg hash)
{
    size_t h = vtsm_hash_size(hash);
    struct vtsm_spdm_ks ks;
    uint8_t dhe[48], th1[48], th2[48], zeros[48] = {0};
    uint8_t hs[48], req_hs[48], rsp_hs[48], req_fin[48], rsp_fin[48];
    uint8_t salt1[48], master[48], req_app[48], rsp_app[48], exp_master[48], upd[48];
    uint8_t key[32], iv[12], vd[48], want_vd[48];

    memset(dhe, 0x11, sizeof(dhe));
    memset(th1, 0xA1, sizeof(th1));
    memset(th2, 0xB2, sizeof(th2));
    th1[0] = version;
    th2[h - 1] = (uint8_t)hash;

    /* Reference, straight from the DSP0274 key schedule. */
    ref_hmac(hash, zeros, h, dhe, h, NULL, 0, hs); /* Extract(Salt_0 = 0^H, DHE) */
    ref_derive(hash, version, hs, "req hs data", th1, h, req_hs);
    ref_derive(hash, version, hs, "rsp hs data", th1, h, rsp_hs);
    ref_derive(hash, version, req_hs, "finished", NULL, h, req_fin);
    ref_derive(hash, version, rsp_hs, "finished", NULL, h, rsp_fin);

    memset(&ks, 0xCC, sizeof(ks));
    ks.secmsg_version = 0;
    ks.req.seq_be = false;
    ks.rsp.seq_be = false;
    assert_int_equal(vtsm_spdm_ks_handshake(&ks, version, hash, dhe, h, th1), VTSM_OK);
    assert_int_equal(ks.hash_len, h);
    assert_int_equal(ks.secmsg_version, VTSM_SECMSG_V12);
    assert_memory_equal(ks.handshake_secret, hs, h);
    assert_memory_equal(ks.req.secret, req_hs, h);
    assert_memory_equal(ks.rsp.secret, rsp_hs, h);
    assert_memory_equal(ks.req_finished_key, req_fin, h);
    assert_memory_equal(ks.rsp_finished_key, rsp_fin, h);
    ref_derive(hash, version, req_hs, "key", NULL, 32, key);
    ref_derive(hash, version, req_hs, "iv", NULL, 12, iv);
    assert_memory_equal(ks.req.key, key, 32);
    assert_memory_equal(ks.req.iv, iv, 12);
    ref_derive(hash, version, rsp_hs, "key", NULL, 32, key);
    ref_derive(hash, version, rsp_hs, "iv", NULL, 12, iv);
    assert_memory_equal(ks.rsp.key, key, 32);
    assert_memory_equal(ks.rsp.iv, iv, 12);
    assert_int_equal(ks.req.seq, 0);
    assert_int_equal(ks.rsp.seq, 0);

    /* RequesterVerifyData / ResponderVerifyData = HMAC(finished_key, TH). */
    ref_hmac(hash, req_fin, h, th2, h, NULL, 0, want_vd);
    assert_int_equal(vtsm_spdm_verify_data(&ks, true, th2, vd), VTSM_OK);
    assert_memory_equal(vd, want_vd, h);
    ref_hmac(hash, rsp_fin, h, th2, h, NULL, 0, want_vd);
    assert_int_equal(vtsm_spdm_verify_data(&ks, false, th2, vd), VTSM_OK);
    assert_memory_equal(vd, want_vd, h);

    /* Data phase. */
    ref_derive(hash, version, hs, "derived", NULL, h, salt1);
    ref_hmac(hash, salt1, h, zeros, h, NULL, 0, master); /* Extract(Salt_1, 0^H) */
    ref_derive(hash, version, master, "req app data", th2, h, req_app);
    ref_derive(hash, version, master, "rsp app data", th2, h, rsp_app);
    ref_derive(hash, version, master, "exp master", th2, h, exp_master);
    ks.req.seq = 5;
    assert_int_equal(vtsm_spdm_ks_data(&ks, th2), VTSM_OK);
    assert_memory_equal(ks.master_secret, master, h);
    assert_memory_equal(ks.req.secret, req_app, h);
    assert_memory_equal(ks.rsp.secret, rsp_app, h);
    assert_memory_equal(ks.export_master_secret, exp_master, h);
    ref_derive(hash, version, req_app, "key", NULL, 32, key);
    ref_derive(hash, version, req_app, "iv", NULL, 12, iv);
    assert_memory_equal(ks.req.key, key, 32);
    assert_memory_equal(ks.req.iv, iv, 12);
    ref_derive(hash, version, rsp_app, "key", NULL, 32, key);
    ref_derive(hash, version, rsp_app, "iv", NULL, 12, iv);
    assert_memory_equal(ks.rsp.key, key, 32);
    assert_memory_equal(ks.rsp.iv, iv, 12);
    assert_int_equal(ks.req.seq, 0);
    /* Handshake material is gone. */
    assert_memory_equal(ks.handshake_secret, zeros, sizeof(ks.handshake_secret));
    assert_memory_equal(ks.req_finished_key, zeros, sizeof(ks.req_finished_key));
    assert_memory_equal(ks.rsp_finished_key, zeros, sizeof(ks.rsp_finished_key));

    /* KEY_UPDATE, each direction on its own. */
    ref_derive(hash, version, req_app, "traffic upd", NULL, h, upd);
    ks.req.seq = 9;
    assert_int_equal(vtsm_spdm_ks_update(&ks, true), VTSM_OK);
    assert_memory_equal(ks.req.secret, upd, h);
    ref_derive(hash, version, upd, "key", NULL, 32, key);
    ref_derive(hash, version, upd, "iv", NULL, 12, iv);
    assert_memory_equal(ks.req.key, key, 32);
    assert_memory_equal(ks.req.iv, iv, 12);
    assert_int_equal(ks.req.seq, 0);
    assert_memory_equal(ks.rsp.secret, rsp_app, h); /* untouched */
    ref_derive(hash, version, rsp_app, "traffic upd", NULL, h, upd);
    assert_int_equal(vtsm_spdm_ks_update(&ks, false), VTSM_OK);
    assert_memory_equal(ks.rsp.secret, upd, h);

    vtsm_spdm_ks_wipe(&ks);
    assert_int_equal(ks.hash_len, 0);
    assert_memory_equal(ks.req.key, zeros, 32);
}

static void test_key_schedule_reference(void **state)
{
    (void)state;
    check_schedule(0x12, VTSM_HASH_SHA256);
    check_schedule(0x12, VTSM_HASH_SHA384);
    check_schedule(0x13, VTSM_HASH_SHA256);
    check_schedule(0x13, VTSM_HASH_SHA384);
}

static void test_ks_versions_differ(void **state)
{
    struct vtsm_spdm_ks a, b;
    uint8_t dhe[32] = {7}, th[32] = {8};

    (void)state;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    assert_int_equal(vtsm_spdm_ks_handshake(&a, 0x12, VTSM_HASH_SHA256, dhe, 32, th), VTSM_OK);
    assert_int_equal(vtsm_spdm_ks_handshake(&b, 0x13, VTSM_HASH_SHA256, dhe, 32, th), VTSM_OK);
    assert_memory_equal(a.handshake_secret, b.handshake_secret, 32);
    assert_memory_not_equal(a.req.secret, b.req.secret, 32);
    /* secmsg_version set beforehand survives the handshake and reaches both directions. */
    assert_int_equal(vtsm_spdm_ks_set_secmsg_version(&a, VTSM_SECMSG_V11), VTSM_OK);
    a.req.seq_be = true;
    assert_int_equal(vtsm_spdm_ks_handshake(&a, 0x12, VTSM_HASH_SHA256, dhe, 32, th), VTSM_OK);
    assert_int_equal(a.req.secmsg_version, VTSM_SECMSG_V11);
    assert_int_equal(a.rsp.secmsg_version, VTSM_SECMSG_V11);
    assert_true(a.req.seq_be);
    assert_int_equal(vtsm_spdm_ks_data(&a, th), VTSM_OK);
    assert_int_equal(a.req.secmsg_version, VTSM_SECMSG_V11);
    vtsm_spdm_ks_wipe(&a);
    vtsm_spdm_ks_wipe(&b);
}

/* ---- signing format ---- */

static void test_signing_msg_refusals(void **state)
{
    uint8_t hash[48] = {0}, out[160];
    size_t n = 0;

    (void)state;
    assert_int_equal(
        vtsm_spdm_signing_msg(0x12, "this context string is longer than 36 b", hash, 48, out, &n),
        VTSM_E_INVAL);
    assert_int_equal(vtsm_spdm_signing_msg(0x12, NULL, hash, 48, out, &n), VTSM_E_INVAL);
    assert_int_equal(vtsm_spdm_signing_msg(0x12, "x", hash, 0, out, &n), VTSM_E_INVAL);
    assert_int_equal(vtsm_spdm_signing_msg(0x12, "x", hash, 49, out, &n), VTSM_E_INVAL);
    assert_int_equal(vtsm_spdm_sign(NULL, VTSM_ASYM_ECDSA_P384, VTSM_HASH_SHA384, 0x11,
                                    VTSM_SPDM_CTX_FINISH, hash, out),
                     VTSM_E_UNSUPPORTED);
}

static void check_signing_layout(uint8_t version, const char *vstr, const char *context)
{
    uint8_t hash[48], out[160], want[160];
    size_t n = 0, clen = strlen(context);

    for (int i = 0; i < 48; i++)
        hash[i] = (uint8_t)(0x80 + i);
    assert_int_equal(vtsm_spdm_signing_msg(version, context, hash, 48, out, &n), VTSM_OK);
    assert_int_equal(n, 148);
    /* combined_spdm_prefix: the 16-byte version prefix, four times. */
    for (int i = 0; i < 4; i++)
        memcpy(want + 16 * i, vstr, 16);
    /* zero_pad, then the context, ending at byte 100. */
    memset(want + 64, 0, 36 - clen);
    memcpy(want + 100 - clen, context, clen);
    memcpy(want + 100, hash, 48);
    assert_memory_equal(out, want, 148);
}

static void test_signing_msg_layout(void **state)
{
    uint8_t hash[32] = {9}, out[160];
    size_t n = 0;

    (void)state;
    check_signing_layout(0x12, "dmtf-spdm-v1.2.*", VTSM_SPDM_CTX_KEY_EXCHANGE_RSP);
    check_signing_layout(0x13, "dmtf-spdm-v1.3.*", VTSM_SPDM_CTX_KEY_EXCHANGE_RSP);
    check_signing_layout(0x12, "dmtf-spdm-v1.2.*", VTSM_SPDM_CTX_FINISH);
    check_signing_layout(0x13, "dmtf-spdm-v1.3.*", VTSM_SPDM_CTX_CHALLENGE_AUTH);
    check_signing_layout(0x13, "dmtf-spdm-v1.3.*", VTSM_SPDM_CTX_MEASUREMENTS);
    /* Spot-check against literal bytes, so a shared mistake cannot hide. */
    assert_int_equal(vtsm_spdm_signing_msg(0x13, "requester-finish signing", hash, 32, out, &n),
                     VTSM_OK);
    assert_memory_equal(out + 48, "dmtf-spdm-v1.3.*", 16);
    assert_memory_equal(out + 64, "\0\0\0\0\0\0\0\0\0\0\0\0requester-finish signing", 36);
    assert_int_equal(out[100], 9);
    assert_int_equal(strlen(VTSM_SPDM_CTX_KEY_EXCHANGE_RSP), 34);
    /* 1.1: the message is the hash itself. */
    assert_int_equal(vtsm_spdm_signing_msg(0x11, NULL, hash, 32, out, &n), VTSM_OK);
    assert_int_equal(n, 32);
    assert_memory_equal(out, hash, 32);
}

static void test_spdm_sign_verify(void **state)
{
    EVP_PKEY *k = NULL;
    uint8_t th[48], sig[96], m[148];
    size_t n = 0;

    (void)state;
    assert_int_equal(vtsm_pkey_load_pem(VTSM_SOURCE_DIR "/pki/p384/leaf.key", &k), VTSM_OK);
    memset(th, 0x3C, sizeof(th));
    assert_int_equal(vtsm_spdm_sign(k, VTSM_ASYM_ECDSA_P384, VTSM_HASH_SHA384, 0x13,
                                    VTSM_SPDM_CTX_KEY_EXCHANGE_RSP, th, sig),
                     VTSM_OK);
    assert_int_equal(vtsm_spdm_verify(k, VTSM_ASYM_ECDSA_P384, VTSM_HASH_SHA384, 0x13,
                                      VTSM_SPDM_CTX_KEY_EXCHANGE_RSP, th, sig, 96),
                     VTSM_OK);
    /* It is an ordinary ECDSA signature over M = prefix | pad | context | hash. */
    assert_int_equal(vtsm_spdm_signing_msg(0x13, VTSM_SPDM_CTX_KEY_EXCHANGE_RSP, th, 48, m, &n),
                     VTSM_OK);
    assert_int_equal(vtsm_ecdsa_verify(k, VTSM_ASYM_ECDSA_P384, VTSM_HASH_SHA384, m, n, sig, 96),
                     VTSM_OK);
    /* Other context, version or transcript: refused. */
    assert_int_equal(vtsm_spdm_verify(k, VTSM_ASYM_ECDSA_P384, VTSM_HASH_SHA384, 0x13,
                                      VTSM_SPDM_CTX_MEASUREMENTS, th, sig, 96),
                     VTSM_E_PEER_SIGNATURE);
    assert_int_equal(vtsm_spdm_verify(k, VTSM_ASYM_ECDSA_P384, VTSM_HASH_SHA384, 0x12,
                                      VTSM_SPDM_CTX_KEY_EXCHANGE_RSP, th, sig, 96),
                     VTSM_E_PEER_SIGNATURE);
    th[0] ^= 1;
    assert_int_equal(vtsm_spdm_verify(k, VTSM_ASYM_ECDSA_P384, VTSM_HASH_SHA384, 0x13,
                                      VTSM_SPDM_CTX_KEY_EXCHANGE_RSP, th, sig, 96),
                     VTSM_E_PEER_SIGNATURE);
    EVP_PKEY_free(k);
}

/* ---- secured messages ---- */

#define SID 0xFFFE0001u

static void make_dir(struct vtsm_spdm_dir *d, uint16_t secmsg_version, bool seq_be)
{
    memset(d, 0, sizeof(*d));
    for (int i = 0; i < 32; i++)
        d->key[i] = (uint8_t)(i * 7 + 1);
    for (int i = 0; i < 12; i++)
        d->iv[i] = (uint8_t)(0xF0 - i);
    d->secmsg_version = secmsg_version;
    d->seq_be = seq_be;
}

static size_t seal(struct vtsm_spdm_dir *d, const char *text, uint8_t *out, size_t cap)
{
    size_t n = cap;

    assert_int_equal(vtsm_secmsg_seal(d, SID, (const uint8_t *)text, strlen(text), out, &n),
                     VTSM_OK);
    assert_int_equal(n, strlen(text) + VTSM_SECMSG_OVERHEAD);
    return n;
}

static void test_secmsg_tampered(void **state)
{
    struct vtsm_spdm_dir tx, rx;
    uint8_t msg[128], bad[128], app[128];
    size_t n, alen;

    (void)state;
    make_dir(&tx, VTSM_SECMSG_V12, false);
    make_dir(&rx, VTSM_SECMSG_V12, false);
    n = seal(&tx, "GET_MEASUREMENTS", msg, sizeof(msg));

    /* Every single flipped byte after the header fails authentication; seq stays. */
    for (size_t i = 6; i < n; i++) {
        memcpy(bad, msg, n);
        bad[i] ^= 0x04;
        alen = sizeof(app);
        assert_int_equal(vtsm_secmsg_open(&rx, SID, bad, n, app, &alen), VTSM_E_PEER_DECRYPT);
        assert_int_equal(rx.seq, 0);
    }
    /* Session ID (part of the AAD) checked first. */
    memcpy(bad, msg, n);
    bad[0] ^= 1;
    alen = sizeof(app);
    assert_int_equal(vtsm_secmsg_open(&rx, SID, bad, n, app, &alen), VTSM_E_PEER_SESSION_ID);
    alen = sizeof(app);
    assert_int_equal(vtsm_secmsg_open(&rx, SID + 1, msg, n, app, &alen), VTSM_E_PEER_SESSION_ID);
    /* Length one lower: 1 byte left over (DOE padding), and the AAD no longer matches. */
    memcpy(bad, msg, n);
    bad[4]--;
    alen = sizeof(app);
    assert_int_equal(vtsm_secmsg_open(&rx, SID, bad, n, app, &alen), VTSM_E_PEER_DECRYPT);
    /* Length one higher than the bytes present. */
    memcpy(bad, msg, n);
    bad[4]++;
    alen = sizeof(app);
    assert_int_equal(vtsm_secmsg_open(&rx, SID, bad, n, app, &alen), VTSM_E_PEER_MALFORMED);
    /* Length below ApplicationDataLength + MAC. */
    memcpy(bad, msg, n);
    vtsm_put_le16(bad + 4, 17);
    alen = sizeof(app);
    assert_int_equal(vtsm_secmsg_open(&rx, SID, bad, n, app, &alen), VTSM_E_PEER_MALFORMED);
    assert_int_equal(rx.seq, 0);
    alen = sizeof(app);
    assert_int_equal(vtsm_secmsg_open(&rx, SID, msg, n, app, &alen), VTSM_OK);
    assert_int_equal(rx.seq, 1);
}

static void test_secmsg_truncated(void **state)
{
    struct vtsm_spdm_dir tx, rx;
    uint8_t msg[128], app[128];
    size_t n, alen;

    (void)state;
    make_dir(&tx, VTSM_SECMSG_V12, false);
    make_dir(&rx, VTSM_SECMSG_V12, false);
    n = seal(&tx, "END_SESSION", msg, sizeof(msg));
    for (size_t len = 0; len < n; len++) {
        alen = sizeof(app);
        assert_int_equal(vtsm_secmsg_open(&rx, SID, msg, len, app, &alen), VTSM_E_PEER_MALFORMED);
    }
    /* Up to 3 trailing bytes are DOE dword padding; 4 are not. */
    memset(msg + n, 0, 4);
    alen = sizeof(app);
    assert_int_equal(vtsm_secmsg_open(&rx, SID, msg, n + 4, app, &alen), VTSM_E_PEER_MALFORMED);
    assert_int_equal(rx.seq, 0);
    alen = sizeof(app);
    assert_int_equal(vtsm_secmsg_open(&rx, SID, msg, n + 3, app, &alen), VTSM_OK);
    assert_int_equal(alen, 11);
    assert_memory_equal(app, "END_SESSION", 11);
    uint32_t sid = 0;
    assert_int_equal(vtsm_secmsg_session_id(msg, 3, &sid), VTSM_E_PEER_MALFORMED);
    assert_int_equal(vtsm_secmsg_session_id(msg, n, &sid), VTSM_OK);
    assert_int_equal(sid, SID);
}

static void test_secmsg_replay(void **state)
{
    struct vtsm_spdm_dir tx, rx;
    uint8_t m0[128], m1[128], app[128];
    size_t n0, n1, alen;

    (void)state;
    make_dir(&tx, VTSM_SECMSG_V12, false);
    make_dir(&rx, VTSM_SECMSG_V12, false);
    n0 = seal(&tx, "first", m0, sizeof(m0));
    n1 = seal(&tx, "second", m1, sizeof(m1));
    assert_int_equal(tx.seq, 2);
    alen = sizeof(app);
    assert_int_equal(vtsm_secmsg_open(&rx, SID, m0, n0, app, &alen), VTSM_OK);
    assert_int_equal(rx.seq, 1);
    /* The same message again: the IV has moved on, so it no longer authenticates. */
    alen = sizeof(app);
    assert_int_equal(vtsm_secmsg_open(&rx, SID, m0, n0, app, &alen), VTSM_E_PEER_DECRYPT);
    assert_int_equal(rx.seq, 1);
    alen = sizeof(app);
    assert_int_equal(vtsm_secmsg_open(&rx, SID, m1, n1, app, &alen), VTSM_OK);
    assert_int_equal(rx.seq, 2);
    assert_memory_equal(app, "second", alen);
}

static void test_secmsg_reorder_and_limits(void **state)
{
    struct vtsm_spdm_dir tx, rx;
    uint8_t m[3][128], app[128];
    size_t n[3], alen;

    (void)state;
    make_dir(&tx, VTSM_SECMSG_V12, false);
    make_dir(&rx, VTSM_SECMSG_V12, false);
    for (int i = 0; i < 3; i++)
        n[i] = seal(&tx, "HEARTBEAT", m[i], sizeof(m[i]));
    /* Dropped message: the next one does not open out of order. */
    alen = sizeof(app);
    assert_int_equal(vtsm_secmsg_open(&rx, SID, m[1], n[1], app, &alen), VTSM_E_PEER_DECRYPT);
    assert_int_equal(rx.seq, 0);

    /* Output too small: the size needed, no state change. */
    alen = 3;
    assert_int_equal(vtsm_secmsg_open(&rx, SID, m[0], n[0], app, &alen), VTSM_E_TOO_SMALL);
    assert_int_equal(alen, 9);
    assert_int_equal(rx.seq, 0);
    alen = 9;
    assert_int_equal(vtsm_secmsg_open(&rx, SID, m[0], n[0], app, &alen), VTSM_OK);
    size_t cap = 10;
    assert_int_equal(vtsm_secmsg_seal(&tx, SID, (const uint8_t *)"x", 1, m[0], &cap),
                     VTSM_E_TOO_SMALL);
    assert_int_equal(cap, 1 + VTSM_SECMSG_OVERHEAD);
    assert_int_equal(tx.seq, 3);
    cap = sizeof(m[0]);
    assert_int_equal(vtsm_secmsg_seal(&tx, SID, app, VTSM_SECMSG_APP_MAX + 1, m[0], &cap),
                     VTSM_E_INVAL);

    /* The sequence number never wraps. */
    tx.seq = UINT64_MAX;
    cap = sizeof(m[0]);
    assert_int_equal(vtsm_secmsg_seal(&tx, SID, (const uint8_t *)"x", 1, m[0], &cap), VTSM_E_LIMIT);
    tx.seq = UINT64_MAX - 1;
    rx.seq = UINT64_MAX - 1;
    n[0] = seal(&tx, "last", m[0], sizeof(m[0]));
    alen = sizeof(app);
    assert_int_equal(vtsm_secmsg_open(&rx, SID, m[0], n[0], app, &alen), VTSM_OK);
    assert_int_equal(rx.seq, UINT64_MAX);
    alen = sizeof(app);
    assert_int_equal(vtsm_secmsg_open(&rx, SID, m[0], n[0], app, &alen), VTSM_E_LIMIT);
}

/* Decrypt independently: IV rule, AAD and plaintext layout as the spec states them. */
static void check_wire(const struct vtsm_spdm_dir *d, uint64_t seq, bool be_at_end,
                       const uint8_t *msg, size_t n, const char *text)
{
    uint8_t iv[12], pt[128];
    int len = 0;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    size_t enc = n - 6 - 16;

    assert_int_equal(vtsm_get_le32(msg), SID);
    assert_int_equal(vtsm_get_le16(msg + 4), enc + 16);
    memcpy(iv, d->iv, 12);
    for (int i = 0; i < 8; i++) {
        if (be_at_end)
            iv[11 - i] ^= (uint8_t)(seq >> (8 * i));
        else
            iv[i] ^= (uint8_t)(seq >> (8 * i));
    }
    assert_int_equal(EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, d->key, iv), 1);
    assert_int_equal(EVP_DecryptUpdate(c, NULL, &len, msg, 6), 1);
    assert_int_equal(EVP_DecryptUpdate(c, pt, &len, msg + 6, (int)enc), 1);
    assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, (void *)(msg + 6 + enc)), 1);
    assert_int_equal(EVP_DecryptFinal_ex(c, pt + len, &len), 1);
    EVP_CIPHER_CTX_free(c);
    assert_int_equal(vtsm_get_le16(pt), strlen(text));
    assert_memory_equal(pt + 2, text, strlen(text));
}

static void test_secmsg_iv_modes(void **state)
{
    const uint64_t seq = 0x0102030405060708ull;
    struct vtsm_spdm_dir tx, rx;
    uint8_t msg[128], app[128];
    size_t n, alen;

    (void)state;
    /* DSP0277 1.2: little-endian at the start, whatever seq_be says. */
    make_dir(&tx, VTSM_SECMSG_V12, true);
    tx.seq = seq;
    n = seal(&tx, "TDISP LOCK_INTERFACE", msg, sizeof(msg));
    check_wire(&tx, seq, false, msg, n, "TDISP LOCK_INTERFACE");
    /* 0 (unset) behaves as 1.2. */
    make_dir(&tx, 0, true);
    tx.seq = seq;
    n = seal(&tx, "x", msg, sizeof(msg));
    check_wire(&tx, seq, false, msg, n, "x");
    /* 1.1 default: little-endian at the start too. */
    make_dir(&tx, VTSM_SECMSG_V11, false);
    tx.seq = seq;
    n = seal(&tx, "IDE_KM KEY_PROG", msg, sizeof(msg));
    check_wire(&tx, seq, false, msg, n, "IDE_KM KEY_PROG");
    /* 1.1 with seq_be: big-endian in the last 8 bytes. */
    make_dir(&tx, VTSM_SECMSG_V11, true);
    tx.seq = seq;
    n = seal(&tx, "IDE_KM KEY_PROG", msg, sizeof(msg));
    check_wire(&tx, seq, true, msg, n, "IDE_KM KEY_PROG");
    make_dir(&rx, VTSM_SECMSG_V11, true);
    rx.seq = seq;
    alen = sizeof(app);
    assert_int_equal(vtsm_secmsg_open(&rx, SID, msg, n, app, &alen), VTSM_OK);
    /* Mismatched modes agree only at sequence number 0. */
    make_dir(&rx, VTSM_SECMSG_V11, false);
    rx.seq = seq;
    alen = sizeof(app);
    assert_int_equal(vtsm_secmsg_open(&rx, SID, msg, n, app, &alen), VTSM_E_PEER_DECRYPT);
    make_dir(&tx, VTSM_SECMSG_V10, true);
    make_dir(&rx, VTSM_SECMSG_V10, false);
    n = seal(&tx, "zero", msg, sizeof(msg));
    alen = sizeof(app);
    assert_int_equal(vtsm_secmsg_open(&rx, SID, msg, n, app, &alen), VTSM_OK);
}

/* A peer may append RandomData after the application data (DSP0277); build one by hand. */
static size_t seal_by_hand(const struct vtsm_spdm_dir *d, uint16_t app_len_field,
                           const uint8_t *body, size_t body_len, uint8_t *out)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    uint8_t iv[12];
    int len = 0;

    memcpy(iv, d->iv, 12);
    for (int i = 0; i < 8; i++)
        iv[i] ^= (uint8_t)(d->seq >> (8 * i));
    vtsm_put_le32(out, SID);
    vtsm_put_le16(out + 4, (uint16_t)(2 + body_len + 16));
    vtsm_put_le16(out + 6, app_len_field);
    memcpy(out + 8, body, body_len);
    assert_int_equal(EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, d->key, iv), 1);
    assert_int_equal(EVP_EncryptUpdate(c, NULL, &len, out, 6), 1);
    assert_int_equal(EVP_EncryptUpdate(c, out + 6, &len, out + 6, (int)(2 + body_len)), 1);
    assert_int_equal(EVP_EncryptFinal_ex(c, out + 8 + body_len, &len), 1);
    assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, out + 8 + body_len), 1);
    EVP_CIPHER_CTX_free(c);
    return 8 + body_len + 16;
}

static void test_secmsg_random_data(void **state)
{
    struct vtsm_spdm_dir rx;
    uint8_t msg[128], app[128];
    const uint8_t body[] = "VERSION\x11\x22\x33";
    size_t n, alen;

    (void)state;
    make_dir(&rx, VTSM_SECMSG_V12, false);
    /* ApplicationDataLength beyond the decrypted bytes: authentic but malformed. */
    n = seal_by_hand(&rx, 11, body, 10, msg);
    alen = sizeof(app);
    assert_int_equal(vtsm_secmsg_open(&rx, SID, msg, n, app, &alen), VTSM_E_PEER_MALFORMED);
    assert_int_equal(rx.seq, 0);
    /* 7 bytes of data followed by 3 of RandomData. */
    n = seal_by_hand(&rx, 7, body, 10, msg);
    alen = sizeof(app);
    assert_int_equal(vtsm_secmsg_open(&rx, SID, msg, n, app, &alen), VTSM_OK);
    assert_int_equal(alen, 7);
    assert_memory_equal(app, "VERSION", 7);
    assert_int_equal(rx.seq, 1);
}

static void test_secmsg_round_trip(void **state)
{
    struct vtsm_spdm_ks req, rsp;
    uint8_t dhe[48], th1[48], th2[48], msg[512], app[512], big[400];
    size_t n, alen;

    (void)state;
    memset(dhe, 0x5D, sizeof(dhe));
    memset(th1, 0x01, sizeof(th1));
    memset(th2, 0x02, sizeof(th2));
    memset(&req, 0, sizeof(req));
    memset(&rsp, 0, sizeof(rsp));
    assert_int_equal(vtsm_spdm_ks_handshake(&req, 0x13, VTSM_HASH_SHA384, dhe, 48, th1), VTSM_OK);
    assert_int_equal(vtsm_spdm_ks_handshake(&rsp, 0x13, VTSM_HASH_SHA384, dhe, 48, th1), VTSM_OK);
    /* Handshake phase: FINISH from the requester. */
    n = sizeof(msg);
    assert_int_equal(vtsm_secmsg_seal(&req.req, SID, (const uint8_t *)"FINISH", 6, msg, &n),
                     VTSM_OK);
    alen = sizeof(app);
    assert_int_equal(vtsm_secmsg_open(&rsp.req, SID, msg, n, app, &alen), VTSM_OK);
    assert_memory_equal(app, "FINISH", 6);
    /* A message sealed for one direction does not open as the other. */
    alen = sizeof(app);
    assert_int_equal(vtsm_secmsg_open(&rsp.rsp, SID, msg, n, app, &alen), VTSM_E_PEER_DECRYPT);

    assert_int_equal(vtsm_spdm_ks_data(&req, th2), VTSM_OK);
    assert_int_equal(vtsm_spdm_ks_data(&rsp, th2), VTSM_OK);
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)i;
    for (int round = 0; round < 4; round++) {
        n = sizeof(msg);
        assert_int_equal(vtsm_secmsg_seal(&rsp.rsp, SID, big, sizeof(big), msg, &n), VTSM_OK);
        alen = sizeof(app);
        assert_int_equal(vtsm_secmsg_open(&req.rsp, SID, msg, n, app, &alen), VTSM_OK);
        assert_int_equal(alen, sizeof(big));
        assert_memory_equal(app, big, sizeof(big));
    }
    assert_int_equal(req.rsp.seq, 4);
    assert_int_equal(rsp.rsp.seq, 4);
    /* Empty payload and in-place sealing. */
    n = sizeof(msg);
    assert_int_equal(vtsm_secmsg_seal(&req.req, SID, NULL, 0, msg, &n), VTSM_OK);
    assert_int_equal(n, VTSM_SECMSG_OVERHEAD);
    alen = 0;
    assert_int_equal(vtsm_secmsg_open(&rsp.req, SID, msg, n, NULL, &alen), VTSM_OK);
    assert_int_equal(alen, 0);
    memcpy(msg, "KEY_UPDATE", 10);
    n = sizeof(msg);
    assert_int_equal(vtsm_secmsg_seal(&req.req, SID, msg, 10, msg, &n), VTSM_OK);
    alen = sizeof(app);
    assert_int_equal(vtsm_secmsg_open(&rsp.req, SID, msg, n, app, &alen), VTSM_OK);
    assert_memory_equal(app, "KEY_UPDATE", 10);
    /* After KEY_UPDATE of one direction both sides move together. */
    assert_int_equal(vtsm_spdm_ks_update(&req, true), VTSM_OK);
    n = sizeof(msg);
    assert_int_equal(vtsm_secmsg_seal(&req.req, SID, (const uint8_t *)"new", 3, msg, &n), VTSM_OK);
    alen = sizeof(app);
    assert_int_equal(vtsm_secmsg_open(&rsp.req, SID, msg, n, app, &alen), VTSM_E_PEER_DECRYPT);
    assert_int_equal(vtsm_spdm_ks_update(&rsp, true), VTSM_OK);
    alen = sizeof(app);
    assert_int_equal(vtsm_secmsg_open(&rsp.req, SID, msg, n, app, &alen), VTSM_OK);
    vtsm_spdm_ks_wipe(&req);
    vtsm_spdm_ks_wipe(&rsp);
}

/* ---- DSP0277 version opaque data ---- */

static void test_opaque_malformed(void **state)
{
    const uint16_t vers[3] = {VTSM_SECMSG_V10, VTSM_SECMSG_V11, VTSM_SECMSG_V12};
    uint8_t sup[64], sel[64], bad[64];
    size_t sup_len = sizeof(sup), sel_len = sizeof(sel), n;
    uint16_t out[4], v;

    (void)state;
    assert_int_equal(vtsm_secmsg_opaque_supported(vers, 3, sup, &sup_len), VTSM_OK);
    assert_int_equal(vtsm_secmsg_opaque_select(VTSM_SECMSG_V12, sel, &sel_len), VTSM_OK);
    /* Every truncation. */
    for (size_t len = 0; len < sup_len; len++) {
        n = 4;
        assert_int_equal(vtsm_secmsg_opaque_parse_supported(sup, len, out, &n),
                         VTSM_E_PEER_MALFORMED);
    }
    for (size_t len = 0; len < sel_len; len++)
        assert_int_equal(vtsm_secmsg_opaque_parse_select(sel, len, &v), VTSM_E_PEER_MALFORMED);
    /* Trailing junk. */
    memcpy(bad, sel, sel_len);
    memset(bad + sel_len, 0, 4);
    assert_int_equal(vtsm_secmsg_opaque_parse_select(bad, sel_len + 4, &v), VTSM_E_PEER_MALFORMED);
    /* TotalElements claims two. */
    memcpy(bad, sel, sel_len);
    bad[0] = 2;
    assert_int_equal(vtsm_secmsg_opaque_parse_select(bad, sel_len, &v), VTSM_E_PEER_MALFORMED);
    /* Unknown SMDataVersion. */
    memcpy(bad, sel, sel_len);
    bad[8] = 2;
    assert_int_equal(vtsm_secmsg_opaque_parse_select(bad, sel_len, &v), VTSM_E_PEER_MALFORMED);
    /* Selection element of the wrong size. */
    memcpy(bad, sel, sel_len);
    bad[6] = 3;
    assert_int_equal(vtsm_secmsg_opaque_parse_select(bad, sel_len, &v), VTSM_E_PEER_MALFORMED);
    /* VersionCount disagrees with the element size, or is zero. */
    memcpy(bad, sup, sup_len);
    bad[10] = 2;
    n = 4;
    assert_int_equal(vtsm_secmsg_opaque_parse_supported(bad, sup_len, out, &n),
                     VTSM_E_PEER_MALFORMED);
    memcpy(bad, sup, sup_len);
    bad[10] = 0;
    n = 4;
    assert_int_equal(vtsm_secmsg_opaque_parse_supported(bad, sup_len, out, &n),
                     VTSM_E_PEER_MALFORMED);
    /* The other kind of element only. */
    assert_int_equal(vtsm_secmsg_opaque_parse_select(sup, sup_len, &v), VTSM_E_PEER_MALFORMED);
    n = 4;
    assert_int_equal(vtsm_secmsg_opaque_parse_supported(sel, sel_len, out, &n),
                     VTSM_E_PEER_MALFORMED);
    /* Two selection elements. */
    memcpy(bad, sel, sel_len);
    memcpy(bad + sel_len, sel + 4, sel_len - 4);
    bad[0] = 2;
    assert_int_equal(vtsm_secmsg_opaque_parse_select(bad, 2 * sel_len - 4, &v),
                     VTSM_E_PEER_MALFORMED);
    /* More versions than the caller has room for. */
    n = 2;
    assert_int_equal(vtsm_secmsg_opaque_parse_supported(sup, sup_len, out, &n),
                     VTSM_E_PEER_OVERSIZED);
    /* Builder refusals. */
    n = 8;
    assert_int_equal(vtsm_secmsg_opaque_supported(vers, 3, sup, &n), VTSM_E_TOO_SMALL);
    assert_int_equal(n, 20);
    n = sizeof(sup);
    assert_int_equal(vtsm_secmsg_opaque_supported(vers, 0, sup, &n), VTSM_E_INVAL);
}

static void test_opaque_layout_round_trip(void **state)
{
    const uint16_t vers[3] = {VTSM_SECMSG_V10, VTSM_SECMSG_V11, VTSM_SECMSG_V12};
    /* TotalElements 1 | Reserved | ID 0 (DMTF) | VendorLen 0 | OpaqueElementDataLen 9 |
     * SMDataVersion 1 | SMDataID 1 | VersionCount 3 | 1.0 1.1 1.2 | AlignPadding (3) */
    const uint8_t want_sup[20] = {1, 0,    0,    0,    0,    0,    9,    0, 1, 1,
                                  3, 0x00, 0x10, 0x00, 0x11, 0x00, 0x12, 0, 0, 0};
    /* ... | OpaqueElementDataLen 4 | SMDataVersion 1 | SMDataID 0 | SelectedVersion 1.2 */
    const uint8_t want_sel[12] = {1, 0, 0, 0, 0, 0, 4, 0, 1, 0, 0x00, 0x12};
    uint8_t buf[64], mixed[64];
    size_t len = sizeof(buf), n = 4, m = 0;
    uint16_t out[4], v = 0;

    (void)state;
    assert_int_equal(vtsm_secmsg_opaque_supported(vers, 3, buf, &len), VTSM_OK);
    assert_int_equal(len, sizeof(want_sup));
    assert_memory_equal(buf, want_sup, len);
    assert_int_equal(vtsm_secmsg_opaque_parse_supported(buf, len, out, &n), VTSM_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(out, vers, sizeof(vers));

    len = sizeof(buf);
    assert_int_equal(vtsm_secmsg_opaque_select(VTSM_SECMSG_V12, buf, &len), VTSM_OK);
    assert_int_equal(len, sizeof(want_sel));
    assert_memory_equal(buf, want_sel, len);
    assert_int_equal(vtsm_secmsg_opaque_parse_select(buf, len, &v), VTSM_OK);
    assert_int_equal(v, VTSM_SECMSG_V12);

    /* Another registry's element (PCI-SIG, vendor ID 0x0001, 3 data bytes + 1 pad) first:
     * skipped, and the DSP0277 element after it still found. */
    mixed[m++] = 2;
    mixed[m++] = 0;
    mixed[m++] = 0;
    mixed[m++] = 0;
    const uint8_t other[] = {3, 2, 0x01, 0x00, 3, 0, 0xAA, 0xBB, 0xCC, 0};
    memcpy(mixed + m, other, sizeof(other));
    m += sizeof(other);
    while (m % 4)
        mixed[m++] = 0;
    memcpy(mixed + m, want_sel + 4, sizeof(want_sel) - 4);
    m += sizeof(want_sel) - 4;
    v = 0;
    assert_int_equal(vtsm_secmsg_opaque_parse_select(mixed, m, &v), VTSM_OK);
    assert_int_equal(v, VTSM_SECMSG_V12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ks_refusals),
        cmocka_unit_test(test_signing_msg_refusals),
        cmocka_unit_test(test_secmsg_tampered),
        cmocka_unit_test(test_secmsg_truncated),
        cmocka_unit_test(test_secmsg_replay),
        cmocka_unit_test(test_secmsg_reorder_and_limits),
        cmocka_unit_test(test_opaque_malformed),
        cmocka_unit_test(test_bin_concat_layout),
        cmocka_unit_test(test_key_schedule_reference),
        cmocka_unit_test(test_ks_versions_differ),
        cmocka_unit_test(test_signing_msg_layout),
        cmocka_unit_test(test_spdm_sign_verify),
        cmocka_unit_test(test_secmsg_iv_modes),
        cmocka_unit_test(test_secmsg_random_data),
        cmocka_unit_test(test_secmsg_round_trip),
        cmocka_unit_test(test_opaque_layout_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
