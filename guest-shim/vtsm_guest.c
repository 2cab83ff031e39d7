/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The guest shim: the TVM credential (P-256 key + persisted seq), GUEST_REQUEST
 * envelopes (docs/abi.md section 9) and their transport through a
 * host-shim connection.
 */
#include "vtsm_guest_cbor.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "vtsm_abi.h"
#include "vtsm_buf.h"
#include "vtsm_crypto.h"
#include "vtsm_guard.h"
#include "vtsm_host_cbor.h"

_Static_assert(VTSM_GUEST_PUBKEY_SIZE == VTSM_ABI_GUEST_KEY_SIZE, "TVM_CREATE guest_key size");
_Static_assert(VTSM_GUEST_SIG_SIZE == VTSM_ABI_GUEST_SIG_SIZE, "GUEST_REQUEST sig size");
_Static_assert(VTSM_GUEST_NONCE_SIZE == VTSM_ABI_GUEST_NONCE_SIZE, "guest nonce size");

#define KEY_FILE_MAX 16384 /* a PEM P-256 key is a few hundred bytes */
#define SEQ_FILE_MAX 64

/* What the last INFO of a TDI reported, for the ACCEPT that follows (docs/abi.md 9.5):
 * report_digest, measurements_digest, lock_nonce_digest, in that order. */
enum { BIND_REPORT, BIND_MEAS, BIND_LOCK, BIND_N };
static const char *const bind_keys[BIND_N] = {
    VTSM_ABI_K_REPORT_DIGEST, VTSM_ABI_K_MEASUREMENTS_DIGEST, VTSM_ABI_K_LOCK_NONCE_DIGEST};
#define GUEST_BINDINGS 16 /* TDIs a handle remembers; the oldest is dropped */
struct guest_binding {
    bool used;
    char dev[VTSM_ABI_DEV_BUF];
    uint32_t tdi;
    uint8_t d[BIND_N][VTSM_ABI_GUEST_DIGEST_MAX];
    size_t len[BIND_N];
};

struct vtsm_guest {
    EVP_PKEY *key;
    uint32_t tvm;
    int lock_fd; /* the key file, for flock() around seq updates */
    uint64_t last_seq;
    uint8_t pub[VTSM_GUEST_PUBKEY_SIZE];
    char *seq_path;
    struct guest_binding bind[GUEST_BINDINGS];
    unsigned bind_next;
};

static struct guest_binding *binding_find(struct vtsm_guest *g, const char *dev, int64_t tdi)
{
    for (unsigned i = 0; dev && i < GUEST_BINDINGS; i++)
        if (g->bind[i].used && g->bind[i].tdi == (uint64_t)tdi && strcmp(g->bind[i].dev, dev) == 0)
            return &g->bind[i];
    return NULL;
}

/* ---- files ---- */

static char *seq_path_of(const char *key_path)
{
    size_t n = strlen(key_path);
    char *p = malloc(n + sizeof(VTSM_GUEST_SEQ_SUFFIX));
    if (p) {
        memcpy(p, key_path, n);
        memcpy(p + n, VTSM_GUEST_SEQ_SUFFIX, sizeof(VTSM_GUEST_SEQ_SUFFIX));
    }
    return p;
}

static vtsm_status write_all(int fd, const void *p, size_t n, const char *path)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return vtsm_fail(VTSM_E_IO, "writing %s: %s", path, strerror(errno));
        b += w;
        n -= (size_t)w;
    }
    return VTSM_OK;
}

/* fsync the directory holding path, so a rename in it is durable. Best effort. */
static void sync_dir_of(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(copy);
}

/* Replace seq_path with "seq\n": write a temporary file beside it, fsync, rename. */
static vtsm_status seq_store(const char *seq_path, uint64_t seq)
{
    vtsm_status st = VTSM_OK;
    size_t n = strlen(seq_path);
    char *tmp = malloc(n + 8);
    int fd = -1;
    char text[32];

    VTSM_ENSURE(tmp, VTSM_E_NOMEM, "seq file name");
    memcpy(tmp, seq_path, n);
    memcpy(tmp + n, ".XXXXXX", 8);
    fd = mkstemp(tmp);
    if (fd < 0) {
        st = vtsm_fail(VTSM_E_IO, "cannot create %s: %s", tmp, strerror(errno));
        free(tmp);
        return st;
    }
    int len = snprintf(text, sizeof(text), "%" PRIu64 "\n", seq);
    VTSM_GUARD_GOTO(write_all(fd, text, (size_t)len, tmp));
    VTSM_ENSURE_GOTO(fsync(fd) == 0, VTSM_E_IO, "fsync %s: %s", tmp, strerror(errno));
    VTSM_ENSURE_GOTO(close(fd) == 0, VTSM_E_IO, "close %s: %s", tmp, strerror(errno));
    fd = -1;
    VTSM_ENSURE_GOTO(rename(tmp, seq_path) == 0, VTSM_E_IO, "rename %s -> %s: %s", tmp, seq_path,
                     strerror(errno));
    sync_dir_of(seq_path);
out:
    if (fd >= 0)
        close(fd);
    if (st != VTSM_OK)
        unlink(tmp);
    free(tmp);
    return st;
}

