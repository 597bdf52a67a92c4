/*
 * seqset: a set of positive 64-bit sequence numbers (open addressing,
 * linear probing, backward-shift deletion, growing at 1/2 load). Cheap for
 * the writer to add to and take from once per claimed job. Not thread-safe:
 * the owner guards it.
 */
#ifndef AQ_SEQSET_H
#define AQ_SEQSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct seqset {
    int64_t *slots; /* 0 marks a free slot */
    size_t cap;     /* a power of two, or 0 */
    size_t count;
};

void seqset_init(struct seqset *s);
void seqset_free(struct seqset *s);
/* Adds seq (> 0); adding one already there changes nothing. */
void seqset_add(struct seqset *s, int64_t seq);
/* Removes seq; returns whether it was there. */
bool seqset_remove(struct seqset *s, int64_t seq);
bool seqset_has(const struct seqset *s, int64_t seq);

#endif
