#include "common/config.h"

#include <gtest/gtest.h>

namespace xems {
namespace {

Result<ParsedArgs> parse(std::vector<const char*> args) {
  args.insert(args.begin(), "xemsd");
  return parseArgs(static_cast<int>(args.size()), args.data());
}

TEST(ConfigTest, CommandLineInterfacesAndDefaults) {
  auto r = parse({"--interface", "pub/203.0.113.1!198.51.100.7", "-i", "priv/10.0.0.1",
                  "--listen-ng=127.0.0.1:2223", "--port-min", "40000", "--port-max=40100"});
  ASSERT_TRUE(r.ok()) << r.error().message;
  const Config& c = r->config;
  ASSERT_EQ(c.interfaces.size(), 2u);
  EXPECT_EQ(c.interfaces[0].name, "pub");
  EXPECT_EQ(c.interfaces[0].local.toString(), "203.0.113.1");
  EXPECT_EQ(c.interfaces[0].advertised.toString(), "198.51.100.7");
  EXPECT_EQ(c.interfaces[1].advertised.toString(), "10.0.0.1");
  EXPECT_EQ(c.listen_ng.at(0).toString(), "127.0.0.1:2223");
  EXPECT_EQ(c.port_min, 40000);
  EXPECT_EQ(c.port_max, 40100);
  EXPECT_EQ(c.timeout, 60u);
  EXPECT_EQ(c.endpoint_learning, EndpointLearning::kDelayed);
}

TEST(ConfigTest, IniFileSectionAndListSeparator) {
  Config c;
  auto st = applyIni(c,
                     "# comment\n[other]\nport-min = 1\n[xemsd]\n"
                     "interface = a/127.0.0.1;b/::1\nlisten-ng = 2223\ntimeout = 30\n",
                     "xemsd", "test.conf");
  ASSERT_TRUE(st.ok()) << st.error().message;
  ASSERT_EQ(c.interfaces.size(), 2u);
  EXPECT_EQ(c.interfaces[1].local.toString(), "::1");
  EXPECT_EQ(c.listen_ng.at(0).toString(), "127.0.0.1:2223");
  EXPECT_EQ(c.port_min, 30000);  // [other] ignored
  EXPECT_EQ(c.timeout, 30u);
}

TEST(ConfigTest, BadInputGivesClearErrors) {
  Config c;
  auto st = applyIni(c, "[xemsd]\nno-such-key = 1\n", "xemsd", "x.conf");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, "x.conf:2: unknown option 'no-such-key'");

  st = applyIni(c, "[xemsd]\ntimeout = soon\n", "xemsd", "x.conf");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("'soon' is not a number"), std::string::npos);

  auto r = parse({"--interface", "999.1.1.1", "--listen-ng", "2223"});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("not an IP address"), std::string::npos);

  r = parse({"--interface", "127.0.0.1"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "no --listen-ng given");

  r = parse({"--bogus"});
  ASSERT_FALSE(r.ok());

  r = parse({"-i", "127.0.0.1", "-n", "2223", "--port-min", "500", "--port-max", "400"});
  ASSERT_FALSE(r.ok());
  // 30001..30004 holds one even/odd pair only (30002/30003).
  r = parse({"-i", "127.0.0.1", "-n", "2223", "--port-min", "30001", "--port-max", "30004"});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("at least two RTP/RTCP pairs"), std::string::npos);
  EXPECT_TRUE(
      parse({"-i", "127.0.0.1", "-n", "2223", "--port-min", "30000", "--port-max", "30003"}).ok());
  r = parse({"-i", "0.0.0.0", "-n", "2223"});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("wildcard"), std::string::npos);
  EXPECT_TRUE(parse({"-i", "0.0.0.0!203.0.113.1", "-n", "2223"}).ok());
}

TEST(ConfigTest, HelpListsEveryOption) {
  std::string h = helpText("xemsd");
  for (const auto& o : optionTable()) {
    EXPECT_NE(h.find(std::string("--") + std::string(o.name)), std::string::npos) << o.name;
  }
}

TEST(NetTest, ParseAndFormat) {
  auto a = SockAddr::parse("[2001:db8::1]:5060");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->toString(), "[2001:db8::1]:5060");
  EXPECT_EQ(a->family(), Family::kIpv6);
  EXPECT_FALSE(SockAddr::parse("1.2.3.4:99999"));
  EXPECT_FALSE(SockAddr::parse("nonsense:1"));
  EXPECT_EQ(SockAddr::parse("localhost:9")->toString(), "127.0.0.1:9");
  EXPECT_EQ(*SockAddr::parse("1.2.3.4:5"), *SockAddr::parse("1.2.3.4:5"));
}

}  // namespace
}  // namespace xems
