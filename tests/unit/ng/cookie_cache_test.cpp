#include "ctrl/ng/cookie_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace xems::ng {
namespace {

using std::chrono::seconds;
using State = CookieCache::State;

const CookieClock::time_point kT0 = CookieClock::time_point() + std::chrono::hours(1);

SockAddr addr(const char* text) { return *SockAddr::parse(text); }

TEST(CookieCacheTest, NewThenCachedReplayForAnySource) {
  CookieCache cache;
  const SockAddr kamailio = addr("192.0.2.1:5060");
  auto first = cache.begin("5323_1", kamailio, kT0);
  EXPECT_EQ(first.state, State::kNew);
  EXPECT_TRUE(first.reply.empty());
  EXPECT_TRUE(cache.finish("5323_1", "d6:result4:ponge", kT0 + seconds(1)).empty());

  auto again = cache.begin("5323_1", kamailio, kT0 + seconds(2));
  EXPECT_EQ(again.state, State::kCached);
  EXPECT_EQ(again.reply, "d6:result4:ponge");
  // Keyed by cookie only: another source gets the same stored reply.
  auto other = cache.begin("5323_1", addr("[2001:db8::1]:5060"), kT0 + seconds(3));
  EXPECT_EQ(other.state, State::kCached);
  EXPECT_EQ(other.reply, "d6:result4:ponge");
  // A different cookie is new.
  EXPECT_EQ(cache.begin("5323_2", kamailio, kT0 + seconds(3)).state, State::kNew);
  EXPECT_EQ(cache.size(), 2u);  // one cached, one in flight
}

TEST(CookieCacheTest, ErrorRepliesAreCachedToo) {
  CookieCache cache;
  const SockAddr a = addr("192.0.2.1:5060");
  ASSERT_EQ(cache.begin("c", a, kT0).state, State::kNew);
  (void)cache.finish("c", "d6:result5:error12:error-reason15:Unknown call-ide", kT0);
  EXPECT_EQ(cache.begin("c", a, kT0).reply, "d6:result5:error12:error-reason15:Unknown call-ide");
}

TEST(CookieCacheTest, InFlightWaitersAreReturnedByFinish) {
  CookieCache cache;
  const SockAddr a = addr("192.0.2.1:5060");
  const SockAddr b = addr("192.0.2.2:5060");
  const SockAddr c = addr("192.0.2.2:5061");
  ASSERT_EQ(cache.begin("k", a, kT0).state, State::kNew);
  auto l1 = cache.begin("k", b, kT0 + seconds(1));
  EXPECT_EQ(l1.state, State::kInFlight);
  EXPECT_TRUE(l1.reply.empty());
  EXPECT_EQ(cache.begin("k", c, kT0 + seconds(1)).state, State::kInFlight);
  EXPECT_EQ(cache.begin("k", b, kT0 + seconds(2)).state, State::kInFlight);  // retransmission
  EXPECT_EQ(cache.begin("k", a, kT0 + seconds(2)).state, State::kInFlight);  // the originator
  EXPECT_EQ(cache.size(), 1u);

  const auto waiters = cache.finish("k", "reply", kT0 + seconds(3));
  // Each distinct source once, in arrival order.
  ASSERT_EQ(waiters.size(), 3u);
  EXPECT_EQ(waiters[0], b);
  EXPECT_EQ(waiters[1], c);
  EXPECT_EQ(waiters[2], a);
  auto after = cache.begin("k", b, kT0 + seconds(4));
  EXPECT_EQ(after.state, State::kCached);
  EXPECT_EQ(after.reply, "reply");
}

TEST(CookieCacheTest, WaitersAreCapped) {
  CookieCache cache;
  ASSERT_EQ(cache.begin("k", addr("192.0.2.1:1"), kT0).state, State::kNew);
  for (int port = 2; port < 100; ++port) {
    const SockAddr waiter(*IpAddr::parse("192.0.2.1"), static_cast<uint16_t>(port));
    EXPECT_EQ(cache.begin("k", waiter, kT0).state, State::kInFlight);
  }
  EXPECT_EQ(cache.finish("k", "r", kT0).size(), CookieCache::kMaxWaiters);
}

TEST(CookieCacheTest, AbandonForgetsTheRequest) {
  CookieCache cache;
  const SockAddr a = addr("192.0.2.1:5060");
  ASSERT_EQ(cache.begin("k", a, kT0).state, State::kNew);
  EXPECT_EQ(cache.begin("k", addr("192.0.2.9:9"), kT0).state, State::kInFlight);
  cache.abandon("k");
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(cache.begin("k", a, kT0).state, State::kNew);  // processed afresh
  EXPECT_TRUE(cache.finish("k", "r", kT0).empty());        // earlier waiter was dropped
  cache.abandon("unknown");                                // harmless
  cache.abandon("k");  // not in flight any more: the cached reply stays
  EXPECT_EQ(cache.begin("k", a, kT0).state, State::kCached);
}

TEST(CookieCacheTest, FinishWithoutBeginStillCaches) {
  CookieCache cache;
  EXPECT_TRUE(cache.finish("k", "r1", kT0).empty());
  EXPECT_TRUE(cache.finish("k", "r2", kT0).empty());  // replaces
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.begin("k", addr("192.0.2.1:1"), kT0).reply, "r2");
  EXPECT_EQ(cache.bytes(), 1 + 2 + CookieCache::kEntryOverhead);
}

