/*
 * vtsm-kbridge: the user-space half of the kernel bridge. It reads the PCI TSM core's
 * operations from /dev/vtsm_bridge (kernel/vtsm_bridge_uapi.h), runs each as a verb on
 * tsmd through the host shim, and carries every DOE object tsmd sends to the kernel,
 * which exchanges it over the device's own DOE mailbox.
 *
 *   vtsm-kbridge [--socket PATH] [--device PATH] [--ide-streams N] [--guest-key HEX]
 *
 * connect -> DEVICE_ADD + DEVICE_CONNECT, disconnect -> DEVICE_RECLAIM (forced), bind ->
 * TDI_BIND (for a TVM registered on first use with --guest-key), unbind -> TDI_UNBIND,
 * guest_req -> GUEST_REQUEST: the TVM's envelope relayed unchanged, tsmd's answer (its
 * RESULT or ERROR message) returned to the kernel with the status as tsm_code. Each
 * operation's outcome and its DOE exchange count and mean time are logged on stdout.
 *
 * All calls into the host shim are in this file.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "vtsm_bridge_uapi.h"
#include "vtsm_host.h"

/* PCIe DOE data object header (PCIe r6.0 6.30.1): vendor id, type, length in dwords. */
#define KB_DOE_HDR            8u
#define KB_DOE_VENDOR_PCI_SIG 0x0001u
#define KB_DOE_LEN_MASK       0x3ffffu

struct kb_op {
    int fd;
    uint32_t id;
    unsigned exchanges;
    double doe_us; /* summed time of the exchanges */
};

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/*
 * The host shim's DOE callback: req is one whole DOE object. The kernel takes the
 * payload and the data object type and builds the header itself; its answer comes back
 * as a payload, which gets its header here again.
 */
static int kb_doe(void *ctx, const uint8_t *req, size_t req_len, uint8_t *rsp, size_t *rsp_len)
{
    struct kb_op *op = ctx;
    struct vtsm_kb_doe d;
    uint32_t dw;
    double t0;

    if (req_len < KB_DOE_HDR + 4 || req_len % 4)
        return -EINVAL;
    dw = get_le32(req + 4) & KB_DOE_LEN_MASK;
    if ((req[0] | req[1] << 8) != KB_DOE_VENDOR_PCI_SIG || (size_t)dw * 4 != req_len ||
        req_len - KB_DOE_HDR > VTSM_KB_DOE_MAX || *rsp_len < KB_DOE_HDR + 4)
        return -EINVAL;
    memset(&d, 0, sizeof(d));
    d.id = op->id;
    d.type = req[2];
    d.req = (uint64_t)(uintptr_t)(req + KB_DOE_HDR);
    d.req_len = (uint32_t)(req_len - KB_DOE_HDR);
    d.rsp = (uint64_t)(uintptr_t)(rsp + KB_DOE_HDR);
    d.rsp_cap = (uint32_t)(*rsp_len - KB_DOE_HDR < VTSM_KB_DOE_MAX ? *rsp_len - KB_DOE_HDR
                                                                   : VTSM_KB_DOE_MAX);
    t0 = now_us();
    if (ioctl(op->fd, VTSM_KB_IOC_DOE, &d) < 0)
        return -errno;
    op->doe_us += now_us() - t0;
    op->exchanges++;
    if (d.rsp_len > d.rsp_cap || d.rsp_len % 4)
        return -EPROTO;
    rsp[0] = KB_DOE_VENDOR_PCI_SIG & 0xff;
    rsp[1] = KB_DOE_VENDOR_PCI_SIG >> 8;
    rsp[2] = (uint8_t)d.type;
    rsp[3] = 0;
    put_le32(rsp + 4, (KB_DOE_HDR + d.rsp_len) / 4);
    *rsp_len = KB_DOE_HDR + d.rsp_len;
    return 0;
}

static int hex_key(const char *hex, uint8_t key[VTSM_ABI_GUEST_KEY_SIZE])
{
    if (strlen(hex) != 2 * VTSM_ABI_GUEST_KEY_SIZE)
        return -1;
    for (size_t i = 0; i < VTSM_ABI_GUEST_KEY_SIZE; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -1;
        key[i] = (uint8_t)v;
    }
    return 0;
}

struct kb_cfg {
    const char *socket;
    const char *device;
    unsigned ide_streams;
    const char *guest_key;
};

static const char *op_name(uint32_t op)
{
    switch (op) {
    case VTSM_KB_OP_CONNECT:
        return "connect";
    case VTSM_KB_OP_DISCONNECT:
        return "disconnect";
    case VTSM_KB_OP_BIND:
        return "bind";
    case VTSM_KB_OP_UNBIND:
        return "unbind";
    case VTSM_KB_OP_GUEST_REQ:
        return "guest_req";
    default:
        return "unknown";
    }
}

/*
 * The scope Linux passed to guest_req (enum pci_tsm_req_scope) must be the one inside the
 * TVM's signed body (docs/abi.md 9.2): a request the kernel classed as INFO cannot change
 * state. 0 if they agree (or the body names none: tsmd judges it), -EINVAL otherwise.
 */
