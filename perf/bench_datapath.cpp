// bench-libs: xems_datapath
//
// Packets per second through ONE io_uring media worker on loopback, and the worker's CPU time
// per forwarded packet.
//
// Rig: phone A --(sendmmsg, sender thread)--> engine A-facing socket --[worker]--> engine B-facing
// socket --> phone B (recvmmsg, benchmark thread). Each benchmark iteration is one recvmmsg
// batch at B; items_per_second is packets *delivered to B* per wall-clock second.
//
// What worker_ns_per_pkt contains, so comparisons stay honest: the worker thread's CPU time
// (user + system, from its schedstat run time) over the timed loop divided by packets delivered.
// It includes io_uring_enter, the kernel's recvmsg copy into the provided buffer, our packet
// logic, the sendmsg -- and, because this is loopback, the whole receive path into B's socket
// (loopback transmit runs the receiver's softirq in the sender's context). It excludes the cost
// of delivering A's packets into the engine socket (charged to the sender thread). io-wq helper
// threads ("iou-wrk-*") are reported separately as iowq_ns_per_pkt (expected ~0: UDP sends and
// receives complete inline). A real NIC moves part of that kernel work to softirq on other CPUs.
//
//   windowed:1  the sender keeps at most kWindow packets in flight: no drops, steady state.
//   windowed:0  open loop: the sender blasts; drops happen in the engine socket's receive queue
//               (drop_pct), and the worker runs at its saturation rate.
#include <benchmark/benchmark.h>
#include <dirent.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "datapath/rtp.h"
#include "datapath/source_latch.h"
#include "datapath/ssrc_tracker.h"
#include "datapath/uring_engine.h"

