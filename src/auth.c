/*
 * auth: digests of configured keys and the constant-time check.
 */
#include "auth.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

struct auth {
    unsigned char (*digests)[SHA256_DIGEST_LENGTH];
    size_t n;
};

struct auth *auth_new(char *const *keys)
{
    struct auth *a = xcalloc(1, sizeof *a);
    for (char *const *k = keys; k && *k; k++) a->n++;
    a->digests = xcalloc(a->n ? a->n : 1, sizeof *a->digests);
    for (size_t i = 0; i < a->n; i++)
        SHA256((const unsigned char *)keys[i], strlen(keys[i]), a->digests[i]);
    return a;
}

void auth_free(struct auth *a)
{
    if (!a) return;
    OPENSSL_cleanse(a->digests, a->n * sizeof *a->digests);
    free(a->digests);
    free(a);
}

bool auth_enabled(const struct auth *a)
{
    return a->n > 0;
}

bool auth_check(const struct auth *a, const char *authorization)
{
    if (a->n == 0) return true;
    if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0) return false;
    const char *key = authorization + 7;
    while (*key == ' ') key++;
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)key, strlen(key), d);
    int match = 0;
    for (size_t i = 0; i < a->n; i++) match |= CRYPTO_memcmp(d, a->digests[i], sizeof d) == 0;
    return match != 0;
}
