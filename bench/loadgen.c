/*
 * loadgen: sends exactly N POSTs (wrk cannot stop at a count), C at a time
 * over keep-alive connections, and reports when the first and last answers
 * came. `make bench` enqueues the tasks of its dispatch and concurrency
 * scenarios with it.
 *
 *   loadgen --url URL --body FILE -n N [-c C] [-H 'Name: value']... [--max-seconds S]
 *
 * Prints key=value lines: sent, ok (2xx), non2xx, errors, start_ms,
 * first_ok_ms, last_ok_ms (wall clock, milliseconds since the epoch, to be
 * compared with fakesrv's), elapsed_ms. Exit 0 when every request got a 2xx.
 *
 * Like wrk, it is plain sockets and one epoll loop with the request built
 * once: on a 2-core machine every microsecond it spends is taken from the
 * server it measures (a libcurl loop cost about 16 us a request here, most
 * of it libcurl formatting each request's headers a byte at a time; this
 * one about 3). http:// only; answers may carry a
 * Content-Length or be chunked; a connection the server closes is opened
 * again. A request that fails (connection lost, no answer in 30 s) counts
 * as an error and is not sent again.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REQUEST_TIMEOUT_MS 30000
#define BUF_MAX (1 << 20) /* an answer larger than this is an error */

struct conn {
    int fd;
    int want_out;         /* registered for EPOLLOUT: connecting, or the socket was full */
    size_t sent;          /* bytes of the request written */
    char *buf;            /* the answer so far */
    size_t len, cap;
    long long started_ms; /* monotonic, when the request began; 0: idle */
};

static long long now_ms(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct addrinfo *target;
static long total, sent, ok, non2xx, errors, done; /* requests: asked for, and so far */
static int ep;
static char *request;
static size_t request_len;

static int conn_open(struct conn *c)
{
    c->fd = socket(target->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, target->ai_addr, target->ai_addrlen) != 0 && errno != EINPROGRESS) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    c->want_out = 1; /* the request goes once the connection is up */
    return 0;
}

static void want_out(struct conn *c, int on)
{
    if (c->want_out == on) return;
    struct epoll_event ev = {.events = on ? EPOLLIN | EPOLLOUT : EPOLLIN, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = on;
}

static void conn_close(struct conn *c)
{
    if (c->fd >= 0) close(c->fd); /* leaves the epoll set with it */
    c->fd = -1;
}

/* Writes what is left of the request. 0 when all is written or the socket
 * is full (EPOLLOUT says when to go on), -1 on error. */
static int conn_send(struct conn *c)
{
    while (c->sent < request_len) {
        ssize_t w = send(c->fd, request + c->sent, request_len - c->sent, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno != EAGAIN && errno != EINTR) return -1;
            want_out(c, 1);
            return 0;
        }
        c->sent += (size_t)w;
    }
    want_out(c, 0);
    return 0;
}

static int conn_start(struct conn *c)
{
    c->sent = 0;
    c->len = 0;
    c->started_ms = now_ms(CLOCK_MONOTONIC);
    if (c->fd >= 0) return conn_send(c); /* kept alive */
    return conn_open(c);                 /* sent once connected (EPOLLOUT) */
}

/* The value of header name in the header block h (ending with "\r\n\r\n"),
 * or NULL; *vlen gets its length. */
static const char *header(const char *h, size_t hlen, const char *name, size_t *vlen)
{
    size_t n = strlen(name);
    for (const char *p = memchr(h, '\n', hlen); p && p < h + hlen; p = memchr(p, '\n', (size_t)(h + hlen - p))) {
        p++;
        if ((size_t)(h + hlen - p) > n + 1 && strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1, *e = memchr(v, '\r', (size_t)(h + hlen - v));
            while (v < e && (*v == ' ' || *v == '\t')) v++;
            *vlen = e ? (size_t)(e - v) : 0;
            return v;
        }
    }
    return NULL;
}

/* Where a chunked body starting at b ends (past its last CRLF), or 0 while
 * incomplete, or -1 when malformed. Trailers are not expected. */
