/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vtsm-qguest: the guest side of the QEMU test (docs/qemu.md). Runs the TSM's SPDM
 * requester (tsm/spdm, every response parsed and every signature verified) against the
 * SPDM responder behind a QEMU nvme device, through one of QEMU's two transports:
 *
 *   vtsm-qguest doe BDF          the function's DOE mailbox, driven through its PCI
 *                                configuration space (/sys/bus/pci/devices/BDF/config):
 *                                DOE discovery, VCA, DIGESTS, CERTIFICATE, signed
 *                                MEASUREMENTS, then KEY_EXCHANGE/FINISH, MEASUREMENTS
 *                                inside the session and END_SESSION
 *   vtsm-qguest nvme /dev/nvmeN  NVMe Security Send / Security Receive (admin opcodes
 *                                0x81 / 0x82, Security Protocol 0xE8, DSP0286): VCA,
 *                                DIGESTS, CERTIFICATE, signed MEASUREMENTS
 *   vtsm-qguest serve BDF FILE   the function's DOE mailbox as a DOE target for tsmd:
 *                                an spdm-emu socket server on 127.0.0.1 (port written
 *                                to FILE) passing each PCI_DOE frame's data object
 *                                through the mailbox (tsm-host --doe tcp:127.0.0.1:PORT),
 *                                until SIGTERM
 *
 * Every exchange is printed ("xchg ...", with its time), then the medians for small
 * messages and for CERTIFICATE portions. Exit 0 only if every step succeeded.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/nvme_ioctl.h>

#include "vtsm_doe.h"
#include "vtsm_guard.h"
#include "vtsm_sock.h"
#include "vtsm_spdm_req.h"
#include "vtsm_trace.h"

/* PCIe DOE extended capability (PCIe Base 6.x, 7.9.24): register offsets and bits. */
#define DOE_EXT_CAP_ID  0x2Eu
#define DOE_CTRL        0x08u
#define DOE_STATUS      0x0Cu
#define DOE_WRITE_MBOX  0x10u
#define DOE_READ_MBOX   0x14u
#define DOE_CTRL_ABORT  (1u << 0)
#define DOE_CTRL_GO     (1u << 31)
#define DOE_STATUS_BUSY (1u << 0)
#define DOE_STATUS_ERR  (1u << 2)
#define DOE_STATUS_DOR  (1u << 31)

/* NVMe Security Send / Receive carrying SPDM (DSP0286): protocol 0xE8, SP Specific
 * byte 0 = operation << 2 | connection ID, operation 5 = SPDM message. */
#define NVME_ADMIN_SECURITY_SEND 0x81u
#define NVME_ADMIN_SECURITY_RECV 0x82u
#define STORAGE_SECP_SPDM        0xE8u
#define STORAGE_SPSP0_MESSAGE    (0x05u << 2)
#define NVME_RECV_ALLOC          0x1000u

#define MAX_XCHG      512
#define SMALL_MAX     256u  /* "small": request and response both at most this many bytes */
#define CERT_PORTION  1024u /* CERTIFICATE portion asked for (DataTransferSize - 8) */
#define TIMING_ROUNDS 6     /* DIGESTS + CERTIFICATE again, for the medians */

#define X_DISCOVERY 0x100 /* struct xchg code of a DOE discovery exchange */
#define X_SECURED   0x200 /* ... of a secured message (DSP0277) */
struct xchg {
    unsigned code; /* SPDM request code, or X_DISCOVERY / X_SECURED */
    size_t req, rsp;
    long long ns;  /* the whole exchange, as the requester sees it */
    long long hop; /* the part spent in QEMU and beyond: DOE Go until Data Object Ready, or
                    * the Security Send and Receive commands themselves */
};

struct qg {
    int fd;
    unsigned doe; /* DOE capability offset */
    /* nvme: what the length of an unframed SPDM response depends on */
    uint8_t version;
    uint32_t asym_sel, hash_sel;
    bool meas_sig;
    struct xchg x[MAX_XCHG];
    unsigned n;
    uint8_t rbuf[NVME_RECV_ALLOC];
};

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void note(struct qg *q, unsigned code, size_t req, size_t rsp, long long ns, long long hop)
{
    const char *name = code == X_DISCOVERY ? "DOE_DISCOVERY"
                       : code == X_SECURED ? "SECURED_MESSAGE"
                                           : vtsm_spdm_code_name((uint8_t)code);
    printf("xchg %u %s req %zu rsp %zu us %lld hop_us %lld\n", q->n, name, req, rsp, ns / 1000,
           hop / 1000);
    if (q->n < MAX_XCHG)
        q->x[q->n] = (struct xchg){code, req, rsp, ns, hop};
    q->n++;
}

