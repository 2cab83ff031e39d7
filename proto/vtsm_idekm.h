/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * IDE_KM: PCIe Integrity and Data Encryption key management (PCIe 6.x sec. 6.33.3),
 * carried in SPDM VENDOR_DEFINED_REQUEST/RESPONSE with the PCI-SIG registry.
 *
 * Every buffer built or parsed here is the vendor-defined payload *from the protocol ID
 * byte on* (PCI_PROTOCOL_ID_IDE_KM = 0x00), exactly what vtsm_spdm_req_vendor() takes
 * and returns:
 *
 *   QUERY          00 | 00 | rsvd | PortIndex
 *   QUERY_RESP     00 | 01 | rsvd | PortIndex | DevFuncNum | BusNum | Segment | MaxPortIndex |
 *                  IDE Capability reg | IDE Control reg | Link IDE blocks | Selective blocks
 *   KEY_PROG       00 | 02 | rsvd rsvd | StreamID | rsvd | KeySubStream | PortIndex |
 *                  Key (8 DW) | IFV (2 DW)
 *   KP_ACK         00 | 03 | rsvd rsvd | StreamID | Status | KeySubStream | PortIndex
 *   K_SET_GO       00 | 04 | rsvd rsvd | StreamID | rsvd | KeySubStream | PortIndex
 *   K_SET_STOP     00 | 05 | (as K_SET_GO)
 *   K_GOSTOP_ACK   00 | 06 | (as K_SET_GO)
 *
 * Builders append one whole message to a struct vtsm_wr; on failure (VTSM_E_TOO_SMALL or
 * VTSM_E_INVAL) nothing is left behind (w->len is restored and any partial bytes wiped).
 * Parsers read through struct vtsm_rd, header -> fixed part -> counts -> variable part, and
 * fail with VTSM_E_PEER_TRUNCATED / VTSM_E_PEER_MALFORMED / VTSM_E_PEER_UNEXPECTED and a
 * vtsm_fail() detail naming the field and the rule.
 */
#ifndef VTSM_IDEKM_H
#define VTSM_IDEKM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vtsm_buf.h"
#include "vtsm_err.h"

#define VTSM_PCI_PROTOCOL_ID_IDE_KM 0x00

/* Object IDs (PCIe 6.x table "IDE_KM Object IDs"; libspdm PCI_IDE_KM_OBJECT_ID_*) */
#define VTSM_IDEKM_QUERY        0x00
#define VTSM_IDEKM_QUERY_RESP   0x01
#define VTSM_IDEKM_KEY_PROG     0x02
#define VTSM_IDEKM_KP_ACK       0x03
#define VTSM_IDEKM_K_SET_GO     0x04
#define VTSM_IDEKM_K_SET_STOP   0x05
#define VTSM_IDEKM_K_GOSTOP_ACK 0x06

/* KP_ACK Status */
#define VTSM_IDEKM_KP_SUCCESS                0x00
#define VTSM_IDEKM_KP_INCORRECT_LENGTH       0x01
#define VTSM_IDEKM_KP_UNSUPPORTED_PORT_INDEX 0x02
#define VTSM_IDEKM_KP_UNSUPPORTED_VALUE      0x03
#define VTSM_IDEKM_KP_UNSPECIFIED_FAILURE    0x04

/* KeySubStream byte: bit 0 key set, bit 1 direction, bits 3:2 reserved, bits 7:4 sub-stream */
#define VTSM_IDEKM_KEY_SET_MASK      0x01
#define VTSM_IDEKM_KEY_SET_K0        0x00
#define VTSM_IDEKM_KEY_SET_K1        0x01
#define VTSM_IDEKM_DIR_MASK          0x02
#define VTSM_IDEKM_DIR_RX            0x00
#define VTSM_IDEKM_DIR_TX            0x02
#define VTSM_IDEKM_KSS_RESERVED_MASK 0x0C
#define VTSM_IDEKM_SUBSTREAM_MASK    0xF0
#define VTSM_IDEKM_SUBSTREAM_PR      0x00
#define VTSM_IDEKM_SUBSTREAM_NPR     0x10
#define VTSM_IDEKM_SUBSTREAM_CPL     0x20

