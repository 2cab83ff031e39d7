/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The CBOR of tsmd's replies (docs/abi.md), built in one place from the object model's
 * plain C views. Each function adds its fields to a map the caller owns; on failure the
 * map may hold some of them and the caller drops it.
 */
#ifndef TSM_REPLY_H
#define TSM_REPLY_H

#include <stdbool.h>

#include <cbor.h>

#include "tsm_ide.h"
#include "tsm_platform.h"
#include "tsm_tdi.h"
#include "vtsm_spdm_req.h"
#include "vtsm_err.h"

/*
 * map["measurements"] = the one shape of a signed MEASUREMENTS result everywhere (device
 * report, TDI INFO): {count, blocks: [{index, spec, type, raw, value}], record, nonce,
 * responder_nonce, transcript, signature, after_lock}. after_lock: taken after
 * LOCK_INTERFACE_REQ (a TDI's), or not (a device's, at connect).
 */
vtsm_status tsm_reply_put_meas(cbor_item_t *map, const struct vtsm_spdm_meas *ms, bool after_lock);

/* map["ide"] = {root_port, streams: [{stream_id, state: "active", key_set, refreshes}]}. */
vtsm_status tsm_reply_put_ide(cbor_item_t *map, const struct tsm_ide_status *s);

/* Append {stream_id, key_set, rp_to_device, device_to_rp} per stream checked. */
vtsm_status tsm_reply_push_link_check(cbor_item_t *array, const struct tsm_ide_check *c);

/* Append {id, streams, streams_used, key_slots, key_slots_used} per root port u[0..n). */
vtsm_status tsm_reply_push_root_ports(cbor_item_t *array, const struct tsm_rp_usage *u, size_t n);

/* ---- TDIs (tsm_reply_tdi.c) ---- */

/* TDI_BIND's RESULT fields (docs/abi.md section 7.10): adds {dev, tdi, tvm, state,
 * report_digest, mmio: [{first_page, pages, attributes, range_id}]} to map. The TDI must be
 * bound (E_STATE otherwise). */
vtsm_status tsm_reply_tdi_binding(cbor_item_t *map, const struct tsm_tdi *t);

/*
 * INFO (docs/abi.md section 9.5): *out (caller cbor_decref()s) becomes the map
 *   {dev, tdi, state, report, report_digest, interface_info,
 *    mmio: [{first_page, pages, attributes, range_id}], measurements (tsm_reply_put_meas),
 *    cert_chain, cert_chain_digest, ? token}
 * and with a nonce token = COSE_Sign1 by a->tsm_key over {nonce, tvm, tvm_identity, dev,
 * tdi, state, report_digest, cert_chain_digest, measurements_digest,
 * measurement_transcript_digest, after_lock: true}.
 */
vtsm_status tsm_reply_tdi_info(const struct tsm_tdi_info *i, const struct tsm_tdi_info_args *a,
                               cbor_item_t **out);

/*
 * One TDI as STATUS (host_view) or a guest's LIST shows it:
 *   host:  {tdi, state, ? tvm, mmio_enabled, dma_enabled, ? report_digest, ? guest_rejected}
 *   guest: {dev, tdi, state, mmio_enabled, dma_enabled}
 * *out is a new map the caller releases.
 */
vtsm_status tsm_reply_tdi_summary(const struct tsm_tdi *t, bool host_view, cbor_item_t **out);
/* MMIO and DMA of a TDI into map m: "dma" ("off" / "enabled" / "active") and, while it
 * is bound, "mmio_map": per MMIO_RANGE of its report {range, range_id, first_page, pages,
 * attributes, mapped, ? gpa, ? map_pages, validated, ? private} (docs/abi.md 7.18). With
 * all false (STATUS and LIST entries, which must stay small enough for a page of 255),
 * neither key until the host mapped a range or the guest enabled DMA (absent: DMA off,
 * nothing mapped). */
vtsm_status tsm_reply_tdi_mmio(cbor_item_t *m, const struct tsm_tdi *t, bool all);
/* "rid" (the TDI's function as a PCI address) and "mmio": the MMIO ranges of a bound TDI's
 * cached interface report (nothing if unbound). */
vtsm_status tsm_reply_tdi_detail(cbor_item_t *m, const struct tsm_tdi *t);

#endif
