// Sockets created inside a named network namespace, and small UDP socket helpers.
//
// The relay harness is one process whose generator, sink and ng client live in three different
// namespaces. A socket belongs to the namespace it was created in, whatever thread uses it
// later, so each socket is created after a per-thread setns() and the thread switches back.
#pragma once

#include <functional>
#include <string_view>

#include "common/net.h"
#include "common/result.h"
#include "common/unique_fd.h"

namespace xems::perf {

// "NAME" means /run/netns/NAME (iproute2); a value containing '/' is used as a path; empty means
// the caller's namespace.
//
// Runs `fn` on a short-lived thread that joined `netns` (empty: directly, here): sockets of every
// kind, netlink queries and XDP attachment by ifindex belong to the namespace of the thread that
// makes them, and a thread of its own cannot leave the caller stranded in the wrong namespace.
Status runInNetns(std::string_view netns, const std::function<Status()>& fn);

Result<UniqueFd> udpSocketInNetns(std::string_view netns, Family family);

struct UdpSocketOptions {
  int rcvbuf = 0;  // bytes; 0 keeps the default. Uses SO_RCVBUFFORCE when allowed.
  int sndbuf = 0;
  bool nonblocking = true;
  bool rx_overflow_counter = false;  // SO_RXQ_OVFL: drops of this socket in a cmsg
};

// Creates a UDP socket in `netns`, applies options and binds it to `bind_addr` (port 0 = any).
Result<UniqueFd> openUdp(std::string_view netns, const SockAddr& bind_addr,
                         const UdpSocketOptions& options);
// The address the kernel bound the socket to.
Result<SockAddr> localAddress(int fd);

}  // namespace xems::perf
