#include "tools/xems-perf/packet_tx.h"

#include <linux/if_ether.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

#include <fmt/format.h>

#include "tools/xems-perf/clock.h"

namespace xems::perf {

namespace {

// Every netlink read waits at most this long: a kernel that does not answer is an error, not a
// hang.
constexpr int kNetlinkTimeoutMs = 200;
// Reads per request: more than one only when answers to earlier, timed-out requests are queued.
constexpr int kMaxReads = 8;
// How often the neighbour entry is polled while the kernel resolves it, and how often a failed or
// vanished entry is asked for again.
constexpr int64_t kPollNs = 2 * kNsPerMs;
constexpr int64_t kKickEveryNs = 200 * kNsPerMs;

// Neighbour states whose MAC the kernel itself would put on a frame.
constexpr int kUsableNud =
    NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT | NUD_NOARP;

// XEMS_ERRNO with the reason in the text too: these messages reach stderr as they are.
Error errnoError(int err, std::string_view what) {
  return XEMS_ERRNO(err, fmt::format("{}: {}", what, std::strerror(err)));
}

// A netlink request: header, a fixed struct, attributes. Lengths and the sequence number are
// filled in by NeighbourResolver::request().
template <typename Body>
std::string nlRequest(uint16_t type, uint16_t flags, const Body& body) {
  std::string m(NLMSG_HDRLEN, '\0');
  nlmsghdr h{};
  h.nlmsg_type = type;
  h.nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | flags);
  std::memcpy(m.data(), &h, sizeof h);
  m.append(reinterpret_cast<const char*>(&body), sizeof body);
  m.resize(NLMSG_ALIGN(m.size()), '\0');
  return m;
}

void nlAttr(std::string& m, uint16_t type, const void* data, size_t len) {
  rtattr a{};
  a.rta_type = type;
  a.rta_len = static_cast<uint16_t>(RTA_LENGTH(len));
  m.append(reinterpret_cast<const char*>(&a), sizeof a);
  m.append(static_cast<const char*>(data), len);
  m.resize(NLMSG_ALIGN(m.size()), '\0');
}

// Calls fn(type, data, len) for every attribute in [p, p + len).
template <typename Fn>
void forEachAttr(const uint8_t* p, size_t len, Fn fn) {
  while (len >= sizeof(rtattr)) {
    rtattr a{};
    std::memcpy(&a, p, sizeof a);
    if (a.rta_len < sizeof(rtattr) || a.rta_len > len) {
      return;
    }
    fn(static_cast<uint16_t>(a.rta_type & NLA_TYPE_MASK), p + RTA_LENGTH(0),
       static_cast<size_t>(a.rta_len - RTA_LENGTH(0)));
    const size_t step = RTA_ALIGN(a.rta_len);
    if (step >= len) {
      return;
    }
    p += step;
    len -= step;
  }
}

const char* routeTypeName(uint8_t type) {
  switch (type) {
    case RTN_LOCAL:
      return "local (an address of the generator's own namespace)";
    case RTN_BROADCAST:
      return "broadcast";
    case RTN_MULTICAST:
      return "multicast";
    case RTN_BLACKHOLE:
      return "blackhole";
    case RTN_UNREACHABLE:
      return "unreachable";
    case RTN_PROHIBIT:
      return "prohibit";
    default:
      return "not unicast";
  }
}

std::string nudName(int state) {
  if (state < 0) {
    return "none";
  }
  static constexpr std::pair<int, const char*> kNames[] = {
      {NUD_INCOMPLETE, "INCOMPLETE"}, {NUD_REACHABLE, "REACHABLE"}, {NUD_STALE, "STALE"},
      {NUD_DELAY, "DELAY"},           {NUD_PROBE, "PROBE"},         {NUD_FAILED, "FAILED"},
      {NUD_NOARP, "NOARP"},           {NUD_PERMANENT, "PERMANENT"}};
  for (const auto& [bit, name] : kNames) {
    if ((state & bit) != 0) {
      return name;
    }
  }
  return "NONE";
}

uint64_t sum16(const uint8_t* p, size_t len) {
  uint64_t sum = 0;
  for (size_t i = 0; i + 1 < len; i += 2) {
    sum += (static_cast<uint32_t>(p[i]) << 8) | p[i + 1];
  }
  if ((len & 1) != 0) {
    sum += static_cast<uint32_t>(p[len - 1]) << 8;
  }
  return sum;
}

uint16_t fold(uint64_t sum) {
  while ((sum >> 16) != 0) {
    sum = (sum & 0xffff) + (sum >> 16);
  }
  return static_cast<uint16_t>(sum);
}

// Makes the calling thread's stack resolve `next_hop` on `ifindex` the way a send does: one empty
// UDP datagram from `src` to the discard port (9) of the next hop, which answers at most with an
// ICMP port unreachable. The queued datagram gives the ARP request / neighbour solicitation our
// source address: one the kernel makes up without a packet (NTF_USE) is not sent at all for IPv6
// while the device's link-local address is still tentative, i.e. for a second or two after the
// link came up, which is exactly when a test harness starts. Not to the destination itself: a
// relay would get a stray datagram on its media port.
void nudge(const IpAddr& src, const IpAddr& next_hop, int ifindex) {
  UniqueFd fd(::socket(next_hop.af(), SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) {
    return;
  }
  sockaddr_storage from{};
  sockaddr_storage to{};
  socklen_t len = 0;
  if (next_hop.isV4()) {
    auto* f = reinterpret_cast<sockaddr_in*>(&from);
    auto* t = reinterpret_cast<sockaddr_in*>(&to);
    f->sin_family = t->sin_family = AF_INET;
    std::memcpy(&f->sin_addr, src.bytes(), 4);
    std::memcpy(&t->sin_addr, next_hop.bytes(), 4);
    t->sin_port = htons(9);
    len = sizeof(sockaddr_in);
  } else {
    auto* f = reinterpret_cast<sockaddr_in6*>(&from);
    auto* t = reinterpret_cast<sockaddr_in6*>(&to);
    f->sin6_family = t->sin6_family = AF_INET6;
    std::memcpy(&f->sin6_addr, src.bytes(), 16);
    std::memcpy(&t->sin6_addr, next_hop.bytes(), 16);
    t->sin6_port = htons(9);
    // A gateway is often link-local: only the device makes it an address.
    t->sin6_scope_id = static_cast<uint32_t>(ifindex);
    len = sizeof(sockaddr_in6);
  }
  // From our source address, so the solicitation can use it; from any address if not bindable.
  (void)::bind(fd.get(), reinterpret_cast<sockaddr*>(&from), len);
  (void)::sendto(fd.get(), nullptr, 0, 0, reinterpret_cast<sockaddr*>(&to), len);
}

}  // namespace

struct NeighbourResolver::Reply {
  int error = 0;  // errno from an NLMSG_ERROR answer (0 with type NLMSG_ERROR: an ACK)
  uint16_t type = 0;
  std::vector<uint8_t> payload;  // after the nlmsghdr
};

Result<NeighbourResolver> NeighbourResolver::open() {
  UniqueFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!fd) {
    return errnoError(errno, "netlink socket");
  }
  timeval tv{};
  tv.tv_sec = kNetlinkTimeoutMs / 1000;
  tv.tv_usec = static_cast<suseconds_t>(kNetlinkTimeoutMs % 1000) * 1000;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
      ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) {
    return errnoError(errno, "netlink timeouts");
  }
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
    return errnoError(errno, "netlink bind");
  }
  return NeighbourResolver(std::move(fd));
}

