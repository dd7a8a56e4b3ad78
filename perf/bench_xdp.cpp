// bench-libs: xems_bench_xdp
//
// Per-packet cost of the XDP relay (bpf/xdp_relay.bpf.c) beside a bare redirect-only program
// (bpf/xdp_redirect_min.bpf.c: Ethernet bounds check, two MAC writes, XDP_TX or
// bpf_redirect_map, nothing else), both timed by the kernel with BPF_PROG_TEST_RUN.
//
// What is measured: `duration` of bpf_prog_test_run_opts() -- the kernel's own clock around
// `repeat` back-to-back runs of the program on one buffer, divided by repeat. It is the program's
// CPU cost plus the test loop's few instructions per run; it excludes the syscall, the copy of the
// frame in and out, and everything a real driver does (DMA, page recycling, the devmap flush and
// ndo_xdp_xmit for XDP_REDIRECT, the TX ring for XDP_TX). The real per-packet budget of an XDP
// forwarder is therefore larger than either figure, and the relative overhead smaller.
//
// Repeat with a program that rewrites the packet (docs/STYLE.md R27): without
// BPF_F_TEST_XDP_LIVE_FRAMES the kernel does NOT restore the frame between repeats -- run i+1
// sees run i's output (tests/bpf: RepeatRunsOnTheRewrittenPacket). A relayed packet normally
// leaves towards the peer and would hit no flow on the next repeat, so every relay variant here
// uses a self-mapping flow: the packet goes S -> D, the flow is keyed on D, expects S and
// rewrites to S -> D with the same MACs. Each repeat then takes the full forwarding path (parse,
// lookup, STUN/DTLS/source/RTP/PT checks, FIB or fixed L2, devmap check, rewrite of MACs,
// addresses, ports, both checksums, TTL, per-flow stats with bpf_ktime_get_ns(), the global
// counter) and writes the same values. Only the TTL really changes: it starts at 255 and drops
// by one per repeat, so repeat stays below 253 (at TTL 1 the packet would go up), and the
// benchmark checks that the forwarded counter grew by exactly iterations * repeat.
//
// The kernel reports an integer number of ns (floor(total / repeat)); with repeat = 250 that
// truncation costs 0.5 ns on average, which is added back (BM_RedirectMin with repeat 1e5 is the
// cross-check: no truncation to speak of).
//
// Rig: a private network namespace (unshare) with one veth pair xa/xb, both ends ours, static
// neighbours, forwarding on. Ingress is xa; egress xa (XDP_TX) or xb (XDP_REDIRECT, xb in the
// devmap). Needs root; skipped otherwise. Run: build/perf/bench_xdp --benchmark_repetitions=10.
#include <benchmark/benchmark.h>

#if !XEMS_HAVE_XEMS_BPF
// datapath/bpf (xems_bpf) is not part of this build: nothing to measure.
namespace {
void BM_XdpUnavailable(benchmark::State& state) {
  state.SkipWithError("built without datapath/bpf (target xems_bpf)");
  for (auto _ : state) {
  }
}
BENCHMARK(BM_XdpUnavailable);
}  // namespace
#else

#include <linux/bpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "datapath/bpf/skeleton.h"
#include "datapath/bpf/xdp_maps.h"
#include "xdp_redirect_min.skel.h"
#include "xdp_relay.skel.h"

namespace {

using xems::IpAddr;
using xems::SockAddr;
using xems::UniqueFd;
using xems::datapath::bpf::FixedL2;
using xems::datapath::bpf::FlowEntry;
using xems::datapath::bpf::MacAddr;
using xems::datapath::bpf::OutputSpec;
using xems::datapath::bpf::PayloadTypeSet;
using xems::datapath::bpf::Skeleton;
using xems::datapath::bpf::SourceMode;
using xems::datapath::bpf::XdpFlowTable;

constexpr uint32_t kRepeat = 250;  // < 253, see the header comment
constexpr int kIterations = 2000;  // syscalls per repetition: 500k packets

SockAddr sa(const char* s) {
  return SockAddr::parse(s).value();
}

// ---- packet construction (plain, checksums from scratch) ----

uint32_t onesSum(const uint8_t* p, size_t n, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) {
    sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  }
  if (n & 1) {
    sum += static_cast<uint32_t>(p[n - 1] << 8);
  }
  return sum;
}
uint16_t fold(uint32_t s) {
  while (s >> 16) {
    s = (s & 0xffff) + (s >> 16);
  }
  return static_cast<uint16_t>(s);
}

