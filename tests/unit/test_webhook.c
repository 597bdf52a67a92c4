/*
 * test_webhook: Standard Webhooks signatures against published and
 * independently computed vectors, secret decoding, and generated secrets.
 */
#include "testutil.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "util.h"
#include "webhook.h"

/* The Standard Webhooks test vector (the spec's reference libraries use it;
 * checked against the npm package standardwebhooks 1.0.0:
 * new Webhook(secret).sign(id, new Date(ts * 1000), body)). */
#define SW_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SW_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define SW_TS 1614265330
#define SW_BODY "{\"test\": 2432232314}"
#define SW_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

static void sign_matches_the_standard_webhooks_vector(void **state)
{
    (void)state;
    unsigned char key[WEBHOOK_KEY_MAX];
    int n = webhook_secret_decode(SW_SECRET, key);
    assert_int_equal(n, 24);
    char sig[WEBHOOK_SIGNATURE_LEN];
    webhook_sign(key, (size_t)n, SW_ID, SW_TS, SW_BODY, strlen(SW_BODY), sig);
    assert_string_equal(sig, SW_SIG);
}

/* The HMAC is computed here (webhook.c), not by OpenSSL's HMAC(): keys of a
 * whole block (64 bytes, the longest a secret decodes to) and longer (hashed
 * first, RFC 2104) against Python's hmac module. */
static void sign_handles_keys_of_a_block_and_longer(void **state)
{
    (void)state;
    unsigned char key[131];
    char sig[WEBHOOK_SIGNATURE_LEN];
    memset(key, 0x0b, 64);
    webhook_sign(key, 64, "msg_x", 1700000000, "{}", 2, sig);
    assert_string_equal(sig, "v1,LITcgrAVU+lT3ti4KOURhWo93ImLjumJSrAisdl8WeA=");
    memset(key, 0xaa, sizeof key);
    webhook_sign(key, sizeof key, "msg_x", 1700000000, "{}", 2, sig);
    assert_string_equal(sig, "v1,vcJXuWubQPim5yqXCbpxyAtF+iKxMirRyrKOEkjWYJE=");
}

static void sign_matches_the_reference_library_on_utf8_and_empty_bodies(void **state)
{
    (void)state;
    /* Key bytes i*7+1; signatures from the npm package standardwebhooks. */
    unsigned char key[WEBHOOK_KEY_MAX];
    int n = webhook_secret_decode("whsec_AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09o=", key);
    assert_int_equal(n, 32);
    for (int i = 0; i < 32; i++)
        assert_int_equal(key[i], (unsigned char)(i * 7 + 1));
    const char *body =
        "{\"taskId\":\"01a221b7-4f1f-707d-9c40-a269a508bd38\",\"status\":\"completed\","
        "\"note\":\"caf\xc3\xa9 \xe2\x98\x83\"}";
    char sig[WEBHOOK_SIGNATURE_LEN];
    webhook_sign(key, 32, "msg_01a221b7-4f3e-73f3-b4b2-21ffbf31a32d", 1795861991, body,
                 strlen(body), sig);
    assert_string_equal(sig, "v1,kuych+yNHNg/iA0fmISaU+aJBV+GNztlrGQuRtPXiag=");
    webhook_sign(key, 32, "msg_x", 1614265330, "", 0, sig);
    assert_string_equal(sig, "v1,KYnf7IBRlAZSwXcWVS+FuNWq76pamP2LhIYKOhFfPng=");
}

/* HMAC-SHA256 over "id.ts.body" computed here with OpenSSL HMAC()
 * and EVP_EncodeBlock, as an oracle for arbitrary inputs. */
