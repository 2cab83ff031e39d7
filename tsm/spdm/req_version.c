/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DSP0274 "GET_VERSION request and VERSION response messages", and the VCA sequence
 * (GET_VERSION, GET_CAPABILITIES, NEGOTIATE_ALGORITHMS) that starts every connection.
 */
#include <string.h>

#include "spdm_req_int.h"

/* VERSION entry: Major [15:12], Minor [11:8], UpdateVersionNumber [7:4], Alpha [3:0];
 * the SPDMVersion byte is Major.Minor. */
static uint8_t entry_version(uint16_t entry)
{
    return (uint8_t)(entry >> 8);
}

vtsm_status vtsm__req_get_version(struct vtsm_spdm_req *r)
{
    /* GET_VERSION is always sent with SPDMVersion 1.0. */
    const uint8_t req[VTSM__SPDM_HDR] = {VTSM_SPDM_V10, SPDM_GET_VERSION, 0, 0};
    struct vtsm_rd rd;
    uint8_t count, best = 0;
    static const char msg[] = "VERSION";

    VTSM_GUARD(vtsm__req_xfer(r, false, req, sizeof(req), SPDM_VERSION, &rd));
    VTSM__RD(vtsm_rd_skip(&rd, VTSM__SPDM_HDR), msg, "header");
    VTSM__RD(vtsm_rd_skip(&rd, 1), msg, "Reserved");
    VTSM__RD(vtsm_rd_u8(&rd, &count), msg, "VersionNumberEntryCount");
    VTSM_ENSURE(count >= 1, VTSM_E_PEER_MALFORMED, "VERSION has VersionNumberEntryCount 0");
    VTSM__RD(vtsm_rd_need(&rd, (size_t)count * 2), msg, "VersionNumberEntry");
    for (unsigned i = 0; i < count; i++) {
        uint16_t e;
        VTSM__RD(vtsm_rd_le16(&rd, &e), msg, "VersionNumberEntry");
        uint8_t v = entry_version(e);
        if (v >= r->opts.min_version && v <= r->opts.max_version && v > best)
            best = v;
    }
    VTSM_GUARD(vtsm__req_end(r, &rd, msg));
    VTSM_ENSURE(best != 0, VTSM_E_PEER_VERSION,
                "VERSION lists no SPDM version within 0x%02x..0x%02x (%u entries)",
                r->opts.min_version, r->opts.max_version, count);

    /* message_a starts with GET_VERSION and VERSION (exact sizes, no DOE padding). */
    VTSM_GUARD(vtsm_buf_append(&r->vca, req, sizeof(req)));
    VTSM_GUARD(vtsm_buf_append(&r->vca, rd.p, rd.off));
    r->info.version = best;
    return VTSM_OK;
}

vtsm_status vtsm_spdm_req_init_connection(struct vtsm_spdm_req *r)
{
    vtsm_status st;

    VTSM_ENSURE(r != NULL, VTSM_E_INVAL, "init_connection: NULL requester");
    /* GET_VERSION resets the connection on both sides: every session and negotiated
     * value is gone, whatever happens next. */
    vtsm__req_conn_reset(r);
    VTSM_GUARD_GOTO(vtsm__req_get_version(r));
    VTSM_GUARD_GOTO(vtsm__req_get_capabilities(r));
    VTSM_GUARD_GOTO(vtsm__req_negotiate_algorithms(r));
    r->conn = VTSM__CONN_NEGOTIATED;
    return VTSM_OK;
out:
    vtsm__req_conn_reset(r);
    return st;
}
