/*
 * embedded: files compiled into the binary (build/gen/embedded.c is made
 * from them by tools/embed.sh), so the daemon needs nothing beside it.
 */
#ifndef AQ_EMBEDDED_H
#define AQ_EMBEDDED_H

#include <stddef.h>

struct embedded_file {
    const char *name;  /* file name without directory, e.g. "0001_init.sql" */
    const char *data;  /* len bytes, followed by a NUL */
    size_t len;
};

/* migrations/NNNN_*.sql in name order; the list ends with name == NULL. */
extern const struct embedded_file embedded_migrations[];
/* dashboard/ files: the dashboard served at /dashboard/. */
extern const struct embedded_file embedded_dashboard[];

#endif
