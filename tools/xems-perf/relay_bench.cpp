// `xems-perf relay`: sets up K calls on a relay over ng, pushes RTP through leg A from the
// generator sockets, counts it exactly at the sink, optionally searches for the highest packet
// rate below a loss threshold, and deletes the calls again.
//
//   gen sockets --(RTP to the port the relay advertised in the answer)--> relay
//   relay --(from the port it advertised in the offer)--> sink socket
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tools/xems-perf/args.h"
#include "tools/xems-perf/call_requests.h"
#include "tools/xems-perf/clock.h"
#include "tools/xems-perf/commands.h"
#include "tools/xems-perf/netns.h"
#include "tools/xems-perf/ng_client.h"
#include "tools/xems-perf/ng_runner.h"
#include "tools/xems-perf/proc_stats.h"
#include "tools/xems-perf/rtp_gen.h"
#include "tools/xems-perf/rtp_sink.h"
#include "tools/xems-perf/sdp.h"
#include "tools/xems-perf/xdp_sink.h"

namespace xems::perf {

namespace {

const std::vector<OptionSpec> kRelayOptions = {
    {"ng", "IP:PORT", "ng control socket of the relay (required unless --direct)"},
    {"direct", "", "no relay control: every stream goes straight to the sink address, through "
                   "whatever routes the generator's namespace has (the kernel IP forwarding "
                   "baseline); sources are checked as the generator's own addresses"},
    {"ng-netns", "NAME", "network namespace for the ng socket"},
    {"label", "TEXT", "name of the relay in the output (default 'relay')"},
    {"streams", "K", "calls, one RTP stream each on leg A (default 100)"},
    {"stream-pps", "R", "instead of a fixed --streams: ceil(rate / R) calls per trial, so each "
                        "stream carries R pps (50 = G.711 at 20 ms)"},
    {"max-streams", "K", "cap for --stream-pps (default 4000; the relay needs ~4 ports each)"},
    {"pps", "R", "total packets/s (the start rate with --search; default 10000)"},
    {"seconds", "T", "duration of each trial (default 3)"},
    {"gen-addr", "IP", "source address of the generator (required)"},
    {"gen-netns", "NAME", "network namespace of the generator sockets"},
    {"gen-threads", "N", "sender threads, one socket each (default 1)"},
    {"gen-cpus", "LIST", "pin sender threads to these CPUs, e.g. 0 or 0,2"},
    {"gen-mode", "udp|packet", "generator transmit: udp sockets (default), or Ethernet frames "
                               "through AF_PACKET (skips the UDP/IP stack; needs root)"},
    kPayloadOption,
    kPtimeOption,
    {"sink-addr", "IP", "address the sink listens on (required)"},
    {"sink-port", "PORT", "sink port (default: any free port)"},
    {"sink-netns", "NAME", "network namespace of the sink socket"},
    {"sink-cpu", "CPU", "pin the sink thread to this CPU"},
    {"sink-mode", "udp|xdp", "count at the sink socket (default), or in an XDP program on the "
                             "sink's device, for rates a socket cannot take (root)"},
    {"sink-dev", "DEV", "--sink-mode xdp: device to attach to (default: the one that has "
                        "--sink-addr, in --sink-netns)"},
    {"direction", "A,B", "direction=[A,B] in offers: interface facing gen, facing sink"},
    {"relay-pid", "PID", "measure the relay's CPU time (ns per forwarded packet)"},
    {"relay-sockets-pid", "PID", "a process in the relay's network namespace, whose "
                                 "/proc/PID/net/udp gives the relay's socket drops per trial "
                                 "(default: --relay-pid)"},
    {"search", "MIN:MAX", "find the highest rate with loss below --loss-max (bisection)"},
    {"loss-max", "PCT", "loss threshold in percent for --search (default 0.1)"},
    {"latency-max-ms", "MS", "after the loss-only search, also find the highest rate whose p99 "
                             "one-way latency stays below MS (reuses the trials made so far)"},
    {"max-trials", "N", "trial limit for --search (default 12)"},
    {"budget", "S", "time limit for all trials of --search (default 170)"},
    {"resolution", "PCT", "stop bisecting when the bracket is this narrow (default 5)"},
    {"warmup", "S", "seconds of low-rate traffic before measuring (default 1; 0 = none)"},
    {"expect-zero-loss", "", "exit 1 unless every packet of the (single) trial arrived"},
    {"tick-us", "US", "generator pacing tick (default 1000)"},
    {"batch", "N", "packets per sendmmsg (default 64)"},
    {"setup-window", "W", "ng requests in flight while setting up calls (default 32)"},
    {"per-stream", "", "list every stream with an anomaly in the JSON"},
    {"json", "", "print one JSON object instead of text"},
    {"help", "", "this text"},
};

struct RelayConfig {
  SockAddr ng;
  bool direct = false;  // no ng: the sink address is every stream's destination
  std::string ng_netns;
  std::string label;
  size_t streams = 100;
  double stream_pps = 0;  // > 0: streams per trial follow the rate
  size_t max_streams = 4000;
  double pps = 10000;
  double seconds = 3;
  IpAddr gen_addr;
  std::string gen_netns;
  size_t gen_threads = 1;
  std::vector<int> gen_cpus;
  GenMode gen_mode = GenMode::kUdp;
  ProbeShape shape;
  IpAddr sink_addr;
  uint16_t sink_port = 0;
  std::string sink_netns;
  int sink_cpu = -1;
  SinkMode sink_mode = SinkMode::kUdp;
  std::string sink_dev;
  std::vector<std::string> direction;
  pid_t relay_pid = 0;
  pid_t relay_sockets_pid = 0;  // /proc/PID/net/udp: UDP receive drops in the relay's namespace
  bool search = false;
  double search_min = 0;
  double search_max = 0;
  double loss_max_pct = 0.1;
  double latency_max_us = 0;  // 0: no latency-bounded search
  int max_trials = 12;
  double budget = 170;
  double resolution_pct = 5;
  double warmup = 1;
  bool expect_zero_loss = false;
  int64_t tick_ns = kNsPerMs;
  int batch = 64;
  size_t setup_window = 32;

