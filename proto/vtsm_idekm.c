/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * IDE_KM codec (PCIe 6.x sec. 6.33.3 "IDE Key Management (IDE_KM)"). Layouts checked
 * against DMTF libspdm include/industry_standard/pci_idekm.h and pcidoe.h; the key/IFV DW
 * order against intel/tee-io-validator doc/key_byte_order.md (PCIe 6.2 / CXL 3.1).
 */
#include "vtsm_idekm.h"

#include <string.h>

#include <openssl/crypto.h>

#include "vtsm_guard.h"

#define LINK_BLOCK_SIZE 8  /* Link IDE Stream Control + Status */
#define SEL_FIXED_SIZE  20 /* Selective IDE Stream Cap, Ctrl, Status, RID Assoc 1, 2 */
#define ADDR_BLOCK_SIZE 12 /* IDE Address Association Register 1, 2, 3 */

void vtsm_idekm_key_wipe(struct vtsm_idekm_key *k)
{
    if (k)
        OPENSSL_cleanse(k, sizeof(*k));
}

const char *vtsm_idekm_object_name(uint8_t object_id)
{
    static const char *const names[] = {"QUERY",    "QUERY_RESP", "KEY_PROG",    "KP_ACK",
                                        "K_SET_GO", "K_SET_STOP", "K_GOSTOP_ACK"};
    return object_id < VTSM_ARRAY_SIZE(names) ? names[object_id] : "unknown";
}

/* ---- reading ---- */

static vtsm_status short_msg(const char *msg, const char *field, size_t len)
{
    return vtsm_fail(VTSM_E_PEER_TRUNCATED, "IDE_KM %s truncated at %s (%zu bytes)", msg, field,
                     len);
}

static vtsm_status rd_end(const struct vtsm_rd *r, const char *msg)
{
    VTSM_ENSURE(vtsm_rd_left(r) == 0, VTSM_E_PEER_MALFORMED,
                "IDE_KM %s carries %zu bytes beyond its %zu-byte layout", msg, vtsm_rd_left(r),
                r->off);
    return VTSM_OK;
}

/* Protocol ID and Object ID: the header every IDE_KM message starts with. */
static vtsm_status rd_header(struct vtsm_rd *r, uint8_t expect, uint8_t *object_id)
{
    const char *msg = vtsm_idekm_object_name(expect);
    uint8_t proto, obj;

    if (vtsm_rd_u8(r, &proto))
        return short_msg(msg, "protocol ID", r->len);
    VTSM_ENSURE(proto == VTSM_PCI_PROTOCOL_ID_IDE_KM, VTSM_E_PEER_MALFORMED,
                "IDE_KM %s: protocol ID 0x%02x is not IDE_KM (0x00)", msg, proto);
    if (vtsm_rd_u8(r, &obj))
        return short_msg(msg, "Object ID", r->len);
    if (object_id) {
        *object_id = obj;
        return VTSM_OK;
    }
    VTSM_ENSURE(obj == expect, VTSM_E_PEER_UNEXPECTED,
                "IDE_KM Object ID 0x%02x (%s) where %s (0x%02x) was expected", obj,
                vtsm_idekm_object_name(obj), msg, expect);
    return VTSM_OK;
}

/* KeySubStream: bits 3:2 reserved; sub-stream 0 PR, 1 NPR, 2 CPL, others reserved. */
static vtsm_status check_kss(uint8_t kss, const char *msg)
{
    VTSM_ENSURE((kss & VTSM_IDEKM_KSS_RESERVED_MASK) == 0, VTSM_E_PEER_MALFORMED,
                "IDE_KM %s: KeySubStream 0x%02x has reserved bits 3:2 set", msg, kss);
    VTSM_ENSURE((kss >> 4) <= 2, VTSM_E_PEER_MALFORMED,
                "IDE_KM %s: KeySubStream sub-stream %u is reserved (PR 0, NPR 1, CPL 2)", msg,
                kss >> 4);
    return VTSM_OK;
}

