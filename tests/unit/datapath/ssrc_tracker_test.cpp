#include "datapath/ssrc_tracker.h"

#include <gtest/gtest.h>

namespace xems::datapath {
namespace {

rtp::RtpHeader hdr(uint32_t ssrc, uint16_t seq, uint32_t ts = 0, uint8_t pt = 0) {
  rtp::RtpHeader h;
  h.ssrc = ssrc;
  h.seq = seq;
  h.timestamp = ts;
  h.payload_type = pt;
  return h;
}

struct Snap {
  std::array<SsrcStats, kMaxSsrcPerFlow> s{};
  size_t n = 0;
};

Snap snap(const SsrcTracker& t) {
  Snap out;
  t.snapshot(out.s, out.n);
  return out;
}

TEST(SsrcTrackerTest, WrapAndGapGiveExactLoss) {
  SsrcTracker t;
  EXPECT_TRUE(t.update(hdr(7, 65530, 100, 8), 172));  // new SSRC: publish
  uint32_t received = 1;
  for (uint32_t s = 65531; s < 65536 + 20; ++s) {
    if (s == 65536 + 3 || s == 65536 + 4) {
      continue;  // two lost after the wrap
    }
    t.update(hdr(7, static_cast<uint16_t>(s), s * 160, 8), 172);
    ++received;
  }
  const Snap s = snap(t);
  ASSERT_EQ(s.n, 1u);
  EXPECT_EQ(s.s[0].ssrc, 7u);
  EXPECT_EQ(s.s[0].base_seq, 65530u);
  EXPECT_EQ(s.s[0].highest_seq, 65536u + 19);
  EXPECT_EQ(s.s[0].packets, received);
  EXPECT_EQ(s.s[0].bytes, received * 172ull);
  EXPECT_EQ(s.s[0].lost(), 2);
  EXPECT_EQ(s.s[0].payload_type, 8);
  EXPECT_EQ(s.s[0].last_timestamp, (65536u + 19) * 160);
}

TEST(SsrcTrackerTest, ReorderAndDuplicateDoNotMoveHighest) {
  SsrcTracker t;
  t.update(hdr(1, 100), 10);
  t.update(hdr(1, 102), 10);
  t.update(hdr(1, 101), 10);  // late
  t.update(hdr(1, 101), 10);  // duplicate
  const Snap s = snap(t);
  EXPECT_EQ(s.s[0].highest_seq, 102u);
  EXPECT_EQ(s.s[0].packets, 4u);
  EXPECT_EQ(s.s[0].lost(), -1);  // RFC 3550: duplicates make loss negative
}

TEST(SsrcTrackerTest, LargeJumpResyncsAfterTwoSequential) {
  SsrcTracker t;
  t.update(hdr(1, 10), 10);
  t.update(hdr(1, 11), 10);
  t.update(hdr(1, 30000), 10);  // bad: not counted, remembered
  EXPECT_EQ(snap(t).s[0].packets, 2u);
  t.update(hdr(1, 30001), 10);  // sequential after the jump: restart
  const Snap s = snap(t);
  EXPECT_EQ(s.s[0].base_seq, 30001u);
  EXPECT_EQ(s.s[0].highest_seq, 30001u);
  EXPECT_EQ(s.s[0].packets, 1u);
  EXPECT_EQ(s.s[0].lost(), 0);
}

TEST(SsrcTrackerTest, TableLimitAndPublishInterval) {
  SsrcTracker t;
  for (uint32_t i = 0; i < kMaxSsrcPerFlow; ++i) {
    EXPECT_TRUE(t.update(hdr(100 + i, 1), 10));
  }
  EXPECT_FALSE(t.update(hdr(999, 1), 10));  // no room: totals only
  EXPECT_EQ(t.size(), kMaxSsrcPerFlow);
  int publishes = 0;
  for (uint16_t s = 2; s < 2 + 3 * SsrcTracker::kPublishInterval; ++s) {
    publishes += t.update(hdr(100, s), 10) ? 1 : 0;
  }
  EXPECT_EQ(publishes, 3);
}

}  // namespace
}  // namespace xems::datapath
