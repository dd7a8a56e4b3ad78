// fuzz-libs: xems_session
// callFromJson() on arbitrary JSON (a hostile or corrupt state journal): a clear error or a call,
// never a crash; an accepted call must serialise to a record that is accepted again and
// serialises the same (what a second restart would read).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "ctrl/session/call_state.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<xems::InterfaceSpec> interfaces = {
      *xems::InterfaceSpec::parse("default/127.0.0.1!203.0.113.1"),
      *xems::InterfaceSpec::parse("default/::1"), *xems::InterfaceSpec::parse("pub/192.0.2.1")};
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return 0;
  }
  const auto now = xems::session::Clock::now();
  auto call = xems::session::callFromJson(j, interfaces, now);
  if (!call.ok()) {
    if (call.error().message.empty()) {
      __builtin_trap();  // every error must say what is wrong
    }
    return 0;
  }
  const auto again = xems::session::callToJson(**call, now);
  auto second = xems::session::callFromJson(again, interfaces, now);
  if (!second.ok() || xems::session::callToJson(**second, now) != again) {
    std::abort();
  }
  return 0;
}
