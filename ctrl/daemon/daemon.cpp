#include "ctrl/daemon/daemon.h"

#include <fmt/format.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
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
  sigaddset(&mask, SIGQUIT);
  return mask;
}

Result<std::unique_ptr<Daemon>> Daemon::create(Config cfg, std::vector<std::string> argv) {
  std::unique_ptr<Daemon> d(new Daemon());
  d->cfg_ = cfg;
  d->argv_ = std::move(argv);
  uint32_t workers = cfg.num_threads != 0 ? cfg.num_threads
                                          : std::max(1u, std::thread::hardware_concurrency());
  auto offload = datapath::bpf::setUpOffload(cfg);
  if (!offload) {
    return std::move(offload).error();
  }
  d->offload_ = std::move(*offload);
  datapath::EngineOptions eo;
  eo.workers = workers;
  if (d->offload_.loader) {
    auto q = datapath::bpf::LatchQueue::create();
    if (!q) {
      return std::move(q).error();
    }
    d->latch_events_ = *q;
    eo.on_latch = [q = d->latch_events_](datapath::FlowId id) { q->push(id); };
    eo.latch_veto = [maps = &d->offload_.loader->flows()](const datapath::FlowCounters& c) {
      return datapath::bpf::XdpForwardingTable::kernelConfirmed(*maps, c);
    };
  }
  auto engine = datapath::UringEngine::create(eo);
  if (!engine) {
    return std::move(engine).error().wrap("starting io_uring media workers");
  }
  if (d->offload_.loader) {
    auto xdp = std::make_unique<datapath::bpf::XdpForwardingTable>(
        std::move(*engine), d->offload_.loader->flows(), d->latch_events_);
    XEMS_TRY_STATUS(xdp->adoptExisting());
    xdp->setNextHops([hops = d->offload_.next_hops.get()](const SockAddr& src,
                                                          const SockAddr& dst)
                         -> std::optional<datapath::bpf::FixedL2> {
      auto hop = hops->lookup(src.ip(), dst.ip());
      if (!hop) {
        return std::nullopt;
      }
      return datapath::bpf::FixedL2{.ifindex = hop->ifindex, .src_mac = hop->src_mac,
                                    .dst_mac = hop->dst_mac};
    });
    d->xdp_ = xdp.get();
    d->table_ = std::move(xdp);
  } else {
    d->table_ = std::move(*engine);
  }
  d->registry_ = std::make_unique<session::CallRegistry>(cfg, *d->table_);
  d->registry_->setDatapathInfo([raw = d.get()] { return raw->datapathInfo(); });
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
  if (d->latch_events_) {
    add(d->latch_events_->fd());
  }
  if (d->xdp_ != nullptr) {
    auto mon = datapath::nl::LinkMonitor::open();
    if (mon) {
      d->links_ = std::move(*mon);
      add(d->links_->fd());
    } else {
      XLOG_WARN(kCore, "no link/address notifications ({}): re-created devices will not get "
                "XDP again until a restart", mon.error().message);
    }
  }
  // Calls of a previous run come back last, after every step that can fail: a start that fails
  // must leave them (journal, XDP entries) to the next attempt rather than end them.
  if (!cfg.state_dir.empty()) {
    if (Status st = d->openJournal(); !st) {
      d->keep_state_ = true;
      return std::move(st).error();
    }
  }
  if (d->xdp_ != nullptr) {
    d->xdp_->dropUnclaimed();  // entries of a previous run that no restored call took over
  }
  for (const auto& i : cfg.interfaces) {
    XLOG_INFO(kCore, "interface {}: {} advertised as {}", i.name, i.local.toString(),
              i.advertised.toString());
  }
  for (const auto& a : cfg.listen_ng) {
    XLOG_INFO(kCore, "ng listening on udp {}", a.toString());
  }
  XLOG_INFO(kCore, "{} media worker(s), ports {}-{}", workers, cfg.port_min, cfg.port_max);
  if (d->offload_.loader) {
    XLOG_INFO(kCore, "XDP offload on {}, pinned under {}", d->offload_.detail, cfg.bpf_pin_root);
  }
  return d;
}

Status Daemon::openJournal() {
  std::error_code ec;
  std::filesystem::create_directories(cfg_.state_dir, ec);
  if (ec) {
    return XEMS_ERROR(ec, "creating state dir " + cfg_.state_dir);
  }
  const std::string lock = cfg_.state_dir + "/xemsd.lock";
  state_lock_.reset(::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!state_lock_) {
    return XEMS_ERRNO(errno, "opening " + lock);
  }
  if (::flock(state_lock_.get(), LOCK_EX | LOCK_NB) != 0) {
    return XEMS_ERROR(std::make_error_code(std::errc::device_or_resource_busy),
                      "another xemsd uses state dir " + cfg_.state_dir);
  }
  auto journal = session::StateJournal::open(cfg_.state_dir + "/calls.journal");
  if (!journal) {
    return std::move(journal).error();
  }
  journal_ = std::move(*journal);
  auto loaded = journal_->load();
  if (!loaded) {
    return std::move(loaded).error().wrap("reading the call journal");
  }
  registry_->setJournal(journal_.get());
  size_t n = registry_->restore(loaded->calls);
  if (n != 0 || loaded->bad_lines != 0) {
    XLOG_INFO(kCore, "restored {} of {} journalled call(s) from {} ({} unreadable line(s))", n,
              loaded->calls.size(), journal_->path(), loaded->bad_lines);
  }
  return okStatus();
}

