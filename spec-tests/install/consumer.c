/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * An external C program built against an installed vtsm (pkg-config vtsm-host or
 * find_package(vtsm) + vtsm::host): HELLO and STATUS through the host shim.
 *   consumer SOCKET     prints "hello: <tsm name>" and one line per root port
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <vtsm/vtsm_host.h>
#include <vtsm/vtsm_version.h>

int main(int argc, char **argv)
{
    struct vtsm_host *h = NULL;
    struct vtsm_result *res = NULL;
    struct vtsm_request req = {0};
    vtsm_status st;
    size_t n = 0;
    int rc = 1;

    if (argc != 2) {
        fprintf(stderr, "usage: consumer SOCKET\n");
        return 2;
    }
    if (strcmp(vtsm_version(), VTSM_VERSION_STRING) != 0) {
        fprintf(stderr, "library %s, headers %s\n", vtsm_version(), VTSM_VERSION_STRING);
        return 1;
    }
    st = vtsm_host_open(argv[1], &h);
    if (st != VTSM_OK) {
        fprintf(stderr, "HELLO: %s: %s\n", vtsm_status_name(st), vtsm_err_detail());
        return 1;
    }
    printf("hello: %s\n", vtsm_host_tsm_name(h));
    st = vtsm_host_status(h, &req, &res);
    if (st == VTSM_OK)
        st = vtsm_result_count(res, "root_ports", &n);
    for (size_t i = 0; st == VTSM_OK && i < n; i++) {
        char path[64];
        uint64_t id = 0, streams = 0;
        snprintf(path, sizeof(path), "root_ports.%zu.id", i);
        st = vtsm_result_uint(res, path, &id);
        snprintf(path, sizeof(path), "root_ports.%zu.streams", i);
        if (st == VTSM_OK)
            st = vtsm_result_uint(res, path, &streams);
        if (st == VTSM_OK)
            printf("root port %" PRIu64 ": %" PRIu64 " streams\n", id, streams);
    }
    if (st != VTSM_OK)
        fprintf(stderr, "STATUS: %s: %s\n", vtsm_status_name(st), vtsm_err_detail());
    else
        rc = 0;
    vtsm_result_free(res);
    vtsm_host_close(h);
    return rc;
}
