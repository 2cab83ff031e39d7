/* SPDX-License-Identifier: BSD-3-Clause */
#include "vtsm_version.h"

const char *vtsm_version(void)
{
    return VTSM_VERSION_STRING;
}