// Ethernet + IPv4/IPv6 + UDP + a 172-byte RTP packet (PT 0, 20 ms of G.711), TTL 255.
std::vector<uint8_t> rtpFrame(const MacAddr& dmac, const MacAddr& smac, const SockAddr& src,
                              const SockAddr& dst) {
  const IpAddr sip = src.ip();  // bytes() points into the object: keep it alive
  const IpAddr dip = dst.ip();
  std::vector<uint8_t> f(dmac.begin(), dmac.end());
  f.insert(f.end(), smac.begin(), smac.end());
  const bool v4 = sip.isV4();
  f.push_back(v4 ? 0x08 : 0x86);
  f.push_back(v4 ? 0x00 : 0xdd);
  std::vector<uint8_t> rtp = {0x80, 0x00, 0x12, 0x34, 0, 0, 0x10, 0, 0xca, 0xfe, 0xba, 0xbe};
  rtp.resize(172, 0xd5);
  const size_t ulen = 8 + rtp.size();
  const size_t l3 = f.size();
  if (v4) {
    const size_t tot = 20 + ulen;
    const uint8_t h[12] = {
        0x45, 0xb8, uint8_t(tot >> 8), uint8_t(tot), 0x12, 0x34, 0x40, 0, 255, 17, 0, 0};
    f.insert(f.end(), h, h + 12);
    f.insert(f.end(), sip.bytes(), sip.bytes() + 4);
    f.insert(f.end(), dip.bytes(), dip.bytes() + 4);
    const uint16_t c = static_cast<uint16_t>(~fold(onesSum(f.data() + l3, 20)));
    f[l3 + 10] = static_cast<uint8_t>(c >> 8);
    f[l3 + 11] = static_cast<uint8_t>(c);
  } else {
    const uint8_t h[8] = {0x60, 0, 0, 0, uint8_t(ulen >> 8), uint8_t(ulen), 17, 255};
    f.insert(f.end(), h, h + 8);
    f.insert(f.end(), sip.bytes(), sip.bytes() + 16);
    f.insert(f.end(), dip.bytes(), dip.bytes() + 16);
  }
  const size_t l4 = f.size();
  const uint8_t u[8] = {uint8_t(src.port() >> 8),
                        uint8_t(src.port()),
                        uint8_t(dst.port() >> 8),
                        uint8_t(dst.port()),
                        uint8_t(ulen >> 8),
                        uint8_t(ulen),
                        0,
                        0};
  f.insert(f.end(), u, u + 8);
  f.insert(f.end(), rtp.begin(), rtp.end());
  const size_t alen = v4 ? 4 : 16;
  uint32_t sum = onesSum(sip.bytes(), alen);
  sum = onesSum(dip.bytes(), alen, sum);
  sum += 17 + static_cast<uint32_t>(ulen);
  uint16_t c = static_cast<uint16_t>(~fold(onesSum(f.data() + l4, ulen, sum)));
  c = c == 0 ? 0xffff : c;
  f[l4 + 6] = static_cast<uint8_t>(c >> 8);
  f[l4 + 7] = static_cast<uint8_t>(c);
  return f;
}

// ---- the rig ----

bool sh(const std::string& cmd) {
  return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0;
}

MacAddr macOf(const char* ifname) {
  MacAddr mac{};
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
  if (s && ::ioctl(s.get(), SIOCGIFHWADDR, &ifr) == 0) {
    std::memcpy(mac.data(), ifr.ifr_hwaddr.sa_data, mac.size());
  }
  return mac;
}

const MacAddr kBobMac = {0x02, 0, 0, 0, 0x0b, 0x20};

struct Rig {
  std::string error;
  uint32_t a_if = 0;
  uint32_t b_if = 0;
  MacAddr a_mac{};
  MacAddr b_mac{};
  Skeleton<xdp_relay> relay;
  XdpFlowTable table;
  Skeleton<xdp_redirect_min> min;
  UniqueFd drop_prog;  // the sink on both veth ends (detached when the namespace goes)

