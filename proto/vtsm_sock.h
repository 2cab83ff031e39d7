/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The DMTF spdm-emu socket protocol (the one QEMU's spdm-socket backend speaks):
 * every frame is a 12-byte big-endian header {command, transport type, payload size}
 * followed by the payload. With transport PCI_DOE the payload is one whole DOE data
 * object. Frames are written with a single write() on a TCP_NODELAY socket, and
 * TCP_QUICKACK is re-armed after every read (peers that write a frame in pieces without
 * TCP_NODELAY otherwise wait for our delayed ACK between the pieces).
 */
#ifndef VTSM_SOCK_H
#define VTSM_SOCK_H

#include <stddef.h>
#include <stdint.h>

#include "vtsm_buf.h"
#include "vtsm_err.h"

#define VTSM_SOCK_CMD_NORMAL 0x0001u
/* QEMU's storage binding (hw/nvme: Security Send / Security Receive) */
#define VTSM_SOCK_CMD_STORAGE_IF_SEND      0x0002u
#define VTSM_SOCK_CMD_STORAGE_IF_RECV      0x0003u
#define VTSM_SOCK_CMD_STORAGE_ACK_STATUS   0x0004u
#define VTSM_SOCK_CMD_OOB_ENCAP_KEY_UPDATE 0x8001u
#define VTSM_SOCK_CMD_CONTINUE             0xFFFDu
#define VTSM_SOCK_CMD_SHUTDOWN             0xFFFEu
#define VTSM_SOCK_CMD_UNKNOWN              0xFFFFu
#define VTSM_SOCK_CMD_TEST                 0xDEADu

#define VTSM_SOCK_TRANSPORT_NONE    0u
#define VTSM_SOCK_TRANSPORT_MCTP    1u
#define VTSM_SOCK_TRANSPORT_PCI_DOE 2u
#define VTSM_SOCK_TRANSPORT_TCP     3u /* spdm-emu's number; QEMU's 3 is SCSI */
#define VTSM_SOCK_TRANSPORT_NVME    4u /* QEMU's storage binding over NVMe */

/* QEMU reads at most this many payload bytes of one answer (SPDM_SOCKET_MAX_MESSAGE_BUFFER_SIZE).
 */
#define VTSM_SOCK_QEMU_MAX_PAYLOAD 0x1200u

#define VTSM_SOCK_HEADER_SIZE  12
#define VTSM_SOCK_DEFAULT_PORT 2323

/* Send one frame in one write (retrying only on partial writes / EINTR). */
vtsm_status vtsm_sock_send(int fd, uint32_t cmd, uint32_t transport, const void *payload,
                           size_t len);
/*
 * Receive one frame. payload is reset and filled. A frame announcing more than max
 * bytes gives E_PEER_OVERSIZED (the stream is then unusable). EOF before any byte gives
 * E_CLOSED; EOF inside a frame E_IO. timeout_ms < 0 waits forever.
 */
vtsm_status vtsm_sock_recv(int fd, uint32_t *cmd, uint32_t *transport, struct vtsm_buf *payload,
                           size_t max, int timeout_ms);

/* "HOST:PORT" (IPv4 literal or localhost) -> connected TCP socket with TCP_NODELAY. */
vtsm_status vtsm_tcp_connect(const char *hostport, int *fd);
/* Listen on host:port (port 0 picks a free one; *bound_port receives the port). */
vtsm_status vtsm_tcp_listen(const char *host, uint16_t port, int *fd, uint16_t *bound_port);
vtsm_status vtsm_sock_nodelay(int fd);
/* Re-arm TCP_QUICKACK (call after every read). Silently nothing on a non-TCP fd. */
void vtsm_sock_quickack(int fd);

/* Read exactly n bytes / write all n bytes on a blocking fd, honouring timeout_ms. */
vtsm_status vtsm_fd_read_full(int fd, void *p, size_t n, int timeout_ms);
vtsm_status vtsm_fd_write_full(int fd, const void *p, size_t n);

#endif
