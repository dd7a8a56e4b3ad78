// Typed handles over BPF maps (docs/STYLE.md R16).
//
// BpfMap<K, V> owns a file descriptor of one map and checks, when it is opened, that sizeof(K)
// and sizeof(V) equal the map's key and value sizes: a mismatch (an old pinned map after an ABI
// change, the wrong map) is a Result error at open, never a kernel read past a buffer later.
// Per-CPU maps are recognised from the map type; their values are read and written as one V per
// possible CPU, and the single-value calls refuse them (the kernel would copy ncpus values).
//
// libbpf 1.x conventions (R15): the bpf_map_* syscall wrappers return -errno; nothing here calls
// libbpf_get_error().
#pragma once

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"

namespace xems::datapath::bpf {

/// libbpf_num_possible_cpus(), read once. The kernel sizes per-CPU map values by it.
Result<int> possibleCpus();

/// BPF_ANY / BPF_NOEXIST / BPF_EXIST.
enum class UpdateFlag : uint64_t {
  kAny = BPF_ANY,
  kNoExist = BPF_NOEXIST,
  kExist = BPF_EXIST,
};

/// What the kernel says about a map (bpf_obj_get_info_by_fd).
struct MapInfo {
  std::string name;
  uint32_t id = 0;
  uint32_t type = 0;  ///< enum bpf_map_type
  uint32_t key_size = 0;
  uint32_t value_size = 0;
  uint32_t max_entries = 0;
  uint32_t flags = 0;
};

bool isPerCpuMapType(uint32_t type);

/// The untyped part of BpfMap: an owned map fd, its info and the per-CPU geometry.
class BpfMapHandle {
 public:
  BpfMapHandle() = default;
  /// Duplicates the fd of a loaded map (a skeleton's), so the handle may outlive the object.
  static Result<BpfMapHandle> fromMap(const bpf_map* map, size_t key_size, size_t value_size);
  /// Opens a map pinned on bpffs (bpf_obj_get).
  static Result<BpfMapHandle> openPinned(const std::string& path, size_t key_size,
                                         size_t value_size);
  /// Takes an fd the caller owns (e.g. from bpf_map_get_fd_by_id).
  static Result<BpfMapHandle> fromFd(UniqueFd fd, size_t key_size, size_t value_size);

  int fd() const { return fd_.get(); }
  const MapInfo& info() const { return info_; }
  bool perCpu() const { return per_cpu_; }
  /// Number of values a per-CPU lookup returns (possible CPUs); 1 for other maps.
  int cpus() const { return cpus_; }

 private:
  UniqueFd fd_;
  MapInfo info_;
  bool per_cpu_ = false;
  int cpus_ = 1;
};

/// Sums per-CPU values with V's operator+= (counters, uint64_t).
template <typename V>
concept PerCpuSummable = requires(V& a, const V& b) {
  a += b;
};

template <PerCpuSummable V>
V sumPerCpu(std::span<const V> values) {
  V total{};
  for (const V& v : values) {
    total += v;
  }
  return total;
}

/// Folds per-CPU values with merge(total&, const V&), for structs with max/last fields.
template <typename V, typename Merge>
V sumPerCpu(std::span<const V> values, Merge merge) {
  V total{};
  for (const V& v : values) {
    merge(total, v);
  }
  return total;
}

template <typename K, typename V>
class BpfMap {
  static_assert(std::is_trivially_copyable_v<K>, "BPF map keys are copied as bytes");
  static_assert(std::is_trivially_copyable_v<V>, "BPF map values are copied as bytes");

 public:
  using Key = K;
  using Value = V;

  BpfMap() = default;

  /// From a loaded skeleton map; fails if the key/value sizes differ from sizeof(K)/sizeof(V).
  static Result<BpfMap> fromMap(const bpf_map* map) {
    auto h = BpfMapHandle::fromMap(map, sizeof(K), sizeof(V));
    if (!h.ok()) {
      return std::move(h).error();
    }
    return BpfMap(std::move(*h));
  }
  /// From a pinned path; same size check.
  static Result<BpfMap> openPinned(const std::string& path) {
    auto h = BpfMapHandle::openPinned(path, sizeof(K), sizeof(V));
    if (!h.ok()) {
      return std::move(h).error();
    }
    return BpfMap(std::move(*h));
  }
  static Result<BpfMap> fromFd(UniqueFd fd) {
    auto h = BpfMapHandle::fromFd(std::move(fd), sizeof(K), sizeof(V));
    if (!h.ok()) {
      return std::move(h).error();
    }
    return BpfMap(std::move(*h));
  }

  bool valid() const { return h_.fd() >= 0; }
  int fd() const { return h_.fd(); }
  const MapInfo& info() const { return h_.info(); }
  bool perCpu() const { return h_.perCpu(); }
  int cpus() const { return h_.cpus(); }

  /// @return the value, nullopt if the key is absent, or an error.
  Result<std::optional<V>> lookup(const K& key) const {
    XEMS_TRY_STATUS(requireShared("lookup"));
    V value;
    int err = bpf_map_lookup_elem(h_.fd(), &key, &value);
    if (err == -ENOENT) {
      return std::optional<V>{};
    }
    if (err) {
      return XEMS_ERRNO(-err, "lookup in BPF map " + info().name);
    }
    return std::optional<V>{value};
  }

