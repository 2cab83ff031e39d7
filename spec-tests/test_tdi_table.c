/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tsm/tsm_tdi: conformance of the TDI state table (docs/abi.md section 10,
 * rules TDI.1 - TDI.8, TDI.10). The expected outcome of every (state x request x requester) is
 * written out below from the specification (docs/abi.md section 10), independently of the
 * implementation's table; the test walks all 4 x 7 x 4 cells through tsm_tdi_check() and
 * rules TDI.1 - TDI.8, TDI.22 - TDI.24). The expected outcome of every (state x request x
 * requester) is written out below from the specification (docs/abi.md section 10),
 * independently of the implementation's table; the test walks all 4 x 12 x 4 cells (and the
 * 12 x 4 of an unlocked TDI still assigned to its owner) through tsm_tdi_check() and
 * tsm_tdi_set_state() and asserts that accepted moves give exactly the specified next state and
 * that everything else is refused with the right status and rule and no change to the TDI.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tsm_tdi.h"
#include "vtsm_test.h"

#define DEV       "0000:01:00.0"
#define TDI_INDEX 2
#define OWNER_TVM 7
#define OTHER_TVM 9

/* ---- the specification, written out ---- */

enum kind {
    GO = 1,       /* accepted: the state becomes .to */
    REFUSE_STATE, /* VTSM_E_STATE: allowed for this requester, not from this state */
    REFUSE_OWNER, /* VTSM_E_NOT_OWNER: only the owning guest may */
    REFUSE_ROLE,  /* VTSM_E_ABI_ROLE: this kind of requester never may */
};

struct expect {
    enum kind kind;
    enum tsm_tdi_state to;
    enum vtsm_rule rule; /* refusals: the rule the refusal must carry */
};

#define UNL TSM_TDI_CONFIG_UNLOCKED
#define LCK TSM_TDI_CONFIG_LOCKED
#define RUN TSM_TDI_RUN
#define ERR TSM_TDI_ERROR

/* clang-format off */
#define TO(s)   {GO, s, VTSM_RULE_NONE}
#define ST(r)   {REFUSE_STATE, 0, VTSM_RULE_##r}
#define OWN(r)  {REFUSE_OWNER, 0, VTSM_RULE_##r}
#define ROLE(r) {REFUSE_ROLE, 0, VTSM_RULE_##r}
/* clang-format on */

/*
 * expected[request][state][requester]. Requesters: the host, the owning guest (a guest
 * whose TVM owns the TDI; in CONFIG_UNLOCKED nobody owns it, so a guest claiming to is
 * just another guest), another guest, and the TSM itself (acting on the device's word).
 */
