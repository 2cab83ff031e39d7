/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The host shim's CBOR face, for code inside this tree (the CLIs, the demo, the bench,
 * the guest shim and the tests): verbs with explicit arguments whose results are libcbor
 * maps, the generic call of a request map, and the bridge between struct vtsm_result and
 * its message. Not installed: the public API (include/vtsm/vtsm_host.h) exposes no CBOR
 * library type.
 *
 * Ownership: result maps returned through cbor_item_t ** belong to the caller
 * (cbor_decref); results passed to callbacks are borrowed for the call.
 */
#ifndef VTSM_HOST_CBOR_H
#define VTSM_HOST_CBOR_H

#include <cbor.h>

#include "vtsm_abi.h"
#include "vtsm_host.h"

/* A result holding msg (a reference is taken); NULL on allocation failure. */
struct vtsm_result *vtsm_result_new(cbor_item_t *msg);
/* Hand msg (may be NULL; its reference is released) to the caller as *out (out may be
 * NULL: nothing is handed over). Returns st, or E_NOMEM if st was VTSM_OK and the result
 * could not be made. */
vtsm_status vtsm_result_take(vtsm_status st, cbor_item_t *msg, struct vtsm_result **out);
/* The message a result holds (borrowed from r). */
const cbor_item_t *vtsm_result_item(const struct vtsm_result *r);

/* Completion of a verb started with a *_start_cbor function. On success result is the
 * RESULT map; on a failure the TSM reported it is the ERROR message; on a local failure
 * NULL. Borrowed: valid until the callback returns (cbor_incref() it to keep it). */
typedef void (*vtsm_host_done_cbor_fn)(void *ctx, vtsm_status st, const cbor_item_t *result);

/* ---- verbs with explicit arguments (blocking) ---- */

/*
 * DEVICE_CONNECT options. Zero-initialise, then set what you need; zero / NULL fields
 * are not sent and the TSM applies its default.
 */
struct vtsm_host_connect_opts {
    unsigned slot;        /* certificate slot 0..7 (0 is the default) */
    bool allow_untrusted; /* connect even if the chain does not validate */
    unsigned min_version; /* SPDM version 0x12 / 0x13 / 0x14; 0 = TSM default */
    unsigned max_version; /* 0 = TSM default */
    const char *asym;     /* "ecdsa-p384" / "ecdsa-p256"; NULL = TSM default */
    const char *hash;     /* "sha384" / "sha256"; NULL = TSM default */
    unsigned ide_streams; /* selective IDE streams to set up, 0..8; 0 = IDE off */
    bool ide_only;        /* the device need not be TEE-IO (no TDISP; no tdi_bind) */
    bool challenge;       /* authenticate by CHALLENGE too (the device needs CHAL_CAP) */
    bool ide_lenient;     /* accept a QUERY_RESP whose blocks contradict its capability (IDE.5) */
    const uint8_t *stream_ids; /* n_stream_ids stream IDs the host allocated on the root
                                  port (1..8); NULL = the TSM allocates */
    size_t n_stream_ids;
    const uint8_t *ide_addr_ranges; /* address association ranges, 16 bytes each (base,
                                       limit: u64 LE), 1..15; NULL = none */
    size_t ide_addr_ranges_len;
    bool ide_link;            /* a Link IDE stream (TC 0) as well */
    const cbor_item_t *extra; /* optional map of further options copied into the request
                                 (keys of later ABI revisions); NULL = none */
};

/* DEVICE_ADD {dev, root_port}; root_port < 0 leaves it to the TSM. */
vtsm_status vtsm_host_device_add_cbor(struct vtsm_host *h, const char *dev, int root_port);
vtsm_status vtsm_host_device_remove_cbor(struct vtsm_host *h, const char *dev);
/* DEVICE_CONNECT; on VTSM_OK *result is the RESULT map, on a TSM-reported failure the
 * ERROR message (with the device's evidence when tsmd refused it), else NULL; the caller
 * cbor_decref()s it. The same holds for every blocking verb below.
 * result may be NULL if not wanted. opts NULL = all defaults. */
vtsm_status vtsm_host_device_connect_cbor(struct vtsm_host *h, const char *dev,
                                          const struct vtsm_host_connect_opts *opts,
                                          cbor_item_t **result);
vtsm_status vtsm_host_device_reclaim_cbor(struct vtsm_host *h, const char *dev,
                                          cbor_item_t **result);
/* DEVICE_RECLAIM with options: force = true also stops and unbinds the device's bound
 * TDIs first (without it the TSM refuses to reclaim a device with bound TDIs). */
vtsm_status vtsm_host_device_reclaim_opts_cbor(struct vtsm_host *h, const char *dev, bool force,
                                               cbor_item_t **result);
/* STATUS, for one device or (dev NULL) all. The TSM answers in pages that each fit one
 * message; this follows them and returns one result with every device (or every TDI of
 * the device) and every TVM. For one page at a time, send STATUS with offset, tdi_offset
 * or tvm_offset through vtsm_host_call_cbor (docs/abi.md 7.5). */
vtsm_status vtsm_host_status_cbor(struct vtsm_host *h, const char *dev, cbor_item_t **result);

/* SPDM_KEY_UPDATE: KEY_UPDATE (UpdateKey, or UpdateAllKeys with all) then VerifyNewKey in
 * the device's session. RESULT {dev, key_updates, heartbeat_period}. */
vtsm_status vtsm_host_spdm_key_update_cbor(struct vtsm_host *h, const char *dev, bool all,
                                           cbor_item_t **result);
/* SPDM_HEARTBEAT: HEARTBEAT in the device's session. */
vtsm_status vtsm_host_spdm_heartbeat_cbor(struct vtsm_host *h, const char *dev,
                                          cbor_item_t **result);
