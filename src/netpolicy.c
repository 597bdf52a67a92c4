/*
 * netpolicy: address ranges that are not the public internet, and the URL
 * check made at creation. URL parsing is libcurl's own (curl_url), so what
 * we check is what libcurl will later call.
 */
#include "netpolicy.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <ctype.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cidr.h"
#include "util.h"

struct v4_range {
    uint32_t net;
    int prefix;
    const char *name;
};

static const struct v4_range v4_ranges[] = {
    {0x00000000, 8, "unspecified"},     /* 0.0.0.0/8 "this network" */
    {0x0A000000, 8, "private"},         /* 10.0.0.0/8 */
    {0x64400000, 10, "cgnat"},          /* 100.64.0.0/10 */
    {0x7F000000, 8, "loopback"},        /* 127.0.0.0/8 */
    {0xA9FE0000, 16, "link-local"},     /* 169.254.0.0/16, cloud metadata */
    {0xAC100000, 12, "private"},        /* 172.16.0.0/12 */
    {0xC0000000, 24, "reserved"},       /* 192.0.0.0/24 IETF assignments */
    {0xC0000200, 24, "documentation"},  /* 192.0.2.0/24 */
    {0xC0586300, 24, "reserved"},       /* 192.88.99.0/24 6to4 relay */
    {0xC0A80000, 16, "private"},        /* 192.168.0.0/16 */
    {0xC6120000, 15, "benchmarking"},   /* 198.18.0.0/15 */
    {0xC6336400, 24, "documentation"},  /* 198.51.100.0/24 */
    {0xCB007100, 24, "documentation"},  /* 203.0.113.0/24 */
    {0xE0000000, 4, "multicast"},       /* 224.0.0.0/4 */
    {0xF0000000, 4, "reserved"},        /* 240.0.0.0/4 and broadcast */
};

static const char *classify_v4(uint32_t a)
{
    for (size_t i = 0; i < ARRAY_LEN(v4_ranges); i++) {
        uint32_t mask = v4_ranges[i].prefix ? ~0u << (32 - v4_ranges[i].prefix) : 0;
        if ((a & mask) == v4_ranges[i].net) return v4_ranges[i].name;
    }
    return NULL;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i]) return false;
    return true;
}

static const char *classify_v6(const uint8_t *a)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    if (zero(a, 15)) return a[15] == 1 ? "loopback" : a[15] == 0 ? "unspecified" : "reserved";
    /* Forms that carry an IPv4 address: judge the IPv4 address. */
    if (memcmp(a, mapped, 12) == 0 || zero(a, 12) || memcmp(a, nat64, 12) == 0) {
        const char *c = classify_v4(be32(a + 12));
        return c ? c : zero(a, 12) ? "reserved" : NULL; /* ::a.b.c.d is deprecated */
    }
    if (a[0] == 0x00 && a[1] == 0x64 && a[2] == 0xff && a[3] == 0x9b && a[4] == 0 && a[5] == 1)
        return "private"; /* 64:ff9b:1::/48 local-use NAT64 */
    if (a[0] == 0x20 && a[1] == 0x02) { /* 2002::/16 6to4 */
        const char *c = classify_v4(be32(a + 2));
        return c ? c : NULL;
    }
    if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0 && a[3] == 0) { /* 2001::/32 Teredo */
        const char *c = classify_v4(~be32(a + 12)); /* client address, inverted */
        return c ? c : NULL;
    }
    if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8) return "documentation";
    if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x00 && (a[3] & 0xe0) == 0x00)
        return "reserved"; /* 2001::/23 IETF protocol assignments (beyond Teredo) */
    if (a[0] == 0x01 && a[1] == 0x00 && zero(a + 2, 6)) return "reserved"; /* 100::/64 discard */
    if ((a[0] & 0xfe) == 0xfc) return "private";                          /* fc00::/7 ULA */
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) return "link-local";       /* fe80::/10 */
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0) return "private";          /* fec0::/10 site-local */
    if (a[0] == 0xff) return "multicast";
    if ((a[0] & 0xe0) != 0x20) return "reserved"; /* outside 2000::/3, the global unicast */
    return NULL;
}