static const struct expect expected[TSM_TDI_REQ_COUNT_][TSM_TDI_STATE_COUNT_][TSM_TDI_WHO_COUNT_] =
    {
        /* TDI.1 bind only from CONFIG_UNLOCKED; TDI.3 only the host binds / unbinds */
        [TSM_TDI_REQ_BIND] =
            {
                /*          host         owning guest  other guest   tsm */
                [UNL] = {TO(LCK), ROLE(TDI_3), ROLE(TDI_3), ROLE(TDI_3)},
                [LCK] = {ST(TDI_1), ROLE(TDI_3), ROLE(TDI_3), ROLE(TDI_3)},
                [RUN] = {ST(TDI_1), ROLE(TDI_3), ROLE(TDI_3), ROLE(TDI_3)},
                [ERR] = {ST(TDI_1), ROLE(TDI_3), ROLE(TDI_3), ROLE(TDI_3)},
            },
        /* TDI.2 unbind only from CONFIG_LOCKED / RUN / ERROR, back to CONFIG_UNLOCKED */
        [TSM_TDI_REQ_UNBIND] =
            {
                [UNL] = {ST(TDI_2), ROLE(TDI_3), ROLE(TDI_3), ROLE(TDI_3)},
                [LCK] = {TO(UNL), ROLE(TDI_3), ROLE(TDI_3), ROLE(TDI_3)},
                [RUN] = {TO(UNL), ROLE(TDI_3), ROLE(TDI_3), ROLE(TDI_3)},
                [ERR] = {TO(UNL), ROLE(TDI_3), ROLE(TDI_3), ROLE(TDI_3)},
            },
        /* TDI.4 accept only from CONFIG_LOCKED; TDI.5 only the owner (never the host) */
        [TSM_TDI_REQ_ACCEPT] =
            {
                [UNL] = {ROLE(TDI_5), OWN(TDI_5), OWN(TDI_5), ROLE(TDI_5)},
                [LCK] = {ROLE(TDI_5), TO(RUN), OWN(TDI_5), ROLE(TDI_5)},
                [RUN] = {ROLE(TDI_5), ST(TDI_4), OWN(TDI_5), ROLE(TDI_5)},
                [ERR] = {ROLE(TDI_5), ST(TDI_4), OWN(TDI_5), ROLE(TDI_5)},
            },
        /* TDI.5 only the owner rejects; recorded, no state change */
        [TSM_TDI_REQ_REJECT] =
            {
                [UNL] = {ROLE(TDI_5), OWN(TDI_5), OWN(TDI_5), ROLE(TDI_5)},
                [LCK] = {ROLE(TDI_5), TO(LCK), OWN(TDI_5), ROLE(TDI_5)},
                [RUN] = {ROLE(TDI_5), TO(RUN), OWN(TDI_5), ROLE(TDI_5)},
                [ERR] = {ROLE(TDI_5), TO(ERR), OWN(TDI_5), ROLE(TDI_5)},
            },
        /* TDI.6 only the owner reads info */
        [TSM_TDI_REQ_INFO] =
            {
                [UNL] = {ROLE(TDI_6), OWN(TDI_6), OWN(TDI_6), ROLE(TDI_6)},
                [LCK] = {ROLE(TDI_6), TO(LCK), OWN(TDI_6), ROLE(TDI_6)},
                [RUN] = {ROLE(TDI_6), TO(RUN), OWN(TDI_6), ROLE(TDI_6)},
                [ERR] = {ROLE(TDI_6), TO(ERR), OWN(TDI_6), ROLE(TDI_6)},
            },
        /* LIST: the host sees every TDI, a guest only those it owns (TDI.6) */
        [TSM_TDI_REQ_LIST] =
            {
                [UNL] = {TO(UNL), OWN(TDI_6), OWN(TDI_6), ROLE(TDI_6)},
                [LCK] = {TO(LCK), TO(LCK), OWN(TDI_6), ROLE(TDI_6)},
                [RUN] = {TO(RUN), TO(RUN), OWN(TDI_6), ROLE(TDI_6)},
                [ERR] = {TO(ERR), TO(ERR), OWN(TDI_6), ROLE(TDI_6)},
            },
        /* TDI.7 / TDI.8: device ERROR or state drift moves CONFIG_LOCKED / RUN to ERROR */
        [TSM_TDI_REQ_DEVICE_ERROR] =
            {
                [UNL] = {ROLE(TDI_7), ROLE(TDI_7), ROLE(TDI_7), ST(TDI_7)},
                [LCK] = {ROLE(TDI_7), ROLE(TDI_7), ROLE(TDI_7), TO(ERR)},
                [RUN] = {ROLE(TDI_7), ROLE(TDI_7), ROLE(TDI_7), TO(ERR)},
                [ERR] = {ROLE(TDI_7), ROLE(TDI_7), ROLE(TDI_7), ST(TDI_7)},
            },
        /* TDI.10 recovery (tdi_reset) only from ERROR, by the host (TDI.3) */
        [TSM_TDI_REQ_RESET] =
            {
                [UNL] = {ST(TDI_10), ROLE(TDI_3), ROLE(TDI_3), ROLE(TDI_3)},
                [LCK] = {ST(TDI_10), ROLE(TDI_3), ROLE(TDI_3), ROLE(TDI_3)},
                [RUN] = {ST(TDI_10), ROLE(TDI_3), ROLE(TDI_3), ROLE(TDI_3)},
                [ERR] = {TO(LCK), ROLE(TDI_3), ROLE(TDI_3), ROLE(TDI_3)},
            },
        /* TDI.22 a guest LOCKs only a CONFIG_UNLOCKED TDI assigned to it (see below: an
         * unassigned one has no owner) */
        [TSM_TDI_REQ_LOCK] =
            {
                [UNL] = {ROLE(TDI_22), OWN(TDI_22), OWN(TDI_22), ROLE(TDI_22)},
                [LCK] = {ROLE(TDI_22), ST(TDI_22), OWN(TDI_22), ROLE(TDI_22)},
                [RUN] = {ROLE(TDI_22), ST(TDI_22), OWN(TDI_22), ROLE(TDI_22)},
                [ERR] = {ROLE(TDI_22), ST(TDI_22), OWN(TDI_22), ROLE(TDI_22)},
            },
        /* TDI.23 the owner UNLOCKs (STOP) from CONFIG_LOCKED / RUN / ERROR */
        [TSM_TDI_REQ_UNLOCK] =
            {
                [UNL] = {ROLE(TDI_5), OWN(TDI_5), OWN(TDI_5), ROLE(TDI_5)},
                [LCK] = {ROLE(TDI_5), TO(UNL), OWN(TDI_5), ROLE(TDI_5)},
                [RUN] = {ROLE(TDI_5), TO(UNL), OWN(TDI_5), ROLE(TDI_5)},
                [ERR] = {ROLE(TDI_5), TO(UNL), OWN(TDI_5), ROLE(TDI_5)},
            },
        /* the host ends an assignment an UNLOCK left (TDI.2 / TDI.3) */
        [TSM_TDI_REQ_RELEASE] =
            {
                [UNL] = {TO(UNL), ROLE(TDI_3), ROLE(TDI_3), ROLE(TDI_3)},
                [LCK] = {ST(TDI_2), ROLE(TDI_3), ROLE(TDI_3), ROLE(TDI_3)},
                [RUN] = {ST(TDI_2), ROLE(TDI_3), ROLE(TDI_3), ROLE(TDI_3)},
                [ERR] = {ST(TDI_2), ROLE(TDI_3), ROLE(TDI_3), ROLE(TDI_3)},
            },
        /* TDI.24 DEBUG_WRITE forces ERROR from CONFIG_LOCKED / RUN (owner only) */
        [TSM_TDI_REQ_DEBUG_ERROR] =
            {
                [UNL] = {ROLE(TDI_5), OWN(TDI_5), OWN(TDI_5), ROLE(TDI_5)},
                [LCK] = {ROLE(TDI_5), TO(ERR), OWN(TDI_5), ROLE(TDI_5)},
                [RUN] = {ROLE(TDI_5), TO(ERR), OWN(TDI_5), ROLE(TDI_5)},
                [ERR] = {ROLE(TDI_5), ST(TDI_24), OWN(TDI_5), ROLE(TDI_5)},
            },
        /* DEBUG_READ: the owner, in every state it owns the TDI (TDI.6) */
        [TSM_TDI_REQ_DEBUG_READ] =
            {
                [UNL] = {ROLE(TDI_6), OWN(TDI_6), OWN(TDI_6), ROLE(TDI_6)},
                [LCK] = {ROLE(TDI_6), TO(LCK), OWN(TDI_6), ROLE(TDI_6)},
                [RUN] = {ROLE(TDI_6), TO(RUN), OWN(TDI_6), ROLE(TDI_6)},
                [ERR] = {ROLE(TDI_6), TO(ERR), OWN(TDI_6), ROLE(TDI_6)},
            },
        /* TDI.1 the host assigns (no lock) only from CONFIG_UNLOCKED; TDI.3 only the host */
        [TSM_TDI_REQ_ASSIGN] =
            {
                [UNL] = {TO(UNL), ROLE(TDI_3), ROLE(TDI_3), ROLE(TDI_3)},
                [LCK] = {ST(TDI_1), ROLE(TDI_3), ROLE(TDI_3), ROLE(TDI_3)},
                [RUN] = {ST(TDI_1), ROLE(TDI_3), ROLE(TDI_3), ROLE(TDI_3)},
                [ERR] = {ST(TDI_1), ROLE(TDI_3), ROLE(TDI_3), ROLE(TDI_3)},
            },
};

