/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * guest-shim evidence: the TSM token (COSE_Sign1 made here with vtsm_cose_sign1 and the
 * pki/tsm key), reference files (each malformed line kind with its line number, each
 * mismatch with both values), the binding of an INFO result to its token, and
 * vtsm_guest_decide through a host-shim relay against a fake TSM in a thread (which also
 * makes the relay service a DOE exchange). Failure cases first.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include <cmocka.h>

#include "vtsm_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "vtsm_abi.h"
#include "vtsm_buf.h"
#include "vtsm_cose.h"
#include "vtsm_crypto.h"
#include "vtsm_guest_cbor.h"
#include "vtsm_host_cbor.h"
#include "vtsm_tdisp.h"

#include "test_guest_fixture.h"

#define TVM GF_TVM
#define DEV GF_DEV
#define TDI GF_TDI

static const uint8_t nonce_a[32] = {
    0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,
    0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf};

static void sha384(const uint8_t *p, size_t n, uint8_t out[48])
{
    assert_int_equal(vtsm_hash(VTSM_HASH_SHA384, p, n, out), VTSM_OK);
}

static void hex(char *out, const uint8_t *p, size_t n)
{
    vtsm_hex(out, p, n);
}

/* The guest key the tests use, in a temporary directory. */
struct fx {
    char dir[64];
    char key[128];
    struct vtsm_guest *g;
    uint8_t identity[32];
    struct gf_evidence ev;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/vtsm-guestv-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->key, sizeof(f->key), "%s/tvm.pem", f->dir);
    if (vtsm_guest_keygen(f->key) != VTSM_OK || vtsm_guest_open(f->key, TVM, &f->g) != VTSM_OK)
        return -1;
    vtsm_guest_identity(f->g, f->identity);
    if (gf_make_evidence(&f->ev) != VTSM_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];
    vtsm_guest_close(f->g);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static struct vtsm_guest_ref *parse_ref(const char *text)
{
    struct vtsm_guest_ref *r = NULL;
    EXPECT(vtsm_guest_ref_parse(text, strlen(text), "ref.txt", &r), VTSM_OK, VTSM_RULE_NONE);
    return r;
}

static int doe_echo(void *ctx, const uint8_t *req, size_t req_len, uint8_t *rsp, size_t *rsp_len)
{
    (void)ctx;
    if (req_len + 4 > *rsp_len)
        return -1;
    memcpy(rsp, req, req_len);
    memcpy(rsp + req_len, "\xd0\xe0\x00\x00", 4);
    *rsp_len = req_len + 4;
    return 0;
}

/* A relay (host-shim handle) connected to a fake TSM in a thread. */
static struct vtsm_host *start_fake(struct fx *fx, struct gf_fake *f, enum gf_mode mode,
                                    enum gf_spoil sp)
{
    int cfd = -1;
    struct vtsm_host *h = NULL;
    memset(f, 0, sizeof(*f));
    f->mode = mode;
    f->spoil = sp;
    f->ev = fx->ev;
    f->last_seq = vtsm_guest_last_seq(fx->g);
    vtsm_guest_pubkey(fx->g, f->guest_pub);
    memcpy(f->identity, fx->identity, 32);
    assert_int_equal(gf_fake_start_pair(f, &cfd), 0);
    EXPECT(vtsm_host_open_fd(cfd, &h), VTSM_OK, VTSM_RULE_NONE);
    vtsm_host_set_timeout(h, 20000);
    EXPECT(vtsm_host_register_doe(h, DEV, doe_echo, NULL), VTSM_OK, VTSM_RULE_NONE);
    return h;
}

static void stop_fake(struct gf_fake *f, struct vtsm_host *h)
{
    vtsm_host_close(h);
    if (gf_fake_stop(f) != 0)
        fail_msg("fake TSM: %s", f->err);
}

/* ------------------------------------------------------------ failure cases */

