/*
 * test_util: RFC 3339 formatting and parsing, UTF-8 validation, base64, the
 * capped buffer and util_random_below.
 */
#include "testutil.h"

#include <time.h>

#include "util.h"

/* ---- RFC 3339 ---- */

static void rfc3339_formats_utc_with_milliseconds(void **state)
{
    (void)state;
    char out[UTIL_RFC3339_LEN];
    assert_string_equal(util_rfc3339(0, out), "1970-01-01T00:00:00.000Z");
    assert_string_equal(util_rfc3339(1795860742123LL, out), "2026-11-28T10:12:22.123Z");
    assert_string_equal(util_rfc3339(1709251199999LL, out), "2024-02-29T23:59:59.999Z");
    assert_string_equal(util_rfc3339(5, out), "1970-01-01T00:00:00.005Z");
}

static void rfc3339_formats_times_before_the_epoch(void **state)
{
    (void)state;
    char out[UTIL_RFC3339_LEN];
    assert_string_equal(util_rfc3339(-1, out), "1969-12-31T23:59:59.999Z");
    assert_string_equal(util_rfc3339(-1000, out), "1969-12-31T23:59:59.000Z");
}

static int64_t parse_ok(const char *s)
{
    int64_t ms = -12345;
    if (util_rfc3339_parse(s, &ms) != 0) fail_msg("'%s' was refused", s);
    return ms;
}

/* The hand-written formatter against libc's gmtime_r, over a spread of
 * times from 1600 to 9999 (leap years, centuries, month ends). */
static void rfc3339_matches_gmtime(void **state)
{
    (void)state;
    char out[UTIL_RFC3339_LEN], want[96];
    uint64_t x = 88172645463325252ULL; /* xorshift: fixed, so the test is deterministic */
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        /* -11676096000000 is 1600-01-01; 253402300799999 is 9999-12-31T23:59:59.999 */
        int64_t ms = -11676096000000LL + (int64_t)(x % 265078396800000ULL);
        if (i < 4000) ms = (int64_t)(i - 2000) * 86400000LL + (i % 7) * 3599999LL; /* days around 1970 */
        time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
        int frac = (int)(ms - (int64_t)secs * 1000);
        struct tm tm;
        gmtime_r(&secs, &tm);
        snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
        util_rfc3339(ms, out);
        if (strcmp(out, want) != 0) fail_msg("%lld: got %s, gmtime says %s", (long long)ms, out, want);
    }
}

static void rfc3339_parse_round_trips_what_it_formats(void **state)
{
    (void)state;
    static const int64_t times[] = {0,
                                    1,
                                    999,
                                    1000,
                                    1795860742123LL,
                                    1709251199999LL,
                                    253402300799999LL /* 9999-12-31T23:59:59.999Z */};
    char out[UTIL_RFC3339_LEN];
    for (size_t i = 0; i < ARRAY_LEN(times); i++)
        assert_int_equal(parse_ok(util_rfc3339(times[i], out)), times[i]);
}

static void rfc3339_parse_applies_offsets(void **state)
{
    (void)state;
    const int64_t want = 1795860742123LL; /* 2026-11-28T10:12:22.123Z */
    assert_int_equal(parse_ok("2026-11-28T11:12:22.123+01:00"), want);
    assert_int_equal(parse_ok("2026-11-28T05:12:22.123-05:00"), want);
    assert_int_equal(parse_ok("2026-11-28T15:42:22.123+05:30"), want);
    assert_int_equal(parse_ok("2026-11-28T10:12:22.123+00:00"), want);
    assert_int_equal(parse_ok("2026-11-28T10:12:22.123-00:00"), want);
    /* An offset that crosses midnight and the month. */
    assert_int_equal(parse_ok("2026-12-01T00:30:00+01:00"), parse_ok("2026-11-30T23:30:00Z"));
    assert_int_equal(parse_ok("2026-11-28T10:12:22.123+23:59"), want - (23 * 60 + 59) * 60000LL);
}

static void rfc3339_parse_accepts_lower_case_and_space_separator(void **state)
{
    (void)state;
    const int64_t want = parse_ok("2026-11-28T10:12:22Z");
    assert_int_equal(parse_ok("2026-11-28t10:12:22z"), want);
    assert_int_equal(parse_ok("2026-11-28 10:12:22Z"), want);
}

