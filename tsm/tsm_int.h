/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tsmd internals above the object model: the device jobs, the DOE continuation that
 * carries every device exchange through the host, and the ABI server. The object model
 * (tsm_pdev.h, tsm_tdi.h, tsm_tvm.h, tsm_ide.h, tsm_platform.h) includes no CBOR header;
 * CBOR lives here and in the verbs, replies and server.
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
#include "tsm_pdev.h"
#include "tsm_platform.h"
#include "tsm_tdi.h"
#include "tsm_tvm.h"
#include "vtsm_abi.h"
#include "vtsm_buf.h"
#include "vtsm_cert.h"
#include "vtsm_spdm_req.h"
#include "vtsm_err.h"

struct tsm;
struct tsm_event_due;

/* Bounds on what an untrusted host can make tsmd hold. */
#define TSM_MAX_CLIENTS 256 /* open ABI connections */
/* A client with this many device-less jobs (guest requests whose signature is being
 * checked) is not read until one ends: they wait only for the crypto worker, so pausing
 * cannot stall them, and a flood of requests cannot pile up jobs. */
#define TSM_CLIENT_DEVLESS_MAX 8

/* One ABI connection. Reference counted: the client list and every job it started. */
struct tsm_client {
    struct tsm *tsm;
    int fd;
    unsigned refs;
    bool dead;                         /* dropped, or to be dropped by the loop */
    enum vtsm_abi_role role;           /* VTSM_ABI_ROLE_NONE until HELLO */
    struct vtsm_abi_reader reader;     /* requests, decoded as they complete */
    struct vtsm_buf out;               /* encoded frames not yet written (bounded) */
    size_t out_off;                    /* bytes of out already written */
    int64_t accepted_ms;               /* loop clock at accept */
    int64_t active_ms;                 /* last complete request */
    int64_t partial_ms;                /* when the buffered partial frame began; 0 if none */
    int64_t stalled_ms;                /* since when queued output has not moved; 0 if none */
    unsigned jobs;                     /* jobs this client started that still run */
    unsigned devless_jobs;             /* of which device-less (guest requests being checked) */
    bool events;                       /* EVENTS_SUBSCRIBE: EVENT messages go to it */
    char events_dev[VTSM_ABI_DEV_BUF]; /* only this device's ("" = all) */
    struct tsm_client *next;
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
    bool trace;                    /* --trace: one line per DOE object, on stderr */
    /* event policy (tsm_event.c): 0 = off */
    int64_t key_update_interval_ms;  /* --key-update-interval: SPDM key update due */
    int64_t ide_refresh_interval_ms; /* --ide-refresh-interval: IDE key refresh due */
    uint64_t key_update_seq;         /* --key-update-seq: sequence number that asks for one */
};

struct tsm {
    struct tsm_config cfg;
    struct tsm_pdev_registry devs;
    struct tsm_tvm_registry tvms;
    struct tsm_client *clients;
    unsigned nclients, nrole[3]; /* connections, and per enum vtsm_abi_role */
    struct tsm_job *jobs;        /* running jobs */
    unsigned njobs;
    struct tsm_job *ready, *ready_tail; /* started later, not yet run (oldest first) */
    bool stopping;
    int listen_fd;
    int wake_pipe[2]; /* wakes the poll loop from the signal handler */
    /* the event sink (tsm_event.c): subscribed clients, and what was last said per device */
    uint64_t event_seq;        /* EVENT messages sent (their "seq") */
    unsigned subscribers;      /* clients with events set */
    struct tsm_event_due *due; /* per connected device: policy timers */
};

/* ---- DOE continuation (tsm_proxy.c) ---- */
/* The transport the SPDM requester of pdev p uses: every exchange is one DOE_PENDING to
 * the host carrying the running job, and the job yields until the answer. */
struct vtsm_spdm_transport tsm_proxy_transport(struct tsm_pdev *p);
/* vtsm_spdm_trace_fn for --trace: ctx is the device (struct tsm_pdev). */
void tsm_proxy_trace_secured(void *ctx, bool to_device, uint32_t session_id, const uint8_t *msg,
                             size_t len);
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
struct tsm_offload_task; /* tsm_offload.c */
/* Runs on the job's coroutine; returns the reply (RESULT or ERROR, NULL on OOM). Every
 * DOE exchange yields to the loop, so state read before one is re-checked after it. */
typedef cbor_item_t *(*tsm_job_fn)(struct tsm_job *j);
struct tsm_job {
    struct tsm *t;
    struct tsm_pdev *p;        /* NULL for a device-less job (until it takes one) */
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
    /* TDI_RESET: the host's reference values (copies) */
    uint8_t ref_report[VTSM_HASH_MAX], ref_meas[VTSM_HASH_MAX];
    size_t ref_report_len, ref_meas_len;
    int tdi_before;  /* the claimed TDI's state when claimed (-1: none), for tdi_error events */
    bool handed_off; /* a guest job that started a device job, which answers */
    bool on_worker;  /* its crypto runs on the worker now (tsm_offload.c) */
    bool keep_order; /* its crypto queues behind the worker's (tsm_offload.c) */
    struct tsm_offload_task
        *bg;       /* its background task on the worker, until joined (tsm_offload.c) */
    uint64_t gtvm; /* a guest request as it came: envelope TVM, */
    struct vtsm_buf gbody, gsig; /* body and signature (copies, wiped) */
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
    struct tsm_job *ready_next; /* in tsm->ready */
};
/* Claim p for a new job of verb (rule PDEV.6: refused with E_BUSY if p has one); p NULL
 * makes a device-less job (tsm_job_take_device may claim one later).
 * what (may be NULL) says which TDIs it owns. The job is not running yet: fill in its
 * arguments, then tsm_job_start() or tsm_job_cancel(). */
