// The XDP sink's part of `xems-perf selftest` (root only): two fresh network namespaces joined by
// a veth pair, the crafted probe sequence of crafted_probes.h sent to an XdpSink and a UDP Sink
// side by side over IPv4 and IPv6, a generator run with exact per-stream counts, and the
// namespaces deleted again whatever happened.
#pragma once

#include <functional>
#include <string_view>

namespace xems::perf {

// `check(ok, what)` records one result line. Prints "[skip] xdp sink: ..." when not root.
void testXdpSink(const std::function<void(bool, std::string_view)>& check);

}  // namespace xems::perf
