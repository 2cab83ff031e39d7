/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * One-line descriptions of what travels over a DOE mailbox, for --trace output and
 * captures: a DOE object (discovery, SPDM, secured SPDM) and a plaintext SPDM message
 * (with the IDE_KM object or TDISP message a PCI-SIG vendor-defined message carries).
 * Bounded: every read is checked against the length given; truncated or unknown input
 * is described as such, never read past.
 */
#ifndef VTSM_TRACE_H
#define VTSM_TRACE_H

#include <stddef.h>
#include <stdint.h>

/* "GET_VERSION", "KEY_EXCHANGE_RSP", "ERROR", ...; "unknown" for a code SPDM does not
 * define. */
const char *vtsm_spdm_code_name(uint8_t code);

/*
 * Describe a plaintext SPDM message into buf (always NUL-terminated when cap > 0):
 *   "SPDM 1.2 GET_VERSION"
 *   "SPDM 1.2 VENDOR_DEFINED_REQUEST IDE_KM KEY_PROG"
 *   "SPDM 1.2 VENDOR_DEFINED_RESPONSE TDISP LOCK_INTERFACE_RSP"
 *   "SPDM 1.2 ERROR 0x06"
 */
void vtsm_trace_spdm(const uint8_t *msg, size_t len, char *buf, size_t cap);

/*
 * Describe one DOE object (8-byte DOE header included):
 *   "DOE discovery"
 *   "SPDM 1.2 GET_VERSION"                      (type 1: the SPDM message, as above)
 *   "secured SPDM session 0xfffe0001"           (type 2: only the session is visible)
 *   "DOE vendor 0x0001 type 0x05"               (anything else)
 */
void vtsm_trace_doe(const uint8_t *obj, size_t len, char *buf, size_t cap);

#endif
