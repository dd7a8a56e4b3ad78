#include "tools/xems-perf/ng_runner.h"

#include <algorithm>
#include <cmath>

#include "tools/xems-perf/clock.h"

namespace xems::perf {

namespace {

constexpr size_t kMaxErrorReasons = 8;
// Tag layout: job index in the high bits, step in the low byte; 0xff marks a cleanup request.
constexpr uint64_t kCleanupStep = 0xff;

uint64_t makeTag(size_t job, uint64_t step) { return (static_cast<uint64_t>(job) << 8) | step; }

void noteError(StepStats& s, std::string_view reason) {
  auto it = s.error_reasons.find(std::string(reason));
  if (it != s.error_reasons.end()) {
    ++it->second;
  } else if (s.error_reasons.size() < kMaxErrorReasons) {
    s.error_reasons.emplace(std::string(reason), 1);
  }
}

}  // namespace

LatencySummary summarize(std::vector<int64_t>& latencies_ns) {
  LatencySummary s;
  s.count = latencies_ns.size();
  if (latencies_ns.empty()) {
    return s;
  }
  std::sort(latencies_ns.begin(), latencies_ns.end());
  auto at = [&](double q) {
    // Nearest-rank percentile.
    size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(latencies_ns.size())));
    rank = std::clamp<size_t>(rank, 1, latencies_ns.size());
    return static_cast<double>(latencies_ns[rank - 1]) / 1000.0;
  };
  s.p50_us = at(0.50);
  s.p90_us = at(0.90);
  s.p99_us = at(0.99);
  s.max_us = static_cast<double>(latencies_ns.back()) / 1000.0;
  return s;
}

RunStats runJobs(NgClient& client, JobSpec& spec, size_t jobs, size_t window, double max_seconds) {
  RunStats stats;
  stats.steps.resize(static_cast<size_t>(spec.steps()));
  for (int i = 0; i < spec.steps(); ++i) {
    stats.steps[static_cast<size_t>(i)].name = std::string(spec.stepName(i));
    stats.steps[static_cast<size_t>(i)].latencies_ns.reserve(jobs);
  }
  stats.cleanup.name = "cleanup";
  window = std::max<size_t>(window, 1);

  std::string buf;
  size_t next_job = 0;
  size_t in_flight = 0;  // jobs, including their cleanup requests
  const uint64_t retransmits_before = client.retransmits();
  const uint64_t stray_before = client.strayReplies();
  const int64_t start = monoNs();
  const int64_t deadline = start + static_cast<int64_t>(max_seconds * kNsPerSec);

  auto sendStep = [&](size_t job, int step, bool cleanup) {
    buf.clear();
    spec.buildRequest(job, step, buf);
    (void)client.send(buf, makeTag(job, cleanup ? kCleanupStep : static_cast<uint64_t>(step)));
    if (cleanup) {
      ++stats.cleanup.sent;
    } else {
      ++stats.steps[static_cast<size_t>(step)].sent;
    }
  };
  auto startJobs = [&](int64_t now) {
    while (in_flight < window && next_job < jobs && now < deadline) {
      ++stats.jobs_started;
      ++in_flight;
      sendStep(next_job++, 0, false);
    }
  };

  const NgClient::Callback on_reply = [&](uint64_t tag, const NgReply& reply) {
    const size_t job = static_cast<size_t>(tag >> 8);
    const uint64_t step_code = tag & 0xff;
    if (step_code == kCleanupStep) {
      --in_flight;
      if (reply.status == NgReply::Status::kOk) {
        ++stats.cleanup.ok;
      } else if (reply.status == NgReply::Status::kTimeout) {
        ++stats.cleanup.timeouts;
      } else {
        ++stats.cleanup.errors;
        noteError(stats.cleanup, reply.error);
      }
      return;
    }
    const int step = static_cast<int>(step_code);
    StepStats& s = stats.steps[static_cast<size_t>(step)];
    bool good = false;
    if (reply.status == NgReply::Status::kOk) {
      good = spec.onReply(job, step, *reply.dict);
      if (good) {
        ++s.ok;
        s.latencies_ns.push_back(reply.latency_ns);
      } else {
        ++s.errors;
        noteError(s, "reply rejected by client check");
      }
    } else if (reply.status == NgReply::Status::kTimeout) {
      ++s.timeouts;
    } else {
      ++s.errors;
      noteError(s, reply.error);
    }
    if (good && step + 1 < spec.steps()) {
      sendStep(job, step + 1, false);
      return;
    }
    if (good) {
      ++stats.jobs_completed;
      --in_flight;
      return;
    }
    ++stats.jobs_failed;
    const int cleanup = spec.cleanupStep();
    if (cleanup >= 0 && step != cleanup) {
      sendStep(job, cleanup, true);  // stays in flight until its reply
      return;
    }
    --in_flight;
  };

  startJobs(start);
  // Bounded: every request completes (reply or timeout after attempts x timeout), and no job
  // starts after the deadline, so the loop ends at most attempts x timeout past the deadline.
  while (in_flight > 0) {
    client.poll(1, on_reply);
    const int64_t now = monoNs();
    if (now >= deadline) {
      stats.time_limited = next_job < jobs;
    }
    startJobs(now);
  }
  stats.seconds = static_cast<double>(monoNs() - start) / kNsPerSec;
  stats.retransmits = client.retransmits() - retransmits_before;
  stats.stray_replies = client.strayReplies() - stray_before;
  return stats;
}

}  // namespace xems::perf
