#include "ctrl/session/state_journal.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/log.h"
#include "ctrl/session/call_state.h"

namespace xems::session {
namespace {

using Json = nlohmann::json;

// A line longer than this is not a record (callToJson() output is a few KiB, at most a few
// hundred KiB with big SDP bodies); it is skipped without being held in memory.
constexpr size_t kMaxLineBytes = size_t{16} << 20;
// Records nest about 8 deep; a line nesting deeper is garbage, refused before it is parsed.
constexpr int kMaxRecordDepth = 16;
constexpr size_t kReadChunk = size_t{64} << 10;
constexpr size_t kCompactChunk = size_t{256} << 10;
constexpr uint32_t kCompactRetryRecords = 64;

Error journalErrno(int e, std::string_view what, const std::string& path) {
  return XEMS_ERRNO(e, fmt::format("state journal {}: {}: {}", path, what, std::strerror(e)));
}

// Writes all of `data` (a regular file may take it in pieces); `written` says how much went.
int writeAll(int fd, std::string_view data, size_t& written) {
  written = 0;
  while (written < data.size()) {
    const ssize_t n = ::write(fd, data.data() + written, data.size() - written);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return errno;
    }
    if (n == 0) {
      return EIO;
    }
    written += static_cast<size_t>(n);
  }
  return 0;
}

// Creates the missing directories above `path` with mode 0700 (the journal holds call-ids and
// tags: nobody else needs to read it).
Status makeParentDirs(const std::string& path) {
  for (size_t pos = path.find('/', 1); pos != std::string::npos; pos = path.find('/', pos + 1)) {
    const std::string dir = path.substr(0, pos);
    if (::mkdir(dir.c_str(), 0700) == 0) {
      continue;
    }
    const int e = errno;
    struct stat st {};
    if (e != EEXIST || ::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return journalErrno(e == EEXIST ? ENOTDIR : e, "creating " + dir, path);
    }
  }
  return okStatus();
}

// Nesting depth of JSON text within `limit` (brackets inside strings do not count).
bool nestingWithin(std::string_view s, int limit) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : s) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) {
        return false;
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

// A record line: {"op":OP,"id":ID[,"call":CALL]}. The call is dumped by the caller (it may be
// large; no copy into a wrapper object).
std::string recordLine(std::string_view op, const std::string& call_id, const Json* call) {
  std::string line = R"({"op":")";
  line += op;
  line += R"(","id":)";
  line += bytesToJson(call_id).dump();
  if (call != nullptr) {
    line += R"(,"call":)";
    line += call->dump();
  }
  line += "}\n";
  return line;
}

}  // namespace

StateJournal::StateJournal(std::string path, UniqueFd fd)
    : path_(std::move(path)), fd_(std::move(fd)) {}

Result<std::unique_ptr<StateJournal>> StateJournal::open(const std::string& path) {
  if (path.empty()) {
    return XEMS_INVALID("state journal: empty path");
  }
  XEMS_TRY_STATUS(makeParentDirs(path));
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!fd) {
    return journalErrno(errno, "open", path);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return journalErrno(errno, "fstat", path);
  }
  if (!S_ISREG(st.st_mode)) {
    return XEMS_INVALID(fmt::format("state journal {}: not a regular file", path));
  }
  std::unique_ptr<StateJournal> j(new StateJournal(path, std::move(fd)));
  XEMS_TRY_STATUS(j->replay());
  if (j->bad_lines_ != 0) {
    XLOG_WARN(kSession, "state journal {}: skipped {} unreadable line(s)", path, j->bad_lines_);
  }
  XLOG_INFO(kSession, "state journal {}: {} live call(s), {} bytes", path, j->live_.size(),
            j->file_bytes_);
  return j;
}

