/* SPDX-License-Identifier: BSD-3-Clause */
#include "vtsm_log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <syslog.h>
#include <time.h>

static const char *log_prog = "vtsm";
static enum vtsm_log_level log_level = VTSM_LOG_WARN;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static bool log_to_syslog;

void vtsm_log_init(const char *prog, enum vtsm_log_level level)
{
    log_prog = prog;
    log_level = level;
}

void vtsm_log_syslog(void)
{
    openlog(log_prog, LOG_PID, LOG_DAEMON);
    log_to_syslog = true;
}

void vtsm_log_timestamp(char *buf, unsigned long cap)
{
    struct timespec ts;
    struct tm tm;
    if (!buf || cap == 0)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000);
}

void vtsm_log(enum vtsm_log_level level, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
    if (level > log_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    if (log_to_syslog) {
        vsyslog(prio[level], fmt, ap);
        va_end(ap);
        return;
    }
    char when[40];
    vtsm_log_timestamp(when, sizeof(when));
    pthread_mutex_lock(&log_lock);
    fprintf(stderr, "%s %s: %s: ", when, log_prog, names[level]);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    pthread_mutex_unlock(&log_lock);
    va_end(ap);
}
