// Helpers shared by the xems_netlink sources; not part of its interface (includes libnl).
#pragma once

#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/errno.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>

#include <memory>
#include <optional>
#include <string>
#include <system_error>

#include "common/net.h"
#include "common/result.h"

namespace xems::datapath::nl::detail {

// libnl objects are reference counted C structs; these own one reference or allocation each.
struct SockFree {
  void operator()(nl_sock* s) const { nl_socket_free(s); }  // also closes the fd
};
struct CacheFree {
  void operator()(nl_cache* c) const { nl_cache_free(c); }  // and every object in it
};
struct MsgFree {
  void operator()(nl_msg* m) const { nlmsg_free(m); }
};
using SockPtr = std::unique_ptr<nl_sock, SockFree>;
using CachePtr = std::unique_ptr<nl_cache, CacheFree>;
using MsgPtr = std::unique_ptr<nl_msg, MsgFree>;

/// The std::errc closest to a libnl error code (-NLE_* or NLE_*).
std::errc errcOf(int nl_err);

// libnl returns -NLE_* codes, not errno; nl_geterror() names them.
#define XEMS_NL_ERROR(nl_err, what)                                              \
  XEMS_ERROR(std::make_error_code(::xems::datapath::nl::detail::errcOf(nl_err)), \
             std::string(what) + ": " + nl_geterror(nl_err))

/// A NETLINK_ROUTE socket in the calling thread's network namespace.
Result<SockPtr> connectRoute();

/// An IPv4 or IPv6 nl_addr as an IpAddr; nullopt for anything else (or null).
std::optional<IpAddr> toIp(nl_addr* a);

/// IFF_UP and IFF_RUNNING (LinkInfo::up).
bool isUp(unsigned flags);

/// A dump of the links of the socket's namespace (all families' view: AF_UNSPEC).
Result<CachePtr> linkCache(nl_sock* sock);

// Iterates a cache's objects as T (the cache's object type).
template <typename T, typename F>
void forEach(nl_cache* cache, F&& fn) {
  for (nl_object* o = nl_cache_get_first(cache); o != nullptr; o = nl_cache_get_next(o)) {
    fn(reinterpret_cast<T*>(o));
  }
}

}  // namespace xems::datapath::nl::detail
