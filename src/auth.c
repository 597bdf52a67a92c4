/*
 * auth: the key table (digests, scopes, tenants), the constant-time check,
 * and reload.
 */
#include "auth.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

struct key_entry {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    struct principal who;
};

struct auth {
    pthread_rwlock_t lock;   /* guards keys, n */
    struct key_entry *keys;
    size_t n;
};

const char *auth_scope_name(enum auth_scope s)
{
    switch (s) {
    case AUTH_SCOPE_READ: return "read";
    case AUTH_SCOPE_ENQUEUE: return "enqueue";
    case AUTH_SCOPE_ADMIN: return "admin";
    }
    return "none";
}

void auth_hash_key(const char *key, char out[72])
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)key, strlen(key), d);
    memcpy(out, "sha256:", 7);
    util_hex(d, SHA256_DIGEST_LENGTH, out + 7); /* 7 + 64 + NUL = 72 */
}

static unsigned hexval(char c)
{
    return isdigit((unsigned char)c) ? (unsigned)(c - '0') : (unsigned)(tolower((unsigned char)c) - 'a' + 10);
}

static bool is_digest(const char *s)
{
    if (strncmp(s, "sha256:", 7) != 0 || strlen(s) != 7 + 2 * SHA256_DIGEST_LENGTH) return false;
    for (const char *p = s + 7; *p; p++)
        if (!isxdigit((unsigned char)*p)) return false;
    return true;
}

/* The digest of a config value: the key itself, or "sha256:<hex>". */
static void digest_of(const char *secret, unsigned char out[SHA256_DIGEST_LENGTH])
{
    if (is_digest(secret)) {
        for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
            out[i] = (unsigned char)(hexval(secret[7 + 2 * i]) << 4 | hexval(secret[8 + 2 * i]));
        return;
    }
    SHA256((const unsigned char *)secret, strlen(secret), out);
}

static struct key_entry *build(const struct config *cfg, size_t *n_out)
{
    size_t n = cfg->n_api_keys + cfg->n_keys;
    struct key_entry *keys = xcalloc(n ? n : 1, sizeof *keys);
    size_t i = 0;
    for (size_t k = 0; k < cfg->n_api_keys; k++, i++) {
        digest_of(cfg->api_keys[k], keys[i].digest);
        keys[i].who.scope = AUTH_SCOPE_ADMIN;
        snprintf(keys[i].who.label, sizeof keys[i].who.label, "api_key");
    }
    for (size_t k = 0; k < cfg->n_keys; k++, i++) {
        const struct config_api_key *c = &cfg->keys[k];
        digest_of(c->secret, keys[i].digest);
        keys[i].who.scope = !strcmp(c->scope, "read")      ? AUTH_SCOPE_READ
                            : !strcmp(c->scope, "enqueue") ? AUTH_SCOPE_ENQUEUE
                                                           : AUTH_SCOPE_ADMIN;
        snprintf(keys[i].who.tenant, sizeof keys[i].who.tenant, "%s", c->tenant ? c->tenant : "");
        snprintf(keys[i].who.label, sizeof keys[i].who.label, "%.64s", c->label);
    }
    *n_out = n;
    return keys;
}

int auth_check_config(const struct config *cfg, char *err, size_t err_len)
{
    size_t n;
    struct key_entry *keys = build(cfg, &n);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        for (size_t j = i + 1; j < n && !rc; j++) {
            if (memcmp(keys[i].digest, keys[j].digest, sizeof keys[i].digest) != 0) continue;
            char a[96], b[96];
            if (i < cfg->n_api_keys) snprintf(a, sizeof a, "api_key item %zu", i + 1);
            else snprintf(a, sizeof a, "key.%.64s", keys[i].who.label);
            if (j < cfg->n_api_keys) snprintf(b, sizeof b, "api_key item %zu", j + 1);
            else snprintf(b, sizeof b, "key.%.64s", keys[j].who.label);
            snprintf(err, err_len, "the same key is given twice, as %s and as %s (plainly or as its "
                     "sha256: digest); give each key once, on the line with its scope and tenant", a, b);
            rc = -1;
        }
    }
    OPENSSL_cleanse(keys, (n ? n : 1) * sizeof *keys);
    free(keys);
    return rc;
}

struct auth *auth_new(const struct config *cfg)
{
    struct auth *a = xcalloc(1, sizeof *a);
    pthread_rwlock_init(&a->lock, NULL);
    a->keys = build(cfg, &a->n);
    return a;
}

void auth_reload(struct auth *a, const struct config *cfg)
{
    size_t n;
    struct key_entry *keys = build(cfg, &n), *old;
    size_t old_n;
    pthread_rwlock_wrlock(&a->lock);
    old = a->keys;
    old_n = a->n;
    a->keys = keys;
    a->n = n;
    pthread_rwlock_unlock(&a->lock);
    OPENSSL_cleanse(old, (old_n ? old_n : 1) * sizeof *old);
    free(old);
}

void auth_free(struct auth *a)
{
    if (!a) return;
    OPENSSL_cleanse(a->keys, (a->n ? a->n : 1) * sizeof *a->keys);
    free(a->keys);
    pthread_rwlock_destroy(&a->lock);
    free(a);
}

bool auth_enabled(struct auth *a)
{
    pthread_rwlock_rdlock(&a->lock);
    bool on = a->n > 0;
    pthread_rwlock_unlock(&a->lock);
    return on;
}

bool auth_check(struct auth *a, const char *authorization, struct principal *p)
{
    bool ok = false;
    pthread_rwlock_rdlock(&a->lock);
    if (a->n == 0) {
        memset(p, 0, sizeof *p);
        p->scope = AUTH_SCOPE_ADMIN;
        snprintf(p->label, sizeof p->label, "none");
        ok = true;
    } else if (authorization && strncasecmp(authorization, "Bearer ", 7) == 0) {
        const char *key = authorization + 7;
        while (*key == ' ') key++;
        unsigned char d[SHA256_DIGEST_LENGTH];
        SHA256((const unsigned char *)key, strlen(key), d);
        size_t match = 0;
        /* Every digest is compared, match or not: the time does not depend
         * on which key (if any) matched. */
        for (size_t i = 0; i < a->n; i++) {
            bool eq = CRYPTO_memcmp(d, a->keys[i].digest, sizeof d) == 0;
            match = eq && !match ? i + 1 : match;
        }
        if (match) {
            *p = a->keys[match - 1].who;
            ok = true;
        }
    }
    pthread_rwlock_unlock(&a->lock);
    return ok;
}
