/*
 * strmap: a small hash map from strings to pointers (chained, growing).
 * Keys are copied; values are the caller's. Not thread-safe: the owner
 * guards it.
 */
#ifndef AQ_STRMAP_H
#define AQ_STRMAP_H

#include <stddef.h>

struct strmap_entry {
    char *key;
    void *value;
    struct strmap_entry *next;
};

struct strmap {
    struct strmap_entry **buckets;
    size_t n_buckets;
    size_t count;
};

void strmap_init(struct strmap *m);
/* Frees the map; calls free_value on each value when not NULL. */
void strmap_free(struct strmap *m, void (*free_value)(void *));
void *strmap_get(const struct strmap *m, const char *key);
/* Sets key to value; returns the previous value or NULL. */
void *strmap_put(struct strmap *m, const char *key, void *value);
/* Removes key; returns its value or NULL. */
void *strmap_remove(struct strmap *m, const char *key);
/* Calls fn for every entry (order unspecified); fn must not change the map. */
void strmap_each(const struct strmap *m, void (*fn)(const char *key, void *value, void *arg),
                 void *arg);

#endif