vtsm_status tsm_job_new(struct tsm *t, struct tsm_pdev *p, const char *verb, uint64_t id,
                        tsm_job_fn run, const struct tsm_job_claim *what, struct tsm_job **out);
/* A device-less job (p NULL: a guest request, whose signature check may run on the crypto
 * worker) takes device p once it knows it needs one: the same PDEV.6 check and claim as
 * tsm_job_new. verb becomes the job's name. */
vtsm_status tsm_job_take_device(struct tsm_job *j, struct tsm_pdev *p, const char *verb,
                                const struct tsm_job_claim *what);
/* Release a job that was never started (the claim goes with it). */
void tsm_job_cancel(struct tsm_job *j);
/* Run j for client c until its first exchange (or its end). On failure j is cancelled. */
vtsm_status tsm_job_start(struct tsm_client *c, struct tsm_job *j);
/* Queue device-less job j to run for client c once the loop has read what is readable
 * now (tsm_job_run_ready): guest requests, so that requests arriving together are judged
 * together, one on the crypto worker while the loop runs the next. A queued job runs
 * either on a coroutine or, when that gains nothing, straight on the loop's stack (then
 * tsm_job_current() is NULL and it must not yield). On failure j is cancelled. */
vtsm_status tsm_job_start_later(struct tsm_client *c, struct tsm_job *j);
/* The loop: run the queued jobs, oldest first, until their first yield or their end
 * (those queued meanwhile too). */
void tsm_job_run_ready(struct tsm *t);
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
/* Post fn(arg) to the worker as the current job's background task and go on (false: not
 * posted, run it in place: no worker, not in a job, other jobs in flight, or the job has
 * one already).
 * free_arg frees arg if the job ends without joining. */
bool tsm_offload_begin(vtsm_crypto_work_fn fn, void *arg, void (*free_arg)(void *));
/* Wait (yielding) for j's background task and return its status with its error record
 * (discard: drop the result and free its arg). VTSM_OK if j has none. */
vtsm_status tsm_offload_join(struct tsm_job *j, bool discard);
/* Are operations still running on the worker? */
bool tsm_offload_busy(void);
/* Wait for every operation in flight and resume its job. */
void tsm_offload_wait(void);
/* Wait, then stop the worker (after this, heavy operations run in place again). */
void tsm_offload_stop(void);

/* ---- events (tsm_event.c): TSM-to-host EVENT messages ---- */
enum tsm_event_kind {
    TSM_EVENT_SPDM_KEY_UPDATE_REQUIRED, /* "spdm_key_update_required" (EVENT.1) */
    TSM_EVENT_IDE_KEY_REFRESH_DUE,      /* "ide_key_refresh_due" (EVENT.2) */
    TSM_EVENT_TDI_ERROR,                /* "tdi_error": a TDI entered ERROR (its rule) */
    TSM_EVENT_SESSION_LOST,             /* "session_lost" (PDEV.12) */
    TSM_EVENT_EVIDENCE_CHANGED,         /* "evidence_changed" (TDI.11) */
    TSM_EVENT_TDI_RECOVERED,            /* "tdi_recovered" (TDI.10) */
    TSM_EVENT_COUNT_
};
const char *tsm_event_name(enum tsm_event_kind k);
/* Queue one EVENT on every subscribed host connection (of dev, or of all devices) through
 * its bounded output queue: never blocks; a subscriber whose unread output passes
 * cfg.outq_max is dropped (EVENT.3). tdi < 0: no TDI. detail may be NULL. */
void tsm_event_emit(struct tsm *t, enum tsm_event_kind k, const char *dev, long tdi,
                    enum vtsm_rule rule, const char *detail);
/* The policy timers of a device: restart at connect, SPDM key update, IDE refresh; forget
 * at disconnect / remove. */
void tsm_event_device_reset(struct tsm *t, const struct tsm_pdev *p, bool key_update,
                            bool ide_refresh);
void tsm_event_device_forget(struct tsm *t, const struct tsm_pdev *p);
/* After a device job: the sequence-number check of EVENT.1. */
void tsm_event_check_seq(struct tsm *t, struct tsm_pdev *p);
/* The loop: emit what is due now; returns the nearest next due time (INT64_MAX if none). */
int64_t tsm_event_tick(struct tsm *t, int64_t now_ms);
void tsm_event_fini(struct tsm *t);

/* ---- daemon (tsm_server.c) ---- */
/* Fill cfg's loop limits with their defaults. */
void tsm_config_defaults(struct tsm_config *cfg);
vtsm_status tsm_init(struct tsm *t, const struct tsm_config *cfg);
vtsm_status tsm_run(struct tsm *t); /* until tsm_stop() / SIGTERM */
void tsm_stop(struct tsm *t);       /* async-signal-safe */
void tsm_fini(struct tsm *t);

#endif
