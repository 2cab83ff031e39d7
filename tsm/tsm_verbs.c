/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Host verbs: device_add, device_remove, device_connect, device_reclaim, status.
 *
 * device_connect and device_reclaim need DOE exchanges, so each runs as a job that owns
 * the device's requester while the device is connecting / reclaiming. The state table
 * (tsm_pdev.c) and the job claim make that ownership exclusive: a second verb on the same
 * device is refused (PDEV.6) while verbs on other devices proceed concurrently.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "tsm_int.h"
#include "tsm_reply.h"
#include "vtsm_doe.h"
#include "vtsm_guard.h"
#include "vtsm_log.h"
#include "vtsm_spdm_meas.h"

/* ---------------------------------------------------------------- helpers */

static const char *version_name(uint8_t v)
{
    switch (v) {
    case VTSM_SPDM_V12:
        return "1.2";
    case VTSM_SPDM_V13:
        return "1.3";
    case VTSM_SPDM_V14:
        return "1.4";
    default:
        return "unknown";
    }
}

/* The report of a device: what the TSM learnt and verified. Fields absent when unknown. */
static vtsm_status put_report(struct tsm_pdev *p, cbor_item_t *m)
{
    VTSM_GUARD(vtsm_abi_put_tstr(m, VTSM_ABI_K_DEV, p->name));
    VTSM_GUARD(vtsm_abi_put_uint(m, VTSM_ABI_K_ROOT_PORT, p->root_port));
    if (!p->spdm)
        return VTSM_OK;
    const struct vtsm_spdm_info *info = vtsm_spdm_req_info(p->spdm);
    if (info->version == 0)
        return VTSM_OK;
    VTSM_GUARD(vtsm_abi_put_tstr(m, VTSM_ABI_K_VERSION, version_name(info->version)));
    cbor_item_t *alg = vtsm_abi_map_new();
    VTSM_GUARD(vtsm_abi_put_item(m, VTSM_ABI_K_ALGORITHMS, alg));
    VTSM_GUARD(vtsm_abi_put_tstr(alg, VTSM_ABI_K_ASYM, vtsm_asym_name(info->asym)));
    VTSM_GUARD(vtsm_abi_put_tstr(alg, VTSM_ABI_K_HASH, vtsm_hash_name(info->hash)));
    VTSM_GUARD(vtsm_abi_put_tstr(alg, VTSM_ABI_K_DHE, vtsm_dhe_name(info->dhe)));
    VTSM_GUARD(vtsm_abi_put_tstr(alg, VTSM_ABI_K_AEAD, vtsm_aead_name(info->aead)));
    VTSM_GUARD(vtsm_abi_put_tstr(alg, VTSM_ABI_K_MEAS_HASH,
                                 vtsm_spdm_meas_hash_name(info->meas_hash_algo)));
    VTSM_GUARD(vtsm_abi_put_uint(m, VTSM_ABI_K_CAPABILITIES, info->rsp_caps));
    if (info->chunk_sends || info->chunk_gets) {
        cbor_item_t *ch = vtsm_abi_map_new();
        VTSM_GUARD(vtsm_abi_put_item(m, VTSM_ABI_K_CHUNKED, ch));
        VTSM_GUARD(vtsm_abi_put_uint(ch, VTSM_ABI_K_REQUESTS, info->chunk_sends));
        VTSM_GUARD(vtsm_abi_put_uint(ch, VTSM_ABI_K_RESPONSES, info->chunk_gets));
    }
    if (info->session_active) {
        VTSM_GUARD(vtsm_abi_put_uint(m, VTSM_ABI_K_SESSION_ID, info->session_id));
        VTSM_GUARD(vtsm_abi_put_uint(m, VTSM_ABI_K_KEY_UPDATES, info->key_updates));
        VTSM_GUARD(vtsm_abi_put_uint(m, VTSM_ABI_K_HEARTBEAT_PERIOD, info->heartbeat_period));
    }
    VTSM_GUARD(vtsm_abi_put_uint(m, VTSM_ABI_K_SLOT, p->opts.slot));

    const struct vtsm_buf *chain = vtsm_spdm_req_chain_raw(p->spdm, p->opts.slot);
    if (chain && chain->len) {
        VTSM_GUARD(vtsm_abi_put_bytes(m, VTSM_ABI_K_CERT_CHAIN, chain->data, chain->len));
        VTSM_GUARD(vtsm_abi_put_bytes(m, VTSM_ABI_K_CERT_CHAIN_DIGEST, p->ev.chain_digest,
                                      p->ev.chain_digest_len));
        cbor_item_t *tr = vtsm_abi_map_new();
        VTSM_GUARD(vtsm_abi_put_item(m, VTSM_ABI_K_TRUST, tr));
        VTSM_GUARD(vtsm_abi_put_bool(tr, VTSM_ABI_K_TRUSTED, p->ev.trusted));
        VTSM_GUARD(vtsm_abi_put_tstr(tr, VTSM_ABI_K_REASON, p->ev.trust_reason));
    }
    const struct vtsm_buf *kt = vtsm_spdm_req_kex_transcript(p->spdm);
    size_t ks_len = 0;
    const uint8_t *ks = vtsm_spdm_req_kex_signature(p->spdm, &ks_len);
    if (kt && kt->len && ks && ks_len) {
        cbor_item_t *kex = vtsm_abi_map_new();
        VTSM_GUARD(vtsm_abi_put_item(m, VTSM_ABI_K_KEX, kex));
        VTSM_GUARD(vtsm_abi_put_bytes(kex, VTSM_ABI_K_TRANSCRIPT, kt->data, kt->len));
        VTSM_GUARD(vtsm_abi_put_bytes(kex, VTSM_ABI_K_SIGNATURE, ks, ks_len));
    }
    const struct vtsm_buf *ct = vtsm_spdm_req_challenge_transcript(p->spdm);
    size_t cs_len = 0;
    const uint8_t *cs = vtsm_spdm_req_challenge_signature(p->spdm, &cs_len);
    if (ct && ct->len && cs && cs_len) {
        cbor_item_t *chal = vtsm_abi_map_new();
        VTSM_GUARD(vtsm_abi_put_item(m, VTSM_ABI_K_CHALLENGE, chal));
        VTSM_GUARD(vtsm_abi_put_bytes(chal, VTSM_ABI_K_TRANSCRIPT, ct->data, ct->len));
        VTSM_GUARD(vtsm_abi_put_bytes(chal, VTSM_ABI_K_SIGNATURE, cs, cs_len));
    }
    if (p->ide) {
        struct tsm_ide_status ide;
        VTSM_GUARD(tsm_ide_status(p->ide, &ide));
        VTSM_GUARD(tsm_reply_put_ide(m, &ide));
    }
    if (p->ev.have_meas)
        VTSM_GUARD(tsm_reply_put_meas(m, &p->ev.meas, false));
    return VTSM_OK;
}

/* ---------------------------------------------------------------- DOE discovery */

