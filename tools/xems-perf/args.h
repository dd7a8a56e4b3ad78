// A small declarative command-line parser for the xems-perf subcommands.
//
// Each subcommand lists its options once (name, whether it takes a value, help text); the same
// table drives parsing, validation of unknown options and --help. Conversions use from_chars, so
// bad input is a reported error and never an exception.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace xems::perf {

struct OptionSpec {
  std::string_view name;  // without the leading "--"
  std::string_view value_name;  // empty: a flag without a value
  std::string_view help;
};

class Args {
 public:
  // Parses argv[first..argc) against specs. "--name=value", "--name value" and "--flag".
  static Result<Args> parse(int argc, char** argv, int first, const std::vector<OptionSpec>& specs);
  static std::string usage(std::string_view command, std::string_view summary,
                           const std::vector<OptionSpec>& specs);

  bool has(std::string_view name) const;
  // A view of the stored value (valid as long as this Args), or `fallback`.
  std::string_view str(std::string_view name, std::string_view fallback = "") const;
  // Typed getters: the fallback when absent, an Error when present but malformed.
  Result<int64_t> integer(std::string_view name, int64_t fallback) const;
  Result<double> number(std::string_view name, double fallback) const;

 private:
  std::map<std::string, std::string, std::less<>> values_;
};

// --payload-bytes and --ptime of the generating subcommands: RTP payload size and packet time
// (the RTP timestamp step is 8 kHz x ptime; the rate per stream stays its own option).
struct ProbeShape {
  size_t payload = 160;
  uint32_t ptime_ms = 20;
  uint32_t tsStep() const { return 8 * ptime_ms; }
};
inline constexpr OptionSpec kPayloadOption = {
    "payload-bytes", "N", "RTP payload bytes per packet, 24..1400 (default 160: G.711 20 ms)"};
inline constexpr OptionSpec kPtimeOption = {
    "ptime", "MS", "packet time: RTP timestamp step 8 x MS and a=ptime in the SDP (default 20)"};
Result<ProbeShape> parseProbeShape(const Args& a);

Result<int64_t> parseInt(std::string_view text);
Result<double> parseDouble(std::string_view text);
std::vector<std::string_view> splitList(std::string_view text, char sep);

}  // namespace xems::perf
