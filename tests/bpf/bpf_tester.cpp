#include "tests/bpf/bpf_tester.h"

#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "common/unique_fd.h"

namespace xems::bpftest {

using datapath::bpf::Skeleton;
using datapath::bpf::XdpFlowTable;

Result<std::unique_ptr<BpfTester>> BpfTester::load(const LoadOptions& opts) {
  auto t = std::make_unique<BpfTester>();
  LIBBPF_OPTS(bpf_object_open_opts, open_opts,
              .pin_root_path = opts.pin_root.empty() ? nullptr : opts.pin_root.c_str());
  auto skel = Skeleton<xdp_relay>::open(&open_opts);
  if (!skel.ok()) {
    return std::move(skel).error();
  }
  t->skel_ = std::move(*skel);
  if (opts.pin_root.empty()) {
    // LIBBPF_PIN_BY_NAME maps get <root>/<name> at open (default root /sys/fs/bpf); without this
    // a test would reuse, and leave behind, maps pinned by another run.
    bpf_map* m = nullptr;
    bpf_object__for_each_map(m, t->skel_->obj) {
      const int err = bpf_map__set_pin_path(m, nullptr);
      if (err) {
        return XEMS_ERRNO(-err, "clearing pin path");
      }
    }
  } else {
    XEMS_TRY_STATUS(datapath::bpf::reusePinnedDevmaps(t->skel_->obj));
  }
  t->skel_->rodata->cfg_offload_enabled = opts.offload_enabled;
  t->skel_->rodata->cfg_fib_flags = opts.fib_flags;
  t->skel_->rodata->cfg_precise_time = opts.precise_time;
  if (opts.max_flows != 0) {
    for (bpf_map* m : {t->skel_->maps.xems_flows, t->skel_->maps.xems_flow_stats}) {
      if (const int err = bpf_map__set_max_entries(m, opts.max_flows); err != 0) {
        return XEMS_ERRNO(-err, "setting map size");
      }
    }
  }
  XEMS_TRY_STATUS(t->skel_.load());
  auto table = XdpFlowTable::fromMaps({
      .flows = t->skel_->maps.xems_flows,
      .flow_stats = t->skel_->maps.xems_flow_stats,
      .counters = t->skel_->maps.xems_counters,
      .tx_ports = t->skel_->maps.xems_tx_ports,
  });
  if (!table.ok()) {
    return std::move(table).error();
  }
  t->table_ = std::move(*table);
  return t;
}

Result<RunResult> BpfTester::run(std::span<const uint8_t> in, uint32_t ingress_ifindex,
                                 uint32_t repeat) {
  RunResult r;
  r.out.resize(in.size() + 256);
  xdp_md ctx{};
  ctx.data_end = static_cast<uint32_t>(in.size());
  ctx.ingress_ifindex = ingress_ifindex;
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in.data(), .data_out = r.out.data(),
              .data_size_in = static_cast<uint32_t>(in.size()),
              .data_size_out = static_cast<uint32_t>(r.out.size()),
              .ctx_in = ingress_ifindex != 0 ? &ctx : nullptr,
              .ctx_size_in = ingress_ifindex != 0 ? static_cast<uint32_t>(sizeof(ctx)) : 0U,
              .repeat = static_cast<int>(repeat));
  const int err = bpf_prog_test_run_opts(bpf_program__fd(skel_->progs.xems_xdp_relay), &opts);
  if (err) {
    return XEMS_ERRNO(-err, "bpf_prog_test_run_opts");
  }
  r.action = static_cast<int>(opts.retval);
  r.out.resize(opts.data_size_out);
  r.duration_ns = opts.duration;
  return r;
}

int pinToCurrentCpu() {
  const int cpu = sched_getcpu();
  if (cpu < 0) {
    return -1;
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof(set), &set) != 0) {
    return -1;
  }
  return cpu;
}

bool isPermissionError(const Error& e) {
  return e.code == std::errc::operation_not_permitted || e.code == std::errc::permission_denied ||
         e.code == std::errc::function_not_supported;
}

bool sh(const std::string& cmd) {
  const std::string quiet = cmd + " >/dev/null 2>&1";
  return std::system(quiet.c_str()) == 0;
}

namespace {

bool writeFile(const std::string& path, const std::string& value) {
  std::ofstream f(path);
  f << value;
  return static_cast<bool>(f);
}

datapath::bpf::MacAddr macOf(const char* ifname) {
  datapath::bpf::MacAddr mac{};
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
  if (s && ::ioctl(s.get(), SIOCGIFHWADDR, &ifr) == 0) {
    std::memcpy(mac.data(), ifr.ifr_hwaddr.sa_data, mac.size());
  }
  return mac;
}

std::optional<NetEnv> setUp(std::string* why) {
  if (::unshare(CLONE_NEWNET) != 0) {
    *why = std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno);
    return std::nullopt;
  }
  const char* cmds[] = {
      "ip link set lo up",
      "ip link add xa type veth peer name xb",
      "ip link set xa address 02:00:00:00:0a:01",
      "ip link set xb address 02:00:00:00:0b:01",
      "ip link set xa up",
      "ip link set xb up",
      "ip addr add 203.0.113.1/24 dev xa",
      "ip addr add 192.0.2.1/24 dev xb",
      "ip -6 addr add 2001:db8:a::1/64 dev xa nodad",
      "ip -6 addr add 2001:db8:b::1/64 dev xb nodad",
      "ip neigh replace 203.0.113.10 lladdr 02:00:00:00:0a:10 dev xa nud permanent",
      "ip neigh replace 203.0.113.11 lladdr 02:00:00:00:0a:11 dev xa nud permanent",
      "ip neigh replace 192.0.2.20 lladdr 02:00:00:00:0b:20 dev xb nud permanent",
      "ip -6 neigh replace 2001:db8:a::10 lladdr 02:00:00:00:0a:10 dev xa nud permanent",
      "ip -6 neigh replace 2001:db8:b::20 lladdr 02:00:00:00:0b:20 dev xb nud permanent",
  };
  for (const char* c : cmds) {
    if (!sh(c)) {
      *why = std::string("'") + c + "' failed";
      return std::nullopt;
    }
  }
  // /proc/sys/net is the namespace of the process that opens it: ours now.
  if (!writeFile("/proc/sys/net/ipv4/conf/all/forwarding", "1") ||
      !writeFile("/proc/sys/net/ipv6/conf/all/forwarding", "1")) {
    *why = "cannot enable forwarding in the test namespace";
    return std::nullopt;
  }
  NetEnv env;
  env.a_if = if_nametoindex("xa");
  env.b_if = if_nametoindex("xb");
  env.a_mac = macOf("xa");
  env.b_mac = macOf("xb");
  if (env.a_if == 0 || env.b_if == 0) {
    *why = "veth devices missing";
    return std::nullopt;
  }
  return env;
}

}  // namespace

const NetEnv* NetEnv::get(std::string* why_not) {
  static std::string why;
  static const std::optional<NetEnv> env = setUp(&why);
  if (!env && why_not != nullptr) {
    *why_not = why;
  }
  return env ? &*env : nullptr;
}

}  // namespace xems::bpftest
