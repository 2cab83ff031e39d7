/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vtsm host shim: the library a VMM (e.g. QEMU) embeds to drive the TSM. Public:
 * installed as <vtsm/vtsm_host.h>; needs no CBOR library (results are read through
 * accessors, or taken as encoded CBOR / JSON).
 *
 * The TSM never touches devices. When a verb needs a DOE exchange the TSM sends
 * DOE_PENDING; the shim calls the DOE callback registered for that device and returns
 * the response as DOE_RESPONSE, until the verb's RESULT or ERROR (docs/abi.md,
 * "The DOE continuation"). A DOE_PENDING on the simulated-link channel (IDE link check)
 * goes to the device's link callback instead. Every verb of the operation table
 * (include/vtsm/vtsm_ops.h, VTSM_OPS_VERBS) has two functions, generated from the table:
 *
 *   blocking:  vtsm_host_device_connect(h, &req, &result)
 *   fd-driven: vtsm_host_device_connect_start(h, &req, done, ctx), then call
 *              vtsm_host_dispatch(h) whenever vtsm_host_fd(h) is readable.
 *
 * req is a struct vtsm_request (vtsm_ops.h): the verb's fields, checked against its row
 * before anything is sent. The blocking form is the fd-driven one plus a loop (start,
 * then poll + dispatch until done). Both may be mixed: a blocking call also services
 * verbs started in the fd-driven form (their done callbacks may run inside it).
 *
 * DOE and link callbacks are synchronous (vtsm_doe_fn: the answer is returned) or
 * asynchronous (vtsm_doe_start_fn: the exchange is started and answered later with
 * vtsm_host_doe_complete()), so one event loop drives many devices at once: while one
 * device works on its DOE object the loop serves the others. See "asynchronous DOE
 * callbacks" below and docs/integration.md.
 *
 * A handle is not thread-safe; use it from one thread at a time. DOE, link, done,
 * cancel and trace callbacks run on the calling thread, inside a blocking call,
 * vtsm_host_dispatch or vtsm_host_close (trace also inside verb starts and
 * vtsm_host_doe_complete/_fail); they may start verbs but must not close the handle.
 *
 * Ownership: a struct vtsm_result returned through a pointer belongs to the caller
 * (vtsm_result_free); everything the shim passes to callbacks is borrowed for the call.
 *
 * Return convention: vtsm_status (VTSM_OK = 0). A TSM-reported failure returns the
 * status carried by the ERROR message; vtsm_host_last_error() then has its name,
 * source, detail and rule. Local failures (socket closed, timeout) fill it too.
 */
#ifndef VTSM_HOST_H
#define VTSM_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vtsm_ops.h"
#include "vtsm_status.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vtsm_host;

/* ---- results ---- */

/*
 * A verb's answer: the TSM's RESULT message, or its ERROR message (which may carry a
 * partial report, e.g. the evidence of a refused device_connect). docs/abi.md lists the
 * keys of each. Read it with the accessors below; path names a value inside the message
 * as keys and array indexes separated by dots ("" is the message itself):
 *
 *   vtsm_result_uint(res, "tvm", &tvm)
 *   vtsm_result_text(res, "devices.0.state", buf, sizeof(buf))
 *
 * Accessors return VTSM_OK, E_NOT_FOUND (no such key or index) or E_ABI_ARG (the value
 * has another type); text and bytes with E_TOO_SMALL when buf cannot hold the text and
 * its NUL. Read a result from one thread at a time.
 */
struct vtsm_result;

/* The message is an ERROR (else a RESULT). */
bool vtsm_result_is_error(const struct vtsm_result *r);
vtsm_status vtsm_result_uint(const struct vtsm_result *r, const char *path, uint64_t *out);
vtsm_status vtsm_result_bool(const struct vtsm_result *r, const char *path, bool *out);
vtsm_status vtsm_result_text(const struct vtsm_result *r, const char *path, char *buf, size_t cap);
/* *p borrows from r. */
vtsm_status vtsm_result_bytes(const struct vtsm_result *r, const char *path, const uint8_t **p,
                              size_t *len);
