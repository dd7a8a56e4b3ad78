// Typed helpers: direction, rtcp, ICE, rtpmap/fmtp/rtcp-fb, static payload types, codec lists.
#include <gtest/gtest.h>

#include "ctrl/sdp/sdp.h"

namespace xems::sdp {
namespace {

Session parseOk(std::string_view text) {
  auto r = parse(text);
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? std::move(r).value() : Session{};
}

constexpr std::string_view kHead = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nt=0 0\n";

// ---- direction ----

TEST(SdpDirectionTest, Names) {
  for (auto d :
       {Direction::kSendRecv, Direction::kSendOnly, Direction::kRecvOnly, Direction::kInactive}) {
    EXPECT_EQ(directionFromName(directionName(d)), d);
    EXPECT_TRUE(isDirectionAttribute(directionName(d)));
  }
  EXPECT_FALSE(directionFromName("direction"));
  EXPECT_FALSE(isDirectionAttribute("SENDRECV"));
}

TEST(SdpDirectionTest, MediaThenSessionThenDefault) {
  Session s = parseOk(std::string(kHead) +
                      "a=recvonly\nm=audio 1 RTP/AVP 0\na=sendonly\nm=audio 2 RTP/AVP 0\n");
  EXPECT_EQ(s.direction(), Direction::kRecvOnly);
  EXPECT_EQ(s.media[0].direction(), Direction::kSendOnly);
  EXPECT_EQ(s.media[1].direction(), std::nullopt);
  EXPECT_EQ(s.effectiveDirection(s.media[0]), Direction::kSendOnly);
  EXPECT_EQ(s.effectiveDirection(s.media[1]), Direction::kRecvOnly);
  s.removeAttributes("recvonly");
  EXPECT_EQ(s.effectiveDirection(s.media[1]), Direction::kSendRecv);
}

TEST(SdpDirectionTest, SetterReplacesInPlaceAndRemovesOthers) {
  Session s = parseOk(std::string(kHead) +
                      "m=audio 1 RTP/AVP 0\na=ptime:20\na=sendrecv\na=x\na=inactive\na=y\n");
  Media& m = s.media[0];
  m.setDirection(Direction::kSendOnly);
  ASSERT_EQ(m.attributes.size(), 4u);
  EXPECT_EQ(m.attributes[0].name, "ptime");
  EXPECT_EQ(m.attributes[1], Attribute::flag("sendonly"));
  EXPECT_EQ(m.attributes[2].name, "x");
  EXPECT_EQ(m.attributes[3].name, "y");
  EXPECT_EQ(m.direction(), Direction::kSendOnly);

  Media fresh;
  fresh.setDirection(Direction::kInactive);
  ASSERT_EQ(fresh.attributes.size(), 1u);
  EXPECT_EQ(fresh.attributes[0], Attribute::flag("inactive"));

  s.setDirection(Direction::kRecvOnly);
  EXPECT_EQ(s.direction(), Direction::kRecvOnly);
}

TEST(SdpDirectionTest, HoldWithZeroAddress) {
  Session s = parseOk(std::string(kHead) +
                      "m=audio 1 RTP/AVP 0\nc=IN IP4 0.0.0.0\na=sendonly\n"
                      "m=audio 2 RTP/AVP 0\nc=IN IP6 ::\n"
                      "m=audio 3 RTP/AVP 0\nc=IN IP4 192.0.2.1\n");
  EXPECT_TRUE(s.media[0].connection->isZero());
  EXPECT_TRUE(s.media[1].connection->isZero());
  EXPECT_FALSE(s.media[2].connection->isZero());
  EXPECT_EQ(s.effectiveDirection(s.media[0]), Direction::kSendOnly);
}

// ---- attributes and connections ----

TEST(SdpAttributeTest, FindAndRemove) {
  Session s = parseOk(std::string(kHead) +
                      "m=audio 1 RTP/AVP 0\na=candidate:1\na=mid:0\n"
                      "a=candidate:2\na=ice-ufrag:u\na=ice-pwd:p\n"
                      "a=end-of-candidates\na=rtcp-mux\n");
  Media& m = s.media[0];
  ASSERT_NE(m.findAttribute("mid"), nullptr);
  EXPECT_EQ(m.findAttribute("mid")->value, "0");
  EXPECT_EQ(m.findAttribute("nope"), nullptr);
  auto cands = m.findAttributes("candidate");
  ASSERT_EQ(cands.size(), 2u);
  EXPECT_EQ(cands[1]->value, "2");
  m.findAttribute("mid")->value = "audio";
  EXPECT_EQ(m.findAttribute("mid")->value, "audio");
  EXPECT_TRUE(m.hasRtcpMux());
  EXPECT_EQ(m.removeAttributes("candidate"), 2u);
  EXPECT_EQ(m.removeAttributes("candidate"), 0u);
  EXPECT_EQ(m.removeIceAttributes(), 3u);
  ASSERT_EQ(m.attributes.size(), 2u);
  EXPECT_EQ(m.attributes[0].name, "mid");
  EXPECT_EQ(m.attributes[1].name, "rtcp-mux");
}

TEST(SdpAttributeTest, IceAttributeNames) {
  for (auto n : {"ice-ufrag", "ice-pwd", "ice-options", "candidate", "end-of-candidates",
                 "remote-candidates", "ice-lite", "ice-mismatch", "ice-pacing"}) {
    EXPECT_TRUE(isIceAttribute(n)) << n;
  }
  for (auto n : {"", "ice", "fingerprint", "setup", "rtcp-mux", "Candidate", "candidates"}) {
    EXPECT_FALSE(isIceAttribute(n)) << n;
  }
}

TEST(SdpAttributeTest, SessionIceLite) {
  Session s = parseOk(std::string(kHead) + "a=ice-lite\na=group:BUNDLE 0\n");
  EXPECT_TRUE(s.hasAttribute("ice-lite"));
  EXPECT_EQ(s.removeIceAttributes(), 1u);
  EXPECT_EQ(s.findAttribute("group")->value, "BUNDLE 0");
}

TEST(SdpAttributeTest, EffectiveConnection) {
  Session s = parseOk(std::string(kHead) +
                      "c=IN IP4 192.0.2.1\nm=audio 1 RTP/AVP 0\n"
                      "m=audio 2 RTP/AVP 0\nc=IN IP4 192.0.2.2\n");
  EXPECT_EQ(s.effectiveConnection(s.media[0])->address, "192.0.2.1");
  EXPECT_EQ(s.effectiveConnection(s.media[1])->address, "192.0.2.2");
  s.connection.reset();
  EXPECT_EQ(s.effectiveConnection(s.media[0]), nullptr);
}

TEST(SdpAttributeTest, ProtoClassification) {
  for (auto p : {"RTP/AVP", "RTP/AVPF", "RTP/SAVP", "RTP/SAVPF", "UDP/TLS/RTP/SAVPF",
                 "TCP/TLS/RTP/SAVPF", "TCP/RTP/AVP"}) {
    EXPECT_TRUE(isRtpProto(p)) << p;
  }
  for (auto p : {"udptl", "UDP/DTLS/SCTP", "DTLS/SCTP", "TCP/MSRP", ""}) {
    EXPECT_FALSE(isRtpProto(p)) << p;
  }
}

// ---- a=rtcp ----

TEST(SdpRtcpTest, Parse) {
  auto r = parseRtcp("53020");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->port, 53020);
  EXPECT_FALSE(r->address);

