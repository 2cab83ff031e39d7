/* SPDX-License-Identifier: BSD-3-Clause */
#include "vtsm_abi_guest.h"

#include <string.h>

#include <openssl/crypto.h>

#include "vtsm_abi.h"
#include "vtsm_guard.h"

#define RULE_GUEST4 "GUEST.4: the body carries exactly the keys its operation takes"

/* One of ACCEPT's digests: absent, or a bstr of 0..VTSM_ABI_GUEST_DIGEST_MAX bytes. */
static vtsm_status opt_digest(const cbor_item_t *b, const char *key, uint8_t *out, size_t *len,
                              bool *has)
{
    const uint8_t *p = NULL;
    size_t n = 0;
    vtsm_status st = vtsm_abi_opt_bytes(b, key, &p, &n, has);
    if (st != VTSM_OK)
        return vtsm_wrap(st, "guest request body");
    VTSM_ENSURE(!*has || n <= VTSM_ABI_GUEST_DIGEST_MAX, VTSM_E_ABI_ARG,
                "guest request body: %s of %zu bytes, at most %u", key, n,
                VTSM_ABI_GUEST_DIGEST_MAX);
    if (*has && n)
        memcpy(out, p, n);
    *len = *has ? n : 0;
    return VTSM_OK;
}

/* MMIO_VALIDATE's keys (range, gpa, pages, ? private): required by it, refused elsewhere. */
static vtsm_status parse_mmio(const cbor_item_t *b, uint64_t gop, struct vtsm_abi_guest_body *q)
{
    uint64_t range = 0, gpa = 0, pages = 0;
    bool has_range = false, has_gpa = false, has_pages = false, has_priv = false, priv = true;
    vtsm_status st;
    if ((st = vtsm_abi_opt_uint(b, VTSM_ABI_K_RANGE, &range, &has_range)) != VTSM_OK ||
        (st = vtsm_abi_opt_uint(b, VTSM_ABI_K_GPA, &gpa, &has_gpa)) != VTSM_OK ||
        (st = vtsm_abi_opt_uint(b, VTSM_ABI_K_PAGES, &pages, &has_pages)) != VTSM_OK ||
        (st = vtsm_abi_opt_bool(b, VTSM_ABI_K_PRIVATE, &priv, &has_priv)) != VTSM_OK)
        return vtsm_wrap(st, "guest request body");
    bool mmio = gop == VTSM_ABI_GOP_MMIO_VALIDATE;
    VTSM_ENSURE_RULE(has_range == mmio && has_gpa == mmio && has_pages == mmio &&
                         (!has_priv || mmio),
                     VTSM_E_ABI_ARG, VTSM_RULE_GUEST_4,
                     "guest request body: %s %s range, gpa and pages (rule %s)",
                     vtsm_abi_gop_name(gop), mmio ? "needs" : "takes no", RULE_GUEST4);
    if (!mmio)
        return VTSM_OK;
    VTSM_ENSURE(range < VTSM_ABI_MMIO_RANGES_MAX, VTSM_E_ABI_ARG,
                "guest request body: range %llu out of range 0..%u", (unsigned long long)range,
                VTSM_ABI_MMIO_RANGES_MAX - 1);
    VTSM_ENSURE(pages >= 1 && pages <= UINT32_MAX, VTSM_E_ABI_ARG,
                "guest request body: pages %llu out of range 1..%u", (unsigned long long)pages,
                UINT32_MAX);
    q->has_mmio = true;
    q->range = (uint32_t)range;
    q->gpa = gpa;
    q->pages = pages;
    q->priv = has_priv ? priv : true;
    return VTSM_OK;
}