/*
 * A CONFIG_UNLOCKED TDI its owner's UNLOCK left assigned to OWNER_TVM:
 * expected_assigned[request][requester].
 */
static const struct expect expected_assigned[TSM_TDI_REQ_COUNT_][TSM_TDI_WHO_COUNT_] = {
    /*                             host         owning guest  other guest   tsm */
    [TSM_TDI_REQ_BIND] = {TO(LCK), ROLE(TDI_3), ROLE(TDI_3), ROLE(TDI_3)},
    [TSM_TDI_REQ_UNBIND] = {ST(TDI_2), ROLE(TDI_3), ROLE(TDI_3), ROLE(TDI_3)},
    [TSM_TDI_REQ_ACCEPT] = {ROLE(TDI_5), ST(TDI_4), OWN(TDI_5), ROLE(TDI_5)},
    [TSM_TDI_REQ_REJECT] = {ROLE(TDI_5), ST(TDI_5), OWN(TDI_5), ROLE(TDI_5)},
    [TSM_TDI_REQ_INFO] = {ROLE(TDI_6), ST(TDI_6), OWN(TDI_6), ROLE(TDI_6)},
    [TSM_TDI_REQ_LIST] = {TO(UNL), TO(UNL), OWN(TDI_6), ROLE(TDI_6)},
    [TSM_TDI_REQ_DEVICE_ERROR] = {ROLE(TDI_7), ROLE(TDI_7), ROLE(TDI_7), ST(TDI_7)},
    [TSM_TDI_REQ_LOCK] = {ROLE(TDI_22), TO(LCK), OWN(TDI_22), ROLE(TDI_22)},
    [TSM_TDI_REQ_UNLOCK] = {ROLE(TDI_5), ST(TDI_23), OWN(TDI_5), ROLE(TDI_5)},
    [TSM_TDI_REQ_RELEASE] = {TO(UNL), ROLE(TDI_3), ROLE(TDI_3), ROLE(TDI_3)},
    [TSM_TDI_REQ_DEBUG_ERROR] = {ROLE(TDI_5), ST(TDI_24), OWN(TDI_5), ROLE(TDI_5)},
    [TSM_TDI_REQ_DEBUG_READ] = {ROLE(TDI_6), TO(UNL), OWN(TDI_6), ROLE(TDI_6)},
    [TSM_TDI_REQ_RESET] = {ST(TDI_10), ROLE(TDI_3), ROLE(TDI_3), ROLE(TDI_3)},
    [TSM_TDI_REQ_ASSIGN] = {TO(UNL), ROLE(TDI_3), ROLE(TDI_3), ROLE(TDI_3)},
};

