/* SPDX-License-Identifier: BSD-3-Clause */
#include "vtsm_log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

static const char *log_prog = "vtsm";
static enum vtsm_log_level log_level = VTSM_LOG_WARN;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void vtsm_log_init(const char *prog, enum vtsm_log_level level)
{
    log_prog = prog;
    log_level = level;
}

void vtsm_log(enum vtsm_log_level level, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    if (level > log_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&log_lock);
    fprintf(stderr, "%s: %s: ", log_prog, names[level]);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    pthread_mutex_unlock(&log_lock);
    va_end(ap);
}