Daemon::~Daemon() {
  if (keep_state_) {
    // The calls stay with the journal and the pinned maps for the next run: nothing is erased.
    // Their latches as of now go into the journal first.
    if (registry_) {
      registry_->persistAll();
      registry_->setJournal(nullptr);
    }
    if (xdp_ != nullptr) {
      xdp_->keepEntriesOnRemove();
    }
  }
  registry_.reset();  // removes every flow while the engine still runs
  ng_.reset();
  table_.reset();
  if (clean_stop_) {
    if (journal_) {
      (void)journal_->clear();
    }
    if (offload_.loader) {
      auto st = offload_.loader->detachAll();
      if (!st) {
        XLOG_WARN(kCore, "detaching XDP: {}", st.error().message);
      }
    }
  }
}

datapath::DatapathInfo Daemon::datapathInfo() const {
  datapath::DatapathInfo info;
  info.detail = offload_.detail;
  info.offload_fallback = offload_.fallback_reason.empty() ? 0 : 1;
  if (xdp_ == nullptr) {
    return info;
  }
  info.mode = "xdp";
  auto counters = offload_.loader->flows().counters();
  if (counters.ok()) {
    for (uint32_t i = 0; i < counters->size(); ++i) {
      info.counters.emplace_back(std::string(datapath::bpf::counterName(i)), (*counters)[i].packets);
    }
  }
  const auto& st = xdp_->offloadStats();
  info.counters.emplace_back("map_upserts", st.upserts);
  info.counters.emplace_back("map_upsert_errors", st.upsert_errors);
  info.counters.emplace_back("map_erases", st.erases);
  info.counters.emplace_back("confirmed_by_kernel", st.confirmed);
  info.counters.emplace_back("rejected_latches", st.rejected_latches);
  info.counters.emplace_back("adopted_after_restart", st.adopted);
  info.counters.emplace_back("no_stats_slot", st.no_stats_slot);
  info.counters.emplace_back("late_stats_slot", st.late_stats_slot);
  if (offload_.next_hops) {
    info.counters.emplace_back("next_hop_route_queries", offload_.next_hops->route_queries());
    info.counters.emplace_back("next_hop_neighbour_probes", offload_.next_hops->kicks());
    info.counters.emplace_back("next_hop_failures", offload_.next_hops->failures());
  }
  return info;
}

void Daemon::retryAttach() {
  for (auto it = detached_.begin(); it != detached_.end();) {
    auto link = datapath::nl::linkByName(*it);
    if (!link) {
      ++it;  // not back yet
      continue;
    }
    // A device that just appeared may refuse XDP for a moment (still being set up): the next
    // link event or tick tries again.
    auto r = offload_.loader->reattach(*it, link->ifindex);
    if (!r) {
      XLOG_DEBUG(kCore, "XDP device {} (ifindex {}): attach failed, retrying: {}", *it,
                 link->ifindex, r.error().message);
      ++it;
      continue;
    }
    if (*r) {
      XLOG_INFO(kCore, "XDP device {} is back (ifindex {}): XDP attached again", *it,
                link->ifindex);
    }
    it = detached_.erase(it);
  }
}

void Daemon::onLinkEvents() {
  bool relevant = false;
  for (const auto& ev : links_->drain()) {
    using Kind = datapath::nl::LinkMonitor::Event::Kind;
    const auto& atts = offload_.loader->attachments();
    const bool ours = std::any_of(atts.begin(), atts.end(),
                                  [&](const auto& a) { return a.ifname == ev.ifname; });
    relevant = relevant || ours || ev.kind == Kind::kOverrun || ev.kind == Kind::kAddrNew ||
               ev.kind == Kind::kAddrDel;
    if (ev.kind == Kind::kLinkDel && ours) {
      XLOG_WARN(kCore, "XDP device {} is gone; it gets XDP again when it comes back", ev.ifname);
      detached_.insert(ev.ifname);
    } else if (ev.kind == Kind::kLinkNew && ours) {
      detached_.insert(ev.ifname);  // checked below: cheap if it is still attached
    }
  }
  retryAttach();
  if (relevant && offload_.next_hops) {
    // Routes, neighbours and devices may have changed under the entries: check them all now.
    offload_.next_hops->forgetRoutes();
    offload_.next_hops->refresh();
    xdp_->poll();
  }
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
        if (offload_.next_hops) {
          if (!detached_.empty()) {
            retryAttach();
          }
          offload_.next_hops->refresh();  // routes and neighbours for this tick's re-check
        }
        registry_->tick();
      } else if (links_ && fd == links_->fd()) {
        onLinkEvents();
      } else if (latch_events_ && fd == latch_events_->fd()) {
        xdp_->onLatchEvents();
      } else if (fd == signals_.get()) {
        signalfd_siginfo si;
        while (::read(fd, &si, sizeof si) == sizeof si) {
          if (si.ssi_signo == SIGHUP) {
            reload();
          } else if (si.ssi_signo == SIGQUIT) {
            XLOG_INFO(kCore, "SIGQUIT: exiting, calls and XDP forwarding stay for the next run");
            keep_state_ = true;
            return 0;
          } else {
            XLOG_INFO(kCore, "signal {}: shutting down", si.ssi_signo);
            clean_stop_ = true;
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
