/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The device's TDIs: the TDISP state machine (PCIe 6.x sec. 11.2 "TDI states") as one
 * table with one writer, and the device interface report each TDI hands out while locked
 * (sec. 11.3.11 DEVICE_INTERFACE_REPORT). The TDIs belong to the device, not to an SPDM
 * session or a transport connection.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "dev_internal.h"
#include "vtsm_guard.h"
#include "vtsm_log.h"

/* MMIO of the TDIs: TDI i's ranges lie one after another from its base; the first TDI's
 * base is MMIO_BASE, each next one starts at the next MMIO_ALIGN boundary after the one
 * before. A TDI without configured ranges has the default layout: range 0 = 16 pages,
 * range 1 = the MSI-X table page right after it. */
#define MMIO_BASE        0x80000000ull
#define MMIO_ALIGN       0x00100000ull
#define MMIO_PAGES       16u
#define MSIX_TABLE_SIZE  0x0007                  /* MSI-X Message Control: Table Size 8 (N - 1) */
#define REPORT_RANGE_OFF VTSM_TDISP_REPORT_FIXED /* first MMIO_RANGE in the report */

const char *dev_tdi_state_name(uint8_t state)
{
    switch (state) {
    case VTSM_TDI_CONFIG_UNLOCKED:
        return "CONFIG_UNLOCKED";
    case VTSM_TDI_CONFIG_LOCKED:
        return "CONFIG_LOCKED";
    case VTSM_TDI_RUN:
        return "RUN";
    case VTSM_TDI_ERROR:
        return "ERROR";
    default:
        return "unknown";
    }
}

/*
 * Every TDI state change the device makes, and the rule that allows it. A STOP in
 * CONFIG_UNLOCKED changes nothing and is not a transition.
 */
static const struct {
    uint8_t from, to;
    const char *rule;
} transitions[] = {
    {VTSM_TDI_CONFIG_UNLOCKED, VTSM_TDI_CONFIG_LOCKED, "DEVTDI.1 LOCK_INTERFACE_REQ"},
    {VTSM_TDI_CONFIG_LOCKED, VTSM_TDI_RUN, "DEVTDI.3 START_INTERFACE_REQ with the lock nonce"},
    {VTSM_TDI_CONFIG_LOCKED, VTSM_TDI_ERROR, "DEVTDI.4 START_INTERFACE_REQ with a wrong nonce"},
    {VTSM_TDI_CONFIG_LOCKED, VTSM_TDI_CONFIG_UNLOCKED, "DEVTDI.5 STOP_INTERFACE_REQ"},
    {VTSM_TDI_RUN, VTSM_TDI_CONFIG_UNLOCKED, "DEVTDI.5 STOP_INTERFACE_REQ"},
    {VTSM_TDI_ERROR, VTSM_TDI_CONFIG_UNLOCKED, "DEVTDI.5 STOP_INTERFACE_REQ"},
    /* the vtsm VDM FUNCTION_LEVEL_RESET resets the function whatever its state */
    {VTSM_TDI_CONFIG_LOCKED, VTSM_TDI_CONFIG_UNLOCKED, "DEVTDI.7 FUNCTION_LEVEL_RESET"},
    {VTSM_TDI_RUN, VTSM_TDI_CONFIG_UNLOCKED, "DEVTDI.7 FUNCTION_LEVEL_RESET"},
    {VTSM_TDI_ERROR, VTSM_TDI_CONFIG_UNLOCKED, "DEVTDI.7 FUNCTION_LEVEL_RESET"},
    /* runtime controls (vtsm_dev_control): a firmware update or a device error */
    {VTSM_TDI_RUN, VTSM_TDI_ERROR, "DEVTDI.9 / DEVTDI.10 firmware update or device error"},
};

vtsm_status dev_tdi_set_state(struct dev_tdi *t, uint8_t to, const char *why)
{
    for (size_t i = 0; i < VTSM_ARRAY_SIZE(transitions); i++) {
        if (transitions[i].from == t->state && transitions[i].to == to) {
            VTSM_DBG("TDI %s -> %s (%s: %s)", dev_tdi_state_name(t->state), dev_tdi_state_name(to),
                     transitions[i].rule, why);
            t->state = to;
            return VTSM_OK;
        }
    }
    return vtsm_fail(VTSM_E_STATE, "TDI %s -> %s is not a TDISP transition (%s)",
                     dev_tdi_state_name(t->state), dev_tdi_state_name(to), why);
}

