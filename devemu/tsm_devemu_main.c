/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tsm-devemu: the emulated TDISP device served over the DMTF spdm-emu socket protocol
 * (the one QEMU's spdm-socket backend speaks) on TCP.
 *
 * Up to --max-clients connections are served at once, all sharing the one device (one
 * mailbox, as hardware has); one more is closed at once with a logged reason. Each NORMAL
 * frame with transport PCI_DOE carries one DOE object; the answer is one NORMAL frame
 * (empty when the device drops the request). A VTSM_LINK frame carries one
 * simulated-link frame and is answered with one (empty when the frame does not decode).
 * Transport NVME carries QEMU's storage binding (IF_SEND / IF_RECV, below). CONTINUE and
 * SHUTDOWN are answered in kind and end the connection, not the server (the device keeps
 * its state); TEST is answered with "Server Hello!"; any other frame gets UNKNOWN and the
 * connection stays. A peer that vanishes mid-frame costs only its connection.
 * SIGTERM/SIGINT exit with status 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vtsm_crypto.h"
#include "vtsm_devemu.h"
#include "vtsm_doe.h"
#include "vtsm_guard.h"
#include "vtsm_log.h"
#include "vtsm_trace.h"
#include "vtsm_version.h"
#include "vtsm_pcap.h"
#include "vtsm_proc.h"
#include "vtsm_sock.h"
#include "vtsm_spdm_defs.h"

/* A frame whose header arrived must be complete within this time. */
#define FRAME_TIMEOUT_MS 10000
#define FRAME_MAX        (VTSM_DOE_MAX_BYTES)
/* VTSM_SOCK_CMD_VTSM_LINK of abi/vtsm_abi.h (the socket ABI library is not linked here;
 * the value is fixed by docs/abi.md section 8.2). */
#define SOCK_CMD_VTSM_LINK 0x5654u
/* The device's runtime control (devemu/README.md "Runtime controls"): payload = one
 * text command, answered with the same command and "ok ..." or "error RULE: detail". */
#define SOCK_CMD_VTSM_CONTROL 0x5643u
#define CONTROL_MAX           256
#define TEST_ANSWER           "Server Hello!"
/* --max-clients: connections served at once (one device, one mailbox). */
#define MAX_CLIENTS_DEFAULT 4
#define MAX_CLIENTS_LIMIT   64

/* --latency-us: every DOE and link answer leaves this long after its request arrived. */
#define LATENCY_MAX_US 10000000L
static long long g_latency_ns;

static volatile sig_atomic_t g_stop;
static int g_wake[2] = {-1, -1};
static struct vtsm_pcap *g_pcap; /* --pcap: every DOE object both ways */
static bool g_trace;             /* --trace: one line per DOE object on stderr */

/* --pcap and --trace of one DOE object; to_host: the device's answer. */
static void capture(const uint8_t *p, size_t len, bool to_host)
{
    if (g_pcap && vtsm_pcap_write(g_pcap, p, len) != VTSM_OK) {
        VTSM_WARN("capture stopped: %s", vtsm_err_detail());
        vtsm_pcap_close(g_pcap);
        g_pcap = NULL;
    }
    if (g_trace) {
        char what[160], when[40];
        vtsm_trace_doe(p, len, what, sizeof(what));
        vtsm_log_timestamp(when, sizeof(when));
        fprintf(stderr, "%s tsm-devemu %s %zu bytes %s\n", when, to_host ? "->" : "<-", len, what);
    }
}

/* --trace inside the session: the plaintext message's name only, never its bytes. */
static void trace_plain(void *ctx, bool to_host, uint32_t session_id, const uint8_t *msg,
                        size_t len)
{
    char what[160], when[40];
    (void)ctx;
    vtsm_trace_spdm(msg, len, what, sizeof(what));
    vtsm_log_timestamp(when, sizeof(when));
    fprintf(stderr, "%s tsm-devemu %s %zu bytes in session 0x%08x: %s\n", when,
            to_host ? "->" : "<-", len, session_id, what);
}

static void on_signal(int sig)
{
    int saved = errno;
    (void)sig;
    g_stop = 1;
    if (g_wake[1] >= 0)
        (void)!write(g_wake[1], "x", 1);
    errno = saved;
}

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: tsm-devemu [--port N] [--listen ADDR] [--port-file PATH] [--alg p384|p256]\n"
        "                  [--spdm-version V] [--tdis N] [--no-tdisp] [--ide-streams N]\n"
        "                  [--ide-link-tcs N] [--ide-addr-assoc N] [--ide-tee-limited]\n"
        "                  [--ide-query-shape spec|dmtf-sample]\n"
        "                  [--key-log FILE] [--fault NAME]... [--cert-dir DIR] [--latency-us N]\n"
        "                  [--meas-hash H] [--max-clients N] [--pcap FILE] [--trace]\n"
        "       tsm-devemu --control HOST:PORT fw-update | meas-change | tdi-error N | flr N |\n"
        "                  report-change N\n"
        "                  [--topology FILE] [--segment S] [--rid RID] [--pfs N] [--vfs N] "
        "[--vf-offset N]\n"
        "                  [--vf-stride N] [--pf-bars RANGES] [--vf-bars RANGES]\n"
        "                  [--tdi RID[=RANGES]]... [--port-index P] [--max-port-index M]\n"
        "                  [--verbose]\n"
        "  --port N         TCP port (default %d; 0 picks a free port)\n"
        "  --listen ADDR    IPv4 address to listen on (default 127.0.0.1)\n"
        "  --port-file PATH write the bound port to PATH (atomically)\n"
        "  --alg ALG        device key algorithm (default p384, or that of --cert-dir)\n"
        "  --spdm-version V SPDM versions offered: a comma list of 1.2, 1.3, 1.4, or both\n"
        "                   (1.2,1.3, the default) or all (1.2,1.3,1.4)\n"
        "  --tdis N         number of TDIs (default 4, 0..255)\n"
        "  --no-tdisp       no TDISP responder: an IDE-only (non-TEE-IO) device\n"
        "  --no-challenge   no CHAL_CAP: CHALLENGE is UnsupportedRequest\n"
        "  --msix-pba       each TDI's report has a third MMIO range: the MSI-X PBA\n"
        "                   (1 page after the table, IS_NON_TEE_MEM)\n"
        "  --ide-streams N  selective IDE streams (default 4, 0..256)\n"
        "  --ide-link-tcs N Link IDE streams, one per traffic class (default 0: none; 0..8)\n"
        "  --ide-addr-assoc N\n"
        "                   address association blocks per selective stream (default 0, 0..15)\n"
        "  --ide-tee-limited\n"
        "                   IDE Capability: TEE-Limited Stream Supported\n"
        "  --ide-query-shape spec|dmtf-sample\n"
        "                   QUERY_RESP registers as PCIe lays them out (default), or as the\n"
        "                   DMTF sample responder sends them (Capability 0, then 72 zero DWs)\n"
        "  --key-log FILE   TEST ONLY: append every IDE key and other secret the device holds\n"
        "  --fault NAME     inject a fault (repeatable):",
        VTSM_SOCK_DEFAULT_PORT);
    for (unsigned i = 0; i < VTSM_DEV_FAULT_COUNT_; i++)
        fprintf(f, " %s", vtsm_dev_fault_name((enum vtsm_dev_fault)i));
    fprintf(f,
            "\n"
            "  --cert-dir DIR   slot 0 from DIR/chain.pem (or root/inter/leaf.pem) and "
            "DIR/leaf.key\n"
            "  --slot N=KIND    certificate slot N (0..7) holds the default chain, the rogue\n"
            "                   chain (not under the test root) or nothing (repeatable)\n"
            "  --data-transfer-size N\n"
            "                   DataTransferSize, the largest message the device takes or\n"
            "                   sends in one piece (default 4096, 42..65536)\n"
            "  --max-spdm-msg-size N\n"
            "                   MaxSPDMmsgSize (default = DataTransferSize, 42..65536); larger\n"
            "                   sets CHUNK_CAP: large messages by CHUNK_SEND / CHUNK_GET\n"
            "  --latency-us N   simulated DOE latency: each DOE or link answer is sent N us\n"
            "                   after its request arrived (default 0, max %ld); the device\n"
            "                   keeps reading and answering meanwhile\n"
            "  --meas-hash H    MeasurementHashAlgo: sha256, sha384 or sha512 (default: that\n"
            "                   of the negotiated base hash)\n"
            "  --max-clients N  connections served at once, sharing the one device (default\n"
            "                   %d, 1..%d); one more is closed at once with a logged reason\n"
            "  --pcap FILE      write every DOE object both ways to FILE (pcap,\n"
            "                   LINKTYPE_PCI_DOE 292, as spdm_dump reads it)\n"
            "  --trace          one line per DOE object on stderr (time, direction, size,\n"
            "                   message), and one per SPDM / IDE_KM / TDISP message inside a\n"
            "                   secure session (its name, never its bytes)\n"
            "                   message)\n"
            "  --port-index P   IDE_KM PortIndex of the device's port (default 0)\n"
            "  --max-port-index M\n"
            "                   MaxPortIndex in QUERY_RESP (default 0; P <= M)\n"
            "  --topology FILE  topology settings, one \"KEY VALUE\" a line (the options below\n"
            "                   without \"--\"; '#' comments)\n"
            "  --segment S      PCI segment of the device (0..255; default 0): TDISP requests\n"
            "                   must name it with Segment Valid set (0: no segment)\n"
            "  --rid RID        requester ID of the DSM (function 0; default 0)\n"
            "  --pfs N          physical functions 1..N are TDIs (RID + 1..N; 0..7)\n"
            "  --vfs N          N virtual functions are TDIs, RID + offset + i * stride\n"
            "  --vf-offset N    First VF Offset (default 1)\n"
            "  --vf-stride N    VF Stride (default 1)\n"
            "  --pf-bars RANGES, --vf-bars RANGES\n"
            "                   MMIO ranges of those TDIs: SIZE[:msix|:pba|:non-tee],... with\n"
            "                   SIZE in bytes (K/M/G suffixes), multiples of 4 KiB\n"
            "  --tdi RID[=RANGES]\n"
            "                   one more TDI with that requester ID (repeatable)\n"
            "                   Any of these replaces the default TDIs 0..N-1 of --tdis\n"
            "  --verbose        log every request\n",
            LATENCY_MAX_US, MAX_CLIENTS_DEFAULT, MAX_CLIENTS_LIMIT);
}

