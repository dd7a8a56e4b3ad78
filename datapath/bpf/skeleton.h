// Skeleton<T>: the owning handle of a bpftool-generated skeleton (docs/STYLE.md R12).
//
// bpftool >= 7 emits C++ static wrappers inside the skeleton struct (T::open, T::load,
// T::attach, T::detach, T::destroy, T::elf_bytes); this type calls them and destroys the skeleton
// (programs, maps, links, the bpf_object) in its destructor. Between open() and load() the caller
// may set rodata (skel->rodata->cfg_...), map sizes (bpf_map__set_max_entries) and pin paths.
//
// libbpf 1.x (R15): T::open returns NULL and sets errno; T::load/attach return -errno.
#pragma once

#include <bpf/libbpf.h>

#include <cerrno>
#include <string>
#include <utility>

#include "common/result.h"

namespace xems::datapath::bpf {

template <typename T>
class Skeleton {
 public:
  Skeleton() = default;
  ~Skeleton() { reset(); }
  Skeleton(const Skeleton&) = delete;
  Skeleton& operator=(const Skeleton&) = delete;
  Skeleton(Skeleton&& o) noexcept : skel_(std::exchange(o.skel_, nullptr)) {}
  Skeleton& operator=(Skeleton&& o) noexcept {
    if (this != &o) {
      reset();
      skel_ = std::exchange(o.skel_, nullptr);
    }
    return *this;
  }

  /// Opens (parses the embedded ELF, creates nothing in the kernel yet).
  /// @param opts e.g. pin_root_path for LIBBPF_PIN_BY_NAME maps; nullptr for defaults.
  static Result<Skeleton> open(const bpf_object_open_opts* opts = nullptr) {
    T* s = T::open(opts);
    const int saved = errno;  // NULL + errno (libbpf 1.x)
    if (s == nullptr) {
      return XEMS_ERRNO(saved, "opening BPF skeleton");
    }
    return Skeleton(s);
  }

  /// Creates (or reuses pinned) maps and loads the programs through the verifier.
  Status load() {
    const int err = T::load(skel_);
    if (err) {
      return XEMS_ERRNO(-err, "loading BPF object " + name());
    }
    return {};
  }

  /// Auto-attaches the programs whose section allows it (not XDP: that needs an ifindex).
  Status attach() {
    const int err = T::attach(skel_);
    if (err) {
      return XEMS_ERRNO(-err, "attaching BPF object " + name());
    }
    return {};
  }
  void detach() { T::detach(skel_); }

  std::string name() const {
    return skel_ != nullptr && skel_->obj != nullptr ? bpf_object__name(skel_->obj) : "(none)";
  }

  T* get() const { return skel_; }
  T* operator->() const { return skel_; }
  T& operator*() const { return *skel_; }
  explicit operator bool() const { return skel_ != nullptr; }

  /// Gives up ownership; the caller must T::destroy() it.
  T* release() { return std::exchange(skel_, nullptr); }
  void reset() {
    if (skel_ != nullptr) {
      T::destroy(std::exchange(skel_, nullptr));
    }
  }

 private:
  explicit Skeleton(T* s) : skel_(s) {}
  T* skel_ = nullptr;
};

}  // namespace xems::datapath::bpf
