/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DSP0274 GET_CAPABILITIES / CAPABILITIES (1.2 and 1.3 layout, 20 bytes each way):
 *   header (4) | Reserved (1) | CTExponent (1) | Reserved (2) | Flags (4) |
 *   DataTransferSize (4) | MaxSPDMmsgSize (4)
 * The SPDMVersion of this request fixes the connection's version. Only after VERSION.
 */
#include "dev_internal.h"
#include "vtsm_guard.h"

/* DSP0274 1.3 requester flags outside the 1.2 set: EP_INFO_CAP [23:22], MULTI_KEY_CAP
 * [27:26] (both with a reserved value 3). */
#define REQ_EP_INFO(f)   (((f) >> 22) & 3u)
#define REQ_MULTI_KEY(f) (((f) >> 26) & 3u)

/* The requester's Flags must be a legal combination (DSP0274 GET_CAPABILITIES flag rules);
 * returns a description of the broken rule or NULL. */
static const char *req_flags_rule(uint32_t f, uint8_t version)
{
    uint32_t psk = (f & SPDM_CAP_PSK_MASK) >> 10;
    bool key_ex = f & SPDM_CAP_KEY_EX;
    bool enc = f & SPDM_CAP_ENCRYPT, mac = f & SPDM_CAP_MAC;

    if (psk >= 2)
        return "PSK_CAP uses a reserved value";
    if ((key_ex || psk) && !enc && !mac)
        return "KEY_EX_CAP/PSK_CAP without ENCRYPT_CAP or MAC_CAP";
    if (!key_ex && !psk &&
        (f & (SPDM_CAP_ENCRYPT | SPDM_CAP_MAC | SPDM_CAP_HANDSHAKE_IN_THE_CLEAR | SPDM_CAP_HBEAT |
              SPDM_CAP_KEY_UPD)))
        return "ENCRYPT/MAC/HANDSHAKE_IN_THE_CLEAR/HBEAT/KEY_UPD_CAP without KEY_EX_CAP or "
               "PSK_CAP";
    if (!key_ex && (f & SPDM_CAP_HANDSHAKE_IN_THE_CLEAR))
        return "HANDSHAKE_IN_THE_CLEAR_CAP without KEY_EX_CAP";
    if ((f & SPDM_CAP_CERT) && (f & SPDM_CAP_PUB_KEY_ID))
        return "CERT_CAP and PUB_KEY_ID_CAP both set";
    if (!(f & (SPDM_CAP_CERT | SPDM_CAP_PUB_KEY_ID)) && (f & (SPDM_CAP_CHAL | SPDM_CAP_MUT_AUTH)))
        return "CHAL_CAP/MUT_AUTH_CAP without CERT_CAP or PUB_KEY_ID_CAP";
    if ((f & SPDM_CAP_MUT_AUTH) && !key_ex && !(f & SPDM_CAP_CHAL))
        return "MUT_AUTH_CAP without KEY_EX_CAP or CHAL_CAP";
    if (version >= VTSM_SPDM_V13 && (REQ_EP_INFO(f) == 3 || REQ_MULTI_KEY(f) == 3))
        return "EP_INFO_CAP/MULTI_KEY_CAP use a reserved value";
    if (version >= VTSM_SPDM_V13 && REQ_MULTI_KEY(f) && (f & SPDM_CAP_PUB_KEY_ID))
        return "MULTI_KEY_CAP with PUB_KEY_ID_CAP";
    return NULL;
}

static bool version_supported(const struct vtsm_dev *d, uint8_t v)
{
    return (v == VTSM_SPDM_V12 && (d->cfg.versions & VTSM_DEV_VER_12)) ||
           (v == VTSM_SPDM_V13 && (d->cfg.versions & VTSM_DEV_VER_13)) ||
           (v == VTSM_SPDM_V14 && (d->cfg.versions & VTSM_DEV_VER_14));
}

