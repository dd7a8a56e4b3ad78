#include "ctrl/ng/ng_server.h"

#include <gtest/gtest.h>

#include <deque>

#include "tests/unit/session/fake_table.h"

namespace xems::ng {
namespace {

using session::testing::FakeTable;

constexpr const char* kSdp =
    "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
    "m=audio 49170 RTP/AVP 0 8\r\n";

std::string bstr(std::string_view s) { return std::to_string(s.size()) + ":" + std::string(s); }

class NgServerTest : public ::testing::Test {
 protected:
  NgServerTest()
      : time(std::make_shared<session::testing::ManualTime>()),
        reg(config(), table, time),
        server(reg) {}
  static Config config() {
    Config c;
    c.interfaces.push_back(*InterfaceSpec::parse("127.0.0.1"));
    c.port_min = 48000;
    c.port_max = 48999;
    c.delete_delay = 0;
    return c;
  }
  std::string send(std::string_view datagram) { return server.handle(datagram, from).bytes; }
  // Decodes a bencode reply "cookie d...e" into doc. Decoding is zero-copy, so the reply text
  // is kept alive here for as long as the test runs.
  Value reply(std::string bytes, Document& doc) {
    const std::string& kept = replies.emplace_back(std::move(bytes));
    auto sp = kept.find(' ');
    auto v = decodeBencode(std::string_view(kept).substr(sp + 1), doc);
    EXPECT_TRUE(v.ok());
    return v.ok() ? *v : Value();
  }

