/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * guest-shim: the TVM credential (key file, persisted seq) and GUEST_REQUEST envelopes
 * (docs/abi.md section 9): exact body keys, seq strictly increasing across
 * handles and reopen, the signature over VTSM_ABI_GUEST_SIG_PREFIX || body verifying with
 * the registered public key and failing after any byte flip. Failure cases first, each
 * checking that nothing else changed (seq in memory and on disk).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include <cmocka.h>

#include "vtsm_test.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include "vtsm_abi.h"
#include "vtsm_crypto.h"
#include "vtsm_guest_cbor.h"

static const uint8_t nonce32[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                    17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

struct fx {
    char dir[64];
    char key[128];
    char seq[160];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/vtsm-guest-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->key, sizeof(f->key), "%s/tvm.pem", f->dir);
    snprintf(f->seq, sizeof(f->seq), "%s.seq", f->key);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static void write_file(const char *path, const void *p, size_t n, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static size_t read_file(const char *path, char *buf, size_t cap)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    size_t n = fread(buf, 1, cap - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    return n;
}

static void copy_file(const char *from, const char *to, mode_t mode)
{
    char buf[8192];
    size_t n = read_file(from, buf, sizeof(buf));
    write_file(to, buf, n, mode);
}

static uint64_t seq_on_disk(const struct fx *f)
{
    char buf[64];
    read_file(f->seq, buf, sizeof(buf));
    return strtoull(buf, NULL, 10);
}

static struct vtsm_guest *open_new(struct fx *f, uint32_t tvm)
{
    struct vtsm_guest *g = NULL;
    EXPECT(vtsm_guest_keygen(f->key), VTSM_OK, VTSM_RULE_NONE);
    EXPECT(vtsm_guest_open(f->key, tvm, &g), VTSM_OK, VTSM_RULE_NONE);
    return g;
}

/* The public half as the TSM would hold it: a P-256 key from the 65-byte SEC1 point. */
static EVP_PKEY *pub_from_point(const uint8_t pt[VTSM_GUEST_PUBKEY_SIZE])
{
    OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
    assert_non_null(b);
    assert_int_equal(
        OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0), 1);
    assert_int_equal(
        OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, pt, VTSM_GUEST_PUBKEY_SIZE),
        1);
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(b);
    assert_non_null(params);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *k = NULL;
    assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
    assert_int_equal(EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY, params), 1);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(b);
    return k;
}

/* ECDSA-P256-SHA256 over prefix || body, as the TSM checks it (rule GUEST.1). */
static vtsm_status tsm_verify(EVP_PKEY *pub, const uint8_t *body, size_t len, const uint8_t *sig,
                              size_t sig_len)
{
    const size_t pl = sizeof(VTSM_ABI_GUEST_SIG_PREFIX) - 1;
    uint8_t *m = malloc(pl + len);
    assert_non_null(m);
    memcpy(m, VTSM_ABI_GUEST_SIG_PREFIX, pl);
    memcpy(m + pl, body, len);
    vtsm_status st =
        vtsm_ecdsa_verify(pub, VTSM_ASYM_ECDSA_P256, VTSM_HASH_SHA256, m, pl + len, sig, sig_len);
    free(m);
    return st;
}

/* Keys of a map, in order, joined by ','. */
static void key_list(const cbor_item_t *m, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    assert_true(cbor_isa_map(m));
    for (size_t i = 0; i < cbor_map_size(m); i++) {
        const cbor_item_t *k = cbor_map_handle(m)[i].key;
        assert_true(cbor_isa_string(k));
        o += (size_t)snprintf(out + o, cap - o, "%s%.*s", i ? "," : "", (int)cbor_string_length(k),
                              (const char *)cbor_string_handle(k));
        assert_true(o < cap);
    }
}

