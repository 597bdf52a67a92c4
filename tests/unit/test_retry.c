/*
 * test_retry: the verdict for every kind of outcome, the backoff arithmetic
 * (exact without jitter, bounded with a fixed random seam), Retry-After
 * parsing and the webhook schedule.
 */
#include "testutil.h"

#include "retry.h"
#include "util.h"

#define NOW 1795860742123LL /* 2026-11-28T10:12:22.123Z */

static const struct retry_policy exact = {.base_ms = 1000, .cap_ms = 3600000, .jitter = false};

static struct retry_outcome http(int status, int attempts, int max_retries)
{
    struct retry_outcome o = {.transport = RETRY_TRANSPORT_OK,
                              .http_status = status,
                              .retry_after_ms = -1,
                              .attempts = attempts,
                              .max_retries = max_retries};
    return o;
}

static struct retry_outcome transport(enum retry_transport t, int attempts, int max_retries)
{
    struct retry_outcome o = {
        .transport = t, .retry_after_ms = -1, .attempts = attempts, .max_retries = max_retries};
    return o;
}

static struct retry_decision decide(const struct retry_outcome *o, const struct retry_policy *p)
{
    struct retry_decision d;
    memset(&d, 0x5a, sizeof d);
    d.message[sizeof d.message - 1] = '\0';
    retry_decide(o, p, &d);
    return d;
}

/* ---- verdicts ---- */

static void status_2xx_completes(void **state)
{
    (void)state;
    static const int codes[] = {200, 201, 202, 204, 206, 299};
    for (size_t i = 0; i < ARRAY_LEN(codes); i++) {
        struct retry_outcome o = http(codes[i], 1, 3);
        struct retry_decision d = decide(&o, &exact);
        assert_int_equal(d.verdict, RETRY_DONE);
        assert_null(d.error_code);
        assert_int_equal(d.delay_ms, 0);
    }
    /* Even on the last attempt, and even when the target says "final". */
    struct retry_outcome o = http(200, 9, 3);
    o.target_final = true;
    assert_int_equal(decide(&o, &exact).verdict, RETRY_DONE);
}

static void status_3xx_gives_up_and_says_redirect(void **state)
{
    (void)state;
    static const int codes[] = {301, 302, 303, 307, 308};
    for (size_t i = 0; i < ARRAY_LEN(codes); i++) {
        struct retry_outcome o = http(codes[i], 1, 3);
        struct retry_decision d = decide(&o, &exact);
        assert_int_equal(d.verdict, RETRY_GIVE_UP);
        assert_string_equal(d.error_code, "http_error");
        assert_non_null(strstr(d.message, "redirect"));
    }
    /* The 3xx that do not redirect are not called redirects. */
    static const int others[] = {300, 304, 305, 306};
    for (size_t i = 0; i < ARRAY_LEN(others); i++) {
        struct retry_outcome o = http(others[i], 1, 3);
        struct retry_decision d = decide(&o, &exact);
        assert_int_equal(d.verdict, RETRY_GIVE_UP);
        assert_null(strstr(d.message, "redirect"));
    }
}

/* With followRedirects, a 3xx that ends the call was past max_redirects (or
 * had no Location): the same chain would end the same way. */
static void a_redirect_chain_too_long_is_final_and_says_so(void **state)
{
    (void)state;
    struct retry_outcome o = http(302, 1, 3);
    o.redirects = 5;
    struct retry_decision d = decide(&o, &exact);
    assert_int_equal(d.verdict, RETRY_GIVE_UP);
    assert_non_null(strstr(d.message, "max_redirects (5)"));
    assert_null(strstr(d.message, "unless the task sets followRedirects"));
    o.redirects = 0;
    d = decide(&o, &exact);
    assert_non_null(strstr(d.message, "unless the task sets followRedirects"));
    /* The task asked, and the daemon follows none: it says so. */
    o.follow_asked = true;
    d = decide(&o, &exact);
    assert_non_null(strstr(d.message, "max_redirects is 0"));
    assert_null(strstr(d.message, "unless the task sets followRedirects"));
    /* A PUT's 301 left unfollowed, as it would come back without its body. */
    o = http(301, 1, 3);
    o.redirects = 5;
    o.redirect_drops_body = true;
    d = decide(&o, &exact);
    assert_int_equal(d.verdict, RETRY_GIVE_UP);
    assert_non_null(strstr(d.message, "without its body"));
}

