#include "tools/xems-perf/proc_stats.h"

#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <fmt/format.h>

namespace xems::perf {

std::optional<uint64_t> processCpuNs(pid_t pid) {
  const std::string path = fmt::format("/proc/{}/stat", pid);
  FILE* f = std::fopen(path.c_str(), "re");
  if (f == nullptr) {
    return std::nullopt;
  }
  char buf[4096];
  const size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  // The command name (field 2) may contain spaces and parentheses: fields restart after the last
  // ')'. Then: state(3) ppid(4) ... utime(14) stime(15).
  const char* p = std::strrchr(buf, ')');
  if (p == nullptr) {
    return std::nullopt;
  }
  ++p;
  unsigned long long utime = 0;
  unsigned long long stime = 0;
  for (int field = 3; field <= 15; ++field) {
    while (*p == ' ') {
      ++p;
    }
    if (*p == '\0') {
      return std::nullopt;
    }
    char* end = nullptr;
    if (field == 14) {
      utime = std::strtoull(p, &end, 10);
    } else if (field == 15) {
      stime = std::strtoull(p, &end, 10);
    } else {
      end = const_cast<char*>(p);
      while (*end != ' ' && *end != '\0') {
        ++end;
      }
    }
    p = end;
  }
  const long hz = ::sysconf(_SC_CLK_TCK);
  if (hz <= 0) {
    return std::nullopt;
  }
  return (utime + stime) * (1'000'000'000ull / static_cast<unsigned long long>(hz));
}

std::optional<uint64_t> hostBusyNs() {
  FILE* f = std::fopen("/proc/stat", "re");
  if (f == nullptr) {
    return std::nullopt;
  }
  unsigned long long v[8] = {};
  const int n = std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                            &v[3], &v[4], &v[5], &v[6], &v[7]);
  std::fclose(f);
  const long hz = ::sysconf(_SC_CLK_TCK);
  if (n != 8 || hz <= 0) {
    return std::nullopt;
  }
  // user nice system idle iowait irq softirq steal
  const unsigned long long busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
  return busy * (1'000'000'000ull / static_cast<unsigned long long>(hz));
}

std::optional<uint64_t> softnetDrops() {
  FILE* f = std::fopen("/proc/net/softnet_stat", "re");
  if (f == nullptr) {
    return std::nullopt;
  }
  uint64_t total = 0;
  char line[512];
  while (std::fgets(line, sizeof line, f) != nullptr) {
    unsigned processed = 0;
    unsigned dropped = 0;
    if (std::sscanf(line, "%x %x", &processed, &dropped) == 2) {
      total += dropped;
    }
  }
  std::fclose(f);
  return total;
}

std::optional<uint64_t> udpSocketDrops(pid_t pid) {
  uint64_t total = 0;
  bool any = false;
  for (const char* table : {"udp", "udp6"}) {
    const std::string path = "/proc/" + std::to_string(pid) + "/net/" + table;
    FILE* f = std::fopen(path.c_str(), "re");
    if (f == nullptr) {
      continue;
    }
    any = true;
    char line[512];
    bool header = true;
    while (std::fgets(line, sizeof line, f) != nullptr) {
      if (header) {
        header = false;
        continue;
      }
      // The last column is "drops".
      const char* end = line + std::strlen(line);
      while (end > line && (end[-1] == '\n' || end[-1] == ' ')) {
        --end;
      }
      const char* start = end;
      while (start > line && start[-1] != ' ') {
        --start;
      }
      uint64_t drops = 0;
      if (std::from_chars(start, end, drops).ec == std::errc()) {
        total += drops;
      }
    }
    std::fclose(f);
  }
  return any ? std::optional<uint64_t>(total) : std::nullopt;
}

}  // namespace xems::perf