  r = parseRtcp("53020 IN IP4 126.16.64.4");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->port, 53020);
  ASSERT_TRUE(r->address);
  EXPECT_EQ(r->address->toString(), "126.16.64.4");

  r = parseRtcp("9 IN IP6 2001:db8::7");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->address->isV6());

  for (auto bad : {"", "x", "70000", "1 IN IP4", "1 IN IP4 1.2.3", "1 IN IP6 1.2.3.4",
                   "1 IN IP4 224.0.0.1/2", "1  IN IP4 1.2.3.4"}) {
    EXPECT_FALSE(parseRtcp(bad).ok()) << bad;
  }
  EXPECT_EQ(parseRtcp("1 IN IP4 1.2.3").error().message,
            "bad a=rtcp address: invalid IP4 address '1.2.3'");
}

TEST(SdpRtcpTest, FormatAndMediaLookup) {
  EXPECT_EQ(formatRtcp(Rtcp{.port = 5}), "5");
  EXPECT_EQ(formatRtcp(Rtcp{.port = 5, .address = IpAddr::parse("::1")}), "5 IN IP6 ::1");
  Session s = parseOk(std::string(kHead) +
                      "m=audio 1 RTP/AVP 0\na=rtcp:bad\n"
                      "a=rtcp:4001 IN IP4 192.0.2.9\nm=audio 2 RTP/AVP 0\n");
  auto r = s.media[0].rtcp();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->port, 4001);
  EXPECT_EQ(r->address->toString(), "192.0.2.9");
  EXPECT_FALSE(s.media[1].rtcp());
}

// ---- rtpmap / fmtp / rtcp-fb ----

