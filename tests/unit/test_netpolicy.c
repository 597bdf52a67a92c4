/*
 * test_netpolicy: which addresses are refused, as literals and as the
 * sockaddrs libcurl connects to, and the URL check made at creation,
 * including the shorthand forms libcurl normalises (127.1, 2130706433, ...).
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include "netpolicy.h"
#include "util.h"

struct range_case {
    const char *addr;
    const char *range; /* expected class, NULL = public */
};

static const struct range_case v4_cases[] = {
    {"0.0.0.0", "unspecified"},
    {"0.255.255.255", "unspecified"},
    {"10.0.0.0", "private"},
    {"10.255.255.255", "private"},
    {"100.64.0.0", "cgnat"},
    {"100.127.255.255", "cgnat"},
    {"127.0.0.1", "loopback"},
    {"127.255.255.254", "loopback"},
    {"169.254.0.1", "link-local"},
    {"169.254.169.254", "link-local"},
    {"172.16.0.0", "private"},
    {"172.31.255.255", "private"},
    {"192.0.0.8", "reserved"},
    {"192.0.2.1", "documentation"},
    {"192.88.99.1", "reserved"},
    {"192.168.0.1", "private"},
    {"192.168.255.255", "private"},
    {"198.18.0.1", "benchmarking"},
    {"198.19.255.255", "benchmarking"},
    {"198.51.100.7", "documentation"},
    {"203.0.113.9", "documentation"},
    {"224.0.0.1", "multicast"},
    {"239.255.255.250", "multicast"},
    {"240.0.0.1", "reserved"},
    {"255.255.255.255", "reserved"},
    /* Public, including the neighbours of every refused range. */
    {"8.8.8.8", NULL},
    {"1.1.1.1", NULL},
    {"1.0.0.0", NULL},
    {"9.255.255.255", NULL},
    {"11.0.0.0", NULL},
    {"100.63.255.255", NULL},
    {"100.128.0.0", NULL},
    {"126.255.255.255", NULL},
    {"128.0.0.0", NULL},
    {"169.253.255.255", NULL},
    {"169.255.0.0", NULL},
    {"172.15.255.255", NULL},
    {"172.32.0.0", NULL},
    {"192.0.1.255", NULL},
    {"192.167.255.255", NULL},
    {"192.169.0.0", NULL},
    {"198.17.255.255", NULL},
    {"198.20.0.0", NULL},
    {"223.255.255.255", NULL},
};

static const struct range_case v6_cases[] = {
    {"::", "unspecified"},
    {"::1", "loopback"},
    {"::2", "reserved"},
    /* IPv4-mapped and IPv4-compatible forms are judged by their IPv4 part. */
    {"::ffff:127.0.0.1", "loopback"},
    {"::ffff:169.254.169.254", "link-local"},
    {"::ffff:10.1.2.3", "private"},
    {"::ffff:0.0.0.0", "unspecified"},
    {"::10.0.0.1", "private"},
    {"::8.8.8.8", "reserved"}, /* deprecated compatible form */
    /* NAT64 */
    {"64:ff9b::a9fe:a9fe", "link-local"},
    {"64:ff9b::127.0.0.1", "loopback"},
    {"64:ff9b::c0a8:1", "private"},
    {"64:ff9b:1::1", "private"},
    /* 6to4 */
    {"2002:7f00:1::", "loopback"},
    {"2002:a9fe:a9fe::1", "link-local"},
    {"2002:c0a8:101::", "private"},
    /* Teredo: the client address is the last 32 bits, inverted. */
    {"2001:0:4136:e378:8000:63bf:3f57:fefe", "private"},    /* 192.168.1.1 */
    {"2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback"},   /* 127.0.0.1 */
    {"2001:0:4136:e378:8000:63bf:5601:5601", "link-local"}, /* 169.254.169.254 */
    {"fc00::1", "private"},
    {"fd00:ec2::254", "private"},
    {"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "private"},
    {"fe80::1", "link-local"},
    {"febf:ffff::1", "link-local"},
    {"fec0::1", "private"},
    {"ff02::1", "multicast"},
    {"ff05::1:3", "multicast"},
    {"2001:db8::1", "documentation"},
    {"2001:db8:ffff::1", "documentation"},
    {"2001:2::1", "reserved"},
    {"100::1", "reserved"},
    {"4000::1", "reserved"},
    {"1::1", "reserved"},
    /* Public */
    {"2606:4700:4700::1111", NULL},
    {"2001:4860:4860::8888", NULL},
    {"2a00:1450:4001:80b::200e", NULL},
    {"::ffff:8.8.8.8", NULL},
    {"64:ff9b::808:808", NULL},
    {"2002:808:808::1", NULL},
};

static void check_text(const struct range_case *c)
{
    bool literal = false;
    const char *got = netpolicy_classify_text(c->addr, &literal);
    if (!literal) fail_msg("%s not seen as a literal", c->addr);
    if (c->range == NULL && got != NULL) fail_msg("%s refused as %s, want public", c->addr, got);
    if (c->range != NULL && (got == NULL || strcmp(got, c->range) != 0))
        fail_msg("%s classified %s, want %s", c->addr, got ? got : "public", c->range);
}

static void v4_literals(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(v4_cases); i++)
        check_text(&v4_cases[i]);
}