vtsm_status dev_tdi_init(struct vtsm_dev *d)
{
    unsigned n = d->cfg.num_tdis;
    if (!d->cfg.tdisp || n == 0)
        return VTSM_OK;
    d->tdis = calloc(n, sizeof(*d->tdis));
    VTSM_ENSURE(d->tdis, VTSM_E_NOMEM, "TDI table (%u TDIs)", n);
    uint64_t base = MMIO_BASE;
    for (unsigned i = 0; i < n; i++) {
        const struct vtsm_dev_tdi *c = &d->cfg.tdi[i];
        struct dev_tdi *t = &d->tdis[i];
        t->state = VTSM_TDI_CONFIG_UNLOCKED;
        t->base = base;
        t->mmio_size =
            (uint64_t)(MMIO_PAGES + 1 + (d->cfg.msix_pba ? 1 : 0)) * VTSM_TDISP_PAGE_SIZE;
        if (c->n_ranges) {
            t->mmio_size = 0;
            for (unsigned r = 0; r < c->n_ranges; r++)
                t->mmio_size += c->ranges[r].size; /* each <= 1 TiB, at most 8 */
        }
        base = (base + t->mmio_size + MMIO_ALIGN - 1) & ~(MMIO_ALIGN - 1);
    }
    return VTSM_OK;
}

void dev_tdi_free(struct vtsm_dev *d)
{
    if (!d->tdis)
        return;
    for (unsigned i = 0; i < d->cfg.num_tdis; i++) {
        vtsm_buf_free(&d->tdis[i].report);
        OPENSSL_cleanse(&d->tdis[i], sizeof(d->tdis[i]));
    }
    free(d->tdis);
    d->tdis = NULL;
}

static void put_le64(uint8_t *p, uint64_t v)
{
    vtsm_put_le32(p, (uint32_t)v);
    vtsm_put_le32(p + 4, (uint32_t)(v >> 32));
}

/*
 * The interface report of TDI i for its lock parameters: INTERFACE_INFO DMA without PASID
 * (plus "no firmware update after lock" when locked with NO_FW_UPDATE), MSI-X Message
 * Control reported when locked with LOCK_MSIX and the TDI has an MSI-X table, its MMIO
 * ranges (RANGE_ID = the range's position) shifted by the MMIO_REPORTING_OFFSET, and a
 * short device-specific info string naming the function.
 *
 * FIRST_PAGE and NUMBER_OF_PAGES count 4 KiB pages (the page number is the address >> 12).
 * tdisp-overlap-mmio / tdisp-mmio-overflow rewrite a FIRST_PAGE field in the encoded bytes
 * after the build, so the report on the wire is exactly the valid one but for that field.
 */