/* Elements of an array, or pairs of a map. */
vtsm_status vtsm_result_count(const struct vtsm_result *r, const char *path, size_t *n);
/* The whole message as CBOR (docs/abi.md: definite lengths, as on the wire), borrowed
 * from r; NULL on allocation failure. */
const uint8_t *vtsm_result_cbor(const struct vtsm_result *r, size_t *len);
/* A result from such bytes (a message relayed by someone else), checked with the ABI's
 * bounded validator: E_ABI_MALFORMED / E_ABI_OVERSIZED if it is not one CBOR map by the
 * rules of docs/abi.md. */
vtsm_status vtsm_result_decode(const uint8_t *p, size_t len, struct vtsm_result **out);
/* The whole message as JSON text (byte strings as hex), to free(); NULL on failure. */
char *vtsm_result_json(const struct vtsm_result *r);
void vtsm_result_free(struct vtsm_result *r);

/* Capacity of the response buffer handed to DOE callbacks: one maximal DOE object. */
#define VTSM_HOST_DOE_RSP_CAP (1u << 20)

/*
 * DOE exchange for one device: req is one whole DOE data object (8-byte header
 * included); write the response object into rsp. *rsp_len is the capacity on entry
 * (VTSM_HOST_DOE_RSP_CAP) and the response length on return. Return 0, or a negative
 * errno (the TSM is then told the exchange failed, with strerror text).
 * A link callback has the same shape: req is one simulated-link frame ("VLNK" ...,
 * docs/abi.md section 8.2) and rsp receives the device's frame.
 */
typedef int (*vtsm_doe_fn)(void *ctx, const uint8_t *req, size_t req_len, uint8_t *rsp,
                           size_t *rsp_len);

/* Completion of a verb started in the fd-driven form: result is the RESULT or ERROR
 * message, NULL on a local failure (then vtsm_host_last_error(h) describes st).
 * Borrowed: valid until the callback returns. */
typedef void (*vtsm_host_done_fn)(void *ctx, vtsm_status st, const struct vtsm_result *result);

/* The last failure seen by this handle. */
struct vtsm_host_error {
    vtsm_status status; /* VTSM_OK if none */
    char name[64];      /* vtsm_status_name(), e.g. "peer_signature" */
    char source[16];    /* "core", "crypto", "transport", "peer", "abi", "policy" */
    char detail[512];   /* what happened, in words */
    bool from_tsm;      /* reported by the TSM in an ERROR message (else a local failure) */
    /* the rule that refused ("TDI.4"; "" if none) and its value (vtsm_rule_parse of it:
     * NONE if none, or a rule this shim does not know) */
    char rule_id[16];
    enum vtsm_rule rule;
};

/* ---- tracing (tests, audits) ---- */

enum vtsm_host_trace_dir {
    VTSM_HOST_TRACE_FROM_TSM = 1, /* one raw frame received (4-byte length + CBOR) */
    VTSM_HOST_TRACE_TO_TSM = 2,   /* one raw frame sent */
    VTSM_HOST_TRACE_DOE_REQ = 3,  /* DOE object passed to a device callback */
    VTSM_HOST_TRACE_DOE_RSP = 4,  /* DOE object the callback returned */
    VTSM_HOST_TRACE_LINK_REQ = 5, /* link frame passed to a device's link callback */
    VTSM_HOST_TRACE_LINK_RSP = 6, /* link frame the link callback returned */
};
/* dev is the device for the DOE and LINK kinds, NULL for frames. */
typedef void (*vtsm_host_trace_fn)(void *ctx, enum vtsm_host_trace_dir dir, const char *dev,
                                   const uint8_t *p, size_t len);

/* ---- connection ---- */

