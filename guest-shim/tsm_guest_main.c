/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tsm-guest: act as a TVM towards the TSM. The CLI also plays the host that relays the
 * guest request (one host connection per run), so requests that reach the device need
 * its DOE responder (--doe).
 *
 *   tsm-guest keygen --key FILE
 *   tsm-guest pubkey --key FILE
 *   tsm-guest [--socket PATH] [--json] [--direct] --key FILE --tvm N list
 *   tsm-guest ... info DEV TDI [--nonce HEX | --fresh] [--reference FILE] [--doe SPEC]
 *   tsm-guest ... accept DEV TDI [--reference FILE] --doe SPEC
 *   tsm-guest ... reject DEV TDI [--reason TEXT]
 *   tsm-guest ... mmio-validate DEV TDI --range N --gpa ADDR --pages N [--shared]
 *   tsm-guest ... dma-enable DEV TDI
 *
 * --direct opens the connection with HELLO role "guest" instead (the TSM then exchanges
 * the request's DOE through this connection all the same).
 *
 * Exit codes: 0 success, 1 the TSM or the guest's policy refused, 2 usage error (also a
 * bad key or reference file), 3 the TSM (or the DOE responder) could not be reached.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "vtsm_abi.h"
#include "vtsm_crypto.h"
#include "vtsm_guard.h"
#include "vtsm_guest_cbor.h"
#include "vtsm_version.h"
#include "vtsm_host_cbor.h"

enum {
    EXIT_OK = 0,
    EXIT_REFUSED = 1,
    EXIT_USAGE = 2,
    EXIT_UNREACHABLE = 3,
};

#define ABBREV_OVER 32 /* byte strings longer than this print as length + digest */

struct cli {
    const char *socket;
    bool json;
    const char *key;
    long long tvm; /* -1: not given */
    const char *verb;
    const char *dev;
    long long tdi;
    const char *doe;
    const char *doe_dev;
    const char *nonce_hex;
    bool fresh;
    const char *reference;
    const char *reason;
    const char *tsm_cert;
    bool direct;
    /* mmio-validate */
    long long range, pages;
    unsigned long long gpa;
    bool has_gpa, shared;
};

static void usage(FILE *f)
{
    fputs("usage: tsm-guest [--socket PATH] [--json] [--direct] --key FILE [--tvm N] <command> "
          "[ARGS]\n"
          "       tsm-guest --help | --version\n"
          "options may come before or after the command; --opt=value and --opt value both work\n"
          "  keygen                          create a P-256 key at --key (mode 0600); prints\n"
          "                                  the public key (hex) for TVM_CREATE guest_key\n"
          "  pubkey                          print the public key of --key\n"
          "  list                            TDIs bound to the TVM\n"
          "  info DEV TDI [--nonce HEX|--fresh] [--reference FILE]\n"
          "                                  with a nonce the TSM signs a token: verified here\n"
          "                                  (--reference implies --fresh)\n"
          "  accept DEV TDI [--reference FILE]\n"
          "                                  with --reference: fresh evidence is verified and\n"
          "                                  compared first; any mismatch rejects the TDI\n"
          "  reject DEV TDI [--reason TEXT]\n"
          "  lock DEV TDI                    LOCK a TDI assigned to the TVM (needs --doe)\n"
          "  unlock DEV TDI                  STOP it: CONFIG_UNLOCKED, still assigned (--doe)\n"
          "  debug-read DEV TDI              the TSM's view of the TDI (scope DEBUG_READ)\n"
          "  debug-write DEV TDI             force ERROR (scope DEBUG_WRITE; debug TVMs only)\n"
          "  mmio-validate DEV TDI --range N --gpa ADDR --pages N [--shared]\n"
          "                                  validate one MMIO range of the report (index N)\n"
          "                                  where the host mapped it; --shared: not private\n"
          "  dma-enable DEV TDI              enable DMA (every range validated first)\n"
          "options for info and accept:\n"
          "  --doe tcp:HOST:PORT             the device's DOE responder (needed for info with\n"
          "                                  a nonce and for accept: this CLI relays the DOE)\n"
          "  --dev DEV                       device the DOE responder serves (default: DEV)\n"
          "  --tsm-cert PEM                  TSM certificate (default: the embedded one)\n"
          "--tvm is the number TVM_CREATE returned; every command but keygen/pubkey needs it.\n"
          "--direct connects with HELLO role \"guest\" instead of relaying as the host.\n"
          "exit: 0 ok, 1 refused (TSM or reference), 2 usage, 3 TSM or DOE responder unreachable\n",
          f);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("tsm-guest: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (try 'tsm-guest --help')\n", stderr);
    return EXIT_USAGE;
}