/* PCIe 6.30.1.1: walk the discovery table; CMA/SPDM and secured CMA/SPDM must be there. */
static vtsm_status doe_discover(struct tsm_pdev *p)
{
    struct vtsm_spdm_transport tr = tsm_proxy_transport(p);
    struct vtsm_buf rsp = {0};
    bool spdm = false, secured = false;
    uint8_t index = 0;
    vtsm_status st = VTSM_OK;

    for (int n = 0; n < 256; n++) {
        uint8_t payload[4], obj[16];
        size_t obj_len = sizeof(obj);
        struct vtsm_doe_obj o;
        struct vtsm_doe_disc_rsp d;
        vtsm_doe_disc_req_payload(index, payload);
        VTSM_GUARD_GOTO(vtsm_doe_build(VTSM_DOE_VENDOR_PCISIG, VTSM_DOE_TYPE_DISCOVERY, payload,
                                       sizeof(payload), obj, &obj_len));
        VTSM_GUARD_GOTO(tr.exchange(tr.ctx, obj, obj_len, &rsp));
        VTSM_GUARD_GOTO(vtsm_doe_parse(rsp.data, rsp.len, &o));
        VTSM_GUARD_GOTO(vtsm_doe_disc_rsp_parse(&o, &d));
        if (d.vendor_id == VTSM_DOE_VENDOR_PCISIG && d.type == VTSM_DOE_TYPE_SPDM)
            spdm = true;
        if (d.vendor_id == VTSM_DOE_VENDOR_PCISIG && d.type == VTSM_DOE_TYPE_SECURED_SPDM)
            secured = true;
        if (d.next_index == 0)
            break;
        VTSM_ENSURE_GOTO(d.next_index > index, VTSM_E_PEER_MALFORMED,
                         "DOE discovery: next index %u does not advance past %u", d.next_index,
                         index);
        index = d.next_index;
    }
    VTSM_ENSURE_GOTO(spdm && secured, VTSM_E_PEER_CAPS,
                     "DOE discovery: the mailbox lacks %s (PCIe 6.31 CMA/SPDM over DOE)",
                     !spdm ? "CMA/SPDM (type 1)" : "secured CMA/SPDM (type 2)");
out:
    vtsm_buf_free(&rsp);
    return st;
}

/* ---------------------------------------------------------------- trust */

/*
 * Judging a device's certificate chain against the TSM's trust store. On the crypto
 * worker as the job's background task when one runs: the connect goes on with
 * KEY_EXCHANGE, FINISH and GET_MEASUREMENTS meanwhile and uses the verdict after them
 * (docs/architecture.md, "device_connect"). The task works on its own copy of the chain
 * bytes and its own references to the parsed certificates (the process's certificate
 * cache is locked, and OpenSSL's X509, EVP_PKEY and X509_STORE objects may be read by
 * two threads at once: verifying against one shared store is how OpenSSL's servers use
 * it), so nothing it uses goes away if the job fails meanwhile.
 */
struct trust_check {
    const struct vtsm_trust *trust;
    enum vtsm_hash_alg hash;
    enum vtsm_asym_alg asym;
    uint8_t *raw; /* a copy of the SPDM chain */
    size_t len;
    char reason[sizeof(((struct tsm_evidence *)0)->trust_reason)];
};

static void trust_check_free(void *arg)
{
    struct trust_check *c = arg;
    if (c) {
        free(c->raw);
        free(c);
    }
}

static vtsm_status trust_check_run(void *arg)
{
    struct trust_check *c = arg;
    struct vtsm_certchain chain = {0};
    vtsm_status st = vtsm_certchain_parse(c->raw, c->len, c->hash, c->asym, &chain);
    if (st == VTSM_OK)
        st = vtsm_trust_verify(c->trust, &chain, c->reason, sizeof(c->reason));
    else
        snprintf(c->reason, sizeof(c->reason), "%s", vtsm_err_detail());
    vtsm_certchain_free(&chain);
    return st;
}

/* Start judging slot's chain: *out is the check, posted to the worker (*posted) or, if
 * it could not be, to run in place at trust_finish. */
static vtsm_status trust_begin(struct tsm_pdev *p, uint8_t slot, struct trust_check **out,
                               bool *posted)
{
    const struct vtsm_buf *raw = vtsm_spdm_req_chain_raw(p->spdm, slot);
    const struct vtsm_spdm_info *info = vtsm_spdm_req_info(p->spdm);
    struct trust_check *c = calloc(1, sizeof(*c));
    VTSM_ENSURE(c != NULL, VTSM_E_NOMEM, "trust check");
    c->raw = malloc(raw->len ? raw->len : 1);
    if (!c->raw) {
        free(c);
        return vtsm_fail(VTSM_E_NOMEM, "trust check");
    }
    memcpy(c->raw, raw->data, raw->len);
    c->len = raw->len;
    c->trust = p->tsm->cfg.trust;
    c->hash = info->hash;
    c->asym = info->asym;
    *out = c;
    *posted = tsm_offload_begin(trust_check_run, c, trust_check_free);
    return VTSM_OK;
}

/* The verdict of a check from trust_begin (which it frees): trusted or not, and why. */
static void trust_finish(struct tsm_job *j, struct trust_check *c, bool posted, bool *trusted,
                         char *reason, size_t reason_len)
{
    vtsm_status st = posted ? tsm_offload_join(j, false) : trust_check_run(c);
    *trusted = st == VTSM_OK;
    snprintf(reason, reason_len, "%s", *trusted ? "chain verified to a trusted root" : c->reason);
    vtsm_err_clear(); /* an untrusted chain is a verdict, not the verb's error */
    trust_check_free(c);
}

/* The TSM's ephemeral key for KEY_EXCHANGE, made on the worker while the certificate
 * exchanges are in flight (the group is known from ALGORITHMS on). */
struct dhe_ahead {
    enum vtsm_dhe_group group;
    struct vtsm_dhe *dhe;
    uint8_t pub[VTSM_DHE_PUB_MAX];
};

static void dhe_ahead_free(void *arg)
{
    struct dhe_ahead *d = arg;
    if (d) {
        vtsm_dhe_free(d->dhe);
        OPENSSL_cleanse(d, sizeof(*d));
        free(d);
    }
}

static vtsm_status dhe_ahead_run(void *arg)
{
    struct dhe_ahead *d = arg;
    return vtsm_dhe_generate(d->group, &d->dhe, d->pub);
}

/* Post the key's generation; NULL if it was not posted (KEY_EXCHANGE then makes one). */
static struct dhe_ahead *dhe_ahead_begin(struct tsm_pdev *p)
{
    struct dhe_ahead *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->group = vtsm_spdm_req_info(p->spdm)->dhe;
    if (!tsm_offload_begin(dhe_ahead_run, d, dhe_ahead_free)) {
        free(d);
        return NULL;
    }
    return d;
}

/* Wait for it and hand it to the requester (a failure only means KEY_EXCHANGE makes its
 * own). */
static void dhe_ahead_finish(struct tsm_pdev *p, struct dhe_ahead *d)
{
    if (!d)
        return;
    if (tsm_offload_join(tsm_job_current(), false) == VTSM_OK) {
        vtsm_spdm_req_give_dhe(p->spdm, d->group, d->dhe, d->pub);
        d->dhe = NULL;
    }
    vtsm_err_clear();
    dhe_ahead_free(d);
}

/* ---------------------------------------------------------------- connect */

