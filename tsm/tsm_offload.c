/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Crypto off the loop: one worker thread runs the heavy asymmetric operations (ECDSA sign
 * and verify, ECDHE generate and derive) of the jobs, so the loop keeps serving while a
 * job's crypto runs and tsmd uses a second core.
 *
 * A job that reaches such an operation hands it to the worker and yields; the worker
 * posts the finished task back and the loop resumes the job, which then sees the result
 * and the error record the operation left. Nothing else crosses threads: the task lives
 * on the suspended job's stack, the worker touches only what the operation's arguments
 * name (the job's own keys and buffers, which nobody else can reach while it is
 * suspended), and object state stays on the loop. Tasks travel as pointers through two
 * pipes (to the worker, and back), which order everything between the threads; there is
 * no lock. Outside a coroutine (start-up, a queued guest request run on the loop's stack)
 * an operation runs where it is called.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tsm_coro.h"
#include "tsm_int.h"
#include "vtsm_crypto.h"
#include "vtsm_guard.h"
#include "vtsm_log.h"

struct tsm_offload_task {
    vtsm_crypto_work_fn fn;
    void *arg;
    vtsm_status st;
    struct vtsm_err_state err; /* the operation's error record, from the worker */
    struct tsm_job *job;       /* to resume when done */
    /* a background task (bg_post): the job goes on while it runs and is
     * resumed only if it waits for it (joining) when it is done */
    bool background, done, joining;
    void (*free_arg)(void *); /* frees arg when the job ends without joining (j->bg) */
};

static struct {
    bool running;
    pthread_t thread;
    pthread_t loop;   /* the thread that started the worker: the loop */
    int to_worker[2]; /* task pointers to run */
    int to_loop[2];   /* task pointers done */
    unsigned inflight;
} pool = {.to_worker = {-1, -1}, .to_loop = {-1, -1}};

static bool read_ptr(int fd, struct tsm_offload_task **t)
{
    for (;;) {
        ssize_t k = read(fd, t, sizeof(*t));
        if (k == (ssize_t)sizeof(*t))
            return true;
        if (k < 0 && errno == EINTR)
            continue;
        return false; /* EOF (stop), EAGAIN, or an error */
    }
}

static void write_ptr(int fd, struct tsm_offload_task *t)
{
    /* one pointer is far below PIPE_BUF: the write is whole */
    while (write(fd, &t, sizeof(t)) < 0 && errno == EINTR) {
    }
}

static void *worker(void *unused)
{
    (void)unused;
    struct tsm_offload_task *t;
    while (read_ptr(pool.to_worker[0], &t)) {
        vtsm_err_clear();
        t->st = t->fn(t->arg);
        vtsm_err_save(&t->err);
        write_ptr(pool.to_loop[1], t);
    }
    vtsm_err_clear();
    return NULL;
}

/* vtsm_crypto_exec_fn: inside a job, while other jobs are in flight, on the worker while
 * the job yields, so the loop keeps serving and tsmd's crypto uses a second core. A lone
 * job runs its crypto in place: the hand-off costs two thread switches, and with nothing
 * else to do the loop would only wait for it. A device-less job (a guest request) goes to
 * the worker only when the worker is idle: behind a queue of connect crypto it would wait
 * longer than its own check takes, and with the worker busy the loop checking it is what
 * keeps both cores working. One marked keep_order (a guest request whose TVM has one on
 * the worker) always queues behind that one: the worker finishes tasks in the order
 * given, so a TVM's requests are judged in the order sent. */
static vtsm_status offload_exec(vtsm_crypto_work_fn fn, void *arg)
{
    if (pool.running && !pthread_equal(pthread_self(), pool.loop))
        return fn(arg); /* on the worker already: a background task's own crypto */
    struct tsm_job *j = tsm_job_current();
    bool queue =
        j && (j->keep_order || (tsm_job_count(j->t) >= 2 && (j->p != NULL || pool.inflight == 0)));
    if (!pool.running || !queue)
        return fn(arg);
    struct tsm_offload_task t = {.fn = fn, .arg = arg, .job = j};
    pool.inflight++;
    j->on_worker = true;
    write_ptr(pool.to_worker[1], &t);
    tsm_coro_yield(); /* resumed by tsm_offload_complete */
    j->on_worker = false;
    vtsm_err_restore(&t.err);
    explicit_bzero(&t.err, sizeof(t.err));
    return t.st;
}

/*
 * Background work of a job: the job posts fn(arg) to the worker and goes on with its
 * exchanges, and waits for it later (yielding only if it is not done yet). Only for a job
 * on the loop that runs alone: with other jobs in flight their crypto keeps the worker
 * busy and the loop's core is the one to spare, so the caller does the work in place (as
 * it would without a worker). NULL: not posted.
 */
static struct tsm_offload_task *bg_post(vtsm_crypto_work_fn fn, void *arg, void (*free_arg)(void *))
{
    struct tsm_job *j = tsm_job_current();
    if (!pool.running || !j || !pthread_equal(pthread_self(), pool.loop) || j->keep_order ||
        tsm_job_count(j->t) >= 2)
        return NULL;
    struct tsm_offload_task *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    *t = (struct tsm_offload_task){
        .fn = fn, .arg = arg, .job = j, .background = true, .free_arg = free_arg};
    pool.inflight++;
    write_ptr(pool.to_worker[1], t);
    return t;
}

/* Wait for t, free it and return its status; with_err: with the error record it left. */
static vtsm_status bg_wait(struct tsm_offload_task *t, bool with_err)
{
    struct tsm_job *j = t->job;
    if (!t->done) {
        t->joining = true;
        j->on_worker = true;
        tsm_coro_yield(); /* resumed by tsm_offload_complete */
        j->on_worker = false;
    }
    vtsm_status st = t->st;
    if (with_err && st != VTSM_OK)
        vtsm_err_restore(&t->err);
    explicit_bzero(&t->err, sizeof(t->err));
    free(t);
    return st;
}

/* vtsm_crypto_set_async: an operation a job begins (vtsm_dhe_derive_start) and waits for. */
static void *async_start(vtsm_crypto_work_fn fn, void *arg)
{
    return bg_post(fn, arg, NULL);
}

static vtsm_status async_wait(void *handle)
{
    return bg_wait(handle, true);
}

vtsm_status tsm_offload_start(void)
{
    VTSM_ENSURE(pipe2(pool.to_worker, O_CLOEXEC) == 0 &&
                    pipe2(pool.to_loop, O_CLOEXEC | O_NONBLOCK) == 0,
                VTSM_E_IO, "crypto worker pipes: %s", strerror(errno));
    pool.loop = pthread_self();
    if (pthread_create(&pool.thread, NULL, worker, NULL) != 0) {
        tsm_offload_stop();
        return vtsm_fail(VTSM_E_NOMEM, "cannot start the crypto worker");
    }
    pool.running = true;
    vtsm_crypto_set_exec(offload_exec);
    vtsm_crypto_set_async(async_start, async_wait);
    return VTSM_OK;
}

int tsm_offload_fd(void)
{
    return pool.running ? pool.to_loop[0] : -1;
}

bool tsm_offload_busy(void)
{
    return pool.inflight > 0;
}

void tsm_offload_complete(void)
{
    struct tsm_offload_task *t;
    while (pool.running && read_ptr(pool.to_loop[0], &t)) {
        pool.inflight--;
        if (t->background) {
            t->done = true; /* t belongs to its job (j->bg) until it joins */
            if (!t->joining)
                continue;
        }
        tsm_job_resume(t->job); /* t lives on that job's stack: not used after this */
    }
}

/*
 * The job's own background task (j->bg), for work whose result it needs several exchanges
 * later: the certificate chain is judged against the trust store while KEY_EXCHANGE,
 * FINISH and GET_MEASUREMENTS are in flight (the connect uses the verdict only after
 * them). arg is the task's alone until the join: heap memory that the job's other work
 * does not touch. One at a time per job; job_main joins whatever is left, so a job that
 * fails early never leaves a task behind.
 */
bool tsm_offload_begin(vtsm_crypto_work_fn fn, void *arg, void (*free_arg)(void *))
{
    struct tsm_job *j = tsm_job_current();
    if (!j || j->bg)
        return false;
    struct tsm_offload_task *t = bg_post(fn, arg, free_arg);
    if (!t)
        return false;
    j->bg = t;
    return true;
}

vtsm_status tsm_offload_join(struct tsm_job *j, bool discard)
{
    struct tsm_offload_task *t = j->bg;
    if (!t)
        return VTSM_OK;
    void *arg = t->arg;
    void (*free_arg)(void *) = t->free_arg;
    j->bg = NULL;
    vtsm_status st = bg_wait(t, !discard);
    if (discard && free_arg)
        free_arg(arg);
    return st;
}

void tsm_offload_wait(void)
{
    while (pool.inflight > 0) {
        struct pollfd p = {.fd = pool.to_loop[0], .events = POLLIN};
        if (poll(&p, 1, -1) > 0)
            tsm_offload_complete();
    }
}

void tsm_offload_stop(void)
{
    tsm_offload_wait();
    vtsm_crypto_set_exec(NULL);
    vtsm_crypto_set_async(NULL, NULL);
    if (pool.running) {
        close(pool.to_worker[1]); /* EOF: the worker ends */
        pool.to_worker[1] = -1;
        pthread_join(pool.thread, NULL);
        pool.running = false;
    }
    for (int i = 0; i < 2; i++) {
        if (pool.to_worker[i] >= 0)
            close(pool.to_worker[i]);
        if (pool.to_loop[i] >= 0)
            close(pool.to_loop[i]);
        pool.to_worker[i] = pool.to_loop[i] = -1;
    }
}
