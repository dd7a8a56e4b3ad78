// Typed helpers over the SDP model: attributes, direction, rtpmap/fmtp/rtcp-fb, codec lists.
#include <algorithm>
#include <array>

#include "ctrl/sdp/sdp.h"
#include "ctrl/sdp/number.h"

namespace xems::sdp {
namespace {

using detail::isDigits;
using detail::parseNumber;

std::optional<uint8_t> parsePayloadType(std::string_view s) {
  auto n = parseNumber(s, 127);
  if (!n) {
    return std::nullopt;
  }
  return static_cast<uint8_t>(*n);
}

// For "a=<name>:<pt> <rest>": if the value's first token equals `pt`, returns <rest>.
std::optional<std::string_view> valueForPt(const Attribute& a, std::string_view pt) {
  std::string_view v = a.value;
  if (!a.has_value || v.size() < pt.size() || v.substr(0, pt.size()) != pt) {
    return std::nullopt;
  }
  v.remove_prefix(pt.size());
  if (v.empty()) {
    return v;
  }
  if (v.front() != ' ') {
    return std::nullopt;
  }
  return v.substr(1);
}

// Splits "<pt> <rest>" at the first space.
std::pair<std::string_view, std::string_view> splitPt(std::string_view v) {
  size_t sp = v.find(' ');
  if (sp == std::string_view::npos) {
    return {v, {}};
  }
  return {v.substr(0, sp), v.substr(sp + 1)};
}

}  // namespace

Attribute Attribute::flag(std::string_view name) {
  return Attribute{.name = std::string(name), .value = {}, .has_value = false};
}

Attribute Attribute::withValue(std::string_view name, std::string_view value) {
  return Attribute{.name = std::string(name), .value = std::string(value), .has_value = true};
}

Connection Connection::fromIp(const IpAddr& ip) {
  return Connection{.family = ip.family(), .address = ip.toString(), .suffix = {}};
}

std::optional<IpAddr> Connection::ip() const {
  if (address.empty() || address.front() == '[') {
    return std::nullopt;
  }
  auto ip = IpAddr::parse(address);
  if (!ip || ip->family() != family) {
    return std::nullopt;
  }
  return ip;
}

bool Connection::isZero() const {
  auto a = ip();
  return a && a->isAny();
}

std::string_view directionName(Direction d) {
  switch (d) {
    case Direction::kSendRecv:
      return "sendrecv";
    case Direction::kSendOnly:
      return "sendonly";
    case Direction::kRecvOnly:
      return "recvonly";
    case Direction::kInactive:
      return "inactive";
  }
  return "sendrecv";
}

std::optional<Direction> directionFromName(std::string_view name) {
  if (name == "sendrecv") {
    return Direction::kSendRecv;
  }
  if (name == "sendonly") {
    return Direction::kSendOnly;
  }
  if (name == "recvonly") {
    return Direction::kRecvOnly;
  }
  if (name == "inactive") {
    return Direction::kInactive;
  }
  return std::nullopt;
}

bool isDirectionAttribute(std::string_view name) { return directionFromName(name).has_value(); }

bool isIceAttribute(std::string_view name) {
  static constexpr std::array<std::string_view, 9> kIce = {
      "ice-ufrag",  "ice-pwd",   "ice-options",       "ice-lite",         "ice-mismatch",
      "ice-pacing", "candidate", "end-of-candidates", "remote-candidates"};
  return std::find(kIce.begin(), kIce.end(), name) != kIce.end();
}

bool isRtpProto(std::string_view proto) {
  // RTP/AVP, RTP/AVPF, RTP/SAVP, RTP/SAVPF, UDP/TLS/RTP/SAVP(F), TCP/RTP/AVP, ...
  return proto.substr(0, 4) == "RTP/" || proto.find("/RTP/") != std::string_view::npos;
}

std::string formatRtcp(const Rtcp& rtcp) {
  std::string out = std::to_string(rtcp.port);
  if (rtcp.address) {
    out.append(" IN ");
    out.append(familySdpName(rtcp.address->family()));
    out.push_back(' ');
    out.append(rtcp.address->toString());
  }
  return out;
}

Result<RtpMap> parseRtpMap(std::string_view value) {
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
    value.remove_suffix(1);
  }
  auto [pt_text, rest] = splitPt(value);
  auto pt = parsePayloadType(pt_text);
  if (!pt) {
    return XEMS_INVALID("bad rtpmap payload type");
  }
  size_t slash = rest.find('/');
  if (slash == 0 || slash == std::string_view::npos) {
    return XEMS_INVALID("bad rtpmap encoding");
  }
  RtpMap map{.payload_type = *pt, .encoding = std::string(rest.substr(0, slash))};
  rest.remove_prefix(slash + 1);
  std::string_view clock = rest;
  std::optional<std::string_view> channels;
  if (size_t s2 = rest.find('/'); s2 != std::string_view::npos) {
    clock = rest.substr(0, s2);
    channels = rest.substr(s2 + 1);
  }
  auto c = parseNumber(clock, UINT32_MAX);
  if (!c || *c == 0) {
    return XEMS_INVALID("bad rtpmap clock rate");
  }
  map.clock_rate = *c;
  if (channels) {
    auto ch = parseNumber(*channels, UINT16_MAX);
    if (!ch || *ch == 0) {
      return XEMS_INVALID("bad rtpmap channel count");
    }
    map.channels = static_cast<uint16_t>(*ch);
  }
  return map;
}