static long chunked_end(const char *b, size_t len)
{
    size_t at = 0;
    for (;;) {
        const char *eol = memmem(b + at, len - at, "\r\n", 2);
        if (!eol) return 0;
        char *end;
        unsigned long size = strtoul(b + at, &end, 16);
        if (end == b + at) return -1;
        at = (size_t)(eol - b) + 2;
        if (size == 0) return len - at >= 2 ? (long)(at + 2) : 0;
        if (len - at < size + 2) return 0;
        at += size + 2;
    }
}

/* 0 while the answer is incomplete; else its status (-1: malformed), with
 * *close set when the server will close the connection. */
static int parse_answer(const struct conn *c, int *close_after)
{
    const char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    if (!end) return 0;
    size_t hlen = (size_t)(end - c->buf) + 4;
    int status = 0;
    if (sscanf(c->buf, "HTTP/%*d.%*d %d", &status) != 1) return -1;
    size_t vlen;
    const char *v = header(c->buf, hlen, "connection", &vlen);
    *close_after = v && vlen == 5 && strncasecmp(v, "close", 5) == 0;
    if ((v = header(c->buf, hlen, "content-length", &vlen))) {
        size_t body = strtoul(v, NULL, 10);
        return c->len >= hlen + body ? status : 0;
    }
    if ((v = header(c->buf, hlen, "transfer-encoding", &vlen)) && vlen >= 7 &&
        strncasecmp(v + vlen - 7, "chunked", 7) == 0) {
        long e = chunked_end(c->buf + hlen, c->len - hlen);
        return e < 0 ? -1 : e > 0 ? status : 0;
    }
    if (status == 204 || status == 304 || status < 200) return status;
    return -1; /* an answer delimited by the close: not what a server here sends */
}

static int parse_url(const char *url, char *host, size_t host_len, char *port, size_t port_len,
                     const char **path)
{
    if (strncmp(url, "http://", 7) != 0) return -1;
    const char *h = url + 7, *p = strchr(h, '/');
    *path = p ? p : "/";
    size_t n = p ? (size_t)(p - h) : strlen(h);
    const char *colon = NULL;
    if (*h == '[') {
        const char *rb = memchr(h, ']', n);
        if (!rb) return -1;
        snprintf(host, host_len, "%.*s", (int)(rb - h - 1), h + 1);
        colon = rb + 1 < h + n && rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = memchr(h, ':', n);
        snprintf(host, host_len, "%.*s", (int)(colon ? (size_t)(colon - h) : n), h);
    }
    snprintf(port, port_len, "%.*s", colon ? (int)(h + n - colon - 1) : 2, colon ? colon + 1 : "80");
    return 0;
}

/* Starts the next request on c, if any is left; a request that cannot
 * start is an error. */
static void send_next(struct conn *c)
{
    c->started_ms = 0;
    if (sent >= total) return;
    sent++;
    if (conn_start(c) == 0) return;
    errors++;
    done++;
    c->started_ms = 0;
    conn_close(c);
}

