/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The guest's side of the evidence: the TSM-signed token (COSE_Sign1, docs/abi.md section 9
 * INFO), reference values from a file, and the accept/reject decision that ties them
 * together.
 */
#include "vtsm_guest_cbor.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "vtsm_abi.h"
#include "vtsm_buf.h"
#include "vtsm_cose.h"
#include "vtsm_crypto.h"
#include "vtsm_guard.h"
#include "vtsm_host_cbor.h"
#include "vtsm_spdm_defs.h"
#include "vtsm_spdm_meas.h"
#include "vtsm_tdisp.h"

/* pki/tsm/tsm.pem, compiled in by cmake vtsm_embed() */
extern const unsigned char vtsm_guest_tsm_cert_pem[];
extern const unsigned long vtsm_guest_tsm_cert_pem_len;

#define REF_LINE_MAX    4096
#define REF_VALUE_MAX   1024 /* bytes of one measurement value */
#define REF_ENTRIES_MAX 260  /* the four single keys + 254 measurement indices, and spare */
#define REF_FILE_MAX    (1u << 20)
#define SHOW_BYTES      24 /* longer values show as a prefix and their length */

/* ---- small helpers ---- */

/* Lower-case hex of p for messages; long values abbreviated. */
static const char *show(char *out, size_t cap, const uint8_t *p, size_t n)
{
    size_t k = n > SHOW_BYTES ? SHOW_BYTES : n;
    char *o = out;
    if (cap < 2 * SHOW_BYTES + 32) {
        snprintf(out, cap, "<%zu bytes>", n);
        return out;
    }
    if (n == 0) {
        snprintf(out, cap, "<empty>");
        return out;
    }
    for (size_t i = 0; i < k; i++)
        o += sprintf(o, "%02x", p[i]);
    if (k < n)
        snprintf(o, cap - (size_t)(o - out), "... (%zu bytes)", n);
    return out;
}

/* Hash data with the algorithm a digest of dlen bytes implies (32: SHA-256, 48: SHA-384). */
static vtsm_status hash_like(const uint8_t *data, size_t len, size_t dlen, uint8_t *out,
                             const char *what)
{
    enum vtsm_hash_alg alg = dlen == 32   ? VTSM_HASH_SHA256
                             : dlen == 48 ? VTSM_HASH_SHA384
                                          : VTSM_HASH_NONE;
    VTSM_ENSURE(alg != VTSM_HASH_NONE, VTSM_E_PEER_MALFORMED,
                "%s is %zu bytes, neither a SHA-256 nor a SHA-384 digest", what, dlen);
    return vtsm_hash(alg, data, len, out);
}

/* ---- the TSM certificate ---- */

vtsm_status vtsm_guest_default_tsm_cert(X509 **out)
{
    VTSM_ENSURE(out, VTSM_E_INVAL, "tsm cert: out is NULL");
    *out = NULL;
    BIO *b = BIO_new_mem_buf(vtsm_guest_tsm_cert_pem, (int)vtsm_guest_tsm_cert_pem_len);
    VTSM_ENSURE(b, VTSM_E_NOMEM, "BIO for the embedded TSM certificate");
    *out = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    VTSM_ENSURE(*out, VTSM_E_CONFIG, "the embedded TSM certificate does not parse");
    return VTSM_OK;
}

vtsm_status vtsm_guest_tsm_kid(X509 *tsm_cert, uint8_t kid[VTSM_GUEST_KID_SIZE])
{
    unsigned char *der = NULL;
    VTSM_ENSURE(tsm_cert && kid, VTSM_E_INVAL, "tsm kid: NULL argument");
    int n = i2d_X509(tsm_cert, &der);
    VTSM_ENSURE(n > 0, VTSM_E_CRYPTO, "TSM certificate does not encode to DER");
    vtsm_status st = vtsm_hash(VTSM_HASH_SHA256, der, (size_t)n, kid);
    OPENSSL_free(der);
    return st;
}

/* ---- the token ---- */

