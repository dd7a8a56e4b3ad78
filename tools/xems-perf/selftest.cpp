// `xems-perf selftest`: checks the harness itself without a relay (bencode, SDP, the sink's exact
// accounting with crafted loss/duplicates/reordering, and generator -> sink over loopback), so a
// relay result is never blamed on a broken counter. Needs no privileges, except for the XDP
// sink's part (xdp_selftest.cpp: two network namespaces) and the generator's packet mode
// (packet_selftest.cpp: three), which are skipped without root.
#include <sys/socket.h>
#include <time.h>

#include <atomic>
#include <optional>
#include <thread>

#include <fmt/format.h>

#include "tools/xems-perf/bencode.h"
#include "tools/xems-perf/clock.h"
#include "tools/xems-perf/commands.h"
#include "tools/xems-perf/crafted_probes.h"
#include "tools/xems-perf/netns.h"
#include "tools/xems-perf/packet_selftest.h"
#include "tools/xems-perf/rtp_gen.h"
#include "tools/xems-perf/rtp_packet.h"
#include "tools/xems-perf/rtp_sink.h"
#include "tools/xems-perf/sdp.h"
#include "tools/xems-perf/xdp_selftest.h"

namespace xems::perf {

namespace {

int g_failures = 0;

void check(bool ok, std::string_view what) {
  fmt::print("  [{}] {}\n", ok ? "ok" : "FAIL", what);
  if (!ok) {
    ++g_failures;
  }
}

void waitQuiet(const Sink& sink, int64_t since) {
  for (int i = 0; i < 300; ++i) {
    const int64_t now = monoNs();
    if (now - std::max(sink.lastRxNs(), since) >= 100 * kNsPerMs) {
      return;
    }
    timespec ts{0, 5 * kNsPerMs};
    ::nanosleep(&ts, nullptr);
  }
}

void testBencode() {
  std::string out;
  BencodeWriter w(out);
  w.beginDict().kv("result", "ok").str("list").beginList().integer(-5).str("a:b").end().end();
  check(out == "d6:result2:ok4:listli-5e3:a:bee", "bencode writer");
  auto v = decodeBencode(out);
  check(v.ok() && v->findString("result") == std::optional<std::string_view>("ok") &&
            v->find("list") != nullptr && v->find("list")->items().size() == 2 &&
            v->find("list")->items()[0].asInt() == -5,
        "bencode reader");
  check(!decodeBencode("d3:abc").ok() && !decodeBencode("5:abc").ok() &&
            !decodeBencode("i1ex").ok() && !decodeBencode(std::string(100, 'l')).ok(),
        "bencode rejects truncated, trailing and too deep input");
}

void testSdp() {
  const std::string sdp = makePhoneSdp(
      SdpParams{.address = *IpAddr::parse("198.51.100.7"), .port = 4000, .session_id = 42});
  check(sdp.size() >= 350 && sdp.size() <= 450, fmt::format("phone SDP is {} bytes", sdp.size()));
  const auto ep = firstAudioEndpoint(sdp);
  check(ep && ep->toString() == "198.51.100.7:4000", "SDP endpoint parse");
  const auto media_c = firstAudioEndpoint(
      "v=0\r\nc=IN IP4 1.1.1.1\r\nm=audio 30000 RTP/AVP 0\r\nc=IN IP4 2.2.2.2\r\n"
      "m=audio 1 RTP/AVP 0\r\nc=IN IP4 3.3.3.3\r\n");
  check(media_c && media_c->toString() == "2.2.2.2:30000", "media-level c= wins");
}

void testSinkAccounting() {
  const SockAddr lo(*IpAddr::parse("127.0.0.1"), 0);
  auto rx = openUdp("", lo, UdpSocketOptions{.rcvbuf = 4 << 20, .rx_overflow_counter = true});
  auto tx = openUdp("", lo, UdpSocketOptions{.nonblocking = false});
  if (!rx.ok() || !tx.ok()) {
    check(false, "loopback sockets");
    return;
  }
  const SockAddr dest = *localAddress(rx->get());
  const SockAddr src = *localAddress(tx->get());
  Sink sink(std::move(rx).value());
  sink.prepare(kCraftedRun, kCraftedStreams, kCraftedMaxSeq, craftedExpectedSources(src));
  std::atomic<bool> stop{false};
  std::thread th([&] { sink.run(stop); });
  sendCraftedProbes(tx->get(), {dest});
  waitQuiet(sink, monoNs());
  stop.store(true);
  th.join();
  for (const CraftedCheck& c : checkCraftedCounts("udp sink", sink.totals(), sink.streams())) {
    check(c.ok, c.what);
  }
}

// A receiving and a sending UDP socket on 127.0.0.1; nothing (and a failed check) if the host
// cannot open them.
struct Loopback {
  UniqueFd rx;
  std::vector<UniqueFd> tx;  // one, as the Generator takes it
  SockAddr dest;             // rx's address
};
std::optional<Loopback> loopback(int rcvbuf) {
  const SockAddr lo(*IpAddr::parse("127.0.0.1"), 0);
  auto rx = openUdp("", lo, UdpSocketOptions{.rcvbuf = rcvbuf, .rx_overflow_counter = true});
  auto tx = openUdp("", lo, UdpSocketOptions{});
  if (!rx.ok() || !tx.ok()) {
    check(false, "loopback sockets");
    return std::nullopt;
  }
  Loopback l;
  l.dest = *localAddress(rx->get());
  l.rx = std::move(rx).value();
  l.tx.push_back(std::move(tx).value());
  return l;
}

void testGenToSink() {
  auto l = loopback(16 << 20);
  if (!l) {
    return;
  }
  constexpr size_t kStreams = 10;
  Generator gen(std::move(l->tx), std::vector<SockAddr>(kStreams, l->dest), 99);
  Sink sink(std::move(l->rx));
  sink.prepare(3, kStreams, 4096);
  std::atomic<bool> stop{false};
  std::thread th([&] { sink.run(stop); });
  const GenResult g = gen.run(GenRunConfig{.pps = 20000, .seconds = 0.5, .run_id = 3});
  waitQuiet(sink, monoNs());
  stop.store(true);
  th.join();
  const SinkTotals t = sink.totals();
  const auto sent = gen.sentPerStream();
  bool per_stream_ok = true;
  for (size_t i = 0; i < kStreams; ++i) {
    per_stream_ok = per_stream_ok && sent[i] == sink.streams()[i].received && sent[i] >= 999 &&
                    sent[i] <= 1001;
  }
  check(g.sent == 10000 && g.offered_pps > 19900 && g.offered_pps < 20100,
        fmt::format("generator offered {:.0f} pps, sent {}", g.offered_pps, g.sent));
  check(t.received == g.sent && t.duplicates == 0 && t.foreign == 0 && per_stream_ok,
        fmt::format("loopback: received {} of {}, every stream exact", t.received, g.sent));
}

// --payload-bytes and --ptime: datagram size, RTP timestamp step, and the sink still counts them.
void testProbeShape() {
  auto l = loopback(4 << 20);
  if (!l) {
    return;
  }
  Generator gen(std::move(l->tx), std::vector<SockAddr>(1, l->dest), 7);
  gen.setShape(401, 8 * 30);
  const GenResult g = gen.run(GenRunConfig{.pps = 1000, .seconds = 0.05, .run_id = 5});
  size_t got = 0;
  bool sizes_ok = true;
  bool steps_ok = true;
  bool probes_ok = true;
  std::optional<uint32_t> last_ts;
  uint8_t buf[2048];
  for (const int64_t end = monoNs() + kNsPerSec; got < g.sent && monoNs() < end;) {
    const ssize_t n = ::recv(l->rx.get(), buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) {
      timespec ts{0, kNsPerMs};
      ::nanosleep(&ts, nullptr);
      continue;
    }
    ++got;
    ProbeFields f;
    sizes_ok = sizes_ok && n == static_cast<ssize_t>(kRtpHeaderSize + 401);
    probes_ok = probes_ok && readProbe(buf, static_cast<size_t>(n), f) && f.run_id == 5;
    const uint32_t ts = getBe32(buf + 4);
    steps_ok = steps_ok && (!last_ts || ts - *last_ts == 240);
    last_ts = ts;
  }
  check(g.sent >= 45 && got == g.sent && sizes_ok && steps_ok && probes_ok,
        fmt::format("--payload-bytes 401 --ptime 30: {} of {} datagrams of 413 bytes, RTP "
                    "timestamp +240 each, probes readable",
                    got, g.sent));
}

}  // namespace

int runSelftest(int argc, char** argv, int first) {
  (void)argv;
  if (argc > first) {
    fmt::print(stderr, "usage: xems-perf selftest\n");
    return kExitUsage;
  }
  fmt::print("xems-perf selftest\n");
  testBencode();
  testSdp();
  testSinkAccounting();
  testGenToSink();
  testProbeShape();
  testPacketMode(check);
  testXdpSink(check);
  fmt::print("{}\n", g_failures == 0 ? "PASS" : fmt::format("FAIL ({} checks)", g_failures));
  return g_failures == 0 ? kExitOk : kExitFailed;
}

}  // namespace xems::perf
