// JSON flavour of the ng protocol: nlohmann::json's SAX parser feeds Values into the Document's
// arena (no DOM, no recursion in the parser, depth checked on every container), and a small
// writer produces JSON with escaping suited to binary-safe ng strings.
#include <array>
#include <charconv>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

#include "ctrl/ng/value.h"

namespace xems::ng {
namespace {

static_assert(kMaxDepth == 64, "the nesting error message spells out the limit");

class SaxBuilder {
 public:
  using Json = nlohmann::json;

  explicit SaxBuilder(Document& doc) : doc_(doc) {}

  bool null() { return addValue(Value::string({})); }
  bool boolean(bool val) { return addValue(Value::string(val ? "true" : "false")); }
  bool number_integer(Json::number_integer_t val) {  // NOLINT(readability-identifier-naming)
    return addValue(Value::integer(val));
  }
  bool number_unsigned(Json::number_unsigned_t val) {  // NOLINT(readability-identifier-naming)
    if (val <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return addValue(Value::integer(static_cast<int64_t>(val)));
    }
    // Beyond int64: keep the text, as for other numbers we cannot hold exactly.
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, val);
    (void)ec;
    return addValue(Value::string(doc_.intern(std::string_view(buf, end - buf))));
  }
  bool number_float(Json::number_float_t, const Json::string_t& text) {  // NOLINT
    return addValue(Value::string(doc_.intern(text)));
  }
  bool string(Json::string_t& val) { return addValue(Value::string(doc_.intern(val))); }
  bool binary(Json::binary_t&) { return false; }  // not produced by the JSON lexer
  bool start_object(std::size_t) {  // NOLINT(readability-identifier-naming)
    return openContainer(doc_.dict());
  }
  bool key(Json::string_t& val) {
    key_ = doc_.intern(val);
    return true;
  }
  bool end_object() {  // NOLINT(readability-identifier-naming)
    --depth_;
    return true;
  }
  bool start_array(std::size_t) {  // NOLINT(readability-identifier-naming)
    return openContainer(doc_.list());
  }
  bool end_array() {  // NOLINT(readability-identifier-naming)
    --depth_;
    return true;
  }
  bool parse_error(std::size_t, const std::string&,  // NOLINT(readability-identifier-naming)
                   const nlohmann::detail::exception&) {
    return false;
  }

  bool tooDeep() const { return too_deep_; }
  const Value& root() const { return root_; }

 private:
  bool openContainer(Value container) {
    if (depth_ >= kMaxDepth) {
      too_deep_ = true;
      return false;
    }
    if (!addValue(container)) {
      return false;
    }
    stack_[depth_++] = container;  // a handle: shares the vector with the copy in the parent
    return true;
  }

  bool addValue(Value v) {
    if (depth_ == 0) {
      root_ = v;
    } else if (stack_[depth_ - 1].isDict()) {
      stack_[depth_ - 1].add(key_, v);
    } else {
      stack_[depth_ - 1].push(v);
    }
    return true;
  }

  Document& doc_;
  Value root_;
  Value stack_[kMaxDepth];
  int depth_ = 0;
  std::string_view key_;
  bool too_deep_ = false;
};

// Length of the well-formed UTF-8 sequence (RFC 3629: no overlongs, no surrogates, nothing above
// U+10FFFF) starting at s[i] with s[i] >= 0x80, or 0 if there is none.
size_t utf8SequenceLength(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) -> unsigned {
    return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0u;
  };
  const auto cont = [](unsigned b) { return b >= 0x80 && b <= 0xbf; };
  const unsigned b0 = byte(0);
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    return cont(byte(1)) ? 2 : 0;
  }
  if (b0 >= 0xe0 && b0 <= 0xef) {
    const unsigned lo = b0 == 0xe0 ? 0xa0 : 0x80;
    const unsigned hi = b0 == 0xed ? 0x9f : 0xbf;
    const unsigned b1 = byte(1);
    return b1 >= lo && b1 <= hi && cont(byte(2)) ? 3 : 0;
  }
  if (b0 >= 0xf0 && b0 <= 0xf4) {
    const unsigned lo = b0 == 0xf0 ? 0x90 : 0x80;
    const unsigned hi = b0 == 0xf4 ? 0x8f : 0xbf;
    const unsigned b1 = byte(1);
    return b1 >= lo && b1 <= hi && cont(byte(2)) && cont(byte(3)) ? 4 : 0;
  }
  return 0;
}

void appendEscapedByte(std::string& out, unsigned char c) {
  static constexpr char kHex[] = "0123456789abcdef";
  const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
  out.append(esc, sizeof esc);
}

// Printable ASCII other than '"' and '\\': copied as is without further checks.
constexpr auto kPlainAscii = [] {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x80; ++c) {
    t[c] = c != '"' && c != '\\';
  }
  return t;
}();

void appendJsonString(std::string& out, std::string_view s) {
  out.push_back('"');
  size_t run = 0;  // start of the pending run of bytes copied verbatim
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (kPlainAscii[c]) {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      const size_t n = utf8SequenceLength(s, i);
      if (n != 0) {
        i += n;
        continue;
      }
    }
    out.append(s.data() + run, i - run);
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\b':
        out.append("\\b");
        break;
      case '\f':
        out.append("\\f");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      default:
        appendEscapedByte(out, c);  // other control characters and stray non-UTF-8 bytes
        break;
    }
    run = ++i;
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

void writeJson(const Value& v, std::string& out) {
  switch (v.type()) {
    case Value::Type::kNull:
      out.append("null");
      return;
    case Value::Type::kString:
      appendJsonString(out, v.asString());
      return;
    case Value::Type::kInt: {
      char buf[24];
      auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v.asInt());
      (void)ec;
      out.append(buf, end);
      return;
    }
    case Value::Type::kList: {
      out.push_back('[');
      bool first = true;
      for (const Value& item : v.list()) {
        if (!first) {
          out.push_back(',');
        }
        first = false;
        writeJson(item, out);
      }
      out.push_back(']');
      return;
    }
    case Value::Type::kDict: {
      out.push_back('{');
      bool first = true;
      for (const auto& [key, item] : v.dict()) {
        if (!first) {
          out.push_back(',');
        }
        first = false;
        appendJsonString(out, key);
        out.push_back(':');
        writeJson(item, out);
      }
      out.push_back('}');
      return;
    }
  }
}

}  // namespace

Result<Value> decodeJson(std::string_view in, Document& doc) {
  // nlohmann's lexer reads a NUL byte as end of input (for C strings), which would let anything
  // after it through. A raw NUL is never valid JSON (not even inside a string), so refuse it.
  if (in.find('\0') != std::string_view::npos) {
    return XEMS_INVALID(std::string(kJsonParseError));
  }
  SaxBuilder builder(doc);
  bool ok = false;
  try {
    ok = nlohmann::json::sax_parse(in.data(), in.data() + in.size(), &builder);
  } catch (...) {  // nothing may escape: parse errors, allocation failures alike
    ok = false;
  }
  if (builder.tooDeep()) {
    return XEMS_INVALID(std::string(kJsonParseError) + ": nesting deeper than 64 levels");
  }
  if (!ok) {
    return XEMS_INVALID(std::string(kJsonParseError));
  }
  return builder.root();
}

void encodeJson(const Value& v, std::string& out) {
  // The bencode size is a close, cheap estimate (JSON adds quotes and separators, drops the
  // length prefixes).
  const size_t estimate = bencodeSize(v);
  out.reserve(out.size() + estimate + estimate / 8 + 16);
  writeJson(v, out);
}

}  // namespace xems::ng
