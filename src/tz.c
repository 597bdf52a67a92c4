/*
 * tz: owns reading TZif files and POSIX TZ strings into an immutable zone
 * (a sorted table of transitions and the footer's rule for the time after
 * them), the UTC offset at an instant, and cron in local time. Pure
 * calendar arithmetic on 64-bit seconds; no libc time-zone function.
 *
 * A zone is cut into segments: the stretches between two transitions, each
 * with one offset. tz_cron_next walks them from the time asked about,
 * running cron_next once on each segment's local times (and once more on a
 * gap where clocks go forward), so its cost grows with the offset changes
 * it passes, not with the time it covers.
 */
#include "tz.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

/* RFC 8536: offsets from -24:59:59 to 25:59:59. */
#define OFFSET_MIN (-89999)
#define OFFSET_MAX 93599
/* Rule times from -167 to 167 hours (RFC 8536 section 3.3.1). */
#define RULE_HOURS_MAX 167
/* A zone name or abbreviation in a TZ string: at most this many bytes. */
#define ABBR_MAX 32
/* tz_cron_next gives up (-1) after this many segments: about three offset
 * changes a year for CRON_HORIZON_YEARS is under 20; only a crafted file
 * with a transition every few minutes comes near. */
#define SEGMENTS_MAX 1000
/* rule_segment reads instants beyond about 35 million years as that far:
 * no arithmetic overflows, and no answer there matters. */
#define RULE_T_MAX (1LL << 50)
/* cron is the same every 400 Gregorian years (146097 days, whole weeks). */
#define CYCLE_MS (146097LL * 86400 * 1000)
#define NEVER INT64_MIN

/* A date of a rule: Jn (1-365, February 29th never counted), n (0-365,
 * counted) or Mm.w.d (day d of week w of month m; week 5 is the last). */
enum rule_kind { RULE_JULIAN1, RULE_JULIAN0, RULE_MONTH };

struct rule_date {
    enum rule_kind kind;
    int day;        /* Jn, n: n; Mm.w.d: d (0 = Sunday) */
    int month;      /* Mm.w.d: m */
    int week;       /* Mm.w.d: w */
    int32_t time_s; /* local time of day of the change, -167h..167h */
};

/* A POSIX TZ string. Offsets are local minus UTC (east positive), the
 * opposite sign of the string's. */
struct rule {
    int32_t std_off, dst_off;
    bool has_dst;
    struct rule_date start, end; /* start in standard time, end in DST */
};

struct tz {
    char name[TZ_RULE_MAX + 1];
    size_t count;      /* transitions */
    int64_t *at;       /* count times, ascending, Unix seconds */
    int32_t *off;      /* count offsets, each from at[i] on */
    int32_t off_first; /* before at[0], or everywhere without transitions or rule */
    bool has_rule;     /* after at[count - 1] (or everywhere), rule decides */
    struct rule rule;
};

/* A stretch of time with one offset: [start, end) in Unix seconds. */
struct segment {
    bool has_start;        /* false: from the beginning of time */
    int64_t start, end;    /* end INT64_MAX: for ever */
    int32_t off, prev_off; /* prev_off: just before start (off when !has_start) */
};

