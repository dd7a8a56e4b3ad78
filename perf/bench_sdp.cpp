// bench-libs: xems_sdp
// SDP parse and write cost for a typical 15-line SIP audio offer and a 60-line WebRTC offer.
#include <benchmark/benchmark.h>

#include <string>

#include "ctrl/sdp/sdp.h"

namespace {

std::string crlf(std::string_view lf) {
  std::string out;
  for (char c : lf) {
    if (c == '\n') {
      out.push_back('\r');
    }
    out.push_back(c);
  }
  return out;
}

const std::string kAudio = crlf(
    "v=0\n"
    "o=- 1717171717 1717171717 IN IP4 198.51.100.20\n"
    "s=Asterisk\n"
    "c=IN IP4 198.51.100.20\n"
    "t=0 0\n"
    "m=audio 14012 RTP/AVP 9 0 8 18 101\n"
    "a=rtpmap:9 G722/8000\n"
    "a=rtpmap:0 PCMU/8000\n"
    "a=rtpmap:8 PCMA/8000\n"
    "a=rtpmap:18 G729/8000\n"
    "a=fmtp:18 annexb=no\n"
    "a=rtpmap:101 telephone-event/8000\n"
    "a=fmtp:101 0-16\n"
    "a=ptime:20\n"
    "a=sendrecv\n");

const std::string kWebRtc = crlf(
    "v=0\n"
    "o=- 4611731400430051336 2 IN IP4 127.0.0.1\n"
    "s=-\n"
    "t=0 0\n"
    "a=group:BUNDLE 0 1\n"
    "a=extmap-allow-mixed\n"
    "a=msid-semantic: WMS stream0\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\n"
    "c=IN IP4 0.0.0.0\n"
    "a=rtcp:9 IN IP4 0.0.0.0\n"
    "a=candidate:1467250027 1 udp 2122260223 192.0.2.33 46243 typ host generation 0\n"
    "a=ice-ufrag:Oyef\n"
    "a=ice-pwd:7w3Ui0GvgbqVHfwu1CC32ki3\n"
    "a=ice-options:trickle\n"
    "a=fingerprint:sha-256 75:74:5B:7A:0A:8D:9C:5C:0F:2D:0B:E8:4B:3C:0E:D5:1C:5E:D9:36:18:D5:"
    "BD:0A:36:E3:4D:AD:2A:AD:27:38\n"
    "a=setup:actpass\n"
    "a=mid:0\n"
    "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\n"
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\n"
    "a=sendrecv\n"
    "a=msid:stream0 audio0\n"
    "a=rtcp-mux\n"
    "a=rtpmap:111 opus/48000/2\n"
    "a=rtcp-fb:111 transport-cc\n"
    "a=fmtp:111 minptime=10;useinbandfec=1\n"
    "a=rtpmap:63 red/48000/2\n"
    "a=fmtp:63 111/111\n"
    "a=rtpmap:9 G722/8000\n"
    "a=rtpmap:0 PCMU/8000\n"
    "a=rtpmap:8 PCMA/8000\n"
    "a=rtpmap:13 CN/8000\n"
    "a=rtpmap:110 telephone-event/48000\n"
    "a=rtpmap:126 telephone-event/8000\n"
    "a=ssrc:3735928559 cname:4TOk42mSjXCkVIa6\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99\n"
    "c=IN IP4 0.0.0.0\n"
    "a=rtcp:9 IN IP4 0.0.0.0\n"
    "a=ice-ufrag:Oyef\n"
    "a=ice-pwd:7w3Ui0GvgbqVHfwu1CC32ki3\n"
    "a=ice-options:trickle\n"
    "a=fingerprint:sha-256 75:74:5B:7A:0A:8D:9C:5C:0F:2D:0B:E8:4B:3C:0E:D5:1C:5E:D9:36:18:D5:"
    "BD:0A:36:E3:4D:AD:2A:AD:27:38\n"
    "a=setup:actpass\n"
    "a=mid:1\n"
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\n"
    "a=sendrecv\n"
    "a=rtcp-mux\n"
    "a=rtcp-rsize\n"
    "a=rtpmap:96 VP8/90000\n"
    "a=rtcp-fb:96 goog-remb\n"
    "a=rtcp-fb:96 transport-cc\n"
    "a=rtcp-fb:96 nack\n"
    "a=rtcp-fb:96 nack pli\n"
    "a=rtpmap:97 rtx/90000\n"
    "a=fmtp:97 apt=96\n"
    "a=rtpmap:98 H264/90000\n"
    "a=fmtp:98 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\n"
    "a=rtpmap:99 rtx/90000\n"
    "a=fmtp:99 apt=98\n"
    "a=ssrc:2231627014 cname:4TOk42mSjXCkVIa6\n");

void parseOnly(benchmark::State& state, const std::string& text) {
  for (auto _ : state) {
    auto r = xems::sdp::parse(text);
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}

void writeOnly(benchmark::State& state, const std::string& text) {
  auto r = xems::sdp::parse(text);
  if (!r.ok()) {
    state.SkipWithError(r.error().message.c_str());
    return;
  }
  for (auto _ : state) {
    std::string out = xems::sdp::write(*r);
    benchmark::DoNotOptimize(out);
  }
}

void parseAndWrite(benchmark::State& state, const std::string& text) {
  for (auto _ : state) {
    auto r = xems::sdp::parse(text);
    if (!r.ok()) {
      state.SkipWithError(r.error().message.c_str());
      return;
    }
    std::string out = xems::sdp::write(*r);
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}

void codecList(benchmark::State& state, const std::string& text) {
  auto r = xems::sdp::parse(text);
  if (!r.ok()) {
    state.SkipWithError(r.error().message.c_str());
    return;
  }
  for (auto _ : state) {
    for (const auto& m : r->media) {
      auto codecs = m.codecs();
      benchmark::DoNotOptimize(codecs);
    }
  }
}

BENCHMARK_CAPTURE(parseOnly, audio15, kAudio);
BENCHMARK_CAPTURE(parseOnly, webrtc60, kWebRtc);
BENCHMARK_CAPTURE(writeOnly, audio15, kAudio);
BENCHMARK_CAPTURE(writeOnly, webrtc60, kWebRtc);
BENCHMARK_CAPTURE(parseAndWrite, audio15, kAudio);
BENCHMARK_CAPTURE(parseAndWrite, webrtc60, kWebRtc);
BENCHMARK_CAPTURE(codecList, audio15, kAudio);
BENCHMARK_CAPTURE(codecList, webrtc60, kWebRtc);

}  // namespace
