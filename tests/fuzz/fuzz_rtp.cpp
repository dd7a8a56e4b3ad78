// fuzz-libs: xems_datapath
// RTP/RTCP classification, header parsing and per-SSRC accounting on arbitrary datagrams: no
// out-of-bounds read, and parse results consistent with the input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "datapath/rtp.h"
#include "datapath/ssrc_tracker.h"

using namespace xems::datapath;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static SsrcTracker tracker;  // across inputs too: sequences of packets, SSRC churn
  const rtp::Bytes pkt(reinterpret_cast<const std::byte*>(data), size);
  const rtp::PacketKind kind = rtp::classify(pkt);
  auto h = rtp::parseRtp(pkt);
  if (h) {
    if (kind != rtp::PacketKind::kRtp) {
      std::abort();  // parseRtp accepted what classify did not call RTP
    }
    if (h->header_size + h->padding > size) {
      std::abort();
    }
    tracker.update(*h, size);
  }
  (void)rtp::isValidRtcp(pkt);
  std::array<xems::datapath::SsrcStats, kMaxSsrcPerFlow> snap{};
  size_t n = 0;
  tracker.snapshot(snap, n);
  if (n > kMaxSsrcPerFlow) {
    std::abort();
  }
  return 0;
}
