// ng request decoding and reply encoding: the only place that knows rtpengine's key and flag
// spellings. Unknown keys and flags are ignored (rtpengine logs and ignores them too).
#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "common/log.h"
#include "ctrl/ng/ng_server.h"

namespace xems::ng {

std::string normalizeKey(std::string_view s) {
  std::string out(s);
  for (auto& c : out) {
    if (c == ' ' || c == '_') {
      c = '-';
    } else {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  return out;
}

namespace {

using session::OfferAnswerFlags;

bool startsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// Strings of a list value (non-strings skipped); a single string counts as a one-entry list.
std::vector<std::string_view> strings(const Value& v) {
  std::vector<std::string_view> out;
  if (v.isString()) {
    out.push_back(v.asString());
  } else if (v.isList()) {
    for (const auto& e : v.list()) {
      if (e.isString()) {
        out.push_back(e.asString());
      }
    }
  }
  return out;
}

void applyReplace(OfferAnswerFlags& f, std::string_view item) {
  std::string n = normalizeKey(item);
  if (n == "origin") {
    f.replace_origin = true;
  } else if (n == "origin-full") {
    f.replace_origin_full = true;
  } else if (n == "username") {
    f.replace_username = true;
  } else if (n == "session-name") {
    f.replace_session_name = true;
  } else if (n == "sdp-version") {
    f.replace_sdp_version = true;
  } else if (n == "force-increment-sdp-ver" || n == "force-increment-sdp-version") {
    f.force_increment_sdp_version = true;
  } else if (n == "zero-address") {
    f.replace_zero_address = true;
  }
  // "session-connection": 10.5 rewrote the session c= line; we always do.
}

void applyRtcpMux(OfferAnswerFlags& f, std::string_view item) {
  std::string n = normalizeKey(item);
  if (n == "offer") {
    f.rtcp_mux.offer = true;
  } else if (n == "require") {
    f.rtcp_mux.require = true;
  } else if (n == "demux") {
    f.rtcp_mux.demux = true;
  } else if (n == "accept") {
    f.rtcp_mux.accept = true;
  } else if (n == "reject") {
    f.rtcp_mux.reject = true;
  }
}

void applyIce(OfferAnswerFlags& f, std::string_view v) {
  std::string n = normalizeKey(v);
  if (n == "remove") {
    f.ice = session::IceMode::kRemove;
  } else if (n == "force" || n == "force-relay" || n == "optional") {
    f.ice = session::IceMode::kForce;
  }
}

void addCodecs(std::vector<std::string>& list, const Value& v) {
  for (auto s : strings(v)) {
    list.emplace_back(s.substr(0, s.find('/')));
  }
}

// One entry of `flags`, also the bare words of rtpp-flags.
void applyFlag(OfferAnswerFlags& f, std::string_view raw) {
  std::string n = normalizeKey(raw);
  if (n == "trust-address") {
    f.sip_source_address = false;
  } else if (n == "sip-source-address") {
    f.sip_source_address = true;
  } else if (n == "strict-source") {
    f.strict_source = true;
  } else if (n == "media-handover") {
    f.media_handover = true;
  } else if (n == "asymmetric") {
    f.asymmetric = true;
  } else if (n == "symmetric") {
    f.asymmetric = false;
  } else if (n == "original-sendrecv") {
    f.original_sendrecv = true;
  } else if (n == "full-rtcp-attribute") {
    f.full_rtcp_attribute = true;
  } else if (n == "no-rtcp-attribute") {
    f.no_rtcp_attribute = true;
  } else if (n == "allow-no-codec-media") {
    f.codec.allow_no_codec_media = true;
  } else if (startsWith(n, "replace-")) {
    applyReplace(f, n.substr(8));
  } else if (startsWith(n, "rtcp-mux-")) {
    applyRtcpMux(f, n.substr(9));
  } else if (startsWith(n, "codec-strip-")) {
    f.codec.strip.emplace_back(raw.substr(12));
  } else if (startsWith(n, "codec-offer-")) {
    f.codec.offer.emplace_back(raw.substr(12));
  } else if (startsWith(n, "codec-except-")) {
    f.codec.except.emplace_back(raw.substr(13));
  } else if (startsWith(n, "codec-mask-")) {
    f.codec.mask.emplace_back(raw.substr(11));
  } else if (startsWith(n, "endpoint-learning-")) {
    f.endpoint_learning = endpointLearningFromString(n.substr(18));
  } else if (n == "port-latching" || n == "no-port-latching") {
    // Latching is per endpoint-learning mode here.
  }
}

Status applyKey(OfferAnswerFlags& f, const std::string& key, const Value& v,
                session::OfferAnswerRequest& req) {
  (void)req;
  if (key == "flags") {
    for (auto s : strings(v)) {
      applyFlag(f, s);
    }
  } else if (key == "replace") {
    for (auto s : strings(v)) {
      applyReplace(f, s);
    }
  } else if (key == "rtcp-mux") {
    for (auto s : strings(v)) {
      applyRtcpMux(f, s);
    }
  } else if (key == "ice") {
    applyIce(f, v.asString());
  } else if (key == "direction") {
    f.direction.clear();
    for (auto s : strings(v)) {
      f.direction.emplace_back(s);
    }
  } else if (key == "from-interface") {
    f.direction.resize(std::max<size_t>(f.direction.size(), 1));
    f.direction[0] = std::string(v.asString());
  } else if (key == "to-interface") {
    f.direction.resize(2);
    f.direction[1] = std::string(v.asString());
  } else if (key == "interface") {
    f.direction = {std::string(v.asString()), std::string(v.asString())};
  } else if (key == "received-from") {
    auto l = strings(v);
    if (l.size() == 2) {
      auto ip = IpAddr::parse(l[1]);
      if (!ip) {
        return XEMS_INVALID(fmt::format("Invalid address in received-from: {}", l[1]));
      }
      f.received_from = *ip;
    }
  } else if (key == "media-address") {
    auto ip = IpAddr::parse(v.asString());
    if (!ip) {
      return XEMS_INVALID(fmt::format("Invalid media-address: {}", v.asString()));
    }
    f.media_address = *ip;
  } else if (key == "address-family") {
    auto fam = familyFromSdpName(v.asString());
    if (!fam) {
      return XEMS_INVALID(fmt::format("Invalid address-family: {}", v.asString()));
    }
    f.address_family = *fam;
  } else if (key == "endpoint-learning") {
    f.endpoint_learning = endpointLearningFromString(normalizeKey(v.asString()));
  } else if (key == "label" || key == "from-label") {
    f.label = std::string(v.asString());
  } else if (startsWith(key, "codec-") && v.isString()) {
    applyFlag(f, std::string(key) + "-" + std::string(v.asString()));  // codec-strip=PCMU
  } else if (key == "codec" && v.isDict()) {
    for (const auto& [k, cv] : v.dict()) {
      std::string ck = normalizeKey(k);
      if (ck == "strip") {
        addCodecs(f.codec.strip, cv);
      } else if (ck == "offer") {
        addCodecs(f.codec.offer, cv);
      } else if (ck == "except") {
        addCodecs(f.codec.except, cv);
      } else if (ck == "mask" || ck == "consume") {
        addCodecs(f.codec.mask, cv);
      }
    }
  }
  return okStatus();
}

}  // namespace

Result<Value> parseRtppFlags(std::string_view text, Document& doc) {
  // Kamailio's flag string, as rtpengine's control_ng_flags_parser reads it: bare words are
  // flags, key=value pairs are keys, [a b] is a list, [k=v ...] a dict, nested to any depth
  // (bounded). "--" stands for "=" and ".." for a space inside values.
  struct Parser {
    std::string_view s;
    size_t i = 0;
    Document& doc;

    void skipSpace() {
      while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')) {
        ++i;
      }
    }
    std::string_view word() {
      size_t b = i;
      while (i < s.size() && s[i] != ' ' && s[i] != '=' && s[i] != '[' && s[i] != ']' &&
             s[i] != '\t' && s[i] != '\r' && s[i] != '\n') {
        ++i;
      }
      return s.substr(b, i - b);
    }
    std::string_view unescape(std::string_view w) {
      if (w.find("--") == std::string_view::npos && w.find("..") == std::string_view::npos) {
        return w;
      }
      std::string out;
      for (size_t k = 0; k < w.size(); ++k) {
        if (k + 1 < w.size() && w[k] == '-' && w[k + 1] == '-') {
          out += '=';
          ++k;
        } else if (k + 1 < w.size() && w[k] == '.' && w[k + 1] == '.') {
          out += ' ';
          ++k;
        } else {
          out += w[k];
        }
      }
      return doc.intern(out);
    }
    // Items until `]` (nested) or the end (top level). A bracket holding any key=value is a
    // dict; otherwise a list.
    Result<Value> items(int depth, bool top) {
      if (depth > kMaxDepth) {
        return XEMS_INVALID("rtpp-flags nested too deeply");
      }
      Value list = doc.list();
      Value dict = doc.dict();
      Value flags = doc.list();
      for (;;) {
        skipSpace();
        if (i >= s.size()) {
          if (!top) {
            return XEMS_INVALID("rtpp-flags: missing ']'");
          }
          break;
        }
        if (s[i] == ']') {
          if (top) {
            return XEMS_INVALID("rtpp-flags: unexpected ']'");
          }
          ++i;
          break;
        }
        if (s[i] == '[') {
          return XEMS_INVALID("rtpp-flags: list without a key");
        }
        std::string_view w = word();
        if (w.empty()) {
          return XEMS_INVALID("rtpp-flags: empty word");
        }
        if (i < s.size() && s[i] == '=') {
          ++i;
          Value v;
          if (i < s.size() && s[i] == '[') {
            ++i;
            auto nested = items(depth + 1, false);
            if (!nested) {
              return nested;
            }
            v = *nested;
          } else {
            v = Value::string(unescape(word()));
          }
          dict.add(unescape(w), v);
        } else if (top) {
          flags.push(Value::string(unescape(w)));
        } else {
          list.push(Value::string(unescape(w)));
        }
      }
      if (top) {
        if (!flags.list().empty()) {
          dict.add("flags", flags);
        }
        return dict;
      }
      return dict.dict().empty() ? list : dict;
    }
  };
  Parser p{text, 0, doc};
  return p.items(0, true);
}

Result<session::OfferAnswerRequest> decodeOfferAnswer(const Value& msg, session::Op op) {
  session::OfferAnswerRequest req;
  req.op = op;
  Document scratch;  // for rtpp-flags tokens
  for (const auto& [k, v] : msg.dict()) {
    std::string key = normalizeKey(k);
    if (key == "call-id") {
      req.call_id = std::string(v.asString());
    } else if (key == "from-tag") {
      req.from_tag = std::string(v.asString());
    } else if (key == "to-tag") {
      req.to_tag = std::string(v.asString());
    } else if (key == "via-branch") {
      req.via_branch = std::string(v.asString());
    } else if (key == "sdp") {
      req.sdp = std::string(v.asString());
    } else if (key == "rtpp-flags") {
      auto parsed = parseRtppFlags(v.asString(), scratch);
      if (!parsed) {
        return std::move(parsed).error();
      }
      for (const auto& [rk, rv] : parsed->dict()) {
        std::string rkey = normalizeKey(rk);
        if (rkey == "received-from" && rv.isString()) {
          if (auto ip = IpAddr::parse(rv.asString())) {
            req.flags.received_from = *ip;
          }
        } else if (rkey == "direction" && rv.isString()) {
          req.flags.direction.emplace_back(rv.asString());
        } else if (rkey == "via-branch" || rkey == "call-id" || rkey == "from-tag" ||
                   rkey == "to-tag") {
          // Identity keys stay with the request's own fields.
        } else {
          XEMS_TRY_STATUS(applyKey(req.flags, rkey, rv, req));
        }
      }
    } else {
      XEMS_TRY_STATUS(applyKey(req.flags, key, v, req));
    }
  }
  return req;
}

namespace {

Value endpointDict(Document& doc, const std::optional<SockAddr>& a) {
  Value d = doc.dict();
  if (a) {
    d.add("family", Value::string(a->family() == Family::kIpv6 ? "IPv6" : "IPv4"));
    d.add("address", doc.str(a->ip().toString()));
    d.add("port", Value::integer(a->port()));
  }
  return d;
}

Value totalsDict(Document& doc, const session::PacketTotals& t) {
  Value d = doc.dict();
  d.add("packets", Value::integer(static_cast<int64_t>(t.packets)));
  d.add("bytes", Value::integer(static_cast<int64_t>(t.bytes)));
  d.add("errors", Value::integer(static_cast<int64_t>(t.errors)));
  return d;
}

}  // namespace

void encodeCallInfo(const session::CallInfo& info, Document& doc, Value& out) {
  out.add("created", Value::integer(info.created));
  out.add("created_us", Value::integer(info.created_us));
  out.add("last signal", Value::integer(info.last_signal));
  Value ssrcs = doc.dict();
  Value tags = doc.dict();
  int untagged = 0;
  for (const auto& p : info.participants) {
    Value t = doc.dict();
    t.add("tag", doc.str(p.tag));
    if (!p.label.empty()) {
      t.add("label", doc.str(p.label));
    }
    if (!p.via_branch.empty()) {
      t.add("via-branch", doc.str(p.via_branch));
    }
    if (!p.aliases.empty()) {
      Value al = doc.list();
      for (const auto& a : p.aliases) {
        al.push(doc.str(a));
      }
      t.add("tag-aliases", al);
    }
    t.add("created", Value::integer(p.created));
    Value subs = doc.list();
    for (const auto& peer : p.peers) {
      Value s = doc.dict();
      s.add("tag", doc.str(peer));
      s.add("type", Value::string("offer/answer"));
      subs.push(s);
    }
    t.add("subscriptions", subs);
    t.add("subscribers", subs);
    Value medias = doc.list();
    for (const auto& m : p.medias) {
      Value md = doc.dict();
      md.add("index", Value::integer(m.index));
      md.add("type", doc.str(m.type));
      md.add("protocol", doc.str(m.protocol));
      if (!m.codecs.empty()) {
        md.add("codec", doc.str(m.codecs.front()));
      }
      Value streams = doc.list();
      for (const auto& s : m.streams) {
        Value sd = doc.dict();
        sd.add("local port", Value::integer(s.local.port()));
        sd.add("local address", doc.str(s.local.ip().toString()));
        sd.add("family", Value::string(s.local.family() == Family::kIpv6 ? "IPv6" : "IPv4"));
        sd.add("endpoint", endpointDict(doc, s.endpoint));
        sd.add("advertised endpoint", endpointDict(doc, s.advertised));
        sd.add("last packet", Value::integer(s.last_packet));
        Value fl = doc.list();
        fl.push(Value::string(s.rtcp ? "RTCP" : "RTP"));
        if (s.rtcp_mux) {
          fl.push(Value::string("RTCP"));
        }
        if (s.advertised || s.endpoint) {
          fl.push(Value::string("filled"));
        }
        if (s.confirmed) {
          fl.push(Value::string("confirmed"));
        }
        if (s.kernelized) {
          fl.push(Value::string("kernelized"));
        }
        sd.add("flags", fl);
        sd.add("stats", totalsDict(doc, s.stats));
        sd.add("kernel stats", totalsDict(doc, s.kernel));
        sd.add("forwarded", Value::integer(static_cast<int64_t>(s.forwarded)));
        sd.add("dropped foreign source", Value::integer(static_cast<int64_t>(s.dropped_source)));
        sd.add("malformed", Value::integer(static_cast<int64_t>(s.malformed)));
        if (!s.ssrc.empty()) {
          sd.add("SSRC", Value::integer(s.ssrc.front().ssrc));
        }
        for (const auto& x : s.ssrc) {
          Value e = doc.dict();
          e.add("packets", Value::integer(static_cast<int64_t>(x.packets)));
          e.add("bytes", Value::integer(static_cast<int64_t>(x.bytes)));
          e.add("last RTP timestamp", Value::integer(x.last_timestamp));
          e.add("last RTP seq", Value::integer(x.highest_seq & 0xffff));
          e.add("highest extended seq", Value::integer(x.highest_seq));
          e.add("cumulative loss", Value::integer(std::max<int64_t>(0, x.lost())));
          e.add("payload type", Value::integer(x.payload_type));
          ssrcs.add(doc.intern(std::to_string(x.ssrc)), e);
        }
        streams.push(sd);
      }
      md.add("streams", streams);
      Value mf = doc.list();
      for (const auto& f : m.flags) {
        mf.push(doc.str(f));
      }
      md.add("flags", mf);
      medias.push(md);
    }
    t.add("medias", medias);
    std::string key = p.tag.empty() ? fmt::format("<untagged {}>", ++untagged) : p.tag;
    tags.add(doc.intern(key), t);
  }
  out.add("SSRC", ssrcs);
  out.add("tags", tags);
  Value totals = doc.dict();
  totals.add("RTP", totalsDict(doc, info.rtp));
  totals.add("RTCP", totalsDict(doc, info.rtcp));
  out.add("totals", totals);
}

}  // namespace xems::ng
