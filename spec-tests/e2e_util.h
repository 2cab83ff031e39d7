/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * End-to-end test harness: real tsmd and tsm-devemu processes in a private temporary
 * directory (no fixed ports or paths), driven by the real tsm-host CLI or by a raw ABI
 * client. Every started process is killed and reaped by e2e_teardown(), also when a
 * test fails (cmocka teardown runs on failure).
 */
#ifndef E2E_UTIL_H
#define E2E_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <cbor.h>

#define E2E_MAX_PROCS 80

struct e2e {
    char dir[64];
    char sock[100];
    pid_t pids[E2E_MAX_PROCS];
    int npids;
    int ndevemu; /* tsm-devemu processes started: dev1.log, dev2.log ... */
};

struct e2e_run {
    int status; /* exit code, or 128+signal */
    char out[65536];
    char err[8192];
};

/* mkdtemp + start tsmd on dir/tsmd.sock (extra args NULL-terminated, may be NULL). */
int e2e_setup(struct e2e *e, const char *const *tsmd_args);
/* Stops every process; -1 if any of them did not exit 0 (crash, sanitizer report). */
int e2e_teardown(struct e2e *e);

/* Start a tsm-devemu on a free port; returns the port (0 on failure). args NULL-terminated.
 * Its stderr (the log; --verbose for info lines) goes to dir/devN.log, N counting the
 * devices started in e from 1 (e->ndevemu is the last). */
int e2e_devemu(struct e2e *e, const char *const *args);
/* The log of the Nth device started (as much as fits buf, NUL-terminated). 0 on success. */
int e2e_devemu_log(const struct e2e *e, int n, char *buf, size_t cap);

/* Run tsm-host with --socket set; argv NULL-terminated (without the program name). */
int e2e_host(struct e2e *e, struct e2e_run *r, const char *const *argv);

/* "tcp:127.0.0.1:PORT" into buf. */
const char *e2e_doe(char *buf, size_t cap, int port);

/* Raw ABI client: connect and (optionally) HELLO as host. Returns fd or -1. */
int e2e_abi_connect(struct e2e *e, bool hello);
/* Send a message and free it. 0 on success. */
int e2e_abi_send(int fd, cbor_item_t *msg);
/* Receive one message (timeout 20 s). NULL on failure. */
cbor_item_t *e2e_abi_recv(int fd);
/* Convenience: op and id of a message, status name of an ERROR ("" if not ERROR). */
unsigned e2e_op(const cbor_item_t *m);
const char *e2e_err_name(const cbor_item_t *m, char *buf, size_t cap);

/* cmocka fixtures: a fresh tsmd per test (extra tsmd arguments from e2e_tsmd_args). */
extern const char *const *e2e_tsmd_args;
int e2e_fixture_setup(void **state);
int e2e_fixture_teardown(void **state);

/* Fail the test unless needle occurs in hay (shows hay). */
#define E2E_HAS(hay, needle)                                                                       \
    do {                                                                                           \
        if (!strstr((hay), (needle)))                                                              \
            fail_msg("expected %s in:\n%s", (needle), (hay));                                      \
    } while (0)

/* Kill a process started by the harness (SIGKILL) and reap it. */
void e2e_kill(struct e2e *e, pid_t pid);

#endif
