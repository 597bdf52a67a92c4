/*
 * util: allocation, clocks, time stamps, random bytes, UTF-8 and base64, and
 * the capped buffer. Nothing here keeps state.
 */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static void oom(size_t n)
{
    fprintf(stderr, "asyncqueue: out of memory allocating %zu bytes\n", n);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) oom(n);
    return p;
}

void *xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) oom(count * size);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) oom(n);
    return q;
}

char *xstrdup(const char *s)
{
    if (!s) return NULL;
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

size_t util_strcopy(char *dst, size_t cap, const char *src)
{
    if (cap == 0) return 0;
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
    return n;
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) abort();
    char *p = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t util_now_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}

int64_t util_mono_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

int64_t util_clock_offset_ms(void)
{
    return util_now_ms() - util_mono_ms();
}

int64_t util_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void util_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static void put_digits(char *p, unsigned v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* ---- the calendar: proleptic Gregorian, days since 1970-01-01 (Howard
 * Hinnant's days_from_civil and civil_from_days: years run March to
 * February, so the leap day is last), exact where gmtime is ---- */

bool util_leap_year(int64_t y)
{
    return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

int util_days_in_month(int64_t y, int m)
{
    static const int len[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && util_leap_year(y) ? 29 : len[m];
}

int64_t util_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;                                     /* [0, 399] */
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;   /* [0, 365] */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;             /* [0, 146096] */
    return era * 146097 + doe - 719468;
}

void util_civil_from_days(int64_t days, int64_t *y, int *m, int *d)
{
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;                                    /* [0, 146096] */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);             /* [0, 365] */
    int64_t mp = (5 * doy + 2) / 153;                                  /* [0, 11] */
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

int util_weekday(int64_t days)
{
    int64_t w = (days + 4) % 7; /* 1970-01-01 was a Thursday */
    return (int)(w < 0 ? w + 7 : w);
}

/* Formats by hand (every 202 carries three of these). */
char *util_rfc3339(int64_t ms, char *out)
{
    int64_t secs = ms / 1000;
    int frac = (int)(ms % 1000);
    if (frac < 0) {
        frac += 1000;
        secs -= 1;
    }
    int64_t days = secs / 86400, rem = secs % 86400;
    if (rem < 0) {
        rem += 86400;
        days -= 1;
    }
    int64_t year;
    int month, day;
    util_civil_from_days(days, &year, &month, &day);
    /* The modulos bound every field, so the text always fits. */
    put_digits(out, (unsigned)year % 10000u, 4);
    out[4] = '-';
    put_digits(out + 5, (unsigned)month, 2);
    out[7] = '-';
    put_digits(out + 8, (unsigned)day, 2);
    out[10] = 'T';
    put_digits(out + 11, (unsigned)(rem / 3600), 2);
    out[13] = ':';
    put_digits(out + 14, (unsigned)(rem / 60 % 60), 2);
    out[16] = ':';
    put_digits(out + 17, (unsigned)(rem % 60), 2);
    out[19] = '.';
    put_digits(out + 20, (unsigned)frac, 3);
    out[23] = 'Z';
    out[24] = '\0';
    return out;
}

static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i])) return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

int util_rfc3339_parse(const char *s, int64_t *ms_out)
{
    int y, mo, d, h, mi, sec;
    const char *p = s;
    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
        digits(&p, 2, &d))
        return -1;
    if (*p != 'T' && *p != 't' && *p != ' ') return -1;
    p++;
    if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) || *p++ != ':' ||
        digits(&p, 2, &sec))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return -1;
    int ms = 0;
    if (*p == '.') {
        p++;
        int scale = 100, n = 0;
        while (isdigit((unsigned char)*p)) {
            ms += (*p - '0') * scale;
            scale /= 10;
            p++;
            n++;
        }
        if (n == 0) return -1;
    }
    int offset_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, oh, om;
        p++;
        if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om) || oh > 23 || om > 59)
            return -1;
        offset_min = sign * (oh * 60 + om);
    } else {
        return -1;
    }
    if (*p != '\0') return -1;
    if (d > util_days_in_month(y, mo)) return -1; /* no 31 February */
    int64_t t = util_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + (sec > 59 ? 59 : sec);
    *ms_out = (t - (int64_t)offset_min * 60) * 1000 + ms;
    return 0;
}

void util_random_bytes(void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR) continue;
            fprintf(stderr, "asyncqueue: getrandom failed: %s\n", strerror(errno));
            abort();
        }
        p += got;
        n -= (size_t)got;
    }
}

