// Drives many ng "jobs" (a job = a fixed sequence of commands, e.g. offer -> answer -> delete for
// one call) with a window of W jobs in flight, and records per-command latency and errors.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "tools/xems-perf/bencode.h"
#include "tools/xems-perf/ng_client.h"

namespace xems::perf {

class JobSpec {
 public:
  virtual ~JobSpec() = default;
  virtual int steps() const = 0;
  virtual std::string_view stepName(int step) const = 0;
  // Appends the bencode request for `step` of `job` to `out`.
  virtual void buildRequest(size_t job, int step, std::string& out) = 0;
  // Called for a successful reply; returning false counts the step as an error.
  virtual bool onReply(size_t job, int step, const BValue& reply) {
    (void)job;
    (void)step;
    (void)reply;
    return true;
  }
  // Step sent after a failure so the relay does not keep the call (-1: none). It is counted
  // under "cleanup", not under its own command.
  virtual int cleanupStep() const { return -1; }
};

struct LatencySummary {
  uint64_t count = 0;
  double p50_us = 0;
  double p90_us = 0;
  double p99_us = 0;
  double max_us = 0;
};
LatencySummary summarize(std::vector<int64_t>& latencies_ns);

struct StepStats {
  std::string name;
  uint64_t sent = 0;
  uint64_t ok = 0;
  uint64_t errors = 0;    // error replies, malformed replies, rejected by onReply()
  uint64_t timeouts = 0;  // no reply after all attempts
  std::vector<int64_t> latencies_ns;  // successful replies only
  std::map<std::string, uint64_t> error_reasons;  // bounded to a few distinct texts
};

struct RunStats {
  uint64_t jobs_started = 0;
  uint64_t jobs_completed = 0;  // every step answered "ok"
  uint64_t jobs_failed = 0;
  double seconds = 0;
  bool time_limited = false;
  uint64_t retransmits = 0;
  uint64_t stray_replies = 0;
  std::vector<StepStats> steps;
  StepStats cleanup;
};

// Runs `jobs` jobs with at most `window` in flight, for at most `max_seconds`.
RunStats runJobs(NgClient& client, JobSpec& spec, size_t jobs, size_t window, double max_seconds);

}  // namespace xems::perf
