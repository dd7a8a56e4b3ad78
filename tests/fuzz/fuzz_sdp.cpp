// fuzz-libs: xems_sdp
// Parse arbitrary input; on success, write, re-parse and write again: the two writes must be
// identical (the writer's output is a fixed point of parse+write). Also runs every read-only
// helper so their parsing code sees fuzzed attribute values.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ctrl/sdp/sdp.h"

namespace {

void exerciseHelpers(const xems::sdp::Session& s) {
  size_t sink = 0;
  for (const auto& m : s.media) {
    sink += static_cast<size_t>(s.effectiveDirection(m));
    sink += s.effectiveConnection(m) != nullptr;
    if (const auto* c = s.effectiveConnection(m)) {
      sink += c->isZero();
    }
    if (auto r = m.rtcp()) {
      sink += r->port + xems::sdp::formatRtcp(*r).size();
    }
    for (const auto& c : m.codecs()) {
      sink += c.fmtp.size() + c.rtcp_fb.size();
      if (auto map = c.rtpMap()) {
        sink += xems::sdp::formatRtpMap(*map).size();
      }
    }
    for (const auto& f : m.formats) {
      sink += m.fmtp(f).has_value() + m.rtcpFb(f).size() + m.rtpMap(f).has_value();
    }
    for (const auto& a : m.attributes) {
      sink += xems::sdp::isIceAttribute(a.name);
    }
  }
  if (sink == 0xdeadbeef) {
    std::puts("");  // keep `sink` observable
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto first = xems::sdp::parse(in);
  if (!first.ok()) {
    if (first.error().message.rfind("Failed to parse SDP: ", 0) != 0) {
      std::abort();
    }
    return 0;
  }
  exerciseHelpers(*first);
  std::string w1 = xems::sdp::write(*first);
  if (w1.size() > xems::sdp::kMaxSdpSize) {
    return 0;  // CRLF conversion may push a near-limit input over the size limit
  }
  auto second = xems::sdp::parse(w1);
  if (!second.ok()) {
    std::fprintf(stderr, "re-parse failed: %s\n", second.error().message.c_str());
    std::abort();
  }
  std::string w2 = xems::sdp::write(*second);
  if (w1 != w2) {
    std::fprintf(stderr, "writes differ:\n--- first\n%s\n--- second\n%s\n", w1.c_str(), w2.c_str());
    std::abort();
  }
  return 0;
}
