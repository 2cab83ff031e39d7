/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tsmd internals: the object model (pdev), the pdev state table, the device jobs and the
 * DOE continuation that carries every device exchange through the host, and the ABI
 * server.
 *
 * Execution model (docs/architecture.md "The loop and its jobs"): ONE thread runs one
 * event loop (tsm_server.c). Every verb that needs a device's DOE mailbox is a job
 * (tsm_job.c) running on its own coroutine stack; it yields where it waits for the host
 * (a DOE_RESPONSE, a timeout or a close) and the loop resumes it. Object state is only
 * ever touched on that thread, so there is no lock: a job re-checks what it depends on
 * after every yield (validate -> do -> update state last).
 */
#ifndef TSM_INT_H
#define TSM_INT_H

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
#include "vtsm_err.h"

struct tsm;

/* Bounds on what an untrusted host can make tsmd hold. */
#define TSM_MAX_PDEVS   1024 /* registered devices */
#define TSM_MAX_CLIENTS 256  /* open ABI connections */

/* One ABI connection. Reference counted: the client list and every job it started. */
struct tsm_client {
    struct tsm *tsm;
    int fd;
    unsigned refs;
    bool dead;                     /* dropped, or to be dropped by the loop */
    enum vtsm_abi_role role;       /* VTSM_ABI_ROLE_NONE until HELLO */
    struct vtsm_abi_reader reader; /* requests, decoded as they complete */
    struct vtsm_buf out;           /* encoded frames not yet written (bounded) */
    size_t out_off;                /* bytes of out already written */
    int64_t accepted_ms;           /* loop clock at accept */
    int64_t active_ms;             /* last complete request */
    int64_t partial_ms;            /* when the buffered partial frame began; 0 if none */
    int64_t stalled_ms;            /* since when queued output has not moved; 0 if none */
    unsigned jobs;                 /* device jobs this client started that still run */
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

/* What a running job owns besides the device's mailbox: readers (STATUS, guest LIST /
 * INFO) skip exactly these TDIs while it runs and say "busy". */
struct tsm_job_claim {
    bool all_tdis; /* reclaim */
    bool has_tdi;
    uint32_t tdi;
    uint32_t tvm; /* TVM a bind targets, 0 if none */
};

struct tsm_pdev {
    struct tsm *tsm;
    char name[VTSM_ABI_DEV_BUF];
    uint32_t root_port;
    enum tsm_pdev_state state;
    struct tsm_job *job; /* the device's one DOE requester (rule PDEV.6), NULL if idle */
    struct vtsm_spdm_req *spdm;
    struct tsm_connect_opts opts;
    struct tsm_evidence ev;
    struct tsm_ide_dev *ide; /* IDE streams, NULL if IDE is off */
    bool tdisp;              /* TDISP probed at connect (a TEE-IO device) */
    struct vtsm_tdisp_caps tdisp_caps;
    struct tsm_tdi_node *tdis;
    unsigned bound_tdis; /* TDIs not CONFIG_UNLOCKED, kept (a running job's own excluded) */
    uint64_t connects;   /* completed connects, for status */
    struct tsm_pdev *next;
};

struct tsm_config {
    char socket_path[256];
    int inherited_fd;     /* > 0: serve this listening socket (systemd), not socket_path */
    int doe_timeout_ms;   /* how long a verb waits for one doe_response */
    int hello_timeout_ms; /* a connection must send HELLO within this */
    int frame_timeout_ms; /* a frame once begun must complete within this (half-open) */
    int idle_timeout_ms;  /* a client with nothing in flight is dropped after; 0 = never */
    size_t outq_max;      /* bytes a client may leave unread before it is dropped */
    unsigned max_hosts, max_guests, max_unauth; /* connections per role (before HELLO) */
    struct vtsm_trust *trust;
    struct tsm_platform *platform; /* root ports, IDE streams and key slots */
    EVP_PKEY *identity_key;        /* signs guest evidence tokens */
    uint8_t identity_kid[32];      /* SHA-256 of the TSM certificate (DER) */
};

struct tsm {
    struct tsm_config cfg;
    struct tsm_pdev *pdevs;
    unsigned npdevs;
    struct tsm_tvm_registry tvms;
    struct tsm_client *clients;
    unsigned nclients, nrole[3]; /* connections, and per enum vtsm_abi_role */
    struct tsm_job *jobs;        /* running jobs */
    unsigned njobs;
    bool stopping;
    int listen_fd;
    int wake_pipe[2]; /* wakes the poll loop from the signal handler */
};

/* ---- pdev registry and state table (tsm_pdev.c) ---- */
struct tsm_pdev *tsm_pdev_find(struct tsm *t, const char *name);
vtsm_status tsm_pdev_add(struct tsm *t, const char *name, uint32_t root_port,
                         struct tsm_pdev **out);
vtsm_status tsm_pdev_remove(struct tsm *t, const char *name);
/* The only writer of pdev->state: refuses any move not in the table, naming the rule.
 * verb names the request for the message ("device_connect"). */
vtsm_status tsm_pdev_transition(struct tsm_pdev *p, enum tsm_pdev_state to, const char *verb);
/* Drop session, IDE streams, TDIs, evidence and keys (wipes; no device messages). */
void tsm_pdev_reset(struct tsm_pdev *p);
/* A connected device whose SPDM session is gone (lost in a key update, a heartbeat, a
 * bind, ...) is no longer connected: reset it and move it to unconnected through
 * reclaiming, so STATUS never shows a device connected without a session (rule
 * PDEV.12). Returns true if it did. */
bool tsm_pdev_check_session(struct tsm_pdev *p, const char *verb);
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

/* ---- DOE continuation (tsm_proxy.c) ---- */
/* The transport the SPDM requester of pdev p uses: every exchange is one DOE_PENDING to
 * the host carrying the running job, and the job yields until the answer. */
struct vtsm_spdm_transport tsm_proxy_transport(struct tsm_pdev *p);
/* The simulated-link channel of pdev (ctx = the pdev): a frame out, the device's frame back,
 * carried by the host as DOE_PENDING {channel: "link"}. */
vtsm_status tsm_proxy_link_exchange(void *ctx, const uint8_t *frame, size_t len,
                                    struct vtsm_buf *rsp);
/* Deliver a doe_response and resume the job waiting for it. Returns E_ABI_SEQUENCE if it
 * matches no pending exchange of this client. */
vtsm_status tsm_proxy_deliver(struct tsm *t, struct tsm_client *c, uint64_t id,
                              const struct vtsm_abi_req *req);

/* ---- clients (tsm_server.c) ---- */
void tsm_client_get(struct tsm_client *c);
void tsm_client_put(struct tsm *t, struct tsm_client *c);
/* Queue one message for a client and write what the socket takes now; the rest goes
 * out on POLLOUT. Never blocks. A client whose unread output passes cfg.outq_max, or
 * whose socket fails, is marked dead (the loop drops it). Consumes nothing. */
vtsm_status tsm_client_send(struct tsm *t, struct tsm_client *c, const cbor_item_t *msg);
/* Mark c dead, logging why (the loop drops it at the end of its iteration). */
void tsm_client_kill(struct tsm_client *c, const char *why);
/* Send RESULT/ERROR for a request and release msg. */
void tsm_client_reply(struct tsm *t, struct tsm_client *c, cbor_item_t *msg);
void tsm_client_error(struct tsm *t, struct tsm_client *c, uint64_t id, vtsm_status st,
                      const char *detail);
/* The loop's monotonic clock in milliseconds. */
int64_t tsm_now_ms(void);

/* ---- verbs: one handler per row of the operation table (abi/vtsm_abi.h) ---- */
/* A handler runs after the dispatcher checked HELLO and the role and decoded the request
 * (vtsm_abi_req_decode: schema, every field's type and range); req holds the values, its
 * borrowed ones valid until the handler returns. It answers with exactly one RESULT or
 * ERROR, now or (a job) when the job ends. HELLO and DOE_RESPONSE are in tsm_server.c,
 * the device verbs in tsm_verbs.c, the TVM, TDI and guest verbs in tsm_verbs_tdi.c. */
typedef void (*tsm_handler_fn)(struct tsm *t, struct tsm_client *c, uint64_t id,
                               const struct vtsm_abi_req *req);
#define TSM_X_HANDLER(NAME, lower, code, roles, dev, keys)                                         \
    void tsm_verb_##lower(struct tsm *t, struct tsm_client *c, uint64_t id,                        \
                          const struct vtsm_abi_req *req);
