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

/* Selective IDE Stream Control / Status register fields (PCIe 6.x sec. 7.9.26.5;
 * Linux include/uapi/linux/pci_regs.h PCI_IDE_SEL_CTL_*, PCI_IDE_SEL_STS_*). */
#define SEL_CTL_EN           0x00000001u
#define SEL_CTL_ID_SHIFT     24
#define SEL_STS_STATE_SECURE 0x2u

void dev_ide_slot_wipe(struct dev_ide_slot *s)
{
    OPENSSL_cleanse(s, sizeof(*s));
}

vtsm_status dev_ide_init(struct vtsm_dev *d)
{
    unsigned n = d->cfg.ide_streams;
    if (n == 0)
        return VTSM_OK;
    d->ide = calloc(n, sizeof(*d->ide));
    VTSM_ENSURE(d->ide, VTSM_E_NOMEM, "IDE stream table (%u streams)", n);
    for (unsigned i = 0; i < n; i++)
        memset(d->ide[i].live, DEV_IDE_NONE, sizeof(d->ide[i].live));
    return VTSM_OK;
}

void dev_ide_free(struct vtsm_dev *d)
{
    if (!d->ide)
        return;
    OPENSSL_cleanse(d->ide, (size_t)d->cfg.ide_streams * sizeof(*d->ide));
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

/*
 * QUERY_RESP for the device's port (PCIe 6.x sec. 6.33.3 QUERY_RESP): PortIndex and
 * MaxPortIndex as configured; IDE Capability = selective
 * streams (count - 1 in bits 23:16), IDE_KM, algorithm 0 (AES-GCM 256, 96-bit MAC), no
 * link IDE; IDE Control 0; per selective stream: Capability 0 (no address association
 * blocks), Control = Stream ID << 24 | Enable while any key set of the stream is live (the
 * model has no configuration-space writes: a live key stands for the host having enabled
 * the stream), Status = Secure once every sub-stream is keyed both ways, else Insecure,
 * RID association 0.
 */
vtsm_status dev_ide_query(const struct vtsm_dev *d, struct vtsm_idekm_query_resp *r,
                          struct vtsm_idekm_sel_block *sel, unsigned n_sel)
{
    unsigned n = d->cfg.ide_streams;

    VTSM_ENSURE(n_sel >= n, VTSM_E_INTERNAL, "QUERY_RESP: room for %u of %u streams", n_sel, n);
    memset(r, 0, sizeof(*r));
    r->port_index = d->cfg.ide_port_index;
    r->max_port_index = d->cfg.ide_max_port_index;
    r->ide_cap = VTSM_IDE_CAP_IDE_KM;
    if (n)
        r->ide_cap |= VTSM_IDE_CAP_SELECTIVE | ((uint32_t)(n - 1) << 16);
    r->sel_count = n;
    r->sel = n ? sel : NULL;
    for (unsigned i = 0; i < n; i++) {
        bool secure = stream_secure(&d->ide[i]);
        memset(&sel[i], 0, sizeof(sel[i]));
        sel[i].ctrl =
            ((uint32_t)i << SEL_CTL_ID_SHIFT) | (stream_keyed(&d->ide[i]) ? SEL_CTL_EN : 0);
        sel[i].status = secure ? SEL_STS_STATE_SECURE : 0;
    }
    return VTSM_OK;
}

int vtsm_dev_ide_live_key_set(const struct vtsm_dev *d, unsigned stream, unsigned substream,
                              bool tx)
{
    if (!d || stream >= d->cfg.ide_streams || substream >= DEV_IDE_SUBSTREAMS)
        return -1;
    uint8_t k = d->ide[stream].live[substream][tx ? DEV_IDE_TX : DEV_IDE_RX];
    return k == DEV_IDE_NONE ? -1 : (int)k;
}
