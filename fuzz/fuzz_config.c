/*
 * fuzz_config: libFuzzer harness for the configuration file parser. Each
 * input is written to a memfd and loaded with config_load (as
 * --config /proc/self/fd/N, no environment); a configuration that loads is
 * then used the way start-up uses it: the destination policy, the key
 * table and the webhook secrets are built from it, and --check-config's
 * printer runs over it.
 *
 * An api_key item "sha256:" + 64 non-hex characters once reached undefined
 * behaviour in auth.c; fuzz/corpus/config/known-bug-* keeps it as a seed.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "auth.h"
#include "config.h"
#include "netpolicy.h"
#include "webhook.h"

static int fd = -1;
static char path[64];
static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fd = memfd_create("fuzz-config", MFD_CLOEXEC);
    if (fd < 0) abort();
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    devnull = fopen("/dev/null", "w");
    if (!devnull) abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size) abort();
    struct config cfg;
    enum config_mode mode;
    char err[1024];
    char *argv[] = {"fuzz", "--config", path, NULL};
    char *envp[] = {NULL};
    int rc = config_load(&cfg, 3, argv, envp, &mode, err, sizeof err);
    if (rc == EXIT_OK) {
        struct netpolicy *np = netpolicy_new(&cfg, err, sizeof err);
        netpolicy_free(np);
        struct auth *a = auth_new(&cfg);
        struct principal who;
        auth_check(a, "Bearer 0123456789abcdef0123", &who);
        auth_free(a);
        struct webhook_keys keys;
        webhook_keys_decode(cfg.webhook_secrets, cfg.n_webhook_secrets, &keys, err, sizeof err);
        config_print_effective(&cfg, devnull);
    } else if (!err[0]) {
        abort(); /* every failure must say why */
    }
    config_free(&cfg);
    return 0;
}