/*
 * The 6 bytes after the object ID shared by KEY_PROG, KP_ACK, K_SET_GO, K_SET_STOP and
 * K_GOSTOP_ACK: Reserved (2), Stream ID, Reserved or Status, KeySubStream, PortIndex.
 */
struct short_fields {
    uint8_t stream_id;
    uint8_t byte5; /* Status in KP_ACK, reserved elsewhere */
    uint8_t kss;
    uint8_t port_index;
    uint16_t rsvd;
};

static vtsm_status rd_short_fields(struct vtsm_rd *r, const char *msg, struct short_fields *f)
{
    if (vtsm_rd_le16(r, &f->rsvd))
        return short_msg(msg, "Reserved", r->len);
    if (vtsm_rd_u8(r, &f->stream_id))
        return short_msg(msg, "Stream ID", r->len);
    if (vtsm_rd_u8(r, &f->byte5))
        return short_msg(msg, strcmp(msg, "KP_ACK") == 0 ? "Status" : "Reserved", r->len);
    if (vtsm_rd_u8(r, &f->kss))
        return short_msg(msg, "KeySubStream", r->len);
    if (vtsm_rd_u8(r, &f->port_index))
        return short_msg(msg, "PortIndex", r->len);
    return VTSM_OK;
}

static vtsm_status check_short_fields(const struct short_fields *f, const char *msg, bool status)
{
    VTSM_ENSURE(f->rsvd == 0, VTSM_E_PEER_MALFORMED,
                "IDE_KM %s: Reserved bytes 2-3 are 0x%04x, must be zero", msg, f->rsvd);
    if (!status)
        VTSM_ENSURE(f->byte5 == 0, VTSM_E_PEER_MALFORMED,
                    "IDE_KM %s: Reserved byte 5 is 0x%02x, must be zero", msg, f->byte5);
    return check_kss(f->kss, msg);
}

/* Key DW7..DW0 then IFV DW1, DW0, each DW little-endian (see struct vtsm_idekm_key). */
static void key_from_wire(const uint8_t *p, struct vtsm_idekm_key *k)
{
    for (size_t i = 0; i < VTSM_IDEKM_KEY_SIZE; i += 4) {
        k->key[i] = p[i + 3];
        k->key[i + 1] = p[i + 2];
        k->key[i + 2] = p[i + 1];
        k->key[i + 3] = p[i];
    }
    k->ifv = ((uint64_t)vtsm_get_le32(p + 32) << 32) | vtsm_get_le32(p + 36);
}

static void key_to_wire(const struct vtsm_idekm_key *k, uint8_t *p)
{
    for (size_t i = 0; i < VTSM_IDEKM_KEY_SIZE; i += 4) {
        p[i] = k->key[i + 3];
        p[i + 1] = k->key[i + 2];
        p[i + 2] = k->key[i + 1];
        p[i + 3] = k->key[i];
    }
    vtsm_put_le32(p + 32, (uint32_t)(k->ifv >> 32));
    vtsm_put_le32(p + 36, (uint32_t)k->ifv);
}

/* ---- responder side: requests ---- */

static vtsm_status parse_key_prog_tail(struct vtsm_rd *r, struct vtsm_idekm_req *req)
{
    const uint8_t *key;

    if (vtsm_rd_ref(r, &key, VTSM_IDEKM_KEY_SIZE + VTSM_IDEKM_IFV_SIZE)) {
        req->kp_status = VTSM_IDEKM_KP_INCORRECT_LENGTH;
        return vtsm_fail(VTSM_E_PEER_TRUNCATED,
                         "IDE_KM KEY_PROG of %zu bytes: Key (8 DW) and IFV (2 DW) need %u", r->len,
                         VTSM_IDEKM_KEY_PROG_SIZE);
    }
    if (vtsm_rd_left(r) != 0) {
        req->kp_status = VTSM_IDEKM_KP_INCORRECT_LENGTH;
        return rd_end(r, "KEY_PROG");
    }
    key_from_wire(key, &req->key);
    return VTSM_OK;
}

