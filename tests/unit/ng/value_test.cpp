#include <gtest/gtest.h>

#include <string>

#include "ctrl/ng/value.h"
#include "tests/unit/ng/ng_test_util.h"

namespace xems::ng {
namespace {

TEST(ValueTest, DefaultIsNull) {
  Value v;
  EXPECT_TRUE(v.isNull());
  EXPECT_EQ(v.type(), Value::Type::kNull);
  EXPECT_EQ(v.asString(), "");
  EXPECT_EQ(v.find("x"), nullptr);
}

TEST(ValueTest, FindOnNonDictionaries) {
  Document doc;
  EXPECT_EQ(Value::string("a").find("a"), nullptr);
  EXPECT_EQ(Value::integer(1).findInt("a"), std::nullopt);
  EXPECT_EQ(doc.list().findString("a"), std::nullopt);
}

TEST(ValueTest, FindStringAndFindInt) {
  Document doc;
  auto r = decodeBencode(
      "d4:call3:abc3:inti-7e3:numi30e3:str2:303:neg3:-125:empty0:4:junk3:12a4:plus3:+124:huge"
      "20:999999999999999999994:listle5:space3: 12e",
      doc);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const Value& v = *r;
  EXPECT_EQ(v.findString("call"), "abc");
  EXPECT_EQ(v.findString("int"), std::nullopt);  // not a string
  EXPECT_EQ(v.findString("missing"), std::nullopt);
  EXPECT_EQ(v.findInt("int"), -7);
  EXPECT_EQ(v.findInt("num"), 30);
  EXPECT_EQ(v.findInt("str"), 30);  // numeric strings are accepted, as rtpengine does
  EXPECT_EQ(v.findInt("neg"), -12);
  EXPECT_EQ(v.findInt("empty"), std::nullopt);
  EXPECT_EQ(v.findInt("junk"), std::nullopt);
  EXPECT_EQ(v.findInt("plus"), std::nullopt);
  EXPECT_EQ(v.findInt("huge"), std::nullopt);
  EXPECT_EQ(v.findInt("list"), std::nullopt);
  EXPECT_EQ(v.findInt("space"), std::nullopt);
  EXPECT_EQ(v.findInt("call"), std::nullopt);
}

TEST(ValueTest, BuildersAppendInOrder) {
  Document doc;
  Value reply = doc.dict();
  reply.add("result", Value::string("ok"));
  Value& sdp = reply.add("sdp", Value::string("v=0"));
  EXPECT_EQ(sdp.asString(), "v=0");
  Value calls = reply.add("calls", doc.list());
  calls.push(Value::string("c1"));
  Value& second = calls.push(Value::string("c2"));
  EXPECT_EQ(second.asString(), "c2");
  ASSERT_EQ(reply.dict().size(), 3u);
  EXPECT_EQ(reply.dict()[2].first, "calls");
  // Handles share their container: the copy in the dict sees the pushes.
  EXPECT_EQ(reply.find("calls")->list().size(), 2u);
  std::string out;
  encodeBencode(reply, out);
  EXPECT_EQ(out, "d6:result2:ok3:sdp3:v=05:callsl2:c12:c2ee");
}

TEST(ValueTest, InternCopiesIntoTheArena) {
  Document doc;
  std::string tmp = "temporary";
  const std::string_view copy = doc.intern(tmp);
  Value v = doc.str(tmp);
  tmp.assign("overwritten");
  EXPECT_EQ(copy, "temporary");
  EXPECT_EQ(v.asString(), "temporary");
  EXPECT_TRUE(doc.intern("").empty());
}

TEST(ValueTest, ArenaGrowsBeyondItsInitialBuffer) {
  Document doc;
  Value list = doc.list();
  for (int i = 0; i < 10000; ++i) {
    list.push(doc.str("item-" + std::to_string(i)));
  }
  ASSERT_EQ(list.list().size(), 10000u);
  EXPECT_EQ(list.list()[9999].asString(), "item-9999");
  EXPECT_EQ(list.list()[0].asString(), "item-0");
}

TEST(ValueTest, Equality) {
  Document doc;
  Value a = doc.dict();
  a.add("k", Value::integer(1));
  Value b = doc.dict();
  b.add("k", Value::integer(1));
  EXPECT_EQ(a, b);
  b.add("k", Value::integer(1));
  EXPECT_NE(a, b);  // size differs
  EXPECT_NE(Value::string("1"), Value::integer(1));
  EXPECT_EQ(Value(), Value());
  EXPECT_NE(Value(), Value::string(""));
  Value l1 = doc.list();
  Value l2 = doc.list();
  l1.push(Value::string("x"));
  l2.push(Value::string("y"));
  EXPECT_NE(l1, l2);
  Value d1 = doc.dict();
  Value d2 = doc.dict();
  d1.add("a", Value::integer(1));
  d2.add("b", Value::integer(1));
  EXPECT_NE(d1, d2);  // keys differ
  EXPECT_NE(doc.list(), doc.dict());
}

}  // namespace
}  // namespace xems::ng