/* --spdm-version: "both" (1.2,1.3), "all" (1.2,1.3,1.4) or a comma list of 1.2, 1.3, 1.4. */
static int parse_versions(const char *arg, uint32_t *out)
{
    static const struct {
        const char *name;
        uint32_t bits;
    } names[] = {
        {"1.2", VTSM_DEV_VER_12},
        {"1.3", VTSM_DEV_VER_13},
        {"1.4", VTSM_DEV_VER_14},
        {"both", VTSM_DEV_VER_12 | VTSM_DEV_VER_13},
        {"all", VTSM_DEV_VER_12 | VTSM_DEV_VER_13 | VTSM_DEV_VER_14},
    };
    uint32_t v = 0;
    const char *p = arg;
    for (;;) {
        size_t n = strcspn(p, ",");
        size_t i = 0;
        while (i < sizeof(names) / sizeof(names[0]) &&
               (strlen(names[i].name) != n || strncmp(p, names[i].name, n) != 0))
            i++;
        if (i == sizeof(names) / sizeof(names[0]))
            return -1;
        v |= names[i].bits;
        if (p[n] == '\0')
            break;
        p += n + 1;
    }
    *out = v;
    return 0;
}

/* Read a whole (small) file into a NUL-terminated heap string. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (cap - n < 4096) {
            char *nb = realloc(buf, cap + 65536);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
            cap += 65536;
        }
        size_t k = fread(buf + n, 1, cap - n - 1, f);
        n += k;
        if (k == 0)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static int append_file(char **all, size_t *all_len, const char *dir, const char *name,
                       bool required)
{
    char path[PATH_MAX];
    size_t len;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    char *s = read_file(path, &len);
    if (!s) {
        if (required)
            VTSM_ERR("cannot read %s: %s", path, strerror(errno));
        return required ? -1 : 0;
    }
    char *n = realloc(*all, *all_len + len + 2);
    if (!n) {
        free(s);
        return -1;
    }
    memcpy(n + *all_len, s, len);
    *all_len += len;
    n[(*all_len)++] = '\n';
    n[*all_len] = '\0';
    *all = n;
    free(s);
    return 0;
}

/* --cert-dir: the chain (DIR/chain.pem, else root.pem + inter.pem + leaf.pem) and key. */
static int load_cert_dir(const char *dir, char **certs, size_t *certs_len, char **key,
                         size_t *key_len)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/chain.pem", dir);
    if (access(path, R_OK) == 0) {
        if (append_file(certs, certs_len, dir, "chain.pem", true))
            return -1;
    } else if (append_file(certs, certs_len, dir, "root.pem", false) ||
               append_file(certs, certs_len, dir, "inter.pem", false) ||
               append_file(certs, certs_len, dir, "leaf.pem", true)) {
        return -1;
    }
    return append_file(key, key_len, dir, "leaf.key", true);
}

/* Write PORT to path through a temporary file and rename, so a reader never sees half. */
static int write_port_file(const char *path, unsigned port)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    int ok = fprintf(f, "%u\n", port) > 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* --key-log (test only): one line per accepted KEY_PROG, flushed at once. */
static void key_log_line(void *ctx, const char *line)
{
    FILE *f = ctx;
    if (fprintf(f, "%s\n", line) < 0 || fflush(f) != 0)
        VTSM_WARN("key log: write failed: %s", strerror(errno));
}

