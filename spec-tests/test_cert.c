/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * proto/vtsm_cert: SPDM certificate chains built from and checked against the test PKI in
 * pki/, and trust decisions with OpenSSL. Failure cases first.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "vtsm_cert.h"

#define PKI VTSM_SOURCE_DIR "/pki/"

struct file {
    uint8_t *data;
    size_t len;
};

static struct file slurp(const char *path)
{
    struct file f = {NULL, 0};
    FILE *fp = fopen(path, "rb");
    long n;

    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    n = ftell(fp);
    assert_true(n > 0);
    rewind(fp);
    f.data = malloc((size_t)n);
    assert_non_null(f.data);
    assert_int_equal(fread(f.data, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    f.len = (size_t)n;
    return f;
}

/* SPDM chain root -> inter -> leaf of one pki/ directory. */
struct chain {
    struct file root, inter, leaf;
    struct vtsm_buf buf;
};

static void chain_load(struct chain *c, const char *dir, enum vtsm_hash_alg hash)
{
    char path[512];
    const uint8_t *ders[3];
    size_t lens[3];

    memset(c, 0, sizeof(*c));
    snprintf(path, sizeof(path), PKI "%s/root.der", dir);
    c->root = slurp(path);
    snprintf(path, sizeof(path), PKI "%s/inter.der", dir);
    c->inter = slurp(path);
    snprintf(path, sizeof(path), PKI "%s/leaf.der", dir);
    c->leaf = slurp(path);
    ders[0] = c->root.data;
    ders[1] = c->inter.data;
    ders[2] = c->leaf.data;
    lens[0] = c->root.len;
    lens[1] = c->inter.len;
    lens[2] = c->leaf.len;
    assert_int_equal(vtsm_certchain_build(hash, ders, lens, 3, &c->buf), VTSM_OK);
}

static void chain_free(struct chain *c)
{
    free(c->root.data);
    free(c->inter.data);
    free(c->leaf.data);
    vtsm_buf_free(&c->buf);
}

static struct vtsm_trust *trust_from(const char *path)
{
    struct vtsm_trust *t = NULL;

    assert_int_equal(vtsm_trust_new(&t), VTSM_OK);
    assert_int_equal(vtsm_trust_add_path(t, path), VTSM_OK);
    return t;
}

/* ---- failure cases ---- */

static void test_chain_truncated(void **state)
{
    struct chain c;
    struct vtsm_certchain cc;
    uint8_t *copy;
    size_t full, b1, b2;

    (void)state;
    chain_load(&c, "p384", VTSM_HASH_SHA384);
    full = c.buf.len;
    copy = malloc(full);
    assert_non_null(copy);
    b1 = 4 + 48 + c.root.len;
    b2 = b1 + c.inter.len;
    for (size_t len = 0; len < full; len++) {
        /* A cut at a certificate boundary is a shorter but well-formed chain. */
        if (len == b1 || len == b2)
            continue;
        memcpy(copy, c.buf.data, full);
        if (len >= 2)
            vtsm_put_le16(copy, (uint16_t)len); /* consistent Length, cut content */
        assert_int_equal(vtsm_certchain_parse(copy, len, VTSM_HASH_SHA384, VTSM_ASYM_NONE, &cc),
                         VTSM_E_PEER_CHAIN);
        vtsm_certchain_free(&cc);
    }
    /* Cut after the root: root is then the leaf, a P-384 key, so it parses. */
    memcpy(copy, c.buf.data, full);
    vtsm_put_le16(copy, (uint16_t)b1);
    assert_int_equal(vtsm_certchain_parse(copy, b1, VTSM_HASH_SHA384, VTSM_ASYM_NONE, &cc),
                     VTSM_OK);
    assert_int_equal(sk_X509_num(cc.certs), 1);
    vtsm_certchain_free(&cc);
    free(copy);
    chain_free(&c);
}

static void test_chain_length_mismatch(void **state)
{
    struct chain c;
    struct vtsm_certchain cc;

    (void)state;
    chain_load(&c, "p256", VTSM_HASH_SHA256);
    vtsm_put_le16(c.buf.data, (uint16_t)(c.buf.len + 1));
    assert_int_equal(
        vtsm_certchain_parse(c.buf.data, c.buf.len, VTSM_HASH_SHA256, VTSM_ASYM_NONE, &cc),
        VTSM_E_PEER_CHAIN);
    vtsm_certchain_free(&cc);
    vtsm_put_le16(c.buf.data, (uint16_t)(c.buf.len - 1));
    assert_int_equal(
        vtsm_certchain_parse(c.buf.data, c.buf.len, VTSM_HASH_SHA256, VTSM_ASYM_NONE, &cc),
        VTSM_E_PEER_CHAIN);
    vtsm_certchain_free(&cc);
    /* Length right, buffer handed over one byte short. */
    vtsm_put_le16(c.buf.data, (uint16_t)c.buf.len);
    assert_int_equal(
        vtsm_certchain_parse(c.buf.data, c.buf.len - 1, VTSM_HASH_SHA256, VTSM_ASYM_NONE, &cc),
        VTSM_E_PEER_CHAIN);
    vtsm_certchain_free(&cc);
    chain_free(&c);
}

static void test_chain_trailing_junk(void **state)
{
    static const uint8_t junk[][4] = {
        {0, 0, 0, 0},          /* not a DER SEQUENCE */
        {0x30, 0x02, 0x05, 0}, /* a SEQUENCE, but not a certificate */
        {0x30, 0x80, 0, 0},    /* indefinite length */
        {0x30, 0x84, 0, 0},    /* length of 4 bytes */
    };
    struct chain c;
    struct vtsm_certchain cc;

    (void)state;
    chain_load(&c, "p384", VTSM_HASH_SHA384);
    for (size_t j = 0; j < sizeof(junk) / sizeof(junk[0]); j++) {
        struct vtsm_buf b = {0};

        assert_int_equal(vtsm_buf_set(&b, c.buf.data, c.buf.len), VTSM_OK);
        assert_int_equal(vtsm_buf_append(&b, junk[j], 4), VTSM_OK);
        vtsm_put_le16(b.data, (uint16_t)b.len);
        assert_int_equal(vtsm_certchain_parse(b.data, b.len, VTSM_HASH_SHA384, VTSM_ASYM_NONE, &cc),
                         VTSM_E_PEER_CHAIN);
        vtsm_certchain_free(&cc);
        vtsm_buf_free(&b);
    }
    /* A certificate whose DER header claims one byte more than it holds, then one byte. */
    {
        struct vtsm_buf b = {0};
        uint8_t pad = 0;

        assert_int_equal(vtsm_buf_set(&b, c.buf.data, c.buf.len), VTSM_OK);
        assert_int_equal(vtsm_buf_append(&b, &pad, 1), VTSM_OK);
        /* leaf.der starts with 30 82 hi lo */
        size_t at = c.buf.len - c.leaf.len;
        uint16_t l = (uint16_t)((b.data[at + 2] << 8) | b.data[at + 3]);
        l++;
        b.data[at + 2] = (uint8_t)(l >> 8);
        b.data[at + 3] = (uint8_t)l;
        vtsm_put_le16(b.data, (uint16_t)b.len);
        assert_int_equal(vtsm_certchain_parse(b.data, b.len, VTSM_HASH_SHA384, VTSM_ASYM_NONE, &cc),
                         VTSM_E_PEER_CHAIN);
        vtsm_certchain_free(&cc);
        vtsm_buf_free(&b);
    }
    chain_free(&c);
}

static void test_chain_too_many_certs(void **state)
{
    struct file root = slurp(PKI "p256/root.der");
    const uint8_t *ders[VTSM_CERT_MAX_CERTS + 1];
    size_t lens[VTSM_CERT_MAX_CERTS + 1];
    struct vtsm_buf b = {0};
    struct vtsm_certchain cc;

    (void)state;
    for (int i = 0; i <= VTSM_CERT_MAX_CERTS; i++) {
        ders[i] = root.data;
        lens[i] = root.len;
    }
    assert_int_equal(
        vtsm_certchain_build(VTSM_HASH_SHA256, ders, lens, VTSM_CERT_MAX_CERTS + 1, &b),
        VTSM_E_INVAL);
    assert_int_equal(vtsm_certchain_build(VTSM_HASH_SHA256, ders, lens, VTSM_CERT_MAX_CERTS, &b),
                     VTSM_OK);
    assert_int_equal(
        vtsm_certchain_parse(b.data, b.len, VTSM_HASH_SHA256, VTSM_ASYM_ECDSA_P256, &cc), VTSM_OK);
    vtsm_certchain_free(&cc);
    assert_int_equal(vtsm_buf_append(&b, root.data, root.len), VTSM_OK);
    vtsm_put_le16(b.data, (uint16_t)b.len);
    assert_int_equal(
        vtsm_certchain_parse(b.data, b.len, VTSM_HASH_SHA256, VTSM_ASYM_ECDSA_P256, &cc),
        VTSM_E_PEER_CHAIN);
    vtsm_certchain_free(&cc);
    vtsm_buf_free(&b);
    free(root.data);
}

static void test_chain_bad_root_hash(void **state)
{
    struct chain c;
    struct vtsm_certchain cc;

    (void)state;
    chain_load(&c, "p384", VTSM_HASH_SHA384);
    c.buf.data[4 + 47] ^= 0x01;
    assert_int_equal(
        vtsm_certchain_parse(c.buf.data, c.buf.len, VTSM_HASH_SHA384, VTSM_ASYM_NONE, &cc),
        VTSM_E_PEER_DIGEST);
    vtsm_certchain_free(&cc);
    chain_free(&c);
}

/* Find the leaf's uncompressed public point (BIT STRING 03 len 00 04) and return X's offset. */
static size_t leaf_point(const struct file *leaf, size_t coord)
{
    const uint8_t pat[4] = {0x03, (uint8_t)(2 + 2 * coord), 0x00, 0x04};
    for (size_t i = 0; i + sizeof(pat) + 2 * coord <= leaf->len; i++)
        if (memcmp(leaf->data + i, pat, sizeof(pat)) == 0)
            return i + sizeof(pat);
    fail_msg("no public point in the leaf certificate");
    return 0;
}

/* A leaf signing key that is not a valid point (off the curve, (0, 0) standing for
 * infinity, coordinates beyond the field prime) is refused when the chain is imported. */
static void test_chain_leaf_bad_point(void **state)
{
    static const struct {
        const char *dir;
        enum vtsm_hash_alg hash;
        size_t coord;
    } curves[] = {{"p384", VTSM_HASH_SHA384, 48}, {"p256", VTSM_HASH_SHA256, 32}};

    (void)state;
    for (size_t i = 0; i < 2; i++) {
        for (int how = 0; how < 3; how++) {
            struct chain c;
            struct vtsm_certchain cc;
            size_t x, off;

            chain_load(&c, curves[i].dir, curves[i].hash);
            x = leaf_point(&c.leaf, curves[i].coord);
            /* the leaf is the chain's last certificate */
            off = c.buf.len - c.leaf.len + x;
            if (how == 0)
                c.buf.data[off + 2 * curves[i].coord - 1] ^= 0x01; /* Y off by one */
            else
                memset(c.buf.data + off, how == 1 ? 0x00 : 0xFF, 2 * curves[i].coord);
            assert_int_equal(
                vtsm_certchain_parse(c.buf.data, c.buf.len, curves[i].hash, VTSM_ASYM_NONE, &cc),
                VTSM_E_PEER_CHAIN);
            assert_null(cc.leaf_key);
            vtsm_certchain_free(&cc);
            chain_free(&c);
        }
    }
}

static void test_chain_leaf_wrong_curve(void **state)
{
    struct chain c;
    struct vtsm_certchain cc;

    (void)state;
    chain_load(&c, "p256", VTSM_HASH_SHA384);
    assert_int_equal(
        vtsm_certchain_parse(c.buf.data, c.buf.len, VTSM_HASH_SHA384, VTSM_ASYM_ECDSA_P384, &cc),
        VTSM_E_PEER_ALGO);
    vtsm_certchain_free(&cc);
    chain_free(&c);
    chain_load(&c, "p384", VTSM_HASH_SHA256);
    assert_int_equal(
        vtsm_certchain_parse(c.buf.data, c.buf.len, VTSM_HASH_SHA256, VTSM_ASYM_ECDSA_P256, &cc),
        VTSM_E_PEER_ALGO);
    vtsm_certchain_free(&cc);
    chain_free(&c);
}

static void test_build_refusals(void **state)
{
    const uint8_t junk[] = {0x30, 0x03, 0x02, 0x01, 0x00};
    const uint8_t *ders[1] = {junk};
    size_t lens[1] = {sizeof(junk)};
    struct vtsm_buf b = {0};

    (void)state;
    assert_int_equal(vtsm_certchain_build(VTSM_HASH_SHA256, ders, lens, 1, &b), VTSM_E_INVAL);
    assert_int_equal(vtsm_certchain_build(VTSM_HASH_SHA256, ders, lens, 0, &b), VTSM_E_INVAL);
    assert_int_equal(vtsm_certchain_build(VTSM_HASH_NONE, ders, lens, 1, &b), VTSM_E_UNSUPPORTED);
    vtsm_buf_free(&b);
}

static void test_trust_rogue_chain(void **state)
{
    const char *dirs[] = {"rogue-p384", "rogue-p256"};
    struct vtsm_trust *t = trust_from(PKI "roots.pem");

    (void)state;
    for (int i = 0; i < 2; i++) {
        struct chain c;
        struct vtsm_certchain cc;
        char reason[256];

        chain_load(&c, dirs[i], VTSM_HASH_SHA384);
        assert_int_equal(
            vtsm_certchain_parse(c.buf.data, c.buf.len, VTSM_HASH_SHA384, VTSM_ASYM_NONE, &cc),
            VTSM_OK); /* well-formed: trust is a separate question */
        memset(reason, 0, sizeof(reason));
        assert_int_equal(vtsm_trust_verify(t, &cc, reason, sizeof(reason)), VTSM_E_PEER_UNTRUSTED);
        assert_true(strlen(reason) > 0);
        vtsm_certchain_free(&cc);
        chain_free(&c);
    }
    vtsm_trust_free(t);
}

static void test_trust_other_root_only(void **state)
{
    struct vtsm_trust *t = trust_from(PKI "trust/p384-root.pem");
    struct chain c;
    struct vtsm_certchain cc;
    char reason[256] = "";

    (void)state;
    chain_load(&c, "p256", VTSM_HASH_SHA256);
    assert_int_equal(
        vtsm_certchain_parse(c.buf.data, c.buf.len, VTSM_HASH_SHA256, VTSM_ASYM_NONE, &cc),
        VTSM_OK);
    assert_int_equal(vtsm_trust_verify(t, &cc, reason, sizeof(reason)), VTSM_E_PEER_UNTRUSTED);
    assert_true(strlen(reason) > 0);
    /* An empty store trusts nothing. */
    vtsm_trust_free(t);
    assert_int_equal(vtsm_trust_new(&t), VTSM_OK);
    assert_int_equal(vtsm_trust_count(t), 0);
    assert_int_equal(vtsm_trust_verify(t, &cc, NULL, 0), VTSM_E_PEER_UNTRUSTED);
    vtsm_certchain_free(&cc);
    chain_free(&c);
    vtsm_trust_free(t);
}

static void test_trust_store_failures(void **state)
{
    struct vtsm_trust *t = NULL;
    char tmpl[] = "/tmp/vtsm-test-cert-XXXXXX";
    char *dir;
    char path[600];
    FILE *f;

    (void)state;
    assert_int_equal(vtsm_trust_new(&t), VTSM_OK);
    assert_int_equal(vtsm_trust_add_path(t, "/nonexistent/vtsm/roots.pem"), VTSM_E_NOT_FOUND);
    assert_int_equal(vtsm_trust_add_pem(t, "garbage", 7), VTSM_E_CONFIG);
    /* A key is not a certificate. */
    assert_int_equal(vtsm_trust_add_path(t, PKI "p384/leaf.key"), VTSM_E_CONFIG);
    dir = mkdtemp(tmpl);
    assert_non_null(dir);
    assert_int_equal(vtsm_trust_add_path(t, dir), VTSM_E_CONFIG); /* empty directory */
    snprintf(path, sizeof(path), "%s/notes.txt", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("not a certificate\n", f);
    fclose(f);
    assert_int_equal(vtsm_trust_add_path(t, dir), VTSM_E_CONFIG); /* no *.pem / *.crt */
    unlink(path);
    rmdir(dir);
    assert_int_equal(vtsm_trust_count(t), 0);
    vtsm_trust_free(t);
}

static void test_chain_without_root(void **state)
{
    struct chain c;
    struct vtsm_buf b = {0};
    struct vtsm_certchain cc;
    const uint8_t *ders[2];
    size_t lens[2];
    struct vtsm_trust *t = trust_from(PKI "trust");
    char reason[256];

    (void)state;
    chain_load(&c, "p384", VTSM_HASH_SHA384);
    ders[0] = c.inter.data;
    ders[1] = c.leaf.data;
    lens[0] = c.inter.len;
    lens[1] = c.leaf.len;
    assert_int_equal(vtsm_certchain_build(VTSM_HASH_SHA384, ders, lens, 2, &b), VTSM_OK);
    /* RootHash must be the hash of the root even though the root is not carried. */
    assert_int_equal(vtsm_hash(VTSM_HASH_SHA384, c.root.data, c.root.len, b.data + 4), VTSM_OK);
    assert_int_equal(vtsm_certchain_parse(b.data, b.len, VTSM_HASH_SHA384, VTSM_ASYM_NONE, &cc),
                     VTSM_OK);
    assert_false(cc.root_in_chain);
    assert_int_equal(vtsm_trust_verify(t, &cc, reason, sizeof(reason)), VTSM_OK);
    assert_string_equal(reason, "");
    vtsm_certchain_free(&cc);
    /* The wrong RootHash is caught once the anchor is known. */
    b.data[4] ^= 0xFF;
    assert_int_equal(vtsm_certchain_parse(b.data, b.len, VTSM_HASH_SHA384, VTSM_ASYM_NONE, &cc),
                     VTSM_OK);
    assert_int_equal(vtsm_trust_verify(t, &cc, reason, sizeof(reason)), VTSM_E_PEER_DIGEST);
    vtsm_certchain_free(&cc);
    vtsm_buf_free(&b);
    vtsm_trust_free(t);
    chain_free(&c);
}

/* The DER encoding of a parsed certificate equals want. */
static void assert_der(X509 *x, const uint8_t *want, size_t want_len)
{
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);

    assert_int_equal(n, (int)want_len);
    assert_memory_equal(der, want, want_len);
    OPENSSL_free(der);
}

/* Certificates seen before are shared between chains, never confused: a leaf differing in
 * one signature byte is a certificate of its own, and the chain carrying it fails. */
static void test_chain_cache_exact_bytes(void **state)
{
    struct chain c;
    struct vtsm_certchain a, b, bad;
    struct vtsm_trust *t = trust_from(PKI "trust/p384-root.pem");
    char reason[256];

    (void)state;
    chain_load(&c, "p384", VTSM_HASH_SHA384);
    assert_int_equal(
        vtsm_certchain_parse(c.buf.data, c.buf.len, VTSM_HASH_SHA384, VTSM_ASYM_ECDSA_P384, &a),
        VTSM_OK);
    assert_int_equal(
        vtsm_certchain_parse(c.buf.data, c.buf.len, VTSM_HASH_SHA384, VTSM_ASYM_ECDSA_P384, &b),
        VTSM_OK);
    for (int i = 0; i < 3; i++)
        assert_ptr_equal(sk_X509_value(a.certs, i), sk_X509_value(b.certs, i));
    vtsm_certchain_free(&a); /* b keeps its references */
    assert_int_equal(vtsm_trust_verify(t, &b, reason, sizeof(reason)), VTSM_OK);

    c.buf.data[c.buf.len - 1] ^= 0x01; /* last byte of the leaf's signature */
    assert_int_equal(
        vtsm_certchain_parse(c.buf.data, c.buf.len, VTSM_HASH_SHA384, VTSM_ASYM_ECDSA_P384, &bad),
        VTSM_OK);
    assert_ptr_equal(sk_X509_value(bad.certs, 0), sk_X509_value(b.certs, 0));
    assert_ptr_equal(sk_X509_value(bad.certs, 1), sk_X509_value(b.certs, 1));
    assert_ptr_not_equal(sk_X509_value(bad.certs, 2), sk_X509_value(b.certs, 2));
    assert_der(sk_X509_value(bad.certs, 2), c.buf.data + c.buf.len - c.leaf.len, c.leaf.len);
    assert_int_equal(vtsm_trust_verify(t, &bad, reason, sizeof(reason)), VTSM_E_PEER_UNTRUSTED);
    /* the good chain is unaffected */
    assert_int_equal(vtsm_trust_verify(t, &b, reason, sizeof(reason)), VTSM_OK);
    vtsm_certchain_free(&bad);
    vtsm_certchain_free(&b);
    vtsm_trust_free(t);
    chain_free(&c);
}

/* More distinct leaves than the cache keeps, twice over in both orders: every parse gives
 * the certificate of exactly the bytes it was given. */
static void test_chain_cache_many(void **state)
{
    enum { VARIANTS = 80 };
    struct chain c;
    struct vtsm_certchain cc;
    uint8_t *last;

    (void)state;
    chain_load(&c, "p256", VTSM_HASH_SHA256);
    last = c.buf.data + c.buf.len - 1;
    for (int round = 0; round < 2; round++) {
        for (int v = 0; v < VARIANTS; v++) {
            *last = (uint8_t)(round == 0 ? v : VARIANTS - 1 - v);
            assert_int_equal(vtsm_certchain_parse(c.buf.data, c.buf.len, VTSM_HASH_SHA256,
                                                  VTSM_ASYM_ECDSA_P256, &cc),
                             VTSM_OK);
            assert_der(sk_X509_value(cc.certs, 2), c.buf.data + c.buf.len - c.leaf.len, c.leaf.len);
            vtsm_certchain_free(&cc);
        }
    }
    chain_free(&c);
}

/* ---- round trips ---- */

static void test_chain_round_trip(void **state)
{
    const char *dirs[] = {"p384", "p256"};
    const enum vtsm_asym_alg algs[] = {VTSM_ASYM_ECDSA_P384, VTSM_ASYM_ECDSA_P256};
    const enum vtsm_hash_alg hashes[] = {VTSM_HASH_SHA384, VTSM_HASH_SHA256};

    (void)state;
    for (int d = 0; d < 2; d++) {
        for (int h = 0; h < 2; h++) {
            struct chain c;
            struct vtsm_certchain cc;
            size_t hl = vtsm_hash_size(hashes[h]);
            uint8_t root_hash[48];
            EVP_PKEY *key = NULL;
            char path[512];
            uint8_t sig[96];

            chain_load(&c, dirs[d], hashes[h]);
            /* Layout: Length | Reserved | RootHash | root | inter | leaf. */
            assert_int_equal(c.buf.len, 4 + hl + c.root.len + c.inter.len + c.leaf.len);
            assert_int_equal(vtsm_get_le16(c.buf.data), c.buf.len);
            assert_int_equal(vtsm_get_le16(c.buf.data + 2), 0);
            assert_int_equal(vtsm_hash(hashes[h], c.root.data, c.root.len, root_hash), VTSM_OK);
            assert_memory_equal(c.buf.data + 4, root_hash, hl);
            assert_memory_equal(c.buf.data + 4 + hl, c.root.data, c.root.len);
            assert_memory_equal(c.buf.data + c.buf.len - c.leaf.len, c.leaf.data, c.leaf.len);

            assert_int_equal(vtsm_certchain_parse(c.buf.data, c.buf.len, hashes[h], algs[d], &cc),
                             VTSM_OK);
            assert_int_equal(sk_X509_num(cc.certs), 3);
            assert_true(cc.root_in_chain);
            assert_int_equal(cc.root_hash_len, hl);
            assert_memory_equal(cc.root_hash, root_hash, hl);
            assert_int_equal(vtsm_pkey_asym(cc.leaf_key), algs[d]);
            /* leaf_key is the public half of the device's leaf.key. */
            snprintf(path, sizeof(path), PKI "%s/leaf.key", dirs[d]);
            assert_int_equal(vtsm_pkey_load_pem(path, &key), VTSM_OK);
            assert_int_equal(vtsm_ecdsa_sign(key, algs[d], hashes[h], "m", 1, sig), VTSM_OK);
            assert_int_equal(vtsm_ecdsa_verify(cc.leaf_key, algs[d], hashes[h], "m", 1, sig,
                                               vtsm_sig_size(algs[d])),
                             VTSM_OK);
            EVP_PKEY_free(key);
            vtsm_certchain_free(&cc);
            chain_free(&c);
        }
    }
}

static void verify_trusted(struct vtsm_trust *t)
{
    const char *dirs[] = {"p384", "p256"};

    for (int d = 0; d < 2; d++) {
        struct chain c;
        struct vtsm_certchain cc;
        char reason[256] = "x";

        chain_load(&c, dirs[d], VTSM_HASH_SHA384);
        assert_int_equal(
            vtsm_certchain_parse(c.buf.data, c.buf.len, VTSM_HASH_SHA384, VTSM_ASYM_NONE, &cc),
            VTSM_OK);
        assert_int_equal(vtsm_trust_verify(t, &cc, reason, sizeof(reason)), VTSM_OK);
        assert_string_equal(reason, "");
        vtsm_certchain_free(&cc);
        chain_free(&c);
    }
}

static void test_trust_from_dir_bundle_memory(void **state)
{
    struct vtsm_trust *t;
    struct file a, b;

    (void)state;
    t = trust_from(PKI "trust");
    assert_int_equal(vtsm_trust_count(t), 2);
    verify_trusted(t);
    vtsm_trust_free(t);

    t = trust_from(PKI "roots.pem");
    assert_int_equal(vtsm_trust_count(t), 2);
    verify_trusted(t);
    vtsm_trust_free(t);

    a = slurp(PKI "p384/root.pem");
    b = slurp(PKI "p256/root.pem");
    assert_int_equal(vtsm_trust_new(&t), VTSM_OK);
    assert_int_equal(vtsm_trust_add_pem(t, a.data, a.len), VTSM_OK);
    assert_int_equal(vtsm_trust_count(t), 1);
    assert_int_equal(vtsm_trust_add_pem(t, b.data, b.len), VTSM_OK);
    assert_int_equal(vtsm_trust_add_pem(t, b.data, b.len), VTSM_OK); /* duplicate: no-op */
    assert_int_equal(vtsm_trust_count(t), 2);
    verify_trusted(t);
    vtsm_trust_free(t);
    free(a.data);
    free(b.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain_truncated),
        cmocka_unit_test(test_chain_length_mismatch),
        cmocka_unit_test(test_chain_trailing_junk),
        cmocka_unit_test(test_chain_too_many_certs),
        cmocka_unit_test(test_chain_bad_root_hash),
        cmocka_unit_test(test_chain_leaf_bad_point),
        cmocka_unit_test(test_chain_leaf_wrong_curve),
        cmocka_unit_test(test_build_refusals),
        cmocka_unit_test(test_trust_rogue_chain),
        cmocka_unit_test(test_trust_other_root_only),
        cmocka_unit_test(test_trust_store_failures),
        cmocka_unit_test(test_chain_without_root),
        cmocka_unit_test(test_chain_cache_exact_bytes),
        cmocka_unit_test(test_chain_cache_many),
        cmocka_unit_test(test_chain_round_trip),
        cmocka_unit_test(test_trust_from_dir_bundle_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
