/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Naming DOE objects and SPDM messages for traces.
 */
#include "vtsm_trace.h"

#include <stdio.h>

#include "vtsm_doe.h"
#include "vtsm_idekm.h"
#include "vtsm_spdm_defs.h"
#include "vtsm_tdisp.h"

const char *vtsm_spdm_code_name(uint8_t code)
{
    switch (code) {
#define NAME(c)                                                                                    \
    case SPDM_##c:                                                                                 \
        return #c;
        NAME(GET_DIGESTS)
        NAME(GET_CERTIFICATE)
        NAME(CHALLENGE)
        NAME(GET_VERSION)
        NAME(CHUNK_SEND)
        NAME(CHUNK_GET)
        NAME(GET_MEASUREMENTS)
        NAME(GET_CAPABILITIES)
        NAME(NEGOTIATE_ALGORITHMS)
        NAME(KEY_EXCHANGE)
        NAME(FINISH)
        NAME(PSK_EXCHANGE)
        NAME(PSK_FINISH)
        NAME(HEARTBEAT)
        NAME(KEY_UPDATE)
        NAME(GET_ENCAPSULATED_REQUEST)
        NAME(DELIVER_ENCAPSULATED_RESPONSE)
        NAME(END_SESSION)
        NAME(GET_CSR)
        NAME(SET_CERTIFICATE)
        NAME(GET_MEASUREMENT_EXTENSION_LOG)
        NAME(GET_ENDPOINT_INFO)
        NAME(GET_SUPPORTED_EVENT_TYPES)
        NAME(SUBSCRIBE_EVENT_TYPES)
        NAME(SEND_EVENT)
        NAME(GET_KEY_PAIR_INFO)
        NAME(SET_KEY_PAIR_INFO)
        NAME(VENDOR_DEFINED_REQUEST)
        NAME(RESPOND_IF_READY)
        NAME(DIGESTS)
        NAME(CERTIFICATE)
        NAME(CHALLENGE_AUTH)
        NAME(VERSION)
        NAME(CHUNK_SEND_ACK)
        NAME(CHUNK_RESPONSE)
        NAME(ENDPOINT_INFO)
        NAME(MEASUREMENTS)
        NAME(CAPABILITIES)
        NAME(ALGORITHMS)
        NAME(KEY_EXCHANGE_RSP)
        NAME(FINISH_RSP)
        NAME(PSK_EXCHANGE_RSP)
        NAME(PSK_FINISH_RSP)
        NAME(HEARTBEAT_ACK)
        NAME(KEY_UPDATE_ACK)
        NAME(ENCAPSULATED_REQUEST)
        NAME(ENCAPSULATED_RESPONSE_ACK)
        NAME(END_SESSION_ACK)
        NAME(CSR)
        NAME(SET_CERTIFICATE_RSP)
        NAME(MEASUREMENT_EXTENSION_LOG)
        NAME(SUPPORTED_EVENT_TYPES)
        NAME(SUBSCRIBE_EVENT_TYPES_ACK)
        NAME(EVENT_ACK)
        NAME(KEY_PAIR_INFO)
        NAME(SET_KEY_PAIR_INFO_ACK)
        NAME(VENDOR_DEFINED_RESPONSE)
        NAME(ERROR)
#undef NAME
    default:
        return "unknown";
    }
}

/* The protocol a PCI-SIG vendor-defined message carries, named with its message. */
static void vendor_payload(const uint8_t *msg, size_t len, char *buf, size_t cap, int used)
{
    /* SPDM header (4), StandardID (2), Len (1), VendorID (Len), ReqLength/RspLength (2) */
    if (len < 7)
        return;
    uint16_t standard = (uint16_t)(msg[4] | msg[5] << 8);
    size_t vlen = msg[6];
    size_t at = 7 + vlen + 2;
    if (standard != SPDM_REGISTRY_ID_PCISIG || vlen != 2 || len <= at ||
        (uint16_t)(msg[7] | msg[8] << 8) != PCISIG_VENDOR_ID)
        return;
    if ((size_t)used >= cap)
        return;
    const uint8_t *p = msg + at;
    size_t n = len - at;
    if (p[0] == PCI_PROTOCOL_ID_IDE_KM && n >= 2)
        snprintf(buf + used, cap - (size_t)used, " IDE_KM %s", vtsm_idekm_object_name(p[1]));
    else if (p[0] == PCI_PROTOCOL_ID_TDISP && n >= 3)
        snprintf(buf + used, cap - (size_t)used, " TDISP %s", vtsm_tdisp_type_name(p[2]));
    else
        snprintf(buf + used, cap - (size_t)used, " PCI-SIG protocol 0x%02x", p[0]);
}

void vtsm_trace_spdm(const uint8_t *msg, size_t len, char *buf, size_t cap)
{
    if (!buf || cap == 0)
        return;
    buf[0] = '\0';
    if (!msg || len < 2) {
        snprintf(buf, cap, "SPDM truncated (%zu bytes)", len);
        return;
    }
    int used = snprintf(buf, cap, "SPDM %u.%u %s", msg[0] >> 4, msg[0] & 0xFu,
                        vtsm_spdm_code_name(msg[1]));
    if (used < 0)
        return;
    if (msg[1] == SPDM_ERROR && len >= 3 && (size_t)used < cap)
        snprintf(buf + used, cap - (size_t)used, " 0x%02x", msg[2]);
    else if (msg[1] == SPDM_VENDOR_DEFINED_REQUEST || msg[1] == SPDM_VENDOR_DEFINED_RESPONSE)
        vendor_payload(msg, len, buf, cap, used);
}

void vtsm_trace_doe(const uint8_t *obj, size_t len, char *buf, size_t cap)
{
    if (!buf || cap == 0)
        return;
    buf[0] = '\0';
    if (!obj || len < VTSM_DOE_HEADER_SIZE) {
        snprintf(buf, cap, "DOE truncated (%zu bytes)", len);
        return;
    }
    uint16_t vendor = (uint16_t)(obj[0] | obj[1] << 8);
    uint8_t type = obj[2];
    const uint8_t *p = obj + VTSM_DOE_HEADER_SIZE;
    size_t n = len - VTSM_DOE_HEADER_SIZE;
    if (vendor == VTSM_DOE_VENDOR_PCISIG && type == VTSM_DOE_TYPE_DISCOVERY)
        snprintf(buf, cap, "DOE discovery");
    else if (vendor == VTSM_DOE_VENDOR_PCISIG && type == VTSM_DOE_TYPE_SPDM)
        vtsm_trace_spdm(p, n, buf, cap);
    else if (vendor == VTSM_DOE_VENDOR_PCISIG && type == VTSM_DOE_TYPE_SECURED_SPDM && n >= 4)
        snprintf(buf, cap, "secured SPDM session 0x%08x",
                 (unsigned)(p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24));
    else
        snprintf(buf, cap, "DOE vendor 0x%04x type 0x%02x", vendor, type);
}
