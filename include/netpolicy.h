/*
 * netpolicy: which destinations the daemon may call. A task queue calls any
 * URL it is given, so by default it refuses every address that is not
 * public: loopback, private, CGNAT, link-local (cloud metadata), multicast,
 * reserved and documentation ranges, and IPv6 forms that embed such IPv4
 * addresses (mapped, compatible, NAT64, 6to4, Teredo).
 *
 * The check runs twice: on the URL at creation, when the host is an address
 * literal, and on every address libcurl actually connects to, so a name that
 * resolves (or re-resolves) to a forbidden address fails too.
 *
 * Pure functions; thread-safe.
 */
#ifndef AQ_NETPOLICY_H
#define AQ_NETPOLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* NULL when the address is public; otherwise a short name of the range it
 * falls in ("loopback", "private", "link-local", ...). */
const char *netpolicy_classify(const struct sockaddr *sa);

/* The same for an address literal ("10.0.0.1", "::1", "[::1]"). Sets
 * *is_literal to whether text was an address at all; returns NULL for
 * non-literals. */
const char *netpolicy_classify_text(const char *text, bool *is_literal);

enum netpolicy_url_result {
    NETPOLICY_URL_OK = 0,
    NETPOLICY_URL_INVALID,  /* not an absolute http(s) URL with a host */
    NETPOLICY_URL_BLOCKED,  /* host is a literal address in a refused range */
};

/* Checks a target or webhook URL at creation. On failure writes a sentence
 * saying what to fix into why. */
enum netpolicy_url_result netpolicy_check_url(const char *url, bool allow_private, char *why,
                                              size_t why_len);

#endif
