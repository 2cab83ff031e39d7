/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The pcap writer.
 */
#include "vtsm_pcap.h"

#include "vtsm_guard.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct vtsm_pcap {
    FILE *f;
    char path[256];
};

/* The file header and record header, written field by field in host order. */
struct file_hdr {
    uint32_t magic;
    uint16_t major, minor;
    int32_t thiszone;
    uint32_t sigfigs, snaplen, linktype;
};
struct rec_hdr {
    uint32_t ts_sec, ts_usec, incl_len, orig_len;
};
_Static_assert(sizeof(struct file_hdr) == 24 && sizeof(struct rec_hdr) == 16, "pcap headers");

vtsm_status vtsm_pcap_open(const char *path, uint32_t linktype, struct vtsm_pcap **out)
{
    VTSM_ENSURE(path && out, VTSM_E_INVAL, "pcap: NULL argument");
    *out = NULL;
    struct vtsm_pcap *p = calloc(1, sizeof(*p));
    VTSM_ENSURE(p, VTSM_E_NOMEM, "pcap");
    snprintf(p->path, sizeof(p->path), "%s", path);
    p->f = fopen(path, "wb");
    if (!p->f) {
        int e = errno;
        free(p);
        return vtsm_fail(VTSM_E_IO, "capture file '%s': %s", path, strerror(e));
    }
    struct file_hdr h = {VTSM_PCAP_MAGIC, 2, 4, 0, 0, VTSM_PCAP_SNAPLEN, linktype};
    if (fwrite(&h, sizeof(h), 1, p->f) != 1 || fflush(p->f) != 0) {
        int e = errno;
        fclose(p->f);
        free(p);
        return vtsm_fail(VTSM_E_IO, "capture file '%s': %s", path, strerror(e));
    }
    *out = p;
    return VTSM_OK;
}

vtsm_status vtsm_pcap_write(struct vtsm_pcap *p, const uint8_t *data, size_t len)
{
    VTSM_ENSURE(p && (data || !len), VTSM_E_INVAL, "pcap: NULL argument");
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    size_t incl = len < VTSM_PCAP_SNAPLEN ? len : VTSM_PCAP_SNAPLEN;
    struct rec_hdr r = {(uint32_t)ts.tv_sec, (uint32_t)(ts.tv_nsec / 1000), (uint32_t)incl,
                        (uint32_t)(len > UINT32_MAX ? UINT32_MAX : len)};
    if (fwrite(&r, sizeof(r), 1, p->f) != 1 || (incl && fwrite(data, incl, 1, p->f) != 1) ||
        fflush(p->f) != 0)
        return vtsm_fail(VTSM_E_IO, "capture file '%s': %s", p->path, strerror(errno));
    return VTSM_OK;
}

void vtsm_pcap_close(struct vtsm_pcap *p)
{
    if (!p)
        return;
    fclose(p->f);
    free(p);
}
