/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private to the SPDM requester: the requester object, the one exchange path every
 * message takes (DOE framing, DSP0277 secured wrapping, ERROR / ResponseNotReady), and
 * small helpers shared by the per-message files (req_*.c).
 */
#ifndef VTSM_SPDM_REQ_INT_H
#define VTSM_SPDM_REQ_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vtsm_buf.h"
#include "vtsm_guard.h"
#include "vtsm_spdm_req.h"

/* DSP0274 1.2+: MinDataTransferSize. */
#define VTSM__SPDM_MIN_DTS 42
/* DSP0274: OpaqueDataLength shall not exceed 1024. */
#define VTSM__SPDM_OPAQUE_MAX 1024
/* ResponseNotReady waits 2^RDTExponent us; the simulator never sleeps longer than this. */
#define VTSM__NOT_READY_SLEEP_CAP_US 100000u
/* Upper bound on RESPOND_IF_READY attempts we accept in opts. */
#define VTSM__NOT_READY_RETRIES_MAX 64u
/* AlgStruct AlgCount byte: FixedAlgCount = 2 (bits 7:4), ExtAlgCount = 0 (bits 3:0). */
#define VTSM__ALG_COUNT_FIXED2 0x20
/* SPDM 1.2 header + fixed parts. */
#define VTSM__SPDM_HDR     4
#define VTSM__CERT_RSP_HDR 8 /* CERTIFICATE: header, PortionLength, RemainderLength */
/* GET_MEASUREMENTS SlotIDParam / MEASUREMENTS Param2 slot field (bits 3:0). */
#define VTSM__SLOT_MASK 0x0F
/* KEY_EXCHANGE SessionPolicy bit 0 (1.2+). */
#define VTSM__SESSION_POLICY_TERMINATION 0x01

enum vtsm__conn {
    VTSM__CONN_NONE = 0,   /* nothing negotiated (or a RequestResynch wiped it) */
    VTSM__CONN_NEGOTIATED, /* VCA done: version, capabilities, algorithms */
};

/* What we learned about one certificate slot. */
struct vtsm__slot {
    bool digest_valid; /* set by GET_DIGESTS for a provisioned slot */
    uint8_t digest[VTSM_HASH_MAX];
    bool chain_valid; /* raw + chain hold a received, hashed and parsed chain */
    struct vtsm_buf raw;
    struct vtsm_certchain chain;
};

struct vtsm_spdm_req {
    struct vtsm_spdm_req_opts opts;
    struct vtsm_spdm_transport tp;
    vtsm_spdm_trace_fn trace; /* vtsm_spdm_req_set_trace */
    void *trace_ctx;
    struct vtsm_spdm_info info;
    enum vtsm__conn conn;
    uint8_t peer_error;      /* ErrorCode of an SPDM ERROR answering the last request, 0 if none */
    uint8_t peer_error_data; /* and its ErrorData */

    /* Wire values selected by ALGORITHMS (one bit each). */
    uint32_t asym_bit;
    uint32_t hash_bit;
    uint16_t dhe_bit;
    uint16_t aead_bit;
    uint16_t req_asym_bit; /* 0: no requester key (no mutual auth) */
    uint16_t ks_bit;
    uint8_t other_params; /* OtherParamsSelection */
    uint8_t meas_spec;    /* MeasurementSpecificationSel */
    size_t hash_len;      /* size of the negotiated BaseHashAlgo */

    /* message_a (VCA): GET_VERSION .. ALGORITHMS exactly as exchanged. */
    struct vtsm_buf vca;

    bool digests_fetched;        /* a DIGESTS response was accepted on this connection */
    uint8_t supported_slot_mask; /* DIGESTS 1.3 Param1 (1.2: = provisioned) */
    struct vtsm__slot slot[SPDM_MAX_SLOTS];

    /* Secure session. keys_ready is set from KEY_EXCHANGE_RSP on (handshake keys) and
     * stays set with the data keys; info.session_active only after FINISH_RSP. */
    bool keys_ready;
    struct vtsm_spdm_ks ks;
    uint8_t session_slot;
    uint8_t heartbeat_period;
    uint8_t meas_summary[VTSM_HASH_MAX];
    size_t meas_summary_len;
    struct vtsm_buf kex_transcript; /* VCA || Ct || KEY_EXCHANGE || KEY_EXCHANGE_RSP..Sig */
    /* an ephemeral key made ahead for the next KEY_EXCHANGE (vtsm_spdm_req_give_dhe) */
    struct vtsm_dhe *next_dhe;
    enum vtsm_dhe_group next_dhe_group;
    uint8_t next_dhe_pub[VTSM_DHE_PUB_MAX];
    uint8_t kex_sig[VTSM_SIG_MAX];
    size_t kex_sig_len;

    /* M1/M2 message B (req_challenge.c): GET_DIGESTS / DIGESTS and GET_CERTIFICATE /
     * CERTIFICATE exchanged in the clear since it last restarted; the requests DSP0274
     * names (vtsm_spdm_resets_m1m2) and any failed exchange in the clear restart it
     * (vtsm__req_xfer), as does CHALLENGE_AUTH. */
    struct vtsm_buf msg_b;
    /* CHALLENGE evidence: M1/M2 as signed and the signature (empty if none succeeded). */
    struct vtsm_buf chal_transcript;
    uint8_t chal_sig[VTSM_SIG_MAX];
    size_t chal_sig_len;

