// Endpoint learning ("latching") and strict-source checking for one flow.
//
// Pure logic, no I/O and no clock: the caller passes the packet's source and the batch time, so
// every learning mode is unit-testable with injected times. One instance per flow, owned by the
// flow's worker thread.
#pragma once

#include <cstdint>

#include "datapath/endpoint.h"
#include "datapath/forwarding_table.h"

namespace xems::datapath {

class SourceLatch {
 public:
  enum class Verdict : uint8_t {
    kAccept,   ///< accept; the latched endpoint did not change
    kLatched,  ///< accept; the latched endpoint changed (publish FlowCounters::learned)
    kDrop,     ///< foreign source under strict source: count in dropped_source, never forward
  };

  /// Applies a (new) policy. With `relearn`, or on the first call, forgets the latched endpoint
  /// and unlocks, so learning restarts under the new policy (re-INVITE). Without it the latched
  /// endpoint and the lock stay. A policy with `latched` set latches and locks to it at once.
  void configure(const SourcePolicy& policy, bool relearn);

  /// Decides on one packet from `src` arriving at `now`.
  ///
  /// - kOff: never latches. Accepts everything, except under strict with an advertised address,
  ///   where only packets from exactly that address:port are accepted.
  /// - kImmediate: the first source latches and is locked.
  /// - kDelayed: before learn_until every packet's source re-latches (latest wins), except that
  ///   a packet from exactly the advertised address:port latches and locks at once; after the
  ///   window the endpoint is locked. If nothing latched in the window, only the advertised
  ///   endpoint may latch afterwards (others are foreign); with none advertised, the first
  ///   source latches.
  /// - kHeuristic: before learn_until a source ranks 2 (advertised address and port), 1 (same
  ///   address) or 0 (other); a higher rank re-latches, equal rank keeps the first; rank 2 locks
  ///   at once (nothing can beat it). After the window: locked, as for kDelayed.
  /// Once a source is latched, packets from other sources are dropped if strict, else accepted
  /// without re-latching (this also applies inside the heuristic window to lower or equal ranks).
  Verdict onPacket(const Endpoint& src, Clock::time_point now);

  /// Latches and locks to `e` at once (an endpoint confirmed outside the worker).
  void confirm(const Endpoint& e) {
    latched_ = e;
    locked_ = true;
  }

  /// The latched endpoint, if any.
  const Endpoint& latched() const { return latched_; }
  /// Where the other side should send to: the latched endpoint, else the advertised one.
  const Endpoint& destination() const { return latched_.valid() ? latched_ : advertised_; }
  bool locked() const { return locked_; }
  const Endpoint& advertised() const { return advertised_; }

 private:
  Verdict latch(const Endpoint& src, uint8_t rank, bool lock);
  Verdict lockedVerdict(const Endpoint& src) const;
  uint8_t rankOf(const Endpoint& src) const;

  Endpoint latched_;
  Endpoint advertised_;
  Clock::time_point learn_until_{};
  EndpointLearning learning_ = EndpointLearning::kDelayed;
  bool strict_ = true;
  bool locked_ = false;
  bool configured_ = false;
  uint8_t rank_ = 0;
};

}  // namespace xems::datapath
