/*
 * auth: API keys. Keys are kept only as SHA-256 digests, and a presented key
 * is compared with every configured digest in constant time (CRYPTO_memcmp
 * over fixed-length digests, no early exit), so neither a key's content nor
 * its length leaks through timing.
 *
 * Immutable after auth_new(); any thread may call auth_check().
 */
#ifndef AQ_AUTH_H
#define AQ_AUTH_H

#include <stdbool.h>
#include <stddef.h>

struct auth;

/* keys: NULL-terminated list (may be empty or NULL). Never NULL. */
struct auth *auth_new(char *const *keys);
void auth_free(struct auth *a); /* NULL is a no-op */
/* True when at least one key is configured. */
bool auth_enabled(const struct auth *a);
/* True when the Authorization header value ("Bearer <key>") names a
 * configured key, or when no keys are configured. */
bool auth_check(const struct auth *a, const char *authorization);

#endif
