/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vtsm-split-peer: a trivial responder of the spdm-emu socket protocol that writes like
 * the reference peers and QEMU do: every frame as four send() calls (command, transport,
 * size, payload) on a socket without TCP_NODELAY, and no TCP_QUICKACK of its own. Its
 * far end pays for any delayed ACK between those pieces, so it measures whether a vtsm
 * TCP end re-arms quick ACKs.
 *
 *   vtsm-split-peer --port-file PATH
 *
 * Listens on 127.0.0.1 (a free port, written to PATH), one connection at a time:
 * NORMAL and VTSM_LINK frames are answered with the same command and payload; TEST with
 * "Server Hello!"; CONTINUE with CONTINUE, then the connection is closed; SHUTDOWN with
 * SHUTDOWN, then the peer exits 0; anything else with UNKNOWN. How each connection ended
 * is printed on stdout, one line each: "end CONTINUE", "end SHUTDOWN" or "end EOF".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vtsm_sock.h"

#define MAX_PAYLOAD (1u << 20)

static int send_all(int fd, const void *p, size_t n)
{
    const unsigned char *b = p;
    while (n) {
        ssize_t k = send(fd, b, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        b += k;
        n -= (size_t)k;
    }
    return 0;
}

/* One frame in four writes, as spdm-emu's send_platform_data does. */
static int send_split(int fd, uint32_t cmd, uint32_t transport, const void *p, uint32_t len)
{
    uint8_t w[4];
    vtsm_put_be32(w, cmd);
    if (send_all(fd, w, 4))
        return -1;
    vtsm_put_be32(w, transport);
    if (send_all(fd, w, 4))
        return -1;
    vtsm_put_be32(w, len);
    if (send_all(fd, w, 4))
        return -1;
    return len ? send_all(fd, p, len) : 0;
}

static int recv_all(int fd, void *p, size_t n)
{
    unsigned char *b = p;
    while (n) {
        ssize_t k = recv(fd, b, n, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        b += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Serve one connection. 1: SHUTDOWN (exit), 0: otherwise. */
static int serve(int fd, uint8_t *buf)
{
    static const char hello[] = "Server Hello!";
    for (;;) {
        uint8_t hdr[VTSM_SOCK_HEADER_SIZE];
        if (recv_all(fd, hdr, sizeof(hdr))) {
            printf("end EOF\n");
            return 0;
        }
        uint32_t cmd = vtsm_get_be32(hdr), tr = vtsm_get_be32(hdr + 4);
        uint32_t len = vtsm_get_be32(hdr + 8);
        if (len > MAX_PAYLOAD || (len && recv_all(fd, buf, len))) {
            printf("end EOF\n");
            return 0;
        }
        switch (cmd) {
        case VTSM_SOCK_CMD_CONTINUE:
        case VTSM_SOCK_CMD_SHUTDOWN:
            (void)send_split(fd, cmd, tr, NULL, 0);
            printf("end %s\n", cmd == VTSM_SOCK_CMD_CONTINUE ? "CONTINUE" : "SHUTDOWN");
            return cmd == VTSM_SOCK_CMD_SHUTDOWN;
        case VTSM_SOCK_CMD_TEST:
            if (send_split(fd, cmd, tr, hello, sizeof(hello)))
                return 0;
            break;
        case VTSM_SOCK_CMD_NORMAL:
        case 0x5654u: /* VTSM_LINK */
            if (send_split(fd, cmd, tr, buf, len))
                return 0;
            break;
        default:
            if (send_split(fd, VTSM_SOCK_CMD_UNKNOWN, tr, NULL, 0))
                return 0;
            break;
        }
    }
}

int main(int argc, char **argv)
{
    if (argc != 3 || strcmp(argv[1], "--port-file") != 0) {
        fprintf(stderr, "usage: vtsm-split-peer --port-file PATH\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    int lfd;
    uint16_t port;
    if (vtsm_tcp_listen("127.0.0.1", 0, &lfd, &port) != VTSM_OK)
        return 1;
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", argv[2]);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%u\n", port) < 0 || fclose(f) != 0 || rename(tmp, argv[2]) != 0)
        return 1;
    uint8_t *buf = malloc(MAX_PAYLOAD);
    if (!buf)
        return 1;
    int done = 0;
    while (!done) {
        int cfd = accept(lfd, NULL, NULL);
        if (cfd < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        done = serve(cfd, buf);
        close(cfd);
    }
    free(buf);
    close(lfd);
    return done ? 0 : 1;
}