__attribute__((format(printf, 2, 3))) static int fail(char *err, const char *fmt, ...)
{
    if (!err) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, TZ_ERR_LEN, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- arithmetic (the calendar is util.h's) ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* ---- POSIX TZ strings ---- */

/* Reads a zone abbreviation: three or more letters, or <...> of letters,
 * digits, '+' and '-'. */
static int read_abbr(const char **p, const char *what, char *err)
{
    const char *s = *p;
    size_t n = 0;
    if (*s == '<') {
        s++;
        while ((s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= 'a' && s[n] <= 'z') ||
               (s[n] >= '0' && s[n] <= '9') || s[n] == '+' || s[n] == '-')
            n++;
        if (s[n] != '>')
            return fail(err,
                        "the %s name: a <quoted> name holds only letters, digits, + and -, "
                        "and ends with >",
                        what);
        if (n < 3 || n > ABBR_MAX)
            return fail(err, "the %s name: it has %zu characters; write 3 to %d", what, n,
                        ABBR_MAX);
        *p = s + n + 1;
        return 0;
    }
    while ((s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= 'a' && s[n] <= 'z'))
        n++;
    if (n < 3 || n > ABBR_MAX)
        return fail(err, "the %s name: expected 3 to %d letters or a <quoted> name at \"%.12s\"",
                    what, ABBR_MAX, s);
    *p = s + n;
    return 0;
}

/* Reads [+-]h[h...][:mm[:ss]] with hours 0..max_h and returns the signed
 * seconds in *out. */
static int read_hms(const char **p, int max_h, bool sign_ok, const char *what, int32_t *out,
                    char *err)
{
    const char *s = *p;
    int sign = 1;
    if (*s == '+' || *s == '-') {
        if (!sign_ok) return fail(err, "the %s: a sign is not allowed here", what);
        sign = *s == '-' ? -1 : 1;
        s++;
    }
    int part[3] = {0, 0, 0}, parts = 0;
    for (; parts < 3; parts++) {
        if (parts && *s != ':') break;
        if (parts) s++;
        int digits = 0, v = 0;
        while (*s >= '0' && *s <= '9' && digits < 4) {
            v = v * 10 + (*s++ - '0');
            digits++;
        }
        int max_digits = parts ? 2 : (max_h > 99 ? 3 : 2);
        if (digits == 0 || digits > max_digits || (*s >= '0' && *s <= '9'))
            return fail(err, "the %s: expected %s at \"%.12s\"", what,
                        parts ? "two digits after ':'" : "hours", *p);
        part[parts] = v;
    }
    if (part[0] > max_h || part[1] > 59 || part[2] > 59)
        return fail(err, "the %s is out of range: hours 0-%d, minutes and seconds 0-59", what,
                    max_h);
    *out = sign * (part[0] * 3600 + part[1] * 60 + part[2]);
    *p = s;
    return 0;
}

static int read_int(const char **p, int lo, int hi, int *out)
{
    const char *s = *p;
    int v = 0, digits = 0;
    while (*s >= '0' && *s <= '9' && digits < 4) {
        v = v * 10 + (*s++ - '0');
        digits++;
    }
    if (digits == 0 || (*s >= '0' && *s <= '9') || v < lo || v > hi) return -1;
    *out = v;
    *p = s;
    return 0;
}

static int read_rule_date(const char **p, struct rule_date *d, const char *what, char *err)
{
    const char *s = *p;
    if (*s == 'M') {
        s++;
        d->kind = RULE_MONTH;
        if (read_int(&s, 1, 12, &d->month) < 0 || *s++ != '.' || read_int(&s, 1, 5, &d->week) < 0 ||
            *s++ != '.' || read_int(&s, 0, 6, &d->day) < 0)
            return fail(err,
                        "the %s rule: expected Mm.w.d (month 1-12, week 1-5, day 0-6) at "
                        "\"%.16s\"",
                        what, *p);
    } else if (*s == 'J') {
        s++;
        d->kind = RULE_JULIAN1;
        if (read_int(&s, 1, 365, &d->day) < 0)
            return fail(err, "the %s rule: expected Jn with n 1-365 at \"%.16s\"", what, *p);
    } else {
        d->kind = RULE_JULIAN0;
        if (read_int(&s, 0, 365, &d->day) < 0)
            return fail(err, "the %s rule: expected Mm.w.d, Jn or n (0-365) at \"%.16s\"", what,
                        *p);
    }
    d->time_s = 7200; /* 02:00 when no /time */
    if (*s == '/') {
        s++;
        char label[32];
        snprintf(label, sizeof label, "%s time", what);
        if (read_hms(&s, RULE_HOURS_MAX, true, label, &d->time_s, err) < 0) return -1;
    }
    *p = s;
    return 0;
}

static int rule_parse(const char *str, struct rule *r, char *err)
{
    const char *s = str;
    int32_t v = 0;
    memset(r, 0, sizeof *r);
    if (strnlen(str, TZ_RULE_MAX + 1) > TZ_RULE_MAX)
        return fail(err, "the TZ string is longer than %d bytes", TZ_RULE_MAX);
    if (read_abbr(&s, "standard time", err) < 0) return -1;
    if (read_hms(&s, 24, true, "standard offset", &v, err) < 0) return -1;
    r->std_off = -v;
    if (*s == '\0') {
        r->dst_off = r->std_off;
        return 0;
    }
    if (read_abbr(&s, "daylight-saving time", err) < 0) return -1;
    r->has_dst = true;
    r->dst_off = r->std_off + 3600;
    if (*s != ',' && *s != '\0') {
        if (read_hms(&s, 24, true, "daylight-saving offset", &v, err) < 0) return -1;
        r->dst_off = -v;
    }
    if (*s != ',')
        return fail(err, "%s: a daylight-saving time needs a rule, as in ,M3.5.0,M10.5.0/3",
                    *s ? "unexpected text after the daylight-saving offset" : "no rule");
    s++;
    if (read_rule_date(&s, &r->start, "start", err) < 0) return -1;
    if (*s == '\0')
        return fail(err, "the rule has no end date; write ,start,end as in ,M3.5.0,M10.5.0/3");
    if (*s++ != ',') return fail(err, "unexpected \"%.12s\" after the start date", s - 1);
    if (read_rule_date(&s, &r->end, "end", err) < 0) return -1;
    if (*s != '\0') return fail(err, "unexpected \"%.12s\" after the rule", s);
    return 0;
}

/* Unix seconds of date d in year y at local time d->time_s, for a local
 * time offset off. */
static int64_t rule_instant(const struct rule_date *d, int64_t y, int32_t off)
{
    int64_t day;
    if (d->kind == RULE_JULIAN1) {
        day = util_days_from_civil(y, 1, 1) + d->day - 1 + (util_leap_year(y) && d->day >= 60);
    } else if (d->kind == RULE_JULIAN0) {
        day = util_days_from_civil(y, 1, 1) + d->day;
    } else {
        int64_t first = util_days_from_civil(y, d->month, 1);
        int delta = (d->day - util_weekday(first) + 7) % 7 + 7 * (d->week - 1);
        while (delta >= util_days_in_month(y, d->month))
            delta -= 7;
        day = first + delta;
    }
    return day * 86400 + d->time_s - off;
}

struct change {
    int64_t at;
    int32_t off;
    int starts_dst; /* sorts a start after an end at the same instant */
};

/* The segment of rule r that holds t. */
static void rule_segment(const struct rule *r, int64_t t, struct segment *seg)
{
    if (!r->has_dst) {
        *seg = (struct segment){false, 0, INT64_MAX, r->std_off, r->std_off};
        return;
    }
    /* The changes of the years around t's, sorted: t's year may start
     * under the previous year's rule, and rule times reach a week past. A
     * start and an end at the same instant (DST all year, RFC 8536 3.3.1)
     * leave DST on. */
    if (t > RULE_T_MAX) t = RULE_T_MAX;
    if (t < -RULE_T_MAX) t = -RULE_T_MAX;
    int64_t y;
    int m_unused, d_unused;
    util_civil_from_days(floor_div(t + r->std_off, 86400), &y, &m_unused, &d_unused);
    struct change ch[6] = {{0, 0, 0}};
    int n = 0;
    for (int64_t yy = y - 1; yy <= y + 1; yy++) {
        ch[n++] = (struct change){rule_instant(&r->start, yy, r->std_off), r->dst_off, 1};
        ch[n++] = (struct change){rule_instant(&r->end, yy, r->dst_off), r->std_off, 0};
    }
    for (int i = 1; i < n; i++)
        for (int j = i;
             j > 0 && (ch[j].at < ch[j - 1].at ||
                       (ch[j].at == ch[j - 1].at && ch[j].starts_dst < ch[j - 1].starts_dst));
             j--) {
            struct change tmp = ch[j];
            ch[j] = ch[j - 1];
            ch[j - 1] = tmp;
        }
    int last = -1;
    for (int i = 0; i < n && ch[i].at <= t; i++)
        last = i;
    /* y - 1's changes lie before t and y + 1's after it; guard anyway. */
    if (last < 0) last = 0;
    int next = last + 1;
    while (next < n && ch[next].at <= t)
        next++;
    seg->has_start = true;
    seg->start = ch[last].at;
    seg->off = ch[last].off;
    seg->prev_off = last > 0 ? ch[last - 1].off : (ch[last].starts_dst ? r->std_off : r->dst_off);
    seg->end = next < n ? ch[next].at : INT64_MAX;
}

/* ---- segments and offsets ---- */

/* The segment of z that holds t. */
static void zone_segment(const struct tz *z, int64_t t, struct segment *seg)
{
    if (z->count == 0 || t < z->at[0]) {
        if (z->count == 0 && z->has_rule) {
            rule_segment(&z->rule, t, seg);
            return;
        }
        *seg =
            (struct segment){false, 0, z->count ? z->at[0] : INT64_MAX, z->off_first, z->off_first};
        return;
    }
    size_t lo = 0, hi = z->count; /* the last at[i] <= t is in [lo, hi) */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->at[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    int32_t before = lo ? z->off[lo - 1] : z->off_first;
    if (lo + 1 < z->count || !z->has_rule) {
        *seg = (struct segment){true, z->at[lo], lo + 1 < z->count ? z->at[lo + 1] : INT64_MAX,
                                z->off[lo], before};
        return;
    }
    /* After the last transition the rule decides; the segment starts no
     * earlier than that transition. */
    rule_segment(&z->rule, t, seg);
    if (!seg->has_start || seg->start <= z->at[lo]) {
        seg->has_start = true;
        seg->start = z->at[lo];
        seg->prev_off = before;
    }
}

int32_t tz_offset(const struct tz *z, int64_t utc_s)
{
    struct segment seg;
    zone_segment(z, utc_s, &seg);
    return seg.off;
}

/* ---- loading ---- */

static struct tz *tz_new(const char *name, size_t count)
{
    struct tz *z = xcalloc(1, sizeof *z);
    util_strcopy(z->name, sizeof z->name, name);
    z->count = count;
    if (count) {
        z->at = xmalloc(count * sizeof *z->at);
        z->off = xmalloc(count * sizeof *z->off);
    }
    return z;
}

void tz_free(struct tz *z)
{
    if (!z) return;
    free(z->at);
    free(z->off);
    free(z);
}

const char *tz_name(const struct tz *z)
{
    return z->name;
}

struct tz *tz_from_rule(const char *rule, char err[TZ_ERR_LEN])
{
    struct rule r;
    char why[TZ_ERR_LEN];
    if (!rule) {
        fail(err, "the TZ string is missing");
        return NULL;
    }
    if (rule_parse(rule, &r, why) < 0) {
        fail(err, "'%.40s' is not a POSIX TZ string: %s", rule, why);
        return NULL;
    }
    struct tz *z = tz_new(rule, 0);
    z->has_rule = true;
    z->rule = r;
    z->off_first = r.std_off;
    if (err) err[0] = '\0';
    return z;
}

static bool name_ok(const char *name)
{
    size_t n = strnlen(name, TZ_NAME_MAX + 1);
    if (n == 0 || n > TZ_NAME_MAX || name[0] == '/' || name[n - 1] == '/') return false;
    if (strstr(name, "..") || strstr(name, "//")) return false;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '/' || ch == '_' || ch == '-' || ch == '+'))
            return false;
    }
    return true;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

enum { C_ISUT, C_ISSTD, C_LEAP, C_TIME, C_TYPE, C_CHAR };

/* Reads a TZif header at p (44 bytes available) into counts[6]. */
static void read_header(const unsigned char *p, uint32_t counts[6])
{
    for (int i = 0; i < 6; i++)
        counts[i] = be32(p + 20 + 4 * i);
}

/* The size of a data block of a header's counts, with time_bytes per time. */
static uint64_t block_size(const uint32_t c[6], uint64_t time_bytes)
{
    return (uint64_t)c[C_TIME] * time_bytes + c[C_TIME] + (uint64_t)c[C_TYPE] * 6 + c[C_CHAR] +
           (uint64_t)c[C_LEAP] * (time_bytes + 4) + c[C_ISSTD] + c[C_ISUT];
}

/* Parses TZif data[len] into a zone named name; NULL with why set. */
static struct tz *tzif_parse(const char *name, const unsigned char *data, size_t len, char *why)
{
    uint32_t c[6];
    struct tz *z = NULL;
    if (len < 44 || memcmp(data, "TZif", 4) != 0) {
        fail(why, "it does not start with \"TZif\"");
        return NULL;
    }
    if (data[4] == 0) {
        fail(why, "it is TZif version 1, which lacks 64-bit times; install a newer tzdata");
        return NULL;
    }
    if (data[4] < '2' || data[4] > '4') {
        fail(why, "its TZif version byte is 0x%02x; versions 2 to 4 are read", data[4]);
        return NULL;
    }
    read_header(data, c);
    uint64_t pos = 44 + block_size(c, 4);
    if (pos + 44 > len || memcmp(data + pos, "TZif", 4) != 0) {
        fail(why, "it is truncated or lacks its 64-bit header");
        return NULL;
    }
    read_header(data + pos, c);
    pos += 44;
    if (c[C_TYPE] == 0 || c[C_TYPE] > 256 || c[C_CHAR] == 0 ||
        (c[C_ISUT] != 0 && c[C_ISUT] != c[C_TYPE]) ||
        (c[C_ISSTD] != 0 && c[C_ISSTD] != c[C_TYPE])) {
        fail(why, "its 64-bit header has impossible counts");
        return NULL;
    }
    if (c[C_LEAP] != 0) {
        fail(why, "it counts leap seconds (a right/ zone); use the zone without right/");
        return NULL;
    }
    if (block_size(c, 8) > len - pos) {
        fail(why, "it is truncated (its 64-bit data runs past the end)");
        return NULL;
    }
    const unsigned char *times = data + pos;
    const unsigned char *idx = times + (size_t)c[C_TIME] * 8;
    const unsigned char *types = idx + c[C_TIME];
    int32_t type_off[256] = {0};
    for (uint32_t i = 0; i < c[C_TYPE]; i++) {
        const unsigned char *t = types + 6 * i;
        int32_t off = (int32_t)be32(t);
        if (off < OFFSET_MIN || off > OFFSET_MAX || t[4] > 1 || t[5] >= c[C_CHAR]) {
            fail(why, "its local time type %u is out of range", i);
            return NULL;
        }
        type_off[i] = off;
    }
    z = tz_new(name, c[C_TIME]);
    z->off_first = type_off[0];
    for (uint32_t i = 0; i < c[C_TIME]; i++) {
        z->at[i] = be64(times + 8 * i);
        if (i && z->at[i] <= z->at[i - 1]) {
            fail(why, "its transition times are not in ascending order");
            goto fail;
        }
        if (idx[i] >= c[C_TYPE]) {
            fail(why, "transition %u names a local time type it does not have", i);
            goto fail;
        }
        z->off[i] = type_off[idx[i]];
    }
    pos += block_size(c, 8);
    /* The footer: "\n" TZ string "\n", the last thing in the file. */
    const char *foot = (const char *)data + pos;
    size_t foot_len = len - pos;
    const char *nl = foot_len > 1 ? memchr(foot + 1, '\n', foot_len - 1) : NULL;
    if (foot_len < 2 || foot[0] != '\n' || !nl) {
        fail(why, "its footer (a TZ string between two newlines) is missing");
        goto fail;
    }
    if (nl + 1 != foot + foot_len) {
        fail(why, "it has bytes after its footer");
        goto fail;
    }
    size_t rule_len = (size_t)(nl - foot - 1);
    if (rule_len > 0) {
        char rule[TZ_RULE_MAX + 1], rule_why[TZ_ERR_LEN];
        if (rule_len > TZ_RULE_MAX || memchr(foot + 1, '\0', rule_len)) {
            fail(why, "its footer TZ string is longer than %d bytes or holds a NUL", TZ_RULE_MAX);
            goto fail;
        }
        memcpy(rule, foot + 1, rule_len);
        rule[rule_len] = '\0';
        if (rule_parse(rule, &z->rule, rule_why) < 0) {
            fail(why, "its footer TZ string: %s", rule_why);
            goto fail;
        }
        z->has_rule = true;
    }
    return z;
fail:
    tz_free(z);
    return NULL;
}

struct tz *tz_load(const char *dir, const char *name, char err[TZ_ERR_LEN])
{
    struct tz *z = NULL;
    unsigned char *data = NULL;
    char *path = NULL;
    int fd = -1;
    if (!dir) dir = TZ_DIR_DEFAULT;
    if (!name) {
        fail(err, "the time zone name is missing; use an IANA name like Europe/Berlin");
        return NULL;
    }
    if (!name_ok(name)) {
        char shown[25];
        size_t i = 0;
        for (; i < sizeof shown - 1 && name[i]; i++)
            shown[i] = name[i] >= 0x20 && name[i] < 0x7f ? name[i] : '?';
        shown[i] = '\0';
        fail(err,
             "'%s%s' is not a time zone name; use an IANA name like Europe/Berlin (letters, "
             "digits, / _ - +; at most %d bytes)",
             shown, name[i] ? "..." : "", TZ_NAME_MAX);
        return NULL;
    }
    if (!strcmp(name, "UTC") || !strcmp(name, "Etc/UTC")) {
        z = tz_new(name, 0);
        if (err) err[0] = '\0';
        return z;
    }
    path = xasprintf("%s/%s", dir, name);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        struct stat st;
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
            fail(err,
                 "no time zone database in %.60s (install the Debian package tzdata); "
                 "cannot load '%s'",
                 dir, name);
        else if (e == ENOENT || e == ENOTDIR)
            fail(err, "unknown time zone '%s'; use an IANA name like Europe/Berlin", name);
        else
            fail(err, "cannot read time zone '%s': %s", name, strerror(e));
        goto done;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        fail(err, "unknown time zone '%s'; use an IANA name like Europe/Berlin", name);
        goto done;
    }
    if (st.st_size > TZ_FILE_MAX) {
        fail(err, "the file of time zone '%s' is not valid TZif: it is larger than %d bytes", name,
             TZ_FILE_MAX);
        goto done;
    }
    size_t len = 0, cap = (size_t)st.st_size + 1;
    data = xmalloc(cap);
    for (;;) {
        ssize_t n = read(fd, data + len, cap - len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            fail(err, "cannot read time zone '%s': %s", name, strerror(errno));
            goto done;
        }
        if (n == 0) break;
        len += (size_t)n;
        if (len == cap) { /* grew while we read: refuse rather than chase it */
            fail(err, "the file of time zone '%s' changed while it was read", name);
            goto done;
        }
    }
    char why[TZ_ERR_LEN];
    z = tzif_parse(name, data, len, why);
    if (!z)
        fail(err, "the file of time zone '%s' is not valid TZif: %s", name, why);
    else if (err)
        err[0] = '\0';
done:
    if (fd >= 0) close(fd);
    free(data);
    free(path);
    return z;
}

