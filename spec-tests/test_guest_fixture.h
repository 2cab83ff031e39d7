/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Shared by the guest-shim tests: deterministic TDI evidence (interface report,
 * MeasurementRecord, chain), the token claims and INFO result tsmd returns for it
 * (docs/abi.md section 9), and a fake TSM in a thread that authenticates GUEST_REQUESTs
 * like tsmd (signature, seq) and answers them. Nothing here asserts: builders return
 * NULL / a status, the fake records its first complaint in err, so they are safe to run
 * off the test thread.
 */
#ifndef TEST_GUEST_FIXTURE_H
#define TEST_GUEST_FIXTURE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cbor.h>
#include <openssl/evp.h>

#include "vtsm_buf.h"
#include "vtsm_guest_cbor.h"
#include "vtsm_err.h"

#define GF_TVM 4
#define GF_DEV "0000:03:00.0"
#define GF_TDI 2

struct gf_evidence {
    uint8_t report[256];
    size_t report_len;
    uint8_t record[256];
    size_t record_len;
    uint8_t chain[100];
    uint8_t transcript[64];
    uint8_t m1[32];
    uint8_t m2[48];
};

/* How claims or an INFO result are spoiled. */
enum gf_spoil {
    GF_SP_NONE = 0,
    GF_SP_CLAIM_TVM,
    GF_SP_CLAIM_IDENTITY,
    GF_SP_CLAIM_DEV,
    GF_SP_CLAIM_TDI,
    GF_SP_CLAIM_NOT_AFTER_LOCK,
    GF_SP_CLAIM_UNLOCKED,
    GF_SP_INFO_REPORT,
    GF_SP_INFO_RECORD,
    GF_SP_INFO_CHAIN_DIGEST,
    GF_SP_INFO_SPDM_NONCE,
    GF_SP_INFO_NO_TOKEN,
    GF_SP_INFO_TRANSCRIPT,
};

/* Interface report (INTERFACE_INFO 0x0003, two MMIO ranges), record with DMTF blocks 1
 * (m1, 32 bytes) and 2 (m2, 48 bytes), chain and transcript. All digests are SHA-384. */
vtsm_status gf_make_evidence(struct gf_evidence *e);
/* The token claims; NULL on failure. */
cbor_item_t *gf_make_claims(const struct gf_evidence *e, const uint8_t nonce[32],
                            const uint8_t identity[32], enum gf_spoil sp);
/* COSE_Sign1 over claims (made definite-length first) with key; kid NULL = the embedded
 * TSM certificate's, kid non-NULL with kid_len 0 = no kid. */
vtsm_status gf_make_token(EVP_PKEY *key, const cbor_item_t *claims, const uint8_t *kid,
                          size_t kid_len, struct vtsm_buf *out);
/* pki/tsm/tsm.key; NULL on failure. */
EVP_PKEY *gf_tsm_key(void);
EVP_PKEY *gf_load_key(const char *path);
/* The INFO RESULT fields {gop, tvm, seq, dev, tdi, state, report, ...} (token NULL: none). */
cbor_item_t *gf_make_info(const struct gf_evidence *e, uint64_t seq, const uint8_t nonce[32],
                          const struct vtsm_buf *token, enum gf_spoil sp);
/* A reference file text (6 values, comments, CRLF) that matches e. */
void gf_good_reference(const struct gf_evidence *e, char *out, size_t cap);

/* ---- the fake TSM ---- */

enum gf_mode {
    GF_OK = 0,      /* good results */
    GF_SPOIL,       /* INFO results spoiled with spoil */
    GF_NOT_OWNER,   /* INFO: ERROR not_owner (rule TDI.6) */
    GF_WRONG_ECHO,  /* INFO: a RESULT echoing another seq */
    GF_DOE_THEN_OK, /* INFO: one DOE exchange through the connection first */
};

struct gf_fake {
    /* set before start */
    enum gf_mode mode;
    enum gf_spoil spoil;
    struct gf_evidence ev;
    uint8_t guest_pub[VTSM_GUEST_PUBKEY_SIZE];
    uint8_t identity[32];
    /* plumbing */
    int fd;      /* socketpair end (one connection), or -1 */
    int lfd;     /* listening socket (any number of connections), or -1 */
    int stop_rd; /* pipe that ends the listening loop */
    int stop_wr;
    pthread_t th;
    /* observations (read after gf_fake_stop) */
    char err[512];
    char role[16]; /* HELLO role of the last connection */
    uint8_t doe_seen[64];
    size_t doe_seen_len;
    uint64_t last_seq;
    unsigned requests, infos, accepts, rejects, lists, replays;
    char reason[1100];
};

/* Start on a socketpair; *client_fd is the other end (for vtsm_host_open_fd). */
int gf_fake_start_pair(struct gf_fake *f, int *client_fd);
/* Start listening on a Unix socket at path (serves connections one after another). */
int gf_fake_start_listen(struct gf_fake *f, const char *path);
/* Stop and join; returns f->err[0] ? -1 : 0. */
int gf_fake_stop(struct gf_fake *f);

#endif
