/*
 * test_tz: time zones from the real TZif files of tzdata (offsets at
 * instants `date` worked out, and against glibc across two centuries),
 * POSIX TZ strings alone (against glibc, which reads them too), refused
 * names and corrupt files, slim files built here, and cron in local time:
 * hand-worked answers across both DST changes of Berlin and New York, and
 * a cross-check of tz_cron_next against a minute-by-minute scan that
 * applies the header's rules literally, with glibc's offsets.
 *
 * glibc (setenv TZ, localtime_r) is the oracle: the module must not use it,
 * the test may, as this binary is single-threaded.
 */
#include "testutil.h"

#include <pthread.h>
#include <sys/stat.h>
#include <time.h>

#include "cron.h"
#include "tz.h"
#include "util.h"

#define ZONEINFO "/usr/share/zoneinfo"

static bool have_zoneinfo(void)
{
    struct stat st;
    if (stat(ZONEINFO "/Europe/Berlin", &st) == 0) return true;
    print_message("SKIPPED: " ZONEINFO " is missing (install the Debian package tzdata: "
                  "sh tools/deps.sh build)\n");
    return false;
}

#define NEED_ZONEINFO()                                                                            \
    do {                                                                                           \
        if (!have_zoneinfo()) skip();                                                              \
    } while (0)

static struct tz *load_ok(const char *dir, const char *name)
{
    char err[TZ_ERR_LEN];
    struct tz *z = tz_load(dir, name, err);
    if (!z) fail_msg("tz_load %s: %s", name, err);
    assert_string_equal(err, "");
    return z;
}

/* Unix seconds of a UTC time, through libc. */
static int64_t utc(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = s};
    return (int64_t)timegm(&tm);
}

