// rtpengine-compatible ng cookie cache: answers retransmitted requests with the stored reply.
//
// Keyed by the cookie string only (not by source address or call-id). Replies live in two
// generations, "current" and "old"; every `generation` the old one is dropped and current becomes
// old, so a reply stays replayable for more than one and at most two generations (30-60 s by
// default). Rotation is driven by the injected `now` of each call (no timer thread).
//
// A cookie that is being processed is "in flight": retransmissions that arrive meanwhile get
// kInFlight and their source address is remembered (once per distinct address, up to
// kMaxWaiters); finish() hands those addresses back so the caller sends each the reply. rtpengine
// blocks a thread per retransmission on a condition variable instead; this keeps threads free.
// In-flight entries are not subject to rotation; every begin() returning kNew must be followed
// by finish() or abandon().
//
// Memory is bounded: cached cookie + reply bytes (+ kEntryOverhead each) never exceed `max_bytes`.
// An insertion that would exceed it evicts the oldest entries of the old generation first, then
// the oldest of the current one (FIFO within a generation); a reply larger than the whole budget
// is not cached. Thread-safe; control path only (one mutex).
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/net.h"

namespace xems::ng {

using CookieClock = std::chrono::steady_clock;

class CookieCache {
 public:
  static constexpr size_t kDefaultMaxBytes = size_t{64} << 20;
  // Per-entry bookkeeping counted against the byte budget on top of cookie and reply sizes.
  static constexpr size_t kEntryOverhead = 64;
  static constexpr size_t kMaxWaiters = 16;

  explicit CookieCache(std::chrono::seconds generation = std::chrono::seconds(30),
                       size_t max_bytes = kDefaultMaxBytes);

  enum class State { kNew, kCached, kInFlight };
  struct Lookup {
    State state;
    std::string reply;  // set only for kCached
  };

  // kNew: the caller must process the request and call finish() (or abandon()).
  // kCached: resend `reply`. kInFlight: the same cookie is being processed; `waiter` is
  // remembered and will be returned by finish().
  Lookup begin(std::string_view cookie, const SockAddr& waiter, CookieClock::time_point now);
  // Stores the reply; returns the waiters that arrived while in flight (each must get the reply).
  [[nodiscard]] std::vector<SockAddr> finish(std::string_view cookie, std::string reply,
                               CookieClock::time_point now);
  // Drops an in-flight entry without caching (request that must not be cached). Waiters that
  // arrived meanwhile are forgotten; their next retransmission is processed afresh.
  void abandon(std::string_view cookie);
  // Number of cookies known: cached in either generation plus in flight.
  size_t size() const;
  // Bytes counted against the budget (cached entries only).
  size_t bytes() const;

 private:
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  template <typename V>
  using Map = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

  struct Generation {
    Map<std::string> replies;
    // Insertion order for eviction; points at the keys of `replies` (node-based, so stable).
    std::deque<const std::string*> order;
    size_t bytes = 0;

    void evictOldest();
    const std::string* find(std::string_view cookie) const;
  };

  void rotateLocked(CookieClock::time_point now);
  void storeLocked(std::string_view cookie, std::string reply);
  static size_t entryBytes(std::string_view cookie, const std::string& reply) {
    return cookie.size() + reply.size() + kEntryOverhead;
  }

  const CookieClock::duration generation_;
  const size_t max_bytes_;
  mutable std::mutex mutex_;
  Generation current_;
  Generation old_;
  Map<std::vector<SockAddr>> in_flight_;
  std::optional<CookieClock::time_point> next_rotation_;  // set by the first call
};

}  // namespace xems::ng
