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
    char prefix[128];
    int n = snprintf(prefix, sizeof prefix, "%s.%lld.", msg_id, (long long)timestamp_s);
    size_t total = (size_t)n + body_len;
    unsigned char *msg = xmalloc(total);
    memcpy(msg, prefix, (size_t)n);
    memcpy(msg + n, body, body_len);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), key, (int)key_len, msg, total, mac, &mac_len);
    free(msg);
    char *b = util_base64_encode(mac, mac_len);
    snprintf(out, WEBHOOK_SIGNATURE_LEN, "v1,%s", b);
    free(b);
}