static const char *iso(int64_t ms, char buf[64])
{
    if (ms < 0) return "-1 (never)";
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(buf, 64, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return buf;
}

/* glibc's offset of zone tz (a name or a POSIX TZ string) at t. */
static const char *libc_zone;

static void libc_use(const char *tz)
{
    if (libc_zone && !strcmp(libc_zone, tz)) return;
    assert_int_equal(setenv("TZ", tz, 1), 0);
    tzset();
    libc_zone = tz;
}

static int32_t libc_offset(int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    assert_non_null(localtime_r(&tt, &tm));
    return (int32_t)tm.tm_gmtoff;
}

static void write_bytes(const char *dir, const char *name, const void *data, size_t len);
static unsigned char *read_all(const char *path, size_t *len);

/* ---- offsets at known instants ---- */

struct known {
    const char *zone;
    int64_t t;
    int32_t off;
};

/* Each value from `TZ=ZONE date -d @T +%::z` (tzdata 2025b, Debian 12). */
static const struct known known[] = {
    /* TZ=Europe/Berlin date -d @1711846799 +%::z -> +01:00:00 (01:59:59 CET) */
    {"Europe/Berlin", 1711846799, 3600},
    /* TZ=Europe/Berlin date -d @1711846800 +%::z -> +02:00:00 (03:00:00 CEST) */
    {"Europe/Berlin", 1711846800, 7200},
    /* TZ=Europe/Berlin date -d @1729990799 +%::z -> +02:00:00 (02:59:59 CEST) */
    {"Europe/Berlin", 1729990799, 7200},
    /* TZ=Europe/Berlin date -d @1729990800 +%::z -> +01:00:00 (02:00:00 CET) */
    {"Europe/Berlin", 1729990800, 3600},
    /* TZ=Europe/Berlin date -d @-2524521600 +%::z -> +00:53:28 (LMT, 1890) */
    {"Europe/Berlin", -2524521600, 3208},
    /* TZ=Europe/Berlin date -d @-775850400 +%::z -> +03:00:00 (CEMT, 1945) */
    {"Europe/Berlin", -775850400, 10800},
    /* TZ=Europe/Berlin date -d @309999600 +%::z -> +01:00:00 (1979) */
    {"Europe/Berlin", 309999600, 3600},
    /* TZ=Europe/Berlin date -d @2200000000 +%::z -> +02:00:00 (2039, footer) */
    {"Europe/Berlin", 2200000000, 7200},
    /* TZ=Europe/Berlin date -d @4118083200 +%::z -> +02:00:00 (2100, footer) */
    {"Europe/Berlin", 4118083200, 7200},
    /* TZ=America/New_York date -d @1710053999 +%::z -> -05:00:00 (01:59:59 EST) */
    {"America/New_York", 1710053999, -18000},
    /* TZ=America/New_York date -d @1710054000 +%::z -> -04:00:00 (03:00:00 EDT) */
    {"America/New_York", 1710054000, -14400},
    /* TZ=America/New_York date -d @1730613599 +%::z -> -04:00:00 (01:59:59 EDT) */
    {"America/New_York", 1730613599, -14400},
    /* TZ=America/New_York date -d @1730613600 +%::z -> -05:00:00 (01:00:00 EST) */
    {"America/New_York", 1730613600, -18000},
    /* TZ=America/New_York date -d @2540246400 +%::z -> -04:00:00 (2050, footer) */
    {"America/New_York", 2540246400, -14400},
    /* TZ=America/New_York date -d @-5364662400 +%::z -> -04:56:02 (LMT, 1799) */
    {"America/New_York", -5364662400, -17762},
    /* TZ=Australia/Lord_Howe date -d @1712415599 +%::z -> +11:00:00 */
    {"Australia/Lord_Howe", 1712415599, 39600},
    /* TZ=Australia/Lord_Howe date -d @1712415600 +%::z -> +10:30:00 */
    {"Australia/Lord_Howe", 1712415600, 37800},
    /* TZ=Australia/Lord_Howe date -d @1728142199 +%::z -> +10:30:00 */
    {"Australia/Lord_Howe", 1728142199, 37800},
    /* TZ=Australia/Lord_Howe date -d @1728142200 +%::z -> +11:00:00 */
    {"Australia/Lord_Howe", 1728142200, 39600},
    /* TZ=Australia/Lord_Howe date -d @4102444800 +%::z -> +11:00:00 (2100) */
    {"Australia/Lord_Howe", 4102444800, 39600},
    /* TZ=Australia/Lord_Howe date -d @315532800 +%::z -> +10:00:00 (AEST, 1980) */
    {"Australia/Lord_Howe", 315532800, 36000},
    /* TZ=Asia/Kolkata date -d @1700000000 +%::z -> +05:30:00 */
    {"Asia/Kolkata", 1700000000, 19800},
    /* TZ=Asia/Kolkata date -d @-820000000 +%::z -> +06:30:00 (1944) */
    {"Asia/Kolkata", -820000000, 23400},
    /* TZ=Asia/Kolkata date -d @-2208988800 +%::z -> +05:21:10 (MMT, 1900) */
    {"Asia/Kolkata", -2208988800, 19270},
    /* TZ=Asia/Kolkata date -d @2200000000 +%::z -> +05:30:00 (2039) */
    {"Asia/Kolkata", 2200000000, 19800},
    /* TZ=Pacific/Chatham date -d @1712411999 +%::z -> +13:45:00 */
    {"Pacific/Chatham", 1712411999, 49500},
    /* TZ=Pacific/Chatham date -d @1712412000 +%::z -> +12:45:00 */
    {"Pacific/Chatham", 1712412000, 45900},
    /* TZ=Pacific/Chatham date -d @1727532000 +%::z -> +13:45:00 */
    {"Pacific/Chatham", 1727532000, 49500},
    /* TZ=Pacific/Chatham date -d @2200000000 +%::z -> +12:45:00 (2039) */
    {"Pacific/Chatham", 2200000000, 45900},
    /* TZ=Pacific/Chatham date -d @4102444800 +%::z -> +13:45:00 (2100) */
    {"Pacific/Chatham", 4102444800, 49500},
    /* TZ=America/Sao_Paulo date -d @1546300800 +%::z -> -02:00:00 (DST, 2019) */
    {"America/Sao_Paulo", 1546300800, -7200},
    /* TZ=America/Sao_Paulo date -d @1561939200 +%::z -> -03:00:00 */
    {"America/Sao_Paulo", 1561939200, -10800},
    /* TZ=America/Sao_Paulo date -d @1704067200 +%::z -> -03:00:00 (no DST since 2019) */
    {"America/Sao_Paulo", 1704067200, -10800},
    /* TZ=America/Sao_Paulo date -d @4102444800 +%::z -> -03:00:00 (2100) */
    {"America/Sao_Paulo", 4102444800, -10800},
    /* TZ=UTC date -d @1700000000 +%::z -> +00:00:00 */
    {"UTC", 1700000000, 0},
    /* TZ=Etc/UTC date -d @4102444800 +%::z -> +00:00:00 */
    {"Etc/UTC", 4102444800, 0},
};

static void offsets_at_known_instants(void **state)
{
    (void)state;
    NEED_ZONEINFO();
    for (size_t i = 0; i < ARRAY_LEN(known); i++) {
        struct tz *z = load_ok(NULL, known[i].zone);
        assert_string_equal(tz_name(z), known[i].zone);
        int32_t got = tz_offset(z, known[i].t);
        if (got != known[i].off)
            fail_msg("%s at %lld: offset %d, want %d", known[i].zone, (long long)known[i].t, got,
                     known[i].off);
        tz_free(z);
    }
}

/* Compares tz_offset with glibc at t - 1 and t. */
static void same_as_libc(const struct tz *z, const char *what, int64_t t)
{
    for (int64_t u = t - 1; u <= t; u++) {
        int32_t got = tz_offset(z, u), want = libc_offset(u);
        char b[64];
        if (got != want)
            fail_msg("%s at %lld (%s): offset %d, glibc %d", what, (long long)u, iso(u * 1000, b),
                     got, want);
    }
}

/* Walks [from, to) in steps of about step_s, comparing with glibc, and
 * pins each change glibc shows down to the second by bisection. Returns
 * the number of changes. */
static int sweep_against_libc(const struct tz *z, const char *what, int64_t from, int64_t to,
                              int64_t step_s)
{
    int changes = 0;
    int64_t prev = from;
    int32_t prev_off = libc_offset(prev);
    same_as_libc(z, what, prev);
    for (int64_t t = from + step_s; t < to; t += step_s) {
        int32_t off = libc_offset(t);
        if (off != prev_off) {
            int64_t lo = prev, hi = t; /* libc_offset(lo) == prev_off != libc_offset(hi) */
            while (hi - lo > 1) {
                int64_t mid = lo + (hi - lo) / 2;
                if (libc_offset(mid) == prev_off)
                    lo = mid;
                else
                    hi = mid;
            }
            same_as_libc(z, what, hi);
            changes++;
        }
        same_as_libc(z, what, t);
        prev = t, prev_off = off;
    }
    return changes;
}

static const char *const real_zones[] = {
    "Europe/Berlin", "America/New_York", "Australia/Lord_Howe",
    "Asia/Kolkata",  "Pacific/Chatham",  "America/Sao_Paulo",
    "UTC",           "Europe/Dublin",    "America/Santiago",
    "Pacific/Apia",  "America/Nuuk",     "Antarctica/Troll",
};

static void offsets_match_glibc_1880_to_2120(void **state)
{
    (void)state;
    NEED_ZONEINFO();
    int changes = 0;
    for (size_t i = 0; i < ARRAY_LEN(real_zones); i++) {
        struct tz *z = load_ok(ZONEINFO, real_zones[i]);
        libc_use(real_zones[i]);
        /* Every 5 days and 7 hours: no zone changes twice in that time. */
        changes += sweep_against_libc(z, real_zones[i], utc(1880, 1, 1, 0, 0, 0),
                                      utc(2120, 1, 1, 0, 0, 0), 5 * 86400 + 7 * 3600);
        tz_free(z);
    }
    print_message("offsets: %d changes pinned to the second, all as glibc\n", changes);
    assert_true(changes > 1500);
}

static void utc_is_built_in(void **state)
{
    (void)state;
    char err[TZ_ERR_LEN];
    /* No database at all: UTC still loads, other names say why they fail. */
    struct tz *z = load_ok("/nonexistent-zoneinfo", "UTC");
    assert_string_equal(tz_name(z), "UTC");
    assert_int_equal(tz_offset(z, 0), 0);
    assert_int_equal(tz_offset(z, INT64_MAX), 0);
    assert_int_equal(tz_offset(z, INT64_MIN), 0);
    struct cron c;
    assert_int_equal(cron_parse("30 2 * * *", &c, NULL), 0);
    assert_int_equal(tz_cron_next(&c, z, utc(2024, 3, 31, 0, 0, 0) * 1000),
                     utc(2024, 3, 31, 2, 30, 0) * 1000);
    tz_free(z);
    z = load_ok("/nonexistent-zoneinfo", "Etc/UTC");
    assert_string_equal(tz_name(z), "Etc/UTC");
    tz_free(z);
    /* The real file of UTC parses to the same. */
    if (have_zoneinfo()) {
        char dir[256];
        tu_mkdtemp(dir, sizeof dir);
        size_t len;
        unsigned char *data = read_all(ZONEINFO "/Etc/UTC", &len);
        write_bytes(dir, "UTCfile", data, len);
        free(data);
        struct tz *file = load_ok(dir, "UTCfile");
        struct tz *builtin = load_ok(NULL, "UTC");
        for (int64_t t = -5000000000LL; t < 5000000000LL; t += 86400 * 13 + 7)
            assert_int_equal(tz_offset(file, t), 0);
        for (int64_t t = 0; t < 4000000000000LL; t += 86400LL * 1000 * 29 + 7)
            assert_int_equal(tz_cron_next(&c, file, t), tz_cron_next(&c, builtin, t));
        tz_free(file);
        tz_free(builtin);
        tu_rmtree(dir);
    }
    assert_null(tz_load("/nonexistent-zoneinfo", "Europe/Berlin", err));
    assert_non_null(strstr(err, "no time zone database in /nonexistent-zoneinfo"));
    assert_non_null(strstr(err, "tzdata"));
    assert_non_null(strstr(err, "'Europe/Berlin'"));
}

/* ---- POSIX TZ strings alone ---- */

/* From 1971: glibc applies a TZ string's rule from 1970 on only. */

static void rules_match_glibc(void **state)
{
    (void)state;
    static const char *const rules[] = {
        "CET-1CEST,M3.5.0,M10.5.0/3",
        "EST5EDT,M3.2.0,M11.1.0",
        "<+0330>-3:30",
        "IST-5:30",
        "<-03>3",
        "UTC0",
        "GMT0",
        "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0",
        "<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45",
        "IST-1GMT0,M10.5.0,M3.5.0/1",       /* negative DST (Dublin) */
        "<-04>4<-03>,M9.1.6/24,M4.1.6/24",  /* 24:00 (Santiago) */
        "<-02>2<-01>,M3.5.0/-1,M10.5.0/0",  /* a negative time (Nuuk) */
        "<+00>0<+02>-2,M3.5.0/1,M10.5.0/3", /* two hours of DST (Troll) */
        "AAA3BBB,J60/2,J300/2",             /* Jn: March 1st, leap or not */
        "AAA3BBB,59/2,300/2",               /* n counts February 29th */
        "EST5EDT,M3.2.0/-1,M11.1.0/26",     /* before midnight, past it */
        "EST5EDT,M3.2.0/-167,M11.1.0/167",  /* the RFC's limits */
        "XXX-12:00:30YYY-13:00:45,M3.5.0/2:30:15,M10.5.0/3:01:02",
        "NZST-12NZDT,M9.5.0,M4.1.0/3",
        "AAA+3BBB+2,M3.1.1,M10.5.6",
        "aaa-0bbb-1,M2.5.0,M12.5.0", /* lower case, week 5 in February */
        "<A1+>0<B-2>-24,M1.1.0/0,M12.5.6/23:59:59",
        "AAA24BBB,M3.5.0,M10.5.0", /* the largest offset */
        "AAA-24",
    };
    int compared = 0;
    for (size_t i = 0; i < ARRAY_LEN(rules); i++) {
        char err[TZ_ERR_LEN];
        struct tz *z = tz_from_rule(rules[i], err);
        if (!z) fail_msg("\"%s\" refused: %s", rules[i], err);
        assert_string_equal(tz_name(z), rules[i]);
        libc_use(rules[i]);
        compared += sweep_against_libc(z, rules[i], utc(1971, 1, 1, 0, 0, 0),
                                       utc(2080, 1, 1, 0, 0, 0), 3 * 86400 + 3 * 3600 + 7);
        tz_free(z);
    }
    print_message("rules: %zu strings, %d changes, all as glibc\n", ARRAY_LEN(rules), compared);
    assert_true(compared > 3000);
}

/* DST all year, as RFC 8536 section 3.3.1 writes it: the end at 25:00 on
 * the last day meets the next start. glibc sees standard time in the hours
 * around each New Year (it looks at one year's rule only), so these are
 * checked by hand. */
static void dst_all_year(void **state)
{
    (void)state;
    static const struct {
        const char *rule;
        int32_t off;
    } all_year[] = {
        {"EST5EDT,0/0,J365/25", -4 * 3600},
        {"<-03>3<-02>,J1/0,J365/25", -2 * 3600},
    };
    for (size_t i = 0; i < ARRAY_LEN(all_year); i++) {
        struct tz *z = tz_from_rule(all_year[i].rule, NULL);
        assert_non_null(z);
        for (int y = 1970; y < 2110; y++) {
            int64_t ny = utc(y, 1, 1, 0, 0, 0);
            for (int64_t t = ny - 86400; t < ny + 86400; t += 599)
                if (tz_offset(z, t) != all_year[i].off)
                    fail_msg("%s at %lld: %d", all_year[i].rule, (long long)t, tz_offset(z, t));
            assert_int_equal(tz_offset(z, utc(y, 7, 1, 0, 0, 0)), all_year[i].off);
        }
        struct cron c;
        assert_int_equal(cron_parse("0 * * * *", &c, NULL), 0);
        int64_t t = utc(2024, 12, 31, 20, 0, 0) * 1000;
        for (int k = 0; k < 20; k++) {
            int64_t next = tz_cron_next(&c, z, t);
            assert_int_equal(next, t + 3600 * 1000);
            t = next;
        }
        tz_free(z);
    }
    /* Day 365 counted from 0: December 31st in a leap year, else January
     * 1st. Standard time runs from the end to the start at 03:00Z. */
    struct tz *z = tz_from_rule("AAA3BBB,0/0,365/0", NULL);
    assert_non_null(z);
    assert_int_equal(tz_offset(z, utc(1971, 1, 1, 1, 59, 59)), -2 * 3600);
    assert_int_equal(tz_offset(z, utc(1971, 1, 1, 2, 0, 0)), -3 * 3600);
    assert_int_equal(tz_offset(z, utc(1971, 1, 1, 2, 59, 59)), -3 * 3600);
    assert_int_equal(tz_offset(z, utc(1971, 1, 1, 3, 0, 0)), -2 * 3600);
    assert_int_equal(tz_offset(z, utc(1972, 12, 31, 1, 59, 59)), -2 * 3600);
    assert_int_equal(tz_offset(z, utc(1972, 12, 31, 2, 0, 0)), -3 * 3600);
    assert_int_equal(tz_offset(z, utc(1973, 1, 1, 2, 59, 59)), -3 * 3600);
    assert_int_equal(tz_offset(z, utc(1973, 1, 1, 3, 0, 0)), -2 * 3600);
    tz_free(z);
}

static void rules_refused(void **state)
{
    (void)state;
    static const struct {
        const char *rule, *needle;
    } bad[] = {
        {"", "standard time name"},
        {"E5", "standard time name"},
        {"EST", "standard offset"},
        {"EST+", "standard offset"},
        {"EST5EDT", "needs a rule"},
        {"EST5EDT4", "needs a rule"},
        {"EST5EDT,M3.2.0", "no end date"},
        {"EST5EDT,M13.2.0,M11.1.0", "Mm.w.d"},
        {"EST5EDT,M3.6.0,M11.1.0", "Mm.w.d"},
        {"EST5EDT,M3.2.7,M11.1.0", "Mm.w.d"},
        {"EST5EDT,M3.2,M11.1.0", "Mm.w.d"},
        {"EST5EDT,J0,J365", "Jn"},
        {"EST5EDT,J366,J1", "Jn"},
        {"EST5EDT,366,1", "0-365"},
        {"EST5EDT,M3.2.0/168,M11.1.0", "out of range"},
        {"EST5EDT,M3.2.0/1:60,M11.1.0", "out of range"},
        {"EST5EDT,M3.2.0/1:5:5:5,M11.1.0", "unexpected"},
        {"EST25", "out of range"},
        {"EST5:60", "out of range"},
        {"EST100", "hours"},
        {"EST5EDT,M3.2.0,M11.1.0x", "unexpected"},
        {"EST5EDT,M3.2.0,M11.1.0,", "unexpected"},
        {"EST5 ", "daylight-saving time name"},
        {"<+03", "ends with >"},
        {"<+0 3>-3", "ends with >"},
        {"<ab>3", "3 to"},
        {"<+03>-3<+04", "ends with >"},
        {"EST5EDT;M3.2.0,M11.1.0", "expected hours"},
        {"5EST", "standard time name"},
        {"EST5EDT,,M11.1.0", "Mm.w.d, Jn or n"},
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        char err[TZ_ERR_LEN];
        memset(err, 'x', sizeof err);
        struct tz *z = tz_from_rule(bad[i].rule, err);
        if (z) fail_msg("\"%s\" accepted", bad[i].rule);
        size_t len = strnlen(err, sizeof err);
        if (len == 0 || len >= sizeof err - 1) fail_msg("\"%s\": length %zu", bad[i].rule, len);
        if (!strstr(err, bad[i].needle))
            fail_msg("\"%s\": \"%s\" lacks \"%s\"", bad[i].rule, err, bad[i].needle);
        assert_non_null(strstr(err, "is not a POSIX TZ string"));
    }
    char long_rule[TZ_RULE_MAX + 8];
    memset(long_rule, 'A', sizeof long_rule - 1);
    long_rule[sizeof long_rule - 1] = '\0';
    char err[TZ_ERR_LEN];
    assert_null(tz_from_rule(long_rule, err));
    assert_non_null(strstr(err, "longer than"));
    assert_null(tz_from_rule(NULL, err));
    assert_non_null(strstr(err, "missing"));
}

/* ---- names and files ---- */

static void bad_names_refused_before_the_file_system(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "/etc/passwd",
        "../../etc/passwd",
        "Europe/../../etc/passwd",
        "Europe/Berlin/",
        "Europe//Berlin",
        "Europe/Berlin\n",
        "Europe/Berlin ",
        "Europe\\Berlin",
        "Europe/Berlin.tmp",
        "zone.tab",
        "Europe/Berlin;rm",
        "CET%s%s%n",
        "..",
        "a/./b",
        "Ümlaut",
        "12345678901234567890123456789012345678901234567890123456789012345", /* 65 */
    };
    /* dir is a file: any lookup past the name check would fail otherwise. */
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        char err[TZ_ERR_LEN];
        memset(err, 'x', sizeof err);
        assert_null(tz_load("/dev/null", bad[i], err));
        if (!strstr(err, "is not a time zone name; use an IANA name like Europe/Berlin"))
            fail_msg("\"%s\": %s", bad[i], err);
        assert_null(strchr(err, '\n'));
        assert_true(strnlen(err, sizeof err) < sizeof err - 1);
    }
    char err[TZ_ERR_LEN];
    assert_null(tz_load(NULL, NULL, err));
    assert_non_null(strstr(err, "missing"));
    /* 64 bytes is still a name. */
    assert_null(
        tz_load(NULL, "1234567890123456789012345678901234567890123456789012345678901234", err));
    assert_non_null(strstr(err, "unknown time zone"));
}