    /* I/O scratch: tx = DOE request, rx = DOE response, seal = secured payload,
     * rsp = the SPDM response being parsed (decrypted for secured; wiped). */
    struct vtsm_buf tx, rx, seal, rsp;
    size_t rsp_slack;     /* bytes of DOE padding the plain response may carry (0..3) */
    uint8_t chunk_handle; /* Handle of the next CHUNK_SEND transfer */
};

/*
 * Exchange one SPDM request and return the response to parse (header included, rd at
 * offset 0). secured selects DSP0277 wrapping with the current session keys (DOE type 2);
 * otherwise DOE type 1. Checks the DOE header, the response SPDMVersion (= the request's),
 * turns ERROR into E_PEER_ERROR (naming the code and the request), follows
 * ResponseNotReady with RESPOND_IF_READY up to opts.not_ready_retries, and requires the
 * response code `expect`. The bytes stay valid until the next exchange.
 *
 * A failure of the secured layer itself (transport, DOE framing, MAC, session ID) drops
 * the session: its sequence numbers can no longer be trusted to match the device's.
 */
vtsm_status vtsm__req_xfer(struct vtsm_spdm_req *r, bool secured, const uint8_t *req,
                           size_t req_len, uint8_t expect, struct vtsm_rd *rsp);

/* One message out, one in, nothing else (no ERROR handling): r->rsp holds the response
 * (decrypted if secured), r->rsp_slack its possible DOE padding. */
vtsm_status vtsm__req_xfer_once(struct vtsm_spdm_req *r, bool secured, const uint8_t *req,
                                size_t req_len);
/* Chunking (req_chunk.c, DSP0274 1.2+ with CHUNK_CAP on both sides). */
bool vtsm__req_chunking(const struct vtsm_spdm_req *r);
/* Send the large request req in CHUNK_SEND chunks that fit the device's DataTransferSize;
 * on success r->rsp holds ResponseToLargeRequest from the last CHUNK_SEND_ACK. */
vtsm_status vtsm__req_chunk_send(struct vtsm_spdm_req *r, bool secured, const uint8_t *req,
                                 size_t len);
/* Fetch the large response announced by ERROR(LargeResponse) with Handle handle by
 * CHUNK_GET; on success r->rsp holds it (exact, r->rsp_slack 0). */
vtsm_status vtsm__req_chunk_get(struct vtsm_spdm_req *r, bool secured, uint8_t ver, uint8_t handle);
/* Largest MaxSPDMmsgSize we accept in opts. */
#define VTSM__LARGE_MSG_MAX 0x100000u

/* The response parse consumed everything but DOE padding (plain: up to 3 zero bytes,
 * secured: nothing). what names the message. */
vtsm_status vtsm__req_end(const struct vtsm_spdm_req *r, const struct vtsm_rd *rd,
                          const char *what);

/* Wipe the session keys and transcript state; the session is gone. */
void vtsm__req_session_drop(struct vtsm_spdm_req *r);
/* Free an ephemeral key given ahead and not used. */
void vtsm__req_drop_next_dhe(struct vtsm_spdm_req *r);
/* Forget everything negotiated (GET_VERSION restarts, RequestResynch). */
void vtsm__req_conn_reset(struct vtsm_spdm_req *r);

/* Message and error names for details. */
const char *vtsm__spdm_code_name(uint8_t code);
const char *vtsm__spdm_error_name(uint8_t code);

/* DSP0274 "General opaque data format" (OpaqueDataFmt1) structural check: TotalElements,
 * each element's ID / VendorLen / OpaqueElementDataLen, zero padding to 4 bytes, and
 * nothing left over. */
vtsm_status vtsm__opaque_check(const uint8_t *p, size_t len, const char *what);

/* The tail CHALLENGE_AUTH and MEASUREMENTS share before their Signature: OpaqueDataLength
 * (<= 1024), OpaqueData (vtsm__opaque_check) and, at 1.3+ (req_ctx not NULL), the echo
 * of the request's RequesterContext (else E_PEER_NONCE). msg names the response, req
 * the request. */
vtsm_status vtsm__rd_opaque_and_context(struct vtsm_rd *rd, const char *msg, const char *req,
                                        const uint8_t req_ctx[SPDM_REQUESTER_CONTEXT_SIZE]);

/* Per-message steps used by vtsm_spdm_req_init_connection (req_version.c etc.). */
vtsm_status vtsm__req_get_version(struct vtsm_spdm_req *r);
vtsm_status vtsm__req_get_capabilities(struct vtsm_spdm_req *r);
vtsm_status vtsm__req_negotiate_algorithms(struct vtsm_spdm_req *r);

/* Reader steps that name the field that was short. */
#define VTSM__RD(expr, msg, field)                                                                 \
    do {                                                                                           \
        if ((expr) != VTSM_OK)                                                                     \
            return vtsm_fail(VTSM_E_PEER_TRUNCATED, "%s truncated at %s", (msg), (field));         \
    } while (0)

#define VTSM__RD_GOTO(expr, msg, field)                                                            \
    do {                                                                                           \
        if ((expr) != VTSM_OK) {                                                                   \
            st = vtsm_fail(VTSM_E_PEER_TRUNCATED, "%s truncated at %s", (msg), (field));           \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

/* Exactly one bit set. */
static inline bool vtsm__onehot(uint32_t v)
{
    return v != 0 && (v & (v - 1)) == 0;
}

#endif