  size_t streamsFor(double rate) const {
    if (stream_pps <= 0) {
      return streams;
    }
    const double k = std::ceil(rate / stream_pps);
    return static_cast<size_t>(std::clamp(k, 1.0, static_cast<double>(max_streams)));
  }
  bool per_stream = false;
  bool json = false;
};

struct StreamAnomaly {
  size_t stream = 0;
  uint64_t sent = 0;
  uint64_t received = 0;
  uint64_t duplicates = 0;
  uint64_t reordered = 0;
  uint64_t wrong_source = 0;
};

struct Trial {
  double target_pps = 0;
  size_t streams = 0;
  GenResult gen;
  SinkTotals sink;
  uint64_t lost = 0;
  double loss_pct = 0;
  std::optional<uint64_t> relay_cpu_ns;
  double wall_seconds = 0;  // generator start to end of drain
  std::optional<uint64_t> backlog_drops;
  std::optional<uint64_t> relay_socket_drops;  // full receive buffers in the relay's namespace
  std::optional<double> other_cpu_util;  // cores used by other processes during the trial
  bool pass = false;
  bool gen_limited = false;
  std::vector<StreamAnomaly> anomalies;
  size_t streams_with_loss = 0;
  size_t streams_dead = 0;  // sent to, but nothing at all arrived

  std::optional<double> nsPerPacket() const {
    if (!relay_cpu_ns || sink.received == 0) {
      return std::nullopt;
    }
    return static_cast<double>(*relay_cpu_ns) / static_cast<double>(sink.received);
  }
  std::optional<double> relayCpuUtil() const {
    if (!relay_cpu_ns || wall_seconds <= 0) {
      return std::nullopt;
    }
    return static_cast<double>(*relay_cpu_ns) / (wall_seconds * kNsPerSec);
  }
};

Result<RelayConfig> parseRelayConfig(const Args& a) {
  RelayConfig c;
  c.direct = a.has("direct");
  auto ng = SockAddr::parse(a.str("ng"));
  auto gen = IpAddr::parse(a.str("gen-addr"));
  auto sink = IpAddr::parse(a.str("sink-addr"));
  if ((!ng && !c.direct) || !gen || !sink) {
    return XEMS_INVALID(
        "--ng (unless --direct), --gen-addr and --sink-addr are required and must be addresses");
  }
  if (ng && c.direct) {
    return XEMS_INVALID("--direct sets up no calls: leave out --ng");
  }
  if (ng) {
    c.ng = *ng;
  }
  c.gen_addr = *gen;
  c.sink_addr = *sink;
  c.ng_netns = a.str("ng-netns");
  c.gen_netns = a.str("gen-netns");
  const auto gen_mode = parseGenMode(a.str("gen-mode", "udp"));
  if (!gen_mode) {
    return XEMS_INVALID("--gen-mode must be udp or packet");
  }
  c.gen_mode = *gen_mode;
  auto shape = parseProbeShape(a);
  if (!shape.ok()) {
    return shape.error();
  }
  c.shape = *shape;
  c.sink_netns = a.str("sink-netns");
  const auto sink_mode = parseSinkMode(a.str("sink-mode", "udp"));
  if (!sink_mode) {
    return XEMS_INVALID("--sink-mode must be udp or xdp");
  }
  c.sink_mode = *sink_mode;
  c.sink_dev = a.str("sink-dev");
  c.label = a.str("label", "relay");
  auto streams = a.integer("streams", 100);
  auto pps = a.number("pps", 10000);
  auto seconds = a.number("seconds", 3);
  auto threads = a.integer("gen-threads", 1);
  auto sink_port = a.integer("sink-port", 0);
  auto sink_cpu = a.integer("sink-cpu", -1);
  auto pid = a.integer("relay-pid", 0);
  auto sockets_pid = a.integer("relay-sockets-pid", 0);
  auto loss = a.number("loss-max", 0.1);
  auto latency_ms = a.number("latency-max-ms", 0);
  auto trials = a.integer("max-trials", 12);
  auto budget = a.number("budget", 170);
  auto resolution = a.number("resolution", 5);
  auto warmup = a.number("warmup", 1);
  auto tick = a.integer("tick-us", 1000);
  auto batch = a.integer("batch", 64);
  auto window = a.integer("setup-window", 32);
  auto stream_pps = a.number("stream-pps", 0);
  auto max_streams = a.integer("max-streams", 4000);
  for (const auto* r : {&streams, &threads, &sink_port, &sink_cpu, &pid, &sockets_pid, &trials,
                        &tick, &batch, &window, &max_streams}) {
    if (!r->ok()) {
      return r->error();
    }
  }
  for (const auto* r :
       {&pps, &seconds, &loss, &budget, &resolution, &warmup, &stream_pps, &latency_ms}) {
    if (!r->ok()) {
      return r->error();
    }
  }
  if (*streams < 1 || *streams > 100000 || *pps <= 0 || *seconds <= 0 || *seconds > 3600 ||
      *threads < 1 || *threads > 64 || *sink_port < 0 || *sink_port > 65535 || *trials < 1 ||
      *tick < 50 || *batch < 1 || *batch > 1024 || *window < 1 || *warmup < 0 || *loss < 0 ||
      *stream_pps < 0 || *max_streams < 1 || *max_streams > 100000 || *latency_ms < 0) {
    return XEMS_INVALID("option out of range");
  }
  c.streams = static_cast<size_t>(*streams);
  c.stream_pps = *stream_pps;
  c.max_streams = static_cast<size_t>(*max_streams);
  c.pps = *pps;
  c.seconds = *seconds;
  c.gen_threads = static_cast<size_t>(*threads);
  c.sink_port = static_cast<uint16_t>(*sink_port);
  c.sink_cpu = static_cast<int>(*sink_cpu);
  c.relay_pid = static_cast<pid_t>(*pid);
  c.relay_sockets_pid = *sockets_pid > 0 ? static_cast<pid_t>(*sockets_pid) : c.relay_pid;
  c.loss_max_pct = *loss;
  c.latency_max_us = *latency_ms * 1000;
  c.max_trials = static_cast<int>(*trials);
  c.budget = *budget;
  c.resolution_pct = *resolution;
  c.warmup = *warmup;
  c.tick_ns = *tick * 1000;
  c.batch = static_cast<int>(*batch);
  c.setup_window = static_cast<size_t>(*window);
  c.expect_zero_loss = a.has("expect-zero-loss");
  c.per_stream = a.has("per-stream");
  c.json = a.has("json");
  if (a.has("gen-cpus")) {
    for (std::string_view s : splitList(a.str("gen-cpus"), ',')) {
      auto cpu = parseInt(s);
      if (!cpu.ok() || *cpu < 0) {
        return XEMS_INVALID("--gen-cpus: bad CPU list");
      }
      c.gen_cpus.push_back(static_cast<int>(*cpu));
    }
  }
  if (a.has("direction")) {
    for (std::string_view d : splitList(a.str("direction"), ',')) {
      c.direction.emplace_back(d);
    }
    if (c.direction.size() != 2) {
      return XEMS_INVALID("--direction needs two interface names, A,B");
    }
  }
  if (a.has("search")) {
    const auto parts = splitList(a.str("search"), ':');
    if (parts.size() != 2) {
      return XEMS_INVALID("--search needs MIN:MAX");
    }
    auto lo = parseDouble(parts[0]);
    auto hi = parseDouble(parts[1]);
    if (!lo.ok() || !hi.ok() || *lo <= 0 || *hi < *lo) {
      return XEMS_INVALID("--search needs 0 < MIN <= MAX");
    }
    c.search = true;
    c.search_min = *lo;
    c.search_max = *hi;
    c.pps = std::clamp(c.pps, c.search_min, c.search_max);
  }
  if (c.expect_zero_loss && c.search) {
    return XEMS_INVALID("--expect-zero-loss applies to a single trial, not to --search");
  }
  return c;
}

// offer (from the generator side) -> answer (from the sink side); delete as cleanup.
class RelayCalls : public JobSpec {
 public:
  RelayCalls(const RelayConfig& cfg, std::vector<SockAddr> gen_locals, SockAddr sink_local,
             std::string prefix)
      : gen_locals_(std::move(gen_locals)),
        sink_local_(sink_local),
        prefix_(std::move(prefix)) {
    options_.direction = cfg.direction;
    options_.caller_proxy = cfg.gen_addr;
    options_.callee_proxy = cfg.sink_addr;
    ptime_ms_ = cfg.shape.ptime_ms;
  }

