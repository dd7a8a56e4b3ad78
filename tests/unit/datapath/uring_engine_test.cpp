// UringEngine over real UDP sockets on loopback. Two "phones" A and B are plain sockets; the
// engine owns the A-facing and B-facing sockets of a call. Every wait is bounded (poll with a
// timeout, or a deadline loop on a condition); nothing asserts on timing.
#include "datapath/uring_engine.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "datapath/rtp.h"

namespace xems::datapath {
namespace {

using namespace std::chrono_literals;

constexpr int kRecvTimeoutMs = 3000;

struct Udp {
  UniqueFd fd;
  SockAddr addr;
};

Udp bindUdp(const char* ip = "127.0.0.1", uint16_t port = 0) {
  Udp u;
  auto a = IpAddr::parse(ip);
  EXPECT_TRUE(a.has_value());
  const SockAddr want(*a, port);
  u.fd.reset(::socket(want.family() == Family::kIpv6 ? AF_INET6 : AF_INET,
                      SOCK_DGRAM | SOCK_CLOEXEC, 0));
  EXPECT_TRUE(u.fd.valid());
  if (::bind(u.fd.get(), want.sa(), want.len()) != 0) {
    ADD_FAILURE() << "bind " << want.toString() << ": " << std::strerror(errno);
    u.fd.reset();
    return u;
  }
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ::getsockname(u.fd.get(), reinterpret_cast<sockaddr*>(&ss), &len);
  u.addr = *SockAddr::fromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
  return u;
}

std::vector<std::byte> rtpPacket(uint16_t seq, uint32_t ssrc = 0x11223344, uint8_t pt = 0,
                                 size_t payload = 160) {
  std::vector<std::byte> p(12 + payload, std::byte{0x5a});
  p[0] = std::byte{0x80};
  p[1] = std::byte{pt};
  p[2] = std::byte(seq >> 8);
  p[3] = std::byte(seq & 0xff);
  const uint32_t ts = seq * 160u;
  for (int i = 0; i < 4; ++i) {
    p[4 + i] = std::byte((ts >> (24 - 8 * i)) & 0xff);
    p[8 + i] = std::byte((ssrc >> (24 - 8 * i)) & 0xff);
  }
  return p;
}

std::vector<std::byte> rtcpPacket(uint32_t ssrc) {  // empty receiver report
  std::vector<std::byte> p(8);
  p[0] = std::byte{0x80};
  p[1] = std::byte{201};
  p[3] = std::byte{1};
  for (int i = 0; i < 4; ++i) {
    p[4 + i] = std::byte((ssrc >> (24 - 8 * i)) & 0xff);
  }
  return p;
}

void sendTo(const Udp& from, const SockAddr& to, const std::vector<std::byte>& data) {
  const ssize_t n = ::sendto(from.fd.get(), data.data(), data.size(), 0, to.sa(), to.len());
  ASSERT_EQ(n, static_cast<ssize_t>(data.size())) << std::strerror(errno);
}

struct Datagram {
  std::vector<std::byte> data;
  SockAddr from;
};

std::optional<Datagram> recvWait(const Udp& s, int timeout_ms = kRecvTimeoutMs) {
  pollfd pfd{s.fd.get(), POLLIN, 0};
  if (::poll(&pfd, 1, timeout_ms) != 1) {
    return std::nullopt;
  }
  Datagram d;
  d.data.resize(4096);
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  const ssize_t n = ::recvfrom(s.fd.get(), d.data.data(), d.data.size(), MSG_DONTWAIT,
                               reinterpret_cast<sockaddr*>(&ss), &len);
  if (n < 0) {
    return std::nullopt;
  }
  d.data.resize(static_cast<size_t>(n));
  d.from = *SockAddr::fromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
  return d;
}

// Nothing is queued right now. Only meaningful once the engine provably handled everything that
// could still arrive (see the marker packets in the tests).
bool nothingQueued(const Udp& s) {
  std::byte b[64];
  const ssize_t n = ::recv(s.fd.get(), b, sizeof b, MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

uint16_t seqOf(const Datagram& d) {
  auto h = rtp::parseRtp(d.data);
  return h ? h->seq : 0xffff;
}

template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 3s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) {
      return true;
    }
    std::this_thread::sleep_for(1ms);
  }
  return pred();
}

SourcePolicy policy(EndpointLearning mode, bool strict, std::optional<SockAddr> advertised,
                    Clock::time_point learn_until = {}) {
  SourcePolicy p;
  p.learning = mode;
  p.strict = strict;
  p.advertised = std::move(advertised);
  p.learn_until = learn_until;
  return p;
}

// One side of a call: the phone's sockets and the engine's sockets facing it.
struct Leg {
  Udp phone_rtp;
  Udp phone_rtcp;
  SockAddr eng_rtp;
  SockAddr eng_rtcp;
  FlowId rtp_id = 0;
  FlowId rtcp_id = 0;
  std::shared_ptr<FlowCounters> rtp_c = std::make_shared<FlowCounters>();
  std::shared_ptr<FlowCounters> rtcp_c = std::make_shared<FlowCounters>();
  FlowSpec rtp_spec;
  FlowSpec rtcp_spec;
};

struct Call {
  Leg a;
  Leg b;
};

struct CallOptions {
  uint32_t worker = 0;
  SourcePolicy a_policy = policy(EndpointLearning::kImmediate, true, std::nullopt);
  SourcePolicy b_policy = policy(EndpointLearning::kImmediate, true, std::nullopt);
  bool advertise_phones = true;  // fill advertised with the phone addresses if unset
  bool a_mux = false;
  bool send_enabled = true;
};

class UringEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto st = UringEngine::probe();
    if (!st.ok()) {
      GTEST_SKIP() << "io_uring engine unsupported here: " << st.error().message;
    }
  }

  static std::unique_ptr<UringEngine> makeEngine(EngineOptions o = {}) {
    auto r = UringEngine::create(o);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? std::move(r).value() : nullptr;
  }

  static FlowSpec makeSpec(FlowId id, uint32_t worker, const SockAddr& local, bool rtcp,
                           FlowId rtp_sink, FlowId rtcp_sink, bool mux, SourcePolicy pol,
                           std::shared_ptr<FlowCounters> counters, bool send_enabled = true) {
    FlowSpec s;
    s.id = id;
    s.worker = worker;
    s.local = local;
    s.rtcp = rtcp;
    s.rtp_sink = rtp_sink;
    s.rtcp_sink = rtcp_sink;
    s.mux = mux;
    s.send_enabled = send_enabled;
    s.source = std::move(pol);
    s.counters = std::move(counters);
    return s;
  }

  // Wires a call: A-facing RTP/RTCP (ids base+1, base+2), B-facing RTP/RTCP (base+3, base+4).
  // With a_mux, A uses one muxed RTP socket (no A-facing RTCP flow); B never muxes.
  static Call makeCall(UringEngine& e, FlowId base, const CallOptions& o = {}) {
    Call c;
    c.a.phone_rtp = bindUdp();
    c.a.phone_rtcp = bindUdp();
    c.b.phone_rtp = bindUdp();
    c.b.phone_rtcp = bindUdp();
    Udp ea_rtp = bindUdp();
    Udp ea_rtcp = bindUdp();
    Udp eb_rtp = bindUdp();
    Udp eb_rtcp = bindUdp();
    c.a.eng_rtp = ea_rtp.addr;
    c.a.eng_rtcp = ea_rtcp.addr;
    c.b.eng_rtp = eb_rtp.addr;
    c.b.eng_rtcp = eb_rtcp.addr;
    c.a.rtp_id = base + 1;
    c.a.rtcp_id = o.a_mux ? 0 : base + 2;
    c.b.rtp_id = base + 3;
    c.b.rtcp_id = base + 4;

    SourcePolicy ap = o.a_policy;
    SourcePolicy bp = o.b_policy;
    SourcePolicy ap_rtcp = ap;
    SourcePolicy bp_rtcp = bp;
    if (o.advertise_phones) {
      if (!ap.advertised) {
        ap.advertised = c.a.phone_rtp.addr;
        ap_rtcp.advertised = c.a.phone_rtcp.addr;
      }
      if (!bp.advertised) {
        bp.advertised = c.b.phone_rtp.addr;
        bp_rtcp.advertised = c.b.phone_rtcp.addr;
      }
    }
    const FlowId a_rtcp_target = o.a_mux ? c.a.rtp_id : c.a.rtcp_id;
    c.a.rtp_spec = makeSpec(c.a.rtp_id, o.worker, c.a.eng_rtp, false, c.b.rtp_id,
                            o.a_mux ? c.b.rtcp_id : 0, o.a_mux, ap, c.a.rtp_c, o.send_enabled);
    c.b.rtp_spec = makeSpec(c.b.rtp_id, o.worker, c.b.eng_rtp, false, c.a.rtp_id, 0, false, bp,
                            c.b.rtp_c, o.send_enabled);
    c.b.rtcp_spec = makeSpec(c.b.rtcp_id, o.worker, c.b.eng_rtcp, true, a_rtcp_target, 0, false,
                             bp_rtcp, c.b.rtcp_c, o.send_enabled);
    EXPECT_TRUE(e.add(c.a.rtp_spec, std::move(ea_rtp.fd)).ok());
    EXPECT_TRUE(e.add(c.b.rtp_spec, std::move(eb_rtp.fd)).ok());
    EXPECT_TRUE(e.add(c.b.rtcp_spec, std::move(eb_rtcp.fd)).ok());
    if (!o.a_mux) {
      c.a.rtcp_spec = makeSpec(c.a.rtcp_id, o.worker, c.a.eng_rtcp, true, c.b.rtcp_id, 0, false,
                               ap_rtcp, c.a.rtcp_c, o.send_enabled);
      EXPECT_TRUE(e.add(c.a.rtcp_spec, std::move(ea_rtcp.fd)).ok());
    }
    return c;
  }

  // Sends `count` RTP packets from `from` to `to` in windows of `window`, receiving each window
  // at `rx` before sending the next (so no socket queue can overflow), and checks order, count
  // and the source address the receiver sees.
  static void pump(const Udp& from, const SockAddr& to, const Udp& rx, const SockAddr& want_src,
                   uint16_t first_seq, int count, uint32_t ssrc = 0x11223344, int window = 50) {
    uint16_t next_tx = first_seq;
    uint16_t next_rx = first_seq;
    int sent = 0;
    int got = 0;
    while (got < count) {
      for (int i = 0; i < window && sent < count; ++i, ++sent) {
        sendTo(from, to, rtpPacket(next_tx++, ssrc));
      }
      while (got < sent) {
        auto d = recvWait(rx);
        ASSERT_TRUE(d.has_value()) << "packet " << got << " of " << count << " never arrived";
        ASSERT_EQ(seqOf(*d), next_rx) << "out of order at packet " << got;
        ASSERT_EQ(d->from, want_src);
        ++next_rx;
        ++got;
      }
    }
  }

  static uint64_t load(const std::atomic<uint64_t>& a) {
    return a.load(std::memory_order_relaxed);
  }
  static std::optional<SockAddr> learned(const FlowCounters& c) {
    std::lock_guard lock(c.mu);
    return c.learned;
  }
};

