#include "tools/xems-perf/rtp_gen.h"

#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <exception>
#include <thread>
#include <unordered_map>

#include <fmt/format.h>

#include "tools/xems-perf/clock.h"
#include "tools/xems-perf/netns.h"
#include "tools/xems-perf/rtp_packet.h"

namespace xems::perf {

namespace {

constexpr int kMaxBatch = 1024;

uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

void pinThread(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  (void)pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

struct AddrPair {
  IpAddr src;
  IpAddr dst;
  bool operator==(const AddrPair&) const = default;
};
struct AddrPairHash {
  size_t operator()(const AddrPair& p) const {
    return std::hash<IpAddr>{}(p.src) * 31 + std::hash<IpAddr>{}(p.dst);
  }
};

}  // namespace

std::string_view genModeName(GenMode mode) { return mode == GenMode::kPacket ? "packet" : "udp"; }

std::optional<GenMode> parseGenMode(std::string_view text) {
  if (text == "udp") {
    return GenMode::kUdp;
  }
  if (text == "packet") {
    return GenMode::kPacket;
  }
  return std::nullopt;
}

Generator::Generator(std::vector<UniqueFd> sockets, std::vector<SockAddr> dests, uint32_t seed)
    : sockets_(std::move(sockets)) {
  (void)setDestinations(dests, seed);  // UDP mode: cannot fail
}

Status Generator::usePacketMode(std::string_view netns) {
  std::vector<SockAddr> locals;
  for (const UniqueFd& fd : sockets_) {
    auto local = localAddress(fd.get());
    if (!local.ok()) {
      return std::move(local).error().wrap("packet mode");
    }
    locals.push_back(*local);
  }
  std::vector<UniqueFd> packet_fds;
  XEMS_TRY_STATUS(runInNetns(netns, [&]() -> Status {
    for (size_t t = 0; t < sockets_.size(); ++t) {
      auto fd = openPacketSocket();
      if (!fd.ok()) {
        return std::move(fd).error().wrap("packet mode");
      }
      packet_fds.push_back(std::move(fd).value());
    }
    return okStatus();
  }));
  mode_ = GenMode::kPacket;
  netns_ = std::string(netns);
  locals_ = std::move(locals);
  packet_sockets_ = std::move(packet_fds);
  packet_ifindex_.assign(packet_sockets_.size(), 0);
  Status st = preparePackets();
  if (!st.ok()) {
    streams_.clear();
    frames_.clear();
  }
  return st;
}

Status Generator::preparePackets() {
  frames_.clear();
  if (streams_.empty()) {
    return okStatus();
  }
  const size_t nthreads = sockets_.size();
  std::vector<PacketRoute> routes;
  std::vector<size_t> route_of(streams_.size());
  // Netlink sockets answer for the namespace they were created in: resolve in the generator's.
  XEMS_TRY_STATUS(runInNetns(netns_, [&]() -> Status {
    auto nl = NeighbourResolver::open();
    if (!nl.ok()) {
      return std::move(nl).error().wrap("packet mode");
    }
    // One wait for all: a dead next hop costs kResolveWaitMs once, not once per stream.
    const int64_t deadline = monoNs() + int64_t{kResolveWaitMs} * kNsPerMs;
    // Usually every stream shares one (source, destination address) pair: one route query and
    // one neighbour lookup for thousands of calls.
    std::unordered_map<AddrPair, size_t, AddrPairHash> seen;
    for (size_t i = 0; i < streams_.size(); ++i) {
      const SockAddr& local = locals_[i % nthreads];
      const SockAddr& dest = streams_[i].dest;
      if (!dest.valid() || dest.family() != local.family()) {
        return XEMS_INVALID(fmt::format("packet mode: stream {}: destination '{}' is not an "
                                        "address of the family of the source {}",
                                        i, dest.toString(), local.toString()));
      }
      const AddrPair key{local.ip(), dest.ip()};
      auto it = seen.find(key);
      if (it == seen.end()) {
        auto route = nl->resolve(key.src, key.dst, deadline);
        if (!route.ok()) {
          return std::move(route).error();
        }
        routes.push_back(std::move(route).value());
        it = seen.emplace(key, routes.size() - 1).first;
      }
      route_of[i] = it->second;
    }
    return okStatus();
  }));
  frames_.reserve(streams_.size());
  for (size_t i = 0; i < streams_.size(); ++i) {
    frames_.push_back(makeFrameTemplate(routes[route_of[i]], locals_[i % nthreads],
                                        streams_[i].dest, streams_[i].ssrc, payload_));
  }
  // Each frame names its device (sockaddr_ll); the bind only makes the socket's device explicit.
  // A bound packet socket resolves the device by index in its own namespace, from any thread.
  for (size_t t = 0; t < nthreads && t < streams_.size(); ++t) {
    const int ifindex = routes[route_of[t]].ifindex;
    if (packet_ifindex_[t] != ifindex) {
      XEMS_TRY_STATUS(bindPacketSocket(packet_sockets_[t].get(), ifindex));
      packet_ifindex_[t] = ifindex;
    }
  }
  return okStatus();
}

void Generator::setShape(size_t payload, uint32_t ts_step) {
  payload_ = std::clamp(payload, kMinPayloadSize, kMaxPayloadSize);
  ts_step_ = ts_step;
}

Status Generator::setDestinations(const std::vector<SockAddr>& dests, uint32_t seed) {
  streams_.assign(dests.size(), Stream{});
  for (size_t i = 0; i < dests.size(); ++i) {
    Stream& s = streams_[i];
    s.dest = dests[i];
    s.ssrc = mix32(seed + static_cast<uint32_t>(i) * 2 + 1);
    s.rtp_seq = static_cast<uint16_t>(mix32(s.ssrc));
    s.rtp_ts = mix32(s.ssrc + 7);
  }
  frames_.clear();
  if (mode_ != GenMode::kPacket) {
    return okStatus();
  }
  Status st = preparePackets();
  if (!st.ok()) {
    streams_.clear();
    frames_.clear();
  }
  return st;
}

std::vector<uint64_t> Generator::sentPerStream() const {
  std::vector<uint64_t> out(streams_.size());
  for (size_t i = 0; i < streams_.size(); ++i) {
    out[i] = streams_[i].run_seq;
  }
  return out;
}

GenResult Generator::run(const GenRunConfig& cfg) {
  for (Stream& s : streams_) {
    s.run_seq = 0;
  }
  std::vector<ThreadResult> results(sockets_.size());
  // Start slightly in the future so every sender begins on the same schedule.
  const int64_t start = monoNs() + 2 * kNsPerMs;
  {
    std::vector<std::thread> threads;
    threads.reserve(sockets_.size());
    for (size_t t = 0; t < sockets_.size(); ++t) {
      threads.emplace_back([this, t, &cfg, start, &results] {
        senderLoop(t, cfg, start, results[t]);
      });
    }
    for (std::thread& th : threads) {
      th.join();
    }
  }
  GenResult r;
  r.seconds = cfg.seconds;
  for (const ThreadResult& t : results) {
    r.sent += t.sent;
    r.wanted += t.wanted;
    r.would_block += t.would_block;
    r.send_errors += t.send_errors;
    r.late_ticks += t.late_ticks;
    if (r.error.empty()) {
      r.error = t.error;
    }
  }
  r.offered_pps = cfg.seconds > 0 ? static_cast<double>(r.sent) / cfg.seconds : 0;
  return r;
}

void Generator::senderLoop(size_t thread, const GenRunConfig& cfg, int64_t start_ns,
                           ThreadResult& out) noexcept {
  // Nothing may escape a sender thread: allocation failure is reported as a trial error.
  try {
    senderLoopImpl(thread, cfg, start_ns, out);
  } catch (const std::exception& e) {
    out.error = e.what();
    ++out.send_errors;
  }
}

void Generator::senderLoopImpl(size_t thread, const GenRunConfig& cfg, int64_t start_ns,
                               ThreadResult& out) {
  if (!cfg.cpus.empty()) {
    pinThread(cfg.cpus[thread % cfg.cpus.size()]);
  }
  const size_t nthreads = sockets_.size();
  std::vector<Stream*> mine;
  for (size_t i = thread; i < streams_.size(); i += nthreads) {
    mine.push_back(&streams_[i]);
  }
  if (mine.empty() || cfg.pps <= 0 || cfg.seconds <= 0) {
    return;
  }
  // Packet mode: the same schedule and sequence bookkeeping, but each slot holds a whole frame
  // (the stream's headers, then the probe) for this thread's AF_PACKET socket. All streams of a
  // thread have its socket's family, hence one header length.
  const bool packet = mode_ == GenMode::kPacket;
  const int fd = packet ? packet_sockets_[thread].get() : sockets_[thread].get();
  const size_t hdr =
      packet ? frames_[static_cast<size_t>(mine.front() - streams_.data())].header_len : 0;
  const size_t stride = hdr + kRtpHeaderSize + payload_;
  // This thread's share of the rate is proportional to its share of the streams, so every stream
  // gets pps / K.
  const double rate = cfg.pps * static_cast<double>(mine.size()) /
                      static_cast<double>(streams_.size());
  const int64_t duration_ns = static_cast<int64_t>(cfg.seconds * kNsPerSec);
  const int64_t end_ns = start_ns + duration_ns;
  const uint64_t total = static_cast<uint64_t>(std::llround(rate * cfg.seconds));
  const int batch = std::clamp(cfg.batch, 1, kMaxBatch);
  const uint64_t cap = std::max<uint64_t>(
      static_cast<uint64_t>(batch),
      static_cast<uint64_t>(rate * static_cast<double>(cfg.tick_ns * cfg.burst_ticks) / kNsPerSec));

  std::vector<uint8_t> bufs(static_cast<size_t>(batch) * stride);
  std::vector<mmsghdr> msgs(static_cast<size_t>(batch));
  std::vector<iovec> iovs(static_cast<size_t>(batch));
  std::vector<Stream*> slot_stream(static_cast<size_t>(batch));
  for (int i = 0; i < batch; ++i) {
    uint8_t* frame = &bufs[static_cast<size_t>(i) * stride];
    initProbe(frame + hdr, 0, payload_);
    iovs[static_cast<size_t>(i)] = iovec{frame, stride};
    msgs[static_cast<size_t>(i)] = mmsghdr{};
    msgs[static_cast<size_t>(i)].msg_hdr.msg_iov = &iovs[static_cast<size_t>(i)];
    msgs[static_cast<size_t>(i)].msg_hdr.msg_iovlen = 1;
  }

  size_t cursor = 0;
  uint64_t sent = 0;
  // Sends up to `todo` packets now; returns false when the kernel pushed back.
  auto sendBurst = [&](uint64_t todo) {
    while (todo > 0) {
      const int n = static_cast<int>(std::min<uint64_t>(todo, static_cast<uint64_t>(batch)));
      const uint64_t now = static_cast<uint64_t>(monoNs());
      for (int i = 0; i < n; ++i) {
        Stream* s = mine[cursor];
        cursor = cursor + 1 == mine.size() ? 0 : cursor + 1;
        const auto index = static_cast<size_t>(s - streams_.data());
        uint8_t* frame = &bufs[static_cast<size_t>(i) * stride];
        uint8_t* pkt = frame + hdr;
        putBe32(pkt + 8, s->ssrc);
        writeProbe(pkt, s->rtp_seq, s->rtp_ts,
                   ProbeFields{.run_id = cfg.run_id,
                               .stream = static_cast<uint32_t>(index),
                               .seq = s->run_seq,
                               .send_ns = now});
        ++s->rtp_seq;
        s->rtp_ts += ts_step_;
        ++s->run_seq;
        msghdr& h = msgs[static_cast<size_t>(i)].msg_hdr;
        if (packet) {
          const FrameTemplate& ft = frames_[index];
          std::memcpy(frame, ft.header.data(), hdr);
          writeUdpChecksum(frame, ft);
          h.msg_name = const_cast<sockaddr_ll*>(&ft.dest);
          h.msg_namelen = sizeof(sockaddr_ll);
        } else {
          h.msg_name = const_cast<sockaddr*>(s->dest.sa());
          h.msg_namelen = s->dest.len();
        }
        slot_stream[static_cast<size_t>(i)] = s;
      }
      int done = ::sendmmsg(fd, msgs.data(), static_cast<unsigned>(n), MSG_DONTWAIT);
      const int saved_errno = errno;
      if (done < 0) {
        done = 0;
        if (saved_errno == EAGAIN || saved_errno == ENOBUFS) {
          ++out.would_block;
        } else {
          ++out.send_errors;
          if (out.error.empty()) {
            out.error = fmt::format("sendmmsg{}: {}", packet ? " (AF_PACKET)" : "",
                                    std::strerror(saved_errno));
          }
        }
      } else if (done < n) {
        ++out.would_block;
      }
      // Give back the sequence numbers of packets the kernel did not take, newest first.
      for (int i = n - 1; i >= done; --i) {
        Stream* s = slot_stream[static_cast<size_t>(i)];
        --s->rtp_seq;
        s->rtp_ts -= ts_step_;
        --s->run_seq;
        cursor = cursor == 0 ? mine.size() - 1 : cursor - 1;
      }
      sent += static_cast<uint64_t>(done);
      todo -= static_cast<uint64_t>(done);
      if (done < n) {
        return false;
      }
    }
    return true;
  };

  timespec first{static_cast<time_t>(start_ns / kNsPerSec),
                 static_cast<long>(start_ns % kNsPerSec)};
  (void)::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &first, nullptr);
  int64_t next_tick = start_ns;
  // Bounded by end_ns: one iteration per tick, each sending at most `cap` packets.
  for (;;) {
    const int64_t now = monoNs();
    if (now >= end_ns) {
      break;
    }
    const uint64_t due = std::min<uint64_t>(
        total, static_cast<uint64_t>(rate * static_cast<double>(now - start_ns) / kNsPerSec));
    if (due > sent) {
      (void)sendBurst(std::min<uint64_t>(due - sent, cap));
    }
    next_tick += cfg.tick_ns;
    const int64_t after = monoNs();
    if (after >= next_tick) {
      ++out.late_ticks;
      next_tick = after;  // do not try to make up lost ticks with a storm
      continue;
    }
    timespec ts{static_cast<time_t>(next_tick / kNsPerSec),
                static_cast<long>(next_tick % kNsPerSec)};
    (void)::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);
  }
  // The last partial tick: send what the schedule still owes, with the same cap.
  if (total > sent) {
    (void)sendBurst(std::min<uint64_t>(total - sent, cap));
  }
  out.sent = sent;
  out.wanted = total;
}

}  // namespace xems::perf
