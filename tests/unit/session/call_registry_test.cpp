#include "ctrl/session/call_registry.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "tests/unit/session/fake_table.h"

namespace xems::session {
namespace {

using testing::FakeTable;
using testing::ManualTime;

// Alice's offer as Kamailio passes it on (documentation addresses).
constexpr const char* kAliceOffer =
    "v=0\r\n"
    "o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n"
    "s=-\r\n"
    "c=IN IP4 192.0.2.10\r\n"
    "t=0 0\r\n"
    "m=audio 49170 RTP/AVP 0 8 101\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-16\r\n"
    "a=ptime:20\r\n"
    "m=video 51372 RTP/AVP 31\r\n"
    "b=AS:256\r\n";

constexpr const char* kBobAnswer =
    "v=0\r\n"
    "o=bob 1 1 IN IP4 192.0.2.20\r\n"
    "s=-\r\n"
    "c=IN IP4 192.0.2.20\r\n"
    "t=0 0\r\n"
    "m=audio 5004 RTP/AVP 0 101\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=sendrecv\r\n"
    "m=video 0 RTP/AVP 31\r\n";

Config testConfig() {
  Config c;
  c.interfaces.push_back(*InterfaceSpec::parse("default/127.0.0.1!203.0.113.1"));
  c.port_min = 42000;
  c.port_max = 42999;
  c.delete_delay = 0;
  return c;
}

class CallRegistryTest : public ::testing::Test {
 protected:
  CallRegistryTest() : time(std::make_shared<ManualTime>()), reg(testConfig(), table, time) {}

  Result<OfferAnswerReply> offer(std::string call, std::string from, std::string sdp,
                                 OfferAnswerFlags flags = {}, std::string to = "",
                                 std::string via_branch = "") {
    OfferAnswerRequest r;
    r.op = Op::kOffer;
    r.call_id = std::move(call);
    r.from_tag = std::move(from);
    r.to_tag = std::move(to);
    r.via_branch = std::move(via_branch);
    r.sdp = std::move(sdp);
    r.flags = std::move(flags);
    return reg.offerAnswer(r);
  }
  Result<OfferAnswerReply> answer(std::string call, std::string from, std::string to,
                                  std::string sdp, OfferAnswerFlags flags = {}) {
    OfferAnswerRequest r;
    r.op = Op::kAnswer;
    r.call_id = std::move(call);
    r.from_tag = std::move(from);
    r.to_tag = std::move(to);
    r.sdp = std::move(sdp);
    r.flags = std::move(flags);
    return reg.offerAnswer(r);
  }
  // Local RTP port of participant `tag`'s media `index` (1-based).
  uint16_t port(std::string_view call, std::string_view tag, size_t index) {
    auto q = reg.query(call);
    EXPECT_TRUE(q.ok());
    for (const auto& p : q->participants) {
      if (p.tag == tag) {
        return p.medias.at(index - 1).streams.at(0).local.port();
      }
    }
    ADD_FAILURE() << "no participant " << tag;
    return 0;
  }