TEST_F(UringEngineTest, ProbeAndBadOptions) {
  EXPECT_TRUE(UringEngine::supported());
  EXPECT_FALSE(UringEngine::create(0).ok());
  EngineOptions o;
  o.buffers_per_worker = 1000;  // not a power of two
  EXPECT_FALSE(UringEngine::create(o).ok());
}

TEST_F(UringEngineTest, RtpBothWaysInOrderFromTheRightSockets) {
  auto e = makeEngine();
  Call c = makeCall(*e, 100);
  pump(c.a.phone_rtp, c.a.eng_rtp, c.b.phone_rtp, c.b.eng_rtp, 1000, 500);
  pump(c.b.phone_rtp, c.b.eng_rtp, c.a.phone_rtp, c.a.eng_rtp, 50000, 500, 0x55667788);
  // RTCP both ways on the separate ports.
  sendTo(c.a.phone_rtcp, c.a.eng_rtcp, rtcpPacket(0x11223344));
  auto r = recvWait(c.b.phone_rtcp);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->from, c.b.eng_rtcp);
  EXPECT_EQ(rtp::classify(r->data), rtp::PacketKind::kRtcp);
  sendTo(c.b.phone_rtcp, c.b.eng_rtcp, rtcpPacket(0x55667788));
  r = recvWait(c.a.phone_rtcp);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->from, c.a.eng_rtcp);

  e->sync();
  const FlowCounters& ca = *c.a.rtp_c;
  EXPECT_EQ(load(ca.packets), 500u);
  EXPECT_EQ(load(ca.forwarded), 500u);
  EXPECT_EQ(load(ca.bytes), 500u * 172);
  EXPECT_EQ(load(ca.dropped_source), 0u);
  EXPECT_EQ(load(ca.malformed), 0u);
  EXPECT_EQ(load(ca.errors), 0u);
  EXPECT_GT(ca.last_packet_ns.load(), 0);
  EXPECT_EQ(load(c.b.rtp_c->forwarded), 500u);
  EXPECT_EQ(load(c.a.rtcp_c->packets), 1u);
  EXPECT_EQ(load(c.a.rtcp_c->malformed), 0u);
  EXPECT_EQ(learned(ca), c.a.phone_rtp.addr);
  EXPECT_EQ(learned(*c.b.rtp_c), c.b.phone_rtp.addr);
  {
    std::lock_guard lock(ca.mu);
    ASSERT_EQ(ca.ssrc_count, 1u);
    EXPECT_EQ(ca.ssrc[0].ssrc, 0x11223344u);
    EXPECT_EQ(ca.ssrc[0].packets, 500u);
    EXPECT_EQ(ca.ssrc[0].lost(), 0);
  }
  {
    std::lock_guard lock(c.a.rtcp_c->mu);
    EXPECT_EQ(c.a.rtcp_c->ssrc_count, 0u);  // RTCP is not RTP-parsed
  }
  const WorkerStats ws = e->workerStats(0);
  EXPECT_EQ(ws.packets, 1002u);
  EXPECT_EQ(ws.send_errors, 0u);
  EXPECT_TRUE(e->workerCpuNs(0).has_value());
  EXPECT_GT(e->workerTid(0), 0);
}

