/*
 * dp-nvmf-serve - serve one device over NVMe/TCP through libdatapath's public API.
 *
 *   dp-nvmf-serve [--listen HOST:PORT] [--advertise HOST] [--nqn NQN] [--uuid UUID]
 *                 [--allowed CSV] [--reactors N] [--port-file F] URI
 *
 * URI: uring:///path, aio:///path, malloc:///name?size_mb=N or a bdev name.
 * Default NQN nqn.2019-05.io.openebs:<uuid> (uuid default: a fixed test one).
 * --allowed: comma-separated host NQNs (default: every host). Port 0 picks
 * a free port (printed, and written to --port-file). The discovery
 * controller answers on the same port. Runs until SIGINT/SIGTERM.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datapath.h"

static void usage(void)
{
    fprintf(stderr, "usage: dp-nvmf-serve [--listen HOST:PORT] [--advertise HOST] [--nqn NQN] [--uuid UUID]\n"
                    "                     [--allowed CSV] [--reactors N] [--port-file FILE] URI\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *listen = "127.0.0.1:4420", *advertise = NULL, *nqn = NULL, *allowed = NULL, *uri = NULL;
    const char *uuid = "6f1e9a3c-1d2b-4c5e-8f70-0123456789ab", *port_file = NULL;
    unsigned reactors = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--listen") && i + 1 < argc)
            listen = argv[++i];
        else if (!strcmp(a, "--advertise") && i + 1 < argc)
            advertise = argv[++i];
        else if (!strcmp(a, "--nqn") && i + 1 < argc)
            nqn = argv[++i];
        else if (!strcmp(a, "--uuid") && i + 1 < argc)
            uuid = argv[++i];
        else if (!strcmp(a, "--allowed") && i + 1 < argc)
            allowed = argv[++i];
        else if (!strcmp(a, "--reactors") && i + 1 < argc)
            reactors = (unsigned)atoi(argv[++i]);
        else if (!strcmp(a, "--port-file") && i + 1 < argc)
            port_file = argv[++i];
        else if (a[0] == '-' || uri)
            usage();
        else
            uri = a;
    }
    if (!uri)
        usage();
    char host[256], nqnbuf[256];
    const char *colon = strrchr(listen, ':');
    if (!colon || (size_t)(colon - listen) >= sizeof host) {
        fprintf(stderr, "dp-nvmf-serve: --listen '%s': expected HOST:PORT\n", listen);
        return 2;
    }
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = 0;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535) {
        fprintf(stderr, "dp-nvmf-serve: --listen '%s': bad port\n", listen);
        return 2;
    }
    if (!nqn) {
        snprintf(nqnbuf, sizeof nqnbuf, "nqn.2019-05.io.openebs:%s", uuid);
        nqn = nqnbuf;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    int rc = dp_init(reactors ? reactors : 1);
    if (rc < 0) {
        fprintf(stderr, "dp-nvmf-serve: init: %s\n", dp_last_error());
        return 1;
    }
    rc = dp_nvmf_listen(host, (uint16_t)port, advertise);
    if (rc == 0)
        rc = dp_nvmf_share(uri, nqn, uuid, allowed);
    if (rc < 0) {
        fprintf(stderr, "dp-nvmf-serve: %s\n", dp_last_error());
        dp_nvmf_shutdown();
        dp_fini();
        return 1;
    }
    int bound = dp_nvmf_port();
    if (port_file) {
        FILE *f = fopen(port_file, "w");
        if (f) {
            fprintf(f, "%d\n", bound);
            fclose(f);
        }
    }
    printf("dp-nvmf-serve: serving %s as %s on %s:%d\n", uri, nqn, host, bound);
    fflush(stdout);
    int sig;
    sigwait(&set, &sig);
    dp_nvmf_shutdown();
    dp_fini();
    return 0;
}
