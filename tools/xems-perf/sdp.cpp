#include "tools/xems-perf/sdp.h"

#include <charconv>

#include <fmt/format.h>

namespace xems::perf {

std::string makePhoneSdp(const SdpParams& p) {
  const std::string_view fam = familySdpName(p.address.family());
  const std::string addr = p.address.toString();
  // Shaped like what desk phones and softphones send through Kamailio: origin with a numeric
  // session id, session-level c=, a=rtcp (RFC 3605), ptime/maxptime, DTMF fmtp, RTCP-XR (as
  // Linphone sends it) and an SSRC cname.
  return fmt::format(
      "v=0\r\n"
      "o={0} {1} {1} IN {2} {3}\r\n"
      "s=xems-perf call\r\n"
      "c=IN {2} {3}\r\n"
      "b=AS:84\r\n"
      "t=0 0\r\n"
      "m=audio {4} RTP/AVP 0 8 101\r\n"
      "a=rtpmap:0 PCMU/8000\r\n"
      "a=rtpmap:8 PCMA/8000\r\n"
      "a=rtpmap:101 telephone-event/8000\r\n"
      "a=fmtp:101 0-16\r\n"
      "a=rtcp:{5} IN {2} {3}\r\n"
      "a=ptime:{8}\r\n"
      "a=maxptime:150\r\n"
      "a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics\r\n"
      "a=ssrc:{6} cname:{7:016x}@xems-perf\r\n"
      "a=sendrecv\r\n",
      p.user, p.session_id, fam, addr, p.port, p.port + 1,
      static_cast<uint32_t>(p.session_id * 2654435761u), p.session_id, p.ptime_ms);
}

std::optional<SockAddr> firstAudioEndpoint(std::string_view sdp) {
  std::optional<IpAddr> session_c;
  std::optional<IpAddr> media_c;
  std::optional<uint16_t> port;
  bool in_audio = false;
  bool seen_media = false;
  while (!sdp.empty()) {
    size_t eol = sdp.find('\n');
    std::string_view line = sdp.substr(0, eol);
    sdp = eol == std::string_view::npos ? std::string_view() : sdp.substr(eol + 1);
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    if (line.substr(0, 2) == "m=") {
      if (in_audio) {
        break;  // only the first audio section
      }
      seen_media = true;
      if (line.substr(0, 8) == "m=audio ") {
        in_audio = true;
        std::string_view rest = line.substr(8);
        uint16_t v = 0;
        auto [p, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), v);
        if (ec == std::errc() && p != rest.data()) {
          port = v;
        }
      }
      continue;
    }
    if (line.substr(0, 9) == "c=IN IP4 " || line.substr(0, 9) == "c=IN IP6 ") {
      std::string_view a = line.substr(9);
      if (const size_t slash = a.find('/'); slash != std::string_view::npos) {
        a = a.substr(0, slash);
      }
      auto ip = IpAddr::parse(a);
      if (!seen_media) {
        session_c = ip;
      } else if (in_audio) {
        media_c = ip;
      }
    }
  }
  const std::optional<IpAddr> ip = media_c ? media_c : session_c;
  if (!ip || !port) {
    return std::nullopt;
  }
  return SockAddr(*ip, *port);
}

}  // namespace xems::perf