static void rfc3339_parse_reads_fractions_to_milliseconds(void **state)
{
    (void)state;
    const int64_t base = parse_ok("2026-11-28T10:12:22Z");
    assert_int_equal(parse_ok("2026-11-28T10:12:22.1Z"), base + 100);
    assert_int_equal(parse_ok("2026-11-28T10:12:22.12Z"), base + 120);
    assert_int_equal(parse_ok("2026-11-28T10:12:22.123Z"), base + 123);
    /* Digits past milliseconds are dropped, not rounded. */
    assert_int_equal(parse_ok("2026-11-28T10:12:22.123999999Z"), base + 123);
    assert_int_equal(parse_ok("2026-11-28T10:12:22.000000000000000000001Z"), base);
}

static void rfc3339_parse_accepts_leap_days_and_refuses_invented_ones(void **state)
{
    (void)state;
    int64_t ms;
    assert_int_equal(util_rfc3339_parse("2024-02-29T00:00:00Z", &ms), 0);
    assert_int_equal(util_rfc3339_parse("2000-02-29T00:00:00Z", &ms), 0);
    assert_int_equal(util_rfc3339_parse("2026-02-29T00:00:00Z", &ms), -1);
    assert_int_equal(util_rfc3339_parse("1900-02-29T00:00:00Z", &ms), -1);
    assert_int_equal(util_rfc3339_parse("2026-02-31T00:00:00Z", &ms), -1);
    assert_int_equal(util_rfc3339_parse("2026-04-31T00:00:00Z", &ms), -1);
    assert_int_equal(util_rfc3339_parse("2026-11-31T00:00:00Z", &ms), -1);
}

static void rfc3339_parse_accepts_a_leap_second_within_its_minute(void **state)
{
    (void)state;
    int64_t ms = parse_ok("2016-12-31T23:59:60Z");
    int64_t minute = parse_ok("2016-12-31T23:59:00Z");
    assert_true(ms >= minute + 59000 && ms < minute + 61000);
}

static void rfc3339_parse_refuses_out_of_range_fields(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "2026-00-10T00:00:00Z", "2026-13-01T00:00:00Z",      "2026-01-00T00:00:00Z",
        "2026-01-32T00:00:00Z", "2026-01-01T24:00:00Z",      "2026-01-01T23:60:00Z",
        "2026-01-01T23:59:61Z", "2026-01-01T00:00:00+24:00", "2026-01-01T00:00:00+01:60",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        int64_t ms = 42;
        if (util_rfc3339_parse(bad[i], &ms) != -1) fail_msg("'%s' was accepted", bad[i]);
        assert_int_equal(ms, 42); /* untouched on failure */
    }
}

static void rfc3339_parse_refuses_garbage(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "garbage",
        "2026",
        "2026-11-28",
        "2026-11-28T10:12:22",      /* no offset */
        "2026-11-28T10:12Z",        /* no seconds */
        "2026-11-28T10:12:22.Z",    /* a dot without digits */
        "2026-11-28T10:12:22,123Z", /* comma fraction */
        "2026-11-28T10:12:22+0100", /* offset without colon */
        "2026-11-28T10:12:22+1:00",
        "2026-11-28T10:12:22Zjunk", /* trailing data */
        "2026-11-28T10:12:22Z ",
        " 2026-11-28T10:12:22Z",
        "2026-1-28T10:12:22Z",
        "20261128T101222Z", /* basic format */
        "2026-11-28X10:12:22Z",
        "2026/11/28T10:12:22Z",
        "+2026-11-28T10:12:22Z",
        "2026-11-28T10:12:22 UTC",
        "１２３４-11-28T10:12:22Z", /* non-ASCII digits */
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        int64_t ms = 42;
        if (util_rfc3339_parse(bad[i], &ms) != -1) fail_msg("'%s' was accepted", bad[i]);
        assert_int_equal(ms, 42);
    }
}

/* ---- UTF-8 ---- */

struct utf8_case {
    const char *bytes;
    size_t len;
    const char *what;
};

