/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * MMIO and DMA of a bound TDI (docs/abi.md 7.18 and 9.5, docs/architecture.md "MMIO and
 * DMA"): the host says where it maps each MMIO_RANGE of the TDI's interface report in the
 * owning TVM's guest-physical space; the owning guest validates the ranges one by one (the
 * shape of SEV-TIO MMIO_VALIDATE, TDX TDG.MMIO.ACCEPT, CCA RSI_VDEV_VALIDATE_MAPPING) and
 * then enables DMA (SDTE_WRITE, TDG.DMAR.ACCEPT, RSI_VDEV_DMA_ENABLE).
 *
 * The host is not trusted: the TSM records the mapping it declares as it is (what its
 * stage-2 tables hold) and judges it when the guest validates, against the report the TSM
 * read from the device and against the other mappings of the same TVM:
 *   MMIO.1  TDI_MMIO_MAP only while CONFIG_LOCKED (bound, before RUN)       E_STATE
 *   MMIO.2  range names an MMIO_RANGE of the report                        E_NOT_FOUND
 *   MMIO.3  a validated range is not mapped again                          E_STATE
 *   MMIO.4  the guest validates only a mapped range                        E_STATE
 *   MMIO.5  the guest's GPA is the mapping's                               E_STATE
 *   MMIO.6  the mapping's and the guest's size are the report's            E_STATE
 *   MMIO.7  the mapping is 4 KiB aligned and ends below 2^64               E_STATE
 *   MMIO.8  it overlaps no other mapping of any TDI of the same TVM        E_STATE
 *   MMIO.9  an IS_NON_TEE_MEM range is never validated as private          E_POLICY_REFUSED
 *   MMIO.10 an MSI-X table or PBA range is private only when the TDI was locked with
 *           LOCK_MSIX (TDISP: unless locked, the TDI's MSI-X table and PBA stay under
 *           the host's control)                                             E_POLICY_REFUSED
 *   MMIO.11 only the owning guest validates and enables DMA                E_NOT_OWNER
 *   MMIO.12 the guest validates only while CONFIG_LOCKED or RUN            E_STATE
 *   DMA.1   DMA enabled only once every reported range is validated        E_STATE
 *   DMA.2   DMA enabled only while CONFIG_LOCKED or RUN                    E_STATE
 *   DMA.3   unbind, UNLOCK and ERROR (every move to CONFIG_UNLOCKED or ERROR) clear every
 *           mapping, validation and DMA (tsm_tdi.c)
 * Nothing changes on a refusal. No device exchange: these are TSM bookkeeping.
 */
#ifndef TSM_MMIO_H
#define TSM_MMIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tsm_tdi.h"

/* Host TDI_MMIO_MAP: MMIO_RANGE `range` of t's report is mapped at gpa, `pages` 4 KiB
 * pages (0: the range's reported size). Replaces an earlier, unvalidated mapping. */
vtsm_status tsm_tdi_mmio_map(struct tsm_tdi *t, uint32_t range, uint64_t gpa, uint64_t pages);

/*
 * Guest MMIO_VALIDATE by guest_tvm: the range, the GPA and size (pages) the guest expects
 * and whether it takes it as private memory. others: the other TDIs owned by the same TVM
 * (t itself may be among them and is skipped), for MMIO.8. Success marks the range
 * validated; validating it again with the same arguments is a success that changes nothing.
 */
vtsm_status tsm_tdi_mmio_validate(struct tsm_tdi *t, uint32_t guest_tvm, uint32_t range,
                                  uint64_t gpa, uint64_t pages, bool priv,
                                  const struct tsm_tdi *const *others, size_t n_others);

/* Guest DMA_ENABLE by guest_tvm (MMIO.11, DMA.2, DMA.1). Enabling again is a success. */
vtsm_status tsm_tdi_dma_enable(struct tsm_tdi *t, uint32_t guest_tvm);

/* Ranges in t's report (0 when not bound) and how many the guest validated. */
uint32_t tsm_tdi_mmio_count(const struct tsm_tdi *t, uint32_t *validated);

/* "off" (the guest has not enabled DMA), "enabled" (it has, the TDI is not in RUN yet) or
 * "active" (enabled and RUN: the device's DMA reaches the TVM). */
const char *tsm_tdi_dma_name(const struct tsm_tdi *t);

#endif
