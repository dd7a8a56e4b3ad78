// The production API to the XDP relay's maps (bpf/include/relay_abi.h, docs/bpf_abi.md).
//
// The session layer (through the XDP ForwardingTable) and the tests fill the maps only through
// this file: FlowEntry says what one local socket does in C++ terms (SockAddr, enums, optional
// outputs) and encodeFlow() turns it into the ABI struct, network byte order and zero padding
// included. XdpFlowTable wraps the four maps with typed handles (BpfMap) and reads per-CPU
// statistics summed over the CPUs.
//
// Deciding *what* to offload (which FlowSpec can go to XDP, when latching has finished, which
// payload types are pure pass-through) is not done here; that belongs to the XDP ForwardingTable.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bpf/include/relay_abi.h"
#include "common/net.h"
#include "common/result.h"
#include "datapath/bpf/bpf_map.h"

namespace xems::datapath::bpf {

using FlowKey = xems_flow_key;
using FlowValue = xems_flow_value;

/// xems_src_mode: what the program does with a packet's source (see relay_abi.h).
enum class SourceMode : uint8_t {
  kLearn = XEMS_SRC_LEARN,    ///< forward only from expected_src, pass the rest up
  kStrict = XEMS_SRC_STRICT,  ///< forward only from expected_src, drop the rest (counted)
  kIgnore = XEMS_SRC_IGNORE,  ///< forward from anyone
};

using MacAddr = std::array<uint8_t, 6>;

/// The next hop of an output when it is known in advance (tests, static setups). Without it the
/// program asks bpf_fib_lookup() for the egress device and both MACs.
struct FixedL2 {
  uint32_t ifindex = 0;
  MacAddr src_mac{};
  MacAddr dst_mac{};
  /// Set the VLAN id of the frame's innermost tag (the program never adds or removes tags).
  std::optional<uint16_t> vlan_id;
};

/// Where forwarded packets go: from our sink socket `src` to the peer `dst` (same family as the
/// flow's local socket; XDP does not bridge IPv4 and IPv6).
struct OutputSpec {
  SockAddr src;
  SockAddr dst;
  std::optional<FixedL2> l2;
};

/// Allowed RTP payload types, 0..127.
class PayloadTypeSet {
 public:
  PayloadTypeSet() = default;
  PayloadTypeSet(std::initializer_list<uint8_t> pts) {
    for (uint8_t pt : pts) {
      add(pt);
    }
  }
  static PayloadTypeSet all() {
    PayloadTypeSet s;
    s.words_.fill(~uint32_t{0});
    return s;
  }
  PayloadTypeSet& add(uint8_t pt) {
    if (pt < 128) {
      words_[pt / 32] |= uint32_t{1} << (pt % 32);
    }
    return *this;
  }
  bool contains(uint8_t pt) const {
    return pt < 128 && (words_[pt / 32] & (uint32_t{1} << (pt % 32))) != 0;
  }
  const std::array<uint32_t, 4>& words() const { return words_; }

