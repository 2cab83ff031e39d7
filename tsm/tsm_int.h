/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tsmd internals: the object model (pdev), the pdev state table, the DOE continuation
 * that carries every device exchange through the host, and the ABI server.
 *
 * Concurrency: one global mutex (tsm->lock) protects the pdev list, every pdev's state
 * and the pending-exchange fields. Long verbs (connect, reclaim) run in a worker thread
 * per device; the worker drops the lock while it computes or waits for the host, and
 * re-checks state after every wait (validate -> do -> update state last).
 */
#ifndef TSM_INT_H
#define TSM_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <cbor.h>

#include "tsm_ide.h"
#include "tsm_platform.h"
#include "tsm_tdi.h"
#include "tsm_tvm.h"
#include "vtsm_abi.h"
#include "vtsm_buf.h"
#include "vtsm_cert.h"
#include "vtsm_spdm_req.h"
#include "vtsm_status.h"

struct tsm;

/* Bounds on what an untrusted host can make tsmd hold. */
#define TSM_MAX_PDEVS   1024 /* registered devices */
#define TSM_MAX_CLIENTS 256  /* open ABI connections */

/* One ABI connection. Reference counted: workers with a verb in flight hold a ref. */
struct tsm_client {
    struct tsm *tsm;
    int fd;
    unsigned refs;                 /* under tsm->lock */
    bool dead;                     /* peer gone or protocol broken; under tsm->lock */
    enum vtsm_abi_role role;       /* VTSM_ABI_ROLE_NONE until HELLO */
    pthread_mutex_t write_lock;    /* one frame at a time on fd */
    struct vtsm_abi_reader reader; /* main thread only */
    struct tsm_client *next;
};

/* Connection state of a physical device (one SPDM requester per device). */
enum tsm_pdev_state {
    TSM_PDEV_UNCONNECTED = 0,
    TSM_PDEV_CONNECTING,
    TSM_PDEV_CONNECTED,
    TSM_PDEV_RECLAIMING,
    TSM_PDEV_STATE_COUNT_
};
const char *tsm_pdev_state_name(enum tsm_pdev_state s);

/* The verb currently driving a device's DOE mailbox and its one outstanding exchange. */
struct tsm_verb {
    struct tsm_client *client; /* holds a ref while the verb runs */
    uint64_t id;               /* the client's request id */
    uint64_t next_seq;
    /* outstanding exchange */
    bool waiting;
    uint64_t seq;
    bool done;
    vtsm_status result;
    char error[160];
    struct vtsm_buf rsp;
};

struct tsm_connect_opts {
    uint8_t slot;
    bool allow_untrusted;
    unsigned ide_streams; /* 0 = IDE off */
    bool ide_only;        /* not TEE-IO: TDISP is not probed, TDIs cannot be bound */
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
};

/* A TDI the TSM has seen a request for (created on first use, kept until reset). */
struct tsm_tdi_node {
    struct tsm_tdi tdi;
    struct tsm_tdi_node *next;
};

/*
 * What a running device verb owns. While `busy` is set only its worker touches the
 * device's requester, IDE state and the TDIs named here; everyone else (status, guest
 * LIST/INFO) skips them and says "busy". `busy` is the "one DOE requester per device"
 * rule (PDEV.6) for every verb, not only connect and reclaim.
 */
struct tsm_job_claim {
    bool busy;
    const char *verb; /* "device_connect", "tdi_bind", ... */
    bool all_tdis;    /* reclaim */
    bool has_tdi;
    uint32_t tdi;
    uint32_t tvm; /* TVM a bind targets, 0 if none */
};

struct tsm_pdev {
    struct tsm *tsm;
    char name[VTSM_ABI_DEV_BUF];
    uint32_t root_port;
    enum tsm_pdev_state state;
    struct tsm_verb verb; /* valid while a verb runs (claim.busy) */
    struct tsm_job_claim claim;
    struct vtsm_spdm_req *spdm;
    struct tsm_connect_opts opts;
    struct tsm_evidence ev;
    struct tsm_ide_dev *ide; /* IDE streams, NULL if IDE is off */
    bool tdisp;              /* TDISP probed at connect (a TEE-IO device) */
    struct vtsm_tdisp_caps tdisp_caps;
    struct tsm_tdi_node *tdis;
    uint64_t connects; /* completed connects, for status */
    struct tsm_pdev *next;
};

