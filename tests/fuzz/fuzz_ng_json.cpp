// fuzz-libs: xems_ng_codec
//
// Whatever decodeJson() accepts must re-encode to JSON that decodes to an equal Value (decoded
// strings are valid UTF-8, so nothing is escaped lossily), whose encoding is then a fixed point,
// and must also survive a bencode round trip unchanged.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ctrl/ng/value.h"

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_ng_json: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  xems::ng::Document doc;
  auto first = xems::ng::decodeJson(in, doc);
  if (!first.ok()) {
    if (first.error().message.rfind(xems::ng::kJsonParseError, 0) != 0) {
      fail("error message without the expected prefix");
    }
    return 0;
  }
  std::string json;
  xems::ng::encodeJson(*first, json);
  xems::ng::Document doc2;
  auto second = xems::ng::decodeJson(json, doc2);
  if (!second.ok()) {
    std::fprintf(stderr, "%s\n", json.c_str());
    fail("encodeJson produced JSON that does not parse");
  }
  if (!(*second == *first)) {
    fail("re-decoded value differs");
  }
  std::string json2;
  xems::ng::encodeJson(*second, json2);
  if (json2 != json) {
    fail("JSON encoding is not a fixed point");
  }

  std::string wire;
  xems::ng::encodeBencode(*first, wire);
  xems::ng::Document doc3;
  auto from_bencode = xems::ng::decodeBencode(wire, doc3);
  if (!from_bencode.ok() || !(*from_bencode == *first)) {
    fail("bencode round trip changed the value");
  }
  return 0;
}
