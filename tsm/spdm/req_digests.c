/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DSP0274 "GET_DIGESTS request and DIGESTS response messages".
 * DIGESTS: header, Param1 = SupportedSlotMask (1.3; reserved in 1.2),
 * Param2 = ProvisionedSlotMask (1.3; SlotMask in 1.2), then one digest of the negotiated
 * hash per bit of Param2, lowest slot first. (The 1.3 KeyPairID / CertificateInfo /
 * KeyUsageMask arrays appear only with MULTI_KEY_CONN, which we never negotiate.)
 */
#include <string.h>

#include <openssl/crypto.h>

#include "spdm_req_int.h"

vtsm_status vtsm_spdm_req_get_digests(struct vtsm_spdm_req *r, uint8_t *slot_mask,
                                      uint8_t digests[SPDM_MAX_SLOTS][VTSM_HASH_MAX])
{
    struct vtsm_rd rd;
    uint8_t supported, provisioned;
    uint8_t got[SPDM_MAX_SLOTS][VTSM_HASH_MAX];
    static const char msg[] = "DIGESTS";

    VTSM_ENSURE(r != NULL, VTSM_E_INVAL, "get_digests: NULL requester");
    VTSM_ENSURE(r->conn == VTSM__CONN_NEGOTIATED, VTSM_E_STATE,
                "GET_DIGESTS before the connection is negotiated (VCA)");
    const uint8_t req[VTSM__SPDM_HDR] = {r->info.version, SPDM_GET_DIGESTS, 0, 0};

    VTSM_GUARD(vtsm__req_xfer(r, r->info.session_active, req, sizeof(req), SPDM_DIGESTS, &rd));
    VTSM__RD(vtsm_rd_skip(&rd, 2), msg, "header");
    VTSM__RD(vtsm_rd_u8(&rd, &supported), msg, "Param1");
    VTSM__RD(vtsm_rd_u8(&rd, &provisioned), msg, "Param2 (slot mask)");
    if (r->info.version >= VTSM_SPDM_V13) {
        VTSM_ENSURE((provisioned & ~supported) == 0, VTSM_E_PEER_MALFORMED,
                    "DIGESTS ProvisionedSlotMask 0x%02x names slots outside SupportedSlotMask "
                    "0x%02x",
                    provisioned, supported);
    } else {
        supported = provisioned; /* 1.2: Param1 is reserved */
    }
    memset(got, 0, sizeof(got));
    for (unsigned s = 0; s < SPDM_MAX_SLOTS; s++) {
        if (provisioned & (1u << s))
            VTSM__RD(vtsm_rd_bytes(&rd, got[s], r->hash_len), msg, "Digest");
    }
    VTSM_GUARD(vtsm__req_end(r, &rd, msg));
    /* M1/M2 message B: this exchange, each message at its exact length. */
    if (!r->info.session_active) {
        VTSM_GUARD(vtsm_buf_append(&r->msg_b, req, sizeof(req)));
        VTSM_GUARD(vtsm_buf_append(&r->msg_b, rd.p, rd.off));
    }

    /* A slot whose digest changed (or vanished) no longer matches a chain we hold. */
    for (unsigned s = 0; s < SPDM_MAX_SLOTS; s++) {
        struct vtsm__slot *sl = &r->slot[s];
        bool present = (provisioned & (1u << s)) != 0;
        if (sl->chain_valid && (!present || CRYPTO_memcmp(sl->digest, got[s], r->hash_len) != 0)) {
            vtsm_buf_free(&sl->raw);
            vtsm_certchain_free(&sl->chain);
            memset(&sl->chain, 0, sizeof(sl->chain));
            sl->chain_valid = false;
        }
        sl->digest_valid = present;
        memcpy(sl->digest, got[s], sizeof(sl->digest));
    }
    r->digests_fetched = true;
    r->supported_slot_mask = supported;
    r->info.slot_mask = provisioned;
    if (slot_mask != NULL)
        *slot_mask = provisioned;
    if (digests != NULL)
        memcpy(digests, got, sizeof(got));
    return VTSM_OK;
}
