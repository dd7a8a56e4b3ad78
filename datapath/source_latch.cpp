#include "datapath/source_latch.h"

namespace xems::datapath {

namespace {
constexpr uint8_t kRankOther = 0;
constexpr uint8_t kRankSameAddress = 1;
constexpr uint8_t kRankExact = 2;
}  // namespace

void SourceLatch::configure(const SourcePolicy& policy, bool relearn) {
  learning_ = policy.learning;
  strict_ = policy.strict;
  advertised_ = policy.advertised ? Endpoint::fromSockAddr(*policy.advertised) : Endpoint{};
  learn_until_ = policy.learn_until;
  if (relearn || !configured_) {
    latched_ = Endpoint{};
    locked_ = false;
    rank_ = kRankOther;
  }
  configured_ = true;
  if (policy.latched) {
    latched_ = Endpoint::fromSockAddr(*policy.latched);
    locked_ = true;
    rank_ = kRankExact;
  }
}

SourceLatch::Verdict SourceLatch::latch(const Endpoint& src, uint8_t rank, bool lock) {
  rank_ = rank;
  locked_ = lock;
  if (latched_ == src) {
    return Verdict::kAccept;
  }
  latched_ = src;
  return Verdict::kLatched;
}

SourceLatch::Verdict SourceLatch::lockedVerdict(const Endpoint& src) const {
  if (src == latched_ || !strict_) {
    return Verdict::kAccept;
  }
  return Verdict::kDrop;
}

uint8_t SourceLatch::rankOf(const Endpoint& src) const {
  if (!advertised_.valid()) {
    return kRankOther;
  }
  if (src == advertised_) {
    return kRankExact;
  }
  return src.sameAddress(advertised_) ? kRankSameAddress : kRankOther;
}

SourceLatch::Verdict SourceLatch::onPacket(const Endpoint& src, Clock::time_point now) {
  if (locked_) {
    return lockedVerdict(src);
  }
  switch (learning_) {
    case EndpointLearning::kOff:
      if (strict_ && advertised_.valid() && !(src == advertised_)) {
        return Verdict::kDrop;
      }
      return Verdict::kAccept;
    case EndpointLearning::kImmediate:
      return latch(src, kRankOther, /*lock=*/true);
    case EndpointLearning::kDelayed:
      if (now < learn_until_) {
        // The exact address:port the peer announced in its SDP is the peer: lock at once.
        // Only a source behind NAT (any other address) keeps the window open, so a spoofed
        // packet cannot take over a stream whose peer already sent from where it said.
        const bool exact = rankOf(src) == kRankExact;
        return latch(src, exact ? kRankExact : kRankOther, /*lock=*/exact);
      }
      break;
    case EndpointLearning::kHeuristic:
      if (now < learn_until_) {
        const uint8_t rank = rankOf(src);
        if (!latched_.valid() || rank > rank_) {
          return latch(src, rank, /*lock=*/rank == kRankExact);
        }
        return lockedVerdict(src);
      }
      break;
  }
  // The learning window is over. Lock what we have. With nothing latched yet, only the endpoint
  // the peer announced may latch now; anyone else is foreign (a port scan after the window must
  // not take the stream over). A peer behind NAT gets a new window with the next signalling
  // event. Without an announced endpoint there is nothing to go by: the first source latches.
  if (!latched_.valid()) {
    if (advertised_.valid() && !(src == advertised_)) {
      return strict_ ? Verdict::kDrop : Verdict::kAccept;
    }
    locked_ = true;
    latched_ = src;
    return Verdict::kLatched;
  }
  locked_ = true;
  return lockedVerdict(src);
}

}  // namespace xems::datapath