#define U8(s, what)                                                                                \
    {                                                                                              \
        s, sizeof(s) - 1, what                                                                     \
    }

/* The verdict on a case also holds with ASCII around it: 0 to 9 bytes
 * before and 0 or 9 after, so that each case falls at every place of the
 * eight-byte steps util_utf8_valid takes over ASCII. */
static void check_utf8(const struct utf8_case *c, bool want)
{
    char buf[64];
    for (size_t before = 0; before <= 9; before++)
        for (size_t after = 0; after <= 9; after += 9) {
            memset(buf, 'a', sizeof buf);
            memcpy(buf + before, c->bytes, c->len);
            if (util_utf8_valid(buf, before + c->len + after) != want)
                fail_msg("%s: %s with %zu ASCII bytes before and %zu after", want ? "refused" : "accepted",
                         c->what, before, after);
        }
}

static void utf8_accepts_well_formed_text(void **state)
{
    (void)state;
    static const struct utf8_case good[] = {
        U8("", "empty"),
        U8("plain ASCII", "ascii"),
        U8("\x00", "NUL is a valid code point"),
        U8("\x7f", "DEL"),
        U8("\xc2\x80", "U+0080, first two-byte"),
        U8("\xc3\xa9", "e acute"),
        U8("\xdf\xbf", "U+07FF, last two-byte"),
        U8("\xe0\xa0\x80", "U+0800, first three-byte"),
        U8("\xe2\x82\xac", "euro sign"),
        U8("\xed\x9f\xbf", "U+D7FF, just below the surrogates"),
        U8("\xee\x80\x80", "U+E000, just above the surrogates"),
        U8("\xef\xbf\xbf", "U+FFFF"),
        U8("\xf0\x90\x80\x80", "U+10000, first four-byte"),
        U8("\xf0\x9d\x84\x9e", "musical G clef"),
        U8("\xf4\x8f\xbf\xbf", "U+10FFFF, the last code point"),
        U8("a\xc3\xa9z\xe2\x82\xac\xf0\x9d\x84\x9e!", "mixed"),
    };
    for (size_t i = 0; i < ARRAY_LEN(good); i++)
        check_utf8(&good[i], true);
}

