/*
 * apierr: the one shape of every API error,
 *   {"error": {"code": "...", "field": "...", "message": "..."}}
 * with the HTTP status it goes out with. Messages say what to fix.
 */
#ifndef AQ_APIERR_H
#define AQ_APIERR_H

struct api_error {
    int status;          /* HTTP status */
    const char *code;    /* static string, e.g. "invalid_field" */
    char field[64];      /* offending field, "" when none */
    char message[384];
    int retry_after_s;   /* > 0: sent as Retry-After */
};

void api_error_set(struct api_error *e, int status, const char *code, const char *field,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Sets err to inner's refusal of a part of the request, where ("tasks[3]",
 * "task"): the field as where.field (where alone when inner has none), the
 * message after "where: ", status, code and Retry-After kept. */
void api_error_within(struct api_error *err, const char *where, const struct api_error *inner);
/* The JSON body; caller frees. */
char *api_error_json(const struct api_error *e);

#endif
