/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DSP0274 "GET_CAPABILITIES request and CAPABILITIES response messages" (1.2 / 1.3 layout:
 * header, Reserved, CTExponent, Reserved(2), Flags(4), DataTransferSize(4),
 * MaxSPDMmsgSize(4)).
 */
#include "spdm_req_int.h"

#define CAPS_MSG_SIZE 20

/* What a TSM requester does: secure sessions through KEY_EXCHANGE with encryption and MAC.
 * HBEAT and KEY_UPD (req_heartbeat.c, req_key_update.c; used only when the device sets
 * them too). No CERT/CHAL/MUT_AUTH (no requester identity), no HANDSHAKE_IN_THE_CLEAR
 * (FINISH travels inside the session). CHUNK_CAP: large messages in chunks (req_chunk.c). */
#define REQ_FLAGS                                                                                  \
    (SPDM_CAP_ENCRYPT | SPDM_CAP_MAC | SPDM_CAP_KEY_EX | SPDM_CAP_HBEAT | SPDM_CAP_KEY_UPD |       \
     SPDM_CAP_CHUNK)

/* 1.3 MULTI_KEY_CAP (Flags bits 27:26): 01b = only multi-key connections, 11b reserved. A
 * multi-key connection changes DIGESTS and the transcripts (message_d in TH), which we do
 * not implement; 10b leaves it to NEGOTIATE_ALGORITHMS, where we do not ask for it. */
#define CAP13_MULTI_KEY_MASK (3u << 26)
#define CAP13_MULTI_KEY_ONLY (1u << 26)

static const struct {
    uint32_t mask, value;
    const char *name;
} required_caps[] = {
    {SPDM_CAP_CERT, SPDM_CAP_CERT, "CERT_CAP"},
    {SPDM_CAP_MEAS_MASK, SPDM_CAP_MEAS_SIG, "MEAS_CAP (with signature, 10b)"},
    {SPDM_CAP_KEY_EX, SPDM_CAP_KEY_EX, "KEY_EX_CAP"},
    {SPDM_CAP_ENCRYPT, SPDM_CAP_ENCRYPT, "ENCRYPT_CAP"},
    {SPDM_CAP_MAC, SPDM_CAP_MAC, "MAC_CAP"},
};

vtsm_status vtsm__req_get_capabilities(struct vtsm_spdm_req *r)
{
    uint8_t req[CAPS_MSG_SIZE];
    struct vtsm_wr w = vtsm_wr_init(req, sizeof(req));
    struct vtsm_rd rd;
    uint8_t ct_exp;
    uint32_t flags, dts, max_msg;
    static const char msg[] = "CAPABILITIES";

    VTSM_GUARD(vtsm_wr_u8(&w, r->info.version));
    VTSM_GUARD(vtsm_wr_u8(&w, SPDM_GET_CAPABILITIES));
    VTSM_GUARD(vtsm_wr_u8(&w, 0)); /* Param1: 1.3 bit 0 (supported algorithms) not asked */
    VTSM_GUARD(vtsm_wr_u8(&w, 0)); /* Param2 */
    VTSM_GUARD(vtsm_wr_u8(&w, 0)); /* Reserved */
    VTSM_GUARD(vtsm_wr_u8(&w, r->opts.ct_exponent));
    VTSM_GUARD(vtsm_wr_le16(&w, 0)); /* Reserved */
    VTSM_GUARD(vtsm_wr_le32(&w, REQ_FLAGS));
    VTSM_GUARD(vtsm_wr_le32(&w, r->opts.data_transfer_size));
    VTSM_GUARD(vtsm_wr_le32(&w, r->opts.max_spdm_msg_size));

    VTSM_GUARD(vtsm__req_xfer(r, false, req, w.len, SPDM_CAPABILITIES, &rd));
    /* Param1/Param2 and Reserved are ignored on receipt. */
    VTSM__RD(vtsm_rd_skip(&rd, VTSM__SPDM_HDR), msg, "header");
    VTSM__RD(vtsm_rd_skip(&rd, 1), msg, "Reserved");
    VTSM__RD(vtsm_rd_u8(&rd, &ct_exp), msg, "CTExponent");
    VTSM__RD(vtsm_rd_skip(&rd, 2), msg, "Reserved");
    VTSM__RD(vtsm_rd_le32(&rd, &flags), msg, "Flags");
    VTSM__RD(vtsm_rd_le32(&rd, &dts), msg, "DataTransferSize");
    VTSM__RD(vtsm_rd_le32(&rd, &max_msg), msg, "MaxSPDMmsgSize");
    VTSM_GUARD(vtsm__req_end(r, &rd, msg));

    /* Flag consistency (DSP0274 CAPABILITIES Flags table). */
    VTSM_ENSURE((flags & SPDM_CAP_MEAS_MASK) != SPDM_CAP_MEAS_MASK, VTSM_E_PEER_MALFORMED,
                "CAPABILITIES MEAS_CAP = 11b is reserved");
    VTSM_ENSURE((flags & SPDM_CAP_PSK_MASK) != SPDM_CAP_PSK_MASK, VTSM_E_PEER_MALFORMED,
                "CAPABILITIES PSK_CAP = 11b is reserved");
    VTSM_ENSURE(!((flags & SPDM_CAP_CERT) && (flags & SPDM_CAP_PUB_KEY_ID)), VTSM_E_PEER_MALFORMED,
                "CAPABILITIES sets both CERT_CAP and PUB_KEY_ID_CAP");
    VTSM_ENSURE(dts >= VTSM__SPDM_MIN_DTS, VTSM_E_PEER_MALFORMED,
                "CAPABILITIES DataTransferSize %u below MinDataTransferSize %u", dts,
                VTSM__SPDM_MIN_DTS);
    VTSM_ENSURE(max_msg >= dts, VTSM_E_PEER_MALFORMED,
                "CAPABILITIES MaxSPDMmsgSize %u below DataTransferSize %u", max_msg, dts);
    VTSM_ENSURE((flags & SPDM_CAP_CHUNK) || max_msg == dts, VTSM_E_PEER_MALFORMED,
                "CAPABILITIES without CHUNK_CAP must have MaxSPDMmsgSize (%u) == "
                "DataTransferSize (%u)",
                max_msg, dts);

    if (r->info.version >= VTSM_SPDM_V13) {
        VTSM_ENSURE((flags & CAP13_MULTI_KEY_MASK) != CAP13_MULTI_KEY_MASK, VTSM_E_PEER_MALFORMED,
                    "CAPABILITIES MULTI_KEY_CAP = 11b is reserved");
        VTSM_ENSURE((flags & CAP13_MULTI_KEY_MASK) != CAP13_MULTI_KEY_ONLY, VTSM_E_PEER_CAPS,
                    "device CAPABILITIES MULTI_KEY_CAP = 01b (multi-key connections only), "
                    "which the TSM does not implement");
    }

    for (size_t i = 0; i < VTSM_ARRAY_SIZE(required_caps); i++)
        VTSM_ENSURE((flags & required_caps[i].mask) == required_caps[i].value, VTSM_E_PEER_CAPS,
                    "device CAPABILITIES Flags 0x%08x lack %s, which the TSM requires", flags,
                    required_caps[i].name);

    VTSM_GUARD(vtsm_buf_append(&r->vca, req, w.len));
    VTSM_GUARD(vtsm_buf_append(&r->vca, rd.p, rd.off));
    r->info.rsp_caps = flags;
    r->info.rsp_ct_exponent = ct_exp;
    r->info.rsp_data_transfer_size = dts;
    r->info.rsp_max_spdm_msg_size = max_msg;
    return VTSM_OK;
}
