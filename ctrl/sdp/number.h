// Decimal number parsing shared by the SDP parser and its helpers.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace xems::sdp::detail {

inline bool isDigits(std::string_view s) {
  if (s.empty()) {
    return false;
  }
  for (char c : s) {
    if (c < '0' || c > '9') {
      return false;
    }
  }
  return true;
}

// Decimal digits only, at most 10 of them, value <= max.
inline std::optional<uint32_t> parseNumber(std::string_view s, uint32_t max) {
  if (!isDigits(s) || s.size() > 10) {
    return std::nullopt;
  }
  uint64_t v = 0;
  for (char c : s) {
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > max) {
    return std::nullopt;
  }
  return static_cast<uint32_t>(v);
}

}  // namespace xems::sdp::detail
