/*
 * test_cidr: parsing ranges and matching addresses, IPv4 inside IPv6
 * (mapped) included; and the operator lists of netpolicy built on it.
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "cidr.h"
#include "netpolicy.h"

static void parse_accepts_ranges_and_bare_addresses(void **state)
{
    (void)state;
    struct cidr c;
    assert_true(cidr_parse("10.0.0.0/8", &c));
    assert_int_equal(c.family, AF_INET);
    assert_int_equal(c.prefix, 8);
    assert_true(cidr_parse("1.2.3.4", &c));
    assert_int_equal(c.prefix, 32);
    assert_true(cidr_parse("fd00::/8", &c));
    assert_int_equal(c.family, AF_INET6);
    assert_true(cidr_parse("::1", &c));
    assert_int_equal(c.prefix, 128);
    static const char *const bad[] = {"", "10.0.0.0/33", "fd00::/129", "10.0.0.0/", "10/8",
                                      "example.com", "1.2.3.4/-1", "1.2.3.4/8x"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        if (cidr_parse(bad[i], &c)) fail_msg("'%s' parsed", bad[i]);
}

static void contains_honours_the_prefix(void **state)
{
    (void)state;
    struct cidr list[3];
    assert_true(cidr_parse("10.1.0.0/16", &list[0]));
    assert_true(cidr_parse("192.168.1.128/25", &list[1]));
    assert_true(cidr_parse("2001:db8:abcd::/48", &list[2]));
    assert_true(cidr_contains_text(list, 3, "10.1.255.255"));
    assert_false(cidr_contains_text(list, 3, "10.2.0.0"));
    assert_true(cidr_contains_text(list, 3, "192.168.1.200"));
    assert_false(cidr_contains_text(list, 3, "192.168.1.127"));
    assert_true(cidr_contains_text(list, 3, "2001:db8:abcd:ffff::1"));
    assert_false(cidr_contains_text(list, 3, "2001:db8:abce::1"));
    /* An IPv4-mapped IPv6 address is judged as the IPv4 address. */
    assert_true(cidr_contains_text(list, 3, "::ffff:10.1.2.3"));
    assert_false(cidr_contains_text(list, 3, "not an address"));
    assert_false(cidr_contains_text(list, 0, "10.1.2.3"));
}

static struct netpolicy *policy(const char *allow, const char *deny, bool private_ok)
{
    struct config cfg;
    char dir[512], err[512], text[512];
    tu_mkdtemp(dir, sizeof dir);
    snprintf(text, sizeof text, "allow_destinations = %s\ndeny_destinations = %s\n"
             "allow_private_targets = %s\n", allow, deny, private_ok ? "true" : "false");
    char *path = tu_write_file(dir, "np.conf", text);
    char *argv[] = {"asyncqueue", "--config", path, NULL};
    char *envp[] = {NULL};
    enum config_mode mode;
    if (config_load(&cfg, 3, argv, envp, &mode, err, sizeof err) != EXIT_OK) fail_msg("%s", err);
    struct netpolicy *np = netpolicy_new(&cfg, err, sizeof err);
    if (!np) fail_msg("netpolicy_new: %s", err);
    config_free(&cfg);
    unlink(path);
    free(path);
    tu_rmtree(dir);
    return np;
}

static const char *check_addr(const struct netpolicy *np, const char *host, const char *ip)
{
    struct sockaddr_storage ss = {0};
    if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr) == 1) ss.ss_family = AF_INET;
    else if (inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) ss.ss_family = AF_INET6;
    else fail_msg("bad test address %s", ip);
    return netpolicy_check_addr(np, host, (struct sockaddr *)&ss);
}

static void allow_lists_open_private_ranges_and_names(void **state)
{
    (void)state;
    struct netpolicy *np = policy("10.1.0.0/16, api.internal, .corp.example", "", false);
    assert_null(check_addr(np, "anything", "10.1.2.3"));          /* by CIDR */
    assert_non_null(check_addr(np, "anything", "10.2.0.1"));      /* outside it */
    assert_null(check_addr(np, "api.internal", "192.168.0.9"));   /* by name */
    assert_null(check_addr(np, "x.corp.example", "172.16.0.1"));  /* under a .domain */
    assert_null(check_addr(np, "corp.example", "172.16.0.1"));    /* the domain itself */
    assert_non_null(check_addr(np, "evilcorp.example", "172.16.0.1")); /* not a suffix match */
    assert_null(check_addr(np, "public.example", "8.8.8.8"));
    char why[256];
    assert_int_equal(netpolicy_check_url(np, "http://10.1.0.5/x", why, sizeof why), NETPOLICY_URL_OK);
    assert_int_equal(netpolicy_check_url(np, "http://10.9.0.5/x", why, sizeof why), NETPOLICY_URL_BLOCKED);
    netpolicy_free(np);
}

static void deny_lists_win_over_everything(void **state)
{
    (void)state;
    struct netpolicy *np = policy("10.0.0.0/8", "10.6.6.0/24, blocked.example", true);
    const char *why = check_addr(np, "ok.example", "10.6.6.6");
    assert_non_null(why);
    assert_string_equal(why, "denied");
    assert_string_equal(check_addr(np, "blocked.example", "8.8.8.8"), "denied");
    assert_null(check_addr(np, "ok.example", "10.7.0.1"));  /* allowed, not denied */
    assert_null(check_addr(np, "ok.example", "127.0.0.1")); /* allow_private_targets */
    char msg[256];
    assert_int_equal(netpolicy_check_url(np, "https://blocked.example/", msg, sizeof msg),
                     NETPOLICY_URL_BLOCKED);
    assert_non_null(strstr(msg, "deny_destinations"));
    assert_int_equal(netpolicy_check_url(np, "https://BLOCKED.example/", msg, sizeof msg),
                     NETPOLICY_URL_BLOCKED); /* host names are compared in lower case */
    netpolicy_free(np);
}

static void bad_list_entries_are_config_errors(void **state)
{
    (void)state;
    struct config cfg;
    tu_config_defaults(&cfg);
    char *bad[] = {"not a host!", NULL};
    char **kept = cfg.deny_destinations; /* the (empty) list config_free owns */
    char err[256];
    cfg.deny_destinations = bad;
    cfg.n_deny_destinations = 1;
    assert_null(netpolicy_new(&cfg, err, sizeof err));
    assert_non_null(strstr(err, "deny_destinations"));
    cfg.deny_destinations = kept;
    cfg.n_deny_destinations = 0;
    config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_accepts_ranges_and_bare_addresses),
        cmocka_unit_test(contains_honours_the_prefix),
        cmocka_unit_test(allow_lists_open_private_ranges_and_names),
        cmocka_unit_test(deny_lists_win_over_everything),
        cmocka_unit_test(bad_list_entries_are_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