static void utf8_refuses_overlongs_surrogates_and_out_of_range(void **state)
{
    (void)state;
    static const struct utf8_case bad[] = {
        U8("\xc0\x80", "overlong NUL"),
        U8("\xc0\xaf", "overlong slash"),
        U8("\xc1\xbf", "overlong U+007F"),
        U8("\xe0\x80\x80", "overlong three-byte NUL"),
        U8("\xe0\x80\xaf", "overlong three-byte slash"),
        U8("\xe0\x9f\xbf", "overlong U+07FF"),
        U8("\xf0\x80\x80\x80", "overlong four-byte NUL"),
        U8("\xf0\x8f\xbf\xbf", "overlong U+FFFF"),
        U8("\xed\xa0\x80", "U+D800, high surrogate"),
        U8("\xed\xaf\xbf", "U+DBFF"),
        U8("\xed\xb0\x80", "U+DC00, low surrogate"),
        U8("\xed\xbf\xbf", "U+DFFF"),
        U8("\xed\xa0\xbd\xed\xb8\x80", "CESU-8 surrogate pair"),
        U8("\xf4\x90\x80\x80", "U+110000"),
        U8("\xf5\x80\x80\x80", "lead byte F5"),
        U8("\xf7\xbf\xbf\xbf", "U+1FFFFF"),
        U8("\xf8\x88\x80\x80\x80", "five-byte form"),
        U8("\xfc\x84\x80\x80\x80\x80", "six-byte form"),
        U8("\xfe", "FE"),
        U8("\xff", "FF"),
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        check_utf8(&bad[i], false);
}

static void utf8_refuses_truncated_and_stray_bytes(void **state)
{
    (void)state;
    static const struct utf8_case bad[] = {
        U8("\xc3", "two-byte lead alone"),
        U8("\xe2\x82", "three-byte cut after two"),
        U8("\xe2", "three-byte lead alone"),
        U8("\xf0\x9d\x84", "four-byte cut after three"),
        U8("abc\xf0\x9d", "cut at the end of text"),
        U8("\x80", "lone continuation"),
        U8("\xbf", "lone continuation BF"),
        U8("a\x80z", "continuation between ASCII"),
        U8("\xc3\x28", "lead followed by ASCII"),
        U8("\xe2\x28\xa1", "bad second byte"),
        U8("\xe2\x82\x28", "bad third byte"),
        U8("\xf0\x28\x8c\xbc", "bad four-byte second byte"),
        U8("\xc3\xa9\xa9", "one continuation too many"),
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        check_utf8(&bad[i], false);
}

static void utf8_checks_only_len_bytes(void **state)
{
    (void)state;
    /* The buffer holds a full e-acute, but the length cuts it in half. */
    assert_false(util_utf8_valid("\xc3\xa9", 1));
    /* Invalid bytes past len are not looked at. */
    assert_true(util_utf8_valid("ok\xff", 2));
}

/* ---- base64 ---- */

static void base64_encodes_rfc4648_vectors(void **state)
{
    (void)state;
    static const char *const in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const out[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                      "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < ARRAY_LEN(in); i++) {
        char *e = util_base64_encode((const unsigned char *)in[i], strlen(in[i]));
        assert_string_equal(e, out[i]);
        free(e);
        unsigned char dec[16] = {0};
        long n = util_base64_decode(out[i], strlen(out[i]), dec);
        assert_int_equal(n, (long)strlen(in[i]));
        if (n) assert_memory_equal(dec, in[i], (size_t)n);
    }
}

static void base64_round_trips_every_byte_value_and_length(void **state)
{
    (void)state;
    unsigned char data[300], back[300];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)(i * 7 + 3);
    data[0] = 0x00;
    data[1] = 0xff;
    for (size_t len = 0; len <= sizeof data; len++) {
        char *e = util_base64_encode(data, len);
        assert_int_equal(strlen(e), 4 * ((len + 2) / 3));
        for (const char *p = e; *p; p++)
            assert_non_null(
                strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=", *p));
        memset(back, 0xaa, sizeof back);
        long n = util_base64_decode(e, strlen(e), back);
        assert_int_equal(n, (long)len);
        if (len) assert_memory_equal(back, data, len);
        free(e);
    }
}

static void base64_decodes_both_alphabet_ends(void **state)
{
    (void)state;
    unsigned char out[3];
    assert_int_equal(util_base64_decode("+/+/", 4, out), 3);
    assert_int_equal(out[0], 0xfb);
    assert_int_equal(out[1], 0xff);
    assert_int_equal(out[2], 0xbf);
    assert_int_equal(util_base64_decode("AAAA", 4, out), 3);
    assert_int_equal(out[0] | out[1] | out[2], 0);
}

static void base64_refuses_invalid_input(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "Zg=",      "Zg",       "Zm9vY", /* length not a multiple of 4 */
        "Zm9v\n",   "Zm 9",              /* whitespace */
        "Zm9*",     "Zm-_",              /* not in the (standard) alphabet */
        "====",     "Z===",     "=Zm9",  /* padding where data must be */
        "Zg=a",                          /* data after padding */
        "Zg==Zm8=", "Zm9v====",          /* padding before the end */
    };
    unsigned char out[64];
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        if (util_base64_decode(bad[i], strlen(bad[i]), out) != -1)
            fail_msg("accepted '%s'", bad[i]);
    /* A NUL inside the counted length is not base64 either. */
    assert_int_equal(util_base64_decode("Zm\0v", 4, out), -1);
}

/* ---- struct buf ---- */

static void buf_refuses_append_over_cap_and_keeps_data(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 10);
    assert_int_equal(buf_append(&b, "abcdef", 6), 0);
    assert_int_equal(buf_append(&b, "12345", 5), -1);
    assert_int_equal(b.len, 6);
    assert_string_equal(b.data, "abcdef");
    assert_int_equal(buf_append(&b, "1234", 4), 0); /* exactly at the cap */
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "abcdef1234");
    assert_int_equal(buf_append(&b, "", 0), 0);
    assert_int_equal(buf_append(&b, "x", 1), -1);
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "abcdef1234");
    assert_true(b.alloc <= b.cap + 1);
    buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
}