/* An answer held back by --latency-us, in arrival order. */
struct delayed {
    struct delayed *next;
    long long due_ns;
    uint32_t cmd, transport;
    struct vtsm_buf payload;
};

struct reply_queue {
    struct delayed *head, **tail;
};

static void queue_pop_free(struct reply_queue *q)
{
    struct delayed *d = q->head;
    q->head = d->next;
    if (!q->head)
        q->tail = &q->head;
    vtsm_buf_wipe(&d->payload);
    free(d);
}

/* One client connection. The device (one mailbox) is shared by all of them. */
struct conn {
    int fd; /* non-blocking */
    struct reply_queue q;
    unsigned long frames;
    /* the frame being read: header, then payload; frame_start_ns of its first byte */
    uint8_t hdr[VTSM_SOCK_HEADER_SIZE];
    size_t hdr_got;
    struct vtsm_buf in;
    size_t body_len;
    long long frame_start_ns;
    bool qemu;       /* a QEMU-only transport was used: answers capped at QEMU's buffer */
    bool nvme_ready; /* an SPDM answer waits for the storage IF_RECV */
    struct vtsm_buf nvme_rsp;
};

/* Send now, or (with --latency-us) when the latency has passed since the request. */
static vtsm_status reply(struct conn *c, long long arrived_ns, uint32_t cmd, uint32_t transport,
                         const uint8_t *p, size_t len)
{
    VTSM_ENSURE(!c->qemu || len <= VTSM_SOCK_QEMU_MAX_PAYLOAD, VTSM_E_INTERNAL,
                "answer of %zu bytes exceeds QEMU's %u-byte buffer", len,
                VTSM_SOCK_QEMU_MAX_PAYLOAD);
    if (!g_latency_ns)
        return vtsm_sock_send(c->fd, cmd, transport, p, len);
    struct delayed *d = calloc(1, sizeof(*d));
    VTSM_ENSURE(d, VTSM_E_NOMEM, "delayed answer");
    d->due_ns = arrived_ns + g_latency_ns;
    d->cmd = cmd;
    d->transport = transport;
    if (len && vtsm_buf_set(&d->payload, p, len) != VTSM_OK) {
        free(d);
        return vtsm_fail(VTSM_E_NOMEM, "delayed answer");
    }
    *c->q.tail = d;
    c->q.tail = &d->next;
    return VTSM_OK;
}

/* Send the held answers that are due (all of them if all). */
static vtsm_status send_due(struct conn *c, bool all)
{
    while (c->q.head && (all || c->q.head->due_ns <= vtsm_now_ns())) {
        struct delayed *d = c->q.head;
        vtsm_status st =
            vtsm_sock_send(c->fd, d->cmd, d->transport, d->payload.data, d->payload.len);
        queue_pop_free(&c->q);
        VTSM_GUARD(st);
    }
    return VTSM_OK;
}

/* Nanoseconds until the first held answer is due, -1 if none. */
static long long next_due_ns(const struct conn *c)
{
    if (!c->q.head)
        return -1;
    long long left = c->q.head->due_ns - vtsm_now_ns();
    return left <= 0 ? 0 : left;
}

/*
 * QEMU's storage binding (hw/nvme Security Send / Receive forwarded by its spdm-socket
 * backend, transport NVME): each command's payload starts with a 7-byte header {Security
 * Protocol (0xE8 for DMTF SPDM), SP Specific (LE16: SPSP0 = operation << 2 | connection
 * ID, SPSP1 = 0), Length (LE32)}. IF_SEND carries the header and Length bytes of request;
 * IF_RECV carries the header alone, Length being the host's buffer. Each is acknowledged
 * with ACK_STATUS carrying a big-endian NVMe status; a successful IF_RECV is followed by
 * one frame with the response itself, unframed (DSP0286: responses carry no transport
 * header). Operation "SPDM message" (5) is supported; others, and secured messages (6),
 * are refused with Invalid Field.
 */
#define STORAGE_HDR_SIZE      7
#define STORAGE_PROTOCOL_SPDM 0xE8u
#define STORAGE_OP_MESSAGE    0x05u
#define NVME_SC_SUCCESS       0x0000u
#define NVME_SC_INVALID_FIELD 0x4002u /* Invalid Field in Command, Do Not Retry */

static vtsm_status ack_status(struct conn *c, long long arrived, uint16_t sc)
{
    uint8_t b[2] = {(uint8_t)(sc >> 8), (uint8_t)sc};
    return reply(c, arrived, VTSM_SOCK_CMD_STORAGE_ACK_STATUS, VTSM_SOCK_TRANSPORT_NVME, b, 2);
}

/* The storage header; *len its Length. Invalid-Field reason in the log, false returned. */
static bool storage_header(const struct vtsm_buf *in, uint32_t *len)
{
    struct vtsm_rd r = vtsm_rd_init(in->data, in->len);
    uint8_t secp = 0, spsp1 = 0, spsp0 = 0;
    if (vtsm_rd_u8(&r, &secp) || vtsm_rd_u8(&r, &spsp0) || vtsm_rd_u8(&r, &spsp1) ||
        vtsm_rd_le32(&r, len)) {
        VTSM_INFO("storage frame of %zu bytes: no %d-byte header", in->len, STORAGE_HDR_SIZE);
        return false;
    }
    if (secp != STORAGE_PROTOCOL_SPDM || spsp1 != 0 || (spsp0 >> 2) != STORAGE_OP_MESSAGE) {
        VTSM_INFO("storage frame: security protocol 0x%02x, SPSP 0x%02x%02x not supported "
                  "(only SPDM messages, operation %u)",
                  secp, spsp1, spsp0, STORAGE_OP_MESSAGE);
        return false;
    }
    return true;
}

static vtsm_status storage_send(struct vtsm_dev *dev, struct conn *c, long long arrived,
                                const struct vtsm_buf *in, struct vtsm_buf *out)
{
    uint32_t len;
    if (!storage_header(in, &len))
        return ack_status(c, arrived, NVME_SC_INVALID_FIELD);
    if (len != in->len - STORAGE_HDR_SIZE) {
        VTSM_INFO("storage IF_SEND: header says %u bytes, %zu follow", len,
                  in->len - STORAGE_HDR_SIZE);
        return ack_status(c, arrived, NVME_SC_INVALID_FIELD);
    }
    vtsm_status st = vtsm_dev_handle_spdm(dev, in->data + STORAGE_HDR_SIZE, len, out);
    if (st != VTSM_OK) {
        VTSM_INFO("storage IF_SEND of %u bytes not answered: %s (%s)", len, vtsm_status_name(st),
                  vtsm_err_detail());
        c->nvme_ready = false;
        return ack_status(c, arrived, NVME_SC_INVALID_FIELD);
    }
    VTSM_GUARD(vtsm_buf_set(&c->nvme_rsp, out->data, out->len));
    c->nvme_ready = true;
    return ack_status(c, arrived, NVME_SC_SUCCESS);
}

