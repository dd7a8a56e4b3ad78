// SDP model, parser and writer (RFC 4566 / RFC 8866) for the xems session layer.
//
// The model is a plain, editable tree of owning strings: the session layer parses an incoming SDP,
// rewrites addresses, ports and attributes per rtpengine's rules, and writes it out. Everything
// the model does not interpret (unknown line letters, unknown attributes, i=/u=/e=/p=/b=/t=/r=/z=/
// k= lines) is kept verbatim and in input order, so `write(parse(x)) == x` for a well-ordered
// input with CRLF line ends.
//
// Parser strictness, modelled on rtpengine's `sdp_parse()` (daemon/sdp.c):
//  - The first line must be `v=0`; a second `v=` (a second session) is rejected.
//  - Every line is `<letter>=<value>`; a missing '=' is an error (rtpengine: "Missing '=' sign").
//    Line type letters must be 'a'..'z'.
//  - LF and CRLF line ends are both accepted (and may be mixed); the last line may lack one.
//    A CR anywhere else and any NUL byte are errors.
//  - An empty line ends the SDP and the rest of the text is ignored, as rtpengine does with its
//    default `reject-invalid-sdp = false` (SIP stacks sometimes append a blank line).
//  - `o=` is required and strict: six space-separated tokens, net type `IN`, address type
//    `IP4`/`IP6`; the address may be an FQDN (RFC 4566 allows it and rtpengine does not check it).
//  - `s=` and `t=` may be missing (rtpengine tolerates that); the writer then emits `s=-` and
//    `t=0 0`. `o=`, `s=` and `t=` inside a media section are errors, as in rtpengine.
//  - `m=` is strict: `<media> <port>[/<count>] <proto> <fmt>...`, port 0..65535, count 1..10
//    (rtpengine's limit). An empty format list is tolerated.
//  - `c=` is strict: `IN IP4|IP6 <literal address>[/ttl[/n]]`; the address must be a literal of
//    the stated family (no FQDN, as rtpengine). At most one `c=` per section.
//  - Trailing spaces/tabs are stripped from `o=`, `m=` and `c=` (seen from some UAs); all other
//    values are kept byte for byte. `a=` lines never fail to parse.
//  - Unknown line letters are kept (rtpengine rejects them with "Unknown SDP line type found";
//    we are more lenient because dropping a call over an unknown letter helps nobody).
//  - Limits: total size <= kMaxSdpSize, <= kMaxMediaSections `m=` lines, and per section
//    <= kMaxAttributesPerSection `a=` lines and <= kMaxLinesPerSection other lines.
// Errors are `Result` errors with text like "Failed to parse SDP: line 3: bad m= line: ...";
// nothing throws (beyond std::bad_alloc).
//
// Writer order (RFC 4566 section 5): v=, o=, s=, then session lines of types i/u/e/p in input
// order, c=, b=, t=/r= groups, z=, k=, a=...; each media: m=, i=, c=, b=, k=, a=... Lines in
// `Session::lines` / `Media::lines` are grouped by their letter in that order, keeping input order
// within a group; a line with an unknown letter stays after the known line that preceded it in the
// vector. Unknown lines are therefore written before the section's a= lines. Line ends are CRLF.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/net.h"
#include "common/result.h"

namespace xems::sdp {

inline constexpr size_t kMaxSdpSize = 64 * 1024;
inline constexpr size_t kMaxMediaSections = 64;
inline constexpr size_t kMaxAttributesPerSection = 1024;
inline constexpr size_t kMaxLinesPerSection = 1024;
inline constexpr uint16_t kMaxPortCount = 10;

// a=name[:value]. `has_value` distinguishes "a=foo" from "a=foo:".
struct Attribute {
  std::string name;
  std::string value;
  bool has_value = false;

  static Attribute flag(std::string_view name);
  static Attribute withValue(std::string_view name, std::string_view value);
  bool operator==(const Attribute&) const = default;
};

// c=IN <IP4|IP6> <address><suffix>; `suffix` keeps a multicast "/ttl[/n]" verbatim.
struct Connection {
  Family family = Family::kIpv4;
  std::string address;
  std::string suffix;

