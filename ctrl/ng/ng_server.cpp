#include "ctrl/ng/ng_server.h"

#include <fmt/format.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "common/log.h"
#include "ctrl/session/port_allocator.h"

namespace xems::ng {
namespace {

constexpr size_t kMaxDatagram = 65535;
// The largest reply that fits one UDP datagram (65535 - IPv6/UDP headers, rounded down). A larger
// reply (statistics of a call with very many media) is replaced by a short one with a warning,
// so the client still gets an answer instead of retransmitting into silence.
constexpr size_t kMaxReply = 65000;
constexpr int64_t kMaxDeleteDelay = 86400;
constexpr int kMaxDatagramsPerWakeup = 64;

struct Ctx {
  session::CallRegistry& reg;
  const NgStats& stats;
  Document& doc;
  const Value& req;
  Value& reply;
};

using Handler = Status (*)(Ctx&);

Error fail(std::string_view reason) { return XEMS_INVALID(std::string(reason)); }

// The value of a key under any of rtpengine's spellings, also inside rtpp-flags (`parsed`).
const Value* key(const Value& req, const Value* parsed, std::string_view name) {
  for (const Value* d : {&req, parsed}) {
    if (d == nullptr || !d->isDict()) {
      continue;
    }
    for (const auto& [k, v] : d->dict()) {
      if (normalizeKey(k) == name) {
        return &v;
      }
    }
  }
  return nullptr;
}

std::optional<std::string_view> keyString(const Value& req, const Value* parsed,
                                          std::string_view name) {
  const Value* v = key(req, parsed, name);
  if (v == nullptr || !v->isString()) {
    return std::nullopt;
  }
  return v->asString();
}

bool hasFlag(const Value& req, const Value* parsed, std::string_view flag) {
  for (const Value* d : {&req, parsed}) {
    const Value* f = d != nullptr ? d->find("flags") : nullptr;
    if (f == nullptr || !f->isList()) {
      continue;
    }
    for (const auto& e : f->list()) {
      if (e.isString() && normalizeKey(e.asString()) == flag) {
        return true;
      }
    }
  }
  return false;
}

// rtpp-flags of a request, parsed (nullptr if absent or unparseable).
const Value* rtppFlags(const Value& req, Document& doc, Value& storage) {
  const Value* raw = key(req, nullptr, "rtpp-flags");
  if (raw == nullptr || !raw->isString()) {
    return nullptr;
  }
  auto parsed = parseRtppFlags(raw->asString(), doc);
  if (!parsed) {
    return nullptr;
  }
  storage = *parsed;
  return &storage;
}

Status doPing(Ctx& c) {
  c.reply.add("result", Value::string("pong"));
  return okStatus();
}

Status doOfferAnswer(Ctx& c, session::Op op) {
  auto req = decodeOfferAnswer(c.req, op);
  if (!req) {
    return std::move(req).error();
  }
  auto r = c.reg.offerAnswer(*req);
  if (!r) {
    return std::move(r).error();
  }
  c.reply.add("sdp", c.doc.str(r->sdp));
  return okStatus();
}

Status doOffer(Ctx& c) { return doOfferAnswer(c, session::Op::kOffer); }
Status doAnswer(Ctx& c) { return doOfferAnswer(c, session::Op::kAnswer); }

Status doDelete(Ctx& c) {
  Value storage;
  const Value* rf = rtppFlags(c.req, c.doc, storage);
  session::DeleteRequest d;
  auto call_id = keyString(c.req, rf, "call-id");
  if (!call_id) {
    return fail("No call-id in message");
  }
  d.call_id = std::string(*call_id);
  d.from_tag = std::string(keyString(c.req, rf, "from-tag").value_or(""));
  d.to_tag = std::string(keyString(c.req, rf, "to-tag").value_or(""));
  d.via_branch = std::string(keyString(c.req, rf, "via-branch").value_or(""));
  d.honour_to_tag = hasFlag(c.req, rf, "to-tag");
  d.want_stats = !hasFlag(c.req, rf, "fast");
  if (const Value* v = key(c.req, rf, "delete-delay")) {
    int64_t secs = v->isInt() ? v->asInt() : std::atoll(std::string(v->asString()).c_str());
    d.delete_delay = static_cast<uint32_t>(std::clamp<int64_t>(secs, 0, kMaxDeleteDelay));
  }
  auto res = c.reg.remove(d);
  if (!res.found) {
    if (hasFlag(c.req, rf, "fatal")) {
      return fail("Call-ID not found or tags didn't match");
    }
    c.reply.add("warning", Value::string("Call-ID not found or tags didn't match"));
    return okStatus();
  }
  if (d.want_stats) {
    encodeCallInfo(res.info, c.doc, c.reply);
  }
  return okStatus();
}

Status doQuery(Ctx& c) {
  auto call_id = keyString(c.req, nullptr, "call-id");
  if (!call_id) {
    return fail("No call-id in message");
  }
  auto info = c.reg.query(*call_id);
  if (!info) {
    return std::move(info).error();
  }
  encodeCallInfo(*info, c.doc, c.reply);
  return okStatus();
}

Status doList(Ctx& c) {
  int64_t limit = c.req.findInt("limit").value_or(32);
  Value calls = c.doc.list();
  for (const auto& id : c.reg.list(static_cast<size_t>(std::max<int64_t>(0, limit)))) {
    calls.push(c.doc.str(id));
  }
  c.reply.add("calls", calls);
  return okStatus();
}

Value num(uint64_t v) { return Value::integer(static_cast<int64_t>(v)); }

Status doStatistics(Ctx& c);

struct CommandDef {
  std::string_view name;
  Command cmd;
  Handler handler;
};

constexpr CommandDef kCommands[] = {
    {"ping", Command::kPing, doPing},
    {"offer", Command::kOffer, doOffer},
    {"answer", Command::kAnswer, doAnswer},
    {"delete", Command::kDelete, doDelete},
    {"query", Command::kQuery, doQuery},
    {"list", Command::kList, doList},
    {"statistics", Command::kStatistics, doStatistics},
};
static_assert(std::size(kCommands) == static_cast<size_t>(Command::kCount));

Status doStatistics(Ctx& c) {
  auto g = c.reg.stats();
  Document& d = c.doc;
  Value st = d.dict();
  Value cur = d.dict();
  cur.add("sessionsown", num(g.sessions_current));
  cur.add("sessionsforeign", num(0));
  cur.add("sessionstotal", num(g.sessions_current));
  cur.add("transcodedmedia", num(0));
  cur.add("packetrate", num(g.packet_rate));
  cur.add("byterate", num(g.byte_rate));
  cur.add("errorrate", num(g.error_rate));
  cur.add("portsinuse", num(g.ports_in_use * 2));
  cur.add("portstotal", num(g.ports_total * 2 * c.reg.config().interfaces.size()));
  st.add("currentstatistics", cur);
  Value tot = d.dict();
  tot.add("uptime", d.str(std::to_string(g.uptime_s)));
  tot.add("managedsessions", num(g.managed_sessions));
  tot.add("rejectedsessions", num(g.rejected_sessions));
  tot.add("timeoutsessions", num(g.timeout_sessions));
  tot.add("silenttimeoutsessions", num(g.silent_timeout_sessions));
  tot.add("finaltimeoutsessions", num(g.final_timeout_sessions));
  tot.add("offertimeoutsessions", num(g.offer_timeout_sessions));
  tot.add("regularterminatedsessions", num(g.regular_terminated_sessions));
  tot.add("forcedterminatedsessions", num(g.forced_terminated_sessions));
  tot.add("relayedpackets", num(g.relayed_packets));
  tot.add("relayedpacketerrors", num(g.relayed_errors));
  tot.add("relayedbytes", num(g.relayed_bytes));
  tot.add("droppedforeignsource", num(g.dropped_source));
  tot.add("kernelpackets", num(g.kernel_packets));
  tot.add("sdpparseerrors", num(g.sdp_parse_errors));
  tot.add("avgcallduration",
          d.str(fmt::format("{:.6f}", g.ended_calls ? g.total_call_duration_s /
                                                          static_cast<double>(g.ended_calls)
                                                    : 0.0)));
  tot.add("totalcallsduration", d.str(fmt::format("{:.6f}", g.total_call_duration_s)));
  st.add("totalstatistics", tot);
  Value dp = d.dict();
  dp.add("mode", d.str(g.datapath.mode));
  dp.add("detail", d.str(g.datapath.detail));
  dp.add("offloadfallback", num(g.datapath.offload_fallback));
  Value dpc = d.dict();
  for (const auto& [name, value] : g.datapath.counters) {
    dpc.add(d.intern(name), num(value));
  }
  dp.add("counters", dpc);
  st.add("datapath", dp);
  Value ctl = d.dict();
  ctl.add("requests", num(c.stats.requests));
  ctl.add("cachedreplies", num(c.stats.replies_from_cache));
  ctl.add("invalid", num(c.stats.invalid));
  ctl.add("unknowncommands", num(c.stats.unknown_commands));
  ctl.add("oversizedreplies", num(c.stats.oversized_replies));
  ctl.add("senderrors", num(c.stats.send_errors));
  ctl.add("nocookie", num(c.stats.dropped_no_cookie));
  for (const auto& def : kCommands) {
    const auto& cs = c.stats.commands[static_cast<size_t>(def.cmd)];
    Value e = d.dict();
    e.add("count", num(cs.count));
    e.add("errors", num(cs.errors));
    e.add("mindelay", d.str(fmt::format("{:.6f}", cs.min_s)));
    e.add("maxdelay", d.str(fmt::format("{:.6f}", cs.max_s)));
    e.add("avgdelay",
          d.str(fmt::format("{:.6f}", cs.count ? cs.total_s / static_cast<double>(cs.count) : 0)));
    ctl.add(def.name, e);
  }
  st.add("controlstatistics", ctl);
  c.reply.add("statistics", st);
  return okStatus();
}

}  // namespace

std::string_view commandName(Command c) {
  for (const auto& def : kCommands) {
    if (def.cmd == c) {
      return def.name;
    }
  }
  return "?";
}

NgServer::NgServer(session::CallRegistry& registry)
    : registry_(registry), rxbuf_(kMaxDatagram + 1) {}

Status NgServer::listen(const std::vector<SockAddr>& addrs) {
  for (const auto& a : addrs) {
    auto fd = session::bindUdp(a);
    if (!fd) {
      return std::move(fd).error().wrap(fmt::format("listen-ng {}", a.toString()));
    }
    int sz = 4 << 20;
    ::setsockopt(fd->get(), SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    socks_.push_back(std::move(*fd));
  }
  return okStatus();
}

std::vector<int> NgServer::fds() const {
  std::vector<int> out;
  for (const auto& s : socks_) {
    out.push_back(s.get());
  }
  return out;
}

void NgServer::onReadable(int fd) {
  for (int i = 0; i < kMaxDatagramsPerWakeup; ++i) {
    sockaddr_storage ss{};
    socklen_t sl = sizeof ss;
    ssize_t n = ::recvfrom(fd, rxbuf_.data(), rxbuf_.size(), MSG_DONTWAIT,
                           reinterpret_cast<sockaddr*>(&ss), &sl);
    if (n < 0) {
      return;  // EAGAIN or a transient error: the next wakeup retries
    }
    auto from = SockAddr::fromSockaddr(reinterpret_cast<sockaddr*>(&ss), sl);
    if (!from) {
      continue;
    }
    Reply reply = handle(std::string_view(rxbuf_.data(), static_cast<size_t>(n)), *from);
    if (reply.bytes.empty()) {
      continue;
    }
    if (::sendto(fd, reply.bytes.data(), reply.bytes.size(), MSG_DONTWAIT, from->sa(),
                 from->len()) < 0) {
      ++stats_.send_errors;
    }
    for (const auto& w : reply.waiters) {
      if (!(w == *from)) {
        ::sendto(fd, reply.bytes.data(), reply.bytes.size(), MSG_DONTWAIT, w.sa(), w.len());
      }
    }
  }
}

NgServer::Reply NgServer::handle(std::string_view datagram, const SockAddr& from) {
  ++stats_.requests;
  auto sp = datagram.find(' ');
  if (sp == 0 || sp == std::string_view::npos) {
    ++stats_.dropped_no_cookie;
    XLOG_DEBUG(kNg, "ng message from {} without cookie dropped", from.toString());
    return {};
  }
  std::string_view cookie = datagram.substr(0, sp);
  auto now = CookieClock::now();
  auto look = cookies_.begin(cookie, from, now);
  if (look.state == CookieCache::State::kCached) {
    ++stats_.replies_from_cache;
    return {std::string(cookie) + " " + look.reply, {}};
  }
  if (look.state == CookieCache::State::kInFlight) {
    return {};  // the first copy's reply goes to this sender too (finish() returns it)
  }
  bool cacheable = true;
  std::string payload = process(datagram.substr(sp + 1), &cacheable);
  Reply reply{std::string(cookie) + " " + payload, {}};
  if (cacheable) {
    reply.waiters = cookies_.finish(cookie, std::move(payload), now);
  } else {
    cookies_.abandon(cookie);
  }
  return reply;
}

std::string NgServer::process(std::string_view payload, bool* cacheable) {
  Document doc;
  bool json = !payload.empty() && payload.front() == '{';
  auto encode = [&](const Value& v) {
    std::string out;
    if (json) {
      encodeJson(v, out);
    } else {
      encodeBencode(v, out);
    }
    return out;
  };
  auto error = [&](std::string_view reason) {
    Value r = doc.dict();
    r.add("result", Value::string("error"));
    r.add("error-reason", doc.str(reason));
    return encode(r);
  };
  Result<Value> msg = Error{};
  if (!payload.empty() && payload.front() == 'd') {
    msg = decodeBencode(payload, doc);
    if (!msg) {
      ++stats_.invalid;
      return error("Could not decode bencode dictionary");
    }
  } else if (json) {
    msg = decodeJson(payload, doc);
    if (!msg) {
      ++stats_.invalid;
      return error("Failed to parse JSON document");
    }
  } else {
    ++stats_.invalid;
    return error("Invalid NG data format");
  }
  if (!msg->isDict()) {
    ++stats_.invalid;
    return error("Could not decode bencode dictionary");
  }
  auto cmd = msg->findString("command");
  if (!cmd) {
    ++stats_.invalid;
    return error("Dictionary contains no key \"command\"");
  }
  const CommandDef* def = nullptr;
  for (const auto& d : kCommands) {
    if (d.name == *cmd) {
      def = &d;
    }
  }
  if (def == nullptr) {
    ++stats_.unknown_commands;
    return error("Unrecognized command");
  }
  // Read-only commands need not be replayed from the cache.
  *cacheable = def->cmd != Command::kPing && def->cmd != Command::kStatistics &&
               def->cmd != Command::kList && def->cmd != Command::kQuery;
  auto t0 = std::chrono::steady_clock::now();
  Value reply = doc.dict();
  Ctx ctx{registry_, stats_, doc, *msg, reply};
  Status st = def->handler(ctx);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto& cs = stats_.commands[static_cast<size_t>(def->cmd)];
  cs.min_s = cs.count == 0 ? secs : std::min(cs.min_s, secs);
  cs.max_s = std::max(cs.max_s, secs);
  cs.total_s += secs;
  ++cs.count;
  if (!st) {
    ++cs.errors;
    XLOG_DEBUG(kNg, "{} failed: {}", *cmd, st.error().message);
    return error(st.error().message);
  }
  if (def->cmd != Command::kPing) {
    reply.add("result", Value::string("ok"));
  }
  std::string out = encode(reply);
  if (out.size() + 64 > kMaxReply) {
    ++stats_.oversized_replies;
    Value small = doc.dict();
    if (auto sdp = reply.findString("sdp"); sdp && sdp->size() + 256 < kMaxReply) {
      small.add("sdp", Value::string(*sdp));
    }
    small.add("warning", Value::string("Reply too large for one datagram: details omitted"));
    small.add("result", Value::string("ok"));
    out = encode(small);
  }
  return out;
}

}  // namespace xems::ng
