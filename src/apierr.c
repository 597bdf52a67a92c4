/*
 * apierr: filling and printing API errors.
 */
#include "apierr.h"

#include <stdarg.h>
#include <stdio.h>

#include "jsonw.h"

void api_error_set(struct api_error *e, int status, const char *code, const char *field,
                   const char *fmt, ...)
{
    e->status = status;
    e->code = code;
    e->retry_after_s = 0;
    snprintf(e->field, sizeof e->field, "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

/* Written with jsonw, which writes UTF-8 whatever the strings hold: a
 * field name or message cut inside a character (%.64s) shows U+FFFD there. */
char *api_error_json(const struct api_error *e)
{
    struct jsonw w;
    jw_init(&w);
    jw_object(&w);
    jw_key(&w, "error");
    jw_object(&w);
    jw_key(&w, "code");
    jw_string(&w, e->code ? e->code : "error");
    if (e->field[0]) {
        jw_key(&w, "field");
        jw_string(&w, e->field);
    }
    jw_key(&w, "message");
    jw_string(&w, e->message);
    jw_object_end(&w);
    jw_object_end(&w);
    return jw_finish(&w);
}

void api_error_within(struct api_error *err, const char *where, const struct api_error *inner)
{
    char field[sizeof err->field];
    size_t at = (size_t)snprintf(field, sizeof field, "%s", where);
    if (inner->field[0] && at + 1 < sizeof field) { /* a long unknown name is cut, as elsewhere */
        field[at++] = '.';
        snprintf(field + at, sizeof field - at, "%s", inner->field);
    }
    api_error_set(err, inner->status, inner->code, field, "%s: %s", where, inner->message);
    err->retry_after_s = inner->retry_after_s;
}
