/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * proto/vtsm_crypto: primitives against published vectors (RFC 5869 HKDF, RFC 4231 HMAC,
 * McGrew-Viega GCM test cases 14 and 16), ECDSA raw-signature round trips, ECDHE, and the
 * failures a peer can provoke. Failure cases first.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <pthread.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "vtsm_buf.h"
#include "vtsm_crypto.h"

/* Decode hex into a fixed buffer, failing the test on a bad vector. */
static size_t unhex(uint8_t *out, size_t cap, const char *hex)
{
    long n = vtsm_unhex(out, cap, hex);

    assert_true(n >= 0);
    return (size_t)n;
}

static EVP_PKEY *ec_key(const char *group)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", group);

    assert_non_null(k);
    return k;
}

/* ---- failure cases ---- */

static void test_unsupported_algorithms(void **state)
{
    uint8_t out[VTSM_HASH_MAX];
    struct vtsm_hash_ctx *c = NULL;
    struct vtsm_dhe *d = NULL;
    uint8_t pub[VTSM_DHE_PUB_MAX];

    (void)state;
    assert_int_equal(vtsm_hash(VTSM_HASH_NONE, "x", 1, out), VTSM_E_UNSUPPORTED);
    assert_int_equal(vtsm_hash_ctx_new((enum vtsm_hash_alg)7, &c), VTSM_E_UNSUPPORTED);
    assert_null(c);
    assert_int_equal(vtsm_hmac(VTSM_HASH_NONE, (const uint8_t *)"k", 1, "x", 1, out),
                     VTSM_E_UNSUPPORTED);
    assert_int_equal(vtsm_dhe_generate(VTSM_DHE_NONE, &d, pub), VTSM_E_UNSUPPORTED);
    assert_null(d);
    assert_int_equal(vtsm_hash_size(VTSM_HASH_NONE), 0);
    assert_int_equal(vtsm_sig_size(VTSM_ASYM_NONE), 0);
}

static void test_hkdf_bounds(void **state)
{
    uint8_t prk[32] = {0}, out[32];
    static uint8_t big[255 * 32 + 1];

    (void)state;
    /* RFC 5869 2.3: L <= 255 * HashLen; PRK at least HashLen. */
    assert_int_equal(vtsm_hkdf_expand(VTSM_HASH_SHA256, prk, 32, NULL, 0, big, sizeof(big)),
                     VTSM_E_INVAL);
    assert_int_equal(vtsm_hkdf_expand(VTSM_HASH_SHA256, prk, 31, NULL, 0, out, 32), VTSM_E_INVAL);
    assert_int_equal(vtsm_hkdf_expand(VTSM_HASH_SHA256, prk, 32, NULL, 0, out, 0), VTSM_E_INVAL);
    assert_int_equal(vtsm_hkdf_expand(VTSM_HASH_SHA256, prk, 32, NULL, 0, big, 255 * 32), VTSM_OK);
}

static void test_ecdsa_wrong_length_refused(void **state)
{
    EVP_PKEY *k = ec_key("P-256");
    uint8_t sig[VTSM_SIG_MAX];

    (void)state;
    assert_int_equal(vtsm_ecdsa_sign(k, VTSM_ASYM_ECDSA_P256, VTSM_HASH_SHA256, "m", 1, sig),
                     VTSM_OK);
    assert_int_equal(vtsm_ecdsa_verify(k, VTSM_ASYM_ECDSA_P256, VTSM_HASH_SHA256, "m", 1, sig, 63),
                     VTSM_E_PEER_MALFORMED);
    assert_int_equal(vtsm_ecdsa_verify(k, VTSM_ASYM_ECDSA_P256, VTSM_HASH_SHA256, "m", 1, sig, 65),
                     VTSM_E_PEER_MALFORMED);
    assert_int_equal(vtsm_ecdsa_verify(k, VTSM_ASYM_ECDSA_P256, VTSM_HASH_SHA256, "m", 1, sig, 0),
                     VTSM_E_PEER_MALFORMED);
    EVP_PKEY_free(k);
}