static vtsm_status do_connect(struct tsm_pdev *p)
{
    struct tsm *t = p->tsm;
    struct vtsm_spdm_req_opts o;
    uint8_t mask = 0;
    uint8_t digests[SPDM_MAX_SLOTS][VTSM_HASH_MAX];
    uint8_t slot = p->opts.slot;

    VTSM_GUARD(doe_discover(p));

    vtsm_spdm_req_opts_default(&o);
    if (p->opts.min_version)
        o.min_version = p->opts.min_version;
    if (p->opts.max_version)
        o.max_version = p->opts.max_version;
    if (p->opts.base_asym)
        o.base_asym = p->opts.base_asym;
    if (p->opts.base_hash)
        o.base_hash = p->opts.base_hash;
    struct vtsm_spdm_transport tr = tsm_proxy_transport(p);
    VTSM_GUARD(vtsm_spdm_req_new(&o, &tr, &p->spdm));
    if (p->tsm->cfg.trace)
        vtsm_spdm_req_set_trace(p->spdm, tsm_proxy_trace_secured, p);

    VTSM_GUARD(vtsm_spdm_req_init_connection(p->spdm));
    struct dhe_ahead *ahead = dhe_ahead_begin(p); /* job_main joins it if we fail first */
    VTSM_GUARD(vtsm_spdm_req_get_digests(p->spdm, &mask, digests));
    VTSM_ENSURE(mask & (1u << slot), VTSM_E_PEER_CAPS,
                "certificate slot %u is not provisioned on %s (DIGESTS slot mask 0x%02x)", slot,
                p->name, mask);
    VTSM_GUARD(vtsm_spdm_req_get_certificate(p->spdm, slot));
    /* CHALLENGE: the device proves it holds the leaf key over M1/M2 (rules PDEV.14-16). */
    if (p->opts.challenge)
        VTSM_GUARD(vtsm_spdm_req_challenge(p->spdm, slot));
    /* Evidence: the chains of the other provisioned slots too (EVIDENCE shows every slot).
     * Best effort: a slot the TSM does not use cannot fail the connect; EVIDENCE then
     * shows its digest without a chain. */
    for (uint8_t s = 0; s < SPDM_MAX_SLOTS; s++)
        if (s != slot && (mask & (1u << s)) && vtsm_spdm_req_get_certificate(p->spdm, s) != VTSM_OK)
            VTSM_WARN("connect %s: certificate slot %u not read: %s", p->name, s,
                      vtsm_err_detail());

    /* Trust: decided here, by policy, against the TSM's own trust store; judged beside
     * the session's set-up and used once the measurements are in. */
    const struct vtsm_buf *raw = vtsm_spdm_req_chain_raw(p->spdm, slot);
    const struct vtsm_spdm_info *info = vtsm_spdm_req_info(p->spdm);
    VTSM_GUARD(vtsm_hash(info->hash, raw->data, raw->len, p->ev.chain_digest));
    p->ev.chain_digest_len = vtsm_hash_size(info->hash);
    dhe_ahead_finish(p, ahead);
    struct trust_check *tc = NULL;
    bool posted = false;
    VTSM_GUARD(trust_begin(p, slot, &tc, &posted));
    vtsm_status st = vtsm_spdm_req_start_session(p->spdm, slot);
    if (st == VTSM_OK)
        st = vtsm_spdm_req_get_measurements(p->spdm, slot, NULL, &p->ev.meas);
    if (st != VTSM_OK) {
        /* the check is dropped (job_main joins a posted one) */
        if (!posted)
            trust_check_free(tc);
        return st;
    }
    p->ev.have_meas = true;
    trust_finish(tsm_job_current(), tc, posted, &p->ev.trusted, p->ev.trust_reason,
                 sizeof(p->ev.trust_reason));

    if (!p->ev.trusted && !p->opts.allow_untrusted) {
        vtsm_spdm_req_end_session(p->spdm);
        return vtsm_fail(VTSM_E_PEER_UNTRUSTED,
                         "device_connect refused: the certificate chain of %s is not trusted (%s); "
                         "connect option allow_untrusted is not set",
                         p->name, p->ev.trust_reason);
    }

    /* TEE-IO: the device must speak TDISP unless the host asked for IDE only. */
    if (!p->opts.ide_only) {
        struct tsm_tdisp_chan ch = tsm_job_tdisp_chan(p);
        VTSM_GUARD(tsm_tdisp_probe(&ch, &p->tdisp_caps));
        p->tdisp = true;
        /* The TDIs the host declared: each one the device has (GET_DEVICE_INTERFACE_STATE
         * for its INTERFACE_ID), unlocked (rule TDI.30); kept as TDIs of the device. */
        for (unsigned i = 0; i < p->opts.n_tdis; i++) {
            uint16_t rid = p->opts.tdis[i];
            uint8_t state = 0;
            struct tsm_tdi *tdi = NULL;
            VTSM_GUARD(tsm_tdisp_get_state(&ch, rid, &state));
            VTSM_ENSURE_RULE(state == VTSM_TDI_CONFIG_UNLOCKED, VTSM_E_PEER_STATE, VTSM_RULE_TDI_30,
                             "device_connect: %s TDI 0x%04x is %s on the device, not "
                             "CONFIG_UNLOCKED (rule TDI.30)",
                             p->name, rid, tsm_tdi_state_name((enum tsm_tdi_state)state));
            VTSM_GUARD(tsm_pdev_tdi(p, rid, &tdi));
            tdi->declared = true;
        }
    }

    /* IDE: the TSM programs both ends itself; the host never sees a key. */
    if (p->opts.ide_streams) {
        struct tsm_ide_peer peer = tsm_ide_peer_spdm(p->spdm);
        struct tsm_ide_opts io = {.nstreams = p->opts.ide_streams,
                                  .lenient = p->opts.ide_lenient,
                                  .tee = !p->opts.ide_only,
                                  .n_ids = p->opts.n_stream_ids,
                                  .n_ranges = p->opts.n_ranges,
                                  .link = p->opts.ide_link};
        struct tsm_link_transport link_tr = {.exchange = tsm_proxy_link_exchange, .ctx = p};
        io.link_tr = &link_tr;
        memcpy(io.ranges, p->opts.ranges, sizeof(io.ranges));
        memcpy(io.ids, p->opts.stream_ids, sizeof(io.ids));
        VTSM_GUARD(
            tsm_ide_setup_ex(t->cfg.platform, p->root_port, &peer, &io, &p->ide_left, &p->ide));
        /* RID association on both ends: the device end through the link, read back */
        struct tsm_link_transport link = {.exchange = tsm_proxy_link_exchange, .ctx = p};
        VTSM_GUARD(tsm_ide_program_assoc(p->ide, &peer, &link));
    }
    return VTSM_OK;
}

static cbor_item_t *connect_run(struct tsm_job *j)
{
    struct tsm_pdev *p = j->p;

    vtsm_status st = do_connect(p);
    char detail[512];
    snprintf(detail, sizeof(detail), "%s", st ? vtsm_err_detail() : "");

    /* Build the reply before the state changes: the report reads the requester. */
    cbor_item_t *msg = st ? vtsm_abi_error_msg(j->id, st, NULL) : vtsm_abi_result_msg(j->id);
    if (msg && put_report(p, msg) != VTSM_OK)
        VTSM_WARN("connect %s: report incomplete", p->name);

    if (st == VTSM_OK) {
        tsm_pdev_transition(p, TSM_PDEV_CONNECTED, "device_connect");
        p->connects++;
        tsm_event_device_reset(j->t, p, true, true); /* the event policy's timers start */
        if (msg)
            vtsm_abi_put_tstr(msg, VTSM_ABI_K_STATE, tsm_pdev_state_name(p->state));
    } else {
        /* Frees the half-made session and whatever IDE state it had, wiping all keys. If
         * the session is still up, stop the streams on the device first. */
        if (p->ide && p->spdm && vtsm_spdm_req_info(p->spdm)->session_active) {
            struct tsm_ide_peer peer = tsm_ide_peer_spdm(p->spdm);
            tsm_ide_teardown(p->ide, &peer);
            p->ide = NULL;
        }
        /* A session that is up is ended on the device too (END_SESSION), so the device
         * does not keep it; whether it answers changes nothing here. */
        if (p->spdm && vtsm_spdm_req_info(p->spdm)->session_active &&
            vtsm_spdm_req_end_session(p->spdm) != VTSM_OK)
            VTSM_INFO("connect %s: END_SESSION after the failure: %s", p->name, vtsm_err_detail());
        tsm_pdev_reset(p);
        tsm_pdev_transition(p, TSM_PDEV_UNCONNECTED, "device_connect");
    }
    VTSM_INFO("device_connect %s: %s%s%s", p->name, vtsm_status_name(st), st ? ": " : "", detail);
    return msg;
}