  FakeTable table;
  std::shared_ptr<ManualTime> time;
  CallRegistry reg;
};

// The same output rtpengine 10.5 gives for this offer (captured from Debian's rtpengine with
// replace=[origin]): session c= rewritten, a=rtpmap added for static payload types, codec
// lines, direction, a=rtcp, then a=ptime.
TEST_F(CallRegistryTest, OfferAnswerGoldenAsRtpengine) {
  OfferAnswerFlags f;
  f.replace_origin = true;
  auto o = offer("c1", "ft", kAliceOffer, f);
  ASSERT_TRUE(o.ok()) << o.error().message;
  // The offer goes to Bob: it carries the Bob-facing sockets (the untagged participant).
  auto q = reg.query("c1");
  ASSERT_TRUE(q.ok());
  ASSERT_EQ(q->participants.size(), 2u);
  uint16_t b_audio = q->participants[1].medias[0].streams[0].local.port();
  uint16_t b_video = q->participants[1].medias[1].streams[0].local.port();
  EXPECT_EQ(b_audio % 2, 0);
  EXPECT_EQ(o->sdp, fmt::format("v=0\r\n"
                                "o=alice 2890844526 2890844526 IN IP4 203.0.113.1\r\n"
                                "s=-\r\n"
                                "c=IN IP4 203.0.113.1\r\n"
                                "t=0 0\r\n"
                                "m=audio {} RTP/AVP 0 8 101\r\n"
                                "a=rtpmap:0 PCMU/8000\r\n"
                                "a=rtpmap:8 PCMA/8000\r\n"
                                "a=rtpmap:101 telephone-event/8000\r\n"
                                "a=fmtp:101 0-16\r\n"
                                "a=sendrecv\r\n"
                                "a=rtcp:{}\r\n"
                                "a=ptime:20\r\n"
                                "m=video {} RTP/AVP 31\r\n"
                                "b=AS:256\r\n"
                                "a=rtpmap:31 H261/90000\r\n"
                                "a=sendrecv\r\n"
                                "a=rtcp:{}\r\n",
                                b_audio, b_audio + 1, b_video, b_video + 1));

  auto a = answer("c1", "ft", "tt", kBobAnswer);
  ASSERT_TRUE(a.ok()) << a.error().message;
  uint16_t a_audio = port("c1", "ft", 1);
  EXPECT_EQ(a->sdp, fmt::format("v=0\r\n"
                                "o=bob 1 1 IN IP4 192.0.2.20\r\n"
                                "s=-\r\n"
                                "c=IN IP4 203.0.113.1\r\n"
                                "t=0 0\r\n"
                                "m=audio {} RTP/AVP 0 101\r\n"
                                "a=rtpmap:0 PCMU/8000\r\n"
                                "a=rtpmap:101 telephone-event/8000\r\n"
                                "a=sendrecv\r\n"
                                "a=rtcp:{}\r\n"
                                "m=video 0 RTP/AVP 31\r\n",
                                a_audio, a_audio + 1));
  EXPECT_EQ(port("c1", "tt", 1), b_audio);  // the untagged participant got Bob's tag
}

TEST_F(CallRegistryTest, FlowsAreLinkedBothWays) {
  ASSERT_TRUE(offer("c1", "ft", kAliceOffer).ok());
  ASSERT_TRUE(answer("c1", "ft", "tt", kBobAnswer).ok());
  uint16_t a = port("c1", "ft", 1);
  uint16_t b = port("c1", "tt", 1);
  const auto* fa = table.byPort(a);
  const auto* fb = table.byPort(b);
  const auto* fa_rtcp = table.byPort(a + 1);
  const auto* fb_rtcp = table.byPort(b + 1);
  ASSERT_TRUE(fa && fb && fa_rtcp && fb_rtcp);
  EXPECT_EQ(fa->spec.rtp_sink, fb->spec.id);
  EXPECT_EQ(fb->spec.rtp_sink, fa->spec.id);
  EXPECT_EQ(fa_rtcp->spec.rtp_sink, fb_rtcp->spec.id);
  EXPECT_EQ(fa->spec.worker, fb->spec.worker);
  // Alice's advertised endpoint comes from her SDP; Bob's from his answer.
  EXPECT_EQ(fa->spec.source.advertised->toString(), "192.0.2.10:49170");
  EXPECT_EQ(fa_rtcp->spec.source.advertised->toString(), "192.0.2.10:49171");
  EXPECT_EQ(fb->spec.source.advertised->toString(), "192.0.2.20:5004");
  EXPECT_TRUE(fa->spec.source.strict);
  EXPECT_EQ(fa->spec.source.learning, EndpointLearning::kDelayed);
}

TEST_F(CallRegistryTest, ReinviteKeepsPortsAndUpdatesInPlace) {
  ASSERT_TRUE(offer("c1", "ft", kAliceOffer).ok());
  ASSERT_TRUE(answer("c1", "ft", "tt", kBobAnswer).ok());
  uint16_t a = port("c1", "ft", 1);
  uint16_t b = port("c1", "tt", 1);
  size_t flows = table.flows.size();
  // Unlatched streams get a fresh learning window with each signalling event...
  ASSERT_TRUE(offer("c1", "ft", kAliceOffer, {}, "tt").ok());
  EXPECT_GE(table.byPort(a)->relearns, 1);
  // ...latched ones keep their peer when nothing changes. Latch all as the worker would.
  for (auto& [id, e] : table.flows) {
    std::lock_guard lock(e.spec.counters->mu);
    e.spec.counters->learned = e.spec.source.advertised;
  }
  int before_a = table.byPort(a)->relearns;
  ASSERT_TRUE(offer("c1", "ft", kAliceOffer, {}, "tt").ok());
  ASSERT_TRUE(answer("c1", "ft", "tt", kBobAnswer).ok());
  EXPECT_EQ(port("c1", "ft", 1), a);
  EXPECT_EQ(port("c1", "tt", 1), b);
  EXPECT_EQ(table.flows.size(), flows);
  EXPECT_EQ(table.byPort(a)->relearns, before_a);
  // Bob re-INVITEs from a new address: his streams relearn, Alice's don't; ports stay.
  std::string moved = kBobAnswer;
  moved.replace(moved.find("c=IN IP4 192.0.2.20"), 19, "c=IN IP4 192.0.2.99");
  auto r = offer("c1", "tt", moved, {}, "ft");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(port("c1", "tt", 1), b);
  EXPECT_EQ(table.byPort(b)->spec.source.advertised->toString(), "192.0.2.99:5004");
  EXPECT_GE(table.byPort(b)->relearns, 1);
  EXPECT_EQ(table.byPort(a)->relearns, before_a);
}

TEST_F(CallRegistryTest, HoldKeepsZeroAddressAndDirection) {
  ASSERT_TRUE(offer("c1", "ft", kAliceOffer).ok());
  ASSERT_TRUE(answer("c1", "ft", "tt", kBobAnswer).ok());
  std::string hold = kAliceOffer;
  hold.replace(hold.find("c=IN IP4 192.0.2.10"), 19, "c=IN IP4 0.0.0.0");
  hold.replace(hold.find("a=ptime:20\r\n"), 12, "a=ptime:20\r\na=sendonly\r\n");
  auto r = offer("c1", "ft", hold, {}, "tt");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_NE(r->sdp.find("c=IN IP4 0.0.0.0\r\n"), std::string::npos);
  EXPECT_NE(r->sdp.find("a=sendonly\r\n"), std::string::npos);
  EXPECT_EQ(r->sdp.find("a=sendrecv"), std::string::npos);
  // Alice is held: we no longer know where to send to her.
  EXPECT_FALSE(table.byPort(port("c1", "ft", 1))->spec.source.advertised.has_value());
  OfferAnswerFlags zero;
  zero.replace_zero_address = true;
  r = offer("c1", "ft", hold, zero, "tt");
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->sdp.find("c=IN IP4 203.0.113.1\r\n"), std::string::npos);
}

TEST_F(CallRegistryTest, ErrorsUseRtpengineReasons) {
  auto r = answer("nope", "a", "b", kBobAnswer);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "Unknown call-id");
  r = offer("c1", "a", "");
  EXPECT_EQ(r.error().message, "No SDP body in message");
  r = offer("", "a", kAliceOffer);
  EXPECT_EQ(r.error().message, "No call-id in message");
  r = offer("c1", "", kAliceOffer);
  EXPECT_EQ(r.error().message, "No from-tag in message");
  r = offer("c1", "a", "garbage");
  EXPECT_EQ(r.error().message, "Failed to parse SDP");
  EXPECT_EQ(reg.callCount(), 0u);  // a failed initial offer leaves no call behind
  EXPECT_EQ(reg.stats().sdp_parse_errors, 1u);
  EXPECT_EQ(reg.stats().managed_sessions, 0u);
  EXPECT_FALSE(reg.query("c1").ok());
}

