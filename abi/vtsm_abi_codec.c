/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * CBOR codec for ABI messages (RFC 8949 encoding, restricted by docs/abi.md).
 *
 * Decoding walks the raw bytes with one bounded cursor and checks every rule before
 * libcbor builds a tree, so libcbor never allocates for a count or a length that the
 * bytes cannot back. Encoding is our own walk of the libcbor tree, so what we send is
 * always definite-length and always passes the peer's validator.
 */
#include "vtsm_abi.h"

#include <stdlib.h>
#include <string.h>

#include "vtsm_cbor.h"
#include "vtsm_guard.h"

#define AI_FALSE      VTSM_CBOR_AI_FALSE
#define AI_TRUE       VTSM_CBOR_AI_TRUE
#define AI_INDEFINITE VTSM_CBOR_AI_INDEFINITE

/* ------------------------------------------------------------------ decoding */

struct key_ref {
    const uint8_t *p;
    size_t len;
};

struct vctx {
    struct vtsm_rd rd;
    unsigned items;
    /* keys of the maps on the current nesting path, for the duplicate check: in `local`
     * for the usual small message, on the heap (grown as needed) for a bigger one */
    struct key_ref *keys;
    size_t nkeys, cap;
    struct key_ref local[64];
};

/* Room for one more key on the stack of keys. */
static vtsm_status key_room(struct vctx *c)
{
    if (c->nkeys < c->cap)
        return VTSM_OK;
    if (c->cap >= VTSM_ABI_MAX_ITEMS)
        return vtsm_fail(VTSM_E_INTERNAL, "key stack overflow");
    size_t cap = c->cap * 4 < VTSM_ABI_MAX_ITEMS ? c->cap * 4 : VTSM_ABI_MAX_ITEMS;
    struct key_ref *k =
        c->keys == c->local ? malloc(cap * sizeof(*k)) : realloc(c->keys, cap * sizeof(*k));
    VTSM_ENSURE(k, VTSM_E_NOMEM, "key table");
    if (c->keys == c->local)
        memcpy(k, c->local, c->nkeys * sizeof(*k));
    c->keys = k;
    c->cap = cap;
    return VTSM_OK;
}

static vtsm_status malformed_short(const char *what)
{
    return vtsm_fail(VTSM_E_ABI_MALFORMED, "CBOR item truncated (%s)", what);
}

/* One initial byte plus its argument (RFC 8949 3). Indefinite lengths are refused here. */
static vtsm_status read_head(struct vctx *c, uint8_t *major, uint8_t *ai, uint64_t *arg)
{
    uint8_t ib;
    if (vtsm_rd_u8(&c->rd, &ib) != VTSM_OK)
        return malformed_short("initial byte");
    *major = (uint8_t)(ib >> 5);
    *ai = (uint8_t)(ib & 0x1f);
    size_t n;
    if (*ai < 24) {
        *arg = *ai;
        return VTSM_OK;
    }
    switch (*ai) {
    case 24:
        n = 1;
        break;
    case 25:
        n = 2;
        break;
    case 26:
        n = 4;
        break;
    case 27:
        n = 8;
        break;
    case AI_INDEFINITE:
        if (*major == VTSM_CBOR_SIMPLE)
            return vtsm_fail(VTSM_E_ABI_MALFORMED, "unexpected break stop code");
        return vtsm_fail(VTSM_E_ABI_MALFORMED, "indefinite-length item not allowed");
    default:
        return vtsm_fail(VTSM_E_ABI_MALFORMED, "reserved additional information %u", *ai);
    }
    const uint8_t *b;
    if (vtsm_rd_ref(&c->rd, &b, n) != VTSM_OK)
        return malformed_short("argument");
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | b[i];
    *arg = v;
    return VTSM_OK;
}

/* RFC 3629: shortest form, no surrogates, at most U+10FFFF. */
static bool utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t extra;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            extra = 1;
            cp = c & 0x1f;
            min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            extra = 2;
            cp = c & 0x0f;
            min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            extra = 3;
            cp = c & 0x07;
            min = 0x10000;
        } else {
            return false;
        }
        if (n - i <= extra)
            return false;
        for (size_t k = 1; k <= extra; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += extra + 1;
    }
    return true;
}

static vtsm_status count_item(struct vctx *c)
{
    if (++c->items > VTSM_ABI_MAX_ITEMS)
        return vtsm_fail(VTSM_E_ABI_MALFORMED, "more than %u data items", VTSM_ABI_MAX_ITEMS);
    return VTSM_OK;
}

static vtsm_status walk(struct vctx *c, unsigned depth, const uint8_t **text, size_t *text_len);

