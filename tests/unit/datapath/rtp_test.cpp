#include "datapath/rtp.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace xems::datapath::rtp {
namespace {

std::vector<std::byte> bytes(std::initializer_list<int> v) {
  std::vector<std::byte> out;
  for (int b : v) {
    out.push_back(static_cast<std::byte>(b));
  }
  return out;
}

std::vector<std::byte> rtpPacket(uint16_t seq, uint32_t ts, uint32_t ssrc, uint8_t pt,
                                 size_t payload = 20) {
  std::vector<std::byte> p(12 + payload);
  p[0] = std::byte{0x80};
  p[1] = std::byte{pt};
  p[2] = std::byte(seq >> 8);
  p[3] = std::byte(seq & 0xff);
  for (int i = 0; i < 4; ++i) {
    p[4 + i] = std::byte((ts >> (24 - 8 * i)) & 0xff);
    p[8 + i] = std::byte((ssrc >> (24 - 8 * i)) & 0xff);
  }
  return p;
}

TEST(RtpTest, ParsesFixedHeader) {
  auto p = rtpPacket(0xbeef, 0x01020304, 0xdeadbeef, 8);
  p[1] |= std::byte{0x80};  // marker
  auto h = parseRtp(p);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->seq, 0xbeef);
  EXPECT_EQ(h->timestamp, 0x01020304u);
  EXPECT_EQ(h->ssrc, 0xdeadbeefu);
  EXPECT_EQ(h->payload_type, 8);
  EXPECT_TRUE(h->marker);
  EXPECT_EQ(h->header_size, 12u);
  EXPECT_EQ(classify(p), PacketKind::kRtp);
}

TEST(RtpTest, RejectsShortAndWrongVersion) {
  auto p = rtpPacket(1, 2, 3, 0, 0);
  EXPECT_TRUE(parseRtp(p).has_value());
  EXPECT_FALSE(parseRtp(std::span(p).first(11)).has_value());
  EXPECT_EQ(classify(std::span(p).first(7)), PacketKind::kOther);
  EXPECT_EQ(classify({}), PacketKind::kOther);
  p[0] = std::byte{0x40};  // version 1
  EXPECT_FALSE(parseRtp(p).has_value());
  EXPECT_EQ(classify(p), PacketKind::kOther);
  // STUN binding request starts with 0x00 0x01; DTLS records with 20..63.
  EXPECT_EQ(classify(bytes({0x00, 0x01, 0, 8, 0x21, 0x12, 0xa4, 0x42, 0, 0, 0, 0})),
            PacketKind::kOther);
  EXPECT_EQ(classify(bytes({22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})), PacketKind::kOther);
}

TEST(RtpTest, CsrcExtensionAndPaddingBounds) {
  auto p = rtpPacket(1, 2, 3, 0, 0);
  p[0] = std::byte{0x82};  // CC=2 but no CSRCs present
  EXPECT_FALSE(parseRtp(p).has_value());
  p.resize(12 + 8);
  auto h = parseRtp(p);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->header_size, 20u);

  auto x = rtpPacket(1, 2, 3, 0, 0);
  x[0] = std::byte{0x90};  // X=1, extension header missing
  EXPECT_FALSE(parseRtp(x).has_value());
  auto ext = bytes({0xbe, 0xde, 0x00, 0x01, 1, 2, 3, 4});
  x.insert(x.end(), ext.begin(), ext.end());
  h = parseRtp(x);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->header_size, 20u);
  x[15] = std::byte{2};  // extension claims 2 words, only 1 there
  EXPECT_FALSE(parseRtp(x).has_value());

  auto pad = rtpPacket(1, 2, 3, 0, 4);
  pad[0] = std::byte{0xa0};  // P=1
  pad.back() = std::byte{4};
  h = parseRtp(pad);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->padding, 4u);
  pad.back() = std::byte{5};  // more padding than payload
  EXPECT_FALSE(parseRtp(pad).has_value());
  pad.back() = std::byte{0};
  EXPECT_FALSE(parseRtp(pad).has_value());
}

TEST(RtpTest, Rfc5761RtcpRange) {
  EXPECT_FALSE(isRtcpPacketType(191));
  for (int t = 192; t <= 223; ++t) {
    EXPECT_TRUE(isRtcpPacketType(static_cast<uint8_t>(t))) << t;
  }
  EXPECT_FALSE(isRtcpPacketType(224));
  // Receiver report, 1 block: length field 7 -> 32 bytes.
  auto rr = bytes({0x81, 201, 0, 7, 1, 2, 3, 4});
  rr.resize(32);
  EXPECT_EQ(classify(rr), PacketKind::kRtcp);
  EXPECT_TRUE(isValidRtcp(rr));
  EXPECT_FALSE(parseRtp(rr).has_value());  // RTCP is not RTP-parsed
  EXPECT_FALSE(isValidRtcp(std::span(rr).first(31)));
  // RTP with marker bit and PT 72 would look like RTCP SR: RFC 5761 forbids that PT on a mux.
  auto sr = bytes({0x80, 200, 0, 1, 0, 0, 0, 0});
  EXPECT_EQ(classify(sr), PacketKind::kRtcp);
}

// The helpers are constexpr: usable in static tables and checked at compile time here.
constexpr std::byte kConstPacket[] = {std::byte{0x80}, std::byte{0},  std::byte{0},
                                      std::byte{7},    std::byte{0},  std::byte{0},
                                      std::byte{0},    std::byte{1},  std::byte{0},
                                      std::byte{0},    std::byte{0},  std::byte{9}};
static_assert(parseRtp(kConstPacket)->seq == 7);
static_assert(parseRtp(kConstPacket)->ssrc == 9);

}  // namespace
}  // namespace xems::datapath::rtp