/* ---- output ---- */

/* One failure: a line on stderr (ending in "[rule TDI.4]" when a rule refused) and, with
 * --json, {"error": {...}} on stdout. The rule is the thread's error record's, if it
 * holds st (a TSM refusal relayed by the shim included), else the status's own. */
static void print_failure(const struct cli *c, vtsm_status st, const char *name, const char *source,
                          const char *detail)
{
    const char *rule =
        vtsm_rule_id(vtsm_err_status() == st ? vtsm_err_rule() : vtsm_rule_of_status(st));
    char tag[32] = "";
    if (rule)
        snprintf(tag, sizeof(tag), " [rule %s]", rule);
    fprintf(stderr, "tsm-guest: %s failed: %s (%s): %s%s\n", c->verb, name, source, detail, tag);
    if (!c->json)
        return;
    cbor_item_t *o = vtsm_abi_cli_error(c->verb, (uint64_t)st, name, source, detail, rule, NULL);
    if (o) {
        vtsm_abi_to_json(o, stdout, false);
        fputc('\n', stdout);
        cbor_decref(&o);
    }
}

/* A failure of ours (or of a library call), detail from vtsm_fail(). Bad input files and
 * arguments are usage errors; transport failures mean unreachable. */
static int report_local(const struct cli *c, vtsm_status st)
{
    char detail[512];
    snprintf(detail, sizeof(detail), "%s", vtsm_err_detail());
    print_failure(c, st, vtsm_status_name(st), vtsm_source_name(vtsm_status_source(st)), detail);
    switch (st) {
    case VTSM_E_INVAL:
    case VTSM_E_CONFIG:
    case VTSM_E_NOT_FOUND:
    case VTSM_E_EXISTS:
        return EXIT_USAGE;
    default:
        return vtsm_status_source(st) == VTSM_SRC_TRANSPORT ? EXIT_UNREACHABLE : EXIT_REFUSED;
    }
}

/* A guest request failed: the TSM's name and source when it reported the error, exit 3
 * if the connection to it broke. */
static int report_call(const struct cli *c, struct vtsm_host *h, vtsm_status st)
{
    const struct vtsm_host_error *e = vtsm_host_last_error(h);
    char detail[512];
    snprintf(detail, sizeof(detail), "%s", vtsm_err_detail());
    if (e->status == st) {
        print_failure(c, st, e->name, e->source, detail);
        if (!e->from_tsm && vtsm_status_source(st) == VTSM_SRC_TRANSPORT)
            return EXIT_UNREACHABLE;
        return EXIT_REFUSED;
    }
    print_failure(c, st, vtsm_status_name(st), vtsm_source_name(vtsm_status_source(st)), detail);
    return vtsm_status_source(st) == VTSM_SRC_TRANSPORT ? EXIT_UNREACHABLE : EXIT_REFUSED;
}

static void print_indent(unsigned level)
{
    for (unsigned i = 0; i < level; i++)
        fputs("  ", stdout);
}

static void print_bytes(const uint8_t *p, size_t n)
{
    uint8_t md[32];
    if (n == 0) {
        fputs("<0 bytes>", stdout);
        return;
    }
    if (n <= ABBREV_OVER) {
        for (size_t i = 0; i < n; i++)
            printf("%02x", p[i]);
        return;
    }
    printf("<%zu bytes sha256:", n);
    if (vtsm_hash(VTSM_HASH_SHA256, p, n, md) == VTSM_OK) {
        for (size_t i = 0; i < sizeof(md); i++)
            printf("%02x", md[i]);
    } else {
        fputs("?", stdout);
    }
    fputs(">", stdout);
}

