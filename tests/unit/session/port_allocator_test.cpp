#include "ctrl/session/port_allocator.h"

#include <gtest/gtest.h>

#include <set>

namespace xems::session {
namespace {

const IpAddr kLo = *IpAddr::parse("127.0.0.1");

TEST(PortAllocatorTest, EvenRtpOddRtcpWithinRangeAllDistinct) {
  PortAllocator pa(47001, 47040, 1);  // odd min: first pair starts at 47002
  EXPECT_EQ(pa.pairsTotal(), 19u);
  std::set<uint16_t> seen;
  std::vector<BoundPair> held;
  for (int i = 0; i < 19; ++i) {
    auto r = pa.allocate(kLo);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->port % 2, 0);
    EXPECT_GE(r->port, 47002);
    EXPECT_LE(r->port + 1, 47040);
    EXPECT_TRUE(seen.insert(r->port).second);
    held.push_back(std::move(*r));
  }
  auto full = pa.allocate(kLo);
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error().message, "Ran out of ports");
  // Freed and closed: usable again.
  uint16_t port = held.back().port;
  held.pop_back();
  pa.release(kLo, port);
  auto again = pa.allocate(kLo);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->port, port);
}

TEST(PortAllocatorTest, SkipsPortsSomeoneElseHolds) {
  PortAllocator pa(47100, 47103, 7);  // two pairs
  auto squatter = bindUdp(*SockAddr::parse("127.0.0.1:47101"));
  ASSERT_TRUE(squatter.ok());
  auto r = pa.allocate(kLo);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->port, 47102);  // 47100/47101 is taken by another socket
  EXPECT_FALSE(pa.allocate(kLo).ok());
}

TEST(PortAllocatorTest, EachAddressHasItsOwnPortSpace) {
  PortAllocator pa(47200, 47201, 3);  // one pair
  ASSERT_TRUE(pa.allocate(kLo).ok());
  auto other = pa.allocate(*IpAddr::parse("127.0.0.2"));
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->port, 47200);
  EXPECT_EQ(pa.pairsInUse(), 2u);
}

TEST(PortAllocatorTest, UnusableAddressIsAnErrorNotALoop) {
  PortAllocator pa(47300, 47399, 3);
  auto r = pa.allocate(*IpAddr::parse("192.0.2.123"));  // not a local address
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("bind"), std::string::npos);
}

}  // namespace
}  // namespace xems::session