static void test_ecdsa_flipped_bit(void **state)
{
    const char *groups[] = {"P-256", "P-384"};
    const enum vtsm_asym_alg algs[] = {VTSM_ASYM_ECDSA_P256, VTSM_ASYM_ECDSA_P384};
    const char msg[] = "KEY_EXCHANGE_RSP transcript";

    (void)state;
    for (int g = 0; g < 2; g++) {
        EVP_PKEY *k = ec_key(groups[g]);
        size_t n = vtsm_sig_size(algs[g]);
        uint8_t sig[VTSM_SIG_MAX], bad[VTSM_SIG_MAX];

        assert_int_equal(vtsm_ecdsa_sign(k, algs[g], VTSM_HASH_SHA384, msg, sizeof(msg), sig),
                         VTSM_OK);
        /* One flipped bit in r, in s, or in the message must each fail. */
        memcpy(bad, sig, n);
        bad[3] ^= 0x10;
        assert_int_equal(vtsm_ecdsa_verify(k, algs[g], VTSM_HASH_SHA384, msg, sizeof(msg), bad, n),
                         VTSM_E_PEER_SIGNATURE);
        memcpy(bad, sig, n);
        bad[n - 1] ^= 0x01;
        assert_int_equal(vtsm_ecdsa_verify(k, algs[g], VTSM_HASH_SHA384, msg, sizeof(msg), bad, n),
                         VTSM_E_PEER_SIGNATURE);
        assert_int_equal(vtsm_ecdsa_verify(k, algs[g], VTSM_HASH_SHA384,
                                           "KEY_EXCHANGE_RSP transcripu", sizeof(msg), sig, n),
                         VTSM_E_PEER_SIGNATURE);
        /* The same signature under the other hash does not verify either. */
        assert_int_equal(vtsm_ecdsa_verify(k, algs[g], VTSM_HASH_SHA256, msg, sizeof(msg), sig, n),
                         VTSM_E_PEER_SIGNATURE);
        /* r = s = 0 is out of range: a peer fault, not a local one. */
        memset(bad, 0, n);
        assert_int_equal(vtsm_ecdsa_verify(k, algs[g], VTSM_HASH_SHA384, msg, sizeof(msg), bad, n),
                         VTSM_E_PEER_SIGNATURE);
        EVP_PKEY_free(k);
    }
}

static void test_ecdsa_key_of_other_curve(void **state)
{
    EVP_PKEY *k256 = ec_key("P-256");
    uint8_t sig[VTSM_SIG_MAX] = {1};

    (void)state;
    assert_int_equal(
        vtsm_ecdsa_verify(k256, VTSM_ASYM_ECDSA_P384, VTSM_HASH_SHA384, "m", 1, sig, 96),
        VTSM_E_PEER_ALGO);
    assert_int_equal(vtsm_ecdsa_sign(k256, VTSM_ASYM_ECDSA_P384, VTSM_HASH_SHA384, "m", 1, sig),
                     VTSM_E_INVAL);
    EVP_PKEY_free(k256);
}

static void test_dhe_off_curve(void **state)
{
    const enum vtsm_dhe_group groups[] = {VTSM_DHE_SECP256R1, VTSM_DHE_SECP384R1};

    (void)state;
    for (int g = 0; g < 2; g++) {
        struct vtsm_dhe *a = NULL, *b = NULL;
        uint8_t pa[VTSM_DHE_PUB_MAX], pb[VTSM_DHE_PUB_MAX], bad[VTSM_DHE_PUB_MAX];
        uint8_t secret[VTSM_DHE_SECRET_MAX];
        size_t n = vtsm_dhe_pub_size(groups[g]);

        assert_int_equal(vtsm_dhe_generate(groups[g], &a, pa), VTSM_OK);
        assert_int_equal(vtsm_dhe_generate(groups[g], &b, pb), VTSM_OK);
        /* Y changed by one: the point is no longer on the curve. */
        memcpy(bad, pb, n);
        bad[n - 1] ^= 0x01;
        assert_int_equal(vtsm_dhe_derive(a, bad, n, secret), VTSM_E_PEER_MALFORMED);
        /* (0, 0) is not on either curve. */
        memset(bad, 0, n);
        assert_int_equal(vtsm_dhe_derive(a, bad, n, secret), VTSM_E_PEER_MALFORMED);
        /* Coordinates of 0xFF.. exceed the field. */
        memset(bad, 0xFF, n);
        assert_int_equal(vtsm_dhe_derive(a, bad, n, secret), VTSM_E_PEER_MALFORMED);
        /* Wrong length for the group. */
        assert_int_equal(vtsm_dhe_derive(a, pb, n - 1, secret), VTSM_E_PEER_MALFORMED);
        /* The object is still usable after a refused peer value. */
        assert_int_equal(vtsm_dhe_derive(a, pb, n, secret), VTSM_OK);
        vtsm_dhe_free(a);
        vtsm_dhe_free(b);
    }
}

