#include "datapath/uring_engine.h"

#include <liburing.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <string>
#include <thread>
#include <utility>
#include <variant>

#include "common/log.h"
#include "datapath/endpoint.h"
#include "datapath/rtp.h"
#include "datapath/source_latch.h"
#include "datapath/ssrc_tracker.h"

namespace xems::datapath {

namespace {

// ---- user_data encoding -------------------------------------------------------------------------
// Every SQE carries one 64-bit tag: the operation in the top byte, then for receives the flow slot
// (24 bits) and its generation (32 bits), for sends the buffer id. A completion for a slot whose
// generation moved on is stale and can be recognised (it cannot occur by construction: a slot is
// only reused after its receive's final completion, but the check is cheap).
enum class Op : uint8_t { kRecv = 1, kSend = 2, kWake = 3, kCancel = 4 };
constexpr int kOpShift = 56;
constexpr uint32_t kMaxSlots = 1u << 24;

constexpr uint64_t userData(Op op, uint64_t payload) {
  return (static_cast<uint64_t>(op) << kOpShift) | payload;
}
constexpr Op opOf(uint64_t ud) { return static_cast<Op>(ud >> kOpShift); }
constexpr uint64_t flowRef(uint32_t slot, uint32_t gen) {
  return (static_cast<uint64_t>(slot) << 32) | gen;
}
constexpr uint32_t refSlot(uint64_t ref) {
  return static_cast<uint32_t>(ref >> 32) & (kMaxSlots - 1);
}
constexpr uint32_t refGen(uint64_t ref) { return static_cast<uint32_t>(ref); }

constexpr uint16_t kBufGroup = 0;
constexpr uint32_t kMaxRecvFailures = 16;  // consecutive receive errors before we stop re-arming
constexpr uint32_t kNoSlot = ~0u;

// Counters in FlowCounters have exactly one writer (the owning worker), so an increment is a
// relaxed load and store: no locked instruction on the packet path, and readers never see a torn
// value.
inline void bump(std::atomic<uint64_t>& c, uint64_t n = 1) {
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

std::string errnoText(int err) { return std::strerror(err); }

// ---- owning types for kernel resources (R12) ----------------------------------------------------

class MappedRegion {
 public:
  MappedRegion() = default;
  ~MappedRegion() { reset(); }
  MappedRegion(const MappedRegion&) = delete;
  MappedRegion& operator=(const MappedRegion&) = delete;
  MappedRegion(MappedRegion&& o) noexcept
      : addr_(std::exchange(o.addr_, nullptr)), len_(std::exchange(o.len_, 0)) {}
  MappedRegion& operator=(MappedRegion&& o) noexcept {
    if (this != &o) {
      reset();
      addr_ = std::exchange(o.addr_, nullptr);
      len_ = std::exchange(o.len_, 0);
    }
    return *this;
  }

  // Anonymous private mapping. MAP_POPULATE pre-faults it so that the first packets of a busy
  // worker do not take page faults in the kernel's copy-to-user.
  static Result<MappedRegion> map(size_t len) {
    void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE,
                     MAP_ANONYMOUS | MAP_PRIVATE | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      return XEMS_ERRNO(err, "mmap " + std::to_string(len) + " bytes: " + errnoText(err));
    }
    MappedRegion r;
    r.addr_ = p;
    r.len_ = len;
    return r;
  }
  void reset() {
    if (addr_ != nullptr) {
      ::munmap(addr_, len_);
      addr_ = nullptr;
      len_ = 0;
    }
  }
  void* data() const { return addr_; }

 private:
  void* addr_ = nullptr;
  size_t len_ = 0;
};

class IoUringRing {
 public:
  IoUringRing() = default;
  ~IoUringRing() { exit(); }
  IoUringRing(const IoUringRing&) = delete;
  IoUringRing& operator=(const IoUringRing&) = delete;
  IoUringRing(IoUringRing&&) = delete;
  IoUringRing& operator=(IoUringRing&&) = delete;

  // Returns -errno like liburing.
  int init(unsigned entries, io_uring_params& params) {
    const int r = io_uring_queue_init_params(entries, &ring_, &params);
    initialized_ = r == 0;
    return r;
  }
  void exit() {
    if (initialized_) {
      io_uring_queue_exit(&ring_);
      initialized_ = false;
    }
  }
  io_uring* get() { return &ring_; }

 private:
  io_uring ring_{};
  bool initialized_ = false;
};

// The provided-buffer ring (IORING_REGISTER_PBUF_RING, Linux 5.19). liburing 2.3 has no
// io_uring_setup_buf_ring() (that arrived in 2.4), so we do what its examples/io_uring-udp.c
// does: mmap page-aligned memory for the ring of io_uring_buf descriptors, register it, and fill
// it with every buffer. The kernel picks a buffer only when a datagram is actually there, so the
// pool is shared by all sockets of the worker instead of one buffer parked per socket.
class ProvidedBuffers {
 public:
  Status init(io_uring* ring, uint32_t count, uint32_t size) {
    count_ = count;
    size_ = size;
    mask_ = io_uring_buf_ring_mask(count);
    auto ring_mem = MappedRegion::map(sizeof(io_uring_buf) * count);
    if (!ring_mem) {
      return std::move(ring_mem).error().wrap("buffer ring");
    }
    auto buf_mem = MappedRegion::map(static_cast<size_t>(count) * size);
    if (!buf_mem) {
      return std::move(buf_mem).error().wrap("receive buffers");
    }
    ring_mem_ = std::move(*ring_mem);
    buf_mem_ = std::move(*buf_mem);
    br_ = static_cast<io_uring_buf_ring*>(ring_mem_.data());
    base_ = static_cast<uint8_t*>(buf_mem_.data());
    io_uring_buf_ring_init(br_);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<uintptr_t>(br_);
    reg.ring_entries = count;
    reg.bgid = kBufGroup;
    const int r = io_uring_register_buf_ring(ring, &reg, 0);
    if (r < 0) {
      return XEMS_ERRNO(-r, "io_uring_register_buf_ring: " + errnoText(-r) +
                                " (provided-buffer rings need Linux 5.19)");
    }
    for (uint32_t i = 0; i < count; ++i) {
      recycle(static_cast<uint16_t>(i));
    }
    flush();
    return okStatus();
  }
  void release() {
    br_ = nullptr;
    base_ = nullptr;
    ring_mem_.reset();
    buf_mem_.reset();
  }

