// xemsd: the xems media relay daemon.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "common/config.h"
#include "common/log.h"
#include "ctrl/daemon/daemon.h"

namespace {

bool daemonize() {
  pid_t pid = ::fork();
  if (pid < 0) {
    return false;
  }
  if (pid > 0) {
    std::_Exit(0);
  }
  ::setsid();
  int fd = ::open("/dev/null", O_RDWR);
  if (fd >= 0) {
    ::dup2(fd, 0);
    ::dup2(fd, 1);
    ::close(fd);
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  auto parsed = xems::parseArgs(argc, argv);
  if (!parsed) {
    std::fprintf(stderr, "xemsd: %s\n", parsed.error().message.c_str());
    return 1;
  }
  if (parsed->help) {
    std::fputs(xems::helpText("xemsd").c_str(), stdout);
    return 0;
  }
  if (parsed->version) {
    std::puts("xemsd 0.1.0");
    return 0;
  }
  xems::Config cfg = parsed->config;
  xems::log::init("xemsd");
  if (!xems::log::setLevel(cfg.log_level)) {
    std::fprintf(stderr, "xemsd: bad log-level '%s'\n", cfg.log_level.c_str());
    return 1;
  }
  // Block the signals the control loop reads through signalfd before any thread starts, so
  // media workers inherit the mask and never take them.
  sigset_t mask = xems::controlSignals();
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  if (!cfg.foreground && !daemonize()) {
    std::perror("xemsd: fork");
    return 1;
  }
  std::vector<std::string> args(argv, argv + argc);
  auto daemon = xems::Daemon::create(cfg, args);
  if (!daemon) {
    XLOG_ERROR(kCore, "startup failed: {}", daemon.error().message);
    return 1;
  }
  if (!cfg.pidfile.empty()) {
    std::ofstream(cfg.pidfile) << ::getpid() << "\n";
  }
  XLOG_INFO(kCore, "xemsd running");
  int rc = (*daemon)->run();
  daemon->reset();
  if (!cfg.pidfile.empty()) {
    ::unlink(cfg.pidfile.c_str());
  }
  XLOG_INFO(kCore, "xemsd stopped");
  return rc;
}
