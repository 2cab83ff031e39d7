/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * An in-test host for end-to-end tests: a real host-shim connection to tsmd whose devices
 * are reached over the real spdm-emu TCP backend, with everything the host side sees
 * (ABI frames both ways, DOE objects, link frames) captured for inspection.
 */
#ifndef E2E_HOST_H
#define E2E_HOST_H

#include <stdbool.h>
#include <stdint.h>

#include <cbor.h>

#include "e2e_util.h"
#include "vtsm_buf.h"
#include "vtsm_host_cbor.h"

#define E2E_HOST_MAX_DEVS 72

struct e2e_host {
    struct vtsm_host *h;
    struct vtsm_doe_tcp *tcp[E2E_HOST_MAX_DEVS];
    int ndev;
    struct vtsm_buf capture;       /* every byte the host side saw, concatenated */
    struct vtsm_buf last_link_req; /* the last link frame the TSM asked the host to carry */
    struct vtsm_doe_tcp *link_tcp; /* backend the last link frame went to */
};

/* Open a host connection to e's tsmd with capture on. 0 on success. */
int e2e_host_open(struct e2e *e, struct e2e_host *hh);
/* device_add (root_port) and register DOE + link callbacks to 127.0.0.1:port. */
int e2e_host_add_device(struct e2e_host *hh, const char *dev, int port, int root_port);
void e2e_host_close(struct e2e_host *hh);
/* A guest credential made in dir/NAME.key and its TVM registered with TVM_CREATE (named
 * NAME): 0 with *tvm set, and, if g is not NULL, *g the guest opened as that TVM. */
struct vtsm_guest;
int e2e_host_new_tvm(struct e2e_host *hh, const char *dir, const char *name, uint32_t *tvm,
                     struct vtsm_guest **g);
/* Does needle (n bytes) occur anywhere in the capture? */
bool e2e_host_saw(const struct e2e_host *hh, const uint8_t *needle, size_t n);

/* Small readers of result maps (NULL / 0 / false when absent). */
const cbor_item_t *e2e_get(const cbor_item_t *m, const char *path); /* "a.b.0.c" */
uint64_t e2e_uint(const cbor_item_t *m, const char *path);
bool e2e_bool(const cbor_item_t *m, const char *path);
const char *e2e_str(const cbor_item_t *m, const char *path, char *buf, size_t cap);

#endif
