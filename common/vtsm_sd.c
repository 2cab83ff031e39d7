/* SPDX-License-Identifier: BSD-3-Clause */
#include "vtsm_sd.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* A decimal number in [1, max], the whole string. */
static long parse_positive(const char *s, long max)
{
    char *end = NULL;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : -1;
    if (!s || errno || end == s || *end || v < 1 || v > max)
        return -1;
    return v;
}

int vtsm_sd_listen_fds(void)
{
    const char *pid_s = getenv("LISTEN_PID");
    const char *fds_s = getenv("LISTEN_FDS");
    int n = 0;

    if (pid_s) {
        long pid = parse_positive(pid_s, INT_MAX);
        if (pid < 0) {
            n = -1;
        } else if ((pid_t)pid == getpid()) {
            long fds = parse_positive(fds_s, INT_MAX - VTSM_SD_LISTEN_FDS_START);
            n = fds < 0 ? -1 : (int)fds;
        }
    }
    for (int i = 0; i < n; i++) {
        int fd = VTSM_SD_LISTEN_FDS_START + i;
        int flags = fcntl(fd, F_GETFD);
        if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0) {
            n = -1;
            break;
        }
    }
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return n;
}

int vtsm_sd_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len;

    if (!path || !*path)
        return 0;
    len = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sa.sun_path)) {
        errno = EINVAL;
        return -1;
    }
    memcpy(sa.sun_path, path, len);
    if (path[0] == '@')
        sa.sun_path[0] = '\0'; /* abstract namespace: the name is not NUL-terminated */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    ssize_t sent = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
    int e = errno;
    close(fd);
    if (sent < 0) {
        errno = e;
        return -1;
    }
    return 1;
}