uint64_t util_random_below(uint64_t bound)
{
    /* Rejection sampling: no modulo bias. */
    uint64_t limit = UINT64_MAX - (UINT64_MAX % bound), r;
    do {
        util_random_bytes(&r, sizeof r);
    } while (r >= limit);
    return r % bound;
}

size_t util_utf8_char(const char *str, size_t avail)
{
    const unsigned char *s = (const unsigned char *)str;
    if (avail == 0) return 0;
    unsigned c = *s;
    if (c < 0x80) return 1;
    size_t n;
    unsigned cp;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 1;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 2;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 3;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (avail <= n) return 0;
    for (size_t i = 1; i <= n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n + 1;
}

bool util_utf8_valid(const char *str, size_t len)
{
    const char *s = str, *end = s + len;
    while (s < end) {
        if (end - s >= 8) { /* eight ASCII bytes at once */
            uint64_t word;
            memcpy(&word, s, 8);
            if ((word & 0x8080808080808080u) == 0) {
                s += 8;
                continue;
            }
        }
        size_t n = util_utf8_char(s, (size_t)(end - s));
        if (n == 0) return false;
        s += n;
    }
    return true;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static size_t digits_at(const char *s, size_t len)
{
    size_t n = 0;
    while (n < len && is_digit(s[n])) n++;
    return n;
}

size_t util_json_number_len(const char *s, size_t len)
{
    if (len == 0) return 0;
    size_t i = s[0] == '-';
    if (i >= len || !is_digit(s[i])) return 0;
    if (s[i] == '0') i++;
    else i += digits_at(s + i, len - i);
    if (i < len && s[i] == '.') {
        size_t n = digits_at(s + i + 1, len - i - 1);
        if (n == 0) return 0;
        i += 1 + n;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-')) i++;
        size_t n = digits_at(s + i, len - i);
        if (n == 0) return 0;
        i += n;
    }
    if (i < len && (is_digit(s[i]) || s[i] == '.' || s[i] == 'e' || s[i] == 'E')) return 0;
    return i;
}

char *util_json_number_exact(const char *s, size_t len)
{
    size_t i = s[0] == '-';
    bool neg = i;
    /* the digits before and after the point, as one string d, and the
     * exponent as written */
    size_t int_n = digits_at(s + i, len - i), frac_n = 0;
    const char *int_p = s + i, *frac_p = "";
    i += int_n;
    if (i < len && s[i] == '.') {
        frac_p = s + i + 1;
        frac_n = digits_at(frac_p, len - i - 1);
        i += 1 + frac_n;
    }
    bool exp_neg = false;
    const char *exp_p = "";
    size_t exp_n = 0;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-')) exp_neg = s[i++] == '-';
        while (i < len && s[i] == '0') i++;
        exp_p = s + i;
        exp_n = digits_at(exp_p, len - i);
    }
    size_t n = int_n + frac_n;
    char *d = xmalloc(n + 64);
    memcpy(d, int_p, int_n);
    memcpy(d + int_n, frac_p, frac_n);
    size_t lead = 0, trail = 0;
    while (lead < n && d[lead] == '0') lead++;
    if (lead == n) { /* zero, whatever its sign and exponent */
        memcpy(d, "0", 2);
        return d;
    }
    while (d[n - 1 - trail] == '0') trail++;
    /* value = d[lead .. n - trail) * 10^(exp - frac_n + trail) */
    size_t m = n - trail - lead;
    memmove(d + neg, d + lead, m);
    if (neg) d[0] = '-';
    char *out = d + neg + m;
    if (exp_n <= 15) { /* |exp| < 10^15 and frac_n < 2^63 - 10^15: no overflow */
        int64_t e = 0;
        for (size_t k = 0; k < exp_n; k++) e = e * 10 + (exp_p[k] - '0');
        e = (exp_neg ? -e : e) - (int64_t)frac_n + (int64_t)trail;
        if (e) snprintf(out, 24, "e%" PRId64, e);
        else *out = '\0';
    } else {
        /* An exponent of 16 digits or more (a value that rounds to 0 as a
         * double): the exponent as written, then the shift, apart. Two
         * spellings of one such value may differ; two values never match. */
        size_t at = (size_t)(out - d);
        d = xrealloc(d, at + exp_n + 48);
        out = d + at;
        out += sprintf(out, "e%c", exp_neg ? '-' : '+');
        memcpy(out, exp_p, exp_n);
        out += exp_n;
        snprintf(out, 24, "%+" PRId64, (int64_t)trail - (int64_t)frac_n);
    }
    return d;
}

bool util_json_key_is(const char *key, size_t key_len, const char *name)
{
    for (size_t i = 0; i < key_len; name++) {
        unsigned c = (unsigned char)key[i++];
        if (c == '\\' && i < key_len) {
            c = (unsigned char)key[i++];
            static const char esc[] = "\"\"\\\\//b\bf\fn\nr\rt\t";
            const char *e = NULL;
            for (size_t k = 0; k + 1 < sizeof esc; k += 2)
                if ((unsigned char)esc[k] == c) e = esc + k + 1;
            if (e) c = (unsigned char)*e;
            else if (c == 'u' && key_len - i >= 4) {
                unsigned v = 0;
                for (size_t k = 0; k < 4; k++) {
                    char h = key[i++];
                    v = v * 16 + (unsigned)(is_digit(h) ? h - '0' : (h | 0x20) - 'a' + 10);
                }
                c = v; /* not ASCII: matches no name (names are ASCII) */
            } else return false;
        }
        if (*name == '\0' || c != (unsigned char)*name) return false;
    }
    return *name == '\0';
}

bool util_whole_number(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || digits_at(s, n) != n || n > 18) return false; /* 18 digits fit in int64_t */
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) v = v * 10 + (s[i] - '0');
    if (v < lo || v > hi) return false;
    *out = v;
    return true;
}