  Status update(const K& key, const V& value, UpdateFlag flag = UpdateFlag::kAny) {
    XEMS_TRY_STATUS(requireShared("update"));
    int err = bpf_map_update_elem(h_.fd(), &key, &value, static_cast<uint64_t>(flag));
    if (err) {
      return XEMS_ERRNO(-err, "update of BPF map " + info().name);
    }
    return {};
  }

  /// Deletes a key; ENOENT (absent) is an error with that code. Array maps cannot delete (EINVAL).
  Status erase(const K& key) {
    int err = bpf_map_delete_elem(h_.fd(), &key);
    if (err) {
      return XEMS_ERRNO(-err, "delete from BPF map " + info().name);
    }
    return {};
  }

  /// Updates keys[i] -> values[i] in one syscall (BPF_MAP_UPDATE_BATCH, Linux 5.6).
  /// Not for hash entries that XDP is reading at the same time: each replaced element is
  /// recycled for the next key within microseconds (docs/bpf_abi.md, "Updating entries").
  /// @return the number of elements updated (all of them on success).
  Result<size_t> updateBatch(std::span<const K> keys, std::span<const V> values,
                             UpdateFlag flag = UpdateFlag::kAny) {
    XEMS_TRY_STATUS(requireShared("updateBatch"));
    if (keys.size() != values.size()) {
      return XEMS_INVALID("updateBatch: " + std::to_string(keys.size()) + " keys but " +
                          std::to_string(values.size()) + " values");
    }
    if (keys.empty()) {
      return size_t{0};
    }
    LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = static_cast<uint64_t>(flag));
    auto count = static_cast<uint32_t>(keys.size());
    int err = bpf_map_update_batch(h_.fd(), keys.data(), values.data(), &count, &opts);
    if (err) {
      return XEMS_ERRNO(-err, "batch update of BPF map " + info().name + " (" +
                                  std::to_string(count) + " of " + std::to_string(keys.size()) +
                                  " done)");
    }
    return size_t{count};
  }

  /// Per-CPU maps: one value per possible CPU, index = CPU number.
  Result<std::optional<std::vector<V>>> lookupPerCpu(const K& key) const {
    XEMS_TRY_STATUS(requirePerCpu("lookupPerCpu"));
    std::vector<std::byte> raw(stride() * static_cast<size_t>(cpus()));
    int err = bpf_map_lookup_elem(h_.fd(), &key, raw.data());
    if (err == -ENOENT) {
      return std::optional<std::vector<V>>{};
    }
    if (err) {
      return XEMS_ERRNO(-err, "per-CPU lookup in BPF map " + info().name);
    }
    std::vector<V> out(static_cast<size_t>(cpus()));
    for (size_t i = 0; i < out.size(); ++i) {
      std::memcpy(&out[i], raw.data() + i * stride(), sizeof(V));
    }
    return std::optional<std::vector<V>>{std::move(out)};
  }

  /// Per-CPU maps: writes values[cpu] for every possible CPU (values.size() == cpus()).
  Status updatePerCpu(const K& key, std::span<const V> values, UpdateFlag flag = UpdateFlag::kAny) {
    XEMS_TRY_STATUS(requirePerCpu("updatePerCpu"));
    if (values.size() != static_cast<size_t>(cpus())) {
      return XEMS_INVALID("updatePerCpu: " + std::to_string(values.size()) + " values for " +
                          std::to_string(cpus()) + " CPUs");
    }
    std::vector<std::byte> raw(stride() * values.size());
    for (size_t i = 0; i < values.size(); ++i) {
      std::memcpy(raw.data() + i * stride(), &values[i], sizeof(V));
    }
    int err = bpf_map_update_elem(h_.fd(), &key, raw.data(), static_cast<uint64_t>(flag));
    if (err) {
      return XEMS_ERRNO(-err, "per-CPU update of BPF map " + info().name);
    }
    return {};
  }

  /// Per-CPU maps: the same value on every CPU (e.g. zero to reset a slot).
  Status updateAllCpus(const K& key, const V& value, UpdateFlag flag = UpdateFlag::kAny) {
    std::vector<V> values(static_cast<size_t>(cpus()), value);
    return updatePerCpu(key, values, flag);
  }

 private:
  explicit BpfMap(BpfMapHandle h) : h_(std::move(h)) {}

  // The kernel lays per-CPU values out 8-byte aligned.
  static constexpr size_t stride() { return (sizeof(V) + 7) & ~size_t{7}; }

  Status requireShared(const char* op) const {
    if (h_.perCpu()) {
      return XEMS_INVALID(std::string(op) + " on per-CPU BPF map " + info().name +
                          " (use the PerCpu variant)");
    }
    return {};
  }
  Status requirePerCpu(const char* op) const {
    if (!h_.perCpu()) {
      return XEMS_INVALID(std::string(op) + " on BPF map " + info().name +
                          ", which is not per-CPU");
    }
    return {};
  }

  BpfMapHandle h_;
};

}  // namespace xems::datapath::bpf