_Static_assert(TSM_IDE_MAX_STREAMS == VTSM_ABI_IDE_STREAMS_MAX, "ide_streams range");

static uint64_t le64(const uint8_t *p)
{
    return (uint64_t)vtsm_get_le32(p) | (uint64_t)vtsm_get_le32(p + 4) << 32;
}

/* Rule IDE.9: ide_addr_ranges is whole 16-byte (base, limit) pairs, each 1 MiB granular
 * (the address association registers hold bits 63:20) with base <= limit. */
static vtsm_status check_ranges(const struct vtsm_abi_req *req)
{
    const uint8_t *p = req->ide_addr_ranges.p;
    size_t len = req->ide_addr_ranges.len;

    VTSM_ENSURE_RULE(len % 16 == 0 && len / 16 <= TSM_IDE_MAX_RANGES, VTSM_E_ABI_ARG,
                     VTSM_RULE_IDE_9,
                     "device_connect: ide_addr_ranges of %zu bytes: 16 per range, 1..%u ranges "
                     "(rule IDE.9)",
                     len, TSM_IDE_MAX_RANGES);
    for (size_t i = 0; i < len / 16; i++) {
        uint64_t base = le64(p + 16 * i), limit = le64(p + 16 * i + 8);
        VTSM_ENSURE_RULE(base <= limit && base % TSM_IDE_RANGE_GRAN == 0 &&
                             limit % TSM_IDE_RANGE_GRAN == TSM_IDE_RANGE_GRAN - 1,
                         VTSM_E_ABI_ARG, VTSM_RULE_IDE_9,
                         "device_connect: address range %zu 0x%llx-0x%llx: base <= limit, base "
                         "and limit + 1 multiples of 1 MiB (rule IDE.9)",
                         i, (unsigned long long)base, (unsigned long long)limit);
    }
    return VTSM_OK;
}

/* The connect options of a decoded request (absent: 0, the requester's default). */
static void connect_opts(const struct vtsm_abi_req *req, struct tsm_connect_opts *o)
{
    static const uint32_t asym[] = {[VTSM_ABI_ASYM_ECDSA_P384] = SPDM_ASYM_ECDSA_P384,
                                    [VTSM_ABI_ASYM_ECDSA_P256] = SPDM_ASYM_ECDSA_P256};
    static const uint32_t hash[] = {
        [VTSM_ABI_HASH_SHA384] = SPDM_HASH_SHA384, [VTSM_ABI_HASH_SHA256] = SPDM_HASH_SHA256};
    _Static_assert(VTSM_SPDM_V12 == 0x12 && VTSM_SPDM_V14 == 0x14, "min/max_version range");

    memset(o, 0, sizeof(*o));
    o->slot = (uint8_t)req->slot;
    o->allow_untrusted = req->allow_untrusted;
    o->min_version = (uint8_t)req->min_version;
    o->max_version = (uint8_t)req->max_version;
    o->base_asym = asym[req->asym];
    o->base_hash = hash[req->hash];
    o->ide_streams = (unsigned)req->ide_streams;
    o->ide_only = req->ide_only;
    o->challenge = req->challenge;
    o->ide_lenient = req->ide_lenient;
    o->ide_link = req->ide_link;
    if (req->ide_addr_ranges.p && req->ide_addr_ranges.len % 16 == 0) {
        o->n_ranges = (unsigned)(req->ide_addr_ranges.len / 16);
        for (unsigned i = 0; i < o->n_ranges && i < TSM_IDE_MAX_RANGES; i++) {
            o->ranges[i].base = le64(req->ide_addr_ranges.p + 16 * i);
            o->ranges[i].limit = le64(req->ide_addr_ranges.p + 16 * i + 8);
        }
    }
    if (req->stream_ids.p) {
        o->n_stream_ids = (unsigned)req->stream_ids.len;
        memcpy(o->stream_ids, req->stream_ids.p, req->stream_ids.len);
    }
    _Static_assert(TSM_PDEV_TDIS_MAX == VTSM_ABI_TDIS_MAX, "tdis range");
    o->n_tdis = req->tdis.n;
    memcpy(o->tdis, req->tdis.rid, req->tdis.n * sizeof(o->tdis[0]));
}

void tsm_verb_device_connect(struct tsm *t, struct tsm_client *c, uint64_t id,
                             const struct vtsm_abi_req *req)
{
    const char *dev = req->dev;
    struct tsm_connect_opts o;
    vtsm_status st;

    connect_opts(req, &o);
    struct tsm_job *j = NULL;
    struct tsm_pdev *p = tsm_pdev_find(&t->devs, dev);
    /* stream_ids: one per stream; ide_streams defaults to their number (rule IDE.6) */
    if (o.n_stream_ids && !o.ide_streams)
        o.ide_streams = o.n_stream_ids;
    unsigned dup = 0;
    for (unsigned i = 0; i < o.n_stream_ids; i++)
        for (unsigned k = 0; k < i; k++)
            if (o.stream_ids[k] == o.stream_ids[i])
                dup = 1u + o.stream_ids[i];
    if (o.n_stream_ids && o.n_stream_ids != o.ide_streams)
        st = vtsm_refuse(VTSM_E_ABI_ARG, VTSM_RULE_IDE_6,
                         "device_connect: %u stream_ids for ide_streams %u (rule IDE.6)",
                         o.n_stream_ids, o.ide_streams);
    else if (req->ide_addr_ranges.p && (st = check_ranges(req)) != VTSM_OK)
        ;
    else if (dup)
        st = vtsm_refuse(VTSM_E_ABI_ARG, VTSM_RULE_IDE_6,
                         "device_connect: stream ID %u named twice in stream_ids (rule IDE.6)",
                         dup - 1);
    else if (!p)
        st = vtsm_refuse(VTSM_E_NOT_FOUND, VTSM_RULE_PDEV_13,
                         "device_connect: no device named %s (device_add first)", dev);
    else if (o.ide_only && o.n_tdis)
        st = vtsm_refuse(VTSM_E_STATE, VTSM_RULE_TDI_9,
                         "device_connect: tdis with ide_only: no TDISP (rule TDI.9)");
    else if (!(st = tsm_job_new(t, p, "device_connect", id, connect_run, NULL, &j)) &&
             (st = tsm_pdev_transition(p, TSM_PDEV_CONNECTING, "device_connect")))
        tsm_job_cancel(j);
    if (st == VTSM_OK) {
        p->opts = o;
        if ((st = tsm_job_start(c, j)) != VTSM_OK)
            tsm_pdev_transition(p, TSM_PDEV_UNCONNECTED, "device_connect");
    }
    if (st)
        tsm_client_error(t, c, id, st, vtsm_err_detail());
}