TEST_F(CallRegistryTest, RanOutOfPortsAndDeleteFreesThem) {
  Config c = testConfig();
  c.port_min = 43000;
  c.port_max = 43003;  // two pairs: one call with one media needs both
  FakeTable t;
  CallRegistry small(c, t, time);
  OfferAnswerRequest r;
  r.call_id = "c1";
  r.from_tag = "a";
  r.sdp = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
          "m=audio 4000 RTP/AVP 0\r\n";
  ASSERT_TRUE(small.offerAnswer(r).ok());
  EXPECT_EQ(small.stats().ports_in_use, 2u);
  r.call_id = "c2";
  auto fail = small.offerAnswer(r);
  ASSERT_FALSE(fail.ok());
  EXPECT_EQ(fail.error().message, "Ran out of ports");
  EXPECT_EQ(small.callCount(), 1u);  // the failed call is gone, the first one untouched
  ASSERT_TRUE(small.query("c1").ok());

  DeleteRequest d;
  d.call_id = "c1";
  d.from_tag = "a";
  EXPECT_TRUE(small.remove(d).found);
  EXPECT_EQ(small.callCount(), 0u);
  EXPECT_EQ(small.stats().ports_in_use, 0u);
  EXPECT_TRUE(t.flows.empty());
  r.call_id = "c3";
  EXPECT_TRUE(small.offerAnswer(r).ok());  // the ports are usable again
}

TEST_F(CallRegistryTest, DeleteDelayAndTagMatching) {
  ASSERT_TRUE(offer("c1", "ft", kAliceOffer).ok());
  DeleteRequest d;
  d.call_id = "c1";
  d.from_tag = "someone-else";
  EXPECT_FALSE(reg.remove(d).found);  // tags didn't match
  d.from_tag = "ft";
  d.delete_delay = 5;
  auto res = reg.remove(d);
  EXPECT_TRUE(res.found);
  EXPECT_EQ(res.info.call_id, "c1");
  EXPECT_EQ(reg.callCount(), 1u);  // lingers for the delay
  time->advance(std::chrono::seconds(4));
  reg.tick();
  EXPECT_EQ(reg.callCount(), 1u);
  time->advance(std::chrono::seconds(1));
  reg.tick();
  EXPECT_EQ(reg.callCount(), 0u);
  EXPECT_EQ(reg.stats().regular_terminated_sessions, 1u);
}

TEST_F(CallRegistryTest, TimeoutsEndIdleCalls) {
  ASSERT_TRUE(offer("c1", "ft", kAliceOffer).ok());
  ASSERT_TRUE(answer("c1", "ft", "tt", kBobAnswer).ok());
  // Media keeps the call alive: the worker stamps last_packet_ns.
  auto* flow = table.byPort(port("c1", "ft", 1));
  time->advance(std::chrono::seconds(50));
  flow->spec.counters->last_packet_ns = time->now().time_since_epoch().count();
  time->advance(std::chrono::seconds(50));
  reg.tick();
  EXPECT_EQ(reg.callCount(), 1u);  // 50 s idle < 60 s
  time->advance(std::chrono::seconds(10));
  reg.tick();
  EXPECT_EQ(reg.callCount(), 0u);
  EXPECT_EQ(reg.stats().timeout_sessions, 1u);
}

TEST_F(CallRegistryTest, HeldCallsUseSilentTimeoutAndFinalTimeoutCaps) {
  Config c = testConfig();
  c.silent_timeout = 300;
  c.final_timeout = 1000;
  FakeTable t;
  CallRegistry r2(c, t, time);
  std::string hold = kAliceOffer;
  hold.replace(hold.find("a=ptime:20\r\n"), 12, "a=ptime:20\r\na=inactive\r\n");
  OfferAnswerRequest o;
  o.call_id = "c1";
  o.from_tag = "ft";
  o.sdp = hold;
  ASSERT_TRUE(r2.offerAnswer(o).ok());
  o.op = Op::kAnswer;
  o.to_tag = "tt";
  o.sdp = kBobAnswer;
  ASSERT_TRUE(r2.offerAnswer(o).ok());
  time->advance(std::chrono::seconds(200));
  r2.tick();
  EXPECT_EQ(r2.callCount(), 1u);  // on hold: 60 s timeout does not apply
  time->advance(std::chrono::seconds(100));
  r2.tick();
  EXPECT_EQ(r2.callCount(), 0u);
  EXPECT_EQ(r2.stats().silent_timeout_sessions, 1u);
}

