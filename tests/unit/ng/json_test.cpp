#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

#include "ctrl/ng/value.h"
#include "tests/unit/ng/ng_test_util.h"

namespace xems::ng {
namespace {

using testing_util::kOfferSdp;
using testing_util::offerBencode;
using testing_util::offerJson;

std::string toJson(const Value& v) {
  std::string out;
  encodeJson(v, out);
  return out;
}

std::string jsonOfString(std::string_view s) { return toJson(Value::string(s)); }

TEST(JsonTest, DecodesRtpenginePing) {
  Document doc;
  auto r = decodeJson(R"({"command":"ping"})", doc);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->isDict());
  EXPECT_EQ(r->findString("command"), "ping");
}

TEST(JsonTest, EncodesRtpenginePong) {
  Document doc;
  Value reply = doc.dict();
  reply.add("result", Value::string("pong"));
  EXPECT_EQ(toJson(reply), R"({"result":"pong"})");
}

TEST(JsonTest, OfferDecodesToTheSameValueAsItsBencodeForm) {
  const std::string ben = offerBencode();
  const std::string json = offerJson();
  Document doc_b;
  Document doc_j;
  auto b = decodeBencode(ben, doc_b);
  auto j = decodeJson(json, doc_j);
  ASSERT_TRUE(b.ok()) << b.error().message;
  ASSERT_TRUE(j.ok()) << j.error().message;
  EXPECT_EQ(*b, *j);
  EXPECT_EQ(j->findString("sdp"), kOfferSdp);
  // And across encoders: JSON of the bencode value is the JSON text, bencode of the JSON value is
  // the bencode text.
  EXPECT_EQ(toJson(*b), json);
  std::string ben2;
  encodeBencode(*j, ben2);
  EXPECT_EQ(ben2, ben);
}

TEST(JsonTest, ScalarMapping) {
  Document doc;
  auto r = decodeJson(
      R"({"t":true,"f":false,"n":null,"i":-42,"z":-0,"big":9223372036854775807,)"
      R"("huge":18446744073709551615,"huger":123456789012345678901234567890,)"
      R"("min":-9223372036854775808,"flt":1.5,"exp":1e3})",
      doc);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->findString("t"), "true");
  EXPECT_EQ(r->findString("f"), "false");
  EXPECT_EQ(r->findString("n"), "");
  EXPECT_EQ(r->find("i")->asInt(), -42);
  EXPECT_TRUE(r->find("z")->isInt());
  EXPECT_EQ(r->find("z")->asInt(), 0);
  EXPECT_EQ(r->find("big")->asInt(), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(r->find("min")->asInt(), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(r->findString("huge"), "18446744073709551615");
  EXPECT_EQ(r->findString("huger"), "123456789012345678901234567890");
  EXPECT_EQ(r->findString("flt"), "1.5");
  EXPECT_EQ(r->findString("exp"), "1e3");
}

TEST(JsonTest, TopLevelScalarsAndArrays) {
  Document doc;
  auto r = decodeJson(R"(["a",1,[],{}])", doc);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->isList());
  EXPECT_EQ(toJson(*r), R"(["a",1,[],{}])");
  r = decodeJson(" \"x\" ", doc);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->asString(), "x");
}

TEST(JsonTest, UnescapesIntoTheArena) {
  Document doc;
  auto r = decodeJson(R"({"k\"ey":"a\\b\/\u00e9\ud83d\ude00\n\u0000z"})", doc);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->dict()[0].first, "k\"ey");
  EXPECT_EQ(r->dict()[0].second.asString(),
            std::string("a\\b/\xc3\xa9\xf0\x9f\x98\x80\n\0z", 13));
}

TEST(JsonTest, KeepsDuplicateKeysInWireOrder) {
  Document doc;
  auto r = decodeJson(R"({"a":1,"b":2,"a":3})", doc);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->dict().size(), 3u);
  EXPECT_EQ(r->findInt("a"), 1);
  EXPECT_EQ(toJson(*r), R"({"a":1,"b":2,"a":3})");
}

TEST(JsonTest, EscapesQuotesBackslashAndControlCharacters) {
  EXPECT_EQ(jsonOfString("say \"hi\" \\ /"), R"("say \"hi\" \\ /")");
  EXPECT_EQ(jsonOfString("v=0\r\nm=audio\t\b\f"), R"("v=0\r\nm=audio\t\b\f")");
  EXPECT_EQ(jsonOfString(std::string("\0\x01\x1f\x7f", 4)), "\"\\u0000\\u0001\\u001f\x7f\"");
}

TEST(JsonTest, ValidUtf8IsWrittenVerbatim) {
  const std::string s = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf \xed\x9f\xbf";
  EXPECT_EQ(jsonOfString(s), "\"" + s + "\"");
}

// Each byte as the code point U+00XX, UTF-8 encoded.
std::string latin1ToUtf8(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back(static_cast<char>(0xc0 | (c >> 6)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3f)));
    }
  }
  return out;
}