static vtsm_status status_of(enum kind k)
{
    switch (k) {
    case REFUSE_STATE:
        return VTSM_E_STATE;
    case REFUSE_OWNER:
        return VTSM_E_NOT_OWNER;
    case REFUSE_ROLE:
        return VTSM_E_ABI_ROLE;
    default:
        return VTSM_OK;
    }
}

/* ---- fixtures ---- */

/* A TDI in state s as a bind would have left it (owned by OWNER_TVM unless unlocked),
 * with recognisable contents so that "nothing else changed" can be checked bytewise. */
static void make_tdi(struct tsm_tdi *t, enum tsm_tdi_state s)
{
    assert_int_equal(tsm_tdi_init(t, DEV, TDI_INDEX), VTSM_OK);
    t->state = s; /* fixture only: the module writes state through tsm_tdi_set_state */
    t->lock_flags = 0x0001;
    if (s != UNL) {
        t->owner_tvm = OWNER_TVM;
        memset(t->lock_nonce, 0xA5, sizeof(t->lock_nonce));
        t->nonce_valid = s == LCK;
        memset(t->report_digest, 0x5A, 48);
        t->digest_len = 48;
        t->mmio_enabled = t->dma_enabled = s == RUN;
    }
}

static uint32_t tvm_of(enum tsm_tdi_who w)
{
    return w == TSM_TDI_WHO_OWNER_GUEST ? OWNER_TVM : w == TSM_TDI_WHO_OTHER_GUEST ? OTHER_TVM : 0;
}

