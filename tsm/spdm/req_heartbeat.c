/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DSP0274 "HEARTBEAT request and HEARTBEAT_ACK response messages" (inside a session):
 * header only both ways (Param1 / Param2 reserved). The responder's HeartbeatPeriod from
 * KEY_EXCHANGE_RSP is in vtsm_spdm_info.heartbeat_period; scheduling is the caller's.
 */
#include "spdm_req_int.h"

vtsm_status vtsm_spdm_req_heartbeat(struct vtsm_spdm_req *r)
{
    struct vtsm_rd rd;

    VTSM_ENSURE(r != NULL, VTSM_E_INVAL, "heartbeat: NULL requester");
    VTSM_ENSURE(r->info.session_active, VTSM_E_STATE, "HEARTBEAT without a secure session");
    VTSM_ENSURE(r->info.rsp_caps & SPDM_CAP_HBEAT, VTSM_E_PEER_CAPS,
                "device CAPABILITIES Flags 0x%08x lack HBEAT_CAP: HEARTBEAT may not be sent "
                "(DSP0274)",
                r->info.rsp_caps);
    const uint8_t req[VTSM__SPDM_HDR] = {r->info.version, SPDM_HEARTBEAT, 0, 0};

    VTSM_GUARD(vtsm__req_xfer(r, true, req, sizeof(req), SPDM_HEARTBEAT_ACK, &rd));
    VTSM__RD(vtsm_rd_skip(&rd, VTSM__SPDM_HDR), "HEARTBEAT_ACK", "header");
    return vtsm__req_end(r, &rd, "HEARTBEAT_ACK");
}
