#include "ctrl/session/call_state.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "ctrl/session/state_journal.h"

namespace xems::session {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;
using std::chrono::milliseconds;

SockAddr addr(std::string_view text) {
  auto a = SockAddr::parse(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a.value_or(SockAddr{});
}

std::vector<InterfaceSpec> testInterfaces() {
  return {*InterfaceSpec::parse("default/127.0.0.1!203.0.113.1"),
          *InterfaceSpec::parse("default/::1"), *InterfaceSpec::parse("pub/127.0.0.2")};
}

// An allocated media on `iface` with the RTP/RTCP pair at `port`.
Media allocatedMedia(int index, const InterfaceSpec& iface, uint16_t port) {
  Media m;
  m.index = index;
  m.iface = &iface;
  m.allocated = true;
  m.rtp.id = 100 + static_cast<uint64_t>(port);
  m.rtcp.id = 101 + static_cast<uint64_t>(port);
  m.rtp.local = SockAddr(iface.local, port);
  m.rtcp.local = SockAddr(iface.local, static_cast<uint16_t>(port + 1));
  m.rtp.counters = std::make_shared<datapath::FlowCounters>();
  m.rtcp.counters = std::make_shared<datapath::FlowCounters>();
  m.rtp.in_table = true;
  m.rtcp.in_table = true;
  return m;
}

// A realistic answered call: Alice (IPv4, audio + rtcp-muxed video) and Bob (IPv6, audio + a
// rejected video), linked both ways, Alice's audio latched, a delete pending.
std::unique_ptr<Call> realisticCall(const std::vector<InterfaceSpec>& ifs, Clock::time_point now) {
  auto call = std::make_unique<Call>();
  call->id = "a84b4c76e66710@pc33.example.org";
  call->worker = 3;
  call->created_unix = 1700000000;
  call->created_us = 1700000000123456;
  call->last_signal_unix = 1700000042;
  call->created_mono = now - milliseconds(42000);
  call->last_signal_mono = now - milliseconds(1500);
  call->delete_at = now + milliseconds(30000);
  call->answered = true;

  auto alice = std::make_unique<Participant>();
  alice->tag = "1928301774";
  alice->via_branch = "z9hG4bK776asdhds";
  alice->label = "caller";
  alice->aliases = {"1928301774-fork"};
  alice->created = 1700000000;
  alice->iface_name = "";
  alice->sdp_out.initialised = true;
  alice->sdp_out.username = "alice";
  alice->sdp_out.session_id = "2890844526";
  alice->sdp_out.session_name = "-";
  alice->sdp_out.origin_address = "203.0.113.1";
  alice->sdp_out.version = 2890844527ULL;
  alice->sdp_out.last_body =
      "v=0\r\ns=-\r\nc=IN IP4 203.0.113.1\r\nt=0 0\r\nm=audio 42000 RTP/AVP 0\r\n";
  {
    Media m = allocatedMedia(1, ifs[0], 42000);
    m.type = "audio";
    m.protocol = "RTP/AVP";
    m.rtp.advertised = addr("192.0.2.10:49170");
    m.rtcp.advertised = addr("192.0.2.10:49171");
    m.rtcp_sdp = addr("192.0.2.10:49171");
    m.codecs = {"PCMU/8000", "PCMA/8000", "telephone-event/8000"};
    m.sdp_family = Family::kIpv4;
    std::lock_guard lock(m.rtp.counters->mu);
    m.rtp.counters->learned = addr("192.0.2.99:50000");  // NAT: latched elsewhere than SDP
    m.rtp.counters->packets = 1234;
    alice->medias.push_back(std::move(m));
  }
  {
    Media m = allocatedMedia(2, ifs[0], 42002);
    m.type = "video";
    m.protocol = "RTP/AVPF";
    m.rtcp_mux = true;
    m.mux_offered = true;
    m.mux_keep = true;
    m.sends = false;
    m.rtp.advertised = addr("192.0.2.10:51372");
    // Restored earlier and not latched again yet: the restore latch is what is kept.
    m.rtp.restore_latch = addr("192.0.2.10:51372");
    m.codecs = {"H264/90000"};
    alice->medias.push_back(std::move(m));
  }

  auto bob = std::make_unique<Participant>();
  bob->tag = "a6c85cf";
  bob->label = "callee";
  bob->created = 1700000001;
  bob->iface_name = "default";
  bob->sdp_out.initialised = true;
  bob->sdp_out.username = "bob";
  bob->sdp_out.session_id = "1";
  bob->sdp_out.session_name = "Talk";
  bob->sdp_out.origin_address = "::1";
  bob->sdp_out.version = 7;
  bob->sdp_out.last_body = "v=0\r\nm=audio 42010 RTP/AVP 0\r\n";
  {
    Media m = allocatedMedia(1, ifs[1], 42010);
    m.type = "audio";
    m.protocol = "RTP/AVP";
    m.rtp.advertised = addr("[2001:db8::20]:5004");
    m.rtcp.advertised = addr("[2001:db8::20]:5005");
    m.sdp_family = Family::kIpv6;
    m.codecs = {"PCMU/8000"};
    std::lock_guard lock(m.rtcp.counters->mu);
    m.rtcp.counters->learned = addr("[2001:db8::20]:5005");
    bob->medias.push_back(std::move(m));
  }
  {
    Media m = allocatedMedia(2, ifs[1], 42012);
    m.type = "video";
    m.protocol = "RTP/AVPF";
    m.rejected = true;
    m.zero_address = true;
    m.receives = false;
    m.sdp_family = Family::kIpv6;
    bob->medias.push_back(std::move(m));
  }
  alice->peer = bob.get();
  bob->peer = alice.get();
  call->participants.push_back(std::move(alice));
  call->participants.push_back(std::move(bob));
  return call;
}

void expectStreamRestored(const Stream& got, const Stream& want, const std::string& where) {
  SCOPED_TRACE(where);
  EXPECT_EQ(got.local, want.local);
  EXPECT_EQ(got.advertised, want.advertised);
  EXPECT_EQ(got.restore_latch, persistedLatch(want));
  EXPECT_EQ(got.id, 0U);
  EXPECT_FALSE(got.in_table);
  EXPECT_FALSE(got.pending_fd.valid());
  ASSERT_NE(got.counters, nullptr);
  EXPECT_NE(got.counters, want.counters);
  EXPECT_EQ(got.counters->packets.load(), 0U);
  std::lock_guard lock(got.counters->mu);
  EXPECT_FALSE(got.counters->learned.has_value());
}

void expectMediaRestored(const Media& got, const Media& want, const std::string& where) {
  SCOPED_TRACE(where);
  EXPECT_EQ(got.index, want.index);
  EXPECT_EQ(got.type, want.type);
  EXPECT_EQ(got.protocol, want.protocol);
  EXPECT_EQ(got.iface, want.iface);  // the same element of the same interface vector
  EXPECT_EQ(got.allocated, want.allocated);
  EXPECT_EQ(got.rtcp_mux, want.rtcp_mux);
  EXPECT_EQ(got.mux_offered, want.mux_offered);
  EXPECT_EQ(got.mux_keep, want.mux_keep);
  EXPECT_EQ(got.rtcp_sdp, want.rtcp_sdp);
  EXPECT_EQ(got.sends, want.sends);
  EXPECT_EQ(got.receives, want.receives);
  EXPECT_EQ(got.rejected, want.rejected);
  EXPECT_EQ(got.zero_address, want.zero_address);
  EXPECT_EQ(got.sdp_family, want.sdp_family);
  EXPECT_EQ(got.codecs, want.codecs);
  expectStreamRestored(got.rtp, want.rtp, where + ".rtp");
  expectStreamRestored(got.rtcp, want.rtcp, where + ".rtcp");
}

void expectCallRestored(const Call& got, const Call& want, Clock::time_point now_want,
                        Clock::time_point now_got) {
  EXPECT_EQ(got.id, want.id);
  EXPECT_EQ(got.worker, 0U);
  EXPECT_EQ(got.created_unix, want.created_unix);
  EXPECT_EQ(got.created_us, want.created_us);
  EXPECT_EQ(got.last_signal_unix, want.last_signal_unix);
  EXPECT_EQ(now_got - got.created_mono, now_want - want.created_mono);
  EXPECT_EQ(now_got - got.last_signal_mono, now_want - want.last_signal_mono);
  ASSERT_EQ(got.delete_at.has_value(), want.delete_at.has_value());
  if (want.delete_at) {
    EXPECT_EQ(*got.delete_at - now_got, *want.delete_at - now_want);
  }
  EXPECT_EQ(got.answered, want.answered);
  ASSERT_EQ(got.participants.size(), want.participants.size());
  for (size_t i = 0; i < want.participants.size(); ++i) {
    const Participant& g = *got.participants[i];
    const Participant& w = *want.participants[i];
    SCOPED_TRACE("participant " + std::to_string(i));
    EXPECT_EQ(g.tag, w.tag);
    EXPECT_EQ(g.via_branch, w.via_branch);
    EXPECT_EQ(g.label, w.label);
    EXPECT_EQ(g.aliases, w.aliases);
    EXPECT_EQ(g.created, w.created);
    EXPECT_EQ(g.iface_name, w.iface_name);
    EXPECT_EQ(g.sdp_out.initialised, w.sdp_out.initialised);
    EXPECT_EQ(g.sdp_out.username, w.sdp_out.username);
    EXPECT_EQ(g.sdp_out.session_id, w.sdp_out.session_id);
    EXPECT_EQ(g.sdp_out.session_name, w.sdp_out.session_name);
    EXPECT_EQ(g.sdp_out.origin_address, w.sdp_out.origin_address);
    EXPECT_EQ(g.sdp_out.version, w.sdp_out.version);
    EXPECT_EQ(g.sdp_out.last_body, w.sdp_out.last_body);
    // Peers by position.
    auto indexOf = [](const Call& c, const Participant* p) -> int {
      for (size_t k = 0; k < c.participants.size(); ++k) {
        if (c.participants[k].get() == p) {
          return static_cast<int>(k);
        }
      }
      return -1;
    };
    EXPECT_EQ(indexOf(got, g.peer), indexOf(want, w.peer));
    if (w.peer != nullptr) {
      EXPECT_NE(g.peer, nullptr);
    }
    ASSERT_EQ(g.medias.size(), w.medias.size());
    for (size_t k = 0; k < w.medias.size(); ++k) {
      expectMediaRestored(g.medias[k], w.medias[k], "media " + std::to_string(k));
    }
  }
}

class CallStateTest : public ::testing::Test {
 protected:
  CallStateTest() : ifs(testInterfaces()), now(Clock::now()), call(realisticCall(ifs, now)) {}

  Json valid() const { return callToJson(*call, now); }
  // callFromJson's error for `j`, "" if it was accepted.
  std::string errorOf(const Json& j) const {
    auto r = callFromJson(j, ifs, now);
    return r.ok() ? std::string() : r.error().message;
  }

  std::vector<InterfaceSpec> ifs;
  Clock::time_point now;
  std::unique_ptr<Call> call;
};

TEST_F(CallStateTest, RoundTripRestoresEveryField) {
  const Json j = callToJson(*call, now);
  EXPECT_EQ(j["v"], 1);
  EXPECT_FALSE(j.contains("worker"));
  // Through text, as the journal stores it, and into a process whose clock reads differently.
  const Json parsed = Json::parse(j.dump());
  const Clock::time_point later = now + std::chrono::hours(5) + milliseconds(17);
  auto restored = callFromJson(parsed, ifs, later);
  ASSERT_TRUE(restored.ok()) << restored.error().message;
  expectCallRestored(**restored, *call, now, later);
  // Latches: counters->learned where set, else the restore latch.
  const Call& r = **restored;
  EXPECT_EQ(r.participants[0]->medias[0].rtp.restore_latch, addr("192.0.2.99:50000"));
  EXPECT_FALSE(r.participants[0]->medias[0].rtcp.restore_latch.has_value());
  EXPECT_EQ(r.participants[0]->medias[1].rtp.restore_latch, addr("192.0.2.10:51372"));
  EXPECT_EQ(r.participants[1]->medias[0].rtcp.restore_latch, addr("[2001:db8::20]:5005"));
  EXPECT_EQ(r.participants[1]->medias[0].rtp.local, addr("[::1]:42010"));
  EXPECT_EQ(r.participants[0]->peer, r.participants[1].get());
  EXPECT_EQ(r.participants[1]->peer, r.participants[0].get());
  // And the restored call serialises to the same record.
  EXPECT_EQ(callToJson(r, later), j);
}

TEST_F(CallStateTest, NoDeleteTimeNoPeerAndUnallocatedMedia) {
  call->delete_at.reset();
  call->participants[1]->peer = nullptr;
  Media& m = call->participants[1]->medias[1];
  m.allocated = false;
  m.iface = nullptr;
  m.rtp = Stream{};
  m.rtcp = Stream{};
  const Json j = callToJson(*call, now);
  EXPECT_TRUE(j["delete_in_ms"].is_null());
  EXPECT_EQ(j["participants"][1]["peer"], -1);
  EXPECT_TRUE(j["participants"][1]["medias"][1]["iface"].is_null());
  EXPECT_TRUE(j["participants"][1]["medias"][1]["rtp"]["local"].is_null());
  auto r = callFromJson(j, ifs, now);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE((*r)->delete_at.has_value());
  EXPECT_EQ((*r)->participants[1]->peer, nullptr);
  EXPECT_EQ((*r)->participants[0]->peer, (*r)->participants[1].get());
  const Media& got = (*r)->participants[1]->medias[1];
  EXPECT_FALSE(got.allocated);
  EXPECT_EQ(got.iface, nullptr);
  EXPECT_FALSE(got.rtp.local.valid());
  EXPECT_EQ(got.rtp.counters, nullptr);
}

TEST_F(CallStateTest, BytesThatAreNotUtf8SurviveExactly) {
  call->id = std::string("\xff\xfe call\0id", 11);
  call->participants[0]->tag = "t\xc3\x28";           // broken 2-byte sequence
  call->participants[0]->aliases = {"\xed\xa0\x80"};  // a surrogate
  call->participants[1]->tag = "caf\xc3\xa9";         // valid UTF-8 stays a plain string
  const Json j = callToJson(*call, now);
  EXPECT_TRUE(j["id"].is_object());
  EXPECT_TRUE(j["participants"][1]["tag"].is_string());
  auto r = callFromJson(Json::parse(j.dump()), ifs, now);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)->id, call->id);
  EXPECT_EQ((*r)->participants[0]->tag, call->participants[0]->tag);
  EXPECT_EQ((*r)->participants[0]->aliases, call->participants[0]->aliases);
  EXPECT_EQ((*r)->participants[1]->tag, "caf\xc3\xa9");
  EXPECT_EQ(bytesFromJson(Json{{"hex", "4"}}), std::nullopt);
  EXPECT_EQ(bytesFromJson(Json{{"hex", "zz"}}), std::nullopt);
  EXPECT_EQ(bytesFromJson(Json{{"hex", "41"}, {"x", 1}}), std::nullopt);
  EXPECT_EQ(bytesFromJson(Json{{"hex", "41"}}), "A");
}

