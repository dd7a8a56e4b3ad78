// Test helpers for datapath/netlink against the real kernel. Every test builds its devices in a
// private network namespace on a thread of its own (unshare(CLONE_NEWNET) moves only the calling
// thread; `ip` started from that thread inherits it), so nothing touches the host's interfaces
// and everything disappears with the thread. Needs root; tests skip otherwise.
#pragma once

#include <sched.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>

#include "common/net.h"
#include "datapath/netlink/netlink.h"

namespace xems::datapath::nl::nltest {

/// Upper bound for anything the kernel does asynchronously.
inline constexpr std::chrono::milliseconds kWait{2000};

/// Runs a shell command (in the calling thread's namespace); true when it exits 0.
inline bool sh(const std::string& cmd) {
  const std::string quiet = cmd + " >/dev/null";  // stderr stays: it explains a failure
  return std::system(quiet.c_str()) == 0;
}

/// Runs fn on a new thread in a fresh network namespace with lo up. Returns why it could not (the
/// test skips), or "" after fn ran.
inline std::string inPrivateNetns(const std::function<void()>& fn) {
  if (::geteuid() != 0) {
    return "needs root: creates a network namespace and devices";
  }
  std::string why;
  std::thread t([&] {
    if (::unshare(CLONE_NEWNET) != 0) {
      why = std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno);
      return;
    }
    if (!sh("ip link set lo up")) {
      why = "'ip link set lo up' failed (iproute2 missing?)";
      return;
    }
    fn();
  });
  t.join();
  return why;
}

// Variadic: the lambda may contain commas outside parentheses (braced initializers).
#define XEMS_IN_NETNS(...)                                                              \
  do {                                                                                  \
    const std::string why_ = ::xems::datapath::nl::nltest::inPrivateNetns(__VA_ARGS__); \
    if (!why_.empty()) {                                                                \
      GTEST_SKIP() << why_;                                                             \
    }                                                                                   \
  } while (0)

inline IpAddr ip(const char* text) {
  auto a = IpAddr::parse(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a.value_or(IpAddr{});
}

// Operational state follows the kernel's linkwatch work, asynchronously: poll for it (bounded
// by kWait).
inline bool waitLinkUp(const std::string& name, bool want) {
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  do {
    auto l = linkByName(name);
    if (l.ok() && l->up == want) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  } while (std::chrono::steady_clock::now() < deadline);
  return false;
}

}  // namespace xems::datapath::nl::nltest