static void test_token_refusals(void **state)
{
    struct fx *f = *state;
    EVP_PKEY *tk = gf_tsm_key();
    cbor_item_t *claims = gf_make_claims(&f->ev, nonce_a, f->identity, GF_SP_NONE), *out = NULL;
    struct vtsm_buf tok = {0};
    uint8_t other_nonce[32];

    assert_int_equal(gf_make_token(tk, claims, NULL, 0, &tok), VTSM_OK);
    memcpy(other_nonce, nonce_a, 32);
    other_nonce[31] ^= 0x01;
    /* a token for another request (replayed) */
    EXPECT_DETAIL(vtsm_guest_verify_token_cbor(tok.data, tok.len, NULL, other_nonce, &out),
                  VTSM_E_PEER_NONCE, VTSM_RULE_NONE, "not the nonce of this request");
    assert_null(out);

    /* tampered: a payload byte (inside the claims' nonce), the signature's last byte */
    uint8_t *t = malloc(tok.len);
    assert_non_null(t);
    memcpy(t, tok.data, tok.len);
    uint8_t *at = memmem(t, tok.len, nonce_a, 32);
    assert_non_null(at);
    at[5] ^= 0x20;
    EXPECT_DETAIL(vtsm_guest_verify_token_cbor(t, tok.len, NULL, nonce_a, &out),
                  VTSM_E_PEER_SIGNATURE, VTSM_RULE_NONE, "does not verify");
    at[5] ^= 0x20;
    t[tok.len - 1] ^= 0x01;
    EXPECT_DETAIL(vtsm_guest_verify_token_cbor(t, tok.len, NULL, nonce_a, &out),
                  VTSM_E_PEER_SIGNATURE, VTSM_RULE_NONE, "does not verify");
    assert_null(out);
    free(t);
    /* cut short, or not a token at all */
    EXPECT(vtsm_guest_verify_token_cbor(tok.data, tok.len - 1, NULL, nonce_a, &out),
           VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE);
    EXPECT(vtsm_guest_verify_token_cbor((const uint8_t *)"\xa0", 1, NULL, nonce_a, &out),
           VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE);
    EXPECT(vtsm_guest_verify_token_cbor(tok.data, tok.len, NULL, NULL, &out), VTSM_E_INVAL,
           VTSM_RULE_NONE);

    /* a wrong kid, or none, though signed by the TSM key */
    uint8_t kid[32];
    X509 *cert = NULL;
    assert_int_equal(vtsm_guest_default_tsm_cert(&cert), VTSM_OK);
    assert_int_equal(vtsm_guest_tsm_kid(cert, kid), VTSM_OK);
    kid[0] ^= 0xff;
    assert_int_equal(gf_make_token(tk, claims, kid, sizeof(kid), &tok), VTSM_OK);
    EXPECT_DETAIL(vtsm_guest_verify_token_cbor(tok.data, tok.len, NULL, nonce_a, &out),
                  VTSM_E_PEER_SIGNATURE, VTSM_RULE_NONE, "does not name the TSM certificate");
    assert_int_equal(gf_make_token(tk, claims, kid, 16, &tok), VTSM_OK);
    EXPECT_DETAIL(vtsm_guest_verify_token_cbor(tok.data, tok.len, NULL, nonce_a, &out),
                  VTSM_E_PEER_SIGNATURE, VTSM_RULE_NONE, "does not name the TSM certificate");
    assert_int_equal(gf_make_token(tk, claims, (const uint8_t *)"", 0, &tok), VTSM_OK);
    EXPECT_DETAIL(vtsm_guest_verify_token_cbor(tok.data, tok.len, NULL, nonce_a, &out),
                  VTSM_E_PEER_SIGNATURE, VTSM_RULE_NONE, "no kid");

    /* signed by another key under the right kid: P-384 (signature) and P-256 (alg) */
    EVP_PKEY *other = gf_load_key(VTSM_SOURCE_DIR "/pki/p384/leaf.key");
    assert_int_equal(gf_make_token(other, claims, NULL, 0, &tok), VTSM_OK);
    EXPECT_DETAIL(vtsm_guest_verify_token_cbor(tok.data, tok.len, NULL, nonce_a, &out),
                  VTSM_E_PEER_SIGNATURE, VTSM_RULE_NONE, "does not verify");
    EVP_PKEY_free(other);
    other = gf_load_key(VTSM_SOURCE_DIR "/pki/p256/leaf.key");
    assert_int_equal(gf_make_token(other, claims, NULL, 0, &tok), VTSM_OK);
    EXPECT(vtsm_guest_verify_token_cbor(tok.data, tok.len, NULL, nonce_a, &out), VTSM_E_PEER_ALGO,
           VTSM_RULE_NONE);
    EVP_PKEY_free(other);

    /* a genuine token checked against another certificate */
    assert_int_equal(gf_make_token(tk, claims, NULL, 0, &tok), VTSM_OK);
    X509 *leaf = NULL;
    FILE *fp = fopen(VTSM_SOURCE_DIR "/pki/p384/leaf.pem", "r");
    assert_non_null(fp);
    leaf = PEM_read_X509(fp, NULL, NULL, NULL);
    fclose(fp);
    assert_non_null(leaf);
    EXPECT(vtsm_guest_verify_token_cbor(tok.data, tok.len, leaf, nonce_a, &out),
           VTSM_E_PEER_SIGNATURE, VTSM_RULE_NONE);
    assert_null(out);
    X509_free(leaf);

    /* claims without a nonce, or with a short one */
    cbor_item_t *bad = vtsm_abi_map_new();
    assert_int_equal(vtsm_abi_put_uint(bad, "tvm", TVM), VTSM_OK);
    assert_int_equal(gf_make_token(tk, bad, NULL, 0, &tok), VTSM_OK);
    EXPECT_DETAIL(vtsm_guest_verify_token_cbor(tok.data, tok.len, NULL, nonce_a, &out),
                  VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE, "missing key 'nonce'");
    assert_int_equal(vtsm_abi_put_bytes(bad, "nonce", nonce_a, 16), VTSM_OK);
    assert_int_equal(gf_make_token(tk, bad, NULL, 0, &tok), VTSM_OK);
    EXPECT_DETAIL(vtsm_guest_verify_token_cbor(tok.data, tok.len, NULL, nonce_a, &out),
                  VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE, "nonce of 16 bytes");
    assert_null(out);
    cbor_decref(&bad);
    X509_free(cert);
    cbor_decref(&claims);
    vtsm_buf_free(&tok);
    EVP_PKEY_free(tk);
}

