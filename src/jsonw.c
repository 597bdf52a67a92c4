/* jsonw: see include/jsonw.h. */
#include "jsonw.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void jw_init(struct jsonw *w)
{
    w->data = NULL;
    w->len = w->alloc = 0;
    w->depth = 0;
    w->first[0] = true;
}

char *jw_finish(struct jsonw *w)
{
    char *s = w->data ? w->data : xstrdup("");
    if (w->data) s[w->len] = '\0';
    jw_init(w);
    return s;
}

void jw_free(struct jsonw *w)
{
    free(w->data);
    jw_init(w);
}

/* Room for n more bytes and the final NUL. The first buffer stays under
 * glibc's large-request size (1,008 bytes): a large request makes malloc
 * consolidate its fast bins first, which a 1 KiB start did for every 202
 * body and webhook payload (1-2 % of the HTTP and worker threads' time). */
#define JSONW_FIRST_ALLOC 960

static void reserve(struct jsonw *w, size_t n)
{
    if (w->len + n + 1 <= w->alloc) return;
    size_t want = w->alloc ? w->alloc * 2 : JSONW_FIRST_ALLOC;
    while (want < w->len + n + 1) want *= 2;
    w->data = xrealloc(w->data, want);
    w->alloc = want;
}

static inline void put(struct jsonw *w, const char *s, size_t n)
{
    reserve(w, n);
    memcpy(w->data + w->len, s, n);
    w->len += n;
}

static inline void put_c(struct jsonw *w, char c)
{
    reserve(w, 1);
    w->data[w->len++] = c;
}

/* Before a value: the comma, unless it is the first at its level (after a
 * key the key already placed it). */
static inline void value_start(struct jsonw *w)
{
    if (!w->first[w->depth]) put_c(w, ',');
    w->first[w->depth] = false;
}

static void open_(struct jsonw *w, char c)
{
    value_start(w);
    put_c(w, c);
    if (w->depth < JSONW_DEPTH - 1) w->depth++;
    w->first[w->depth] = true;
}

static void close_(struct jsonw *w, char c)
{
    put_c(w, c);
    if (w->depth > 0) w->depth--;
}

void jw_object(struct jsonw *w) { open_(w, '{'); }
void jw_object_end(struct jsonw *w) { close_(w, '}'); }
void jw_array(struct jsonw *w) { open_(w, '['); }
void jw_array_end(struct jsonw *w) { close_(w, ']'); }

static void escaped(struct jsonw *w, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    put_c(w, '"');
    size_t run = 0; /* bytes copied as they are, flushed in one append */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            run++;
            continue;
        }
        size_t chr = c >= 0x80 ? util_utf8_char(s + i, len - i) : 0;
        if (chr) { /* a well-formed character, copied as it is */
            run += chr;
            i += chr - 1;
            continue;
        }
        put(w, s + i - run, run);
        run = 0;
        if (c >= 0x80) { /* not UTF-8 (a message cut inside a character, say) */
            put(w, "\\ufffd", 6);
            continue;
        }
        char e[6] = {'\\', 0};
        size_t n = 2;
        switch (c) {
        case '"': e[1] = '"'; break;
        case '\\': e[1] = '\\'; break;
        case '\b': e[1] = 'b'; break;
        case '\f': e[1] = 'f'; break;
        case '\n': e[1] = 'n'; break;
        case '\r': e[1] = 'r'; break;
        case '\t': e[1] = 't'; break;
        default:
            e[1] = 'u';
            e[2] = '0';
            e[3] = '0';
            e[4] = hex[c >> 4];
            e[5] = hex[c & 15];
            n = 6;
        }
        put(w, e, n);
    }
    put(w, s + len - run, run);
    put_c(w, '"');
}

void jw_key(struct jsonw *w, const char *key)
{
    value_start(w);
    size_t n = strlen(key);
    reserve(w, n + 3);
    w->data[w->len++] = '"';
    memcpy(w->data + w->len, key, n);
    w->len += n;
    w->data[w->len++] = '"';
    w->data[w->len++] = ':';
    w->first[w->depth] = true; /* the value that follows takes no comma; it clears this */
}

void jw_string_n(struct jsonw *w, const char *s, size_t len)
{
    value_start(w);
    escaped(w, s, len);
}

void jw_string(struct jsonw *w, const char *s)
{
    if (!s) {
        jw_null(w);
        return;
    }
    jw_string_n(w, s, strlen(s));
}

void jw_null(struct jsonw *w)
{
    value_start(w);
    put(w, "null", 4);
}

void jw_bool(struct jsonw *w, bool v)
{
    value_start(w);
    if (v) put(w, "true", 4);
    else put(w, "false", 5);
}

/* As cJSON prints numbers: %1.15g, or %1.17g when that does not read back
 * the same; NaN and infinities as null. Integers below 1e15 (what %1.15g
 * prints in full) are formatted by hand. */
void jw_number(struct jsonw *w, double v)
{
    value_start(w);
    char out[32];
    int n;
    if (isnan(v) || isinf(v)) {
        put(w, "null", 4);
        return;
    }
    /* The range check first: converting a double beyond int64_t is undefined. */
    if (fabs(v) < 1e15 && v == (double)(int64_t)v && !(v == 0 && signbit(v))) {
        int64_t i = (int64_t)v;
        char tmp[24];
        int k = 0;
        uint64_t u = i < 0 ? (uint64_t)(-i) : (uint64_t)i;
        do {
            tmp[k++] = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        n = 0;
        if (i < 0) out[n++] = '-';
        while (k) out[n++] = tmp[--k];
        put(w, out, (size_t)n);
        return;
    }
    n = snprintf(out, sizeof out, "%1.15g", v);
    if (strtod(out, NULL) != v) n = snprintf(out, sizeof out, "%1.17g", v);
    put(w, out, (size_t)n);
}

void jw_raw(struct jsonw *w, const char *json, size_t len)
{
    value_start(w);
    put(w, json, len);
}

void jw_time(struct jsonw *w, int64_t ms)
{
    if (ms <= 0) {
        jw_null(w);
        return;
    }
    char ts[UTIL_RFC3339_LEN];
    util_rfc3339(ms, ts);
    value_start(w);
    put_c(w, '"');
    put(w, ts, strlen(ts));
    put_c(w, '"');
}
