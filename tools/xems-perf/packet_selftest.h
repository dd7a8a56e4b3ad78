// The generator's packet mode in `xems-perf selftest`: the frame checksums (always), and as root a
// real run through three fresh network namespaces (sender - forwarder - receiver, veth pairs):
// generator frames to a UDP Sink on-link and via a gateway, IPv4 and IPv6, every packet counted,
// no checksum errors in the receivers, a dead next hop reported in bounded time, and deliberately
// corrupted frames counted by the receiver (so a clean result means something). The namespaces
// are deleted again whatever happened.
#pragma once

#include <functional>
#include <string_view>

namespace xems::perf {

// `check(ok, what)` records one result line. Prints "[skip] packet mode: needs root" when not
// root.
void testPacketMode(const std::function<void(bool, std::string_view)>& check);

}  // namespace xems::perf
