// datapath/bpf: the ABI conversions, typed map handles, the XdpFlowTable API and pinning.
// Conversion tests need no privileges; the rest load the program (skipped without root).
#include <gtest/gtest.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "datapath/bpf/bpf_map.h"
#include "datapath/bpf/libbpf_log.h"
#include "datapath/bpf/xdp_maps.h"
#include "tests/bpf/bpf_tester.h"

namespace xems::bpftest {
namespace {

using namespace xems::datapath::bpf;  // NOLINT(google-build-using-namespace): test brevity

SockAddr sa(const char* text) {
  return SockAddr::parse(text).value();
}

TEST(XdpAbi, EndpointConversionIsNetworkOrderWithZeroPadding) {
  auto ep = toEndpoint(sa("192.0.2.1:30000"));
  ASSERT_TRUE(ep.ok());
  const uint8_t want_v4[20] = {
      192, 0, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x75, 0x30, XEMS_FAMILY_IPV4, 0};
  EXPECT_EQ(std::memcmp(&*ep, want_v4, sizeof want_v4), 0);
  EXPECT_EQ(fromEndpoint(*ep), sa("192.0.2.1:30000"));

  auto ep6 = toEndpoint(sa("[2001:db8::7]:5004"));
  ASSERT_TRUE(ep6.ok());
  const auto* b = reinterpret_cast<const uint8_t*>(&*ep6);
  EXPECT_EQ(b[0], 0x20);
  EXPECT_EQ(b[1], 0x01);
  EXPECT_EQ(b[15], 0x07);
  EXPECT_EQ(b[16], 0x13);  // 5004 = 0x138c
  EXPECT_EQ(b[17], 0x8c);
  EXPECT_EQ(b[18], XEMS_FAMILY_IPV6);
  EXPECT_EQ(b[19], 0);
  EXPECT_EQ(fromEndpoint(*ep6), sa("[2001:db8::7]:5004"));

  EXPECT_FALSE(toEndpoint(SockAddr()).ok());
  EXPECT_FALSE(fromEndpoint(xems_endpoint{}).valid());
}

TEST(XdpAbi, EncodeFlowSetsFlagsAndChecksFamilies) {
  FlowEntry e{
      .local = sa("203.0.113.1:30000"),
      .mode = SourceMode::kStrict,
      .expected_src = sa("203.0.113.10:40000"),
      .rtp_out = OutputSpec{.src = sa("192.0.2.1:30002"), .dst = sa("192.0.2.20:50000")},
      .rtcp_out = OutputSpec{.src = sa("192.0.2.1:30002"),
                             .dst = sa("192.0.2.20:50001"),
                             .l2 = FixedL2{.ifindex = 3, .vlan_id = 7}},
      .mux = true,
      .allowed_pts = PayloadTypeSet{0, 8, 101, 127},
      .stats_idx = 42,
  };
  auto v = encodeFlow(e, 9);
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(v->version, 9U);
  EXPECT_EQ(v->stats_idx, 42U);
  EXPECT_EQ(v->flags, XEMS_FLOW_F_OFFLOAD | XEMS_FLOW_F_MUX | XEMS_FLOW_F_CHECK_PT);
  EXPECT_EQ(v->src_mode, XEMS_SRC_STRICT);
  EXPECT_EQ(v->pt_allowed[0], 0x101U);       // 0 and 8
  EXPECT_EQ(v->pt_allowed[3], 0x80000020U);  // 101 = 96 + 5, 127 = 96 + 31
  EXPECT_EQ(v->out[0].flags, XEMS_OUT_F_VALID);
  EXPECT_EQ(v->out[1].flags, XEMS_OUT_F_VALID | XEMS_OUT_F_FIXED_L2 | XEMS_OUT_F_VLAN);
  EXPECT_EQ(v->out[1].vlan_id, 7);
  EXPECT_EQ(v->out[1].ifindex, 3U);
  EXPECT_EQ(v->pad0[0] | v->pad0[1] | v->pad0[2] | v->expected_src.pad | v->out[0].pad, 0);

  FlowEntry bad = e;
  bad.rtp_out->dst = sa("[2001:db8::1]:5000");
  EXPECT_FALSE(encodeFlow(bad, 1).ok());  // no IPv4<->IPv6 in XDP
  bad = e;
  bad.rtcp_out->l2->vlan_id = 4096;
  EXPECT_FALSE(encodeFlow(bad, 1).ok());
  bad = e;
  bad.rtcp_socket = true;
  EXPECT_FALSE(encodeFlow(bad, 1).ok());  // RTCP socket and mux at once
  bad = e;
  bad.expected_src.reset();
  EXPECT_FALSE(encodeFlow(bad, 1).ok());  // strict without a source would drop everything
  bad.mode = SourceMode::kLearn;
  EXPECT_TRUE(encodeFlow(bad, 1).ok());  // learning: everything goes up until it is set
  bad = e;
  bad.local = SockAddr();
  EXPECT_FALSE(encodeFlow(bad, 1).ok());
}

TEST(XdpAbi, CounterNamesComeFromTheXMacroList) {
  EXPECT_EQ(counterName(XEMS_CNT_FORWARDED), "forwarded");
  EXPECT_EQ(counterName(XEMS_CNT_PASS_NO_FLOW), "no_flow");
  EXPECT_EQ(counterName(XEMS_CNT_PASS_NO_NEIGH), "no_neighbour");
  EXPECT_EQ(counterName(XEMS_CNT_DROP_FOREIGN), "drop_foreign_source");
  EXPECT_EQ(counterName(XEMS_CNT_MAX), "?");
  EXPECT_FALSE(counterDescription(XEMS_CNT_PASS_STUN).empty());
}

TEST(XdpAbi, MergeFlowStatsSumsAndTakesNewest) {
  xems_flow_stats a{};
  a.packets = 3;
  a.bytes = 300;
  a.last_seen_ns = 50;
  a.last_rtp_ns = 40;
  a.last_ssrc = 1;
  a.last_seq = 10;
  a.last_version = 2;
  xems_flow_stats b{};
  b.packets = 2;
  b.bytes = 20;
  b.rtcp_packets = 1;
  b.foreign_drops = 4;
  b.last_seen_ns = 60;
  b.last_rtp_ns = 30;
  b.last_ssrc = 2;
  b.last_seq = 20;
  b.last_version = 3;
  const xems_flow_stats v[] = {a, b, xems_flow_stats{}};
  const FlowStats s = mergeFlowStats(v);
  EXPECT_EQ(s.packets, 5U);
  EXPECT_EQ(s.bytes, 320U);
  EXPECT_EQ(s.rtcp_packets, 1U);
  EXPECT_EQ(s.foreign_drops, 4U);
  EXPECT_EQ(s.last_seen_ns, 60U);
  EXPECT_EQ(s.last_version, 3U);  // from the CPU that saw the newest packet
  EXPECT_EQ(s.last_ssrc, 1U);     // from the CPU with the newest RTP packet
  EXPECT_EQ(s.last_seq, 10U);

  const uint64_t counts[] = {1, 2, 3};
  EXPECT_EQ(sumPerCpu<uint64_t>(counts), 6U);
}

class XdpMapsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    installLibbpfLogger();
    auto t = BpfTester::load();
    if (!t.ok() && isPermissionError(t.error())) {
      GTEST_SKIP() << "cannot load BPF here: " << t.error().message;
    }
    ASSERT_TRUE(t.ok()) << t.error().message << ": " << t.error().code.message();
    tester_ = std::move(*t);
  }
  std::unique_ptr<BpfTester> tester_;
};

