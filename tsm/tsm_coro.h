/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Coroutines for tsmd's jobs: a function that runs on its own stack and can give control
 * back to the event loop in the middle (tsm_coro_yield) to be resumed later, the way a
 * firmware TSM returns "needs a DOE exchange" from an SPDM call and is entered again
 * with the response. The protocol code above the transport stays straight-line.
 *
 * Everything runs on the loop's thread: a coroutine runs only between tsm_coro_resume()
 * and its next yield (or its end), so no two run at once and none needs a lock. Each
 * coroutine keeps its own error record (vtsm_err_*): the switch saves and restores it,
 * so a failure detail never leaks between flows. Stacks are mmap'd with a guard page
 * below; AddressSanitizer and ThreadSanitizer are told about every switch.
 */
#ifndef TSM_CORO_H
#define TSM_CORO_H

#include <stdbool.h>

#include "vtsm_err.h"

struct tsm_coro;
typedef void (*tsm_coro_fn)(void *arg);

/* A new coroutine that will run fn(arg) when first resumed. E_NOMEM on failure. */
vtsm_status tsm_coro_new(tsm_coro_fn fn, void *arg, struct tsm_coro **out);
/* Run c until it yields or returns. Returns true once fn has returned (then only
 * tsm_coro_free may be called). Called from the loop, never from inside a coroutine. */
bool tsm_coro_resume(struct tsm_coro *c);
/* Inside a coroutine: return control to the tsm_coro_resume() that entered it. */
void tsm_coro_yield(void);
/* The running coroutine, NULL on the loop's own stack. */
struct tsm_coro *tsm_coro_current(void);
/* Release a coroutine that finished or was never started. NULL is ignored. */
void tsm_coro_free(struct tsm_coro *c);

#endif
