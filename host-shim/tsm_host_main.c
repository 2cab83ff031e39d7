/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tsm-host: drive the TSM as a host would, servicing DOE through an spdm-emu responder.
 *
 *   tsm-host [--socket PATH] [--json] connect DEV --doe tcp:HOST:PORT [--root-port N]
 *            [--slot N] [--allow-untrusted] [--version 1.2|1.3]
 *   tsm-host [--socket PATH] [--json] reclaim DEV --doe tcp:HOST:PORT
 *   tsm-host [--socket PATH] [--json] status [DEV]
 *
 * Exit codes: 0 success, 1 the TSM reported an error, 2 usage error, 3 the TSM (or the
 * DOE responder) could not be reached.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "vtsm_abi.h"
#include "vtsm_host.h"

enum {
    EXIT_OK = 0,
    EXIT_TSM_ERROR = 1,
    EXIT_USAGE = 2,
    EXIT_UNREACHABLE = 3,
};

#define ABBREV_OVER 32 /* byte strings longer than this print as length + digest */

struct cli {
    const char *socket;
    bool json;
    const char *verb;
    const char *dev;
    const char *doe;
    long root_port;
    long slot;
    bool allow_untrusted;
    unsigned version; /* 0x12 / 0x13, 0 = TSM default */
};

