#include "datapath/bpf/offload.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>

#include "common/log.h"
#include "datapath/netlink/netlink.h"

namespace xems::datapath::bpf {

namespace {

constexpr const char* kBpffsMount = "/sys/fs/bpf";

Result<UniqueFd> lockDir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) {
    return XEMS_ERRNO(errno, "opening " + dir);
  }
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return XEMS_ERROR(std::make_error_code(std::errc::device_or_resource_busy),
                        "another xemsd uses " + dir + " (give each instance its own "
                        "--bpf-pin-root)");
    }
    return XEMS_ERRNO(errno, "flock " + dir);
  }
  return fd;
}

Result<OffloadSetup> tryOffload(const Config& cfg) {
  auto devices = offloadDevices(cfg);
  if (!devices.ok()) {
    return std::move(devices).error();
  }
  if (devices->empty()) {
    return XEMS_ERROR(std::make_error_code(std::errc::no_such_device),
                      "no media device for XDP (all --interface addresses are on loopback; name "
                      "devices with --xdp-interface)");
  }
  XEMS_TRY_STATUS(ensureBpffs(cfg.bpf_pin_root));
  XEMS_TRY_STATUS(probeXdp(cfg.bpf_pin_root));
  std::error_code ec;
  std::filesystem::create_directories(cfg.bpf_pin_root, ec);
  if (ec) {
    return XEMS_ERROR(ec, "creating " + cfg.bpf_pin_root);
  }
  OffloadSetup setup;
  auto lock = lockDir(cfg.bpf_pin_root);
  if (!lock.ok()) {
    return std::move(lock).error();
  }
  setup.pin_lock = std::move(*lock);
  XdpLoaderOptions opts;
  opts.pin_root = cfg.bpf_pin_root;
  opts.interfaces = *devices;
  opts.mode = cfg.offload == Offload::kOn ? OffloadMode::kOn : OffloadMode::kAuto;
  opts.allow_generic = cfg.xdp_allow_generic;
  auto loader = XdpLoader::open(opts);
  if (!loader.ok()) {
    return std::move(loader).error();
  }
  setup.loader = std::move(*loader);
  auto hops = nl::NextHopCache::open();
  if (!hops.ok()) {
    return std::move(hops).error().wrap("next-hop resolution");
  }
  setup.next_hops = std::move(*hops);
  for (const auto& a : setup.loader->attachments()) {
    if (!setup.detail.empty()) {
      setup.detail += ", ";
    }
    setup.detail += a.ifname + (a.native ? " (native" : " (generic") +
                    (a.reopened ? ", re-opened)" : ")");
  }
  return setup;
}

}  // namespace

Result<std::vector<std::string>> offloadDevices(const Config& cfg) {
  std::vector<std::string> out;
  if (!cfg.xdp_interfaces.empty()) {
    for (const auto& name : cfg.xdp_interfaces) {
      if (std::find(out.begin(), out.end(), name) == out.end()) {
        out.push_back(name);
      }
    }
    return out;
  }
  for (const auto& i : cfg.interfaces) {
    if (i.local.isAny()) {
      return XEMS_INVALID("interface " + i.name + " listens on a wildcard address: name the XDP "
                          "devices with --xdp-interface");
    }
    auto link = nl::linkOwning(i.local);
    if (!link.ok()) {
      return std::move(link).error().wrap("interface " + i.name);
    }
    if (link->name == "lo" || link->ifindex == 1) {
      continue;
    }
    if (std::find(out.begin(), out.end(), link->name) == out.end()) {
      out.push_back(link->name);
    }
  }
  return out;
}

Status ensureBpffs(const std::string& pin_root) {
  const std::string root = kBpffsMount;
  if (pin_root.compare(0, root.size() + 1, root + "/") != 0) {
    return {};  // somewhere else: the operator mounted it (checked by probeXdp)
  }
  if (checkOnBpffs(root).ok()) {
    return {};
  }
  std::error_code ec;
  std::filesystem::create_directories(root, ec);
  if (::mount("bpf", root.c_str(), "bpf", 0, "mode=0700") != 0) {
    return XEMS_ERRNO(errno, "mounting bpffs on " + root);
  }
  XLOG_INFO(kCore, "mounted bpffs on {} (nothing was mounted there)", root);
  return {};
}

Result<OffloadSetup> setUpOffload(const Config& cfg) {
  if (cfg.offload == Offload::kOff) {
    OffloadSetup s;
    s.detail = "offload=off";
    return s;
  }
  auto setup = tryOffload(cfg);
  if (setup.ok()) {
    return setup;
  }
  if (cfg.offload == Offload::kOn) {
    return std::move(setup).error().wrap("--offload=on: XDP cannot be used");
  }
  OffloadSetup s;
  s.fallback_reason = setup.error().message;
  s.detail = "userspace only: " + s.fallback_reason;
  XLOG_WARN(kCore, "XDP offload unavailable, forwarding in userspace only: {}", s.fallback_reason);
  return s;
}

}  // namespace xems::datapath::bpf