/* Read the seq file: missing = 0; otherwise decimal digits and one optional newline. */
static vtsm_status seq_load(const char *seq_path, uint64_t *seq)
{
    char text[SEQ_FILE_MAX + 1];
    size_t n = 0;
    uint64_t v = 0;

    *seq = 0;
    int fd = open(seq_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT)
            return VTSM_OK;
        return vtsm_fail(VTSM_E_IO, "cannot open %s: %s", seq_path, strerror(errno));
    }
    for (;;) {
        ssize_t r = read(fd, text + n, sizeof(text) - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            return vtsm_fail(VTSM_E_IO, "reading %s: %s", seq_path, strerror(e));
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n == sizeof(text))
            break;
    }
    close(fd);
    VTSM_ENSURE(n <= SEQ_FILE_MAX, VTSM_E_CONFIG, "%s: longer than %d bytes", seq_path,
                SEQ_FILE_MAX);
    if (n > 0 && text[n - 1] == '\n')
        n--;
    VTSM_ENSURE(n > 0 && n <= 20, VTSM_E_CONFIG, "%s: expected the last sequence number in decimal",
                seq_path);
    for (size_t i = 0; i < n; i++) {
        VTSM_ENSURE(text[i] >= '0' && text[i] <= '9', VTSM_E_CONFIG,
                    "%s: byte %zu is not a decimal digit", seq_path, i);
        unsigned d = (unsigned)(text[i] - '0');
        VTSM_ENSURE(v <= (UINT64_MAX - d) / 10, VTSM_E_CONFIG, "%s: number exceeds 2^64-1",
                    seq_path);
        v = v * 10 + d;
    }
    *seq = v;
    return VTSM_OK;
}

/* ---- the credential ---- */

static vtsm_status export_pub(EVP_PKEY *key, uint8_t out[VTSM_GUEST_PUBKEY_SIZE])
{
    size_t n = 0;
    uint8_t buf[VTSM_GUEST_PUBKEY_SIZE + 1];

    VTSM_OSSL(EVP_PKEY_set_utf8_string_param(key, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                             OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_UNCOMPRESSED));
    VTSM_OSSL(EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, buf,
                                              sizeof(buf), &n));
    VTSM_ENSURE(n == VTSM_GUEST_PUBKEY_SIZE && buf[0] == 0x04, VTSM_E_CRYPTO,
                "public key is not an uncompressed P-256 point (%zu bytes)", n);
    memcpy(out, buf, n);
    return VTSM_OK;
}

vtsm_status vtsm_guest_keygen(const char *key_path)
{
    vtsm_status st = VTSM_OK;
    EVP_PKEY *key = NULL;
    BIO *bio = NULL;
    char *seq_path = NULL;
    int fd = -1;
    bool created = false;

    VTSM_ENSURE(key_path && *key_path, VTSM_E_INVAL, "keygen: no key path");
    seq_path = seq_path_of(key_path);
    VTSM_ENSURE_GOTO(seq_path, VTSM_E_NOMEM, "seq file name");
    key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    VTSM_ENSURE_GOTO(key, VTSM_E_CRYPTO, "P-256 key generation failed");

    fd = open(key_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        st = vtsm_fail(errno == EEXIST ? VTSM_E_EXISTS : VTSM_E_IO, "cannot create %s: %s%s",
                       key_path, strerror(errno),
                       errno == EEXIST ? " (a TVM credential is never replaced)" : "");
        goto out;
    }
    created = true;
    /* the umask may have taken bits away, never added: make it exactly 0600 */
    VTSM_ENSURE_GOTO(fchmod(fd, 0600) == 0, VTSM_E_IO, "chmod %s: %s", key_path, strerror(errno));
    bio = BIO_new_fd(fd, BIO_NOCLOSE);
    VTSM_ENSURE_GOTO(bio, VTSM_E_NOMEM, "BIO for %s", key_path);
    VTSM_ENSURE_GOTO(PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) == 1 &&
                         BIO_flush(bio) == 1,
                     VTSM_E_IO, "writing %s failed", key_path);
    VTSM_ENSURE_GOTO(fsync(fd) == 0, VTSM_E_IO, "fsync %s: %s", key_path, strerror(errno));
    /* a new credential is a new TVM: its sequence starts again */
    VTSM_GUARD_GOTO(seq_store(seq_path, 0));
