// fuzz-libs: xems_common
// The INI config parser and the option setters on arbitrary files: clear errors, no crash.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  xems::Config cfg;
  auto st = xems::applyIni(cfg, text, "xemsd", "fuzz.conf");
  if (st.ok()) {
    (void)xems::validate(cfg);
  } else if (st.error().message.empty()) {
    __builtin_trap();  // every error must say what is wrong
  }
  return 0;
}
