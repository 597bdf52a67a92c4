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

#define WEBHOOK_KEYS_MAX 8

/* The signing keys in use: the first is current; during a rotation every
 * delivery is signed with each, as Standard Webhooks allows. */
struct webhook_keys {
    int n;
    unsigned char key[WEBHOOK_KEYS_MAX][WEBHOOK_KEY_MAX];
    size_t len[WEBHOOK_KEYS_MAX];
};

/* Decodes n secrets into keys. Returns 0, or -1 with err naming the bad one. */
int webhook_keys_decode(char *const *secrets, size_t n, struct webhook_keys *keys, char *err,
                        size_t err_len);

/* Writes the webhook-signature header value, "v1,<sig>" for each key,
 * space separated, into out (out_len >= WEBHOOK_SIGNATURE_LEN * n). */
void webhook_sign_all(const struct webhook_keys *keys, const char *msg_id, int64_t timestamp_s,
                      const char *body, size_t body_len, char *out, size_t out_len);

/* Writes "v1,<signature>" for one delivery into out[WEBHOOK_SIGNATURE_LEN]. */
void webhook_sign(const unsigned char *key, size_t key_len, const char *msg_id,
                  int64_t timestamp_s, const char *body, size_t body_len, char *out);

#endif
