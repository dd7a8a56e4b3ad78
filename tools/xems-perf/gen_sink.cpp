// `xems-perf gen` and `xems-perf sink`: the generator and the sink as separate processes, for
// relays set up by something else (SIPp + Kamailio, a test script). `relay` runs both in one
// process and also does the ng setup.
#include <algorithm>
#include <atomic>
#include <random>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tools/xems-perf/args.h"
#include "tools/xems-perf/clock.h"
#include "tools/xems-perf/commands.h"
#include "tools/xems-perf/netns.h"
#include "tools/xems-perf/rtp_gen.h"
#include "tools/xems-perf/rtp_sink.h"
#include "tools/xems-perf/xdp_sink.h"

namespace xems::perf {

namespace {

const std::vector<OptionSpec> kGenOptions = {
    {"dest", "IP:PORT[,..]", "destination per stream (required); one address with --streams K "
                             "and --port-step S sends stream i to PORT + i*S"},
    {"streams", "K", "streams (default: number of --dest entries)"},
    {"port-step", "S", "port increment per stream when one --dest is given (default 0)"},
    {"pps", "R", "total packets/s (default 1000)"},
    {"seconds", "T", "duration (default 3)"},
    {"bind", "IP", "source address (default 0.0.0.0)"},
    {"netns", "NAME", "network namespace of the sockets"},
    {"threads", "N", "sender threads, one socket each (default 1)"},
    {"cpus", "LIST", "pin sender threads to these CPUs"},
    {"run-id", "N", "run id written into every packet (default 1)"},
    {"tick-us", "US", "pacing tick (default 1000)"},
    {"batch", "N", "packets per sendmmsg (default 64)"},
    kPayloadOption,
    kPtimeOption,
    {"gen-mode", "udp|packet", "udp sockets (default), or Ethernet frames through AF_PACKET "
                               "(skips the UDP/IP stack; needs root)"},
    {"json", "", "print JSON"},
    {"help", "", "this text"},
};

const std::vector<OptionSpec> kSinkOptions = {
    {"bind", "IP:PORT", "where to listen (required)"},
    {"streams", "K", "stream indices 0..K-1 are counted (default 1)"},
    {"seconds", "T", "listen at most this long (default 10)"},
    {"idle-ms", "MS", "stop after this much silence once packets arrived (default 1000)"},
    {"netns", "NAME", "network namespace of the socket"},
    {"run-id", "N", "count only this run id (default 0: the first seen)"},
    {"max-seq", "N", "highest sequence per stream tracked (default 1048576)"},
    {"sink-mode", "udp|xdp", "count on the UDP socket (default), or in an XDP program on the "
                             "device in front of it, for rates a socket cannot take (root)"},
    {"sink-dev", "DEV", "--sink-mode xdp: the device to attach to (default: the one that has "
                        "the --bind address)"},
    {"json", "", "print JSON"},
    {"help", "", "this text"},
};

bool usageOrError(const Result<Args>& args, std::string_view cmd, std::string_view summary,
                  const std::vector<OptionSpec>& specs, int& code) {
  if (args.ok() && !args->has("help")) {
    return false;
  }
  if (!args.ok()) {
    fmt::print(stderr, "xems-perf {}: {}\n", cmd, args.error().message);
  }
  fmt::print(stderr, "{}", Args::usage(cmd, summary, specs));
  code = args.ok() ? kExitOk : kExitUsage;
  return true;
}

}  // namespace

int runGen(int argc, char** argv, int first) {
  auto args = Args::parse(argc, argv, first, kGenOptions);
  int code = 0;
  if (usageOrError(args, "gen", "paced RTP generator", kGenOptions, code)) {
    return code;
  }
  std::vector<SockAddr> dests;
  for (std::string_view d : splitList(args->str("dest"), ',')) {
    auto a = SockAddr::parse(d);
    if (!a) {
      fmt::print(stderr, "xems-perf gen: bad --dest '{}'\n", d);
      return kExitUsage;
    }
    dests.push_back(*a);
  }
  const auto streams = args->integer("streams", static_cast<int64_t>(dests.size()));
  const auto step = args->integer("port-step", 0);
  const auto pps = args->number("pps", 1000);
  const auto seconds = args->number("seconds", 3);
  const auto threads = args->integer("threads", 1);
  const auto run_id = args->integer("run-id", 1);
  const auto tick = args->integer("tick-us", 1000);
  const auto batch = args->integer("batch", 64);
  const auto mode = parseGenMode(args->str("gen-mode", "udp"));
  if (!mode) {
    fmt::print(stderr, "xems-perf gen: --gen-mode must be udp or packet\n");
    return kExitUsage;
  }
  if (dests.empty() || !streams.ok() || !step.ok() || !pps.ok() || !seconds.ok() ||
      !threads.ok() || !run_id.ok() || !tick.ok() || !batch.ok() || *streams < 1 ||
      *threads < 1 || *threads > 64 || *pps <= 0 || *seconds <= 0 || *seconds > 3600 ||
      *tick < 50 || *batch < 1) {
    fmt::print(stderr, "xems-perf gen: bad or missing options (see --help)\n");
    return kExitUsage;
  }
  if (dests.size() == 1 && *streams > 1) {
    const SockAddr base = dests.front();
    dests.clear();
    for (int64_t i = 0; i < *streams; ++i) {
      dests.emplace_back(base.ip(), static_cast<uint16_t>(base.port() + i * *step));
    }
  } else if (static_cast<int64_t>(dests.size()) != *streams) {
    fmt::print(stderr, "xems-perf gen: --streams does not match the --dest list\n");
    return kExitUsage;
  }
  const auto bind_ip = IpAddr::parse(args->str("bind", dests.front().family() == Family::kIpv6
                                                           ? "::"
                                                           : "0.0.0.0"));
  if (!bind_ip) {
    fmt::print(stderr, "xems-perf gen: bad --bind\n");
    return kExitUsage;
  }
  std::vector<UniqueFd> fds;
  for (int64_t t = 0; t < *threads; ++t) {
    auto fd = openUdp(args->str("netns"), SockAddr(*bind_ip, 0),
                      UdpSocketOptions{.sndbuf = 8 << 20});
    if (!fd.ok()) {
      fmt::print(stderr, "xems-perf gen: {}\n", fd.error().message);
      return kExitUsage;
    }
    fds.push_back(std::move(fd).value());
  }
  std::vector<int> cpus;
  for (std::string_view c : splitList(args->str("cpus"), ',')) {
    auto v = parseInt(c);
    if (v.ok()) {
      cpus.push_back(static_cast<int>(*v));
    }
  }
  std::random_device rd;
  const auto shape = parseProbeShape(*args);
  if (!shape.ok()) {
    fmt::print(stderr, "xems-perf gen: {}\n", shape.error().message);
    return kExitUsage;
  }
  Generator gen(std::move(fds), dests, rd());
  gen.setShape(shape->payload, shape->tsStep());
  if (*mode == GenMode::kPacket) {
    if (auto st = gen.usePacketMode(args->str("netns")); !st.ok()) {
      fmt::print(stderr, "xems-perf gen: {}\n", st.error().message);
      return kExitUsage;
    }
  }
  const GenResult r = gen.run(GenRunConfig{.pps = *pps,
                                           .seconds = *seconds,
                                           .run_id = static_cast<uint32_t>(*run_id),
                                           .tick_ns = *tick * 1000,
                                           .batch = static_cast<int>(*batch),
                                           .cpus = cpus});
  if (args->has("json")) {
    // "mode" names the subcommand in every xems-perf JSON; the transmit mode is "gen_mode".
    nlohmann::json j = {{"mode", "gen"},          {"gen_mode", genModeName(*mode)},
                        {"target_pps", *pps},
                        {"offered_pps", r.offered_pps}, {"sent", r.sent},
                        {"wanted", r.wanted},     {"would_block", r.would_block},
                        {"send_errors", r.send_errors}, {"late_ticks", r.late_ticks},
                        {"streams", dests.size()}, {"seconds", r.seconds},
                        {"per_stream_sent", gen.sentPerStream()}};
    if (!r.error.empty()) {
      j["error"] = r.error;
    }
    fmt::print("{}\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
  } else {
    fmt::print("gen ({}): {} streams, target {:.0f} pps for {:.1f} s: sent {} of {} -> offered "
               "{:.0f} pps (would-block {}, errors {}, late ticks {}){}{}\n",
               genModeName(*mode), dests.size(), *pps, r.seconds, r.sent, r.wanted, r.offered_pps,
               r.would_block, r.send_errors, r.late_ticks, r.error.empty() ? "" : "; ", r.error);
  }
  return r.send_errors == 0 ? kExitOk : kExitFailed;
}

int runSink(int argc, char** argv, int first) {
  auto args = Args::parse(argc, argv, first, kSinkOptions);
  int code = 0;
  if (usageOrError(args, "sink", "RTP sink with exact per-stream accounting", kSinkOptions, code)) {
    return code;
  }
  const auto bind = SockAddr::parse(args->str("bind"), "0.0.0.0");
  const auto streams = args->integer("streams", 1);
  const auto seconds = args->number("seconds", 10);
  const auto idle_ms = args->integer("idle-ms", 1000);
  const auto run_id = args->integer("run-id", 0);
  const auto max_seq = args->integer("max-seq", 1 << 20);
  if (!bind || !streams.ok() || !seconds.ok() || !idle_ms.ok() || !run_id.ok() || !max_seq.ok() ||
      *streams < 1 || *streams > 100000 || *seconds <= 0 || *max_seq < 1 ||
      *max_seq > (int64_t{1} << 31) || *streams * (*max_seq / 8) > (int64_t{1} << 31)) {
    fmt::print(stderr, "xems-perf sink: bad or missing options (see --help; bitmaps are limited "
                       "to 2 GiB)\n");
    return kExitUsage;
  }
  auto fd = openUdp(args->str("netns"), *bind,
                    UdpSocketOptions{.rcvbuf = 64 << 20, .rx_overflow_counter = true});
  if (!fd.ok()) {
    fmt::print(stderr, "xems-perf sink: {}\n", fd.error().message);
    return kExitUsage;
  }
  const auto sink_mode = parseSinkMode(args->str("sink-mode", "udp"));
  if (!sink_mode) {
    fmt::print(stderr, "xems-perf sink: --sink-mode must be udp or xdp\n");
    return kExitUsage;
  }
  auto made = makeSink(
      *sink_mode, std::move(fd).value(),
      XdpSinkOptions{.netns = std::string(args->str("netns")),
                     .device = std::string(args->str("sink-dev"))});
  if (!made.ok()) {
    fmt::print(stderr, "xems-perf sink: {}\n", made.error().message);
    return kExitUsage;
  }
  SinkBackend& sink = **made;
  sink.prepare(static_cast<uint32_t>(*run_id), static_cast<size_t>(*streams),
               static_cast<uint32_t>(*max_seq));
  std::atomic<bool> stop{false};
  std::thread th([&] { sink.run(stop); });
  const int64_t start = monoNs();
  const int64_t end = start + static_cast<int64_t>(*seconds * kNsPerSec);
  for (;;) {
    const int64_t now = monoNs();
    const int64_t last = sink.lastRxNs();
    if (now >= end || (last != 0 && now - last >= *idle_ms * kNsPerMs)) {
      break;
    }
    timespec ts{0, 10 * kNsPerMs};
    ::nanosleep(&ts, nullptr);
  }
  stop.store(true);
  th.join();
  const SinkTotals t = sink.totals();
  uint64_t inferred_lost = 0;
  nlohmann::json per = nlohmann::json::array();
  for (size_t i = 0; i < sink.streams().size(); ++i) {
    const SinkStreamStats& s = sink.streams()[i];
    const uint64_t lost = s.any ? uint64_t{s.highest} + 1 - s.received : 0;
    inferred_lost += lost;
    if (lost > 0 || s.duplicates > 0 || s.reordered > 0) {
      per.push_back({{"stream", i},         {"received", s.received}, {"lost", lost},
                     {"duplicates", s.duplicates}, {"reordered", s.reordered}});
    }
  }
  if (args->has("json")) {
    nlohmann::json j = {{"mode", "sink"},
                        {"sink_mode", sinkModeName(*sink_mode)},
                        {"datagrams", t.datagrams},
                        {"received", t.received},
                        {"lost_inferred", inferred_lost},
                        {"duplicates", t.duplicates},
                        {"reordered", t.reordered},
                        {"foreign", t.foreign},
                        {"stale", t.stale},
                        {"socket_drops", t.socket_drops},
                        {"latency_p50_us", t.latency_p50_us},
                        {"latency_p99_us", t.latency_p99_us},
                        {"jitter_mean_us", t.jitter_mean_us},
                        {"jitter_max_us", t.jitter_max_us},
                        {"anomalies", per}};
    fmt::print("{}\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
  } else {
    fmt::print("sink: received {} lost(inferred from highest seq) {} dup {} reordered {} "
               "foreign {} stale {} socket-drops {} latency p50 {:.0f} us p99 {:.0f} us\n",
               t.received, inferred_lost, t.duplicates, t.reordered, t.foreign, t.stale,
               t.socket_drops, t.latency_p50_us, t.latency_p99_us);
  }
  return t.error.empty() ? kExitOk : kExitFailed;
}

}  // namespace xems::perf