TEST_F(CallStateTest, RejectsWrongVersion) {
  Json j = valid();
  j["v"] = 2;
  EXPECT_THAT(errorOf(j), HasSubstr("unsupported version 2"));
  j["v"] = "1";
  EXPECT_THAT(errorOf(j), HasSubstr("v: expected an integer"));
  j.erase("v");
  EXPECT_THAT(errorOf(j), HasSubstr("v: missing"));
}

TEST_F(CallStateTest, RejectsPeerIndexOutOfRange) {
  for (int bad : {2, 3, -2, 1000000}) {
    Json j = valid();
    j["participants"][0]["peer"] = bad;
    EXPECT_THAT(errorOf(j), HasSubstr("participants[0].peer: " + std::to_string(bad) +
                                      " out of range [-1, 1]"));
  }
  Json j = valid();
  j["participants"][1]["peer"] = 18446744073709551615ULL;
  EXPECT_THAT(errorOf(j), HasSubstr("participants[1].peer"));
}

TEST_F(CallStateTest, RejectsUnknownInterface) {
  Json j = valid();
  j["participants"][0]["medias"][1]["iface"]["name"] = "nope";
  EXPECT_THAT(errorOf(j),
              HasSubstr("participants[0].medias[1].iface: unknown interface 'nope/127.0.0.1'"));
  // The right name on another address: the ports would be re-bound where nobody expects them.
  j = valid();
  j["participants"][0]["medias"][0]["iface"]["local"] = "127.0.0.2";
  EXPECT_THAT(errorOf(j), HasSubstr("unknown interface 'default/127.0.0.2'"));
  // The interface is gone from the configuration.
  auto fewer = ifs;
  fewer.pop_back();
  fewer.erase(fewer.begin() + 1);
  auto r = callFromJson(valid(), fewer, now);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, HasSubstr("unknown interface 'default/::1'"));
}