/* A body past max_response_bytes still came with a status: 5xx, 408, 425
 * and 429 are retried (with their Retry-After), the rest final. */
static void an_oversized_answer_is_judged_by_its_status(void **state)
{
    (void)state;
    struct retry_outcome o = transport(RETRY_TRANSPORT_TOO_LARGE, 1, 3);
    o.http_status = 503;
    o.retry_after_ms = 7000;
    struct retry_decision d = decide(&o, &exact);
    assert_int_equal(d.verdict, RETRY_AGAIN);
    assert_int_equal(d.delay_ms, 7000);
    assert_string_equal(d.error_code, "response_too_large");
    assert_non_null(strstr(d.message, "(status 503)"));
    o.http_status = 200;
    o.retry_after_ms = -1;
    assert_int_equal(decide(&o, &exact).verdict, RETRY_GIVE_UP);
}

/* A status outside 100-599 is no client error: said as it is. */
static void a_status_past_599_is_final_and_not_called_a_client_error(void **state)
{
    (void)state;
    struct retry_outcome o = http(600, 1, 3);
    struct retry_decision d = decide(&o, &exact);
    assert_int_equal(d.verdict, RETRY_GIVE_UP);
    assert_null(strstr(d.message, "client error"));
    assert_non_null(strstr(d.message, "600"));
}

static void status_4xx_gives_up_except_408_425_429(void **state)
{
    (void)state;
    static const int codes[] = {400, 401, 403, 404, 405, 409, 410, 413, 422, 426, 451, 499};
    for (size_t i = 0; i < ARRAY_LEN(codes); i++) {
        struct retry_outcome o = http(codes[i], 1, 3);
        struct retry_decision d = decide(&o, &exact);
        if (d.verdict != RETRY_GIVE_UP) fail_msg("%d retried", codes[i]);
        assert_string_equal(d.error_code, "http_error");
        char num[8];
        snprintf(num, sizeof num, "%d", codes[i]);
        assert_non_null(strstr(d.message, num));
        assert_int_equal(d.delay_ms, 0);
    }
}

static void status_408_425_429_and_5xx_are_retried(void **state)
{
    (void)state;
    static const int codes[] = {408, 425, 429, 500, 501, 502, 503, 504, 507, 599};
    for (size_t i = 0; i < ARRAY_LEN(codes); i++) {
        struct retry_outcome o = http(codes[i], 1, 3);
        struct retry_decision d = decide(&o, &exact);
        if (d.verdict != RETRY_AGAIN) fail_msg("%d not retried", codes[i]);
        assert_string_equal(d.error_code, "http_error");
        assert_int_equal(d.delay_ms, 1000);
        assert_true(retry_status_retryable(codes[i]));
    }
    static const int not_retryable[] = {0,   100, 200, 302, 404, 407, 409,
                                        426, 428, 430, 499, 600, 999, -1};
    for (size_t i = 0; i < ARRAY_LEN(not_retryable); i++)
        if (retry_status_retryable(not_retryable[i])) fail_msg("%d retryable", not_retryable[i]);
}

static void status_outside_2xx_to_5xx_gives_up(void **state)
{
    (void)state;
    static const int codes[] = {100, 199, 600, 999};
    for (size_t i = 0; i < ARRAY_LEN(codes); i++) {
        struct retry_outcome o = http(codes[i], 1, 3);
        struct retry_decision d = decide(&o, &exact);
        if (d.verdict != RETRY_GIVE_UP) fail_msg("%d: verdict %d", codes[i], d.verdict);
        assert_string_equal(d.error_code, "http_error");
    }
}