static void unknown_zones(void **state)
{
    (void)state;
    NEED_ZONEINFO();
    char err[TZ_ERR_LEN];
    assert_null(tz_load(NULL, "Europe/Berln", err));
    assert_string_equal(err,
                        "unknown time zone 'Europe/Berln'; use an IANA name like Europe/Berlin");
    assert_null(tz_load(NULL, "Europe", err)); /* a directory */
    assert_string_equal(err, "unknown time zone 'Europe'; use an IANA name like Europe/Berlin");
    assert_null(tz_load(NULL, "Europe/Berlin/x", err)); /* under a file */
    assert_non_null(strstr(err, "unknown time zone"));
    /* Every name with a file in tzdata that a user would write loads. */
    static const char *const good[] = {"Etc/GMT+5",
                                       "Etc/GMT-14",
                                       "America/Port-au-Prince",
                                       "America/Argentina/Buenos_Aires",
                                       "GMT",
                                       "Zulu",
                                       "EST5EDT"};
    for (size_t i = 0; i < ARRAY_LEN(good); i++)
        tz_free(load_ok(NULL, good[i]));
    struct tz *z = load_ok(NULL, "Etc/GMT+5"); /* POSIX sign: five hours west */
    assert_int_equal(tz_offset(z, 1700000000), -5 * 3600);
    tz_free(z);
}

