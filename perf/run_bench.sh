#!/usr/bin/env bash
# `make bench`: runs every Google Benchmark binary of perf/ (bench_<name>, built from
# perf/bench_<name>.cpp) one after the other, pinned to one CPU, and keeps each one's JSON.
# Usage: perf/run_bench.sh BUILD_DIR [benchmark options, e.g. --benchmark_filter=Sdp]
# Results: BUILD_DIR/bench-results/bench_<name>.json, and the console tables on stdout.
# Environment: BENCH_CPU (the CPU to pin to; default the last one), BENCH_MIN_TIME (seconds per
# benchmark, default 0.5), BENCH_REPETITIONS (default 3: the tables show mean, median, stddev).
# Benchmarks that need root (bench_xdp: BPF_PROG_TEST_RUN, veths) say so and skip their cases.
set -euo pipefail
build=${1:-build}
[ $# -gt 0 ] && shift
[ -d "$build/perf" ] || { echo "run_bench: $build/perf not found: build first (make build)" >&2; exit 2; }
out="$build/bench-results"
mkdir -p "$out"
cpu=${BENCH_CPU:-$(( $(nproc) - 1 ))}
pin=()
command -v taskset > /dev/null && pin=(taskset -c "$cpu")
shopt -s nullglob
benches=("$build"/perf/bench_*)
[ ${#benches[@]} -gt 0 ] || { echo "run_bench: no bench_* binaries in $build/perf" >&2; exit 2; }
rc=0
for b in "${benches[@]}"; do
  [ -x "$b" ] && [ -f "$b" ] || continue
  name=$(basename "$b")
  echo "=== $name (CPU $cpu)"
  if ! "${pin[@]}" "$b" --benchmark_min_time="${BENCH_MIN_TIME:-0.5}" \
      --benchmark_repetitions="${BENCH_REPETITIONS:-3}" --benchmark_report_aggregates_only=true \
      --benchmark_out="$out/$name.json" --benchmark_out_format=json "$@"; then
    echo "run_bench: $name failed" >&2
    rc=1
  fi
done
echo "run_bench: JSON in $out"
exit $rc
