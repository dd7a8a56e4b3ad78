#!/usr/bin/env bash
# The whole test suite, as `make test` runs it:
#   1. every ctest test of the main (g++) build: unit, integration, interop
#   2. unit + integration tests again under ASan+UBSan (clang build)
#   3. a short libFuzzer run of every fuzz target over its kept corpus
# Prints one closing line "N passed, N failed, N skipped" over all stages; exits non-zero if any
# test failed.
set -uo pipefail
build=${1:-build}
build_asan=${2:-build-asan}
build_fuzz=${3:-build-fuzz}
here=$(cd "$(dirname "$0")" && pwd)
results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT
jobs=$(nproc)

echo "=== [1/3] ctest: $build (unit, integration, netns, interop)"
ctest --test-dir "$build" --output-on-failure -j "$jobs" --timeout 600 \
  --output-junit "$results/main.xml"

echo "=== [2/3] ctest under ASan+UBSan: $build_asan (unit, integration, netns)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir "$build_asan" -L 'unit|integration|netns' --output-on-failure -j "$jobs" \
  --timeout 600 --output-junit "$results/asan.xml"

echo "=== [3/3] fuzz: short runs of every target"
fuzz_secs=${XEMS_FUZZ_SECONDS:-20}
: > "$results/fuzz.txt"
for f in "$build_fuzz"/tests/fuzz/fuzz_*; do
  [ -x "$f" ] || continue
  name=$(basename "$f")
  corpus="$here/fuzz/corpus/${name#fuzz_}"
  work=$(mktemp -d)
  cp -r "$corpus"/. "$work"/ 2>/dev/null || true
  echo "--- $name (${fuzz_secs}s, corpus $corpus)"
  if "$f" -max_total_time="$fuzz_secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=0 \
      "$work" > "$results/$name.log" 2>&1; then
    echo "PASS $name" >> "$results/fuzz.txt"
  else
    echo "FAIL $name" >> "$results/fuzz.txt"
    tail -40 "$results/$name.log"
  fi
  rm -rf "$work"
done

/usr/bin/python3 "$here/summarize.py" "$results"
