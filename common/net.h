// IP addresses and socket addresses (IPv4 and IPv6), parsing and formatting.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace xems {

enum class Family : uint8_t { kNone = 0, kIpv4 = 4, kIpv6 = 6 };

// SDP / ng spelling: "IP4" / "IP6".
std::string_view familySdpName(Family f);
std::optional<Family> familyFromSdpName(std::string_view s);

class IpAddr {
 public:
  IpAddr() = default;
  static std::optional<IpAddr> parse(std::string_view text);  // accepts [v6] too
  static IpAddr v4(uint32_t host_order);
  static IpAddr any(Family f);
  // 4 bytes for IPv4, 16 for IPv6, network order.
  static IpAddr fromRaw(Family f, const void* bytes);
  // From a kernel (netlink) address: AF_INET with 4 bytes or AF_INET6 with 16, else nothing.
  static std::optional<IpAddr> fromAf(int af, const void* bytes, size_t len);

  Family family() const { return family_; }
  bool isV4() const { return family_ == Family::kIpv4; }
  bool isV6() const { return family_ == Family::kIpv6; }
  bool isNone() const { return family_ == Family::kNone; }
  bool isAny() const;  // 0.0.0.0 or ::
  const uint8_t* bytes() const { return bytes_; }
  size_t rawSize() const { return isV4() ? 4 : 16; }  // of bytes()
  int af() const;                                       // AF_INET or AF_INET6
  std::string toString() const;
  // 32-bit network-order for IPv4.
  uint32_t v4NetOrder() const;

  bool operator==(const IpAddr& o) const {
    return family_ == o.family_ && std::memcmp(bytes_, o.bytes_, sizeof bytes_) == 0;
  }
  size_t hash() const;

 private:
  Family family_ = Family::kNone;
  uint8_t bytes_[16] = {};
};

class SockAddr {
 public:
  SockAddr() = default;
  SockAddr(const IpAddr& ip, uint16_t port);
  static std::optional<SockAddr> fromSockaddr(const sockaddr* sa, socklen_t len);
  // "IP:PORT", "[IPv6]:PORT", "IP" or "PORT" (default_ip used when only a port is given).
  static std::optional<SockAddr> parse(std::string_view text,
                                       std::string_view default_ip = "127.0.0.1");

  IpAddr ip() const;
  uint16_t port() const;
  Family family() const;
  bool valid() const { return ss_.ss_family == AF_INET || ss_.ss_family == AF_INET6; }
  const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&ss_); }
  sockaddr* sa() { return reinterpret_cast<sockaddr*>(&ss_); }
  socklen_t len() const;
  std::string toString() const;

  bool operator==(const SockAddr& o) const;
  size_t hash() const;

 private:
  sockaddr_storage ss_{};
};

}  // namespace xems

template <>
struct std::hash<xems::IpAddr> {
  size_t operator()(const xems::IpAddr& a) const { return a.hash(); }
};
template <>
struct std::hash<xems::SockAddr> {
  size_t operator()(const xems::SockAddr& a) const { return a.hash(); }
};
