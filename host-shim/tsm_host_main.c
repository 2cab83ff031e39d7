/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tsm-host: drive the TSM as a host would, servicing DOE (and the simulated IDE link)
 * through an spdm-emu responder. See usage() for the commands.
 *
 * Exit codes: 0 success, 1 the TSM reported an error (or ide-check found a failing
 * direction), 2 usage error, 3 the TSM (or the DOE responder) could not be reached.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "vtsm_abi.h"
#include "tsm_host_native.h"
#include "vtsm_host_cbor.h"
#include "vtsm_log.h"
#include "vtsm_proc.h"
#include "vtsm_trace.h"
#include "vtsm_version.h"

enum {
    EXIT_OK = 0,
    EXIT_TSM_ERROR = 1,
    EXIT_USAGE = 2,
    EXIT_UNREACHABLE = 3,
};

#define ABBREV_OVER 32 /* byte strings longer than this print as length + digest */

#define MAX_POS 32 /* positional arguments of a command (request: OP and its fields) */

struct cli {
    const char *socket;
    bool json;
    unsigned long count_seen; /* events printed */
    const char *verb;
    const char *pos[MAX_POS];
    unsigned npos;
    const char *dev; /* the device the command's DOE (and link) exchanges go to */
    const char *doe;
    long root_port;
    long slot;
    bool allow_untrusted;
    unsigned version; /* 0x12 / 0x13 / 0x14, 0 = TSM default */
    long ide_streams;
    bool ide_only;
    bool challenge;
    bool ide_lenient;
    uint8_t stream_ids[VTSM_ABI_IDE_STREAMS_MAX];
    size_t n_stream_ids;
    uint8_t addr_ranges[16 * 15];
    size_t addr_ranges_len;
    bool ide_link;
    const char *tdis; /* connect --tdis: comma list of requester IDs */
    bool force;
    bool all;   /* key-update --all */
    bool debug; /* tvm-create --debug */
    long tdi;
    long tvm;
    long lock_flags;
    const char *name;
    bool has_guest_key;
    uint8_t guest_key[VTSM_ABI_GUEST_KEY_SIZE];
    /* reset: the host's reference values (digests; 0 = not given) */
    uint8_t ref_report[64], ref_meas[64];
    size_t ref_report_len, ref_meas_len;
    /* events: stop after this many (0: never) or this many ms (0: never) */
    long count, timeout_ms;
    cbor_item_t *envelope; /* relay: the guest request read from the file; request: its map */
    struct vtsm_doe_tcp *doe_tcp; /* the --doe connection, when given */
    bool local_error;             /* the verb failed here, not in the TSM (report_local) */
};

