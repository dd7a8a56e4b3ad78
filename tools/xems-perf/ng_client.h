// Asynchronous ng client over UDP: many requests in flight on one socket, matched by cookie,
// retransmitted with the same bytes (as Kamailio does) and timed from the first send.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/net.h"
#include "common/result.h"
#include "common/unique_fd.h"
#include "tools/xems-perf/bencode.h"

namespace xems::perf {

struct NgReply {
  enum class Status : uint8_t { kOk, kError, kTimeout, kMalformed };
  Status status = Status::kTimeout;
  std::string_view error;      // error-reason, or a description for kTimeout/kMalformed
  const BValue* dict = nullptr;  // decoded reply dictionary (kOk and kError only)
  int64_t latency_ns = 0;      // first send to reply
  uint32_t retransmits = 0;
};

struct NgClientOptions {
  int timeout_ms = 1000;  // per attempt (Kamailio's rtpengine_tout_ms default)
  int attempts = 3;       // first send plus retransmissions
};

class NgClient {
 public:
  // The callback may send new requests from inside poll(); `reply` is valid during the call only.
  using Callback = std::function<void(uint64_t tag, const NgReply& reply)>;

  static Result<NgClient> create(const SockAddr& target, std::string_view netns,
                                 const NgClientOptions& options);
  NgClient(NgClient&&) = default;
  NgClient& operator=(NgClient&&) = default;

  // Sends `payload` (bencode dictionary, no cookie). `tag` is handed back with the reply.
  Status send(std::string_view payload, uint64_t tag);
  // Waits up to timeout_ms for replies, delivering them and any expired requests to `cb`.
  // Returns the number of completions delivered.
  size_t poll(int timeout_ms, const Callback& cb);
  size_t outstanding() const { return pending_.size(); }
  uint64_t retransmits() const { return retransmits_; }
  uint64_t strayReplies() const { return stray_replies_; }

 private:
  struct Pending {
    uint64_t tag = 0;
    std::string message;  // cookie + ' ' + payload, resent verbatim
    int64_t first_send_ns = 0;
    int64_t deadline_ns = 0;
    uint32_t attempts = 0;
  };

  NgClient(UniqueFd fd, const NgClientOptions& options);
  void expire(int64_t now, const Callback& cb, size_t& delivered);
  void handleDatagram(std::string_view data, int64_t now, const Callback& cb, size_t& delivered);

  UniqueFd fd_;
  NgClientOptions options_;
  std::string prefix_;
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, Pending> pending_;
  std::vector<std::string> rx_buffers_;
  int64_t next_expiry_scan_ns_ = 0;
  uint64_t retransmits_ = 0;
  uint64_t stray_replies_ = 0;
};

}  // namespace xems::perf
