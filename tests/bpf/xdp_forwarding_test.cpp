// XdpForwardingTable (datapath/bpf/xdp_forwarding.h): what the session layer's flows turn into in
// the real xems_flows map, checked by running real frames through the loaded xdp_relay program
// (BPF_PROG_TEST_RUN, in the private test namespace of bpf_tester.cpp: Alice behind xa, Bob behind
// xb, neighbours resolved). The userspace engine behind the table is a recorder that behaves like
// the worker where the table depends on it: it publishes FlowCounters::learned for
// SourcePolicy::latched and forgets it on relearn; worker latches are simulated by publishing a
// learned endpoint and pushing a latch event, as the engine's on_latch hook does.
#include <gtest/gtest.h>
#include <linux/bpf.h>

#include <poll.h>

#include <map>
#include <thread>

#include "datapath/bpf/xdp_forwarding.h"
#include "tests/bpf/bpf_tester.h"
#include "tests/bpf/test_network.h"

namespace xems::bpftest {
namespace {

using datapath::Clock;
using datapath::FlowId;
using datapath::FlowSpec;
using datapath::bpf::LatchQueue;
using datapath::bpf::SourceMode;
using datapath::bpf::XdpForwardingTable;


const SockAddr kAliceNat = sa("203.0.113.11:41000");
const SockAddr kBobNew = sa("192.0.2.20:50010");
const SockAddr kOurA6 = sa("[2001:db8:a::1]:30010");
const Mac kNatMac = {0x02, 0, 0, 0, 0x0a, 0x11};

constexpr FlowId kA = 1;  // faces Alice: what she sends goes to Bob
constexpr FlowId kB = 2;  // faces Bob

class RecordingTable final : public datapath::ForwardingTable {
 public:
  Status add(FlowSpec spec, UniqueFd) override {
    publish(spec, true);
    specs[spec.id] = spec;
    ++adds;
    return {};
  }
  Status update(const FlowSpec& spec, bool relearn) override {
    auto it = specs.find(spec.id);
    if (it == specs.end()) {
      return XEMS_INVALID("unknown flow");
    }
    FlowSpec s = spec;
    s.counters = it->second.counters;
    publish(s, relearn);
    it->second = s;
    ++updates;
    return {};
  }
  void remove(FlowId id) override { specs.erase(id); }
  void sync() override {}
  uint32_t workerCount() const override { return 1; }

  std::map<FlowId, FlowSpec> specs;
  int adds = 0;
  int updates = 0;
  bool apply_relearn = true;  // false: like a worker that has not applied the update yet

 private:
  void publish(const FlowSpec& s, bool relearn) const {
    std::lock_guard lock(s.counters->mu);
    if (s.source.latched) {
      s.counters->learned = s.source.latched;
    } else if (relearn && apply_relearn) {
      s.counters->learned.reset();
    }
  }
};

class XdpForwardingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    env_ = NetEnv::get(&why);
    if (env_ == nullptr) {
      GTEST_SKIP() << "no test network namespace: " << why;
    }
    auto t = BpfTester::load();
    if (!t.ok()) {
      if (isPermissionError(t.error())) {
        GTEST_SKIP() << "not privileged: " << t.error().message;
      }
      FAIL() << t.error().message;
    }
    tester_ = std::move(*t);
    ASSERT_TRUE(tester_->table().addTxPort(env_->a_if).ok());
    ASSERT_TRUE(tester_->table().addTxPort(env_->b_if).ok());
    auto q = LatchQueue::create();
    ASSERT_TRUE(q.ok());
    queue_ = *q;
    newTable();
  }

  void newTable() {
    auto inner = std::make_unique<RecordingTable>();
    inner_ = inner.get();
    table_ = std::make_unique<XdpForwardingTable>(std::move(inner), tester_->table(), queue_);
  }

  FlowSpec spec(FlowId id, const SockAddr& local, FlowId sink, const SockAddr& advertised,
                std::chrono::seconds window = std::chrono::seconds(3)) {
    FlowSpec s;
    s.id = id;
    s.local = local;
    s.rtp_sink = s.rtcp_sink = sink;
    s.source.learning = EndpointLearning::kDelayed;
    s.source.strict = true;
    s.source.advertised = advertised;
    s.source.learn_until = Clock::now() + window;
    auto& c = counters_[id];
    if (!c) {
      c = std::make_shared<datapath::FlowCounters>();
    }
    s.counters = c;
    return s;
  }