static void usage(FILE *f)
{
    fputs("usage: tsm-host [--socket PATH] [--json] [--pcap FILE] [--trace] <command> [ARGS]\n"
          "       tsm-host --help | --version\n"
          "options may come before or after the command; --opt=value and --opt value both work\n"
          "  --socket PATH   tsmd's socket (default: $VTSM_SOCKET or the built-in path)\n"
          "  --json          print results and errors as JSON\n"
          "  --pcap FILE     write every DOE object to FILE (pcap, LINKTYPE_PCI_DOE 292)\n"
          "  --trace         one line per DOE object on stderr (time, direction, size, message)\n"
          "commands:\n"
          "  connect DEV --doe tcp:HOST:PORT [--root-port N] [--slot N] [--allow-untrusted]\n"
          "              [--spdm-version 1.2|1.3|1.4] [--ide-streams N] [--ide-only]\n"
          "              [--tdis RID,...]   (the TDIs under the device, by requester ID)\n"
          "              [--challenge]\n"
          "              [--ide-lenient] [--stream-ids ID,...] [--ide-addr-range BASE-LIMIT]...\n"
          "              [--ide-link]\n"
          "  reclaim DEV --doe tcp:HOST:PORT [--force]\n"
          "  key-update DEV --doe tcp:HOST:PORT [--all]   (SPDM KEY_UPDATE)\n"
          "  heartbeat DEV --doe tcp:HOST:PORT            (SPDM HEARTBEAT)\n"
          "  ide-refresh DEV --doe tcp:HOST:PORT\n"
          "  ide-check DEV --doe tcp:HOST:PORT\n"
          "  tvm-create [--name NAME] --guest-key HEX [--debug]\n"
          "  tvm-destroy TVM\n"
          "  bind DEV TDI TVM --doe tcp:HOST:PORT [--lock-flags N]\n"
          "  unbind DEV TDI --doe tcp:HOST:PORT\n"
          "  relay [--doe tcp:HOST:PORT] FILE   (a guest request envelope, CBOR)\n"
          "  status [DEV]                        (every page: all devices, TDIs and TVMs)\n"
          "  remove DEV                          forget an unconnected device (DEVICE_REMOVE)\n"
          "  native-auth DEV --doe tcp:HOST:PORT [--force]\n"
          "                                      the host's own CMA (SPDM VCA, certificate,\n"
          "                                      CHALLENGE); refused while the TSM owns DEV\n"
          "                                      (rule PDEV.18) unless --force\n"
          "  reset DEV TDI --doe tcp:HOST:PORT [--report-digest HEX --measurements-digest HEX]\n"
          "                                      recover a TDI in ERROR (TDI_RESET): FLR, relock,\n"
          "                                      re-measure; the digests are reference values\n"
          "  events [DEV] [--count N] [--timeout MS]\n"
          "                                      subscribe and print one line per EVENT (--json:\n"
          "                                      one object per line) until N or MS\n"
          "  request OP [KEY=VALUE]... [--doe tcp:HOST:PORT]\n"
          "                                      any request of the ABI's operation table (OP:\n"
          "                                      STATUS, TDI_BIND, ...); VALUE: number, true,\n"
          "                                      false, hex:BYTES or text\n"
          "  VERB [KEY=VALUE]... [--doe tcp:HOST:PORT]\n"
          "                                      the same, by the verb's name in the table\n"
          "                                      (device_connect, tdi_bind, status, ...)\n"
          "exit: 0 ok, 1 TSM error or failed link check, 2 usage, 3 TSM or DOE responder\n"
          "      unreachable\n",
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
    fputs(" (try 'tsm-host --help')\n", stderr);
    return EXIT_USAGE;
}

/* ---- output ---- */

static void print_result(const struct cli *c, const cbor_item_t *res);

/* The part of an ERROR message beyond the error itself (tsmd attaches the evidence of a
 * refused device_connect there); NULL if there is none. */
static cbor_item_t *error_report(const cbor_item_t *msg)
{
    static const char *const error_keys[] = {
        VTSM_ABI_K_OP,     VTSM_ABI_K_ID,     VTSM_ABI_K_STATUS, VTSM_ABI_K_NAME,
        VTSM_ABI_K_SOURCE, VTSM_ABI_K_DETAIL, VTSM_ABI_K_RULE,   VTSM_ABI_K_REQUEST_OP};
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

/* Report a failure: one line on stderr (ending in "[rule TDI.4]" when a rule refused),
 * and with --json an {"error":{...}} object (plus "report" when the TSM attached one).
 * Without --json an attached report is printed like a result. rule: "" or NULL if none. */
static int report_msg(const struct cli *c, vtsm_status st, const char *name, const char *source,
                      const char *detail, const char *rule, const cbor_item_t *errmsg);
static int report(const struct cli *c, vtsm_status st, const char *name, const char *source,
                  const char *detail, const char *rule)
{
    return report_msg(c, st, name, source, detail, rule, NULL);
}

static int report_msg(const struct cli *c, vtsm_status st, const char *name, const char *source,
                      const char *detail, const char *rule, const cbor_item_t *errmsg)
{
    cbor_item_t *rep = error_report(errmsg);
    char tag[32] = "";
    if (rule && *rule)
        snprintf(tag, sizeof(tag), " [rule %s]", rule);
    fprintf(stderr, "tsm-host: %s failed: %s (%s): %s%s\n", c->verb, name, source, detail, tag);
    if (c->json) {
        cbor_item_t *o = vtsm_abi_cli_error(c->verb, (uint64_t)st, name, source, detail, rule, rep);
        if (o) {
            vtsm_abi_to_json(o, stdout, false);
            fputc('\n', stdout);
            cbor_decref(&o);
        }
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
    enum vtsm_rule rule = vtsm_err_status() == st ? vtsm_err_rule() : vtsm_rule_of_status(st);
    report(c, st, name, vtsm_source_name(vtsm_status_source(st)), vtsm_err_detail(),
           vtsm_rule_id(rule));
    return vtsm_status_source(st) == VTSM_SRC_TRANSPORT ? EXIT_UNREACHABLE : EXIT_TSM_ERROR;
}

/* A verb failed: exit 1 if the TSM said so, 3 if the connection to it broke. */
static int report_host_msg(const struct cli *c, struct vtsm_host *h, vtsm_status st,
                           const cbor_item_t *errmsg)
{
    const struct vtsm_host_error *e = vtsm_host_last_error(h);
    report_msg(c, st, e->name, e->source, e->detail, e->rule_id, errmsg);
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
        if (skip_envelope &&
            ((kl == 2 && (!memcmp(ks, VTSM_ABI_K_OP, 2) || !memcmp(ks, VTSM_ABI_K_ID, 2))) ||
             (kl == 6 && !memcmp(ks, VTSM_ABI_K_STATUS, 6))))
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
        if (!strcmp(key, VTSM_ABI_K_OP) || !strcmp(key, VTSM_ABI_K_ID) ||
            !strcmp(key, VTSM_ABI_K_STATUS))
            continue;
        vtsm_abi_put_item(o, key, cbor_incref(pairs[i].value));
    }
    vtsm_abi_to_json(o, stdout, false);
    fputc('\n', stdout);
    cbor_decref(&o);
}

/* ---- commands ---- */

/* A verb: build and run the request, *res receives the RESULT (or ERROR message). */
typedef vtsm_status (*verb_fn)(struct cli *c, struct vtsm_host *h, cbor_item_t **res);
/* Print a successful RESULT; returns the exit code. */
typedef int (*print_fn)(struct cli *c, const cbor_item_t *res);

static vtsm_status verb_connect(struct cli *c, struct vtsm_host *h, cbor_item_t **res)
{
    /* Already registered is fine if it matches: the TSM treats an identical DEVICE_ADD
     * as a no-op and answers "exists" only when the root port differs, which matters
     * only if the user named one. */
    vtsm_status st = vtsm_host_device_add_cbor(h, c->dev, (int)c->root_port);
    if (st == VTSM_E_EXISTS && c->root_port < 0)
        st = VTSM_OK;
    if (st != VTSM_OK)
        return st;
    struct vtsm_host_connect_opts o = {
        .slot = (unsigned)c->slot,
        .allow_untrusted = c->allow_untrusted,
        .min_version = c->version,
        .max_version = c->version,
        .ide_streams = (unsigned)c->ide_streams,
        .ide_only = c->ide_only,
        .challenge = c->challenge,
        .ide_lenient = c->ide_lenient,
        .stream_ids = c->n_stream_ids ? c->stream_ids : NULL,
        .n_stream_ids = c->n_stream_ids,
        .ide_addr_ranges = c->addr_ranges_len ? c->addr_ranges : NULL,
        .ide_addr_ranges_len = c->addr_ranges_len,
        .ide_link = c->ide_link,
    };
    cbor_item_t *extra = NULL;
    if (c->tdis) { /* already checked: RIDs 0..0xFFFF, comma separated */
        cbor_item_t *arr = vtsm_abi_array_new();
        extra = vtsm_abi_map_new();
        if (!arr || !extra || vtsm_abi_put_item(extra, VTSM_ABI_K_TDIS, arr) != VTSM_OK) {
            if (extra)
                cbor_decref(&extra);
            return vtsm_fail(VTSM_E_NOMEM, "connect --tdis");
        }
        for (const char *p = c->tdis; *p;) {
            char *end;
            unsigned long v = strtoul(p, &end, 0);
            if (vtsm_abi_push_uint(arr, v) != VTSM_OK) {
                cbor_decref(&extra);
                return vtsm_fail(VTSM_E_NOMEM, "connect --tdis");
            }
            p = *end ? end + 1 : end;
        }
        o.extra = extra;
    }
    st = vtsm_host_device_connect_cbor(h, c->dev, &o, res);
    if (extra)
        cbor_decref(&extra);
    return st;
}

static vtsm_status verb_reclaim(struct cli *c, struct vtsm_host *h, cbor_item_t **res)
{
    return vtsm_host_device_reclaim_opts_cbor(h, c->dev, c->force, res);
}

static vtsm_status verb_key_update(struct cli *c, struct vtsm_host *h, cbor_item_t **res)
{
    return vtsm_host_spdm_key_update_cbor(h, c->dev, c->all, res);
}

static vtsm_status verb_heartbeat(struct cli *c, struct vtsm_host *h, cbor_item_t **res)
{
    return vtsm_host_spdm_heartbeat_cbor(h, c->dev, res);
}

static vtsm_status verb_ide_refresh(struct cli *c, struct vtsm_host *h, cbor_item_t **res)
{
    return vtsm_host_ide_refresh_cbor(h, c->dev, res);
}

static vtsm_status verb_ide_check(struct cli *c, struct vtsm_host *h, cbor_item_t **res)
{
    return vtsm_host_ide_link_check_cbor(h, c->dev, res);
}

static vtsm_status verb_tvm_create(struct cli *c, struct vtsm_host *h, cbor_item_t **res)
{
    if (!c->debug)
        return vtsm_host_tvm_create_cbor(h, c->name, c->guest_key, NULL, res);
    /* --debug: the TVM may send DEBUG_WRITE guest requests (docs/abi.md 9.5) */
    cbor_item_t *m = vtsm_abi_map_new();
    vtsm_status st = m ? VTSM_OK : VTSM_E_NOMEM;
    if (st == VTSM_OK && c->name)
        st = vtsm_abi_put_tstr(m, VTSM_ABI_K_NAME, c->name);
    if (st == VTSM_OK)
        st = vtsm_abi_put_bytes(m, VTSM_ABI_K_GUEST_KEY, c->guest_key, sizeof(c->guest_key));
    if (st == VTSM_OK)
        st = vtsm_abi_put_bool(m, VTSM_ABI_K_DEBUG, true);
    if (st == VTSM_OK)
        st = vtsm_host_call_cbor(h, VTSM_ABI_OP_TVM_CREATE, m, res);
    if (m)
        cbor_decref(&m);
    return st;
}

static vtsm_status verb_tvm_destroy(struct cli *c, struct vtsm_host *h, cbor_item_t **res)
{
    return vtsm_host_tvm_destroy_cbor(h, (uint32_t)c->tvm, res);
}

static vtsm_status verb_bind(struct cli *c, struct vtsm_host *h, cbor_item_t **res)
{
    return vtsm_host_tdi_bind_cbor(h, c->dev, (uint32_t)c->tdi, (uint32_t)c->tvm,
                                   (uint32_t)c->lock_flags, res);
}

static vtsm_status verb_unbind(struct cli *c, struct vtsm_host *h, cbor_item_t **res)
{
    return vtsm_host_tdi_unbind_cbor(h, c->dev, (uint32_t)c->tdi, res);
}

/* reset DEV TDI: TDI_RESET, with the reference values if given */
static vtsm_status verb_reset(struct cli *c, struct vtsm_host *h, cbor_item_t **res)
{
    cbor_item_t *m = vtsm_abi_map_new();
    vtsm_status st = m ? VTSM_OK : vtsm_fail(VTSM_E_NOMEM, "request");
    if (st == VTSM_OK && ((st = vtsm_abi_put_tstr(m, VTSM_ABI_K_DEV, c->dev)) != VTSM_OK ||
                          (st = vtsm_abi_put_uint(m, VTSM_ABI_K_TDI, (uint64_t)c->tdi)) != VTSM_OK))
        goto out;
    if (c->ref_report_len &&
        (st = vtsm_abi_put_bytes(m, VTSM_ABI_K_REPORT_DIGEST, c->ref_report, c->ref_report_len)))
        goto out;
    if (c->ref_meas_len &&
        (st = vtsm_abi_put_bytes(m, VTSM_ABI_K_MEASUREMENTS_DIGEST, c->ref_meas, c->ref_meas_len)))
        goto out;
    st = vtsm_host_call_cbor(h, VTSM_ABI_OP_TDI_RESET, m, res);
out:
    if (m)
        cbor_decref(&m);
    return st;
}

/* events [DEV]: one line per EVENT (or one JSON object per line with --json) */
static void print_event(void *ctx, const struct vtsm_host_event *ev)
{
    struct cli *c = ctx;
    if (c->json) {
        char *j = vtsm_result_json(ev->msg);
        if (j)
            printf("%s\n", j);
        free(j);
    } else {
        char tdi[16] = "-";
        if (ev->has_tdi)
            snprintf(tdi, sizeof(tdi), "%u", ev->tdi);
        printf("%llu %s dev=%s tdi=%s rule=%s %s\n", (unsigned long long)ev->seq, ev->event,
               ev->dev, tdi, ev->rule_id[0] ? ev->rule_id : "-", ev->detail);
    }
    fflush(stdout);
    c->count_seen++;
}

static vtsm_status verb_events(struct cli *c, struct vtsm_host *h, cbor_item_t **res)
{
    struct vtsm_request r = {.dev = c->dev};
    struct vtsm_result *sub = NULL;
    vtsm_host_set_event_cb(h, print_event, c);
    vtsm_status st = vtsm_host_events_subscribe(h, &r, &sub);
    vtsm_result_free(sub);
    if (st != VTSM_OK)
        return st;
    /* on stderr, so that stdout holds the events alone */
    fprintf(stderr, "tsm-host: watching events%s%s\n", c->dev ? " of " : "", c->dev ? c->dev : "");
    int64_t end = c->timeout_ms > 0 ? (int64_t)vtsm_now_ms() + c->timeout_ms : INT64_MAX;
    while (c->count == 0 || c->count_seen < (unsigned long)c->count) {
        int64_t now = vtsm_now_ms();
        if (now >= end)
            break;
        struct pollfd pfd = {.fd = vtsm_host_fd(h), .events = POLLIN};
        int wait = end == INT64_MAX ? -1 : (int)(end - now);
        int k = poll(&pfd, 1, wait);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return vtsm_fail(VTSM_E_IO, "poll: %s", strerror(errno));
        if (k > 0 && (st = vtsm_host_dispatch(h)) != VTSM_OK)
            return st;
    }
    *res = NULL;
    return VTSM_OK;
}

static vtsm_status verb_relay(struct cli *c, struct vtsm_host *h, cbor_item_t **res)
{
    return vtsm_host_guest_relay_cbor(h, c->envelope, res);
}

static vtsm_status verb_remove(struct cli *c, struct vtsm_host *h, cbor_item_t **res)
{
    vtsm_status st = vtsm_host_device_remove_cbor(h, c->dev);
    if (st == VTSM_OK && res) {
        /* DEVICE_REMOVE answers nothing beyond its envelope: say what was removed */
        *res = vtsm_abi_map_new();
        if (*res && vtsm_abi_put_tstr(*res, VTSM_ABI_K_DEV, c->dev) != VTSM_OK)
            cbor_decref(res);
    }
    return st;
}

/* native-auth: the host's own CMA, refused while the TSM owns the device (PDEV.18)
 * unless --force (tsm_host_native.c). */
static vtsm_status verb_native_auth(struct cli *c, struct vtsm_host *h, cbor_item_t **res)
{
    vtsm_status st = c->force ? VTSM_OK : tsm_host_native_owner_check(h, c->dev);
    if (st == VTSM_OK)
        st = tsm_host_native_auth(c->doe_tcp, c->dev, res);
    c->local_error = st != VTSM_OK;
    return st;
}

static vtsm_status verb_status(struct cli *c, struct vtsm_host *h, cbor_item_t **res)
{
    return vtsm_host_status_cbor(h, c->npos ? c->pos[0] : NULL, res);
}

static bool parse_hex(const char *s, uint8_t *out, size_t cap);

/* "request OP KEY=VALUE...": any request of the operation table, its fields checked
 * against the row's schema here and again by the TSM. VALUE is a number (decimal or
 * 0x hex: uint), true / false, hex:BYTES, or text. */
static vtsm_status request_fields(struct cli *c, const struct vtsm_abi_request *row,
                                  cbor_item_t *req)
{
    for (unsigned i = 1; i < c->npos; i++) {
        const char *a = c->pos[i], *eq = strchr(a, '=');
        char key[64];
        if (!eq || eq == a || (size_t)(eq - a) >= sizeof(key))
            return vtsm_fail(VTSM_E_INVAL, "field '%s' is not KEY=VALUE", a);
        memcpy(key, a, (size_t)(eq - a));
        key[eq - a] = '\0';
        const char *v = eq + 1;
        bool known = false;
        for (const char *const *k = row->keys; *k; k++)
            known |= !strcmp(*k, key);
        if (!known)
            return vtsm_fail(VTSM_E_INVAL, "%s takes no field '%s'", row->name, key);
        char *end = NULL;
        errno = 0;
        unsigned long long u = strtoull(v, &end, 0);
        vtsm_status st;
        if (v[0] >= '0' && v[0] <= '9' && !errno && end && !*end) {
            st = vtsm_abi_put_uint(req, key, u);
        } else if (!strcmp(v, "true") || !strcmp(v, "false")) {
            st = vtsm_abi_put_bool(req, key, v[0] == 't');
        } else if (!strncmp(v, "hex:", 4)) {
            size_t n = strlen(v + 4) / 2;
            uint8_t *b = malloc(n ? n : 1);
            if (!b)
                return vtsm_fail(VTSM_E_NOMEM, "field %s", key);
            st = parse_hex(v + 4, b, n) ? vtsm_abi_put_bytes(req, key, b, n)
                                        : vtsm_fail(VTSM_E_INVAL, "field %s: bad hex", key);
            free(b);
        } else {
            st = vtsm_abi_put_tstr(req, key, v);
        }
        if (st)
            return st;
        if (!strcmp(key, VTSM_ABI_K_DEV) && vtsm_abi_check_dev(v) == VTSM_OK)
            c->dev = v;
    }
    return VTSM_OK;
}

static const struct vtsm_abi_request *request_row(const char *name)
{
    for (size_t i = 0; i < VTSM_ABI_REQ_COUNT_; i++)
        if (!strcasecmp(vtsm_abi_requests[i].name, name))
            return &vtsm_abi_requests[i];
    return NULL;
}

static vtsm_status verb_request(struct cli *c, struct vtsm_host *h, cbor_item_t **res)
{
    return vtsm_host_call_cbor(h, request_row(c->pos[0])->op, c->envelope, res);
}

/* request's positionals: the operation's name and its fields, into c->envelope. */
static int load_request(struct cli *c)
{
    const struct vtsm_abi_request *row = c->npos ? request_row(c->pos[0]) : NULL;
    if (!row || row->op == VTSM_ABI_OP_HELLO || row->op == VTSM_ABI_OP_DOE_RESPONSE)
        return usage_error("request needs an operation of the table, e.g. STATUS, not '%s'",
                           c->npos ? c->pos[0] : "");
    c->envelope = vtsm_abi_map_new();
    if (!c->envelope)
        return usage_error("%s", "out of memory");
    if (request_fields(c, row, c->envelope) != VTSM_OK)
        return usage_error("%s", vtsm_err_detail());
    /* the TSM's own decoder: types, ranges and required keys, refused here as tsmd would */
    struct vtsm_abi_req req;
    if (vtsm_abi_req_decode(c->envelope, row, &req) != VTSM_OK)
        return usage_error("%s", vtsm_err_detail());
    return EXIT_OK;
}

static int print_none(struct cli *c, const cbor_item_t *res)
{
    (void)c;
    (void)res;
    return EXIT_OK;
}

static int print_plain(struct cli *c, const cbor_item_t *res)
{
    print_result(c, res);
    return EXIT_OK;
}

/* ide-check: one line per stream, exit 1 if any direction failed. */
static int print_link_check(struct cli *c, const cbor_item_t *res)
{
    const cbor_item_t *streams = NULL;
    if (vtsm_abi_get_array(res, VTSM_ABI_K_STREAMS, &streams) != VTSM_OK) {
        print_result(c, res);
        fprintf(stderr, "tsm-host: %s: %s\n", c->verb, vtsm_err_detail());
        return EXIT_TSM_ERROR;
    }
    if (c->json)
        print_result(c, res);
    size_t n = cbor_array_size(streams), failed = 0;
    cbor_item_t **it = cbor_array_handle(streams);
    for (size_t i = 0; i < n; i++) {
        uint64_t sid = 0, kset = 0;
        bool to_dev = false, to_rp = false;
        bool ok = vtsm_abi_get_uint(it[i], VTSM_ABI_K_STREAM_ID, &sid) == VTSM_OK &&
                  vtsm_abi_get_uint(it[i], VTSM_ABI_K_KEY_SET, &kset) == VTSM_OK;
        /* a missing or mistyped direction counts as a failure */
        vtsm_abi_get_bool(it[i], VTSM_ABI_K_RP_TO_DEVICE, &to_dev);
        vtsm_abi_get_bool(it[i], VTSM_ABI_K_DEVICE_TO_RP, &to_rp);
        if (!ok || !to_dev || !to_rp)
            failed++;
        if (!c->json)
            printf("stream %" PRIu64 " key set %" PRIu64 ": rp->device %s, device->rp %s\n", sid,
                   kset, to_dev ? "PASS" : "FAIL", to_rp ? "PASS" : "FAIL");
    }
    if (failed) {
        fprintf(stderr, "tsm-host: %s: %zu of %zu streams failed the link check\n", c->verb, failed,
                n);
        return EXIT_TSM_ERROR;
    }
    return EXIT_OK;
}

/* ---- status as tables ---- */

#define TABLE_COLS 10
#define CELL       136 /* a 64-byte measurement value in hex, and its NUL */

/* A table of text cells, grown as rows come. */
struct table {
    const char *title;
    unsigned ncols;
    const char *head[TABLE_COLS];
    char (*cells)[TABLE_COLS][CELL];
    size_t nrows, cap;
    bool short_of_memory;
};

static struct table *table_new(const char *title, unsigned ncols, const char *const *head)
{
    struct table *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->title = title;
    t->ncols = ncols;
    for (unsigned i = 0; i < ncols; i++)
        t->head[i] = head[i];
    return t;
}

/* A new row, NULL if there is no memory for it (the table says so when printed). */
static char (*table_row(struct table *t))[CELL]
{
    if (!t)
        return NULL;
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 16;
        void *p = realloc(t->cells, cap * sizeof(*t->cells));
        if (!p) {
            t->short_of_memory = true;
            return NULL;
        }
        t->cells = p;
        t->cap = cap;
    }
    return t->cells[t->nrows++];
}

static void table_print(struct table *t)
{
    if (!t)
        return;
    if (t->nrows) {
        size_t w[TABLE_COLS];
        for (unsigned i = 0; i < t->ncols; i++) {
            w[i] = strlen(t->head[i]);
            for (size_t r = 0; r < t->nrows; r++)
                if (strlen(t->cells[r][i]) > w[i])
                    w[i] = strlen(t->cells[r][i]);
        }
        printf("%s\n", t->title);
        for (unsigned i = 0; i < t->ncols; i++) {
            if (i + 1 < t->ncols)
                printf("%-*s  ", (int)w[i], t->head[i]);
            else
                printf("%s\n", t->head[i]);
        }
        for (size_t r = 0; r < t->nrows; r++)
            for (unsigned i = 0; i < t->ncols; i++) {
                if (i + 1 < t->ncols)
                    printf("%-*s  ", (int)w[i], t->cells[r][i]);
                else
                    printf("%s\n", t->cells[r][i]);
            }
        if (t->short_of_memory)
            printf("(out of memory: rows are missing; --json has them all)\n");
        fputc('\n', stdout);
    }
    free(t->cells);
    free(t);
}

/* A map value as a cell: text as is, numbers in decimal (or hex), bools yes/no, byte
 * strings in hex; "-" if absent. */
static void cell(char *out, const cbor_item_t *m, const char *key, bool hex)
{
    const cbor_item_t *v = m ? vtsm_abi_find(m, key) : NULL;
    if (!v) {
        snprintf(out, CELL, "-");
    } else if (cbor_isa_string(v) && cbor_string_is_definite(v)) {
        snprintf(out, CELL, "%.*s", (int)cbor_string_length(v),
                 (const char *)cbor_string_handle(v));
    } else if (cbor_isa_uint(v)) {
        snprintf(out, CELL, hex ? "0x%" PRIx64 : "%" PRIu64, (uint64_t)cbor_get_int(v));
    } else if (cbor_isa_float_ctrl(v) && cbor_is_bool(v)) {
        snprintf(out, CELL, "%s", cbor_get_bool(v) ? "yes" : "no");
    } else if (cbor_isa_bytestring(v) && cbor_bytestring_is_definite(v)) {
        size_t n = cbor_bytestring_length(v), k = 0;
        const uint8_t *p = cbor_bytestring_handle(v);
        for (size_t i = 0; i < n && k + 3 < CELL; i++, k += 2)
            snprintf(out + k, CELL - k, "%02x", p[i]);
        if (n == 0)
            snprintf(out, CELL, "-");
    } else {
        snprintf(out, CELL, "?");
    }
}

/* DSP0274 DMTFSpecMeasurementValueType, bits 6:0 (bit 7: a raw bit stream). */
static void meas_type(char *out, const cbor_item_t *m)
{
    static const char *const names[] = {
        "immutable ROM",        "mutable firmware",  "hardware config",    "firmware config",
        "measurement manifest", "debug/device mode", "firmware version",   "firmware SVN",
        "hash-extended",        "informational",     "structured manifest"};
    uint64_t t = 0;
    if (vtsm_abi_get_uint(m, "type", &t) != VTSM_OK) {
        snprintf(out, CELL, "-");
        return;
    }
    unsigned k = (unsigned)(t & 0x7Fu);
    snprintf(out, CELL, "%s%s", k < sizeof(names) / sizeof(names[0]) ? names[k] : "other",
             t & 0x80u ? " (raw)" : "");
}

static const cbor_item_t *list(const cbor_item_t *m, const char *key)
{
    const cbor_item_t *a = m ? vtsm_abi_find(m, key) : NULL;
    return a && cbor_isa_array(a) ? a : NULL;
}

/* status without --json: root ports, devices, IDE streams, TDIs, measurements and TVMs as
 * aligned tables. Measurement values are shown whole; session IDs and capabilities in
 * hex. */
static int print_status(struct cli *c, const cbor_item_t *res)
{
    if (c->json) {
        print_result(c, res);
        return EXIT_OK;
    }
    static const char *const h_rp[] = {"ID", "STREAMS", "USED", "KEY SLOTS", "USED"};
    static const char *const h_dev[] = {"DEVICE",  "PORT",     "STATE", "SPDM",   "ALGORITHM",
                                        "SESSION", "CONNECTS", "BOUND", "TEE-IO", "CAPS"};
    static const char *const h_str[] = {"DEVICE", "STREAM", "STATE", "KEY SET", "REFRESHES"};
    static const char *const h_tdi[] = {"DEVICE", "TDI", "STATE", "TVM", "MMIO", "DMA", "NOTE"};
    static const char *const h_meas[] = {"DEVICE", "INDEX", "TYPE", "VALUE"};
    static const char *const h_tvm[] = {"TVM", "NAME", "BOUND", "IDENTITY"};
    struct table *rp = table_new("ROOT PORTS", 5, h_rp);
    struct table *dev = table_new("DEVICES", 10, h_dev);
    struct table *str = table_new("IDE STREAMS", 5, h_str);
    struct table *tdi = table_new("TDIS", 7, h_tdi);
    struct table *meas = table_new("MEASUREMENTS", 4, h_meas);
    struct table *tvm = table_new("TVMS", 4, h_tvm);
    static const char *const h_map[] = {"DEVICE", "TDI", "RANGE",     "RANGE ID", "PAGES",
                                        "ATTRS",  "GPA", "VALIDATED", "PRIVATE",  "DMA"};
    struct table *mmio = table_new("MMIO MAP", 10, h_map);
    const cbor_item_t *a = list(res, VTSM_ABI_K_ROOT_PORTS);
    for (size_t i = 0; a && i < cbor_array_size(a); i++) {
        const cbor_item_t *m = cbor_array_handle(a)[i];
        char(*r)[CELL] = table_row(rp);
        if (!r)
            break;
        cell(r[0], m, "id", false);
        cell(r[1], m, "streams", false);
        cell(r[2], m, "streams_used", false);
        cell(r[3], m, "key_slots", false);
        cell(r[4], m, "key_slots_used", false);
    }
    a = list(res, VTSM_ABI_K_DEVICES);
    for (size_t i = 0; a && i < cbor_array_size(a); i++) {
        const cbor_item_t *m = cbor_array_handle(a)[i];
        char name[CELL];
        cell(name, m, VTSM_ABI_K_DEV, false);
        char(*r)[CELL] = table_row(dev);
        if (r) {
            snprintf(r[0], CELL, "%s", name);
            cell(r[1], m, VTSM_ABI_K_ROOT_PORT, false);
            cell(r[2], m, "state", false);
            cell(r[3], m, "version", false);
            const cbor_item_t *alg = vtsm_abi_find(m, "algorithms");
            cell(r[4], alg && cbor_isa_map(alg) ? alg : NULL, "asym", false);
            cell(r[5], m, "session_id", true);
            cell(r[6], m, "connects", false);
            cell(r[7], m, "bound_tdis", false);
            cell(r[8], m, "tee_io", false);
            cell(r[9], m, "capabilities", true);
        }
        const cbor_item_t *ide = vtsm_abi_find(m, "ide");
        const cbor_item_t *sl = ide && cbor_isa_map(ide) ? list(ide, "streams") : NULL;
        for (size_t k = 0; sl && k < cbor_array_size(sl); k++) {
            char(*s)[CELL] = table_row(str);
            if (!s)
                break;
            snprintf(s[0], CELL, "%s", name);
            cell(s[1], cbor_array_handle(sl)[k], "stream_id", false);
            cell(s[2], cbor_array_handle(sl)[k], "state", false);
            cell(s[3], cbor_array_handle(sl)[k], "key_set", false);
            cell(s[4], cbor_array_handle(sl)[k], "refreshes", false);
        }
        const cbor_item_t *tl = list(m, "tdis");
        for (size_t k = 0; tl && k < cbor_array_size(tl); k++) {
            char(*t)[CELL] = table_row(tdi);
            if (!t)
                break;
            snprintf(t[0], CELL, "%s", name);
            cell(t[1], cbor_array_handle(tl)[k], "tdi", true);
            cell(t[2], cbor_array_handle(tl)[k], "state", false);
            cell(t[3], cbor_array_handle(tl)[k], "tvm", false);
            cell(t[4], cbor_array_handle(tl)[k], "mmio_enabled", false);
            cell(t[5], cbor_array_handle(tl)[k], "dma_enabled", false);
            /* why it is in ERROR, an owner's UNLOCK (still assigned), a REJECT */
            const cbor_item_t *e = cbor_array_handle(tl)[k];
            bool unlocked = false;
            char why[CELL] = "";
            if (vtsm_abi_find(e, VTSM_ABI_K_ERROR_RULE))
                cell(why, e, VTSM_ABI_K_ERROR_RULE, false);
            if (vtsm_abi_get_bool(e, VTSM_ABI_K_GUEST_UNLOCKED, &unlocked) == VTSM_OK && unlocked)
                snprintf(why, CELL, "unlocked by its TVM");
            else if (!why[0] && vtsm_abi_find(e, VTSM_ABI_K_GUEST_REJECTED))
                snprintf(why, CELL, "rejected by its TVM");
            snprintf(t[6], CELL, "%s", why[0] ? why : "-");
            /* the TDI's MMIO ranges, once the host mapped one (docs/abi.md 7.18) */
            const cbor_item_t *te = cbor_array_handle(tl)[k];
            const cbor_item_t *ml = list(te, VTSM_ABI_K_MMIO_MAP);
            for (size_t q = 0; ml && q < cbor_array_size(ml); q++) {
                const cbor_item_t *re = cbor_array_handle(ml)[q];
                char(*u)[CELL] = table_row(mmio);
                if (!u)
                    break;
                snprintf(u[0], CELL, "%s", name);
                cell(u[1], te, "tdi", true);
                cell(u[2], re, VTSM_ABI_K_RANGE, false);
                cell(u[3], re, VTSM_ABI_K_RANGE_ID, false);
                cell(u[4], re, VTSM_ABI_K_PAGES, false);
                cell(u[5], re, VTSM_ABI_K_ATTRIBUTES, true);
                cell(u[6], re, VTSM_ABI_K_GPA, true);
                cell(u[7], re, VTSM_ABI_K_VALIDATED, false);
                cell(u[8], re, VTSM_ABI_K_PRIVATE, false);
                cell(u[9], te, VTSM_ABI_K_DMA, false);
            }
        }
        const cbor_item_t *ms = vtsm_abi_find(m, "measurements");
        const cbor_item_t *bl = ms && cbor_isa_map(ms) ? list(ms, "blocks") : NULL;
        for (size_t k = 0; bl && k < cbor_array_size(bl); k++) {
            char(*t)[CELL] = table_row(meas);
            if (!t)
                break;
            snprintf(t[0], CELL, "%s", name);
            cell(t[1], cbor_array_handle(bl)[k], "index", false);
            meas_type(t[2], cbor_array_handle(bl)[k]);
            cell(t[3], cbor_array_handle(bl)[k], "value", false);
        }
    }
    a = list(res, VTSM_ABI_K_TVMS);
    for (size_t i = 0; a && i < cbor_array_size(a); i++) {
        const cbor_item_t *m = cbor_array_handle(a)[i];
        char(*r)[CELL] = table_row(tvm);
        if (!r)
            break;
        cell(r[0], m, "tvm", false);
        cell(r[1], m, "name", false);
        cell(r[2], m, "bound_tdis", false);
        cell(r[3], m, "identity", false);
    }
    table_print(rp);
    table_print(dev);
    table_print(str);
    table_print(tdi);
    table_print(meas);
    table_print(tvm);
    table_print(mmio);
    return EXIT_OK;
}

enum {
    OPT_DOE = 1u << 0,
    OPT_ROOT_PORT = 1u << 1,
    OPT_SLOT = 1u << 2,
    OPT_UNTRUSTED = 1u << 3,
    OPT_VERSION = 1u << 4,
    OPT_IDE_STREAMS = 1u << 5,
    OPT_IDE_ONLY = 1u << 6,
    OPT_FORCE = 1u << 7,
    OPT_NAME = 1u << 8,
    OPT_GUEST_KEY = 1u << 9,
    OPT_LOCK_FLAGS = 1u << 10,
    OPT_ALL = 1u << 11,
    OPT_CHALLENGE = 1u << 12,
    OPT_REF_REPORT = 1u << 13,
    OPT_REF_MEAS = 1u << 14,
    OPT_COUNT = 1u << 15,
    OPT_TIMEOUT = 1u << 16,
    OPT_DEBUG = 1u << 17,
    OPT_IDE_LENIENT = 1u << 18,
    OPT_STREAM_IDS = 1u << 19,
    OPT_ADDR_RANGE = 1u << 20,
    OPT_IDE_LINK = 1u << 21,
    OPT_TDIS = 1u << 22,
};

#define CONNECT_OPTS                                                                               \
    (OPT_DOE | OPT_ROOT_PORT | OPT_SLOT | OPT_UNTRUSTED | OPT_VERSION | OPT_IDE_STREAMS |          \
     OPT_IDE_ONLY | OPT_CHALLENGE | OPT_IDE_LENIENT | OPT_STREAM_IDS | OPT_ADDR_RANGE |            \
     OPT_IDE_LINK | OPT_TDIS)

struct command {
    const char *name;
    const char *args;  /* positional arguments: DEV, TDI, TVM, FILE; [X] = optional */
    unsigned opts;     /* options allowed */
    unsigned required; /* options required */
    verb_fn run;
    print_fn print;
};

static const struct command commands[] = {
    {"connect", "DEV", CONNECT_OPTS, OPT_DOE, verb_connect, print_plain},
    {"reclaim", "DEV", OPT_DOE | OPT_FORCE, OPT_DOE, verb_reclaim, print_plain},
    {"ide-refresh", "DEV", OPT_DOE, OPT_DOE, verb_ide_refresh, print_plain},
    {"key-update", "DEV", OPT_DOE | OPT_ALL, OPT_DOE, verb_key_update, print_plain},
    {"heartbeat", "DEV", OPT_DOE, OPT_DOE, verb_heartbeat, print_plain},
    {"ide-check", "DEV", OPT_DOE, OPT_DOE, verb_ide_check, print_link_check},
    {"tvm-create", "", OPT_NAME | OPT_GUEST_KEY | OPT_DEBUG, OPT_GUEST_KEY, verb_tvm_create,
     print_plain},
    {"tvm-destroy", "TVM", 0, 0, verb_tvm_destroy, print_plain},
    {"bind", "DEV TDI TVM", OPT_DOE | OPT_LOCK_FLAGS, OPT_DOE, verb_bind, print_plain},
    {"unbind", "DEV TDI", OPT_DOE, OPT_DOE, verb_unbind, print_plain},
    {"relay", "FILE", OPT_DOE, 0, verb_relay, print_plain},
    {"status", "[DEV]", 0, 0, verb_status, print_status},
    {"remove", "DEV", 0, 0, verb_remove, print_plain},
    {"native-auth", "DEV", OPT_DOE | OPT_FORCE, OPT_DOE, verb_native_auth, print_plain},
    {"reset", "DEV TDI", OPT_DOE | OPT_REF_REPORT | OPT_REF_MEAS, OPT_DOE, verb_reset, print_plain},
    {"events", "[DEV]", OPT_COUNT | OPT_TIMEOUT, 0, verb_events, print_none},
    {"request", "OP [FIELDS]", OPT_DOE, 0, verb_request, print_plain},
};

/* The n-th positional argument name of cmd ("DEV" ...) into out; false if there is none.
 * *optional says it was given in brackets. */
static bool arg_name(const struct command *cmd, unsigned n, char out[8], bool *optional)
{
    const char *p = cmd->args;
    for (unsigned k = 0;; k++) {
        while (*p == ' ')
            p++;
        if (!*p)
            return false;
        size_t len = strcspn(p, " ");
        if (k == n) {
            *optional = p[0] == '[';
            const char *q = *optional ? p + 1 : p;
            size_t ql = *optional ? len - 2 : len;
            if (ql >= 8)
                return false;
            memcpy(out, q, ql);
            out[ql] = '\0';
            return true;
        }
        p += len;
    }
}

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!strcmp(commands[i].name, name))
            return &commands[i];
    return NULL;
}

