#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

#include "ctrl/ng/value.h"
#include "tests/unit/ng/ng_test_util.h"

namespace xems::ng {
namespace {

using testing_util::benStr;
using testing_util::kOfferSdp;
using testing_util::offerBencode;

std::string encode(const Value& v) {
  std::string out;
  encodeBencode(v, out);
  return out;
}

TEST(BencodeTest, DecodesRtpenginePing) {
  Document doc;
  auto r = decodeBencode("d7:command4:pinge", doc);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->isDict());
  ASSERT_EQ(r->dict().size(), 1u);
  EXPECT_EQ(r->findString("command"), "ping");
  EXPECT_EQ(r->find("result"), nullptr);
}

TEST(BencodeTest, EncodesRtpenginePong) {
  Document doc;
  Value reply = doc.dict();
  reply.add("result", Value::string("pong"));
  EXPECT_EQ(encode(reply), "d6:result4:ponge");
}

TEST(BencodeTest, StringsAreViewsIntoTheInput) {
  const std::string in = offerBencode();
  Document doc;
  auto r = decodeBencode(in, doc);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const auto sdp = r->findString("sdp");
  ASSERT_TRUE(sdp.has_value());
  EXPECT_EQ(*sdp, kOfferSdp);
  EXPECT_GE(sdp->data(), in.data());
  EXPECT_LE(sdp->data() + sdp->size(), in.data() + in.size());
  const auto& key = r->dict().front().first;
  EXPECT_GE(key.data(), in.data());
  EXPECT_LT(key.data(), in.data() + in.size());
}

TEST(BencodeTest, RealisticOfferRoundTripsByteForByte) {
  const std::string in = offerBencode();
  Document doc;
  auto r = decodeBencode(in, doc);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->findString("command"), "offer");
  EXPECT_EQ(r->findString("call-id"), "a84b4c76e66710@pc33.example.com");
  EXPECT_EQ(r->findInt("TOS"), 184);
  const Value* flags = r->find("flags");
  ASSERT_NE(flags, nullptr);
  ASSERT_TRUE(flags->isList());
  ASSERT_EQ(flags->list().size(), 2u);
  EXPECT_EQ(flags->list()[1].asString(), "strict-source");
  const Value* from = r->find("received-from");
  ASSERT_NE(from, nullptr);
  EXPECT_EQ(from->list()[0].asString(), "IP4");
  EXPECT_EQ(from->list()[1].asString(), "192.0.2.10");
  EXPECT_EQ(encode(*r), in);
  EXPECT_EQ(bencodeSize(*r), in.size());
}

TEST(BencodeTest, KeepsUnsortedAndDuplicateKeysInWireOrder) {
  Document doc;
  const std::string in = "d1:zi1e1:ai2e1:zi3ee";
  auto r = decodeBencode(in, doc);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->dict().size(), 3u);
  EXPECT_EQ(r->dict()[0].first, "z");
  EXPECT_EQ(r->dict()[1].first, "a");
  EXPECT_EQ(r->findInt("z"), 1);  // first match wins
  EXPECT_EQ(encode(*r), in);
}

TEST(BencodeTest, BinarySafeStrings) {
  const std::string payload("a\0b\r\n\xff:e", 8);
  const std::string in = "l" + benStr(payload) + "0:e";
  Document doc;
  auto r = decodeBencode(in, doc);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->list().size(), 2u);
  EXPECT_EQ(r->list()[0].asString(), payload);
  EXPECT_TRUE(r->list()[1].isString());
  EXPECT_EQ(r->list()[1].asString(), "");
  EXPECT_EQ(encode(*r), in);
}

TEST(BencodeTest, IntegerLimits) {
  struct Case {
    const char* in;
    int64_t value;
  };
  const Case cases[] = {
      {"i0e", 0},
      {"i7e", 7},
      {"i-1e", -1},
      {"i10e", 10},
      {"i9223372036854775807e", std::numeric_limits<int64_t>::max()},
      {"i-9223372036854775808e", std::numeric_limits<int64_t>::min()},
  };
  for (const auto& c : cases) {
    Document doc;
    auto r = decodeBencode(c.in, doc);
    ASSERT_TRUE(r.ok()) << c.in << ": " << r.error().message;
    ASSERT_TRUE(r->isInt()) << c.in;
    EXPECT_EQ(r->asInt(), c.value) << c.in;
    EXPECT_EQ(encode(*r), c.in);
    EXPECT_EQ(bencodeSize(*r), std::string_view(c.in).size());
  }
}

