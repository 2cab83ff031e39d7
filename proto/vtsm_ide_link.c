/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * IDE TLP protection model (see vtsm_ide_link.h for what is and is not PCIe IDE).
 */
#include "vtsm_ide_link.h"

#include <limits.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "vtsm_buf.h"
#include "vtsm_guard.h"

vtsm_status vtsm_ide_link_iv(uint64_t ifv, uint64_t counter, uint8_t iv[VTSM_IDE_LINK_IV_SIZE])
{
    VTSM_ENSURE(iv != NULL, VTSM_E_INVAL, "IDE link: NULL IV");
    VTSM_ENSURE(counter <= UINT64_MAX - ifv, VTSM_E_INVAL,
                "IDE link: invocation field IFV 0x%016llx + %llu TLPs wraps; refresh the key",
                (unsigned long long)ifv, (unsigned long long)counter);
    uint64_t inv = ifv + counter;
    vtsm_put_be32(iv, 0); /* fixed field */
    vtsm_put_be32(iv + 4, (uint32_t)(inv >> 32));
    vtsm_put_be32(iv + 8, (uint32_t)inv);
    return VTSM_OK;
}

void vtsm_ide_link_aad(uint8_t stream_id, uint8_t substream, uint8_t key_set, size_t len,
                       uint8_t aad[VTSM_IDE_LINK_AAD_SIZE])
{
    aad[0] = stream_id;
    aad[1] = (uint8_t)(((substream & 0xFu) << 4) | (key_set & 1u));
    aad[2] = 0;
    aad[3] = 0;
    vtsm_put_le32(aad + 4, (uint32_t)len);
}

static vtsm_status check_args(const uint8_t *key, uint8_t substream, uint8_t key_set,
                              const uint8_t *in, size_t len, const uint8_t *tag)
{
    VTSM_ENSURE(key != NULL && tag != NULL && (in != NULL || len == 0), VTSM_E_INVAL,
                "IDE link: NULL argument");
    VTSM_ENSURE(substream <= VTSM_IDE_SUBSTREAM_CPL, VTSM_E_INVAL,
                "IDE link: sub-stream %u (PR 0, NPR 1, CPL 2)", substream);
    VTSM_ENSURE(key_set <= 1, VTSM_E_INVAL, "IDE link: key set %u (K0 or K1)", key_set);
    VTSM_ENSURE(len <= VTSM_IDE_LINK_MAX_PAYLOAD, VTSM_E_INVAL,
                "IDE link: payload of %zu bytes exceeds a TLP's %u", len,
                VTSM_IDE_LINK_MAX_PAYLOAD);
    return VTSM_OK;
}

/* AES-256-GCM with a 96-bit tag; enc = 1 seals, 0 opens (tag in, *ok set). */
static vtsm_status gcm(int enc, const uint8_t *key, const uint8_t *iv, const uint8_t *aad,
                       const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag, bool *ok)
{
    vtsm_status st = VTSM_OK;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    uint8_t fin[16];
    int n = 0;

    VTSM_ENSURE(c != NULL, VTSM_E_NOMEM, "IDE link: cipher context");
    VTSM_OSSL_GOTO(EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc));
    VTSM_OSSL_GOTO(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, VTSM_IDE_LINK_IV_SIZE, NULL));
    VTSM_OSSL_GOTO(EVP_CipherInit_ex(c, NULL, NULL, key, iv, enc));
    VTSM_OSSL_GOTO(EVP_CipherUpdate(c, NULL, &n, aad, VTSM_IDE_LINK_AAD_SIZE));
    if (len)
        VTSM_OSSL_GOTO(EVP_CipherUpdate(c, out, &n, in, (int)len));
    if (enc) {
        VTSM_OSSL_GOTO(EVP_CipherFinal_ex(c, fin, &n));
        VTSM_OSSL_GOTO(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, VTSM_IDE_LINK_MAC_SIZE, tag));
    } else {
        VTSM_OSSL_GOTO(
            EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, VTSM_IDE_LINK_MAC_SIZE, (void *)tag));
        *ok = EVP_CipherFinal_ex(c, fin, &n) == 1;
    }
out:
    EVP_CIPHER_CTX_free(c);
    return st;
}

vtsm_status vtsm_ide_link_protect(const uint8_t key[VTSM_IDE_LINK_KEY_SIZE], uint64_t ifv,
                                  uint64_t counter, uint8_t stream_id, uint8_t substream,
                                  uint8_t key_set, const uint8_t *pt, size_t len, uint8_t *out,
                                  uint8_t tag[VTSM_IDE_LINK_MAC_SIZE])
{
    uint8_t iv[VTSM_IDE_LINK_IV_SIZE], aad[VTSM_IDE_LINK_AAD_SIZE];

    VTSM_GUARD(check_args(key, substream, key_set, pt, len, tag));
    VTSM_ENSURE(out != NULL || len == 0, VTSM_E_INVAL, "IDE link: NULL output");
    VTSM_GUARD(vtsm_ide_link_iv(ifv, counter, iv));
    vtsm_ide_link_aad(stream_id, substream, key_set, len, aad);
    return gcm(1, key, iv, aad, pt, len, out, tag, NULL);
}

vtsm_status vtsm_ide_link_check(const uint8_t key[VTSM_IDE_LINK_KEY_SIZE], uint64_t ifv,
                                uint64_t counter, uint8_t stream_id, uint8_t substream,
                                uint8_t key_set, const uint8_t *ct, size_t len,
                                const uint8_t tag[VTSM_IDE_LINK_MAC_SIZE], uint8_t *pt_out)
{
    vtsm_status st;
    uint8_t iv[VTSM_IDE_LINK_IV_SIZE], aad[VTSM_IDE_LINK_AAD_SIZE];
    uint8_t scratch[VTSM_IDE_LINK_MAX_PAYLOAD];
    uint8_t *pt = pt_out ? pt_out : scratch;
    bool ok = false;

    VTSM_GUARD(check_args(key, substream, key_set, ct, len, tag));
    VTSM_GUARD(vtsm_ide_link_iv(ifv, counter, iv));
    vtsm_ide_link_aad(stream_id, substream, key_set, len, aad);
    st = gcm(0, key, iv, aad, ct, len, pt, (uint8_t *)tag, &ok);
    if (st == VTSM_OK && !ok)
        st = vtsm_fail(VTSM_E_PEER_DECRYPT,
                       "IDE link: MAC of stream %u sub-stream %u key set K%u, TLP %llu does not "
                       "verify",
                       stream_id, substream, key_set, (unsigned long long)counter);
    if (st != VTSM_OK || pt == scratch)
        OPENSSL_cleanse(pt, len);
    return st;
}
