/*
 * dp-nbd-serve - serve one device over NBD through libdatapath's public API.
 *
 *   dp-nbd-serve [--listen HOST:PORT] [--export NAME] [--allowed CSV]
 *                [--reactors N] [--port-file F] URI
 *
 * URI: uring:///path, aio:///path, malloc:///name?size_mb=N, nbd://... or a
 * bdev name. Port 0 picks a free port (printed, and written to --port-file).
 * --thin-replica MB: URI is a pool disk instead; a pool is created on it and
 * a thin replica of MB MiB (uuid printed) is exported. SIGUSR1 prints the
 * replica's allocated bytes ("allocated_bytes=N").
 * Runs until SIGINT/SIGTERM, then unshares (closing clients) and exits.
 * Used by the integration tests and bench/nbd.sh.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datapath.h"

static void usage(void)
{
    fprintf(stderr, "usage: dp-nbd-serve [--listen HOST:PORT] [--export NAME] [--allowed CSV]\n"
                    "                    [--reactors N] [--port-file FILE] URI\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *listen = "127.0.0.1:10809", *export = NULL, *allowed = NULL, *uri = NULL;
    const char *port_file = NULL;
    unsigned reactors = 1;
    long thin_mb = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--listen") && i + 1 < argc)
            listen = argv[++i];
        else if (!strcmp(a, "--export") && i + 1 < argc)
            export = argv[++i];
        else if (!strcmp(a, "--allowed") && i + 1 < argc)
            allowed = argv[++i];
        else if (!strcmp(a, "--reactors") && i + 1 < argc)
            reactors = (unsigned)atoi(argv[++i]);
        else if (!strcmp(a, "--thin-replica") && i + 1 < argc)
            thin_mb = atol(argv[++i]);
        else if (!strcmp(a, "--port-file") && i + 1 < argc)
            port_file = argv[++i];
        else if (a[0] == '-')
            usage();
        else if (!uri)
            uri = a;
        else
            usage();
    }
    if (!uri)
        usage();
    char host[256];
    const char *colon = strrchr(listen, ':');
    if (!colon || (size_t)(colon - listen) >= sizeof host) {
        fprintf(stderr, "dp-nbd-serve: --listen '%s': expected HOST:PORT\n", listen);
        return 2;
    }
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = 0;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535) {
        fprintf(stderr, "dp-nbd-serve: --listen '%s': bad port\n", listen);
        return 2;
    }
    /* Block the signals before threads start so only sigwait sees them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    int rc = dp_init(reactors ? reactors : 1);
    if (rc < 0) {
        fprintf(stderr, "dp-nbd-serve: init: %s\n", dp_last_error());
        return 1;
    }
    rc = dp_nbd_listen(host, (uint16_t)port);
    if (rc < 0) {
        fprintf(stderr, "dp-nbd-serve: %s\n", dp_last_error());
        dp_fini();
        return 1;
    }
    const char *dev = uri;
    static const char replica[] = "6e62642d-7365-7276-652d-7468696e0001";
    if (thin_mb > 0) {
        char puuid[DP_UUID_STR_LEN];
        const char *disks[] = { uri };
        rc = dp_pool_create("nbdserve", disks, 1, 0, puuid);
        if (rc == 0)
            rc = dp_replica_create("nbdserve", replica, (uint64_t)thin_mb << 20, 1);
        if (rc < 0) {
            fprintf(stderr, "dp-nbd-serve: %s\n", dp_last_error());
            dp_nbd_shutdown();
            dp_fini();
            return 1;
        }
        dev = replica;
        printf("dp-nbd-serve: thin replica %s (%ld MiB) in pool 'nbdserve' on %s\n", replica, thin_mb, uri);
    }
    rc = dp_nbd_share(dev, export ? export : "", allowed);
    if (rc < 0) {
        fprintf(stderr, "dp-nbd-serve: %s\n", dp_last_error());
        dp_nbd_shutdown();
        dp_fini();
        return 1;
    }
    int bound = dp_nbd_port();
    if (port_file) {
        FILE *f = fopen(port_file, "w");
        if (f) {
            fprintf(f, "%d\n", bound);
            fclose(f);
        }
    }
    printf("dp-nbd-serve: serving %s as '%s' on %s:%d\n", dev, export ? export : dev, host, bound);
    fflush(stdout);
    int sig;
    for (;;) {
        sigwait(&set, &sig);
        if (sig != SIGUSR1)
            break;
        dp_replica_info ri;
        if (thin_mb > 0 && dp_replica_stat(dev, &ri) == 0)
            printf("allocated_bytes=%llu\n", (unsigned long long)ri.allocated_bytes);
        fflush(stdout);
    }
    dp_nbd_shutdown();
    if (thin_mb > 0) {
        dp_replica_destroy(replica);
        dp_pool_destroy("nbdserve");
    }
    dp_fini();
    return 0;
}
