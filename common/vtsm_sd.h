/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The two parts of systemd's service protocol tsmd speaks, without libsystemd:
 *   socket activation  LISTEN_PID / LISTEN_FDS: sockets passed from fd 3 on (sd_listen_fds(3))
 *   readiness          NOTIFY_SOCKET: "READY=1" and friends as one datagram (sd_notify(3))
 */
#ifndef VTSM_SD_H
#define VTSM_SD_H

/* The first passed file descriptor (SD_LISTEN_FDS_START). */
#define VTSM_SD_LISTEN_FDS_START 3

/* How many sockets the service manager passed to this process: 0 if none (LISTEN_PID
 * unset or naming another process), -1 if LISTEN_FDS / LISTEN_PID are malformed. The
 * passed descriptors get FD_CLOEXEC; LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES are
 * removed from the environment so no child sees them. */
int vtsm_sd_listen_fds(void);

/* Send state (e.g. "READY=1\nMAINPID=123") to $NOTIFY_SOCKET, a Unix datagram socket path
 * or, starting with '@', an abstract socket name. Returns 1 if sent, 0 if NOTIFY_SOCKET
 * is unset, -1 (errno set) on failure. */
int vtsm_sd_notify(const char *state);

#endif
