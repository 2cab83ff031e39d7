/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DSP0274 END_SESSION / END_SESSION_ACK, inside an established session.
 *   END_SESSION:     header (Param1 bit 0 = NegotiatedStateClearing; nothing is cached
 *                    here, so there is nothing to clear) | nothing else
 *   END_SESSION_ACK: header (Param1, Param2 reserved)
 * The ACK goes out under the session's keys; then the session and its keys are wiped.
 */
#include "dev_internal.h"
#include "vtsm_guard.h"

vtsm_status dev_rsp_end_session(struct vtsm_dev *d, struct dev_req *q, struct vtsm_wr *w)
{
    struct vtsm_rd r = vtsm_rd_init(q->msg, q->len);

    (void)d;
    if (!q->sess)
        return dev_refuse(q, SPDM_ERR_SESSION_REQUIRED, 0, VTSM_E_STATE,
                          "END_SESSION outside a secure session");
    VTSM_GUARD(vtsm_rd_skip(&r, 4));
    VTSM_GUARD(dev_req_end(q, &r));
    VTSM_GUARD(dev_wr_header(q, w, SPDM_END_SESSION_ACK, 0, 0));
    q->sess->terminate = true;
    return VTSM_OK;
}
