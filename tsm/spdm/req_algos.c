/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DSP0274 "NEGOTIATE_ALGORITHMS request and ALGORITHMS response messages" (1.2 / 1.3).
 *
 * Request: header (Param1 = number of ReqAlgStructs), Length(2), MeasurementSpecification,
 * OtherParamsSupport, BaseAsymAlgo(4), BaseHashAlgo(4), Reserved(12), ExtAsymCount,
 * ExtHashCount, Reserved, MELspecification (1.3; reserved in 1.2), ReqAlgStructs.
 * Response: header (Param1 = number of RespAlgStructs), Length(2),
 * MeasurementSpecificationSel, OtherParamsSelection, MeasurementHashAlgo(4),
 * BaseAsymSel(4), BaseHashSel(4), Reserved(11), MELspecificationSel (1.3), ExtAsymSelCount,
 * ExtHashSelCount, Reserved(2), ExtAsymSel, ExtHashSel, RespAlgStructs.
 * AlgStruct: AlgType, AlgCount (FixedAlgCount [7:4] = 2, ExtAlgCount [3:0]),
 * AlgSupported(2), AlgExternal(4 * ExtAlgCount).
 */
#include <string.h>

#include "spdm_req_int.h"

#define NEG_FIXED_SIZE  32
#define ALG_FIXED_SIZE  36
#define ALG_STRUCT_SIZE 4
#define NUM_ALG_STRUCTS 4
/* OtherParamsSupport bits 3:0 = OpaqueDataFmt. */
#define OPAQUE_FMT_MASK 0x0F

static const char *alg_type_name(uint8_t t)
{
    switch (t) {
    case SPDM_ALG_TYPE_DHE:
        return "DHE";
    case SPDM_ALG_TYPE_AEAD:
        return "AEAD";
    case SPDM_ALG_TYPE_REQ_BASE_ASYM:
        return "ReqBaseAsymAlg";
    case SPDM_ALG_TYPE_KEY_SCHEDULE:
        return "KeySchedule";
    default:
        return "unknown";
    }
}

/* A selection field must name exactly one of the values offered. */
static vtsm_status one_of(uint32_t sel, uint32_t offered, const char *field)
{
    VTSM_ENSURE(vtsm__onehot(sel), VTSM_E_PEER_ALGO,
                "ALGORITHMS %s = 0x%x does not select exactly one algorithm", field, sel);
    VTSM_ENSURE((sel & offered) == sel, VTSM_E_PEER_ALGO,
                "ALGORITHMS %s = 0x%x was not offered (offered 0x%x)", field, sel, offered);
    return VTSM_OK;
}

static vtsm_status build_request(const struct vtsm_spdm_req *r, uint8_t *buf, size_t cap,
                                 size_t *len)
{
    struct vtsm_wr w = vtsm_wr_init(buf, cap);
    size_t len_at;
    const struct {
        uint8_t type;
        uint16_t bits;
    } structs[NUM_ALG_STRUCTS] = {
        /* AlgType order is ascending, as DSP0274 requires. */
        {SPDM_ALG_TYPE_DHE, r->opts.dhe},
        {SPDM_ALG_TYPE_AEAD, r->opts.aead},
        /* Same curves as BaseAsymAlgo; a responder without mutual auth selects none. */
        {SPDM_ALG_TYPE_REQ_BASE_ASYM, (uint16_t)r->opts.base_asym},
        {SPDM_ALG_TYPE_KEY_SCHEDULE, SPDM_KEY_SCHEDULE_SPDM},
    };

    VTSM_GUARD(vtsm_wr_u8(&w, r->info.version));
    VTSM_GUARD(vtsm_wr_u8(&w, SPDM_NEGOTIATE_ALGORITHMS));
    VTSM_GUARD(vtsm_wr_u8(&w, NUM_ALG_STRUCTS)); /* Param1 */
    VTSM_GUARD(vtsm_wr_u8(&w, 0));               /* Param2 */
    VTSM_GUARD(vtsm_wr_reserve(&w, 2, &len_at)); /* Length */
    VTSM_GUARD(vtsm_wr_u8(&w, SPDM_MEAS_SPEC_DMTF));
    VTSM_GUARD(vtsm_wr_u8(&w, SPDM_OPAQUE_DATA_FMT_1)); /* OtherParamsSupport */
    VTSM_GUARD(vtsm_wr_le32(&w, r->opts.base_asym));
    VTSM_GUARD(vtsm_wr_le32(&w, r->opts.base_hash));
    VTSM_GUARD(vtsm_wr_zeros(&w, 12)); /* Reserved */
    VTSM_GUARD(vtsm_wr_u8(&w, 0));     /* ExtAsymCount */
    VTSM_GUARD(vtsm_wr_u8(&w, 0));     /* ExtHashCount */
    VTSM_GUARD(vtsm_wr_u8(&w, 0));     /* Reserved */
    VTSM_GUARD(vtsm_wr_u8(&w, 0));     /* MELspecification (1.3) / Reserved */
    for (size_t i = 0; i < NUM_ALG_STRUCTS; i++) {
        VTSM_GUARD(vtsm_wr_u8(&w, structs[i].type));
        VTSM_GUARD(vtsm_wr_u8(&w, VTSM__ALG_COUNT_FIXED2));
        VTSM_GUARD(vtsm_wr_le16(&w, structs[i].bits));
    }
    vtsm_wr_patch_le16(&w, len_at, (uint16_t)w.len);
    *len = w.len;
    return VTSM_OK;
}

