// The session layer's API: offer, answer, delete, query, list, statistics and timers, on typed
// requests. Single-threaded: the control thread owns it. Media moves in the ForwardingTable.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/config.h"
#include "ctrl/session/call.h"
#include "ctrl/session/state_journal.h"
#include "ctrl/session/port_allocator.h"
#include "ctrl/session/types.h"
#include "datapath/forwarding_table.h"

namespace xems::session {

// Wall and steady time, injectable for tests.
struct TimeSource {
  virtual ~TimeSource() = default;
  virtual Clock::time_point now() const { return Clock::now(); }
  virtual int64_t unixMicros() const;
};

class CallRegistry {
 public:
  CallRegistry(Config cfg, datapath::ForwardingTable& table,
               std::shared_ptr<TimeSource> time = std::make_shared<TimeSource>());
  ~CallRegistry();
  CallRegistry(const CallRegistry&) = delete;
  CallRegistry& operator=(const CallRegistry&) = delete;

  // Errors carry rtpengine's literal error-reason strings ("Unknown call-id", "Ran out of
  // ports", "Failed to parse SDP", ...), which clients such as Kamailio match.
  Result<OfferAnswerReply> offerAnswer(const OfferAnswerRequest& req);

  struct DeleteResult {
    bool found = false;  // false: rtpengine replies ok + warning (or error with flag fatal)
    CallInfo info;
  };
  DeleteResult remove(const DeleteRequest& req);
  Result<CallInfo> query(std::string_view call_id) const;
  std::vector<std::string> list(size_t limit) const;
  // Ends a call at once (xemsctl terminate); false if unknown.
  bool terminate(std::string_view call_id);
  GlobalStats stats() const;
  size_t callCount() const { return calls_.size(); }

  // Runs timeouts and delayed deletes; call about once a second.
  void tick();
  // SIGHUP: adopts the run-time changeable options of cfg.
  void reconfigure(const Config& cfg);
  const Config& config() const { return cfg_; }
  // Keeps every call in `journal` from now on (after each change), so a restarted daemon can
  // restore() them. Not owned; null stops it.
  void setJournal(StateJournal* journal) { journal_ = journal; }
  // Rebuilds calls a previous run journalled: the same local ports (bound again), peers, SDP
  // state and latched endpoints; flows go to the table as if just answered. Calls that cannot be
  // restored (interface gone, port taken) are logged, dropped from the journal and skipped.
  // Returns the number restored.
  size_t restore(const std::vector<nlohmann::json>& calls);
  // Writes every call to the journal as it is now (latches included), e.g. before a hand-over.
  void persistAll();
  // Where stats() gets the datapath's mode and counters (the daemon knows the XDP state).
  void setDatapathInfo(std::function<datapath::DatapathInfo()> fn) { datapath_info_ = std::move(fn); }

 private:
  enum class EndReason { kRegular, kForced, kTimeout, kSilentTimeout, kFinalTimeout, kOfferTimeout };

  Result<OfferAnswerReply> doOfferAnswer(Call& call, const OfferAnswerRequest& req);
  Status ensureMedia(Participant& p, size_t count, const std::string& iface_name, Family family);
  const InterfaceSpec* pickInterface(const std::string& name, Family family) const;
  void programFlows(Call& call, Participant& a, Participant& b, std::vector<bool> relearn_a,
                    std::vector<bool> relearn_b);
  // a's flows only: what arrives on a's sockets goes to b (b == nullptr: nowhere yet).
  void programOneWay(Call& call, Participant& a, Participant* b, const std::vector<bool>& relearn);
  void persist(Call& call);
  // A digest of the call's latched endpoints: tick() re-journals calls whose latches changed.
  static uint64_t latchDigest(const Call& call);
  datapath::FlowSpec flowSpec(const Call& call, const Media& from, const Media& to, bool rtcp,
                              const OfferAnswerFlags* flags) const;
  void destroyParticipant(Participant& p);
  // Destroys one participant of a call that goes on, and fixes everything that pointed at it.
  void removeParticipant(Call& call, Participant* victim);
  void endCall(const std::string& call_id, EndReason reason);
  CallInfo info(const Call& call) const;
  // Kernel counters of the call's flows, exact now (query, delete).
  void refreshCounters(const Call& call) const;

  Config cfg_;
  datapath::ForwardingTable& table_;
  std::shared_ptr<TimeSource> time_;
  PortAllocator ports_;
  std::unordered_map<std::string, std::unique_ptr<Call>> calls_;
  datapath::FlowId next_flow_id_ = 1;
  uint32_t next_worker_ = 0;
  GlobalStats totals_;
  // For the rates in stats(): totals at the previous tick.
  Clock::time_point last_tick_{};
  uint64_t last_packets_ = 0;
  uint64_t last_bytes_ = 0;
  uint64_t last_errors_ = 0;
  // Counters of flows already removed, so totals survive call teardown.
  int64_t started_unix_ = 0;
  std::function<datapath::DatapathInfo()> datapath_info_;
  StateJournal* journal_ = nullptr;
};

}  // namespace xems::session