vtsm_status dev_tdi_build_report(const struct vtsm_dev *d, unsigned i, struct dev_tdi *t)
{
    const struct vtsm_dev_tdi *c = &d->cfg.tdi[i];
    struct vtsm_tdisp_report rep;
    char info[64];
    /* first page number of the TDI's MMIO, with the (4 KiB aligned) reporting offset */
    uint64_t base = (t->base + t->mmio_offset) >> VTSM_TDISP_PAGE_SHIFT;
    bool msix = c->n_ranges == 0;

    memset(&rep, 0, sizeof(rep));
    rep.interface_info = VTSM_TDISP_INFO_DMA_WITHOUT_PASID;
    if (t->lock_flags & VTSM_TDISP_LOCK_NO_FW_UPDATE)
        rep.interface_info |= VTSM_TDISP_INFO_NO_UPDATE_AFTER_LOCK;
    if (c->n_ranges == 0) {
        rep.mmio_range_count = 2;
        rep.mmio_range[0] = (struct vtsm_tdisp_mmio_range){base, MMIO_PAGES, 0, 0};
        rep.mmio_range[1] =
            (struct vtsm_tdisp_mmio_range){base + MMIO_PAGES, 1, VTSM_TDISP_RANGE_MSIX_TABLE, 1};
        if (d->cfg.msix_pba) /* --msix-pba: the PBA, outside the TEE */
            rep.mmio_range[rep.mmio_range_count++] = (struct vtsm_tdisp_mmio_range){
                base + MMIO_PAGES + 1, 1,
                VTSM_TDISP_RANGE_MSIX_PBA | VTSM_TDISP_RANGE_IS_NON_TEE_MEM, 2};
    } else {
        uint64_t page = base;
        rep.mmio_range_count = c->n_ranges;
        for (unsigned r = 0; r < c->n_ranges; r++) {
            uint32_t pages = (uint32_t)(c->ranges[r].size >> VTSM_TDISP_PAGE_SHIFT);
            rep.mmio_range[r] =
                (struct vtsm_tdisp_mmio_range){page, pages, c->ranges[r].attrs, (uint16_t)r};
            page += pages;
            msix |= (c->ranges[r].attrs & VTSM_TDISP_RANGE_MSIX_TABLE) != 0;
        }
    }
    if ((t->lock_flags & VTSM_TDISP_LOCK_LOCK_MSIX) && msix)
        rep.msi_x_message_control = MSIX_TABLE_SIZE;
    int n =
        t->report_changes
            ? snprintf(info, sizeof(info), "vtsm-devemu TDI %u RID 0x%04x change %u", i, c->rid,
                       t->report_changes)
            : snprintf(info, sizeof(info), "vtsm-devemu TDI %u RID 0x%04x", i, c->rid); /* 28+ */
    if (n < 0 || (size_t)n >= sizeof(info))
        n = (int)strlen(info);
    rep.device_specific_info = (const uint8_t *)info;
    rep.device_specific_info_len = (uint32_t)n;

    size_t size = vtsm_tdisp_report_size(&rep);
    VTSM_ENSURE(size, VTSM_E_INTERNAL, "TDI %u: interface report does not encode", i);
    vtsm_buf_reset(&t->report);
    VTSM_GUARD(vtsm_buf_reserve(&t->report, size));
    struct vtsm_wr w = vtsm_wr_init(t->report.data, size);
    VTSM_GUARD(vtsm_tdisp_report_build(&w, &rep));
    t->report.len = w.len;

    uint8_t *r0 = t->report.data + REPORT_RANGE_OFF;
    uint8_t *r1 = r0 + VTSM_TDISP_MMIO_RANGE_SIZE;
    uint32_t pages0 = rep.mmio_range[0].number_of_pages;
    /* range 1 starts in range 0's last page */
    if (dev_fault(d, VTSM_DEV_FAULT_TDISP_OVERLAP_MMIO) && rep.mmio_range_count > 1)
        put_le64(r1, base + pages0 - 1);
    if (dev_fault(d, VTSM_DEV_FAULT_TDISP_MMIO_OVERFLOW)) /* range 0 runs past 2^64 */
        put_le64(r0, VTSM_TDISP_MAX_PAGE - pages0 / 2);
    return VTSM_OK;
}

/* The highest MMIO_REPORTING_OFFSET that keeps TDI t's ranges below 2^64. */
uint64_t dev_tdi_max_mmio_offset(const struct dev_tdi *t)
{
    return UINT64_MAX - (t->base + t->mmio_size) + 1;
}

int dev_tdi_find(const struct vtsm_dev *d, uint32_t fid)
{
    /* above the RID: nothing, or the device's segment with Segment Valid; no reserved bits */
    uint32_t high = d->cfg.segment ? (d->cfg.segment << 16 | VTSM_TDISP_FID_SEG_VALID) : 0;
    if (!d->tdis || (fid & 0xFFFF0000u) != high)
        return -1;
    for (unsigned i = 0; i < d->cfg.num_tdis; i++)
        if (d->cfg.tdi[i].rid == VTSM_TDISP_FID_RID(fid))
            return (int)i;
    return -1;
}

vtsm_status vtsm_dev_tdi_state(const struct vtsm_dev *d, unsigned tdi, uint8_t *state)
{
    VTSM_ENSURE(d && state, VTSM_E_INVAL, "vtsm_dev_tdi_state: bad arguments");
    VTSM_ENSURE(d->tdis && tdi < d->cfg.num_tdis, VTSM_E_NOT_FOUND, "no TDI %u (%u TDIs, TDISP %s)",
                tdi, d->cfg.num_tdis, d->cfg.tdisp ? "on" : "off");
    *state = d->tdis[tdi].state;
    return VTSM_OK;
}

/* ---------------------------------------------------------------- runtime controls */

/* Drop what a lock left: nonce, report. */
static void tdi_unlock_state(struct dev_tdi *t)
{
    OPENSSL_cleanse(t->nonce, sizeof(t->nonce));
    t->nonce_valid = false;
    vtsm_buf_reset(&t->report);
}

