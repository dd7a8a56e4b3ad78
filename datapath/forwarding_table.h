// The seam between the session layer and whatever moves packets.
//
// A *flow* is one local UDP socket we own (one RTP or RTCP component of one participant's media,
// rtpengine's packet_stream). Packets arriving on a flow's socket are checked against the flow's
// source policy and then sent *from the sink flow's socket to the sink flow's peer endpoint*: for
// a call A<->B, what A sends to the A-facing socket leaves through the B-facing socket towards B.
//
// The userspace implementation (io_uring workers, datapath/uring_engine.h) is the first behind this
// interface; the XDP implementation will wrap it, programming BPF maps for flows it can offload and
// leaving the rest (and every packet XDP passes up) to the workers.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/config.h"
#include "common/net.h"
#include "common/result.h"
#include "common/unique_fd.h"

namespace xems::datapath {

using FlowId = uint64_t;  // unique for the daemon's lifetime, never reused
using Clock = std::chrono::steady_clock;

inline constexpr size_t kMaxSsrcPerFlow = 4;  // further SSRCs are counted in the flow totals only

// Per-SSRC receive statistics, RFC 3550 style (A.3 for loss from extended sequence numbers).
struct SsrcStats {
  uint32_t ssrc = 0;
  uint64_t packets = 0;
  uint64_t bytes = 0;
  uint32_t base_seq = 0;        // first extended sequence number seen
  uint32_t highest_seq = 0;     // highest extended sequence number seen
  uint32_t last_timestamp = 0;  // RTP timestamp of the last packet
  uint8_t payload_type = 0;
  int64_t lost() const {        // expected - received (may be negative with duplicates)
    return static_cast<int64_t>(highest_seq - base_seq + 1) - static_cast<int64_t>(packets);
  }
};

// Counters of one flow: written by exactly one worker thread, read by the control thread.
// Totals are relaxed atomics (single writer, so plain load+store); the rarely written parts
// (learned endpoint, SSRC table) sit behind a mutex the worker takes only when they change
// (latching, first packet of a new SSRC, at most every 64th packet for the SSRC snapshot).
struct FlowCounters {
  std::atomic<uint64_t> packets{0};        // received and accepted (forwarded or not)
  std::atomic<uint64_t> bytes{0};          // UDP payload bytes of those
  std::atomic<uint64_t> errors{0};         // send failures, packets with no destination
  std::atomic<uint64_t> forwarded{0};      // sent on to the sink
  std::atomic<uint64_t> dropped_source{0}; // from a foreign source (strict source / latched)
  std::atomic<uint64_t> dropped_no_sink{0};// no sink flow or sink has no peer address yet
  std::atomic<uint64_t> malformed{0};      // not RTP/RTCP where RTP was expected (still forwarded)
  std::atomic<int64_t> last_packet_ns{0};  // Clock (steady) time of last accepted packet, 0 = never

  // Packets a kernel fast path (XDP) handled without the worker ever seeing them. Written only by
  // the control thread (the offloading table refreshes them from the BPF per-flow statistics);
  // they add to the worker's counters above without overlap.
  std::atomic<uint64_t> kernel_packets{0};       // forwarded in the kernel
  std::atomic<uint64_t> kernel_bytes{0};         // UDP payload bytes of those
  std::atomic<uint64_t> kernel_dropped_source{0};// dropped in the kernel: foreign source, strict
  std::atomic<int64_t> kernel_last_ns{0};        // Clock time of the newest, 0 = never
  std::atomic<bool> kernelized{false};           // the flow is programmed into the kernel now