/*
 * Connect to tsmd at socket_path (NULL: vtsm_default_socket_path()) and say HELLO as
 * "host" (HELLO waits at most 10 s; vtsm_host_open_cfg() can ask for "guest"). On
 * failure *out is NULL and vtsm_err_detail() on this thread has the detail (there is no
 * handle to ask): E_CLOSED / E_IO / E_TIMEOUT mean the TSM could not be reached; an
 * ERROR answer to HELLO returns its status (e.g. E_ABI_VERSION) with the TSM's detail.
 */
vtsm_status vtsm_host_open(const char *socket_path, struct vtsm_host **out);
/* Same over an already connected stream fd; the handle owns fd from now on (also on
 * failure, when it is closed). */
vtsm_status vtsm_host_open_fd(int fd, struct vtsm_host **out);
/*
 * The general form. Zero-initialise, set what you need. The trace hook, when given, sees
 * every frame from the first (HELLO) on.
 *
 * role VTSM_ROLE_GUEST opens a guest connection (a guest shim talking to the TSM
 * directly): it carries GUEST_REQUEST (vtsm_host_guest_request()) and
 * services that request's DOE exchanges through the callbacks registered here; the TSM
 * refuses host verbs on it (abi_role). If the TSM's HELLO result names a role other than
 * the one asked for, the open fails with E_ABI_ROLE.
 */
struct vtsm_host_config {
    const char *socket_path;  /* NULL: vtsm_default_socket_path() */
    bool use_fd;              /* use fd (a connected stream) instead of socket_path */
    int fd;                   /* owned by the handle from now on, also on failure */
    const char *client;       /* "client" sent in HELLO; NULL: "vtsm-host-shim" */
    vtsm_host_trace_fn trace; /* see vtsm_host_set_trace() */
    void *trace_ctx;
    enum vtsm_role role; /* VTSM_ROLE_NONE (0) = VTSM_ROLE_HOST */
};
vtsm_status vtsm_host_open_cfg(const struct vtsm_host_config *cfg, struct vtsm_host **out);

/* Close the connection. Verbs still in flight complete with E_ABORTED (done callbacks
 * run), each after the cancel callbacks of its pending asynchronous DOE exchanges; no
 * callback runs after this returns. NULL is fine. */
void vtsm_host_close(struct vtsm_host *h);

/* Version and TSM identity from the HELLO result, and the role of the connection. */
unsigned vtsm_host_abi_version(const struct vtsm_host *h);
const char *vtsm_host_tsm_name(const struct vtsm_host *h);
enum vtsm_role vtsm_host_role(const struct vtsm_host *h);

/* Install (fn NULL removes) the recorder. */
void vtsm_host_set_trace(struct vtsm_host *h, vtsm_host_trace_fn fn, void *ctx);

/*
 * Capture every DOE object this handle carries (each request handed to a DOE callback and
 * each response it gave back, not link frames) to a pcap file at path, created or
 * truncated: LINKTYPE_PCI_DOE (292), one record per object with its 8-byte DOE header, as
 * DMTF's spdm_dump reads it (docs/integration.md "Capturing"). path NULL stops. E_IO if
 * the file cannot be written; a write failure later stops the capture, not the verbs.
 */
vtsm_status vtsm_host_set_pcap(struct vtsm_host *h, const char *path);

/* Timeout for each wait of a blocking call, in ms; < 0 waits forever (the default). */
void vtsm_host_set_timeout(struct vtsm_host *h, int timeout_ms);

const struct vtsm_host_error *vtsm_host_last_error(const struct vtsm_host *h);

/* ---- DOE callbacks ---- */

/* Register (or replace; fn NULL removes) the DOE callback of a device. dev must be a
 * valid device name (1..64 of [A-Za-z0-9:._-]); E_ABI_ARG otherwise. */
vtsm_status vtsm_host_register_doe(struct vtsm_host *h, const char *dev, vtsm_doe_fn fn, void *ctx);
/*
 * Register (or replace; fn NULL removes) the link callback of a device: it carries the
 * DOE_PENDING {channel: "link"} exchanges of IDE_LINK_CHECK (simulated-link frames) to
 * the device. Without one such a DOE_PENDING is answered with error "no link callback
 * registered" (and the link check fails). Independent of the DOE callback.
 */