out:
    BIO_free(bio);
    if (fd >= 0)
        close(fd);
    if (st != VTSM_OK && created)
        unlink(key_path);
    EVP_PKEY_free(key);
    free(seq_path);
    return st;
}

/* Read the whole key file through the fd we checked (no second open by name). */
static vtsm_status read_key_file(int fd, const char *path, uint8_t *buf, size_t cap, size_t *len)
{
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return vtsm_fail(VTSM_E_IO, "reading %s: %s", path, strerror(errno));
        if (r == 0)
            break;
        n += (size_t)r;
        VTSM_ENSURE(n < cap, VTSM_E_CONFIG, "%s: larger than %zu bytes, not a P-256 key", path,
                    cap - 1);
    }
    *len = n;
    return VTSM_OK;
}

static bool has_private(EVP_PKEY *key)
{
    BIGNUM *priv = NULL;
    if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &priv) != 1)
        return false;
    BN_clear_free(priv);
    return true;
}

vtsm_status vtsm_guest_open(const char *key_path, uint32_t tvm, struct vtsm_guest **out)
{
    vtsm_status st = VTSM_OK;
    struct vtsm_guest *g = NULL;
    uint8_t *pem = NULL;
    size_t pem_len = 0;
    struct stat sb;

    VTSM_ENSURE(out, VTSM_E_INVAL, "open: out is NULL");
    *out = NULL;
    VTSM_ENSURE(key_path && *key_path, VTSM_E_INVAL, "open: no key path");
    g = calloc(1, sizeof(*g));
    VTSM_ENSURE(g, VTSM_E_NOMEM, "guest handle");
    g->lock_fd = -1;
    g->tvm = tvm;
    g->seq_path = seq_path_of(key_path);
    VTSM_ENSURE_GOTO(g->seq_path, VTSM_E_NOMEM, "seq file name");

    g->lock_fd = open(key_path, O_RDONLY | O_CLOEXEC);
    VTSM_ENSURE_GOTO(g->lock_fd >= 0, errno == ENOENT ? VTSM_E_NOT_FOUND : VTSM_E_IO,
                     "cannot open key file %s: %s", key_path, strerror(errno));
    VTSM_ENSURE_GOTO(fstat(g->lock_fd, &sb) == 0, VTSM_E_IO, "stat %s: %s", key_path,
                     strerror(errno));
    VTSM_ENSURE_GOTO(S_ISREG(sb.st_mode), VTSM_E_CONFIG, "%s is not a regular file", key_path);
    VTSM_ENSURE_GOTO((sb.st_mode & 077) == 0, VTSM_E_CONFIG,
                     "key file %s is accessible to group or others (mode %03o); chmod 600 it",
                     key_path, (unsigned)(sb.st_mode & 0777));

    pem = OPENSSL_malloc(KEY_FILE_MAX);
    VTSM_ENSURE_GOTO(pem, VTSM_E_NOMEM, "key buffer");
    VTSM_GUARD_GOTO(read_key_file(g->lock_fd, key_path, pem, KEY_FILE_MAX, &pem_len));
    VTSM_ENSURE_GOTO(pem_len > 0, VTSM_E_CONFIG, "%s is empty", key_path);
    st = vtsm_pkey_from_pem(pem, pem_len, &g->key);
    if (st != VTSM_OK) {
        st = vtsm_fail(VTSM_E_CONFIG, "%s holds no PEM key", key_path);
        goto out;
    }
    VTSM_ENSURE_GOTO(vtsm_pkey_asym(g->key) == VTSM_ASYM_ECDSA_P256, VTSM_E_CONFIG,
                     "%s is not a P-256 key (the TVM credential is ECDSA P-256)", key_path);
    VTSM_ENSURE_GOTO(has_private(g->key), VTSM_E_CONFIG,
                     "%s holds only a public key; the guest needs its private key", key_path);
    VTSM_GUARD_GOTO(export_pub(g->key, g->pub));
    VTSM_GUARD_GOTO(seq_load(g->seq_path, &g->last_seq));
    *out = g;
    g = NULL;
out:
    if (pem) {
        OPENSSL_cleanse(pem, KEY_FILE_MAX);
        OPENSSL_free(pem);
    }
    vtsm_guest_close(g);
    return st;
}

void vtsm_guest_close(struct vtsm_guest *g)
{
    if (!g)
        return;
    EVP_PKEY_free(g->key);
    if (g->lock_fd >= 0)
        close(g->lock_fd);
    free(g->seq_path);
    free(g);
}

