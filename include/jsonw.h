/*
 * jsonw: writes JSON text straight into a buffer, for the objects the
 * daemon sends most (the task, the webhook body, live-feed events): no tree
 * of nodes, no second pass. Strings are escaped as cJSON escapes them and
 * numbers printed as cJSON prints them, so the text is what cJSON_Print of
 * the same object would give.
 *
 * Commas are placed by the writer: call jw_key before each member's value
 * inside an object, nothing extra inside an array. Nesting is bounded by
 * JSONW_DEPTH (the daemon's own objects are shallow).
 */
#ifndef AQ_JSONW_H
#define AQ_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>


#define JSONW_DEPTH 16

struct jsonw {
    char *data; /* room is kept for the NUL jw_finish adds */
    size_t len, alloc;
    int depth;
    bool first[JSONW_DEPTH]; /* no member or element written yet at this level */
};

void jw_init(struct jsonw *w);
/* The text (caller frees); the writer is reset. */
char *jw_finish(struct jsonw *w);
void jw_free(struct jsonw *w);

void jw_object(struct jsonw *w);
void jw_object_end(struct jsonw *w);
void jw_array(struct jsonw *w);
void jw_array_end(struct jsonw *w);
/* A member's name: the daemon's own names, written without escaping. */
void jw_key(struct jsonw *w, const char *key);

void jw_string(struct jsonw *w, const char *s); /* NULL writes null */
void jw_string_n(struct jsonw *w, const char *s, size_t len);
void jw_null(struct jsonw *w);
void jw_bool(struct jsonw *w, bool v);
void jw_number(struct jsonw *w, double v);
/* Text that already is JSON, written as it is. */
void jw_raw(struct jsonw *w, const char *json, size_t len);
/* An RFC 3339 time, or null for ms <= 0. */
void jw_time(struct jsonw *w, int64_t ms);

#endif