/* IDE_REFRESH: switch every IDE stream of a connected device to fresh keys. */
vtsm_status vtsm_host_ide_refresh_cbor(struct vtsm_host *h, const char *dev, cbor_item_t **result);
/* IDE_LINK_CHECK: prove both link ends hold matching keys. The exchanges travel on the
 * link channel (vtsm_host_register_link()). RESULT {dev, streams: [{stream_id, key_set,
 * rp_to_device, device_to_rp}]}; a failed direction is a RESULT with false, not an error. */
vtsm_status vtsm_host_ide_link_check_cbor(struct vtsm_host *h, const char *dev,
                                          cbor_item_t **result);

/*
 * TVM_CREATE: register a TVM with its guest's public key (65 bytes: 0x04 || X || Y,
 * P-256; the private key stays with the guest). name may be NULL (not sent). On VTSM_OK
 * *tvm (may be NULL) is the number the TSM assigned; a RESULT without a valid "tvm"
 * (1..2^32-1) gives E_ABI_ARG and no result.
 */
vtsm_status vtsm_host_tvm_create_cbor(struct vtsm_host *h, const char *name,
                                      const uint8_t guest_key[VTSM_ABI_GUEST_KEY_SIZE],
                                      uint32_t *tvm, cbor_item_t **result);
/* TVM_DESTROY (refused while a TDI is bound to the TVM). */
vtsm_status vtsm_host_tvm_destroy_cbor(struct vtsm_host *h, uint32_t tvm, cbor_item_t **result);
/* TDI_BIND: lock TDI tdi of dev (LOCK_INTERFACE) for TVM tvm. lock_flags are the TDISP
 * LOCK_INTERFACE_REQ flags; 0 is not sent (TSM default 0). */
vtsm_status vtsm_host_tdi_bind_cbor(struct vtsm_host *h, const char *dev, uint32_t tdi,
                                    uint32_t tvm, uint32_t lock_flags, cbor_item_t **result);
/* TDI_UNBIND: STOP_INTERFACE, the TDI is CONFIG_UNLOCKED and unowned afterwards. */
vtsm_status vtsm_host_tdi_unbind_cbor(struct vtsm_host *h, const char *dev, uint32_t tdi,
                                      cbor_item_t **result);
/*
 * GUEST_REQUEST: relay a guest's signed request envelope {tvm, body, sig} unchanged
 * ("op"/"id" are the shim's). The host cannot read or forge what the guest asked for
 * beyond what the body shows; it services the request's DOE exchanges as for any verb.
 * The same call sends a guest's own request on a connection opened with role guest.
 */
vtsm_status vtsm_host_guest_relay_cbor(struct vtsm_host *h, const cbor_item_t *envelope,
                                       cbor_item_t **result);

/*
 * Any request: req is a map holding the verb's fields; "op" and "id" are set by the
 * shim (any given are replaced). For verbs this header has no wrapper for yet.
 */
vtsm_status vtsm_host_call_cbor(struct vtsm_host *h, unsigned op, const cbor_item_t *req,
                                cbor_item_t **result);

/* ---- the same, fd-driven ---- */

/* Send the request and return; done runs from vtsm_host_dispatch (or from a blocking
 * call) when the verb completes. Never calls done itself: a failure to send is
 * returned. */
vtsm_status vtsm_host_connect_start_cbor(struct vtsm_host *h, const char *dev,
                                         const struct vtsm_host_connect_opts *opts,
                                         vtsm_host_done_cbor_fn done, void *ctx);
vtsm_status vtsm_host_reclaim_start_cbor(struct vtsm_host *h, const char *dev,
                                         vtsm_host_done_cbor_fn done, void *ctx);
vtsm_status vtsm_host_reclaim_opts_start_cbor(struct vtsm_host *h, const char *dev, bool force,
                                              vtsm_host_done_cbor_fn done, void *ctx);
vtsm_status vtsm_host_ide_refresh_start_cbor(struct vtsm_host *h, const char *dev,
                                             vtsm_host_done_cbor_fn done, void *ctx);
vtsm_status vtsm_host_ide_link_check_start_cbor(struct vtsm_host *h, const char *dev,
                                                vtsm_host_done_cbor_fn done, void *ctx);
/* The assigned TVM number is the RESULT's "tvm". */
vtsm_status vtsm_host_tvm_create_start_cbor(struct vtsm_host *h, const char *name,
                                            const uint8_t guest_key[VTSM_ABI_GUEST_KEY_SIZE],
                                            vtsm_host_done_cbor_fn done, void *ctx);
vtsm_status vtsm_host_tvm_destroy_start_cbor(struct vtsm_host *h, uint32_t tvm,
                                             vtsm_host_done_cbor_fn done, void *ctx);
vtsm_status vtsm_host_tdi_bind_start_cbor(struct vtsm_host *h, const char *dev, uint32_t tdi,
                                          uint32_t tvm, uint32_t lock_flags,
                                          vtsm_host_done_cbor_fn done, void *ctx);
vtsm_status vtsm_host_tdi_unbind_start_cbor(struct vtsm_host *h, const char *dev, uint32_t tdi,
                                            vtsm_host_done_cbor_fn done, void *ctx);
vtsm_status vtsm_host_guest_relay_start_cbor(struct vtsm_host *h, const cbor_item_t *envelope,
                                             vtsm_host_done_cbor_fn done, void *ctx);
vtsm_status vtsm_host_call_start_cbor(struct vtsm_host *h, unsigned op, const cbor_item_t *req,
                                      vtsm_host_done_cbor_fn done, void *ctx);

#endif