  static Rig& get() {
    static Rig r = make();
    return r;
  }

 private:
  static Rig make() {
    Rig r;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(sched_getcpu(), &set);
    sched_setaffinity(0, sizeof(set), &set);  // per-CPU maps, stable timing
    if (::unshare(CLONE_NEWNET) != 0) {
      r.error = std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno) + " (needs root)";
      return r;
    }
    for (const char* c :
         {"ip link set lo up", "ip link add xa type veth peer name xb",
          "ip link set xa address 02:00:00:00:0a:01", "ip link set xb address 02:00:00:00:0b:01",
          "ip link set xa up", "ip link set xb up", "ip addr add 203.0.113.1/24 dev xa",
          "ip addr add 192.0.2.1/24 dev xb", "ip -6 addr add 2001:db8:a::1/64 dev xa nodad",
          "ip -6 addr add 2001:db8:b::1/64 dev xb nodad",
          "ip neigh replace 192.0.2.20 lladdr 02:00:00:00:0b:20 dev xb nud permanent",
          "ip -6 neigh replace 2001:db8:b::20 lladdr 02:00:00:00:0b:20 dev xb nud permanent"}) {
      if (!sh(c)) {
        r.error = std::string("'") + c + "' failed";
        return r;
      }
    }
    std::ofstream("/proc/sys/net/ipv4/conf/all/forwarding") << "1";
    std::ofstream("/proc/sys/net/ipv6/conf/all/forwarding") << "1";
    r.a_if = if_nametoindex("xa");
    r.b_if = if_nametoindex("xb");
    // Live-frame runs transmit for real: a frame sent into one veth end is received by the other
    // end's NAPI, which only runs with an XDP program attached. Attach "return XDP_DROP" to both.
    const bpf_insn drop[] = {
        {.code = BPF_ALU64 | BPF_MOV | BPF_K,
         .dst_reg = BPF_REG_0,
         .src_reg = 0,
         .off = 0,
         .imm = XDP_DROP},
        {.code = BPF_JMP | BPF_EXIT, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = 0},
    };
    const int drop_fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "xems_drop", "GPL", drop, 2, nullptr);
    if (drop_fd < 0 ||
        bpf_xdp_attach(static_cast<int>(r.a_if), drop_fd, XDP_FLAGS_DRV_MODE, nullptr) != 0 ||
        bpf_xdp_attach(static_cast<int>(r.b_if), drop_fd, XDP_FLAGS_DRV_MODE, nullptr) != 0) {
      r.error = "attaching the XDP_DROP sink to the veth pair failed";
      return r;
    }
    r.drop_prog.reset(drop_fd);
    r.a_mac = macOf("xa");
    r.b_mac = macOf("xb");

    auto relay = Skeleton<xdp_relay>::open();
    if (!relay.ok()) {
      r.error = relay.error().message + ": " + relay.error().code.message();
      return r;
    }
    r.relay = std::move(*relay);
    bpf_map* m = nullptr;
    bpf_object__for_each_map(m, r.relay->obj) {
      bpf_map__set_pin_path(m, nullptr);
    }
    if (auto st = r.relay.load(); !st.ok()) {
      r.error = st.error().message + ": " + st.error().code.message();
      return r;
    }
    auto table = XdpFlowTable::fromMaps({.flows = r.relay->maps.xems_flows,
                                         .flow_stats = r.relay->maps.xems_flow_stats,
                                         .counters = r.relay->maps.xems_counters,
                                         .tx_ports = r.relay->maps.xems_tx_ports});
    if (!table.ok()) {
      r.error = table.error().message;
      return r;
    }
    r.table = std::move(*table);
    if (!r.table.addTxPort(r.b_if).ok()) {
      r.error = "addTxPort";
      return r;
    }

    auto min = Skeleton<xdp_redirect_min>::open();
    if (!min.ok()) {
      r.error = min.error().message;
      return r;
    }
    r.min = std::move(*min);
    r.min->rodata->cfg_egress_ifindex = r.b_if;
    std::memcpy(const_cast<uint8_t*>(r.min->rodata->cfg_src_mac), r.b_mac.data(), 6);
    std::memcpy(const_cast<uint8_t*>(r.min->rodata->cfg_dst_mac), kBobMac.data(), 6);
    if (auto st = r.min.load(); !st.ok()) {
      r.error = st.error().message;
      return r;
    }
    bpf_devmap_val v{};
    v.ifindex = r.b_if;
    if (bpf_map_update_elem(bpf_map__fd(r.min->maps.min_tx_ports), &r.b_if, &v, BPF_ANY) != 0) {
      r.error = "min_tx_ports update";
      return r;
    }
    return r;
  }
};