vtsm_status dev_tdi_flr(struct vtsm_dev *d, unsigned i)
{
    VTSM_ENSURE(d->tdis && i < d->cfg.num_tdis, VTSM_E_NOT_FOUND, "no TDI %u", i);
    struct dev_tdi *t = &d->tdis[i];
    if (t->state != VTSM_TDI_CONFIG_UNLOCKED)
        VTSM_GUARD(dev_tdi_set_state(t, VTSM_TDI_CONFIG_UNLOCKED, "FUNCTION_LEVEL_RESET"));
    tdi_unlock_state(t);
    d->flrs++;
    VTSM_INFO("TDI %u: function-level reset (rule DEVTDI.7), now CONFIG_UNLOCKED", i);
    return VTSM_OK;
}

/* A locked TDI (CONFIG_LOCKED or RUN) to ERROR: the lock is no longer what was locked. */
static vtsm_status tdi_to_error(struct dev_tdi *t, const char *why)
{
    if (t->state != VTSM_TDI_CONFIG_LOCKED && t->state != VTSM_TDI_RUN)
        return VTSM_OK;
    VTSM_GUARD(dev_tdi_set_state(t, VTSM_TDI_ERROR, why));
    OPENSSL_cleanse(t->nonce, sizeof(t->nonce));
    t->nonce_valid = false;
    return VTSM_OK;
}

vtsm_status vtsm_dev_tdi_fail(struct vtsm_dev *d, unsigned tdi)
{
    VTSM_ENSURE(d, VTSM_E_INVAL, "vtsm_dev_tdi_fail: NULL device");
    VTSM_ENSURE(d->tdis && tdi < d->cfg.num_tdis, VTSM_E_NOT_FOUND, "no TDI %u", tdi);
    struct dev_tdi *t = &d->tdis[tdi];
    VTSM_ENSURE_RULE(t->state == VTSM_TDI_CONFIG_LOCKED || t->state == VTSM_TDI_RUN, VTSM_E_STATE,
                     VTSM_RULE_DEVTDI_10,
                     "TDI %u is %s: only a locked TDI goes to ERROR (rule DEVTDI.10)", tdi,
                     dev_tdi_state_name(t->state));
    VTSM_GUARD(tdi_to_error(t, "device error (control tdi-error)"));
    VTSM_INFO("TDI %u: device error, now ERROR (rule DEVTDI.10)", tdi);
    return VTSM_OK;
}

vtsm_status vtsm_dev_firmware_update(struct vtsm_dev *d, unsigned *errored)
{
    VTSM_ENSURE(d, VTSM_E_INVAL, "vtsm_dev_firmware_update: NULL device");
    unsigned n = 0;
    /* NO_FW_UPDATE: refused while any TDI holds a lock that forbids it (nothing changes) */
    for (unsigned i = 0; d->tdis && i < d->cfg.num_tdis; i++) {
        const struct dev_tdi *t = &d->tdis[i];
        bool locked = t->state == VTSM_TDI_CONFIG_LOCKED || t->state == VTSM_TDI_RUN;
        VTSM_ENSURE_RULE(!locked || !(t->lock_flags & VTSM_TDISP_LOCK_NO_FW_UPDATE), VTSM_E_STATE,
                         VTSM_RULE_DEVTDI_8,
                         "firmware update refused: TDI %u is %s with NO_FW_UPDATE (rule DEVTDI.8)",
                         i, dev_tdi_state_name(t->state));
    }
    /* The new image: the firmware blocks measure differently from now on. */
    d->fw_version++;
    char image[VTSM_DEV_MEAS_VALUE_MAX], version[32];
    snprintf(image, sizeof(image), "vtsm-devemu firmware image 1.0.%u (build %04u)", d->fw_version,
             d->fw_version + 1);
    snprintf(version, sizeof(version), "1.0.%u", d->fw_version);
    for (size_t i = 0; i < d->cfg.n_meas; i++) {
        struct vtsm_dev_meas *m = &d->cfg.meas[i];
        const char *v = m->type == 1 ? image : m->type == 6 ? version : NULL;
        if (!v)
            continue;
        m->value_len = strlen(v) < sizeof(m->value) ? strlen(v) : sizeof(m->value);
        memcpy(m->value, v, m->value_len);
    }
    for (unsigned i = 0; d->tdis && i < d->cfg.num_tdis; i++) {
        bool locked =
            d->tdis[i].state == VTSM_TDI_CONFIG_LOCKED || d->tdis[i].state == VTSM_TDI_RUN;
        if (locked) {
            VTSM_GUARD(tdi_to_error(&d->tdis[i], "firmware update while locked"));
            n++;
        }
    }
    VTSM_INFO("firmware update to 1.0.%u: measurements changed; %u locked TDI(s) moved to ERROR "
              "(rule DEVTDI.9)",
              d->fw_version, n);
    if (errored)
        *errored = n;
    return VTSM_OK;
}

