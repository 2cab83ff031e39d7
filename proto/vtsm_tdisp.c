/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TDISP codec (PCIe 6.x sec. 11.3 "TDISP Messages") and the device interface report
 * (sec. 11.3.11 DEVICE_INTERFACE_REPORT). Layouts checked against DMTF libspdm
 * include/industry_standard/pci_tdisp.h.
 */
#include "vtsm_tdisp.h"

#include <string.h>

#include <openssl/crypto.h>

#include "vtsm_guard.h"

const char *vtsm_tdisp_type_name(uint8_t type)
{
    static const char *const req[] = {"GET_VERSION",
                                      "GET_CAPABILITIES",
                                      "LOCK_INTERFACE_REQ",
                                      "GET_DEVICE_INTERFACE_REPORT",
                                      "GET_DEVICE_INTERFACE_STATE",
                                      "START_INTERFACE_REQ",
                                      "STOP_INTERFACE_REQ",
                                      "BIND_P2P_STREAM_REQ",
                                      "UNBIND_P2P_STREAM_REQ",
                                      "SET_MMIO_ATTRIBUTE_REQ",
                                      "VDM_REQ",
                                      "SET_TDISP_CONFIG_REQ"};
    static const char *const rsp[] = {"VERSION",
                                      "CAPABILITIES",
                                      "LOCK_INTERFACE_RSP",
                                      "DEVICE_INTERFACE_REPORT",
                                      "DEVICE_INTERFACE_STATE",
                                      "START_INTERFACE_RSP",
                                      "STOP_INTERFACE_RSP",
                                      "BIND_P2P_STREAM_RSP",
                                      "UNBIND_P2P_STREAM_RSP",
                                      "SET_MMIO_ATTRIBUTE_RSP",
                                      "VDM_RSP",
                                      "SET_TDISP_CONFIG_RSP"};

    if (type == VTSM_TDISP_ERROR)
        return "TDISP_ERROR";
    if (type >= 0x81 && type < 0x81 + VTSM_ARRAY_SIZE(req))
        return req[type - 0x81];
    if (type >= 0x01 && type < 0x01 + VTSM_ARRAY_SIZE(rsp))
        return rsp[type - 0x01];
    return "unknown";
}

const char *vtsm_tdisp_error_name(uint32_t code)
{
    switch (code) {
    case VTSM_TDISP_ERR_INVALID_REQUEST:
        return "INVALID_REQUEST";
    case VTSM_TDISP_ERR_BUSY:
        return "BUSY";
    case VTSM_TDISP_ERR_INVALID_INTERFACE_STATE:
        return "INVALID_INTERFACE_STATE";
    case VTSM_TDISP_ERR_UNSPECIFIED:
        return "UNSPECIFIED";
    case VTSM_TDISP_ERR_UNSUPPORTED_REQUEST:
        return "UNSUPPORTED_REQUEST";
    case VTSM_TDISP_ERR_VERSION_MISMATCH:
        return "VERSION_MISMATCH";
    case VTSM_TDISP_ERR_VENDOR_SPECIFIC_ERROR:
        return "VENDOR_SPECIFIC_ERROR";
    case VTSM_TDISP_ERR_INVALID_INTERFACE:
        return "INVALID_INTERFACE";
    case VTSM_TDISP_ERR_INVALID_NONCE:
        return "INVALID_NONCE";
    case VTSM_TDISP_ERR_INSUFFICIENT_ENTROPY:
        return "INSUFFICIENT_ENTROPY";
    case VTSM_TDISP_ERR_INVALID_DEVICE_CONFIGURATION:
        return "INVALID_DEVICE_CONFIGURATION";
    default:
        return "unknown";
    }
}

/* ---- reading ---- */

static vtsm_status short_msg(uint8_t type, const char *field, size_t len)
{
    return vtsm_fail(VTSM_E_PEER_TRUNCATED, "TDISP %s truncated at %s (%zu bytes)",
                     vtsm_tdisp_type_name(type), field, len);
}

static vtsm_status rd_end(const struct vtsm_rd *r, uint8_t type)
{
    VTSM_ENSURE(vtsm_rd_left(r) == 0, VTSM_E_PEER_MALFORMED,
                "TDISP %s carries %zu bytes beyond its %zu-byte layout", vtsm_tdisp_type_name(type),
                vtsm_rd_left(r), r->off);
    return VTSM_OK;
}

static vtsm_status rd_header(struct vtsm_rd *r, struct vtsm_tdisp_hdr *hdr)
{
    uint8_t proto;
    uint16_t rsvd16;
    uint64_t rsvd64;

    if (vtsm_rd_u8(r, &proto))
        return vtsm_fail(VTSM_E_PEER_TRUNCATED, "TDISP message of %zu bytes has no protocol ID",
                         r->len);
    VTSM_ENSURE(proto == VTSM_PCI_PROTOCOL_ID_TDISP, VTSM_E_PEER_MALFORMED,
                "TDISP: protocol ID 0x%02x is not TDISP (0x01)", proto);
    if (vtsm_rd_u8(r, &hdr->version) || vtsm_rd_u8(r, &hdr->type) || vtsm_rd_le16(r, &rsvd16) ||
        vtsm_rd_le32(r, &hdr->function_id) || vtsm_rd_le64(r, &rsvd64))
        return vtsm_fail(VTSM_E_PEER_TRUNCATED,
                         "TDISP message of %zu bytes is shorter than the %u-byte header", r->len,
                         VTSM_TDISP_HEADER_SIZE);
    VTSM_ENSURE(hdr->version == VTSM_TDISP_VERSION_10, VTSM_E_PEER_VERSION,
                "TDISP %s: TDISPVersion 0x%02x, only 0x10 is supported",
                vtsm_tdisp_type_name(hdr->type), hdr->version);
    VTSM_ENSURE(rsvd16 == 0, VTSM_E_PEER_MALFORMED,
                "TDISP %s: header Reserved bytes 3-4 are 0x%04x, must be zero",
                vtsm_tdisp_type_name(hdr->type), rsvd16);
    VTSM_ENSURE((hdr->function_id & VTSM_TDISP_FID_RESERVED_MASK) == 0, VTSM_E_PEER_MALFORMED,
                "TDISP %s: FUNCTION_ID 0x%08x has reserved bits 31:25 set",
                vtsm_tdisp_type_name(hdr->type), hdr->function_id);
    VTSM_ENSURE(rsvd64 == 0, VTSM_E_PEER_MALFORMED,
                "TDISP %s: INTERFACE_ID Reserved is 0x%016llx, must be zero",
                vtsm_tdisp_type_name(hdr->type), (unsigned long long)rsvd64);
    return VTSM_OK;
}

