// xemsctl: command-line client for xemsd (and any ng-speaking relay) over the ng socket.
//   xemsctl [-n IP:PORT] [--json] ping|list|query CALLID|statistics|terminate CALLID
#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "common/net.h"
#include "common/unique_fd.h"
#include "ctrl/ng/value.h"

using xems::ng::Document;
using xems::ng::Value;

namespace {

constexpr const char* kUsage =
    "Usage: xemsctl [-n|--ng IP:PORT] [--json] [--timeout MS] COMMAND\n"
    "Commands:\n"
    "  ping                 check that the daemon answers\n"
    "  list                 list calls (ids)\n"
    "  query CALLID         show a call: participants, media, streams, counters\n"
    "  statistics           daemon-wide counters\n"
    "  terminate CALLID     end a call at once (delete with delay 0)\n";

struct Options {
  std::string ng = "127.0.0.1:2223";
  bool json = false;
  int timeout_ms = 2000;
  std::vector<std::string> args;
};

// Sends one request and returns the reply payload (without cookie), retrying on timeout.
xems::Result<std::string> request(const Options& o, const std::string& payload) {
  auto addr = xems::SockAddr::parse(o.ng);
  if (!addr || addr->port() == 0) {
    return XEMS_INVALID(fmt::format("bad ng address '{}'", o.ng));
  }
  xems::UniqueFd fd(::socket(addr->family() == xems::Family::kIpv6 ? AF_INET6 : AF_INET,
                             SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) {
    return XEMS_ERRNO(errno, "socket");
  }
  std::random_device rd;
  std::string cookie = fmt::format("xemsctl_{:08x}", rd());
  std::string msg = cookie + " " + payload;
  std::vector<char> buf(65536);
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (::sendto(fd.get(), msg.data(), msg.size(), 0, addr->sa(), addr->len()) < 0) {
      return XEMS_ERRNO(errno, fmt::format("send to {}: {}", o.ng, std::strerror(errno)));
    }
    pollfd p{fd.get(), POLLIN, 0};
    while (::poll(&p, 1, o.timeout_ms / 3 + 1) > 0) {
      ssize_t n = ::recv(fd.get(), buf.data(), buf.size(), 0);
      if (n <= 0) {
        break;
      }
      std::string_view r(buf.data(), static_cast<size_t>(n));
      if (r.substr(0, cookie.size() + 1) == cookie + " ") {
        return std::string(r.substr(cookie.size() + 1));
      }
    }
  }
  return XEMS_ERROR(std::make_error_code(std::errc::timed_out),
                    fmt::format("no reply from {}", o.ng));
}

std::string str(const Value* v) {
  if (v == nullptr) {
    return "-";
  }
  if (v->isInt()) {
    return std::to_string(v->asInt());
  }
  return std::string(v->asString());
}

std::string endpoint(const Value* e) {
  if (e == nullptr || !e->isDict() || e->find("address") == nullptr) {
    return "-";
  }
  return fmt::format("{}:{}", str(e->find("address")), str(e->find("port")));
}

void printQuery(const std::string& call_id, const Value& r) {
  fmt::print("call {}  created {}  last signal {}\n", call_id, str(r.find("created")),
             str(r.find("last signal")));
  const Value* tags = r.find("tags");
  if (tags == nullptr || !tags->isDict()) {
    return;
  }
  fmt::print("{:<18} {:>3} {:<5} {:<4} {:<22} {:<22} {:>9} {:>11} {:>9} {:>9} {:>7}\n", "tag",
             "m", "type", "comp", "local", "endpoint", "packets", "bytes", "forwarded", "xdp",
             "foreign");
  for (const auto& [tag, t] : tags->dict()) {
    const Value* medias = t.find("medias");
    if (medias == nullptr || !medias->isList()) {
      continue;
    }
    for (const auto& m : medias->list()) {
      const Value* streams = m.find("streams");
      if (streams == nullptr || !streams->isList()) {
        continue;
      }
      for (const auto& s : streams->list()) {
        const Value* st = s.find("stats");
        const Value* flags = s.find("flags");
        std::string comp = flags && flags->isList() && !flags->list().empty()
                               ? std::string(flags->list().front().asString())
                               : "-";
        const Value* ks = s.find("kernel stats");
        bool kernelized = false;
        if (flags != nullptr && flags->isList()) {
          for (const auto& f : flags->list()) {
            kernelized |= f.isString() && f.asString() == "kernelized";
          }
        }
        // xdp: packets XDP forwarded without the worker; '*' marks a stream offloaded now.
        std::string xdp = str(ks ? ks->find("packets") : nullptr) + (kernelized ? "*" : "");
        fmt::print("{:<18} {:>3} {:<5} {:<4} {:<22} {:<22} {:>9} {:>11} {:>9} {:>9} {:>7}\n", tag,
                   str(m.find("index")), str(m.find("type")), comp,
                   fmt::format("{}:{}", str(s.find("local address")), str(s.find("local port"))),
                   endpoint(s.find("endpoint")), str(st ? st->find("packets") : nullptr),
                   str(st ? st->find("bytes") : nullptr), str(s.find("forwarded")), xdp,
                   str(s.find("dropped foreign source")));
      }
    }
  }
}

void printDict(const Value& v, int indent) {
  for (const auto& [k, e] : v.dict()) {
    if (e.isDict()) {
      fmt::print("{:{}}{}:\n", "", indent, k);
      printDict(e, indent + 2);
    } else if (e.isList()) {
      fmt::print("{:{}}{}: {} entries\n", "", indent, k, e.list().size());
    } else {
      fmt::print("{:{}}{:<28} {}\n", "", indent, k, str(&e));
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "-n" || a == "--ng") && i + 1 < argc) {
      o.ng = argv[++i];
    } else if (a.rfind("--ng=", 0) == 0) {
      o.ng = a.substr(5);
    } else if (a == "--json") {
      o.json = true;
    } else if (a == "--timeout" && i + 1 < argc) {
      o.timeout_ms = std::atoi(argv[++i]);
    } else if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else {
      o.args.push_back(a);
    }
  }
  if (o.args.empty()) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const std::string& cmd = o.args[0];
  Document doc;
  Value req = doc.dict();
  if (cmd == "ping" || cmd == "list" || cmd == "statistics") {
    req.add("command", doc.str(cmd));
    if (cmd == "list") {
      req.add("limit", Value::integer(1000000));
    }
  } else if ((cmd == "query" || cmd == "terminate") && o.args.size() == 2) {
    req.add("command", Value::string(cmd == "query" ? "query" : "delete"));
    req.add("call-id", doc.str(o.args[1]));
    if (cmd == "terminate") {
      req.add("delete-delay", Value::integer(0));
      Value flags = doc.list();
      flags.push(Value::string("fatal"));
      req.add("flags", flags);
    }
  } else {
    std::fputs(kUsage, stderr);
    return 2;
  }
  std::string payload;
  xems::ng::encodeBencode(req, payload);
  auto reply = request(o, payload);
  if (!reply) {
    std::fprintf(stderr, "xemsctl: %s\n", reply.error().message.c_str());
    return 1;
  }
  auto v = xems::ng::decodeBencode(*reply, doc);
  if (!v || !v->isDict()) {
    std::fprintf(stderr, "xemsctl: undecodable reply\n");
    return 1;
  }
  std::string result = str(v->find("result"));
  if (o.json) {
    std::string out;
    xems::ng::encodeJson(*v, out);
    std::puts(out.c_str());
    return result == "error" ? 1 : 0;
  }
  if (result == "error") {
    std::fprintf(stderr, "xemsctl: %s\n", str(v->find("error-reason")).c_str());
    return 1;
  }
  if (cmd == "ping") {
    std::puts(result.c_str());
  } else if (cmd == "list") {
    const Value* calls = v->find("calls");
    if (calls != nullptr && calls->isList()) {
      for (const auto& c : calls->list()) {
        std::puts(std::string(c.asString()).c_str());
      }
    }
  } else if (cmd == "query") {
    printQuery(o.args[1], *v);
  } else if (cmd == "terminate") {
    std::printf("call %s terminated\n", o.args[1].c_str());
  } else {
    const Value* st = v->find("statistics");
    if (st != nullptr && st->isDict()) {
      printDict(*st, 0);
    }
  }
  return 0;
}