  FakeTable table;
  std::shared_ptr<session::testing::ManualTime> time;
  session::CallRegistry reg;
  NgServer server;
  SockAddr from = *SockAddr::parse("127.0.0.1:5060");
  std::deque<std::string> replies;
};

TEST_F(NgServerTest, PingInBothEncodings) {
  EXPECT_EQ(send("5323_1 d7:command4:pinge"), "5323_1 d6:result4:ponge");
  EXPECT_EQ(send("c4 {\"command\":\"ping\"}"), "c4 {\"result\":\"pong\"}");
}

TEST_F(NgServerTest, ErrorsAsRtpengine) {
  EXPECT_EQ(send("c1 xyz"),
            "c1 d6:result5:error12:error-reason22:Invalid NG data formate");
  EXPECT_EQ(send("c2 d7:command5:bogus" "e"),
            "c2 d6:result5:error12:error-reason20:Unrecognized commande");
  EXPECT_EQ(send("c3 d4:call1:xe"),
            "c3 d6:result5:error12:error-reason36:Dictionary contains no key \"command\"e");
  EXPECT_EQ(send("c4 d7:command"),
            "c4 d6:result5:error12:error-reason35:Could not decode bencode dictionarye");
  EXPECT_EQ(send("nocookie"), "");
  EXPECT_EQ(send(" leading"), "");
  EXPECT_EQ(server.stats().dropped_no_cookie, 2u);
  EXPECT_EQ(server.stats().invalid, 3u);
  EXPECT_EQ(server.stats().unknown_commands, 1u);
}

TEST_F(NgServerTest, RetransmissionGetsTheStoredReplyWithoutReprocessing) {
  std::string offer = "d7:command5:offer7:call-id2:c18:from-tag1:a3:sdp" + bstr(kSdp) + "e";
  std::string r1 = send("k1 " + offer);
  size_t flows = table.flows.size();
  std::string r2 = send("k1 " + offer);
  EXPECT_EQ(r1, r2);
  EXPECT_EQ(table.flows.size(), flows);
  EXPECT_EQ(server.stats().replies_from_cache, 1u);
  EXPECT_EQ(server.stats().commands[static_cast<size_t>(Command::kOffer)].count, 1u);
  // A different cookie is a new request (same call: a re-INVITE keeps the ports).
  std::string r3 = send("k2 " + offer);
  EXPECT_EQ(r3.substr(3), r1.substr(3));
}

TEST_F(NgServerTest, KeySpellingsAndDeleteWarning) {
  std::string offer = "d7:command5:offer7:call id2:c18:from_tag1:a3:sdp" + bstr(kSdp) + "e";
  Document doc;
  Value r = reply(send("o1 " + offer), doc);
  EXPECT_EQ(r.findString("result"), "ok");
  EXPECT_EQ(reg.callCount(), 1u);
  r = reply(send("d1 d7:command6:delete7:call-id2:c28:from-tag1:ae"), doc);
  EXPECT_EQ(r.findString("warning"), "Call-ID not found or tags didn't match");
  EXPECT_EQ(r.findString("result"), "ok");
  r = reply(send("d2 d7:command6:delete7:call-id2:c28:from-tag1:a5:flagsl5:fatalee"), doc);
  EXPECT_EQ(r.findString("result"), "error");
  r = reply(send("d3 d7:command6:delete7:call-id2:c18:from-tag1:ae"), doc);
  EXPECT_EQ(r.findString("result"), "ok");
  ASSERT_NE(r.find("tags"), nullptr);
  EXPECT_NE(r.find("tags")->find("a"), nullptr);
  EXPECT_EQ(reg.callCount(), 0u);
}

TEST_F(NgServerTest, RtppFlagsNestedListsAndDicts) {
  Document doc;
  auto v = parseRtppFlags(
      "replace-origin strict-source ICE=remove direction=[pub priv] "
      "codec=[strip=[PCMU G722] offer=[PCMA]] received-from=198.51.100.7 "
      "sdp-attr=[audio=[add=[foo..bar]]] label=a--b",
      doc);
  ASSERT_TRUE(v.ok()) << v.error().message;
  std::string json;
  encodeJson(*v, json);
  EXPECT_EQ(json,
            "{\"ICE\":\"remove\",\"direction\":[\"pub\",\"priv\"],\"codec\":{\"strip\":[\"PCMU\","
            "\"G722\"],\"offer\":[\"PCMA\"]},\"received-from\":\"198.51.100.7\","
            "\"sdp-attr\":{\"audio\":{\"add\":[\"foo bar\"]}},\"label\":\"a=b\","
            "\"flags\":[\"replace-origin\",\"strict-source\"]}");
  for (const char* bad : {"codec=[strip=[PCMU]", "a]", "[x]", "codec=[[x]]"}) {
    EXPECT_FALSE(parseRtppFlags(bad, doc).ok()) << bad;
  }
  std::string deep = "a=";
  for (int i = 0; i < 100; ++i) {
    deep += "[b=";
  }
  EXPECT_FALSE(parseRtppFlags(deep, doc).ok());
}

TEST_F(NgServerTest, RtppFlagsDriveTheOffer) {
  Document doc;
  std::string flags = "replace-origin codec-strip-PCMU direction=[default default] "
                      "SIP-source-address received-from=198.51.100.7";
  std::string offer = "d7:command5:offer7:call-id2:c18:from-tag1:a3:sdp" + bstr(kSdp) +
                      "10:rtpp-flags" + bstr(flags) + "e";
  auto msg = decodeBencode(offer, doc);
  ASSERT_TRUE(msg.ok());
  auto req = decodeOfferAnswer(*msg, session::Op::kOffer);
  ASSERT_TRUE(req.ok()) << req.error().message;
  EXPECT_TRUE(req->flags.replace_origin);
  EXPECT_TRUE(req->flags.sip_source_address);
  EXPECT_EQ(req->flags.received_from->toString(), "198.51.100.7");
  EXPECT_EQ(req->flags.codec.strip, std::vector<std::string>{"PCMU"});
  EXPECT_EQ(req->flags.direction, (std::vector<std::string>{"default", "default"}));
  Value r = reply(send("o1 " + offer), doc);
  ASSERT_EQ(r.findString("result"), "ok");
  EXPECT_NE(r.findString("sdp")->find("m=audio "), std::string::npos);
  EXPECT_EQ(r.findString("sdp")->find("PCMU"), std::string::npos);
}

TEST_F(NgServerTest, OfferOptionSpellings) {
  Document doc;
  auto list = [&](std::initializer_list<const char*> items) {
    Value l = doc.list();
    for (const char* i : items) {
      l.push(Value::string(i));
    }
    return l;
  };
  Value msg = doc.dict();
  msg.add("command", Value::string("offer"));
  msg.add("call-id", Value::string("c1"));
  msg.add("from-tag", Value::string("a"));
  msg.add("sdp", Value::string(kSdp));
  msg.add("replace", list({"origin", "session-connection"}));
  msg.add("ICE", Value::string("remove"));
  msg.add("rtcp-mux", list({"demux"}));
  msg.add("received-from", list({"IP4", "198.51.100.1"}));
  msg.add("address family", Value::string("IP4"));
  msg.add("flags", list({"SIP source address", "codec-strip-PCMA", "strict source"}));
  Value codec = doc.dict();
  codec.add("strip", list({"PCMU"}));
  codec.add("offer", list({"PCMA"}));
  msg.add("codec", codec);
  auto req = decodeOfferAnswer(msg, session::Op::kOffer);
  ASSERT_TRUE(req.ok());
  const auto& f = req->flags;
  EXPECT_TRUE(f.replace_origin);
  EXPECT_EQ(f.ice, session::IceMode::kRemove);
  EXPECT_TRUE(f.rtcp_mux.demux);
  EXPECT_EQ(f.received_from->toString(), "198.51.100.1");
  EXPECT_EQ(f.address_family, Family::kIpv4);
  EXPECT_TRUE(f.sip_source_address);
  EXPECT_EQ(f.strict_source, true);
  EXPECT_EQ(f.codec.strip, (std::vector<std::string>{"PCMA", "PCMU"}));
  EXPECT_EQ(f.codec.offer, std::vector<std::string>{"PCMA"});
  msg.add("media-address", Value::string("nope"));
  auto bad = decodeOfferAnswer(msg, session::Op::kOffer);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "Invalid media-address: nope");
}

TEST_F(NgServerTest, StatisticsCountCommandsAndErrors) {
  send("s1 d7:command4:pinge");
  send("s2 d7:command6:answer7:call-id1:x8:from-tag1:a6:to-tag1:b3:sdp" + bstr(kSdp) + "e");
  Document doc;
  Value r = reply(send("s3 d7:command10:statisticse"), doc);
  const Value* ctl = r.find("statistics")->find("controlstatistics");
  ASSERT_NE(ctl, nullptr);
  EXPECT_EQ(ctl->find("ping")->findInt("count"), 1);
  EXPECT_EQ(ctl->find("answer")->findInt("errors"), 1);
  EXPECT_EQ(r.find("statistics")->find("totalstatistics")->findInt("managedsessions"), 0);
}

}  // namespace
}  // namespace xems::ng