VTSM_ABI_REQUESTS(TSM_X_HANDLER)
#undef TSM_X_HANDLER

/* ---- device jobs (tsm_job.c): a verb that needs the device's DOE mailbox ---- */
struct tsm_job;
/* Runs on the job's coroutine; returns the reply (RESULT or ERROR, NULL on OOM). Every
 * DOE exchange yields to the loop, so state read before one is re-checked after it. */
typedef cbor_item_t *(*tsm_job_fn)(struct tsm_job *j);
struct tsm_job {
    struct tsm *t;
    struct tsm_pdev *p;
    struct tsm_client *client; /* holds a ref while the job runs */
    uint64_t id;               /* the client's request id */
    const char *verb;          /* "device_connect", "tdi_bind", ... */
    tsm_job_fn run;
    struct tsm_job_claim claim;
    /* arguments */
    uint32_t tdi, tvm;
    uint16_t lock_flags;
    bool force;
    struct vtsm_abi_guest_body greq;
    /* the one outstanding exchange (tsm_proxy.c) */
    uint64_t next_seq, seq;
    bool waiting;
    int64_t deadline_ms;
    vtsm_status xst; /* how the wait ended: OK (rsp holds the answer) or why not */
    char xerror[160];
    struct vtsm_buf rsp;
    /* private to tsm_job.c */
    struct tsm_coro *coro;
    cbor_item_t *reply;
    struct tsm_job *next;
};
/* Claim p for a new job of verb (rule PDEV.6: refused with E_BUSY if p has one).
 * what (may be NULL) says which TDIs it owns. The job is not running yet: fill in its
 * arguments, then tsm_job_start() or tsm_job_cancel(). */
