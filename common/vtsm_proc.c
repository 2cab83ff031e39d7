/* SPDX-License-Identifier: BSD-3-Clause */
#include "vtsm_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

long long vtsm_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

long vtsm_now_ms(void)
{
    return (long)(vtsm_now_ns() / 1000000LL);
}

int vtsm_proc_self_dir(char *out, size_t cap)
{
    ssize_t n = readlink("/proc/self/exe", out, cap - 1);
    if (n <= 0)
        return -1;
    out[n] = '\0';
    char *slash = strrchr(out, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    return 0;
}

pid_t vtsm_proc_start(const char *dir, const char *prog, const char *const *args, int out_fd,
                      int err_fd)
{
    char path[PATH_MAX];
    const char *argv[64];
    int n = 0;
    snprintf(path, sizeof(path), "%s/%s", dir, prog);
    argv[n++] = path;
    for (int i = 0; args && args[i] && n < 63; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(out_fd >= 0 ? out_fd : null, 1);
        dup2(err_fd >= 0 ? err_fd : null, 2);
        execv(path, (char *const *)argv);
        dprintf(2, "cannot run %s: %s\n", path, strerror(errno));
        _exit(127);
    }
    return pid;
}

int vtsm_proc_wait_port(const char *file, int timeout_ms)
{
    for (long end = vtsm_now_ms() + timeout_ms; vtsm_now_ms() < end; usleep(5000)) {
        FILE *f = fopen(file, "r");
        int port = 0;
        if (f) {
            int ok = fscanf(f, "%d", &port);
            fclose(f);
            if (ok == 1 && port > 0)
                return port;
        }
    }
    return 0;
}

int vtsm_proc_wait_socket(const char *path, int timeout_ms)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    for (long end = vtsm_now_ms() + timeout_ms; vtsm_now_ms() < end; usleep(5000)) {
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int rc = connect(s, (struct sockaddr *)&sa, sizeof(sa));
        close(s);
        if (rc == 0)
            return 0;
    }
    return -1;
}

int vtsm_proc_wait(pid_t pid, int timeout_ms)
{
    int st = 0;
    for (long end = vtsm_now_ms() + timeout_ms; vtsm_now_ms() < end; usleep(2000))
        if (waitpid(pid, &st, WNOHANG) == pid)
            return st;
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return st;
}

int vtsm_proc_stop(pid_t pid, int grace_ms)
{
    kill(pid, SIGTERM);
    return vtsm_proc_wait(pid, grace_ms);
}