static void usage(FILE *f)
{
    fputs("usage: tsm-host [--socket PATH] [--json] <command>\n"
          "  connect DEV --doe tcp:HOST:PORT [--root-port N] [--slot N] [--allow-untrusted]\n"
          "              [--version 1.2|1.3]\n"
          "  reclaim DEV --doe tcp:HOST:PORT\n"
          "  status [DEV]\n"
          "exit: 0 ok, 1 TSM error, 2 usage, 3 TSM or DOE responder unreachable\n",
          f);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("tsm-host: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    usage(stderr);
    return EXIT_USAGE;
}

/* ---- output ---- */

static void print_result(const struct cli *c, const cbor_item_t *res);

/* The part of an ERROR message beyond the error itself (tsmd attaches the evidence of a
 * refused device_connect there); NULL if there is none. */
static cbor_item_t *error_report(const cbor_item_t *msg)
{
    static const char *const error_keys[] = {
        "op", "id", "status", "name", "source", "detail", VTSM_ABI_K_REQUEST_OP};
    if (!msg || !cbor_isa_map(msg))
        return NULL;
    cbor_item_t *rep = vtsm_abi_map_new();
    size_t n = cbor_map_size(msg), kept = 0;
    struct cbor_pair *pairs = cbor_map_handle(msg);
    for (size_t i = 0; rep && i < n; i++) {
        if (!cbor_isa_string(pairs[i].key))
            continue;
        size_t kl = cbor_string_length(pairs[i].key);
        const char *k = (const char *)cbor_string_handle(pairs[i].key);
        bool skip = false;
        for (size_t j = 0; j < sizeof(error_keys) / sizeof(error_keys[0]); j++)
            skip |= strlen(error_keys[j]) == kl && memcmp(error_keys[j], k, kl) == 0;
        if (skip)
            continue;
        char key[64];
        if (kl >= sizeof(key))
            continue;
        memcpy(key, k, kl);
        key[kl] = '\0';
        if (vtsm_abi_put_item(rep, key, cbor_incref(pairs[i].value)) == VTSM_OK)
            kept++;
    }
    if (rep && kept == 0)
        cbor_decref(&rep);
    return rep;
}

/* Report a failure: one line on stderr, and with --json an {"error":{...}} object
 * (plus "report" when the TSM attached one). Without --json an attached report is
 * printed like a result. */
static int report_msg(const struct cli *c, vtsm_status st, const char *name, const char *source,
                      const char *detail, const cbor_item_t *errmsg);
static int report(const struct cli *c, vtsm_status st, const char *name, const char *source,
                  const char *detail)
{
    return report_msg(c, st, name, source, detail, NULL);
}

static int report_msg(const struct cli *c, vtsm_status st, const char *name, const char *source,
                      const char *detail, const cbor_item_t *errmsg)
{
    cbor_item_t *rep = error_report(errmsg);
    fprintf(stderr, "tsm-host: %s failed: %s (%s): %s\n", c->verb, name, source, detail);
    if (c->json) {
        cbor_item_t *o = vtsm_abi_map_new();
        cbor_item_t *e = vtsm_abi_map_new();
        if (o && e && vtsm_abi_put_tstr(e, "verb", c->verb) == VTSM_OK &&
            vtsm_abi_put_uint(e, "status", (uint64_t)st) == VTSM_OK &&
            vtsm_abi_put_tstr(e, "name", name) == VTSM_OK &&
            vtsm_abi_put_tstr(e, "source", source) == VTSM_OK &&
            vtsm_abi_put_tstr(e, "detail", detail) == VTSM_OK) {
            if (vtsm_abi_put_item(o, "error", e) == VTSM_OK &&
                (!rep || vtsm_abi_put_item(o, "report", cbor_incref(rep)) == VTSM_OK)) {
                vtsm_abi_to_json(o, stdout, false);
                fputc('\n', stdout);
            }
            e = NULL;
        }
        if (e)
            cbor_decref(&e);
        if (o)
            cbor_decref(&o);
    } else if (rep) {
        print_result(c, rep);
    }
    if (rep)
        cbor_decref(&rep);
    return EXIT_TSM_ERROR;
}

/* A failure of ours, detail from vtsm_fail(). */
static int report_local(const struct cli *c, vtsm_status st)
{
    char name[64];
    snprintf(name, sizeof(name), "%s", vtsm_status_name(st));
    report(c, st, name, vtsm_source_name(vtsm_status_source(st)), vtsm_err_detail());
    return vtsm_status_source(st) == VTSM_SRC_TRANSPORT ? EXIT_UNREACHABLE : EXIT_TSM_ERROR;
}

/* A verb failed: exit 1 if the TSM said so, 3 if the connection to it broke. */
static int report_host_msg(const struct cli *c, struct vtsm_host *h, vtsm_status st,
                           const cbor_item_t *errmsg)
{
    const struct vtsm_host_error *e = vtsm_host_last_error(h);
    report_msg(c, st, e->name, e->source, e->detail, errmsg);
    if (!e->from_tsm && vtsm_status_source(st) == VTSM_SRC_TRANSPORT)
        return EXIT_UNREACHABLE;
    return EXIT_TSM_ERROR;
}

static int report_host(const struct cli *c, struct vtsm_host *h, vtsm_status st)
{
    return report_host_msg(c, h, st, NULL);
}

static void print_indent(unsigned level)
{
    for (unsigned i = 0; i < level; i++)
        fputs("  ", stdout);
}

static void print_bytes(const uint8_t *p, size_t n)
{
    if (n <= ABBREV_OVER) {
        for (size_t i = 0; i < n; i++)
            printf("%02x", p[i]);
        if (n == 0)
            fputs("<0 bytes>", stdout);
        return;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    printf("<%zu bytes sha256:", n);
    if (EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL) == 1) {
        for (unsigned i = 0; i < mdlen; i++)
            printf("%02x", md[i]);
    } else {
        fputs("?", stdout);
    }
    fputs(">", stdout);
}

static void print_value(const cbor_item_t *it, unsigned level);

/* Scalars inline; containers on the following lines, indented. */
static bool is_container(const cbor_item_t *it)
{
    return (cbor_isa_map(it) && cbor_map_size(it) > 0) ||
           (cbor_isa_array(it) && cbor_array_size(it) > 0);
}

static void print_scalar(const cbor_item_t *it)
{
    if (cbor_isa_bytestring(it) && cbor_bytestring_is_definite(it)) {
        print_bytes(cbor_bytestring_handle(it), cbor_bytestring_length(it));
    } else if (cbor_isa_string(it) && cbor_string_is_definite(it)) {
        printf("%.*s", (int)cbor_string_length(it), (const char *)cbor_string_handle(it));
    } else if (cbor_isa_map(it)) {
        fputs("{}", stdout);
    } else if (cbor_isa_array(it)) {
        fputs("[]", stdout);
    } else {
        vtsm_abi_to_json(it, stdout, false);
    }
}

static void print_map(const cbor_item_t *m, unsigned level, bool skip_envelope)
{
    size_t n = cbor_map_size(m);
    struct cbor_pair *pairs = cbor_map_handle(m);
    for (size_t i = 0; i < n; i++) {
        const cbor_item_t *k = pairs[i].key;
        if (!cbor_isa_string(k) || !cbor_string_is_definite(k))
            continue;
        int kl = (int)cbor_string_length(k);
        const char *ks = (const char *)cbor_string_handle(k);
        if (skip_envelope && ((kl == 2 && (!memcmp(ks, "op", 2) || !memcmp(ks, "id", 2))) ||
                              (kl == 6 && !memcmp(ks, "status", 6))))
            continue;
        print_indent(level);
        printf("%.*s:", kl, ks);
        print_value(pairs[i].value, level);
    }
}

static void print_value(const cbor_item_t *it, unsigned level)
{
    if (!is_container(it)) {
        fputc(' ', stdout);
        print_scalar(it);
        fputc('\n', stdout);
        return;
    }
    fputc('\n', stdout);
    if (cbor_isa_map(it)) {
        print_map(it, level + 1, false);
        return;
    }
    size_t n = cbor_array_size(it);
    cbor_item_t **h = cbor_array_handle(it);
    for (size_t i = 0; i < n; i++) {
        print_indent(level + 1);
        fputc('-', stdout);
        if (cbor_isa_map(h[i]) && cbor_map_size(h[i]) > 0) {
            fputc('\n', stdout);
            print_map(h[i], level + 2, false);
        } else {
            print_value(h[i], level + 1);
        }
    }
}

/* Print a RESULT: the verb's fields (without op/id/status), human or JSON. */
static void print_result(const struct cli *c, const cbor_item_t *res)
{
    if (!res)
        return;
    if (!c->json) {
        print_map(res, 0, true);
        return;
    }
    cbor_item_t *o = vtsm_abi_map_new();
    if (!o)
        return;
    size_t n = cbor_map_size(res);
    struct cbor_pair *pairs = cbor_map_handle(res);
    for (size_t i = 0; i < n; i++) {
        const cbor_item_t *k = pairs[i].key;
        char key[128];
        size_t kl = cbor_string_length(k);
        if (kl >= sizeof(key))
            continue;
        memcpy(key, cbor_string_handle(k), kl);
        key[kl] = '\0';
        if (!strcmp(key, "op") || !strcmp(key, "id") || !strcmp(key, "status"))
            continue;
        vtsm_abi_put_item(o, key, cbor_incref(pairs[i].value));
    }
    vtsm_abi_to_json(o, stdout, false);
    fputc('\n', stdout);
    cbor_decref(&o);
}

/* ---- commands ---- */

static int cmd_device(const struct cli *c, struct vtsm_host *h)
{
    struct vtsm_doe_tcp *doe = NULL;
    cbor_item_t *res = NULL;
    int rc;
    vtsm_status st = vtsm_doe_tcp_open(c->doe, &doe);
    if (st != VTSM_OK) {
        rc = report_local(c, st);
        if (st == VTSM_E_INVAL)
            rc = EXIT_USAGE;
        goto out;
    }
    st = vtsm_host_register_doe(h, c->dev, vtsm_doe_tcp_fn, doe);
    if (st != VTSM_OK) {
        rc = report_host(c, h, st);
        goto out;
    }
    if (!strcmp(c->verb, "connect")) {
        /* Already registered is fine if it matches: the TSM treats an identical
         * DEVICE_ADD as a no-op and answers "exists" only when the root port differs,
         * which matters only if the user named one. */
        st = vtsm_host_device_add(h, c->dev, (int)c->root_port);
        if (st == VTSM_E_EXISTS && c->root_port < 0)
            st = VTSM_OK;
        if (st != VTSM_OK) {
            rc = report_host(c, h, st);
            goto out;
        }
        struct vtsm_host_connect_opts o = {
            .slot = (unsigned)c->slot,
            .allow_untrusted = c->allow_untrusted,
            .min_version = c->version,
            .max_version = c->version,
        };
        st = vtsm_host_device_connect(h, c->dev, &o, &res);
    } else {
        st = vtsm_host_device_reclaim(h, c->dev, &res);
    }
    if (st != VTSM_OK) {
        rc = report_host_msg(c, h, st, res);
        goto out;
    }
    print_result(c, res);
    rc = EXIT_OK;
out:
    if (res)
        cbor_decref(&res);
    vtsm_host_register_doe(h, c->dev, NULL, NULL);
    vtsm_doe_tcp_close(doe);
    return rc;
}

static int cmd_status(const struct cli *c, struct vtsm_host *h)
{
    cbor_item_t *res = NULL;
    vtsm_status st = vtsm_host_status(h, c->dev, &res);
    if (st != VTSM_OK)
        return report_host(c, h, st);
    print_result(c, res);
    cbor_decref(&res);
    return EXIT_OK;
}

static bool parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 0);
    if (errno || end == s || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    struct cli c = {.root_port = -1};
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--socket") && i + 1 < argc) {
            c.socket = argv[++i];
        } else if (!strcmp(argv[i], "--json")) {
            c.json = true;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return EXIT_OK;
        } else {
            return usage_error("unknown or incomplete option '%s'", argv[i]);
        }
    }
    if (i >= argc)
        return usage_error("%s", "missing command");
    c.verb = argv[i++];
    bool dev_cmd = !strcmp(c.verb, "connect") || !strcmp(c.verb, "reclaim");
    if (!dev_cmd && strcmp(c.verb, "status") != 0)
        return usage_error("unknown command '%s'", c.verb);

    for (; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        bool is_connect = !strcmp(c.verb, "connect");
        if (a[0] != '-') {
            if (c.dev)
                return usage_error("unexpected argument '%s'", a);
            c.dev = a;
        } else if (dev_cmd && !strcmp(a, "--doe") && has_val) {
            c.doe = argv[++i];
        } else if (is_connect && !strcmp(a, "--root-port") && has_val) {
            if (!parse_long(argv[++i], 0, 0xffff, &c.root_port))
                return usage_error("bad --root-port '%s'", argv[i]);
        } else if (is_connect && !strcmp(a, "--slot") && has_val) {
            if (!parse_long(argv[++i], 0, VTSM_ABI_MAX_SLOT, &c.slot))
                return usage_error("bad --slot '%s' (0..7)", argv[i]);
        } else if (is_connect && !strcmp(a, "--allow-untrusted")) {
            c.allow_untrusted = true;
        } else if (is_connect && !strcmp(a, "--version") && has_val) {
            const char *v = argv[++i];
            if (!strcmp(v, "1.2"))
                c.version = 0x12;
            else if (!strcmp(v, "1.3"))
                c.version = 0x13;
            else
                return usage_error("bad --version '%s' (1.2 or 1.3)", v);
        } else if (!strcmp(a, "--json")) {
            c.json = true;
        } else if (!strcmp(a, "--socket") && has_val) {
            c.socket = argv[++i];
        } else {
            return usage_error("unknown or incomplete option '%s'", a);
        }
    }
    if (dev_cmd && !c.dev)
        return usage_error("%s needs a device name", c.verb);
    if (dev_cmd && !c.doe)
        return usage_error("%s needs --doe tcp:HOST:PORT", c.verb);
    if (c.dev && vtsm_abi_check_dev(c.dev) != VTSM_OK)
        return usage_error("bad device name '%s' (1..64 of [A-Za-z0-9:._-])", c.dev);

    struct vtsm_host *h = NULL;
    vtsm_status st = vtsm_host_open(c.socket, &h);
    if (st != VTSM_OK) {
        /* an ERROR answer to HELLO (e.g. abi_version) is the TSM's; anything else means
         * it could not be reached */
        int rc = report_local(&c, st);
        return vtsm_status_source(st) == VTSM_SRC_ABI ? rc : EXIT_UNREACHABLE;
    }
    int rc = dev_cmd ? cmd_device(&c, h) : cmd_status(&c, h);
    vtsm_host_close(h);
    return rc;
}