static void test_aead_tampered(void **state)
{
    uint8_t key[32], iv[12], tag[16], badtag[16];
    uint8_t pt[40], ct[40], out[40], zero[40] = {0};
    const uint8_t aad[6] = {1, 2, 3, 4, 5, 6};
    uint8_t badaad[6];

    (void)state;
    memset(key, 0x42, sizeof(key));
    memset(iv, 0x24, sizeof(iv));
    memset(pt, 0x5a, sizeof(pt));
    assert_int_equal(vtsm_aead_seal(key, iv, aad, sizeof(aad), pt, sizeof(pt), ct, tag), VTSM_OK);

    ct[7] ^= 0x80;
    memset(out, 0xEE, sizeof(out));
    assert_int_equal(vtsm_aead_open(key, iv, aad, sizeof(aad), ct, sizeof(ct), tag, out),
                     VTSM_E_PEER_DECRYPT);
    assert_memory_equal(out, zero, sizeof(out)); /* wiped */
    ct[7] ^= 0x80;

    memcpy(badtag, tag, 16);
    badtag[15] ^= 1;
    assert_int_equal(vtsm_aead_open(key, iv, aad, sizeof(aad), ct, sizeof(ct), badtag, out),
                     VTSM_E_PEER_DECRYPT);
    memcpy(badaad, aad, sizeof(aad));
    badaad[0] ^= 1;
    assert_int_equal(vtsm_aead_open(key, iv, badaad, sizeof(aad), ct, sizeof(ct), tag, out),
                     VTSM_E_PEER_DECRYPT);
    iv[0] ^= 1;
    assert_int_equal(vtsm_aead_open(key, iv, aad, sizeof(aad), ct, sizeof(ct), tag, out),
                     VTSM_E_PEER_DECRYPT);
    iv[0] ^= 1;
    assert_int_equal(vtsm_aead_open(key, iv, aad, sizeof(aad), ct, sizeof(ct), tag, out), VTSM_OK);
    assert_memory_equal(out, pt, sizeof(pt));
}

static void test_pem_failures(void **state)
{
    EVP_PKEY *k = (EVP_PKEY *)1;

    (void)state;
    assert_int_equal(vtsm_pkey_load_pem("/nonexistent/vtsm.key", &k), VTSM_E_NOT_FOUND);
    assert_null(k);
    assert_int_equal(vtsm_pkey_from_pem("not a pem", 9, &k), VTSM_E_CONFIG);
    assert_null(k);
}

/* ---- vectors and round trips ---- */

