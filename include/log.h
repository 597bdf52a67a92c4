/*
 * log: one line per event on stderr, in logfmt ("key=value") after a time
 * stamp, a level and an event name:
 *
 *   2026-11-28T10:12:22.123Z INFO task.accepted id=... queue=default
 *
 * Each line goes out in one write(2), so lines from different threads never
 * interleave. Hot loops collect their lines in a struct log_batch and write
 * them with one system call.
 *
 * Thread-safe; the level is set once at start-up before threads start.
 */
#ifndef AQ_LOG_H
#define AQ_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF };

/* Parses "debug", "info", "warn", "error" or "off". Returns 0 or -1. */
int log_level_parse(const char *s, enum log_level *out);
void log_set_level(enum log_level level);
bool log_enabled(enum log_level level);

/* fmt continues the line after the event name, usually "k=v k=v". */
void log_msg(enum log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Quotes s for a logfmt value: wraps it in double quotes when it holds
 * spaces, quotes, '=' or control characters, escaping as needed, and cuts
 * it at out_len. Returns out. */
char *log_quote(char *out, size_t out_len, const char *s);

/* Lines collected by one thread and written together. */
struct log_batch {
    struct buf buf;
};

void log_batch_init(struct log_batch *b);
void log_batch_add(struct log_batch *b, enum log_level level, const char *event, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));
/* Writes what was collected and empties the batch (it stays usable). */
void log_batch_flush(struct log_batch *b);
void log_batch_free(struct log_batch *b);

#endif