static void transport_kinds(void **state)
{
    (void)state;
    static const struct {
        enum retry_transport t;
        const char *code;
        enum retry_verdict verdict;
    } cases[] = {
        {RETRY_TRANSPORT_TIMEOUT, "timeout", RETRY_AGAIN},
        {RETRY_TRANSPORT_DNS, "dns_failed", RETRY_AGAIN},
        {RETRY_TRANSPORT_CONNECT, "connection_failed", RETRY_AGAIN},
        {RETRY_TRANSPORT_TLS, "tls_failed", RETRY_AGAIN},
        {RETRY_TRANSPORT_OTHER, "transport_error", RETRY_AGAIN},
        {RETRY_TRANSPORT_BLOCKED, "blocked_destination", RETRY_GIVE_UP},
        {RETRY_TRANSPORT_TOO_LARGE, "response_too_large", RETRY_GIVE_UP}, /* with a 200 */
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        struct retry_outcome o = transport(cases[i].t, 1, 5);
        o.http_status = 200; /* ignored alongside a failure; a too-large 200 is final */
        struct retry_decision d = decide(&o, &exact);
        if (d.verdict != cases[i].verdict) fail_msg("%s: verdict %d", cases[i].code, d.verdict);
        assert_string_equal(d.error_code, cases[i].code);
        assert_int_equal(d.delay_ms, cases[i].verdict == RETRY_AGAIN ? 1000 : 0);
        /* Without libcurl's text the message is the code. */
        assert_non_null(strstr(d.message, cases[i].code));
        o.transport_detail = "Operation timed out after 5000 milliseconds";
        d = decide(&o, &exact);
        assert_non_null(strstr(d.message, "Operation timed out after 5000 milliseconds"));
    }
}

static void target_final_stops_retries(void **state)
{
    (void)state;
    struct retry_outcome o = http(503, 1, 10);
    o.target_final = true;
    struct retry_decision d = decide(&o, &exact);
    assert_int_equal(d.verdict, RETRY_GIVE_UP);
    assert_string_equal(d.error_code, "http_error");
    assert_non_null(strstr(d.message, "no retry"));
    o = transport(RETRY_TRANSPORT_TIMEOUT, 1, 10);
    o.target_final = true;
    assert_int_equal(decide(&o, &exact).verdict, RETRY_GIVE_UP);
}

static void attempts_count_against_max_retries(void **state)
{
    (void)state;
    /* max_retries 3: attempts 1, 2 and 3 are followed by a retry; the 4th is the last. */
    for (int attempts = 1; attempts <= 3; attempts++) {
        struct retry_outcome o = http(500, attempts, 3);
        struct retry_decision d = decide(&o, &exact);
        if (d.verdict != RETRY_AGAIN) fail_msg("attempt %d not retried", attempts);
    }
    struct retry_outcome o = http(500, 4, 3);
    struct retry_decision d = decide(&o, &exact);
    assert_int_equal(d.verdict, RETRY_GIVE_UP);
    assert_string_equal(d.error_code, "http_error");
    assert_non_null(strstr(d.message, "gave up after 4 attempts"));
    assert_int_equal(d.delay_ms, 0);
    /* No retries at all. */
    o = transport(RETRY_TRANSPORT_CONNECT, 1, 0);
    d = decide(&o, &exact);
    assert_int_equal(d.verdict, RETRY_GIVE_UP);
    assert_string_equal(d.error_code, "connection_failed");
    assert_non_null(strstr(d.message, "gave up after 1 attempt"));
    assert_null(strstr(d.message, "1 attempts"));
}

static void retry_after_replaces_backoff(void **state)
{
    (void)state;
    struct retry_outcome o = http(429, 3, 5);
    o.retry_after_ms = 7000;
    struct retry_decision d = decide(&o, &exact);
    assert_int_equal(d.verdict, RETRY_AGAIN);
    assert_int_equal(d.delay_ms, 7000);
    o.retry_after_ms = 0;
    assert_int_equal(decide(&o, &exact).delay_ms, 0);
    o.retry_after_ms = -1;
    assert_int_equal(decide(&o, &exact).delay_ms, 4000); /* backoff for retry 3 */
    /* Retry-After does not make a non-retryable answer retryable. */
    o = http(404, 1, 5);
    o.retry_after_ms = 1000;
    assert_int_equal(decide(&o, &exact).verdict, RETRY_GIVE_UP);
    o = http(503, 6, 5);
    o.retry_after_ms = 1000;
    assert_int_equal(decide(&o, &exact).verdict, RETRY_GIVE_UP);
}

/* ---- backoff ---- */

static void backoff_doubles_exactly_without_jitter(void **state)
{
    (void)state;
    int64_t want = 1000;
    for (int retry = 1; retry <= 12; retry++) {
        assert_int_equal(retry_backoff_ms(retry, &exact), want);
        want *= 2;
    }
    /* 1000 * 2^12 = 4096000 is past the 1 h cap. */
    assert_int_equal(retry_backoff_ms(13, &exact), 3600000);
    assert_int_equal(retry_backoff_ms(100, &exact), 3600000);
    assert_int_equal(retry_backoff_ms(INT32_MAX, &exact), 3600000);
}

