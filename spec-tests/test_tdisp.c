/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * proto/vtsm_tdisp: TDISP messages against byte arrays written from the PCIe ch. 11 /
 * libspdm pci_tdisp.h layout, the device interface report and its validation rules, and
 * the refusals a peer can provoke. Failure cases first.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vtsm_test.h"

#include "vtsm_buf.h"
#include "vtsm_crypto.h"
#include "vtsm_tdisp.h"

/* RID 0x0010 (00:02.0), segment 0, segment valid */
#define FID 0x01000010u

#define HDR(type) 0x01, 0x10, (type), 0x00, 0x00, 0x10, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0

static const uint8_t nonce[32] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
                                  0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15,
                                  0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f};

/*
 * Interface report: INTERFACE_INFO NO_UPDATE_AFTER_LOCK | DMA_WITHOUT_PASID, MSI-X
 * control 0x0007, two ranges (MSI-X table at 0xF0000000, 4 pages; 16 pages at
 * 0xF0010000), device info "vtsm".
 */
/* clang-format off */
static const uint8_t report_wire[] = {
    0x03, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, /* info, rsvd, MSI-X, LNR */
    0x00, 0x00, 0x00, 0x00,                         /* TPH */
    0x02, 0x00, 0x00, 0x00,                         /* MMIO_RANGE_COUNT */
    0x00, 0x00, 0x00, 0xf0, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x01, 0xf0, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
    0x04, 0x00, 0x00, 0x00, 'v', 't', 's', 'm'};
/* clang-format on */

#define RANGE0 16 /* offset of the first MMIO_RANGE */
#define RANGE1 32

static void fill_report(struct vtsm_tdisp_report *r)
{
    memset(r, 0, sizeof(*r));
    r->interface_info = VTSM_TDISP_INFO_NO_UPDATE_AFTER_LOCK | VTSM_TDISP_INFO_DMA_WITHOUT_PASID;
    r->msi_x_message_control = 0x0007;
    r->mmio_range_count = 2;
    r->mmio_range[0] =
        (struct vtsm_tdisp_mmio_range){0xF0000000ull, 4, VTSM_TDISP_RANGE_MSIX_TABLE, 0};
    r->mmio_range[1] = (struct vtsm_tdisp_mmio_range){0xF0010000ull, 16, 0, 1};
    r->device_specific_info_len = 4;
    r->device_specific_info = (const uint8_t *)"vtsm";
}

static void put64(uint8_t *p, uint64_t v)
{
    vtsm_put_le32(p, (uint32_t)v);
    vtsm_put_le32(p + 4, (uint32_t)(v >> 32));
}

/* ---- failure cases: header ---- */

static void test_header_refusals(void **state)
{
    uint8_t m[] = {HDR(VTSM_TDISP_GET_VERSION)};
    struct vtsm_tdisp_hdr h;
    struct vtsm_tdisp_req req;

    (void)state;
    EXPECT_DETAIL(vtsm_tdisp_parse_header(m, 0, &h), VTSM_E_PEER_TRUNCATED, VTSM_RULE_NONE,
                  "no protocol ID");
    EXPECT_DETAIL(vtsm_tdisp_parse_header(m, 16, &h), VTSM_E_PEER_TRUNCATED, VTSM_RULE_NONE,
                  "17-byte header");
    m[0] = 0x00;
    EXPECT_DETAIL(vtsm_tdisp_parse_header(m, sizeof(m), &h), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "protocol ID 0x00");
    m[0] = 0x01;
    m[1] = 0x11;
    EXPECT(vtsm_tdisp_parse_request(m, sizeof(m), &req), VTSM_E_PEER_VERSION, VTSM_RULE_NONE);
    assert_int_equal(req.hdr.type, VTSM_TDISP_GET_VERSION); /* to answer VERSION_MISMATCH */
    assert_int_equal(req.hdr.function_id, FID);
    m[1] = 0x10;
    m[4] = 0x01;
    EXPECT_DETAIL(vtsm_tdisp_parse_header(m, sizeof(m), &h), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "Reserved bytes 3-4");
    m[4] = 0x00;
    m[8] = 0x03; /* FUNCTION_ID bit 25 */
    EXPECT_DETAIL(vtsm_tdisp_parse_header(m, sizeof(m), &h), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "bits 31:25");
    m[8] = 0x01;
    m[16] = 0x80;
    EXPECT_DETAIL(vtsm_tdisp_parse_header(m, sizeof(m), &h), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "INTERFACE_ID Reserved");
    m[16] = 0x00;
    assert_int_equal(vtsm_tdisp_parse_header(m, sizeof(m), &h), VTSM_OK);
    assert_int_equal(h.function_id, FID);
    assert_int_equal(VTSM_TDISP_FID_RID(h.function_id), 0x0010);
}

