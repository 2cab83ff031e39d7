/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tsm-guest, the real binary, against the fake TSM of test_guest_fixture on a Unix socket
 * in a temporary directory (and a TCP listener standing in for the DOE responder): exit
 * codes (0 ok, 1 refused, 2 usage, 3 unreachable), the error line format, what reaches
 * the TSM (nothing after a usage error; REJECT with the reason after a failed check),
 * --json, --direct, and seq increasing across runs. Failure cases first.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vtsm_proc.h"
#include "vtsm_abi.h"
#include "vtsm_guest_cbor.h"

#include "test_guest_fixture.h"

#define TVM_ARG "4"
#define TDI_ARG "2"

struct fx {
    char dir[64];
    char sock[128];
    char key[128];
    char doe[64];
    int doe_lfd; /* accepts the CLI's DOE connection into its backlog; never answers */
    struct gf_fake fake;
    bool fake_running;
};

struct run {
    int status; /* exit code, or 128 + signal */
    char out[32768];
    char err[8192];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct vtsm_guest *g = NULL;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sa);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/vtsm-guestc-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->sock, sizeof(f->sock), "%s/tsmd.sock", f->dir);
    snprintf(f->key, sizeof(f->key), "%s/tvm.pem", f->dir);
    if (vtsm_guest_keygen(f->key) != VTSM_OK || vtsm_guest_open(f->key, GF_TVM, &g) != VTSM_OK)
        return -1;
    vtsm_guest_pubkey(g, f->fake.guest_pub);
    vtsm_guest_identity(g, f->fake.identity);
    vtsm_guest_close(g);
    if (gf_make_evidence(&f->fake.ev) != VTSM_OK)
        return -1;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    f->doe_lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (f->doe_lfd < 0 || bind(f->doe_lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(f->doe_lfd, 4) != 0 || getsockname(f->doe_lfd, (struct sockaddr *)&sa, &sl) != 0)
        return -1;
    snprintf(f->doe, sizeof(f->doe), "tcp:127.0.0.1:%u", ntohs(sa.sin_port));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];
    int rc = 0;
    if (f->fake_running && gf_fake_stop(&f->fake) != 0)
        rc = -1;
    close(f->doe_lfd);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        rc = -1;
    free(f);
    return rc;
}

static void start(struct fx *f, enum gf_mode mode, enum gf_spoil sp)
{
    f->fake.mode = mode;
    f->fake.spoil = sp;
    assert_int_equal(gf_fake_start_listen(&f->fake, f->sock), 0);
    f->fake_running = true;
}

static void stop(struct fx *f)
{
    f->fake_running = false;
    if (gf_fake_stop(&f->fake) != 0)
        fail_msg("fake TSM: %s", f->fake.err);
}

static void slurp(const char *path, char *buf, size_t cap)
{
    FILE *fp = fopen(path, "r");
    size_t n = 0;
    if (fp) {
        n = fread(buf, 1, cap - 1, fp);
        fclose(fp);
    }
    buf[n] = '\0';
}

