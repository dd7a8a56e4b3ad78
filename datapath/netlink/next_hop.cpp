#include "datapath/netlink/next_hop.h"

#include <linux/neighbour.h>
#include <time.h>

#include <chrono>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <netlink/attr.h>
#include <netlink/handlers.h>
#include <netlink/route/link.h>
#include <netlink/route/neighbour.h>
#include <netlink/socket.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>

#include "common/log.h"
#include "datapath/netlink/nl_internal.h"

namespace xems::datapath::nl {

using detail::CachePtr;
using detail::connectRoute;
using detail::forEach;
using detail::MsgPtr;
using detail::SockPtr;
using detail::toIp;

bool xdpCanTransmitOn(const std::string& kind) {
  return kind.empty() || kind == "veth" || kind == "bond";
}

namespace {

using Mac = std::array<uint8_t, 6>;

// Neighbour states whose MAC the kernel itself would put on a frame (NUD_VALID without
// NUD_NONE/INCOMPLETE/FAILED; NUD_NOARP entries carry the address the device uses without ARP).
constexpr int kUsableNud =
    NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT | NUD_NOARP;

// Reads per query: each returns at most one datagram; more than one only when replies to earlier
// queries that timed out are still queued (they are skipped by sequence number). A read waits at
// most kTimeoutMs, and only when nothing is queued, which ends the query.
constexpr int kMaxReads = 8;

struct CbFree {
  void operator()(nl_cb* cb) const { nl_cb_put(cb); }
};
using CbPtr = std::unique_ptr<nl_cb, CbFree>;

Status setTimeouts(nl_sock* sock) {
  timeval tv{};
  tv.tv_sec = NextHopCache::kTimeoutMs / 1000;
  tv.tv_usec = static_cast<suseconds_t>(NextHopCache::kTimeoutMs % 1000) * 1000;
  const int fd = nl_socket_get_fd(sock);
  for (const int opt : {SO_RCVTIMEO, SO_SNDTIMEO}) {
    if (::setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof(tv)) != 0) {
      return XEMS_ERRNO(errno,
                        opt == SO_RCVTIMEO ? "setsockopt(SO_RCVTIMEO)" : "setsockopt(SO_SNDTIMEO)");
    }
  }
  return okStatus();
}

Result<SockPtr> connectWithTimeouts() {
  auto sock = connectRoute();
  if (!sock) {
    return std::move(sock).error();
  }
  if (auto st = setTimeouts(sock->get()); !st) {
    return std::move(st).error();
  }
  return sock;
}


// What a route query got back.
// gateway: RTA_GATEWAY, or RTA_VIA (an IPv4 route via an IPv6 router); encap: RTA_ENCAP, an
// lwtunnel (MPLS, SRv6, ...) XDP cannot do.
using RouteReply = NextHopCache::RouteInfo;

struct Query {
  uint32_t seq = 0;
  int family = AF_UNSPEC;
  bool done = false;
  const char* bad = nullptr;  // why the answer could not be parsed
  RouteReply reply;
};

int onSeqCheck(nl_msg* msg, void* arg) {
  // Replies to queries that timed out come first: skip them.
  return nlmsg_hdr(msg)->nlmsg_seq == static_cast<Query*>(arg)->seq ? NL_OK : NL_SKIP;
}

int onError(sockaddr_nl* /*from*/, nlmsgerr* e, void* arg) {
  auto* q = static_cast<Query*>(arg);
  q->done = true;
  q->reply.error = e->error < 0 ? -e->error : e->error;
  return NL_STOP;
}

int onReply(nl_msg* msg, void* arg) {
  auto* q = static_cast<Query*>(arg);
  q->done = true;
  nlmsghdr* h = nlmsg_hdr(msg);
  if (h->nlmsg_type != RTM_NEWROUTE || !nlmsg_valid_hdr(h, sizeof(rtmsg))) {
    q->bad = "not a route message";
    return NL_STOP;
  }
  const auto* rtm = static_cast<const rtmsg*>(nlmsg_data(h));
  if (rtm->rtm_family != q->family) {
    q->bad = "route of another family";
    return NL_STOP;
  }
  nlattr* tb[RTA_MAX + 1] = {};
  if (nlmsg_parse(h, sizeof(rtmsg), tb, RTA_MAX, nullptr) < 0) {
    q->bad = "malformed route attributes";
    return NL_STOP;
  }
  RouteReply& r = q->reply;
  r.type = rtm->rtm_type;
  if (const nlattr* a = tb[RTA_OIF]; a != nullptr && nla_len(a) >= 4) {
    r.oif = nla_get_u32(const_cast<nlattr*>(a));
  }
  if (const nlattr* a = tb[RTA_GATEWAY]; a != nullptr) {
    r.gateway = IpAddr::fromAf(q->family, nla_data(a), static_cast<size_t>(nla_len(a)));
    if (!r.gateway) {
      q->bad = "malformed RTA_GATEWAY";
    }
  } else if (const nlattr* v = tb[RTA_VIA]; v != nullptr) {
    const auto len = static_cast<size_t>(nla_len(v));
    rtvia via{};
    if (len >= sizeof(via)) {
      std::memcpy(&via, nla_data(v), sizeof(via));
      r.gateway =
          IpAddr::fromAf(via.rtvia_family, static_cast<const uint8_t*>(nla_data(v)) + sizeof(via),
                     len - sizeof(via));
    }
    if (!r.gateway) {
      q->bad = "malformed RTA_VIA";
    }
  }
  r.encap = tb[RTA_ENCAP] != nullptr;
  return NL_STOP;
}

// `ip route get DST from SRC ipproto udp`. An error when no answer was understood; the kernel's
// own error answers are RouteReply::error.
Result<RouteReply> queryRoute(nl_sock* sock, const IpAddr& src, const IpAddr& dst) {
  MsgPtr msg(nlmsg_alloc_simple(RTM_GETROUTE, 0));  // NLM_F_REQUEST: added by nl_send_auto
  if (!msg) {
    return XEMS_ERROR(std::make_error_code(std::errc::not_enough_memory), "nlmsg_alloc_simple");
  }
  const unsigned len = static_cast<unsigned>(dst.rawSize());
  rtmsg rtm{};
  rtm.rtm_family = static_cast<uint8_t>(dst.af());
  rtm.rtm_dst_len = static_cast<uint8_t>(len * 8);
  rtm.rtm_src_len = src.isAny() ? 0 : static_cast<uint8_t>(len * 8);
  int err = nlmsg_append(msg.get(), &rtm, sizeof(rtm), NLMSG_ALIGNTO);
  if (err >= 0) {
    err = nla_put(msg.get(), RTA_DST, static_cast<int>(len), dst.bytes());
  }
  if (err >= 0 && !src.isAny()) {
    err = nla_put(msg.get(), RTA_SRC, static_cast<int>(len), src.bytes());
  }
  if (err >= 0) {
    // Media is UDP: policy routing rules on `ipproto udp` apply (ignored before Linux 4.17).
    err = nla_put_u8(msg.get(), RTA_IP_PROTO, IPPROTO_UDP);
  }
  if (err < 0) {
    return XEMS_NL_ERROR(err, "building RTM_GETROUTE");
  }
  if (err = nl_send_auto(sock, msg.get()); err < 0) {
    return XEMS_NL_ERROR(err, "sending RTM_GETROUTE");
  }

  Query q;
  q.seq = nlmsg_hdr(msg.get())->nlmsg_seq;
  q.family = dst.af();
  CbPtr cb(nl_cb_alloc(NL_CB_DEFAULT));
  if (!cb) {
    return XEMS_ERROR(std::make_error_code(std::errc::not_enough_memory), "nl_cb_alloc");
  }
  nl_cb_set(cb.get(), NL_CB_SEQ_CHECK, NL_CB_CUSTOM, &onSeqCheck, &q);
  nl_cb_set(cb.get(), NL_CB_VALID, NL_CB_CUSTOM, &onReply, &q);
  nl_cb_err(cb.get(), NL_CB_CUSTOM, &onError, &q);
  for (int i = 0; i < kMaxReads && !q.done; ++i) {
    err = nl_recvmsgs(sock, cb.get());
    if (!q.done && err < 0) {
      // NLE_AGAIN: nothing within kTimeoutMs.
      return XEMS_NL_ERROR(err, "reading the RTM_GETROUTE answer");
    }
  }
  if (!q.done) {
    return XEMS_ERROR(std::make_error_code(std::errc::protocol_error),
                      "no answer to RTM_GETROUTE among stale replies");
  }
  if (q.bad != nullptr) {
    return XEMS_ERROR(std::make_error_code(std::errc::bad_message),
                      std::string("RTM_GETROUTE answer: ") + q.bad);
  }
  return q.reply;
}

// Kernel answers meaning "there is no route to send this on", as `ip route get` reports them.
bool isNoRoute(int error) {
  switch (error) {
    case ENETUNREACH:   // no route; or src is not a local address (IPv4)
    case EHOSTUNREACH:  // unreachable route or rule
    case EACCES:        // prohibit route or rule
    case EINVAL:        // blackhole route or rule
      return true;
    default:
      return false;
  }
}

const char* routeTypeName(uint8_t type) {
  switch (type) {
    case RTN_LOCAL:
      return "local";
    case RTN_BROADCAST:
      return "broadcast";
    case RTN_ANYCAST:
      return "anycast";
    case RTN_MULTICAST:
      return "multicast";
    case RTN_BLACKHOLE:
      return "blackhole";
    case RTN_UNREACHABLE:
      return "unreachable";
    case RTN_PROHIBIT:
      return "prohibit";
    case RTN_THROW:
      return "throw";
    case RTN_NAT:
      return "nat";
    default:
      return "not unicast";
  }
}

}  // namespace