TEST_F(CallStateTest, RejectsBadAddressStrings) {
  const char* bad[] = {
      "127.0.0.1", "42000",           "localhost:42000", "127.0.0.1:", "127.0.0.1:99999",
      "::1:42010", "[::1]",           "[::1]:x",         "1.2.3.4:5 ", "garbage",
      "",          "[2001:DB8::1]:5", "01.2.3.4:5",      "1.2.3.4:05"};
  for (const char* text : bad) {
    Json j = valid();
    j["participants"][1]["medias"][0]["rtp"]["advertised"] = text;
    EXPECT_THAT(errorOf(j), HasSubstr("participants[1].medias[0].rtp.advertised: bad address"))
        << text;
  }
  Json j = valid();
  j["participants"][0]["medias"][0]["rtcp"]["latch"] = "999.1.1.1:5";
  EXPECT_THAT(errorOf(j), HasSubstr("medias[0].rtcp.latch: bad address '999.1.1.1:5'"));
  j = valid();
  j["participants"][0]["medias"][0]["rtcp_sdp"] = 5;
  EXPECT_THAT(errorOf(j), HasSubstr("rtcp_sdp: expected an address string or null"));
  j = valid();
  j["participants"][0]["medias"][0]["iface"]["local"] = "[::1]";
  EXPECT_THAT(errorOf(j), HasSubstr("iface.local: bad IP address"));
  j = valid();
  j["participants"][0]["medias"][0]["rtp"]["local"] = "127.0.0.1:43000";
  EXPECT_THAT(errorOf(j), HasSubstr("medias[0].rtcp.local: must be the RTP port + 1"));
  j = valid();
  j["participants"][0]["medias"][0]["rtp"]["local"] = "127.0.0.2:42000";
  EXPECT_THAT(errorOf(j), HasSubstr("medias[0].rtp.local: allocated media without a port"));
  j = valid();
  j["participants"][0]["medias"][0]["rtp"]["local"] = nullptr;
  EXPECT_THAT(errorOf(j), HasSubstr("medias[0].rtp.local: allocated media without a port"));
  // Bytes that only look like an address once decoded are still refused.
  j = valid();
  j["participants"][0]["medias"][0]["rtp"]["advertised"] = Json{{"hex", "312e322e332e343a35"}};
  EXPECT_THAT(errorOf(j), HasSubstr("expected an address string or null"));
}

