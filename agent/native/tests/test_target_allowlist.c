/* test_target_allowlist.c - allowlists of export peers (target/allowlist.h): the CSV grammar
 * ("" and "*" for everyone), IPv4/IPv6 addresses and prefixes, and the errors naming the export
 * and the entry. */
#include <arpa/inet.h>
#include <errno.h>

#include "datapath.h"
#include "target/allowlist.h"
#include "testlib.h"

static struct in6_addr addr(const char *s)
{
    struct in6_addr a;
    struct in_addr a4;
    if (inet_pton(AF_INET, s, &a4) == 1)
        dp_in6_from_v4(&a, &a4);
    else
        CHECK_EQ(inet_pton(AF_INET6, s, &a), 1);
    return a;
}

static bool allows(const char *csv, const char *peer)
{
    struct dp_allowlist al;
    CHECK_EQ(dp_allowlist_parse(&al, csv, "nbd", "e"), 0);
    struct in6_addr a = addr(peer);
    return dp_allowlist_allows_addr(&al, &a);
}

TEST(everyone)
{
    CHECK(allows(NULL, "10.1.2.3"));
    CHECK(allows("", "10.1.2.3"));
    CHECK(allows(" , ", "::1"));
    CHECK(allows("*", "::1"));
    CHECK(allows("1.2.3.4, *", "10.1.2.3")); /* "*" anywhere means everyone */
}

TEST(addresses_and_prefixes)
{
    CHECK(allows("1.2.3.4", "1.2.3.4"));
    CHECK(!allows("1.2.3.4", "1.2.3.5"));
    CHECK(allows("10.0.0.0/8", "10.255.0.1"));
    CHECK(!allows("10.0.0.0/8", "11.0.0.1"));
    CHECK(allows("10.0.0.0/9", "10.127.0.1"));
    CHECK(!allows("10.0.0.0/9", "10.128.0.1"));
    CHECK(allows("0.0.0.0/0", "192.168.1.1"));
    CHECK(!allows("0.0.0.0/0", "::2")); /* an IPv4 prefix never lets IPv6 in */
    CHECK(allows("::1", "::1"));
    CHECK(allows("fd00::/8", "fd12::1"));
    CHECK(!allows("fd00::/8", "fe00::1"));
    CHECK(allows("::ffff:1.2.3.4", "1.2.3.4")); /* v4-mapped spelling matches IPv4 peers */
    CHECK(allows("1.1.1.1,2.2.2.2 3.3.3.3", "3.3.3.3"));
}

static void refused(const char *csv, const char *msg)
{
    struct dp_allowlist al;
    CHECK_EQ(dp_allowlist_parse(&al, csv, "nbd", "vol1"), -EINVAL);
    if (strcmp(dp_last_error(), msg)) {
        fprintf(stderr, "got '%s'\nwant '%s'\n", dp_last_error(), msg);
        CHECK(0);
    }
}

TEST(errors_name_export_and_entry)
{
    refused("1.2.3.4, host.example",
            "nbd export 'vol1': allowedHosts entry 'host.example' is not an IP address or CIDR");
    refused("1.2.3.4/33", "nbd export 'vol1': allowedHosts entry '1.2.3.4/33': prefix above 32");
    refused("::1/129", "nbd export 'vol1': allowedHosts entry '::1/129': bad prefix length");
    refused("::1/", "nbd export 'vol1': allowedHosts entry '::1/': bad prefix length");
    refused("1.2.3.4/x", "nbd export 'vol1': allowedHosts entry '1.2.3.4/x': bad prefix length");
    char longtok[300];
    memset(longtok, 'a', sizeof longtok - 1);
    longtok[sizeof longtok - 1] = 0;
    refused(longtok, "nbd export 'vol1': allowedHosts entry 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...' is too long");
    char many[DP_ALLOWLIST_MAX * 10 + 16] = "";
    for (int i = 0; i <= DP_ALLOWLIST_MAX; i++)
        sprintf(many + strlen(many), "10.0.0.%d,", i);
    refused(many, "nbd export 'vol1': more than 64 allowedHosts entries");
    struct dp_allowlist al;
    many[strlen(many) - sizeof "10.0.0.64,"] = 0; /* exactly 64 fit */
    CHECK_EQ(dp_allowlist_parse(&al, many, "nbd", "vol1"), 0);
    CHECK_EQ(al.n, DP_ALLOWLIST_MAX);
}

TEST(host_nqns)
{
    struct dp_allowlist al;
    struct in6_addr a;
    struct in_addr v4 = { htonl(0x0a000001) };
    dp_in6_from_v4(&a, &v4);
    CHECK_EQ(dp_allowlist_parse(&al, "nqn.2014-08.org.nvmexpress:uuid:h1, 10.0.0.0/8", "nvmf", "s"), 0);
    CHECK_EQ(al.n, 2);
    CHECK(dp_allowlist_allows_nqn(&al, "nqn.2014-08.org.nvmexpress:uuid:h1", &(struct in6_addr){ 0 }));
    CHECK(!dp_allowlist_allows_nqn(&al, "nqn.2014-08.org.nvmexpress:uuid:h2", &(struct in6_addr){ 0 }));
    CHECK(dp_allowlist_allows_nqn(&al, "nqn.2014-08.org.nvmexpress:uuid:h2", &a)); /* by address */
    CHECK_EQ(dp_allowlist_parse(&al, "nqn.2014-08.org.nvmexpress:uuid:h1", "nbd", "s"), 0);
    CHECK(!dp_allowlist_allows_addr(&al, &a)); /* NBD never matches an NQN entry */
    CHECK_EQ(dp_allowlist_parse(&al, "nqn.", "nvmf", "s"), -EINVAL);
    CHECK(strstr(dp_last_error(), "an NQN has 5..223 bytes"));
    CHECK(dp_allowlist_allows_nqn(&(struct dp_allowlist){ 0 }, "nqn.x", &a)); /* empty: everyone */
}

int main(void)
{
    printf("test_target_allowlist\n");
    RUN(everyone);
    RUN(addresses_and_prefixes);
    RUN(errors_name_export_and_entry);
    RUN(host_nqns);
    return 0;
}
