// SDP parser and writer. See sdp.h for the accepted syntax and the output order.
#include "ctrl/sdp/sdp.h"
#include "ctrl/sdp/number.h"

#include <cstring>

namespace xems::sdp {
namespace {

constexpr std::string_view kErrorPrefix = "Failed to parse SDP: ";

Error parseError(std::string_view what) {
  std::string msg;
  msg.reserve(kErrorPrefix.size() + what.size());
  msg.append(kErrorPrefix).append(what);
  return XEMS_INVALID(std::move(msg));
}

Error lineError(size_t line_no, std::string_view what) {
  std::string msg = "line " + std::to_string(line_no) + ": ";
  msg.append(what);
  return parseError(msg);
}

// Quotes (a prefix of) untrusted input for an error message.
std::string quoted(std::string_view s) {
  constexpr size_t kMax = 64;
  std::string out = "'";
  for (char c : s.substr(0, kMax)) {
    out.push_back(static_cast<unsigned char>(c) < 0x20 ? '?' : c);
  }
  if (s.size() > kMax) {
    out.append("...");
  }
  out.push_back('\'');
  return out;
}

std::string_view stripTrailingBlanks(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

// Splits off the text up to the next single space. Returns false when nothing is left.
bool nextToken(std::string_view& rest, std::string_view& token) {
  if (rest.empty()) {
    return false;
  }
  size_t sp = rest.find(' ');
  if (sp == std::string_view::npos) {
    token = rest;
    rest = {};
  } else {
    token = rest.substr(0, sp);
    rest.remove_prefix(sp + 1);
  }
  return true;
}

using detail::isDigits;
using detail::parseNumber;

bool isNetTypeIn(std::string_view s) { return s == "IN" || s == "in"; }

Result<Origin> parseOrigin(std::string_view value) {
  std::string_view rest = stripTrailingBlanks(value);
  std::string_view tok[6];
  for (auto& t : tok) {
    if (!nextToken(rest, t) || t.empty()) {
      return XEMS_INVALID("expected '<username> <sess-id> <sess-version> IN <IP4|IP6> <address>'");
    }
  }
  if (!rest.empty()) {
    return XEMS_INVALID("trailing text after address");
  }
  if (!isNetTypeIn(tok[3])) {
    return XEMS_INVALID("unknown network type " + quoted(tok[3]));
  }
  auto family = familyFromSdpName(tok[4]);
  if (!family) {
    return XEMS_INVALID("unknown address type " + quoted(tok[4]));
  }
  return Origin{.username = std::string(tok[0]),
                .session_id = std::string(tok[1]),
                .session_version = std::string(tok[2]),
                .family = *family,
                .address = std::string(tok[5])};
}

// Validates "<IP literal of family>" and returns the parsed address.
std::optional<IpAddr> parseAddressOfFamily(std::string_view text, Family family) {
  if (text.empty() || text.front() == '[') {
    return std::nullopt;
  }
  auto ip = IpAddr::parse(text);
  if (!ip || ip->family() != family) {
    return std::nullopt;
  }
  return ip;
}

// "IN <IP4|IP6> <address>" as used by c= and a=rtcp. Error text without the prefix.
Result<Connection> parseConnectionValue(std::string_view value, bool allow_suffix) {
  std::string_view rest = stripTrailingBlanks(value);
  std::string_view net, addrtype, address;
  if (!nextToken(rest, net) || !nextToken(rest, addrtype) || !nextToken(rest, address) ||
      !rest.empty() || address.empty()) {
    return XEMS_INVALID("expected 'IN <IP4|IP6> <address>'");
  }
  if (!isNetTypeIn(net)) {
    return XEMS_INVALID("unknown network type " + quoted(net));
  }
  auto family = familyFromSdpName(addrtype);
  if (!family) {
    return XEMS_INVALID("unknown address type " + quoted(addrtype));
  }
  std::string_view suffix;
  if (size_t slash = address.find('/'); slash != std::string_view::npos) {
    suffix = address.substr(slash);
    address = address.substr(0, slash);
    // "/ttl" or "/ttl/n" (IPv4 multicast) or "/n" (IPv6 multicast).
    std::string_view s = suffix;
    int groups = 0;
    while (!s.empty()) {
      s.remove_prefix(1);  // the '/'
      size_t next = s.find('/');
      std::string_view num = s.substr(0, next);
      if (!isDigits(num) || num.size() > 10 || ++groups > 2) {
        return XEMS_INVALID("bad multicast suffix " + quoted(suffix));
      }
      s = next == std::string_view::npos ? std::string_view{} : s.substr(next);
    }
    if (!allow_suffix) {
      return XEMS_INVALID("unexpected '/' in address");
    }
  }
  if (!parseAddressOfFamily(address, *family)) {
    return XEMS_INVALID("invalid " + std::string(familySdpName(*family)) + " address " +
                        quoted(address));
  }
  return Connection{
      .family = *family, .address = std::string(address), .suffix = std::string(suffix)};
}

Result<Media> parseMediaLine(std::string_view value) {
  std::string_view rest = stripTrailingBlanks(value);
  std::string_view type, port, proto;
  if (!nextToken(rest, type) || !nextToken(rest, port) || !nextToken(rest, proto) || type.empty() ||
      port.empty() || proto.empty()) {
    return XEMS_INVALID("expected '<media> <port> <proto> <fmt> ...'");
  }
  Media m;
  m.type = std::string(type);
  m.proto = std::string(proto);
  std::string_view count;
  if (size_t slash = port.find('/'); slash != std::string_view::npos) {
    count = port.substr(slash + 1);
    port = port.substr(0, slash);
    auto n = parseNumber(count, kMaxPortCount);
    if (!n || *n == 0) {
      return XEMS_INVALID("bad port count " + quoted(count));
    }
    m.port_count = static_cast<uint16_t>(*n);
  }
  if (!isDigits(port)) {
    return XEMS_INVALID("bad port " + quoted(port));
  }
  auto p = parseNumber(port, 65535);
  if (!p) {
    return XEMS_INVALID("port " + quoted(port) + " out of range");
  }
  m.port = static_cast<uint16_t>(*p);
  // Formats: tolerate repeated spaces (seen in the wild); tokens are kept as text.
  std::string_view fmt;
  while (nextToken(rest, fmt)) {
    if (!fmt.empty()) {
      m.formats.emplace_back(fmt);
    }
  }
  return m;
}

Attribute parseAttribute(std::string_view value) {
  Attribute a;
  size_t colon = value.find(':');
  if (colon == std::string_view::npos) {
    a.name = std::string(value);
  } else {
    a.name = std::string(value.substr(0, colon));
    a.value = std::string(value.substr(colon + 1));
    a.has_value = true;
  }
  return a;
}

}  // namespace

Result<Session> parse(std::string_view text) {
  if (text.empty()) {
    return parseError("empty SDP");
  }
  if (text.size() > kMaxSdpSize) {
    return parseError("SDP too large (" + std::to_string(text.size()) + " bytes, limit " +
                      std::to_string(kMaxSdpSize) + ")");
  }
  if (const void* nul = std::memchr(text.data(), '\0', text.size())) {
    size_t off = static_cast<size_t>(static_cast<const char*>(nul) - text.data());
    return parseError("NUL byte at offset " + std::to_string(off));
  }

  Session s;
  Media* media = nullptr;
  bool have_v = false;
  bool have_o = false;
  bool have_s = false;
  bool have_t = false;
  size_t section_lines = 0;  // lines in the current section's `lines`, for the limit
  size_t pos = 0;
  size_t line_no = 0;

  while (pos < text.size()) {
    ++line_no;
    size_t nl = text.find('\n', pos);
    std::string_view line;
    if (nl == std::string_view::npos) {
      line = text.substr(pos);
      pos = text.size();
    } else {
      line = text.substr(pos, nl - pos);
      pos = nl + 1;
    }
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    if (line.empty()) {
      if (!have_v) {
        return lineError(line_no, "SDP must start with a v=0 line");
      }
      break;  // rtpengine ends the SDP at the first empty line
    }
    if (line.find('\r') != std::string_view::npos) {
      return lineError(line_no, "CR inside a line");
    }
    char type = line[0];
    if (type < 'a' || type > 'z') {
      return lineError(line_no, "invalid line type " + quoted(line.substr(0, 1)));
    }
    if (line.size() < 2 || line[1] != '=') {
      return lineError(line_no, "missing '=' after line type");
    }
    std::string_view value = line.substr(2);

    if (!have_v && type != 'v') {
      return lineError(line_no, "SDP must start with a v=0 line");
    }

    std::vector<Line>& lines = media != nullptr ? media->lines : s.lines;
    switch (type) {
      case 'v':
        if (have_v) {
          return lineError(line_no, "second v= line (multiple sessions are not supported)");
        }
        if (value != "0") {
          return lineError(line_no, "bad v= line: unsupported version " + quoted(value));
        }
        have_v = true;
        break;

      case 'o': {
        if (media != nullptr) {
          return lineError(line_no, "o= line inside a media section");
        }
        if (have_o) {
          return lineError(line_no, "duplicate o= line");
        }
        auto o = parseOrigin(value);
        if (!o.ok()) {
          return lineError(line_no, "bad o= line: " + o.error().message);
        }
        s.origin = std::move(o).value();
        have_o = true;
        break;
      }

      case 's':
        if (media != nullptr) {
          return lineError(line_no, "s= line inside a media section");
        }
        if (have_s) {
          return lineError(line_no, "duplicate s= line");
        }
        s.session_name = std::string(value);
        have_s = true;
        break;

      case 'm': {
        if (s.media.size() >= kMaxMediaSections) {
          return lineError(line_no,
                           "too many m= lines (limit " + std::to_string(kMaxMediaSections) + ")");
        }
        auto m = parseMediaLine(value);
        if (!m.ok()) {
          return lineError(line_no, "bad m= line: " + m.error().message);
        }
        s.media.push_back(std::move(m).value());
        media = &s.media.back();
        section_lines = 0;
        break;
      }

      case 'c': {
        std::optional<Connection>& target = media != nullptr ? media->connection : s.connection;
        if (target) {
          return lineError(line_no, "duplicate c= line");
        }
        auto c = parseConnectionValue(value, true);
        if (!c.ok()) {
          return lineError(line_no, "bad c= line: " + c.error().message);
        }
        target = std::move(c).value();
        break;
      }

      case 'a': {
        std::vector<Attribute>& attrs = media != nullptr ? media->attributes : s.attributes;
        if (attrs.size() >= kMaxAttributesPerSection) {
          return lineError(line_no, "too many a= lines in one section (limit " +
                                        std::to_string(kMaxAttributesPerSection) + ")");
        }
        attrs.push_back(parseAttribute(value));
        break;
      }

      case 't':
        if (media != nullptr) {
          return lineError(line_no, "t= line inside a media section");
        }
        if (!have_t) {
          // The first t= does not count against the limit: the writer adds "t=0 0" when it is
          // missing, and its output must parse again.
          have_t = true;
          lines.push_back(Line{.type = type, .value = std::string(value)});
          break;
        }
        [[fallthrough]];
      default:
        if (section_lines >= kMaxLinesPerSection) {
          return lineError(line_no, "too many lines in one section (limit " +
                                        std::to_string(kMaxLinesPerSection) + ")");
        }
        ++section_lines;
        lines.push_back(Line{.type = type, .value = std::string(value)});
        break;
    }
  }

  if (!have_o) {
    return parseError("missing o= line");
  }
  return s;
}

namespace {

// Rank of a line letter in the RFC 4566 order; 0xff = unknown letter (inherits its predecessor's
// rank so it stays where it was).
constexpr uint8_t kInherit = 0xff;

uint8_t sessionRank(char type) {
  switch (type) {
    case 'i':
    case 'u':
    case 'e':
    case 'p':
      return 1;  // c= follows rank 1
    case 'b':
      return 2;
    case 't':
    case 'r':
      return 3;
    case 'z':
      return 4;
    case 'k':
      return 5;
    default:
      return kInherit;
  }
}

uint8_t mediaRank(char type) {
  switch (type) {
    case 'i':
      return 1;  // c= follows rank 1
    case 'b':
      return 2;
    case 'k':
      return 3;
    default:
      return kInherit;
  }
}

// Writes the lines grouped by rank: ranks 0..1, then `between` (c=), then ranks 2..max.
// `before_rank(r)` runs before the lines of rank r are written (used for the default t=).
template <typename RankFn, typename BetweenFn, typename BeforeFn>
void writeLines(std::string& out, const std::vector<Line>& lines, RankFn rank_of, uint8_t max_rank,
                BetweenFn between, BeforeFn before_rank) {
  // Sections have at most kMaxLinesPerSection lines; ranks fit in a small stack buffer for the
  // common case.
  uint8_t small[32];
  std::vector<uint8_t> big;
  uint8_t* ranks = small;
  if (lines.size() > sizeof small) {
    big.resize(lines.size());
    ranks = big.data();
  }
  uint8_t prev = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    uint8_t r = rank_of(lines[i].type);
    ranks[i] = r == kInherit ? prev : r;
    prev = ranks[i];
  }
  for (uint8_t r = 0; r <= max_rank; ++r) {
    if (r == 2) {
      between();
    }
    before_rank(r);
    for (size_t i = 0; i < lines.size(); ++i) {
      if (ranks[i] == r) {
        out.push_back(lines[i].type);
        out.push_back('=');
        out.append(lines[i].value);
        out.append("\r\n");
      }
    }
  }
}

void writeConnection(std::string& out, const std::optional<Connection>& c) {
  if (!c) {
    return;
  }
  out.append("c=IN ");
  out.append(familySdpName(c->family));
  out.push_back(' ');
  out.append(c->address);
  out.append(c->suffix);
  out.append("\r\n");
}

void writeAttributes(std::string& out, const std::vector<Attribute>& attrs) {
  for (const auto& a : attrs) {
    out.append("a=");
    out.append(a.name);
    if (a.has_value) {
      out.push_back(':');
      out.append(a.value);
    }
    out.append("\r\n");
  }
}

size_t estimateSize(const Session& s) {
  size_t n = 64 + s.session_name.size();
  auto lines = [&n](const std::vector<Line>& v) {
    for (const auto& l : v) {
      n += l.value.size() + 4;
    }
  };
  auto attrs = [&n](const std::vector<Attribute>& v) {
    for (const auto& a : v) {
      n += a.name.size() + a.value.size() + 5;
    }
  };
  lines(s.lines);
  attrs(s.attributes);
  for (const auto& m : s.media) {
    n += 64 + m.type.size() + m.proto.size();
    for (const auto& f : m.formats) {
      n += f.size() + 1;
    }
    lines(m.lines);
    attrs(m.attributes);
  }
  return n;
}

}  // namespace

Result<Rtcp> parseRtcp(std::string_view value) {
  std::string_view rest = stripTrailingBlanks(value);
  std::string_view port;
  size_t sp = rest.find(' ');
  if (sp == std::string_view::npos) {
    port = rest;
    rest = {};
  } else {
    port = rest.substr(0, sp);
    rest.remove_prefix(sp + 1);
  }
  auto p = parseNumber(port, 65535);
  if (!p) {
    return XEMS_INVALID("bad a=rtcp port " + quoted(port));
  }
  Rtcp r{.port = static_cast<uint16_t>(*p)};
  if (!rest.empty()) {
    auto c = parseConnectionValue(rest, false);
    if (!c.ok()) {
      return XEMS_INVALID("bad a=rtcp address: " + c.error().message);
    }
    r.address = c->ip();
  }
  return r;
}

std::string write(const Session& s) {
  std::string out;
  out.reserve(estimateSize(s));
  out.append("v=0\r\no=");
  const Origin& o = s.origin;
  out.append(o.username).push_back(' ');
  out.append(o.session_id).push_back(' ');
  out.append(o.session_version).append(" IN ");
  out.append(familySdpName(o.family)).push_back(' ');
  out.append(o.address).append("\r\ns=");
  out.append(s.session_name).append("\r\n");

  bool have_t = false;
  for (const auto& l : s.lines) {
    if (l.type == 't') {
      have_t = true;
      break;
    }
  }
  writeLines(
      out, s.lines, sessionRank, 5, [&] { writeConnection(out, s.connection); },
      [&](uint8_t r) {
        if (r == 3 && !have_t) {
          out.append("t=0 0\r\n");
        }
      });
  writeAttributes(out, s.attributes);

  for (const auto& m : s.media) {
    out.append("m=");
    out.append(m.type).push_back(' ');
    out.append(std::to_string(m.port));
    if (m.port_count) {
      out.push_back('/');
      out.append(std::to_string(*m.port_count));
    }
    out.push_back(' ');
    out.append(m.proto);
    for (const auto& f : m.formats) {
      out.push_back(' ');
      out.append(f);
    }
    out.append("\r\n");
    writeLines(
        out, m.lines, mediaRank, 3, [&] { writeConnection(out, m.connection); }, [](uint8_t) {});
    writeAttributes(out, m.attributes);
  }
  return out;
}

}  // namespace xems::sdp