void vtsm_guest_pubkey(const struct vtsm_guest *g, uint8_t out[VTSM_GUEST_PUBKEY_SIZE])
{
    memcpy(out, g->pub, VTSM_GUEST_PUBKEY_SIZE);
}

void vtsm_guest_identity(const struct vtsm_guest *g, uint8_t out[32])
{
    /* SHA-256 of 65 bytes in memory cannot fail short of a broken library */
    if (vtsm_hash(VTSM_HASH_SHA256, g->pub, sizeof(g->pub), out) != VTSM_OK)
        memset(out, 0, 32);
}

uint32_t vtsm_guest_tvm(const struct vtsm_guest *g)
{
    return g->tvm;
}

uint64_t vtsm_guest_last_seq(const struct vtsm_guest *g)
{
    return g->last_seq;
}

/* ---- requests ---- */

vtsm_status vtsm_guest_reserve_seq(struct vtsm_guest *g, uint64_t *seq)
{
    vtsm_status st = VTSM_OK;
    uint64_t on_disk = 0, next;

    VTSM_ENSURE(g && seq, VTSM_E_INVAL, "reserve seq: NULL argument");
    while (flock(g->lock_fd, LOCK_EX) != 0) {
        if (errno != EINTR)
            return vtsm_fail(VTSM_E_IO, "locking the key file: %s", strerror(errno));
    }
    VTSM_GUARD_GOTO(seq_load(g->seq_path, &on_disk));
    next = on_disk > g->last_seq ? on_disk : g->last_seq;
    VTSM_ENSURE_RULE_GOTO(
        next < UINT64_MAX, VTSM_E_LIMIT, VTSM_RULE_GUEST_2,
        "sequence numbers of this TVM are exhausted (rule GUEST.2 needs a larger one)");
    next++;
    /* persisted before use, so a crash can skip a number but never reuse one */
    VTSM_GUARD_GOTO(seq_store(g->seq_path, next));
    g->last_seq = next;
    *seq = next;
out:
    (void)flock(g->lock_fd, LOCK_UN);
    return st;
}

vtsm_status vtsm_guest_sign_cbor(const struct vtsm_guest *g, uint32_t envelope_tvm,
                                 const uint8_t *body, size_t len, cbor_item_t **envelope_map)
{
    vtsm_status st = VTSM_OK;
    struct vtsm_buf tbs = {0};
    uint8_t sig[VTSM_GUEST_SIG_SIZE];
    cbor_item_t *env = NULL;
    const size_t plen = sizeof(VTSM_ABI_GUEST_SIG_PREFIX) - 1;

    VTSM_ENSURE(envelope_map, VTSM_E_INVAL, "sign: envelope_map is NULL");
    *envelope_map = NULL;
    VTSM_ENSURE(g && (body || len == 0), VTSM_E_INVAL, "sign: NULL argument");
    VTSM_GUARD_GOTO(vtsm_buf_reserve(&tbs, plen + len));
    VTSM_GUARD_GOTO(vtsm_buf_append(&tbs, VTSM_ABI_GUEST_SIG_PREFIX, plen));
    VTSM_GUARD_GOTO(vtsm_buf_append(&tbs, body, len));
    VTSM_GUARD_GOTO(
        vtsm_ecdsa_sign(g->key, VTSM_ASYM_ECDSA_P256, VTSM_HASH_SHA256, tbs.data, tbs.len, sig));
    env = vtsm_abi_map_new();
    VTSM_ENSURE_GOTO(env, VTSM_E_NOMEM, "envelope");
    VTSM_GUARD_GOTO(vtsm_abi_put_uint(env, VTSM_ABI_K_TVM, envelope_tvm));
    VTSM_GUARD_GOTO(vtsm_abi_put_bytes(env, VTSM_ABI_K_BODY, body, len));
    VTSM_GUARD_GOTO(vtsm_abi_put_bytes(env, VTSM_ABI_K_SIG, sig, sizeof(sig)));
    *envelope_map = env;
    env = NULL;
out:
    if (env)
        cbor_decref(&env);
    vtsm_buf_free(&tbs);
    return st;
}

static const char *gop_name(unsigned gop)
{
    return vtsm_abi_gop_name(gop);
}