Status StateJournal::replay() {
  live_.clear();
  live_bytes_ = 0;
  bad_lines_ = 0;
  std::string pending;    // the current line so far
  bool skipping = false;  // inside an over-long line: drop bytes up to its end
  std::string chunk(kReadChunk, '\0');
  uint64_t offset = 0;
  try {
    for (;;) {
      const ssize_t n = ::pread(fd_.get(), chunk.data(), chunk.size(), static_cast<off_t>(offset));
      if (n < 0) {
        if (errno == EINTR) {
          continue;
        }
        return journalErrno(errno, "read", path_);
      }
      if (n == 0) {
        break;
      }
      offset += static_cast<uint64_t>(n);
      std::string_view data(chunk.data(), static_cast<size_t>(n));
      while (!data.empty()) {
        const size_t nl = data.find('\n');
        const std::string_view part = data.substr(0, nl);
        if (!skipping) {
          if (pending.size() + part.size() > kMaxLineBytes) {
            skipping = true;
            pending.clear();
            pending.shrink_to_fit();
          } else {
            pending.append(part);
          }
        }
        if (nl == std::string_view::npos) {
          break;
        }
        data.remove_prefix(nl + 1);
        if (skipping) {
          ++bad_lines_;
          skipping = false;
        } else {
          replayLine(pending);
          pending.clear();
        }
      }
    }
    // A last line without '\n' is normally the torn end of a record that a crash cut short:
    // replayLine() refuses it as incomplete JSON (a record cut just before its '\n' is whole and
    // counts). Either way the next record must start on a line of its own.
    need_newline_ = skipping || !pending.empty();
    if (skipping) {
      ++bad_lines_;
    } else if (!pending.empty()) {
      replayLine(pending);
    }
  } catch (const std::exception& e) {  // allocation failure: nothing may escape
    return XEMS_ERROR(std::make_error_code(std::errc::not_enough_memory),
                      fmt::format("state journal {}: replay: {}", path_, e.what()));
  }
  file_bytes_ = offset;
  dirty_ = false;
  return okStatus();
}

void StateJournal::replayLine(std::string_view line) {
  if (line.empty()) {
    return;  // e.g. the '\n' that ended a torn line
  }
  // nlohmann's lexer takes a NUL byte for the end of input; no valid line holds a raw one.
  if (line.find('\0') != std::string_view::npos || !nestingWithin(line, kMaxRecordDepth)) {
    ++bad_lines_;
    return;
  }
  Json rec = Json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (rec.is_discarded() || !rec.is_object()) {
    ++bad_lines_;
    return;
  }
  auto op = rec.find("op");
  auto id_it = rec.find("id");
  std::optional<std::string> id;
  if (id_it != rec.end()) {
    id = bytesFromJson(*id_it);
  }
  if (op == rec.end() || !op->is_string() || !id) {
    ++bad_lines_;
    return;
  }
  const auto& name = op->get_ref<const std::string&>();
  if (name == "put") {
    auto call = rec.find("call");
    if (call == rec.end() || !call->is_object()) {
      ++bad_lines_;
      return;
    }
    setLine(*id, std::string(line) + "\n");
  } else if (name == "del") {
    if (auto it = live_.find(*id); it != live_.end()) {
      live_bytes_ -= it->second.line.size();
      live_.erase(it);
    }
  } else {
    ++bad_lines_;
  }
}

void StateJournal::setLine(const std::string& call_id, std::string line) {
  auto [it, inserted] = live_.try_emplace(call_id);
  if (inserted) {
    it->second.seq = next_seq_++;
  }
  live_bytes_ -= it->second.line.size();
  live_bytes_ += line.size();
  it->second.line = std::move(line);
}

std::vector<const StateJournal::Entry*> StateJournal::liveInOrder() const {
  std::vector<const Entry*> out;
  out.reserve(live_.size());
  for (const auto& [id, e] : live_) {
    out.push_back(&e);
  }
  std::sort(out.begin(), out.end(), [](const Entry* a, const Entry* b) { return a->seq < b->seq; });
  return out;
}

Result<StateJournal::Loaded> StateJournal::load() {
  Loaded out;
  out.bad_lines = bad_lines_;
  try {
    for (const Entry* e : liveInOrder()) {
      Json rec = Json::parse(e->line, nullptr, /*allow_exceptions=*/false);
      auto call = rec.is_object() ? rec.find("call") : rec.end();
      if (call == rec.end() || !call->is_object()) {
        ++out.bad_lines;  // cannot happen: every kept line was checked or written by us
        continue;
      }
      out.calls.push_back(std::move(*call));
    }
  } catch (const std::exception& e) {
    return XEMS_ERROR(std::make_error_code(std::errc::not_enough_memory),
                      fmt::format("state journal {}: load: {}", path_, e.what()));
  }
  return out;
}

