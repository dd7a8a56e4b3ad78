#include "datapath/bpf/libbpf_log.h"

#include <bpf/libbpf.h>

#include <cstdarg>
#include <cstdio>
#include <string>

#include "common/log.h"

namespace xems::datapath::bpf {
namespace {

spdlog::level::level_enum demoted(libbpf_print_level level) {
  switch (level) {
    case LIBBPF_WARN:
      return spdlog::level::info;
    case LIBBPF_INFO:
      return spdlog::level::debug;
    case LIBBPF_DEBUG:
    default:
      return spdlog::level::trace;
  }
}

__attribute__((format(printf, 2, 0))) int libbpfPrint(libbpf_print_level level, const char* format,
                                                      va_list args) {
  const auto lvl = demoted(level);
  if (!log::enabled(log::Subsys::kBpf, lvl)) {
    return 0;
  }
  char small[512];
  va_list copy;
  va_copy(copy, args);
  const int n = std::vsnprintf(small, sizeof(small), format, copy);
  va_end(copy);
  if (n < 0) {
    return 0;
  }
  std::string msg;
  if (static_cast<size_t>(n) < sizeof(small)) {
    msg.assign(small, static_cast<size_t>(n));
  } else {
    msg.resize(static_cast<size_t>(n) + 1);
    std::vsnprintf(msg.data(), msg.size(), format, args);
    msg.resize(static_cast<size_t>(n));
  }
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == '\r')) {
    msg.pop_back();
  }
  log::logger().log(lvl, "[{}] {}", log::subsysName(log::Subsys::kBpf), msg);
  return n;
}

}  // namespace

void installLibbpfLogger() {
  libbpf_set_print(libbpfPrint);
}

}  // namespace xems::datapath::bpf