vtsm_status tsm_job_new(struct tsm *t, struct tsm_pdev *p, const char *verb, uint64_t id,
                        tsm_job_fn run, const struct tsm_job_claim *what, struct tsm_job **out);
/* Release a job that was never started (the claim goes with it). */
void tsm_job_cancel(struct tsm_job *j);
/* Run j for client c until its first exchange (or its end). On failure j is cancelled. */
vtsm_status tsm_job_start(struct tsm_client *c, struct tsm_job *j);
/* The loop: resume a job whose exchange ended (answer, error, timeout or close). */
void tsm_job_resume(struct tsm_job *j);
/* The loop: end every wait that can end now: exchanges of dead clients (E_CLOSED), past
 * their deadline (E_TIMEOUT) or, when stopping, all of them (E_ABORTED). Returns the
 * nearest deadline still pending (INT64_MAX if none). */
int64_t tsm_job_tick(struct tsm *t, int64_t now_ms);
/* The job whose coroutine is running (NULL on the loop's own stack), and how many run. */
struct tsm_job *tsm_job_current(void);
unsigned tsm_job_count(const struct tsm *t);
/* The device's SPDM channel for TDISP / IDE_KM inside the session. */
struct tsm_tdisp_chan tsm_job_tdisp_chan(struct tsm_pdev *p);
/* An ERROR reply for the job's current failure. */
cbor_item_t *tsm_job_error(struct tsm_job *j, vtsm_status st);

/* ---- crypto off the loop (tsm_offload.c) ---- */
/* Start the crypto worker and route the heavy operations of jobs through it. */
vtsm_status tsm_offload_start(void);
/* The fd the loop polls for finished operations (-1 if not started). */
int tsm_offload_fd(void);
/* Resume the jobs whose operations finished (the loop, on POLLIN of tsm_offload_fd). */
void tsm_offload_complete(void);
/* Are operations still running on the worker? */
bool tsm_offload_busy(void);
/* Wait for every operation in flight and resume its job. */
void tsm_offload_wait(void);
/* Wait, then stop the worker (after this, heavy operations run in place again). */
void tsm_offload_stop(void);

/* ---- daemon (tsm_server.c) ---- */
/* Fill cfg's loop limits with their defaults. */
void tsm_config_defaults(struct tsm_config *cfg);
vtsm_status tsm_init(struct tsm *t, const struct tsm_config *cfg);
vtsm_status tsm_run(struct tsm *t); /* until tsm_stop() / SIGTERM */
void tsm_stop(struct tsm *t);       /* async-signal-safe */
void tsm_fini(struct tsm *t);

#endif
