/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TDISP responder (PCIe 6.x ch. 11 "TEE Device Interface Security Protocol"), reached
 * through VENDOR_DEFINED_REQUEST inside the secure session (rsp_vendor.c refuses it
 * outside, and answers UnsupportedRequest when the device has no TDISP at all).
 *
 * INTERFACE_ID.FUNCTION_ID names the TDI: RID = TDI index, no segment. Checks, in order:
 *   header that does not parse               -> TDISP_ERROR INVALID_REQUEST (SPDM ERROR
 *                                               InvalidRequest if not even the INTERFACE_ID
 *                                               is there to answer for)
 *   TDISPVersion other than 1.0              -> TDISP_ERROR VERSION_MISMATCH
 *   no such TDI                              -> TDISP_ERROR INVALID_INTERFACE
 *   a request we do not implement            -> TDISP_ERROR UNSUPPORTED_REQUEST (data = code)
 *   body that does not parse                 -> TDISP_ERROR INVALID_REQUEST
 *   the request's own rules (below)
 * Rules (one per refusal; the transitions are the table in dev_tdi.c):
 *   DEVTDI.1 LOCK_INTERFACE_REQ only in CONFIG_UNLOCKED (INVALID_INTERFACE_STATE); FLAGS
 *            within LOCK_INTERFACE_FLAGS_SUPPORTED, BIND_P2P_ADDRESS_MASK 0,
 *            MMIO_REPORTING_OFFSET page aligned and not wrapping (INVALID_REQUEST)
 *   DEVTDI.2 GET_DEVICE_INTERFACE_REPORT only in CONFIG_LOCKED / RUN
 *            (INVALID_INTERFACE_STATE); OFFSET inside the report and LENGTH > 0
 *            (INVALID_REQUEST)
 *   DEVTDI.3 START_INTERFACE_REQ only in CONFIG_LOCKED (INVALID_INTERFACE_STATE) and with
 *            the lock's nonce, which it consumes
 *   DEVTDI.4 a wrong START nonce: INVALID_NONCE and the TDI goes to ERROR (our choice; the
 *            nonce is consumed too)
 *   DEVTDI.5 STOP_INTERFACE_REQ from CONFIG_LOCKED / RUN / ERROR -> CONFIG_UNLOCKED, nonce
 *            and report dropped; in CONFIG_UNLOCKED it is acknowledged and changes nothing
 * GET_VERSION, GET_CAPABILITIES and GET_DEVICE_INTERFACE_STATE work in every state.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "dev_internal.h"
#include "vtsm_crypto.h"
#include "vtsm_guard.h"
#include "vtsm_log.h"

/* LOCK_INTERFACE_FLAGS_SUPPORTED: no P2P, no request redirect. */
#define LOCK_FLAGS_SUPPORTED                                                                       \
    (VTSM_TDISP_LOCK_NO_FW_UPDATE | VTSM_TDISP_LOCK_SYSTEM_CACHE_LINE_SIZE |                       \
     VTSM_TDISP_LOCK_LOCK_MSIX)
#define DEV_ADDR_WIDTH 52
/* DEVICE_INTERFACE_REPORT body before the portion: PORTION_LENGTH, REMAINDER_LENGTH. */
#define REPORT_RSP_FIXED 4
/* tdisp-report-length-change: portions are cut to this, so a report takes several chunks,
 * and every chunk after the first claims this much more remainder than there is. */
#define FAULT_CHUNK     32
#define FAULT_REMAINDER 16

struct tdisp_ctx {
    struct vtsm_dev *d;
    struct dev_req *q;
    struct vtsm_wr *w;
    uint32_t fid;
    unsigned index;
    struct dev_tdi *t;
    const struct vtsm_tdisp_req *req;
};

