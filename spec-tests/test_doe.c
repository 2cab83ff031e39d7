/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DOE data objects (PCIe 6.30) and the spdm-emu socket frame: failure cases first, each
 * with its exact status.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "vtsm_doe.h"
#include "vtsm_trace.h"
#include "vtsm_sock.h"

static void test_too_short_for_header(void **s)
{
    (void)s;
    uint8_t b[4] = {1, 0, 1, 0};
    struct vtsm_doe_obj o;
    assert_int_equal(vtsm_doe_parse(b, 0, &o), VTSM_E_DOE_TRUNCATED);
    assert_int_equal(vtsm_doe_parse(b, 4, &o), VTSM_E_DOE_TRUNCATED);
}

static void test_misaligned(void **s)
{
    (void)s;
    uint8_t b[14] = {1, 0, 1, 0, 3, 0, 0, 0, 0x10, 0, 0, 0, 0, 0};
    struct vtsm_doe_obj o;
    assert_int_equal(vtsm_doe_parse(b, 13, &o), VTSM_E_DOE_MISALIGNED);
    assert_int_equal(vtsm_doe_parse(b, 10, &o), VTSM_E_DOE_MISALIGNED);
}

static void test_truncated_against_length(void **s)
{
    (void)s;
    /* header says 4 DW, only 3 arrived */
    uint8_t b[12] = {1, 0, 1, 0, 4, 0, 0, 0, 0x10, 0x84, 0, 0};
    struct vtsm_doe_obj o;
    assert_int_equal(vtsm_doe_parse(b, 12, &o), VTSM_E_DOE_TRUNCATED);
}

static void test_oversized_against_length(void **s)
{
    (void)s;
    /* header says 2 DW (header only), 3 DW arrived */
    uint8_t b[12] = {1, 0, 1, 0, 2, 0, 0, 0, 0x10, 0x84, 0, 0};
    struct vtsm_doe_obj o;
    assert_int_equal(vtsm_doe_parse(b, 12, &o), VTSM_E_DOE_OVERSIZED);
}

static void test_over_2_18_dw(void **s)
{
    (void)s;
    static uint8_t big[VTSM_DOE_MAX_BYTES + 4];
    struct vtsm_doe_obj o;
    assert_int_equal(vtsm_doe_parse(big, sizeof(big), &o), VTSM_E_DOE_OVERSIZED);
}

static void test_reserved_bits_and_short_length(void **s)
{
    (void)s;
    struct vtsm_doe_obj o;
    uint8_t r0[8] = {1, 0, 1, 0x80, 2, 0, 0, 0}; /* DW0[31:24] reserved */
    assert_int_equal(vtsm_doe_parse(r0, 8, &o), VTSM_E_DOE_HEADER);
    uint8_t r1[8] = {1, 0, 1, 0, 2, 0, 0x04, 0}; /* DW1[31:18] reserved */
    assert_int_equal(vtsm_doe_parse(r1, 8, &o), VTSM_E_DOE_HEADER);
    uint8_t l1[8] = {1, 0, 1, 0, 1, 0, 0, 0}; /* length 1 DW < header */
    assert_int_equal(vtsm_doe_parse(l1, 8, &o), VTSM_E_DOE_HEADER);
}

static void test_length_zero_means_2_18(void **s)
{
    (void)s;
    /* length field 0 encodes 2^18 DW: 8 bytes are then a truncated object */
    uint8_t b[8] = {1, 0, 1, 0, 0, 0, 0, 0};
    struct vtsm_doe_obj o;
    assert_int_equal(vtsm_doe_parse(b, 8, &o), VTSM_E_DOE_TRUNCATED);
}

static void test_build_too_small_reports_size(void **s)
{
    (void)s;
    uint8_t pl[5] = {0x10, 0x84, 0, 0, 9}, out[8];
    size_t n = sizeof(out);
    assert_int_equal(vtsm_doe_build(1, 1, pl, sizeof(pl), out, &n), VTSM_E_TOO_SMALL);
    assert_int_equal(n, 16);
}