static void test_reference_malformed_lines(void **state)
{
    static const struct {
        const char *text;
        const char *needle;
    } cases[] = {
        {"# c\nreport_digst 00\n", "ref.txt line 2: unknown key 'report_digst'"},
        {"\n\nmmio_ranges\n", "ref.txt line 3: mmio_ranges needs a value"},
        {"measurement 1\n", "line 1: measurement needs an index and a hex value"},
        {"mmio_ranges 2 3\n", "line 1: unexpected '3' after the value of mmio_ranges"},
        {"measurement 1 00 11 22 33\n", "line 1: unexpected '11'"},
        {"mmio_ranges 1\nmeasurement 1 abc\n", "line 2: measurement value: 'abc' is not an even"},
        {"measurement 1 00zz\n", "line 1: measurement value: 'z' at position 3 is not a hex digit"},
        {"report_digest 0011\n", "line 1: report_digest: 2 bytes, a SHA-256 or SHA-384 digest"},
        {"cert_chain_digest "
         "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
         "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
         "line 1: cert_chain_digest: 64 bytes, at most 48"},
        {"mmio_ranges two\n", "line 1: mmio_ranges: 'two' is not a decimal number"},
        {"mmio_ranges 4294967296\n", "line 1: mmio_ranges: 4294967296 is out of range"},
        {"measurement 0 00\n", "line 1: measurement index: 0 is out of range 1..254"},
        {"measurement 255 00\n", "line 1: measurement index: 255 is out of range 1..254"},
        {"measurement x1 00\n", "line 1: measurement index: 'x1' is not a decimal number"},
        {"interface_info 0x10000\n", "line 1: interface_info: '0x10000' is not a 16-bit hex"},
        {"interface_info 0xg\n", "line 1: interface_info: '0xg' is not a 16-bit hex"},
        {"interface_info 0x\n", "line 1: interface_info: '0x' is not a 16-bit hex"},
        {"mmio_ranges 1\n#\nmmio_ranges 2\n", "line 3: mmio_ranges given twice (first on line 1)"},
        {"measurement 7 00\nmeasurement 8 00\nmeasurement 7 01\n",
         "line 3: measurement 7 given twice (first on line 1)"},
        {"mmio_ranges 1\nmmio_ranges\0 2\n", "line 2: contains a NUL byte"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct vtsm_guest_ref *r = (struct vtsm_guest_ref *)1;
        size_t len = strlen(cases[i].text);
        if (strstr(cases[i].needle, "NUL"))
            len = 28;
        vtsm_err_clear();
        vtsm_status st = vtsm_guest_ref_parse(cases[i].text, len, "ref.txt", &r);
        if (st != VTSM_E_CONFIG || !strstr(vtsm_err_detail(), cases[i].needle))
            fail_msg("case %zu: status %d, detail \"%s\", wanted \"%s\"", i, (int)st,
                     vtsm_err_detail(), cases[i].needle);
        assert_null(r);
    }
    /* an over-long line */
    char *big = malloc(5000);
    assert_non_null(big);
    memset(big, '0', 4999);
    memcpy(big, "mmio_ranges 1\nmeasurement 1 ", 28);
    big[4999] = '\0';
    struct vtsm_guest_ref *r = NULL;
    EXPECT_DETAIL(vtsm_guest_ref_parse(big, strlen(big), "ref.txt", &r), VTSM_E_CONFIG,
                  VTSM_RULE_NONE, "ref.txt line 2: longer than 4096 characters");
    free(big);
}

static void test_reference_file_errors(void **state)
{
    struct fx *f = *state;
    struct vtsm_guest_ref *r = NULL;
    char path[128];
    cbor_item_t *info = gf_make_info(&f->ev, 1, nonce_a, NULL, GF_SP_NONE);

    snprintf(path, sizeof(path), "%s/none.txt", f->dir);
    EXPECT_DETAIL(vtsm_guest_ref_load(path, &r), VTSM_E_NOT_FOUND, VTSM_RULE_NONE,
                  "cannot open reference file");
    EXPECT(vtsm_guest_check_reference_cbor(info, path), VTSM_E_NOT_FOUND, VTSM_RULE_NONE);
    /* nothing but comments would accept anything: refused */
    snprintf(path, sizeof(path), "%s/empty.txt", f->dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("# nothing here\n\n   # indented comment\n", fp);
    fclose(fp);
    EXPECT_DETAIL(vtsm_guest_ref_load(path, &r), VTSM_E_CONFIG, VTSM_RULE_NONE,
                  "no reference values");
    EXPECT_DETAIL(vtsm_guest_ref_parse("", 0, "ref.txt", &r), VTSM_E_CONFIG, VTSM_RULE_NONE,
                  "no reference values");
    assert_null(r);
    cbor_decref(&info);
}

static void test_reference_mismatch_detail(void **state)
{
    struct fx *f = *state;
    cbor_item_t *info = gf_make_info(&f->ev, 1, nonce_a, NULL, GF_SP_NONE);
    uint8_t rd[48];
    char h[100], text[512], want[512];
    struct vtsm_guest_ref *r;

    /* report_digest: both values, abbreviated past 24 bytes */
    sha384(f->ev.report, f->ev.report_len, rd);
    rd[0] ^= 0xff;
    hex(h, rd, 48);
    snprintf(text, sizeof(text), "mmio_ranges 2\n\nreport_digest %s\n", h);
    r = parse_ref(text);
    char a[64], b[64];
    hex(a, rd, 24);
    rd[0] ^= 0xff;
    hex(b, rd, 24);
    snprintf(want, sizeof(want),
             "ref.txt line 3: report_digest mismatch: reference %s... (48 bytes), TDI %s... (48 "
             "bytes)",
             a, b);
    EXPECT_DETAIL(vtsm_guest_ref_check_cbor(r, info), VTSM_E_POLICY_REFUSED, VTSM_RULE_NONE, want);
    vtsm_guest_ref_free(r);

    r = parse_ref("interface_info 0x1\n");
    EXPECT_DETAIL(vtsm_guest_ref_check_cbor(r, info), VTSM_E_POLICY_REFUSED, VTSM_RULE_NONE,
                  "line 1: interface_info mismatch: reference 0x0001, TDI 0x0003");
    vtsm_guest_ref_free(r);
    r = parse_ref("# ranges\nmmio_ranges 3\n");
    EXPECT_DETAIL(vtsm_guest_ref_check_cbor(r, info), VTSM_E_POLICY_REFUSED, VTSM_RULE_NONE,
                  "line 2: mmio_ranges mismatch: reference 3, TDI 2");
    vtsm_guest_ref_free(r);
    r = parse_ref("measurement 1 1011121314151617ff\n");
    EXPECT_DETAIL(vtsm_guest_ref_check_cbor(r, info), VTSM_E_POLICY_REFUSED, VTSM_RULE_NONE,
                  "line 1: measurement 1 mismatch: reference 1011121314151617ff, TDI "
                  "101112131415161718191a1b1c1d1e1f2021222324252627... (32 bytes)");
    vtsm_guest_ref_free(r);
    r = parse_ref("measurement 9 00\n");
    EXPECT_DETAIL(vtsm_guest_ref_check_cbor(r, info), VTSM_E_POLICY_REFUSED, VTSM_RULE_NONE,
                  "line 1: measurement 9: the TDI reports no block 9");
    vtsm_guest_ref_free(r);
    hex(h, rd, 32);
    snprintf(text, sizeof(text), "cert_chain_digest %s\n", h);
    r = parse_ref(text);
    EXPECT_DETAIL(vtsm_guest_ref_check_cbor(r, info), VTSM_E_POLICY_REFUSED, VTSM_RULE_NONE,
                  "line 1: cert_chain_digest mismatch");
    vtsm_guest_ref_free(r);

    /* a result that lacks what a value needs is the peer's fault, not a mismatch */
    cbor_item_t *bare = vtsm_abi_map_new();
    r = parse_ref("report_digest "
                  "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n");
    EXPECT_DETAIL(vtsm_guest_ref_check_cbor(r, bare), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "missing key 'report_digest'");
    vtsm_guest_ref_free(r);
    r = parse_ref("measurement 1 00\n");
    EXPECT_DETAIL(vtsm_guest_ref_check_cbor(r, bare), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "measurements");
    vtsm_guest_ref_free(r);
    assert_int_equal(vtsm_abi_put_bytes(bare, "report", (const uint8_t *)"\x01", 1), VTSM_OK);
    r = parse_ref("mmio_ranges 1\n");
    EXPECT_DETAIL(vtsm_guest_ref_check_cbor(r, bare), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "INFO report does not parse");
    vtsm_guest_ref_free(r);
    cbor_decref(&bare);
    cbor_decref(&info);
}

static void test_evidence_refusals(void **state)
{
    struct fx *f = *state;
    EVP_PKEY *tk = gf_tsm_key();
    static const struct {
        enum gf_spoil sp;
        vtsm_status want;
        const char *needle;
    } cases[] = {
        {GF_SP_CLAIM_TVM, VTSM_E_AUTH, "token is for TVM 5, this is TVM 4"},
        {GF_SP_CLAIM_IDENTITY, VTSM_E_AUTH, "tvm_identity"},
        {GF_SP_CLAIM_DEV, VTSM_E_AUTH, "token is about 0000:04:00.0 TDI 2"},
        {GF_SP_CLAIM_TDI, VTSM_E_AUTH, "TDI 3, the request was " DEV " TDI 2"},
        {GF_SP_CLAIM_NOT_AFTER_LOCK, VTSM_E_PEER_STATE, "after_lock false"},
        {GF_SP_CLAIM_UNLOCKED, VTSM_E_PEER_STATE, "CONFIG_UNLOCKED"},
        {GF_SP_INFO_REPORT, VTSM_E_PEER_DIGEST, "INFO report does not hash to the token's"},
        {GF_SP_INFO_RECORD, VTSM_E_PEER_DIGEST, "record does not hash to the token's"},
        {GF_SP_INFO_CHAIN_DIGEST, VTSM_E_PEER_DIGEST, "INFO cert_chain_digest differs"},
        {GF_SP_INFO_TRANSCRIPT, VTSM_E_PEER_DIGEST, "measurement_transcript_digest"},
        {GF_SP_INFO_SPDM_NONCE, VTSM_E_PEER_NONCE, "measurements.nonce"},
        {GF_SP_INFO_NO_TOKEN, VTSM_E_PEER_MALFORMED, "returned no token"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct vtsm_buf tok = {0};
        cbor_item_t *claims = gf_make_claims(&f->ev, nonce_a, f->identity, cases[i].sp);
        assert_int_equal(gf_make_token(tk, claims, NULL, 0, &tok), VTSM_OK);
        cbor_item_t *info = gf_make_info(&f->ev, 1, nonce_a, &tok, cases[i].sp), *out = NULL;
        vtsm_err_clear();
        vtsm_status st =
            vtsm_guest_check_evidence_cbor(f->g, info, DEV, TDI, nonce_a, NULL, NULL, &out);
        if (st != cases[i].want || !strstr(vtsm_err_detail(), cases[i].needle))
            fail_msg("case %zu: status %d (%s), wanted %d \"%s\"", i, (int)st, vtsm_err_detail(),
                     (int)cases[i].want, cases[i].needle);
        assert_null(out);
        cbor_decref(&info);
        cbor_decref(&claims);
        vtsm_buf_free(&tok);
    }
    /* a good token with a reference that does not match */
    struct vtsm_buf tok = {0};
    cbor_item_t *claims = gf_make_claims(&f->ev, nonce_a, f->identity, GF_SP_NONE);
    assert_int_equal(gf_make_token(tk, claims, NULL, 0, &tok), VTSM_OK);
    cbor_item_t *info = gf_make_info(&f->ev, 1, nonce_a, &tok, GF_SP_NONE);
    struct vtsm_guest_ref *r = parse_ref("mmio_ranges 2\nmeasurement 2 00\n");
    EXPECT_DETAIL(vtsm_guest_check_evidence_cbor(f->g, info, DEV, TDI, nonce_a, r, NULL, NULL),
                  VTSM_E_POLICY_REFUSED, VTSM_RULE_NONE, "line 2: measurement 2 mismatch");
    /* the token of another request */
    uint8_t other[32] = {0};
    EXPECT(vtsm_guest_check_evidence_cbor(f->g, info, DEV, TDI, other, NULL, NULL, NULL),
           VTSM_E_PEER_NONCE, VTSM_RULE_NONE);
    vtsm_guest_ref_free(r);
    cbor_decref(&info);
    cbor_decref(&claims);
    vtsm_buf_free(&tok);
    EVP_PKEY_free(tk);
}

static void test_decide_without_evidence_or_with_bad_evidence(void **state)
{
    struct fx *f = *state;
    struct gf_fake fk;
    struct vtsm_guest_decision d;
    struct vtsm_host *h;
    uint64_t seq0 = vtsm_guest_last_seq(f->g);

    /* the TSM refuses INFO: no evidence, no verdict; its words are kept */
    h = start_fake(f, &fk, GF_NOT_OWNER, GF_SP_NONE);
    EXPECT(vtsm_guest_decide(f->g, h, DEV, TDI, NULL, NULL, &d), VTSM_E_NOT_OWNER, VTSM_RULE_TDI_6);
    assert_int_equal(d.verdict, VTSM_GUEST_NO_VERDICT);
    assert_int_equal(d.why, VTSM_E_NOT_OWNER);
    assert_int_equal(d.rule, VTSM_RULE_TDI_6);
    assert_non_null(strstr(d.reason, "does not own")); /* the TSM's words are kept */
    assert_string_equal(vtsm_host_last_error(h)->name, "not_owner");
    assert_null(d.info);
    vtsm_guest_decision_clear(&d);
    stop_fake(&fk, h);
    assert_int_equal(vtsm_guest_last_seq(f->g), seq0 + 1);

    /* a RESULT that is not the answer to our request */
    h = start_fake(f, &fk, GF_WRONG_ECHO, GF_SP_NONE);
    EXPECT_DETAIL(vtsm_guest_decide(f->g, h, DEV, TDI, NULL, NULL, &d), VTSM_E_PEER_MALFORMED,
                  VTSM_RULE_NONE, "guest RESULT echoes gop 0x42 tvm 4 seq");
    assert_int_equal(d.verdict, VTSM_GUEST_NO_VERDICT);
    vtsm_guest_decision_clear(&d);
    stop_fake(&fk, h);

    /* the host altered the report it relayed: evidence exists and says no */
    h = start_fake(f, &fk, GF_SPOIL, GF_SP_INFO_REPORT);
    EXPECT(vtsm_guest_decide(f->g, h, DEV, TDI, NULL, NULL, &d), VTSM_OK, VTSM_RULE_NONE);
    assert_int_equal(d.verdict, VTSM_GUEST_REJECT);
    assert_int_equal(d.why, VTSM_E_PEER_DIGEST);
    assert_non_null(strstr(d.reason, "INFO report does not hash to the token's report_digest"));
    assert_non_null(d.info);
    assert_null(d.claims);
    vtsm_guest_decision_clear(&d);
    stop_fake(&fk, h);

    /* genuine evidence that differs from the reference */
    struct vtsm_guest_ref *r = parse_ref("interface_info 0x0001\n");
    h = start_fake(f, &fk, GF_OK, GF_SP_NONE);
    EXPECT(vtsm_guest_decide(f->g, h, DEV, TDI, r, NULL, &d), VTSM_OK, VTSM_RULE_NONE);
    assert_int_equal(d.verdict, VTSM_GUEST_REJECT);
    assert_int_equal(d.why, VTSM_E_POLICY_REFUSED);
    assert_string_equal(d.reason,
                        "ref.txt line 1: interface_info mismatch: reference 0x0001, TDI 0x0003");
    vtsm_guest_decision_clear(&d);
    stop_fake(&fk, h);
    vtsm_guest_ref_free(r);

    EXPECT(vtsm_guest_decide(f->g, NULL, DEV, TDI, NULL, NULL, &d), VTSM_E_INVAL, VTSM_RULE_NONE);
    assert_int_equal(d.verdict, VTSM_GUEST_NO_VERDICT);
}

/* ------------------------------------------------------------ success cases */

static void test_token_good(void **state)
{
    struct fx *f = *state;
    EVP_PKEY *tk = gf_tsm_key();
    cbor_item_t *claims = gf_make_claims(&f->ev, nonce_a, f->identity, GF_SP_NONE), *out = NULL;
    struct vtsm_buf tok = {0};
    uint64_t tvm;

    assert_int_equal(gf_make_token(tk, claims, NULL, 0, &tok), VTSM_OK);
    EXPECT(vtsm_guest_verify_token_cbor(tok.data, tok.len, NULL, nonce_a, &out), VTSM_OK,
           VTSM_RULE_NONE);
    assert_non_null(out);
    assert_int_equal(vtsm_abi_get_uint(out, "tvm", &tvm), VTSM_OK);
    assert_int_equal(tvm, TVM);
    cbor_decref(&out);
    EXPECT(vtsm_guest_verify_token_cbor(tok.data, tok.len, NULL, nonce_a, NULL), VTSM_OK,
           VTSM_RULE_NONE);

    /* the certificate given explicitly (the same one, read from pki/) */
    FILE *fp = fopen(VTSM_SOURCE_DIR "/pki/tsm/tsm.pem", "r");
    assert_non_null(fp);
    X509 *cert = PEM_read_X509(fp, NULL, NULL, NULL);
    fclose(fp);
    assert_non_null(cert);
    EXPECT(vtsm_guest_verify_token_cbor(tok.data, tok.len, cert, nonce_a, NULL), VTSM_OK,
           VTSM_RULE_NONE);
    /* kid = SHA-256 of the certificate DER (pki/tsm/tsm.der) */
    uint8_t kid[32], want[32], der[2048];
    fp = fopen(VTSM_SOURCE_DIR "/pki/tsm/tsm.der", "rb");
    assert_non_null(fp);
    size_t n = fread(der, 1, sizeof(der), fp);
    fclose(fp);
    assert_int_equal(vtsm_hash(VTSM_HASH_SHA256, der, n, want), VTSM_OK);
    assert_int_equal(vtsm_guest_tsm_kid(cert, kid), VTSM_OK);
    assert_memory_equal(kid, want, 32);
    X509_free(cert);
    cbor_decref(&claims);
    vtsm_buf_free(&tok);
    EVP_PKEY_free(tk);
}

static void test_reference_good(void **state)
{
    struct fx *f = *state;
    char text[1024], path[128];
    cbor_item_t *info = gf_make_info(&f->ev, 1, nonce_a, NULL, GF_SP_NONE);

    gf_good_reference(&f->ev, text, sizeof(text));
    struct vtsm_guest_ref *r = parse_ref(text);
    assert_int_equal(vtsm_guest_ref_count(r), 6);
    EXPECT(vtsm_guest_ref_check_cbor(r, info), VTSM_OK, VTSM_RULE_NONE);
    vtsm_guest_ref_free(r);

    /* from a file; upper-case hex; a file without a final newline */
    snprintf(path, sizeof(path), "%s/ref.txt", f->dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    char h[70];
    hex(h, f->ev.m1, 32);
    for (char *p = h; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    fprintf(fp, "%s# last line\nmeasurement 1 %s", text, h);
    fclose(fp);
    EXPECT_DETAIL(vtsm_guest_check_reference_cbor(info, path), VTSM_E_CONFIG, VTSM_RULE_NONE,
                  "line 10: measurement 1 given twice (first on line 7)");
    fp = fopen(path, "w");
    assert_non_null(fp);
    fprintf(fp, "interface_info 3\nmeasurement 1 %s", h);
    fclose(fp);
    EXPECT(vtsm_guest_check_reference_cbor(info, path), VTSM_OK, VTSM_RULE_NONE);

    /* without the raw report / record, the structured fields are used */
    cbor_item_t *lean = vtsm_abi_map_new(), *mm = vtsm_abi_map_new();
    assert_int_equal(vtsm_abi_put_uint(lean, "interface_info", 3), VTSM_OK);
    assert_int_equal(
        vtsm_abi_put_item(lean, "mmio", cbor_incref((cbor_item_t *)vtsm_abi_find(info, "mmio"))),
        VTSM_OK);
    assert_int_equal(vtsm_abi_put_item(lean, "measurements", mm), VTSM_OK);
    const cbor_item_t *im = vtsm_abi_find(info, "measurements");
    assert_int_equal(
        vtsm_abi_put_item(mm, "blocks", cbor_incref((cbor_item_t *)vtsm_abi_find(im, "blocks"))),
        VTSM_OK);
    r = parse_ref("interface_info 0003\nmmio_ranges 2\nmeasurement 2 "
                  "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7"
                  "a8a9aaabacadaeaf\n");
    EXPECT(vtsm_guest_ref_check_cbor(r, lean), VTSM_OK, VTSM_RULE_NONE);
    vtsm_guest_ref_free(r);
    cbor_decref(&lean);
    cbor_decref(&info);
}

static void test_evidence_good(void **state)
{
    struct fx *f = *state;
    EVP_PKEY *tk = gf_tsm_key();
    struct vtsm_buf tok = {0};
    char text[1024];
    cbor_item_t *claims = gf_make_claims(&f->ev, nonce_a, f->identity, GF_SP_NONE), *out = NULL;
    assert_int_equal(gf_make_token(tk, claims, NULL, 0, &tok), VTSM_OK);
    cbor_item_t *info = gf_make_info(&f->ev, 1, nonce_a, &tok, GF_SP_NONE);
    gf_good_reference(&f->ev, text, sizeof(text));
    struct vtsm_guest_ref *r = parse_ref(text);

    EXPECT(vtsm_guest_check_evidence_cbor(f->g, info, DEV, TDI, nonce_a, r, NULL, &out), VTSM_OK,
           VTSM_RULE_NONE);
    assert_non_null(out);
    cbor_decref(&out);
    EXPECT(vtsm_guest_check_evidence_cbor(f->g, info, DEV, TDI, nonce_a, NULL, NULL, NULL), VTSM_OK,
           VTSM_RULE_NONE);
    vtsm_guest_ref_free(r);
    cbor_decref(&info);
    cbor_decref(&claims);
    vtsm_buf_free(&tok);
    EVP_PKEY_free(tk);
}

static void test_decide_accepts_through_relay_with_doe(void **state)
{
    struct fx *f = *state;
    struct gf_fake fk;
    struct vtsm_guest_decision d;
    char text[1024];
    uint64_t seq0 = vtsm_guest_last_seq(f->g), seq;

    gf_good_reference(&f->ev, text, sizeof(text));
    struct vtsm_guest_ref *r = parse_ref(text);
    struct vtsm_host *h = start_fake(f, &fk, GF_DOE_THEN_OK, GF_SP_NONE);
    EXPECT(vtsm_guest_decide(f->g, h, DEV, TDI, r, NULL, &d), VTSM_OK, VTSM_RULE_NONE);
    assert_int_equal(d.verdict, VTSM_GUEST_ACCEPT);
    assert_int_equal(d.why, VTSM_OK);
    assert_non_null(strstr(d.reason, "token verified"));
    assert_non_null(strstr(d.reason, "6 reference values matched"));
    assert_non_null(d.info);
    assert_non_null(d.claims);
    assert_int_equal(vtsm_result_uint(d.info, "seq", &seq), VTSM_OK);
    assert_int_equal(seq, seq0 + 1);
    vtsm_guest_decision_clear(&d);
    assert_null(d.info);
    stop_fake(&fk, h);
    /* the relay answered the DOE exchange through the device's callback */
    assert_int_equal(fk.doe_seen_len, 12);
    assert_memory_equal(fk.doe_seen + 8, "\xd0\xe0\x00\x00", 4);
    vtsm_guest_ref_free(r);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_token_refusals),
        T(test_reference_malformed_lines),
        T(test_reference_file_errors),
        T(test_reference_mismatch_detail),
        T(test_evidence_refusals),
        T(test_decide_without_evidence_or_with_bad_evidence),
        T(test_token_good),
        T(test_reference_good),
        T(test_evidence_good),
        T(test_decide_accepts_through_relay_with_doe),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
