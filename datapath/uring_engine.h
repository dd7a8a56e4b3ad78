// The userspace media engine: ForwardingTable over per-worker io_uring instances.
//
// Each worker thread owns one io_uring, one provided-buffer ring and the flows assigned to it
// (FlowSpec::worker % workerCount()). Every flow socket has one multishot recvmsg armed that
// receives into the worker's buffer ring; a received packet is checked against the flow's source
// policy, counted, and sent with a sendmsg SQE from the sink flow's socket that points straight
// into the receive buffer (no copy). The buffer returns to the ring when the send completes. All
// SQEs produced while handling one batch of completions go to the kernel in one io_uring_enter.
//
// Control threads talk to workers only through a per-worker command queue plus an eventfd that
// the worker's ring itself reads, so a worker sleeps in exactly one place (io_uring_enter) and the
// packet path takes no lock, allocates nothing and makes no syscall besides that batched submit.
//
// Kernel: needs multishot recvmsg (Linux 6.0); uses IORING_SETUP_SINGLE_ISSUER (6.0) and
// IORING_SETUP_DEFER_TASKRUN (6.1) when the kernel has them. probe() tells why it cannot run.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "datapath/forwarding_table.h"

namespace xems::datapath {

/// Sizing of the engine. Defaults suit a media relay; tests shrink them to hit edge cases.
struct EngineOptions {
  uint32_t workers = 1;
  /// Provided receive buffers per worker (power of two, 1..32768). A buffer is held from receive
  /// until its forward completes; when all are held, receives pause (ENOBUFS) and packets wait in
  /// the socket receive queues, nothing is lost in the engine.
  uint32_t buffers_per_worker = 4096;
  /// Bytes per receive buffer, including the 16-byte io_uring_recvmsg_out header and the 28-byte
  /// source address in front of the payload. 2048 leaves 2004 bytes of UDP payload; larger
  /// datagrams are dropped and counted (FlowCounters::errors, WorkerStats::truncated).
  uint32_t buffer_size = 2048;
  /// Submission queue entries per worker; a full queue is flushed to the kernel and retried.
  uint32_t sq_entries = 1024;
  /// Called on the worker thread right after a flow latched to a new source (FlowCounters::learned
  /// is already published). Must be cheap, thread-safe and must not call back into the engine.
  std::function<void(FlowId)> on_latch;
  /// Asked on the worker thread before a flow latches to a new source: an endpoint returned
  /// here is already confirmed elsewhere (the kernel forwarded the peer's packets), so the flow
  /// locks to it instead and the packet is judged against it. Must be thread-safe.
  std::function<std::optional<SockAddr>(const FlowCounters&)> latch_veto;
};

/// Per-worker diagnostics (not per flow), updated once per completion batch.
struct WorkerStats {
  uint64_t batches = 0;      ///< completion batches handled (io_uring_enter wake-ups)
  uint64_t cqes = 0;         ///< completions handled
  uint64_t packets = 0;      ///< datagrams received (before the source check)
  uint64_t enobufs = 0;      ///< multishot receives stopped because the buffer ring was empty
  uint64_t rearms = 0;       ///< multishot receives re-armed after they stopped
  uint64_t truncated = 0;    ///< datagrams larger than a buffer (dropped)
  uint64_t sq_full = 0;      ///< times the SQ was full and had to be flushed mid-batch
  uint64_t no_sqe = 0;       ///< packets dropped because even a flushed SQ had no room
  uint64_t send_errors = 0;  ///< sendmsg completions with an error
  uint64_t recv_errors = 0;  ///< receive completions with an error other than ENOBUFS/cancel
};

class UringEngine final : public ForwardingTable {
 public:
  /// Starts `workers` worker threads with default sizing.
  /// @return the engine, or why io_uring could not be set up (see probe()).
  static Result<std::unique_ptr<UringEngine>> create(uint32_t workers);
  /// Starts the engine with explicit sizing.
  static Result<std::unique_ptr<UringEngine>> create(const EngineOptions& options);

  /// Checks that this kernel can run the engine: ring setup, provided-buffer ring registration
  /// and multishot recvmsg (probed with a real request, since the opcode list cannot show the
  /// multishot flag).
  /// @return ok, or an error naming the missing feature.
  static Status probe();
  /// probe().ok(), for callers that only need a yes/no.
  static bool supported();

  /// Stops all workers: cancels every receive, closes every remaining flow socket, joins.
  ~UringEngine() override;
  UringEngine(const UringEngine&) = delete;
  UringEngine& operator=(const UringEngine&) = delete;
  UringEngine(UringEngine&&) = delete;
  UringEngine& operator=(UringEngine&&) = delete;

  /// @copydoc ForwardingTable::add
  /// Fails (synchronously) for id 0, a duplicate id, a socket that is not a bound UDP socket, or
  /// a sink that is already known to live on another worker. A null `spec.counters` is replaced
  /// by a fresh FlowCounters.
  Status add(FlowSpec spec, UniqueFd socket) override;
  /// @copydoc ForwardingTable::update
  /// The flow keeps its worker, socket and FlowCounters (spec.worker and spec.counters are
  /// ignored). Fails for an unknown id or a sink known to live on another worker.
  Status update(const FlowSpec& spec, bool relearn) override;
  /// @copydoc ForwardingTable::remove
  /// The worker cancels the multishot receive and closes the socket once the cancellation and
  /// any sends from that socket have completed. Unknown ids are ignored.
  void remove(FlowId id) override;
  /// @copydoc ForwardingTable::sync
  /// On return, every flow removed before the call has its socket closed (its port can be bound
  /// again) and every flow's FlowCounters::ssrc snapshot is current.
  void sync() override;
  uint32_t workerCount() const override;

  /// Diagnostics of one worker. @param worker 0..workerCount()-1
  WorkerStats workerStats(uint32_t worker) const;
  /// CPU time (user + system) consumed so far by one worker thread, in nanoseconds, read from the
  /// thread's CPU-time clock; nullopt if unavailable. For load reporting and benchmarks.
  std::optional<int64_t> workerCpuNs(uint32_t worker) const;
  /// Kernel thread id of a worker (for /proc/self/task/TID), 0 if unknown.
  pid_t workerTid(uint32_t worker) const;

 private:
  class Worker;
  UringEngine();
  Status checkSinks(const FlowSpec& spec, uint32_t worker) const;  // caller holds mu_

  std::vector<std::unique_ptr<Worker>> workers_;
  mutable std::mutex mu_;  // guards owner_ (control side only, never taken by workers)
  std::unordered_map<FlowId, uint32_t> owner_;  // flow id -> worker index
};

}  // namespace xems::datapath
