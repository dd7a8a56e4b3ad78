#include "datapath/bpf/xdp_loader.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <linux/magic.h>
#include <net/if.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "common/log.h"
#include "datapath/bpf/libbpf_log.h"
#include "xdp_relay.skel.h"

namespace xems::datapath::bpf {

namespace {

std::string hex(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

bool pathExists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

/// bpf_link_info of a link fd (type, program id, XDP ifindex).
Result<bpf_link_info> linkInfo(int fd) {
  bpf_link_info info{};
  uint32_t len = sizeof(info);
  const int err = bpf_obj_get_info_by_fd(fd, &info, &len);
  if (err) {
    return XEMS_ERRNO(-err, "bpf_obj_get_info_by_fd(link)");
  }
  return info;
}

/// The XDP mode the program on ifindex runs in (XDP_ATTACHED_*).
uint8_t xdpAttachMode(uint32_t ifindex) {
  LIBBPF_OPTS(bpf_xdp_query_opts, q);
  if (bpf_xdp_query(static_cast<int>(ifindex), 0, &q) != 0) {
    return XDP_ATTACHED_NONE;
  }
  return q.attach_mode;
}

}  // namespace

Status checkOnBpffs(const std::string& path) {
  if (path.empty()) {
    return XEMS_INVALID("empty bpffs path");
  }
  std::filesystem::path p = std::filesystem::absolute(path);
  // The nearest existing ancestor decides: directories below it will be created on the same fs.
  while (!pathExists(p.string()) && p.has_parent_path() && p != p.parent_path()) {
    p = p.parent_path();
  }
  struct statfs st {};
  if (::statfs(p.c_str(), &st) != 0) {
    const int saved = errno;
    return XEMS_ERRNO(saved, "statfs " + p.string());
  }
  if (static_cast<uint64_t>(st.f_type) != BPF_FS_MAGIC) {
    return XEMS_ERROR(std::make_error_code(std::errc::invalid_argument),
                      path + " is not on a bpf filesystem (" + p.string() + " has fs type " +
                          hex(static_cast<uint64_t>(st.f_type)) +
                          "); mount one first: mount -t bpf bpf /sys/fs/bpf");
  }
  return {};
}

Status probeXdp(const std::string& bpffs_dir) {
  // Loads (and unloads) a two-instruction XDP program: fails with EPERM without CAP_BPF /
  // CAP_SYS_ADMIN, ENOSYS without the bpf syscall; 0 means the program type is unsupported.
  const int r = libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_XDP, nullptr);
  if (r < 0) {
    return XEMS_ERRNO(-r, "cannot load an XDP program here (probe)");
  }
  if (r == 0) {
    return XEMS_ERROR(std::make_error_code(std::errc::not_supported),
                      "the kernel does not support XDP programs");
  }
  auto fs = checkOnBpffs(bpffs_dir);
  if (!fs.ok()) {
    return std::move(fs).error().wrap("no bpffs for pinning");
  }
  return {};
}

Result<std::unique_ptr<XdpLoader>> XdpLoader::open(const XdpLoaderOptions& opts) {
  if (opts.mode == OffloadMode::kOff) {
    return XEMS_INVALID("XdpLoader::open with --offload=off");
  }
  if (opts.pin_root.empty()) {
    return XEMS_INVALID("XDP pin root not set");
  }
  installLibbpfLogger();

  // Resolve every interface first: a typo must not leave a half-attached set behind.
  std::vector<std::pair<std::string, uint32_t>> ifaces;
  for (const std::string& name : opts.interfaces) {
    if (name.empty() || name.size() >= IF_NAMESIZE) {
      return XEMS_INVALID("invalid interface name '" + name + "'");
    }
    const unsigned idx = if_nametoindex(name.c_str());
    const int saved = errno;
    if (idx == 0) {
      return XEMS_ERRNO(saved, "interface '" + name + "' not found");
    }
    ifaces.emplace_back(name, idx);
  }

  XEMS_TRY_STATUS(checkOnBpffs(opts.pin_root));
  std::error_code ec;
  std::filesystem::create_directories(opts.pin_root, ec);
  if (ec) {
    return XEMS_ERROR(ec, "creating pin root " + opts.pin_root + ": " + ec.message());
  }

  auto loader = std::unique_ptr<XdpLoader>(new XdpLoader());
  loader->pin_root_ = opts.pin_root;
  while (loader->pin_root_.size() > 1 && loader->pin_root_.back() == '/') {
    loader->pin_root_.pop_back();
  }

  LIBBPF_OPTS(bpf_object_open_opts, open_opts, .pin_root_path = loader->pin_root_.c_str());
  auto skel = Skeleton<xdp_relay>::open(&open_opts);
  if (!skel.ok()) {
    return std::move(skel).error();
  }
  loader->skel_ = std::move(*skel);
  XEMS_TRY_STATUS(reusePinnedDevmaps(loader->skel_->obj));
  auto loaded = loader->skel_.load();
  if (!loaded.ok()) {
    return std::move(loaded).error().wrap("pin root " + loader->pin_root_);
  }
  auto table = XdpFlowTable::fromMaps({
      .flows = loader->skel_->maps.xems_flows,
      .flow_stats = loader->skel_->maps.xems_flow_stats,
      .counters = loader->skel_->maps.xems_counters,
      .tx_ports = loader->skel_->maps.xems_tx_ports,
  });
  if (!table.ok()) {
    return std::move(table).error();
  }
  loader->table_ = std::move(*table);
  loader->allow_generic_ = opts.allow_generic;
  loader->ifnames_ = opts.interfaces;

  for (const auto& [name, idx] : ifaces) {
    auto st = loader->attach(name, idx, opts.allow_generic);
    if (!st.ok()) {
      // Undo what this call created; links re-opened from a previous run stay as they were.
      for (XdpAttachment& a : loader->attachments_) {
        if (!a.reopened) {
          ::unlink(a.pin_path.c_str());
          (void)bpf_link_detach(a.link.get());
          (void)loader->table_.removeTxPort(a.ifindex);
        }
      }
      return std::move(st).error().wrap("attaching XDP to " + name);
    }
  }
  return loader;
}

Status XdpLoader::attach(const std::string& ifname, uint32_t ifindex, bool allow_generic) {
  XdpAttachment a;
  a.ifname = ifname;
  a.ifindex = ifindex;
  a.pin_path = pin_root_ + "/link_" + ifname;
  const int prog_fd = bpf_program__fd(skel_->progs.xems_xdp_relay);

  if (pathExists(a.pin_path)) {
    const int fd = bpf_obj_get(a.pin_path.c_str());
    const int saved = errno;
    if (fd < 0) {
      return XEMS_ERRNO(saved, "opening pinned link " + a.pin_path);
    }
    UniqueFd link(fd);
    auto info = linkInfo(link.get());
    if (!info.ok()) {
      return std::move(info).error().wrap(a.pin_path);
    }
    if (info->type != BPF_LINK_TYPE_XDP) {
      return XEMS_INVALID(a.pin_path + " is not an XDP link");
    }
    if (info->xdp.ifindex == ifindex) {
      const int err = bpf_link_update(link.get(), prog_fd, nullptr);
      if (err) {
        return XEMS_ERRNO(-err, "updating the program of pinned link " + a.pin_path);
      }
      a.link = std::move(link);
      a.link_id = info->id;
      a.reopened = true;
    } else {
      // Defunct (the interface went away; ifindex 0) or another device got the name: the link
      // no longer carries traffic for this interface. Replace it.
      XLOG_INFO(kBpf, "pinned XDP link {} (id {}) is attached to ifindex {}, not {}: replacing it",
                a.pin_path, info->id, info->xdp.ifindex, ifindex);
      if (info->xdp.ifindex != 0) {
        (void)bpf_link_detach(link.get());
      }
      if (::unlink(a.pin_path.c_str()) != 0) {
        const int e = errno;
        return XEMS_ERRNO(e, "removing stale link pin " + a.pin_path);
      }
    }
  }

  if (!a.link) {
    LIBBPF_OPTS(bpf_link_create_opts, lopts, .flags = XDP_FLAGS_DRV_MODE);
    int fd = bpf_link_create(prog_fd, static_cast<int>(ifindex), BPF_XDP, &lopts);
    if (fd < 0) {
      const int native_err = -fd;
      if (!allow_generic) {
        return XEMS_ERRNO(native_err, "native XDP attach to " + ifname +
                                          " failed and generic mode is not allowed");
      }
      LIBBPF_OPTS(bpf_link_create_opts, gopts, .flags = XDP_FLAGS_SKB_MODE);
      fd = bpf_link_create(prog_fd, static_cast<int>(ifindex), BPF_XDP, &gopts);
      if (fd < 0) {
        return XEMS_ERRNO(-fd, "XDP attach to " + ifname + " failed in native mode (" +
                                   std::strerror(native_err) + ") and in generic mode");
      }
      XLOG_WARN(kBpf, "{}: native XDP unavailable ({}), using generic (skb) mode: slower",
                ifname, std::strerror(native_err));
    }
    UniqueFd link(fd);
    const int err = bpf_obj_pin(link.get(), a.pin_path.c_str());
    if (err) {
      (void)bpf_link_detach(link.get());
      return XEMS_ERRNO(-err, "pinning link as " + a.pin_path);
    }
    auto info = linkInfo(link.get());
    a.link_id = info.ok() ? info->id : 0;
    a.link = std::move(link);
  }
  a.native = xdpAttachMode(ifindex) == XDP_ATTACHED_DRV;
  XLOG_INFO(kBpf, "XDP relay {} {} ({} mode, link id {}, pinned {})",
            a.reopened ? "updated in place on" : "attached to", ifname,
            a.native ? "native" : "generic", a.link_id, a.pin_path);
  auto tx = table_.addTxPort(ifindex);
  attachments_.push_back(std::move(a));
  if (!tx.ok()) {
    return std::move(tx).error().wrap("adding tx port");
  }
  return {};
}

XdpLoader::~XdpLoader() = default;

Status XdpLoader::detachAll() {
  Status first;
  auto keep = [&first](Status s) {
    if (!s.ok() && first.ok()) {
      first = std::move(s);
    }
  };
  for (XdpAttachment& a : attachments_) {
    if (a.link) {
      const int err = bpf_link_detach(a.link.get());
      // ENOLINK: already defunct (device gone).
      if (err && err != -ENOLINK) {
        keep(XEMS_ERRNO(-err, "detaching XDP link from " + a.ifname));
      }
      (void)table_.removeTxPort(a.ifindex);
    }
    if (::unlink(a.pin_path.c_str()) != 0 && errno != ENOENT) {
      const int e = errno;
      keep(XEMS_ERRNO(e, "unpinning " + a.pin_path));
    }
    a.link.reset();
  }
  attachments_.clear();
  // By name, not bpf_map__pin_path(): reusePinnedDevmaps() clears the pin path of a reused devmap.
  for (const char* name :
       {XEMS_MAP_FLOWS, XEMS_MAP_FLOW_STATS, XEMS_MAP_COUNTERS, XEMS_MAP_TX_PORTS}) {
    const std::string path = pin_root_ + "/" + name;
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      const int e = errno;
      keep(XEMS_ERRNO(e, "unpinning map " + path));
    }
  }
  if (::rmdir(pin_root_.c_str()) != 0 && errno != ENOENT) {
    // Not an error: something else (a lock file, another program's pins) lives there.
    XLOG_INFO(kBpf, "pin root {} kept: {}", pin_root_, std::strerror(errno));
  }
  XLOG_INFO(kBpf, "XDP relay detached, pins under {} removed", pin_root_);
  return first;
}

