// datapath/netlink against the real kernel, each test in a private network namespace
// (private_netns.h). Needs root; skipped otherwise.
#include "datapath/netlink/netlink.h"

#include <fcntl.h>
#include <net/if.h>
#include <poll.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/unit/netlink/private_netns.h"

namespace xems::datapath::nl {
namespace {

using Kind = LinkMonitor::Event::Kind;
using Clock = std::chrono::steady_clock;
using nltest::ip;
using nltest::kWait;
using nltest::waitLinkUp;
using nltest::sh;
using std::chrono::milliseconds;

const LinkInfo* find(const std::vector<LinkInfo>& links, const std::string& name) {
  auto it =
      std::find_if(links.begin(), links.end(), [&](const LinkInfo& l) { return l.name == name; });
  return it == links.end() ? nullptr : &*it;
}

bool has(const std::vector<IpAddr>& addrs, const IpAddr& a) {
  return std::find(addrs.begin(), addrs.end(), a) != addrs.end();
}

std::string describe(const LinkMonitor::Event& e) {
  std::ostringstream o;
  o << eventKindName(e.kind) << " ifindex=" << e.ifindex << " ifname=" << e.ifname
    << " up=" << e.up;
  if (e.addr) {
    o << " addr=" << e.addr->toString();
  }
  return o.str();
}

std::string describe(const std::vector<LinkMonitor::Event>& events) {
  std::string s;
  for (const auto& e : events) {
    s += "  " + describe(e) + "\n";
  }
  return s;
}

// Collects monitor events; wait() polls the fd (bounded by kWait) until one matches.
class EventLog {
 public:
  explicit EventLog(LinkMonitor& m) : m_(m) {}

  bool wait(const std::function<bool(const LinkMonitor::Event&)>& pred) {
    const auto deadline = Clock::now() + kWait;
    for (;;) {
      for (; checked_ < events_.size(); ++checked_) {
        if (pred(events_[checked_])) {
          ++checked_;
          return true;
        }
      }
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) {
        return false;
      }
      pollfd p{m_.fd(), POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) > 0) {
        auto got = m_.drain();
        events_.insert(events_.end(), got.begin(), got.end());
      }
    }
  }
  // Events from the start again (for a second search of what already arrived).
  void rewind() { checked_ = 0; }
  std::string dump() const { return describe(events_); }
  const std::vector<LinkMonitor::Event>& events() const { return events_; }

 private:
  LinkMonitor& m_;
  std::vector<LinkMonitor::Event> events_;
  size_t checked_ = 0;
};

TEST(NetlinkTest, ListLinksSeesLoopbackAndVethPair) {
  XEMS_IN_NETNS([] {
    ASSERT_TRUE(sh("ip link add xa type veth peer name xb"));
    ASSERT_TRUE(sh("ip link set xa address 02:00:00:00:0a:01"));
    ASSERT_TRUE(sh("ip link set xb address 02:00:00:00:0b:01"));
    ASSERT_TRUE(sh("ip link set xa mtu 1400"));
    ASSERT_TRUE(sh("ip link set xa up"));
    ASSERT_TRUE(sh("ip link set xb up"));
    ASSERT_TRUE(waitLinkUp("xa", true));
    ASSERT_TRUE(waitLinkUp("xb", true));
    ASSERT_TRUE(waitLinkUp("lo", true));

    auto links = listLinks();
    ASSERT_TRUE(links.ok()) << links.error().message;
    ASSERT_EQ(links->size(), 3u);  // a fresh namespace: lo and the pair, nothing else
    EXPECT_TRUE(
        std::is_sorted(links->begin(), links->end(),
                       [](const LinkInfo& a, const LinkInfo& b) { return a.ifindex < b.ifindex; }));

    const LinkInfo* lo = find(*links, "lo");
    ASSERT_NE(lo, nullptr);
    EXPECT_EQ(lo->ifindex, ::if_nametoindex("lo"));
    EXPECT_TRUE(lo->up);
    EXPECT_EQ(lo->mtu, 65536u);
    EXPECT_EQ(lo->kind, "");
    EXPECT_EQ(lo->mac, (std::array<uint8_t, 6>{}));
    EXPECT_TRUE(has(lo->addrs, ip("127.0.0.1")));

    const LinkInfo* xa = find(*links, "xa");
    ASSERT_NE(xa, nullptr);
    EXPECT_EQ(xa->ifindex, ::if_nametoindex("xa"));
    EXPECT_NE(xa->ifindex, 0u);
    EXPECT_TRUE(xa->up);
    EXPECT_EQ(xa->mtu, 1400u);
    EXPECT_EQ(xa->kind, "veth");
    EXPECT_EQ(xa->mac, (std::array<uint8_t, 6>{0x02, 0, 0, 0, 0x0a, 0x01}));

    const LinkInfo* xb = find(*links, "xb");
    ASSERT_NE(xb, nullptr);
    EXPECT_EQ(xb->ifindex, ::if_nametoindex("xb"));
    EXPECT_EQ(xb->mtu, 1500u);
    EXPECT_EQ(xb->kind, "veth");
    EXPECT_EQ(xb->mac, (std::array<uint8_t, 6>{0x02, 0, 0, 0, 0x0b, 0x01}));
  });
}