TEST_F(UringEngineTest, NoPeerYetCountsDroppedNoSink) {
  auto e = makeEngine();
  CallOptions o;
  o.advertise_phones = false;  // B has not told us an address and has not sent anything
  Call c = makeCall(*e, 200, o);
  sendTo(c.a.phone_rtp, c.a.eng_rtp, rtpPacket(1));
  ASSERT_TRUE(eventually([&] { return load(c.a.rtp_c->dropped_no_sink) == 1; }));
  // Once B sends (and latches), A's packets find their way.
  pump(c.b.phone_rtp, c.b.eng_rtp, c.a.phone_rtp, c.a.eng_rtp, 10, 1);
  pump(c.a.phone_rtp, c.a.eng_rtp, c.b.phone_rtp, c.b.eng_rtp, 2, 5);
}

TEST_F(UringEngineTest, StrictSourceNoBleed) {
  auto e = makeEngine();
  Call c = makeCall(*e, 300);  // immediate + strict
  pump(c.a.phone_rtp, c.a.eng_rtp, c.b.phone_rtp, c.b.eng_rtp, 1, 10);  // A latches
  Udp intruder = bindUdp();
  for (int i = 0; i < 100; ++i) {
    sendTo(intruder, c.a.eng_rtp, rtpPacket(static_cast<uint16_t>(5000 + i), 0xbadbad));
  }
  ASSERT_TRUE(eventually([&] { return load(c.a.rtp_c->dropped_source) == 100; }));
  // A marker from the real A: it must be the very next thing B sees, and nothing after it.
  pump(c.a.phone_rtp, c.a.eng_rtp, c.b.phone_rtp, c.b.eng_rtp, 11, 1);
  EXPECT_TRUE(nothingQueued(c.b.phone_rtp));
  e->sync();
  EXPECT_EQ(load(c.a.rtp_c->dropped_source), 100u);
  EXPECT_EQ(load(c.a.rtp_c->packets), 11u);
  EXPECT_EQ(load(c.a.rtp_c->forwarded), 11u);
  EXPECT_EQ(learned(*c.a.rtp_c), c.a.phone_rtp.addr);
  std::lock_guard lock(c.a.rtp_c->mu);
  ASSERT_EQ(c.a.rtp_c->ssrc_count, 1u);  // the intruder's SSRC never got into the stats
  EXPECT_EQ(c.a.rtp_c->ssrc[0].ssrc, 0x11223344u);
}

