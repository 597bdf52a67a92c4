/* seqset: see include/seqset.h. */
#include "seqset.h"

#include <stdlib.h>

#include "util.h"

void seqset_init(struct seqset *s)
{
    s->slots = NULL;
    s->cap = 0;
    s->count = 0;
}

void seqset_free(struct seqset *s)
{
    free(s->slots);
    seqset_init(s);
}

static size_t home(const struct seqset *s, int64_t seq)
{
    uint64_t h = (uint64_t)seq * 0x9E3779B97F4A7C15ULL; /* Fibonacci hashing */
    return (size_t)(h >> 32) & (s->cap - 1);
}

static void put(struct seqset *s, int64_t seq)
{
    size_t i = home(s, seq);
    while (s->slots[i] && s->slots[i] != seq) i = (i + 1) & (s->cap - 1);
    if (!s->slots[i]) {
        s->slots[i] = seq;
        s->count++;
    }
}

void seqset_add(struct seqset *s, int64_t seq)
{
    if ((s->count + 1) * 2 > s->cap) {
        struct seqset bigger = {.cap = s->cap ? s->cap * 2 : 64};
        bigger.slots = xcalloc(bigger.cap, sizeof *bigger.slots);
        for (size_t i = 0; i < s->cap; i++)
            if (s->slots[i]) put(&bigger, s->slots[i]);
        free(s->slots);
        *s = bigger;
    }
    put(s, seq);
}

bool seqset_has(const struct seqset *s, int64_t seq)
{
    if (!s->cap || seq <= 0) return false;
    for (size_t i = home(s, seq); s->slots[i]; i = (i + 1) & (s->cap - 1))
        if (s->slots[i] == seq) return true;
    return false;
}

bool seqset_remove(struct seqset *s, int64_t seq)
{
    if (!s->cap || seq <= 0) return false;
    size_t mask = s->cap - 1, i = home(s, seq);
    while (s->slots[i] != seq) {
        if (!s->slots[i]) return false;
        i = (i + 1) & mask;
    }
    /* Backward-shift: pull later members of the run into the hole when
     * their home is not between the hole and them. */
    for (size_t j = (i + 1) & mask; s->slots[j]; j = (j + 1) & mask) {
        size_t h = home(s, s->slots[j]);
        bool movable = i <= j ? (h <= i || h > j) : (h <= i && h > j);
        if (movable) {
            s->slots[i] = s->slots[j];
            i = j;
        }
    }
    s->slots[i] = 0;
    s->count--;
    return true;
}
