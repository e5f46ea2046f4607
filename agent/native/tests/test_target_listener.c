/* test_target_listener.c - the TCP listener every target sits on (target/listener.h): port 0 reads
 * back the chosen port, accepted sockets reach the protocol admitted and with their peer, a second
 * start is refused, a bad host is named, and stop leaves nothing behind. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include "datapath.h"
#include "reactor/reactor.h"
#include "target/allowlist.h"
#include "target/listener.h"
#include "testlib.h"

static struct dp_listener g_l = DP_LISTENER_INIT;
static atomic_int g_accepted;
static char g_peer[64];
static struct in6_addr g_addr;

static void on_accept(struct dp_listener *l, int fd, const struct dp_peer *peer, const struct dp_target_conn *tc)
{
    CHECK(l == &g_l);
    CHECK(tc->admitted);
    memcpy(g_peer, peer->str, sizeof g_peer);
    g_addr = peer->addr;
    struct dp_target_conn t = *tc;
    dp_target_conn_release(&t);
    close(fd);
    atomic_fetch_add(&g_accepted, 1);
}

static int connect_to(int port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(s >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(connect(s, (struct sockaddr *)&a, sizeof a), 0);
    return s;
}

TEST(accepts_with_peer_and_stops)
{
    CHECK_EQ(dp_listener_port(&g_l), -ENOTCONN);
    CHECK_EQ(dp_listener_start(&g_l, "test", "127.0.0.1", 0, on_accept), 0);
    int port = dp_listener_port(&g_l);
    CHECK(port > 0);
    CHECK_EQ(dp_listener_start(&g_l, "test", "127.0.0.1", 0, on_accept), -EALREADY);
    CHECK(strstr(dp_last_error(), "test listen 127.0.0.1:0: already listening on 127.0.0.1:"));
    for (int i = 1; i <= 3; i++) {
        int s = connect_to(port);
        while (atomic_load(&g_accepted) < i)
            usleep(1000);
        close(s);
    }
    CHECK(!strncmp(g_peer, "127.0.0.1:", 10));
    struct in6_addr lo;
    struct in_addr lo4 = { htonl(INADDR_LOOPBACK) };
    dp_in6_from_v4(&lo, &lo4);
    CHECK(!memcmp(&g_addr, &lo, sizeof lo));
    dp_target_stats st;
    CHECK_EQ(dp_target_stats_get(&st), 0);
    CHECK_EQ(st.connections, 0); /* every admission was released */
    dp_listener_stop(&g_l);
    CHECK_EQ(dp_listener_port(&g_l), -ENOTCONN);
    dp_listener_stop(&g_l); /* stopping twice is harmless */
    /* and it may listen again */
    CHECK_EQ(dp_listener_start(&g_l, "test", NULL, 0, on_accept), 0);
    CHECK(dp_listener_port(&g_l) > 0);
    dp_listener_stop(&g_l);
}

TEST(bad_host_is_named)
{
    CHECK_EQ(dp_listener_start(&g_l, "test", "no such host.invalid", 1, on_accept), -EINVAL);
    CHECK(strstr(dp_last_error(), "test listen no such host.invalid:1: cannot resolve host"));
    CHECK_EQ(dp_listener_port(&g_l), -ENOTCONN);
}

int main(void)
{
    printf("test_target_listener\n");
    CHECK_EQ(dp_listener_start(&g_l, "test", NULL, 0, on_accept), -ENODEV);
    CHECK_EQ(dp_init(1), 0);
    RUN(accepts_with_peer_and_stops);
    RUN(bad_host_is_named);
    dp_fini();
    return 0;
}