/* The body's fields and the keys its operation takes. */
static vtsm_status parse_body(const cbor_item_t *b, struct vtsm_abi_guest_body *q)
{
    uint64_t gop, tvm, tdi = 0;
    const uint8_t *nonce = NULL;
    size_t nonce_len = 0;
    vtsm_status st;

    st = vtsm_abi_check_keys_in(b, vtsm_abi_keys_guest_body, "guest request body");
    if (st != VTSM_OK)
        return st;
    if ((st = vtsm_abi_get_uint(b, VTSM_ABI_K_GOP, &gop)) != VTSM_OK ||
        (st = vtsm_abi_get_uint(b, VTSM_ABI_K_TVM, &tvm)) != VTSM_OK ||
        (st = vtsm_abi_get_uint(b, VTSM_ABI_K_SEQ, &q->seq)) != VTSM_OK ||
        (st = vtsm_abi_opt_tstr(b, VTSM_ABI_K_DEV, q->dev, sizeof(q->dev), &q->has_dev)) !=
            VTSM_OK ||
        (st = vtsm_abi_opt_uint(b, VTSM_ABI_K_TDI, &tdi, &q->has_tdi)) != VTSM_OK ||
        (st = vtsm_abi_opt_bytes(b, VTSM_ABI_K_NONCE, &nonce, &nonce_len, &q->has_nonce)) !=
            VTSM_OK ||
        (st = vtsm_abi_opt_tstr(b, VTSM_ABI_K_REASON, q->reason, sizeof(q->reason),
                                &q->has_reason)) != VTSM_OK)
        return vtsm_wrap(st, "guest request body");
    uint64_t scope = 0;
    if ((st = vtsm_abi_opt_uint(b, VTSM_ABI_K_SCOPE, &scope, &q->has_scope)) != VTSM_OK)
        return vtsm_wrap(st, "guest request body");
    bool has_rd = false, has_md = false, has_ld = false;
    VTSM_GUARD(
        opt_digest(b, VTSM_ABI_K_REPORT_DIGEST, q->report_digest, &q->report_digest_len, &has_rd));
    VTSM_GUARD(opt_digest(b, VTSM_ABI_K_MEASUREMENTS_DIGEST, q->meas_digest, &q->meas_digest_len,
                          &has_md));
    VTSM_GUARD(
        opt_digest(b, VTSM_ABI_K_LOCK_NONCE_DIGEST, q->lock_digest, &q->lock_digest_len, &has_ld));
    VTSM_ENSURE(vtsm_abi_gop_name(gop) != NULL, VTSM_E_ABI_ARG,
                "guest request body: gop 0x%llx is not a guest operation", (unsigned long long)gop);
    VTSM_ENSURE(tvm <= UINT32_MAX, VTSM_E_ABI_ARG, "guest request body: tvm %llu out of range",
                (unsigned long long)tvm);
    /* the device by its canonical PCI address (rule PDEV.30) */
    if (q->has_dev && (st = vtsm_abi_dev_canon(q->dev, q->dev)) != VTSM_OK)
        return vtsm_wrap(st, "guest request body");
    VTSM_ENSURE(tdi <= UINT32_MAX, VTSM_E_ABI_ARG, "guest request body: tdi %llu out of range",
                (unsigned long long)tdi);
    VTSM_ENSURE(!q->has_nonce || nonce_len == VTSM_ABI_GUEST_NONCE_SIZE, VTSM_E_ABI_ARG,
                "guest request body: nonce of %zu bytes, not %u", nonce_len,
                VTSM_ABI_GUEST_NONCE_SIZE);

    const char *op = vtsm_abi_gop_name(gop);
    bool targets = gop != VTSM_ABI_GOP_LIST;
    VTSM_ENSURE_RULE(q->has_dev == targets && q->has_tdi == targets, VTSM_E_ABI_ARG,
                     VTSM_RULE_GUEST_4, "guest request body: %s %s dev and tdi (rule %s)", op,
                     targets ? "needs" : "takes no", RULE_GUEST4);
    VTSM_ENSURE_RULE(!q->has_nonce || gop == VTSM_ABI_GOP_INFO, VTSM_E_ABI_ARG, VTSM_RULE_GUEST_4,
                     "guest request body: %s takes no nonce (rule %s)", op, RULE_GUEST4);
    VTSM_ENSURE_RULE(!q->has_reason || gop == VTSM_ABI_GOP_REJECT, VTSM_E_ABI_ARG,
                     VTSM_RULE_GUEST_4, "guest request body: %s takes no reason (rule %s)", op,
                     RULE_GUEST4);

    bool accept = gop == VTSM_ABI_GOP_ACCEPT;
    VTSM_ENSURE_RULE(has_rd == accept && has_md == accept && has_ld == accept, VTSM_E_ABI_ARG,
                     VTSM_RULE_GUEST_4,
                     "guest request body: %s %s report_digest, measurements_digest and "
                     "lock_nonce_digest (rule %s)",
                     op, accept ? "needs" : "takes no", RULE_GUEST4);
    q->has_binding = accept;
    VTSM_ENSURE_RULE(!q->has_scope || scope == (uint64_t)vtsm_abi_gop_scope(gop), VTSM_E_ABI_ARG,
                     VTSM_RULE_GUEST_5,
                     "guest request body: scope %llu, but %s is of scope %d (rule GUEST.5: %s)",
                     (unsigned long long)scope, op, vtsm_abi_gop_scope(gop),
                     vtsm_rule_text(VTSM_RULE_GUEST_5));
    q->scope = (uint32_t)scope;
    VTSM_GUARD(parse_mmio(b, gop, q));

    q->gop = (uint32_t)gop;
    q->tvm = (uint32_t)tvm;
    q->tdi = (uint32_t)tdi;
    if (q->has_nonce)
        memcpy(q->nonce, nonce, VTSM_ABI_GUEST_NONCE_SIZE);
    return VTSM_OK;
}

vtsm_status vtsm_abi_guest_body_decode(const uint8_t *body, size_t len,
                                       struct vtsm_abi_guest_body *out)
{
    cbor_item_t *b = NULL;
    vtsm_status st;

    VTSM_ENSURE(out != NULL && (body != NULL || len == 0), VTSM_E_INVAL,
                "guest request body: NULL argument");
    memset(out, 0, sizeof(*out));
    st = vtsm_abi_decode(body, len, &b);
    if (st != VTSM_OK)
        return vtsm_wrap(st == VTSM_E_NOMEM ? st : VTSM_E_ABI_MALFORMED, "guest request body");
    st = parse_body(b, out);
    cbor_decref(&b);
    if (st != VTSM_OK)
        OPENSSL_cleanse(out, sizeof(*out));
    return st;
}