/* Split an envelope: its body decoded (strictly, as the TSM would) and its parts. */
static cbor_item_t *open_envelope(const cbor_item_t *env, uint64_t *tvm, const uint8_t **body,
                                  size_t *body_len, const uint8_t **sig, size_t *sig_len)
{
    char keys[128];
    cbor_item_t *b = NULL;
    key_list(env, keys, sizeof(keys));
    assert_string_equal(keys, "tvm,body,sig");
    assert_int_equal(vtsm_abi_get_uint(env, VTSM_ABI_K_TVM, tvm), VTSM_OK);
    assert_int_equal(vtsm_abi_get_bytes(env, VTSM_ABI_K_BODY, body, body_len), VTSM_OK);
    assert_int_equal(vtsm_abi_get_bytes(env, VTSM_ABI_K_SIG, sig, sig_len), VTSM_OK);
    assert_int_equal(*sig_len, VTSM_GUEST_SIG_SIZE);
    assert_int_equal(vtsm_abi_decode(*body, *body_len, &b), VTSM_OK);
    return b;
}

/* ---- failure cases ---- */

static void test_open_refusals(void **state)
{
    struct fx *f = *state;
    struct vtsm_guest *g = (struct vtsm_guest *)1;
    char path[200], pem[8192];
    uint8_t pt[VTSM_GUEST_PUBKEY_SIZE];

    EXPECT(vtsm_guest_open(f->key, 1, &g), VTSM_E_NOT_FOUND, VTSM_RULE_NONE);
    assert_null(g);
    EXPECT(vtsm_guest_open(NULL, 1, &g), VTSM_E_INVAL, VTSM_RULE_NONE);

    /* readable by others: a credential must not be */
    EXPECT(vtsm_guest_keygen(f->key), VTSM_OK, VTSM_RULE_NONE);
    assert_int_equal(chmod(f->key, 0640), 0);
    EXPECT_DETAIL(vtsm_guest_open(f->key, 1, &g), VTSM_E_CONFIG, VTSM_RULE_NONE,
                  "accessible to group or others");
    assert_null(g);
    assert_int_equal(chmod(f->key, 0600), 0);

    /* only the public half */
    EXPECT(vtsm_guest_open(f->key, 1, &g), VTSM_OK, VTSM_RULE_NONE);
    vtsm_guest_pubkey(g, pt);
    vtsm_guest_close(g);
    EVP_PKEY *pub = pub_from_point(pt);
    snprintf(path, sizeof(path), "%s/pub.pem", f->dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(PEM_write_PUBKEY(fp, pub), 1);
    fclose(fp);
    chmod(path, 0600);
    EVP_PKEY_free(pub);
    EXPECT_DETAIL(vtsm_guest_open(path, 1, &g), VTSM_E_CONFIG, VTSM_RULE_NONE, "only a public key");
    assert_null(g);

    /* a P-384 key (the credential is P-256) */
    snprintf(path, sizeof(path), "%s/p384.pem", f->dir);
    copy_file(VTSM_SOURCE_DIR "/pki/p384/leaf.key", path, 0600);
    EXPECT_DETAIL(vtsm_guest_open(path, 1, &g), VTSM_E_CONFIG, VTSM_RULE_NONE, "not a P-256 key");

    /* no key at all; empty */
    snprintf(path, sizeof(path), "%s/junk.pem", f->dir);
    write_file(path, "hello\n", 6, 0600);
    EXPECT_DETAIL(vtsm_guest_open(path, 1, &g), VTSM_E_CONFIG, VTSM_RULE_NONE, "no PEM key");
    write_file(path, "", 0, 0600);
    EXPECT_DETAIL(vtsm_guest_open(path, 1, &g), VTSM_E_CONFIG, VTSM_RULE_NONE, "is empty");

    /* a seq file that is not one decimal number */
    static const char *const bad_seq[] = {
        "", "\n", "12x\n", "-1\n", "1 2\n", "0x10\n", "18446744073709551616\n", "1\n\n"};
    for (size_t i = 0; i < sizeof(bad_seq) / sizeof(bad_seq[0]); i++) {
        write_file(f->seq, bad_seq[i], strlen(bad_seq[i]), 0600);
        EXPECT_DETAIL(vtsm_guest_open(f->key, 1, &g), VTSM_E_CONFIG, VTSM_RULE_NONE, f->seq);
        assert_null(g);
    }
    (void)read_file(f->key, pem, sizeof(pem));
}

static void test_keygen_never_replaces(void **state)
{
    struct fx *f = *state;
    char before[4096], after[4096];

    EXPECT(vtsm_guest_keygen(f->key), VTSM_OK, VTSM_RULE_NONE);
    write_file(f->seq, "41\n", 3, 0600);
    read_file(f->key, before, sizeof(before));
    EXPECT(vtsm_guest_keygen(f->key), VTSM_E_EXISTS, VTSM_RULE_NONE);
    read_file(f->key, after, sizeof(after));
    assert_string_equal(before, after);
    assert_int_equal(seq_on_disk(f), 41);
    EXPECT(vtsm_guest_keygen(NULL), VTSM_E_INVAL, VTSM_RULE_NONE);
    EXPECT(vtsm_guest_keygen("/nonexistent-dir/k.pem"), VTSM_E_IO, VTSM_RULE_NONE);
}

static void test_build_refusals_leave_seq_alone(void **state)
{
    struct fx *f = *state;
    struct vtsm_guest *g = open_new(f, 7), *g0 = NULL;
    cbor_item_t *env = (cbor_item_t *)1;
    char big[VTSM_GUEST_REASON_MAX + 2];
    static const char bad_utf8[] = {'o', 'k', (char)0xc3, '(', 0};

    memset(big, 'r', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    EXPECT_DETAIL(
        vtsm_guest_build_cbor(g, VTSM_ABI_GOP_LIST, "d0", VTSM_GUEST_NO_TDI, NULL, NULL, &env),
        VTSM_E_INVAL, VTSM_RULE_GUEST_4, "LIST takes no dev");
    assert_null(env);
    EXPECT_DETAIL(vtsm_guest_build_cbor(g, VTSM_ABI_GOP_LIST, NULL, 0, NULL, NULL, &env),
                  VTSM_E_INVAL, VTSM_RULE_GUEST_4, "LIST takes no dev");
    EXPECT_DETAIL(vtsm_guest_build_cbor(g, VTSM_ABI_GOP_INFO, NULL, 0, NULL, NULL, &env),
                  VTSM_E_INVAL, VTSM_RULE_GUEST_4, "INFO needs dev");
    EXPECT_DETAIL(
        vtsm_guest_build_cbor(g, VTSM_ABI_GOP_INFO, "d0", VTSM_GUEST_NO_TDI, NULL, NULL, &env),
        VTSM_E_INVAL, VTSM_RULE_GUEST_4, "INFO needs tdi");
    EXPECT_DETAIL(vtsm_guest_build_cbor(g, VTSM_ABI_GOP_INFO, "d0", (int64_t)UINT32_MAX + 1, NULL,
                                        NULL, &env),
                  VTSM_E_INVAL, VTSM_RULE_GUEST_4, "needs tdi");
    EXPECT(vtsm_guest_build_cbor(g, VTSM_ABI_GOP_INFO, "bad name", 0, NULL, NULL, &env),
           VTSM_E_ABI_ARG, VTSM_RULE_ABI_8);
    EXPECT_DETAIL(vtsm_guest_build_cbor(g, VTSM_ABI_GOP_INFO, "d0", 0, NULL, "why", &env),
                  VTSM_E_INVAL, VTSM_RULE_GUEST_4, "only REJECT takes a reason");
    EXPECT_DETAIL(vtsm_guest_build_cbor(g, VTSM_ABI_GOP_ACCEPT, "d0", 0, nonce32, NULL, &env),
                  VTSM_E_INVAL, VTSM_RULE_GUEST_4, "only INFO takes a nonce");
    EXPECT_DETAIL(vtsm_guest_build_cbor(g, VTSM_ABI_GOP_REJECT, "d0", 0, nonce32, "x", &env),
                  VTSM_E_INVAL, VTSM_RULE_GUEST_4, "only INFO takes a nonce");
    EXPECT_DETAIL(vtsm_guest_build_cbor(g, VTSM_ABI_GOP_REJECT, "d0", 0, NULL, big, &env),
                  VTSM_E_INVAL, VTSM_RULE_NONE, "reason longer than");
    EXPECT_DETAIL(vtsm_guest_build_cbor(g, VTSM_ABI_GOP_REJECT, "d0", 0, NULL, bad_utf8, &env),
                  VTSM_E_INVAL, VTSM_RULE_NONE, "ABI decoding rules");
    EXPECT_DETAIL(vtsm_guest_build_cbor(g, 0x49, "d0", 0, NULL, NULL, &env), VTSM_E_INVAL,
                  VTSM_RULE_NONE, "unknown guest operation");
    /* ACCEPT needs an INFO of its TDI on this handle first (what it binds) */
    EXPECT_DETAIL(vtsm_guest_build_cbor(g, VTSM_ABI_GOP_ACCEPT, "d0", 0, NULL, NULL, &env),
                  VTSM_E_STATE, VTSM_RULE_NONE, "send INFO first");
    EXPECT(vtsm_guest_build_cbor(g, VTSM_ABI_GOP_LIST, NULL, VTSM_GUEST_NO_TDI, NULL, NULL, NULL),
           VTSM_E_INVAL, VTSM_RULE_NONE);
    assert_null(env);
    assert_int_equal(vtsm_guest_last_seq(g), 0);
    assert_int_equal(seq_on_disk(f), 0);

    /* a handle without a TVM number gives its key but builds nothing */
    EXPECT(vtsm_guest_open(f->key, 0, &g0), VTSM_OK, VTSM_RULE_NONE);
    EXPECT(vtsm_guest_build_cbor(g0, VTSM_ABI_GOP_LIST, NULL, VTSM_GUEST_NO_TDI, NULL, NULL, &env),
           VTSM_E_STATE, VTSM_RULE_NONE);
    assert_null(env);
    assert_int_equal(seq_on_disk(f), 0);
    vtsm_guest_close(g0);

    /* the last sequence number is never reused, not even by wrapping */
    write_file(f->seq, "18446744073709551615\n", 21, 0600);
    EXPECT(vtsm_guest_build_cbor(g, VTSM_ABI_GOP_LIST, NULL, VTSM_GUEST_NO_TDI, NULL, NULL, &env),
           VTSM_E_LIMIT, VTSM_RULE_GUEST_2);
    assert_null(env);
    assert_int_equal(seq_on_disk(f), UINT64_MAX);
    vtsm_guest_close(g);
}

static void test_signature_fails_after_any_flip(void **state)
{
    struct fx *f = *state;
    struct vtsm_guest *g = open_new(f, 3);
    cbor_item_t *env = NULL, *body = NULL;
    uint8_t pt[VTSM_GUEST_PUBKEY_SIZE], b[512], s[VTSM_GUEST_SIG_SIZE];
    const uint8_t *bp, *sp;
    size_t bl, sl;
    uint64_t tvm;

    EXPECT(vtsm_guest_build_cbor(g, VTSM_ABI_GOP_INFO, "0000:03:00.0", 2, nonce32, NULL, &env),
           VTSM_OK, VTSM_RULE_NONE);
    body = open_envelope(env, &tvm, &bp, &bl, &sp, &sl);
    vtsm_guest_pubkey(g, pt);
    EVP_PKEY *pub = pub_from_point(pt);
    assert_true(bl <= sizeof(b));
    memcpy(b, bp, bl);
    memcpy(s, sp, sl);
    EXPECT(tsm_verify(pub, b, bl, s, sl), VTSM_OK, VTSM_RULE_NONE);
    for (size_t i = 0; i < bl; i++) {
        b[i] ^= 0x01;
        EXPECT(tsm_verify(pub, b, bl, s, sl), VTSM_E_PEER_SIGNATURE, VTSM_RULE_NONE);
        b[i] ^= 0x01;
    }
    for (size_t i = 0; i < sl; i++) {
        s[i] ^= 0x80;
        vtsm_status st = tsm_verify(pub, b, bl, s, sl);
        if (st != VTSM_E_PEER_SIGNATURE)
            fail_msg("signature byte %zu flipped: status %d", i, (int)st);
        s[i] ^= 0x80;
    }
    /* a body one byte shorter or longer, or without the domain prefix, does not verify */
    EXPECT(tsm_verify(pub, b, bl - 1, s, sl), VTSM_E_PEER_SIGNATURE, VTSM_RULE_NONE);
    b[bl] = 0;
    EXPECT(tsm_verify(pub, b, bl + 1, s, sl), VTSM_E_PEER_SIGNATURE, VTSM_RULE_NONE);
    EXPECT(vtsm_ecdsa_verify(pub, VTSM_ASYM_ECDSA_P256, VTSM_HASH_SHA256, b, bl, s, sl),
           VTSM_E_PEER_SIGNATURE, VTSM_RULE_NONE);
    /* another guest's key does not verify it */
    struct fx other = *f;
    snprintf(other.key, sizeof(other.key), "%s/other.pem", f->dir);
    snprintf(other.seq, sizeof(other.seq), "%s.seq", other.key);
    struct vtsm_guest *g2 = open_new(&other, 3);
    uint8_t pt2[VTSM_GUEST_PUBKEY_SIZE];
    vtsm_guest_pubkey(g2, pt2);
    EVP_PKEY *pub2 = pub_from_point(pt2);
    EXPECT(tsm_verify(pub2, b, bl, s, sl), VTSM_E_PEER_SIGNATURE, VTSM_RULE_NONE);
    EVP_PKEY_free(pub2);
    vtsm_guest_close(g2);
    EVP_PKEY_free(pub);
    cbor_decref(&body);
    cbor_decref(&env);
    vtsm_guest_close(g);
}

/* ---- success cases ---- */

static void test_keygen_files_and_public_key(void **state)
{
    struct fx *f = *state;
    struct stat sb;
    char pem[4096];
    uint8_t pt[VTSM_GUEST_PUBKEY_SIZE], id[32], want[32];

    umask(0);
    struct vtsm_guest *g = open_new(f, 0);
    umask(022);
    assert_int_equal(stat(f->key, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(stat(f->seq, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    read_file(f->key, pem, sizeof(pem));
    assert_non_null(strstr(pem, "-----BEGIN PRIVATE KEY-----"));
    read_file(f->seq, pem, sizeof(pem));
    assert_string_equal(pem, "0\n");

    vtsm_guest_pubkey(g, pt);
    assert_int_equal(pt[0], 0x04);
    vtsm_guest_identity(g, id);
    assert_int_equal(vtsm_hash(VTSM_HASH_SHA256, pt, sizeof(pt), want), VTSM_OK);
    assert_memory_equal(id, want, 32);
    assert_int_equal(vtsm_guest_tvm(g), 0);
    assert_int_equal(vtsm_guest_last_seq(g), 0);
    /* the point is a valid P-256 public key */
    EVP_PKEY *pub = pub_from_point(pt);
    assert_int_equal(vtsm_pkey_asym(pub), VTSM_ASYM_ECDSA_P256);
    EVP_PKEY_free(pub);
    vtsm_guest_close(g);
}

static void test_body_keys_per_operation(void **state)
{
    struct fx *f = *state;
    struct vtsm_guest *g = open_new(f, 9);
    uint8_t pt[VTSM_GUEST_PUBKEY_SIZE];
    vtsm_guest_pubkey(g, pt);
    EVP_PKEY *pub = pub_from_point(pt);
    static const struct {
        unsigned gop;
        const char *dev;
        int64_t tdi;
        const uint8_t *nonce;
        const char *reason;
        const char *keys;
    } cases[] = {
        {VTSM_ABI_GOP_LIST, NULL, VTSM_GUEST_NO_TDI, NULL, NULL, "gop,tvm,seq,scope"},
        {VTSM_ABI_GOP_INFO, "d0", 0, NULL, NULL, "gop,tvm,seq,scope,dev,tdi"},
        {VTSM_ABI_GOP_INFO, "d0", 3, nonce32, NULL, "gop,tvm,seq,scope,dev,tdi,nonce"},
        {VTSM_ABI_GOP_ACCEPT, "d0", 1, NULL, NULL,
         "gop,tvm,seq,scope,dev,tdi,report_digest,measurements_digest,lock_nonce_digest"},
        {VTSM_ABI_GOP_REJECT, "d0", 1, NULL, NULL, "gop,tvm,seq,scope,dev,tdi"},
        {VTSM_ABI_GOP_REJECT, "nvme0", 4294967295LL, NULL, "measurement 2 differs",
         "gop,tvm,seq,scope,dev,tdi,reason"},
    };

    /* ACCEPT carries what the last INFO of its TDI reported */
    uint8_t rd[32], md[32], ld[32];
    memset(rd, 0x11, sizeof(rd));
    memset(md, 0x22, sizeof(md));
    memset(ld, 0x33, sizeof(ld));
    cbor_item_t *info = vtsm_abi_map_new();
    assert_int_equal(vtsm_abi_put_tstr(info, VTSM_ABI_K_DEV, "d0"), VTSM_OK);
    assert_int_equal(vtsm_abi_put_uint(info, VTSM_ABI_K_TDI, 1), VTSM_OK);
    assert_int_equal(vtsm_abi_put_bytes(info, VTSM_ABI_K_REPORT_DIGEST, rd, 32), VTSM_OK);
    assert_int_equal(vtsm_abi_put_bytes(info, VTSM_ABI_K_MEASUREMENTS_DIGEST, md, 32), VTSM_OK);
    assert_int_equal(vtsm_abi_put_bytes(info, VTSM_ABI_K_LOCK_NONCE_DIGEST, ld, 32), VTSM_OK);
    EXPECT(vtsm_guest_remember_info_cbor(g, info), VTSM_OK, VTSM_RULE_NONE);
    cbor_decref(&info);

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cbor_item_t *env = NULL, *body;
        const uint8_t *bp, *sp, *np;
        size_t bl, sl, nl;
        uint64_t tvm, v;
        char keys[128], s[64];

        EXPECT(vtsm_guest_build_cbor(g, cases[i].gop, cases[i].dev, cases[i].tdi, cases[i].nonce,
                                     cases[i].reason, &env),
               VTSM_OK, VTSM_RULE_NONE);
        body = open_envelope(env, &tvm, &bp, &bl, &sp, &sl);
        assert_int_equal(tvm, 9);
        key_list(body, keys, sizeof(keys));
        assert_string_equal(keys, cases[i].keys);
        assert_int_equal(vtsm_abi_get_uint(body, VTSM_ABI_K_GOP, &v), VTSM_OK);
        assert_int_equal(v, cases[i].gop);
        assert_int_equal(vtsm_abi_get_uint(body, VTSM_ABI_K_TVM, &v), VTSM_OK);
        assert_int_equal(v, 9);
        assert_int_equal(vtsm_abi_get_uint(body, VTSM_ABI_K_SEQ, &v), VTSM_OK);
        assert_int_equal(v, i + 1);
        if (cases[i].dev) {
            assert_int_equal(vtsm_abi_get_tstr(body, VTSM_ABI_K_DEV, s, sizeof(s)), VTSM_OK);
            assert_string_equal(s, cases[i].dev);
            assert_int_equal(vtsm_abi_get_uint(body, VTSM_ABI_K_TDI, &v), VTSM_OK);
            assert_int_equal(v, (uint64_t)cases[i].tdi);
        }
        if (cases[i].nonce) {
            assert_int_equal(vtsm_abi_get_bytes(body, VTSM_ABI_K_NONCE, &np, &nl), VTSM_OK);
            assert_int_equal(nl, 32);
            assert_memory_equal(np, nonce32, 32);
        }
        if (cases[i].reason) {
            assert_int_equal(vtsm_abi_get_tstr(body, VTSM_ABI_K_REASON, s, sizeof(s)), VTSM_OK);
            assert_string_equal(s, cases[i].reason);
        }
        if (cases[i].gop == VTSM_ABI_GOP_ACCEPT) {
            assert_int_equal(vtsm_abi_get_bytes(body, VTSM_ABI_K_REPORT_DIGEST, &np, &nl), VTSM_OK);
            assert_true(nl == 32 && memcmp(np, rd, 32) == 0);
            assert_int_equal(vtsm_abi_get_bytes(body, VTSM_ABI_K_MEASUREMENTS_DIGEST, &np, &nl),
                             VTSM_OK);
            assert_true(nl == 32 && memcmp(np, md, 32) == 0);
            assert_int_equal(vtsm_abi_get_bytes(body, VTSM_ABI_K_LOCK_NONCE_DIGEST, &np, &nl),
                             VTSM_OK);
            assert_true(nl == 32 && memcmp(np, ld, 32) == 0);
        }
        EXPECT(tsm_verify(pub, bp, bl, sp, sl), VTSM_OK, VTSM_RULE_NONE);
        cbor_decref(&body);
        cbor_decref(&env);
    }
    EVP_PKEY_free(pub);
    vtsm_guest_close(g);
}

static void test_seq_increases_and_persists(void **state)
{
    struct fx *f = *state;
    struct vtsm_guest *a = open_new(f, 2), *b = NULL;
    cbor_item_t *env = NULL;
    uint64_t s;

    for (uint64_t want = 1; want <= 3; want++) {
        EXPECT(
            vtsm_guest_build_cbor(a, VTSM_ABI_GOP_LIST, NULL, VTSM_GUEST_NO_TDI, NULL, NULL, &env),
            VTSM_OK, VTSM_RULE_NONE);
        cbor_decref(&env);
        assert_int_equal(vtsm_guest_last_seq(a), want);
        assert_int_equal(seq_on_disk(f), want);
    }
    vtsm_guest_close(a);

    /* a separate run (reopen) continues */
    EXPECT(vtsm_guest_open(f->key, 2, &a), VTSM_OK, VTSM_RULE_NONE);
    assert_int_equal(vtsm_guest_last_seq(a), 3);
    EXPECT(vtsm_guest_reserve_seq(a, &s), VTSM_OK, VTSM_RULE_NONE);
    assert_int_equal(s, 4);

    /* two handles on one key (two processes) interleave and stay strictly increasing */
    EXPECT(vtsm_guest_open(f->key, 2, &b), VTSM_OK, VTSM_RULE_NONE);
    EXPECT(vtsm_guest_reserve_seq(b, &s), VTSM_OK, VTSM_RULE_NONE);
    assert_int_equal(s, 5);
    EXPECT(vtsm_guest_reserve_seq(a, &s), VTSM_OK, VTSM_RULE_NONE);
    assert_int_equal(s, 6);
    EXPECT(vtsm_guest_reserve_seq(b, &s), VTSM_OK, VTSM_RULE_NONE);
    assert_int_equal(s, 7);
    assert_int_equal(seq_on_disk(f), 7);

    /* a seq file rolled back (restored from a backup) or lost never takes a handle back */
    write_file(f->seq, "2\n", 2, 0600);
    EXPECT(vtsm_guest_reserve_seq(b, &s), VTSM_OK, VTSM_RULE_NONE);
    assert_int_equal(s, 8);
    unlink(f->seq);
    EXPECT(vtsm_guest_reserve_seq(b, &s), VTSM_OK, VTSM_RULE_NONE);
    assert_int_equal(s, 9);
    assert_int_equal(seq_on_disk(f), 9);
    /* no temporary files are left beside the key */
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "test $(ls '%s' | wc -l) -eq 2", f->dir);
    assert_int_equal(system(cmd), 0);
    vtsm_guest_close(a);
    vtsm_guest_close(b);
}

static void test_sign_raw_body(void **state)
{
    struct fx *f = *state;
    struct vtsm_guest *g = open_new(f, 5);
    cbor_item_t *env = NULL, *body = NULL;
    uint8_t pt[VTSM_GUEST_PUBKEY_SIZE];
    const uint8_t *bp, *sp;
    size_t bl, sl;
    uint64_t tvm;
    static const uint8_t raw[] = {0xa1, 0x63, 'g', 'o', 'p', 0x18, 0x41};

    /* for tests of the TSM: any bytes, any envelope tvm, no seq spent */
    EXPECT(vtsm_guest_sign_cbor(g, 77, raw, sizeof(raw), &env), VTSM_OK, VTSM_RULE_NONE);
    body = open_envelope(env, &tvm, &bp, &bl, &sp, &sl);
    assert_int_equal(tvm, 77);
    assert_int_equal(bl, sizeof(raw));
    assert_memory_equal(bp, raw, sizeof(raw));
    vtsm_guest_pubkey(g, pt);
    EVP_PKEY *pub = pub_from_point(pt);
    EXPECT(tsm_verify(pub, bp, bl, sp, sl), VTSM_OK, VTSM_RULE_NONE);
    assert_int_equal(vtsm_guest_last_seq(g), 0);
    EVP_PKEY_free(pub);
    cbor_decref(&body);
    cbor_decref(&env);
    vtsm_guest_close(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keygen_never_replaces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_build_refusals_leave_seq_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signature_fails_after_any_flip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keygen_files_and_public_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_keys_per_operation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seq_increases_and_persists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sign_raw_body, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