  // A call as the session layer programs it at answer time.
  void addCall(std::chrono::seconds window = std::chrono::seconds(3)) {
    ASSERT_TRUE(table_->add(spec(kA, kOurA, kB, kAlice, window), UniqueFd()).ok());
    ASSERT_TRUE(table_->add(spec(kB, kOurB, kA, kBob, window), UniqueFd()).ok());
  }

  static Bytes frame(const SockAddr& from, const SockAddr& to, const Mac& dst_mac,
                     const Mac& src_mac, uint16_t seq = 1000) {
    PacketBuilder p;
    p.eth(dst_mac, src_mac).from(from).to(to).withPayload(rtp(0, seq, 160u * seq, 0x5eed0001));
    return p.build();
  }
  Bytes fromAlice(uint16_t seq = 1000) { return frame(kAlice, kOurA, kOurAMac, kAliceMac, seq); }
  Bytes fromNat() { return frame(kAliceNat, kOurA, kOurAMac, kNatMac); }
  Bytes fromBob() { return frame(kBob, kOurB, kOurBMac, kBobMac); }

  // Runs one frame, returns the XDP action; `out` gets the frame after the program.
  int run(const Bytes& in, uint32_t ingress, Bytes* out = nullptr) {
    auto r = tester_->run(in, ingress);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    if (!r.ok()) {
      return -1;
    }
    if (out != nullptr) {
      *out = r->out;
    }
    return r->action;
  }

  static Mac dstMac(const Bytes& f) {
    Mac m{};
    std::copy(f.begin(), f.begin() + 6, m.begin());
    return m;
  }

  // The destination of a forwarded frame (IPv4 header at offset 14: daddr at 30, dport at 36).
  static SockAddr destOf(const Bytes& f) {
    char text[64];
    std::snprintf(text, sizeof text, "%u.%u.%u.%u:%u", f[30], f[31], f[32], f[33],
                  (f[36] << 8) | f[37]);
    return sa(text);
  }

  datapath::bpf::FlowValue entry(const SockAddr& local) {
    auto key = datapath::bpf::makeFlowKey(local);
    EXPECT_TRUE(key.ok());
    auto v = tester_->table().lookup(*key);
    EXPECT_TRUE(v.ok() && v->has_value()) << "no entry for " << local.toString();
    return v.ok() && v->has_value() ? **v : datapath::bpf::FlowValue{};
  }
  bool hasEntry(const SockAddr& local) {
    auto v = tester_->table().lookup(*datapath::bpf::makeFlowKey(local));
    return v.ok() && v->has_value();
  }

  // Maps with room for exactly one call's two flows; that call has just ended, so both stats
  // slots are resting (500 ms) when the test goes on.
  void endACallAtFullCapacity() {
    auto small = BpfTester::load(LoadOptions{.max_flows = 2});
    ASSERT_TRUE(small.ok()) << small.error().message;
    tester_ = std::move(*small);
    ASSERT_TRUE(tester_->table().addTxPort(env_->a_if).ok());
    ASSERT_TRUE(tester_->table().addTxPort(env_->b_if).ok());
    newTable();
    addCall();
    table_->remove(kA);
    table_->remove(kB);
  }

  void workerLatches(FlowId id, const SockAddr& src) {
    {
      std::lock_guard lock(counters_[id]->mu);
      counters_[id]->learned = src;
    }
    queue_->push(id);
  }

  const NetEnv* env_ = nullptr;
  std::unique_ptr<BpfTester> tester_;
  std::shared_ptr<LatchQueue> queue_;
  RecordingTable* inner_ = nullptr;
  std::unique_ptr<XdpForwardingTable> table_;
  std::map<FlowId, std::shared_ptr<datapath::FlowCounters>> counters_;
};

TEST_F(XdpForwardingTest, FirstPacketAfterAnswerIsForwardedByXdp) {
  addCall();
  EXPECT_EQ(inner_->adds, 2);  // the worker has the flows too, for whatever XDP passes up
  EXPECT_TRUE(table_->kernelized(kA));
  EXPECT_TRUE(counters_[kA]->kernelized.load());
  Bytes out;
  ASSERT_EQ(run(fromAlice(), env_->a_if, &out), XDP_REDIRECT);
  EXPECT_EQ(destOf(out), kBob);
  ASSERT_EQ(run(fromBob(), env_->b_if, &out), XDP_REDIRECT);
  EXPECT_EQ(destOf(out), kAlice);
  // Learning: a source that is not the advertised one goes up to the worker.
  EXPECT_EQ(entry(kOurA).src_mode, XEMS_SRC_LEARN);
  EXPECT_EQ(run(fromNat(), env_->a_if), XDP_PASS);
}

