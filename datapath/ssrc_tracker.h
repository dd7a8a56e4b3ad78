// Per-SSRC receive statistics of one flow, RFC 3550 appendix A.1 sequence tracking.
//
// Live state is worker-local (no atomics, no lock); the worker copies a snapshot into
// FlowCounters::ssrc under its mutex only when the table changes shape or every
// kPublishInterval packets, so the packet path normally takes no lock.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "datapath/forwarding_table.h"
#include "datapath/rtp.h"

namespace xems::datapath {

class SsrcTracker {
 public:
  static constexpr uint32_t kPublishInterval = 64;
  // RFC 3550 A.1 constants.
  static constexpr uint32_t kMaxDropout = 3000;
  static constexpr uint32_t kMaxMisorder = 100;
  static constexpr uint32_t kSeqMod = 1u << 16;

  /// Accounts one RTP packet of `bytes` UDP payload bytes.
  /// @return true if the caller should publish a snapshot now (new SSRC, or the publish interval
  ///         elapsed).
  bool update(const rtp::RtpHeader& h, size_t bytes);

  /// Copies the current statistics into `out` (the FlowCounters fields, caller holds the mutex).
  void snapshot(std::array<SsrcStats, kMaxSsrcPerFlow>& out, size_t& count) const;

  size_t size() const { return count_; }

 private:
  struct Entry {
    uint32_t ssrc = 0;
    uint64_t packets = 0;
    uint64_t bytes = 0;
    uint32_t cycles = 0;    // sequence number wraps, shifted left by 16
    uint32_t base_seq = 0;  // extended
    uint32_t bad_seq = kSeqMod + 1;
    uint32_t last_timestamp = 0;
    uint16_t max_seq = 0;
    uint8_t payload_type = 0;
  };
  static void initSeq(Entry& e, uint16_t seq);

  std::array<Entry, kMaxSsrcPerFlow> entries_{};
  size_t count_ = 0;
  uint32_t since_publish_ = 0;
};

}  // namespace xems::datapath