TEST_F(XdpMapsTest, TypedHandleChecksSizesAndMapKind) {
  xdp_relay* s = tester_->skel();
  EXPECT_STREQ(bpf_map__name(s->maps.xems_flows), XEMS_MAP_FLOWS);
  EXPECT_STREQ(bpf_map__name(s->maps.xems_flow_stats), XEMS_MAP_FLOW_STATS);
  EXPECT_STREQ(bpf_map__name(s->maps.xems_counters), XEMS_MAP_COUNTERS);
  EXPECT_STREQ(bpf_map__name(s->maps.xems_tx_ports), XEMS_MAP_TX_PORTS);

  auto wrong_value = BpfMap<FlowKey, uint64_t>::fromMap(s->maps.xems_flows);
  ASSERT_FALSE(wrong_value.ok());
  EXPECT_NE(wrong_value.error().message.find("size"), std::string::npos);
  EXPECT_FALSE((BpfMap<uint64_t, FlowValue>::fromMap(s->maps.xems_flows).ok()));

  auto stats = BpfMap<uint32_t, xems_flow_stats>::fromMap(s->maps.xems_flow_stats);
  ASSERT_TRUE(stats.ok());
  EXPECT_TRUE(stats->perCpu());
  EXPECT_EQ(stats->info().max_entries, static_cast<uint32_t>(XEMS_DEFAULT_MAX_FLOWS));
  EXPECT_FALSE(stats->lookup(0).ok());  // single-value call on a per-CPU map is refused
  auto slot = stats->lookupPerCpu(0);
  ASSERT_TRUE(slot.ok());
  ASSERT_TRUE(slot->has_value());
  EXPECT_EQ((*slot)->size(), static_cast<size_t>(*possibleCpus()));

  auto flows = BpfMap<FlowKey, FlowValue>::fromMap(s->maps.xems_flows);
  ASSERT_TRUE(flows.ok());
  EXPECT_FALSE(flows->perCpu());
  EXPECT_FALSE(flows->lookupPerCpu(FlowKey{}).ok());
  auto none = flows->lookup(FlowKey{});
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  auto erased = flows->erase(FlowKey{});
  ASSERT_FALSE(erased.ok());
  EXPECT_EQ(erased.error().code, std::errc::no_such_file_or_directory);
}