  int steps() const override { return 2; }
  std::string_view stepName(int step) const override { return step == 0 ? "offer" : "answer"; }
  int cleanupStep() const override { return 2; }

  // Every trial runs on a fresh set of calls (round), so damage an overload did to the relay's
  // streams in one trial (rtpengine stops reading a socket for good after repeated receive-queue
  // overruns) cannot spill into the next one.
  void startRound(uint32_t round, size_t calls) {
    round_ = round;
    leg_a_.assign(calls, SockAddr());
    leg_b_.assign(calls, SockAddr());
    established_.assign(calls, false);
  }
  size_t calls() const { return established_.size(); }

  CallIdentity identity(size_t i) const {
    return CallIdentity{.call_id = fmt::format("xp-relay-{}-{}-{}", prefix_, round_, i),
                        .from_tag = fmt::format("gen{}-{}-{}", prefix_, round_, i),
                        .to_tag = fmt::format("sink{}-{}-{}", prefix_, round_, i),
                        .via_branch = fmt::format("z9hG4bKxp{}{}x{}", prefix_, round_, i)};
  }

  void buildRequest(size_t job, int step, std::string& out) override {
    const CallIdentity call = identity(job);
    if (step == 0) {
      const SockAddr& g = gen_locals_[job % gen_locals_.size()];
      const std::string sdp = makePhoneSdp(
          SdpParams{.address = g.ip(),
                    .port = g.port(),
                    .session_id = 3'000'000'000ull + round_ * 100'000ull + job,
                    .user = "gen",
                    .ptime_ms = ptime_ms_});
      buildOfferRequest(call, sdp, options_, out);
    } else if (step == 1) {
      const std::string sdp = makePhoneSdp(SdpParams{.address = sink_local_.ip(),
                                                     .port = sink_local_.port(),
                                                     .session_id = 4'000'000'000ull +
                                                                   round_ * 100'000ull + job,
                                                     .user = "sink",
                                                     .ptime_ms = ptime_ms_});
      buildAnswerRequest(call, sdp, options_, out);
    } else {
      buildDeleteRequest(call, out);
    }
  }

  bool onReply(size_t job, int step, const BValue& reply) override {
    const auto sdp = reply.findString("sdp");
    if (!sdp) {
      return false;
    }
    const auto ep = firstAudioEndpoint(*sdp);
    if (!ep || ep->port() == 0) {
      return false;
    }
    if (step == 0) {
      leg_b_[job] = *ep;  // the offer goes to the sink: the relay sends from here
    } else {
      leg_a_[job] = *ep;  // the answer goes to the generator: send here
      established_[job] = true;
    }
    return true;
  }

  const std::vector<SockAddr>& legA() const { return leg_a_; }
  const std::vector<SockAddr>& legB() const { return leg_b_; }
  bool established(size_t i) const { return established_[i]; }

 private:
  std::vector<SockAddr> gen_locals_;
  SockAddr sink_local_;
  std::string prefix_;
  uint32_t round_ = 0;
  uint32_t ptime_ms_ = 20;
  CallRequestOptions options_;
  std::vector<SockAddr> leg_a_;
  std::vector<SockAddr> leg_b_;
  std::vector<bool> established_;
};

// Deletes the established calls.
class RelayTeardown : public JobSpec {
 public:
  RelayTeardown(const RelayCalls& calls, std::vector<size_t> which)
      : calls_(calls), which_(std::move(which)) {}
  int steps() const override { return 1; }
  std::string_view stepName(int) const override { return "delete"; }
  void buildRequest(size_t job, int, std::string& out) override {
    buildDeleteRequest(calls_.identity(which_[job]), out);
  }

