/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The guest's MMIO_VALIDATE and DMA_ENABLE requests (docs/abi.md 9.5): built, signed
 * with the next seq and sent like every guest request, the RESULT checked to echo them.
 */
#include <inttypes.h>
#include <string.h>

#include "vtsm_abi.h"
#include "vtsm_guard.h"
#include "vtsm_guest_cbor.h"

/* body = {gop, tvm, seq, dev, tdi, scope, ? range, ? gpa, ? pages, ? private} */
static vtsm_status encode(unsigned gop, uint32_t tvm, uint64_t seq, const char *dev, uint32_t tdi,
                          const struct vtsm_guest_mmio *m, struct vtsm_buf *frame)
{
    vtsm_status st = VTSM_OK;
    cbor_item_t *body = vtsm_abi_map_new();

    VTSM_ENSURE(body, VTSM_E_NOMEM, "request body");
    VTSM_GUARD_GOTO(vtsm_abi_put_uint(body, VTSM_ABI_K_GOP, gop));
    VTSM_GUARD_GOTO(vtsm_abi_put_uint(body, VTSM_ABI_K_TVM, tvm));
    VTSM_GUARD_GOTO(vtsm_abi_put_uint(body, VTSM_ABI_K_SEQ, seq));
    VTSM_GUARD_GOTO(vtsm_abi_put_tstr(body, VTSM_ABI_K_DEV, dev));
    VTSM_GUARD_GOTO(vtsm_abi_put_uint(body, VTSM_ABI_K_TDI, tdi));
    /* both operations are of scope STATE_CHANGE (docs/abi.md 9.2) */
    VTSM_GUARD_GOTO(vtsm_abi_put_uint(body, VTSM_ABI_K_SCOPE, (uint64_t)vtsm_abi_gop_scope(gop)));
    if (m) {
        VTSM_GUARD_GOTO(vtsm_abi_put_uint(body, VTSM_ABI_K_RANGE, m->range));
        VTSM_GUARD_GOTO(vtsm_abi_put_uint(body, VTSM_ABI_K_GPA, m->gpa));
        VTSM_GUARD_GOTO(vtsm_abi_put_uint(body, VTSM_ABI_K_PAGES, m->pages));
        VTSM_GUARD_GOTO(vtsm_abi_put_bool(body, VTSM_ABI_K_PRIVATE, !m->shared));
    }
    VTSM_GUARD_GOTO(vtsm_abi_encode(body, frame));
out:
    cbor_decref(&body);
    return st;
}

static vtsm_status call(struct vtsm_guest *g, struct vtsm_host *relay, unsigned gop,
                        const char *dev, uint32_t tdi, const struct vtsm_guest_mmio *m,
                        cbor_item_t **result)
{
    struct vtsm_buf frame = {0};
    cbor_item_t *env = NULL, *res = NULL;
    uint64_t seq = 0, v = 0;
    uint32_t tvm = g ? vtsm_guest_tvm(g) : 0;
    vtsm_status st;

    if (result)
        *result = NULL;
    VTSM_ENSURE(g && relay && dev, VTSM_E_INVAL, "guest MMIO call: NULL argument");
    VTSM_GUARD(vtsm_abi_check_dev(dev));
    VTSM_ENSURE(tvm != 0, VTSM_E_STATE, "the guest handle has no TVM number");
    VTSM_ENSURE(
        !m || (m->range < VTSM_ABI_MMIO_RANGES_MAX && m->pages >= 1 && m->pages <= UINT32_MAX),
        VTSM_E_INVAL, "MMIO_VALIDATE: range 0..%u and pages 1..%" PRIu32,
        VTSM_ABI_MMIO_RANGES_MAX - 1, UINT32_MAX);
    VTSM_GUARD(vtsm_guest_reserve_seq(g, &seq));
    VTSM_GUARD_GOTO(encode(gop, tvm, seq, dev, tdi, m, &frame));
    VTSM_GUARD_GOTO(vtsm_guest_sign_cbor(g, tvm, frame.data + VTSM_ABI_FRAME_HDR_SIZE,
                                         frame.len - VTSM_ABI_FRAME_HDR_SIZE, &env));
    st = vtsm_host_guest_relay_cbor(relay, env, &res);
    if (st != VTSM_OK) {
        st = vtsm_refuse(st, vtsm_host_last_error(relay)->rule, "%s",
                         vtsm_host_last_error(relay)->detail);
    } else if (vtsm_abi_get_uint(res, VTSM_ABI_K_GOP, &v) != VTSM_OK || v != gop ||
               vtsm_abi_get_uint(res, VTSM_ABI_K_TVM, &v) != VTSM_OK || v != tvm ||
               vtsm_abi_get_uint(res, VTSM_ABI_K_SEQ, &v) != VTSM_OK || v != seq) {
        st = vtsm_fail(VTSM_E_PEER_MALFORMED, "guest RESULT does not echo gop, tvm and seq");
    }
    if (result)
        *result = res;
    else if (res)
        cbor_decref(&res);
out:
    if (env)
        cbor_decref(&env);
    vtsm_buf_free(&frame);
    return st;
}

vtsm_status vtsm_guest_mmio_validate_cbor(struct vtsm_guest *g, struct vtsm_host *relay,
                                          const char *dev, uint32_t tdi,
                                          const struct vtsm_guest_mmio *m, cbor_item_t **result)
{
    VTSM_ENSURE(m != NULL, VTSM_E_INVAL, "MMIO_VALIDATE: NULL range");
    return call(g, relay, VTSM_ABI_GOP_MMIO_VALIDATE, dev, tdi, m, result);
}

vtsm_status vtsm_guest_dma_enable_cbor(struct vtsm_guest *g, struct vtsm_host *relay,
                                       const char *dev, uint32_t tdi, cbor_item_t **result)
{
    return call(g, relay, VTSM_ABI_GOP_DMA_ENABLE, dev, tdi, NULL, result);
}

vtsm_status vtsm_guest_mmio_validate(struct vtsm_guest *g, struct vtsm_host *relay, const char *dev,
                                     uint32_t tdi, const struct vtsm_guest_mmio *m,
                                     struct vtsm_result **result)
{
    cbor_item_t *res = NULL;
    if (result)
        *result = NULL;
    vtsm_status st = vtsm_guest_mmio_validate_cbor(g, relay, dev, tdi, m, &res);
    return vtsm_result_take(st, res, result);
}

vtsm_status vtsm_guest_dma_enable(struct vtsm_guest *g, struct vtsm_host *relay, const char *dev,
                                  uint32_t tdi, struct vtsm_result **result)
{
    cbor_item_t *res = NULL;
    if (result)
        *result = NULL;
    vtsm_status st = vtsm_guest_dma_enable_cbor(g, relay, dev, tdi, &res);
    return vtsm_result_take(st, res, result);
}
