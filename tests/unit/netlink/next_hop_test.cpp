// NextHopCache against the real kernel, each test in a private network namespace
// (private_netns.h): a veth pair xa/xb, both ends in the namespace, with our addresses on xa and
// the peers as static neighbour entries on xa. Needs root; skipped otherwise.
#include "datapath/netlink/next_hop.h"

#include <net/if.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <ostream>
#include <string>
#include <thread>

#include "datapath/netlink/netlink.h"
#include "tests/unit/netlink/private_netns.h"

namespace xems::datapath::nl {

void PrintTo(const NextHop& h, std::ostream* os) {
  auto mac = [](const std::array<uint8_t, 6>& m) {
    char buf[18];
    std::snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4],
                  m[5]);
    return std::string(buf);
  };
  *os << "{ifindex " << h.ifindex << ", src " << mac(h.src_mac) << ", dst " << mac(h.dst_mac)
      << "}";
}

namespace {

using Clock = std::chrono::steady_clock;
using Mac = std::array<uint8_t, 6>;
using nltest::ip;
using nltest::kWait;
using nltest::waitLinkUp;
using nltest::sh;

constexpr Mac kXaMac{0x02, 0, 0, 0, 0, 0x01};
constexpr Mac kPeerMac{0x02, 0, 0, 0, 0, 0x20};      // 192.0.2.20
constexpr Mac kPeer6Mac{0x02, 0, 0, 0, 0, 0x26};     // 2001:db8:1::20
constexpr Mac kRouterLlMac{0x02, 0, 0, 0, 0, 0x27};  // fe80::20

// xa (02:00:00:00:00:01, 192.0.2.1/24, 2001:db8:1::1/64) and its peer xb, up, with permanent
// neighbours 192.0.2.20 and 2001:db8:1::20 on xa.
bool setUpVeth() {
  return sh("ip link add xa type veth peer name xb") &&
         sh("ip link set xa address 02:00:00:00:00:01") && sh("ip link set xa up") &&
         sh("ip link set xb up") && waitLinkUp("xa", true) &&
         sh("ip addr add 192.0.2.1/24 dev xa") &&
         sh("ip -6 addr add 2001:db8:1::1/64 dev xa nodad") &&
         sh("ip neigh replace 192.0.2.20 lladdr 02:00:00:00:00:20 dev xa nud permanent") &&
         sh("ip -6 neigh replace 2001:db8:1::20 lladdr 02:00:00:00:00:26 dev xa nud permanent");
}

NextHop onXa(const Mac& dst_mac) {
  return NextHop{::if_nametoindex("xa"), kXaMac, dst_mac};
}

std::string readFile(const char* path) {
  std::ifstream in(path);
  std::string s;
  std::getline(in, s);
  return s;
}

// Opens a NextHopCache as `NextHopCache& var` (the test fails if it cannot).
#define XEMS_OPEN_CACHE(var)                                      \
  auto var##_opened = NextHopCache::open();                       \
  ASSERT_TRUE(var##_opened.ok()) << var##_opened.error().message; \
  NextHopCache& var = **var##_opened  // NOLINT(bugprone-macro-parentheses): a declarator

TEST(NextHopTest, XdpTransmitKinds) {
  EXPECT_TRUE(xdpCanTransmitOn(""));
  EXPECT_TRUE(xdpCanTransmitOn("veth"));
  EXPECT_TRUE(xdpCanTransmitOn("bond"));
  EXPECT_FALSE(xdpCanTransmitOn("vlan"));
  EXPECT_FALSE(xdpCanTransmitOn("macvlan"));
  EXPECT_FALSE(xdpCanTransmitOn("bridge"));
  EXPECT_FALSE(xdpCanTransmitOn("tun"));
}

TEST(NextHopTest, OnLinkIpv4PermanentNeighbour) {
  XEMS_IN_NETNS([] {
    ASSERT_TRUE(setUpVeth());
    XEMS_OPEN_CACHE(cache);
    EXPECT_EQ(cache.lookups(), 0u);
    EXPECT_EQ(cache.route_queries(), 0u);

    EXPECT_EQ(cache.lookup(ip("192.0.2.1"), ip("192.0.2.20")), onXa(kPeerMac));
    EXPECT_EQ(cache.lookups(), 1u);
    EXPECT_EQ(cache.route_queries(), 1u);
    // Cached: no second query.
    EXPECT_EQ(cache.lookup(ip("192.0.2.1"), ip("192.0.2.20")), onXa(kPeerMac));
    EXPECT_EQ(cache.lookups(), 2u);
    EXPECT_EQ(cache.route_queries(), 1u);
    // The kernel picks the source when ours is the wildcard.
    EXPECT_EQ(cache.lookup(ip("0.0.0.0"), ip("192.0.2.20")), onXa(kPeerMac));
    EXPECT_EQ(cache.route_queries(), 2u);
    EXPECT_EQ(cache.failures(), 0u);
  });
}

TEST(NextHopTest, OnLinkIpv6PermanentNeighbour) {
  XEMS_IN_NETNS([] {
    ASSERT_TRUE(setUpVeth());
    XEMS_OPEN_CACHE(cache);
    EXPECT_EQ(cache.lookup(ip("2001:db8:1::1"), ip("2001:db8:1::20")), onXa(kPeer6Mac));
    EXPECT_EQ(cache.lookup(ip("::"), ip("2001:db8:1::20")), onXa(kPeer6Mac));
    EXPECT_EQ(cache.lookups(), 2u);
    EXPECT_EQ(cache.route_queries(), 2u);
    EXPECT_EQ(cache.failures(), 0u);
  });
}

TEST(NextHopTest, ViaGatewayUsesGatewayMac) {
  XEMS_IN_NETNS([] {
    ASSERT_TRUE(setUpVeth());
    ASSERT_TRUE(sh("ip route add 198.18.0.0/15 via 192.0.2.20"));
    ASSERT_TRUE(sh("ip -6 route add 2001:db8:99::/48 via 2001:db8:1::20"));
    // An IPv6 router by its link-local address, and an IPv4 route via an IPv6 router (RTA_VIA).
    ASSERT_TRUE(sh("ip -6 neigh replace fe80::20 lladdr 02:00:00:00:00:27 dev xa nud permanent"));
    ASSERT_TRUE(sh("ip -6 route add 2001:db8:77::/48 via fe80::20 dev xa"));
    ASSERT_TRUE(sh("ip route add 198.51.100.0/24 via inet6 fe80::20 dev xa"));
    XEMS_OPEN_CACHE(cache);

    EXPECT_EQ(cache.lookup(ip("192.0.2.1"), ip("198.18.5.5")), onXa(kPeerMac));
    EXPECT_EQ(cache.lookup(ip("192.0.2.1"), ip("198.19.255.1")), onXa(kPeerMac));
    EXPECT_EQ(cache.lookup(ip("2001:db8:1::1"), ip("2001:db8:99::5")), onXa(kPeer6Mac));
    EXPECT_EQ(cache.lookup(ip("2001:db8:1::1"), ip("2001:db8:77::5")), onXa(kRouterLlMac));
    EXPECT_EQ(cache.lookup(ip("192.0.2.1"), ip("198.51.100.7")), onXa(kRouterLlMac));
    EXPECT_EQ(cache.failures(), 0u);
  });
}

TEST(NextHopTest, NeighbourMustBeUsable) {
  XEMS_IN_NETNS([] {
    ASSERT_TRUE(setUpVeth());
    ASSERT_TRUE(sh("ip neigh replace 192.0.2.31 dev xa nud incomplete"));
    ASSERT_TRUE(sh("ip neigh replace 192.0.2.32 dev xa nud failed"));
    ASSERT_TRUE(sh("ip neigh replace 192.0.2.33 lladdr 02:00:00:00:00:33 dev xa nud stale"));
    ASSERT_TRUE(sh("ip neigh replace 192.0.2.34 lladdr 02:00:00:00:00:34 dev xa nud reachable"));
    ASSERT_TRUE(sh("ip route add 198.18.0.0/15 via 192.0.2.30"));
    XEMS_OPEN_CACHE(cache);

    EXPECT_EQ(cache.lookup(ip("192.0.2.1"), ip("192.0.2.30")), std::nullopt);  // no entry
    EXPECT_EQ(cache.lookup(ip("192.0.2.1"), ip("198.18.0.1")), std::nullopt);  // gateway has none
    EXPECT_EQ(cache.lookup(ip("192.0.2.1"), ip("192.0.2.31")), std::nullopt);
    EXPECT_EQ(cache.lookup(ip("192.0.2.1"), ip("192.0.2.32")), std::nullopt);
    EXPECT_EQ(cache.lookup(ip("2001:db8:1::1"), ip("2001:db8:1::30")), std::nullopt);
    EXPECT_EQ(cache.lookup(ip("192.0.2.1"), ip("192.0.2.33")), onXa(Mac{0x02, 0, 0, 0, 0, 0x33}));
    // REACHABLE decays to STALE after a while; both are usable.
    EXPECT_EQ(cache.lookup(ip("192.0.2.1"), ip("192.0.2.34")), onXa(Mac{0x02, 0, 0, 0, 0, 0x34}));
    EXPECT_EQ(cache.failures(), 0u);  // not resolvable is not a failure
    EXPECT_EQ(cache.route_queries(), 7u);
  });
}

TEST(NextHopTest, NoUsableRouteIsNullopt) {
  XEMS_IN_NETNS([] {
    ASSERT_TRUE(setUpVeth());
    ASSERT_TRUE(sh("ip route add blackhole 203.0.113.0/26"));
    ASSERT_TRUE(sh("ip route add unreachable 203.0.113.64/26"));
    ASSERT_TRUE(sh("ip route add prohibit 203.0.113.128/26"));
    ASSERT_TRUE(sh("ip -6 route add blackhole 2001:db8:bad::/48"));
    ASSERT_TRUE(sh("ip -6 route add prohibit 2001:db8:bad1::/48"));
    XEMS_OPEN_CACHE(cache);

    // No route at all: a fresh namespace has no default route.
    EXPECT_EQ(cache.lookup(ip("192.0.2.1"), ip("198.51.100.9")), std::nullopt);
    EXPECT_EQ(cache.lookup(ip("2001:db8:1::1"), ip("2001:db8:ffff::1")), std::nullopt);
    EXPECT_EQ(cache.lookup(ip("192.0.2.1"), ip("203.0.113.1")), std::nullopt);
    EXPECT_EQ(cache.lookup(ip("192.0.2.1"), ip("203.0.113.65")), std::nullopt);
    EXPECT_EQ(cache.lookup(ip("192.0.2.1"), ip("203.0.113.129")), std::nullopt);
    EXPECT_EQ(cache.lookup(ip("2001:db8:1::1"), ip("2001:db8:bad::1")), std::nullopt);
    EXPECT_EQ(cache.lookup(ip("2001:db8:1::1"), ip("2001:db8:bad1::1")), std::nullopt);
    // A source that is not ours (IPv4 checks it).
    EXPECT_EQ(cache.lookup(ip("10.9.9.9"), ip("192.0.2.20")), std::nullopt);
    EXPECT_EQ(cache.route_queries(), 8u);
    EXPECT_EQ(cache.failures(), 0u);
  });
}

TEST(NextHopTest, LocalBroadcastAndLoopbackAreNullopt) {
  XEMS_IN_NETNS([] {
    ASSERT_TRUE(setUpVeth());
    ASSERT_TRUE(sh("ip route add 198.51.100.0/24 dev lo"));
    XEMS_OPEN_CACHE(cache);

    EXPECT_EQ(cache.lookup(ip("192.0.2.1"), ip("192.0.2.1")), std::nullopt);
    EXPECT_EQ(cache.lookup(ip("127.0.0.1"), ip("127.0.0.1")), std::nullopt);
    EXPECT_EQ(cache.lookup(ip("192.0.2.1"), ip("127.0.0.1")), std::nullopt);
    EXPECT_EQ(cache.lookup(ip("2001:db8:1::1"), ip("2001:db8:1::1")), std::nullopt);
    EXPECT_EQ(cache.lookup(ip("::1"), ip("::1")), std::nullopt);
    EXPECT_EQ(cache.lookup(ip("192.0.2.1"), ip("192.0.2.255")), std::nullopt);   // broadcast
    EXPECT_EQ(cache.lookup(ip("192.0.2.1"), ip("198.51.100.1")), std::nullopt);  // unicast via lo
    EXPECT_EQ(cache.failures(), 0u);
  });
}

TEST(NextHopTest, RefreshPicksUpNewMac) {
  XEMS_IN_NETNS([] {
    ASSERT_TRUE(setUpVeth());
    ASSERT_TRUE(sh("ip route add 198.18.0.0/15 via 192.0.2.20"));
    XEMS_OPEN_CACHE(cache);
    const IpAddr src = ip("192.0.2.1");
    EXPECT_EQ(cache.lookup(src, ip("192.0.2.20")), onXa(kPeerMac));
    EXPECT_EQ(cache.lookup(src, ip("198.18.0.1")), onXa(kPeerMac));
    EXPECT_EQ(cache.lookup(src, ip("192.0.2.40")), std::nullopt);

    const Mac new_mac{0x02, 0, 0, 0, 0, 0x21};
    ASSERT_TRUE(sh("ip neigh replace 192.0.2.20 lladdr 02:00:00:00:00:21 dev xa nud permanent"));
    ASSERT_TRUE(sh("ip neigh replace 192.0.2.40 lladdr 02:00:00:00:00:40 dev xa nud permanent"));
    // Until refresh(), the cached answers (also a cached nullopt).
    EXPECT_EQ(cache.lookup(src, ip("192.0.2.20")), onXa(kPeerMac));
    EXPECT_EQ(cache.lookup(src, ip("198.18.0.1")), onXa(kPeerMac));
    EXPECT_EQ(cache.lookup(src, ip("192.0.2.40")), std::nullopt);
    EXPECT_EQ(cache.route_queries(), 3u);

    cache.refresh();
    EXPECT_EQ(cache.lookup(src, ip("192.0.2.20")), onXa(new_mac));
    EXPECT_EQ(cache.lookup(src, ip("198.18.0.1")), onXa(new_mac));
    EXPECT_EQ(cache.lookup(src, ip("192.0.2.40")), onXa(Mac{0x02, 0, 0, 0, 0, 0x40}));
    EXPECT_EQ(cache.route_queries(), 3u);  // routes are kept for kRoutePeriods refreshes
    EXPECT_EQ(cache.lookups(), 9u);

    // A removed neighbour and a changed route (seen once the route answers are forgotten).
    ASSERT_TRUE(sh("ip neigh del 192.0.2.40 dev xa"));
    ASSERT_TRUE(sh("ip route replace 198.18.0.0/15 via 192.0.2.40"));
    cache.refresh();
    EXPECT_EQ(cache.lookup(src, ip("198.18.0.1")), onXa(new_mac));  // the old route, cached
    for (uint32_t i = 0; i < NextHopCache::kRoutePeriods; ++i) {
      cache.refresh();
    }
    EXPECT_EQ(cache.lookup(src, ip("192.0.2.40")), std::nullopt);
    EXPECT_EQ(cache.lookup(src, ip("198.18.0.1")), std::nullopt);
    EXPECT_EQ(cache.failures(), 0u);
  });
}

TEST(NextHopTest, ResolvesWithForwardingDisabled) {
  XEMS_IN_NETNS([] {
    ASSERT_TRUE(setUpVeth());
    ASSERT_TRUE(sh("sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0"));
    ASSERT_EQ(readFile("/proc/sys/net/ipv4/ip_forward"), "0");
    ASSERT_EQ(readFile("/proc/sys/net/ipv6/conf/all/forwarding"), "0");
    ASSERT_TRUE(sh("ip route add default via 192.0.2.20"));
    ASSERT_TRUE(sh("ip -6 route add default via 2001:db8:1::20"));
    XEMS_OPEN_CACHE(cache);

    EXPECT_EQ(cache.lookup(ip("192.0.2.1"), ip("192.0.2.20")), onXa(kPeerMac));
    EXPECT_EQ(cache.lookup(ip("192.0.2.1"), ip("8.8.8.8")), onXa(kPeerMac));
    EXPECT_EQ(cache.lookup(ip("2001:db8:1::1"), ip("2001:db8:1::20")), onXa(kPeer6Mac));
    EXPECT_EQ(cache.lookup(ip("2001:db8:1::1"), ip("2001:4860::8888")), onXa(kPeer6Mac));
    EXPECT_EQ(cache.failures(), 0u);
  });
}

TEST(NextHopTest, OutputDeviceMustSuitXdp) {
  XEMS_IN_NETNS([] {
    ASSERT_TRUE(setUpVeth());
    // A macvlan on xa: up, Ethernet, a MAC, but a kind XDP does not transmit on.
    ASSERT_TRUE(sh("ip link add mv0 link xa address 02:00:00:00:07:01 type macvlan mode bridge"));
    ASSERT_TRUE(sh("ip link set mv0 up"));
    ASSERT_TRUE(sh("ip addr add 10.7.0.1/24 dev mv0"));
    ASSERT_TRUE(sh("ip neigh replace 10.7.0.20 lladdr 02:00:00:00:07:20 dev mv0 nud permanent"));
    ASSERT_TRUE(waitLinkUp("mv0", true));
    XEMS_OPEN_CACHE(cache);
    EXPECT_EQ(cache.lookup(ip("10.7.0.1"), ip("10.7.0.20")), std::nullopt);
    EXPECT_EQ(cache.lookup(ip("192.0.2.1"), ip("192.0.2.20")), onXa(kPeerMac));

    // Carrier lost (the peer is down): the route stays, the device is not usable.
    ASSERT_TRUE(sh("ip link set xb down"));
    ASSERT_TRUE(waitLinkUp("xa", false));
    EXPECT_EQ(cache.lookup(ip("192.0.2.1"), ip("192.0.2.20")), onXa(kPeerMac));  // cached
    cache.refresh();
    EXPECT_EQ(cache.lookup(ip("192.0.2.1"), ip("192.0.2.20")), std::nullopt);
    ASSERT_TRUE(sh("ip link set xb up"));
    ASSERT_TRUE(waitLinkUp("xa", true));
    cache.refresh();
    EXPECT_EQ(cache.lookup(ip("192.0.2.1"), ip("192.0.2.20")), onXa(kPeerMac));

    // A device created after the last refresh is looked up on the spot.
    ASSERT_TRUE(sh("ip link add xc type veth peer name xd"));
    ASSERT_TRUE(sh("ip link set xc address 02:00:00:00:0c:01"));
    ASSERT_TRUE(sh("ip link set xc up"));
    ASSERT_TRUE(sh("ip link set xd up"));
    ASSERT_TRUE(waitLinkUp("xc", true));
    ASSERT_TRUE(sh("ip addr add 10.8.0.1/24 dev xc"));
    ASSERT_TRUE(sh("ip neigh replace 10.8.0.20 lladdr 02:00:00:00:0c:20 dev xc nud permanent"));
    EXPECT_EQ(cache.lookup(ip("10.8.0.1"), ip("10.8.0.20")),
              (NextHop{::if_nametoindex("xc"), Mac{0x02, 0, 0, 0, 0x0c, 0x01},
                       Mac{0x02, 0, 0, 0, 0x0c, 0x20}}));
    EXPECT_EQ(cache.failures(), 0u);
  });
}

TEST(NextHopTest, BadArgumentsAreCountedFailures) {
  XEMS_IN_NETNS([] {
    ASSERT_TRUE(setUpVeth());
    XEMS_OPEN_CACHE(cache);
    EXPECT_EQ(cache.lookup(ip("192.0.2.1"), ip("2001:db8:1::20")), std::nullopt);
    EXPECT_EQ(cache.lookup(IpAddr{}, IpAddr{}), std::nullopt);
    EXPECT_EQ(cache.lookup(ip("192.0.2.1"), ip("0.0.0.0")), std::nullopt);
    EXPECT_EQ(cache.lookups(), 3u);
    EXPECT_EQ(cache.route_queries(), 0u);
    EXPECT_EQ(cache.failures(), 3u);
    // The socket is still fine.
    EXPECT_EQ(cache.lookup(ip("192.0.2.1"), ip("192.0.2.20")), onXa(kPeerMac));
    EXPECT_EQ(cache.failures(), 3u);
  });
}

}  // namespace
}  // namespace xems::datapath::nl