static void backoff_cap_applies_mid_doubling(void **state)
{
    (void)state;
    struct retry_policy p = {.base_ms = 1500, .cap_ms = 5000, .jitter = false};
    assert_int_equal(retry_backoff_ms(1, &p), 1500);
    assert_int_equal(retry_backoff_ms(2, &p), 3000);
    assert_int_equal(retry_backoff_ms(3, &p), 5000);
    assert_int_equal(retry_backoff_ms(4, &p), 5000);
    p.base_ms = p.cap_ms = 60000;
    assert_int_equal(retry_backoff_ms(1, &p), 60000);
    assert_int_equal(retry_backoff_ms(50, &p), 60000);
    /* The largest configurable values do not overflow. */
    p.base_ms = 86400000;
    p.cap_ms = 7 * 86400000LL;
    assert_int_equal(retry_backoff_ms(1000, &p), 7 * 86400000LL);
}

static uint64_t last_bound;
static uint64_t fixed_value;
static uint64_t fake_below_top(uint64_t bound)
{
    last_bound = bound;
    return bound - 1;
}
static uint64_t fake_below_zero(uint64_t bound)
{
    last_bound = bound;
    return 0;
}
static uint64_t fake_below_fixed(uint64_t bound)
{
    last_bound = bound;
    return fixed_value < bound ? fixed_value : bound - 1;
}

static void backoff_jitter_draws_from_zero_to_the_bound(void **state)
{
    (void)state;
    struct retry_policy p = {
        .base_ms = 1000, .cap_ms = 3600000, .jitter = true, .random_below = fake_below_top};
    int64_t bound = 1000;
    for (int retry = 1; retry <= 14; retry++) {
        last_bound = 0;
        int64_t d = retry_backoff_ms(retry, &p);
        assert_int_equal(d, bound);                        /* the top of the range is the bound */
        assert_int_equal(last_bound, (uint64_t)bound + 1); /* [0, bound] inclusive */
        bound = bound * 2 > 3600000 ? 3600000 : bound * 2;
    }
    p.random_below = fake_below_zero;
    assert_int_equal(retry_backoff_ms(5, &p), 0);
    assert_int_equal(last_bound, 16001);
    p.random_below = fake_below_fixed;
    fixed_value = 1234;
    assert_int_equal(retry_backoff_ms(3, &p), 1234);
}

static void backoff_jitter_with_real_randomness_stays_in_bounds(void **state)
{
    (void)state;
    struct retry_policy p = {
        .base_ms = 100, .cap_ms = 1000, .jitter = true, .random_below = util_random_below};
    for (int retry = 1; retry <= 6; retry++) {
        int64_t bound = 100LL << (retry - 1);
        if (bound > 1000) bound = 1000;
        for (int k = 0; k < 200; k++) {
            int64_t d = retry_backoff_ms(retry, &p);
            assert_in_range(d, 0, bound);
        }
    }
}

static void decide_uses_the_jittered_backoff(void **state)
{
    (void)state;
    struct retry_policy p = {
        .base_ms = 1000, .cap_ms = 3600000, .jitter = true, .random_below = fake_below_fixed};
    fixed_value = 777;
    struct retry_outcome o = http(502, 4, 10);
    last_bound = 0;
    struct retry_decision d = decide(&o, &p);
    assert_int_equal(d.verdict, RETRY_AGAIN);
    assert_int_equal(d.delay_ms, 777);
    assert_int_equal(last_bound, 8001); /* retry 4: bound 8000 */
}

/* ---- Retry-After ---- */

static void retry_after_seconds(void **state)
{
    (void)state;
    assert_int_equal(retry_parse_retry_after("120", NOW), 120000);
    assert_int_equal(retry_parse_retry_after("0", NOW), 0);
    assert_int_equal(retry_parse_retry_after("  30  ", NOW), 30000);
    assert_int_equal(retry_parse_retry_after("86400", NOW), RETRY_AFTER_MAX_MS);
    assert_int_equal(retry_parse_retry_after("86401", NOW), RETRY_AFTER_MAX_MS);
    assert_int_equal(retry_parse_retry_after("4294967296", NOW), RETRY_AFTER_MAX_MS);
    assert_int_equal(retry_parse_retry_after("99999999999999999999999999", NOW),
                     RETRY_AFTER_MAX_MS);
}

