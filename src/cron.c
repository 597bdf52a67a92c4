/*
 * cron: parsing cron expressions into bit sets and finding the next fire
 * time by calendar arithmetic (days from civil dates, no time zone, no libc
 * time functions), jumping to the next chosen month, day, hour, minute and
 * second instead of scanning.
 */
#include "cron.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util.h" /* the calendar */

/* ---- parsing ---- */

struct field {
    const char *name;
    int min, max;             /* the values a number may take */
    int last;                 /* where '*' and a/n end (day-of-week: 6, max is 7) */
    const char *const *names; /* three-letter names of min.., or NULL */
    const char *names_hint;   /* "JAN-DEC" */
    bool question;            /* '?' means '*' */
};

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const weekday_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};
static const char *const month_long[] = {"",        "January",  "February", "March",  "April",
                                         "May",     "June",     "July",     "August", "September",
                                         "October", "November", "December"};

enum { F_SECOND, F_MINUTE, F_HOUR, F_DAY, F_MONTH, F_WEEKDAY, F_COUNT };

static const struct field fields[F_COUNT] = {
    [F_SECOND] = {"second", 0, 59, 59, NULL, NULL, false},
    [F_MINUTE] = {"minute", 0, 59, 59, NULL, NULL, false},
    [F_HOUR] = {"hour", 0, 23, 23, NULL, NULL, false},
    [F_DAY] = {"day-of-month", 1, 31, 31, NULL, NULL, true},
    [F_MONTH] = {"month", 1, 12, 12, month_names, "JAN-DEC", false},
    [F_WEEKDAY] = {"day-of-week", 0, 7, 6, weekday_names, "SUN-SAT", true},
};

#define CRON_FIELDS_HINT "minute hour day-of-month month day-of-week"

__attribute__((format(printf, 2, 3))) static int fail(char *err, const char *fmt, ...)
{
    if (!err) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, CRON_ERR_LEN, fmt, ap);
    va_end(ap);
    return -1;
}

static bool is_blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* Trimmed from the ends with the blanks: an expression pasted from a file
 * or a YAML block ends with a line break. */