TEST(CookieCacheTest, ReplyLivesBetweenOneAndTwoGenerations) {
  CookieCache cache(seconds(30));
  const SockAddr a = addr("192.0.2.1:5060");
  // The first call starts the rotation clock: rotations at kT0+30, kT0+60, ...
  ASSERT_EQ(cache.begin("early", a, kT0).state, State::kNew);
  (void)cache.finish("early", "r-early", kT0);
  ASSERT_EQ(cache.begin("late", a, kT0 + seconds(29)).state, State::kNew);
  (void)cache.finish("late", "r-late", kT0 + seconds(29));

  // After the first rotation both are in the old generation and still replayable.
  EXPECT_EQ(cache.begin("early", a, kT0 + seconds(30)).state, State::kCached);
  EXPECT_EQ(cache.begin("late", a, kT0 + seconds(59)).state, State::kCached);
  EXPECT_EQ(cache.begin("early", a, kT0 + seconds(59)).state, State::kCached);
  // The second rotation drops them: "early" lived 60 s, "late" 31 s.
  EXPECT_EQ(cache.begin("late", a, kT0 + seconds(60)).state, State::kNew);
  EXPECT_EQ(cache.begin("early", a, kT0 + seconds(60)).state, State::kNew);
  cache.abandon("late");
  cache.abandon("early");
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(cache.bytes(), 0u);
}

TEST(CookieCacheTest, IdlePeriodsExpireEverything) {
  CookieCache cache(seconds(30));
  const SockAddr a = addr("192.0.2.1:5060");
  (void)cache.finish("k", "r", kT0);
  // Nothing happens for ten minutes; the next call must not resurrect the reply.
  EXPECT_EQ(cache.begin("k", a, kT0 + seconds(600)).state, State::kNew);
  (void)cache.finish("k", "r2", kT0 + seconds(600));
  // Rotation stays on the original 30 s grid: 600 was a rotation point, the next is 630.
  EXPECT_EQ(cache.begin("k", a, kT0 + seconds(659)).state, State::kCached);
  EXPECT_EQ(cache.begin("k", a, kT0 + seconds(660)).state, State::kNew);
}

TEST(CookieCacheTest, InFlightEntriesSurviveRotation) {
  CookieCache cache(seconds(30));
  const SockAddr a = addr("192.0.2.1:5060");
  const SockAddr b = addr("192.0.2.2:5060");
  ASSERT_EQ(cache.begin("slow", a, kT0).state, State::kNew);
  EXPECT_EQ(cache.begin("slow", b, kT0 + seconds(100)).state, State::kInFlight);
  const auto waiters = cache.finish("slow", "r", kT0 + seconds(101));
  ASSERT_EQ(waiters.size(), 1u);
  EXPECT_EQ(waiters[0], b);
}

