/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The MeasurementRecord of a DSP0274 MEASUREMENTS response: a run of "Measurement block"s
 * (Index u8, MeasurementSpecification u8, MeasurementSize le16, Measurement), each
 * Measurement in the DMTF measurement specification format (DMTFSpecMeasurementValueType
 * u8, DMTFSpecMeasurementValueSize le16, DMTFSpecMeasurementValue).
 *
 * One parser for every party: the SPDM requester (after the signature verifies), and the
 * guest verifier (over the record bound to the TSM's token).
 */
#ifndef VTSM_SPDM_MEAS_H
#define VTSM_SPDM_MEAS_H

#include <stddef.h>
#include <stdint.h>

#include "vtsm_err.h"

/* Index is 1..0xFE and unique within a record (0 and 0xFF are the GET_MEASUREMENTS
 * count / all operations), so a record holds at most 254 blocks. */
#define VTSM_SPDM_MEAS_BLOCKS_MAX 254
#define VTSM_SPDM_MEAS_RAW        0x80 /* DMTFSpecMeasurementValueType bit 7: raw bit stream */
#define VTSM_SPDM_MEAS_TYPE_MASK  0x7F

/* One measurement block. value points into the record that was parsed. */
struct vtsm_spdm_meas_block {
    uint8_t index;      /* Index, 1..0xFE */
    uint8_t spec;       /* MeasurementSpecification (SPDM_MEAS_SPEC_DMTF) */
    uint16_t size;      /* MeasurementSize */
    uint8_t value_type; /* DMTFSpecMeasurementValueType (bit 7: raw bit stream) */
    uint16_t value_size;
    const uint8_t *value;
};

/*
 * Parse rec[0..len) into blocks[0..cap). Every block must carry MeasurementSpecification
 * `spec`, a DMTF value that fills its Measurement exactly, an Index in 1..0xFE not seen
 * before; a digest (value type without the raw bit) must be digest_size bytes unless
 * digest_size is 0 (not known to the caller). The record must end after the last block.
 * *count receives the number of blocks. A record of more than cap blocks fails.
 * Failures: VTSM_E_PEER_TRUNCATED (a field cut short, naming it), VTSM_E_PEER_MALFORMED.
 */
vtsm_status vtsm_spdm_meas_parse(const uint8_t *rec, size_t len, uint8_t spec, size_t digest_size,
                                 struct vtsm_spdm_meas_block *blocks, size_t cap, size_t *count);

/* The digest size of a MeasurementHashAlgo selection (one bit: SHA-256/384/512, SHA3-256/
 * 384/512, SM3-256), 0 for raw bit streams only or a value that is not one known algorithm. */
size_t vtsm_spdm_meas_hash_size(uint32_t meas_hash_algo);
/* Its name: "raw", "sha256", "sha384", "sha512", "sha3_256", "sha3_384", "sha3_512",
 * "sm3_256", or "unknown". */
const char *vtsm_spdm_meas_hash_name(uint32_t meas_hash_algo);

/* The block with Index `index` among blocks[0..n), NULL if none. */
const struct vtsm_spdm_meas_block *vtsm_spdm_meas_find(const struct vtsm_spdm_meas_block *blocks,
                                                       size_t n, unsigned index);

#endif
