/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Leveled logging: each line on stderr starts with a UTC timestamp (microseconds) and the
 * program name; or, after vtsm_log_syslog(), to syslog (daemon facility) instead.
 */
#ifndef VTSM_LOG_H
#define VTSM_LOG_H

enum vtsm_log_level { VTSM_LOG_ERROR = 0, VTSM_LOG_WARN, VTSM_LOG_INFO, VTSM_LOG_DEBUG };

void vtsm_log_init(const char *prog, enum vtsm_log_level level);
/* Send log lines to syslog from now on (ident: the program name given to vtsm_log_init). */
void vtsm_log_syslog(void);
/* "2026-12-04T20:50:01.123456Z" (UTC, always NUL-terminated). */
void vtsm_log_timestamp(char *buf, unsigned long cap);
void vtsm_log(enum vtsm_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define VTSM_ERR(...)  vtsm_log(VTSM_LOG_ERROR, __VA_ARGS__)
#define VTSM_WARN(...) vtsm_log(VTSM_LOG_WARN, __VA_ARGS__)
#define VTSM_INFO(...) vtsm_log(VTSM_LOG_INFO, __VA_ARGS__)
#define VTSM_DBG(...)  vtsm_log(VTSM_LOG_DEBUG, __VA_ARGS__)

#endif
