/* SPDX-License-Identifier: BSD-3-Clause */
/* The guest's MMIO_VALIDATE and DMA_ENABLE, called by the guest request job
 * (tsm_verbs_tdi.c) once the request is authenticated and its TDI found. */
#ifndef TSM_VERBS_MMIO_H
#define TSM_VERBS_MMIO_H

#include <cbor.h>

#include "tsm_int.h"
#include "vtsm_abi_guest.h"

/* g is MMIO_VALIDATE or DMA_ENABLE of TDI tdi of device p. On VTSM_OK *out is the RESULT
 * (id, gop, tvm, seq echoed); otherwise the refusal (rules of tsm_mmio.h, PDEV.6 while a
 * job holds the TDI) and nothing changed. */
vtsm_status tsm_guest_mmio(struct tsm *t, uint64_t id, const struct vtsm_abi_guest_body *g,
                           struct tsm_pdev *p, struct tsm_tdi *tdi, cbor_item_t **out);

#endif
