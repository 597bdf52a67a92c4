/*
 * strmap: FNV-1a hashing, chaining, doubling when the load passes 1.
 */
#include "strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static size_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return (size_t)h;
}

void strmap_init(struct strmap *m)
{
    m->n_buckets = 16;
    m->buckets = xcalloc(m->n_buckets, sizeof *m->buckets);
    m->count = 0;
}

void strmap_free(struct strmap *m, void (*free_value)(void *))
{
    for (size_t i = 0; i < m->n_buckets; i++) {
        for (struct strmap_entry *e = m->buckets[i], *next; e; e = next) {
            next = e->next;
            if (free_value) free_value(e->value);
            free(e->key);
            free(e);
        }
    }
    free(m->buckets);
    memset(m, 0, sizeof *m);
}

void *strmap_get(const struct strmap *m, const char *key)
{
    for (struct strmap_entry *e = m->buckets[hash(key) % m->n_buckets]; e; e = e->next)
        if (strcmp(e->key, key) == 0) return e->value;
    return NULL;
}

static void grow(struct strmap *m)
{
    size_t n = m->n_buckets * 2;
    struct strmap_entry **b = xcalloc(n, sizeof *b);
    for (size_t i = 0; i < m->n_buckets; i++) {
        for (struct strmap_entry *e = m->buckets[i], *next; e; e = next) {
            next = e->next;
            size_t h = hash(e->key) % n;
            e->next = b[h];
            b[h] = e;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->n_buckets = n;
}

void *strmap_put(struct strmap *m, const char *key, void *value)
{
    size_t h = hash(key) % m->n_buckets;
    for (struct strmap_entry *e = m->buckets[h]; e; e = e->next) {
        if (strcmp(e->key, key) == 0) {
            void *old = e->value;
            e->value = value;
            return old;
        }
    }
    struct strmap_entry *e = xmalloc(sizeof *e);
    e->key = xstrdup(key);
    e->value = value;
    e->next = m->buckets[h];
    m->buckets[h] = e;
    if (++m->count > m->n_buckets) grow(m);
    return NULL;
}

void *strmap_remove(struct strmap *m, const char *key)
{
    for (struct strmap_entry **p = &m->buckets[hash(key) % m->n_buckets]; *p; p = &(*p)->next) {
        if (strcmp((*p)->key, key) == 0) {
            struct strmap_entry *e = *p;
            void *v = e->value;
            *p = e->next;
            free(e->key);
            free(e);
            m->count--;
            return v;
        }
    }
    return NULL;
}

void strmap_each(const struct strmap *m, void (*fn)(const char *key, void *value, void *arg),
                 void *arg)
{
    for (size_t i = 0; i < m->n_buckets; i++)
        for (struct strmap_entry *e = m->buckets[i]; e; e = e->next) fn(e->key, e->value, arg);
}