TEST_F(UringEngineTest, NonStrictLatchedForwardsOthersWithoutRelatching) {
  auto e = makeEngine();
  CallOptions o;
  o.a_policy = policy(EndpointLearning::kImmediate, false, std::nullopt);
  Call c = makeCall(*e, 400, o);
  pump(c.a.phone_rtp, c.a.eng_rtp, c.b.phone_rtp, c.b.eng_rtp, 1, 5);
  Udp other = bindUdp();
  pump(other, c.a.eng_rtp, c.b.phone_rtp, c.b.eng_rtp, 6, 5);  // forwarded
  e->sync();
  EXPECT_EQ(learned(*c.a.rtp_c), c.a.phone_rtp.addr);  // not re-latched
  EXPECT_EQ(load(c.a.rtp_c->dropped_source), 0u);
  // B's packets still go to the latched A, not to `other`.
  pump(c.b.phone_rtp, c.b.eng_rtp, c.a.phone_rtp, c.a.eng_rtp, 100, 3);
  EXPECT_TRUE(nothingQueued(other));
}

TEST_F(UringEngineTest, ImmediateLatchOverridesAdvertised) {
  auto e = makeEngine();
  Udp advertised_only = bindUdp();  // what A's SDP said; A really sends from elsewhere (NAT)
  CallOptions o;
  o.a_policy = policy(EndpointLearning::kImmediate, true, advertised_only.addr);
  Call c = makeCall(*e, 500, o);
  pump(c.a.phone_rtp, c.a.eng_rtp, c.b.phone_rtp, c.b.eng_rtp, 1, 3);
  e->sync();
  EXPECT_EQ(learned(*c.a.rtp_c), c.a.phone_rtp.addr);
  pump(c.b.phone_rtp, c.b.eng_rtp, c.a.phone_rtp, c.a.eng_rtp, 1, 3);  // to the latched source
  EXPECT_TRUE(nothingQueued(advertised_only));
}

TEST_F(UringEngineTest, DelayedWindowRelatchesThenLocks) {
  auto e = makeEngine();
  // A is behind NAT: its SDP address is one it never sends from, so the window stays open
  // (a packet from the advertised address itself would lock at once).
  Udp sdp_address = bindUdp();
  CallOptions o;
  o.a_policy = policy(EndpointLearning::kDelayed, true, sdp_address.addr, Clock::now() + 1h);
  Call c = makeCall(*e, 600, o);
  Udp a2 = bindUdp();  // A's NAT binding changes during the window
  pump(c.a.phone_rtp, c.a.eng_rtp, c.b.phone_rtp, c.b.eng_rtp, 1, 3);
  pump(a2, c.a.eng_rtp, c.b.phone_rtp, c.b.eng_rtp, 4, 3);
  e->sync();
  EXPECT_EQ(learned(*c.a.rtp_c), a2.addr);  // latest wins
  pump(c.b.phone_rtp, c.b.eng_rtp, a2, c.a.eng_rtp, 1, 2);
  // Close the window (no relearn): the latched endpoint locks, the old one is now foreign.
  FlowSpec s = c.a.rtp_spec;
  s.source.learn_until = Clock::now() - 1s;
  ASSERT_TRUE(e->update(s, /*relearn=*/false).ok());
  sendTo(c.a.phone_rtp, c.a.eng_rtp, rtpPacket(7));
  ASSERT_TRUE(eventually([&] { return load(c.a.rtp_c->dropped_source) == 1; }));
  pump(a2, c.a.eng_rtp, c.b.phone_rtp, c.b.eng_rtp, 8, 2);
  EXPECT_TRUE(nothingQueued(c.b.phone_rtp));
  // Re-INVITE: relearn with a fresh window; the first phone socket may latch again.
  s.source.learn_until = Clock::now() + 1h;
  ASSERT_TRUE(e->update(s, /*relearn=*/true).ok());
  pump(c.a.phone_rtp, c.a.eng_rtp, c.b.phone_rtp, c.b.eng_rtp, 10, 2);
  e->sync();
  EXPECT_EQ(learned(*c.a.rtp_c), c.a.phone_rtp.addr);
  EXPECT_EQ(load(c.a.rtp_c->packets), 10u);  // counters survived both updates
}

