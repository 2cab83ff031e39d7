/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * KEY_UPDATE and HEARTBEAT (tsm/spdm/req_key_update.c, req_heartbeat.c) against devemu
 * in-process. Failure cases first — no secure session, a device without KEY_UPD_CAP /
 * HBEAT_CAP, the key-update-no-switch fault, a host tampering with KEY_UPDATE_ACK — each
 * with its exact status; then updates followed by measurements in the session (which only
 * succeed if both sides moved to the same keys), and HEARTBEAT.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vtsm_devemu.h"
#include "vtsm_doe.h"
#include "vtsm_spdm_req.h"

struct loop {
    struct vtsm_dev *dev;
    struct vtsm_spdm_req *r;
    bool flip; /* flip a ciphertext bit of the next secured response, once */
    unsigned exchanges;
};

static vtsm_status loop_exchange(void *ctx, const uint8_t *req, size_t len, struct vtsm_buf *rsp)
{
    struct loop *l = ctx;
    struct vtsm_doe_obj obj;
    vtsm_status st;

    l->exchanges++;
    st = vtsm_dev_handle(l->dev, req, len, rsp);
    if (st != VTSM_OK)
        return st;
    if (l->flip && vtsm_doe_parse(rsp->data, rsp->len, &obj) == VTSM_OK &&
        obj.type == VTSM_DOE_TYPE_SECURED_SPDM) {
        rsp->data[VTSM_DOE_HEADER_SIZE + 6] ^= 0x80;
        l->flip = false;
    }
    return VTSM_OK;
}

/* caps: false builds a device without KEY_UPD_CAP and HBEAT_CAP. */
static void loop_open(struct loop *l, uint8_t version, bool caps, uint32_t faults)
{
    struct vtsm_dev_config cfg;
    struct vtsm_spdm_req_opts o;
    struct vtsm_spdm_transport tp = {.exchange = loop_exchange, .ctx = l};
    uint8_t mask = 0;

    memset(l, 0, sizeof(*l));
    vtsm_dev_config_default(&cfg);
    cfg.versions = version == 0x13 ? VTSM_DEV_VER_13 : VTSM_DEV_VER_12;
    cfg.key_update = caps;
    cfg.heartbeat = caps;
    cfg.faults = faults;
    assert_int_equal(vtsm_dev_new(&cfg, &l->dev), VTSM_OK);
    vtsm_spdm_req_opts_default(&o);
    assert_int_equal(vtsm_spdm_req_new(&o, &tp, &l->r), VTSM_OK);
    assert_int_equal(vtsm_spdm_req_init_connection(l->r), VTSM_OK);
    assert_int_equal(vtsm_spdm_req_get_digests(l->r, &mask, NULL), VTSM_OK);
    assert_int_equal(vtsm_spdm_req_get_certificate(l->r, 0), VTSM_OK);
}

static void loop_session(struct loop *l)
{
    assert_int_equal(vtsm_spdm_req_start_session(l->r, 0), VTSM_OK);
    assert_true(vtsm_spdm_req_info(l->r)->session_active);
}

static void loop_close(struct loop *l)
{
    vtsm_spdm_req_free(l->r);
    vtsm_dev_free(l->dev);
    memset(l, 0, sizeof(*l));
}

/* GET_MEASUREMENTS inside the session: both directions' keys agree. */
static void assert_session_works(struct loop *l)
{
    struct vtsm_spdm_meas m;
    assert_int_equal(vtsm_spdm_req_get_measurements(l->r, 0, NULL, &m), VTSM_OK);
    assert_int_equal(m.num_blocks, 4);
    vtsm_spdm_meas_free(&m);
}

/* ---- failure cases ---- */

static void test_no_session(void **state)
{
    struct loop l;
    (void)state;
    loop_open(&l, 0x12, true, 0);
    unsigned before = l.exchanges;
    assert_int_equal(vtsm_spdm_req_key_update(l.r, false), VTSM_E_STATE);
    assert_int_equal(vtsm_spdm_req_heartbeat(l.r), VTSM_E_STATE);
    assert_int_equal(vtsm_spdm_req_key_update(NULL, false), VTSM_E_INVAL);
    assert_int_equal(vtsm_spdm_req_heartbeat(NULL), VTSM_E_INVAL);
    assert_int_equal(l.exchanges, before); /* nothing went on the wire */
    loop_close(&l);
}