static bool is_space(char ch)
{
    return is_blank(ch) || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

static bool all_digits(const char *s, const char *end)
{
    if (s == end) return false;
    for (; s < end; s++)
        if (!isdigit((unsigned char)*s)) return false;
    return true;
}

/* Refuses an item in a form other crons take (Quartz's L, W and #) as not
 * supported, rather than as a stray character; 0 when it is none. */
static int refuse_quartz(const struct field *f, const char *s, const char *end, char *err)
{
    size_t n = (size_t)(end - s);
    const char *what = NULL;
    if (f == &fields[F_DAY]) {
        if ((n == 1 && toupper((unsigned char)*s) == 'L') ||
            (n > 2 && toupper((unsigned char)*s) == 'L' && s[1] == '-' && all_digits(s + 2, end)))
            what = "the last day of the month";
        else if (n == 2 && !strncasecmp(s, "LW", 2))
            what = "the last weekday of the month";
        else if (n > 1 && toupper((unsigned char)end[-1]) == 'W' && all_digits(s, end - 1))
            what = "the weekday nearest a day";
    } else if (f == &fields[F_WEEKDAY]) {
        if (memchr(s, '#', n))
            what = "the nth weekday of the month";
        else if (n > 1 && toupper((unsigned char)end[-1]) == 'L' &&
                 (all_digits(s, end - 1) || (n == 4 && isalpha((unsigned char)s[0]) &&
                                             isalpha((unsigned char)s[1]) && isalpha((unsigned char)s[2]))))
            what = "the last such weekday of the month";
    }
    if (!what) return 0;
    return fail(err,
                "the %s field: \"%.*s\" (%s) is not supported; write values, ranges a-b, "
                "steps /n and commas",
                f->name, (int)(n > 20 ? 20 : n), s, what);
}

/* Reads a number of at most CRON_DIGITS_MAX digits at *p (before end). */
static int read_number(const struct field *f, const char **p, const char *end, int *out, char *err)
{
    const char *s = *p;
    int n = 0, v = 0;
    while (s + n < end && isdigit((unsigned char)s[n])) {
        if (n < CRON_DIGITS_MAX) v = v * 10 + (s[n] - '0');
        n++;
    }
    if (n > CRON_DIGITS_MAX)
        return fail(err, "the %s field: the number %.*s has too many digits; write at most %d",
                    f->name, n > 20 ? 20 : n, s, CRON_DIGITS_MAX);
    *p = s + n;
    *out = v;
    return 0;
}

/* Reads a value: a number in the field's range or, where allowed, a name. */
static int read_value(const struct field *f, const char **p, const char *end, int *out, char *err)
{
    const char *s = *p;
    if (s < end && isdigit((unsigned char)*s)) {
        if (read_number(f, p, end, out, err) < 0) return -1;
        if (*out < f->min || *out > f->max) {
            if (f->names)
                return fail(err, "the %s field: %d is out of range %d-%d; write %d-%d or %s",
                            f->name, *out, f->min, f->max, f->min, f->max, f->names_hint);
            return fail(err, "the %s field: %d is out of range %d-%d", f->name, *out, f->min,
                        f->max);
        }
        return 0;
    }
    if (s < end && isalpha((unsigned char)*s)) {
        int n = 0;
        while (s + n < end && isalpha((unsigned char)s[n]))
            n++;
        int shown = n > 20 ? 20 : n;
        if (!f->names)
            return fail(err, "the %s field: \"%.*s\" is not a number; write a number %d-%d",
                        f->name, shown, s, f->min, f->max);
        int count = f->max - f->min + 1 - (f->max != f->last); /* 7 weekday names for 0-7 */
        for (int i = 0; n == 3 && i < count; i++) {
            if (strncasecmp(s, f->names[i], 3) == 0) {
                *out = f->min + i;
                *p = s + n;
                return 0;
            }
        }
        return fail(err, "the %s field: unknown name \"%.*s\"; write %s or %d-%d", f->name, shown,
                    s, f->names_hint, f->min, f->max);
    }
    return fail(err,
                "the %s field: unexpected \"%c\"; write numbers %d-%d, ranges a-b, steps /n "
                "and commas",
                f->name, *s, f->min, f->max);
}

/* Parses one comma-separated item [s, end) into *bits. */
static int parse_item(const struct field *f, const char *s, const char *end, uint64_t *bits,
                      char *err)
{
    const char *p = s;
    int lo = 0, hi = 0, step = 1;
    bool single = false;
    int shown = (int)(end - s > 24 ? 24 : end - s);
    if (p == end)
        return fail(err,
                    "the %s field: an item of its list is empty; separate values with single "
                    "commas, as in 1,5,10",
                    f->name);
    if (refuse_quartz(f, s, end, err) < 0) return -1;
    if (*p == '*' || *p == '?') {
        if (*p == '?' && !f->question)
            return fail(err,
                        "the %s field: '?' is only for the day-of-month and day-of-week "
                        "fields; write * instead",
                        f->name);
        lo = f->min;
        hi = f->last;
        p++;
    } else {
        if (read_value(f, &p, end, &lo, err) < 0) return -1;
        hi = lo;
        single = true;
        if (p < end && *p == '-') {
            p++;
            if (p == end)
                return fail(err,
                            "the %s field: the range \"%.*s\" has no end; write a-b, as in "
                            "%d-%d",
                            f->name, shown, s, f->min, f->last);
            if (read_value(f, &p, end, &hi, err) < 0) return -1;
            single = false;
            if (lo > hi && f == &fields[F_WEEKDAY] && hi == 0)
                return fail(err,
                            "the %s field: the range %d-%d runs backwards (%d > %d); write "
                            "%d-7 (7 is Sunday too)",
                            f->name, lo, hi, lo, hi, lo);
            if (lo > hi && lo <= f->last)
                return fail(err,
                            "the %s field: the range %d-%d runs backwards (%d > %d); write "
                            "it low to high, as in %d-%d,%d-%d to wrap around",
                            f->name, lo, hi, lo, hi, lo, f->last, f->min, hi);
            if (lo > hi)
                return fail(err,
                            "the %s field: the range %d-%d runs backwards (%d > %d); write "
                            "it low to high",
                            f->name, lo, hi, lo, hi);
        }
    }
    if (p < end && *p == '/') {
        p++;
        if (p == end || !isdigit((unsigned char)*p))
            return fail(err,
                        "the %s field: \"%.*s\" has no step after /; write a number, as in "
                        "*/5",
                        f->name, shown, s);
        if (read_number(f, &p, end, &step, err) < 0) return -1;
        if (step < 1 || step > f->last - f->min)
            return fail(err, "the %s field: the step %d is out of range 1-%d", f->name, step,
                        f->last - f->min);
        if (single && hi < f->last) hi = f->last;
    }
    if (p != end)
        return fail(err,
                    "the %s field: unexpected \"%.*s\" in \"%.*s\"; write values, ranges a-b "
                    "and steps /n separated by commas",
                    f->name, (int)(end - p > 20 ? 20 : end - p), p, shown, s);
    for (int v = lo; v <= hi; v += step)
        *bits |= 1ULL << v;
    return 0;
}

/* Parses field [s, end); *any says it was exactly '*' or '?'. */
static int parse_field(const struct field *f, const char *s, const char *end, uint64_t *bits,
                       bool *any, char *err)
{
    *bits = 0;
    *any = end - s == 1 && (*s == '*' || (*s == '?' && f->question));
    if (f->question && end - s > 1 && memchr(s, '?', (size_t)(end - s)))
        return fail(err, "the %s field: '?' stands alone; write ? or a list without it", f->name);
    for (const char *p = s;; p++) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *item_end = comma ? comma : end;
        if (parse_item(f, p, item_end, bits, err) < 0) return -1;
        if (!comma) return 0;
        p = comma;
    }
}

