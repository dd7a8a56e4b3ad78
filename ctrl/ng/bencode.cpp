// Strict, zero-copy bencode decoder and an exact-size bencode encoder.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>
#include <string>

#include "ctrl/ng/value.h"

namespace xems::ng {
namespace {

static_assert(kMaxDepth == 64, "the nesting error message spells out the limit");

bool isDigit(char c) { return c >= '0' && c <= '9'; }

// Recursive descent; the recursion is bounded by kMaxDepth, so the stack use is too.
class BencodeParser {
 public:
  BencodeParser(std::string_view in, Document& doc) : in_(in), doc_(doc) {}

  Result<Value> parseDocument() {
    Value v;
    if (!parseValue(v, 0)) {
      return std::move(*error_);
    }
    if (pos_ != in_.size()) {
      return fail(pos_, "trailing data after value");
    }
    return v;
  }

 private:
  Error fail(size_t offset, std::string_view reason) {
    std::string msg = "Invalid bencode at offset ";
    msg += std::to_string(offset);
    msg += ": ";
    msg += reason;
    return XEMS_INVALID(std::move(msg));
  }

  bool setError(size_t offset, std::string_view reason) {
    error_.emplace(fail(offset, reason));
    return false;
  }

  bool unexpectedByte(size_t offset) {
    const auto c = static_cast<unsigned char>(in_[offset]);
    char buf[32];
    if (c >= 0x20 && c < 0x7f && c != '\'') {
      std::snprintf(buf, sizeof buf, "unexpected byte '%c'", c);
    } else {
      std::snprintf(buf, sizeof buf, "unexpected byte 0x%02x", c);
    }
    return setError(offset, buf);
  }

  bool parseValue(Value& out, int depth) {
    if (pos_ >= in_.size()) {
      return setError(pos_, "unexpected end of input");
    }
    const char c = in_[pos_];
    if (isDigit(c)) {
      std::string_view s;
      if (!parseString(s)) {
        return false;
      }
      out = Value::string(s);
      return true;
    }
    switch (c) {
      case 'i': {
        int64_t i = 0;
        if (!parseInt(i)) {
          return false;
        }
        out = Value::integer(i);
        return true;
      }
      case 'l':
        return parseList(out, depth + 1);
      case 'd':
        return parseDict(out, depth + 1);
      default:
        return unexpectedByte(pos_);
    }
  }

  // <len>:<bytes>, len without leading zeros (except "0"), bounded by the remaining input.
  bool parseString(std::string_view& out) {
    const size_t start = pos_;
    if (in_[pos_] == '0' && pos_ + 1 < in_.size() && isDigit(in_[pos_ + 1])) {
      return setError(start, "leading zero in string length");
    }
    size_t len = 0;
    bool too_long = false;
    while (pos_ < in_.size() && isDigit(in_[pos_])) {
      if (!too_long) {
        len = len * 10 + static_cast<size_t>(in_[pos_] - '0');
        too_long = len > in_.size();  // stop accumulating long before size_t could overflow
      }
      ++pos_;
    }
    if (pos_ >= in_.size()) {
      return setError(pos_, "unexpected end of input");
    }
    if (in_[pos_] != ':') {
      return setError(pos_, "expected ':' after string length");
    }
    ++pos_;
    if (too_long || len > in_.size() - pos_) {
      return setError(start, "string length exceeds input");
    }
    out = in_.substr(pos_, len);
    pos_ += len;
    return true;
  }

  // i<n>e: optional '-', digits without leading zeros, no "-0", within int64.
  bool parseInt(int64_t& out) {
    const size_t start = pos_;
    ++pos_;  // 'i'
    bool negative = false;
    if (pos_ < in_.size() && in_[pos_] == '-') {
      negative = true;
      ++pos_;
    }
    const size_t digits = pos_;
    // Accumulate as a negative number: its range includes INT64_MIN.
    constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
    int64_t acc = 0;
    bool overflow = false;
    while (pos_ < in_.size() && isDigit(in_[pos_])) {
      const int d = in_[pos_] - '0';
      if (acc < (kMin + d) / 10) {
        overflow = true;
      } else {
        acc = acc * 10 - d;
      }
      ++pos_;
    }
    if (pos_ == digits) {
      if (pos_ >= in_.size()) {
        return setError(pos_, "unexpected end of input");
      }
      return setError(start, "integer without digits");
    }
    if (in_[digits] == '0' && pos_ - digits > 1) {
      return setError(start, "leading zero in integer");
    }
    if (negative && acc == 0) {
      return setError(start, "negative zero");
    }
    if (overflow || (!negative && acc == kMin)) {
      return setError(start, "integer overflows int64");
    }
    if (pos_ >= in_.size()) {
      return setError(pos_, "unexpected end of input");
    }
    if (in_[pos_] != 'e') {
      return setError(pos_, "expected 'e' after integer");
    }
    ++pos_;
    out = negative ? acc : -acc;
    return true;
  }

