// RTP/RTCP header classification for the media path (RFC 3550, RFC 5761).
//
// Everything here is constexpr, allocation-free and bounds-checked against the span it is given:
// these functions run on every received packet and must hold up against any input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace xems::datapath::rtp {

using Bytes = std::span<const std::byte>;

inline constexpr size_t kRtpFixedHeaderSize = 12;  // RFC 3550 5.1
inline constexpr size_t kRtcpHeaderSize = 8;       // RFC 3550 6.4.1 (header + sender SSRC)
inline constexpr uint8_t kVersion = 2;

/// What a datagram looks like on a media socket.
enum class PacketKind : uint8_t {
  kRtp,    ///< RTP version 2 with a complete fixed header
  kRtcp,   ///< RTP version 2, second byte 192..223 (RFC 5761 section 4), at least 8 bytes
  kOther,  ///< anything else (too short, wrong version; STUN and DTLS land here too)
};

/// The fixed RTP header fields the datapath looks at.
struct RtpHeader {
  uint32_t ssrc = 0;
  uint32_t timestamp = 0;
  uint16_t seq = 0;
  uint8_t payload_type = 0;
  bool marker = false;
  size_t header_size = 0;  ///< fixed header + CSRCs + extension: offset of the payload
  size_t padding = 0;      ///< padding octets at the end (P bit)
};

namespace detail {
constexpr uint8_t u8(Bytes b, size_t i) { return std::to_integer<uint8_t>(b[i]); }
constexpr uint16_t be16(Bytes b, size_t i) {
  return static_cast<uint16_t>((u8(b, i) << 8) | u8(b, i + 1));
}
constexpr uint32_t be32(Bytes b, size_t i) {
  return (static_cast<uint32_t>(be16(b, i)) << 16) | be16(b, i + 2);
}
}  // namespace detail

/// Version field (top two bits of the first byte) is 2. Does not check the length.
constexpr bool hasVersion2(Bytes b) { return !b.empty() && (detail::u8(b, 0) >> 6) == kVersion; }

/// RFC 5761 section 4: a second byte in 192..223 means RTCP (packet types SR=200 ... ) when RTP
/// and RTCP share a port; RTP payload types 64..95 (which would collide with the marker bit set)
/// must not be used on a muxed port.
constexpr bool isRtcpPacketType(uint8_t second_byte) {
  return second_byte >= 192 && second_byte <= 223;
}

/// Classifies a datagram for rtcp-mux demultiplexing and RTP accounting.
constexpr PacketKind classify(Bytes b) {
  if (b.size() < kRtcpHeaderSize || !hasVersion2(b)) {
    return PacketKind::kOther;
  }
  if (isRtcpPacketType(detail::u8(b, 1))) {
    return PacketKind::kRtcp;
  }
  return b.size() >= kRtpFixedHeaderSize ? PacketKind::kRtp : PacketKind::kOther;
}

/// True if the datagram is a plausible RTCP compound packet start: version 2, RTCP packet type,
/// at least the 8-byte header, and a first-packet length field that fits the datagram.
constexpr bool isValidRtcp(Bytes b) {
  if (classify(b) != PacketKind::kRtcp) {
    return false;
  }
  const size_t first_len = (static_cast<size_t>(detail::be16(b, 2)) + 1) * 4;
  return first_len <= b.size();
}

/// Parses the RTP header with full bounds checks (CSRC list, header extension, padding).
/// @return the header, or nullopt if `b` is not a well-formed RTP packet (or is RTCP).
constexpr std::optional<RtpHeader> parseRtp(Bytes b) {
  if (classify(b) != PacketKind::kRtp) {
    return std::nullopt;
  }
  const uint8_t b0 = detail::u8(b, 0);
  const uint8_t b1 = detail::u8(b, 1);
  RtpHeader h;
  h.marker = (b1 & 0x80) != 0;
  h.payload_type = b1 & 0x7f;
  h.seq = detail::be16(b, 2);
  h.timestamp = detail::be32(b, 4);
  h.ssrc = detail::be32(b, 8);
  size_t off = kRtpFixedHeaderSize + 4 * static_cast<size_t>(b0 & 0x0f);  // CSRC count
  if (off > b.size()) {
    return std::nullopt;
  }
  if ((b0 & 0x10) != 0) {  // X: 4-byte extension header + length in 32-bit words
    if (off + 4 > b.size()) {
      return std::nullopt;
    }
    off += 4 + 4 * static_cast<size_t>(detail::be16(b, off + 2));
    if (off > b.size()) {
      return std::nullopt;
    }
  }
  h.header_size = off;
  if ((b0 & 0x20) != 0) {  // P: the last octet counts the padding, itself included
    const size_t pad = detail::u8(b, b.size() - 1);
    if (pad == 0 || pad > b.size() - off) {
      return std::nullopt;
    }
    h.padding = pad;
  }
  return h;
}

}  // namespace xems::datapath::rtp
