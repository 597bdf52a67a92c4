/*
 * log: formats lines and writes each (or each batch) with one write(2) to
 * stderr. The level is a plain int read by every thread; it is written only
 * before threads start.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096
#define LOG_BATCH_MAX (4u << 20)

static enum log_level current_level = LOG_INFO;

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

int log_level_parse(const char *s, enum log_level *out)
{
    static const char *const names[] = {"debug", "info", "warn", "error", "off"};
    for (size_t i = 0; i < ARRAY_LEN(names); i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

void log_set_level(enum log_level level)
{
    current_level = level;
}

bool log_enabled(enum log_level level)
{
    return level >= current_level && level < LOG_OFF;
}

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return; /* stderr gone: nothing better to do */
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Appends s (len bytes) and a space to line at *n; what does not fit in
 * LOG_LINE_MAX - 2 (room for the newline and the NUL) is cut. */
static void put(char *line, int *n, const char *s, size_t len)
{
    int room = LOG_LINE_MAX - 2 - *n;
    if (room <= 0) return;
    if (len >= (size_t)room) {
        memcpy(line + *n, s, (size_t)room);
        *n += room;
        return;
    }
    memcpy(line + *n, s, len);
    *n += (int)len;
    line[(*n)++] = ' ';
}

/* Formats one line into line[LOG_LINE_MAX]; returns its length. The prefix
 * is copied, not printed, and the timestamp is kept per thread for the
 * millisecond: the writer logs a line per task, in bursts. */
static size_t format_line(char *line, enum log_level level, const char *event, const char *fmt,
                          va_list ap)
{
    static _Thread_local int64_t ts_ms = -1;
    static _Thread_local char ts[UTIL_RFC3339_LEN];
    static _Thread_local size_t ts_len;
    int64_t now = util_now_ms();
    if (now != ts_ms) {
        ts_len = strlen(util_rfc3339(now, ts));
        ts_ms = now;
    }
    size_t level_len = strlen(level_names[level]); /* these two always fit */
    memcpy(line, ts, ts_len);
    line[ts_len] = ' ';
    memcpy(line + ts_len + 1, level_names[level], level_len);
    line[ts_len + 1 + level_len] = ' ';
    int n = (int)(ts_len + level_len + 2);
    put(line, &n, event, strlen(event));
    if (n < LOG_LINE_MAX - 2) {
        int m = vsnprintf(line + n, LOG_LINE_MAX - (size_t)n, fmt, ap);
        if (m > 0) n += m;
    }
    if (n > LOG_LINE_MAX - 2) n = LOG_LINE_MAX - 2;
    while (n > 0 && line[n - 1] == ' ') n--;
    line[n++] = '\n';
    line[n] = '\0';
    return (size_t)n;
}

void log_msg(enum log_level level, const char *event, const char *fmt, ...)
{
    if (!log_enabled(level)) return;
    char line[LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    size_t n = format_line(line, level, event, fmt, ap);
    va_end(ap);
    write_all(line, n);
}

char *log_quote(char *out, size_t out_len, const char *s)
{
    if (!s) s = "";
    bool plain = *s != '\0';
    for (const char *p = s; *p && plain; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '"' || *p == '=' || *p == '\\') plain = false;
    if (plain) {
        util_strcopy(out, out_len, s);
        return out;
    }
    size_t o = 0;
    if (out_len < 3) {
        if (out_len) out[0] = '\0';
        return out;
    }
    out[o++] = '"';
    for (const char *p = s; *p && o + 3 < out_len; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < ' ' || c == 0x7f) {
            out[o++] = ' ';
        } else {
            out[o++] = (char)c;
        }
    }
    out[o++] = '"';
    out[o] = '\0';
    return out;
}

void log_batch_init(struct log_batch *b)
{
    buf_init(&b->buf, LOG_BATCH_MAX);
}

void log_batch_add(struct log_batch *b, enum log_level level, const char *event, const char *fmt,
                   ...)
{
    if (!log_enabled(level)) return;
    char line[LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    size_t n = format_line(line, level, event, fmt, ap);
    va_end(ap);
    if (buf_append(&b->buf, line, n) < 0) {
        log_batch_flush(b);
        buf_append(&b->buf, line, n);
    }
}

void log_batch_flush(struct log_batch *b)
{
    if (b->buf.len) write_all(b->buf.data, b->buf.len);
    b->buf.len = 0;
}

void log_batch_free(struct log_batch *b)
{
    log_batch_flush(b);
    buf_free(&b->buf);
}