static void assert_unchanged_except_state(const struct tsm_tdi *a, const struct tsm_tdi *b)
{
    struct tsm_tdi x = *a, y = *b;
    x.state = y.state = UNL;
    assert_memory_equal(&x, &y, sizeof(x));
}

static char cell_name[128];
static const char *cell(enum tsm_tdi_req r, enum tsm_tdi_state s, enum tsm_tdi_who w)
{
    snprintf(cell_name, sizeof(cell_name), "%s by %s from %s", tsm_tdi_req_name(r),
             tsm_tdi_who_name(w), tsm_tdi_state_name(s));
    return cell_name;
}

/* ---- failure cases ---- */

static void test_check_rejects_bad_arguments(void **state)
{
    struct tsm_tdi t;
    enum tsm_tdi_state next = ERR;
    (void)state;

    make_tdi(&t, LCK);
    assert_int_equal(tsm_tdi_check(NULL, TSM_TDI_REQ_INFO, TSM_TDI_WHO_HOST, 0, &next),
                     VTSM_E_INVAL);
    assert_int_equal(tsm_tdi_check(&t, TSM_TDI_REQ_COUNT_, TSM_TDI_WHO_HOST, 0, &next),
                     VTSM_E_INVAL);
    assert_int_equal(tsm_tdi_check(&t, TSM_TDI_REQ_INFO, TSM_TDI_WHO_COUNT_, 0, &next),
                     VTSM_E_INVAL);
    assert_int_equal(
        tsm_tdi_set_state(&t, (enum tsm_tdi_req) - 1, TSM_TDI_WHO_HOST, 0, TSM_TDI_RUN),
        VTSM_E_INVAL);
    t.state = TSM_TDI_STATE_COUNT_;
    assert_int_equal(tsm_tdi_check(&t, TSM_TDI_REQ_UNBIND, TSM_TDI_WHO_HOST, 0, &next),
                     VTSM_E_INVAL);
    assert_int_equal(next, ERR);
    assert_int_equal(tsm_tdi_init(&t, DEV, 0x10000), VTSM_E_INVAL);
    assert_int_equal(tsm_tdi_init(&t, NULL, 0), VTSM_E_INVAL);
}

/* A refusal carries its rule; the owner's refusal tells the owner the state. */
static void test_refusal_names_rule(void **state)
{
    struct tsm_tdi t;
    (void)state;

    make_tdi(&t, RUN);
    EXPECT(tsm_tdi_check(&t, TSM_TDI_REQ_ACCEPT, TSM_TDI_WHO_OWNER_GUEST, OWNER_TVM, NULL),
           VTSM_E_STATE, VTSM_RULE_TDI_4);
    assert_non_null(strstr(vtsm_err_detail(), "is RUN"));
    /* A guest that does not own the TDI learns nothing of its state. */
    EXPECT(tsm_tdi_check(&t, TSM_TDI_REQ_INFO, TSM_TDI_WHO_OTHER_GUEST, OTHER_TVM, NULL),
           VTSM_E_NOT_OWNER, VTSM_RULE_TDI_6);
    assert_null(strstr(vtsm_err_detail(), "RUN"));
}

/* A guest's claim to own a TDI is never taken: ownership comes from its TVM number. */
static void test_owner_claim_not_trusted(void **state)
{
    struct tsm_tdi t, before;
    (void)state;

    make_tdi(&t, LCK);
    before = t;
    assert_int_equal(
        tsm_tdi_set_state(&t, TSM_TDI_REQ_ACCEPT, TSM_TDI_WHO_OWNER_GUEST, OTHER_TVM, TSM_TDI_RUN),
        VTSM_E_NOT_OWNER);
    assert_memory_equal(&t, &before, sizeof(t));
    /* TVM 0 is nobody, even on a TDI whose owner field is 0 */
    make_tdi(&t, UNL);
    assert_int_equal(tsm_tdi_check(&t, TSM_TDI_REQ_INFO, TSM_TDI_WHO_OWNER_GUEST, 0, NULL),
                     VTSM_E_NOT_OWNER);
    /* ... and the owner is the owner whatever kind the caller names */
    make_tdi(&t, LCK);
    enum tsm_tdi_state next = UNL;
    assert_int_equal(
        tsm_tdi_check(&t, TSM_TDI_REQ_ACCEPT, TSM_TDI_WHO_OTHER_GUEST, OWNER_TVM, &next), VTSM_OK);
    assert_int_equal(next, RUN);
}