static int key_cmp(const void *a, const void *b)
{
    const struct key_ref *x = a, *y = b;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return x->len ? memcmp(x->p, y->p, x->len) : 0;
}

static vtsm_status walk_map(struct vctx *c, unsigned depth, uint64_t pairs)
{
    /* each pair takes at least two bytes: refuse counts the input cannot back */
    if (pairs > vtsm_rd_left(&c->rd) / 2 || pairs > VTSM_ABI_MAX_ITEMS / 2)
        return vtsm_fail(VTSM_E_ABI_MALFORMED,
                         "map declares %llu pairs, more than the message can hold",
                         (unsigned long long)pairs);
    size_t base = c->nkeys;
    for (uint64_t i = 0; i < pairs; i++) {
        size_t off = c->rd.off;
        if (off < c->rd.len && (c->rd.p[off] >> 5) != VTSM_CBOR_TEXT)
            return vtsm_fail(VTSM_E_ABI_MALFORMED, "map key is not a text string");
        const uint8_t *k = NULL;
        size_t klen = 0;
        VTSM_GUARD(walk(c, depth, &k, &klen));
        VTSM_GUARD(key_room(c));
        c->keys[c->nkeys].p = k;
        c->keys[c->nkeys].len = klen;
        c->nkeys++;
        VTSM_GUARD(walk(c, depth, NULL, NULL));
    }
    size_t n = c->nkeys - base;
    if (n > 1) {
        qsort(c->keys + base, n, sizeof(c->keys[0]), key_cmp);
        for (size_t i = base + 1; i < c->nkeys; i++) {
            if (key_cmp(&c->keys[i - 1], &c->keys[i]) == 0) {
                int shown = c->keys[i].len > 64 ? 64 : (int)c->keys[i].len;
                return vtsm_fail(VTSM_E_ABI_MALFORMED, "duplicate map key '%.*s'", shown,
                                 (const char *)c->keys[i].p);
            }
        }
    }
    c->nkeys = base;
    return VTSM_OK;
}

/*
 * Validate one data item at the cursor. depth is the nesting level of the container
 * holding it (0 for the top-level item). For a text item, *text receives its bytes.
 */
static vtsm_status walk(struct vctx *c, unsigned depth, const uint8_t **text, size_t *text_len)
{
    uint8_t major = 0, ai = 0;
    uint64_t arg = 0;
    VTSM_GUARD(count_item(c));
    VTSM_GUARD(read_head(c, &major, &ai, &arg));
    const uint8_t *b;
    switch (major) {
    case VTSM_CBOR_UINT:
    case VTSM_CBOR_NEGINT:
        return VTSM_OK;
    case VTSM_CBOR_BYTES:
        if (arg > VTSM_ABI_MAX_BSTR)
            return vtsm_fail(VTSM_E_ABI_MALFORMED, "byte string of %llu bytes exceeds %u",
                             (unsigned long long)arg, VTSM_ABI_MAX_BSTR);
        if (vtsm_rd_ref(&c->rd, &b, (size_t)arg) != VTSM_OK)
            return malformed_short("byte string");
        return VTSM_OK;
    case VTSM_CBOR_TEXT:
        if (arg > VTSM_ABI_MAX_TSTR)
            return vtsm_fail(VTSM_E_ABI_MALFORMED, "text string of %llu bytes exceeds %u",
                             (unsigned long long)arg, VTSM_ABI_MAX_TSTR);
        if (vtsm_rd_ref(&c->rd, &b, (size_t)arg) != VTSM_OK)
            return malformed_short("text string");
        if (!utf8_valid(b, (size_t)arg))
            return vtsm_fail(VTSM_E_ABI_MALFORMED, "text string is not valid UTF-8");
        if (text) {
            *text = b;
            *text_len = (size_t)arg;
        }
        return VTSM_OK;
    case VTSM_CBOR_ARRAY:
    case VTSM_CBOR_MAP:
        if (depth + 1 > VTSM_ABI_MAX_DEPTH)
            return vtsm_fail(VTSM_E_ABI_MALFORMED, "nesting deeper than %u", VTSM_ABI_MAX_DEPTH);
        if (major == VTSM_CBOR_MAP)
            return walk_map(c, depth + 1, arg);
        if (arg > vtsm_rd_left(&c->rd) || arg > VTSM_ABI_MAX_ITEMS)
            return vtsm_fail(VTSM_E_ABI_MALFORMED,
                             "array declares %llu items, more than the message can hold",
                             (unsigned long long)arg);
        for (uint64_t i = 0; i < arg; i++)
            VTSM_GUARD(walk(c, depth + 1, NULL, NULL));
        return VTSM_OK;
    case VTSM_CBOR_TAG:
        return vtsm_fail(VTSM_E_ABI_MALFORMED, "tags not allowed (tag %llu)",
                         (unsigned long long)arg);
    default: /* VTSM_CBOR_SIMPLE */
        if (ai == AI_FALSE || ai == AI_TRUE)
            return VTSM_OK;
        if (ai >= 25 && ai <= 27)
            return vtsm_fail(VTSM_E_ABI_MALFORMED, "floating-point values not allowed");
        return vtsm_fail(VTSM_E_ABI_MALFORMED, "simple value %llu not allowed",
                         (unsigned long long)arg);
    }
}

