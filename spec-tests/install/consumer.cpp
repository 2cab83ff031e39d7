// SPDX-License-Identifier: BSD-3-Clause
//
// An external C++ program built against an installed vtsm (pkg-config vtsm-guest or
// find_package(vtsm) + vtsm::guest): both public headers from C++, a guest credential,
// HELLO and STATUS through the host API the guest library carries.
//   consumer-cxx SOCKET KEYFILE
#include <cstdio>
#include <cstring>
#include <string>

#include <vtsm/vtsm_guest.h>
#include <vtsm/vtsm_host.h>
#include <vtsm/vtsm_version.h>

static int fail(const char *what, vtsm_status st)
{
    std::fprintf(stderr, "%s: %s: %s\n", what, vtsm_status_name(st), vtsm_err_detail());
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        std::fprintf(stderr, "usage: consumer-cxx SOCKET KEYFILE\n");
        return 2;
    }
    const std::string version = vtsm_version();
    if (version != VTSM_VERSION_STRING)
        return fail("version", VTSM_E_INVAL);

    vtsm_status st = vtsm_guest_keygen(argv[2]);
    if (st != VTSM_OK)
        return fail("keygen", st);
    struct vtsm_guest *g = nullptr;
    st = vtsm_guest_open(argv[2], 1, &g);
    if (st != VTSM_OK)
        return fail("guest open", st);
    uint8_t pub[VTSM_GUEST_PUBKEY_SIZE];
    vtsm_guest_pubkey(g, pub);
    vtsm_guest_close(g);
    std::printf("guest key: %02x..., %zu bytes\n", pub[0], sizeof(pub));

    struct vtsm_host *h = nullptr;
    st = vtsm_host_open(argv[1], &h);
    if (st != VTSM_OK)
        return fail("HELLO", st);
    std::printf("hello: %s\n", vtsm_host_tsm_name(h));
    vtsm_host_close(h);
    return 0;
}