vtsm_status vtsm_guest_verify_token_cbor(const uint8_t *token, size_t len, X509 *tsm_cert,
                                         const uint8_t nonce[VTSM_GUEST_NONCE_SIZE],
                                         cbor_item_t **claims)
{
    vtsm_status st = VTSM_OK;
    X509 *own = NULL;
    cbor_item_t *payload = NULL;
    uint8_t want_kid[VTSM_GUEST_KID_SIZE];
    const uint8_t *kid, *got_nonce;
    size_t kid_len, nonce_len;
    char a[128], b[128];

    if (claims)
        *claims = NULL;
    VTSM_ENSURE((token || len == 0) && nonce, VTSM_E_INVAL, "verify token: NULL argument");
    if (!tsm_cert) {
        VTSM_GUARD(vtsm_guest_default_tsm_cert(&own));
        tsm_cert = own;
    }
    EVP_PKEY *pub = X509_get0_pubkey(tsm_cert);
    VTSM_ENSURE_GOTO(pub, VTSM_E_CONFIG, "the TSM certificate has no usable public key");
    VTSM_GUARD_GOTO(vtsm_guest_tsm_kid(tsm_cert, want_kid));

    /* COSE_Sign1 (RFC 9052 4.2) signed with the TSM identity key */
    VTSM_GUARD_GOTO(vtsm_cose_verify1(pub, token, len, &payload));
    /* the kid names the certificate that signed: the one we trust, or nothing */
    VTSM_GUARD_GOTO(vtsm_cose_kid(token, len, &kid, &kid_len));
    VTSM_ENSURE_GOTO(kid, VTSM_E_PEER_SIGNATURE,
                     "token has no kid; it must name the TSM certificate (SHA-256 of its DER)");
    VTSM_ENSURE_GOTO(kid_len == sizeof(want_kid) &&
                         CRYPTO_memcmp(kid, want_kid, sizeof(want_kid)) == 0,
                     VTSM_E_PEER_SIGNATURE,
                     "token kid %s does not name the TSM certificate (SHA-256 of its DER is %s)",
                     show(a, sizeof(a), kid, kid_len), show(b, sizeof(b), want_kid, 32));

    st = vtsm_abi_get_bytes(payload, VTSM_ABI_K_NONCE, &got_nonce, &nonce_len);
    if (st != VTSM_OK) {
        st = vtsm_wrap(VTSM_E_PEER_MALFORMED, "token claims");
        goto out;
    }
    VTSM_ENSURE_GOTO(nonce_len == VTSM_GUEST_NONCE_SIZE, VTSM_E_PEER_MALFORMED,
                     "token claims: nonce of %zu bytes, expected %u", nonce_len,
                     VTSM_GUEST_NONCE_SIZE);
    VTSM_ENSURE_GOTO(CRYPTO_memcmp(got_nonce, nonce, VTSM_GUEST_NONCE_SIZE) == 0, VTSM_E_PEER_NONCE,
                     "token nonce %s is not the nonce of this request %s (a replayed token)",
                     show(a, sizeof(a), got_nonce, nonce_len),
                     show(b, sizeof(b), nonce, VTSM_GUEST_NONCE_SIZE));
    if (claims) {
        *claims = payload;
        payload = NULL;
    }
out:
    if (payload)
        cbor_decref(&payload);
    X509_free(own);
    return st;
}

/* ---- reference values ---- */

enum ref_kind {
    REF_REPORT_DIGEST,
    REF_CERT_CHAIN_DIGEST,
    REF_INTERFACE_INFO,
    REF_MMIO_RANGES,
    REF_MEASUREMENT,
};

static const char *const ref_key_names[] = {
    [REF_REPORT_DIGEST] = VTSM_ABI_K_REPORT_DIGEST,
    [REF_CERT_CHAIN_DIGEST] = VTSM_ABI_K_CERT_CHAIN_DIGEST,
    [REF_INTERFACE_INFO] = VTSM_ABI_K_INTERFACE_INFO,
    [REF_MMIO_RANGES] = "mmio_ranges",
    [REF_MEASUREMENT] = "measurement",
};

struct ref_entry {
    enum ref_kind kind;
    unsigned line;
    unsigned index; /* measurement */
    uint64_t num;   /* interface_info, mmio_ranges */
    uint8_t *val;   /* digests, measurement */
    size_t len;
};

struct vtsm_guest_ref {
    char name[256];
    size_t n;
    struct ref_entry e[REF_ENTRIES_MAX];
};

void vtsm_guest_ref_free(struct vtsm_guest_ref *ref)
{
    if (!ref)
        return;
    for (size_t i = 0; i < ref->n; i++)
        free(ref->e[i].val);
    free(ref);
}

size_t vtsm_guest_ref_count(const struct vtsm_guest_ref *ref)
{
    return ref ? ref->n : 0;
}

/* A line being parsed: tokens split on blanks, '#' ends it. */
struct ref_line {
    const char *name;
    unsigned no;
    char *tok[4];
    size_t ntok;
};

static vtsm_status line_fail(const struct ref_line *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static vtsm_status line_fail(const struct ref_line *l, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return vtsm_fail(VTSM_E_CONFIG, "%s line %u: %s", l->name, l->no, msg);
}

static vtsm_status parse_hex(const struct ref_line *l, const char *what, const char *s,
                             uint8_t **out, size_t *out_len, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n % 2)
        return line_fail(l, "%s: '%s' is not an even number of hex digits", what, s);
    if (n / 2 > max)
        return line_fail(l, "%s: %zu bytes, at most %zu", what, n / 2, max);
    uint8_t *v = malloc(n / 2);
    VTSM_ENSURE(v, VTSM_E_NOMEM, "reference value");
    if (vtsm_unhex(v, n / 2, s) != (long)(n / 2)) {
        char why[128];
        snprintf(why, sizeof(why), "%s", vtsm_err_detail());
        free(v);
        return line_fail(l, "%s: %s", what, why);
    }
    *out = v;
    *out_len = n / 2;
    return VTSM_OK;
}

static vtsm_status parse_dec(const struct ref_line *l, const char *what, const char *s, uint64_t lo,
                             uint64_t hi, uint64_t *out)
{
    uint64_t v = 0;
    size_t n = strlen(s);
    if (n == 0 || n > 20)
        return line_fail(l, "%s: '%s' is not a decimal number", what, s);
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return line_fail(l, "%s: '%s' is not a decimal number", what, s);
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return line_fail(l, "%s: '%s' is out of range %" PRIu64 "..%" PRIu64, what, s, lo, hi);
        v = v * 10 + d;
    }
    if (v < lo || v > hi)
        return line_fail(l, "%s: %" PRIu64 " is out of range %" PRIu64 "..%" PRIu64, what, v, lo,
                         hi);
    *out = v;
    return VTSM_OK;
}

