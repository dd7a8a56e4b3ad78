// Serialisation of one call (Call -> Participant -> Media -> Stream) to JSON and back, so a
// restarted xemsd can rebuild its calls from the state journal (ctrl/session/state_journal.h) and
// keep answering ng query/delete for them.
//
// What is kept is what the session layer needs to carry on: ids, tags, SDP state, interfaces and
// ports, the peer's advertised and latched endpoints. What belongs to one process is not: flow ids,
// sockets, counters, in_table, the worker. Steady-clock times are stored relative to `now` (an age,
// or the time left), because the steady clock's epoch means nothing to another process.
//
// Record format, version 1 (every key is always written; strings that are not valid UTF-8 are
// written as {"hex": "<lowercase hex of the bytes>"} so call-ids and tags survive byte for byte):
//
//   {"v": 1, "id": str, "created_unix": int, "created_us": int, "last_signal_unix": int,
//    "created_age_ms": int >= 0, "last_signal_age_ms": int >= 0,
//    "delete_in_ms": int >= 0 | null, "answered": bool,
//    "participants": [
//      {"tag": str, "via_branch": str, "label": str, "aliases": [str], "created": int,
//       "iface_name": str, "peer": index into "participants" | -1,
//       "sdp_out": {"initialised": bool, "username": str, "session_id": str,
//                   "session_name": str, "origin_address": str, "version": uint,
//                   "last_body": str},
//       "medias": [
//         {"index": 1-based position, "type": str, "protocol": str,
//          "iface": {"name": str, "local": "IP"} | null, "allocated": bool,
//          "rtcp_mux": bool, "mux_offered": bool, "mux_keep": bool,
//          "rtcp_sdp": "IP:PORT" | null, "sends": bool, "receives": bool, "rejected": bool,
//          "zero_address": bool, "sdp_family": "IP4" | "IP6" | "", "codecs": [str],
//          "rtp": stream, "rtcp": stream}]}]}
//   stream: {"local": "IP:PORT" | null, "advertised": "IP:PORT" | null, "latch": "IP:PORT" | null}
//
// Addresses are in SockAddr::toString() / IpAddr::toString() form ("[v6]:port" for IPv6) and are
// read back only in that exact form.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/config.h"
#include "common/result.h"
#include "ctrl/session/call.h"

namespace xems::session {

inline constexpr int kCallStateVersion = 1;

// Serialises everything needed to rebuild `call`. The latched endpoint of a stream is taken from
// its counters (under counters->mu) if something has latched, else from restore_latch. Never
// throws for any Call (bytes that are not UTF-8 are hex-encoded).
// The latched endpoint a stream's journal record keeps: the worker's latch, else the one it was
// restored with.
std::optional<SockAddr> persistedLatch(const Stream& s);

nlohmann::json callToJson(const Call& call, Clock::time_point now);

// Rebuilds a call from callToJson() output. Everything is checked (version, types, ranges, peer
// indexes, address strings, media indexes, that allocated media have an interface and an RTP/RTCP
// port pair on its local address); the first problem is returned as an error naming the field
// ("participants[1].medias[0].rtp.local: ..."). Never throws, whatever `j` holds.
//
// Each media's interface must exist in `interfaces` with the same name AND local address; the
// returned Media::iface points into `interfaces`, which must outlive the call.
// Streams of allocated media get fresh counters, restore_latch = the persisted latch, id 0,
// in_table false and no socket: the caller re-binds the ports and adds the flows. Call::worker is
// 0. Steady times become now - age, delete_at now + time left.
Result<std::unique_ptr<Call>> callFromJson(const nlohmann::json& j,
                                           const std::vector<InterfaceSpec>& interfaces,
                                           Clock::time_point now);

// The string encoding used above, also for the call-id key in the journal: a JSON string if
// `bytes` is valid UTF-8 (RFC 3629), else {"hex": "..."}.
nlohmann::json bytesToJson(std::string_view bytes);
// The inverse; nullopt if `j` is neither a string nor a well-formed {"hex": ...} object.
std::optional<std::string> bytesFromJson(const nlohmann::json& j);

}  // namespace xems::session
