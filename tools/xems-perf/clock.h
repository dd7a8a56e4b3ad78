// Monotonic nanosecond clock shared by the generator, the sink and the ng client.
#pragma once

#include <time.h>

#include <cstdint>

namespace xems::perf {

inline int64_t monoNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

inline constexpr int64_t kNsPerSec = 1'000'000'000;
inline constexpr int64_t kNsPerMs = 1'000'000;

}  // namespace xems::perf
