#!/usr/bin/env bash
# `make perf`: checks the harness itself (xems-perf selftest), then runs the side-by-side
# rtpengine / xemsd / xemsd-xdp comparison in network namespaces (perf/netns/relay_compare.sh).
# Usage: perf/run_perf.sh BUILD_DIR [relay_compare.sh options, e.g. --smoke]
# Results: BUILD_DIR/perf-results/relay_compare.{md,json}. Needs root for the namespaces; without
# it the comparison is reported as skipped and the script still succeeds.
set -euo pipefail
build=${1:-build}
[ $# -gt 0 ] && shift
here=$(cd "$(dirname "$0")" && pwd)
xems_perf="$build/tools/xems-perf/xems-perf"
if [ ! -x "$xems_perf" ]; then
  cmake --build "$build" --target xems-perf
fi

echo "=== xems-perf selftest"
"$xems_perf" selftest

echo "=== relay comparison (perf/netns/relay_compare.sh)"
rc=0
"$here/netns/relay_compare.sh" --build "$build" --out "$build/perf-results" "$@" || rc=$?
if [ "$rc" = 77 ]; then
  echo "relay comparison skipped (see the reason above)"
  exit 0
fi
exit "$rc"
