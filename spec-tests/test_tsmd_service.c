/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tsmd as a service: its configuration checks (each refusal with its exit code and a
 * message naming the cause and the file), --version, --opt=value, and systemd's protocol
 * (a listening socket passed with LISTEN_FDS / LISTEN_PID, readiness on NOTIFY_SOCKET).
 * Every tsmd is started in a private temporary directory and reaped on every path.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vtsm_host.h"
#include "vtsm_proc.h"
#include "vtsm_version.h"

#define TSMD VTSM_BIN_DIR "/tsmd"
#define PKI  VTSM_SOURCE_DIR "/pki"

/* The exit codes tsmd documents (tsmd --help, docs/install.md). */
enum { EXIT_STOPPED = 0, EXIT_FAILURE_ = 1, EXIT_USAGE = 2, EXIT_CONFIG = 3 };

struct run {
    pid_t pid;
    int status; /* wait status, -1 while running */
    char out[8192], err[8192];
};

/* How a child is started beyond its arguments (applied after fork, before exec). */
struct launch {
    int listen_fd;          /* >= 0: becomes fd 3 */
    int second_fd;          /* > 0: becomes fd 4 */
    const char *listen_pid; /* LISTEN_PID value; NULL: the child's own pid */
    const char *listen_fds; /* LISTEN_FDS value; NULL: unset (and LISTEN_PID unset) */
    const char *notify;     /* NOTIFY_SOCKET value or NULL */
};

static char g_dir[64];
static char g_path[256];

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof(g_dir), "/tmp/vtsm-svc-XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *in_dir(const char *name)
{
    snprintf(g_path, sizeof(g_path), "%s/%s", g_dir, name);
    return g_path;
}

/* fork + exec tsmd with argv (NULL-terminated, without argv[0]); stdout and stderr go to
 * files in the test directory. */
