/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * struct vtsm_result: a TSM answer held as its decoded message, read by path.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vtsm_guard.h"
#include "vtsm_host_cbor.h"

struct vtsm_result {
    cbor_item_t *msg;
    /* the encoded message, made on first request (vtsm_result_cbor) */
    uint8_t *enc;
    size_t enc_len;
};

struct vtsm_result *vtsm_result_new(cbor_item_t *msg)
{
    if (!msg)
        return NULL;
    struct vtsm_result *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->msg = cbor_incref(msg);
    return r;
}

vtsm_status vtsm_result_take(vtsm_status st, cbor_item_t *msg, struct vtsm_result **out)
{
    if (!msg)
        return st;
    if (out) {
        *out = vtsm_result_new(msg);
        if (!*out && st == VTSM_OK)
            st = vtsm_fail(VTSM_E_NOMEM, "result");
    }
    cbor_decref(&msg);
    return st;
}

const cbor_item_t *vtsm_result_item(const struct vtsm_result *r)
{
    return r ? r->msg : NULL;
}

void vtsm_result_free(struct vtsm_result *r)
{
    if (!r)
        return;
    cbor_decref(&r->msg);
    free(r->enc);
    free(r);
}

bool vtsm_result_is_error(const struct vtsm_result *r)
{
    uint64_t op = 0;
    return r && vtsm_abi_get_op(r->msg, &op) == VTSM_OK && op == VTSM_ABI_OP_ERROR;
}

/* The item path names: "a.b.3" walks map key a, map key b, array index 3. */
static vtsm_status walk(const struct vtsm_result *r, const char *path, const cbor_item_t **out)
{
    VTSM_ENSURE(r && path && out, VTSM_E_INVAL, "result: NULL argument");
    const cbor_item_t *it = r->msg;
    const char *p = path;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        char part[128];
        VTSM_ENSURE(n > 0 && n < sizeof(part), VTSM_E_INVAL, "result path '%s': empty or long part",
                    path);
        memcpy(part, p, n);
        part[n] = '\0';
        if (cbor_isa_map(it)) {
            it = vtsm_abi_find(it, part);
            if (!it)
                return vtsm_fail(VTSM_E_NOT_FOUND, "result has no '%s'", path);
        } else if (cbor_isa_array(it)) {
            char *end = NULL;
            unsigned long long idx = strtoull(part, &end, 10);
            VTSM_ENSURE(end && *end == '\0' && part[0] >= '0' && part[0] <= '9', VTSM_E_ABI_ARG,
                        "result path '%s': '%s' is not an index of an array", path, part);
            if (idx >= cbor_array_size(it))
                return vtsm_fail(VTSM_E_NOT_FOUND, "result has no '%s'", path);
            it = cbor_array_handle(it)[idx];
        } else {
            return vtsm_fail(VTSM_E_ABI_ARG, "result path '%s': '%s' is inside a plain value", path,
                             part);
        }
        p += n;
        if (*p == '.')
            p++;
    }
    *out = it;
    return VTSM_OK;
}

vtsm_status vtsm_result_uint(const struct vtsm_result *r, const char *path, uint64_t *out)
{
    const cbor_item_t *it = NULL;
    VTSM_GUARD(walk(r, path, &it));
    VTSM_ENSURE(out, VTSM_E_INVAL, "result: NULL argument");
    VTSM_ENSURE(cbor_isa_uint(it), VTSM_E_ABI_ARG, "result '%s' is not an unsigned integer", path);
    *out = cbor_get_int(it);
    return VTSM_OK;
}

vtsm_status vtsm_result_bool(const struct vtsm_result *r, const char *path, bool *out)
{
    const cbor_item_t *it = NULL;
    VTSM_GUARD(walk(r, path, &it));
    VTSM_ENSURE(out, VTSM_E_INVAL, "result: NULL argument");
    VTSM_ENSURE(cbor_isa_float_ctrl(it) && cbor_is_bool(it), VTSM_E_ABI_ARG,
                "result '%s' is not a bool", path);
    *out = cbor_get_bool(it);
    return VTSM_OK;
}