TEST_F(CallStateTest, RejectsWrongJsonTypes) {
  struct Case {
    Json::json_pointer where;
    Json value;
    std::string error;
  };
  const std::vector<Case> cases = {
      {Json::json_pointer("/id"), 5, "id: expected a string"},
      {Json::json_pointer("/id"), "", "id: empty"},
      {Json::json_pointer("/answered"), "yes", "answered: expected true or false"},
      {Json::json_pointer("/answered"), 1, "answered: expected true or false"},
      {Json::json_pointer("/created_unix"), 1.5, "created_unix: expected an integer"},
      {Json::json_pointer("/created_unix"), -1, "created_unix: -1 out of range"},
      {Json::json_pointer("/created_age_ms"), "1", "created_age_ms: expected an integer"},
      {Json::json_pointer("/created_age_ms"), -5, "created_age_ms: -5 out of range"},
      {Json::json_pointer("/last_signal_age_ms"), int64_t{1} << 50, "out of range"},
      {Json::json_pointer("/delete_in_ms"), -1, "delete_in_ms: -1 out of range"},
      {Json::json_pointer("/delete_in_ms"), Json::array(), "delete_in_ms: expected an integer"},
      {Json::json_pointer("/participants"), Json::object(), "participants: expected an array"},
      {Json::json_pointer("/participants/0"), "alice", "participants[0]: expected an object"},
      {Json::json_pointer("/participants/0/tag"), nullptr,
       "participants[0].tag: expected a string"},
      {Json::json_pointer("/participants/0/aliases"), "x", "aliases: expected an array"},
      {Json::json_pointer("/participants/0/aliases/0"), 1, "aliases[0]: expected a string"},
      {Json::json_pointer("/participants/0/sdp_out"), Json::array(), "sdp_out: expected an object"},
      {Json::json_pointer("/participants/0/sdp_out/version"), -1,
       "sdp_out.version: expected a non-negative integer"},
      {Json::json_pointer("/participants/1/medias"), nullptr, "medias: expected an array"},
      {Json::json_pointer("/participants/1/medias/0/index"), 2, "medias[0].index: 2 at position 0"},
      {Json::json_pointer("/participants/1/medias/1/codecs"), Json::array({"a", Json::object()}),
       "medias[1].codecs[1]: expected a string"},
      {Json::json_pointer("/participants/1/medias/1/sdp_family"), "IP5",
       "sdp_family: expected IP4, IP6"},
      {Json::json_pointer("/participants/1/medias/1/iface"), "default",
       "iface: expected an object or null"},
      {Json::json_pointer("/participants/1/medias/1/iface"), nullptr,
       "medias[1].iface: allocated media without an interface"},
      {Json::json_pointer("/participants/1/medias/1/rtp"), nullptr,
       "medias[1].rtp: expected an object"},
      {Json::json_pointer("/participants/1/medias/1/rtp/latch"), true,
       "rtp.latch: expected an address string or null"},
      {Json::json_pointer("/participants/1/medias/1/sends"), nullptr,
       "medias[1].sends: expected true or false"},
  };
  for (const auto& c : cases) {
    Json j = valid();
    j[c.where] = c.value;
    EXPECT_THAT(errorOf(j), HasSubstr(c.error)) << c.where.to_string() << " = " << c.value;
  }
  Json j = valid();
  j["participants"][0]["medias"][0].erase("rejected");
  EXPECT_THAT(errorOf(j), HasSubstr("participants[0].medias[0].rejected: missing"));
  for (const Json& not_an_object : {Json(), Json::array(), Json("call"), Json(1)}) {
    EXPECT_THAT(errorOf(not_an_object), HasSubstr("expected an object"));
  }
}

