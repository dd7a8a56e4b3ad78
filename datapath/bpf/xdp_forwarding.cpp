#include "datapath/bpf/xdp_forwarding.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/log.h"

namespace xems::datapath::bpf {

namespace {

std::string keyBytes(const FlowKey& k) {
  return std::string(reinterpret_cast<const char*>(&k), sizeof k);
}

bool sameValue(const FlowValue& a, const FlowValue& b) {
  return std::memcmp(&a, &b, sizeof a) == 0;
}

bool usable(const std::optional<SockAddr>& a) {
  return a && a->valid() && !a->ip().isAny() && a->port() != 0;
}

}  // namespace

// ---- LatchQueue ----

Result<std::shared_ptr<LatchQueue>> LatchQueue::create() {
  std::shared_ptr<LatchQueue> q(new LatchQueue());
  q->event_fd_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!q->event_fd_) {
    return XEMS_ERRNO(errno, "eventfd for latch events");
  }
  return q;
}

void LatchQueue::push(FlowId id) {
  {
    std::lock_guard lock(mu_);
    ids_.push_back(id);
  }
  const uint64_t one = 1;
  (void)!::write(event_fd_.get(), &one, sizeof one);
}

std::vector<FlowId> LatchQueue::drain() {
  uint64_t n;
  (void)!::read(event_fd_.get(), &n, sizeof n);
  std::vector<FlowId> out;
  std::lock_guard lock(mu_);
  out.swap(ids_);
  return out;
}

// ---- XdpForwardingTable ----

XdpForwardingTable::XdpForwardingTable(std::unique_ptr<ForwardingTable> inner, XdpFlowTable& maps,
                                       std::shared_ptr<LatchQueue> latch_events)
    : inner_(std::move(inner)), maps_(maps), latch_events_(std::move(latch_events)) {
  const uint32_t slots = maps_.maxStatsSlots();
  free_slots_.reserve(slots);
  for (uint32_t i = slots; i-- > 0;) {
    free_slots_.push_back(i);  // pop_back hands out 0 first
  }
}

XdpForwardingTable::~XdpForwardingTable() = default;

Status XdpForwardingTable::adoptExisting() {
  auto entries = maps_.entries();
  if (!entries.ok()) {
    return std::move(entries).error().wrap("reading the flows of a previous run");
  }
  std::vector<bool> used(maps_.maxStatsSlots(), false);
  for (const auto& [key, value] : *entries) {
    adopted_[keyBytes(key)] = Adopted{value, false};
    if (value.stats_idx < used.size()) {
      used[value.stats_idx] = true;
    }
  }
  free_slots_.erase(std::remove_if(free_slots_.begin(), free_slots_.end(),
                                   [&](uint32_t s) { return used[s]; }),
                    free_slots_.end());
  stats_.adopted = adopted_.size();
  if (!adopted_.empty()) {
    XLOG_INFO(kMedia, "xdp: {} flow(s) of a previous run are still forwarded", adopted_.size());
  }
  return {};
}

void XdpForwardingTable::dropUnclaimed() {
  for (auto& [kb, a] : adopted_) {
    if (a.claimed) {
      continue;
    }
    FlowKey key;
    std::memcpy(&key, kb.data(), sizeof key);
    (void)maps_.erase(key);
    if (a.value.stats_idx < maps_.maxStatsSlots()) {
      cool(a.value.stats_idx);
    }
    ++stats_.stale_removed;
  }
  if (stats_.stale_removed != 0) {
    XLOG_INFO(kMedia, "xdp: removed {} flow(s) no restored call claimed", stats_.stale_removed);
  }
  adopted_.clear();
  // Restoring is over: flows still waiting for a sink that did not come back get their own
  // entries now.
  for (auto& [id, f] : flows_) {
    if (f.adopted) {
      f.adopted = false;
      reconcile(f);
    }
  }
}

