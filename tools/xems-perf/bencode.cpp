#include "tools/xems-perf/bencode.h"

#include <charconv>

#include <fmt/format.h>

namespace xems::perf {

BencodeWriter& BencodeWriter::str(std::string_view s) {
  char buf[24];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, s.size());
  (void)ec;
  out_.append(buf, p);
  out_ += ':';
  out_.append(s);
  return *this;
}

BencodeWriter& BencodeWriter::integer(int64_t v) {
  char buf[24];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  (void)ec;
  out_ += 'i';
  out_.append(buf, p);
  out_ += 'e';
  return *this;
}

const BValue* BValue::find(std::string_view key) const {
  if (type_ != Type::kDict) {
    return nullptr;
  }
  for (size_t i = 0; i + 1 < items_.size(); i += 2) {
    if (items_[i].str_ == key) {
      return &items_[i + 1];
    }
  }
  return nullptr;
}

std::optional<std::string_view> BValue::findString(std::string_view key) const {
  const BValue* v = find(key);
  if (v == nullptr || !v->isString()) {
    return std::nullopt;
  }
  return v->asString();
}

class BencodeReader {
 public:
  explicit BencodeReader(std::string_view in) : in_(in) {}

  Result<BValue> value(int depth) {
    if (depth > kMaxDepth) {
      return XEMS_INVALID("bencode nesting too deep");
    }
    if (pos_ >= in_.size()) {
      return XEMS_INVALID("truncated bencode");
    }
    BValue v;
    const char c = in_[pos_];
    if (c == 'i') {
      ++pos_;
      const size_t e = in_.find('e', pos_);
      if (e == std::string_view::npos) {
        return XEMS_INVALID("unterminated integer");
      }
      auto [p, ec] = std::from_chars(in_.data() + pos_, in_.data() + e, v.int_);
      if (ec != std::errc() || p != in_.data() + e) {
        return XEMS_INVALID("bad integer");
      }
      v.type_ = BValue::Type::kInt;
      pos_ = e + 1;
      return v;
    }
    if (c == 'l' || c == 'd') {
      ++pos_;
      v.type_ = c == 'l' ? BValue::Type::kList : BValue::Type::kDict;
      size_t n = 0;
      while (pos_ < in_.size() && in_[pos_] != 'e') {
        auto item = value(depth + 1);
        if (!item.ok()) {
          return item;
        }
        if (v.type_ == BValue::Type::kDict && (n % 2) == 0 && !item->isString()) {
          return XEMS_INVALID("dictionary key is not a string");
        }
        v.items_.push_back(std::move(item).value());
        ++n;
      }
      if (pos_ >= in_.size()) {
        return XEMS_INVALID("unterminated list or dictionary");
      }
      if (v.type_ == BValue::Type::kDict && (n % 2) != 0) {
        return XEMS_INVALID("dictionary key without value");
      }
      ++pos_;
      return v;
    }
    const size_t colon = in_.find(':', pos_);
    if (colon == std::string_view::npos) {
      return XEMS_INVALID("bad string length");
    }
    size_t len = 0;
    auto [p, ec] = std::from_chars(in_.data() + pos_, in_.data() + colon, len);
    if (ec != std::errc() || p != in_.data() + colon || colon == pos_) {
      return XEMS_INVALID("bad string length");
    }
    if (len > in_.size() - colon - 1) {
      return XEMS_INVALID("truncated string");
    }
    v.type_ = BValue::Type::kString;
    v.str_ = in_.substr(colon + 1, len);
    pos_ = colon + 1 + len;
    return v;
  }

  bool atEnd() const { return pos_ == in_.size(); }

 private:
  static constexpr int kMaxDepth = 32;
  std::string_view in_;
  size_t pos_ = 0;
};

Result<BValue> decodeBencode(std::string_view in) {
  BencodeReader reader(in);
  auto v = reader.value(0);
  if (v.ok() && !reader.atEnd()) {
    return XEMS_INVALID("trailing data after bencode value");
  }
  return v;
}

}  // namespace xems::perf