 private:
  const RelayCalls& calls_;
  std::vector<size_t> which_;
};

void mergeRunStats(RunStats& into, RunStats&& from) {
  into.jobs_started += from.jobs_started;
  into.jobs_completed += from.jobs_completed;
  into.jobs_failed += from.jobs_failed;
  into.seconds += from.seconds;
  into.retransmits += from.retransmits;
  into.stray_replies += from.stray_replies;
  if (into.steps.empty()) {
    into.steps = std::move(from.steps);
    return;
  }
  for (size_t i = 0; i < into.steps.size() && i < from.steps.size(); ++i) {
    StepStats& a = into.steps[i];
    StepStats& b = from.steps[i];
    a.sent += b.sent;
    a.ok += b.ok;
    a.errors += b.errors;
    a.timeouts += b.timeouts;
    a.latencies_ns.insert(a.latencies_ns.end(), b.latencies_ns.begin(), b.latencies_ns.end());
    for (auto& [reason, n] : b.error_reasons) {
      a.error_reasons[reason] += n;
    }
  }
}

void pinSelf(int cpu) {
  if (cpu < 0) {
    return;
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  (void)pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

class RelayBench {
 public:
  RelayBench(const RelayConfig& cfg, Generator& gen, SinkBackend& sink)
      : cfg_(cfg), gen_(gen), sink_(sink) {}

  // Where the relay must send each stream from (its leg-B address), for the source check.
  void setSources(std::vector<SockAddr> sources) { sources_ = std::move(sources); }

  Trial runTrial(double pps, double seconds) {
    Trial t;
    t.target_pps = pps;
    const uint32_t run_id = ++run_id_;
    const size_t streams = gen_.streams();
    t.streams = streams;
    const double per_stream = std::ceil(pps * seconds / static_cast<double>(streams));
    const uint32_t max_seq = static_cast<uint32_t>(
        std::min(per_stream + static_cast<double>(cfg_.batch) + 64.0, 4.0e9));
    sink_.prepare(run_id, streams, max_seq, sources_);
    std::atomic<bool> stop{false};
    std::thread sink_thread([&] {
      pinSelf(cfg_.sink_cpu);
      sink_.run(stop);
    });

    const auto cpu0 = cfg_.relay_pid > 0 ? processCpuNs(cfg_.relay_pid) : std::nullopt;
    const auto drops0 = softnetDrops();
    const auto rdrops0 =
        cfg_.relay_sockets_pid > 0 ? udpSocketDrops(cfg_.relay_sockets_pid) : std::nullopt;
    const auto busy0 = hostBusyNs();
    const auto self0 = processCpuNs(::getpid());
    const int64_t t0 = monoNs();
    t.gen = gen_.run(GenRunConfig{.pps = pps,
                                  .seconds = seconds,
                                  .run_id = run_id,
                                  .tick_ns = cfg_.tick_ns,
                                  .batch = cfg_.batch,
                                  .cpus = cfg_.gen_cpus});
    // Drain: until the sink has been quiet for 150 ms, at most 2 s.
    const int64_t gen_end = monoNs();
    for (;;) {
      const int64_t now = monoNs();
      const int64_t last = std::max(sink_.lastRxNs(), gen_end);
      if (now - last >= 150 * kNsPerMs || now - gen_end >= 2 * kNsPerSec) {
        break;
      }
      timespec ts{0, 10 * kNsPerMs};
      ::nanosleep(&ts, nullptr);
    }
    const int64_t t1 = monoNs();
    const auto cpu1 = cfg_.relay_pid > 0 ? processCpuNs(cfg_.relay_pid) : std::nullopt;
    const auto drops1 = softnetDrops();
    const auto rdrops1 =
        cfg_.relay_sockets_pid > 0 ? udpSocketDrops(cfg_.relay_sockets_pid) : std::nullopt;
    const auto busy1 = hostBusyNs();
    const auto self1 = processCpuNs(::getpid());
    stop.store(true);
    sink_thread.join();

    t.wall_seconds = static_cast<double>(t1 - t0) / kNsPerSec;
    if (cpu0 && cpu1) {
      t.relay_cpu_ns = *cpu1 - *cpu0;
    }
    if (drops0 && drops1) {
      t.backlog_drops = *drops1 - *drops0;
    }
    if (rdrops0.has_value() && rdrops1.has_value()) {
      const uint64_t before = rdrops0.value_or(0);
      const uint64_t after = rdrops1.value_or(0);
      // Sockets closed meanwhile take their drops with them: never report a negative count.
      t.relay_socket_drops = after >= before ? after - before : 0;
    }
    if (busy0 && busy1 && self0 && self1 && t.relay_cpu_ns && t.wall_seconds > 0) {
      // Everything else that ran on the host meanwhile: builds, other tests. Tick-sampled, so
      // small values are noise; above ~0.1 cores the trial competed for CPU.
      const double other = static_cast<double>(*busy1 - *busy0) -
                           static_cast<double>(*self1 - *self0) -
                           static_cast<double>(*t.relay_cpu_ns);
      t.other_cpu_util = std::max(0.0, other) / (t.wall_seconds * kNsPerSec);
    }
    t.sink = sink_.totals();
    const std::vector<uint64_t> sent = gen_.sentPerStream();
    const auto& rx = sink_.streams();
    for (size_t i = 0; i < sent.size() && i < rx.size(); ++i) {
      const uint64_t lost = sent[i] > rx[i].received ? sent[i] - rx[i].received : 0;
      t.lost += lost;
      if (lost > 0) {
        ++t.streams_with_loss;
      }
      if (sent[i] > 0 && rx[i].received == 0) {
        ++t.streams_dead;
      }
      if (lost > 0 || rx[i].duplicates > 0 || rx[i].reordered > 0 || rx[i].wrong_source > 0) {
        if (t.anomalies.size() < 1000) {
          t.anomalies.push_back(StreamAnomaly{.stream = i,
                                              .sent = sent[i],
                                              .received = rx[i].received,
                                              .duplicates = rx[i].duplicates,
                                              .reordered = rx[i].reordered,
                                              .wrong_source = rx[i].wrong_source});
        }
      }
    }
    t.loss_pct = t.gen.sent > 0
                     ? 100.0 * static_cast<double>(t.lost) / static_cast<double>(t.gen.sent)
                     : 100.0;
    t.pass = t.gen.sent > 0 && (t.lost == 0 || t.loss_pct < cfg_.loss_max_pct);
    t.gen_limited = t.gen.offered_pps < 0.97 * pps;
    return t;
  }

 private:
  const RelayConfig& cfg_;
  Generator& gen_;
  SinkBackend& sink_;
  std::vector<SockAddr> sources_;
  uint32_t run_id_ = 0;
};

nlohmann::json optJson(const std::optional<double>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

nlohmann::json trialJson(const Trial& t, bool per_stream) {
  nlohmann::json j = {
      {"target_pps", t.target_pps},
      {"streams", t.streams},
      {"offered_pps", t.gen.offered_pps},
      {"sent", t.gen.sent},
      {"wanted", t.gen.wanted},
      {"received", t.sink.received},
      {"lost", t.lost},
      {"loss_pct", t.loss_pct},
      {"duplicates", t.sink.duplicates},
      {"reordered", t.sink.reordered},
      {"wrong_source", t.sink.wrong_source},
      {"foreign", t.sink.foreign},
      {"stale", t.sink.stale},
      {"streams_with_loss", t.streams_with_loss},
      {"streams_dead", t.streams_dead},
      {"sink_socket_drops", t.sink.socket_drops},
      {"host_backlog_drops", t.backlog_drops ? nlohmann::json(*t.backlog_drops) : nullptr},
      {"relay_socket_drops",
       t.relay_socket_drops ? nlohmann::json(*t.relay_socket_drops) : nullptr},
      {"gen_would_block", t.gen.would_block},
      {"gen_send_errors", t.gen.send_errors},
      {"gen_late_ticks", t.gen.late_ticks},
      {"latency_p50_us", t.sink.latency_p50_us},
      {"latency_p99_us", t.sink.latency_p99_us},
      {"latency_max_us", t.sink.latency_max_us},
      {"jitter_mean_us", t.sink.jitter_mean_us},
      {"jitter_max_us", t.sink.jitter_max_us},
      {"relay_cpu_ns", t.relay_cpu_ns ? nlohmann::json(*t.relay_cpu_ns) : nullptr},
      {"relay_cpu_util", optJson(t.relayCpuUtil())},
      {"other_cpu_util", optJson(t.other_cpu_util)},
      {"ns_per_packet", optJson(t.nsPerPacket())},
      {"wall_seconds", t.wall_seconds},
      {"pass", t.pass},
      {"generator_limited", t.gen_limited},
  };
  if (!t.gen.error.empty()) {
    j["gen_error"] = t.gen.error;
  }
  if (!t.sink.error.empty()) {
    j["sink_error"] = t.sink.error;
  }
  if (per_stream) {
    nlohmann::json a = nlohmann::json::array();
    for (const StreamAnomaly& s : t.anomalies) {
      a.push_back({{"stream", s.stream},
                   {"sent", s.sent},
                   {"received", s.received},
                   {"duplicates", s.duplicates},
                   {"reordered", s.reordered},
                   {"wrong_source", s.wrong_source}});
    }
    j["anomalies"] = a;
  }
  return j;
}

nlohmann::json stepsJson(RunStats& r) {
  nlohmann::json j = {{"seconds", r.seconds}, {"completed", r.jobs_completed},
                      {"failed", r.jobs_failed}, {"retransmits", r.retransmits}};
  for (StepStats& s : r.steps) {
    const LatencySummary l = summarize(s.latencies_ns);
    nlohmann::json reasons = nlohmann::json::object();
    for (const auto& [text, n] : s.error_reasons) {
      reasons[text] = n;
    }
    j[s.name] = {{"ok", s.ok},         {"errors", s.errors}, {"timeouts", s.timeouts},
                 {"p50_us", l.p50_us}, {"p99_us", l.p99_us}, {"error_reasons", reasons}};
  }
  return j;
}

std::string fmtOpt(const std::optional<double>& v, const char* spec) {
  return v ? fmt::format(fmt::runtime(spec), *v) : std::string("-");
}

// What a trial must achieve to count as sustained.
struct Criterion {
  double loss_max_pct = 0.1;
  double p99_max_us = 0;  // 0: no latency bound
};

bool passes(const Trial& t, const Criterion& c) {
  if (t.gen.sent == 0) {
    return false;
  }
  const bool loss_ok = t.lost == 0 || t.loss_pct < c.loss_max_pct;
  const bool latency_ok = c.p99_max_us <= 0 || t.sink.latency_p99_us <= c.p99_max_us;
  return loss_ok && latency_ok;
}

struct SearchContext {
  const RelayConfig& cfg;
  std::vector<Trial>& trials;
  std::function<const Trial*(double)> run;  // nullptr: the calls could not be set up
  const double& last_setup_seconds;
};

struct SearchOutcome {
  std::optional<size_t> best;  // index into trials: highest offered rate that passed
  std::string stop_reason;
  bool failed = false;
};

// Bisection for the highest passing rate: doubles from the start rate until a trial fails, then
// halves the bracket. Trials already in ctx.trials seed the bracket, so a second search with a
// stricter criterion only adds the trials it needs. Bounded by max_new_trials and `deadline`.
SearchOutcome bisect(SearchContext& ctx, const Criterion& crit, int64_t deadline,
                     int max_new_trials) {
  const RelayConfig& cfg = ctx.cfg;
  SearchOutcome out;
  std::optional<double> lo;
  std::optional<double> hi;
  auto consider = [&](size_t i) {
    const Trial& t = ctx.trials[i];
    if (passes(t, crit)) {
      lo = lo ? std::max(*lo, t.target_pps) : t.target_pps;
      if (!out.best || t.gen.offered_pps > ctx.trials[*out.best].gen.offered_pps) {
        out.best = i;
      }
    }
  };
  for (size_t i = 0; i < ctx.trials.size(); ++i) {
    consider(i);
  }
  for (const Trial& t : ctx.trials) {
    // Noise can make a lower rate fail after a higher one passed: only failures above the
    // highest pass bound the bracket.
    if (!passes(t, crit) && (!lo || t.target_pps > *lo)) {
      hi = hi ? std::min(*hi, t.target_pps) : t.target_pps;
    }
  }
  auto narrow = [&] { return lo && hi && (*hi - *lo) <= *lo * cfg.resolution_pct / 100; };
  auto next = [&](double current) {
    if (lo && hi) {
      return (*lo + *hi) / 2;
    }
    if (lo) {
      return std::min(*lo * 2, cfg.search_max);
    }
    if (hi) {
      return *hi / 2;
    }
    return current;
  };
  double rate = next(cfg.pps);
  for (int n = 0;; ++n) {
    if (out.best && ctx.trials[*out.best].gen_limited) {
      out.stop_reason = "generator limit (the harness, not the relay, is the bottleneck)";
      break;
    }
    if (narrow()) {
      out.stop_reason = "bracket narrower than the resolution";
      break;
    }
    if (lo && !hi && *lo >= cfg.search_max) {
      out.stop_reason = "reached the search maximum";
      break;
    }
    if (rate < cfg.search_min) {
      out.stop_reason = "fails already at the search minimum";
      break;
    }
    if (n >= max_new_trials) {
      out.stop_reason = "trial limit";
      break;
    }
    const double needed = cfg.seconds + 3 * ctx.last_setup_seconds + 1.5;
    if (monoNs() + static_cast<int64_t>(needed * kNsPerSec) > deadline) {
      out.stop_reason = "time budget";
      break;
    }
    if (!ctx.trials.empty()) {
      timespec pause{0, 300 * kNsPerMs};  // let the relay's queues empty between trials
      ::nanosleep(&pause, nullptr);
    }
    const Trial* t = ctx.run(rate);
    if (t == nullptr) {
      out.failed = true;
      out.stop_reason = "call setup failed";
      break;
    }
    if (passes(*t, crit)) {
      lo = rate;
      consider(ctx.trials.size() - 1);
    } else {
      hi = rate;
    }
    rate = next(rate);
  }
  return out;
}

nlohmann::json resultJson(const std::vector<Trial>& trials, const std::optional<size_t>& best,
                          const std::string& stop_reason) {
  if (!best) {
    return {{"max_pps", nullptr}, {"stop_reason", stop_reason}};
  }
  const Trial& b = trials[*best];
  return {{"max_pps", b.gen.offered_pps},
          {"streams", b.streams},
          {"target_pps", b.target_pps},
          {"loss_pct", b.loss_pct},
          {"latency_p99_us", b.sink.latency_p99_us},
          {"ns_per_packet", optJson(b.nsPerPacket())},
          {"relay_cpu_util", optJson(b.relayCpuUtil())},
          {"other_cpu_util", optJson(b.other_cpu_util)},
          {"generator_limited", b.gen_limited},
          {"trial", *best},
          {"stop_reason", stop_reason}};
}

void printResult(const std::vector<Trial>& trials, const std::optional<size_t>& best,
                 std::string_view what, const std::string& stop_reason) {
  if (!best) {
    fmt::print("  result ({}): no passing rate; stopped: {}\n", what, stop_reason);
    return;
  }
  const Trial& b = trials[*best];
  fmt::print("  result ({}): {:.0f} pps over {} calls, loss {:.3f} %, p99 {:.0f} us, relay {} "
             "ns/packet at {} cores{}; stopped: {}\n",
             what, b.gen.offered_pps, b.streams, b.loss_pct, b.sink.latency_p99_us,
             fmtOpt(b.nsPerPacket(), "{:.0f}"), fmtOpt(b.relayCpuUtil(), "{:.2f}"),
             b.gen_limited ? " (generator-limited: a lower bound)" : "", stop_reason);
}

void printTrialHeader() {
  fmt::print("  {:>6} {:>9} {:>9} {:>9} {:>9} {:>8} {:>7} {:>5} {:>5} {:>7} {:>5} {:>5} {:>8} "
             "{}\n",
             "calls", "target", "offered", "sent", "received", "lost", "loss%", "dup", "reord",
             "ns/pkt", "cpu%", "oth%", "p99 us", "verdict");
}

void printTrial(const Trial& t, std::string_view tag) {
  const auto util = t.relayCpuUtil();
  fmt::print("  {:>6} {:>9.0f} {:>9.0f} {:>9} {:>9} {:>8} {:>7.3f} {:>5} {:>5} {:>7} {:>5} {:>5} "
             "{:>8.0f} {}{}{}\n",
             t.streams, t.target_pps, t.gen.offered_pps, t.gen.sent, t.sink.received, t.lost,
             t.loss_pct, t.sink.duplicates, t.sink.reordered, fmtOpt(t.nsPerPacket(), "{:.0f}"),
             util ? fmt::format("{:.0f}", *util * 100) : std::string("-"),
             t.other_cpu_util ? fmt::format("{:.0f}", *t.other_cpu_util * 100) : std::string("-"),
             t.sink.latency_p99_us,
             t.pass ? "pass" : "FAIL", t.gen_limited ? " (generator-limited)" : "", tag);
}

// One line per trial on stderr while a --json run goes on (stdout carries only the JSON).
void printProgress(std::string_view label, size_t n, const Trial& t) {
  fmt::print(stderr,
             "xems-perf relay [{}] trial {}: target {:.0f} pps, offered {:.0f}, {} streams, "
             "loss {:.3f} %, p99 {:.2f} ms, jitter {:.3f} ms -> {}{}\n",
             label, n, t.target_pps, t.gen.offered_pps, t.streams, t.loss_pct,
             t.sink.latency_p99_us / 1000, t.sink.jitter_mean_us / 1000, t.pass ? "pass" : "FAIL",
             t.gen_limited ? " (generator-limited)" : "");
  if (t.lost > 0) {
    // Where it went, as far as counters say; the rest was lost on the way (veths, relay logic).
    fmt::print(stderr, "  lost {}: relay sockets {}, sink socket {}, host backlog {}\n", t.lost,
               t.relay_socket_drops ? fmt::format("{}", *t.relay_socket_drops) : "n/a",
               t.sink.socket_drops,
               t.backlog_drops ? fmt::format("{}", *t.backlog_drops) : "n/a");
  }
}

}  // namespace

int runRelay(int argc, char** argv, int first) {
  auto args = Args::parse(argc, argv, first, kRelayOptions);
  if (!args.ok() || args->has("help")) {
    if (!args.ok()) {
      fmt::print(stderr, "xems-perf relay: {}\n", args.error().message);
    }
    fmt::print(stderr, "{}",
               Args::usage("relay", "RTP through a relay set up over ng, with exact loss counts",
                           kRelayOptions));
    return args.ok() ? kExitOk : kExitUsage;
  }
  auto parsed = parseRelayConfig(*args);
  if (!parsed.ok()) {
    fmt::print(stderr, "xems-perf relay: {}\n", parsed.error().message);
    return kExitUsage;
  }
  const RelayConfig& cfg = *parsed;
  const bool text = !cfg.json;

  // Sockets first: their ports go into the SDP.
  auto sink_fd = openUdp(cfg.sink_netns, SockAddr(cfg.sink_addr, cfg.sink_port),
                         UdpSocketOptions{.rcvbuf = 64 << 20, .rx_overflow_counter = true});
  if (!sink_fd.ok()) {
    fmt::print(stderr, "xems-perf relay: sink: {}\n", sink_fd.error().message);
    return kExitUsage;
  }
  auto sink_local = localAddress(sink_fd->get());
  if (!sink_local.ok()) {
    fmt::print(stderr, "xems-perf relay: sink: {}\n", sink_local.error().message);
    return kExitUsage;
  }
  std::vector<UniqueFd> gen_fds;
  std::vector<SockAddr> gen_locals;
  for (size_t t = 0; t < cfg.gen_threads; ++t) {
    auto fd = openUdp(cfg.gen_netns, SockAddr(cfg.gen_addr, 0),
                      UdpSocketOptions{.sndbuf = 8 << 20});
    if (!fd.ok()) {
      fmt::print(stderr, "xems-perf relay: generator: {}\n", fd.error().message);
      return kExitUsage;
    }
    auto local = localAddress(fd->get());
    if (!local.ok()) {
      fmt::print(stderr, "xems-perf relay: generator: {}\n", local.error().message);
      return kExitUsage;
    }
    gen_locals.push_back(*local);
    gen_fds.push_back(std::move(fd).value());
  }
  // No control socket in --direct mode: the streams are routed, not relayed.
  std::optional<NgClient> client;
  if (!cfg.direct) {
    auto created = NgClient::create(cfg.ng, cfg.ng_netns, NgClientOptions{});
    if (!created.ok()) {
      fmt::print(stderr, "xems-perf relay: {}\n", created.error().message);
      return kExitUsage;
    }
    client.emplace(std::move(created).value());
  }

  std::random_device rd;
  RelayCalls calls(cfg, gen_locals, *sink_local, fmt::format("{:08x}", rd()));
  if (text) {
    fmt::print("relay benchmark [{}]: {} streams {} gen {} -> sink {}\n", cfg.label,
               cfg.direct ? std::string("direct (no relay control)")
                          : "ng " + cfg.ng.toString(),
               cfg.stream_pps > 0 ? fmt::format("rate / {}", cfg.stream_pps)
                                  : fmt::format("{}", cfg.streams),
               gen_locals.front().toString(),
               sink_local->toString());
  }
  Generator gen(std::move(gen_fds), std::vector<SockAddr>(), rd());
  gen.setShape(cfg.shape.payload, cfg.shape.tsStep());
  if (cfg.gen_mode == GenMode::kPacket) {
    if (auto st = gen.usePacketMode(cfg.gen_netns); !st.ok()) {
      fmt::print(stderr, "xems-perf relay: generator: {}\n", st.error().message);
      return kExitUsage;
    }
  }
  auto sink = makeSink(cfg.sink_mode, std::move(sink_fd).value(),
                       XdpSinkOptions{.netns = cfg.sink_netns, .device = cfg.sink_dev});
  if (!sink.ok()) {
    fmt::print(stderr, "xems-perf relay: sink: {}\n", sink.error().message);
    return kExitUsage;
  }
  RelayBench bench(cfg, gen, **sink);

  RunStats setup_total;
  RunStats down_total;
  uint32_t round = 0;
  bool calls_up = false;
  std::string setup_error;
  // Sets up a fresh set of K calls and points the generator and the source check at them.
  double last_setup_seconds = 0;
  auto setupRound = [&](size_t k) {
    if (cfg.direct) {
      // Kernel forwarding keeps addresses: the sink sees each stream from its generator socket.
      ++round;
      std::vector<SockAddr> sources;
      for (size_t i = 0; i < k; ++i) {
        sources.push_back(gen_locals[i % gen_locals.size()]);
      }
      if (auto st = gen.setDestinations(std::vector<SockAddr>(k, *sink_local), rd()); !st.ok()) {
        setup_error = st.error().message;
        return false;
      }
      bench.setSources(std::move(sources));
      return true;
    }
    calls.startRound(++round, k);
    RunStats s = runJobs(client.value(), calls, k, cfg.setup_window, 120);
    last_setup_seconds = s.seconds;
    size_t ok = 0;
    for (size_t i = 0; i < k; ++i) {
      ok += calls.established(i) ? 1 : 0;
    }
    calls_up = true;
    if (ok != k) {
      setup_error = fmt::format("only {} of {} calls set up", ok, k);
      for (const StepStats& st : s.steps) {
        for (const auto& [reason, n] : st.error_reasons) {
          setup_error += fmt::format("; {}: {} x '{}'", st.name, n, reason);
        }
        if (st.timeouts > 0) {
          setup_error += fmt::format("; {}: {} timeouts", st.name, st.timeouts);
        }
      }
    }
    mergeRunStats(setup_total, std::move(s));
    // Packet mode resolves the next hop here; a failure stops like a failed call setup.
    if (auto st = gen.setDestinations(calls.legA(), rd()); !st.ok() && setup_error.empty()) {
      setup_error = st.error().message;
    }
    bench.setSources(calls.legB());
    return setup_error.empty();
  };
  auto teardownRound = [&]() {
    if (!calls_up) {
      return;
    }
    std::vector<size_t> which;
    for (size_t i = 0; i < calls.calls(); ++i) {
      if (calls.established(i)) {
        which.push_back(i);
      }
    }
    RelayTeardown spec(calls, which);
    mergeRunStats(down_total,
                  runJobs(client.value(), spec, which.size(), cfg.setup_window, 120));
    calls_up = false;
  };

  int exit_code = kExitOk;
  std::string stop_reason;
  std::optional<Trial> warmup;
  std::vector<Trial> trials;
  std::optional<size_t> best;
  std::optional<size_t> best_bounded;
  std::string stop_reason_bounded;

  const size_t first_k = cfg.streamsFor(cfg.pps);
  if (!setupRound(first_k)) {
    stop_reason = setup_error;
    exit_code = kExitFailed;
  } else if (text) {
    fmt::print("  {} calls set up in {:.3f} s\n", first_k, setup_total.seconds);
  }
  if (exit_code == kExitOk && cfg.warmup > 0) {
    // Resolves neighbours on both veths and gets the relay's sockets going; not measured.
    const double rate =
        std::min(cfg.pps, std::max(100.0, 10.0 * static_cast<double>(first_k)));
    warmup = bench.runTrial(rate, cfg.warmup);
    if (text) {
      fmt::print("  warm-up at {:.0f} pps for {:.1f} s: {} of {} received\n", rate, cfg.warmup,
                 warmup->sink.received, warmup->gen.sent);
    }
    if (warmup->sink.received == 0) {
      stop_reason = "the relay forwarded nothing during warm-up";
      exit_code = kExitFailed;
    }
  }

  if (exit_code == kExitOk) {
    if (text) {
      printTrialHeader();
    }
    const int64_t search_start = monoNs();
    auto runOne = [&](double rate) -> const Trial* {
      if (!trials.empty() || cfg.warmup > 0) {
        teardownRound();
        if (!setupRound(cfg.streamsFor(rate))) {
          return nullptr;
        }
      }
      trials.push_back(bench.runTrial(rate, cfg.seconds));
      if (text) {
        printTrial(trials.back(), "");
      } else {
        printProgress(cfg.label, trials.size(), trials.back());
      }
      if (!trials.back().sink.error.empty()) {
        // A sink that failed counted nothing: its "100 % loss" says nothing about the relay.
        setup_error = "sink: " + trials.back().sink.error;
        return nullptr;
      }
      return &trials.back();
    };
    if (!cfg.search) {
      if (runOne(cfg.pps) == nullptr) {
        stop_reason = setup_error;
        exit_code = kExitFailed;
      }
    } else {
      // With a latency bound, the loss-only search gets 60 % of the budget and the bounded one
      // (which starts from the trials already made) the rest.
      const bool two = cfg.latency_max_us > 0;
      const int64_t budget_ns = static_cast<int64_t>(cfg.budget * kNsPerSec);
      const int64_t first_deadline = search_start + (two ? budget_ns * 6 / 10 : budget_ns);
      SearchContext ctx{.cfg = cfg,
                        .trials = trials,
                        .run = runOne,
                        .last_setup_seconds = last_setup_seconds};
      SearchOutcome loss_only = bisect(ctx, Criterion{.loss_max_pct = cfg.loss_max_pct},
                                       first_deadline, cfg.max_trials);
      best = loss_only.best;
      stop_reason = loss_only.stop_reason;
      if (two && !loss_only.failed) {
        SearchOutcome bounded =
            bisect(ctx,
                   Criterion{.loss_max_pct = cfg.loss_max_pct, .p99_max_us = cfg.latency_max_us},
                   search_start + budget_ns, cfg.max_trials);
        best_bounded = bounded.best;
        stop_reason_bounded = bounded.stop_reason;
        if (bounded.failed) {
          exit_code = kExitFailed;
        }
      }
      if (loss_only.failed) {
        exit_code = kExitFailed;
        stop_reason = setup_error.empty() ? stop_reason : setup_error;
      }
    }
    if (!cfg.search && !trials.empty()) {
      best = 0;
      const Trial& t = trials.front();
      if (cfg.expect_zero_loss &&
          (t.lost != 0 || t.gen.sent == 0 || t.sink.wrong_source != 0 || t.gen.send_errors != 0)) {
        exit_code = kExitFailed;
        stop_reason = "expected zero loss";
      }
    }
  }

  teardownRound();

  if (cfg.json) {
    nlohmann::json j = {{"mode", "relay"},
                        {"gen_mode", genModeName(cfg.gen_mode)},
                        {"payload_bytes", cfg.shape.payload},
                        {"ptime_ms", cfg.shape.ptime_ms},
                        {"sink_mode", sinkModeName(cfg.sink_mode)},
                        {"label", cfg.label},
                        {"direct", cfg.direct},
                        {"streams", cfg.stream_pps > 0 ? nlohmann::json(nullptr)
                                                       : nlohmann::json(cfg.streams)},
                        {"stream_pps", cfg.stream_pps},
                        {"seconds_per_trial", cfg.seconds},
                        {"loss_max_pct", cfg.loss_max_pct},
                        {"search", cfg.search},
                        {"setup", stepsJson(setup_total)},
                        {"teardown", stepsJson(down_total)},
                        {"stop_reason", stop_reason}};
    if (warmup) {
      j["warmup"] = trialJson(*warmup, false);
    }
    j["trials"] = nlohmann::json::array();
    for (const Trial& t : trials) {
      j["trials"].push_back(trialJson(t, cfg.per_stream));
    }
    if (cfg.search) {
      j["result"] = resultJson(trials, best, stop_reason);
      if (cfg.latency_max_us > 0) {
        j["result_latency_bounded"] = resultJson(trials, best_bounded, stop_reason_bounded);
        j["result_latency_bounded"]["latency_max_ms"] = cfg.latency_max_us / 1000;
      }
    } else if (!trials.empty()) {
      j["result"] = resultJson(trials, 0, stop_reason);
      j["result"]["pass"] = trials.front().pass;
    } else {
      j["result"] = nullptr;
    }
    fmt::print("{}\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
  } else {
    if (cfg.search) {
      printResult(trials, best, fmt::format("loss < {} %", cfg.loss_max_pct), stop_reason);
      if (cfg.latency_max_us > 0) {
        printResult(trials, best_bounded,
                    fmt::format("loss < {} % and p99 <= {} ms", cfg.loss_max_pct,
                                cfg.latency_max_us / 1000),
                    stop_reason_bounded);
      }
    } else if (!stop_reason.empty()) {
      fmt::print("  stopped: {}\n", stop_reason);
    }
    for (const Trial& t : trials) {
      size_t shown = 0;
      for (const StreamAnomaly& s : t.anomalies) {
        if (shown++ == 0) {
          fmt::print("  anomalies at {:.0f} pps ({} streams lost packets):\n", t.target_pps,
                     t.streams_with_loss);
        }
        if (shown > 5) {
          fmt::print("    ...\n");
          break;
        }
        fmt::print("    stream {}: sent {} received {} dup {} reordered {} wrong-source {}\n",
                   s.stream, s.sent, s.received, s.duplicates, s.reordered, s.wrong_source);
      }
    }
    fmt::print("  ng: {} call setups ({} failed) and {} deletes ({} failed) over {} rounds\n",
               setup_total.jobs_completed, setup_total.jobs_failed, down_total.jobs_completed,
               down_total.jobs_failed, round);
  }
  if (!setup_error.empty()) {
    fmt::print(stderr, "xems-perf relay: {}\n", setup_error);
  }
  if (down_total.jobs_failed > 0 && exit_code == kExitOk) {
    exit_code = kExitFailed;
  }
  return exit_code;
}

}  // namespace xems::perf
