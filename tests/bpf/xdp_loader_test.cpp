// datapath/bpf/xdp_loader: attach, pin, re-open across restarts (also after kill -9), detach.
// Runs in the private network namespace of NetEnv with its own veth pair, and in a private mount
// namespace with its own bpffs: nothing on the host's interfaces or /sys/fs/bpf is touched.
#include "datapath/bpf/xdp_loader.h"

#include <gtest/gtest.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <filesystem>

#include "tests/bpf/bpf_tester.h"

namespace xems::bpftest {
namespace {

using namespace xems::datapath::bpf;  // NOLINT(google-build-using-namespace): test brevity

constexpr const char* kIf = "xl0";
constexpr const char* kPeer = "xl1";

uint32_t attachedProgId(uint32_t ifindex) {
  uint32_t id = 0;
  if (bpf_xdp_query_id(static_cast<int>(ifindex), 0, &id) != 0) {
    return 0;
  }
  return id;
}

bool exists(const std::string& p) {
  return std::filesystem::exists(p);
}

class XdpLoaderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string why;
    if (NetEnv::get(&why) == nullptr) {  // moves this process into the private netns
      skip_ = "no private network namespace: " + why;
      return;
    }
    if (!sh(std::string("ip link add ") + kIf + " type veth peer name " + kPeer) ||
        !sh(std::string("ip link set ") + kIf + " up") ||
        !sh(std::string("ip link set ") + kPeer + " up")) {
      skip_ = "cannot create the veth pair";
      return;
    }
    if (::unshare(CLONE_NEWNS) != 0) {
      skip_ = std::string("unshare(CLONE_NEWNS): ") + std::strerror(errno);
      return;
    }
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      skip_ = std::string("making / private: ") + std::strerror(errno);
      return;
    }
    char tmpl[] = "/tmp/xems-xdpl-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) {
      skip_ = "mkdtemp failed";
      return;
    }
    root_ = tmpl;
    if (::mount("bpf", root_.c_str(), "bpf", 0, nullptr) != 0) {
      skip_ = std::string("mount bpffs: ") + std::strerror(errno);
      ::rmdir(root_.c_str());
      root_.clear();
      return;
    }
    mounted_ = true;
  }
  static void TearDownTestSuite() {
    if (mounted_) {
      ::umount2(root_.c_str(), MNT_DETACH);
    }
    if (!root_.empty()) {
      ::rmdir(root_.c_str());
    }
    sh(std::string("ip link del ") + kIf);
  }

  void SetUp() override {
    if (!skip_.empty()) {
      GTEST_SKIP() << skip_;
    }
    ifindex_ = if_nametoindex(kIf);
    ASSERT_NE(ifindex_, 0U);
    pins_ = root_ + "/xems/" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }

  /// open() or skip where the kernel refuses (no privileges, no XDP).
  std::unique_ptr<XdpLoader> openOrSkip(const XdpLoaderOptions& opts) {
    auto l = XdpLoader::open(opts);
    if (!l.ok()) {
      if (isPermissionError(l.error())) {
        skipped_ = l.error().message;
      } else {
        ADD_FAILURE() << l.error().message;
      }
      return nullptr;
    }
    return std::move(*l);
  }

  XdpLoaderOptions opts() const { return {.pin_root = pins_, .interfaces = {kIf}}; }

  static inline std::string skip_;
  static inline std::string root_;
  static inline bool mounted_ = false;
  uint32_t ifindex_ = 0;
  std::string pins_;
  std::string skipped_;
};

#define OPEN_OR_SKIP(var, o)       \
  auto var = openOrSkip(o);        \
  if (!skipped_.empty()) {         \
    GTEST_SKIP() << skipped_;      \
  }                                \
  ASSERT_NE(var, nullptr)

