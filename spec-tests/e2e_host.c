/* SPDX-License-Identifier: BSD-3-Clause */
#include "e2e_host.h"
#include "vtsm_guest_cbor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vtsm_abi.h"

static void trace(void *ctx, enum vtsm_host_trace_dir dir, const char *dev, const uint8_t *p,
                  size_t len)
{
    struct e2e_host *hh = ctx;
    (void)dir;
    (void)dev;
    vtsm_buf_append(&hh->capture, p, len);
}

struct link_ctx {
    struct e2e_host *hh;
    struct vtsm_doe_tcp *tcp;
};
static struct link_ctx link_ctxs[E2E_HOST_MAX_DEVS];

static int link_fn(void *ctx, const uint8_t *req, size_t req_len, uint8_t *rsp, size_t *rsp_len)
{
    struct link_ctx *lc = ctx;
    vtsm_buf_set(&lc->hh->last_link_req, req, req_len);
    lc->hh->link_tcp = lc->tcp;
    return vtsm_doe_tcp_link_fn(lc->tcp, req, req_len, rsp, rsp_len);
}

int e2e_host_open(struct e2e *e, struct e2e_host *hh)
{
    memset(hh, 0, sizeof(*hh));
    struct vtsm_host_config cfg = {
        .socket_path = e->sock, .client = "e2e-host", .trace = trace, .trace_ctx = hh};
    if (vtsm_host_open_cfg(&cfg, &hh->h) != VTSM_OK)
        return -1;
    vtsm_host_set_timeout(hh->h, 30000);
    return 0;
}

int e2e_host_add_device(struct e2e_host *hh, const char *dev, int port, int root_port)
{
    char spec[64];
    if (hh->ndev == E2E_HOST_MAX_DEVS)
        return -1;
    snprintf(spec, sizeof(spec), "tcp:127.0.0.1:%d", port);
    struct vtsm_doe_tcp *t = NULL;
    if (vtsm_doe_tcp_open(spec, &t) != VTSM_OK)
        return -1;
    hh->tcp[hh->ndev] = t;
    link_ctxs[hh->ndev] = (struct link_ctx){hh, t};
    if (vtsm_host_register_doe(hh->h, dev, vtsm_doe_tcp_fn, t) != VTSM_OK ||
        vtsm_host_register_link(hh->h, dev, link_fn, &link_ctxs[hh->ndev]) != VTSM_OK)
        return -1;
    hh->ndev++;
    return vtsm_host_device_add_cbor(hh->h, dev, root_port) == VTSM_OK ? 0 : -1;
}

int e2e_host_new_tvm(struct e2e_host *hh, const char *dir, const char *name, uint32_t *tvm,
                     struct vtsm_guest **g)
{
    char path[128];
    uint8_t pub[VTSM_GUEST_PUBKEY_SIZE];
    struct vtsm_guest *k = NULL;
    snprintf(path, sizeof(path), "%s/%s.key", dir, name);
    if (vtsm_guest_keygen(path) != VTSM_OK || vtsm_guest_open(path, 0, &k) != VTSM_OK)
        return -1;
    vtsm_guest_pubkey(k, pub);
    vtsm_guest_close(k);
    if (vtsm_host_tvm_create_cbor(hh->h, name, pub, tvm, NULL) != VTSM_OK)
        return -1;
    return g && vtsm_guest_open(path, *tvm, g) != VTSM_OK ? -1 : 0;
}

void e2e_host_close(struct e2e_host *hh)
{
    vtsm_host_close(hh->h);
    for (int i = 0; i < hh->ndev; i++)
        vtsm_doe_tcp_close(hh->tcp[i]);
    vtsm_buf_free(&hh->capture);
    vtsm_buf_free(&hh->last_link_req);
    memset(hh, 0, sizeof(*hh));
}

bool e2e_host_saw(const struct e2e_host *hh, const uint8_t *needle, size_t n)
{
    if (n == 0 || hh->capture.len < n)
        return false;
    for (size_t i = 0; i + n <= hh->capture.len; i++)
        if (hh->capture.data[i] == needle[0] && memcmp(hh->capture.data + i, needle, n) == 0)
            return true;
    return false;
}

const cbor_item_t *e2e_get(const cbor_item_t *m, const char *path)
{
    char seg[64];
    const char *p = path;
    while (m && *p) {
        size_t n = strcspn(p, ".");
        if (n >= sizeof(seg))
            return NULL;
        memcpy(seg, p, n);
        seg[n] = '\0';
        p += n + (p[n] == '.');
        if (cbor_isa_array(m)) {
            size_t i = (size_t)strtoul(seg, NULL, 10);
            m = i < cbor_array_size(m) ? cbor_array_handle(m)[i] : NULL;
        } else if (cbor_isa_map(m)) {
            m = vtsm_abi_find(m, seg);
        } else {
            return NULL;
        }
    }
    return m;
}

uint64_t e2e_uint(const cbor_item_t *m, const char *path)
{
    const cbor_item_t *v = e2e_get(m, path);
    return v && cbor_isa_uint(v) ? cbor_get_int(v) : 0;
}

bool e2e_bool(const cbor_item_t *m, const char *path)
{
    const cbor_item_t *v = e2e_get(m, path);
    return v && cbor_is_bool(v) && cbor_get_bool(v);
}

const char *e2e_str(const cbor_item_t *m, const char *path, char *buf, size_t cap)
{
    const cbor_item_t *v = e2e_get(m, path);
    buf[0] = '\0';
    if (v && cbor_isa_string(v) && cbor_string_length(v) < cap) {
        memcpy(buf, cbor_string_handle(v), cbor_string_length(v));
        buf[cbor_string_length(v)] = '\0';
    }
    return buf;
}