  uint8_t* buffer(uint16_t bid) const { return base_ + static_cast<size_t>(bid) * size_; }
  // Queues a buffer for return; it becomes visible to the kernel at flush(), once per batch.
  void recycle(uint16_t bid) {
    io_uring_buf_ring_add(br_, buffer(bid), size_, bid, mask_, pending_++);
  }
  uint32_t flush() {
    const uint32_t n = static_cast<uint32_t>(pending_);
    if (n != 0) {
      io_uring_buf_ring_advance(br_, pending_);
      pending_ = 0;
    }
    return n;
  }
  uint32_t count() const { return count_; }

 private:
  MappedRegion ring_mem_;
  MappedRegion buf_mem_;
  io_uring_buf_ring* br_ = nullptr;
  uint8_t* base_ = nullptr;
  uint32_t count_ = 0;
  uint32_t size_ = 0;
  int mask_ = 0;
  int pending_ = 0;
};

// Ring setup flags, best first. SINGLE_ISSUER (6.0) lets the kernel skip submission locking;
// DEFER_TASKRUN (6.1, needs SINGLE_ISSUER) runs completion task work only when this thread asks
// for completions, so a busy worker is not interrupted per packet and completions arrive in
// batches. COOP_TASKRUN avoids IPIs for task work; SUBMIT_ALL keeps submitting after a bad SQE so
// that every SQE we prepared produces exactly one final CQE (our in-flight accounting relies on
// it). Older kernels reject unknown flags with EINVAL, so we step down.
constexpr unsigned kBaseFlags =
    IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_CQSIZE;
constexpr unsigned kFlagSets[] = {
    kBaseFlags | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
    kBaseFlags | IORING_SETUP_SINGLE_ISSUER,
    kBaseFlags,
};

int initRing(IoUringRing& ring, unsigned sq_entries, unsigned cq_entries, unsigned* used_flags) {
  int r = -EINVAL;
  for (unsigned flags : kFlagSets) {
    io_uring_params p{};
    p.flags = flags;
    p.cq_entries = cq_entries;
    r = ring.init(sq_entries, p);
    if (r == 0) {
      *used_flags = flags;
      return 0;
    }
    if (r != -EINVAL) {
      return r;
    }
  }
  return r;
}

// ---- commands ----------------------------------------------------------------------------------

struct AddCmd {
  FlowSpec spec;
  UniqueFd fd;
  int family = AF_INET;
};
struct UpdateCmd {
  FlowSpec spec;
  bool relearn = false;
};
struct RemoveCmd {
  FlowId id = 0;
};
struct SyncCmd {
  std::promise<void> done;
};
struct StopCmd {};
using Command = std::variant<AddCmd, UpdateCmd, RemoveCmd, SyncCmd, StopCmd>;

#define XEMS_WORKER_STATS(X) \
  X(batches)                 \
  X(cqes)                    \
  X(packets)                 \
  X(enobufs)                 \
  X(rearms)                  \
  X(truncated)               \
  X(sq_full)                 \
  X(no_sqe)                  \
  X(send_errors)             \
  X(recv_errors)

struct AtomicWorkerStats {
#define XEMS_X(name) std::atomic<uint64_t> name{0};
  XEMS_WORKER_STATS(XEMS_X)
#undef XEMS_X
};

}  // namespace

// ---- the worker --------------------------------------------------------------------------------

class UringEngine::Worker {
 public:
  Worker(uint32_t index, const EngineOptions& options) : index_(index), options_(options) {}
  ~Worker() { stopAndJoin(); }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  Worker(Worker&&) = delete;
  Worker& operator=(Worker&&) = delete;

  // Creates the wake-up eventfd, starts the thread and waits for its ring setup.
  Status start() {
    // A blocking eventfd on purpose: io_uring reads it with a poll-driven retry. On an
    // O_NONBLOCK file io_uring would complete the read with -EAGAIN instead of waiting.
    const int efd = ::eventfd(0, EFD_CLOEXEC);
    if (efd < 0) {
      const int err = errno;
      return XEMS_ERRNO(err, "eventfd: " + errnoText(err));
    }
    event_fd_.reset(efd);
    std::promise<Status> ready;
    auto ready_future = ready.get_future();
    thread_ = std::thread([this, p = std::move(ready)]() mutable { run(std::move(p)); });
    Status st = ready_future.get();
    running_ = st.ok();
    return st;
  }

  void post(Command cmd) {
    {
      std::lock_guard lock(queue_mu_);
      queue_.push_back(std::move(cmd));
    }
    const uint64_t one = 1;
    while (::write(event_fd_.get(), &one, sizeof one) < 0 && errno == EINTR) {
    }
  }

  void requestStop() {
    if (running_ && !stop_posted_) {
      stop_posted_ = true;
      post(StopCmd{});
    }
  }

  void stopAndJoin() {
    requestStop();
    if (thread_.joinable()) {
      thread_.join();
    }
  }

