// bench-libs: xems_ng
// A full ng offer + answer + delete through the real server, session layer and io_uring engine
// (sockets bound, flows added to a worker, removed again): the control-plane cost per call.
#include <benchmark/benchmark.h>

#include <fmt/format.h>

#include "ctrl/ng/ng_server.h"
#include "datapath/uring_engine.h"

namespace {

using namespace xems;

constexpr const char* kOfferSdp =
    "v=0\r\no=- 1545997027 1 IN IP4 198.51.100.1\r\ns=tester\r\nc=IN IP4 198.51.100.1\r\n"
    "t=0 0\r\nm=audio 2000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n";
constexpr const char* kAnswerSdp =
    "v=0\r\no=- 1 1 IN IP4 198.51.100.2\r\ns=-\r\nc=IN IP4 198.51.100.2\r\nt=0 0\r\n"
    "m=audio 3000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";

// Kamailio-shaped requests, encoded with the production codec.
std::string message(std::string_view command, const std::string& call_id) {
  ng::Document doc;
  ng::Value d = doc.dict();
  d.add("command", ng::Value::string(command));
  d.add("call-id", ng::Value::string(call_id));
  d.add("from-tag", ng::Value::string("tag-a"));
  if (command == "offer") {
    d.add("sdp", ng::Value::string(kOfferSdp));
    ng::Value flags = doc.list();
    flags.push(ng::Value::string("trust-address"));
    d.add("flags", flags);
    ng::Value replace = doc.list();
    replace.push(ng::Value::string("origin"));
    d.add("replace", replace);
    ng::Value rf = doc.list();
    rf.push(ng::Value::string("IP4"));
    rf.push(ng::Value::string("198.51.100.1"));
    d.add("received-from", rf);
  } else if (command == "answer") {
    d.add("to-tag", ng::Value::string("tag-b"));
    d.add("sdp", ng::Value::string(kAnswerSdp));
  } else {
    d.add("delete-delay", ng::Value::integer(0));
    ng::Value flags = doc.list();
    flags.push(ng::Value::string("fast"));
    d.add("flags", flags);
  }
  std::string out;
  ng::encodeBencode(d, out);
  return out;
}

void BM_OfferAnswerDelete(benchmark::State& state) {
  auto engine = datapath::UringEngine::create(1);
  if (!engine) {
    state.SkipWithError(engine.error().message.c_str());
    return;
  }
  Config cfg;
  cfg.interfaces.push_back(*InterfaceSpec::parse("127.0.0.1"));
  cfg.port_min = 50000;
  cfg.port_max = 59999;
  cfg.delete_delay = 0;
  session::CallRegistry reg(cfg, **engine);
  ng::NgServer server(reg);
  SockAddr from = *SockAddr::parse("127.0.0.1:5060");
  uint64_t n = 0;
  for (auto _ : state) {
    std::string id = fmt::format("bench-{}", n);
    auto r1 = server.handle(fmt::format("o{} ", n) + message("offer", id), from);
    auto r2 = server.handle(fmt::format("a{} ", n) + message("answer", id), from);
    auto r3 = server.handle(fmt::format("d{} ", n) + message("delete", id), from);
    ++n;
    benchmark::DoNotOptimize(r3.bytes.data());
    if (r1.bytes.find("2:ok") == std::string::npos || r2.bytes.find("2:ok") == std::string::npos) {
      state.SkipWithError((r1.bytes + " / " + r2.bytes).c_str());
      break;
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_OfferAnswerDelete)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