/* Compose a KeySubStream byte: key_set 0/1, tx false/true, substream 0 (PR) / 1 (NPR) / 2 (CPL). */
static inline uint8_t vtsm_idekm_kss(unsigned key_set, bool tx, unsigned substream)
{
    return (uint8_t)((key_set & 1u) | (tx ? VTSM_IDEKM_DIR_TX : 0u) | ((substream & 0xFu) << 4));
}

/* IDE Extended Capability: IDE Capability Register fields used for the QUERY_RESP layout
 * (PCIe 6.x sec. 7.9.26.2; Linux include/uapi/linux/pci_regs.h PCI_IDE_CAP_*). */
#define VTSM_IDE_CAP_LINK             (1u << 0)
#define VTSM_IDE_CAP_SELECTIVE        (1u << 1)
#define VTSM_IDE_CAP_IDE_KM           (1u << 6)
#define VTSM_IDE_CAP_LINK_TC_NUM(cap) (((cap) >> 13) & 0x7u)  /* 0 = 1 TC */
#define VTSM_IDE_CAP_SEL_NUM(cap)     (((cap) >> 16) & 0xFFu) /* 0 = 1 stream */
#define VTSM_IDE_SEL_CAP_ASSOC_NUM(c) ((c)&0xFu)              /* address association blocks */
#define VTSM_IDE_CAP_TEE_LIMITED      (1u << 24)              /* TEE-Limited Stream Supported */

#define VTSM_IDEKM_MAX_LINK 8   /* Link IDE register blocks (3-bit TC count + 1) */
#define VTSM_IDEKM_MAX_SEL  256 /* Selective IDE register blocks (8-bit count + 1) */
#define VTSM_IDEKM_MAX_ADDR 15  /* address association blocks per selective stream */

#define VTSM_IDEKM_KEY_SIZE 32 /* AES-256-GCM key: 8 DW */
#define VTSM_IDEKM_IFV_SIZE 8  /* invocation field initial value: 2 DW */

/* Message sizes including the protocol ID byte. */
#define VTSM_IDEKM_QUERY_SIZE     4
#define VTSM_IDEKM_QUERY_RESP_MIN 16 /* fixed part + capability and control registers */
#define VTSM_IDEKM_SHORT_MSG_SIZE 8  /* KP_ACK, K_SET_GO, K_SET_STOP, K_GOSTOP_ACK */
#define VTSM_IDEKM_KEY_PROG_SIZE  (8 + VTSM_IDEKM_KEY_SIZE + VTSM_IDEKM_IFV_SIZE)

/*
 * Key material of one sub-stream, in the byte order AES-GCM uses (key[0] is the most
 * significant byte, as in PCIe Appendix "IDE Test Vectors"). On the wire KEY_PROG carries
 * it as DWs, Key DW7 first down to DW0 then IFV DW1, DW0, each DW little-endian - so each
 * 4-byte group of key[] appears byte-reversed. The codec converts both ways.
 * ifv is the initial value of the 64-bit invocation field (IV bits 63:0).
 * Wipe with vtsm_idekm_key_wipe() when done.
 */
struct vtsm_idekm_key {
    uint8_t key[VTSM_IDEKM_KEY_SIZE];
    uint64_t ifv;
};

void vtsm_idekm_key_wipe(struct vtsm_idekm_key *k);

struct vtsm_idekm_link_block {
    uint32_t ctrl;
    uint32_t status;
};

struct vtsm_idekm_addr_block {
    uint32_t reg1; /* valid, memory base/limit lower */
    uint32_t reg2; /* memory limit upper */
    uint32_t reg3; /* memory base upper */
};

struct vtsm_idekm_sel_block {
    uint32_t cap; /* bits 3:0 = number of address association blocks */
    uint32_t ctrl;
    uint32_t status;
    uint32_t rid1;
    uint32_t rid2;
    struct vtsm_idekm_addr_block addr[VTSM_IDEKM_MAX_ADDR];
};

/*
 * QUERY_RESP contents. The number of Link IDE blocks and Selective IDE blocks is not sent
 * separately: it follows from ide_cap (and each selective block's own cap for its address
 * association blocks), so link_count and sel_count are derived, not free.
 *
 * Build: link[] holds link_count blocks; sel points at sel_count blocks (sel_cap ignored).
 * Parse: the caller sets sel/sel_cap; every block is validated, the first
 * min(sel_count, sel_cap) are copied; sel may be NULL with sel_cap 0. Bytes after the
 * blocks the capability declares are refused (VTSM_E_PEER_MALFORMED) unless the caller
 * sets allow_trailing: then they are counted in trailing and left unread (a responder
 * whose blocks contradict its capability; the caller decides what to make of it).
 */