TEST_F(XdpMapsTest, UpdateBatchAndVersions) {
  auto flows = BpfMap<FlowKey, FlowValue>::fromMap(tester_->skel()->maps.xems_flows);
  ASSERT_TRUE(flows.ok());
  std::vector<FlowKey> keys;
  std::vector<FlowValue> values;
  for (uint16_t i = 0; i < 100; ++i) {
    FlowEntry e{.local =
                    SockAddr(IpAddr::parse("10.0.0.1").value(), static_cast<uint16_t>(2000 + i))};
    keys.push_back(makeFlowKey(e.local).value());
    values.push_back(encodeFlow(e, 1000U + i).value());
  }
  auto n = flows->updateBatch(keys, values);
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(*n, 100U);
  auto v = flows->lookup(keys[42]);
  ASSERT_TRUE(v.ok() && v->has_value());
  EXPECT_EQ((*v)->version, 1042U);

  // A table opened over these maps continues above the largest version found.
  auto t = XdpFlowTable::fromMaps({
      .flows = tester_->skel()->maps.xems_flows,
      .flow_stats = tester_->skel()->maps.xems_flow_stats,
      .counters = tester_->skel()->maps.xems_counters,
      .tx_ports = tester_->skel()->maps.xems_tx_ports,
  });
  ASSERT_TRUE(t.ok());
  auto ver = t->upsert(FlowEntry{.local = sa("10.0.0.2:1")});
  ASSERT_TRUE(ver.ok());
  EXPECT_EQ(*ver, 1100U);
  auto ver2 = t->upsert(FlowEntry{.local = sa("10.0.0.2:1")});
  ASSERT_TRUE(ver2.ok());
  EXPECT_EQ(*ver2, 1101U);
  EXPECT_FALSE(t->upsert(FlowEntry{.local = sa("10.0.0.2:1"), .stats_idx = 1U << 30}).ok());

  // Mismatched batch sizes are refused before the syscall.
  EXPECT_FALSE(flows->updateBatch(std::span(keys).first(2), std::span(values).first(1)).ok());
}

