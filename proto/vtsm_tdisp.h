/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TDISP: TEE Device Interface Security Protocol (PCIe 6.x ch. 11), carried in SPDM
 * VENDOR_DEFINED_REQUEST/RESPONSE with the PCI-SIG registry inside a secure session.
 *
 * Every buffer built or parsed here is the vendor-defined payload *from the protocol ID
 * byte on* (PCI_PROTOCOL_ID_TDISP = 0x01), as vtsm_spdm_req_vendor() takes and returns it:
 *
 *   01 | TDISPVersion (0x10) | MessageType | Reserved (2) | INTERFACE_ID (12) | body
 *   INTERFACE_ID = FUNCTION_ID (4: RID 15:0, segment 23:16, segment valid 24, rsvd 31:25)
 *                  | Reserved (8)
 *
 * Builders append one whole message to a struct vtsm_wr (nothing is left behind on
 * failure). Parsers go header -> fixed part -> counts -> variable part and fail with:
 *   VTSM_E_PEER_TRUNCATED   a field is cut short, or a count/length exceeds the data
 *   VTSM_E_PEER_MALFORMED   wrong protocol ID, reserved field non-zero, bad value,
 *                           trailing bytes
 *   VTSM_E_PEER_VERSION     TDISPVersion is not 0x10
 *   VTSM_E_PEER_UNEXPECTED  a message type other than the one expected, or not a request
 *                           (responder side), or an answer for another interface
 *   VTSM_E_PEER_ERROR       the response is a well-formed TDISP_ERROR (rsp->error is set)
 *   VTSM_E_PEER_OVERSIZED   interface report with more MMIO ranges than we accept
 * Reserved *fields* must be zero. Capability words (tsm_caps, dsm_caps,
 * req_msg_supported) are passed through as received; flags the receiver must act on
 * (LOCK_INTERFACE flags, interface report bits) must be known.
 */
#ifndef VTSM_TDISP_H
#define VTSM_TDISP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vtsm_buf.h"
#include "vtsm_crypto.h"
#include "vtsm_err.h"

#define VTSM_PCI_PROTOCOL_ID_TDISP 0x01
#define VTSM_TDISP_VERSION_10      0x10
#define VTSM_TDISP_HEADER_SIZE     17 /* protocol ID + 16-byte TDISP header */
#define VTSM_TDISP_NONCE_SIZE      32

/* Request codes */
#define VTSM_TDISP_GET_VERSION                 0x81
#define VTSM_TDISP_GET_CAPABILITIES            0x82
#define VTSM_TDISP_LOCK_INTERFACE_REQ          0x83
#define VTSM_TDISP_GET_DEVICE_INTERFACE_REPORT 0x84
#define VTSM_TDISP_GET_DEVICE_INTERFACE_STATE  0x85
#define VTSM_TDISP_START_INTERFACE_REQ         0x86
#define VTSM_TDISP_STOP_INTERFACE_REQ          0x87
#define VTSM_TDISP_BIND_P2P_STREAM_REQ         0x88
#define VTSM_TDISP_UNBIND_P2P_STREAM_REQ       0x89
#define VTSM_TDISP_SET_MMIO_ATTRIBUTE_REQ      0x8A
#define VTSM_TDISP_VDM_REQ                     0x8B
#define VTSM_TDISP_SET_TDISP_CONFIG_REQ        0x8C
/* Response codes */
#define VTSM_TDISP_VERSION                 0x01
#define VTSM_TDISP_CAPABILITIES            0x02
#define VTSM_TDISP_LOCK_INTERFACE_RSP      0x03
#define VTSM_TDISP_DEVICE_INTERFACE_REPORT 0x04
#define VTSM_TDISP_DEVICE_INTERFACE_STATE  0x05
#define VTSM_TDISP_START_INTERFACE_RSP     0x06
#define VTSM_TDISP_STOP_INTERFACE_RSP      0x07
#define VTSM_TDISP_BIND_P2P_STREAM_RSP     0x08
#define VTSM_TDISP_UNBIND_P2P_STREAM_RSP   0x09
#define VTSM_TDISP_SET_MMIO_ATTRIBUTE_RSP  0x0A
#define VTSM_TDISP_VDM_RSP                 0x0B
#define VTSM_TDISP_SET_TDISP_CONFIG_RSP    0x0C
#define VTSM_TDISP_ERROR                   0x7F