static void test_hkdf_rfc5869(void **state)
{
    static const struct {
        const char *ikm, *salt, *info, *prk, *okm;
    } tc[] = {
        /* RFC 5869 A.1 */
        {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "000102030405060708090a0b0c",
         "f0f1f2f3f4f5f6f7f8f9", "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
         "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"},
        /* RFC 5869 A.2 */
        {"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
         "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
         "404142434445464748494a4b4c4d4e4f",
         "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
         "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
         "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
         "b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecf"
         "d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeef"
         "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
         "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
         "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
         "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
         "cc30c58179ec3e87c14c01d5c1f3434f1d87"},
        /* RFC 5869 A.3: empty salt and info */
        {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "", "",
         "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
         "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(tc) / sizeof(tc[0]); i++) {
        uint8_t ikm[128], salt[128], info[128], prk_want[32], okm_want[128];
        uint8_t prk[VTSM_HASH_MAX], okm[128];
        size_t ikm_len = unhex(ikm, sizeof(ikm), tc[i].ikm);
        size_t salt_len = unhex(salt, sizeof(salt), tc[i].salt);
        size_t info_len = unhex(info, sizeof(info), tc[i].info);
        size_t okm_len = unhex(okm_want, sizeof(okm_want), tc[i].okm);

        unhex(prk_want, sizeof(prk_want), tc[i].prk);
        assert_int_equal(vtsm_hkdf_extract(VTSM_HASH_SHA256, salt, salt_len, ikm, ikm_len, prk),
                         VTSM_OK);
        assert_memory_equal(prk, prk_want, 32);
        assert_int_equal(vtsm_hkdf_expand(VTSM_HASH_SHA256, prk, 32, info, info_len, okm, okm_len),
                         VTSM_OK);
        assert_memory_equal(okm, okm_want, okm_len);
    }
    /* An empty IKM is legal (RFC 5869): PRK = HMAC(salt, ""). */
    {
        uint8_t salt[4] = {1, 2, 3, 4}, prk[32], want[32];

        assert_int_equal(vtsm_hkdf_extract(VTSM_HASH_SHA256, salt, 4, NULL, 0, prk), VTSM_OK);
        assert_int_equal(vtsm_hmac(VTSM_HASH_SHA256, salt, 4, NULL, 0, want), VTSM_OK);
        assert_memory_equal(prk, want, 32);
    }
}

static void test_hmac_rfc4231(void **state)
{
    static uint8_t key6[131];
    static const struct {
        int keyid;
        const char *data, *sha256, *sha384;
    } tc[] = {
        /* RFC 4231 4.2, 4.3, 4.7 */
        {1, "Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
         "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c"
         "faea9ea9076ede7f4af152e8b2fa9cb6"},
        {2, "what do ya want for nothing?",
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
         "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e"
         "8e2240ca5e69e2c78b3239ecfab21649"},
        {6, "Test Using Larger Than Block-Size Key - Hash Key First",
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
         "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c6"
         "0c2ef6ab4030fe8296248df163f44952"},
    };
    uint8_t key1[20];

    (void)state;
    memset(key1, 0x0b, sizeof(key1));
    memset(key6, 0xaa, sizeof(key6));
    for (size_t i = 0; i < sizeof(tc) / sizeof(tc[0]); i++) {
        const uint8_t *key = tc[i].keyid == 1   ? key1
                             : tc[i].keyid == 2 ? (const uint8_t *)"Jefe"
                                                : key6;
        size_t key_len = tc[i].keyid == 1 ? 20 : tc[i].keyid == 2 ? 4 : 131;
        uint8_t want[48], mac[48];

        unhex(want, sizeof(want), tc[i].sha256);
        assert_int_equal(
            vtsm_hmac(VTSM_HASH_SHA256, key, key_len, tc[i].data, strlen(tc[i].data), mac),
            VTSM_OK);
        assert_memory_equal(mac, want, 32);
        unhex(want, sizeof(want), tc[i].sha384);
        assert_int_equal(
            vtsm_hmac(VTSM_HASH_SHA384, key, key_len, tc[i].data, strlen(tc[i].data), mac),
            VTSM_OK);
        assert_memory_equal(mac, want, 48);
    }
}

static void test_aead_gcm_vectors(void **state)
{
    /* McGrew & Viega, "The Galois/Counter Mode of Operation", test cases 14 and 16. */
    uint8_t key[32], iv[12], pt[64], aad[20], ct_want[64], tag_want[16];
    uint8_t ct[64], tag[16], back[64];
    size_t pt_len, aad_len;

    (void)state;
    memset(key, 0, sizeof(key));
    memset(iv, 0, sizeof(iv));
    memset(pt, 0, 16);
    unhex(ct_want, sizeof(ct_want), "cea7403d4d606b6e074ec5d3baf39d18");
    unhex(tag_want, sizeof(tag_want), "d0d1c8a799996bf0265b98b5d48ab919");
    assert_int_equal(vtsm_aead_seal(key, iv, NULL, 0, pt, 16, ct, tag), VTSM_OK);
    assert_memory_equal(ct, ct_want, 16);
    assert_memory_equal(tag, tag_want, 16);
    assert_int_equal(vtsm_aead_open(key, iv, NULL, 0, ct, 16, tag, back), VTSM_OK);
    assert_memory_equal(back, pt, 16);

    unhex(key, sizeof(key), "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
    unhex(iv, sizeof(iv), "cafebabefacedbaddecaf888");
    pt_len = unhex(pt, sizeof(pt),
                   "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
                   "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");
    aad_len = unhex(aad, sizeof(aad), "feedfacedeadbeeffeedfacedeadbeefabaddad2");
    unhex(ct_want, sizeof(ct_want),
          "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
          "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662");
    unhex(tag_want, sizeof(tag_want), "76fc6ece0f4e1768cddf8853bb2d551b");
    assert_int_equal(vtsm_aead_seal(key, iv, aad, aad_len, pt, pt_len, ct, tag), VTSM_OK);
    assert_memory_equal(ct, ct_want, pt_len);
    assert_memory_equal(tag, tag_want, 16);
    assert_int_equal(vtsm_aead_open(key, iv, aad, aad_len, ct, pt_len, tag, back), VTSM_OK);
    assert_memory_equal(back, pt, pt_len);
    /* In place. */
    memcpy(back, pt, pt_len);
    assert_int_equal(vtsm_aead_seal(key, iv, aad, aad_len, back, pt_len, back, tag), VTSM_OK);
    assert_memory_equal(back, ct_want, pt_len);
}

static void test_ecdsa_round_trip(void **state)
{
    const char *groups[] = {"P-256", "P-384"};
    const enum vtsm_asym_alg algs[] = {VTSM_ASYM_ECDSA_P256, VTSM_ASYM_ECDSA_P384};
    const enum vtsm_hash_alg hashes[] = {VTSM_HASH_SHA256, VTSM_HASH_SHA384};

    (void)state;
    for (int g = 0; g < 2; g++) {
        EVP_PKEY *k = ec_key(groups[g]);

        assert_int_equal(vtsm_pkey_asym(k), algs[g]);
        for (int h = 0; h < 2; h++) {
            uint8_t sig[VTSM_SIG_MAX];

            /* Many signatures, so a short r or s (left padding) is exercised too. */
            for (int i = 0; i < 32; i++) {
                uint8_t msg[8] = {(uint8_t)i, (uint8_t)h, (uint8_t)g};

                assert_int_equal(vtsm_ecdsa_sign(k, algs[g], hashes[h], msg, sizeof(msg), sig),
                                 VTSM_OK);
                assert_int_equal(vtsm_ecdsa_verify(k, algs[g], hashes[h], msg, sizeof(msg), sig,
                                                   vtsm_sig_size(algs[g])),
                                 VTSM_OK);
            }
        }
        EVP_PKEY_free(k);
    }
    assert_int_equal(vtsm_sig_size(VTSM_ASYM_ECDSA_P256), 64);
    assert_int_equal(vtsm_sig_size(VTSM_ASYM_ECDSA_P384), 96);
}

static void test_dhe_agreement(void **state)
{
    const enum vtsm_dhe_group groups[] = {VTSM_DHE_SECP256R1, VTSM_DHE_SECP384R1};

    (void)state;
    for (int g = 0; g < 2; g++) {
        struct vtsm_dhe *a = NULL, *b = NULL;
        uint8_t pa[VTSM_DHE_PUB_MAX], pb[VTSM_DHE_PUB_MAX];
        uint8_t sa[VTSM_DHE_SECRET_MAX], sb[VTSM_DHE_SECRET_MAX];
        size_t n = vtsm_dhe_pub_size(groups[g]);

        assert_int_equal(n, g == 0 ? 64 : 96);
        assert_int_equal(vtsm_dhe_secret_size(groups[g]), n / 2);
        assert_int_equal(vtsm_dhe_generate(groups[g], &a, pa), VTSM_OK);
        assert_int_equal(vtsm_dhe_generate(groups[g], &b, pb), VTSM_OK);
        assert_memory_not_equal(pa, pb, n);
        assert_int_equal(vtsm_dhe_derive(a, pb, n, sa), VTSM_OK);
        assert_int_equal(vtsm_dhe_derive(b, pa, n, sb), VTSM_OK);
        assert_memory_equal(sa, sb, n / 2);
        vtsm_dhe_free(a);
        vtsm_dhe_free(b);
    }
}

static void test_hash_ctx_peek_dup(void **state)
{
    struct vtsm_hash_ctx *c = NULL, *d = NULL;
    uint8_t peek[48], want[48];

    (void)state;
    assert_int_equal(vtsm_hash_ctx_new(VTSM_HASH_SHA384, &c), VTSM_OK);
    assert_int_equal(vtsm_hash_ctx_update(c, "ab", 2), VTSM_OK);
    assert_int_equal(vtsm_hash_ctx_update(c, "c", 1), VTSM_OK);
    assert_int_equal(vtsm_hash_ctx_peek(c, peek), VTSM_OK);
    /* FIPS 180-2 SHA-384("abc") */
    unhex(want, sizeof(want),
          "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"
          "8086072ba1e7cc2358baeca134c825a7");
    assert_memory_equal(peek, want, 48);
    /* Peeking does not end the digest. */
    assert_int_equal(vtsm_hash_ctx_peek(c, peek), VTSM_OK);
    assert_memory_equal(peek, want, 48);

    assert_int_equal(vtsm_hash_ctx_dup(c, &d), VTSM_OK);
    assert_int_equal(vtsm_hash_ctx_update(d, "def", 3), VTSM_OK);
    assert_int_equal(vtsm_hash_ctx_peek(c, peek), VTSM_OK);
    assert_memory_equal(peek, want, 48); /* original unchanged by the copy's update */
    assert_int_equal(vtsm_hash_ctx_peek(d, peek), VTSM_OK);
    assert_int_equal(vtsm_hash(VTSM_HASH_SHA384, "abcdef", 6, want), VTSM_OK);
    assert_memory_equal(peek, want, 48);
    vtsm_hash_ctx_free(c);
    vtsm_hash_ctx_free(d);
    vtsm_hash_ctx_free(NULL);
}

static void test_pem_load(void **state)
{
    EVP_PKEY *k = NULL;
    uint8_t sig[VTSM_SIG_MAX];

    (void)state;
    assert_int_equal(vtsm_pkey_load_pem(VTSM_SOURCE_DIR "/pki/p384/leaf.key", &k), VTSM_OK);
    assert_int_equal(vtsm_pkey_asym(k), VTSM_ASYM_ECDSA_P384);
    assert_int_equal(vtsm_ecdsa_sign(k, VTSM_ASYM_ECDSA_P384, VTSM_HASH_SHA384, "x", 1, sig),
                     VTSM_OK);
    EVP_PKEY_free(k);
    k = NULL;
    assert_int_equal(vtsm_pkey_load_pem(VTSM_SOURCE_DIR "/pki/p256/leaf.key", &k), VTSM_OK);
    assert_int_equal(vtsm_pkey_asym(k), VTSM_ASYM_ECDSA_P256);
    EVP_PKEY_free(k);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(vtsm_hash_name(VTSM_HASH_SHA384), "sha384");
    assert_string_equal(vtsm_asym_name(VTSM_ASYM_ECDSA_P256), "ecdsa-p256");
    assert_string_equal(vtsm_dhe_name(VTSM_DHE_SECP384R1), "secp384r1");
    assert_string_equal(vtsm_aead_name(VTSM_AEAD_AES_256_GCM), "aes-256-gcm");
    assert_int_equal(vtsm_random(NULL, 0), VTSM_OK);
}

/* HKDF through OpenSSL's own HKDF implementation, to check ours against. */
static void ossl_hkdf(const char *digest, int mode, const uint8_t *salt, size_t salt_len,
                      const uint8_t *key, size_t key_len, const uint8_t *info, size_t info_len,
                      uint8_t *out, size_t out_len)
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *ctx = EVP_KDF_CTX_new(kdf);
    OSSL_PARAM p[6];
    size_t i = 0;
    uint8_t one = 0;

    assert_non_null(ctx);
    p[i++] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
    p[i++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)digest, 0);
    p[i++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, key_len ? (void *)key : &one,
                                               key_len);
    if (salt_len)
        p[i++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len);
    if (info_len)
        p[i++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, info_len);
    p[i] = OSSL_PARAM_construct_end();
    assert_int_equal(EVP_KDF_derive(ctx, out, out_len, p), 1);
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
}