/* ---- TZif files built here ---- */

struct tzif_type {
    int32_t off;
    uint8_t isdst;
};

struct tzif_spec {
    char version; /* '2', '3', or 0 for version 1 */
    int ntimes;
    const int64_t *times;
    const uint8_t *idx;
    int ntypes;
    const struct tzif_type *types;
    uint32_t leapcnt;
    const char *footer; /* NULL: none at all (not even the newlines) */
};

static void put32(unsigned char **p, uint32_t v)
{
    for (int i = 3; i >= 0; i--)
        *(*p)++ = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char **p, int64_t v)
{
    put32(p, (uint32_t)((uint64_t)v >> 32));
    put32(p, (uint32_t)v);
}

/* Writes the TZif file of s into buf; returns its length. The version-1
 * block is empty but for one type, as zic -b slim writes it. */
static size_t tzif_build(const struct tzif_spec *s, unsigned char *buf)
{
    unsigned char *p = buf;
    memcpy(p, "TZif", 4), p += 4;
    *p++ = (unsigned char)s->version;
    memset(p, 0, 15), p += 15;
    uint32_t v1[6] = {0, 0, 0, 0, 1, 1};
    for (int i = 0; i < 6; i++)
        put32(&p, v1[i]);
    put32(&p, 0), *p++ = 0, *p++ = 0; /* one type: UTC */
    *p++ = 0;                         /* one abbreviation byte */
    if (s->version == 0) return (size_t)(p - buf);
    memcpy(p, "TZif", 4), p += 4;
    *p++ = (unsigned char)s->version;
    memset(p, 0, 15), p += 15;
    uint32_t v2[6] = {0, 0, s->leapcnt, (uint32_t)s->ntimes, (uint32_t)s->ntypes, 4};
    for (int i = 0; i < 6; i++)
        put32(&p, v2[i]);
    for (int i = 0; i < s->ntimes; i++)
        put64(&p, s->times[i]);
    for (int i = 0; i < s->ntimes; i++)
        *p++ = s->idx[i];
    for (int i = 0; i < s->ntypes; i++) {
        put32(&p, (uint32_t)s->types[i].off);
        *p++ = s->types[i].isdst;
        *p++ = 0;
    }
    memcpy(p, "ABC", 4), p += 4;
    for (uint32_t i = 0; i < s->leapcnt; i++)
        put64(&p, 0), put32(&p, 0);
    if (s->footer) p += sprintf((char *)p, "\n%s\n", s->footer);
    return (size_t)(p - buf);
}

static void write_bytes(const char *dir, const char *name, const void *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char *buf = malloc(65536);
    assert_non_null(buf);
    *len = fread(buf, 1, 65536, f);
    assert_true(*len > 0 && *len < 65536);
    fclose(f);
    return buf;
}

/* Expects tz_load(dir, name) to fail with a message holding needle. */
static void expect_bad_file(const char *dir, const char *name, const char *needle)
{
    char err[TZ_ERR_LEN];
    memset(err, 'x', sizeof err);
    struct tz *z = tz_load(dir, name, err);
    if (z) fail_msg("%s loaded, want \"%s\"", name, needle);
    if (!strstr(err, needle)) fail_msg("%s: \"%s\" lacks \"%s\"", name, err, needle);
    assert_null(strchr(err, '\n'));
    assert_true(strnlen(err, sizeof err) < sizeof err - 1);
}

static void corrupt_files_refused(void **state)
{
    (void)state;
    char dir[256];
    tu_mkdtemp(dir, sizeof dir);
    unsigned char buf[4096];
    const int64_t times[] = {100, 200, 300};
    const uint8_t idx[] = {1, 0, 1};
    const struct tzif_type types[] = {{3600, 0}, {7200, 1}};
    struct tzif_spec ok = {'2', 3, times, idx, 2, types, 0, "CET-1CEST,M3.5.0,M10.5.0/3"};
    size_t len = tzif_build(&ok, buf);
    write_bytes(dir, "Good", buf, len);
    struct tz *z = load_ok(dir, "Good");
    assert_int_equal(tz_offset(z, 99), 3600); /* type 0 before the first transition */
    assert_int_equal(tz_offset(z, 100), 7200);
    assert_int_equal(tz_offset(z, 250), 3600);
    assert_int_equal(tz_offset(z, 299), 3600);
    assert_int_equal(tz_offset(z, 300), 3600); /* from the last on, the footer: a January */
    tz_free(z);
    /* Each prefix of a good file is refused. */
    for (size_t n = 0; n < len; n++) {
        write_bytes(dir, "Cut", buf, n);
        expect_bad_file(dir, "Cut", "is not valid TZif");
    }

    struct tzif_spec s = ok;
    s.version = 0;
    len = tzif_build(&s, buf);
    write_bytes(dir, "V1", buf, len);
    expect_bad_file(dir, "V1", "version 1");

    s = ok, s.version = '5';
    write_bytes(dir, "V5", buf, tzif_build(&s, buf));
    expect_bad_file(dir, "V5", "versions 2 to 4");

    s = ok, s.leapcnt = 1;
    write_bytes(dir, "Leap", buf, tzif_build(&s, buf));
    expect_bad_file(dir, "Leap", "leap seconds");

    const int64_t backwards[] = {100, 300, 200};
    s = ok, s.times = backwards;
    write_bytes(dir, "Backwards", buf, tzif_build(&s, buf));
    expect_bad_file(dir, "Backwards", "not in ascending order");

    const int64_t twice[] = {100, 200, 200};
    s = ok, s.times = twice;
    write_bytes(dir, "Twice", buf, tzif_build(&s, buf));
    expect_bad_file(dir, "Twice", "not in ascending order");

    const uint8_t bad_idx[] = {0, 2, 1};
    s = ok, s.idx = bad_idx;
    write_bytes(dir, "Idx", buf, tzif_build(&s, buf));
    expect_bad_file(dir, "Idx", "transition 1 names a local time type");

    const struct tzif_type far[] = {{3600, 0}, {93600, 0}};
    s = ok, s.types = far;
    write_bytes(dir, "Far", buf, tzif_build(&s, buf));
    expect_bad_file(dir, "Far", "local time type 1 is out of range");

    const struct tzif_type min[] = {{INT32_MIN, 0}};
    s = ok, s.types = min, s.ntypes = 1, s.ntimes = 0;
    write_bytes(dir, "Min", buf, tzif_build(&s, buf));
    expect_bad_file(dir, "Min", "local time type 0 is out of range");

    s = ok, s.ntypes = 0, s.ntimes = 0;
    write_bytes(dir, "NoTypes", buf, tzif_build(&s, buf));
    expect_bad_file(dir, "NoTypes", "impossible counts");

    s = ok, s.footer = NULL;
    write_bytes(dir, "NoFooter", buf, tzif_build(&s, buf));
    expect_bad_file(dir, "NoFooter", "footer");

    s = ok, s.footer = "EST5EDT";
    write_bytes(dir, "BadFooter", buf, tzif_build(&s, buf));
    expect_bad_file(dir, "BadFooter", "its footer TZ string: no rule");

    s = ok, s.footer = "CET-1CEST,M3.5.0,M10.5.0/3\nX";
    write_bytes(dir, "Extra", buf, tzif_build(&s, buf));
    expect_bad_file(dir, "Extra", "bytes after its footer");

    len = tzif_build(&ok, buf);
    buf[0] = 'T', buf[1] = 'Z', buf[2] = 'i', buf[3] = 'F';
    write_bytes(dir, "Magic", buf, len);
    expect_bad_file(dir, "Magic", "does not start with \"TZif\"");

    write_bytes(dir, "Text", "# not a zone\n", 13);
    expect_bad_file(dir, "Text", "does not start with \"TZif\"");

    /* Counts that promise more than the file holds (and would overflow 32
     * bits when multiplied). */
    len = tzif_build(&ok, buf);
    unsigned char *second = buf + 44 + 6 + 1; /* past the version-1 block */
    unsigned char *p = second + 20 + 4 * 3;   /* timecnt */
    put32(&p, 0xffffffffu);
    write_bytes(dir, "Huge", buf, len);
    expect_bad_file(dir, "Huge", "truncated");
    len = tzif_build(&ok, buf);
    p = buf + 20 + 4 * 3; /* the version-1 timecnt */
    put32(&p, 0x7fffffffu);
    write_bytes(dir, "HugeV1", buf, len);
    expect_bad_file(dir, "HugeV1", "truncated");

    /* Larger than TZ_FILE_MAX. */
    unsigned char *big = calloc(1, TZ_FILE_MAX + 1);
    assert_non_null(big);
    memcpy(big, buf, len);
    write_bytes(dir, "Big", big, TZ_FILE_MAX + 1);
    free(big);
    expect_bad_file(dir, "Big", "larger than");

    /* Every byte of a real file changed: refused or loaded, never a crash
     * (ASan and valgrind watch), and what loads answers offsets. */
    if (have_zoneinfo()) {
        size_t real_len;
        unsigned char *real = read_all(ZONEINFO "/America/New_York", &real_len);
        int loaded = 0, refused = 0;
        for (size_t i = 0; i < real_len; i++) {
            unsigned char keep = real[i];
            real[i] = (unsigned char)(keep ^ (i % 3 == 0 ? 0xff : 0x80 >> (i % 8)));
            write_bytes(dir, "Flip", real, real_len);
            char err[TZ_ERR_LEN];
            struct tz *f = tz_load(dir, "Flip", err);
            if (f) {
                struct cron c;
                assert_int_equal(cron_parse("30 2 * * *", &c, NULL), 0);
                for (int64_t t = -4000000000LL; t < 8000000000LL; t += 86400 * 97)
                    (void)tz_offset(f, t);
                (void)tz_cron_next(&c, f, 1700000000000LL);
                loaded++;
            } else {
                assert_non_null(strstr(err, "is not valid TZif"));
                refused++;
            }
            tz_free(f);
            real[i] = keep;
        }
        print_message("flipped bytes: %d loaded, %d refused\n", loaded, refused);
        assert_true(refused > 0);
        free(real);
    }
    tu_rmtree(dir);
}