static void print_item(const cbor_item_t *it, unsigned level);

static bool is_envelope_key(const char *k, size_t n)
{
    return (n == 2 && (!memcmp(k, VTSM_ABI_K_OP, 2) || !memcmp(k, VTSM_ABI_K_ID, 2))) ||
           (n == 6 && !memcmp(k, VTSM_ABI_K_STATUS, 6));
}

static void print_map(const cbor_item_t *m, unsigned level, bool skip_envelope)
{
    struct cbor_pair *pairs = cbor_map_handle(m);
    for (size_t i = 0; i < cbor_map_size(m); i++) {
        const cbor_item_t *k = pairs[i].key;
        if (!cbor_isa_string(k) || !cbor_string_is_definite(k))
            continue;
        const char *ks = (const char *)cbor_string_handle(k);
        size_t kl = cbor_string_length(k);
        if (skip_envelope && is_envelope_key(ks, kl))
            continue;
        print_indent(level);
        printf("%.*s:", (int)kl, ks);
        print_item(pairs[i].value, level);
    }
}

/* Scalars follow the key on its line; non-empty containers go below, indented. */
static void print_item(const cbor_item_t *it, unsigned level)
{
    if (cbor_isa_map(it) && cbor_map_size(it) > 0) {
        fputc('\n', stdout);
        print_map(it, level + 1, false);
        return;
    }
    if (cbor_isa_array(it) && cbor_array_size(it) > 0) {
        fputc('\n', stdout);
        for (size_t i = 0; i < cbor_array_size(it); i++) {
            const cbor_item_t *e = cbor_array_handle(it)[i];
            print_indent(level + 1);
            fputc('-', stdout);
            if (cbor_isa_map(e) && cbor_map_size(e) > 0) {
                fputc('\n', stdout);
                print_map(e, level + 2, false);
            } else {
                print_item(e, level + 1);
            }
        }
        return;
    }
    fputc(' ', stdout);
    if (cbor_isa_bytestring(it) && cbor_bytestring_is_definite(it))
        print_bytes(cbor_bytestring_handle(it), cbor_bytestring_length(it));
    else if (cbor_isa_string(it) && cbor_string_is_definite(it))
        printf("%.*s", (int)cbor_string_length(it), (const char *)cbor_string_handle(it));
    else if (cbor_isa_map(it))
        fputs("{}", stdout);
    else if (cbor_isa_array(it))
        fputs("[]", stdout);
    else
        vtsm_abi_to_json(it, stdout, false);
    fputc('\n', stdout);
}

/* A RESULT without op/id/status, plus extra fields (may be NULL), human or JSON. */
static void print_result(const struct cli *c, const cbor_item_t *res, const cbor_item_t *extra)
{
    if (!c->json) {
        if (res)
            print_map(res, 0, true);
        if (extra)
            print_map(extra, 0, false);
        return;
    }
    cbor_item_t *o = vtsm_abi_map_new();
    if (!o)
        return;
    const cbor_item_t *parts[2] = {res, extra};
    for (size_t j = 0; j < 2; j++) {
        if (!parts[j])
            continue;
        struct cbor_pair *pairs = cbor_map_handle(parts[j]);
        for (size_t i = 0; i < cbor_map_size(parts[j]); i++) {
            const cbor_item_t *k = pairs[i].key;
            char key[128];
            size_t kl = cbor_string_length(k);
            if (!cbor_isa_string(k) || kl >= sizeof(key))
                continue;
            memcpy(key, cbor_string_handle(k), kl);
            key[kl] = '\0';
            if (j == 0 && is_envelope_key(key, kl))
                continue;
            vtsm_abi_put_item(o, key, cbor_incref(pairs[i].value));
        }
    }
    vtsm_abi_to_json(o, stdout, false);
    fputc('\n', stdout);
    cbor_decref(&o);
}

