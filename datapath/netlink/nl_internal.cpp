#include "datapath/netlink/nl_internal.h"

#include <net/if.h>
#include <netlink/route/link.h>
#include <netlink/socket.h>
#include <sys/socket.h>

namespace xems::datapath::nl::detail {

std::errc errcOf(int nl_err) {
  switch (nl_err < 0 ? -nl_err : nl_err) {
    case NLE_PERM:
      return std::errc::operation_not_permitted;
    case NLE_NOACCESS:
      return std::errc::permission_denied;
    case NLE_NOMEM:
      return std::errc::not_enough_memory;
    case NLE_AGAIN:
      return std::errc::resource_unavailable_try_again;
    case NLE_INTR:
      return std::errc::interrupted;
    case NLE_NODEV:
      return std::errc::no_such_device;
    case NLE_AF_NOSUPPORT:
      return std::errc::address_family_not_supported;
    case NLE_PROTO_MISMATCH:
      return std::errc::protocol_not_supported;
    case NLE_OPNOTSUPP:
      return std::errc::operation_not_supported;
    case NLE_BAD_SOCK:
      return std::errc::bad_file_descriptor;
    case NLE_INVAL:
      return std::errc::invalid_argument;
    default:
      return std::errc::io_error;
  }
}

Result<SockPtr> connectRoute() {
  SockPtr sock(nl_socket_alloc());
  if (!sock) {
    return XEMS_ERROR(std::make_error_code(std::errc::not_enough_memory), "nl_socket_alloc");
  }
  if (const int err = nl_connect(sock.get(), NETLINK_ROUTE); err < 0) {
    return XEMS_NL_ERROR(err, "nl_connect(NETLINK_ROUTE)");
  }
  return sock;
}

std::optional<IpAddr> toIp(nl_addr* a) {
  if (a == nullptr) {
    return std::nullopt;
  }
  const int family = nl_addr_get_family(a);
  const unsigned len = nl_addr_get_len(a);
  if (family == AF_INET && len == 4) {
    return IpAddr::fromRaw(Family::kIpv4, nl_addr_get_binary_addr(a));
  }
  if (family == AF_INET6 && len == 16) {
    return IpAddr::fromRaw(Family::kIpv6, nl_addr_get_binary_addr(a));
  }
  return std::nullopt;
}

bool isUp(unsigned flags) {
  return (flags & IFF_UP) != 0 && (flags & IFF_RUNNING) != 0;
}

Result<CachePtr> linkCache(nl_sock* sock) {
  nl_cache* raw = nullptr;
  if (const int err = rtnl_link_alloc_cache(sock, AF_UNSPEC, &raw); err < 0) {
    return XEMS_NL_ERROR(err, "rtnl_link_alloc_cache");
  }
  return CachePtr(raw);
}

}  // namespace xems::datapath::nl::detail
