/*
 * fuzz_netpolicy: libFuzzer harness for the destination policy:
 * netpolicy_check_url and netpolicy_classify_text on the input as text, and
 * netpolicy_classify / netpolicy_check_addr on IPv4 and IPv6 socket
 * addresses built from the input bytes.
 *
 * Oracles (a violation aborts):
 * - an IPv4 address and the IPv6 forms that embed it (::ffff:a.b.c.d,
 *   64:ff9b::a.b.c.d) are judged alike;
 * - a URL the default policy accepts at creation does not have a host that
 *   the system's own numeric parser (getaddrinfo, AI_NUMERICHOST, which
 *   takes 127.1, 0x7f.1 and the like) reads as a refused address.
 *
 * A percent-encoded shorthand host (http://%31%32%37.0.1/, which curl
 * decodes to "127.0.1" without normalising it) once passed the creation
 * check; fuzz/corpus/netpolicy/known-bug-* keeps that input as a seed.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include "config.h"
#include "netpolicy.h"

static struct config cfg_plain, cfg_lists;
static struct netpolicy *np_plain, *np_lists;

static struct netpolicy *load(struct config *cfg, int argc, char **argv)
{
    char err[1024];
    enum config_mode mode;
    char *envp[] = {NULL};
    if (config_load(cfg, argc, argv, envp, &mode, err, sizeof err) != EXIT_OK) abort();
    struct netpolicy *np = netpolicy_new(cfg, err, sizeof err);
    if (!np) abort();
    return np;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char *plain[] = {"fuzz", NULL};
    char *lists[] = {"fuzz", "--allow-destinations", "10.1.0.0/16,fd00::/8,127.0.0.2,api.internal,.svc.test",
                     "--deny-destinations", "169.254.0.0/16,10.1.2.0/24,evil.test,.bad.test", NULL};
    np_plain = load(&cfg_plain, 1, plain);
    np_lists = load(&cfg_lists, 5, lists);
    return 0;
}

static void url_oracle(const char *url)
{
    char why[256];
    if (netpolicy_check_url(np_plain, url, why, sizeof why) != NETPOLICY_URL_OK) return;
    CURLU *u = curl_url();
    char *host = NULL;
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host) {
        char h[300];
        snprintf(h, sizeof h, "%s", host);
        size_t n = strlen(h);
        if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
            memmove(h, h + 1, n - 2);
            h[n - 2] = '\0';
        }
        struct addrinfo hints = {0}, *res = NULL;
        hints.ai_flags = AI_NUMERICHOST;
        hints.ai_socktype = SOCK_STREAM;
        if (getaddrinfo(h, NULL, &hints, &res) == 0) {
            for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
                const char *range = netpolicy_classify(ai->ai_addr);
                if (range) {
                    fprintf(stderr, "check_url accepted %s, whose host %s is %s\n", url, h, range);
                    abort();
                }
            }
            freeaddrinfo(res);
        }
    }
    curl_free(host);
    curl_url_cleanup(u);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192) return 0;
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';

    bool literal;
    netpolicy_classify_text(text, &literal);
    char why[256];
    netpolicy_check_url(np_lists, text, why, sizeof why);
    url_oracle(text);

    const char *host = size > 20 ? text + 20 : "api.internal";
    if (size >= 4) {
        struct sockaddr_in v4 = {.sin_family = AF_INET};
        memcpy(&v4.sin_addr, data, 4);
        const char *c4 = netpolicy_classify((struct sockaddr *)&v4);
        netpolicy_check_addr(np_plain, NULL, (struct sockaddr *)&v4);
        netpolicy_check_addr(np_lists, host, (struct sockaddr *)&v4);

        static const uint8_t prefixes[2][12] = {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff},
                                                {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0}};
        for (int i = 0; i < 2; i++) {
            struct sockaddr_in6 m = {.sin6_family = AF_INET6};
            memcpy(m.sin6_addr.s6_addr, prefixes[i], 12);
            memcpy(m.sin6_addr.s6_addr + 12, data, 4);
            const char *c6 = netpolicy_classify((struct sockaddr *)&m);
            if ((c4 == NULL) != (c6 == NULL)) {
                fprintf(stderr, "IPv4 %u.%u.%u.%u is %s but its IPv6 form %d is %s\n", data[0], data[1],
                        data[2], data[3], c4 ? c4 : "public", i, c6 ? c6 : "public");
                abort();
            }
            /* allow/deny lists must judge the mapped form like the IPv4 one. */
            const char *a4 = netpolicy_check_addr(np_lists, NULL, (struct sockaddr *)&v4);
            const char *a6 = netpolicy_check_addr(np_lists, NULL, (struct sockaddr *)&m);
            if (i == 0 && (a4 == NULL) != (a6 == NULL)) {
                fprintf(stderr, "lists judge %u.%u.%u.%u and ::ffff: of it differently\n", data[0],
                        data[1], data[2], data[3]);
                abort();
            }
        }
    }
    if (size >= 16) {
        struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
        memcpy(v6.sin6_addr.s6_addr, data, 16);
        netpolicy_classify((struct sockaddr *)&v6);
        netpolicy_check_addr(np_plain, NULL, (struct sockaddr *)&v6);
        netpolicy_check_addr(np_lists, host, (struct sockaddr *)&v6);
        char buf[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, &v6.sin6_addr, buf, sizeof buf);
        netpolicy_classify_text(buf, &literal);
        if (!literal) abort();
        struct sockaddr_storage other = {0};
        other.ss_family = (sa_family_t)(data[0] % 3 == 0 ? AF_UNIX : AF_INET6);
        netpolicy_check_addr(np_lists, host, (struct sockaddr *)&other);
    }
    free(text);
    return 0;
}