/* TDISP_ERROR ErrorCode */
#define VTSM_TDISP_ERR_INVALID_REQUEST              0x0001
#define VTSM_TDISP_ERR_BUSY                         0x0003
#define VTSM_TDISP_ERR_INVALID_INTERFACE_STATE      0x0004
#define VTSM_TDISP_ERR_UNSPECIFIED                  0x0005
#define VTSM_TDISP_ERR_UNSUPPORTED_REQUEST          0x0007
#define VTSM_TDISP_ERR_VERSION_MISMATCH             0x0041
#define VTSM_TDISP_ERR_VENDOR_SPECIFIC_ERROR        0x00FF
#define VTSM_TDISP_ERR_INVALID_INTERFACE            0x0101
#define VTSM_TDISP_ERR_INVALID_NONCE                0x0102
#define VTSM_TDISP_ERR_INSUFFICIENT_ENTROPY         0x0103
#define VTSM_TDISP_ERR_INVALID_DEVICE_CONFIGURATION 0x0104

/* TDI states (DEVICE_INTERFACE_STATE) */
#define VTSM_TDI_CONFIG_UNLOCKED 0
#define VTSM_TDI_CONFIG_LOCKED   1
#define VTSM_TDI_RUN             2
#define VTSM_TDI_ERROR           3

/* FUNCTION_ID */
#define VTSM_TDISP_FID_RID(f)        ((uint16_t)((f)&0xFFFFu))
#define VTSM_TDISP_FID_SEGMENT(f)    ((uint8_t)(((f) >> 16) & 0xFFu))
#define VTSM_TDISP_FID_SEG_VALID     (1u << 24)
#define VTSM_TDISP_FID_RESERVED_MASK 0xFE000000u
/* LOCK_INTERFACE_REQ FLAGS */
#define VTSM_TDISP_LOCK_NO_FW_UPDATE           0x0001
#define VTSM_TDISP_LOCK_SYSTEM_CACHE_LINE_SIZE 0x0002
#define VTSM_TDISP_LOCK_LOCK_MSIX              0x0004
#define VTSM_TDISP_LOCK_BIND_P2P               0x0008
#define VTSM_TDISP_LOCK_ALL_REQUEST_REDIRECT   0x0010
#define VTSM_TDISP_LOCK_FLAGS_KNOWN            0x001F

struct vtsm_tdisp_hdr {
    uint8_t version;
    uint8_t type;
    uint32_t function_id;
};

struct vtsm_tdisp_caps {
    uint32_t dsm_caps;
    uint8_t req_msg_supported[16];
    uint16_t lock_interface_flags_supported;
    uint8_t dev_addr_width;
    uint8_t num_req_this;
    uint8_t num_req_all;
};

struct vtsm_tdisp_lock_params {
    uint16_t flags;
    uint8_t default_stream_id;
    uint64_t mmio_reporting_offset;
    uint64_t bind_p2p_address_mask;
};

struct vtsm_tdisp_error {
    uint32_t code;
    uint32_t data;
    const uint8_t *ext; /* ExtendedErrorData, borrowed from the message */
    size_t ext_len;
    /* For VENDOR_SPECIFIC_ERROR: the ExtendedErrorData fields. */
    uint8_t registry_id;
    const uint8_t *vendor_id;
    uint8_t vendor_id_len;
};

/*
 * VDM_REQ / VDM_RSP body (TDISP "VDM_REQ"): REGISTRY_ID (00h PCI-SIG, 01h CXL), VENDOR_ID_LEN,
 * VENDOR_ID, then the vendor-defined message. Pointers borrow from the message.
 */
