// A tiny bencode writer and reader local to xems-perf.
//
// The daemon's codec (ctrl/ng/value.h, library xems_ng_codec) was being written at the same time
// as this tool; a benchmark client should not depend on the code it measures anyway, so the
// harness carries these ~150 lines. Reader values are views into the decoded buffer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace xems::perf {

// Appends bencode to a caller-owned string (no intermediate tree).
class BencodeWriter {
 public:
  explicit BencodeWriter(std::string& out) : out_(out) {}
  BencodeWriter& beginDict() {
    out_ += 'd';
    return *this;
  }
  BencodeWriter& beginList() {
    out_ += 'l';
    return *this;
  }
  BencodeWriter& end() {
    out_ += 'e';
    return *this;
  }
  BencodeWriter& str(std::string_view s);
  BencodeWriter& integer(int64_t v);
  BencodeWriter& kv(std::string_view key, std::string_view value) { return str(key).str(value); }
  BencodeWriter& kvInt(std::string_view key, int64_t value) { return str(key).integer(value); }

 private:
  std::string& out_;
};

class BValue {
 public:
  enum class Type : uint8_t { kString, kInt, kList, kDict };

  Type type() const { return type_; }
  bool isString() const { return type_ == Type::kString; }
  bool isDict() const { return type_ == Type::kDict; }
  bool isList() const { return type_ == Type::kList; }
  std::string_view asString() const { return str_; }
  int64_t asInt() const { return int_; }
  // List items; for a dict, keys and values alternate.
  const std::vector<BValue>& items() const { return items_; }
  // First value under `key` in a dict, or nullptr.
  const BValue* find(std::string_view key) const;
  std::optional<std::string_view> findString(std::string_view key) const;

 private:
  friend class BencodeReader;
  Type type_ = Type::kString;
  int64_t int_ = 0;
  std::string_view str_;
  std::vector<BValue> items_;
};

// Decodes exactly one value spanning all of `in`. Depth is bounded.
Result<BValue> decodeBencode(std::string_view in);

}  // namespace xems::perf
