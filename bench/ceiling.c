/*
 * ceiling: the bare libmicrohttpd server `make bench` measures the daemon
 * against. It does what src/http_api.c does for POST /v1/tasks minus the
 * task itself: the same MHD mode (internal polling thread, poll(), a thread
 * pool of --threads, suspend/resume allowed, 60 s connection timeout, the
 * listening socket handed over), the body read into a capped buffer, and
 * the same 202 answer (body read from --response, Content-Type,
 * Cache-Control and Location headers, a malloc'd body MHD frees). No JSON
 * parsing, no id, no database: the HTTP ceiling on this machine.
 *
 *   ceiling --response FILE [--threads N] [--max-seconds S]
 *
 * Binds 127.0.0.1 port 0, prints "port=N", stops on SIGTERM/SIGINT or
 * after --max-seconds (default 900).
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BODY_CAP (1 << 20)

static char *response_body;
static size_t response_len;
static volatile sig_atomic_t stop;

struct req {
    char *body;
    size_t len, cap;
    int too_large;
};

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    struct req *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        if (!r->too_large && r->len + n <= BODY_CAP) {
            if (r->len + n > r->cap) {
                size_t cap = r->cap ? r->cap : 1024;
                while (cap < r->len + n) cap *= 2;
                char *p = realloc(r->body, cap);
                if (!p) return MHD_NO;
                r->body = p;
                r->cap = cap;
            }
            memcpy(r->body + r->len, upload_data, n);
            r->len += n;
        } else {
            r->too_large = 1;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    char *body = malloc(response_len + 1);
    if (!body) return MHD_NO;
    memcpy(body, response_body, response_len + 1);
    struct MHD_Response *resp = MHD_create_response_from_buffer(response_len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION,
                            "/v1/tasks/019ac9a1-2b3c-7d4e-8f50-61728394a5b6");
    enum MHD_Result rc = MHD_queue_response(conn, MHD_HTTP_ACCEPTED, resp);
    MHD_destroy_response(resp);
    return rc;
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    struct req *r = *con_cls;
    if (!r) return;
    free(r->body);
    free(r);
    *con_cls = NULL;
}

int main(int argc, char **argv)
{
    const char *response_file = NULL;
    unsigned threads = 2;
    long max_seconds = 900;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--response") == 0) response_file = argv[i + 1];
        else if (strcmp(argv[i], "--threads") == 0) threads = (unsigned)atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--max-seconds") == 0) max_seconds = atol(argv[i + 1]);
    }
    if (!response_file) {
        fprintf(stderr, "usage: ceiling --response FILE [--threads N] [--max-seconds S]\n");
        return 2;
    }
    FILE *f = fopen(response_file, "rb");
    if (!f) {
        perror(response_file);
        return 1;
    }
    response_body = malloc(BODY_CAP + 1);
    response_len = fread(response_body, 1, BODY_CAP, f);
    fclose(f);
    while (response_len && (response_body[response_len - 1] == '\n')) response_len--;
    response_body[response_len] = '\0';

    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 1024) != 0) {
        perror("ceiling: bind/listen");
        return 1;
    }
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);

    signal(SIGPIPE, SIG_IGN);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, 0, NULL, NULL, handle, NULL, MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "ceiling: libmicrohttpd did not start\n");
        return 1;
    }
    printf("port=%d\n", ntohs(sa.sin_port));
    fflush(stdout);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    time_t end = time(NULL) + max_seconds;
    while (!stop && time(NULL) < end) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(d);
    close(fd);
    return 0;
}
