#include "tools/xems-perf/call_requests.h"

#include "tools/xems-perf/bencode.h"

namespace xems::perf {

namespace {

void commonHead(BencodeWriter& w, const CallIdentity& call) {
  w.str("supports").beginList().str("load limit").end();
  w.kv("call-id", call.call_id);
  w.kv("via-branch", call.via_branch);
}

void mediaFlags(BencodeWriter& w, const IpAddr& received_from) {
  w.str("flags").beginList().str("trust-address").end();
  w.str("replace").beginList().str("origin").end();
  if (!received_from.isNone()) {
    w.str("received-from")
        .beginList()
        .str(familySdpName(received_from.family()))
        .str(received_from.toString())
        .end();
  }
}

}  // namespace

void buildOfferRequest(const CallIdentity& call, std::string_view sdp,
                       const CallRequestOptions& options, std::string& out) {
  BencodeWriter w(out);
  w.beginDict();
  w.kv("sdp", sdp);
  commonHead(w, call);
  mediaFlags(w, options.caller_proxy);
  if (!options.direction.empty()) {
    w.str("direction").beginList();
    for (const std::string& d : options.direction) {
      w.str(d);
    }
    w.end();
  }
  w.kv("from-tag", call.from_tag);
  w.kv("command", "offer");
  w.end();
}

void buildAnswerRequest(const CallIdentity& call, std::string_view sdp,
                        const CallRequestOptions& options, std::string& out) {
  BencodeWriter w(out);
  w.beginDict();
  w.kv("sdp", sdp);
  commonHead(w, call);
  mediaFlags(w, options.callee_proxy);
  w.kv("from-tag", call.from_tag);
  w.kv("to-tag", call.to_tag);
  w.kv("command", "answer");
  w.end();
}

void buildDeleteRequest(const CallIdentity& call, std::string& out) {
  BencodeWriter w(out);
  w.beginDict();
  commonHead(w, call);
  w.kvInt("delete delay", 0);
  w.kv("from-tag", call.from_tag);
  w.kv("command", "delete");
  w.end();
}

void buildPingRequest(std::string& out) {
  BencodeWriter w(out);
  w.beginDict().kv("command", "ping").end();
}

}  // namespace xems::perf
