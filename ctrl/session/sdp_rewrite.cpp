#include "ctrl/session/sdp_rewrite.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace xems::session {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool isDirection(std::string_view n) {
  return n == "sendrecv" || n == "sendonly" || n == "recvonly" || n == "inactive";
}

// Attributes this rewriter owns: removed from the input and re-emitted in rtpengine's order.
bool isManaged(const sdp::Attribute& a) {
  return a.name == "rtpmap" || a.name == "fmtp" || a.name == "rtcp" || a.name == "rtcp-mux" ||
         a.name == "ptime" || a.name == "maxptime" || isDirection(a.name) ||
         sdp::isIceAttribute(a.name) ||
         (a.name == "rtcp-fb" && !a.value.empty() && a.value[0] != '*');
}

// First token of an attribute value ("101 0-16" -> "101").
std::string_view firstToken(std::string_view v) { return v.substr(0, v.find(' ')); }

const sdp::Codec* findCodec(const std::vector<sdp::Codec>& codecs, std::string_view pt) {
  for (const auto& c : codecs) {
    if (c.format == pt) {
      return &c;
    }
  }
  return nullptr;
}

// Codec name of a payload type: from a=rtpmap, else the static table, else the token itself.
std::string_view codecName(const std::vector<sdp::Codec>& codecs, std::string_view pt) {
  const sdp::Codec* c = findCodec(codecs, pt);
  return c != nullptr && !c->encoding.empty() ? std::string_view(c->encoding) : pt;
}

bool listed(const std::vector<std::string>& list, std::string_view name) {
  return std::any_of(list.begin(), list.end(),
                     [&](const std::string& s) { return iequals(s, name); });
}

bool hasAll(const std::vector<std::string>& list) {
  return listed(list, "all") || listed(list, "full");
}

std::string addressText(const IpAddr& ip) { return ip.toString(); }

}  // namespace

std::vector<std::string> filterCodecs(const sdp::Media& m, const CodecFlags& c, Op op) {
  const std::vector<sdp::Codec> codecs = m.codecs();
  std::vector<std::string> kept;
  for (const auto& pt : m.formats) {
    std::string_view name = codecName(codecs, pt);
    bool drop = false;
    if (hasAll(c.strip) || listed(c.strip, name)) {
      drop = true;
    }
    if (!c.except.empty() && !listed(c.except, name)) {
      drop = true;
    }
    if (op == Op::kOffer && listed(c.mask, name)) {
      drop = true;
    }
    if (listed(c.offer, name)) {
      drop = false;
    }
    if (!drop) {
      kept.push_back(pt);
    }
  }
  // codec-offer moves its codecs to the front, in the listed order.
  if (!c.offer.empty()) {
    std::stable_sort(kept.begin(), kept.end(), [&](const std::string& a, const std::string& b) {
      auto rank = [&](const std::string& pt) {
        std::string_view n = codecName(codecs, pt);
        for (size_t i = 0; i < c.offer.size(); ++i) {
          if (iequals(c.offer[i], n)) {
            return i;
          }
        }
        return c.offer.size();
      };
      return rank(a) < rank(b);
    });
  }
  if (kept.empty() && !c.allow_no_codec_media) {
    return m.formats;  // rtpengine restores the original list rather than emit no codec
  }
  return kept;
}