/* set_state refuses a move the table has, but to another state (rule TDI.0). */
static void test_set_state_refuses_wrong_target(void **state)
{
    struct tsm_tdi t, before;
    (void)state;

    make_tdi(&t, LCK);
    before = t;
    EXPECT(tsm_tdi_set_state(&t, TSM_TDI_REQ_UNBIND, TSM_TDI_WHO_HOST, 0, TSM_TDI_ERROR),
           VTSM_E_STATE, VTSM_RULE_TDI_0);
    assert_memory_equal(&t, &before, sizeof(t));
}

/* ---- the whole table ---- */

/* One cell: check and set_state agree with e, and change nothing they must not. Returns
 * whether the move was accepted. */
static bool check_cell(unsigned r, unsigned s, unsigned w, const struct expect *e, bool assigned)
{
    struct tsm_tdi t, before;
    enum tsm_tdi_state next = (enum tsm_tdi_state)0x55;
    char name[160];

    snprintf(name, sizeof(name), "%s%s", cell(r, s, w), assigned ? " (assigned)" : "");
    if (e->kind == 0)
        fail_msg("expected table has no entry for %s", name);
    make_tdi(&t, s);
    if (assigned) {
        t.owner_tvm = OWNER_TVM;
        t.guest_unlocked = true;
    }
    before = t;
    vtsm_err_clear();
    vtsm_status got = tsm_tdi_check(&t, r, w, tvm_of(w), &next);
    if (got != status_of(e->kind)) {
        char g[64]; /* status names share one buffer */
        snprintf(g, sizeof(g), "%s", vtsm_status_name(got));
        fail_msg("%s: check gave %s (%s), contract says %s", name, g, vtsm_err_detail(),
                 vtsm_status_name(status_of(e->kind)));
    }
    assert_memory_equal(&t, &before, sizeof(t));

    if (e->kind == GO) {
        if (next != e->to)
            fail_msg("%s: leads to %s, contract says %s", name, tsm_tdi_state_name(next),
                     tsm_tdi_state_name(e->to));
        /* every other target is refused, naming TDI.0, without change */
        for (unsigned to = 0; to < TSM_TDI_STATE_COUNT_; to++) {
            if (to == e->to)
                continue;
            if (tsm_tdi_set_state(&t, r, w, tvm_of(w), to) != VTSM_E_STATE ||
                vtsm_err_rule() != VTSM_RULE_TDI_0)
                fail_msg("%s: set_state to %s not refused under TDI.0", name,
                         tsm_tdi_state_name(to));
            assert_memory_equal(&t, &before, sizeof(t));
        }
        /* the writer takes the move, and changes nothing but the state */
        if (tsm_tdi_set_state(&t, r, w, tvm_of(w), e->to) != VTSM_OK)
            fail_msg("%s: set_state refused: %s", name, vtsm_err_detail());
        assert_int_equal(t.state, e->to);
        assert_unchanged_except_state(&t, &before);
        return true;
    }

    if (next != (enum tsm_tdi_state)0x55)
        fail_msg("%s: refused check wrote *next", name);
    if (vtsm_err_rule() != e->rule)
        fail_msg("%s: refused under rule %s, contract says %s (%s)", name,
                 vtsm_test_rule_name(vtsm_err_rule()), vtsm_rule_id(e->rule), vtsm_err_detail());
    /* the writer refuses it the same way, for every target, with no change */
    for (unsigned to = 0; to < TSM_TDI_STATE_COUNT_; to++) {
        got = tsm_tdi_set_state(&t, r, w, tvm_of(w), to);
        if (got != status_of(e->kind) || vtsm_err_rule() != e->rule)
            fail_msg("%s: set_state to %s gave %s", name, tsm_tdi_state_name(to),
                     vtsm_status_name(got));
        assert_memory_equal(&t, &before, sizeof(t));
    }
    return false;
}

