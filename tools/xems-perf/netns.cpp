#include "tools/xems-perf/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <string>
#include <thread>

#include <fmt/format.h>

namespace xems::perf {

namespace {

std::string netnsPath(std::string_view netns) {
  if (netns.find('/') != std::string_view::npos) {
    return std::string(netns);
  }
  return fmt::format("/run/netns/{}", netns);
}

int socketFamily(Family f) { return f == Family::kIpv6 ? AF_INET6 : AF_INET; }

}  // namespace

Status runInNetns(std::string_view netns, const std::function<Status()>& fn) {
  if (netns.empty()) {
    return fn();
  }
  Status result = XEMS_INVALID("runInNetns: not run");
  const std::string path = netnsPath(netns);
  auto body = [&]() noexcept {
    try {
      UniqueFd target(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!target) {
        result = XEMS_ERRNO(errno, fmt::format("open {}: {}", path, std::strerror(errno)));
        return;
      }
      // Only this thread moves; it ends right after, so nobody is left in the namespace.
      if (::setns(target.get(), CLONE_NEWNET) != 0) {
        result = XEMS_ERRNO(errno, fmt::format("setns {}: {}", path, std::strerror(errno)));
        return;
      }
      result = fn();
    } catch (const std::exception& e) {
      result = XEMS_INVALID(fmt::format("runInNetns: {}", e.what()));
    }
  };
  try {
    std::thread th(body);
    th.join();
  } catch (const std::exception& e) {
    return XEMS_INVALID(fmt::format("runInNetns: thread: {}", e.what()));
  }
  return result;
}

Result<UniqueFd> udpSocketInNetns(std::string_view netns, Family family) {
  UniqueFd fd;
  XEMS_TRY_STATUS(runInNetns(netns, [&]() -> Status {
    fd = UniqueFd(::socket(socketFamily(family), SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd) {
      return XEMS_ERRNO(errno, netns.empty() ? std::string("socket")
                                             : fmt::format("socket in netns {}", netns));
    }
    return okStatus();
  }));
  return fd;
}

Result<UniqueFd> openUdp(std::string_view netns, const SockAddr& bind_addr,
                         const UdpSocketOptions& options) {
  auto fd = udpSocketInNetns(netns, bind_addr.family());
  if (!fd.ok()) {
    return fd;
  }
  const int s = fd->get();
  if (options.rcvbuf > 0) {
    // Root may exceed net.core.rmem_max (which is not per-namespace and we must not change).
    if (::setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &options.rcvbuf, sizeof(int)) != 0) {
      (void)::setsockopt(s, SOL_SOCKET, SO_RCVBUF, &options.rcvbuf, sizeof(int));
    }
  }
  if (options.sndbuf > 0) {
    if (::setsockopt(s, SOL_SOCKET, SO_SNDBUFFORCE, &options.sndbuf, sizeof(int)) != 0) {
      (void)::setsockopt(s, SOL_SOCKET, SO_SNDBUF, &options.sndbuf, sizeof(int));
    }
  }
  if (options.rx_overflow_counter) {
    const int one = 1;
    if (::setsockopt(s, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one) != 0) {
      return XEMS_ERRNO(errno, "SO_RXQ_OVFL");
    }
  }
  if (options.nonblocking) {
    const int flags = ::fcntl(s, F_GETFL);
    if (flags < 0 || ::fcntl(s, F_SETFL, flags | O_NONBLOCK) != 0) {
      return XEMS_ERRNO(errno, "O_NONBLOCK");
    }
  }
  if (::bind(s, bind_addr.sa(), bind_addr.len()) != 0) {
    return XEMS_ERRNO(errno, fmt::format("bind {}", bind_addr.toString()));
  }
  return fd;
}

Result<SockAddr> localAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return XEMS_ERRNO(errno, "getsockname");
  }
  auto a = SockAddr::fromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
  if (!a) {
    return XEMS_INVALID("getsockname: unknown family");
  }
  return *a;
}

}  // namespace xems::perf