TEST_F(UringEngineTest, HeuristicPrefersAdvertisedEndpoint) {
  auto e = makeEngine();
  Udp exact = bindUdp();                      // the advertised address:port
  Udp same_addr = bindUdp();                  // 127.0.0.1, other port: rank 1
  Udp elsewhere = bindUdp("127.0.0.2");       // other address: rank 0
  CallOptions o;
  o.a_policy = policy(EndpointLearning::kHeuristic, true, exact.addr, Clock::now() + 1h);
  Call c = makeCall(*e, 700, o);
  const auto& rx = c.b.phone_rtp;
  pump(elsewhere, c.a.eng_rtp, rx, c.b.eng_rtp, 1, 1);  // latches (rank 0, first)
  pump(same_addr, c.a.eng_rtp, rx, c.b.eng_rtp, 2, 1);  // better: re-latches
  sendTo(elsewhere, c.a.eng_rtp, rtpPacket(99));         // worse now: dropped
  ASSERT_TRUE(eventually([&] { return load(c.a.rtp_c->dropped_source) == 1; }));
  e->sync();
  EXPECT_EQ(learned(*c.a.rtp_c), same_addr.addr);
  pump(exact, c.a.eng_rtp, rx, c.b.eng_rtp, 3, 1);  // exact: latches and locks
  sendTo(same_addr, c.a.eng_rtp, rtpPacket(98));
  ASSERT_TRUE(eventually([&] { return load(c.a.rtp_c->dropped_source) == 2; }));
  pump(exact, c.a.eng_rtp, rx, c.b.eng_rtp, 4, 1);
  EXPECT_TRUE(nothingQueued(rx));
  e->sync();
  EXPECT_EQ(learned(*c.a.rtp_c), exact.addr);
}

TEST_F(UringEngineTest, LearningOffStrictOnlyAdvertised) {
  auto e = makeEngine();
  CallOptions o;
  o.a_policy = policy(EndpointLearning::kOff, true, std::nullopt);  // advertised = phone A
  Call c = makeCall(*e, 800, o);
  Udp other = bindUdp();
  sendTo(other, c.a.eng_rtp, rtpPacket(1));
  ASSERT_TRUE(eventually([&] { return load(c.a.rtp_c->dropped_source) == 1; }));
  pump(c.a.phone_rtp, c.a.eng_rtp, c.b.phone_rtp, c.b.eng_rtp, 2, 3);
  EXPECT_TRUE(nothingQueued(c.b.phone_rtp));
  e->sync();
  EXPECT_FALSE(learned(*c.a.rtp_c).has_value());  // never learns
}

TEST_F(UringEngineTest, RtcpMuxDemux) {
  auto e = makeEngine();
  CallOptions o;
  o.a_mux = true;  // A muxes RTP+RTCP on one port, B does not
  Call c = makeCall(*e, 900, o);
  pump(c.a.phone_rtp, c.a.eng_rtp, c.b.phone_rtp, c.b.eng_rtp, 1, 20);
  // RTCP from A (muxed port) reaches B's RTCP port, from B's RTCP-facing socket.
  sendTo(c.a.phone_rtp, c.a.eng_rtp, rtcpPacket(0x11223344));
  auto r = recvWait(c.b.phone_rtcp);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->from, c.b.eng_rtcp);
  EXPECT_EQ(rtp::classify(r->data), rtp::PacketKind::kRtcp);
  // RTCP from B's RTCP socket reaches A's (muxed) RTP port from the A-facing RTP socket.
  sendTo(c.b.phone_rtcp, c.b.eng_rtcp, rtcpPacket(0x55667788));
  r = recvWait(c.a.phone_rtp);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->from, c.a.eng_rtp);
  EXPECT_EQ(rtp::classify(r->data), rtp::PacketKind::kRtcp);
  // B's RTP reaches A's muxed port too.
  pump(c.b.phone_rtp, c.b.eng_rtp, c.a.phone_rtp, c.a.eng_rtp, 500, 5);
  EXPECT_TRUE(nothingQueued(c.b.phone_rtp));
  e->sync();
  EXPECT_EQ(load(c.a.rtp_c->packets), 21u);
  EXPECT_EQ(load(c.a.rtp_c->malformed), 0u);
  std::lock_guard lock(c.a.rtp_c->mu);
  EXPECT_EQ(c.a.rtp_c->ssrc[0].packets, 20u);  // the RTCP packet is not in the RTP stats
}

TEST_F(UringEngineTest, SendDisabledAcceptsCountsLatchesButDoesNotForward) {
  auto e = makeEngine();
  CallOptions o;
  o.send_enabled = false;
  Call c = makeCall(*e, 1000, o);
  for (uint16_t i = 0; i < 20; ++i) {
    sendTo(c.a.phone_rtp, c.a.eng_rtp, rtpPacket(i));
  }
  ASSERT_TRUE(eventually([&] { return load(c.a.rtp_c->packets) == 20; }));
  e->sync();
  EXPECT_EQ(load(c.a.rtp_c->forwarded), 0u);
  EXPECT_EQ(learned(*c.a.rtp_c), c.a.phone_rtp.addr);
  EXPECT_TRUE(nothingQueued(c.b.phone_rtp));
  // Taking the call off hold (update in place) forwards again, counters continue.
  FlowSpec s = c.a.rtp_spec;
  s.send_enabled = true;
  ASSERT_TRUE(e->update(s, false).ok());
  pump(c.a.phone_rtp, c.a.eng_rtp, c.b.phone_rtp, c.b.eng_rtp, 20, 10);
  e->sync();
  EXPECT_EQ(load(c.a.rtp_c->packets), 30u);
  EXPECT_EQ(load(c.a.rtp_c->forwarded), 10u);
}

