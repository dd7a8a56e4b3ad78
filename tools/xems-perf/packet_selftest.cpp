#include "tools/xems-perf/packet_selftest.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <fmt/format.h>

#include "tools/xems-perf/clock.h"
#include "tools/xems-perf/netns.h"
#include "tools/xems-perf/packet_tx.h"
#include "tools/xems-perf/rtp_gen.h"
#include "tools/xems-perf/rtp_packet.h"
#include "tools/xems-perf/rtp_sink.h"
#include "tools/xems-perf/selftest_util.h"

namespace xems::perf {

namespace {

using CheckFn = std::function<void(bool, std::string_view)>;

// Per-namespace sysctls, written from a thread inside the namespace.
Status writeSysctls(const std::string& netns, std::initializer_list<const char*> paths,
                    const char* value) {
  return runInNetns(netns, [&]() -> Status {
    for (const char* path : paths) {
      std::ofstream f(path);
      f << value << "\n";
      f.flush();
      if (!f) {
        return XEMS_INVALID(fmt::format("cannot write {}", path));
      }
    }
    return okStatus();
  });
}

// Three namespaces in a line, deleted (with their veth pairs) in the destructor:
//   a: pa 10.203.1.1/24 fd00:203:1::1/64 <=> r: ra 10.203.1.2 fd00:203:1::2
//   r: rb 10.203.2.1/24 fd00:203:2::1/64 <=> b: pb 10.203.2.2 fd00:203:2::2
// r forwards; a and b route everything via r.
class Topology {
 public:
  explicit Topology(const std::string& tag) : a(tag + "-a"), r(tag + "-r"), b(tag + "-b") {}
  ~Topology() {
    for (size_t i = 0; i < 3; ++i) {
      if (created_[i]) {
        (void)runCmd({"ip", "netns", "del", *names()[i]}, true);
      }
    }
  }
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;

  bool setUp() {
    for (size_t i = 0; i < 3; ++i) {
      created_[i] = runCmd({"ip", "netns", "add", *names()[i]}, true);
      if (!created_[i]) {
        fmt::print("  failed: ip netns add {}\n", *names()[i]);
        return false;
      }
    }
    const std::vector<std::vector<std::string>> steps = {
        {"ip", "-n", a, "link", "add", "pa", "type", "veth", "peer", "name", "ra", "netns", r},
        {"ip", "-n", r, "link", "add", "rb", "type", "veth", "peer", "name", "pb", "netns", b},
        {"ip", "-n", a, "addr", "add", "10.203.1.1/24", "dev", "pa"},
        {"ip", "-n", r, "addr", "add", "10.203.1.2/24", "dev", "ra"},
        {"ip", "-n", r, "addr", "add", "10.203.2.1/24", "dev", "rb"},
        {"ip", "-n", b, "addr", "add", "10.203.2.2/24", "dev", "pb"},
        {"ip", "-n", a, "addr", "add", "fd00:203:1::1/64", "dev", "pa", "nodad"},
        {"ip", "-n", r, "addr", "add", "fd00:203:1::2/64", "dev", "ra", "nodad"},
        {"ip", "-n", r, "addr", "add", "fd00:203:2::1/64", "dev", "rb", "nodad"},
        {"ip", "-n", b, "addr", "add", "fd00:203:2::2/64", "dev", "pb", "nodad"},
        {"ip", "-n", a, "link", "set", "pa", "up"},
        {"ip", "-n", r, "link", "set", "ra", "up"},
        {"ip", "-n", r, "link", "set", "rb", "up"},
        {"ip", "-n", b, "link", "set", "pb", "up"},
        {"ip", "-n", a, "route", "add", "default", "via", "10.203.1.2"},
        {"ip", "-n", b, "route", "add", "default", "via", "10.203.2.1"},
        {"ip", "-n", a, "-6", "route", "add", "default", "via", "fd00:203:1::2"},
        {"ip", "-n", b, "-6", "route", "add", "default", "via", "fd00:203:2::1"},
    };
    for (const auto& s : steps) {
      if (!runCmd(s, true)) {
        std::string line;
        for (const std::string& w : s) {
          line += (line.empty() ? "" : " ") + w;
        }
        fmt::print("  failed: {}\n", line);
        return false;
      }
    }
    const Status fwd = writeSysctls(
        r, {"/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"}, "1");
    if (!fwd.ok()) {
      fmt::print("  failed: forwarding in {}: {}\n", r, fwd.error().message);
      return false;
    }
    // A fresh veth end ignores neighbour solicitations for about a second after the link came up
    // (IPv4 ARP works at once): wait until both IPv6 links answer, then forget what a learnt, so
    // that the tests still start from an empty neighbour table.
    for (const auto& [ns, src, dst] : {std::tuple{&a, "fd00:203:1::1", "fd00:203:1::2"},
                                       std::tuple{&r, "fd00:203:2::1", "fd00:203:2::2"}}) {
      const Status ready = runInNetns(*ns, [src = src, dst = dst]() -> Status {
        auto nl = NeighbourResolver::open();
        if (!nl.ok()) {
          return std::move(nl).error();
        }
        return nl->resolve(*IpAddr::parse(src), *IpAddr::parse(dst), monoNs() + 3 * kNsPerSec).ok()
                   ? okStatus()
                   : XEMS_INVALID(fmt::format("no ND answer from {} within 3 s", dst));
      });
      if (!ready.ok()) {
        fmt::print("  failed: IPv6 in {}: {}\n", *ns, ready.error().message);
        return false;
      }
    }
    if (!runCmd({"ip", "-n", a, "neigh", "flush", "dev", "pa"}, true)) {
      fmt::print("  failed: ip -n {} neigh flush dev pa\n", a);
      return false;
    }
    return true;
  }