/* ---------------------------------------------------------------- reclaim */

static cbor_item_t *reclaim_run(struct tsm_job *j)
{
    struct tsm_pdev *p = j->p;
    cbor_item_t *msg = vtsm_abi_result_msg(j->id);
    cbor_item_t *unbound = vtsm_abi_array_new();

    /* With force, every bound TDI is stopped and unbound first (rule PDEV.9). */
    for (struct tsm_tdi_node *n = p->tdis; n; n = n->next) {
        if (n->tdi.state == TSM_TDI_CONFIG_UNLOCKED && n->tdi.owner_tvm == 0)
            continue; /* neither bound nor assigned */
        struct tsm_tdisp_chan ch = tsm_job_tdisp_chan(p);
        vtsm_status stop_st = VTSM_OK;
        char stop_detail[256] = "";
        tsm_tdi_unbind(&ch, &n->tdi, &stop_st, stop_detail, sizeof(stop_detail));
        if (unbound)
            vtsm_abi_push_uint(unbound, n->tdi.index);
    }
    /* IDE: K_SET_STOP on the device, free the streams and key slots, wipe the keys. */
    if (p->ide) {
        struct tsm_ide_peer peer = tsm_ide_peer_spdm(p->spdm);
        tsm_ide_teardown(p->ide, &peer);
        p->ide = NULL;
    }
    /* END_SESSION inside the session. Reclaim always completes: the TSM wipes the session
     * whether or not the device acknowledges, and says which happened. */
    vtsm_err_clear();
    vtsm_status st = vtsm_spdm_req_end_session(p->spdm);
    char detail[512];
    snprintf(detail, sizeof(detail), "%s", st ? vtsm_err_detail() : "END_SESSION acknowledged");

    cbor_item_t *es = vtsm_abi_map_new();
    if (msg && es) {
        vtsm_abi_put_tstr(msg, VTSM_ABI_K_DEV, p->name);
        vtsm_abi_put_bool(es, VTSM_ABI_K_ACKNOWLEDGED, st == VTSM_OK);
        vtsm_abi_put_tstr(es, VTSM_ABI_K_DETAIL, detail);
        vtsm_abi_put_item(msg, VTSM_ABI_K_END_SESSION, es);
        es = NULL;
        if (unbound) {
            vtsm_abi_put_item(msg, VTSM_ABI_K_UNBOUND_TDIS, unbound);
            unbound = NULL;
        }
    }
    if (es)
        cbor_decref(&es);
    if (unbound)
        cbor_decref(&unbound);

    tsm_pdev_reset(p);
    tsm_pdev_transition(p, TSM_PDEV_UNCONNECTED, "device_reclaim");
    tsm_event_device_forget(j->t, p);
    if (msg)
        vtsm_abi_put_tstr(msg, VTSM_ABI_K_STATE, tsm_pdev_state_name(p->state));
    VTSM_INFO("device_reclaim %s: %s", p->name, detail);
    return msg;
}

void tsm_verb_device_reclaim(struct tsm *t, struct tsm_client *c, uint64_t id,
                             const struct vtsm_abi_req *req)
{
    const char *dev = req->dev;
    bool force = req->force;
    vtsm_status st = VTSM_OK;

    struct tsm_job *j = NULL;
    struct tsm_job_claim all = {.all_tdis = true};
    struct tsm_pdev *p = tsm_pdev_find(&t->devs, dev);
    if (!p)
        st = vtsm_refuse(VTSM_E_NOT_FOUND, VTSM_RULE_PDEV_13, "device_reclaim: no device named %s",
                         dev);
    else if (p->job)
        st = tsm_job_new(t, p, "device_reclaim", id, reclaim_run, &all, &j); /* names PDEV.6 */
    else if (p->state == TSM_PDEV_CONNECTED && !force && tsm_pdev_bound_tdis(p))
        st = vtsm_refuse(VTSM_E_STATE, VTSM_RULE_PDEV_9,
                         "device_reclaim refused: %s has %u bound TDI(s) (rule PDEV.9: unbind them "
                         "first or reclaim with force)",
                         p->name, tsm_pdev_bound_tdis(p));
    else if (!(st = tsm_job_new(t, p, "device_reclaim", id, reclaim_run, &all, &j)) &&
             (st = tsm_pdev_transition(p, TSM_PDEV_RECLAIMING, "device_reclaim")))
        tsm_job_cancel(j);
    if (st == VTSM_OK) {
        j->force = force;
        if ((st = tsm_job_start(c, j)) != VTSM_OK)
            p->state = TSM_PDEV_CONNECTED; /* no job ran: nothing changed (only such place) */
    }
    if (st)
        tsm_client_error(t, c, id, st, vtsm_err_detail());
}

/* ---------------------------------------------------------------- evidence */

/* Host-driven refresh, in the session, without reconnecting: GET_DIGESTS, GET_CERTIFICATE
 * of every provisioned slot, the connect slot's trust judged again, then signed
 * GET_MEASUREMENTS with the host's nonce (or a fresh one). The cached evidence changes
 * only when all of it arrived. */
static vtsm_status evidence_refresh(struct tsm *t, struct tsm_pdev *p, const uint8_t *nonce,
                                    bool raw_bits)
{
    uint8_t mask = 0, digests[SPDM_MAX_SLOTS][VTSM_HASH_MAX];
    uint8_t slot = p->opts.slot, digest[VTSM_HASH_MAX];
    struct vtsm_spdm_meas meas;
    char reason[sizeof(p->ev.trust_reason)];
    vtsm_status st;

    memset(&meas, 0, sizeof(meas));
    VTSM_GUARD(vtsm_spdm_req_get_digests(p->spdm, &mask, digests));
    VTSM_ENSURE(mask & (1u << slot), VTSM_E_PEER_STATE,
                "evidence refresh of %s: certificate slot %u is no longer provisioned (DIGESTS "
                "slot mask 0x%02x)",
                p->name, slot, mask);
    for (uint8_t s = 0; s < SPDM_MAX_SLOTS; s++)
        if (mask & (1u << s))
            VTSM_GUARD(vtsm_spdm_req_get_certificate(p->spdm, s));
    const struct vtsm_buf *raw = vtsm_spdm_req_chain_raw(p->spdm, slot);
    const struct vtsm_spdm_info *info = vtsm_spdm_req_info(p->spdm);
    VTSM_GUARD(vtsm_hash(info->hash, raw->data, raw->len, digest));
    struct trust_check *tc = NULL;
    bool posted = false, trusted = false;
    VTSM_GUARD(trust_begin(p, slot, &tc, &posted));
    st = vtsm_spdm_req_get_measurements_ex(p->spdm, slot, nonce, raw_bits, &meas);
    if (st != VTSM_OK) {
        if (!posted)
            trust_check_free(tc);
        return vtsm_wrap(st, "evidence refresh of %s: GET_MEASUREMENTS", p->name);
    }
    trust_finish(tsm_job_current(), tc, posted, &trusted, reason, sizeof(reason));
    /* every CONFIG_LOCKED / RUN TDI's interface report again: does it still equal the
     * bound one? (kept aside until the whole refresh arrived) */
    size_t ntdi = 0, k = 0;
    for (struct tsm_tdi_node *n = p->tdis; n; n = n->next)
        ntdi++;
    bool *rchanged = calloc(ntdi ? ntdi : 1, sizeof(*rchanged));
    if (!rchanged) {
        vtsm_spdm_meas_free(&meas);
        return vtsm_fail(VTSM_E_NOMEM, "evidence refresh");
    }
    struct tsm_tdisp_chan ch = tsm_job_tdisp_chan(p);
    for (struct tsm_tdi_node *n = p->tdis; n; n = n->next, k++) {
        const struct tsm_tdi *td = &n->tdi;
        if (!(td->state == TSM_TDI_CONFIG_LOCKED || td->state == TSM_TDI_RUN) || !td->digest_len)
            continue;
        struct vtsm_buf rep = {0};
        uint8_t d[VTSM_HASH_MAX];
        st = tsm_tdisp_get_report(&ch, td->index, &rep);
        if (st == VTSM_OK)
            st = vtsm_hash(td->digest_alg, rep.data, rep.len, d);
        vtsm_buf_wipe(&rep);
        if (st != VTSM_OK) {
            free(rchanged);
            vtsm_spdm_meas_free(&meas);
            return vtsm_wrap(st, "evidence refresh of %s: interface report of TDI 0x%x", p->name,
                             td->index);
        }
        rchanged[k] = CRYPTO_memcmp(d, td->report_digest, td->digest_len) != 0;
    }
    k = 0;
    for (struct tsm_tdi_node *n = p->tdis; n; n = n->next, k++) {
        bool locked = n->tdi.state == TSM_TDI_CONFIG_LOCKED || n->tdi.state == TSM_TDI_RUN;
        n->tdi.report_checked = locked && n->tdi.digest_len;
        n->tdi.report_changed = n->tdi.report_checked && rchanged[k];
    }
    free(rchanged);
    /* commit */
    vtsm_spdm_meas_free(&p->ev.meas);
    p->ev.meas = meas;
    p->ev.have_meas = true;
    memcpy(p->ev.chain_digest, digest, sizeof(digest));
    p->ev.chain_digest_len = vtsm_hash_size(info->hash);
    p->ev.trusted = trusted;
    snprintf(p->ev.trust_reason, sizeof(p->ev.trust_reason), "%s", reason);
    p->ev.refreshes++;
    return VTSM_OK;
}

