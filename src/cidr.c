/*
 * cidr: parsing and prefix matching.
 */
#include "cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool cidr_parse(const char *text, struct cidr *c)
{
    char tmp[80];
    snprintf(tmp, sizeof tmp, "%s", text);
    char *slash = strchr(tmp, '/');
    if (slash) *slash = '\0';
    memset(c, 0, sizeof *c);
    if (inet_pton(AF_INET, tmp, c->addr) == 1) {
        c->family = AF_INET;
        c->prefix = 32;
    } else if (inet_pton(AF_INET6, tmp, c->addr) == 1) {
        c->family = AF_INET6;
        c->prefix = 128;
    } else {
        return false;
    }
    if (slash) {
        char *end;
        long p = strtol(slash + 1, &end, 10);
        if (end == slash + 1 || *end || p < 0 || p > c->prefix) return false;
        c->prefix = (int)p;
    }
    return true;
}

/* The address as bytes; returns its family (mapped IPv6 as AF_INET). The
 * address is copied out with memcpy: callers pass sockaddr_in,
 * sockaddr_in6 or sockaddr_storage objects, and reading those through
 * another struct type is undefined (GCC at -O2 reorders such reads). */
static int addr_bytes(const struct sockaddr *sa, unsigned char out[16])
{
    sa_family_t family;
    memcpy(&family, (const char *)sa + offsetof(struct sockaddr, sa_family), sizeof family);
    if (family == AF_INET) {
        struct sockaddr_in in;
        memcpy(&in, sa, sizeof in);
        memcpy(out, &in.sin_addr, 4);
        return AF_INET;
    }
    if (family == AF_INET6) {
        struct sockaddr_in6 in6;
        memcpy(&in6, sa, sizeof in6);
        const unsigned char *a = in6.sin6_addr.s6_addr;
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(a, mapped, 12) == 0) {
            memcpy(out, a + 12, 4);
            return AF_INET;
        }
        memcpy(out, a, 16);
        return AF_INET6;
    }
    return -1;
}

bool cidr_contains(const struct cidr *list, size_t n, const struct sockaddr *sa)
{
    unsigned char a[16];
    int family = addr_bytes(sa, a);
    if (family < 0) return false; /* neither IPv4 nor IPv6: in no list */
    for (size_t i = 0; i < n; i++) {
        if (list[i].family != family) continue;
        int bits = list[i].prefix, k = 0;
        bool match = true;
        for (; bits >= 8 && match; bits -= 8, k++) match = a[k] == list[i].addr[k];
        if (match && bits > 0) {
            unsigned char mask = (unsigned char)(0xff << (8 - bits));
            match = (a[k] & mask) == (list[i].addr[k] & mask);
        }
        if (match) return true;
    }
    return false;
}

bool cidr_contains_text(const struct cidr *list, size_t n, const char *text)
{
    struct sockaddr_in v4 = {0};
    struct sockaddr_in6 v6 = {0};
    if (inet_pton(AF_INET, text, &v4.sin_addr) == 1) {
        v4.sin_family = AF_INET;
        return cidr_contains(list, n, (const struct sockaddr *)&v4);
    }
    if (inet_pton(AF_INET6, text, &v6.sin6_addr) == 1) {
        v6.sin6_family = AF_INET6;
        return cidr_contains(list, n, (const struct sockaddr *)&v6);
    }
    return false;
}
