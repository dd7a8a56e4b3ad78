// Result<T>: a value or an Error, for fallible calls on paths that must not throw.
//
// std::expected is unusable with our toolchain pair (libstdc++ 12 offers it only under C++23 and
// hides it from clang 14), and std::source_location fails on clang 14, so the location is stamped
// by the XEMS_ERROR macro from __FILE__/__LINE__.
#pragma once

#include <cerrno>
#include <string>
#include <system_error>
#include <utility>
#include <variant>

namespace xems {

struct Error {
  std::error_code code;
  std::string message;  // human readable, wrapped with context as it propagates

  // Prefixes context: Error{"bind"}.wrap("interface pub") -> "interface pub: bind".
  Error wrap(std::string_view context) const& {
    return Error{code, std::string(context) + ": " + message};
  }
  Error wrap(std::string_view context) && {
    message.insert(0, std::string(context) + ": ");
    return std::move(*this);
  }
};

namespace detail {
Error makeError(std::error_code code, const char* file, int line, std::string message);
}  // namespace detail

// XEMS_ERROR(errc-or-errno-code, message...) builds an Error that carries file:line in debug logs.
#define XEMS_ERROR(code, msg) ::xems::detail::makeError((code), __FILE__, __LINE__, (msg))
#define XEMS_ERRNO(saved_errno, msg) \
  XEMS_ERROR(std::error_code((saved_errno), std::system_category()), (msg))
#define XEMS_INVALID(msg) XEMS_ERROR(std::make_error_code(std::errc::invalid_argument), (msg))

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : err_(std::move(error)), ok_(false) {}  // NOLINT
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const& { return err_; }
  Error&& error() && { return std::move(err_); }

 private:
  Error err_;
  bool ok_ = true;
};

using Status = Result<void>;
inline Status okStatus() { return {}; }

}  // namespace xems

// Propagate an error from an expression returning Result<...>, with optional context.
#define XEMS_TRY_STATUS(expr)              \
  do {                                     \
    auto xems_try_r_ = (expr);             \
    if (!xems_try_r_.ok()) {               \
      return std::move(xems_try_r_).error(); \
    }                                      \
  } while (0)
