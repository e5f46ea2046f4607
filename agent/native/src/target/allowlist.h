/*
 * allowlist.h - which peers may use an export, shared by every target
 * protocol. An allowlist is parsed once at share time from the API's CSV
 * ("1.2.3.4, 10.0.0.0/8, ::1"; "" or "*" lets everyone in) and matched
 * against each connecting peer, so matching never allocates or fails.
 *
 * Entries have a kind: addresses and CIDR prefixes (IPv4 stored v4-mapped,
 * so one match covers both families), and NVMe host NQNs (any entry that
 * starts with "nqn."), which NVMe/TCP matches against the host NQN of
 * Connect. NBD only matches addresses (an NQN entry never lets an NBD
 * client in). Parsing is the one place that tells the kinds apart.
 */
#ifndef DP_TARGET_ALLOWLIST_H
#define DP_TARGET_ALLOWLIST_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#define DP_ALLOWLIST_MAX 64

enum dp_allow_kind {
    DP_ALLOW_ADDR, /* an address or CIDR prefix */
    DP_ALLOW_NQN, /* an NVMe host NQN ("nqn...."), matched exactly at Connect */
};

#define DP_ALLOW_NQN_MAX 223 /* NVMe NQN length limit */

struct dp_allow_entry {
    uint8_t kind; /* enum dp_allow_kind */
    uint8_t prefix; /* DP_ALLOW_ADDR: prefix bits of addr, 0..128 */
    struct in6_addr addr;
    char nqn[DP_ALLOW_NQN_MAX + 1]; /* DP_ALLOW_NQN */
};

struct dp_allowlist {
    int n; /* 0: everyone */
    struct dp_allow_entry e[DP_ALLOWLIST_MAX];
};

/*
 * Parse csv (NULL, "" or an entry "*": everyone) into al. On error al is
 * unspecified, -EINVAL is returned and dp_last_error() names the protocol,
 * the export and the offending entry ("nbd export 'x': allowedHosts entry
 * '1.2.3.4/40': prefix above 32").
 */
int dp_allowlist_parse(struct dp_allowlist *al, const char *csv, const char *proto, const char *export_name);

/* Whether a peer at addr (IPv4 as v4-mapped) may use the export. */
bool dp_allowlist_allows_addr(const struct dp_allowlist *al, const struct in6_addr *addr);

/*
 * Whether a host that presented host NQN `nqn` from addr may use the export
 * (NVMe/TCP): an NQN entry equal to nqn, or an address entry matching addr.
 */
bool dp_allowlist_allows_nqn(const struct dp_allowlist *al, const char *nqn, const struct in6_addr *addr);

/* addr as IPv4-mapped IPv6 (::ffff:a.b.c.d), the form allowlists match on. */
void dp_in6_from_v4(struct in6_addr *out, const struct in_addr *v4);

#endif /* DP_TARGET_ALLOWLIST_H */