/* ---- cron in local time ---- */

/* cron_next on local milliseconds, outside cron_next's 0..CRON_AFTER_MAX_MS
 * too (a zone west of UTC in 1970): cron repeats every 400 years. Local
 * times may be negative, so "never" is NEVER, not -1. */
static int64_t local_next(const struct cron *c, int64_t local_after_ms)
{
    if (local_after_ms < 0) {
        int64_t r = cron_next(c, local_after_ms + CYCLE_MS);
        return r < 0 ? NEVER : r - CYCLE_MS;
    }
    if (local_after_ms > CRON_AFTER_MAX_MS) {
        int64_t r = cron_next(c, local_after_ms - CYCLE_MS);
        return r < 0 ? NEVER : r + CYCLE_MS;
    }
    int64_t r = cron_next(c, local_after_ms);
    return r < 0 ? NEVER : r;
}

int64_t tz_cron_next(const struct cron *c, const struct tz *z, int64_t after_ms)
{
    if (after_ms < 0 || after_ms > CRON_AFTER_MAX_MS) return -1;
    bool every_hour = (c->hour & 0xffffffu) == 0xffffffu;
    int64_t from = after_ms / 1000 + 1; /* the first whole second after after_ms */
    /* cron_next answers -1 past CRON_HORIZON_YEARS; so does this, and no
     * arithmetic below meets a transition far out (a crafted file's). */
    int64_t limit = from + (CRON_HORIZON_YEARS + 1) * 366 * 86400LL;
    struct segment seg;
    zone_segment(z, from, &seg);
    for (int n = 0; n < SEGMENTS_MAX; n++) {
        int64_t start_local = seg.start + seg.off;
        /* A gap at the start (clocks went forward): fire at its end when a
         * restricted cron fires inside it. */
        if (seg.has_start && seg.start >= from && seg.prev_off < seg.off && !every_hour) {
            int64_t l = local_next(c, (seg.start + seg.prev_off) * 1000 - 1);
            if (l != NEVER && l < start_local * 1000) return seg.start * 1000;
        }
        int64_t lo = seg.has_start && seg.start > from ? seg.start : from;
        int64_t lo_local = lo + seg.off;
        /* A repeat at the start (clocks went back): a restricted cron fired
         * on these local times at their first occurrence already. */
        if (seg.has_start && seg.prev_off > seg.off && !every_hour &&
            lo_local < seg.start + seg.prev_off)
            lo_local = seg.start + seg.prev_off;
        int64_t l = local_next(c, lo_local * 1000 - 1);
        if (l == NEVER) return -1;
        int64_t utc = l / 1000 - seg.off;
        if (utc < seg.end) return utc * 1000;
        zone_segment(z, seg.end, &seg);
        if (seg.start > limit) return -1;
    }
    return -1;
}