vtsm_status vtsm_idekm_parse_request(const uint8_t *msg, size_t len, struct vtsm_idekm_req *req)
{
    struct vtsm_rd r = vtsm_rd_init(msg, len);
    struct short_fields f;
    uint8_t obj, rsvd;
    vtsm_status st;

    VTSM_ENSURE(req != NULL && (msg != NULL || len == 0), VTSM_E_INVAL,
                "IDE_KM request: NULL argument");
    memset(req, 0, sizeof(*req));
    VTSM_GUARD(rd_header(&r, VTSM_IDEKM_QUERY, &obj));
    req->object_id = obj;
    const char *name = vtsm_idekm_object_name(obj);

    switch (obj) {
    case VTSM_IDEKM_QUERY:
        if (vtsm_rd_u8(&r, &rsvd))
            return short_msg(name, "Reserved", len);
        if (vtsm_rd_u8(&r, &req->port_index))
            return short_msg(name, "PortIndex", len);
        VTSM_ENSURE(rsvd == 0, VTSM_E_PEER_MALFORMED,
                    "IDE_KM QUERY: Reserved byte 2 is 0x%02x, must be zero", rsvd);
        return rd_end(&r, name);
    case VTSM_IDEKM_KEY_PROG:
    case VTSM_IDEKM_K_SET_GO:
    case VTSM_IDEKM_K_SET_STOP:
        break;
    case VTSM_IDEKM_QUERY_RESP:
    case VTSM_IDEKM_KP_ACK:
    case VTSM_IDEKM_K_GOSTOP_ACK:
        return vtsm_fail(VTSM_E_PEER_UNEXPECTED,
                         "IDE_KM Object ID 0x%02x (%s) is a response, not a request", obj, name);
    default:
        return vtsm_fail(VTSM_E_PEER_UNEXPECTED, "IDE_KM Object ID 0x%02x is not defined", obj);
    }

    if ((st = rd_short_fields(&r, name, &f)) != VTSM_OK) {
        if (obj == VTSM_IDEKM_KEY_PROG)
            req->kp_status = VTSM_IDEKM_KP_INCORRECT_LENGTH;
        return st;
    }
    req->stream_id = f.stream_id;
    req->key_sub_stream = f.kss;
    req->port_index = f.port_index;
    req->fixed_valid = true;
    if ((st = check_short_fields(&f, name, false)) != VTSM_OK) {
        req->kp_status = VTSM_IDEKM_KP_UNSUPPORTED_VALUE;
        return st;
    }
    if (obj == VTSM_IDEKM_KEY_PROG)
        return parse_key_prog_tail(&r, req);
    return rd_end(&r, name);
}

/* ---- requester side: responses ---- */

static vtsm_status parse_ack(const uint8_t *msg, size_t len, uint8_t expect,
                             struct vtsm_idekm_ack *out)
{
    struct vtsm_rd r = vtsm_rd_init(msg, len);
    const char *name = vtsm_idekm_object_name(expect);
    bool kp = expect == VTSM_IDEKM_KP_ACK;
    struct short_fields f;

    VTSM_ENSURE(out != NULL && (msg != NULL || len == 0), VTSM_E_INVAL, "IDE_KM %s: NULL argument",
                name);
    VTSM_GUARD(rd_header(&r, expect, NULL));
    VTSM_GUARD(rd_short_fields(&r, name, &f));
    VTSM_GUARD(rd_end(&r, name));
    VTSM_GUARD(check_short_fields(&f, name, kp));
    if (kp)
        VTSM_ENSURE(f.byte5 <= VTSM_IDEKM_KP_UNSPECIFIED_FAILURE, VTSM_E_PEER_MALFORMED,
                    "IDE_KM KP_ACK: Status 0x%02x is reserved (0-4 defined)", f.byte5);
    out->object_id = expect;
    out->stream_id = f.stream_id;
    out->status = kp ? f.byte5 : 0;
    out->key_sub_stream = f.kss;
    out->port_index = f.port_index;
    return VTSM_OK;
}

