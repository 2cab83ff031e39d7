/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Measurement blocks (DSP0274 "Measurement block format" with the DMTF measurement
 * specification format) and the MeasurementSummaryHash of KEY_EXCHANGE_RSP.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "dev_internal.h"
#include "vtsm_guard.h"

/* The MeasurementHashAlgo digest of p[0..n) into out (DEV_MEAS_DIGEST_MAX bytes). */
static vtsm_status meas_digest(uint32_t meas_hash, const uint8_t *p, size_t n, uint8_t *out,
                               size_t *len)
{
    if (meas_hash == SPDM_MEAS_HASH_SHA384 || meas_hash == SPDM_MEAS_HASH_SHA256) {
        enum vtsm_hash_alg h =
            meas_hash == SPDM_MEAS_HASH_SHA384 ? VTSM_HASH_SHA384 : VTSM_HASH_SHA256;
        *len = vtsm_hash_size(h);
        return vtsm_hash(h, p, n, out);
    }
    VTSM_ENSURE(meas_hash == SPDM_MEAS_HASH_SHA512, VTSM_E_STATE,
                "no MeasurementHashAlgo negotiated");
    unsigned int l = 0;
    VTSM_ENSURE(EVP_Digest(p, n, out, &l, EVP_sha512(), NULL) == 1 && l == 64, VTSM_E_CRYPTO,
                "SHA-512 measurement digest");
    *len = l;
    return VTSM_OK;
}

/*
 * Index (1) | MeasurementSpecification (1) = DMTF | MeasurementSize (2) |
 * DMTFSpecMeasurementValueType (1) | DMTFSpecMeasurementValueSize (2) | Value
 * Type bit 7 set = raw bit stream, clear = digest with MeasurementHashAlgo.
 */
vtsm_status dev_meas_block(const struct vtsm_dev *d, size_t i, bool raw_requested,
                           struct vtsm_wr *w)
{
    const struct vtsm_dev_meas *m = &d->cfg.meas[i];
    uint8_t digest[DEV_MEAS_DIGEST_MAX];
    const uint8_t *value = m->value;
    size_t value_len = m->value_len;
    uint8_t type = m->type & 0x7F;
    static const char drifted[] = "vtsm-devemu firmware image 1.0.1 (build 0002, after lock)";

    if (d->meas_drift && (type & 0x7F) == 1 /* mutable firmware */) {
        value = (const uint8_t *)drifted;
        value_len = sizeof(drifted) - 1;
    }

    if (m->raw && raw_requested) {
        type |= DEV_SPDM_DMTF_TYPE_RAW;
    } else {
        VTSM_GUARD(meas_digest(d->conn.meas_hash, value, value_len, digest, &value_len));
        value = digest;
    }
    VTSM_GUARD(vtsm_wr_u8(w, m->index));
    VTSM_GUARD(vtsm_wr_u8(w, SPDM_MEAS_SPEC_DMTF));
    VTSM_GUARD(vtsm_wr_le16(w, (uint16_t)(3 + value_len)));
    VTSM_GUARD(vtsm_wr_u8(w, type));
    VTSM_GUARD(vtsm_wr_le16(w, (uint16_t)value_len));
    VTSM_GUARD(vtsm_wr_bytes(w, value, value_len));
    return VTSM_OK;
}

/*
 * MeasurementSummaryHash (DSP0274 1.2+): the base hash over the concatenation of the
 * measurement blocks, in the form GET_MEASUREMENTS returns them without
 * RawBitStreamRequested: all blocks for 0xFF, the TCB blocks for 1.
 */
vtsm_status dev_meas_summary(const struct vtsm_dev *d, uint8_t type, uint8_t *out)
{
    uint8_t buf[VTSM_DEV_MAX_MEAS * (7 + DEV_MEAS_DIGEST_MAX)];
    struct vtsm_wr w = vtsm_wr_init(buf, sizeof(buf));
    for (size_t i = 0; i < d->cfg.n_meas; i++) {
        if (type == 0xFF || d->cfg.meas[i].tcb)
            VTSM_GUARD(dev_meas_block(d, i, false, &w));
    }
    vtsm_status st = vtsm_hash(d->conn.hash, buf, w.len, out);
    OPENSSL_cleanse(buf, sizeof(buf));
    return st;
}
