// AF_PACKET transmit for the generator's `packet` mode: whole Ethernet frames (Ethernet + IPv4 or
// IPv6 + UDP + the unchanged RTP probe) handed to the driver by a raw packet socket with
// PACKET_QDISC_BYPASS, so the sender skips its own UDP/IP stack, routing, neighbour lookup and
// qdisc for every packet. What the stack would have done per packet is done once per set of
// destinations here: the route (egress device, gateway, preferred source), the next hop's MAC
// and the constant parts of every header and checksum.
//
// The stream's UDP socket stays open and bound: its address:port is the frames' source, so the
// relay sees the same 5-tuple as in `udp` mode and whatever it sends back is not answered with an
// ICMP port unreachable.
#pragma once

#include <linux/if_packet.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/net.h"
#include "common/result.h"
#include "common/unique_fd.h"
#include "tools/xems-perf/rtp_packet.h"

namespace xems::perf {

using Mac = std::array<uint8_t, 6>;

// How frames from `src` reach `dst`, as the kernel's own routing would send a UDP datagram.
struct PacketRoute {
  int ifindex = 0;     // egress device
  std::string ifname;  // for messages
  Mac src_mac{};       // the egress device's MAC
  Mac dst_mac{};       // the next hop's MAC: the gateway's, or dst's own when on-link
  IpAddr src_ip;       // the source given, or the route's preferred source for a wildcard
  IpAddr next_hop;     // the gateway, or dst
};

// Route and neighbour queries over one rtnetlink socket. Create it (open()) and use it inside the
// namespace to resolve in, e.g. within runInNetns().
class NeighbourResolver {
 public:
  static Result<NeighbourResolver> open();

  // `ip route get DST from SRC ipproto udp`, the egress device's MAC, then the next hop's
  // neighbour entry. When the entry is missing or failed, the kernel is made to resolve it (an
  // empty UDP datagram from `src` to the next hop's discard port, and RTM_NEWNEIGH with NTF_USE
  // where CAP_NET_ADMIN allows) and the entry is polled until `deadline_ns` (CLOCK_MONOTONIC).
  // An error (never a partial answer) when there is no unicast route, the device is not an Ethernet
  // device that is up, or the MAC did not resolve in time.
  Result<PacketRoute> resolve(const IpAddr& src, const IpAddr& dst, int64_t deadline_ns);

 private:
  explicit NeighbourResolver(UniqueFd fd) : fd_(std::move(fd)) {}
  struct Reply;
  // Sends one request and returns the answer with the same sequence number (its payload or the
  // kernel's error as an errno).
  Result<Reply> request(std::string msg);
  Status kick(int ifindex, const IpAddr& addr);

  UniqueFd fd_;
  uint32_t seq_ = 0;
};

// An AF_PACKET SOCK_RAW socket in the calling thread's namespace that receives nothing (protocol
// 0), with PACKET_QDISC_BYPASS and a large send buffer. Not yet bound: see bindPacketSocket().
Result<UniqueFd> openPacketSocket();
// Binds it to a device (of the namespace the socket was created in).
Status bindPacketSocket(int fd, int ifindex);

inline constexpr size_t kEthHeaderSize = 14;
inline constexpr size_t kMaxFrameHeader = kEthHeaderSize + 40 + 8;  // Ethernet + IPv6 + UDP

// One stream's frame: everything but the probe's changing fields, computed once per
// destination. The probe (rtp_packet.h) follows the headers at `header_len`.
struct FrameTemplate {
  std::array<uint8_t, kMaxFrameHeader> header{};  // Ethernet + IP + UDP, UDP checksum 0
  uint8_t header_len = 0;
  uint8_t udp_offset = 0;
  // Ones' complement sum (unfolded) of the UDP pseudo-header, the UDP header and the probe with
  // its SSRC and with every field writeProbe() changes set to zero.
  uint32_t csum_base = 0;
  sockaddr_ll dest{};  // msg_name for sendmmsg: device, EtherType and next hop's MAC
  uint16_t payload = kPayloadSize;  // RTP payload bytes (the probe fields, then filler)

  size_t frameSize() const { return header_len + kRtpHeaderSize + payload; }
};

// `payload`: kMinPayloadSize..kMaxPayloadSize.
FrameTemplate makeFrameTemplate(const PacketRoute& route, const SockAddr& src, const SockAddr& dst,
                                uint32_t ssrc, size_t payload = kPayloadSize);

// Writes the UDP checksum of a frame whose probe (SSRC included) has been written: the template's
// base plus the 13 16-bit words writeProbe() changes, so ~15 adds per packet instead of ~100.
inline void writeUdpChecksum(uint8_t* frame, const FrameTemplate& t) {
  const uint8_t* rtp = frame + t.header_len;
  auto word = [rtp](size_t off) { return (static_cast<uint32_t>(rtp[off]) << 8) | rtp[off + 1]; };
  uint64_t sum = t.csum_base;
  for (size_t off = 2; off < 8; off += 2) {  // RTP sequence and timestamp
    sum += word(off);
  }
  for (size_t off = kRtpHeaderSize + 4; off < kRtpHeaderSize + 24; off += 2) {  // run..send_ns
    sum += word(off);
  }
  while ((sum >> 16) != 0) {
    sum = (sum & 0xffff) + (sum >> 16);
  }
  uint16_t csum = static_cast<uint16_t>(~sum);
  // 0 means "no checksum" in IPv4 and is invalid in IPv6; the ones' complement -0 is the same.
  if (csum == 0) {
    csum = 0xffff;
  }
  putBe16(frame + t.udp_offset + 6, csum);
}

// Checks the IPv4 header checksum and the UDP checksum of a whole frame from scratch, the way a
// receiver does. For the selftest.
bool frameChecksumsValid(const uint8_t* frame, size_t len);

}  // namespace xems::perf