TEST_F(CallRegistryTest, UnansweredOfferTimesOut) {
  Config c = testConfig();
  c.offer_timeout = 30;
  FakeTable t;
  CallRegistry r2(c, t, time);
  OfferAnswerRequest o;
  o.call_id = "c1";
  o.from_tag = "ft";
  o.sdp = kAliceOffer;
  ASSERT_TRUE(r2.offerAnswer(o).ok());
  time->advance(std::chrono::seconds(31));
  r2.tick();
  EXPECT_EQ(r2.callCount(), 0u);
  EXPECT_EQ(r2.stats().offer_timeout_sessions, 1u);
}

TEST_F(CallRegistryTest, RtcpMuxFollowsTheClientAndFlags) {
  const char* mux_offer =
      "v=0\r\no=- 1 2 IN IP4 192.0.2.30\r\ns=-\r\nt=0 0\r\nm=audio 40000 RTP/AVP 8\r\n"
      "c=IN IP4 192.0.2.30\r\na=rtcp-mux\r\na=rtcp:40000\r\na=foo:bar\r\n";
  auto o = offer("c1", "a", mux_offer);
  ASSERT_TRUE(o.ok());
  auto q = reg.query("c1");
  uint16_t b = q->participants[1].medias[0].streams[0].local.port();
  // As rtpengine 10.5: unknown attributes first, mux offered with the separate RTCP port.
  EXPECT_NE(o->sdp.find(fmt::format("c=IN IP4 203.0.113.1\r\na=foo:bar\r\na=rtpmap:8 PCMA/8000\r\n"
                                    "a=sendrecv\r\na=rtcp:{}\r\na=rtcp-mux\r\n",
                                    b + 1)),
            std::string::npos)
      << o->sdp;
  // Answer with mux: confirmed towards Alice with a=rtcp = RTP port.
  const char* mux_answer =
      "v=0\r\no=- 1 2 IN IP4 192.0.2.40\r\ns=-\r\nt=0 0\r\nm=audio 6000 RTP/AVP 8\r\n"
      "c=IN IP4 192.0.2.40\r\na=rtcp-mux\r\n";
  auto a = answer("c1", "a", "b", mux_answer);
  ASSERT_TRUE(a.ok());
  uint16_t ap = port("c1", "a", 1);
  EXPECT_NE(a->sdp.find(fmt::format("a=rtcp:{}\r\na=rtcp-mux\r\n", ap)), std::string::npos)
      << a->sdp;
  // Both mux: RTP flows classify and send RTCP to the peer's RTP socket.
  const auto* fa = table.byPort(ap);
  const auto* fb = table.byPort(port("c1", "b", 1));
  EXPECT_TRUE(fa->spec.mux);
  EXPECT_EQ(fa->spec.rtcp_sink, fb->spec.id);
  EXPECT_EQ(fb->spec.rtcp_sink, fa->spec.id);

  // Bob answers without mux: Alice is told no mux; RTCP goes between RTCP sockets, except
  // what Alice still muxes, which goes to Bob's RTCP socket.
  ASSERT_TRUE(offer("c2", "a", mux_offer).ok());
  const char* plain_answer =
      "v=0\r\no=- 1 2 IN IP4 192.0.2.40\r\ns=-\r\nt=0 0\r\nm=audio 6000 RTP/AVP 8\r\n"
      "c=IN IP4 192.0.2.40\r\n";
  a = answer("c2", "a", "b", plain_answer);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->sdp.find("a=rtcp-mux"), std::string::npos) << a->sdp;
  uint16_t bp = port("c2", "b", 1);
  fa = table.byPort(port("c2", "a", 1));
  EXPECT_EQ(fa->spec.rtcp_sink, table.byPort(bp + 1)->spec.id);

  // demux: Alice keeps mux although Bob does not.
  ASSERT_TRUE(offer("c3", "a", mux_offer).ok());
  OfferAnswerFlags demux;
  demux.rtcp_mux.demux = true;
  a = answer("c3", "a", "b", plain_answer, demux);
  ASSERT_TRUE(a.ok());
  EXPECT_NE(a->sdp.find("a=rtcp-mux"), std::string::npos) << a->sdp;
}

TEST_F(CallRegistryTest, CodecStripOfferMask) {
  OfferAnswerFlags f;
  f.codec.strip = {"all"};
  f.codec.offer = {"PCMA", "telephone-event"};
  auto o = offer("c1", "a", kAliceOffer, f);
  ASSERT_TRUE(o.ok());
  EXPECT_NE(o->sdp.find("RTP/AVP 8 101\r\n"), std::string::npos) << o->sdp;
  EXPECT_EQ(o->sdp.find("PCMU"), std::string::npos);

  OfferAnswerFlags m;
  m.codec.mask = {"pcmu"};
  o = offer("c2", "a", kAliceOffer, m);
  ASSERT_TRUE(o.ok());
  EXPECT_NE(o->sdp.find("RTP/AVP 8 101\r\n"), std::string::npos) << o->sdp;

  OfferAnswerFlags everything;
  everything.codec.strip = {"all"};
  o = offer("c3", "a", kAliceOffer, everything);
  ASSERT_TRUE(o.ok());  // all stripped: the original list is restored, as rtpengine does
  EXPECT_NE(o->sdp.find("RTP/AVP 0 8 101\r\n"), std::string::npos) << o->sdp;
}

