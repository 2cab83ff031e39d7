/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A small model of IDE TLP protection, for a "simulated link check" after IDE_KM: the
 * sender protects a test payload with the key and IFV it was given by KEY_PROG, the other
 * end checks it with its copy. Callers learn only pass or fail.
 *
 * What is modelled, and how it differs from PCIe IDE (PCIe 6.x sec. 6.33.5):
 *  - Cipher: AES-256-GCM with the MAC truncated to 96 bits - as IDE does.
 *  - IV: 32-bit fixed field 0000_0000h || 64-bit invocation field, the invocation field
 *    starting at the IFV from KEY_PROG and advancing by one per protected TLP of that
 *    sub-stream (`counter` = TLPs already sent). This is the IDE construction; wrapping the
 *    invocation field is refused, as a real link must refresh keys first.
 *  - AAD: IDE authenticates the TLP header and its IDE prefix (stream ID, sub-stream, key
 *    set K bit, ...). There are no TLPs here, so the AAD is an 8-byte block we define:
 *      [0] stream ID  [1] sub-stream << 4 | key set  [2..3] zero  [4..7] payload length (LE)
 *    It binds the same identifiers, not the same bytes.
 *  - Not modelled: TLP framing, aggregation (one MAC over several TLPs), PCRC, partial
 *    header encryption, separate counters per direction; the "payload" is opaque bytes.
 * Keys are the AES byte order of struct vtsm_idekm_key.key.
 */
#ifndef VTSM_IDE_LINK_H
#define VTSM_IDE_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "vtsm_err.h"

#define VTSM_IDE_LINK_KEY_SIZE    32
#define VTSM_IDE_LINK_IV_SIZE     12
#define VTSM_IDE_LINK_AAD_SIZE    8
#define VTSM_IDE_LINK_MAC_SIZE    12   /* 96-bit MAC */
#define VTSM_IDE_LINK_MAX_PAYLOAD 4096 /* largest TLP data payload */

#define VTSM_IDE_SUBSTREAM_PR  0
#define VTSM_IDE_SUBSTREAM_NPR 1
#define VTSM_IDE_SUBSTREAM_CPL 2

/*
 * Protect len bytes of pt (len <= 4096) into out (len bytes) and the 96-bit MAC.
 * VTSM_E_INVAL for bad identifiers (substream > 2, key_set > 1), an oversized payload or
 * an invocation field that would wrap (ifv + counter > 2^64 - 1).
 */
vtsm_status vtsm_ide_link_protect(const uint8_t key[VTSM_IDE_LINK_KEY_SIZE], uint64_t ifv,
                                  uint64_t counter, uint8_t stream_id, uint8_t substream,
                                  uint8_t key_set, const uint8_t *pt, size_t len, uint8_t *out,
                                  uint8_t tag[VTSM_IDE_LINK_MAC_SIZE]);

/*
 * Check what vtsm_ide_link_protect() produced: VTSM_OK, or VTSM_E_PEER_DECRYPT when the MAC
 * does not verify (wrong key, key set, stream, sub-stream, counter, or tampered bytes).
 * pt_out (len bytes) may be NULL; on failure it is wiped.
 */
vtsm_status vtsm_ide_link_check(const uint8_t key[VTSM_IDE_LINK_KEY_SIZE], uint64_t ifv,
                                uint64_t counter, uint8_t stream_id, uint8_t substream,
                                uint8_t key_set, const uint8_t *ct, size_t len,
                                const uint8_t tag[VTSM_IDE_LINK_MAC_SIZE], uint8_t *pt_out);

/* The model's IV and AAD (exposed for tests and documentation). */
vtsm_status vtsm_ide_link_iv(uint64_t ifv, uint64_t counter, uint8_t iv[VTSM_IDE_LINK_IV_SIZE]);
void vtsm_ide_link_aad(uint8_t stream_id, uint8_t substream, uint8_t key_set, size_t len,
                       uint8_t aad[VTSM_IDE_LINK_AAD_SIZE]);

#endif