TEST_F(CallStateTest, RejectsDeeplyNestedGarbageWithoutCrashing) {
  // nlohmann parses and destroys without recursion but copies recursively: the deep values are
  // parsed afresh and moved into place, as a journal line would be.
  constexpr int kDepth = 100000;
  auto deepArray = [] { return Json::parse(std::string(kDepth, '[') + std::string(kDepth, ']')); };
  auto deepObject = [] {
    std::string text;
    for (int i = 0; i < kDepth; ++i) {
      text += R"({"a":)";
    }
    return Json::parse(text + "1" + std::string(kDepth, '}'));
  };
  EXPECT_THAT(errorOf(deepArray()), HasSubstr("expected an object"));
  EXPECT_THAT(errorOf(deepObject()), HasSubstr("v: missing"));
  bool object = false;
  for (const char* where : {"/participants", "/participants/0/medias/0",
                            "/participants/0/medias/0/iface", "/participants/1/aliases/0"}) {
    Json j = valid();
    j[Json::json_pointer(where)] = object ? deepObject() : deepArray();
    object = !object;
    EXPECT_FALSE(errorOf(j).empty()) << where;
  }
  // Every value of a valid call replaced in turn by values of other types.
  const Json junk[] = {nullptr, true, -1, 1.5, "x", Json::array({1, 2}), Json::object({{"k", 1}})};
  const Json flat = valid().flatten();
  for (const auto& item : flat.items()) {
    for (const Json& v : junk) {
      Json j = valid();
      j[Json::json_pointer(item.key())] = v;
      (void)errorOf(j);  // accepted or refused, never a crash
    }
  }
}