vtsm_status vtsm_dev_report_change(struct vtsm_dev *d, unsigned tdi, bool *locked)
{
    VTSM_ENSURE(d, VTSM_E_INVAL, "vtsm_dev_report_change: NULL device");
    VTSM_ENSURE(d->tdis && tdi < d->cfg.num_tdis, VTSM_E_NOT_FOUND, "no TDI %u", tdi);
    struct dev_tdi *t = &d->tdis[tdi];
    bool held = t->report.len > 0; /* built at LOCK, dropped at STOP / FLR */
    t->report_changes++;
    if (held) { /* the one it hands out from now on, whatever its lock says */
        vtsm_status st = dev_tdi_build_report(d, tdi, t);
        if (st != VTSM_OK) {
            t->report_changes--;
            VTSM_GUARD(dev_tdi_build_report(d, tdi, t));
            return st;
        }
    }
    VTSM_INFO("TDI %u: interface report changed (change %u)%s", tdi, t->report_changes,
              held ? " while it holds a lock" : "; a LOCK builds the changed one");
    if (locked)
        *locked = held;
    return VTSM_OK;
}

vtsm_status vtsm_dev_meas_change(struct vtsm_dev *d)
{
    VTSM_ENSURE(d, VTSM_E_INVAL, "vtsm_dev_meas_change: NULL device");
    d->meas_patches++;
    char image[VTSM_DEV_MEAS_VALUE_MAX];
    snprintf(image, sizeof(image), "vtsm-devemu firmware image 1.0.%u (build %04u, patch %u)",
             d->fw_version, d->fw_version + 1, d->meas_patches);
    for (size_t i = 0; i < d->cfg.n_meas; i++) {
        struct vtsm_dev_meas *m = &d->cfg.meas[i];
        if (m->type != 1) /* the mutable firmware only; the version block stays */
            continue;
        m->value_len = strlen(image) < sizeof(m->value) ? strlen(image) : sizeof(m->value);
        memcpy(m->value, image, m->value_len);
    }
    VTSM_INFO("firmware patched in place (patch %u, version 1.0.%u unchanged): measurements "
              "changed, TDIs keep their state",
              d->meas_patches, d->fw_version);
    return VTSM_OK;
}

vtsm_status vtsm_dev_control(struct vtsm_dev *d, const char *cmd, char *out, size_t cap)
{
    char verb[32] = "";
    unsigned arg = 0;
    int n = 0;
    VTSM_ENSURE(d && cmd && out && cap, VTSM_E_INVAL, "vtsm_dev_control: bad arguments");
    out[0] = '\0';
    int k = sscanf(cmd, "%31s %u%n", verb, &arg, &n);
    if (k >= 1 && strcmp(verb, "fw-update") == 0 && k == 1) {
        unsigned errored = 0;
        VTSM_GUARD(vtsm_dev_firmware_update(d, &errored));
        snprintf(out, cap, "ok fw-update version 1.0.%u tdis_to_error %u", d->fw_version, errored);
        return VTSM_OK;
    }
    if (k == 2 && strcmp(verb, "tdi-error") == 0) {
        VTSM_GUARD(vtsm_dev_tdi_fail(d, arg));
        snprintf(out, cap, "ok tdi-error %u", arg);
        return VTSM_OK;
    }
    if (k == 2 && strcmp(verb, "flr") == 0) {
        VTSM_GUARD(dev_tdi_flr(d, arg));
        snprintf(out, cap, "ok flr %u", arg);
        return VTSM_OK;
    }
    if (k == 2 && strcmp(verb, "report-change") == 0) {
        bool locked = false;
        VTSM_GUARD(vtsm_dev_report_change(d, arg, &locked));
        snprintf(out, cap, "ok report-change %u change %u %s", arg, d->tdis[arg].report_changes,
                 locked ? "now" : "at_lock");
        return VTSM_OK;
    }
    if (k == 1 && strcmp(verb, "meas-change") == 0) {
        VTSM_GUARD(vtsm_dev_meas_change(d));
        snprintf(out, cap, "ok meas-change patch %u version 1.0.%u", d->meas_patches,
                 d->fw_version);
        return VTSM_OK;
    }
    return vtsm_fail(VTSM_E_INVAL,
                     "unknown control '%.64s' (fw-update, meas-change, tdi-error N, flr N, "
                     "report-change N)",
                     cmd);
}