vtsm_status vtsm_result_text(const struct vtsm_result *r, const char *path, char *buf, size_t cap)
{
    const cbor_item_t *it = NULL;
    VTSM_GUARD(walk(r, path, &it));
    VTSM_ENSURE(buf && cap, VTSM_E_INVAL, "result: NULL argument");
    VTSM_ENSURE(cbor_isa_string(it) && cbor_string_is_definite(it), VTSM_E_ABI_ARG,
                "result '%s' is not a text string", path);
    size_t n = cbor_string_length(it);
    VTSM_ENSURE(n < cap, VTSM_E_TOO_SMALL, "result '%s': %zu bytes do not fit %zu", path, n, cap);
    VTSM_ENSURE(!memchr(cbor_string_handle(it), 0, n), VTSM_E_ABI_ARG, "result '%s' holds a NUL",
                path);
    memcpy(buf, cbor_string_handle(it), n);
    buf[n] = '\0';
    return VTSM_OK;
}

vtsm_status vtsm_result_bytes(const struct vtsm_result *r, const char *path, const uint8_t **p,
                              size_t *len)
{
    const cbor_item_t *it = NULL;
    VTSM_GUARD(walk(r, path, &it));
    VTSM_ENSURE(p && len, VTSM_E_INVAL, "result: NULL argument");
    VTSM_ENSURE(cbor_isa_bytestring(it) && cbor_bytestring_is_definite(it), VTSM_E_ABI_ARG,
                "result '%s' is not a byte string", path);
    *p = cbor_bytestring_handle(it);
    *len = cbor_bytestring_length(it);
    return VTSM_OK;
}

vtsm_status vtsm_result_count(const struct vtsm_result *r, const char *path, size_t *n)
{
    const cbor_item_t *it = NULL;
    VTSM_GUARD(walk(r, path, &it));
    VTSM_ENSURE(n, VTSM_E_INVAL, "result: NULL argument");
    if (cbor_isa_array(it))
        *n = cbor_array_size(it);
    else if (cbor_isa_map(it))
        *n = cbor_map_size(it);
    else
        return vtsm_fail(VTSM_E_ABI_ARG, "result '%s' is neither an array nor a map", path);
    return VTSM_OK;
}

const uint8_t *vtsm_result_cbor(const struct vtsm_result *r, size_t *len)
{
    if (!r || !len)
        return NULL;
    /* made once, in the ABI's own encoding (definite lengths, as on the wire); a result is
     * otherwise immutable, so the cache is its only write */
    struct vtsm_result *w = (struct vtsm_result *)r;
    if (!w->enc) {
        struct vtsm_buf frame = {0};
        if (vtsm_abi_encode(r->msg, &frame) != VTSM_OK) {
            vtsm_buf_free(&frame);
            return NULL;
        }
        w->enc_len = frame.len - VTSM_ABI_FRAME_HDR_SIZE;
        w->enc = malloc(w->enc_len ? w->enc_len : 1);
        if (w->enc)
            memcpy(w->enc, frame.data + VTSM_ABI_FRAME_HDR_SIZE, w->enc_len);
        vtsm_buf_free(&frame);
        if (!w->enc)
            return NULL;
    }
    *len = w->enc_len;
    return w->enc;
}

vtsm_status vtsm_result_decode(const uint8_t *p, size_t len, struct vtsm_result **out)
{
    cbor_item_t *m = NULL;
    VTSM_ENSURE(out, VTSM_E_INVAL, "result: NULL argument");
    *out = NULL;
    VTSM_GUARD(vtsm_abi_decode(p, len, &m));
    return vtsm_result_take(VTSM_OK, m, out);
}

char *vtsm_result_json(const struct vtsm_result *r)
{
    if (!r)
        return NULL;
    char *text = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&text, &n);
    if (!f)
        return NULL;
    vtsm_status st = vtsm_abi_to_json(r->msg, f, false);
    if (fclose(f) != 0 || st != VTSM_OK) {
        free(text);
        return NULL;
    }
    return text;
}