struct tsm_config {
    char socket_path[256];
    int doe_timeout_ms; /* how long a verb waits for one doe_response */
    struct vtsm_trust *trust;
    struct tsm_platform *platform; /* root ports, IDE streams and key slots */
    EVP_PKEY *identity_key;        /* signs guest evidence tokens */
    uint8_t identity_kid[32];      /* SHA-256 of the TSM certificate (DER) */
};

struct tsm {
    struct tsm_config cfg;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* signalled on every exchange completion / client death */
    struct tsm_pdev *pdevs;
    struct tsm_tvm_registry tvms;
    struct tsm_client *clients;
    unsigned workers; /* running worker threads */
    bool stopping;
    int listen_fd;
    int wake_pipe[2]; /* wakes the poll loop (shutdown, client death from a worker) */
};

/* ---- pdev registry and state table (tsm_pdev.c) ---- */
struct tsm_pdev *tsm_pdev_find(struct tsm *t, const char *name);
vtsm_status tsm_pdev_add(struct tsm *t, const char *name, uint32_t root_port,
                         struct tsm_pdev **out);
vtsm_status tsm_pdev_remove(struct tsm *t, const char *name);
/* The only writer of pdev->state: refuses any move not in the table, naming the rule.
 * verb names the request for the message ("device_connect"). Caller holds tsm->lock. */
vtsm_status tsm_pdev_transition(struct tsm_pdev *p, enum tsm_pdev_state to, const char *verb);
/* Drop session, IDE streams, TDIs, evidence and keys (wipes; no device messages). Caller
 * holds tsm->lock or owns the pdev. */
void tsm_pdev_reset(struct tsm_pdev *p);
/* The TDI record of index on p, created CONFIG_UNLOCKED on first use. Lock held. */
vtsm_status tsm_pdev_tdi(struct tsm_pdev *p, uint32_t index, struct tsm_tdi **out);
/* Is this TDI owned by a running job (so nobody else may read or change it)? Lock held. */
bool tsm_pdev_tdi_claimed(const struct tsm_pdev *p, const struct tsm_tdi *t);
/* TDIs of p bound to a TVM (not CONFIG_UNLOCKED), and of tvm on every device. Lock held. */
unsigned tsm_pdev_bound_tdis(const struct tsm_pdev *p);
unsigned tsm_tvm_bound_tdis(struct tsm *t, uint32_t tvm);

/* ---- DOE continuation (tsm_proxy.c) ---- */
/* The transport the SPDM requester of pdev p uses while a verb runs. */
struct vtsm_spdm_transport tsm_proxy_transport(struct tsm_pdev *p);
/* The simulated-link channel of pdev (ctx = the pdev): a frame out, the device's frame back,
 * carried by the host as DOE_PENDING {channel: "link"}. */
vtsm_status tsm_proxy_link_exchange(void *ctx, const uint8_t *frame, size_t len,
                                    struct vtsm_buf *rsp);
/* Main thread: deliver a doe_response. Returns E_ABI_SEQUENCE if it matches no pending
 * exchange of this client. Caller holds tsm->lock. */
vtsm_status tsm_proxy_deliver(struct tsm *t, struct tsm_client *c, const cbor_item_t *msg);

/* ---- clients (tsm_server.c) ---- */
void tsm_client_get(struct tsm_client *c);                /* caller holds tsm->lock */
void tsm_client_put(struct tsm *t, struct tsm_client *c); /* caller holds tsm->lock */
/* Send one message to a client (takes the client's write lock; not tsm->lock). A send
 * failure marks the client dead. Consumes nothing: the caller still owns msg. */
vtsm_status tsm_client_send(struct tsm *t, struct tsm_client *c, const cbor_item_t *msg);
/* Send RESULT/ERROR for a request and release msg. */
void tsm_client_reply(struct tsm *t, struct tsm_client *c, cbor_item_t *msg);
void tsm_client_error(struct tsm *t, struct tsm_client *c, uint64_t id, vtsm_status st,
                      const char *detail);