static void retry_after_http_dates(void **state)
{
    (void)state;
    /* 30 s after 10:12:22.123 is 10:12:52.123; the date has whole seconds. */
    assert_int_equal(retry_parse_retry_after("Sat, 28 Nov 2026 10:12:52 GMT", NOW), 29877);
    assert_int_equal(retry_parse_retry_after("Sat, 28 Nov 2026 10:12:22 GMT", NOW), 0);
    assert_int_equal(retry_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", NOW), 0);
    assert_int_equal(retry_parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", NOW), 0);
    assert_int_equal(retry_parse_retry_after("Sun, 29 Nov 2026 10:12:21 GMT", NOW), 86398877);
    assert_int_equal(retry_parse_retry_after("Sun, 29 Nov 2026 10:12:23 GMT", NOW),
                     RETRY_AFTER_MAX_MS);
    assert_int_equal(retry_parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", NOW),
                     RETRY_AFTER_MAX_MS);
}

static void retry_after_garbage(void **state)
{
    (void)state;
    static const char *const bad[] = {"",      "   ", "garbage", "soon", "1.5",    "-5",
                                      "12abc", "1 2", "0x10",    "+5",   "Sunday", "\t"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        int64_t v = retry_parse_retry_after(bad[i], NOW);
        if (v != -1) fail_msg("'%s' gave %lld", bad[i], (long long)v);
    }
}

/* ---- webhook schedule ---- */

static void webhook_schedule_steps_then_ends(void **state)
{
    (void)state;
    static const int64_t schedule[] = {5000, 300000, 1800000};
    assert_int_equal(retry_webhook_delay_ms(1, schedule, 3), 5000);
    assert_int_equal(retry_webhook_delay_ms(2, schedule, 3), 300000);
    assert_int_equal(retry_webhook_delay_ms(3, schedule, 3), 1800000);
    assert_int_equal(retry_webhook_delay_ms(4, schedule, 3), -1);
    assert_int_equal(retry_webhook_delay_ms(1000, schedule, 3), -1);
    assert_int_equal(retry_webhook_delay_ms(0, schedule, 3), -1);
    assert_int_equal(retry_webhook_delay_ms(-1, schedule, 3), -1);
    assert_int_equal(retry_webhook_delay_ms(1, schedule, 0), -1);
}

static void webhook_default_schedule_gives_eight_deliveries(void **state)
{
    (void)state;
    struct config cfg;
    tu_config_defaults(&cfg);
    int attempts = 1; /* the first delivery */
    int64_t total = 0, d;
    while ((d = retry_webhook_delay_ms(attempts, cfg.webhook_schedule_ms,
                                       cfg.n_webhook_schedule)) >= 0) {
        total += d;
        attempts++;
    }
    assert_int_equal(attempts, 8); /* 1 + 7 retries, per docs/api.md */
    assert_int_equal(total, 5000 + 300000 + 1800000 + 7200000 + 18000000 + 36000000 + 36000000);
    config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(status_2xx_completes),
        cmocka_unit_test(status_3xx_gives_up_and_says_redirect),
        cmocka_unit_test(a_redirect_chain_too_long_is_final_and_says_so),
        cmocka_unit_test(an_oversized_answer_is_judged_by_its_status),
        cmocka_unit_test(a_status_past_599_is_final_and_not_called_a_client_error),
        cmocka_unit_test(status_4xx_gives_up_except_408_425_429),
        cmocka_unit_test(status_408_425_429_and_5xx_are_retried),
        cmocka_unit_test(status_outside_2xx_to_5xx_gives_up),
        cmocka_unit_test(transport_kinds),
        cmocka_unit_test(target_final_stops_retries),
        cmocka_unit_test(attempts_count_against_max_retries),
        cmocka_unit_test(retry_after_replaces_backoff),
        cmocka_unit_test(backoff_doubles_exactly_without_jitter),
        cmocka_unit_test(backoff_cap_applies_mid_doubling),
        cmocka_unit_test(backoff_jitter_draws_from_zero_to_the_bound),
        cmocka_unit_test(backoff_jitter_with_real_randomness_stays_in_bounds),
        cmocka_unit_test(decide_uses_the_jittered_backoff),
        cmocka_unit_test(retry_after_seconds),
        cmocka_unit_test(retry_after_http_dates),
        cmocka_unit_test(retry_after_garbage),
        cmocka_unit_test(webhook_schedule_steps_then_ends),
        cmocka_unit_test(webhook_default_schedule_gives_eight_deliveries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
