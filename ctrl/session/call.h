// The call model, following rtpengine so ng semantics map 1:1:
// Call (call-id) -> Participant (one per SIP tag, rtpengine's "monologue") -> Media (one per m=
// line) -> Stream (RTP and RTCP socket). Media of two participants are linked: what arrives on A's
// socket leaves from B's socket towards B. The sockets of a participant are the ones that face it:
// the SDP sent *to* a participant carries its own sockets' ports.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/net.h"
#include "common/unique_fd.h"
#include "datapath/forwarding_table.h"

namespace xems::session {

using Clock = datapath::Clock;

struct Stream {
  datapath::FlowId id = 0;
  SockAddr local;
  std::shared_ptr<datapath::FlowCounters> counters;
  std::optional<SockAddr> advertised;  // the participant's address:port from its SDP
  UniqueFd pending_fd;                 // until handed to the forwarding table
  bool in_table = false;
  // Latched peer endpoint read from the journal after a restart; handed to the forwarding table
  // once.
  std::optional<SockAddr> restore_latch;
};

struct Media {
  int index = 0;  // 1-based, as in query replies
  std::string type;
  std::string protocol;
  const InterfaceSpec* iface = nullptr;  // local interface facing this participant
  Stream rtp;
  Stream rtcp;
  bool allocated = false;
  bool rtcp_mux = false;       // this participant sends RTCP on the RTP port
  bool mux_offered = false;    // rtcp-mux was offered on this leg
  bool mux_keep = false;       // offer flags demux/accept: keep mux towards this participant
  std::optional<SockAddr> rtcp_sdp;  // the participant's separate RTCP endpoint from its SDP
  bool sends = true;           // from this participant's SDP direction
  bool receives = true;
  bool rejected = false;       // port 0
  bool zero_address = false;   // c=0.0.0.0 (old-style hold)
  Family sdp_family = Family::kIpv4;  // family of the participant's own SDP address
  std::vector<std::string> codecs;
};

// What the SDP we send to a participant looked like last time (for replace flags).
struct SdpOutState {
  bool initialised = false;
  std::string username;
  std::string session_id;
  std::string session_name;
  std::string origin_address;
  uint64_t version = 0;
  std::string last_body;  // output without the o= line, to detect changes
};

struct Participant {
  std::string tag;  // empty until known (the answerer before the answer)
  std::string via_branch;
  std::string label;
  std::vector<std::string> aliases;
  int64_t created = 0;  // unix seconds
  Participant* peer = nullptr;
  std::vector<Media> medias;
  std::string iface_name;  // logical interface facing this participant ("" = by family)
  SdpOutState sdp_out;
};

struct Call {
  std::string id;
  std::vector<std::unique_ptr<Participant>> participants;
  uint32_t worker = 0;
  int64_t created_unix = 0;
  int64_t created_us = 0;
  int64_t last_signal_unix = 0;
  Clock::time_point created_mono{};
  Clock::time_point last_signal_mono{};
  std::optional<Clock::time_point> delete_at;
  bool answered = false;
  uint64_t journalled_latches = 0;  // latchDigest() when the call was last journalled

  Participant* findTag(std::string_view tag);
  Participant* findUntagged(std::string_view via_branch);
};

}  // namespace xems::session
