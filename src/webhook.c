/*
 * webhook: secrets and signatures, with OpenSSL's one-shot HMAC.
 */
#include "webhook.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int webhook_secret_decode(const char *secret, unsigned char *key)
{
    if (strncmp(secret, "whsec_", 6) != 0) return -1;
    const char *b = secret + 6;
    size_t len = strlen(b);
    if (len == 0 || len > 4 * ((WEBHOOK_KEY_MAX + 2) / 3)) return -1;
    unsigned char tmp[4 * ((WEBHOOK_KEY_MAX + 2) / 3)];
    long n = util_base64_decode(b, len, tmp);
    if (n < WEBHOOK_KEY_MIN || n > WEBHOOK_KEY_MAX) return -1;
    memcpy(key, tmp, (size_t)n);
    return (int)n;
}

char *webhook_secret_generate(void)
{
    unsigned char key[32];
    util_random_bytes(key, sizeof key);
    char *b = util_base64_encode(key, sizeof key);
    char *s = xasprintf("whsec_%s", b);
    free(b);
    return s;
}

void webhook_sign(const unsigned char *key, size_t key_len, const char *msg_id,
                  int64_t timestamp_s, const char *body, size_t body_len, char *out)
{
    char *prefix = xasprintf("%s.%lld.", msg_id, (long long)timestamp_s);
    size_t n = strlen(prefix), total = n + body_len;
    unsigned char *msg = xmalloc(total);
    memcpy(msg, prefix, n);
    memcpy(msg + n, body, body_len);
    free(prefix);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), key, (int)key_len, msg, total, mac, &mac_len);
    free(msg);
    char *b = util_base64_encode(mac, mac_len);
    snprintf(out, WEBHOOK_SIGNATURE_LEN, "v1,%s", b);
    free(b);
}

int webhook_keys_decode(char *const *secrets, size_t n, struct webhook_keys *keys, char *err,
                        size_t err_len)
{
    memset(keys, 0, sizeof *keys);
    if (n > WEBHOOK_KEYS_MAX) {
        snprintf(err, err_len, "at most %d webhook secrets at once", WEBHOOK_KEYS_MAX);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        int len = webhook_secret_decode(secrets[i], keys->key[i]);
        if (len < 0) {
            snprintf(err, err_len, "webhook_secret: secret %zu must be whsec_ followed by base64 "
                     "of %d to %d bytes", i + 1, WEBHOOK_KEY_MIN, WEBHOOK_KEY_MAX);
            return -1;
        }
        keys->len[i] = (size_t)len;
        keys->n++;
    }
    return 0;
}

void webhook_sign_all(const struct webhook_keys *keys, const char *msg_id, int64_t timestamp_s,
                      const char *body, size_t body_len, char *out, size_t out_len)
{
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; i < keys->n && o + WEBHOOK_SIGNATURE_LEN < out_len; i++) {
        char sig[WEBHOOK_SIGNATURE_LEN];
        webhook_sign(keys->key[i], keys->len[i], msg_id, timestamp_s, body, body_len, sig);
        o += (size_t)snprintf(out + o, out_len - o, "%s%s", i ? " " : "", sig);
    }
}