struct vtsm_idekm_query_resp {
    uint8_t port_index;
    uint8_t dev_func_num;
    uint8_t bus_num;
    uint8_t segment;
    uint8_t max_port_index;
    uint32_t ide_cap;
    uint32_t ide_ctrl;
    unsigned link_count;
    struct vtsm_idekm_link_block link[VTSM_IDEKM_MAX_LINK];
    unsigned sel_count;
    struct vtsm_idekm_sel_block *sel;
    unsigned sel_cap;
    bool allow_trailing; /* parse input */
    size_t trailing;     /* parse output: bytes beyond the declared blocks */
};

/* KP_ACK and K_GOSTOP_ACK (status is 0 for K_GOSTOP_ACK). */
struct vtsm_idekm_ack {
    uint8_t object_id;
    uint8_t stream_id;
    uint8_t status;
    uint8_t key_sub_stream;
    uint8_t port_index;
};

/*
 * A request as the responder (device) sees it: QUERY, KEY_PROG, K_SET_GO or K_SET_STOP.
 * key is filled for KEY_PROG only; the caller wipes it (vtsm_idekm_key_wipe).
 */
struct vtsm_idekm_req {
    uint8_t object_id;
    uint8_t port_index;
    uint8_t stream_id;      /* not QUERY */
    uint8_t key_sub_stream; /* not QUERY */
    struct vtsm_idekm_key key;
    /*
     * When parsing fails after the object ID and the fixed fields of a KEY_PROG /
     * K_SET_* were read, fixed_valid is true and kp_status suggests the KP_ACK status a
     * responder should answer with (INCORRECT_LENGTH or UNSUPPORTED_VALUE).
     */
    bool fixed_valid;
    uint8_t kp_status;
};

/* ---- requester (TSM) side ---- */
vtsm_status vtsm_idekm_build_query(struct vtsm_wr *w, uint8_t port_index);
/* The key bytes land in w's buffer: the caller wipes that buffer after sending. */
vtsm_status vtsm_idekm_build_key_prog(struct vtsm_wr *w, uint8_t stream_id, uint8_t key_sub_stream,
                                      uint8_t port_index, const struct vtsm_idekm_key *key);
vtsm_status vtsm_idekm_build_k_set_go(struct vtsm_wr *w, uint8_t stream_id, uint8_t key_sub_stream,
                                      uint8_t port_index);
vtsm_status vtsm_idekm_build_k_set_stop(struct vtsm_wr *w, uint8_t stream_id,
                                        uint8_t key_sub_stream, uint8_t port_index);
/* out->sel / out->sel_cap are inputs (see struct vtsm_idekm_query_resp). */
vtsm_status vtsm_idekm_parse_query_resp(const uint8_t *msg, size_t len,
                                        struct vtsm_idekm_query_resp *out);
vtsm_status vtsm_idekm_parse_kp_ack(const uint8_t *msg, size_t len, struct vtsm_idekm_ack *out);
vtsm_status vtsm_idekm_parse_gostop_ack(const uint8_t *msg, size_t len, struct vtsm_idekm_ack *out);

/* ---- responder (device) side ---- */
vtsm_status vtsm_idekm_parse_request(const uint8_t *msg, size_t len, struct vtsm_idekm_req *req);
/* Size of the QUERY_RESP that vtsm_idekm_build_query_resp() would write, 0 if r is invalid. */
size_t vtsm_idekm_query_resp_size(const struct vtsm_idekm_query_resp *r);
vtsm_status vtsm_idekm_build_query_resp(struct vtsm_wr *w, const struct vtsm_idekm_query_resp *r);
vtsm_status vtsm_idekm_build_kp_ack(struct vtsm_wr *w, uint8_t stream_id, uint8_t status,
                                    uint8_t key_sub_stream, uint8_t port_index);
vtsm_status vtsm_idekm_build_gostop_ack(struct vtsm_wr *w, uint8_t stream_id,
                                        uint8_t key_sub_stream, uint8_t port_index);

/* "QUERY", "KEY_PROG", ... or "unknown". */
const char *vtsm_idekm_object_name(uint8_t object_id);

#endif