/* Which optional keys each guest operation takes (docs/abi.md section 9). */
static vtsm_status check_args(unsigned gop, const char *dev, int64_t tdi, const uint8_t *nonce,
                              const char *reason)
{
    const char *name = gop_name(gop);
    bool target = gop != VTSM_ABI_GOP_LIST;

    VTSM_ENSURE(name, VTSM_E_INVAL, "unknown guest operation 0x%x (LIST 0x41 .. DEBUG_WRITE 0x48)",
                gop);
    if (target) {
        VTSM_ENSURE_RULE(dev, VTSM_E_INVAL, VTSM_RULE_GUEST_4, "%s needs dev", name);
        VTSM_GUARD(vtsm_abi_check_dev(dev));
        VTSM_ENSURE_RULE(tdi >= 0 && tdi <= (int64_t)UINT32_MAX, VTSM_E_INVAL, VTSM_RULE_GUEST_4,
                         "%s needs tdi 0..%" PRIu32, name, UINT32_MAX);
    } else {
        VTSM_ENSURE_RULE(!dev && tdi == VTSM_GUEST_NO_TDI, VTSM_E_INVAL, VTSM_RULE_GUEST_4,
                         "LIST takes no dev or tdi");
    }
    VTSM_ENSURE_RULE(!nonce || gop == VTSM_ABI_GOP_INFO, VTSM_E_INVAL, VTSM_RULE_GUEST_4,
                     "only INFO takes a nonce");
    VTSM_ENSURE_RULE(!reason || gop == VTSM_ABI_GOP_REJECT, VTSM_E_INVAL, VTSM_RULE_GUEST_4,
                     "only REJECT takes a reason");
    VTSM_ENSURE(!reason || strlen(reason) <= VTSM_GUEST_REASON_MAX, VTSM_E_INVAL,
                "reason longer than %u bytes", VTSM_GUEST_REASON_MAX);
    return VTSM_OK;
}

/* Encode body = {gop, tvm, seq, ? dev, ? tdi, ? nonce, ? reason, ? report_digest,
 * ? measurements_digest, ? lock_nonce_digest} (docs/abi.md order) into frame (4-byte ABI
 * length prefix + CBOR). */
static vtsm_status encode_body(unsigned gop, uint32_t tvm, uint64_t seq, const char *dev,
                               int64_t tdi, const uint8_t *nonce, const char *reason,
                               const struct guest_binding *b, struct vtsm_buf *frame)
{
    vtsm_status st = VTSM_OK;
    cbor_item_t *body = vtsm_abi_map_new();

    VTSM_ENSURE(body, VTSM_E_NOMEM, "request body");
    VTSM_GUARD_GOTO(vtsm_abi_put_uint(body, VTSM_ABI_K_GOP, gop));
    VTSM_GUARD_GOTO(vtsm_abi_put_uint(body, VTSM_ABI_K_TVM, tvm));
    VTSM_GUARD_GOTO(vtsm_abi_put_uint(body, VTSM_ABI_K_SEQ, seq));
    VTSM_GUARD_GOTO(vtsm_abi_put_uint(body, VTSM_ABI_K_SCOPE, (uint64_t)vtsm_abi_gop_scope(gop)));
    if (dev)
        VTSM_GUARD_GOTO(vtsm_abi_put_tstr(body, VTSM_ABI_K_DEV, dev));
    if (tdi != VTSM_GUEST_NO_TDI)
        VTSM_GUARD_GOTO(vtsm_abi_put_uint(body, VTSM_ABI_K_TDI, (uint64_t)tdi));
    if (nonce)
        VTSM_GUARD_GOTO(vtsm_abi_put_bytes(body, VTSM_ABI_K_NONCE, nonce, VTSM_GUEST_NONCE_SIZE));
    if (reason)
        VTSM_GUARD_GOTO(vtsm_abi_put_tstr(body, VTSM_ABI_K_REASON, reason));
    for (unsigned i = 0; b && i < BIND_N; i++)
        VTSM_GUARD_GOTO(vtsm_abi_put_bytes(body, bind_keys[i], b->d[i], b->len[i]));
    VTSM_GUARD_GOTO(vtsm_abi_encode(body, frame));
out:
    cbor_decref(&body);
    return st;
}

static vtsm_status build(struct vtsm_guest *g, unsigned gop, const char *dev, int64_t tdi,
                         const uint8_t *nonce, const char *reason, const struct guest_binding *b,
                         cbor_item_t **envelope_map);

vtsm_status vtsm_guest_build_cbor(struct vtsm_guest *g, unsigned gop, const char *dev, int64_t tdi,
                                  const uint8_t *nonce, const char *reason,
                                  cbor_item_t **envelope_map)
{
    return build(g, gop, dev, tdi, nonce, reason, NULL, envelope_map);
}

