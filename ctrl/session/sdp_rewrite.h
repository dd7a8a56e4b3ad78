// Builds the SDP that a participant receives: its own sockets' addresses and ports, rtpengine
// 10.5's attribute conventions (a=rtpmap for static payload types, direction, a=rtcp, a=rtcp-mux,
// ptime), codec filters and replace flags. Unknown lines and attributes are kept in input order.
#pragma once

#include <string>

#include "ctrl/sdp/sdp.h"
#include "ctrl/session/call.h"
#include "ctrl/session/types.h"

namespace xems::session {

struct RewriteInput {
  Op op = Op::kOffer;
  const OfferAnswerFlags* flags = nullptr;
  // The participant that receives this SDP: its medias carry the sockets to advertise.
  Participant* receiver = nullptr;
  // Per media index: whether rtcp-mux goes out in this SDP, and whether it is confirmed (an
  // answer accepting mux, or `require`): confirmed mux advertises a=rtcp with the RTP port.
  std::vector<bool> mux_out;
  std::vector<bool> mux_confirmed;
};

// Applies the codec filters to one media's payload-type list (no transcoding: strip, offer,
// except, mask). Returns the formats to keep, in output order.
std::vector<std::string> filterCodecs(const sdp::Media& m, const CodecFlags& codecs, Op op);

// Rewrites `in` in place into the SDP for in.receiver and returns its text.
std::string rewriteSdp(sdp::Session& in, const RewriteInput& ctx);

}  // namespace xems::session