static vtsm_status parse_entry(struct vtsm_guest_ref *ref, const struct ref_line *l)
{
    enum ref_kind kind;
    size_t want;
    struct ref_entry e = {.line = l->no};

    for (kind = 0; kind < VTSM_ARRAY_SIZE(ref_key_names); kind++)
        if (!strcmp(l->tok[0], ref_key_names[kind]))
            break;
    if (kind == VTSM_ARRAY_SIZE(ref_key_names))
        return line_fail(l,
                         "unknown key '%s' (known: report_digest, cert_chain_digest, "
                         "interface_info, mmio_ranges, measurement)",
                         l->tok[0]);
    e.kind = kind;
    want = kind == REF_MEASUREMENT ? 3 : 2;
    if (l->ntok < want)
        return line_fail(l, "%s needs %s", l->tok[0],
                         kind == REF_MEASUREMENT ? "an index and a hex value" : "a value");
    if (l->ntok > want)
        return line_fail(l, "unexpected '%s' after the value of %s", l->tok[want], l->tok[0]);

    for (size_t i = 0; i < ref->n; i++) {
        const struct ref_entry *o = &ref->e[i];
        if (o->kind != kind)
            continue;
        if (kind != REF_MEASUREMENT)
            return line_fail(l, "%s given twice (first on line %u)", l->tok[0], o->line);
    }
    switch (kind) {
    case REF_REPORT_DIGEST:
    case REF_CERT_CHAIN_DIGEST:
        VTSM_GUARD(parse_hex(l, l->tok[0], l->tok[1], &e.val, &e.len, 48));
        if (e.len != 32 && e.len != 48) {
            free(e.val);
            return line_fail(l, "%s: %zu bytes, a SHA-256 or SHA-384 digest has 32 or 48",
                             l->tok[0], e.len);
        }
        break;
    case REF_INTERFACE_INFO: {
        /* a number, not bytes: 1..4 hex digits, an optional 0x */
        const char *s = l->tok[1];
        if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
            s += 2;
        size_t n = strlen(s);
        if (n == 0 || n > 4 || strspn(s, "0123456789abcdefABCDEF") != n)
            return line_fail(l, "interface_info: '%s' is not a 16-bit hex number", l->tok[1]);
        e.num = strtoul(s, NULL, 16);
        break;
    }
    case REF_MMIO_RANGES:
        VTSM_GUARD(parse_dec(l, "mmio_ranges", l->tok[1], 0, UINT32_MAX, &e.num));
        break;
    case REF_MEASUREMENT: {
        uint64_t idx;
        /* DSP0274 GET_MEASUREMENTS: blocks are 1..0xFE (0 is the count, 0xFF all) */
        VTSM_GUARD(parse_dec(l, "measurement index", l->tok[1], 1, 254, &idx));
        e.index = (unsigned)idx;
        for (size_t i = 0; i < ref->n; i++)
            if (ref->e[i].kind == REF_MEASUREMENT && ref->e[i].index == e.index)
                return line_fail(l, "measurement %u given twice (first on line %u)", e.index,
                                 ref->e[i].line);
        VTSM_GUARD(parse_hex(l, "measurement value", l->tok[2], &e.val, &e.len, REF_VALUE_MAX));
        break;
    }
    }
    if (ref->n == REF_ENTRIES_MAX) {
        free(e.val);
        return line_fail(l, "more than %d reference values", REF_ENTRIES_MAX);
    }
    ref->e[ref->n++] = e;
    return VTSM_OK;
}

vtsm_status vtsm_guest_ref_parse(const char *text, size_t len, const char *name,
                                 struct vtsm_guest_ref **out)
{
    vtsm_status st = VTSM_OK;
    struct vtsm_guest_ref *ref = NULL;
    char *line = NULL;
    size_t pos = 0;
    unsigned no = 0;

    VTSM_ENSURE(out, VTSM_E_INVAL, "reference: out is NULL");
    *out = NULL;
    VTSM_ENSURE(text || len == 0, VTSM_E_INVAL, "reference: NULL text");
    if (!name)
        name = "reference";
    ref = calloc(1, sizeof(*ref));
    line = malloc(REF_LINE_MAX + 1);
    VTSM_ENSURE_GOTO(ref && line, VTSM_E_NOMEM, "reference");
    snprintf(ref->name, sizeof(ref->name), "%s", name);

    while (pos < len) {
        struct ref_line l = {.name = name, .no = ++no};
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
        if (n > 0 && text[pos + n - 1] == '\r')
            n--;
        VTSM_ENSURE_GOTO(n <= REF_LINE_MAX, VTSM_E_CONFIG, "%s line %u: longer than %d characters",
                         name, no, REF_LINE_MAX);
        VTSM_ENSURE_GOTO(memchr(text + pos, '\0', n) == NULL, VTSM_E_CONFIG,
                         "%s line %u: contains a NUL byte", name, no);
        memcpy(line, text + pos, n);
        line[n] = '\0';
        pos += nl ? (size_t)(nl - (text + pos)) + 1 : len - pos;

        for (char *p = line; *p;) {
            while (*p == ' ' || *p == '\t')
                p++;
            if (!*p || *p == '#')
                break;
            /* keep the first few; parse_entry names the first one too many */
            if (l.ntok < VTSM_ARRAY_SIZE(l.tok))
                l.tok[l.ntok] = p;
            l.ntok++;
            while (*p && *p != ' ' && *p != '\t')
                p++;
            if (*p)
                *p++ = '\0';
        }
        if (l.ntok == 0)
            continue;
        VTSM_GUARD_GOTO(parse_entry(ref, &l));
    }
    VTSM_ENSURE_GOTO(ref->n > 0, VTSM_E_CONFIG,
                     "%s: no reference values (an empty reference would accept anything)", name);
    *out = ref;
    ref = NULL;
out:
    free(line);
    vtsm_guest_ref_free(ref);
    return st;
}