vtsm_status vtsm_tdisp_parse_header(const uint8_t *msg, size_t len, struct vtsm_tdisp_hdr *hdr)
{
    struct vtsm_rd r = vtsm_rd_init(msg, len);

    VTSM_ENSURE(hdr != NULL && (msg != NULL || len == 0), VTSM_E_INVAL,
                "TDISP header: NULL argument");
    memset(hdr, 0, sizeof(*hdr));
    return rd_header(&r, hdr);
}

/* VDM_REQ / VDM_RSP: REGISTRY_ID, VENDOR_ID_LEN, VENDOR_ID, and the rest is the vendor's. */
static vtsm_status parse_vdm(struct vtsm_rd *r, uint8_t t, struct vtsm_tdisp_vdm *v)
{
    if (vtsm_rd_u8(r, &v->registry_id) || vtsm_rd_u8(r, &v->vendor_id_len))
        return short_msg(t, "REGISTRY_ID/VENDOR_ID_LEN", r->len);
    VTSM_ENSURE(v->registry_id <= 1, VTSM_E_PEER_MALFORMED,
                "TDISP %s: REGISTRY_ID %u (0 PCI-SIG, 1 CXL)", vtsm_tdisp_type_name(t),
                v->registry_id);
    if (vtsm_rd_ref(r, &v->vendor_id, v->vendor_id_len))
        return vtsm_fail(VTSM_E_PEER_TRUNCATED,
                         "TDISP %s: VENDOR_ID_LEN %u exceeds the %zu bytes that follow",
                         vtsm_tdisp_type_name(t), v->vendor_id_len, vtsm_rd_left(r));
    v->body_len = vtsm_rd_left(r);
    return vtsm_rd_ref(r, &v->body, v->body_len);
}

vtsm_status vtsm_tdisp_parse_request(const uint8_t *msg, size_t len, struct vtsm_tdisp_req *req)
{
    struct vtsm_rd r = vtsm_rd_init(msg, len);
    uint8_t rsvd;

    VTSM_ENSURE(req != NULL && (msg != NULL || len == 0), VTSM_E_INVAL,
                "TDISP request: NULL argument");
    memset(req, 0, sizeof(*req));
    VTSM_GUARD(rd_header(&r, &req->hdr));
    uint8_t t = req->hdr.type;

    switch (t) {
    case VTSM_TDISP_GET_VERSION:
    case VTSM_TDISP_GET_DEVICE_INTERFACE_STATE:
    case VTSM_TDISP_STOP_INTERFACE_REQ:
        break;
    case VTSM_TDISP_GET_CAPABILITIES:
        if (vtsm_rd_le32(&r, &req->u.tsm_caps))
            return short_msg(t, "TSM_CAPS", len);
        break;
    case VTSM_TDISP_LOCK_INTERFACE_REQ: {
        struct vtsm_tdisp_lock_params *p = &req->u.lock;
        if (vtsm_rd_le16(&r, &p->flags) || vtsm_rd_u8(&r, &p->default_stream_id) ||
            vtsm_rd_u8(&r, &rsvd) || vtsm_rd_le64(&r, &p->mmio_reporting_offset) ||
            vtsm_rd_le64(&r, &p->bind_p2p_address_mask))
            return short_msg(t, "LOCK_INTERFACE_PARAM", len);
        VTSM_ENSURE((p->flags & ~VTSM_TDISP_LOCK_FLAGS_KNOWN) == 0, VTSM_E_PEER_MALFORMED,
                    "TDISP LOCK_INTERFACE_REQ: FLAGS 0x%04x has undefined bits 0x%04x", p->flags,
                    p->flags & ~VTSM_TDISP_LOCK_FLAGS_KNOWN);
        VTSM_ENSURE(rsvd == 0, VTSM_E_PEER_MALFORMED,
                    "TDISP LOCK_INTERFACE_REQ: Reserved byte after DEFAULT_STREAM_ID is 0x%02x",
                    rsvd);
        break;
    }
    case VTSM_TDISP_GET_DEVICE_INTERFACE_REPORT:
        if (vtsm_rd_le16(&r, &req->u.report.offset) || vtsm_rd_le16(&r, &req->u.report.length))
            return short_msg(t, "OFFSET/LENGTH", len);
        break;
    case VTSM_TDISP_START_INTERFACE_REQ:
        if (vtsm_rd_bytes(&r, req->u.start_nonce, VTSM_TDISP_NONCE_SIZE))
            return short_msg(t, "START_INTERFACE_NONCE", len);
        break;
    case VTSM_TDISP_VDM_REQ:
        return parse_vdm(&r, t, &req->u.vdm);
    default:
        if (t >= VTSM_TDISP_BIND_P2P_STREAM_REQ && t <= VTSM_TDISP_SET_TDISP_CONFIG_REQ)
            return vtsm_fail(VTSM_E_PEER_UNEXPECTED, "TDISP request %s (0x%02x) not implemented",
                             vtsm_tdisp_type_name(t), t);
        if (t < 0x80)
            return vtsm_fail(VTSM_E_PEER_UNEXPECTED,
                             "TDISP message type 0x%02x (%s) is a response, not a request", t,
                             vtsm_tdisp_type_name(t));
        return vtsm_fail(VTSM_E_PEER_UNEXPECTED, "TDISP request code 0x%02x is not defined", t);
    }
    return rd_end(&r, t);
}