vtsm_status vtsm_idekm_parse_kp_ack(const uint8_t *msg, size_t len, struct vtsm_idekm_ack *out)
{
    return parse_ack(msg, len, VTSM_IDEKM_KP_ACK, out);
}

vtsm_status vtsm_idekm_parse_gostop_ack(const uint8_t *msg, size_t len, struct vtsm_idekm_ack *out)
{
    return parse_ack(msg, len, VTSM_IDEKM_K_GOSTOP_ACK, out);
}

static unsigned link_count_of(uint32_t cap)
{
    return (cap & VTSM_IDE_CAP_LINK) ? VTSM_IDE_CAP_LINK_TC_NUM(cap) + 1 : 0;
}

static unsigned sel_count_of(uint32_t cap)
{
    return (cap & VTSM_IDE_CAP_SELECTIVE) ? VTSM_IDE_CAP_SEL_NUM(cap) + 1 : 0;
}

static vtsm_status rd_regs(struct vtsm_rd *r, uint32_t *regs, size_t n, const char *field)
{
    for (size_t i = 0; i < n; i++)
        if (vtsm_rd_le32(r, &regs[i]))
            return vtsm_fail(VTSM_E_PEER_TRUNCATED, "IDE_KM QUERY_RESP truncated in %s (%zu bytes)",
                             field, r->len);
    return VTSM_OK;
}

/*
 * QUERY_RESP: after the fixed fields comes the IDE Extended Capability without its
 * header DW: IDE Capability, IDE Control, then Link IDE Stream blocks (Control, Status)
 * when Link IDE is supported - one per TC - then Selective IDE Stream blocks when
 * Selective IDE is supported (Cap, Control, Status, RID Association 1, 2, then as many
 * Address Association blocks as that block's Cap says).
 */
vtsm_status vtsm_idekm_parse_query_resp(const uint8_t *msg, size_t len,
                                        struct vtsm_idekm_query_resp *out)
{
    struct vtsm_rd r = vtsm_rd_init(msg, len);
    static const char name[] = "QUERY_RESP";
    uint8_t rsvd;

    VTSM_ENSURE(out != NULL && (msg != NULL || len == 0), VTSM_E_INVAL,
                "IDE_KM QUERY_RESP: NULL argument");
    VTSM_ENSURE(out->sel != NULL || out->sel_cap == 0, VTSM_E_INVAL,
                "IDE_KM QUERY_RESP: sel_cap %u without a sel array", out->sel_cap);
    out->trailing = 0;
    VTSM_GUARD(rd_header(&r, VTSM_IDEKM_QUERY_RESP, NULL));
    if (vtsm_rd_u8(&r, &rsvd) || vtsm_rd_u8(&r, &out->port_index) ||
        vtsm_rd_u8(&r, &out->dev_func_num) || vtsm_rd_u8(&r, &out->bus_num) ||
        vtsm_rd_u8(&r, &out->segment) || vtsm_rd_u8(&r, &out->max_port_index))
        return short_msg(name, "the fixed fields", len);
    if (vtsm_rd_le32(&r, &out->ide_cap))
        return short_msg(name, "IDE Capability Register", len);
    if (vtsm_rd_le32(&r, &out->ide_ctrl))
        return short_msg(name, "IDE Control Register", len);
    VTSM_ENSURE(rsvd == 0, VTSM_E_PEER_MALFORMED,
                "IDE_KM QUERY_RESP: Reserved byte 2 is 0x%02x, must be zero", rsvd);
    VTSM_ENSURE(out->port_index <= out->max_port_index, VTSM_E_PEER_MALFORMED,
                "IDE_KM QUERY_RESP: PortIndex %u exceeds MaxPortIndex %u", out->port_index,
                out->max_port_index);

