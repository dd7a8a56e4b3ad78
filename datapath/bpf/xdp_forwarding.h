// XdpForwardingTable: the kernel fast path behind the session layer's ForwardingTable seam.
//
// It wraps the userspace engine (every flow keeps its socket and worker there, so whatever XDP
// passes up is still relayed) and writes an xems_flows entry for every flow that is plain
// pass-through (FlowSpec::offload) at the moment the session layer adds or updates it, i.e. at
// answer time: the first RTP packet after the answer is already forwarded by XDP. Re-INVITEs
// rewrite the entry in place (one bpf_map_update_elem, a new version); remove() erases it before
// the socket goes.
//
// Which source the kernel accepts follows the userspace latch (datapath/source_latch.h) so that
// offloading changes where packets are forwarded, never who may send them:
//   - learning off: STRICT on the advertised endpoint (strict source), else IGNORE;
//   - latched (by the worker, by a restart, or confirmed by the kernel) and locked: STRICT on the
//     latched endpoint (strict source), else IGNORE;
//   - still learning: LEARN on the latched endpoint, or on the advertised one. LEARN forwards
//     that exact source in XDP and passes every other source up to the worker, which latches
//     (NAT) or drops it; the worker's latch event (EngineOptions::on_latch, through LatchQueue)
//     comes back here and the entry is rewritten.
// A packet the kernel forwarded from the advertised endpoint is the peer speaking from where it
// said it would: like the worker's "exact advertised locks at once", that confirms the endpoint,
// and the worker is told (SourcePolicy::latched), so a foreign source that reaches the worker
// later cannot latch.
//
// The packets XDP forwards never reach the worker, so their counters live in the BPF per-flow
// statistics; poll() (every tick, and sync()) copies them into FlowCounters::kernel_*, which the
// session layer adds to the worker's counters and uses for timeouts.
//
// Restart: maps and links are pinned. adoptExisting() reads the entries a previous xemsd left; a
// flow re-added for the same local socket takes its entry over in place (same stats slot, so its
// counters go on) and the entry keeps forwarding all the while. dropUnclaimed() erases what no
// restored call claimed.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "datapath/bpf/xdp_maps.h"
#include "datapath/forwarding_table.h"

namespace xems::datapath::bpf {

/// Flow ids the workers report (latch events) for the control thread, with an eventfd to wait on.
class LatchQueue {
 public:
  static Result<std::shared_ptr<LatchQueue>> create();
  /// Any thread. Never blocks for long (a mutex held for a push_back).
  void push(FlowId id);
  /// Control thread: takes everything queued and clears the eventfd.
  std::vector<FlowId> drain();
  int fd() const { return event_fd_.get(); }

 private:
  LatchQueue() = default;
  std::mutex mu_;
  std::vector<FlowId> ids_;
  UniqueFd event_fd_;
};

/// What the table did, for statistics and tests.
struct XdpOffloadStats {
  uint64_t upserts = 0;          ///< entries written (new or rewritten in place)
  uint64_t upsert_errors = 0;    ///< writes the kernel refused (the flow stays in userspace)
  uint64_t erases = 0;
  uint64_t confirmed = 0;        ///< advertised endpoints confirmed by XDP-forwarded packets
  uint64_t rejected_latches = 0; ///< worker latches overruled by such a confirmation
  uint64_t adopted = 0;          ///< entries found from a previous run
  uint64_t claimed = 0;          ///< of those, taken over by a restored flow
  uint64_t stale_removed = 0;    ///< of those, erased by dropUnclaimed()
  uint64_t no_stats_slot = 0;    ///< flows not offloaded: every stats slot in use
  uint64_t late_stats_slot = 0;  ///< of those, offloaded later when a slot came free
};

/// The L2 next hop for sending from our socket `src` to the peer `dst`, resolved by the daemon
/// (routes and neighbours through netlink). nullopt: the program asks bpf_fib_lookup() instead.
using NextHopFn = std::function<std::optional<FixedL2>(const SockAddr& src, const SockAddr& dst)>;

class XdpForwardingTable final : public ForwardingTable {
 public:
  /// @param inner the userspace engine (owned)
  /// @param maps  the loaded (and usually pinned) maps; must outlive this table
  /// @param latch_events where `inner` reports latches (its EngineOptions::on_latch pushes
  ///        there); may be null, then latches are noticed at the next poll()
  XdpForwardingTable(std::unique_ptr<ForwardingTable> inner, XdpFlowTable& maps,
                     std::shared_ptr<LatchQueue> latch_events);
  ~XdpForwardingTable() override;