static void v6_literals(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(v6_cases); i++)
        check_text(&v6_cases[i]);
}

static void v4_sockaddrs(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(v4_cases); i++) {
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(443)};
        assert_int_equal(inet_pton(AF_INET, v4_cases[i].addr, &sin.sin_addr), 1);
        const char *got = netpolicy_classify((const struct sockaddr *)&sin);
        if ((got == NULL) != (v4_cases[i].range == NULL) ||
            (got && strcmp(got, v4_cases[i].range) != 0))
            fail_msg("sockaddr %s: %s, want %s", v4_cases[i].addr, got ? got : "public",
                     v4_cases[i].range ? v4_cases[i].range : "public");
    }
}

static void v6_sockaddrs(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(v6_cases); i++) {
        struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(80)};
        assert_int_equal(inet_pton(AF_INET6, v6_cases[i].addr, &sin6.sin6_addr), 1);
        const char *got = netpolicy_classify((const struct sockaddr *)&sin6);
        if ((got == NULL) != (v6_cases[i].range == NULL) ||
            (got && strcmp(got, v6_cases[i].range) != 0))
            fail_msg("sockaddr %s: %s, want %s", v6_cases[i].addr, got ? got : "public",
                     v6_cases[i].range ? v6_cases[i].range : "public");
    }
}

static void other_families_are_refused(void **state)
{
    (void)state;
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    assert_non_null(netpolicy_classify((const struct sockaddr *)&sun));
    struct sockaddr sa = {.sa_family = AF_UNSPEC};
    assert_non_null(netpolicy_classify(&sa));
}

static void text_brackets_and_zones(void **state)
{
    (void)state;
    bool literal = false;
    assert_string_equal(netpolicy_classify_text("[::1]", &literal), "loopback");
    assert_true(literal);
    assert_string_equal(netpolicy_classify_text("[fd00:ec2::254]", &literal), "private");
    assert_string_equal(netpolicy_classify_text("fe80::1%eth0", &literal), "link-local");
    assert_true(literal);
    assert_string_equal(netpolicy_classify_text("[fe80::1%25eth0]", &literal), "link-local");
    assert_null(netpolicy_classify_text("[2606:4700:4700::1111]", &literal));
    assert_true(literal);
}

static void text_non_literals(void **state)
{
    (void)state;
    static const char *const names[] = {
        "example.com",
        "localhost",
        "",
        "[]",
        "[example.com]",
        "127.0.0.1.nip.io",
        "::g",
        "1.2.3.4.5",
        "300.1.1.1",
        "0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0001", /* longer than 63 */
    };
    for (size_t i = 0; i < ARRAY_LEN(names); i++) {
        bool literal = true;
        assert_null(netpolicy_classify_text(names[i], &literal));
        if (literal) fail_msg("'%s' taken for a literal", names[i]);
    }
}