vtsm_status vtsm_guest_ref_load(const char *ref_path, struct vtsm_guest_ref **out)
{
    vtsm_status st = VTSM_OK;
    struct vtsm_buf text = {0};
    uint8_t chunk[4096];
    size_t got;

    VTSM_ENSURE(out, VTSM_E_INVAL, "reference: out is NULL");
    *out = NULL;
    VTSM_ENSURE(ref_path, VTSM_E_INVAL, "reference: no path");
    FILE *f = fopen(ref_path, "rb");
    VTSM_ENSURE(f, errno == ENOENT ? VTSM_E_NOT_FOUND : VTSM_E_IO,
                "cannot open reference file %s: %s", ref_path, strerror(errno));
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        VTSM_ENSURE_GOTO(text.len + got <= REF_FILE_MAX, VTSM_E_CONFIG, "%s: larger than %u bytes",
                         ref_path, REF_FILE_MAX);
        VTSM_GUARD_GOTO(vtsm_buf_append(&text, chunk, got));
    }
    VTSM_ENSURE_GOTO(!ferror(f), VTSM_E_IO, "reading %s failed", ref_path);
    st = vtsm_guest_ref_parse((const char *)text.data, text.len, ref_path, out);
out:
    fclose(f);
    vtsm_buf_free(&text);
    return st;
}

/* ---- comparing ---- */

/* The interface report of an INFO result, if it has one. */
static vtsm_status info_report(const cbor_item_t *info, struct vtsm_tdisp_report *rep, bool *have)
{
    const uint8_t *p;
    size_t n;
    *have = false;
    VTSM_GUARD(vtsm_abi_opt_bytes(info, VTSM_ABI_K_REPORT, &p, &n, have));
    if (!*have)
        return VTSM_OK;
    vtsm_status st = vtsm_tdisp_report_parse(p, n, rep);
    if (st != VTSM_OK)
        return vtsm_wrap(VTSM_E_PEER_MALFORMED, "INFO report does not parse");
    return VTSM_OK;
}

/* The value of measurement block `index` in a MeasurementRecord (the one parser,
 * proto/vtsm_spdm_meas.h: DMTF blocks, the value without its 3-byte header); *val NULL if
 * the record has no such block. *val points into rec. */
static vtsm_status record_value(const uint8_t *rec, size_t len, unsigned index, const uint8_t **val,
                                size_t *vlen)
{
    struct vtsm_spdm_meas_block *blocks;
    const struct vtsm_spdm_meas_block *b;
    size_t n;
    vtsm_status st;

    *val = NULL;
    blocks = calloc(VTSM_SPDM_MEAS_BLOCKS_MAX, sizeof(*blocks));
    VTSM_ENSURE(blocks, VTSM_E_NOMEM, "measurement blocks");
    st = vtsm_spdm_meas_parse(rec, len, SPDM_MEAS_SPEC_DMTF, 0, blocks, VTSM_SPDM_MEAS_BLOCKS_MAX,
                              &n);
    if (st != VTSM_OK) {
        st = vtsm_wrap(VTSM_E_PEER_MALFORMED, "INFO measurements.record");
    } else if ((b = vtsm_spdm_meas_find(blocks, n, index)) != NULL) {
        *val = b->value;
        *vlen = b->value_size;
    }
    free(blocks);
    return st;
}

static vtsm_status blocks_value(const cbor_item_t *blocks, unsigned index, const uint8_t **val,
                                size_t *vlen)
{
    *val = NULL;
    for (size_t i = 0; i < cbor_array_size(blocks); i++) {
        const cbor_item_t *b = cbor_array_handle(blocks)[i];
        uint64_t idx;
        if (vtsm_abi_get_uint(b, VTSM_ABI_K_INDEX, &idx) != VTSM_OK)
            return vtsm_wrap(VTSM_E_PEER_MALFORMED, "INFO measurements.blocks[%zu]", i);
        if (idx == index) {
            if (vtsm_abi_get_bytes(b, VTSM_ABI_K_VALUE, val, vlen) != VTSM_OK)
                return vtsm_wrap(VTSM_E_PEER_MALFORMED, "INFO measurements.blocks[%zu]", i);
            return VTSM_OK;
        }
    }
    return VTSM_OK;
}

static vtsm_status measurement_of(const cbor_item_t *info, unsigned index, const uint8_t **val,
                                  size_t *vlen)
{
    const cbor_item_t *m, *blocks;
    const uint8_t *rec;
    size_t rec_len;
    bool have = false;

    if (vtsm_abi_get_map(info, VTSM_ABI_K_MEASUREMENTS, &m) != VTSM_OK)
        return vtsm_wrap(VTSM_E_PEER_MALFORMED, "INFO result");
    if (vtsm_abi_opt_bytes(m, VTSM_ABI_K_RECORD, &rec, &rec_len, &have) != VTSM_OK)
        return vtsm_wrap(VTSM_E_PEER_MALFORMED, "INFO measurements");
    if (have)
        return record_value(rec, rec_len, index, val, vlen);
    if (vtsm_abi_get_array(m, VTSM_ABI_K_BLOCKS, &blocks) != VTSM_OK)
        return vtsm_wrap(VTSM_E_PEER_MALFORMED, "INFO measurements");
    return blocks_value(blocks, index, val, vlen);
}

static vtsm_status bytes_of(const cbor_item_t *info, const char *key, const uint8_t **p, size_t *n)
{
    if (vtsm_abi_get_bytes(info, key, p, n) != VTSM_OK)
        return vtsm_wrap(VTSM_E_PEER_MALFORMED, "INFO result");
    return VTSM_OK;
}

