/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DSP0274 "KEY_UPDATE request and KEY_UPDATE_ACK response messages" (inside a session):
 *   KEY_UPDATE:     header (Param1 = KeyOperation, Param2 = Tag)
 *   KEY_UPDATE_ACK: header (Param1 = KeyOperation, Param2 = Tag, both echoed)
 *
 * Order of the key switches (the responder's side is in devemu/rsp_key_update.c):
 *  1. KEY_UPDATE(UpdateKey | UpdateAllKeys) goes out under the current requester key.
 *  2. The responder moves its receive key to the next requester secret. For UpdateAllKeys
 *     it also moves its send key first, so the ACK arrives under the NEW responder key;
 *     for UpdateKey the ACK arrives under the unchanged responder key.
 *  3. Only an ACK that authenticates and echoes KeyOperation and Tag makes the requester
 *     move its send key. A device that refuses UpdateKey with an ERROR leaves the session
 *     as it was; any other failure ends the session (the sides' keys may differ).
 *  4. KEY_UPDATE(VerifyNewKey) goes out under the new requester key; the responder's ACK
 *     confirms it decrypted it, and the update is final (never reverted after step 3).
 */
#include "spdm_req_int.h"

static const char msg[] = "KEY_UPDATE_ACK";

static const char *op_name(uint8_t op)
{
    switch (op) {
    case SPDM_KEY_UPDATE_OP_UPDATE_KEY:
        return "UpdateKey";
    case SPDM_KEY_UPDATE_OP_UPDATE_ALL_KEYS:
        return "UpdateAllKeys";
    default:
        return "VerifyNewKey";
    }
}

/* One KEY_UPDATE / KEY_UPDATE_ACK exchange with a fresh random Tag. */
static vtsm_status key_update_xfer(struct vtsm_spdm_req *r, uint8_t op)
{
    uint8_t tag, p1, p2;
    struct vtsm_rd rd;

    VTSM_GUARD(vtsm_random(&tag, 1));
    const uint8_t req[VTSM__SPDM_HDR] = {r->info.version, SPDM_KEY_UPDATE, op, tag};
    VTSM_GUARD(vtsm__req_xfer(r, true, req, sizeof(req), SPDM_KEY_UPDATE_ACK, &rd));
    VTSM__RD(vtsm_rd_skip(&rd, 2), msg, "header");
    VTSM__RD(vtsm_rd_u8(&rd, &p1), msg, "Param1 (KeyOperation)");
    VTSM__RD(vtsm_rd_u8(&rd, &p2), msg, "Param2 (Tag)");
    VTSM_GUARD(vtsm__req_end(r, &rd, msg));
    VTSM_ENSURE(p1 == op && p2 == tag, VTSM_E_PEER_MALFORMED,
                "KEY_UPDATE_ACK echoes KeyOperation %u / Tag 0x%02x, the request carried %s (%u) "
                "/ Tag 0x%02x (DSP0274: both are echoed)",
                p1, p2, op_name(op), op, tag);
    return VTSM_OK;
}

vtsm_status vtsm_spdm_req_key_update(struct vtsm_spdm_req *r, bool all_keys)
{
    const uint8_t op =
        all_keys ? SPDM_KEY_UPDATE_OP_UPDATE_ALL_KEYS : SPDM_KEY_UPDATE_OP_UPDATE_KEY;
    vtsm_status st;

    VTSM_ENSURE(r != NULL, VTSM_E_INVAL, "key_update: NULL requester");
    VTSM_ENSURE(r->info.session_active, VTSM_E_STATE, "KEY_UPDATE without a secure session");
    VTSM_ENSURE(r->info.rsp_caps & SPDM_CAP_KEY_UPD, VTSM_E_PEER_CAPS,
                "device CAPABILITIES Flags 0x%08x lack KEY_UPD_CAP: KEY_UPDATE may not be sent "
                "(DSP0274)",
                r->info.rsp_caps);

    /* UpdateAllKeys: the ACK comes under the responder's next key. */
    if (all_keys) {
        st = vtsm_spdm_ks_update(&r->ks, false);
        if (st != VTSM_OK) {
            vtsm__req_session_drop(r);
            return st;
        }
    }
    st = key_update_xfer(r, op);
    if (st != VTSM_OK) {
        /* Only a device that refused UpdateKey with an authenticated ERROR has certainly
         * moved nothing; after anything else (or with our receive key already moved) the
         * two sides' keys can no longer be trusted to match, and the session ends. */
        if (r->keys_ready && (all_keys || st != VTSM_E_PEER_ERROR))
            vtsm__req_session_drop(r);
        return st;
    }
    /* The responder took the update: our send key follows. Final from here on. */
    st = vtsm_spdm_ks_update(&r->ks, true);
    if (st == VTSM_OK)
        st = key_update_xfer(r, SPDM_KEY_UPDATE_OP_VERIFY_NEW_KEY);
    if (st != VTSM_OK) {
        /* The device did not confirm our new key: the session ends here (no reverting to
         * the old key once the ACK was accepted). */
        if (r->keys_ready)
            vtsm__req_session_drop(r);
        return st;
    }
    r->info.key_updates++;
    return VTSM_OK;
}
