#include "tools/xems-perf/xdp_sink.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <exception>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>

#include "bpf/perf_sink.h"
#include "perf_sink.skel.h"
#include "tools/xems-perf/clock.h"
#include "tools/xems-perf/netns.h"

namespace xems::perf {

namespace {

constexpr uint64_t kMaxBitmapWords = uint64_t{1} << 28;  // 2 GiB, as the UDP sink's limit
constexpr int64_t kPollNs = 10 * kNsPerMs;

int libbpfPrint(enum libbpf_print_level level, const char* format, va_list args) {
  if (level != LIBBPF_WARN) {
    return 0;
  }
  std::fputs("xems-perf: libbpf: ", stderr);
  return std::vfprintf(stderr, format, args);
}

bool isV4Mapped(const IpAddr& ip) {
  static constexpr uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return ip.isV6() && std::memcmp(ip.bytes(), kPrefix, sizeof kPrefix) == 0;
}

// The device in the current namespace with `ip` configured on it.
Result<std::string> deviceOwning(IpAddr ip) {
  if (isV4Mapped(ip)) {
    ip = IpAddr::fromRaw(Family::kIpv4, ip.bytes() + 12);  // as load() matches it
  }
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) {
    return XEMS_ERRNO(errno, "getifaddrs");
  }
  std::string found;
  for (ifaddrs* i = list; i != nullptr && found.empty(); i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_name == nullptr) {
      continue;
    }
    const socklen_t len =
        i->ifa_addr->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    const auto a = SockAddr::fromSockaddr(i->ifa_addr, len);
    if (a && a->ip() == ip) {
      found = i->ifa_name;
    }
  }
  ::freeifaddrs(list);
  if (found.empty()) {
    return XEMS_INVALID(fmt::format("no device has {} (use --sink-dev)", ip.toString()));
  }
  return found;
}

static_assert(PERF_SINK_LATENCY_BUCKETS == kLatencyBuckets, "the sinks share one histogram layout");

perf_sink_source toSource(const SockAddr& a) {
  perf_sink_source s{};
  IpAddr ip = a.ip();
  if (isV4Mapped(ip)) {
    ip = IpAddr::fromRaw(Family::kIpv4, ip.bytes() + 12);
  }
  s.port = htons(a.port());
  if (ip.isV4()) {
    s.family = 4;
    std::memcpy(&s.addr[0], ip.bytes(), 4);
  } else if (ip.isV6()) {
    s.family = 6;
    std::memcpy(s.addr, ip.bytes(), 16);
  }
  return s;
}

}  // namespace

std::optional<SinkMode> parseSinkMode(std::string_view text) {
  if (text == "udp") {
    return SinkMode::kUdp;
  }
  if (text == "xdp") {
    return SinkMode::kXdp;
  }
  return std::nullopt;
}

std::string_view sinkModeName(SinkMode mode) {
  return mode == SinkMode::kXdp ? "xdp" : "udp";
}

Result<std::unique_ptr<SinkBackend>> makeSink(SinkMode mode, UniqueFd socket,
                                              const XdpSinkOptions& options) {
  if (mode == SinkMode::kUdp) {
    return std::unique_ptr<SinkBackend>(std::make_unique<Sink>(std::move(socket)));
  }
  auto xdp = XdpSink::create(std::move(socket), options);
  if (!xdp.ok()) {
    return std::move(xdp).error();
  }
  return std::unique_ptr<SinkBackend>(std::move(xdp).value());
}

void XdpSink::SkelDeleter::operator()(perf_sink* s) const {
  perf_sink::destroy(s);
}

XdpSink::XdpSink(UniqueFd socket, SockAddr local) : socket_(std::move(socket)), local_(local) {
  const int n = libbpf_num_possible_cpus();
  ncpus_ = n > 0 ? static_cast<size_t>(n) : 1;
}

XdpSink::~XdpSink() {
  if (link_) {
    (void)bpf_link_detach(link_.get());
  }
  link_.reset();
  skel_.reset();
}