/* TDISP_ERROR: an answer, not a failure. The reason is logged and kept as the detail. */
static vtsm_status tdisp_error(struct tdisp_ctx *c, uint32_t code, uint32_t data,
                               enum vtsm_rule rule, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static vtsm_status tdisp_error(struct tdisp_ctx *c, uint32_t code, uint32_t data,
                               enum vtsm_rule rule, const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    VTSM_INFO("TDISP FUNCTION_ID 0x%08x: TDISP_ERROR %s: %s", c->fid, vtsm_tdisp_error_name(code),
              why);
    VTSM_GUARD(vtsm_tdisp_build_error(c->w, c->fid, code, data, NULL, 0));
    (void)vtsm_refuse(VTSM_E_PEER_ERROR, rule, "TDISP_ERROR %s: %s", vtsm_tdisp_error_name(code),
                      why);
    return VTSM_OK;
}

static const char *state_name(const struct tdisp_ctx *c)
{
    return dev_tdi_state_name(c->t->state);
}

static vtsm_status get_version(struct tdisp_ctx *c)
{
    static const uint8_t versions[] = {VTSM_TDISP_VERSION_10};
    return vtsm_tdisp_build_version(c->w, c->fid, versions, sizeof(versions));
}

/* CAPABILITIES: REQ_MSG_SUPPORTED has bit (code - 0x80) set for each request implemented;
 * TSM_CAPS is taken as sent. */
static vtsm_status get_capabilities(struct tdisp_ctx *c)
{
    static const uint8_t implemented[] = {
        VTSM_TDISP_GET_VERSION,
        VTSM_TDISP_GET_CAPABILITIES,
        VTSM_TDISP_LOCK_INTERFACE_REQ,
        VTSM_TDISP_GET_DEVICE_INTERFACE_REPORT,
        VTSM_TDISP_GET_DEVICE_INTERFACE_STATE,
        VTSM_TDISP_START_INTERFACE_REQ,
        VTSM_TDISP_STOP_INTERFACE_REQ,
        VTSM_TDISP_VDM_REQ,
    };
    struct vtsm_tdisp_caps caps;

    memset(&caps, 0, sizeof(caps));
    for (size_t i = 0; i < VTSM_ARRAY_SIZE(implemented); i++) {
        unsigned bit = implemented[i] - 0x80u;
        caps.req_msg_supported[bit / 8] |= (uint8_t)(1u << (bit % 8));
    }
    caps.lock_interface_flags_supported = LOCK_FLAGS_SUPPORTED;
    caps.dev_addr_width = DEV_ADDR_WIDTH;
    return vtsm_tdisp_build_capabilities(c->w, c->fid, &caps);
}

static vtsm_status lock_interface(struct tdisp_ctx *c)
{
    const struct vtsm_tdisp_lock_params *p = &c->req->u.lock;
    struct dev_tdi *t = c->t;
    uint8_t nonce[VTSM_TDISP_NONCE_SIZE];
    vtsm_status st = VTSM_OK;

    if (t->state != VTSM_TDI_CONFIG_UNLOCKED)
        return tdisp_error(c, VTSM_TDISP_ERR_INVALID_INTERFACE_STATE, 0, VTSM_RULE_DEVTDI_1,
                           "LOCK_INTERFACE_REQ in %s (rule DEVTDI.1)", state_name(c));
    if (p->flags & ~LOCK_FLAGS_SUPPORTED)
        return tdisp_error(c, VTSM_TDISP_ERR_INVALID_REQUEST, 0, VTSM_RULE_DEVTDI_1,
                           "LOCK_INTERFACE_REQ FLAGS 0x%04x, supported 0x%04x (rule DEVTDI.1)",
                           p->flags, LOCK_FLAGS_SUPPORTED);
    if (p->bind_p2p_address_mask != 0)
        return tdisp_error(c, VTSM_TDISP_ERR_INVALID_REQUEST, 0, VTSM_RULE_DEVTDI_1,
                           "LOCK_INTERFACE_REQ BIND_P2P_ADDRESS_MASK 0x%llx without P2P support "
                           "(rule DEVTDI.1)",
                           (unsigned long long)p->bind_p2p_address_mask);
    if ((p->mmio_reporting_offset & (VTSM_TDISP_PAGE_SIZE - 1)) ||
        p->mmio_reporting_offset > dev_tdi_max_mmio_offset(c->index))
        return tdisp_error(c, VTSM_TDISP_ERR_INVALID_REQUEST, 0, VTSM_RULE_DEVTDI_1,
                           "LOCK_INTERFACE_REQ MMIO_REPORTING_OFFSET 0x%llx is not page aligned "
                           "or moves the ranges past 2^64 (rule DEVTDI.1)",
                           (unsigned long long)p->mmio_reporting_offset);
    if (vtsm_random(nonce, sizeof(nonce)) != VTSM_OK)
        return tdisp_error(c, VTSM_TDISP_ERR_INSUFFICIENT_ENTROPY, 0, VTSM_RULE_NONE,
                           "no random START_INTERFACE_NONCE: %s", vtsm_err_detail());

    t->lock_flags = p->flags;
    t->default_stream_id = p->default_stream_id;
    t->mmio_offset = p->mmio_reporting_offset;
    VTSM_GUARD_GOTO(dev_tdi_build_report(c->d, c->index, t));
    VTSM_GUARD_GOTO(vtsm_tdisp_build_lock_rsp(c->w, c->fid, nonce));
    VTSM_GUARD_GOTO(dev_tdi_set_state(t, VTSM_TDI_CONFIG_LOCKED, "LOCK_INTERFACE_REQ"));
    memcpy(t->nonce, nonce, sizeof(nonce));
    t->nonce_valid = true;
    c->d->meas_since_lock = 1; /* counts from here: the next MEASUREMENTS is the 1st */
    char label[32];
    snprintf(label, sizeof(label), "tdisp-nonce-%u", (unsigned)c->fid);
    dev_secret_log(c->d, label, nonce, sizeof(nonce));
out:
    OPENSSL_cleanse(nonce, sizeof(nonce));
    return st;
}

/* DEVICE_INTERFACE_REPORT: the portion is clamped so the whole SPDM message fits the
 * negotiated DataTransferSize (min of both sides), and to the end of the report. */
static vtsm_status get_report(struct tdisp_ctx *c)
{
    const struct dev_tdi *t = c->t;
    uint16_t offset = c->req->u.report.offset, length = c->req->u.report.length;
    size_t total = t->report.len;

    if (t->state != VTSM_TDI_CONFIG_LOCKED && t->state != VTSM_TDI_RUN)
        return tdisp_error(c, VTSM_TDISP_ERR_INVALID_INTERFACE_STATE, 0, VTSM_RULE_DEVTDI_2,
                           "GET_DEVICE_INTERFACE_REPORT in %s (rule DEVTDI.2)", state_name(c));
    if (offset >= total || length == 0)
        return tdisp_error(c, VTSM_TDISP_ERR_INVALID_REQUEST, 0, VTSM_RULE_DEVTDI_2,
                           "GET_DEVICE_INTERFACE_REPORT OFFSET %u LENGTH %u for a %zu-byte "
                           "report (rule DEVTDI.2)",
                           offset, length, total);

    size_t max_msg = c->d->cfg.data_transfer_size;
    if (c->d->conn.req_data_transfer_size < max_msg)
        max_msg = c->d->conn.req_data_transfer_size;
    size_t overhead = c->w->len + VTSM_TDISP_HEADER_SIZE + REPORT_RSP_FIXED;
    VTSM_ENSURE(max_msg > overhead, VTSM_E_INTERNAL,
                "DataTransferSize %zu leaves no room for a report portion", max_msg);
    size_t portion = length;
    if (portion > max_msg - overhead)
        portion = max_msg - overhead;
    if (portion > total - offset)
        portion = total - offset;
    bool fault = dev_fault(c->d, VTSM_DEV_FAULT_TDISP_REPORT_LENGTH);
    if (fault && portion > FAULT_CHUNK)
        portion = FAULT_CHUNK;
    size_t remainder = total - offset - portion;
    if (fault && offset > 0) {
        remainder += FAULT_REMAINDER;
        VTSM_INFO("tdisp-report-length-change fault: REMAINDER_LENGTH %zu instead of %zu",
                  remainder, remainder - FAULT_REMAINDER);
    }
    return vtsm_tdisp_build_report_rsp(c->w, c->fid, t->report.data + offset, (uint16_t)portion,
                                       (uint16_t)remainder);
}

static vtsm_status get_state(struct tdisp_ctx *c)
{
    uint8_t s = c->t->state;
    if (dev_fault(c->d, VTSM_DEV_FAULT_TDISP_STATE_DRIFT) && s == VTSM_TDI_CONFIG_LOCKED)
        s = VTSM_TDI_RUN;
    if (dev_fault(c->d, VTSM_DEV_FAULT_TDISP_ERROR_STATE) &&
        (c->t->state == VTSM_TDI_CONFIG_LOCKED || c->t->state == VTSM_TDI_RUN))
        s = VTSM_TDI_ERROR;
    if (s != c->t->state)
        VTSM_INFO("TDISP state fault: DEVICE_INTERFACE_STATE says %s, the TDI is %s",
                  dev_tdi_state_name(s), state_name(c));
    return vtsm_tdisp_build_state_rsp(c->w, c->fid, s);
}

static vtsm_status start_interface(struct tdisp_ctx *c)
{
    struct dev_tdi *t = c->t;

    if (t->state != VTSM_TDI_CONFIG_LOCKED)
        return tdisp_error(c, VTSM_TDISP_ERR_INVALID_INTERFACE_STATE, 0, VTSM_RULE_DEVTDI_3,
                           "START_INTERFACE_REQ in %s (rule DEVTDI.3)", state_name(c));
    bool match = t->nonce_valid &&
                 CRYPTO_memcmp(c->req->u.start_nonce, t->nonce, VTSM_TDISP_NONCE_SIZE) == 0;
    bool fault = dev_fault(c->d, VTSM_DEV_FAULT_TDISP_BAD_NONCE);
    /* Single use either way. */
    OPENSSL_cleanse(t->nonce, sizeof(t->nonce));
    t->nonce_valid = false;
    if (!match || fault) {
        VTSM_GUARD(dev_tdi_set_state(t, VTSM_TDI_ERROR, "START_INTERFACE_REQ nonce mismatch"));
        return tdisp_error(c, VTSM_TDISP_ERR_INVALID_NONCE, 0, VTSM_RULE_DEVTDI_4,
                           "START_INTERFACE_NONCE %s; the TDI goes to ERROR (rule DEVTDI.4)",
                           fault ? "refused by the tdisp-bad-nonce fault"
                                 : "is not the LOCK_INTERFACE_RSP nonce");
    }
    VTSM_GUARD(vtsm_tdisp_build_start_rsp(c->w, c->fid));
    return dev_tdi_set_state(t, VTSM_TDI_RUN, "START_INTERFACE_REQ");
}

static vtsm_status stop_interface(struct tdisp_ctx *c)
{
    struct dev_tdi *t = c->t;

    VTSM_GUARD(vtsm_tdisp_build_stop_rsp(c->w, c->fid));
    if (t->state == VTSM_TDI_CONFIG_UNLOCKED)
        return VTSM_OK;
    VTSM_GUARD(dev_tdi_set_state(t, VTSM_TDI_CONFIG_UNLOCKED, "STOP_INTERFACE_REQ"));
    OPENSSL_cleanse(t->nonce, sizeof(t->nonce));
    t->nonce_valid = false;
    vtsm_buf_reset(&t->report);
    return VTSM_OK;
}

/* VDM_REQ: only the vtsm vendor-defined commands (vtsm_tdisp.h); FUNCTION_LEVEL_RESET
 * resets the TDI's function from any state (rule DEVTDI.7). Another vendor's VDM is an
 * UNSUPPORTED_REQUEST, a malformed vtsm one an INVALID_REQUEST. */
static vtsm_status vdm(struct tdisp_ctx *c)
{
    const struct vtsm_tdisp_vdm *v = &c->req->u.vdm;
    bool ours = v->registry_id == VTSM_TDISP_VDM_REGISTRY_PCISIG && v->vendor_id_len == 2 &&
                vtsm_get_le16(v->vendor_id) == VTSM_TDISP_VDM_VTSM_VENDOR_ID;
    if (!ours)
        return tdisp_error(c, VTSM_TDISP_ERR_UNSUPPORTED_REQUEST, VTSM_TDISP_VDM_REQ,
                           VTSM_RULE_NONE, "VDM_REQ for a vendor this device is not");
    if (v->body_len != VTSM_TDISP_VDM_VTSM_BODY || v->body[0] != VTSM_TDISP_VDM_VTSM_FLR ||
        (v->body[1] | v->body[2] | v->body[3]) != 0)
        return tdisp_error(c, VTSM_TDISP_ERR_INVALID_REQUEST, 0, VTSM_RULE_NONE,
                           "vtsm VDM_REQ: %zu-byte body, command 0x%02x (FUNCTION_LEVEL_RESET "
                           "0x01 with 3 reserved zero bytes is the only one)",
                           v->body_len, v->body_len ? v->body[0] : 0);
    VTSM_GUARD(dev_tdi_flr(c->d, c->index));
    uint8_t vid[2], body[VTSM_TDISP_VDM_VTSM_BODY] = {VTSM_TDISP_VDM_VTSM_FLR, c->t->state, 0, 0};
    vtsm_put_le16(vid, VTSM_TDISP_VDM_VTSM_VENDOR_ID);
    struct vtsm_tdisp_vdm rsp = {.registry_id = VTSM_TDISP_VDM_REGISTRY_PCISIG,
                                 .vendor_id_len = 2,
                                 .vendor_id = vid,
                                 .body = body,
                                 .body_len = sizeof(body)};
    return vtsm_tdisp_build_vdm(c->w, VTSM_TDISP_VDM_RSP, c->fid, &rsp);
}

static const struct {
    uint8_t type;
    vtsm_status (*fn)(struct tdisp_ctx *c);
} tdisp_handlers[] = {
    {VTSM_TDISP_GET_VERSION, get_version},
    {VTSM_TDISP_GET_CAPABILITIES, get_capabilities},
    {VTSM_TDISP_LOCK_INTERFACE_REQ, lock_interface},
    {VTSM_TDISP_GET_DEVICE_INTERFACE_REPORT, get_report},
    {VTSM_TDISP_GET_DEVICE_INTERFACE_STATE, get_state},
    {VTSM_TDISP_START_INTERFACE_REQ, start_interface},
    {VTSM_TDISP_STOP_INTERFACE_REQ, stop_interface},
    {VTSM_TDISP_VDM_REQ, vdm},
};

vtsm_status dev_rsp_tdisp(struct vtsm_dev *d, struct dev_req *q, const uint8_t *payload, size_t len,
                          struct vtsm_wr *w)
{
    struct tdisp_ctx c = {.d = d, .q = q, .w = w};
    struct vtsm_tdisp_hdr hdr;
    struct vtsm_tdisp_req req;
    char why[256];
    vtsm_status st;

    st = vtsm_tdisp_parse_header(payload, len, &hdr);
    if (st != VTSM_OK) {
        snprintf(why, sizeof(why), "%s", vtsm_err_detail());
        if (len < VTSM_TDISP_HEADER_SIZE)
            return dev_refuse(q, SPDM_ERR_INVALID_REQUEST, 0, st,
                              "TDISP message of %zu bytes has no INTERFACE_ID to answer for: %s",
                              len, why);
        /* FUNCTION_ID at offset 5 (after protocol ID, version, type, reserved). */
        c.fid = vtsm_get_le32(payload + 5) & ~VTSM_TDISP_FID_RESERVED_MASK;
        if (st == VTSM_E_PEER_VERSION)
            return tdisp_error(&c, VTSM_TDISP_ERR_VERSION_MISMATCH, 0, VTSM_RULE_NONE, "%s", why);
        return tdisp_error(&c, VTSM_TDISP_ERR_INVALID_REQUEST, 0, VTSM_RULE_NONE, "%s", why);
    }
    c.fid = hdr.function_id;
    if ((hdr.function_id >> 16) != 0 || VTSM_TDISP_FID_RID(hdr.function_id) >= d->cfg.num_tdis)
        return tdisp_error(&c, VTSM_TDISP_ERR_INVALID_INTERFACE, 0, VTSM_RULE_DEVTDI_6,
                           "FUNCTION_ID 0x%08x names no TDI (RID 0..%u, no segment) (rule "
                           "DEVTDI.6)",
                           hdr.function_id, d->cfg.num_tdis ? d->cfg.num_tdis - 1 : 0);
    c.index = VTSM_TDISP_FID_RID(hdr.function_id);
    c.t = &d->tdis[c.index];

    st = vtsm_tdisp_parse_request(payload, len, &req);
    if (st != VTSM_OK) {
        snprintf(why, sizeof(why), "%s", vtsm_err_detail());
        if (st == VTSM_E_PEER_UNEXPECTED)
            return tdisp_error(&c, VTSM_TDISP_ERR_UNSUPPORTED_REQUEST, hdr.type, VTSM_RULE_NONE,
                               "%s", why);
        return tdisp_error(&c, VTSM_TDISP_ERR_INVALID_REQUEST, 0, VTSM_RULE_NONE, "%s", why);
    }
    c.req = &req;
    for (size_t i = 0; i < VTSM_ARRAY_SIZE(tdisp_handlers); i++)
        if (tdisp_handlers[i].type == req.hdr.type)
            return tdisp_handlers[i].fn(&c);
    return tdisp_error(&c, VTSM_TDISP_ERR_UNSUPPORTED_REQUEST, hdr.type, VTSM_RULE_NONE,
                       "TDISP request 0x%02x has no responder", hdr.type);
}
