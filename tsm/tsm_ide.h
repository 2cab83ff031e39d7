/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The TSM side of IDE for one device (docs/abi.md sections 1 and 2):
 * IDE_KM requester flows (PCIe 6.x sec. 6.33.3: QUERY, KEY_PROG, K_SET_GO, K_SET_STOP),
 * key refresh, the simulated link check, and the root-port model that mirrors the keys.
 *
 * Keys: every key and IFV comes from vtsm_random, goes to the device only inside KEY_PROG
 * (inside the SPDM session), and is kept by the root-port model only: the RP's TX key of a
 * sub-stream is the device's RX key and the RP's RX key is the device's TX key. No
 * function returns or logs key bytes; every key is wiped (OPENSSL_cleanse) when its set is
 * stopped, on every failure path and on teardown.
 *
 * Errors (exact, with a vtsm_fail detail):
 *   VTSM_E_NOT_FOUND       no such root port (rule PLAT.1)
 *   VTSM_E_NO_STREAM       too few stream IDs free on the root port (rule IDE.1)
 *   VTSM_E_LIMIT           too few key slots free on the root port (rule IDE.2)
 *   VTSM_E_PEER_CAPS       QUERY_RESP without selective IDE / IDE_KM / enough streams
 *   VTSM_E_PEER_NAK        KP_ACK with a non-zero Status (the detail names it)
 *   VTSM_E_PEER_MALFORMED  an ack echoing the wrong stream_id / key_sub_stream / port_index
 *                          (the detail names the field and both values), or a bad message
 *   anything the peer's vendor exchange returns (SPDM, transport) is propagated.
 * Every failure rolls back completely (see each function).
 *
 * Threading: none. One device's IDE state is driven by one flow at a time (setup,
 * refresh, link check, teardown: the caller serialises, as for its SPDM requester); tsmd
 * runs every flow on its event loop's thread, so STATUS reads between two exchanges of a
 * refresh see the committed key set.
 */
#ifndef TSM_IDE_H
#define TSM_IDE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vtsm_buf.h"
#include "vtsm_spdm_req.h"
#include "vtsm_err.h"

#include "tsm_platform.h"

#define TSM_IDE_MAX_STREAMS 8                         /* DEVICE_CONNECT ide_streams 0..8 */
#define TSM_IDE_MAX_ALL     (TSM_IDE_MAX_STREAMS + 1) /* and one Link IDE stream */
#define TSM_IDE_PORT_INDEX  0  /* IDE_KM PortIndex the TSM programs (the device's port 0) */
#define TSM_IDE_CHECK_SIZE  32 /* link check plaintext P */

/*
 * How IDE_KM messages reach the device: send one IDE_KM request payload (from the protocol
 * ID byte on) and return the response payload in rsp. In tsmd this is
 * vtsm_spdm_req_vendor() inside the device's SPDM session (tsm_ide_peer_spdm); tests plug
 * a scripted responder in.
 */
struct tsm_ide_peer {
    vtsm_status (*vendor)(void *ctx, const uint8_t *req, size_t len, struct vtsm_buf *rsp);
    void *ctx;
};
/* The peer that sends through r (vtsm_spdm_req_vendor, inside r's secure session). */
struct tsm_ide_peer tsm_ide_peer_spdm(struct vtsm_spdm_req *r);

/*
 * The simulated link (docs/abi.md section 8.2): send one link frame, return the device's frame
 * in rsp. In tsmd: tsm_proxy_link_exchange with the pdev as ctx.
 */
struct tsm_link_transport {
    vtsm_status (*exchange)(void *ctx, const uint8_t *frame, size_t len, struct vtsm_buf *rsp);
    void *ctx;
};

struct tsm_ide_dev;

/*
 * What the TSM may have left live on a device (rule IDE.4): per device-side Stream ID
 * and key set, the SD bits (bit sub*2+dir; sub PR 0, NPR 1, CPL 2; dir RX 0, TX 1) it
 * sent a KEY_PROG or K_SET_GO for and could not stop (the host that carried the session
 * vanished, the session was lost). It belongs to the device, not to a connect: tsmd keeps
 * one per device across connects, and the next setup stops what it names first.
 */
struct tsm_ide_leftover {
    uint8_t mask[256][2];
};

/*
 * What the device's QUERY_RESP says about its port 0 (PCIe 6.x sec. 7.9.26), as the TSM
 * uses it: the IDE Capability register and the register blocks after it.
 */
struct tsm_ide_devcaps {
    uint32_t ide_cap;     /* IDE Capability register as received */
    bool link;            /* Link IDE Stream Supported */
    unsigned link_tcs;    /* Link IDE register blocks (one per TC), 0 without Link IDE */
    unsigned sel_streams; /* Selective IDE Stream register blocks */
    unsigned addr_assoc;  /* address association blocks of the poorest selective stream */
    bool tee_limited;     /* TEE-Limited Stream Supported */
    bool lenient;         /* the blocks contradicted the capability, accepted (rule IDE.5) */
    bool not_reported;    /* lenient, and the capability was 0: assumed, not reported */
};

