// PacketBuilder: frames for the XDP tests (Ethernet, 802.1Q/802.1ad tags, IPv4 with options and
// fragments, IPv6 with extension headers, UDP, and RTP/RTCP/STUN/DTLS payloads). Lengths and
// checksums are computed from scratch by build() (tests/bpf/checksum.h) unless a test overrides
// them to build a malformed packet.
#pragma once

#include <netinet/in.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/net.h"

namespace xems::bpftest {

using Bytes = std::vector<uint8_t>;
using Mac = std::array<uint8_t, 6>;

struct VlanTag {
  uint16_t tpid = 0x8100;  ///< 0x8100 (802.1Q) or 0x88a8 (802.1ad)
  uint16_t vid = 0;
  uint8_t pcp = 0;
};

struct PacketBuilder {
  Mac eth_dst{};
  Mac eth_src{};
  std::vector<VlanTag> vlans;  ///< outermost first
  /// Ethertype after the tags; 0: 0x0800 or 0x86dd from the source address family.
  uint16_t ethertype = 0;
  /// If set, the frame is Ethernet + tags + these bytes (ARP, garbage); IP/UDP fields unused.
  std::optional<Bytes> raw_l3;

  IpAddr src_ip;
  IpAddr dst_ip;
  uint8_t ttl = 64;  ///< IPv4 TTL or IPv6 hop limit
  uint8_t tos = 0;   ///< IPv4 TOS or IPv6 traffic class
  uint16_t ip_id = 0x1c46;
  uint16_t frag = 0x4000;         ///< IPv4 flags + fragment offset, host order (default DF)
  Bytes ipv4_options;             ///< padded with zeros to a multiple of 4
  std::vector<uint8_t> ipv6_ext;  ///< 8-byte extension headers of these types, in order
  uint32_t flow_label = 0;
  uint8_t l4_proto = IPPROTO_UDP;

  uint16_t sport = 0;
  uint16_t dport = 0;
  bool udp_checksum_zero = false;     ///< send 0 (IPv4: "no checksum")
  int udp_checksum_delta = 0;         ///< added to the correct checksum (a corrupt one)
  std::optional<uint16_t> udp_len;    ///< overrides the UDP length field
  std::optional<uint16_t> ip_len;     ///< overrides IPv4 total / IPv6 payload length
  std::optional<uint8_t> ip_version;  ///< overrides the version nibble
  Bytes payload;
  size_t pad_to = 0;  ///< append zero bytes up to this frame length (Ethernet minimum 60)

  PacketBuilder& eth(const Mac& dst, const Mac& src) {
    eth_dst = dst;
    eth_src = src;
    return *this;
  }
  PacketBuilder& vlan(uint16_t vid, uint16_t tpid = 0x8100, uint8_t pcp = 0) {
    vlans.push_back({.tpid = tpid, .vid = vid, .pcp = pcp});
    return *this;
  }
  PacketBuilder& ip(const IpAddr& src, const IpAddr& dst) {
    src_ip = src;
    dst_ip = dst;
    return *this;
  }
  PacketBuilder& udp(uint16_t src_port, uint16_t dst_port) {
    sport = src_port;
    dport = dst_port;
    return *this;
  }
  PacketBuilder& from(const SockAddr& a) {
    src_ip = a.ip();
    sport = a.port();
    return *this;
  }
  PacketBuilder& to(const SockAddr& a) {
    dst_ip = a.ip();
    dport = a.port();
    return *this;
  }
  PacketBuilder& withPayload(Bytes p) {
    payload = std::move(p);
    return *this;
  }

  Bytes build() const;
};

/// RTP (RFC 3550 5.1): version 2, `cc` CSRCs (zeros), then `payload_len` bytes 0xa0, 0xa1...
Bytes rtp(uint8_t pt, uint16_t seq, uint32_t ts, uint32_t ssrc, size_t payload_len = 160,
          bool marker = false, uint8_t cc = 0);
/// RTCP with packet type `type` (200 SR, 201 RR...), `words` 32-bit words after the header word.
Bytes rtcp(uint8_t type = 201, uint32_t ssrc = 0x11223344, size_t words = 1);
/// A STUN Binding Request (RFC 8489): type 0x0001, length 0, magic cookie, transaction id.
Bytes stunBindingRequest();
/// A DTLS 1.2 record header of a ClientHello (content type 22) with a short body.
Bytes dtlsClientHello();

/// Offsets inside a built frame (for tests that poke fields).
struct Layout {
  size_t l3 = 0;       ///< IP header
  size_t l4 = 0;       ///< UDP header
  size_t payload = 0;  ///< UDP payload
};
Layout layoutOf(const PacketBuilder& b);

/// Checks the IPv4 header checksum and the UDP checksum of `frame` by recomputing them from
/// scratch. @return "" if both are right (or the IPv4 UDP checksum is 0), else what is wrong.
std::string checkChecksums(const Bytes& frame);

/// Hex dump of both frames, 16 bytes a line, differing bytes marked.
std::string hexDiff(const Bytes& want, const Bytes& got);

/// Writes frames to a pcap file (LINKTYPE_ETHERNET) for a look with tcpdump/wireshark.
bool writePcap(const std::string& path, const std::vector<Bytes>& frames);

}  // namespace xems::bpftest