// ---- the journal ---------------------------------------------------------------------------

class StateJournalTest : public ::testing::Test {
 protected:
  StateJournalTest() {
    char tmpl[] = "/tmp/xems-journal-test-XXXXXX";
    const char* d = ::mkdtemp(tmpl);
    EXPECT_NE(d, nullptr);
    dir = d != nullptr ? d : "/tmp";
    path = dir + "/state/calls.jsonl";
  }
  ~StateJournalTest() override {
    if (dir != "/tmp") {
      std::filesystem::remove_all(dir);
    }
  }

  std::unique_ptr<StateJournal> open() {
    auto j = StateJournal::open(path);
    EXPECT_TRUE(j.ok()) << j.error().message;
    return j.ok() ? std::move(*j) : nullptr;
  }
  StateJournal::Loaded load() {
    auto j = open();
    if (!j) {
      return {};
    }
    auto l = j->load();
    EXPECT_TRUE(l.ok()) << l.error().message;
    return l.ok() ? std::move(*l) : StateJournal::Loaded{};
  }
  std::string fileText() const {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  void appendRaw(std::string_view text) const {
    std::ofstream out(path, std::ios::binary | std::ios::app);
    out << text;
  }
  void appendLine(std::string_view text) const { appendRaw(std::string(text) + "\n"); }
  uint64_t sizeOnDisk() const { return std::filesystem::file_size(path); }
  static std::vector<std::string> idsOf(const StateJournal::Loaded& l) {
    std::vector<std::string> out;
    for (const auto& c : l.calls) {
      out.push_back(c.value("id", std::string("?")));
    }
    return out;
  }
  static Json fakeCall(const std::string& id, int rev, size_t pad = 0) {
    return Json{{"id", id}, {"rev", rev}, {"pad", std::string(pad, 'x')}};
  }

  std::string dir;
  std::string path;
};

TEST_F(StateJournalTest, PutPutDelLoadLastPutWinsInFirstPutOrder) {
  {
    auto j = open();
    ASSERT_NE(j, nullptr);
    EXPECT_TRUE(j->put("b", fakeCall("b", 1)).ok());
    EXPECT_TRUE(j->put("a", fakeCall("a", 1)).ok());
    EXPECT_TRUE(j->put("c", fakeCall("c", 1)).ok());
    EXPECT_TRUE(j->put("b", fakeCall("b", 2)).ok());
    EXPECT_TRUE(j->erase("a").ok());
    EXPECT_TRUE(j->erase("never-put").ok());  // nothing to write
    EXPECT_TRUE(j->put("a", fakeCall("a", 3)).ok());
    EXPECT_EQ(j->writes(), 6U);
    EXPECT_EQ(j->write_errors(), 0U);
    EXPECT_EQ(j->liveCalls(), 3U);
    EXPECT_EQ(j->fileBytes(), sizeOnDisk());
  }
  // One record per line, as specified.
  const std::string text = fileText();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 6);
  EXPECT_EQ(text.substr(0, text.find('\n')),
            R"({"op":"put","id":"b","call":{"id":"b","pad":"","rev":1}})");
  EXPECT_NE(text.find(R"({"op":"del","id":"a"})"), std::string::npos);

  auto l = load();
  EXPECT_EQ(l.bad_lines, 0U);
  EXPECT_EQ(idsOf(l), (std::vector<std::string>{"b", "c", "a"}));
  ASSERT_EQ(l.calls.size(), 3U);
  EXPECT_EQ(l.calls[0]["rev"], 2);
  EXPECT_EQ(l.calls[2]["rev"], 3);
}

TEST_F(StateJournalTest, CreatesParentDirectoriesPrivately) {
  auto j = open();
  ASSERT_NE(j, nullptr);
  struct stat st {};
  ASSERT_EQ(::stat((dir + "/state").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0700U);
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600U);
  EXPECT_TRUE(j->load()->calls.empty());
  // A path that runs through a file cannot be created.
  auto bad = StateJournal::open(path + "/x/calls.jsonl");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.error().message, HasSubstr("state journal"));
  EXPECT_FALSE(StateJournal::open(dir).ok());  // a directory
  EXPECT_FALSE(StateJournal::open("").ok());
}

