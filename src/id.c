/*
 * id: UUIDv7: milliseconds, a counter, random bits (libuuid 2.38 makes no v7,
 * and its uuid_unparse goes through sprintf: both are done here).
 */
#include "id.h"

#include <ctype.h>
#include <pthread.h>
#include <string.h>
#include <uuid/uuid.h>

#include "util.h"

/* Ids made in the same millisecond sort in the order they were made: the
 * 12 bits after the version hold a counter (RFC 9562, method 1) started at a
 * random value each millisecond, the other 62 bits are random. The random
 * bytes come from a per-thread buffer filled by getrandom, so an id costs
 * no system call most of the time. */
/* How far before the last id's time an id may be asked for and still come
 * after it: a time read a moment ago, not a clock step. */
#define ID_LATE_MS 1000

static pthread_mutex_t clock_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t last_ms;
static unsigned counter;

static _Thread_local unsigned char pool[4096];
static _Thread_local size_t pool_used = sizeof pool;

static void random_bytes(unsigned char *out, size_t n)
{
    if (pool_used + n > sizeof pool) {
        util_random_bytes(pool, sizeof pool);
        pool_used = 0;
    }
    memcpy(out, pool + pool_used, n);
    pool_used += n;
}

void id_new(int64_t now_ms, char out[ID_LEN])
{
    uuid_t u = {0}; /* filled below; initialised for cppcheck, which cannot see it */
    random_bytes(u, sizeof u);
    pthread_mutex_lock(&clock_lock);
    if (now_ms <= last_ms && last_ms - now_ms <= ID_LATE_MS) {
        /* The same millisecond, or a time taken a moment before the last
         * id's (a batch takes its time once, then makes an id for each
         * task while other requests make theirs; or ids borrowed ahead,
         * below): after the last id, so that ids made one after another
         * sort in that order. */
        now_ms = last_ms;
        if (++counter > 0xFFF) { /* 2048+ ids in one ms: borrow the next */
            last_ms = ++now_ms;
            counter = 0;
        }
    } else {
        /* A new millisecond (or the clock stepped back further: the id
         * keeps the time it was given, as ids carry their creation time). */
        last_ms = now_ms;
        counter = ((unsigned)(u[6] & 0x0F) << 8 | u[7]) & 0x7FF; /* random, low in the range */
    }
    unsigned seq = counter;
    pthread_mutex_unlock(&clock_lock);
    uint64_t ms = (uint64_t)now_ms;
    for (int i = 0; i < 6; i++) u[i] = (unsigned char)(ms >> (40 - 8 * i));
    u[6] = (unsigned char)(0x70 | (seq >> 8)); /* version 7 and the counter's top bits */
    u[7] = (unsigned char)seq;
    u[8] = (unsigned char)(0x80 | (u[8] & 0x3F)); /* RFC 4122 variant */
    /* 8-4-4-4-12 lower-case hex (uuid_unparse goes through sprintf). */
    util_hex(u, 4, out);
    out[8] = '-';
    util_hex(u + 4, 2, out + 9);
    out[13] = '-';
    util_hex(u + 6, 2, out + 14);
    out[18] = '-';
    util_hex(u + 8, 2, out + 19);
    out[23] = '-';
    util_hex(u + 10, 6, out + 24); /* ends with the NUL at 36 */
}

bool id_valid(const char *s)
{
    if (strlen(s) != 36) return false;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') return false;
        } else if (!isxdigit((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}
