// XDP counting sink (`--sink-mode xdp`): the same accounting as Sink, done by an XDP program
// (bpf/perf_sink.bpf.c) on the device in front of the sink socket, for receive rates a UDP socket
// cannot take. Probes to the socket's address:port are counted and dropped in the driver; the
// socket stays bound (its port is in the SDP) and only sees what the program passed up
// (fragments, IPv6 extension headers), which counts as foreign.
//
// Each prepare() loads a fresh program with maps sized for the trial (streams x ceil(max_seq/64)
// bitmap words) and swaps it into the XDP link atomically (bpf_link_update), so the counters start
// at zero. run() polls the datagram counter every 10 ms for lastRxNs() and reads every map once
// `stop` is set: totals() and streams() describe the trial after run() returned.
//
// Latency is taken in the driver (bpf_ktime_get_ns(), CLOCK_MONOTONIC like the sender's
// timestamps), so it is lower than the UDP sink's, which includes the socket and recvmmsg.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/net.h"
#include "common/result.h"
#include "common/unique_fd.h"
#include "tools/xems-perf/rtp_sink.h"

struct perf_sink;  // bpftool skeleton (perf_sink.skel.h)

namespace xems::perf {

enum class SinkMode { kUdp, kXdp };
std::optional<SinkMode> parseSinkMode(std::string_view text);  // "udp" or "xdp"
std::string_view sinkModeName(SinkMode mode);

struct XdpSinkOptions {
  std::string netns;   // namespace of the device (and of the socket); empty: ours
  std::string device;  // empty: the device that owns the socket's address
};

class XdpSink : public SinkBackend {
 public:
  // Attaches a first program to the device (native mode; generic with a warning on stderr).
  static Result<std::unique_ptr<XdpSink>> create(UniqueFd socket, const XdpSinkOptions& options);
  ~XdpSink() override;
  XdpSink(const XdpSink&) = delete;
  XdpSink& operator=(const XdpSink&) = delete;

  void prepare(uint32_t run_id, size_t streams, uint32_t max_seq,
               std::vector<SockAddr> expected_sources = {}) override;
  void run(const std::atomic<bool>& stop) noexcept override;
  int64_t lastRxNs() const override { return last_rx_ns_.load(std::memory_order_relaxed); }
  SinkTotals totals() const override;
  const std::vector<SinkStreamStats>& streams() const override { return streams_; }

  const std::string& device() const { return device_; }
  bool native() const { return native_; }

 private:
  struct SkelDeleter {
    void operator()(perf_sink* s) const;
  };
  using SkelPtr = std::unique_ptr<perf_sink, SkelDeleter>;

  XdpSink(UniqueFd socket, SockAddr local);
  Result<SkelPtr> load(uint32_t run_id, size_t streams, uint32_t max_seq,
                       const std::vector<SockAddr>& expected_sources) const;
  void runImpl(const std::atomic<bool>& stop);
  Result<uint64_t> datagramCount() const;
  Status snapshot();

  UniqueFd socket_;
  SockAddr local_;
  bool dual_stack_ = false;  // IPv6 wildcard socket without IPV6_V6ONLY
  std::string device_;
  bool native_ = false;
  SkelPtr skel_;
  UniqueFd link_;
  size_t ncpus_ = 1;
  std::string error_;  // of prepare(); the trial is void
  uint64_t socket_datagrams_ = 0;
  std::vector<SinkStreamStats> streams_;
  std::vector<uint64_t> latency_hist_;
  uint64_t datagrams_ = 0;
  uint64_t foreign_ = 0;
  uint64_t stale_ = 0;
  std::atomic<int64_t> last_rx_ns_{0};
};

// A Sink on `socket`, or an XdpSink in front of it (`options` apply to that one only).
Result<std::unique_ptr<SinkBackend>> makeSink(SinkMode mode, UniqueFd socket,
                                              const XdpSinkOptions& options);

}  // namespace xems::perf
