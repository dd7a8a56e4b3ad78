// Paced RTP generator: K streams at a target total packet rate, sendmmsg bursts on a fixed tick,
// one sending thread per socket. It reports what it really offered, not what was asked for.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/net.h"
#include "common/result.h"
#include "common/unique_fd.h"
#include "tools/xems-perf/packet_tx.h"

namespace xems::perf {

// How the sender threads put packets on the wire. kUdp: sendmmsg on the streams' UDP sockets.
// kPacket: whole Ethernet frames through one AF_PACKET socket per thread (packet_tx.h), which
// skips the sender's UDP/IP stack and qdisc and so offers higher rates from the same cores.
enum class GenMode : uint8_t { kUdp, kPacket };
std::string_view genModeName(GenMode mode);
std::optional<GenMode> parseGenMode(std::string_view text);

struct GenRunConfig {
  double pps = 1000;         // total over all streams
  double seconds = 3;
  uint32_t run_id = 1;
  int64_t tick_ns = 1'000'000;  // pacing tick
  int batch = 64;               // packets per sendmmsg
  int burst_ticks = 4;  // catch-up cap: at most this many ticks' worth of packets per tick
  std::vector<int> cpus;  // optional: pin sender thread i to cpus[i % size]
};

struct GenResult {
  uint64_t sent = 0;
  uint64_t wanted = 0;       // packets the schedule asked for
  uint64_t would_block = 0;  // sendmmsg stopped by EAGAIN/ENOBUFS (retried next tick)
  uint64_t send_errors = 0;  // other errno; first one in `error`
  uint64_t late_ticks = 0;   // ticks where the thread woke after the next tick was due
  double seconds = 0;        // scheduled duration
  double offered_pps = 0;    // sent / seconds
  std::string error;
};

class Generator {
 public:
  // Stream i is sent from sockets[i % sockets.size()] to dests[i]; SSRCs derive from `seed`.
  Generator(std::vector<UniqueFd> sockets, std::vector<SockAddr> dests, uint32_t seed);

  size_t streams() const { return streams_.size(); }
  // RTP payload bytes per packet (kMinPayloadSize..kMaxPayloadSize; default 160) and the RTP
  // timestamp step per packet (8 kHz x ptime: 160 for 20 ms). Call before usePacketMode() and
  // setDestinations(): they build the packet mode's frame templates for this size.
  void setShape(size_t payload, uint32_t ts_step);
  // Switches to GenMode::kPacket: opens one AF_PACKET socket per UDP socket in `netns` (where the
  // UDP sockets were created; empty = ours) and resolves the current destinations. The UDP
  // sockets stay open: their addresses are the frames' source. Needs CAP_NET_RAW, and
  // CAP_NET_ADMIN when a next hop's MAC is not known yet.
  Status usePacketMode(std::string_view netns);
  // New destinations (same count), e.g. for a fresh set of calls; SSRC and RTP sequence of each
  // stream restart as for a new call. In packet mode this also resolves each destination's route
  // and next-hop MAC (waiting at most kResolveWaitMs in all); an error leaves the generator
  // without destinations. Never fails in UDP mode.
  Status setDestinations(const std::vector<SockAddr>& dests, uint32_t seed);
  static constexpr int kResolveWaitMs = 1000;
  // Runs one trial; blocks until every sender thread is done (bounded by cfg.seconds).
  GenResult run(const GenRunConfig& cfg);
  // Packets each stream sent in the last run (index = stream).
  std::vector<uint64_t> sentPerStream() const;

 private:
  struct Stream {
    SockAddr dest;
    uint32_t ssrc = 0;
    uint16_t rtp_seq = 0;  // continues across runs, like a real call
    uint32_t rtp_ts = 0;
    uint32_t run_seq = 0;  // restarts at 0 every run
  };
  struct ThreadResult {
    uint64_t sent = 0;
    uint64_t wanted = 0;
    uint64_t would_block = 0;
    uint64_t send_errors = 0;
    uint64_t late_ticks = 0;
    std::string error;
  };

  void senderLoop(size_t thread, const GenRunConfig& cfg, int64_t start_ns,
                  ThreadResult& out) noexcept;
  void senderLoopImpl(size_t thread, const GenRunConfig& cfg, int64_t start_ns,
                      ThreadResult& out);
  // Packet mode: frame templates of all streams, and each packet socket bound to the device of
  // its thread's streams.
  Status preparePackets();

  std::vector<UniqueFd> sockets_;
  std::vector<Stream> streams_;
  GenMode mode_ = GenMode::kUdp;
  std::string netns_;
  std::vector<SockAddr> locals_;          // packet mode: each UDP socket's bound address
  std::vector<UniqueFd> packet_sockets_;  // packet mode: one per UDP socket (thread)
  std::vector<int> packet_ifindex_;       // the device each one is bound to (0: none yet)
  std::vector<FrameTemplate> frames_;     // packet mode: per stream
  size_t payload_ = kPayloadSize;
  uint32_t ts_step_ = 160;
};

}  // namespace xems::perf
