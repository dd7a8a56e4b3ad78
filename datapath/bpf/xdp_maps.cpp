#include "datapath/bpf/xdp_maps.h"

#include <netinet/in.h>

#include <algorithm>
#include <cstring>

namespace xems::datapath::bpf {
namespace {

struct CounterText {
  std::string_view name;
  std::string_view description;
};

constexpr std::array<CounterText, XEMS_CNT_MAX> kCounterText = {{
#define XEMS_COUNTER(id, name, desc) {name, desc},
#include "bpf/include/relay_counters.inc"
#undef XEMS_COUNTER
}};

Result<xems_output> encodeOutput(const OutputSpec& spec, Family family, const char* which) {
  xems_output out{};
  if (spec.src.family() != family || spec.dst.family() != family) {
    return XEMS_INVALID(std::string(which) +
                        " output: address family differs from the local "
                        "socket's (XDP does not bridge IPv4 and IPv6)");
  }
  auto src = toEndpoint(spec.src);
  if (!src.ok()) {
    return std::move(src).error().wrap(which);
  }
  auto dst = toEndpoint(spec.dst);
  if (!dst.ok()) {
    return std::move(dst).error().wrap(which);
  }
  out.src = *src;
  out.dst = *dst;
  out.flags = XEMS_OUT_F_VALID;
  if (spec.l2) {
    out.flags |= XEMS_OUT_F_FIXED_L2;
    out.ifindex = spec.l2->ifindex;
    std::memcpy(out.src_mac, spec.l2->src_mac.data(), sizeof(out.src_mac));
    std::memcpy(out.dst_mac, spec.l2->dst_mac.data(), sizeof(out.dst_mac));
    if (spec.l2->vlan_id) {
      if (*spec.l2->vlan_id > 4095) {
        return XEMS_INVALID(std::string(which) + " output: VLAN id " +
                            std::to_string(*spec.l2->vlan_id) + " > 4095");
      }
      out.flags |= XEMS_OUT_F_VLAN;
      out.vlan_id = *spec.l2->vlan_id;
    }
  }
  return out;
}

}  // namespace

std::string_view counterName(uint32_t counter) {
  return counter < kCounterText.size() ? kCounterText[counter].name : "?";
}

std::string_view counterDescription(uint32_t counter) {
  return counter < kCounterText.size() ? kCounterText[counter].description : "?";
}

Result<xems_endpoint> toEndpoint(const SockAddr& addr) {
  xems_endpoint ep{};
  if (!addr.valid()) {
    return XEMS_INVALID("endpoint without an address family");
  }
  const IpAddr ip = addr.ip();
  if (ip.isV4()) {
    ep.family = XEMS_FAMILY_IPV4;
    std::memcpy(&ep.addr[0], ip.bytes(), 4);
  } else {
    ep.family = XEMS_FAMILY_IPV6;
    std::memcpy(ep.addr, ip.bytes(), 16);
  }
  ep.port = htons(addr.port());
  return ep;
}

SockAddr fromEndpoint(const xems_endpoint& ep) {
  switch (ep.family) {
    case XEMS_FAMILY_IPV4:
      return SockAddr(IpAddr::fromRaw(Family::kIpv4, ep.addr), ntohs(ep.port));
    case XEMS_FAMILY_IPV6:
      return SockAddr(IpAddr::fromRaw(Family::kIpv6, ep.addr), ntohs(ep.port));
    default:
      return SockAddr();
  }
}

Result<FlowKey> makeFlowKey(const SockAddr& local) {
  auto ep = toEndpoint(local);
  if (!ep.ok()) {
    return std::move(ep).error().wrap("flow key");
  }
  FlowKey key{};
  key.local = *ep;
  return key;
}

Result<FlowValue> encodeFlow(const FlowEntry& e, uint32_t version) {
  FlowValue v{};
  const Family family = e.local.family();
  if (family != Family::kIpv4 && family != Family::kIpv6) {
    return XEMS_INVALID("flow without a local address");
  }
  switch (e.mode) {
    case SourceMode::kLearn:
    case SourceMode::kStrict:
    case SourceMode::kIgnore:
      break;
    default:
      return XEMS_INVALID("unknown source mode");
  }
  if (e.mode == SourceMode::kStrict && !e.expected_src) {
    return XEMS_INVALID("strict source mode without an expected source would drop everything");
  }
  if (e.rtcp_socket && e.mux) {
    return XEMS_INVALID("a flow is either an RTCP socket or an rtcp-mux RTP socket, not both");
  }
  v.version = version;
  v.stats_idx = e.stats_idx;
  v.src_mode = static_cast<uint8_t>(e.mode);
  if (e.offload) {
    v.flags |= XEMS_FLOW_F_OFFLOAD;
  }
  if (e.rtcp_socket) {
    v.flags |= XEMS_FLOW_F_RTCP;
  }
  if (e.mux) {
    v.flags |= XEMS_FLOW_F_MUX;
  }
  if (e.expected_src) {
    auto src = toEndpoint(*e.expected_src);
    if (!src.ok()) {
      return std::move(src).error().wrap("expected source");
    }
    v.expected_src = *src;
  }
  if (e.allowed_pts) {
    v.flags |= XEMS_FLOW_F_CHECK_PT;
    std::memcpy(v.pt_allowed, e.allowed_pts->words().data(), sizeof(v.pt_allowed));
  }
  if (e.rtp_out) {
    auto out = encodeOutput(*e.rtp_out, family, "RTP");
    if (!out.ok()) {
      return std::move(out).error();
    }
    v.out[XEMS_OUT_RTP] = *out;
  }
  if (e.rtcp_out) {
    auto out = encodeOutput(*e.rtcp_out, family, "RTCP");
    if (!out.ok()) {
      return std::move(out).error();
    }
    v.out[XEMS_OUT_RTCP] = *out;
  }
  return v;
}

FlowStats mergeFlowStats(std::span<const xems_flow_stats> per_cpu) {
  FlowStats s;
  for (const xems_flow_stats& c : per_cpu) {
    s.packets += c.packets;
    s.bytes += c.bytes;
    s.rtcp_packets += c.rtcp_packets;
    s.foreign_drops += c.foreign_drops;
    if (c.last_seen_ns > s.last_seen_ns) {
      s.last_seen_ns = c.last_seen_ns;
      s.last_version = c.last_version;
    }
    if (c.last_rtp_ns > s.last_rtp_ns) {
      s.last_rtp_ns = c.last_rtp_ns;
      s.last_ssrc = c.last_ssrc;
      s.last_seq = c.last_seq;
      s.last_pt = c.last_pt;
    }
  }
  return s;
}

Status reusePinnedDevmaps(bpf_object* obj) {
  bpf_map* map = nullptr;
  bpf_object__for_each_map(map, obj) {
    const auto type = bpf_map__type(map);
    const char* path = bpf_map__pin_path(map);
    if ((type != BPF_MAP_TYPE_DEVMAP && type != BPF_MAP_TYPE_DEVMAP_HASH) || path == nullptr) {
      continue;
    }
    const int fd = bpf_obj_get(path);
    if (fd == -ENOENT) {
      continue;  // first start: libbpf creates and pins it
    }
    if (fd < 0) {
      return XEMS_ERRNO(-fd, std::string("opening pinned devmap ") + path);
    }
    // Checks the sizes (and owns the fd until reuse_fd has dup'ed it).
    auto h = BpfMapHandle::fromFd(UniqueFd(fd), bpf_map__key_size(map), bpf_map__value_size(map));
    if (!h.ok()) {
      return std::move(h).error().wrap(path);
    }
    if (h->info().type != type) {
      return XEMS_INVALID(std::string("pinned map ") + path + " is not a " +
                          (type == BPF_MAP_TYPE_DEVMAP ? "DEVMAP" : "DEVMAP_HASH"));
    }
    int err = bpf_map__reuse_fd(map, h->fd());
    if (err == 0) {
      // libbpf must not run its own (failing) reuse check nor pin again.
      err = bpf_map__set_pin_path(map, nullptr);
    }
    if (err) {
      return XEMS_ERRNO(-err, std::string("reusing pinned devmap ") + path);
    }
  }
  return {};
}

Result<XdpFlowTable> XdpFlowTable::fromMaps(const Maps& maps) {
  XdpFlowTable t;
  auto flows = BpfMap<FlowKey, FlowValue>::fromMap(maps.flows);
  if (!flows.ok()) {
    return std::move(flows).error().wrap(XEMS_MAP_FLOWS);
  }
  auto stats = BpfMap<uint32_t, xems_flow_stats>::fromMap(maps.flow_stats);
  if (!stats.ok()) {
    return std::move(stats).error().wrap(XEMS_MAP_FLOW_STATS);
  }
  auto counters = BpfMap<uint32_t, xems_counter_value>::fromMap(maps.counters);
  if (!counters.ok()) {
    return std::move(counters).error().wrap(XEMS_MAP_COUNTERS);
  }
  auto tx = BpfMap<uint32_t, bpf_devmap_val>::fromMap(maps.tx_ports);
  if (!tx.ok()) {
    return std::move(tx).error().wrap(XEMS_MAP_TX_PORTS);
  }
  t.flows_ = std::move(*flows);
  t.stats_ = std::move(*stats);
  t.counters_ = std::move(*counters);
  t.tx_ports_ = std::move(*tx);
  XEMS_TRY_STATUS(t.seedVersion());
  return t;
}

Result<XdpFlowTable> XdpFlowTable::openPinned(const std::string& pin_dir) {
  XdpFlowTable t;
  const std::string dir = pin_dir.empty() || pin_dir.back() == '/' ? pin_dir : pin_dir + "/";
  auto flows = BpfMap<FlowKey, FlowValue>::openPinned(dir + XEMS_MAP_FLOWS);
  if (!flows.ok()) {
    return std::move(flows).error();
  }
  auto stats = BpfMap<uint32_t, xems_flow_stats>::openPinned(dir + XEMS_MAP_FLOW_STATS);
  if (!stats.ok()) {
    return std::move(stats).error();
  }
  auto counters = BpfMap<uint32_t, xems_counter_value>::openPinned(dir + XEMS_MAP_COUNTERS);
  if (!counters.ok()) {
    return std::move(counters).error();
  }
  auto tx = BpfMap<uint32_t, bpf_devmap_val>::openPinned(dir + XEMS_MAP_TX_PORTS);
  if (!tx.ok()) {
    return std::move(tx).error();
  }
  if (!stats->perCpu() || !counters->perCpu() || flows->perCpu()) {
    return XEMS_INVALID("pinned maps in " + pin_dir + " have unexpected types");
  }
  t.flows_ = std::move(*flows);
  t.stats_ = std::move(*stats);
  t.counters_ = std::move(*counters);
  t.tx_ports_ = std::move(*tx);
  XEMS_TRY_STATUS(t.seedVersion());
  return t;
}

Result<std::vector<std::pair<FlowKey, FlowValue>>> XdpFlowTable::entries() const {
  std::vector<std::pair<FlowKey, FlowValue>> out;
  FlowKey key{};
  FlowKey next{};
  const FlowKey* prev = nullptr;
  // bpf_map_get_next_key with a NULL key returns the first key; -ENOENT ends the walk. The walk
  // is bounded by the map size (a key deleted under us restarts it at the first key).
  const size_t limit = 2 * static_cast<size_t>(maxFlows()) + 2;
  for (size_t n = 0; n < limit; ++n) {
    const int err = bpf_map_get_next_key(flows_.fd(), prev, &next);
    if (err == -ENOENT) {
      return out;
    }
    if (err) {
      return XEMS_ERRNO(-err, "walking " XEMS_MAP_FLOWS);
    }
    key = next;
    prev = &key;
    auto v = flows_.lookup(key);
    if (!v.ok()) {
      return std::move(v).error();
    }
    if (v->has_value()) {
      out.emplace_back(key, **v);
    }
  }
  return XEMS_INVALID("walking " XEMS_MAP_FLOWS ": more keys than the map holds");
}

Status XdpFlowTable::seedVersion() {
  auto all = entries();
  if (!all.ok()) {
    return std::move(all).error();
  }
  uint32_t max_version = 0;
  for (const auto& kv : *all) {
    max_version = std::max(max_version, kv.second.version);
  }
  next_version_ = max_version + 1 == 0 ? 1 : max_version + 1;
  return {};
}

Result<uint32_t> XdpFlowTable::upsert(const FlowEntry& entry) {
  auto key = makeFlowKey(entry.local);
  if (!key.ok()) {
    return std::move(key).error();
  }
  if (entry.stats_idx >= maxStatsSlots()) {
    return XEMS_INVALID("stats_idx " + std::to_string(entry.stats_idx) +
                        " >= " + std::to_string(maxStatsSlots()));
  }
  const uint32_t version = next_version_;
  auto value = encodeFlow(entry, version);
  if (!value.ok()) {
    return std::move(value).error().wrap("flow " + entry.local.toString());
  }
  auto st = upsert(*key, *value);
  if (!st.ok()) {
    return std::move(st).error().wrap("flow " + entry.local.toString());
  }
  next_version_ = version + 1 == 0 ? 1 : version + 1;
  return version;
}

Status XdpFlowTable::upsert(const FlowKey& key, const FlowValue& value) {
  return flows_.update(key, value, UpdateFlag::kAny);
}

Status XdpFlowTable::erase(const SockAddr& local) {
  auto key = makeFlowKey(local);
  if (!key.ok()) {
    return std::move(key).error();
  }
  return erase(*key);
}

Status XdpFlowTable::erase(const FlowKey& key) {
  return flows_.erase(key);
}

Result<std::optional<FlowValue>> XdpFlowTable::lookup(const FlowKey& key) const {
  return flows_.lookup(key);
}

Result<std::vector<xems_flow_stats>> XdpFlowTable::statsPerCpu(uint32_t stats_idx) const {
  auto v = stats_.lookupPerCpu(stats_idx);
  if (!v.ok()) {
    return std::move(v).error();
  }
  if (!v->has_value()) {  // an array returns every index below max_entries
    return XEMS_ERROR(std::make_error_code(std::errc::result_out_of_range),
                      "stats_idx " + std::to_string(stats_idx) + " out of range");
  }
  return std::move(**v);
}

Result<FlowStats> XdpFlowTable::stats(uint32_t stats_idx) const {
  auto v = statsPerCpu(stats_idx);
  if (!v.ok()) {
    return std::move(v).error();
  }
  return mergeFlowStats(*v);
}

Status XdpFlowTable::resetStats(uint32_t stats_idx) {
  return stats_.updateAllCpus(stats_idx, xems_flow_stats{});
}

Result<Counters> XdpFlowTable::counters() const {
  Counters out{};
  for (uint32_t i = 0; i < XEMS_CNT_MAX; ++i) {
    auto v = counters_.lookupPerCpu(i);
    if (!v.ok()) {
      return std::move(v).error();
    }
    if (!v->has_value()) {
      continue;
    }
    for (const xems_counter_value& c : **v) {
      out[i].packets += c.packets;
      out[i].bytes += c.bytes;
    }
  }
  return out;
}

Status XdpFlowTable::addTxPort(uint32_t ifindex) {
  bpf_devmap_val val{};
  val.ifindex = ifindex;
  return tx_ports_.update(ifindex, val, UpdateFlag::kAny);
}

Status XdpFlowTable::removeTxPort(uint32_t ifindex) {
  return tx_ports_.erase(ifindex);
}

}  // namespace xems::datapath::bpf