TEST_F(StateJournalTest, TornLastLineIsSkippedAndCounted) {
  {
    auto j = open();
    ASSERT_NE(j, nullptr);
    ASSERT_TRUE(j->put("a", fakeCall("a", 1)).ok());
    ASSERT_TRUE(j->put("b", fakeCall("b", 1)).ok());
  }
  // kill -9 in the middle of a record.
  appendRaw(R"({"op":"put","id":"c","call":{"id":"c","re)");
  {
    auto j = open();
    ASSERT_NE(j, nullptr);
    auto l = j->load();
    ASSERT_TRUE(l.ok());
    EXPECT_EQ(l->bad_lines, 1U);
    EXPECT_EQ(idsOf(*l), (std::vector<std::string>{"a", "b"}));
    // The next record must not be glued onto the torn one.
    ASSERT_TRUE(j->put("d", fakeCall("d", 1)).ok());
    EXPECT_EQ(j->fileBytes(), sizeOnDisk());
  }
  auto l = load();
  EXPECT_EQ(l.bad_lines, 1U);
  EXPECT_EQ(idsOf(l), (std::vector<std::string>{"a", "b", "d"}));
}

TEST_F(StateJournalTest, GarbageLinesAreSkippedAndTheRestLoaded) {
  {
    auto j = open();
    ASSERT_NE(j, nullptr);
    ASSERT_TRUE(j->put("a", fakeCall("a", 1)).ok());
  }
  appendRaw("not json\n");
  appendRaw("\n");  // blank: ignored, not counted
  appendRaw("[]\n");
  appendLine(R"({"op":"zap","id":"a"})");
  appendLine(R"({"op":"del"})");
  appendLine(R"({"op":"put","id":"x","call":[1]})");
  appendLine(R"({"op":"put","id":{"hex":"4"},"call":{}})");
  appendRaw(std::string(100000, '[') + "\n");
  const char with_nul[] = "{\"op\":\"put\",\"id\":\"n\0\",\"call\":{}}\n";
  appendRaw(std::string(with_nul, sizeof with_nul - 1));
  appendLine(R"({"op":"put","id":"b","call":{"id":"b"}})");
  appendRaw(R"({"op":"put","id":"c","call":{"id":"c"}})");  // whole, only the '\n' missing
  auto l = load();
  EXPECT_EQ(l.bad_lines, 8U);
  EXPECT_EQ(idsOf(l), (std::vector<std::string>{"a", "b", "c"}));
}

TEST_F(StateJournalTest, OverlongLineIsSkippedWithoutHoldingIt) {
  {
    auto j = open();
    ASSERT_NE(j, nullptr);
    ASSERT_TRUE(j->put("a", fakeCall("a", 1)).ok());
  }
  appendRaw(std::string(size_t{17} << 20, 'x') + "\n");
  appendLine(R"({"op":"put","id":"b","call":{"id":"b"}})");
  auto l = load();
  EXPECT_EQ(l.bad_lines, 1U);
  EXPECT_EQ(idsOf(l), (std::vector<std::string>{"a", "b"}));
}

TEST_F(StateJournalTest, CompactionKeepsExactlyTheLiveCallsAndShrinksTheFile) {
  auto j = open();
  ASSERT_NE(j, nullptr);
  constexpr size_t kPad = 8000;
  std::map<std::string, int> live;  // id -> revision last put
  uint64_t peak = 0;
  // Runs one change; false once it triggered the compaction.
  auto step = [&](const std::string& id, int rev) {
    if (rev < 0) {
      EXPECT_TRUE(j->erase(id).ok());
      live.erase(id);
    } else {
      EXPECT_TRUE(j->put(id, fakeCall(id, rev, kPad)).ok());
      live[id] = rev;
    }
    if (j->compactions() == 0) {
      peak = std::max(peak, j->fileBytes());
      return true;
    }
    return false;
  };
  // Three long-lived calls updated over and over, short calls coming and going.
  bool going = true;
  for (int rev = 1; going && rev < 1000; ++rev) {
    const std::string transient = "short-" + std::to_string(rev);
    going = step("keep-1", rev) && step("keep-2", rev) && step("keep-3", rev) &&
            step(transient, rev) && step(transient, -1);
  }
  ASSERT_EQ(j->compactions(), 1U);
  EXPECT_GT(peak + 2 * kPad, StateJournal::kCompactMinBytes);
  // Right after the compaction the file holds one put line per live call, nothing else.
  std::istringstream lines(fileText());
  std::map<std::string, int> in_file;
  for (std::string line; std::getline(lines, line);) {
    const Json rec = Json::parse(line);
    EXPECT_EQ(rec["op"], "put");
    EXPECT_EQ(in_file.count(rec["id"]), 0U);
    in_file[rec["id"]] = rec["call"]["rev"];
  }
  EXPECT_EQ(in_file, live);
  EXPECT_EQ(sizeOnDisk(), j->fileBytes());
  EXPECT_EQ(j->fileBytes(), j->liveBytes());
  EXPECT_LT(sizeOnDisk(), peak / 10);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  j.reset();

  auto l = load();
  EXPECT_EQ(l.bad_lines, 0U);
  std::map<std::string, int> loaded;
  for (const auto& c : l.calls) {
    loaded[c["id"]] = c["rev"];
  }
  EXPECT_EQ(loaded, live);
  ASSERT_GE(l.calls.size(), 3U);
  EXPECT_EQ(idsOf(l)[0], "keep-1");  // first-put order survives the compaction
  EXPECT_EQ(idsOf(l)[1], "keep-2");
}

