// --offload=auto|on|off at daemon start: which devices get the XDP program, bpffs, the probe, the
// loader, and the one warning of an automatic fallback (docs/architecture.md "XDP offload").
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/result.h"
#include "common/unique_fd.h"
#include "datapath/bpf/xdp_loader.h"
#include "datapath/netlink/next_hop.h"

namespace xems::datapath::bpf {

struct OffloadSetup {
  std::unique_ptr<XdpLoader> loader;  ///< null: forward in userspace only
  std::unique_ptr<nl::NextHopCache> next_hops;  ///< egress device and MACs for the outputs
  UniqueFd pin_lock;                  ///< flock on the pin root: one daemon per instance
  std::string fallback_reason;        ///< why offload=auto runs without XDP ("" if it has it)
  std::string detail;                 ///< for `statistics`: devices and attach modes, or why not
};

/// The kernel devices for the XDP program: cfg.xdp_interfaces if given, else the devices owning
/// the --interface addresses, without loopback (its traffic never needs a fast path) and without
/// duplicates. Fails if an address is on no device.
Result<std::vector<std::string>> offloadDevices(const Config& cfg);

/// Mounts bpffs on /sys/fs/bpf when `pin_root` is below it and nothing is mounted there yet, as
/// systemd does at boot and bpftool does on demand. Anything else is left alone.
Status ensureBpffs(const std::string& pin_root);

/// Sets up XDP for cfg.offload. kOff: returns an empty setup. kOn: any failure is an error.
/// kAuto: a failure is one WARN line and an empty setup with fallback_reason set.
Result<OffloadSetup> setUpOffload(const Config& cfg);

}  // namespace xems::datapath::bpf
