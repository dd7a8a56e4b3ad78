// Kernel interfaces for the XDP control plane, through libnl-route (docs/dependencies.md).
//
// Config names logical interfaces by address (`--interface=NAME/IP`); XDP attaches to kernel
// devices. linkOwning() maps one to the other, listLinks()/linkByName() give what the loader and
// the MAC rewrite need (ifindex, MAC, MTU, up), and LinkMonitor reports link and address changes
// so the daemon can re-resolve them.
//
// Every call works in the network namespace of the calling thread (netlink sockets belong to the
// namespace they are opened in). A LinkMonitor listens in the namespace it was opened in; it
// re-reads link names after an overrun from the calling thread's, so use it from threads in that
// same namespace (any thread of a daemon that never switches namespaces).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/net.h"
#include "common/result.h"

struct nl_sock;

namespace xems::datapath::nl {

struct LinkInfo {
  uint32_t ifindex = 0;
  std::string name;
  /// IFF_UP and IFF_RUNNING: administratively up and operationally up (carrier; the kernel also
  /// sets IFF_RUNNING for operstate "unknown", e.g. lo). A veth whose peer is down is not up.
  bool up = false;
  uint32_t mtu = 0;
  /// All zero when the device has no 6-byte link-layer address (lo, tun, ip tunnels).
  std::array<uint8_t, 6> mac{};
  /// IFLA_INFO_KIND: "veth", "vlan", "bond", ...; empty for physical NICs and lo.
  std::string kind;
  /// Local addresses assigned to the device (IPv4 and IPv6, including link-local).
  std::vector<IpAddr> addrs;
};

/// Every link of the current network namespace, with its addresses, in ifindex order.
Result<std::vector<LinkInfo>> listLinks();
/// errc::no_such_device when no link has that name.
Result<LinkInfo> linkByName(const std::string& name);
/// The device the address is assigned to. errc::address_not_available, naming the address, when
/// none has it.
Result<LinkInfo> linkOwning(const IpAddr& addr);

/// Link and address notifications (RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR).
///
/// Level of detail is one event per kernel message: a link that changes state (up/down, MTU,
/// MAC) is reported as kLinkNew again, as RTM_NEWLINK is. Events carry what the message says;
/// callers that need the full picture re-read it with linkByName()/listLinks().
class LinkMonitor {
 public:
  struct Event {
    enum class Kind {
      kLinkNew,  ///< a link appeared or changed
      kLinkDel,  ///< a link was deleted
      kAddrNew,  ///< an address was assigned (or its flags changed, e.g. DAD finished)
      kAddrDel,  ///< an address was removed
      kOverrun,  ///< the kernel dropped notifications (ENOBUFS): re-list everything
    } kind;
    uint32_t ifindex = 0;
    /// The link name. Address messages carry none: the monitor keeps the names it has seen
    /// (seeded at open, re-read after an overrun), so the name is the one the link had when the
    /// kernel sent the message, also for a link deleted since. Empty if unknown.
    std::string ifname;
    bool up = false;             ///< link events only: LinkInfo::up
    std::optional<IpAddr> addr;  ///< address events only
  };

  /// Default receive buffer: room for a burst of a few thousand notifications.
  static constexpr int kDefaultRcvbuf = 1 << 20;

  /// Opens a non-blocking socket subscribed to the groups. rcvbuf_bytes sets SO_RCVBUF (the
  /// kernel doubles it and caps it at net.core.rmem_max).
  static Result<std::unique_ptr<LinkMonitor>> open(int rcvbuf_bytes = kDefaultRcvbuf);
  ~LinkMonitor();
  LinkMonitor(const LinkMonitor&) = delete;
  LinkMonitor& operator=(const LinkMonitor&) = delete;

  /// Readable when notifications are pending; non-blocking, for epoll.
  int fd() const;
  /// Reads everything pending and never blocks. Messages it cannot parse are counted
  /// (unparsed()) and skipped. Lost notifications are reported as a kOverrun event where the
  /// kernel reports them, which is usually before messages queued earlier: apply the batch, then
  /// re-list.
  std::vector<Event> drain();
  /// ENOBUFS seen: notifications were lost, the caller should re-list.
  uint64_t overruns() const { return overruns_; }
  /// Messages skipped because they were truncated, malformed or of an unexpected type.
  uint64_t unparsed() const { return unparsed_; }

 private:
  struct SockDeleter {
    void operator()(nl_sock* s) const;
  };
  explicit LinkMonitor(std::unique_ptr<nl_sock, SockDeleter> sock);

  /// ifindex -> name from a link dump and link events, for naming address events.
  void reloadNames();

  std::unique_ptr<nl_sock, SockDeleter> sock_;
  std::vector<uint8_t> buf_;
  std::unordered_map<uint32_t, std::string> names_;
  uint64_t overruns_ = 0;
  uint64_t unparsed_ = 0;
};

const char* eventKindName(LinkMonitor::Event::Kind kind);

}  // namespace xems::datapath::nl