TEST_F(StateJournalTest, AppendsAfterCompactionAndReopen) {
  {
    auto j = open();
    ASSERT_NE(j, nullptr);
    ASSERT_TRUE(j->put("a", fakeCall("a", 1)).ok());
    ASSERT_TRUE(j->put("b", fakeCall("b", 1)).ok());
    ASSERT_TRUE(j->erase("a").ok());
    ASSERT_TRUE(j->put("c", fakeCall("c", 1)).ok());
    ASSERT_TRUE(j->compact().ok());
    EXPECT_EQ(j->compactions(), 1U);
    // The descriptor follows the renamed file: these land in the file at `path`.
    ASSERT_TRUE(j->put("d", fakeCall("d", 1)).ok());
    ASSERT_TRUE(j->put("b", fakeCall("b", 2)).ok());
    EXPECT_EQ(j->fileBytes(), sizeOnDisk());
  }
  {
    auto j = open();
    ASSERT_NE(j, nullptr);
    auto l = j->load();
    ASSERT_TRUE(l.ok());
    EXPECT_EQ(l->bad_lines, 0U);
    EXPECT_EQ(idsOf(*l), (std::vector<std::string>{"b", "c", "d"}));
    EXPECT_EQ(l->calls[0]["rev"], 2);
    // Compact what was replayed, then keep writing across another reopen.
    ASSERT_TRUE(j->compact().ok());
    ASSERT_TRUE(j->erase("c").ok());
    ASSERT_TRUE(j->put("e", fakeCall("e", 1)).ok());
  }
  auto l = load();
  EXPECT_EQ(l.bad_lines, 0U);
  EXPECT_EQ(idsOf(l), (std::vector<std::string>{"b", "d", "e"}));
}

TEST_F(StateJournalTest, ClearEmptiesTheFile) {
  {
    auto j = open();
    ASSERT_NE(j, nullptr);
    ASSERT_TRUE(j->put("a", fakeCall("a", 1)).ok());
    ASSERT_TRUE(j->clear().ok());
    EXPECT_EQ(sizeOnDisk(), 0U);
    EXPECT_EQ(j->liveCalls(), 0U);
    ASSERT_TRUE(j->put("b", fakeCall("b", 1)).ok());
    EXPECT_EQ(j->fileBytes(), sizeOnDisk());
  }
  EXPECT_EQ(idsOf(load()), (std::vector<std::string>{"b"}));
}

TEST_F(StateJournalTest, RejectsWhatCannotBeAJsonLine) {
  auto j = open();
  ASSERT_NE(j, nullptr);
  EXPECT_FALSE(j->put("a", Json::array()).ok());
  // A string that is not UTF-8 cannot be dumped; callToJson() never produces one.
  EXPECT_FALSE(j->put("a", Json{{"id", "\xff"}}).ok());
  EXPECT_EQ(j->write_errors(), 1U);
  EXPECT_EQ(j->liveCalls(), 0U);
  EXPECT_EQ(sizeOnDisk(), 0U);
}

TEST_F(StateJournalTest, CallsSurviveARestartThroughTheJournal) {
  const auto ifs = testInterfaces();
  const Clock::time_point now = Clock::now();
  auto call = realisticCall(ifs, now);
  call->id = std::string("odd\xff", 4);  // the journal's id key is byte-exact too
  auto other = realisticCall(ifs, now);
  other->id = "second";
  {
    auto j = open();
    ASSERT_NE(j, nullptr);
    ASSERT_TRUE(j->put(call->id, callToJson(*call, now)).ok());
    ASSERT_TRUE(j->put(other->id, callToJson(*other, now)).ok());
    ASSERT_TRUE(j->erase(other->id).ok());
  }
  auto j = open();
  ASSERT_NE(j, nullptr);
  auto l = j->load();
  ASSERT_TRUE(l.ok());
  ASSERT_EQ(l->calls.size(), 1U);
  const auto later = now + std::chrono::seconds(3);
  auto restored = callFromJson(l->calls[0], ifs, later);
  ASSERT_TRUE(restored.ok()) << restored.error().message;
  expectCallRestored(**restored, *call, now, later);
  // The restored call can be erased by its (non-UTF-8) id.
  ASSERT_TRUE(j->erase((*restored)->id).ok());
  EXPECT_EQ(j->liveCalls(), 0U);
  j.reset();
  EXPECT_TRUE(load().calls.empty());
}

}  // namespace
}  // namespace xems::session
