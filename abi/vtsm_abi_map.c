/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Opcode names, map builders, typed getters, schema checks and message builders.
 */
#include "vtsm_abi.h"

#include <string.h>

#include "vtsm_guard.h"

/* cbor_is_bool() asserts on floats in libcbor 0.8: check the width first. */
static bool item_is_bool(const cbor_item_t *it)
{
    return cbor_isa_float_ctrl(it) && cbor_float_get_width(it) == CBOR_FLOAT_0 && cbor_is_bool(it);
}

/* ---- names ---- */

const char *vtsm_abi_op_name(uint64_t op)
{
    const struct vtsm_abi_request *r = vtsm_abi_request_find(op);
    if (r)
        return r->name;
    switch (op) {
    case VTSM_ABI_OP_RESULT:
        return "RESULT";
    case VTSM_ABI_OP_ERROR:
        return "ERROR";
    case VTSM_ABI_OP_DOE_PENDING:
        return "DOE_PENDING";
    case VTSM_ABI_OP_EVENT:
        return "EVENT";
    default:
        return NULL;
    }
}

const char *vtsm_abi_gop_name(uint64_t gop)
{
    switch (gop) {
    case VTSM_ABI_GOP_LIST:
        return "LIST";
    case VTSM_ABI_GOP_INFO:
        return "INFO";
    case VTSM_ABI_GOP_ACCEPT:
        return "ACCEPT";
    case VTSM_ABI_GOP_REJECT:
        return "REJECT";
    case VTSM_ABI_GOP_LOCK:
        return "LOCK";
    case VTSM_ABI_GOP_UNLOCK:
        return "UNLOCK";
    case VTSM_ABI_GOP_DEBUG_READ:
        return "DEBUG_READ";
    case VTSM_ABI_GOP_DEBUG_WRITE:
        return "DEBUG_WRITE";
    case VTSM_ABI_GOP_MMIO_VALIDATE:
        return "MMIO_VALIDATE";
    case VTSM_ABI_GOP_DMA_ENABLE:
        return "DMA_ENABLE";
    default:
        return NULL;
    }
}

int vtsm_abi_gop_scope(uint64_t gop)
{
    switch (gop) {
    case VTSM_ABI_GOP_LIST:
    case VTSM_ABI_GOP_INFO:
        return VTSM_ABI_SCOPE_INFO;
    case VTSM_ABI_GOP_LOCK:
    case VTSM_ABI_GOP_ACCEPT:
    case VTSM_ABI_GOP_UNLOCK:
    case VTSM_ABI_GOP_REJECT:
    case VTSM_ABI_GOP_MMIO_VALIDATE: /* they change what the TDI may reach */
    case VTSM_ABI_GOP_DMA_ENABLE:
        return VTSM_ABI_SCOPE_STATE_CHANGE;
    case VTSM_ABI_GOP_DEBUG_READ:
        return VTSM_ABI_SCOPE_DEBUG_READ;
    case VTSM_ABI_GOP_DEBUG_WRITE:
        return VTSM_ABI_SCOPE_DEBUG_WRITE;
    default:
        return -1;
    }
}

const char *vtsm_abi_role_name(enum vtsm_abi_role role)
{
    switch (role) {
    case VTSM_ABI_ROLE_HOST:
        return "host";
    case VTSM_ABI_ROLE_GUEST:
        return "guest";
    default:
        return NULL;
    }
}

enum vtsm_abi_role vtsm_abi_role_parse(const char *name)
{
    if (name && strcmp(name, "host") == 0)
        return VTSM_ABI_ROLE_HOST;
    if (name && strcmp(name, "guest") == 0)
        return VTSM_ABI_ROLE_GUEST;
    return VTSM_ABI_ROLE_NONE;
}

/* ---- request schemas (docs/abi.md) ---- */

#define UNPAREN(...) __VA_ARGS__
#define X_KEYS(NAME, lower, code, roles, dev, keys)                                                \
    const char *const vtsm_abi_keys_##lower[] = {UNPAREN keys, NULL};
VTSM_ABI_REQUESTS(X_KEYS)
#undef X_KEYS