/* Run one verb, with the DOE backend (DOE and link callbacks on one TCP connection)
 * registered for c->dev when --doe was given. */
static int run_command(struct cli *c, const struct command *cmd, struct vtsm_host *h)
{
    struct vtsm_doe_tcp *doe = NULL;
    cbor_item_t *res = NULL;
    int rc;
    vtsm_status st;
    if (c->doe) {
        st = vtsm_doe_tcp_open(c->doe, &doe);
        if (st != VTSM_OK) {
            rc = report_local(c, st);
            if (st == VTSM_E_INVAL)
                rc = EXIT_USAGE;
            goto out;
        }
        if (c->dev) {
            st = vtsm_host_register_doe(h, c->dev, vtsm_doe_tcp_fn, doe);
            if (st == VTSM_OK)
                st = vtsm_host_register_link(h, c->dev, vtsm_doe_tcp_link_fn, doe);
            if (st != VTSM_OK) {
                rc = report_host(c, h, st);
                goto out;
            }
        }
    }
    c->doe_tcp = doe;
    st = cmd->run(c, h, &res);
    if (st != VTSM_OK) {
        rc = c->local_error ? report_local(c, st) : report_host_msg(c, h, st, res);
        goto out;
    }
    rc = cmd->print(c, res);
out:
    if (res)
        cbor_decref(&res);
    if (c->dev) {
        vtsm_host_register_doe(h, c->dev, NULL, NULL);
        vtsm_host_register_link(h, c->dev, NULL, NULL);
    }
    vtsm_doe_tcp_close(doe);
    return rc;
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

/* Exactly 2 * cap hex digits (an optional "0x" prefix allowed). */
static bool parse_hex(const char *s, uint8_t *out, size_t cap)
{
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        s += 2;
    return strlen(s) == 2 * cap && vtsm_unhex(out, cap, s) == (long)cap;
}

/*
 * relay FILE: one guest request envelope {tvm, body, sig} as CBOR (a bare item, or one
 * ABI frame with its 4-byte length). Checked with the ABI decoder; the device its body
 * names (if any) is where the request's DOE exchanges go.
 */
static int load_envelope(struct cli *c, const char *path)
{
    int rc = EXIT_USAGE;
    uint8_t *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return usage_error("cannot open '%s': %s", path, strerror(errno));
    buf = malloc(VTSM_ABI_FRAME_HDR_SIZE + VTSM_ABI_FRAME_MAX + 1);
    if (!buf) {
        fclose(f);
        return usage_error("%s", "out of memory");
    }
    size_t n = fread(buf, 1, VTSM_ABI_FRAME_HDR_SIZE + VTSM_ABI_FRAME_MAX + 1, f);
    bool bad_read = ferror(f) != 0;
    fclose(f);
    const uint8_t *p = buf;
    if (bad_read || n > VTSM_ABI_FRAME_HDR_SIZE + VTSM_ABI_FRAME_MAX) {
        usage_error("cannot read '%s' (unreadable or larger than one ABI frame)", path);
        goto out;
    }
    if (n >= VTSM_ABI_FRAME_HDR_SIZE && (buf[0] >> 5) != 5 &&
        vtsm_get_be32(buf) == n - VTSM_ABI_FRAME_HDR_SIZE) {
        p += VTSM_ABI_FRAME_HDR_SIZE;
        n -= VTSM_ABI_FRAME_HDR_SIZE;
    }
    if (vtsm_abi_decode(p, n, &c->envelope) != VTSM_OK) {
        usage_error("'%s' is not a CBOR guest request envelope: %s", path, vtsm_err_detail());
        goto out;
    }
    /* the body is signed, not secret: its "dev" tells where DOE exchanges go */
    const uint8_t *body = NULL;
    size_t blen = 0;
    cbor_item_t *inner = NULL;
    static char dev[VTSM_ABI_DEV_BUF];
    bool here = false;
    if (vtsm_abi_get_bytes(c->envelope, VTSM_ABI_K_BODY, &body, &blen) == VTSM_OK &&
        vtsm_abi_decode(body, blen, &inner) == VTSM_OK &&
        vtsm_abi_opt_tstr(inner, VTSM_ABI_K_DEV, dev, sizeof(dev), &here) == VTSM_OK && here &&
        vtsm_abi_check_dev(dev) == VTSM_OK)
        c->dev = dev;
    if (inner)
        cbor_decref(&inner);
    rc = EXIT_OK;
out:
    free(buf);
    return rc;
}

/* Long options: the global ones (negative ids) and the command options (their OPT_ bit). */
enum {
    G_SOCKET = -100,
    G_JSON,
    G_HELP,
    G_VERSION,
    G_PCAP,
    G_TRACE,
};
static const struct option long_opts[] = {
    {"socket", required_argument, NULL, G_SOCKET},
    {"json", no_argument, NULL, G_JSON},
    {"help", no_argument, NULL, G_HELP},
    {"version", no_argument, NULL, G_VERSION},
    {"pcap", required_argument, NULL, G_PCAP},
    {"trace", no_argument, NULL, G_TRACE},
    {"doe", required_argument, NULL, OPT_DOE},
    {"root-port", required_argument, NULL, OPT_ROOT_PORT},
    {"slot", required_argument, NULL, OPT_SLOT},
    {"allow-untrusted", no_argument, NULL, OPT_UNTRUSTED},
    {"spdm-version", required_argument, NULL, OPT_VERSION},
    {"ide-streams", required_argument, NULL, OPT_IDE_STREAMS},
    {"ide-only", no_argument, NULL, OPT_IDE_ONLY},
    {"challenge", no_argument, NULL, OPT_CHALLENGE},
    {"tdis", required_argument, NULL, OPT_TDIS},
    {"force", no_argument, NULL, OPT_FORCE},
    {"name", required_argument, NULL, OPT_NAME},
    {"guest-key", required_argument, NULL, OPT_GUEST_KEY},
    {"lock-flags", required_argument, NULL, OPT_LOCK_FLAGS},
    {"all", no_argument, NULL, OPT_ALL},
    {"report-digest", required_argument, NULL, OPT_REF_REPORT},
    {"measurements-digest", required_argument, NULL, OPT_REF_MEAS},
    {"count", required_argument, NULL, OPT_COUNT},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"debug", no_argument, NULL, OPT_DEBUG},
    {"ide-lenient", no_argument, NULL, OPT_IDE_LENIENT},
    {"stream-ids", required_argument, NULL, OPT_STREAM_IDS},
    {"ide-addr-range", required_argument, NULL, OPT_ADDR_RANGE},
    {"ide-link", no_argument, NULL, OPT_IDE_LINK},
    {NULL, 0, NULL, 0},
};

