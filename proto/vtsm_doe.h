/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * PCIe Data Object Exchange (PCIe Base r6.x, 6.30): data object header, discovery,
 * CMA/SPDM and secured CMA/SPDM object types.
 *
 * A data object is: DW0 = vendor ID [15:0], type [23:16], reserved [31:24];
 * DW1 = length in DW including the 2-DW header [17:0] (0 encodes 2^18), reserved
 * [31:18]; then the payload, padded to a DW multiple.
 */
#ifndef VTSM_DOE_H
#define VTSM_DOE_H

#include <stddef.h>
#include <stdint.h>

#include "vtsm_buf.h"
#include "vtsm_err.h"

#define VTSM_DOE_VENDOR_PCISIG     0x0001
#define VTSM_DOE_TYPE_DISCOVERY    0x00
#define VTSM_DOE_TYPE_SPDM         0x01 /* CMA/SPDM */
#define VTSM_DOE_TYPE_SECURED_SPDM 0x02 /* secured CMA/SPDM (DSP0277) */
#define VTSM_DOE_HEADER_SIZE       8
#define VTSM_DOE_MAX_DW            (1u << 18)
#define VTSM_DOE_MAX_BYTES         (VTSM_DOE_MAX_DW * 4u)

struct vtsm_doe_obj {
    uint16_t vendor_id;
    uint8_t type;
    const uint8_t *payload; /* points into the parsed buffer */
    size_t payload_len;     /* whole DWs after the header (may include padding) */
};

/*
 * Parse one whole data object. The buffer must be exactly one object: a length that
 * is not a DW multiple gives E_DOE_MISALIGNED, fewer bytes than the header claims
 * E_DOE_TRUNCATED, more bytes than it claims (or more than 2^18 DW) E_DOE_OVERSIZED,
 * a reserved bit set or length < 2 DW E_DOE_HEADER.
 */
vtsm_status vtsm_doe_parse(const uint8_t *buf, size_t len, struct vtsm_doe_obj *obj);

/* Size of a data object carrying payload_len bytes (header + payload padded to DW). */
size_t vtsm_doe_object_size(size_t payload_len);

/* Build a data object into out (capacity *out_len; on return the object size). */
vtsm_status vtsm_doe_build(uint16_t vendor_id, uint8_t type, const uint8_t *payload,
                           size_t payload_len, uint8_t *out, size_t *out_len);
/* Same, appending to a growable buffer. */
vtsm_status vtsm_doe_build_buf(uint16_t vendor_id, uint8_t type, const uint8_t *payload,
                               size_t payload_len, struct vtsm_buf *out);

/* DOE discovery (PCIe 6.30.1.1): request carries an index; the response names the
 * protocol at that index and the next index (0 after the last). */
struct vtsm_doe_disc_rsp {
    uint16_t vendor_id;
    uint8_t type;
    uint8_t next_index;
};
vtsm_status vtsm_doe_disc_req_parse(const struct vtsm_doe_obj *obj, uint8_t *index);
vtsm_status vtsm_doe_disc_rsp_parse(const struct vtsm_doe_obj *obj, struct vtsm_doe_disc_rsp *rsp);
/* Payload (1 DW) of a discovery request / response. */
void vtsm_doe_disc_req_payload(uint8_t index, uint8_t out[4]);
void vtsm_doe_disc_rsp_payload(const struct vtsm_doe_disc_rsp *rsp, uint8_t out[4]);

#endif