const char *util_json_scan(const char *s, size_t len, int *max_depth)
{
    bool in_string = false;
    int depth = 0, deepest = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!in_string) {
            if (c == '"') {
                in_string = true;
            } else if (c == '{' || c == '[') {
                if (++depth > deepest) deepest = depth;
            } else if (c == '}' || c == ']') {
                depth--;
            } else if (c == '-' || is_digit((char)c)) {
                size_t n = util_json_number_len(s + i, len - i);
                if (n == 0)
                    return "numbers must be written as JSON writes them: no leading zeros (1, not "
                           "01), digits on both sides of a decimal point (0.5 and 1.0, not .5 or "
                           "1.), an exponent with digits (1e5)";
                i += n - 1;
            } else if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
                return "between values JSON allows only spaces, tabs and line breaks; remove the "
                       "other control characters";
            } else if (c >= 0x80) {
                /* cJSON skips a leading byte order mark: text passed on as
                 * it was written would carry it */
                return "outside strings JSON is ASCII: remove the byte order mark or other "
                       "non-ASCII bytes between values";
            }
            continue;
        }
        if (c == '"') {
            in_string = false;
        } else if (c < 0x20) {
            return "strings must not contain control characters; escape them (\\n, \\t, \\u0001)";
        } else if (c == '\\' && i + 1 < len) {
            char e = s[++i]; /* the escaped character */
            if (e == 'u') {
                /* cJSON reads a \u with no four hex digits as U+0000 */
                if (i + 4 >= len || !isxdigit((unsigned char)s[i + 1]) ||
                    !isxdigit((unsigned char)s[i + 2]) || !isxdigit((unsigned char)s[i + 3]) ||
                    !isxdigit((unsigned char)s[i + 4]))
                    return "\\u in a string takes four hex digits (\\u00e9)";
                if (memcmp(s + i + 1, "0000", 4) == 0)
                    return "strings must not contain \\u0000 (NUL characters)";
                i += 4;
            } else if (!e || !strchr("\"\\/bfnrt", e)) {
                return "a backslash in a string escapes one of \" \\ / b f n r t u; write \\\\ "
                       "for a backslash";
            }
        }
    }
    if (max_depth) *max_depth = deepest;
    return NULL;
}

const char *util_json_skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

/* p at the opening quote; returns just past the closing one. */
static const char *json_skip_string(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\') p++;
        else if (*p == '"') return p + 1;
    }
    return end;
}

const char *util_json_skip_value(const char *p, const char *end)
{
    if (p >= end) return end;
    if (*p == '"') return json_skip_string(p, end);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (p < end) {
            if (*p == '"') {
                p = json_skip_string(p, end);
                continue;
            }
            if (*p == '{' || *p == '[') depth++;
            else if (*p == '}' || *p == ']') {
                if (--depth == 0) return p + 1;
            }
            p++;
        }
        return end;
    }
    while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\t' &&
           *p != '\n' && *p != '\r')
        p++;
    return p;
}

const char *util_json_first_member(const char *json, const char *end)
{
    const char *p = util_json_skip_ws(json, end);
    return p < end && *p == '{' ? util_json_skip_ws(p + 1, end) : NULL;
}

