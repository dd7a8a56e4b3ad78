#include "tools/xems-perf/selftest_util.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tools/xems-perf/clock.h"

extern char** environ;

namespace xems::perf {

void sleepMs(int ms) {
  timespec ts{ms / 1000, (ms % 1000) * kNsPerMs};
  ::nanosleep(&ts, nullptr);
}

bool runCmd(const std::vector<std::string>& argv, bool quiet) {
  std::vector<char*> args;
  for (const std::string& a : argv) {
    args.push_back(const_cast<char*>(a.c_str()));
  }
  args.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  if (quiet) {
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  }
  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    return false;
  }
  int status = 0;
  for (int i = 0; i < 1000; ++i) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      return WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    if (r < 0) {
      return false;
    }
    sleepMs(10);
  }
  ::kill(pid, SIGKILL);
  (void)::waitpid(pid, &status, 0);
  return false;
}

}  // namespace xems::perf