/* ---- commands ---- */

static int print_pubkey(const struct cli *c)
{
    struct vtsm_guest *g = NULL;
    uint8_t pub[VTSM_GUEST_PUBKEY_SIZE];
    char hex[2 * VTSM_GUEST_PUBKEY_SIZE + 1];
    vtsm_status st = vtsm_guest_open(c->key, 0, &g);
    if (st != VTSM_OK)
        return report_local(c, st);
    vtsm_guest_pubkey(g, pub);
    vtsm_guest_close(g);
    vtsm_hex(hex, pub, sizeof(pub));
    if (c->json)
        printf("{\"guest_key\":\"%s\"}\n", hex);
    else
        printf("%s\n", hex);
    return EXIT_OK;
}

static int cmd_keygen(const struct cli *c)
{
    vtsm_status st = vtsm_guest_keygen(c->key);
    if (st != VTSM_OK)
        return report_local(c, st);
    return print_pubkey(c);
}

/* A REJECT reason must be valid UTF-8: keep printable ASCII of a detail, '?' otherwise. */
static void ascii_reason(char *out, size_t cap, const char *in)
{
    size_t n = 0;
    for (; in[n] && n + 1 < cap; n++)
        out[n] = (in[n] >= 0x20 && in[n] < 0x7f) ? in[n] : '?';
    out[n] = '\0';
}

struct session {
    struct vtsm_guest *g;
    struct vtsm_host *h;
    struct vtsm_doe_tcp *doe;
    const char *doe_dev;
    X509 *cert;
    struct vtsm_guest_ref *ref;
};

static void session_close(struct session *s)
{
    if (s->h && s->doe)
        vtsm_host_register_doe(s->h, s->doe_dev, NULL, NULL);
    vtsm_host_close(s->h);
    vtsm_doe_tcp_close(s->doe);
    vtsm_guest_close(s->g);
    X509_free(s->cert);
    vtsm_guest_ref_free(s->ref);
}

static vtsm_status load_cert(const char *path, X509 **out)
{
    FILE *f = fopen(path, "r");
    VTSM_ENSURE(f, errno == ENOENT ? VTSM_E_NOT_FOUND : VTSM_E_IO,
                "cannot open TSM certificate %s: %s", path, strerror(errno));
    *out = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    VTSM_ENSURE(*out, VTSM_E_CONFIG, "%s holds no PEM certificate", path);
    return VTSM_OK;
}

/* Everything a request needs, checked before the first byte goes to the TSM: the
 * reference file and certificate, the key, the relay connection, the DOE responder.
 * Returns -1 when ready, else the exit code (the failure is reported). */
static int session_open(const struct cli *c, struct session *s)
{
    vtsm_status st;

    if (c->reference && (st = vtsm_guest_ref_load(c->reference, &s->ref)) != VTSM_OK)
        return report_local(c, st);
    if (c->tsm_cert && (st = load_cert(c->tsm_cert, &s->cert)) != VTSM_OK)
        return report_local(c, st);
    if ((st = vtsm_guest_open(c->key, (uint32_t)c->tvm, &s->g)) != VTSM_OK)
        return report_local(c, st);
    /* by default this CLI is the host that relays the request; --direct speaks as the guest */
    struct vtsm_host_config cfg = {.socket_path = c->socket, .client = "tsm-guest"};
    st = c->direct ? vtsm_guest_connect(c->socket, "tsm-guest", &s->h)
                   : vtsm_host_open_cfg(&cfg, &s->h);
    if (st != VTSM_OK) {
        /* an ERROR answer to HELLO is the TSM's; anything else means unreachable */
        int rc = report_local(c, st);
        return vtsm_status_source(st) == VTSM_SRC_ABI ? rc : EXIT_UNREACHABLE;
    }
    if (c->doe) {
        s->doe_dev = c->doe_dev ? c->doe_dev : c->dev;
        if ((st = vtsm_doe_tcp_open(c->doe, &s->doe)) != VTSM_OK) {
            int rc = report_local(c, st);
            return st == VTSM_E_INVAL ? EXIT_USAGE : (rc == EXIT_USAGE ? rc : EXIT_UNREACHABLE);
        }
        if ((st = vtsm_host_register_doe(s->h, s->doe_dev, vtsm_doe_tcp_fn, s->doe)) != VTSM_OK)
            return report_local(c, st);
    }
    return -1;
}