namespace xems::ng {
namespace {

// Review finding: a delete reply for a call with many media must not exceed one datagram.
TEST_F(NgServerTest, OversizedReplyIsReplacedByAShortOne) {
  std::string sdp = "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n";
  for (int i = 0; i < 64; ++i) {
    sdp += "m=audio " + std::to_string(20000 + 2 * i) + " RTP/AVP 0\r\n";
  }
  Document doc;
  Value r = reply(send("o1 d7:command5:offer7:call-id2:c18:from-tag1:a3:sdp" + bstr(sdp) + "e"),
                  doc);
  ASSERT_EQ(r.findString("result"), "ok");
  std::string raw = send("d1 d7:command6:delete7:call-id2:c18:from-tag1:ae");
  EXPECT_LT(raw.size(), 65000u);
  r = reply(raw, doc);
  EXPECT_EQ(r.findString("result"), "ok");
  EXPECT_EQ(r.findString("warning"), "Reply too large for one datagram: details omitted");
  EXPECT_EQ(server.stats().oversized_replies, 1u);
  EXPECT_EQ(reg.callCount(), 0u);
}

TEST_F(NgServerTest, DeleteHonoursKeySpellingsAndRtppFlagsAndClampsTheDelay) {
  std::string offer = "d7:command5:offer7:call-id2:c18:from-tag1:a3:sdp" + bstr(kSdp) + "e";
  send("o1 " + offer);
  Document doc;
  // Call_ID spelling; tag check still applies (a wrong from_tag must not delete the call).
  Value r = reply(send("d1 d7:command6:delete7:Call_ID2:c18:from_tag1:xe"), doc);
  EXPECT_EQ(r.findString("warning"), "Call-ID not found or tags didn't match");
  EXPECT_EQ(reg.callCount(), 1u);
  // Kamailio's daemon-parsed mode: everything in rtpp-flags.
  std::string flags = "delete-delay=99999999999 fatal";
  r = reply(send("d2 d7:command6:delete7:call-id2:c18:from-tag1:a10:rtpp-flags" + bstr(flags) +
                 "e"),
            doc);
  EXPECT_EQ(r.findString("result"), "ok");
  EXPECT_EQ(reg.callCount(), 1u);  // lingers, but for at most a day, not 136 years
  time->advance(std::chrono::seconds(86399));
  reg.tick();
  EXPECT_EQ(reg.callCount(), 1u);
  time->advance(std::chrono::seconds(1));
  reg.tick();
  EXPECT_EQ(reg.callCount(), 0u);
  send("o2 " + offer);
  std::string fatal = "fatal";
  r = reply(send("d3 d7:command6:delete7:call-id2:c28:from-tag1:a10:rtpp-flags" + bstr(fatal) +
                 "e"),
            doc);
  EXPECT_EQ(r.findString("result"), "error");
}

}  // namespace
}  // namespace xems::ng
