// SDP bodies a SIP phone would send (G.711 u/A-law + telephone-event, ~400 bytes) and the tiny
// parser the harness needs to find where the relay wants media sent.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/net.h"

namespace xems::perf {

struct SdpParams {
  IpAddr address;       // c= and o= address
  uint16_t port = 0;    // m=audio port (RTCP is port + 1)
  uint64_t session_id = 0;
  std::string_view user = "-";
  uint32_t ptime_ms = 20;
};

// A phone-like audio offer/answer: PCMU, PCMA, telephone-event, ptime 20, sendrecv.
std::string makePhoneSdp(const SdpParams& p);

// The connection address of the first audio stream (media-level c= wins over session-level)
// and its m= port.
std::optional<SockAddr> firstAudioEndpoint(std::string_view sdp);

}  // namespace xems::perf
