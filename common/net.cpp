#include "common/net.h"

#include <arpa/inet.h>

namespace xems {

std::string_view familySdpName(Family f) {
  switch (f) {
    case Family::kIpv4:
      return "IP4";
    case Family::kIpv6:
      return "IP6";
    default:
      return "";
  }
}

std::optional<Family> familyFromSdpName(std::string_view s) {
  if (s == "IP4" || s == "ip4" || s == "IPv4") {
    return Family::kIpv4;
  }
  if (s == "IP6" || s == "ip6" || s == "IPv6") {
    return Family::kIpv6;
  }
  return std::nullopt;
}

std::optional<IpAddr> IpAddr::parse(std::string_view text) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
    text = text.substr(1, text.size() - 2);
  }
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) {
    return std::nullopt;
  }
  char buf[INET6_ADDRSTRLEN];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  IpAddr a;
  if (inet_pton(AF_INET, buf, a.bytes_) == 1) {
    a.family_ = Family::kIpv4;
    return a;
  }
  if (inet_pton(AF_INET6, buf, a.bytes_) == 1) {
    a.family_ = Family::kIpv6;
    return a;
  }
  return std::nullopt;
}

IpAddr IpAddr::v4(uint32_t host_order) {
  IpAddr a;
  a.family_ = Family::kIpv4;
  uint32_t n = htonl(host_order);
  std::memcpy(a.bytes_, &n, 4);
  return a;
}

IpAddr IpAddr::fromRaw(Family f, const void* bytes) {
  IpAddr a;
  a.family_ = f;
  std::memcpy(a.bytes_, bytes, f == Family::kIpv4 ? 4 : 16);
  return a;
}

std::optional<IpAddr> IpAddr::fromAf(int af, const void* bytes, size_t len) {
  if (af == AF_INET && len == 4) {
    return fromRaw(Family::kIpv4, bytes);
  }
  if (af == AF_INET6 && len == 16) {
    return fromRaw(Family::kIpv6, bytes);
  }
  return std::nullopt;
}

int IpAddr::af() const {
  return isV4() ? AF_INET : AF_INET6;
}

IpAddr IpAddr::any(Family f) {
  IpAddr a;
  a.family_ = f;
  return a;
}

bool IpAddr::isAny() const {
  static constexpr uint8_t kZero[16] = {};
  size_t n = isV4() ? 4 : 16;
  return !isNone() && std::memcmp(bytes_, kZero, n) == 0;
}

uint32_t IpAddr::v4NetOrder() const {
  uint32_t n;
  std::memcpy(&n, bytes_, 4);
  return n;
}

std::string IpAddr::toString() const {
  char buf[INET6_ADDRSTRLEN] = "";
  if (isV4()) {
    inet_ntop(AF_INET, bytes_, buf, sizeof buf);
  } else if (isV6()) {
    inet_ntop(AF_INET6, bytes_, buf, sizeof buf);
  }
  return buf;
}

size_t IpAddr::hash() const {
  size_t h = static_cast<size_t>(family_);
  for (uint8_t b : bytes_) {
    h = h * 131 + b;
  }
  return h;
}

SockAddr::SockAddr(const IpAddr& ip, uint16_t port) {
  if (ip.isV4()) {
    auto* s = reinterpret_cast<sockaddr_in*>(&ss_);
    s->sin_family = AF_INET;
    s->sin_port = htons(port);
    std::memcpy(&s->sin_addr, ip.bytes(), 4);
  } else if (ip.isV6()) {
    auto* s = reinterpret_cast<sockaddr_in6*>(&ss_);
    s->sin6_family = AF_INET6;
    s->sin6_port = htons(port);
    std::memcpy(&s->sin6_addr, ip.bytes(), 16);
  }
}

std::optional<SockAddr> SockAddr::fromSockaddr(const sockaddr* sa, socklen_t len) {
  SockAddr r;
  if (sa->sa_family == AF_INET && len >= sizeof(sockaddr_in)) {
    std::memcpy(&r.ss_, sa, sizeof(sockaddr_in));
    return r;
  }
  if (sa->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    const auto* s6 = reinterpret_cast<const sockaddr_in6*>(sa);
    // Present v4-mapped addresses as plain IPv4 so they compare equal to SDP addresses.
    if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
      auto* s = reinterpret_cast<sockaddr_in*>(&r.ss_);
      s->sin_family = AF_INET;
      s->sin_port = s6->sin6_port;
      std::memcpy(&s->sin_addr, &s6->sin6_addr.s6_addr[12], 4);
      return r;
    }
    std::memcpy(&r.ss_, sa, sizeof(sockaddr_in6));
    return r;
  }
  return std::nullopt;
}

static std::optional<uint16_t> parsePort(std::string_view s) {
  if (s.empty() || s.size() > 5) {
    return std::nullopt;
  }
  uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v > 65535) {
    return std::nullopt;
  }
  return static_cast<uint16_t>(v);
}

std::optional<SockAddr> SockAddr::parse(std::string_view text, std::string_view default_ip) {
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) {
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    if (close + 1 < text.size()) {
      if (text[close + 1] != ':') {
        return std::nullopt;
      }
      port = text.substr(close + 2);
    }
  } else if (auto colon = text.rfind(':'); colon != std::string_view::npos &&
                                           text.find(':') == colon) {
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  } else if (parsePort(text)) {
    host = default_ip;
    port = text;
  } else {
    host = text;
  }
  if (host == "localhost") {
    host = "127.0.0.1";
  }
  auto ip = IpAddr::parse(host);
  if (!ip) {
    return std::nullopt;
  }
  uint16_t p = 0;
  if (!port.empty()) {
    auto pp = parsePort(port);
    if (!pp) {
      return std::nullopt;
    }
    p = *pp;
  }
  return SockAddr(*ip, p);
}

IpAddr SockAddr::ip() const {
  if (ss_.ss_family == AF_INET) {
    return IpAddr::fromRaw(Family::kIpv4, &reinterpret_cast<const sockaddr_in*>(&ss_)->sin_addr);
  }
  if (ss_.ss_family == AF_INET6) {
    return IpAddr::fromRaw(Family::kIpv6,
                           &reinterpret_cast<const sockaddr_in6*>(&ss_)->sin6_addr);
  }
  return {};
}

uint16_t SockAddr::port() const {
  if (ss_.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&ss_)->sin_port);
  }
  if (ss_.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&ss_)->sin6_port);
  }
  return 0;
}

Family SockAddr::family() const {
  return ss_.ss_family == AF_INET    ? Family::kIpv4
         : ss_.ss_family == AF_INET6 ? Family::kIpv6
                                     : Family::kNone;
}

socklen_t SockAddr::len() const {
  return ss_.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

std::string SockAddr::toString() const {
  if (ss_.ss_family == AF_INET6) {
    return "[" + ip().toString() + "]:" + std::to_string(port());
  }
  return ip().toString() + ":" + std::to_string(port());
}

bool SockAddr::operator==(const SockAddr& o) const {
  if (ss_.ss_family != o.ss_.ss_family) {
    return false;
  }
  if (ss_.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss_);
    const auto* b = reinterpret_cast<const sockaddr_in*>(&o.ss_);
    return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
  }
  if (ss_.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss_);
    const auto* b = reinterpret_cast<const sockaddr_in6*>(&o.ss_);
    return a->sin6_port == b->sin6_port &&
           std::memcmp(&a->sin6_addr, &b->sin6_addr, sizeof a->sin6_addr) == 0;
  }
  return true;
}

size_t SockAddr::hash() const { return ip().hash() * 65599 + port(); }

}  // namespace xems