TEST_F(XdpLoaderTest, AttachPinRestartReopenDetach) {
  const SockAddr local = SockAddr::parse("203.0.113.1:30000").value();
  const FlowKey key = makeFlowKey(local).value();
  uint32_t prog1 = 0;
  uint32_t link1 = 0;
  {
    OPEN_OR_SKIP(l, opts());
    prog1 = l->progId();
    ASSERT_NE(prog1, 0U);
    EXPECT_EQ(attachedProgId(ifindex_), prog1);
    ASSERT_EQ(l->attachments().size(), 1U);
    link1 = l->attachments()[0].link_id;
    EXPECT_NE(link1, 0U);
    EXPECT_FALSE(l->attachments()[0].reopened);
    EXPECT_TRUE(l->nativeMode(kIf)) << "veth supports native XDP";
    EXPECT_FALSE(l->nativeMode("nope0"));
    EXPECT_TRUE(exists(pins_ + "/link_" + kIf));
    for (const char* m :
         {XEMS_MAP_FLOWS, XEMS_MAP_FLOW_STATS, XEMS_MAP_COUNTERS, XEMS_MAP_TX_PORTS}) {
      EXPECT_TRUE(exists(pins_ + "/" + m)) << m;
    }
    ASSERT_TRUE(l->flows().upsert(FlowEntry{.local = local, .stats_idx = 5}).ok());
  }  // destroyed without detachAll: a restart

  // Between the two instances the program stays attached and everything stays pinned.
  EXPECT_EQ(attachedProgId(ifindex_), prog1);
  EXPECT_TRUE(exists(pins_ + "/link_" + kIf));
  EXPECT_TRUE(exists(pins_ + "/" XEMS_MAP_FLOWS));

  {
    OPEN_OR_SKIP(l, opts());
    ASSERT_EQ(l->attachments().size(), 1U);
    EXPECT_TRUE(l->attachments()[0].reopened);
    EXPECT_EQ(l->attachments()[0].link_id, link1) << "the same link, updated in place";
    EXPECT_EQ(attachedProgId(ifindex_), l->progId()) << "the new program runs";
    auto v = l->flows().lookup(key);
    ASSERT_TRUE(v.ok()) << v.error().message;
    ASSERT_TRUE(v->has_value()) << "the first instance's flow is in the reused map";
    EXPECT_EQ((*v)->stats_idx, 5U);

    ASSERT_TRUE(l->detachAll().ok());
    EXPECT_EQ(attachedProgId(ifindex_), 0U);
    EXPECT_FALSE(exists(pins_ + "/link_" + kIf));
    EXPECT_FALSE(exists(pins_ + "/" XEMS_MAP_FLOWS));
    EXPECT_FALSE(exists(pins_)) << "the empty pin root is removed";
  }
  EXPECT_EQ(attachedProgId(ifindex_), 0U);
}

// A daemon killed with -9 closes nothing: the next one finds the link and the maps pinned.
TEST_F(XdpLoaderTest, ReopensAfterKill9) {
  const SockAddr local = SockAddr::parse("203.0.113.1:30002").value();
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto l = XdpLoader::open(opts());
    if (!l.ok()) {
      ::_exit(isPermissionError(l.error()) ? 77 : 1);
    }
    if (!(*l)->flows().upsert(FlowEntry{.local = local, .stats_idx = 9}).ok()) {
      ::_exit(2);
    }
    ::kill(::getpid(), SIGKILL);
    ::_exit(3);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
    GTEST_SKIP() << "the kernel refuses to load XDP here";
  }
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;
  const uint32_t prog_after_kill = attachedProgId(ifindex_);
  EXPECT_NE(prog_after_kill, 0U) << "still attached after kill -9";

  OPEN_OR_SKIP(l, opts());
  EXPECT_TRUE(l->attachments()[0].reopened);
  EXPECT_EQ(attachedProgId(ifindex_), l->progId());
  auto v = l->flows().lookup(makeFlowKey(local).value());
  ASSERT_TRUE(v.ok() && v->has_value());
  EXPECT_EQ((*v)->stats_idx, 9U);
  EXPECT_TRUE(l->detachAll().ok());
  EXPECT_EQ(attachedProgId(ifindex_), 0U);
}

TEST_F(XdpLoaderTest, PinRootNotOnBpffsIsAClearError) {
  char tmpl[] = "/tmp/xems-notbpf-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  auto l = XdpLoader::open({.pin_root = dir + "/xems/x", .interfaces = {kIf}});
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.error().message.find("is not on a bpf filesystem"), std::string::npos)
      << l.error().message;
  EXPECT_FALSE(exists(dir + "/xems")) << "nothing created off bpffs";
  EXPECT_EQ(attachedProgId(ifindex_), 0U);
  EXPECT_FALSE(probeXdp(dir).ok());
  ::rmdir(tmpl);
}