    /* Counts come from the capability register; the blocks must all be there. */
    out->link_count = link_count_of(out->ide_cap);
    out->sel_count = sel_count_of(out->ide_cap);
    size_t least =
        (size_t)out->link_count * LINK_BLOCK_SIZE + (size_t)out->sel_count * SEL_FIXED_SIZE;
    VTSM_ENSURE(least <= vtsm_rd_left(&r), VTSM_E_PEER_TRUNCATED,
                "IDE_KM QUERY_RESP: IDE Capability 0x%08x announces %u Link and %u Selective "
                "IDE blocks (at least %zu bytes), only %zu bytes follow",
                out->ide_cap, out->link_count, out->sel_count, least, vtsm_rd_left(&r));

    for (unsigned i = 0; i < out->link_count; i++) {
        uint32_t regs[2];
        VTSM_GUARD(rd_regs(&r, regs, 2, "a Link IDE Stream block"));
        out->link[i].ctrl = regs[0];
        out->link[i].status = regs[1];
    }
    for (unsigned i = 0; i < out->sel_count; i++) {
        struct vtsm_idekm_sel_block b;
        uint32_t regs[5];

        VTSM_GUARD(rd_regs(&r, regs, 5, "a Selective IDE Stream block"));
        b.cap = regs[0];
        b.ctrl = regs[1];
        b.status = regs[2];
        b.rid1 = regs[3];
        b.rid2 = regs[4];
        unsigned n = VTSM_IDE_SEL_CAP_ASSOC_NUM(b.cap);
        for (unsigned a = 0; a < n; a++) {
            uint32_t ar[3];
            VTSM_GUARD(rd_regs(&r, ar, 3, "an IDE Address Association block"));
            b.addr[a].reg1 = ar[0];
            b.addr[a].reg2 = ar[1];
            b.addr[a].reg3 = ar[2];
        }
        for (unsigned a = n; a < VTSM_IDEKM_MAX_ADDR; a++)
            b.addr[a] = (struct vtsm_idekm_addr_block){0, 0, 0};
        if (i < out->sel_cap)
            out->sel[i] = b;
    }
    out->trailing = vtsm_rd_left(&r);
    if (out->allow_trailing)
        return VTSM_OK;
    return rd_end(&r, name);
}

/* ---- writing ---- */

/* Every builder checks capacity first, so a message is written whole or not at all. */
static vtsm_status wr_room(const struct vtsm_wr *w, size_t need, const char *name)
{
    VTSM_ENSURE(w != NULL && (w->p != NULL || w->cap == 0), VTSM_E_INVAL, "IDE_KM %s: NULL writer",
                name);
    size_t room = w->len <= w->cap ? w->cap - w->len : 0;
    VTSM_ENSURE(need <= room, VTSM_E_TOO_SMALL, "IDE_KM %s needs %zu bytes, %zu free", name, need,
                room);
    return VTSM_OK;
}

static vtsm_status wr_rollback(struct vtsm_wr *w, size_t start, vtsm_status st)
{
    if (st != VTSM_OK) {
        if (w->len > start)
            OPENSSL_cleanse(w->p + start, w->len - start);
        w->len = start;
    }
    return st;
}

static vtsm_status wr_header(struct vtsm_wr *w, uint8_t object_id)
{
    VTSM_GUARD(vtsm_wr_u8(w, VTSM_PCI_PROTOCOL_ID_IDE_KM));
    return vtsm_wr_u8(w, object_id);
}

static vtsm_status arg_kss(uint8_t kss, const char *name)
{
    VTSM_ENSURE((kss & VTSM_IDEKM_KSS_RESERVED_MASK) == 0 && (kss >> 4) <= 2, VTSM_E_INVAL,
                "IDE_KM %s: KeySubStream 0x%02x has reserved bits or sub-stream", name, kss);
    return VTSM_OK;
}

