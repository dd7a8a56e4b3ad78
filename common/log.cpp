#include "common/log.h"

#include <spdlog/sinks/stdout_sinks.h>

#include <array>
#include <atomic>
#include <charconv>

namespace xems::log {
namespace {

constexpr std::array<const char*, static_cast<int>(Subsys::kCount)> kNames = {
#define XEMS_LOG_SUBSYS(name, str) str,
#include "common/log_subsystems.inc"
#undef XEMS_LOG_SUBSYS
};

// Every subsystem starts at info.
std::array<std::atomic<int>, static_cast<int>(Subsys::kCount)> g_levels{
#define XEMS_LOG_SUBSYS(name, str) spdlog::level::info,
#include "common/log_subsystems.inc"
#undef XEMS_LOG_SUBSYS
};

std::shared_ptr<spdlog::logger>& loggerPtr() {
  static std::shared_ptr<spdlog::logger> l = [] {
    auto lg = std::make_shared<spdlog::logger>("xems",
                                               std::make_shared<spdlog::sinks::stderr_sink_mt>());
    lg->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
    lg->set_level(spdlog::level::trace);
    return lg;
  }();
  return l;
}

}  // namespace

const char* subsysName(Subsys s) { return kNames[static_cast<int>(s)]; }
spdlog::logger& logger() { return *loggerPtr(); }

void init(std::string_view ident) {
  loggerPtr()->set_pattern(fmt::format("%Y-%m-%d %H:%M:%S.%e {}[%P] %^%l%$ %v", ident));
}

void setLevel(spdlog::level::level_enum level) {
  for (auto& l : g_levels) {
    l.store(level);
  }
}

bool setLevel(std::string_view level) {
  int n = -1;
  auto [p, ec] = std::from_chars(level.data(), level.data() + level.size(), n);
  if (ec == std::errc() && p == level.data() + level.size()) {
    // syslog numbers as rtpengine's --log-level: 7 debug, 6 info, 5 notice, 4 warning, 3 err...
    static constexpr spdlog::level::level_enum kMap[] = {
        spdlog::level::critical, spdlog::level::critical, spdlog::level::critical,
        spdlog::level::err,      spdlog::level::warn,     spdlog::level::info,
        spdlog::level::info,     spdlog::level::debug};
    if (n < 0 || n > 7) {
      return false;
    }
    setLevel(kMap[n]);
    return true;
  }
  auto l = spdlog::level::from_str(std::string(level));
  if (l == spdlog::level::off && level != "off") {
    return false;
  }
  setLevel(l);
  return true;
}

void setSubsysLevel(Subsys s, spdlog::level::level_enum level) {
  g_levels[static_cast<int>(s)].store(level);
}

bool enabled(Subsys s, spdlog::level::level_enum level) {
  return level >= g_levels[static_cast<int>(s)].load(std::memory_order_relaxed);
}

}  // namespace xems::log
