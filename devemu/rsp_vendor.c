/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DSP0274 VENDOR_DEFINED_REQUEST / VENDOR_DEFINED_RESPONSE, and the PCI-SIG protocols
 * carried in them (PCIe 6.x: IDE_KM, TDISP), dispatched by protocol ID.
 *
 *   VENDOR_DEFINED_REQUEST:  header | StandardID (2) | Len (1) | VendorID (Len) |
 *                            ReqLength (2) | VendorDefinedReqPayload (ReqLength)
 *   VENDOR_DEFINED_RESPONSE: header | StandardID (2) | Len (1) | VendorID (Len) |
 *                            RespLength (2) | VendorDefinedRespPayload (RespLength)
 * For PCI-SIG: StandardID = 3 (PCI-SIG registry), Len = 2, VendorID = 0x0001, and the
 * payload starts with the protocol ID (0 = IDE_KM, 1 = TDISP).
 * 1.4 large form (Param1 bit 7): ReqLength / RespLength are reserved (ignored / 0) and
 * followed by LargeReqLength / LargeRespLength (4); a large request gets a large response.
 */
#include "dev_internal.h"
#include "vtsm_guard.h"

struct dev_pci_proto {
    uint8_t protocol_id;
    bool session_required;
    vtsm_status (*fn)(struct vtsm_dev *d, struct dev_req *q, const uint8_t *payload, size_t len,
                      struct vtsm_wr *w);
    const char *name;
};

/* The PCI-SIG protocols the device speaks. Both carry keys or TDI state, so both need
 * the secure session (PCIe 6.x: IDE_KM and TDISP messages are secured SPDM messages). */
static const struct dev_pci_proto pci_protocols[] = {
    {PCI_PROTOCOL_ID_IDE_KM, true, dev_rsp_idekm, "IDE_KM"},
    {PCI_PROTOCOL_ID_TDISP, true, dev_rsp_tdisp, "TDISP"},
};

/* An IDE-only device (cfg.tdisp false) does not speak TDISP at all. */
static const struct dev_pci_proto *pci_proto_find(const struct vtsm_dev *d, uint8_t id)
{
    for (size_t i = 0; i < VTSM_ARRAY_SIZE(pci_protocols); i++) {
        const struct dev_pci_proto *p = &pci_protocols[i];
        if (p->protocol_id != id)
            continue;
        if (id == PCI_PROTOCOL_ID_TDISP && !d->cfg.tdisp)
            return NULL;
        return p;
    }
    return NULL;
}

vtsm_status dev_rsp_vendor(struct vtsm_dev *d, struct dev_req *q, struct vtsm_wr *w)
{
    struct vtsm_rd r = vtsm_rd_init(q->msg, q->len);
    uint16_t standard, len16;
    uint32_t req_len = 0;
    uint8_t vlen;
    const uint8_t *vendor, *payload;
    bool large = q->version >= VTSM_SPDM_V14 && (q->param1 & SPDM_VDM_LARGE);

    VTSM_GUARD(vtsm_rd_skip(&r, 4));
    if (vtsm_rd_le16(&r, &standard) || vtsm_rd_u8(&r, &vlen) || vtsm_rd_ref(&r, &vendor, vlen) ||
        vtsm_rd_le16(&r, &len16) || (large && vtsm_rd_le32(&r, &req_len)) ||
        vtsm_rd_ref(&r, &payload, large ? req_len : len16))
        return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_TRUNCATED,
                          "VENDOR_DEFINED_REQUEST truncated (%zu bytes)", q->len);
    if (!large)
        req_len = len16; /* in the large form the 2-byte ReqLength is reserved: ignored */
    VTSM_GUARD(dev_req_end(q, &r));

    bool pcisig = standard == SPDM_REGISTRY_ID_PCISIG && vlen == 2 &&
                  vtsm_get_le16(vendor) == PCISIG_VENDOR_ID;
    if (!pcisig)
        return dev_refuse(q, SPDM_ERR_UNSUPPORTED_REQUEST, q->code, VTSM_E_UNSUPPORTED,
                          "vendor-defined StandardID %u / VendorID of %u bytes not supported",
                          standard, vlen);
    if (req_len < 1)
        return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_MALFORMED,
                          "PCI-SIG vendor-defined payload without a protocol ID");
    const struct dev_pci_proto *p = pci_proto_find(d, payload[0]);
    if (!p)
        return dev_refuse(q, SPDM_ERR_UNSUPPORTED_REQUEST, q->code, VTSM_E_UNSUPPORTED,
                          "PCI-SIG protocol ID %u not implemented%s", payload[0],
                          payload[0] == PCI_PROTOCOL_ID_TDISP ? " (IDE-only device)" : "");
    /* SessionRequired is defined for request codes that exist only inside a session;
     * VENDOR_DEFINED_REQUEST is not one, so the message is simply not expected here. */
    if (p->session_required && !q->sess)
        return dev_refuse_rule(q, SPDM_ERR_UNEXPECTED_REQUEST, 0, VTSM_E_STATE, VTSM_RULE_VDM_1,
                               "%s messages only inside a secure session (rule VDM.1)", p->name);

    size_t at_len;
    VTSM_GUARD(dev_wr_header(q, w, SPDM_VENDOR_DEFINED_RESPONSE, large ? SPDM_VDM_LARGE : 0, 0));
    VTSM_GUARD(vtsm_wr_le16(w, standard));
    VTSM_GUARD(vtsm_wr_u8(w, vlen));
    VTSM_GUARD(vtsm_wr_bytes(w, vendor, vlen));
    if (large)
        VTSM_GUARD(vtsm_wr_le16(w, 0)); /* RespLength: reserved in the large form */
    VTSM_GUARD(vtsm_wr_reserve(w, large ? 4 : 2, &at_len));
    size_t start = w->len;
    VTSM_GUARD(p->fn(d, q, payload, req_len, w));
    VTSM_ENSURE(large || w->len - start <= 0xFFFF, VTSM_E_INTERNAL,
                "vendor response payload too long");
    if (large)
        vtsm_wr_patch_le32(w, at_len, (uint32_t)(w->len - start));
    else
        vtsm_wr_patch_le16(w, at_len, (uint16_t)(w->len - start));
    return VTSM_OK;
}