struct vtsm_tdisp_vdm {
    uint8_t registry_id;
    uint8_t vendor_id_len;
    const uint8_t *vendor_id;
    const uint8_t *body;
    size_t body_len;
};

/*
 * The vtsm vendor-defined TDISP messages (VDM_REQ with REGISTRY_ID 00h and the 2-byte
 * VENDOR_ID FFFFh, which names no PCI-SIG member: the emulator's own commands). Body:
 *   request   COMMAND (1) | Reserved (3)
 *   response  COMMAND (1) | TDI_STATE after the command (1) | Reserved (2)
 * COMMAND 01h FUNCTION_LEVEL_RESET: the device resets the TDI's function as an FLR
 * would (the TDI returns to CONFIG_UNLOCKED from any state, its lock nonce and report
 * dropped). The TSM's recovery (tdi_reset) sends it.
 */
#define VTSM_TDISP_VDM_REGISTRY_PCISIG 0x00
#define VTSM_TDISP_VDM_VTSM_VENDOR_ID  0xFFFFu
#define VTSM_TDISP_VDM_VTSM_FLR        0x01
#define VTSM_TDISP_VDM_VTSM_BODY       4

/* A request as the responder (device) sees it. Pointers borrow from the message. */
struct vtsm_tdisp_req {
    struct vtsm_tdisp_hdr hdr;
    union {
        uint32_t tsm_caps;                  /* GET_CAPABILITIES */
        struct vtsm_tdisp_lock_params lock; /* LOCK_INTERFACE_REQ */
        struct {
            uint16_t offset;
            uint16_t length;
        } report;                                   /* GET_DEVICE_INTERFACE_REPORT */
        uint8_t start_nonce[VTSM_TDISP_NONCE_SIZE]; /* START_INTERFACE_REQ */
        struct vtsm_tdisp_vdm vdm;                  /* VDM_REQ */
    } u;
};

/* A response as the requester (TSM) sees it. Pointers borrow from the message. */
struct vtsm_tdisp_rsp {
    struct vtsm_tdisp_hdr hdr;
    union {
        struct {
            const uint8_t *versions;
            uint8_t count;
        } version;                                 /* VERSION */
        struct vtsm_tdisp_caps caps;               /* CAPABILITIES */
        uint8_t lock_nonce[VTSM_TDISP_NONCE_SIZE]; /* LOCK_INTERFACE_RSP */
        struct {
            const uint8_t *portion;
            uint16_t portion_length;
            uint16_t remainder_length;
        } report;                      /* DEVICE_INTERFACE_REPORT */
        uint8_t tdi_state;             /* DEVICE_INTERFACE_STATE */
        struct vtsm_tdisp_error error; /* TDISP_ERROR */
        struct vtsm_tdisp_vdm vdm;     /* VDM_RSP */
    } u;
};

/* ---- requester (TSM) side ---- */
vtsm_status vtsm_tdisp_build_get_version(struct vtsm_wr *w, uint32_t function_id);
vtsm_status vtsm_tdisp_build_get_capabilities(struct vtsm_wr *w, uint32_t function_id,
                                              uint32_t tsm_caps);
vtsm_status vtsm_tdisp_build_lock_interface(struct vtsm_wr *w, uint32_t function_id,
                                            const struct vtsm_tdisp_lock_params *p);
vtsm_status vtsm_tdisp_build_get_report(struct vtsm_wr *w, uint32_t function_id, uint16_t offset,
                                        uint16_t length);
vtsm_status vtsm_tdisp_build_get_state(struct vtsm_wr *w, uint32_t function_id);
vtsm_status vtsm_tdisp_build_start_interface(struct vtsm_wr *w, uint32_t function_id,
                                             const uint8_t nonce[VTSM_TDISP_NONCE_SIZE]);
