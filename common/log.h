// Subsystem-tagged logging over spdlog. Never log per packet: count instead.
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

namespace xems::log {

enum class Subsys : int {
#define XEMS_LOG_SUBSYS(name, str) name,
#include "common/log_subsystems.inc"
#undef XEMS_LOG_SUBSYS
  kCount
};

const char* subsysName(Subsys s);
spdlog::logger& logger();

// Levels use syslog-like names accepted by --log-level: 0..7 (rtpengine style) or
// trace|debug|info|warn|error|critical|off.
bool setLevel(std::string_view level);
void setLevel(spdlog::level::level_enum level);
void setSubsysLevel(Subsys s, spdlog::level::level_enum level);
bool enabled(Subsys s, spdlog::level::level_enum level);
// Switch output to syslog-free stderr (foreground) or to a file; default is stderr.
void init(std::string_view ident);

}  // namespace xems::log

#define XEMS_LOG(lvl, subsys, ...)                                                      \
  do {                                                                                  \
    if (::xems::log::enabled(::xems::log::Subsys::subsys, ::spdlog::level::lvl)) {     \
      ::xems::log::logger().log(::spdlog::level::lvl, "[{}] {}",                        \
                                ::xems::log::subsysName(::xems::log::Subsys::subsys),   \
                                ::fmt::format(__VA_ARGS__));                            \
    }                                                                                   \
  } while (0)
#define XLOG_DEBUG(subsys, ...) XEMS_LOG(debug, subsys, __VA_ARGS__)
#define XLOG_INFO(subsys, ...) XEMS_LOG(info, subsys, __VA_ARGS__)
#define XLOG_WARN(subsys, ...) XEMS_LOG(warn, subsys, __VA_ARGS__)
#define XLOG_ERROR(subsys, ...) XEMS_LOG(err, subsys, __VA_ARGS__)
