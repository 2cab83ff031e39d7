/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Physical devices (object model): the pdev record, its connection state table and the
 * registry of devices. Plain C only: this header and tsm_pdev.c include no CBOR or ABI
 * codec header (the ABI's shared numbers come from vtsm_abi_defs.h); the verbs and reply
 * builders turn what is here into messages.
 *
 * Every call is made on tsmd's loop thread (docs/architecture.md "The loop and its jobs").
 */
#ifndef TSM_PDEV_H
#define TSM_PDEV_H

#include <stdbool.h>
#include <stdint.h>

#include "tsm_ide.h"
#include "tsm_tdi.h"
#include "tsm_tvm.h"
#include "vtsm_abi_defs.h"
#include "vtsm_cert.h"
#include "vtsm_spdm_req.h"
#include "vtsm_err.h"

struct tsm;
struct tsm_job;

#define TSM_MAX_PDEVS 1024 /* registered devices (an untrusted host's bound) */

/* Connection state of a physical device (one SPDM requester per device). */
enum tsm_pdev_state {
    TSM_PDEV_UNCONNECTED = 0,
    TSM_PDEV_CONNECTING,
    TSM_PDEV_CONNECTED,
    TSM_PDEV_RECLAIMING,
    TSM_PDEV_STATE_COUNT_
};
const char *tsm_pdev_state_name(enum tsm_pdev_state s);

struct tsm_connect_opts {
    uint8_t slot;
    bool allow_untrusted;
    unsigned ide_streams;  /* 0 = IDE off */
    bool ide_only;         /* not TEE-IO: TDISP is not probed, TDIs cannot be bound */
    bool challenge;        /* authenticate by CHALLENGE after the certificate, too */
    bool ide_lenient;      /* rule IDE.5: accept a self-contradicting QUERY_RESP */
    unsigned n_stream_ids; /* host-allocated stream IDs (0: the TSM allocates) */
    uint8_t stream_ids[TSM_IDE_MAX_STREAMS];
    bool ide_link;     /* a Link IDE stream as well (rule IDE.11) */
    unsigned n_ranges; /* ide_addr_ranges (rules IDE.9, IDE.10) */
    struct tsm_ide_range ranges[TSM_IDE_MAX_RANGES];
    uint8_t min_version, max_version;
    uint32_t base_asym; /* SPDM_ASYM_* mask, 0 = default */
    uint32_t base_hash;
};

/* Evidence gathered by connect, reported to the host and kept for status. */
struct tsm_evidence {
    bool trusted;
    char trust_reason[160];
    struct vtsm_spdm_meas meas;
    bool have_meas;
    uint8_t chain_digest[VTSM_HASH_MAX]; /* hash of the SPDM chain with the negotiated hash */
    size_t chain_digest_len;
    uint32_t refreshes; /* completed host-driven evidence refreshes (EVIDENCE refresh) */
};

/* A TDI the TSM has seen a request for (created on first use, kept until reset). */
struct tsm_tdi_node {
    struct tsm_tdi tdi;
    struct tsm_tdi_node *next;
};

/* What a running job owns besides the device's mailbox: readers (STATUS, guest LIST /
 * INFO) skip exactly these TDIs while it runs and say "busy". */
struct tsm_job_claim {
    bool all_tdis; /* reclaim */
    bool has_tdi;
    uint32_t tdi;
    uint32_t tvm; /* TVM a bind targets, 0 if none */
};

struct tsm_pdev {
    struct tsm *tsm;               /* the daemon (opaque here) */
    struct tsm_tvm_registry *tvms; /* where bound TDIs are counted per TVM */
    char name[VTSM_ABI_DEV_BUF];
    uint32_t root_port;
    enum tsm_pdev_state state;
    struct tsm_job *job; /* the device's one DOE requester (rule PDEV.6), NULL if idle */
    const struct tsm_job_claim *claim; /* what that job owns, NULL if idle */
    struct vtsm_spdm_req *spdm;
    struct tsm_connect_opts opts;
    struct tsm_evidence ev;
    struct tsm_ide_dev *ide; /* IDE streams, NULL if IDE is off */
    /* key sets the TSM could not stop on the device (rule IDE.4): kept across connects */
    struct tsm_ide_leftover ide_left;
    bool tdisp; /* TDISP probed at connect (a TEE-IO device) */
    struct vtsm_tdisp_caps tdisp_caps;
    struct tsm_tdi_node *tdis;
    unsigned bound_tdis; /* TDIs not CONFIG_UNLOCKED, kept (a running job's own excluded) */
    uint64_t connects;   /* completed connects, for status */
    /* The last secured (DOE type 2) request of the running job went unanswered (the host
     * reported no response): what a device whose SPDM connection was reset behind the TSM
     * does, as it drops a message for a session it does not know (rule PDEV.17,
     * tsm_job.c). */
    bool secured_unanswered;
    struct tsm_pdev *next;
};

/* The registered devices. */
struct tsm_pdev_registry {
    struct tsm_pdev *head;
    unsigned count;
    struct tsm *owner;             /* given to each pdev as pdev->tsm */
    struct tsm_tvm_registry *tvms; /* given to each pdev as pdev->tvms */
};

/* ---- registry and state table (tsm_pdev.c) ---- */
void tsm_pdev_registry_init(struct tsm_pdev_registry *r, struct tsm *owner,
                            struct tsm_tvm_registry *tvms);
/* Reset and free every device (shutdown). */
void tsm_pdev_registry_fini(struct tsm_pdev_registry *r);
struct tsm_pdev *tsm_pdev_find(struct tsm_pdev_registry *r, const char *name);
vtsm_status tsm_pdev_add(struct tsm_pdev_registry *r, const char *name, uint32_t root_port,
                         struct tsm_pdev **out);
vtsm_status tsm_pdev_remove(struct tsm_pdev_registry *r, const char *name);
/* The only writer of pdev->state: refuses any move not in the table, naming the rule.
 * verb names the request for the message ("device_connect"). */
vtsm_status tsm_pdev_transition(struct tsm_pdev *p, enum tsm_pdev_state to, const char *verb);
/* Drop session, IDE streams, TDIs, evidence and keys (wipes; no device messages). */
void tsm_pdev_reset(struct tsm_pdev *p);
/* A connected device whose SPDM session is gone (lost in a key update, a heartbeat, a
 * bind, ...) is no longer connected: reset it and move it to unconnected through
 * reclaiming, so STATUS never shows a device connected without a session (rule
 * PDEV.12). Returns true if it did. */
/* The session is gone but the device answers in the clear (tsm_job.c probed it with
 * GET_VERSION): its SPDM connection was reset behind the TSM (rule PDEV.17, logged). */
bool tsm_pdev_session_lost(const struct tsm_pdev *p);
bool tsm_pdev_check_session(struct tsm_pdev *p, const char *verb, enum vtsm_rule why);
/* The TDI record of index on p, NULL if none was ever bound. */
struct tsm_tdi *tsm_pdev_tdi_find(struct tsm_pdev *p, uint32_t index);
/* The TDI record of index on p, created CONFIG_UNLOCKED if new (a bind makes it). */
vtsm_status tsm_pdev_tdi(struct tsm_pdev *p, uint32_t index, struct tsm_tdi **out);
/* Free index's record if it is CONFIG_UNLOCKED (a bind that failed leaves nothing). */
void tsm_pdev_tdi_forget(struct tsm_pdev *p, uint32_t index);
/* Is this TDI owned by a running job (so nobody else may read or change it)? */
bool tsm_pdev_tdi_claimed(const struct tsm_pdev *p, const struct tsm_tdi *t);
/* TDIs of p bound to a TVM (not CONFIG_UNLOCKED), from the kept count. */
unsigned tsm_pdev_bound_tdis(const struct tsm_pdev *p);
/* Take the running job's TDIs out of the kept counts (sign -1, when it starts) or put them
 * back (+1, when it ends): what a job changes is counted once, as it ends up. */
void tsm_pdev_tally_claim(struct tsm_pdev *p, int sign);

#endif