static void test_no_caps(void **state)
{
    struct loop l;
    (void)state;
    loop_open(&l, 0x13, false, 0);
    const struct vtsm_spdm_info *info = vtsm_spdm_req_info(l.r);
    assert_int_equal(info->rsp_caps & (SPDM_CAP_KEY_UPD | SPDM_CAP_HBEAT), 0);
    loop_session(&l);
    assert_int_equal(info->heartbeat_period, 0); /* no HBEAT_CAP: no period */
    unsigned before = l.exchanges;
    assert_int_equal(vtsm_spdm_req_key_update(l.r, false), VTSM_E_PEER_CAPS);
    assert_non_null(strstr(vtsm_err_detail(), "KEY_UPD_CAP"));
    assert_int_equal(vtsm_spdm_req_key_update(l.r, true), VTSM_E_PEER_CAPS);
    assert_int_equal(vtsm_spdm_req_heartbeat(l.r), VTSM_E_PEER_CAPS);
    assert_non_null(strstr(vtsm_err_detail(), "HBEAT_CAP"));
    assert_int_equal(l.exchanges, before);
    /* the session is untouched */
    assert_true(info->session_active);
    assert_int_equal(info->key_updates, 0);
    assert_session_works(&l);
    loop_close(&l);
}

static void test_fault_no_switch_update_key(void **state)
{
    struct loop l;
    (void)state;
    loop_open(&l, 0x12, true, VTSM_DEV_FAULT_BIT(VTSM_DEV_FAULT_KEY_UPDATE_NO_SWITCH));
    loop_session(&l);
    /* The device ACKs UpdateKey but keeps the old key: it cannot open VerifyNewKey, ends
     * the session and says DecryptError in the clear. */
    assert_int_equal(vtsm_spdm_req_key_update(l.r, false), VTSM_E_PEER_ERROR);
    assert_int_equal(vtsm_spdm_req_peer_error(l.r, NULL), SPDM_ERR_DECRYPT_ERROR);
    const struct vtsm_spdm_info *info = vtsm_spdm_req_info(l.r);
    assert_false(info->session_active);
    assert_int_equal(info->key_updates, 0);
    assert_int_equal(vtsm_spdm_req_heartbeat(l.r), VTSM_E_STATE);
    /* a new session works */
    loop_session(&l);
    assert_session_works(&l);
    loop_close(&l);
}

static void test_fault_no_switch_all_keys(void **state)
{
    struct loop l;
    (void)state;
    loop_open(&l, 0x13, true, VTSM_DEV_FAULT_BIT(VTSM_DEV_FAULT_KEY_UPDATE_NO_SWITCH));
    loop_session(&l);
    /* UpdateAllKeys: the ACK should come under the device's new key; it comes under the
     * old one and does not authenticate. */
    assert_int_equal(vtsm_spdm_req_key_update(l.r, true), VTSM_E_PEER_DECRYPT);
    assert_false(vtsm_spdm_req_info(l.r)->session_active);
    assert_int_equal(vtsm_spdm_req_info(l.r)->key_updates, 0);
    loop_close(&l);
}

static void test_host_flip_ack(void **state)
{
    struct loop l;
    (void)state;
    loop_open(&l, 0x12, true, 0);
    loop_session(&l);
    l.flip = true;
    assert_int_equal(vtsm_spdm_req_key_update(l.r, false), VTSM_E_PEER_DECRYPT);
    assert_false(l.flip); /* the flip hit KEY_UPDATE_ACK, the first response */
    const struct vtsm_spdm_info *info = vtsm_spdm_req_info(l.r);
    assert_false(info->session_active);
    assert_int_equal(info->session_id, 0);
    assert_int_equal(info->key_updates, 0);
    struct vtsm_spdm_meas m;
    /* no session left: measurements now go in the clear, not under stale keys */
    assert_int_equal(vtsm_spdm_req_key_update(l.r, false), VTSM_E_STATE);
    assert_int_equal(vtsm_spdm_req_get_measurements(l.r, 0, NULL, &m), VTSM_OK);
    vtsm_spdm_meas_free(&m);
    loop_close(&l);
}

