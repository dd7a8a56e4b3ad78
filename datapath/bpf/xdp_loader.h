// XdpLoader: the lifecycle of bpf/xdp_relay.bpf.c on xemsd's media interfaces (docs/bpf_abi.md
// "Lifecycle", docs/STYLE.md R3, R12, R15, R22).
//
// open() loads the program with its maps pinned by name under a pin root on bpffs (a restarted
// daemon, also one killed with -9, reuses the maps and their flows) and attaches it to each
// interface through a bpf_link pinned as <pin_root>/link_<ifname>. If that pin already exists and
// its link is still attached to the interface, the link's program is replaced in place
// (BPF_LINK_UPDATE): packets keep being forwarded across the restart. The destructor only closes
// file descriptors; detachAll() is the clean "offload off for good" shutdown.
//
// Links are held as owned link fds (UniqueFd) rather than libbpf's struct bpf_link: the generic
// (skb) fallback needs XDP_FLAGS_SKB_MODE, which bpf_program__attach_xdp() cannot pass in
// libbpf 1.1, so every link is made with bpf_link_create() and re-opened with bpf_obj_get().
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "datapath/bpf/skeleton.h"
#include "datapath/bpf/xdp_maps.h"

struct xdp_relay;

namespace xems::datapath::bpf {

/// --offload=auto|on|off (R3). kAuto: a failing open() means "forward in userspace" (one WARN);
/// kOn: the caller fails hard; kOff: the loader is never used.
enum class OffloadMode { kAuto, kOn, kOff };

struct XdpLoaderOptions {
  std::string pin_root;                 ///< e.g. /sys/fs/bpf/xems/<instance>; must be on bpffs
  std::vector<std::string> interfaces;  ///< kernel interface names to attach to
  OffloadMode mode = OffloadMode::kAuto;
  bool allow_generic = true;  ///< fall back to generic (skb) mode, with one warning per interface
};

/// One attached interface. The link fd keeps the pinned link open while we run.
struct XdpAttachment {
  std::string ifname;
  uint32_t ifindex = 0;
  std::string pin_path;  ///< <pin_root>/link_<ifname>
  UniqueFd link;
  uint32_t link_id = 0;
  bool native = false;   ///< driver mode; false: generic (skb) mode
  bool reopened = false; ///< an existing pinned link was updated instead of a new attach
};

class XdpLoader {
 public:
  /// Checks pin_root is on bpffs (statfs BPF_FS_MAGIC; nothing is mounted here) and creates it,
  /// loads the skeleton with pin_root_path = pin_root (pinned maps are reused), then attaches to
  /// or re-opens the link of every interface. Any failure is an error saying why; links created
  /// by this call are removed again, links re-opened from a previous run are left as they were.
  static Result<std::unique_ptr<XdpLoader>> open(const XdpLoaderOptions& opts);

  XdpLoader(const XdpLoader&) = delete;
  XdpLoader& operator=(const XdpLoader&) = delete;
  /// Leaves links and maps pinned (restart continuity): only file descriptors are closed.
  ~XdpLoader();

  /// The production map API (xdp_maps.h) on the loaded maps.
  XdpFlowTable& flows() { return table_; }

  /// Detaches every link, removes the link and map pins and the pin root if it is then empty.
  /// Clean shutdown when offload is not wanted after this process. Returns the first error but
  /// tries everything.
  Status detachAll();

  /// Makes sure the program runs on `ifname`, now `ifindex` (a link event: the device was
  /// re-created, e.g. a driver reload or a veth set up again). Nothing happens if its link is
  /// still attached there; otherwise the old link is dropped and a new one attached and pinned.
  /// @return whether a new link was attached, or why it could not be.
  Result<bool> reattach(const std::string& ifname, uint32_t ifindex);

  /// True if the program runs in driver (native) mode on ifname; false for generic mode or an
  /// interface this loader does not handle.
  bool nativeMode(const std::string& ifname) const;

  const std::vector<XdpAttachment>& attachments() const { return attachments_; }
  const std::string& pinRoot() const { return pin_root_; }
  /// The kernel id of the loaded program (what bpf_xdp_query_id reports on attached devices).
  uint32_t progId() const;

 private:
  XdpLoader() = default;
  Status attach(const std::string& ifname, uint32_t ifindex, bool allow_generic);

  std::string pin_root_;
  bool allow_generic_ = true;
  std::vector<std::string> ifnames_;  // the configured devices, attached or not right now
  Skeleton<xdp_relay> skel_;
  XdpFlowTable table_;
  std::vector<XdpAttachment> attachments_;
};

/// Can this process load and attach an XDP program with pinned state at all? Checks the
/// privileges and kernel support (a trivial XDP program must load: EPERM, no BPF syscall, XDP
/// disabled) and that `bpffs_dir` (or its nearest existing parent) is on bpffs. The error says
/// why not, for the one WARN line of --offload=auto.
Status probeXdp(const std::string& bpffs_dir = "/sys/fs/bpf");

/// True if `path`, or its nearest existing parent directory, is on a bpf filesystem.
Status checkOnBpffs(const std::string& path);

}  // namespace xems::datapath::bpf