static void buf_refuses_a_single_append_larger_than_cap(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 4);
    assert_int_equal(buf_append(&b, "hello", 5), -1);
    assert_int_equal(b.len, 0);
    assert_null(b.data); /* nothing was allocated for a refused append */
    buf_free(&b);
}

static void buf_appendf_respects_cap_on_both_paths(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 1000);
    assert_int_equal(buf_appendf(&b, "%s-%d", "n", 42), 0);
    assert_string_equal(b.data, "n-42");
    /* Longer than appendf's 512-byte stack buffer: the heap path. */
    char big[700];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(buf_appendf(&b, "%s", big), 0);
    assert_int_equal(b.len, 4 + 699);
    assert_int_equal(buf_appendf(&b, "%s", big), -1); /* 703 + 699 > 1000 */
    assert_int_equal(b.len, 703);
    assert_int_equal(buf_appendf(&b, "%0400d", 7), -1); /* 703 + 400 > 1000 */
    assert_int_equal(b.len, 703);
    assert_int_equal(b.data[b.len], '\0');
    assert_memory_equal(b.data, "n-42qqq", 7);
    buf_free(&b);
}

static void buf_grows_across_many_appends(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 100000);
    char chunk[100];
    for (int i = 0; i < 1000; i++) {
        memset(chunk, 'a' + i % 26, sizeof chunk);
        assert_int_equal(buf_append(&b, chunk, sizeof chunk), 0);
    }
    assert_int_equal(b.len, 100000);
    assert_true(b.alloc <= b.cap + 1);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(b.data[i * 100 + 99], 'a' + i % 26);
    assert_int_equal(b.data[b.len], '\0');
    assert_int_equal(buf_append(&b, "x", 1), -1);
    buf_free(&b);
}

static void buf_steal_hands_over_data_and_resets(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 64);
    assert_int_equal(buf_append(&b, "abc", 3), 0);
    size_t len = 0;
    char *p = buf_steal(&b, &len);
    assert_int_equal(len, 3);
    assert_string_equal(p, "abc");
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    free(p);
    /* An empty buffer still hands over a valid empty string. */
    p = buf_steal(&b, &len);
    assert_non_null(p);
    assert_int_equal(len, 0);
    assert_string_equal(p, "");
    free(p);
    /* And the buffer is usable again with the same cap. */
    assert_int_equal(buf_append(&b, "0123456789", 10), 0);
    assert_int_equal(b.cap, 64);
    buf_free(&b);
}

/* ---- random ---- */

static void random_below_one_is_always_zero(void **state)
{
    (void)state;
    for (int i = 0; i < 100; i++)
        assert_int_equal(util_random_below(1), 0);
}

static void random_below_stays_in_bounds_and_covers_them(void **state)
{
    (void)state;
    int seen[10] = {0};
    for (int i = 0; i < 10000; i++) {
        uint64_t r = util_random_below(10);
        assert_true(r < 10);
        seen[r]++;
    }
    /* P(a value never drawn in 10000 draws) is about 10 * 0.9^10000: never. */
    for (int i = 0; i < 10; i++)
        assert_true(seen[i] > 0);
    bool zero = false, one = false;
    for (int i = 0; i < 200; i++) {
        uint64_t r = util_random_below(2);
        assert_true(r < 2);
        zero |= r == 0;
        one |= r == 1;
    }
    assert_true(zero && one);
}

static void random_below_handles_huge_bounds(void **state)
{
    (void)state;
    const uint64_t bounds[] = {UINT64_MAX, (1ULL << 63) + 1, 1ULL << 63, 3};
    for (size_t i = 0; i < ARRAY_LEN(bounds); i++)
        for (int k = 0; k < 100; k++)
            assert_true(util_random_below(bounds[i]) < bounds[i]);
}

static void random_bytes_fills_the_buffer(void **state)
{
    (void)state;
    unsigned char a[64] = {0}, b[64] = {0};
    util_random_bytes(a, sizeof a);
    util_random_bytes(b, sizeof b);
    assert_memory_not_equal(a, b, sizeof a); /* 2^-512 chance of a false failure */
}