/* b: the binding an ACCEPT carries (NULL: the one remembered for its TDI). */
static vtsm_status build(struct vtsm_guest *g, unsigned gop, const char *dev, int64_t tdi,
                         const uint8_t *nonce, const char *reason, const struct guest_binding *b,
                         cbor_item_t **envelope_map)
{
    vtsm_status st = VTSM_OK;
    cbor_item_t *check = NULL;
    struct vtsm_buf frame = {0};
    uint64_t seq = 0;

    VTSM_ENSURE(envelope_map, VTSM_E_INVAL, "build: envelope_map is NULL");
    *envelope_map = NULL;
    VTSM_ENSURE(g, VTSM_E_INVAL, "build: NULL handle");
    VTSM_ENSURE(g->tvm != 0, VTSM_E_STATE,
                "the guest handle has no TVM number (open it with the tvm TVM_CREATE returned)");
    VTSM_GUARD(check_args(gop, dev, tdi, nonce, reason));
    /* ACCEPT carries what the last INFO of this TDI reported: the TSM refuses RUN when the
     * TDI is no longer that one (rule TDI.20). */
    if (gop != VTSM_ABI_GOP_ACCEPT)
        b = NULL;
    else if (!b) {
        b = binding_find(g, dev, tdi);
        VTSM_ENSURE(b != NULL, VTSM_E_STATE,
                    "ACCEPT of %s TDI %" PRId64 ": this handle has no INFO of it (ACCEPT carries "
                    "the digests INFO reported; send INFO first)",
                    dev, tdi);
    }

    /* The TSM decodes the body under the ABI rules (valid UTF-8 and the limits): refuse
     * here what it would refuse, before a sequence number is spent. */
    VTSM_GUARD_GOTO(encode_body(gop, g->tvm, 0, dev, tdi, nonce, reason, b, &frame));
    st = vtsm_abi_decode(frame.data + VTSM_ABI_FRAME_HDR_SIZE, frame.len - VTSM_ABI_FRAME_HDR_SIZE,
                         &check);
    if (st != VTSM_OK) {
        st = vtsm_wrap(VTSM_E_INVAL, "request body breaks the ABI decoding rules");
        goto out;
    }

    VTSM_GUARD_GOTO(vtsm_guest_reserve_seq(g, &seq));
    VTSM_GUARD_GOTO(encode_body(gop, g->tvm, seq, dev, tdi, nonce, reason, b, &frame));
    VTSM_GUARD_GOTO(vtsm_guest_sign_cbor(g, g->tvm, frame.data + VTSM_ABI_FRAME_HDR_SIZE,
                                         frame.len - VTSM_ABI_FRAME_HDR_SIZE, envelope_map));
out:
    if (check)
        cbor_decref(&check);
    vtsm_buf_free(&frame);
    return st;
}

/* ---- transport ---- */

/* The RESULT of a guest request echoes gop, tvm and seq (docs/abi.md section 9). The host
 * relays it unauthenticated; the echo at least catches a result of another request. */
static vtsm_status check_echo(const cbor_item_t *res, unsigned gop, uint32_t tvm, uint64_t seq)
{
    uint64_t v_gop = 0, v_tvm = 0, v_seq = 0;
    if (vtsm_abi_get_uint(res, VTSM_ABI_K_GOP, &v_gop) != VTSM_OK ||
        vtsm_abi_get_uint(res, VTSM_ABI_K_TVM, &v_tvm) != VTSM_OK ||
        vtsm_abi_get_uint(res, VTSM_ABI_K_SEQ, &v_seq) != VTSM_OK)
        return vtsm_wrap(VTSM_E_PEER_MALFORMED, "guest RESULT must echo gop, tvm and seq");
    VTSM_ENSURE(v_gop == gop && v_tvm == tvm && v_seq == seq, VTSM_E_PEER_MALFORMED,
                "guest RESULT echoes gop 0x%" PRIx64 " tvm %" PRIu64 " seq %" PRIu64
                ", the request was gop 0x%x tvm %" PRIu32 " seq %" PRIu64,
                v_gop, v_tvm, v_seq, gop, tvm, seq);
    return VTSM_OK;
}

vtsm_status vtsm_guest_remember_info_cbor(struct vtsm_guest *g, const cbor_item_t *info)
{
    struct guest_binding nb = {.used = true};
    uint64_t tdi = 0;

    VTSM_ENSURE(g && info, VTSM_E_INVAL, "remember INFO: NULL argument");
    if (vtsm_abi_get_tstr(info, VTSM_ABI_K_DEV, nb.dev, sizeof(nb.dev)) != VTSM_OK ||
        vtsm_abi_get_uint(info, VTSM_ABI_K_TDI, &tdi) != VTSM_OK || tdi > UINT32_MAX)
        return vtsm_wrap(VTSM_E_PEER_MALFORMED, "INFO result without dev and tdi");
    nb.tdi = (uint32_t)tdi;
    for (unsigned i = 0; i < BIND_N; i++) {
        const uint8_t *p = NULL;
        bool has = false;
        size_t n = 0;
        if (vtsm_abi_opt_bytes(info, bind_keys[i], &p, &n, &has) != VTSM_OK ||
            n > VTSM_ABI_GUEST_DIGEST_MAX)
            return vtsm_wrap(VTSM_E_PEER_MALFORMED, "INFO result: %s", bind_keys[i]);
        if (has && n) /* absent (no LOCK nonce in force): sent empty, never matches */
            memcpy(nb.d[i], p, n);
        nb.len[i] = has ? n : 0;
    }
    struct guest_binding *b = binding_find(g, nb.dev, nb.tdi);
    if (!b) {
        b = &g->bind[g->bind_next];
        g->bind_next = (g->bind_next + 1) % GUEST_BINDINGS;
    }
    *b = nb;
    return VTSM_OK;
}