// ---- one measured program + input ----

enum class Variant {
  kTxFixed,        // fixed L2, egress = ingress: XDP_TX
  kRedirectFixed,  // fixed L2, egress xb: XDP_REDIRECT through the devmap
  kRedirectFib,    // bpf_fib_lookup() -> xb, neighbour Bob: XDP_REDIRECT
  kRedirectFib6,   // same over IPv6
  kPassNoFlow,     // reference: the cheapest pass-up path (UDP, no flow)
};

struct Subject {
  int prog_fd = -1;
  std::vector<uint8_t> frame;
  uint32_t ingress = 0;
  int want_action = XDP_PASS;
  bool relay = false;
};

// The self-mapping flow of the header comment: key D, expects S, rewrites to S -> D.
Subject relaySubject(Rig& rig, Variant v) {
  const bool six = v == Variant::kRedirectFib6;
  const SockAddr s = six ? sa("[2001:db8:b::1]:30002") : sa("192.0.2.1:30002");
  const SockAddr d = six ? sa("[2001:db8:b::20]:50000") : sa("192.0.2.20:50000");
  FlowEntry f{
      .local = d,
      .mode = SourceMode::kStrict,
      .expected_src = s,
      .rtp_out = OutputSpec{.src = s, .dst = d},
      .mux = true,
      .allowed_pts = PayloadTypeSet{0, 8, 9, 101},  // the PT check included
      .stats_idx = 1,
  };
  Subject sub;
  sub.prog_fd = bpf_program__fd(rig.relay->progs.xems_xdp_relay);
  sub.ingress = rig.a_if;
  sub.relay = true;
  switch (v) {
    case Variant::kTxFixed:
      f.rtp_out->l2 = FixedL2{.ifindex = rig.a_if, .src_mac = rig.b_mac, .dst_mac = kBobMac};
      sub.want_action = XDP_TX;
      break;
    case Variant::kRedirectFixed:
      f.rtp_out->l2 = FixedL2{.ifindex = rig.b_if, .src_mac = rig.b_mac, .dst_mac = kBobMac};
      sub.want_action = XDP_REDIRECT;
      break;
    case Variant::kRedirectFib:
    case Variant::kRedirectFib6:
      sub.want_action = XDP_REDIRECT;
      break;
    case Variant::kPassNoFlow:
      sub.want_action = XDP_PASS;
      break;
  }
  if (v == Variant::kPassNoFlow) {
    (void)rig.table.erase(d);
  } else {
    (void)rig.table.upsert(f);
  }
  sub.frame = rtpFrame(kBobMac, rig.b_mac, s, d);
  return sub;
}

Subject minSubject(Rig& rig, bool tx) {
  Subject sub;
  sub.prog_fd = bpf_program__fd(rig.min->progs.xems_xdp_redirect_min);
  sub.frame = rtpFrame(kBobMac, rig.b_mac, sa("192.0.2.1:30002"), sa("192.0.2.20:50000"));
  sub.ingress = tx ? rig.b_if : rig.a_if;  // egress is xb: ingress xb makes it XDP_TX
  sub.want_action = tx ? XDP_TX : XDP_REDIRECT;
  return sub;
}

// One BPF_PROG_TEST_RUN; returns ns per run (with the truncation correction), < 0 on error.
double runOnce(const Subject& s, uint32_t repeat, std::vector<uint8_t>& out, int* action) {
  xdp_md ctx{};
  ctx.data_end = static_cast<uint32_t>(s.frame.size());
  ctx.ingress_ifindex = s.ingress;
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = s.frame.data(), .data_out = out.data(),
              .data_size_in = static_cast<uint32_t>(s.frame.size()),
              .data_size_out = static_cast<uint32_t>(out.size()), .ctx_in = &ctx,
              .ctx_size_in = sizeof(ctx), .repeat = static_cast<int>(repeat));
  if (bpf_prog_test_run_opts(s.prog_fd, &opts) != 0) {
    return -1;
  }
  *action = static_cast<int>(opts.retval);
  return opts.duration + 0.5;
}