/* ---- DOE through configuration space ---- */

static int cfg_rd(int fd, unsigned off, uint32_t *v)
{
    uint8_t b[4];
    if (pread(fd, b, 4, off) != 4)
        return -1;
    *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return 0;
}

static int cfg_wr(int fd, unsigned off, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    return pwrite(fd, b, 4, off) == 4 ? 0 : -1;
}

static unsigned find_doe(int fd)
{
    unsigned off = 0x100;
    for (int i = 0; i < 64 && off >= 0x100; i++) {
        uint32_t h;
        if (cfg_rd(fd, off, &h) || h == 0 || h == 0xFFFFFFFFu)
            return 0;
        if ((h & 0xFFFFu) == DOE_EXT_CAP_ID)
            return off;
        off = h >> 20;
    }
    return 0;
}

/* Wait until (status & mask) == want, up to 5 s; the status in *st. */
static int doe_wait(struct qg *q, uint32_t mask, uint32_t want, uint32_t *st)
{
    long long end = now_ns() + 5000000000LL;
    do {
        if (cfg_rd(q->fd, q->doe + DOE_STATUS, st))
            return -1;
        if (*st & DOE_STATUS_ERR)
            return -1;
        if ((*st & mask) == want)
            return 0;
    } while (now_ns() < end);
    return -1;
}

static vtsm_status doe_exchange(void *ctx, const uint8_t *req, size_t len, struct vtsm_buf *rsp)
{
    struct qg *q = ctx;
    uint32_t st = 0, w = 0, hdr0, hdr1;
    long long t0 = now_ns();

    if (len < 12 || len % 4 || doe_wait(q, DOE_STATUS_BUSY | DOE_STATUS_DOR, 0, &st))
        return vtsm_fail(VTSM_E_DOE_HOST, "DOE mailbox not idle");
    for (size_t i = 0; i < len; i += 4) {
        w = (uint32_t)req[i] | (uint32_t)req[i + 1] << 8 | (uint32_t)req[i + 2] << 16 |
            (uint32_t)req[i + 3] << 24;
        if (cfg_wr(q->fd, q->doe + DOE_WRITE_MBOX, w))
            return vtsm_fail(VTSM_E_DOE_HOST, "write mailbox: %s", strerror(errno));
    }
    long long t_go = now_ns();
    if (cfg_wr(q->fd, q->doe + DOE_CTRL, DOE_CTRL_GO) ||
        doe_wait(q, DOE_STATUS_DOR, DOE_STATUS_DOR, &st)) {
        (void)cfg_wr(q->fd, q->doe + DOE_CTRL, DOE_CTRL_ABORT);
        return vtsm_fail(VTSM_E_DOE_HOST, "no data object ready (status 0x%08x)", st);
    }
    long long hop = now_ns() - t_go;
    /* Each dword read is acknowledged by a write to the read mailbox. */
    if (cfg_rd(q->fd, q->doe + DOE_READ_MBOX, &hdr0) || cfg_wr(q->fd, q->doe + DOE_READ_MBOX, 0) ||
        cfg_rd(q->fd, q->doe + DOE_READ_MBOX, &hdr1) || cfg_wr(q->fd, q->doe + DOE_READ_MBOX, 0))
        return vtsm_fail(VTSM_E_DOE_HOST, "read mailbox: %s", strerror(errno));
    uint32_t dws = hdr1 & 0x3FFFFu;
    if (dws < 2 || dws > 0x2000u)
        return vtsm_fail(VTSM_E_DOE_HOST, "response object of %u DW", dws);
    vtsm_buf_reset(rsp);
    VTSM_GUARD(vtsm_buf_reserve(rsp, (size_t)dws * 4));
    uint32_t hw[2] = {hdr0, hdr1};
    for (uint32_t i = 0; i < dws; i++) {
        if (i >= 2 &&
            (cfg_rd(q->fd, q->doe + DOE_READ_MBOX, &w) || cfg_wr(q->fd, q->doe + DOE_READ_MBOX, 0)))
            return vtsm_fail(VTSM_E_DOE_HOST, "read mailbox: %s", strerror(errno));
        uint32_t v = i < 2 ? hw[i] : w;
        uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
        VTSM_GUARD(vtsm_buf_append(rsp, b, 4));
    }
    if (cfg_rd(q->fd, q->doe + DOE_STATUS, &st) || (st & (DOE_STATUS_DOR | DOE_STATUS_ERR)))
        return vtsm_fail(VTSM_E_DOE_HOST, "status 0x%08x after the whole response", st);
    note(q,
         req[2] == VTSM_DOE_TYPE_DISCOVERY ? X_DISCOVERY
         : req[2] == VTSM_DOE_TYPE_SPDM    ? req[9]
                                           : X_SECURED,
         len, rsp->len, now_ns() - t0, hop);
    return VTSM_OK;
}

