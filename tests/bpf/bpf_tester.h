// BpfTester: loads xdp_relay from its skeleton (no attach: BPF_PROG_TEST_RUN needs none), fills
// the maps through the production API (datapath/bpf/xdp_maps.h) and runs frames through the
// program. Per-CPU maps are read on the CPU the test thread is pinned to.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "datapath/bpf/skeleton.h"
#include "datapath/bpf/xdp_maps.h"
#include "tests/bpf/packet_builder.h"
#include "xdp_relay.skel.h"

namespace xems::bpftest {

struct RunResult {
  int action = -1;  ///< XDP_* returned by the program
  Bytes out;        ///< the frame after the program
  uint32_t duration_ns = 0;
};

struct LoadOptions {
  uint32_t offload_enabled = 1;
  uint32_t fib_flags = 0;
  uint32_t precise_time = 0;
  /// 0: the program's default. Else the size of the flow and stats maps (capacity tests).
  uint32_t max_flows = 0;
  /// Empty: maps are not pinned (each tester has private maps). Else the pin root.
  std::string pin_root;
};

class BpfTester {
 public:
  /// Opens and loads the program. The error keeps the errno (EPERM: not privileged).
  static Result<std::unique_ptr<BpfTester>> load(const LoadOptions& opts = {});

  /// Runs `in` once (or `repeat` times, see perf/bench_xdp.cpp on what repeat means for a
  /// program that rewrites the packet). ingress_ifindex 0: the kernel's default (loopback).
  Result<RunResult> run(std::span<const uint8_t> in, uint32_t ingress_ifindex = 0,
                        uint32_t repeat = 1);

  datapath::bpf::XdpFlowTable& table() { return table_; }
  xdp_relay* skel() { return skel_.get(); }

 private:
  datapath::bpf::Skeleton<xdp_relay> skel_;
  datapath::bpf::XdpFlowTable table_;
};

/// Pins the calling thread to the CPU it runs on; returns that CPU (-1 on failure).
int pinToCurrentCpu();

/// True if the errno of a load/attach error means "not allowed here" (skip, don't fail).
bool isPermissionError(const Error& e);

/// A private network namespace for the FIB and redirect tests, set up once per process (the
/// calling thread moves into it): one veth pair xa<->xb, both ends ours, xa addressed towards
/// Alice and xb towards Bob, with permanent neighbour entries for the peers and forwarding on.
/// nullptr (with a reason) if namespaces or veth are unavailable.
struct NetEnv {
  uint32_t lo = 1;
  uint32_t a_if = 0;  ///< "xa": faces Alice, 203.0.113.1/24, 2001:db8:a::1/64
  uint32_t b_if = 0;  ///< "xb": faces Bob, 192.0.2.1/24, 2001:db8:b::1/64
  datapath::bpf::MacAddr a_mac{};
  datapath::bpf::MacAddr b_mac{};
  static const NetEnv* get(std::string* why_not);
};

/// Runs a shell command; true on exit status 0.
bool sh(const std::string& cmd);

}  // namespace xems::bpftest
