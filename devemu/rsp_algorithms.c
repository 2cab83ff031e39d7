/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DSP0274 NEGOTIATE_ALGORITHMS / ALGORITHMS (1.2, 1.3, 1.4; in 1.4 the first 4 reserved
 * bytes after BaseHashAlgo / BaseHashSel are PqcAsymAlgo / PqcAsymSel: 0 here).
 *
 * NEGOTIATE_ALGORITHMS: header (Param1 = number of ReqAlgStruct) | Length (2) |
 *   MeasurementSpecification (1) | OtherParamsSupport (1) | BaseAsymAlgo (4) |
 *   BaseHashAlgo (4) | Reserved (12) | ExtAsymCount (1) | ExtHashCount (1) | Reserved (1) |
 *   MELspecification (1, 1.3) | ExtAsym (4 each) | ExtHash (4 each) | ReqAlgStruct...
 * AlgStruct: AlgType (1) | AlgCount (1: fixed-width bytes [7:4] = 2, ext count [3:0]) |
 *   AlgSupported (2) | AlgExternal (4 each)
 * ALGORITHMS: header (Param1 = number of RespAlgStruct) | Length (2) |
 *   MeasurementSpecificationSel (1) | OtherParamsSelection (1) | MeasurementHashAlgo (4) |
 *   BaseAsymSel (4) | BaseHashSel (4) | Reserved (11) | MELspecificationSel (1, 1.3) |
 *   ExtAsymSelCount (1) | ExtHashSelCount (1) | Reserved (2) | RespAlgStruct...
 *
 * Each field selects one algorithm from those the requester offered, preferring the
 * configured one. Anything the connection needs without a common choice is InvalidRequest.
 */
#include "dev_internal.h"
#include "vtsm_guard.h"

#define MAX_ALG_STRUCTS 4
#define ALG_TYPE_MIN    SPDM_ALG_TYPE_DHE
#define ALG_TYPE_MAX    SPDM_ALG_TYPE_KEY_SCHEDULE
/* 1.4 adds ReqPqcAsymAlg (6) and KEM (7): read past, never selected (no PQC here), and left
 * out of ALGORITHMS, as a responder does for algorithm types it selects nothing from. */
#define MAX_ALG_STRUCTS_14 6
#define ALG_TYPE_PQC_MIN   6
#define ALG_TYPE_PQC_MAX   7
#define REQ_MULTI_KEY(f)   (((f) >> 26) & 3u)

struct alg_struct {
    uint8_t type;
    uint16_t supported;
};

static uint32_t asym_bit(enum vtsm_asym_alg a)
{
    return a == VTSM_ASYM_ECDSA_P384 ? SPDM_ASYM_ECDSA_P384 : SPDM_ASYM_ECDSA_P256;
}

static uint32_t hash_bit(enum vtsm_hash_alg h)
{
    return h == VTSM_HASH_SHA384 ? SPDM_HASH_SHA384 : SPDM_HASH_SHA256;
}

static uint16_t dhe_bit(enum vtsm_dhe_group g)
{
    return g == VTSM_DHE_SECP384R1 ? SPDM_DHE_SECP384R1 : SPDM_DHE_SECP256R1;
}

/* The preferred bit if offered, else the alternative if offered, else 0. */
static uint32_t pick(uint32_t offered, uint32_t preferred, uint32_t alternative)
{
    if (offered & preferred)
        return preferred;
    if (offered & alternative)
        return alternative;
    return 0;
}