std::optional<uint32_t> XdpForwardingTable::takeSlot() {
  if (free_slots_.empty()) {
    return std::nullopt;
  }
  uint32_t s = free_slots_.back();
  free_slots_.pop_back();
  return s;
}

void XdpForwardingTable::linkUsers(FlowId id, const FlowSpec* old_spec, const FlowSpec& new_spec) {
  auto unlink = [&](FlowId sink) {
    auto it = users_.find(sink);
    if (it == users_.end()) {
      return;
    }
    auto& v = it->second;
    v.erase(std::remove(v.begin(), v.end(), id), v.end());
    if (v.empty()) {
      users_.erase(it);
    }
  };
  auto link = [&](FlowId sink) {
    if (sink == 0) {
      return;
    }
    auto& v = users_[sink];
    if (std::find(v.begin(), v.end(), id) == v.end()) {
      v.push_back(id);
    }
  };
  if (old_spec != nullptr) {
    unlink(old_spec->rtp_sink);
    unlink(old_spec->rtcp_sink);
  }
  link(new_spec.rtp_sink);
  link(new_spec.rtcp_sink);
}

Status XdpForwardingTable::add(FlowSpec spec, UniqueFd socket) {
  const FlowId id = spec.id;
  if (!spec.counters) {
    spec.counters = std::make_shared<FlowCounters>();
  }
  Flow f;
  f.spec = spec;
  std::optional<SockAddr> adopted_peer;
  Adopted* claim = nullptr;  // marked claimed only once the engine took the flow
  auto key = makeFlowKey(spec.local);
  if (key.ok()) {
    auto it = adopted_.find(keyBytes(*key));
    if (it != adopted_.end() && !it->second.claimed) {
      // A flow of the previous run: same socket address, so take its entry and stats slot over.
      claim = &it->second;
      const FlowValue& v = it->second.value;
      f.stats_idx = v.stats_idx;
      f.has_slot = v.stats_idx < maps_.maxStatsSlots();
      f.in_map = true;
      f.adopted = true;
      SockAddr exp = fromEndpoint(v.expected_src);
      if (f.has_slot && exp.valid()) {
        auto st = maps_.stats(f.stats_idx);
        // STRICT means it was locked; LEARN with forwarded packets means the kernel already
        // forwarded from it. Either way it is the peer: keep it.
        // (The slot counts across versions: only a packet forwarded by this very entry says
        // that this expected source spoke.)
        if (v.src_mode == XEMS_SRC_STRICT ||
            (st.ok() && st->packets > 0 && st->last_version == v.version)) {
          adopted_peer = exp;
        }
      }
    }
  }
  if (!f.has_slot) {
    if (free_slots_.empty()) {
      reapCooledSlots();  // a call set up right after others ended: their slots may be ready
    }
    if (auto slot = takeSlot()) {
      f.stats_idx = *slot;
      f.has_slot = maps_.resetStats(*slot).ok();
      if (!f.has_slot) {
        free_slots_.push_back(*slot);
      }
    } else {
      ++stats_.no_stats_slot;
    }
  }
  FlowSpec inner_spec = spec;
  if (adopted_peer && !inner_spec.source.latched) {
    f.confirmed = adopted_peer;
    inner_spec.source.latched = adopted_peer;
  }
  if (Status st = inner_->add(std::move(inner_spec), std::move(socket)); !st) {
    if (f.has_slot && claim == nullptr) {
      free_slots_.push_back(f.stats_idx);  // a fresh slot goes back; an adopted entry stays
    }                                      // unclaimed, so dropUnclaimed() erases it
    return st;
  }
  if (claim != nullptr) {
    claim->claimed = true;
    ++stats_.claimed;
  }
  auto [it, inserted] = flows_.insert_or_assign(id, std::move(f));
  linkUsers(id, nullptr, it->second.spec);
  if (it->second.in_map) {
    refreshFlow(it->second);  // an adopted slot: its counters go on (a fresh one is zero)
  }
  reconcile(it->second);
  reconcileUsers(id);
  return {};
}