static vtsm_status storage_recv(struct conn *c, long long arrived, const struct vtsm_buf *in)
{
    uint32_t alloc;
    if (!storage_header(in, &alloc) || in->len != STORAGE_HDR_SIZE)
        return ack_status(c, arrived, NVME_SC_INVALID_FIELD);
    if (!c->nvme_ready) {
        VTSM_INFO("storage IF_RECV with no response waiting");
        return ack_status(c, arrived, NVME_SC_INVALID_FIELD);
    }
    if (c->nvme_rsp.len > alloc || c->nvme_rsp.len > VTSM_SOCK_QEMU_MAX_PAYLOAD) {
        VTSM_INFO("storage IF_RECV: response of %zu bytes exceeds the %u-byte buffer (QEMU "
                  "takes at most %u)",
                  c->nvme_rsp.len, alloc, VTSM_SOCK_QEMU_MAX_PAYLOAD);
        return ack_status(c, arrived, NVME_SC_INVALID_FIELD);
    }
    c->nvme_ready = false;
    VTSM_GUARD(ack_status(c, arrived, NVME_SC_SUCCESS));
    return reply(c, arrived, VTSM_SOCK_CMD_STORAGE_IF_RECV, VTSM_SOCK_TRANSPORT_NVME,
                 c->nvme_rsp.data, c->nvme_rsp.len);
}

static const char *transport_name(uint32_t t)
{
    switch (t) {
    case 0:
        return "unspecified";
    case VTSM_SOCK_TRANSPORT_MCTP:
        return "MCTP";
    case VTSM_SOCK_TRANSPORT_PCI_DOE:
        return "PCI_DOE";
    case 3:
        return "TCP (spdm-emu) or SCSI (QEMU)";
    case VTSM_SOCK_TRANSPORT_NVME:
        return "NVMe (QEMU)";
    default:
        return "unknown";
    }
}

/* Handle one frame. VTSM_OK to go on, E_CLOSED when the connection is to end. */
static vtsm_status handle_frame(struct vtsm_dev *dev, struct conn *c, uint32_t cmd,
                                uint32_t transport, const struct vtsm_buf *in, struct vtsm_buf *out,
                                long long arrived)
{
    vtsm_status st;
    if (cmd == VTSM_SOCK_CMD_SHUTDOWN || cmd == VTSM_SOCK_CMD_CONTINUE) {
        /* Session end (spdm-emu): answered in kind, then this connection closes; the
         * device and its state stay for the next one. */
        VTSM_INFO("%s: closing the connection",
                  cmd == VTSM_SOCK_CMD_SHUTDOWN ? "SHUTDOWN" : "CONTINUE");
        if (send_due(c, true) == VTSM_OK)
            (void)vtsm_sock_send(c->fd, cmd, transport, NULL, 0);
        return VTSM_E_CLOSED;
    }
    if (cmd == VTSM_SOCK_CMD_TEST) /* spdm-emu's answer, with its terminating NUL */
        return reply(c, arrived, VTSM_SOCK_CMD_TEST, transport, (const uint8_t *)TEST_ANSWER,
                     sizeof(TEST_ANSWER));
    if (transport == VTSM_SOCK_TRANSPORT_NVME) {
        c->qemu = true;
        if (cmd == VTSM_SOCK_CMD_STORAGE_IF_SEND)
            return storage_send(dev, c, arrived, in, out);
        if (cmd == VTSM_SOCK_CMD_STORAGE_IF_RECV)
            return storage_recv(c, arrived, in);
    } else if (transport == VTSM_SOCK_TRANSPORT_PCI_DOE && cmd == VTSM_SOCK_CMD_NORMAL) {
        capture(in->data, in->len, false);
        st = vtsm_dev_handle(dev, in->data, in->len, out);
        if (st != VTSM_OK) {
            VTSM_INFO("DOE object of %zu bytes not answered: %s (%s)", in->len,
                      vtsm_status_name(st), vtsm_err_detail());
            vtsm_buf_reset(out);
        }
        if (out->len)
            capture(out->data, out->len, true);
        if (c->qemu && out->len > VTSM_SOCK_QEMU_MAX_PAYLOAD) {
            VTSM_WARN("DOE answer of %zu bytes exceeds QEMU's %u-byte buffer: sent empty", out->len,
                      VTSM_SOCK_QEMU_MAX_PAYLOAD);
            vtsm_buf_reset(out);
        }
        return reply(c, arrived, VTSM_SOCK_CMD_NORMAL, transport, out->data, out->len);
    } else if (transport == VTSM_SOCK_TRANSPORT_PCI_DOE && cmd == SOCK_CMD_VTSM_LINK) {
        st = vtsm_dev_link(dev, in->data, in->len, out);
        if (st != VTSM_OK) {
            VTSM_INFO("link frame of %zu bytes not answered: %s (%s)", in->len,
                      vtsm_status_name(st), vtsm_err_detail());
            vtsm_buf_reset(out);
        }
        return reply(c, arrived, SOCK_CMD_VTSM_LINK, transport, out->data, out->len);
    } else if (transport == VTSM_SOCK_TRANSPORT_PCI_DOE && cmd == SOCK_CMD_VTSM_CONTROL) {
        char text[CONTROL_MAX + 1], answer[CONTROL_MAX + 64];
        size_t n = in->len < CONTROL_MAX ? in->len : CONTROL_MAX;
        memcpy(text, in->data, n);
        text[n] = '\0';
        st = vtsm_dev_control(dev, text, answer, sizeof(answer));
        if (st != VTSM_OK) {
            enum vtsm_rule rule = vtsm_err_rule();
            snprintf(answer, sizeof(answer), "error %s %s: %s", rule ? vtsm_rule_id(rule) : "-",
                     vtsm_status_name(st), vtsm_err_detail());
        }
        VTSM_INFO("control '%s': %s", text, answer);
        return reply(c, arrived, SOCK_CMD_VTSM_CONTROL, transport, (const uint8_t *)answer,
                     strlen(answer));
    }
    /* Anything else (another transport, a command not served): UNKNOWN, and the
     * connection stays up. */
    VTSM_INFO("socket command 0x%x with transport %u (%s) not served: UNKNOWN", cmd, transport,
              transport_name(transport));
    return reply(c, arrived, VTSM_SOCK_CMD_UNKNOWN, transport, NULL, 0);
}

/* Frames handled per connection per loop turn: a flooding client cannot starve others. */
#define FRAMES_PER_TURN 8

/*
 * Read what a readable connection has (never waiting) and handle every frame completed,
 * up to FRAMES_PER_TURN. false: close it (EOF, error, oversized frame, failed answer).
 */