  static Connection fromIp(const IpAddr& ip);
  // The parsed address; nullopt only if the session layer stored something unparseable.
  std::optional<IpAddr> ip() const;
  // 0.0.0.0 or :: (RFC 3264 hold).
  bool isZero() const;
  bool operator==(const Connection&) const = default;
};

// o=<username> <sess-id> <sess-version> IN <IP4|IP6> <address>. Fields are kept as text;
// `address` may be an FQDN.
struct Origin {
  std::string username;
  std::string session_id;
  std::string session_version;
  Family family = Family::kIpv4;
  std::string address;
  bool operator==(const Origin&) const = default;
};

// Any other line, kept verbatim: i= u= e= p= b= t= r= z= k= and unknown letters.
struct Line {
  char type = 0;
  std::string value;
  bool operator==(const Line&) const = default;
};

enum class Direction : uint8_t { kSendRecv, kSendOnly, kRecvOnly, kInactive };

// "sendrecv", "sendonly", "recvonly", "inactive".
std::string_view directionName(Direction d);
std::optional<Direction> directionFromName(std::string_view name);
bool isDirectionAttribute(std::string_view name);

// ice-ufrag, ice-pwd, ice-options, ice-lite, ice-mismatch, ice-pacing, candidate,
// end-of-candidates, remote-candidates.
bool isIceAttribute(std::string_view name);

// True for RTP-based transport protocols (RTP/AVP, RTP/SAVPF, UDP/TLS/RTP/SAVPF, ...).
bool isRtpProto(std::string_view proto);

// a=rtcp:<port> [IN <IP4|IP6> <address>] (RFC 3605).
struct Rtcp {
  uint16_t port = 0;
  std::optional<IpAddr> address;
  bool operator==(const Rtcp&) const = default;
};
Result<Rtcp> parseRtcp(std::string_view value);
// "<port>" or "<port> IN IP4 <address>".
std::string formatRtcp(const Rtcp& rtcp);

// a=rtpmap:<pt> <encoding>/<clock>[/<channels>].
struct RtpMap {
  uint8_t payload_type = 0;
  std::string encoding;
  uint32_t clock_rate = 0;
  std::optional<uint16_t> channels;  // only when present in the attribute
  bool operator==(const RtpMap&) const = default;
};
Result<RtpMap> parseRtpMap(std::string_view value);
// "<pt> <encoding>/<clock>[/<channels>]".
std::string formatRtpMap(const RtpMap& map);

// RFC 3551 static payload types (table 4 and 5).
struct StaticPayloadType {
  uint8_t payload_type;
  std::string_view encoding;
  uint32_t clock_rate;
  uint16_t channels;  // 1 except L16/44100/2

  // channels is set only when != 1, matching rtpengine's "a=rtpmap:0 PCMU/8000".
  RtpMap toRtpMap() const;
};

inline constexpr std::array<StaticPayloadType, 24> kStaticPayloadTypes = {{
    {0, "PCMU", 8000, 1},   {3, "GSM", 8000, 1},    {4, "G723", 8000, 1},   {5, "DVI4", 8000, 1},
    {6, "DVI4", 16000, 1},  {7, "LPC", 8000, 1},    {8, "PCMA", 8000, 1},   {9, "G722", 8000, 1},
    {10, "L16", 44100, 2},  {11, "L16", 44100, 1},  {12, "QCELP", 8000, 1}, {13, "CN", 8000, 1},
    {14, "MPA", 90000, 1},  {15, "G728", 8000, 1},  {16, "DVI4", 11025, 1}, {17, "DVI4", 22050, 1},
    {18, "G729", 8000, 1},  {25, "CelB", 90000, 1}, {26, "JPEG", 90000, 1}, {28, "nv", 90000, 1},
    {31, "H261", 90000, 1}, {32, "MPV", 90000, 1},  {33, "MP2T", 90000, 1}, {34, "H263", 90000, 1},
}};

constexpr std::optional<StaticPayloadType> staticPayloadType(unsigned pt) {
  for (const auto& e : kStaticPayloadTypes) {
    if (e.payload_type == pt) {
      return e;
    }
  }
  return std::nullopt;
}

namespace detail {
constexpr bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] - 'A' + 'a') : a[i];
    char y = b[i] >= 'A' && b[i] <= 'Z' ? static_cast<char>(b[i] - 'A' + 'a') : b[i];
    if (x != y) {
      return false;
    }
  }
  return true;
}
}  // namespace detail

// Reverse lookup (encoding compared case-insensitively): PCMU/8000/1 -> 0.
constexpr std::optional<uint8_t> staticPayloadTypeFor(std::string_view encoding,
                                                      uint32_t clock_rate, uint16_t channels = 1) {
  for (const auto& e : kStaticPayloadTypes) {
    if (e.clock_rate == clock_rate && e.channels == channels &&
        detail::equalsIgnoreCase(e.encoding, encoding)) {
      return e.payload_type;
    }
  }
  return std::nullopt;
}

