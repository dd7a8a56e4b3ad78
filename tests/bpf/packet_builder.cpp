#include "tests/bpf/packet_builder.h"

#include <cstdio>
#include <fstream>

#include "tests/bpf/checksum.h"

namespace xems::bpftest {
namespace {

void put16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}
void put32(Bytes& b, uint32_t v) {
  put16(b, static_cast<uint16_t>(v >> 16));
  put16(b, static_cast<uint16_t>(v));
}
void set16(Bytes& b, size_t at, uint16_t v) {
  b[at] = static_cast<uint8_t>(v >> 8);
  b[at + 1] = static_cast<uint8_t>(v);
}
uint16_t get16(const Bytes& b, size_t at) {
  return static_cast<uint16_t>(b[at] << 8 | b[at + 1]);
}

size_t l2Len(const PacketBuilder& p) {
  return 14 + 4 * p.vlans.size();
}

size_t ipv4HeaderLen(const PacketBuilder& p) {
  return 20 + ((p.ipv4_options.size() + 3) & ~3U);
}

}  // namespace

Layout layoutOf(const PacketBuilder& p) {
  Layout l;
  l.l3 = l2Len(p);
  l.l4 = l.l3 + (p.src_ip.isV4() ? ipv4HeaderLen(p) : 40 + 8 * p.ipv6_ext.size());
  l.payload = l.l4 + 8;
  return l;
}

Bytes PacketBuilder::build() const {
  Bytes f;
  f.insert(f.end(), eth_dst.begin(), eth_dst.end());
  f.insert(f.end(), eth_src.begin(), eth_src.end());
  const bool v4 = src_ip.isV4();
  uint16_t type = ethertype != 0 ? ethertype : (v4 ? 0x0800 : 0x86dd);
  for (const VlanTag& t : vlans) {
    put16(f, t.tpid);
    put16(f, static_cast<uint16_t>((t.pcp & 7) << 13 | (t.vid & 0x0fff)));
  }
  put16(f, type);
  if (raw_l3) {
    f.insert(f.end(), raw_l3->begin(), raw_l3->end());
  } else {
    const size_t l3 = f.size();
    const size_t udp_total = 8 + payload.size();
    if (v4) {
      const size_t hl = ipv4HeaderLen(*this);
      f.push_back(static_cast<uint8_t>((ip_version.value_or(4) << 4) | (hl / 4)));
      f.push_back(tos);
      put16(f, ip_len.value_or(static_cast<uint16_t>(hl + udp_total)));
      put16(f, ip_id);
      put16(f, frag);
      f.push_back(ttl);
      f.push_back(l4_proto);
      put16(f, 0);
      f.insert(f.end(), src_ip.bytes(), src_ip.bytes() + 4);
      f.insert(f.end(), dst_ip.bytes(), dst_ip.bytes() + 4);
      Bytes opts = ipv4_options;
      opts.resize(hl - 20, 0);
      f.insert(f.end(), opts.begin(), opts.end());
      set16(f, l3 + 10, ipv4HeaderChecksum({f.data() + l3, hl}));
    } else {
      const uint32_t w0 = static_cast<uint32_t>(ip_version.value_or(6)) << 28 |
                          static_cast<uint32_t>(tos) << 20 | (flow_label & 0xfffff);
      put32(f, w0);
      const size_t ext_len = 8 * ipv6_ext.size();
      put16(f, ip_len.value_or(static_cast<uint16_t>(ext_len + udp_total)));
      f.push_back(ipv6_ext.empty() ? l4_proto : ipv6_ext.front());
      f.push_back(ttl);
      f.insert(f.end(), src_ip.bytes(), src_ip.bytes() + 16);
      f.insert(f.end(), dst_ip.bytes(), dst_ip.bytes() + 16);
      for (size_t i = 0; i < ipv6_ext.size(); ++i) {
        const uint8_t next = i + 1 < ipv6_ext.size() ? ipv6_ext[i + 1] : l4_proto;
        Bytes ext(8, 0);
        ext[0] = next;
        ext[1] = 0;  // length in 8-octet units, not counting the first
        if (ipv6_ext[i] == IPPROTO_FRAGMENT) {
          ext[3] = 1;     // offset 0, M flag
          ext[7] = 0x2a;  // identification
        } else {
          ext[2] = 1;  // PadN option filling the 6 bytes
          ext[3] = 4;
        }
        f.insert(f.end(), ext.begin(), ext.end());
      }
    }
    const size_t l4 = f.size();
    put16(f, sport);
    put16(f, dport);
    put16(f, udp_len.value_or(static_cast<uint16_t>(udp_total)));
    put16(f, 0);
    f.insert(f.end(), payload.begin(), payload.end());
    if (!udp_checksum_zero && l4_proto == IPPROTO_UDP) {
      // The checksum covers the real segment (udp_total bytes), whatever the length field says.
      uint16_t c = udpChecksum(src_ip, dst_ip, {f.data() + l4, udp_total});
      c = static_cast<uint16_t>(c + udp_checksum_delta);
      set16(f, l4 + 6, c);
    }
  }
  if (f.size() < pad_to) {
    f.resize(pad_to, 0);
  }
  return f;
}

