/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * An external C program built against an installed vtsm (pkg-config vtsm-host or
 * find_package(vtsm) + vtsm::host): HELLO and STATUS through the host shim.
 *   consumer SOCKET     prints "hello: <tsm name>" and "root ports: N"
 */
#include <stdio.h>
#include <string.h>

#include <vtsm/vtsm_host.h>
#include <vtsm/vtsm_version.h>

int main(int argc, char **argv)
{
    struct vtsm_host *h = NULL;
    vtsm_status st;

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
    vtsm_host_close(h);
    return 0;
}