TEST_F(XdpForwardingTest, KernelCountersReachTheFlowCounters) {
  addCall();
  for (uint16_t i = 0; i < 5; ++i) {
    ASSERT_EQ(run(fromAlice(1000 + i), env_->a_if), XDP_REDIRECT);
  }
  table_->poll();
  const auto& c = *counters_[kA];
  EXPECT_EQ(c.kernel_packets.load(), 5u);
  EXPECT_EQ(c.kernel_bytes.load(), 5u * (12 + 160));
  EXPECT_GT(c.kernel_last_ns.load(), 0);
  EXPECT_LE(c.kernel_last_ns.load(), Clock::now().time_since_epoch().count());
  EXPECT_EQ(c.packets.load(), 0u);  // the worker never saw them
}

TEST_F(XdpForwardingTest, ForwardedAdvertisedSourceConfirmsAndLocks) {
  addCall();
  ASSERT_EQ(run(fromAlice(), env_->a_if), XDP_REDIRECT);
  table_->poll();
  EXPECT_EQ(table_->offloadStats().confirmed, 1u);
  // The worker is told (it would have locked on that packet itself) ...
  ASSERT_TRUE(inner_->specs[kA].source.latched.has_value());
  EXPECT_EQ(*inner_->specs[kA].source.latched, kAlice);
  // ... and the kernel now drops foreign sources instead of passing them up.
  EXPECT_EQ(entry(kOurA).src_mode, XEMS_SRC_STRICT);
  EXPECT_EQ(run(fromNat(), env_->a_if), XDP_DROP);
  table_->poll();
  EXPECT_EQ(counters_[kA]->kernel_dropped_source.load(), 1u);
}

// The order CallRegistry programs an offer and its answer in: Alice's flow first without a
// destination, then Bob's, then both again with relearn (neither has latched). Alice's entry is
// rewritten by Bob's update before her own relearn arrives with an unchanged value.
TEST_F(XdpForwardingTest, ConfirmationAfterTheRegistrysAnswerSequence) {
  FlowSpec a = spec(kA, kOurA, kB, kAlice);
  ASSERT_TRUE(table_->add(a, UniqueFd()).ok());
  FlowSpec b = spec(kB, kOurB, kA, kBob);
  ASSERT_TRUE(table_->add(b, UniqueFd()).ok());
  ASSERT_TRUE(table_->update(b, true).ok());
  ASSERT_TRUE(table_->update(a, true).ok());
  ASSERT_EQ(run(fromAlice(), env_->a_if), XDP_REDIRECT);
  ASSERT_EQ(run(fromBob(), env_->b_if), XDP_REDIRECT);
  table_->poll();
  EXPECT_EQ(table_->offloadStats().confirmed, 2u);
  EXPECT_EQ(entry(kOurA).src_mode, XEMS_SRC_STRICT);
  EXPECT_EQ(entry(kOurB).src_mode, XEMS_SRC_STRICT);
  EXPECT_EQ(run(fromNat(), env_->a_if), XDP_DROP);
}

TEST_F(XdpForwardingTest, RelearnNeedsNewPacketsToConfirm) {
  addCall();
  ASSERT_EQ(run(fromAlice(), env_->a_if), XDP_REDIRECT);
  FlowSpec a = spec(kA, kOurA, kB, kAlice);
  ASSERT_TRUE(table_->update(a, true).ok());  // re-INVITE: a new window before the poll
  table_->poll();
  EXPECT_EQ(table_->offloadStats().confirmed, 0u);  // that packet was before the window
  ASSERT_EQ(run(fromAlice(1001), env_->a_if), XDP_REDIRECT);
  table_->poll();
  EXPECT_EQ(table_->offloadStats().confirmed, 1u);
}