vtsm_status vtsm_tdisp_build_stop_interface(struct vtsm_wr *w, uint32_t function_id);
/* VDM_REQ (type VTSM_TDISP_VDM_REQ) or VDM_RSP (VTSM_TDISP_VDM_RSP) with v's fields. */
vtsm_status vtsm_tdisp_build_vdm(struct vtsm_wr *w, uint8_t type, uint32_t function_id,
                                 const struct vtsm_tdisp_vdm *v);

/*
 * Parse the response to a request of type `request` sent for `function_id`. A
 * TDISP_ERROR is parsed into rsp->u.error and returns VTSM_E_PEER_ERROR.
 */
vtsm_status vtsm_tdisp_parse_response(const uint8_t *msg, size_t len, uint8_t request,
                                      uint32_t function_id, struct vtsm_tdisp_rsp *rsp);

/* ---- responder (device) side ---- */
/*
 * Header only: protocol ID, version, message type, reserved fields, FUNCTION_ID. A
 * responder calls it first so it can answer even a bad request with the right
 * INTERFACE_ID; on VTSM_E_PEER_VERSION hdr is filled.
 */
vtsm_status vtsm_tdisp_parse_header(const uint8_t *msg, size_t len, struct vtsm_tdisp_hdr *hdr);
/* Whole request. VTSM_E_PEER_UNEXPECTED for a response code or a request we do not
 * implement (BIND_P2P_STREAM and later: answer UNSUPPORTED_REQUEST); req->hdr is valid
 * whenever vtsm_tdisp_parse_header() would have succeeded. */
vtsm_status vtsm_tdisp_parse_request(const uint8_t *msg, size_t len, struct vtsm_tdisp_req *req);

vtsm_status vtsm_tdisp_build_version(struct vtsm_wr *w, uint32_t function_id,
                                     const uint8_t *versions, uint8_t count);
vtsm_status vtsm_tdisp_build_capabilities(struct vtsm_wr *w, uint32_t function_id,
                                          const struct vtsm_tdisp_caps *caps);
vtsm_status vtsm_tdisp_build_lock_rsp(struct vtsm_wr *w, uint32_t function_id,
                                      const uint8_t nonce[VTSM_TDISP_NONCE_SIZE]);
/* One portion of the interface report: report[offset .. offset + portion_len) and how
 * much of the report remains after it. */
vtsm_status vtsm_tdisp_build_report_rsp(struct vtsm_wr *w, uint32_t function_id,
                                        const uint8_t *portion, uint16_t portion_len,
                                        uint16_t remainder_len);
vtsm_status vtsm_tdisp_build_state_rsp(struct vtsm_wr *w, uint32_t function_id, uint8_t tdi_state);
vtsm_status vtsm_tdisp_build_start_rsp(struct vtsm_wr *w, uint32_t function_id);
vtsm_status vtsm_tdisp_build_stop_rsp(struct vtsm_wr *w, uint32_t function_id);
/* ext/ext_len: ExtendedErrorData, only for VENDOR_SPECIFIC_ERROR (registry ID, vendor ID
 * length, vendor ID, vendor data), NULL/0 otherwise. */
vtsm_status vtsm_tdisp_build_error(struct vtsm_wr *w, uint32_t function_id, uint32_t code,
                                   uint32_t data, const uint8_t *ext, size_t ext_len);

/* ---- the device interface report (DEVICE_INTERFACE_REPORT payload, reassembled) ---- */
#define VTSM_TDISP_MAX_MMIO_RANGES 64
#define VTSM_TDISP_PAGE_SIZE       4096u
#define VTSM_TDISP_PAGE_SHIFT      12u
#define VTSM_TDISP_MAX_PAGE        ((UINT64_MAX >> VTSM_TDISP_PAGE_SHIFT)) /* last 4 KiB page */
#define VTSM_TDISP_REPORT_FIXED    16 /* up to and including MMIO_RANGE_COUNT */
#define VTSM_TDISP_MMIO_RANGE_SIZE 16
#define VTSM_TDISP_REPORT_MAX      0xFFFFu /* GET_DEVICE_INTERFACE_REPORT offsets are u16 */