namespace xems::datapath {
namespace {

constexpr size_t kPacketSize = 172;  // G.711, 20 ms: 12-byte header + 160 bytes
constexpr unsigned kBatch = 32;
constexpr uint64_t kWindow = 1024;
constexpr int kSockBuf = 4 << 20;

struct Sock {
  UniqueFd fd;
  SockAddr addr;
};

Sock bindUdp() {
  Sock s;
  s.fd.reset(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  const SockAddr any(*IpAddr::parse("127.0.0.1"), 0);
  if (!s.fd.valid() || ::bind(s.fd.get(), any.sa(), any.len()) != 0) {
    std::perror("bind");
    std::abort();
  }
  // Large queues so that, in windowed mode, no socket on the path ever overflows.
  ::setsockopt(s.fd.get(), SOL_SOCKET, SO_RCVBUF, &kSockBuf, sizeof kSockBuf);
  ::setsockopt(s.fd.get(), SOL_SOCKET, SO_SNDBUF, &kSockBuf, sizeof kSockBuf);
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ::getsockname(s.fd.get(), reinterpret_cast<sockaddr*>(&ss), &len);
  s.addr = *SockAddr::fromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
  return s;
}

// CPU time of one thread in ns: /proc/self/task/TID/schedstat (first field, ns on CPU),
// falling back to utime+stime clock ticks from .../stat.
int64_t threadCpuNs(pid_t tid) {
  const std::string base = "/proc/self/task/" + std::to_string(tid);
  std::ifstream ss(base + "/schedstat");
  int64_t ns = 0;
  if (ss >> ns) {
    return ns;
  }
  std::ifstream st(base + "/stat");
  std::string line;
  std::getline(st, line);
  const auto rp = line.rfind(')');
  if (rp == std::string::npos) {
    return 0;
  }
  std::vector<std::string> f;
  size_t pos = rp + 2;
  while (pos < line.size()) {
    const size_t sp = line.find(' ', pos);
    f.push_back(line.substr(pos, sp - pos));
    if (sp == std::string::npos) {
      break;
    }
    pos = sp + 1;
  }
  if (f.size() < 13) {
    return 0;
  }
  const int64_t ticks = std::stoll(f[11]) + std::stoll(f[12]);  // utime, stime
  return ticks * (1'000'000'000 / ::sysconf(_SC_CLK_TCK));
}

// Sum over io_uring's io-wq helper threads of this process.
int64_t ioWqCpuNs() {
  int64_t total = 0;
  DIR* d = ::opendir("/proc/self/task");
  if (d == nullptr) {
    return 0;
  }
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') {
      continue;
    }
    std::ifstream comm(std::string("/proc/self/task/") + e->d_name + "/comm");
    std::string name;
    std::getline(comm, name);
    if (name.rfind("iou-wrk", 0) == 0) {
      total += threadCpuNs(static_cast<pid_t>(std::stol(e->d_name)));
    }
  }
  ::closedir(d);
  return total;
}

struct Rig {
  std::unique_ptr<UringEngine> engine;
  Sock phone_a;
  Sock phone_b;
  SockAddr eng_a;
  SockAddr eng_b;
  std::shared_ptr<FlowCounters> ca = std::make_shared<FlowCounters>();
  std::shared_ptr<FlowCounters> cb = std::make_shared<FlowCounters>();
};

bool makeRig(Rig& rig, benchmark::State& state) {
  auto e = UringEngine::create(1);
  if (!e.ok()) {
    state.SkipWithError(("engine: " + e.error().message).c_str());
    return false;
  }
  rig.engine = std::move(e).value();
  rig.phone_a = bindUdp();
  rig.phone_b = bindUdp();
  Sock ea = bindUdp();
  Sock eb = bindUdp();
  rig.eng_a = ea.addr;
  rig.eng_b = eb.addr;
  FlowSpec a;
  a.id = 1;
  a.local = ea.addr;
  a.rtp_sink = 2;
  a.source.learning = EndpointLearning::kImmediate;
  a.source.advertised = rig.phone_a.addr;
  a.counters = rig.ca;
  FlowSpec b;
  b.id = 2;
  b.local = eb.addr;
  b.rtp_sink = 1;
  b.source.learning = EndpointLearning::kImmediate;
  b.source.advertised = rig.phone_b.addr;
  b.counters = rig.cb;
  if (!rig.engine->add(b, std::move(eb.fd)).ok() || !rig.engine->add(a, std::move(ea.fd)).ok()) {
    state.SkipWithError("add flows");
    return false;
  }
  rig.engine->sync();
  return true;
}

void BM_ForwardOneWorker(benchmark::State& state) {
  const bool windowed = state.range(0) != 0;
  Rig rig;
  if (!makeRig(rig, state)) {
    return;
  }
  std::atomic<uint64_t> received{0};
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> sent_total{0};
  std::atomic<pid_t> sender_tid{0};

  std::thread sender([&] {
    sender_tid = ::gettid();
    std::vector<std::vector<std::byte>> pkts(kBatch, std::vector<std::byte>(kPacketSize));
    std::vector<iovec> iov(kBatch);
    std::vector<mmsghdr> msgs(kBatch);
    for (unsigned i = 0; i < kBatch; ++i) {
      auto& p = pkts[i];
      p[0] = std::byte{0x80};
      p[8] = std::byte{0x12};  // SSRC 0x12000000
      iov[i] = {p.data(), p.size()};
      msgs[i].msg_hdr.msg_name = const_cast<sockaddr*>(rig.eng_a.sa());
      msgs[i].msg_hdr.msg_namelen = rig.eng_a.len();
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    uint64_t sent = 0;
    uint16_t seq = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      if (windowed) {
        uint64_t r = received.load(std::memory_order_acquire);
        while (sent + kBatch > r + kWindow && !stop.load(std::memory_order_relaxed)) {
          received.wait(r, std::memory_order_acquire);
          r = received.load(std::memory_order_acquire);
        }
      }
      for (unsigned i = 0; i < kBatch; ++i, ++seq) {
        pkts[i][2] = std::byte(seq >> 8);
        pkts[i][3] = std::byte(seq & 0xff);
      }
      const int n = ::sendmmsg(rig.phone_a.fd.get(), msgs.data(), kBatch, 0);
      if (n > 0) {
        sent += static_cast<unsigned>(n);
        seq = static_cast<uint16_t>(seq - (kBatch - static_cast<unsigned>(n)));
      }
    }
    sent_total = sent;
  });

  std::vector<std::vector<std::byte>> rx(64, std::vector<std::byte>(2048));
  std::vector<iovec> riov(rx.size());
  std::vector<mmsghdr> rmsgs(rx.size());
  for (size_t i = 0; i < rx.size(); ++i) {
    riov[i] = {rx[i].data(), rx[i].size()};
    rmsgs[i].msg_hdr.msg_iov = &riov[i];
    rmsgs[i].msg_hdr.msg_iovlen = 1;
  }
  uint16_t expect_seq = 0;
  bool have_seq = false;
  uint64_t reordered = 0;
  auto receiveBatch = [&]() -> int {
    pollfd pfd{rig.phone_b.fd.get(), POLLIN, 0};
    if (::poll(&pfd, 1, 2000) != 1) {
      return -1;
    }
    const int n = ::recvmmsg(rig.phone_b.fd.get(), rmsgs.data(),
                             static_cast<unsigned>(rmsgs.size()), MSG_DONTWAIT, nullptr);
    if (n <= 0) {
      return 0;
    }
    for (int i = 0; i < n; ++i) {
      const uint16_t s = static_cast<uint16_t>((std::to_integer<unsigned>(rx[i][2]) << 8) |
                                               std::to_integer<unsigned>(rx[i][3]));
      // Open loop drops create gaps; only a step backwards is a reorder.
      if (have_seq && static_cast<int16_t>(s - expect_seq) < 0) {
        ++reordered;
      }
      expect_seq = static_cast<uint16_t>(s + 1);
      have_seq = true;
    }
    received.fetch_add(static_cast<uint64_t>(n), std::memory_order_release);
    received.notify_one();
    return n;
  };

  // Warm-up: let the flow latch and the queues reach steady state.
  for (uint64_t warm = 0; warm < 20000;) {
    const int n = receiveBatch();
    if (n < 0) {
      state.SkipWithError("no packets arrive at B");
      stop = true;
      received.fetch_add(kWindow * 4);
      received.notify_all();
      sender.join();
      return;
    }
    warm += static_cast<uint64_t>(n);
  }

  const pid_t wtid = rig.engine->workerTid(0);
  const int64_t worker0 = threadCpuNs(wtid);
  const int64_t iowq0 = ioWqCpuNs();
  const int64_t sender0 = threadCpuNs(sender_tid.load());
  const WorkerStats ws0 = rig.engine->workerStats(0);
  uint64_t got = 0;
  for (auto _ : state) {
    const int n = receiveBatch();
    if (n < 0) {
      state.SkipWithError("forwarding stalled");
      break;
    }
    got += static_cast<uint64_t>(n);
  }
  const int64_t worker1 = threadCpuNs(wtid);
  const int64_t iowq1 = ioWqCpuNs();
  const int64_t sender1 = threadCpuNs(sender_tid.load());
  const WorkerStats ws1 = rig.engine->workerStats(0);

  stop = true;
  received.fetch_add(kWindow * 4);
  received.notify_all();
  sender.join();
  // Drain what is still in flight (bounded: stop at the first 300 ms of silence), so that the
  // drop figure counts only packets the engine socket's queue really refused.
  uint64_t drained = 0;
  for (;;) {
    pollfd pfd{rig.phone_b.fd.get(), POLLIN, 0};
    if (::poll(&pfd, 1, 300) != 1) {
      break;
    }
    const int n = ::recvmmsg(rig.phone_b.fd.get(), rmsgs.data(),
                             static_cast<unsigned>(rmsgs.size()), MSG_DONTWAIT, nullptr);
    drained += n > 0 ? static_cast<uint64_t>(n) : 0;
  }
  rig.engine->sync();

  if (got == 0) {
    return;
  }
  const double pkts = static_cast<double>(got);
  state.SetItemsProcessed(static_cast<int64_t>(got));
  state.SetBytesProcessed(static_cast<int64_t>(got * kPacketSize));
  state.counters["worker_ns_per_pkt"] = static_cast<double>(worker1 - worker0) / pkts;
  state.counters["iowq_ns_per_pkt"] = static_cast<double>(iowq1 - iowq0) / pkts;
  state.counters["sender_ns_per_pkt"] = static_cast<double>(sender1 - sender0) / pkts;
  state.counters["pkts_per_wakeup"] =
      static_cast<double>(ws1.packets - ws0.packets) /
      static_cast<double>(std::max<uint64_t>(1, ws1.batches - ws0.batches));
  state.counters["enobufs"] = static_cast<double>(ws1.enobufs - ws0.enobufs);
  state.counters["reordered"] = static_cast<double>(reordered);
  const double sent = static_cast<double>(sent_total.load());
  const double accepted = static_cast<double>(rig.ca->packets.load());
  state.counters["drop_pct"] = sent > 0 ? 100.0 * (sent - accepted) / sent : 0.0;
  // Forwarded by the engine but never seen at B (must be 0 on loopback).
  const uint64_t seen_at_b = received.load() - kWindow * 4 + drained;
  state.counters["lost_after_engine"] =
      static_cast<double>(rig.ca->forwarded.load()) - static_cast<double>(seen_at_b);
}
BENCHMARK(BM_ForwardOneWorker)->ArgName("windowed")->Arg(1)->Arg(0)->UseRealTime()->MinTime(3.0);

// The per-packet userspace logic alone (source check, classification, RTP parse, SSRC stats),
// without any I/O: what the worker adds on top of the kernel's recvmsg/sendmsg work.
void BM_PacketLogic(benchmark::State& state) {
  SourceLatch latch;
  SourcePolicy pol;
  pol.learning = EndpointLearning::kImmediate;
  latch.configure(pol, true);
  SsrcTracker ssrc;
  const Endpoint src = Endpoint::fromSockAddr(*SockAddr::parse("192.0.2.1:4000"));
  std::vector<std::byte> pkt(kPacketSize);
  pkt[0] = std::byte{0x80};
  uint16_t seq = 0;
  const Clock::time_point now = Clock::now();
  for (auto _ : state) {
    pkt[2] = std::byte(seq >> 8);
    pkt[3] = std::byte(seq & 0xff);
    ++seq;
    auto v = latch.onPacket(src, now);
    benchmark::DoNotOptimize(v);
    const rtp::Bytes b(pkt.data(), pkt.size());
    if (rtp::classify(b) == rtp::PacketKind::kRtp) {
      if (auto h = rtp::parseRtp(b)) {
        benchmark::DoNotOptimize(ssrc.update(*h, b.size()));
      }
    }
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PacketLogic);

}  // namespace
}  // namespace xems::datapath