vtsm_status vtsm_host_register_link(struct vtsm_host *h, const char *dev, vtsm_doe_fn fn,
                                    void *ctx);

/* ---- asynchronous DOE callbacks (for the fd-driven form) ---- */

/*
 * Start one exchange: req (borrowed for the call: copy what you keep) is one DOE object
 * (or, on the link channel, one link frame). Return 0 when the exchange is under way and
 * answer it exactly once, later (from the event loop) or before returning, with
 * vtsm_host_doe_complete(h, token, ...) or vtsm_host_doe_fail(h, token, err). Return a
 * negative errno to refuse it: the shim then answers the TSM with that failure and the
 * token is void. token is unique for the life of the handle.
 */
typedef int (*vtsm_doe_start_fn)(void *ctx, struct vtsm_host *h, uint64_t token, const uint8_t *req,
                                 size_t req_len);
/*
 * The exchange token ends without an answer and must not be completed any more: its
 * verb completed (RESULT or ERROR, e.g. the TSM's DOE timeout), a blocking call gave
 * up on its verb, the connection to the TSM failed, or the handle is being closed
 * (vtsm_host_close() calls it for every exchange still pending, before it frees
 * anything). Drop what belongs to the exchange; a late device answer must be discarded.
 * May be NULL when the callback has nothing to drop (completing a token that is gone
 * is refused harmlessly with E_NOT_FOUND, as long as the handle itself is still open).
 */
typedef void (*vtsm_doe_cancel_fn)(void *ctx, struct vtsm_host *h, uint64_t token);

/*
 * Register (or replace; start NULL removes) an asynchronous DOE / link callback of a
 * device. It replaces a synchronous one registered for the same channel and vice versa.
 * An exchange already started keeps the callbacks and ctx it started with: ctx must
 * stay valid until each of its exchanges is answered or cancelled.
 *
 * A blocking call services only the TSM connection: an asynchronous exchange of the
 * verb it waits for completes there only if the callback answers before returning (or
 * the TSM's DOE timeout ends the verb). Drive asynchronous devices with the fd-driven
 * form.
 */
vtsm_status vtsm_host_register_doe_async(struct vtsm_host *h, const char *dev,
                                         vtsm_doe_start_fn start, vtsm_doe_cancel_fn cancel,
                                         void *ctx);
vtsm_status vtsm_host_register_link_async(struct vtsm_host *h, const char *dev,
                                          vtsm_doe_start_fn start, vtsm_doe_cancel_fn cancel,
                                          void *ctx);
/*
 * Answer exchange token with the device's response (rsp borrowed: sent before the call
 * returns; rsp_len at most VTSM_HOST_DOE_RSP_CAP, a longer one is answered as a failure
 * with EMSGSIZE). Call from the handle's thread. Completions may come in any order, also
 * across devices. E_NOT_FOUND if token is not pending (already answered, cancelled,
 * never issued); E_CLOSED / E_IO if the TSM connection failed (the verbs in flight then
 * complete at the next vtsm_host_dispatch).
 */
vtsm_status vtsm_host_doe_complete(struct vtsm_host *h, uint64_t token, const uint8_t *rsp,
                                   size_t rsp_len);
/* Answer exchange token with a failure: err is an errno (either sign; 0 = EIO). The TSM
 * is told "DOE exchange failed: <strerror>" and fails the verb (E_DOE_HOST). Same
 * returns as vtsm_host_doe_complete(). */
vtsm_status vtsm_host_doe_fail(struct vtsm_host *h, uint64_t token, int err);
/* Number of asynchronous exchanges awaiting completion. */
size_t vtsm_host_doe_pending(const struct vtsm_host *h);

/* ---- verbs ---- */