/* ---- allocation helpers ---- */

static void strcopy_cuts_to_fit_and_terminates(void **state)
{
    (void)state;
    char buf[8];
    memset(buf, 'x', sizeof buf);
    assert_int_equal(util_strcopy(buf, sizeof buf, "abc"), 3);
    assert_string_equal(buf, "abc");
    assert_int_equal(util_strcopy(buf, sizeof buf, "1234567"), 7); /* exactly fits */
    assert_string_equal(buf, "1234567");
    assert_int_equal(util_strcopy(buf, sizeof buf, "123456789"), 7); /* cut */
    assert_string_equal(buf, "1234567");
    assert_int_equal(util_strcopy(buf, 1, "abc"), 0);
    assert_string_equal(buf, "");
    buf[0] = 'y';
    assert_int_equal(util_strcopy(buf, 0, "abc"), 0); /* nothing written */
    assert_int_equal(buf[0], 'y');
}

static void http_token_is_what_header_names_are_made_of(void **state)
{
    (void)state;
    assert_true(util_http_token("X-Model", 7));
    assert_true(util_http_token("a!#$%&'*+-.^_`|~9", 17));
    assert_false(util_http_token("", 0));
    assert_false(util_http_token("X Model", 7));
    assert_false(util_http_token("X:Model", 7));
    assert_false(util_http_token("x\0y", 3)); /* a NUL is not a token character */
    assert_false(util_http_token("\xff\xfe-bad", 7));
    assert_false(util_http_token("HTTP/1.1 200 OK", 15));
    assert_true(util_http_token("ok\xff", 2)); /* only n bytes are looked at */
    /* Every byte against the grammar (RFC 9110 5.6.2), one at a time. */
    for (int c = 0; c < 256; c++) {
        char b = (char)c;
        bool want = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c != 0 && strchr("!#$%&'*+-.^_`|~", c));
        if (util_http_token(&b, 1) != want) fail_msg("byte %d: %d", c, !want);
    }
}

static void xstrdup_and_xasprintf(void **state)
{
    (void)state;
    assert_null(xstrdup(NULL));
    char *s = xstrdup("abc");
    assert_string_equal(s, "abc");
    free(s);
    s = xstrndup("abcdef", 3);
    assert_string_equal(s, "abc");
    free(s);
    s = xasprintf("%s=%d", "k", 7);
    assert_string_equal(s, "k=7");
    free(s);
}

static void hex_writes_two_lower_case_digits_a_byte(void **state)
{
    (void)state;
    const unsigned char in[] = {0x00, 0x0f, 0xa5, 0xff, 0x10};
    char out[11];
    memset(out, 'x', sizeof out);
    util_hex(in, sizeof in, out);
    assert_string_equal(out, "000fa5ff10");
    util_hex(in, 0, out);
    assert_string_equal(out, "");
}

/* RFC 8259's number grammar: the length of the number at the start, 0 when
 * there is none or it runs on into what no JSON number takes. */
static void json_number_len_follows_rfc_8259(void **state)
{
    (void)state;
    struct {
        const char *s;
        size_t len;
    } cases[] = {
        {"0", 1}, {"-0", 2}, {"7", 1}, {"42,", 2}, {"-12]", 3}, {"0.5}", 3}, {"1.25e10 ", 7},
        {"1E+2", 4}, {"1e-2", 4}, {"-0.0e0", 6}, {"123456789012345678901234567890", 30},
        {"01", 0}, {"00", 0}, {"-01", 0}, {"1.", 0}, {"1.e5", 0}, {".5", 0}, {"-.5", 0},
        {"-", 0}, {"+1", 0}, {"1e", 0}, {"1e+", 0}, {"0.5.", 0}, {"1e5e5", 0}, {"1e5.", 0},
        {"", 0}, {"x", 0},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        size_t n = util_json_number_len(cases[i].s, strlen(cases[i].s));
        if (n != cases[i].len) fail_msg("'%s': %zu, want %zu", cases[i].s, n, cases[i].len);
    }
    /* Only len bytes are read: "12" of "123" is a number of 2. */
    assert_int_equal(util_json_number_len("123", 2), 2);
    assert_int_equal(util_json_number_len("1.5", 2), 0);
}