void NextHopCache::SockDeleter::operator()(nl_sock* s) const {
  nl_socket_free(s);
}

NextHopCache::NextHopCache(Sock query_sock, Sock dump_sock)
    : sock_(std::move(query_sock)), dump_sock_(std::move(dump_sock)) {}

NextHopCache::~NextHopCache() = default;

Result<std::unique_ptr<NextHopCache>> NextHopCache::open() {
  auto query = connectWithTimeouts();
  if (!query) {
    return std::move(query).error().wrap("next hop: route socket");
  }
  // Answers are matched by sequence number (onSeqCheck), not acknowledged: a GET is answered by
  // its reply or an error.
  nl_socket_disable_auto_ack(query->get());
  auto dumps = connectWithTimeouts();
  if (!dumps) {
    return std::move(dumps).error().wrap("next hop: dump socket");
  }
  std::unique_ptr<NextHopCache> c(new NextHopCache(Sock(query->release()), Sock(dumps->release())));
  if (auto st = c->dump(); !st) {
    return std::move(st).error().wrap("next hop");
  }
  return c;
}

Status NextHopCache::dump() {
  if (!dump_sock_) {
    auto sock = connectWithTimeouts();
    if (!sock) {
      return std::move(sock).error();
    }
    dump_sock_.reset(sock->release());
  }
  // A dump that failed half way leaves the rest of it queued and libnl's sequence numbers
  // behind: the socket is replaced before the next dump.
  auto drop = [&](Error e) {
    dump_sock_.reset();
    return e;
  };

  auto link_cache = detail::linkCache(dump_sock_.get());
  if (!link_cache) {
    return drop(std::move(link_cache).error());
  }
  nl_cache* raw = nullptr;
  if (const int err = rtnl_neigh_alloc_cache(dump_sock_.get(), &raw); err < 0) {
    return drop(XEMS_NL_ERROR(err, "rtnl_neigh_alloc_cache"));
  }
  CachePtr neigh_cache(raw);

  Links links;
  forEach<rtnl_link>(link_cache->get(), [&](rtnl_link* l) {
    Link link;
    const unsigned flags = rtnl_link_get_flags(l);
    nl_addr* ll = rtnl_link_get_addr(l);
    const char* kind = rtnl_link_get_type(l);
    if (ll != nullptr && nl_addr_get_len(ll) == link.mac.size()) {
      std::memcpy(link.mac.data(), nl_addr_get_binary_addr(ll), link.mac.size());
    }
    if ((flags & IFF_LOOPBACK) != 0) {
      link.unusable = "loopback";
    } else if (rtnl_link_get_arptype(l) != ARPHRD_ETHER) {
      link.unusable = "not Ethernet";
    } else if (link.mac == Mac{}) {
      link.unusable = "no MAC";
    } else if (!xdpCanTransmitOn(kind != nullptr ? kind : "")) {
      link.unusable = std::string("kind '") + kind + "' (XDP does not transmit on it)";
    } else if (!detail::isUp(flags)) {
      link.unusable = "down";
    }
    links[static_cast<uint32_t>(rtnl_link_get_ifindex(l))] = std::move(link);
  });

  Neighbours neighbours;
  forEach<rtnl_neigh>(neigh_cache.get(), [&](rtnl_neigh* n) {
    const int state = rtnl_neigh_get_state(n);  // -1 when the message had none
    if (state < 0 || (state & kUsableNud) == 0) {
      return;
    }
    if ((rtnl_neigh_get_flags(n) & NTF_PROXY) != 0) {
      return;  // answered for, not a neighbour
    }
    auto ip = toIp(rtnl_neigh_get_dst(n));
    nl_addr* ll = rtnl_neigh_get_lladdr(n);
    if (!ip || ll == nullptr || nl_addr_get_len(ll) != sizeof(Mac)) {
      return;
    }
    Mac mac;
    std::memcpy(mac.data(), nl_addr_get_binary_addr(ll), mac.size());
    neighbours[NeighKey{static_cast<uint32_t>(rtnl_neigh_get_ifindex(n)), *ip}] = mac;
  });

  links_ = std::move(links);
  neighbours_ = std::move(neighbours);
  return okStatus();
}