TEST(NetlinkTest, UpNeedsAdminUpAndCarrier) {
  XEMS_IN_NETNS([] {
    ASSERT_TRUE(sh("ip link add xa type veth peer name xb"));
    auto down = linkByName("xa");
    ASSERT_TRUE(down.ok()) << down.error().message;
    EXPECT_FALSE(down->up);
    // Administratively up, but the peer is down: no carrier (LOWERLAYERDOWN).
    ASSERT_TRUE(sh("ip link set xa up"));
    std::this_thread::sleep_for(milliseconds(100));
    auto no_carrier = linkByName("xa");
    ASSERT_TRUE(no_carrier.ok()) << no_carrier.error().message;
    EXPECT_FALSE(no_carrier->up);
    ASSERT_TRUE(sh("ip link set xb up"));
    EXPECT_TRUE(waitLinkUp("xa", true));
    ASSERT_TRUE(sh("ip link set xb down"));
    EXPECT_TRUE(waitLinkUp("xa", false));
  });
}

TEST(NetlinkTest, LinkOwningFindsIpv4AndIpv6Addresses) {
  XEMS_IN_NETNS([] {
    ASSERT_TRUE(sh("ip link add xa type veth peer name xb"));
    ASSERT_TRUE(sh("ip addr add 203.0.113.1/24 dev xa"));
    ASSERT_TRUE(sh("ip -6 addr add 2001:db8:a::1/64 dev xa nodad"));
    ASSERT_TRUE(sh("ip addr add 192.0.2.1/24 dev xb"));
    // Ownership does not depend on the link being up.
    const uint32_t xa = ::if_nametoindex("xa");
    const uint32_t xb = ::if_nametoindex("xb");

    auto v4 = linkOwning(ip("203.0.113.1"));
    ASSERT_TRUE(v4.ok()) << v4.error().message;
    EXPECT_EQ(v4->ifindex, xa);
    EXPECT_EQ(v4->name, "xa");
    EXPECT_TRUE(has(v4->addrs, ip("203.0.113.1")));
    EXPECT_TRUE(has(v4->addrs, ip("2001:db8:a::1")));

    auto v6 = linkOwning(ip("2001:db8:a::1"));
    ASSERT_TRUE(v6.ok()) << v6.error().message;
    EXPECT_EQ(v6->ifindex, xa);
    EXPECT_EQ(v6->kind, "veth");

    auto other = linkOwning(ip("192.0.2.1"));
    ASSERT_TRUE(other.ok()) << other.error().message;
    EXPECT_EQ(other->ifindex, xb);

    auto lo = linkOwning(ip("127.0.0.1"));
    ASSERT_TRUE(lo.ok()) << lo.error().message;
    EXPECT_EQ(lo->name, "lo");

    // In the subnet of xa, but not assigned: no owner.
    auto none4 = linkOwning(ip("203.0.113.2"));
    ASSERT_FALSE(none4.ok());
    EXPECT_EQ(none4.error().code, std::make_error_code(std::errc::address_not_available));
    EXPECT_NE(none4.error().message.find("203.0.113.2"), std::string::npos)
        << none4.error().message;

    auto none6 = linkOwning(ip("2001:db8:a::2"));
    ASSERT_FALSE(none6.ok());
    EXPECT_NE(none6.error().message.find("2001:db8:a::2"), std::string::npos)
        << none6.error().message;

    EXPECT_FALSE(linkOwning(IpAddr{}).ok());
  });
}

TEST(NetlinkTest, LinkByName) {
  XEMS_IN_NETNS([] {
    ASSERT_TRUE(sh("ip link add xa type veth peer name xb"));
    auto xa = linkByName("xa");
    ASSERT_TRUE(xa.ok()) << xa.error().message;
    EXPECT_EQ(xa->ifindex, ::if_nametoindex("xa"));
    EXPECT_EQ(xa->name, "xa");

    auto missing = linkByName("xems-nope0");
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().code, std::make_error_code(std::errc::no_such_device));
    EXPECT_NE(missing.error().message.find("xems-nope0"), std::string::npos)
        << missing.error().message;
  });
}

