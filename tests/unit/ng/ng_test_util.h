// Shared fixtures for the ng codec tests: a realistic Kamailio offer in both encodings.
#pragma once

#include <ostream>
#include <string>
#include <string_view>

#include "ctrl/ng/value.h"

namespace xems::ng {

// gtest printer: shows a Value as JSON in assertion failures.
inline void PrintTo(const Value& v, std::ostream* os) {  // NOLINT(readability-identifier-naming)
  std::string s;
  encodeJson(v, s);
  *os << s;
}

namespace testing_util {

inline constexpr std::string_view kOfferSdp =
    "v=0\r\n"
    "o=- 1545997027 1 IN IP4 198.51.100.1\r\n"
    "s=tester\r\n"
    "t=0 0\r\n"
    "m=audio 2000 RTP/AVP 0 8 101\r\n"
    "c=IN IP4 198.51.100.1\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-16\r\n"
    "a=sendrecv\r\n";

// Builds "<len>:<s>".
inline std::string benStr(std::string_view s) {
  return std::to_string(s.size()) + ":" + std::string(s);
}

// A Kamailio-style offer (wire order as rtpengine.c builds it).
inline std::string offerBencode() {
  std::string m = "d";
  m += benStr("supports") + "l" + benStr("load limit") + "e";
  m += benStr("sdp") + benStr(kOfferSdp);
  m += benStr("call-id") + benStr("a84b4c76e66710@pc33.example.com");
  m += benStr("received-from") + "l" + benStr("IP4") + benStr("192.0.2.10") + "e";
  m += benStr("from-tag") + benStr("1928301774");
  m += benStr("flags") + "l" + benStr("trust-address") + benStr("strict-source") + "e";
  m += benStr("replace") + "l" + benStr("origin") + benStr("session-connection") + "e";
  m += benStr("ICE") + benStr("remove");
  m += benStr("TOS") + "i184e";
  m += benStr("command") + benStr("offer");
  m += "e";
  return m;
}

inline std::string offerJson() {
  std::string sdp;
  for (char c : kOfferSdp) {
    if (c == '\r') {
      sdp += "\\r";
    } else if (c == '\n') {
      sdp += "\\n";
    } else {
      sdp += c;
    }
  }
  return R"({"supports":["load limit"],"sdp":")" + sdp +
         R"(","call-id":"a84b4c76e66710@pc33.example.com","received-from":["IP4","192.0.2.10"],)"
         R"("from-tag":"1928301774","flags":["trust-address","strict-source"],)"
         R"("replace":["origin","session-connection"],"ICE":"remove","TOS":184,)"
         R"("command":"offer"})";
}

}  // namespace testing_util
}  // namespace xems::ng
