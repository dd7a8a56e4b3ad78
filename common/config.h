// xemsd configuration: one declarative option table drives the INI file, command-line flags and
// --help. Option names follow rtpengine's where the meaning is the same.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/net.h"
#include "common/result.h"

namespace xems {

enum class EndpointLearning : uint8_t { kOff, kImmediate, kDelayed, kHeuristic };
std::optional<EndpointLearning> endpointLearningFromString(std::string_view s);
std::string_view toString(EndpointLearning e);

// One logical interface address: NAME/IP[!ADVERTISED]. Several entries may share a NAME (one per
// family); `direction` in ng picks interfaces by NAME.
struct InterfaceSpec {
  std::string name = "default";
  IpAddr local;
  IpAddr advertised;  // == local unless given after '!'
  static Result<InterfaceSpec> parse(std::string_view text);
};

// --offload: whether plain streams are forwarded by XDP (datapath/bpf).
enum class Offload : uint8_t { kAuto, kOn, kOff };
std::optional<Offload> offloadFromString(std::string_view s);
std::string_view toString(Offload o);

struct Config {
  std::vector<InterfaceSpec> interfaces;
  std::vector<SockAddr> listen_ng;
  uint16_t port_min = 30000;
  uint16_t port_max = 40000;
  uint32_t timeout = 60;          // s without media before a call is ended
  uint32_t silent_timeout = 3600; // s without media while on hold / inactive
  uint32_t final_timeout = 0;     // absolute cap on call duration, 0 = off
  uint32_t offer_timeout = 3600;  // s a call may stay unanswered
  uint32_t delete_delay = 30;     // s a deleted call lingers for retransmissions
  uint32_t num_threads = 0;       // media workers; 0 = one per CPU
  EndpointLearning endpoint_learning = EndpointLearning::kDelayed;
  bool strict_source = true;      // once latched, drop packets from other sources
  uint32_t max_sessions = 0;      // 0 = unlimited ("Parallel session limit reached")
  // Kernel fast path. auto: XDP when it can be used, else userspace with one warning; on: fail
  // to start without it; off: never load BPF.
  Offload offload = Offload::kAuto;
  // Kernel devices to attach the XDP program to; empty: the devices owning the --interface
  // addresses (loopback excluded).
  std::vector<std::string> xdp_interfaces;
  bool xdp_allow_generic = true;  // fall back to generic (skb) mode where native fails
  // bpffs directory of this instance's pinned maps and links (one instance per directory).
  std::string bpf_pin_root = "/sys/fs/bpf/xems/default";
  // Where the call journal lives (calls survive a crash or restart); "" = not kept.
  std::string state_dir;
  bool foreground = false;
  std::string pidfile;
  std::string log_level = "info";
  std::string config_file;
  std::string config_section = "xemsd";
};

enum class OptionKind : uint8_t { kFlag, kValue, kList };

struct OptionDef {
  std::string_view name;     // long option and INI key
  char short_name;           // 0 if none
  OptionKind kind;
  std::string_view arg;      // placeholder in --help
  std::string_view help;
  bool reloadable;           // applied by SIGHUP without restart
  Status (*apply)(Config&, std::string_view value);
};

std::span<const OptionDef> optionTable();

struct ParsedArgs {
  Config config;
  bool help = false;
  bool version = false;
};

// Loads the config file named by --config-file (if any), then applies command-line flags on top
// (a list option given on the command line replaces the file's list). Validates the result.
Result<ParsedArgs> parseArgs(int argc, const char* const* argv);
// Parses INI text and applies the keys of `section` to cfg. Unknown keys are an error.
Status applyIni(Config& cfg, std::string_view text, std::string_view section,
                std::string_view origin);
Status validate(Config& cfg);
std::string helpText(std::string_view prog);

}  // namespace xems