vtsm_status vtsm_guest_call_cbor(struct vtsm_guest *g, struct vtsm_host *relay, unsigned gop,
                                 const char *dev, int64_t tdi, const uint8_t *nonce,
                                 const char *reason, cbor_item_t **result)
{
    cbor_item_t *env = NULL, *res = NULL;
    vtsm_status st;

    if (result)
        *result = NULL;
    VTSM_ENSURE(g && relay, VTSM_E_INVAL, "guest call: NULL argument");
    /* An ACCEPT with no INFO of its TDI before it on this handle: INFO now, so the ACCEPT
     * binds what the TSM reports at this moment. If that INFO is refused, the ACCEPT goes
     * with empty digests, for the TSM to give its own refusal (they never match). */
    const struct guest_binding none = {.used = false};
    const struct guest_binding *b = NULL;
    if (gop == VTSM_ABI_GOP_ACCEPT && check_args(gop, dev, tdi, nonce, reason) == VTSM_OK &&
        !binding_find(g, dev, tdi)) {
        vtsm_status ist =
            vtsm_guest_call_cbor(g, relay, VTSM_ABI_GOP_INFO, dev, tdi, NULL, NULL, NULL);
        if (ist != VTSM_OK && ist != VTSM_E_NOT_OWNER && ist != VTSM_E_STATE &&
            ist != VTSM_E_AUTH && ist != VTSM_E_NOT_FOUND)
            return ist; /* no answer at all: the ACCEPT would fare no better */
        if (ist != VTSM_OK)
            b = &none;
    }
    VTSM_GUARD(build(g, gop, dev, tdi, nonce, reason, b, &env));
    st = vtsm_host_guest_relay_cbor(relay, env, &res);
    cbor_decref(&env);
    if (st != VTSM_OK) {
        /* res, if any, is the TSM's ERROR message: the caller may want its fields */
        st = vtsm_refuse(st, vtsm_host_last_error(relay)->rule, "%s",
                         vtsm_host_last_error(relay)->detail);
    } else if ((st = check_echo(res, gop, g->tvm, g->last_seq)) != VTSM_OK) {
        cbor_decref(&res);
    } else if (gop == VTSM_ABI_GOP_INFO &&
               (st = vtsm_guest_remember_info_cbor(g, res)) != VTSM_OK) {
        cbor_decref(&res);
    } else if (gop == VTSM_ABI_GOP_LOCK || gop == VTSM_ABI_GOP_UNLOCK) {
        /* the guest's own LOCK / UNLOCK made a new binding: what INFO showed before is void */
        struct guest_binding *old = binding_find(g, dev, tdi);
        if (old)
            memset(old, 0, sizeof(*old));
    }
    if (result)
        *result = res;
    else if (res)
        cbor_decref(&res);
    return st;
}

vtsm_status vtsm_guest_connect(const char *socket_path, const char *client, struct vtsm_host **out)
{
    struct vtsm_host_config cfg = {
        .socket_path = socket_path,
        .client = client ? client : "vtsm-guest-shim",
        .role = VTSM_ROLE_GUEST,
    };
    return vtsm_host_open_cfg(&cfg, out);
}

/* ---- the public forms: envelopes as struct vtsm_guest_envelope, results as struct
 * vtsm_result ---- */

void vtsm_guest_envelope_clear(struct vtsm_guest_envelope *env)
{
    if (!env)
        return;
    free(env->body);
    memset(env, 0, sizeof(*env));
}