/* ---- NVMe Security Send / Receive ---- */

/* Digest size of BaseHashSel (DSP0274 BaseHashAlgo bits). */
static size_t hash_size(uint32_t hash)
{
    static const size_t sz[] = {32, 48, 64, 32, 48, 64, 32};
    for (unsigned i = 0; i < sizeof(sz) / sizeof(sz[0]); i++)
        if (hash == 1u << i)
            return sz[i];
    return 0;
}

/* Signature size of BaseAsymSel (DSP0274 BaseAsymAlgo bits). */
static size_t sig_size(uint32_t asym)
{
    static const size_t sz[] = {256, 256, 384, 384, 64, 512, 512, 96, 132, 64, 64, 114};
    for (unsigned i = 0; i < sizeof(sz) / sizeof(sz[0]); i++)
        if (asym == 1u << i)
            return sz[i];
    return 0;
}

static uint32_t le(const uint8_t *p, unsigned n)
{
    uint32_t v = 0;
    for (unsigned i = n; i-- > 0;)
        v = v << 8 | p[i];
    return v;
}

/* The length of the SPDM request in a DOE payload (which is padded to a DW): the
 * storage binding carries the message alone. 0 if not a request this program sends. */
static size_t req_len(struct qg *q, const uint8_t *p, size_t n)
{
    if (n < 4)
        return 0;
    switch (p[1]) {
    case SPDM_GET_VERSION:
    case SPDM_GET_DIGESTS:
        return 4;
    case SPDM_GET_CAPABILITIES:
        return p[0] >= VTSM_SPDM_V12 ? 20 : p[0] == VTSM_SPDM_V11 ? 12 : 4;
    case SPDM_NEGOTIATE_ALGORITHMS:
        return n >= 6 ? le(p + 4, 2) : 0;
    case SPDM_GET_CERTIFICATE:
        return 8;
    case SPDM_GET_MEASUREMENTS:
        q->meas_sig = p[2] & 1;
        return 4 + (q->meas_sig ? 33 : 0) + (p[0] >= VTSM_SPDM_V13 ? 8 : 0);
    default:
        return 0;
    }
}

/* The length of the SPDM response at the start of p[0..n) (the rest is the zeroed
 * remainder of the receive buffer). 0 if it cannot be told. */