static int kb_scope_matches(const uint8_t *in, size_t len, uint32_t scope)
{
    struct vtsm_result *env = NULL, *body = NULL;
    const uint8_t *b = NULL;
    size_t blen = 0;
    uint64_t s = 0;
    int rc = 0;
    if (vtsm_result_decode(in, len, &env) != VTSM_OK ||
        vtsm_result_bytes(env, "body", &b, &blen) != VTSM_OK ||
        vtsm_result_decode(b, blen, &body) != VTSM_OK)
        goto out; /* not for us to judge: tsmd refuses a malformed envelope */
    if (vtsm_result_uint(body, "scope", &s) == VTSM_OK && s != scope) {
        fprintf(stderr,
                "vtsm-kbridge: guest_req scope %u, the TVM's request says %llu (rule GUEST.5)\n",
                scope, (unsigned long long)s);
        rc = -EINVAL;
    }
out:
    vtsm_result_free(body);
    vtsm_result_free(env);
    return rc;
}

/*
 * guest_req: the kernel holds the TVM's request bytes (a CBOR envelope {tvm, body, sig}
 * signed by the guest); relay it and hand back tsmd's answer, encoded the same way.
 */
static int kb_guest(struct vtsm_host *h, int fd, const struct vtsm_kb_event *ev, vtsm_status *st)
{
    struct vtsm_kb_guest g = {.id = ev->id, .len = ev->in_len};
    struct vtsm_result *res = NULL;
    uint8_t *in = NULL;
    const uint8_t *out = NULL;
    size_t out_len = 0;
    int rc = -EIO;

    if (!ev->in_len || ev->in_len > VTSM_KB_GUEST_MAX)
        return -EINVAL;
    in = malloc(ev->in_len);
    if (!in)
        return -ENOMEM;
    g.buf = (uint64_t)(uintptr_t)in;
    if (ioctl(fd, VTSM_KB_IOC_GUEST_IN, &g) < 0) {
        rc = -errno;
        goto out;
    }
    if ((rc = kb_scope_matches(in, g.len, ev->scope)) != 0)
        goto out;
    rc = -EIO;
    /* relayed as the TVM encoded it: the shim checks it, the TSM judges its signature */
    *st = vtsm_host_request_encoded(h, VTSM_OP_GUEST_REQUEST, in, g.len, &res);
    if (*st == VTSM_E_ABI_MALFORMED || (*st == VTSM_E_ABI_ARG && !res)) {
        rc = -EINVAL;
        goto out;
    }
    if (!res)
        goto out;
    out = vtsm_result_cbor(res, &out_len);
    if (!out) {
        rc = -ENOMEM;
        goto out;
    }
    if (out_len > ev->out_cap) {
        rc = -EMSGSIZE;
        goto out;
    }
    g.len = (uint32_t)out_len;
    g.buf = (uint64_t)(uintptr_t)out;
    g.tsm_code = (uint64_t)*st;
    rc = ioctl(fd, VTSM_KB_IOC_GUEST_OUT, &g) < 0 ? -errno : 0;
out:
    vtsm_result_free(res);
    free(in);
    return rc;
}