static vtsm_status parse_error_body(struct vtsm_rd *r, struct vtsm_tdisp_error *e)
{
    const uint8_t t = VTSM_TDISP_ERROR;

    if (vtsm_rd_le32(r, &e->code))
        return short_msg(t, "ERROR_CODE", r->len);
    if (vtsm_rd_le32(r, &e->data))
        return short_msg(t, "ERROR_DATA", r->len);
    VTSM_ENSURE(e->code != 0, VTSM_E_PEER_MALFORMED, "TDISP_ERROR: ERROR_CODE 0 is reserved");
    e->ext_len = vtsm_rd_left(r);
    if (e->code != VTSM_TDISP_ERR_VENDOR_SPECIFIC_ERROR)
        return rd_end(r, t);

    /* ExtendedErrorData: RegistryID, VendorIDLen, VendorID, vendor error data */
    VTSM_GUARD(vtsm_rd_ref(r, &e->ext, e->ext_len));
    struct vtsm_rd x = vtsm_rd_init(e->ext, e->ext_len);
    if (vtsm_rd_u8(&x, &e->registry_id) || vtsm_rd_u8(&x, &e->vendor_id_len))
        return short_msg(t, "ExtendedErrorData RegistryID/VendorIDLen", r->len);
    VTSM_ENSURE(e->registry_id <= 1, VTSM_E_PEER_MALFORMED,
                "TDISP_ERROR: ExtendedErrorData RegistryID %u (0 PCI-SIG, 1 CXL)", e->registry_id);
    if (vtsm_rd_ref(&x, &e->vendor_id, e->vendor_id_len))
        return vtsm_fail(VTSM_E_PEER_TRUNCATED,
                         "TDISP_ERROR: VendorIDLen %u exceeds the %zu bytes that follow",
                         e->vendor_id_len, vtsm_rd_left(&x));
    return VTSM_OK;
}

