#include "datapath/ssrc_tracker.h"

namespace xems::datapath {

void SsrcTracker::initSeq(Entry& e, uint16_t seq) {
  e.base_seq = seq;
  e.max_seq = seq;
  e.bad_seq = kSeqMod + 1;  // cannot match a 16-bit sequence number
  e.cycles = 0;
  e.packets = 0;
  e.bytes = 0;
}

bool SsrcTracker::update(const rtp::RtpHeader& h, size_t bytes) {
  Entry* e = nullptr;
  bool fresh = false;
  for (size_t i = 0; i < count_; ++i) {
    if (entries_[i].ssrc == h.ssrc) {
      e = &entries_[i];
      break;
    }
  }
  if (e == nullptr) {
    if (count_ == entries_.size()) {
      return false;  // table full: this SSRC is counted in the flow totals only
    }
    e = &entries_[count_++];
    *e = Entry{};
    e->ssrc = h.ssrc;
    initSeq(*e, h.seq);
    fresh = true;
  } else {
    // RFC 3550 A.1 update_seq(), without the probation period: a flow's first packet is
    // trusted, because the source check already filtered foreign senders.
    const uint16_t udelta = static_cast<uint16_t>(h.seq - e->max_seq);
    if (udelta < kMaxDropout) {
      if (h.seq < e->max_seq) {
        e->cycles += kSeqMod;  // in order, with permissible gap, wrapped
      }
      e->max_seq = h.seq;
    } else if (udelta <= kSeqMod - kMaxMisorder) {
      // A very large jump: accept it only as a restart after two sequential packets.
      if (h.seq == e->bad_seq) {
        initSeq(*e, h.seq);
      } else {
        e->bad_seq = (h.seq + 1u) & (kSeqMod - 1);
        return false;
      }
    }
    // else: duplicate or reordered packet, counted below without moving max_seq.
  }
  e->packets++;
  e->bytes += bytes;
  e->last_timestamp = h.timestamp;
  e->payload_type = h.payload_type;
  if (fresh || ++since_publish_ >= kPublishInterval) {
    since_publish_ = 0;
    return true;
  }
  return false;
}

void SsrcTracker::snapshot(std::array<SsrcStats, kMaxSsrcPerFlow>& out, size_t& count) const {
  for (size_t i = 0; i < count_; ++i) {
    const Entry& e = entries_[i];
    out[i] = SsrcStats{
        .ssrc = e.ssrc,
        .packets = e.packets,
        .bytes = e.bytes,
        .base_seq = e.base_seq,
        .highest_seq = e.cycles + e.max_seq,
        .last_timestamp = e.last_timestamp,
        .payload_type = e.payload_type,
    };
  }
  count = count_;
}

}  // namespace xems::datapath