static int cmd_simple(const struct cli *c, struct session *s, unsigned gop)
{
    cbor_item_t *res = NULL;
    vtsm_status st =
        vtsm_guest_call_cbor(s->g, s->h, gop, c->dev, c->dev ? c->tdi : VTSM_GUEST_NO_TDI, NULL,
                             gop == VTSM_ABI_GOP_REJECT ? c->reason : NULL, &res);
    if (st != VTSM_OK) {
        int rc = report_call(c, s->h, st);
        if (res)
            cbor_decref(&res);
        return rc;
    }
    print_result(c, res, NULL);
    cbor_decref(&res);
    return EXIT_OK;
}

/* mmio-validate / dma-enable */
static int cmd_mmio(const struct cli *c, struct session *s, bool validate)
{
    cbor_item_t *res = NULL;
    struct vtsm_guest_mmio m = {.range = (uint32_t)c->range,
                                .gpa = c->gpa,
                                .pages = (uint64_t)c->pages,
                                .shared = c->shared};
    vtsm_status st =
        validate ? vtsm_guest_mmio_validate_cbor(s->g, s->h, c->dev, (uint32_t)c->tdi, &m, &res)
                 : vtsm_guest_dma_enable_cbor(s->g, s->h, c->dev, (uint32_t)c->tdi, &res);
    if (st != VTSM_OK) {
        int rc = report_call(c, s->h, st);
        if (res)
            cbor_decref(&res);
        return rc;
    }
    print_result(c, res, NULL);
    cbor_decref(&res);
    return EXIT_OK;
}

static int cmd_info(const struct cli *c, struct session *s)
{
    uint8_t nonce[VTSM_GUEST_NONCE_SIZE];
    bool with_nonce = c->nonce_hex || c->fresh || c->reference;
    cbor_item_t *res = NULL, *claims = NULL, *extra = NULL;
    vtsm_status st;
    int rc;

    if (c->nonce_hex)
        vtsm_unhex(nonce, sizeof(nonce), c->nonce_hex); /* checked by main */
    else if (with_nonce && (st = vtsm_random(nonce, sizeof(nonce))) != VTSM_OK)
        return report_local(c, st);
    st = vtsm_guest_call_cbor(s->g, s->h, VTSM_ABI_GOP_INFO, c->dev, c->tdi,
                              with_nonce ? nonce : NULL, NULL, &res);
    if (st != VTSM_OK) {
        rc = report_call(c, s->h, st);
        goto out;
    }
    if (with_nonce) {
        st = vtsm_guest_check_evidence_cbor(s->g, res, c->dev, (uint32_t)c->tdi, nonce, s->ref,
                                            s->cert, &claims);
        if (st != VTSM_OK) {
            rc = report_local(c, st);
            if (rc == EXIT_USAGE)
                rc = EXIT_REFUSED;
            goto out;
        }
        extra = vtsm_abi_map_new();
        if (extra && vtsm_abi_put_bool(extra, VTSM_ABI_K_TOKEN_VERIFIED, true) == VTSM_OK && s->ref)
            vtsm_abi_put_uint(extra, VTSM_ABI_K_REFERENCE_VALUES_MATCHED,
                              vtsm_guest_ref_count(s->ref));
        if (extra && c->json)
            vtsm_abi_put_item(extra, VTSM_ABI_K_CLAIMS, cbor_incref(claims));
    }
    print_result(c, res, c->json ? extra : NULL);
    if (with_nonce && !c->json) {
        puts("token verified");
        if (s->ref)
            printf("reference values match (%zu checked)\n", vtsm_guest_ref_count(s->ref));
    }
    rc = EXIT_OK;
out:
    if (res)
        cbor_decref(&res);
    if (claims)
        cbor_decref(&claims);
    if (extra)
        cbor_decref(&extra);
    return rc;
}