uint32_t dev_rsp_caps(const struct vtsm_dev *d)
{
    return DEV_RSP_CAPS | (d->cfg.key_update ? SPDM_CAP_KEY_UPD : 0) |
           (d->cfg.heartbeat ? SPDM_CAP_HBEAT : 0) | (d->cfg.challenge ? SPDM_CAP_CHAL : 0) |
           (d->cfg.max_spdm_msg_size > d->cfg.data_transfer_size ? SPDM_CAP_CHUNK : 0);
}

vtsm_status dev_rsp_capabilities(struct vtsm_dev *d, struct dev_req *q, struct vtsm_wr *w)
{
    struct vtsm_rd r = vtsm_rd_init(q->msg, q->len);
    uint8_t ct, rsvd;
    uint16_t rsvd2;
    uint32_t flags, dts, max_msg;

    if (d->conn.state != DEV_CONN_AFTER_VERSION)
        return dev_refuse(q, SPDM_ERR_UNEXPECTED_REQUEST, 0, VTSM_E_STATE,
                          "GET_CAPABILITIES only right after VERSION");
    if (!version_supported(d, q->version))
        return dev_refuse(q, SPDM_ERR_VERSION_MISMATCH, 0, VTSM_E_PEER_VERSION,
                          "GET_CAPABILITIES with unsupported SPDMVersion 0x%02x", q->version);
    /* From here the requester speaks a version we share: refusals answer in it. */
    q->err_version = q->version;

    VTSM_GUARD(vtsm_rd_skip(&r, 4));
    if (vtsm_rd_u8(&r, &rsvd) || vtsm_rd_u8(&r, &ct) || vtsm_rd_le16(&r, &rsvd2) ||
        vtsm_rd_le32(&r, &flags) || vtsm_rd_le32(&r, &dts) || vtsm_rd_le32(&r, &max_msg))
        return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_TRUNCATED,
                          "GET_CAPABILITIES shorter than 20 bytes (%zu)", q->len);
    VTSM_GUARD(dev_req_end(q, &r));
    const char *rule = req_flags_rule(flags, q->version);
    if (rule)
        return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_MALFORMED,
                          "GET_CAPABILITIES Flags 0x%08x: %s", flags, rule);
    if (dts < DEV_MIN_DATA_TRANSFER_SIZE || dts > max_msg)
        return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_MALFORMED,
                          "DataTransferSize %u must be >= %u and <= MaxSPDMmsgSize %u", dts,
                          DEV_MIN_DATA_TRANSFER_SIZE, max_msg);
    if (!(flags & SPDM_CAP_CHUNK) && dts != max_msg)
        return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_MALFORMED,
                          "without CHUNK_CAP DataTransferSize %u must equal MaxSPDMmsgSize %u", dts,
                          max_msg);

    VTSM_GUARD(dev_wr_header(q, w, SPDM_CAPABILITIES, 0, 0));
    VTSM_GUARD(vtsm_wr_u8(w, 0));
    VTSM_GUARD(vtsm_wr_u8(w, d->cfg.ct_exponent));
    VTSM_GUARD(vtsm_wr_le16(w, 0));
    VTSM_GUARD(vtsm_wr_le32(w, dev_rsp_caps(d)));
    VTSM_GUARD(vtsm_wr_le32(w, d->cfg.data_transfer_size));
    VTSM_GUARD(vtsm_wr_le32(w, d->cfg.max_spdm_msg_size));

    VTSM_GUARD(vtsm_buf_append(&d->conn.vca, q->msg, r.off));
    VTSM_GUARD(vtsm_buf_append(&d->conn.vca, w->p, w->len));
    d->conn.version = q->version;
    d->conn.req_flags = flags;
    d->conn.req_ct_exponent = ct;
    d->conn.req_data_transfer_size = dts;
    d->conn.req_max_spdm_msg_size = max_msg;
    d->conn.state = DEV_CONN_AFTER_CAPS;
    return VTSM_OK;
}
