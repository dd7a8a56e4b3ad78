// Checksums for the BPF tests, computed from scratch (RFC 1071): every 16-bit big-endian word of
// the header or pseudo-header + segment, summed with end-around carry, complemented. Deliberately
// the simplest possible code and unrelated to the program's incremental update (RFC 1624), so
// the two are independent witnesses of each other.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "common/net.h"

namespace xems::bpftest {

inline uint32_t onesSum(std::span<const uint8_t> b, uint32_t sum = 0) {
  size_t i = 0;
  for (; i + 1 < b.size(); i += 2) {
    sum += static_cast<uint32_t>(b[i] << 8 | b[i + 1]);
  }
  if (i < b.size()) {
    sum += static_cast<uint32_t>(b[i] << 8);  // odd length: pad with a zero byte
  }
  return sum;
}

inline uint16_t foldSum(uint32_t sum) {
  while (sum >> 16) {
    sum = (sum & 0xffff) + (sum >> 16);
  }
  return static_cast<uint16_t>(sum);
}

/// IPv4 header checksum (host order) of `hdr` with its checksum field (bytes 10-11) taken as 0.
inline uint16_t ipv4HeaderChecksum(std::span<const uint8_t> hdr) {
  uint32_t sum = onesSum(hdr.first(10));
  sum = onesSum(hdr.subspan(12), sum);
  return static_cast<uint16_t>(~foldSum(sum));
}

/// UDP checksum (host order) of `segment` (header + payload, checksum field taken as 0) with the
/// IPv4 or IPv6 pseudo-header. A computed 0 is returned as 0xffff (RFC 768).
inline uint16_t udpChecksum(const IpAddr& src, const IpAddr& dst, std::span<const uint8_t> seg) {
  const size_t alen = src.isV4() ? 4 : 16;
  uint32_t sum = onesSum({src.bytes(), alen});
  sum = onesSum({dst.bytes(), alen}, sum);
  sum += 17;                                 // protocol
  sum += static_cast<uint32_t>(seg.size());  // UDP length (< 65536 here)
  sum = onesSum(seg.first(6), sum);
  sum = onesSum(seg.subspan(8), sum);
  const auto c = static_cast<uint16_t>(~foldSum(sum));
  return c == 0 ? 0xffff : c;
}

}  // namespace xems::bpftest