/* The evidence map: the device report, every slot, VCA, the TDIs' interface reports.
 * compare (a refresh without raw bit streams): each locked TDI's entry says whether the
 * fresh measurement record differs from the one it was bound to. */
static vtsm_status put_evidence(struct tsm_pdev *p, cbor_item_t *m, bool compare)
{
    VTSM_GUARD(put_report(p, m));
    const struct vtsm_spdm_info *info = vtsm_spdm_req_info(p->spdm);
    size_t hlen = vtsm_hash_size(info->hash);
    cbor_item_t *slots = vtsm_abi_array_new();
    VTSM_GUARD(vtsm_abi_put_item(m, VTSM_ABI_K_SLOTS, slots));
    for (uint8_t s = 0; s < SPDM_MAX_SLOTS; s++) {
        const uint8_t *d = vtsm_spdm_req_slot_digest(p->spdm, s);
        if (!d)
            continue;
        cbor_item_t *e = vtsm_abi_map_new();
        VTSM_GUARD(vtsm_abi_push_item(slots, e));
        VTSM_GUARD(vtsm_abi_put_uint(e, VTSM_ABI_K_SLOT, s));
        VTSM_GUARD(vtsm_abi_put_bytes(e, VTSM_ABI_K_CERT_CHAIN_DIGEST, d, hlen));
        const struct vtsm_buf *raw = vtsm_spdm_req_chain_raw(p->spdm, s);
        if (raw && raw->len)
            VTSM_GUARD(vtsm_abi_put_bytes(e, VTSM_ABI_K_CERT_CHAIN, raw->data, raw->len));
    }
    const struct vtsm_buf *vca = vtsm_spdm_req_vca(p->spdm);
    if (vca)
        VTSM_GUARD(vtsm_abi_put_bytes(m, VTSM_ABI_K_VCA, vca->data, vca->len));
    VTSM_GUARD(vtsm_abi_put_uint(m, VTSM_ABI_K_REFRESHES, p->ev.refreshes));
    cbor_item_t *tdis = vtsm_abi_array_new();
    VTSM_GUARD(vtsm_abi_put_item(m, VTSM_ABI_K_TDIS, tdis));
    for (struct tsm_tdi_node *n = p->tdis; n; n = n->next) {
        const struct tsm_tdi *td = &n->tdi;
        if (td->report.len == 0)
            continue;
        cbor_item_t *e = vtsm_abi_map_new();
        VTSM_GUARD(vtsm_abi_push_item(tdis, e));
        VTSM_GUARD(vtsm_abi_put_uint(e, VTSM_ABI_K_TDI, td->index));
        VTSM_GUARD(vtsm_abi_put_tstr(e, VTSM_ABI_K_STATE, tsm_tdi_state_name(td->state)));
        VTSM_GUARD(vtsm_abi_put_bytes(e, VTSM_ABI_K_REPORT, td->report.data, td->report.len));
        VTSM_GUARD(
            vtsm_abi_put_bytes(e, VTSM_ABI_K_REPORT_DIGEST, td->report_digest, td->digest_len));
        if (td->have_meas)
            VTSM_GUARD(tsm_reply_put_meas(e, &td->meas, tsm_tdi_after_lock(td, td->meas_seq)));
        if (compare && td->digest_len && p->ev.have_meas &&
            (td->state == TSM_TDI_CONFIG_LOCKED || td->state == TSM_TDI_RUN)) {
            uint8_t d[VTSM_HASH_MAX];
            VTSM_GUARD(vtsm_hash(td->digest_alg, p->ev.meas.record.data, p->ev.meas.record.len, d));
            bool changed = CRYPTO_memcmp(d, td->meas_digest, td->digest_len) != 0;
            VTSM_GUARD(vtsm_abi_put_bool(e, VTSM_ABI_K_MEASUREMENTS_CHANGED, changed));
        }
        if (compare && td->report_checked)
            VTSM_GUARD(vtsm_abi_put_bool(e, VTSM_ABI_K_REPORT_CHANGED, td->report_changed));
    }
    return VTSM_OK;
}

static cbor_item_t *evidence_run(struct tsm_job *j)
{
    struct tsm_pdev *p = j->p;
    vtsm_status st = VTSM_OK;
    if (j->force) /* refresh */
        st = evidence_refresh(j->t, p, j->greq.has_nonce ? j->greq.nonce : NULL,
                              j->lock_flags != 0 /* raw */);
    if (st)
        return tsm_job_error(j, st);
    cbor_item_t *res = vtsm_abi_result_msg(j->id);
    if (res && put_evidence(p, res, j->force && j->lock_flags == 0) != VTSM_OK)
        cbor_decref(&res);
    return res;
}