Status XdpForwardingTable::update(const FlowSpec& spec, bool relearn) {
  auto it = flows_.find(spec.id);
  if (it == flows_.end()) {
    return inner_->update(spec, relearn);
  }
  Flow& f = it->second;
  FlowSpec old = f.spec;
  auto counters = f.spec.counters;
  f.spec = spec;
  f.spec.counters = counters;  // the counters stay with the flow (as in the engine)
  if (relearn) {
    // A new learning window: only packets XDP forwards from now on can confirm the endpoint.
    f.confirmed.reset();
    refreshFlow(f);
    f.learn_base = f.kernel_packets;
    publishLearning(f);
    // The worker forgets its latch when it applies this update, a moment from now; until it
    // publishes that, FlowCounters::learned still shows the old endpoint. Ignore that value.
    std::lock_guard lock(counters->mu);
    f.stale_learned = counters->learned;
  }
  FlowSpec inner_spec = spec;
  if (f.confirmed && !inner_spec.source.latched) {
    inner_spec.source.latched = f.confirmed;
  }
  Status st = inner_->update(inner_spec, relearn);
  linkUsers(spec.id, &old, f.spec);
  reconcile(f);
  reconcileUsers(spec.id);
  return st;
}

void XdpForwardingTable::remove(FlowId id) {
  if (keep_entries_) {
    // Handing over to the next run: every entry stays exactly as it is, also the ones that
    // send through this flow (its socket closes, but XDP never needed it).
    flows_.erase(id);
    inner_->remove(id);
    return;
  }
  auto it = flows_.find(id);
  if (it != flows_.end()) {
    Flow& f = it->second;
    if (f.in_map && !keep_entries_) {
      auto st = maps_.erase(f.spec.local);
      if (!st.ok() && st.error().code.value() != ENOENT) {
        XLOG_WARN(kMedia, "xdp: removing flow {}: {}", f.spec.local.toString(),
                  st.error().message);
      }
      ++stats_.erases;
    }
    if (f.has_slot) {
      refreshFlow(f);  // the last kernel packets stay in the call's counters
      cool(f.stats_idx);
    }
    f.spec.counters->kernelized.store(false, std::memory_order_relaxed);
    FlowSpec spec = f.spec;
    linkUsers(id, &spec, FlowSpec{});
    flows_.erase(it);
  }
  inner_->remove(id);
  reconcileUsers(id);  // flows sending through the removed one lose that output
}

void XdpForwardingTable::sync() {
  inner_->sync();
  if (latch_events_) {
    onLatchEvents();
  }
}

void XdpForwardingTable::refreshCounters(FlowId id) {
  auto it = flows_.find(id);
  if (it != flows_.end()) {
    refreshFlow(it->second);
  }
}

void XdpForwardingTable::reapCooledSlots() {
  // Slots of removed flows rest at least half a second: an XDP program still holding the old
  // entry must not count into the next flow.
  const auto now = Clock::now();
  while (!cooling_slots_.empty() &&
         now - cooling_slots_.front().second >= std::chrono::milliseconds(500)) {
    free_slots_.push_back(cooling_slots_.front().first);
    cooling_slots_.pop_front();
  }
}

void XdpForwardingTable::poll() {
  reapCooledSlots();
  // Flows added while every slot was in use (calls set up right after others ended, at full
  // capacity) are offloaded once slots come free, but only if no packet has gone through the
  // worker yet: a packet still queued there would arrive after the next one XDP forwards, and
  // a stream is never reordered. Those that carried packets stay in userspace.
  std::vector<FlowId> late;
  for (auto& [id, f] : flows_) {
    if (free_slots_.empty()) {
      break;
    }
    if (f.has_slot || f.in_map || f.spec.counters->packets.load(std::memory_order_relaxed) != 0) {
      continue;
    }
    const uint32_t slot = *takeSlot();
    if (!maps_.resetStats(slot).ok()) {
      free_slots_.push_back(slot);
      break;
    }
    f.stats_idx = slot;
    f.has_slot = true;
    ++stats_.late_stats_slot;
    late.push_back(id);
  }
  for (FlowId id : late) {
    reconcile(flows_.at(id));
    reconcileUsers(id);
  }
  if (latch_events_) {
    onLatchEvents();
  }
  for (auto& [id, f] : flows_) {
    refreshFlow(f);
  }
  for (auto& [id, f] : flows_) {
    // The kernel forwarded packets from the advertised endpoint while learning: that is the peer.
    if (heardExpected(f)) {
      confirm(id, f, *f.learn_expected);
      continue;
    }
    reconcile(f);  // learning windows end, latches the workers published without an event
  }
}