const struct vtsm_abi_request vtsm_abi_requests[VTSM_ABI_REQ_COUNT_] = {
#define X_ROW(NAME, lower, code, roles, dev, keys)                                                 \
    [VTSM_ABI_REQ_##                                                                               \
        NAME] = {VTSM_ABI_OP_##NAME,   #NAME, #lower, VTSM_ABI_ROLES_##roles, VTSM_ABI_DEV_##dev,  \
                 vtsm_abi_keys_##lower},
    VTSM_ABI_REQUESTS(X_ROW)
#undef X_ROW
};

_Static_assert(VTSM_ABI_ROLES_HOST == 1u << VTSM_ABI_ROLE_HOST &&
                   VTSM_ABI_ROLES_GUEST == 1u << VTSM_ABI_ROLE_GUEST,
               "role bits follow enum vtsm_abi_role");

const struct vtsm_abi_request *vtsm_abi_request_find(uint64_t op)
{
    switch (op) {
#define X_FIND(NAME, lower, code, roles, dev, keys)                                                \
    case VTSM_ABI_OP_##NAME:                                                                       \
        return &vtsm_abi_requests[VTSM_ABI_REQ_##NAME];
        VTSM_ABI_REQUESTS(X_FIND)
#undef X_FIND
    default:
        return NULL;
    }
}

const char *vtsm_op_name(unsigned op)
{
    const struct vtsm_abi_request *r = vtsm_abi_request_find(op);
    return r ? r->name : NULL;
}

unsigned vtsm_op_parse(const char *name)
{
    for (size_t i = 0; name && i < VTSM_ABI_REQ_COUNT_; i++)
        if (strcmp(vtsm_abi_requests[i].name, name) == 0 ||
            strcmp(vtsm_abi_requests[i].lower, name) == 0)
            return vtsm_abi_requests[i].op;
    return 0;
}

const char *const vtsm_abi_keys_guest_body[] = {VTSM_ABI_K_GOP,
                                                VTSM_ABI_K_TVM,
                                                VTSM_ABI_K_SEQ,
                                                VTSM_ABI_K_DEV,
                                                VTSM_ABI_K_TDI,
                                                VTSM_ABI_K_NONCE,
                                                VTSM_ABI_K_REASON,
                                                VTSM_ABI_K_REPORT_DIGEST,
                                                VTSM_ABI_K_MEASUREMENTS_DIGEST,
                                                VTSM_ABI_K_LOCK_NONCE_DIGEST,
                                                VTSM_ABI_K_SCOPE,
                                                VTSM_ABI_K_RANGE,
                                                VTSM_ABI_K_GPA,
                                                VTSM_ABI_K_PAGES,
                                                VTSM_ABI_K_PRIVATE,
                                                NULL};

/* ---- builders ---- */

cbor_item_t *vtsm_abi_map_new(void)
{
    return cbor_new_indefinite_map();
}

cbor_item_t *vtsm_abi_array_new(void)
{
    return cbor_new_indefinite_array();
}

static bool key_is(const cbor_item_t *k, const char *key, size_t klen)
{
    return k && cbor_isa_string(k) && cbor_string_is_definite(k) && cbor_string_length(k) == klen &&
           (klen == 0 || memcmp(cbor_string_handle(k), key, klen) == 0);
}

static struct cbor_pair *find_pair(const cbor_item_t *map, const char *key)
{
    if (!map || !cbor_isa_map(map) || !key)
        return NULL;
    size_t klen = strlen(key);
    size_t n = cbor_map_size(map);
    struct cbor_pair *h = cbor_map_handle(map);
    for (size_t i = 0; i < n; i++)
        if (key_is(h[i].key, key, klen))
            return &h[i];
    return NULL;
}

vtsm_status vtsm_abi_put_item(cbor_item_t *map, const char *key, cbor_item_t *item)
{
    vtsm_status st = VTSM_OK;
    cbor_item_t *k = NULL;
    VTSM_ENSURE_GOTO(item, VTSM_E_NOMEM, "building value for '%s'", key ? key : "?");
    VTSM_ENSURE_GOTO(map && cbor_isa_map(map) && key, VTSM_E_INVAL, "put: not a map or no key");
    struct cbor_pair *old = find_pair(map, key);
    if (old) { /* replace: a message never carries a key twice */
        cbor_decref(&old->value);
        old->value = cbor_incref(item);
        goto out;
    }
    k = cbor_build_string(key);
    VTSM_ENSURE_GOTO(k, VTSM_E_NOMEM, "building key '%s'", key);
    VTSM_ENSURE_GOTO(cbor_map_add(map, (struct cbor_pair){.key = k, .value = item}), VTSM_E_NOMEM,
                     "adding key '%s'", key);
out:
    if (k)
        cbor_decref(&k);
    if (item)
        cbor_decref(&item);
    return st;
}

vtsm_status vtsm_abi_put_uint(cbor_item_t *map, const char *key, uint64_t v)
{
    return vtsm_abi_put_item(map, key, cbor_build_uint64(v));
}

vtsm_status vtsm_abi_put_bool(cbor_item_t *map, const char *key, bool v)
{
    return vtsm_abi_put_item(map, key, cbor_build_bool(v));
}

vtsm_status vtsm_abi_put_tstr(cbor_item_t *map, const char *key, const char *s)
{
    return vtsm_abi_put_tstrn(map, key, s ? s : "", s ? strlen(s) : 0);
}

vtsm_status vtsm_abi_put_tstrn(cbor_item_t *map, const char *key, const char *s, size_t n)
{
    return vtsm_abi_put_item(map, key, cbor_build_stringn(s ? s : "", s ? n : 0));
}

vtsm_status vtsm_abi_put_bytes(cbor_item_t *map, const char *key, const uint8_t *p, size_t n)
{
    static const uint8_t none[1];
    return vtsm_abi_put_item(map, key, cbor_build_bytestring(p ? p : none, p ? n : 0));
}

vtsm_status vtsm_abi_push_item(cbor_item_t *array, cbor_item_t *item)
{
    vtsm_status st = VTSM_OK;
    VTSM_ENSURE_GOTO(item, VTSM_E_NOMEM, "building array element");
    VTSM_ENSURE_GOTO(array && cbor_isa_array(array), VTSM_E_INVAL, "push: not an array");
    VTSM_ENSURE_GOTO(cbor_array_push(array, item), VTSM_E_NOMEM, "appending array element");
out:
    if (item)
        cbor_decref(&item);
    return st;
}

vtsm_status vtsm_abi_push_uint(cbor_item_t *array, uint64_t v)
{
    return vtsm_abi_push_item(array, cbor_build_uint64(v));
}

vtsm_status vtsm_abi_push_tstr(cbor_item_t *array, const char *s)
{
    return vtsm_abi_push_item(array, cbor_build_string(s ? s : ""));
}

vtsm_status vtsm_abi_push_bytes(cbor_item_t *array, const uint8_t *p, size_t n)
{
    static const uint8_t none[1];
    return vtsm_abi_push_item(array, cbor_build_bytestring(p ? p : none, p ? n : 0));
}

/* ---- getters ---- */

const cbor_item_t *vtsm_abi_find(const cbor_item_t *map, const char *key)
{
    struct cbor_pair *p = find_pair(map, key);
    return p ? p->value : NULL;
}

/*
 * The one lookup behind every getter: the value under key, checked against a type.
 * *v is NULL (and VTSM_OK returned) only when optional and absent.
 */
static vtsm_status lookup(const cbor_item_t *map, const char *key, bool optional,
                          bool (*isa)(const cbor_item_t *), const char *type, const cbor_item_t **v)
{
    *v = NULL;
    VTSM_ENSURE(map && cbor_isa_map(map), VTSM_E_ABI_ARG, "looking up '%s': not a map",
                key ? key : "?");
    const cbor_item_t *it = vtsm_abi_find(map, key);
    if (!it) {
        if (optional)
            return VTSM_OK;
        return vtsm_fail(VTSM_E_ABI_ARG, "missing key '%s'", key);
    }
    VTSM_ENSURE(isa(it), VTSM_E_ABI_ARG, "key '%s' must be %s", key, type);
    *v = it;
    return VTSM_OK;
}

static bool isa_uint(const cbor_item_t *it)
{
    return cbor_isa_uint(it);
}
static bool isa_bool(const cbor_item_t *it)
{
    return item_is_bool(it);
}
static bool isa_tstr(const cbor_item_t *it)
{
    return cbor_isa_string(it) && cbor_string_is_definite(it);
}
static bool isa_bstr(const cbor_item_t *it)
{
    return cbor_isa_bytestring(it) && cbor_bytestring_is_definite(it);
}
static bool isa_map(const cbor_item_t *it)
{
    return cbor_isa_map(it);
}
static bool isa_array(const cbor_item_t *it)
{
    return cbor_isa_array(it);
}

static vtsm_status get_uint(const cbor_item_t *map, const char *key, bool opt, uint64_t *v,
                            bool *present)
{
    const cbor_item_t *it = NULL;
    VTSM_GUARD(lookup(map, key, opt, isa_uint, "uint", &it));
    if (present)
        *present = it != NULL;
    if (it)
        *v = cbor_get_int(it);
    return VTSM_OK;
}

static vtsm_status get_bool(const cbor_item_t *map, const char *key, bool opt, bool *v,
                            bool *present)
{
    const cbor_item_t *it = NULL;
    VTSM_GUARD(lookup(map, key, opt, isa_bool, "bool", &it));
    if (present)
        *present = it != NULL;
    if (it)
        *v = cbor_get_bool(it);
    return VTSM_OK;
}

static vtsm_status get_tstr_ref(const cbor_item_t *map, const char *key, bool opt, const char **p,
                                size_t *len, bool *present)
{
    const cbor_item_t *it = NULL;
    VTSM_GUARD(lookup(map, key, opt, isa_tstr, "tstr", &it));
    if (present)
        *present = it != NULL;
    if (it) {
        *len = cbor_string_length(it);
        *p = *len ? (const char *)cbor_string_handle(it) : "";
    }
    return VTSM_OK;
}

static vtsm_status get_tstr(const cbor_item_t *map, const char *key, bool opt, char *out,
                            size_t cap, bool *present)
{
    const char *s = NULL;
    size_t n = 0;
    bool here = false;
    VTSM_GUARD(get_tstr_ref(map, key, opt, &s, &n, &here));
    if (present)
        *present = here;
    if (!here)
        return VTSM_OK;
    VTSM_ENSURE(cap > 0 && n < cap, VTSM_E_ABI_ARG, "key '%s' longer than %zu bytes", key,
                cap ? cap - 1 : 0);
    VTSM_ENSURE(memchr(s, '\0', n) == NULL, VTSM_E_ABI_ARG, "key '%s' contains NUL", key);
    memcpy(out, s, n);
    out[n] = '\0';
    return VTSM_OK;
}

static vtsm_status get_bytes(const cbor_item_t *map, const char *key, bool opt, const uint8_t **p,
                             size_t *len, bool *present)
{
    const cbor_item_t *it = NULL;
    VTSM_GUARD(lookup(map, key, opt, isa_bstr, "bstr", &it));
    if (present)
        *present = it != NULL;
    if (it) {
        *len = cbor_bytestring_length(it);
        *p = cbor_bytestring_handle(it);
    }
    return VTSM_OK;
}

static vtsm_status get_container(const cbor_item_t *map, const char *key, bool opt, bool want_map,
                                 const cbor_item_t **v, bool *present)
{
    const cbor_item_t *it = NULL;
    VTSM_GUARD(
        lookup(map, key, opt, want_map ? isa_map : isa_array, want_map ? "map" : "array", &it));
    if (present)
        *present = it != NULL;
    if (it)
        *v = it;
    return VTSM_OK;
}

vtsm_status vtsm_abi_get_uint(const cbor_item_t *map, const char *key, uint64_t *v)
{
    return get_uint(map, key, false, v, NULL);
}
vtsm_status vtsm_abi_get_bool(const cbor_item_t *map, const char *key, bool *v)
{
    return get_bool(map, key, false, v, NULL);
}
vtsm_status vtsm_abi_get_tstr(const cbor_item_t *map, const char *key, char *out, size_t cap)
{
    return get_tstr(map, key, false, out, cap, NULL);
}
vtsm_status vtsm_abi_get_tstr_ref(const cbor_item_t *map, const char *key, const char **p,
                                  size_t *len)
{
    return get_tstr_ref(map, key, false, p, len, NULL);
}
vtsm_status vtsm_abi_get_bytes(const cbor_item_t *map, const char *key, const uint8_t **p,
                               size_t *len)
{
    return get_bytes(map, key, false, p, len, NULL);
}
vtsm_status vtsm_abi_get_map(const cbor_item_t *map, const char *key, const cbor_item_t **v)
{
    return get_container(map, key, false, true, v, NULL);
}
vtsm_status vtsm_abi_get_array(const cbor_item_t *map, const char *key, const cbor_item_t **v)
{
    return get_container(map, key, false, false, v, NULL);
}

vtsm_status vtsm_abi_opt_uint(const cbor_item_t *map, const char *key, uint64_t *v, bool *present)
{
    return get_uint(map, key, true, v, present);
}
vtsm_status vtsm_abi_opt_bool(const cbor_item_t *map, const char *key, bool *v, bool *present)
{
    return get_bool(map, key, true, v, present);
}
vtsm_status vtsm_abi_opt_tstr(const cbor_item_t *map, const char *key, char *out, size_t cap,
                              bool *present)
{
    return get_tstr(map, key, true, out, cap, present);
}
vtsm_status vtsm_abi_opt_bytes(const cbor_item_t *map, const char *key, const uint8_t **p,
                               size_t *len, bool *present)
{
    return get_bytes(map, key, true, p, len, present);
}
vtsm_status vtsm_abi_opt_map(const cbor_item_t *map, const char *key, const cbor_item_t **v,
                             bool *present)
{
    return get_container(map, key, true, true, v, present);
}
vtsm_status vtsm_abi_opt_array(const cbor_item_t *map, const char *key, const cbor_item_t **v,
                               bool *present)
{
    return get_container(map, key, true, false, v, present);
}

vtsm_status vtsm_abi_get_op(const cbor_item_t *map, uint64_t *op)
{
    return vtsm_abi_get_uint(map, VTSM_ABI_K_OP, op);
}

vtsm_status vtsm_abi_get_id(const cbor_item_t *map, uint64_t *id)
{
    return vtsm_abi_get_uint(map, VTSM_ABI_K_ID, id);
}

/* The schema check behind both forms: envelope allows "op" and "id" besides allowed;
 * what names the map in the detail (NULL: the op name of the message). */
static vtsm_status check_keys(const cbor_item_t *map, const char *const allowed[], bool envelope,
                              const char *what)
{
    VTSM_ENSURE(map && cbor_isa_map(map), VTSM_E_ABI_ARG, "%s is not a map",
                what ? what : "message");
    size_t n = cbor_map_size(map);
    struct cbor_pair *h = cbor_map_handle(map);
    for (size_t i = 0; i < n; i++) {
        const cbor_item_t *k = h[i].key;
        if (!k || !cbor_isa_string(k) || !cbor_string_is_definite(k))
            return vtsm_fail(VTSM_E_ABI_ARG, "map key is not a text string");
        size_t klen = cbor_string_length(k);
        const char *ks = klen ? (const char *)cbor_string_handle(k) : "";
        bool ok = envelope && klen == 2 &&
                  (memcmp(ks, VTSM_ABI_K_OP, 2) == 0 || memcmp(ks, VTSM_ABI_K_ID, 2) == 0);
        for (size_t j = 0; !ok && allowed && allowed[j]; j++)
            ok = strlen(allowed[j]) == klen && memcmp(allowed[j], ks, klen) == 0;
        if (!ok) {
            if (!what) {
                const cbor_item_t *opv = vtsm_abi_find(map, VTSM_ABI_K_OP);
                if (opv && cbor_isa_uint(opv))
                    what = vtsm_abi_op_name(cbor_get_int(opv));
            }
            /* show at most 64 bytes, cut on a UTF-8 boundary: the detail travels as tstr */
            size_t shown = klen > 64 ? 64 : klen;
            while (shown < klen && shown > 0 && ((uint8_t)ks[shown] & 0xc0) == 0x80)
                shown--;
            return vtsm_refuse(VTSM_E_ABI_ARG, VTSM_RULE_ABI_9, "unknown key '%.*s' for %s",
                               (int)shown, ks, what ? what : "message");
        }
    }
    return VTSM_OK;
}

vtsm_status vtsm_abi_check_keys(const cbor_item_t *map, const char *const allowed[])
{
    return check_keys(map, allowed, true, NULL);
}

vtsm_status vtsm_abi_check_keys_in(const cbor_item_t *map, const char *const allowed[],
                                   const char *what)
{
    return check_keys(map, allowed, false, what ? what : "map");
}

vtsm_status vtsm_abi_check_dev(const char *dev)
{
    /* the shape any name has; tsmd then requires a PCI address (vtsm_abi_dev_canon) */
    VTSM_ENSURE_RULE(dev, VTSM_E_ABI_ARG, VTSM_RULE_PDEV_30, "device name missing");
    size_t n = strlen(dev);
    VTSM_ENSURE_RULE(n >= 1 && n <= VTSM_ABI_DEV_MAX, VTSM_E_ABI_ARG, VTSM_RULE_PDEV_30,
                     "device name must be 1..%u characters", VTSM_ABI_DEV_MAX);
    for (size_t i = 0; i < n; i++) {
        char c = dev[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == ':' || c == '.' || c == '_' || c == '-';
        VTSM_ENSURE_RULE(ok, VTSM_E_ABI_ARG, VTSM_RULE_PDEV_30,
                         "device name may only hold [A-Za-z0-9:._-]");
    }
    return VTSM_OK;
}

/* At most max hex digits from *p (at least one), value into *v; false otherwise. */
static bool hex_part(const char **p, unsigned max, unsigned *v)
{
    unsigned n = 0, x = 0;
    for (; n < max; n++) {
        char c = (*p)[n];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (unsigned)(c - 'A' + 10);
        else
            break;
        x = x * 16 + d;
    }
    if (n == 0)
        return false;
    *p += n;
    *v = x;
    return true;
}

/* [SEGMENT:]BUS:DEVICE.FUNCTION -> its four numbers. */
static bool pci_parse(const char *dev, unsigned *seg, unsigned *bus, unsigned *slot, unsigned *fn)
{
    unsigned a, b;
    const char *p = dev;
    if (!hex_part(&p, 4, &a) || *p++ != ':' || !hex_part(&p, 2, &b))
        return false;
    if (*p == ':') { /* a was the segment, b the bus */
        p++;
        *seg = a;
        *bus = b;
        if (!hex_part(&p, 2, slot))
            return false;
    } else { /* a was the bus, b the device */
        if (a > 0xFF)
            return false;
        *seg = 0;
        *bus = a;
        *slot = b;
    }
    if (*p++ != '.' || !hex_part(&p, 1, fn) || *p != '\0')
        return false;
    return *slot <= 0x1F && *fn <= 7;
}

vtsm_status vtsm_abi_dev_canon(const char *dev, char out[VTSM_ABI_DEV_BUF])
{
    unsigned seg, bus, slot, fn;
    VTSM_ENSURE_RULE(dev && strlen(dev) <= VTSM_ABI_DEV_MAX &&
                         pci_parse(dev, &seg, &bus, &slot, &fn),
                     VTSM_E_ABI_ARG, VTSM_RULE_PDEV_30,
                     "device name '%.*s' is not a PCI address [SSSS:]BB:DD.F (rule PDEV.30)", 64,
                     dev ? dev : "");
    snprintf(out, VTSM_ABI_DEV_BUF, "%04x:%02x:%02x.%x", seg, bus, slot, fn);
    return VTSM_OK;
}

vtsm_status vtsm_abi_dev_rid(const char *dev, uint16_t *segment, uint16_t *rid)
{
    unsigned seg, bus, slot, fn;
    VTSM_ENSURE_RULE(dev && strlen(dev) <= VTSM_ABI_DEV_MAX &&
                         pci_parse(dev, &seg, &bus, &slot, &fn),
                     VTSM_E_ABI_ARG, VTSM_RULE_PDEV_30,
                     "device name '%.*s' is not a PCI address [SSSS:]BB:DD.F (rule PDEV.30)", 64,
                     dev ? dev : "");
    *segment = (uint16_t)seg;
    *rid = (uint16_t)(bus << 8 | slot << 3 | fn);
    return VTSM_OK;
}

vtsm_status vtsm_abi_dev_fn(const char *dsm, uint16_t rid, char out[VTSM_ABI_DEV_BUF])
{
    uint16_t seg, dsm_rid;
    VTSM_GUARD(vtsm_abi_dev_rid(dsm, &seg, &dsm_rid));
    snprintf(out, VTSM_ABI_DEV_BUF, "%04x:%02x:%02x.%x", seg, rid >> 8, (rid >> 3) & 0x1F, rid & 7);
    return VTSM_OK;
}

bool vtsm_abi_dev_same(const char *a, const char *b)
{
    unsigned sa, ba, da, fa, sb, bb, db, fb;
    if (!a || !b)
        return false;
    if (strcmp(a, b) == 0)
        return true;
    /* no error record written: a lookup is not a refusal */
    return strlen(a) <= VTSM_ABI_DEV_MAX && strlen(b) <= VTSM_ABI_DEV_MAX &&
           pci_parse(a, &sa, &ba, &da, &fa) && pci_parse(b, &sb, &bb, &db, &fb) && sa == sb &&
           ba == bb && da == db && fa == fb;
}

vtsm_status vtsm_abi_get_dev(const cbor_item_t *map, char out[VTSM_ABI_DEV_BUF])
{
    const char *s = NULL;
    size_t n = 0;
    VTSM_GUARD(vtsm_abi_get_tstr_ref(map, VTSM_ABI_K_DEV, &s, &n));
    VTSM_ENSURE_RULE(n >= 1 && n <= VTSM_ABI_DEV_MAX, VTSM_E_ABI_ARG, VTSM_RULE_PDEV_30,
                     "key 'dev' must be 1..%u characters", VTSM_ABI_DEV_MAX);
    memcpy(out, s, n);
    out[n] = '\0';
    if (strlen(out) != n)
        return vtsm_fail(VTSM_E_ABI_ARG, "key 'dev' contains NUL");
    vtsm_status st = vtsm_abi_check_dev(out);
    if (st != VTSM_OK)
        out[0] = '\0';
    return st;
}

/* ---- messages ---- */

cbor_item_t *vtsm_abi_request_msg(enum vtsm_abi_op op, uint64_t id)
{
    cbor_item_t *m = vtsm_abi_map_new();
    if (!m)
        return NULL;
    if (vtsm_abi_put_uint(m, VTSM_ABI_K_OP, (uint64_t)op) ||
        vtsm_abi_put_uint(m, VTSM_ABI_K_ID, id)) {
        cbor_decref(&m);
        return NULL;
    }
    return m;
}

cbor_item_t *vtsm_abi_result_msg(uint64_t id)
{
    cbor_item_t *m = vtsm_abi_request_msg(VTSM_ABI_OP_RESULT, id);
    if (m && vtsm_abi_put_uint(m, VTSM_ABI_K_STATUS, 0))
        cbor_decref(&m);
    return m;
}

cbor_item_t *vtsm_abi_error_msg(uint64_t id, vtsm_status st, const char *detail)
{
    bool no_detail = detail == NULL || detail[0] == '\0';
    bool recorded = vtsm_err_status() == st && (no_detail || detail == vtsm_err_detail());
    if (no_detail)
        detail = recorded && vtsm_err_detail()[0] ? vtsm_err_detail() : vtsm_status_text(st);
    const char *rule = vtsm_rule_id(recorded ? vtsm_err_rule() : vtsm_rule_of_status(st));

    cbor_item_t *m = vtsm_abi_request_msg(VTSM_ABI_OP_ERROR, id);
    if (!m)
        return NULL;
    if (vtsm_abi_put_uint(m, VTSM_ABI_K_STATUS, (uint64_t)st) ||
        vtsm_abi_put_tstr(m, VTSM_ABI_K_NAME, vtsm_status_name(st)) ||
        vtsm_abi_put_tstr(m, VTSM_ABI_K_SOURCE, vtsm_source_name(vtsm_status_source(st))) ||
        vtsm_abi_put_tstr(m, VTSM_ABI_K_DETAIL, detail) ||
        (rule && vtsm_abi_put_tstr(m, VTSM_ABI_K_RULE, rule)))
        cbor_decref(&m);
    return m;
}

cbor_item_t *vtsm_abi_doe_pending_msg(uint64_t id, const char *dev, uint64_t seq,
                                      const uint8_t *obj, size_t len)
{
    cbor_item_t *m = vtsm_abi_request_msg(VTSM_ABI_OP_DOE_PENDING, id);
    if (!m)
        return NULL;
    if (vtsm_abi_put_tstr(m, VTSM_ABI_K_DEV, dev) || vtsm_abi_put_uint(m, VTSM_ABI_K_SEQ, seq) ||
        vtsm_abi_put_bytes(m, VTSM_ABI_K_OBJECT, obj, len))
        cbor_decref(&m);
    return m;
}

cbor_item_t *vtsm_abi_hello_msg(uint64_t id, enum vtsm_abi_role role, const char *client)
{
    cbor_item_t *m = vtsm_abi_request_msg(VTSM_ABI_OP_HELLO, id);
    cbor_item_t *v = vtsm_abi_array_new();
    if (!m || !v || vtsm_abi_push_uint(v, VTSM_ABI_VERSION)) {
        if (m)
            cbor_decref(&m);
        if (v)
            cbor_decref(&v);
        return NULL;
    }
    const char *rn = vtsm_abi_role_name(role);
    if (vtsm_abi_put_item(m, VTSM_ABI_K_VERSIONS, v) ||
        vtsm_abi_put_tstr(m, VTSM_ABI_K_ROLE, rn ? rn : "") ||
        (client && vtsm_abi_put_tstr(m, VTSM_ABI_K_CLIENT, client)))
        cbor_decref(&m);
    return m;
}

cbor_item_t *vtsm_abi_doe_response_msg(uint64_t id, const char *dev, uint64_t seq,
                                       const uint8_t *obj, size_t len, const char *error)
{
    cbor_item_t *m = vtsm_abi_request_msg(VTSM_ABI_OP_DOE_RESPONSE, id);
    if (!m)
        return NULL;
    if (vtsm_abi_put_tstr(m, VTSM_ABI_K_DEV, dev) || vtsm_abi_put_uint(m, VTSM_ABI_K_SEQ, seq) ||
        (error ? vtsm_abi_put_tstr(m, VTSM_ABI_K_ERROR, error)
               : vtsm_abi_put_bytes(m, VTSM_ABI_K_OBJECT, obj, len)))
        cbor_decref(&m);
    return m;
}

static void copy_trunc(char *dst, size_t cap, const char *s, size_t n)
{
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

vtsm_status vtsm_abi_parse_error(const cbor_item_t *msg, struct vtsm_abi_error *err)
{
    memset(err, 0, sizeof(*err));
    uint64_t op = 0;
    VTSM_GUARD(vtsm_abi_get_op(msg, &op));
    VTSM_ENSURE(op == VTSM_ABI_OP_ERROR, VTSM_E_ABI_ARG, "not an ERROR message");
    VTSM_GUARD(vtsm_abi_get_id(msg, &err->id));
    VTSM_GUARD(vtsm_abi_get_uint(msg, VTSM_ABI_K_STATUS, &err->status_raw));
    err->status = err->status_raw > 0 && err->status_raw < VTSM_STATUS_COUNT_
                      ? (vtsm_status)err->status_raw
                      : VTSM_E_INTERNAL;
    const char *s = NULL;
    size_t n = 0;
    bool here = false;
    VTSM_GUARD(get_tstr_ref(msg, VTSM_ABI_K_NAME, true, &s, &n, &here));
    if (here)
        copy_trunc(err->name, sizeof(err->name), s, n);
    else
        copy_trunc(err->name, sizeof(err->name), vtsm_status_name(err->status),
                   strlen(vtsm_status_name(err->status)));
    VTSM_GUARD(get_tstr_ref(msg, VTSM_ABI_K_SOURCE, true, &s, &n, &here));
    const char *src = vtsm_source_name(vtsm_status_source(err->status));
    if (here)
        copy_trunc(err->source, sizeof(err->source), s, n);
    else
        copy_trunc(err->source, sizeof(err->source), src, strlen(src));
    VTSM_GUARD(get_tstr_ref(msg, VTSM_ABI_K_DETAIL, true, &s, &n, &here));
    if (here)
        copy_trunc(err->detail, sizeof(err->detail), s, n);
    VTSM_GUARD(get_tstr_ref(msg, VTSM_ABI_K_RULE, true, &s, &n, &here));
    if (here) {
        copy_trunc(err->rule_id, sizeof(err->rule_id), s, n);
        err->rule = vtsm_rule_parse(err->rule_id);
    }
    return VTSM_OK;
}
