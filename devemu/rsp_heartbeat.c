/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DSP0274 HEARTBEAT / HEARTBEAT_ACK, inside an established session: header only both
 * ways (Param1 / Param2 reserved). The emulator reports a HeartbeatPeriod but never ends a
 * session for a missing heartbeat.
 */
#include "dev_internal.h"
#include "vtsm_guard.h"

vtsm_status dev_rsp_heartbeat(struct vtsm_dev *d, struct dev_req *q, struct vtsm_wr *w)
{
    struct vtsm_rd r = vtsm_rd_init(q->msg, q->len);

    if (!(dev_rsp_caps(d) & d->conn.req_flags & SPDM_CAP_HBEAT))
        return dev_refuse(q, SPDM_ERR_UNSUPPORTED_REQUEST, SPDM_HEARTBEAT, VTSM_E_UNSUPPORTED,
                          "HEARTBEAT needs HBEAT_CAP on both sides");
    VTSM_GUARD(vtsm_rd_skip(&r, 4));
    VTSM_GUARD(dev_req_end(q, &r));
    return dev_wr_header(q, w, SPDM_HEARTBEAT_ACK, 0, 0);
}