Result<std::unique_ptr<XdpSink>> XdpSink::create(UniqueFd socket, const XdpSinkOptions& options) {
  static const bool print_set = [] {
    libbpf_set_print(libbpfPrint);
    return true;
  }();
  (void)print_set;
  auto local = localAddress(socket.get());
  if (!local.ok()) {
    return std::move(local).error();
  }
  std::unique_ptr<XdpSink> sink(new XdpSink(std::move(socket), *local));
  if (local->family() == Family::kIpv6 && local->ip().isAny()) {
    int v6only = 0;
    socklen_t len = sizeof v6only;
    sink->dual_stack_ =
        ::getsockopt(sink->socket_.get(), IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &len) == 0 &&
        v6only == 0;
  }
  auto first = sink->load(0, 1, 64, {});
  if (!first.ok()) {
    return std::move(first).error();
  }
  const int prog_fd = bpf_program__fd((*first)->progs.xems_perf_sink);
  Status attached = runInNetns(options.netns, [&]() -> Status {
    sink->device_ = options.device;
    if (sink->device_.empty()) {
      if (local->ip().isAny()) {
        return XEMS_INVALID("the sink listens on a wildcard address: name its device");
      }
      auto dev = deviceOwning(local->ip());
      if (!dev.ok()) {
        return std::move(dev).error();
      }
      sink->device_ = *dev;
    }
    const unsigned ifindex = ::if_nametoindex(sink->device_.c_str());
    if (ifindex == 0) {
      return XEMS_ERRNO(errno, fmt::format("device {}", sink->device_));
    }
    LIBBPF_OPTS(bpf_link_create_opts, native, .flags = XDP_FLAGS_DRV_MODE);
    int fd = bpf_link_create(prog_fd, static_cast<int>(ifindex), BPF_XDP, &native);
    if (fd >= 0) {
      sink->native_ = true;
    } else {
      const int native_err = -fd;
      LIBBPF_OPTS(bpf_link_create_opts, generic, .flags = XDP_FLAGS_SKB_MODE);
      fd = bpf_link_create(prog_fd, static_cast<int>(ifindex), BPF_XDP, &generic);
      if (fd < 0) {
        return XEMS_ERRNO(-fd, fmt::format("XDP attach to {} failed natively ({}) and in "
                                           "generic mode",
                                           sink->device_, std::strerror(native_err)));
      }
      fmt::print(stderr,
                 "xems-perf: warning: native XDP unavailable on {} ({}): the XDP sink runs in "
                 "generic (skb) mode, which is much slower\n",
                 sink->device_, std::strerror(native_err));
    }
    sink->link_.reset(fd);
    return {};
  });
  if (!attached.ok()) {
    return std::move(attached).error().wrap("XDP sink");
  }
  sink->skel_ = std::move(first).value();
  return sink;
}

