/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Capture files in the classic pcap format (microsecond timestamps, host byte order as
 * the magic number tells readers), one record per packet. The DOE captures use
 * LINKTYPE_PCI_DOE (292): each record is one whole DOE data object, header included, as
 * DMTF's spdm_dump reads it.
 */
#ifndef VTSM_PCAP_H
#define VTSM_PCAP_H

#include <stddef.h>
#include <stdint.h>

#include "vtsm_err.h"

#define VTSM_PCAP_LINKTYPE_PCI_DOE 292u
#define VTSM_PCAP_MAGIC            0xA1B2C3D4u
#define VTSM_PCAP_SNAPLEN          ((1u << 20) + 8u) /* one maximal DOE object */

struct vtsm_pcap;

/* Create (truncate) path and write the file header. E_IO naming the file on failure. */
vtsm_status vtsm_pcap_open(const char *path, uint32_t linktype, struct vtsm_pcap **out);
/* One record, stamped with the current time and flushed (a capture stays readable if the
 * process dies). Records longer than the snap length are cut to it (orig_len says so). */
vtsm_status vtsm_pcap_write(struct vtsm_pcap *p, const uint8_t *data, size_t len);
/* Close the file. NULL is fine. */
void vtsm_pcap_close(struct vtsm_pcap *p);

#endif
