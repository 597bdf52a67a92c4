/*
 * cidr: parsing and prefix matching.
 */
#include "cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
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

/* The address as bytes; returns its family (mapped IPv6 as AF_INET). */
static int addr_bytes(const struct sockaddr *sa, unsigned char out[16])
{
    if (sa->sa_family == AF_INET) {
        memcpy(out, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return AF_INET;
    }
    if (sa->sa_family == AF_INET6) {
        const unsigned char *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
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
    struct sockaddr_storage ss = {0};
    if (inet_pton(AF_INET, text, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
        ss.ss_family = AF_INET;
    } else if (inet_pton(AF_INET6, text, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
        ss.ss_family = AF_INET6;
    } else {
        return false;
    }
    return cidr_contains(list, n, (const struct sockaddr *)&ss);
}
