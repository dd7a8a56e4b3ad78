// fuzz-libs: xems_ng_codec
//
// Strict bencode is canonical: whatever decodeBencode() accepts must re-encode to the very same
// bytes, decode again to an equal Value, and survive a trip through JSON (with stray non-UTF-8
// bytes read back as Latin-1, as encodeJson() documents).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ctrl/ng/value.h"

namespace {

using xems::ng::Value;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_bencode: %s\n", what);
  std::abort();
}

// Length of a well-formed UTF-8 sequence at s[i] (s[i] >= 0x80), else 0. Independent of the
// encoder's own check on purpose.
size_t utf8Len(std::string_view s, size_t i) {
  const auto b = [&](size_t k) -> unsigned {
    return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0u;
  };
  const auto cont = [&](size_t k) { return (b(k) & 0xc0) == 0x80; };
  const unsigned c = b(0);
  if (c >= 0xc2 && c <= 0xdf) {
    return cont(1) ? 2 : 0;
  }
  if (c >= 0xe0 && c <= 0xef) {
    const unsigned cp = ((c & 0x0f) << 12) | ((b(1) & 0x3f) << 6) | (b(2) & 0x3f);
    return cont(1) && cont(2) && cp >= 0x800 && (cp < 0xd800 || cp > 0xdfff) ? 3 : 0;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    const unsigned cp =
        ((c & 0x07) << 18) | ((b(1) & 0x3f) << 12) | ((b(2) & 0x3f) << 6) | (b(3) & 0x3f);
    return cont(1) && cont(2) && cont(3) && cp >= 0x10000 && cp <= 0x10ffff ? 4 : 0;
  }
  return 0;
}

// What a JSON reader gets back for `s` after encodeJson().
std::string viaJson(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : utf8Len(s, i);
    if (n != 0) {
      out.append(s.substr(i, n));
      i += n;
      continue;
    }
    out.push_back(static_cast<char>(0xc0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3f)));
    ++i;
  }
  return out;
}

bool sameViaJson(const Value& orig, const Value& back) {
  if (orig.type() != back.type()) {
    return false;
  }
  switch (orig.type()) {
    case Value::Type::kNull:
      return true;
    case Value::Type::kString:
      return viaJson(orig.asString()) == back.asString();
    case Value::Type::kInt:
      return orig.asInt() == back.asInt();
    case Value::Type::kList:
      if (orig.list().size() != back.list().size()) {
        return false;
      }
      for (size_t i = 0; i < orig.list().size(); ++i) {
        if (!sameViaJson(orig.list()[i], back.list()[i])) {
          return false;
        }
      }
      return true;
    case Value::Type::kDict:
      if (orig.dict().size() != back.dict().size()) {
        return false;
      }
      for (size_t i = 0; i < orig.dict().size(); ++i) {
        if (viaJson(orig.dict()[i].first) != back.dict()[i].first ||
            !sameViaJson(orig.dict()[i].second, back.dict()[i].second)) {
          return false;
        }
      }
      return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  xems::ng::Document doc;
  auto first = xems::ng::decodeBencode(in, doc);
  if (!first.ok()) {
    if (first.error().message.rfind("Invalid bencode at offset ", 0) != 0) {
      fail("error message without the expected prefix");
    }
    return 0;
  }
  std::string wire;
  xems::ng::encodeBencode(*first, wire);
  if (wire.size() != xems::ng::bencodeSize(*first)) {
    fail("bencodeSize disagrees with encodeBencode");
  }
  if (wire != in) {
    fail("re-encoding is not byte-identical");
  }
  xems::ng::Document doc2;
  auto second = xems::ng::decodeBencode(wire, doc2);
  if (!second.ok() || !(*second == *first)) {
    fail("re-decoded value differs");
  }

  std::string json;
  xems::ng::encodeJson(*first, json);
  xems::ng::Document doc3;
  auto from_json = xems::ng::decodeJson(json, doc3);
  if (!from_json.ok()) {
    std::fprintf(stderr, "%s\n", json.c_str());
    fail("encodeJson produced JSON that does not parse");
  }
  if (!sameViaJson(*first, *from_json)) {
    fail("JSON round trip changed the value");
  }
  return 0;
}
