#include "tools/xems-perf/rtp_sink.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cerrno>
#include <cstring>
#include <exception>

#include <fmt/format.h>

#include "tools/xems-perf/clock.h"
#include "tools/xems-perf/rtp_packet.h"

namespace xems::perf {

namespace {
constexpr unsigned kRxBatch = 256;
constexpr size_t kRxBufSize = 2048;
constexpr int kMaxRoundsPerPoll = 64;  // then poll again so `stop` is seen promptly
}  // namespace

Sink::Sink(UniqueFd socket) : socket_(std::move(socket)) {}

void Sink::prepare(uint32_t run_id, size_t streams, uint32_t max_seq,
                   std::vector<SockAddr> expected_sources) {
  run_id_ = run_id;
  max_seq_ = max_seq;
  streams_.assign(streams, SinkStreamStats{});
  bitmaps_.assign(streams, std::vector<uint64_t>((static_cast<size_t>(max_seq) + 63) / 64, 0));
  expected_sources_ = std::move(expected_sources);
  latency_hist_.assign(kLatencyBuckets, 0);
  totals_ = SinkTotals{};
  overflow_base_ = overflow_seen_;
  overflow_base_set_ = true;
  last_rx_ns_.store(0, std::memory_order_relaxed);
}

size_t latencyBucket(uint64_t us) {
  // 1 us resolution below 1024 us, then 16 sub-buckets per power of two.
  if (us < 1024) {
    return static_cast<size_t>(us);
  }
  const int log2 = 63 - std::countl_zero(us);
  const size_t sub = static_cast<size_t>((us >> (log2 - 4)) & 0xf);
  const size_t b = 1024 + static_cast<size_t>(log2 - 10) * 16 + sub;
  return std::min(b, kLatencyBuckets - 1);
}

double latencyBucketLowerUs(size_t bucket) {
  if (bucket < 1024) {
    return static_cast<double>(bucket);
  }
  const size_t log2 = (bucket - 1024) / 16 + 10;
  const size_t sub = (bucket - 1024) % 16;
  return static_cast<double>((uint64_t{1} << log2) + (sub << (log2 - 4)));
}

void Sink::account(const uint8_t* data, size_t len, const SockAddr& from, int64_t now) {
  ++totals_.datagrams;
  ProbeFields f;
  if (!readProbe(data, len, f)) {
    ++totals_.foreign;
    return;
  }
  if (run_id_ == 0) {
    run_id_ = f.run_id;  // standalone sink: lock onto the first run seen
  }
  if (f.run_id != run_id_) {
    ++totals_.stale;
    return;
  }
  if (f.stream >= streams_.size() || f.seq >= max_seq_) {
    ++totals_.foreign;
    return;
  }
  SinkStreamStats& s = streams_[f.stream];
  if (!expected_sources_.empty() && !(from == expected_sources_[f.stream])) {
    ++s.wrong_source;
  }
  uint64_t& word = bitmaps_[f.stream][f.seq / 64];
  const uint64_t bit = uint64_t{1} << (f.seq % 64);
  if ((word & bit) != 0) {
    ++s.duplicates;
    return;
  }
  word |= bit;
  ++s.received;
  if (s.any && f.seq < s.highest) {
    ++s.reordered;
  }
  if (!s.any || f.seq > s.highest) {
    s.highest = f.seq;
    s.any = true;
  }
  const int64_t delay_ns = now - static_cast<int64_t>(f.send_ns);
  if (s.received > 1) {
    const double d = std::abs(static_cast<double>(delay_ns - s.last_transit_ns));
    s.jitter_ns += (d - s.jitter_ns) / 16.0;
  }
  s.last_transit_ns = delay_ns;
  ++latency_hist_[latencyBucket(delay_ns > 0 ? static_cast<uint64_t>(delay_ns) / 1000 : 0)];
}

void Sink::run(const std::atomic<bool>& stop) noexcept {
  try {
    runImpl(stop);
  } catch (const std::exception& e) {
    totals_.error = e.what();
  }
}

void Sink::runImpl(const std::atomic<bool>& stop) {
  std::vector<uint8_t> bufs(kRxBatch * kRxBufSize);
  std::vector<mmsghdr> msgs(kRxBatch);
  std::vector<iovec> iovs(kRxBatch);
  std::vector<SockAddr> names(kRxBatch);
  constexpr size_t kCtlSize = CMSG_SPACE(sizeof(uint32_t));
  std::vector<uint8_t> ctl(kRxBatch * kCtlSize);
  const int fd = socket_.get();
  while (!stop.load(std::memory_order_relaxed)) {
    pollfd pfd{.fd = fd, .events = POLLIN, .revents = 0};
    if (::poll(&pfd, 1, 20) <= 0) {
      continue;
    }
    for (int round = 0; round < kMaxRoundsPerPoll; ++round) {
      for (unsigned i = 0; i < kRxBatch; ++i) {
        iovs[i] = iovec{&bufs[i * kRxBufSize], kRxBufSize};
        msghdr& h = msgs[i].msg_hdr;
        h = msghdr{};
        h.msg_name = names[i].sa();
        h.msg_namelen = sizeof(sockaddr_storage);
        h.msg_iov = &iovs[i];
        h.msg_iovlen = 1;
        h.msg_control = &ctl[i * kCtlSize];
        h.msg_controllen = kCtlSize;
      }
      const int got = ::recvmmsg(fd, msgs.data(), kRxBatch, MSG_DONTWAIT, nullptr);
      if (got <= 0) {
        if (got < 0 && errno != EAGAIN && errno != EINTR && totals_.error.empty()) {
          totals_.error = fmt::format("recvmmsg: {}", std::strerror(errno));
        }
        break;
      }
      const int64_t now = monoNs();
      for (int i = 0; i < got; ++i) {
        const msghdr& h = msgs[static_cast<size_t>(i)].msg_hdr;
        account(&bufs[static_cast<size_t>(i) * kRxBufSize], msgs[static_cast<size_t>(i)].msg_len,
                names[static_cast<size_t>(i)], now);
        for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr;
             c = CMSG_NXTHDR(const_cast<msghdr*>(&h), c)) {
          if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
            std::memcpy(&overflow_seen_, CMSG_DATA(c), sizeof overflow_seen_);
          }
        }
      }
      last_rx_ns_.store(now, std::memory_order_relaxed);
      if (static_cast<unsigned>(got) < kRxBatch) {
        break;
      }
    }
  }
}

