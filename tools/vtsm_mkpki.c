/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vtsm-mkpki: generate the test PKI used by the device emulator, the TSM and the tests.
 *
 *   <out>/p384/, <out>/p256/         root -> intermediate -> device leaf (+ leaf.key)
 *   <out>/rogue-p384/, rogue-p256/   the same shape under an untrusted root
 *   <out>/tsm/                       the TSM identity: self-signed P-384 cert + key
 *   <out>/trust/                     the two trusted roots, one file each
 *   <out>/roots.pem                  the same two roots as one bundle
 *
 * Every key is fresh; CA keys live only in memory. Validity is 2024-01-01 .. 2124-01-01,
 * serials are random. These keys are for testing only.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "vtsm_guard.h"
#include "vtsm_err.h"

#define NOT_BEFORE "20240101000000Z"
#define NOT_AFTER  "21240101000000Z"
#define ORG        "vtsm test PKI"
/* id-DMTF-eku-responder-auth (DSP0274 "Certificate requirements"), 1.3.6.1.4.1.412.274.3 */
#define EKU_SPDM_RESPONDER "1.3.6.1.4.1.412.274.3"

enum role { ROLE_ROOT, ROLE_INTER, ROLE_LEAF, ROLE_IDENTITY };

struct entity {
    EVP_PKEY *key;
    X509 *cert;
};

struct curve {
    const char *dir;   /* output subdirectory suffix */
    const char *group; /* OpenSSL group name */
    const char *label; /* for subject names */
    const EVP_MD *(*md)(void);
};

static void entity_free(struct entity *e)
{
    EVP_PKEY_free(e->key);
    X509_free(e->cert);
    e->key = NULL;
    e->cert = NULL;
}

static vtsm_status gen_key(const char *group, EVP_PKEY **out)
{
    *out = EVP_PKEY_Q_keygen(NULL, NULL, "EC", group);
    VTSM_ENSURE(*out != NULL, VTSM_E_CRYPTO, "EC key generation on %s", group);
    return VTSM_OK;
}

static vtsm_status add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    int ok;

    VTSM_ENSURE(ext != NULL, VTSM_E_CRYPTO, "extension %s = %s", OBJ_nid2sn(nid), value);
    ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    VTSM_ENSURE(ok == 1, VTSM_E_CRYPTO, "X509_add_ext %s", OBJ_nid2sn(nid));
    return VTSM_OK;
}

static vtsm_status set_name(X509_NAME *name, const char *cn)
{
    VTSM_OSSL(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)ORG, -1,
                                         -1, 0));
    VTSM_OSSL(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
                                         -1, 0));
    return VTSM_OK;
}