TEST_F(XdpLoaderTest, UnknownInterfaceIsAClearErrorAndAttachesNothing) {
  auto l = XdpLoader::open({.pin_root = pins_, .interfaces = {kIf, "nope0"}});
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.error().message.find("interface 'nope0' not found"), std::string::npos)
      << l.error().message;
  EXPECT_EQ(attachedProgId(ifindex_), 0U) << "checked before anything is attached";
  EXPECT_FALSE(exists(pins_ + "/link_" + kIf));
}

// Loopback has no native XDP: generic mode if allowed (nativeMode false), else an error.
TEST_F(XdpLoaderTest, GenericFallbackOnlyWhenAllowed) {
  {
    auto l = XdpLoader::open({.pin_root = pins_, .interfaces = {"lo"}, .allow_generic = false});
    if (!l.ok() && isPermissionError(l.error())) {
      GTEST_SKIP() << l.error().message;
    }
    ASSERT_FALSE(l.ok());
    EXPECT_NE(l.error().message.find("generic mode is not allowed"), std::string::npos)
        << l.error().message;
    EXPECT_EQ(attachedProgId(1), 0U);
    EXPECT_FALSE(exists(pins_ + "/link_lo"));
  }
  OPEN_OR_SKIP(l, (XdpLoaderOptions{.pin_root = pins_, .interfaces = {"lo"}}));
  EXPECT_FALSE(l->nativeMode("lo"));
  LIBBPF_OPTS(bpf_xdp_query_opts, q);
  ASSERT_EQ(bpf_xdp_query(1, 0, &q), 0);
  EXPECT_EQ(q.attach_mode, XDP_ATTACHED_SKB);
  EXPECT_EQ(q.skb_prog_id, l->progId());
  EXPECT_TRUE(l->detachAll().ok());
  EXPECT_EQ(attachedProgId(1), 0U);
}

// A failure on the second interface removes the link this open() created on the first.
TEST_F(XdpLoaderTest, FailedOpenRollsBackNewLinks) {
  auto l = XdpLoader::open(
      {.pin_root = pins_, .interfaces = {kIf, "lo"}, .allow_generic = false});
  if (!l.ok() && isPermissionError(l.error())) {
    GTEST_SKIP() << l.error().message;
  }
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.error().message.find("attaching XDP to lo"), std::string::npos)
      << l.error().message;
  EXPECT_EQ(attachedProgId(ifindex_), 0U);
  EXPECT_FALSE(exists(pins_ + "/link_" + kIf));
}

// The interface is deleted and re-created under the same name: the pinned link is defunct
// (attached to nothing), so the next open() replaces it with a new link.
TEST_F(XdpLoaderTest, DefunctPinnedLinkIsReplaced) {
  uint32_t link1 = 0;
  {
    OPEN_OR_SKIP(l, opts());
    link1 = l->attachments()[0].link_id;
  }
  ASSERT_TRUE(sh(std::string("ip link del ") + kIf));
  ASSERT_TRUE(sh(std::string("ip link add ") + kIf + " type veth peer name " + kPeer));
  ASSERT_TRUE(sh(std::string("ip link set ") + kIf + " up"));
  ASSERT_TRUE(sh(std::string("ip link set ") + kPeer + " up"));
  ifindex_ = if_nametoindex(kIf);
  EXPECT_EQ(attachedProgId(ifindex_), 0U);

  OPEN_OR_SKIP(l, opts());
  EXPECT_FALSE(l->attachments()[0].reopened);
  EXPECT_NE(l->attachments()[0].link_id, link1);
  EXPECT_EQ(attachedProgId(ifindex_), l->progId());
  EXPECT_TRUE(l->detachAll().ok());
}

TEST_F(XdpLoaderTest, ProbeOnPrivateBpffs) {
  auto st = probeXdp(root_ + "/xems/probe");
  if (!st.ok() && isPermissionError(st.error())) {
    GTEST_SKIP() << st.error().message;
  }
  EXPECT_TRUE(st.ok()) << st.error().message;
  EXPECT_FALSE(XdpLoader::open({.pin_root = pins_, .mode = OffloadMode::kOff}).ok());
}

}  // namespace
}  // namespace xems::bpftest