/* ---- URLs ---- */

/* A policy with allow_private_targets as given and no lists. */
static struct netpolicy *policy(bool allow)
{
    struct config cfg;
    tu_config_defaults(&cfg);
    cfg.allow_private_targets = allow;
    char err[256];
    struct netpolicy *np = netpolicy_new(&cfg, err, sizeof err);
    config_free(&cfg);
    assert_non_null(np);
    return np;
}

static enum netpolicy_url_result check(const char *url, bool allow, char *why, size_t why_len)
{
    why[0] = '\0';
    struct netpolicy *np = policy(allow);
    enum netpolicy_url_result rc = netpolicy_check_url(np, url, why, why_len);
    netpolicy_free(np);
    return rc;
}

static void url_public_http_and_https_pass(void **state)
{
    (void)state;
    static const char *const ok[] = {
        "http://example.com/",           "https://example.com/path?q=1#f",  "HTTPS://EXAMPLE.COM",
        "http://8.8.8.8:8080/x",         "https://[2606:4700:4700::1111]/", "http://localhost/",
        "http://user:pass@example.com/",
    };
    char why[256];
    for (size_t i = 0; i < ARRAY_LEN(ok); i++)
        if (check(ok[i], false, why, sizeof why) != NETPOLICY_URL_OK)
            fail_msg("%s refused: %s", ok[i], why);
}

static void url_other_schemes_and_missing_hosts_are_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "ftp://example.com/",
        "file:///etc/passwd",
        "gopher://example.com/",
        "ws://example.com/",
        "javascript:alert(1)",
        "mailto:a@example.com",
        "example.com/path",
        "//example.com/",
        "http://",
        "http://:80/",
        "http://exa mple.com/",
        "https://example.com:99999/",
        "",
    };
    char why[256];
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        /* Invalid stays invalid even when private targets are allowed. */
        for (int allow = 0; allow <= 1; allow++) {
            if (check(bad[i], allow, why, sizeof why) != NETPOLICY_URL_INVALID)
                fail_msg("'%s' (allow=%d) not invalid", bad[i], allow);
            assert_true(why[0] != '\0');
        }
    }
    assert_int_equal(check("ftp://example.com/", false, why, sizeof why), NETPOLICY_URL_INVALID);
    assert_non_null(strstr(why, "ftp"));
}

/* A URL that passed is remembered per thread (netpolicy.c): a repeat must
 * pass again, and a new policy, even one allocated where a freed one was,
 * must decide afresh rather than inherit the old policy's pass. */
static void url_memo_is_per_policy(void **state)
{
    (void)state;
    char why[256];
    const char *url = "http://127.0.0.1:8080/hook";
    struct netpolicy *open = policy(true);
    for (int i = 0; i < 3; i++)
        assert_int_equal(netpolicy_check_url(open, url, why, sizeof why), NETPOLICY_URL_OK);
    netpolicy_free(open);
    for (int i = 0; i < 3; i++) { /* malloc tends to hand back the freed block */
        struct netpolicy *strict = policy(false);
        assert_int_equal(netpolicy_check_url(strict, url, why, sizeof why), NETPOLICY_URL_BLOCKED);
        assert_non_null(strstr(why, "loopback"));
        netpolicy_free(strict);
    }
    /* Many URLs through the slots: each keeps its own answer. */
    struct netpolicy *strict = policy(false);
    for (int i = 0; i < 200; i++) {
        char u[64];
        snprintf(u, sizeof u, "http://10.0.0.%d/x", i);
        assert_int_equal(netpolicy_check_url(strict, u, why, sizeof why), NETPOLICY_URL_BLOCKED);
        snprintf(u, sizeof u, "https://h%d.example.com/x", i);
        assert_int_equal(netpolicy_check_url(strict, u, why, sizeof why), NETPOLICY_URL_OK);
        assert_int_equal(netpolicy_check_url(strict, u, why, sizeof why), NETPOLICY_URL_OK);
    }
    netpolicy_free(strict);
}