TEST(BencodeTest, EmptyContainers) {
  Document doc;
  auto r = decodeBencode("d1:ale1:bdee", doc);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->find("a")->isList());
  EXPECT_TRUE(r->find("a")->list().empty());
  EXPECT_TRUE(r->find("b")->isDict());
  EXPECT_TRUE(r->find("b")->dict().empty());
  EXPECT_EQ(encode(*r), "d1:ale1:bdee");
}

struct Rejection {
  std::string in;
  std::string message;
};

class BencodeRejectTest : public ::testing::TestWithParam<Rejection> {};

TEST_P(BencodeRejectTest, RejectsWithExactMessage) {
  Document doc;
  auto r = decodeBencode(GetParam().in, doc);
  ASSERT_FALSE(r.ok()) << "accepted: " << GetParam().in;
  EXPECT_EQ(r.error().message, GetParam().message);
  EXPECT_EQ(r.error().code, std::make_error_code(std::errc::invalid_argument));
}

std::string rejectionName(const ::testing::TestParamInfo<Rejection>& info) {
  return "Case" + std::to_string(info.index);
}

INSTANTIATE_TEST_SUITE_P(
    Strict, BencodeRejectTest,
    ::testing::Values(
        Rejection{"", "Invalid bencode at offset 0: unexpected end of input"},
        Rejection{"x", "Invalid bencode at offset 0: unexpected byte 'x'"},
        Rejection{std::string("\x01", 1), "Invalid bencode at offset 0: unexpected byte 0x01"},
        Rejection{"-1:a", "Invalid bencode at offset 0: unexpected byte '-'"},
        // Trailing garbage.
        Rejection{"i1ei2e", "Invalid bencode at offset 3: trailing data after value"},
        Rejection{"d7:command4:pingee", "Invalid bencode at offset 17: trailing data after value"},
        Rejection{"le ", "Invalid bencode at offset 2: trailing data after value"},
        // String lengths.
        Rejection{"03:abc", "Invalid bencode at offset 0: leading zero in string length"},
        Rejection{"00:", "Invalid bencode at offset 0: leading zero in string length"},
        Rejection{"l01:ae", "Invalid bencode at offset 1: leading zero in string length"},
        Rejection{"5:abc", "Invalid bencode at offset 0: string length exceeds input"},
        Rejection{"d3:sdp10:v=0e", "Invalid bencode at offset 6: string length exceeds input"},
        Rejection{"99999999999999999999999999999999:x",
                  "Invalid bencode at offset 0: string length exceeds input"},
        Rejection{"18446744073709551616:x",
                  "Invalid bencode at offset 0: string length exceeds input"},
        Rejection{"3abc", "Invalid bencode at offset 1: expected ':' after string length"},
        Rejection{"3", "Invalid bencode at offset 1: unexpected end of input"},
        // Integers.
        Rejection{"i03e", "Invalid bencode at offset 0: leading zero in integer"},
        Rejection{"i00e", "Invalid bencode at offset 0: leading zero in integer"},
        Rejection{"i-03e", "Invalid bencode at offset 0: leading zero in integer"},
        Rejection{"i-0e", "Invalid bencode at offset 0: negative zero"},
        Rejection{"ie", "Invalid bencode at offset 0: integer without digits"},
        Rejection{"i-e", "Invalid bencode at offset 0: integer without digits"},
        Rejection{"i+1e", "Invalid bencode at offset 0: integer without digits"},
        Rejection{"i", "Invalid bencode at offset 1: unexpected end of input"},
        Rejection{"i-", "Invalid bencode at offset 2: unexpected end of input"},
        Rejection{"i12", "Invalid bencode at offset 3: unexpected end of input"},
        Rejection{"i1x", "Invalid bencode at offset 2: expected 'e' after integer"},
        Rejection{"i1.5e", "Invalid bencode at offset 2: expected 'e' after integer"},
        Rejection{"i9223372036854775808e", "Invalid bencode at offset 0: integer overflows int64"},
        Rejection{"i-9223372036854775809e",
                  "Invalid bencode at offset 0: integer overflows int64"},
        Rejection{"i99999999999999999999999999e",
                  "Invalid bencode at offset 0: integer overflows int64"},
        // Containers.
        Rejection{"l", "Invalid bencode at offset 1: unexpected end of input"},
        Rejection{"li1e", "Invalid bencode at offset 4: unexpected end of input"},
        Rejection{"d", "Invalid bencode at offset 1: unexpected end of input"},
        Rejection{"d4:spam", "Invalid bencode at offset 7: unexpected end of input"},
        Rejection{"d1:ai1e", "Invalid bencode at offset 7: unexpected end of input"},
        Rejection{"di1ei2ee", "Invalid bencode at offset 1: dictionary key is not a string"},
        Rejection{"dlei1ee", "Invalid bencode at offset 1: dictionary key is not a string"},
        Rejection{"dx", "Invalid bencode at offset 1: unexpected byte 'x'"},
        Rejection{"d3:keye", "Invalid bencode at offset 6: dictionary key without value"},
        Rejection{"lxe", "Invalid bencode at offset 1: unexpected byte 'x'"}),
    rejectionName);