TEST(CookieCacheTest, ByteCapEvictsOldGenerationFirst) {
  const std::string reply(100, 'r');
  const size_t entry = 2 + reply.size() + CookieCache::kEntryOverhead;  // 2-byte cookies
  CookieCache cache(seconds(30), 4 * entry);
  const SockAddr a = addr("192.0.2.1:5060");
  (void)cache.finish("o1", reply, kT0);
  (void)cache.finish("o2", reply, kT0);
  (void)cache.finish("o3", reply, kT0);
  // Rotate: o1..o3 are old now.
  (void)cache.finish("n1", reply, kT0 + seconds(31));
  EXPECT_EQ(cache.bytes(), 4 * entry);
  (void)cache.finish("n2", reply, kT0 + seconds(31));  // over the cap: drops o1 (oldest old)
  EXPECT_EQ(cache.bytes(), 4 * entry);
  EXPECT_EQ(cache.begin("o1", a, kT0 + seconds(31)).state, State::kNew);
  cache.abandon("o1");
  EXPECT_EQ(cache.begin("o2", a, kT0 + seconds(31)).state, State::kCached);
  (void)cache.finish("n3", reply, kT0 + seconds(31));
  (void)cache.finish("n4", reply, kT0 + seconds(31));
  // The old generation is gone entirely before any current entry goes.
  EXPECT_EQ(cache.begin("o2", a, kT0 + seconds(31)).state, State::kNew);
  cache.abandon("o2");
  EXPECT_EQ(cache.begin("o3", a, kT0 + seconds(31)).state, State::kNew);
  cache.abandon("o3");
  EXPECT_EQ(cache.begin("n1", a, kT0 + seconds(31)).state, State::kCached);
  (void)cache.finish("n5", reply, kT0 + seconds(31));  // now the oldest current entry goes
  EXPECT_EQ(cache.begin("n1", a, kT0 + seconds(31)).state, State::kNew);
  cache.abandon("n1");
  EXPECT_EQ(cache.begin("n5", a, kT0 + seconds(31)).state, State::kCached);
  EXPECT_LE(cache.bytes(), 4 * entry);
  EXPECT_EQ(cache.size(), 4u);
}

TEST(CookieCacheTest, ReplyLargerThanTheBudgetIsNotCachedButWaitersGetIt) {
  CookieCache cache(seconds(30), 1000);
  const SockAddr a = addr("192.0.2.1:5060");
  const SockAddr b = addr("192.0.2.2:5060");
  (void)cache.finish("small", "r", kT0);
  ASSERT_EQ(cache.begin("big", a, kT0).state, State::kNew);
  ASSERT_EQ(cache.begin("big", b, kT0).state, State::kInFlight);
  const auto waiters = cache.finish("big", std::string(2000, 'x'), kT0);
  ASSERT_EQ(waiters.size(), 1u);
  EXPECT_EQ(cache.begin("big", a, kT0).state, State::kNew);
  EXPECT_EQ(cache.begin("small", a, kT0).state, State::kCached);  // untouched
}

TEST(CookieCacheTest, ManyRepliesStayWithinTheBudget) {
  constexpr size_t kBudget = 64 * 1024;
  CookieCache cache(seconds(30), kBudget);
  for (int i = 0; i < 5000; ++i) {
    const auto now = kT0 + std::chrono::milliseconds(i * 10);
    (void)cache.finish("cookie-" + std::to_string(i), std::string(100 + i % 900, 'x'), now);
    ASSERT_LE(cache.bytes(), kBudget);
  }
  EXPECT_GT(cache.size(), 0u);
}

TEST(CookieCacheTest, ConcurrentUseIsConsistent) {
  CookieCache cache;
  constexpr int kThreads = 4;
  constexpr int kCookies = 200;
  std::atomic<int> processed{0};
  std::atomic<int> replayed_or_waiting{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const SockAddr me(*IpAddr::parse("192.0.2.1"), static_cast<uint16_t>(1000 + t));
      for (int i = 0; i < kCookies; ++i) {
        const std::string cookie = "c" + std::to_string(i);
        auto l = cache.begin(cookie, me, kT0);
        if (l.state == State::kNew) {
          ++processed;
          (void)cache.finish(cookie, "reply-" + cookie, kT0);
        } else {
          ++replayed_or_waiting;
          if (l.state == State::kCached) {
            EXPECT_EQ(l.reply, "reply-" + cookie);
          }
        }
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  EXPECT_EQ(processed.load(), kCookies);  // each cookie processed exactly once
  EXPECT_EQ(replayed_or_waiting.load(), (kThreads - 1) * kCookies);
  EXPECT_EQ(cache.size(), static_cast<size_t>(kCookies));
}

}  // namespace
}  // namespace xems::ng
