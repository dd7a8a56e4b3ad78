// The probe packet: a real RTP header (PCMU, 20 ms) and a 160-byte payload that identifies the
// packet exactly, so the sink can count loss, duplicates and reordering per stream.
//
//   RTP: V=2 PT=0, seq (16 bit, per stream), timestamp (+160 per packet), SSRC (per stream)
//   payload (all fields big-endian):
//     0  magic   "XPRF"
//     4  run id  (a trial number; packets of an earlier trial count as stale)
//     8  stream index
//    12  extended sequence number within the run, from 0
//    16  send time, CLOCK_MONOTONIC ns
//    24  0xff filler (mu-law silence) up to the payload size (160 bytes by default)
#pragma once

#include <cstdint>
#include <cstring>

namespace xems::perf {

inline constexpr size_t kRtpHeaderSize = 12;
inline constexpr size_t kPayloadSize = 160;  // the default: G.711, 20 ms
inline constexpr size_t kPacketSize = kRtpHeaderSize + kPayloadSize;
// Settable payload sizes (xems-perf --payload-bytes): room for the probe fields, and a packet
// that fits a 1500-byte MTU with IPv6.
inline constexpr size_t kMinPayloadSize = 24;
inline constexpr size_t kMaxPayloadSize = 1400;
inline constexpr size_t kMaxPacketSize = kRtpHeaderSize + kMaxPayloadSize;
inline constexpr uint32_t kProbeMagic = 0x58505246;  // "XPRF"

inline void putBe16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline void putBe32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}
inline void putBe64(uint8_t* p, uint64_t v) {
  putBe32(p, static_cast<uint32_t>(v >> 32));
  putBe32(p + 4, static_cast<uint32_t>(v));
}
inline uint32_t getBe32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | p[3];
}
inline uint64_t getBe64(const uint8_t* p) {
  return (static_cast<uint64_t>(getBe32(p)) << 32) | getBe32(p + 4);
}

struct ProbeFields {
  uint32_t run_id = 0;
  uint32_t stream = 0;
  uint32_t seq = 0;
  uint64_t send_ns = 0;
};

// Fills the constant parts once; writeProbe() then touches only the changing fields.
inline void initProbe(uint8_t* pkt, uint32_t ssrc, size_t payload = kPayloadSize) {
  std::memset(pkt, 0xff, kRtpHeaderSize + payload);
  pkt[0] = 0x80;  // V=2
  pkt[1] = 0x00;  // PT 0 (PCMU)
  putBe32(pkt + 8, ssrc);
  putBe32(pkt + kRtpHeaderSize, kProbeMagic);
}

inline void writeProbe(uint8_t* pkt, uint16_t rtp_seq, uint32_t rtp_ts, const ProbeFields& f) {
  putBe16(pkt + 2, rtp_seq);
  putBe32(pkt + 4, rtp_ts);
  uint8_t* pl = pkt + kRtpHeaderSize;
  putBe32(pl + 4, f.run_id);
  putBe32(pl + 8, f.stream);
  putBe32(pl + 12, f.seq);
  putBe64(pl + 16, f.send_ns);
}

// False if the datagram is not one of our probes (too short, not RTP v2, wrong magic).
inline bool readProbe(const uint8_t* pkt, size_t len, ProbeFields& f) {
  if (len < kRtpHeaderSize + 24 || (pkt[0] & 0xc0) != 0x80) {
    return false;
  }
  // Skip CSRCs and a header extension if a relay added them.
  size_t off = kRtpHeaderSize + 4u * (pkt[0] & 0x0f);
  if ((pkt[0] & 0x10) != 0) {
    if (len < off + 4) {
      return false;
    }
    off += 4 + 4u * ((static_cast<size_t>(pkt[off + 2]) << 8) | pkt[off + 3]);
  }
  if (len < off + 24) {
    return false;
  }
  const uint8_t* pl = pkt + off;
  if (getBe32(pl) != kProbeMagic) {
    return false;
  }
  f.run_id = getBe32(pl + 4);
  f.stream = getBe32(pl + 8);
  f.seq = getBe32(pl + 12);
  f.send_ns = getBe64(pl + 16);
  return true;
}

}  // namespace xems::perf