void NextHopCache::refresh() {
  if (!failed_this_period_) {
    warned_ = false;  // a new run of failures gets a warning again
  }
  failed_this_period_ = false;
  cache_.clear();
  wait_budget_us_ = kResolveBudgetMs * 1000;
  if (kicked_.size() >= kMaxCached / 2) {
    kicked_.clear();
  }
  if (++periods_ % kRoutePeriods == 0 || routes_.size() >= kMaxCached) {
    routes_.clear();
  }
  if (auto st = dump(); !st) {
    fail("re-reading links and neighbours (keeping the previous ones): " + st.error().message);
  }
}

void NextHopCache::fail(const std::string& what) {
  failures_.fetch_add(1, std::memory_order_relaxed);
  failed_this_period_ = true;
  if (!warned_) {
    warned_ = true;
    XLOG_WARN(kBpf, "next hop: {} (further failures are logged at debug level)", what);
  } else {
    XLOG_DEBUG(kBpf, "next hop: {}", what);
  }
}

std::optional<NextHop> NextHopCache::lookup(const IpAddr& src, const IpAddr& dst) {
  lookups_.fetch_add(1, std::memory_order_relaxed);
  if (dst.isNone() || dst.isAny() || src.family() != dst.family()) {
    auto text = [](const IpAddr& a) { return a.isNone() ? std::string("(none)") : a.toString(); };
    fail("lookup from " + text(src) + " to " + text(dst) + ": bad addresses");
    return std::nullopt;
  }
  const PairKey key{src, dst};
  if (auto it = cache_.find(key); it != cache_.end()) {
    return it->second;
  }
  if (cache_.size() >= kMaxCached) {
    cache_.clear();
  }
  auto hop = resolve(src, dst);
  cache_.emplace(key, hop);
  return hop;
}