vtsm_status vtsm_tdisp_parse_response(const uint8_t *msg, size_t len, uint8_t request,
                                      uint32_t function_id, struct vtsm_tdisp_rsp *rsp)
{
    struct vtsm_rd r = vtsm_rd_init(msg, len);
    uint8_t rsvd[3];

    VTSM_ENSURE(rsp != NULL && (msg != NULL || len == 0), VTSM_E_INVAL,
                "TDISP response: NULL argument");
    VTSM_ENSURE((request >= VTSM_TDISP_GET_VERSION && request <= VTSM_TDISP_STOP_INTERFACE_REQ) ||
                    request == VTSM_TDISP_VDM_REQ,
                VTSM_E_INVAL, "TDISP: no response parser for request 0x%02x", request);
    memset(rsp, 0, sizeof(*rsp));
    VTSM_GUARD(rd_header(&r, &rsp->hdr));
    uint8_t t = rsp->hdr.type, expect = (uint8_t)(request & 0x7F);

    VTSM_ENSURE(t == expect || t == VTSM_TDISP_ERROR, VTSM_E_PEER_UNEXPECTED,
                "TDISP %s (0x%02x) in answer to %s, expected %s", vtsm_tdisp_type_name(t), t,
                vtsm_tdisp_type_name(request), vtsm_tdisp_type_name(expect));
    VTSM_ENSURE(rsp->hdr.function_id == function_id, VTSM_E_PEER_UNEXPECTED,
                "TDISP %s for FUNCTION_ID 0x%08x, the request was for 0x%08x",
                vtsm_tdisp_type_name(t), rsp->hdr.function_id, function_id);

    switch (t) {
    case VTSM_TDISP_ERROR:
        VTSM_GUARD(parse_error_body(&r, &rsp->u.error));
        return vtsm_fail(VTSM_E_PEER_ERROR, "TDISP_ERROR %s (0x%x, data 0x%x) in answer to %s",
                         vtsm_tdisp_error_name(rsp->u.error.code), rsp->u.error.code,
                         rsp->u.error.data, vtsm_tdisp_type_name(request));
    case VTSM_TDISP_VERSION:
        if (vtsm_rd_u8(&r, &rsp->u.version.count))
            return short_msg(t, "VERSION_NUM_COUNT", len);
        VTSM_ENSURE(rsp->u.version.count >= 1, VTSM_E_PEER_MALFORMED,
                    "TDISP VERSION: VERSION_NUM_COUNT is 0");
        if (vtsm_rd_ref(&r, &rsp->u.version.versions, rsp->u.version.count))
            return vtsm_fail(VTSM_E_PEER_TRUNCATED,
                             "TDISP VERSION: VERSION_NUM_COUNT %u exceeds the %zu bytes that "
                             "follow",
                             rsp->u.version.count, vtsm_rd_left(&r));
        break;
    case VTSM_TDISP_CAPABILITIES: {
        struct vtsm_tdisp_caps *c = &rsp->u.caps;
        if (vtsm_rd_le32(&r, &c->dsm_caps) ||
            vtsm_rd_bytes(&r, c->req_msg_supported, sizeof(c->req_msg_supported)) ||
            vtsm_rd_le16(&r, &c->lock_interface_flags_supported) || vtsm_rd_bytes(&r, rsvd, 3) ||
            vtsm_rd_u8(&r, &c->dev_addr_width) || vtsm_rd_u8(&r, &c->num_req_this) ||
            vtsm_rd_u8(&r, &c->num_req_all))
            return short_msg(t, "RSP_CAPS", len);
        VTSM_ENSURE((rsvd[0] | rsvd[1] | rsvd[2]) == 0, VTSM_E_PEER_MALFORMED,
                    "TDISP CAPABILITIES: Reserved bytes after LOCK_INTERFACE_FLAGS_SUPPORTED "
                    "are %02x %02x %02x",
                    rsvd[0], rsvd[1], rsvd[2]);
        break;
    }
    case VTSM_TDISP_LOCK_INTERFACE_RSP:
        if (vtsm_rd_bytes(&r, rsp->u.lock_nonce, VTSM_TDISP_NONCE_SIZE))
            return short_msg(t, "START_INTERFACE_NONCE", len);
        break;
    case VTSM_TDISP_DEVICE_INTERFACE_REPORT:
        if (vtsm_rd_le16(&r, &rsp->u.report.portion_length) ||
            vtsm_rd_le16(&r, &rsp->u.report.remainder_length))
            return short_msg(t, "PORTION_LENGTH/REMAINDER_LENGTH", len);
        if (vtsm_rd_ref(&r, &rsp->u.report.portion, rsp->u.report.portion_length))
            return vtsm_fail(VTSM_E_PEER_TRUNCATED,
                             "TDISP DEVICE_INTERFACE_REPORT: PORTION_LENGTH %u exceeds the %zu "
                             "bytes that follow",
                             rsp->u.report.portion_length, vtsm_rd_left(&r));
        VTSM_ENSURE(rsp->u.report.portion_length != 0 || rsp->u.report.remainder_length == 0,
                    VTSM_E_PEER_MALFORMED,
                    "TDISP DEVICE_INTERFACE_REPORT: empty portion with REMAINDER_LENGTH %u "
                    "would never finish",
                    rsp->u.report.remainder_length);
        break;
    case VTSM_TDISP_DEVICE_INTERFACE_STATE:
        if (vtsm_rd_u8(&r, &rsp->u.tdi_state))
            return short_msg(t, "TDI_STATE", len);
        VTSM_ENSURE(rsp->u.tdi_state <= VTSM_TDI_ERROR, VTSM_E_PEER_MALFORMED,
                    "TDISP DEVICE_INTERFACE_STATE: TDI_STATE %u is reserved (0-3 defined)",
                    rsp->u.tdi_state);
        break;
    case VTSM_TDISP_VDM_RSP:
        return parse_vdm(&r, t, &rsp->u.vdm);
    default: /* START_INTERFACE_RSP, STOP_INTERFACE_RSP: header only */
        break;
    }
    return rd_end(&r, t);
}

/* ---- writing ---- */

static vtsm_status wr_begin(struct vtsm_wr *w, size_t body, uint8_t type, uint32_t function_id,
                            size_t *start)
{
    const char *name = vtsm_tdisp_type_name(type);

    VTSM_ENSURE(w != NULL && (w->p != NULL || w->cap == 0), VTSM_E_INVAL, "TDISP %s: NULL writer",
                name);
    VTSM_ENSURE((function_id & VTSM_TDISP_FID_RESERVED_MASK) == 0, VTSM_E_INVAL,
                "TDISP %s: FUNCTION_ID 0x%08x has reserved bits 31:25 set", name, function_id);
    size_t room = w->len <= w->cap ? w->cap - w->len : 0;
    size_t need = VTSM_TDISP_HEADER_SIZE + body;
    VTSM_ENSURE(need <= room, VTSM_E_TOO_SMALL, "TDISP %s needs %zu bytes, %zu free", name, need,
                room);
    *start = w->len;
    VTSM_GUARD(vtsm_wr_u8(w, VTSM_PCI_PROTOCOL_ID_TDISP));
    VTSM_GUARD(vtsm_wr_u8(w, VTSM_TDISP_VERSION_10));
    VTSM_GUARD(vtsm_wr_u8(w, type));
    VTSM_GUARD(vtsm_wr_le16(w, 0));
    VTSM_GUARD(vtsm_wr_le32(w, function_id));
    return vtsm_wr_le64(w, 0);
}

static vtsm_status wr_finish(struct vtsm_wr *w, size_t start, vtsm_status st)
{
    if (st != VTSM_OK && w != NULL) {
        if (w->len > start && w->len <= w->cap)
            OPENSSL_cleanse(w->p + start, w->len - start);
        w->len = start;
    }
    return st;
}

static vtsm_status build_empty(struct vtsm_wr *w, uint8_t type, uint32_t function_id)
{
    size_t start = w ? w->len : 0;
    vtsm_status st = wr_begin(w, 0, type, function_id, &start);
    return wr_finish(w, start, st);
}

vtsm_status vtsm_tdisp_build_get_version(struct vtsm_wr *w, uint32_t function_id)
{
    return build_empty(w, VTSM_TDISP_GET_VERSION, function_id);
}

