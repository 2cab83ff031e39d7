/*
 * vtsm-kguest: the TVM side of the kernel test. Builds a signed guest request with the
 * guest shim and sends it through the PCI TSM core's guest request path
 * (pci_tsm_guest_req() via /dev/vtsm_bridge_test, the module's test hook standing in
 * for a VMM), then checks tsmd's answer as a guest would.
 *
 *   vtsm-kguest --key FILE --tvm N info DEV TDI     INFO with a fresh nonce; the
 *                                                   evidence must verify
 *   vtsm-kguest --key FILE --tvm N accept DEV TDI   the same INFO, then ACCEPT carrying
 *                                                   what it reported (CONFIG_LOCKED -> RUN)
 *
 * Exit 0 when the request succeeded (and, for info, its evidence verified).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "vtsm_abi.h"
#include "vtsm_bridge_uapi.h"
#include "vtsm_guest.h"

/* enum pci_tsm_req_scope (include/linux/pci-tsm.h) */
#define KG_SCOPE_INFO         0
#define KG_SCOPE_STATE_CHANGE 1

static int usage(void)
{
    fprintf(stderr, "usage: vtsm-kguest --key FILE --tvm N info|accept DEV TDI\n");
    return 2;
}

/* One guest request through pci_tsm_guest_req(): built and signed with the public guest
 * API, encoded for the kernel to carry, the answer decoded into *res. 0 on success. */
static int bridge_request(struct vtsm_guest *g, int fd, unsigned gop, const char *dev, long tdi,
                          const uint8_t *nonce, struct vtsm_result **res)
{
    struct vtsm_guest_envelope env = {0};
    struct vtsm_kb_test_guest_req t;
    const char *what = gop == VTSM_ABI_GOP_INFO ? "info" : "accept";
    uint8_t *in = NULL, *out = NULL;
    size_t in_len = 0;
    int rc = 1;

    vtsm_status st = vtsm_guest_build(g, gop, dev, tdi, nonce, NULL, &env);
    if (st == VTSM_OK)
        st = vtsm_guest_envelope_encode(&env, &in, &in_len);
    if (st != VTSM_OK) {
        fprintf(stderr, "vtsm-kguest: build: %s\n", vtsm_err_detail());
        goto out;
    }
    out = malloc(VTSM_KB_GUEST_MAX);
    if (!out)
        goto out;
    memset(&t, 0, sizeof(t));
    memcpy(t.dev, dev, strlen(dev));
    t.scope = gop == VTSM_ABI_GOP_INFO ? KG_SCOPE_INFO : KG_SCOPE_STATE_CHANGE;
    t.in = (uint64_t)(uintptr_t)in;
    t.in_len = (uint32_t)in_len;
    t.out = (uint64_t)(uintptr_t)out;
    t.out_cap = VTSM_KB_GUEST_MAX;
    if (ioctl(fd, VTSM_KB_IOC_TEST_GUEST_REQ, &t) < 0) {
        printf("vtsm-kguest: %s: pci_tsm_guest_req: %s\n", what, strerror(errno));
        goto out;
    }
    printf("vtsm-kguest: %s: request %zu bytes, response %u bytes, tsm_code %llu (%s)\n", what,
           in_len, t.out_len, (unsigned long long)t.tsm_code,
           vtsm_status_name((vtsm_status)t.tsm_code));
    if (t.tsm_code != VTSM_OK)
        goto out;
    if (vtsm_result_decode(out, t.out_len, res) != VTSM_OK) {
        printf("vtsm-kguest: %s: response is not an ABI message: %s\n", what, vtsm_err_detail());
        goto out;
    }
    rc = 0;
out:
    vtsm_guest_envelope_clear(&env);
    free(in);
    free(out);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'k'},
        {"tvm", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    const char *key = NULL;
    uint32_t tvm = 0;
    struct vtsm_guest *g = NULL;
    struct vtsm_result *res = NULL, *claims = NULL;
    uint8_t nonce[VTSM_GUEST_NONCE_SIZE];
    vtsm_status st;
    int c, fd = -1, rc = 1;
    bool info;
    long tdi;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'k')
            key = optarg;
        else if (c == 't')
            tvm = (uint32_t)strtoul(optarg, NULL, 10);
        else
            return usage();
    }
    if (!key || !tvm || argc - optind != 3)
        return usage();
    if (strcmp(argv[optind], "info") && strcmp(argv[optind], "accept"))
        return usage();
    info = !strcmp(argv[optind], "info");
    const char *dev = argv[optind + 1];
    tdi = strtol(argv[optind + 2], NULL, 10);
    if (tdi < 0 || strlen(dev) >= sizeof(((struct vtsm_kb_test_guest_req *)0)->dev))
        return usage();

    st = vtsm_guest_open(key, tvm, &g);
    if (st != VTSM_OK) {
        fprintf(stderr, "vtsm-kguest: %s: %s\n", key, vtsm_err_detail());
        return 1;
    }
    if (RAND_bytes(nonce, sizeof(nonce)) != 1)
        goto out;
    fd = open("/dev/vtsm_bridge_test", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "vtsm-kguest: /dev/vtsm_bridge_test: %s\n", strerror(errno));
        goto out;
    }
    /* INFO with a fresh nonce, its evidence verified; ACCEPT carries what it reported */
    if (bridge_request(g, fd, VTSM_ABI_GOP_INFO, dev, tdi, nonce, &res) != 0)
        goto out;
    st = vtsm_guest_check_evidence(g, res, dev, (uint32_t)tdi, nonce, NULL, NULL, &claims);
    if (st != VTSM_OK) {
        printf("vtsm-kguest: info: evidence refused: %s: %s\n", vtsm_status_name(st),
               vtsm_err_detail());
        goto out;
    }
    printf("vtsm-kguest: info: evidence verified (token, nonce, digests)\n");
    if (!info) {
        if (vtsm_guest_remember_info(g, res) != VTSM_OK)
            goto out;
        vtsm_result_free(res);
        res = NULL;
        if (bridge_request(g, fd, VTSM_ABI_GOP_ACCEPT, dev, tdi, NULL, &res) != 0)
            goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    vtsm_result_free(res);
    vtsm_result_free(claims);
    vtsm_guest_close(g);
    return rc;
}