/*
 * Two functions per verb of the operation table, e.g. for TDI_BIND:
 *
 *   vtsm_status vtsm_host_tdi_bind(struct vtsm_host *h, const struct vtsm_request *req,
 *                                  struct vtsm_result **result);
 *   vtsm_status vtsm_host_tdi_bind_start(struct vtsm_host *h, const struct vtsm_request *req,
 *                                        vtsm_host_done_fn done, void *ctx);
 *
 * Blocking: on VTSM_OK *result is the RESULT; on a TSM-reported failure the ERROR (with
 * the device's evidence when tsmd refused a connect), else NULL. result may be NULL if
 * not wanted. The fd-driven form sends the request and returns; done runs from
 * vtsm_host_dispatch (or from a blocking call) when the verb completes, never from the
 * start call itself (a failure to send is returned).
 *
 * What the verbs do and take is in docs/abi.md section 7; some notes:
 *   device_connect   ide_streams > 0 sets up selective IDE; ide_only for a device
 *                    without TDISP; challenge to authenticate it by SPDM CHALLENGE too
 *                    (the report then carries the "challenge" evidence)
 *   device_reclaim   force also stops and unbinds the device's bound TDIs first
 *   status           without offset/tdi_offset/tvm_offset the shim follows the TSM's
 *                    pages and returns one result with every device (or every TDI of
 *                    the device) and every TVM; with one, that page only
 *   tvm_create       guest_key: 65 bytes 0x04 || X || Y (P-256); RESULT "tvm" is the
 *                    TVM's number
 *   ide_link_check   its exchanges travel on the link channel (register_link)
 *   guest_request    relays a guest's signed envelope {tvm, body, sig} unchanged; on a
 *                    connection opened with role guest it sends the guest's own request
 */
#define VTSM_X_HOST_VERB(NAME, lower, code, roles, dev, keys)                                      \
    vtsm_status vtsm_host_##lower(struct vtsm_host *h, const struct vtsm_request *req,             \
                                  struct vtsm_result **result);                                    \
    vtsm_status vtsm_host_##lower##_start(struct vtsm_host *h, const struct vtsm_request *req,     \
                                          vtsm_host_done_fn done, void *ctx);
VTSM_OPS_VERBS(VTSM_X_HOST_VERB)
#undef VTSM_X_HOST_VERB

/* Any verb by opcode (VTSM_OP_*): the functions above are these with op fixed. */
vtsm_status vtsm_host_request(struct vtsm_host *h, unsigned op, const struct vtsm_request *req,
                              struct vtsm_result **result);
vtsm_status vtsm_host_request_start(struct vtsm_host *h, unsigned op,
                                    const struct vtsm_request *req, vtsm_host_done_fn done,
                                    void *ctx);
/*
 * A verb whose fields arrive already encoded: map is one CBOR map of the verb's fields
 * (docs/abi.md; without "op" and "id", which the shim adds), for a host that relays what
 * it does not read, e.g. a guest's GUEST_REQUEST envelope {tvm, body, sig} as the TVM
 * made it. Decoded with the ABI's bounded validator and checked against the verb's row
 * like any request (E_ABI_MALFORMED, E_ABI_ARG) before anything is sent. The answer is
 * read as usual, or taken whole with vtsm_result_cbor().
 */
vtsm_status vtsm_host_request_encoded(struct vtsm_host *h, unsigned op, const uint8_t *map,
                                      size_t len, struct vtsm_result **result);

/* ---- events (docs/abi.md 7.15, 11.4) ---- */

/*
 * An EVENT from the TSM: what happened (event: "spdm_key_update_required",
 * "ide_key_refresh_due", "tdi_error", "session_lost", "evidence_changed",
 * "tdi_recovered"), to which device and TDI, under which rule. Every pointer is
 * borrowed for the callback's duration only; msg is the whole message (read it by path,
 * or take it as CBOR / JSON).
 */