Result<NeighbourResolver::Reply> NeighbourResolver::request(std::string msg) {
  const uint32_t seq = ++seq_;
  nlmsghdr h{};
  std::memcpy(&h, msg.data(), sizeof h);
  h.nlmsg_len = static_cast<uint32_t>(msg.size());
  h.nlmsg_seq = seq;
  std::memcpy(msg.data(), &h, sizeof h);
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(fd_.get(), msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&kernel),
               sizeof kernel) < 0) {
    return errnoError(errno, "netlink send");
  }
  alignas(nlmsghdr) static thread_local uint8_t buf[32768];
  for (int i = 0; i < kMaxReads; ++i) {
    const ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return errnoError(errno == EAGAIN ? ETIMEDOUT : errno, "netlink: no answer");
    }
    // NLMSG_OK/NLMSG_NEXT written out: the macros compare __u32 with int (clang -Wsign-compare).
    size_t left = static_cast<size_t>(n);
    auto fits = [](const nlmsghdr* h, size_t avail) {
      return avail >= sizeof(nlmsghdr) && h->nlmsg_len >= sizeof(nlmsghdr) &&
             h->nlmsg_len <= avail;
    };
    auto next = [](nlmsghdr* h, size_t& avail) {
      const size_t step = std::min<size_t>(NLMSG_ALIGN(h->nlmsg_len), avail);
      avail -= step;
      return reinterpret_cast<nlmsghdr*>(reinterpret_cast<uint8_t*>(h) + step);
    };
    for (auto* m = reinterpret_cast<nlmsghdr*>(buf); fits(m, left); m = next(m, left)) {
      if (m->nlmsg_seq != seq) {
        continue;  // an answer to an earlier request that timed out
      }
      Reply r;
      r.type = m->nlmsg_type;
      const auto* data = static_cast<const uint8_t*>(NLMSG_DATA(m));
      const size_t len = m->nlmsg_len - NLMSG_HDRLEN;
      if (m->nlmsg_type == NLMSG_ERROR) {
        nlmsgerr e{};
        if (len < sizeof e) {
          return XEMS_INVALID("netlink: short error message");
        }
        std::memcpy(&e, data, sizeof e);
        r.error = -e.error;
        return r;
      }
      r.payload.assign(data, data + len);
      return r;
    }
  }
  return errnoError(ETIMEDOUT, "netlink: no answer among stale replies");
}

