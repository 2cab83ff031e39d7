/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TVMs and the authentication of guest requests (docs/abi.md section 9).
 *
 * A TVM is registered by the host with its guest's public key (65-byte SEC1 uncompressed
 * P-256 point; the private key never leaves the guest shim). Its identity is SHA-256 of
 * that key. TVM numbers are assigned from 1 and never reused while tsmd runs, so a stale
 * number cannot reach a later TVM.
 *
 * A guest request is {tvm, body, sig}: sig = ECDSA-P256-SHA256 over
 * VTSM_ABI_GUEST_SIG_PREFIX || body (raw r||s), body = CBOR map {gop, tvm, seq, ? dev,
 * ? tdi, ? nonce, ? reason}. tsm_tvm_verify_request() makes the checks of docs/abi.md section 9.4
 * in the specified order and consumes the sequence number only when all pass.
 *
 * Rules named in refusals:
 *   TVM.1   guest_key is an uncompressed P-256 point on the curve
 *   TVM.2   a TVM with bound TDIs is not destroyed
 *   TVM.3   one TVM per guest key (identities are unique)
 *   GUEST.1 the body is signed by the TVM's own key
 *   GUEST.2 seq strictly greater than the last accepted seq of the TVM (seq 0 never is)
 *   GUEST.3 body.tvm names the TVM of the envelope
 *   GUEST.4 the body carries exactly the keys its operation takes (see below)
 *
 * Threading: the registry has no lock of its own: every call is made on tsmd's loop
 * thread. tsm_tvm_verify_request may yield inside (its signature check can run on the
 * crypto worker while the calling job waits, docs/architecture.md "Crypto off the loop"):
 * it holds its own reference to the TVM's key meanwhile, and looks the TVM up again after
 * the check, so a TVM destroyed in between refuses the request (TVM.4); the "check seq,
 * then consume it" step runs after the yield, without another. Records returned by
 * tsm_tvm_find() are valid until tsm_tvm_destroy() of that TVM.
 */
#ifndef TSM_TVM_H
#define TSM_TVM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "vtsm_abi_guest.h"
#include "vtsm_err.h"
#include "tsm_tdi.h"

#define TSM_TVM_KEY_SIZE      65   /* 0x04 || X || Y */
#define TSM_TVM_IDENTITY_SIZE 32   /* SHA-256 of the key */
#define TSM_TVM_NAME_MAX      64   /* bytes of the optional name */
#define TSM_TVM_MAX           1024 /* registered at once */
#define TSM_GUEST_SIG_SIZE    64   /* raw r||s, P-256 */
#define TSM_GUEST_NONCE_SIZE  32

struct tsm_tvm {
    uint32_t id;
    char name[TSM_TVM_NAME_MAX + 1]; /* "" if none was given */
    uint8_t key[TSM_TVM_KEY_SIZE];
    uint8_t identity[TSM_TVM_IDENTITY_SIZE];
    EVP_PKEY *pub;
    uint64_t last_seq;   /* last accepted seq; 0 = none yet */
    uint64_t requests;   /* accepted requests */
    unsigned bound_tdis; /* TDIs bound to it, and binds to it in flight (kept by tsmd) */
    bool debug;          /* created with debug: may send DEBUG_WRITE (rule GUEST.6) */
    struct tsm_tvm *next;
};

struct tsm_tvm_registry {
    struct tsm_tvm *head; /* newest first */
    uint32_t next_id;     /* starts at 1 */
    unsigned count;
};

void tsm_tvm_registry_init(struct tsm_tvm_registry *r);
/* Free every TVM (keys and identities wiped). */
void tsm_tvm_registry_fini(struct tsm_tvm_registry *r);

/*
 * Register a TVM. name may be NULL (else at most TSM_TVM_NAME_MAX bytes). guest_key must
 * be exactly 65 bytes, 0x04 || X || Y, a point on P-256 (E_ABI_ARG, rule TVM.1). A key
 * already registered gives E_EXISTS (rule TVM.3). E_LIMIT when TSM_TVM_MAX TVMs exist or
 * the numbers are exhausted. On success *out (may be NULL) is the new record.
 */
vtsm_status tsm_tvm_create(struct tsm_tvm_registry *r, const char *name, const uint8_t *guest_key,
                           size_t key_len, const struct tsm_tvm **out);
/* Allow (or not) DEBUG_WRITE requests of TVM id (tvm_create's "debug"); no-op if none. */
void tsm_tvm_set_debug(struct tsm_tvm_registry *r, uint64_t id, bool debug);
/* The TVM with this number, or NULL. */
const struct tsm_tvm *tsm_tvm_find(const struct tsm_tvm_registry *r, uint64_t id);
/* Add delta to the bound-TDI count of TVM id (no-op if there is none). */
void tsm_tvm_reserve(struct tsm_tvm_registry *r, uint64_t id, int delta);
/* Remove a TVM. bound_tdis = how many TDIs the caller has bound to it: non-zero gives
 * E_STATE (rule TVM.2) and nothing changes. E_NOT_FOUND for an unknown number. */
vtsm_status tsm_tvm_destroy(struct tsm_tvm_registry *r, uint64_t id, unsigned bound_tdis);

/*
 * Authenticate and decode one guest request, in this order, before any state is touched
 * (the envelope's own keys are the verb's check):
 *   1. the TVM exists                                   E_NOT_FOUND
 *   2. sig verifies over VTSM_ABI_GUEST_SIG_PREFIX || body with the TVM's key
 *      (any failure, a wrong length included)           E_AUTH, rule GUEST.1
 *   3. body decodes (vtsm_abi_guest_body_decode): one valid bounded CBOR map  E_ABI_MALFORMED
 *      with only known keys, each of its type, gop known, and exactly the keys the
 *      operation takes: LIST none of dev/tdi/nonce/reason; INFO dev, tdi, ? nonce;
 *      ACCEPT dev, tdi; REJECT dev, tdi, ? reason       E_ABI_ARG (GUEST.4)
 *      (dev a valid device name, tdi <= UINT32_MAX, nonce 32 bytes, reason <= 1024 bytes)
 *   4. body.tvm == tvm_id                               E_AUTH, rule GUEST.3
 *   5. seq > the TVM's last accepted seq                E_REPLAY, rule GUEST.2
 * then the TVM's last seq := seq (consumed even if the operation then fails) and *out
 * is filled. On any failure *out is zeroed and the TVM is unchanged.
 */
vtsm_status tsm_tvm_verify_request(struct tsm_tvm_registry *r, uint64_t tvm_id, const uint8_t *body,
                                   size_t body_len, const uint8_t *sig, size_t sig_len,
                                   struct vtsm_abi_guest_body *out);

#endif
