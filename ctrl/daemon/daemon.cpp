#include "ctrl/daemon/daemon.h"

#include <fmt/format.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <thread>

#include "common/log.h"
#include "datapath/uring_engine.h"

namespace xems {

sigset_t controlSignals() {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  return mask;
}

Result<std::unique_ptr<Daemon>> Daemon::create(Config cfg, std::vector<std::string> argv) {
  std::unique_ptr<Daemon> d(new Daemon());
  d->cfg_ = cfg;
  d->argv_ = std::move(argv);
  uint32_t workers = cfg.num_threads != 0 ? cfg.num_threads
                                          : std::max(1u, std::thread::hardware_concurrency());
  auto engine = datapath::UringEngine::create(workers);
  if (!engine) {
    return std::move(engine).error().wrap("starting io_uring media workers");
  }
  d->table_ = std::move(*engine);
  d->registry_ = std::make_unique<session::CallRegistry>(cfg, *d->table_);
  d->ng_ = std::make_unique<ng::NgServer>(*d->registry_);
  XEMS_TRY_STATUS(d->ng_->listen(cfg.listen_ng));

  d->epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  d->timer_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  sigset_t mask = controlSignals();
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);  // already blocked by main(); harmless again
  d->signals_.reset(::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!d->epoll_ || !d->timer_ || !d->signals_) {
    return XEMS_ERRNO(errno, "epoll/timerfd/signalfd");
  }
  itimerspec its{};
  its.it_interval.tv_sec = 1;
  its.it_value.tv_sec = 1;
  ::timerfd_settime(d->timer_.get(), 0, &its, nullptr);
  auto add = [&](int fd) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    return ::epoll_ctl(d->epoll_.get(), EPOLL_CTL_ADD, fd, &ev);
  };
  for (int fd : d->ng_->fds()) {
    add(fd);
  }
  add(d->timer_.get());
  add(d->signals_.get());
  for (const auto& i : cfg.interfaces) {
    XLOG_INFO(kCore, "interface {}: {} advertised as {}", i.name, i.local.toString(),
              i.advertised.toString());
  }
  for (const auto& a : cfg.listen_ng) {
    XLOG_INFO(kCore, "ng listening on udp {}", a.toString());
  }
  XLOG_INFO(kCore, "{} media worker(s), ports {}-{}", workers, cfg.port_min, cfg.port_max);
  return d;
}

Daemon::~Daemon() {
  registry_.reset();  // removes every flow while the engine still runs
  ng_.reset();
  table_.reset();
}

void Daemon::reload() {
  std::vector<const char*> argv;
  for (const auto& a : argv_) {
    argv.push_back(a.c_str());
  }
  auto parsed = parseArgs(static_cast<int>(argv.size()), argv.data());
  if (!parsed) {
    XLOG_ERROR(kConfig, "SIGHUP: keeping the running configuration: {}", parsed.error().message);
    return;
  }
  const Config& n = parsed->config;
  registry_->reconfigure(n);
  if (!log::setLevel(n.log_level)) {
    XLOG_WARN(kConfig, "SIGHUP: bad log-level '{}'", n.log_level);
  }
  XLOG_INFO(kConfig, "SIGHUP: configuration reloaded (timeouts, learning, limits, log level)");
}

int Daemon::run() {
  epoll_event evs[16];
  for (;;) {
    int n = ::epoll_wait(epoll_.get(), evs, 16, -1);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      XLOG_ERROR(kCore, "epoll_wait: {}", std::strerror(errno));
      return 1;
    }
    for (int i = 0; i < n; ++i) {
      int fd = evs[i].data.fd;
      if (fd == timer_.get()) {
        uint64_t expirations;
        (void)!::read(fd, &expirations, sizeof expirations);
        registry_->tick();
      } else if (fd == signals_.get()) {
        signalfd_siginfo si;
        while (::read(fd, &si, sizeof si) == sizeof si) {
          if (si.ssi_signo == SIGHUP) {
            reload();
          } else {
            XLOG_INFO(kCore, "signal {}: shutting down", si.ssi_signo);
            return 0;
          }
        }
      } else {
        ng_->onReadable(fd);
      }
    }
  }
}

}  // namespace xems
