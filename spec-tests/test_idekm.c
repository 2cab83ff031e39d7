/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * proto/vtsm_idekm: IDE_KM messages against byte arrays written from the PCIe / libspdm
 * pci_idekm.h layout, the key DW order against the example in intel/tee-io-validator
 * doc/key_byte_order.md, and every refusal a peer can provoke. Failure cases first.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vtsm_test.h"

#include <openssl/crypto.h>

#include "vtsm_buf.h"
#include "vtsm_idekm.h"

/* AES-GCM key as in the PCIe IDE test vectors (most significant byte first). */
static const uint8_t aes_key[32] = {
    0xdf, 0x25, 0x41, 0x52, 0x05, 0x6e, 0x02, 0xe0, 0xef, 0x8b, 0x7f, 0xeb, 0x97, 0x39, 0xd4, 0xd9,
    0x6a, 0x4e, 0xb8, 0x01, 0x03, 0x24, 0x1d, 0xf7, 0xcd, 0x5e, 0x24, 0xb4, 0x9c, 0xcd, 0x27, 0x20};

/* KEY_PROG stream 5, K1 | TX | NPR, port 2, that key and IFV 1, as sent on the wire. */
/* clang-format off */
static const uint8_t key_prog_wire[48] = {
    0x00, 0x02, 0x00, 0x00, 0x05, 0x00, 0x13, 0x02,
    /* Key DW7 .. DW0, each little-endian */
    0x52, 0x41, 0x25, 0xdf, 0xe0, 0x02, 0x6e, 0x05, 0xeb, 0x7f, 0x8b, 0xef, 0xd9, 0xd4, 0x39, 0x97,
    0x01, 0xb8, 0x4e, 0x6a, 0xf7, 0x1d, 0x24, 0x03, 0xb4, 0x24, 0x5e, 0xcd, 0x20, 0x27, 0xcd, 0x9c,
    /* IFV DW1, DW0 */
    0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00};
/* clang-format on */

static const uint8_t kss_k1_tx_npr =
    VTSM_IDEKM_KEY_SET_K1 | VTSM_IDEKM_DIR_TX | VTSM_IDEKM_SUBSTREAM_NPR;

/*
 * QUERY_RESP for port 0 of 00:08.0 segment 0 (dev_func 0x08, bus 0x3a): Link IDE with 2
 * TCs, Selective IDE with 2 streams, IDE_KM; stream 0 has one address association
 * block, stream 1 none.
 */
/* clang-format off */
static const uint8_t query_resp_wire[] = {
    0x00, 0x01, 0x00, 0x00, 0x08, 0x3a, 0x00, 0x00,
    0x43, 0x20, 0x01, 0x00, /* IDE Capability 0x00012043 */
    0x00, 0x00, 0x00, 0x00, /* IDE Control */
    0x11, 0x00, 0x00, 0x00, 0x22, 0x00, 0x00, 0x00, /* Link block 0 */
    0x33, 0x00, 0x00, 0x00, 0x44, 0x00, 0x00, 0x00, /* Link block 1 */
    0x01, 0x00, 0x00, 0x00, /* Sel 0 Cap: 1 address block */
    0x01, 0x00, 0x00, 0x01, /* Sel 0 Control: enable, stream ID 1 */
    0x02, 0x00, 0x00, 0x00, /* Sel 0 Status: secure */
    0x00, 0xff, 0x00, 0x00, /* RID Association 1 */
    0x01, 0x00, 0x01, 0x00, /* RID Association 2 */
    0x01, 0x00, 0xf0, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* Addr 0 */
    0x00, 0x00, 0x00, 0x00, /* Sel 1 Cap: no address blocks */
    0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00};
/* clang-format on */