/* A slim file (zic -b slim: few transitions, the future in the footer)
 * answers as the fat file Debian ships. */
static void slim_files_use_the_footer(void **state)
{
    (void)state;
    NEED_ZONEINFO();
    char dir[256];
    tu_mkdtemp(dir, sizeof dir);
    unsigned char buf[4096];
    /* Berlin since 1996: CET, the EU rule from then on. */
    const int64_t times[] = {utc(1995, 9, 24, 1, 0, 0), utc(1996, 3, 31, 1, 0, 0)};
    const uint8_t idx[] = {0, 1};
    const struct tzif_type types[] = {{3600, 0}, {7200, 1}};
    struct tzif_spec s = {'2', 2, times, idx, 2, types, 0, "CET-1CEST,M3.5.0,M10.5.0/3"};
    write_bytes(dir, "Slim", buf, tzif_build(&s, buf));
    /* No transitions at all: only the footer. */
    struct tzif_spec none = {'3', 0, NULL, NULL, 1, types, 0, "EST5EDT,M3.2.0,M11.1.0"};
    write_bytes(dir, "OnlyFooter", buf, tzif_build(&none, buf));
    /* An empty footer: the last type for ever. */
    struct tzif_spec empty = {'2', 2, times, idx, 2, types, 0, ""};
    write_bytes(dir, "EmptyFooter", buf, tzif_build(&empty, buf));

    struct tz *slim = load_ok(dir, "Slim");
    struct tz *fat = load_ok(NULL, "Europe/Berlin");
    struct tz *only = load_ok(dir, "OnlyFooter");
    struct tz *ny = load_ok(NULL, "America/New_York");
    struct tz *flat = load_ok(dir, "EmptyFooter");
    struct cron c;
    assert_int_equal(cron_parse("30 2 * * *", &c, NULL), 0);
    int64_t t0 = utc(1996, 4, 1, 0, 0, 0), t1 = utc(2120, 1, 1, 0, 0, 0);
    for (int64_t t = t0; t < t1; t += 3600 * 13 + 17) {
        if (tz_offset(slim, t) != tz_offset(fat, t)) {
            char b[64];
            fail_msg("slim Berlin at %s: %d, fat %d", iso(t * 1000, b), tz_offset(slim, t),
                     tz_offset(fat, t));
        }
        if (t >= utc(2007, 1, 1, 0, 0, 0)) /* the rule New York has kept since */
            assert_int_equal(tz_offset(only, t), tz_offset(ny, t));
        assert_int_equal(tz_offset(flat, t), 7200);
    }
    for (int64_t t = t0; t < t1; t += 86400 * 5 + 3607)
        assert_int_equal(tz_cron_next(&c, slim, t * 1000), tz_cron_next(&c, fat, t * 1000));
    /* Before the first transition: type 0. */
    assert_int_equal(tz_offset(slim, times[0] - 1), 3600);
    assert_int_equal(tz_offset(slim, INT64_MIN), 3600);
    int32_t far = tz_offset(slim, INT64_MAX); /* read as 35 million years out */
    assert_true(far == 3600 || far == 7200);
    tz_free(slim);
    tz_free(fat);
    tz_free(only);
    tz_free(ny);
    tz_free(flat);
    tu_rmtree(dir);
}

/* ---- cron in local time: worked answers ---- */

struct step {
    int64_t after_s, want_s; /* want -1: never */
};

static void expect_steps_at(const char *zone, const char *expr, const struct step *steps, size_t n,
                            int line)
{
    struct tz *z = load_ok(NULL, zone);
    struct cron c;
    char err[CRON_ERR_LEN];
    if (cron_parse(expr, &c, err) != 0) fail_msg("\"%s\": %s", expr, err);
    for (size_t i = 0; i < n; i++) {
        int64_t got = tz_cron_next(&c, z, steps[i].after_s * 1000);
        int64_t want = steps[i].want_s < 0 ? -1 : steps[i].want_s * 1000;
        char b1[64], b2[64], b3[64];
        if (got != want)
            fail_msg("line %d: %s \"%s\" after %s: got %s, want %s", line, zone, expr,
                     iso(steps[i].after_s * 1000, b1), iso(got, b2), iso(want, b3));
    }
    tz_free(z);
}

/* Each step: the next fire after the previous answer (or the first after). */
static void expect_chain_at(const char *zone, const char *expr, int64_t after_s,
                            const int64_t *want_s, size_t n, int line)
{
    struct step steps[32];
    assert_true(n <= ARRAY_LEN(steps));
    for (size_t i = 0; i < n; i++) {
        steps[i].after_s = i ? want_s[i - 1] : after_s;
        steps[i].want_s = want_s[i];
    }
    expect_steps_at(zone, expr, steps, n, line);
}

#define expect_chain(zone, expr, after_s, ...)                                                     \
    do {                                                                                           \
        const int64_t want_[] = {__VA_ARGS__};                                                     \
        expect_chain_at(zone, expr, after_s, want_, ARRAY_LEN(want_), __LINE__);                   \
    } while (0)

#define Z(y, mo, d, h, mi) utc(y, mo, d, h, mi, 0)