 private:
  std::array<uint32_t, 4> words_{};
};

/// One local socket's offload entry, in C++ terms.
struct FlowEntry {
  SockAddr local;  ///< the socket xemsd owns (the key)
  SourceMode mode = SourceMode::kLearn;
  std::optional<SockAddr> expected_src;  ///< LEARN/STRICT: the peer; unset: LEARN passes all up
  std::optional<OutputSpec> rtp_out;     ///< out[0]: RTP, or everything on a non-mux socket
  std::optional<OutputSpec> rtcp_out;    ///< out[1]: RTCP arriving on an rtcp-mux socket
  bool rtcp_socket = false;              ///< RTCP-only socket (XEMS_FLOW_F_RTCP)
  bool mux = false;                      ///< RTP socket with rtcp-mux (XEMS_FLOW_F_MUX)
  bool offload = true;                   ///< false: every packet goes up (XEMS_FLOW_F_OFFLOAD)
  std::optional<PayloadTypeSet> allowed_pts;  ///< nullopt: no payload-type check
  uint32_t stats_idx = 0;                     ///< slot in xems_flow_stats (daemon-allocated)
};

/// SockAddr -> ABI endpoint (network order, zero padding). Fails for an unset address.
Result<xems_endpoint> toEndpoint(const SockAddr& addr);
/// ABI endpoint -> SockAddr (an invalid SockAddr for family 0).
SockAddr fromEndpoint(const xems_endpoint& ep);
Result<FlowKey> makeFlowKey(const SockAddr& local);
/// Builds the map value. Checks what the program relies on: families of outputs equal the local
/// socket's, VLAN ids < 4096, a known source mode, an expected source in strict mode.
Result<FlowValue> encodeFlow(const FlowEntry& entry, uint32_t version);

/// One flow's statistics, merged over the CPUs.
struct FlowStats {
  uint64_t packets = 0;        ///< forwarded by XDP (RTP and RTCP)
  uint64_t bytes = 0;          ///< UDP payload bytes of those
  uint64_t rtcp_packets = 0;   ///< of packets, RTCP
  uint64_t foreign_drops = 0;  ///< dropped in STRICT mode
  uint64_t last_seen_ns = 0;   ///< CLOCK_MONOTONIC of the newest forwarded packet, 0 = never
  uint64_t last_rtp_ns = 0;    ///< same, RTP only; the fields below belong to that packet
  uint32_t last_ssrc = 0;
  uint16_t last_seq = 0;
  uint8_t last_pt = 0;
  uint32_t last_version = 0;  ///< xems_flow_value.version that forwarded the newest packet
};
/// Sums counters; takes the newest timestamps and the RTP fields of the newest RTP packet.
FlowStats mergeFlowStats(std::span<const xems_flow_stats> per_cpu);

struct CounterValue {
  uint64_t packets = 0;
  uint64_t bytes = 0;  ///< frame bytes
  CounterValue& operator+=(const CounterValue& o) {
    packets += o.packets;
    bytes += o.bytes;
    return *this;
  }
};
/// All xems_counters entries summed over CPUs, indexed by enum xems_counter.
using Counters = std::array<CounterValue, XEMS_CNT_MAX>;

std::string_view counterName(uint32_t counter);  ///< "no_flow", ... ("?" if unknown)
std::string_view counterDescription(uint32_t counter);

/// Call between open and load when the object's maps are pinned (pin_root_path set): makes
/// libbpf reuse an already pinned DEVMAP/DEVMAP_HASH (xems_tx_ports). libbpf 1.1 refuses that on
/// its own ("error reusing pinned map"): the kernel adds BPF_F_RDONLY_PROG to every devmap's
/// flags, which libbpf's compatibility check does not expect (fixed in later libbpf; cilium/ebpf
/// had the same bug, #925). The pinned map is checked for the expected key/value sizes and handed
/// over with bpf_map__reuse_fd(); maps not pinned yet are left to libbpf (created and pinned).
Status reusePinnedDevmaps(bpf_object* obj);

/// The four maps of a loaded (or pinned) xdp_relay object.
class XdpFlowTable {
 public:
  struct Maps {
    const bpf_map* flows = nullptr;
    const bpf_map* flow_stats = nullptr;
    const bpf_map* counters = nullptr;
    const bpf_map* tx_ports = nullptr;
  };

  XdpFlowTable() = default;
  /// From a loaded skeleton: {skel->maps.xems_flows, ...}. Handles dup the fds.
  static Result<XdpFlowTable> fromMaps(const Maps& maps);
  /// From the pin directory (e.g. /sys/fs/bpf/xems/<instance>): <dir>/<XEMS_MAP_*>.
  static Result<XdpFlowTable> openPinned(const std::string& pin_dir);

  /// Writes the entry for entry.local with a new version (BPF_ANY: insert or replace in place).
  /// @return the version written.
  Result<uint32_t> upsert(const FlowEntry& entry);
  /// Raw form for callers that build the value themselves.
  Status upsert(const FlowKey& key, const FlowValue& value);
  /// Removes the entry; ENOENT if there is none.
  Status erase(const SockAddr& local);
  Status erase(const FlowKey& key);
  Result<std::optional<FlowValue>> lookup(const FlowKey& key) const;
  /// Every entry (e.g. the flows a previous run left in the pinned map).
  Result<std::vector<std::pair<FlowKey, FlowValue>>> entries() const;

  /// The statistics of one stats slot, summed over CPUs.
  Result<FlowStats> stats(uint32_t stats_idx) const;
  /// The raw per-CPU values of one slot (index = CPU).
  Result<std::vector<xems_flow_stats>> statsPerCpu(uint32_t stats_idx) const;
  /// Zeroes a slot on every CPU; call before handing the slot to a new flow.
  Status resetStats(uint32_t stats_idx);
  /// Forwarded, every pass-up reason and every drop reason, summed over CPUs.
  Result<Counters> counters() const;

  /// Allows XDP_REDIRECT to this device (a device that runs the program or at least implements
  /// ndo_xdp_xmit; not VLAN devices).
  Status addTxPort(uint32_t ifindex);
  Status removeTxPort(uint32_t ifindex);

  uint32_t maxFlows() const { return flows_.info().max_entries; }
  uint32_t maxStatsSlots() const { return stats_.info().max_entries; }

 private:
  BpfMap<FlowKey, FlowValue> flows_;
  BpfMap<uint32_t, xems_flow_stats> stats_;
  BpfMap<uint32_t, xems_counter_value> counters_;
  BpfMap<uint32_t, bpf_devmap_val> tx_ports_;
  Status seedVersion();

  // Every upsert takes a fresh version, so successive values of one key always differ. Opening
  // the table (e.g. pinned maps after a restart) starts above the largest version in the map.
  // 0 means "never set" and is skipped on wrap-around.
  uint32_t next_version_ = 1;
};

}  // namespace xems::datapath::bpf