  WorkerStats stats() const {
    WorkerStats s;
#define XEMS_X(name) s.name = stats_.name.load(std::memory_order_relaxed);
    XEMS_WORKER_STATS(XEMS_X)
#undef XEMS_X
    return s;
  }

  std::optional<int64_t> cpuNs() {
    if (!running_ || !thread_.joinable()) {
      return std::nullopt;
    }
    clockid_t cid;
    if (pthread_getcpuclockid(thread_.native_handle(), &cid) != 0) {
      return std::nullopt;
    }
    timespec ts{};
    if (::clock_gettime(cid, &ts) != 0) {
      return std::nullopt;
    }
    return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
  }

  pid_t tid() const { return tid_.load(std::memory_order_acquire); }

 private:
  enum class FlowState : uint8_t { kFree, kActive, kRemoving };

  struct Flow {
    uint32_t gen = 1;
    FlowState state = FlowState::kFree;
    bool recv_armed = false;
    bool attention = false;      // queued in attention_
    bool cancel_wanted = false;  // removal could not get an SQE for the cancel yet
    bool rtcp = false;
    bool mux = false;
    bool send_enabled = true;
    int family = AF_INET;
    uint32_t sends_inflight = 0;  // sendmsg SQEs using this flow's socket
    uint32_t recv_failures = 0;   // consecutive receive errors
    FlowId id = 0;
    FlowId rtp_sink = 0;
    FlowId rtcp_sink = 0;
    uint64_t rtp_sink_ref = 0;  // cached flowRef of rtp_sink, 0 = unresolved
    uint64_t rtcp_sink_ref = 0;
    UniqueFd fd;
    SourceLatch latch;
    SsrcTracker ssrc;
    std::shared_ptr<FlowCounters> counters;
  };

  // The sendmsg arguments of one in-flight forward, indexed by the id of the receive buffer it
  // sends from: a buffer carries at most one send at a time, so the array needs no allocator and
  // the kernel may read msghdr/iovec/address at any time until the send completes.
  struct SendSlot {
    msghdr msg{};
    iovec iov{};
    sockaddr_in6 dst{};    // large enough for sockaddr_in too
    uint64_t src_ref = 0;  // flow the packet arrived on (for error counting)
    uint32_t sink_slot = 0;
  };

  // ---- thread body ----

  void run(std::promise<Status> ready) {
    char name[16];
    std::snprintf(name, sizeof name, "xems-media-%u", index_);
    pthread_setname_np(pthread_self(), name);
    tid_.store(::gettid(), std::memory_order_release);
    Status st = init();
    const bool ok = st.ok();
    ready.set_value(std::move(st));
    if (!ok) {
      return;
    }
    loop();
    teardown();
  }

  Status init() {
    // The ring is created on the worker thread itself: with IORING_SETUP_SINGLE_ISSUER the
    // creating task becomes the only one allowed to submit, and buffer-ring registration must
    // come from it as well.
    const uint32_t cq_entries = 2 * options_.buffers_per_worker + options_.sq_entries;
    const int r = initRing(ring_, options_.sq_entries, cq_entries, &ring_flags_);
    if (r < 0) {
      return XEMS_ERRNO(-r, "io_uring_queue_init: " + errnoText(-r));
    }
    // Registering the ring fd saves an fdget/fdput per io_uring_enter (5.18); optional.
    (void)io_uring_register_ring_fd(ring_.get());
    XEMS_TRY_STATUS(
        buffers_.init(ring_.get(), options_.buffers_per_worker, options_.buffer_size));
    ring_free_ = buffers_.count();
    sends_.resize(options_.buffers_per_worker);
    flows_.reserve(256);
    free_.reserve(256);
    attention_.reserve(256);
    scratch_.reserve(256);
    // One msghdr template for every multishot receive: the kernel only reads msg_namelen and
    // msg_controllen from it and lays each buffer out as io_uring_recvmsg_out, source address
    // (28 bytes, enough for sockaddr_in6), then the payload.
    recv_msg_.msg_namelen = sizeof(sockaddr_in6);
    recv_msg_.msg_controllen = 0;
    armWake();
    if ((ring_flags_ & IORING_SETUP_DEFER_TASKRUN) == 0) {
      XLOG_WARN(kMedia, "media worker {}: kernel lacks IORING_SETUP_DEFER_TASKRUN (6.1); "
                "running without it", index_);
    }
    XLOG_DEBUG(kMedia, "media worker {} up: {} buffers x {} bytes, sq {}", index_,
               options_.buffers_per_worker, options_.buffer_size, options_.sq_entries);
    return okStatus();
  }