const char *netpolicy_classify(const struct sockaddr *sa)
{
    /* Copied out with memcpy: reading a sockaddr_storage (or libcurl's
     * buffer) through another struct type is undefined behaviour. */
    sa_family_t family;
    memcpy(&family, (const char *)sa + offsetof(struct sockaddr, sa_family), sizeof family);
    if (family == AF_INET) {
        struct sockaddr_in in;
        memcpy(&in, sa, sizeof in);
        return classify_v4(ntohl(in.sin_addr.s_addr));
    }
    if (family == AF_INET6) {
        struct sockaddr_in6 in6;
        memcpy(&in6, sa, sizeof in6);
        return classify_v6(in6.sin6_addr.s6_addr);
    }
    return "unsupported-family";
}

const char *netpolicy_classify_text(const char *text, bool *is_literal)
{
    char tmp[64];
    size_t n = strlen(text);
    if (n >= sizeof tmp) {
        *is_literal = false;
        return NULL;
    }
    memcpy(tmp, text, n + 1);
    if (n >= 2 && tmp[0] == '[' && tmp[n - 1] == ']') {
        memmove(tmp, tmp + 1, n - 2);
        tmp[n - 2] = '\0';
    }
    char *zone = strchr(tmp, '%'); /* fe80::1%eth0 */
    if (zone) *zone = '\0';
    struct in_addr v4;
    struct in6_addr v6;
    *is_literal = true;
    if (inet_pton(AF_INET, tmp, &v4) == 1) return classify_v4(ntohl(v4.s_addr));
    if (inet_pton(AF_INET6, tmp, &v6) == 1) return classify_v6(v6.s6_addr);
    *is_literal = false;
    return NULL;
}

struct netpolicy {
    uint64_t generation; /* unique per policy made: keys the URL memo below */
    bool allow_private;
    struct cidr *allow_cidrs, *deny_cidrs;
    size_t n_allow_cidrs, n_deny_cidrs;
    char **allow_hosts, **deny_hosts; /* lower case; ".example.com" matches under it */
    size_t n_allow_hosts, n_deny_hosts;
};

static bool host_name_ok(const char *s)
{
    if (!*s || strlen(s) > 253) return false;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-') return false;
    return true;
}

static int add_entries(char **list, size_t n, struct cidr **cidrs, size_t *n_cidrs, char ***hosts,
                       size_t *n_hosts, const char *key, char *err, size_t err_len)
{
    for (size_t i = 0; i < n; i++) {
        struct cidr c;
        if (cidr_parse(list[i], &c)) {
            *cidrs = xrealloc(*cidrs, (*n_cidrs + 1) * sizeof **cidrs);
            (*cidrs)[(*n_cidrs)++] = c;
        } else if (host_name_ok(list[i])) {
            *hosts = xrealloc(*hosts, (*n_hosts + 1) * sizeof **hosts);
            char *h = xstrdup(list[i]);
            for (char *p = h; *p; p++) *p = (char)tolower((unsigned char)*p);
            for (size_t l = strlen(h); l > 1 && h[l - 1] == '.'; l--) h[l - 1] = '\0';
            (*hosts)[(*n_hosts)++] = h;
        } else {
            snprintf(err, err_len, "%s: '%s' is neither a CIDR (10.0.0.0/8, fd00::/8) nor a host name",
                     key, list[i]);
            return -1;
        }
    }
    return 0;
}

struct netpolicy *netpolicy_new(const struct config *cfg, char *err, size_t err_len)
{
    static atomic_uint_fast64_t generations;
    struct netpolicy *np = xcalloc(1, sizeof *np);
    np->generation = atomic_fetch_add(&generations, 1) + 1; /* 0 marks an empty memo slot */
    np->allow_private = cfg->allow_private_targets;
    if (add_entries(cfg->allow_destinations, cfg->n_allow_destinations, &np->allow_cidrs,
                    &np->n_allow_cidrs, &np->allow_hosts, &np->n_allow_hosts, "allow_destinations",
                    err, err_len) ||
        add_entries(cfg->deny_destinations, cfg->n_deny_destinations, &np->deny_cidrs,
                    &np->n_deny_cidrs, &np->deny_hosts, &np->n_deny_hosts, "deny_destinations", err,
                    err_len)) {
        netpolicy_free(np);
        return NULL;
    }
    return np;
}