static void fill_query_resp(struct vtsm_idekm_query_resp *r, struct vtsm_idekm_sel_block sel[2])
{
    memset(r, 0, sizeof(*r));
    memset(sel, 0, 2 * sizeof(sel[0]));
    r->dev_func_num = 0x08;
    r->bus_num = 0x3a;
    r->ide_cap =
        VTSM_IDE_CAP_LINK | VTSM_IDE_CAP_SELECTIVE | VTSM_IDE_CAP_IDE_KM | (1u << 13) | (1u << 16);
    r->link_count = 2;
    r->link[0] = (struct vtsm_idekm_link_block){0x11, 0x22};
    r->link[1] = (struct vtsm_idekm_link_block){0x33, 0x44};
    r->sel_count = 2;
    r->sel = sel;
    sel[0].cap = 1;
    sel[0].ctrl = 0x01000001;
    sel[0].status = 2;
    sel[0].rid1 = 0xff00;
    sel[0].rid2 = 0x00010001;
    sel[0].addr[0] = (struct vtsm_idekm_addr_block){0xfff00001, 0, 0};
    sel[1].ctrl = 0x02000000;
}

static void copy_msg(uint8_t *dst, const uint8_t *src, size_t n)
{
    memcpy(dst, src, n);
}

/* ---- failure cases ---- */

static void test_truncated_and_overlong(void **state)
{
    struct vtsm_idekm_req req;
    struct vtsm_idekm_ack ack;
    static const uint8_t q3[] = {0x00, 0x00, 0x00};
    static const uint8_t q5[] = {0x00, 0x00, 0x00, 0x01, 0xff};
    static const uint8_t ack7[] = {0x00, 0x03, 0x00, 0x00, 0x05, 0x00, 0x13};
    static const uint8_t ack9[] = {0x00, 0x03, 0x00, 0x00, 0x05, 0x00, 0x13, 0x02, 0x00};
    static const uint8_t go7[] = {0x00, 0x04, 0x00, 0x00, 0x05, 0x00, 0x13};

    (void)state;
    EXPECT_DETAIL(vtsm_idekm_parse_request(NULL, 0, &req), VTSM_E_PEER_TRUNCATED, VTSM_RULE_NONE,
                  "protocol ID");
    EXPECT_DETAIL(vtsm_idekm_parse_request(q3, 1, &req), VTSM_E_PEER_TRUNCATED, VTSM_RULE_NONE,
                  "Object ID");
    EXPECT_DETAIL(vtsm_idekm_parse_request(q3, sizeof(q3), &req), VTSM_E_PEER_TRUNCATED,
                  VTSM_RULE_NONE, "PortIndex");
    EXPECT_DETAIL(vtsm_idekm_parse_request(q5, sizeof(q5), &req), VTSM_E_PEER_MALFORMED,
                  VTSM_RULE_NONE, "1 bytes beyond");
    EXPECT_DETAIL(vtsm_idekm_parse_request(go7, sizeof(go7), &req), VTSM_E_PEER_TRUNCATED,
                  VTSM_RULE_NONE, "PortIndex");
    assert_false(req.fixed_valid);
    EXPECT_DETAIL(vtsm_idekm_parse_kp_ack(ack7, sizeof(ack7), &ack), VTSM_E_PEER_TRUNCATED,
                  VTSM_RULE_NONE, "PortIndex");
    EXPECT_DETAIL(vtsm_idekm_parse_kp_ack(ack9, sizeof(ack9), &ack), VTSM_E_PEER_MALFORMED,
                  VTSM_RULE_NONE, "beyond");
    EXPECT_DETAIL(vtsm_idekm_parse_kp_ack(ack7, 4, &ack), VTSM_E_PEER_TRUNCATED, VTSM_RULE_NONE,
                  "Stream ID");
}