void XdpForwardingTable::onLatchEvents() {
  if (!latch_events_) {
    return;
  }
  for (FlowId id : latch_events_->drain()) {
    auto it = flows_.find(id);
    if (it == flows_.end()) {
      continue;
    }
    Flow& f = it->second;
    f.stale_learned.reset();  // a fresh latch, whatever it says
    refreshFlow(f);
    if (heardExpected(f)) {
      // The worker latched to another source although the peer is already sending from its
      // advertised endpoint through XDP: the worker's own rule (exact advertised locks at once)
      // would have refused it, had it seen those packets.
      ++stats_.rejected_latches;
      confirm(id, f, *f.learn_expected);
      continue;
    }
    reconcile(f);
    reconcileUsers(id);
  }
}

void XdpForwardingTable::cool(uint32_t slot) {
  cooling_slots_.emplace_back(slot, Clock::now());
}

bool XdpForwardingTable::heardExpected(const Flow& f) const {
  return !f.confirmed && f.learn_expected && f.learn_expected == f.spec.source.advertised &&
         f.kernel_packets > f.learn_base && f.kernel_version == f.version && f.version != 0;
}

void XdpForwardingTable::publishLearning(const Flow& f) {
  FlowCounters& c = *f.spec.counters;
  std::lock_guard lock(c.mu);
  if (f.has_slot && !f.confirmed && f.learn_expected &&
      f.learn_expected == f.spec.source.advertised) {
    c.kernel_learning = f.learn_expected;
    c.kernel_stats_slot = f.stats_idx;
    c.kernel_learn_base = f.learn_base;
    c.kernel_learn_version = f.version;
  } else {
    c.kernel_learning.reset();
  }
}

std::optional<SockAddr> XdpForwardingTable::kernelConfirmed(const XdpFlowTable& maps,
                                                            const FlowCounters& c) {
  std::optional<SockAddr> ep;
  uint32_t slot = 0;
  uint64_t base = 0;
  uint32_t version = 0;
  {
    std::lock_guard lock(c.mu);
    if (!c.kernel_learning) {
      return std::nullopt;
    }
    ep = c.kernel_learning;
    slot = c.kernel_stats_slot;
    base = c.kernel_learn_base;
    version = c.kernel_learn_version;
  }
  auto st = maps.stats(slot);
  // Forwarded since the window began, and the newest one by the entry that expects exactly ep.
  if (st.ok() && st->packets > base && version != 0 && st->last_version == version) {
    return ep;
  }
  return std::nullopt;
}

void XdpForwardingTable::confirm(FlowId id, Flow& f, const SockAddr& endpoint) {
  XLOG_DEBUG(kMedia, "xdp: flow {}: peer {} confirmed by XDP-forwarded packets",
             f.spec.local.toString(), endpoint.toString());
  f.confirmed = endpoint;
  ++stats_.confirmed;
  publishLearning(f);
  FlowSpec s = f.spec;
  s.source.latched = endpoint;
  auto st = inner_->update(s, false);
  if (!st.ok()) {
    XLOG_WARN(kMedia, "xdp: confirming {} on flow {}: {}", endpoint.toString(),
              f.spec.local.toString(), st.error().message);
  }
  reconcile(f);
  reconcileUsers(id);
}