std::optional<NextHop> NextHopCache::resolve(const IpAddr& src, const IpAddr& dst) {
  auto none = [&](std::string_view why) {
    XLOG_DEBUG(kBpf, "next hop from {} to {}: none, {}", src.toString(), dst.toString(), why);
    return std::nullopt;
  };
  Result<RouteReply> route = RouteReply{};
  if (auto it = routes_.find(PairKey{src, dst}); it != routes_.end()) {
    *route = it->second;
  } else {
    route_queries_.fetch_add(1, std::memory_order_relaxed);
    route = queryRoute(sock_.get(), src, dst);
    if (route) {
      routes_.emplace(PairKey{src, dst}, *route);
    }
  }
  if (!route) {
    fail("route from " + src.toString() + " to " + dst.toString() + ": " + route.error().message);
    return std::nullopt;
  }
  if (route->error != 0) {
    if (!isNoRoute(route->error)) {
      fail("route from " + src.toString() + " to " + dst.toString() + ": " +
           std::strerror(route->error));
      return std::nullopt;
    }
    return none(std::string("no route: ") + std::strerror(route->error));
  }
  if (route->type != RTN_UNICAST) {
    return none(std::string("route type ") + routeTypeName(route->type));
  }
  if (route->encap) {
    return none("route with an encapsulation");
  }
  auto link = links_.find(route->oif);
  if ((link == links_.end() || link->second.unusable == "down") && wait_budget_us_ > 0) {
    // Devices change state (a veth's carrier settles after an XDP attach): look again now
    // rather than keep a stale answer for a second. Counted against the period's budget.
    const auto t0 = std::chrono::steady_clock::now();
    if (dump().ok()) {
      link = links_.find(route->oif);
    }
    wait_budget_us_ -= std::chrono::duration_cast<std::chrono::microseconds>(
                           std::chrono::steady_clock::now() - t0)
                           .count();
  }
  if (route->oif == 0 || link == links_.end()) {
    return none("output device " + std::to_string(route->oif) + " unknown (until refresh)");
  }
  if (!link->second.unusable.empty()) {
    return none("output device " + std::to_string(route->oif) + ": " + link->second.unusable);
  }
  // Copies: the waits below re-read links_ and neighbours_, which invalidates iterators.
  const uint32_t oif = route->oif;
  const Mac src_mac = link->second.mac;
  const IpAddr next = route->gateway ? *route->gateway : dst;
  const NeighKey nkey{route->oif, next};
  auto neigh = neighbours_.find(nkey);
  if (neigh == neighbours_.end()) {
    auto k = kicked_.find(nkey);
    const bool recently = k != kicked_.end() && periods_ - k->second < kKickPeriods;
    if (!recently && kicked_.size() < kMaxCached && kickNeighbour(route->oif, next)) {
      kicked_[nkey] = periods_;
      // Bounded: kResolveWaitMs in 250 us steps (a LAN answers ARP/ND in well under 1 ms), one
      // neighbour dump each, and no more than the period's budget.
      // Sleeping and dumping both count against the budget (a big neighbour table makes each
      // dump slower).
      constexpr int64_t kStepUs = 250;
      const auto t0 = std::chrono::steady_clock::now();
      auto elapsed = [&] {
        return std::chrono::duration_cast<std::chrono::microseconds>(
                   std::chrono::steady_clock::now() - t0)
            .count();
      };
      const int64_t budget = wait_budget_us_;
      while (neigh == neighbours_.end() && elapsed() < kResolveWaitMs * 1000 &&
             elapsed() + kStepUs <= budget) {
        const timespec step{0, kStepUs * 1000};
        ::nanosleep(&step, nullptr);
        if (dump().ok()) {
          neigh = neighbours_.find(nkey);
        }
      }
      wait_budget_us_ -= elapsed();
    }
  }
  if (neigh == neighbours_.end()) {
    return none("no usable neighbour entry for " + next.toString() + " on device " +
                std::to_string(route->oif));
  }
  return NextHop{oif, src_mac, neigh->second};
}