// One entry of the m= format list with what the media section says about it.
struct Codec {
  std::string format;                   // the token as written in m=
  std::optional<uint8_t> payload_type;  // nullopt if the token is not a number 0..127
  std::string encoding;                 // "" if neither a=rtpmap nor the static table knows it
  uint32_t clock_rate = 0;
  std::optional<uint16_t> channels;  // as in a=rtpmap (or 2 for static L16/44100/2)
  std::string fmtp;                  // a=fmtp parameters, "" if none
  std::vector<std::string> rtcp_fb;  // a=rtcp-fb values for this payload type (not "*")
  bool has_rtpmap = false;           // false: from the static table or unknown

  uint16_t channelCount() const { return channels.value_or(1); }
  // The a=rtpmap value to emit ("0 PCMU/8000"); nullopt if the encoding is unknown.
  std::optional<RtpMap> rtpMap() const;
};

// Helpers over an attribute list (shared by Media and Session).
const Attribute* findAttribute(const std::vector<Attribute>& attrs, std::string_view name);
Attribute* findAttribute(std::vector<Attribute>& attrs, std::string_view name);
std::vector<const Attribute*> findAttributes(const std::vector<Attribute>& attrs,
                                             std::string_view name);
// Returns the number removed.
size_t removeAttributes(std::vector<Attribute>& attrs, std::string_view name);
// The first direction attribute, if any.
std::optional<Direction> directionOf(const std::vector<Attribute>& attrs);
// Replaces the first direction attribute in place (appends if there is none) and removes any
// other direction attributes.
void setDirection(std::vector<Attribute>& attrs, Direction d);

struct Media {
  std::string type;  // audio, video, image, application, ...
  uint16_t port = 0;
  std::optional<uint16_t> port_count;  // m=audio 49170/2 ...
  std::string proto;                   // RTP/AVP, RTP/SAVPF, UDP/TLS/RTP/SAVPF, udptl, ...
  std::vector<std::string> formats;    // payload types as text (or other fmt tokens)
  std::vector<Line> lines;             // i=, b=, k= (and unknown letters) in input order
  std::optional<Connection> connection;
  std::vector<Attribute> attributes;  // in input order

  bool isRejected() const { return port == 0; }

  const Attribute* findAttribute(std::string_view name) const;
  Attribute* findAttribute(std::string_view name);
  std::vector<const Attribute*> findAttributes(std::string_view name) const;
  bool hasAttribute(std::string_view name) const { return findAttribute(name) != nullptr; }
  size_t removeAttributes(std::string_view name);
  // Removes every attribute for which isIceAttribute() is true.
  size_t removeIceAttributes();

  // This section's own direction attribute (see Session::effectiveDirection for inheritance).
  std::optional<Direction> direction() const;
  void setDirection(Direction d);

  // The first a=rtcp that parses; malformed ones are ignored, as rtpengine does.
  std::optional<Rtcp> rtcp() const;
  bool hasRtcpMux() const { return hasAttribute("rtcp-mux"); }

  // Lookups by payload type / format token ("96"). The last matching a=rtpmap / a=fmtp wins, as
  // in rtpengine. Returned string_views point into `attributes` and die with the next edit.
  std::optional<RtpMap> rtpMap(std::string_view pt) const;
  std::optional<std::string_view> fmtp(std::string_view pt) const;
  std::vector<std::string_view> rtcpFb(std::string_view pt) const;  // pt may be "*"

  // One Codec per m= format in m= order, from a=rtpmap, else the RFC 3551 table.
  std::vector<Codec> codecs() const;

  bool operator==(const Media&) const = default;
};

struct Session {
  Origin origin;
  std::string session_name = "-";  // s=; "-" is written when the input had no s=
  std::vector<Line> lines;  // session-level i= u= e= p= b= t= r= z= k= and unknown, input order
  std::optional<Connection> connection;
  std::vector<Attribute> attributes;
  std::vector<Media> media;

  const Attribute* findAttribute(std::string_view name) const;
  Attribute* findAttribute(std::string_view name);
  std::vector<const Attribute*> findAttributes(std::string_view name) const;
  bool hasAttribute(std::string_view name) const { return findAttribute(name) != nullptr; }
  size_t removeAttributes(std::string_view name);
  size_t removeIceAttributes();
  std::optional<Direction> direction() const;
  void setDirection(Direction d);

  // The media's c=, else the session's c=, else nullptr.
  const Connection* effectiveConnection(const Media& m) const;
  // The media's direction attribute, else the session's, else sendrecv (RFC 3264 6.1).
  Direction effectiveDirection(const Media& m) const;

  bool operator==(const Session&) const = default;
};

// Parses one SDP session description. See the top of this file for what is accepted.
Result<Session> parse(std::string_view text);

// Writes `s` in RFC 4566 order with CRLF line ends. Values are written as stored: the caller must
// not put CR or LF into them.
std::string write(const Session& s);

}  // namespace xems::sdp