bool util_json_next_member(const char **p, const char *end, const char **key, size_t *key_len,
                           const char **value, size_t *value_len)
{
    const char *q = *p;
    if (!q || q >= end || *q != '"') return false;
    const char *kend = json_skip_string(q, end);
    *key = q + 1;
    *key_len = (size_t)(kend - 1 - *key);
    q = util_json_skip_ws(kend, end);
    if (q >= end || *q != ':') return false;
    q = util_json_skip_ws(q + 1, end);
    const char *vend = util_json_skip_value(q, end);
    *value = q;
    *value_len = (size_t)(vend - q);
    q = util_json_skip_ws(vend, end);
    if (q < end && *q == ',') q = util_json_skip_ws(q + 1, end);
    *p = q;
    return true;
}

bool util_json_member(const char *json, size_t len, const char *name, const char **value,
                      size_t *value_len)
{
    const char *end = json + len, *p = util_json_first_member(json, end), *k;
    size_t klen;
    while (util_json_next_member(&p, end, &k, &klen, value, value_len))
        if (util_json_key_is(k, klen, name)) return true;
    return false;
}

void util_json_skip_bom(const char **s, size_t *len)
{
    if (*len >= 3 && memcmp(*s, "\xEF\xBB\xBF", 3) == 0) {
        *s += 3;
        *len -= 3;
    }
}

const char *util_json_strings_bad(const char *s, size_t len)
{
    return util_json_scan(s, len, NULL);
}

bool util_http_token(const char *s, size_t n)
{
    /* tchar: ALPHA, DIGIT and !#$%&'*+-.^_`|~, as bits over the ASCII codes
     * (every request's header names go through here) */
    static const uint64_t tchar[2] = {0x03ff6cfa00000000ULL, 0x57ffffffc7fffffeULL};
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 128 || !((tchar[c >> 6] >> (c & 63)) & 1)) return false;
    }
    return true;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *util_base64_encode(const unsigned char *data, size_t len)
{
    char *out = xmalloc(4 * ((len + 2) / 3) + 1), *o = out;
    size_t i = 0;
    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
        *o++ = b64[v >> 18];
        *o++ = b64[(v >> 12) & 63];
        *o++ = b64[(v >> 6) & 63];
        *o++ = b64[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)data[i] << 16 | (i + 1 < len ? (uint32_t)data[i + 1] << 8 : 0);
        *o++ = b64[v >> 18];
        *o++ = b64[(v >> 12) & 63];
        *o++ = i + 1 < len ? b64[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o = '\0';
    return out;
}

static int b64_value(char c)
{
    const char *p = c ? strchr(b64, c) : NULL;
    return p ? (int)(p - b64) : -1;
}

long util_base64_decode(const char *s, size_t len, unsigned char *out)
{
    if (len % 4 != 0) return -1;
    long n = 0;
    for (size_t i = 0; i < len; i += 4) {
        int v[4], pad = 0;
        for (int k = 0; k < 4; k++) {
            if (s[i + k] == '=' && i + 4 == len && k >= 2) {
                v[k] = 0;
                pad++;
            } else {
                if (pad) return -1; /* data after padding */
                v[k] = b64_value(s[i + k]);
                if (v[k] < 0) return -1;
            }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        out[n++] = (unsigned char)(w >> 16);
        if (pad < 2) out[n++] = (unsigned char)(w >> 8);
        if (pad < 1) out[n++] = (unsigned char)w;
    }
    return n;
}

void buf_init(struct buf *b, size_t cap)
{
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
    b->cap = cap;
}

int buf_append(struct buf *b, const void *data, size_t len)
{
    if (len > b->cap - b->len) return -1;
    if (b->len + len + 1 > b->alloc) {
        size_t want = b->alloc ? b->alloc : 256;
        while (want < b->len + len + 1) want *= 2;
        if (want > b->cap + 1) want = b->cap + 1;
        b->data = xrealloc(b->data, want);
        b->alloc = want;
    }
    if (len) memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int buf_appendf(struct buf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return -1;
    if ((size_t)n < sizeof small) return buf_append(b, small, (size_t)n);
    char *big = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = buf_append(b, big, (size_t)n);
    free(big);
    return rc;
}

char *buf_steal(struct buf *b, size_t *len_out)
{
    char *p = b->data ? b->data : xstrdup("");
    if (len_out) *len_out = b->len;
    b->data = NULL;
    b->len = b->alloc = 0;
    return p;
}

void buf_free(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->alloc = 0;
}