/* Both digests, every output length class (1, HashLen - 1, HashLen, HashLen + 1, several
 * blocks, the 255-block maximum), with and without salt and info: the same bytes as
 * OpenSSL's HKDF. */
static void test_hkdf_matches_openssl(void **state)
{
    static const struct {
        enum vtsm_hash_alg alg;
        const char *name;
    } hs[] = {{VTSM_HASH_SHA256, "SHA256"}, {VTSM_HASH_SHA384, "SHA384"}};
    uint8_t salt[13], ikm[61], info[40], prk[VTSM_HASH_MAX], want_prk[VTSM_HASH_MAX];
    static uint8_t okm[255 * VTSM_HASH_MAX + 1], want[255 * VTSM_HASH_MAX];

    (void)state;
    for (size_t i = 0; i < sizeof(salt); i++)
        salt[i] = (uint8_t)(0xA0 + i);
    for (size_t i = 0; i < sizeof(ikm); i++)
        ikm[i] = (uint8_t)(3 * i + 1);
    for (size_t i = 0; i < sizeof(info); i++)
        info[i] = (uint8_t)(0xF0 ^ i);
    for (size_t a = 0; a < 2; a++) {
        size_t h = vtsm_hash_size(hs[a].alg);
        const size_t lens[] = {1, h - 1, h, h + 1, 3 * h + 5, 255 * h};

        for (int with = 0; with < 2; with++) {
            size_t sl = with ? sizeof(salt) : 0, il = with ? sizeof(info) : 0;

            assert_int_equal(vtsm_hkdf_extract(hs[a].alg, salt, sl, ikm, sizeof(ikm), prk),
                             VTSM_OK);
            ossl_hkdf(hs[a].name, EVP_KDF_HKDF_MODE_EXTRACT_ONLY, salt, sl, ikm, sizeof(ikm), NULL,
                      0, want_prk, h);
            assert_memory_equal(prk, want_prk, h);
            for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
                memset(okm, 0, sizeof(okm));
                assert_int_equal(vtsm_hkdf_expand(hs[a].alg, prk, h, info, il, okm, lens[l]),
                                 VTSM_OK);
                ossl_hkdf(hs[a].name, EVP_KDF_HKDF_MODE_EXPAND_ONLY, NULL, 0, prk, h, info, il,
                          want, lens[l]);
                assert_memory_equal(okm, want, lens[l]);
                assert_int_equal(okm[lens[l]], 0); /* nothing written past L */
            }
        }
    }
}

