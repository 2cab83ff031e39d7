/* SPDX-License-Identifier: BSD-3-Clause */
#include "vtsm_doe.h"

#include <string.h>

#include "vtsm_guard.h"

vtsm_status vtsm_doe_parse(const uint8_t *buf, size_t len, struct vtsm_doe_obj *obj)
{
    struct vtsm_rd r = vtsm_rd_init(buf, len);
    uint32_t dw0, dw1;

    VTSM_ENSURE(len >= VTSM_DOE_HEADER_SIZE, VTSM_E_DOE_TRUNCATED,
                "DOE object of %zu bytes is shorter than the 2-DW header", len);
    VTSM_ENSURE(len % 4 == 0, VTSM_E_DOE_MISALIGNED,
                "DOE object of %zu bytes is not a whole number of DW (PCIe 6.30.1)", len);
    VTSM_ENSURE(len <= VTSM_DOE_MAX_BYTES, VTSM_E_DOE_OVERSIZED,
                "DOE object of %zu bytes exceeds the 2^18 DW limit", len);
    VTSM_GUARD(vtsm_rd_le32(&r, &dw0));
    VTSM_GUARD(vtsm_rd_le32(&r, &dw1));

    VTSM_ENSURE((dw0 >> 24) == 0, VTSM_E_DOE_HEADER, "DOE header DW0 reserved bits set");
    VTSM_ENSURE((dw1 >> 18) == 0, VTSM_E_DOE_HEADER, "DOE header DW1 reserved bits set");
    size_t dw = dw1 & 0x3FFFF;
    if (dw == 0)
        dw = VTSM_DOE_MAX_DW;
    VTSM_ENSURE(dw >= 2, VTSM_E_DOE_HEADER, "DOE length %zu DW is shorter than the header", dw);
    VTSM_ENSURE(len >= dw * 4, VTSM_E_DOE_TRUNCATED,
                "DOE header claims %zu DW but only %zu bytes arrived", dw, len);
    VTSM_ENSURE(len == dw * 4, VTSM_E_DOE_OVERSIZED,
                "DOE object carries %zu bytes beyond its %zu-DW length", len - dw * 4, dw);

    obj->vendor_id = (uint16_t)(dw0 & 0xFFFF);
    obj->type = (uint8_t)((dw0 >> 16) & 0xFF);
    obj->payload = buf + VTSM_DOE_HEADER_SIZE;
    obj->payload_len = dw * 4 - VTSM_DOE_HEADER_SIZE;
    return VTSM_OK;
}

size_t vtsm_doe_object_size(size_t payload_len)
{
    return VTSM_DOE_HEADER_SIZE + ((payload_len + 3) & ~(size_t)3);
}

vtsm_status vtsm_doe_build(uint16_t vendor_id, uint8_t type, const uint8_t *payload,
                           size_t payload_len, uint8_t *out, size_t *out_len)
{
    size_t total = vtsm_doe_object_size(payload_len);
    VTSM_ENSURE(total <= VTSM_DOE_MAX_BYTES, VTSM_E_INVAL,
                "payload of %zu bytes does not fit one DOE object", payload_len);
    if (*out_len < total) {
        *out_len = total;
        return VTSM_E_TOO_SMALL;
    }
    struct vtsm_wr w = vtsm_wr_init(out, *out_len);
    size_t dw = total / 4;
    VTSM_GUARD(vtsm_wr_le32(&w, (uint32_t)vendor_id | ((uint32_t)type << 16)));
    VTSM_GUARD(vtsm_wr_le32(&w, dw == VTSM_DOE_MAX_DW ? 0 : (uint32_t)dw));
    VTSM_GUARD(vtsm_wr_bytes(&w, payload, payload_len));
    VTSM_GUARD(vtsm_wr_zeros(&w, total - w.len));
    *out_len = total;
    return VTSM_OK;
}

vtsm_status vtsm_doe_build_buf(uint16_t vendor_id, uint8_t type, const uint8_t *payload,
                               size_t payload_len, struct vtsm_buf *out)
{
    size_t total = vtsm_doe_object_size(payload_len);
    vtsm_buf_reset(out);
    VTSM_GUARD(vtsm_buf_reserve(out, total));
    size_t n = out->cap;
    VTSM_GUARD(vtsm_doe_build(vendor_id, type, payload, payload_len, out->data, &n));
    out->len = n;
    return VTSM_OK;
}

vtsm_status vtsm_doe_disc_req_parse(const struct vtsm_doe_obj *obj, uint8_t *index)
{
    VTSM_ENSURE(obj->vendor_id == VTSM_DOE_VENDOR_PCISIG && obj->type == VTSM_DOE_TYPE_DISCOVERY,
                VTSM_E_DOE_HEADER, "not a DOE discovery object");
    VTSM_ENSURE(obj->payload_len == 4, VTSM_E_PEER_MALFORMED,
                "DOE discovery request must be 1 DW, got %zu bytes", obj->payload_len);
    *index = obj->payload[0];
    return VTSM_OK;
}

vtsm_status vtsm_doe_disc_rsp_parse(const struct vtsm_doe_obj *obj, struct vtsm_doe_disc_rsp *rsp)
{
    VTSM_ENSURE(obj->vendor_id == VTSM_DOE_VENDOR_PCISIG && obj->type == VTSM_DOE_TYPE_DISCOVERY,
                VTSM_E_DOE_HEADER, "not a DOE discovery object");
    VTSM_ENSURE(obj->payload_len == 4, VTSM_E_PEER_MALFORMED,
                "DOE discovery response must be 1 DW, got %zu bytes", obj->payload_len);
    uint32_t v = vtsm_get_le32(obj->payload);
    rsp->vendor_id = (uint16_t)(v & 0xFFFF);
    rsp->type = (uint8_t)(v >> 16);
    rsp->next_index = (uint8_t)(v >> 24);
    return VTSM_OK;
}

void vtsm_doe_disc_req_payload(uint8_t index, uint8_t out[4])
{
    vtsm_put_le32(out, index);
}

void vtsm_doe_disc_rsp_payload(const struct vtsm_doe_disc_rsp *rsp, uint8_t out[4])
{
    vtsm_put_le32(out, (uint32_t)rsp->vendor_id | ((uint32_t)rsp->type << 16) |
                           ((uint32_t)rsp->next_index << 24));
}
