/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The device's IDE state (PCIe 6.x sec. 6.33): one port (port index 0) with the IDE
 * Extended Capability - selective IDE streams, IDE_KM, no link IDE - and, per selective
 * stream, the keys KEY_PROG delivered and which key set K_SET_GO made live for each
 * sub-stream and direction. IDE_KM (rsp_idekm.c) writes it; the link (dev_link.c) and
 * QUERY_RESP read it. It belongs to the device: SPDM sessions come and go around it.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "dev_internal.h"
#include "vtsm_guard.h"
#include "vtsm_log.h"

/* Selective IDE Stream Control / Status register fields (PCIe 6.x sec. 7.9.26.5;
 * Linux include/uapi/linux/pci_regs.h PCI_IDE_SEL_CTL_*, PCI_IDE_SEL_STS_*). */
#define SEL_CTL_EN           0x00000001u
#define SEL_CTL_ID_SHIFT     24
#define SEL_STS_STATE_SECURE 0x2u
#define LINK_CTL_TC_SHIFT    19 /* Link IDE Stream Control: TC in bits 21:19 */

void dev_ide_slot_wipe(struct dev_ide_slot *s)
{
    OPENSSL_cleanse(s, sizeof(*s));
}

/* Selective blocks, then one Link IDE block per TC. */
static unsigned nblocks(const struct vtsm_dev *d)
{
    return d->cfg.ide_streams + d->cfg.ide_link_tcs;
}

vtsm_status dev_ide_init(struct vtsm_dev *d)
{
    unsigned n = nblocks(d);
    if (n == 0)
        return VTSM_OK;
    d->ide = calloc(n, sizeof(*d->ide));
    VTSM_ENSURE(d->ide, VTSM_E_NOMEM, "IDE stream table (%u streams)", n);
    for (unsigned i = 0; i < n; i++) {
        d->ide[i].link = i >= d->cfg.ide_streams;
        d->ide[i].bound = !d->ide[i].link;
        d->ide[i].id = d->ide[i].link ? 0 : (uint8_t)i;
        memset(d->ide[i].live, DEV_IDE_NONE, sizeof(d->ide[i].live));
    }
    return VTSM_OK;
}

void dev_ide_free(struct vtsm_dev *d)
{
    if (!d->ide)
        return;
    OPENSSL_cleanse(d->ide, (size_t)nblocks(d) * sizeof(*d->ide));
    free(d->ide);
    d->ide = NULL;
}

/* A stream is "secure" in its status register once every sub-stream has a live key set
 * in both directions. */
static bool stream_secure(const struct dev_ide_stream *s)
{
    for (unsigned ss = 0; ss < DEV_IDE_SUBSTREAMS; ss++)
        for (unsigned dir = 0; dir < DEV_IDE_DIRS; dir++)
            if (s->live[ss][dir] == DEV_IDE_NONE)
                return false;
    return true;
}

/* Any key set live on any sub-stream or direction. */
static bool stream_keyed(const struct dev_ide_stream *s)
{
    for (unsigned ss = 0; ss < DEV_IDE_SUBSTREAMS; ss++)
        for (unsigned dir = 0; dir < DEV_IDE_DIRS; dir++)
            if (s->live[ss][dir] != DEV_IDE_NONE)
                return true;
    return false;
}

static bool stream_idle(const struct dev_ide_stream *s)
{
    if (stream_keyed(s))
        return false;
    for (unsigned ks = 0; ks < DEV_IDE_KEY_SETS; ks++)
        for (unsigned ss = 0; ss < DEV_IDE_SUBSTREAMS; ss++)
            for (unsigned dir = 0; dir < DEV_IDE_DIRS; dir++)
                if (s->slot[ks][ss][dir].programmed)
                    return false;
    return true;
}

const struct dev_ide_stream *dev_ide_stream_get(const struct vtsm_dev *d, unsigned id)
{
    for (unsigned i = 0; d->ide && i < nblocks(d); i++)
        if (d->ide[i].bound && d->ide[i].id == id)
            return &d->ide[i];
    return NULL;
}

struct dev_ide_stream *dev_ide_stream_find(struct vtsm_dev *d, unsigned id, bool bind)
{
    struct dev_ide_stream *s = (struct dev_ide_stream *)dev_ide_stream_get(d, id);
    if (s || !bind || id > 255)
        return s;
    for (unsigned i = 0; i < d->cfg.ide_streams; i++) /* selective blocks only */
        if (stream_idle(&d->ide[i])) {
            VTSM_INFO("selective IDE stream block %u: Stream ID %u (was %u)", i, id, d->ide[i].id);
            d->ide[i].id = (uint8_t)id;
            d->ide[i].bound = true;
            return &d->ide[i];
        }
    return NULL;
}

