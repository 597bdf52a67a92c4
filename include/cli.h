/*
 * cli: the command-line client in the daemon's binary, for shell scripts:
 * `asyncqueue task create|get|list|cancel|retry|attempts ...` and
 * `asyncqueue queue list|get|set|delete|pause|resume ...` and
 * `asyncqueue schedule put|list|get|delete|pause|resume|run ...`. It turns arguments
 * into requests to a running daemon's API (libcurl, easy interface), prints
 * the API's JSON answer on stdout, one line on stderr for anything that went
 * wrong, and tells the outcomes apart by exit code.
 *
 * Single-threaded, and it shares no state with the daemon's modules.
 */
#ifndef AQ_CLI_H
#define AQ_CLI_H

/* Exit codes of the client (the daemon's own are in config.h). Documented in
 * `asyncqueue task --help` and asyncqueue(1); scripts depend on them, so
 * never renumber. */
enum cli_exit {
    CLI_EXIT_OK = 0,           /* success; with --wait: the task completed */
    CLI_EXIT_TASK_FAILED = 1,  /* with --wait: the task ended failed or cancelled */
    CLI_EXIT_USAGE = 2,        /* bad command line, or an unreadable @FILE */
    CLI_EXIT_WAIT_TIMEOUT = 3, /* --wait SECONDS ran out with the task unfinished */
    CLI_EXIT_API = 4,          /* the API refused the request (HTTP 4xx) */
    CLI_EXIT_SERVER = 5,       /* unreachable, HTTP 5xx, or an answer that is not the API's */
};

/* Runs the client. argv[1] is "task", "queue" or "schedule"; borrows argv. Returns an
 * enum cli_exit code for main() to return. Call it before anything else in
 * the process has initialised libcurl (it calls curl_global_init itself). */
int cli_main(int argc, char **argv);

#endif