static size_t rsp_len(struct qg *q, const uint8_t *p, size_t n)
{
    size_t len = 0;
    if (n < 4)
        return 0;
    switch (p[1]) {
    case SPDM_VERSION:
        len = n >= 6 ? 6 + 2 * (size_t)p[5] : 0;
        if (len)
            q->version = p[0];
        break;
    case SPDM_CAPABILITIES:
        len = p[0] >= VTSM_SPDM_V12 ? 20 : 12;
        q->version = p[0];
        break;
    case SPDM_ALGORITHMS:
        len = n >= 20 ? le(p + 4, 2) : 0;
        q->asym_sel = n >= 20 ? le(p + 12, 4) : 0;
        q->hash_sel = n >= 20 ? le(p + 16, 4) : 0;
        break;
    case SPDM_DIGESTS: {
        /* One digest of the negotiated hash per slot in Param2. */
        unsigned slots = (unsigned)__builtin_popcount(p[3]);
        len = hash_size(q->hash_sel) ? 4 + (size_t)slots * hash_size(q->hash_sel) : 0;
        break;
    }
    case SPDM_CERTIFICATE:
        len = n >= 8 ? 8 + le(p + 4, 2) : 0;
        break;
    case SPDM_MEASUREMENTS: {
        if (n < 8)
            return 0;
        size_t o = 8 + le(p + 5, 3) + 32;
        if (o + 2 > n)
            return 0;
        o += 2 + le(p + o, 2);
        o += q->version >= VTSM_SPDM_V13 ? 8 : 0;
        o += q->meas_sig ? sig_size(q->asym_sel) : 0;
        len = o;
        break;
    }
    case SPDM_ERROR:
        len = p[2] == 0x42 ? 8 : 4; /* ResponseNotReady carries 4 bytes of data */
        break;
    default:
        return 0;
    }
    return len <= n ? len : 0;
}

static int nvme_sec_op(struct qg *q, uint8_t opcode, uint8_t spsp0, void *data, uint32_t len,
                       uint32_t *status)
{
    struct nvme_passthru_cmd c;
    memset(&c, 0, sizeof(c));
    c.opcode = opcode;
    c.addr = (uint64_t)(uintptr_t)data;
    c.data_len = len;
    c.cdw10 = STORAGE_SECP_SPDM << 24 | (uint32_t)spsp0 << 8;
    c.cdw11 = len;
    c.timeout_ms = 10000;
    int rc = ioctl(q->fd, NVME_IOCTL_ADMIN_CMD, &c);
    if (rc < 0)
        return -1;
    *status = (uint32_t)rc;
    return 0;
}

static int nvme_sec(struct qg *q, uint8_t opcode, void *data, uint32_t len, uint32_t *status)
{
    return nvme_sec_op(q, opcode, STORAGE_SPSP0_MESSAGE, data, len, status);
}

/*
 * What the binding refuses, through QEMU: a Security Receive with no response waiting and
 * a Security Send of operation 6 (secured message, not served over this binding) must
 * each complete with Invalid Field in Command, Do Not Retry (0x4002, as the Linux driver
 * reports the status field), and leave the connection to the device usable.
 */
#define NVME_SC_INVALID_FIELD_DNR 0x4002u
#define STORAGE_SPSP0_SECURED     (0x06u << 2)
static vtsm_status nvme_refusals(struct qg *q)
{
    uint8_t req[4] = {VTSM_SPDM_V12, SPDM_GET_VERSION, 0, 0};
    uint32_t status = 0;
    if (nvme_sec(q, NVME_ADMIN_SECURITY_RECV, q->rbuf, sizeof(q->rbuf), &status))
        return vtsm_fail(VTSM_E_DOE_HOST, "Security Receive: %s", strerror(errno));
    printf("refusal: Security Receive with nothing waiting: NVMe status 0x%04x\n", status);
    if (status != NVME_SC_INVALID_FIELD_DNR)
        return vtsm_fail(VTSM_E_PEER_UNEXPECTED, "expected status 0x%04x",
                         NVME_SC_INVALID_FIELD_DNR);
    if (nvme_sec_op(q, NVME_ADMIN_SECURITY_SEND, STORAGE_SPSP0_SECURED, req, sizeof(req), &status))
        return vtsm_fail(VTSM_E_DOE_HOST, "Security Send: %s", strerror(errno));
    printf("refusal: Security Send of a secured message (operation 6): NVMe status 0x%04x\n",
           status);
    if (status != NVME_SC_INVALID_FIELD_DNR)
        return vtsm_fail(VTSM_E_PEER_UNEXPECTED, "expected status 0x%04x",
                         NVME_SC_INVALID_FIELD_DNR);
    return VTSM_OK;
}