TEST(NetlinkTest, MonitorReportsLinkAndAddressEvents) {
  XEMS_IN_NETNS([] {
    auto opened = LinkMonitor::open();
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    LinkMonitor& mon = **opened;
    ASSERT_GE(mon.fd(), 0);
    EXPECT_NE(::fcntl(mon.fd(), F_GETFL) & O_NONBLOCK, 0);
    EXPECT_TRUE(mon.drain().empty());  // nothing pending, and it does not block

    EventLog log(mon);
    ASSERT_TRUE(sh("ip link add xa type veth peer name xb"));
    const uint32_t xa = ::if_nametoindex("xa");
    ASSERT_NE(xa, 0u);
    EXPECT_TRUE(log.wait([&](const auto& e) {
      return e.kind == Kind::kLinkNew && e.ifindex == xa && e.ifname == "xa" && !e.up;
    })) << log.dump();

    ASSERT_TRUE(sh("ip addr add 203.0.113.1/24 dev xa"));
    EXPECT_TRUE(log.wait([&](const auto& e) {
      return e.kind == Kind::kAddrNew && e.ifindex == xa && e.ifname == "xa" &&
             e.addr == ip("203.0.113.1");
    })) << log.dump();

    ASSERT_TRUE(sh("ip -6 addr add 2001:db8:a::1/64 dev xa nodad"));
    EXPECT_TRUE(log.wait([&](const auto& e) {
      return e.kind == Kind::kAddrNew && e.ifindex == xa && e.ifname == "xa" &&
             e.addr == ip("2001:db8:a::1");
    })) << log.dump();

    ASSERT_TRUE(sh("ip link set xa up"));
    ASSERT_TRUE(sh("ip link set xb up"));
    EXPECT_TRUE(log.wait([&](const auto& e) {
      return e.kind == Kind::kLinkNew && e.ifindex == xa && e.up;
    })) << log.dump();

    ASSERT_TRUE(sh("ip addr del 203.0.113.1/24 dev xa"));
    EXPECT_TRUE(log.wait([&](const auto& e) {
      return e.kind == Kind::kAddrDel && e.ifindex == xa && e.addr == ip("203.0.113.1");
    })) << log.dump();
    ASSERT_TRUE(sh("ip -6 addr del 2001:db8:a::1/64 dev xa"));
    EXPECT_TRUE(log.wait([&](const auto& e) {
      return e.kind == Kind::kAddrDel && e.ifindex == xa && e.addr == ip("2001:db8:a::1");
    })) << log.dump();

    // Names come from the monitor's own view, not from a lookup at drain time: both events
    // below are read only after the link is gone.
    const uint32_t xb = ::if_nametoindex("xb");
    ASSERT_TRUE(sh("ip -6 addr add 2001:db8:a::7/64 dev xa nodad"));
    ASSERT_TRUE(sh("ip link del xa"));  // takes its peer and its addresses with it
    EXPECT_TRUE(log.wait([&](const auto& e) {
      return e.kind == Kind::kAddrNew && e.ifname == "xa" && e.addr == ip("2001:db8:a::7");
    })) << log.dump();
    EXPECT_TRUE(log.wait([&](const auto& e) {
      return e.kind == Kind::kAddrDel && e.ifname == "xa" && e.addr == ip("2001:db8:a::7");
    })) << log.dump();
    EXPECT_TRUE(log.wait([&](const auto& e) {
      return e.kind == Kind::kLinkDel && e.ifindex == xa && e.ifname == "xa";
    })) << log.dump();
    log.rewind();
    EXPECT_TRUE(log.wait([&](const auto& e) {
      return e.kind == Kind::kLinkDel && e.ifindex == xb && e.ifname == "xb";
    })) << log.dump();

    for (const auto& e : log.events()) {
      EXPECT_NE(e.kind, Kind::kOverrun) << log.dump();
    }
    EXPECT_EQ(mon.overruns(), 0u);
    EXPECT_EQ(mon.unparsed(), 0u);
  });
}

TEST(NetlinkTest, MonitorReportsOverrunAndKeepsWorking) {
  XEMS_IN_NETNS([] {
    // A receive buffer of a few KiB holds a handful of link notifications.
    auto opened = LinkMonitor::open(4096);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    LinkMonitor& mon = **opened;
    ASSERT_TRUE(
        sh("for i in $(seq 1 20); do ip link add va$i type veth peer name vb$i || exit 1; "
           "done"));
    const auto events = mon.drain();
    EXPECT_GE(mon.overruns(), 1u);
    EXPECT_EQ(mon.unparsed(), 0u);
    EXPECT_NE(std::find_if(events.begin(), events.end(),
                           [](const auto& e) { return e.kind == Kind::kOverrun; }),
              events.end())
        << describe(events);

    // After an overrun the caller re-lists; the socket keeps delivering.
    auto links = listLinks();
    ASSERT_TRUE(links.ok()) << links.error().message;
    EXPECT_EQ(links->size(), 41u);
    EventLog log(mon);
    ASSERT_TRUE(sh("ip addr add 198.51.100.1/24 dev va1"));
    EXPECT_TRUE(log.wait([&](const auto& e) {
      return e.kind == Kind::kAddrNew && e.addr == ip("198.51.100.1") &&
             e.ifindex == ::if_nametoindex("va1");
    })) << log.dump();
  });
}

}  // namespace
}  // namespace xems::datapath::nl
