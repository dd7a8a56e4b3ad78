#include "ctrl/session/call_state.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <mutex>

#include "ctrl/sdp/sdp.h"

namespace xems::session {
namespace {

using Json = nlohmann::json;
using std::chrono::milliseconds;

// Bounds on what a record may hold: well above what the registry builds (16 participants,
// 8 aliases, SDP of at most sdp::kMaxSdpSize), they only keep a corrupt or hostile file from
// building absurd calls.
constexpr size_t kMaxParticipants = 64;
constexpr size_t kMaxMedias = sdp::kMaxMediaSections;
constexpr size_t kMaxListItems = 1024;  // aliases, codecs of one media
constexpr size_t kMaxStringBytes = size_t{1} << 20;
// Ages and times left: about 139 years, more than a uint32 delete-delay in seconds, and small
// enough that now +/- a span cannot overflow the nanosecond steady clock.
constexpr int64_t kMaxSpanMs = int64_t{1} << 42;
constexpr int64_t kMaxInt64 = std::numeric_limits<int64_t>::max();

// RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF (what nlohmann's dump()
// accepts; anything else would make it throw).
bool validUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<uint8_t>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    uint32_t cp = 0;
    uint32_t min = 0;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
      min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
      min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
      min = 0x10000;
    } else {
      return false;
    }
    if (s.size() - i < len) {
      return false;
    }
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<uint8_t>(s[i + k]);
      if ((cc & 0xC0) != 0x80) {
        return false;
      }
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

int hexDigit(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

// For error messages: a bounded, printable excerpt of untrusted text.
std::string excerpt(std::string_view s) {
  constexpr size_t kMax = 64;
  std::string out;
  for (char c : s.substr(0, kMax)) {
    out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  }
  if (s.size() > kMax) {
    out += "...";
  }
  return out;
}

std::optional<SockAddr> parseSockAddrExact(std::string_view text) {
  auto a = SockAddr::parse(text);
  if (!a || !a->valid() || a->toString() != text) {
    return std::nullopt;
  }
  return a;
}

std::optional<IpAddr> parseIpExact(std::string_view text) {
  auto a = IpAddr::parse(text);
  if (!a || a->toString() != text) {
    return std::nullopt;
  }
  return a;
}

// ---- writing -------------------------------------------------------------------------------

Json addrToJson(const std::optional<SockAddr>& a) {
  if (!a || !a->valid()) {
    return nullptr;
  }
  return a->toString();
}

Json stringsToJson(const std::vector<std::string>& v) {
  Json out = Json::array();
  for (const auto& s : v) {
    out.push_back(bytesToJson(s));
  }
  return out;
}

// to - from in whole milliseconds, clamped to [0, kMaxSpanMs] so that the reader accepts it.
int64_t spanMs(Clock::time_point from, Clock::time_point to) {
  const int64_t ms = std::chrono::duration_cast<milliseconds>(to - from).count();
  return std::clamp<int64_t>(ms, 0, kMaxSpanMs);
}

Json streamToJson(const Stream& s) {
  Json j = Json::object();
  j["local"] = addrToJson(s.local);
  j["advertised"] = addrToJson(s.advertised);
  j["latch"] = addrToJson(persistedLatch(s));
  return j;
}

Json mediaToJson(const Media& m) {
  Json j = Json::object();
  j["index"] = m.index;
  j["type"] = bytesToJson(m.type);
  j["protocol"] = bytesToJson(m.protocol);
  if (m.iface != nullptr) {
    j["iface"] = Json{{"name", bytesToJson(m.iface->name)}, {"local", m.iface->local.toString()}};
  } else {
    j["iface"] = nullptr;
  }
  j["allocated"] = m.allocated;
  j["rtcp_mux"] = m.rtcp_mux;
  j["mux_offered"] = m.mux_offered;
  j["mux_keep"] = m.mux_keep;
  j["rtcp_sdp"] = addrToJson(m.rtcp_sdp);
  j["sends"] = m.sends;
  j["receives"] = m.receives;
  j["rejected"] = m.rejected;
  j["zero_address"] = m.zero_address;
  j["sdp_family"] = std::string(familySdpName(m.sdp_family));
  j["codecs"] = stringsToJson(m.codecs);
  j["rtp"] = streamToJson(m.rtp);
  j["rtcp"] = streamToJson(m.rtcp);
  return j;
}

Json sdpOutToJson(const SdpOutState& s) {
  Json j = Json::object();
  j["initialised"] = s.initialised;
  j["username"] = bytesToJson(s.username);
  j["session_id"] = bytesToJson(s.session_id);
  j["session_name"] = bytesToJson(s.session_name);
  j["origin_address"] = bytesToJson(s.origin_address);
  j["version"] = s.version;
  j["last_body"] = bytesToJson(s.last_body);
  return j;
}

// ---- reading -------------------------------------------------------------------------------

// Typed access to untrusted JSON. The first problem is recorded with the path of the field;
// after that every getter returns a default, so callers check ok() only where a bad value would
// otherwise be used (indexes, sizes).
class Reader {
 public:
  // Extends the path (".key" or "[index]") for its lifetime.
  class Scope {
   public:
    Scope(Reader& r, std::string_view key) : r_(r), len_(r.path_.size()) {
      if (!r_.path_.empty()) {
        r_.path_.push_back('.');
      }
      r_.path_ += key;
    }
    Scope(Reader& r, size_t index) : r_(r), len_(r.path_.size()) {
      r_.path_ += fmt::format("[{}]", index);
    }
    ~Scope() { r_.path_.resize(len_); }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    Reader& r_;
    size_t len_;
  };

  bool ok() const { return error_.empty(); }
  std::string takeError() { return std::move(error_); }

  void fail(std::string_view key, std::string_view what) {
    if (!ok()) {
      return;
    }
    error_ = path_;
    if (!key.empty()) {
      if (!error_.empty()) {
        error_.push_back('.');
      }
      error_ += key;
    }
    if (error_.empty()) {
      error_ = "record";
    }
    error_ += ": ";
    error_ += what;
  }

  // `obj` must be an object (callers check); nullptr if the key is missing.
  const Json* member(const Json& obj, const char* key) {
    if (!ok()) {
      return nullptr;
    }
    auto it = obj.find(key);
    if (it == obj.end()) {
      fail(key, "missing");
      return nullptr;
    }
    return &*it;
  }

  std::string str(const Json& obj, const char* key) {
    const Json* v = member(obj, key);
    if (v == nullptr) {
      return {};
    }
    auto s = bytesFromJson(*v);
    if (!s) {
      fail(key, "expected a string");
      return {};
    }
    if (s->size() > kMaxStringBytes) {
      fail(key, fmt::format("longer than {} bytes", kMaxStringBytes));
      return {};
    }
    return std::move(*s);
  }

  int64_t integer(const Json& obj, const char* key, int64_t min, int64_t max) {
    const Json* v = member(obj, key);
    if (v == nullptr) {
      return 0;
    }
    int64_t x = 0;
    if (v->is_number_unsigned()) {
      const auto u = v->get<uint64_t>();
      if (u > static_cast<uint64_t>(kMaxInt64)) {
        fail(key, fmt::format("{} out of range [{}, {}]", u, min, max));
        return 0;
      }
      x = static_cast<int64_t>(u);
    } else if (v->is_number_integer()) {
      x = v->get<int64_t>();
    } else {
      fail(key, "expected an integer");
      return 0;
    }
    if (x < min || x > max) {
      fail(key, fmt::format("{} out of range [{}, {}]", x, min, max));
      return 0;
    }
    return x;
  }

  uint64_t unsignedInteger(const Json& obj, const char* key) {
    const Json* v = member(obj, key);
    if (v == nullptr) {
      return 0;
    }
    if (v->is_number_unsigned()) {
      return v->get<uint64_t>();
    }
    if (v->is_number_integer() && v->get<int64_t>() >= 0) {
      return static_cast<uint64_t>(v->get<int64_t>());
    }
    fail(key, "expected a non-negative integer");
    return 0;
  }

  bool boolean(const Json& obj, const char* key) {
    const Json* v = member(obj, key);
    if (v == nullptr) {
      return false;
    }
    if (!v->is_boolean()) {
      fail(key, "expected true or false");
      return false;
    }
    return v->get<bool>();
  }

  // A steady time stored as milliseconds relative to now (sign +1: time left, -1: age).
  Clock::time_point relativeTime(const Json& obj, const char* key, Clock::time_point now,
                                 int sign) {
    const int64_t ms = integer(obj, key, 0, kMaxSpanMs);
    const auto d = std::chrono::duration_cast<Clock::duration>(milliseconds(ms)).count();
    Clock::rep t = 0;
    const bool overflow = sign > 0 ? __builtin_add_overflow(now.time_since_epoch().count(), d, &t)
                                   : __builtin_sub_overflow(now.time_since_epoch().count(), d, &t);
    if (overflow) {
      fail(key, "out of the clock's range");
      return now;
    }
    return Clock::time_point(Clock::duration(t));
  }

  // "IP:PORT" in SockAddr::toString() form, or null.
  std::optional<SockAddr> addr(const Json& obj, const char* key) {
    const Json* v = member(obj, key);
    if (v == nullptr || v->is_null()) {
      return std::nullopt;
    }
    if (!v->is_string()) {
      fail(key, "expected an address string or null");
      return std::nullopt;
    }
    const auto& text = v->get_ref<const std::string&>();
    auto a = parseSockAddrExact(text);
    if (!a) {
      fail(key, fmt::format("bad address '{}'", excerpt(text)));
    }
    return a;
  }

  std::optional<IpAddr> ip(const Json& obj, const char* key) {
    const Json* v = member(obj, key);
    if (v == nullptr) {
      return std::nullopt;
    }
    if (!v->is_string()) {
      fail(key, "expected an IP address string");
      return std::nullopt;
    }
    const auto& text = v->get_ref<const std::string&>();
    auto a = parseIpExact(text);
    if (!a) {
      fail(key, fmt::format("bad IP address '{}'", excerpt(text)));
    }
    return a;
  }

  // nullptr if missing or not an object (error recorded), or if null and `nullable`.
  const Json* object(const Json& obj, const char* key, bool nullable = false) {
    const Json* v = member(obj, key);
    if (v == nullptr || (nullable && v->is_null())) {
      return nullptr;
    }
    if (!v->is_object()) {
      fail(key, nullable ? "expected an object or null" : "expected an object");
      return nullptr;
    }
    return v;
  }

  const Json* array(const Json& obj, const char* key, size_t max_items) {
    const Json* v = member(obj, key);
    if (v == nullptr) {
      return nullptr;
    }
    if (!v->is_array()) {
      fail(key, "expected an array");
      return nullptr;
    }
    if (v->size() > max_items) {
      fail(key, fmt::format("more than {} items", max_items));
      return nullptr;
    }
    return v;
  }

  std::vector<std::string> strings(const Json& obj, const char* key, size_t max_items) {
    std::vector<std::string> out;
    const Json* a = array(obj, key, max_items);
    if (a == nullptr) {
      return out;
    }
    Scope list(*this, key);
    for (size_t i = 0; i < a->size() && ok(); ++i) {
      auto v = bytesFromJson((*a)[i]);
      if (!v || v->size() > kMaxStringBytes) {
        Scope item(*this, i);
        fail("", "expected a string");
        break;
      }
      out.push_back(std::move(*v));
    }
    return out;
  }

 private:
  std::string path_;
  std::string error_;
};

void readStream(Reader& r, const Json& media, const char* key, Stream& s) {
  const Json* j = r.object(media, key);
  if (j == nullptr) {
    return;
  }
  Reader::Scope scope(r, key);
  s.local = r.addr(*j, "local").value_or(SockAddr{});
  s.advertised = r.addr(*j, "advertised");
  s.restore_latch = r.addr(*j, "latch");
}

void readMedia(Reader& r, const Json& j, size_t position,
               const std::vector<InterfaceSpec>& interfaces, Media& m) {
  if (!j.is_object()) {
    r.fail("", "expected an object");
    return;
  }
  m.index = static_cast<int>(r.integer(j, "index", 1, static_cast<int64_t>(kMaxMedias)));
  if (r.ok() && static_cast<size_t>(m.index) != position + 1) {
    r.fail("index", fmt::format("{} at position {} (must be position + 1)", m.index, position));
  }
  m.type = r.str(j, "type");
  m.protocol = r.str(j, "protocol");
  if (const Json* iface = r.object(j, "iface", /*nullable=*/true); iface != nullptr) {
    Reader::Scope scope(r, "iface");
    const std::string name = r.str(*iface, "name");
    const auto local = r.ip(*iface, "local");
    if (r.ok()) {
      auto it = std::find_if(interfaces.begin(), interfaces.end(), [&](const InterfaceSpec& i) {
        return i.name == name && i.local == *local;
      });
      if (it == interfaces.end()) {
        r.fail("", fmt::format("unknown interface '{}/{}'", excerpt(name), local->toString()));
      } else {
        m.iface = &*it;
      }
    }
  }
  m.allocated = r.boolean(j, "allocated");
  m.rtcp_mux = r.boolean(j, "rtcp_mux");
  m.mux_offered = r.boolean(j, "mux_offered");
  m.mux_keep = r.boolean(j, "mux_keep");
  m.rtcp_sdp = r.addr(j, "rtcp_sdp");
  m.sends = r.boolean(j, "sends");
  m.receives = r.boolean(j, "receives");
  m.rejected = r.boolean(j, "rejected");
  m.zero_address = r.boolean(j, "zero_address");
  const std::string family = r.str(j, "sdp_family");
  if (r.ok()) {
    if (family.empty()) {
      m.sdp_family = Family::kNone;
    } else if (auto f = familyFromSdpName(family)) {
      m.sdp_family = *f;
    } else {
      r.fail("sdp_family", fmt::format("expected IP4, IP6 or \"\", not '{}'", excerpt(family)));
    }
  }
  m.codecs = r.strings(j, "codecs", kMaxListItems);
  readStream(r, j, "rtp", m.rtp);
  readStream(r, j, "rtcp", m.rtcp);
  if (!r.ok() || !m.allocated) {
    return;
  }
  // The caller re-reserves this pair on the interface (PortAllocator works on pairs: RTP port,
  // RTCP port + 1, on the interface's local address), so anything else is refused here.
  if (m.iface == nullptr) {
    r.fail("iface", "allocated media without an interface");
  } else if (!(m.rtp.local.valid() && m.rtp.local.ip() == m.iface->local &&
               m.rtp.local.port() != 0)) {
    r.fail("rtp.local", "allocated media without a port on its interface's address");
  } else if (!(m.rtcp.local.valid() && m.rtcp.local.ip() == m.iface->local &&
               static_cast<uint32_t>(m.rtcp.local.port()) == m.rtp.local.port() + 1U)) {
    r.fail("rtcp.local", "must be the RTP port + 1 on the same address");
  } else {
    m.rtp.counters = std::make_shared<datapath::FlowCounters>();
    m.rtcp.counters = std::make_shared<datapath::FlowCounters>();
  }
}

void readSdpOut(Reader& r, const Json& participant, SdpOutState& s) {
  const Json* j = r.object(participant, "sdp_out");
  if (j == nullptr) {
    return;
  }
  Reader::Scope scope(r, "sdp_out");
  s.initialised = r.boolean(*j, "initialised");
  s.username = r.str(*j, "username");
  s.session_id = r.str(*j, "session_id");
  s.session_name = r.str(*j, "session_name");
  s.origin_address = r.str(*j, "origin_address");
  s.version = r.unsignedInteger(*j, "version");
  s.last_body = r.str(*j, "last_body");
}

// Returns the participant's peer index (-1: none).
int64_t readParticipant(Reader& r, const Json& j, size_t count,
                        const std::vector<InterfaceSpec>& interfaces, Participant& p) {
  if (!j.is_object()) {
    r.fail("", "expected an object");
    return -1;
  }
  p.tag = r.str(j, "tag");
  p.via_branch = r.str(j, "via_branch");
  p.label = r.str(j, "label");
  p.aliases = r.strings(j, "aliases", kMaxListItems);
  p.created = r.integer(j, "created", 0, kMaxInt64);
  p.iface_name = r.str(j, "iface_name");
  const int64_t peer = r.integer(j, "peer", -1, static_cast<int64_t>(count) - 1);
  readSdpOut(r, j, p.sdp_out);
  const Json* medias = r.array(j, "medias", kMaxMedias);
  if (medias == nullptr) {
    return -1;
  }
  Reader::Scope scope(r, "medias");
  p.medias.resize(medias->size());
  for (size_t i = 0; i < medias->size() && r.ok(); ++i) {
    Reader::Scope item(r, i);
    readMedia(r, (*medias)[i], i, interfaces, p.medias[i]);
  }
  return peer;
}

std::unique_ptr<Call> readCall(Reader& r, const Json& j,
                               const std::vector<InterfaceSpec>& interfaces,
                               Clock::time_point now) {
  if (!j.is_object()) {
    r.fail("", "expected an object");
    return nullptr;
  }
  const Json* v = r.member(j, "v");
  if (v == nullptr) {
    return nullptr;
  }
  if (!v->is_number_integer()) {
    r.fail("v", fmt::format("expected an integer, not {}", v->type_name()));
    return nullptr;
  }
  if (*v != kCallStateVersion) {
    r.fail("v", fmt::format("unsupported version {} (expected {})",
                            v->is_number_unsigned() ? std::to_string(v->get<uint64_t>())
                                                    : std::to_string(v->get<int64_t>()),
                            kCallStateVersion));
    return nullptr;
  }
  auto call = std::make_unique<Call>();
  call->id = r.str(j, "id");
  if (r.ok() && call->id.empty()) {
    r.fail("id", "empty");
  }
  call->created_unix = r.integer(j, "created_unix", 0, kMaxInt64);
  call->created_us = r.integer(j, "created_us", 0, kMaxInt64);
  call->last_signal_unix = r.integer(j, "last_signal_unix", 0, kMaxInt64);
  call->created_mono = r.relativeTime(j, "created_age_ms", now, -1);
  call->last_signal_mono = r.relativeTime(j, "last_signal_age_ms", now, -1);
  if (const Json* d = r.member(j, "delete_in_ms"); d != nullptr && !d->is_null()) {
    call->delete_at = r.relativeTime(j, "delete_in_ms", now, +1);
  }
  call->answered = r.boolean(j, "answered");
  const Json* parts = r.array(j, "participants", kMaxParticipants);
  if (parts == nullptr) {
    return nullptr;
  }
  std::vector<int64_t> peers;
  {
    Reader::Scope scope(r, "participants");
    for (size_t i = 0; i < parts->size() && r.ok(); ++i) {
      Reader::Scope item(r, i);
      auto p = std::make_unique<Participant>();
      peers.push_back(readParticipant(r, (*parts)[i], parts->size(), interfaces, *p));
      call->participants.push_back(std::move(p));
    }
  }
  if (!r.ok()) {
    return nullptr;
  }
  for (size_t i = 0; i < peers.size(); ++i) {
    // In range: readParticipant checked -1 <= peer < count.
    call->participants[i]->peer =
        peers[i] < 0 ? nullptr : call->participants[static_cast<size_t>(peers[i])].get();
  }
  return call;
}

}  // namespace

Json bytesToJson(std::string_view bytes) {
  if (validUtf8(bytes)) {
    return std::string(bytes);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(bytes.size() * 2);
  for (char c : bytes) {
    const auto b = static_cast<uint8_t>(c);
    hex.push_back(kHex[b >> 4]);
    hex.push_back(kHex[b & 0xF]);
  }
  Json j = Json::object();
  j["hex"] = std::move(hex);
  return j;
}

std::optional<std::string> bytesFromJson(const Json& j) {
  if (j.is_string()) {
    return j.get<std::string>();
  }
  if (!j.is_object() || j.size() != 1) {
    return std::nullopt;
  }
  auto it = j.find("hex");
  if (it == j.end() || !it->is_string()) {
    return std::nullopt;
  }
  const auto& hex = it->get_ref<const std::string&>();
  if (hex.size() % 2 != 0) {
    return std::nullopt;
  }
  std::string out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = hexDigit(hex[i]);
    const int lo = hexDigit(hex[i + 1]);
    if (hi < 0 || lo < 0) {
      return std::nullopt;
    }
    out.push_back(static_cast<char>((hi << 4) | lo));
  }
  return out;
}

std::optional<SockAddr> persistedLatch(const Stream& s) {
  if (s.counters) {
    std::lock_guard lock(s.counters->mu);
    if (s.counters->learned) {
      return s.counters->learned;
    }
  }
  // Not (yet) latched again since a restart: keep what the journal had.
  return s.restore_latch;
}

Json callToJson(const Call& call, Clock::time_point now) {
  Json j = Json::object();
  j["v"] = kCallStateVersion;
  j["id"] = bytesToJson(call.id);
  j["created_unix"] = call.created_unix;
  j["created_us"] = call.created_us;
  j["last_signal_unix"] = call.last_signal_unix;
  j["created_age_ms"] = spanMs(call.created_mono, now);
  j["last_signal_age_ms"] = spanMs(call.last_signal_mono, now);
  if (call.delete_at) {
    j["delete_in_ms"] = spanMs(now, *call.delete_at);
  } else {
    j["delete_in_ms"] = nullptr;
  }
  j["answered"] = call.answered;

  std::vector<const Participant*> parts;
  for (const auto& p : call.participants) {
    if (p) {
      parts.push_back(p.get());
    }
  }
  Json pj = Json::array();
  for (const Participant* p : parts) {
    Json o = Json::object();
    o["tag"] = bytesToJson(p->tag);
    o["via_branch"] = bytesToJson(p->via_branch);
    o["label"] = bytesToJson(p->label);
    o["aliases"] = stringsToJson(p->aliases);
    o["created"] = p->created;
    o["iface_name"] = bytesToJson(p->iface_name);
    auto peer = std::find(parts.begin(), parts.end(), p->peer);
    o["peer"] = p->peer == nullptr || peer == parts.end()
                    ? int64_t{-1}
                    : static_cast<int64_t>(peer - parts.begin());
    o["sdp_out"] = sdpOutToJson(p->sdp_out);
    Json medias = Json::array();
    for (const auto& m : p->medias) {
      medias.push_back(mediaToJson(m));
    }
    o["medias"] = std::move(medias);
    pj.push_back(std::move(o));
  }
  j["participants"] = std::move(pj);
  return j;
}

Result<std::unique_ptr<Call>> callFromJson(const Json& j,
                                           const std::vector<InterfaceSpec>& interfaces,
                                           Clock::time_point now) {
  // Nothing may escape: the getters check types before every access, but an allocation failure
  // or a missed case must still end as an error, not as an exception through the daemon.
  try {
    Reader r;
    auto call = readCall(r, j, interfaces, now);
    if (!r.ok() || call == nullptr) {
      return XEMS_INVALID("call state: " + r.takeError());
    }
    return call;
  } catch (const std::exception& e) {
    return XEMS_INVALID(std::string("call state: ") + e.what());
  } catch (...) {
    return XEMS_INVALID("call state: unexpected error");
  }
}

}  // namespace xems::session