static vtsm_status compare_bytes(const struct vtsm_guest_ref *ref, const struct ref_entry *e,
                                 const char *what, const uint8_t *got, size_t got_len)
{
    char a[128], b[128];
    if (e->len == got_len && CRYPTO_memcmp(e->val, got, got_len) == 0)
        return VTSM_OK;
    return vtsm_fail(VTSM_E_POLICY_REFUSED, "%s line %u: %s mismatch: reference %s, TDI %s",
                     ref->name, e->line, what, show(a, sizeof(a), e->val, e->len),
                     show(b, sizeof(b), got, got_len));
}

static vtsm_status check_entry(const struct vtsm_guest_ref *ref, const struct ref_entry *e,
                               const cbor_item_t *info, const struct vtsm_tdisp_report *rep,
                               bool have_rep)
{
    const uint8_t *p = NULL;
    size_t n = 0;
    uint64_t got = 0;
    char what[32];

    switch (e->kind) {
    case REF_REPORT_DIGEST:
        VTSM_GUARD(bytes_of(info, VTSM_ABI_K_REPORT_DIGEST, &p, &n));
        return compare_bytes(ref, e, VTSM_ABI_K_REPORT_DIGEST, p, n);
    case REF_CERT_CHAIN_DIGEST:
        VTSM_GUARD(bytes_of(info, VTSM_ABI_K_CERT_CHAIN_DIGEST, &p, &n));
        return compare_bytes(ref, e, VTSM_ABI_K_CERT_CHAIN_DIGEST, p, n);
    case REF_INTERFACE_INFO:
        if (have_rep) {
            got = rep->interface_info;
        } else if (vtsm_abi_get_uint(info, VTSM_ABI_K_INTERFACE_INFO, &got) != VTSM_OK) {
            return vtsm_wrap(VTSM_E_PEER_MALFORMED, "INFO result has no report");
        }
        VTSM_ENSURE(got == e->num, VTSM_E_POLICY_REFUSED,
                    "%s line %u: interface_info mismatch: reference 0x%04" PRIx64
                    ", TDI 0x%04" PRIx64,
                    ref->name, e->line, e->num, got);
        return VTSM_OK;
    case REF_MMIO_RANGES:
        if (have_rep) {
            got = rep->mmio_range_count;
        } else {
            const cbor_item_t *mmio;
            if (vtsm_abi_get_array(info, VTSM_ABI_K_MMIO, &mmio) != VTSM_OK)
                return vtsm_wrap(VTSM_E_PEER_MALFORMED, "INFO result has no report");
            got = cbor_array_size(mmio);
        }
        VTSM_ENSURE(got == e->num, VTSM_E_POLICY_REFUSED,
                    "%s line %u: mmio_ranges mismatch: reference %" PRIu64 ", TDI %" PRIu64,
                    ref->name, e->line, e->num, got);
        return VTSM_OK;
    case REF_MEASUREMENT:
        VTSM_GUARD(measurement_of(info, e->index, &p, &n));
        snprintf(what, sizeof(what), "measurement %u", e->index);
        VTSM_ENSURE(p != NULL, VTSM_E_POLICY_REFUSED,
                    "%s line %u: measurement %u: the TDI reports no block %u", ref->name, e->line,
                    e->index, e->index);
        return compare_bytes(ref, e, what, p, n);
    }
    return vtsm_fail(VTSM_E_INTERNAL, "reference kind %d", (int)e->kind);
}

vtsm_status vtsm_guest_ref_check_cbor(const struct vtsm_guest_ref *ref,
                                      const cbor_item_t *info_result)
{
    struct vtsm_tdisp_report *rep = NULL;
    bool have_rep = false;
    vtsm_status st = VTSM_OK;

    VTSM_ENSURE(ref && info_result, VTSM_E_INVAL, "reference check: NULL argument");
    VTSM_ENSURE(cbor_isa_map(info_result), VTSM_E_PEER_MALFORMED, "INFO result is not a map");
    rep = calloc(1, sizeof(*rep));
    VTSM_ENSURE(rep, VTSM_E_NOMEM, "interface report");
    VTSM_GUARD_GOTO(info_report(info_result, rep, &have_rep));
    for (size_t i = 0; i < ref->n; i++)
        VTSM_GUARD_GOTO(check_entry(ref, &ref->e[i], info_result, rep, have_rep));
out:
    free(rep);
    return st;
}

vtsm_status vtsm_guest_check_reference_cbor(const cbor_item_t *info_result, const char *ref_path)
{
    struct vtsm_guest_ref *ref = NULL;
    VTSM_GUARD(vtsm_guest_ref_load(ref_path, &ref));
    vtsm_status st = vtsm_guest_ref_check_cbor(ref, info_result);
    vtsm_guest_ref_free(ref);
    return st;
}

/* ---- the decision ---- */

void vtsm_guest_decision_clear(struct vtsm_guest_decision *d)
{
    if (!d)
        return;
    vtsm_result_free(d->info);
    vtsm_result_free(d->claims);
    memset(d, 0, sizeof(*d));
}

/* claims[key] is a byte string equal to want (E_AUTH otherwise). */
static vtsm_status claim_bytes(const cbor_item_t *claims, const char *key, const uint8_t **p,
                               size_t *n)
{
    if (vtsm_abi_get_bytes(claims, key, p, n) != VTSM_OK)
        return vtsm_wrap(VTSM_E_PEER_MALFORMED, "token claims");
    return VTSM_OK;
}