vtsm_status vtsm_abi_decode(const uint8_t *p, size_t len, cbor_item_t **out)
{
    vtsm_status st;
    struct vctx c = {.rd = vtsm_rd_init(p, len)};
    VTSM_ENSURE(out, VTSM_E_INVAL, "out is NULL");
    *out = NULL;
    VTSM_ENSURE(len <= VTSM_ABI_FRAME_MAX, VTSM_E_ABI_OVERSIZED, "frame of %zu bytes exceeds %u",
                len, VTSM_ABI_FRAME_MAX);
    VTSM_ENSURE(len > 0 && p, VTSM_E_ABI_MALFORMED, "empty frame");
    VTSM_ENSURE((p[0] >> 5) == VTSM_CBOR_MAP, VTSM_E_ABI_MALFORMED, "message is not a map");

    c.keys = c.local;
    c.cap = VTSM_ARRAY_SIZE(c.local);
    VTSM_GUARD_GOTO(walk(&c, 0, NULL, NULL));
    VTSM_ENSURE_GOTO(vtsm_rd_left(&c.rd) == 0, VTSM_E_ABI_MALFORMED,
                     "%zu trailing bytes after the message", vtsm_rd_left(&c.rd));

    struct cbor_load_result res;
    cbor_item_t *item = cbor_load(p, len, &res);
    if (!item || res.error.code != CBOR_ERR_NONE || res.read != len) {
        if (item)
            cbor_decref(&item);
        st = res.error.code == CBOR_ERR_MEMERROR
                 ? vtsm_fail(VTSM_E_NOMEM, "decoding message")
                 : vtsm_fail(VTSM_E_ABI_MALFORMED, "CBOR decoder refused the message");
        goto out;
    }
    *out = item;
    st = VTSM_OK;
out:
    if (c.keys != c.local)
        free(c.keys);
    return st;
}

/* ------------------------------------------------------------------ encoding */

/* cbor_is_bool() asserts on floats in libcbor 0.8: check the width first. */
static bool item_is_bool(const cbor_item_t *it)
{
    return cbor_isa_float_ctrl(it) && cbor_float_get_width(it) == CBOR_FLOAT_0 && cbor_is_bool(it);
}

struct ectx {
    struct vtsm_buf *b;
    unsigned items;
};

/* A definite or chunked (indefinite) string, written as one definite string. */
static vtsm_status put_string(struct ectx *e, const cbor_item_t *it, uint8_t major)
{
    bool text = major == VTSM_CBOR_TEXT;
    size_t limit = text ? VTSM_ABI_MAX_TSTR : VTSM_ABI_MAX_BSTR;
    bool indef = text ? cbor_string_is_indefinite(it) : cbor_bytestring_is_indefinite(it);
    if (!indef) {
        size_t n = text ? cbor_string_length(it) : cbor_bytestring_length(it);
        const unsigned char *d = text ? cbor_string_handle(it) : cbor_bytestring_handle(it);
        VTSM_ENSURE(n <= limit, VTSM_E_INVAL, "string of %zu bytes exceeds %zu", n, limit);
        VTSM_GUARD(vtsm_cbor_put_head(e->b, major, n));
        return n ? vtsm_buf_append(e->b, d, n) : VTSM_OK;
    }
    size_t nchunks = text ? cbor_string_chunk_count(it) : cbor_bytestring_chunk_count(it);
    cbor_item_t **chunks = text ? cbor_string_chunks_handle(it) : cbor_bytestring_chunks_handle(it);
    size_t total = 0;
    for (size_t i = 0; i < nchunks; i++)
        total += text ? cbor_string_length(chunks[i]) : cbor_bytestring_length(chunks[i]);
    VTSM_ENSURE(total <= limit, VTSM_E_INVAL, "string of %zu bytes exceeds %zu", total, limit);
    VTSM_GUARD(vtsm_cbor_put_head(e->b, major, total));
    for (size_t i = 0; i < nchunks; i++) {
        size_t n = text ? cbor_string_length(chunks[i]) : cbor_bytestring_length(chunks[i]);
        const unsigned char *d =
            text ? cbor_string_handle(chunks[i]) : cbor_bytestring_handle(chunks[i]);
        if (n)
            VTSM_GUARD(vtsm_buf_append(e->b, d, n));
    }
    return VTSM_OK;
}

