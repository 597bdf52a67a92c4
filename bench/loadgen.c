/*
 * loadgen: sends exactly N POSTs (wrk cannot stop at a count), C at a time
 * over keep-alive connections, with one libcurl multi loop, and reports
 * when the first and last answers came. `make bench` enqueues the tasks of
 * its dispatch and concurrency scenarios with it.
 *
 *   loadgen --url URL --body FILE -n N [-c C] [-H 'Name: value']... [--max-seconds S]
 *
 * Prints key=value lines: sent, ok (2xx), non2xx, errors, start_ms,
 * first_ok_ms, last_ok_ms (wall clock, milliseconds since the epoch, to be
 * compared with fakesrv's), elapsed_ms. Exit 0 when every request got a 2xx.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long long now_ms(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t discard(char *p, size_t s, size_t n, void *u)
{
    (void)p;
    (void)u;
    return s * n;
}

int main(int argc, char **argv)
{
    const char *url = NULL, *body_file = NULL;
    long n = 0, conc = 32, max_seconds = 120;
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Expect:");
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--url") == 0) url = argv[i + 1];
        else if (strcmp(argv[i], "--body") == 0) body_file = argv[i + 1];
        else if (strcmp(argv[i], "-n") == 0) n = atol(argv[i + 1]);
        else if (strcmp(argv[i], "-c") == 0) conc = atol(argv[i + 1]);
        else if (strcmp(argv[i], "-H") == 0) headers = curl_slist_append(headers, argv[i + 1]);
        else if (strcmp(argv[i], "--max-seconds") == 0) max_seconds = atol(argv[i + 1]);
    }
    if (!url || !body_file || n <= 0 || conc <= 0) {
        fprintf(stderr, "usage: loadgen --url URL --body FILE -n N [-c C] [-H H]... [--max-seconds S]\n");
        return 2;
    }
    FILE *f = fopen(body_file, "rb");
    if (!f) {
        perror(body_file);
        return 2;
    }
    static char body[1 << 16];
    size_t body_len = fread(body, 1, sizeof body - 1, f);
    fclose(f);
    while (body_len && body[body_len - 1] == '\n') body_len--;
    body[body_len] = '\0';
    if (conc > n) conc = n;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, conc);
    long sent = 0, ok = 0, non2xx = 0, errors = 0, done = 0;
    long long first_ok = 0, last_ok = 0;
    long long start = now_ms(CLOCK_REALTIME), t0 = now_ms(CLOCK_MONOTONIC);
    long long deadline = t0 + max_seconds * 1000;
    for (long i = 0; i < conc; i++) {
        CURL *e = curl_easy_init();
        curl_easy_setopt(e, CURLOPT_URL, url);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)body_len);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_TIMEOUT, 30L);
        curl_easy_setopt(e, CURLOPT_PROXY, "");
        curl_multi_add_handle(m, e);
        sent++;
    }
    int running = 1;
    while (done < sent && now_ms(CLOCK_MONOTONIC) < deadline) {
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE) continue;
            CURL *e = msg->easy_handle;
            long code = 0;
            done++;
            if (msg->data.result != CURLE_OK) {
                errors++;
            } else {
                curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
                if (code >= 200 && code < 300) {
                    last_ok = now_ms(CLOCK_REALTIME);
                    if (!ok) first_ok = last_ok;
                    ok++;
                } else {
                    non2xx++;
                }
            }
            curl_multi_remove_handle(m, e);
            if (sent < n) {
                curl_multi_add_handle(m, e);
                sent++;
            } else {
                curl_easy_cleanup(e);
            }
        }
        if (done < sent) curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    long long elapsed = now_ms(CLOCK_MONOTONIC) - t0;
    printf("sent=%ld\nok=%ld\nnon2xx=%ld\nerrors=%ld\nunfinished=%ld\nstart_ms=%lld\n"
           "first_ok_ms=%lld\nlast_ok_ms=%lld\nelapsed_ms=%lld\n",
           sent, ok, non2xx, errors, sent - done, start, first_ok, last_ok, elapsed);
    curl_multi_cleanup(m);
    curl_slist_free_all(headers);
    curl_global_cleanup();
    return ok == n ? 0 : 1;
}