struct macro {
    const char *name;
    const char *expr;
};

static const struct macro macros[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

/* Whether some chosen day exists in some chosen month, when only the
 * day of month decides; names the impossible day otherwise. */
static int check_fires(const struct cron *c, char *err)
{
    if (c->day_any || !c->weekday_any) return 0;
    int longest = 0, longest_month = 0, first_day = 0, months = 0;
    for (int m = 1; m <= 12; m++) {
        if (!(c->month >> m & 1)) continue;
        months++;
        int len = m == 2 ? 29 : util_days_in_month(1, m);
        if (len > longest) longest = len, longest_month = m;
    }
    for (int d = 1; d <= 31; d++) {
        if (!(c->day >> d & 1)) continue;
        if (d <= longest) return 0;
        if (!first_day) first_day = d;
    }
    if (months == 1)
        return fail(err,
                    "the day-of-month field: %s has no day %d, so the expression never "
                    "fires; choose days 1-%d",
                    month_long[longest_month], first_day, longest);
    return fail(err,
                "the day-of-month field: none of the chosen months has day %d (the longest "
                "has %d days), so the expression never fires; choose days 1-%d",
                first_day, longest, longest);
}

int cron_parse(const char *expr, struct cron *out, char err[CRON_ERR_LEN])
{
    if (!expr) return fail(err, "the expression is missing; write 5 fields (" CRON_FIELDS_HINT ")");
    size_t len = strnlen(expr, CRON_EXPR_MAX + 1);
    if (len > CRON_EXPR_MAX)
        return fail(err,
                    "the expression is longer than %d bytes; write 5 or 6 fields, or a "
                    "macro such as @daily",
                    CRON_EXPR_MAX);
    const char *s = expr, *end = expr + len;
    while (s < end && is_space(*s))
        s++;
    while (end > s && is_space(end[-1]))
        end--;
    for (const char *p = s; p < end; p++)
        if (iscntrl((unsigned char)*p) && *p != '\t')
            return fail(err, "the expression has a line break or another control character "
                             "inside; write it on one line, its fields separated by spaces");
    if (s == end)
        return fail(err, "the expression is empty; write 5 fields (" CRON_FIELDS_HINT
                         "), as in */5 * * * *, or a macro such as @daily");
    if (!strncasecmp(s, "CRON_TZ=", 8) || !strncasecmp(s, "TZ=", 3)) {
        const char *word_end = s;
        while (word_end < end && !is_blank(*word_end))
            word_end++;
        int n = (int)(word_end - s);
        return fail(err,
                    "the time zone goes in the schedule's \"timezone\" field, not in the "
                    "expression: drop \"%.*s\"",
                    n > 48 ? 48 : n, s);
    }
    if (*s == '@') {
        const char *word_end = s;
        while (word_end < end && !is_blank(*word_end))
            word_end++;
        size_t n = (size_t)(word_end - s);
        if (word_end != end) {
            const char *extra = word_end;
            while (is_blank(*extra))
                extra++;
            return fail(err, "unexpected \"%.*s\" after the macro %.*s; a macro stands alone",
                        (int)(end - extra > 20 ? 20 : end - extra), extra, (int)(n > 20 ? 20 : n),
                        s);
        }
        for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++)
            if (strlen(macros[i].name) == n && strncasecmp(s, macros[i].name, n) == 0)
                return cron_parse(macros[i].expr, out, err);
        return fail(err,
                    "unknown macro \"%.*s\"; write @yearly, @annually, @monthly, @weekly, "
                    "@daily, @midnight or @hourly",
                    (int)(n > 20 ? 20 : n), s);
    }

    const char *starts[F_COUNT], *ends[F_COUNT];
    int count = 0;
    for (const char *p = s; p < end;) {
        const char *q = p;
        while (q < end && !is_blank(*q))
            q++;
        if (count < F_COUNT) starts[count] = p, ends[count] = q;
        count++;
        while (q < end && is_blank(*q))
            q++;
        p = q;
    }
    if (count != 5 && count != 6)
        return fail(err,
                    "the expression has %d field%s; write 5 (" CRON_FIELDS_HINT
                    ") or 6 with a leading second",
                    count, count == 1 ? "" : "s");

    struct cron c = {0};
    uint64_t bits[F_COUNT] = {0};
    bool any[F_COUNT] = {false};
    int first = count == 6 ? F_SECOND : F_MINUTE;
    bits[F_SECOND] = 1; /* five fields fire at second 0 */
    for (int i = first; i < F_COUNT; i++) {
        int at = i - first;
        if (parse_field(&fields[i], starts[at], ends[at], &bits[i], &any[i], err) < 0) return -1;
    }
    if (bits[F_WEEKDAY] >> 7 & 1) bits[F_WEEKDAY] = (bits[F_WEEKDAY] | 1) & 0x7f;
    c.second = bits[F_SECOND];
    c.minute = bits[F_MINUTE];
    c.hour = (uint32_t)bits[F_HOUR];
    c.day = (uint32_t)bits[F_DAY];
    c.month = (uint16_t)bits[F_MONTH];
    c.weekday = (uint8_t)bits[F_WEEKDAY];
    c.day_any = any[F_DAY];
    c.weekday_any = any[F_WEEKDAY];
    if (check_fires(&c, err) < 0) return -1;
    *out = c;
    if (err) err[0] = '\0';
    return 0;
}

