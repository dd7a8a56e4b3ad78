// The selftest's crafted probe sequence (loss, duplicates, reordering, wrong sources, stale and
// foreign datagrams) and the exact counts a sink must report for it. Shared by the UDP sink's
// test over loopback and the XDP sink's test between two network namespaces, which sends it to
// both sinks and also compares them with each other.
#pragma once

#include <sys/socket.h>

#include <string>
#include <vector>

#include <fmt/format.h>

#include "common/net.h"
#include "tools/xems-perf/clock.h"
#include "tools/xems-perf/rtp_packet.h"
#include "tools/xems-perf/rtp_sink.h"

namespace xems::perf {

inline constexpr uint32_t kCraftedRun = 7;
inline constexpr size_t kCraftedStreams = 2;
inline constexpr uint32_t kCraftedMaxSeq = 256;

// Stream 0 comes from the sender, stream 1 is expected from port 9 (all wrong-source).
inline std::vector<SockAddr> craftedExpectedSources(const SockAddr& sender) {
  return {sender, SockAddr(sender.ip(), 9)};
}

// Sends the sequence from `fd` (blocking) packet by packet to every one of `dests`, so sinks
// behind different destinations see the same input in the same order:
//   stream 0: 0..99 without 10, 20, 30 (lost); 5 and 6 twice; 51 before 50 (one reordered);
//   stream 1: 0..9, then 3 again (a duplicate, from the wrong source as well);
//   a probe of run 6 (stale), of stream 5 and of seq 999 (foreign), and 20 bytes of junk.
inline void sendCraftedProbes(int fd, const std::vector<SockAddr>& dests) {
  uint8_t pkt[kPacketSize];
  auto send = [&](uint32_t run, uint32_t stream, uint32_t seq) {
    initProbe(pkt, 1234 + stream);
    writeProbe(pkt, static_cast<uint16_t>(seq), seq * 160,
               ProbeFields{.run_id = run,
                           .stream = stream,
                           .seq = seq,
                           .send_ns = static_cast<uint64_t>(monoNs())});
    for (const SockAddr& d : dests) {
      (void)::sendto(fd, pkt, sizeof pkt, 0, d.sa(), d.len());
    }
  };
  for (uint32_t s = 0; s < 100; ++s) {
    if (s == 10 || s == 20 || s == 30 || s == 50) {
      continue;
    }
    send(kCraftedRun, 0, s);
    if (s == 6) {
      send(kCraftedRun, 0, 5);
      send(kCraftedRun, 0, 6);
    }
    if (s == 51) {
      send(kCraftedRun, 0, 50);
    }
  }
  for (uint32_t s = 0; s < 10; ++s) {
    send(kCraftedRun, 1, s);
  }
  send(kCraftedRun, 1, 3);
  send(kCraftedRun - 1, 0, 1);  // stale run
  send(kCraftedRun, 5, 1);      // unknown stream
  send(kCraftedRun, 0, 999);    // beyond max_seq
  const uint8_t junk[20] = {1, 2, 3};
  for (const SockAddr& d : dests) {
    (void)::sendto(fd, junk, sizeof junk, 0, d.sa(), d.len());
  }
}

struct CraftedCheck {
  bool ok = false;
  std::string what;
};

// The exact counts of sendCraftedProbes() at a sink prepared with kCraftedRun, kCraftedStreams,
// kCraftedMaxSeq and craftedExpectedSources().
inline std::vector<CraftedCheck> checkCraftedCounts(std::string_view label, const SinkTotals& t,
                                                    const std::vector<SinkStreamStats>& s) {
  if (s.size() != kCraftedStreams) {
    return {{false, fmt::format("{}: {} streams", label, s.size())}};
  }
  return {
      {t.datagrams == 96 + 2 + 1 + 11 + 4, fmt::format("{}: datagrams {}", label, t.datagrams)},
      {s[0].received == 97 && s[1].received == 10,
       fmt::format("{}: unique received {} + {}", label, s[0].received, s[1].received)},
      {s[0].duplicates == 2 && s[1].duplicates == 1,
       fmt::format("{}: duplicates {} + {}", label, s[0].duplicates, s[1].duplicates)},
      {t.reordered == 1 && s[0].reordered == 1,
       fmt::format("{}: reordered {}", label, t.reordered)},
      {s[0].highest == 99 && s[1].highest == 9,
       fmt::format("{}: highest {} / {}", label, s[0].highest, s[1].highest)},
      {t.foreign == 3 && t.stale == 1,
       fmt::format("{}: foreign {} stale {}", label, t.foreign, t.stale)},
      {s[0].wrong_source == 0 && s[1].wrong_source == 11,
       fmt::format("{}: wrong source {} / {}", label, s[0].wrong_source, s[1].wrong_source)},
      {t.error.empty(),
       fmt::format("{}: no error{}", label, t.error.empty() ? "" : ": " + t.error)},
  };
}

}  // namespace xems::perf
