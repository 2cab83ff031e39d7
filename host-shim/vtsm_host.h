/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vtsm host shim: the library a VMM (e.g. QEMU) embeds to drive the TSM.
 *
 * The TSM never touches devices. When a verb needs a DOE exchange the TSM sends
 * DOE_PENDING; the shim calls the DOE callback registered for that device and returns
 * the response as DOE_RESPONSE, until the verb's RESULT or ERROR (docs/abi.md,
 * "The DOE continuation"). Two forms:
 *
 *   blocking:  vtsm_host_device_connect(h, "dev0", &opts, &result)
 *   fd-driven: vtsm_host_connect_start(h, "dev0", &opts, done, ctx), then call
 *              vtsm_host_dispatch(h) whenever vtsm_host_fd(h) is readable.
 *
 * Both may be mixed: a blocking call also services verbs started in the fd-driven form
 * (their done callbacks may run inside it). A handle is not thread-safe; use it from one
 * thread at a time. DOE, done and trace callbacks run on the calling thread, inside a
 * blocking call or vtsm_host_dispatch; they may start verbs but must not close the
 * handle.
 *
 * Ownership: result maps returned through cbor_item_t ** belong to the caller
 * (cbor_decref); everything the shim passes to callbacks is borrowed for the call.
 *
 * Return convention: vtsm_status (VTSM_OK = 0). A TSM-reported failure returns the
 * status carried by the ERROR message; vtsm_host_last_error() then has its name,
 * source and detail. Local failures (socket closed, timeout) fill it too.
 */
#ifndef VTSM_HOST_H
#define VTSM_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cbor.h>

#include "vtsm_status.h"

struct vtsm_host;

/* Capacity of the response buffer handed to DOE callbacks: one maximal DOE object. */
#define VTSM_HOST_DOE_RSP_CAP (1u << 20)

/*
 * DOE exchange for one device: req is one whole DOE data object (8-byte header
 * included); write the response object into rsp. *rsp_len is the capacity on entry
 * (VTSM_HOST_DOE_RSP_CAP) and the response length on return. Return 0, or a negative
 * errno (the TSM is then told the exchange failed, with strerror text).
 */
typedef int (*vtsm_doe_fn)(void *ctx, const uint8_t *req, size_t req_len, uint8_t *rsp,
                           size_t *rsp_len);

/* Completion of a verb started in the fd-driven form. On success result is the RESULT
 * map; on a failure the TSM reported it is the ERROR message (which may carry a partial
 * report, e.g. the evidence of a refused device_connect); on a local failure NULL.
 * Borrowed: valid until the callback returns (cbor_incref() it to keep it). On failure
 * vtsm_host_last_error(h) describes st. */
typedef void (*vtsm_host_done_fn)(void *ctx, vtsm_status st, const cbor_item_t *result);

/* The last failure seen by this handle. */
struct vtsm_host_error {
    vtsm_status status; /* VTSM_OK if none */
    char name[64];      /* vtsm_status_name(), e.g. "peer_signature" */
    char source[16];    /* "core", "crypto", "transport", "peer", "abi", "policy" */
    char detail[512];   /* names the rule */
    bool from_tsm;      /* reported by the TSM in an ERROR message (else a local failure) */
};

/* ---- tracing (tests, audits) ---- */

enum vtsm_host_trace_dir {
    VTSM_HOST_TRACE_FROM_TSM = 1, /* one raw frame received (4-byte length + CBOR) */
    VTSM_HOST_TRACE_TO_TSM = 2,   /* one raw frame sent */
    VTSM_HOST_TRACE_DOE_REQ = 3,  /* DOE object passed to a device callback */
    VTSM_HOST_TRACE_DOE_RSP = 4,  /* DOE object the callback returned */
};
/* dev is the device for the DOE kinds, NULL for frames. */
typedef void (*vtsm_host_trace_fn)(void *ctx, enum vtsm_host_trace_dir dir, const char *dev,
                                   const uint8_t *p, size_t len);

/* ---- connection ---- */

/*
 * Connect to tsmd at socket_path (NULL: vtsm_default_socket_path()) and say HELLO as
 * "host" (HELLO waits at most 10 s). On failure *out is NULL and vtsm_err_detail() on
 * this thread has the detail (there is no handle to ask): E_CLOSED / E_IO / E_TIMEOUT
 * mean the TSM could not be reached; an ERROR answer to HELLO returns its status (e.g.
 * E_ABI_VERSION) with the TSM's detail.
 */
vtsm_status vtsm_host_open(const char *socket_path, struct vtsm_host **out);
/* Same over an already connected stream fd; the handle owns fd from now on (also on
 * failure, when it is closed). */
vtsm_status vtsm_host_open_fd(int fd, struct vtsm_host **out);
/*
 * The general form. Zero-initialise, set what you need. The trace hook, when given, sees
 * every frame from the first (HELLO) on.
 */
struct vtsm_host_config {
    const char *socket_path;  /* NULL: vtsm_default_socket_path() */
    bool use_fd;              /* use fd (a connected stream) instead of socket_path */
    int fd;                   /* owned by the handle from now on, also on failure */
    const char *client;       /* "client" sent in HELLO; NULL: "vtsm-host-shim" */
    vtsm_host_trace_fn trace; /* see vtsm_host_set_trace() */
    void *trace_ctx;
};
vtsm_status vtsm_host_open_cfg(const struct vtsm_host_config *cfg, struct vtsm_host **out);

/* Close the connection. Verbs still in flight complete with E_ABORTED (done callbacks
 * run). NULL is fine. */
void vtsm_host_close(struct vtsm_host *h);

/* Version and TSM identity from the HELLO result. */
unsigned vtsm_host_abi_version(const struct vtsm_host *h);
const char *vtsm_host_tsm_name(const struct vtsm_host *h);

