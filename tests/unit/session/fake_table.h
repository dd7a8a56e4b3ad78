// An in-memory ForwardingTable for session-layer unit tests: records what the session layer
// programs, owns the sockets it is given. Integration tests use the real io_uring engine.
#pragma once

#include <map>

#include "datapath/forwarding_table.h"

namespace xems::session::testing {

class FakeTable final : public datapath::ForwardingTable {
 public:
  struct Entry {
    datapath::FlowSpec spec;
    UniqueFd fd;
    int updates = 0;
    int relearns = 0;
  };

  Status add(datapath::FlowSpec spec, UniqueFd socket) override {
    if (flows.count(spec.id) != 0) {
      return XEMS_INVALID("duplicate flow");
    }
    auto id = spec.id;
    flows[id] = Entry{std::move(spec), std::move(socket), 0, 0};
    return okStatus();
  }
  Status update(const datapath::FlowSpec& spec, bool relearn) override {
    auto it = flows.find(spec.id);
    if (it == flows.end()) {
      return XEMS_INVALID("unknown flow");
    }
    auto counters = it->second.spec.counters;
    it->second.spec = spec;
    it->second.spec.counters = counters;
    ++it->second.updates;
    it->second.relearns += relearn ? 1 : 0;
    return okStatus();
  }
  void remove(datapath::FlowId id) override { flows.erase(id); }
  void sync() override {}
  uint32_t workerCount() const override { return 2; }

  const Entry* byPort(uint16_t port) const {
    for (const auto& [id, e] : flows) {
      if (e.spec.local.port() == port) {
        return &e;
      }
    }
    return nullptr;
  }

  std::map<datapath::FlowId, Entry> flows;
};

// Time that moves only when a test says so.
struct ManualTime final : TimeSource {
  Clock::time_point t = Clock::time_point(std::chrono::hours(1000));
  int64_t unix_us = 1700000000LL * 1000000;
  Clock::time_point now() const override { return t; }
  int64_t unixMicros() const override {
    return unix_us + std::chrono::duration_cast<std::chrono::microseconds>(
                         t - Clock::time_point(std::chrono::hours(1000)))
                         .count();
  }
  void advance(std::chrono::seconds s) { t += s; }
};

}  // namespace xems::session::testing
