/* SPDX-License-Identifier: BSD-3-Clause */
/* tsm-host native-auth: the host's own CMA and the ownership rule (tsm_host_native.c). */
#ifndef TSM_HOST_NATIVE_H
#define TSM_HOST_NATIVE_H

#include <cbor.h>

#include "vtsm_host_cbor.h"

/* VTSM_OK if the TSM does not own dev (not registered, or unconnected); else refused
 * under PDEV.18 with the state the TSM reports. */
vtsm_status tsm_host_native_owner_check(struct vtsm_host *h, const char *dev);
/* Authenticate dev over doe with the host's own SPDM requester; *res a result map. */
vtsm_status tsm_host_native_auth(struct vtsm_doe_tcp *doe, const char *dev, cbor_item_t **res);

#endif