#define TSM_IDE_MAX_RANGES 15          /* address association blocks per selective stream */
#define TSM_IDE_RANGE_GRAN 0x100000ull /* address association: bits 63:20 */

/* One memory range of a stream's address association (base and limit inclusive,
 * 1 MiB granular). */
struct tsm_ide_range {
    uint64_t base, limit;
};

/* Connect options of the IDE part. */
struct tsm_ide_opts {
    unsigned nstreams; /* 1..TSM_IDE_MAX_STREAMS selective streams */
    bool lenient;      /* ide_lenient: accept a QUERY_RESP whose blocks contradict its
                        * capability (rule IDE.5), logging the deviation */
    bool tee;          /* a TEE-IO connect (not ide_only): streams are marked TEE-limited
                        * when the device supports it */
    unsigned n_ids;    /* host-allocated stream IDs (nstreams of them), 0: the TSM allocates */
    uint8_t ids[TSM_IDE_MAX_STREAMS];
    bool link; /* a Link IDE stream (TC 0) as well (rule IDE.11): its Stream ID is
                * allocated on the root port, written to the device's Link IDE
                * Stream Control over link_tr (frame kind 6), then keyed */
    const struct tsm_link_transport *link_tr;
    unsigned n_ranges; /* address association ranges the host described (rule IDE.10) */
    struct tsm_ide_range ranges[TSM_IDE_MAX_RANGES];
};

/*
 * Set up nstreams (1..TSM_IDE_MAX_STREAMS) selective IDE streams to the device on root port
 * root_port:
 *   1. QUERY(PortIndex 0) -> QUERY_RESP: selective IDE, IDE_KM and >= nstreams selective
 *      streams (else VTSM_E_PEER_CAPS);
 *   1a. stale keys (rule IDE.4): every Stream ID that left names, and every selective
 *      stream QUERY_RESP shows enabled or secure (Control bit 0 / Status state Secure,
 *      its ID in Control bits 31:24), gets K_SET_STOP for what is recorded (both key sets,
 *      every sub-stream and direction, for a stream only the device reports) before any
 *      KEY_PROG; the step is logged under IDE.4. A stop that cannot reach the device
 *      (transport, session) fails the setup and left keeps it; one the device answers
 *      (acknowledged, or refused: it holds no such stream) leaves left;
 *   2. allocate nstreams stream IDs and 2 key slots each on the root port;
 *   3. per stream, key set K0, sub-streams PR, NPR, CPL x directions RX, TX: fresh key and
 *      IFV, KEY_PROG, KP_ACK (Status 0, exact echo);
 *   4. per stream, K_SET_GO for every sub-stream, RX ones before TX ones; K_GOSTOP_ACK echo.
 * On failure: K_SET_STOP for every sub-stream/direction that was sent a KEY_PROG (best effort:
 * errors are logged and ignored; after a transport error no more messages are sent), stream
 * IDs and slots freed, all keys wiped, *out untouched. On success the caller owns *out
 * (tsm_ide_teardown).
 * left (may be NULL: nothing known, nothing recorded) is borrowed for the life of *out:
 * every key set this setup, a refresh or the teardown could not stop is added to it.
 */
vtsm_status tsm_ide_setup(struct tsm_platform *pf, uint32_t root_port,
                          const struct tsm_ide_peer *peer, unsigned nstreams,
                          struct tsm_ide_leftover *left, struct tsm_ide_dev **out);
/*
 * The same with every option. QUERY_RESP is read whole (bounded by vtsm_idekm): the
 * counts of Link and Selective IDE register blocks follow from the IDE Capability
 * register and each selective block's own capability. Blocks missing
 * (VTSM_E_PEER_TRUNCATED) or bytes after the declared blocks (VTSM_E_PEER_MALFORMED) -
 * a responder whose blocks contradict its capability - are refused under rule IDE.5;
 * with o->lenient the bytes after the blocks are ignored and the deviation logged under
 * IDE.5, and a capability of 0 followed by such bytes (the DMTF sample responder) is
 * taken as not reported: selective IDE with IDE_KM and o->nstreams streams is assumed.
 * The device's capability (tsm_ide_devcaps) is kept for STATUS and the checks.
 */
vtsm_status tsm_ide_setup_ex(struct tsm_platform *pf, uint32_t root_port,
                             const struct tsm_ide_peer *peer, const struct tsm_ide_opts *o,
                             struct tsm_ide_leftover *left, struct tsm_ide_dev **out);

/*
 * Key refresh (IDE_REFRESH): 2 more key slots per stream are taken (VTSM_E_LIMIT, rule
 * IDE.2, before any message), then for every stream the other key set is programmed
 * (6 x KEY_PROG with fresh keys), then every stream's new set is started (K_SET_GO, RX
 * before TX); only then is the old set stopped on every stream (K_SET_STOP, TX before RX),
 * its keys wiped, its slots freed, and each stream's refresh counter incremented; link
 * counters of the new set start at 0.
 * A failure while programming or starting the new set: K_SET_STOP of the new set (best
 * effort), its keys wiped, its slots freed; the old set stays live and nothing else changes.
 * A K_SET_STOP of the old set that the device does not acknowledge properly happens after
 * both ends run the new set: the refresh is committed anyway (new set live, old keys wiped)
 * and the first such error is returned.
 */