static pid_t start(const char *const *args, const struct launch *l)
{
    char outp[128], errp[128];
    snprintf(outp, sizeof(outp), "%s/out", g_dir);
    snprintf(errp, sizeof(errp), "%s/err", g_dir);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int n = open("/dev/null", O_RDONLY);
    if (o < 0 || e < 0 || n < 0 || dup2(n, 0) < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
        _exit(127);
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("NOTIFY_SOCKET");
    /* through high numbers first, so the sources cannot be overwritten by each other */
    if (l && l->listen_fd >= 0 && (dup2(l->listen_fd, 100) < 0 || dup2(100, 3) < 0))
        _exit(127);
    if (l && l->second_fd > 0 && (dup2(l->second_fd, 101) < 0 || dup2(101, 4) < 0))
        _exit(127);
    if (l && l->listen_fds) {
        char pid_s[32];
        snprintf(pid_s, sizeof(pid_s), "%ld", (long)getpid());
        setenv("LISTEN_PID", l->listen_pid ? l->listen_pid : pid_s, 1);
        setenv("LISTEN_FDS", l->listen_fds, 1);
    }
    if (l && l->notify)
        setenv("NOTIFY_SOCKET", l->notify, 1);
    const char *argv[32] = {"tsmd"};
    for (int i = 0; args[i] && i < 30; i++)
        argv[i + 1] = args[i];
    execv(TSMD, (char *const *)argv);
    _exit(127);
}

static void slurp(const char *name, char *buf, size_t cap)
{
    char p[128];
    snprintf(p, sizeof(p), "%s/%s", g_dir, name);
    buf[0] = '\0';
    FILE *f = fopen(p, "r");
    if (!f)
        return;
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* Run tsmd to its end (10 s at most: a tsmd that starts serving is killed, and the
 * test fails on its status). */
static void run_to_end(struct run *r, const char *const *args)
{
    r->pid = start(args, NULL);
    assert_true(r->pid > 0);
    r->status = vtsm_proc_wait(r->pid, 10000);
    slurp("out", r->out, sizeof(r->out));
    slurp("err", r->err, sizeof(r->err));
}

static void assert_exit(const struct run *r, int code)
{
    if (!WIFEXITED(r->status) || WEXITSTATUS(r->status) != code)
        fail_msg("tsmd: wait status 0x%x, wanted exit %d; stderr: %s", r->status, code, r->err);
}

static void assert_err_has(const struct run *r, const char *needle)
{
    if (!strstr(r->err, needle))
        fail_msg("tsmd stderr \"%s\" does not name \"%s\"", r->err, needle);
}

/* A configuration refusal: exit 3 and a message naming the cause and the file. */
static void expect_config_refusal(const char *opt, const char *cause, const char *file)
{
    char sock[256];
    snprintf(sock, sizeof(sock), "--socket=%s/tsmd.sock", g_dir);
    const char *args[] = {sock, opt, NULL};
    struct run r;
    run_to_end(&r, args);
    assert_exit(&r, EXIT_CONFIG);
    assert_err_has(&r, cause);
    if (file)
        assert_err_has(&r, file);
    assert_null(strstr(r.err, "nomem"));
    struct stat sb;
    assert_int_equal(stat(in_dir("tsmd.sock"), &sb), -1); /* refused before serving */
}

static void make_file(const char *name, const char *text, mode_t mode)
{
    FILE *f = fopen(in_dir(name), "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(in_dir(name), mode), 0);
}

/* ---- configuration refusals ---- */

static void test_identity_key_not_matching_certificate(void **state)
{
    (void)state;
    /* the TSM's own key with the device's P-256 leaf certificate */
    expect_config_refusal("--identity=" PKI "/tsm/tsm.key:" PKI "/p256/leaf.pem",
                          "does not match the certificate", PKI "/p256/leaf.pem");
    /* the same curve is no excuse: the P-384 leaf's key with the TSM certificate */
    expect_config_refusal("--identity=" PKI "/p384/leaf.key:" PKI "/tsm/tsm.pem",
                          "does not match the certificate", PKI "/p384/leaf.key");
}

static void test_empty_identity_files(void **state)
{
    (void)state;
    char opt[512], path[256];
    make_file("empty.key", "", 0600);
    snprintf(path, sizeof(path), "%s", in_dir("empty.key"));
    snprintf(opt, sizeof(opt), "--identity=%s:%s", path, PKI "/tsm/tsm.pem");
    expect_config_refusal(opt, "is empty", path);
    make_file("empty.pem", "", 0600);
    snprintf(path, sizeof(path), "%s", in_dir("empty.pem"));
    snprintf(opt, sizeof(opt), "--identity=%s:%s", PKI "/tsm/tsm.key", path);
    expect_config_refusal(opt, "is empty", path);
}

static void test_missing_and_unreadable_identity_files(void **state)
{
    (void)state;
    char opt[512], path[256];
    snprintf(path, sizeof(path), "%s", in_dir("no-such.key"));
    snprintf(opt, sizeof(opt), "--identity=%s:%s", path, PKI "/tsm/tsm.pem");
    expect_config_refusal(opt, "No such file or directory", path);
    /* a directory opens but cannot be read */
    snprintf(opt, sizeof(opt), "--identity=%s:%s", PKI "/tsm/tsm.key", g_dir);
    expect_config_refusal(opt, "Is a directory", g_dir);
    /* permissions (root reads anything, so only checked as another user) */
    if (geteuid() != 0) {
        make_file("locked.pem", "x", 0);
        snprintf(path, sizeof(path), "%s", in_dir("locked.pem"));
        snprintf(opt, sizeof(opt), "--identity=%s:%s", PKI "/tsm/tsm.key", path);
        expect_config_refusal(opt, "Permission denied", path);
    }
    /* text that is not PEM */
    make_file("junk.key", "not a key\n", 0600);
    snprintf(path, sizeof(path), "%s", in_dir("junk.key"));
    snprintf(opt, sizeof(opt), "--identity=%s:%s", path, PKI "/tsm/tsm.pem");
    expect_config_refusal(opt, "is not a PEM private key", path);
    expect_config_refusal("--identity=" PKI "/tsm/tsm.key", "--identity wants KEY.pem:CERT.pem",
                          NULL);
}

static void test_trust_paths(void **state)
{
    (void)state;
    char opt[512], path[256];
    make_file("empty-roots.pem", "", 0600);
    snprintf(path, sizeof(path), "%s", in_dir("empty-roots.pem"));
    snprintf(opt, sizeof(opt), "--trust=%s", path);
    expect_config_refusal(opt, "is empty", path);
    snprintf(path, sizeof(path), "%s", in_dir("no-roots.pem"));
    snprintf(opt, sizeof(opt), "--trust=%s", path);
    expect_config_refusal(opt, "No such file or directory", path);
    make_file("junk-roots.pem", "no certificate here\n", 0600);
    snprintf(path, sizeof(path), "%s", in_dir("junk-roots.pem"));
    snprintf(opt, sizeof(opt), "--trust=%s", path);
    expect_config_refusal(opt, "no certificate in", path);
}

static void test_usage_errors(void **state)
{
    (void)state;
    struct run r;
    const char *unknown[] = {"--no-such-option", NULL};
    run_to_end(&r, unknown);
    assert_exit(&r, EXIT_USAGE);
    assert_err_has(&r, "no-such-option");
    assert_err_has(&r, "tsmd --help");
    assert_null(strstr(r.err, "--frame-timeout-ms")); /* a hint, not the whole usage */

    const char *stray[] = {"serve", NULL};
    run_to_end(&r, stray);
    assert_exit(&r, EXIT_USAGE);
    assert_err_has(&r, "unexpected argument 'serve'");

    const char *huge[] = {"--doe-timeout-ms=99999999999999", NULL};
    run_to_end(&r, huge);
    assert_exit(&r, EXIT_USAGE);
    assert_err_has(&r, "--doe-timeout-ms wants an integer in 1..3600000");

    const char *zero_hosts[] = {"--max-hosts", "0", NULL};
    run_to_end(&r, zero_hosts);
    assert_exit(&r, EXIT_USAGE);
    assert_err_has(&r, "--max-hosts wants an integer in 1..128");
}

static void test_version_and_help(void **state)
{
    (void)state;
    struct run r;
    const char *version[] = {"--version", NULL};
    run_to_end(&r, version);
    assert_exit(&r, EXIT_STOPPED);
    assert_string_equal(r.out, "tsmd (vtsm) " VTSM_VERSION_STRING "\n");

    const char *help[] = {"--help", NULL};
    run_to_end(&r, help);
    assert_exit(&r, EXIT_STOPPED);
    assert_non_null(strstr(r.out, "Exit status:"));
    assert_non_null(strstr(r.out, "  3  configuration error"));
    assert_non_null(strstr(r.out, "--opt=VALUE"));
}

/* ---- serving ---- */

/* HELLO through the host shim; returns the TSM's name in name. */
static void hello(const char *sock, char *name, size_t cap)
{
    struct vtsm_host *h = NULL;
    vtsm_status st = vtsm_host_open(sock, &h);
    if (st != VTSM_OK)
        fail_msg("HELLO on %s: %s: %s", sock, vtsm_status_name(st), vtsm_err_detail());
    snprintf(name, cap, "%s", vtsm_host_tsm_name(h));
    vtsm_host_close(h);
}

/* Stop tsmd with SIGTERM and check it exits 0. */
static void stop_clean(pid_t pid)
{
    int status = vtsm_proc_stop(pid, 10000);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != EXIT_STOPPED) {
        char err[4096];
        slurp("err", err, sizeof(err));
        fail_msg("tsmd: wait status 0x%x after SIGTERM; stderr: %s", status, err);
    }
}

static void test_options_with_equals(void **state)
{
    (void)state;
    char sock[256], opt[300], name[64];
    snprintf(sock, sizeof(sock), "%s", in_dir("eq.sock"));
    snprintf(opt, sizeof(opt), "--socket=%s", sock);
    const char *args[] = {opt,
                          "--doe-timeout-ms=5000",
                          "--max-hosts=2",
                          "--identity=" PKI "/tsm/tsm.key:" PKI "/tsm/tsm.pem",
                          "--trust=" PKI "/roots.pem",
                          NULL};
    pid_t pid = start(args, NULL);
    assert_true(pid > 0);
    if (vtsm_proc_wait_socket(sock, 10000) != 0) {
        vtsm_proc_stop(pid, 1000);
        fail_msg("tsmd did not serve %s", sock);
    }
    hello(sock, name, sizeof(name));
    assert_string_equal(name, "vtsm " VTSM_VERSION_STRING);
    stop_clean(pid);
    struct stat sb;
    assert_int_equal(stat(sock, &sb), -1); /* tsmd removes the socket it made */
}

/* A listening Unix socket at path, as systemd's tsmd.socket makes it. */
static int listener(const char *path, bool listening)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    assert_true(strlen(path) < sizeof(sa.sun_path));
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    if (listening)
        assert_int_equal(listen(fd, 16), 0);
    return fd;
}

/* The notification socket: a bound datagram socket. */
static int notify_socket(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    assert_true(strlen(path) < sizeof(sa.sun_path));
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

/* One datagram within timeout_ms, or "" if none came. */
static void recv_notify(int fd, char *buf, size_t cap, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    buf[0] = '\0';
    if (poll(&p, 1, timeout_ms) == 1) {
        ssize_t n = recv(fd, buf, cap - 1, 0);
        buf[n > 0 ? n : 0] = '\0';
    }
}

static void test_socket_activation_and_readiness(void **state)
{
    (void)state;
    char sock[256], notify[256], unused[256], opt[300], msg[256], want[64], name[64];
    snprintf(sock, sizeof(sock), "%s", in_dir("activated.sock"));
    snprintf(notify, sizeof(notify), "%s", in_dir("notify"));
    snprintf(unused, sizeof(unused), "%s", in_dir("unused.sock"));
    int lfd = listener(sock, true);
    int nfd = notify_socket(notify);
    /* --socket names another path: the passed socket wins, nothing is made there */
    snprintf(opt, sizeof(opt), "--socket=%s", unused);
    const char *args[] = {opt, NULL};
    struct launch l = {.listen_fd = lfd, .listen_fds = "1", .notify = notify};
    pid_t pid = start(args, &l);
    assert_true(pid > 0);
    close(lfd); /* tsmd holds the only copy now, as under systemd */

    recv_notify(nfd, msg, sizeof(msg), 10000);
    if (!strstr(msg, "READY=1")) {
        vtsm_proc_stop(pid, 1000);
        fail_msg("no READY=1 from tsmd (got \"%s\")", msg);
    }
    snprintf(want, sizeof(want), "MAINPID=%ld", (long)pid);
    assert_non_null(strstr(msg, want));

    hello(sock, name, sizeof(name));
    assert_string_equal(name, "vtsm " VTSM_VERSION_STRING);
    hello(sock, name, sizeof(name)); /* and again: the listener stays */
    struct stat sb;
    assert_int_equal(stat(unused, &sb), -1);

    stop_clean(pid);
    recv_notify(nfd, msg, sizeof(msg), 5000);
    assert_non_null(strstr(msg, "STOPPING=1"));
    /* the socket file belongs to whoever made it (systemd): tsmd leaves it */
    assert_int_equal(stat(sock, &sb), 0);
    assert_true(S_ISSOCK(sb.st_mode));
    close(nfd);
}

static void test_activation_for_another_process_is_ignored(void **state)
{
    (void)state;
    char sock[256], own[256], opt[300], name[64];
    snprintf(sock, sizeof(sock), "%s", in_dir("other.sock"));
    snprintf(own, sizeof(own), "%s", in_dir("own.sock"));
    int lfd = listener(sock, true);
    snprintf(opt, sizeof(opt), "--socket=%s", own);
    const char *args[] = {opt, NULL};
    /* LISTEN_PID names another process: the variables are not for this tsmd */
    struct launch l = {.listen_fd = lfd, .listen_pid = "1", .listen_fds = "1"};
    pid_t pid = start(args, &l);
    assert_true(pid > 0);
    close(lfd);
    if (vtsm_proc_wait_socket(own, 10000) != 0) {
        vtsm_proc_stop(pid, 1000);
        fail_msg("tsmd did not serve its own socket %s", own);
    }
    hello(own, name, sizeof(name));
    stop_clean(pid);
}

static void test_activation_refusals(void **state)
{
    (void)state;
    char sock[256], opt[300];
    snprintf(sock, sizeof(sock), "%s", in_dir("bound-only.sock"));
    snprintf(opt, sizeof(opt), "--socket=%s", in_dir("x.sock"));
    const char *args[] = {opt, NULL};
    struct run r;

    /* a passed socket that is bound but not listening */
    int lfd = listener(sock, false);
    struct launch l = {.listen_fd = lfd, .listen_fds = "1"};
    r.pid = start(args, &l);
    close(lfd);
    r.status = vtsm_proc_wait(r.pid, 10000);
    slurp("err", r.err, sizeof(r.err));
    assert_exit(&r, EXIT_FAILURE_);
    assert_err_has(&r, "inherited fd 3 is not listening");

    /* two sockets: tsmd serves one */
    int a = listener(in_dir("a.sock"), true), b = listener(in_dir("b.sock"), true);
    struct launch two = {.listen_fd = a, .second_fd = b, .listen_fds = "2"};
    r.pid = start(args, &two);
    close(a);
    close(b);
    r.status = vtsm_proc_wait(r.pid, 10000);
    slurp("err", r.err, sizeof(r.err));
    assert_exit(&r, EXIT_CONFIG);
    assert_err_has(&r, "more than one socket");

    /* malformed LISTEN_FDS */
    struct launch bad = {.listen_fd = -1, .listen_fds = "one"};
    r.pid = start(args, &bad);
    r.status = vtsm_proc_wait(r.pid, 10000);
    slurp("err", r.err, sizeof(r.err));
    assert_exit(&r, EXIT_CONFIG);
    assert_err_has(&r, "LISTEN_FDS / LISTEN_PID are malformed");
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_identity_key_not_matching_certificate, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_empty_identity_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_and_unreadable_identity_files, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_trust_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_version_and_help, setup, teardown),
        cmocka_unit_test_setup_teardown(test_options_with_equals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_socket_activation_and_readiness, setup, teardown),
        cmocka_unit_test_setup_teardown(test_activation_for_another_process_is_ignored, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_activation_refusals, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
