// Subcommand entry points of xems-perf. Each parses its own options and returns the exit code:
// 0 success, 1 measurement or assertion failed, 2 usage or setup error.
#pragma once

namespace xems::perf {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

int runNgBench(int argc, char** argv, int first);
int runPing(int argc, char** argv, int first);
int runGen(int argc, char** argv, int first);
int runSink(int argc, char** argv, int first);
int runRelay(int argc, char** argv, int first);
int runSelftest(int argc, char** argv, int first);

}  // namespace xems::perf
