/*
 * netpolicy: which destinations the daemon may call. A task queue calls any
 * URL it is given, so by default it refuses every address that is not
 * public: loopback, private, CGNAT, link-local (cloud metadata), multicast,
 * reserved and documentation ranges, and IPv6 forms that embed such IPv4
 * addresses (mapped, compatible, NAT64, 6to4, Teredo). The operator can
 * allow private destinations (allow_private_targets, or allow_destinations
 * for some CIDRs and host names) and deny others (deny_destinations, checked
 * first).
 *
 * The check runs on the URL at creation (scheme, denied names, address
 * literals) and on every address libcurl actually connects to, so a name
 * that resolves (or re-resolves: DNS rebinding) to a forbidden address
 * fails too.
 *
 * Immutable after netpolicy_new(); every function is thread-safe.
 */
#ifndef AQ_NETPOLICY_H
#define AQ_NETPOLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"

struct netpolicy;

/* Parses allow/deny lists from cfg. Returns NULL with err set when an entry
 * is neither a CIDR nor a host name. */
struct netpolicy *netpolicy_new(const struct config *cfg, char *err, size_t err_len);
void netpolicy_free(struct netpolicy *np); /* NULL is a no-op */

/* NULL when the address is public; otherwise a short name of the range it
 * falls in ("loopback", "private", "link-local", ...). */
const char *netpolicy_classify(const struct sockaddr *sa);
/* The same for an address literal ("10.0.0.1", "::1", "[::1]"). Sets
 * *is_literal to whether text was an address at all; returns NULL for
 * non-literals. */
const char *netpolicy_classify_text(const char *text, bool *is_literal);

/* May a call for host connect to sa? NULL: yes; else why not ("denied", or
 * the range name). host is the URL's host name, lower case. */
const char *netpolicy_check_addr(const struct netpolicy *np, const char *host,
                                 const struct sockaddr *sa);

enum netpolicy_url_result {
    NETPOLICY_URL_OK = 0,
    NETPOLICY_URL_INVALID,  /* not an absolute http(s) URL with a host */
    NETPOLICY_URL_BLOCKED,  /* a denied host, or a literal address in a refused range */
};

/* Checks a target or webhook URL at creation. On failure writes a sentence
 * saying what to fix into why. */
enum netpolicy_url_result netpolicy_check_url(const struct netpolicy *np, const char *url,
                                              char *why, size_t why_len);

/* How many URLs this thread has parsed in netpolicy_check_url rather than
 * found in its memo of URLs that passed (for tests of the memo). */
uint64_t netpolicy_url_parses(void);

#endif
