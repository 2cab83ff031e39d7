/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TVM registry and guest request authentication (docs/abi.md section 9).
 * Called with the registry's protecting lock held (tsmd: tsm->lock); see tsm_tvm.h.
 */
#include "tsm_tvm.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/params.h>

#include "vtsm_crypto.h"
#include "vtsm_guard.h"

#define RULE_TVM1   "TVM.1: guest_key is a 65-byte uncompressed P-256 point on the curve"
#define RULE_TVM2   "TVM.2: a TVM with bound TDIs is not destroyed"
#define RULE_TVM3   "TVM.3: one TVM per guest key"
#define RULE_GUEST1 "GUEST.1: the request is signed with the TVM's own key"
#define RULE_GUEST2 "GUEST.2: seq must exceed the TVM's last accepted seq"
#define RULE_GUEST3 "GUEST.3: body.tvm names the TVM of the envelope"

void tsm_tvm_registry_init(struct tsm_tvm_registry *r)
{
    memset(r, 0, sizeof(*r));
    r->next_id = 1;
}

static void tvm_free(struct tsm_tvm *v)
{
    EVP_PKEY_free(v->pub);
    OPENSSL_cleanse(v, sizeof(*v));
    free(v);
}

void tsm_tvm_registry_fini(struct tsm_tvm_registry *r)
{
    if (r == NULL)
        return;
    while (r->head) {
        struct tsm_tvm *v = r->head;
        r->head = v->next;
        tvm_free(v);
    }
    r->count = 0;
}

/* SEC1 uncompressed P-256 point -> public key, refusing points off the curve. */
static vtsm_status p256_point_key(const uint8_t *pt, size_t len, EVP_PKEY **out)
{
    EVP_PKEY_CTX *ctx = NULL, *chk = NULL;
    EVP_PKEY *pk = NULL;
    vtsm_status st = VTSM_OK;
    char group[] = "prime256v1";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)pt, len),
        OSSL_PARAM_construct_end(),
    };

    *out = NULL;
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    VTSM_ENSURE_GOTO(ctx != NULL, VTSM_E_NOMEM, "guest key: no EC context");
    VTSM_OSSL_GOTO(EVP_PKEY_fromdata_init(ctx));
    VTSM_ENSURE_RULE_GOTO(
        EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) == 1 && pk != NULL, VTSM_E_ABI_ARG,
        VTSM_RULE_TVM_1, "guest_key is not a P-256 point (rule %s)", RULE_TVM1);
    chk = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
    VTSM_ENSURE_GOTO(chk != NULL, VTSM_E_NOMEM, "guest key: no check context");
    VTSM_ENSURE_RULE_GOTO(EVP_PKEY_public_check(chk) == 1, VTSM_E_ABI_ARG, VTSM_RULE_TVM_1,
                          "guest_key is not on the P-256 curve (rule %s)", RULE_TVM1);
    *out = pk;
    pk = NULL;
out:
    if (st != VTSM_OK)
        ERR_clear_error();
    EVP_PKEY_free(pk);
    EVP_PKEY_CTX_free(chk);
    EVP_PKEY_CTX_free(ctx);
    return st;
}