static void exact_number_is_one_spelling_for_each_value(void **state)
{
    (void)state;
    static const struct {
        const char *s, *want;
    } cases[] = {
        {"0", "0"}, {"-0", "0"}, {"0.000e-7", "0"}, {"-0.0E+12", "0"},
        {"1", "1"}, {"-1", "-1"}, {"10", "1e1"}, {"1000", "1e3"}, {"1e3", "1e3"},
        {"1.50", "15e-1"}, {"15e-1", "15e-1"}, {"0.15E1", "15e-1"}, {"0.15e+001", "15e-1"},
        {"0.1", "1e-1"}, {"0.10000000000000001", "10000000000000001e-17"},
        {"12345678901234567890", "1234567890123456789e1"},
        {"12345678901234567891", "12345678901234567891"},
        {"1.2345678901234567891e19", "12345678901234567891"},
        {"-0.00120", "-12e-4"}, {"123.456e-2", "123456e-5"},
        {"5e999999999999999", "5e999999999999999"},
        /* 16 exponent digits: written apart from the fraction's shift */
        {"1.50e-1234567890123456", "15e-1234567890123456-1"},
        {"50e0000000000000000000000001", "5e2"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char *got = util_json_number_exact(cases[i].s, strlen(cases[i].s));
        if (strcmp(got, cases[i].want) != 0) fail_msg("'%s': '%s', want '%s'", cases[i].s, got, cases[i].want);
        free(got);
    }
    /* Only len bytes are read. */
    char *got = util_json_number_exact("12.5", 2);
    assert_string_equal(got, "12");
    free(got);
}

static void key_is_compares_names_written_with_escapes(void **state)
{
    (void)state;
#define KEY_IS(k, name) util_json_key_is(k, strlen(k), name)
    assert_true(KEY_IS("tasks", "tasks"));
    assert_true(KEY_IS("ta\\u0073ks", "tasks"));
    assert_true(KEY_IS("\\u0054\\u0041sks", "TAsks"));
    assert_true(KEY_IS("\\u0070ayload", "payload"));
    assert_true(KEY_IS("a\\/b\\\\c\\\"d\\n", "a/b\\c\"d\n"));
    assert_true(KEY_IS("", ""));
    assert_false(KEY_IS("task", "tasks"));
    assert_false(KEY_IS("tasks", "task"));
    assert_false(KEY_IS("tasks2", "tasks"));
    assert_false(KEY_IS("Tasks", "tasks"));
    assert_false(KEY_IS("ta\\u0173ks", "tasks")); /* U+0173 is not 's' */
    assert_false(KEY_IS("ta\\u0053ks", "tasks"));
    assert_false(KEY_IS("ta\\n", "ta"));
#undef KEY_IS
}

/* The calendar cron, time zones and timestamps share: against gmtime, day
 * by day over 1900-2200, and at the leap-year rules' edges. */
static void calendar_matches_gmtime(void **state)
{
    (void)state;
    for (int64_t days = util_days_from_civil(1900, 1, 1); days <= util_days_from_civil(2200, 12, 31); days++) {
        time_t t = (time_t)(days * 86400);
        struct tm tm;
        gmtime_r(&t, &tm);
        int64_t y;
        int m, d;
        util_civil_from_days(days, &y, &m, &d);
        if (y != tm.tm_year + 1900 || m != tm.tm_mon + 1 || d != tm.tm_mday || util_weekday(days) != tm.tm_wday)
            fail_msg("day %lld: %lld-%d-%d", (long long)days, (long long)y, m, d);
        if (util_days_from_civil(y, m, d) != days) fail_msg("day %lld does not come back", (long long)days);
    }
    assert_true(util_leap_year(2000) && util_leap_year(2024) && !util_leap_year(2100) && !util_leap_year(1900));
    assert_int_equal(util_days_in_month(2024, 2), 29);
    assert_int_equal(util_days_in_month(2100, 2), 28);
    assert_int_equal(util_days_in_month(2025, 4), 30);
    assert_int_equal(util_days_from_civil(1970, 1, 1), 0);
    assert_int_equal(util_days_from_civil(1969, 12, 31), -1);
    int64_t ms = 0;
    assert_int_equal(util_rfc3339_parse("2024-02-29T12:00:00Z", &ms), 0);
    assert_true(ms == 1709208000000LL);
    assert_int_equal(util_rfc3339_parse("2023-02-29T12:00:00Z", &ms), -1); /* no such day */
    assert_int_equal(util_rfc3339_parse("2026-04-31T00:00:00Z", &ms), -1);
}

static void whole_numbers_are_digits_in_range(void **state)
{
    (void)state;
    int64_t v = -1;
    assert_true(util_whole_number("1", 1, 200, &v));
    assert_int_equal(v, 1);
    assert_true(util_whole_number("200", 1, 200, &v));
    assert_int_equal(v, 200);
    assert_true(util_whole_number("007", 1, 200, &v));
    assert_int_equal(v, 7);
    assert_true(util_whole_number("999999999999999999", 1, INT64_MAX, &v));
    assert_true(v == 999999999999999999LL);
    static const char *const bad[] = {"", "0", "201", "-1", "+1", " 1", "1 ", "1.0", "1e2",
                                      "0x10", "10abc", "9999999999999999999"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        v = -1;
        if (util_whole_number(bad[i], 1, 200, &v)) fail_msg("'%s' taken", bad[i]);
        assert_int_equal(v, -1); /* left alone */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_number_len_follows_rfc_8259),
        cmocka_unit_test(whole_numbers_are_digits_in_range),
        cmocka_unit_test(rfc3339_formats_utc_with_milliseconds),
        cmocka_unit_test(rfc3339_formats_times_before_the_epoch),
        cmocka_unit_test(rfc3339_matches_gmtime),
        cmocka_unit_test(rfc3339_parse_round_trips_what_it_formats),
        cmocka_unit_test(rfc3339_parse_applies_offsets),
        cmocka_unit_test(rfc3339_parse_accepts_lower_case_and_space_separator),
        cmocka_unit_test(rfc3339_parse_reads_fractions_to_milliseconds),
        cmocka_unit_test(rfc3339_parse_accepts_leap_days_and_refuses_invented_ones),
        cmocka_unit_test(rfc3339_parse_accepts_a_leap_second_within_its_minute),
        cmocka_unit_test(rfc3339_parse_refuses_out_of_range_fields),
        cmocka_unit_test(rfc3339_parse_refuses_garbage),
        cmocka_unit_test(utf8_accepts_well_formed_text),
        cmocka_unit_test(utf8_refuses_overlongs_surrogates_and_out_of_range),
        cmocka_unit_test(utf8_refuses_truncated_and_stray_bytes),
        cmocka_unit_test(utf8_checks_only_len_bytes),
        cmocka_unit_test(base64_encodes_rfc4648_vectors),
        cmocka_unit_test(base64_round_trips_every_byte_value_and_length),
        cmocka_unit_test(base64_decodes_both_alphabet_ends),
        cmocka_unit_test(base64_refuses_invalid_input),
        cmocka_unit_test(buf_refuses_append_over_cap_and_keeps_data),
        cmocka_unit_test(buf_refuses_a_single_append_larger_than_cap),
        cmocka_unit_test(buf_appendf_respects_cap_on_both_paths),
        cmocka_unit_test(buf_grows_across_many_appends),
        cmocka_unit_test(buf_steal_hands_over_data_and_resets),
        cmocka_unit_test(random_below_one_is_always_zero),
        cmocka_unit_test(random_below_stays_in_bounds_and_covers_them),
        cmocka_unit_test(random_below_handles_huge_bounds),
        cmocka_unit_test(random_bytes_fills_the_buffer),
        cmocka_unit_test(xstrdup_and_xasprintf),
        cmocka_unit_test(strcopy_cuts_to_fit_and_terminates),
        cmocka_unit_test(http_token_is_what_header_names_are_made_of),
        cmocka_unit_test(hex_writes_two_lower_case_digits_a_byte),
        cmocka_unit_test(exact_number_is_one_spelling_for_each_value),
        cmocka_unit_test(calendar_matches_gmtime),
        cmocka_unit_test(key_is_compares_names_written_with_escapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
