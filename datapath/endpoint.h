// A compact, trivially copyable UDP endpoint for the packet path.
//
// SockAddr wraps a 128-byte sockaddr_storage; comparing received source addresses against it on
// every packet would touch three cache lines. Endpoint is 20 bytes, compares with one memcmp and
// converts to the sockaddr a given socket family needs (v4-mapped IPv6 for dual-stack sockets).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <cstring>

#include "common/net.h"

namespace xems::datapath {

struct Endpoint {
  uint8_t family = 0;   // AF_INET, AF_INET6, or 0 = unset
  uint8_t pad = 0;
  uint16_t port_be = 0;  // network byte order
  std::array<uint8_t, 16> addr{};  // IPv4 in the first 4 bytes, rest zero

  bool valid() const { return family != 0; }
  bool operator==(const Endpoint& o) const = default;
  bool sameAddress(const Endpoint& o) const { return family == o.family && addr == o.addr; }

  /// Builds from a kernel-supplied name; v4-mapped IPv6 becomes plain IPv4 so that sources seen
  /// on dual-stack sockets compare equal to IPv4 addresses from SDP. Unset on anything else.
  static Endpoint fromSockaddr(const void* name, size_t len) {
    Endpoint e;
    sa_family_t fam = 0;
    if (len >= sizeof(sa_family_t)) {
      std::memcpy(&fam, name, sizeof fam);
    }
    if (fam == AF_INET && len >= sizeof(sockaddr_in)) {
      sockaddr_in s;
      std::memcpy(&s, name, sizeof s);
      e.family = AF_INET;
      e.port_be = s.sin_port;
      std::memcpy(e.addr.data(), &s.sin_addr, 4);
    } else if (fam == AF_INET6 && len >= sizeof(sockaddr_in6)) {
      sockaddr_in6 s;
      std::memcpy(&s, name, sizeof s);
      e.port_be = s.sin6_port;
      if (IN6_IS_ADDR_V4MAPPED(&s.sin6_addr)) {
        e.family = AF_INET;
        std::memcpy(e.addr.data(), &s.sin6_addr.s6_addr[12], 4);
      } else {
        e.family = AF_INET6;
        std::memcpy(e.addr.data(), &s.sin6_addr, 16);
      }
    }
    return e;
  }

  static Endpoint fromSockAddr(const SockAddr& a) {
    return a.valid() ? fromSockaddr(a.sa(), a.len()) : Endpoint{};
  }

  SockAddr toSockAddr() const {
    sockaddr_in6 buf{};
    const socklen_t len = toSockaddr(family, &buf);
    auto r = len != 0 ? SockAddr::fromSockaddr(reinterpret_cast<const sockaddr*>(&buf), len)
                      : std::nullopt;
    return r ? *r : SockAddr{};
  }

  /// Writes the destination for a socket of `socket_family` into `out`.
  /// @return the sockaddr length, or 0 if this endpoint cannot be reached from such a socket
  ///         (IPv6 destination on an IPv4 socket, or unset).
  socklen_t toSockaddr(int socket_family, sockaddr_in6* out) const {
    if (family == AF_INET && socket_family == AF_INET) {
      sockaddr_in s{};
      s.sin_family = AF_INET;
      s.sin_port = port_be;
      std::memcpy(&s.sin_addr, addr.data(), 4);
      std::memcpy(out, &s, sizeof s);
      return sizeof s;
    }
    if (socket_family == AF_INET6 && (family == AF_INET || family == AF_INET6)) {
      *out = sockaddr_in6{};
      out->sin6_family = AF_INET6;
      out->sin6_port = port_be;
      if (family == AF_INET) {
        out->sin6_addr.s6_addr[10] = 0xff;
        out->sin6_addr.s6_addr[11] = 0xff;
        std::memcpy(&out->sin6_addr.s6_addr[12], addr.data(), 4);
      } else {
        std::memcpy(&out->sin6_addr, addr.data(), 16);
      }
      return sizeof(sockaddr_in6);
    }
    return 0;
  }
};
static_assert(sizeof(Endpoint) == 20);

}  // namespace xems::datapath
