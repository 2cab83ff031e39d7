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

#include "vtsm_spdm_req.h"
#include "vtsm_status.h"

/*
 * map["measurements"] = the one shape of a signed MEASUREMENTS result everywhere (device
 * report, TDI INFO): {count, blocks: [{index, spec, type, raw, value}], record, nonce,
 * responder_nonce, transcript, signature, after_lock}. after_lock: taken after
 * LOCK_INTERFACE_REQ (a TDI's), or not (a device's, at connect).
 */
vtsm_status tsm_reply_put_meas(cbor_item_t *map, const struct vtsm_spdm_meas *ms, bool after_lock);

#endif