// What a worker asks (EngineOptions::latch_veto) before it latches a source XDP never showed it.
TEST_F(XdpForwardingTest, WorkersCanSeeThatXdpHeardThePeer) {
  addCall();
  auto confirmed = [&] { return XdpForwardingTable::kernelConfirmed(tester_->table(), *counters_[kA]); };
  EXPECT_FALSE(confirmed().has_value());  // nothing forwarded yet: a NAT'd peer may latch
  ASSERT_EQ(run(fromAlice(), env_->a_if), XDP_REDIRECT);
  ASSERT_TRUE(confirmed().has_value());
  EXPECT_EQ(*confirmed(), kAlice);
  ASSERT_TRUE(table_->update(spec(kA, kOurA, kB, kAlice), true).ok());  // a new window
  EXPECT_FALSE(confirmed().has_value());
  ASSERT_EQ(run(fromAlice(1001), env_->a_if), XDP_REDIRECT);
  EXPECT_TRUE(confirmed().has_value());
  table_->poll();  // confirmed by the table: nothing left for the workers to ask
  EXPECT_FALSE(confirmed().has_value());
}

TEST_F(XdpForwardingTest, WorkerLatchOverruledWhenPeerAlreadySpokeThroughXdp) {
  addCall();
  ASSERT_EQ(run(fromAlice(), env_->a_if), XDP_REDIRECT);
  // A spoofed packet reached the worker before the next poll and latched there.
  workerLatches(kA, kAliceNat);
  table_->onLatchEvents();
  EXPECT_EQ(table_->offloadStats().rejected_latches, 1u);
  EXPECT_EQ(*inner_->specs[kA].source.latched, kAlice);
  Bytes out;
  ASSERT_EQ(run(fromBob(), env_->b_if, &out), XDP_REDIRECT);
  EXPECT_EQ(destOf(out), kAlice);  // Bob's media never went to the spoofer
}

TEST_F(XdpForwardingTest, NatLatchRedirectsBothDirections) {
  addCall();
  ASSERT_EQ(run(fromNat(), env_->a_if), XDP_PASS);  // the worker sees it and latches
  workerLatches(kA, kAliceNat);
  table_->onLatchEvents();
  EXPECT_EQ(table_->offloadStats().rejected_latches, 0u);
  Bytes out;
  ASSERT_EQ(run(fromNat(), env_->a_if, &out), XDP_REDIRECT);
  EXPECT_EQ(destOf(out), kBob);
  ASSERT_EQ(run(fromBob(), env_->b_if, &out), XDP_REDIRECT);
  EXPECT_EQ(destOf(out), kAliceNat);
}

TEST_F(XdpForwardingTest, LearningWindowOverLocksTheAdvertisedEndpoint) {
  addCall(std::chrono::seconds(0));
  EXPECT_EQ(entry(kOurA).src_mode, XEMS_SRC_STRICT);
  EXPECT_EQ(run(fromNat(), env_->a_if), XDP_DROP);
  EXPECT_EQ(run(fromAlice(), env_->a_if), XDP_REDIRECT);
}

TEST_F(XdpForwardingTest, ReinviteRewritesTheEntryInPlace) {
  addCall();
  const uint32_t v1 = entry(kOurA).version;
  const uint64_t erases = table_->offloadStats().erases;
  // Bob moves to another port (re-INVITE): his flow relearns, Alice's output follows.
  FlowSpec s = spec(kB, kOurB, kA, kBobNew);
  s.counters = counters_[kB];
  ASSERT_TRUE(table_->update(s, true).ok());
  EXPECT_GT(entry(kOurA).version, v1);
  EXPECT_EQ(table_->offloadStats().erases, erases);  // never removed, so never a gap
  Bytes out;
  ASSERT_EQ(run(fromAlice(), env_->a_if, &out), XDP_REDIRECT);
  EXPECT_EQ(destOf(out), kBobNew);
}

TEST_F(XdpForwardingTest, RelearnIgnoresTheLatchTheWorkerHasNotDroppedYet) {
  addCall();
  workerLatches(kB, kBob);
  table_->onLatchEvents();
  // re-INVITE to a new port; a real worker clears `learned` only when it applies the update,
  // a moment after update() returned.
  inner_->apply_relearn = false;
  FlowSpec s = spec(kB, kOurB, kA, kBobNew);
  s.counters = counters_[kB];
  ASSERT_TRUE(table_->update(s, true).ok());
  Bytes out;
  ASSERT_EQ(run(fromAlice(), env_->a_if, &out), XDP_REDIRECT);
  EXPECT_EQ(destOf(out), kBobNew);
}