void tsm_verb_evidence(struct tsm *t, struct tsm_client *c, uint64_t id,
                       const struct vtsm_abi_req *req)
{
    struct tsm_pdev *p = tsm_pdev_find(&t->devs, req->dev);
    struct tsm_job *j = NULL;
    vtsm_status st = VTSM_OK;
    if (!p)
        st = vtsm_refuse(VTSM_E_NOT_FOUND, VTSM_RULE_PDEV_13, "evidence: no device named %s",
                         req->dev);
    else if (!p->job && p->state != TSM_PDEV_CONNECTED)
        st = vtsm_refuse(VTSM_E_STATE, VTSM_RULE_PDEV_10,
                         "evidence refused: %s is %s (rule PDEV.10: this verb needs a connected "
                         "device)",
                         p->name, tsm_pdev_state_name(p->state));
    else if ((vtsm_abi_req_has(req, VTSM_ABI_F_NONCE) || req->raw) && !req->refresh)
        st = vtsm_refuse(VTSM_E_ABI_ARG, VTSM_RULE_ABI_8,
                         "evidence: nonce and raw are for refresh (fresh measurements)");
    else
        st = tsm_job_new(t, p, "evidence", id, evidence_run, NULL, &j); /* names PDEV.6 */
    if (st == VTSM_OK) {
        j->force = req->refresh;
        j->lock_flags = req->raw ? 1 : 0; /* raw bit stream asked for */
        j->greq.has_nonce = vtsm_abi_req_has(req, VTSM_ABI_F_NONCE);
        if (j->greq.has_nonce)
            memcpy(j->greq.nonce, req->nonce.p, sizeof(j->greq.nonce));
        st = tsm_job_start(c, j);
    }
    if (st)
        tsm_client_error(t, c, id, st, vtsm_err_detail());
}

/* ---------------------------------------------------------------- add / remove / status */

void tsm_verb_device_add(struct tsm *t, struct tsm_client *c, uint64_t id,
                         const struct vtsm_abi_req *req)
{
    const char *dev = req->dev;
    uint64_t rp = req->root_port; /* decoded: 0..0xFFFF, 0 if absent */
    vtsm_status st;
    struct tsm_pdev *p;

    if (!tsm_platform_has_rp(t->cfg.platform, (uint32_t)rp))
        st = vtsm_refuse(VTSM_E_NOT_FOUND, VTSM_RULE_PLAT_1,
                         "device_add refused: the platform has no root port %llu (rule PLAT.1)",
                         (unsigned long long)rp);
    else
        st = tsm_pdev_add(&t->devs, dev, (uint32_t)rp, &p);
    cbor_item_t *res = NULL;
    if (st == VTSM_OK && (res = vtsm_abi_result_msg(id))) {
        vtsm_abi_put_tstr(res, VTSM_ABI_K_DEV, p->name);
        vtsm_abi_put_uint(res, VTSM_ABI_K_ROOT_PORT, p->root_port);
        vtsm_abi_put_tstr(res, VTSM_ABI_K_STATE, tsm_pdev_state_name(p->state));
    }
    if (st)
        tsm_client_error(t, c, id, st, vtsm_err_detail());
    else
        tsm_client_reply(t, c, res);
}

void tsm_verb_device_remove(struct tsm *t, struct tsm_client *c, uint64_t id,
                            const struct vtsm_abi_req *req)
{
    const char *dev = req->dev;
    vtsm_status st = tsm_pdev_remove(&t->devs, dev);
    if (st) {
        tsm_client_error(t, c, id, st, vtsm_err_detail());
        return;
    }
    cbor_item_t *res = vtsm_abi_result_msg(id);
    if (res)
        vtsm_abi_put_tstr(res, VTSM_ABI_K_DEV, dev);
    tsm_client_reply(t, c, res);
}

/* ---------------------------------------------------------------- status */

/*
 * STATUS answers in pages that always fit one ABI message: each list (devices, the TDIs of
 * one device, TVMs) is filled from the offset the request names until the next entry
 * would pass the message's item or byte budget; the reply then says where the next page
 * starts (next_offset, next_tdi_offset, next_tvm_offset) and how many there are in all.
 * A client that wants everything asks again from there. An entry too big for any page is
 * an ERROR naming the limit, never a dropped connection.
 */
#define PAGE_ITEMS (VTSM_ABI_MAX_ITEMS - 64)          /* the envelope's keys fit in the rest */
#define PAGE_BYTES (VTSM_ABI_FRAME_MAX - (64u << 10)) /* ditto */

struct page {
    size_t items, bytes;
};

/* Data items and an upper bound of the encoded bytes of it. */
static void measure(const cbor_item_t *it, struct page *m)
{
    m->items++;
    m->bytes += 9;
    switch (cbor_typeof(it)) {
    case CBOR_TYPE_BYTESTRING:
    case CBOR_TYPE_STRING:
        m->bytes += cbor_isa_bytestring(it) ? cbor_bytestring_length(it) : cbor_string_length(it);
        break;
    case CBOR_TYPE_ARRAY:
        for (size_t i = 0; i < cbor_array_size(it); i++)
            measure(cbor_array_handle(it)[i], m);
        break;
    case CBOR_TYPE_MAP:
        for (size_t i = 0; i < cbor_map_size(it); i++) {
            measure(cbor_map_handle(it)[i].key, m);
            measure(cbor_map_handle(it)[i].value, m);
        }
        break;
    default:
        break;
    }
}

/* Append e to arr if the page has room for it (then e is taken); false if not. */
static bool page_take(struct page *pg, cbor_item_t *arr, cbor_item_t *e, vtsm_status *st)
{
    struct page m = {0};
    measure(e, &m);
    if (pg->items + m.items > PAGE_ITEMS || pg->bytes + m.bytes > PAGE_BYTES)
        return false;
    pg->items += m.items;
    pg->bytes += m.bytes;
    *st = vtsm_abi_push_item(arr, e);
    return true;
}

/* One TDI's entry in STATUS (a running job's own TDIs show only that they are busy); with
 * its rid and MMIO ranges when STATUS names the device (the whole list keeps a device's
 * 255 TDIs on one page). */
static vtsm_status tdi_entry(struct tsm_pdev *p, struct tsm_tdi *tdi, bool mmio, cbor_item_t **out)
{
    if (!tsm_pdev_tdi_claimed(p, tdi)) {
        VTSM_GUARD(tsm_reply_tdi_summary(tdi, true, out));
        return mmio ? tsm_reply_tdi_detail(*out, tdi) : VTSM_OK;
    }
    cbor_item_t *e = vtsm_abi_map_new();
    VTSM_ENSURE(e, VTSM_E_NOMEM, "status");
    *out = e;
    VTSM_GUARD(vtsm_abi_put_uint(e, VTSM_ABI_K_TDI, tdi->index));
    return vtsm_abi_put_tstr(e, VTSM_ABI_K_BUSY, p->job->verb);
}

struct status_req {
    bool one, summary;
    char dev[VTSM_ABI_DEV_BUF];
    uint64_t offset, tdi_offset, tvm_offset;
};

/* A device's entry: the summary, or everything with the TDIs from r->tdi_offset on as far
 * as pg allows (*next_tdi = where the rest starts, 0 if none left out). */
