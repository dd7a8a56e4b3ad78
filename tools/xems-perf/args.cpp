#include "tools/xems-perf/args.h"

#include <charconv>
#include <cstdlib>

#include <fmt/format.h>

namespace xems::perf {

Result<Args> Args::parse(int argc, char** argv, int first, const std::vector<OptionSpec>& specs) {
  Args args;
  for (int i = first; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg.size() < 3 || arg.substr(0, 2) != "--") {
      return XEMS_INVALID(fmt::format("unexpected argument '{}'", arg));
    }
    arg.remove_prefix(2);
    std::optional<std::string_view> inline_value;
    if (const size_t eq = arg.find('='); eq != std::string_view::npos) {
      inline_value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    }
    const OptionSpec* spec = nullptr;
    for (const OptionSpec& s : specs) {
      if (s.name == arg) {
        spec = &s;
        break;
      }
    }
    if (spec == nullptr) {
      return XEMS_INVALID(fmt::format("unknown option '--{}'", arg));
    }
    if (spec->value_name.empty()) {
      if (inline_value) {
        return XEMS_INVALID(fmt::format("option '--{}' takes no value", arg));
      }
      args.values_[std::string(arg)] = "";
      continue;
    }
    if (inline_value) {
      args.values_[std::string(arg)] = std::string(*inline_value);
    } else if (i + 1 < argc) {
      args.values_[std::string(arg)] = argv[++i];
    } else {
      return XEMS_INVALID(fmt::format("option '--{}' needs a value", arg));
    }
  }
  return args;
}

std::string Args::usage(std::string_view command, std::string_view summary,
                        const std::vector<OptionSpec>& specs) {
  std::string out =
      fmt::format("usage: xems-perf {} [options]\n{}\n\noptions:\n", command, summary);
  for (const OptionSpec& s : specs) {
    std::string left = fmt::format("--{}", s.name);
    if (!s.value_name.empty()) {
      left += fmt::format(" {}", s.value_name);
    }
    out += fmt::format("  {:<28} {}\n", left, s.help);
  }
  return out;
}

bool Args::has(std::string_view name) const { return values_.find(name) != values_.end(); }

std::string_view Args::str(std::string_view name, std::string_view fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : std::string_view(it->second);
}

Result<int64_t> Args::integer(std::string_view name, int64_t fallback) const {
  auto it = values_.find(name);
  if (it == values_.end()) {
    return fallback;
  }
  auto r = parseInt(it->second);
  if (!r.ok()) {
    return std::move(r).error().wrap(fmt::format("--{}", name));
  }
  return r;
}

Result<double> Args::number(std::string_view name, double fallback) const {
  auto it = values_.find(name);
  if (it == values_.end()) {
    return fallback;
  }
  auto r = parseDouble(it->second);
  if (!r.ok()) {
    return std::move(r).error().wrap(fmt::format("--{}", name));
  }
  return r;
}

Result<int64_t> parseInt(std::string_view text) {
  int64_t v = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, v);
  if (ec != std::errc() || p != end || text.empty()) {
    return XEMS_INVALID(fmt::format("'{}' is not an integer", text));
  }
  return v;
}

Result<double> parseDouble(std::string_view text) {
  // from_chars for double is in libstdc++ 11+, which g++ 12 and clang 14 (with libstdc++) use.
  double v = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, v);
  if (ec != std::errc() || p != end || text.empty()) {
    return XEMS_INVALID(fmt::format("'{}' is not a number", text));
  }
  return v;
}

std::vector<std::string_view> splitList(std::string_view text, char sep) {
  std::vector<std::string_view> out;
  while (!text.empty()) {
    const size_t pos = text.find(sep);
    out.push_back(text.substr(0, pos));
    if (pos == std::string_view::npos) {
      break;
    }
    text.remove_prefix(pos + 1);
  }
  return out;
}

Result<ProbeShape> parseProbeShape(const Args& a) {
  auto payload = a.integer("payload-bytes", 160);
  auto ptime = a.integer("ptime", 20);
  if (!payload.ok()) {
    return payload.error();
  }
  if (!ptime.ok()) {
    return ptime.error();
  }
  if (*payload < 24 || *payload > 1400) {
    return XEMS_INVALID("--payload-bytes must be 24..1400");
  }
  if (*ptime < 1 || *ptime > 1000) {
    return XEMS_INVALID("--ptime must be 1..1000 ms");
  }
  return ProbeShape{.payload = static_cast<size_t>(*payload),
                    .ptime_ms = static_cast<uint32_t>(*ptime)};
}

}  // namespace xems::perf
