/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DSP0274 "GET_CERTIFICATE request and CERTIFICATE response messages".
 * Request: header (Param1 = SlotID [3:0], Param2 = 0), Offset(2), Length(2).
 * Response: header (Param1 = SlotID [3:0]), PortionLength(2), RemainderLength(2),
 * CertChain portion. The chain (DSP0274 "Certificate chain format") is read in portions
 * until RemainderLength is 0; its Length field is a u16, so it never exceeds 65535 bytes.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "spdm_req_int.h"

static uint16_t portion_size(const struct vtsm_spdm_req *r)
{
    /* Both buffers must hold the CERTIFICATE response: ours for receiving it, and we stay
     * within the device's DataTransferSize as well. */
    uint32_t dts = r->opts.data_transfer_size;
    if (r->info.rsp_data_transfer_size < dts)
        dts = r->info.rsp_data_transfer_size;
    uint32_t n = dts - VTSM__CERT_RSP_HDR; /* dts >= 42 on both sides */
    return n > 0xFFFF ? 0xFFFF : (uint16_t)n;
}

vtsm_status vtsm_spdm_req_get_certificate(struct vtsm_spdm_req *r, uint8_t slot)
{
    vtsm_status st = VTSM_OK;
    struct vtsm_buf chain = {0};
    struct vtsm_certchain parsed = {0};
    uint8_t digest[VTSM_HASH_MAX];
    size_t total = 0;
    uint16_t want;
    static const char msg[] = "CERTIFICATE";

    VTSM_ENSURE(r != NULL, VTSM_E_INVAL, "get_certificate: NULL requester");
    VTSM_ENSURE(slot < SPDM_MAX_SLOTS, VTSM_E_INVAL, "certificate slot %u out of range 0..7", slot);
    VTSM_ENSURE(r->conn == VTSM__CONN_NEGOTIATED, VTSM_E_STATE,
                "GET_CERTIFICATE before the connection is negotiated (VCA)");
    VTSM_ENSURE(!r->digests_fetched || r->slot[slot].digest_valid, VTSM_E_NOT_FOUND,
                "slot %u is not in the device's ProvisionedSlotMask 0x%02x", slot,
                r->info.slot_mask);
    want = portion_size(r);

    for (;;) {
        uint8_t req[VTSM__SPDM_HDR + 4];
        struct vtsm_wr w = vtsm_wr_init(req, sizeof(req));
        struct vtsm_rd rd;
        uint8_t rsp_slot;
        uint16_t portion, remainder;
        const uint8_t *bytes;
        size_t offset = chain.len, this_total;
        uint16_t len = want;

        /* Ask for no more than the chain can still hold. */
        if (total != 0 && total - offset < len)
            len = (uint16_t)(total - offset);
        VTSM_GUARD_GOTO(vtsm_wr_u8(&w, r->info.version));
        VTSM_GUARD_GOTO(vtsm_wr_u8(&w, SPDM_GET_CERTIFICATE));
        VTSM_GUARD_GOTO(vtsm_wr_u8(&w, slot));
        VTSM_GUARD_GOTO(vtsm_wr_u8(&w, 0));
        VTSM_GUARD_GOTO(vtsm_wr_le16(&w, (uint16_t)offset));
        VTSM_GUARD_GOTO(vtsm_wr_le16(&w, len));

        VTSM_GUARD_GOTO(
            vtsm__req_xfer(r, r->info.session_active, req, w.len, SPDM_CERTIFICATE, &rd));
        VTSM__RD_GOTO(vtsm_rd_skip(&rd, 2), msg, "header");
        VTSM__RD_GOTO(vtsm_rd_u8(&rd, &rsp_slot), msg, "Param1 (SlotID)");
        VTSM__RD_GOTO(vtsm_rd_skip(&rd, 1), msg, "Param2");
        VTSM__RD_GOTO(vtsm_rd_le16(&rd, &portion), msg, "PortionLength");
        VTSM__RD_GOTO(vtsm_rd_le16(&rd, &remainder), msg, "RemainderLength");
        VTSM_ENSURE_GOTO((rsp_slot & VTSM__SLOT_MASK) == slot, VTSM_E_PEER_MALFORMED,
                         "CERTIFICATE is for slot %u, we asked for slot %u",
                         rsp_slot & VTSM__SLOT_MASK, slot);
        VTSM_ENSURE_GOTO(portion <= len, VTSM_E_PEER_MALFORMED,
                         "CERTIFICATE PortionLength %u exceeds the requested Length %u", portion,
                         len);
        this_total = offset + portion + (size_t)remainder;
        VTSM_ENSURE_GOTO(this_total <= VTSM_CERT_CHAIN_MAX, VTSM_E_PEER_OVERSIZED,
                         "certificate chain of slot %u would be %zu bytes, more than %u", slot,
                         this_total, VTSM_CERT_CHAIN_MAX);
        if (total == 0)
            total = this_total;
        VTSM_ENSURE_GOTO(this_total == total, VTSM_E_PEER_MALFORMED,
                         "CERTIFICATE at offset %zu implies a %zu-byte chain, earlier %zu", offset,
                         this_total, total);
        VTSM_ENSURE_GOTO(portion != 0 || remainder == 0, VTSM_E_PEER_MALFORMED,
                         "CERTIFICATE returned no bytes with RemainderLength %u", remainder);
        VTSM__RD_GOTO(vtsm_rd_ref(&rd, &bytes, portion), msg, "CertChain");
        VTSM_GUARD_GOTO(vtsm__req_end(r, &rd, msg));
        /* M1/M2 message B: this exchange, each message at its exact length. */
        if (!r->info.session_active) {
            VTSM_GUARD_GOTO(vtsm_buf_append(&r->msg_b, req, w.len));
            VTSM_GUARD_GOTO(vtsm_buf_append(&r->msg_b, rd.p, rd.off));
        }
        VTSM_GUARD_GOTO(vtsm_buf_append(&chain, bytes, portion));
        if (remainder == 0)
            break;
    }
    VTSM_ENSURE_GOTO(chain.len >= 4 + r->hash_len, VTSM_E_PEER_CHAIN,
                     "certificate chain of slot %u is %zu bytes, shorter than its header", slot,
                     chain.len);

    /* The DIGESTS entry of a slot is the hash of the whole SPDM chain. */
    VTSM_GUARD_GOTO(vtsm_hash(r->info.hash, chain.data, chain.len, digest));
    if (r->slot[slot].digest_valid)
        VTSM_ENSURE_GOTO(
            CRYPTO_memcmp(digest, r->slot[slot].digest, r->hash_len) == 0, VTSM_E_PEER_DIGEST,
            "hash of the slot %u certificate chain differs from its DIGESTS entry", slot);
    VTSM_GUARD_GOTO(
        vtsm_certchain_parse(chain.data, chain.len, r->info.hash, r->info.asym, &parsed));

    /* Commit: replace whatever the slot held. */
    vtsm_buf_free(&r->slot[slot].raw);
    vtsm_certchain_free(&r->slot[slot].chain);
    r->slot[slot].raw = chain;
    r->slot[slot].chain = parsed;
    memset(&chain, 0, sizeof(chain));
    memset(&parsed, 0, sizeof(parsed));
    memcpy(r->slot[slot].digest, digest, r->hash_len);
    r->slot[slot].chain_valid = true;
    st = VTSM_OK;
out:
    vtsm_buf_free(&chain);
    vtsm_certchain_free(&parsed);
    return st;
}