// One live-frame run (BPF_F_TEST_XDP_LIVE_FRAMES, Linux 5.18): frames come from a page pool and
// are really redirected; the veth peer's NAPI receives them and drops them in its XDP program,
// all on this CPU and inside the timed loop. The page pool keeps what the program wrote, so a
// page is reused repeat / pool size times: with 128 pages and repeat 16000 the TTL (255) lasts.
double runLive(const Subject& s, uint32_t repeat) {
  xdp_md ctx{};
  ctx.data_end = static_cast<uint32_t>(s.frame.size());
  ctx.ingress_ifindex = s.ingress;
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = s.frame.data(),
              .data_size_in = static_cast<uint32_t>(s.frame.size()), .ctx_in = &ctx,
              .ctx_size_in = sizeof(ctx), .repeat = static_cast<int>(repeat),
              .flags = BPF_F_TEST_XDP_LIVE_FRAMES);
  if (bpf_prog_test_run_opts(s.prog_fd, &opts) != 0) {
    return -1;
  }
  return opts.duration + 0.5;
}

uint64_t forwarded(Rig& rig) {
  auto c = rig.table.counters();
  return c.ok() ? (*c)[XEMS_CNT_FORWARDED].packets : 0;
}

bool rigReady(benchmark::State& state, Rig& rig) {
  if (!rig.error.empty()) {
    state.SkipWithError(rig.error.c_str());
    return false;
  }
  return true;
}

void measure(benchmark::State& state, Rig& rig, const Subject& sub, uint32_t repeat) {
  std::vector<uint8_t> out(sub.frame.size() + 256);
  const uint64_t fwd0 = forwarded(rig);
  double total = 0;
  int64_t runs = 0;
  for (auto _ : state) {
    int action = -1;
    const double ns = runOnce(sub, repeat, out, &action);
    if (ns < 0 || action != sub.want_action) {
      state.SkipWithError("unexpected test-run result");
      return;
    }
    state.SetIterationTime(ns * 1e-9);  // the Time column is ns per packet
    total += ns;
    ++runs;
  }
  if (sub.relay && sub.want_action != XDP_PASS &&
      forwarded(rig) - fwd0 != static_cast<uint64_t>(runs) * repeat) {
    state.SkipWithError("not every repeat took the forwarding path");
    return;
  }
  state.counters["ns_per_pkt"] = total / static_cast<double>(runs);
  state.SetItemsProcessed(runs * repeat);
}

void BM_XdpRelay(benchmark::State& state) {
  Rig& rig = Rig::get();
  if (!rigReady(state, rig)) {
    return;
  }
  const Subject sub = relaySubject(rig, static_cast<Variant>(state.range(0)));
  measure(state, rig, sub, kRepeat);
}

void BM_RedirectMin(benchmark::State& state) {
  Rig& rig = Rig::get();
  if (!rigReady(state, rig)) {
    return;
  }
  const Subject sub = minSubject(rig, state.range(0) == 0);
  measure(state, rig, sub, static_cast<uint32_t>(state.range(1)));
}