void XdpForwardingTable::refreshFlow(Flow& f) {
  if (!f.has_slot) {
    return;
  }
  auto st = maps_.stats(f.stats_idx);
  if (!st.ok()) {
    return;
  }
  FlowCounters& c = *f.spec.counters;
  f.kernel_packets = st->packets;
  f.kernel_version = st->last_version;
  c.kernel_packets.store(st->packets, std::memory_order_relaxed);
  c.kernel_bytes.store(st->bytes, std::memory_order_relaxed);
  c.kernel_dropped_source.store(st->foreign_drops, std::memory_order_relaxed);
  if (st->last_seen_ns != 0) {
    c.kernel_last_ns.store(static_cast<int64_t>(st->last_seen_ns), std::memory_order_relaxed);
  }
  if (f.stale_learned) {
    std::lock_guard lock(c.mu);
    if (!c.learned || !(*c.learned == *f.stale_learned)) {
      f.stale_learned.reset();  // the worker has applied the relearn
    }
  }
}

std::optional<SockAddr> XdpForwardingTable::latchedOf(const Flow& f) const {
  if (f.confirmed) {
    return f.confirmed;
  }
  if (f.spec.source.latched) {
    return f.spec.source.latched;
  }
  std::lock_guard lock(f.spec.counters->mu);
  const auto& l = f.spec.counters->learned;
  if (l && !(f.stale_learned && *f.stale_learned == *l)) {
    return l;
  }
  return std::nullopt;
}

std::optional<SockAddr> XdpForwardingTable::destination(const Flow& f) const {
  if (auto l = latchedOf(f)) {
    return l;
  }
  return f.spec.source.advertised;
}

FlowEntry XdpForwardingTable::desiredEntry(const Flow& f) const {
  const FlowSpec& spec = f.spec;
  const SourcePolicy& pol = spec.source;
  FlowEntry e;
  e.local = spec.local;
  e.rtcp_socket = spec.rtcp;
  e.mux = spec.mux && !spec.rtcp;
  e.stats_idx = f.stats_idx;

  // Source check: see the header.
  const std::optional<SockAddr> latched = latchedOf(f);
  const bool in_window = Clock::now() < pol.learn_until;
  const bool locked =
      latched && (f.confirmed || pol.latched || !in_window ||
                  pol.learning == EndpointLearning::kImmediate ||
                  (pol.advertised && *latched == *pol.advertised));
  auto strictOr = [&](const SockAddr& ep) {
    if (pol.strict) {
      e.mode = SourceMode::kStrict;
      e.expected_src = ep;
    } else {
      e.mode = SourceMode::kIgnore;
    }
  };
  if (latched && locked) {
    strictOr(*latched);
  } else if (pol.learning == EndpointLearning::kOff) {
    if (usable(pol.advertised)) {
      strictOr(*pol.advertised);
    } else {
      e.mode = SourceMode::kIgnore;
    }
  } else if (latched) {
    e.mode = SourceMode::kLearn;
    e.expected_src = latched;
  } else if (pol.learning == EndpointLearning::kImmediate || !usable(pol.advertised)) {
    e.mode = SourceMode::kLearn;  // no expected source: the worker sees (and latches) the first
  } else if (!in_window && pol.strict) {
    e.mode = SourceMode::kStrict;  // only the advertised endpoint may still latch
    e.expected_src = pol.advertised;
  } else {
    e.mode = SourceMode::kLearn;
    e.expected_src = pol.advertised;
  }
  if (e.expected_src && e.expected_src->family() != spec.local.family()) {
    // The peer sends from the other family (address-family translation): it never arrives on
    // this socket's family, so XDP has nothing to forward; keep the check safe.
    e.mode = SourceMode::kLearn;
    e.expected_src.reset();
  }

  // Outputs: from the sink flow's socket to the sink's peer.
  auto output = [&](FlowId sink_id) -> std::optional<OutputSpec> {
    if (!spec.send_enabled || sink_id == 0) {
      return std::nullopt;
    }
    auto it = flows_.find(sink_id);
    if (it == flows_.end()) {
      return std::nullopt;
    }
    const Flow& sink = it->second;
    auto dst = destination(sink);
    if (!usable(dst) || sink.spec.local.family() != spec.local.family() ||
        dst->family() != spec.local.family()) {
      return std::nullopt;  // nowhere to send yet, or IPv4<->IPv6: the worker does it
    }
    OutputSpec out{sink.spec.local, *dst, std::nullopt};
    if (next_hops_) {
      out.l2 = next_hops_(sink.spec.local, *dst);
    }
    return out;
  };
  e.rtp_out = output(spec.rtp_sink);
  if (e.mux) {
    e.rtcp_out = output(spec.rtcp_sink);
  }
  e.offload = spec.offload && (e.rtp_out || e.rtcp_out);
  return e;
}