vtsm_status vtsm__req_negotiate_algorithms(struct vtsm_spdm_req *r)
{
    uint8_t req[NEG_FIXED_SIZE + NUM_ALG_STRUCTS * ALG_STRUCT_SIZE];
    size_t req_len;
    struct vtsm_rd rd;
    uint8_t nstructs, meas_spec, other, mel, ext_asym, ext_hash, prev_type = 0;
    uint16_t length;
    uint32_t meas_hash, asym, hash, pqc;
    uint16_t dhe = 0, aead = 0, req_asym = 0, ks = 0;
    bool seen_dhe = false, seen_aead = false, seen_ks = false;
    struct {
        uint8_t type, count;
        uint16_t bits;
    } st[NUM_ALG_STRUCTS];
    static const char msg[] = "ALGORITHMS";

    VTSM_GUARD(build_request(r, req, sizeof(req), &req_len));
    VTSM_GUARD(vtsm__req_xfer(r, false, req, req_len, SPDM_ALGORITHMS, &rd));

    /* header -> fixed part -> counts -> variable part */
    VTSM__RD(vtsm_rd_skip(&rd, 2), msg, "header");
    VTSM__RD(vtsm_rd_u8(&rd, &nstructs), msg, "Param1");
    VTSM__RD(vtsm_rd_skip(&rd, 1), msg, "Param2");
    VTSM__RD(vtsm_rd_le16(&rd, &length), msg, "Length");
    VTSM__RD(vtsm_rd_u8(&rd, &meas_spec), msg, "MeasurementSpecificationSel");
    VTSM__RD(vtsm_rd_u8(&rd, &other), msg, "OtherParamsSelection");
    VTSM__RD(vtsm_rd_le32(&rd, &meas_hash), msg, "MeasurementHashAlgo");
    VTSM__RD(vtsm_rd_le32(&rd, &asym), msg, "BaseAsymSel");
    VTSM__RD(vtsm_rd_le32(&rd, &hash), msg, "BaseHashSel");
    VTSM__RD(vtsm_rd_le32(&rd, &pqc), msg, "PqcAsymSel (1.4) / Reserved");
    VTSM__RD(vtsm_rd_skip(&rd, 7), msg, "Reserved");
    VTSM__RD(vtsm_rd_u8(&rd, &mel), msg, "MELspecificationSel");
    VTSM__RD(vtsm_rd_u8(&rd, &ext_asym), msg, "ExtAsymSelCount");
    VTSM__RD(vtsm_rd_u8(&rd, &ext_hash), msg, "ExtHashSelCount");
    VTSM__RD(vtsm_rd_skip(&rd, 2), msg, "Reserved");

    VTSM_ENSURE(r->info.version < VTSM_SPDM_V14 || pqc == 0, VTSM_E_PEER_ALGO,
                "ALGORITHMS PqcAsymSel 0x%08x though no PQC algorithm was offered", pqc);
    VTSM_ENSURE(ext_asym == 0 && ext_hash == 0, VTSM_E_PEER_ALGO,
                "ALGORITHMS selects extended algorithms (ExtAsymSelCount %u, ExtHashSelCount %u) "
                "though none were offered",
                ext_asym, ext_hash);
    VTSM_ENSURE(nstructs <= NUM_ALG_STRUCTS, VTSM_E_PEER_MALFORMED,
                "ALGORITHMS has %u RespAlgStructs, we sent %u", nstructs, NUM_ALG_STRUCTS);
    VTSM__RD(vtsm_rd_need(&rd, (size_t)nstructs * ALG_STRUCT_SIZE), msg, "RespAlgStruct");
    for (unsigned i = 0; i < nstructs; i++) {
        VTSM__RD(vtsm_rd_u8(&rd, &st[i].type), msg, "AlgType");
        VTSM__RD(vtsm_rd_u8(&rd, &st[i].count), msg, "AlgCount");
        VTSM__RD(vtsm_rd_le16(&rd, &st[i].bits), msg, "AlgSupported");
    }
    VTSM_ENSURE(rd.off == length, VTSM_E_PEER_MALFORMED,
                "ALGORITHMS Length %u does not match its %zu bytes of fields", length, rd.off);
    VTSM_GUARD(vtsm__req_end(r, &rd, msg));

    for (unsigned i = 0; i < nstructs; i++) {
        const uint8_t type = st[i].type;
        const uint16_t bits = st[i].bits;
        VTSM_ENSURE(type >= SPDM_ALG_TYPE_DHE && type <= SPDM_ALG_TYPE_KEY_SCHEDULE,
                    VTSM_E_PEER_MALFORMED, "ALGORITHMS AlgType %u was not requested", type);
        VTSM_ENSURE(type > prev_type, VTSM_E_PEER_MALFORMED,
                    "ALGORITHMS AlgType %u after %u: AlgStructs must be in ascending order", type,
                    prev_type);
        prev_type = type;
        VTSM_ENSURE(st[i].count == VTSM__ALG_COUNT_FIXED2, VTSM_E_PEER_ALGO,
                    "ALGORITHMS %s AlgCount 0x%02x: need FixedAlgCount 2 and no external "
                    "algorithms",
                    alg_type_name(type), st[i].count);
        switch (type) {
        case SPDM_ALG_TYPE_DHE:
            VTSM_GUARD(one_of(bits, r->opts.dhe, "DHE"));
            dhe = bits;
            seen_dhe = true;
            break;
        case SPDM_ALG_TYPE_AEAD:
            VTSM_GUARD(one_of(bits, r->opts.aead, "AEAD"));
            aead = bits;
            seen_aead = true;
            break;
        case SPDM_ALG_TYPE_REQ_BASE_ASYM:
            /* No mutual authentication: none is fine, else one of those offered. */
            if (bits != 0)
                VTSM_GUARD(one_of(bits, r->opts.base_asym, "ReqBaseAsymAlg"));
            req_asym = bits;
            break;
        default:
            VTSM_GUARD(one_of(bits, SPDM_KEY_SCHEDULE_SPDM, "KeySchedule"));
            ks = bits;
            seen_ks = true;
            break;
        }
    }

    /* Selections for what we use: signed measurements (DMTF spec), certificates,
     * KEY_EXCHANGE with OpaqueDataFmt1. */
    VTSM_ENSURE(meas_spec == SPDM_MEAS_SPEC_DMTF, VTSM_E_PEER_ALGO,
                "ALGORITHMS MeasurementSpecificationSel 0x%02x, need DMTF (0x01)", meas_spec);
    VTSM_ENSURE((other & OPAQUE_FMT_MASK) == SPDM_OPAQUE_DATA_FMT_1, VTSM_E_PEER_ALGO,
                "ALGORITHMS OtherParamsSelection 0x%02x does not select OpaqueDataFmt1", other);
    VTSM_ENSURE((other & ~OPAQUE_FMT_MASK) == 0, VTSM_E_PEER_ALGO,
                "ALGORITHMS OtherParamsSelection 0x%02x selects parameters not offered", other);
    if (r->info.version >= VTSM_SPDM_V13)
        VTSM_ENSURE(mel == 0, VTSM_E_PEER_ALGO,
                    "ALGORITHMS MELspecificationSel 0x%02x, none was offered", mel);
    VTSM_ENSURE(vtsm__onehot(meas_hash), VTSM_E_PEER_ALGO,
                "ALGORITHMS MeasurementHashAlgo 0x%08x does not select exactly one algorithm",
                meas_hash);
    VTSM_ENSURE(strcmp(vtsm_spdm_meas_hash_name(meas_hash), "unknown") != 0, VTSM_E_PEER_ALGO,
                "ALGORITHMS MeasurementHashAlgo 0x%08x selects a reserved bit", meas_hash);
    VTSM_GUARD(one_of(asym, r->opts.base_asym, "BaseAsymSel"));
    VTSM_GUARD(one_of(hash, r->opts.base_hash, "BaseHashSel"));
    VTSM_ENSURE(seen_dhe, VTSM_E_PEER_ALGO, "ALGORITHMS selects no DHE group (KEY_EX_CAP)");
    VTSM_ENSURE(seen_aead, VTSM_E_PEER_ALGO, "ALGORITHMS selects no AEAD (ENCRYPT/MAC_CAP)");
    VTSM_ENSURE(seen_ks, VTSM_E_PEER_ALGO, "ALGORITHMS selects no KeySchedule (KEY_EX_CAP)");

    VTSM_GUARD(vtsm_buf_append(&r->vca, req, req_len));
    VTSM_GUARD(vtsm_buf_append(&r->vca, rd.p, rd.off));

    r->asym_bit = asym;
    r->hash_bit = hash;
    r->dhe_bit = dhe;
    r->aead_bit = aead;
    r->req_asym_bit = req_asym;
    r->ks_bit = ks;
    r->other_params = other;
    r->meas_spec = meas_spec;
    r->info.asym = asym == SPDM_ASYM_ECDSA_P384 ? VTSM_ASYM_ECDSA_P384 : VTSM_ASYM_ECDSA_P256;
    r->info.hash = hash == SPDM_HASH_SHA384 ? VTSM_HASH_SHA384 : VTSM_HASH_SHA256;
    r->info.dhe = dhe == SPDM_DHE_SECP384R1 ? VTSM_DHE_SECP384R1 : VTSM_DHE_SECP256R1;
    r->info.aead = VTSM_AEAD_AES_256_GCM;
    r->info.meas_hash_algo = meas_hash;
    r->hash_len = vtsm_hash_size(r->info.hash);
    return VTSM_OK;
}