Status NeighbourResolver::kick(int ifindex, const IpAddr& addr) {
  ndmsg ndm{};
  ndm.ndm_family = static_cast<uint8_t>(addr.af());
  ndm.ndm_ifindex = ifindex;
  // NTF_USE: create the entry if needed and start resolving it, as a packet to it would. The
  // state in the request is not applied.
  ndm.ndm_flags = NTF_USE;
  std::string m = nlRequest(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_ACK, ndm);
  nlAttr(m, NDA_DST, addr.bytes(), addr.rawSize());
  auto r = request(std::move(m));
  if (!r.ok()) {
    return std::move(r).error();
  }
  if (r->error != 0) {
    return errnoError(r->error, r->error == EPERM
                                    ? "RTM_NEWNEIGH (asking the kernel to resolve a neighbour "
                                      "needs CAP_NET_ADMIN)"
                                    : "RTM_NEWNEIGH");
  }
  return okStatus();
}

Result<PacketRoute> NeighbourResolver::resolve(const IpAddr& src, const IpAddr& dst,
                                               int64_t deadline_ns) {
  if (!dst.isV4() && !dst.isV6()) {
    return XEMS_INVALID("packet mode: no destination address");
  }
  const bool wildcard = src.isNone() || src.isAny();
  if (!wildcard && src.family() != dst.family()) {
    return XEMS_INVALID(fmt::format("packet mode: {} and {} are of different families",
                                    src.toString(), dst.toString()));
  }
  const std::string what = fmt::format(
      "packet mode: route {} -> {}", wildcard ? std::string("*") : src.toString(), dst.toString());
  PacketRoute route;

  // 1. The route, as `ip route get DST from SRC ipproto udp`.
  {
    rtmsg rtm{};
    rtm.rtm_family = static_cast<uint8_t>(dst.af());
    rtm.rtm_dst_len = static_cast<uint8_t>(dst.rawSize() * 8);
    rtm.rtm_src_len = wildcard ? 0 : static_cast<uint8_t>(dst.rawSize() * 8);
    std::string m = nlRequest(RTM_GETROUTE, 0, rtm);
    nlAttr(m, RTA_DST, dst.bytes(), dst.rawSize());
    if (!wildcard) {
      nlAttr(m, RTA_SRC, src.bytes(), src.rawSize());
    }
    const uint8_t udp = IPPROTO_UDP;
    nlAttr(m, RTA_IP_PROTO, &udp, 1);
    auto r = request(std::move(m));
    if (!r.ok()) {
      return std::move(r).error().wrap(what);
    }
    if (r->error != 0) {
      return errnoError(r->error, what);
    }
    if (r->type != RTM_NEWROUTE || r->payload.size() < sizeof(rtmsg)) {
      return XEMS_INVALID(what + ": unexpected answer");
    }
    std::memcpy(&rtm, r->payload.data(), sizeof rtm);
    if (rtm.rtm_type != RTN_UNICAST) {
      return XEMS_INVALID(fmt::format("{}: the route is {}", what, routeTypeName(rtm.rtm_type)));
    }
    std::optional<IpAddr> gateway;
    std::optional<IpAddr> prefsrc;
    bool encap = false;
    forEachAttr(r->payload.data() + NLMSG_ALIGN(sizeof(rtmsg)),
                r->payload.size() - std::min(r->payload.size(), NLMSG_ALIGN(sizeof(rtmsg))),
                [&](uint16_t type, const uint8_t* data, size_t len) {
                  if (type == RTA_OIF && len >= 4) {
                    uint32_t oif = 0;
                    std::memcpy(&oif, data, 4);
                    route.ifindex = static_cast<int>(oif);
                  } else if (type == RTA_GATEWAY) {
                    gateway = IpAddr::fromAf(rtm.rtm_family, data, len);
                  } else if (type == RTA_VIA && len > sizeof(rtvia)) {
                    // An IPv4 route via an IPv6 router.
                    rtvia via{};
                    std::memcpy(&via, data, sizeof via);
                    gateway = IpAddr::fromAf(via.rtvia_family, data + sizeof via, len - sizeof via);
                  } else if (type == RTA_PREFSRC) {
                    prefsrc = IpAddr::fromAf(rtm.rtm_family, data, len);
                  } else if (type == RTA_ENCAP) {
                    encap = true;
                  }
                });
    if (encap || route.ifindex <= 0) {
      return XEMS_INVALID(what + (encap ? ": an encapsulating route (lwtunnel)" : ": no device"));
    }
    route.next_hop = gateway ? *gateway : dst;
    if (!wildcard) {
      route.src_ip = src;
    } else if (prefsrc) {
      route.src_ip = *prefsrc;
    } else {
      return XEMS_INVALID(what + ": no source address (bind the generator to one)");
    }
  }

  // 2. The egress device: Ethernet, up, and its MAC.
  {
    ifinfomsg ifi{};
    ifi.ifi_family = AF_UNSPEC;
    ifi.ifi_index = route.ifindex;
    auto r = request(nlRequest(RTM_GETLINK, 0, ifi));
    if (!r.ok()) {
      return std::move(r).error().wrap(what);
    }
    if (r->error != 0) {
      return errnoError(r->error, fmt::format("{}: device {}", what, route.ifindex));
    }
    if (r->type != RTM_NEWLINK || r->payload.size() < sizeof(ifinfomsg)) {
      return XEMS_INVALID(what + ": unexpected link answer");
    }
    std::memcpy(&ifi, r->payload.data(), sizeof ifi);
    bool have_mac = false;
    forEachAttr(r->payload.data() + NLMSG_ALIGN(sizeof(ifinfomsg)),
                r->payload.size() - std::min(r->payload.size(), NLMSG_ALIGN(sizeof(ifinfomsg))),
                [&](uint16_t type, const uint8_t* data, size_t len) {
                  if (type == IFLA_ADDRESS && len == 6) {
                    std::memcpy(route.src_mac.data(), data, 6);
                    have_mac = true;
                  } else if (type == IFLA_IFNAME && len > 0) {
                    route.ifname.assign(reinterpret_cast<const char*>(data),
                                        strnlen(reinterpret_cast<const char*>(data), len));
                  }
                });
    if (route.ifname.empty()) {
      route.ifname = fmt::format("#{}", route.ifindex);
    }
    if (ifi.ifi_type != ARPHRD_ETHER || !have_mac) {
      return XEMS_INVALID(
          fmt::format("{}: device {} is not an Ethernet device", what, route.ifname));
    }
    if ((ifi.ifi_flags & IFF_UP) == 0 || (ifi.ifi_flags & IFF_RUNNING) == 0) {
      return XEMS_INVALID(
          fmt::format("{}: device {} is down or has no carrier", what, route.ifname));
    }
  }

  // 3. The next hop's MAC, asking the kernel to resolve it when it does not know it (yet).
  const std::string via =
      route.next_hop == dst ? std::string() : fmt::format(" (gateway to {})", dst.toString());
  int64_t last_kick = 0;
  std::string kick_error;
  int state = -1;
  // Bounded by the deadline; the count is a second bound should the clock misbehave.
  for (int i = 0; i < 100'000; ++i) {
    ndmsg ndm{};
    ndm.ndm_family = static_cast<uint8_t>(route.next_hop.af());
    ndm.ndm_ifindex = route.ifindex;
    std::string m = nlRequest(RTM_GETNEIGH, 0, ndm);
    nlAttr(m, NDA_DST, route.next_hop.bytes(), route.next_hop.rawSize());
    auto r = request(std::move(m));
    if (!r.ok()) {
      return std::move(r).error().wrap(what);
    }
    state = -1;
    bool have_mac = false;
    if (r->error == 0 && r->type == RTM_NEWNEIGH && r->payload.size() >= sizeof(ndmsg)) {
      std::memcpy(&ndm, r->payload.data(), sizeof ndm);
      state = ndm.ndm_state;
      forEachAttr(r->payload.data() + NLMSG_ALIGN(sizeof(ndmsg)),
                  r->payload.size() - std::min(r->payload.size(), NLMSG_ALIGN(sizeof(ndmsg))),
                  [&](uint16_t type, const uint8_t* data, size_t len) {
                    if (type == NDA_LLADDR && len == 6) {
                      std::memcpy(route.dst_mac.data(), data, 6);
                      have_mac = true;
                    }
                  });
    } else if (r->error != 0 && r->error != ENOENT) {
      return errnoError(r->error, what + ": RTM_GETNEIGH");
    }
    if (have_mac && (state & kUsableNud) != 0) {
      return route;
    }
    const int64_t now = monoNs();
    if (now >= deadline_ns) {
      break;
    }
    // INCOMPLETE: the kernel is asking already. Missing, NONE or FAILED: ask it to (again),
    // by a datagram and, should that not have been sent, by NTF_USE (a no-op on the entry the
    // datagram made INCOMPLETE).
    if ((state < 0 || (state & (NUD_INCOMPLETE | kUsableNud)) == 0) &&
        (last_kick == 0 || now - last_kick >= kKickEveryNs)) {
      nudge(route.src_ip, route.next_hop, route.ifindex);
      if (Status k = kick(route.ifindex, route.next_hop); !k.ok()) {
        kick_error = k.error().message;
      }
      last_kick = now;
    }
    const int64_t nap = std::min(kPollNs, deadline_ns - now);
    timespec ts{0, static_cast<long>(nap)};
    ::nanosleep(&ts, nullptr);
  }
  return XEMS_ERROR(
      std::make_error_code(std::errc::host_unreachable),
      fmt::format("{}: no {} answer from {}{} on {} in time (neighbour state {}){}", what,
                  dst.isV4() ? "ARP" : "ND", route.next_hop.toString(), via, route.ifname,
                  nudName(state), kick_error.empty() ? "" : "; " + kick_error));
}