static void test_every_cell(void **state)
{
    unsigned accepted = 0, refused = 0;
    (void)state;

    for (unsigned r = 0; r < TSM_TDI_REQ_COUNT_; r++)
        for (unsigned s = 0; s < TSM_TDI_STATE_COUNT_; s++)
            for (unsigned w = 0; w < TSM_TDI_WHO_COUNT_; w++) {
                if (check_cell(r, s, w, &expected[r][s][w], false))
                    accepted++;
                else
                    refused++;
            }
    assert_int_equal(accepted + refused,
                     TSM_TDI_REQ_COUNT_ * TSM_TDI_STATE_COUNT_ * TSM_TDI_WHO_COUNT_);
    assert_int_equal(accepted, 31);
}

/* The assigned, unlocked TDI (after its owner's UNLOCK): every request, every requester. */
static void test_every_cell_assigned(void **state)
{
    unsigned accepted = 0;
    (void)state;

    for (unsigned r = 0; r < TSM_TDI_REQ_COUNT_; r++)
        for (unsigned w = 0; w < TSM_TDI_WHO_COUNT_; w++)
            accepted += check_cell(r, UNL, w, &expected_assigned[r][w], true);
    assert_int_equal(accepted, 7);
}

/* The table the implementation exposes lists exactly the specified accepted cells. */
static void test_exposed_table_matches_contract(void **state)
{
    unsigned go_cells = 0;
    (void)state;

    for (unsigned r = 0; r < TSM_TDI_REQ_COUNT_; r++) {
        for (unsigned s = 0; s < TSM_TDI_STATE_COUNT_; s++)
            for (unsigned w = 0; w < TSM_TDI_WHO_COUNT_; w++)
                go_cells += expected[r][s][w].kind == GO;
        /* moves only an assignment makes possible: the owner's, from CONFIG_UNLOCKED */
        go_cells += expected_assigned[r][TSM_TDI_WHO_OWNER_GUEST].kind == GO;
    }
    assert_int_equal(tsm_tdi_moves_count, go_cells);
    for (size_t i = 0; i < tsm_tdi_moves_count; i++) {
        const struct tsm_tdi_move *m = &tsm_tdi_moves[i];
        const struct expect *e = m->from == UNL && m->who == TSM_TDI_WHO_OWNER_GUEST
                                     ? &expected_assigned[m->req][m->who]
                                     : &expected[m->req][m->from][m->who];
        if (e->kind != GO || e->to != m->to)
            fail_msg("table move %zu (%s) is not in the specification", i,
                     cell(m->req, m->from, m->who));
        assert_int_equal(strncmp(vtsm_rule_id(m->rule), "TDI.", 4), 0);
        for (size_t j = 0; j < i; j++)
            if (tsm_tdi_moves[j].req == m->req && tsm_tdi_moves[j].from == m->from &&
                tsm_tdi_moves[j].who == m->who)
                fail_msg("table lists %s twice", cell(m->req, m->from, m->who));
    }
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(tsm_tdi_state_name(TSM_TDI_CONFIG_UNLOCKED), "CONFIG_UNLOCKED");
    assert_string_equal(tsm_tdi_state_name(TSM_TDI_CONFIG_LOCKED), "CONFIG_LOCKED");
    assert_string_equal(tsm_tdi_state_name(TSM_TDI_RUN), "RUN");
    assert_string_equal(tsm_tdi_state_name(TSM_TDI_ERROR), "ERROR");
    assert_string_equal(tsm_tdi_state_name(TSM_TDI_STATE_COUNT_), "invalid");
    assert_string_equal(tsm_tdi_req_name(TSM_TDI_REQ_DEVICE_ERROR), "device_error");
    assert_string_equal(tsm_tdi_who_name(TSM_TDI_WHO_HOST), "host");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_rejects_bad_arguments),
        cmocka_unit_test(test_refusal_names_rule),
        cmocka_unit_test(test_owner_claim_not_trusted),
        cmocka_unit_test(test_set_state_refuses_wrong_target),
        cmocka_unit_test(test_every_cell),
        cmocka_unit_test(test_every_cell_assigned),
        cmocka_unit_test(test_exposed_table_matches_contract),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