vtsm_status vtsm_tdisp_build_get_capabilities(struct vtsm_wr *w, uint32_t function_id,
                                              uint32_t tsm_caps)
{
    size_t start = w ? w->len : 0;
    vtsm_status st = wr_begin(w, 4, VTSM_TDISP_GET_CAPABILITIES, function_id, &start);
    if (st == VTSM_OK)
        st = vtsm_wr_le32(w, tsm_caps);
    return wr_finish(w, start, st);
}

vtsm_status vtsm_tdisp_build_lock_interface(struct vtsm_wr *w, uint32_t function_id,
                                            const struct vtsm_tdisp_lock_params *p)
{
    VTSM_ENSURE(p != NULL, VTSM_E_INVAL, "TDISP LOCK_INTERFACE_REQ: NULL parameters");
    VTSM_ENSURE((p->flags & ~VTSM_TDISP_LOCK_FLAGS_KNOWN) == 0, VTSM_E_INVAL,
                "TDISP LOCK_INTERFACE_REQ: FLAGS 0x%04x has undefined bits", p->flags);
    size_t start = w ? w->len : 0;
    vtsm_status st = wr_begin(w, 20, VTSM_TDISP_LOCK_INTERFACE_REQ, function_id, &start);
    if (st == VTSM_OK && (st = vtsm_wr_le16(w, p->flags)) == VTSM_OK &&
        (st = vtsm_wr_u8(w, p->default_stream_id)) == VTSM_OK &&
        (st = vtsm_wr_u8(w, 0)) == VTSM_OK &&
        (st = vtsm_wr_le64(w, p->mmio_reporting_offset)) == VTSM_OK)
        st = vtsm_wr_le64(w, p->bind_p2p_address_mask);
    return wr_finish(w, start, st);
}

vtsm_status vtsm_tdisp_build_get_report(struct vtsm_wr *w, uint32_t function_id, uint16_t offset,
                                        uint16_t length)
{
    size_t start = w ? w->len : 0;
    vtsm_status st = wr_begin(w, 4, VTSM_TDISP_GET_DEVICE_INTERFACE_REPORT, function_id, &start);
    if (st == VTSM_OK && (st = vtsm_wr_le16(w, offset)) == VTSM_OK)
        st = vtsm_wr_le16(w, length);
    return wr_finish(w, start, st);
}

vtsm_status vtsm_tdisp_build_get_state(struct vtsm_wr *w, uint32_t function_id)
{
    return build_empty(w, VTSM_TDISP_GET_DEVICE_INTERFACE_STATE, function_id);
}

static vtsm_status build_nonce(struct vtsm_wr *w, uint8_t type, uint32_t function_id,
                               const uint8_t *nonce)
{
    VTSM_ENSURE(nonce != NULL, VTSM_E_INVAL, "TDISP %s: NULL nonce", vtsm_tdisp_type_name(type));
    size_t start = w ? w->len : 0;
    vtsm_status st = wr_begin(w, VTSM_TDISP_NONCE_SIZE, type, function_id, &start);
    if (st == VTSM_OK)
        st = vtsm_wr_bytes(w, nonce, VTSM_TDISP_NONCE_SIZE);
    return wr_finish(w, start, st);
}

vtsm_status vtsm_tdisp_build_start_interface(struct vtsm_wr *w, uint32_t function_id,
                                             const uint8_t nonce[VTSM_TDISP_NONCE_SIZE])
{
    return build_nonce(w, VTSM_TDISP_START_INTERFACE_REQ, function_id, nonce);
}

vtsm_status vtsm_tdisp_build_stop_interface(struct vtsm_wr *w, uint32_t function_id)
{
    return build_empty(w, VTSM_TDISP_STOP_INTERFACE_REQ, function_id);
}

vtsm_status vtsm_tdisp_build_version(struct vtsm_wr *w, uint32_t function_id,
                                     const uint8_t *versions, uint8_t count)
{
    VTSM_ENSURE(versions != NULL && count >= 1, VTSM_E_INVAL,
                "TDISP VERSION: at least one version entry is required");
    size_t start = w ? w->len : 0;
    vtsm_status st = wr_begin(w, 1u + count, VTSM_TDISP_VERSION, function_id, &start);
    if (st == VTSM_OK && (st = vtsm_wr_u8(w, count)) == VTSM_OK)
        st = vtsm_wr_bytes(w, versions, count);
    return wr_finish(w, start, st);
}

vtsm_status vtsm_tdisp_build_capabilities(struct vtsm_wr *w, uint32_t function_id,
                                          const struct vtsm_tdisp_caps *c)
{
    VTSM_ENSURE(c != NULL, VTSM_E_INVAL, "TDISP CAPABILITIES: NULL capabilities");
    size_t start = w ? w->len : 0;
    vtsm_status st = wr_begin(w, 28, VTSM_TDISP_CAPABILITIES, function_id, &start);
    if (st == VTSM_OK && (st = vtsm_wr_le32(w, c->dsm_caps)) == VTSM_OK &&
        (st = vtsm_wr_bytes(w, c->req_msg_supported, sizeof(c->req_msg_supported))) == VTSM_OK &&
        (st = vtsm_wr_le16(w, c->lock_interface_flags_supported)) == VTSM_OK &&
        (st = vtsm_wr_zeros(w, 3)) == VTSM_OK &&
        (st = vtsm_wr_u8(w, c->dev_addr_width)) == VTSM_OK &&
        (st = vtsm_wr_u8(w, c->num_req_this)) == VTSM_OK)
        st = vtsm_wr_u8(w, c->num_req_all);
    return wr_finish(w, start, st);
}

