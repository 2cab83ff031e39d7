/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Requests decoded into C structs: the field list (VTSM_ABI_REQ_FIELDS) as a table, and
 * the one decoder every request goes through before its handler runs.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "vtsm_abi.h"
#include "vtsm_guard.h"

const char *const vtsm_abi_role_names[] = {"host", "guest", NULL};
const char *const vtsm_abi_asym_names[] = {"ecdsa-p384", "ecdsa-p256", NULL};
const char *const vtsm_abi_hash_names[] = {"sha384", "sha256", NULL};

_Static_assert(VTSM_ABI_ROLE_HOST == 1 && VTSM_ABI_ROLE_GUEST == 2,
               "ROLE decodes to enum vtsm_abi_role");

/* How each type fills in the row's bounds. */
#define FIELD_UINT(a, b)     .lo = (a), .hi = (b)
#define FIELD_BOOL(a, b)     .lo = 0
#define FIELD_TEXT(a, b)     .lo = (a), .hi = (b)
#define FIELD_TEXTREF(a, b)  .lo = (a), .hi = (b)
#define FIELD_BYTES(a, b)    .lo = (a), .hi = (b)
#define FIELD_DEV(a, b)      .lo = 1, .hi = VTSM_ABI_DEV_MAX
#define FIELD_ENUM(a, b)     .names = (a)
#define FIELD_VERSIONS(a, b) .lo = 0
#define FIELD_RIDS(a, b)     .lo = (a), .hi = (b)

