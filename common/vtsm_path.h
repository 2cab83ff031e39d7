/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef VTSM_PATH_H
#define VTSM_PATH_H

#include <stddef.h>

/*
 * Default TSM socket path, shared by tsmd and every client:
 *   $VTSM_SOCKET if set, else $XDG_RUNTIME_DIR/vtsm/tsmd.sock, else /tmp/vtsm-<uid>/tsmd.sock.
 * Writes into out (cap bytes); returns out, or NULL if it does not fit.
 */
char *vtsm_default_socket_path(char *out, size_t cap);
/* Create the parent directory of path (mode 0700) if missing. 0 on success. */
int vtsm_mkdir_parent(const char *path);

#endif