Result<XdpSink::SkelPtr> XdpSink::load(uint32_t run_id, size_t streams, uint32_t max_seq,
                                       const std::vector<SockAddr>& expected_sources) const {
  const uint64_t words = (uint64_t{max_seq} + 63) / 64;
  const uint64_t entries = static_cast<uint64_t>(streams) * words;
  if (streams == 0 || words == 0 || entries > kMaxBitmapWords) {
    return XEMS_INVALID(
        fmt::format("XDP sink: {} streams x {} sequences is out of range "
                    "(bitmaps are limited to 2 GiB)",
                    streams, max_seq));
  }
  SkelPtr s(perf_sink::open());
  if (!s) {
    return XEMS_ERRNO(errno, "opening the perf_sink BPF skeleton");
  }
  auto* ro = s->rodata;
  ro->cfg_run_id = run_id;
  ro->cfg_streams = static_cast<uint32_t>(streams);
  ro->cfg_max_seq = max_seq;
  ro->cfg_words = static_cast<uint32_t>(words);
  ro->cfg_check_source = expected_sources.empty() ? 0 : 1;
  ro->cfg_port = htons(local_.port());
  const IpAddr ip = local_.ip();
  if (ip.isV4()) {
    ro->cfg_match_v4 = 1;
    std::memcpy(&ro->cfg_addr4, ip.bytes(), 4);
  } else if (isV4Mapped(ip)) {
    ro->cfg_match_v4 = 1;
    std::memcpy(&ro->cfg_addr4, ip.bytes() + 12, 4);
  } else {
    ro->cfg_match_v6 = 1;
    ro->cfg_match_v4 = dual_stack_ ? 1 : 0;
    std::memcpy(ro->cfg_addr6, ip.bytes(), 16);
  }
  ro->cfg_any_addr = ip.isAny() ? 1 : 0;
  int err = bpf_map__set_max_entries(s->maps.perf_sink_bitmap, static_cast<uint32_t>(entries));
  if (err == 0) {
    err = bpf_map__set_max_entries(s->maps.perf_sink_streams, static_cast<uint32_t>(streams));
  }
  if (err == 0 && !expected_sources.empty()) {
    err = bpf_map__set_max_entries(s->maps.perf_sink_expected, static_cast<uint32_t>(streams));
  }
  if (err != 0) {
    return XEMS_ERRNO(-err, "sizing the XDP sink maps");
  }
  err = perf_sink::load(s.get());
  if (err != 0) {
    return XEMS_ERRNO(-err, "loading the XDP sink program (see libbpf's messages above)");
  }
  // Before the program is swapped in: it never sees a half-filled table. Streams beyond the
  // list keep family 0, which the program does not check.
  const int fd = bpf_map__fd(s->maps.perf_sink_expected);
  for (size_t i = 0; i < expected_sources.size() && i < streams; ++i) {
    const uint32_t key = static_cast<uint32_t>(i);
    const perf_sink_source v = toSource(expected_sources[i]);
    if (bpf_map_update_elem(fd, &key, &v, BPF_ANY) != 0) {
      return XEMS_ERRNO(errno, "filling the XDP sink's expected sources");
    }
  }
  return s;
}

void XdpSink::prepare(uint32_t run_id, size_t streams, uint32_t max_seq,
                      std::vector<SockAddr> expected_sources) {
  error_.clear();
  streams_.assign(streams, SinkStreamStats{});
  latency_hist_.assign(PERF_SINK_LATENCY_BUCKETS, 0);
  datagrams_ = foreign_ = stale_ = socket_datagrams_ = 0;
  last_rx_ns_.store(0, std::memory_order_relaxed);
  // What reached the socket before this trial is not part of it.
  uint8_t buf[2048];
  for (int i = 0; i < 100000 && ::recv(socket_.get(), buf, sizeof buf, MSG_DONTWAIT) >= 0; ++i) {
  }
  auto s = load(run_id, streams, max_seq, expected_sources);
  if (!s.ok()) {
    error_ = s.error().message;
    return;
  }
  const int err =
      bpf_link_update(link_.get(), bpf_program__fd((*s)->progs.xems_perf_sink), nullptr);
  if (err != 0) {
    error_ = fmt::format("XDP sink: swapping the program in: {}", std::strerror(-err));
    return;
  }
  skel_ = std::move(s).value();  // the previous program goes with its maps
}

Result<uint64_t> XdpSink::datagramCount() const {
  std::vector<uint64_t> per_cpu(ncpus_);
  const uint32_t key = PERF_SINK_CNT_DATAGRAMS;
  if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.perf_sink_global), &key, per_cpu.data()) != 0) {
    return XEMS_ERRNO(errno, "reading the XDP sink's counters");
  }
  uint64_t n = 0;
  for (uint64_t v : per_cpu) {
    n += v;
  }
  return n;
}

void XdpSink::run(const std::atomic<bool>& stop) noexcept {
  try {
    runImpl(stop);
  } catch (const std::exception& e) {
    if (error_.empty()) {
      error_ = e.what();
    }
  }
}