TEST_F(CallRegistryTest, IceAttributesOfThePeerAreRemoved) {
  const char* ice =
      "v=0\r\no=- 1 2 IN IP4 192.0.2.30\r\ns=-\r\na=ice-lite\r\nt=0 0\r\n"
      "m=audio 40000 RTP/AVP 8\r\nc=IN IP4 192.0.2.30\r\na=ice-ufrag:abcd\r\n"
      "a=ice-pwd:0123456789012345678901\r\n"
      "a=candidate:1 1 UDP 2130706431 192.0.2.30 40000 typ host\r\na=end-of-candidates\r\n";
  auto o = offer("c1", "a", ice);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->sdp.find("ice"), std::string::npos) << o->sdp;
  EXPECT_EQ(o->sdp.find("candidate"), std::string::npos) << o->sdp;
}

TEST_F(CallRegistryTest, SipSourceAndMediaAddress) {
  OfferAnswerFlags f;
  f.sip_source_address = true;
  f.received_from = IpAddr::parse("198.51.100.7");
  ASSERT_TRUE(offer("c1", "ft", kAliceOffer, f).ok());
  EXPECT_EQ(table.byPort(port("c1", "ft", 1))->spec.source.advertised->toString(),
            "198.51.100.7:49170");
  OfferAnswerFlags trust;
  trust.received_from = IpAddr::parse("198.51.100.7");  // trust address is the default
  ASSERT_TRUE(offer("c2", "ft", kAliceOffer, trust).ok());
  EXPECT_EQ(table.byPort(port("c2", "ft", 1))->spec.source.advertised->toString(),
            "192.0.2.10:49170");
  OfferAnswerFlags media;
  media.media_address = IpAddr::parse("198.51.100.9");
  ASSERT_TRUE(offer("c3", "ft", kAliceOffer, media).ok());
  EXPECT_EQ(table.byPort(port("c3", "ft", 1))->spec.source.advertised->toString(),
            "198.51.100.9:49170");
}

TEST_F(CallRegistryTest, ReplaceSdpVersionBumpsOnlyOnChange) {
  OfferAnswerFlags f;
  f.replace_sdp_version = true;
  auto o1 = offer("c1", "ft", kAliceOffer, f);
  auto o2 = offer("c1", "ft", kAliceOffer, f);
  ASSERT_TRUE(o1.ok() && o2.ok());
  EXPECT_NE(o1->sdp.find("o=alice 2890844526 2890844526 "), std::string::npos) << o1->sdp;
  EXPECT_EQ(o1->sdp, o2->sdp);
  std::string changed = kAliceOffer;
  changed.replace(changed.find("a=ptime:20"), 10, "a=ptime:30");
  auto o3 = offer("c1", "ft", changed, f);
  EXPECT_NE(o3->sdp.find("o=alice 2890844526 2890844527 "), std::string::npos) << o3->sdp;
  f.force_increment_sdp_version = true;
  auto o4 = offer("c1", "ft", changed, f);
  EXPECT_NE(o4->sdp.find("o=alice 2890844526 2890844528 "), std::string::npos) << o4->sdp;
}

class TwoInterfaces : public ::testing::Test {
 protected:
  TwoInterfaces() : time(std::make_shared<ManualTime>()), reg(config(), table, time) {}
  static Config config() {
    Config c;
    c.interfaces.push_back(*InterfaceSpec::parse("pub/127.0.0.1!203.0.113.1"));
    c.interfaces.push_back(*InterfaceSpec::parse("priv/127.0.0.2"));
    c.interfaces.push_back(*InterfaceSpec::parse("v6/::1"));
    c.port_min = 44000;
    c.port_max = 44999;
    return c;
  }
  FakeTable table;
  std::shared_ptr<ManualTime> time;
  CallRegistry reg;
};

TEST_F(TwoInterfaces, DirectionPicksTheInterfacePerSide) {
  OfferAnswerRequest r;
  r.call_id = "c1";
  r.from_tag = "a";
  r.sdp = kAliceOffer;
  r.flags.direction = {"pub", "priv"};
  auto o = reg.offerAnswer(r);
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_NE(o->sdp.find("c=IN IP4 127.0.0.2\r\n"), std::string::npos) << o->sdp;
  r.op = Op::kAnswer;
  r.to_tag = "b";
  r.sdp = kBobAnswer;
  r.flags = {};
  auto a = reg.offerAnswer(r);
  ASSERT_TRUE(a.ok());
  EXPECT_NE(a->sdp.find("c=IN IP4 203.0.113.1\r\n"), std::string::npos) << a->sdp;
}

