/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DSP0274 "END_SESSION request and END_SESSION_ACK response messages": header only
 * (END_SESSION Param1 = EndSessionRequestAttributes; bit 0, Negotiated State Clearing
 * Indicator, is left clear so the device keeps the VCA state for the next session).
 */
#include "spdm_req_int.h"

vtsm_status vtsm_spdm_req_end_session(struct vtsm_spdm_req *r)
{
    vtsm_status st;
    struct vtsm_rd rd;

    VTSM_ENSURE(r != NULL, VTSM_E_INVAL, "end_session: NULL requester");
    VTSM_ENSURE(r->info.session_active, VTSM_E_STATE, "END_SESSION without a secure session");
    const uint8_t req[VTSM__SPDM_HDR] = {r->info.version, SPDM_END_SESSION, 0, 0};

    st = vtsm__req_xfer(r, true, req, sizeof(req), SPDM_END_SESSION_ACK, &rd);
    if (st == VTSM_OK) {
        if (vtsm_rd_skip(&rd, VTSM__SPDM_HDR) != VTSM_OK)
            st = vtsm_fail(VTSM_E_PEER_TRUNCATED, "END_SESSION_ACK truncated at header");
        else
            st = vtsm__req_end(r, &rd, "END_SESSION_ACK");
    }
    /* Torn down and wiped whether or not the device acknowledged. */
    vtsm__req_session_drop(r);
    return st;
}