static vtsm_status put_item(struct ectx *e, const cbor_item_t *it, unsigned depth)
{
    VTSM_ENSURE(it, VTSM_E_INVAL, "NULL item");
    VTSM_ENSURE(++e->items <= VTSM_ABI_MAX_ITEMS, VTSM_E_INVAL, "more than %u data items",
                VTSM_ABI_MAX_ITEMS);
    switch (cbor_typeof(it)) {
    case CBOR_TYPE_UINT:
        return vtsm_cbor_put_head(e->b, VTSM_CBOR_UINT, cbor_get_int(it));
    case CBOR_TYPE_NEGINT:
        return vtsm_cbor_put_head(e->b, VTSM_CBOR_NEGINT, cbor_get_int(it));
    case CBOR_TYPE_BYTESTRING:
        return put_string(e, it, VTSM_CBOR_BYTES);
    case CBOR_TYPE_STRING:
        return put_string(e, it, VTSM_CBOR_TEXT);
    case CBOR_TYPE_ARRAY: {
        VTSM_ENSURE(depth < VTSM_ABI_MAX_DEPTH, VTSM_E_INVAL, "nesting deeper than %u",
                    VTSM_ABI_MAX_DEPTH);
        size_t n = cbor_array_size(it);
        cbor_item_t **h = cbor_array_handle(it);
        VTSM_GUARD(vtsm_cbor_put_head(e->b, VTSM_CBOR_ARRAY, n));
        for (size_t i = 0; i < n; i++)
            VTSM_GUARD(put_item(e, h[i], depth + 1));
        return VTSM_OK;
    }
    case CBOR_TYPE_MAP: {
        VTSM_ENSURE(depth < VTSM_ABI_MAX_DEPTH, VTSM_E_INVAL, "nesting deeper than %u",
                    VTSM_ABI_MAX_DEPTH);
        size_t n = cbor_map_size(it);
        struct cbor_pair *h = cbor_map_handle(it);
        VTSM_GUARD(vtsm_cbor_put_head(e->b, VTSM_CBOR_MAP, n));
        for (size_t i = 0; i < n; i++) {
            VTSM_ENSURE(h[i].key && cbor_isa_string(h[i].key), VTSM_E_INVAL,
                        "map key is not a text string");
            VTSM_GUARD(put_item(e, h[i].key, depth + 1));
            VTSM_GUARD(put_item(e, h[i].value, depth + 1));
        }
        return VTSM_OK;
    }
    case CBOR_TYPE_FLOAT_CTRL:
        if (item_is_bool(it))
            return vtsm_cbor_put_head(e->b, VTSM_CBOR_SIMPLE,
                                      cbor_get_bool(it) ? AI_TRUE : AI_FALSE);
        return vtsm_fail(VTSM_E_INVAL, "floats and simple values other than bools not allowed");
    default:
        return vtsm_fail(VTSM_E_INVAL, "tags not allowed");
    }
}

vtsm_status vtsm_abi_encode(const cbor_item_t *map, struct vtsm_buf *frame)
{
    VTSM_ENSURE(map && frame, VTSM_E_INVAL, "NULL argument");
    VTSM_ENSURE(cbor_isa_map(map), VTSM_E_INVAL, "message is not a map");
    vtsm_buf_reset(frame);
    static const uint8_t zero[VTSM_ABI_FRAME_HDR_SIZE];
    VTSM_GUARD(vtsm_buf_append(frame, zero, sizeof(zero)));
    struct ectx e = {.b = frame};
    vtsm_status st = put_item(&e, map, 0);
    if (st != VTSM_OK) {
        vtsm_buf_reset(frame);
        return st;
    }
    size_t n = frame->len - VTSM_ABI_FRAME_HDR_SIZE;
    if (n > VTSM_ABI_FRAME_MAX) {
        vtsm_buf_reset(frame);
        return vtsm_fail(VTSM_E_ABI_OVERSIZED, "message of %zu bytes exceeds %u", n,
                         VTSM_ABI_FRAME_MAX);
    }
    vtsm_put_be32(frame->data, (uint32_t)n);
    return VTSM_OK;
}