/* Install (fn NULL removes) the recorder. */
void vtsm_host_set_trace(struct vtsm_host *h, vtsm_host_trace_fn fn, void *ctx);

/* Timeout for each wait of a blocking call, in ms; < 0 waits forever (the default). */
void vtsm_host_set_timeout(struct vtsm_host *h, int timeout_ms);

const struct vtsm_host_error *vtsm_host_last_error(const struct vtsm_host *h);

/* ---- DOE callbacks ---- */

/* Register (or replace; fn NULL removes) the DOE callback of a device. dev must be a
 * valid device name (1..64 of [A-Za-z0-9:._-]); E_ABI_ARG otherwise. */
vtsm_status vtsm_host_register_doe(struct vtsm_host *h, const char *dev, vtsm_doe_fn fn, void *ctx);

/* ---- verbs (blocking) ---- */

/*
 * DEVICE_CONNECT options. Zero-initialise, then set what you need; zero / NULL fields
 * are not sent and the TSM applies its default.
 */
struct vtsm_host_connect_opts {
    unsigned slot;            /* certificate slot 0..7 (0 is the default) */
    bool allow_untrusted;     /* connect even if the chain does not validate */
    unsigned min_version;     /* SPDM version 0x12 / 0x13; 0 = TSM default */
    unsigned max_version;     /* 0 = TSM default */
    const char *asym;         /* "ecdsa-p384" / "ecdsa-p256"; NULL = TSM default */
    const char *hash;         /* "sha384" / "sha256"; NULL = TSM default */
    const cbor_item_t *extra; /* optional map of further options copied into the request
                                 (keys of later ABI revisions); NULL = none */
};

/* DEVICE_ADD {dev, root_port}; root_port < 0 leaves it to the TSM. */
vtsm_status vtsm_host_device_add(struct vtsm_host *h, const char *dev, int root_port);
vtsm_status vtsm_host_device_remove(struct vtsm_host *h, const char *dev);
/* DEVICE_CONNECT; on VTSM_OK *result is the RESULT map, on a TSM-reported failure the
 * ERROR message (with the device's evidence when tsmd refused it), else NULL; the caller
 * cbor_decref()s it. The same holds for every blocking verb below.
 * result may be NULL if not wanted. opts NULL = all defaults. */
vtsm_status vtsm_host_device_connect(struct vtsm_host *h, const char *dev,
                                     const struct vtsm_host_connect_opts *opts,
                                     cbor_item_t **result);
vtsm_status vtsm_host_device_reclaim(struct vtsm_host *h, const char *dev, cbor_item_t **result);
/* STATUS, for one device or (dev NULL) all. */
vtsm_status vtsm_host_status(struct vtsm_host *h, const char *dev, cbor_item_t **result);

/*
 * Any request: req is a map holding the verb's fields; "op" and "id" are set by the
 * shim (any given are replaced). For verbs this header has no wrapper for yet.
 */
vtsm_status vtsm_host_call(struct vtsm_host *h, unsigned op, const cbor_item_t *req,
                           cbor_item_t **result);

/* ---- verbs (fd-driven) ---- */

/* The connection's fd, to poll for POLLIN. Do not read or write it yourself. */
int vtsm_host_fd(const struct vtsm_host *h);

/* Send the request and return; done runs from vtsm_host_dispatch (or from a blocking
 * call) when the verb completes. Never calls done itself: a failure to send is
 * returned. */
vtsm_status vtsm_host_connect_start(struct vtsm_host *h, const char *dev,
                                    const struct vtsm_host_connect_opts *opts,
                                    vtsm_host_done_fn done, void *ctx);
vtsm_status vtsm_host_reclaim_start(struct vtsm_host *h, const char *dev, vtsm_host_done_fn done,
                                    void *ctx);
vtsm_status vtsm_host_call_start(struct vtsm_host *h, unsigned op, const cbor_item_t *req,
                                 vtsm_host_done_fn done, void *ctx);

/* Number of verbs in flight. */
size_t vtsm_host_pending(const struct vtsm_host *h);

/*
 * Call when vtsm_host_fd(h) is readable. Reads what is available without blocking,
 * answers DOE_PENDING through the callbacks (which may block for the exchange), and
 * runs done callbacks of completed verbs. VTSM_OK, or a connection failure (E_CLOSED,
 * E_IO, E_ABI_*): the connection is then dead and every verb in flight has completed
 * with that status.
 */
vtsm_status vtsm_host_dispatch(struct vtsm_host *h);

/* ---- DOE backend: a responder speaking the DMTF spdm-emu socket protocol ---- */

struct vtsm_doe_tcp;

/* spec is "tcp:HOST:PORT" (HOST an IPv4 literal or localhost). Connects at once. */
vtsm_status vtsm_doe_tcp_open(const char *spec, struct vtsm_doe_tcp **out);
/* Per-exchange receive timeout in ms (default 30000; < 0 forever). */
void vtsm_doe_tcp_set_timeout(struct vtsm_doe_tcp *t, int timeout_ms);
/*
 * A vtsm_doe_fn; ctx is the struct vtsm_doe_tcp *. Sends the object as one NORMAL
 * command frame with transport PCI_DOE, receives one frame, checks its command and
 * transport and returns its payload. If the connection had dropped, reconnects once
 * and retries. Errors: -ECONNRESET, -ETIMEDOUT, -EPROTO, -EMSGSIZE, -ENOMEM.
 */
int vtsm_doe_tcp_fn(void *ctx, const uint8_t *req, size_t req_len, uint8_t *rsp, size_t *rsp_len);
/* Close the connection (nothing is sent). NULL is fine. */
void vtsm_doe_tcp_close(struct vtsm_doe_tcp *t);

#endif