/* The algorithms are fetched on first use: many threads making that first use at once all
 * get correct results. Runs first, before any other test has fetched them. */
static void *first_use(void *arg)
{
    uint8_t *out = arg;
    if (vtsm_hash(VTSM_HASH_SHA384, "abc", 3, out) != VTSM_OK ||
        vtsm_hmac(VTSM_HASH_SHA256, (const uint8_t *)"key", 3, "abc", 3, out + 48) != VTSM_OK)
        memset(out, 0, 80);
    return NULL;
}

static void test_first_use_concurrent(void **state)
{
    enum { N = 8 };
    pthread_t th[N];
    uint8_t out[N][80], want[80];

    (void)state;
    memset(out, 0, sizeof(out));
    for (int i = 0; i < N; i++)
        assert_int_equal(pthread_create(&th[i], NULL, first_use, out[i]), 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    /* SHA-384("abc") starts cb00753f (FIPS 180-2 B.1). */
    assert_int_equal(out[0][0], 0xcb);
    assert_int_equal(out[0][1], 0x00);
    memcpy(want, out[0], sizeof(want));
    for (int i = 1; i < N; i++)
        assert_memory_equal(out[i], want, sizeof(want));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_use_concurrent),
        cmocka_unit_test(test_unsupported_algorithms),
        cmocka_unit_test(test_hkdf_bounds),
        cmocka_unit_test(test_ecdsa_wrong_length_refused),
        cmocka_unit_test(test_ecdsa_flipped_bit),
        cmocka_unit_test(test_ecdsa_key_of_other_curve),
        cmocka_unit_test(test_dhe_off_curve),
        cmocka_unit_test(test_aead_tampered),
        cmocka_unit_test(test_pem_failures),
        cmocka_unit_test(test_hkdf_rfc5869),
        cmocka_unit_test(test_hkdf_matches_openssl),
        cmocka_unit_test(test_hmac_rfc4231),
        cmocka_unit_test(test_aead_gcm_vectors),
        cmocka_unit_test(test_ecdsa_round_trip),
        cmocka_unit_test(test_dhe_agreement),
        cmocka_unit_test(test_hash_ctx_peek_dup),
        cmocka_unit_test(test_pem_load),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
