// RTP sink: recvmmsg on one socket, exact per-stream accounting with a sequence bitmap.
//
// Per stream it counts unique packets received, duplicates (bit already set), reordered packets
// (older than the highest sequence already seen) and packets from an unexpected source address.
// Datagrams that are not our probes, carry an unknown stream index or a sequence beyond the
// prepared range are "foreign"; probes of an earlier trial are "stale". Loss is computed by the
// caller from the generator's per-stream sent counts (exact), or from the highest sequence seen
// when the generator is another process (tail loss then invisible).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "common/net.h"
#include "common/unique_fd.h"

namespace xems::perf {

struct SinkStreamStats {
  uint64_t received = 0;  // unique
  uint64_t duplicates = 0;
  uint64_t reordered = 0;
  uint64_t wrong_source = 0;
  uint32_t highest = 0;
  bool any = false;
  // RFC 3550 6.4.1 interarrival jitter, in ns (J += (|D| - J) / 16 over arrival order), from the
  // probes' send times; transit of the previous packet (arrival - send).
  double jitter_ns = 0;
  int64_t last_transit_ns = 0;
};

struct SinkTotals {
  uint64_t datagrams = 0;
  uint64_t received = 0;
  uint64_t duplicates = 0;
  uint64_t reordered = 0;
  uint64_t wrong_source = 0;
  uint64_t foreign = 0;
  uint64_t stale = 0;
  uint64_t socket_drops = 0;  // SO_RXQ_OVFL: dropped by the sink's own socket buffer
  double latency_p50_us = 0;
  double latency_p99_us = 0;
  double latency_max_us = 0;
  // RFC 3550 jitter at the end of the trial over the streams that received something.
  double jitter_mean_us = 0;
  double jitter_max_us = 0;
  std::string error;
};

// One-way latency histogram of both sinks: 1 us buckets below 1024 us, then 16 sub-buckets per
// power of two (bpf/perf_sink.h keeps the same layout in the XDP sink).
inline constexpr size_t kLatencyBuckets = 1024 + 32 * 16;
size_t latencyBucket(uint64_t us);
double latencyBucketLowerUs(size_t bucket);
// The per-trial figures both sinks derive alike: sums over the streams, jitter mean/max over the
// streams that received two or more, latency p50/p99/max from the histogram.
void summarizeStreams(const std::vector<SinkStreamStats>& streams,
                      const std::vector<uint64_t>& latency_hist, SinkTotals& t);

// What the relay harness needs of a sink: this UDP Sink, or XdpSink (xdp_sink.h) which counts the
// same probes in an XDP program in front of the socket.
class SinkBackend {
 public:
  virtual ~SinkBackend() = default;
  // Resets counters for a new trial. `run_id` 0 accepts the first run id seen. Sequences must be
  // below `max_seq`. `expected_sources` (optional, index = stream) enables the source check.
  virtual void prepare(uint32_t run_id, size_t streams, uint32_t max_seq,
                       std::vector<SockAddr> expected_sources = {}) = 0;
  // Receives until `stop` is set (checked at least every 20 ms). Never throws.
  virtual void run(const std::atomic<bool>& stop) noexcept = 0;
  // CLOCK_MONOTONIC ns of the last datagram, for "quiet" detection by another thread.
  virtual int64_t lastRxNs() const = 0;
  virtual SinkTotals totals() const = 0;
  virtual const std::vector<SinkStreamStats>& streams() const = 0;
};

class Sink : public SinkBackend {
 public:
  explicit Sink(UniqueFd socket);

  void prepare(uint32_t run_id, size_t streams, uint32_t max_seq,
               std::vector<SockAddr> expected_sources = {}) override;
  void run(const std::atomic<bool>& stop) noexcept override;
  int64_t lastRxNs() const override { return last_rx_ns_.load(std::memory_order_relaxed); }

  SinkTotals totals() const override;
  const std::vector<SinkStreamStats>& streams() const override { return streams_; }

 private:
  void runImpl(const std::atomic<bool>& stop);
  void account(const uint8_t* data, size_t len, const SockAddr& from, int64_t now);


  UniqueFd socket_;
  uint32_t run_id_ = 0;
  uint32_t max_seq_ = 0;
  std::vector<SinkStreamStats> streams_;
  std::vector<std::vector<uint64_t>> bitmaps_;
  std::vector<SockAddr> expected_sources_;
  std::vector<uint64_t> latency_hist_;
  SinkTotals totals_;
  uint32_t overflow_seen_ = 0;
  uint32_t overflow_base_ = 0;
  bool overflow_base_set_ = false;
  std::atomic<int64_t> last_rx_ns_{0};
};

}  // namespace xems::perf
