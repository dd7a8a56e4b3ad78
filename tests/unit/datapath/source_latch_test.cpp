#include "datapath/source_latch.h"

#include <gtest/gtest.h>

namespace xems::datapath {
namespace {

using Verdict = SourceLatch::Verdict;
using std::chrono::seconds;

Endpoint ep(const char* text) {
  auto a = SockAddr::parse(text);
  EXPECT_TRUE(a.has_value()) << text;
  return Endpoint::fromSockAddr(*a);
}

const Clock::time_point kT0 = Clock::time_point{} + std::chrono::hours(1);

SourcePolicy policy(EndpointLearning mode, bool strict, const char* advertised,
                    Clock::time_point learn_until = {}) {
  SourcePolicy p;
  p.learning = mode;
  p.strict = strict;
  if (advertised != nullptr) {
    p.advertised = SockAddr::parse(advertised);
  }
  p.learn_until = learn_until;
  return p;
}

TEST(SourceLatchTest, OffNeverLearnsAndStrictChecksAdvertised) {
  SourceLatch l;
  l.configure(policy(EndpointLearning::kOff, true, "192.0.2.1:4000"), false);
  EXPECT_EQ(l.onPacket(ep("192.0.2.1:4000"), kT0), Verdict::kAccept);
  EXPECT_EQ(l.onPacket(ep("192.0.2.1:4001"), kT0), Verdict::kDrop);
  EXPECT_EQ(l.onPacket(ep("198.51.100.7:4000"), kT0), Verdict::kDrop);
  EXPECT_FALSE(l.latched().valid());
  EXPECT_EQ(l.destination(), ep("192.0.2.1:4000"));

  l.configure(policy(EndpointLearning::kOff, false, "192.0.2.1:4000"), false);
  EXPECT_EQ(l.onPacket(ep("198.51.100.7:4000"), kT0), Verdict::kAccept);
  EXPECT_FALSE(l.latched().valid());
  // Strict without an advertised address: nothing to compare with, accept.
  l.configure(policy(EndpointLearning::kOff, true, nullptr), false);
  EXPECT_EQ(l.onPacket(ep("198.51.100.7:4000"), kT0), Verdict::kAccept);
  EXPECT_FALSE(l.destination().valid());
}

TEST(SourceLatchTest, ImmediateLatchesFirstAndLocks) {
  SourceLatch l;
  l.configure(policy(EndpointLearning::kImmediate, true, "192.0.2.1:4000"), false);
  EXPECT_EQ(l.destination(), ep("192.0.2.1:4000"));
  EXPECT_EQ(l.onPacket(ep("203.0.113.5:5000"), kT0), Verdict::kLatched);
  EXPECT_TRUE(l.locked());
  EXPECT_EQ(l.destination(), ep("203.0.113.5:5000"));
  EXPECT_EQ(l.onPacket(ep("203.0.113.5:5000"), kT0), Verdict::kAccept);
  EXPECT_EQ(l.onPacket(ep("192.0.2.1:4000"), kT0), Verdict::kDrop);  // even the advertised one

  SourceLatch loose;
  loose.configure(policy(EndpointLearning::kImmediate, false, nullptr), false);
  EXPECT_EQ(loose.onPacket(ep("203.0.113.5:5000"), kT0), Verdict::kLatched);
  EXPECT_EQ(loose.onPacket(ep("203.0.113.6:5000"), kT0), Verdict::kAccept);
  EXPECT_EQ(loose.latched(), ep("203.0.113.5:5000"));  // not re-latched
}

TEST(SourceLatchTest, DelayedLatestWinsInWindowThenLocks) {
  SourceLatch l;
  l.configure(policy(EndpointLearning::kDelayed, true, nullptr, kT0 + seconds(3)), false);
  EXPECT_EQ(l.onPacket(ep("203.0.113.5:5000"), kT0), Verdict::kLatched);
  EXPECT_EQ(l.onPacket(ep("203.0.113.5:5000"), kT0 + seconds(1)), Verdict::kAccept);
  EXPECT_EQ(l.onPacket(ep("203.0.113.9:6000"), kT0 + seconds(2)), Verdict::kLatched);
  EXPECT_FALSE(l.locked());
  EXPECT_EQ(l.onPacket(ep("203.0.113.5:5000"), kT0 + seconds(3)), Verdict::kDrop);
  EXPECT_TRUE(l.locked());
  EXPECT_EQ(l.latched(), ep("203.0.113.9:6000"));
  EXPECT_EQ(l.onPacket(ep("203.0.113.9:6000"), kT0 + seconds(4)), Verdict::kAccept);
}

TEST(SourceLatchTest, DelayedLocksAtOnceOnTheAdvertisedEndpoint) {
  SourceLatch l;
  l.configure(policy(EndpointLearning::kDelayed, true, "192.0.2.1:4000", kT0 + seconds(3)), false);
  // Behind NAT: another address latches but the window stays open.
  EXPECT_EQ(l.onPacket(ep("203.0.113.5:5000"), kT0), Verdict::kLatched);
  EXPECT_FALSE(l.locked());
  // The peer sends from where its SDP said: locked at once, within the window.
  EXPECT_EQ(l.onPacket(ep("192.0.2.1:4000"), kT0 + seconds(1)), Verdict::kLatched);
  EXPECT_TRUE(l.locked());
  // A spoofed source inside the window can no longer take the stream over.
  EXPECT_EQ(l.onPacket(ep("203.0.113.66:7000"), kT0 + seconds(1)), Verdict::kDrop);
  EXPECT_EQ(l.latched(), ep("192.0.2.1:4000"));
}

TEST(SourceLatchTest, AfterTheWindowOnlyTheAdvertisedEndpointMayLatch) {
  // The call rang past the window and nothing was received: a port scan must not take over.
  SourceLatch l;
  l.configure(policy(EndpointLearning::kDelayed, true, "192.0.2.1:4000", kT0 + seconds(3)), false);
  EXPECT_EQ(l.onPacket(ep("203.0.113.66:7000"), kT0 + seconds(10)), Verdict::kDrop);
  EXPECT_FALSE(l.latched().valid());
  EXPECT_EQ(l.onPacket(ep("192.0.2.1:4000"), kT0 + seconds(11)), Verdict::kLatched);
  EXPECT_TRUE(l.locked());
  EXPECT_EQ(l.onPacket(ep("203.0.113.66:7000"), kT0 + seconds(12)), Verdict::kDrop);
  // Heuristic mode behaves the same after its window.
  SourceLatch h;
  h.configure(policy(EndpointLearning::kHeuristic, true, "192.0.2.1:4000", kT0 + seconds(3)),
              false);
  EXPECT_EQ(h.onPacket(ep("192.0.2.1:5555"), kT0 + seconds(10)), Verdict::kDrop);
  // A new signalling event opens a new window for the NATed peer.
  h.configure(policy(EndpointLearning::kHeuristic, true, "192.0.2.1:4000", kT0 + seconds(23)),
              true);
  EXPECT_EQ(h.onPacket(ep("192.0.2.1:5555"), kT0 + seconds(21)), Verdict::kLatched);
}

TEST(SourceLatchTest, DelayedWindowOverBeforeFirstPacketLatchesFirst) {
  SourceLatch l;
  l.configure(policy(EndpointLearning::kDelayed, true, nullptr, kT0 - seconds(1)), false);
  EXPECT_EQ(l.onPacket(ep("203.0.113.5:5000"), kT0), Verdict::kLatched);
  EXPECT_TRUE(l.locked());
  EXPECT_EQ(l.onPacket(ep("203.0.113.6:5000"), kT0), Verdict::kDrop);
}

TEST(SourceLatchTest, HeuristicPrefersExactThenSameAddress) {
  SourceLatch l;
  l.configure(policy(EndpointLearning::kHeuristic, true, "192.0.2.1:4000", kT0 + seconds(3)),
              false);
  EXPECT_EQ(l.onPacket(ep("198.51.100.7:7000"), kT0), Verdict::kLatched);  // rank 0
  EXPECT_EQ(l.onPacket(ep("198.51.100.8:7000"), kT0), Verdict::kDrop);     // rank 0, not first
  EXPECT_EQ(l.onPacket(ep("192.0.2.1:4444"), kT0), Verdict::kLatched);     // rank 1 beats 0
  EXPECT_EQ(l.onPacket(ep("198.51.100.7:7000"), kT0), Verdict::kDrop);     // lower rank now
  EXPECT_FALSE(l.locked());
  EXPECT_EQ(l.onPacket(ep("192.0.2.1:4000"), kT0), Verdict::kLatched);  // exact: locks at once
  EXPECT_TRUE(l.locked());
  EXPECT_EQ(l.onPacket(ep("192.0.2.1:4444"), kT0 + seconds(1)), Verdict::kDrop);
}

TEST(SourceLatchTest, HeuristicLocksAfterWindow) {
  SourceLatch l;
  l.configure(policy(EndpointLearning::kHeuristic, false, "192.0.2.1:4000", kT0 + seconds(3)),
              false);
  EXPECT_EQ(l.onPacket(ep("192.0.2.1:4444"), kT0), Verdict::kLatched);
  EXPECT_EQ(l.onPacket(ep("192.0.2.1:4000"), kT0 + seconds(5)), Verdict::kAccept);  // too late
  EXPECT_TRUE(l.locked());
  EXPECT_EQ(l.latched(), ep("192.0.2.1:4444"));
}

TEST(SourceLatchTest, RelearnUnlocksAndUsesNewPolicy) {
  SourceLatch l;
  l.configure(policy(EndpointLearning::kImmediate, true, nullptr), false);
  EXPECT_EQ(l.onPacket(ep("203.0.113.5:5000"), kT0), Verdict::kLatched);
  // Update without relearn keeps the lock.
  l.configure(policy(EndpointLearning::kDelayed, true, nullptr, kT0 + seconds(3)), false);
  EXPECT_EQ(l.onPacket(ep("203.0.113.6:5000"), kT0), Verdict::kDrop);
  // With relearn the new source can latch during the new window.
  l.configure(policy(EndpointLearning::kDelayed, true, "192.0.2.1:4000", kT0 + seconds(3)), true);
  EXPECT_FALSE(l.latched().valid());
  EXPECT_EQ(l.destination(), ep("192.0.2.1:4000"));
  EXPECT_EQ(l.onPacket(ep("203.0.113.6:5000"), kT0), Verdict::kLatched);
}

TEST(SourceLatchTest, EndpointV4MappedComparesEqualToV4) {
  sockaddr_in6 s6{};
  s6.sin6_family = AF_INET6;
  s6.sin6_port = htons(4000);
  s6.sin6_addr.s6_addr[10] = 0xff;
  s6.sin6_addr.s6_addr[11] = 0xff;
  s6.sin6_addr.s6_addr[12] = 192;
  s6.sin6_addr.s6_addr[15] = 1;
  const Endpoint mapped = Endpoint::fromSockaddr(&s6, sizeof s6);
  EXPECT_EQ(mapped, ep("192.0.0.1:4000"));
  sockaddr_in6 out{};
  ASSERT_EQ(mapped.toSockaddr(AF_INET6, &out), sizeof(sockaddr_in6));
  EXPECT_EQ(Endpoint::fromSockaddr(&out, sizeof out), mapped);
  EXPECT_EQ(ep("[2001:db8::1]:5").toSockaddr(AF_INET, &out), 0u);
  EXPECT_EQ(ep("[2001:db8::1]:5").toSockAddr().toString(), "[2001:db8::1]:5");
}

}  // namespace
}  // namespace xems::datapath