vtsm_status vtsm_tdisp_build_lock_rsp(struct vtsm_wr *w, uint32_t function_id,
                                      const uint8_t nonce[VTSM_TDISP_NONCE_SIZE])
{
    return build_nonce(w, VTSM_TDISP_LOCK_INTERFACE_RSP, function_id, nonce);
}

vtsm_status vtsm_tdisp_build_report_rsp(struct vtsm_wr *w, uint32_t function_id,
                                        const uint8_t *portion, uint16_t portion_len,
                                        uint16_t remainder_len)
{
    VTSM_ENSURE(portion != NULL || portion_len == 0, VTSM_E_INVAL,
                "TDISP DEVICE_INTERFACE_REPORT: NULL portion");
    size_t start = w ? w->len : 0;
    vtsm_status st =
        wr_begin(w, 4u + portion_len, VTSM_TDISP_DEVICE_INTERFACE_REPORT, function_id, &start);
    if (st == VTSM_OK && (st = vtsm_wr_le16(w, portion_len)) == VTSM_OK &&
        (st = vtsm_wr_le16(w, remainder_len)) == VTSM_OK)
        st = vtsm_wr_bytes(w, portion, portion_len);
    return wr_finish(w, start, st);
}

vtsm_status vtsm_tdisp_build_state_rsp(struct vtsm_wr *w, uint32_t function_id, uint8_t tdi_state)
{
    VTSM_ENSURE(tdi_state <= VTSM_TDI_ERROR, VTSM_E_INVAL,
                "TDISP DEVICE_INTERFACE_STATE: TDI_STATE %u is reserved", tdi_state);
    size_t start = w ? w->len : 0;
    vtsm_status st = wr_begin(w, 1, VTSM_TDISP_DEVICE_INTERFACE_STATE, function_id, &start);
    if (st == VTSM_OK)
        st = vtsm_wr_u8(w, tdi_state);
    return wr_finish(w, start, st);
}

vtsm_status vtsm_tdisp_build_start_rsp(struct vtsm_wr *w, uint32_t function_id)
{
    return build_empty(w, VTSM_TDISP_START_INTERFACE_RSP, function_id);
}

vtsm_status vtsm_tdisp_build_stop_rsp(struct vtsm_wr *w, uint32_t function_id)
{
    return build_empty(w, VTSM_TDISP_STOP_INTERFACE_RSP, function_id);
}

vtsm_status vtsm_tdisp_build_vdm(struct vtsm_wr *w, uint8_t type, uint32_t function_id,
                                 const struct vtsm_tdisp_vdm *v)
{
    VTSM_ENSURE(type == VTSM_TDISP_VDM_REQ || type == VTSM_TDISP_VDM_RSP, VTSM_E_INVAL,
                "TDISP VDM: type 0x%02x is neither VDM_REQ nor VDM_RSP", type);
    VTSM_ENSURE(v != NULL && v->registry_id <= 1 &&
                    (v->vendor_id != NULL || v->vendor_id_len == 0) &&
                    (v->body != NULL || v->body_len == 0),
                VTSM_E_INVAL, "TDISP VDM: bad REGISTRY_ID, VENDOR_ID or body");
    size_t start = w ? w->len : 0;
    vtsm_status st =
        wr_begin(w, 2 + (size_t)v->vendor_id_len + v->body_len, type, function_id, &start);
    if (st == VTSM_OK && (st = vtsm_wr_u8(w, v->registry_id)) == VTSM_OK &&
        (st = vtsm_wr_u8(w, v->vendor_id_len)) == VTSM_OK &&
        (st = vtsm_wr_bytes(w, v->vendor_id, v->vendor_id_len)) == VTSM_OK)
        st = vtsm_wr_bytes(w, v->body, v->body_len);
    return wr_finish(w, start, st);
}

vtsm_status vtsm_tdisp_build_error(struct vtsm_wr *w, uint32_t function_id, uint32_t code,
                                   uint32_t data, const uint8_t *ext, size_t ext_len)
{
    VTSM_ENSURE(code != 0, VTSM_E_INVAL, "TDISP_ERROR: ERROR_CODE 0 is reserved");
    VTSM_ENSURE(ext != NULL || ext_len == 0, VTSM_E_INVAL, "TDISP_ERROR: NULL extended data");
    VTSM_ENSURE(ext_len == 0 || code == VTSM_TDISP_ERR_VENDOR_SPECIFIC_ERROR, VTSM_E_INVAL,
                "TDISP_ERROR: extended error data only with VENDOR_SPECIFIC_ERROR");
    VTSM_ENSURE(code != VTSM_TDISP_ERR_VENDOR_SPECIFIC_ERROR ||
                    (ext_len >= 2 && ext[0] <= 1 && (size_t)ext[1] + 2 <= ext_len),
                VTSM_E_INVAL,
                "TDISP_ERROR: VENDOR_SPECIFIC_ERROR needs RegistryID, VendorIDLen, VendorID");
    VTSM_ENSURE(ext_len <= 0xFFFF, VTSM_E_INVAL, "TDISP_ERROR: extended data too long");
    size_t start = w ? w->len : 0;
    vtsm_status st = wr_begin(w, 8 + ext_len, VTSM_TDISP_ERROR, function_id, &start);
    if (st == VTSM_OK && (st = vtsm_wr_le32(w, code)) == VTSM_OK &&
        (st = vtsm_wr_le32(w, data)) == VTSM_OK)
        st = vtsm_wr_bytes(w, ext, ext_len);
    return wr_finish(w, start, st);
}