void XdpSink::runImpl(const std::atomic<bool>& stop) {
  if (!error_.empty()) {
    return;  // prepare() failed; totals() says why
  }
  uint64_t seen = 0;
  int64_t next_poll = 0;
  uint8_t buf[2048];
  while (!stop.load(std::memory_order_relaxed)) {
    pollfd pfd{.fd = socket_.get(), .events = POLLIN, .revents = 0};
    if (::poll(&pfd, 1, 10) > 0) {
      // Only what the program passed up arrives here (fragments, IPv6 extension headers).
      for (int i = 0; i < 256 && ::recv(socket_.get(), buf, sizeof buf, MSG_DONTWAIT) >= 0; ++i) {
        ++socket_datagrams_;
      }
    }
    const int64_t now = monoNs();
    if (now < next_poll) {
      continue;
    }
    next_poll = now + kPollNs;
    auto n = datagramCount();
    if (!n.ok()) {
      error_ = n.error().message;
      return;
    }
    if (*n + socket_datagrams_ != seen) {
      seen = *n + socket_datagrams_;
      last_rx_ns_.store(now, std::memory_order_relaxed);
    }
  }
  Status s = snapshot();
  if (!s.ok()) {
    error_ = s.error().message;
  }
}

Status XdpSink::snapshot() {
  const int streams_fd = bpf_map__fd(skel_->maps.perf_sink_streams);
  for (size_t i = 0; i < streams_.size(); ++i) {
    const uint32_t key = static_cast<uint32_t>(i);
    perf_sink_stream v{};
    if (bpf_map_lookup_elem_flags(streams_fd, &key, &v, BPF_F_LOCK) != 0) {
      return XEMS_ERRNO(errno, "reading the XDP sink's streams");
    }
    SinkStreamStats& s = streams_[i];
    s.received = v.received;
    s.duplicates = v.duplicates;
    s.reordered = v.reordered;
    s.wrong_source = v.wrong_source;
    s.highest = v.highest;
    s.any = v.any != 0;
    s.jitter_ns =
        static_cast<double>(v.jitter_scaled) / static_cast<double>(1 << PERF_SINK_JITTER_SHIFT);
    s.last_transit_ns = v.last_transit_ns;
  }
  std::vector<uint64_t> per_cpu(ncpus_);
  auto sumPerCpu = [&](int fd, uint32_t key, uint64_t& out) -> Status {
    if (bpf_map_lookup_elem(fd, &key, per_cpu.data()) != 0) {
      return XEMS_ERRNO(errno, "reading an XDP sink counter");
    }
    out = 0;
    for (uint64_t v : per_cpu) {
      out += v;
    }
    return {};
  };
  const int latency_fd = bpf_map__fd(skel_->maps.perf_sink_latency);
  for (uint32_t b = 0; b < PERF_SINK_LATENCY_BUCKETS; ++b) {
    XEMS_TRY_STATUS(sumPerCpu(latency_fd, b, latency_hist_[b]));
  }
  const int global_fd = bpf_map__fd(skel_->maps.perf_sink_global);
  XEMS_TRY_STATUS(sumPerCpu(global_fd, PERF_SINK_CNT_DATAGRAMS, datagrams_));
  XEMS_TRY_STATUS(sumPerCpu(global_fd, PERF_SINK_CNT_FOREIGN, foreign_));
  XEMS_TRY_STATUS(sumPerCpu(global_fd, PERF_SINK_CNT_STALE, stale_));
  return {};
}

SinkTotals XdpSink::totals() const {
  SinkTotals t;
  t.error = error_;
  t.datagrams = datagrams_ + socket_datagrams_;
  t.foreign = foreign_ + socket_datagrams_;
  t.stale = stale_;
  summarizeStreams(streams_, latency_hist_, t);
  return t;
}

}  // namespace xems::perf