const struct vtsm_abi_field vtsm_abi_fields[VTSM_ABI_F_COUNT_] = {
#define X_FIELD(SYM, member, k, t, n, a, b)                                                        \
    [VTSM_ABI_F_##SYM] = {.key = k,                                                                \
                          .type = VTSM_ABI_FT_##t,                                                 \
                          .need = VTSM_ABI_FN_##n,                                                 \
                          .offset = offsetof(struct vtsm_abi_req, member),                         \
                          FIELD_##t(a, b)},
    VTSM_ABI_REQ_FIELDS(X_FIELD)
#undef X_FIELD
};

/* A TEXT member holds its longest value and the NUL. */
#define X_TEXT_FITS(SYM, member, k, t, n, a, b)                                                    \
    _Static_assert(VTSM_ABI_FT_##t != VTSM_ABI_FT_TEXT ||                                          \
                       sizeof(((struct vtsm_abi_req *)0)->member) > (size_t)(b),                   \
                   "TEXT member " #member " too small");
VTSM_ABI_REQ_FIELDS(X_TEXT_FITS)
#undef X_TEXT_FITS

const struct vtsm_abi_field *vtsm_abi_field_find(const char *key)
{
    for (size_t i = 0; key && i < VTSM_ABI_F_COUNT_; i++)
        if (strcmp(vtsm_abi_fields[i].key, key) == 0)
            return &vtsm_abi_fields[i];
    return NULL;
}

/* "asym must be "ecdsa-p384" or "ecdsa-p256"" */
static vtsm_status bad_name(const char *key, const char *const *names)
{
    char list[160] = "";
    size_t used = 0;
    for (size_t i = 0; names[i] && used < sizeof(list); i++) {
        int k = snprintf(list + used, sizeof(list) - used, "%s\"%s\"",
                         i == 0 ? "" : (names[i + 1] ? ", " : " or "), names[i]);
        if (k < 0)
            break;
        used += (size_t)k;
    }
    return vtsm_fail(VTSM_E_ABI_ARG, "%s must be %s", key, list);
}

/* Decode one present value into its member. */
static vtsm_status decode_field(const cbor_item_t *msg, const struct vtsm_abi_field *f, void *m)
{
    const char *k = f->key;
    switch (f->type) {
    case VTSM_ABI_FT_UINT: {
        uint64_t v;
        VTSM_GUARD(vtsm_abi_get_uint(msg, k, &v));
        VTSM_ENSURE(v >= f->lo && v <= f->hi, VTSM_E_ABI_ARG,
                    "key '%s' is %llu, out of range %llu..%llu", k, (unsigned long long)v,
                    (unsigned long long)f->lo, (unsigned long long)f->hi);
        memcpy(m, &v, sizeof(v));
        return VTSM_OK;
    }
    case VTSM_ABI_FT_BOOL:
        return vtsm_abi_get_bool(msg, k, m);
    case VTSM_ABI_FT_TEXT:
    case VTSM_ABI_FT_TEXTREF: {
        struct vtsm_abi_text s;
        VTSM_GUARD(vtsm_abi_get_tstr_ref(msg, k, &s.p, &s.len));
        VTSM_ENSURE(s.len >= f->lo && s.len <= f->hi, VTSM_E_ABI_ARG,
                    "key '%s' must be %llu..%llu bytes of text, not %zu", k,
                    (unsigned long long)f->lo, (unsigned long long)f->hi, s.len);
        if (f->type == VTSM_ABI_FT_TEXTREF) {
            memcpy(m, &s, sizeof(s));
            return VTSM_OK;
        }
        VTSM_ENSURE(memchr(s.p, '\0', s.len) == NULL, VTSM_E_ABI_ARG, "key '%s' contains NUL", k);
        memcpy(m, s.p, s.len);
        ((char *)m)[s.len] = '\0';
        return VTSM_OK;
    }
    case VTSM_ABI_FT_BYTES: {
        struct vtsm_abi_bytes b;
        VTSM_GUARD(vtsm_abi_get_bytes(msg, k, &b.p, &b.len));
        VTSM_ENSURE(b.len >= f->lo && b.len <= f->hi, VTSM_E_ABI_ARG,
                    "key '%s' of %zu bytes is outside %llu..%llu", k, b.len,
                    (unsigned long long)f->lo, (unsigned long long)f->hi);
        memcpy(m, &b, sizeof(b));
        return VTSM_OK;
    }
    case VTSM_ABI_FT_DEV:
        return vtsm_abi_get_dev(msg, m);
    case VTSM_ABI_FT_ENUM: {
        const char *p;
        size_t len;
        VTSM_GUARD(vtsm_abi_get_tstr_ref(msg, k, &p, &len));
        for (unsigned i = 0; f->names[i]; i++)
            if (strlen(f->names[i]) == len && memcmp(f->names[i], p, len) == 0) {
                unsigned v = i + 1;
                memcpy(m, &v, sizeof(v));
                return VTSM_OK;
            }
        return bad_name(k, f->names);
    }
    case VTSM_ABI_FT_RIDS: {
        const cbor_item_t *arr;
        struct vtsm_abi_rids *out = m;
        VTSM_GUARD(vtsm_abi_get_array(msg, k, &arr));
        size_t n = cbor_array_size(arr);
        cbor_item_t **items = cbor_array_handle(arr);
        VTSM_ENSURE(n >= f->lo && n <= f->hi && n <= VTSM_ABI_TDIS_MAX, VTSM_E_ABI_ARG,
                    "key '%s' must list %llu..%llu requester IDs, not %zu", k,
                    (unsigned long long)f->lo, (unsigned long long)f->hi, n);
        out->n = 0;
        for (size_t i = 0; i < n; i++) {
            VTSM_ENSURE(cbor_isa_uint(items[i]) && cbor_get_int(items[i]) <= 0xFFFFu,
                        VTSM_E_ABI_ARG, "key '%s': element %zu is not a requester ID 0..65535", k,
                        i);
            uint16_t rid = (uint16_t)cbor_get_int(items[i]);
            for (unsigned j = 0; j < out->n; j++)
                VTSM_ENSURE(out->rid[j] != rid, VTSM_E_ABI_ARG,
                            "key '%s': requester ID 0x%04x is listed twice", k, rid);
            out->rid[out->n++] = rid;
        }
        return VTSM_OK;
    }
    case VTSM_ABI_FT_VERSIONS: {
        const cbor_item_t *arr;
        uint64_t mask = 0;
        VTSM_GUARD(vtsm_abi_get_array(msg, k, &arr));
        size_t n = cbor_array_size(arr);
        cbor_item_t **items = cbor_array_handle(arr);
        for (size_t i = 0; i < n; i++)
            if (cbor_isa_uint(items[i]) && cbor_get_int(items[i]) < 64)
                mask |= 1ull << cbor_get_int(items[i]);
        memcpy(m, &mask, sizeof(mask));
        return VTSM_OK;
    }
    }
    return vtsm_fail(VTSM_E_INTERNAL, "field '%s' has no type", k);
}

/* The rules that tie fields of one request together. */
static vtsm_status check_combinations(const struct vtsm_abi_request *row,
                                      const struct vtsm_abi_req *r)
{
    VTSM_ENSURE(!vtsm_abi_req_has(r, VTSM_ABI_F_MIN_VERSION) ||
                    !vtsm_abi_req_has(r, VTSM_ABI_F_MAX_VERSION) ||
                    r->min_version <= r->max_version,
                VTSM_E_ABI_ARG, "min_version is above max_version");
    VTSM_ENSURE(!vtsm_abi_req_has(r, VTSM_ABI_F_TDI_OFFSET) || vtsm_abi_req_has(r, VTSM_ABI_F_DEV),
                VTSM_E_ABI_ARG, "status: tdi_offset needs dev");
    if (row->op == VTSM_ABI_OP_DOE_RESPONSE)
        VTSM_ENSURE(vtsm_abi_req_has(r, VTSM_ABI_F_OBJECT) != vtsm_abi_req_has(r, VTSM_ABI_F_ERROR),
                    VTSM_E_ABI_ARG, "doe_response carries exactly one of 'object' or 'error'");
    return VTSM_OK;
}

vtsm_status vtsm_abi_req_decode(const cbor_item_t *msg, const struct vtsm_abi_request *row,
                                struct vtsm_abi_req *out)
{
    VTSM_ENSURE(row && out, VTSM_E_INVAL, "request decode: NULL argument");
    memset(out, 0, sizeof(*out));
    VTSM_GUARD(vtsm_abi_check_keys(msg, row->keys));
    for (size_t i = 0; row->keys[i]; i++) {
        const struct vtsm_abi_field *f = vtsm_abi_field_find(row->keys[i]);
        VTSM_ENSURE(f, VTSM_E_INTERNAL, "%s: key '%s' has no field", row->name, row->keys[i]);
        bool required = f->need == VTSM_ABI_FN_REQUIRED ||
                        (f->need == VTSM_ABI_FN_ROW && row->dev == VTSM_ABI_DEV_REQUIRED);
        if (!vtsm_abi_find(msg, f->key)) {
            VTSM_ENSURE(!required, VTSM_E_ABI_ARG, "missing key '%s'", f->key);
            continue;
        }
        VTSM_GUARD(decode_field(msg, f, (char *)out + f->offset));
        out->present |= 1ull << (size_t)(f - vtsm_abi_fields);
    }
    return check_combinations(row, out);
}

/* ---- requests built from the public struct vtsm_request ---- */

#define SET_UINT(m)     ((req->set >> f) & 1u)
#define SET_BOOL(m)     ((req->set >> f) & 1u)
#define SET_TEXT(m)     ((void)f, req->m != NULL)
#define SET_ENUM(m)     ((void)f, req->m != NULL)
#define SET_BYTES(m)    ((void)f, req->m != NULL)
#define SET_VERSIONS(m) ((req->set >> f) & 1u)
#define SET_RIDS(m)     ((void)f, req->m != NULL)

#define PUT_UINT(m, k)     vtsm_abi_put_uint(map, k, req->m)
#define PUT_BOOL(m, k)     vtsm_abi_put_bool(map, k, req->m)
#define PUT_TEXT(m, k)     vtsm_abi_put_tstr(map, k, req->m)
#define PUT_ENUM(m, k)     vtsm_abi_put_tstr(map, k, req->m)
#define PUT_BYTES(m, k)    vtsm_abi_put_bytes(map, k, req->m, req->m##_len)
#define PUT_VERSIONS(m, k) put_versions(map, k, req->m)
#define PUT_RIDS(m, k)     put_rids(map, k, req->m, req->m##_len)

static vtsm_status put_versions(cbor_item_t *map, const char *key, uint64_t mask)
{
    size_t n = 0;
    for (unsigned v = 0; v < 64; v++)
        n += (mask >> v) & 1u;
    cbor_item_t *arr = cbor_new_definite_array(n);
    VTSM_ENSURE(arr, VTSM_E_NOMEM, "versions array");
    for (unsigned v = 0; v < 64; v++) {
        if (!((mask >> v) & 1u))
            continue;
        cbor_item_t *e = cbor_build_uint8((uint8_t)v);
        if (!e || !cbor_array_push(arr, e)) {
            if (e)
                cbor_decref(&e);
            cbor_decref(&arr);
            return vtsm_fail(VTSM_E_NOMEM, "versions array");
        }
        cbor_decref(&e);
    }
    return vtsm_abi_put_item(map, key, arr);
}

static vtsm_status put_rids(cbor_item_t *map, const char *key, const uint16_t *rid, size_t n)
{
    cbor_item_t *arr = vtsm_abi_array_new();
    VTSM_ENSURE(arr, VTSM_E_NOMEM, "%s array", key);
    for (size_t i = 0; i < n; i++)
        if (vtsm_abi_push_uint(arr, rid[i]) != VTSM_OK) {
            cbor_decref(&arr);
            return vtsm_fail(VTSM_E_NOMEM, "%s array", key);
        }
    return vtsm_abi_put_item(map, key, arr);
}

static bool row_takes(const struct vtsm_abi_request *row, const char *key)
{
    for (size_t i = 0; row->keys[i]; i++)
        if (strcmp(row->keys[i], key) == 0)
            return true;
    return false;
}

vtsm_status vtsm_abi_req_encode(const struct vtsm_abi_request *row, const struct vtsm_request *req,
                                cbor_item_t **out)
{
    VTSM_ENSURE(row && req && out, VTSM_E_INVAL, "request encode: NULL argument");
    *out = NULL;
    cbor_item_t *map = vtsm_abi_map_new();
    VTSM_ENSURE(map, VTSM_E_NOMEM, "request map");
    vtsm_status st = VTSM_OK;
#define X_PUT(SYM, m, k, t)                                                                        \
    if (st == VTSM_OK) {                                                                           \
        size_t f = VTSM_FIELD_##SYM;                                                               \
        if (SET_##t(m)) {                                                                          \
            if (!row_takes(row, k))                                                                \
                st = vtsm_refuse(VTSM_E_ABI_ARG, VTSM_RULE_ABI_9, "%s takes no '%s'", row->name,   \
                                 k);                                                               \
            else                                                                                   \
                st = PUT_##t(m, k);                                                                \
        }                                                                                          \
    }
    VTSM_FIELDS(X_PUT)
#undef X_PUT
    /* the checks tsmd makes: required keys, types, ranges, combinations */
    struct vtsm_abi_req decoded;
    if (st == VTSM_OK)
        st = vtsm_abi_req_decode(map, row, &decoded);
    if (st != VTSM_OK) {
        cbor_decref(&map);
        return st;
    }
    *out = map;
    return VTSM_OK;
}