static void test_key_prog_length_faults_suggest_incorrect_length(void **state)
{
    uint8_t msg[49];
    struct vtsm_idekm_req req;
    static const uint8_t zero[sizeof(req.key)];

    (void)state;
    copy_msg(msg, key_prog_wire, sizeof(key_prog_wire));
    EXPECT_DETAIL(vtsm_idekm_parse_request(msg, 47, &req), VTSM_E_PEER_TRUNCATED, VTSM_RULE_NONE,
                  "Key (8 DW)");
    assert_true(req.fixed_valid);
    assert_int_equal(req.kp_status, VTSM_IDEKM_KP_INCORRECT_LENGTH);
    assert_int_equal(req.stream_id, 5);
    assert_int_equal(req.key_sub_stream, kss_k1_tx_npr);
    assert_int_equal(req.port_index, 2);
    assert_memory_equal(&req.key, zero, sizeof(zero));

    msg[48] = 0;
    EXPECT_DETAIL(vtsm_idekm_parse_request(msg, 49, &req), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "1 bytes beyond");
    assert_int_equal(req.kp_status, VTSM_IDEKM_KP_INCORRECT_LENGTH);
    assert_memory_equal(&req.key, zero, sizeof(zero)); /* no key copied from a bad message */

    EXPECT_DETAIL(vtsm_idekm_parse_request(msg, 6, &req), VTSM_E_PEER_TRUNCATED, VTSM_RULE_NONE,
                  "KeySubStream");
    assert_false(req.fixed_valid);
    assert_int_equal(req.kp_status, VTSM_IDEKM_KP_INCORRECT_LENGTH);
}

static void test_wrong_protocol_and_object(void **state)
{
    uint8_t msg[48];
    struct vtsm_idekm_req req;
    struct vtsm_idekm_ack ack;
    struct vtsm_idekm_query_resp qr = {0};
    static const uint8_t tdisp[] = {0x01, 0x10, 0x81, 0x00};
    static const uint8_t undefined[] = {0x00, 0x07, 0x00, 0x00};
    static const uint8_t gostop[] = {0x00, 0x06, 0x00, 0x00, 0x05, 0x00, 0x13, 0x02};

    (void)state;
    EXPECT_DETAIL(vtsm_idekm_parse_request(tdisp, sizeof(tdisp), &req), VTSM_E_PEER_MALFORMED,
                  VTSM_RULE_NONE, "protocol ID 0x01");
    copy_msg(msg, key_prog_wire, sizeof(msg));
    msg[0] = 0x01;
    EXPECT_DETAIL(vtsm_idekm_parse_request(msg, sizeof(msg), &req), VTSM_E_PEER_MALFORMED,
                  VTSM_RULE_NONE, "protocol ID");
    EXPECT_DETAIL(vtsm_idekm_parse_request(undefined, sizeof(undefined), &req),
                  VTSM_E_PEER_UNEXPECTED, VTSM_RULE_NONE, "not defined");
    EXPECT_DETAIL(vtsm_idekm_parse_request(gostop, sizeof(gostop), &req), VTSM_E_PEER_UNEXPECTED,
                  VTSM_RULE_NONE, "is a response");
    EXPECT_DETAIL(vtsm_idekm_parse_kp_ack(gostop, sizeof(gostop), &ack), VTSM_E_PEER_UNEXPECTED,
                  VTSM_RULE_NONE, "K_GOSTOP_ACK");
    EXPECT_DETAIL(vtsm_idekm_parse_gostop_ack(msg, 8, &ack), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "protocol ID");
    EXPECT_DETAIL(vtsm_idekm_parse_query_resp(gostop, sizeof(gostop), &qr), VTSM_E_PEER_UNEXPECTED,
                  VTSM_RULE_NONE, "QUERY_RESP");
}

