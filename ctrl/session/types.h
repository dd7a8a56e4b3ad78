// Typed requests and replies of the session layer. The ng server (ctrl/ng) decodes bencode into
// these; the SIP B2BUA will fill them directly. Nothing here knows about bencode, cookies or ng
// flag spellings.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/net.h"
#include "datapath/forwarding_table.h"

namespace xems::session {

enum class Op : uint8_t { kOffer, kAnswer };

enum class IceMode : uint8_t {
  kDefault,  // no ICE agent yet: foreign ICE attributes are removed (see docs/ng_protocol.md)
  kRemove,
  kForce,    // accepted; behaves as kRemove until the ICE agent lands (road item 6)
};

struct CodecFlags {
  std::vector<std::string> strip;   // names (case-insensitive), "all" or "full"
  std::vector<std::string> offer;   // exempt from strip and moved to the front, in this order
  std::vector<std::string> except;  // whitelist: everything else is stripped
  std::vector<std::string> mask;    // offers only: removed from the outgoing SDP
  bool allow_no_codec_media = false;
};

struct RtcpMuxFlags {
  bool offer = false;    // offer rtcp-mux to the answerer even if the offerer did not
  bool require = false;  // offer rtcp-mux and advertise no separate RTCP port
  bool demux = false;    // accept mux towards the offerer but do not offer it onward
  bool accept = false;   // accept mux towards the offerer and pass the offer on
  bool reject = false;   // refuse mux towards the offerer and do not offer it
};

struct OfferAnswerFlags {
  bool sip_source_address = false;  // use received_from instead of the SDP address
  std::optional<IpAddr> received_from;
  std::optional<IpAddr> media_address;
  std::optional<Family> address_family;
  std::vector<std::string> direction;  // interface names [towards sender, towards receiver]
  bool replace_origin = false;
  bool replace_origin_full = false;
  bool replace_username = false;
  bool replace_session_name = false;
  bool replace_sdp_version = false;
  bool force_increment_sdp_version = false;
  bool replace_zero_address = false;
  IceMode ice = IceMode::kDefault;
  RtcpMuxFlags rtcp_mux;
  CodecFlags codec;
  std::optional<bool> strict_source;
  bool media_handover = false;
  std::optional<EndpointLearning> endpoint_learning;
  bool original_sendrecv = false;
  bool full_rtcp_attribute = false;
  bool no_rtcp_attribute = false;
  bool asymmetric = false;
  std::string label;
};

struct OfferAnswerRequest {
  Op op = Op::kOffer;
  std::string call_id;
  std::string from_tag;
  std::string to_tag;
  std::string via_branch;
  std::string sdp;
  OfferAnswerFlags flags;
};

struct DeleteRequest {
  std::string call_id;
  std::string from_tag;
  std::string to_tag;       // honoured only if honour_to_tag (ng flag "to-tag")
  std::string via_branch;
  bool honour_to_tag = false;
  std::optional<uint32_t> delete_delay;  // seconds; default from config
  bool want_stats = true;                // false (ng flag "fast"): no statistics in the reply
};

// ---- replies -------------------------------------------------------------------------------

struct PacketTotals {
  uint64_t packets = 0;
  uint64_t bytes = 0;
  uint64_t errors = 0;
};

struct StreamInfo {
  SockAddr local;
  std::optional<SockAddr> endpoint;    // learned, else advertised
  std::optional<SockAddr> advertised;  // from SDP
  bool rtcp = false;
  bool rtcp_mux = false;               // RTP socket also carrying RTCP
  bool confirmed = false;              // a source has latched
  bool strict = false;
  bool kernelized = false;
  PacketTotals stats;                  // received on this socket: user + kernel
  PacketTotals user;                   // of stats, seen by the userspace worker
  PacketTotals kernel;                 // of stats, forwarded by XDP without the worker
  uint64_t forwarded = 0;
  uint64_t dropped_source = 0;
  uint64_t malformed = 0;
  int64_t last_packet = 0;             // unix seconds, 0 = never
  std::vector<datapath::SsrcStats> ssrc;
};

struct MediaInfo {
  int index = 0;  // 1-based
  std::string type;
  std::string protocol;
  std::vector<std::string> codecs;   // "PCMU/8000"...
  std::vector<std::string> flags;    // initialized, send, recv, rtcp-mux...
  std::vector<StreamInfo> streams;   // RTP, then RTCP
};

struct ParticipantInfo {
  std::string tag;  // empty for an untagged (not yet answered) participant
  std::string label;
  std::string via_branch;
  std::vector<std::string> aliases;
  int64_t created = 0;
  std::vector<std::string> peers;  // tags this participant exchanges media with
  std::vector<MediaInfo> medias;
};

struct CallInfo {
  std::string call_id;
  int64_t created = 0;
  int64_t created_us = 0;
  int64_t last_signal = 0;
  std::vector<ParticipantInfo> participants;
  PacketTotals rtp;
  PacketTotals rtcp;
};

struct OfferAnswerReply {
  std::string sdp;
};

// Daemon-wide counters for `statistics` (rtpengine's structure).
struct GlobalStats {
  uint64_t sessions_current = 0;
  uint64_t managed_sessions = 0;   // calls ever created
  uint64_t rejected_sessions = 0;  // refused by limits
  uint64_t timeout_sessions = 0;
  uint64_t silent_timeout_sessions = 0;
  uint64_t final_timeout_sessions = 0;
  uint64_t offer_timeout_sessions = 0;
  uint64_t regular_terminated_sessions = 0;
  uint64_t forced_terminated_sessions = 0;
  uint64_t relayed_packets = 0;
  uint64_t relayed_bytes = 0;
  uint64_t relayed_errors = 0;
  uint64_t dropped_source = 0;   // foreign-source packets dropped (RTP bleed attempts)
  uint64_t kernel_packets = 0;   // of relayed_packets, forwarded by XDP
  uint64_t sdp_parse_errors = 0;
  uint64_t ports_in_use = 0;     // pairs
  uint64_t ports_total = 0;      // pairs per interface address
  uint64_t packet_rate = 0;      // per second, over the last tick interval
  uint64_t byte_rate = 0;
  uint64_t error_rate = 0;
  int64_t uptime_s = 0;
  double total_call_duration_s = 0;
  uint64_t ended_calls = 0;
  datapath::DatapathInfo datapath;
};

}  // namespace xems::session
