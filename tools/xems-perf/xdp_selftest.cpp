#include "tools/xems-perf/xdp_selftest.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "tools/xems-perf/clock.h"
#include "tools/xems-perf/crafted_probes.h"
#include "tools/xems-perf/netns.h"
#include "tools/xems-perf/rtp_gen.h"
#include "tools/xems-perf/rtp_sink.h"
#include "tools/xems-perf/selftest_util.h"
#include "tools/xems-perf/xdp_sink.h"

namespace xems::perf {

namespace {

using CheckFn = std::function<void(bool, std::string_view)>;

// Two namespaces, deleted (with the veth pair inside) in the destructor.
class TestNamespaces {
 public:
  explicit TestNamespaces(std::string tag) : tx(tag + "-s"), rx(tag + "-r") {}
  ~TestNamespaces() {
    for (const std::string* ns : {&tx, &rx}) {
      if (created_[ns == &tx ? 0 : 1]) {
        (void)runCmd({"ip", "netns", "del", *ns});
      }
    }
  }
  TestNamespaces(const TestNamespaces&) = delete;
  TestNamespaces& operator=(const TestNamespaces&) = delete;

  // sender: xpa 10.204.7.1/24 fd00:204:7::1/64 <=veth=> receiver: xpb 10.204.7.2/24 ...::2/64
  bool setUp() {
    created_[0] = runCmd({"ip", "netns", "add", tx});
    created_[1] = runCmd({"ip", "netns", "add", rx});
    const std::vector<std::vector<std::string>> steps = {
        {"ip", "-n", tx, "link", "add", "xpa", "type", "veth", "peer", "name", "xpb", "netns", rx},
        {"ip", "-n", tx, "addr", "add", "10.204.7.1/24", "dev", "xpa"},
        {"ip", "-n", rx, "addr", "add", "10.204.7.2/24", "dev", "xpb"},
        {"ip", "-n", tx, "addr", "add", "fd00:204:7::1/64", "dev", "xpa", "nodad"},
        {"ip", "-n", rx, "addr", "add", "fd00:204:7::2/64", "dev", "xpb", "nodad"},
        {"ip", "-n", tx, "link", "set", "lo", "up"},
        {"ip", "-n", rx, "link", "set", "lo", "up"},
        {"ip", "-n", tx, "link", "set", "xpa", "up"},
        {"ip", "-n", rx, "link", "set", "xpb", "up"},
    };
    if (!created_[0] || !created_[1]) {
      return false;
    }
    for (const auto& s : steps) {
      if (!runCmd(s)) {
        fmt::print("  failed: {}\n", fmt::join(s, " "));
        return false;
      }
    }
    // Complete UDP checksums, as from a NIC (the program does not check them either way).
    (void)runCmd({"ip", "netns", "exec", tx, "ethtool", "-K", "xpa", "tx", "off"}, true);
    return true;
  }

  const std::string tx;
  const std::string rx;

