// Parser and writer: round trips of realistic SDPs, model contents, writer order, bad inputs.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "ctrl/sdp/sdp.h"

namespace xems::sdp {
namespace {

// Test SDPs are written with "\n" and converted to CRLF.
std::string crlf(std::string_view lf) {
  std::string out;
  for (char c : lf) {
    if (c == '\n') {
      out.push_back('\r');
    }
    out.push_back(c);
  }
  return out;
}

std::string readFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Session parseOk(std::string_view text) {
  auto r = parse(text);
  EXPECT_TRUE(r.ok()) << r.error().message;
  if (!r.ok()) {
    return Session{};
  }
  return std::move(r).value();
}

std::string parseError(std::string_view text) {
  auto r = parse(text);
  EXPECT_FALSE(r.ok()) << "unexpectedly parsed:\n" << text;
  if (r.ok()) {
    return "";
  }
  EXPECT_EQ(r.error().code, std::make_error_code(std::errc::invalid_argument));
  return r.error().message;
}

// ---- round trips of the sample files ----

class SampleRoundTripTest : public ::testing::TestWithParam<std::string> {};

TEST_P(SampleRoundTripTest, ByteIdentical) {
  std::filesystem::path p = std::filesystem::path(XEMS_TEST_DATA_DIR) / "sdp" / GetParam();
  std::string text = readFile(p);
  ASSERT_FALSE(text.empty()) << p;
  auto r = parse(text);
  ASSERT_TRUE(r.ok()) << GetParam() << ": " << r.error().message;
  EXPECT_EQ(write(*r), text);
  // And the LF-only version parses to the same model.
  std::string lf;
  for (char c : text) {
    if (c != '\r') {
      lf.push_back(c);
    }
  }
  auto r2 = parse(lf);
  ASSERT_TRUE(r2.ok()) << r2.error().message;
  EXPECT_EQ(*r2, *r);
}

INSTANTIATE_TEST_SUITE_P(Samples, SampleRoundTripTest,
                         ::testing::Values("sipp_audio.sdp", "asterisk_audio.sdp",
                                           "freeswitch_audio_video.sdp", "webrtc_offer.sdp",
                                           "ipv6.sdp", "hold_sendonly.sdp", "rejected_media.sdp",
                                           "port_count_multicast.sdp", "session_c_only.sdp",
                                           "unknown_lines.sdp", "t38_image.sdp"),
                         [](const auto& info) {
                           std::string n = info.param;
                           n = n.substr(0, n.find('.'));
                           return n;
                         });

// ---- model contents ----

TEST(SdpParseTest, SippAudioModel) {
  Session s =
      parseOk(crlf("v=0\n"
                   "o=user1 53655765 2353687637 IN IP4 192.0.2.10\n"
                   "s=-\n"
                   "c=IN IP4 192.0.2.10\n"
                   "t=0 0\n"
                   "m=audio 6000 RTP/AVP 0 8 101\n"
                   "a=rtpmap:101 telephone-event/8000\n"
                   "a=fmtp:101 0-16\n"
                   "a=sendrecv\n"));
  EXPECT_EQ(s.origin.username, "user1");
  EXPECT_EQ(s.origin.session_id, "53655765");
  EXPECT_EQ(s.origin.session_version, "2353687637");
  EXPECT_EQ(s.origin.family, Family::kIpv4);
  EXPECT_EQ(s.origin.address, "192.0.2.10");
  EXPECT_EQ(s.session_name, "-");
  ASSERT_TRUE(s.connection);
  EXPECT_EQ(s.connection->address, "192.0.2.10");
  EXPECT_EQ(s.connection->suffix, "");
  ASSERT_EQ(s.lines.size(), 1u);
  EXPECT_EQ(s.lines[0], (Line{.type = 't', .value = "0 0"}));
  ASSERT_EQ(s.media.size(), 1u);
  const Media& m = s.media[0];
  EXPECT_EQ(m.type, "audio");
  EXPECT_EQ(m.port, 6000);
  EXPECT_FALSE(m.port_count);
  EXPECT_EQ(m.proto, "RTP/AVP");
  EXPECT_EQ(m.formats, (std::vector<std::string>{"0", "8", "101"}));
  EXPECT_FALSE(m.connection);
  ASSERT_EQ(m.attributes.size(), 3u);
  EXPECT_EQ(m.attributes[0], Attribute::withValue("rtpmap", "101 telephone-event/8000"));
  EXPECT_EQ(m.attributes[2], Attribute::flag("sendrecv"));
}

TEST(SdpParseTest, AttributeValueForms) {
  Session s = parseOk(
      "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nt=0 0\n"
      "a=flag\na=empty:\na=k:v:w\na=:novalue\na=\n");
  ASSERT_EQ(s.attributes.size(), 5u);
  EXPECT_EQ(s.attributes[0], Attribute::flag("flag"));
  EXPECT_EQ(s.attributes[1], Attribute::withValue("empty", ""));
  EXPECT_EQ(s.attributes[2], Attribute::withValue("k", "v:w"));
  EXPECT_EQ(s.attributes[3], Attribute::withValue("", "novalue"));
  EXPECT_EQ(s.attributes[4], Attribute::flag(""));
  EXPECT_EQ(write(s), crlf("v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nt=0 0\n"
                           "a=flag\na=empty:\na=k:v:w\na=:novalue\na=\n"));
}

TEST(SdpParseTest, PortCountAndMulticastSuffix) {
  Session s = parseOk(
      "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 224.2.17.12/127/3\nt=0 0\n"
      "m=audio 49170/2 RTP/AVP 0\nm=video 5000 RTP/AVP 31\n"
      "c=IN IP6 ff15::101/3\n");
  ASSERT_TRUE(s.connection);
  EXPECT_EQ(s.connection->address, "224.2.17.12");
  EXPECT_EQ(s.connection->suffix, "/127/3");
  EXPECT_EQ(s.media[0].port, 49170);
  EXPECT_EQ(s.media[0].port_count, 2);
  ASSERT_TRUE(s.media[1].connection);
  EXPECT_EQ(s.media[1].connection->family, Family::kIpv6);
  EXPECT_EQ(s.media[1].connection->suffix, "/3");
}

TEST(SdpParseTest, Ipv6) {
  Session s = parseOk(
      "v=0\no=a 1 2 IN IP6 2001:db8::1\ns=-\nc=IN IP6 2001:db8::2\nt=0 0\n"
      "m=audio 4000 RTP/AVP 0\n");
  EXPECT_EQ(s.origin.family, Family::kIpv6);
  EXPECT_EQ(s.connection->family, Family::kIpv6);
  auto ip = s.connection->ip();
  ASSERT_TRUE(ip);
  EXPECT_TRUE(ip->isV6());
  EXPECT_EQ(ip->toString(), "2001:db8::2");
}

TEST(SdpParseTest, RejectedMediaAndEmptyFormatList) {
  Session s = parseOk(
      "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nt=0 0\nm=video 0 RTP/AVP 31\n"
      "m=audio 0 RTP/AVP\n");
  EXPECT_TRUE(s.media[0].isRejected());
  EXPECT_TRUE(s.media[1].formats.empty());
  EXPECT_EQ(write(s), crlf("v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nt=0 0\nm=video 0 RTP/AVP 31\n"
                           "m=audio 0 RTP/AVP\n"));
}

TEST(SdpParseTest, LfOnlyAndMixedLineEndsAccepted) {
  std::string lf = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nt=0 0\nm=audio 4000 RTP/AVP 0\n";
  std::string mixed = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\ns=-\r\nt=0 0\nm=audio 4000 RTP/AVP 0";
  Session a = parseOk(lf);
  Session b = parseOk(mixed);
  EXPECT_EQ(a, b);
  EXPECT_EQ(write(a), crlf(lf));
}

TEST(SdpParseTest, MissingFinalNewlineAccepted) {
  Session s = parseOk("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\na=x");
  ASSERT_EQ(s.attributes.size(), 1u);
  EXPECT_EQ(s.attributes[0].name, "x");
}

TEST(SdpParseTest, EmptyLineEndsSdpLikeRtpengine) {
  Session s = parseOk(
      "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n"
      "m=audio 4000 RTP/AVP 0\r\n\r\nthis is ignored\r\nm=video 1 RTP/AVP 31\r\n");
  EXPECT_EQ(s.media.size(), 1u);
}

TEST(SdpParseTest, MissingSessionNameAndTimingTolerated) {
  Session s = parseOk("v=0\no=- 1 1 IN IP4 192.0.2.1\nm=audio 4000 RTP/AVP 0\n");
  EXPECT_EQ(s.session_name, "-");
  EXPECT_TRUE(s.lines.empty());
  EXPECT_EQ(write(s), crlf("v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nt=0 0\nm=audio 4000 RTP/AVP 0\n"));
}

TEST(SdpParseTest, EmptySessionNameKept) {
  Session s = parseOk("v=0\no=- 1 1 IN IP4 192.0.2.1\ns=\nt=0 0\n");
  EXPECT_EQ(s.session_name, "");
  EXPECT_EQ(write(s), crlf("v=0\no=- 1 1 IN IP4 192.0.2.1\ns=\nt=0 0\n"));
}

TEST(SdpParseTest, OriginWithFqdn) {
  Session s = parseOk("v=0\no=- 1 1 IN IP4 pbx.example.com\ns=-\nt=0 0\n");
  EXPECT_EQ(s.origin.address, "pbx.example.com");
}

TEST(SdpParseTest, TrailingBlanksOnStructuredLinesTolerated) {
  Session s = parseOk(
      "v=0\no=- 1 1 IN IP4 192.0.2.1 \ns=-\nc=IN IP4 192.0.2.1\t\nt=0 0\n"
      "m=audio 4000 RTP/AVP 0 8 \na=ptime:20 \n");
  EXPECT_EQ(s.origin.address, "192.0.2.1");
  EXPECT_EQ(s.connection->address, "192.0.2.1");
  EXPECT_EQ(s.media[0].formats, (std::vector<std::string>{"0", "8"}));
  EXPECT_EQ(s.media[0].attributes[0].value, "20 ");  // other values are verbatim
}

TEST(SdpParseTest, LowercaseNetTypeNormalised) {
  Session s = parseOk("v=0\no=- 1 1 in IP4 192.0.2.1\ns=-\nc=in IP4 192.0.2.1\nt=0 0\n");
  EXPECT_EQ(write(s), crlf("v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n"));
}

// ---- writer ----

TEST(SdpWriteTest, ReordersToRfcOrder) {
  // Input with session lines out of order, c= after b=, media b= before i=.
  Session s = parseOk(
      "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nt=0 0\nk=clear:x\nb=AS:1\n"
      "c=IN IP4 192.0.2.1\nz=0 0\ni=info\na=sendrecv\n"
      "m=audio 4000 RTP/AVP 0\na=ptime:20\nk=prompt\nb=AS:64\n"
      "c=IN IP4 192.0.2.2\ni=media info\n");
  EXPECT_EQ(write(s), crlf("v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\ni=info\nc=IN IP4 192.0.2.1\n"
                           "b=AS:1\nt=0 0\nz=0 0\nk=clear:x\na=sendrecv\n"
                           "m=audio 4000 RTP/AVP 0\ni=media info\nc=IN IP4 192.0.2.2\nb=AS:64\n"
                           "k=prompt\na=ptime:20\n"));
}

TEST(SdpWriteTest, UnknownLettersStayAfterTheirPredecessor) {
  Session s = parseOk(
      "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\ny=first\nb=AS:1\nx=after-b\n"
      "t=0 0\nm=audio 4000 RTP/AVP 0\na=ptime:20\nw=after-attr\n");
  // y= precedes everything, x= sticks to b=, w= moves before the media's a= lines.
  EXPECT_EQ(write(s), crlf("v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\ny=first\nb=AS:1\nx=after-b\n"
                           "t=0 0\nm=audio 4000 RTP/AVP 0\nw=after-attr\na=ptime:20\n"));
}

TEST(SdpWriteTest, BuildFromScratch) {
  Session s;
  s.origin = Origin{.username = "-",
                    .session_id = "42",
                    .session_version = "1",
                    .family = Family::kIpv4,
                    .address = "203.0.113.1"};
  s.connection = Connection::fromIp(*IpAddr::parse("203.0.113.1"));
  Media m{.type = "audio", .port = 30000, .proto = "RTP/AVP", .formats = {"8", "101"}};
  m.attributes.push_back(
      Attribute::withValue("rtpmap", formatRtpMap(staticPayloadType(8)->toRtpMap())));
  m.attributes.push_back(Attribute::withValue("rtpmap", "101 telephone-event/8000"));
  m.setDirection(Direction::kSendRecv);
  m.attributes.push_back(Attribute::withValue("rtcp", formatRtcp(Rtcp{.port = 30001})));
  s.media.push_back(std::move(m));
  std::string out = write(s);
  EXPECT_EQ(out, crlf("v=0\no=- 42 1 IN IP4 203.0.113.1\ns=-\nc=IN IP4 203.0.113.1\nt=0 0\n"
                      "m=audio 30000 RTP/AVP 8 101\na=rtpmap:8 PCMA/8000\n"
                      "a=rtpmap:101 telephone-event/8000\na=sendrecv\na=rtcp:30001\n"));
  Session back = parseOk(out);
  EXPECT_EQ(back.media[0].attributes.size(), 4u);
  EXPECT_EQ(write(back), out);
}

TEST(SdpWriteTest, EditedSessionWritesEdits) {
  std::string text = readFile(std::filesystem::path(XEMS_TEST_DATA_DIR) / "sdp" / "sipp_audio.sdp");
  Session s = parseOk(text);
  s.connection.reset();
  Media& m = s.media[0];
  m.port = 40000;
  m.connection = Connection{.family = Family::kIpv4, .address = "203.0.113.9"};
  m.removeAttributes("ptime");
  m.setDirection(Direction::kSendOnly);
  std::string out = write(s);
  EXPECT_NE(out.find("m=audio 40000 RTP/AVP 0 8 101\r\nc=IN IP4 203.0.113.9\r\n"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.find("a=ptime"), std::string::npos);
  EXPECT_NE(out.find("a=sendonly\r\n"), std::string::npos);
  EXPECT_EQ(out.find("a=sendrecv"), std::string::npos);
  EXPECT_EQ(out.find("c=IN IP4 192.0.2.10"), std::string::npos);
}

// ---- bad inputs ----

constexpr std::string_view kHead = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nt=0 0\n";

TEST(SdpErrorTest, Empty) { EXPECT_EQ(parseError(""), "Failed to parse SDP: empty SDP"); }

TEST(SdpErrorTest, NoVersionLine) {
  EXPECT_EQ(parseError("o=- 1 1 IN IP4 192.0.2.1\ns=-\n"),
            "Failed to parse SDP: line 1: SDP must start with a v=0 line");
  EXPECT_EQ(parseError("\r\nv=0\r\n"),
            "Failed to parse SDP: line 1: SDP must start with a v=0 line");
}

TEST(SdpErrorTest, BadVersion) {
  EXPECT_EQ(parseError("v=1\no=- 1 1 IN IP4 192.0.2.1\n"),
            "Failed to parse SDP: line 1: bad v= line: unsupported version '1'");
}

TEST(SdpErrorTest, SecondSession) {
  EXPECT_EQ(parseError(std::string(kHead) + "v=0\n"),
            "Failed to parse SDP: line 5: second v= line (multiple sessions are not supported)");
}

TEST(SdpErrorTest, MissingOrigin) {
  EXPECT_EQ(parseError("v=0\ns=-\nt=0 0\nm=audio 4000 RTP/AVP 0\n"),
            "Failed to parse SDP: missing o= line");
}

TEST(SdpErrorTest, Garbage) {
  EXPECT_EQ(parseError("hello world"), "Failed to parse SDP: line 1: missing '=' after line type");
  EXPECT_EQ(parseError("=0\n"), "Failed to parse SDP: line 1: invalid line type '='");
  EXPECT_EQ(parseError("v=0\nGET / HTTP/1.1\n"),
            "Failed to parse SDP: line 2: invalid line type 'G'");
  EXPECT_EQ(parseError("v=0\nhello\n"), "Failed to parse SDP: line 2: missing '=' after line type");
  EXPECT_EQ(parseError("v=0\nx\n"), "Failed to parse SDP: line 2: missing '=' after line type");
}

TEST(SdpErrorTest, BadOrigin) {
  EXPECT_EQ(parseError("v=0\no=- 1 IN IP4 192.0.2.1\n"),
            "Failed to parse SDP: line 2: bad o= line: expected '<username> <sess-id> "
            "<sess-version> IN <IP4|IP6> <address>'");
  EXPECT_EQ(parseError("v=0\no=- 1 1 XX IP4 192.0.2.1\n"),
            "Failed to parse SDP: line 2: bad o= line: unknown network type 'XX'");
  EXPECT_EQ(parseError("v=0\no=- 1 1 IN IP5 192.0.2.1\n"),
            "Failed to parse SDP: line 2: bad o= line: unknown address type 'IP5'");
  EXPECT_EQ(parseError("v=0\no=- 1 1 IN IP4 192.0.2.1 extra\n"),
            "Failed to parse SDP: line 2: bad o= line: trailing text after address");
  EXPECT_EQ(parseError("v=0\no=- 1  1 IN IP4 192.0.2.1\n"),
            "Failed to parse SDP: line 2: bad o= line: expected '<username> <sess-id> "
            "<sess-version> IN <IP4|IP6> <address>'");
  EXPECT_EQ(parseError(std::string(kHead) + "o=- 1 1 IN IP4 192.0.2.1\n"),
            "Failed to parse SDP: line 5: duplicate o= line");
}

TEST(SdpErrorTest, GarbageMediaLine) {
  EXPECT_EQ(parseError(std::string(kHead) + "m=garbage\n"),
            "Failed to parse SDP: line 5: bad m= line: expected '<media> <port> <proto> <fmt> "
            "...'");
  EXPECT_EQ(parseError(std::string(kHead) + "m=audio abc RTP/AVP 0\n"),
            "Failed to parse SDP: line 5: bad m= line: bad port 'abc'");
  EXPECT_EQ(parseError(std::string(kHead) + "m=audio -1 RTP/AVP 0\n"),
            "Failed to parse SDP: line 5: bad m= line: bad port '-1'");
  EXPECT_EQ(parseError(std::string(kHead) + "m=audio  4000 RTP/AVP 0\n"),
            "Failed to parse SDP: line 5: bad m= line: expected '<media> <port> <proto> <fmt> "
            "...'");
}

TEST(SdpErrorTest, PortOutOfRange) {
  EXPECT_EQ(parseError(std::string(kHead) + "m=audio 70000 RTP/AVP 0\n"),
            "Failed to parse SDP: line 5: bad m= line: port '70000' out of range");
  EXPECT_EQ(parseError(std::string(kHead) + "m=audio 99999999999 RTP/AVP 0\n"),
            "Failed to parse SDP: line 5: bad m= line: port '99999999999' out of range");
  EXPECT_EQ(parseError(std::string(kHead) + "m=audio 4000/0 RTP/AVP 0\n"),
            "Failed to parse SDP: line 5: bad m= line: bad port count '0'");
  EXPECT_EQ(parseError(std::string(kHead) + "m=audio 4000/11 RTP/AVP 0\n"),
            "Failed to parse SDP: line 5: bad m= line: bad port count '11'");
  EXPECT_EQ(parseError(std::string(kHead) + "m=audio 4000/ RTP/AVP 0\n"),
            "Failed to parse SDP: line 5: bad m= line: bad port count ''");
}

TEST(SdpErrorTest, BadConnection) {
  EXPECT_EQ(parseError(std::string(kHead) + "c=IN IP4 300.1.2.3\n"),
            "Failed to parse SDP: line 5: bad c= line: invalid IP4 address '300.1.2.3'");
  EXPECT_EQ(parseError(std::string(kHead) + "c=IN IP4 2001:db8::1\n"),
            "Failed to parse SDP: line 5: bad c= line: invalid IP4 address '2001:db8::1'");
  EXPECT_EQ(parseError(std::string(kHead) + "c=IN IP6 192.0.2.1\n"),
            "Failed to parse SDP: line 5: bad c= line: invalid IP6 address '192.0.2.1'");
  EXPECT_EQ(parseError(std::string(kHead) + "c=IN IP6 [::1]\n"),
            "Failed to parse SDP: line 5: bad c= line: invalid IP6 address '[::1]'");
  EXPECT_EQ(parseError(std::string(kHead) + "c=IN IP4 host.example.com\n"),
            "Failed to parse SDP: line 5: bad c= line: invalid IP4 address 'host.example.com'");
  EXPECT_EQ(parseError(std::string(kHead) + "c=IN IP4\n"),
            "Failed to parse SDP: line 5: bad c= line: expected 'IN <IP4|IP6> <address>'");
  EXPECT_EQ(parseError(std::string(kHead) + "c=ATM NSAP 47.0091\n"),
            "Failed to parse SDP: line 5: bad c= line: unknown network type 'ATM'");
  EXPECT_EQ(parseError(std::string(kHead) + "c=IN IP4 224.2.1.1/ttl\n"),
            "Failed to parse SDP: line 5: bad c= line: bad multicast suffix '/ttl'");
  EXPECT_EQ(parseError(std::string(kHead) + "c=IN IP4 224.2.1.1/1/2/3\n"),
            "Failed to parse SDP: line 5: bad c= line: bad multicast suffix '/1/2/3'");
  EXPECT_EQ(parseError(std::string(kHead) + "c=IN IP4 192.0.2.1\nc=IN IP4 192.0.2.1\n"),
            "Failed to parse SDP: line 6: duplicate c= line");
}

TEST(SdpErrorTest, SessionLinesInsideMedia) {
  std::string m = std::string(kHead) + "m=audio 4000 RTP/AVP 0\n";
  EXPECT_EQ(parseError(m + "o=- 1 1 IN IP4 192.0.2.1\n"),
            "Failed to parse SDP: line 6: o= line inside a media section");
  EXPECT_EQ(parseError(m + "s=x\n"), "Failed to parse SDP: line 6: s= line inside a media section");
  EXPECT_EQ(parseError(m + "t=0 0\n"),
            "Failed to parse SDP: line 6: t= line inside a media section");
  EXPECT_EQ(parseError(std::string(kHead) + "s=again\n"),
            "Failed to parse SDP: line 5: duplicate s= line");
}

TEST(SdpErrorTest, NulByte) {
  std::string text = std::string(kHead) + "a=x";
  text.push_back('\0');
  text += "y\n";
  EXPECT_EQ(parseError(text), "Failed to parse SDP: NUL byte at offset 42");
}

TEST(SdpErrorTest, StrayCarriageReturn) {
  EXPECT_EQ(parseError(std::string(kHead) + "a=x\ry\n"),
            "Failed to parse SDP: line 5: CR inside a line");
}

TEST(SdpErrorTest, TooManyMediaLines) {
  std::string text(kHead);
  for (size_t i = 0; i < kMaxMediaSections; ++i) {
    text += "m=audio 4000 RTP/AVP 0\n";
  }
  EXPECT_TRUE(parse(text).ok());
  text += "m=audio 4000 RTP/AVP 0\n";
  EXPECT_EQ(parseError(text), "Failed to parse SDP: line 69: too many m= lines (limit 64)");
}

TEST(SdpErrorTest, TooManyAttributes) {
  std::string text(kHead);
  for (size_t i = 0; i < kMaxAttributesPerSection; ++i) {
    text += "a=x\n";
  }
  text += "m=audio 4000 RTP/AVP 0\n";  // per section: media has its own budget
  for (size_t i = 0; i < kMaxAttributesPerSection; ++i) {
    text += "a=x\n";
  }
  EXPECT_TRUE(parse(text).ok());
  text += "a=x\n";
  EXPECT_EQ(parseError(text),
            "Failed to parse SDP: line 2054: too many a= lines in one section (limit 1024)");
}

TEST(SdpErrorTest, TooManyOtherLines) {
  std::string text(kHead);
  for (size_t i = 0; i < kMaxLinesPerSection; ++i) {
    text += "b=AS:1\n";
  }
  text += "m=audio 4000 RTP/AVP 0\n";  // per section: media has its own budget
  for (size_t i = 0; i < kMaxLinesPerSection; ++i) {
    text += "b=AS:1\n";
  }
  EXPECT_TRUE(parse(text).ok());
  text += "b=AS:1\n";
  EXPECT_EQ(parseError(text),
            "Failed to parse SDP: line 2054: too many lines in one section (limit 1024)");
}

TEST(SdpErrorTest, LineLimitLeavesRoomForTheDefaultTiming) {
  // 1024 session lines without t=: the writer adds t=0 0 and its output must still parse.
  std::string text = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\n";
  for (size_t i = 0; i < kMaxLinesPerSection; ++i) {
    text += "b=AS:1\n";
  }
  auto r = parse(text);
  ASSERT_TRUE(r.ok()) << r.error().message;
  std::string out = write(*r);
  auto again = parse(out);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(write(*again), out);
  // A second t= counts.
  EXPECT_EQ(parseError(out + "t=1 2\n"),
            "Failed to parse SDP: line 1029: too many lines in one section (limit 1024)");
}

TEST(SdpErrorTest, TooLarge) {
  std::string text(kHead);
  while (text.size() <= kMaxSdpSize) {
    text += "a=padding-padding-padding-padding-padding-padding-padding\n";
  }
  EXPECT_EQ(parseError(text), "Failed to parse SDP: SDP too large (" + std::to_string(text.size()) +
                                  " bytes, limit 65536)");
}

}  // namespace
}  // namespace xems::sdp