// Relay and baseline interleaved run by run, so drift on a shared machine hits both alike.
// relay_over_min is the ratio of the two means within one repetition.
void BM_RelayOverMin(benchmark::State& state) {
  Rig& rig = Rig::get();
  if (!rigReady(state, rig)) {
    return;
  }
  const auto v = static_cast<Variant>(state.range(0));
  const Subject relay = relaySubject(rig, v);
  const Subject min = minSubject(rig, v == Variant::kTxFixed);
  std::vector<uint8_t> out(relay.frame.size() + 256);
  double r_total = 0;
  double m_total = 0;
  bool flip = false;
  for (auto _ : state) {
    int a1 = -1;
    int a2 = -1;
    double r = 0;
    double m = 0;
    if ((flip = !flip)) {
      r = runOnce(relay, kRepeat, out, &a1);
      m = runOnce(min, kRepeat, out, &a2);
    } else {
      m = runOnce(min, kRepeat, out, &a2);
      r = runOnce(relay, kRepeat, out, &a1);
    }
    if (r < 0 || m < 0 || a1 != relay.want_action || a2 != min.want_action) {
      state.SkipWithError("unexpected test-run result");
      return;
    }
    state.SetIterationTime((r + m) * 1e-9);
    r_total += r;
    m_total += m;
  }
  state.counters["relay_ns"] = r_total / static_cast<double>(state.iterations());
  state.counters["min_ns"] = m_total / static_cast<double>(state.iterations());
  state.counters["delta_ns"] = (r_total - m_total) / static_cast<double>(state.iterations());
  state.counters["relay_over_min"] = r_total / m_total;
}

constexpr uint32_t kLiveRepeat = 16000;

// The same comparison with live frames: the program plus the redirect, the veth transmit and the
// receiving NAPI poll. Closer to what a real interface costs per packet, though veth is cheaper
// than a NIC driver (no DMA, no descriptors).
void BM_LiveRelayOverMin(benchmark::State& state) {
  Rig& rig = Rig::get();
  if (!rigReady(state, rig)) {
    return;
  }
  const auto v = static_cast<Variant>(state.range(0));
  const Subject relay = relaySubject(rig, v);
  const Subject min = minSubject(rig, v == Variant::kTxFixed);
  const uint64_t fwd0 = forwarded(rig);
  double r_total = 0;
  double m_total = 0;
  bool flip = false;
  for (auto _ : state) {
    double r = 0;
    double m = 0;
    if ((flip = !flip)) {
      r = runLive(relay, kLiveRepeat);
      m = runLive(min, kLiveRepeat);
    } else {
      m = runLive(min, kLiveRepeat);
      r = runLive(relay, kLiveRepeat);
    }
    if (r < 0 || m < 0) {
      state.SkipWithError("live test run failed");
      return;
    }
    state.SetIterationTime((r + m) * 1e-9);
    r_total += r;
    m_total += m;
  }
  if (forwarded(rig) - fwd0 != static_cast<uint64_t>(state.iterations()) * kLiveRepeat) {
    state.SkipWithError("not every live frame took the forwarding path");
    return;
  }
  state.counters["relay_ns"] = r_total / static_cast<double>(state.iterations());
  state.counters["min_ns"] = m_total / static_cast<double>(state.iterations());
  state.counters["delta_ns"] = (r_total - m_total) / static_cast<double>(state.iterations());
  state.counters["relay_over_min"] = r_total / m_total;
}

void variantArgs(benchmark::internal::Benchmark* b) {
  b->ArgNames({"variant"});
  for (Variant v : {Variant::kTxFixed, Variant::kRedirectFixed, Variant::kRedirectFib,
                    Variant::kRedirectFib6}) {
    b->Arg(static_cast<int64_t>(v));
  }
}

BENCHMARK(BM_XdpRelay)
    ->Apply(variantArgs)
    ->Arg(static_cast<int64_t>(Variant::kPassNoFlow))
    ->UseManualTime()
    ->Iterations(kIterations);
// (tx 0/redirect 1, repeat): repeat 1e5 cross-checks the truncation correction.
BENCHMARK(BM_RedirectMin)
    ->ArgNames({"redirect", "repeat"})
    ->Args({0, kRepeat})
    ->Args({1, kRepeat})
    ->Args({1, 100000})
    ->UseManualTime()
    ->Iterations(kIterations);
BENCHMARK(BM_RelayOverMin)->Apply(variantArgs)->UseManualTime()->Iterations(kIterations);

BENCHMARK(BM_LiveRelayOverMin)
    ->ArgNames({"variant"})
    ->Arg(static_cast<int64_t>(Variant::kTxFixed))
    ->Arg(static_cast<int64_t>(Variant::kRedirectFixed))
    ->Arg(static_cast<int64_t>(Variant::kRedirectFib))
    ->UseManualTime()
    ->Iterations(200);

}  // namespace

#endif  // XEMS_HAVE_XEMS_BPF