void netpolicy_free(struct netpolicy *np)
{
    if (!np) return;
    for (size_t i = 0; i < np->n_allow_hosts; i++) free(np->allow_hosts[i]);
    for (size_t i = 0; i < np->n_deny_hosts; i++) free(np->deny_hosts[i]);
    free(np->allow_hosts);
    free(np->deny_hosts);
    free(np->allow_cidrs);
    free(np->deny_cidrs);
    free(np);
}

/* "example.com" matches itself; ".example.com" matches names under it.
 * Names compare without case and without trailing dots: "svc.test." is the
 * fully qualified svc.test, and the resolver reads it so (a denied name
 * written with its dot was called). */
static bool in_hosts(char *const *list, size_t n, const char *host)
{
    size_t hl = strlen(host);
    while (hl > 1 && host[hl - 1] == '.') hl--;
    for (size_t i = 0; i < n; i++) {
        const char *e = list[i];
        size_t el = strlen(e);
        if (e[0] == '.') {
            if (hl > el && strncasecmp(host + hl - el, e, el) == 0) return true;
            if (hl == el - 1 && strncasecmp(host, e + 1, hl) == 0) return true;
        } else if (hl == el && strncasecmp(host, e, el) == 0) {
            return true;
        }
    }
    return false;
}

const char *netpolicy_check_addr(const struct netpolicy *np, const char *host,
                                 const struct sockaddr *sa)
{
    sa_family_t family;
    memcpy(&family, (const char *)sa + offsetof(struct sockaddr, sa_family), sizeof family);
    if (family != AF_INET && family != AF_INET6) return "unsupported-family";
    if (cidr_contains(np->deny_cidrs, np->n_deny_cidrs, sa)) return "denied";
    if (host && in_hosts(np->deny_hosts, np->n_deny_hosts, host)) return "denied";
    if (np->allow_private) return NULL;
    if (cidr_contains(np->allow_cidrs, np->n_allow_cidrs, sa)) return NULL;
    if (host && in_hosts(np->allow_hosts, np->n_allow_hosts, host)) return NULL;
    return netpolicy_classify(sa);
}

/* The URL memo. Clients send their tasks to the same few targets and
 * webhooks, and parsing a URL with libcurl (allocations, normalisation) was
 * 7 % of the daemon's CPU when accepting tasks. So each thread keeps the
 * last URLs that passed, and a repeat costs a hash and a compare. Only a
 * pass is kept (a refusal needs its reason and is rare), only short URLs
 * (in place, so a thread's exit leaks nothing), and each entry names the
 * policy that passed it by generation, not address: a new policy can be
 * allocated where a freed one was. The answer depends on nothing else: the
 * policy is immutable and the check does not resolve names. */
#define URL_MEMO_SET_BITS 4
#define URL_MEMO_SETS (1u << URL_MEMO_SET_BITS) /* two ways each: 32 URLs a thread */
#define URL_MEMO_MAX 200

struct url_memo {
    uint64_t generation;
    uint32_t hash;
    uint32_t len;
    char url[URL_MEMO_MAX];
};
struct url_memo_set {
    struct url_memo way[2];
    unsigned older; /* the way to replace next: the one not hit last */
};
static _Thread_local struct url_memo_set url_memo[URL_MEMO_SETS];
static _Thread_local uint64_t url_parses;

uint64_t netpolicy_url_parses(void)
{
    return url_parses;
}

static uint32_t url_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

/* The set is chosen by the hash's high bits: FNV-1a's low bits depend only
 * on the low bits of each byte, and with the low five bits choosing among 32
 * direct-mapped slots, a target and a webhook on one host and port (like
 * http://127.0.0.1:P/generate and /webhook) shared a slot for one port in
 * eight and took turns evicting each other, so every task parsed a URL. Two
 * ways a set keep any two URLs that meet there. */
static struct url_memo_set *url_memo_set_of(const char *url, size_t n, uint32_t *hash)
{
    *hash = url_hash(url, n);
    return &url_memo[*hash >> (32 - URL_MEMO_SET_BITS)];
}

static bool url_memo_hit(struct url_memo_set *set, const struct netpolicy *np, uint32_t hash,
                         const char *url, size_t len)
{
    for (unsigned w = 0; w < 2; w++) {
        const struct url_memo *m = &set->way[w];
        if (m->generation == np->generation && m->hash == hash && m->len == len &&
            memcmp(m->url, url, len) == 0) {
            set->older = 1 - w;
            return true;
        }
    }
    return false;
}

