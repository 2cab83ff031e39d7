/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DSP0274 "VENDOR_DEFINED_REQUEST request and VENDOR_DEFINED_RESPONSE response messages"
 * with the PCI-SIG registry (PCIe "Vendor-defined SPDM messages" for IDE_KM and TDISP):
 * header, StandardID(2) = 3 (PCI-SIG), Len(1) = 2, VendorID(2) = 0x0001,
 * ReqLength / RespLength(2), payload (starting with the protocol ID byte). At 1.4 the large
 * form (Param1 bit 7: ReqLength / RespLength reserved, then LargeReqLength /
 * LargeRespLength(4)) is sent when opts.vdm_large asks for it; the response must take the
 * request's form.
 */
#include "spdm_req_int.h"

#define VDM_FIXED            (VTSM__SPDM_HDR + 2 + 1 + 2 + 2)
#define PCISIG_VENDOR_ID_LEN 2

vtsm_status vtsm_spdm_req_vendor(struct vtsm_spdm_req *r, const uint8_t *payload, size_t len,
                                 struct vtsm_buf *rsp)
{
    vtsm_status st = VTSM_OK;
    struct vtsm_buf req = {0};
    struct vtsm_wr w;
    struct vtsm_rd rd;
    uint16_t std_id, vendor_id, len16;
    uint32_t rsp_len;
    uint8_t vlen;
    const uint8_t *body;
    static const char msg[] = "VENDOR_DEFINED_RESPONSE";

    VTSM_ENSURE(r != NULL && rsp != NULL && (payload != NULL || len == 0), VTSM_E_INVAL,
                "vendor: NULL argument");
    bool large = r != NULL && r->opts.vdm_large && r->info.version >= VTSM_SPDM_V14;
    VTSM_ENSURE(len >= 1 && (large || len <= 0xFFFF) && len <= UINT32_MAX, VTSM_E_INVAL,
                "vendor payload of %zu bytes: needs a protocol ID and fits ReqLength", len);
    VTSM_ENSURE(r->info.session_active, VTSM_E_STATE,
                "VENDOR_DEFINED_REQUEST is sent only inside a secure session");

    VTSM_GUARD_GOTO(vtsm_buf_reserve(&req, VDM_FIXED + 4 + len));
    w = vtsm_wr_init(req.data, req.cap);
    VTSM_GUARD_GOTO(vtsm_wr_u8(&w, r->info.version));
    VTSM_GUARD_GOTO(vtsm_wr_u8(&w, SPDM_VENDOR_DEFINED_REQUEST));
    VTSM_GUARD_GOTO(vtsm_wr_u8(&w, large ? SPDM_VDM_LARGE : 0));
    VTSM_GUARD_GOTO(vtsm_wr_u8(&w, 0));
    VTSM_GUARD_GOTO(vtsm_wr_le16(&w, SPDM_REGISTRY_ID_PCISIG)); /* StandardID */
    VTSM_GUARD_GOTO(vtsm_wr_u8(&w, PCISIG_VENDOR_ID_LEN));      /* Len */
    VTSM_GUARD_GOTO(vtsm_wr_le16(&w, PCISIG_VENDOR_ID));        /* VendorID */
    /* ReqLength; reserved (0) in the large form, LargeReqLength follows */
    VTSM_GUARD_GOTO(vtsm_wr_le16(&w, large ? 0 : (uint16_t)len));
    if (large)
        VTSM_GUARD_GOTO(vtsm_wr_le32(&w, (uint32_t)len));
    VTSM_GUARD_GOTO(vtsm_wr_bytes(&w, payload, len));
    req.len = w.len;

    VTSM_GUARD_GOTO(vtsm__req_xfer(r, true, req.data, req.len, SPDM_VENDOR_DEFINED_RESPONSE, &rd));
    VTSM__RD_GOTO(vtsm_rd_skip(&rd, VTSM__SPDM_HDR), msg, "header");
    VTSM__RD_GOTO(vtsm_rd_le16(&rd, &std_id), msg, "StandardID");
    VTSM__RD_GOTO(vtsm_rd_u8(&rd, &vlen), msg, "Len");
    VTSM_ENSURE_GOTO(
        std_id == SPDM_REGISTRY_ID_PCISIG && vlen == PCISIG_VENDOR_ID_LEN, VTSM_E_PEER_MALFORMED,
        "VENDOR_DEFINED_RESPONSE StandardID %u / Len %u, expected PCI-SIG (3) / 2", std_id, vlen);
    VTSM__RD_GOTO(vtsm_rd_le16(&rd, &vendor_id), msg, "VendorID");
    VTSM_ENSURE_GOTO(vendor_id == PCISIG_VENDOR_ID, VTSM_E_PEER_MALFORMED,
                     "VENDOR_DEFINED_RESPONSE VendorID 0x%04x, expected 0x%04x", vendor_id,
                     PCISIG_VENDOR_ID);
    VTSM__RD_GOTO(vtsm_rd_le16(&rd, &len16), msg, "RespLength");
    rsp_len = len16;
    /* The response takes the form of the request (1.4 large form: RespLength reserved,
     * LargeRespLength follows). */
    VTSM_ENSURE_GOTO(!(rd.p[2] & SPDM_VDM_LARGE) == !large, VTSM_E_PEER_MALFORMED,
                     "VENDOR_DEFINED_RESPONSE Param1 0x%02x: %s form answering a %s request",
                     rd.p[2], large ? "short" : "large", large ? "large" : "short");
    if (large)
        VTSM__RD_GOTO(vtsm_rd_le32(&rd, &rsp_len), msg, "LargeRespLength");
    VTSM__RD_GOTO(vtsm_rd_ref(&rd, &body, rsp_len), msg, "VendorDefinedRespPayload");
    VTSM_GUARD_GOTO(vtsm__req_end(r, &rd, msg));
    VTSM_ENSURE_GOTO(rsp_len >= 1 && body[0] == payload[0], VTSM_E_PEER_MALFORMED,
                     "VENDOR_DEFINED_RESPONSE protocol ID %d does not answer protocol ID %u",
                     rsp_len ? body[0] : -1, payload[0]);
    VTSM_GUARD_GOTO(vtsm_buf_set(rsp, body, rsp_len));
    st = VTSM_OK;
out:
    vtsm_buf_wipe(&req);
    return st;
}