void summarizeStreams(const std::vector<SinkStreamStats>& streams,
                      const std::vector<uint64_t>& latency_hist, SinkTotals& t) {
  size_t with_jitter = 0;
  for (const SinkStreamStats& s : streams) {
    if (s.received > 1) {
      t.jitter_mean_us += s.jitter_ns / 1000.0;
      t.jitter_max_us = std::max(t.jitter_max_us, s.jitter_ns / 1000.0);
      ++with_jitter;
    }
    t.received += s.received;
    t.duplicates += s.duplicates;
    t.reordered += s.reordered;
    t.wrong_source += s.wrong_source;
  }
  if (with_jitter > 0) {
    t.jitter_mean_us /= static_cast<double>(with_jitter);
  }
  uint64_t n = 0;
  for (uint64_t c : latency_hist) {
    n += c;
  }
  if (n == 0) {
    return;
  }
  auto pct = [&](double q) {
    const uint64_t rank = std::max<uint64_t>(1, static_cast<uint64_t>(q * static_cast<double>(n)));
    uint64_t acc = 0;
    for (size_t b = 0; b < latency_hist.size(); ++b) {
      acc += latency_hist[b];
      if (acc >= rank) {
        return latencyBucketLowerUs(b);
      }
    }
    return latencyBucketLowerUs(latency_hist.size() - 1);
  };
  t.latency_p50_us = pct(0.5);
  t.latency_p99_us = pct(0.99);
  for (size_t b = latency_hist.size(); b-- > 0;) {
    if (latency_hist[b] != 0) {
      t.latency_max_us = latencyBucketLowerUs(b);
      break;
    }
  }
}

SinkTotals Sink::totals() const {
  SinkTotals t = totals_;
  summarizeStreams(streams_, latency_hist_, t);
  t.socket_drops = overflow_base_set_ ? overflow_seen_ - overflow_base_ : overflow_seen_;
  return t;
}

}  // namespace xems::perf