/* Run tsm-guest --socket SOCK --key KEY args... (NULL-terminated); reaped within 30 s. */
static void cli(struct fx *f, struct run *r, const char *const *args)
{
    const char *argv[32];
    char out_path[160], err_path[160];
    int n = 0;
    argv[n++] = VTSM_BIN_DIR "/tsm-guest";
    argv[n++] = "--socket";
    argv[n++] = f->sock;
    argv[n++] = "--key";
    argv[n++] = f->key;
    for (size_t i = 0; args[i]; i++) {
        assert_true(n < 31);
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    snprintf(out_path, sizeof(out_path), "%s/out.txt", f->dir);
    snprintf(err_path, sizeof(err_path), "%s/err.txt", f->dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
            _exit(127);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int ws = vtsm_proc_wait(pid, 30000);
    r->status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
    slurp(out_path, r->out, sizeof(r->out));
    slurp(err_path, r->err, sizeof(r->err));
}

#define CLI(f, r, ...)                                                                             \
    do {                                                                                           \
        const char *const a__[] = {__VA_ARGS__, NULL};                                             \
        cli((f), (r), a__);                                                                        \
    } while (0)

static void expect_run(const struct run *r, int status, const char *in_out, const char *in_err)
{
    if (r->status != status || (in_out && !strstr(r->out, in_out)) ||
        (in_err && !strstr(r->err, in_err)))
        fail_msg("exit %d (wanted %d)\nstdout: %s\nstderr: %s\nwanted out \"%s\" err \"%s\"",
                 r->status, status, r->out, r->err, in_out ? in_out : "", in_err ? in_err : "");
}

static uint64_t seq_on_disk(const struct fx *f)
{
    char path[160], buf[32];
    snprintf(path, sizeof(path), "%s.seq", f->key);
    slurp(path, buf, sizeof(buf));
    return strtoull(buf, NULL, 10);
}

static void write_text(const struct fx *f, const char *name, const char *text, char *path,
                       size_t cap)
{
    snprintf(path, cap, "%s/%s", f->dir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

/* ---- failure cases ---- */

static void test_usage_errors_send_nothing(void **state)
{
    struct fx *f = *state;
    struct run r;
    char ref[160];

    start(f, GF_OK, GF_SP_NONE);
    CLI(f, &r, "--tvm", TVM_ARG);
    expect_run(&r, 2, NULL, "tsm-guest: missing command");
    CLI(f, &r, "--tvm", TVM_ARG, "frobnicate");
    expect_run(&r, 2, NULL, "unknown command 'frobnicate'");
    CLI(f, &r, "list");
    expect_run(&r, 2, NULL, "list needs --tvm N");
    CLI(f, &r, "--tvm", "0", "list");
    expect_run(&r, 2, NULL, "bad --tvm '0'");
    CLI(f, &r, "--tvm", TVM_ARG, "info", GF_DEV);
    expect_run(&r, 2, NULL, "info needs DEV TDI");
    CLI(f, &r, "--tvm", TVM_ARG, "info", "bad/dev", TDI_ARG);
    expect_run(&r, 2, NULL, "bad device name 'bad/dev'");
    CLI(f, &r, "--tvm", TVM_ARG, "info", GF_DEV, "x1");
    expect_run(&r, 2, NULL, "bad TDI 'x1'");
    CLI(f, &r, "--tvm", TVM_ARG, "info", GF_DEV, TDI_ARG, "--fresh");
    expect_run(&r, 2, NULL, "info with a nonce reaches the device: give --doe");
    CLI(f, &r, "--tvm", TVM_ARG, "info", GF_DEV, TDI_ARG, "--nonce", "0011", "--doe", f->doe);
    expect_run(&r, 2, NULL, "bad --nonce");
    CLI(f, &r, "--tvm", TVM_ARG, "accept", GF_DEV, TDI_ARG);
    expect_run(&r, 2, NULL, "accept reaches the device: give --doe");
    CLI(f, &r, "--tvm", TVM_ARG, "lock", GF_DEV, TDI_ARG);
    expect_run(&r, 2, NULL, "lock reaches the device: give --doe");
    CLI(f, &r, "--tvm", TVM_ARG, "unlock", GF_DEV);
    expect_run(&r, 2, NULL, "unlock needs DEV TDI");
    CLI(f, &r, "--tvm", TVM_ARG, "debug-read", GF_DEV, TDI_ARG, "--doe", f->doe);
    expect_run(&r, 2, NULL, "--doe and --dev are for info, accept, lock and unlock");
    CLI(f, &r, "--tvm", TVM_ARG, "reject", GF_DEV, TDI_ARG, "--nonce",
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
    expect_run(&r, 2, NULL, "--nonce / --fresh are for info");
    CLI(f, &r, "--tvm", TVM_ARG, "accept", GF_DEV, TDI_ARG, "--doe", f->doe, "--dev", "other");
    expect_run(&r, 2, NULL, "--dev other is not the TDI's device");
    CLI(f, &r, "--tvm", TVM_ARG, "list", "--reason", "x");
    expect_run(&r, 2, NULL, "--reason is for reject");
    /* --opt=value and options after the command; one line with a hint, not the usage */
    CLI(f, &r, "list", "--tvm=0");
    expect_run(&r, 2, NULL, "bad --tvm '0'");
    assert_non_null(strstr(r.err, "(try 'tsm-guest --help')\n"));
    assert_null(strstr(r.err, "usage:"));
    CLI(f, &r, "--tvm", TVM_ARG, "list", "--frob");
    expect_run(&r, 2, NULL, "option '--frob' is unknown or needs a value");
    CLI(f, &r, "--version");
    expect_run(&r, 0, "tsm-guest (vtsm) ", NULL);

    /* a malformed reference file stops the run before any request */
    write_text(f, "bad.ref", "# values\nmmio_ranges two\n", ref, sizeof(ref));
    CLI(f, &r, "--tvm", TVM_ARG, "accept", GF_DEV, TDI_ARG, "--reference", ref, "--doe", f->doe);
    expect_run(&r, 2, NULL, "line 2: mmio_ranges: 'two' is not a decimal number");
    assert_non_null(strstr(r.err, "tsm-guest: accept failed: config (core): "));
    /* a missing key */
    const char *const nokey[] = {"--key", "/nonexistent/k.pem", "--tvm", TVM_ARG, "list", NULL};
    cli(f, &r, nokey);
    expect_run(&r, 2, NULL, "list failed: not_found (core): cannot open key file");
    stop(f);
    assert_int_equal(f->fake.requests, 0);
    assert_int_equal(seq_on_disk(f), 0);
}

static void test_unreachable(void **state)
{
    struct fx *f = *state;
    struct run r;

    /* no TSM on the socket */
    CLI(f, &r, "--tvm", TVM_ARG, "list");
    expect_run(&r, 3, NULL, "tsm-guest: list failed: closed (transport): cannot reach the TSM");
    /* a DOE responder that is not there (a port nobody listens on any more) */
    start(f, GF_OK, GF_SP_NONE);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &sl), 0);
    close(s);
    char dead[64];
    snprintf(dead, sizeof(dead), "tcp:127.0.0.1:%u", ntohs(sa.sin_port));
    CLI(f, &r, "--tvm", TVM_ARG, "accept", GF_DEV, TDI_ARG, "--doe", dead);
    expect_run(&r, 3, NULL, "tsm-guest: accept failed: ");
    stop(f);
    assert_int_equal(f->fake.requests, 0);
}

static void test_tsm_refusal_is_reported(void **state)
{
    struct fx *f = *state;
    struct run r;

    start(f, GF_NOT_OWNER, GF_SP_NONE);
    CLI(f, &r, "--tvm", TVM_ARG, "info", GF_DEV, TDI_ARG, "--fresh", "--doe", f->doe);
    expect_run(&r, 1, NULL,
               "tsm-guest: info failed: not_owner (policy): INFO refused: TVM 4 does not own "
               "0000:03:00.0 TDI 2 (rule TDI.6) [rule TDI.6]\n");
    CLI(f, &r, "--json", "--tvm", TVM_ARG, "info", GF_DEV, TDI_ARG, "--fresh", "--doe", f->doe);
    expect_run(&r, 1,
               "{\"error\":{\"verb\":\"info\",\"status\":51,\"name\":\"not_owner\",\"source\":"
               "\"policy\",\"detail\":\"INFO refused:",
               NULL);
    expect_run(&r, 1, "\",\"rule\":\"TDI.6\"}}", NULL);
    /* accept with a reference: no evidence, so no verdict and no REJECT */
    char ref[160], text[1024];
    gf_good_reference(&f->fake.ev, text, sizeof(text));
    write_text(f, "good.ref", text, ref, sizeof(ref));
    CLI(f, &r, "--tvm", TVM_ARG, "accept", GF_DEV, TDI_ARG, "--reference", ref, "--doe", f->doe);
    expect_run(&r, 1, NULL, "accept failed: not_owner (policy)");
    stop(f);
    assert_int_equal(f->fake.infos, 3);
    assert_int_equal(f->fake.rejects, 0);
    assert_int_equal(f->fake.accepts, 0);
}

static void test_accept_rejects_on_reference_mismatch(void **state)
{
    struct fx *f = *state;
    struct run r;
    char ref[160], want[400];

    start(f, GF_OK, GF_SP_NONE);
    write_text(f, "other.ref", "mmio_ranges 2\ninterface_info 0x0001\n", ref, sizeof(ref));
    CLI(f, &r, "--tvm", TVM_ARG, "accept", GF_DEV, TDI_ARG, "--reference", ref, "--doe", f->doe);
    snprintf(want, sizeof(want),
             "tsm-guest: accept failed: policy_refused (policy): %s line 2: interface_info "
             "mismatch: reference 0x0001, TDI 0x0003; TDI rejected\n",
             ref);
    expect_run(&r, 1, NULL, want);
    stop(f);
    assert_int_equal(f->fake.infos, 1);
    assert_int_equal(f->fake.accepts, 0);
    assert_int_equal(f->fake.rejects, 1);
    assert_non_null(
        strstr(f->fake.reason, "interface_info mismatch: reference 0x0001, TDI 0x0003"));
}

static void test_accept_rejects_tampered_evidence(void **state)
{
    struct fx *f = *state;
    struct run r;
    char ref[160], text[1024];

    /* the relaying host changed the report after the TSM signed its digest */
    start(f, GF_SPOIL, GF_SP_INFO_REPORT);
    gf_good_reference(&f->fake.ev, text, sizeof(text));
    write_text(f, "good.ref", text, ref, sizeof(ref));
    CLI(f, &r, "--tvm", TVM_ARG, "accept", GF_DEV, TDI_ARG, "--reference", ref, "--doe", f->doe);
    expect_run(&r, 1, NULL,
               "accept failed: peer_digest (peer): INFO report does not hash to the token's "
               "report_digest; TDI rejected");
    /* info with a nonce refuses it too (exit 1), and sends nothing more */
    CLI(f, &r, "--tvm", TVM_ARG, "info", GF_DEV, TDI_ARG, "--fresh", "--doe", f->doe);
    expect_run(&r, 1, NULL, "info failed: peer_digest (peer)");
    assert_null(strstr(r.out, "token verified"));
    stop(f);
    assert_int_equal(f->fake.accepts, 0);
    assert_int_equal(f->fake.rejects, 1);
    assert_int_equal(f->fake.requests, 3);
}

/* ---- success cases ---- */

static void test_keygen_and_pubkey(void **state)
{
    struct fx *f = *state;
    struct run r;
    char hex[2 * VTSM_GUEST_PUBKEY_SIZE + 1];

    vtsm_hex(hex, f->fake.guest_pub, VTSM_GUEST_PUBKEY_SIZE);
    CLI(f, &r, "pubkey");
    expect_run(&r, 0, hex, NULL);
    assert_int_equal(strlen(r.out), 2 * VTSM_GUEST_PUBKEY_SIZE + 1);
    CLI(f, &r, "--json", "pubkey");
    expect_run(&r, 0, "{\"guest_key\":\"04", NULL);
    /* keygen refuses an existing key, makes a new one elsewhere */
    CLI(f, &r, "keygen");
    expect_run(&r, 2, NULL, "keygen failed: exists (core)");
    char other[160];
    snprintf(other, sizeof(other), "%s/second.pem", f->dir);
    const char *const kg[] = {"keygen", "--key", other, NULL};
    cli(f, &r, kg);
    expect_run(&r, 0, "04", NULL);
    assert_int_equal(strlen(r.out), 2 * VTSM_GUEST_PUBKEY_SIZE + 1);
    assert_null(strstr(r.out, hex));
}

static void test_list_info_accept_reject(void **state)
{
    struct fx *f = *state;
    struct run r;
    char ref[160], text[1024];

    start(f, GF_OK, GF_SP_NONE);
    CLI(f, &r, "--tvm", TVM_ARG, "list");
    expect_run(&r, 0, "tdis:\n  -\n    dev: 0000:03:00.0\n    tdi: 2\n", NULL);
    assert_non_null(strstr(r.out, "gop: 65\ntvm: 4\nseq: 1\n"));
    CLI(f, &r, "--json", "--tvm", TVM_ARG, "list");
    expect_run(&r, 0, "{\"gop\":65,\"tvm\":4,\"seq\":2,\"tdis\":[{\"dev\":\"0000:03:00.0\"", NULL);

    /* info without a nonce: the TSM's cached view, nothing to verify */
    CLI(f, &r, "--tvm", TVM_ARG, "info", GF_DEV, TDI_ARG);
    expect_run(&r, 0, "interface_info: 3\n", NULL);
    assert_null(strstr(r.out, "token verified"));

    gf_good_reference(&f->fake.ev, text, sizeof(text));
    write_text(f, "good.ref", text, ref, sizeof(ref));
    CLI(f, &r, "--tvm", TVM_ARG, "info", GF_DEV, TDI_ARG, "--reference", ref, "--doe", f->doe);
    expect_run(&r, 0, "token verified\nreference values match (6 checked)\n", NULL);
    CLI(f, &r, "--json", "--tvm", TVM_ARG, "info", GF_DEV, TDI_ARG, "--nonce",
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", "--doe", f->doe);
    expect_run(&r, 0,
               "\"token_verified\":true,\"claims\":{\"nonce\":"
               "\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"",
               NULL);

    CLI(f, &r, "--tvm", TVM_ARG, "accept", GF_DEV, TDI_ARG, "--reference", ref, "--doe", f->doe);
    expect_run(&r, 0, "state: RUN\n", NULL);
    CLI(f, &r, "--tvm", TVM_ARG, "reject", GF_DEV, TDI_ARG, "--reason", "changed my mind");
    expect_run(&r, 0, "gop: 68\n", NULL);
    stop(f);
    assert_int_equal(f->fake.lists, 2);
    assert_int_equal(f->fake.infos, 4);
    assert_int_equal(f->fake.accepts, 1);
    assert_int_equal(f->fake.rejects, 1);
    assert_string_equal(f->fake.reason, "changed my mind");
    assert_string_equal(f->fake.role, "host");
    /* every run continued the sequence: 8 requests, no replay */
    assert_int_equal(f->fake.replays, 0);
    assert_int_equal(f->fake.last_seq, 8);
    assert_int_equal(seq_on_disk(f), 8);
}

static void test_direct_guest_connection(void **state)
{
    struct fx *f = *state;
    struct run r;

    start(f, GF_DOE_THEN_OK, GF_SP_NONE);
    CLI(f, &r, "--direct", "--tvm", TVM_ARG, "list");
    expect_run(&r, 0, "tdis:", NULL);
    stop(f);
    assert_int_equal(f->fake.last_seq, 1);
    assert_string_equal(f->fake.role, "guest");
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_usage_errors_send_nothing),        T(test_unreachable),
        T(test_tsm_refusal_is_reported),          T(test_accept_rejects_on_reference_mismatch),
        T(test_accept_rejects_tampered_evidence), T(test_keygen_and_pubkey),
        T(test_list_info_accept_reject),          T(test_direct_guest_connection),
    };
#undef T
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