static vtsm_status nvme_exchange(void *ctx, const uint8_t *req, size_t len, struct vtsm_buf *rsp)
{
    struct qg *q = ctx;
    struct vtsm_doe_obj obj;
    uint8_t sbuf[NVME_RECV_ALLOC];
    uint32_t status = 0;
    long long t0 = now_ns();

    VTSM_GUARD(vtsm_doe_parse(req, len, &obj));
    if (obj.type != VTSM_DOE_TYPE_SPDM)
        return vtsm_fail(VTSM_E_CONFIG, "only CMA/SPDM objects go over the storage binding");
    size_t n = req_len(q, obj.payload, obj.payload_len);
    if (!n || n > obj.payload_len || n > sizeof(sbuf))
        return vtsm_fail(VTSM_E_CONFIG, "request 0x%02x: length unknown to this program",
                         obj.payload_len > 1 ? obj.payload[1] : 0);
    memcpy(sbuf, obj.payload, n);
    long long t_cmd = now_ns();
    if (nvme_sec(q, NVME_ADMIN_SECURITY_SEND, sbuf, (uint32_t)n, &status) || status)
        return vtsm_fail(VTSM_E_DOE_HOST, "Security Send: %s, NVMe status 0x%x",
                         status ? "refused" : strerror(errno), status);
    memset(q->rbuf, 0, sizeof(q->rbuf));
    if (nvme_sec(q, NVME_ADMIN_SECURITY_RECV, q->rbuf, sizeof(q->rbuf), &status) || status)
        return vtsm_fail(VTSM_E_DOE_HOST, "Security Receive: %s, NVMe status 0x%x",
                         status ? "refused" : strerror(errno), status);
    long long hop = now_ns() - t_cmd;
    size_t m = rsp_len(q, q->rbuf, sizeof(q->rbuf));
    if (!m)
        return vtsm_fail(VTSM_E_PEER_MALFORMED, "response 0x%02x: length unknown", q->rbuf[1]);
    for (size_t i = m; i < sizeof(q->rbuf); i++)
        if (q->rbuf[i])
            return vtsm_fail(VTSM_E_PEER_MALFORMED,
                             "response 0x%02x of %zu bytes has data at byte %zu", q->rbuf[1], m, i);
    vtsm_buf_reset(rsp);
    VTSM_GUARD(vtsm_doe_build_buf(VTSM_DOE_VENDOR_PCISIG, VTSM_DOE_TYPE_SPDM, q->rbuf, m, rsp));
    note(q, obj.payload[1], n, m, now_ns() - t0, hop);
    return VTSM_OK;
}

/* ---- the run ---- */

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

static long long median_of(long long *v, unsigned k)
{
    qsort(v, k, sizeof(v[0]), cmp_ll);
    return k % 2 ? v[k / 2] : (v[k / 2 - 1] + v[k / 2]) / 2;
}

/* Median exchange time (us) of those that match; prints it with the count. */
static void median(const struct qg *q, const char *what, bool cert)
{
    long long v[MAX_XCHG], h[MAX_XCHG];
    unsigned k = 0;
    for (unsigned i = 0; i < q->n && i < MAX_XCHG; i++) {
        const struct xchg *x = &q->x[i];
        bool is_cert = x->code == SPDM_GET_CERTIFICATE && x->rsp >= CERT_PORTION;
        bool small = x->req <= SMALL_MAX && x->rsp <= SMALL_MAX;
        if (cert ? is_cert : small) {
            h[k] = x->hop;
            v[k++] = x->ns;
        }
    }
    if (!k) {
        printf("median %s: none\n", what);
        return;
    }
    long long m = median_of(v, k), mh = median_of(h, k);
    printf("median %s: %lld us over %u exchanges (min %lld, max %lld), in QEMU and beyond %lld "
           "us\n",
           what, m / 1000, k, v[0] / 1000, v[k - 1] / 1000, mh / 1000);
}

#define STEP(name, call)                                                                           \
    do {                                                                                           \
        vtsm_status st_ = (call);                                                                  \
        if (st_ != VTSM_OK) {                                                                      \
            printf("step %s: FAILED %s (%s)\n", name, vtsm_status_name(st_), vtsm_err_detail());   \
            goto out;                                                                              \
        }                                                                                          \
        printf("step %s: ok\n", name);                                                             \
    } while (0)