TEST_F(TwoInterfaces, AddressFamilyBridgesIpv4ToIpv6) {
  OfferAnswerRequest r;
  r.call_id = "c1";
  r.from_tag = "a";
  r.sdp = kAliceOffer;
  r.flags.address_family = Family::kIpv6;
  auto o = reg.offerAnswer(r);
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_NE(o->sdp.find("c=IN IP6 ::1\r\n"), std::string::npos) << o->sdp;
  r.op = Op::kAnswer;
  r.to_tag = "b";
  r.flags = {};
  r.sdp = "v=0\r\no=bob 1 1 IN IP6 2001:db8::2\r\ns=-\r\nc=IN IP6 2001:db8::2\r\nt=0 0\r\n"
          "m=audio 5004 RTP/AVP 0\r\nm=video 0 RTP/AVP 31\r\n";
  auto a = reg.offerAnswer(r);
  ASSERT_TRUE(a.ok()) << a.error().message;
  // Alice still gets IPv4.
  EXPECT_NE(a->sdp.find("c=IN IP4 203.0.113.1\r\n"), std::string::npos) << a->sdp;
}

}  // namespace
}  // namespace xems::session

namespace xems::session {
namespace {

TEST_F(CallRegistryTest, ForksGetTheirOwnPortsAndTheAnswerPicksOne) {
  auto o1 = offer("fork", "ft", kAliceOffer, {}, "", "z9hG4bK-1");
  auto o2 = offer("fork", "ft", kAliceOffer, {}, "", "z9hG4bK-2");
  ASSERT_TRUE(o1.ok() && o2.ok());
  auto q = reg.query("fork");
  ASSERT_EQ(q->participants.size(), 3u);  // the caller and two untagged forks
  uint16_t p1 = q->participants[1].medias[0].streams[0].local.port();
  uint16_t p2 = q->participants[2].medias[0].streams[0].local.port();
  EXPECT_NE(p1, p2);
  EXPECT_NE(o1->sdp, o2->sdp);
  // The second fork answers; the first is cancelled by Kamailio with its via-branch.
  OfferAnswerRequest a;
  a.op = Op::kAnswer;
  a.call_id = "fork";
  a.from_tag = "ft";
  a.to_tag = "tt2";
  a.via_branch = "z9hG4bK-2";
  a.sdp = kBobAnswer;
  ASSERT_TRUE(reg.offerAnswer(a).ok());
  EXPECT_EQ(port("fork", "tt2", 1), p2);
  uint16_t alice = port("fork", "ft", 1);
  EXPECT_EQ(table.byPort(alice)->spec.rtp_sink, table.byPort(p2)->spec.id);
  DeleteRequest d;
  d.call_id = "fork";
  d.from_tag = "ft";
  d.via_branch = "z9hG4bK-1";
  EXPECT_TRUE(reg.remove(d).found);
  q = reg.query("fork");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->participants.size(), 2u);
  EXPECT_EQ(table.byPort(p1), nullptr);  // the cancelled fork's flows are gone
  EXPECT_NE(table.byPort(p2), nullptr);
}

TEST_F(CallRegistryTest, SecondToTagBecomesAnAlias) {
  ASSERT_TRUE(offer("c1", "ft", kAliceOffer).ok());
  ASSERT_TRUE(answer("c1", "ft", "early-tag", kBobAnswer).ok());  // 183 from one UAS
  ASSERT_TRUE(answer("c1", "ft", "final-tag", kBobAnswer).ok());  // 200 with another tag
  auto q = reg.query("c1");
  ASSERT_EQ(q->participants.size(), 2u);
  EXPECT_EQ(q->participants[1].aliases, std::vector<std::string>{"final-tag"});
  ASSERT_TRUE(offer("c1", "final-tag", kBobAnswer, {}, "ft").ok());  // re-INVITE by the alias
}

}  // namespace
}  // namespace xems::session

namespace xems::session {
namespace {

TEST_F(CallRegistryTest, FinalTimeoutEndsEvenABusyCall) {
  Config c = testConfig();
  c.final_timeout = 120;
  FakeTable t;
  CallRegistry r2(c, t, time);
  OfferAnswerRequest o;
  o.call_id = "c1";
  o.from_tag = "ft";
  o.sdp = kAliceOffer;
  ASSERT_TRUE(r2.offerAnswer(o).ok());
  o.op = Op::kAnswer;
  o.to_tag = "tt";
  o.sdp = kBobAnswer;
  ASSERT_TRUE(r2.offerAnswer(o).ok());
  auto& counters = *t.flows.begin()->second.spec.counters;
  for (int s = 0; s < 110; s += 10) {  // media every 10 s for 110 s: no media timeout
    time->advance(std::chrono::seconds(10));
    counters.last_packet_ns = time->now().time_since_epoch().count();
    r2.tick();
  }
  EXPECT_EQ(r2.callCount(), 1u);
  time->advance(std::chrono::seconds(10));
  r2.tick();
  EXPECT_EQ(r2.callCount(), 0u);
  EXPECT_EQ(r2.stats().final_timeout_sessions, 1u);
  EXPECT_EQ(r2.stats().ports_in_use, 0u);
  EXPECT_TRUE(t.flows.empty());
}

}  // namespace
}  // namespace xems::session