TEST_F(UringEngineTest, RemoveClosesSocketSoThePortCanBeBoundAgain) {
  auto e = makeEngine();
  Call c = makeCall(*e, 1100);
  pump(c.a.phone_rtp, c.a.eng_rtp, c.b.phone_rtp, c.b.eng_rtp, 1, 10);
  e->remove(c.a.rtp_id);
  e->remove(c.a.rtp_id);  // twice: ignored
  e->sync();
  Udp again = bindUdp("127.0.0.1", c.a.eng_rtp.port());
  EXPECT_TRUE(again.fd.valid());
  EXPECT_EQ(again.addr, c.a.eng_rtp);
  EXPECT_EQ(load(c.a.rtp_c->packets), 10u);  // counters outlive the flow
  // B -> A now has no sink: counted, nothing sent.
  sendTo(c.b.phone_rtp, c.b.eng_rtp, rtpPacket(1));
  ASSERT_TRUE(eventually([&] { return load(c.b.rtp_c->dropped_no_sink) == 1; }));
  EXPECT_TRUE(nothingQueued(again));
  EXPECT_FALSE(e->update(c.a.rtp_spec, false).ok());  // gone
  // The id is free for the control side's bookkeeping, a new flow can take the port.
  FlowSpec s = c.a.rtp_spec;
  s.id = 1199;
  ASSERT_TRUE(e->add(s, std::move(again.fd)).ok());
  FlowSpec b = c.b.rtp_spec;
  b.rtp_sink = 1199;
  ASSERT_TRUE(e->update(b, false).ok());
  pump(c.b.phone_rtp, c.b.eng_rtp, c.a.phone_rtp, c.a.eng_rtp, 2, 5);
}

TEST_F(UringEngineTest, AddValidation) {
  auto e = makeEngine(EngineOptions{.workers = 2});
  Call c = makeCall(*e, 1200);  // worker 0
  Udp u = bindUdp();
  FlowSpec dup = c.a.rtp_spec;
  EXPECT_FALSE(e->add(dup, std::move(u.fd)).ok());  // duplicate id
  FlowSpec zero = c.a.rtp_spec;
  zero.id = 0;
  EXPECT_FALSE(e->add(zero, UniqueFd(::socket(AF_INET, SOCK_DGRAM, 0))).ok());
  FlowSpec tcp = c.a.rtp_spec;
  tcp.id = 1299;
  EXPECT_FALSE(e->add(tcp, UniqueFd(::socket(AF_INET, SOCK_STREAM, 0))).ok());
  FlowSpec cross = c.a.rtp_spec;
  cross.id = 1298;
  cross.worker = 1;  // sink 1203 lives on worker 0
  EXPECT_FALSE(e->add(cross, UniqueFd(::socket(AF_INET, SOCK_DGRAM, 0))).ok());
  FlowSpec nocounters = c.a.rtp_spec;
  nocounters.id = 1297;
  nocounters.counters.reset();
  EXPECT_TRUE(e->add(nocounters, UniqueFd(::socket(AF_INET, SOCK_DGRAM, 0))).ok());
  pump(c.a.phone_rtp, c.a.eng_rtp, c.b.phone_rtp, c.b.eng_rtp, 1, 3);
}

TEST_F(UringEngineTest, ManyCallsAcrossTwoWorkers) {
  auto e = makeEngine(EngineOptions{.workers = 2});
  ASSERT_EQ(e->workerCount(), 2u);
  std::vector<Call> calls;
  constexpr int kCalls = 24;
  for (int i = 0; i < kCalls; ++i) {
    CallOptions o;
    o.worker = static_cast<uint32_t>(i);  // % 2 by the engine
    calls.push_back(makeCall(*e, 10000 + 10 * static_cast<FlowId>(i), o));
  }
  // Interleave: every call sends a burst, then every call receives it.
  constexpr int kPerRound = 20;
  for (int round = 0; round < 3; ++round) {
    for (auto& c : calls) {
      for (int k = 0; k < kPerRound; ++k) {
        sendTo(c.a.phone_rtp, c.a.eng_rtp, rtpPacket(static_cast<uint16_t>(round * 100 + k)));
      }
    }
    for (auto& c : calls) {
      for (int k = 0; k < kPerRound; ++k) {
        auto d = recvWait(c.b.phone_rtp);
        ASSERT_TRUE(d.has_value());
        ASSERT_EQ(seqOf(*d), round * 100 + k);
        ASSERT_EQ(d->from, c.b.eng_rtp);
      }
    }
  }
  e->sync();
  for (auto& c : calls) {
    EXPECT_EQ(load(c.a.rtp_c->forwarded), 3u * kPerRound);
    EXPECT_TRUE(nothingQueued(c.b.phone_rtp));
  }
  const uint64_t total = e->workerStats(0).packets + e->workerStats(1).packets;
  EXPECT_EQ(total, 3u * kPerRound * kCalls);
  EXPECT_GT(e->workerStats(0).packets, 0u);
  EXPECT_GT(e->workerStats(1).packets, 0u);
  // Tear half of them down while the engine keeps running.
  for (size_t i = 0; i < calls.size(); i += 2) {
    e->remove(calls[i].a.rtp_id);
    e->remove(calls[i].a.rtcp_id);
    e->remove(calls[i].b.rtp_id);
    e->remove(calls[i].b.rtcp_id);
  }
  e->sync();
  Udp rebind = bindUdp("127.0.0.1", calls[0].b.eng_rtcp.port());
  EXPECT_TRUE(rebind.fd.valid());
  pump(calls[1].a.phone_rtp, calls[1].a.eng_rtp, calls[1].b.phone_rtp, calls[1].b.eng_rtp, 900,
       5);
}