struct vtsm_host_event {
    uint64_t seq; /* tsmd's event number: 1, 2, ... */
    const char *event;
    const char *dev;
    bool has_tdi;
    uint32_t tdi;
    const char *rule_id; /* "TDI.7"; "" if none */
    enum vtsm_rule rule; /* vtsm_rule_parse(rule_id): VTSM_RULE_NONE if none or unknown */
    const char *detail;  /* "" if none */
    const struct vtsm_result *msg;
};
typedef void (*vtsm_host_event_fn)(void *ctx, const struct vtsm_host_event *ev);
/*
 * Install (fn NULL removes) the event callback. Events reach a connection after
 * vtsm_host_events_subscribe() (optionally for one device: .dev); the callback runs from
 * vtsm_host_dispatch() and from blocking calls, whenever an EVENT is read. A connection
 * that does not read its events is dropped by tsmd once its output queue is full (rule
 * EVENT.3), as for unread replies: poll vtsm_host_fd() and dispatch. Like a done callback,
 * the event callback may start verbs (the _start forms) but must not close the handle or
 * wait in a blocking verb on it.
 */
void vtsm_host_set_event_cb(struct vtsm_host *h, vtsm_host_event_fn fn, void *ctx);

/* ---- the fd-driven form ---- */

/* The connection's fd, to poll for POLLIN. Do not read or write it yourself. */
int vtsm_host_fd(const struct vtsm_host *h);

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
/*
 * The link callback on the same connection (register both with the same ctx): the frame
 * travels with command VTSM_SOCK_CMD_VTSM_LINK (0x5654) and transport PCI_DOE, and the
 * answer must carry the same command and transport (else -EPROTO). Same errors and
 * reconnect rule as vtsm_doe_tcp_fn().
 */
int vtsm_doe_tcp_link_fn(void *ctx, const uint8_t *req, size_t req_len, uint8_t *rsp,
                         size_t *rsp_len);
/*
 * Asynchronous form, for one event loop driving many devices. Register
 *   vtsm_host_register_doe_async(h, dev, vtsm_doe_tcp_start, vtsm_doe_tcp_cancel, t)
 *   vtsm_host_register_link_async(h, dev, vtsm_doe_tcp_link_start, vtsm_doe_tcp_cancel, t)
 * then, while vtsm_doe_tcp_busy(t), poll vtsm_doe_tcp_fd(t) for POLLIN and call
 * vtsm_doe_tcp_service(t) when it is readable (the fd may change across exchanges: a
 * dropped connection is re-opened; fetch it each time). start sends the frame (one
 * write) and returns; service reads what has arrived without blocking and, once the
 * whole answer is in, completes the exchange through vtsm_host_doe_complete() (a failed
 * one through vtsm_host_doe_fail()). One exchange at a time per connection (a second
 * start, or a synchronous vtsm_doe_tcp_fn on the same connection, gets -EBUSY). A connection found
 * closed before the answer began is re-opened and the request resent once. There is no timeout of
 * its own: the TSM's DOE timeout ends the verb, and cancel then drops the connection so a late
 * answer cannot be taken for the next exchange's.
 */
int vtsm_doe_tcp_start(void *ctx, struct vtsm_host *h, uint64_t token, const uint8_t *req,
                       size_t req_len);
int vtsm_doe_tcp_link_start(void *ctx, struct vtsm_host *h, uint64_t token, const uint8_t *req,
                            size_t req_len);
void vtsm_doe_tcp_cancel(void *ctx, struct vtsm_host *h, uint64_t token);
/* The connection's fd (-1 while there is none). */
int vtsm_doe_tcp_fd(const struct vtsm_doe_tcp *t);
/* An asynchronous exchange is waiting for its answer. */
bool vtsm_doe_tcp_busy(const struct vtsm_doe_tcp *t);
/*
 * Read what is available; complete the exchange when its answer is whole. Returns
 * VTSM_OK, or the status of the vtsm_host_doe_complete/_fail call when that failed (the
 * TSM connection is then dead). Data arriving while no exchange is pending (stray or
 * late bytes) drops the connection.
 */
vtsm_status vtsm_doe_tcp_service(struct vtsm_doe_tcp *t);

/* Close the connection (nothing is sent). NULL is fine. */
void vtsm_doe_tcp_close(struct vtsm_doe_tcp *t);

#ifdef __cplusplus
}
#endif

#endif
