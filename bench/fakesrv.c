/*
 * fakesrv: the fast local target and webhook receiver of `make bench`.
 *
 * One thread, one epoll loop, non-blocking sockets, keep-alive, a minimal
 * HTTP/1.1 parser (Content-Length bodies only): it must never be the
 * bottleneck of what it measures, and it must hold ten thousand slow calls
 * without a thread each. It binds 127.0.0.1 port 0 and prints "port=N".
 *
 * Routes (any method):
 *   /hold/<ms>...  a target that answers 200 after <ms> milliseconds
 *   /webhook...    a webhook receiver: counts and answers 200 at once
 *   /stats         counters as key=value lines (not counted)
 *   /reset         zeroes the counters (not counted)
 *   anything else  a target: counts and answers 200 with a small JSON body
 *
 * Bounded: exits by itself after --max-seconds (default 900) so a benchmark
 * that dies cannot leave it behind.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define READ_CAP (1 << 20) /* largest request kept, headers and body */
#define TARGET_BODY "{\"ok\":true,\"image\":\"https://cdn.example.com/out/1.png\",\"seconds\":0.4}"

struct conn {
    int fd;
    char *in;
    size_t in_len, in_cap;
    char *out;
    size_t out_len, out_off;
    bool close_after;
    bool holding;   /* a /hold response is scheduled */
    size_t heap_at; /* index in the hold heap while holding */
};

struct hold {
    int64_t due_ms;
    struct conn *c;
    size_t req_len; /* bytes of the held request, consumed when answered */
    bool close_after;
};

static struct hold *heap;
static size_t heap_len, heap_cap;

static struct {
    long long target, webhook, other;
    int64_t first_target_ms, last_target_ms, first_webhook_ms, last_webhook_ms;
    long long holding, max_holding, conns, max_conns;
} st;

static int64_t now_ms(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (!p) {
        perror("fakesrv: realloc");
        exit(1);
    }
    return p;
}

/* ---- hold heap (min-heap on due_ms) ---- */

static void heap_swap(size_t a, size_t b)
{
    struct hold t = heap[a];
    heap[a] = heap[b];
    heap[b] = t;
    heap[a].c->heap_at = a;
    heap[b].c->heap_at = b;
}

static void heap_push(struct hold h)
{
    if (heap_len == heap_cap) {
        heap_cap = heap_cap ? heap_cap * 2 : 1024;
        heap = xrealloc(heap, heap_cap * sizeof *heap);
    }
    size_t i = heap_len++;
    heap[i] = h;
    h.c->heap_at = i;
    while (i > 0 && heap[(i - 1) / 2].due_ms > heap[i].due_ms) {
        heap_swap(i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_remove(size_t i)
{
    heap_len--;
    if (i == heap_len) return;
    heap[i] = heap[heap_len];
    heap[i].c->heap_at = i;
    for (;;) { /* sift down */
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < heap_len && heap[l].due_ms < heap[m].due_ms) m = l;
        if (r < heap_len && heap[r].due_ms < heap[m].due_ms) m = r;
        if (m == i) break;
        heap_swap(i, m);
        i = m;
    }
    while (i > 0 && heap[(i - 1) / 2].due_ms > heap[i].due_ms) { /* or up */
        heap_swap(i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

/* ---- connections ---- */

static int epfd;

static void conn_close(struct conn *c)
{
    if (c->holding) {
        heap_remove(c->heap_at);
        st.holding--;
    }
    close(c->fd);
    free(c->in);
    free(c->out);
    free(c);
    st.conns--;
}

static void queue_out(struct conn *c, const char *data, size_t len)
{
    c->out = xrealloc(c->out, c->out_len + len);
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
}

static void queue_response(struct conn *c, const char *body, bool close_after)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n%s\r\n",
                     strlen(body), close_after ? "Connection: close\r\n" : "");
    queue_out(c, head, (size_t)n);
    queue_out(c, body, strlen(body));
    if (close_after) c->close_after = true;
}

/* Writes what is queued. Returns -1 when the connection is finished. */
static int flush_out(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) break;
            return -1;
        }
        c->out_off += (size_t)n;
    }
    if (c->out_off == c->out_len) {
        c->out_off = c->out_len = 0;
        if (c->close_after) return -1;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
    } else {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
        epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
    }
    return 0;
}

static void stats_body(char *out, size_t len)
{
    snprintf(out, len,
             "target=%lld\nwebhook=%lld\nother=%lld\nfirst_target_ms=%lld\nlast_target_ms=%lld\n"
             "first_webhook_ms=%lld\nlast_webhook_ms=%lld\nholding=%lld\nmax_holding=%lld\n"
             "conns=%lld\nmax_conns=%lld\n",
             st.target, st.webhook, st.other, (long long)st.first_target_ms,
             (long long)st.last_target_ms, (long long)st.first_webhook_ms,
             (long long)st.last_webhook_ms, st.holding, st.max_holding, st.conns, st.max_conns);
}

static void count(long long *n, int64_t *first, int64_t *last)
{
    int64_t t = now_ms(CLOCK_REALTIME);
    if (!*n) *first = t;
    *last = t;
    (*n)++;
}

