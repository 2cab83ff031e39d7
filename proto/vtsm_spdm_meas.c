/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DSP0274 "Measurement block" with the DMTF measurement specification format, bounded:
 * header -> fixed part -> counts -> variable part, every length checked against what is
 * left of the enclosing part.
 */
#include "vtsm_spdm_meas.h"

#include "vtsm_buf.h"
#include "vtsm_guard.h"
#include "vtsm_spdm_defs.h"

static const char msg[] = "MeasurementRecord";

#define RD(expr, field)                                                                            \
    do {                                                                                           \
        if ((expr) != VTSM_OK)                                                                     \
            return vtsm_fail(VTSM_E_PEER_TRUNCATED, "%s truncated at %s", msg, (field));           \
    } while (0)

vtsm_status vtsm_spdm_meas_parse(const uint8_t *rec, size_t len, uint8_t spec, size_t digest_size,
                                 struct vtsm_spdm_meas_block *blocks, size_t cap, size_t *count)
{
    struct vtsm_rd rd = vtsm_rd_init(rec, len);
    size_t n = 0;

    VTSM_ENSURE((rec != NULL || len == 0) && (blocks != NULL || cap == 0) && count != NULL,
                VTSM_E_INVAL, "measurement record: NULL argument");
    *count = 0;
    while (vtsm_rd_left(&rd) > 0) {
        struct vtsm_spdm_meas_block b;
        struct vtsm_rd blk;
        VTSM_ENSURE(n < cap, VTSM_E_PEER_MALFORMED, "%s has %zu bytes after its %zu blocks", msg,
                    vtsm_rd_left(&rd), n);
        RD(vtsm_rd_u8(&rd, &b.index), "Index");
        RD(vtsm_rd_u8(&rd, &b.spec), "MeasurementSpecification");
        RD(vtsm_rd_le16(&rd, &b.size), "MeasurementSize");
        RD(vtsm_rd_sub(&rd, &blk, b.size), "Measurement");
        VTSM_ENSURE(b.index != 0 && b.index != 0xFF, VTSM_E_PEER_MALFORMED,
                    "measurement block %zu has reserved Index 0x%02x", n, b.index);
        VTSM_ENSURE(vtsm_spdm_meas_find(blocks, n, b.index) == NULL, VTSM_E_PEER_MALFORMED,
                    "measurement Index %u appears twice", b.index);
        VTSM_ENSURE(b.spec == spec, VTSM_E_PEER_MALFORMED,
                    "measurement block %u MeasurementSpecification 0x%02x, negotiated 0x%02x",
                    b.index, b.spec, spec);
        /* DMTF measurement specification: ValueType, ValueSize, Value = the whole block. */
        RD(vtsm_rd_u8(&blk, &b.value_type), "DMTFSpecMeasurementValueType");
        RD(vtsm_rd_le16(&blk, &b.value_size), "DMTFSpecMeasurementValueSize");
        RD(vtsm_rd_ref(&blk, &b.value, b.value_size), "DMTFSpecMeasurementValue");
        VTSM_ENSURE(vtsm_rd_left(&blk) == 0, VTSM_E_PEER_MALFORMED,
                    "measurement block %u: MeasurementSize %u != 3 + ValueSize %u", b.index, b.size,
                    b.value_size);
        VTSM_ENSURE((b.value_type & VTSM_SPDM_MEAS_RAW) || digest_size == 0 ||
                        b.value_size == digest_size,
                    VTSM_E_PEER_MALFORMED,
                    "measurement block %u digest is %u bytes, MeasurementHashAlgo gives %zu",
                    b.index, b.value_size, digest_size);
        blocks[n++] = b;
    }
    *count = n;
    return VTSM_OK;
}

/* DSP0274 ALGORITHMS MeasurementHashAlgo: bit 0 raw bit stream only, then the digests. */
static const struct {
    uint32_t bit;
    size_t size;
    const char *name;
} meas_hashes[] = {
    {SPDM_MEAS_HASH_RAW, 0, "raw"},
    {SPDM_MEAS_HASH_SHA256, 32, "sha256"},
    {SPDM_MEAS_HASH_SHA384, 48, "sha384"},
    {SPDM_MEAS_HASH_SHA512, 64, "sha512"},
    {SPDM_MEAS_HASH_SHA3_256, 32, "sha3_256"},
    {SPDM_MEAS_HASH_SHA3_384, 48, "sha3_384"},
    {SPDM_MEAS_HASH_SHA3_512, 64, "sha3_512"},
    {SPDM_MEAS_HASH_SM3_256, 32, "sm3_256"},
};

size_t vtsm_spdm_meas_hash_size(uint32_t meas_hash_algo)
{
    for (size_t i = 0; i < sizeof(meas_hashes) / sizeof(meas_hashes[0]); i++)
        if (meas_hashes[i].bit == meas_hash_algo)
            return meas_hashes[i].size;
    return 0;
}

const char *vtsm_spdm_meas_hash_name(uint32_t meas_hash_algo)
{
    for (size_t i = 0; i < sizeof(meas_hashes) / sizeof(meas_hashes[0]); i++)
        if (meas_hashes[i].bit == meas_hash_algo)
            return meas_hashes[i].name;
    return "unknown";
}

const struct vtsm_spdm_meas_block *vtsm_spdm_meas_find(const struct vtsm_spdm_meas_block *blocks,
                                                       size_t n, unsigned index)
{
    for (size_t i = 0; i < n; i++)
        if (blocks[i].index == index)
            return &blocks[i];
    return NULL;
}
