#include "datapath/netlink/netlink.h"

#include <net/if.h>
#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/object.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/socket.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <unordered_map>

#include "common/log.h"
#include "datapath/netlink/nl_internal.h"

namespace xems::datapath::nl {

using detail::CachePtr;
using detail::connectRoute;
using detail::forEach;
using detail::isUp;
using detail::linkCache;
using detail::MsgPtr;
using detail::toIp;

namespace {

LinkInfo toInfo(rtnl_link* link) {
  LinkInfo info;
  info.ifindex = static_cast<uint32_t>(rtnl_link_get_ifindex(link));
  if (const char* name = rtnl_link_get_name(link)) {
    info.name = name;
  }
  info.up = isUp(rtnl_link_get_flags(link));
  info.mtu = rtnl_link_get_mtu(link);
  if (nl_addr* ll = rtnl_link_get_addr(link); ll != nullptr && nl_addr_get_len(ll) == 6) {
    std::memcpy(info.mac.data(), nl_addr_get_binary_addr(ll), info.mac.size());
  }
  if (const char* kind = rtnl_link_get_type(link)) {
    info.kind = kind;
  }
  return info;
}

}  // namespace

Result<std::vector<LinkInfo>> listLinks() {
  auto sock = connectRoute();
  if (!sock) {
    return std::move(sock).error();
  }
  auto links = linkCache(sock->get());
  if (!links) {
    return std::move(links).error();
  }
  nl_cache* raw = nullptr;
  if (const int err = rtnl_addr_alloc_cache(sock->get(), &raw); err < 0) {
    return XEMS_NL_ERROR(err, "rtnl_addr_alloc_cache");
  }
  CachePtr addrs(raw);

  std::unordered_map<uint32_t, std::vector<IpAddr>> by_ifindex;
  forEach<rtnl_addr>(addrs.get(), [&](rtnl_addr* a) {
    if (auto ip = toIp(rtnl_addr_get_local(a))) {
      by_ifindex[static_cast<uint32_t>(rtnl_addr_get_ifindex(a))].push_back(*ip);
    }
  });
  std::vector<LinkInfo> out;
  forEach<rtnl_link>(links->get(), [&](rtnl_link* l) {
    LinkInfo info = toInfo(l);
    if (auto it = by_ifindex.find(info.ifindex); it != by_ifindex.end()) {
      info.addrs = std::move(it->second);
    }
    out.push_back(std::move(info));
  });
  std::sort(out.begin(), out.end(),
            [](const LinkInfo& a, const LinkInfo& b) { return a.ifindex < b.ifindex; });
  return out;
}

Result<LinkInfo> linkByName(const std::string& name) {
  auto links = listLinks();
  if (!links) {
    return std::move(links).error();
  }
  for (LinkInfo& l : *links) {
    if (l.name == name) {
      return std::move(l);
    }
  }
  return XEMS_ERROR(std::make_error_code(std::errc::no_such_device),
                    "no network interface named '" + name + "'");
}

Result<LinkInfo> linkOwning(const IpAddr& addr) {
  if (addr.isNone()) {
    return XEMS_INVALID("linkOwning: no address");
  }
  auto links = listLinks();
  if (!links) {
    return std::move(links).error();
  }
  for (LinkInfo& l : *links) {
    if (std::find(l.addrs.begin(), l.addrs.end(), addr) != l.addrs.end()) {
      return std::move(l);
    }
  }
  return XEMS_ERROR(std::make_error_code(std::errc::address_not_available),
                    "no network interface has address " + addr.toString());
}

// ---- LinkMonitor ----------------------------------------------------------------------------

namespace {
// One notification per datagram; without VF details (not sent in notifications) a link message is
// a few KiB. A bigger one is counted as lost (kOverrun), never read in part.
constexpr size_t kRecvBuf = size_t{64} * 1024;
}  // namespace

void LinkMonitor::SockDeleter::operator()(nl_sock* s) const {
  nl_socket_free(s);
}

LinkMonitor::LinkMonitor(std::unique_ptr<nl_sock, SockDeleter> sock)
    : sock_(std::move(sock)), buf_(kRecvBuf) {}

LinkMonitor::~LinkMonitor() = default;

Result<std::unique_ptr<LinkMonitor>> LinkMonitor::open(int rcvbuf_bytes) {
  std::unique_ptr<nl_sock, SockDeleter> sock(nl_socket_alloc());
  if (!sock) {
    return XEMS_ERROR(std::make_error_code(std::errc::not_enough_memory), "nl_socket_alloc");
  }
  // Notifications only: nothing is sent on this socket, so no sequence numbers to check.
  nl_socket_disable_seq_check(sock.get());
  if (const int err = nl_connect(sock.get(), NETLINK_ROUTE); err < 0) {
    return XEMS_NL_ERROR(err, "nl_connect(NETLINK_ROUTE)");
  }
  if (const int err = nl_socket_add_memberships(sock.get(), RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR,
                                                RTNLGRP_IPV6_IFADDR, 0);
      err < 0) {
    return XEMS_NL_ERROR(err, "nl_socket_add_memberships(link, ipv4 addr, ipv6 addr)");
  }
  if (rcvbuf_bytes > 0) {
    if (const int err = nl_socket_set_buffer_size(sock.get(), rcvbuf_bytes, 0); err < 0) {
      return XEMS_NL_ERROR(err, "nl_socket_set_buffer_size");
    }
    // SO_RCVBUF is capped at net.core.rmem_max; with CAP_NET_ADMIN the exact size is possible.
    const int fd = nl_socket_get_fd(sock.get());
    (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf_bytes, sizeof(rcvbuf_bytes));
  }
  if (const int err = nl_socket_set_nonblocking(sock.get()); err < 0) {
    return XEMS_NL_ERROR(err, "nl_socket_set_nonblocking");
  }
  std::unique_ptr<LinkMonitor> m(new LinkMonitor(std::move(sock)));
  m->reloadNames();  // after subscribing: later renames arrive as events
  return m;
}

void LinkMonitor::reloadNames() {
  // A second socket: a dump on the monitor socket would interleave with the notifications.
  auto sock = connectRoute();
  auto links = sock ? linkCache(sock->get()) : Result<CachePtr>(sock.error());
  if (!links) {
    XLOG_WARN(kBpf, "netlink monitor: cannot read link names: {}", links.error().message);
    return;
  }
  names_.clear();
  forEach<rtnl_link>(links->get(), [&](rtnl_link* l) {
    if (const char* name = rtnl_link_get_name(l)) {
      names_[static_cast<uint32_t>(rtnl_link_get_ifindex(l))] = name;
    }
  });
}

int LinkMonitor::fd() const {
  return nl_socket_get_fd(sock_.get());
}

namespace {

struct ParseCtx {
  int msg_type = 0;
  std::vector<LinkMonitor::Event>* out = nullptr;
  std::unordered_map<uint32_t, std::string>* names = nullptr;
  bool parsed = false;
};

void onObject(nl_object* obj, void* arg) {
  auto* ctx = static_cast<ParseCtx*>(arg);
  using Kind = LinkMonitor::Event::Kind;
  const char* type = nl_object_get_type(obj);
  if (type == nullptr) {
    return;
  }
  if (std::strcmp(type, "route/link") == 0) {
    auto* link = reinterpret_cast<rtnl_link*>(obj);
    ctx->parsed = true;
    // AF_BRIDGE messages on RTNLGRP_LINK are bridge-port state; an RTM_DELLINK among them means
    // "left the bridge", not "deleted".
    if (rtnl_link_get_family(link) != AF_UNSPEC) {
      return;
    }
    LinkMonitor::Event ev{ctx->msg_type == RTM_DELLINK ? Kind::kLinkDel : Kind::kLinkNew};
    ev.ifindex = static_cast<uint32_t>(rtnl_link_get_ifindex(link));
    if (const char* name = rtnl_link_get_name(link)) {
      ev.ifname = name;
    }
    ev.up = ev.kind == Kind::kLinkNew && isUp(rtnl_link_get_flags(link));
    if (ev.kind == Kind::kLinkDel) {
      ctx->names->erase(ev.ifindex);
    } else if (!ev.ifname.empty()) {
      (*ctx->names)[ev.ifindex] = ev.ifname;
    }
    ctx->out->push_back(std::move(ev));
  } else if (std::strcmp(type, "route/addr") == 0) {
    auto* a = reinterpret_cast<rtnl_addr*>(obj);
    auto ip = toIp(rtnl_addr_get_local(a));
    if (!ip) {
      return;  // not IPv4/IPv6 or no local address: counted as unparsed by the caller
    }
    ctx->parsed = true;
    LinkMonitor::Event ev{ctx->msg_type == RTM_DELADDR ? Kind::kAddrDel : Kind::kAddrNew};
    ev.ifindex = static_cast<uint32_t>(rtnl_addr_get_ifindex(a));
    // Not IFA_LABEL: for IPv4 that is the address label ("eth0:1" for an alias), and IPv6 has
    // none.
    // (No if_indextoname() fallback: it would ask the calling thread's namespace.)
    if (auto it = ctx->names->find(ev.ifindex); it != ctx->names->end()) {
      ev.ifname = it->second;
    }
    ev.addr = *ip;
    ctx->out->push_back(std::move(ev));
  }
}

}  // namespace

std::vector<LinkMonitor::Event> LinkMonitor::drain() {
  using Kind = Event::Kind;
  std::vector<Event> out;
  auto lost = [&] {
    if (out.empty() || out.back().kind != Kind::kOverrun) {
      out.push_back(Event{Kind::kOverrun});
      reloadNames();  // renames and deletions may be among what was lost
    }
  };
  const int sfd = fd();
  for (;;) {
    sockaddr_nl from{};
    socklen_t from_len = sizeof(from);
    const ssize_t n = ::recvfrom(sfd, buf_.data(), buf_.size(), MSG_DONTWAIT | MSG_TRUNC,
                                 reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        break;
      }
      if (errno == ENOBUFS) {
        // The kernel dropped notifications for us; the socket stays usable and what was queued
        // before the overflow is still readable.
        ++overruns_;
        lost();
        continue;
      }
      XLOG_WARN(kBpf, "netlink monitor: recv: {}", std::strerror(errno));
      break;
    }
    if (n == 0) {
      break;
    }
    if (static_cast<size_t>(n) > buf_.size()) {
      // Truncated: a notification we cannot read whole is a lost one.
      ++unparsed_;
      lost();
      continue;
    }
    if (from.nl_pid != 0) {
      ++unparsed_;  // not from the kernel
      continue;
    }
    int remaining = static_cast<int>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf_.data()); nlmsg_ok(h, remaining);
         h = nlmsg_next(h, &remaining)) {
      const int type = h->nlmsg_type;
      if (type == NLMSG_NOOP || type == NLMSG_DONE) {
        continue;
      }
      if (type != RTM_NEWLINK && type != RTM_DELLINK && type != RTM_NEWADDR &&
          type != RTM_DELADDR) {
        ++unparsed_;
        continue;
      }
      MsgPtr msg(nlmsg_convert(h));
      if (!msg) {
        ++unparsed_;
        continue;
      }
      nlmsg_set_proto(msg.get(), NETLINK_ROUTE);  // nl_msg_parse picks the cache ops by it
      ParseCtx ctx{type, &out, &names_};
      const int err = nl_msg_parse(msg.get(), &onObject, &ctx);
      if (err < 0 || !ctx.parsed) {
        ++unparsed_;
        XLOG_DEBUG(kBpf, "netlink monitor: skipped message type {}: {}", type,
                   err < 0 ? nl_geterror(err) : "no usable object");
      }
    }
    if (remaining > 0) {
      ++unparsed_;  // trailing bytes that are not a whole message
    }
  }
  return out;
}

const char* eventKindName(LinkMonitor::Event::Kind kind) {
  switch (kind) {
    case LinkMonitor::Event::Kind::kLinkNew:
      return "link-new";
    case LinkMonitor::Event::Kind::kLinkDel:
      return "link-del";
    case LinkMonitor::Event::Kind::kAddrNew:
      return "addr-new";
    case LinkMonitor::Event::Kind::kAddrDel:
      return "addr-del";
    case LinkMonitor::Event::Kind::kOverrun:
      return "overrun";
  }
  return "?";
}

}  // namespace xems::datapath::nl
