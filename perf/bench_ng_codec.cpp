// bench-libs: xems_ng_codec
//
// ng codec cost per message: a realistic Kamailio offer (bencode, ~600-byte SDP, flags, replace
// and received-from lists) and rtpengine's reply to it, in bencode and JSON.
#include <benchmark/benchmark.h>

#include <string>
#include <string_view>

#include "ctrl/ng/value.h"

namespace xems::ng {
namespace {

constexpr std::string_view kSdp =
    "v=0\r\n"
    "o=root 1897328613 1897328613 IN IP4 198.51.100.23\r\n"
    "s=Asterisk PBX 18.10.0\r\n"
    "c=IN IP4 198.51.100.23\r\n"
    "t=0 0\r\n"
    "m=audio 17450 RTP/AVP 8 0 9 18 3 101\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:9 G722/8000\r\n"
    "a=rtpmap:18 G729/8000\r\n"
    "a=fmtp:18 annexb=no\r\n"
    "a=rtpmap:3 GSM/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-16\r\n"
    "a=ptime:20\r\n"
    "a=maxptime:150\r\n"
    "a=sendrecv\r\n"
    "a=rtcp:17451 IN IP4 198.51.100.23\r\n"
    "a=ssrc:3735928559 cname:4f6b1c2a-9e0d-4c1b-8f3a-2d5e6f708192\r\n"
    "a=ssrc:3735928559 msid:stream0 track0\r\n"
    "m=video 17452 RTP/AVP 96 97\r\n"
    "a=rtpmap:96 H264/90000\r\n"
    "a=fmtp:96 profile-level-id=42e01f;packetization-mode=1\r\n"
    "a=rtpmap:97 VP8/90000\r\n"
    "a=rtcp-fb:96 nack pli\r\n"
    "a=sendrecv\r\n";

std::string benStr(std::string_view s) { return std::to_string(s.size()) + ":" + std::string(s); }

// Field order as Kamailio's rtpengine module emits it.
std::string offerBencode() {
  std::string m = "d";
  m += benStr("supports") + "l" + benStr("load limit") + "e";
  m += benStr("sdp") + benStr(kSdp);
  m += benStr("call-id") + benStr("0ba2cf53-9a78-41de-8fe6-f5d8a7bcd0a9@192.0.2.10");
  m += benStr("via-branch") + benStr("z9hG4bK.aB3dEfGh1");
  m += benStr("received-from") + "l" + benStr("IP4") + benStr("192.0.2.10") + "e";
  m += benStr("from-tag") + benStr("as5f3c7e12");
  m += benStr("flags") + "l" + benStr("trust-address") + benStr("strict-source") +
       benStr("loop-protect") + benStr("SIP-source-address") + "e";
  m += benStr("replace") + "l" + benStr("origin") + benStr("session-connection") + "e";
  m += benStr("transport-protocol") + benStr("RTP/AVP");
  m += benStr("ICE") + benStr("remove");
  m += benStr("direction") + "l" + benStr("external") + benStr("internal") + "e";
  m += benStr("sip-message-type") + benStr("sip-request");
  m += benStr("command") + benStr("offer");
  m += "e";
  return m;
}

std::string replyBencode() {
  std::string sdp(kSdp);
  sdp.replace(sdp.find("Asterisk"), 8, "xemsrelay");
  std::string m = "d";
  m += benStr("sdp") + benStr(sdp);
  m += benStr("result") + benStr("ok");
  m += "e";
  return m;
}

std::string toJson(const std::string& bencode) {
  Document doc;
  auto v = decodeBencode(bencode, doc);
  std::string out;
  if (v.ok()) {
    encodeJson(*v, out);
  }
  return out;
}

void setBytes(benchmark::State& state, size_t bytes) {
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
}

void BM_DecodeOfferBencode(benchmark::State& state) {
  const std::string in = offerBencode();
  for (auto _ : state) {
    Document doc;
    auto v = decodeBencode(in, doc);
    benchmark::DoNotOptimize(v);
  }
  setBytes(state, in.size());
  state.counters["msg_bytes"] = static_cast<double>(in.size());
}
BENCHMARK(BM_DecodeOfferBencode);

// What the server does first: decode and look up the keys every offer needs.
void BM_DecodeOfferBencodeAndLookup(benchmark::State& state) {
  const std::string in = offerBencode();
  for (auto _ : state) {
    Document doc;
    auto v = decodeBencode(in, doc);
    auto cmd = v->findString("command");
    auto cid = v->findString("call-id");
    auto tag = v->findString("from-tag");
    auto sdp = v->findString("sdp");
    const Value* flags = v->find("flags");
    benchmark::DoNotOptimize(cmd);
    benchmark::DoNotOptimize(cid);
    benchmark::DoNotOptimize(tag);
    benchmark::DoNotOptimize(sdp);
    benchmark::DoNotOptimize(flags);
  }
  setBytes(state, in.size());
}
BENCHMARK(BM_DecodeOfferBencodeAndLookup);

void BM_EncodeOfferBencode(benchmark::State& state) {
  const std::string in = offerBencode();
  Document doc;
  const Value v = *decodeBencode(in, doc);
  std::string out;
  for (auto _ : state) {
    out.clear();  // a per-thread buffer reused across requests
    encodeBencode(v, out);
    benchmark::DoNotOptimize(out.data());
  }
  setBytes(state, in.size());
}
BENCHMARK(BM_EncodeOfferBencode);

void BM_DecodeReplyBencode(benchmark::State& state) {
  const std::string in = replyBencode();
  for (auto _ : state) {
    Document doc;
    auto v = decodeBencode(in, doc);
    benchmark::DoNotOptimize(v);
  }
  setBytes(state, in.size());
  state.counters["msg_bytes"] = static_cast<double>(in.size());
}
BENCHMARK(BM_DecodeReplyBencode);

// Building the reply in a fresh Document and encoding it into a fresh string, as a reply is sent.
void BM_BuildAndEncodeReplyBencode(benchmark::State& state) {
  const std::string sdp(kSdp);
  for (auto _ : state) {
    Document doc;
    Value reply = doc.dict();
    reply.add("sdp", Value::string(sdp));
    reply.add("result", Value::string("ok"));
    std::string out = "5323_1 ";
    encodeBencode(reply, out);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_BuildAndEncodeReplyBencode);

void BM_DecodeOfferJson(benchmark::State& state) {
  const std::string in = toJson(offerBencode());
  for (auto _ : state) {
    Document doc;
    auto v = decodeJson(in, doc);
    benchmark::DoNotOptimize(v);
  }
  setBytes(state, in.size());
  state.counters["msg_bytes"] = static_cast<double>(in.size());
}
BENCHMARK(BM_DecodeOfferJson);

void BM_EncodeOfferJson(benchmark::State& state) {
  const std::string in = offerBencode();
  Document doc;
  const Value v = *decodeBencode(in, doc);
  std::string out;
  for (auto _ : state) {
    out.clear();
    encodeJson(v, out);
    benchmark::DoNotOptimize(out.data());
  }
  setBytes(state, out.size());
}
BENCHMARK(BM_EncodeOfferJson);

void BM_DecodeReplyJson(benchmark::State& state) {
  const std::string in = toJson(replyBencode());
  for (auto _ : state) {
    Document doc;
    auto v = decodeJson(in, doc);
    benchmark::DoNotOptimize(v);
  }
  setBytes(state, in.size());
}
BENCHMARK(BM_DecodeReplyJson);

}  // namespace
}  // namespace xems::ng