/* The claims are about us and this TDI, from a locked interface. */
static vtsm_status check_claims(const struct vtsm_guest *g, const cbor_item_t *claims,
                                const char *dev, uint32_t tdi)
{
    uint64_t c_tvm, c_tdi;
    bool after_lock;
    char c_dev[VTSM_ABI_DEV_BUF], state[32];
    const uint8_t *id;
    size_t id_len;
    uint8_t want_id[32];

    if (vtsm_abi_get_uint(claims, VTSM_ABI_K_TVM, &c_tvm) != VTSM_OK ||
        vtsm_abi_get_tstr(claims, VTSM_ABI_K_DEV, c_dev, sizeof(c_dev)) != VTSM_OK ||
        vtsm_abi_get_uint(claims, VTSM_ABI_K_TDI, &c_tdi) != VTSM_OK ||
        vtsm_abi_get_tstr(claims, VTSM_ABI_K_STATE, state, sizeof(state)) != VTSM_OK ||
        vtsm_abi_get_bool(claims, VTSM_ABI_K_AFTER_LOCK, &after_lock) != VTSM_OK)
        return vtsm_wrap(VTSM_E_PEER_MALFORMED, "token claims");
    VTSM_GUARD(claim_bytes(claims, VTSM_ABI_K_TVM_IDENTITY, &id, &id_len));
    vtsm_guest_identity(g, want_id);
    VTSM_ENSURE(c_tvm == vtsm_guest_tvm(g), VTSM_E_AUTH,
                "token is for TVM %" PRIu64 ", this is TVM %" PRIu32, c_tvm, vtsm_guest_tvm(g));
    VTSM_ENSURE(id_len == sizeof(want_id) && CRYPTO_memcmp(id, want_id, sizeof(want_id)) == 0,
                VTSM_E_AUTH, "token tvm_identity is not SHA-256 of this guest's key");
    VTSM_ENSURE(vtsm_abi_dev_same(c_dev, dev) && c_tdi == tdi, VTSM_E_AUTH,
                "token is about %s TDI %" PRIu64 ", the request was %s TDI %" PRIu32, c_dev, c_tdi,
                dev, tdi);
    VTSM_ENSURE(after_lock, VTSM_E_PEER_STATE,
                "token measurements were not taken after LOCK_INTERFACE (after_lock false)");
    VTSM_ENSURE(!strcmp(state, "CONFIG_LOCKED") || !strcmp(state, "RUN"), VTSM_E_PEER_STATE,
                "token says the TDI is %s; evidence counts only from CONFIG_LOCKED or RUN", state);
    return VTSM_OK;
}

/* info[data_key] hashes to claims[digest_key] (and info[digest_key], when present, is
 * that same digest). */
static vtsm_status bind_digest(const cbor_item_t *info, const cbor_item_t *claims,
                               const char *data_key, const char *info_digest_key,
                               const char *claim_key)
{
    const uint8_t *data, *claim, *idig;
    size_t data_len, claim_len, idig_len;
    bool have = false;
    uint8_t md[VTSM_HASH_MAX];
    char what[96];

    VTSM_GUARD(claim_bytes(claims, claim_key, &claim, &claim_len));
    if (info_digest_key) {
        if (vtsm_abi_opt_bytes(info, info_digest_key, &idig, &idig_len, &have) != VTSM_OK)
            return vtsm_wrap(VTSM_E_PEER_MALFORMED, "INFO result");
        VTSM_ENSURE(!have || (idig_len == claim_len && CRYPTO_memcmp(idig, claim, claim_len) == 0),
                    VTSM_E_PEER_DIGEST, "INFO %s differs from the token's %s", info_digest_key,
                    claim_key);
    }
    if (vtsm_abi_get_bytes(info, data_key, &data, &data_len) != VTSM_OK)
        return vtsm_wrap(VTSM_E_PEER_MALFORMED, "INFO result");
    snprintf(what, sizeof(what), "token %s", claim_key);
    VTSM_GUARD(hash_like(data, data_len, claim_len, md, what));
    VTSM_ENSURE(CRYPTO_memcmp(md, claim, claim_len) == 0, VTSM_E_PEER_DIGEST,
                "INFO %s does not hash to the token's %s", data_key, claim_key);
    return VTSM_OK;
}

/* INFO's slots (every provisioned certificate slot: slot, cert_chain_digest) hash, as
 * (slot byte || digest) in strictly rising slot order, to the token's slots_digest. */