vtsm_status tsm_tvm_create(struct tsm_tvm_registry *r, const char *name, const uint8_t *guest_key,
                           size_t key_len, const struct tsm_tvm **out)
{
    struct tsm_tvm *v = NULL;
    uint8_t identity[TSM_TVM_IDENTITY_SIZE];
    vtsm_status st;

    VTSM_ENSURE(r != NULL && (guest_key != NULL || key_len == 0), VTSM_E_INVAL,
                "tvm_create: NULL argument");
    if (out)
        *out = NULL;
    VTSM_ENSURE(name == NULL || strlen(name) <= TSM_TVM_NAME_MAX, VTSM_E_ABI_ARG,
                "tvm_create: name of %zu bytes exceeds %u", name ? strlen(name) : 0,
                TSM_TVM_NAME_MAX);
    VTSM_ENSURE_RULE(key_len == TSM_TVM_KEY_SIZE && guest_key[0] == 0x04, VTSM_E_ABI_ARG,
                     VTSM_RULE_TVM_1,
                     "tvm_create: guest_key of %zu bytes starting 0x%02x is not 0x04 || X || Y "
                     "(rule %s)",
                     key_len, key_len ? guest_key[0] : 0, RULE_TVM1);
    VTSM_GUARD(vtsm_hash(VTSM_HASH_SHA256, guest_key, key_len, identity));
    for (const struct tsm_tvm *o = r->head; o; o = o->next)
        VTSM_ENSURE_RULE(CRYPTO_memcmp(o->identity, identity, sizeof(identity)) != 0, VTSM_E_EXISTS,
                         VTSM_RULE_TVM_3,
                         "tvm_create: this guest_key is already TVM %u's (rule %s)", o->id,
                         RULE_TVM3);
    VTSM_ENSURE_RULE(r->count < TSM_TVM_MAX, VTSM_E_LIMIT, VTSM_RULE_TVM_5,
                     "tvm_create: %u TVMs exist (the limit)", r->count);
    VTSM_ENSURE(r->next_id != 0, VTSM_E_LIMIT, "tvm_create: TVM numbers exhausted");

    v = calloc(1, sizeof(*v));
    VTSM_ENSURE(v != NULL, VTSM_E_NOMEM, "tvm_create: out of memory");
    VTSM_GUARD_GOTO(p256_point_key(guest_key, key_len, &v->pub));
    if (name)
        snprintf(v->name, sizeof(v->name), "%s", name);
    memcpy(v->key, guest_key, TSM_TVM_KEY_SIZE);
    memcpy(v->identity, identity, sizeof(identity));
    v->id = r->next_id++;
    v->next = r->head;
    r->head = v;
    r->count++;
    if (out)
        *out = v;
    v = NULL;
    st = VTSM_OK;
out:
    if (v)
        tvm_free(v);
    return st;
}

const struct tsm_tvm *tsm_tvm_find(const struct tsm_tvm_registry *r, uint64_t id)
{
    if (r == NULL || id == 0 || id > UINT32_MAX)
        return NULL;
    for (const struct tsm_tvm *v = r->head; v; v = v->next)
        if (v->id == id)
            return v;
    return NULL;
}

void tsm_tvm_set_debug(struct tsm_tvm_registry *r, uint64_t id, bool debug)
{
    for (struct tsm_tvm *v = r->head; v; v = v->next)
        if (v->id == id)
            v->debug = debug;
}

void tsm_tvm_reserve(struct tsm_tvm_registry *r, uint64_t id, int delta)
{
    for (struct tsm_tvm *v = r ? r->head : NULL; v; v = v->next)
        if (v->id == id) {
            v->bound_tdis = (unsigned)((int)v->bound_tdis + delta);
            return;
        }
}

vtsm_status tsm_tvm_destroy(struct tsm_tvm_registry *r, uint64_t id, unsigned bound_tdis)
{
    VTSM_ENSURE(r != NULL, VTSM_E_INVAL, "tvm_destroy: NULL registry");
    for (struct tsm_tvm **pp = &r->head; *pp; pp = &(*pp)->next) {
        struct tsm_tvm *v = *pp;
        if (v->id != id)
            continue;
        VTSM_ENSURE_RULE(
            bound_tdis == 0, VTSM_E_STATE, VTSM_RULE_TVM_2,
            "tvm_destroy refused: TVM %u has %u bound TDI(s); unbind them first (rule %s)", v->id,
            bound_tdis, RULE_TVM2);
        *pp = v->next;
        r->count--;
        tvm_free(v);
        return VTSM_OK;
    }
    return vtsm_refuse(VTSM_E_NOT_FOUND, VTSM_RULE_TVM_4, "no TVM %llu (tvm_create registers one)",
                       (unsigned long long)id);
}

/* ---------------------------------------------------------------- guest requests */

/* Re-fail with st, prefixing the body getter's detail. */
/* Step 2: ECDSA-P256-SHA256 over prefix || body. */
static vtsm_status verify_sig(EVP_PKEY *pub, uint32_t tvm, const uint8_t *body, size_t body_len,
                              const uint8_t *sig, size_t sig_len)
{
    static const char prefix[] = VTSM_ABI_GUEST_SIG_PREFIX;
    const size_t plen = sizeof(prefix) - 1;
    uint8_t *msg;
    vtsm_status st;

    VTSM_ENSURE_RULE(sig_len == TSM_GUEST_SIG_SIZE, VTSM_E_AUTH, VTSM_RULE_GUEST_1,
                     "guest request for TVM %u: signature of %zu bytes, not %u (rule %s)", tvm,
                     sig_len, TSM_GUEST_SIG_SIZE, RULE_GUEST1);
    msg = malloc(plen + body_len);
    VTSM_ENSURE(msg != NULL, VTSM_E_NOMEM, "guest request: out of memory");
    memcpy(msg, prefix, plen);
    if (body_len)
        memcpy(msg + plen, body, body_len);
    st = vtsm_ecdsa_verify(pub, VTSM_ASYM_ECDSA_P256, VTSM_HASH_SHA256, msg, plen + body_len, sig,
                           sig_len);
    free(msg);
    if (st == VTSM_E_NOMEM)
        return st;
    if (st != VTSM_OK) {
        ERR_clear_error();
        return vtsm_refuse(VTSM_E_AUTH, VTSM_RULE_GUEST_1,
                           "guest request for TVM %u: signature does not verify with the TVM's "
                           "key (rule %s)",
                           tvm, RULE_GUEST1);
    }
    return VTSM_OK;
}