  bool parseList(Value& out, int depth) {
    if (depth > kMaxDepth) {
      return setError(pos_, "nesting deeper than 64 levels");
    }
    ++pos_;  // 'l'
    out = doc_.list();
    Value::List& list = out.list();
    while (true) {
      if (pos_ >= in_.size()) {
        return setError(pos_, "unexpected end of input");
      }
      if (in_[pos_] == 'e') {
        ++pos_;
        return true;
      }
      Value& item = list.emplace_back();
      if (!parseValue(item, depth)) {
        return false;
      }
    }
  }

  bool parseDict(Value& out, int depth) {
    if (depth > kMaxDepth) {
      return setError(pos_, "nesting deeper than 64 levels");
    }
    ++pos_;  // 'd'
    out = doc_.dict();
    Value::Dict& dict = out.dict();
    while (true) {
      if (pos_ >= in_.size()) {
        return setError(pos_, "unexpected end of input");
      }
      const char c = in_[pos_];
      if (c == 'e') {
        ++pos_;
        return true;
      }
      if (!isDigit(c)) {
        if (c == 'i' || c == 'l' || c == 'd') {
          return setError(pos_, "dictionary key is not a string");
        }
        return unexpectedByte(pos_);
      }
      std::string_view key;
      if (!parseString(key)) {
        return false;
      }
      if (pos_ < in_.size() && in_[pos_] == 'e') {
        return setError(pos_, "dictionary key without value");
      }
      auto& entry = dict.emplace_back(key, Value());
      if (!parseValue(entry.second, depth)) {
        return false;
      }
    }
  }

  std::string_view in_;
  Document& doc_;
  size_t pos_ = 0;
  std::optional<Error> error_;
};

size_t decimalDigits(uint64_t v) {
  if (v < 10) {
    return 1;
  }
  if (v < 100) {
    return 2;
  }
  if (v < 1000) {
    return 3;
  }
  size_t n = 1;
  while (v >= 10) {
    v /= 10;
    ++n;
  }
  return n;
}

// Negates in unsigned arithmetic so INT64_MIN is fine.
uint64_t magnitude(int64_t i) {
  return i < 0 ? 0 - static_cast<uint64_t>(i) : static_cast<uint64_t>(i);
}

size_t stringSize(std::string_view s) { return decimalDigits(s.size()) + 1 + s.size(); }

// The writer fills a buffer sized by bencodeSize(): no capacity checks per byte.
char* putUnsigned(char* p, uint64_t v) {
  const size_t n = decimalDigits(v);
  char* q = p + n;
  do {
    *--q = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  return p + n;
}

char* putString(char* p, std::string_view s) {
  p = putUnsigned(p, s.size());
  *p++ = ':';
  if (!s.empty()) {
    std::memcpy(p, s.data(), s.size());
  }
  return p + s.size();
}

char* put(const Value& v, char* p) {
  switch (v.type()) {
    case Value::Type::kNull:
      *p++ = '0';
      *p++ = ':';
      return p;
    case Value::Type::kString:
      return putString(p, v.asString());
    case Value::Type::kInt:
      *p++ = 'i';
      if (v.asInt() < 0) {
        *p++ = '-';
      }
      p = putUnsigned(p, magnitude(v.asInt()));
      *p++ = 'e';
      return p;
    case Value::Type::kList:
      *p++ = 'l';
      for (const Value& item : v.list()) {
        p = put(item, p);
      }
      *p++ = 'e';
      return p;
    case Value::Type::kDict:
      *p++ = 'd';
      for (const auto& [key, item] : v.dict()) {
        p = putString(p, key);
        p = put(item, p);
      }
      *p++ = 'e';
      return p;
  }
  return p;
}

}  // namespace

Result<Value> decodeBencode(std::string_view in, Document& doc) {
  return BencodeParser(in, doc).parseDocument();
}

size_t bencodeSize(const Value& v) {
  switch (v.type()) {
    case Value::Type::kNull:
      return 2;
    case Value::Type::kString:
      return stringSize(v.asString());
    case Value::Type::kInt:
      return decimalDigits(magnitude(v.asInt())) + (v.asInt() < 0 ? 3 : 2);
    case Value::Type::kList: {
      size_t n = 2;
      for (const Value& item : v.list()) {
        n += bencodeSize(item);
      }
      return n;
    }
    case Value::Type::kDict: {
      size_t n = 2;
      for (const auto& [key, item] : v.dict()) {
        n += stringSize(key) + bencodeSize(item);
      }
      return n;
    }
  }
  return 0;
}

void encodeBencode(const Value& v, std::string& out) {
  const size_t old_size = out.size();
  const size_t n = bencodeSize(v);
  out.resize(old_size + n);
  char* end = put(v, out.data() + old_size);
  if (end != out.data() + out.size()) {
    std::abort();  // bencodeSize() and put() disagree: a bug, never input-dependent
  }
}

}  // namespace xems::ng
