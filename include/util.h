/*
 * util: the small things every module needs and none owns: allocation that
 * aborts on out-of-memory, clocks, RFC 3339 time stamps, a growable byte
 * buffer with a hard cap, and random bytes.
 *
 * All functions are thread-safe.
 */
#ifndef AQ_UTIL_H
#define AQ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Allocation for internal, bounded sizes. Aborts the process on
 * out-of-memory; sizes that come from the network are capped by the caller
 * before they reach these. */
void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);          /* NULL in, NULL out */
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Copies src into dst of cap bytes, cut to fit and always NUL-terminated
 * when cap > 0 (what snprintf(dst, cap, "%s", src) does, without parsing a
 * format). Returns the bytes copied. */
size_t util_strcopy(char *dst, size_t cap, const char *src);

/* Wall clock in milliseconds since the Unix epoch: stored times, run_at. */
int64_t util_now_ms(void);
/* Monotonic milliseconds: timeouts and durations, immune to clock jumps. */
int64_t util_mono_ms(void);
/* The wall clock minus the monotonic one: drifts slowly while NTP slews,
 * jumps when the wall clock is stepped (NTP, a resumed VM). Kept beside a
 * time decided from util_now_ms(), it tells which frame that time is in. */
int64_t util_clock_offset_ms(void);
/* Monotonic microseconds, for latencies below a millisecond. */
int64_t util_mono_us(void);

/* RFC 3339 UTC with milliseconds, "2026-11-28T10:12:22.123Z". out must hold
 * at least UTIL_RFC3339_LEN bytes. Returns out. */
#define UTIL_RFC3339_LEN 32
/* Writes n bytes as 2n lower-case hex digits and a NUL to out. */
void util_hex(const unsigned char *in, size_t n, char *out);
char *util_rfc3339(int64_t ms, char *out);
/* The proleptic Gregorian calendar, as days since 1970-01-01 (negative
 * before): gmtime's, without libc's time-zone state. Months 1-12; weekday 0
 * is Sunday. */
bool util_leap_year(int64_t y);
int util_days_in_month(int64_t y, int m);
int64_t util_days_from_civil(int64_t y, int m, int d);
void util_civil_from_days(int64_t days, int64_t *y, int *m, int *d);
int util_weekday(int64_t days);
/* Parses an RFC 3339 date-time (any offset, optional fraction) into epoch
 * milliseconds. Returns 0 on success, -1 when the text is not one. */
int util_rfc3339_parse(const char *s, int64_t *ms_out);

/* Fills buf with n cryptographically random bytes (getrandom). Aborts if the
 * kernel cannot provide them, which on Linux only happens before boot ends. */
void util_random_bytes(void *buf, size_t n);
/* A uniformly random integer in [0, bound), bound > 0. */
uint64_t util_random_below(uint64_t bound);

/* True when s is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
bool util_utf8_valid(const char *s, size_t len);
/* The length (1 to 4) of the well-formed UTF-8 character at s, of the
 * avail bytes there; 0 when they do not start one. */
size_t util_utf8_char(const char *s, size_t avail);

/* Checks JSON text for what a parser may let through but a JSON consumer
 * must not see: raw control characters in strings (RFC 8259 forbids them),
 * "\u0000" escapes, and control characters between values other than the
 * tab, CR and LF that RFC 8259 allows there (cJSON takes every byte up to a
 * space for whitespace, a NUL too), numbers RFC 8259 does not allow (cJSON
 * reads 01, 1. and -.5) and escapes it does not have (cJSON reads a \u
 * without four hex digits as U+0000). Returns NULL, or a static sentence
 * saying what is wrong. */
const char *util_json_strings_bad(const char *s, size_t len);
/* Moves *s past a UTF-8 byte order mark at its start, if there is one
 * (RFC 8259 8.1: a parser may ignore it; it is not JSON, and text after it
 * is, so JSON passed on as it was written must not carry it). */
void util_json_skip_bom(const char **s, size_t *len);
/* The same, in the same pass, also setting *max_depth (when not NULL) to the
 * deepest nesting of arrays and objects outside strings. */
const char *util_json_scan(const char *s, size_t len, int *max_depth);

/* The length of the RFC 8259 number that starts s (of its len bytes), or 0
 * when s does not start with one, or the number runs on into a digit, a
 * point or an exponent it cannot take (cJSON reads 01, 1., 1.e5 and -.5 as
 * numbers too). */
size_t util_json_number_len(const char *s, size_t len);

/* The exact value of the RFC 8259 number s (len bytes, as
 * util_json_number_len found it), in one spelling for each value: the
 * significant digits, then "e" and the power of ten when it is not 0, with
 * "-" before a negative value ("0" for any zero). 12345678901234567890
 * and 12345678901234567891 differ, which as doubles they do not; 1.50, 15e-1
 * and 0.15E1 are all "15e-1". A new string the caller frees. */
char *util_json_number_exact(const char *s, size_t len);
/* True when the member name key (key_len bytes as written between the
 * quotes of valid JSON, escapes and all) is the ASCII string name. */
bool util_json_key_is(const char *key, size_t key_len, const char *name);

/* True when s is a whole number written in digits only (no sign, space or
 * other base) from lo to hi; then *out holds it. */
bool util_whole_number(const char *s, int64_t lo, int64_t hi, int64_t *out);

/* A scanner over JSON text already known to be valid, to find where values
 * are written (numbers and strings kept exactly as the client wrote them).
 * Each takes the position and the end of the text and returns the position
 * after what it skipped: blanks; any value. */
const char *util_json_skip_ws(const char *p, const char *end);
const char *util_json_skip_value(const char *p, const char *end);
/* The members of a (valid) JSON object, one at a time: start with *p at the
 * text's beginning (util_json_first_member) and call util_json_next_member
 * until it returns false; each call sets the key (without its quotes, as
 * written) and where the value is written, and moves *p past it. */
const char *util_json_first_member(const char *json, const char *end);
bool util_json_next_member(const char **p, const char *end, const char **key, size_t *key_len,
                           const char **value, size_t *value_len);

/* Where the member name of the (valid) JSON object text is written: true
 * with *value and *value_len, or false when there is none (the name may be
 * written with escapes). */
bool util_json_member(const char *json, size_t len, const char *name, const char **value,
                      size_t *value_len);

/* True when the n bytes of s are an HTTP token (RFC 9110: what a header
 * name is made of), n > 0. */
bool util_http_token(const char *s, size_t n);

/* Base64 (standard alphabet, padded). util_base64_encode returns a new
 * NUL-terminated string the caller frees. util_base64_decode returns the
 * number of bytes written to out (which must hold len*3/4 bytes) or -1. */
char *util_base64_encode(const unsigned char *data, size_t len);
long util_base64_decode(const char *s, size_t len, unsigned char *out);

/* A growable byte buffer that refuses to grow past cap bytes. Always keeps a
 * NUL after the data so text can be used as a C string. */
struct buf {
    char *data;
    size_t len;
    size_t alloc;
    size_t cap;
};

void buf_init(struct buf *b, size_t cap);
/* Appends; returns 0, or -1 (and appends nothing) when cap would be exceeded. */
int buf_append(struct buf *b, const void *data, size_t len);
int buf_appendf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands the data to the caller (who frees it) and resets b. */
char *buf_steal(struct buf *b, size_t *len_out);
void buf_free(struct buf *b);

#endif
