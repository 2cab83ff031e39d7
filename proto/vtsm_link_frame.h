/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Simulated-link frames (docs/abi.md section 8.2): what the TSM's root-port
 * model and the emulated device exchange for an IDE link check. A frame is the payload of
 * a spdm-emu socket frame with command VTSM_SOCK_CMD_VTSM_LINK (abi/vtsm_abi.h) and
 * transport PCI_DOE; the device answers with the same command.
 *
 *   off  size  field
 *   0    4     magic "VLNK"
 *   4    1     kind: 1 = check request, 2 = check response, 3 = failure,
 *                     4 = configuration write, 5 = configuration write done,
 *                     6 = Link IDE configuration write
 *   5    1     stream_id
 *   6    1     key_set (0/1)
 *   7    1     substream (VTSM_IDE_SUBSTREAM_PR/NPR/CPL)
 *   8    8     counter, u64 LE (invocation count of that sub-stream, see vtsm_ide_link.h)
 *   16   2     len, u16 LE (ciphertext bytes, <= VTSM_IDE_LINK_MAX_PAYLOAD; 0 in kinds 3
 *              and 5)
 *   18   len   ciphertext (kind 4: the register DWs written, plaintext, a multiple of 4)
 *   ..   16    tag: the 96-bit MAC of vtsm_ide_link_protect() followed by 4 zero bytes
 *              (reserved, must be zero); in kinds 1 and 2 only
 *
 * Kind 4 models the configuration write requests the root port sends down the link to the
 * device's Selective IDE Stream register block of Stream ID stream_id (configuration
 * requests are not IDE-protected here): RID Association 1, RID Association 2, then
 * Address Association 1, 2, 3 for each block the stream declares, little-endian DWs. The
 * device answers kind 5 (done) or kind 3 (refused). key_set, substream and counter are 0.
 * Kind 6 is the same for the device's Link IDE Stream Control register: one DW, its TC
 * (bits 21:19) naming the Link IDE stream, its Stream ID (bits 31:24) the ID that
 * stream takes (stream_id repeats it).
 *
 * The whole frame must be consumed: trailing bytes are refused.
 */
#ifndef VTSM_LINK_FRAME_H
#define VTSM_LINK_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "vtsm_buf.h"
#include "vtsm_ide_link.h"
#include "vtsm_err.h"

#define VTSM_LINK_FRAME_MAGIC     "VLNK"
#define VTSM_LINK_FRAME_MAGIC_LEN 4
#define VTSM_LINK_FRAME_HDR_SIZE  18 /* magic .. len */
#define VTSM_LINK_FRAME_TAG_SIZE  16 /* wire field: MAC (12) + 4 reserved zero bytes */
/* Largest frame: header + max payload + tag. */
#define VTSM_LINK_FRAME_MAX_SIZE                                                                   \
    (VTSM_LINK_FRAME_HDR_SIZE + VTSM_IDE_LINK_MAX_PAYLOAD + VTSM_LINK_FRAME_TAG_SIZE)

enum vtsm_link_frame_kind {
    VTSM_LINK_KIND_CHECK_REQ = 1, /* root port -> device: P protected with the RP TX key */
    VTSM_LINK_KIND_CHECK_RSP = 2, /* device -> root port: P protected with the device TX key */
    VTSM_LINK_KIND_FAILURE = 3,   /* device could not check the request */
    VTSM_LINK_KIND_CFG_WRITE = 4, /* root port -> device: association registers written */
    VTSM_LINK_KIND_CFG_DONE = 5,  /* device -> root port: written */
    VTSM_LINK_KIND_LINK_CFG = 6,  /* root port -> device: Link IDE Stream Control (1 DW) */
};

/*
 * One decoded (or to-be-encoded) frame. ct is borrowed: after decode it points into the
 * caller's frame bytes; for encode it is the caller's ciphertext (may be NULL when len 0).
 * tag is ignored for kind 3.
 */
struct vtsm_link_frame {
    uint8_t kind;
    uint8_t stream_id;
    uint8_t key_set;
    uint8_t substream;
    uint64_t counter;
    uint16_t len;
    const uint8_t *ct;
    uint8_t tag[VTSM_IDE_LINK_MAC_SIZE];
};

/*
 * Encode f into out (out is reset first; caller frees it with vtsm_buf_free).
 * VTSM_E_INVAL: unknown kind, key_set > 1, substream > 2, len > VTSM_IDE_LINK_MAX_PAYLOAD,
 * kind 3 with len != 0, or ct NULL with len != 0.
 */
vtsm_status vtsm_link_frame_encode(const struct vtsm_link_frame *f, struct vtsm_buf *out);

/*
 * Decode a frame received from the peer (untrusted bytes, read with vtsm_rd only).
 *   VTSM_E_PEER_TRUNCATED  shorter than the header, or than header + len (+ tag)
 *   VTSM_E_PEER_MALFORMED  bad magic, unknown kind, key_set > 1, substream > 2, kind 3
 *                          with len != 0, non-zero reserved tag bytes, trailing bytes
 *   VTSM_E_PEER_OVERSIZED  len > VTSM_IDE_LINK_MAX_PAYLOAD
 * On failure *f is zeroed; vtsm_err_detail() names the field.
 */
vtsm_status vtsm_link_frame_decode(const uint8_t *p, size_t n, struct vtsm_link_frame *f);

/*
 * Protect pt (len bytes) with vtsm_ide_link_protect() under (key, ifv, counter, stream_id,
 * substream, key_set) and encode it as a frame of the given kind (1 or 2) into out (reset
 * first). Errors of vtsm_ide_link_protect / vtsm_link_frame_encode; VTSM_E_INVAL for kind 3.
 * out holds only ciphertext; no key or plaintext byte is left in temporaries.
 */
vtsm_status vtsm_link_frame_seal(uint8_t kind, const uint8_t key[VTSM_IDE_LINK_KEY_SIZE],
                                 uint64_t ifv, uint64_t counter, uint8_t stream_id,
                                 uint8_t substream, uint8_t key_set, const uint8_t *pt, size_t len,
                                 struct vtsm_buf *out);

/*
 * Check a decoded kind 1/2 frame with vtsm_ide_link_check(), using the frame's own
 * stream_id, substream, key_set and counter, and write f->len plaintext bytes to pt_out
 * (cap bytes available). VTSM_E_INVAL for kind 3; VTSM_E_TOO_SMALL if cap < f->len;
 * VTSM_E_PEER_DECRYPT if the MAC does not verify (pt_out wiped).
 */
vtsm_status vtsm_link_frame_open(const struct vtsm_link_frame *f,
                                 const uint8_t key[VTSM_IDE_LINK_KEY_SIZE], uint64_t ifv,
                                 uint8_t *pt_out, size_t cap);

#endif