TEST_F(UringEngineTest, PerSsrcStatsWithWrapAndGap) {
  auto e = makeEngine();
  Call c = makeCall(*e, 1300);
  uint32_t sent = 0;
  for (uint32_t s = 65500; s < 65536 + 100; ++s) {
    if (s == 65536 + 10 || s == 65536 + 11 || s == 65536 + 50) {
      continue;  // three lost
    }
    sendTo(c.a.phone_rtp, c.a.eng_rtp, rtpPacket(static_cast<uint16_t>(s), 0xabcdef01, 8));
    ++sent;
    auto d = recvWait(c.b.phone_rtp);
    ASSERT_TRUE(d.has_value());
  }
  // A second stream (new SSRC) on the same flow.
  pump(c.a.phone_rtp, c.a.eng_rtp, c.b.phone_rtp, c.b.eng_rtp, 7, 5, 0x0000beef);
  e->sync();
  std::lock_guard lock(c.a.rtp_c->mu);
  ASSERT_EQ(c.a.rtp_c->ssrc_count, 2u);
  const SsrcStats& s = c.a.rtp_c->ssrc[0];
  EXPECT_EQ(s.ssrc, 0xabcdef01u);
  EXPECT_EQ(s.packets, sent);
  EXPECT_EQ(s.bytes, sent * 172ull);
  EXPECT_EQ(s.base_seq, 65500u);
  EXPECT_EQ(s.highest_seq, 65536u + 99);
  EXPECT_EQ(s.lost(), 3);
  EXPECT_EQ(s.payload_type, 8);
  EXPECT_EQ(s.last_timestamp, static_cast<uint32_t>(static_cast<uint16_t>(65536 + 99) * 160u));
  EXPECT_EQ(c.a.rtp_c->ssrc[1].ssrc, 0xbeefu);
  EXPECT_EQ(c.a.rtp_c->ssrc[1].packets, 5u);
}

TEST_F(UringEngineTest, MalformedIsCountedAndStillForwarded) {
  auto e = makeEngine();
  Call c = makeCall(*e, 1400);
  const std::vector<std::byte> junk = {std::byte{1}, std::byte{2}, std::byte{3}};
  // Junk never latches a stream: from a source that has not latched it is dropped (counted).
  Udp stranger = bindUdp();
  sendTo(stranger, c.a.eng_rtp, junk);
  ASSERT_TRUE(eventually([&] { return load(c.a.rtp_c->malformed) == 1; }));
  EXPECT_TRUE(nothingQueued(c.b.phone_rtp));
  // Once the peer has latched with real RTP, its junk is forwarded like rtpengine does.
  pump(c.a.phone_rtp, c.a.eng_rtp, c.b.phone_rtp, c.b.eng_rtp, 1, 3);
  sendTo(c.a.phone_rtp, c.a.eng_rtp, junk);
  auto d = recvWait(c.b.phone_rtp);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->data, junk);
  // A zero-length datagram ends the kernel's multishot recvmsg (it treats a 0-byte read as
  // "finished"): it must still be forwarded, and the flow must keep receiving afterwards.
  std::vector<std::byte> empty;
  sendTo(c.a.phone_rtp, c.a.eng_rtp, empty);
  d = recvWait(c.b.phone_rtp);
  ASSERT_TRUE(d.has_value());
  EXPECT_TRUE(d->data.empty());
  sendTo(c.a.phone_rtcp, c.a.eng_rtcp, rtpPacket(1));  // RTP on the RTCP port
  ASSERT_TRUE(recvWait(c.b.phone_rtcp).has_value());
  e->sync();
  EXPECT_EQ(load(c.a.rtp_c->malformed), 3u);
  EXPECT_EQ(load(c.a.rtp_c->forwarded), 5u);
  EXPECT_GE(e->workerStats(0).rearms, 1u);
  EXPECT_EQ(load(c.a.rtcp_c->malformed), 1u);
}

TEST_F(UringEngineTest, OversizedDatagramIsDroppedAndCounted) {
  auto e = makeEngine(EngineOptions{.workers = 1, .buffers_per_worker = 64, .buffer_size = 512});
  Call c = makeCall(*e, 1500);
  sendTo(c.a.phone_rtp, c.a.eng_rtp, rtpPacket(1, 1, 0, 1000));
  pump(c.a.phone_rtp, c.a.eng_rtp, c.b.phone_rtp, c.b.eng_rtp, 2, 3);  // first to arrive is #2
  e->sync();
  EXPECT_EQ(load(c.a.rtp_c->errors), 1u);
  EXPECT_EQ(e->workerStats(0).truncated, 1u);
}

