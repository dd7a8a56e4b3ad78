#include "ctrl/session/port_allocator.h"

#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

namespace xems::session {

Result<UniqueFd> bindUdp(const SockAddr& addr, int rcvbuf) {
  int domain = addr.family() == Family::kIpv6 ? AF_INET6 : AF_INET;
  UniqueFd fd(::socket(domain, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) {
    return XEMS_ERRNO(errno, fmt::format("socket: {}", std::strerror(errno)));
  }
  if (domain == AF_INET6) {
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  }
  if (rcvbuf != 0 &&
      ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) != 0) {
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  }
  if (::bind(fd.get(), addr.sa(), addr.len()) != 0) {
    int e = errno;
    return XEMS_ERRNO(e, fmt::format("bind {}: {}", addr.toString(), std::strerror(e)));
  }
  return fd;
}

PortAllocator::PortAllocator(uint16_t port_min, uint16_t port_max, uint64_t seed) : rng_(seed) {
  setRange(port_min, port_max);
}

void PortAllocator::setRange(uint16_t port_min, uint16_t port_max) {
  first_even_ = static_cast<uint16_t>(port_min + (port_min & 1));
  // A pair needs first_even_ + 2k + 1 <= port_max.
  pair_count_ = port_max > first_even_ ? (static_cast<size_t>(port_max) - first_even_ + 1) / 2 : 0;
  for (auto& [ip, used] : used_) {
    used.resize(pair_count_, false);
  }
}

std::vector<bool>& PortAllocator::usedFor(const IpAddr& ip) {
  auto& v = used_[ip];
  if (v.size() != pair_count_) {
    v.resize(pair_count_, false);
  }
  return v;
}

Result<BoundPair> PortAllocator::allocate(const IpAddr& ip) {
  auto& used = usedFor(ip);
  if (pair_count_ == 0) {
    return XEMS_ERROR(std::make_error_code(std::errc::address_in_use), "Ran out of ports");
  }
  size_t start = std::uniform_int_distribution<size_t>(0, pair_count_ - 1)(rng_);
  for (size_t n = 0; n < pair_count_; ++n) {
    size_t idx = (start + n) % pair_count_;
    if (used[idx]) {
      continue;
    }
    auto port = static_cast<uint16_t>(first_even_ + 2 * idx);
    auto rtp = bindUdp(SockAddr(ip, port), kMediaRcvBuf);
    if (!rtp) {
      if (rtp.error().code.value() == EADDRINUSE) {
        continue;
      }
      return std::move(rtp).error();  // EADDRNOTAVAIL etc.: the address itself is unusable
    }
    auto rtcp = bindUdp(SockAddr(ip, static_cast<uint16_t>(port + 1)), kMediaRcvBuf);
    if (!rtcp) {
      continue;
    }
    used[idx] = true;
    return BoundPair{std::move(*rtp), std::move(*rtcp), port};
  }
  return XEMS_ERROR(std::make_error_code(std::errc::address_in_use), "Ran out of ports");
}

Result<BoundPair> PortAllocator::claim(const IpAddr& ip, uint16_t rtp_port) {
  auto& used = usedFor(ip);
  if (rtp_port < first_even_ || (rtp_port & 1) != 0 ||
      static_cast<size_t>(rtp_port - first_even_) / 2 >= pair_count_) {
    return XEMS_INVALID(fmt::format("port {} is not an RTP port of the range", rtp_port));
  }
  const size_t idx = static_cast<size_t>(rtp_port - first_even_) / 2;
  if (used[idx]) {
    return XEMS_ERROR(std::make_error_code(std::errc::address_in_use),
                      fmt::format("port {} on {} is already in use", rtp_port, ip.toString()));
  }
  auto rtp = bindUdp(SockAddr(ip, rtp_port), kMediaRcvBuf);
  if (!rtp) {
    return std::move(rtp).error();
  }
  auto rtcp = bindUdp(SockAddr(ip, static_cast<uint16_t>(rtp_port + 1)), kMediaRcvBuf);
  if (!rtcp) {
    return std::move(rtcp).error();
  }
  used[idx] = true;
  return BoundPair{std::move(*rtp), std::move(*rtcp), rtp_port};
}

void PortAllocator::release(const IpAddr& ip, uint16_t rtp_port) {
  auto it = used_.find(ip);
  if (it == used_.end() || rtp_port < first_even_) {
    return;
  }
  size_t idx = (rtp_port - first_even_) / 2;
  if (idx < it->second.size()) {
    it->second[idx] = false;
  }
}

bool PortAllocator::isAllocated(const IpAddr& ip, uint16_t port) const {
  auto it = used_.find(ip);
  if (it == used_.end() || port < first_even_) {
    return false;
  }
  size_t idx = (port - first_even_) / 2;
  return idx < it->second.size() && it->second[idx];
}

size_t PortAllocator::pairsInUse() const {
  size_t n = 0;
  for (const auto& [ip, used] : used_) {
    for (bool b : used) {
      n += b ? 1 : 0;
    }
  }
  return n;
}

}  // namespace xems::session