static vtsm_status build_short(struct vtsm_wr *w, uint8_t object_id, uint8_t stream_id,
                               uint8_t byte5, uint8_t kss, uint8_t port_index)
{
    const char *name = vtsm_idekm_object_name(object_id);
    vtsm_status st;

    VTSM_GUARD(arg_kss(kss, name));
    VTSM_GUARD(wr_room(w, VTSM_IDEKM_SHORT_MSG_SIZE, name));
    size_t start = w->len;
    if ((st = wr_header(w, object_id)) == VTSM_OK && (st = vtsm_wr_zeros(w, 2)) == VTSM_OK &&
        (st = vtsm_wr_u8(w, stream_id)) == VTSM_OK && (st = vtsm_wr_u8(w, byte5)) == VTSM_OK &&
        (st = vtsm_wr_u8(w, kss)) == VTSM_OK)
        st = vtsm_wr_u8(w, port_index);
    return wr_rollback(w, start, st);
}

vtsm_status vtsm_idekm_build_query(struct vtsm_wr *w, uint8_t port_index)
{
    vtsm_status st;

    VTSM_GUARD(wr_room(w, VTSM_IDEKM_QUERY_SIZE, "QUERY"));
    size_t start = w->len;
    if ((st = wr_header(w, VTSM_IDEKM_QUERY)) == VTSM_OK && (st = vtsm_wr_u8(w, 0)) == VTSM_OK)
        st = vtsm_wr_u8(w, port_index);
    return wr_rollback(w, start, st);
}

vtsm_status vtsm_idekm_build_key_prog(struct vtsm_wr *w, uint8_t stream_id, uint8_t key_sub_stream,
                                      uint8_t port_index, const struct vtsm_idekm_key *key)
{
    vtsm_status st;
    size_t at;

    VTSM_ENSURE(key != NULL, VTSM_E_INVAL, "IDE_KM KEY_PROG: NULL key");
    VTSM_GUARD(arg_kss(key_sub_stream, "KEY_PROG"));
    VTSM_GUARD(wr_room(w, VTSM_IDEKM_KEY_PROG_SIZE, "KEY_PROG"));
    size_t start = w->len;
    if ((st = wr_header(w, VTSM_IDEKM_KEY_PROG)) == VTSM_OK &&
        (st = vtsm_wr_zeros(w, 2)) == VTSM_OK && (st = vtsm_wr_u8(w, stream_id)) == VTSM_OK &&
        (st = vtsm_wr_u8(w, 0)) == VTSM_OK && (st = vtsm_wr_u8(w, key_sub_stream)) == VTSM_OK &&
        (st = vtsm_wr_u8(w, port_index)) == VTSM_OK &&
        (st = vtsm_wr_reserve(w, VTSM_IDEKM_KEY_SIZE + VTSM_IDEKM_IFV_SIZE, &at)) == VTSM_OK)
        key_to_wire(key, w->p + at);
    return wr_rollback(w, start, st);
}

vtsm_status vtsm_idekm_build_k_set_go(struct vtsm_wr *w, uint8_t stream_id, uint8_t key_sub_stream,
                                      uint8_t port_index)
{
    return build_short(w, VTSM_IDEKM_K_SET_GO, stream_id, 0, key_sub_stream, port_index);
}

vtsm_status vtsm_idekm_build_k_set_stop(struct vtsm_wr *w, uint8_t stream_id,
                                        uint8_t key_sub_stream, uint8_t port_index)
{
    return build_short(w, VTSM_IDEKM_K_SET_STOP, stream_id, 0, key_sub_stream, port_index);
}

vtsm_status vtsm_idekm_build_kp_ack(struct vtsm_wr *w, uint8_t stream_id, uint8_t status,
                                    uint8_t key_sub_stream, uint8_t port_index)
{
    VTSM_ENSURE(status <= VTSM_IDEKM_KP_UNSPECIFIED_FAILURE, VTSM_E_INVAL,
                "IDE_KM KP_ACK: Status %u is reserved", status);
    return build_short(w, VTSM_IDEKM_KP_ACK, stream_id, status, key_sub_stream, port_index);
}

vtsm_status vtsm_idekm_build_gostop_ack(struct vtsm_wr *w, uint8_t stream_id,
                                        uint8_t key_sub_stream, uint8_t port_index)
{
    return build_short(w, VTSM_IDEKM_K_GOSTOP_ACK, stream_id, 0, key_sub_stream, port_index);
}