static void oracle(const unsigned char *key, size_t key_len, const char *id, long long ts,
                   const char *body, size_t body_len, char *out, size_t out_len)
{
    char *prefix = xasprintf("%s.%lld.", id, ts);
    size_t plen = strlen(prefix);
    unsigned char *msg = malloc(plen + body_len + 1);
    assert_non_null(msg);
    memcpy(msg, prefix, plen);
    if (body_len) memcpy(msg + plen, body, body_len);
    unsigned char mac[32];
    unsigned int mac_len = 0;
    assert_non_null(HMAC(EVP_sha256(), key, (int)key_len, msg, plen + body_len, mac, &mac_len));
    assert_int_equal(mac_len, 32);
    unsigned char b64[48];
    assert_int_equal(EVP_EncodeBlock(b64, mac, 32), 44);
    assert_true(out_len >= 3 + 44 + 1);
    memcpy(out, "v1,", 3);
    memcpy(out + 3, b64, 45);
    free(msg);
    free(prefix);
}

static void sign_covers_exactly_body_len_bytes(void **state)
{
    (void)state;
    unsigned char key[24];
    memset(key, 0x42, sizeof key);
    char got[WEBHOOK_SIGNATURE_LEN], want[WEBHOOK_SIGNATURE_LEN];
    /* Binary bodies with NULs are signed in full. */
    const char bin[] = {'a', '\0', 'b', '\xff', '\0'};
    webhook_sign(key, sizeof key, "msg_1", 1, bin, sizeof bin, got);
    oracle(key, sizeof key, "msg_1", 1, bin, sizeof bin, want, sizeof want);
    assert_string_equal(got, want);
    /* And only body_len bytes of a longer buffer. */
    webhook_sign(key, sizeof key, "msg_1", 1, "abcdef", 3, got);
    oracle(key, sizeof key, "msg_1", 1, "abc", 3, want, sizeof want);
    assert_string_equal(got, want);
    char other[WEBHOOK_SIGNATURE_LEN];
    webhook_sign(key, sizeof key, "msg_1", 1, "abcdef", 6, other);
    assert_string_not_equal(got, other);
}

static void sign_changes_with_every_input(void **state)
{
    (void)state;
    unsigned char key[32], key2[32];
    memset(key, 1, sizeof key);
    memcpy(key2, key, sizeof key);
    key2[31] ^= 1;
    char base[WEBHOOK_SIGNATURE_LEN], sig[WEBHOOK_SIGNATURE_LEN];
    webhook_sign(key, 32, "msg_a", 1000, "{}", 2, base);
    assert_int_equal(strlen(base), 3 + 44);
    assert_memory_equal(base, "v1,", 3);
    webhook_sign(key2, 32, "msg_a", 1000, "{}", 2, sig);
    assert_string_not_equal(base, sig);
    webhook_sign(key, 32, "msg_b", 1000, "{}", 2, sig);
    assert_string_not_equal(base, sig);
    webhook_sign(key, 32, "msg_a", 1001, "{}", 2, sig);
    assert_string_not_equal(base, sig);
    webhook_sign(key, 32, "msg_a", 1000, "[]", 2, sig);
    assert_string_not_equal(base, sig);
    /* The timestamp is in decimal seconds, including large ones. */
    webhook_sign(key, 32, "msg_a", 32503680000LL, "{}", 2, sig);
    char want[WEBHOOK_SIGNATURE_LEN];
    oracle(key, 32, "msg_a", 32503680000LL, "{}", 2, want, sizeof want);
    assert_string_equal(sig, want);
}

/* ---- secrets ---- */

static char *secret_of(size_t n_bytes)
{
    unsigned char raw[128];
    for (size_t i = 0; i < n_bytes; i++)
        raw[i] = (unsigned char)(0xa0 + i);
    char *b = util_base64_encode(raw, n_bytes);
    char *s = xasprintf("whsec_%s", b);
    free(b);
    return s;
}

static void decode_accepts_24_to_64_byte_keys(void **state)
{
    (void)state;
    for (size_t n = WEBHOOK_KEY_MIN; n <= WEBHOOK_KEY_MAX; n++) {
        char *s = secret_of(n);
        unsigned char key[WEBHOOK_KEY_MAX];
        int got = webhook_secret_decode(s, key);
        if (got != (int)n) fail_msg("%zu-byte key: decode gave %d", n, got);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(key[i], (unsigned char)(0xa0 + i));
        free(s);
    }
}