static void test_host_flip_heartbeat(void **state)
{
    struct loop l;
    (void)state;
    loop_open(&l, 0x13, true, 0);
    loop_session(&l);
    l.flip = true;
    assert_int_equal(vtsm_spdm_req_heartbeat(l.r), VTSM_E_PEER_DECRYPT);
    assert_false(vtsm_spdm_req_info(l.r)->session_active);
    loop_close(&l);
}

/* ---- working flows ---- */

static void test_update_key(void **state)
{
    struct loop l;
    (void)state;
    loop_open(&l, 0x12, true, 0);
    loop_session(&l);
    unsigned before = l.exchanges;
    assert_int_equal(vtsm_spdm_req_key_update(l.r, false), VTSM_OK);
    assert_int_equal(l.exchanges - before, 2); /* UpdateKey, VerifyNewKey */
    assert_int_equal(vtsm_spdm_req_info(l.r)->key_updates, 1);
    assert_session_works(&l);
    loop_close(&l);
}

static void test_update_all_keys(void **state)
{
    struct loop l;
    (void)state;
    loop_open(&l, 0x13, true, 0);
    loop_session(&l);
    assert_int_equal(vtsm_spdm_req_key_update(l.r, true), VTSM_OK);
    assert_int_equal(vtsm_spdm_req_info(l.r)->key_updates, 1);
    assert_session_works(&l);
    loop_close(&l);
}

static void test_updates_in_a_row(void **state)
{
    static const uint8_t versions[] = {0x12, 0x13};
    (void)state;
    for (size_t v = 0; v < 2; v++) {
        struct loop l;
        loop_open(&l, versions[v], true, 0);
        loop_session(&l);
        for (unsigned i = 0; i < 6; i++) {
            assert_int_equal(vtsm_spdm_req_key_update(l.r, i % 3 == 2), VTSM_OK);
            assert_int_equal(vtsm_spdm_req_info(l.r)->key_updates, i + 1);
        }
        assert_session_works(&l);
        assert_int_equal(vtsm_spdm_req_heartbeat(l.r), VTSM_OK);
        assert_int_equal(vtsm_spdm_req_end_session(l.r), VTSM_OK);
        assert_int_equal(vtsm_spdm_req_info(l.r)->key_updates, 0); /* per session */
        loop_close(&l);
    }
}

static void test_heartbeat(void **state)
{
    struct loop l;
    (void)state;
    loop_open(&l, 0x12, true, 0);
    assert_true(vtsm_spdm_req_info(l.r)->rsp_caps & SPDM_CAP_HBEAT);
    loop_session(&l);
    assert_int_equal(vtsm_spdm_req_info(l.r)->heartbeat_period, 60); /* devemu default */
    unsigned before = l.exchanges;
    assert_int_equal(vtsm_spdm_req_heartbeat(l.r), VTSM_OK);
    assert_int_equal(vtsm_spdm_req_heartbeat(l.r), VTSM_OK);
    assert_int_equal(l.exchanges - before, 2);
    assert_int_equal(vtsm_spdm_req_info(l.r)->key_updates, 0);
    assert_session_works(&l);
    loop_close(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_session),
        cmocka_unit_test(test_no_caps),
        cmocka_unit_test(test_fault_no_switch_update_key),
        cmocka_unit_test(test_fault_no_switch_all_keys),
        cmocka_unit_test(test_host_flip_ack),
        cmocka_unit_test(test_host_flip_heartbeat),
        cmocka_unit_test(test_update_key),
        cmocka_unit_test(test_update_all_keys),
        cmocka_unit_test(test_updates_in_a_row),
        cmocka_unit_test(test_heartbeat),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
