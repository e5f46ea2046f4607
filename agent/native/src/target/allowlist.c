/*
 * allowlist.c - peers allowed on an export (allowlist.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "datapath.h"
#include "target/allowlist.h"
#include "util/error.h"

void dp_in6_from_v4(struct in6_addr *out, const struct in_addr *v4)
{
    memset(out, 0, sizeof *out);
    out->s6_addr[10] = out->s6_addr[11] = 0xff;
    memcpy(&out->s6_addr[12], v4, 4);
}

static bool prefix_match(const struct in6_addr *a, const struct in6_addr *b, int bits)
{
    int bytes = bits / 8, rem = bits % 8;
    if (memcmp(a, b, (size_t)bytes))
        return false;
    if (!rem)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rem));
    return (a->s6_addr[bytes] & mask) == (b->s6_addr[bytes] & mask);
}

bool dp_allowlist_allows_addr(const struct dp_allowlist *al, const struct in6_addr *addr)
{
    if (al->n == 0)
        return true;
    for (int i = 0; i < al->n; i++)
        if (al->e[i].kind == DP_ALLOW_ADDR && prefix_match(&al->e[i].addr, addr, al->e[i].prefix))
            return true;
    return false;
}

bool dp_allowlist_allows_nqn(const struct dp_allowlist *al, const char *nqn, const struct in6_addr *addr)
{
    if (al->n == 0)
        return true;
    for (int i = 0; i < al->n; i++) {
        const struct dp_allow_entry *e = &al->e[i];
        if (e->kind == DP_ALLOW_NQN ? strcmp(e->nqn, nqn) == 0 : prefix_match(&e->addr, addr, e->prefix))
            return true;
    }
    return false;
}

/* An NQN entry: printable, "nqn." prefix, at most DP_ALLOW_NQN_MAX bytes. */
static int parse_nqn_entry(const char *tok, struct dp_allow_entry *out, const char *proto, const char *export_name)
{
    size_t n = strlen(tok);
    if (n > DP_ALLOW_NQN_MAX || n < 5) {
        dp_set_error("%s export '%s': allowedHosts entry '%.40s': an NQN has 5..%d bytes", proto, export_name, tok,
                     DP_ALLOW_NQN_MAX);
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)tok[i] <= 0x20 || (unsigned char)tok[i] >= 0x7f) {
            dp_set_error("%s export '%s': allowedHosts entry '%.40s': NQN has a non-printable byte", proto, export_name,
                         tok);
            return -EINVAL;
        }
    memset(out, 0, sizeof *out);
    out->kind = DP_ALLOW_NQN;
    memcpy(out->nqn, tok, n + 1);
    return 0;
}

/* One entry "a.b.c.d[/n]" or "v6[/n]" (tok is modified) into *out. */
static int parse_addr_entry(char *tok, struct dp_allow_entry *out, const char *proto, const char *export_name)
{
    int prefix = -1;
    char *slash = strchr(tok, '/');
    if (slash) {
        char *end;
        *slash = 0;
        long v = strtol(slash + 1, &end, 10);
        if (*end || end == slash + 1 || v < 0 || v > 128) {
            dp_set_error("%s export '%s': allowedHosts entry '%s/%s': bad prefix length", proto, export_name, tok,
                         slash + 1);
            return -EINVAL;
        }
        prefix = (int)v;
    }
    struct in_addr a4;
    if (inet_pton(AF_INET, tok, &a4) == 1) {
        if (prefix > 32) {
            dp_set_error("%s export '%s': allowedHosts entry '%s/%d': prefix above 32", proto, export_name, tok,
                         prefix);
            return -EINVAL;
        }
        dp_in6_from_v4(&out->addr, &a4);
        prefix = prefix < 0 ? 128 : prefix + 96;
    } else if (inet_pton(AF_INET6, tok, &out->addr) == 1) {
        prefix = prefix < 0 ? 128 : prefix;
    } else {
        /* Host names / NQNs will be the second kind; until a protocol
         * matches them, anything else is a typo worth refusing. */
        dp_set_error("%s export '%s': allowedHosts entry '%s' is not an IP address or CIDR", proto, export_name, tok);
        return -EINVAL;
    }
    out->kind = DP_ALLOW_ADDR;
    out->prefix = (uint8_t)prefix;
    return 0;
}

int dp_allowlist_parse(struct dp_allowlist *al, const char *csv, const char *proto, const char *export_name)
{
    al->n = 0;
    if (!csv)
        return 0;
    const char *p = csv;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        size_t n = strcspn(p, ", ");
        char tok[DP_ALLOW_NQN_MAX + 2];
        if (n >= sizeof tok) {
            dp_set_error("%s export '%s': allowedHosts entry '%.40s...' is too long", proto, export_name, p);
            return -EINVAL;
        }
        memcpy(tok, p, n);
        tok[n] = 0;
        p += n;
        /* "*" anywhere wins: the list means everyone. */
        if (!strcmp(tok, "*")) {
            al->n = 0;
            return 0;
        }
        if (al->n == DP_ALLOWLIST_MAX) {
            dp_set_error("%s export '%s': more than %d allowedHosts entries", proto, export_name, DP_ALLOWLIST_MAX);
            return -EINVAL;
        }
        int rc = strncmp(tok, "nqn.", 4) == 0 ? parse_nqn_entry(tok, &al->e[al->n], proto, export_name)
                                              : parse_addr_entry(tok, &al->e[al->n], proto, export_name);
        if (rc < 0)
            return rc;
        al->n++;
    }
    return 0;
}
