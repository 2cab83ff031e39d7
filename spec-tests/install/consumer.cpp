// SPDX-License-Identifier: BSD-3-Clause
//
// An external C++ program built against an installed vtsm (pkg-config vtsm-guest or
// find_package(vtsm) + vtsm::guest, the library that carries the host API too): the
// public headers from C++, a guest credential, HELLO and STATUS (as JSON) through the
// host shim.
//   consumer-cxx SOCKET KEYFILE
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include <vtsm/vtsm_guest.h>
#include <vtsm/vtsm_host.h>
#include <vtsm/vtsm_version.h>

namespace {

struct host_closer {
    void operator()(vtsm_host *h) const { vtsm_host_close(h); }
};
struct result_freer {
    void operator()(vtsm_result *r) const { vtsm_result_free(r); }
};

int fail(const char *what, vtsm_status st)
{
    std::fprintf(stderr, "%s: %s: %s\n", what, vtsm_status_name(st), vtsm_err_detail());
    return 1;
}

} // namespace

int main(int argc, char **argv)
{
    if (argc != 3) {
        std::fprintf(stderr, "usage: consumer-cxx SOCKET KEYFILE\n");
        return 2;
    }
    if (std::string(vtsm_version()) != VTSM_VERSION_STRING)
        return fail("version", VTSM_E_INVAL);

    vtsm_status gst = vtsm_guest_keygen(argv[2]);
    if (gst != VTSM_OK)
        return fail("keygen", gst);
    struct vtsm_guest *g = nullptr;
    gst = vtsm_guest_open(argv[2], 1, &g);
    if (gst != VTSM_OK)
        return fail("guest open", gst);
    uint8_t pub[VTSM_GUEST_PUBKEY_SIZE];
    vtsm_guest_pubkey(g, pub);
    vtsm_guest_close(g);
    std::printf("guest key: %02x..., %zu bytes\n", pub[0], sizeof(pub));

    vtsm_host *raw = nullptr;
    vtsm_status st = vtsm_host_open(argv[1], &raw);
    if (st != VTSM_OK)
        return fail("HELLO", st);
    std::unique_ptr<vtsm_host, host_closer> h(raw);
    std::printf("hello: %s\n", vtsm_host_tsm_name(h.get()));

    vtsm_request req{};
    vtsm_result *rraw = nullptr;
    st = vtsm_host_status(h.get(), &req, &rraw);
    std::unique_ptr<vtsm_result, result_freer> res(rraw);
    if (st != VTSM_OK)
        return fail("STATUS", st);
    size_t n = 0;
    st = vtsm_result_count(res.get(), "root_ports", &n);
    if (st != VTSM_OK)
        return fail("root_ports", st);
    char *json = vtsm_result_json(res.get());
    if (!json)
        return fail("json", VTSM_E_NOMEM);
    const bool has_ports = std::string(json).find("\"root_ports\"") != std::string::npos;
    std::free(json);
    std::printf("root ports: %zu%s\n", n, has_ports ? " (in the JSON too)" : "");
    return has_ports ? 0 : 1;
}
