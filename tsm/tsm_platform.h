/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The platform the TSM manages (docs/abi.md section 1): root ports, each
 * with a number of selective IDE stream IDs and IDE key slots.
 *
 *  - Stream IDs are allocated per root port from 0..streams-1, lowest free first. None (or
 *    too few) free: VTSM_E_NO_STREAM (rule IDE.1).
 *  - A stream uses TSM_RP_SLOTS_PER_SET key slots of its root port (RX + TX side) while one
 *    key set is live, twice that during a refresh. Too few free: VTSM_E_LIMIT (rule IDE.2).
 *  - A device names an existing root port (rule PLAT.1, VTSM_E_NOT_FOUND).
 * Allocation is all-or-nothing: a refused request changes nothing.
 *
 * Threading: none. tsmd touches the platform only on its event loop's thread.
 */
#ifndef TSM_PLATFORM_H
#define TSM_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vtsm_err.h"

#define TSM_PLATFORM_MAX_RP         64   /* root ports */
#define TSM_RP_MAX_STREAMS          256  /* stream IDs are 8-bit */
#define TSM_RP_MAX_KEY_SLOTS        4096 /* key slots per root port */
#define TSM_RP_DEFAULT_STREAMS      4
#define TSM_RP_DEFAULT_KEY_SLOTS    8
#define TSM_RP_SLOTS_PER_SET        2 /* RX + TX side of the root port, per stream */
#define TSM_PLATFORM_DEFAULT_RP_NUM 2 /* default platform: root ports 0 and 1 */

struct tsm_rp_config {
    uint16_t id;
    uint16_t streams;   /* 1..256 */
    uint16_t key_slots; /* 2..4096 */
};

/* Usage snapshot of one root port. */
struct tsm_rp_usage {
    uint16_t id;
    uint16_t streams, streams_used;
    uint16_t key_slots, key_slots_used;
};

struct tsm_platform;

/*
 * Parse a `--root-port` value "ID:STREAMS[:KEYSLOTS]" (decimal; KEYSLOTS defaults to
 * TSM_RP_SLOTS_PER_SET * STREAMS). VTSM_E_CONFIG with a detail naming the field for
 * anything else: empty fields, non-digits, signs, ID > 65535, STREAMS outside 1..256,
 * KEYSLOTS outside 2..4096, extra fields. *out is written only on success.
 */
vtsm_status tsm_platform_parse_rp(const char *spec, struct tsm_rp_config *out);

/*
 * Create a platform from n root-port configurations (copied). n == 0 (rps may be NULL):
 * the default, root ports 0 and 1 with 4 streams and 8 key slots each. VTSM_E_CONFIG for
 * more than TSM_PLATFORM_MAX_RP ports, a port twice, or values outside the ranges above.
 * The caller frees *out with tsm_platform_free.
 */
vtsm_status tsm_platform_new(const struct tsm_rp_config *rps, size_t n, struct tsm_platform **out);
/* NULL is fine. Every stream should have been freed. */
void tsm_platform_free(struct tsm_platform *p);

/* Does root port rp exist? (rule PLAT.1; no lock needed: the set is fixed) */
bool tsm_platform_has_rp(const struct tsm_platform *p, uint32_t rp);

/*
 * Allocate n (1..256) stream IDs on root port rp, lowest free first, into ids[0..n-1]
 * (ascending), together with TSM_RP_SLOTS_PER_SET * n key slots.
 *   VTSM_E_NOT_FOUND  no root port rp (rule PLAT.1)
 *   VTSM_E_NO_STREAM  "no IDE stream available on root port X (U of N in use) (rule IDE.1)"
 *   VTSM_E_LIMIT      "no IDE key slot available on root port X (...) (rule IDE.2)"
 * Nothing changes on failure.
 */
vtsm_status tsm_platform_alloc_streams(struct tsm_platform *p, uint32_t rp, unsigned n,
                                       uint8_t *ids);
/*
 * Claim the n stream IDs ids[] the host allocated on root port rp (Linux
 * pci_ide_stream_alloc, TDX Connect / SEV-TIO / CoVE-IO hosts), with their key slots:
 *   VTSM_E_NO_STREAM  an ID outside 0..streams-1 of the port, or in use (rule IDE.7)
 *   VTSM_E_ABI_ARG    an ID named twice (rule IDE.6)
 *   VTSM_E_LIMIT      too few key slots (rule IDE.2); E_NOT_FOUND no such port (PLAT.1)
 * All or nothing. Freed with tsm_platform_free_streams.
 */
vtsm_status tsm_platform_claim_streams(struct tsm_platform *p, uint32_t rp, unsigned n,
                                       const uint8_t *ids);
/* Give back streams (and TSM_RP_SLOTS_PER_SET key slots for each). IDs not allocated are
 * logged and skipped, with no slots given back for them. */
void tsm_platform_free_streams(struct tsm_platform *p, uint32_t rp, unsigned n, const uint8_t *ids);

/* Allocate / give back n more key slots (a refresh holds two key sets per stream).
 * Errors as tsm_platform_alloc_streams (E_NOT_FOUND, E_LIMIT; E_INVAL for n == 0). */
vtsm_status tsm_platform_alloc_slots(struct tsm_platform *p, uint32_t rp, unsigned n);
void tsm_platform_free_slots(struct tsm_platform *p, uint32_t rp, unsigned n);

/* Usage of root port rp (E_NOT_FOUND if none). */
vtsm_status tsm_platform_usage(struct tsm_platform *p, uint32_t rp, struct tsm_rp_usage *out);
/* Number of root ports, and the id of the i-th (configuration order). */
size_t tsm_platform_rp_count(const struct tsm_platform *p);
uint16_t tsm_platform_rp_id(const struct tsm_platform *p, size_t i);

#endif