  void loop() {
    io_uring* ring = ring_.get();
    while (!(stopping_ && inflight_ == 0)) {
      // The one syscall of the loop: submits everything queued while handling the previous batch
      // (forwards, re-arms, cancels) and sleeps until at least one completion is there.
      const int r = io_uring_submit_and_wait(ring, 1);
      if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY && r != -ETIME) {
        XLOG_ERROR(kMedia, "media worker {}: io_uring_submit_and_wait: {}", index_,
                   errnoText(-r));
        std::abort();  // EBADF/EFAULT/EINVAL here are programming errors (R14)
      }
      const Clock::time_point now = Clock::now();
      now_ = now;
      now_ns_ = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch())
                    .count();
      unsigned head;
      unsigned n = 0;
      io_uring_cqe* cqe;
      io_uring_for_each_cqe(ring, head, cqe) {
        handle(*cqe);
        ++n;
      }
      io_uring_cq_advance(ring, n);
      endOfBatch();
      local_.batches++;
      local_.cqes += n;
      publishStats();
    }
  }

  void teardown() {
    // Every flow went through removal (StopCmd) and inflight_ is 0: no request references a
    // socket or a buffer any more, so the ring can go before the memory it pointed into.
    for (auto& p : pending_syncs_) {
      p.set_value();
    }
    pending_syncs_.clear();
    {
      std::lock_guard lock(queue_mu_);
      for (auto& cmd : queue_) {
        if (auto* s = std::get_if<SyncCmd>(&cmd)) {
          s->done.set_value();
        }
      }
      queue_.clear();
    }
    flows_.clear();
    ring_.exit();
    buffers_.release();
    publishStats();
  }

  // ---- completions ----

  void handle(const io_uring_cqe& cqe) {
    if ((cqe.flags & IORING_CQE_F_MORE) == 0) {
      --inflight_;
    }
    switch (opOf(cqe.user_data)) {
      case Op::kRecv:
        onRecv(cqe.user_data, cqe.res, cqe.flags);
        break;
      case Op::kSend:
        onSend(cqe.user_data, cqe.res);
        break;
      case Op::kWake:
        onWake();
        break;
      case Op::kCancel:
        break;
    }
  }

  void onRecv(uint64_t ud, int res, uint32_t flags) {
    const uint32_t slot = refSlot(ud);
    Flow& f = flows_[slot];
    const bool more = (flags & IORING_CQE_F_MORE) != 0;
    const bool has_buf = (flags & IORING_CQE_F_BUFFER) != 0;
    const auto bid = static_cast<uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
    if (has_buf) {
      --ring_free_;
    }
    if (f.gen != refGen(ud)) {
      if (has_buf) {
        buffers_.recycle(bid);
      }
      return;
    }
    if (!more) {
      f.recv_armed = false;
    }
    if (has_buf) {
      if (res >= 0 && f.state == FlowState::kActive) {
        f.recv_failures = 0;
        onPacket(f, slot, bid, res);
      } else {
        buffers_.recycle(bid);
      }
    } else if (res == -ENOBUFS) {
      local_.enobufs++;
    } else if (res < 0 && res != -ECANCELED) {
      local_.recv_errors++;
      if (++f.recv_failures == kMaxRecvFailures && f.state == FlowState::kActive) {
        XLOG_WARN(kMedia, "media worker {}: flow {} receive keeps failing ({}); not re-arming",
                  index_, f.id, errnoText(-res));
      }
    }
    if (!more) {
      if (f.state == FlowState::kActive) {
        needAttention(slot);  // re-armed at the end of the batch, once buffers are back
      } else if (f.state == FlowState::kRemoving) {
        tryFinishRemoval(slot);
      }
    }
  }

  void onPacket(Flow& f, uint32_t slot, uint16_t bid, int res) {
    local_.packets++;
    FlowCounters& c = *f.counters;
    auto* out = io_uring_recvmsg_validate(buffers_.buffer(bid), res, &recv_msg_);
    if (out == nullptr) {
      bump(c.errors);
      buffers_.recycle(bid);
      return;
    }
    if ((out->flags & MSG_TRUNC) != 0) {
      local_.truncated++;
      bump(c.errors);
      buffers_.recycle(bid);
      return;
    }
    const Endpoint src = Endpoint::fromSockaddr(
        io_uring_recvmsg_name(out), std::min<size_t>(out->namelen, recv_msg_.msg_namelen));
    auto* payload = static_cast<std::byte*>(io_uring_recvmsg_payload(out, &recv_msg_));
    const uint32_t len = io_uring_recvmsg_payload_length(out, res, &recv_msg_);

    // Only something that looks like RTP or RTCP may latch a stream: a probe of random bytes
    // from a port scanner must not become the peer. Such packets from a source that is not
    // latched are dropped (counted as malformed); from the latched peer they are forwarded.
    const rtp::Bytes pkt(payload, len);
    const rtp::PacketKind kind = rtp::classify(pkt);
    if (kind == rtp::PacketKind::kOther && !(f.latch.latched() == src)) {
      bump(c.malformed);
      buffers_.recycle(bid);
      return;
    }
    SourceLatch::Verdict verdict = f.latch.onPacket(src, now_);
    if (verdict == SourceLatch::Verdict::kLatched && options_.latch_veto) {
      // XDP may have forwarded the peer's own packets, which this worker never saw.
      if (auto peer = options_.latch_veto(c); peer && !(Endpoint::fromSockAddr(*peer) == src)) {
        f.latch.confirm(Endpoint::fromSockAddr(*peer));
        verdict = f.latch.onPacket(src, now_);
        publishLearned(f);
        if (options_.on_latch) {
          options_.on_latch(f.id);
        }
      }
    }
    if (verdict == SourceLatch::Verdict::kDrop) {
      bump(c.dropped_source);
      buffers_.recycle(bid);
      return;
    }
    if (verdict == SourceLatch::Verdict::kLatched) {
      publishLearned(f);
      if (options_.on_latch) {
        options_.on_latch(f.id);
      }
    }
    bump(c.packets);
    bump(c.bytes, len);
    c.last_packet_ns.store(now_ns_, std::memory_order_relaxed);

    FlowId sink_id = f.rtp_sink;
    uint64_t* sink_ref = &f.rtp_sink_ref;
    if (f.rtcp) {
      if (kind != rtp::PacketKind::kRtcp) {
        bump(c.malformed);
      }
    } else if (kind == rtp::PacketKind::kRtcp) {
      // RFC 5761 demux: on a muxed socket RTCP goes to the RTCP sink; on a plain RTP socket
      // it is not RTP-parsed either, but follows everything else to rtp_sink.
      if (f.mux) {
        sink_id = f.rtcp_sink;
        sink_ref = &f.rtcp_sink_ref;
      }
    } else if (auto h = rtp::parseRtp(pkt)) {
      if (f.ssrc.update(*h, len)) {
        publishSsrc(f);
      }
    } else {
      bump(c.malformed);  // still forwarded, as rtpengine does
    }

    if (!f.send_enabled) {
      buffers_.recycle(bid);
      return;
    }
    const uint32_t sink_slot = resolve(sink_id, *sink_ref);
    if (sink_slot == kNoSlot) {
      bump(c.dropped_no_sink);
      buffers_.recycle(bid);
      return;
    }
    Flow& sink = flows_[sink_slot];
    const Endpoint& dst = sink.latch.destination();
    if (!dst.valid()) {
      bump(c.dropped_no_sink);
      buffers_.recycle(bid);
      return;
    }
    SendSlot& s = sends_[bid];
    const socklen_t alen = dst.toSockaddr(sink.family, &s.dst);
    if (alen == 0) {
      bump(c.errors);  // e.g. IPv6 peer behind an IPv4-only socket
      buffers_.recycle(bid);
      return;
    }
    io_uring_sqe* sqe = getSqe();
    if (sqe == nullptr) {
      local_.no_sqe++;
      bump(c.errors);
      buffers_.recycle(bid);
      return;
    }
    s.iov.iov_base = payload;
    s.iov.iov_len = len;
    s.msg.msg_name = &s.dst;
    s.msg.msg_namelen = alen;
    s.msg.msg_iov = &s.iov;
    s.msg.msg_iovlen = 1;
    s.msg.msg_control = nullptr;
    s.msg.msg_controllen = 0;
    s.msg.msg_flags = 0;
    s.src_ref = flowRef(slot, f.gen);
    s.sink_slot = sink_slot;
    // Zero copy: the payload is sent straight out of the receive buffer, which goes back to the
    // buffer ring only when this send completes (onSend).
    io_uring_prep_sendmsg(sqe, sink.fd.get(), &s.msg, 0);
    io_uring_sqe_set_data64(sqe, userData(Op::kSend, bid));
    ++inflight_;
    ++sink.sends_inflight;
    // forwarded counts packets handed to the kernel; a send that then fails is added to errors.
    bump(c.forwarded);
  }

  void onSend(uint64_t ud, int res) {
    const auto bid = static_cast<uint16_t>(ud);
    SendSlot& s = sends_[bid];
    const uint32_t sink_slot = s.sink_slot;
    if (res < 0) {
      local_.send_errors++;
      Flow& src = flows_[refSlot(s.src_ref)];
      if (src.gen == refGen(s.src_ref) && src.state != FlowState::kFree) {
        bump(src.counters->errors);
      }
    }
    buffers_.recycle(bid);
    Flow& sink = flows_[sink_slot];
    --sink.sends_inflight;
    if (sink.state == FlowState::kRemoving) {
      tryFinishRemoval(sink_slot);
    }
  }

  void onWake() {
    processCommands();
    if (!stopping_) {
      armWake();
    }
  }

  // Once per batch: hand recycled buffers back to the kernel with one store-release, then re-arm
  // receives that stopped. A receive stopped by ENOBUFS is re-armed only when the ring has
  // buffers again; re-arming into an empty ring would just fail again at once and spin.
  void endOfBatch() {
    ring_free_ += buffers_.flush();
    if (attention_.empty()) {
      return;
    }
    scratch_.swap(attention_);
    for (uint32_t slot : scratch_) {
      Flow& f = flows_[slot];
      f.attention = false;
      if (f.state == FlowState::kRemoving) {
        if (f.cancel_wanted && f.recv_armed) {
          f.cancel_wanted = false;
          requestCancel(slot);
        }
        continue;
      }
      if (f.state != FlowState::kActive || f.recv_armed || f.recv_failures >= kMaxRecvFailures) {
        continue;
      }
      if (ring_free_ == 0) {
        needAttention(slot);  // a send completion will return buffers and bring us back here
        continue;
      }
      armRecv(slot);
      local_.rearms++;
    }
    scratch_.clear();
  }

  // ---- commands ----

  void processCommands() {
    {
      std::lock_guard lock(queue_mu_);
      commands_.swap(queue_);
    }
    for (Command& cmd : commands_) {
      std::visit([this](auto& c) { apply(c); }, cmd);
    }
    commands_.clear();
  }

  void apply(AddCmd& c) {
    if (stopping_) {
      return;  // the socket closes with the command
    }
    uint32_t slot;
    if (!free_.empty()) {
      slot = free_.back();
      free_.pop_back();
    } else {
      if (flows_.size() >= kMaxSlots) {
        XLOG_ERROR(kMedia, "media worker {}: flow table full, flow {} not added", index_,
                   c.spec.id);
        return;
      }
      flows_.emplace_back();
      slot = static_cast<uint32_t>(flows_.size() - 1);
    }
    Flow& f = flows_[slot];
    f.state = FlowState::kActive;
    f.id = c.spec.id;
    f.fd = std::move(c.fd);
    f.family = c.family;
    f.counters = std::move(c.spec.counters);
    f.recv_armed = false;
    f.cancel_wanted = false;
    f.recv_failures = 0;
    f.sends_inflight = 0;
    f.latch = SourceLatch{};
    f.ssrc = SsrcTracker{};
    applySpec(f, c.spec, /*relearn=*/true);
    if (c.spec.source.latched) {
      publishLearned(f);
    }
    by_id_.insert_or_assign(c.spec.id, slot);
    armRecv(slot);
  }

  void apply(UpdateCmd& c) {
    auto it = by_id_.find(c.spec.id);
    if (it == by_id_.end()) {
      return;
    }
    Flow& f = flows_[it->second];
    const bool had_latch = f.latch.latched().valid();
    applySpec(f, c.spec, c.relearn);
    if (c.spec.source.latched || (had_latch && !f.latch.latched().valid())) {
      publishLearned(f);
    }
  }

  void apply(RemoveCmd& c) {
    auto it = by_id_.find(c.id);
    if (it == by_id_.end()) {
      return;
    }
    startRemoval(it->second);
  }

  void apply(SyncCmd& c) {
    for (Flow& f : flows_) {
      if (f.state != FlowState::kFree && f.ssrc.size() != 0) {
        publishSsrc(f);
      }
    }
    if (pending_removals_ == 0) {
      c.done.set_value();
    } else {
      pending_syncs_.push_back(std::move(c.done));
    }
  }

  void apply(StopCmd&) {
    stopping_ = true;
    for (uint32_t slot = 0; slot < flows_.size(); ++slot) {
      if (flows_[slot].state == FlowState::kActive) {
        startRemoval(slot);
      }
    }
  }

  static void applySpec(Flow& f, const FlowSpec& spec, bool relearn) {
    f.rtcp = spec.rtcp;
    f.mux = spec.mux;
    f.send_enabled = spec.send_enabled;
    f.rtp_sink = spec.rtp_sink;
    f.rtcp_sink = spec.rtcp_sink;
    f.rtp_sink_ref = 0;
    f.rtcp_sink_ref = 0;
    f.latch.configure(spec.source, relearn);
  }

  // ---- flows ----

  uint32_t resolve(FlowId id, uint64_t& cached) {
    if (id == 0) {
      return kNoSlot;
    }
    if (cached != 0) {
      const uint32_t slot = refSlot(cached);
      const Flow& s = flows_[slot];
      if (s.gen == refGen(cached) && s.state == FlowState::kActive) {
        return slot;
      }
    }
    auto it = by_id_.find(id);
    if (it == by_id_.end()) {
      cached = 0;
      return kNoSlot;
    }
    cached = flowRef(it->second, flows_[it->second].gen);
    return it->second;
  }

  void startRemoval(uint32_t slot) {
    Flow& f = flows_[slot];
    by_id_.erase(f.id);
    f.state = FlowState::kRemoving;
    ++pending_removals_;
    if (f.ssrc.size() != 0) {
      publishSsrc(f);
    }
    if (f.recv_armed) {
      requestCancel(slot);
    }
    tryFinishRemoval(slot);
  }

  // Cancels the flow's multishot receive by its user_data. The socket is closed only once that
  // receive has posted its final CQE (-ECANCELED, or whatever ended it first) and no sendmsg from
  // the socket is in flight: after that the kernel holds no reference to the file, so close()
  // really frees the port.
  void requestCancel(uint32_t slot) {
    Flow& f = flows_[slot];
    io_uring_sqe* sqe = getSqe();
    if (sqe == nullptr) {
      f.cancel_wanted = true;
      needAttention(slot);
      return;
    }
    io_uring_prep_cancel64(sqe, userData(Op::kRecv, flowRef(slot, f.gen)), 0);
    io_uring_sqe_set_data64(sqe, userData(Op::kCancel, 0));
    ++inflight_;
  }

  void tryFinishRemoval(uint32_t slot) {
    Flow& f = flows_[slot];
    if (f.state != FlowState::kRemoving || f.recv_armed || f.sends_inflight != 0) {
      return;
    }
    f.fd.reset();
    f.counters.reset();
    f.state = FlowState::kFree;
    f.gen = f.gen + 1 == 0 ? 1 : f.gen + 1;
    free_.push_back(slot);
    if (--pending_removals_ == 0) {
      for (auto& p : pending_syncs_) {
        p.set_value();
      }
      pending_syncs_.clear();
    }
  }

  void needAttention(uint32_t slot) {
    Flow& f = flows_[slot];
    if (!f.attention) {
      f.attention = true;
      attention_.push_back(slot);
    }
  }

  // ---- SQEs ----

  // A full SQ is backpressure, not an error: flush what is queued to the kernel and retry. Only
  // if the kernel refuses to take SQEs (its CQ backlog is full, -EBUSY) does this return null;
  // the caller then drops and counts (packets) or retries at the end of the batch (re-arm, cancel).
  io_uring_sqe* getSqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(ring_.get());
    if (sqe != nullptr) {
      return sqe;
    }
    local_.sq_full++;
    io_uring_submit(ring_.get());
    return io_uring_get_sqe(ring_.get());
  }

  // Multishot recvmsg with buffer selection (Linux 6.0): one SQE keeps producing a CQE per
  // datagram until it fails or runs out of buffers, at which point IORING_CQE_F_MORE is clear
  // and we re-arm.
  void armRecv(uint32_t slot) {
    Flow& f = flows_[slot];
    io_uring_sqe* sqe = getSqe();
    if (sqe == nullptr) {
      needAttention(slot);
      return;
    }
    io_uring_prep_recvmsg_multishot(sqe, f.fd.get(), &recv_msg_, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = kBufGroup;
    io_uring_sqe_set_data64(sqe, userData(Op::kRecv, flowRef(slot, f.gen)));
    f.recv_armed = true;
    ++inflight_;
  }

  // The control eventfd is read through the ring, so a command wakes the worker out of the same
  // io_uring_enter that waits for packets: no second wait primitive, no extra thread.
  void armWake() {
    io_uring_sqe* sqe = io_uring_get_sqe(ring_.get());
    if (sqe == nullptr) {
      io_uring_submit(ring_.get());
      sqe = io_uring_get_sqe(ring_.get());
    }
    if (sqe == nullptr) {
      XLOG_ERROR(kMedia, "media worker {}: no SQE for the control eventfd", index_);
      std::abort();  // without it the worker is deaf to commands, including stop
    }
    io_uring_prep_read(sqe, event_fd_.get(), &wake_value_, sizeof wake_value_, 0);
    io_uring_sqe_set_data64(sqe, userData(Op::kWake, 0));
    ++inflight_;
  }

  // ---- publishing ----

  static void publishLearned(Flow& f) {
    const Endpoint& l = f.latch.latched();
    std::lock_guard lock(f.counters->mu);
    if (l.valid()) {
      f.counters->learned = l.toSockAddr();
    } else {
      f.counters->learned.reset();
    }
  }

  static void publishSsrc(Flow& f) {
    std::lock_guard lock(f.counters->mu);
    f.ssrc.snapshot(f.counters->ssrc, f.counters->ssrc_count);
  }

  void publishStats() {
#define XEMS_X(name) stats_.name.store(local_.name, std::memory_order_relaxed);
    XEMS_WORKER_STATS(XEMS_X)
#undef XEMS_X
  }

  // ---- members ----

  const uint32_t index_;
  const EngineOptions options_;
  UniqueFd event_fd_;
  std::thread thread_;
  bool running_ = false;      // control side: the loop runs (init succeeded)
  bool stop_posted_ = false;  // control side
  std::atomic<pid_t> tid_{0};

  std::mutex queue_mu_;
  std::vector<Command> queue_;  // guarded by queue_mu_

  AtomicWorkerStats stats_;

  // Worker-thread state below. The buffers are declared before the ring so that the ring is
  // destroyed (and stops referencing them) first on the error path; teardown() does the same.
  ProvidedBuffers buffers_;
  IoUringRing ring_;
  unsigned ring_flags_ = 0;
  msghdr recv_msg_{};
  uint64_t wake_value_ = 0;
  std::vector<SendSlot> sends_;
  std::vector<Flow> flows_;
  std::vector<uint32_t> free_;
  std::unordered_map<FlowId, uint32_t> by_id_;  // flow id -> slot, active flows only
  std::vector<uint32_t> attention_;
  std::vector<uint32_t> scratch_;
  std::vector<Command> commands_;
  std::vector<std::promise<void>> pending_syncs_;
  WorkerStats local_;
  Clock::time_point now_{};
  int64_t now_ns_ = 0;
  uint64_t inflight_ = 0;  // SQEs whose final CQE has not been seen
  uint32_t ring_free_ = 0;  // buffers the kernel can pick from (approximately: see onRecv)
  uint32_t pending_removals_ = 0;
  bool stopping_ = false;
};