/* ---- the device interface report ---- */

size_t vtsm_tdisp_report_size(const struct vtsm_tdisp_report *r)
{
    if (!r || r->mmio_range_count > VTSM_TDISP_MAX_MMIO_RANGES)
        return 0;
    size_t n = VTSM_TDISP_REPORT_FIXED + (size_t)r->mmio_range_count * VTSM_TDISP_MMIO_RANGE_SIZE +
               4 + (size_t)r->device_specific_info_len;
    return n <= VTSM_TDISP_REPORT_MAX ? n : 0;
}

vtsm_status vtsm_tdisp_report_build(struct vtsm_wr *w, const struct vtsm_tdisp_report *r)
{
    vtsm_status st = VTSM_OK;

    VTSM_ENSURE(w != NULL && r != NULL && (w->p != NULL || w->cap == 0), VTSM_E_INVAL,
                "TDISP interface report: NULL argument");
    VTSM_ENSURE(r->device_specific_info != NULL || r->device_specific_info_len == 0, VTSM_E_INVAL,
                "TDISP interface report: NULL device-specific info");
    size_t need = vtsm_tdisp_report_size(r);
    VTSM_ENSURE(need != 0, VTSM_E_INVAL,
                "TDISP interface report: %u MMIO ranges (max %u) with %u bytes of device info "
                "do not fit the %u-byte report limit",
                r->mmio_range_count, VTSM_TDISP_MAX_MMIO_RANGES, r->device_specific_info_len,
                VTSM_TDISP_REPORT_MAX);
    size_t room = w->len <= w->cap ? w->cap - w->len : 0;
    VTSM_ENSURE(need <= room, VTSM_E_TOO_SMALL, "TDISP interface report needs %zu bytes, %zu free",
                need, room);
    size_t start = w->len;

    VTSM_GUARD_GOTO(vtsm_wr_le16(w, r->interface_info));
    VTSM_GUARD_GOTO(vtsm_wr_le16(w, 0));
    VTSM_GUARD_GOTO(vtsm_wr_le16(w, r->msi_x_message_control));
    VTSM_GUARD_GOTO(vtsm_wr_le16(w, r->lnr_control));
    VTSM_GUARD_GOTO(vtsm_wr_le32(w, r->tph_control));
    VTSM_GUARD_GOTO(vtsm_wr_le32(w, r->mmio_range_count));
    for (uint32_t i = 0; i < r->mmio_range_count; i++) {
        const struct vtsm_tdisp_mmio_range *m = &r->mmio_range[i];
        VTSM_GUARD_GOTO(vtsm_wr_le64(w, m->first_page));
        VTSM_GUARD_GOTO(vtsm_wr_le32(w, m->number_of_pages));
        VTSM_GUARD_GOTO(vtsm_wr_le16(w, m->range_attributes));
        VTSM_GUARD_GOTO(vtsm_wr_le16(w, m->range_id));
    }
    VTSM_GUARD_GOTO(vtsm_wr_le32(w, r->device_specific_info_len));
    VTSM_GUARD_GOTO(vtsm_wr_bytes(w, r->device_specific_info, r->device_specific_info_len));
out:
    return wr_finish(w, start, st);
}

/* Last page of a range, false if it runs past the last 4 KiB page of the 64-bit address
 * space (FIRST_PAGE and NUMBER_OF_PAGES count pages). */
static bool range_last(const struct vtsm_tdisp_mmio_range *m, uint64_t *last)
{
    uint64_t pages_m1 = (uint64_t)m->number_of_pages - 1;
    if (m->first_page > VTSM_TDISP_MAX_PAGE || pages_m1 > VTSM_TDISP_MAX_PAGE - m->first_page)
        return false;
    *last = m->first_page + pages_m1;
    return true;
}

vtsm_status vtsm_tdisp_report_validate(const struct vtsm_tdisp_report *r)
{
    VTSM_ENSURE(r != NULL, VTSM_E_INVAL, "TDISP interface report: NULL");
    VTSM_ENSURE((r->interface_info & ~VTSM_TDISP_INFO_KNOWN) == 0, VTSM_E_PEER_MALFORMED,
                "interface report: INTERFACE_INFO 0x%04x has undefined bits 0x%04x",
                r->interface_info, r->interface_info & ~VTSM_TDISP_INFO_KNOWN);
    VTSM_ENSURE(r->mmio_range_count <= VTSM_TDISP_MAX_MMIO_RANGES, VTSM_E_PEER_OVERSIZED,
                "interface report: MMIO_RANGE_COUNT %u exceeds the limit of %u",
                r->mmio_range_count, VTSM_TDISP_MAX_MMIO_RANGES);

    for (uint32_t i = 0; i < r->mmio_range_count; i++) {
        const struct vtsm_tdisp_mmio_range *m = &r->mmio_range[i];
        uint64_t last;

        VTSM_ENSURE(m->number_of_pages != 0, VTSM_E_PEER_MALFORMED,
                    "interface report: MMIO range %u (page 0x%llx) has zero pages", i,
                    (unsigned long long)m->first_page);
        VTSM_ENSURE(range_last(m, &last), VTSM_E_PEER_MALFORMED,
                    "interface report: MMIO range %u (page 0x%llx + %u pages) runs past the top "
                    "of the 64-bit address space",
                    i, (unsigned long long)m->first_page, m->number_of_pages);
        VTSM_ENSURE((m->range_attributes & ~VTSM_TDISP_RANGE_KNOWN) == 0, VTSM_E_PEER_MALFORMED,
                    "interface report: MMIO range %u attributes 0x%04x have undefined bits "
                    "0x%04x",
                    i, m->range_attributes, m->range_attributes & ~VTSM_TDISP_RANGE_KNOWN);
        for (uint32_t j = 0; j < i; j++) {
            const struct vtsm_tdisp_mmio_range *o = &r->mmio_range[j];
            uint64_t olast = 0;
            (void)range_last(o, &olast); /* cannot wrap: checked when j was the current range */
            VTSM_ENSURE(m->first_page > olast || o->first_page > last, VTSM_E_PEER_MALFORMED,
                        "interface report: MMIO range %u [page 0x%llx, 0x%llx] overlaps range %u "
                        "[page 0x%llx, 0x%llx]",
                        i, (unsigned long long)m->first_page, (unsigned long long)last, j,
                        (unsigned long long)o->first_page, (unsigned long long)olast);
        }
    }
    return VTSM_OK;
}