static int discover(struct qg *q)
{
    struct vtsm_buf req = {0}, rsp = {0};
    struct vtsm_doe_obj obj;
    struct vtsm_doe_disc_rsp d;
    uint8_t idx = 0, pl[4];
    unsigned found = 0;
    int rc = -1;
    do {
        vtsm_doe_disc_req_payload(idx, pl);
        vtsm_buf_reset(&req);
        if (vtsm_doe_build_buf(VTSM_DOE_VENDOR_PCISIG, VTSM_DOE_TYPE_DISCOVERY, pl, 4, &req) ||
            doe_exchange(q, req.data, req.len, &rsp) || vtsm_doe_parse(rsp.data, rsp.len, &obj) ||
            vtsm_doe_disc_rsp_parse(&obj, &d))
            goto out;
        printf("doe protocol vendor 0x%04x type %u\n", d.vendor_id, d.type);
        if (d.vendor_id == VTSM_DOE_VENDOR_PCISIG && d.type == VTSM_DOE_TYPE_SPDM)
            found |= 1;
        if (d.vendor_id == VTSM_DOE_VENDOR_PCISIG && d.type == VTSM_DOE_TYPE_SECURED_SPDM)
            found |= 2;
        idx = d.next_index;
    } while (idx);
    rc = found == 3 ? 0 : -1;
out:
    vtsm_buf_free(&req);
    vtsm_buf_free(&rsp);
    return rc;
}

/* ---- serve: the mailbox behind an spdm-emu socket, for tsmd ---- */

static volatile sig_atomic_t stop;
static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

/* One connection: frames until the peer ends it. */
static void serve_conn(struct qg *q, int cfd)
{
    struct vtsm_buf in = {0}, out = {0};
    uint32_t cmd, tp;
    unsigned frames = 0;
    while (!stop) {
        vtsm_status st = vtsm_sock_recv(cfd, &cmd, &tp, &in, VTSM_DOE_MAX_BYTES, -1);
        if (st != VTSM_OK)
            break;
        frames++;
        if (cmd == VTSM_SOCK_CMD_CONTINUE || cmd == VTSM_SOCK_CMD_SHUTDOWN) {
            (void)vtsm_sock_send(cfd, cmd, tp, NULL, 0);
            break;
        }
        if (cmd != VTSM_SOCK_CMD_NORMAL || tp != VTSM_SOCK_TRANSPORT_PCI_DOE) {
            (void)vtsm_sock_send(cfd, VTSM_SOCK_CMD_UNKNOWN, tp, NULL, 0);
            continue;
        }
        if (doe_exchange(q, in.data, in.len, &out) != VTSM_OK) {
            printf("serve: exchange failed: %s\n", vtsm_err_detail());
            vtsm_buf_reset(&out); /* an empty answer: the DOE object was dropped */
        }
        if (vtsm_sock_send(cfd, VTSM_SOCK_CMD_NORMAL, tp, out.data, out.len) != VTSM_OK)
            break;
    }
    printf("serve: connection closed after %u frames\n", frames);
    vtsm_buf_free(&in);
    vtsm_buf_free(&out);
}

static int serve(struct qg *q, const char *port_file)
{
    int lfd;
    uint16_t port;
    struct sigaction sa = {.sa_handler = on_term};
    sigaction(SIGTERM, &sa, NULL); /* no SA_RESTART: accept() returns EINTR */
    if (vtsm_tcp_listen("127.0.0.1", 0, &lfd, &port) != VTSM_OK) {
        printf("step listen: FAILED %s\n", vtsm_err_detail());
        return 1;
    }
    FILE *f = fopen(port_file, "w");
    if (!f || fprintf(f, "%u\n", port) < 0 || fclose(f)) {
        printf("step port-file: FAILED %s\n", strerror(errno));
        close(lfd);
        return 1;
    }
    printf("serve: mailbox at 0x%03x on 127.0.0.1:%u\n", q->doe, port);
    while (!stop) {
        int cfd = accept(lfd, NULL, NULL);
        if (cfd < 0)
            continue;
        serve_conn(q, cfd);
        close(cfd);
    }
    close(lfd);
    median(q, "small", false);
    median(q, "certificate", true);
    printf("exchanges %u\n", q->n);
    return 0;
}