/* The long name of a command option bit, for messages. */
static const char *opt_name(unsigned bit)
{
    for (const struct option *o = long_opts; o->name; o++)
        if (o->val == (int)bit)
            return o->name;
    return "?";
}

/* One command option (bit) with its value v (NULL for flags). */
static int set_option(struct cli *c, unsigned bit, const char *v)
{
    switch (bit) {
    case OPT_DOE:
        c->doe = v;
        return EXIT_OK;
    case OPT_ROOT_PORT:
        if (!parse_long(v, 0, 0xffff, &c->root_port))
            return usage_error("bad --root-port '%s'", v);
        return EXIT_OK;
    case OPT_SLOT:
        if (!parse_long(v, 0, VTSM_ABI_MAX_SLOT, &c->slot))
            return usage_error("bad --slot '%s' (0..7)", v);
        return EXIT_OK;
    case OPT_UNTRUSTED:
        c->allow_untrusted = true;
        return EXIT_OK;
    case OPT_VERSION:
        if (!strcmp(v, "1.2"))
            c->version = 0x12;
        else if (!strcmp(v, "1.3"))
            c->version = 0x13;
        else if (!strcmp(v, "1.4"))
            c->version = 0x14;
        else
            return usage_error("bad --spdm-version '%s' (1.2, 1.3 or 1.4)", v);
        return EXIT_OK;
    case OPT_IDE_STREAMS:
        if (!parse_long(v, 0, VTSM_ABI_IDE_STREAMS_MAX, &c->ide_streams))
            return usage_error("bad --ide-streams '%s' (0..%u)", v, VTSM_ABI_IDE_STREAMS_MAX);
        return EXIT_OK;
    case OPT_IDE_ONLY:
        c->ide_only = true;
        return EXIT_OK;
    case OPT_CHALLENGE:
        c->challenge = true;
        return EXIT_OK;
    case OPT_IDE_LENIENT:
        c->ide_lenient = true;
        return EXIT_OK;
    case OPT_IDE_LINK:
        c->ide_link = true;
        return EXIT_OK;
    case OPT_ADDR_RANGE: {
        /* BASE-LIMIT in hex (0x optional); repeatable, up to 15; the TSM checks them */
        char *end = NULL;
        unsigned long long base, limit;
        errno = 0;
        base = strtoull(v, &end, 16);
        if (errno || end == v || *end != '-' || c->addr_ranges_len >= sizeof(c->addr_ranges))
            return usage_error("bad --ide-addr-range '%s' (BASE-LIMIT in hex, up to 15)", v);
        const char *l = end + 1;
        limit = strtoull(l, &end, 16);
        if (errno || end == l || *end)
            return usage_error("bad --ide-addr-range '%s' (BASE-LIMIT in hex)", v);
        for (unsigned i = 0; i < 8; i++) {
            c->addr_ranges[c->addr_ranges_len + i] = (uint8_t)(base >> (8 * i));
            c->addr_ranges[c->addr_ranges_len + 8 + i] = (uint8_t)(limit >> (8 * i));
        }
        c->addr_ranges_len += 16;
        return EXIT_OK;
    }
    case OPT_STREAM_IDS: {
        /* a comma list of stream IDs, 0..255 each, 1..8 of them */
        char buf[64], *save = NULL;
        if (strlen(v) >= sizeof(buf))
            return usage_error("bad --stream-ids '%s'", v);
        snprintf(buf, sizeof(buf), "%s", v);
        c->n_stream_ids = 0;
        for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            long id;
            if (c->n_stream_ids >= VTSM_ABI_IDE_STREAMS_MAX || !parse_long(t, 0, 255, &id))
                return usage_error("bad --stream-ids '%s' (1..%u IDs, 0..255 each)", v,
                                   VTSM_ABI_IDE_STREAMS_MAX);
            c->stream_ids[c->n_stream_ids++] = (uint8_t)id;
        }
        if (!c->n_stream_ids)
            return usage_error("bad --stream-ids '%s'", v);
        return EXIT_OK;
    }
    case OPT_TDIS:
        for (const char *p = v;;) {
            char *end;
            errno = 0;
            unsigned long r = strtoul(p, &end, 0);
            if (end == p || *p < '0' || *p > '9' || errno || r > 0xFFFF || (*end && *end != ',') ||
                (*end == ',' && !end[1]))
                return usage_error("bad --tdis '%s' (requester IDs 0..0xffff, comma separated)", v);
            if (!*end)
                break;
            p = end + 1;
        }
        c->tdis = v;
        return EXIT_OK;
    case OPT_FORCE:
        c->force = true;
        return EXIT_OK;
    case OPT_ALL:
        c->all = true;
        return EXIT_OK;
    case OPT_DEBUG:
        c->debug = true;
        return EXIT_OK;
    case OPT_NAME:
        if (!v[0] || strlen(v) > VTSM_ABI_TVM_NAME_MAX)
            return usage_error("bad --name (1..%u bytes)", VTSM_ABI_TVM_NAME_MAX);
        c->name = v;
        return EXIT_OK;
    case OPT_GUEST_KEY:
        if (!parse_hex(v, c->guest_key, sizeof(c->guest_key)))
            return usage_error("bad --guest-key: %u hex digits expected (the 65-byte public key "
                               "printed by tsm-guest keygen)",
                               2 * VTSM_ABI_GUEST_KEY_SIZE);
        c->has_guest_key = true;
        return EXIT_OK;
    case OPT_LOCK_FLAGS:
        if (!parse_long(v, 0, 0xffff, &c->lock_flags))
            return usage_error("bad --lock-flags '%s' (0..0xffff)", v);
        return EXIT_OK;
    case OPT_REF_REPORT:
    case OPT_REF_MEAS: {
        uint8_t *out = bit == OPT_REF_REPORT ? c->ref_report : c->ref_meas;
        size_t *len = bit == OPT_REF_REPORT ? &c->ref_report_len : &c->ref_meas_len;
        size_t n = strlen(v) / 2;
        if ((n != 32 && n != 48 && n != 64) || !parse_hex(v, out, n))
            return usage_error("bad --%s: a SHA-256/384/512 digest in hex expected", opt_name(bit));
        *len = n;
        return EXIT_OK;
    }
    case OPT_COUNT:
        if (!parse_long(v, 1, LONG_MAX, &c->count))
            return usage_error("bad --count '%s' (1 or more)", v);
        return EXIT_OK;
    case OPT_TIMEOUT:
        if (!parse_long(v, 1, INT32_MAX, &c->timeout_ms))
            return usage_error("bad --timeout '%s' (ms, 1 or more)", v);
        return EXIT_OK;
    default:
        return usage_error("%s", "internal option error");
    }
}

