/* SPDX-License-Identifier: BSD-3-Clause */
#include "vtsm_sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vtsm_guard.h"

vtsm_status vtsm_fd_write_full(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    int stalled_ms = 0;
    while (n) {
        ssize_t k = send(fd, b, n, MSG_NOSIGNAL);
        if (k < 0 && errno == ENOTSOCK)
            k = write(fd, b, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                /* A peer that stops reading must not hold the writer forever. */
                struct pollfd pfd = {.fd = fd, .events = POLLOUT};
                if (poll(&pfd, 1, 1000) == 0 && (stalled_ms += 1000) >= 10000)
                    return vtsm_fail(VTSM_E_TIMEOUT, "peer did not read for 10 s");
                continue;
            }
            return vtsm_fail(errno == EPIPE || errno == ECONNRESET ? VTSM_E_CLOSED : VTSM_E_IO,
                             "write: %s", strerror(errno));
        }
        b += k;
        n -= (size_t)k;
        stalled_ms = 0;
    }
    return VTSM_OK;
}

vtsm_status vtsm_fd_read_full(int fd, void *p, size_t n, int timeout_ms)
{
    uint8_t *b = p;
    size_t got = 0;
    while (got < n) {
        if (timeout_ms >= 0) {
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            int r = poll(&pfd, 1, timeout_ms);
            if (r < 0 && errno == EINTR)
                continue;
            if (r == 0)
                return vtsm_fail(VTSM_E_TIMEOUT, "no data within %d ms", timeout_ms);
        }
        ssize_t k = read(fd, b + got, n - got);
        if (k > 0)
            vtsm_sock_quickack(fd);
        if (k < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return vtsm_fail(errno == ECONNRESET ? VTSM_E_CLOSED : VTSM_E_IO, "read: %s",
                             strerror(errno));
        }
        if (k == 0)
            return got == 0 ? vtsm_fail(VTSM_E_CLOSED, "peer closed the connection")
                            : vtsm_fail(VTSM_E_IO, "peer closed the connection mid-frame");
        got += (size_t)k;
    }
    return VTSM_OK;
}

vtsm_status vtsm_sock_send(int fd, uint32_t cmd, uint32_t transport, const void *payload,
                           size_t len)
{
    VTSM_ENSURE(len <= UINT32_MAX, VTSM_E_INVAL, "frame too large");
    uint8_t stackbuf[4096];
    uint8_t *frame = stackbuf;
    size_t total = VTSM_SOCK_HEADER_SIZE + len;
    if (total > sizeof(stackbuf)) {
        frame = malloc(total);
        if (!frame)
            return VTSM_E_NOMEM;
    }
    vtsm_put_be32(frame, cmd);
    vtsm_put_be32(frame + 4, transport);
    vtsm_put_be32(frame + 8, (uint32_t)len);
    if (len)
        memcpy(frame + VTSM_SOCK_HEADER_SIZE, payload, len);
    vtsm_status st = vtsm_fd_write_full(fd, frame, total);
    if (frame != stackbuf)
        free(frame);
    return st;
}

vtsm_status vtsm_sock_recv(int fd, uint32_t *cmd, uint32_t *transport, struct vtsm_buf *payload,
                           size_t max, int timeout_ms)
{
    uint8_t hdr[VTSM_SOCK_HEADER_SIZE];
    VTSM_GUARD(vtsm_fd_read_full(fd, hdr, sizeof(hdr), timeout_ms));
    *cmd = vtsm_get_be32(hdr);
    *transport = vtsm_get_be32(hdr + 4);
    uint32_t len = vtsm_get_be32(hdr + 8);
    VTSM_ENSURE(len <= max, VTSM_E_PEER_OVERSIZED, "socket frame announces %u bytes, limit is %zu",
                len, max);
    vtsm_buf_reset(payload);
    VTSM_GUARD(vtsm_buf_reserve(payload, len));
    if (len) {
        vtsm_status st = vtsm_fd_read_full(fd, payload->data, len, timeout_ms);
        if (st == VTSM_E_CLOSED)
            st = vtsm_fail(VTSM_E_IO, "peer closed the connection mid-frame");
        VTSM_GUARD(st);
    }
    payload->len = len;
    return VTSM_OK;
}

vtsm_status vtsm_sock_nodelay(int fd)
{
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
        return vtsm_fail(VTSM_E_IO, "TCP_NODELAY: %s", strerror(errno));
    return VTSM_OK;
}

void vtsm_sock_quickack(int fd)
{
    /* Linux leaves quick-ack mode on its own; re-arm it so the ACK of what was just read
     * leaves now, and a peer whose next piece waits for that ACK (Nagle) is not held for
     * the delayed-ACK timer. Not a socket, or not TCP: nothing to do. */
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
}

static vtsm_status parse_host(const char *host, struct in_addr *a)
{
    if (strcmp(host, "localhost") == 0 || host[0] == '\0')
        host = "127.0.0.1";
    VTSM_ENSURE(inet_pton(AF_INET, host, a) == 1, VTSM_E_INVAL, "'%s' is not an IPv4 address",
                host);
    return VTSM_OK;
}

vtsm_status vtsm_tcp_connect(const char *hostport, int *fd)
{
    char host[64];
    const char *colon = strrchr(hostport, ':');
    VTSM_ENSURE(colon && (size_t)(colon - hostport) < sizeof(host), VTSM_E_INVAL,
                "expected HOST:PORT, got '%s'", hostport);
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    VTSM_ENSURE(*end == '\0' && port > 0 && port < 65536, VTSM_E_INVAL, "bad port in '%s'",
                hostport);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    VTSM_GUARD(parse_host(host, &sa.sin_addr));
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    VTSM_ENSURE(s >= 0, VTSM_E_IO, "socket: %s", strerror(errno));
    if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int e = errno;
        close(s);
        return vtsm_fail(VTSM_E_IO, "connect %s: %s", hostport, strerror(e));
    }
    vtsm_status st = vtsm_sock_nodelay(s);
    if (st) {
        close(s);
        return st;
    }
    vtsm_sock_quickack(s);
    *fd = s;
    return VTSM_OK;
}

vtsm_status vtsm_tcp_listen(const char *host, uint16_t port, int *fd, uint16_t *bound_port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    VTSM_GUARD(parse_host(host ? host : "127.0.0.1", &sa.sin_addr));
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    VTSM_ENSURE(s >= 0, VTSM_E_IO, "socket: %s", strerror(errno));
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(s, 16) != 0) {
        int e = errno;
        close(s);
        return vtsm_fail(VTSM_E_IO, "listen on port %u: %s", port, strerror(e));
    }
    socklen_t sl = sizeof(sa);
    getsockname(s, (struct sockaddr *)&sa, &sl);
    if (bound_port)
        *bound_port = ntohs(sa.sin_port);
    *fd = s;
    return VTSM_OK;
}