Result<UniqueFd> openPacketSocket() {
  // Protocol 0: the socket only sends; it never gets a copy of incoming frames.
  UniqueFd fd(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0));
  if (!fd) {
    return errnoError(errno, errno == EPERM ? "AF_PACKET socket (packet mode needs CAP_NET_RAW)"
                                            : "AF_PACKET socket");
  }
  // Frames go straight to the driver's transmit: no qdisc enqueue/dequeue, no qdisc lock.
  const int one = 1;
  if (::setsockopt(fd.get(), SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one) != 0) {
    return errnoError(errno, "PACKET_QDISC_BYPASS");
  }
  // A frame's buffer is charged to the socket until the driver has sent it; the default buffer
  // (~200 frames) would cap bursts on a NIC with deep TX rings.
  const int sndbuf = 8 << 20;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf) != 0) {
    (void)::setsockopt(fd.get(), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  }
  return fd;
}

Status bindPacketSocket(int fd, int ifindex) {
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = 0;  // still: receive nothing
  sll.sll_ifindex = ifindex;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof sll) != 0) {
    return errnoError(errno, fmt::format("bind AF_PACKET socket to device {}", ifindex));
  }
  return okStatus();
}

FrameTemplate makeFrameTemplate(const PacketRoute& route, const SockAddr& src, const SockAddr& dst,
                                uint32_t ssrc, size_t payload) {
  FrameTemplate t;
  payload = std::clamp(payload, kMinPayloadSize, kMaxPayloadSize);
  t.payload = static_cast<uint16_t>(payload);
  const size_t probe_len = kRtpHeaderSize + payload;
  uint8_t* h = t.header.data();
  const IpAddr sip = route.src_ip;
  const IpAddr dip = dst.ip();
  const bool v6 = dip.isV6();
  const uint16_t ethertype = v6 ? ETH_P_IPV6 : ETH_P_IP;
  std::memcpy(h, route.dst_mac.data(), 6);
  std::memcpy(h + 6, route.src_mac.data(), 6);
  putBe16(h + 12, ethertype);
  uint8_t* ip = h + kEthHeaderSize;
  const auto udp_len = static_cast<uint16_t>(8 + probe_len);
  uint64_t sum = 0;
  if (!v6) {
    ip[0] = 0x45;  // IPv4, 20-byte header
    putBe16(ip + 2, static_cast<uint16_t>(20 + udp_len));
    // ID 0 with DF, as Linux sends a UDP datagram of an unconnected socket.
    putBe16(ip + 6, 0x4000);
    ip[8] = 64;
    ip[9] = IPPROTO_UDP;
    std::memcpy(ip + 12, sip.bytes(), 4);
    std::memcpy(ip + 16, dip.bytes(), 4);
    putBe16(ip + 10, static_cast<uint16_t>(~fold(sum16(ip, 20))));
    sum += sum16(ip + 12, 8);
    t.udp_offset = static_cast<uint8_t>(kEthHeaderSize + 20);
  } else {
    ip[0] = 0x60;
    putBe16(ip + 4, udp_len);
    ip[6] = IPPROTO_UDP;
    ip[7] = 64;
    std::memcpy(ip + 8, sip.bytes(), 16);
    std::memcpy(ip + 24, dip.bytes(), 16);
    sum += sum16(ip + 8, 32);
    t.udp_offset = static_cast<uint8_t>(kEthHeaderSize + 40);
  }
  sum += IPPROTO_UDP + udp_len;  // the rest of the pseudo-header
  uint8_t* udp = h + t.udp_offset;
  putBe16(udp, src.port());
  putBe16(udp + 2, dst.port());
  putBe16(udp + 4, udp_len);
  sum += sum16(udp, 8);
  t.header_len = static_cast<uint8_t>(t.udp_offset + 8);
  std::array<uint8_t, kMaxPacketSize> probe{};
  initProbe(probe.data(), ssrc, payload);
  writeProbe(probe.data(), 0, 0, ProbeFields{});  // the fields writeUdpChecksum() adds per packet
  sum += sum16(probe.data(), probe_len);
  t.csum_base = fold(sum);
  t.dest.sll_family = AF_PACKET;
  t.dest.sll_protocol = htons(ethertype);
  t.dest.sll_ifindex = route.ifindex;
  t.dest.sll_halen = 6;
  std::memcpy(t.dest.sll_addr, route.dst_mac.data(), 6);
  return t;
}

