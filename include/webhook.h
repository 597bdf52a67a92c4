/*
 * webhook: Standard Webhooks signing (https://www.standardwebhooks.com).
 * A delivery carries three headers:
 *   webhook-id: msg_...            the same on every retry of one message
 *   webhook-timestamp: <unix s>    the time of this attempt
 *   webhook-signature: v1,<base64 HMAC-SHA256(key, id "." timestamp "." body)>
 * where key is the base64-decoded part of the secret "whsec_<base64>".
 *
 * Pure; thread-safe.
 */
#ifndef AQ_WEBHOOK_H
#define AQ_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#define WEBHOOK_KEY_MAX 64
#define WEBHOOK_KEY_MIN 24
#define WEBHOOK_SIGNATURE_LEN 64 /* "v1," + 44 base64 characters, NUL, slack */

/* Decodes a "whsec_..." secret into key (WEBHOOK_KEY_MAX bytes). Returns
 * the key length, or -1 when the secret is malformed or its key is shorter
 * than WEBHOOK_KEY_MIN or longer than WEBHOOK_KEY_MAX bytes. */
int webhook_secret_decode(const char *secret, unsigned char *key);

/* A new random secret, "whsec_" + base64 of 32 bytes. Caller frees. */
char *webhook_secret_generate(void);

/* Writes "v1,<signature>" for one delivery into out[WEBHOOK_SIGNATURE_LEN]. */
void webhook_sign(const unsigned char *key, size_t key_len, const char *msg_id,
                  int64_t timestamp_s, const char *body, size_t body_len, char *out);

#endif