TEST_F(XdpForwardingTest, HoldAndPayloadWorkStayInUserspace) {
  addCall();
  FlowSpec s = spec(kA, kOurA, kB, kAlice);
  s.counters = counters_[kA];
  s.send_enabled = false;
  ASSERT_TRUE(table_->update(s, false).ok());
  EXPECT_FALSE(table_->kernelized(kA));
  EXPECT_EQ(run(fromAlice(), env_->a_if), XDP_PASS);
  s.send_enabled = true;
  s.offload = false;  // e.g. recording or transcoding
  ASSERT_TRUE(table_->update(s, false).ok());
  EXPECT_FALSE(table_->kernelized(kA));
  EXPECT_EQ(run(fromAlice(), env_->a_if), XDP_PASS);
  s.offload = true;
  ASSERT_TRUE(table_->update(s, false).ok());
  EXPECT_TRUE(table_->kernelized(kA));
  EXPECT_EQ(run(fromAlice(), env_->a_if), XDP_REDIRECT);
}

TEST_F(XdpForwardingTest, FamilyTranslationIsLeftToTheWorker) {
  ASSERT_TRUE(table_->add(spec(kA, kOurA6, kB, sa("[2001:db8:a::10]:40000")), UniqueFd()).ok());
  ASSERT_TRUE(table_->add(spec(kB, kOurB, kA, kBob), UniqueFd()).ok());
  EXPECT_FALSE(table_->kernelized(kA));  // IPv6 in, IPv4 out
  EXPECT_FALSE(table_->kernelized(kB));
}

TEST_F(XdpForwardingTest, RemoveErasesAndUnhooksThePeer) {
  addCall();
  table_->remove(kA);
  EXPECT_FALSE(hasEntry(kOurA));
  EXPECT_EQ(run(fromAlice(), env_->a_if), XDP_PASS);
  EXPECT_FALSE(table_->kernelized(kB));  // nowhere to send Bob's media now
  EXPECT_EQ(run(fromBob(), env_->b_if), XDP_PASS);
}

// At full capacity a deleted call's stats slots cool for 500 ms; a call set up meanwhile starts
// in userspace and is offloaded once poll() finds a slot free, not left there for good (perf:
// 19 % of packets stayed in userspace when 4000 calls were replaced by 4000 new ones at once).
TEST_F(XdpForwardingTest, FlowsWithoutAStatsSlotAreOffloadedWhenOneComesFree) {
  ASSERT_NO_FATAL_FAILURE(endACallAtFullCapacity());
  addCall();  // the old slots cool: no slot, userspace only
  EXPECT_FALSE(table_->kernelized(kA));
  EXPECT_EQ(run(fromAlice(), env_->a_if), XDP_PASS);
  EXPECT_EQ(table_->offloadStats().no_stats_slot, 2u);
  table_->poll();  // too early: still cooling
  EXPECT_FALSE(table_->kernelized(kA));
  std::this_thread::sleep_for(std::chrono::milliseconds(550));
  table_->poll();
  EXPECT_EQ(table_->offloadStats().late_stats_slot, 2u);
  EXPECT_TRUE(table_->kernelized(kA));
  EXPECT_TRUE(table_->kernelized(kB));
  EXPECT_EQ(run(fromAlice(), env_->a_if), XDP_REDIRECT);
}

// ... but a flow whose packets already went through the worker stays there: one still queued in
// its socket would reach the peer after newer ones forwarded by XDP (perf: 1-8 reordered packets
// per stream when streams moved mid-call).
TEST_F(XdpForwardingTest, AFlowThatCarriedPacketsInUserspaceIsNotMovedToXdp) {
  ASSERT_NO_FATAL_FAILURE(endACallAtFullCapacity());
  addCall();
  counters_[kA]->packets.store(3);  // Alice's media is flowing through the worker
  std::this_thread::sleep_for(std::chrono::milliseconds(550));
  table_->poll();
  EXPECT_FALSE(table_->kernelized(kA));
  EXPECT_EQ(run(fromAlice(), env_->a_if), XDP_PASS);
  EXPECT_TRUE(table_->kernelized(kB));  // Bob's had not started: it moves
  EXPECT_EQ(table_->offloadStats().late_stats_slot, 1u);
}

// A call set up once the slots of ended ones have rested takes them at once, without waiting for
// the next poll(): no packet goes through userspace first.
TEST_F(XdpForwardingTest, AddTakesSlotsThatHaveRested) {
  ASSERT_NO_FATAL_FAILURE(endACallAtFullCapacity());
  std::this_thread::sleep_for(std::chrono::milliseconds(550));
  addCall();  // no poll() in between
  EXPECT_TRUE(table_->kernelized(kA));
  EXPECT_EQ(table_->offloadStats().no_stats_slot, 0u);
  EXPECT_EQ(run(fromAlice(), env_->a_if), XDP_REDIRECT);
}

