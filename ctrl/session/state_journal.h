// The state journal: the live calls in a small local file, so a restarted xemsd (kill -9, crash,
// upgrade) rebuilds them (ctrl/session/call_state.h) and keeps serving them.
//
// The file is append-only JSON lines, one record per change:
//   {"op":"put","id":ID,"call":{...callToJson()...}}   the call as it is now
//   {"op":"del","id":ID}                                the call is gone
// ID is bytesToJson(call-id). Replaying the file (the last put wins, del removes) gives the live
// calls. Each record is one write() of one line, so a crash leaves at most one torn line, at the
// end: replay skips and counts it, and the next record starts on a line of its own.
//
// No fsync, on purpose. The journal has to survive the daemon dying, not the machine: whatever
// write() accepted is in the page cache, which outlives the process, so a restarted daemon reads
// it all. A kernel crash or reboot may lose the tail, and that is fine: a reboot ends every call
// anyway (sockets, peers' media and kernel state are gone), there is nothing to restore. Without
// fsync a signalling event costs one write() on the control thread, not a disk flush.
//
// Compaction: the journal keeps every live call's last line in memory. When the file grows past
// max(1 MiB, 4 x the live lines' bytes), the live lines are written to <path>.tmp, which is then
// renamed over the file: a crash in between leaves the old file or the new one, both whole.
//
// A failed write is counted and reported; the in-memory live set still takes the change, and the
// next compaction (attempted on the following writes) brings the file back in line with it.
//
// Not thread-safe: the control thread owns it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"

namespace xems::session {

class StateJournal {
 public:
  static constexpr uint64_t kCompactMinBytes = uint64_t{1} << 20;

  struct Loaded {
    std::vector<nlohmann::json> calls;  // the "call" objects, in the order of their first put
    size_t bad_lines = 0;               // torn or unreadable lines skipped when the file was read
  };

  // Opens the journal at `path`, creating the file (mode 0600) and missing parent directories
  // (mode 0700), and replays what it holds into the live set. Unreadable lines are skipped and
  // counted (see load()); only a file that cannot be opened or read is an error.
  static Result<std::unique_ptr<StateJournal>> open(const std::string& path);

  // The live calls: what the file held at open(), with the put()/erase() calls since. Meant for
  // startup. The caller then erase()s the calls it could not restore (or clear()s the journal if
  // it restores nothing); until then they stay live and are carried over by compactions.
  Result<Loaded> load();

  // Records `call` (callToJson() output, an object) as the state of `call_id`.
  Status put(const std::string& call_id, const nlohmann::json& call);
  // Records that `call_id` is gone. Nothing is written for a call that is not live.
  Status erase(const std::string& call_id);
  // Empties the file and the live set (clean shutdown with no calls).
  Status clear();
  // Rewrites the file with the live records only (done automatically as the file grows).
  Status compact();

  const std::string& path() const { return path_; }
  size_t liveCalls() const { return live_.size(); }
  uint64_t fileBytes() const { return file_bytes_; }  // as written by this object
  uint64_t liveBytes() const { return live_bytes_; }
  uint64_t writes() const { return writes_; }  // records appended
  uint64_t compactions() const { return compactions_; }
  uint64_t write_errors() const { return write_errors_; }  // failed appends/compactions/clears

 private:
  struct Entry {
    uint64_t seq = 0;  // order of the first put, kept across updates
    std::string line;  // the last put record, with its '\n'
  };

  StateJournal(std::string path, UniqueFd fd);
  Status replay();
  void replayLine(std::string_view line);
  void setLine(const std::string& call_id, std::string line);
  Status appendLine(std::string_view line);
  // After a record: compacts if the file is too big or missed a change, unless a compaction
  // failed recently.
  void maybeCompact();
  std::vector<const Entry*> liveInOrder() const;

  std::string path_;
  UniqueFd fd_;
  std::unordered_map<std::string, Entry> live_;
  uint64_t next_seq_ = 0;
  uint64_t live_bytes_ = 0;
  uint64_t file_bytes_ = 0;
  size_t bad_lines_ = 0;
  bool need_newline_ = false;     // the file ends in a torn line: start the next record with '\n'
  bool dirty_ = false;            // a change could not be written: the file lags the live set
  uint32_t compact_backoff_ = 0;  // records to let pass before retrying a failed compaction
  uint64_t writes_ = 0;
  uint64_t compactions_ = 0;
  uint64_t write_errors_ = 0;
};

}  // namespace xems::session