/* Berlin, 2024-03-31: at 01:00Z clocks go from 02:00 CET to 03:00 CEST. */
static void berlin_spring_forward(void **state)
{
    (void)state;
    NEED_ZONEINFO();
    const char *b = "Europe/Berlin";
    /* 02:30 does not occur: the run is at 03:00 CEST, then 02:30 CEST. */
    expect_chain(b, "30 2 * * *", Z(2024, 3, 29, 12, 0), Z(2024, 3, 30, 1, 30),
                 Z(2024, 3, 31, 1, 0), Z(2024, 4, 1, 0, 30));
    /* Every hour: there is no 02:00, the hours run on in UTC. */
    expect_chain(b, "0 * * * *", Z(2024, 3, 30, 23, 30), Z(2024, 3, 31, 0, 0), Z(2024, 3, 31, 1, 0),
                 Z(2024, 3, 31, 2, 0));
    expect_chain(b, "30 * * * *", Z(2024, 3, 31, 0, 0), Z(2024, 3, 31, 0, 30),
                 Z(2024, 3, 31, 1, 30));
    expect_chain(b, "*/15 * * * *", Z(2024, 3, 31, 0, 40), Z(2024, 3, 31, 0, 45),
                 Z(2024, 3, 31, 1, 0), Z(2024, 3, 31, 1, 15));
    /* 03:00 occurs; the 02:30 run of "30 2" is at the same instant. */
    expect_chain(b, "0 3 * * *", Z(2024, 3, 30, 12, 0), Z(2024, 3, 31, 1, 0), Z(2024, 4, 1, 1, 0));
    expect_chain(b, "0 0 * * *", Z(2024, 3, 29, 12, 0), Z(2024, 3, 29, 23, 0),
                 Z(2024, 3, 30, 23, 0), Z(2024, 3, 31, 22, 0));
    /* Two times in the gap: one run. With 03:00 too: still one. */
    expect_chain(b, "0,30 2 * * *", Z(2024, 3, 30, 12, 0), Z(2024, 3, 31, 1, 0),
                 Z(2024, 4, 1, 0, 0));
    expect_chain(b, "30 2,3 * * *", Z(2024, 3, 30, 12, 0), Z(2024, 3, 31, 1, 0),
                 Z(2024, 3, 31, 1, 30), Z(2024, 4, 1, 0, 30));
    /* Seconds in the gap: at the instant the gap ends. */
    expect_chain(b, "15 30 2 * * *", Z(2024, 3, 30, 12, 0), Z(2024, 3, 31, 1, 0),
                 utc(2024, 4, 1, 0, 30, 15));
    /* Asked from just before the transition, and at it. */
    struct step at_edge[] = {
        {Z(2024, 3, 31, 1, 0) - 1, Z(2024, 3, 31, 1, 0)},
        {Z(2024, 3, 31, 1, 0), Z(2024, 4, 1, 0, 30)},
    };
    expect_steps_at(b, "30 2 * * *", at_edge, ARRAY_LEN(at_edge), __LINE__);
    struct tz *z = load_ok(NULL, b);
    struct cron c;
    assert_int_equal(cron_parse("30 2 * * *", &c, NULL), 0);
    assert_int_equal(tz_cron_next(&c, z, Z(2024, 3, 31, 1, 0) * 1000 - 1),
                     Z(2024, 3, 31, 1, 0) * 1000);
    tz_free(z);
}

/* Berlin, 2024-10-27: at 01:00Z clocks go from 03:00 CEST back to 02:00
 * CET; 02:00-02:59 occurs at 00:00Z-00:59Z and again at 01:00Z-01:59Z. */
static void berlin_fall_back(void **state)
{
    (void)state;
    NEED_ZONEINFO();
    const char *b = "Europe/Berlin";
    expect_chain(b, "30 2 * * *", Z(2024, 10, 26, 12, 0), Z(2024, 10, 27, 0, 30),
                 Z(2024, 10, 28, 1, 30));
    /* Asked between the two 02:30s: the first was the run. */
    expect_chain(b, "30 2 * * *", Z(2024, 10, 27, 1, 0), Z(2024, 10, 28, 1, 30));
    expect_chain(b, "0 * * * *", Z(2024, 10, 26, 23, 30), Z(2024, 10, 27, 0, 0),
                 Z(2024, 10, 27, 1, 0), Z(2024, 10, 27, 2, 0));
    expect_chain(b, "*/15 * * * *", Z(2024, 10, 27, 0, 40), Z(2024, 10, 27, 0, 45),
                 Z(2024, 10, 27, 1, 0), Z(2024, 10, 27, 1, 15), Z(2024, 10, 27, 1, 30),
                 Z(2024, 10, 27, 1, 45), Z(2024, 10, 27, 2, 0));
    expect_chain(b, "0 3 * * *", Z(2024, 10, 26, 12, 0), Z(2024, 10, 27, 2, 0),
                 Z(2024, 10, 28, 2, 0));
    expect_chain(b, "0 0 * * *", Z(2024, 10, 26, 12, 0), Z(2024, 10, 26, 22, 0),
                 Z(2024, 10, 27, 23, 0));
    /* A restricted hour with every minute: the repeated hour once. */
    expect_chain(b, "59 2 * * *", Z(2024, 10, 27, 0, 0), Z(2024, 10, 27, 0, 59),
                 Z(2024, 10, 28, 1, 59));
    expect_chain(b, "* 2 * * *", Z(2024, 10, 27, 0, 58), Z(2024, 10, 27, 0, 59),
                 Z(2024, 10, 28, 1, 0));
}

/* New York, 2024-03-10: at 07:00Z from 02:00 EST to 03:00 EDT. */
static void new_york_spring_forward(void **state)
{
    (void)state;
    NEED_ZONEINFO();
    const char *n = "America/New_York";
    expect_chain(n, "30 2 * * *", Z(2024, 3, 8, 12, 0), Z(2024, 3, 9, 7, 30), Z(2024, 3, 10, 7, 0),
                 Z(2024, 3, 11, 6, 30));
    expect_chain(n, "0 * * * *", Z(2024, 3, 10, 5, 30), Z(2024, 3, 10, 6, 0), Z(2024, 3, 10, 7, 0),
                 Z(2024, 3, 10, 8, 0));
    expect_chain(n, "*/15 * * * *", Z(2024, 3, 10, 6, 40), Z(2024, 3, 10, 6, 45),
                 Z(2024, 3, 10, 7, 0), Z(2024, 3, 10, 7, 15));
    expect_chain(n, "0 3 * * *", Z(2024, 3, 9, 12, 0), Z(2024, 3, 10, 7, 0), Z(2024, 3, 11, 7, 0));
    expect_chain(n, "0 0 * * *", Z(2024, 3, 9, 12, 0), Z(2024, 3, 10, 5, 0), Z(2024, 3, 11, 4, 0));
}

/* New York, 2024-11-03: at 06:00Z from 02:00 EDT back to 01:00 EST;
 * 01:00-01:59 occurs at 05:00Z-05:59Z and at 06:00Z-06:59Z. */
static void new_york_fall_back(void **state)
{
    (void)state;
    NEED_ZONEINFO();
    const char *n = "America/New_York";
    expect_chain(n, "30 2 * * *", Z(2024, 11, 2, 12, 0), Z(2024, 11, 3, 7, 30),
                 Z(2024, 11, 4, 7, 30));
    expect_chain(n, "30 1 * * *", Z(2024, 11, 2, 12, 0), Z(2024, 11, 3, 5, 30),
                 Z(2024, 11, 4, 6, 30));
    expect_chain(n, "0 * * * *", Z(2024, 11, 3, 4, 30), Z(2024, 11, 3, 5, 0), Z(2024, 11, 3, 6, 0),
                 Z(2024, 11, 3, 7, 0));
    expect_chain(n, "*/15 * * * *", Z(2024, 11, 3, 5, 40), Z(2024, 11, 3, 5, 45),
                 Z(2024, 11, 3, 6, 0), Z(2024, 11, 3, 6, 15));
    expect_chain(n, "0 3 * * *", Z(2024, 11, 2, 12, 0), Z(2024, 11, 3, 8, 0), Z(2024, 11, 4, 8, 0));
    expect_chain(n, "0 0 * * *", Z(2024, 11, 2, 12, 0), Z(2024, 11, 3, 4, 0), Z(2024, 11, 4, 5, 0));
    /* 0-23 is every hour; a stepped star is not. */
    expect_chain(n, "30 0-23 * * *", Z(2024, 11, 3, 5, 0), Z(2024, 11, 3, 5, 30),
                 Z(2024, 11, 3, 6, 30));
    expect_chain(n, "30 */1 * * *", Z(2024, 11, 3, 5, 0), Z(2024, 11, 3, 5, 30),
                 Z(2024, 11, 3, 6, 30));
    expect_chain(n, "30 */2 * * *", Z(2024, 11, 3, 3, 0), Z(2024, 11, 3, 4, 30),
                 Z(2024, 11, 3, 7, 30));
}

/* Other shapes of change: 30 minutes (Lord Howe), 24:00 (Santiago), a
 * whole day skipped (Apia, 2011-12-30), far from UTC (Chatham). */