/* Issue a certificate for subject key `key` named cn; issuer NULL = self-signed. */
static vtsm_status issue(const char *cn, EVP_PKEY *key, const struct entity *issuer,
                         const EVP_MD *md, enum role role, X509 **out)
{
    vtsm_status st = VTSM_OK;
    X509 *x = X509_new();
    BIGNUM *serial = BN_new();
    ASN1_INTEGER *aserial = NULL;
    X509V3_CTX ctx;

    VTSM_ENSURE_GOTO(x != NULL && serial != NULL, VTSM_E_NOMEM, "X509_new");
    VTSM_OSSL_GOTO(X509_set_version(x, X509_VERSION_3));
    /* Random positive 127-bit serial (RFC 5280: at most 20 octets, positive). */
    VTSM_OSSL_GOTO(BN_rand(serial, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY));
    aserial = BN_to_ASN1_INTEGER(serial, NULL);
    VTSM_ENSURE_GOTO(aserial != NULL, VTSM_E_CRYPTO, "BN_to_ASN1_INTEGER");
    VTSM_OSSL_GOTO(X509_set_serialNumber(x, aserial));
    /* UTCTime before 2050, GeneralizedTime after, as RFC 5280 asks. */
    VTSM_OSSL_GOTO(ASN1_TIME_set_string_X509(X509_getm_notBefore(x), NOT_BEFORE));
    VTSM_OSSL_GOTO(ASN1_TIME_set_string_X509(X509_getm_notAfter(x), NOT_AFTER));
    VTSM_GUARD_GOTO(set_name(X509_get_subject_name(x), cn));
    VTSM_OSSL_GOTO(X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer->cert)
                                                  : X509_get_subject_name(x)));
    VTSM_OSSL_GOTO(X509_set_pubkey(x, key));

    X509V3_set_ctx(&ctx, issuer ? issuer->cert : x, x, NULL, NULL, 0);
    switch (role) {
    case ROLE_ROOT:
        VTSM_GUARD_GOTO(add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE"));
        VTSM_GUARD_GOTO(add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign"));
        break;
    case ROLE_INTER:
        VTSM_GUARD_GOTO(add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
        VTSM_GUARD_GOTO(add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign"));
        break;
    case ROLE_LEAF:
        VTSM_GUARD_GOTO(add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE"));
        VTSM_GUARD_GOTO(add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature"));
        VTSM_GUARD_GOTO(add_ext(x, &ctx, NID_ext_key_usage, EKU_SPDM_RESPONDER));
        break;
    case ROLE_IDENTITY:
        VTSM_GUARD_GOTO(add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE"));
        VTSM_GUARD_GOTO(add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature"));
        break;
    }
    VTSM_GUARD_GOTO(add_ext(x, &ctx, NID_subject_key_identifier, "hash"));
    if (issuer != NULL || role == ROLE_ROOT)
        VTSM_GUARD_GOTO(add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always"));
    VTSM_ENSURE_GOTO(X509_sign(x, issuer ? issuer->key : key, md) > 0, VTSM_E_CRYPTO,
                     "X509_sign %s", cn);
    *out = x;
    x = NULL;
out:
    ASN1_INTEGER_free(aserial);
    BN_free(serial);
    X509_free(x);
    return st;
}

/* ---- output ---- */

static vtsm_status mkdir_p(const char *path)
{
    char tmp[4096];
    size_t n = strlen(path);

    VTSM_ENSURE(n > 0 && n < sizeof(tmp), VTSM_E_INVAL, "bad directory %s", path);
    memcpy(tmp, path, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        VTSM_ENSURE(mkdir(tmp, 0755) == 0 || errno == EEXIST, VTSM_E_IO, "mkdir %s: %s", tmp,
                    strerror(errno));
        *p = '/';
    }
    VTSM_ENSURE(mkdir(tmp, 0755) == 0 || errno == EEXIST, VTSM_E_IO, "mkdir %s: %s", tmp,
                strerror(errno));
    return VTSM_OK;
}

/* Open dir/name for writing with the given mode (0600 for keys). */
static vtsm_status open_out(const char *dir, const char *name, mode_t mode, BIO **out)
{
    char path[4096];
    int fd;
    FILE *f;

    VTSM_ENSURE((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) < sizeof(path),
                VTSM_E_INVAL, "path too long");
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    VTSM_ENSURE(fd >= 0, VTSM_E_IO, "open %s: %s", path, strerror(errno));
    (void)fchmod(fd, mode);
    f = fdopen(fd, "wb");
    if (f == NULL) {
        close(fd);
        return vtsm_fail(VTSM_E_IO, "fdopen %s", path);
    }
    *out = BIO_new_fp(f, BIO_CLOSE);
    if (*out == NULL) {
        fclose(f);
        return vtsm_fail(VTSM_E_NOMEM, "BIO_new_fp");
    }
    return VTSM_OK;
}

static vtsm_status write_cert(const char *dir, const char *base, X509 *x)
{
    vtsm_status st = VTSM_OK;
    char name[256];
    BIO *bio = NULL;

    snprintf(name, sizeof(name), "%s.pem", base);
    VTSM_GUARD(open_out(dir, name, 0644, &bio));
    VTSM_OSSL_GOTO(PEM_write_bio_X509(bio, x));
    BIO_free(bio);
    snprintf(name, sizeof(name), "%s.der", base);
    VTSM_GUARD(open_out(dir, name, 0644, &bio));
    VTSM_OSSL_GOTO(i2d_X509_bio(bio, x));
out:
    BIO_free(bio);
    return st;
}

static vtsm_status write_key(const char *dir, const char *name, EVP_PKEY *key)
{
    vtsm_status st = VTSM_OK;
    BIO *bio = NULL;

    VTSM_GUARD(open_out(dir, name, 0600, &bio));
    VTSM_OSSL_GOTO(PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL));
out:
    BIO_free(bio);
    return st;
}

/* A bundle of certificates in one PEM file, in the order given. */
static vtsm_status write_bundle(const char *dir, const char *name, X509 *const *xs, size_t n)
{
    vtsm_status st = VTSM_OK;
    BIO *bio = NULL;

    VTSM_GUARD(open_out(dir, name, 0644, &bio));
    for (size_t i = 0; i < n; i++)
        VTSM_OSSL_GOTO(PEM_write_bio_X509(bio, xs[i]));
out:
    BIO_free(bio);
    return st;
}

/* root -> intermediate -> leaf for one curve into <out>/<prefix><curve->dir>. */
static vtsm_status make_chain(const char *outdir, const char *prefix, const struct curve *cv,
                              bool rogue, X509 **root_out)
{
    vtsm_status st = VTSM_OK;
    struct entity root = {0}, inter = {0}, leaf = {0};
    char dir[4096], cn[128];
    const EVP_MD *md = cv->md();
    X509 *chain[3];

    snprintf(dir, sizeof(dir), "%s/%s%s", outdir, prefix, cv->dir);
    VTSM_GUARD(mkdir_p(dir));
    VTSM_GUARD_GOTO(gen_key(cv->group, &root.key));
    snprintf(cn, sizeof(cn), "vtsm %s root CA (%s)", rogue ? "rogue" : "test", cv->label);
    VTSM_GUARD_GOTO(issue(cn, root.key, NULL, md, ROLE_ROOT, &root.cert));
    VTSM_GUARD_GOTO(gen_key(cv->group, &inter.key));
    snprintf(cn, sizeof(cn), "vtsm %s intermediate CA (%s)", rogue ? "rogue" : "test", cv->label);
    VTSM_GUARD_GOTO(issue(cn, inter.key, &root, md, ROLE_INTER, &inter.cert));
    VTSM_GUARD_GOTO(gen_key(cv->group, &leaf.key));
    VTSM_GUARD_GOTO(issue("vtsm emulated device", leaf.key, &inter, md, ROLE_LEAF, &leaf.cert));

    VTSM_GUARD_GOTO(write_cert(dir, "root", root.cert));
    VTSM_GUARD_GOTO(write_cert(dir, "inter", inter.cert));
    VTSM_GUARD_GOTO(write_cert(dir, "leaf", leaf.cert));
    VTSM_GUARD_GOTO(write_key(dir, "leaf.key", leaf.key));
    chain[0] = root.cert;
    chain[1] = inter.cert;
    chain[2] = leaf.cert;
    VTSM_GUARD_GOTO(write_bundle(dir, "chain.pem", chain, 3));
    if (root_out != NULL) {
        VTSM_OSSL_GOTO(X509_up_ref(root.cert));
        *root_out = root.cert;
    }
out:
    entity_free(&root);
    entity_free(&inter);
    entity_free(&leaf);
    return st;
}

static vtsm_status make_tsm(const char *outdir)
{
    vtsm_status st = VTSM_OK;
    struct entity tsm = {0};
    char dir[4096];

    snprintf(dir, sizeof(dir), "%s/tsm", outdir);
    VTSM_GUARD(mkdir_p(dir));
    VTSM_GUARD_GOTO(gen_key("P-384", &tsm.key));
    VTSM_GUARD_GOTO(issue("vtsm TSM", tsm.key, NULL, EVP_sha384(), ROLE_IDENTITY, &tsm.cert));
    VTSM_GUARD_GOTO(write_cert(dir, "tsm", tsm.cert));
    VTSM_GUARD_GOTO(write_key(dir, "tsm.key", tsm.key));
out:
    entity_free(&tsm);
    return st;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: vtsm-mkpki [-o OUTDIR]\n"
               "Generate the vtsm TEST PKI (device chains for P-384 and P-256, rogue chains,\n"
               "TSM identity) into OUTDIR (default ./pki). Test keys only.\n");
}

int main(int argc, char **argv)
{
    const char *outdir = "pki";
    const struct curve curves[] = {
        {"p384", "P-384", "P-384", EVP_sha384},
        {"p256", "P-256", "P-256", EVP_sha256},
    };
    X509 *roots[2] = {NULL, NULL};
    char trustdir[4096];
    vtsm_status st = VTSM_OK;
    int opt;

    while ((opt = getopt(argc, argv, "o:h")) != -1) {
        switch (opt) {
        case 'o':
            outdir = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    VTSM_GUARD_GOTO(mkdir_p(outdir));
    for (size_t i = 0; i < VTSM_ARRAY_SIZE(curves); i++) {
        VTSM_GUARD_GOTO(make_chain(outdir, "", &curves[i], false, &roots[i]));
        VTSM_GUARD_GOTO(make_chain(outdir, "rogue-", &curves[i], true, NULL));
    }
    snprintf(trustdir, sizeof(trustdir), "%s/trust", outdir);
    VTSM_GUARD_GOTO(mkdir_p(trustdir));
    VTSM_GUARD_GOTO(write_bundle(trustdir, "p384-root.pem", &roots[0], 1));
    VTSM_GUARD_GOTO(write_bundle(trustdir, "p256-root.pem", &roots[1], 1));
    VTSM_GUARD_GOTO(write_bundle(outdir, "roots.pem", roots, 2));
    VTSM_GUARD_GOTO(make_tsm(outdir));
out:
    X509_free(roots[0]);
    X509_free(roots[1]);
    if (st != VTSM_OK) {
        fprintf(stderr, "vtsm-mkpki: %s: %s\n", vtsm_status_name(st), vtsm_err_detail());
        ERR_print_errors_fp(stderr);
        return 1;
    }
    printf("vtsm-mkpki: test PKI written to %s\n", outdir);
    return 0;
}
