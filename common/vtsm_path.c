/* SPDX-License-Identifier: BSD-3-Clause */
#include "vtsm_path.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *vtsm_default_socket_path(char *out, size_t cap)
{
    const char *env = getenv("VTSM_SOCKET");
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    int n;
    if (env && *env)
        n = snprintf(out, cap, "%s", env);
    else if (xdg && *xdg)
        n = snprintf(out, cap, "%s/vtsm/tsmd.sock", xdg);
    else
        n = snprintf(out, cap, "/tmp/vtsm-%u/tsmd.sock", (unsigned)getuid());
    return (n > 0 && (size_t)n < cap) ? out : NULL;
}

int vtsm_mkdir_parent(const char *path)
{
    char dir[512];
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path)
        return 0;
    size_t n = (size_t)(slash - path);
    if (n >= sizeof(dir))
        return -1;
    memcpy(dir, path, n);
    dir[n] = '\0';
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return -1;
    return 0;
}