static vtsm_status put_status(struct tsm_pdev *p, const struct status_req *r, struct page *pg,
                              cbor_item_t *d, uint64_t *next_tdi)
{
    VTSM_GUARD(vtsm_abi_put_tstr(d, VTSM_ABI_K_STATE, tsm_pdev_state_name(p->state)));
    VTSM_GUARD(vtsm_abi_put_uint(d, VTSM_ABI_K_CONNECTS, p->connects));
    VTSM_GUARD(vtsm_abi_put_uint(d, VTSM_ABI_K_BOUND_TDIS, p->bound_tdis));
    const struct tsm_job *job = p->job;
    if (job)
        VTSM_GUARD(vtsm_abi_put_tstr(d, VTSM_ABI_K_BUSY, job->verb));
    if (r->summary || p->state != TSM_PDEV_CONNECTED || (job && !job->claim.has_tdi)) {
        /* asked for the summary, nothing more to show, or a running job owns the rest */
        VTSM_GUARD(vtsm_abi_put_tstr(d, VTSM_ABI_K_DEV, p->name));
        return vtsm_abi_put_uint(d, VTSM_ABI_K_ROOT_PORT, p->root_port);
    }
    if (!job) {
        VTSM_GUARD(put_report(p, d));
    } else {
        VTSM_GUARD(vtsm_abi_put_tstr(d, VTSM_ABI_K_DEV, p->name));
        VTSM_GUARD(vtsm_abi_put_uint(d, VTSM_ABI_K_ROOT_PORT, p->root_port));
    }
    VTSM_GUARD(vtsm_abi_put_bool(d, VTSM_ABI_K_TEE_IO, p->tdisp));
    cbor_item_t *tdis = vtsm_abi_array_new();
    VTSM_GUARD(vtsm_abi_put_item(d, VTSM_ABI_K_TDIS, tdis));
    measure(d, pg);
    uint64_t i = 0, total = 0;
    vtsm_status st = VTSM_OK;
    for (struct tsm_tdi_node *n = p->tdis; n; n = n->next)
        total++;
    VTSM_GUARD(vtsm_abi_put_uint(d, VTSM_ABI_K_TOTAL_TDIS, total));
    for (struct tsm_tdi_node *n = p->tdis; n && st == VTSM_OK; n = n->next, i++) {
        if (i < r->tdi_offset)
            continue;
        cbor_item_t *e = NULL;
        VTSM_GUARD(tdi_entry(p, &n->tdi, r->one, &e));
        if (!page_take(pg, tdis, e, &st)) {
            cbor_decref(&e);
            *next_tdi = i;
            break;
        }
    }
    return st;
}

/* The reply page for r: devices (or the one device), then root ports and TVMs. */
static vtsm_status build_status(struct tsm *t, const struct status_req *r, cbor_item_t *res)
{
    struct page pg = {0};
    vtsm_status st = VTSM_OK;
    cbor_item_t *arr = vtsm_abi_array_new();
    VTSM_GUARD(vtsm_abi_put_item(res, VTSM_ABI_K_DEVICES, arr));
    cbor_item_t *rps = NULL;
    if (!r->one) { /* the platform first: it always fits, the lists take the rest */
        rps = vtsm_abi_array_new();
        VTSM_GUARD(vtsm_abi_put_item(res, VTSM_ABI_K_ROOT_PORTS, rps));
        struct tsm_rp_usage u[TSM_PLATFORM_MAX_RP];
        size_t n = tsm_platform_rp_count(t->cfg.platform);
        for (size_t k = 0; k < n; k++)
            VTSM_GUARD(
                tsm_platform_usage(t->cfg.platform, tsm_platform_rp_id(t->cfg.platform, k), &u[k]));
        VTSM_GUARD(tsm_reply_push_root_ports(rps, u, n));
        measure(rps, &pg);
    }
    if (r->one && !tsm_pdev_find(&t->devs, r->dev))
        return vtsm_refuse(VTSM_E_NOT_FOUND, VTSM_RULE_PDEV_13, "status: no device named %s",
                           r->dev);
    uint64_t i = 0, next_tdi = 0;
    bool full = false;
    for (struct tsm_pdev *p = t->devs.head; p && st == VTSM_OK; p = p->next) {
        if (r->one && strcmp(p->name, r->dev) != 0)
            continue;
        if (r->one) {
            cbor_item_t *d = vtsm_abi_map_new();
            VTSM_GUARD(vtsm_abi_push_item(arr, d));
            VTSM_GUARD(put_status(p, r, &pg, d, &next_tdi));
            if (next_tdi)
                VTSM_GUARD(vtsm_abi_put_uint(res, VTSM_ABI_K_NEXT_TDI_OFFSET, next_tdi));
            return VTSM_OK;
        }
        if (i++ < r->offset || full)
            continue;
        cbor_item_t *d = vtsm_abi_map_new();
        struct page scratch = {0};
        VTSM_ENSURE(d, VTSM_E_NOMEM, "status");
        if ((st = put_status(p, r, &scratch, d, &next_tdi)) != VTSM_OK) {
            cbor_decref(&d);
            return st;
        }
        if (next_tdi) {
            /* too big for one page with the rest: the device's own STATUS pages it */
            cbor_decref(&d);
            VTSM_ENSURE_RULE(i - 1 > r->offset, VTSM_E_LIMIT, VTSM_RULE_ABI_11,
                             "status: %s does not fit one message; ask for it by name (dev) "
                             "to page its TDIs, or for the summary (rule ABI.11)",
                             p->name);
            full = true;
        } else if (!page_take(&pg, arr, d, &st)) {
            cbor_decref(&d);
            VTSM_ENSURE_RULE(i - 1 > r->offset, VTSM_E_LIMIT, VTSM_RULE_ABI_11,
                             "status: %s does not fit one message (rule ABI.11)", p->name);
            full = true;
        }
        if (full)
            VTSM_GUARD(vtsm_abi_put_uint(res, VTSM_ABI_K_NEXT_OFFSET, i - 1));
    }
    VTSM_GUARD(st);
    VTSM_GUARD(vtsm_abi_put_uint(res, VTSM_ABI_K_TOTAL_DEVICES, t->devs.count));
    cbor_item_t *tvms = vtsm_abi_array_new();
    VTSM_GUARD(vtsm_abi_put_item(res, VTSM_ABI_K_TVMS, tvms));
    VTSM_GUARD(vtsm_abi_put_uint(res, VTSM_ABI_K_TOTAL_TVMS, t->tvms.count));
    i = 0;
    for (const struct tsm_tvm *v = t->tvms.head; v && st == VTSM_OK; v = v->next, i++) {
        if (i < r->tvm_offset)
            continue;
        cbor_item_t *e = vtsm_abi_map_new();
        VTSM_ENSURE(e, VTSM_E_NOMEM, "status");
        if ((st = vtsm_abi_put_uint(e, VTSM_ABI_K_TVM, v->id)) == VTSM_OK &&
            (st = vtsm_abi_put_tstr(e, VTSM_ABI_K_NAME, v->name)) == VTSM_OK &&
            (st = vtsm_abi_put_bytes(e, VTSM_ABI_K_IDENTITY, v->identity, sizeof(v->identity))) ==
                VTSM_OK)
            st = vtsm_abi_put_uint(e, VTSM_ABI_K_BOUND_TDIS, v->bound_tdis);
        if (st || !page_take(&pg, tvms, e, &st)) {
            cbor_decref(&e);
            if (st == VTSM_OK)
                st = vtsm_abi_put_uint(res, VTSM_ABI_K_NEXT_TVM_OFFSET, i);
            break;
        }
    }
    return st;
}

void tsm_verb_status(struct tsm *t, struct tsm_client *c, uint64_t id,
                     const struct vtsm_abi_req *req)
{
    /* decoded: dev valid if present, tdi_offset only with dev */
    struct status_req r = {.one = vtsm_abi_req_has(req, VTSM_ABI_F_DEV),
                           .summary = req->summary,
                           .offset = req->offset,
                           .tdi_offset = req->tdi_offset,
                           .tvm_offset = req->tvm_offset};
    memcpy(r.dev, req->dev, sizeof(r.dev));
    cbor_item_t *res = vtsm_abi_result_msg(id);
    vtsm_status st = res ? build_status(t, &r, res) : VTSM_E_NOMEM;
    if (st) {
        if (res)
            cbor_decref(&res);
        tsm_client_error(t, c, id, st, vtsm_err_detail());
        return;
    }
    tsm_client_reply(t, c, res);
}