static void decode_refuses_short_and_long_keys(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 16, 23, 65, 66, 96};
    for (size_t i = 0; i < ARRAY_LEN(sizes); i++) {
        char *s = secret_of(sizes[i]);
        unsigned char key[WEBHOOK_KEY_MAX];
        memset(key, 0x77, sizeof key);
        if (webhook_secret_decode(s, key) != -1) fail_msg("%zu-byte key accepted", sizes[i]);
        for (size_t k = 0; k < sizeof key; k++)
            assert_int_equal(key[k], 0x77); /* untouched */
        free(s);
    }
}

static void decode_refuses_malformed_secrets(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "whsec_",
        "whsec",
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",       /* no prefix */
        "WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", /* prefix is case-sensitive */
        "whsec-MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",  /* length not a multiple of 4 */
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2La!aSw", /* not base64 */
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2La aSw",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n",
        " whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_MfKQ9r8GKYqrTwjU=D8ILPZIo2LaLaSw", /* padding in the middle */
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa-_", /* URL-safe alphabet */
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        unsigned char key[WEBHOOK_KEY_MAX];
        if (webhook_secret_decode(bad[i], key) != -1) fail_msg("'%s' accepted", bad[i]);
    }
    /* Far longer than any key: refused before decoding into the stack. */
    char *huge = malloc(10007);
    assert_non_null(huge);
    memcpy(huge, "whsec_", 6);
    memset(huge + 6, 'A', 10000);
    huge[10006] = '\0';
    unsigned char key[WEBHOOK_KEY_MAX];
    assert_int_equal(webhook_secret_decode(huge, key), -1);
    free(huge);
}

static void generate_makes_distinct_decodable_32_byte_keys(void **state)
{
    (void)state;
    char *a = webhook_secret_generate();
    char *b = webhook_secret_generate();
    assert_int_equal(strncmp(a, "whsec_", 6), 0);
    assert_int_equal(strlen(a), 6 + 44);
    assert_string_not_equal(a, b);
    unsigned char ka[WEBHOOK_KEY_MAX], kb[WEBHOOK_KEY_MAX];
    assert_int_equal(webhook_secret_decode(a, ka), 32);
    assert_int_equal(webhook_secret_decode(b, kb), 32);
    assert_memory_not_equal(ka, kb, 32);
    /* A generated secret signs like any other. */
    char sig[WEBHOOK_SIGNATURE_LEN], want[WEBHOOK_SIGNATURE_LEN];
    webhook_sign(ka, 32, "msg_g", 5, "x", 1, sig);
    oracle(ka, 32, "msg_g", 5, "x", 1, want, sizeof want);
    assert_string_equal(sig, want);
    free(a);
    free(b);
}

/* webhook_sign formats "id.ts." into char prefix[128] and then copies n
 * bytes, n being snprintf's untruncated length: an id longer than about 100
 * characters reads past prefix (ASan: stack-buffer-overflow) and signs
 * garbage. webhook.h sets no limit on msg_id. */
static void long_message_id_is_signed_correctly(void **state)
{
    (void)state;
    unsigned char key[32];
    memset(key, 3, sizeof key);
    char id[201];
    memset(id, 'm', 200);
    id[200] = '\0';
    char sig[WEBHOOK_SIGNATURE_LEN], want[WEBHOOK_SIGNATURE_LEN];
    webhook_sign(key, 32, id, 1614265330, "{}", 2, sig);
    oracle(key, 32, id, 1614265330, "{}", 2, want, sizeof want);
    assert_string_equal(sig, want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sign_matches_the_standard_webhooks_vector),
        cmocka_unit_test(sign_matches_the_reference_library_on_utf8_and_empty_bodies),
        cmocka_unit_test(sign_covers_exactly_body_len_bytes),
        cmocka_unit_test(sign_changes_with_every_input),
        cmocka_unit_test(decode_accepts_24_to_64_byte_keys),
        cmocka_unit_test(decode_refuses_short_and_long_keys),
        cmocka_unit_test(decode_refuses_malformed_secrets),
        cmocka_unit_test(generate_makes_distinct_decodable_32_byte_keys),
        cmocka_unit_test(long_message_id_is_signed_correctly),
        cmocka_unit_test(sign_handles_keys_of_a_block_and_longer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