// ---- the engine --------------------------------------------------------------------------------

UringEngine::UringEngine() = default;

UringEngine::~UringEngine() {
  // Post every stop first so the workers wind down in parallel, then join.
  for (auto& w : workers_) {
    w->requestStop();
  }
  for (auto& w : workers_) {
    w->stopAndJoin();
  }
}

Result<std::unique_ptr<UringEngine>> UringEngine::create(uint32_t workers) {
  EngineOptions options;
  options.workers = workers;
  return create(options);
}

Result<std::unique_ptr<UringEngine>> UringEngine::create(const EngineOptions& options) {
  if (options.workers == 0 || options.workers > 1024) {
    return XEMS_INVALID("media workers must be 1..1024");
  }
  const uint32_t nbuf = options.buffers_per_worker;
  if (nbuf == 0 || nbuf > 32768 || (nbuf & (nbuf - 1)) != 0) {
    return XEMS_INVALID("buffers per worker must be a power of two in 1..32768");
  }
  if (options.buffer_size < 256 || options.buffer_size > 65536 + 64) {
    return XEMS_INVALID("receive buffer size must be 256..65600 bytes");
  }
  if (options.sq_entries < 8 || options.sq_entries > 32768) {
    return XEMS_INVALID("submission queue entries must be 8..32768");
  }
  std::unique_ptr<UringEngine> engine(new UringEngine());
  for (uint32_t i = 0; i < options.workers; ++i) {
    engine->workers_.push_back(std::make_unique<Worker>(i, options));
    Status st = engine->workers_.back()->start();
    if (!st.ok()) {
      return std::move(st).error().wrap("media worker " + std::to_string(i));
    }
  }
  XLOG_INFO(kMedia, "io_uring media engine: {} worker(s), {} x {} byte buffers each",
            options.workers, options.buffers_per_worker, options.buffer_size);
  return engine;
}