  mutable std::mutex mu;                   // guards the members below
  std::optional<SockAddr> learned;         // latched peer endpoint (source of accepted packets)
  std::array<SsrcStats, kMaxSsrcPerFlow> ssrc{};
  size_t ssrc_count = 0;
  // Written by the offloading table: the source the kernel forwards in its learning mode, and
  // where to see whether it did (EngineOptions::latch_veto reads these on a worker thread).
  std::optional<SockAddr> kernel_learning;
  uint32_t kernel_stats_slot = 0;
  uint64_t kernel_learn_base = 0;
  uint32_t kernel_learn_version = 0;  // the entry version that must have forwarded them
};

// How a flow treats the source address of arriving packets.
struct SourcePolicy {
  EndpointLearning learning = EndpointLearning::kDelayed;
  // Drop (and count) packets from any source but the expected/latched one once it is known.
  bool strict = true;
  // The address the peer told us in SDP (may be unset, e.g. 0.0.0.0 on hold). Until a source has
  // latched, the sink side sends to this address.
  std::optional<SockAddr> advertised;
  // For kDelayed/kHeuristic: sources may re-latch until this time (rtpengine: 3 s after the last
  // signalling event), then the endpoint is locked.
  Clock::time_point learn_until{};
  // Start latched and locked to this endpoint, whatever `learning` says: a source confirmed
  // outside the worker (packets the kernel forwarded from it; a latch restored after a restart).
  // Applied on every add/update that carries it.
  std::optional<SockAddr> latched;
};

struct FlowSpec {
  FlowId id = 0;
  // Worker that owns the flow; all flows of a call go to the same worker so packets of a stream
  // are handled in order and sink lookups stay thread-local. Chosen by the session layer
  // (e.g. hash of the call-id modulo the worker count).
  uint32_t worker = 0;
  SockAddr local;            // the address the socket is bound to (for stats and XDP keys)
  bool rtcp = false;         // this socket carries RTCP only
  // Where accepted packets go. rtp_sink receives RTP (and everything on a non-mux socket);
  // rtcp_sink receives RTCP arriving on an rtcp-mux'd RTP socket (== rtp_sink when the other
  // side muxes too). 0 = nowhere (counted in dropped_no_sink).
  FlowId rtp_sink = 0;
  FlowId rtcp_sink = 0;
  bool mux = false;          // RTP socket carrying RTCP too: classify each packet (RFC 5761)
  bool send_enabled = true;  // false: accept and count but do not forward (inactive/hold)
  // Plain pass-through media (no re-keying, transcoding, recording, playback, DTMF work): a table
  // with a kernel fast path may forward it there. The session layer clears it for payload work.
  bool offload = true;
  SourcePolicy source;
  std::shared_ptr<FlowCounters> counters;
};

// How packets are moved, for `statistics` and xemsctl: which path is in use and its counters.
struct DatapathInfo {
  std::string mode = "userspace";  // "xdp" when a kernel fast path forwards plain streams
  std::string detail;              // interfaces and attach modes, or why there is no offload
  uint64_t offload_fallback = 0;   // 1 when offload=auto fell back to userspace
  std::vector<std::pair<std::string, uint64_t>> counters;  // e.g. XDP packets per pass-up reason
};

class ForwardingTable {
 public:
  virtual ~ForwardingTable() = default;

  // Adds a flow, taking ownership of its bound UDP socket. The socket is closed when the flow is
  // removed (after any in-flight receive has been cancelled, so its port is really free then).
  virtual Status add(FlowSpec spec, UniqueFd socket) = 0;
  // Updates an existing flow in place (re-INVITE, answer arriving, hold): sinks, policy,
  // send_enabled. The socket and counters stay. Resets latching only if `relearn` is set.
  virtual Status update(const FlowSpec& spec, bool relearn) = 0;
  // Removes flows; their sockets are closed asynchronously by the owning worker.
  virtual void remove(FlowId id) = 0;
  // Blocks until every command issued so far has been applied by the workers (tests, shutdown).
  virtual void sync() = 0;
  virtual uint32_t workerCount() const = 0;
  // Makes one flow's FlowCounters exact now where the table keeps counters outside the workers
  // (kernel counters); cheap, for query/delete of one call. sync() is still needed for the
  // workers' per-SSRC snapshot.
  virtual void refreshCounters(FlowId) {}
  // Refreshes what the table keeps outside the workers (kernel counters, kernel-side latching)
  // into the FlowCounters; the session layer calls it before reading counters for timeouts
  // (about once a second).
  virtual void poll() {}
};

}  // namespace xems::datapath