Bytes rtp(uint8_t pt, uint16_t seq, uint32_t ts, uint32_t ssrc, size_t payload_len, bool marker,
          uint8_t cc) {
  Bytes b;
  b.push_back(static_cast<uint8_t>(0x80 | (cc & 0x0f)));
  b.push_back(static_cast<uint8_t>((marker ? 0x80 : 0) | (pt & 0x7f)));
  put16(b, seq);
  put32(b, ts);
  put32(b, ssrc);
  for (uint8_t i = 0; i < cc; ++i) {
    put32(b, 0x01020304U + i);
  }
  for (size_t i = 0; i < payload_len; ++i) {
    b.push_back(static_cast<uint8_t>(0xa0 + i));
  }
  return b;
}

Bytes rtcp(uint8_t type, uint32_t ssrc, size_t words) {
  Bytes b;
  b.push_back(0x80);
  b.push_back(type);
  put16(b, static_cast<uint16_t>(words));
  put32(b, ssrc);
  for (size_t i = 1; i < words; ++i) {
    put32(b, 0xdead0000U + static_cast<uint32_t>(i));
  }
  return b;
}

Bytes stunBindingRequest() {
  Bytes b;
  put16(b, 0x0001);
  put16(b, 0);
  put32(b, 0x2112A442);
  for (uint8_t i = 0; i < 12; ++i) {
    b.push_back(static_cast<uint8_t>(0x30 + i));
  }
  return b;
}

Bytes dtlsClientHello() {
  Bytes b = {22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0};  // type, version, epoch, sequence
  put16(b, 12);
  for (uint8_t i = 0; i < 12; ++i) {
    b.push_back(i);
  }
  return b;
}

std::string checkChecksums(const Bytes& f) {
  size_t off = 12;
  uint16_t type = get16(f, off);
  while (type == 0x8100 || type == 0x88a8) {
    off += 4;
    type = get16(f, off);
  }
  const size_t l3 = off + 2;
  IpAddr src;
  IpAddr dst;
  size_t l4 = 0;
  size_t udp_total = 0;
  if (type == 0x0800) {
    const size_t hl = (f[l3] & 0x0f) * 4U;
    const uint16_t want = ipv4HeaderChecksum({f.data() + l3, hl});
    if (get16(f, l3 + 10) != want) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "IPv4 header checksum %04x, recomputed %04x",
                    get16(f, l3 + 10), want);
      return buf;
    }
    src = IpAddr::fromRaw(Family::kIpv4, f.data() + l3 + 12);
    dst = IpAddr::fromRaw(Family::kIpv4, f.data() + l3 + 16);
    l4 = l3 + hl;
    udp_total = get16(f, l3 + 2) - hl;
    if (get16(f, l4 + 6) == 0) {
      return "";
    }
  } else if (type == 0x86dd) {
    src = IpAddr::fromRaw(Family::kIpv6, f.data() + l3 + 8);
    dst = IpAddr::fromRaw(Family::kIpv6, f.data() + l3 + 24);
    l4 = l3 + 40;
    udp_total = get16(f, l3 + 4);
  } else {
    return "not IP";
  }
  const uint16_t want = udpChecksum(src, dst, {f.data() + l4, udp_total});
  if (get16(f, l4 + 6) != want) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "UDP checksum %04x, recomputed %04x", get16(f, l4 + 6), want);
    return buf;
  }
  return "";
}

std::string hexDiff(const Bytes& want, const Bytes& got) {
  std::string out = "        want                                             | got\n";
  const size_t n = std::max(want.size(), got.size());
  char buf[32];
  for (size_t line = 0; line < n; line += 16) {
    std::snprintf(buf, sizeof buf, "%04zx:  ", line);
    std::string w = buf;
    std::string g;
    bool differs = false;
    for (size_t i = line; i < line + 16; ++i) {
      const bool hw = i < want.size();
      const bool hg = i < got.size();
      const bool diff = hw != hg || (hw && want[i] != got[i]);
      differs |= diff;
      if (hw) {
        std::snprintf(buf, sizeof buf, "%02x%c", want[i], diff ? '*' : ' ');
        w += buf;
      } else {
        w += "   ";
      }
      if (hg) {
        std::snprintf(buf, sizeof buf, "%02x%c", got[i], diff ? '*' : ' ');
        g += buf;
      } else {
        g += "   ";
      }
    }
    out += w + "| " + g + (differs ? " <" : "") + "\n";
  }
  return out;
}

bool writePcap(const std::string& path, const std::vector<Bytes>& frames) {
  std::ofstream o(path, std::ios::binary);
  if (!o) {
    return false;
  }
  auto le32 = [&](uint32_t v) { o.write(reinterpret_cast<const char*>(&v), 4); };
  auto le16 = [&](uint16_t v) { o.write(reinterpret_cast<const char*>(&v), 2); };
  le32(0xa1b2c3d4);
  le16(2);
  le16(4);
  le32(0);
  le32(0);
  le32(65535);
  le32(1);  // LINKTYPE_ETHERNET
  uint32_t t = 0;
  for (const Bytes& f : frames) {
    le32(t++);
    le32(0);
    le32(static_cast<uint32_t>(f.size()));
    le32(static_cast<uint32_t>(f.size()));
    o.write(reinterpret_cast<const char*>(f.data()), static_cast<std::streamsize>(f.size()));
  }
  return static_cast<bool>(o);
}

}  // namespace xems::bpftest