static void test_build_parse_exact_bytes(void **s)
{
    (void)s;
    uint8_t pl[5] = {0x10, 0x84, 0, 0, 9}, out[32];
    size_t n = sizeof(out);
    assert_int_equal(
        vtsm_doe_build(VTSM_DOE_VENDOR_PCISIG, VTSM_DOE_TYPE_SPDM, pl, sizeof(pl), out, &n),
        VTSM_OK);
    const uint8_t want[16] = {0x01, 0x00, 0x01, 0x00, 0x04, 0x00, 0x00, 0x00,
                              0x10, 0x84, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00};
    assert_int_equal(n, 16);
    assert_memory_equal(out, want, 16);
    struct vtsm_doe_obj o;
    assert_int_equal(vtsm_doe_parse(out, n, &o), VTSM_OK);
    assert_int_equal(o.vendor_id, 1);
    assert_int_equal(o.type, VTSM_DOE_TYPE_SPDM);
    assert_int_equal(o.payload_len, 8); /* padded to whole DW */
    assert_memory_equal(o.payload, pl, sizeof(pl));
}

static void test_discovery(void **s)
{
    (void)s;
    uint8_t pl[4], obj[16];
    size_t n = sizeof(obj);
    struct vtsm_doe_obj o;
    uint8_t index;
    vtsm_doe_disc_req_payload(2, pl);
    assert_int_equal(vtsm_doe_build(1, VTSM_DOE_TYPE_DISCOVERY, pl, 4, obj, &n), VTSM_OK);
    assert_int_equal(vtsm_doe_parse(obj, n, &o), VTSM_OK);
    assert_int_equal(vtsm_doe_disc_req_parse(&o, &index), VTSM_OK);
    assert_int_equal(index, 2);

    struct vtsm_doe_disc_rsp r = {.vendor_id = 1, .type = 2, .next_index = 0}, back;
    vtsm_doe_disc_rsp_payload(&r, pl);
    const uint8_t want[4] = {0x01, 0x00, 0x02, 0x00};
    assert_memory_equal(pl, want, 4);
    n = sizeof(obj);
    assert_int_equal(vtsm_doe_build(1, VTSM_DOE_TYPE_DISCOVERY, pl, 4, obj, &n), VTSM_OK);
    assert_int_equal(vtsm_doe_parse(obj, n, &o), VTSM_OK);
    assert_int_equal(vtsm_doe_disc_rsp_parse(&o, &back), VTSM_OK);
    assert_int_equal(back.type, 2);
    assert_int_equal(back.next_index, 0);

    /* a discovery object of the wrong size or type is refused */
    n = sizeof(obj);
    assert_int_equal(vtsm_doe_build(1, VTSM_DOE_TYPE_SPDM, pl, 4, obj, &n), VTSM_OK);
    assert_int_equal(vtsm_doe_parse(obj, n, &o), VTSM_OK);
    assert_int_equal(vtsm_doe_disc_rsp_parse(&o, &back), VTSM_E_DOE_HEADER);
    uint8_t two[8] = {0};
    n = sizeof(obj);
    assert_int_equal(vtsm_doe_build(1, VTSM_DOE_TYPE_DISCOVERY, two, 8, obj, &n), VTSM_OK);
    assert_int_equal(vtsm_doe_parse(obj, n, &o), VTSM_OK);
    assert_int_equal(vtsm_doe_disc_rsp_parse(&o, &back), VTSM_E_PEER_MALFORMED);
}

static void test_sock_frame(void **s)
{
    (void)s;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    const uint8_t payload[8] = {1, 0, 1, 0, 2, 0, 0, 0};
    assert_int_equal(vtsm_sock_send(sv[0], VTSM_SOCK_CMD_NORMAL, VTSM_SOCK_TRANSPORT_PCI_DOE,
                                    payload, sizeof(payload)),
                     VTSM_OK);
    uint8_t raw[12];
    assert_int_equal(vtsm_fd_read_full(sv[1], raw, 12, 1000), VTSM_OK);
    const uint8_t want[12] = {0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 8};
    assert_memory_equal(raw, want, 12); /* big-endian header */
    uint8_t body[8];
    assert_int_equal(vtsm_fd_read_full(sv[1], body, 8, 1000), VTSM_OK);
    assert_memory_equal(body, payload, 8);

    /* a frame announcing more than the limit is refused before its body is read */
    assert_int_equal(vtsm_sock_send(sv[0], 1, 2, payload, sizeof(payload)), VTSM_OK);
    uint32_t cmd, tt;
    struct vtsm_buf b = {0};
    assert_int_equal(vtsm_sock_recv(sv[1], &cmd, &tt, &b, 4, 1000), VTSM_E_PEER_OVERSIZED);
    uint8_t rest[8];
    assert_int_equal(vtsm_fd_read_full(sv[1], rest, 8, 1000), VTSM_OK);

    /* EOF mid-frame vs clean EOF */
    assert_int_equal(vtsm_fd_write_full(sv[0], want, 6), VTSM_OK);
    shutdown(sv[0], SHUT_WR);
    assert_int_equal(vtsm_sock_recv(sv[1], &cmd, &tt, &b, 64, 1000), VTSM_E_IO);
    assert_int_equal(vtsm_sock_recv(sv[1], &cmd, &tt, &b, 64, 1000), VTSM_E_CLOSED);
    vtsm_buf_free(&b);
    close(sv[0]);
    close(sv[1]);
}

