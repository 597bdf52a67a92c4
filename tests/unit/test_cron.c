/*
 * test_cron: every syntax form as bit sets, every refusal and its message,
 * the next fire time across minute, hour, day, month and year boundaries
 * (leap years, short months, the day-of-month / day-of-week OR rule,
 * seconds), and a cross-check of cron_next against a slow scan over random
 * expressions whose bit sets the generator works out on its own.
 */
#include "testutil.h"

#include <time.h>

#include "cron.h"
#include "util.h"

#define ALL_0_59 ((1ULL << 60) - 1)
#define ALL_HOURS ((1u << 24) - 1)
#define ALL_DAYS 0xfffffffeu
#define ALL_MONTHS 0x1ffe
#define ALL_WEEKDAYS 0x7f

/* Unix ms of a UTC time, through libc (not the module's arithmetic). */
static int64_t at(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = s};
    return (int64_t)timegm(&tm) * 1000;
}

static const char *iso(int64_t ms, char buf[64])
{
    if (ms < 0) return "-1 (never)";
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(buf, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    return buf;
}

static struct cron parse_ok(const char *expr)
{
    struct cron c;
    char err[CRON_ERR_LEN];
    if (cron_parse(expr, &c, err) != 0) fail_msg("\"%s\" refused: %s", expr, err);
    assert_string_equal(err, "");
    return c;
}

/* Expects a refusal whose message holds each of the needles (up to 3), is
 * one line, and fits CRON_ERR_LEN without truncation. */
static void parse_err(const char *expr, const char *n1, const char *n2, const char *n3)
{
    struct cron c;
    char err[CRON_ERR_LEN];
    memset(err, 'x', sizeof err);
    if (cron_parse(expr, &c, err) != -1) fail_msg("\"%s\" accepted", expr);
    size_t len = strnlen(err, sizeof err);
    if (len == 0 || len >= sizeof err - 1) fail_msg("\"%s\": message length %zu", expr, len);
    assert_null(strchr(err, '\n'));
    const char *needles[] = {n1, n2, n3};
    for (size_t i = 0; i < ARRAY_LEN(needles); i++)
        if (needles[i] && !strstr(err, needles[i]))
            fail_msg("\"%s\": message \"%s\" lacks \"%s\"", expr, err, needles[i]);
}

static void expect_next_at(const char *expr, int64_t after, int64_t want, int line)
{
    struct cron c = parse_ok(expr);
    int64_t got = cron_next(&c, after);
    char b1[64], b2[64], b3[64];
    if (got != want)
        fail_msg("line %d: \"%s\" after %s: got %s, want %s", line, expr, iso(after, b1),
                 iso(got, b2), iso(want, b3));
}
#define expect_next(expr, after, want) expect_next_at(expr, after, want, __LINE__)

static void assert_same(const struct cron *a, const struct cron *b)
{
    assert_int_equal(a->second, b->second);
    assert_int_equal(a->minute, b->minute);
    assert_int_equal(a->hour, b->hour);
    assert_int_equal(a->day, b->day);
    assert_int_equal(a->month, b->month);
    assert_int_equal(a->weekday, b->weekday);
    assert_int_equal(a->day_any, b->day_any);
    assert_int_equal(a->weekday_any, b->weekday_any);
}

static uint64_t bits(int lo, int hi, int step)
{
    uint64_t b = 0;
    for (int v = lo; v <= hi; v += step)
        b |= 1ULL << v;
    return b;
}

/* ---- syntax ---- */

static void stars_are_every_value_and_any(void **state)
{
    (void)state;
    struct cron c = parse_ok("* * * * *");
    assert_int_equal(c.second, 1); /* five fields fire at second 0 */
    assert_int_equal(c.minute, ALL_0_59);
    assert_int_equal(c.hour, ALL_HOURS);
    assert_int_equal(c.day, ALL_DAYS);
    assert_int_equal(c.month, ALL_MONTHS);
    assert_int_equal(c.weekday, ALL_WEEKDAYS);
    assert_true(c.day_any);
    assert_true(c.weekday_any);
    c = parse_ok("* * ? * ?");
    assert_true(c.day_any && c.weekday_any);
    assert_int_equal(c.day, ALL_DAYS);
    assert_int_equal(c.weekday, ALL_WEEKDAYS);
}

static void single_values(void **state)
{
    (void)state;
    struct cron c = parse_ok("5 4 3 2 1");
    assert_int_equal(c.minute, 1ULL << 5);
    assert_int_equal(c.hour, 1u << 4);
    assert_int_equal(c.day, 1u << 3);
    assert_int_equal(c.month, 1u << 2);
    assert_int_equal(c.weekday, 1u << 1);
    assert_false(c.day_any);
    assert_false(c.weekday_any);
    c = parse_ok("59 23 31 12 6");
    assert_int_equal(c.minute, 1ULL << 59);
    assert_int_equal(c.hour, 1u << 23);
    assert_int_equal(c.day, 1u << 31);
    assert_int_equal(c.month, 1u << 12);
    assert_int_equal(c.weekday, 1u << 6);
    c = parse_ok("00 007 01 1 0"); /* leading zeros, up to three digits */
    assert_int_equal(c.minute, 1);
    assert_int_equal(c.hour, 1u << 7);
    assert_int_equal(c.weekday, 1);
}

static void ranges_steps_and_lists(void **state)
{
    (void)state;
    struct cron c = parse_ok("10-12 */7 1-10/4 */5 1/2");
    assert_int_equal(c.minute, bits(10, 12, 1));
    assert_int_equal(c.hour, bits(0, 23, 7));   /* 0 7 14 21 */
    assert_int_equal(c.day, bits(1, 10, 4));    /* 1 5 9 */
    assert_int_equal(c.month, bits(1, 12, 5));  /* 1 6 11 */
    assert_int_equal(c.weekday, bits(1, 6, 2)); /* a/n ends at SAT: no Sunday */
    c = parse_ok("5/20 10-23/10 10/10 2/11 */2");
    assert_int_equal(c.minute, bits(5, 59, 20)); /* 5 25 45 */
    assert_int_equal(c.hour, bits(10, 23, 10));  /* 10 20 */
    assert_int_equal(c.day, bits(10, 31, 10));   /* 10 20 30 */
    assert_int_equal(c.month, bits(2, 12, 11));  /* 2 */
    assert_int_equal(c.weekday, bits(0, 6, 2));
    c = parse_ok("1,5-7,*/30,59 0,12 1,15 * *");
    assert_int_equal(c.minute, bits(0, 0, 1) | bits(1, 1, 1) | bits(5, 7, 1) | bits(30, 30, 1) |
                                   bits(59, 59, 1));
    assert_int_equal(c.hour, (1u << 0) | (1u << 12));
    assert_int_equal(c.day, (1u << 1) | (1u << 15));
    /* Steps at the top of their range. */
    c = parse_ok("*/59 */23 */30 */11 */6");
    assert_int_equal(c.minute, (1ULL << 0) | (1ULL << 59));
    assert_int_equal(c.hour, (1u << 0) | (1u << 23));
    assert_int_equal(c.day, (1u << 1) | (1u << 31));
    assert_int_equal(c.month, (1u << 1) | (1u << 12));
    assert_int_equal(c.weekday, (1u << 0) | (1u << 6));
    /* A stepped star is not a star for the OR rule; a list with a star neither. */
    c = parse_ok("0 0 */2 * *,1");
    assert_false(c.day_any);
    assert_false(c.weekday_any);
    assert_int_equal(c.weekday, ALL_WEEKDAYS);
}

static void names_any_case_and_sunday_as_7(void **state)
{
    (void)state;
    struct cron c = parse_ok("0 0 * JAN SUN");
    assert_int_equal(c.month, 1u << 1);
    assert_int_equal(c.weekday, 1u << 0);
    c = parse_ok("0 0 * jan-Mar,Oct mon-FRI");
    assert_int_equal(c.month, bits(1, 3, 1) | (1u << 10));
    assert_int_equal(c.weekday, bits(1, 5, 1));
    c = parse_ok("0 0 * FEB/3 SAT,sun");
    assert_int_equal(c.month, bits(2, 12, 3));
    assert_int_equal(c.weekday, (1u << 6) | 1u);
    c = parse_ok("0 0 * 1-dec fri-7");
    assert_int_equal(c.month, ALL_MONTHS);
    assert_int_equal(c.weekday, (1u << 5) | (1u << 6) | 1u);
    assert_int_equal(parse_ok("0 0 * * 7").weekday, 1);
    assert_int_equal(parse_ok("0 0 * * 0,7").weekday, 1);
    assert_int_equal(parse_ok("0 0 * * 0-7").weekday, ALL_WEEKDAYS);
    assert_int_equal(parse_ok("0 0 * * 1-7/2").weekday, (1u << 1) | (1u << 3) | (1u << 5) | 1u);
    assert_int_equal(parse_ok("0 0 * * 7/3").weekday, 1); /* past SAT: just 7 */
}

static void blanks_six_fields_and_macros(void **state)
{
    (void)state;
    struct cron a = parse_ok(" \t0\t\t0   * *  *\t ");
    struct cron b = parse_ok("0 0 * * *");
    assert_same(&a, &b);
    struct cron c = parse_ok("30 15 10 * * *");
    assert_int_equal(c.second, 1ULL << 30);
    assert_int_equal(c.minute, 1ULL << 15);
    assert_int_equal(c.hour, 1u << 10);
    c = parse_ok("*/5 * * * * *");
    assert_int_equal(c.second, bits(0, 59, 5));
    assert_int_equal(c.minute, ALL_0_59);

    static const struct {
        const char *macro, *expr;
    } macros[] = {
        {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"},  {"@monthly", "0 0 1 * *"},
        {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},     {"@midnight", "0 0 * * *"},
        {"@hourly", "0 * * * *"}, {"  @DAILY\t", "0 0 * * *"}, {"@Weekly", "0 0 * * 0"},
    };
    for (size_t i = 0; i < ARRAY_LEN(macros); i++) {
        a = parse_ok(macros[i].macro);
        b = parse_ok(macros[i].expr);
        assert_same(&a, &b);
    }
    /* Exactly CRON_EXPR_MAX bytes, blanks included, is fine. */
    char long_expr[CRON_EXPR_MAX + 2];
    memset(long_expr, ' ', sizeof long_expr);
    memcpy(long_expr, "0 0 * * *", 9);
    long_expr[CRON_EXPR_MAX] = '\0';
    parse_ok(long_expr);
    /* err may be NULL. */
    assert_int_equal(cron_parse("0 0 * * *", &c, NULL), 0);
    assert_int_equal(cron_parse("0 24 * * *", &c, NULL), -1);
}

/* ---- refusals ---- */

static void wrong_field_counts_and_empty(void **state)
{
    (void)state;
    parse_err("* * * *", "4 fields", "minute hour day-of-month month day-of-week", NULL);
    parse_err("* * * * * * *", "7 fields", "6 with a leading second", NULL);
    parse_err("5", "1 field;", NULL, NULL);
    parse_err("", "empty", "@daily", NULL);
    parse_err(" \t ", "empty", NULL, NULL);
    parse_err("* * * *\n*", "a line break", "on one line", NULL); /* a newline is no blank */
    parse_err("0 3\r\n* * *", "a line break", NULL, NULL);
    parse_err("0 3 * * *\x01", "control character", NULL, NULL);
    struct cron c;
    char err[CRON_ERR_LEN];
    assert_int_equal(cron_parse(NULL, &c, err), -1);
    assert_non_null(strstr(err, "missing"));
}

static void empty_list_items(void **state)
{
    (void)state;
    parse_err("1,,2 * * * *", "the minute field", "empty", "single commas");
    parse_err("0 , * * *", "the hour field", "empty", NULL);
    parse_err("0 0 1, * *", "the day-of-month field", "empty", NULL);
    parse_err("0 0 * ,JAN *", "the month field", "empty", NULL);
}

static void values_out_of_range(void **state)
{
    (void)state;
    struct cron c;
    char err[CRON_ERR_LEN];
    assert_int_equal(cron_parse("0 24 * * *", &c, err), -1);
    assert_string_equal(err, "the hour field: 24 is out of range 0-23");
    parse_err("60 * * * *", "the minute field: 60 is out of range 0-59", NULL, NULL);
    parse_err("60 0 * * * *", "the second field: 60 is out of range 0-59", NULL, NULL);
    parse_err("0 0 0 * *", "the day-of-month field: 0 is out of range 1-31", NULL, NULL);
    parse_err("0 0 32 * *", "the day-of-month field: 32 is out of range 1-31", NULL, NULL);
    parse_err("0 0 * 0 *", "the month field: 0 is out of range 1-12", "JAN-DEC", NULL);
    parse_err("0 0 * 13 *", "the month field: 13 is out of range 1-12", NULL, NULL);
    parse_err("0 0 * * 8", "the day-of-week field: 8 is out of range 0-7", "SUN-SAT", NULL);
    parse_err("0 0-24 * * *", "the hour field: 24 is out of range", NULL, NULL);
    parse_err("0 0 * * 1-9/2", "the day-of-week field: 9", NULL, NULL);
}

static void backwards_ranges(void **state)
{
    (void)state;
    parse_err("0 20-5 * * *", "the hour field", "runs backwards (20 > 5)", "20-23,0-5");
    parse_err("50-10 * * * *", "the minute field", "runs backwards", "50-59,0-10");
    parse_err("0 0 * NOV-FEB *", "the month field", "11-2 runs backwards", "11-12,1-2");
    parse_err("0 0 * * SAT-MON", "the day-of-week field", "runs backwards", "6-6,0-1");
    parse_err("0 0 * * 7-1", "the day-of-week field", "runs backwards", "low to high");
}

static void bad_steps(void **state)
{
    (void)state;
    parse_err("*/0 * * * *", "the minute field", "step 0 is out of range 1-59", NULL);
    parse_err("*/60 * * * *", "the minute field", "step 60 is out of range 1-59", NULL);
    parse_err("0 */24 * * *", "the hour field", "step 24 is out of range 1-23", NULL);
    parse_err("0 0 */31 * *", "the day-of-month field", "1-30", NULL);
    parse_err("0 0 * */12 *", "the month field", "1-11", NULL);
    parse_err("0 0 * * */7", "the day-of-week field", "1-6", NULL);
    parse_err("*/ * * * *", "the minute field", "no step after /", "*/5");
    parse_err("*/x * * * *", "the minute field", "no step", NULL);
    parse_err("*/-1 * * * *", "the minute field", "no step", NULL);
    parse_err("*/1000 * * * *", "the minute field", "too many digits", NULL);
    parse_err("/5 * * * *", "the minute field", "unexpected \"/\"", NULL);
}

static void unknown_names(void **state)
{
    (void)state;
    parse_err("0 0 * FOO *", "the month field", "unknown name \"FOO\"", "JAN-DEC");
    parse_err("0 0 * JANUARY *", "the month field", "unknown name \"JANUARY\"", NULL);
    parse_err("0 0 * JAN-FOO *", "the month field", "\"FOO\"", NULL);
    parse_err("0 0 * * MONDAY", "the day-of-week field", "unknown name", "SUN-SAT");
    parse_err("0 0 * * JAN", "the day-of-week field", "unknown name \"JAN\"", NULL);
    parse_err("0 0 * MON *", "the month field", "unknown name \"MON\"", NULL);
    parse_err("0 noon * * *", "the hour field", "\"noon\" is not a number", "0-23");
    parse_err("@reboot", "unknown macro \"@reboot\"", "@daily", NULL);
    parse_err("@", "unknown macro", NULL, NULL);
}

static void trailing_garbage_and_stray_characters(void **state)
{
    (void)state;
    parse_err("5x * * * *", "the minute field", "unexpected \"x\" in \"5x\"", NULL);
    parse_err("*5 * * * *", "the minute field", "unexpected \"5\"", NULL);
    parse_err("1-2-3 * * * *", "the minute field", "unexpected \"-3\"", NULL);
    parse_err("0 0 * * MON;", "the day-of-week field", "unexpected \";\"", NULL);
    parse_err("-5 * * * *", "the minute field", "unexpected \"-\"", NULL);
    /* The longest message there is still fits, its quotes cut short. */
    parse_err("0 0 1abcdefghijklmnopqrstuvwxyz0123456789 * *", "the day-of-month field",
              "unexpected \"abcdefghijklmnopqrst\" in \"1abcdefghijklmnopqrstuvw\"",
              "separated by commas");
    parse_err("1- * * * *", "the minute field", "\"1-\" has no end", NULL);
    parse_err("0 0 1-/2 * *", "the day-of-month field", "unexpected \"/\"", NULL);
    parse_err("@daily now", "unexpected \"now\" after the macro @daily", "stands alone", NULL);
    parse_err("? * * * *", "the minute field", "'?' is only for", "write * instead");
    parse_err("0 ? * * *", "the hour field", "'?'", NULL);
    parse_err("0 0 ?/2 * *", "the day-of-month field", "'?' stands alone", NULL);
    parse_err("0 0 1,? * *", "the day-of-month field", "'?' stands alone", NULL);
    parse_err("0 0 * * ??", "the day-of-week field", "'?' stands alone", NULL);
}

/* What other crons take and we do not (Quartz's L, W and #, a time zone
 * prefix as QStash takes it) is named as not supported, not as a stray
 * character; a line break around the expression is a blank (a value
 * pasted from a file or a YAML block ends with one). */
static void unsupported_forms_say_so(void **state)
{
    (void)state;
    parse_err("0 0 L * *", "the day-of-month field", "\"L\" (the last day of the month) is not supported", NULL);
    parse_err("0 0 l * *", "the day-of-month field", "\"l\" (the last day of the month)", NULL);
    parse_err("0 0 LW * *", "the day-of-month field", "\"LW\"", "not supported");
    parse_err("0 0 L-3 * *", "the day-of-month field", "\"L-3\"", "not supported");
    parse_err("0 0 15W * *", "the day-of-month field", "\"15W\" (the weekday nearest a day) is not supported", NULL);
    parse_err("0 0 1,15W * *", "the day-of-month field", "\"15W\"", "not supported");
    parse_err("0 0 * * 5L", "the day-of-week field", "\"5L\" (the last such weekday of the month) is not supported", NULL);
    parse_err("0 0 * * FRIL", "the day-of-week field", "\"FRIL\"", "not supported");
    parse_err("0 0 * * MON#2", "the day-of-week field", "\"MON#2\" (the nth weekday of the month) is not supported", NULL);
    parse_err("0 0 * * 5#2", "the day-of-week field", "\"5#2\"", "not supported");
    parse_err("CRON_TZ=Europe/Berlin 0 3 * * *", "\"timezone\" field", "CRON_TZ=Europe/Berlin", NULL);
    parse_err("TZ=America/New_York 0 9 * * *", "\"timezone\" field", "TZ=America/New_York", NULL);
    parse_err("cron_tz=UTC @daily", "\"timezone\" field", NULL, NULL);
    /* A backwards day-of-week range that ends on Sunday: 7 is Sunday too. */
    parse_err("0 0 * * SAT-SUN", "the day-of-week field", "runs backwards", "write 6-7 (7 is Sunday too)");
    parse_err("0 0 * * 5-0", "the day-of-week field", "write 5-7 (7 is Sunday too)", NULL);
    /* Still a stray character or an unknown name where it is one. */
    parse_err("0 0 * * LUN", "the day-of-week field", "unknown name \"LUN\"", NULL);
    parse_err("0 0 1L2 * *", "the day-of-month field", "unexpected", NULL);
    struct cron a = parse_ok("0 3 * * *\n");
    struct cron b = parse_ok("0 3 * * *");
    assert_same(&a, &b);
    a = parse_ok("\r\n 0 3 * * *\r\n");
    assert_same(&a, &b);
    a = parse_ok("@daily\n");
    b = parse_ok("0 0 * * *");
    assert_same(&a, &b);
}

static void long_numbers_and_long_expressions(void **state)
{
    (void)state;
    parse_err("0005 * * * *", "the minute field", "0005 has too many digits", "at most 3");
    parse_err("99999999999999999999999999 * * * *", "the minute field", "too many digits", NULL);
    parse_err("0 0 1-00031 * *", "the day-of-month field", "too many digits", NULL);
    char long_expr[CRON_EXPR_MAX + 2];
    memset(long_expr, ' ', sizeof long_expr);
    memcpy(long_expr, "0 0 * * *", 9);
    long_expr[CRON_EXPR_MAX + 1] = '\0';
    parse_err(long_expr, "longer than 200 bytes", NULL, NULL);
    char huge[4096];
    memset(huge, '1', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    parse_err(huge, "longer than 200 bytes", NULL, NULL);
}

static void expressions_that_never_fire(void **state)
{
    (void)state;
    parse_err("0 0 30 2 *", "the day-of-month field", "February has no day 30", "never fires");
    parse_err("0 0 31 2 ?", "February has no day 31", "1-29", NULL);
    parse_err("0 0 31 4,6,9,11 *", "the day-of-month field", "none of the chosen months has day 31",
              "1-30");
    parse_err("0 0 30-31 FEB *", "February has no day 30", NULL, NULL);
    /* These can fire. */
    parse_ok("0 0 29 2 *");
    parse_ok("0 0 30 2 MON"); /* every Monday in February */
    parse_ok("0 0 31 2,3 *");
    parse_ok("0 0 1,31 4 *");
}

/* ---- cron_next ---- */

static void next_across_boundaries(void **state)
{
    (void)state;
    expect_next("* * * * *", at(2025, 6, 1, 12, 0, 0), at(2025, 6, 1, 12, 1, 0));
    expect_next("* * * * *", at(2025, 6, 1, 12, 59, 30), at(2025, 6, 1, 13, 0, 0));
    expect_next("0 * * * *", at(2025, 6, 1, 12, 30, 0), at(2025, 6, 1, 13, 0, 0));
    expect_next("0 * * * *", at(2025, 6, 30, 23, 0, 0), at(2025, 7, 1, 0, 0, 0));
    expect_next("30 2 * * *", at(2025, 6, 1, 2, 31, 0), at(2025, 6, 2, 2, 30, 0));
    expect_next("0 0 * * *", at(2025, 12, 31, 23, 59, 59) + 999, at(2026, 1, 1, 0, 0, 0));
    expect_next("0 0 1 * *", at(2025, 1, 31, 12, 0, 0), at(2025, 2, 1, 0, 0, 0));
    expect_next("0 0 1 1 *", at(2025, 6, 1, 0, 0, 0), at(2026, 1, 1, 0, 0, 0));
    expect_next("59 23 31 12 *", at(2025, 12, 31, 23, 59, 0), at(2026, 12, 31, 23, 59, 0));
    expect_next("15 10 * 3 *", at(2025, 4, 1, 0, 0, 0), at(2026, 3, 1, 10, 15, 0));
    expect_next("0 9-17 * * MON-FRI", at(2025, 6, 6, 17, 0, 0), at(2025, 6, 9, 9, 0, 0));
    expect_next("@hourly", at(2025, 6, 1, 12, 0, 0) - 1, at(2025, 6, 1, 12, 0, 0));
    expect_next("@weekly", at(2025, 6, 1, 0, 0, 0), at(2025, 6, 8, 0, 0, 0));
    expect_next("0 0 * * 7", at(2025, 6, 2, 0, 0, 0), at(2025, 6, 8, 0, 0, 0));
    expect_next("@yearly", at(1970, 1, 1, 0, 0, 0), at(1971, 1, 1, 0, 0, 0));
    expect_next("* * * * *", 0, 60000);
}

static void leap_years(void **state)
{
    (void)state;
    expect_next("0 0 29 2 *", at(2025, 3, 1, 0, 0, 0), at(2028, 2, 29, 0, 0, 0));
    expect_next("0 0 29 2 *", at(2023, 6, 1, 0, 0, 0), at(2024, 2, 29, 0, 0, 0));
    expect_next("0 0 29 2 *", at(1999, 3, 1, 0, 0, 0), at(2000, 2, 29, 0, 0, 0)); /* 2000 is */
    expect_next("0 0 29 2 *", at(2099, 3, 1, 0, 0, 0), at(2104, 2, 29, 0, 0, 0)); /* 2100 is not */
    /* 2096 to 2104 is eight years, past the horizon. */
    expect_next("0 0 29 2 *", at(2096, 3, 1, 0, 0, 0), -1);
    expect_next("0 12 * * *", at(2100, 2, 28, 13, 0, 0), at(2100, 3, 1, 12, 0, 0));
    expect_next("0 12 * * *", at(2024, 2, 28, 13, 0, 0), at(2024, 2, 29, 12, 0, 0));
    expect_next("0 0 * 2 *", at(2100, 2, 28, 0, 0, 0), at(2101, 2, 1, 0, 0, 0));
    expect_next("0 0 */7 * *", at(2025, 2, 22, 0, 0, 0), at(2025, 3, 1, 0, 0, 0));
    expect_next("0 0 */7 * *", at(2024, 2, 22, 0, 0, 0), at(2024, 2, 29, 0, 0, 0));
    /* Day of week across a leap day: 2024-02-29 was a Thursday. */
    expect_next("0 0 * * THU", at(2024, 2, 23, 0, 0, 0), at(2024, 2, 29, 0, 0, 0));
    expect_next("0 0 * * FRI", at(2024, 2, 29, 0, 0, 0), at(2024, 3, 1, 0, 0, 0));
}

static void day_31_skips_short_months(void **state)
{
    (void)state;
    expect_next("0 0 31 * *", at(2025, 1, 31, 0, 0, 0), at(2025, 3, 31, 0, 0, 0));
    expect_next("0 0 31 * *", at(2025, 3, 31, 0, 0, 0), at(2025, 5, 31, 0, 0, 0));
    expect_next("0 0 31 * *", at(2025, 7, 31, 0, 0, 0), at(2025, 8, 31, 0, 0, 0));
    expect_next("0 0 31 * *", at(2025, 8, 31, 0, 0, 0), at(2025, 10, 31, 0, 0, 0));
    expect_next("0 0 31 * *", at(2025, 12, 31, 0, 0, 0), at(2026, 1, 31, 0, 0, 0));
    expect_next("0 0 30,31 * *", at(2025, 1, 31, 0, 0, 0), at(2025, 3, 30, 0, 0, 0));
    expect_next("0 0 31 4,5,6 *", at(2025, 1, 1, 0, 0, 0), at(2025, 5, 31, 0, 0, 0));
}

static void day_of_month_or_day_of_week(void **state)
{
    (void)state;
    /* Both restricted: either. 2025-06-01 is a Sunday. */
    expect_next("0 0 1 * MON", at(2025, 6, 1, 0, 0, 0), at(2025, 6, 2, 0, 0, 0));
    expect_next("0 0 1 * MON", at(2025, 6, 30, 0, 0, 0), at(2025, 7, 1, 0, 0, 0));
    expect_next("0 0 1 * MON", at(2025, 5, 31, 0, 0, 0), at(2025, 6, 1, 0, 0, 0));
    expect_next("0 0 13 * FRI", at(2025, 6, 1, 0, 0, 0), at(2025, 6, 6, 0, 0, 0));
    expect_next("0 0 13 * FRI", at(2025, 6, 9, 0, 0, 0), at(2025, 6, 13, 0, 0, 0));
    expect_next("0 0 1-31 * MON", at(2025, 6, 1, 0, 0, 0), at(2025, 6, 2, 0, 0, 0));
    expect_next("0 0 */2 * 0-6", at(2025, 6, 1, 0, 0, 0), at(2025, 6, 2, 0, 0, 0));
    expect_next("0 0 30 2 MON", at(2025, 2, 1, 0, 0, 0), at(2025, 2, 3, 0, 0, 0));
    /* One is * or ?: only the other counts. */
    expect_next("0 0 1 * *", at(2025, 6, 1, 0, 0, 0), at(2025, 7, 1, 0, 0, 0));
    expect_next("0 0 1 * ?", at(2025, 6, 1, 0, 0, 0), at(2025, 7, 1, 0, 0, 0));
    expect_next("0 0 * * MON", at(2025, 6, 2, 0, 0, 0), at(2025, 6, 9, 0, 0, 0));
    expect_next("0 0 ? * MON", at(2025, 6, 2, 0, 0, 0), at(2025, 6, 9, 0, 0, 0));
    /* The day of week in a month the month field picks. */
    expect_next("0 0 * FEB MON", at(2025, 3, 1, 0, 0, 0), at(2026, 2, 2, 0, 0, 0));
    expect_next("0 0 1 FEB MON", at(2025, 3, 1, 0, 0, 0), at(2026, 2, 1, 0, 0, 0));
}

static void steps_at_the_end_of_their_field(void **state)
{
    (void)state;
    expect_next("*/7 * * * *", at(2025, 6, 1, 12, 49, 0), at(2025, 6, 1, 12, 56, 0));
    expect_next("*/7 * * * *", at(2025, 6, 1, 12, 56, 0), at(2025, 6, 1, 13, 0, 0));
    expect_next("0 */7 * * *", at(2025, 6, 1, 21, 0, 0), at(2025, 6, 2, 0, 0, 0));
    expect_next("0 0 1 */5 *", at(2025, 11, 1, 0, 0, 0), at(2026, 1, 1, 0, 0, 0));
    expect_next("50/7 * * * *", at(2025, 6, 1, 12, 57, 0), at(2025, 6, 1, 13, 50, 0));
    expect_next("*/7 * * * * *", at(2025, 6, 1, 12, 0, 56), at(2025, 6, 1, 12, 1, 0));
}

static void six_fields_fire_on_seconds(void **state)
{
    (void)state;
    expect_next("*/5 * * * * *", at(2025, 6, 1, 12, 0, 3) + 500, at(2025, 6, 1, 12, 0, 5));
    expect_next("*/5 * * * * *", at(2025, 6, 1, 12, 0, 55), at(2025, 6, 1, 12, 1, 0));
    expect_next("* * * * * *", at(2025, 6, 1, 23, 59, 59), at(2025, 6, 2, 0, 0, 0));
    expect_next("30 59 23 31 12 *", at(2025, 12, 31, 23, 59, 30), at(2026, 12, 31, 23, 59, 30));
    expect_next("59 59 23 * * *", at(2025, 6, 1, 23, 59, 59) - 1, at(2025, 6, 1, 23, 59, 59));
    expect_next("10,20 */30 * * * *", at(2025, 6, 1, 12, 0, 20), at(2025, 6, 1, 12, 30, 10));
    expect_next("0 0 0 29 2 *", at(2025, 3, 1, 0, 0, 0), at(2028, 2, 29, 0, 0, 0));
}

static void strictly_after_and_milliseconds(void **state)
{
    (void)state;
    int64_t midnight = at(2025, 1, 1, 0, 0, 0);
    expect_next("0 0 * * *", midnight, at(2025, 1, 2, 0, 0, 0));
    expect_next("0 0 * * *", midnight - 1, midnight);
    expect_next("0 0 * * *", midnight + 1, at(2025, 1, 2, 0, 0, 0));
    expect_next("* * * * *", at(2025, 1, 1, 12, 0, 59) + 999, at(2025, 1, 1, 12, 1, 0));
    expect_next("* * * * *", at(2025, 1, 1, 12, 1, 0) + 1, at(2025, 1, 1, 12, 2, 0));
    expect_next("* * * * * *", at(2025, 1, 1, 12, 0, 0) + 1, at(2025, 1, 1, 12, 0, 1));
    expect_next("* * * * * *", at(2025, 1, 1, 12, 0, 0) + 999, at(2025, 1, 1, 12, 0, 1));
    /* Each answer, fed back, gives the next one. */
    struct cron c = parse_ok("0 */6 * * *");
    int64_t t = midnight;
    for (int i = 1; i <= 8; i++) {
        t = cron_next(&c, t);
        assert_int_equal(t, midnight + (int64_t)i * 6 * 3600 * 1000);
    }
}

static void never_and_out_of_range(void **state)
{
    (void)state;
    /* February 30th, built by hand as cron_parse refuses it: -1 after five
     * years of looking, month by month. */
    struct cron c = parse_ok("0 0 30 1 *");
    c.month = 1u << 2;
    assert_int_equal(cron_next(&c, at(2025, 1, 1, 0, 0, 0)), -1);
    c.month = (1u << 2) | (1u << 4) | (1u << 6) | (1u << 9) | (1u << 11);
    c.day = 1u << 31; /* 31st of February and the 30-day months */
    assert_int_equal(cron_next(&c, at(2025, 1, 1, 0, 0, 0)), -1);
    /* Empty sets, or only bits outside the field's range. */
    struct cron e = parse_ok("* * * * *");
    e.hour = 1u << 24;
    assert_int_equal(cron_next(&e, 0), -1);
    e = parse_ok("* * * * *");
    e.minute = 1ULL << 60;
    assert_int_equal(cron_next(&e, 0), -1);
    e = parse_ok("* * * * *");
    e.month = 1; /* bit 0: no month */
    assert_int_equal(cron_next(&e, 0), -1);
    e = parse_ok("0 0 * * MON");
    e.weekday = 1u << 7;
    assert_int_equal(cron_next(&e, 0), -1);
    e = parse_ok("0 0 1 * *");
    e.day = 1; /* bit 0: no day */
    assert_int_equal(cron_next(&e, 0), -1);
    /* Both restricted: one empty set leaves the other. */
    e = parse_ok("0 0 1 * MON");
    e.day = 0;
    assert_int_equal(cron_next(&e, at(2025, 6, 1, 0, 0, 0)), at(2025, 6, 2, 0, 0, 0));
    /* after_ms outside 0..CRON_AFTER_MAX_MS. */
    c = parse_ok("* * * * *");
    assert_int_equal(cron_next(&c, -1), -1);
    assert_int_equal(cron_next(&c, INT64_MIN), -1);
    assert_int_equal(cron_next(&c, CRON_AFTER_MAX_MS + 1), -1);
    assert_int_equal(cron_next(&c, INT64_MAX), -1);
    assert_int_equal(cron_next(&c, CRON_AFTER_MAX_MS), CRON_AFTER_MAX_MS + 1);
}

/* ---- cross-check against a slow scan ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void) /* xorshift64*: the same on every libc */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dULL;
}

static int rnd(int lo, int hi)
{
    return lo + (int)(rng() % (uint64_t)(hi - lo + 1));
}

struct gen_field {
    int min, max, last;
    const char *const *names;
    bool question;
};

static const char *const g_months[] = {"JAN", "feb", "Mar", "APR", "may", "Jun",
                                       "JUL", "aug", "SEP", "oct", "Nov", "DEC"};
static const char *const g_days[] = {"SUN", "mon", "Tue", "WED", "thu", "Fri", "SAT"};

static const struct gen_field gen_fields[6] = {
    {0, 59, 59, NULL, false}, {0, 59, 59, NULL, false},     {0, 23, 23, NULL, false},
    {1, 31, 31, NULL, true},  {1, 12, 12, g_months, false}, {0, 7, 6, g_days, true},
};

static void put_value(char **p, const struct gen_field *f, int v)
{
    if (f->names && v <= f->last && rnd(0, 2) == 0) /* 7 as SUN would be 0 */
        *p += sprintf(*p, "%s", f->names[v - f->min]);
    else
        *p += sprintf(*p, rnd(0, 5) == 0 ? "%02d" : "%d", v);
}

/* Writes a random valid field at *p; returns its bit set (7 not yet folded)
 * and whether it is exactly '*' or '?'. star_pct: how often a plain star. */
static uint64_t gen_field_text(char **p, const struct gen_field *f, int star_pct, bool *any)
{
    *any = false;
    if (rnd(0, 99) < star_pct) {
        *any = true;
        *(*p)++ = f->question && rnd(0, 3) == 0 ? '?' : '*';
        return bits(f->min, f->last, 1);
    }
    uint64_t b = 0;
    int items = rnd(1, 3);
    for (int i = 0; i < items; i++) {
        if (i) *(*p)++ = ',';
        int a = rnd(f->min, f->max), z = rnd(f->min, f->max), n = rnd(1, f->last - f->min);
        if (a > z) {
            int t = a;
            a = z, z = t;
        }
        switch (rnd(0, 5)) {
        case 0:
            put_value(p, f, a);
            b |= 1ULL << a;
            break;
        case 1:
            put_value(p, f, a);
            *(*p)++ = '-';
            put_value(p, f, z);
            b |= bits(a, z, 1);
            break;
        case 2:
            *p += sprintf(*p, "*/%d", n);
            b |= bits(f->min, f->last, n);
            break;
        case 3:
            put_value(p, f, a);
            *(*p)++ = '-';
            put_value(p, f, z);
            *p += sprintf(*p, "/%d", n);
            b |= bits(a, z, n);
            break;
        case 4:
            put_value(p, f, a);
            *p += sprintf(*p, "/%d", n);
            b |= bits(a, a > f->last ? a : f->last, n);
            break;
        default:
            *p += sprintf(*p, "%d-%d", a, a); /* a range of one */
            b |= 1ULL << a;
            break;
        }
    }
    return b;
}

/* Whether c fires at Unix second t (tm from libc's gmtime_r). */
static bool ref_fires(const struct cron *c, const struct tm *tm)
{
    if (!(c->second >> tm->tm_sec & 1) || !(c->minute >> tm->tm_min & 1) ||
        !(c->hour >> tm->tm_hour & 1) || !(c->month >> (tm->tm_mon + 1) & 1))
        return false;
    bool dom = c->day >> tm->tm_mday & 1, dow = c->weekday >> tm->tm_wday & 1;
    if (c->day_any && c->weekday_any) return true;
    if (c->day_any) return dow;
    if (c->weekday_any) return dom;
    return dom || dow;
}

/* The first fire strictly after after_ms and at most until_s, scanning
 * every second (step_s 1) or every minute on second 0 (step_s 60); -1 when
 * none. libc's gmtime_r runs once per day; the time of day is counted. */
static int64_t ref_next(const struct cron *c, int64_t after_ms, int64_t until_s, int step_s)
{
    int64_t t = after_ms / 1000 + 1;
    if (step_s == 60) t = (t + 59) / 60 * 60;
    struct tm tm;
    int64_t day_start = -1;
    for (; t <= until_s; t += step_s) {
        if (day_start < 0 || t - day_start >= 86400) {
            time_t tt = (time_t)t;
            gmtime_r(&tt, &tm);
            day_start = t - (tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec);
        }
        int sod = (int)(t - day_start);
        tm.tm_hour = sod / 3600;
        tm.tm_min = sod / 60 % 60;
        tm.tm_sec = sod % 60;
        if (ref_fires(c, &tm)) return t * 1000;
    }
    return -1;
}

static int64_t random_start(void)
{
    static const int special[][6] = {
        {2100, 2, 28, 23, 59, 59}, {2024, 2, 28, 23, 59, 59}, {2025, 12, 31, 23, 59, 59},
        {2025, 4, 30, 23, 59, 0},  {2000, 2, 29, 12, 0, 0},   {2025, 1, 31, 23, 59, 59},
    };
    int k = rnd(0, 9);
    if (k < (int)ARRAY_LEN(special)) {
        const int *s = special[k];
        return at(s[0], s[1], s[2], s[3], s[4], s[5]) + rnd(0, 1) * rnd(0, 999);
    }
    int64_t lo = at(2000, 1, 1, 0, 0, 0), hi = at(2110, 1, 1, 0, 0, 0);
    int64_t t = lo + (int64_t)(rng() % (uint64_t)(hi - lo));
    return rnd(0, 1) ? t : t / 60000 * 60000; /* on a minute, or with seconds and ms */
}

static void cross_check_with_a_slow_scan(void **state)
{
    (void)state;
    int checked = 0, fired = 0, never = 0;
    for (int round = 0; round < 600; round++) {
        bool six = round % 3 == 2;
        char expr[256], *p = expr;
        struct cron want = {0};
        uint64_t set[6];
        bool any[6];
        for (int i = six ? 0 : 1; i < 6; i++) {
            /* Seconds-level scans are short: keep their days mostly open. */
            int star = i >= 3 ? (six ? 70 : 45) : 25;
            if (p != expr) *p++ = ' ';
            set[i] = gen_field_text(&p, &gen_fields[i], star, &any[i]);
        }
        *p = '\0';
        if (!six) set[0] = 1, any[0] = false;
        if (set[5] >> 7 & 1) set[5] = (set[5] | 1) & 0x7f;
        want.second = set[0];
        want.minute = set[1];
        want.hour = (uint32_t)set[2];
        want.day = (uint32_t)set[3];
        want.month = (uint16_t)set[4];
        want.weekday = (uint8_t)set[5];
        want.day_any = any[3];
        want.weekday_any = any[5];

        struct cron c;
        char err[CRON_ERR_LEN];
        if (cron_parse(expr, &c, err) != 0) {
            /* Only a day the chosen months lack may be refused. */
            if (!strstr(err, "never fires")) fail_msg("\"%s\" refused: %s", expr, err);
            never++;
            continue;
        }
        if (c.second != want.second || c.minute != want.minute || c.hour != want.hour ||
            c.day != want.day || c.month != want.month || c.weekday != want.weekday ||
            c.day_any != want.day_any || c.weekday_any != want.weekday_any)
            fail_msg("\"%s\" parsed to other sets than written", expr);

        int64_t after = random_start();
        for (int query = 0; query < 3; query++) {
            int64_t horizon_s = after / 1000 + (six ? 3 * 86400 : 120 * 86400);
            int64_t got = cron_next(&c, after);
            int64_t ref = ref_next(&c, after, horizon_s, six ? 1 : 60);
            char b1[64], b2[64], b3[64];
            if (got >= 0 && got <= horizon_s * 1000 ? got != ref : ref != -1)
                fail_msg("\"%s\" after %s: cron_next %s, scan %s", expr, iso(after, b1),
                         iso(got, b2), iso(ref, b3));
            if (got >= 0) {
                /* Past the scan too, the answer is a fire time. */
                assert_int_equal(got % 1000, 0);
                assert_true(got > after);
                time_t tt = (time_t)(got / 1000);
                struct tm tm;
                gmtime_r(&tt, &tm);
                if (!ref_fires(&c, &tm)) fail_msg("\"%s\": %s does not fire", expr, iso(got, b1));
            }
            checked++;
            if (got < 0 || got > horizon_s * 1000) break;
            fired++;
            after = got; /* strictly after a fire time */
        }
    }
    print_message("cross-check: %d queries, %d fired within the scan, %d expressions refused "
                  "as never firing\n",
                  checked, fired, never);
    assert_true(fired > 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stars_are_every_value_and_any),
        cmocka_unit_test(single_values),
        cmocka_unit_test(ranges_steps_and_lists),
        cmocka_unit_test(names_any_case_and_sunday_as_7),
        cmocka_unit_test(blanks_six_fields_and_macros),
        cmocka_unit_test(wrong_field_counts_and_empty),
        cmocka_unit_test(empty_list_items),
        cmocka_unit_test(values_out_of_range),
        cmocka_unit_test(backwards_ranges),
        cmocka_unit_test(bad_steps),
        cmocka_unit_test(unknown_names),
        cmocka_unit_test(trailing_garbage_and_stray_characters),
        cmocka_unit_test(unsupported_forms_say_so),
        cmocka_unit_test(long_numbers_and_long_expressions),
        cmocka_unit_test(expressions_that_never_fire),
        cmocka_unit_test(next_across_boundaries),
        cmocka_unit_test(leap_years),
        cmocka_unit_test(day_31_skips_short_months),
        cmocka_unit_test(day_of_month_or_day_of_week),
        cmocka_unit_test(steps_at_the_end_of_their_field),
        cmocka_unit_test(six_fields_fire_on_seconds),
        cmocka_unit_test(strictly_after_and_milliseconds),
        cmocka_unit_test(never_and_out_of_range),
        cmocka_unit_test(cross_check_with_a_slow_scan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
