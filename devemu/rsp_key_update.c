/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DSP0274 KEY_UPDATE / KEY_UPDATE_ACK, inside an established session.
 *   KEY_UPDATE:     header (Param1 = KeyOperation, Param2 = Tag) | nothing else
 *   KEY_UPDATE_ACK: header (Param1 = KeyOperation, Param2 = Tag, both echoed)
 * UpdateKey (1): the request arrived under the old requester key; from now on requests are
 *   opened with the next requester key. The ACK goes out under the unchanged responder key.
 * UpdateAllKeys (2): as UpdateKey, and the responder key moves too before the ACK is
 *   sealed, so the ACK goes out under the new responder key.
 * VerifyNewKey (3): arrived under the new requester key (else the core could not open
 *   it): the update is complete.
 * A repeat of the last request (same KeyOperation and Tag) is acknowledged again without
 * switching anything. A new UpdateKey / UpdateAllKeys while VerifyNewKey is outstanding,
 * or VerifyNewKey with nothing to verify, is InvalidRequest.
 * Fault key-update-no-switch: UpdateKey / UpdateAllKeys are acknowledged, keys unchanged.
 */
#include "dev_internal.h"
#include "vtsm_guard.h"
#include "vtsm_log.h"

vtsm_status dev_rsp_key_update(struct vtsm_dev *d, struct dev_req *q, struct vtsm_wr *w)
{
    struct dev_session *s = q->sess;
    struct vtsm_rd r = vtsm_rd_init(q->msg, q->len);
    const uint8_t op = q->param1, tag = q->param2;

    if (!(dev_rsp_caps(d) & d->conn.req_flags & SPDM_CAP_KEY_UPD))
        return dev_refuse(q, SPDM_ERR_UNSUPPORTED_REQUEST, SPDM_KEY_UPDATE, VTSM_E_UNSUPPORTED,
                          "KEY_UPDATE needs KEY_UPD_CAP on both sides");
    VTSM_GUARD(vtsm_rd_skip(&r, 4));
    VTSM_GUARD(dev_req_end(q, &r));
    if (op < SPDM_KEY_UPDATE_OP_UPDATE_KEY || op > SPDM_KEY_UPDATE_OP_VERIFY_NEW_KEY)
        return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_MALFORMED,
                          "KEY_UPDATE KeyOperation %u is reserved", op);

    const bool repeat = s->ku_seen && s->ku_op == op && s->ku_tag == tag;
    if (!repeat) {
        if (op == SPDM_KEY_UPDATE_OP_VERIFY_NEW_KEY) {
            if (!s->ku_pending)
                return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_STATE,
                                  "KEY_UPDATE VerifyNewKey without a preceding key update");
            s->ku_pending = false;
            VTSM_INFO("session 0x%08x: new requester key verified", s->id);
        } else {
            if (s->ku_pending)
                return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_STATE,
                                  "KEY_UPDATE %s while VerifyNewKey is outstanding",
                                  op == SPDM_KEY_UPDATE_OP_UPDATE_KEY ? "UpdateKey"
                                                                      : "UpdateAllKeys");
            if (dev_fault(d, VTSM_DEV_FAULT_KEY_UPDATE_NO_SWITCH)) {
                VTSM_INFO("key-update-no-switch fault: acknowledging without new keys");
            } else {
                VTSM_GUARD(vtsm_spdm_ks_update(&s->ks, true));
                if (op == SPDM_KEY_UPDATE_OP_UPDATE_ALL_KEYS)
                    VTSM_GUARD(vtsm_spdm_ks_update(&s->ks, false));
                dev_secret_log_ks(d, &s->ks);
            }
            s->ku_pending = true;
        }
    }
    VTSM_GUARD(dev_wr_header(q, w, SPDM_KEY_UPDATE_ACK, op, tag));
    s->ku_seen = true;
    s->ku_op = op;
    s->ku_tag = tag;
    return VTSM_OK;
}