/* A target and a webhook on one host and port, as most clients send them:
 * once both passed, taking turns costs no parse, for every port. The memo
 * was direct mapped on the low bits of an FNV-1a hash, and for one port in
 * eight the pair shared a slot and evicted each other at every task. */
static void url_memo_keeps_a_target_and_its_webhook(void **state)
{
    (void)state;
    char why[256];
    struct netpolicy *open = policy(true);
    for (int port = 30000; port < 30256; port++) {
        char target[64], hook[64];
        snprintf(target, sizeof target, "http://127.0.0.1:%d/generate", port);
        snprintf(hook, sizeof hook, "http://127.0.0.1:%d/webhook", port);
        uint64_t before = netpolicy_url_parses();
        for (int i = 0; i < 4; i++) {
            assert_int_equal(netpolicy_check_url(open, target, why, sizeof why), NETPOLICY_URL_OK);
            assert_int_equal(netpolicy_check_url(open, hook, why, sizeof why), NETPOLICY_URL_OK);
        }
        if (netpolicy_url_parses() - before != 2) fail_msg("port %d: %llu parses for two URLs", port,
                                                           (unsigned long long)(netpolicy_url_parses() - before));
    }
    netpolicy_free(open);
}

/* Replaces a config string list (NULL-terminated, as config_free expects). */
static void set_list(char ***list, size_t *n, const char *const *items, size_t k)
{
    for (char **p = *list; p && *p; p++) free(*p);
    free(*list);
    *list = xcalloc(k + 1, sizeof **list);
    for (size_t i = 0; i < k; i++) (*list)[i] = xstrdup(items[i]);
    *n = k;
}

/* A name is the same name with its trailing dot ("svc.test." is the fully
 * qualified svc.test) and in any case: a denied name written with its dot
 * was accepted at creation and called, and an allowed one written in the
 * configuration with its dot matched nothing. */
static void host_names_match_without_their_trailing_dot(void **state)
{
    (void)state;
    struct config cfg;
    tu_config_defaults(&cfg);
    cfg.allow_private_targets = false;
    static const char *const deny[] = {"svc.test", ".denied.test"}, *const allow[] = {"Inside.Test."};
    set_list(&cfg.deny_destinations, &cfg.n_deny_destinations, deny, 2);
    set_list(&cfg.allow_destinations, &cfg.n_allow_destinations, allow, 1);
    char err[256], why[256];
    struct netpolicy *np = netpolicy_new(&cfg, err, sizeof err);
    config_free(&cfg);
    assert_non_null(np);
    static const char *const denied[] = {
        "http://svc.test/", "http://svc.test./", "http://SVC.Test.:8080/x", "http://svc.test../",
        "https://x.denied.test./", "https://denied.test./", "https://A.DENIED.TEST/",
    };
    for (size_t i = 0; i < sizeof denied / sizeof *denied; i++) {
        if (netpolicy_check_url(np, denied[i], why, sizeof why) != NETPOLICY_URL_BLOCKED)
            fail_msg("%s was not refused", denied[i]);
        assert_non_null(strstr(why, "deny_destinations"));
    }
    assert_int_equal(netpolicy_check_url(np, "http://svc.tester/", why, sizeof why), NETPOLICY_URL_OK);
    assert_int_equal(netpolicy_check_url(np, "http://notdenied.test./", why, sizeof why), NETPOLICY_URL_OK);
    /* At connect time, with the name the call was made to. */
    struct sockaddr_in lo = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct sockaddr_in pub = {.sin_family = AF_INET};
    inet_pton(AF_INET, "8.8.8.8", &pub.sin_addr);
    assert_string_equal(netpolicy_check_addr(np, "svc.test.", (struct sockaddr *)&pub), "denied");
    assert_string_equal(netpolicy_check_addr(np, "b.Denied.Test.", (struct sockaddr *)&pub), "denied");
    assert_null(netpolicy_check_addr(np, "inside.test", (struct sockaddr *)&lo));
    assert_null(netpolicy_check_addr(np, "INSIDE.test.", (struct sockaddr *)&lo));
    assert_non_null(netpolicy_check_addr(np, "outside.test", (struct sockaddr *)&lo));
    netpolicy_free(np);
}

