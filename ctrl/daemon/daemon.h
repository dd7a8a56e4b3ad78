// xemsd's control thread: one epoll loop over the ng sockets, a 1 s timer (timeouts, delete
// delays, rates) and a signalfd (SIGTERM/SIGINT stop, SIGHUP reload). Media runs in the
// datapath's worker threads.
#pragma once

#include <signal.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/result.h"
#include "common/unique_fd.h"
#include "ctrl/ng/ng_server.h"
#include "ctrl/session/call_registry.h"
#include "datapath/bpf/offload.h"
#include "datapath/bpf/xdp_forwarding.h"
#include "datapath/forwarding_table.h"
#include "datapath/netlink/netlink.h"

namespace xems {

// The signals the control loop takes through a signalfd: SIGTERM and SIGINT stop (calls end, XDP
// is detached), SIGQUIT stops and hands the calls to the next xemsd (journal, pinned XDP state
// and its forwarding stay, as after a crash), SIGHUP reloads. main() blocks
// them before any thread starts, so media workers inherit the mask and never take them.
sigset_t controlSignals();

class Daemon {
 public:
  // argv is kept for SIGHUP, which re-reads the config file and the same flags.
  static Result<std::unique_ptr<Daemon>> create(Config cfg, std::vector<std::string> argv);
  ~Daemon();
  // Runs until SIGTERM/SIGINT; returns the process exit code.
  int run();

 private:
  Daemon() = default;
  void reload();
  void onLinkEvents();
  void retryAttach();
  Status openJournal();
  datapath::DatapathInfo datapathInfo() const;

  Config cfg_;
  std::vector<std::string> argv_;
  // XDP (when offload is in use): the loader owns the program, links and maps; xdp_ wraps the
  // userspace engine and is table_ then.
  datapath::bpf::OffloadSetup offload_;
  std::shared_ptr<datapath::bpf::LatchQueue> latch_events_;
  datapath::bpf::XdpForwardingTable* xdp_ = nullptr;
  std::unique_ptr<datapath::nl::LinkMonitor> links_;  // XDP devices coming and going
  std::set<std::string> detached_;                     // XDP devices to (re)attach
  std::unique_ptr<datapath::ForwardingTable> table_;
  UniqueFd state_lock_;                             // flock on <state-dir>/xemsd.lock
  std::unique_ptr<session::StateJournal> journal_;  // outlives registry_ (it erases on end)
  bool keep_state_ = false;                         // SIGQUIT: hand calls to the next run
  bool clean_stop_ = false;                         // SIGTERM/SIGINT: end calls, detach XDP
  std::unique_ptr<session::CallRegistry> registry_;
  std::unique_ptr<ng::NgServer> ng_;
  UniqueFd epoll_;
  UniqueFd timer_;
  UniqueFd signals_;
};

}  // namespace xems