namespace xems::session {
namespace {

// Review finding: deleting a participant that two forks point at must leave no dangling
// pointer (ASan catches the use-after-free in tick()/query() otherwise).
TEST_F(CallRegistryTest, DeletingAParticipantSharedByForksLeavesNoDanglingPeer) {
  ASSERT_TRUE(offer("fk", "ft", kAliceOffer, {}, "", "b1").ok());
  ASSERT_TRUE(offer("fk", "ft", kAliceOffer, {}, "", "b2").ok());
  OfferAnswerRequest a;
  a.op = Op::kAnswer;
  a.call_id = "fk";
  a.from_tag = "ft";
  a.to_tag = "t1";
  a.via_branch = "b1";
  a.sdp = kBobAnswer;
  ASSERT_TRUE(reg.offerAnswer(a).ok());
  DeleteRequest d;  // the callee's BYE: from-tag t1, to-tag ft, flag to-tag: the caller goes
  d.call_id = "fk";
  d.from_tag = "t1";
  d.to_tag = "ft";
  d.honour_to_tag = true;
  EXPECT_TRUE(reg.remove(d).found);
  time->advance(std::chrono::seconds(1));
  reg.tick();
  auto q = reg.query("fk");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->participants.size(), 2u);
  for (const auto& p : q->participants) {
    EXPECT_NE(p.tag, "ft");
  }
  EXPECT_TRUE(offer("fk", "t1", kAliceOffer, {}, "", "b3").ok());  // a survivor offers again
}

// Review finding: when the fork the caller was wired to goes, the caller's flows follow the
// remaining fork instead of sending into a removed flow.
TEST_F(CallRegistryTest, DeletingTheCurrentForkRewiresTheCaller) {
  ASSERT_TRUE(offer("fk", "ft", kAliceOffer, {}, "", "b1").ok());
  ASSERT_TRUE(offer("fk", "ft", kAliceOffer, {}, "", "b2").ok());
  auto q = reg.query("fk");
  uint16_t p1 = q->participants[1].medias[0].streams[0].local.port();
  uint16_t alice = q->participants[0].medias[0].streams[0].local.port();
  DeleteRequest d;
  d.call_id = "fk";
  d.from_tag = "ft";
  d.via_branch = "b2";
  EXPECT_TRUE(reg.remove(d).found);
  EXPECT_EQ(table.byPort(alice)->spec.rtp_sink, table.byPort(p1)->spec.id);
}

// Review finding: the offerer's RTCP goes back to its a=rtcp port when the answer declines mux.
TEST_F(CallRegistryTest, DeclinedMuxFallsBackToTheOfferersRtcpPort) {
  const char* mux_offer =
      "v=0\r\no=- 1 2 IN IP4 192.0.2.30\r\ns=-\r\nt=0 0\r\nm=audio 40000 RTP/AVP 8\r\n"
      "c=IN IP4 192.0.2.30\r\na=rtcp-mux\r\na=rtcp:40011\r\n";
  ASSERT_TRUE(offer("c1", "a", mux_offer).ok());
  uint16_t ap = port("c1", "a", 1);
  EXPECT_EQ(table.byPort(ap + 1)->spec.source.advertised->toString(), "192.0.2.30:40000");
  const char* plain_answer =
      "v=0\r\no=- 1 2 IN IP4 192.0.2.40\r\ns=-\r\nt=0 0\r\nm=audio 6000 RTP/AVP 8\r\n"
      "c=IN IP4 192.0.2.40\r\n";
  ASSERT_TRUE(answer("c1", "a", "b", plain_answer).ok());
  EXPECT_EQ(table.byPort(ap + 1)->spec.source.advertised->toString(), "192.0.2.30:40011");
}

TEST_F(CallRegistryTest, OurOwnAddressIsNeverAPeerAndPortsDoNotWrap) {
  // A peer "announcing" one of xemsd's own media sockets (another call's port).
  ASSERT_TRUE(offer("c0", "x", kAliceOffer).ok());
  uint16_t victim = port("c0", "x", 1);
  std::string own = kAliceOffer;
  own.replace(own.find("c=IN IP4 192.0.2.10"), 19, "c=IN IP4 203.0.113.1");
  own.replace(own.find("m=audio 49170"), 13, "m=audio " + std::to_string(victim));
  ASSERT_TRUE(offer("c1", "ft", own).ok());
  EXPECT_FALSE(table.byPort(port("c1", "ft", 1))->spec.source.advertised.has_value());
  // Our address with a port outside the media range is a co-located PBX: fine.
  std::string pbx = kAliceOffer;
  pbx.replace(pbx.find("c=IN IP4 192.0.2.10"), 19, "c=IN IP4 127.0.0.1");
  ASSERT_TRUE(offer("c3", "ft", pbx).ok());
  EXPECT_EQ(table.byPort(port("c3", "ft", 1))->spec.source.advertised->toString(),
            "127.0.0.1:49170");
  std::string top = kAliceOffer;
  top.replace(top.find("m=audio 49170"), 13, "m=audio 65535");
  ASSERT_TRUE(offer("c2", "ft", top).ok());
  uint16_t p = port("c2", "ft", 1);
  EXPECT_EQ(table.byPort(p)->spec.source.advertised->toString(), "192.0.2.10:65535");
  EXPECT_FALSE(table.byPort(p + 1)->spec.source.advertised.has_value());
}

TEST_F(CallRegistryTest, ParticipantsAndAliasesPerCallAreBounded) {
  OfferAnswerRequest r;
  r.call_id = "many";
  r.from_tag = "ft";
  r.sdp = kAliceOffer;
  int ok = 0;
  for (int i = 0; i < 40; ++i) {
    r.via_branch = "b" + std::to_string(i);
    auto res = reg.offerAnswer(r);
    if (!res.ok()) {
      EXPECT_EQ(res.error().message, "Too many participants in call");
      break;
    }
    ++ok;
  }
  EXPECT_EQ(ok, 15);  // the caller plus 15 forks
  ASSERT_TRUE(offer("c2", "ft", kAliceOffer).ok());
  int aliases = 0;
  for (int i = 0; i < 20; ++i) {
    if (!answer("c2", "ft", "tag" + std::to_string(i), kBobAnswer).ok()) {
      break;
    }
    ++aliases;
  }
  EXPECT_EQ(aliases, 9);  // the first to-tag plus 8 aliases
  EXPECT_EQ(reg.callCount(), 2u);
}

}  // namespace
}  // namespace xems::session