vtsm_status tsm_ide_refresh(struct tsm_ide_dev *d, const struct tsm_ide_peer *peer);

/*
 * IDE_LINK_CHECK (docs/abi.md section 8.2), per stream: a random 32-byte P protected with the
 * RP's TX key (sub-stream PR, live key set, next TX counter) in a kind 1 frame, sent over
 * link; the answer must be a kind 2 frame for the same stream / key set / sub-stream with
 * a counter not below the next expected RX counter, which must verify with the RP's RX key
 * and hold P (CRYPTO_memcmp) - or a kind 3 frame. Fills out->s[i] for stream i:
 *   kind 3                       -> false, false
 *   kind 2, MAC fails / wrong ids -> true (the device says it decrypted), false
 *   kind 2, MAC ok, P differs    -> false, true
 *   kind 2, MAC ok, P matches    -> true, true
 * Errors: transport errors propagated; a frame that does not decode (VTSM_E_PEER_TRUNCATED /
 * _MALFORMED / _OVERSIZED) or a kind 1 answer (VTSM_E_PEER_MALFORMED) fail the whole check.
 * out->n counts the streams checked, also after a failure.
 */
struct tsm_ide_check {
    unsigned n;
    struct {
        uint8_t stream_id, key_set;
        bool rp_to_device, device_to_rp;
    } s[TSM_IDE_MAX_ALL];
};
vtsm_status tsm_ide_link_check(struct tsm_ide_dev *d, const struct tsm_link_transport *link,
                               struct tsm_ide_check *out);

/*
 * Tear down (device_reclaim): with a peer, K_SET_STOP every sub-stream of every live key
 * set (TX before RX; best effort, errors logged; after a transport error no more
 * messages); peer NULL sends nothing. Then stream IDs and key slots are freed, every key
 * wiped, d freed. NULL d is fine.
 */
void tsm_ide_teardown(struct tsm_ide_dev *d, const struct tsm_ide_peer *peer);

/*
 * RID and address association on both ends (after tsm_ide_setup): the root-port model's
 * Selective IDE Stream registers of every stream are set - RID Association 1 = RID limit
 * << 8, RID Association 2 = RID base << 8 | Valid, the device's own RID from QUERY_RESP;
 * the address association blocks not valid (no ranges are described) - and the same
 * registers are written to the device's register block of that Stream ID as
 * configuration writes down the simulated link (frame kind 4, carried by the host like
 * every link frame). Then QUERY again, inside the SPDM session: a stream counts as
 * associated on the device end only if its block reads back what was written.
 * Best effort: a host that carries no link frames, or a device that refuses, leaves the
 * device end unassociated (logged, STATUS device_assoc false); only a failure of the
 * SPDM session (the QUERY) is returned.
 */
vtsm_status tsm_ide_program_assoc(struct tsm_ide_dev *d, const struct tsm_ide_peer *peer,
                                  const struct tsm_link_transport *link);

/* STATUS / RESULT: the device's IDE streams (never key bytes). E_INVAL for NULLs. */
struct tsm_ide_status {
    uint32_t root_port;
    struct tsm_ide_devcaps caps; /* the device's, from QUERY_RESP */
    unsigned stale_stopped;      /* K_SET_STOPs of stale key sets at setup (rule IDE.4) */
    unsigned n;
    struct {
        uint8_t stream_id, key_set;
        uint32_t refreshes;
        bool link; /* a Link IDE stream (else selective) */
        /* the root-port model's Selective IDE Stream registers for it */
        uint8_t tc;                   /* traffic class (Control bits 21:19) */
        uint16_t rid_base, rid_limit; /* RID association: the device's own RID */
        bool enabled, tee_limited;
        uint32_t rid1, rid2; /* RID Association registers of the root-port model */
        unsigned n_ranges;   /* address association blocks valid (the host's ranges) */
        struct tsm_ide_range ranges[TSM_IDE_MAX_RANGES];
        bool device_assoc; /* the device's block read back the same (QUERY_RESP) */
    } s[TSM_IDE_MAX_ALL];
};
vtsm_status tsm_ide_status(const struct tsm_ide_dev *d, struct tsm_ide_status *out);

/* The device's first stream ID (TDISP LOCK_INTERFACE default_stream_id); 0 for NULL. */
uint8_t tsm_ide_first_stream(const struct tsm_ide_dev *d);
/* Number of streams (0 for NULL) and the i-th stream's ID. */
unsigned tsm_ide_stream_count(const struct tsm_ide_dev *d);
uint8_t tsm_ide_stream_id(const struct tsm_ide_dev *d, unsigned i);

#endif
