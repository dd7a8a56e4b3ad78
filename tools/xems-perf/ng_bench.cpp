// `xems-perf ng`: control-plane throughput and latency (offer + answer + delete per call).
// `xems-perf ping`: waits until an ng server answers "pong" (used by the scripts for readiness).
#include <cstdint>
#include <cstdio>
#include <optional>
#include <random>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tools/xems-perf/args.h"
#include "tools/xems-perf/call_requests.h"
#include "tools/xems-perf/clock.h"
#include "tools/xems-perf/commands.h"
#include "tools/xems-perf/ng_client.h"
#include "tools/xems-perf/ng_runner.h"
#include "tools/xems-perf/proc_stats.h"
#include "tools/xems-perf/sdp.h"

namespace xems::perf {

namespace {

const std::vector<OptionSpec> kNgOptions = {
    {"target", "IP:PORT", "ng server (default 127.0.0.1:2223)"},
    {"calls", "N", "calls to run (offer+answer+delete each; default 1000)"},
    {"concurrency", "W", "calls in flight at once (default 1)"},
    {"direction", "A,B", "send direction=[A,B] in offers (two logical interface names)"},
    {"netns", "NAME", "open the ng socket in this network namespace"},
    {"relay-pid", "PID", "report the server's CPU time per call cycle (from /proc/PID/stat)"},
    {"timeout-ms", "MS", "per-attempt reply timeout (default 1000; 3 attempts)"},
    {"max-seconds", "S", "stop starting calls after S seconds (default 120)"},
    {"json", "", "print one JSON object instead of text"},
    {"help", "", "this text"},
};

const std::vector<OptionSpec> kPingOptions = {
    {"target", "IP:PORT", "ng server (default 127.0.0.1:2223)"},
    {"netns", "NAME", "open the ng socket in this network namespace"},
    {"wait-ms", "MS", "keep trying for this long (default 5000)"},
    {"help", "", "this text"},
};

// Offer -> answer -> delete with distinct call-ids, tags, branches and SDP addresses per call.
class BenchCalls : public JobSpec {
 public:
  BenchCalls(CallRequestOptions options, std::string run_prefix)
      : options_(std::move(options)), prefix_(std::move(run_prefix)) {}

  int steps() const override { return 3; }
  std::string_view stepName(int step) const override {
    static constexpr std::string_view kNames[] = {"offer", "answer", "delete"};
    return kNames[step];
  }
  int cleanupStep() const override { return 2; }

  void buildRequest(size_t job, int step, std::string& out) override {
    const CallIdentity call{
        .call_id = fmt::format("{}-{}@xems-perf", prefix_, job),
        .from_tag = fmt::format("ft{}{}", prefix_, job),
        .to_tag = fmt::format("tt{}{}", prefix_, job),
        .via_branch = fmt::format("z9hG4bK{}{:x}", prefix_, job),
    };
    // Documentation ranges: callers in 198.51.100.0/24, callees in 203.0.113.0/24.
    const uint32_t host = static_cast<uint32_t>(job % 250) + 2;
    const uint16_t port = static_cast<uint16_t>(16384 + 2 * (job % 16000));
    if (step == 0) {
      const std::string sdp = makePhoneSdp(SdpParams{
          .address = IpAddr::v4((198u << 24) | (51u << 16) | (100u << 8) | host),
          .port = port,
          .session_id = 1'000'000'000ull + job,
          .user = "caller"});
      buildOfferRequest(call, sdp, options_, out);
    } else if (step == 1) {
      const std::string sdp = makePhoneSdp(SdpParams{
          .address = IpAddr::v4((203u << 24) | (0u << 16) | (113u << 8) | host),
          .port = port,
          .session_id = 2'000'000'000ull + job,
          .user = "callee"});
      buildAnswerRequest(call, sdp, options_, out);
    } else {
      buildDeleteRequest(call, out);
    }
  }

  bool onReply(size_t job, int step, const BValue& reply) override {
    (void)job;
    // Offer and answer must carry a rewritten SDP.
    return step == 2 || reply.findString("sdp").has_value();
  }