/* Positional arguments, by the names in cmd->args. */
static int set_positionals(struct cli *c, const struct command *cmd)
{
    char name[8];
    bool optional = false;
    if (cmd->run == verb_request)
        return load_request(c);
    for (unsigned i = 0; arg_name(cmd, i, name, &optional); i++) {
        if (i >= c->npos) {
            if (optional)
                break;
            return usage_error("%s needs %s", c->verb, cmd->args);
        }
        const char *a = c->pos[i];
        if (!strcmp(name, "DEV")) {
            if (vtsm_abi_check_dev(a) != VTSM_OK)
                return usage_error("bad device name '%s' (1..64 of [A-Za-z0-9:._-])", a);
            c->dev = a;
        } else if (!strcmp(name, "TDI")) {
            if (!parse_long(a, 0, 0xffff, &c->tdi))
                return usage_error("bad TDI '%s' (0..65535)", a);
        } else if (!strcmp(name, "TVM")) {
            if (!parse_long(a, 1, (long)UINT32_MAX, &c->tvm))
                return usage_error("bad TVM '%s' (1..%u)", a, UINT32_MAX);
        } else {
            int rc = load_envelope(c, a);
            if (rc != EXIT_OK)
                return rc;
        }
    }
    return EXIT_OK;
}

/* The command's positionals and options, checked against what it takes. */
static int check_command(struct cli *c, const struct command *cmd, char **pos, int npos,
                         unsigned seen)
{
    for (int i = 0; i < npos; i++) {
        char name[8];
        bool optional;
        if (c->npos >= MAX_POS ||
            (cmd->run != verb_request && !arg_name(cmd, c->npos, name, &optional)))
            return usage_error("unexpected argument '%s' for %s", pos[i], c->verb);
        c->pos[c->npos++] = pos[i];
    }
    unsigned extra = seen & ~cmd->opts;
    for (unsigned bit = 1; extra; bit <<= 1)
        if (extra & bit)
            return usage_error("option --%s does not apply to %s", opt_name(bit), c->verb);
    int rc = set_positionals(c, cmd);
    if (rc != EXIT_OK)
        return rc;
    unsigned missing = cmd->required & ~seen;
    if (missing & OPT_DOE)
        return usage_error("%s needs --doe tcp:HOST:PORT", c->verb);
    if (missing & OPT_GUEST_KEY)
        return usage_error("%s needs --guest-key HEX", c->verb);
    return EXIT_OK;
}

