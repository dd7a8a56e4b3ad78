// Media port allocation: RTP on an even port, RTCP on the next (odd) one, random within the
// configured range, bound to one local address. Each local address has its own port space.
#pragma once

#include <cstdint>
#include <random>
#include <unordered_map>
#include <vector>

#include "common/net.h"
#include "common/result.h"
#include "common/unique_fd.h"

namespace xems::session {

struct BoundPair {
  UniqueFd rtp;
  UniqueFd rtcp;
  uint16_t port = 0;  // RTP port; RTCP is port + 1
};

class PortAllocator {
 public:
  PortAllocator(uint16_t port_min, uint16_t port_max, uint64_t seed);

  // Binds a UDP socket pair on `ip`. A pair whose bind fails (port taken by someone else, or a
  // socket of ours still closing) is skipped; when every pair is taken the error is rtpengine's
  // literal "Ran out of ports" (Kamailio fails over to the next relay on it).
  Result<BoundPair> allocate(const IpAddr& ip);
  // Binds exactly the pair at rtp_port (even, in range, not ours already): a call restored after
  // a restart gets the sockets its peers already send to.
  Result<BoundPair> claim(const IpAddr& ip, uint16_t rtp_port);
  // Marks a pair free again. The sockets themselves are closed by their owner.
  void release(const IpAddr& ip, uint16_t rtp_port);
  // Changes the range (SIGHUP); ports in use outside the new range stay in use until released.
  void setRange(uint16_t port_min, uint16_t port_max);

  // True if port (RTP or RTCP) on ip belongs to a pair we hold.
  bool isAllocated(const IpAddr& ip, uint16_t port) const;
  size_t pairsInUse() const;
  size_t pairsTotal() const { return pair_count_; }

 private:
  std::vector<bool>& usedFor(const IpAddr& ip);

  uint16_t first_even_ = 0;
  size_t pair_count_ = 0;
  std::unordered_map<IpAddr, std::vector<bool>> used_;
  std::mt19937_64 rng_;
};

// Creates a non-blocking UDP socket bound to addr (port 0 = kernel's choice). With
// rcvbuf != 0 the receive buffer is raised to that many bytes (past rmem_max when privileged),
// so a burst (a jitter-buffer flush, a scheduling hiccup of the worker) queues instead of being
// dropped; the memory is only used while packets wait.
Result<UniqueFd> bindUdp(const SockAddr& addr, int rcvbuf = 0);

inline constexpr int kMediaRcvBuf = 1 << 20;

}  // namespace xems::session
