#include "common/config.h"

#include <charconv>
#include <fmt/format.h>
#include <fstream>
#include <sstream>

namespace xems {
namespace {

Result<uint32_t> parseUint(std::string_view name, std::string_view v, uint32_t max) {
  uint64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || p != v.data() + v.size() || n > max) {
    return XEMS_INVALID(fmt::format("option '{}': '{}' is not a number in 0..{}", name, v, max));
  }
  return static_cast<uint32_t>(n);
}

bool parseBool(std::string_view v, bool& out) {
  if (v.empty() || v == "true" || v == "yes" || v == "on" || v == "1") {
    out = true;
    return true;
  }
  if (v == "false" || v == "no" || v == "off" || v == "0") {
    out = false;
    return true;
  }
  return false;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

#define XEMS_UINT_OPT(field, max)                                  \
  [](Config& c, std::string_view v) -> Status {                    \
    auto r = parseUint(#field, v, (max));                          \
    if (!r) {                                                      \
      return std::move(r).error();                                 \
    }                                                              \
    c.field = static_cast<decltype(c.field)>(*r);                  \
    return okStatus();                                             \
  }

#define XEMS_BOOL_OPT(field)                                                     \
  [](Config& c, std::string_view v) -> Status {                                  \
    if (!parseBool(v, c.field)) {                                                \
      return XEMS_INVALID(fmt::format("option '" #field "': bad boolean '{}'", v)); \
    }                                                                            \
    return okStatus();                                                           \
  }

constexpr OptionDef kOptions[] = {
    {"config-file", 0, OptionKind::kValue, "FILE", "Load options from FILE (INI)", false,
     [](Config& c, std::string_view v) -> Status {
       c.config_file = v;
       return okStatus();
     }},
    {"config-section", 0, OptionKind::kValue, "NAME", "INI section to read (default xemsd)", false,
     [](Config& c, std::string_view v) -> Status {
       c.config_section = v;
       return okStatus();
     }},
    {"interface", 'i', OptionKind::kList, "[NAME/]IP[!ADV]",
     "Local media address, optionally named and with an advertised address (repeatable; "
     "';'-separated in the file)",
     false,
     [](Config& c, std::string_view v) -> Status {
       auto r = InterfaceSpec::parse(v);
       if (!r) {
         return std::move(r).error();
       }
       c.interfaces.push_back(std::move(*r));
       return okStatus();
     }},
    {"listen-ng", 'n', OptionKind::kList, "[IP:]PORT", "UDP address for the ng protocol", false,
     [](Config& c, std::string_view v) -> Status {
       auto a = SockAddr::parse(v);
       if (!a || a->port() == 0) {
         return XEMS_INVALID(fmt::format("option 'listen-ng': bad address '{}'", v));
       }
       c.listen_ng.push_back(*a);
       return okStatus();
     }},
    {"port-min", 'm', OptionKind::kValue, "INT", "Lowest media port", false,
     XEMS_UINT_OPT(port_min, 65535)},
    {"port-max", 'M', OptionKind::kValue, "INT", "Highest media port", false,
     XEMS_UINT_OPT(port_max, 65535)},
    {"timeout", 'o', OptionKind::kValue, "SECS", "End a call after SECS without media", true,
     XEMS_UINT_OPT(timeout, 86400 * 365)},
    {"silent-timeout", 's', OptionKind::kValue, "SECS",
     "End an on-hold/inactive call after SECS without media", true,
     XEMS_UINT_OPT(silent_timeout, 86400 * 365)},
    {"final-timeout", 'a', OptionKind::kValue, "SECS", "End any call after SECS (0 = never)", true,
     XEMS_UINT_OPT(final_timeout, 86400 * 365)},
    {"offer-timeout", 0, OptionKind::kValue, "SECS", "End a call unanswered after SECS", true,
     XEMS_UINT_OPT(offer_timeout, 86400 * 365)},
    {"delete-delay", 'd', OptionKind::kValue, "SECS",
     "Keep a deleted call this long for retransmissions", true,
     XEMS_UINT_OPT(delete_delay, 86400)},
    {"num-threads", 0, OptionKind::kValue, "INT", "Media worker threads (0 = one per CPU)", false,
     XEMS_UINT_OPT(num_threads, 1024)},
    {"endpoint-learning", 0, OptionKind::kValue, "off|immediate|delayed|heuristic",
     "How peers' media addresses are learned", true,
     [](Config& c, std::string_view v) -> Status {
       auto e = endpointLearningFromString(v);
       if (!e) {
         return XEMS_INVALID(fmt::format("option 'endpoint-learning': bad value '{}'", v));
       }
       c.endpoint_learning = *e;
       return okStatus();
     }},
    {"strict-source", 0, OptionKind::kValue, "BOOL",
     "Drop packets from any source but the latched one (default true: no RTP bleed)", true,
     XEMS_BOOL_OPT(strict_source)},
    {"max-sessions", 0, OptionKind::kValue, "INT", "Limit on parallel calls (0 = none)", true,
     XEMS_UINT_OPT(max_sessions, 100000000)},
    {"offload", 0, OptionKind::kValue, "auto|on|off",
     "Forward plain RTP in XDP: auto falls back to userspace with a warning, on fails without it",
     false,
     [](Config& c, std::string_view v) -> Status {
       auto o = offloadFromString(v);
       if (!o) {
         return XEMS_INVALID(fmt::format("option 'offload': bad value '{}' (auto, on, off)", v));
       }
       c.offload = *o;
       return okStatus();
     }},
    {"xdp-interface", 0, OptionKind::kList, "IFNAME",
     "Kernel device to run the XDP program on (repeatable; default: the devices owning the "
     "--interface addresses)",
     false,
     [](Config& c, std::string_view v) -> Status {
       if (v.empty() || v.size() >= 16 || v.find('/') != std::string_view::npos) {
         return XEMS_INVALID(fmt::format("option 'xdp-interface': bad device name '{}'", v));
       }
       c.xdp_interfaces.emplace_back(v);
       return okStatus();
     }},
    {"xdp-allow-generic", 0, OptionKind::kValue, "BOOL",
     "Use generic (skb) XDP where the driver has no native XDP (default true)", false,
     XEMS_BOOL_OPT(xdp_allow_generic)},
    {"bpf-pin-root", 0, OptionKind::kValue, "DIR",
     "bpffs directory for this instance's pinned maps and links", false,
     [](Config& c, std::string_view v) -> Status {
       if (v.empty() || v.front() != '/') {
         return XEMS_INVALID(fmt::format("option 'bpf-pin-root': need an absolute path, got '{}'", v));
       }
       c.bpf_pin_root = v;
       return okStatus();
     }},
    {"state-dir", 0, OptionKind::kValue, "DIR",
     "Keep the call journal here so calls survive a restart (default: not kept)", false,
     [](Config& c, std::string_view v) -> Status {
       if (!v.empty() && v.front() != '/') {
         return XEMS_INVALID(fmt::format("option 'state-dir': need an absolute path, got '{}'", v));
       }
       c.state_dir = v;
       return okStatus();
     }},
    {"foreground", 'f', OptionKind::kFlag, "", "Do not daemonize", false, XEMS_BOOL_OPT(foreground)},
    {"pidfile", 'p', OptionKind::kValue, "FILE", "Write the PID to FILE", false,
     [](Config& c, std::string_view v) -> Status {
       c.pidfile = v;
       return okStatus();
     }},
    {"log-level", 'L', OptionKind::kValue, "LEVEL",
     "0..7 (syslog) or trace|debug|info|warn|error", true,
     [](Config& c, std::string_view v) -> Status {
       c.log_level = v;
       return okStatus();
     }},
};

const OptionDef* findOption(std::string_view name) {
  for (const auto& o : kOptions) {
    if (o.name == name) {
      return &o;
    }
  }
  return nullptr;
}

const OptionDef* findShort(char c) {
  for (const auto& o : kOptions) {
    if (o.short_name == c) {
      return &o;
    }
  }
  return nullptr;
}

Status applyOne(Config& cfg, const OptionDef& o, std::string_view value) {
  if (o.kind == OptionKind::kList) {
    // The file form separates list entries with ';' (rtpengine: interface = a;b).
    size_t pos = 0;
    while (pos <= value.size()) {
      size_t semi = value.find(';', pos);
      auto item = trim(value.substr(pos, semi == std::string_view::npos ? value.npos : semi - pos));
      if (!item.empty()) {
        XEMS_TRY_STATUS(o.apply(cfg, item));
      }
      if (semi == std::string_view::npos) {
        break;
      }
      pos = semi + 1;
    }
    return okStatus();
  }
  return o.apply(cfg, value);
}

}  // namespace

std::optional<EndpointLearning> endpointLearningFromString(std::string_view s) {
  if (s == "off") {
    return EndpointLearning::kOff;
  }
  if (s == "immediate") {
    return EndpointLearning::kImmediate;
  }
  if (s == "delayed") {
    return EndpointLearning::kDelayed;
  }
  if (s == "heuristic") {
    return EndpointLearning::kHeuristic;
  }
  return std::nullopt;
}

std::string_view toString(EndpointLearning e) {
  switch (e) {
    case EndpointLearning::kOff:
      return "off";
    case EndpointLearning::kImmediate:
      return "immediate";
    case EndpointLearning::kDelayed:
      return "delayed";
    case EndpointLearning::kHeuristic:
      return "heuristic";
  }
  return "?";
}

Result<InterfaceSpec> InterfaceSpec::parse(std::string_view text) {
  InterfaceSpec spec;
  std::string_view rest = text;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    spec.name = std::string(rest.substr(0, slash));
    rest = rest.substr(slash + 1);
    if (spec.name.empty()) {
      return XEMS_INVALID(fmt::format("interface '{}': empty name before '/'", text));
    }
  }
  std::string_view adv;
  if (auto bang = rest.find('!'); bang != std::string_view::npos) {
    adv = rest.substr(bang + 1);
    rest = rest.substr(0, bang);
  }
  auto local = IpAddr::parse(rest);
  if (!local) {
    return XEMS_INVALID(fmt::format("interface '{}': '{}' is not an IP address", text, rest));
  }
  spec.local = *local;
  spec.advertised = *local;
  if (!adv.empty()) {
    auto a = IpAddr::parse(adv);
    if (!a) {
      return XEMS_INVALID(
          fmt::format("interface '{}': advertised '{}' is not an IP address", text, adv));
    }
    spec.advertised = *a;
  }
  return spec;
}

std::span<const OptionDef> optionTable() { return kOptions; }

Status applyIni(Config& cfg, std::string_view text, std::string_view section,
                std::string_view origin) {
  std::string current;
  bool seen_section = false;
  size_t lineno = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    auto line = trim(text.substr(pos, nl == std::string_view::npos ? text.npos : nl - pos));
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    ++lineno;
    if (line.empty() || line.front() == '#' || line.front() == ';') {
      continue;
    }
    if (line.front() == '[') {
      if (line.back() != ']') {
        return XEMS_INVALID(fmt::format("{}:{}: malformed section header", origin, lineno));
      }
      current = std::string(trim(line.substr(1, line.size() - 2)));
      seen_section |= current == section;
      continue;
    }
    auto eq = line.find('=');
    if (eq == std::string_view::npos) {
      return XEMS_INVALID(fmt::format("{}:{}: expected 'key = value'", origin, lineno));
    }
    if (current != section) {
      continue;
    }
    auto key = trim(line.substr(0, eq));
    auto value = trim(line.substr(eq + 1));
    const OptionDef* o = findOption(key);
    if (o == nullptr || o->name == "config-file") {
      return XEMS_INVALID(fmt::format("{}:{}: unknown option '{}'", origin, lineno, key));
    }
    auto st = applyOne(cfg, *o, value);
    if (!st) {
      return std::move(st).error().wrap(fmt::format("{}:{}", origin, lineno));
    }
  }
  if (!seen_section) {
    return XEMS_INVALID(fmt::format("{}: no [{}] section", origin, section));
  }
  return okStatus();
}

std::optional<Offload> offloadFromString(std::string_view s) {
  if (s == "auto") {
    return Offload::kAuto;
  }
  if (s == "on" || s == "yes" || s == "true") {
    return Offload::kOn;
  }
  if (s == "off" || s == "no" || s == "false") {
    return Offload::kOff;
  }
  return std::nullopt;
}

std::string_view toString(Offload o) {
  switch (o) {
    case Offload::kAuto:
      return "auto";
    case Offload::kOn:
      return "on";
    case Offload::kOff:
      return "off";
  }
  return "?";
}

Status validate(Config& cfg) {
  if (cfg.interfaces.empty()) {
    return XEMS_INVALID("no --interface given");
  }
  if (cfg.listen_ng.empty()) {
    return XEMS_INVALID("no --listen-ng given");
  }
  if (cfg.port_min == 0 || cfg.port_min > cfg.port_max) {
    return XEMS_INVALID(
        fmt::format("port range {}..{} is empty or invalid", cfg.port_min, cfg.port_max));
  }
  uint32_t first_even = cfg.port_min + (cfg.port_min & 1u);  // RTP ports are even
  if (cfg.port_max < first_even + 3) {
    return XEMS_INVALID(fmt::format("port range {}..{} must hold at least two RTP/RTCP pairs",
                                    cfg.port_min, cfg.port_max));
  }
  for (size_t i = 0; i < cfg.interfaces.size(); ++i) {
    if (cfg.interfaces[i].advertised.isAny()) {
      return XEMS_INVALID(fmt::format(
          "interface {}/{}: a wildcard address cannot go into SDP; give the address to "
          "advertise after '!'",
          cfg.interfaces[i].name, cfg.interfaces[i].local.toString()));
    }
    for (size_t j = i + 1; j < cfg.interfaces.size(); ++j) {
      if (cfg.interfaces[i].local == cfg.interfaces[j].local &&
          cfg.interfaces[i].name == cfg.interfaces[j].name) {
        return XEMS_INVALID(fmt::format("interface {}/{} given twice", cfg.interfaces[i].name,
                                        cfg.interfaces[i].local.toString()));
      }
    }
  }
  return okStatus();
}

Result<ParsedArgs> parseArgs(int argc, const char* const* argv) {
  struct Pending {
    const OptionDef* opt;
    std::string value;
  };
  std::vector<Pending> pending;
  ParsedArgs out;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    const OptionDef* o = nullptr;
    std::optional<std::string_view> inline_value;
    if (a == "--help" || a == "-h") {
      out.help = true;
      continue;
    }
    if (a == "--version" || a == "-v") {
      out.version = true;
      continue;
    }
    if (a.substr(0, 2) == "--") {
      auto body = a.substr(2);
      auto eq = body.find('=');
      if (eq != std::string_view::npos) {
        inline_value = body.substr(eq + 1);
        body = body.substr(0, eq);
      }
      o = findOption(body);
    } else if (a.size() >= 2 && a[0] == '-') {
      o = findShort(a[1]);
      if (a.size() > 2) {
        inline_value = a.substr(2);
      }
    }
    if (o == nullptr) {
      return XEMS_INVALID(fmt::format("unknown option '{}' (see --help)", a));
    }
    std::string value;
    if (inline_value) {
      value = *inline_value;
    } else if (o->kind != OptionKind::kFlag) {
      if (i + 1 >= argc) {
        return XEMS_INVALID(fmt::format("option '--{}' needs a value", o->name));
      }
      value = argv[++i];
    }
    pending.push_back({o, std::move(value)});
  }

  Config& cfg = out.config;
  for (const auto& p : pending) {
    if (p.opt->name == "config-file" || p.opt->name == "config-section") {
      XEMS_TRY_STATUS(applyOne(cfg, *p.opt, p.value));
    }
  }
  if (!cfg.config_file.empty()) {
    std::ifstream in(cfg.config_file);
    if (!in) {
      return XEMS_INVALID(fmt::format("cannot read config file '{}'", cfg.config_file));
    }
    std::stringstream ss;
    ss << in.rdbuf();
    XEMS_TRY_STATUS(applyIni(cfg, ss.str(), cfg.config_section, cfg.config_file));
  }
  // Command-line lists replace the file's lists.
  bool cleared_if = false;
  bool cleared_ng = false;
  bool cleared_xdp = false;
  for (const auto& p : pending) {
    if (p.opt->name == "xdp-interface" && !cleared_xdp) {
      cfg.xdp_interfaces.clear();
      cleared_xdp = true;
    }
    if (p.opt->name == "interface" && !cleared_if) {
      cfg.interfaces.clear();
      cleared_if = true;
    }
    if (p.opt->name == "listen-ng" && !cleared_ng) {
      cfg.listen_ng.clear();
      cleared_ng = true;
    }
    if (p.opt->name != "config-file" && p.opt->name != "config-section") {
      auto st = applyOne(cfg, *p.opt, p.value);
      if (!st) {
        return std::move(st).error();
      }
    }
  }
  if (!out.help && !out.version) {
    XEMS_TRY_STATUS(validate(cfg));
  }
  return out;
}

std::string helpText(std::string_view prog) {
  std::string s = fmt::format("Usage: {} [OPTION...]\n\nOptions (also valid as 'key = value' in "
                              "the [xemsd] section of --config-file):\n",
                              prog);
  for (const auto& o : kOptions) {
    std::string flag = o.short_name ? fmt::format("-{}, ", o.short_name) : "    ";
    flag += fmt::format("--{}", o.name);
    if (o.kind != OptionKind::kFlag) {
      flag += fmt::format("={}", o.arg);
    }
    s += fmt::format("  {:<44} {}{}\n", flag, o.help, o.reloadable ? " [reloadable]" : "");
  }
  s += "  -h, --help                                   Show this help\n";
  s += "  -v, --version                                Show the version\n";
  return s;
}

}  // namespace xems