/* ---- verbs (tsm_verbs.c) ---- */
typedef void (*tsm_handler_fn)(struct tsm *t, struct tsm_client *c, uint64_t id,
                               const cbor_item_t *msg);
void tsm_verb_device_add(struct tsm *t, struct tsm_client *c, uint64_t id, const cbor_item_t *msg);
void tsm_verb_device_remove(struct tsm *t, struct tsm_client *c, uint64_t id,
                            const cbor_item_t *msg);
void tsm_verb_device_connect(struct tsm *t, struct tsm_client *c, uint64_t id,
                             const cbor_item_t *msg);
void tsm_verb_device_reclaim(struct tsm *t, struct tsm_client *c, uint64_t id,
                             const cbor_item_t *msg);
void tsm_verb_status(struct tsm *t, struct tsm_client *c, uint64_t id, const cbor_item_t *msg);
void tsm_verb_ide_refresh(struct tsm *t, struct tsm_client *c, uint64_t id, const cbor_item_t *msg);
void tsm_verb_ide_link_check(struct tsm *t, struct tsm_client *c, uint64_t id,
                             const cbor_item_t *msg);
void tsm_verb_spdm_key_update(struct tsm *t, struct tsm_client *c, uint64_t id,
                              const cbor_item_t *msg);
void tsm_verb_spdm_heartbeat(struct tsm *t, struct tsm_client *c, uint64_t id,
                             const cbor_item_t *msg);
void tsm_verb_tvm_create(struct tsm *t, struct tsm_client *c, uint64_t id, const cbor_item_t *msg);
void tsm_verb_tvm_destroy(struct tsm *t, struct tsm_client *c, uint64_t id, const cbor_item_t *msg);
void tsm_verb_tdi_bind(struct tsm *t, struct tsm_client *c, uint64_t id, const cbor_item_t *msg);
void tsm_verb_tdi_unbind(struct tsm *t, struct tsm_client *c, uint64_t id, const cbor_item_t *msg);
void tsm_verb_guest_request(struct tsm *t, struct tsm_client *c, uint64_t id,
                            const cbor_item_t *msg);

/* ---- device jobs (tsm_job.c): a verb that needs the device's DOE mailbox ---- */
struct tsm_job;
/* Runs in the worker thread without tsm->lock; returns the reply (RESULT or ERROR). It may
 * take the lock to commit state (validate -> do -> update state last). */
typedef cbor_item_t *(*tsm_job_fn)(struct tsm_job *j);
struct tsm_job {
    struct tsm *t;
    struct tsm_pdev *p;
    uint64_t id;
    tsm_job_fn run;
    /* arguments */
    uint32_t tdi, tvm;
    uint16_t lock_flags;
    bool force;
    struct tsm_guest_req greq;
};
/* Claim the device for a job (lock held): refuses with PDEV.6 if busy. */
vtsm_status tsm_job_claim(struct tsm_pdev *p, const char *verb, const struct tsm_job_claim *what);
/* Start j (heap-allocated, the job frees it) on a worker for client c (lock held; the device
 * must have been claimed). On failure the claim is released and j freed. */
vtsm_status tsm_job_start(struct tsm *t, struct tsm_client *c, struct tsm_job *j);
/* The device's SPDM channel for TDISP / IDE_KM inside the session. */
struct tsm_tdisp_chan tsm_job_tdisp_chan(struct tsm_pdev *p);
/* An ERROR reply for the calling thread's current failure. */
cbor_item_t *tsm_job_error(struct tsm_job *j, vtsm_status st);

/* ---- daemon (tsm_server.c) ---- */
vtsm_status tsm_init(struct tsm *t, const struct tsm_config *cfg);
vtsm_status tsm_run(struct tsm *t); /* until tsm_stop() / SIGTERM */
void tsm_stop(struct tsm *t);       /* async-signal-safe */
void tsm_fini(struct tsm *t);

#endif
