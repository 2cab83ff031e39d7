/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TDIs: the state table, the TDISP requester operations (PCIe 6.x sec. 11.3 "TDISP
 * Messages", in VENDOR_DEFINED_REQUEST/RESPONSE inside the SPDM session) and the bind /
 * accept / unbind / info / reject flows (docs/abi.md sections 9 and 10).
 */
#include "tsm_tdi.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "vtsm_guard.h"
#include "vtsm_log.h"

_Static_assert(TSM_TDI_CONFIG_UNLOCKED == 0 && TSM_TDI_CONFIG_LOCKED == 1 && TSM_TDI_RUN == 2 &&
                   TSM_TDI_ERROR == 3,
               "TSM TDI states use the TDISP TDI_STATE numbers");

/* ---------------------------------------------------------------- the table */

#define U TSM_TDI_CONFIG_UNLOCKED
#define L TSM_TDI_CONFIG_LOCKED
#define R TSM_TDI_RUN
#define E TSM_TDI_ERROR

const struct tsm_tdi_move tsm_tdi_moves[] = {
    {U, TSM_TDI_REQ_BIND, TSM_TDI_WHO_HOST, L, VTSM_RULE_TDI_1},

    {L, TSM_TDI_REQ_UNBIND, TSM_TDI_WHO_HOST, U, VTSM_RULE_TDI_2},
    {R, TSM_TDI_REQ_UNBIND, TSM_TDI_WHO_HOST, U, VTSM_RULE_TDI_2},
    {E, TSM_TDI_REQ_UNBIND, TSM_TDI_WHO_HOST, U, VTSM_RULE_TDI_2},

    {L, TSM_TDI_REQ_ACCEPT, TSM_TDI_WHO_OWNER_GUEST, R, VTSM_RULE_TDI_4},

    {L, TSM_TDI_REQ_REJECT, TSM_TDI_WHO_OWNER_GUEST, L, VTSM_RULE_TDI_5},
    {R, TSM_TDI_REQ_REJECT, TSM_TDI_WHO_OWNER_GUEST, R, VTSM_RULE_TDI_5},
    {E, TSM_TDI_REQ_REJECT, TSM_TDI_WHO_OWNER_GUEST, E, VTSM_RULE_TDI_5},

    {L, TSM_TDI_REQ_INFO, TSM_TDI_WHO_OWNER_GUEST, L, VTSM_RULE_TDI_6},
    {R, TSM_TDI_REQ_INFO, TSM_TDI_WHO_OWNER_GUEST, R, VTSM_RULE_TDI_6},
    {E, TSM_TDI_REQ_INFO, TSM_TDI_WHO_OWNER_GUEST, E, VTSM_RULE_TDI_6},

    {U, TSM_TDI_REQ_LIST, TSM_TDI_WHO_HOST, U, VTSM_RULE_TDI_6},
    {L, TSM_TDI_REQ_LIST, TSM_TDI_WHO_HOST, L, VTSM_RULE_TDI_6},
    {R, TSM_TDI_REQ_LIST, TSM_TDI_WHO_HOST, R, VTSM_RULE_TDI_6},
    {E, TSM_TDI_REQ_LIST, TSM_TDI_WHO_HOST, E, VTSM_RULE_TDI_6},
    {L, TSM_TDI_REQ_LIST, TSM_TDI_WHO_OWNER_GUEST, L, VTSM_RULE_TDI_6},
    {R, TSM_TDI_REQ_LIST, TSM_TDI_WHO_OWNER_GUEST, R, VTSM_RULE_TDI_6},
    {E, TSM_TDI_REQ_LIST, TSM_TDI_WHO_OWNER_GUEST, E, VTSM_RULE_TDI_6},

    {L, TSM_TDI_REQ_DEVICE_ERROR, TSM_TDI_WHO_TSM, E, VTSM_RULE_TDI_7},
    {R, TSM_TDI_REQ_DEVICE_ERROR, TSM_TDI_WHO_TSM, E, VTSM_RULE_TDI_7},

    {E, TSM_TDI_REQ_RESET, TSM_TDI_WHO_HOST, L, VTSM_RULE_TDI_10},
    /* the guest's devsec flow: lock, unlock; the host ends an assignment */
    {U, TSM_TDI_REQ_LOCK, TSM_TDI_WHO_OWNER_GUEST, L, VTSM_RULE_TDI_22},
    {U, TSM_TDI_REQ_LIST, TSM_TDI_WHO_OWNER_GUEST, U, VTSM_RULE_TDI_6},
    {L, TSM_TDI_REQ_UNLOCK, TSM_TDI_WHO_OWNER_GUEST, U, VTSM_RULE_TDI_23},
    {R, TSM_TDI_REQ_UNLOCK, TSM_TDI_WHO_OWNER_GUEST, U, VTSM_RULE_TDI_23},
    {E, TSM_TDI_REQ_UNLOCK, TSM_TDI_WHO_OWNER_GUEST, U, VTSM_RULE_TDI_23},
    {U, TSM_TDI_REQ_RELEASE, TSM_TDI_WHO_HOST, U, VTSM_RULE_TDI_2},
    /* the host assigns without locking (the Linux devsec flow: the guest LOCKs) */
    {U, TSM_TDI_REQ_ASSIGN, TSM_TDI_WHO_HOST, U, VTSM_RULE_TDI_1},
    {L, TSM_TDI_REQ_DEBUG_ERROR, TSM_TDI_WHO_OWNER_GUEST, E, VTSM_RULE_TDI_24},
    {R, TSM_TDI_REQ_DEBUG_ERROR, TSM_TDI_WHO_OWNER_GUEST, E, VTSM_RULE_TDI_24},
    {U, TSM_TDI_REQ_DEBUG_READ, TSM_TDI_WHO_OWNER_GUEST, U, VTSM_RULE_TDI_6},
    {L, TSM_TDI_REQ_DEBUG_READ, TSM_TDI_WHO_OWNER_GUEST, L, VTSM_RULE_TDI_6},
    {R, TSM_TDI_REQ_DEBUG_READ, TSM_TDI_WHO_OWNER_GUEST, R, VTSM_RULE_TDI_6},
    {E, TSM_TDI_REQ_DEBUG_READ, TSM_TDI_WHO_OWNER_GUEST, E, VTSM_RULE_TDI_6},
};
const size_t tsm_tdi_moves_count = VTSM_ARRAY_SIZE(tsm_tdi_moves);

#undef U
#undef L
#undef R
#undef E

/* The rule a refusal names, by why it is refused (see tsm_tdi.h). */
static const struct req_rules {
    const char *name;
    enum vtsm_rule state; /* requester may, but not from this state */
    enum vtsm_rule role;  /* this kind of requester never may */
    enum vtsm_rule owner; /* only the owning guest may */
} req_rules[TSM_TDI_REQ_COUNT_] = {
    [TSM_TDI_REQ_BIND] = {"bind", VTSM_RULE_TDI_1, VTSM_RULE_TDI_3, VTSM_RULE_TDI_3},
    [TSM_TDI_REQ_UNBIND] = {"unbind", VTSM_RULE_TDI_2, VTSM_RULE_TDI_3, VTSM_RULE_TDI_3},
    [TSM_TDI_REQ_ACCEPT] = {"accept", VTSM_RULE_TDI_4, VTSM_RULE_TDI_5, VTSM_RULE_TDI_5},
    [TSM_TDI_REQ_REJECT] = {"reject", VTSM_RULE_TDI_5, VTSM_RULE_TDI_5, VTSM_RULE_TDI_5},
    [TSM_TDI_REQ_INFO] = {"info", VTSM_RULE_TDI_6, VTSM_RULE_TDI_6, VTSM_RULE_TDI_6},
    [TSM_TDI_REQ_LIST] = {"list", VTSM_RULE_TDI_6, VTSM_RULE_TDI_6, VTSM_RULE_TDI_6},
    [TSM_TDI_REQ_DEVICE_ERROR] = {"device_error", VTSM_RULE_TDI_7, VTSM_RULE_TDI_7,
                                  VTSM_RULE_TDI_7},
    [TSM_TDI_REQ_RESET] = {"reset", VTSM_RULE_TDI_10, VTSM_RULE_TDI_3, VTSM_RULE_TDI_3},
    [TSM_TDI_REQ_LOCK] = {"lock", VTSM_RULE_TDI_22, VTSM_RULE_TDI_22, VTSM_RULE_TDI_22},
    [TSM_TDI_REQ_UNLOCK] = {"unlock", VTSM_RULE_TDI_23, VTSM_RULE_TDI_5, VTSM_RULE_TDI_5},
    [TSM_TDI_REQ_RELEASE] = {"release", VTSM_RULE_TDI_2, VTSM_RULE_TDI_3, VTSM_RULE_TDI_3},
    [TSM_TDI_REQ_DEBUG_ERROR] = {"debug_error", VTSM_RULE_TDI_24, VTSM_RULE_TDI_5, VTSM_RULE_TDI_5},
    [TSM_TDI_REQ_DEBUG_READ] = {"debug_read", VTSM_RULE_TDI_6, VTSM_RULE_TDI_6, VTSM_RULE_TDI_6},
    [TSM_TDI_REQ_ASSIGN] = {"assign", VTSM_RULE_TDI_1, VTSM_RULE_TDI_3, VTSM_RULE_TDI_3},
};

static const char *const state_names[TSM_TDI_STATE_COUNT_] = {
    [TSM_TDI_CONFIG_UNLOCKED] = "CONFIG_UNLOCKED",
    [TSM_TDI_CONFIG_LOCKED] = "CONFIG_LOCKED",
    [TSM_TDI_RUN] = "RUN",
    [TSM_TDI_ERROR] = "ERROR",
};

static const char *const who_names[TSM_TDI_WHO_COUNT_] = {
    [TSM_TDI_WHO_HOST] = "host",
    [TSM_TDI_WHO_OWNER_GUEST] = "owning guest",
    [TSM_TDI_WHO_OTHER_GUEST] = "guest",
    [TSM_TDI_WHO_TSM] = "tsm",
};

const char *tsm_tdi_state_name(enum tsm_tdi_state s)
{
    return (unsigned)s < TSM_TDI_STATE_COUNT_ ? state_names[s] : "invalid";
}

const char *tsm_tdi_req_name(enum tsm_tdi_req r)
{
    return (unsigned)r < TSM_TDI_REQ_COUNT_ ? req_rules[r].name : "invalid";
}

const char *tsm_tdi_who_name(enum tsm_tdi_who w)
{
    return (unsigned)w < TSM_TDI_WHO_COUNT_ ? who_names[w] : "invalid";
}

static const struct tsm_tdi_move *move_find(enum tsm_tdi_state from, enum tsm_tdi_req req,
                                            enum tsm_tdi_who who)
{
    for (size_t i = 0; i < tsm_tdi_moves_count; i++) {
        const struct tsm_tdi_move *m = &tsm_tdi_moves[i];
        if (m->from == from && m->req == req && m->who == who)
            return m;
    }
    return NULL;
}

/* Does the table let `who` make `req` from any state at all? */
static bool move_exists(enum tsm_tdi_req req, enum tsm_tdi_who who)
{
    for (size_t i = 0; i < tsm_tdi_moves_count; i++)
        if (tsm_tdi_moves[i].req == req && tsm_tdi_moves[i].who == who)
            return true;
    return false;
}

vtsm_status tsm_tdi_check(const struct tsm_tdi *t, enum tsm_tdi_req req, enum tsm_tdi_who who,
                          uint32_t guest_tvm, enum tsm_tdi_state *next)
{
    VTSM_ENSURE(t != NULL, VTSM_E_INVAL, "TDI check: NULL TDI");
    VTSM_ENSURE((unsigned)req < TSM_TDI_REQ_COUNT_ && (unsigned)who < TSM_TDI_WHO_COUNT_ &&
                    (unsigned)t->state < TSM_TDI_STATE_COUNT_,
                VTSM_E_INVAL, "TDI check: request %d / requester %d / state %d out of range",
                (int)req, (int)who, (int)t->state);

    /* A guest owns the TDI only if its TVM is the owner; the caller's word is not taken. */
    if (who == TSM_TDI_WHO_OWNER_GUEST || who == TSM_TDI_WHO_OTHER_GUEST)
        who = guest_tvm != 0 && guest_tvm == t->owner_tvm ? TSM_TDI_WHO_OWNER_GUEST
                                                          : TSM_TDI_WHO_OTHER_GUEST;

    const struct tsm_tdi_move *m = move_find(t->state, req, who);
    if (m) {
        if (next)
            *next = m->to;
        return VTSM_OK;
    }
    const struct req_rules *rr = &req_rules[req];
    if (!move_exists(req, who)) {
        if (who == TSM_TDI_WHO_OTHER_GUEST && move_exists(req, TSM_TDI_WHO_OWNER_GUEST))
            return vtsm_refuse(VTSM_E_NOT_OWNER, rr->owner,
                               "%s refused: %s TDI %u is not owned by TVM %u (rule %s: %s)",
                               rr->name, t->dev, t->index, guest_tvm, vtsm_rule_id(rr->owner),
                               vtsm_rule_text(rr->owner));
        return vtsm_refuse(VTSM_E_ABI_ROLE, rr->role,
                           "%s refused: %s TDI %u: not a request the %s makes (rule %s: %s)",
                           rr->name, t->dev, t->index, who_names[who], vtsm_rule_id(rr->role),
                           vtsm_rule_text(rr->role));
    }
    return vtsm_refuse(VTSM_E_STATE, rr->state, "%s refused: %s TDI %u is %s (rule %s: %s)",
                       rr->name, t->dev, t->index, state_names[t->state], vtsm_rule_id(rr->state),
                       vtsm_rule_text(rr->state));
}

vtsm_status tsm_tdi_set_state(struct tsm_tdi *t, enum tsm_tdi_req req, enum tsm_tdi_who who,
                              uint32_t guest_tvm, enum tsm_tdi_state to)
{
    enum tsm_tdi_state next;

    VTSM_GUARD(tsm_tdi_check(t, req, who, guest_tvm, &next));
    VTSM_ENSURE_RULE(
        next == to, VTSM_E_STATE, VTSM_RULE_TDI_0,
        "%s of %s TDI %u leads from %s to %s, not to %s (rule TDI.0: no such transition)",
        req_rules[req].name, t->dev, t->index, state_names[t->state], state_names[next],
        tsm_tdi_state_name(to));
    t->state = to;
    if (to == TSM_TDI_ERROR || to == TSM_TDI_CONFIG_UNLOCKED) { /* rule DMA.3 */
        memset(t->mmio, 0, sizeof(t->mmio));
        t->dma_guest = false;
    }
    return VTSM_OK;
}

/* ---------------------------------------------------------------- the TDI */

vtsm_status tsm_tdi_init(struct tsm_tdi *t, const char *dev, uint32_t index)
{
    VTSM_ENSURE(t != NULL && dev != NULL, VTSM_E_INVAL, "TDI init: NULL argument");
    VTSM_ENSURE(strlen(dev) <= VTSM_ABI_DEV_MAX, VTSM_E_INVAL,
                "TDI init: device name longer than %u characters", VTSM_ABI_DEV_MAX);
    VTSM_ENSURE(index <= TSM_TDI_MAX_INDEX, VTSM_E_INVAL,
                "TDI index %u does not fit the 16-bit RID of a TDISP FUNCTION_ID", index);
    memset(t, 0, sizeof(*t));
    snprintf(t->dev, sizeof(t->dev), "%s", dev);
    t->index = index;
    t->state = TSM_TDI_CONFIG_UNLOCKED;
    return VTSM_OK;
}

void tsm_tdi_reset(struct tsm_tdi *t)
{
    if (t == NULL)
        return;
    t->owner_tvm = 0;
    t->lock_flags = 0;
    t->guest_unlocked = false;
    t->report_checked = t->report_changed = false;
    OPENSSL_cleanse(t->lock_nonce, sizeof(t->lock_nonce));
    t->nonce_valid = false;
    vtsm_buf_wipe(&t->report);
    memset(t->report_digest, 0, sizeof(t->report_digest));
    t->digest_len = 0;
    t->digest_alg = VTSM_HASH_NONE;
    t->mmio_enabled = t->dma_enabled = false;
    vtsm_spdm_meas_free(&t->meas);
    t->have_meas = false;
    t->rejected = false;
    t->guest_rejected[0] = '\0';
    t->lock_flags = 0;
    t->stream_id = 0;
    t->recoveries = 0;
    t->last_event[0] = '\0';
    t->last_rule = VTSM_RULE_NONE;
    memset(t->meas_digest, 0, sizeof(t->meas_digest));
    OPENSSL_cleanse(t->nonce_digest, sizeof(t->nonce_digest));
    t->lock_seq = t->meas_seq = 0;
    t->error_rule = VTSM_RULE_NONE;
    memset(t->mmio, 0, sizeof(t->mmio)); /* rule DMA.3 */
    t->dma_guest = false;
}

uint64_t tsm_tdi_event(void)
{
    static uint64_t seq; /* flows run on one thread (tsm_tdi.h) */
    return ++seq;
}

bool tsm_tdi_after_lock(const struct tsm_tdi *t, uint64_t meas_seq)
{
    return t != NULL && t->lock_seq != 0 && meas_seq > t->lock_seq &&
           (t->state == TSM_TDI_CONFIG_LOCKED || t->state == TSM_TDI_RUN);
}

void tsm_tdi_current_binding(const struct tsm_tdi *t, struct tsm_tdi_accept_binding *b)
{
    memset(b, 0, sizeof(*b));
    b->report_digest = t->report_digest;
    b->report_len = t->digest_len;
    b->meas_digest = t->meas_digest;
    b->meas_len = t->have_meas ? t->digest_len : 0;
    b->lock_digest = t->nonce_digest;
    b->lock_len = t->nonce_valid ? t->digest_len : 0;
}

/* ---------------------------------------------------------------- TDISP exchanges */

/* SPDM VENDOR_DEFINED_RESPONSE header (4), StandardID (2), Len (1), VendorID (2),
 * RespLength (2); TDISP header (17); PORTION_LENGTH and REMAINDER_LENGTH (4). */
#define REPORT_RSP_OVERHEAD (11 + VTSM_TDISP_HEADER_SIZE + 4)
/* The requester's own DataTransferSize as tsmd configures it (vtsm_spdm_req_opts_default):
 * responses must fit it as well as the device's. */
#define TSM_TDISP_OWN_DTS 4096u
/* Largest TDISP request we build: START_INTERFACE_REQ, header + 32-byte nonce. */
#define TDISP_REQ_MAX (VTSM_TDISP_HEADER_SIZE + 48)

static vtsm_status chan_check(const struct tsm_tdisp_chan *c)
{
    VTSM_ENSURE(c != NULL && c->spdm != NULL, VTSM_E_INVAL, "TDISP: no SPDM requester");
    return VTSM_OK;
}

static vtsm_status chan_vendor(const struct tsm_tdisp_chan *c, const uint8_t *p, size_t n,
                               struct vtsm_buf *rsp)
{
    if (c->vendor)
        return c->vendor(c->vendor_ctx, p, n, rsp);
    return vtsm_spdm_req_vendor(c->spdm, p, n, rsp);
}

/*
 * Send one TDISP request (req) for TDI `tdi` and parse the answer into rsp (borrowing from
 * rx). rsp->hdr.type stays 0 unless a TDISP message came back, so a caller can tell a
 * TDISP_ERROR from an SPDM-level failure.
 */
static vtsm_status tdisp_xfer(const struct tsm_tdisp_chan *c, const char *dev, uint32_t tdi,
                              const struct vtsm_wr *req, uint8_t request, struct vtsm_buf *rx,
                              struct vtsm_tdisp_rsp *rsp)
{
    const char *name = vtsm_tdisp_type_name(request);
    struct vtsm_tdisp_hdr hdr;
    vtsm_status st;

    memset(rsp, 0, sizeof(*rsp));
    VTSM_ENSURE(!c->seg_wide, VTSM_E_CONFIG,
                "TDISP %s for %s: its PCI segment is above 0xff, which no TDISP INTERFACE_ID "
                "can name (Requester Segment is 8 bits)",
                name, dev);
    st = chan_vendor(c, req->p, req->len, rx);
    if (st != VTSM_OK)
        return st;
    /* Header first: protocol ID, TDISPVersion, reserved fields, then our own INTERFACE_ID
     * echo check (a wrong interface is a malformed answer, not another message). */
    st = vtsm_tdisp_parse_header(rx->data, rx->len, &hdr);
    if (st != VTSM_OK)
        return vtsm_wrap(st, "answer to TDISP %s for %s TDI %u", name, dev, tdi);
    /* tdi is the RID (or the DSM's whole FUNCTION_ID); the segment bits are the channel's */
    const uint32_t fid = tdi | c->seg_bits;
    VTSM_ENSURE(hdr.function_id == fid, VTSM_E_PEER_MALFORMED,
                "TDISP %s in answer to %s for %s TDI %u carries INTERFACE_ID FUNCTION_ID "
                "0x%08x, not 0x%08x",
                vtsm_tdisp_type_name(hdr.type), name, dev, tdi, hdr.function_id, fid);
    st = vtsm_tdisp_parse_response(rx->data, rx->len, request, fid, rsp);
    if (st == VTSM_E_PEER_ERROR)
        return vtsm_fail(VTSM_E_PEER_ERROR,
                         "%s TDI %u answered TDISP %s with TDISP_ERROR %s (0x%04x, data 0x%x)", dev,
                         tdi, name, vtsm_tdisp_error_name(rsp->u.error.code), rsp->u.error.code,
                         rsp->u.error.data);
    if (st != VTSM_OK) {
        rsp->hdr.type = 0;
        return vtsm_wrap(st, "%s TDI %u", dev, tdi);
    }
    return VTSM_OK;
}

/* The device name for messages when only a channel is known. */
static const char *chan_dev(const struct tsm_tdisp_chan *c)
{
    return c != NULL && c->dev != NULL ? c->dev : "device";
}

vtsm_status tsm_tdisp_probe(const struct tsm_tdisp_chan *c, struct vtsm_tdisp_caps *caps)
{
    uint8_t b[TDISP_REQ_MAX];
    struct vtsm_wr w = vtsm_wr_init(b, sizeof(b));
    struct vtsm_buf rx = {0};
    struct vtsm_tdisp_rsp rsp;
    vtsm_status st;
    bool v10 = false;

    VTSM_GUARD(chan_check(c));
    VTSM_GUARD_GOTO(vtsm_tdisp_build_get_version(&w, c->dsm_fid | c->seg_bits));
    st = tdisp_xfer(c, chan_dev(c), c->dsm_fid, &w, VTSM_TDISP_GET_VERSION, &rx, &rsp);
    if (st == VTSM_E_PEER_ERROR &&
        ((rsp.hdr.type == VTSM_TDISP_ERROR &&
          rsp.u.error.code == VTSM_TDISP_ERR_UNSUPPORTED_REQUEST) ||
         (rsp.hdr.type == 0 && c->vendor == NULL &&
          vtsm_spdm_req_peer_error(c->spdm, NULL) == SPDM_ERR_UNSUPPORTED_REQUEST))) {
        st = vtsm_wrap(VTSM_E_PEER_CAPS,
                       "device is not TEE-IO capable (no TDISP responder); connect with ide_only");
        goto out;
    }
    if (st != VTSM_OK)
        goto out;
    for (unsigned i = 0; i < rsp.u.version.count; i++)
        v10 = v10 || rsp.u.version.versions[i] == VTSM_TDISP_VERSION_10;
    VTSM_ENSURE_GOTO(v10, VTSM_E_PEER_VERSION,
                     "TDISP VERSION lists %u version(s) starting with 0x%02x, none is 1.0 (0x10)",
                     rsp.u.version.count, rsp.u.version.versions[0]);

    w = vtsm_wr_init(b, sizeof(b));
    VTSM_GUARD_GOTO(vtsm_tdisp_build_get_capabilities(&w, c->dsm_fid | c->seg_bits, 0));
    VTSM_GUARD_GOTO(
        tdisp_xfer(c, chan_dev(c), c->dsm_fid, &w, VTSM_TDISP_GET_CAPABILITIES, &rx, &rsp));
    if (caps)
        *caps = rsp.u.caps;
    st = VTSM_OK;
out:
    vtsm_buf_free(&rx);
    return st;
}

static vtsm_status tdisp_lock(const struct tsm_tdisp_chan *c, const char *dev, uint32_t tdi,
                              uint16_t flags, uint8_t default_stream_id,
                              uint8_t nonce[VTSM_TDISP_NONCE_SIZE])
{
    uint8_t b[TDISP_REQ_MAX];
    struct vtsm_wr w = vtsm_wr_init(b, sizeof(b));
    struct vtsm_buf rx = {0};
    struct vtsm_tdisp_rsp rsp;
    struct vtsm_tdisp_lock_params p = {
        .flags = flags, .default_stream_id = default_stream_id, .mmio_reporting_offset = 0};
    vtsm_status st;

    memset(&rsp, 0, sizeof(rsp));
    VTSM_GUARD(chan_check(c));
    VTSM_ENSURE(nonce != NULL, VTSM_E_INVAL, "LOCK_INTERFACE_REQ: NULL nonce");
    VTSM_ENSURE((flags & ~VTSM_TDISP_LOCK_FLAGS_KNOWN) == 0, VTSM_E_ABI_ARG,
                "lock_flags 0x%04x has bits 0x%04x that TDISP LOCK_INTERFACE_REQ does not define",
                flags, flags & ~VTSM_TDISP_LOCK_FLAGS_KNOWN);
    VTSM_ENSURE(tdi <= TSM_TDI_MAX_INDEX, VTSM_E_INVAL, "TDI %u does not fit a FUNCTION_ID RID",
                tdi);
    VTSM_GUARD_GOTO(vtsm_tdisp_build_lock_interface(&w, tdi | c->seg_bits, &p));
    VTSM_GUARD_GOTO(tdisp_xfer(c, dev, tdi, &w, VTSM_TDISP_LOCK_INTERFACE_REQ, &rx, &rsp));
    memcpy(nonce, rsp.u.lock_nonce, VTSM_TDISP_NONCE_SIZE);
    st = VTSM_OK;
out:
    if (st != VTSM_OK)
        OPENSSL_cleanse(nonce, VTSM_TDISP_NONCE_SIZE);
    OPENSSL_cleanse(&rsp, sizeof(rsp));
    vtsm_buf_wipe(&rx);
    return st;
}

vtsm_status tsm_tdisp_lock(const struct tsm_tdisp_chan *c, uint32_t tdi, uint16_t flags,
                           uint8_t default_stream_id, uint8_t nonce[VTSM_TDISP_NONCE_SIZE])
{
    return tdisp_lock(c, chan_dev(c), tdi, flags, default_stream_id, nonce);
}

static vtsm_status tdisp_get_report(const struct tsm_tdisp_chan *c, const char *dev, uint32_t tdi,
                                    struct vtsm_buf *report)
{
    uint8_t b[TDISP_REQ_MAX];
    struct vtsm_wr w;
    struct vtsm_buf rx = {0};
    struct vtsm_tdisp_rsp rsp;
    struct vtsm_tdisp_report *rep = NULL;
    vtsm_status st;
    size_t total = 0, off = 0, chunk;
    bool have_total = false;

    VTSM_GUARD(chan_check(c));
    VTSM_ENSURE(report != NULL, VTSM_E_INVAL, "GET_DEVICE_INTERFACE_REPORT: NULL report");
    VTSM_ENSURE(tdi <= TSM_TDI_MAX_INDEX, VTSM_E_INVAL, "TDI %u does not fit a FUNCTION_ID RID",
                tdi);
    vtsm_buf_reset(report);

    /* Each DEVICE_INTERFACE_REPORT must fit the negotiated DataTransferSize (and ours). */
    size_t dts = vtsm_spdm_req_info(c->spdm)->rsp_data_transfer_size;
    if (dts == 0 || dts > TSM_TDISP_OWN_DTS)
        dts = TSM_TDISP_OWN_DTS;
    VTSM_ENSURE(dts > REPORT_RSP_OVERHEAD, VTSM_E_LIMIT,
                "DataTransferSize %zu leaves no room for an interface report portion", dts);
    chunk = dts - REPORT_RSP_OVERHEAD;
    if (chunk > VTSM_TDISP_REPORT_MAX)
        chunk = VTSM_TDISP_REPORT_MAX;

    for (;;) {
        /* offset < total <= 0xFFFF, so offset and length fit their u16 fields */
        size_t want = have_total && total - off < chunk ? total - off : chunk;
        w = vtsm_wr_init(b, sizeof(b));
        VTSM_GUARD_GOTO(
            vtsm_tdisp_build_get_report(&w, tdi | c->seg_bits, (uint16_t)off, (uint16_t)want));
        VTSM_GUARD_GOTO(
            tdisp_xfer(c, dev, tdi, &w, VTSM_TDISP_GET_DEVICE_INTERFACE_REPORT, &rx, &rsp));
        size_t portion = rsp.u.report.portion_length, rem = rsp.u.report.remainder_length;
        VTSM_ENSURE_GOTO(portion <= want, VTSM_E_PEER_MALFORMED,
                         "%s TDI %u: DEVICE_INTERFACE_REPORT PORTION_LENGTH %zu at offset %zu "
                         "exceeds the LENGTH %zu asked for",
                         dev, tdi, portion, off, want);
        size_t sum = off + portion + rem;
        if (!have_total) {
            VTSM_ENSURE_GOTO(sum <= VTSM_TDISP_REPORT_MAX, VTSM_E_PEER_OVERSIZED,
                             "%s TDI %u: interface report of %zu bytes exceeds the %u-byte limit "
                             "(GET_DEVICE_INTERFACE_REPORT offsets are 16 bits)",
                             dev, tdi, sum, VTSM_TDISP_REPORT_MAX);
            total = sum;
            have_total = true;
        } else {
            VTSM_ENSURE_GOTO(sum == total, VTSM_E_PEER_MALFORMED,
                             "%s TDI %u: report length changed between chunks (offset %zu + "
                             "PORTION_LENGTH %zu + REMAINDER_LENGTH %zu = %zu, first chunk said "
                             "%zu)",
                             dev, tdi, off, portion, rem, sum, total);
        }
        VTSM_GUARD_GOTO(vtsm_buf_append(report, rsp.u.report.portion, portion));
        off += portion;
        if (rem == 0)
            break;
    }

    /* The report's own rules (layout, known bits, aligned non-overlapping ranges). */
    rep = malloc(sizeof(*rep));
    VTSM_ENSURE_GOTO(rep != NULL, VTSM_E_NOMEM, "interface report: out of memory");
    st = vtsm_tdisp_report_parse(report->data, report->len, rep);
    if (st != VTSM_OK) {
        st = vtsm_wrap(st, "%s TDI %u interface report refused", dev, tdi);
        goto out;
    }
    st = VTSM_OK;
out:
    if (st != VTSM_OK)
        vtsm_buf_reset(report);
    free(rep);
    vtsm_buf_free(&rx);
    return st;
}

vtsm_status tsm_tdisp_get_report(const struct tsm_tdisp_chan *c, uint32_t tdi,
                                 struct vtsm_buf *report)
{
    return tdisp_get_report(c, chan_dev(c), tdi, report);
}

static vtsm_status tdisp_get_state(const struct tsm_tdisp_chan *c, const char *dev, uint32_t tdi,
                                   uint8_t *state)
{
    uint8_t b[TDISP_REQ_MAX];
    struct vtsm_wr w = vtsm_wr_init(b, sizeof(b));
    struct vtsm_buf rx = {0};
    struct vtsm_tdisp_rsp rsp;
    vtsm_status st;

    VTSM_GUARD(chan_check(c));
    VTSM_ENSURE(state != NULL, VTSM_E_INVAL, "GET_DEVICE_INTERFACE_STATE: NULL state");
    VTSM_ENSURE(tdi <= TSM_TDI_MAX_INDEX, VTSM_E_INVAL, "TDI %u does not fit a FUNCTION_ID RID",
                tdi);
    VTSM_GUARD_GOTO(vtsm_tdisp_build_get_state(&w, tdi | c->seg_bits));
    VTSM_GUARD_GOTO(tdisp_xfer(c, dev, tdi, &w, VTSM_TDISP_GET_DEVICE_INTERFACE_STATE, &rx, &rsp));
    *state = rsp.u.tdi_state;
    st = VTSM_OK;
out:
    vtsm_buf_free(&rx);
    return st;
}

vtsm_status tsm_tdisp_get_state(const struct tsm_tdisp_chan *c, uint32_t tdi, uint8_t *state)
{
    return tdisp_get_state(c, chan_dev(c), tdi, state);
}

static vtsm_status tdisp_start(const struct tsm_tdisp_chan *c, const char *dev, uint32_t tdi,
                               const uint8_t nonce[VTSM_TDISP_NONCE_SIZE])
{
    uint8_t b[TDISP_REQ_MAX];
    struct vtsm_wr w = vtsm_wr_init(b, sizeof(b));
    struct vtsm_buf rx = {0};
    struct vtsm_tdisp_rsp rsp;
    vtsm_status st;

    VTSM_GUARD(chan_check(c));
    VTSM_ENSURE(nonce != NULL, VTSM_E_INVAL, "START_INTERFACE_REQ: NULL nonce");
    VTSM_ENSURE(tdi <= TSM_TDI_MAX_INDEX, VTSM_E_INVAL, "TDI %u does not fit a FUNCTION_ID RID",
                tdi);
    VTSM_GUARD_GOTO(vtsm_tdisp_build_start_interface(&w, tdi | c->seg_bits, nonce));
    VTSM_GUARD_GOTO(tdisp_xfer(c, dev, tdi, &w, VTSM_TDISP_START_INTERFACE_REQ, &rx, &rsp));
    st = VTSM_OK;
out:
    OPENSSL_cleanse(b, sizeof(b));
    vtsm_buf_wipe(&rx);
    return st;
}

vtsm_status tsm_tdisp_start(const struct tsm_tdisp_chan *c, uint32_t tdi,
                            const uint8_t nonce[VTSM_TDISP_NONCE_SIZE])
{
    return tdisp_start(c, chan_dev(c), tdi, nonce);
}

static vtsm_status tdisp_stop(const struct tsm_tdisp_chan *c, const char *dev, uint32_t tdi)
{
    uint8_t b[TDISP_REQ_MAX];
    struct vtsm_wr w = vtsm_wr_init(b, sizeof(b));
    struct vtsm_buf rx = {0};
    struct vtsm_tdisp_rsp rsp;
    vtsm_status st;

    VTSM_GUARD(chan_check(c));
    VTSM_ENSURE(tdi <= TSM_TDI_MAX_INDEX, VTSM_E_INVAL, "TDI %u does not fit a FUNCTION_ID RID",
                tdi);
    VTSM_GUARD_GOTO(vtsm_tdisp_build_stop_interface(&w, tdi | c->seg_bits));
    VTSM_GUARD_GOTO(tdisp_xfer(c, dev, tdi, &w, VTSM_TDISP_STOP_INTERFACE_REQ, &rx, &rsp));
    st = VTSM_OK;
out:
    vtsm_buf_free(&rx);
    return st;
}

vtsm_status tsm_tdisp_stop(const struct tsm_tdisp_chan *c, uint32_t tdi)
{
    return tdisp_stop(c, chan_dev(c), tdi);
}

vtsm_status tsm_tdisp_flr(const struct tsm_tdisp_chan *c, uint32_t tdi, uint8_t *state)
{
    uint8_t b[TDISP_REQ_MAX], vid[2], body[VTSM_TDISP_VDM_VTSM_BODY] = {VTSM_TDISP_VDM_VTSM_FLR};
    struct vtsm_wr w = vtsm_wr_init(b, sizeof(b));
    struct vtsm_buf rx = {0};
    struct vtsm_tdisp_rsp rsp;
    vtsm_status st;
    const char *dev = chan_dev(c);

    VTSM_GUARD(chan_check(c));
    VTSM_ENSURE(state != NULL, VTSM_E_INVAL, "FUNCTION_LEVEL_RESET: NULL state");
    VTSM_ENSURE(tdi <= TSM_TDI_MAX_INDEX, VTSM_E_INVAL, "TDI %u does not fit a FUNCTION_ID RID",
                tdi);
    vtsm_put_le16(vid, VTSM_TDISP_VDM_VTSM_VENDOR_ID);
    struct vtsm_tdisp_vdm v = {.registry_id = VTSM_TDISP_VDM_REGISTRY_PCISIG,
                               .vendor_id_len = sizeof(vid),
                               .vendor_id = vid,
                               .body = body,
                               .body_len = sizeof(body)};
    VTSM_GUARD_GOTO(vtsm_tdisp_build_vdm(&w, VTSM_TDISP_VDM_REQ, tdi | c->seg_bits, &v));
    VTSM_GUARD_GOTO(tdisp_xfer(c, dev, tdi, &w, VTSM_TDISP_VDM_REQ, &rx, &rsp));
    /* VDM_RSP: our vendor, COMMAND echoed, TDI_STATE defined, reserved zero */
    const struct vtsm_tdisp_vdm *a = &rsp.u.vdm;
    VTSM_ENSURE_GOTO(a->registry_id == VTSM_TDISP_VDM_REGISTRY_PCISIG && a->vendor_id_len == 2 &&
                         vtsm_get_le16(a->vendor_id) == VTSM_TDISP_VDM_VTSM_VENDOR_ID &&
                         a->body_len == VTSM_TDISP_VDM_VTSM_BODY &&
                         a->body[0] == VTSM_TDISP_VDM_VTSM_FLR && a->body[1] <= VTSM_TDI_ERROR &&
                         (a->body[2] | a->body[3]) == 0,
                     VTSM_E_PEER_MALFORMED,
                     "%s TDI %u: VDM_RSP to FUNCTION_LEVEL_RESET is not the vtsm answer", dev, tdi);
    *state = a->body[1];
    st = VTSM_OK;
out:
    vtsm_buf_free(&rx);
    return st;
}

/* ---------------------------------------------------------------- flows */

/* Best-effort STOP_INTERFACE_REQ after a failed bind step; keeps the step's status and adds
 * the STOP outcome to its detail. */
static vtsm_status fail_with_stop(const struct tsm_tdisp_chan *c, const struct tsm_tdi *t,
                                  vtsm_status st)
{
    struct vtsm_err_state saved;

    vtsm_err_save(&saved);
    vtsm_status sst = tdisp_stop(c, t->dev, t->index);
    return vtsm_refuse(st, saved.status == st ? saved.rule : VTSM_RULE_NONE,
                       "bind of %s TDI %u failed: %s; STOP_INTERFACE_REQ %s; TDI stays %s", t->dev,
                       t->index, saved.detail, sst == VTSM_OK ? "answered" : vtsm_status_name(sst),
                       tsm_tdi_state_name(t->state));
}

/* The LOCK flow of a host BIND or a guest LOCK (req/who, guest_tvm for the table). */
static vtsm_status lock_flow(const struct tsm_tdisp_chan *c, struct tsm_tdi *t, uint32_t tvm,
                             uint16_t lock_flags, uint8_t default_stream_id, enum tsm_tdi_req req,
                             enum tsm_tdi_who who, uint32_t guest_tvm)
{
    uint8_t nonce[VTSM_TDISP_NONCE_SIZE];
    uint8_t digest[VTSM_HASH_MAX], meas_digest[VTSM_HASH_MAX], nonce_digest[VTSM_HASH_MAX];
    struct vtsm_buf report = {0};
    struct vtsm_spdm_meas meas;
    bool need_stop = false;
    vtsm_status st;

    memset(&meas, 0, sizeof(meas));
    VTSM_GUARD(chan_check(c));
    VTSM_ENSURE(t != NULL, VTSM_E_INVAL, "bind: NULL TDI");
    VTSM_ENSURE(tvm != 0, VTSM_E_INVAL, "bind of %s TDI %u: TVM 0 is not a TVM", t->dev, t->index);
    VTSM_ENSURE((lock_flags & ~VTSM_TDISP_LOCK_FLAGS_KNOWN) == 0, VTSM_E_ABI_ARG,
                "lock_flags 0x%04x has bits 0x%04x that TDISP LOCK_INTERFACE_REQ does not define",
                lock_flags, lock_flags & ~VTSM_TDISP_LOCK_FLAGS_KNOWN);
    VTSM_GUARD(tsm_tdi_check(t, req, who, guest_tvm, NULL));
    const struct vtsm_spdm_info *info = vtsm_spdm_req_info(c->spdm);
    enum vtsm_hash_alg halg = info->hash;
    size_t hlen = vtsm_hash_size(halg);
    VTSM_ENSURE(hlen != 0 && info->session_active, VTSM_E_STATE,
                "bind of %s TDI %u: no SPDM session with the device", t->dev, t->index);

    /* Resync first: the TSM holds this TDI unbound. A device that still has it locked (an
     * earlier bind whose STOP could not be delivered because the host vanished) gets the
     * STOP now, so a lost exchange never leaves a TDI the TSM can neither bind nor unbind. */
    uint8_t dev_state = VTSM_TDI_CONFIG_UNLOCKED;
    VTSM_GUARD_GOTO(tdisp_get_state(c, t->dev, t->index, &dev_state));
    if (dev_state != VTSM_TDI_CONFIG_UNLOCKED) {
        VTSM_WARN("bind of %s TDI %u: device reports state %u for an unbound TDI; stopping it "
                  "first",
                  t->dev, t->index, dev_state);
        VTSM_GUARD_GOTO(tdisp_stop(c, t->dev, t->index));
    }

    /* LOCK_INTERFACE_REQ. A TDISP_ERROR means the device did not lock; anything else
     * (lost or garbled answer) may have locked it, so it gets a STOP too. */
    st = tdisp_lock(c, t->dev, t->index, lock_flags, default_stream_id, nonce);
    need_stop = st != VTSM_E_PEER_ERROR;
    if (st != VTSM_OK)
        goto out;
    uint64_t lock_seq = tsm_tdi_event(); /* LOCK_INTERFACE_RSP is in */
    VTSM_GUARD_GOTO(tdisp_get_report(c, t->dev, t->index, &report));
    VTSM_GUARD_GOTO(vtsm_hash(halg, report.data, report.len, digest));
    st = vtsm_spdm_req_get_measurements(c->spdm, c->slot, NULL, &meas);
    if (st != VTSM_OK) {
        st = vtsm_wrap(st, "fresh GET_MEASUREMENTS after LOCK_INTERFACE");
        goto out;
    }
    uint64_t meas_seq = tsm_tdi_event();
    VTSM_GUARD_GOTO(vtsm_hash(halg, meas.record.data, meas.record.len, meas_digest));
    VTSM_GUARD_GOTO(vtsm_hash(halg, nonce, sizeof(nonce), nonce_digest));

    /* Commit: state first (re-checked), then what the binding holds. */
    st = tsm_tdi_set_state(t, req, who, guest_tvm, TSM_TDI_CONFIG_LOCKED);
    if (st == VTSM_OK) {
        tsm_tdi_reset(t);
        t->owner_tvm = tvm;
        t->lock_flags = lock_flags;
        memcpy(t->lock_nonce, nonce, sizeof(nonce));
        t->nonce_valid = true;
        t->report = report;
        memset(&report, 0, sizeof(report));
        memcpy(t->report_digest, digest, hlen);
        t->digest_len = hlen;
        t->digest_alg = halg;
        t->meas = meas;
        memset(&meas, 0, sizeof(meas));
        t->have_meas = true;
        memcpy(t->meas_digest, meas_digest, hlen);
        memcpy(t->nonce_digest, nonce_digest, hlen);
        t->lock_seq = lock_seq;
        t->meas_seq = meas_seq;
        t->lock_flags = lock_flags;
        t->stream_id = default_stream_id;
        need_stop = false;
    }
out:
    if (st != VTSM_OK && need_stop)
        st = fail_with_stop(c, t, st);
    else if (st != VTSM_OK)
        st = vtsm_wrap(st, "bind of %s TDI %u failed (TDI stays %s)", t->dev, t->index,
                       tsm_tdi_state_name(t->state));
    OPENSSL_cleanse(nonce, sizeof(nonce));
    OPENSSL_cleanse(digest, sizeof(digest));
    OPENSSL_cleanse(nonce_digest, sizeof(nonce_digest));
    vtsm_buf_wipe(&report);
    vtsm_spdm_meas_free(&meas);
    return st;
}

vtsm_status tsm_tdi_bind(const struct tsm_tdisp_chan *c, struct tsm_tdi *t, uint32_t tvm,
                         uint16_t lock_flags, uint8_t default_stream_id)
{
    return lock_flow(c, t, tvm, lock_flags, default_stream_id, TSM_TDI_REQ_BIND, TSM_TDI_WHO_HOST,
                     0);
}

vtsm_status tsm_tdi_assign(const struct tsm_tdisp_chan *c, struct tsm_tdi *t, uint32_t tvm,
                           uint16_t lock_flags)
{
    uint8_t dev_state = VTSM_TDI_CONFIG_UNLOCKED;
    VTSM_ENSURE(t != NULL, VTSM_E_INVAL, "assign: NULL TDI");
    VTSM_ENSURE(tvm != 0, VTSM_E_INVAL, "assign of %s TDI %u: TVM 0 is not a TVM", t->dev,
                t->index);
    VTSM_GUARD(tsm_tdi_check(t, TSM_TDI_REQ_ASSIGN, TSM_TDI_WHO_HOST, 0, NULL));
    VTSM_ENSURE(c != NULL && c->spdm != NULL, VTSM_E_STATE,
                "assign of %s TDI %u: no SPDM session with the device", t->dev, t->index);
    /* the device's word, as for a bind: an interface some earlier owner left locked is
     * stopped first, so the owner's LOCK starts from CONFIG_UNLOCKED */
    VTSM_GUARD(tdisp_get_state(c, t->dev, t->index, &dev_state));
    if (dev_state != VTSM_TDI_CONFIG_UNLOCKED) {
        VTSM_WARN("assign of %s TDI %u: device reports state %u for an unbound TDI; stopping "
                  "it first",
                  t->dev, t->index, dev_state);
        VTSM_GUARD(tdisp_stop(c, t->dev, t->index));
    }
    VTSM_GUARD(
        tsm_tdi_set_state(t, TSM_TDI_REQ_ASSIGN, TSM_TDI_WHO_HOST, 0, TSM_TDI_CONFIG_UNLOCKED));
    tsm_tdi_reset(t);
    t->owner_tvm = tvm;
    t->lock_flags = lock_flags;
    return VTSM_OK;
}

vtsm_status tsm_tdi_guest_lock(const struct tsm_tdisp_chan *c, struct tsm_tdi *t,
                               uint32_t guest_tvm, uint8_t default_stream_id)
{
    VTSM_ENSURE(t != NULL, VTSM_E_INVAL, "lock: NULL TDI");
    return lock_flow(c, t, guest_tvm, t->lock_flags, default_stream_id, TSM_TDI_REQ_LOCK,
                     TSM_TDI_WHO_OWNER_GUEST, guest_tvm);
}

/* The TSM moves a bound TDI to ERROR on the device's word (TDI.7 / TDI.8): no MMIO, no
 * DMA, and the START nonce is gone. Caller holds the TDI's lock. */
static void to_error(struct tsm_tdi *t, enum vtsm_rule why)
{
    struct vtsm_err_state saved;

    vtsm_err_save(&saved);
    if (tsm_tdi_set_state(t, TSM_TDI_REQ_DEVICE_ERROR, TSM_TDI_WHO_TSM, 0, TSM_TDI_ERROR) !=
        VTSM_OK)
        vtsm_err_restore(&saved); /* keep the caller's detail */
    t->mmio_enabled = t->dma_enabled = false;
    OPENSSL_cleanse(t->lock_nonce, sizeof(t->lock_nonce));
    t->nonce_valid = false;
    if (t->state == TSM_TDI_ERROR)
        t->error_rule = why;
}

/* One digest of the guest's binding against the TDI's (constant time; a length that
 * differs never matches). */
static bool same_digest(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    return alen != 0 && alen == blen && a != NULL && b != NULL && CRYPTO_memcmp(a, b, alen) == 0;
}

/* Before RUN (rule TDI.21): the device's interface report and measurements now are those
 * bound at LOCK. *changed names what differs (NULL: nothing); a failed exchange returns
 * its status and changes nothing. */
static vtsm_status recheck_device(const struct tsm_tdisp_chan *c, const struct tsm_tdi *t,
                                  const char **changed)
{
    struct vtsm_buf report = {0};
    struct vtsm_spdm_meas meas;
    uint8_t d[VTSM_HASH_MAX];
    vtsm_status st;

    memset(&meas, 0, sizeof(meas));
    *changed = NULL;
    st = tdisp_get_report(c, t->dev, t->index, &report);
    if (st != VTSM_OK) {
        st = vtsm_wrap(st, "accept of %s TDI %u: interface report re-read", t->dev, t->index);
        goto out;
    }
    VTSM_GUARD_GOTO(vtsm_hash(t->digest_alg, report.data, report.len, d));
    if (!same_digest(d, t->digest_len, t->report_digest, t->digest_len)) {
        *changed = "interface report";
        goto out;
    }
    st = vtsm_spdm_req_get_measurements(c->spdm, c->slot, NULL, &meas);
    if (st != VTSM_OK) {
        st = vtsm_wrap(st, "accept of %s TDI %u: re-measurement", t->dev, t->index);
        goto out;
    }
    VTSM_GUARD_GOTO(vtsm_hash(t->digest_alg, meas.record.data, meas.record.len, d));
    if (!same_digest(d, t->digest_len, t->meas_digest, t->digest_len))
        *changed = "measurements";
out:
    vtsm_buf_wipe(&report);
    vtsm_spdm_meas_free(&meas);
    return st;
}

vtsm_status tsm_tdi_accept(const struct tsm_tdisp_chan *c, struct tsm_tdi *t, uint32_t guest_tvm,
                           const struct tsm_tdi_accept_binding *b)
{
    const char *changed = NULL;
    uint8_t nonce[VTSM_TDISP_NONCE_SIZE];
    uint8_t dev_state = 0;
    bool have_nonce;
    vtsm_status st;

    VTSM_GUARD(chan_check(c));
    VTSM_ENSURE(t != NULL && b != NULL, VTSM_E_INVAL, "accept: NULL argument");
    st = tsm_tdi_check(t, TSM_TDI_REQ_ACCEPT, TSM_TDI_WHO_OWNER_GUEST, guest_tvm, NULL);
    have_nonce = t->nonce_valid;
    memcpy(nonce, t->lock_nonce, sizeof(nonce));
    if (st != VTSM_OK)
        goto out;
    VTSM_ENSURE_GOTO(have_nonce, VTSM_E_INTERNAL,
                     "accept of %s TDI %u: CONFIG_LOCKED without a LOCK_INTERFACE nonce", t->dev,
                     t->index);

    /* ACCEPT binds what the guest verified: the binding it saw must be the one in force
     * (a host that unbound and bound again in between made a new nonce, maybe a new
     * report). The TDI stays as it is. */
    const char *which =
        !same_digest(b->report_digest, b->report_len, t->report_digest, t->digest_len)
            ? "report_digest"
        : !same_digest(b->meas_digest, b->meas_len, t->meas_digest, t->digest_len)
            ? "measurements_digest"
        : !same_digest(b->lock_digest, b->lock_len, t->nonce_digest, t->digest_len)
            ? "lock_nonce_digest"
            : NULL;
    if (which) {
        st = vtsm_refuse(VTSM_E_STATE, VTSM_RULE_TDI_20,
                         "accept of %s TDI %u refused: its %s is not the one the guest verified "
                         "(rule TDI.20: %s); TDI stays %s",
                         t->dev, t->index, which, vtsm_rule_text(VTSM_RULE_TDI_20),
                         tsm_tdi_state_name(t->state));
        goto out;
    }

    /* GET_DEVICE_INTERFACE_STATE: the device must agree that the TDI is CONFIG_LOCKED. */
    st = tdisp_get_state(c, t->dev, t->index, &dev_state);
    if (st != VTSM_OK) {
        st = vtsm_wrap(st, "accept of %s TDI %u: no device state (TDI stays %s)", t->dev, t->index,
                       tsm_tdi_state_name(t->state));
        goto out;
    }
    if (dev_state != VTSM_TDI_CONFIG_LOCKED) {
        enum vtsm_rule rule = dev_state == VTSM_TDI_ERROR ? VTSM_RULE_TDI_7 : VTSM_RULE_TDI_8;
        to_error(t, rule);
        st = vtsm_refuse(VTSM_E_PEER_STATE, rule,
                         "accept of %s TDI %u: the device reports it %s while the TSM has it "
                         "CONFIG_LOCKED; TDI moved to ERROR (rule %s: %s)",
                         t->dev, t->index, tsm_tdi_state_name((enum tsm_tdi_state)dev_state),
                         vtsm_rule_id(rule), vtsm_rule_text(rule));
        goto out;
    }

    /* The device now: its report and measurements must still be those bound at LOCK. */
    st = recheck_device(c, t, &changed);
    if (st != VTSM_OK) {
        st = vtsm_wrap(st, "(TDI stays %s)", tsm_tdi_state_name(t->state));
        goto out;
    }
    if (changed) {
        to_error(t, VTSM_RULE_TDI_21);
        st = vtsm_refuse(VTSM_E_PEER_STATE, VTSM_RULE_TDI_21,
                         "accept of %s TDI %u: the device's %s changed since LOCK_INTERFACE; TDI "
                         "moved to ERROR (rule TDI.21: %s)",
                         t->dev, t->index, changed, vtsm_rule_text(VTSM_RULE_TDI_21));
        goto out;
    }

    /* START_INTERFACE_REQ with the LOCK nonce; the nonce is single-use either way. */
    st = tdisp_start(c, t->dev, t->index, nonce);
    if (st != VTSM_OK)
        st = vtsm_wrap(st, "accept of %s TDI %u: START_INTERFACE failed, TDI moved to ERROR",
                       t->dev, t->index);
    OPENSSL_cleanse(t->lock_nonce, sizeof(t->lock_nonce));
    t->nonce_valid = false;
    if (st == VTSM_OK) {
        st = tsm_tdi_set_state(t, TSM_TDI_REQ_ACCEPT, TSM_TDI_WHO_OWNER_GUEST, guest_tvm,
                               TSM_TDI_RUN);
        if (st == VTSM_OK)
            t->mmio_enabled = t->dma_enabled = true;
    }
    if (st != VTSM_OK)
        to_error(t, VTSM_RULE_NONE); /* also when the device runs a TDI the TSM cannot follow */
out:
    OPENSSL_cleanse(nonce, sizeof(nonce));
    return st;
}

vtsm_status tsm_tdi_unbind(const struct tsm_tdisp_chan *c, struct tsm_tdi *t,
                           vtsm_status *stop_status, char *stop_detail, size_t detail_cap)
{
    vtsm_status sst, st;

    VTSM_ENSURE(t != NULL, VTSM_E_INVAL, "unbind: NULL TDI");
    if (t->state == TSM_TDI_CONFIG_UNLOCKED && t->owner_tvm != 0) {
        /* an assignment the owner's UNLOCK left: the device is already unlocked */
        VTSM_GUARD(tsm_tdi_set_state(t, TSM_TDI_REQ_RELEASE, TSM_TDI_WHO_HOST, 0,
                                     TSM_TDI_CONFIG_UNLOCKED));
        tsm_tdi_reset(t);
        if (stop_status)
            *stop_status = VTSM_OK;
        if (stop_detail && detail_cap)
            stop_detail[0] = '\0';
        vtsm_err_clear();
        return VTSM_OK;
    }
    VTSM_GUARD(tsm_tdi_check(t, TSM_TDI_REQ_UNBIND, TSM_TDI_WHO_HOST, 0, NULL));
    if (c != NULL && c->spdm != NULL)
        sst = tdisp_stop(c, t->dev, t->index);
    else
        sst = vtsm_fail(VTSM_E_CLOSED, "no SPDM session with %s: STOP_INTERFACE_REQ not sent",
                        t->dev);
    if (stop_status)
        *stop_status = sst;
    if (stop_detail && detail_cap)
        snprintf(stop_detail, detail_cap, "%s", sst == VTSM_OK ? "" : vtsm_err_detail());
    /* Unbound in the TSM whatever the device said (docs/abi.md section 10). */
    st = tsm_tdi_set_state(t, TSM_TDI_REQ_UNBIND, TSM_TDI_WHO_HOST, 0, TSM_TDI_CONFIG_UNLOCKED);
    if (st == VTSM_OK)
        tsm_tdi_reset(t);
    if (st == VTSM_OK)
        vtsm_err_clear();
    return st;
}

vtsm_status tsm_tdi_guest_unlock(const struct tsm_tdisp_chan *c, struct tsm_tdi *t,
                                 uint32_t guest_tvm, vtsm_status *stop_status)
{
    vtsm_status sst, st;

    VTSM_ENSURE(t != NULL, VTSM_E_INVAL, "unlock: NULL TDI");
    VTSM_GUARD(tsm_tdi_check(t, TSM_TDI_REQ_UNLOCK, TSM_TDI_WHO_OWNER_GUEST, guest_tvm, NULL));
    if (c != NULL && c->spdm != NULL)
        sst = tdisp_stop(c, t->dev, t->index);
    else
        sst = vtsm_fail(VTSM_E_CLOSED, "no SPDM session with %s: STOP_INTERFACE_REQ not sent",
                        t->dev);
    if (stop_status)
        *stop_status = sst;
    st = tsm_tdi_set_state(t, TSM_TDI_REQ_UNLOCK, TSM_TDI_WHO_OWNER_GUEST, guest_tvm,
                           TSM_TDI_CONFIG_UNLOCKED);
    if (st == VTSM_OK) {
        uint16_t flags = t->lock_flags;
        tsm_tdi_reset(t);
        t->owner_tvm = guest_tvm; /* still assigned: the guest may LOCK it again */
        t->lock_flags = flags;
        t->guest_unlocked = true;
        vtsm_err_clear();
    }
    return st;
}

vtsm_status tsm_tdi_debug_error(struct tsm_tdi *t, uint32_t guest_tvm)
{
    VTSM_ENSURE(t != NULL, VTSM_E_INVAL, "debug: NULL TDI");
    VTSM_GUARD(tsm_tdi_set_state(t, TSM_TDI_REQ_DEBUG_ERROR, TSM_TDI_WHO_OWNER_GUEST, guest_tvm,
                                 TSM_TDI_ERROR));
    t->mmio_enabled = t->dma_enabled = false;
    OPENSSL_cleanse(t->lock_nonce, sizeof(t->lock_nonce));
    t->nonce_valid = false;
    t->error_rule = VTSM_RULE_TDI_24;
    return VTSM_OK;
}

vtsm_status tsm_tdi_reject(struct tsm_tdi *t, uint32_t guest_tvm, const char *reason)
{
    VTSM_ENSURE(t != NULL, VTSM_E_INVAL, "reject: NULL TDI");
    if (reason == NULL)
        reason = "rejected by the TVM";
    VTSM_ENSURE(strlen(reason) <= TSM_TDI_REASON_MAX, VTSM_E_ABI_ARG,
                "reject reason of %zu bytes exceeds %u", strlen(reason), TSM_TDI_REASON_MAX);
    VTSM_GUARD(tsm_tdi_check(t, TSM_TDI_REQ_REJECT, TSM_TDI_WHO_OWNER_GUEST, guest_tvm, NULL));
    snprintf(t->guest_rejected, sizeof(t->guest_rejected), "%s", reason);
    t->rejected = true;
    return VTSM_OK;
}

/* ---------------------------------------------------------------- INFO and the report */

vtsm_status tsm_tdi_report(const struct tsm_tdi *t, struct vtsm_tdisp_report *rep)
{
    VTSM_ENSURE(t != NULL && rep != NULL, VTSM_E_INVAL, "TDI report: NULL argument");
    VTSM_ENSURE(t->owner_tvm != 0 && t->report.len != 0, VTSM_E_STATE, "%s TDI %u is not bound",
                t->dev, t->index);
    return vtsm_tdisp_report_parse(t->report.data, t->report.len, rep);
}

void tsm_tdi_info_free(struct tsm_tdi_info *i)
{
    if (!i)
        return;
    vtsm_spdm_meas_free(&i->fresh);
    free(i->rep);
    memset(i, 0, sizeof(*i));
}

/* Every provisioned slot's digest as the device's DIGESTS gave it (the session's hash),
 * and one digest over them all, (slot byte || digest) in slot order, for the token. */
static vtsm_status info_slots(const struct tsm_tdisp_chan *c, struct tsm_tdi_info *out)
{
    uint8_t buf[8 * (1 + VTSM_HASH_MAX)];
    size_t n = 0, hlen = vtsm_hash_size(vtsm_spdm_req_info(c->spdm)->hash);
    VTSM_ENSURE(hlen == out->digest_len, VTSM_E_INTERNAL,
                "info: slot digests of %zu bytes, TDI digests of %zu", hlen, out->digest_len);
    for (uint8_t s = 0; s < 8; s++) {
        const uint8_t *d = vtsm_spdm_req_slot_digest(c->spdm, s);
        if (!d)
            continue;
        out->slot_mask |= (uint8_t)(1u << s);
        memcpy(out->slot_digest[s], d, hlen);
        buf[n++] = s;
        memcpy(buf + n, d, hlen);
        n += hlen;
    }
    return vtsm_hash(out->t->digest_alg, buf, n, out->slots_digest);
}

vtsm_status tsm_tdi_info(const struct tsm_tdisp_chan *c, const struct tsm_tdi *t,
                         const struct tsm_tdi_info_args *a, struct tsm_tdi_info *out)
{
    vtsm_status st;

    VTSM_ENSURE(out != NULL, VTSM_E_INVAL, "info: NULL argument");
    memset(out, 0, sizeof(*out));
    VTSM_GUARD(chan_check(c));
    VTSM_ENSURE(t != NULL && a != NULL && a->tvm_identity != NULL, VTSM_E_INVAL,
                "info: NULL argument");
    VTSM_ENSURE(a->nonce == NULL || (a->tsm_key != NULL && (a->kid != NULL || a->kid_len == 0)),
                VTSM_E_INVAL, "info with a nonce needs the TSM identity key");
    VTSM_GUARD(tsm_tdi_check(t, TSM_TDI_REQ_INFO, TSM_TDI_WHO_OWNER_GUEST, a->guest_tvm, NULL));
    VTSM_ENSURE(t->report.len != 0 && t->have_meas && t->digest_len != 0, VTSM_E_INTERNAL,
                "info: bound %s TDI %u has no cached report or measurements", t->dev, t->index);
    const struct vtsm_buf *chain = vtsm_spdm_req_chain_raw(c->spdm, c->slot);
    VTSM_ENSURE(chain != NULL && chain->len != 0, VTSM_E_STATE,
                "info: no certificate chain of slot %u for %s", c->slot, t->dev);
    enum vtsm_hash_alg halg = t->digest_alg;

    out->t = t;
    out->chain = chain;
    out->digest_len = t->digest_len;
    out->meas = &t->meas;
    out->after_lock = tsm_tdi_after_lock(t, t->meas_seq);
    /* With a nonce: fresh signed measurements whose SPDM nonce is the guest's. */
    if (a->nonce) {
        st = vtsm_spdm_req_get_measurements(c->spdm, c->slot, a->nonce, &out->fresh);
        if (st != VTSM_OK)
            return vtsm_wrap(st, "info of %s TDI %u: fresh GET_MEASUREMENTS", t->dev, t->index);
        out->meas = &out->fresh;
        out->after_lock = tsm_tdi_after_lock(t, tsm_tdi_event());
    }
    out->rep = malloc(sizeof(*out->rep));
    VTSM_ENSURE(out->rep != NULL, VTSM_E_NOMEM, "info: out of memory");
    VTSM_GUARD(vtsm_tdisp_report_parse(t->report.data, t->report.len, out->rep));
    VTSM_GUARD(vtsm_hash(halg, chain->data, chain->len, out->chain_digest));
    out->vca = vtsm_spdm_req_vca(c->spdm);
    out->kex = vtsm_spdm_req_kex_transcript(c->spdm);
    out->kex_sig = vtsm_spdm_req_kex_signature(c->spdm, &out->kex_sig_len);
    VTSM_ENSURE(out->vca != NULL && out->kex != NULL && out->kex_sig != NULL, VTSM_E_STATE,
                "info: %s has no VCA or KEY_EXCHANGE transcript", t->dev);
    VTSM_GUARD(vtsm_hash(halg, out->vca->data, out->vca->len, out->vca_digest));
    VTSM_GUARD(vtsm_hash(halg, out->kex->data, out->kex->len, out->kex_digest));
    VTSM_GUARD(info_slots(c, out));
    const struct vtsm_spdm_meas *ms = out->meas;
    VTSM_GUARD(vtsm_hash(halg, ms->record.data, ms->record.len, out->meas_digest));
    if (a->nonce)
        VTSM_GUARD(vtsm_hash(halg, ms->transcript.data, ms->transcript.len, out->tr_digest));
    return VTSM_OK;
}

/* ---------------------------------------------------------------- device check */

vtsm_status tsm_tdi_check_device(const struct tsm_tdisp_chan *c, struct tsm_tdi *t,
                                 uint8_t *dev_state)
{
    uint8_t ds = 0xFF;
    VTSM_GUARD(chan_check(c));
    VTSM_ENSURE(t != NULL && dev_state != NULL, VTSM_E_INVAL, "check: NULL argument");
    *dev_state = 0xFF;
    if (t->state != TSM_TDI_CONFIG_LOCKED && t->state != TSM_TDI_RUN)
        return VTSM_OK;
    VTSM_GUARD(tdisp_get_state(c, t->dev, t->index, &ds));
    *dev_state = ds;
    if (ds == (uint8_t)t->state)
        return VTSM_OK;
    enum vtsm_rule rule = ds == VTSM_TDI_ERROR ? VTSM_RULE_TDI_7 : VTSM_RULE_TDI_8;
    enum tsm_tdi_state was = t->state;
    to_error(t, rule);
    return vtsm_refuse(VTSM_E_PEER_STATE, rule,
                       "check of %s TDI %u: the device reports it %s while the TSM has it %s; "
                       "TDI moved to ERROR (rule %s: %s)",
                       t->dev, t->index, tsm_tdi_state_name((enum tsm_tdi_state)ds),
                       tsm_tdi_state_name(was), vtsm_rule_id(rule), vtsm_rule_text(rule));
}

/* ---------------------------------------------------------------- recovery */

static void record_event(struct tsm_tdi *t, const char *what, enum vtsm_rule rule)
{
    snprintf(t->last_event, sizeof(t->last_event), "%s", what);
    t->last_rule = rule;
}

vtsm_status tsm_tdi_recover(const struct tsm_tdisp_chan *c, struct tsm_tdi *t,
                            const struct tsm_tdi_ref *ref, struct tsm_tdi_recovery *out)
{
    uint8_t nonce[VTSM_TDISP_NONCE_SIZE];
    uint8_t bound_meas[VTSM_HASH_MAX], nonce_digest[VTSM_HASH_MAX];
    uint64_t lock_seq = 0, meas_seq = 0;
    struct tsm_tdi_recovery rec;
    struct vtsm_buf report = {0};
    struct vtsm_spdm_meas meas;
    bool need_stop = false;
    uint8_t dev_state = 0;
    vtsm_status st;

    memset(&meas, 0, sizeof(meas));
    memset(&rec, 0, sizeof(rec));
    if (out)
        memset(out, 0, sizeof(*out));
    VTSM_GUARD(chan_check(c));
    VTSM_ENSURE(t != NULL, VTSM_E_INVAL, "recover: NULL TDI");
    VTSM_GUARD(tsm_tdi_check(t, TSM_TDI_REQ_RESET, TSM_TDI_WHO_HOST, 0, NULL));
    VTSM_ENSURE(t->report.len != 0 && t->have_meas && t->digest_len != 0, VTSM_E_INTERNAL,
                "recover: %s TDI %u in ERROR has no bound report or measurements", t->dev,
                t->index);
    const struct vtsm_spdm_info *info = vtsm_spdm_req_info(c->spdm);
    enum vtsm_hash_alg halg = t->digest_alg;
    size_t hlen = t->digest_len;
    VTSM_ENSURE(info->session_active, VTSM_E_STATE, "recover of %s TDI %u: no SPDM session", t->dev,
                t->index);

    /* FUNCTION_LEVEL_RESET: the function starts over, unlocked. */
    VTSM_GUARD_GOTO(tsm_tdisp_flr(c, t->index, &dev_state));
    if (dev_state == VTSM_TDI_CONFIG_UNLOCKED)
        VTSM_GUARD_GOTO(tdisp_get_state(c, t->dev, t->index, &dev_state));
    if (dev_state != VTSM_TDI_CONFIG_UNLOCKED) {
        st = vtsm_refuse(VTSM_E_PEER_STATE, VTSM_RULE_TDI_8,
                         "recover of %s TDI %u: after FUNCTION_LEVEL_RESET the device reports "
                         "it %s, not CONFIG_UNLOCKED (rule TDI.8)",
                         t->dev, t->index, tsm_tdi_state_name((enum tsm_tdi_state)dev_state));
        goto out;
    }

    /* Lock again as bound, and take the evidence afresh. */
    st = tdisp_lock(c, t->dev, t->index, t->lock_flags, t->stream_id, nonce);
    need_stop = st != VTSM_E_PEER_ERROR;
    if (st != VTSM_OK)
        goto out;
    lock_seq = tsm_tdi_event(); /* LOCK_INTERFACE_RSP is in */
    VTSM_GUARD_GOTO(tdisp_get_report(c, t->dev, t->index, &report));
    VTSM_GUARD_GOTO(vtsm_hash(halg, report.data, report.len, rec.report_digest));
    st = vtsm_spdm_req_get_measurements(c->spdm, c->slot, NULL, &meas);
    if (st != VTSM_OK) {
        st = vtsm_wrap(st, "fresh GET_MEASUREMENTS after the recovery's LOCK_INTERFACE");
        goto out;
    }
    meas_seq = tsm_tdi_event();
    VTSM_GUARD_GOTO(vtsm_hash(halg, meas.record.data, meas.record.len, rec.meas_digest));
    VTSM_GUARD_GOTO(vtsm_hash(halg, nonce, sizeof(nonce), nonce_digest));
    VTSM_GUARD_GOTO(vtsm_hash(halg, t->meas.record.data, t->meas.record.len, bound_meas));
    rec.digest_len = hlen;
    rec.have_digests = true;
    rec.same_as_bound = report.len == t->report.len &&
                        CRYPTO_memcmp(rec.report_digest, t->report_digest, hlen) == 0 &&
                        meas.record.len == t->meas.record.len &&
                        CRYPTO_memcmp(rec.meas_digest, bound_meas, hlen) == 0;
    rec.reference_match = ref != NULL && ref->report_digest_len == hlen &&
                          ref->meas_digest_len == hlen &&
                          CRYPTO_memcmp(ref->report_digest, rec.report_digest, hlen) == 0 &&
                          CRYPTO_memcmp(ref->meas_digest, rec.meas_digest, hlen) == 0;
    if (!rec.same_as_bound && !rec.reference_match) {
        bool rdiff = report.len != t->report.len ||
                     CRYPTO_memcmp(rec.report_digest, t->report_digest, hlen) != 0;
        bool mdiff = !rdiff || CRYPTO_memcmp(rec.meas_digest, bound_meas, hlen) != 0;
        st = vtsm_refuse(VTSM_E_PEER_STATE, VTSM_RULE_TDI_11,
                         "recover of %s TDI %u: the device's %s%s%s not what was bound%s (rule "
                         "TDI.11)",
                         t->dev, t->index, rdiff ? "interface report" : "",
                         rdiff && mdiff ? " and measurements are"
                         : mdiff        ? "measurements are"
                                        : " is",
                         "", ref ? " nor the host's reference values" : "");
        goto out;
    }

    /* Commit: state first (re-checked), then the new lock (and evidence). */
    st = tsm_tdi_set_state(t, TSM_TDI_REQ_RESET, TSM_TDI_WHO_HOST, 0, TSM_TDI_CONFIG_LOCKED);
    if (st == VTSM_OK) {
        memcpy(t->lock_nonce, nonce, sizeof(nonce));
        memcpy(t->nonce_digest, nonce_digest, hlen);
        t->nonce_valid = true;
        t->mmio_enabled = t->dma_enabled = false;
        t->error_rule = VTSM_RULE_NONE;
        /* the new lock and the measurements taken after it (after_lock, the guest's
         * ACCEPT binding) */
        t->lock_seq = lock_seq;
        t->meas_seq = meas_seq;
        memcpy(t->meas_digest, rec.meas_digest, hlen);
        if (!rec.same_as_bound) {
            /* the host's reference values vouch for the new evidence: it is what is bound now */
            vtsm_buf_wipe(&t->report);
            t->report = report;
            memset(&report, 0, sizeof(report));
            memcpy(t->report_digest, rec.report_digest, hlen);
        }
        /* the measurements taken after this lock (identical records: the signature, nonce
         * and transcript are the fresh ones) */
        vtsm_spdm_meas_free(&t->meas);
        t->meas = meas;
        memset(&meas, 0, sizeof(meas));
        t->recoveries++;
        record_event(t, rec.same_as_bound ? "recovered" : "recovered_reference", VTSM_RULE_TDI_10);
        need_stop = false;
    }
out:
    if (st != VTSM_OK) {
        struct vtsm_err_state saved;
        vtsm_err_save(&saved);
        vtsm_status sst = need_stop ? tdisp_stop(c, t->dev, t->index) : VTSM_OK;
        enum vtsm_rule rule = saved.status == st ? saved.rule : VTSM_RULE_NONE;
        record_event(t, "recovery_refused", rule);
        st = vtsm_refuse(st, rule, "%s%s; TDI stays %s", saved.detail,
                         need_stop ? (sst == VTSM_OK ? "; STOP_INTERFACE_REQ answered"
                                                     : "; STOP_INTERFACE_REQ failed")
                                   : "",
                         tsm_tdi_state_name(t->state));
    }
    if (out)
        *out = rec;
    OPENSSL_cleanse(nonce, sizeof(nonce));
    OPENSSL_cleanse(nonce_digest, sizeof(nonce_digest));
    vtsm_buf_wipe(&report);
    vtsm_spdm_meas_free(&meas);
    return st;
}