static void test_reserved_fields_refused(void **state)
{
    uint8_t msg[48];
    struct vtsm_idekm_req req;
    struct vtsm_idekm_ack ack;
    static const uint8_t q[] = {0x00, 0x00, 0x80, 0x01};

    (void)state;
    EXPECT_DETAIL(vtsm_idekm_parse_request(q, sizeof(q), &req), VTSM_E_PEER_MALFORMED,
                  VTSM_RULE_NONE, "Reserved byte 2");

    copy_msg(msg, key_prog_wire, 8);
    msg[1] = VTSM_IDEKM_K_SET_GO;
    msg[3] = 0x01;
    EXPECT_DETAIL(vtsm_idekm_parse_request(msg, 8, &req), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "Reserved bytes 2-3");
    assert_true(req.fixed_valid);
    assert_int_equal(req.kp_status, VTSM_IDEKM_KP_UNSUPPORTED_VALUE);
    msg[3] = 0;
    msg[5] = 0x01;
    EXPECT_DETAIL(vtsm_idekm_parse_request(msg, 8, &req), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "Reserved byte 5");
    msg[5] = 0;
    msg[6] = 0x13 | 0x04; /* KeySubStream bit 2 */
    EXPECT_DETAIL(vtsm_idekm_parse_request(msg, 8, &req), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "bits 3:2");
    msg[6] = 0x31; /* sub-stream 3 */
    EXPECT_DETAIL(vtsm_idekm_parse_request(msg, 8, &req), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "sub-stream 3");
    assert_int_equal(req.kp_status, VTSM_IDEKM_KP_UNSUPPORTED_VALUE);

    /* The same rules on the requester side, and KP_ACK's reserved status values. */
    msg[1] = VTSM_IDEKM_KP_ACK;
    msg[6] = 0x13;
    msg[5] = 0x05;
    EXPECT_DETAIL(vtsm_idekm_parse_kp_ack(msg, 8, &ack), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "Status 0x05");
    msg[5] = 0x00;
    msg[2] = 0x01;
    EXPECT_DETAIL(vtsm_idekm_parse_kp_ack(msg, 8, &ack), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "Reserved bytes 2-3");
    msg[2] = 0x00;
    msg[1] = VTSM_IDEKM_K_GOSTOP_ACK;
    msg[5] = 0x01;
    EXPECT_DETAIL(vtsm_idekm_parse_gostop_ack(msg, 8, &ack), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "Reserved byte 5");
}

static void test_query_resp_bad_counts(void **state)
{
    uint8_t msg[sizeof(query_resp_wire) + 4];
    struct vtsm_idekm_query_resp qr = {0};

    (void)state;
    /* The capability register announces 4 selective streams; 2 follow. */
    copy_msg(msg, query_resp_wire, sizeof(query_resp_wire));
    msg[10] = 0x03;
    EXPECT_DETAIL(vtsm_idekm_parse_query_resp(msg, sizeof(query_resp_wire), &qr),
                  VTSM_E_PEER_TRUNCATED, VTSM_RULE_NONE, "announces 2 Link and 4 Selective");
    /* 8 TCs of Link IDE announced. */
    copy_msg(msg, query_resp_wire, sizeof(query_resp_wire));
    msg[9] = 0xe0;
    EXPECT_DETAIL(vtsm_idekm_parse_query_resp(msg, sizeof(query_resp_wire), &qr),
                  VTSM_E_PEER_TRUNCATED, VTSM_RULE_NONE, "8 Link");
    /* Stream 1 claims 15 address association blocks. */
    copy_msg(msg, query_resp_wire, sizeof(query_resp_wire));
    msg[sizeof(query_resp_wire) - 20] = 0x0f;
    EXPECT_DETAIL(vtsm_idekm_parse_query_resp(msg, sizeof(query_resp_wire), &qr),
                  VTSM_E_PEER_TRUNCATED, VTSM_RULE_NONE, "Address Association");
    /* Cut inside the last block, and one DW too many. */
    copy_msg(msg, query_resp_wire, sizeof(query_resp_wire));
    EXPECT_DETAIL(vtsm_idekm_parse_query_resp(msg, sizeof(query_resp_wire) - 1, &qr),
                  VTSM_E_PEER_TRUNCATED, VTSM_RULE_NONE, "Selective IDE Stream block");
    memset(msg + sizeof(query_resp_wire), 0, 4);
    EXPECT_DETAIL(vtsm_idekm_parse_query_resp(msg, sizeof(msg), &qr), VTSM_E_PEER_MALFORMED,
                  VTSM_RULE_NONE, "4 bytes beyond");
    EXPECT_DETAIL(vtsm_idekm_parse_query_resp(msg, 15, &qr), VTSM_E_PEER_TRUNCATED, VTSM_RULE_NONE,
                  "IDE Control");
    /* Reserved byte, PortIndex above MaxPortIndex. */
    msg[2] = 0x01;
    EXPECT_DETAIL(vtsm_idekm_parse_query_resp(msg, sizeof(query_resp_wire), &qr),
                  VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE, "Reserved byte 2");
    msg[2] = 0x00;
    msg[3] = 0x02;
    EXPECT_DETAIL(vtsm_idekm_parse_query_resp(msg, sizeof(query_resp_wire), &qr),
                  VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE, "exceeds MaxPortIndex");
    /* Caller error: a capacity without an array. */
    qr.sel = NULL;
    qr.sel_cap = 2;
    EXPECT(vtsm_idekm_parse_query_resp(query_resp_wire, sizeof(query_resp_wire), &qr), VTSM_E_INVAL,
           VTSM_RULE_NONE);
}

