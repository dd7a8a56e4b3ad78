// The ng control protocol server: UDP datagrams of `cookie SP payload`, bencode or JSON
// payloads (the reply uses the request's encoding), a cookie cache for retransmissions, and one
// command table. Requests become typed calls into the session layer (ctrl/session).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/net.h"
#include "common/unique_fd.h"
#include "ctrl/ng/cookie_cache.h"
#include "ctrl/ng/value.h"
#include "ctrl/session/call_registry.h"

namespace xems::ng {

// The commands, in one place: name on the wire, enum, handler (see ng_commands.cpp).
enum class Command : uint8_t {
  kPing,
  kOffer,
  kAnswer,
  kDelete,
  kQuery,
  kList,
  kStatistics,
  kCount
};

struct CommandStats {
  uint64_t count = 0;
  uint64_t errors = 0;
  double min_s = 0;
  double max_s = 0;
  double total_s = 0;
};

struct NgStats {
  uint64_t requests = 0;
  uint64_t replies_from_cache = 0;
  uint64_t invalid = 0;            // undecodable payloads, missing command
  uint64_t dropped_no_cookie = 0;  // no reply possible
  uint64_t unknown_commands = 0;
  uint64_t oversized_replies = 0;  // replaced by a short reply with a warning
  uint64_t send_errors = 0;
  std::array<CommandStats, static_cast<size_t>(Command::kCount)> commands{};
};

class NgServer {
 public:
  explicit NgServer(session::CallRegistry& registry);

  // Binds one UDP socket per address.
  Status listen(const std::vector<SockAddr>& addrs);
  std::vector<int> fds() const;
  // Reads and answers every datagram waiting on fd (bounded per call, so one busy client cannot
  // starve the event loop).
  void onReadable(int fd);

  struct Reply {
    std::string bytes;                // to the sender; empty: no reply
    std::vector<SockAddr> waiters;    // retransmissions that arrived while this was in flight
  };
  // Handles one datagram and returns what to send back. `from` is recorded for cookie-cache
  // waiters.
  Reply handle(std::string_view datagram, const SockAddr& from);

  const NgStats& stats() const { return stats_; }
  // Hook for `terminate` style CLI commands that need the daemon (not used by ng itself).
  session::CallRegistry& registry() { return registry_; }

 private:
  std::string process(std::string_view payload, bool* cacheable);

  session::CallRegistry& registry_;
  CookieCache cookies_;
  std::vector<UniqueFd> socks_;
  NgStats stats_;
  std::vector<char> rxbuf_;
};

std::string_view commandName(Command c);

// rtpengine accepts "call-id", "call id", "Call_ID"...: keys and flags are compared after
// lower-casing and turning spaces and underscores into '-'.
std::string normalizeKey(std::string_view s);

// Parses Kamailio's `rtpp-flags` string into a dict (bare words under "flags").
Result<Value> parseRtppFlags(std::string_view text, Document& doc);
// Decodes the options of an offer/answer request (exposed for tests).
Result<session::OfferAnswerRequest> decodeOfferAnswer(const Value& req, session::Op op);
// Encodes a call's statistics as rtpengine's query reply structure into `out` (a dict).
void encodeCallInfo(const session::CallInfo& info, Document& doc, Value& out);

}  // namespace xems::ng
