/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Starting and stopping the project's own programs (tsmd, tsm-devemu, tsm-host) from
 * the demo, the benchmark and the end-to-end tests.
 */
#ifndef VTSM_PROC_H
#define VTSM_PROC_H

#include <stddef.h>
#include <sys/types.h>

/* Directory holding the running executable (for finding sibling programs). */
int vtsm_proc_self_dir(char *out, size_t cap);
/* fork+exec dir/prog with args (NULL-terminated, without argv[0]); stdin is /dev/null,
 * stdout/stderr go to out_fd/err_fd or /dev/null when < 0. Returns the pid or -1. */
pid_t vtsm_proc_start(const char *dir, const char *prog, const char *const *args, int out_fd,
                      int err_fd);
/* Wait until file holds a positive integer (a port written by tsm-devemu --port-file). */
int vtsm_proc_wait_port(const char *file, int timeout_ms);
/* Wait until a Unix socket accepts connections. 0 on success. */
int vtsm_proc_wait_socket(const char *path, int timeout_ms);
/* Wait up to timeout_ms for pid to exit, then SIGKILL it; always reaps. Returns the wait
 * status. */
int vtsm_proc_wait(pid_t pid, int timeout_ms);
/* SIGTERM, wait up to grace_ms, then SIGKILL; always reaps. Returns the wait status. */
int vtsm_proc_stop(pid_t pid, int grace_ms);
/* Monotonic clock in ms / ns. */
long vtsm_now_ms(void);
long long vtsm_now_ns(void);

#endif