  /// Reads the entries a previous run left in the (pinned) maps. Call once, before any add().
  Status adoptExisting();
  /// Erases adopted entries no add() claimed (after the call registry was restored).
  void dropUnclaimed();

  Status add(FlowSpec spec, UniqueFd socket) override;
  Status update(const FlowSpec& spec, bool relearn) override;
  void remove(FlowId id) override;
  void sync() override;
  uint32_t workerCount() const override { return inner_->workerCount(); }
  void poll() override;
  void refreshCounters(FlowId id) override;

  /// Where outputs get their egress device and MACs. Without it (or when it returns nullopt)
  /// every packet pays a bpf_fib_lookup(), which also needs forwarding enabled on the ingress
  /// device. Entries follow changes at the next poll().
  void setNextHops(NextHopFn fn) { next_hops_ = std::move(fn); }

  /// From now on remove() leaves the kernel entries in place: the daemon exits and hands its
  /// calls over to the next run (they keep forwarding; the next run adopts them).
  void keepEntriesOnRemove() { keep_entries_ = true; }

  /// Handles the latch events queued by the workers (call when latchEvents()->fd() is readable).
  void onLatchEvents();

  /// For EngineOptions::latch_veto (any thread): the advertised endpoint of a flow in its
  /// learning window if XDP has forwarded packets from it since the window began, else nullopt.
  static std::optional<SockAddr> kernelConfirmed(const XdpFlowTable& maps, const FlowCounters& c);

  /// True if the flow has an entry that lets XDP forward it now.
  bool kernelized(FlowId id) const;
  const XdpOffloadStats& offloadStats() const { return stats_; }

 private:
  struct Flow {
    FlowSpec spec;                        // as the session layer gave it (no `latched` of ours)
    uint32_t stats_idx = 0;
    bool has_slot = false;
    bool in_map = false;
    std::optional<FlowValue> written;     // last value written, version zeroed
    std::optional<SockAddr> confirmed;    // peer endpoint confirmed by the kernel or a restart
    bool adopted = false;                 // took over a previous run's entry, not rewritten yet
    std::optional<SockAddr> stale_learned;   // FlowCounters::learned from before a relearn
    std::optional<SockAddr> learn_expected;  // LEARN mode: the endpoint XDP forwards now
    uint64_t learn_base = 0;              // kernel packets when learn_expected went in
    uint64_t kernel_packets = 0;          // last read from the stats slot
    uint32_t kernel_version = 0;          // the entry version that forwarded the newest packet
    uint32_t version = 0;                 // the version this table wrote last
  };

  std::optional<SockAddr> latchedOf(const Flow& f) const;
  std::optional<SockAddr> destination(const Flow& f) const;
  FlowEntry desiredEntry(const Flow& f) const;
  void reconcile(Flow& f);
  void reconcileUsers(FlowId sink);
  void refreshFlow(Flow& f);
  void confirm(FlowId id, Flow& f, const SockAddr& endpoint);
  void linkUsers(FlowId id, const FlowSpec* old_spec, const FlowSpec& new_spec);
  void publishLearning(const Flow& f);
  void cool(uint32_t slot);
  // Moves the slots that have rested long enough to the free list.
  void reapCooledSlots();
  // LEARN mode: XDP forwarded packets from learn_expected under the entry written last.
  bool heardExpected(const Flow& f) const;
  std::optional<uint32_t> takeSlot();

  std::unique_ptr<ForwardingTable> inner_;
  XdpFlowTable& maps_;
  std::shared_ptr<LatchQueue> latch_events_;
  NextHopFn next_hops_;
  bool keep_entries_ = false;
  std::unordered_map<FlowId, Flow> flows_;
  // sink flow -> flows whose outputs send from it (they change when its destination changes)
  std::unordered_map<FlowId, std::vector<FlowId>> users_;
  struct Adopted {
    FlowValue value;
    bool claimed = false;
  };
  std::unordered_map<std::string, Adopted> adopted_;  // by key bytes
  std::vector<uint32_t> free_slots_;
  // Slots of removed flows wait one poll() before reuse: an XDP program still holding the old
  // entry (RCU) must not count into a flow that got the slot a moment later.
  std::deque<std::pair<uint32_t, Clock::time_point>> cooling_slots_;  // slot, since; oldest first
  XdpOffloadStats stats_;
};

}  // namespace xems::datapath::bpf