/* ---- the next fire time ---- */

/* Far more than the worst case: two steps per chosen month that lacks the
 * chosen days (one finds no day, the next jumps to the next chosen month),
 * at most five such months a year for five years, plus a few for the time
 * of day. The 31st in the five months without one takes 52. */
#define CRON_STEPS_MAX 400

#define BITS_0_59 ((1ULL << 60) - 1)

/* The smallest value in from..last whose bit is set in mask, or -1. */
static int next_bit(uint64_t mask, int from, int last)
{
    if (from > last) return -1;
    mask &= (1ULL << (last + 1)) - 1;
    mask >>= from;
    return mask ? from + __builtin_ctzll(mask) : -1;
}

/* The first day from d on in month m of year y that fires, or -1. */
static int next_day(const struct cron *c, int64_t y, int m, int d)
{
    int len = util_days_in_month(y, m);
    int by_day = -1, by_weekday = -1;
    if (c->day_any && c->weekday_any) return d;
    if (!c->day_any) by_day = next_bit(c->day, d, len);
    if (!c->weekday_any) {
        int wd = util_weekday(util_days_from_civil(y, m, d));
        for (int k = 0; k < 7 && d + k <= len; k++) {
            if (c->weekday >> ((wd + k) % 7) & 1) {
                by_weekday = d + k;
                break;
            }
        }
    }
    if (c->day_any) return by_weekday;
    if (c->weekday_any) return by_day;
    if (by_day < 0) return by_weekday;
    if (by_weekday < 0) return by_day;
    return by_day < by_weekday ? by_day : by_weekday;
}