Status StateJournal::put(const std::string& call_id, const nlohmann::json& call) {
  if (!call.is_object()) {
    return XEMS_INVALID(fmt::format("state journal {}: put {}: not an object", path_, call_id));
  }
  std::string line;
  try {
    line = recordLine("put", call_id, &call);
  } catch (const std::exception& e) {  // dump() refuses strings that are not UTF-8
    ++write_errors_;
    return XEMS_INVALID(fmt::format("state journal {}: put: {}", path_, e.what()));
  }
  Status st = appendLine(line);
  setLine(call_id, std::move(line));
  maybeCompact();
  return dirty_ ? st : okStatus();  // a compaction may have written the change after all
}

Status StateJournal::erase(const std::string& call_id) {
  auto it = live_.find(call_id);
  if (it == live_.end()) {
    return okStatus();
  }
  live_bytes_ -= it->second.line.size();
  live_.erase(it);
  Status st = appendLine(recordLine("del", call_id, nullptr));
  maybeCompact();
  return dirty_ ? st : okStatus();
}

Status StateJournal::clear() {
  live_.clear();
  live_bytes_ = 0;
  if (::ftruncate(fd_.get(), 0) != 0) {
    const int e = errno;
    ++write_errors_;
    dirty_ = true;  // the next compaction writes the empty live set
    return journalErrno(e, "truncate", path_);
  }
  file_bytes_ = 0;
  need_newline_ = false;
  dirty_ = false;
  return okStatus();
}

Status StateJournal::appendLine(std::string_view line) {
  std::string joined;
  if (need_newline_) {
    joined.reserve(line.size() + 1);
    joined.push_back('\n');
    joined.append(line);
    line = joined;
  }
  const uint64_t before = file_bytes_;
  size_t written = 0;
  const int e = writeAll(fd_.get(), line, written);
  file_bytes_ += written;
  if (e == 0) {
    need_newline_ = false;
    ++writes_;
    return okStatus();
  }
  // Take a partial line back out so the file stays replayable; if that fails too, the next
  // record starts on a new line and replay skips this one.
  if (written != 0) {
    if (::ftruncate(fd_.get(), static_cast<off_t>(before)) == 0) {
      file_bytes_ = before;
    } else {
      need_newline_ = true;
    }
  }
  ++write_errors_;
  if (!dirty_) {
    XLOG_WARN(kSession, "state journal {}: write failed: {}", path_, std::strerror(e));
  }
  dirty_ = true;
  return journalErrno(e, "write", path_);
}

void StateJournal::maybeCompact() {
  if (compact_backoff_ != 0) {
    --compact_backoff_;
    return;
  }
  if (!dirty_ && file_bytes_ <= std::max(kCompactMinBytes, 4 * live_bytes_)) {
    return;
  }
  if (auto st = compact(); !st.ok()) {
    XLOG_WARN(kSession, "{}", st.error().message);
    compact_backoff_ = kCompactRetryRecords;
  }
}

Status StateJournal::compact() {
  const std::string tmp = path_ + ".tmp";
  UniqueFd fd(::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600));
  if (!fd) {
    ++write_errors_;
    return journalErrno(errno, "compaction: open " + tmp, path_);
  }
  auto fail = [&](int e, std::string_view what) -> Status {
    ::unlink(tmp.c_str());
    ++write_errors_;
    return journalErrno(e, fmt::format("compaction: {}", what), path_);
  };
  uint64_t total = 0;
  std::string buf;
  auto flush = [&]() -> int {
    size_t written = 0;
    const int e = writeAll(fd.get(), buf, written);
    total += written;
    buf.clear();
    return e;
  };
  for (const Entry* e : liveInOrder()) {
    buf += e->line;
    if (buf.size() >= kCompactChunk) {
      if (int err = flush(); err != 0) {
        return fail(err, "write " + tmp);
      }
    }
  }
  if (int err = flush(); err != 0) {
    return fail(err, "write " + tmp);
  }
  // The new file replaces the old one whole; the descriptor (opened O_APPEND) follows it, so
  // there is no reopen that could fail after the rename.
  if (::rename(tmp.c_str(), path_.c_str()) != 0) {
    return fail(errno, "rename " + tmp);
  }
  const uint64_t old_bytes = file_bytes_;
  fd_ = std::move(fd);
  file_bytes_ = total;
  need_newline_ = false;
  dirty_ = false;
  compact_backoff_ = 0;
  ++compactions_;
  XLOG_DEBUG(kSession, "state journal {}: compacted {} -> {} bytes, {} live call(s)", path_,
             old_bytes, total, live_.size());
  return okStatus();
}

}  // namespace xems::session