static void test_request_refusals(void **state)
{
    struct vtsm_tdisp_req req;
    /* clang-format off */
    uint8_t lock[] = {HDR(VTSM_TDISP_LOCK_INTERFACE_REQ), 0x05, 0x00, 0x02, 0x00, 0, 0, 0, 0, 0,
                      0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    /* clang-format on */
    static const uint8_t rsp[] = {HDR(VTSM_TDISP_VERSION), 0x01, 0x10};
    static const uint8_t p2p[] = {HDR(VTSM_TDISP_BIND_P2P_STREAM_REQ), 0x01};
    static const uint8_t undef[] = {HDR(0x9F)};
    static const uint8_t caps3[] = {HDR(VTSM_TDISP_GET_CAPABILITIES), 0, 0, 0};
    static const uint8_t ver1[] = {HDR(VTSM_TDISP_GET_VERSION), 0};
    static const uint8_t start31[] = {HDR(VTSM_TDISP_START_INTERFACE_REQ), 1, 2, 3};
    static const uint8_t rep3[] = {HDR(VTSM_TDISP_GET_DEVICE_INTERFACE_REPORT), 0, 0, 0};

    (void)state;
    EXPECT_DETAIL(vtsm_tdisp_parse_request(rsp, sizeof(rsp), &req), VTSM_E_PEER_UNEXPECTED,
                  VTSM_RULE_NONE, "is a response");
    EXPECT_DETAIL(vtsm_tdisp_parse_request(p2p, sizeof(p2p), &req), VTSM_E_PEER_UNEXPECTED,
                  VTSM_RULE_NONE, "BIND_P2P_STREAM_REQ (0x88) not implemented");
    assert_int_equal(req.hdr.function_id, FID);
    EXPECT_DETAIL(vtsm_tdisp_parse_request(undef, sizeof(undef), &req), VTSM_E_PEER_UNEXPECTED,
                  VTSM_RULE_NONE, "not defined");
    EXPECT_DETAIL(vtsm_tdisp_parse_request(caps3, sizeof(caps3), &req), VTSM_E_PEER_TRUNCATED,
                  VTSM_RULE_NONE, "TSM_CAPS");
    EXPECT_DETAIL(vtsm_tdisp_parse_request(ver1, sizeof(ver1), &req), VTSM_E_PEER_MALFORMED,
                  VTSM_RULE_NONE, "1 bytes beyond");
    EXPECT_DETAIL(vtsm_tdisp_parse_request(start31, sizeof(start31), &req), VTSM_E_PEER_TRUNCATED,
                  VTSM_RULE_NONE, "START_INTERFACE_NONCE");
    EXPECT_DETAIL(vtsm_tdisp_parse_request(rep3, sizeof(rep3), &req), VTSM_E_PEER_TRUNCATED,
                  VTSM_RULE_NONE, "OFFSET/LENGTH");
    EXPECT_DETAIL(vtsm_tdisp_parse_request(lock, sizeof(lock) - 1, &req), VTSM_E_PEER_TRUNCATED,
                  VTSM_RULE_NONE, "LOCK_INTERFACE_PARAM");
    lock[17] = 0x25; /* FLAGS bit 5 undefined */
    EXPECT_DETAIL(vtsm_tdisp_parse_request(lock, sizeof(lock), &req), VTSM_E_PEER_MALFORMED,
                  VTSM_RULE_NONE, "undefined bits 0x0020");
    lock[17] = 0x05;
    lock[20] = 0x01; /* reserved after DEFAULT_STREAM_ID */
    EXPECT_DETAIL(vtsm_tdisp_parse_request(lock, sizeof(lock), &req), VTSM_E_PEER_MALFORMED,
                  VTSM_RULE_NONE, "Reserved byte after DEFAULT_STREAM_ID");
    lock[20] = 0x00;
    assert_int_equal(vtsm_tdisp_parse_request(lock, sizeof(lock), &req), VTSM_OK);
}

static void test_response_refusals(void **state)
{
    struct vtsm_tdisp_rsp rsp;
    uint8_t ver[] = {HDR(VTSM_TDISP_VERSION), 0x02, 0x10};
    uint8_t caps[17 + 28] = {HDR(VTSM_TDISP_CAPABILITIES)};
    uint8_t rep[] = {HDR(VTSM_TDISP_DEVICE_INTERFACE_REPORT), 0x04, 0x00, 0x00, 0x00, 1, 2, 3};
    uint8_t state_rsp[] = {HDR(VTSM_TDISP_DEVICE_INTERFACE_STATE), 0x04};
    uint8_t err[] = {HDR(VTSM_TDISP_ERROR), 0, 0, 0, 0, 0, 0, 0, 0, 0xAA};
    uint8_t vendor_err[] = {HDR(VTSM_TDISP_ERROR), 0xFF, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x03, 0x86};

    (void)state;
    /* Wrong type, wrong interface, a request code. */
    EXPECT_DETAIL(
        vtsm_tdisp_parse_response(ver, sizeof(ver), VTSM_TDISP_GET_CAPABILITIES, FID, &rsp),
        VTSM_E_PEER_UNEXPECTED, VTSM_RULE_NONE, "VERSION (0x01) in answer to GET_CAPABILITIES");
    EXPECT_DETAIL(
        vtsm_tdisp_parse_response(ver, sizeof(ver), VTSM_TDISP_GET_VERSION, FID + 1, &rsp),
        VTSM_E_PEER_UNEXPECTED, VTSM_RULE_NONE, "the request was for 0x01000011");
    EXPECT(vtsm_tdisp_parse_response(ver, sizeof(ver), VTSM_TDISP_VERSION, FID, &rsp), VTSM_E_INVAL,
           VTSM_RULE_NONE);
    /* VERSION: count beyond the data, zero count. */
    EXPECT_DETAIL(vtsm_tdisp_parse_response(ver, sizeof(ver), VTSM_TDISP_GET_VERSION, FID, &rsp),
                  VTSM_E_PEER_TRUNCATED, VTSM_RULE_NONE, "VERSION_NUM_COUNT 2 exceeds");
    ver[17] = 0;
    EXPECT_DETAIL(
        vtsm_tdisp_parse_response(ver, sizeof(ver) - 1, VTSM_TDISP_GET_VERSION, FID, &rsp),
        VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE, "VERSION_NUM_COUNT is 0");
    /* CAPABILITIES: reserved bytes, short, long. */
    caps[17 + 22] = 0x01;
    EXPECT_DETAIL(
        vtsm_tdisp_parse_response(caps, sizeof(caps), VTSM_TDISP_GET_CAPABILITIES, FID, &rsp),
        VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
        "Reserved bytes after LOCK_INTERFACE_FLAGS_SUPPORTED");
    caps[17 + 22] = 0x00;
    EXPECT_DETAIL(
        vtsm_tdisp_parse_response(caps, sizeof(caps) - 1, VTSM_TDISP_GET_CAPABILITIES, FID, &rsp),
        VTSM_E_PEER_TRUNCATED, VTSM_RULE_NONE, "RSP_CAPS");
    /* DEVICE_INTERFACE_REPORT: portion beyond the data, empty portion that never ends. */
    EXPECT_DETAIL(vtsm_tdisp_parse_response(rep, sizeof(rep),
                                            VTSM_TDISP_GET_DEVICE_INTERFACE_REPORT, FID, &rsp),
                  VTSM_E_PEER_TRUNCATED, VTSM_RULE_NONE, "PORTION_LENGTH 4 exceeds");
    rep[17] = 0x00;
    rep[19] = 0x10;
    EXPECT_DETAIL(
        vtsm_tdisp_parse_response(rep, 21, VTSM_TDISP_GET_DEVICE_INTERFACE_REPORT, FID, &rsp),
        VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE, "never finish");
    rep[17] = 0x03;
    EXPECT(vtsm_tdisp_parse_response(rep, sizeof(rep) - 1, VTSM_TDISP_GET_DEVICE_INTERFACE_REPORT,
                                     FID, &rsp),
           VTSM_E_PEER_TRUNCATED, VTSM_RULE_NONE);
    /* DEVICE_INTERFACE_STATE 4 is reserved. */
    EXPECT_DETAIL(vtsm_tdisp_parse_response(state_rsp, sizeof(state_rsp),
                                            VTSM_TDISP_GET_DEVICE_INTERFACE_STATE, FID, &rsp),
                  VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE, "TDI_STATE 4");
    /* TDISP_ERROR: code 0, extended data without VENDOR_SPECIFIC_ERROR, short vendor ID. */
    EXPECT_DETAIL(
        vtsm_tdisp_parse_response(err, sizeof(err) - 1, VTSM_TDISP_LOCK_INTERFACE_REQ, FID, &rsp),
        VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE, "ERROR_CODE 0");
    err[17] = 0x04;
    EXPECT_DETAIL(
        vtsm_tdisp_parse_response(err, sizeof(err), VTSM_TDISP_LOCK_INTERFACE_REQ, FID, &rsp),
        VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE, "1 bytes beyond");
    EXPECT_DETAIL(vtsm_tdisp_parse_response(err, 20, VTSM_TDISP_LOCK_INTERFACE_REQ, FID, &rsp),
                  VTSM_E_PEER_TRUNCATED, VTSM_RULE_NONE, "ERROR_CODE");
    EXPECT_DETAIL(vtsm_tdisp_parse_response(vendor_err, sizeof(vendor_err),
                                            VTSM_TDISP_STOP_INTERFACE_REQ, FID, &rsp),
                  VTSM_E_PEER_TRUNCATED, VTSM_RULE_NONE, "VendorIDLen 3 exceeds");
    vendor_err[25] = 0x02;
    EXPECT_DETAIL(vtsm_tdisp_parse_response(vendor_err, sizeof(vendor_err),
                                            VTSM_TDISP_STOP_INTERFACE_REQ, FID, &rsp),
                  VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE, "RegistryID 2");
    /* START/STOP responses are the header alone. */
    static const uint8_t start_long[] = {HDR(VTSM_TDISP_START_INTERFACE_RSP), 0x00};
    EXPECT_DETAIL(vtsm_tdisp_parse_response(start_long, sizeof(start_long),
                                            VTSM_TDISP_START_INTERFACE_REQ, FID, &rsp),
                  VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE, "1 bytes beyond");
}

static void test_builders_refuse_and_leave_nothing(void **state)
{
    uint8_t buf[64];
    struct vtsm_wr w;
    struct vtsm_tdisp_lock_params lp = {.flags = 0x40};
    static const uint8_t zero[64];
    static const uint8_t ext[] = {0x00, 0x02, 0x86, 0x80, 0x01};

    (void)state;
    memset(buf, 0, sizeof(buf));
    w = vtsm_wr_init(buf, 16);
    EXPECT_DETAIL(vtsm_tdisp_build_get_version(&w, FID), VTSM_E_TOO_SMALL, VTSM_RULE_NONE,
                  "needs 17 bytes, 16 free");
    w = vtsm_wr_init(buf, 48);
    EXPECT(vtsm_tdisp_build_start_interface(&w, FID, nonce), VTSM_E_TOO_SMALL, VTSM_RULE_NONE);
    EXPECT_DETAIL(vtsm_tdisp_build_get_version(&w, 0x02000000), VTSM_E_INVAL, VTSM_RULE_NONE,
                  "bits 31:25");
    EXPECT_DETAIL(vtsm_tdisp_build_lock_interface(&w, FID, &lp), VTSM_E_INVAL, VTSM_RULE_NONE,
                  "undefined bits");
    EXPECT(vtsm_tdisp_build_state_rsp(&w, FID, 4), VTSM_E_INVAL, VTSM_RULE_NONE);
    EXPECT(vtsm_tdisp_build_version(&w, FID, nonce, 0), VTSM_E_INVAL, VTSM_RULE_NONE);
    EXPECT_DETAIL(vtsm_tdisp_build_error(&w, FID, 0, 0, NULL, 0), VTSM_E_INVAL, VTSM_RULE_NONE,
                  "ERROR_CODE 0");
    EXPECT_DETAIL(vtsm_tdisp_build_error(&w, FID, VTSM_TDISP_ERR_BUSY, 0, ext, sizeof(ext)),
                  VTSM_E_INVAL, VTSM_RULE_NONE, "only with VENDOR_SPECIFIC_ERROR");
    EXPECT_DETAIL(vtsm_tdisp_build_error(&w, FID, VTSM_TDISP_ERR_VENDOR_SPECIFIC_ERROR, 0, ext, 3),
                  VTSM_E_INVAL, VTSM_RULE_NONE, "needs RegistryID");
    assert_int_equal(w.len, 0);
    assert_memory_equal(buf, zero, sizeof(zero));
}

/* ---- failure cases: the interface report ---- */

static void test_report_overlap(void **state)
{
    uint8_t m[sizeof(report_wire)];
    struct vtsm_tdisp_report r;

    (void)state;
    memcpy(m, report_wire, sizeof(m));
    /* FIRST_PAGE counts 4 KiB pages: range 0 is pages 0xf0000000..0xf0000003 */
    put64(m + RANGE1, 0xF0000003ull); /* inside range 0's last page */
    EXPECT_DETAIL(
        vtsm_tdisp_report_parse(m, sizeof(m), &r), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
        "range 1 [page 0xf0000003, 0xf0000012] overlaps range 0 [page 0xf0000000, 0xf0000003]");
    put64(m + RANGE1, 0xEFFFFFF8ull); /* starts below, its 16 pages reach into range 0 */
    EXPECT_DETAIL(vtsm_tdisp_report_parse(m, sizeof(m), &r), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "overlaps range 0");
    put64(m + RANGE1, 0xF0000004ull); /* adjacent is fine */
    assert_int_equal(vtsm_tdisp_report_parse(m, sizeof(m), &r), VTSM_OK);
    put64(m + RANGE1, 0xEFFFFFF0ull); /* ends right before range 0 */
    assert_int_equal(vtsm_tdisp_report_parse(m, sizeof(m), &r), VTSM_OK);
}

static void test_report_range_rules(void **state)
{
    uint8_t m[sizeof(report_wire)];
    struct vtsm_tdisp_report r;

    (void)state;
    memcpy(m, report_wire, sizeof(m));
    put64(m + RANGE1, 0x0010000000000000ull); /* page 2^52: past the last page */
    EXPECT_DETAIL(vtsm_tdisp_report_parse(m, sizeof(m), &r), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "range 1 (page 0x10000000000000 + 16 pages) runs past the top");

    memcpy(m, report_wire, sizeof(m));
    vtsm_put_le32(m + RANGE0 + 8, 0);
    EXPECT_DETAIL(vtsm_tdisp_report_parse(m, sizeof(m), &r), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "range 0 (page 0xf0000000) has zero pages");

    memcpy(m, report_wire, sizeof(m));
    put64(m + RANGE1, 0x000FFFFFFFFFFFFFull); /* from the last page on */
    vtsm_put_le32(m + RANGE1 + 8, 2);
    EXPECT_DETAIL(vtsm_tdisp_report_parse(m, sizeof(m), &r), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "runs past the top");
    vtsm_put_le32(m + RANGE1 + 8, 1); /* exactly the last page is fine */
    assert_int_equal(vtsm_tdisp_report_parse(m, sizeof(m), &r), VTSM_OK);
    put64(m + RANGE1, 0);
    vtsm_put_le32(m + RANGE1 + 8, 0xFFFFFFFFu); /* the largest range, from 0 */
    EXPECT_DETAIL(vtsm_tdisp_report_parse(m, sizeof(m), &r), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "overlaps range 0");

    memcpy(m, report_wire, sizeof(m));
    vtsm_put_le16(m + RANGE1 + 12, 0x0010);
    EXPECT_DETAIL(vtsm_tdisp_report_parse(m, sizeof(m), &r), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "range 1 attributes 0x0010 have undefined bits 0x0010");

    memcpy(m, report_wire, sizeof(m));
    m[0] = 0x43;
    EXPECT_DETAIL(vtsm_tdisp_report_parse(m, sizeof(m), &r), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "INTERFACE_INFO 0x0043 has undefined bits 0x0040");
    m[0] = 0x03;
    m[3] = 0x01;
    EXPECT_DETAIL(vtsm_tdisp_report_parse(m, sizeof(m), &r), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "Reserved field after INTERFACE_INFO");
}

static void test_report_counts_and_lengths(void **state)
{
    static uint8_t big[VTSM_TDISP_REPORT_FIXED + 65 * VTSM_TDISP_MMIO_RANGE_SIZE + 4];
    uint8_t m[sizeof(report_wire) + 1];
    struct vtsm_tdisp_report r;

    (void)state;
    memcpy(m, report_wire, sizeof(report_wire));
    vtsm_put_le32(m + 12, 3); /* count larger than the data */
    EXPECT_DETAIL(vtsm_tdisp_report_parse(m, sizeof(report_wire), &r), VTSM_E_PEER_TRUNCATED,
                  VTSM_RULE_NONE, "MMIO_RANGE_COUNT 3 needs 52 bytes");
    vtsm_put_le32(m + 12, 0xFFFFFFFFu);
    EXPECT_DETAIL(vtsm_tdisp_report_parse(m, sizeof(report_wire), &r), VTSM_E_PEER_TRUNCATED,
                  VTSM_RULE_NONE, "MMIO_RANGE_COUNT 4294967295");

    memcpy(m, report_wire, sizeof(report_wire));
    vtsm_put_le32(m + 48, 5); /* device info longer than the data */
    EXPECT_DETAIL(vtsm_tdisp_report_parse(m, sizeof(report_wire), &r), VTSM_E_PEER_TRUNCATED,
                  VTSM_RULE_NONE, "DEVICE_SPECIFIC_INFO_LEN 5 exceeds the 4 bytes");
    vtsm_put_le32(m + 48, 4);
    m[sizeof(report_wire)] = 0;
    EXPECT_DETAIL(vtsm_tdisp_report_parse(m, sizeof(m), &r), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "1 bytes after DEVICE_SPECIFIC_INFO");
    EXPECT_DETAIL(vtsm_tdisp_report_parse(m, 15, &r), VTSM_E_PEER_TRUNCATED, VTSM_RULE_NONE,
                  "16-byte fixed part");
    EXPECT(vtsm_tdisp_report_parse(m, 16 + 32 + 3, &r), VTSM_E_PEER_TRUNCATED, VTSM_RULE_NONE);

    /* 65 well-formed, disjoint ranges: over our limit. */
    vtsm_put_le32(big + 12, 65);
    for (unsigned i = 0; i < 65; i++) {
        put64(big + 16 + 16 * i, 0x100000000ull + (uint64_t)i * 0x1000);
        vtsm_put_le32(big + 16 + 16 * i + 8, 1);
    }
    EXPECT(vtsm_tdisp_report_parse(big, sizeof(big), &r), VTSM_E_PEER_OVERSIZED, VTSM_RULE_NONE);
    vtsm_put_le32(big + 12, 64);
    memset(big + 16 + 64 * 16, 0, 16); /* DEVICE_SPECIFIC_INFO_LEN 0, then 16 stray bytes */
    EXPECT_DETAIL(vtsm_tdisp_report_parse(big, sizeof(big), &r), VTSM_E_PEER_MALFORMED,
                  VTSM_RULE_NONE, "16 bytes after DEVICE_SPECIFIC_INFO");
    assert_int_equal(vtsm_tdisp_report_parse(big, sizeof(big) - 16, &r), VTSM_OK);
    assert_int_equal(r.mmio_range_count, 64);
}

static void test_report_build_limits(void **state)
{
    static struct vtsm_tdisp_report r;
    static uint8_t buf[2048];
    struct vtsm_wr w = vtsm_wr_init(buf, sizeof(buf));
    struct vtsm_tdisp_report back;

    (void)state;
    fill_report(&r);
    r.mmio_range_count = 65;
    EXPECT_DETAIL(vtsm_tdisp_report_build(&w, &r), VTSM_E_INVAL, VTSM_RULE_NONE, "65 MMIO ranges");
    fill_report(&r);
    r.device_specific_info = NULL;
    EXPECT_DETAIL(vtsm_tdisp_report_build(&w, &r), VTSM_E_INVAL, VTSM_RULE_NONE,
                  "NULL device-specific info");
    fill_report(&r);
    w = vtsm_wr_init(buf, sizeof(report_wire) - 1);
    EXPECT(vtsm_tdisp_report_build(&w, &r), VTSM_E_TOO_SMALL, VTSM_RULE_NONE);
    assert_int_equal(w.len, 0);

    /* A semantically bad report still builds (fault injection) but does not parse. */
    r.mmio_range[1].first_page = 0xF0000000ull;
    w = vtsm_wr_init(buf, sizeof(buf));
    assert_int_equal(vtsm_tdisp_report_build(&w, &r), VTSM_OK);
    EXPECT_DETAIL(vtsm_tdisp_report_validate(&r), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "overlaps");
    EXPECT_DETAIL(vtsm_tdisp_report_parse(buf, w.len, &back), VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE,
                  "overlaps");
}

static void test_report_hash_refuses_bad_report(void **state)
{
    uint8_t m[sizeof(report_wire)];
    uint8_t d[VTSM_HASH_MAX], want[VTSM_HASH_MAX];
    static const uint8_t zero[VTSM_HASH_MAX];

    (void)state;
    memcpy(m, report_wire, sizeof(m));
    vtsm_put_le32(m + RANGE0 + 8, 0); /* zero pages */
    memset(d, 0, sizeof(d));
    EXPECT_DETAIL(vtsm_tdisp_report_hash(VTSM_HASH_SHA384, m, sizeof(m), d), VTSM_E_PEER_MALFORMED,
                  VTSM_RULE_NONE, "zero pages");
    assert_memory_equal(d, zero, sizeof(zero));
    EXPECT(vtsm_tdisp_report_hash(VTSM_HASH_NONE, report_wire, sizeof(report_wire), d),
           VTSM_E_UNSUPPORTED, VTSM_RULE_NONE);

    assert_int_equal(vtsm_tdisp_report_hash(VTSM_HASH_SHA384, report_wire, sizeof(report_wire), d),
                     VTSM_OK);
    assert_int_equal(vtsm_hash(VTSM_HASH_SHA384, report_wire, sizeof(report_wire), want), VTSM_OK);
    assert_memory_equal(d, want, 48);
}

/* ---- exact bytes and round trips ---- */

static void test_request_bytes(void **state)
{
    uint8_t buf[256];
    struct vtsm_wr w = vtsm_wr_init(buf, sizeof(buf));
    struct vtsm_tdisp_lock_params lp = {.flags = VTSM_TDISP_LOCK_NO_FW_UPDATE |
                                                 VTSM_TDISP_LOCK_LOCK_MSIX,
                                        .default_stream_id = 2,
                                        .mmio_reporting_offset = 0x0000100000000000ull,
                                        .bind_p2p_address_mask = 0};
    /* clang-format off */
    static const uint8_t want[] = {
        HDR(VTSM_TDISP_GET_VERSION),
        HDR(VTSM_TDISP_GET_CAPABILITIES), 0x00, 0x00, 0x00, 0x00,
        HDR(VTSM_TDISP_LOCK_INTERFACE_REQ), 0x05, 0x00, 0x02, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0,
        HDR(VTSM_TDISP_GET_DEVICE_INTERFACE_REPORT), 0x00, 0x01, 0x00, 0x04,
        HDR(VTSM_TDISP_GET_DEVICE_INTERFACE_STATE),
        HDR(VTSM_TDISP_START_INTERFACE_REQ),
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
        0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
        HDR(VTSM_TDISP_STOP_INTERFACE_REQ)};
    /* clang-format on */
    size_t at[7], n = 0;
    struct vtsm_tdisp_req req;

    (void)state;
    at[n++] = w.len;
    assert_int_equal(vtsm_tdisp_build_get_version(&w, FID), VTSM_OK);
    at[n++] = w.len;
    assert_int_equal(vtsm_tdisp_build_get_capabilities(&w, FID, 0), VTSM_OK);
    at[n++] = w.len;
    assert_int_equal(vtsm_tdisp_build_lock_interface(&w, FID, &lp), VTSM_OK);
    at[n++] = w.len;
    assert_int_equal(vtsm_tdisp_build_get_report(&w, FID, 0x0100, 0x0400), VTSM_OK);
    at[n++] = w.len;
    assert_int_equal(vtsm_tdisp_build_get_state(&w, FID), VTSM_OK);
    at[n++] = w.len;
    assert_int_equal(vtsm_tdisp_build_start_interface(&w, FID, nonce), VTSM_OK);
    at[n++] = w.len;
    assert_int_equal(vtsm_tdisp_build_stop_interface(&w, FID), VTSM_OK);
    assert_int_equal(w.len, sizeof(want));
    assert_memory_equal(buf, want, sizeof(want));

    /* And the responder reads each back. */
    static const uint8_t types[] = {VTSM_TDISP_GET_VERSION,
                                    VTSM_TDISP_GET_CAPABILITIES,
                                    VTSM_TDISP_LOCK_INTERFACE_REQ,
                                    VTSM_TDISP_GET_DEVICE_INTERFACE_REPORT,
                                    VTSM_TDISP_GET_DEVICE_INTERFACE_STATE,
                                    VTSM_TDISP_START_INTERFACE_REQ,
                                    VTSM_TDISP_STOP_INTERFACE_REQ};
    for (size_t i = 0; i < n; i++) {
        size_t end = i + 1 < n ? at[i + 1] : w.len;
        assert_int_equal(vtsm_tdisp_parse_request(buf + at[i], end - at[i], &req), VTSM_OK);
        assert_int_equal(req.hdr.type, types[i]);
        assert_int_equal(req.hdr.function_id, FID);
        assert_string_equal(vtsm_tdisp_type_name(types[i]), vtsm_tdisp_type_name(req.hdr.type));
    }
    assert_int_equal(vtsm_tdisp_parse_request(buf + at[2], at[3] - at[2], &req), VTSM_OK);
    assert_int_equal(req.u.lock.flags, lp.flags);
    assert_int_equal(req.u.lock.default_stream_id, 2);
    assert_true(req.u.lock.mmio_reporting_offset == lp.mmio_reporting_offset);
    assert_int_equal(vtsm_tdisp_parse_request(buf + at[3], at[4] - at[3], &req), VTSM_OK);
    assert_int_equal(req.u.report.offset, 0x0100);
    assert_int_equal(req.u.report.length, 0x0400);
    assert_int_equal(vtsm_tdisp_parse_request(buf + at[5], at[6] - at[5], &req), VTSM_OK);
    assert_memory_equal(req.u.start_nonce, nonce, 32);
}

static void test_response_bytes(void **state)
{
    uint8_t buf[256];
    struct vtsm_wr w = vtsm_wr_init(buf, sizeof(buf));
    struct vtsm_tdisp_caps caps = {.dsm_caps = 0,
                                   .lock_interface_flags_supported = 0x001F,
                                   .dev_addr_width = 52,
                                   .num_req_this = 1,
                                   .num_req_all = 4};
    static const uint8_t versions[] = {0x10};
    /* clang-format off */
    static const uint8_t want[] = {
        HDR(VTSM_TDISP_VERSION), 0x01, 0x10,
        HDR(VTSM_TDISP_CAPABILITIES), 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x1f, 0x00, 0x00, 0x00, 0x00, 0x34, 0x01, 0x04,
        HDR(VTSM_TDISP_DEVICE_INTERFACE_STATE), 0x01,
        HDR(VTSM_TDISP_ERROR), 0x02, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        HDR(VTSM_TDISP_START_INTERFACE_RSP),
        HDR(VTSM_TDISP_STOP_INTERFACE_RSP)};
    /* clang-format on */
    struct vtsm_tdisp_rsp rsp;
    const uint8_t *p = want;

    (void)state;
    assert_int_equal(vtsm_tdisp_build_version(&w, FID, versions, 1), VTSM_OK);
    assert_int_equal(vtsm_tdisp_build_capabilities(&w, FID, &caps), VTSM_OK);
    assert_int_equal(vtsm_tdisp_build_state_rsp(&w, FID, VTSM_TDI_CONFIG_LOCKED), VTSM_OK);
    assert_int_equal(vtsm_tdisp_build_error(&w, FID, VTSM_TDISP_ERR_INVALID_NONCE, 0, NULL, 0),
                     VTSM_OK);
    assert_int_equal(vtsm_tdisp_build_start_rsp(&w, FID), VTSM_OK);
    assert_int_equal(vtsm_tdisp_build_stop_rsp(&w, FID), VTSM_OK);
    assert_int_equal(w.len, sizeof(want));
    assert_memory_equal(buf, want, sizeof(want));

    assert_int_equal(vtsm_tdisp_parse_response(p, 19, VTSM_TDISP_GET_VERSION, FID, &rsp), VTSM_OK);
    assert_int_equal(rsp.u.version.count, 1);
    assert_int_equal(rsp.u.version.versions[0], 0x10);
    p += 19;
    assert_int_equal(vtsm_tdisp_parse_response(p, 45, VTSM_TDISP_GET_CAPABILITIES, FID, &rsp),
                     VTSM_OK);
    assert_int_equal(rsp.u.caps.lock_interface_flags_supported, 0x1F);
    assert_int_equal(rsp.u.caps.dev_addr_width, 52);
    assert_int_equal(rsp.u.caps.num_req_all, 4);
    p += 45;
    assert_int_equal(
        vtsm_tdisp_parse_response(p, 18, VTSM_TDISP_GET_DEVICE_INTERFACE_STATE, FID, &rsp),
        VTSM_OK);
    assert_int_equal(rsp.u.tdi_state, VTSM_TDI_CONFIG_LOCKED);
    p += 18;
    EXPECT_DETAIL(vtsm_tdisp_parse_response(p, 25, VTSM_TDISP_START_INTERFACE_REQ, FID, &rsp),
                  VTSM_E_PEER_ERROR, VTSM_RULE_NONE, "TDISP_ERROR INVALID_NONCE (0x102");
    assert_int_equal(rsp.u.error.code, VTSM_TDISP_ERR_INVALID_NONCE);
    assert_int_equal(rsp.u.error.ext_len, 0);
    p += 25;
    assert_int_equal(vtsm_tdisp_parse_response(p, 17, VTSM_TDISP_START_INTERFACE_REQ, FID, &rsp),
                     VTSM_OK);
    p += 17;
    assert_int_equal(vtsm_tdisp_parse_response(p, 17, VTSM_TDISP_STOP_INTERFACE_REQ, FID, &rsp),
                     VTSM_OK);
}

static void test_lock_nonce_and_vendor_error_round_trip(void **state)
{
    uint8_t buf[128];
    struct vtsm_wr w = vtsm_wr_init(buf, sizeof(buf));
    struct vtsm_tdisp_rsp rsp;
    static const uint8_t ext[] = {0x00, 0x02, 0x86, 0x80, 0xde, 0xad};

    (void)state;
    assert_int_equal(vtsm_tdisp_build_lock_rsp(&w, FID, nonce), VTSM_OK);
    assert_int_equal(w.len, 17 + 32);
    assert_int_equal(
        vtsm_tdisp_parse_response(buf, w.len, VTSM_TDISP_LOCK_INTERFACE_REQ, FID, &rsp), VTSM_OK);
    assert_memory_equal(rsp.u.lock_nonce, nonce, 32);

    w = vtsm_wr_init(buf, sizeof(buf));
    assert_int_equal(
        vtsm_tdisp_build_error(&w, FID, VTSM_TDISP_ERR_VENDOR_SPECIFIC_ERROR, 7, ext, sizeof(ext)),
        VTSM_OK);
    EXPECT_DETAIL(vtsm_tdisp_parse_response(buf, w.len, VTSM_TDISP_GET_VERSION, FID, &rsp),
                  VTSM_E_PEER_ERROR, VTSM_RULE_NONE, "VENDOR_SPECIFIC_ERROR");
    assert_int_equal(rsp.u.error.data, 7);
    assert_int_equal(rsp.u.error.ext_len, sizeof(ext));
    assert_int_equal(rsp.u.error.registry_id, 0);
    assert_int_equal(rsp.u.error.vendor_id_len, 2);
    assert_int_equal(vtsm_get_le16(rsp.u.error.vendor_id), 0x8086);
    assert_string_equal(vtsm_tdisp_error_name(VTSM_TDISP_ERR_INVALID_INTERFACE_STATE),
                        "INVALID_INTERFACE_STATE");
}

static void test_report_bytes_and_chunked_transfer(void **state)
{
    struct vtsm_tdisp_report r, got;
    uint8_t rep[256], msg[64], whole[256];
    struct vtsm_wr w = vtsm_wr_init(rep, sizeof(rep));
    struct vtsm_tdisp_rsp rsp;
    struct vtsm_tdisp_req req;
    size_t have = 0;

    (void)state;
    fill_report(&r);
    assert_int_equal(vtsm_tdisp_report_size(&r), sizeof(report_wire));
    assert_int_equal(vtsm_tdisp_report_build(&w, &r), VTSM_OK);
    assert_int_equal(w.len, sizeof(report_wire));
    assert_memory_equal(rep, report_wire, sizeof(report_wire));

    /* Device answers GET_DEVICE_INTERFACE_REPORT in 7-byte portions; TSM reassembles. */
    for (;;) {
        struct vtsm_wr q = vtsm_wr_init(msg, sizeof(msg));
        assert_int_equal(vtsm_tdisp_build_get_report(&q, FID, (uint16_t)have, 7), VTSM_OK);
        assert_int_equal(vtsm_tdisp_parse_request(msg, q.len, &req), VTSM_OK);
        size_t off = req.u.report.offset;
        size_t portion = sizeof(report_wire) - off < req.u.report.length ? sizeof(report_wire) - off
                                                                         : req.u.report.length;
        struct vtsm_wr a = vtsm_wr_init(msg, sizeof(msg));
        assert_int_equal(
            vtsm_tdisp_build_report_rsp(&a, FID, rep + off, (uint16_t)portion,
                                        (uint16_t)(sizeof(report_wire) - off - portion)),
            VTSM_OK);
        assert_int_equal(vtsm_tdisp_parse_response(
                             msg, a.len, VTSM_TDISP_GET_DEVICE_INTERFACE_REPORT, FID, &rsp),
                         VTSM_OK);
        memcpy(whole + have, rsp.u.report.portion, rsp.u.report.portion_length);
        have += rsp.u.report.portion_length;
        if (rsp.u.report.remainder_length == 0)
            break;
    }
    assert_int_equal(have, sizeof(report_wire));
    assert_int_equal(vtsm_tdisp_report_parse(whole, have, &got), VTSM_OK);
    assert_int_equal(got.interface_info, r.interface_info);
    assert_int_equal(got.msi_x_message_control, 7);
    assert_int_equal(got.mmio_range_count, 2);
    assert_true(got.mmio_range[1].first_page == 0xF0010000ull);
    assert_int_equal(got.mmio_range[1].number_of_pages, 16);
    assert_int_equal(got.mmio_range[1].range_id, 1);
    assert_int_equal(got.mmio_range[0].range_attributes, VTSM_TDISP_RANGE_MSIX_TABLE);
    assert_int_equal(got.device_specific_info_len, 4);
    assert_memory_equal(got.device_specific_info, "vtsm", 4);

    /* An empty report (no ranges, no device info) is valid. */
    memset(&r, 0, sizeof(r));
    w = vtsm_wr_init(rep, sizeof(rep));
    assert_int_equal(vtsm_tdisp_report_build(&w, &r), VTSM_OK);
    assert_int_equal(w.len, 20);
    assert_int_equal(vtsm_tdisp_report_parse(rep, w.len, &got), VTSM_OK);
}

/* VDM_REQ / VDM_RSP: failure cases first, then the vtsm FUNCTION_LEVEL_RESET round trip. */
static void test_vdm(void **state)
{
    struct vtsm_tdisp_req req;
    struct vtsm_tdisp_rsp rsp;
    static const uint8_t no_len[] = {HDR(VTSM_TDISP_VDM_REQ), 0x00};
    static const uint8_t short_id[] = {HDR(VTSM_TDISP_VDM_REQ), 0x00, 0x04, 0xFF, 0xFF};
    static const uint8_t registry2[] = {HDR(VTSM_TDISP_VDM_REQ), 0x02, 0x00};
    (void)state;
    EXPECT_DETAIL(vtsm_tdisp_parse_request(no_len, sizeof(no_len), &req), VTSM_E_PEER_TRUNCATED,
                  VTSM_RULE_NONE, "VENDOR_ID_LEN");
    EXPECT_DETAIL(vtsm_tdisp_parse_request(short_id, sizeof(short_id), &req), VTSM_E_PEER_TRUNCATED,
                  VTSM_RULE_NONE, "exceeds");
    EXPECT_DETAIL(vtsm_tdisp_parse_request(registry2, sizeof(registry2), &req),
                  VTSM_E_PEER_MALFORMED, VTSM_RULE_NONE, "REGISTRY_ID 2");
    /* builders refuse bad input and leave nothing behind */
    uint8_t m[64];
    struct vtsm_wr w = vtsm_wr_init(m, sizeof(m));
    struct vtsm_tdisp_vdm bad = {.registry_id = 2};
    assert_int_equal(vtsm_tdisp_build_vdm(&w, VTSM_TDISP_VDM_REQ, FID, &bad), VTSM_E_INVAL);
    assert_int_equal(vtsm_tdisp_build_vdm(&w, VTSM_TDISP_STOP_INTERFACE_REQ, FID, &bad),
                     VTSM_E_INVAL);
    assert_int_equal(w.len, 0);
    /* round trip */
    const uint8_t vid[2] = {0xFF, 0xFF}, body[4] = {VTSM_TDISP_VDM_VTSM_FLR};
    struct vtsm_tdisp_vdm v = {.vendor_id_len = 2, .vendor_id = vid, .body = body, .body_len = 4};
    assert_int_equal(vtsm_tdisp_build_vdm(&w, VTSM_TDISP_VDM_REQ, FID, &v), VTSM_OK);
    assert_int_equal(w.len, VTSM_TDISP_HEADER_SIZE + 2 + 2 + 4);
    assert_int_equal(vtsm_tdisp_parse_request(m, w.len, &req), VTSM_OK);
    assert_int_equal(req.u.vdm.registry_id, 0);
    assert_int_equal(req.u.vdm.vendor_id_len, 2);
    assert_memory_equal(req.u.vdm.vendor_id, vid, 2);
    assert_int_equal(req.u.vdm.body_len, 4);
    assert_memory_equal(req.u.vdm.body, body, 4);
    w = vtsm_wr_init(m, sizeof(m));
    assert_int_equal(vtsm_tdisp_build_vdm(&w, VTSM_TDISP_VDM_RSP, FID, &v), VTSM_OK);
    assert_int_equal(vtsm_tdisp_parse_response(m, w.len, VTSM_TDISP_VDM_REQ, FID, &rsp), VTSM_OK);
    assert_int_equal(rsp.u.vdm.body_len, 4);
    /* a VDM_RSP is not the answer to STOP */
    EXPECT_DETAIL(vtsm_tdisp_parse_response(m, w.len, VTSM_TDISP_STOP_INTERFACE_REQ, FID, &rsp),
                  VTSM_E_PEER_UNEXPECTED, VTSM_RULE_NONE, "VDM_RSP");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_refusals),
        cmocka_unit_test(test_request_refusals),
        cmocka_unit_test(test_response_refusals),
        cmocka_unit_test(test_builders_refuse_and_leave_nothing),
        cmocka_unit_test(test_report_overlap),
        cmocka_unit_test(test_report_range_rules),
        cmocka_unit_test(test_report_counts_and_lengths),
        cmocka_unit_test(test_report_build_limits),
        cmocka_unit_test(test_report_hash_refuses_bad_report),
        cmocka_unit_test(test_request_bytes),
        cmocka_unit_test(test_response_bytes),
        cmocka_unit_test(test_lock_nonce_and_vendor_error_round_trip),
        cmocka_unit_test(test_report_bytes_and_chunked_transfer),
        cmocka_unit_test(test_vdm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
