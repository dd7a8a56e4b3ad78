#include "ctrl/session/call_registry.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <random>

#include "common/log.h"
#include "ctrl/sdp/sdp.h"
#include "ctrl/session/call_state.h"
#include "ctrl/session/sdp_rewrite.h"

namespace xems::session {
namespace {

constexpr auto kLearnWindow = std::chrono::seconds(3);  // rtpengine's delayed learning window
// Bounds on what one call may hold, so no ng client (or SIP peer behind it) can take every port
// with one call-id: forks, and to-tags seen for one participant.
constexpr size_t kMaxParticipantsPerCall = 16;
constexpr size_t kMaxAliasesPerParticipant = 8;

Error sessionError(std::string_view reason) {
  return XEMS_INVALID(std::string(reason));
}

struct ParsedEndpoints {
  std::optional<SockAddr> rtp;
  std::optional<SockAddr> rtcp;  // the separate RTCP endpoint (a=rtcp, else RTP port + 1)
  bool zero = false;
  Family family = Family::kIpv4;
};

// True if ip:port is one of the media sockets we hold (by local or advertised address): a peer
// "announcing" it would make us send to ourselves, looping or feeding another call. Our address
// with any other port is fine (a PBX on the same host).
bool isOwnMediaSocket(const Config& cfg, const PortAllocator& ports, const IpAddr& ip,
                      uint32_t port) {
  if (port > 65535) {
    return false;
  }
  return std::any_of(cfg.interfaces.begin(), cfg.interfaces.end(), [&](const InterfaceSpec& i) {
    return (i.local == ip || i.advertised == ip) &&
           ports.isAllocated(i.local, static_cast<uint16_t>(port));
  });
}

ParsedEndpoints endpointsOf(const sdp::Session& s, const sdp::Media& m,
                            const OfferAnswerFlags& flags, const Config& cfg,
                            const PortAllocator& ports) {
  ParsedEndpoints e;
  const sdp::Connection* c = m.connection ? &*m.connection
                             : s.connection ? &*s.connection
                                            : nullptr;
  std::optional<IpAddr> ip;
  if (c != nullptr) {
    e.family = c->family;
    e.zero = c->isZero();
    if (!e.zero) {
      ip = IpAddr::parse(c->address);  // a hostname stays unresolved: learn from packets
    }
  }
  if (flags.media_address) {
    ip = flags.media_address;
    e.zero = false;
  } else if (flags.sip_source_address && flags.received_from && !e.zero) {
    ip = flags.received_from;
  }
  if (!ip || m.port == 0 || isOwnMediaSocket(cfg, ports, *ip, m.port)) {
    return e;
  }
  e.family = ip->family();
  e.rtp = SockAddr(*ip, m.port);
  uint32_t rtcp_port = static_cast<uint32_t>(m.port) + 1;
  IpAddr rtcp_ip = *ip;
  if (auto r = m.rtcp()) {
    rtcp_port = r->port;
    if (r->address && !flags.media_address && !flags.sip_source_address) {
      rtcp_ip = *r->address;
    }
  }
  // m= port 65535 has no port + 1 (learn it instead); never one of our own sockets either.
  if (rtcp_port != 0 && rtcp_port <= 65535 && !isOwnMediaSocket(cfg, ports, rtcp_ip, rtcp_port)) {
    e.rtcp = SockAddr(rtcp_ip, static_cast<uint16_t>(rtcp_port));
  }
  return e;
}

int64_t toUnix(int64_t steady_ns, Clock::time_point now, int64_t unix_us) {
  if (steady_ns == 0) {
    return 0;
  }
  int64_t age_ns = now.time_since_epoch().count() - steady_ns;
  return (unix_us - age_ns / 1000) / 1000000;
}

// Adds a call's relay counters (all flows) to daemon-wide statistics.
void addRelayCounters(GlobalStats& g, const Call& call) {
  for (const auto& p : call.participants) {
    for (const auto& m : p->medias) {
      for (const Stream* s : {&m.rtp, &m.rtcp}) {
        if (s->counters) {
          const auto& c = *s->counters;
          const uint64_t kp = c.kernel_packets.load(std::memory_order_relaxed);
          g.relayed_packets += c.forwarded.load(std::memory_order_relaxed) + kp;
          g.relayed_bytes += c.bytes.load(std::memory_order_relaxed) +
                             c.kernel_bytes.load(std::memory_order_relaxed);
          g.relayed_errors += c.errors.load(std::memory_order_relaxed);
          g.dropped_source += c.dropped_source.load(std::memory_order_relaxed) +
                              c.kernel_dropped_source.load(std::memory_order_relaxed);
          g.kernel_packets += kp;
        }
      }
    }
  }
}

}  // namespace

int64_t TimeSource::unixMicros() const {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Participant* Call::findTag(std::string_view tag) {
  for (auto& p : participants) {
    if (!p->tag.empty() && p->tag == tag) {
      return p.get();
    }
  }
  for (auto& p : participants) {
    if (std::find(p->aliases.begin(), p->aliases.end(), tag) != p->aliases.end()) {
      return p.get();
    }
  }
  return nullptr;
}

Participant* Call::findUntagged(std::string_view via_branch) {
  for (auto& p : participants) {
    if (p->tag.empty() && p->via_branch == via_branch) {
      return p.get();
    }
  }
  return nullptr;
}

CallRegistry::CallRegistry(Config cfg, datapath::ForwardingTable& table,
                           std::shared_ptr<TimeSource> time)
    : cfg_(std::move(cfg)),
      table_(table),
      time_(std::move(time)),
      ports_(cfg_.port_min, cfg_.port_max, std::random_device{}()) {
  started_unix_ = time_->unixMicros() / 1000000;
  totals_.ports_total = ports_.pairsTotal();
}

CallRegistry::~CallRegistry() {
  std::vector<std::string> ids;
  for (const auto& [id, c] : calls_) {
    ids.push_back(id);
  }
  for (const auto& id : ids) {
    endCall(id, EndReason::kForced);
  }
}

void CallRegistry::reconfigure(const Config& cfg) {
  cfg_.timeout = cfg.timeout;
  cfg_.silent_timeout = cfg.silent_timeout;
  cfg_.final_timeout = cfg.final_timeout;
  cfg_.offer_timeout = cfg.offer_timeout;
  cfg_.delete_delay = cfg.delete_delay;
  cfg_.endpoint_learning = cfg.endpoint_learning;
  cfg_.strict_source = cfg.strict_source;
  cfg_.max_sessions = cfg.max_sessions;
  cfg_.log_level = cfg.log_level;
}

const InterfaceSpec* CallRegistry::pickInterface(const std::string& name, Family family) const {
  const InterfaceSpec* any_family = nullptr;
  for (const auto& i : cfg_.interfaces) {
    if (!name.empty() && i.name != name) {
      continue;
    }
    if (i.advertised.family() == family) {
      return &i;
    }
    if (any_family == nullptr) {
      any_family = &i;
    }
  }
  return any_family;
}

Status CallRegistry::ensureMedia(Participant& p, size_t count, const std::string& iface_name,
                                 Family family) {
  while (p.medias.size() < count) {
    Media m;
    m.index = static_cast<int>(p.medias.size()) + 1;
    p.medias.push_back(std::move(m));
  }
  for (auto& m : p.medias) {
    if (m.allocated) {
      continue;
    }
    const InterfaceSpec* iface = pickInterface(iface_name, family);
    if (iface == nullptr) {
      return sessionError(fmt::format("Unknown interface '{}'", iface_name));
    }
    auto pair = ports_.allocate(iface->local);
    if (!pair) {
      XLOG_WARN(kSession, "port allocation on {} failed: {}", iface->local.toString(),
                pair.error().message);
      return sessionError("Ran out of ports");
    }
    m.iface = iface;
    m.rtp.id = next_flow_id_++;
    m.rtcp.id = next_flow_id_++;
    m.rtp.local = SockAddr(iface->local, pair->port);
    m.rtcp.local = SockAddr(iface->local, static_cast<uint16_t>(pair->port + 1));
    m.rtp.pending_fd = std::move(pair->rtp);
    m.rtcp.pending_fd = std::move(pair->rtcp);
    m.rtp.counters = std::make_shared<datapath::FlowCounters>();
    m.rtcp.counters = std::make_shared<datapath::FlowCounters>();
    m.allocated = true;
  }
  return okStatus();
}

Result<OfferAnswerReply> CallRegistry::offerAnswer(const OfferAnswerRequest& req) {
  if (req.call_id.empty()) {
    return sessionError("No call-id in message");
  }
  if (req.from_tag.empty()) {
    return sessionError("No from-tag in message");
  }
  if (req.op == Op::kAnswer && req.to_tag.empty()) {
    return sessionError("No to-tag in message");
  }
  if (req.sdp.empty()) {
    return sessionError("No SDP body in message");
  }
  auto it = calls_.find(req.call_id);
  bool created = false;
  if (it == calls_.end()) {
    if (req.op == Op::kAnswer) {
      return sessionError("Unknown call-id");
    }
    if (cfg_.max_sessions != 0 && calls_.size() >= cfg_.max_sessions) {
      ++totals_.rejected_sessions;
      return sessionError("Parallel session limit reached");
    }
    auto call = std::make_unique<Call>();
    call->id = req.call_id;
    call->worker = next_worker_++ % std::max<uint32_t>(1, table_.workerCount());
    call->created_mono = time_->now();
    int64_t us = time_->unixMicros();
    call->created_unix = us / 1000000;
    call->created_us = us % 1000000;
    it = calls_.emplace(req.call_id, std::move(call)).first;
    created = true;
    ++totals_.managed_sessions;
  }
  auto r = doOfferAnswer(*it->second, req);
  if (r) {
    persist(*it->second);
  }
  if (!r && created) {
    // Never a call: tear down without touching end-of-call statistics.
    for (auto& p : it->second->participants) {
      destroyParticipant(*p);
    }
    calls_.erase(it);
    --totals_.managed_sessions;
  }
  return r;
}

Result<OfferAnswerReply> CallRegistry::doOfferAnswer(Call& call, const OfferAnswerRequest& req) {
  auto parsed = sdp::parse(req.sdp);
  if (!parsed) {
    ++totals_.sdp_parse_errors;
    XLOG_INFO(kSdp, "call {}: {}", req.call_id, parsed.error().message);
    return sessionError("Failed to parse SDP");
  }
  sdp::Session& in = *parsed;
  const OfferAnswerFlags& flags = req.flags;
  int64_t unix_us = time_->unixMicros();
  auto now = time_->now();

  // Map tags to the two participants. `sender` wrote this SDP; `receiver` gets our rewrite.
  Participant* offerer = call.findTag(req.from_tag);
  Participant* other = nullptr;
  if (req.op == Op::kAnswer && offerer == nullptr) {
    return sessionError("Invalid dialogue association");
  }
  std::vector<Participant*> created_now;  // removed again if this request fails
  Participant* const old_peer = offerer != nullptr ? offerer->peer : nullptr;
  auto newParticipant = [&](std::string tag, std::string branch) -> Participant* {
    if (call.participants.size() >= kMaxParticipantsPerCall) {
      return nullptr;
    }
    auto p = std::make_unique<Participant>();
    p->tag = std::move(tag);
    p->via_branch = std::move(branch);
    p->created = unix_us / 1000000;
    call.participants.push_back(std::move(p));
    created_now.push_back(call.participants.back().get());
    return call.participants.back().get();
  };
  auto fail = [&](std::string_view reason) -> Error {
    for (Participant* p : created_now) {
      removeParticipant(call, p);
    }
    if (Participant* o = call.findTag(req.from_tag); o != nullptr) {
      o->peer = old_peer;
    }
    return sessionError(reason);
  };
  if (offerer == nullptr) {
    offerer = newParticipant(req.from_tag, "");
    if (offerer == nullptr) {
      return fail("Too many participants in call");
    }
  }
  if (!req.to_tag.empty()) {
    other = call.findTag(req.to_tag);
  }
  if (other == nullptr) {
    // The other side: the untagged participant of this via-branch (a fork), else the current
    // peer if it is still untagged and on the same branch (or the request names a to-tag),
    // else a new participant. Parallel forks thus get one participant each.
    Participant* untagged = call.findUntagged(req.via_branch);
    if (untagged == nullptr && offerer->peer != nullptr) {
      Participant* p = offerer->peer;
      bool same_branch =
          req.via_branch.empty() || p->via_branch.empty() || p->via_branch == req.via_branch;
      if (!req.to_tag.empty() || (p->tag.empty() && same_branch)) {
        untagged = p;
      }
    }
    if (untagged != nullptr && !req.to_tag.empty() && !untagged->tag.empty() &&
        untagged->tag != req.to_tag) {
      // A second to-tag for the same leg (another fork answered): an alias, as in rtpengine.
      if (untagged->aliases.size() >= kMaxAliasesPerParticipant) {
        return fail("Too many tags for one participant");
      }
      untagged->aliases.push_back(req.to_tag);
    } else if (untagged != nullptr && untagged->tag.empty()) {
      untagged->tag = req.to_tag;
    }
    other = untagged != nullptr ? untagged : newParticipant(req.to_tag, req.via_branch);
    if (other == nullptr) {
      return fail("Too many participants in call");
    }
  }
  if (other == offerer) {
    return fail("Invalid dialogue association");
  }
  offerer->peer = other;
  other->peer = offerer;
  if (!flags.label.empty()) {
    (req.op == Op::kOffer ? offerer : other)->label = flags.label;
  }
  Participant& sender = req.op == Op::kOffer ? *offerer : *other;
  Participant& receiver = req.op == Op::kOffer ? *other : *offerer;
  if (!flags.direction.empty()) {
    // direction = [interface towards the sender of this message, towards its receiver]
    sender.iface_name = flags.direction[0];
    if (flags.direction.size() > 1) {
      receiver.iface_name = flags.direction[1];
    }
  }

  // Families: the sender's from its SDP; the receiver's from address-family, else its previous
  // one, else the sender's.
  Family sender_family = Family::kIpv4;
  if (in.connection) {
    sender_family = in.connection->family;
  }
  for (const auto& m : in.media) {
    if (m.connection) {
      sender_family = m.connection->family;
      break;
    }
  }
  Family receiver_family = flags.address_family.value_or(
      !receiver.medias.empty() && receiver.medias.front().iface != nullptr
          ? receiver.medias.front().iface->advertised.family()
          : sender_family);

  size_t n = in.media.size();
  for (auto* p : {&sender, &receiver}) {
    auto st = ensureMedia(*p, n, p->iface_name, p == &sender ? sender_family
                                                                   : receiver_family);
    if (!st) {
      return fail(st.error().message);
    }
  }

  std::vector<bool> relearn(n, false);
  std::vector<bool> mux_out(n, false);
  std::vector<bool> mux_confirmed(n, false);
  for (size_t i = 0; i < n; ++i) {
    const sdp::Media& sm = in.media[i];
    Media& s = sender.medias[i];
    Media& r = receiver.medias[i];
    bool has_mux = sm.hasAttribute("rtcp-mux");
    s.type = r.type = sm.type;
    s.protocol = r.protocol = sm.proto;
    s.rejected = sm.port == 0;
    r.rejected = s.rejected;
    auto dir = in.effectiveDirection(sm);
    s.sends = dir == sdp::Direction::kSendRecv || dir == sdp::Direction::kSendOnly;
    s.receives = dir == sdp::Direction::kSendRecv || dir == sdp::Direction::kRecvOnly;
    s.codecs.clear();
    for (const auto& c : sm.codecs()) {
      s.codecs.push_back(fmt::format("{}/{}", c.encoding, c.clock_rate));
    }
    r.codecs = s.codecs;

    if (req.op == Op::kOffer) {
      s.mux_offered = has_mux;
      s.mux_keep = flags.rtcp_mux.demux || flags.rtcp_mux.accept;
      s.rtcp_mux = has_mux && !flags.rtcp_mux.reject;
      mux_out[i] = (has_mux && !flags.rtcp_mux.demux && !flags.rtcp_mux.reject) ||
                   flags.rtcp_mux.offer || flags.rtcp_mux.require;
      mux_confirmed[i] = flags.rtcp_mux.require;
      r.mux_offered = mux_out[i];  // what we offered the receiver
      if (flags.rtcp_mux.require) {
        r.rtcp_mux = true;
      }
    } else {
      // The answerer muxes only if we offered it; the offerer gets mux if it asked and the
      // answerer agreed, or we demux for it.
      s.rtcp_mux = has_mux && s.mux_offered;
      // demux/accept may come with the offer (remembered) or with the answer.
      r.rtcp_mux = r.mux_offered &&
                   (s.rtcp_mux || r.mux_keep || flags.rtcp_mux.demux || flags.rtcp_mux.accept) &&
                   !flags.rtcp_mux.reject;
      mux_out[i] = r.rtcp_mux;
      mux_confirmed[i] = true;
      // The offerer's RTCP goes back to its own RTCP endpoint if mux was not agreed (RFC 5761).
      r.rtcp.advertised = r.rtcp_mux ? r.rtp.advertised : r.rtcp_sdp;
    }

    auto ep = endpointsOf(in, sm, flags, cfg_, ports_);
    s.zero_address = ep.zero;
    s.sdp_family = ep.family;
    s.rtcp_sdp = ep.rtcp;
    auto rtcp_adv = s.rtcp_mux ? ep.rtp : ep.rtcp;
    relearn[i] = !(s.rtp.advertised == ep.rtp) || !(s.rtcp.advertised == rtcp_adv) ||
                 !s.rtp.in_table;
    s.rtp.advertised = ep.rtp;
    s.rtcp.advertised = rtcp_adv;
  }

  // Only streams whose advertised endpoint changed start learning again, so a re-INVITE that
  // changes nothing does not reopen a hijack window (rtpengine unconfirms on every signalling
  // event). Streams that never latched get a fresh window with every signalling event: a
  // caller behind NAT that stayed silent while it rang learns from the answer on.
  auto latched = [](const Stream& st) {
    if (!st.counters) {
      return false;
    }
    std::lock_guard lock(st.counters->mu);
    return st.counters->learned.has_value();
  };
  std::vector<bool> relearn_receiver(n, false);
  for (size_t i = 0; i < n; ++i) {
    const Media& r = receiver.medias[i];
    relearn_receiver[i] = !r.rtp.in_table || !latched(r.rtp) || !latched(r.rtcp);
    if (!latched(sender.medias[i].rtp)) {
      relearn[i] = true;
    }
  }
  programFlows(call, sender, receiver, relearn, relearn_receiver);

  RewriteInput ctx;
  ctx.op = req.op;
  ctx.flags = &flags;
  ctx.receiver = &receiver;
  ctx.mux_out = mux_out;
  ctx.mux_confirmed = mux_confirmed;
  OfferAnswerReply reply;
  reply.sdp = rewriteSdp(in, ctx);

  call.delete_at.reset();
  call.last_signal_mono = now;
  call.last_signal_unix = unix_us / 1000000;
  if (req.op == Op::kAnswer) {
    call.answered = true;
  }
  return reply;
}

datapath::FlowSpec CallRegistry::flowSpec(const Call& call, const Media& from, const Media& to,
                                          bool rtcp, const OfferAnswerFlags* flags) const {
  datapath::FlowSpec spec;
  const Stream& s = rtcp ? from.rtcp : from.rtp;
  spec.id = s.id;
  spec.worker = call.worker;
  spec.local = s.local;
  spec.rtcp = rtcp;
  datapath::FlowId to_rtcp = to.rtcp_mux ? to.rtp.id : to.rtcp.id;
  if (!rtcp) {
    spec.rtp_sink = to.rtp.id;
    spec.rtcp_sink = to_rtcp;
    spec.mux = from.rtcp_mux || from.mux_offered;
  } else {
    spec.rtp_sink = to_rtcp;
    spec.rtcp_sink = to_rtcp;
  }
  spec.send_enabled = !from.rejected && !to.rejected;
  spec.source.learning = flags && flags->endpoint_learning ? *flags->endpoint_learning
                                                           : cfg_.endpoint_learning;
  bool strict = flags && flags->strict_source ? *flags->strict_source : cfg_.strict_source;
  spec.source.strict = strict && !(flags && flags->media_handover);
  spec.source.advertised = s.advertised;
  spec.source.learn_until = time_->now() + kLearnWindow;
  spec.counters = s.counters;
  return spec;
}

void CallRegistry::programOneWay(Call& call, Participant& a, Participant* b,
                                 const std::vector<bool>& relearn) {
  for (size_t i = 0; i < a.medias.size(); ++i) {
    Media& from = a.medias[i];
    Media* to = b != nullptr && i < b->medias.size() ? &b->medias[i] : nullptr;
    if (!from.allocated) {
      continue;
    }
    for (bool rtcp : {false, true}) {
      Stream& s = rtcp ? from.rtcp : from.rtp;
      auto spec = flowSpec(call, from, to != nullptr ? *to : from, rtcp, nullptr);
      if (to == nullptr) {
        spec.rtp_sink = spec.rtcp_sink = 0;  // nowhere to send until there is a partner
      }
      if (!s.in_table) {
        // After a restart the latch of the previous run holds until the next signalling event.
        spec.source.latched = s.restore_latch;
        auto st = table_.add(std::move(spec), std::move(s.pending_fd));
        if (!st) {
          XLOG_ERROR(kMedia, "call {}: adding flow {} failed: {}", call.id,
                     s.local.toString(), st.error().message);
          continue;
        }
        s.in_table = true;
        s.restore_latch.reset();
      } else {
        auto st = table_.update(spec, i < relearn.size() && relearn[i]);
        if (!st) {
          XLOG_ERROR(kMedia, "call {}: updating flow {} failed: {}", call.id,
                     s.local.toString(), st.error().message);
        }
      }
    }
  }
}

void CallRegistry::programFlows(Call& call, Participant& a, Participant& b,
                                std::vector<bool> relearn_a, std::vector<bool> relearn_b) {
  size_t n = std::min(a.medias.size(), b.medias.size());
  relearn_a.resize(n, false);
  relearn_b.resize(n, false);
  programOneWay(call, a, &b, relearn_a);
  programOneWay(call, b, &a, relearn_b);
}

uint64_t CallRegistry::latchDigest(const Call& call) {
  // Order-sensitive mix of the latched endpoints (no allocation: runs for every call each tick).
  uint64_t h = 1469598103934665603ULL;
  for (const auto& p : call.participants) {
    for (const auto& m : p->medias) {
      for (const Stream* s : {&m.rtp, &m.rtcp}) {
        auto l = persistedLatch(*s);
        const uint64_t v = l ? (std::hash<IpAddr>{}(l->ip()) * 31 + l->port() + 1) : 0;
        h = (h ^ v) * 1099511628211ULL;
      }
    }
  }
  return h;
}

void CallRegistry::persistAll() {
  for (auto& [id, call] : calls_) {
    persist(*call);
  }
}

void CallRegistry::persist(Call& call) {
  if (journal_ == nullptr) {
    return;
  }
  call.journalled_latches = latchDigest(call);
  auto st = journal_->put(call.id, callToJson(call, time_->now()));
  if (!st) {
    XLOG_WARN(kSession, "call {}: journal: {}", call.id, st.error().message);
  }
}

size_t CallRegistry::restore(const std::vector<nlohmann::json>& calls) {
  size_t restored = 0;
  auto now = time_->now();
  for (const auto& j : calls) {
    auto parsed = callFromJson(j, cfg_.interfaces, now);
    if (!parsed) {
      XLOG_ERROR(kSession, "journal: a call cannot be restored: {}", parsed.error().message);
      continue;
    }
    std::unique_ptr<Call> call = std::move(*parsed);
    if (calls_.count(call->id) != 0) {
      continue;
    }
    call->worker = next_worker_++ % std::max<uint32_t>(1, table_.workerCount());
    Status bound = okStatus();
    for (auto& p : call->participants) {
      for (auto& m : p->medias) {
        if (!m.allocated || !bound) {
          m.allocated = false;
          continue;
        }
        auto pair = ports_.claim(m.iface->local, m.rtp.local.port());
        if (!pair) {
          bound = std::move(pair).error();
          m.allocated = false;
          continue;
        }
        m.rtp.id = next_flow_id_++;
        m.rtcp.id = next_flow_id_++;
        m.rtp.pending_fd = std::move(pair->rtp);
        m.rtcp.pending_fd = std::move(pair->rtcp);
      }
    }
    if (!bound) {
      XLOG_ERROR(kSession, "journal: call {} not restored: {}", call->id, bound.error().message);
      for (auto& p : call->participants) {
        destroyParticipant(*p);
      }
      if (journal_ != nullptr) {
        (void)journal_->erase(call->id);
      }
      continue;
    }
    // Each participant's sockets send to its peer (forks: the older branches still point at
    // the caller, whose peer is the newest branch).
    for (auto& p : call->participants) {
      programOneWay(*call, *p, p->peer, {});
    }
    ++totals_.managed_sessions;
    XLOG_INFO(kSession, "call {} restored ({} participants)", call->id, call->participants.size());
    calls_.emplace(call->id, std::move(call));
    ++restored;
  }
  return restored;
}

void CallRegistry::destroyParticipant(Participant& p) {
  for (auto& m : p.medias) {
    for (Stream* s : {&m.rtp, &m.rtcp}) {
      if (s->in_table) {
        table_.remove(s->id);
        s->in_table = false;
      }
      s->pending_fd.reset();
    }
    if (m.allocated) {
      ports_.release(m.iface->local, m.rtp.local.port());
      m.allocated = false;
    }
  }
}

void CallRegistry::removeParticipant(Call& call, Participant* victim) {
  destroyParticipant(*victim);
  // Every participant that exchanged media with the victim gets another partner (the newest
  // remaining one that points back at it), or none; its flows are re-pointed accordingly.
  for (auto& p : call.participants) {
    if (p.get() == victim || p->peer != victim) {
      continue;
    }
    p->peer = nullptr;
    for (auto& q : call.participants) {
      if (q.get() != victim && q.get() != p.get() && q->peer == p.get()) {
        p->peer = q.get();
      }
    }
    if (p->peer != nullptr) {
      programFlows(call, *p, *p->peer, {}, {});
    } else {
      for (auto& m : p->medias) {
        for (bool rtcp : {false, true}) {
          Stream& s = rtcp ? m.rtcp : m.rtp;
          if (s.in_table) {
            auto spec = flowSpec(call, m, m, rtcp, nullptr);
            spec.rtp_sink = spec.rtcp_sink = 0;  // nowhere to send until a new partner
            (void)table_.update(spec, false);
          }
        }
      }
    }
  }
  call.participants.erase(
      std::remove_if(call.participants.begin(), call.participants.end(),
                     [&](const auto& p) { return p.get() == victim; }),
      call.participants.end());
}

void CallRegistry::endCall(const std::string& call_id, EndReason reason) {
  auto it = calls_.find(call_id);
  if (it == calls_.end()) {
    return;
  }
  Call& call = *it->second;
  addRelayCounters(totals_, call);  // the call's traffic stays in the daemon totals
  for (auto& p : call.participants) {
    destroyParticipant(*p);
  }
  switch (reason) {
    case EndReason::kRegular:
      ++totals_.regular_terminated_sessions;
      break;
    case EndReason::kForced:
      ++totals_.forced_terminated_sessions;
      break;
    case EndReason::kTimeout:
      ++totals_.timeout_sessions;
      break;
    case EndReason::kSilentTimeout:
      ++totals_.silent_timeout_sessions;
      break;
    case EndReason::kFinalTimeout:
      ++totals_.final_timeout_sessions;
      break;
    case EndReason::kOfferTimeout:
      ++totals_.offer_timeout_sessions;
      break;
  }
  ++totals_.ended_calls;
  totals_.total_call_duration_s +=
      std::chrono::duration<double>(time_->now() - call.created_mono).count();
  static constexpr const char* kReasonNames[] = {"deleted",        "terminated",
                                                 "media timeout",  "silent timeout",
                                                 "final timeout",  "offer timeout"};
  XLOG_INFO(kSession, "call {} ended: {}", call_id, kReasonNames[static_cast<int>(reason)]);
  if (journal_ != nullptr) {
    auto st = journal_->erase(call_id);
    if (!st) {
      XLOG_WARN(kSession, "call {}: journal: {}", call_id, st.error().message);
    }
  }
  calls_.erase(it);
}

CallRegistry::DeleteResult CallRegistry::remove(const DeleteRequest& req) {
  DeleteResult res;
  auto it = calls_.find(req.call_id);
  if (it == calls_.end()) {
    return res;
  }
  Call& call = *it->second;
  Participant* victim = nullptr;
  if (!req.from_tag.empty()) {
    if (req.honour_to_tag && !req.to_tag.empty()) {
      victim = call.findTag(req.to_tag);
    }
    if (victim == nullptr && !req.via_branch.empty()) {
      victim = call.findUntagged(req.via_branch);
    }
    if (victim == nullptr && call.findTag(req.from_tag) == nullptr) {
      return res;  // tags didn't match
    }
  }
  res.found = true;
  if (req.want_stats) {
    table_.sync();  // workers publish exact per-SSRC counters
    refreshCounters(call);
    res.info = info(call);
  }
  if (victim != nullptr && call.participants.size() > 2) {
    // One branch of a forked call goes; the rest stays.
    removeParticipant(call, victim);
    persist(call);
    return res;
  }
  uint32_t delay = req.delete_delay.value_or(cfg_.delete_delay);
  if (delay == 0) {
    endCall(req.call_id, EndReason::kRegular);
  } else {
    call.delete_at = time_->now() + std::chrono::seconds(delay);
    persist(call);
  }
  return res;
}

bool CallRegistry::terminate(std::string_view call_id) {
  std::string id(call_id);
  if (calls_.find(id) == calls_.end()) {
    return false;
  }
  endCall(id, EndReason::kForced);
  return true;
}

Result<CallInfo> CallRegistry::query(std::string_view call_id) const {
  auto it = calls_.find(std::string(call_id));
  if (it == calls_.end()) {
    return sessionError("Unknown call-id");
  }
  table_.sync();  // workers publish exact per-SSRC counters
  refreshCounters(*it->second);
  return info(*it->second);
}

std::vector<std::string> CallRegistry::list(size_t limit) const {
  std::vector<std::string> out;
  for (const auto& [id, c] : calls_) {
    if (out.size() >= limit) {
      break;
    }
    out.push_back(id);
  }
  return out;
}

void CallRegistry::refreshCounters(const Call& call) const {
  for (const auto& p : call.participants) {
    for (const auto& m : p->medias) {
      for (const Stream* s : {&m.rtp, &m.rtcp}) {
        if (s->in_table) {
          table_.refreshCounters(s->id);
        }
      }
    }
  }
}

CallInfo CallRegistry::info(const Call& call) const {
  CallInfo ci;
  ci.call_id = call.id;
  ci.created = call.created_unix;
  ci.created_us = call.created_us;
  ci.last_signal = call.last_signal_unix;
  auto now = time_->now();
  int64_t unix_us = time_->unixMicros();
  for (const auto& p : call.participants) {
    ParticipantInfo pi;
    pi.tag = p->tag;
    pi.label = p->label;
    pi.via_branch = p->via_branch;
    pi.aliases = p->aliases;
    pi.created = p->created;
    if (p->peer != nullptr) {
      pi.peers.push_back(p->peer->tag);
    }
    for (const auto& m : p->medias) {
      MediaInfo mi;
      mi.index = m.index;
      mi.type = m.type;
      mi.protocol = m.protocol;
      mi.codecs = m.codecs;
      mi.flags.push_back("initialized");
      if (m.sends) {
        mi.flags.push_back("send");
      }
      if (m.receives) {
        mi.flags.push_back("recv");
      }
      if (m.rtcp_mux) {
        mi.flags.push_back("rtcp-mux");
      }
      for (const Stream* s : {&m.rtp, &m.rtcp}) {
        StreamInfo si;
        si.local = s->local;
        si.rtcp = s == &m.rtcp;
        si.rtcp_mux = !si.rtcp && m.rtcp_mux;
        si.advertised = s->advertised;
        if (s->counters) {
          const auto& c = *s->counters;
          // What the worker saw plus what the kernel forwarded without it (no overlap).
          si.user.packets = c.packets.load(std::memory_order_relaxed);
          si.user.bytes = c.bytes.load(std::memory_order_relaxed);
          si.user.errors = c.errors.load(std::memory_order_relaxed);
          si.kernel.packets = c.kernel_packets.load(std::memory_order_relaxed);
          si.kernel.bytes = c.kernel_bytes.load(std::memory_order_relaxed);
          si.kernelized = c.kernelized.load(std::memory_order_relaxed);
          si.stats.packets = si.user.packets + si.kernel.packets;
          si.stats.bytes = si.user.bytes + si.kernel.bytes;
          si.stats.errors = si.user.errors;
          si.forwarded = c.forwarded.load(std::memory_order_relaxed) + si.kernel.packets;
          si.dropped_source = c.dropped_source.load(std::memory_order_relaxed) +
                              c.kernel_dropped_source.load(std::memory_order_relaxed);
          si.malformed = c.malformed.load(std::memory_order_relaxed);
          si.last_packet = toUnix(std::max(c.last_packet_ns.load(std::memory_order_relaxed),
                                           c.kernel_last_ns.load(std::memory_order_relaxed)),
                                  now, unix_us);
          std::lock_guard lock(c.mu);
          si.confirmed = c.learned.has_value();
          si.endpoint = c.learned ? c.learned : s->advertised;
          si.ssrc.assign(c.ssrc.begin(), c.ssrc.begin() + c.ssrc_count);
        } else {
          si.endpoint = s->advertised;
        }
        PacketTotals& tot = si.rtcp ? ci.rtcp : ci.rtp;
        tot.packets += si.stats.packets;
        tot.bytes += si.stats.bytes;
        tot.errors += si.stats.errors;
        mi.streams.push_back(std::move(si));
      }
      pi.medias.push_back(std::move(mi));
    }
    ci.participants.push_back(std::move(pi));
  }
  return ci;
}

GlobalStats CallRegistry::stats() const {
  GlobalStats g = totals_;
  g.sessions_current = calls_.size();
  g.ports_in_use = ports_.pairsInUse();
  g.ports_total = ports_.pairsTotal();
  g.uptime_s = time_->unixMicros() / 1000000 - started_unix_;
  if (datapath_info_) {
    g.datapath = datapath_info_();
  }
  for (const auto& [id, call] : calls_) {
    addRelayCounters(g, *call);
  }
  return g;
}

void CallRegistry::tick() {
  table_.poll();  // kernel counters and latches into the FlowCounters read below
  auto now = time_->now();
  {
    GlobalStats g = stats();
    double dt = std::chrono::duration<double>(now - last_tick_).count();
    if (last_tick_ != Clock::time_point{} && dt > 0.1) {
      auto rate = [&](uint64_t cur, uint64_t prev) {
        return cur >= prev ? static_cast<uint64_t>(static_cast<double>(cur - prev) / dt) : 0;
      };
      totals_.packet_rate = rate(g.relayed_packets, last_packets_);
      totals_.byte_rate = rate(g.relayed_bytes, last_bytes_);
      totals_.error_rate = rate(g.relayed_errors, last_errors_);
    }
    last_tick_ = now;
    last_packets_ = g.relayed_packets;
    last_bytes_ = g.relayed_bytes;
    last_errors_ = g.relayed_errors;
  }
  if (journal_ != nullptr) {
    // Latches happen between signalling events; keep them for a restart (a NAT'd peer's
    // endpoint would otherwise be open to learning again after it).
    for (const auto& [id, cp] : calls_) {
      if (!cp->delete_at && latchDigest(*cp) != cp->journalled_latches) {
        persist(*cp);
      }
    }
  }
  std::vector<std::pair<std::string, EndReason>> ending;
  for (const auto& [id, cp] : calls_) {
    const Call& call = *cp;
    auto since = [&](Clock::time_point t) {
      return std::chrono::duration_cast<std::chrono::seconds>(now - t).count();
    };
    if (cfg_.final_timeout != 0 && since(call.created_mono) >= cfg_.final_timeout) {
      ending.emplace_back(id, EndReason::kFinalTimeout);
      continue;
    }
    if (call.delete_at) {
      if (now >= *call.delete_at) {
        ending.emplace_back(id, EndReason::kRegular);
      }
      continue;
    }
    if (!call.answered) {
      if (cfg_.offer_timeout != 0 && since(call.last_signal_mono) >= cfg_.offer_timeout) {
        ending.emplace_back(id, EndReason::kOfferTimeout);
      }
      continue;
    }
    // Media activity: the newest packet on any stream, or the last signalling event.
    int64_t last_ns = call.last_signal_mono.time_since_epoch().count();
    bool two_way = false;
    for (const auto& p : call.participants) {
      for (const auto& m : p->medias) {
        for (const Stream* s : {&m.rtp, &m.rtcp}) {
          if (s->counters) {
            last_ns = std::max({last_ns, s->counters->last_packet_ns.load(std::memory_order_relaxed),
                                s->counters->kernel_last_ns.load(std::memory_order_relaxed)});
          }
        }
        if (!m.rejected && m.sends && !m.zero_address && p->peer != nullptr &&
            m.index <= static_cast<int>(p->peer->medias.size())) {
          const Media& pm = p->peer->medias[m.index - 1];
          two_way |= pm.sends && !pm.zero_address;
        }
      }
    }
    int64_t idle_s = (now.time_since_epoch().count() - last_ns) / 1000000000;
    uint32_t limit = two_way ? cfg_.timeout : cfg_.silent_timeout;
    if (limit != 0 && idle_s >= static_cast<int64_t>(limit)) {
      ending.emplace_back(id, two_way ? EndReason::kTimeout : EndReason::kSilentTimeout);
    }
  }
  for (const auto& [id, reason] : ending) {
    endCall(id, reason);
  }
}

}  // namespace xems::session