/* --trace: one line per DOE object the command carries, on stderr. */
static void trace_line(void *ctx, enum vtsm_host_trace_dir dir, const char *dev, const uint8_t *p,
                       size_t len)
{
    (void)ctx;
    if (dir != VTSM_HOST_TRACE_DOE_REQ && dir != VTSM_HOST_TRACE_DOE_RSP)
        return;
    char what[160], when[32];
    vtsm_trace_doe(p, len, what, sizeof(what));
    vtsm_log_timestamp(when, sizeof(when));
    fprintf(stderr, "%s tsm-host %s %s %zu bytes %s\n", when,
            dir == VTSM_HOST_TRACE_DOE_REQ ? "->" : "<-", dev ? dev : "-", len, what);
}

int main(int argc, char **argv)
{
    struct cli c = {.root_port = -1};
    unsigned seen = 0;
    const char *pcap = NULL;
    bool trace = false;
    int o;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
        switch (o) {
        case G_SOCKET:
            c.socket = optarg;
            break;
        case G_JSON:
            c.json = true;
            break;
        case 'h':
        case G_HELP:
            usage(stdout);
            return EXIT_OK;
        case G_VERSION:
            printf("tsm-host (vtsm) %s\n", vtsm_version());
            return EXIT_OK;
        case G_PCAP:
            pcap = optarg;
            break;
        case G_TRACE:
            trace = true;
            break;
        case '?':
        case ':':
            return usage_error("option '%s' is unknown or needs a value", argv[optind - 1]);
        default: {
            int rc = set_option(&c, (unsigned)o, optarg);
            if (rc != EXIT_OK)
                return rc;
            seen |= (unsigned)o;
        }
        }
    }
    /* getopt_long moved the positionals (the command and its arguments) to the end */
    while (optind < argc && c.npos < MAX_POS)
        c.pos[c.npos++] = argv[optind++];
    if (optind < argc)
        return usage_error("%s", "too many arguments");
    if (c.npos == 0)
        return usage_error("%s", "missing command");
    c.verb = c.pos[0];
    char *pos[MAX_POS];
    int npos = (int)c.npos - 1;
    for (int k = 0; k < npos; k++)
        pos[k] = (char *)c.pos[k + 1];
    c.npos = 0;
    const struct command *cmd = find_command(c.verb);
    unsigned op = cmd ? 0 : vtsm_op_parse(c.verb);
    if (op && op != VTSM_OP_HELLO && op != VTSM_OP_DOE_RESPONSE) {
        /* a verb of the operation table by its name: "request" with that operation */
        cmd = find_command("request");
        c.pos[c.npos++] = c.verb;
    }
    if (!cmd)
        return usage_error("unknown command '%s'", c.verb);
    int rc = check_command(&c, cmd, pos, npos, seen);
    if (rc != EXIT_OK) {
        if (c.envelope)
            cbor_decref(&c.envelope);
        return rc;
    }

    struct vtsm_host *h = NULL;
    vtsm_status st = vtsm_host_open(c.socket, &h);
    if (st != VTSM_OK) {
        /* an ERROR answer to HELLO (e.g. abi_version) is the TSM's; anything else means
         * it could not be reached */
        rc = report_local(&c, st);
        rc = vtsm_status_source(st) == VTSM_SRC_ABI ? rc : EXIT_UNREACHABLE;
    } else {
        if (trace)
            vtsm_host_set_trace(h, trace_line, NULL);
        if (pcap && vtsm_host_set_pcap(h, pcap) != VTSM_OK)
            rc = usage_error("%s", vtsm_err_detail());
        else
            rc = run_command(&c, cmd, h);
        vtsm_host_close(h);
    }
    if (c.envelope)
        cbor_decref(&c.envelope);
    return rc;
}
