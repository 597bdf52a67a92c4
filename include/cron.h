/*
 * cron: cron expressions for recurring schedules. Parses an expression into
 * bit sets of the values each field fires on, and finds the next time it
 * fires. Pure: no allocation, no clock, no locale, no time zone; every time
 * is UTC. Safe to call from any thread.
 *
 * Syntax (the API docs carry the same rules):
 *
 *   [second] minute hour day-of-month month day-of-week
 *
 * Five fields, or six with a leading second field (five fields fire at
 * second 0). Fields are separated by one or more spaces or tabs; blanks
 * and line breaks before and after the expression are ignored, a control
 * character inside it is refused. At most CRON_EXPR_MAX bytes.
 *
 *   field          values
 *   second         0-59
 *   minute         0-59
 *   hour           0-23
 *   day-of-month   1-31
 *   month          1-12 or JAN-DEC
 *   day-of-week    0-7 or SUN-SAT (0 and 7 are both Sunday)
 *
 * Each field is a comma-separated list of items; an item is
 *   *        every value of the field
 *   a        one value
 *   a-b      a range, a <= b (no wrapping: write 22-23,0-2)
 *   a-b/n    every n-th value from a to b
 *   a/n      every n-th value from a to the field's last (59, 23, 31, 12,
 *            SAT)
 * and a star with a step, every n-th value from the field's first (the
 * characters star, slash, n: "*" "/15" in the minute field is 0,15,30,45).
 * Steps run 1 to the field's span (59, 23, 30, 11, 6). Names are three
 * letters, any case, and serve as values and range ends. `?` means `*` in the
 * day-of-month and day-of-week fields only, and stands alone. Numbers have at most
 * CRON_DIGITS_MAX digits.
 *
 * Macros: @yearly and @annually (0 0 1 1 *), @monthly (0 0 1 * *), @weekly
 * (0 0 * * 0), @daily and @midnight (0 0 * * *), @hourly (0 * * * *); any
 * case.
 *
 * Day of month and day of week: when both are restricted (neither is
 * exactly `*` or `?`), a day fires when EITHER matches, as in Vixie cron and
 * POSIX: "0 0 1 * MON" fires on the 1st and on every Monday. When one of them
 * is `*` or `?`, only the other counts. Any other field, a stepped star or
 * 1-31 too, is restricted and counts for the OR.
 *
 * Not supported, and refused naming what they are: a time zone prefix
 * (CRON_TZ=..., TZ=...), Quartz's L, LW, L-n and nW in day-of-month, nL and
 * x#n in day-of-week.
 *
 * Expressions that can never fire are refused by cron_parse, which knows
 * month lengths: "0 0 30 2 *" (February 30th) and "0 0 31 4,6 *" are errors.
 * February 29th is accepted (it fires in leap years).
 */
#ifndef AQ_CRON_H
#define AQ_CRON_H

#include <stdbool.h>
#include <stdint.h>

#define CRON_ERR_LEN 160
#define CRON_EXPR_MAX 200 /* bytes, blanks included */
#define CRON_DIGITS_MAX 3 /* per number: "007" passes, "0007" does not */
/* cron_next looks this far ahead before it answers -1. */
#define CRON_HORIZON_YEARS 5
/* The latest after_ms cron_next takes: 9999-12-31T23:59:59.999Z. */
#define CRON_AFTER_MAX_MS 253402300799999LL

/* Which values of each field fire, as bit sets. */
struct cron {
    uint64_t second;           /* bits 0..59 */
    uint64_t minute;           /* bits 0..59 */
    uint32_t hour;             /* bits 0..23 */
    uint32_t day;              /* day of month, bits 1..31 */
    uint16_t month;            /* bits 1..12 */
    uint8_t weekday;           /* bits 0..6, 0 = Sunday (7 is folded into 0) */
    bool day_any, weekday_any; /* the field was exactly '*' (or '?') */
};

/* Parses expr (borrowed, NUL-terminated) into *out. Returns 0, or -1 with
 * err (CRON_ERR_LEN bytes, may be NULL) set to one sentence saying what is
 * wrong and what to write instead, naming the field ("the hour field: 24 is
 * out of range 0-23"). *out is fully written on success, unspecified on
 * failure. Refuses expressions that can never fire (see above). */
int cron_parse(const char *expr, struct cron *out, char err[CRON_ERR_LEN]);

/* The first time c fires strictly after after_ms (Unix milliseconds, UTC),
 * in Unix milliseconds (always a whole second). -1 when it does not fire
 * within CRON_HORIZON_YEARS after after_ms (of what cron_parse accepts,
 * only February 29th without a day of week does that: from March 2096, as
 * 2100 is no leap year), when a set of c is empty, or when after_ms is
 * outside 0..CRON_AFTER_MAX_MS. Bits outside a field's range are
 * ignored. Constant time: at most a few hundred steps whatever c is, as it
 * jumps month to month and day to day rather than scanning. */
int64_t cron_next(const struct cron *c, int64_t after_ms);

#endif
