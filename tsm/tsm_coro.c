/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Coroutines on ucontext (makecontext / swapcontext), one stack each.
 *
 * Why ucontext and not hand-written continuations: the SPDM requester, IDE_KM and TDISP
 * flows are straight-line protocol code (one file per request message) that calls a
 * transport; turning every call site into a state machine would make the reference code
 * unreadable. A coroutine per job keeps that code as it is and makes the transport the
 * one place that yields.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include "tsm_coro.h"
#include "vtsm_guard.h"

#if defined(__SANITIZE_ADDRESS__)
#define TSM_CORO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TSM_CORO_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define TSM_CORO_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TSM_CORO_TSAN 1
#endif
#endif

#ifdef TSM_CORO_ASAN
void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom, size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save, const void **bottom_old,
                                     size_t *size_old);
void __asan_unpoison_memory_region(const volatile void *addr, size_t size);
#endif
#ifdef TSM_CORO_TSAN
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
#endif

/* Sanitizers make frames much larger. Pages are only touched when used. */
#if defined(TSM_CORO_ASAN) || defined(TSM_CORO_TSAN)
#define STACK_SIZE (2u << 20)
#else
#define STACK_SIZE (256u << 10)
#endif

struct tsm_coro {
    ucontext_t ctx;    /* the coroutine's saved context */
    ucontext_t caller; /* where tsm_coro_resume() was called */
    uint8_t *map;      /* guard page + stack */
    size_t map_len;
    tsm_coro_fn fn;
    void *arg;
    bool started, done;
    struct vtsm_err_state err; /* the coroutine's error record while it is suspended */
#ifdef TSM_CORO_ASAN
    void *fake_stack;          /* the coroutine's fake stack while suspended */
    const void *caller_bottom; /* the loop's stack, to switch back to */
    size_t caller_size;
#endif
#ifdef TSM_CORO_TSAN
    void *fiber, *caller_fiber;
#endif
};

static struct tsm_coro *running;

struct tsm_coro *tsm_coro_current(void)
{
    return running;
}

/* Switch from the coroutine back to its caller; final is true when fn has returned. */
static void switch_out(struct tsm_coro *c, bool final)
{
#ifdef TSM_CORO_ASAN
    __sanitizer_start_switch_fiber(final ? NULL : &c->fake_stack, c->caller_bottom, c->caller_size);
#else
    (void) final;
#endif
#ifdef TSM_CORO_TSAN
    __tsan_switch_to_fiber(c->caller_fiber, 0);
#endif
    swapcontext(&c->ctx, &c->caller);
#ifdef TSM_CORO_ASAN
    __sanitizer_finish_switch_fiber(c->fake_stack, &c->caller_bottom, &c->caller_size);
#endif
}

/* makecontext passes int arguments only: the coroutine is taken from `running`. */
static void trampoline(void)
{
    struct tsm_coro *c = running;
#ifdef TSM_CORO_ASAN
    __sanitizer_finish_switch_fiber(NULL, &c->caller_bottom, &c->caller_size);
#endif
    c->fn(c->arg);
    c->done = true;
    switch_out(c, true);
    abort(); /* a finished coroutine is never resumed */
}

/* Stacks of finished coroutines, kept for the next ones: a guest request is a job too,
 * and mapping, guarding and unmapping a stack for each would cost more than its work.
 * A kept stack's pages are dropped (MADV_DONTNEED: read back as zeros), so nothing a job
 * left on its stack outlives the job, as with munmap. Loop thread only. */
#define STACK_CACHE 16
static struct {
    uint8_t *map[STACK_CACHE];
    unsigned n;
} stacks;

/* A stack with its guard page: a kept one, or a new mapping. */
static uint8_t *stack_get(size_t map_len, long page)
{
    if (stacks.n > 0)
        return stacks.map[--stacks.n];
    uint8_t *m =
        mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    /* the lowest page stays inaccessible: an overflow faults instead of corrupting */
    if (mprotect(m, (size_t)page, PROT_NONE) != 0) {
        munmap(m, map_len);
        return NULL;
    }
    return m;
}

static void stack_put(uint8_t *m, size_t map_len, long page)
{
    if (stacks.n < STACK_CACHE && madvise(m + page, map_len - (size_t)page, MADV_DONTNEED) == 0) {
#ifdef TSM_CORO_ASAN
        __asan_unpoison_memory_region(m + page, map_len - (size_t)page);
#endif
        stacks.map[stacks.n++] = m;
        return;
    }
    munmap(m, map_len);
}

vtsm_status tsm_coro_new(tsm_coro_fn fn, void *arg, struct tsm_coro **out)
{
    struct tsm_coro *c = calloc(1, sizeof(*c));
    VTSM_ENSURE(c, VTSM_E_NOMEM, "coroutine");
    long page = sysconf(_SC_PAGESIZE);
    c->map_len = STACK_SIZE + (size_t)page;
    c->map = stack_get(c->map_len, page);
    if (!c->map) {
        free(c);
        return vtsm_fail(VTSM_E_NOMEM, "coroutine stack of %u bytes", STACK_SIZE);
    }
    if (getcontext(&c->ctx) != 0) {
        stack_put(c->map, c->map_len, page);
        free(c);
        return vtsm_fail(VTSM_E_NOMEM, "coroutine context");
    }
    c->ctx.uc_stack.ss_sp = c->map + page;
    c->ctx.uc_stack.ss_size = STACK_SIZE;
    c->ctx.uc_link = NULL;
    makecontext(&c->ctx, trampoline, 0);
    c->fn = fn;
    c->arg = arg;
#ifdef TSM_CORO_TSAN
    c->fiber = __tsan_create_fiber(0);
#endif
    *out = c;
    return VTSM_OK;
}

bool tsm_coro_resume(struct tsm_coro *c)
{
    if (c->done || running)
        abort(); /* a programming error: resumed after its end, or from a coroutine */
    struct vtsm_err_state loop_err;
    vtsm_err_save(&loop_err);
    if (c->started)
        vtsm_err_restore(&c->err);
    else
        vtsm_err_clear();
    c->started = true;
    running = c;
#ifdef TSM_CORO_ASAN
    void *fake = NULL;
    __sanitizer_start_switch_fiber(&fake, c->map + (c->map_len - STACK_SIZE), STACK_SIZE);
#endif
#ifdef TSM_CORO_TSAN
    c->caller_fiber = __tsan_get_current_fiber();
    __tsan_switch_to_fiber(c->fiber, 0);
#endif
    swapcontext(&c->caller, &c->ctx);
#ifdef TSM_CORO_ASAN
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
    running = NULL;
    vtsm_err_save(&c->err);
    vtsm_err_restore(&loop_err);
    return c->done;
}

void tsm_coro_yield(void)
{
    struct tsm_coro *c = running;
    if (!c)
        abort(); /* yield outside a coroutine */
    switch_out(c, false);
}

void tsm_coro_free(struct tsm_coro *c)
{
    if (!c)
        return;
    if (c->started && !c->done)
        abort(); /* freeing a suspended coroutine would leak what its stack owns */
#ifdef TSM_CORO_TSAN
    __tsan_destroy_fiber(c->fiber);
#endif
    stack_put(c->map, c->map_len, sysconf(_SC_PAGESIZE));
    explicit_bzero(&c->err, sizeof(c->err));
    free(c);
}