int main(int argc, char **argv)
{
    const char *url = NULL, *body_file = NULL;
    long conc = 32, max_seconds = 120;
    char extra[4096] = "";
    size_t extra_len = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--url") == 0) url = argv[i + 1];
        else if (strcmp(argv[i], "--body") == 0) body_file = argv[i + 1];
        else if (strcmp(argv[i], "-n") == 0) total = atol(argv[i + 1]);
        else if (strcmp(argv[i], "-c") == 0) conc = atol(argv[i + 1]);
        else if (strcmp(argv[i], "-H") == 0)
            extra_len += (size_t)snprintf(extra + extra_len, sizeof extra - extra_len, "%s\r\n", argv[i + 1]);
        else if (strcmp(argv[i], "--max-seconds") == 0) max_seconds = atol(argv[i + 1]);
    }
    char host[256], port[16];
    const char *path;
    if (!url || !body_file || total <= 0 || conc <= 0 || extra_len >= sizeof extra ||
        parse_url(url, host, sizeof host, port, sizeof port, &path) != 0) {
        fprintf(stderr, "usage: loadgen --url http://HOST:PORT/PATH --body FILE -n N [-c C] [-H H]... "
                        "[--max-seconds S]\n");
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
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
    int gai = getaddrinfo(host, port, &hints, &target);
    if (gai != 0) {
        fprintf(stderr, "loadgen: %s: %s\n", host, gai_strerror(gai));
        return 2;
    }
    const char *url_host = url + 7;
    int url_host_len = (int)(strchr(url_host, '/') ? strchr(url_host, '/') - url_host : (long)strlen(url_host));
    request = malloc(body_len + sizeof extra + 1024);
    request_len = (size_t)sprintf(request,
                                  "POST %s HTTP/1.1\r\nHost: %.*s\r\nContent-Type: application/json\r\n"
                                  "%sContent-Length: %zu\r\n\r\n",
                                  path, url_host_len, url_host, extra, body_len);
    memcpy(request + request_len, body, body_len);
    request_len += body_len;

    if (conc > total) conc = total;
    ep = epoll_create1(EPOLL_CLOEXEC);
    struct conn *conns = calloc((size_t)conc, sizeof *conns);
    long long first_ok = 0, last_ok = 0;
    long long start = now_ms(CLOCK_REALTIME), t0 = now_ms(CLOCK_MONOTONIC);
    long long deadline = t0 + max_seconds * 1000;
    for (long i = 0; i < conc; i++) {
        conns[i].fd = -1;
        send_next(&conns[i]);
    }
    struct epoll_event evs[256];
    while (done < sent && now_ms(CLOCK_MONOTONIC) < deadline) {
        int k = epoll_wait(ep, evs, 256, 100);
        long long now = now_ms(CLOCK_MONOTONIC);
        for (int e = 0; e < k; e++) {
            struct conn *c = evs[e].data.ptr;
            if (c->started_ms == 0) { /* idle (all sent): the server closed it */
                conn_close(c);
                continue;
            }
            int status = 0, close_after = 0, failed = 0;
            if ((evs[e].events & EPOLLOUT) && c->sent < request_len && conn_send(c) != 0) failed = 1;
            if (!failed && (evs[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
                for (;;) {
                    if (c->cap - c->len < 4096) {
                        c->cap = c->cap ? c->cap * 2 : 8192;
                        if (c->cap > BUF_MAX) {
                            failed = 1;
                            break;
                        }
                        c->buf = realloc(c->buf, c->cap);
                    }
                    size_t room = c->cap - c->len;
                    ssize_t r = recv(c->fd, c->buf + c->len, room, 0);
                    if (r > 0) {
                        c->len += (size_t)r;
                        status = parse_answer(c, &close_after);
                        if (status != 0 || (size_t)r < room) break; /* whole, or drained */
                        continue;
                    }
                    if (r < 0 && (errno == EAGAIN || errno == EINTR)) break;
                    failed = 1; /* closed or reset before the answer was whole */
                    break;
                }
                if (status < 0) failed = 1;
            }
            if (!failed && status == 0) continue; /* more to come */
            done++;
            if (failed) {
                errors++;
                conn_close(c);
            } else if (status >= 200 && status < 300) {
                last_ok = now_ms(CLOCK_REALTIME);
                if (!ok) first_ok = last_ok;
                ok++;
            } else {
                non2xx++;
            }
            if (close_after) conn_close(c);
            send_next(c);
        }
        for (long i = 0; i < conc; i++) { /* a request with no answer in time fails */
            struct conn *c = &conns[i];
            if (c->started_ms == 0 || now - c->started_ms < REQUEST_TIMEOUT_MS) continue;
            errors++;
            done++;
            conn_close(c);
            send_next(c);
        }
    }
    long long elapsed = now_ms(CLOCK_MONOTONIC) - t0;
    printf("sent=%ld\nok=%ld\nnon2xx=%ld\nerrors=%ld\nunfinished=%ld\nstart_ms=%lld\n"
           "first_ok_ms=%lld\nlast_ok_ms=%lld\nelapsed_ms=%lld\n",
           sent, ok, non2xx, errors, sent - done, start, first_ok, last_ok, elapsed);
    for (long i = 0; i < conc; i++) {
        conn_close(&conns[i]);
        free(conns[i].buf);
    }
    free(conns);
    free(request);
    freeaddrinfo(target);
    close(ep);
    return ok == total ? 0 : 1;
}
