// Small helpers of the root-only selftests (packet_selftest.cpp, xdp_selftest.cpp), which build
// their namespaces and veths with iproute2.
#pragma once

#include <string>
#include <vector>

namespace xems::perf {

// Runs a command (argv[0] looked up in PATH) with stdout discarded, and stderr too when `quiet`;
// true if it exits 0 within 10 s (else it is killed).
bool runCmd(const std::vector<std::string>& argv, bool quiet = false);
void sleepMs(int ms);

}  // namespace xems::perf