// Maps pinned by name under a pin root: a second load (a restarted daemon) reuses them, entries
// and statistics included, and XdpFlowTable::openPinned() reads the same maps. Runs in a private
// mount namespace with its own bpffs, so nothing is left on the host.
TEST(XdpPinning, MapsSurviveReloadAndOpenPinned) {
  if (::unshare(CLONE_NEWNS) != 0) {
    GTEST_SKIP() << "unshare(CLONE_NEWNS): " << std::strerror(errno);
  }
  ASSERT_EQ(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), 0)
      << std::strerror(errno);
  char tmpl[] = "/tmp/xems-bpffs-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string root = tmpl;
  if (::mount("bpf", root.c_str(), "bpf", 0, nullptr) != 0) {
    ::rmdir(root.c_str());
    GTEST_SKIP() << "mount bpffs: " << std::strerror(errno);
  }
  const std::string pins = root + "/xems/test";
  std::filesystem::create_directories(pins);

  const SockAddr local = sa("203.0.113.1:30000");
  {
    auto t = BpfTester::load({.pin_root = pins});
    if (!t.ok() && isPermissionError(t.error())) {
      GTEST_SKIP() << t.error().message;
    }
    ASSERT_TRUE(t.ok()) << t.error().message;
    for (const char* m :
         {XEMS_MAP_FLOWS, XEMS_MAP_FLOW_STATS, XEMS_MAP_COUNTERS, XEMS_MAP_TX_PORTS}) {
      EXPECT_TRUE(std::filesystem::exists(pins + "/" + m)) << m;
    }
    ASSERT_TRUE((*t)->table().upsert(FlowEntry{.local = local, .stats_idx = 3}).ok());
    ASSERT_TRUE((*t)->table().addTxPort(1).ok());  // loopback exists in every namespace
    // LEARN without an expected source: the packet goes up and is counted; the counter must
    // survive the reload too.
    const Bytes frame = [&] {
      PacketBuilder p;
      p.from(sa("203.0.113.10:40000")).to(local).withPayload(rtp(0, 1, 2, 3));
      return p.build();
    }();
    auto r = (*t)->run(frame);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->action, XDP_PASS);
  }  // program and skeleton gone; the pinned maps stay

  auto pinned = XdpFlowTable::openPinned(pins);
  ASSERT_TRUE(pinned.ok()) << pinned.error().message;
  auto key = makeFlowKey(local);
  auto v = pinned->lookup(*key);
  ASSERT_TRUE(v.ok() && v->has_value());
  EXPECT_EQ((*v)->stats_idx, 3U);
  auto c = pinned->counters();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)[XEMS_CNT_PASS_FOREIGN].packets, 1U);

  {
    auto t2 = BpfTester::load({.pin_root = pins});
    ASSERT_TRUE(t2.ok()) << t2.error().message;
    auto v2 = (*t2)->table().lookup(*key);
    ASSERT_TRUE(v2.ok() && v2->has_value());  // reused, not recreated
    auto c2 = (*t2)->table().counters();
    ASSERT_TRUE(c2.ok());
    EXPECT_EQ((*c2)[XEMS_CNT_PASS_FOREIGN].packets, 1U);
    // The devmap too (libbpf 1.1 cannot reuse it by itself; see reusePinnedDevmaps()).
    auto tx = BpfMap<uint32_t, bpf_devmap_val>::fromMap((*t2)->skel()->maps.xems_tx_ports);
    ASSERT_TRUE(tx.ok());
    auto port = tx->lookup(1);
    ASSERT_TRUE(port.ok() && port->has_value());
    EXPECT_EQ((*port)->ifindex, 1U);
  }

  // A handle of the wrong shape on a pinned map is refused.
  EXPECT_FALSE((BpfMap<uint32_t, uint32_t>::openPinned(pins + "/" XEMS_MAP_FLOWS).ok()));
  EXPECT_FALSE(XdpFlowTable::openPinned(root + "/nonexistent").ok());

  ::umount2(root.c_str(), MNT_DETACH);
  ::rmdir(root.c_str());
}

}  // namespace
}  // namespace xems::bpftest