 private:
  CallRequestOptions options_;
  std::string prefix_;
};

nlohmann::json stepJson(StepStats& s) {
  const LatencySummary l = summarize(s.latencies_ns);
  nlohmann::json reasons = nlohmann::json::object();
  for (const auto& [text, n] : s.error_reasons) {
    reasons[text] = n;
  }
  return {{"sent", s.sent},         {"ok", s.ok},           {"errors", s.errors},
          {"timeouts", s.timeouts}, {"p50_us", l.p50_us},   {"p90_us", l.p90_us},
          {"p99_us", l.p99_us},     {"max_us", l.max_us},   {"error_reasons", reasons}};
}

}  // namespace

int runNgBench(int argc, char** argv, int first) {
  auto args = Args::parse(argc, argv, first, kNgOptions);
  if (!args.ok() || args->has("help")) {
    if (!args.ok()) {
      fmt::print(stderr, "xems-perf ng: {}\n", args.error().message);
    }
    fmt::print(stderr, "{}", Args::usage("ng", "ng control-plane benchmark", kNgOptions));
    return args.ok() ? kExitOk : kExitUsage;
  }
  const auto target = SockAddr::parse(args->str("target", "127.0.0.1:2223"));
  const auto calls = args->integer("calls", 1000);
  const auto window = args->integer("concurrency", 1);
  const auto timeout_ms = args->integer("timeout-ms", 1000);
  const auto max_seconds = args->number("max-seconds", 120);
  const auto relay_pid = args->integer("relay-pid", 0);
  if (!target || !calls.ok() || !window.ok() || !timeout_ms.ok() || !max_seconds.ok() ||
      !relay_pid.ok() || *calls < 1 || *window < 1 || *timeout_ms < 1 || *max_seconds <= 0) {
    fmt::print(stderr, "xems-perf ng: bad --target, --calls, --concurrency, --timeout-ms or "
                       "--max-seconds\n");
    return kExitUsage;
  }
  CallRequestOptions options;
  options.caller_proxy = *IpAddr::parse("203.0.113.250");
  options.callee_proxy = *IpAddr::parse("203.0.113.251");
  if (args->has("direction")) {
    for (std::string_view d : splitList(args->str("direction"), ',')) {
      options.direction.emplace_back(d);
    }
    if (options.direction.size() != 2) {
      fmt::print(stderr, "xems-perf ng: --direction needs two names, A,B\n");
      return kExitUsage;
    }
  }
  auto client = NgClient::create(*target, args->str("netns"),
                                 NgClientOptions{.timeout_ms = static_cast<int>(*timeout_ms)});
  if (!client.ok()) {
    fmt::print(stderr, "xems-perf ng: {}\n", client.error().message);
    return kExitUsage;
  }
  std::random_device rd;
  BenchCalls spec(options, fmt::format("{:06x}", rd() & 0xffffff));
  const pid_t pid = static_cast<pid_t>(*relay_pid);
  constexpr uint64_t kNoCpu = UINT64_MAX;
  const uint64_t cpu0 = pid > 0 ? processCpuNs(pid).value_or(kNoCpu) : kNoCpu;
  RunStats stats = runJobs(*client, spec, static_cast<size_t>(*calls),
                           static_cast<size_t>(*window), *max_seconds);
  const uint64_t cpu1 = pid > 0 ? processCpuNs(pid).value_or(kNoCpu) : kNoCpu;
  // Server CPU per completed cycle: independent of how busy the host is, unlike ops/s.
  std::optional<double> cpu_us_per_cycle;
  std::optional<double> cpu_util;
  if (cpu0 != kNoCpu && cpu1 != kNoCpu && stats.jobs_completed > 0 && stats.seconds > 0) {
    cpu_us_per_cycle = static_cast<double>(cpu1 - cpu0) / 1000.0 /
                       static_cast<double>(stats.jobs_completed);
    cpu_util = static_cast<double>(cpu1 - cpu0) / (stats.seconds * kNsPerSec);
  }
  const double ops = stats.seconds > 0 ? static_cast<double>(stats.jobs_completed) / stats.seconds
                                       : 0.0;
  uint64_t errors = 0;
  for (const StepStats& s : stats.steps) {
    errors += s.errors + s.timeouts;
  }

  if (args->has("json")) {
    nlohmann::json j = {{"mode", "ng"},
                        {"target", target->toString()},
                        {"calls", *calls},
                        {"concurrency", *window},
                        {"started", stats.jobs_started},
                        {"completed", stats.jobs_completed},
                        {"failed", stats.jobs_failed},
                        {"errors", errors},
                        {"seconds", stats.seconds},
                        {"time_limited", stats.time_limited},
                        {"ops_per_sec", ops},
                        {"retransmits", stats.retransmits},
                        {"stray_replies", stats.stray_replies},
                        {"server_cpu_us_per_cycle",
                         cpu_us_per_cycle ? nlohmann::json(*cpu_us_per_cycle) : nullptr},
                        {"server_cpu_util", cpu_util ? nlohmann::json(*cpu_util) : nullptr}};
    for (StepStats& s : stats.steps) {
      j["commands"][s.name] = stepJson(s);
    }
    j["commands"]["cleanup"] = stepJson(stats.cleanup);
    fmt::print("{}\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
  } else {
    fmt::print("ng benchmark: target {} calls {} concurrency {}\n", target->toString(), *calls,
               *window);
    fmt::print("  {} of {} cycles (offer+answer+delete) in {:.3f} s -> {:.1f} ops/s; failed {}, "
               "retransmits {}{}\n",
               stats.jobs_completed, stats.jobs_started, stats.seconds, ops, stats.jobs_failed,
               stats.retransmits, stats.time_limited ? " (stopped by --max-seconds)" : "");
    if (cpu_us_per_cycle) {
      fmt::print("  server CPU {:.1f} us per cycle ({:.2f} cores busy)\n", *cpu_us_per_cycle,
                 *cpu_util);
    }
    fmt::print("  {:<8} {:>8} {:>7} {:>8} {:>10} {:>10} {:>10} {:>10}\n", "command", "ok",
               "errors", "timeouts", "p50 us", "p90 us", "p99 us", "max us");
    for (StepStats& s : stats.steps) {
      const LatencySummary l = summarize(s.latencies_ns);
      fmt::print("  {:<8} {:>8} {:>7} {:>8} {:>10.1f} {:>10.1f} {:>10.1f} {:>10.1f}\n", s.name,
                 s.ok, s.errors, s.timeouts, l.p50_us, l.p90_us, l.p99_us, l.max_us);
      for (const auto& [text, n] : s.error_reasons) {
        fmt::print("    {} x {}\n", n, text);
      }
    }
  }
  return errors == 0 && !stats.time_limited ? kExitOk : kExitFailed;
}

int runPing(int argc, char** argv, int first) {
  auto args = Args::parse(argc, argv, first, kPingOptions);
  if (!args.ok() || args->has("help")) {
    if (!args.ok()) {
      fmt::print(stderr, "xems-perf ping: {}\n", args.error().message);
    }
    fmt::print(stderr, "{}", Args::usage("ping", "wait for an ng 'pong'", kPingOptions));
    return args.ok() ? kExitOk : kExitUsage;
  }
  const auto target = SockAddr::parse(args->str("target", "127.0.0.1:2223"));
  const auto wait_ms = args->integer("wait-ms", 5000);
  if (!target || !wait_ms.ok()) {
    fmt::print(stderr, "xems-perf ping: bad --target or --wait-ms\n");
    return kExitUsage;
  }
  auto client = NgClient::create(*target, args->str("netns"),
                                 NgClientOptions{.timeout_ms = 200, .attempts = 1});
  if (!client.ok()) {
    fmt::print(stderr, "xems-perf ping: {}\n", client.error().message);
    return kExitUsage;
  }
  const int64_t deadline = monoNs() + *wait_ms * kNsPerMs;
  std::string req;
  buildPingRequest(req);
  // Bounded by --wait-ms: one attempt per 200 ms timeout (or faster when refused).
  while (monoNs() < deadline) {
    bool pong = false;
    bool done = false;
    (void)client->send(req, 0);
    while (!done && monoNs() < deadline + 300 * kNsPerMs) {
      client->poll(50, [&](uint64_t, const NgReply& r) {
        done = true;
        pong = r.dict != nullptr &&
               r.dict->findString("result") == std::optional<std::string_view>("pong");
      });
    }
    if (pong) {
      fmt::print("pong from {}\n", target->toString());
      return kExitOk;
    }
    timespec pause{0, 100 * kNsPerMs};
    ::nanosleep(&pause, nullptr);
  }
  fmt::print(stderr, "xems-perf ping: no pong from {}\n", target->toString());
  return kExitFailed;
}

}  // namespace xems::perf
