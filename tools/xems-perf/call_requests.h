// ng requests shaped like the ones Kamailio's rtpengine module sends for
// rtpengine_offer("trust-address replace-origin") / rtpengine_answer() / rtpengine_delete().
// Newer Kamailio versions also send "sip-message-type"/"sip-code"; rtpengine 10.5 logs a warning
// for each unknown key, which would tax it for our choice of client, so they are left out.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/net.h"

namespace xems::perf {

struct CallIdentity {
  std::string call_id;
  std::string from_tag;    // caller (offerer)
  std::string to_tag;      // callee (answerer)
  std::string via_branch;
};

struct CallRequestOptions {
  // Logical interfaces [facing the offerer, facing the answerer]; empty: the relay's default.
  std::vector<std::string> direction;
  IpAddr caller_proxy;  // received-from of the offer (source of the SIP INVITE)
  IpAddr callee_proxy;  // received-from of the answer
};

void buildOfferRequest(const CallIdentity& call, std::string_view sdp,
                       const CallRequestOptions& options, std::string& out);
void buildAnswerRequest(const CallIdentity& call, std::string_view sdp,
                        const CallRequestOptions& options, std::string& out);
// Deletes at once: "delete delay" 0 (the key Kamailio sends; rtpengine also accepts
// "delete-delay").
void buildDeleteRequest(const CallIdentity& call, std::string& out);
void buildPingRequest(std::string& out);

}  // namespace xems::perf