vtsm_status vtsm_tdisp_report_parse(const uint8_t *buf, size_t len, struct vtsm_tdisp_report *out)
{
    struct vtsm_rd r = vtsm_rd_init(buf, len);
    uint16_t rsvd;

    VTSM_ENSURE(out != NULL && (buf != NULL || len == 0), VTSM_E_INVAL,
                "TDISP interface report: NULL argument");
    memset(out, 0, sizeof(*out));
    if (vtsm_rd_le16(&r, &out->interface_info) || vtsm_rd_le16(&r, &rsvd) ||
        vtsm_rd_le16(&r, &out->msi_x_message_control) || vtsm_rd_le16(&r, &out->lnr_control) ||
        vtsm_rd_le32(&r, &out->tph_control) || vtsm_rd_le32(&r, &out->mmio_range_count))
        return vtsm_fail(VTSM_E_PEER_TRUNCATED,
                         "interface report of %zu bytes is shorter than its %u-byte fixed part",
                         len, VTSM_TDISP_REPORT_FIXED);
    VTSM_ENSURE(rsvd == 0, VTSM_E_PEER_MALFORMED,
                "interface report: Reserved field after INTERFACE_INFO is 0x%04x", rsvd);
    VTSM_ENSURE((out->interface_info & ~VTSM_TDISP_INFO_KNOWN) == 0, VTSM_E_PEER_MALFORMED,
                "interface report: INTERFACE_INFO 0x%04x has undefined bits 0x%04x",
                out->interface_info, out->interface_info & ~VTSM_TDISP_INFO_KNOWN);

    /* Count against the data first, then against our limit. */
    uint32_t n = out->mmio_range_count;
    VTSM_ENSURE((uint64_t)n * VTSM_TDISP_MMIO_RANGE_SIZE + 4 <= vtsm_rd_left(&r),
                VTSM_E_PEER_TRUNCATED,
                "interface report: MMIO_RANGE_COUNT %u needs %llu bytes of ranges and info "
                "length, only %zu follow",
                n, (unsigned long long)n * VTSM_TDISP_MMIO_RANGE_SIZE + 4, vtsm_rd_left(&r));
    VTSM_ENSURE(n <= VTSM_TDISP_MAX_MMIO_RANGES, VTSM_E_PEER_OVERSIZED,
                "interface report: MMIO_RANGE_COUNT %u exceeds the limit of %u", n,
                VTSM_TDISP_MAX_MMIO_RANGES);
    for (uint32_t i = 0; i < n; i++) {
        struct vtsm_tdisp_mmio_range *m = &out->mmio_range[i];
        VTSM_GUARD(vtsm_rd_le64(&r, &m->first_page));
        VTSM_GUARD(vtsm_rd_le32(&r, &m->number_of_pages));
        VTSM_GUARD(vtsm_rd_le16(&r, &m->range_attributes));
        VTSM_GUARD(vtsm_rd_le16(&r, &m->range_id));
    }
    VTSM_GUARD(vtsm_rd_le32(&r, &out->device_specific_info_len));
    if (vtsm_rd_ref(&r, &out->device_specific_info, out->device_specific_info_len))
        return vtsm_fail(VTSM_E_PEER_TRUNCATED,
                         "interface report: DEVICE_SPECIFIC_INFO_LEN %u exceeds the %zu bytes "
                         "that follow",
                         out->device_specific_info_len, vtsm_rd_left(&r));
    VTSM_ENSURE(vtsm_rd_left(&r) == 0, VTSM_E_PEER_MALFORMED,
                "interface report carries %zu bytes after DEVICE_SPECIFIC_INFO", vtsm_rd_left(&r));
    return vtsm_tdisp_report_validate(out);
}

vtsm_status vtsm_tdisp_report_hash(enum vtsm_hash_alg alg, const uint8_t *buf, size_t len,
                                   uint8_t *digest)
{
    struct vtsm_tdisp_report *rep;
    vtsm_status st;

    VTSM_ENSURE(digest != NULL, VTSM_E_INVAL, "TDISP interface report hash: NULL digest");
    VTSM_ENSURE(vtsm_hash_size(alg) != 0, VTSM_E_UNSUPPORTED,
                "TDISP interface report hash: unsupported hash %d", (int)alg);
    /* The parsed form is ~1 KiB; keep it off small stacks. */
    rep = OPENSSL_malloc(sizeof(*rep));
    VTSM_ENSURE(rep != NULL, VTSM_E_NOMEM, "TDISP interface report hash: out of memory");
    st = vtsm_tdisp_report_parse(buf, len, rep);
    if (st == VTSM_OK)
        st = vtsm_hash(alg, buf, len, digest);
    OPENSSL_free(rep);
    return st;
}