static bool serve_conn(struct vtsm_dev *dev, struct conn *c, struct vtsm_buf *out)
{
    for (int handled = 0; handled < FRAMES_PER_TURN;) {
        bool in_hdr = c->hdr_got < sizeof(c->hdr);
        uint8_t *dst = in_hdr ? c->hdr + c->hdr_got : c->in.data + c->in.len;
        size_t want = in_hdr ? sizeof(c->hdr) - c->hdr_got : c->body_len - c->in.len;
        ssize_t k = want ? recv(c->fd, dst, want, 0) : 0;
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        if (k < 0 || (k == 0 && want)) {
            bool mid = c->hdr_got > 0;
            if (k == 0 && !mid)
                VTSM_INFO("connection closed by the peer after %lu frames", c->frames);
            else
                VTSM_WARN("connection dropped: %s", k == 0 ? "peer closed the connection "
                                                             "mid-frame"
                                                           : strerror(errno));
            return false;
        }
        if (k > 0)
            vtsm_sock_quickack(c->fd);
        if (in_hdr) {
            if (c->hdr_got == 0)
                c->frame_start_ns = vtsm_now_ns();
            c->hdr_got += (size_t)k;
            if (c->hdr_got < sizeof(c->hdr))
                continue;
            c->body_len = vtsm_get_be32(c->hdr + 8);
            if (c->body_len > FRAME_MAX) {
                VTSM_WARN("connection dropped: socket frame announces %zu bytes, limit is %u",
                          c->body_len, (unsigned)FRAME_MAX);
                return false;
            }
            vtsm_buf_reset(&c->in);
            if (vtsm_buf_reserve(&c->in, c->body_len) != VTSM_OK)
                return false;
        } else {
            c->in.len += (size_t)k;
        }
        if (c->in.len < c->body_len)
            continue;
        /* a whole frame */
        long long arrived = vtsm_now_ns();
        uint32_t cmd = vtsm_get_be32(c->hdr), transport = vtsm_get_be32(c->hdr + 4);
        c->hdr_got = 0;
        c->frames++;
        handled++;
        vtsm_status st = handle_frame(dev, c, cmd, transport, &c->in, out, arrived);
        if (st == VTSM_E_CLOSED)
            return false;
        if (st != VTSM_OK) {
            VTSM_WARN("send failed: %s (%s)", vtsm_status_name(st), vtsm_err_detail());
            return false;
        }
    }
    return true;
}

/* Nanoseconds until c's half-read frame times out, -1 if none is being read. */
static long long frame_left_ns(const struct conn *c)
{
    if (c->hdr_got == 0)
        return -1;
    long long left = c->frame_start_ns + (long long)FRAME_TIMEOUT_MS * 1000000 - vtsm_now_ns();
    return left <= 0 ? 0 : left;
}

static void conn_close(struct conn *c)
{
    while (c->q.head)
        queue_pop_free(&c->q);
    vtsm_buf_wipe(&c->nvme_rsp);
    vtsm_buf_wipe(&c->in);
    close(c->fd);
    c->fd = -1;
}

/*
 * Serve every connection until stopped: one device, one mailbox, as hardware has; frames
 * of different clients are handled one at a time, whole, each as soon as its last byte
 * is in (a client stalling inside a frame holds nobody else, and is dropped after
 * FRAME_TIMEOUT_MS). A connection past max_clients is closed at once with a logged reason.
 */
static void serve_all(struct vtsm_dev *dev, int lfd, unsigned max_clients)
{
    struct conn conns[MAX_CLIENTS_LIMIT];
    struct pollfd p[MAX_CLIENTS_LIMIT + 2];
    struct vtsm_buf out = {0};
    unsigned n = 0;

    while (!g_stop) {
        long long due = -1;
        for (unsigned i = 0; i < n; i++) {
            long long d = next_due_ns(&conns[i]), f = frame_left_ns(&conns[i]);
            if (d < 0 || (f >= 0 && f < d))
                d = f;
            if (d >= 0 && (due < 0 || d < due))
                due = d;
        }
        p[0] = (struct pollfd){.fd = lfd, .events = POLLIN};
        p[1] = (struct pollfd){.fd = g_wake[0], .events = POLLIN};
        for (unsigned i = 0; i < n; i++)
            p[i + 2] = (struct pollfd){.fd = conns[i].fd, .events = POLLIN};
        struct timespec ts = {.tv_sec = due / 1000000000LL, .tv_nsec = due % 1000000000LL};
        int r = ppoll(p, n + 2, due < 0 ? NULL : &ts, NULL);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            VTSM_WARN("poll: %s", strerror(errno));
            break;
        }
        if (p[1].revents)
            break;
        for (unsigned i = 0; i < n; i++) {
            struct conn *c = &conns[i];
            vtsm_status st = send_due(c, false);
            bool keep = st == VTSM_OK;
            if (!keep)
                VTSM_WARN("send failed: %s (%s)", vtsm_status_name(st), vtsm_err_detail());
            if (keep && (p[i + 2].revents & (POLLIN | POLLHUP | POLLERR)))
                keep = serve_conn(dev, c, &out);
            if (keep && frame_left_ns(c) == 0) {
                VTSM_WARN("connection dropped: a frame stalled for %d ms", FRAME_TIMEOUT_MS);
                keep = false;
            }
            if (!keep)
                conn_close(c);
        }
        /* drop the closed ones, keeping the order (oldest first) */
        unsigned k = 0;
        for (unsigned i = 0; i < n; i++)
            if (conns[i].fd >= 0)
                conns[k++] = conns[i];
        n = k;
        for (unsigned i = 0; i < n; i++)
            if (!conns[i].q.head)
                conns[i].q.tail = &conns[i].q.head; /* moved: re-anchor the empty queue */
        if (p[0].revents & POLLIN) {
            int cfd = accept(lfd, NULL, NULL);
            if (cfd < 0) {
                if (errno != EINTR && errno != ECONNABORTED && errno != EAGAIN)
                    VTSM_WARN("accept: %s", strerror(errno));
                continue;
            }
            fcntl(cfd, F_SETFD, FD_CLOEXEC);
            fcntl(cfd, F_SETFL, fcntl(cfd, F_GETFL) | O_NONBLOCK);
            if (n >= max_clients) {
                VTSM_WARN("connection refused: %u client%s already served (--max-clients %u)", n,
                          n == 1 ? "" : "s", max_clients);
                close(cfd);
                continue;
            }
            if (vtsm_sock_nodelay(cfd) != VTSM_OK)
                VTSM_WARN("TCP_NODELAY: %s", vtsm_err_detail());
            vtsm_sock_quickack(cfd);
            VTSM_INFO("connection accepted (%u client%s)", n + 1, n ? "s" : "");
            conns[n] = (struct conn){.fd = cfd};
            conns[n].q.tail = &conns[n].q.head;
            n++;
        }
    }
    for (unsigned i = 0; i < n; i++)
        conn_close(&conns[i]);
    vtsm_buf_wipe(&out);
}

/* --control HOST:PORT CMD...: send one control command to a running tsm-devemu, print its
 * answer; exit 0 for "ok ...", 1 for a refusal, 2 for a usage or connection failure. */