TEST(SdpRtpMapTest, Parse) {
  auto r = parseRtpMap("111 opus/48000/2");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r,
            (RtpMap{.payload_type = 111, .encoding = "opus", .clock_rate = 48000, .channels = 2}));
  r = parseRtpMap("101 telephone-event/8000");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->encoding, "telephone-event");
  EXPECT_FALSE(r->channels);
  EXPECT_EQ(formatRtpMap(*r), "101 telephone-event/8000");
  EXPECT_EQ(formatRtpMap(*parseRtpMap("111 opus/48000/2")), "111 opus/48000/2");
  for (auto bad : {"", "128 x/8000", "a PCMU/8000", "0 PCMU", "0 /8000", "0 PCMU/", "0 PCMU/0",
                   "0 PCMU/8000/", "0 PCMU/8000/x", "0 PCMU/99999999999", "0"}) {
    EXPECT_FALSE(parseRtpMap(bad).ok()) << bad;
  }
}

TEST(SdpRtpMapTest, Lookups) {
  Session s = parseOk(std::string(kHead) +
                      "m=video 1 RTP/AVP 96 97\n"
                      "a=rtpmap:96 VP8/90000\na=rtpmap:97 rtx/90000\na=fmtp:97 apt=96\n"
                      "a=rtcp-fb:96 nack\na=rtcp-fb:96 nack pli\na=rtcp-fb:* ccm fir\n"
                      "a=rtcp-fb:960 bogus\n");
  const Media& m = s.media[0];
  EXPECT_EQ(m.rtpMap("96")->encoding, "VP8");
  EXPECT_FALSE(m.rtpMap("9"));
  EXPECT_EQ(m.fmtp("97"), "apt=96");
  EXPECT_FALSE(m.fmtp("96"));
  EXPECT_EQ(m.rtcpFb("96"), (std::vector<std::string_view>{"nack", "nack pli"}));
  EXPECT_EQ(m.rtcpFb("*"), (std::vector<std::string_view>{"ccm fir"}));
  EXPECT_TRUE(m.rtcpFb("97").empty());
}

// ---- static payload types ----

TEST(SdpStaticPtTest, Table) {
  static_assert(staticPayloadType(0)->encoding == "PCMU");
  static_assert(staticPayloadType(8)->clock_rate == 8000);
  static_assert(staticPayloadType(10)->channels == 2);
  static_assert(!staticPayloadType(2));
  static_assert(!staticPayloadType(96));
  static_assert(staticPayloadTypeFor("pcma", 8000) == 8);
  static_assert(staticPayloadTypeFor("L16", 44100, 2) == 10);
  static_assert(staticPayloadTypeFor("L16", 44100) == 11);
  static_assert(!staticPayloadTypeFor("opus", 48000, 2));
  struct Expect {
    unsigned pt;
    const char* rtpmap;
  };
  for (auto e : std::initializer_list<Expect>{
           {0, "0 PCMU/8000"},    {3, "3 GSM/8000"},     {4, "4 G723/8000"},
           {5, "5 DVI4/8000"},    {6, "6 DVI4/16000"},   {7, "7 LPC/8000"},
           {8, "8 PCMA/8000"},    {9, "9 G722/8000"},    {10, "10 L16/44100/2"},
           {11, "11 L16/44100"},  {12, "12 QCELP/8000"}, {13, "13 CN/8000"},
           {14, "14 MPA/90000"},  {15, "15 G728/8000"},  {16, "16 DVI4/11025"},
           {17, "17 DVI4/22050"}, {18, "18 G729/8000"},  {25, "25 CelB/90000"},
           {26, "26 JPEG/90000"}, {28, "28 nv/90000"},   {31, "31 H261/90000"},
           {32, "32 MPV/90000"},  {33, "33 MP2T/90000"}, {34, "34 H263/90000"}}) {
    auto st = staticPayloadType(e.pt);
    ASSERT_TRUE(st) << e.pt;
    EXPECT_EQ(formatRtpMap(st->toRtpMap()), e.rtpmap);
  }
  for (unsigned pt : {1u, 2u, 19u, 20u, 24u, 27u, 29u, 30u, 35u, 95u, 96u, 127u, 255u, 1000u}) {
    EXPECT_FALSE(staticPayloadType(pt)) << pt;
  }
}

// ---- codec lists ----