/* Run one event on tsmd; returns the errno-style result for the kernel. */
static int kb_run(struct vtsm_host *h, const struct kb_cfg *cfg, struct kb_op *op,
                  const struct vtsm_kb_event *ev, uint32_t *tvm)
{
    vtsm_status st = VTSM_OK;
    struct vtsm_result *res = NULL;
    /* the public, CBOR-free host API: one request struct per verb */
    struct vtsm_request rq = {.dev = ev->dev};

    switch (ev->op) {
    case VTSM_KB_OP_CONNECT:
        /* tsmd learns of the device here (the TSM picks its root port). */
        st = vtsm_host_device_add(h, &rq, NULL);
        if (st == VTSM_E_EXISTS)
            st = VTSM_OK;
        if (st == VTSM_OK)
            st = vtsm_host_register_doe(h, ev->dev, kb_doe, op);
        rq.ide_streams = cfg->ide_streams;
        rq.set = VTSM_SET(IDE_STREAMS);
        if (st == VTSM_OK)
            st = vtsm_host_device_connect(h, &rq, &res);
        break;
    case VTSM_KB_OP_DISCONNECT:
        st = vtsm_host_register_doe(h, ev->dev, kb_doe, op);
        rq.force = true;
        rq.set = VTSM_SET(FORCE);
        if (st == VTSM_OK)
            st = vtsm_host_device_reclaim(h, &rq, &res);
        break;
    case VTSM_KB_OP_BIND:
        if (!*tvm) {
            uint8_t key[VTSM_ABI_GUEST_KEY_SIZE];
            if (!cfg->guest_key || hex_key(cfg->guest_key, key)) {
                fprintf(stderr, "vtsm-kbridge: bind needs --guest-key (65 bytes hex)\n");
                return -EINVAL;
            }
            struct vtsm_request tc = {
                .name = "kernel-bridge", .guest_key = key, .guest_key_len = sizeof(key)};
            uint64_t n = 0;
            st = vtsm_host_tvm_create(h, &tc, &res);
            if (st == VTSM_OK && vtsm_result_uint(res, "tvm", &n) == VTSM_OK && n <= UINT32_MAX)
                *tvm = (uint32_t)n;
            else if (st == VTSM_OK)
                st = VTSM_E_ABI_MALFORMED;
            vtsm_result_free(res);
            res = NULL;
        }
        if (st == VTSM_OK)
            st = vtsm_host_register_doe(h, ev->dev, kb_doe, op);
        rq.tdi = ev->tdi_id;
        rq.tvm = *tvm;
        rq.set = VTSM_SET(TDI) | VTSM_SET(TVM);
        if (st == VTSM_OK)
            st = vtsm_host_tdi_bind(h, &rq, &res);
        break;
    case VTSM_KB_OP_UNBIND:
        st = vtsm_host_register_doe(h, ev->dev, kb_doe, op);
        rq.tdi = ev->tdi_id;
        rq.set = VTSM_SET(TDI);
        if (st == VTSM_OK)
            st = vtsm_host_tdi_unbind(h, &rq, &res);
        break;
    case VTSM_KB_OP_GUEST_REQ: {
        /* A refusal by tsmd is the guest's answer (tsm_code), not a kernel error. */
        int rc;
        st = vtsm_host_register_doe(h, ev->dev, kb_doe, op);
        if (st != VTSM_OK)
            break;
        rc = kb_guest(h, op->fd, ev, &st);
        if (st != VTSM_OK)
            printf("vtsm-kbridge: guest_req %s: tsmd: %s\n", ev->dev,
                   vtsm_host_last_error(h)->name);
        return rc;
    }
    default:
        return -EOPNOTSUPP;
    }
    vtsm_result_free(res);
    if (st != VTSM_OK) {
        const struct vtsm_host_error *e = vtsm_host_last_error(h);
        printf("vtsm-kbridge: %s %s: failed: %s (%s)%s%s\n", op_name(ev->op), ev->dev, e->name,
               e->detail, e->rule_id[0] ? " rule " : "", e->rule_id);
        return -EIO;
    }
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: vtsm-kbridge [--socket PATH] [--device PATH] [--ide-streams N] "
                    "[--guest-key HEX]\n");
    return 2;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"socket", required_argument, NULL, 's'},
        {"device", required_argument, NULL, 'd'},
        {"ide-streams", required_argument, NULL, 'i'},
        {"guest-key", required_argument, NULL, 'k'},
        {NULL, 0, NULL, 0},
    };
    struct kb_cfg cfg = {.device = "/dev/vtsm_bridge", .ide_streams = 1};
    struct vtsm_host *h = NULL;
    uint32_t tvm = 0;
    vtsm_status st;
    int c, fd;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            cfg.socket = optarg;
            break;
        case 'd':
            cfg.device = optarg;
            break;
        case 'i':
            cfg.ide_streams = (unsigned)strtoul(optarg, NULL, 10);
            if (cfg.ide_streams > 8)
                return usage();
            break;
        case 'k':
            cfg.guest_key = optarg;
            break;
        default:
            return usage();
        }
    }
    if (optind != argc)
        return usage();
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);

    fd = open(cfg.device, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "vtsm-kbridge: %s: %s\n", cfg.device, strerror(errno));
        return 1;
    }
    st = vtsm_host_open(cfg.socket, &h);
    if (st != VTSM_OK) {
        fprintf(stderr, "vtsm-kbridge: tsmd: %s: %s\n", vtsm_status_name(st), vtsm_err_detail());
        close(fd);
        return 1;
    }
    printf("vtsm-kbridge: ready (%s <-> %s)\n", cfg.device, vtsm_host_tsm_name(h));

    for (;;) {
        struct vtsm_kb_event ev;
        struct vtsm_kb_done done;
        struct kb_op op = {.fd = fd};
        ssize_t n = read(fd, &ev, sizeof(ev));
        double t0;

        if (n < 0 && errno == EINTR)
            continue;
        if (n != (ssize_t)sizeof(ev)) {
            fprintf(stderr, "vtsm-kbridge: read: %s\n", n < 0 ? strerror(errno) : "short");
            break;
        }
        ev.dev[sizeof(ev.dev) - 1] = 0;
        op.id = ev.id;
        t0 = now_us();
        done.id = ev.id;
        done.status = kb_run(h, &cfg, &op, &ev, &tvm);
        printf("vtsm-kbridge: %s %s: %s in %.1f ms, %u DOE exchanges, mean %.0f us\n",
               op_name(ev.op), ev.dev, done.status ? strerror(-done.status) : "ok",
               (now_us() - t0) / 1e3, op.exchanges, op.exchanges ? op.doe_us / op.exchanges : 0);
        /* The DOE callback must not outlive op: the next event gets its own. */
        vtsm_host_register_doe(h, ev.dev, NULL, NULL);
        if (ioctl(fd, VTSM_KB_IOC_DONE, &done) < 0)
            fprintf(stderr, "vtsm-kbridge: done %u: %s\n", ev.id, strerror(errno));
    }
    vtsm_host_close(h);
    close(fd);
    return 1;
}