/* Handles complete requests at the start of c->in. Returns -1 to close. */
static int handle_input(struct conn *c)
{
    while (!c->holding) {
        char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
        if (!end) {
            if (c->in_len >= READ_CAP) return -1;
            break;
        }
        size_t head_len = (size_t)(end - c->in) + 4;
        size_t body_len = 0;
        bool close_after = false;
        /* Header lines: Content-Length, Connection, Transfer-Encoding. */
        for (char *p = memchr(c->in, '\n', head_len); p && p < end; p = memchr(p, '\n', (size_t)(end - p))) {
            p++;
            if (strncasecmp(p, "content-length:", 15) == 0) body_len = strtoull(p + 15, NULL, 10);
            else if (strncasecmp(p, "connection:", 11) == 0 && strncasecmp(p + 11 + strspn(p + 11, " "), "close", 5) == 0)
                close_after = true;
            else if (strncasecmp(p, "transfer-encoding:", 18) == 0)
                return -1; /* chunked bodies are not supported */
        }
        if (head_len + body_len > READ_CAP) return -1;
        if (c->in_len < head_len + body_len) break;
        size_t req_len = head_len + body_len;
        /* Request line: METHOD SP PATH SP VERSION */
        char *sp = memchr(c->in, ' ', head_len);
        const char *path = sp ? sp + 1 : "/";
        if (strncmp(path, "HTTP/1.0", 8) == 0) close_after = true;
        char body[512];
        if (strncmp(path, "/hold/", 6) == 0) {
            count(&st.target, &st.first_target_ms, &st.last_target_ms);
            long ms = strtol(path + 6, NULL, 10);
            c->holding = true;
            st.holding++;
            if (st.holding > st.max_holding) st.max_holding = st.holding;
            /* Close after a slow answer: the server keeps the TIME_WAIT, so
             * ten thousand client ports are not tied up for a minute. */
            heap_push((struct hold){now_ms(CLOCK_MONOTONIC) + ms, c, req_len, true});
            break;
        }
        if (strncmp(path, "/webhook", 8) == 0) {
            count(&st.webhook, &st.first_webhook_ms, &st.last_webhook_ms);
            queue_response(c, "{}", close_after);
        } else if (strncmp(path, "/stats", 6) == 0) {
            stats_body(body, sizeof body);
            queue_response(c, body, close_after);
        } else if (strncmp(path, "/reset", 6) == 0) {
            long long holding = st.holding, conns = st.conns;
            memset(&st, 0, sizeof st);
            st.holding = st.max_holding = holding;
            st.conns = st.max_conns = conns;
            queue_response(c, "{}", close_after);
        } else {
            count(&st.target, &st.first_target_ms, &st.last_target_ms);
            queue_response(c, TARGET_BODY, close_after);
        }
        memmove(c->in, c->in + req_len, c->in_len - req_len);
        c->in_len -= req_len;
        if (c->close_after) break;
    }
    return flush_out(c);
}

static int on_readable(struct conn *c)
{
    for (;;) {
        if (c->in_cap - c->in_len < 4096) {
            c->in_cap = c->in_cap ? c->in_cap * 2 : 8192;
            c->in = xrealloc(c->in, c->in_cap);
        }
        ssize_t n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
        if (n == 0) return -1;
        if (n < 0) {
            if (errno == EAGAIN) break;
            if (errno == EINTR) continue;
            return -1;
        }
        c->in_len += (size_t)n;
        if (c->in_len >= READ_CAP) break;
    }
    return handle_input(c);
}

static void answer_due_holds(void)
{
    int64_t now = now_ms(CLOCK_MONOTONIC);
    while (heap_len && heap[0].due_ms <= now) {
        struct hold h = heap[0];
        heap_remove(0);
        struct conn *c = h.c;
        c->holding = false;
        st.holding--;
        memmove(c->in, c->in + h.req_len, c->in_len - h.req_len);
        c->in_len -= h.req_len;
        queue_response(c, TARGET_BODY, h.close_after);
        if (flush_out(c) < 0 || (!c->close_after && handle_input(c) < 0)) conn_close(c);
    }
}

int main(int argc, char **argv)
{
    long max_seconds = 900;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--max-seconds") == 0 && i + 1 < argc) max_seconds = atol(argv[++i]);
    signal(SIGPIPE, SIG_IGN);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lfd, 4096) != 0) {
        perror("fakesrv: bind/listen");
        return 1;
    }
    socklen_t sl = sizeof sa;
    getsockname(lfd, (struct sockaddr *)&sa, &sl);
    printf("port=%d\n", ntohs(sa.sin_port));
    fflush(stdout);

    epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev);
    int64_t deadline = now_ms(CLOCK_MONOTONIC) + max_seconds * 1000;
    struct epoll_event evs[256];
    while (now_ms(CLOCK_MONOTONIC) < deadline) {
        int timeout = 1000;
        if (heap_len) {
            int64_t d = heap[0].due_ms - now_ms(CLOCK_MONOTONIC);
            timeout = d < 0 ? 0 : d < 1000 ? (int)d : 1000;
        }
        int n = epoll_wait(epfd, evs, 256, timeout);
        for (int i = 0; i < n; i++) {
            if (!evs[i].data.ptr) {
                for (;;) {
                    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0) break;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct conn *c = calloc(1, sizeof *c);
                    if (!c) {
                        close(fd);
                        continue;
                    }
                    c->fd = fd;
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
                    if (++st.conns > st.max_conns) st.max_conns = st.conns;
                }
                continue;
            }
            struct conn *c = evs[i].data.ptr;
            int rc = 0;
            if (evs[i].events & (EPOLLERR | EPOLLHUP)) rc = -1;
            if (!rc && (evs[i].events & EPOLLOUT)) rc = flush_out(c);
            if (!rc && (evs[i].events & EPOLLIN)) rc = on_readable(c);
            if (rc < 0) conn_close(c);
        }
        answer_due_holds();
    }
    fprintf(stderr, "fakesrv: --max-seconds reached, exiting\n");
    return 0;
}