TEST(SdpCodecTest, FromRtpmapAndStaticTable) {
  Session s = parseOk(std::string(kHead) +
                      "m=audio 1 RTP/AVP 111 0 8 18 101 96\n"
                      "a=rtpmap:111 opus/48000/2\na=fmtp:111 minptime=10;useinbandfec=1\n"
                      "a=rtcp-fb:111 transport-cc\na=fmtp:18 annexb=no\n"
                      "a=rtpmap:8 PCMA/8000\n"
                      "a=rtpmap:101 telephone-event/8000\na=fmtp:101 0-16\n"
                      "a=rtpmap:127 unused/8000\n");
  auto codecs = s.media[0].codecs();
  ASSERT_EQ(codecs.size(), 6u);
  EXPECT_EQ(codecs[0].format, "111");
  EXPECT_EQ(codecs[0].payload_type, 111);
  EXPECT_EQ(codecs[0].encoding, "opus");
  EXPECT_EQ(codecs[0].clock_rate, 48000u);
  EXPECT_EQ(codecs[0].channelCount(), 2);
  EXPECT_EQ(codecs[0].fmtp, "minptime=10;useinbandfec=1");
  EXPECT_EQ(codecs[0].rtcp_fb, (std::vector<std::string>{"transport-cc"}));
  EXPECT_TRUE(codecs[0].has_rtpmap);

  EXPECT_EQ(codecs[1].encoding, "PCMU");  // static table
  EXPECT_EQ(codecs[1].clock_rate, 8000u);
  EXPECT_FALSE(codecs[1].channels);
  EXPECT_EQ(codecs[1].channelCount(), 1);
  EXPECT_FALSE(codecs[1].has_rtpmap);
  ASSERT_TRUE(codecs[1].rtpMap());
  EXPECT_EQ(formatRtpMap(*codecs[1].rtpMap()), "0 PCMU/8000");

  EXPECT_TRUE(codecs[2].has_rtpmap);
  EXPECT_EQ(codecs[3].encoding, "G729");
  EXPECT_EQ(codecs[3].fmtp, "annexb=no");
  EXPECT_EQ(codecs[4].encoding, "telephone-event");
  EXPECT_EQ(codecs[4].fmtp, "0-16");

  EXPECT_EQ(codecs[5].payload_type, 96);  // dynamic without rtpmap: unknown
  EXPECT_EQ(codecs[5].encoding, "");
  EXPECT_FALSE(codecs[5].rtpMap());
}

TEST(SdpCodecTest, LastRtpmapWinsAndMalformedFallsBack) {
  Session s = parseOk(std::string(kHead) +
                      "m=audio 1 RTP/AVP 96 0\n"
                      "a=rtpmap:96 old/8000\na=rtpmap:96 new/16000\n"
                      "a=rtpmap:0 broken\n");
  auto codecs = s.media[0].codecs();
  EXPECT_EQ(codecs[0].encoding, "new");
  EXPECT_EQ(codecs[0].clock_rate, 16000u);
  EXPECT_EQ(s.media[0].rtpMap("96")->encoding, "new");
  EXPECT_EQ(codecs[1].encoding, "PCMU");
  EXPECT_FALSE(codecs[1].has_rtpmap);
}

TEST(SdpCodecTest, NonRtpFormats) {
  Session s = parseOk(std::string(kHead) +
                      "m=image 4000 udptl t38\n"
                      "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\n"
                      "a=fmtp:webrtc-datachannel max-message-size=262144\n"
                      "m=audio 5 RTP/AVP 200 0\n");
  auto t38 = s.media[0].codecs();
  ASSERT_EQ(t38.size(), 1u);
  EXPECT_EQ(t38[0].format, "t38");
  EXPECT_FALSE(t38[0].payload_type);
  EXPECT_EQ(t38[0].encoding, "");
  auto dc = s.media[1].codecs();
  ASSERT_EQ(dc.size(), 1u);
  EXPECT_EQ(dc[0].fmtp, "max-message-size=262144");
  auto odd = s.media[2].codecs();
  EXPECT_FALSE(odd[0].payload_type);  // 200 is not an RTP payload type
  EXPECT_EQ(odd[1].encoding, "PCMU");
}

TEST(SdpCodecTest, WebRtcSample) {
  Session s = parseOk(
      "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
      "a=group:BUNDLE 0\r\n"
      "m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\nc=IN IP4 0.0.0.0\r\n"
      "a=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:Oyef\r\na=mid:0\r\na=rtcp-mux\r\n"
      "a=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 goog-remb\r\na=rtcp-fb:96 nack\r\n"
      "a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\na=ssrc:1 cname:x\r\n");
  const Media& m = s.media[0];
  EXPECT_TRUE(m.hasRtcpMux());
  EXPECT_EQ(m.rtcp()->port, 9);
  EXPECT_TRUE(m.rtcp()->address->isAny());
  auto codecs = m.codecs();
  ASSERT_EQ(codecs.size(), 2u);
  EXPECT_EQ(codecs[0].rtcp_fb, (std::vector<std::string>{"goog-remb", "nack"}));
  EXPECT_EQ(codecs[1].encoding, "rtx");
  EXPECT_EQ(codecs[1].fmtp, "apt=96");
  EXPECT_EQ(s.effectiveDirection(m), Direction::kSendRecv);
}

}  // namespace
}  // namespace xems::sdp
