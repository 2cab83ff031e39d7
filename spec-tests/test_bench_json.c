/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vtsm-bench --json with small counts: one JSON object holding every field, with values
 * that are consistent with each other and with what was asked (the latency a device was
 * given bounds the connect time from below). The figures themselves are not judged.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define BENCH VTSM_BIN_DIR "/vtsm-bench"

/* Run the bench; out gets stdout. Returns the exit status. */
static int run(const char *args, char *out, size_t cap)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "%s %s 2>&1", BENCH, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* The number after "key": in a flat JSON object; fails the test if absent. */
static double num(const char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *p = strstr(json, pat);
    if (!p)
        fail_msg("field %s missing in %s", key, json);
    char *end;
    double v = strtod(p + strlen(pat), &end);
    if (end == p + strlen(pat))
        fail_msg("field %s is not a number in %s", key, json);
    return v;
}

static void near(double got, double want, const char *what)
{
    if (got < want * 0.98 - 0.002 || got > want * 1.02 + 0.002)
        fail_msg("%s: %.4f, expected %.4f", what, got, want);
}

static void test_bad_option(void **state)
{
    (void)state;
    static char out[4096];
    assert_int_equal(run("--alg p521", out, sizeof(out)), 2);
    assert_non_null(strstr(out, "usage"));
    assert_int_equal(run("--devices 0", out, sizeof(out)), 2);
}

static void check(const char *alg, const char *args, int devices, int latency_us)
{
    static char out[8192];
    if (run(args, out, sizeof(out)) != 0)
        fail_msg("vtsm-bench %s failed:\n%s", args, out);
    /* exactly one object on one line */
    size_t n = strlen(out);
    if (n < 2 || out[0] != '{' || out[n - 1] != '\n' || out[n - 2] != '}' ||
        strchr(out, '\n') != out + n - 1)
        fail_msg("not one JSON object line:\n%s", out);
    char want_alg[32];
    snprintf(want_alg, sizeof(want_alg), "\"alg\":\"%s\"", alg);
    assert_non_null(strstr(out, want_alg));

    double ex = num(out, "exchanges"), ide_ex = num(out, "ide_exchanges");
    double conn = num(out, "connect_ms"), ide = num(out, "ide_connect_ms");
    double cf = num(out, "crypto_floor_ms"), rtt = num(out, "relay_rtt_ms");
    double rf = num(out, "relay_floor_ms"), irf = num(out, "ide_relay_floor_ms");
    double r = num(out, "connect_floor_ratio"), ir = num(out, "ide_connect_floor_ratio");
    double one = num(out, "latency_connect_ms"), many = num(out, "concurrent_connect_ms");
    double cr = num(out, "concurrent_ratio");
    /* a connect is VERSION .. MEASUREMENTS, FINISH etc.: a dozen or so exchanges; IDE
     * adds QUERY, KEY_PROG and K_SET_GO */
    assert_true(ex >= 8 && ex <= 64);
    assert_true(ide_ex >= ex + 7);
    assert_true(conn > 0 && conn < 5000 && ide > 0 && ide < 5000);
    /* the floor is thread CPU time, the connect wall time: on a loaded machine either can
     * come out larger, so only their signs are checked here (targets live in the bench) */
    assert_true(cf > 0);
    assert_true(rtt > 0 && rtt < 50);
    near(rf, ex * rtt, "relay_floor_ms = exchanges x relay_rtt_ms");
    near(irf, ide_ex * rtt, "ide_relay_floor_ms");
    /* connect_floor_ratio is the median of each connect's own ratio (not computable from
     * the medians printed); the ratio of the medians is printed beside it */
    near(num(out, "connect_medians_ratio"), conn / (cf + rf), "connect_medians_ratio");
    assert_true(r > 0 && r < 100 && ir > 0 && ir < 100);
    assert_int_equal((int)num(out, "relay_samples"), 2 * 16 * (int)num(out, "iterations"));
    /* where the connect's CPU went: tsmd, the device, the host relaying */
    double ct = num(out, "tsm"), cd = num(out, "device"), ch = num(out, "host");
    assert_true(ct > 0 && cd > 0 && ch > 0);
    assert_true(num(out, "connect_work_ratio") > 0 && num(out, "ide_connect_work_ratio") > 0);
    assert_int_equal((int)num(out, "devices"), devices);
    assert_int_equal((int)num(out, "latency_us"), latency_us);
    /* every exchange of a latency device waits latency_us at least */
    assert_true(one >= ex * latency_us / 1000.0);
    assert_true(many >= ex * latency_us / 1000.0);
    near(cr, many / one, "concurrent_ratio");
    assert_true(num(out, "concurrent_cpu_ms") > 0);
    assert_true(num(out, "concurrent_host_loop_cpu_ms") > 0);
    assert_true(num(out, "cpus") >= 1);
    /* guest INFO: every guest got answers, and the scaling is the quotient of the two */
    double g1 = num(out, "guest_info_per_s"), gn = num(out, "guest_info_per_s_all");
    assert_int_equal((int)num(out, "guests"), 4);
    assert_true(g1 > 0 && gn > 0);
    near(num(out, "guest_info_scaling"), gn / g1, "guest_info_scaling");
    /* against a peer writing frames in four pieces without TCP_NODELAY: far below the
     * 40 ms a delayed ACK between the pieces would cost (the target is under 1 ms) */
    double split = num(out, "split_rtt_ms");
    assert_true(split > 0 && split < 5);
}

static void test_json_p256(void **state)
{
    (void)state;
    check("p256", "--json --alg p256 --iterations 3 --rounds 2", 16, 1000);
}

static void test_json_p384_few_devices(void **state)
{
    (void)state;
    check("p384", "--json --iterations 2 --rounds 1 --devices 3 --latency-us 3000", 3, 3000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_option),
        cmocka_unit_test(test_json_p256),
        cmocka_unit_test(test_json_p384_few_devices),
    };
    return cmocka_run_group_tests_name("bench_json", tests, NULL, NULL);
}
