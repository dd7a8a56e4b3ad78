#include "tools/xems-perf/ng_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <random>

#include <fmt/format.h>

#include "tools/xems-perf/clock.h"
#include "tools/xems-perf/netns.h"

namespace xems::perf {

namespace {
constexpr size_t kRxBatch = 16;
constexpr size_t kRxBufSize = 65536;  // ng replies (delete stats) can be several KiB
}  // namespace

Result<NgClient> NgClient::create(const SockAddr& target, std::string_view netns,
                                  const NgClientOptions& options) {
  const SockAddr any(IpAddr::any(target.family()), 0);
  auto fd = openUdp(netns, any, UdpSocketOptions{.rcvbuf = 4 << 20, .sndbuf = 4 << 20});
  if (!fd.ok()) {
    return std::move(fd).error().wrap("ng socket");
  }
  if (::connect(fd->get(), target.sa(), target.len()) != 0) {
    return XEMS_ERRNO(errno, fmt::format("connect {}", target.toString()));
  }
  return NgClient(std::move(fd).value(), options);
}

NgClient::NgClient(UniqueFd fd, const NgClientOptions& options)
    : fd_(std::move(fd)), options_(options), rx_buffers_(kRxBatch, std::string(kRxBufSize, '\0')) {
  std::random_device rd;
  prefix_ = fmt::format("xp{:08x}", rd());
}

Status NgClient::send(std::string_view payload, uint64_t tag) {
  const uint64_t id = next_id_++;
  Pending p;
  p.tag = tag;
  p.message = fmt::format("{}_{} ", prefix_, id);
  p.message.append(payload);
  p.first_send_ns = monoNs();
  p.deadline_ns = p.first_send_ns + options_.timeout_ms * kNsPerMs;
  p.attempts = 1;
  // A full socket buffer or a transient ICMP error is left to the retransmission timer.
  (void)::send(fd_.get(), p.message.data(), p.message.size(), MSG_DONTWAIT);
  pending_.emplace(id, std::move(p));
  return okStatus();
}

void NgClient::expire(int64_t now, const Callback& cb, size_t& delivered) {
  if (now < next_expiry_scan_ns_) {
    return;
  }
  next_expiry_scan_ns_ = now + 2 * kNsPerMs;
  std::vector<uint64_t> dead;
  for (auto& [id, p] : pending_) {
    if (now < p.deadline_ns) {
      continue;
    }
    if (static_cast<int>(p.attempts) < options_.attempts) {
      ++p.attempts;
      ++retransmits_;
      p.deadline_ns = now + options_.timeout_ms * kNsPerMs;
      (void)::send(fd_.get(), p.message.data(), p.message.size(), MSG_DONTWAIT);
      continue;
    }
    dead.push_back(id);
  }
  for (uint64_t id : dead) {
    auto it = pending_.find(id);
    NgReply r;
    r.status = NgReply::Status::kTimeout;
    r.error = "timeout";
    r.latency_ns = now - it->second.first_send_ns;
    r.retransmits = it->second.attempts - 1;
    const uint64_t tag = it->second.tag;
    pending_.erase(it);
    ++delivered;
    cb(tag, r);
  }
}

void NgClient::handleDatagram(std::string_view data, int64_t now, const Callback& cb,
                              size_t& delivered) {
  const size_t space = data.find(' ');
  if (space == std::string_view::npos || space <= prefix_.size() + 1 ||
      data.substr(0, prefix_.size()) != prefix_ || data[prefix_.size()] != '_') {
    ++stray_replies_;
    return;
  }
  uint64_t id = 0;
  const char* first = data.data() + prefix_.size() + 1;
  const char* last = data.data() + space;
  auto [p, ec] = std::from_chars(first, last, id);
  auto it = pending_.end();
  if (ec == std::errc() && p == last) {
    it = pending_.find(id);
  }
  if (it == pending_.end()) {
    ++stray_replies_;  // a late answer to a retransmitted request that already completed
    return;
  }
  NgReply r;
  r.latency_ns = now - it->second.first_send_ns;
  r.retransmits = it->second.attempts - 1;
  const uint64_t tag = it->second.tag;
  pending_.erase(it);
  auto decoded = decodeBencode(data.substr(space + 1));
  if (!decoded.ok() || !decoded->isDict()) {
    r.status = NgReply::Status::kMalformed;
    r.error = "malformed reply";
  } else {
    r.dict = &decoded.value();
    const auto result = decoded->findString("result");
    if (result && *result == "ok") {
      r.status = NgReply::Status::kOk;
    } else {
      r.status = NgReply::Status::kError;
      const auto reason = decoded->findString("error-reason");
      if (reason) {
        r.error = *reason;
      } else if (result) {
        r.error = *result;  // e.g. "load limit"
      } else {
        r.error = "reply without result";
      }
    }
  }
  ++delivered;
  cb(tag, r);
}

size_t NgClient::poll(int timeout_ms, const Callback& cb) {
  size_t delivered = 0;
  pollfd pfd{.fd = fd_.get(), .events = POLLIN, .revents = 0};
  const int n = ::poll(&pfd, 1, timeout_ms);
  const int64_t now = monoNs();
  if (n > 0 && (pfd.revents & POLLIN) != 0) {
    mmsghdr msgs[kRxBatch];
    iovec iovs[kRxBatch];
    for (size_t i = 0; i < kRxBatch; ++i) {
      iovs[i] = iovec{rx_buffers_[i].data(), kRxBufSize};
      msgs[i] = mmsghdr{};
      msgs[i].msg_hdr.msg_iov = &iovs[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    // Bounded: at most a few batches per poll so timers keep running under load.
    for (int round = 0; round < 8; ++round) {
      const int got = ::recvmmsg(fd_.get(), msgs, kRxBatch, MSG_DONTWAIT, nullptr);
      if (got <= 0) {
        break;
      }
      for (int i = 0; i < got; ++i) {
        handleDatagram(std::string_view(rx_buffers_[i].data(), msgs[i].msg_len), now, cb,
                       delivered);
      }
      if (static_cast<size_t>(got) < kRxBatch) {
        break;
      }
    }
  }
  expire(now, cb, delivered);
  return delivered;
}

}  // namespace xems::perf
