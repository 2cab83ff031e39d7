/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DSP0274 FINISH / FINISH_RSP (1.2, 1.3, 1.4), inside the session under the handshake keys
 * (HANDSHAKE_IN_THE_CLEAR_CAP is not offered).
 *
 * FINISH:     header (Param1 bit 0 = signature included; Param2 = ReqSlotID) |
 *             OpaqueDataLength (2) | OpaqueData (1.4 only) |
 *             Signature (only with mutual authentication, never requested here) |
 *             RequesterVerifyData (H)
 * FINISH_RSP: header (Param1, Param2 reserved) | OpaqueDataLength (2) = 0 (1.4 only);
 *             ResponderVerifyData only in the clear.
 * The transcript takes the request up to the signature, and the whole response.
 *
 * RequesterVerifyData = HMAC(request finished_key, Hash(VCA || Hash(chain) || message K ||
 * FINISH header)). TH2 = Hash(... || FINISH || FINISH_RSP) gives the data keys, which
 * take over after FINISH_RSP has gone out (dev_core.c).
 */
#include <openssl/crypto.h>

#include "dev_internal.h"
#include "vtsm_guard.h"

vtsm_status dev_rsp_finish(struct vtsm_dev *d, struct dev_req *q, struct vtsm_wr *w)
{
    struct vtsm_rd r = vtsm_rd_init(q->msg, q->len);
    struct dev_session *s = q->sess;
    size_t hlen = vtsm_hash_size(d->conn.hash);
    const uint8_t *verify;
    uint8_t th[VTSM_HASH_MAX], expect[VTSM_HASH_MAX];
    vtsm_status st = VTSM_OK;

    if (!s)
        return dev_refuse(q, SPDM_ERR_SESSION_REQUIRED, 0, VTSM_E_STATE,
                          "FINISH outside a secure session (no HANDSHAKE_IN_THE_CLEAR_CAP)");
    if (s->state != DEV_SESS_HANDSHAKE)
        return dev_refuse(q, SPDM_ERR_UNEXPECTED_REQUEST, 0, VTSM_E_STATE,
                          "FINISH after the session was established");
    if (q->param1 & 1)
        return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_MALFORMED,
                          "FINISH carries a signature but mutual authentication was not "
                          "requested");
    VTSM_GUARD(vtsm_rd_skip(&r, 4));
    if (q->version >= VTSM_SPDM_V14) {
        uint16_t opaque_len = 0;
        bool cut = vtsm_rd_le16(&r, &opaque_len) != VTSM_OK;
        if (!cut && opaque_len > SPDM_MAX_OPAQUE_DATA)
            return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_OVERSIZED,
                              "FINISH OpaqueDataLength %u > %u", opaque_len, SPDM_MAX_OPAQUE_DATA);
        if (cut || vtsm_rd_skip(&r, opaque_len))
            return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_TRUNCATED,
                              "FINISH OpaqueData truncated");
    }
    size_t hdr_len = r.off; /* what precedes Signature / RequesterVerifyData */
    if (vtsm_rd_ref(&r, &verify, hlen))
        return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, VTSM_E_PEER_TRUNCATED,
                          "FINISH without RequesterVerifyData");
    VTSM_GUARD(dev_req_end(q, &r));

    size_t th_mark = s->th.len;
    VTSM_GUARD_GOTO(vtsm_buf_append(&s->th, q->msg, hdr_len));
    VTSM_GUARD_GOTO(vtsm_hash(d->conn.hash, s->th.data, s->th.len, th));
    VTSM_GUARD_GOTO(vtsm_spdm_verify_data(&s->ks, true, th, expect));
    if (CRYPTO_memcmp(expect, verify, hlen) != 0) {
        /* DSP0274: DecryptError for a RequesterVerifyData that does not verify; the
         * session is terminated after this ERROR. */
        s->th.len = th_mark;
        s->terminate = true;
        st = dev_refuse(q, SPDM_ERR_DECRYPT_ERROR, 0, VTSM_E_PEER_HMAC,
                        "FINISH RequesterVerifyData does not verify");
        goto out;
    }
    VTSM_GUARD_GOTO(vtsm_buf_append(&s->th, verify, hlen));
    VTSM_GUARD_GOTO(dev_wr_header(q, w, SPDM_FINISH_RSP, 0, 0));
    if (q->version >= VTSM_SPDM_V14)
        VTSM_GUARD_GOTO(vtsm_wr_le16(w, 0)); /* OpaqueDataLength: none */
    VTSM_GUARD_GOTO(vtsm_buf_append(&s->th, w->p, w->len));
    VTSM_GUARD_GOTO(vtsm_hash(d->conn.hash, s->th.data, s->th.len, s->th2));
    s->data_keys_pending = true;
out:
    if (st != VTSM_OK && !s->terminate)
        s->th.len = th_mark;
    OPENSSL_cleanse(th, sizeof(th));
    OPENSSL_cleanse(expect, sizeof(expect));
    return st;
}