_Static_assert(TSM_GUEST_NONCE_SIZE == VTSM_ABI_GUEST_NONCE_SIZE, "guest nonce sizes differ");
_Static_assert(TSM_TDI_REASON_MAX == VTSM_ABI_GUEST_REASON_MAX, "reject reason limits differ");

/* The TVM of number tvm_id, for a guest request (rule TVM.4 if there is none). */
static vtsm_status find_rw(struct tsm_tvm_registry *r, uint64_t tvm_id, struct tsm_tvm **out)
{
    *out = NULL;
    for (struct tsm_tvm *it = r->head; it && tvm_id <= UINT32_MAX; it = it->next)
        if (it->id == tvm_id)
            *out = it;
    VTSM_ENSURE_RULE(*out != NULL, VTSM_E_NOT_FOUND, VTSM_RULE_TVM_4,
                     "guest request for TVM %llu: no such TVM", (unsigned long long)tvm_id);
    return VTSM_OK;
}

vtsm_status tsm_tvm_verify_request(struct tsm_tvm_registry *r, uint64_t tvm_id, const uint8_t *body,
                                   size_t body_len, const uint8_t *sig, size_t sig_len,
                                   struct vtsm_abi_guest_body *out)
{
    struct vtsm_abi_guest_body q;
    struct tsm_tvm *v = NULL;
    vtsm_status st;

    VTSM_ENSURE(r != NULL && out != NULL && (body != NULL || body_len == 0) &&
                    (sig != NULL || sig_len == 0),
                VTSM_E_INVAL, "guest request: NULL argument");
    memset(out, 0, sizeof(*out));
    memset(&q, 0, sizeof(q));

    /* 1. the TVM */
    VTSM_GUARD(find_rw(r, tvm_id, &v));

    /* 2. its signature, before a byte of the body is parsed. The check may run on tsmd's
     * crypto worker while the calling job yields; the key is held for it, and the TVM is
     * looked up again afterwards (it may have been destroyed meanwhile). */
    EVP_PKEY *pub = v->pub;
    uint32_t id = v->id;
    VTSM_ENSURE(EVP_PKEY_up_ref(pub) == 1, VTSM_E_NOMEM, "guest request: key reference");
    st = verify_sig(pub, id, body, body_len, sig, sig_len);
    EVP_PKEY_free(pub);
    VTSM_GUARD(st);
    VTSM_GUARD(find_rw(r, tvm_id, &v));

    /* 3. a valid bounded body, decoded by the ABI (abi/vtsm_abi_guest.h) */
    VTSM_GUARD_GOTO(vtsm_abi_guest_body_decode(body, body_len, &q));

    /* 4. for this TVM */
    VTSM_ENSURE_RULE_GOTO(
        q.tvm == v->id, VTSM_E_AUTH, VTSM_RULE_GUEST_3,
        "guest request: body names TVM %u inside an envelope for TVM %u (rule %s)", q.tvm, v->id,
        RULE_GUEST3);
    /* 5. fresh */
    VTSM_ENSURE_RULE_GOTO(q.seq > v->last_seq, VTSM_E_REPLAY, VTSM_RULE_GUEST_2,
                          "guest request for TVM %u: seq %llu is not above the last accepted %llu "
                          "(rule %s)",
                          v->id, (unsigned long long)q.seq, (unsigned long long)v->last_seq,
                          RULE_GUEST2);

    v->last_seq = q.seq;
    v->requests++;
    *out = q;
    st = VTSM_OK;
out:
    OPENSSL_cleanse(&q, sizeof(q));
    return st;
}
