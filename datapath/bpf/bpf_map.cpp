#include "datapath/bpf/bpf_map.h"

#include <fcntl.h>

#include <cerrno>

namespace xems::datapath::bpf {

Result<int> possibleCpus() {
  static const int n = libbpf_num_possible_cpus();  // -errno on failure
  if (n <= 0) {
    return XEMS_ERRNO(n < 0 ? -n : EINVAL, "libbpf_num_possible_cpus");
  }
  return n;
}

bool isPerCpuMapType(uint32_t type) {
  switch (type) {
    case BPF_MAP_TYPE_PERCPU_HASH:
    case BPF_MAP_TYPE_PERCPU_ARRAY:
    case BPF_MAP_TYPE_LRU_PERCPU_HASH:
    case BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE:
      return true;
    default:
      return false;
  }
}

namespace {

Result<MapInfo> mapInfo(int fd) {
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  int err = bpf_obj_get_info_by_fd(fd, &info, &len);
  if (err) {
    return XEMS_ERRNO(-err, "bpf_obj_get_info_by_fd");
  }
  return MapInfo{
      .name = info.name,
      .id = info.id,
      .type = info.type,
      .key_size = info.key_size,
      .value_size = info.value_size,
      .max_entries = info.max_entries,
      .flags = info.map_flags,
  };
}

}  // namespace

Result<BpfMapHandle> BpfMapHandle::fromFd(UniqueFd fd, size_t key_size, size_t value_size) {
  auto info = mapInfo(fd.get());
  if (!info.ok()) {
    return std::move(info).error();
  }
  if (info->key_size != key_size || info->value_size != value_size) {
    return XEMS_INVALID("BPF map " + info->name + " has key/value size " +
                        std::to_string(info->key_size) + "/" + std::to_string(info->value_size) +
                        ", the typed handle expects " + std::to_string(key_size) + "/" +
                        std::to_string(value_size));
  }
  BpfMapHandle h;
  h.per_cpu_ = isPerCpuMapType(info->type);
  if (h.per_cpu_) {
    auto cpus = possibleCpus();
    if (!cpus.ok()) {
      return std::move(cpus).error();
    }
    h.cpus_ = *cpus;
  }
  h.fd_ = std::move(fd);
  h.info_ = std::move(*info);
  return h;
}

Result<BpfMapHandle> BpfMapHandle::fromMap(const bpf_map* map, size_t key_size, size_t value_size) {
  if (map == nullptr) {
    return XEMS_INVALID("null bpf_map");
  }
  const int fd = bpf_map__fd(map);
  if (fd < 0) {  // before bpf_object__load() the map has no fd yet
    return XEMS_ERRNO(EBADF, std::string("BPF map ") + bpf_map__name(map) + " is not loaded");
  }
  const int dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  const int saved = errno;
  if (dup < 0) {
    return XEMS_ERRNO(saved, std::string("dup of BPF map ") + bpf_map__name(map));
  }
  return fromFd(UniqueFd(dup), key_size, value_size);
}

Result<BpfMapHandle> BpfMapHandle::openPinned(const std::string& path, size_t key_size,
                                              size_t value_size) {
  const int fd = bpf_obj_get(path.c_str());
  if (fd < 0) {
    return XEMS_ERRNO(-fd, "opening pinned BPF map " + path);
  }
  auto h = fromFd(UniqueFd(fd), key_size, value_size);
  if (!h.ok()) {
    return std::move(h).error().wrap(path);
  }
  return h;
}

}  // namespace xems::datapath::bpf