/* allow_trailing: bytes after the declared blocks are counted, not refused; missing
 * blocks stay refused. The DMTF sample shape: IDE Capability 0 then 72 zero DWs. */
static void test_query_resp_trailing(void **state)
{
    uint8_t msg[8 + 4 * 73];
    struct vtsm_idekm_query_resp qr = {.allow_trailing = true};

    (void)state;
    memset(msg, 0, sizeof(msg));
    msg[1] = VTSM_IDEKM_QUERY_RESP;
    EXPECT_DETAIL(vtsm_idekm_parse_query_resp(msg, sizeof(msg), &(struct vtsm_idekm_query_resp){0}),
                  VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE, "284 bytes beyond");
    assert_int_equal(vtsm_idekm_parse_query_resp(msg, sizeof(msg), &qr), VTSM_OK);
    assert_int_equal(qr.ide_cap, 0);
    assert_int_equal(qr.sel_count, 0);
    assert_int_equal(qr.link_count, 0);
    assert_int_equal(qr.trailing, 4 * 71);
    /* exact: nothing trailing */
    assert_int_equal(vtsm_idekm_parse_query_resp(msg, 16, &qr), VTSM_OK);
    assert_int_equal(qr.trailing, 0);
    /* a capability announcing a selective block that is not all there stays refused */
    msg[8] = VTSM_IDE_CAP_SELECTIVE;
    EXPECT_DETAIL(vtsm_idekm_parse_query_resp(msg, 16 + 19, &qr), VTSM_E_PEER_TRUNCATED,
                  VTSM_RULE_NONE, "announces 0 Link and 1 Selective");
    assert_int_equal(vtsm_idekm_parse_query_resp(msg, 16 + 20 + 3, &qr), VTSM_OK);
    assert_int_equal(qr.sel_count, 1);
    assert_int_equal(qr.trailing, 3);
}

