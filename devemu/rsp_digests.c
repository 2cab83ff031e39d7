/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DSP0274 GET_DIGESTS / DIGESTS.
 *   GET_DIGESTS: header only (Param1, Param2 reserved)
 *   DIGESTS:     header (Param1 = SupportedSlotMask in 1.3, reserved in 1.2;
 *                Param2 = ProvisionedSlotMask) | Digest (H) per provisioned slot, in slot
 *                order; each the base hash of the slot's whole SPDM certificate chain.
 */
#include "dev_internal.h"
#include "vtsm_guard.h"

vtsm_status dev_rsp_digests(struct vtsm_dev *d, struct dev_req *q, struct vtsm_wr *w)
{
    struct vtsm_rd r = vtsm_rd_init(q->msg, q->len);
    int hi = dev_hash_index(d->conn.hash);
    size_t hlen = vtsm_hash_size(d->conn.hash);
    uint8_t provisioned = 0;

    VTSM_GUARD(vtsm_rd_skip(&r, 4));
    VTSM_GUARD(dev_req_end(q, &r));
    for (unsigned i = 0; i < VTSM_DEV_MAX_SLOTS; i++)
        if (d->slots[i].present)
            provisioned |= (uint8_t)(1u << i);

    uint8_t code = SPDM_DIGESTS;
    /* unexpected-code: a DIGESTS body under the CERTIFICATE response code. */
    if (dev_fault(d, VTSM_DEV_FAULT_UNEXPECTED_CODE))
        code = SPDM_CERTIFICATE;
    uint8_t supported = q->version >= VTSM_SPDM_V13 ? 0xFF : 0;
    VTSM_GUARD(dev_wr_header(q, w, code, supported, provisioned));
    for (unsigned i = 0; i < VTSM_DEV_MAX_SLOTS; i++)
        if (d->slots[i].present)
            VTSM_GUARD(vtsm_wr_bytes(w, d->slots[i].digest[hi], hlen));
    return VTSM_OK;
}