  const std::string a;
  const std::string r;
  const std::string b;

 private:
  std::array<const std::string*, 3> names() const { return {&a, &r, &b}; }
  bool created_[3] = {false, false, false};
};

// Checksum counters of a namespace's receive path: a bad IPv4 header checksum counts as Ip
// InHdrErrors, a bad UDP checksum as Udp InCsumErrors / Udp6InCsumErrors.
struct CsumCounters {
  uint64_t ip_hdr_errors = 0;
  uint64_t udp_csum_errors = 0;
  uint64_t udp6_csum_errors = 0;
  bool operator==(const CsumCounters&) const = default;
};

// The value of `name` in the "Proto: names" / "Proto: values" line pair of /proc/net/snmp.
std::optional<uint64_t> snmpField(const std::string& text, std::string_view proto,
                                  std::string_view name) {
  std::istringstream in(text);
  std::string header;
  std::string values;
  const std::string prefix = std::string(proto) + ":";
  while (std::getline(in, header)) {
    if (header.rfind(prefix, 0) != 0 || !std::getline(in, values)) {
      continue;
    }
    std::istringstream h(header);
    std::istringstream v(values);
    std::string key;
    std::string val;
    while (h >> key && v >> val) {
      if (key == name) {
        return std::stoull(val);
      }
    }
    return std::nullopt;
  }
  return std::nullopt;
}

std::optional<uint64_t> snmp6Field(const std::string& text, std::string_view name) {
  std::istringstream in(text);
  std::string key;
  std::string val;
  while (in >> key >> val) {
    if (key == name) {
      return std::stoull(val);
    }
  }
  return std::nullopt;
}

std::optional<CsumCounters> readCsumCounters(const std::string& netns) {
  CsumCounters c;
  const Status st = runInNetns(netns, [&]() -> Status {
    // thread-self: /proc/self/net would show the main thread's namespace.
    auto slurp = [](const char* path) {
      std::ifstream f(path);
      std::stringstream ss;
      ss << f.rdbuf();
      return ss.str();
    };
    const std::string snmp = slurp("/proc/thread-self/net/snmp");
    const std::string snmp6 = slurp("/proc/thread-self/net/snmp6");
    const auto ip = snmpField(snmp, "Ip", "InHdrErrors");
    const auto udp = snmpField(snmp, "Udp", "InCsumErrors");
    const auto udp6 = snmp6Field(snmp6, "Udp6InCsumErrors");
    if (!ip || !udp || !udp6) {
      return XEMS_INVALID("snmp counters not found");
    }
    c = CsumCounters{*ip, *udp, *udp6};
    return okStatus();
  });
  if (!st.ok()) {
    return std::nullopt;
  }
  return c;
}

// Until the sink has been quiet for 100 ms after `since` (at most 3 s).
void waitQuiet(const Sink& sink, int64_t since) {
  for (int i = 0; i < 600; ++i) {
    if (monoNs() - std::max(sink.lastRxNs(), since) >= 100 * kNsPerMs) {
      return;
    }
    sleepMs(5);
  }
}

// Incremental UDP checksums against a full recomputation, for random field values (no root).
void testChecksums(const CheckFn& check) {
  std::mt19937_64 rng(12345);
  bool all = true;
  int frames = 0;
  for (const char* addrs : {"10.1.2.3|192.0.2.200", "2001:db8::1|fd00::ffff:1"}) {
    const std::string_view sv(addrs);
    const size_t bar = sv.find('|');
    PacketRoute route;
    route.ifindex = 1;
    route.src_mac = {0x02, 0, 0, 0, 0, 1};
    route.dst_mac = {0x02, 0, 0, 0, 0, 2};
    route.src_ip = *IpAddr::parse(sv.substr(0, bar));
    const IpAddr dst_ip = *IpAddr::parse(sv.substr(bar + 1));
    for (int i = 0; i < 2000; ++i) {
      const auto r = rng();
      const SockAddr src(route.src_ip, static_cast<uint16_t>(r));
      const SockAddr dst(dst_ip, static_cast<uint16_t>(r >> 16));
      const auto ssrc = static_cast<uint32_t>(r >> 32);
      // Every third frame another payload size (--payload-bytes), odd ones included.
      const size_t payload =
          i % 3 == 0 ? kMinPayloadSize + static_cast<size_t>(r % (kMaxPayloadSize - 23))
                     : kPayloadSize;
      const FrameTemplate t = makeFrameTemplate(route, src, dst, ssrc, payload);
      uint8_t frame[kMaxFrameHeader + kMaxPacketSize];
      std::memcpy(frame, t.header.data(), t.header_len);
      initProbe(frame + t.header_len, ssrc, payload);
      // Extreme values too: all-ones fields push the sum through every carry.
      const uint64_t v = (i % 7 == 0) ? ~uint64_t{0} : rng();
      writeProbe(frame + t.header_len, static_cast<uint16_t>(v), static_cast<uint32_t>(v >> 8),
                 ProbeFields{.run_id = static_cast<uint32_t>(v >> 3),
                             .stream = static_cast<uint32_t>(v >> 17),
                             .seq = static_cast<uint32_t>(v >> 29),
                             .send_ns = v});
      writeUdpChecksum(frame, t);
      all = all && frameChecksumsValid(frame, t.frameSize());
      // And a corrupted byte must be caught by the same verifier.
      frame[t.header_len + std::min<size_t>(40, kRtpHeaderSize + payload - 1)] ^= 0x5a;
      all = all && !frameChecksumsValid(frame, t.frameSize());
      ++frames;
    }
  }
  check(all, fmt::format("packet frames: incremental IPv4/UDP checksums verify from scratch "
                         "({} IPv4 + IPv6 frames, payloads 24..1400 bytes, corrupted ones fail)",
                         frames));
}

// Generator (2 threads in a, packet mode) -> UDP Sink at `dst_ip` in `sink_ns`.
void genToSink(const CheckFn& check, const Topology& topo, const std::string& sink_ns,
               const IpAddr& src_ip, const IpAddr& dst_ip, std::string_view label) {
  auto rx = openUdp(sink_ns, SockAddr(dst_ip, 0),
                    UdpSocketOptions{.rcvbuf = 16 << 20, .rx_overflow_counter = true});
  if (!rx.ok()) {
    check(false, fmt::format("packet {}: sink socket: {}", label, rx.error().message));
    return;
  }
  const SockAddr dest = *localAddress(rx->get());
  constexpr size_t kThreads = 2;
  constexpr size_t kStreams = 10;
  std::vector<UniqueFd> fds;
  std::vector<SockAddr> locals;
  for (size_t t = 0; t < kThreads; ++t) {
    auto fd = openUdp(topo.a, SockAddr(src_ip, 0), UdpSocketOptions{.sndbuf = 4 << 20});
    if (!fd.ok()) {
      check(false, fmt::format("packet {}: generator socket: {}", label, fd.error().message));
      return;
    }
    locals.push_back(*localAddress(fd->get()));
    fds.push_back(std::move(fd).value());
  }
  Generator gen(std::move(fds), std::vector<SockAddr>(kStreams, dest), 7);
  const int64_t r0 = monoNs();
  const Status st = gen.usePacketMode(topo.a);
  const double resolve_ms = static_cast<double>(monoNs() - r0) / kNsPerMs;
  check(st.ok(), fmt::format("packet {}: route and next-hop MAC resolved in {:.1f} ms{}", label,
                             resolve_ms, st.ok() ? "" : ": " + st.error().message));
  if (!st.ok()) {
    return;
  }
  std::vector<SockAddr> sources;
  for (size_t i = 0; i < kStreams; ++i) {
    sources.push_back(locals[i % kThreads]);
  }
  const auto before_r = readCsumCounters(topo.r);
  const auto before_b = readCsumCounters(topo.b);
  Sink sink(std::move(rx).value());
  sink.prepare(5, kStreams, 8192, sources);
  std::atomic<bool> stop{false};
  std::thread th([&] { sink.run(stop); });
  const GenResult g = gen.run(GenRunConfig{.pps = 20000, .seconds = 0.5, .run_id = 5});
  waitQuiet(sink, monoNs());
  stop.store(true);
  th.join();
  const auto after_r = readCsumCounters(topo.r);
  const auto after_b = readCsumCounters(topo.b);
  const SinkTotals t = sink.totals();
  const auto sent = gen.sentPerStream();
  bool exact = true;
  for (size_t i = 0; i < kStreams; ++i) {
    const SinkStreamStats& s = sink.streams()[i];
    exact = exact && s.received == sent[i] && s.duplicates == 0 && s.wrong_source == 0 &&
            sent[i] >= 999 && sent[i] <= 1001;
  }
  check(g.sent == 10000 && g.wanted == 10000 && g.send_errors == 0 && g.offered_pps > 19900 &&
            g.offered_pps < 20100,
        fmt::format("packet {}: generator offered {:.0f} pps, sent {} (would-block {}){}", label,
                    g.offered_pps, g.sent, g.would_block, g.error.empty() ? "" : "; " + g.error));
  check(exact && t.received == g.sent && t.foreign == 0 && t.stale == 0,
        fmt::format("packet {}: received {} of {}, every stream exact and from its socket's "
                    "address:port",
                    label, t.received, g.sent));
  const bool readable = before_r && before_b && after_r && after_b;
  check(readable && *before_r == *after_r && *before_b == *after_b,
        readable ? fmt::format("packet {}: no checksum errors in {} and {} (Ip InHdrErrors, "
                               "Udp/Udp6 InCsumErrors unchanged)",
                               label, topo.r, topo.b)
                 : fmt::format("packet {}: /proc/net/snmp counters unreadable", label));
}

// A next hop that never answers: a clear error within the bounded wait.
void deadNextHop(const CheckFn& check, const Topology& topo) {
  auto fd = openUdp(topo.a, SockAddr(*IpAddr::parse("10.203.1.1"), 0), UdpSocketOptions{});
  if (!fd.ok()) {
    check(false, "packet dead next hop: socket");
    return;
  }
  std::vector<UniqueFd> fds;
  fds.push_back(std::move(fd).value());
  Generator gen(std::move(fds), {SockAddr(*IpAddr::parse("10.203.1.99"), 4000)}, 1);
  const int64_t t0 = monoNs();
  const Status st = gen.usePacketMode(topo.a);
  const double ms = static_cast<double>(monoNs() - t0) / kNsPerMs;
  check(!st.ok() && ms < Generator::kResolveWaitMs + 500 &&
            st.error().message.find("no ARP answer") != std::string::npos,
        fmt::format("packet dead next hop: error after {:.0f} ms: {}", ms,
                    st.ok() ? "none" : st.error().message));
}

// Hand-made frames from a to a sink in r: one good, one with a corrupted payload (bad UDP
// checksum), one with a corrupted IPv4 header checksum. Only the good one may arrive and each bad
// one must show in r's counters: proof that the counters checked above do see such errors.
void badFramesCounted(const CheckFn& check, const Topology& topo) {
  const IpAddr src_ip = *IpAddr::parse("10.203.1.1");
  const IpAddr dst_ip = *IpAddr::parse("10.203.1.2");
  auto rx = openUdp(topo.r, SockAddr(dst_ip, 0),
                    UdpSocketOptions{.rcvbuf = 1 << 20, .rx_overflow_counter = true});
  auto tx = openUdp(topo.a, SockAddr(src_ip, 0), UdpSocketOptions{});
  if (!rx.ok() || !tx.ok()) {
    check(false, "packet bad frames: sockets");
    return;
  }
  const SockAddr dest = *localAddress(rx->get());
  const SockAddr src = *localAddress(tx->get());
  const auto before = readCsumCounters(topo.r);
  Sink sink(std::move(rx).value());
  sink.prepare(9, 1, 16);
  std::atomic<bool> stop{false};
  std::thread th([&] { sink.run(stop); });
  int sent = 0;
  const Status st = runInNetns(topo.a, [&]() -> Status {
    auto nl = NeighbourResolver::open();
    if (!nl.ok()) {
      return std::move(nl).error();
    }
    auto route = nl->resolve(src_ip, dst_ip, monoNs() + kNsPerSec);
    if (!route.ok()) {
      return std::move(route).error();
    }
    auto pfd = openPacketSocket();
    if (!pfd.ok()) {
      return std::move(pfd).error();
    }
    const FrameTemplate t = makeFrameTemplate(*route, src, dest, 4321);
    for (uint32_t seq = 0; seq < 3; ++seq) {
      uint8_t frame[kMaxFrameHeader + kPacketSize];
      std::memcpy(frame, t.header.data(), t.header_len);
      initProbe(frame + t.header_len, 4321);
      writeProbe(
          frame + t.header_len, static_cast<uint16_t>(seq), seq * 160,
          ProbeFields{
              .run_id = 9, .stream = 0, .seq = seq, .send_ns = static_cast<uint64_t>(monoNs())});
      writeUdpChecksum(frame, t);
      if (seq == 1) {
        frame[t.header_len + 100] ^= 0x5a;  // payload: the UDP checksum no longer matches
      } else if (seq == 2) {
        frame[kEthHeaderSize + 10] ^= 0x01;  // the IPv4 header checksum
      }
      if (::sendto(pfd->get(), frame, t.frameSize(), 0, reinterpret_cast<const sockaddr*>(&t.dest),
                   sizeof t.dest) == static_cast<ssize_t>(t.frameSize())) {
        ++sent;
      }
    }
    return okStatus();
  });
  waitQuiet(sink, monoNs());
  stop.store(true);
  th.join();
  const auto after = readCsumCounters(topo.r);
  const SinkTotals t = sink.totals();
  const bool counted = before && after && after->udp_csum_errors == before->udp_csum_errors + 1 &&
                       after->ip_hdr_errors == before->ip_hdr_errors + 1;
  check(st.ok() && sent == 3 && t.datagrams == 1 && t.received == 1 && counted,
        fmt::format("packet bad frames: 1 good + 2 corrupted sent, sink got {}, r counted Udp "
                    "InCsumErrors +{} Ip InHdrErrors +{}{}",
                    t.datagrams,
                    before && after ? after->udp_csum_errors - before->udp_csum_errors : 0,
                    before && after ? after->ip_hdr_errors - before->ip_hdr_errors : 0,
                    st.ok() ? "" : ": " + st.error().message));
}

}  // namespace

void testPacketMode(const CheckFn& check) {
  testChecksums(check);
  if (::geteuid() != 0) {
    fmt::print("  [skip] packet mode: needs root\n");
    return;
  }
  if (!runCmd({"ip", "-V"}, true)) {
    fmt::print("  [skip] packet mode: needs iproute2 (ip)\n");
    return;
  }
  Topology topo(fmt::format("xppk-{}-{:04x}", ::getpid(), monoNs() & 0xffff));
  if (!topo.setUp()) {
    check(false, "packet mode: namespaces, veth pairs and routes");
    return;
  }
  const IpAddr a4 = *IpAddr::parse("10.203.1.1");
  const IpAddr a6 = *IpAddr::parse("fd00:203:1::1");
  // Fresh namespaces: the first run also has the kernel resolve the next hop (NTF_USE).
  genToSink(check, topo, topo.r, a4, *IpAddr::parse("10.203.1.2"), "IPv4 on-link");
  genToSink(check, topo, topo.r, a6, *IpAddr::parse("fd00:203:1::2"), "IPv6 on-link");
  // Via r: the frames carry r's MAC and b's address. r resolves b by its own stack; one datagram
  // from r first, so that r's queue of packets awaiting ARP/ND cannot drop part of a burst.
  for (const char* dst : {"10.203.2.2", "fd00:203:2::2"}) {
    const IpAddr ip = *IpAddr::parse(dst);
    auto fd = openUdp(topo.r, SockAddr(IpAddr::any(ip.family()), 0), UdpSocketOptions{});
    if (fd.ok()) {
      const uint8_t hello[8] = {};
      const SockAddr discard(ip, 9);
      (void)::sendto(fd->get(), hello, sizeof hello, 0, discard.sa(), discard.len());
    }
  }
  sleepMs(100);
  genToSink(check, topo, topo.b, a4, *IpAddr::parse("10.203.2.2"), "IPv4 via gateway");
  genToSink(check, topo, topo.b, a6, *IpAddr::parse("fd00:203:2::2"), "IPv6 via gateway");
  badFramesCounted(check, topo);
  deadNextHop(check, topo);
}

}  // namespace xems::perf
