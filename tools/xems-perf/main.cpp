// xems-perf: benchmarks for xemsd and rtpengine alike.
//   ng       control-plane ops/s and latency (offer + answer + delete per call)
//   relay    RTP through a relay set up over ng; exact loss; optional max-rate search
//   gen      paced RTP generator (standalone)
//   sink     RTP sink with exact per-stream accounting (standalone)
//   ping     wait for an ng "pong"
//   selftest check the harness's own counters
#include <cstdio>
#include <exception>
#include <string_view>

#include <fmt/format.h>

#include "tools/xems-perf/commands.h"

namespace {

void usage() {
  fmt::print(stderr,
             "usage: xems-perf <command> [options]   (xems-perf <command> --help)\n"
             "  ng        ng control-plane benchmark: offer+answer+delete cycles per second\n"
             "  relay     set up calls over ng, push RTP through the relay, count loss exactly\n"
             "  gen       paced RTP generator\n"
             "  sink      RTP sink with per-stream loss/duplicate/reorder counts\n"
             "  ping      wait until an ng server answers pong\n"
             "  selftest  check the harness itself (no relay, no privileges)\n");
}

}  // namespace

int main(int argc, char** argv) {
  using namespace xems::perf;
  if (argc < 2) {
    usage();
    return kExitUsage;
  }
  const std::string_view cmd = argv[1];
  // Exceptions are not used for control flow; this only turns an unexpected one (bad_alloc) into
  // a clean exit instead of terminate(). Packet loops catch their own.
  try {
    if (cmd == "ng") {
      return runNgBench(argc, argv, 2);
    }
    if (cmd == "relay") {
      return runRelay(argc, argv, 2);
    }
    if (cmd == "gen") {
      return runGen(argc, argv, 2);
    }
    if (cmd == "sink") {
      return runSink(argc, argv, 2);
    }
    if (cmd == "ping") {
      return runPing(argc, argv, 2);
    }
    if (cmd == "selftest") {
      return runSelftest(argc, argv, 2);
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "xems-perf {}: {}\n", cmd, e.what());
    return kExitUsage;
  }
  usage();
  return cmd == "--help" || cmd == "help" ? kExitOk : kExitUsage;
}