static void other_changes(void **state)
{
    (void)state;
    NEED_ZONEINFO();
    /* Lord Howe 2024-10-06: 02:00 +1030 to 02:30 +11 at 15:30Z the day
     * before; 02:15 does not occur, 02:45 does. */
    expect_chain("Australia/Lord_Howe", "15,45 2 * * *", Z(2024, 10, 4, 12, 0),
                 Z(2024, 10, 4, 15, 45), Z(2024, 10, 4, 16, 15), Z(2024, 10, 5, 15, 30),
                 Z(2024, 10, 5, 15, 45), Z(2024, 10, 6, 15, 15));
    /* Lord Howe 2024-04-07: 02:00 +11 back to 01:30 +1030 at 15:00Z. */
    expect_chain("Australia/Lord_Howe", "45 1 * * *", Z(2024, 4, 6, 12, 0), Z(2024, 4, 6, 14, 45),
                 Z(2024, 4, 7, 15, 15));
    expect_chain("Australia/Lord_Howe", "45 * * * *", Z(2024, 4, 6, 14, 0), Z(2024, 4, 6, 14, 45),
                 Z(2024, 4, 6, 15, 15), Z(2024, 4, 6, 16, 15));
    /* Apia skipped Friday 2011-12-30 (at 10:00Z from -10 to +14). */
    expect_chain("Pacific/Apia", "0 12 * * *", Z(2011, 12, 28, 0, 0), Z(2011, 12, 28, 22, 0),
                 Z(2011, 12, 29, 22, 0), Z(2011, 12, 30, 10, 0), Z(2011, 12, 30, 22, 0));
    expect_chain("Pacific/Apia", "0 12 * * FRI", Z(2011, 12, 20, 0, 0), Z(2011, 12, 23, 22, 0),
                 Z(2011, 12, 30, 10, 0), Z(2012, 1, 5, 22, 0));
    expect_chain("Pacific/Apia", "0 */12 * * *", Z(2011, 12, 29, 20, 0), Z(2011, 12, 29, 22, 0),
                 Z(2011, 12, 30, 10, 0), Z(2011, 12, 30, 22, 0));
    expect_chain("Pacific/Apia", "0 * * * *", Z(2011, 12, 30, 8, 30), Z(2011, 12, 30, 9, 0),
                 Z(2011, 12, 30, 10, 0), Z(2011, 12, 30, 11, 0));
    /* Santiago 2024-09-08: 24:00 -04 on Saturday is 01:00 -03 Sunday. */
    expect_chain("America/Santiago", "0 0 * * *", Z(2024, 9, 6, 12, 0), Z(2024, 9, 7, 4, 0),
                 Z(2024, 9, 8, 4, 0), Z(2024, 9, 9, 3, 0));
    expect_chain("America/Santiago", "30 0 * * SUN", Z(2024, 9, 6, 12, 0), Z(2024, 9, 8, 4, 0),
                 Z(2024, 9, 15, 3, 30));
    /* Chatham: +1345 at 2024-04-07 03:45 back to 02:45 +1245 (14:00Z). */
    expect_chain("Pacific/Chatham", "0 3 * * *", Z(2024, 4, 6, 0, 0), Z(2024, 4, 6, 13, 15),
                 Z(2024, 4, 7, 14, 15));
    /* No change at all. */
    expect_chain("Asia/Kolkata", "30 2 * * *", Z(2024, 3, 30, 0, 0), Z(2024, 3, 30, 21, 0),
                 Z(2024, 3, 31, 21, 0));
    expect_chain("America/Sao_Paulo", "0 0 * * *", Z(2025, 11, 1, 12, 0), Z(2025, 11, 2, 3, 0),
                 Z(2025, 11, 3, 3, 0));
    /* Sao Paulo's last DST start: 2018-11-04 00:00 -03 to 01:00 -02. */
    expect_chain("America/Sao_Paulo", "0 0 * * *", Z(2018, 11, 2, 12, 0), Z(2018, 11, 3, 3, 0),
                 Z(2018, 11, 4, 3, 0), Z(2018, 11, 5, 2, 0));
}

static void limits(void **state)
{
    (void)state;
    NEED_ZONEINFO();
    struct tz *ny = load_ok(NULL, "America/New_York");
    struct tz *kol = load_ok(NULL, "Asia/Kolkata");
    struct cron c;
    assert_int_equal(cron_parse("* * * * *", &c, NULL), 0);
    assert_int_equal(tz_cron_next(&c, ny, -1), -1);
    assert_int_equal(tz_cron_next(&c, ny, INT64_MIN), -1);
    assert_int_equal(tz_cron_next(&c, ny, CRON_AFTER_MAX_MS + 1), -1);
    assert_int_equal(tz_cron_next(&c, ny, INT64_MAX), -1);
    /* Near 1970 in a zone west of UTC: local time before the epoch. */
    assert_int_equal(tz_cron_next(&c, ny, 0), 60000);
    assert_int_equal(tz_cron_next(&c, ny, CRON_AFTER_MAX_MS), CRON_AFTER_MAX_MS + 1);
    assert_int_equal(tz_cron_next(&c, kol, CRON_AFTER_MAX_MS), CRON_AFTER_MAX_MS + 1);
    assert_int_equal(cron_parse("0 0 1 1 *", &c, NULL), 0);
    /* 1970-01-01 00:00 in New York is 05:00Z. */
    assert_int_equal(tz_cron_next(&c, ny, 0), 5 * 3600 * 1000);
    /* 10000-01-01 00:00 +0530 is 9999-12-31T18:30Z. */
    assert_int_equal(tz_cron_next(&c, kol, utc(9999, 6, 1, 0, 0, 0) * 1000),
                     utc(9999, 12, 31, 18, 30, 0) * 1000);
    /* February 29th past 2096 (2100 is no leap year): never, as cron_next. */
    assert_int_equal(cron_parse("0 0 29 2 *", &c, NULL), 0);
    assert_int_equal(tz_cron_next(&c, ny, utc(2096, 3, 1, 0, 0, 0) * 1000), -1);
    assert_int_equal(tz_cron_next(&c, ny, utc(2023, 3, 1, 0, 0, 0) * 1000),
                     utc(2024, 2, 29, 5, 0, 0) * 1000);
    /* Empty sets. */
    struct cron e = c;
    e.hour = 0;
    assert_int_equal(tz_cron_next(&e, ny, 0), -1);
    tz_free(ny);
    tz_free(kol);
}

/* ---- cross-check against a scan that applies the rules literally ---- */

static uint64_t rng_state = 0x243f6a8885a308d3ULL;

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

/* glibc's offsets over a window, with each change pinned to the second. */
struct window {
    int64_t from, to;
    int n;
    int64_t at[64];
    int32_t off[65]; /* off[i]: before at[i]; off[n]: after the last */
};

/* step_s: shorter than the time between two changes. */
static void window_fill(struct window *w, int64_t from, int64_t to, int64_t step_s)
{
    w->from = from, w->to = to, w->n = 0;
    w->off[0] = libc_offset(from);
    for (int64_t t = from, prev = from; t <= to; prev = t, t += step_s) {
        int32_t off = libc_offset(t);
        if (off == w->off[w->n]) continue;
        int64_t lo = prev, hi = t;
        while (hi - lo > 1) {
            int64_t mid = lo + (hi - lo) / 2;
            if (libc_offset(mid) == w->off[w->n])
                lo = mid;
            else
                hi = mid;
        }
        assert_true(w->n < 64);
        w->at[w->n++] = hi;
        w->off[w->n] = off;
    }
}

static int32_t window_offset(const struct window *w, int64_t t)
{
    if (t < w->from || t > w->to) return libc_offset(t);
    int i = 0;
    while (i < w->n && w->at[i] <= t)
        i++;
    return w->off[i];
}

/* Whether c fires at local time local_s (read as UTC); libc's gmtime_r
 * once a day, the time of day counted. */
static bool matches(const struct cron *c, int64_t local_s)
{
    static int64_t cached_day = INT64_MIN;
    static struct tm day_tm;
    int64_t day = local_s >= 0 ? local_s / 86400 : -((-local_s + 86399) / 86400);
    if (day != cached_day) {
        time_t tt = (time_t)(day * 86400);
        assert_non_null(gmtime_r(&tt, &day_tm));
        cached_day = day;
    }
    struct tm tm = day_tm;
    int sod = (int)(local_s - day * 86400);
    tm.tm_hour = sod / 3600;
    tm.tm_min = sod / 60 % 60;
    tm.tm_sec = sod % 60;
    if (!(c->second >> tm.tm_sec & 1) || !(c->minute >> tm.tm_min & 1) ||
        !(c->hour >> tm.tm_hour & 1) || !(c->month >> (tm.tm_mon + 1) & 1))
        return false;
    bool dom = c->day >> tm.tm_mday & 1, dow = c->weekday >> tm.tm_wday & 1;
    if (c->day_any && c->weekday_any) return true;
    if (c->day_any) return dow;
    if (c->weekday_any) return dom;
    return dom || dow;
}