bool frameChecksumsValid(const uint8_t* frame, size_t len) {
  if (len < kEthHeaderSize) {
    return false;
  }
  const uint16_t ethertype = static_cast<uint16_t>((frame[12] << 8) | frame[13]);
  const uint8_t* ip = frame + kEthHeaderSize;
  const size_t ip_room = len - kEthHeaderSize;
  uint64_t sum = 0;
  const uint8_t* udp = nullptr;
  if (ethertype == ETH_P_IP) {
    if (ip_room < 20 || (ip[0] >> 4) != 4 || ip[9] != IPPROTO_UDP) {
      return false;
    }
    const size_t ihl = 4u * (ip[0] & 0x0f);
    if (ihl < 20 || ip_room < ihl || fold(sum16(ip, ihl)) != 0xffff) {
      return false;
    }
    sum += sum16(ip + 12, 8);
    udp = ip + ihl;
  } else if (ethertype == ETH_P_IPV6) {
    if (ip_room < 40 || (ip[0] >> 4) != 6 || ip[6] != IPPROTO_UDP) {
      return false;
    }
    sum += sum16(ip + 8, 32);
    udp = ip + 40;
  } else {
    return false;
  }
  const size_t udp_room = len - static_cast<size_t>(udp - frame);
  if (udp_room < 8) {
    return false;
  }
  const size_t udp_len = (static_cast<size_t>(udp[4]) << 8) | udp[5];
  if (udp_len < 8 || udp_len > udp_room || (udp[6] == 0 && udp[7] == 0)) {
    return false;
  }
  sum += IPPROTO_UDP + udp_len + sum16(udp, udp_len);
  return fold(sum) == 0xffff;
}

}  // namespace xems::perf
