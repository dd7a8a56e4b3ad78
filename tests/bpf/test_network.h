// The addresses and MACs the BPF tests share: Alice behind xa, Bob behind xb, our sockets on
// both (documentation ranges; the neighbours are set up by NetEnv in bpf_tester.cpp).
#pragma once

#include <gtest/gtest.h>

#include "common/net.h"
#include "tests/bpf/packet_builder.h"

namespace xems::bpftest {

inline SockAddr sa(const char* text) {
  auto a = SockAddr::parse(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a.value_or(SockAddr());
}

inline const SockAddr kOurA = sa("203.0.113.1:30000");
inline const SockAddr kAlice = sa("203.0.113.10:40000");
inline const SockAddr kOurB = sa("192.0.2.1:30002");
inline const SockAddr kBob = sa("192.0.2.20:50000");

inline const Mac kOurAMac = {0x02, 0, 0, 0, 0x0a, 0x01};
inline const Mac kAliceMac = {0x02, 0, 0, 0, 0x0a, 0x10};
inline const Mac kOurBMac = {0x02, 0, 0, 0, 0x0b, 0x01};
inline const Mac kBobMac = {0x02, 0, 0, 0, 0x0b, 0x20};

}  // namespace xems::bpftest