/* INTERFACE_INFO bits (0x20 XT_MODE from PCIe r7.0 as recorded in vendor-abis.md d.5) */
#define VTSM_TDISP_INFO_NO_UPDATE_AFTER_LOCK 0x0001
#define VTSM_TDISP_INFO_DMA_WITHOUT_PASID    0x0002
#define VTSM_TDISP_INFO_DMA_WITH_PASID       0x0004
#define VTSM_TDISP_INFO_ATS_SUPPORTED        0x0008
#define VTSM_TDISP_INFO_PRS_SUPPORTED        0x0010
#define VTSM_TDISP_INFO_XT_MODE              0x0020
#define VTSM_TDISP_INFO_KNOWN                0x003F
/* MMIO_RANGE range attributes */
#define VTSM_TDISP_RANGE_MSIX_TABLE            0x0001
#define VTSM_TDISP_RANGE_MSIX_PBA              0x0002
#define VTSM_TDISP_RANGE_IS_NON_TEE_MEM        0x0004
#define VTSM_TDISP_RANGE_IS_MEM_ATTR_UPDATABLE 0x0008
#define VTSM_TDISP_RANGE_KNOWN                 0x000F

struct vtsm_tdisp_mmio_range {
    uint64_t first_page; /* FIRST_PAGE: number of the first 4 KiB page (address >> 12), with
                          * the MMIO reporting offset added; ranges are counted in 4 KiB pages */
    uint32_t number_of_pages;
    uint16_t range_attributes;
    uint16_t range_id;
};

struct vtsm_tdisp_report {
    uint16_t interface_info;
    uint16_t msi_x_message_control;
    uint16_t lnr_control;
    uint32_t tph_control;
    uint32_t mmio_range_count;
    struct vtsm_tdisp_mmio_range mmio_range[VTSM_TDISP_MAX_MMIO_RANGES];
    uint32_t device_specific_info_len;
    const uint8_t *device_specific_info; /* parse: borrowed from the buffer */
};

/* Encoded size, 0 if the counts are out of bounds. */
size_t vtsm_tdisp_report_size(const struct vtsm_tdisp_report *r);
/*
 * Device side. Checks only what the encoding needs (range count <= 64, total size fits
 * the u16 report offsets); the semantic rules are left to vtsm_tdisp_report_validate()
 * so that fault injection can build a deliberately bad report.
 */
vtsm_status vtsm_tdisp_report_build(struct vtsm_wr *w, const struct vtsm_tdisp_report *r);
/* The semantic rules: known bits only, ranges non-empty and inside the 64-bit address space
 * (FIRST_PAGE and NUMBER_OF_PAGES count 4 KiB pages, so the last page must be below 2^52),
 * no two overlapping. VTSM_E_PEER_MALFORMED naming the range and rule. */
vtsm_status vtsm_tdisp_report_validate(const struct vtsm_tdisp_report *r);
/* TSM side: decode and validate; out->device_specific_info borrows from buf. */
vtsm_status vtsm_tdisp_report_parse(const uint8_t *buf, size_t len, struct vtsm_tdisp_report *out);
/* Digest of a report's bytes (for caching and evidence); refuses a report that does not
 * parse. Since parsing admits exactly one encoding per report, the digest identifies the
 * report's contents. digest holds vtsm_hash_size(alg) bytes. */
vtsm_status vtsm_tdisp_report_hash(enum vtsm_hash_alg alg, const uint8_t *buf, size_t len,
                                   uint8_t *digest);

/* "GET_VERSION", "TDISP_ERROR", ... or "unknown". */
const char *vtsm_tdisp_type_name(uint8_t type);
/* "INVALID_NONCE", ... or "unknown". */
const char *vtsm_tdisp_error_name(uint32_t code);

#endif
