// Next-hop resolution for XDP outputs: the egress device and the two MACs of a frame we send from
// one of our addresses to a peer, resolved in userspace by the daemon (docs/dependencies.md).
//
// The XDP relay writes ifindex + source MAC + destination MAC into each flow's map entry instead
// of calling bpf_fib_lookup() per packet: that helper fails with "forwarding disabled" when
// ip_forward is 0 (a media relay host should not need routing enabled) and costs ~40 ns a packet.
// The daemon calls refresh() about once a second and then lookup() for each of its flows; a flow
// without a NextHop stays on the userspace path, whose send also makes the kernel resolve the
// neighbour, so the next round finds it.
//
// Its netlink sockets belong to the network namespace of the thread that called open(); a dump
// socket that failed is replaced by one in the calling thread's namespace, so, like LinkMonitor,
// use it from threads of that one namespace. Not thread-safe, except the counters, which may be
// read from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "common/net.h"
#include "common/result.h"

struct nl_sock;

namespace xems::datapath::nl {

struct NextHop {
  uint32_t ifindex = 0;              ///< egress device
  std::array<uint8_t, 6> src_mac{};  ///< that device's MAC
  std::array<uint8_t, 6> dst_mac{};  ///< the neighbour's MAC (the gateway's, or dst's if on-link)
  bool operator==(const NextHop&) const = default;
};

/// Device kinds (IFLA_INFO_KIND) XDP can transmit on with a plain Ethernet frame: "" (a physical
/// NIC: no kind), "veth" and "bond" (XDP support since 5.15; the bond picks the slave). Anything
/// else is left to the kernel stack: "vlan"/"macvlan"/"ipvlan" (no ndo_xdp_xmit, or a tag to
/// push), "bridge", tunnels, "tun"/"tap", "dummy", VRF, ...
bool xdpCanTransmitOn(const std::string& kind);

class NextHopCache {
 public:
  /// Receive and send timeout of every netlink socket: no read waits longer for the kernel. A
  /// query that times out is a failure, cached like any answer.
  static constexpr int kTimeoutMs = 200;
  /// Cached (src, dst) pairs; when full the cache is emptied (and refilled by lookups).
  static constexpr size_t kMaxCached = size_t{1} << 16;
  /// A next hop whose neighbour entry is missing is resolved on the spot: the kernel is asked
  /// to resolve it (RTM_NEWNEIGH with NTF_USE, an ARP/ND probe, no data to the peer) and the
  /// lookup waits up to this long for the answer, so a new call's first packet already has its
  /// MACs. Once per unknown neighbour (entries stay for minutes), never per packet.
  static constexpr int kResolveWaitMs = 5;
  /// All such waits together take at most this long per refresh() period, and a neighbour that
  /// did not answer is not asked again (nor waited for) for kKickPeriods periods: a dead host
  /// on the LAN, or many of them, cannot stall the control thread.
  static constexpr int kResolveBudgetMs = 20;
  static constexpr uint32_t kKickPeriods = 30;
  /// Route answers are kept this many refresh() periods (neighbours and links are re-read every
  /// period): routes rarely change, and a route query per peer per second would cost more than
  /// everything else the daemon does for an idle call.
  static constexpr uint32_t kRoutePeriods = 10;
  /// What a route query said, as kept between refreshes.
  struct RouteInfo {
    int error = 0;  ///< errno of the kernel's NLMSG_ERROR answer; the fields below are unset
    uint8_t type = 0;
    uint32_t oif = 0;
    std::optional<IpAddr> gateway;
    bool encap = false;
  };


  /// Opens the route-query and dump sockets and reads links and neighbours (one dump each).
  static Result<std::unique_ptr<NextHopCache>> open();
  ~NextHopCache();
  NextHopCache(const NextHopCache&) = delete;
  NextHopCache& operator=(const NextHopCache&) = delete;