Result<bool> XdpLoader::reattach(const std::string& ifname, uint32_t ifindex) {
  if (std::find(ifnames_.begin(), ifnames_.end(), ifname) == ifnames_.end()) {
    return XEMS_INVALID(ifname + " is not one of the XDP devices");
  }
  auto it = std::find_if(attachments_.begin(), attachments_.end(),
                         [&](const XdpAttachment& a) { return a.ifname == ifname; });
  if (it != attachments_.end()) {
    if (it->ifindex == ifindex && it->link) {
      auto info = linkInfo(it->link.get());
      if (info.ok() && info->xdp.ifindex == ifindex) {
        return false;  // still attached
      }
    }
    (void)table_.removeTxPort(it->ifindex);
    attachments_.erase(it);  // closes the old (defunct) link; attach() replaces its pin
  }
  XEMS_TRY_STATUS(attach(ifname, ifindex, allow_generic_));
  return true;
}

bool XdpLoader::nativeMode(const std::string& ifname) const {
  for (const XdpAttachment& a : attachments_) {
    if (a.ifname == ifname) {
      return a.native;
    }
  }
  return false;
}

uint32_t XdpLoader::progId() const {
  if (!skel_) {
    return 0;
  }
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(bpf_program__fd(skel_->progs.xems_xdp_relay), &info, &len) != 0) {
    return 0;
  }
  return info.id;
}

}  // namespace xems::datapath::bpf