static int cmd_accept(const struct cli *c, struct session *s)
{
    struct vtsm_guest_decision d;
    char reason[VTSM_GUEST_REASON_MAX];
    cbor_item_t *res = NULL;
    vtsm_status st;
    int rc;

    if (!s->ref)
        return cmd_simple(c, s, VTSM_ABI_GOP_ACCEPT);
    st = vtsm_guest_decide(s->g, s->h, c->dev, (uint32_t)c->tdi, s->ref, s->cert, &d);
    if (st != VTSM_OK) {
        rc = report_call(c, s->h, st);
        vtsm_guest_decision_clear(&d);
        return rc;
    }
    if (d.verdict == VTSM_GUEST_ACCEPT) {
        vtsm_guest_decision_clear(&d);
        return cmd_simple(c, s, VTSM_ABI_GOP_ACCEPT);
    }
    /* the evidence does not match: tell the host side, then fail with the reason */
    ascii_reason(reason, sizeof(reason), d.reason);
    st = vtsm_guest_call_cbor(s->g, s->h, VTSM_ABI_GOP_REJECT, c->dev, c->tdi, NULL, reason, &res);
    if (res)
        cbor_decref(&res);
    if (st != VTSM_OK) {
        rc = report_call(c, s->h, st);
    } else {
        char detail[600];
        snprintf(detail, sizeof(detail), "%s; TDI rejected", d.reason);
        print_failure(c, d.why, vtsm_status_name(d.why),
                      vtsm_source_name(vtsm_status_source(d.why)), detail);
        rc = EXIT_REFUSED;
    }
    vtsm_guest_decision_clear(&d);
    return rc;
}