/* libcurl would read "https:///x/" as host "x": a URL without a host is
 * refused as such, however the path looks. */
static void url_with_an_empty_host_is_invalid(void **state)
{
    (void)state;
    char why[256];
    assert_int_equal(check("https:///127.0.0.1/", true, why, sizeof why), NETPOLICY_URL_INVALID);
    assert_non_null(strstr(why, "host"));
    assert_int_equal(check("http:///example.com/", true, why, sizeof why), NETPOLICY_URL_INVALID);
}

static void url_private_literals_are_blocked_in_every_spelling(void **state)
{
    (void)state;
    static const struct {
        const char *url;
        const char *range;
    } blocked[] = {
        {"http://127.0.0.1/", "loopback"},
        {"http://127.1/", "loopback"},        /* shorthand, curl: 127.0.0.1 */
        {"http://2130706433/", "loopback"},   /* one decimal number */
        {"http://0x7f.1/", "loopback"},       /* hex */
        {"http://017700000001/", "loopback"}, /* octal */
        {"http://0177.0.0.1/", "loopback"},
        {"http://127.000.000.001/", "loopback"},
        {"http://%31%32%37.0.0.1/", "loopback"}, /* percent-encoded */
        {"http://0/", "unspecified"},
        {"http://user@10.0.0.1/", "private"},
        {"http://127.0.0.1./", "loopback"}, /* a trailing dot is the same address */
        {"http://[::1]/", "loopback"},
        {"http://[::1]:8080/x", "loopback"},
        {"http://[::ffff:127.0.0.1]/", "loopback"},
        {"http://[::ffff:169.254.169.254]/", "link-local"},
        {"http://[64:ff9b::169.254.169.254]/", "link-local"},
        {"http://[fe80::1%25eth0]/", "link-local"},
        {"http://[fd00:ec2::254]/latest/meta-data/", "private"},
        {"http://169.254.169.254/latest/meta-data/", "link-local"},
        {"HTTP://192.168.1.1:8443/", "private"},
    };
    char why[512];
    for (size_t i = 0; i < ARRAY_LEN(blocked); i++) {
        if (check(blocked[i].url, false, why, sizeof why) != NETPOLICY_URL_BLOCKED)
            fail_msg("%s not blocked (%s)", blocked[i].url, why);
        if (!strstr(why, blocked[i].range))
            fail_msg("%s: '%s' does not name %s", blocked[i].url, why, blocked[i].range);
        if (check(blocked[i].url, true, why, sizeof why) != NETPOLICY_URL_OK)
            fail_msg("%s refused with allow_private: %s", blocked[i].url, why);
    }
}

static void url_why_fits_a_small_buffer(void **state)
{
    (void)state;
    char why[16];
    memset(why, 'x', sizeof why);
    assert_int_equal(check("http://127.0.0.1/", false, why, sizeof why), NETPOLICY_URL_BLOCKED);
    assert_int_equal(strlen(why), sizeof why - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(v4_literals),
        cmocka_unit_test(v6_literals),
        cmocka_unit_test(v4_sockaddrs),
        cmocka_unit_test(v6_sockaddrs),
        cmocka_unit_test(other_families_are_refused),
        cmocka_unit_test(text_brackets_and_zones),
        cmocka_unit_test(text_non_literals),
        cmocka_unit_test(url_public_http_and_https_pass),
        cmocka_unit_test(url_other_schemes_and_missing_hosts_are_invalid),
        cmocka_unit_test(url_private_literals_are_blocked_in_every_spelling),
        cmocka_unit_test(url_with_an_empty_host_is_invalid),
        cmocka_unit_test(url_why_fits_a_small_buffer),
        cmocka_unit_test(url_memo_is_per_policy),
        cmocka_unit_test(url_memo_keeps_a_target_and_its_webhook),
        cmocka_unit_test(host_names_match_without_their_trailing_dot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