vtsm_status dev_rsp_algorithms(struct vtsm_dev *d, struct dev_req *q, struct vtsm_wr *w)
{
    struct vtsm_rd r = vtsm_rd_init(q->msg, q->len);
    uint16_t length;
    uint8_t meas_spec, other, ext_asym, ext_hash, rsvd, mel;
    uint32_t base_asym, base_hash;
    struct alg_struct req_s[MAX_ALG_STRUCTS];
    unsigned ext_total;
    uint8_t n = 0, n_req = q->param1, prev_type = 0;
    bool v14 = q->version >= VTSM_SPDM_V14;

    if (d->conn.state != DEV_CONN_AFTER_CAPS)
        return dev_refuse(q, SPDM_ERR_UNEXPECTED_REQUEST, 0, VTSM_E_STATE,
                          "NEGOTIATE_ALGORITHMS only right after CAPABILITIES");

    /* Header, then fixed part, then counts, then the variable part. */
    VTSM_GUARD(vtsm_rd_skip(&r, 4));
    if (vtsm_rd_le16(&r, &length) || vtsm_rd_u8(&r, &meas_spec) || vtsm_rd_u8(&r, &other) ||
        vtsm_rd_le32(&r, &base_asym) || vtsm_rd_le32(&r, &base_hash) || vtsm_rd_skip(&r, 12) ||
        vtsm_rd_u8(&r, &ext_asym) || vtsm_rd_u8(&r, &ext_hash) || vtsm_rd_u8(&r, &rsvd) ||
        vtsm_rd_u8(&r, &mel))
        return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_TRUNCATED,
                          "NEGOTIATE_ALGORITHMS fixed part truncated (%zu bytes)", q->len);
    if (length > DEV_NEG_ALG_MAX_LENGTH)
        return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_OVERSIZED,
                          "NEGOTIATE_ALGORITHMS Length %u > %u", length, DEV_NEG_ALG_MAX_LENGTH);
    if (n_req > (v14 ? MAX_ALG_STRUCTS_14 : MAX_ALG_STRUCTS))
        return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_MALFORMED,
                          "%u ReqAlgStruct entries (at most %u types exist)", n_req,
                          v14 ? MAX_ALG_STRUCTS_14 : MAX_ALG_STRUCTS);
    ext_total = (unsigned)ext_asym + ext_hash;
    if (ext_total > DEV_NEG_ALG_MAX_EXT)
        return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_MALFORMED,
                          "ExtAsymCount + ExtHashCount = %u > %u", ext_total, DEV_NEG_ALG_MAX_EXT);
    if (vtsm_rd_skip(&r, 4u * ext_total))
        return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_TRUNCATED,
                          "ExtAsym/ExtHash entries truncated");
    for (uint8_t i = 0; i < n_req; i++) {
        uint8_t type, count;
        if (vtsm_rd_u8(&r, &type) || vtsm_rd_u8(&r, &count))
            return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_TRUNCATED,
                              "ReqAlgStruct %u truncated", i);
        bool pqc = v14 && type >= ALG_TYPE_PQC_MIN && type <= ALG_TYPE_PQC_MAX;
        if (!pqc && (type < ALG_TYPE_MIN || type > ALG_TYPE_MAX))
            return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_MALFORMED,
                              "ReqAlgStruct %u: AlgType %u unknown", i, type);
        if (i > 0 && type <= prev_type)
            return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_MALFORMED,
                              "ReqAlgStruct AlgType must increase (%u after %u)", type, prev_type);
        prev_type = type;
        if (pqc) {
            if (vtsm_rd_skip(&r, count >> 4))
                return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_TRUNCATED,
                                  "ReqAlgStruct %u truncated", i);
        } else {
            req_s[n].type = type;
            if ((count >> 4) != 2)
                return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_MALFORMED,
                                  "ReqAlgStruct %u: fixed algorithm width %u, must be 2", i,
                                  count >> 4);
            if (vtsm_rd_le16(&r, &req_s[n].supported))
                return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_TRUNCATED,
                                  "ReqAlgStruct %u truncated", i);
            if (req_s[n].supported == 0)
                return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_MALFORMED,
                                  "ReqAlgStruct %u (AlgType %u) offers nothing", i, type);
            n++;
        }
        ext_total += count & 0xF;
        if (ext_total > DEV_NEG_ALG_MAX_EXT)
            return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_MALFORMED,
                              "more than %u extended algorithms", DEV_NEG_ALG_MAX_EXT);
        if (vtsm_rd_skip(&r, 4u * (count & 0xF)))
            return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_TRUNCATED,
                              "ReqAlgStruct %u AlgExternal truncated", i);
    }
    if (r.off != length)
        return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_MALFORMED,
                          "NEGOTIATE_ALGORITHMS Length %u, message is %zu bytes", length, r.off);
    VTSM_GUARD(dev_req_end(q, &r));
    if (q->version >= VTSM_SPDM_V13 && REQ_MULTI_KEY(d->conn.req_flags) == 1)
        return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_ALGO,
                          "requester only supports multi-key connections");

    /* Select. */
    bool key_ex = d->conn.req_flags & SPDM_CAP_KEY_EX;
    enum vtsm_hash_alg other_hash =
        d->cfg.hash == VTSM_HASH_SHA384 ? VTSM_HASH_SHA256 : VTSM_HASH_SHA384;
    enum vtsm_dhe_group other_dhe =
        d->cfg.dhe == VTSM_DHE_SECP384R1 ? VTSM_DHE_SECP256R1 : VTSM_DHE_SECP384R1;
    uint32_t asym_sel = base_asym & asym_bit(d->cfg.asym);
    uint32_t hash_sel = pick(base_hash, hash_bit(d->cfg.hash), hash_bit(other_hash));
    uint8_t meas_spec_sel = meas_spec & SPDM_MEAS_SPEC_DMTF;
    uint8_t other_sel = q->version >= VTSM_SPDM_V12 ? (other & SPDM_OPAQUE_DATA_FMT_1) : 0;
    struct alg_struct rsp_s[MAX_ALG_STRUCTS];
    uint16_t dhe_sel = 0, aead_sel = 0, ks_sel = 0;

    if (!asym_sel)
        return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_ALGO,
                          "no common BaseAsymAlgo (offered 0x%08x, device has %s)", base_asym,
                          vtsm_asym_name(d->cfg.asym));
    if (!hash_sel)
        return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_ALGO,
                          "no common BaseHashAlgo (offered 0x%08x)", base_hash);
    for (uint8_t i = 0; i < n; i++) {
        rsp_s[i].type = req_s[i].type;
        rsp_s[i].supported = 0;
        switch (req_s[i].type) {
        case SPDM_ALG_TYPE_DHE:
            dhe_sel = (uint16_t)pick(req_s[i].supported, dhe_bit(d->cfg.dhe), dhe_bit(other_dhe));
            rsp_s[i].supported = dhe_sel;
            break;
        case SPDM_ALG_TYPE_AEAD:
            aead_sel = req_s[i].supported & SPDM_AEAD_AES_256_GCM;
            rsp_s[i].supported = aead_sel;
            break;
        case SPDM_ALG_TYPE_KEY_SCHEDULE:
            ks_sel = req_s[i].supported & SPDM_KEY_SCHEDULE_SPDM;
            rsp_s[i].supported = ks_sel;
            break;
        default: /* ReqBaseAsymAlg: no mutual authentication, nothing selected */
            break;
        }
    }
    if (key_ex && (!dhe_sel || !aead_sel || !ks_sel))
        return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_ALGO,
                          "KEY_EX_CAP needs a common DHE group (0x%04x), AEAD (0x%04x) and "
                          "the SPDM key schedule (0x%04x)",
                          dhe_sel, aead_sel, ks_sel);
    if (key_ex && q->version >= VTSM_SPDM_V12 && other_sel != SPDM_OPAQUE_DATA_FMT_1)
        return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_ALGO,
                          "KEY_EX_CAP needs OpaqueDataFmt1 (OtherParamsSupport 0x%02x)", other);

    enum vtsm_hash_alg hash = hash_sel == SPDM_HASH_SHA384 ? VTSM_HASH_SHA384 : VTSM_HASH_SHA256;
    uint32_t meas_hash = 0;
    if (meas_spec_sel && d->cfg.meas_hash)
        meas_hash = d->cfg.meas_hash; /* the responder's choice: the request names none */
    else if (meas_spec_sel)
        meas_hash = hash == VTSM_HASH_SHA384 ? SPDM_MEAS_HASH_SHA384 : SPDM_MEAS_HASH_SHA256;

    size_t rsp_len = 36 + 4u * n;
    VTSM_GUARD(dev_wr_header(q, w, SPDM_ALGORITHMS, n, 0));
    VTSM_GUARD(vtsm_wr_le16(w, (uint16_t)rsp_len));
    VTSM_GUARD(vtsm_wr_u8(w, meas_spec_sel));
    VTSM_GUARD(vtsm_wr_u8(w, other_sel));
    VTSM_GUARD(vtsm_wr_le32(w, meas_hash));
    VTSM_GUARD(vtsm_wr_le32(w, asym_sel));
    VTSM_GUARD(vtsm_wr_le32(w, hash_sel));
    VTSM_GUARD(vtsm_wr_zeros(w, 11));
    VTSM_GUARD(vtsm_wr_u8(w, 0)); /* MELspecificationSel: no MEL_CAP */
    VTSM_GUARD(vtsm_wr_u8(w, 0)); /* ExtAsymSelCount */
    VTSM_GUARD(vtsm_wr_u8(w, 0)); /* ExtHashSelCount */
    VTSM_GUARD(vtsm_wr_le16(w, 0));
    for (uint8_t i = 0; i < n; i++) {
        VTSM_GUARD(vtsm_wr_u8(w, rsp_s[i].type));
        VTSM_GUARD(vtsm_wr_u8(w, 0x20));
        VTSM_GUARD(vtsm_wr_le16(w, rsp_s[i].supported));
    }

    VTSM_GUARD(vtsm_buf_append(&d->conn.vca, q->msg, length));
    VTSM_GUARD(vtsm_buf_append(&d->conn.vca, w->p, w->len));
    d->conn.asym = d->cfg.asym;
    d->conn.hash = hash;
    d->conn.dhe = dhe_sel == SPDM_DHE_SECP384R1   ? VTSM_DHE_SECP384R1
                  : dhe_sel == SPDM_DHE_SECP256R1 ? VTSM_DHE_SECP256R1
                                                  : VTSM_DHE_NONE;
    d->conn.aead = aead_sel ? VTSM_AEAD_AES_256_GCM : VTSM_AEAD_NONE;
    d->conn.key_schedule = ks_sel != 0;
    d->conn.meas_spec = meas_spec_sel;
    d->conn.meas_hash = meas_hash;
    d->conn.other_params = other_sel;
    d->conn.state = DEV_CONN_NEGOTIATED;
    return VTSM_OK;
}