static int control_client(const char *hostport, int argc, char **argv)
{
    char cmd[CONTROL_MAX + 1] = "";
    size_t n = 0;
    for (int i = 0; i < argc; i++) {
        int k = snprintf(cmd + n, sizeof(cmd) - n, "%s%s", i ? " " : "", argv[i]);
        if (k < 0 || (size_t)k >= sizeof(cmd) - n) {
            fprintf(stderr, "tsm-devemu --control: command longer than %d bytes\n", CONTROL_MAX);
            return 2;
        }
        n += (size_t)k;
    }
    if (n == 0) {
        fprintf(stderr,
                "usage: tsm-devemu --control HOST:PORT fw-update | meas-change | tdi-error N "
                "| flr N | report-change N\n");
        return 2;
    }
    int fd = -1;
    struct vtsm_buf rsp = {0};
    uint32_t rcmd = 0, rtransport = 0;
    int rc = 2;
    if (vtsm_tcp_connect(hostport, &fd) != VTSM_OK ||
        vtsm_sock_send(fd, SOCK_CMD_VTSM_CONTROL, VTSM_SOCK_TRANSPORT_PCI_DOE, cmd, n) != VTSM_OK ||
        vtsm_sock_recv(fd, &rcmd, &rtransport, &rsp, CONTROL_MAX + 64, 5000) != VTSM_OK) {
        fprintf(stderr, "tsm-devemu --control %s: %s\n", hostport, vtsm_err_detail());
        goto out;
    }
    if (rcmd != SOCK_CMD_VTSM_CONTROL) {
        fprintf(stderr, "tsm-devemu --control %s: answer 0x%x, not a control frame\n", hostport,
                rcmd);
        goto out;
    }
    printf("%.*s\n", (int)rsp.len, (const char *)rsp.data);
    rc = rsp.len >= 2 && memcmp(rsp.data, "ok", 2) == 0 ? 0 : 1;
    (void)vtsm_sock_send(fd, VTSM_SOCK_CMD_CONTINUE, VTSM_SOCK_TRANSPORT_PCI_DOE, NULL, 0);
out:
    if (fd >= 0)
        close(fd);
    vtsm_buf_free(&rsp);
    return rc;
}