vtsm_status vtsm_guest_envelope_encode(const struct vtsm_guest_envelope *env, uint8_t **out,
                                       size_t *len)
{
    VTSM_ENSURE(env && env->body && out && len, VTSM_E_INVAL, "envelope encode: NULL argument");
    *out = NULL;
    *len = 0;
    struct vtsm_buf frame = {0};
    cbor_item_t *m = vtsm_abi_map_new();
    vtsm_status st = m ? VTSM_OK : vtsm_fail(VTSM_E_NOMEM, "envelope");
    if (st == VTSM_OK)
        st = vtsm_abi_put_uint(m, VTSM_ABI_K_TVM, env->tvm);
    if (st == VTSM_OK)
        st = vtsm_abi_put_bytes(m, VTSM_ABI_K_BODY, env->body, env->body_len);
    if (st == VTSM_OK)
        st = vtsm_abi_put_bytes(m, VTSM_ABI_K_SIG, env->sig, sizeof(env->sig));
    if (st == VTSM_OK)
        st = vtsm_abi_encode(m, &frame);
    if (st == VTSM_OK) {
        *len = frame.len - VTSM_ABI_FRAME_HDR_SIZE;
        *out = malloc(*len);
        if (*out)
            memcpy(*out, frame.data + VTSM_ABI_FRAME_HDR_SIZE, *len);
        else
            st = vtsm_fail(VTSM_E_NOMEM, "envelope");
    }
    if (m)
        cbor_decref(&m);
    vtsm_buf_free(&frame);
    return st;
}

/* The fields of an envelope map {tvm, body, sig} into *env (the map is released). */
static vtsm_status unpack_envelope(vtsm_status st, cbor_item_t *map,
                                   struct vtsm_guest_envelope *env)
{
    const uint8_t *body = NULL, *sig = NULL;
    size_t body_len = 0, sig_len = 0;
    uint64_t tvm = 0;
    if (st == VTSM_OK)
        st = vtsm_abi_get_uint(map, VTSM_ABI_K_TVM, &tvm);
    if (st == VTSM_OK)
        st = vtsm_abi_get_bytes(map, VTSM_ABI_K_BODY, &body, &body_len);
    if (st == VTSM_OK)
        st = vtsm_abi_get_bytes(map, VTSM_ABI_K_SIG, &sig, &sig_len);
    if (st == VTSM_OK && (sig_len != sizeof(env->sig) || tvm > UINT32_MAX))
        st = vtsm_fail(VTSM_E_INTERNAL, "envelope: unexpected signature or tvm");
    if (st == VTSM_OK) {
        env->body = malloc(body_len ? body_len : 1);
        if (!env->body)
            st = vtsm_fail(VTSM_E_NOMEM, "envelope body");
    }
    if (st == VTSM_OK) {
        memcpy(env->body, body, body_len);
        env->body_len = body_len;
        memcpy(env->sig, sig, sizeof(env->sig));
        env->tvm = (uint32_t)tvm;
    }
    if (map)
        cbor_decref(&map);
    return st;
}

vtsm_status vtsm_guest_build(struct vtsm_guest *g, unsigned gop, const char *dev, int64_t tdi,
                             const uint8_t *nonce, const char *reason,
                             struct vtsm_guest_envelope *env)
{
    cbor_item_t *map = NULL;
    VTSM_ENSURE(env, VTSM_E_INVAL, "build: NULL envelope");
    memset(env, 0, sizeof(*env));
    vtsm_status st = vtsm_guest_build_cbor(g, gop, dev, tdi, nonce, reason, &map);
    return unpack_envelope(st, map, env);
}

vtsm_status vtsm_guest_sign(const struct vtsm_guest *g, uint32_t envelope_tvm, const uint8_t *body,
                            size_t len, struct vtsm_guest_envelope *env)
{
    cbor_item_t *map = NULL;
    VTSM_ENSURE(env, VTSM_E_INVAL, "sign: NULL envelope");
    memset(env, 0, sizeof(*env));
    vtsm_status st = vtsm_guest_sign_cbor(g, envelope_tvm, body, len, &map);
    return unpack_envelope(st, map, env);
}

vtsm_status vtsm_guest_remember_info(struct vtsm_guest *g, const struct vtsm_result *info)
{
    size_t len = 0;
    const uint8_t *p = info ? vtsm_result_cbor(info, &len) : NULL;
    cbor_item_t *m = NULL;
    VTSM_ENSURE(g && p, VTSM_E_INVAL, "remember INFO: NULL argument");
    vtsm_status st = vtsm_abi_decode(p, len, &m);
    if (st != VTSM_OK)
        return vtsm_wrap(VTSM_E_PEER_MALFORMED, "INFO result");
    st = vtsm_guest_remember_info_cbor(g, m);
    cbor_decref(&m);
    return st;
}

vtsm_status vtsm_guest_call(struct vtsm_guest *g, struct vtsm_host *relay, unsigned gop,
                            const char *dev, int64_t tdi, const uint8_t *nonce, const char *reason,
                            struct vtsm_result **result)
{
    cbor_item_t *res = NULL;
    if (result)
        *result = NULL;
    vtsm_status st = vtsm_guest_call_cbor(g, relay, gop, dev, tdi, nonce, reason, &res);
    return vtsm_result_take(st, res, result);
}