TEST(BencodeTest, AcceptsNestingUpToTheLimit) {
  const std::string in = std::string(kMaxDepth, 'l') + std::string(kMaxDepth, 'e');
  Document doc;
  auto r = decodeBencode(in, doc);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(encode(*r), in);
}

TEST(BencodeTest, RejectsNestingBeyondTheLimit) {
  const std::string in = std::string(kMaxDepth + 1, 'l') + std::string(kMaxDepth + 1, 'e');
  Document doc;
  auto r = decodeBencode(in, doc);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "Invalid bencode at offset 64: nesting deeper than 64 levels");
}

TEST(BencodeTest, DeeplyNestedInputDoesNotExhaustTheStack) {
  std::string dicts;
  for (int i = 0; i < 30000; ++i) {
    dicts += "d1:k";
  }
  for (const std::string& in : {std::string(100000, 'l'),
                                std::string(100000, 'l') + std::string(100000, 'e'), dicts}) {
    Document doc;
    auto r = decodeBencode(in, doc);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("nesting deeper than 64 levels"), std::string::npos)
        << r.error().message;
  }
  // Nested dictionaries count as well.
  std::string in;
  for (int i = 0; i <= kMaxDepth; ++i) {
    in += "d1:k";
  }
  Document doc;
  auto r = decodeBencode(in, doc);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "Invalid bencode at offset 256: nesting deeper than 64 levels");
}

TEST(BencodeTest, HugeLengthPrefixIsRejectedWithoutAllocating) {
  Document doc;
  auto r = decodeBencode("d3:sdp4294967296:v=0\r\ne", doc);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "Invalid bencode at offset 6: string length exceeds input");
  r = decodeBencode(std::string(5000, '9') + ":", doc);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "Invalid bencode at offset 0: string length exceeds input");
}

TEST(BencodeTest, EncoderAppendsAndSizesExactly) {
  Document doc;
  Value reply = doc.dict();
  reply.add("result", Value::string("ok"));
  reply.add("sdp", Value::string(kOfferSdp));
  Value list = reply.add("warnings", doc.list());
  list.push(Value::integer(std::numeric_limits<int64_t>::min()));
  list.push(Value::integer(-42));
  list.push(Value());  // null: encoded as an empty string
  list.push(doc.dict());
  std::string out = "cookie ";
  encodeBencode(reply, out);
  const std::string expected = "cookie d6:result2:ok3:sdp" + benStr(kOfferSdp) +
                               "8:warningsli-9223372036854775808ei-42e0:deee";
  EXPECT_EQ(out, expected);
  EXPECT_EQ(bencodeSize(reply), expected.size() - 7);
}

TEST(BencodeTest, EncodedRepliesDecodeToTheSameValue) {
  Document doc;
  Value reply = doc.dict();
  reply.add("result", Value::string("error"));
  reply.add("error-reason", Value::string("Unknown call-id"));
  Value totals = reply.add("totals", doc.dict());
  totals.add("packets", Value::integer(123456789012));
  std::string wire;
  encodeBencode(reply, wire);
  Document doc2;
  auto r = decodeBencode(wire, doc2);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, reply);
}

}  // namespace
}  // namespace xems::ng
