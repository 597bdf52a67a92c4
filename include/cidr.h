/*
 * cidr: address ranges (10.0.0.0/8, fd00::/8, a bare address) and whether an
 * address falls in one. IPv4-mapped IPv6 addresses count as IPv4.
 * Pure; thread-safe once built.
 */
#ifndef AQ_CIDR_H
#define AQ_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct cidr {
    int family;               /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    int prefix;
};

/* Parses "a.b.c.d[/n]" or "v6[/n]". Returns false when text is neither. */
bool cidr_parse(const char *text, struct cidr *out);
/* True when sa is inside one of the n ranges. */
bool cidr_contains(const struct cidr *list, size_t n, const struct sockaddr *sa);
/* The same for an address in text form ("1.2.3.4", "::1"); false when text
 * is not an address. */
bool cidr_contains_text(const struct cidr *list, size_t n, const char *text);

#endif