static void test_builders_refuse_and_leave_nothing(void **state)
{
    uint8_t buf[64];
    struct vtsm_wr w;
    struct vtsm_idekm_key key;
    struct vtsm_idekm_query_resp qr;
    struct vtsm_idekm_sel_block sel[2];
    static const uint8_t zero[64];

    (void)state;
    memset(buf, 0, sizeof(buf));
    memcpy(key.key, aes_key, 32);
    key.ifv = 1;
    w = vtsm_wr_init(buf, 47);
    EXPECT_DETAIL(vtsm_idekm_build_key_prog(&w, 5, kss_k1_tx_npr, 2, &key), VTSM_E_TOO_SMALL,
                  VTSM_RULE_NONE, "needs 48 bytes, 47 free");
    assert_int_equal(w.len, 0);
    assert_memory_equal(buf, zero, sizeof(buf));
    w = vtsm_wr_init(buf, sizeof(buf));
    w.len = 20;
    EXPECT(vtsm_idekm_build_key_prog(&w, 5, kss_k1_tx_npr, 2, &key), VTSM_E_TOO_SMALL,
           VTSM_RULE_NONE);
    assert_int_equal(w.len, 20);
    EXPECT_DETAIL(vtsm_idekm_build_key_prog(&w, 5, 0x04, 2, &key), VTSM_E_INVAL, VTSM_RULE_NONE,
                  "KeySubStream");
    EXPECT_DETAIL(vtsm_idekm_build_key_prog(&w, 5, 0x30, 2, &key), VTSM_E_INVAL, VTSM_RULE_NONE,
                  "KeySubStream");
    EXPECT(vtsm_idekm_build_key_prog(&w, 5, 0x00, 2, NULL), VTSM_E_INVAL, VTSM_RULE_NONE);
    EXPECT_DETAIL(vtsm_idekm_build_kp_ack(&w, 5, 5, 0x00, 2), VTSM_E_INVAL, VTSM_RULE_NONE,
                  "Status 5");
    w = vtsm_wr_init(buf, 3);
    EXPECT(vtsm_idekm_build_query(&w, 0), VTSM_E_TOO_SMALL, VTSM_RULE_NONE);
    w = vtsm_wr_init(buf, 7);
    EXPECT(vtsm_idekm_build_k_set_go(&w, 1, 0, 0), VTSM_E_TOO_SMALL, VTSM_RULE_NONE);
    assert_int_equal(w.len, 0);
    assert_memory_equal(buf, zero, sizeof(buf));

    /* QUERY_RESP counts must follow the capability register. */
    fill_query_resp(&qr, sel);
    qr.sel_count = 1;
    w = vtsm_wr_init(buf, sizeof(buf));
    EXPECT_DETAIL(vtsm_idekm_build_query_resp(&w, &qr), VTSM_E_INVAL, VTSM_RULE_NONE,
                  "expects 2 / 2");
    assert_int_equal(vtsm_idekm_query_resp_size(&qr), 0);
    fill_query_resp(&qr, sel);
    EXPECT(vtsm_idekm_build_query_resp(&w, &qr), VTSM_E_TOO_SMALL, VTSM_RULE_NONE);
    assert_int_equal(w.len, 0);
    vtsm_idekm_key_wipe(&key);
}

/* ---- exact bytes and round trips ---- */

static void test_query_bytes(void **state)
{
    uint8_t buf[8];
    struct vtsm_wr w = vtsm_wr_init(buf, sizeof(buf));
    struct vtsm_idekm_req req;
    static const uint8_t want[] = {0x00, 0x00, 0x00, 0x03};

    (void)state;
    assert_int_equal(vtsm_idekm_build_query(&w, 3), VTSM_OK);
    assert_int_equal(w.len, sizeof(want));
    assert_memory_equal(buf, want, sizeof(want));
    assert_int_equal(vtsm_idekm_parse_request(buf, w.len, &req), VTSM_OK);
    assert_int_equal(req.object_id, VTSM_IDEKM_QUERY);
    assert_int_equal(req.port_index, 3);
}

static void test_key_prog_bytes_and_key_order(void **state)
{
    uint8_t buf[64];
    struct vtsm_wr w = vtsm_wr_init(buf, sizeof(buf));
    struct vtsm_idekm_key key;
    struct vtsm_idekm_req req;

    (void)state;
    memcpy(key.key, aes_key, sizeof(aes_key));
    key.ifv = 1;
    assert_int_equal(vtsm_idekm_kss(1, true, 1), kss_k1_tx_npr);
    assert_int_equal(vtsm_idekm_build_key_prog(&w, 5, kss_k1_tx_npr, 2, &key), VTSM_OK);
    assert_int_equal(w.len, VTSM_IDEKM_KEY_PROG_SIZE);
    assert_memory_equal(buf, key_prog_wire, sizeof(key_prog_wire));

    assert_int_equal(vtsm_idekm_parse_request(key_prog_wire, sizeof(key_prog_wire), &req), VTSM_OK);
    assert_int_equal(req.object_id, VTSM_IDEKM_KEY_PROG);
    assert_int_equal(req.stream_id, 5);
    assert_int_equal(req.key_sub_stream, kss_k1_tx_npr);
    assert_int_equal(req.port_index, 2);
    assert_memory_equal(req.key.key, aes_key, sizeof(aes_key));
    assert_true(req.key.ifv == 1);

    /* A 64-bit IFV: DW1 (bits 63:32) is sent first. */
    key.ifv = 0x0102030405060708ull;
    w = vtsm_wr_init(buf, sizeof(buf));
    assert_int_equal(vtsm_idekm_build_key_prog(&w, 5, kss_k1_tx_npr, 2, &key), VTSM_OK);
    static const uint8_t ifv_wire[] = {0x04, 0x03, 0x02, 0x01, 0x08, 0x07, 0x06, 0x05};
    assert_memory_equal(buf + 40, ifv_wire, sizeof(ifv_wire));
    assert_int_equal(vtsm_idekm_parse_request(buf, w.len, &req), VTSM_OK);
    assert_true(req.key.ifv == 0x0102030405060708ull);

    vtsm_idekm_key_wipe(&req.key);
    vtsm_idekm_key_wipe(&key);
    static const uint8_t zero[sizeof(key)];
    assert_memory_equal(&req.key, zero, sizeof(zero));
    assert_memory_equal(&key, zero, sizeof(zero));
    OPENSSL_cleanse(buf, sizeof(buf));
}