int main(int argc, char **argv)
{
    static struct qg q;
    struct vtsm_spdm_req *r = NULL;
    struct vtsm_spdm_req_opts opts;
    struct vtsm_spdm_meas meas = {0}, meas2 = {0};
    uint8_t mask = 0, digests[SPDM_MAX_SLOTS][VTSM_HASH_MAX];
    int rc = 1;
    char path[512];

    setvbuf(stdout, NULL, _IOLBF, 0);
    bool serving = argc == 4 && !strcmp(argv[1], "serve");
    if (!serving && (argc != 3 || (strcmp(argv[1], "doe") && strcmp(argv[1], "nvme")))) {
        fprintf(stderr, "usage: vtsm-qguest doe BDF | nvme /dev/nvmeN | serve BDF PORT_FILE\n");
        return 2;
    }
    bool doe = serving || !strcmp(argv[1], "doe");
    if (doe)
        snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/config", argv[2]);
    else
        snprintf(path, sizeof(path), "%s", argv[2]);
    q.fd = open(path, O_RDWR | O_CLOEXEC);
    if (q.fd < 0) {
        printf("step open: FAILED %s: %s\n", path, strerror(errno));
        return 1;
    }
    if (doe) {
        q.doe = find_doe(q.fd);
        if (!q.doe) {
            printf("step find-doe: FAILED no DOE capability in %s\n", path);
            goto out;
        }
        printf("step find-doe: ok at 0x%03x\n", q.doe);
        if (serving) {
            rc = serve(&q, argv[3]);
            close(q.fd);
            return rc;
        }
        if (discover(&q)) {
            printf("step doe-discovery: FAILED %s\n", vtsm_err_detail());
            goto out;
        }
        printf("step doe-discovery: ok\n");
    }

    vtsm_spdm_req_opts_default(&opts);
    opts.max_version = VTSM_SPDM_V13;
    opts.data_transfer_size = CERT_PORTION + 8; /* CERTIFICATE portions of 1 KiB */
    opts.max_spdm_msg_size = opts.data_transfer_size;
    struct vtsm_spdm_transport tp = {doe ? doe_exchange : nvme_exchange, &q};
    STEP("requester", vtsm_spdm_req_new(&opts, &tp, &r));
    STEP("vca", vtsm_spdm_req_init_connection(r));
    const struct vtsm_spdm_info *info = vtsm_spdm_req_info(r);
    printf("negotiated version %x.%x hash %s asym %s meas_hash %s\n", info->version >> 4,
           info->version & 15, vtsm_hash_name(info->hash), vtsm_asym_name(info->asym),
           vtsm_spdm_meas_hash_name(info->meas_hash_algo));
    STEP("digests", vtsm_spdm_req_get_digests(r, &mask, digests));
    printf("slot mask 0x%02x\n", mask);
    STEP("certificate", vtsm_spdm_req_get_certificate(r, 0));
    printf("chain %zu bytes, digest matches DIGESTS slot 0\n", vtsm_spdm_req_chain_raw(r, 0)->len);
    STEP("measurements", vtsm_spdm_req_get_measurements(r, 0, NULL, &meas));
    printf("measurements %u blocks, signature verified (%zu bytes)\n", meas.num_blocks,
           meas.signature_len);
    /* More samples for the timing: the chain again, in whole 1 KiB portions and the rest,
     * and DIGESTS, each checked again by the requester. */
    for (int i = 0; i < TIMING_ROUNDS; i++) {
        STEP("digests-again", vtsm_spdm_req_get_digests(r, &mask, digests));
        STEP("certificate-again", vtsm_spdm_req_get_certificate(r, 0));
    }
    if (doe) {
        STEP("key-exchange", vtsm_spdm_req_start_session(r, 0));
        printf("session 0x%08x\n", info->session_id);
        STEP("measurements-in-session", vtsm_spdm_req_get_measurements(r, 0, NULL, &meas2));
        printf("measurements in session %u blocks\n", meas2.num_blocks);
        STEP("end-session", vtsm_spdm_req_end_session(r));
    } else {
        STEP("refusals", nvme_refusals(&q));
        STEP("digests-after-refusals", vtsm_spdm_req_get_digests(r, &mask, digests));
    }
    median(&q, "small", false);
    median(&q, "certificate-1KiB", true);
    printf("exchanges %u\n", q.n);
    rc = 0;
out:
    vtsm_spdm_meas_free(&meas);
    vtsm_spdm_meas_free(&meas2);
    vtsm_spdm_req_free(r);
    close(q.fd);
    printf("result %s\n", rc ? "FAIL" : "PASS");
    return rc;
}