static vtsm_status bind_slots(const cbor_item_t *info, const cbor_item_t *claims)
{
    const cbor_item_t *arr;
    const uint8_t *claim, *d;
    size_t claim_len, dl;
    uint8_t buf[8 * (1 + VTSM_HASH_MAX)], md[VTSM_HASH_MAX];
    size_t n = 0;
    int last = -1;

    VTSM_GUARD(claim_bytes(claims, VTSM_ABI_K_SLOTS_DIGEST, &claim, &claim_len));
    if (vtsm_abi_get_array(info, VTSM_ABI_K_SLOTS, &arr) != VTSM_OK)
        return vtsm_wrap(VTSM_E_PEER_MALFORMED, "INFO slots");
    size_t count = cbor_array_size(arr);
    VTSM_ENSURE(count <= 8 && claim_len <= VTSM_HASH_MAX, VTSM_E_PEER_MALFORMED,
                "INFO slots: %zu entries (at most 8)", count);
    for (size_t i = 0; i < count; i++) {
        const cbor_item_t *e = cbor_array_handle(arr)[i];
        uint64_t slot = 0;
        if (vtsm_abi_get_uint(e, VTSM_ABI_K_SLOT, &slot) != VTSM_OK ||
            vtsm_abi_get_bytes(e, VTSM_ABI_K_CERT_CHAIN_DIGEST, &d, &dl) != VTSM_OK)
            return vtsm_wrap(VTSM_E_PEER_MALFORMED, "INFO slots entry %zu", i);
        VTSM_ENSURE(slot < 8 && (int)slot > last && dl == claim_len, VTSM_E_PEER_MALFORMED,
                    "INFO slots entry %zu: slot %" PRIu64 " with a %zu-byte digest", i, slot, dl);
        last = (int)slot;
        buf[n++] = (uint8_t)slot;
        memcpy(buf + n, d, dl);
        n += dl;
    }
    VTSM_GUARD(hash_like(buf, n, claim_len, md, "token slots_digest"));
    VTSM_ENSURE(CRYPTO_memcmp(md, claim, claim_len) == 0, VTSM_E_PEER_DIGEST,
                "INFO slots do not hash to the token's slots_digest");
    return VTSM_OK;
}

/* Every INFO field the reference check reads is bound to the signed claims. */
static vtsm_status bind_info(const cbor_item_t *info, const cbor_item_t *claims,
                             const uint8_t nonce[VTSM_GUEST_NONCE_SIZE])
{
    const cbor_item_t *m;
    const uint8_t *mn;
    size_t mn_len;
    bool have = false;

    VTSM_GUARD(bind_digest(info, claims, VTSM_ABI_K_REPORT, VTSM_ABI_K_REPORT_DIGEST,
                           VTSM_ABI_K_REPORT_DIGEST));
    VTSM_GUARD(bind_digest(info, claims, VTSM_ABI_K_CERT_CHAIN, VTSM_ABI_K_CERT_CHAIN_DIGEST,
                           VTSM_ABI_K_CERT_CHAIN_DIGEST));
    if (vtsm_abi_get_map(info, VTSM_ABI_K_MEASUREMENTS, &m) != VTSM_OK)
        return vtsm_wrap(VTSM_E_PEER_MALFORMED, "INFO result");
    VTSM_GUARD(bind_digest(m, claims, VTSM_ABI_K_RECORD, NULL, VTSM_ABI_K_MEASUREMENTS_DIGEST));
    if (vtsm_abi_find(m, VTSM_ABI_K_TRANSCRIPT))
        VTSM_GUARD(bind_digest(m, claims, VTSM_ABI_K_TRANSCRIPT, NULL,
                               VTSM_ABI_K_MEASUREMENT_TRANSCRIPT_DIGEST));
    if (vtsm_abi_opt_bytes(m, VTSM_ABI_K_NONCE, &mn, &mn_len, &have) != VTSM_OK)
        return vtsm_wrap(VTSM_E_PEER_MALFORMED, "INFO measurements");
    /* the fresh GET_MEASUREMENTS used the guest nonce as its SPDM nonce */
    VTSM_ENSURE(!have || (mn_len == VTSM_GUEST_NONCE_SIZE &&
                          CRYPTO_memcmp(mn, nonce, VTSM_GUEST_NONCE_SIZE) == 0),
                VTSM_E_PEER_NONCE, "INFO measurements.nonce is not this request's nonce");
    /* what a later ACCEPT carries (remembered from this result) is what the token signs */
    static const char *const same[] = {VTSM_ABI_K_MEASUREMENTS_DIGEST,
                                       VTSM_ABI_K_LOCK_NONCE_DIGEST};
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
        const uint8_t *a, *c;
        size_t al, cl;
        bool ha = false, hc = false;
        if (vtsm_abi_opt_bytes(info, same[i], &a, &al, &ha) != VTSM_OK ||
            vtsm_abi_opt_bytes(claims, same[i], &c, &cl, &hc) != VTSM_OK)
            return vtsm_wrap(VTSM_E_PEER_MALFORMED, "INFO result");
        VTSM_ENSURE(!ha || (hc && al == cl && CRYPTO_memcmp(a, c, al) == 0), VTSM_E_PEER_DIGEST,
                    "INFO %s differs from the token's", same[i]);
    }
    /* the session's evidence, when the TSM sends it: VCA and KEY_EXCHANGE transcripts */
    if (vtsm_abi_find(claims, VTSM_ABI_K_VCA_DIGEST) && vtsm_abi_find(info, VTSM_ABI_K_VCA))
        VTSM_GUARD(bind_digest(info, claims, VTSM_ABI_K_VCA, VTSM_ABI_K_VCA_DIGEST,
                               VTSM_ABI_K_VCA_DIGEST));
    if (vtsm_abi_find(claims, VTSM_ABI_K_KEX_TRANSCRIPT_DIGEST) &&
        vtsm_abi_get_map(info, VTSM_ABI_K_KEX, &m) == VTSM_OK)
        VTSM_GUARD(
            bind_digest(m, claims, VTSM_ABI_K_TRANSCRIPT, NULL, VTSM_ABI_K_KEX_TRANSCRIPT_DIGEST));
    /* every provisioned slot's digest, when the TSM sends them */
    if (vtsm_abi_find(claims, VTSM_ABI_K_SLOTS_DIGEST) && vtsm_abi_find(info, VTSM_ABI_K_SLOTS))
        VTSM_GUARD(bind_slots(info, claims));
    return VTSM_OK;
}