static bool parse_ll(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 0);
    if (errno || end == s || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    struct cli c = {.tvm = -1, .tdi = -1, .range = -1, .pages = -1};
    const char *pos[3] = {0};
    int npos = 0;

    enum {
        O_SOCKET = 1,
        O_JSON,
        O_HELP,
        O_VERSION,
        O_DIRECT,
        O_KEY,
        O_TVM,
        O_DOE,
        O_DEV,
        O_NONCE,
        O_FRESH,
        O_REFERENCE,
        O_REASON,
        O_TSM_CERT,
        O_RANGE,
        O_GPA,
        O_PAGES,
        O_SHARED,
    };
    static const struct option opts[] = {
        {"socket", required_argument, NULL, O_SOCKET},
        {"json", no_argument, NULL, O_JSON},
        {"help", no_argument, NULL, O_HELP},
        {"version", no_argument, NULL, O_VERSION},
        {"direct", no_argument, NULL, O_DIRECT},
        {"key", required_argument, NULL, O_KEY},
        {"tvm", required_argument, NULL, O_TVM},
        {"doe", required_argument, NULL, O_DOE},
        {"dev", required_argument, NULL, O_DEV},
        {"nonce", required_argument, NULL, O_NONCE},
        {"fresh", no_argument, NULL, O_FRESH},
        {"reference", required_argument, NULL, O_REFERENCE},
        {"reason", required_argument, NULL, O_REASON},
        {"tsm-cert", required_argument, NULL, O_TSM_CERT},
        {"range", required_argument, NULL, O_RANGE},
        {"gpa", required_argument, NULL, O_GPA},
        {"pages", required_argument, NULL, O_PAGES},
        {"shared", no_argument, NULL, O_SHARED},
        {NULL, 0, NULL, 0},
    };
    int o;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'h':
        case O_HELP:
            usage(stdout);
            return EXIT_OK;
        case O_VERSION:
            printf("tsm-guest (vtsm) %s\n", vtsm_version());
            return EXIT_OK;
        case O_SOCKET:
            c.socket = optarg;
            break;
        case O_JSON:
            c.json = true;
            break;
        case O_DIRECT:
            c.direct = true;
            break;
        case O_KEY:
            c.key = optarg;
            break;
        case O_TVM:
            if (!parse_ll(optarg, 1, UINT32_MAX, &c.tvm))
                return usage_error("bad --tvm '%s' (1..%u)", optarg, UINT32_MAX);
            break;
        case O_DOE:
            c.doe = optarg;
            break;
        case O_DEV:
            c.doe_dev = optarg;
            break;
        case O_NONCE:
            c.nonce_hex = optarg;
            break;
        case O_FRESH:
            c.fresh = true;
            break;
        case O_REFERENCE:
            c.reference = optarg;
            break;
        case O_REASON:
            c.reason = optarg;
            break;
        case O_TSM_CERT:
            c.tsm_cert = optarg;
            break;
        case O_RANGE:
            if (!parse_ll(optarg, 0, VTSM_ABI_MMIO_RANGES_MAX - 1, &c.range))
                return usage_error("bad --range '%s' (0..%u)", optarg,
                                   VTSM_ABI_MMIO_RANGES_MAX - 1);
            break;
        case O_GPA: {
            char *end = NULL;
            errno = 0;
            c.gpa = strtoull(optarg, &end, 0);
            if (errno || !end || *end || optarg[0] == '-' || !optarg[0])
                return usage_error("bad --gpa '%s' (an address, 0x... or decimal)", optarg);
            c.has_gpa = true;
            break;
        }
        case O_PAGES:
            if (!parse_ll(optarg, 1, UINT32_MAX, &c.pages))
                return usage_error("bad --pages '%s' (1..%u)", optarg, UINT32_MAX);
            break;
        case O_SHARED:
            c.shared = true;
            break;
        default:
            return usage_error("option '%s' is unknown or needs a value", argv[optind - 1]);
        }
    }
    /* getopt_long moved the command and its arguments to the end */
    for (int i = optind; i < argc; i++) {
        if (!c.verb)
            c.verb = argv[i];
        else if (npos < 3)
            pos[npos++] = argv[i];
        else
            return usage_error("unexpected argument '%s'", argv[i]);
    }
    if (!c.verb)
        return usage_error("%s", "missing command");

    static const char *const verbs[] = {"keygen",     "pubkey",      "list",          "info",
                                        "accept",     "reject",      "lock",          "unlock",
                                        "debug-read", "debug-write", "mmio-validate", "dma-enable"};
    static const unsigned verb_gop[] = {0,
                                        0,
                                        VTSM_ABI_GOP_LIST,
                                        VTSM_ABI_GOP_INFO,
                                        VTSM_ABI_GOP_ACCEPT,
                                        VTSM_ABI_GOP_REJECT,
                                        VTSM_ABI_GOP_LOCK,
                                        VTSM_ABI_GOP_UNLOCK,
                                        VTSM_ABI_GOP_DEBUG_READ,
                                        VTSM_ABI_GOP_DEBUG_WRITE,
                                        VTSM_ABI_GOP_MMIO_VALIDATE,
                                        VTSM_ABI_GOP_DMA_ENABLE};
    _Static_assert(VTSM_ARRAY_SIZE(verbs) == VTSM_ARRAY_SIZE(verb_gop), "one gop per command");
    size_t v = 0;
    while (v < VTSM_ARRAY_SIZE(verbs) && strcmp(c.verb, verbs[v]) != 0)
        v++;
    if (v == VTSM_ARRAY_SIZE(verbs))
        return usage_error("unknown command '%s'", c.verb);
    bool key_only = v <= 1, is_info = v == 3, is_accept = v == 4, is_reject = v == 5;
    int want_pos = (key_only || v == 2) ? 0 : 2;
    if (npos != want_pos)
        return usage_error(want_pos ? "%s needs DEV TDI" : "%s takes no arguments", c.verb);
    if (!c.key)
        return usage_error("%s needs --key FILE", c.verb);
    if (!key_only && c.tvm < 0)
        return usage_error("%s needs --tvm N (the number TVM_CREATE returned)", c.verb);
    if (want_pos) {
        c.dev = pos[0];
        if (vtsm_abi_check_dev(c.dev) != VTSM_OK)
            return usage_error("bad device name '%s' (1..64 of [A-Za-z0-9:._-])", c.dev);
        if (!parse_ll(pos[1], 0, UINT32_MAX, &c.tdi))
            return usage_error("bad TDI '%s' (0..%u)", pos[1], UINT32_MAX);
    }
    bool is_mmio = !strcmp(c.verb, "mmio-validate"), is_dma = !strcmp(c.verb, "dma-enable");
    if (is_mmio && (c.range < 0 || !c.has_gpa || c.pages < 1))
        return usage_error("mmio-validate needs --range N --gpa ADDR --pages N");
    if (!is_mmio && (c.range >= 0 || c.has_gpa || c.pages >= 0 || c.shared))
        return usage_error("--range, --gpa, --pages and --shared are for mmio-validate");
    if ((c.nonce_hex || c.fresh) && !is_info)
        return usage_error("--nonce / --fresh are for info");
    if (c.nonce_hex && c.fresh)
        return usage_error("give --nonce HEX or --fresh, not both");
    if (c.nonce_hex) {
        uint8_t tmp[VTSM_GUEST_NONCE_SIZE];
        if (strlen(c.nonce_hex) != 2 * VTSM_GUEST_NONCE_SIZE ||
            vtsm_unhex(tmp, sizeof(tmp), c.nonce_hex) != VTSM_GUEST_NONCE_SIZE)
            return usage_error("bad --nonce (%u bytes as %u hex digits)", VTSM_GUEST_NONCE_SIZE,
                               2 * VTSM_GUEST_NONCE_SIZE);
    }
    if (c.reference && !is_info && !is_accept)
        return usage_error("--reference is for info and accept");
    if (c.reason && !is_reject)
        return usage_error("--reason is for reject");
    if ((c.doe || c.doe_dev) && !is_info && !is_accept && verb_gop[v] != VTSM_ABI_GOP_LOCK &&
        verb_gop[v] != VTSM_ABI_GOP_UNLOCK) /* lock and unlock reach the device */
        return usage_error("--doe and --dev are for info, accept, lock and unlock");
    if (c.tsm_cert && !is_info && !is_accept)
        return usage_error("--tsm-cert is for info and accept");
    if (c.doe_dev && !c.doe)
        return usage_error("--dev names the device --doe serves; give --doe too");
    if (c.doe_dev && vtsm_abi_check_dev(c.doe_dev) != VTSM_OK)
        return usage_error("bad --dev '%s'", c.doe_dev);
    if (c.doe_dev && strcmp(c.doe_dev, c.dev) != 0)
        return usage_error("--dev %s is not the TDI's device %s: the TSM exchanges DOE with "
                           "the TDI's device",
                           c.doe_dev, c.dev);
    /* lock and unlock reach the device too */
    bool is_lock = verb_gop[v] == VTSM_ABI_GOP_LOCK || verb_gop[v] == VTSM_ABI_GOP_UNLOCK;
    bool needs_doe = is_accept || is_lock || (is_info && (c.nonce_hex || c.fresh || c.reference));
    if (needs_doe && !c.doe)
        return usage_error("%s%s reaches the device: give --doe tcp:HOST:PORT (this CLI relays "
                           "its DOE exchanges)",
                           c.verb, is_info ? " with a nonce" : "");

    if (!strcmp(c.verb, "keygen"))
        return cmd_keygen(&c);
    if (!strcmp(c.verb, "pubkey"))
        return print_pubkey(&c);

    struct session s = {0};
    int rc = session_open(&c, &s);
    if (rc < 0) {
        if (is_info)
            rc = cmd_info(&c, &s);
        else if (is_accept)
            rc = cmd_accept(&c, &s);
        else if (is_mmio || is_dma)
            rc = cmd_mmio(&c, &s, is_mmio);
        else
            rc = cmd_simple(&c, &s, verb_gop[v]);
    }
    session_close(&s);
    return rc;
}