std::string rewriteSdp(sdp::Session& in, const RewriteInput& ctx) {
  const OfferAnswerFlags& flags = *ctx.flags;
  Participant& rx = *ctx.receiver;

  // Session-level direction moves into each media that has none of its own.
  std::optional<std::string> session_dir;
  std::vector<sdp::Attribute> session_attrs;
  for (auto& a : in.attributes) {
    if (isDirection(a.name)) {
      session_dir = a.name;
    } else if (!sdp::isIceAttribute(a.name)) {
      session_attrs.push_back(std::move(a));
    }
  }
  in.attributes = std::move(session_attrs);

  const InterfaceSpec* first_iface = nullptr;
  for (size_t i = 0; i < in.media.size(); ++i) {
    sdp::Media& m = in.media[i];
    Media& lm = rx.medias.at(i);
    if (m.port == 0 || lm.rejected) {
      // Rejected media: the m= line alone, as rtpengine emits it.
      m.port = 0;
      m.port_count.reset();
      m.lines.clear();
      m.connection.reset();
      m.attributes.clear();
      continue;
    }
    if (first_iface == nullptr) {
      first_iface = lm.iface;
    }
    const IpAddr& adv = lm.iface->advertised;
    m.port = lm.rtp.local.port();
    m.port_count.reset();
    if (m.connection) {
      if (!m.connection->isZero() || flags.replace_zero_address) {
        m.connection->family = adv.family();
        m.connection->address = addressText(adv);
        m.connection->suffix.clear();
      }
    }

    std::vector<std::string> formats = filterCodecs(m, flags.codec, ctx.op);
    std::vector<sdp::Attribute> out;
    std::optional<std::string> dir;
    std::vector<sdp::Attribute> timing;  // ptime, maxptime
    for (auto& a : m.attributes) {
      if (isDirection(a.name)) {
        dir = a.name;
      } else if (a.name == "ptime" || a.name == "maxptime") {
        timing.push_back(a);
      } else if (!isManaged(a)) {
        out.push_back(a);
      }
    }
    const std::vector<sdp::Codec> codecs = m.codecs();
    for (const auto& pt : formats) {
      const sdp::Codec* codec = findCodec(codecs, pt);
      bool have_rtpmap = false;
      for (const auto& a : m.attributes) {
        if (a.name == "rtpmap" && firstToken(a.value) == pt) {
          out.push_back(a);  // verbatim, as written by the peer
          have_rtpmap = true;
          break;
        }
      }
      if (!have_rtpmap && codec != nullptr) {
        if (auto map = codec->rtpMap()) {
          out.push_back(sdp::Attribute::withValue("rtpmap", sdp::formatRtpMap(*map)));
        }
      }
      for (const auto& name : {"fmtp", "rtcp-fb"}) {
        for (const auto& a : m.attributes) {
          if (a.name == name && firstToken(a.value) == pt) {
            out.push_back(a);
          }
        }
      }
    }
    m.formats = std::move(formats);
    // A zero connection address means the peer cannot receive (old-style hold): rtpengine
    // then announces sendonly (or inactive), unless told to keep the original direction.
    std::string direction = dir.value_or(session_dir.value_or("sendrecv"));
    const sdp::Connection* conn = in.effectiveConnection(m);
    if (conn != nullptr && conn->isZero() && !flags.original_sendrecv) {
      if (direction == "sendrecv") {
        direction = "sendonly";
      } else if (direction == "recvonly") {
        direction = "inactive";
      }
    }
    out.push_back(sdp::Attribute::flag(direction));

    bool mux = i < ctx.mux_out.size() && ctx.mux_out[i];
    bool confirmed = i < ctx.mux_confirmed.size() && ctx.mux_confirmed[i];
    if (!flags.no_rtcp_attribute) {
      uint16_t rtcp_port = (mux && confirmed) ? lm.rtp.local.port() : lm.rtcp.local.port();
      std::string v = std::to_string(rtcp_port);
      if (flags.full_rtcp_attribute) {
        v += fmt::format(" IN {} {}", familySdpName(adv.family()), addressText(adv));
      }
      out.push_back(sdp::Attribute::withValue("rtcp", v));
    }
    if (mux) {
      out.push_back(sdp::Attribute::flag("rtcp-mux"));
    }
    for (auto& a : timing) {
      out.push_back(std::move(a));
    }
    m.attributes = std::move(out);
  }

  if (first_iface == nullptr && !rx.medias.empty()) {
    first_iface = rx.medias.front().iface;
  }
  if (in.connection && first_iface != nullptr) {
    if (!in.connection->isZero() || flags.replace_zero_address) {
      in.connection->family = first_iface->advertised.family();
      in.connection->address = addressText(first_iface->advertised);
      in.connection->suffix.clear();
    }
  }

  // o= and s= handling, then the version, which depends on whether the body changed.
  SdpOutState& st = rx.sdp_out;
  if (!st.initialised) {
    st.initialised = true;
    st.username = in.origin.username;
    st.session_id = in.origin.session_id;
    st.session_name = in.session_name;
    st.origin_address = in.origin.address;
    st.version = std::strtoull(in.origin.session_version.c_str(), nullptr, 10);
  }
  if ((flags.replace_origin || flags.replace_origin_full) && first_iface != nullptr) {
    in.origin.family = first_iface->advertised.family();
    in.origin.address = addressText(first_iface->advertised);
  }
  if (flags.replace_origin_full || flags.replace_username) {
    in.origin.username = st.username;
  }
  if (flags.replace_origin_full) {
    in.origin.session_id = st.session_id;
  }
  if (flags.replace_session_name) {
    in.session_name = st.session_name;
  }
  bool own_version =
      flags.replace_sdp_version || flags.force_increment_sdp_version || flags.replace_origin_full;
  std::string text;
  if (own_version) {
    in.origin.session_version = "0";
    std::string body = sdp::write(in);
    body.erase(0, body.find("\r\ns="));  // everything after o=
    if (flags.force_increment_sdp_version || (!st.last_body.empty() && body != st.last_body)) {
      ++st.version;
    }
    st.last_body = std::move(body);
    in.origin.session_version = std::to_string(st.version);
  }
  return sdp::write(in);
}

}  // namespace xems::session