  /// The next hop of a packet sent from `src` to `dst`: the kernel's route lookup (RTM_GETROUTE
  /// with RTA_SRC, RTA_DST and RTA_IP_PROTO UDP, as `ip route get DST from SRC ipproto udp`),
  /// then the neighbour entry of the gateway (or of dst when on-link) on the output device, as
  /// of the last refresh(). `src` may be the wildcard address (no RTA_SRC: the kernel picks).
  ///
  /// nullopt, not an error, when XDP should not send it: no route (or unreachable, prohibit,
  /// blackhole, or src not local); a route that is not unicast (local, broadcast, multicast...)
  /// or has an encapsulation (lwtunnel); an output device that is loopback, not Ethernet, has no
  /// MAC, is not up (IFF_UP and IFF_RUNNING) or is of a kind xdpCanTransmitOn() rejects; no
  /// neighbour entry in a usable state (REACHABLE, STALE, DELAY, PROBE, PERMANENT or NOARP, with a
  /// MAC): INCOMPLETE, FAILED or none. Also nullopt on failures (family mismatch, netlink errors
  /// or timeouts), which are counted and logged.
  ///
  /// Every answer, nullopt included, is cached per (src, dst) until refresh(): at most one
  /// route query per pair and refresh.
  std::optional<NextHop> lookup(const IpAddr& src, const IpAddr& dst);

  /// Re-reads links and neighbours (one dump each) and forgets cached routes.
  /// Errors are logged and counted, never thrown; on one, the previous links and neighbours are
  /// kept.
  void refresh();
  /// Forgets the route answers now instead of after kRoutePeriods (a route change event).
  void forgetRoutes() { routes_.clear(); cache_.clear(); }

  /// lookup() calls.
  uint64_t lookups() const { return lookups_.load(std::memory_order_relaxed); }
  /// RTM_GETROUTE queries sent (lookups the cache did not answer).
  uint64_t route_queries() const { return route_queries_.load(std::memory_order_relaxed); }
  /// Errors: failed or timed-out queries and dumps, unparsable replies, bad arguments. A kernel
  /// answer "no route" is not one.
  uint64_t failures() const { return failures_.load(std::memory_order_relaxed); }

 private:
  struct SockDeleter {
    void operator()(nl_sock* s) const;
  };
  using Sock = std::unique_ptr<nl_sock, SockDeleter>;

  /// What refresh() keeps of a link.
  struct Link {
    std::array<uint8_t, 6> mac{};
    std::string unusable;  ///< why XDP cannot send on it (for debug logs); empty when it can
  };
  struct NeighKey {
    uint32_t ifindex = 0;
    IpAddr addr;
    bool operator==(const NeighKey&) const = default;
  };
  struct NeighKeyHash {
    size_t operator()(const NeighKey& k) const {
      return std::hash<IpAddr>{}(k.addr) * 31 + k.ifindex;
    }
  };
  struct PairKey {
    IpAddr src;
    IpAddr dst;
    bool operator==(const PairKey&) const = default;
  };
  struct PairKeyHash {
    size_t operator()(const PairKey& k) const {
      return std::hash<IpAddr>{}(k.src) * 31 + std::hash<IpAddr>{}(k.dst);
    }
  };
  using Links = std::unordered_map<uint32_t, Link>;
  /// Neighbours in a usable state only, with their MAC.
  using Neighbours = std::unordered_map<NeighKey, std::array<uint8_t, 6>, NeighKeyHash>;

  NextHopCache(Sock query_sock, Sock dump_sock);

  /// Dumps links and neighbours into links_/neighbours_, which are left alone on an error.
  Status dump();
  std::optional<NextHop> resolve(const IpAddr& src, const IpAddr& dst);
  void fail(const std::string& what);
  /// Asks the kernel to resolve `addr` on `ifindex` (NTF_USE); true if the request went out.
  bool kickNeighbour(uint32_t ifindex, const IpAddr& addr);

  Sock sock_;       ///< route queries: blocking, kTimeoutMs, no auto-ACK
  Sock dump_sock_;  ///< link and neighbour dumps: blocking, kTimeoutMs; null after a failure
  Links links_;
  Neighbours neighbours_;
  std::unordered_map<PairKey, std::optional<NextHop>, PairKeyHash> cache_;
  std::unordered_map<PairKey, RouteInfo, PairKeyHash> routes_;
  uint32_t periods_ = 0;
  std::unordered_map<NeighKey, uint32_t, NeighKeyHash> kicked_;  // -> period of the last kick
  int64_t wait_budget_us_ = kResolveBudgetMs * 1000;
  /// One warning per run of failures (refresh periods with one); the rest log at debug level.
  bool warned_ = false;
  bool failed_this_period_ = false;
  std::atomic<uint64_t> lookups_{0};
  std::atomic<uint64_t> route_queries_{0};
  std::atomic<uint64_t> failures_{0};
  std::atomic<uint64_t> kicks_{0};
 public:
  /// Neighbour resolutions this cache started (kResolveWaitMs).
  uint64_t kicks() const { return kicks_.load(std::memory_order_relaxed); }
};

}  // namespace xems::datapath::nl