static void test_short_messages_bytes(void **state)
{
    uint8_t buf[40];
    struct vtsm_wr w = vtsm_wr_init(buf, sizeof(buf));
    struct vtsm_idekm_req req;
    struct vtsm_idekm_ack ack;
    static const uint8_t want[] = {
        0x00, 0x03, 0x00, 0x00, 0x05, 0x03, 0x13, 0x02, /* KP_ACK, UNSUPPORTED_VALUE */
        0x00, 0x04, 0x00, 0x00, 0x05, 0x00, 0x13, 0x02, /* K_SET_GO */
        0x00, 0x05, 0x00, 0x00, 0x05, 0x00, 0x13, 0x02, /* K_SET_STOP */
        0x00, 0x06, 0x00, 0x00, 0x05, 0x00, 0x13, 0x02, /* K_GOSTOP_ACK */
    };

    (void)state;
    assert_int_equal(
        vtsm_idekm_build_kp_ack(&w, 5, VTSM_IDEKM_KP_UNSUPPORTED_VALUE, kss_k1_tx_npr, 2), VTSM_OK);
    assert_int_equal(vtsm_idekm_build_k_set_go(&w, 5, kss_k1_tx_npr, 2), VTSM_OK);
    assert_int_equal(vtsm_idekm_build_k_set_stop(&w, 5, kss_k1_tx_npr, 2), VTSM_OK);
    assert_int_equal(vtsm_idekm_build_gostop_ack(&w, 5, kss_k1_tx_npr, 2), VTSM_OK);
    assert_int_equal(w.len, sizeof(want));
    assert_memory_equal(buf, want, sizeof(want));

    assert_int_equal(vtsm_idekm_parse_kp_ack(want, 8, &ack), VTSM_OK);
    assert_int_equal(ack.status, VTSM_IDEKM_KP_UNSUPPORTED_VALUE);
    assert_int_equal(ack.stream_id, 5);
    assert_int_equal(ack.key_sub_stream, kss_k1_tx_npr);
    assert_int_equal(ack.port_index, 2);
    assert_int_equal(vtsm_idekm_parse_request(want + 8, 8, &req), VTSM_OK);
    assert_int_equal(req.object_id, VTSM_IDEKM_K_SET_GO);
    assert_int_equal(vtsm_idekm_parse_request(want + 16, 8, &req), VTSM_OK);
    assert_int_equal(req.object_id, VTSM_IDEKM_K_SET_STOP);
    assert_int_equal(req.stream_id, 5);
    assert_int_equal(vtsm_idekm_parse_gostop_ack(want + 24, 8, &ack), VTSM_OK);
    assert_int_equal(ack.object_id, VTSM_IDEKM_K_GOSTOP_ACK);
    assert_int_equal(ack.status, 0);
    assert_string_equal(vtsm_idekm_object_name(VTSM_IDEKM_K_GOSTOP_ACK), "K_GOSTOP_ACK");
    assert_string_equal(vtsm_idekm_object_name(9), "unknown");
}