vtsm_status vtsm_guest_check_evidence_cbor(const struct vtsm_guest *g, const cbor_item_t *info,
                                           const char *dev, uint32_t tdi,
                                           const uint8_t nonce[VTSM_GUEST_NONCE_SIZE],
                                           const struct vtsm_guest_ref *ref, X509 *tsm_cert,
                                           cbor_item_t **claims_out)
{
    const uint8_t *token;
    size_t token_len;
    cbor_item_t *claims = NULL;
    vtsm_status st;

    if (claims_out)
        *claims_out = NULL;
    VTSM_ENSURE(g && info && dev && nonce, VTSM_E_INVAL, "check evidence: NULL argument");
    VTSM_ENSURE(cbor_isa_map(info), VTSM_E_PEER_MALFORMED, "INFO result is not a map");
    if (vtsm_abi_get_bytes(info, VTSM_ABI_K_TOKEN, &token, &token_len) != VTSM_OK)
        return vtsm_wrap(VTSM_E_PEER_MALFORMED, "INFO with a nonce returned no token");
    st = vtsm_guest_verify_token_cbor(token, token_len, tsm_cert, nonce, &claims);
    if (st == VTSM_OK)
        st = check_claims(g, claims, dev, tdi);
    if (st == VTSM_OK)
        st = bind_info(info, claims, nonce);
    if (st == VTSM_OK && ref)
        st = vtsm_guest_ref_check_cbor(ref, info);
    if (st == VTSM_OK && claims_out) {
        *claims_out = claims;
        claims = NULL;
    }
    if (claims)
        cbor_decref(&claims);
    return st;
}

static vtsm_status verdict(struct vtsm_guest_decision *d, vtsm_status why)
{
    d->verdict = why == VTSM_OK ? VTSM_GUEST_ACCEPT : VTSM_GUEST_REJECT;
    d->why = why;
    if (why != VTSM_OK) {
        snprintf(d->reason, sizeof(d->reason), "%s", vtsm_err_detail());
        d->rule = vtsm_err_status() == why ? vtsm_err_rule() : vtsm_rule_of_status(why);
    }
    return VTSM_OK;
}

vtsm_status vtsm_guest_decide(struct vtsm_guest *g, struct vtsm_host *relay, const char *dev,
                              uint32_t tdi, const struct vtsm_guest_ref *ref, X509 *tsm_cert,
                              struct vtsm_guest_decision *d)
{
    uint8_t nonce[VTSM_GUEST_NONCE_SIZE];
    vtsm_status st;

    VTSM_ENSURE(d, VTSM_E_INVAL, "decide: decision is NULL");
    memset(d, 0, sizeof(*d));
    VTSM_ENSURE(g && relay && dev, VTSM_E_INVAL, "decide: NULL argument");
    VTSM_GUARD(vtsm_random(nonce, sizeof(nonce)));

    st = vtsm_guest_call(g, relay, VTSM_ABI_GOP_INFO, dev, tdi, nonce, NULL, &d->info);
    if (st != VTSM_OK) {
        /* no evidence, no verdict; the ERROR message is of no use to the caller here */
        d->why = st;
        d->rule = vtsm_err_status() == st ? vtsm_err_rule() : vtsm_rule_of_status(st);
        snprintf(d->reason, sizeof(d->reason), "%s", vtsm_err_detail());
        vtsm_result_free(d->info);
        d->info = NULL;
        return vtsm_refail(st, "%s", d->reason);
    }
    st = vtsm_guest_check_evidence(g, d->info, dev, tdi, nonce, ref, tsm_cert, &d->claims);
    if (st != VTSM_OK)
        return verdict(d, st);
    snprintf(d->reason, sizeof(d->reason),
             "token verified; report, certificate chain and measurements bound to it; %zu "
             "reference value%s matched",
             vtsm_guest_ref_count(ref), vtsm_guest_ref_count(ref) == 1 ? "" : "s");
    return verdict(d, VTSM_OK);
}

/* ---- the public forms: results and claims as struct vtsm_result ---- */

vtsm_status vtsm_guest_verify_token(const uint8_t *token, size_t len, X509 *tsm_cert,
                                    const uint8_t nonce[VTSM_GUEST_NONCE_SIZE],
                                    struct vtsm_result **claims)
{
    cbor_item_t *c = NULL;
    if (claims)
        *claims = NULL;
    vtsm_status st = vtsm_guest_verify_token_cbor(token, len, tsm_cert, nonce, claims ? &c : NULL);
    return vtsm_result_take(st, c, claims);
}

vtsm_status vtsm_guest_ref_check(const struct vtsm_guest_ref *ref,
                                 const struct vtsm_result *info_result)
{
    return vtsm_guest_ref_check_cbor(ref, vtsm_result_item(info_result));
}

vtsm_status vtsm_guest_check_reference(const struct vtsm_result *info_result, const char *ref_path)
{
    return vtsm_guest_check_reference_cbor(vtsm_result_item(info_result), ref_path);
}

vtsm_status vtsm_guest_check_evidence(const struct vtsm_guest *g, const struct vtsm_result *info,
                                      const char *dev, uint32_t tdi,
                                      const uint8_t nonce[VTSM_GUEST_NONCE_SIZE],
                                      const struct vtsm_guest_ref *ref, X509 *tsm_cert,
                                      struct vtsm_result **claims)
{
    cbor_item_t *c = NULL;
    if (claims)
        *claims = NULL;
    vtsm_status st = vtsm_guest_check_evidence_cbor(g, vtsm_result_item(info), dev, tdi, nonce, ref,
                                                    tsm_cert, claims ? &c : NULL);
    return vtsm_result_take(st, c, claims);
}