void XdpForwardingTable::reconcile(Flow& f) {
  if (!f.has_slot || keep_entries_) {
    return;  // no stats slot: this flow stays in userspace
  }
  if (f.adopted) {
    // A restored call re-adds its flows one by one. The entry of the previous run keeps
    // forwarding until the flows it sends through are back too; rewriting it earlier would send
    // its packets up to a worker that has no sink for them yet.
    auto missing = [&](FlowId sink) { return sink != 0 && flows_.count(sink) == 0; };
    if (missing(f.spec.rtp_sink) || (f.spec.mux && missing(f.spec.rtcp_sink))) {
      return;
    }
    f.adopted = false;
  }
  FlowEntry e = desiredEntry(f);
  auto value = encodeFlow(e, 0);
  if (!value.ok()) {
    XLOG_WARN(kMedia, "xdp: flow {} stays in userspace: {}", f.spec.local.toString(),
              value.error().message);
    return;
  }
  // LEARN mode: remember since when XDP forwards this source (confirmation counts from there).
  const std::optional<SockAddr> learn =
      e.mode == SourceMode::kLearn ? e.expected_src : std::nullopt;
  auto noteLearn = [&] {
    if (!(learn == f.learn_expected)) {
      f.learn_expected = learn;
      f.learn_base = f.kernel_packets;
      publishLearning(f);
    }
  };
  if (f.in_map && f.written && sameValue(*f.written, *value)) {
    noteLearn();
    return;
  }
  auto ver = maps_.upsert(e);
  if (!ver.ok()) {
    ++stats_.upsert_errors;
    XLOG_WARN(kMedia, "xdp: flow {} stays in userspace: {}", f.spec.local.toString(),
              ver.error().message);
    return;
  }
  ++stats_.upserts;
  XLOG_DEBUG(kMedia, "xdp: flow {} -> mode {} expected {} out {} offload {}", f.spec.local.toString(),
             static_cast<int>(e.mode), e.expected_src ? e.expected_src->toString() : "-",
             e.rtp_out ? e.rtp_out->dst.toString() : "-", e.offload);
  f.in_map = true;
  f.written = *value;
  f.version = *ver;
  noteLearn();
  publishLearning(f);  // the version the workers' veto checks against
  f.spec.counters->kernelized.store(e.offload && e.rtp_out.has_value(),
                                    std::memory_order_relaxed);
}

void XdpForwardingTable::reconcileUsers(FlowId sink) {
  auto it = users_.find(sink);
  if (it == users_.end()) {
    return;
  }
  const std::vector<FlowId> users = it->second;  // reconcile does not change users_
  for (FlowId u : users) {
    auto fit = flows_.find(u);
    if (fit != flows_.end()) {
      reconcile(fit->second);
    }
  }
}

bool XdpForwardingTable::kernelized(FlowId id) const {
  auto it = flows_.find(id);
  return it != flows_.end() &&
         it->second.spec.counters->kernelized.load(std::memory_order_relaxed);
}

}  // namespace xems::datapath::bpf
