/*
 * webhook: secrets and signatures: HMAC-SHA256 (RFC 2104) over OpenSSL's
 * SHA-256, fetched once. OpenSSL 3's one-shot HMAC() looks the MAC and the
 * digest up by name on every call: 35,000 instructions a signature, 5 % of
 * all the daemon spent on a task end to end (callgrind, bench/profile.sh).
 */
#include "webhook.h"

#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
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

#define SHA256_BLOCK 64
#define SHA256_LEN 32

static EVP_MD *sha256;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void crypto_failed(const char *what)
{
    fprintf(stderr, "asyncqueue: %s\n", what);
    abort();
}

static void fetch_sha256(void)
{
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (!sha256) crypto_failed("OpenSSL has no SHA-256");
}

/* HMAC-SHA256 of the concatenation of parts. */
static void hmac_sha256(const unsigned char *key, size_t key_len, const void *const *parts,
                        const size_t *lens, int n_parts, unsigned char mac[SHA256_LEN])
{
    pthread_once(&sha256_once, fetch_sha256);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (!c) crypto_failed("out of memory for a digest context");
    unsigned char k[SHA256_BLOCK] = {0}, pad[SHA256_BLOCK], inner[SHA256_LEN];
    int ok = 1;
    if (key_len > SHA256_BLOCK) /* a key longer than a block is hashed first */
        ok = EVP_DigestInit_ex2(c, sha256, NULL) && EVP_DigestUpdate(c, key, key_len) &&
             EVP_DigestFinal_ex(c, k, NULL);
    else
        memcpy(k, key, key_len);
    for (int i = 0; i < SHA256_BLOCK; i++) pad[i] = k[i] ^ 0x36;
    ok = ok && EVP_DigestInit_ex2(c, sha256, NULL) && EVP_DigestUpdate(c, pad, sizeof pad);
    for (int i = 0; i < n_parts; i++) ok = ok && EVP_DigestUpdate(c, parts[i], lens[i]);
    ok = ok && EVP_DigestFinal_ex(c, inner, NULL);
    for (int i = 0; i < SHA256_BLOCK; i++) pad[i] = k[i] ^ 0x5c;
    ok = ok && EVP_DigestInit_ex2(c, sha256, NULL) && EVP_DigestUpdate(c, pad, sizeof pad) &&
         EVP_DigestUpdate(c, inner, sizeof inner) && EVP_DigestFinal_ex(c, mac, NULL);
    EVP_MD_CTX_free(c);
    OPENSSL_cleanse(k, sizeof k); /* key material off the stack */
    OPENSSL_cleanse(pad, sizeof pad);
    if (!ok) crypto_failed("SHA-256 failed");
}

void webhook_sign(const unsigned char *key, size_t key_len, const char *msg_id,
                  int64_t timestamp_s, const char *body, size_t body_len, char *out)
{
    /* Standard Webhooks signs "<msg_id>.<timestamp>.<body>". */
    char ts[32];
    int ts_len = snprintf(ts, sizeof ts, ".%" PRId64 ".", timestamp_s);
    const void *parts[] = {msg_id, ts, body};
    const size_t lens[] = {strlen(msg_id), (size_t)ts_len, body_len};
    unsigned char mac[SHA256_LEN];
    hmac_sha256(key, key_len, parts, lens, 3, mac);
    char *b = util_base64_encode(mac, sizeof mac);
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
