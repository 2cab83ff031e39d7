/* SPDX-License-Identifier: BSD-3-Clause */
/* Device configuration defaults and fault names. */
#include <string.h>

#include "dev_internal.h"
#include "vtsm_guard.h"

static const char *const fault_names[VTSM_DEV_FAULT_COUNT_] = {
    [VTSM_DEV_FAULT_BAD_KEX_SIGNATURE] = "bad-kex-signature",
    [VTSM_DEV_FAULT_BAD_MEAS_SIGNATURE] = "bad-meas-signature",
    [VTSM_DEV_FAULT_UNTRUSTED_CHAIN] = "untrusted-chain",
    [VTSM_DEV_FAULT_TRUNCATE_DOE] = "truncate-doe",
    [VTSM_DEV_FAULT_OVERSIZE_DOE] = "oversize-doe",
    [VTSM_DEV_FAULT_MISALIGN_DOE] = "misalign-doe",
    [VTSM_DEV_FAULT_ERROR_KEX] = "error-kex",
    [VTSM_DEV_FAULT_UNEXPECTED_CODE] = "unexpected-code",
    [VTSM_DEV_FAULT_WRONG_SESSION_ID] = "wrong-session-id",
    [VTSM_DEV_FAULT_REPLAY] = "replay",
    [VTSM_DEV_FAULT_TAMPER] = "tamper",
    [VTSM_DEV_FAULT_NOT_READY] = "not-ready",
    [VTSM_DEV_FAULT_IDEKM_NAK_KEYPROG] = "idekm-nak-keyprog",
    [VTSM_DEV_FAULT_IDEKM_WRONG_STREAM] = "idekm-wrong-stream",
    [VTSM_DEV_FAULT_IDEKM_WRONG_KEYSET] = "idekm-wrong-keyset",
    [VTSM_DEV_FAULT_IDEKM_WRONG_SUBSTREAM] = "idekm-wrong-substream",
    [VTSM_DEV_FAULT_IDEKM_NO_GO_ACK] = "idekm-no-go-ack",
    [VTSM_DEV_FAULT_IDEKM_REPLAY_ACK] = "idekm-replay-ack",
    [VTSM_DEV_FAULT_TDISP_BAD_NONCE] = "tdisp-bad-nonce",
    [VTSM_DEV_FAULT_TDISP_OVERLAP_MMIO] = "tdisp-overlap-mmio",
    [VTSM_DEV_FAULT_TDISP_MMIO_OVERFLOW] = "tdisp-mmio-overflow",
    [VTSM_DEV_FAULT_TDISP_REPORT_LENGTH] = "tdisp-report-length-change",
    [VTSM_DEV_FAULT_TDISP_STATE_DRIFT] = "tdisp-state-drift",
    [VTSM_DEV_FAULT_TDISP_ERROR_STATE] = "tdisp-error-state",
    [VTSM_DEV_FAULT_KEY_UPDATE_NO_SWITCH] = "key-update-no-switch",
    [VTSM_DEV_FAULT_BAD_KEX_POINT] = "bad-kex-point",
    [VTSM_DEV_FAULT_BAD_CHALLENGE_SIGNATURE] = "bad-challenge-signature",
    [VTSM_DEV_FAULT_WRONG_CERT_CHAIN_HASH] = "wrong-cert-chain-hash",
    [VTSM_DEV_FAULT_MEAS_DRIFT_AFTER_LOCK] = "meas-drift-after-lock",
};
/* The mask (and config_check's shift) has room for every fault. */
_Static_assert(VTSM_DEV_FAULT_COUNT_ < 32, "vtsm_dev_config.faults is a 32-bit mask");

const char *vtsm_dev_fault_name(enum vtsm_dev_fault f)
{
    if ((unsigned)f >= VTSM_DEV_FAULT_COUNT_)
        return NULL;
    /* NULL for a fault added to the enum without a name. */
    return fault_names[f];
}

vtsm_status vtsm_dev_fault_parse(const char *name, enum vtsm_dev_fault *out)
{
    VTSM_ENSURE(name && out, VTSM_E_INVAL, "fault name missing");
    for (unsigned i = 0; i < VTSM_DEV_FAULT_COUNT_; i++) {
        if (fault_names[i] && strcmp(name, fault_names[i]) == 0) {
            *out = (enum vtsm_dev_fault)i;
            return VTSM_OK;
        }
    }
    return vtsm_fail(VTSM_E_NOT_FOUND, "unknown fault '%s'", name);
}

static void meas_set(struct vtsm_dev_meas *m, uint8_t index, uint8_t type, bool raw, bool tcb,
                     const char *value)
{
    memset(m, 0, sizeof(*m));
    m->index = index;
    m->type = type;
    m->raw = raw;
    m->tcb = tcb;
    m->value_len = strlen(value);
    if (m->value_len > sizeof(m->value))
        m->value_len = sizeof(m->value);
    memcpy(m->value, value, m->value_len);
}

void vtsm_dev_config_default(struct vtsm_dev_config *c)
{
    memset(c, 0, sizeof(*c));
    c->versions = VTSM_DEV_VER_12 | VTSM_DEV_VER_13;
    c->asym = VTSM_ASYM_ECDSA_P384;
    c->hash = VTSM_HASH_SHA384;
    c->dhe = VTSM_DHE_SECP384R1;
    c->aead = VTSM_AEAD_AES_256_GCM;
    c->slots[0].kind = VTSM_DEV_SLOT_DEFAULT;
    /* DMTFSpecMeasurementValueType (DSP0274 "DMTF measurement specification format"):
     * 0 immutable ROM, 1 mutable firmware, 2 hardware configuration,
     * 6 mutable firmware's version number. Contents are fixed so every run measures the
     * same device. */
    meas_set(&c->meas[0], 1, 0, false, true, "vtsm-devemu immutable ROM, mask rev A0");
    meas_set(&c->meas[1], 2, 1, false, true, "vtsm-devemu firmware image 1.0.0 (build 0001)");
    meas_set(&c->meas[2], 3, 2, false, false,
             "vtsm-devemu hardware configuration: PCIe endpoint, TDISP, selective IDE");
    meas_set(&c->meas[3], 4, 6, true, false, "1.0.0");
    c->n_meas = 4;
    c->ct_exponent = 16;
    c->data_transfer_size = 4096;
    c->max_spdm_msg_size = 4096;
    c->num_tdis = 4;
    c->tdisp = true;
    c->ide_streams = 4;
    c->ide_link_tcs = 0;
    c->ide_addr_assoc = 0;
    c->ide_tee_limited = false;
    c->ide_query_shape = VTSM_DEV_IDE_QUERY_SPEC;
    c->key_log = NULL;
    c->key_log_ctx = NULL;
    c->secret_log = NULL;
    c->secret_log_ctx = NULL;
    c->faults = 0;
    c->key_update = true;
    c->heartbeat = true;
    c->heartbeat_period = 60;
    c->challenge = true;
}