size_t vtsm_idekm_query_resp_size(const struct vtsm_idekm_query_resp *r)
{
    if (!r || r->link_count != link_count_of(r->ide_cap) ||
        r->sel_count != sel_count_of(r->ide_cap) || (r->sel_count && !r->sel))
        return 0;
    size_t n = VTSM_IDEKM_QUERY_RESP_MIN + (size_t)r->link_count * LINK_BLOCK_SIZE;
    for (unsigned i = 0; i < r->sel_count; i++)
        n += SEL_FIXED_SIZE + (size_t)VTSM_IDE_SEL_CAP_ASSOC_NUM(r->sel[i].cap) * ADDR_BLOCK_SIZE;
    return n;
}

vtsm_status vtsm_idekm_build_query_resp(struct vtsm_wr *w, const struct vtsm_idekm_query_resp *r)
{
    vtsm_status st = VTSM_OK;

    VTSM_ENSURE(r != NULL, VTSM_E_INVAL, "IDE_KM QUERY_RESP: NULL contents");
    size_t need = vtsm_idekm_query_resp_size(r);
    VTSM_ENSURE(need != 0, VTSM_E_INVAL,
                "IDE_KM QUERY_RESP: %u Link / %u Selective blocks do not match IDE Capability "
                "0x%08x (expects %u / %u)",
                r->link_count, r->sel_count, r->ide_cap, link_count_of(r->ide_cap),
                sel_count_of(r->ide_cap));
    VTSM_ENSURE(r->port_index <= r->max_port_index, VTSM_E_INVAL,
                "IDE_KM QUERY_RESP: PortIndex %u exceeds MaxPortIndex %u", r->port_index,
                r->max_port_index);
    VTSM_GUARD(wr_room(w, need, "QUERY_RESP"));
    size_t start = w->len;

    VTSM_GUARD_GOTO(wr_header(w, VTSM_IDEKM_QUERY_RESP));
    VTSM_GUARD_GOTO(vtsm_wr_u8(w, 0));
    VTSM_GUARD_GOTO(vtsm_wr_u8(w, r->port_index));
    VTSM_GUARD_GOTO(vtsm_wr_u8(w, r->dev_func_num));
    VTSM_GUARD_GOTO(vtsm_wr_u8(w, r->bus_num));
    VTSM_GUARD_GOTO(vtsm_wr_u8(w, r->segment));
    VTSM_GUARD_GOTO(vtsm_wr_u8(w, r->max_port_index));
    VTSM_GUARD_GOTO(vtsm_wr_le32(w, r->ide_cap));
    VTSM_GUARD_GOTO(vtsm_wr_le32(w, r->ide_ctrl));
    for (unsigned i = 0; i < r->link_count; i++) {
        VTSM_GUARD_GOTO(vtsm_wr_le32(w, r->link[i].ctrl));
        VTSM_GUARD_GOTO(vtsm_wr_le32(w, r->link[i].status));
    }
    for (unsigned i = 0; i < r->sel_count; i++) {
        const struct vtsm_idekm_sel_block *b = &r->sel[i];
        VTSM_GUARD_GOTO(vtsm_wr_le32(w, b->cap));
        VTSM_GUARD_GOTO(vtsm_wr_le32(w, b->ctrl));
        VTSM_GUARD_GOTO(vtsm_wr_le32(w, b->status));
        VTSM_GUARD_GOTO(vtsm_wr_le32(w, b->rid1));
        VTSM_GUARD_GOTO(vtsm_wr_le32(w, b->rid2));
        for (unsigned a = 0; a < VTSM_IDE_SEL_CAP_ASSOC_NUM(b->cap); a++) {
            VTSM_GUARD_GOTO(vtsm_wr_le32(w, b->addr[a].reg1));
            VTSM_GUARD_GOTO(vtsm_wr_le32(w, b->addr[a].reg2));
            VTSM_GUARD_GOTO(vtsm_wr_le32(w, b->addr[a].reg3));
        }
    }
out:
    return wr_rollback(w, start, st);
}