/*
 * QUERY_RESP for port 0 (PCIe 6.x sec. 6.33.3 QUERY_RESP; registers sec. 7.9.26):
 *  - IDE Capability: IDE_KM; Selective IDE with (streams - 1) in bits 23:16 when there
 *    are streams; Link IDE with (TCs - 1) in bits 15:13 when configured; TEE-Limited
 *    Stream Supported (bit 24) when configured; algorithm 0 (AES-GCM 256, 96-bit MAC).
 *  - IDE Control 0.
 *  - per Link IDE stream (one per TC): Control = TC << 19, and once the root port wrote
 *    its Stream ID (link frame kind 6) Stream ID << 24 | Enable while a key set is live;
 *    Status = Secure once every sub-stream is keyed both ways.
 *  - per selective stream: Capability = address association blocks (bits 3:0);
 *    Control = Stream ID << 24 | Enable while any key set of the stream is live (the
 *    model has no configuration-space writes: a live key stands for the host having
 *    enabled the stream); Status = Secure once every sub-stream is keyed both ways, else
 *    Insecure; RID association 1/2 and the address association blocks as the root port's
 *    configuration writes left them (zero, Valid clear, until then).
 */
vtsm_status dev_ide_query(const struct vtsm_dev *d, struct vtsm_idekm_query_resp *r,
                          struct vtsm_idekm_sel_block *sel, unsigned n_sel)
{
    unsigned n = d->cfg.ide_streams, tcs = d->cfg.ide_link_tcs;

    VTSM_ENSURE(n_sel >= n, VTSM_E_INTERNAL, "QUERY_RESP: room for %u of %u streams", n_sel, n);
    memset(r, 0, sizeof(*r));
    r->ide_cap = VTSM_IDE_CAP_IDE_KM;
    if (n)
        r->ide_cap |= VTSM_IDE_CAP_SELECTIVE | ((uint32_t)(n - 1) << 16);
    if (tcs)
        r->ide_cap |= VTSM_IDE_CAP_LINK | ((uint32_t)(tcs - 1) << 13);
    if (d->cfg.ide_tee_limited)
        r->ide_cap |= VTSM_IDE_CAP_TEE_LIMITED;
    r->link_count = tcs;
    for (unsigned t = 0; t < tcs; t++) {
        const struct dev_ide_stream *l = &d->ide[n + t];
        r->link[t].ctrl = (uint32_t)t << LINK_CTL_TC_SHIFT;
        if (l->bound)
            r->link[t].ctrl |=
                ((uint32_t)l->id << SEL_CTL_ID_SHIFT) | (stream_keyed(l) ? SEL_CTL_EN : 0);
        r->link[t].status = stream_secure(l) ? SEL_STS_STATE_SECURE : 0;
    }
    r->sel_count = n;
    r->sel = n ? sel : NULL;
    for (unsigned i = 0; i < n; i++) {
        memset(&sel[i], 0, sizeof(sel[i]));
        sel[i].cap = d->cfg.ide_addr_assoc;
        sel[i].ctrl = ((uint32_t)(d->ide[i].bound ? d->ide[i].id : 0) << SEL_CTL_ID_SHIFT) |
                      (stream_keyed(&d->ide[i]) ? SEL_CTL_EN : 0);
        sel[i].status = stream_secure(&d->ide[i]) ? SEL_STS_STATE_SECURE : 0;
        sel[i].rid1 = d->ide[i].rid1;
        sel[i].rid2 = d->ide[i].rid2;
        for (unsigned a = 0; a < d->cfg.ide_addr_assoc; a++) {
            sel[i].addr[a].reg1 = d->ide[i].addr[a][0];
            sel[i].addr[a].reg2 = d->ide[i].addr[a][1];
            sel[i].addr[a].reg3 = d->ide[i].addr[a][2];
        }
    }
    return VTSM_OK;
}

vtsm_status dev_ide_link_bind(struct vtsm_dev *d, unsigned tc, unsigned id, const char **why)
{
    *why = NULL;
    if (tc >= d->cfg.ide_link_tcs) {
        *why = "no Link IDE stream for that TC";
        return VTSM_E_NOT_FOUND;
    }
    struct dev_ide_stream *l = &d->ide[d->cfg.ide_streams + tc];
    struct dev_ide_stream *other = (struct dev_ide_stream *)dev_ide_stream_get(d, id);
    if (other && other != l && !(stream_idle(other) && !other->link)) {
        *why = "another stream carries that Stream ID";
        return VTSM_E_EXISTS;
    }
    if (other && other != l) { /* an idle selective block gives the ID up */
        VTSM_INFO("selective IDE stream block %u: Stream ID %u given up",
                  (unsigned)(other - d->ide), id);
        other->bound = false;
    }
    if (l->bound && l->id != id && !stream_idle(l)) {
        *why = "the Link IDE stream is keyed under another Stream ID";
        return VTSM_E_STATE;
    }
    VTSM_INFO("link IDE stream block TC%u: Stream ID %u", tc, id);
    l->id = (uint8_t)id;
    l->bound = true;
    return VTSM_OK;
}

int vtsm_dev_ide_live_key_set(const struct vtsm_dev *d, unsigned stream, unsigned substream,
                              bool tx)
{
    const struct dev_ide_stream *s = d ? dev_ide_stream_get(d, stream) : NULL;
    if (!s || substream >= DEV_IDE_SUBSTREAMS)
        return -1;
    uint8_t k = s->live[substream][tx ? DEV_IDE_TX : DEV_IDE_RX];
    return k == DEV_IDE_NONE ? -1 : (int)k;
}