/* Whether local time l occurred at some instant before u: at l - o for an
 * offset o the zone has around then. */
static bool occurred_before(const struct window *w, int64_t l, int64_t u)
{
    for (int i = 0; i <= w->n; i++) {
        int64_t v = l - w->off[i];
        if (v < u && window_offset(w, v) == w->off[i]) return true;
    }
    return false;
}

/* The header's rules, literally: the first second u > after (on whole
 * minutes when step_s is 60) where c fires on local(u) (for a restricted
 * hour field, only if local(u) did not occur before), or, for a restricted
 * hour field, where the clocks jump forward past a local time c fires on. */
static int64_t ref_next(const struct cron *c, const struct window *w, int64_t after_ms,
                        int64_t until_s, int step_s)
{
    bool every_hour = (c->hour & 0xffffffu) == 0xffffffu;
    int64_t u = after_ms / 1000 + 1;
    if (step_s == 60) u = (u + 59) / 60 * 60;
    for (; u <= until_s; u += step_s) {
        int32_t off = window_offset(w, u), before = window_offset(w, u - 1);
        if (!every_hour && off > before) {
            /* The gap's local times, [u + before, u + off). */
            for (int64_t l = u + before; l < u + off; l += step_s)
                if (matches(c, l)) return u * 1000;
        }
        int64_t l = u + off;
        if (matches(c, l) && (every_hour || !occurred_before(w, l, u))) return u * 1000;
    }
    return -1;
}

static const char *const minutes[] = {"*", "*/15", "0", "30", "0,30", "5-10", "*/7", "59", "45"};
static const char *const hours[] = {"*",    "*",  "2",    "1",   "3",   "0",       "1-3", "*/2",
                                    "0-23", "23", "2,14", "0-1", "*/1", "22-23,0", "12"};
static const char *const days[] = {"*", "*", "*", "*", "*/2", "1-7", "8-31", "?"};
static const char *const weekdays[] = {"*", "*", "*", "*", "SUN", "1-5", "SAT,SUN", "?"};
static const char *const seconds[] = {"0", "*/20", "15", "59", "0,30"};

static const char *const cross_zones[] = {
    "Europe/Berlin",     "America/New_York", "Australia/Lord_Howe", "Pacific/Chatham",
    "America/Sao_Paulo", "Asia/Kolkata",     "Europe/Dublin",       "America/Santiago",
    "Pacific/Apia",      "America/Nuuk",     "Antarctica/Troll",
};

static void cross_check_with_a_literal_scan(void **state)
{
    (void)state;
    NEED_ZONEINFO();
    int queries = 0, fired = 0, near_change = 0;
    for (size_t zi = 0; zi < ARRAY_LEN(cross_zones); zi++) {
        const char *zone = cross_zones[zi];
        struct tz *z = load_ok(NULL, zone);
        libc_use(zone);
        for (int round = 0; round < 80; round++) {
            bool six = rnd(0, 5) == 0;
            char expr[128];
            snprintf(expr, sizeof expr, "%s%s%s %s %s * %s", six ? seconds[rnd(0, 4)] : "",
                     six ? " " : "", minutes[rnd(0, ARRAY_LEN(minutes) - 1)],
                     hours[rnd(0, ARRAY_LEN(hours) - 1)], days[rnd(0, ARRAY_LEN(days) - 1)],
                     weekdays[rnd(0, ARRAY_LEN(weekdays) - 1)]);
            struct cron c;
            char err[CRON_ERR_LEN];
            if (cron_parse(expr, &c, err) != 0) fail_msg("\"%s\": %s", expr, err);
            /* A start near one of glibc's changes between 2005 and 2045
             * (Apia: its 2011 jump and the years around it). */
            int64_t lo = zi == 8 ? utc(2009, 1, 1, 0, 0, 0) : utc(2005, 1, 1, 0, 0, 0);
            int64_t hi = zi == 8 ? utc(2014, 1, 1, 0, 0, 0) : utc(2045, 1, 1, 0, 0, 0);
            int64_t pick = lo + (int64_t)(rng() % (uint64_t)(hi - lo));
            struct window w;
            window_fill(&w, pick, pick + 200 * 86400, 86400);
            int64_t change = w.n ? w.at[0] : pick;
            near_change += w.n > 0;
            int64_t span = six ? 3 * 3600 : 2 * 86400;
            int64_t after = (change - span / 2 + (int64_t)(rng() % (uint64_t)span)) * 1000 +
                            rnd(0, 1) * rnd(0, 999);
            window_fill(&w, after / 1000 - 3 * 86400, after / 1000 + 6 * 86400, 600);
            for (int i = 0; i <= w.n; i++)
                if (w.off[i] % 60 != 0 || (i < w.n && w.at[i] % 60 != 0))
                    fail_msg("%s: a change off the minute; the scan steps by minutes", zone);
            for (int query = 0; query < 6; query++) {
                int64_t horizon_s = after / 1000 + (six ? 6 * 3600 : 4 * 86400);
                int64_t got = tz_cron_next(&c, z, after);
                int64_t ref = ref_next(&c, &w, after, horizon_s, six ? 1 : 60);
                char b1[64], b2[64], b3[64];
                if (got >= 0 && got <= horizon_s * 1000 ? got != ref : ref != -1)
                    fail_msg("%s \"%s\" after %s: tz_cron_next %s, scan %s", zone, expr,
                             iso(after, b1), iso(got, b2), iso(ref, b3));
                queries++;
                if (got < 0 || got > horizon_s * 1000) break;
                fired++;
                after = got;
            }
        }
        tz_free(z);
    }
    print_message("cross-check: %d queries, %d fired within the scan, %d starts near a "
                  "change\n",
                  queries, fired, near_change);
    assert_true(fired > 1000);
}

/* ---- one zone, many threads ---- */

struct worker {
    const struct tz *z;
    const struct cron *c;
    int64_t start_ms;
    int64_t out[400];
};

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    int64_t t = w->start_ms;
    for (size_t i = 0; i < ARRAY_LEN(w->out); i++) {
        t = tz_cron_next(w->c, w->z, t);
        w->out[i] = t;
        (void)tz_offset(w->z, t / 1000);
    }
    return NULL;
}

/* A loaded zone is read-only: threads share it (TSan and helgrind watch). */
static void threads_share_a_zone(void **state)
{
    (void)state;
    NEED_ZONEINFO();
    struct tz *z = load_ok(NULL, "Europe/Berlin");
    struct cron c;
    assert_int_equal(cron_parse("*/20 1-3 * * *", &c, NULL), 0);
    static struct worker w[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){z, &c, utc(2024, 1, 1, 0, 0, 0) * 1000, {0}};
        assert_int_equal(pthread_create(&th[i], NULL, worker_run, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    for (int i = 1; i < 4; i++)
        assert_memory_equal(w[i].out, w[0].out, sizeof w[0].out);
    assert_true(w[0].out[399] > w[0].out[0]);
    tz_free(z);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(offsets_at_known_instants),
        cmocka_unit_test(offsets_match_glibc_1880_to_2120),
        cmocka_unit_test(utc_is_built_in),
        cmocka_unit_test(rules_match_glibc),
        cmocka_unit_test(dst_all_year),
        cmocka_unit_test(rules_refused),
        cmocka_unit_test(bad_names_refused_before_the_file_system),
        cmocka_unit_test(unknown_zones),
        cmocka_unit_test(corrupt_files_refused),
        cmocka_unit_test(slim_files_use_the_footer),
        cmocka_unit_test(berlin_spring_forward),
        cmocka_unit_test(berlin_fall_back),
        cmocka_unit_test(new_york_spring_forward),
        cmocka_unit_test(new_york_fall_back),
        cmocka_unit_test(other_changes),
        cmocka_unit_test(limits),
        cmocka_unit_test(cross_check_with_a_literal_scan),
        cmocka_unit_test(threads_share_a_zone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