// Few buffers and a tiny SQ: a backlog queued before the flow exists is drained through ENOBUFS
// re-arms and mid-batch SQ flushes, and still arrives complete and in order.
TEST_F(UringEngineTest, BufferExhaustionAndFullSubmissionQueue) {
  auto e = makeEngine(EngineOptions{.workers = 1, .buffers_per_worker = 8, .sq_entries = 8});
  Udp phone_a = bindUdp();
  Udp phone_b = bindUdp();
  Udp ea = bindUdp();
  Udp eb = bindUdp();
  auto ca = std::make_shared<FlowCounters>();
  auto cb = std::make_shared<FlowCounters>();
  constexpr int kBacklog = 120;
  for (int i = 0; i < kBacklog; ++i) {
    sendTo(phone_a, ea.addr, rtpPacket(static_cast<uint16_t>(i), 1, 0, 20));
  }
  const auto pol = policy(EndpointLearning::kImmediate, true, std::nullopt);
  SourcePolicy bpol = pol;
  bpol.advertised = phone_b.addr;
  ASSERT_TRUE(e->add(makeSpec(2, 0, eb.addr, false, 1, 0, false, bpol, cb), std::move(eb.fd)).ok());
  ASSERT_TRUE(e->add(makeSpec(1, 0, ea.addr, false, 2, 0, false, pol, ca), std::move(ea.fd)).ok());
  for (int i = 0; i < kBacklog; ++i) {
    auto d = recvWait(phone_b);
    ASSERT_TRUE(d.has_value()) << i;
    ASSERT_EQ(seqOf(*d), i);
  }
  e->sync();
  EXPECT_EQ(load(ca->forwarded), static_cast<uint64_t>(kBacklog));
  const WorkerStats ws = e->workerStats(0);
  EXPECT_GE(ws.enobufs, 1u);
  EXPECT_GE(ws.rearms, 1u);
  EXPECT_EQ(ws.no_sqe, 0u);
}

TEST_F(UringEngineTest, DualStackSocketServesIpv4Phone) {
  Udp probe6 = bindUdp("::1");
  if (!probe6.fd.valid()) {
    GTEST_SKIP() << "no IPv6 loopback";
  }
  auto e = makeEngine();
  Udp phone_a = bindUdp();
  Udp phone_b6 = bindUdp("::1");
  Udp ea = bindUdp("::");  // dual-stack: sees A as v4-mapped, must answer to v4-mapped
  Udp eb = bindUdp("::1");
  const SockAddr ea_v4(*IpAddr::parse("127.0.0.1"), ea.addr.port());
  auto ca = std::make_shared<FlowCounters>();
  auto cb = std::make_shared<FlowCounters>();
  SourcePolicy apol = policy(EndpointLearning::kImmediate, true, phone_a.addr);
  SourcePolicy bpol = policy(EndpointLearning::kImmediate, true, phone_b6.addr);
  ASSERT_TRUE(
      e->add(makeSpec(1, 0, ea.addr, false, 2, 0, false, apol, ca), std::move(ea.fd)).ok());
  ASSERT_TRUE(
      e->add(makeSpec(2, 0, eb.addr, false, 1, 0, false, bpol, cb), std::move(eb.fd)).ok());
  pump(phone_b6, eb.addr, phone_a, ea_v4, 1, 5);  // IPv6 in, IPv4 out of a dual-stack socket
  pump(phone_a, ea_v4, phone_b6, eb.addr, 1, 5);  // IPv4 in, IPv6 out
  e->sync();
  EXPECT_EQ(learned(*ca), phone_a.addr);  // v4-mapped source reported as plain IPv4
}

TEST_F(UringEngineTest, DestructorWithFlowsAndTrafficPresent) {
  SockAddr port_a;
  SockAddr port_b;
  {
    auto e = makeEngine(EngineOptions{.workers = 2});
    Call c = makeCall(*e, 1600);
    Call d = makeCall(*e, 1700, CallOptions{.worker = 1});
    port_a = c.a.eng_rtp;
    port_b = d.b.eng_rtcp;
    pump(c.a.phone_rtp, c.a.eng_rtp, c.b.phone_rtp, c.b.eng_rtp, 1, 10);
    for (int i = 0; i < 50; ++i) {  // still in flight when the engine goes
      sendTo(d.a.phone_rtp, d.a.eng_rtp, rtpPacket(static_cast<uint16_t>(i)));
    }
  }
  EXPECT_TRUE(bindUdp("127.0.0.1", port_a.port()).fd.valid());
  EXPECT_TRUE(bindUdp("127.0.0.1", port_b.port()).fd.valid());
}

// Readers on another thread while a worker writes: exercised under TSan.
TEST_F(UringEngineTest, CountersReadConcurrently) {
  auto e = makeEngine();
  Call c = makeCall(*e, 1800);
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    uint64_t last = 0;
    while (!stop.load()) {
      const uint64_t p = c.a.rtp_c->packets.load(std::memory_order_relaxed);
      EXPECT_GE(p, last);
      last = p;
      std::lock_guard lock(c.a.rtp_c->mu);
      (void)c.a.rtp_c->learned;
      (void)c.a.rtp_c->ssrc[0].packets;
    }
  });
  pump(c.a.phone_rtp, c.a.eng_rtp, c.b.phone_rtp, c.b.eng_rtp, 1, 300);
  (void)e->workerStats(0);
  stop = true;
  reader.join();
  e->sync();
  EXPECT_EQ(load(c.a.rtp_c->packets), 300u);
}

}  // namespace
}  // namespace xems::datapath