int main(int argc, char **argv)
{
    enum {
        OPT_PORT = 256,
        OPT_LISTEN,
        OPT_PORT_FILE,
        OPT_ALG,
        OPT_VERSION,
        OPT_TDIS,
        OPT_NO_TDISP,
        OPT_NO_CHALLENGE,
        OPT_MAX_MSG,
        OPT_IDE_STREAMS,
        OPT_KEY_LOG,
        OPT_FAULT,
        OPT_CERT_DIR,
        OPT_SLOT,
        OPT_DTS,
        OPT_LATENCY,
        OPT_MAX_CLIENTS,
        OPT_MEAS_HASH,
        OPT_VERBOSE,
        OPT_PCAP,
        OPT_TRACE,
        OPT_PROG_VERSION,
        OPT_CONTROL,
        OPT_HELP,
        OPT_IDE_LINK_TCS,
        OPT_IDE_ADDR_ASSOC,
        OPT_IDE_TEE_LIMITED,
        OPT_IDE_QUERY_SHAPE,
        OPT_MSIX_PBA,
        OPT_TOPO,      /* one topology setting, named by the option */
        OPT_TOPO_FILE, /* --topology FILE */
        OPT_PORT_INDEX,
        OPT_MAX_PORT_INDEX,
    };
    static const struct option opts[] = {
        {"port", required_argument, NULL, OPT_PORT},
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"port-file", required_argument, NULL, OPT_PORT_FILE},
        {"alg", required_argument, NULL, OPT_ALG},
        {"spdm-version", required_argument, NULL, OPT_VERSION},
        {"version", no_argument, NULL, OPT_PROG_VERSION},
        {"control", required_argument, NULL, OPT_CONTROL},
        {"tdis", required_argument, NULL, OPT_TDIS},
        {"no-tdisp", no_argument, NULL, OPT_NO_TDISP},
        {"no-challenge", no_argument, NULL, OPT_NO_CHALLENGE},
        {"msix-pba", no_argument, NULL, OPT_MSIX_PBA},
        {"ide-streams", required_argument, NULL, OPT_IDE_STREAMS},
        {"key-log", required_argument, NULL, OPT_KEY_LOG},
        {"fault", required_argument, NULL, OPT_FAULT},
        {"cert-dir", required_argument, NULL, OPT_CERT_DIR},
        {"slot", required_argument, NULL, OPT_SLOT},
        {"data-transfer-size", required_argument, NULL, OPT_DTS},
        {"max-spdm-msg-size", required_argument, NULL, OPT_MAX_MSG},
        {"latency-us", required_argument, NULL, OPT_LATENCY},
        {"max-clients", required_argument, NULL, OPT_MAX_CLIENTS},
        {"meas-hash", required_argument, NULL, OPT_MEAS_HASH},
        {"verbose", no_argument, NULL, OPT_VERBOSE},
        {"pcap", required_argument, NULL, OPT_PCAP},
        {"trace", no_argument, NULL, OPT_TRACE},
        {"help", no_argument, NULL, OPT_HELP},
        {"ide-link-tcs", required_argument, NULL, OPT_IDE_LINK_TCS},
        {"ide-addr-assoc", required_argument, NULL, OPT_IDE_ADDR_ASSOC},
        {"ide-tee-limited", no_argument, NULL, OPT_IDE_TEE_LIMITED},
        {"ide-query-shape", required_argument, NULL, OPT_IDE_QUERY_SHAPE},
        {"segment", required_argument, NULL, OPT_TOPO},
        {"rid", required_argument, NULL, OPT_TOPO},
        {"pfs", required_argument, NULL, OPT_TOPO},
        {"vfs", required_argument, NULL, OPT_TOPO},
        {"vf-offset", required_argument, NULL, OPT_TOPO},
        {"vf-stride", required_argument, NULL, OPT_TOPO},
        {"pf-bars", required_argument, NULL, OPT_TOPO},
        {"vf-bars", required_argument, NULL, OPT_TOPO},
        {"tdi", required_argument, NULL, OPT_TOPO},
        {"topology", required_argument, NULL, OPT_TOPO_FILE},
        {"port-index", required_argument, NULL, OPT_PORT_INDEX},
        {"max-port-index", required_argument, NULL, OPT_MAX_PORT_INDEX},
        {NULL, 0, NULL, 0},
    };
    struct vtsm_dev_config cfg;
    const char *listen_addr = "127.0.0.1", *port_file = NULL, *cert_dir = NULL, *alg = NULL;
    const char *key_log_path = NULL, *pcap_path = NULL, *control = NULL;
    long port = VTSM_SOCK_DEFAULT_PORT;
    unsigned max_clients = MAX_CLIENTS_DEFAULT;
    bool verbose = false;
    uint32_t max_msg = 0; /* --max-spdm-msg-size; 0: = DataTransferSize (no CHUNK_CAP) */
    char *end;
    int c, rc = 1, li = 0;
    static struct vtsm_dev_topo topo;

    vtsm_dev_config_default(&cfg);
    vtsm_dev_topo_init(&topo);
    while ((c = getopt_long(argc, argv, "", opts, &li)) != -1) {
        switch (c) {
        case OPT_TOPO:
            if (vtsm_dev_topo_set(&topo, opts[li].name, optarg) != VTSM_OK) {
                fprintf(stderr, "tsm-devemu: --%s: %s\n", opts[li].name, vtsm_err_detail());
                return 2;
            }
            break;
        case OPT_PORT_INDEX:
        case OPT_MAX_PORT_INDEX: {
            long n = strtol(optarg, &end, 0);
            if (*optarg == '\0' || *end || n < 0 || n > 255) {
                fprintf(stderr, "tsm-devemu: bad --%s '%s' (0..255)\n", opts[li].name, optarg);
                return 2;
            }
            if (c == OPT_PORT_INDEX)
                cfg.ide_port_index = (uint8_t)n;
            else
                cfg.ide_max_port_index = (uint8_t)n;
            break;
        }
        case OPT_TOPO_FILE:
            if (vtsm_dev_topo_file(&topo, optarg) != VTSM_OK) {
                fprintf(stderr, "tsm-devemu: --topology: %s\n", vtsm_err_detail());
                return 2;
            }
            break;
        case OPT_PORT:
            port = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end || port < 0 || port > 65535) {
                fprintf(stderr, "tsm-devemu: bad --port '%s'\n", optarg);
                return 2;
            }
            break;
        case OPT_LISTEN:
            listen_addr = optarg;
            break;
        case OPT_PORT_FILE:
            port_file = optarg;
            break;
        case OPT_ALG:
            if (strcmp(optarg, "p384") && strcmp(optarg, "p256")) {
                fprintf(stderr, "tsm-devemu: --alg is p384 or p256\n");
                return 2;
            }
            alg = optarg;
            break;
        case OPT_VERSION:
            if (parse_versions(optarg, &cfg.versions) != 0) {
                fprintf(stderr, "tsm-devemu: --spdm-version is a comma list of 1.2, 1.3, 1.4, or "
                                "both (1.2,1.3) or all (1.2,1.3,1.4)\n");
                return 2;
            }
            break;
        case OPT_TDIS: {
            long n = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end || n < 0 || n > 255) {
                fprintf(stderr, "tsm-devemu: bad --tdis '%s' (0..255)\n", optarg);
                return 2;
            }
            cfg.num_tdis = (unsigned)n;
            break;
        }
        case OPT_NO_TDISP:
            cfg.tdisp = false;
            break;
        case OPT_MSIX_PBA:
            cfg.msix_pba = true;
            break;
        case OPT_NO_CHALLENGE:
            cfg.challenge = false;
            break;
        case OPT_IDE_STREAMS: {
            long n = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end || n < 0 || n > VTSM_DEV_MAX_IDE) {
                fprintf(stderr, "tsm-devemu: bad --ide-streams '%s' (0..%d)\n", optarg,
                        VTSM_DEV_MAX_IDE);
                return 2;
            }
            cfg.ide_streams = (unsigned)n;
            break;
        }
        case OPT_IDE_LINK_TCS:
        case OPT_IDE_ADDR_ASSOC: {
            long n = strtol(optarg, &end, 10), max = c == OPT_IDE_LINK_TCS ? 8 : 15;
            if (*optarg == '\0' || *end || n < 0 || n > max) {
                fprintf(stderr, "tsm-devemu: bad --%s '%s' (0..%ld)\n",
                        c == OPT_IDE_LINK_TCS ? "ide-link-tcs" : "ide-addr-assoc", optarg, max);
                return 2;
            }
            if (c == OPT_IDE_LINK_TCS)
                cfg.ide_link_tcs = (unsigned)n;
            else
                cfg.ide_addr_assoc = (unsigned)n;
            break;
        }
        case OPT_IDE_TEE_LIMITED:
            cfg.ide_tee_limited = true;
            break;
        case OPT_IDE_QUERY_SHAPE:
            if (strcmp(optarg, "spec") == 0)
                cfg.ide_query_shape = VTSM_DEV_IDE_QUERY_SPEC;
            else if (strcmp(optarg, "dmtf-sample") == 0)
                cfg.ide_query_shape = VTSM_DEV_IDE_QUERY_ZERO73;
            else {
                fprintf(stderr, "tsm-devemu: --ide-query-shape is spec or dmtf-sample\n");
                return 2;
            }
            break;
        case OPT_KEY_LOG:
            key_log_path = optarg;
            break;
        case OPT_FAULT: {
            enum vtsm_dev_fault f;
            if (vtsm_dev_fault_parse(optarg, &f) != VTSM_OK) {
                fprintf(stderr, "tsm-devemu: unknown fault '%s'\n", optarg);
                usage(stderr);
                return 2;
            }
            cfg.faults |= VTSM_DEV_FAULT_BIT(f);
            break;
        }
        case OPT_SLOT: {
            /* --slot N=default|rogue|empty */
            long n = strtol(optarg, &end, 10);
            if (end == optarg || *end != '=' || n < 0 || n >= VTSM_DEV_MAX_SLOTS ||
                (strcmp(end + 1, "default") && strcmp(end + 1, "rogue") &&
                 strcmp(end + 1, "empty"))) {
                fprintf(stderr, "tsm-devemu: bad --slot '%s' (N=default|rogue|empty, N 0..%d)\n",
                        optarg, VTSM_DEV_MAX_SLOTS - 1);
                return 2;
            }
            cfg.slots[n].kind = !strcmp(end + 1, "default") ? VTSM_DEV_SLOT_DEFAULT
                                : !strcmp(end + 1, "rogue") ? VTSM_DEV_SLOT_ROGUE
                                                            : VTSM_DEV_SLOT_EMPTY;
            break;
        }
        case OPT_DTS: {
            long n = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end || n < 42 || n > 65536) {
                fprintf(stderr, "tsm-devemu: bad --data-transfer-size '%s' (42..65536)\n", optarg);
                return 2;
            }
            cfg.data_transfer_size = (uint32_t)n;
            break;
        }
        case OPT_MAX_MSG: {
            long n = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end || n < 42 || n > 65536) {
                fprintf(stderr, "tsm-devemu: bad --max-spdm-msg-size '%s' (42..65536)\n", optarg);
                return 2;
            }
            max_msg = (uint32_t)n;
            break;
        }
        case OPT_LATENCY: {
            long n = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end || n < 0 || n > LATENCY_MAX_US) {
                fprintf(stderr, "tsm-devemu: bad --latency-us '%s' (0..%ld)\n", optarg,
                        LATENCY_MAX_US);
                return 2;
            }
            g_latency_ns = (long long)n * 1000;
            break;
        }
        case OPT_MAX_CLIENTS: {
            long n = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end || n < 1 || n > MAX_CLIENTS_LIMIT) {
                fprintf(stderr, "tsm-devemu: bad --max-clients '%s' (1..%d)\n", optarg,
                        MAX_CLIENTS_LIMIT);
                return 2;
            }
            max_clients = (unsigned)n;
            break;
        }
        case OPT_MEAS_HASH:
            if (!strcmp(optarg, "sha256"))
                cfg.meas_hash = SPDM_MEAS_HASH_SHA256;
            else if (!strcmp(optarg, "sha384"))
                cfg.meas_hash = SPDM_MEAS_HASH_SHA384;
            else if (!strcmp(optarg, "sha512"))
                cfg.meas_hash = SPDM_MEAS_HASH_SHA512;
            else {
                fprintf(stderr, "tsm-devemu: --meas-hash is sha256, sha384 or sha512\n");
                return 2;
            }
            break;
        case OPT_CERT_DIR:
            cert_dir = optarg;
            break;
        case OPT_VERBOSE:
            verbose = true;
            break;
        case OPT_PCAP:
            pcap_path = optarg;
            break;
        case OPT_TRACE:
            g_trace = true;
            break;
        case OPT_CONTROL:
            control = optarg;
            break;
        case OPT_PROG_VERSION:
            printf("tsm-devemu (vtsm) %s\n", vtsm_version());
            return 0;
        case OPT_HELP:
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (control)
        return control_client(control, argc - optind, argv + optind);
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    if (cfg.ide_port_index > cfg.ide_max_port_index) {
        fprintf(stderr, "tsm-devemu: --port-index %u is above --max-port-index %u\n",
                cfg.ide_port_index, cfg.ide_max_port_index);
        return 2;
    }
    if (vtsm_dev_topo_apply(&topo, &cfg) != VTSM_OK) {
        fprintf(stderr, "tsm-devemu: %s\n", vtsm_err_detail());
        return 2;
    }
    /* MaxSPDMmsgSize equal to DataTransferSize: no CHUNK_CAP; larger: CHUNK_CAP. */
    cfg.max_spdm_msg_size = max_msg ? max_msg : cfg.data_transfer_size;
    if (cfg.max_spdm_msg_size < cfg.data_transfer_size) {
        fprintf(stderr, "tsm-devemu: --max-spdm-msg-size %u below --data-transfer-size %u\n",
                cfg.max_spdm_msg_size, cfg.data_transfer_size);
        return 2;
    }
    vtsm_log_init("tsm-devemu", verbose ? VTSM_LOG_DEBUG : VTSM_LOG_WARN);
    setvbuf(stdout, NULL, _IOLBF, 0);

    char *certs = NULL, *key = NULL;
    size_t certs_len = 0, key_len = 0;
    struct vtsm_dev *dev = NULL;
    FILE *key_log = NULL;
    int lfd = -1;
    uint16_t bound = 0;
    bool wrote_port = false;

    if (cert_dir) {
        if (load_cert_dir(cert_dir, &certs, &certs_len, &key, &key_len))
            goto out;
        cfg.slots[0].kind = VTSM_DEV_SLOT_PEM;
        cfg.slots[0].certs_pem = certs;
        cfg.slots[0].certs_pem_len = certs_len;
        cfg.slots[0].key_pem = key;
        cfg.slots[0].key_pem_len = key_len;
        if (!alg) {
            EVP_PKEY *k = NULL;
            if (vtsm_pkey_from_pem(key, key_len, &k) == VTSM_OK &&
                vtsm_pkey_asym(k) == VTSM_ASYM_ECDSA_P256)
                alg = "p256";
            EVP_PKEY_free(k);
        }
    }
    if (alg && !strcmp(alg, "p256")) {
        cfg.asym = VTSM_ASYM_ECDSA_P256;
        cfg.hash = VTSM_HASH_SHA256;
        cfg.dhe = VTSM_DHE_SECP256R1;
    }

    if (pcap_path && vtsm_pcap_open(pcap_path, VTSM_PCAP_LINKTYPE_PCI_DOE, &g_pcap) != VTSM_OK) {
        VTSM_ERR("%s", vtsm_err_detail());
        return 2;
    }
    if (key_log_path) {
        key_log = fopen(key_log_path, "a");
        if (!key_log) {
            VTSM_ERR("cannot open key log %s: %s", key_log_path, strerror(errno));
            goto out;
        }
        VTSM_WARN("--key-log %s: every IDE key the device accepts is written there (test only)",
                  key_log_path);
        cfg.key_log = key_log_line;
        cfg.key_log_ctx = key_log;
        cfg.secret_log = key_log_line; /* one file: KEY_PROG keys and "secret" lines */
        cfg.secret_log_ctx = key_log;
    }

    if (g_trace)
        cfg.msg_trace = trace_plain;
    vtsm_status st = vtsm_dev_new(&cfg, &dev);
    if (st != VTSM_OK) {
        VTSM_ERR("device: %s (%s)", vtsm_status_name(st), vtsm_err_detail());
        goto out;
    }
    if (pipe(g_wake) != 0) {
        VTSM_ERR("pipe: %s", strerror(errno));
        goto out;
    }
    for (int i = 0; i < 2; i++) {
        fcntl(g_wake[i], F_SETFD, FD_CLOEXEC);
        fcntl(g_wake[i], F_SETFL, O_NONBLOCK);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    st = vtsm_tcp_listen(listen_addr, (uint16_t)port, &lfd, &bound);
    if (st != VTSM_OK) {
        VTSM_ERR("%s", vtsm_err_detail());
        goto out;
    }
    if (port_file) {
        if (write_port_file(port_file, bound) != 0) {
            VTSM_ERR("cannot write port file %s: %s", port_file, strerror(errno));
            goto out;
        }
        wrote_port = true;
    }
    if (cfg.data_transfer_size > 4096)
        VTSM_WARN("--data-transfer-size %u: DOE answers may exceed the %u bytes QEMU's "
                  "spdm-socket reads; keep 4096 or less for QEMU",
                  cfg.data_transfer_size, VTSM_SOCK_QEMU_MAX_PAYLOAD);
    printf("tsm-devemu listening on %s:%u\n", listen_addr, bound);
    fflush(stdout);
    if (cfg.faults) {
        for (unsigned i = 0; i < VTSM_DEV_FAULT_COUNT_; i++)
            if (cfg.faults & VTSM_DEV_FAULT_BIT(i))
                VTSM_WARN("fault injected: %s", vtsm_dev_fault_name((enum vtsm_dev_fault)i));
    }

    serve_all(dev, lfd, max_clients);
    rc = g_stop ? 0 : 1;
out:
    if (lfd >= 0)
        close(lfd);
    if (wrote_port)
        unlink(port_file);
    vtsm_dev_free(dev);
    vtsm_pcap_close(g_pcap);
    if (key_log)
        fclose(key_log);
    free(certs);
    if (key) {
        OPENSSL_cleanse(key, key_len);
        free(key);
    }
    for (int i = 0; i < 2; i++)
        if (g_wake[i] >= 0)
            close(g_wake[i]);
    return rc;
}