TEST_F(XdpForwardingTest, RestartAdoptsEntriesAndKeepsForwarding) {
  addCall();
  ASSERT_EQ(run(fromAlice(), env_->a_if), XDP_REDIRECT);
  ASSERT_EQ(run(fromAlice(1001), env_->a_if), XDP_REDIRECT);
  // A stale entry of some call the restarted daemon will not restore.
  ASSERT_TRUE(table_->add(spec(7, sa("203.0.113.1:30020"), kB, kAlice), UniqueFd()).ok());
  const uint32_t slot_a = entry(kOurA).stats_idx;

  // "kill -9": the table goes without removing anything (its destructor leaves the maps alone,
  // like a killed process); the maps stay (pinned in production).
  table_.reset();
  newTable();
  ASSERT_EQ(run(fromAlice(1002), env_->a_if), XDP_REDIRECT);  // nobody home, still forwarded
  ASSERT_TRUE(table_->adoptExisting().ok());
  EXPECT_EQ(table_->offloadStats().adopted, 3u);
  counters_.clear();
  // The restored call: new flow ids, same sockets.
  ASSERT_TRUE(table_->add(spec(11, kOurA, 12, kAlice), UniqueFd()).ok());
  // Alice's flow is back, Bob's not yet: her old entry must keep forwarding meanwhile.
  ASSERT_EQ(run(fromAlice(1002), env_->a_if), XDP_REDIRECT);
  ASSERT_TRUE(table_->add(spec(12, kOurB, 11, kBob), UniqueFd()).ok());
  table_->dropUnclaimed();
  EXPECT_EQ(table_->offloadStats().claimed, 2u);
  EXPECT_EQ(table_->offloadStats().stale_removed, 1u);
  EXPECT_FALSE(hasEntry(sa("203.0.113.1:30020")));
  EXPECT_EQ(entry(kOurA).stats_idx, slot_a);  // same slot: the counters go on
  // The kernel had forwarded from Alice: she is the confirmed peer of the restored flow.
  ASSERT_TRUE(inner_->specs[11].source.latched.has_value());
  EXPECT_EQ(*inner_->specs[11].source.latched, kAlice);
  Bytes out;
  ASSERT_EQ(run(fromAlice(1003), env_->a_if, &out), XDP_REDIRECT);
  EXPECT_EQ(destOf(out), kBob);
  table_->poll();
  EXPECT_EQ(counters_[11]->kernel_packets.load(), 5u);
}

TEST_F(XdpForwardingTest, DaemonResolvedNextHopReplacesTheFibLookup) {
  const Mac resolved = {0x02, 0, 0, 0, 0x0b, 0x99};  // not the neighbour table's 0x20
  bool give = true;
  table_->setNextHops([&](const SockAddr& src, const SockAddr& dst)
                          -> std::optional<datapath::bpf::FixedL2> {
    if (!give || !(src == kOurB) || !(dst == kBob)) {
      return std::nullopt;
    }
    return datapath::bpf::FixedL2{.ifindex = env_->b_if, .src_mac = kOurBMac, .dst_mac = resolved};
  });
  addCall();
  Bytes out;
  ASSERT_EQ(run(fromAlice(), env_->a_if, &out), XDP_REDIRECT);
  EXPECT_EQ(dstMac(out), resolved);
  EXPECT_NE(entry(kOurA).out[0].flags & XEMS_OUT_F_FIXED_L2, 0u);
  // The neighbour goes away: the next poll falls back to the program's own lookup.
  give = false;
  table_->poll();
  EXPECT_EQ(entry(kOurA).out[0].flags & XEMS_OUT_F_FIXED_L2, 0u);
  ASSERT_EQ(run(fromAlice(), env_->a_if, &out), XDP_REDIRECT);
  EXPECT_EQ(dstMac(out), kBobMac);
}

TEST_F(XdpForwardingTest, LatchQueueWakesAnEventLoop) {
  queue_->push(5);
  queue_->push(6);
  pollfd pfd{queue_->fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&pfd, 1, 1000), 1);
  EXPECT_EQ(queue_->drain(), (std::vector<FlowId>{5, 6}));
  EXPECT_EQ(::poll(&pfd, 1, 0), 0);
}

}  // namespace
}  // namespace xems::bpftest