Status UringEngine::checkSinks(const FlowSpec& spec, uint32_t worker) const {
  for (FlowId sink : {spec.rtp_sink, spec.rtcp_sink}) {
    if (sink == 0 || sink == spec.id) {
      continue;
    }
    auto it = owner_.find(sink);
    if (it != owner_.end() && it->second != worker) {
      return XEMS_INVALID("flow " + std::to_string(spec.id) + " on worker " +
                          std::to_string(worker) + " has sink " + std::to_string(sink) +
                          " on worker " + std::to_string(it->second) +
                          " (all flows of a call must share a worker)");
    }
  }
  return okStatus();
}

Status UringEngine::add(FlowSpec spec, UniqueFd socket) {
  if (spec.id == 0) {
    return XEMS_INVALID("flow id 0 is reserved");
  }
  if (!socket.valid()) {
    return XEMS_INVALID("flow " + std::to_string(spec.id) + ": no socket");
  }
  int type = 0;
  int domain = 0;
  socklen_t len = sizeof type;
  if (::getsockopt(socket.get(), SOL_SOCKET, SO_TYPE, &type, &len) != 0) {
    const int err = errno;
    return XEMS_ERRNO(err, "flow " + std::to_string(spec.id) + ": socket: " + errnoText(err));
  }
  len = sizeof domain;
  if (::getsockopt(socket.get(), SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0) {
    const int err = errno;
    return XEMS_ERRNO(err, "flow " + std::to_string(spec.id) + ": socket: " + errnoText(err));
  }
  if (type != SOCK_DGRAM || (domain != AF_INET && domain != AF_INET6)) {
    return XEMS_INVALID("flow " + std::to_string(spec.id) + ": not a UDP/IP socket");
  }
  if (!spec.counters) {
    spec.counters = std::make_shared<FlowCounters>();
  }
  const uint32_t w = spec.worker % workerCount();
  // Posting under mu_ keeps the worker's command order equal to the order in which owner_ saw
  // them, even with several control threads.
  std::lock_guard lock(mu_);
  if (owner_.count(spec.id) != 0) {
    return XEMS_ERROR(std::make_error_code(std::errc::file_exists),
                      "flow " + std::to_string(spec.id) + " exists");
  }
  XEMS_TRY_STATUS(checkSinks(spec, w));
  owner_.emplace(spec.id, w);
  workers_[w]->post(AddCmd{std::move(spec), std::move(socket), domain});
  return okStatus();
}

Status UringEngine::update(const FlowSpec& spec, bool relearn) {
  std::lock_guard lock(mu_);
  auto it = owner_.find(spec.id);
  if (it == owner_.end()) {
    return XEMS_ERROR(std::make_error_code(std::errc::no_such_file_or_directory),
                      "no flow " + std::to_string(spec.id));
  }
  XEMS_TRY_STATUS(checkSinks(spec, it->second));
  FlowSpec copy = spec;
  copy.counters.reset();  // the flow keeps its own
  workers_[it->second]->post(UpdateCmd{std::move(copy), relearn});
  return okStatus();
}

void UringEngine::remove(FlowId id) {
  std::lock_guard lock(mu_);
  auto it = owner_.find(id);
  if (it == owner_.end()) {
    return;
  }
  workers_[it->second]->post(RemoveCmd{id});
  owner_.erase(it);
}

void UringEngine::sync() {
  std::vector<std::future<void>> done;
  done.reserve(workers_.size());
  {
    std::lock_guard lock(mu_);
    for (auto& w : workers_) {
      std::promise<void> p;
      done.push_back(p.get_future());
      w->post(SyncCmd{std::move(p)});
    }
  }
  for (auto& f : done) {
    f.wait();
  }
}

uint32_t UringEngine::workerCount() const { return static_cast<uint32_t>(workers_.size()); }

WorkerStats UringEngine::workerStats(uint32_t worker) const {
  return worker < workers_.size() ? workers_[worker]->stats() : WorkerStats{};
}

std::optional<int64_t> UringEngine::workerCpuNs(uint32_t worker) const {
  return worker < workers_.size() ? workers_[worker]->cpuNs() : std::nullopt;
}

pid_t UringEngine::workerTid(uint32_t worker) const {
  return worker < workers_.size() ? workers_[worker]->tid() : 0;
}

// ---- probe -------------------------------------------------------------------------------------

Status UringEngine::probe() {
  ProvidedBuffers bufs;  // declared first: destroyed after the ring that references it
  IoUringRing ring;
  io_uring_params p{};
  p.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN;
  int r = ring.init(8, p);
  if (r < 0) {
    return XEMS_ERRNO(-r, "io_uring_queue_init: " + errnoText(-r) +
                              (r == -ENOSYS ? " (kernel without io_uring)"
                               : r == -EPERM ? " (io_uring disabled: kernel.io_uring_disabled "
                                               "or a seccomp filter)"
                               : r == -EINVAL ? " (kernel older than 5.19)"
                                              : ""));
  }
  XEMS_TRY_STATUS(bufs.init(ring.get(), 8, 256));
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock.valid()) {
    const int err = errno;
    return XEMS_ERRNO(err, "probe socket: " + errnoText(err));
  }
  // Arm a real multishot recvmsg on an idle socket: a kernel without it (before 6.0) fails the
  // request at once with EINVAL; one with it leaves it pending until our cancel.
  msghdr msg{};
  msg.msg_namelen = sizeof(sockaddr_in6);
  io_uring_sqe* sqe = io_uring_get_sqe(ring.get());
  io_uring_prep_recvmsg_multishot(sqe, sock.get(), &msg, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = kBufGroup;
  io_uring_sqe_set_data64(sqe, 1);
  sqe = io_uring_get_sqe(ring.get());
  io_uring_prep_cancel64(sqe, 1, 0);
  io_uring_sqe_set_data64(sqe, 2);
  r = io_uring_submit(ring.get());
  if (r < 0) {
    return XEMS_ERRNO(-r, "io_uring_submit: " + errnoText(-r));
  }
  int recv_res = 1;
  for (int seen = 0; seen < 2;) {
    io_uring_cqe* cqe = nullptr;
    __kernel_timespec ts{.tv_sec = 2, .tv_nsec = 0};
    r = io_uring_wait_cqe_timeout(ring.get(), &cqe, &ts);
    if (r < 0) {
      return XEMS_ERRNO(-r, "io_uring probe: waiting for completions: " + errnoText(-r));
    }
    if (cqe->user_data == 1 && (cqe->flags & IORING_CQE_F_MORE) == 0) {
      recv_res = cqe->res;
      ++seen;
    } else if (cqe->user_data == 2) {
      ++seen;
    }
    io_uring_cqe_seen(ring.get(), cqe);
  }
  if (recv_res != -ECANCELED) {
    return XEMS_ERRNO(recv_res < 0 ? -recv_res : EINVAL,
                      "multishot recvmsg unsupported: " + errnoText(recv_res < 0 ? -recv_res : 0) +
                          " (needs Linux 6.0)");
  }
  return okStatus();
}

bool UringEngine::supported() { return probe().ok(); }

}  // namespace xems::datapath
