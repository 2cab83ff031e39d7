/* SPDX-License-Identifier: BSD-3-Clause */
#include "vtsm_cbor.h"

#include "vtsm_guard.h"

vtsm_status vtsm_cbor_put_head(struct vtsm_buf *b, unsigned major, uint64_t v)
{
    uint8_t h[9];
    size_t n;

    h[0] = (uint8_t)(major << 5);
    if (v < 24) {
        h[0] |= (uint8_t)v;
        n = 1;
    } else if (v <= 0xFF) {
        h[0] |= 24;
        n = 2;
    } else if (v <= 0xFFFF) {
        h[0] |= 25;
        n = 3;
    } else if (v <= 0xFFFFFFFFu) {
        h[0] |= 26;
        n = 5;
    } else {
        h[0] |= 27;
        n = 9;
    }
    for (size_t i = 1; i < n; i++)
        h[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    return vtsm_buf_append(b, h, n);
}

vtsm_status vtsm_cbor_put_int(struct vtsm_buf *b, int64_t v)
{
    return v >= 0 ? vtsm_cbor_put_head(b, VTSM_CBOR_UINT, (uint64_t)v)
                  : vtsm_cbor_put_head(b, VTSM_CBOR_NEGINT, (uint64_t)(-1 - v));
}

vtsm_status vtsm_cbor_put_str(struct vtsm_buf *b, unsigned major, const void *p, size_t n)
{
    VTSM_GUARD(vtsm_cbor_put_head(b, major, n));
    return n ? vtsm_buf_append(b, p, n) : VTSM_OK;
}