int64_t cron_next(const struct cron *c, int64_t after_ms)
{
    if (after_ms < 0 || after_ms > CRON_AFTER_MAX_MS) return -1;
    if (!(c->second & BITS_0_59) || !(c->minute & BITS_0_59) || !(c->hour & 0xffffffu) ||
        !(c->month & 0x1ffe))
        return -1;
    bool by_day = c->day_any || (c->day & 0xfffffffeu),
         by_weekday = c->weekday_any || (c->weekday & 0x7f);
    if (c->day_any ? !by_weekday : c->weekday_any ? !by_day : !by_day && !by_weekday) return -1;

    int64_t t = after_ms / 1000 + 1; /* after_ms >= 0: the division floors */
    int64_t days = t / 86400;
    int sod = (int)(t % 86400);
    int64_t y;
    int m, d;
    util_civil_from_days(days, &y, &m, &d);
    int hh = sod / 3600, mm = sod / 60 % 60, ss = sod % 60;
    int limit_d =
        d > util_days_in_month(y + CRON_HORIZON_YEARS, m) ? util_days_in_month(y + CRON_HORIZON_YEARS, m) : d;
    int64_t limit = util_days_from_civil(y + CRON_HORIZON_YEARS, m, limit_d);

    for (int step = 0; step < CRON_STEPS_MAX; step++) {
        if (util_days_from_civil(y, m, d) > limit) return -1;
        if (!(c->month >> m & 1)) {
            int nm = next_bit(c->month, m + 1, 12);
            if (nm < 0) {
                y++;
                nm = next_bit(c->month, 1, 12);
            }
            m = nm, d = 1, hh = mm = ss = 0;
            continue;
        }
        int nd = next_day(c, y, m, d);
        if (nd < 0) {
            if (++m > 12) m = 1, y++;
            d = 1, hh = mm = ss = 0;
            continue;
        }
        if (nd != d) d = nd, hh = mm = ss = 0;
        int nh = next_bit(c->hour, hh, 23);
        if (nh != hh) mm = ss = 0;
        int nmin = nh < 0 ? -1 : next_bit(c->minute, mm, 59);
        if (nmin != mm) ss = 0;
        int ns = nmin < 0 ? -1 : next_bit(c->second, ss, 59);
        if (ns >= 0) return (util_days_from_civil(y, m, d) * 86400 + nh * 3600 + nmin * 60 + ns) * 1000;
        /* Carry into the unit above the one that ran out. */
        if (nh >= 0 && nmin >= 0 && nmin < 59) {
            hh = nh, mm = nmin + 1, ss = 0;
        } else if (nh >= 0 && nh < 23) {
            hh = nh + 1, mm = ss = 0;
        } else {
            hh = mm = ss = 0;
            if (++d > util_days_in_month(y, m)) {
                d = 1;
                if (++m > 12) m = 1, y++;
            }
        }
    }
    return -1;
}