 private:
  bool created_[2] = {false, false};
};

// Until every sink has been quiet for 100 ms after `since` (at most 3 s).
void waitQuiet(const std::vector<const SinkBackend*>& sinks, int64_t since) {
  for (int i = 0; i < 600; ++i) {
    const int64_t now = monoNs();
    bool quiet = true;
    for (const SinkBackend* s : sinks) {
      quiet = quiet && now - std::max(s->lastRxNs(), since) >= 100 * kNsPerMs;
    }
    if (quiet) {
      return;
    }
    sleepMs(5);
  }
}

bool sameCounts(const SinkBackend& a, const SinkBackend& b) {
  const SinkTotals x = a.totals();
  const SinkTotals y = b.totals();
  if (x.datagrams != y.datagrams || x.received != y.received || x.duplicates != y.duplicates ||
      x.reordered != y.reordered || x.wrong_source != y.wrong_source || x.foreign != y.foreign ||
      x.stale != y.stale || a.streams().size() != b.streams().size()) {
    return false;
  }
  for (size_t i = 0; i < a.streams().size(); ++i) {
    const SinkStreamStats& s = a.streams()[i];
    const SinkStreamStats& t = b.streams()[i];
    if (s.received != t.received || s.duplicates != t.duplicates || s.reordered != t.reordered ||
        s.wrong_source != t.wrong_source || s.highest != t.highest || s.any != t.any) {
      return false;
    }
  }
  return true;
}

// The crafted sequence to an XdpSink and a UDP Sink on two ports of `rx_ip` at once.
void craftedSideBySide(const CheckFn& check, const TestNamespaces& ns, const IpAddr& tx_ip,
                       const IpAddr& rx_ip, std::string_view label) {
  auto xdp_fd = openUdp(ns.rx, SockAddr(rx_ip, 0), UdpSocketOptions{});
  auto udp_fd = openUdp(ns.rx, SockAddr(rx_ip, 0),
                        UdpSocketOptions{.rcvbuf = 4 << 20, .rx_overflow_counter = true});
  auto tx = openUdp(ns.tx, SockAddr(tx_ip, 0), UdpSocketOptions{.nonblocking = false});
  if (!xdp_fd.ok() || !udp_fd.ok() || !tx.ok()) {
    check(false, fmt::format("xdp sink {}: sockets in the namespaces", label));
    return;
  }
  const SockAddr xdp_dest = *localAddress(xdp_fd->get());
  const SockAddr udp_dest = *localAddress(udp_fd->get());
  const SockAddr src = *localAddress(tx->get());
  auto xdp = XdpSink::create(std::move(xdp_fd).value(), XdpSinkOptions{.netns = ns.rx});
  check(xdp.ok(), fmt::format("xdp sink {}: verifier accepts the program, attached to {}{}", label,
                              xdp.ok() ? (*xdp)->device() : "-",
                              !xdp.ok()          ? ": " + xdp.error().message
                              : (*xdp)->native() ? " (native)"
                                                 : " (generic)"));
  if (!xdp.ok()) {
    return;
  }
  // Neighbour resolution (ARP or ND) must get through the program: it passes what is not UDP.
  const uint8_t hello[8] = {};
  const SockAddr discard(rx_ip, 9);
  (void)::sendto(tx->get(), hello, sizeof hello, 0, discard.sa(), discard.len());
  sleepMs(200);

  XdpSink& x = **xdp;
  Sink udp(std::move(udp_fd).value());
  x.prepare(kCraftedRun, kCraftedStreams, kCraftedMaxSeq, craftedExpectedSources(src));
  udp.prepare(kCraftedRun, kCraftedStreams, kCraftedMaxSeq, craftedExpectedSources(src));
  std::atomic<bool> stop{false};
  std::thread tx_thread([&] { x.run(stop); });
  std::thread tu_thread([&] { udp.run(stop); });
  const int64_t t0 = monoNs();
  sendCraftedProbes(tx->get(), {xdp_dest, udp_dest});
  waitQuiet({&x, &udp}, t0);
  stop.store(true);
  tx_thread.join();
  tu_thread.join();
  for (const CraftedCheck& c :
       checkCraftedCounts(fmt::format("xdp sink {}", label), x.totals(), x.streams())) {
    check(c.ok, c.what);
  }
  const SinkTotals t = x.totals();
  check(sameCounts(x, udp),
        fmt::format("xdp sink {}: every count equals the UDP sink's "
                    "(received {} / {}, datagrams {} / {})",
                    label, t.received, udp.totals().received, t.datagrams, udp.totals().datagrams));
  const SinkStreamStats& s0 = x.streams()[0];
  check(
      t.latency_p50_us < 100000 && t.latency_max_us < 1e6 && s0.jitter_ns > 0 && s0.jitter_ns < 1e9,
      fmt::format("xdp sink {}: latency p50 {:.0f} us max {:.0f} us, jitter {:.2f} us (UDP "
                  "sink: p50 {:.0f} us, jitter {:.2f} us)",
                  label, t.latency_p50_us, t.latency_max_us, s0.jitter_ns / 1000,
                  udp.totals().latency_p50_us, udp.streams()[0].jitter_ns / 1000));
  if (!rx_ip.isV4()) {
    return;
  }
  // Volume: the generator into the XDP sink, run id 0 (locks onto the first seen), exact per
  // stream.
  auto gen_fd = openUdp(ns.tx, SockAddr(tx_ip, 0), UdpSocketOptions{.sndbuf = 4 << 20});
  if (!gen_fd.ok()) {
    check(false, "xdp sink: generator socket");
    return;
  }
  constexpr size_t kStreams = 8;
  std::vector<UniqueFd> fds;
  fds.push_back(std::move(gen_fd).value());
  Generator gen(std::move(fds), std::vector<SockAddr>(kStreams, xdp_dest), 17);
  x.prepare(0, kStreams, 16384);
  stop.store(false);
  std::thread rx_thread([&] { x.run(stop); });
  const GenResult g = gen.run(GenRunConfig{.pps = 100000, .seconds = 0.5, .run_id = 42});
  waitQuiet({&x}, monoNs());
  stop.store(true);
  rx_thread.join();
  const SinkTotals v = x.totals();
  const auto sent = gen.sentPerStream();
  bool exact = true;
  for (size_t i = 0; i < kStreams; ++i) {
    exact = exact && x.streams()[i].received == sent[i] && x.streams()[i].duplicates == 0 &&
            x.streams()[i].highest + 1 == sent[i];
  }
  check(g.sent >= 49000 && exact && v.received == g.sent && v.foreign == 0 && v.stale == 0 &&
            v.reordered == 0 && v.error.empty(),
        fmt::format("xdp sink: generator at {:.0f} pps, received {} of {}, every stream exact{}",
                    g.offered_pps, v.received, g.sent, v.error.empty() ? "" : ": " + v.error));
}

}  // namespace

void testXdpSink(const CheckFn& check) {
  if (::geteuid() != 0) {
    fmt::print("  [skip] xdp sink: needs root\n");
    return;
  }
  if (!runCmd({"ip", "-V"}, true)) {
    fmt::print("  [skip] xdp sink: needs iproute2 (ip)\n");
    return;
  }
  TestNamespaces ns(fmt::format("xpst-{}-{:04x}", ::getpid(), monoNs() & 0xffff));
  if (!ns.setUp()) {
    check(false, "xdp sink: namespaces and veth pair");
    return;
  }
  craftedSideBySide(check, ns, *IpAddr::parse("10.204.7.1"), *IpAddr::parse("10.204.7.2"), "IPv4");
  // The first sink detached in its destructor: the device takes a program again.
  craftedSideBySide(check, ns, *IpAddr::parse("fd00:204:7::1"), *IpAddr::parse("fd00:204:7::2"),
                    "IPv6");
}

}  // namespace xems::perf