static void url_memo_keep(struct url_memo_set *set, const struct netpolicy *np, uint32_t hash,
                          const char *url, size_t len)
{
    struct url_memo *m = &set->way[set->older];
    set->older = 1 - set->older;
    m->generation = np->generation;
    m->hash = hash;
    m->len = (uint32_t)len;
    memcpy(m->url, url, len);
}

enum netpolicy_url_result netpolicy_check_url(const struct netpolicy *np, const char *url,
                                              char *why, size_t why_len)
{
    size_t url_len = strlen(url);
    uint32_t hash = 0;
    struct url_memo_set *memo = url_len < URL_MEMO_MAX ? url_memo_set_of(url, url_len, &hash) : NULL;
    if (memo && url_memo_hit(memo, np, hash, url, url_len)) return NETPOLICY_URL_OK;
    enum netpolicy_url_result rc = NETPOLICY_URL_INVALID;
    char *scheme = NULL, *host = NULL;
    url_parses++;
    CURLU *u = curl_url();
    if (!u) {
        snprintf(why, why_len, "cannot parse the URL right now; try again");
        return NETPOLICY_URL_INVALID;
    }
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
        snprintf(why, why_len, "must be an absolute http or https URL, like https://example.com/path");
        goto out;
    }
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0)) {
        snprintf(why, why_len, "must use http or https, not %s", scheme ? scheme : "no scheme");
        goto out;
    }
    const char *sep = strstr(url, "://");
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host || !*host ||
        (sep && sep[3] == '/')) { /* libcurl reads "https:///x" as host "x" */
        snprintf(why, why_len, "must name a host, like https://example.com/path");
        goto out;
    }
    for (char *p = host; *p; p++) *p = (char)tolower((unsigned char)*p);
    if (in_hosts(np->deny_hosts, np->n_deny_hosts, host)) {
        snprintf(why, why_len, "names a host this daemon may not call (deny_destinations)");
        rc = NETPOLICY_URL_BLOCKED;
        goto out;
    }
    /* curl normalises shorthand such as "127.1" or "2130706433" into dotted
     * quads, so `host` here is the form it will connect to. */
    char lit[64];
    snprintf(lit, sizeof lit, "%s", host);
    size_t n = strlen(lit);
    if (n >= 2 && lit[0] == '[' && lit[n - 1] == ']') {
        memmove(lit, lit + 1, n - 2);
        lit[n - 2] = '\0';
    }
    char *zone = strchr(lit, '%');
    if (zone) *zone = '\0';
    n = strlen(lit);
    if (n > 1 && lit[n - 1] == '.') lit[n - 1] = '\0'; /* "127.0.0.1." is 127.0.0.1 */
    struct sockaddr_in v4 = {0};
    struct sockaddr_in6 v6 = {0};
    const struct sockaddr *sa = NULL;
    if (inet_pton(AF_INET, lit, &v4.sin_addr) == 1) {
        v4.sin_family = AF_INET;
        sa = (const struct sockaddr *)&v4;
    } else if (inet_pton(AF_INET6, lit, &v6.sin6_addr) == 1) {
        v6.sin6_family = AF_INET6;
        sa = (const struct sockaddr *)&v6;
    } else if (lit[strspn(lit, "0123456789abcdefxABCDEFX.")] == '\0' &&
               inet_aton(lit, &v4.sin_addr) != 0) {
        /* Shorthand libcurl did not normalise (it was percent-encoded):
         * the resolver reads "127.0.1" or "12" as an address all the same. */
        v4.sin_family = AF_INET;
        sa = (const struct sockaddr *)&v4;
    }
    const char *range = sa ? netpolicy_check_addr(np, NULL, sa) : NULL;
    if (range) {
        if (strcmp(range, "denied") == 0)
            snprintf(why, why_len, "points at an address this daemon may not call (deny_destinations)");
        else
            snprintf(why, why_len,
                     "points at a %s address, which is refused; use a public address, or allow it "
                     "with allow_destinations (or allow_private_targets = true)",
                     range);
        rc = NETPOLICY_URL_BLOCKED;
        goto out;
    }
    rc = NETPOLICY_URL_OK;
    if (memo) url_memo_keep(memo, np, hash, url, url_len);
out:
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}