TEST(JsonTest, InvalidUtf8BytesAreEscapedAsLatin1) {
  struct Case {
    std::string in;
    std::string json;
    std::string decoded;  // what a JSON reader gets back
  };
  const Case cases[] = {
      {"\xff", R"("\u00ff")", latin1ToUtf8("\xff")},
      {"a\x80z", R"("a\u0080z")", latin1ToUtf8("a\x80z")},
      {"\xc0\xaf", R"("\u00c0\u00af")", latin1ToUtf8("\xc0\xaf")},  // overlong '/'
      {"\xe0\x80\xaf", R"("\u00e0\u0080\u00af")", latin1ToUtf8("\xe0\x80\xaf")},  // overlong
      {"\xed\xa0\x80", R"("\u00ed\u00a0\u0080")", latin1ToUtf8("\xed\xa0\x80")},  // surrogate
      {"\xf4\x90\x80\x80", R"("\u00f4\u0090\u0080\u0080")",
       latin1ToUtf8("\xf4\x90\x80\x80")},                                // above U+10FFFF
      {"\xe2\x82", R"("\u00e2\u0082")", latin1ToUtf8("\xe2\x82")},     // truncated at the end
      {"\xe2\x82x", R"("\u00e2\u0082x")", latin1ToUtf8("\xe2\x82x")},  // truncated mid-string
      {"\xc3\xa9\xc3", "\"\xc3\xa9\\u00c3\"", "\xc3\xa9" + latin1ToUtf8("\xc3")},  // é, stray
  };
  for (const auto& c : cases) {
    const std::string json = jsonOfString(c.in);
    EXPECT_EQ(json, c.json);
    // Always valid JSON: it parses back, as the Latin-1 reading of each stray byte.
    Document doc;
    auto r = decodeJson(json, doc);
    ASSERT_TRUE(r.ok()) << json;
    EXPECT_EQ(r->asString(), c.decoded);
  }
}

TEST(JsonTest, EscapedKeysAndNullEncoding) {
  Document doc;
  Value v = doc.dict();
  v.add("a\"b", Value());
  v.add("", Value::integer(-1));
  EXPECT_EQ(toJson(v), R"({"a\"b":null,"":-1})");
}

TEST(JsonTest, EncoderAppends) {
  std::string out = "c4 ";
  encodeJson(Value::integer(5), out);
  EXPECT_EQ(out, "c4 5");
}

TEST(JsonTest, EncodedJsonDecodesToTheSameValue) {
  Document doc;
  Value reply = doc.dict();
  reply.add("result", Value::string("ok"));
  reply.add("sdp", Value::string(kOfferSdp));
  Value tags = reply.add("tags", doc.list());
  tags.push(Value::string("t\"1\\"));
  tags.push(Value::integer(std::numeric_limits<int64_t>::min()));
  const std::string json = toJson(reply);
  Document doc2;
  auto r = decodeJson(json, doc2);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, reply);
}

class JsonRejectTest : public ::testing::TestWithParam<std::string> {};

TEST_P(JsonRejectTest, RejectsWithRtpengineMessage) {
  Document doc;
  auto r = decodeJson(GetParam(), doc);
  ASSERT_FALSE(r.ok()) << "accepted: " << GetParam();
  EXPECT_EQ(r.error().message, "Failed to parse JSON document");
  EXPECT_EQ(r.error().message, kJsonParseError);
}

INSTANTIATE_TEST_SUITE_P(Malformed, JsonRejectTest,
                         ::testing::Values("", " ", "{", "}", "{\"a\":}", "{\"a\" 1}", "[1,]",
                                           "{\"a\":1,}", "{'a':1}", "{\"a\":1} x",
                                           "{\"a\":1}{}", "nul", "01", "1.", "\"abc",
                                           "\"a\x01\"", "\"\xff\"", "\"\xc0\xaf\"",
                                           "\"\\ud800\"", "\"\\x41\"", "{\"a\":1} // c",
                                           "/* c */ {}", std::string("{\"a\":1}\0", 8),
                                           std::string("{\"a\":1}\0garbage", 15),
                                           std::string("\"a\0b\"", 5)));

TEST(JsonTest, AcceptsNestingUpToTheLimit) {
  const std::string in = std::string(kMaxDepth, '[') + std::string(kMaxDepth, ']');
  Document doc;
  auto r = decodeJson(in, doc);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(toJson(*r), in);
}

TEST(JsonTest, RejectsNestingBeyondTheLimitWithoutStackOverflow) {
  std::string objects;
  for (int i = 0; i < 50000; ++i) {
    objects += "{\"a\":";
  }
  for (const std::string& in :
       {std::string(kMaxDepth + 1, '[') + std::string(kMaxDepth + 1, ']'),
        std::string(100000, '['), std::string(100000, '[') + std::string(100000, ']'), objects}) {
    Document doc;
    auto r = decodeJson(in, doc);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message, "Failed to parse JSON document: nesting deeper than 64 levels");
  }
}

}  // namespace
}  // namespace xems::ng
