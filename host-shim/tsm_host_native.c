/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tsm-host native-auth: the host's own CMA (component measurement and authentication),
 * as a host kernel authenticates a device with SPDM over its DOE mailbox when no TSM
 * owns it. It runs the SPDM requester of tsm/spdm on the host side of the mailbox:
 * GET_VERSION, GET_CAPABILITIES, NEGOTIATE_ALGORITHMS, GET_DIGESTS, GET_CERTIFICATE of
 * slot 0 (the chain validated against the host's trust roots), and CHALLENGE when the
 * device offers CHAL_CAP.
 *
 * One requester per mailbox: a GET_VERSION resets the device's SPDM connection and ends
 * its sessions, the TSM's too. So the host revokes its native CMA while the TSM owns the
 * device (connecting, connected, reclaiming: rule PDEV.18, checked against tsmd's STATUS
 * before anything reaches the device) and authenticates again once the TSM has given
 * the device back (unconnected). --force skips that check, as a misbehaving host would;
 * the TSM then finds the session gone at its next exchange (rule PDEV.17).
 */
#include <string.h>

#include <openssl/evp.h>

#include "tsm_host_native.h"
#include "vtsm_abi.h"
#include "vtsm_cert.h"
#include "vtsm_doe.h"
#include "vtsm_guard.h"
#include "vtsm_spdm_req.h"

extern const unsigned char tsm_host_root_p384[];
extern const unsigned long tsm_host_root_p384_len;
extern const unsigned char tsm_host_root_p256[];
extern const unsigned long tsm_host_root_p256_len;

#define NATIVE_RSP_MAX (VTSM_DOE_HEADER_SIZE + 65536u)

static vtsm_status native_exchange(void *ctx, const uint8_t *req, size_t req_len,
                                   struct vtsm_buf *rsp)
{
    VTSM_GUARD(vtsm_buf_reserve(rsp, NATIVE_RSP_MAX));
    size_t n = rsp->cap;
    int rc = vtsm_doe_tcp_fn(ctx, req, req_len, rsp->data, &n);
    VTSM_ENSURE(rc == 0, VTSM_E_DOE_HOST, "DOE exchange with the device failed (%d)", rc);
    rsp->len = n;
    return VTSM_OK;
}

vtsm_status tsm_host_native_owner_check(struct vtsm_host *h, const char *dev)
{
    cbor_item_t *st = NULL;
    char state[32] = "";
    /* not registered with the TSM (PDEV.13): nobody else owns it */
    if (vtsm_host_status_cbor(h, dev, &st) != VTSM_OK) {
        const struct vtsm_host_error *e = vtsm_host_last_error(h);
        if (st)
            cbor_decref(&st); /* the ERROR's report, if any */
        if (e->from_tsm && e->status == VTSM_E_NOT_FOUND)
            return VTSM_OK;
        return vtsm_fail(e->status, "asking the TSM who owns %s: %s", dev, e->detail);
    }
    const cbor_item_t *devs = vtsm_abi_find(st, VTSM_ABI_K_DEVICES);
    if (devs && cbor_isa_array(devs) && cbor_array_size(devs) == 1)
        (void)vtsm_abi_get_tstr(cbor_array_handle(devs)[0], VTSM_ABI_K_STATE, state, sizeof(state));
    cbor_decref(&st);
    if (!state[0] || !strcmp(state, "unconnected"))
        return VTSM_OK;
    return vtsm_refuse(VTSM_E_STATE, VTSM_RULE_PDEV_18,
                       "%s is %s: the TSM owns its SPDM connection, so the host's own CMA is "
                       "revoked until the TSM gives the device back (device_reclaim)",
                       dev, state);
}

static vtsm_status put_hex(cbor_item_t *m, const char *key, const uint8_t *p, size_t n)
{
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    if (n > EVP_MAX_MD_SIZE)
        n = EVP_MAX_MD_SIZE;
    for (size_t i = 0; i < n; i++)
        snprintf(hex + 2 * i, 3, "%02x", p[i]);
    hex[2 * n] = '\0';
    return vtsm_abi_put_tstr(m, key, hex);
}

vtsm_status tsm_host_native_auth(struct vtsm_doe_tcp *doe, const char *dev, cbor_item_t **res)
{
    vtsm_status st;
    struct vtsm_trust *trust = NULL;
    struct vtsm_spdm_req *r = NULL;
    struct vtsm_spdm_req_opts o;
    struct vtsm_spdm_transport tp = {.exchange = native_exchange, .ctx = doe};
    uint8_t mask = 0, digests[SPDM_MAX_SLOTS][VTSM_HASH_MAX];
    bool challenged = false;
    cbor_item_t *m = NULL;

    VTSM_GUARD_GOTO(vtsm_trust_new(&trust));
    VTSM_GUARD_GOTO(vtsm_trust_add_pem(trust, tsm_host_root_p384, tsm_host_root_p384_len));
    VTSM_GUARD_GOTO(vtsm_trust_add_pem(trust, tsm_host_root_p256, tsm_host_root_p256_len));
    vtsm_spdm_req_opts_default(&o);
    VTSM_GUARD_GOTO(vtsm_spdm_req_new(&o, &tp, &r));
    VTSM_GUARD_GOTO(vtsm_spdm_req_init_connection(r));
    VTSM_GUARD_GOTO(vtsm_spdm_req_get_digests(r, &mask, digests));
    VTSM_ENSURE_GOTO(mask & 1u, VTSM_E_PEER_CAPS, "%s provisions no certificate in slot 0", dev);
    VTSM_GUARD_GOTO(vtsm_spdm_req_get_certificate(r, 0));
    VTSM_GUARD_GOTO(vtsm_trust_verify(trust, vtsm_spdm_req_chain(r, 0), NULL, 0));
    if (vtsm_spdm_req_info(r)->rsp_caps & SPDM_CAP_CHAL) {
        VTSM_GUARD_GOTO(vtsm_spdm_req_challenge(r, 0));
        challenged = true;
    }

    const struct vtsm_spdm_info *info = vtsm_spdm_req_info(r);
    char ver[8];
    snprintf(ver, sizeof(ver), "%u.%u", info->version >> 4, info->version & 0xF);
    m = vtsm_abi_map_new();
    VTSM_ENSURE_GOTO(m, VTSM_E_NOMEM, "result");
    VTSM_GUARD_GOTO(vtsm_abi_put_tstr(m, VTSM_ABI_K_DEV, dev));
    VTSM_GUARD_GOTO(vtsm_abi_put_tstr(m, "spdm_version", ver));
    VTSM_GUARD_GOTO(put_hex(m, "slot0_digest", digests[0], vtsm_hash_size(info->hash)));
    VTSM_GUARD_GOTO(vtsm_abi_put_item(m, "chain_trusted", cbor_build_bool(true)));
    VTSM_GUARD_GOTO(vtsm_abi_put_item(m, "challenge", cbor_build_bool(challenged)));
    *res = m;
    m = NULL;
    st = VTSM_OK;
out:
    if (m)
        cbor_decref(&m);
    vtsm_spdm_req_free(r);
    vtsm_trust_free(trust);
    return st;
}
