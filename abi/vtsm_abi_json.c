/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * CBOR -> JSON (RFC 8259) for the CLIs' --json output. Byte strings become lower-case
 * hex strings; everything an ABI message can hold has an exact JSON form.
 */
#include "vtsm_abi.h"

#include <inttypes.h>
#include <math.h>

#include "vtsm_guard.h"

/* cbor_is_bool() asserts on floats in libcbor 0.8: check the width first. */
static bool item_is_bool(const cbor_item_t *it)
{
    return cbor_isa_float_ctrl(it) && cbor_float_get_width(it) == CBOR_FLOAT_0 && cbor_is_bool(it);
}

static void put_escaped(FILE *f, const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        switch (c) {
        case '"':
            fputs("\\\"", f);
            break;
        case '\\':
            fputs("\\\\", f);
            break;
        case '\b':
            fputs("\\b", f);
            break;
        case '\f':
            fputs("\\f", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        case '\r':
            fputs("\\r", f);
            break;
        case '\t':
            fputs("\\t", f);
            break;
        default:
            if (c < 0x20)
                fprintf(f, "\\u%04x", c);
            else
                fputc(c, f);
        }
    }
}

/* A text or byte string, definite or chunked, as a JSON string. */
static void put_string(FILE *f, const cbor_item_t *it)
{
    static const char digits[] = "0123456789abcdef";
    bool text = cbor_isa_string(it);
    bool indef = text ? cbor_string_is_indefinite(it) : cbor_bytestring_is_indefinite(it);
    size_t nchunks = 1;
    cbor_item_t *const *chunks = NULL;
    if (indef) {
        nchunks = text ? cbor_string_chunk_count(it) : cbor_bytestring_chunk_count(it);
        chunks = text ? cbor_string_chunks_handle(it) : cbor_bytestring_chunks_handle(it);
    }
    fputc('"', f);
    for (size_t k = 0; k < nchunks; k++) {
        const cbor_item_t *c = indef ? chunks[k] : it;
        size_t n = text ? cbor_string_length(c) : cbor_bytestring_length(c);
        const unsigned char *d = text ? cbor_string_handle(c) : cbor_bytestring_handle(c);
        if (!n)
            continue;
        if (text) {
            put_escaped(f, d, n);
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            fputc(digits[d[i] >> 4], f);
            fputc(digits[d[i] & 0xf], f);
        }
    }
    fputc('"', f);
}

static void indent(FILE *f, bool pretty, unsigned level)
{
    if (!pretty)
        return;
    fputc('\n', f);
    for (unsigned i = 0; i < level; i++)
        fputs("  ", f);
}

static void put_item(FILE *f, const cbor_item_t *it, bool pretty, unsigned level)
{
    if (!it) {
        fputs("null", f);
        return;
    }
    switch (cbor_typeof(it)) {
    case CBOR_TYPE_UINT:
        fprintf(f, "%" PRIu64, cbor_get_int(it));
        return;
    case CBOR_TYPE_NEGINT: {
        uint64_t n = cbor_get_int(it); /* the value is -1 - n */
        if (n == UINT64_MAX)
            fputs("-18446744073709551616", f);
        else
            fprintf(f, "-%" PRIu64, n + 1);
        return;
    }
    case CBOR_TYPE_BYTESTRING:
    case CBOR_TYPE_STRING:
        put_string(f, it);
        return;
    case CBOR_TYPE_ARRAY: {
        size_t n = cbor_array_size(it);
        cbor_item_t **h = cbor_array_handle(it);
        fputc('[', f);
        for (size_t i = 0; i < n; i++) {
            if (i)
                fputc(',', f);
            indent(f, pretty, level + 1);
            put_item(f, h[i], pretty, level + 1);
        }
        if (n)
            indent(f, pretty, level);
        fputc(']', f);
        return;
    }
    case CBOR_TYPE_MAP: {
        size_t n = cbor_map_size(it);
        struct cbor_pair *h = cbor_map_handle(it);
        fputc('{', f);
        for (size_t i = 0; i < n; i++) {
            if (i)
                fputc(',', f);
            indent(f, pretty, level + 1);
            if (h[i].key && (cbor_isa_string(h[i].key) || cbor_isa_bytestring(h[i].key))) {
                put_string(f, h[i].key);
            } else if (h[i].key && (cbor_isa_uint(h[i].key) || cbor_isa_negint(h[i].key))) {
                fputc('"', f);
                put_item(f, h[i].key, false, 0);
                fputc('"', f);
            } else {
                fputs("\"?\"", f);
            }
            fputs(pretty ? ": " : ":", f);
            put_item(f, h[i].value, pretty, level + 1);
        }
        if (n)
            indent(f, pretty, level);
        fputc('}', f);
        return;
    }
    case CBOR_TYPE_TAG: {
        cbor_item_t *inner = cbor_tag_item(it); /* a new reference */
        put_item(f, inner, pretty, level);
        if (inner)
            cbor_decref(&inner);
        return;
    }
    case CBOR_TYPE_FLOAT_CTRL:
    default:
        if (item_is_bool(it)) {
            fputs(cbor_get_bool(it) ? "true" : "false", f);
        } else if (cbor_float_get_width(it) != CBOR_FLOAT_0) {
            double d = cbor_float_get_float(it);
            if (isfinite(d))
                fprintf(f, "%.17g", d);
            else
                fputs("null", f);
        } else {
            fputs("null", f);
        }
        return;
    }
}

vtsm_status vtsm_abi_to_json(const cbor_item_t *item, FILE *out, bool pretty)
{
    VTSM_ENSURE(out, VTSM_E_INVAL, "no output stream");
    put_item(out, item, pretty, 0);
    VTSM_ENSURE(!ferror(out), VTSM_E_IO, "writing JSON failed");
    return VTSM_OK;
}

cbor_item_t *vtsm_abi_cli_error(const char *verb, uint64_t status, const char *name,
                                const char *source, const char *detail, const char *rule,
                                const cbor_item_t *report)
{
    cbor_item_t *o = vtsm_abi_map_new();
    cbor_item_t *e = vtsm_abi_map_new();
    if (!o || !e || vtsm_abi_put_tstr(e, VTSM_ABI_K_VERB, verb) ||
        vtsm_abi_put_uint(e, VTSM_ABI_K_STATUS, status) ||
        vtsm_abi_put_tstr(e, VTSM_ABI_K_NAME, name) ||
        vtsm_abi_put_tstr(e, VTSM_ABI_K_SOURCE, source) ||
        vtsm_abi_put_tstr(e, VTSM_ABI_K_DETAIL, detail) ||
        (rule && *rule && vtsm_abi_put_tstr(e, VTSM_ABI_K_RULE, rule))) {
        if (e)
            cbor_decref(&e);
        if (o)
            cbor_decref(&o);
        return NULL;
    }
    if (vtsm_abi_put_item(o, VTSM_ABI_K_ERROR, e) ||
        (report && vtsm_abi_put_item(o, VTSM_ABI_K_REPORT, cbor_incref((cbor_item_t *)report)))) {
        cbor_decref(&o);
        return NULL;
    }
    return o;
}
