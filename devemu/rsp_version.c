/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DSP0274 GET_VERSION / VERSION.
 *   GET_VERSION: SPDMVersion = 0x10 | 0x84 | Param1, Param2 reserved
 *   VERSION:     0x10 | 0x04 | 0 | 0 | Reserved (1) | VersionNumberEntryCount (1) |
 *                VersionNumberEntry (2 each: Major [15:12], Minor [11:8], Update [7:4],
 *                Alpha [3:0])
 * A GET_VERSION restarts the connection: every session ends, everything negotiated is
 * forgotten and message A (VCA) starts over with this exchange.
 */
#include "dev_internal.h"
#include "vtsm_guard.h"

vtsm_status dev_rsp_version(struct vtsm_dev *d, struct dev_req *q, struct vtsm_wr *w)
{
    struct vtsm_rd r = vtsm_rd_init(q->msg, q->len);

    if (q->version != VTSM_SPDM_V10)
        return dev_refuse(q, SPDM_ERR_VERSION_MISMATCH, 0, VTSM_E_PEER_VERSION,
                          "GET_VERSION must carry SPDMVersion 0x10, got 0x%02x", q->version);
    VTSM_GUARD(vtsm_rd_skip(&r, 4));
    VTSM_GUARD(dev_req_end(q, &r));

    /* Update state: the connection restarts here, whatever it was. */
    dev_session_end(d);
    dev_conn_reset(d);

    uint8_t n = 0;
    uint16_t entries[3];
    if (d->cfg.versions & VTSM_DEV_VER_12)
        entries[n++] = (uint16_t)VTSM_SPDM_V12 << 8;
    if (d->cfg.versions & VTSM_DEV_VER_13)
        entries[n++] = (uint16_t)VTSM_SPDM_V13 << 8;
    if (d->cfg.versions & VTSM_DEV_VER_14)
        entries[n++] = (uint16_t)VTSM_SPDM_V14 << 8;

    VTSM_GUARD(dev_wr_header(q, w, SPDM_VERSION, 0, 0));
    VTSM_GUARD(vtsm_wr_u8(w, 0));
    VTSM_GUARD(vtsm_wr_u8(w, n));
    for (uint8_t i = 0; i < n; i++)
        VTSM_GUARD(vtsm_wr_le16(w, entries[i]));

    VTSM_GUARD(vtsm_buf_append(&d->conn.vca, q->msg, 4));
    VTSM_GUARD(vtsm_buf_append(&d->conn.vca, w->p, w->len));
    d->conn.state = DEV_CONN_AFTER_VERSION;
    return VTSM_OK;
}