static void test_sock_timeout(void **s)
{
    (void)s;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    uint32_t cmd, tt;
    struct vtsm_buf b = {0};
    assert_int_equal(vtsm_sock_recv(sv[1], &cmd, &tt, &b, 64, 50), VTSM_E_TIMEOUT);
    close(sv[0]);
    close(sv[1]);
}

/* Trace lines: DOE objects and SPDM messages named, vendor-defined payloads looked into,
 * short or cut input described without reading past it. */
static void test_trace_lines(void **s)
{
    (void)s;
    char b[160];
    const uint8_t getver[] = {1, 0, 1, 0, 3, 0, 0, 0, 0x10, 0x84, 0, 0};
    vtsm_trace_doe(getver, sizeof(getver), b, sizeof(b));
    assert_string_equal(b, "SPDM 1.0 GET_VERSION");
    const uint8_t sec[] = {1, 0, 2, 0, 4, 0, 0, 0, 0x01, 0x00, 0xFE, 0xFF, 0xAA, 0xBB, 0, 0};
    vtsm_trace_doe(sec, sizeof(sec), b, sizeof(b));
    assert_string_equal(b, "secured SPDM session 0xfffe0001");
    vtsm_trace_doe(getver, 7, b, sizeof(b));
    assert_string_equal(b, "DOE truncated (7 bytes)");
    const uint8_t disc[] = {1, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0};
    vtsm_trace_doe(disc, sizeof(disc), b, sizeof(b));
    assert_string_equal(b, "DOE discovery");
    /* VENDOR_DEFINED_REQUEST, PCI-SIG (3), vendor 0x0001, then IDE_KM KEY_PROG / TDISP */
    uint8_t vdm[] = {0x12, 0xFE, 0, 0, 3, 0, 2, 1, 0, 3, 0, 0x00, 0x02, 0};
    vtsm_trace_spdm(vdm, sizeof(vdm), b, sizeof(b));
    assert_string_equal(b, "SPDM 1.2 VENDOR_DEFINED_REQUEST IDE_KM KEY_PROG");
    vdm[11] = 0x01; /* TDISP: version, then message type LOCK_INTERFACE_REQ (0x83) */
    vdm[12] = 0x10;
    vdm[13] = 0x83;
    vtsm_trace_spdm(vdm, sizeof(vdm), b, sizeof(b));
    assert_string_equal(b, "SPDM 1.2 VENDOR_DEFINED_REQUEST TDISP LOCK_INTERFACE_REQ");
    vtsm_trace_spdm(vdm, 9, b, sizeof(b)); /* cut inside the vendor header */
    assert_string_equal(b, "SPDM 1.2 VENDOR_DEFINED_REQUEST");
    const uint8_t err[] = {0x12, 0x7F, 0x06, 0};
    vtsm_trace_spdm(err, sizeof(err), b, sizeof(b));
    assert_string_equal(b, "SPDM 1.2 ERROR 0x06");
    vtsm_trace_spdm(err, sizeof(err), b, 6);
    assert_string_equal(b, "SPDM ");
    assert_string_equal(vtsm_spdm_code_name(0x42), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_too_short_for_header),
        cmocka_unit_test(test_trace_lines),
        cmocka_unit_test(test_misaligned),
        cmocka_unit_test(test_truncated_against_length),
        cmocka_unit_test(test_oversized_against_length),
        cmocka_unit_test(test_over_2_18_dw),
        cmocka_unit_test(test_reserved_bits_and_short_length),
        cmocka_unit_test(test_length_zero_means_2_18),
        cmocka_unit_test(test_build_too_small_reports_size),
        cmocka_unit_test(test_build_parse_exact_bytes),
        cmocka_unit_test(test_discovery),
        cmocka_unit_test(test_sock_frame),
        cmocka_unit_test(test_sock_timeout),
    };
    return cmocka_run_group_tests_name("doe", tests, NULL, NULL);
}