std::string formatRtpMap(const RtpMap& map) {
  std::string out = std::to_string(map.payload_type);
  out.push_back(' ');
  out.append(map.encoding);
  out.push_back('/');
  out.append(std::to_string(map.clock_rate));
  if (map.channels) {
    out.push_back('/');
    out.append(std::to_string(*map.channels));
  }
  return out;
}

RtpMap StaticPayloadType::toRtpMap() const {
  RtpMap map{
      .payload_type = payload_type, .encoding = std::string(encoding), .clock_rate = clock_rate};
  if (channels != 1) {
    map.channels = channels;
  }
  return map;
}

std::optional<RtpMap> Codec::rtpMap() const {
  if (!payload_type || encoding.empty()) {
    return std::nullopt;
  }
  return RtpMap{.payload_type = *payload_type,
                .encoding = encoding,
                .clock_rate = clock_rate,
                .channels = channels};
}

// ---- attribute lists ----

const Attribute* findAttribute(const std::vector<Attribute>& attrs, std::string_view name) {
  for (const auto& a : attrs) {
    if (a.name == name) {
      return &a;
    }
  }
  return nullptr;
}

Attribute* findAttribute(std::vector<Attribute>& attrs, std::string_view name) {
  for (auto& a : attrs) {
    if (a.name == name) {
      return &a;
    }
  }
  return nullptr;
}

std::vector<const Attribute*> findAttributes(const std::vector<Attribute>& attrs,
                                             std::string_view name) {
  std::vector<const Attribute*> out;
  for (const auto& a : attrs) {
    if (a.name == name) {
      out.push_back(&a);
    }
  }
  return out;
}

size_t removeAttributes(std::vector<Attribute>& attrs, std::string_view name) {
  return std::erase_if(attrs, [name](const Attribute& a) { return a.name == name; });
}

std::optional<Direction> directionOf(const std::vector<Attribute>& attrs) {
  for (const auto& a : attrs) {
    if (auto d = directionFromName(a.name)) {
      return d;
    }
  }
  return std::nullopt;
}

void setDirection(std::vector<Attribute>& attrs, Direction d) {
  auto first = std::find_if(attrs.begin(), attrs.end(),
                            [](const Attribute& a) { return isDirectionAttribute(a.name); });
  if (first == attrs.end()) {
    attrs.push_back(Attribute::flag(directionName(d)));
    return;
  }
  *first = Attribute::flag(directionName(d));
  // Erase any further direction attributes after the first one.
  attrs.erase(std::remove_if(first + 1, attrs.end(),
                             [](const Attribute& a) { return isDirectionAttribute(a.name); }),
              attrs.end());
}

// ---- Media ----

const Attribute* Media::findAttribute(std::string_view name) const {
  return sdp::findAttribute(attributes, name);
}
Attribute* Media::findAttribute(std::string_view name) {
  return sdp::findAttribute(attributes, name);
}
std::vector<const Attribute*> Media::findAttributes(std::string_view name) const {
  return sdp::findAttributes(attributes, name);
}
size_t Media::removeAttributes(std::string_view name) {
  return sdp::removeAttributes(attributes, name);
}
size_t Media::removeIceAttributes() {
  return std::erase_if(attributes, [](const Attribute& a) { return isIceAttribute(a.name); });
}
std::optional<Direction> Media::direction() const { return directionOf(attributes); }
void Media::setDirection(Direction d) { sdp::setDirection(attributes, d); }

std::optional<Rtcp> Media::rtcp() const {
  for (const auto& a : attributes) {
    if (a.name == "rtcp" && a.has_value) {
      auto r = parseRtcp(a.value);
      if (r.ok()) {
        return std::move(r).value();
      }
    }
  }
  return std::nullopt;
}

std::optional<RtpMap> Media::rtpMap(std::string_view pt) const {
  std::optional<RtpMap> found;
  for (const auto& a : attributes) {
    if (a.name == "rtpmap" && valueForPt(a, pt)) {
      auto r = parseRtpMap(a.value);
      if (r.ok()) {
        found = std::move(r).value();
      }
    }
  }
  return found;
}