bool NextHopCache::kickNeighbour(uint32_t ifindex, const IpAddr& addr) {
  if (!dump_sock_) {
    return false;
  }
  std::unique_ptr<rtnl_neigh, void (*)(rtnl_neigh*)> n(rtnl_neigh_alloc(), rtnl_neigh_put);
  if (!n) {
    return false;
  }
  const int family = addr.af();
  std::unique_ptr<nl_addr, void (*)(nl_addr*)> dst(
      nl_addr_build(family, const_cast<uint8_t*>(addr.bytes()), addr.isV4() ? 4 : 16),
      nl_addr_put);
  if (!dst) {
    return false;
  }
  rtnl_neigh_set_ifindex(n.get(), static_cast<int>(ifindex));
  rtnl_neigh_set_family(n.get(), family);
  if (rtnl_neigh_set_dst(n.get(), dst.get()) < 0) {
    return false;
  }
  // NTF_USE: the kernel creates the entry if needed and starts resolving it (as a packet to it
  // would); the state in the request is not applied.
  rtnl_neigh_set_flags(n.get(), NTF_USE);
  const int err = rtnl_neigh_add(dump_sock_.get(), n.get(), NLM_F_CREATE | NLM_F_REPLACE);
  if (err < 0) {
    XLOG_DEBUG(kBpf, "next hop: resolving {} on device {}: {}", addr.toString(), ifindex,
               nl_geterror(err));
    return false;
  }
  kicks_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

}  // namespace xems::datapath::nl
