#include "ctrl/ng/cookie_cache.h"

#include <algorithm>
#include <utility>

namespace xems::ng {

CookieCache::CookieCache(std::chrono::seconds generation, size_t max_bytes)
    : generation_(std::max(generation, std::chrono::seconds(1))), max_bytes_(max_bytes) {}

void CookieCache::Generation::evictOldest() {
  const std::string* key = order.front();
  order.pop_front();
  auto it = replies.find(*key);
  bytes -= entryBytes(it->first, it->second);
  replies.erase(it);
}

const std::string* CookieCache::Generation::find(std::string_view cookie) const {
  auto it = replies.find(cookie);
  return it == replies.end() ? nullptr : &it->second;
}

void CookieCache::rotateLocked(CookieClock::time_point now) {
  if (!next_rotation_) {
    next_rotation_ = now + generation_;
    return;
  }
  if (now < *next_rotation_) {
    return;
  }
  // Rotations missed while idle count too: after two or more, nothing survives.
  const auto periods = (now - *next_rotation_) / generation_ + 1;
  if (periods >= 2) {
    old_ = Generation();
  } else {
    old_ = std::move(current_);
  }
  current_ = Generation();
  *next_rotation_ += periods * generation_;
}

void CookieCache::storeLocked(std::string_view cookie, std::string reply) {
  const size_t need = entryBytes(cookie, reply);
  if (need > max_bytes_) {
    return;
  }
  while (current_.bytes + old_.bytes + need > max_bytes_ && !old_.order.empty()) {
    old_.evictOldest();
  }
  while (current_.bytes + need > max_bytes_ && !current_.order.empty()) {
    current_.evictOldest();
  }
  auto [it, inserted] = current_.replies.try_emplace(std::string(cookie));
  if (inserted) {
    current_.order.push_back(&it->first);
  } else {
    current_.bytes -= entryBytes(it->first, it->second);
  }
  it->second = std::move(reply);
  current_.bytes += need;
}

CookieCache::Lookup CookieCache::begin(std::string_view cookie, const SockAddr& waiter,
                                       CookieClock::time_point now) {
  std::lock_guard lock(mutex_);
  rotateLocked(now);
  const std::string* cached = current_.find(cookie);
  if (cached == nullptr) {
    cached = old_.find(cookie);
  }
  if (cached != nullptr) {
    return Lookup{State::kCached, *cached};
  }
  auto it = in_flight_.find(cookie);
  if (it != in_flight_.end()) {
    auto& waiters = it->second;
    if (waiters.size() < kMaxWaiters &&
        std::find(waiters.begin(), waiters.end(), waiter) == waiters.end()) {
      waiters.push_back(waiter);
    }
    return Lookup{State::kInFlight, {}};
  }
  in_flight_.emplace(std::string(cookie), std::vector<SockAddr>());
  return Lookup{State::kNew, {}};
}

std::vector<SockAddr> CookieCache::finish(std::string_view cookie, std::string reply,
                                          CookieClock::time_point now) {
  std::lock_guard lock(mutex_);
  rotateLocked(now);
  std::vector<SockAddr> waiters;
  auto it = in_flight_.find(cookie);
  if (it != in_flight_.end()) {
    waiters = std::move(it->second);
    in_flight_.erase(it);
  }
  storeLocked(cookie, std::move(reply));
  return waiters;
}

void CookieCache::abandon(std::string_view cookie) {
  std::lock_guard lock(mutex_);
  auto it = in_flight_.find(cookie);
  if (it != in_flight_.end()) {
    in_flight_.erase(it);
  }
}

size_t CookieCache::size() const {
  std::lock_guard lock(mutex_);
  return current_.replies.size() + old_.replies.size() + in_flight_.size();
}

size_t CookieCache::bytes() const {
  std::lock_guard lock(mutex_);
  return current_.bytes + old_.bytes;
}

}  // namespace xems::ng