std::optional<std::string_view> Media::fmtp(std::string_view pt) const {
  std::optional<std::string_view> found;
  for (const auto& a : attributes) {
    if (a.name == "fmtp") {
      if (auto v = valueForPt(a, pt)) {
        found = v;
      }
    }
  }
  return found;
}

std::vector<std::string_view> Media::rtcpFb(std::string_view pt) const {
  std::vector<std::string_view> out;
  for (const auto& a : attributes) {
    if (a.name == "rtcp-fb") {
      if (auto v = valueForPt(a, pt)) {
        out.push_back(*v);
      }
    }
  }
  return out;
}

std::vector<Codec> Media::codecs() const {
  // One pass over the attributes, indexed by numeric payload type (formats with the same PT share
  // the data). Non-numeric format tokens (t38, webrtc-datachannel) get fmtp by text match.
  std::array<const Attribute*, 128> rtpmap{};
  std::array<const Attribute*, 128> fmtp_attr{};
  std::array<bool, 128> wanted{};
  std::vector<std::pair<uint8_t, std::string_view>> fbs;
  bool has_text_formats = false;
  for (const auto& f : formats) {
    if (auto pt = parsePayloadType(f)) {
      wanted[*pt] = true;
    } else {
      has_text_formats = true;
    }
  }
  for (const auto& a : attributes) {
    if (!a.has_value) {
      continue;
    }
    bool is_rtpmap = a.name == "rtpmap";
    bool is_fmtp = a.name == "fmtp";
    bool is_fb = a.name == "rtcp-fb";
    if (!is_rtpmap && !is_fmtp && !is_fb) {
      continue;
    }
    auto [pt_text, rest] = splitPt(a.value);
    auto pt = parsePayloadType(pt_text);
    if (!pt || !wanted[*pt]) {
      continue;
    }
    if (is_rtpmap) {
      if (parseRtpMap(a.value).ok()) {
        rtpmap[*pt] = &a;  // the last one that parses wins
      }
    } else if (is_fmtp) {
      fmtp_attr[*pt] = &a;
    } else {
      fbs.emplace_back(*pt, rest);
    }
  }

  std::vector<Codec> out;
  out.reserve(formats.size());
  for (const auto& f : formats) {
    Codec c;
    c.format = f;
    auto pt = parsePayloadType(f);
    if (!pt) {
      if (has_text_formats) {
        if (auto v = fmtp(f)) {
          c.fmtp = std::string(*v);
        }
      }
      out.push_back(std::move(c));
      continue;
    }
    c.payload_type = pt;
    std::optional<RtpMap> map;
    if (rtpmap[*pt] != nullptr) {
      map = std::move(parseRtpMap(rtpmap[*pt]->value)).value();
      c.has_rtpmap = true;
    } else if (auto st = staticPayloadType(*pt)) {
      map = st->toRtpMap();
    }
    if (map) {
      c.encoding = std::move(map->encoding);
      c.clock_rate = map->clock_rate;
      c.channels = map->channels;
    }
    if (fmtp_attr[*pt] != nullptr) {
      c.fmtp = std::string(splitPt(fmtp_attr[*pt]->value).second);
    }
    for (const auto& [fb_pt, value] : fbs) {
      if (fb_pt == *pt) {
        c.rtcp_fb.emplace_back(value);
      }
    }
    out.push_back(std::move(c));
  }
  return out;
}

// ---- Session ----

const Attribute* Session::findAttribute(std::string_view name) const {
  return sdp::findAttribute(attributes, name);
}
Attribute* Session::findAttribute(std::string_view name) {
  return sdp::findAttribute(attributes, name);
}
std::vector<const Attribute*> Session::findAttributes(std::string_view name) const {
  return sdp::findAttributes(attributes, name);
}
size_t Session::removeAttributes(std::string_view name) {
  return sdp::removeAttributes(attributes, name);
}
size_t Session::removeIceAttributes() {
  return std::erase_if(attributes, [](const Attribute& a) { return isIceAttribute(a.name); });
}
std::optional<Direction> Session::direction() const { return directionOf(attributes); }
void Session::setDirection(Direction d) { sdp::setDirection(attributes, d); }

const Connection* Session::effectiveConnection(const Media& m) const {
  if (m.connection) {
    return &*m.connection;
  }
  if (connection) {
    return &*connection;
  }
  return nullptr;
}

Direction Session::effectiveDirection(const Media& m) const {
  if (auto d = m.direction()) {
    return *d;
  }
  return direction().value_or(Direction::kSendRecv);
}

}  // namespace xems::sdp