static void test_query_resp_bytes_and_round_trip(void **state)
{
    uint8_t buf[128];
    struct vtsm_wr w = vtsm_wr_init(buf, sizeof(buf));
    struct vtsm_idekm_query_resp qr, got = {0};
    struct vtsm_idekm_sel_block sel[2], got_sel[1];

    (void)state;
    fill_query_resp(&qr, sel);
    assert_int_equal(vtsm_idekm_query_resp_size(&qr), sizeof(query_resp_wire));
    assert_int_equal(vtsm_idekm_build_query_resp(&w, &qr), VTSM_OK);
    assert_int_equal(w.len, sizeof(query_resp_wire));
    assert_memory_equal(buf, query_resp_wire, sizeof(query_resp_wire));

    /* Room for one selective block: both are validated, the first is copied. */
    got.sel = got_sel;
    got.sel_cap = 1;
    assert_int_equal(vtsm_idekm_parse_query_resp(buf, w.len, &got), VTSM_OK);
    assert_int_equal(got.dev_func_num, 0x08);
    assert_int_equal(got.bus_num, 0x3a);
    assert_int_equal(got.ide_cap, qr.ide_cap);
    assert_int_equal(got.link_count, 2);
    assert_int_equal(got.link[1].status, 0x44);
    assert_int_equal(got.sel_count, 2);
    assert_memory_equal(&got_sel[0], &sel[0], sizeof(sel[0]));

    /* No IDE blocks at all: just the two registers. */
    struct vtsm_idekm_query_resp none = {
        .port_index = 1, .max_port_index = 1, .ide_cap = VTSM_IDE_CAP_IDE_KM};
    w = vtsm_wr_init(buf, sizeof(buf));
    assert_int_equal(vtsm_idekm_build_query_resp(&w, &none), VTSM_OK);
    assert_int_equal(w.len, VTSM_IDEKM_QUERY_RESP_MIN);
    memset(&got, 0, sizeof(got));
    assert_int_equal(vtsm_idekm_parse_query_resp(buf, w.len, &got), VTSM_OK);
    assert_int_equal(got.port_index, 1);
    assert_int_equal(got.link_count + got.sel_count, 0);
}

static void test_max_selective_streams(void **state)
{
    static struct vtsm_idekm_sel_block sel[VTSM_IDEKM_MAX_SEL];
    static uint8_t buf[16 + VTSM_IDEKM_MAX_SEL * (20 + 15 * 12)];
    struct vtsm_idekm_query_resp qr = {0}, got = {0};
    struct vtsm_wr w = vtsm_wr_init(buf, sizeof(buf));

    (void)state;
    qr.ide_cap = VTSM_IDE_CAP_SELECTIVE | (0xFFu << 16);
    qr.sel_count = VTSM_IDEKM_MAX_SEL;
    qr.sel = sel;
    for (unsigned i = 0; i < VTSM_IDEKM_MAX_SEL; i++) {
        sel[i].cap = VTSM_IDEKM_MAX_ADDR;
        sel[i].ctrl = i << 24;
    }
    assert_int_equal(vtsm_idekm_build_query_resp(&w, &qr), VTSM_OK);
    assert_int_equal(w.len, sizeof(buf));
    assert_int_equal(vtsm_idekm_parse_query_resp(buf, w.len, &got), VTSM_OK);
    assert_int_equal(got.sel_count, VTSM_IDEKM_MAX_SEL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_truncated_and_overlong),
        cmocka_unit_test(test_key_prog_length_faults_suggest_incorrect_length),
        cmocka_unit_test(test_wrong_protocol_and_object),
        cmocka_unit_test(test_reserved_fields_refused),
        cmocka_unit_test(test_query_resp_bad_counts),
        cmocka_unit_test(test_query_resp_trailing),
        cmocka_unit_test(test_builders_refuse_and_leave_nothing),
        cmocka_unit_test(test_query_bytes),
        cmocka_unit_test(test_key_prog_bytes_and_key_order),
        cmocka_unit_test(test_short_messages_bytes),
        cmocka_unit_test(test_query_resp_bytes_and_round_trip),
        cmocka_unit_test(test_max_selective_streams),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