namespace xems::session {
namespace {

// A journalled call survives the registry (a daemon killed with -9): a second registry restores
// it with the same sockets, peers and SDP state, programs the same flows, and serves it on.
TEST_F(CallRegistryTest, JournalledCallIsRestoredByTheNextRun) {
  char dir_template[] = "/tmp/xems-journal-XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  const std::string path = std::string(dir_template) + "/calls.journal";
  {
    auto journal = StateJournal::open(path);
    ASSERT_TRUE(journal.ok()) << journal.error().message;
    reg.setJournal(journal->get());
    ASSERT_TRUE(offer("jc", "ft", kAliceOffer).ok());
    ASSERT_TRUE(answer("jc", "ft", "tt", kBobAnswer).ok());
    ASSERT_TRUE(offer("gone", "x", kAliceOffer).ok());
    reg.remove(DeleteRequest{.call_id = "gone"});  // ended: not in the journal any more
    reg.setJournal(nullptr);
  }
  const uint16_t a_port = port("jc", "ft", 1);
  const uint16_t b_port = port("jc", "tt", 1);
  // The first run's sockets are gone with it (the fake table holds them here).
  for (auto& [id, e] : table.flows) {
    e.fd.reset();
  }

  FakeTable table2;
  Config cfg = testConfig();
  CallRegistry reg2(cfg, table2, time);
  auto journal = StateJournal::open(path);
  ASSERT_TRUE(journal.ok());
  auto loaded = (*journal)->load();
  ASSERT_TRUE(loaded.ok());
  ASSERT_EQ(loaded->calls.size(), 1u);
  reg2.setJournal(journal->get());
  EXPECT_EQ(reg2.restore(loaded->calls), 1u);
  EXPECT_EQ(reg2.restore(loaded->calls), 0u);  // already there: not twice

  auto q = reg2.query("jc");
  ASSERT_TRUE(q.ok()) << q.error().message;
  ASSERT_EQ(q->participants.size(), 2u);
  EXPECT_EQ(q->participants[0].tag, "ft");
  EXPECT_EQ(q->participants[1].tag, "tt");
  EXPECT_EQ(q->participants[0].medias.at(0).streams.at(0).local.port(), a_port);
  EXPECT_EQ(q->participants[1].medias.at(0).streams.at(0).local.port(), b_port);
  // Flows as after the answer: Alice's audio socket sends to Bob's, Bob's to Alice's.
  const auto* fa = table2.byPort(a_port);
  const auto* fb = table2.byPort(b_port);
  ASSERT_NE(fa, nullptr);
  ASSERT_NE(fb, nullptr);
  EXPECT_TRUE(fa->fd);  // bound again
  EXPECT_EQ(fa->spec.rtp_sink, fb->spec.id);
  EXPECT_EQ(fb->spec.rtp_sink, fa->spec.id);
  ASSERT_TRUE(fa->spec.source.advertised.has_value());
  EXPECT_EQ(fa->spec.source.advertised->toString(), "192.0.2.10:49170");

  // It goes on: a re-INVITE keeps the ports; delete ends it and empties the journal.
  OfferAnswerRequest r;
  r.op = Op::kOffer;
  r.call_id = "jc";
  r.from_tag = "ft";
  r.to_tag = "tt";
  r.sdp = kAliceOffer;
  auto re = reg2.offerAnswer(r);
  ASSERT_TRUE(re.ok()) << re.error().message;
  EXPECT_NE(re->sdp.find(fmt::format("m=audio {} ", b_port)), std::string::npos) << re->sdp;
  EXPECT_TRUE(reg2.remove(DeleteRequest{.call_id = "jc"}).found);
  auto after = (*journal)->load();
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->calls.empty());
  reg2.setJournal(nullptr);
  std::filesystem::remove_all(dir_template);
}

TEST_F(CallRegistryTest, RestoreSkipsACallWhosePortIsTaken) {
  char dir_template[] = "/tmp/xems-journal-XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  const std::string path = std::string(dir_template) + "/calls.journal";
  auto journal = StateJournal::open(path);
  ASSERT_TRUE(journal.ok());
  reg.setJournal(journal->get());
  ASSERT_TRUE(offer("busy", "ft", kAliceOffer).ok());
  reg.setJournal(nullptr);
  // The first registry still holds the sockets: the ports are taken.
  FakeTable table2;
  CallRegistry reg2(testConfig(), table2, time);
  auto loaded = (*journal)->load();
  ASSERT_TRUE(loaded.ok());
  reg2.setJournal(journal->get());
  EXPECT_EQ(reg2.restore(loaded->calls), 0u);
  EXPECT_FALSE(reg2.query("busy").ok());
  EXPECT_TRUE(table2.flows.empty());
  EXPECT_TRUE((*journal)->load()->calls.empty());  // dropped from the journal
  reg2.setJournal(nullptr);
  std::filesystem::remove_all(dir_template);
}

}  // namespace
}  // namespace xems::session
