/*
 * auth: API keys, their scopes and tenants. Keys are kept only as SHA-256
 * digests (a config file may hold just the digest), and a presented key is
 * compared with every configured digest in constant time (CRYPTO_memcmp
 * over fixed-length digests, no early exit), so neither a key's content nor
 * its length leaks through timing.
 *
 * DESIGN
 * - Threads: any thread calls auth_check(); auth_reload() (SIGHUP, main
 *   thread) swaps the key table under a write lock, so keys rotate without
 *   a restart. Nothing else is shared.
 */
#ifndef AQ_AUTH_H
#define AQ_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

enum auth_scope {
    AUTH_SCOPE_READ = 1,     /* GET only */
    AUTH_SCOPE_ENQUEUE = 2,  /* POST /v1/tasks only */
    AUTH_SCOPE_ADMIN = 3,    /* everything */
};

/* Who a request acts as. */
struct principal {
    enum auth_scope scope;
    char tenant[65];   /* "" when the key has no tenant (sees every task) */
    char label[72];    /* the key's label, for logs ("api_key" for plain admin keys) */
};

struct auth;

/* Refuses a key given twice (on two key lines, or as an api_key item and a
 * line, plainly or as its sha256: digest): the first would win, and a
 * secret meant for a read-only tenant line would act as whatever came
 * before it. 0, or -1 with err naming both places. */
int auth_check_config(const struct config *cfg, char *err, size_t err_len);

/* Builds the key table from cfg (api_key and key.<label> lines). Never NULL. */
struct auth *auth_new(const struct config *cfg);
void auth_free(struct auth *a); /* NULL is a no-op */
/* Replaces a's keys with those of cfg. Any thread; takes effect at once. */
void auth_reload(struct auth *a, const struct config *cfg);
/* True when at least one key is configured. */
bool auth_enabled(struct auth *a);
/* Checks the Authorization header value ("Bearer <key>"). On a match (or
 * when no keys are configured: admin, no tenant) fills *p and returns true. */
bool auth_check(struct auth *a, const char *authorization, struct principal *p);
/* "sha256:<64 hex>" of key, for key.<label> lines. out holds 72 bytes. */
void auth_hash_key(const char *key, char out[72]);
const char *auth_scope_name(enum auth_scope s);

#endif
