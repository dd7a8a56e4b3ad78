#!/usr/bin/env bash
# Side-by-side benchmark of rtpengine (userspace, --table=-1), xemsd (userspace, --offload=off)
# and xemsd with its XDP fast path (--offload=on) through network namespaces:
#
#   [gen ns] xg0 10.201.1.2 ==veth== xra 10.201.1.1 [relay ns]
#                                    [relay ns] 10.201.2.1 xrb ==veth== xs0 10.201.2.2 [sink ns]
#
# The relay runs in the relay namespace with two logical interfaces, "a" facing the generator and
# "b" facing the sink, selected per call with ng direction=["a","b"]. One xems-perf process opens
# its generator socket in the gen namespace, its sink socket in the sink namespace and its ng
# socket in the relay namespace (ng on 127.0.0.1). For each relay it measures:
#   - ng ops/s (offer+answer+delete cycles) at concurrency 1 and 32, on loopback;
#   - the highest packet rate with < 0.1 % loss, by bisection over trials of a few seconds;
#   - relay CPU ns per forwarded packet (utime+stime from /proc/PID); not for xemsd-xdp, whose
#     forwarding runs in softirq on the sending (harness) CPU, not in a relay thread.
# xg0 and xs0 get `ethtool -K gro on tx off` (NAPI + real checksums, as a NIC), which XDP
# redirection into them needs. Output: a markdown table on stdout and in OUT/relay_compare.md,
# and OUT/relay_compare.json.
#
# --smoke: low rate (500 pps, 10 streams, 2 s), every relay, asserts zero loss and a working ng
# cycle, and that xemsd-xdp forwarded the packets in XDP (its datapath.counters.forwarded);
# exit 0 pass, 1 fail, 77 skipped (not root, no netns, or no relay available). xemsd-xdp is
# skipped, not failed, where bpffs cannot be mounted or XDP cannot be attached.
#
# Usage: relay_compare.sh [--smoke] [--build DIR] [--out DIR]
#                         [--relays "rtpengine xemsd xemsd-xdp"]
# Environment (all optional): XEMS_PERF, XEMSD, XEMSCTL, RTPENGINE (binaries), RELAY_THREADS (1),
#   RELAY_CPU (1), HARNESS_CPU (0), XDP_NAPI_CPU (off: XDP runs in the sender's softirq; N =
#   threaded NAPI of xra pinned to CPU N, measured as xemsd-xdp's CPU; experimental),
#   STREAM_PPS (50: calls = rate / 50), MAX_STREAMS (4000), STREAMS (a fixed number of calls
#   instead), TRIAL_SECONDS (3), SEARCH_MIN (5000), SEARCH_MAX (2000000), START_PPS (20000),
#   BUDGET (170 s per relay), LOSS_MAX (0.1), LATENCY_MAX_MS (50: also report the highest rate
#   whose p99 one-way delay stays below), REPEATS (1: repeat every measurement; the table shows
#   the median and min-max), NG_CALLS_C1 (2000), NG_CALLS_C32 (10000), LOG_LEVEL (4),
#   XEMSD_EXTRA_ARGS, RTPENGINE_EXTRA_ARGS, GEN_MODE (packet: AF_PACKET frames; udp: sendmmsg on
#   UDP sockets), SINK_MODE (xdp: counting XDP program on xs0; udp: a recvmmsg socket),
#   PAYLOAD_BYTES (160), PTIME (20 ms: the RTP timestamp step and a=ptime; STREAM_PPS then
#   defaults to 1000 / PTIME).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

smoke=0
build="$repo/build"
out=""
relays="rtpengine xemsd xemsd-xdp kernel"
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1 ;;
    --build) build=$2; shift ;;
    --build=*) build=${1#--build=} ;;
    --out) out=$2; shift ;;
    --out=*) out=${1#--out=} ;;
    --relays) relays=$2; shift ;;
    --relays=*) relays=${1#--relays=} ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "relay_compare: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$out" ] || out="$build/perf-results"
mkdir -p "$out"
out=$(cd "$out" && pwd)

skip() { echo "relay_compare: SKIP: $*"; exit 77; }
log() { echo "relay_compare: $*" >&2; }

[ "$(id -u)" = 0 ] || skip "needs root (network namespaces)"
command -v ip > /dev/null || skip "iproute2 missing"
xems_perf=${XEMS_PERF:-"$build/tools/xems-perf/xems-perf"}
[ -x "$xems_perf" ] || { echo "relay_compare: $xems_perf not built" >&2; exit 2; }
xems_perf=$(cd "$(dirname "$xems_perf")" && pwd)/$(basename "$xems_perf")

rtpengine_bin=${RTPENGINE:-$(command -v rtpengine || true)}
xemsd_bin=${XEMSD:-}
if [ -z "$xemsd_bin" ]; then
  for c in "$build/tools/xemsd" "$build/tools/xemsd/xemsd"; do
    if [ -f "$c" ] && [ -x "$c" ]; then xemsd_bin=$c; break; fi
  done
fi
xemsctl_bin=${XEMSCTL:-}
if [ -z "$xemsctl_bin" ]; then
  for c in "$build/tools/xemsctl" "$build/tools/xemsctl/xemsctl"; do
    if [ -f "$c" ] && [ -x "$c" ]; then xemsctl_bin=$c; break; fi
  done
fi

relay_threads=${RELAY_THREADS:-1}
log_level=${LOG_LEVEL:-4}
ng_port=2223
cpus=$(nproc)
if [ "$cpus" -ge 2 ]; then
  relay_cpu=${RELAY_CPU:-1}
  harness_cpu=${HARNESS_CPU:-0}
  pin_relay=(taskset -c "$relay_cpu")
  pin_harness=(taskset -c "$harness_cpu")
else
  log "only one CPU: no pinning, relay and harness share it (figures are not comparable)"
  relay_cpu=""; harness_cpu=""
  pin_relay=(); pin_harness=()
fi
# XDP runs where the veth's NAPI runs: in the softirq of the CPU that sent the frame, i.e. the
# harness's, so xemsd-xdp's relay CPU per packet is not measured. XDP_NAPI_CPU=N (experimental)
# switches xra to a threaded NAPI pinned to CPU N, like a NIC whose interrupt goes to that CPU,
# and measures that thread; but the veth's 256-frame ring then overflows (xg0 tx_dropped)
# whenever the thread wakes late, which in a VM is often: rates are then pessimistic.
xdp_napi_cpu=${XDP_NAPI_CPU:-off}
[ -n "$relay_cpu" ] || xdp_napi_cpu=off

payload_bytes=${PAYLOAD_BYTES:-160}
ptime=${PTIME:-20}
default_stream_pps=$(( 1000 / ptime ))
# Full mode: calls follow the rate at STREAM_PPS packets/s each (50 = one direction of a G.711
# 20 ms call), so "max pps" is also "max one-way G.711 streams x 50". STREAMS=K instead fixes K.
if [ "$smoke" = 1 ]; then
  streams=${STREAMS:-10}; trial_seconds=${TRIAL_SECONDS:-2}; start_pps=${START_PPS:-500}
  stream_args=(--streams "$streams")
elif [ -n "${STREAMS:-}" ]; then
  streams=$STREAMS; trial_seconds=${TRIAL_SECONDS:-3}; start_pps=${START_PPS:-20000}
  stream_args=(--streams "$streams")
else
  streams="rate/${STREAM_PPS:-$default_stream_pps}"; trial_seconds=${TRIAL_SECONDS:-3}
  start_pps=${START_PPS:-20000}
  stream_args=(--stream-pps "${STREAM_PPS:-$default_stream_pps}"
    --max-streams "${MAX_STREAMS:-4000}")
fi
search_min=${SEARCH_MIN:-5000}
search_max=${SEARCH_MAX:-2000000}
budget=${BUDGET:-170}
loss_max=${LOSS_MAX:-0.1}
# Second criterion: 50-pps streams with default socket buffers queue seconds of audio before a
# single packet is lost, so "no loss" alone lets a saturated relay pass with ~1 s of delay.
latency_max_ms=${LATENCY_MAX_MS:-50}
repeats=${REPEATS:-1}
# The generator writes Ethernet frames through AF_PACKET and the sink counts in XDP on xs0: both
# skip a socket stack on the harness's CPU, so the harness saturates later than the relays do.
# The smoke run's injected-loss trial of xemsd uses udp/udp, so both kinds are always tested.
gen_mode=${GEN_MODE:-packet}
sink_mode=${SINK_MODE:-xdp}
[ "$smoke" = 1 ] && repeats=1
ng_calls_c1=${NG_CALLS_C1:-2000}
ng_calls_c32=${NG_CALLS_C32:-10000}

# Unique names per run, so parallel runs and leftovers of a killed run never collide.
tag="xp$$$(printf '%04x' $((RANDOM % 65536)))"
ns_gen="$tag-gen"
ns_relay="$tag-relay"
ns_sink="$tag-sink"
gen_ip=10.201.1.2
relay_a_ip=10.201.1.1
relay_b_ip=10.201.2.1
sink_ip=10.201.2.2

relay_pid=""
cpu_pid=""   # whose /proc/PID/stat is the relay's CPU in the packet trials
bpffs=""     # bpffs mounted for xemsd-xdp's pinned maps and links (a temporary directory)
# shellcheck disable=SC2317  # invoked by the trap
cleanup() {
  local rc=$?
  if [ -n "$relay_pid" ] && kill -0 "$relay_pid" 2> /dev/null; then
    kill -TERM "$relay_pid" 2> /dev/null || true
    for _ in $(seq 50); do kill -0 "$relay_pid" 2> /dev/null || break; sleep 0.1; done
    kill -KILL "$relay_pid" 2> /dev/null || true
  fi
  for ns in "$ns_gen" "$ns_relay" "$ns_sink"; do
    ip netns del "$ns" 2> /dev/null || true
  done
  # Unmounting drops whatever a killed xemsd left pinned (its XDP links die with the veths).
  if [ -n "$bpffs" ]; then
    umount "$bpffs" 2> /dev/null || true
    rmdir "$bpffs" 2> /dev/null || true
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

setup_topology() {
  ip netns add "$ns_gen" || skip "cannot create network namespaces"
  ip netns add "$ns_relay"
  ip netns add "$ns_sink"
  ip -n "$ns_gen" link add xg0 type veth peer name xra netns "$ns_relay"
  ip -n "$ns_sink" link add xs0 type veth peer name xrb netns "$ns_relay"
  ip -n "$ns_gen" addr add "$gen_ip/24" dev xg0
  ip -n "$ns_relay" addr add "$relay_a_ip/24" dev xra
  ip -n "$ns_relay" addr add "$relay_b_ip/24" dev xrb
  ip -n "$ns_sink" addr add "$sink_ip/24" dev xs0
  for ns in "$ns_gen" "$ns_relay" "$ns_sink"; do ip -n "$ns" link set lo up; done
  ip -n "$ns_gen" link set xg0 up
  ip -n "$ns_relay" link set xra up
  ip -n "$ns_relay" link set xrb up
  ip -n "$ns_sink" link set xs0 up
  # Routes through the relay namespace, for the "kernel" baseline (plain IP forwarding, enabled
  # only while it runs); the relays are addressed on-link and never use them.
  ip -n "$ns_gen" route add 10.201.2.0/24 via "$relay_a_ip"
  ip -n "$ns_sink" route add 10.201.1.0/24 via "$relay_b_ip"
  # The generator's and the sink's ends behave like real hosts' NICs. GRO gives a veth a NAPI,
  # and only then does it accept frames that XDP on the peer redirects into it (xrb -> xs0).
  # "tx off": the sender computes UDP checksums itself, as a NIC does before the wire; a veth
  # would otherwise hand over a partial checksum, which XDP cannot see as such, and the receiver
  # drops the redirected frame. Harmless for the userspace relays.
  veth_ok=1
  local ns dev
  for nd in "$ns_gen:xg0" "$ns_sink:xs0"; do
    ns=${nd%%:*}; dev=${nd#*:}
    if ! ip netns exec "$ns" ethtool -K "$dev" gro on tx off > /dev/null 2>&1; then
      log "cannot set 'gro on tx off' on $dev (ethtool missing?): xemsd-xdp will be skipped"
      veth_ok=0
    fi
  done
}

# veth_stats: one line "ns/dev counter value" per drop or error counter of the four veth ends
# (ip link statistics, plus the veth driver's per-queue XDP counters from ethtool -S).
veth_stats() {
  local nd ns dev
  for nd in "$ns_gen:xg0" "$ns_relay:xra" "$ns_relay:xrb" "$ns_sink:xs0"; do
    ns=${nd%%:*}; dev=${nd#*:}
    for c in rx_dropped tx_dropped rx_errors tx_errors; do
      echo "$dev $c $(ip netns exec "$ns" cat "/sys/class/net/$dev/statistics/$c" 2> /dev/null \
        || echo 0)"
    done
    # With the XDP sink, xs0's XDP drops are the probes it counted: its consumption, not loss.
    ip netns exec "$ns" ethtool -S "$dev" 2> /dev/null \
      | awk -v d="$dev" -v sink="$sink_mode" '
          $1 ~ /(drop|err)/ && !(d == "xs0" && sink == "xdp" && $1 ~ /xdp_drops/) {
            sub(":", "", $1); print d, $1, $2 }' || true
  done
}

# veth_drops_json BEFORE AFTER: the counters that grew, as a JSON object {"dev counter": delta}.
veth_drops_json() {
  awk 'BEGIN { printf "{" }
       NR == FNR { a[$1 " " $2] = $3; next }
       $3 > a[$1 " " $2] { printf "%s\"%s %s\": %d", sep, $1, $2, $3 - a[$1 " " $2]; sep = ", " }
       END { print "}" }' "$1" "$2"
}

# start_relay NAME: starts the relay in the relay namespace, pinned, and waits for "pong".
# Returns 1 if it does not answer (2 for xemsd-xdp refusing to start because XDP cannot attach).
start_relay() {
  local name=$1
  if [ "$name" = kernel ]; then
    # No process: the relay namespace routes gen -> sink. Forwarding runs in the softirq of the
    # sending CPU (veth), so there is no relay CPU to read, as for xemsd-xdp.
    ip netns exec "$ns_relay" sysctl -qw net.ipv4.ip_forward=1
    : > "$out/$name.log"
    return 0
  fi
  local common=(--interface="a/$relay_a_ip" --interface="b/$relay_b_ip"
    --listen-ng="127.0.0.1:$ng_port" --port-min=20000 --port-max=59999 --foreground
    --num-threads="$relay_threads" --log-level="$log_level" --delete-delay=0)
  local cmd extra=()
  case "$name" in
    rtpengine)
      # shellcheck disable=SC2206
      cmd=("$rtpengine_bin" --table=-1 --log-stderr "${common[@]}" ${RTPENGINE_EXTRA_ARGS:-}) ;;
    xemsd)
      # Force the userspace path once xemsd knows the option (XDP is xemsd-xdp).
      if timeout 5 "$xemsd_bin" --help 2>&1 | grep -q -- '--offload'; then
        extra+=(--offload=off)
      fi
      # shellcheck disable=SC2206
      cmd=("$xemsd_bin" "${common[@]}" "${extra[@]}" ${XEMSD_EXTRA_ARGS:-}) ;;
    xemsd-xdp)
      # XDP on both veth ends or nothing (=on: no silent fallback to userspace). The pins go to
      # our own bpffs: `ip netns exec` gives the relay a private /sys.
      extra+=(--offload=on --xdp-interface=xra --xdp-interface=xrb
        --bpf-pin-root="$bpffs/xems")
      # shellcheck disable=SC2206
      cmd=("$xemsd_bin" "${common[@]}" "${extra[@]}" ${XEMSD_EXTRA_ARGS:-}) ;;
  esac
  # ~4 sockets per call: give the relay every descriptor the hard limit allows.
  ulimit -n "$(ulimit -Hn)" 2> /dev/null || true
  # `ip netns exec` and `taskset` exec in place, so $! is the relay's own PID.
  ip netns exec "$ns_relay" "${pin_relay[@]}" "${cmd[@]}" > "$out/$name.log" 2>&1 &
  relay_pid=$!
  cpu_pid=$relay_pid
  local answered=0
  for _ in $(seq 16); do
    if "$xems_perf" ping --netns "$ns_relay" --target "127.0.0.1:$ng_port" --wait-ms 500 \
        > /dev/null 2>&1; then
      answered=1; break
    fi
    kill -0 "$relay_pid" 2> /dev/null || break   # exited: no point in waiting
  done
  if [ "$answered" = 0 ]; then
    log "$name does not answer ping; last log lines:"
    tail -5 "$out/$name.log" >&2 || true
    stop_relay
    if [ "$name" = xemsd-xdp ] && grep -q -- '--offload=on' "$out/$name.log"; then
      return 2
    fi
    return 1
  fi
  if [ "$name" = xemsd-xdp ] && [ -n "$xdp_napi_cpu" ] && [ "$xdp_napi_cpu" != off ]; then
    cpu_pid=$(napi_thread xra "$xdp_napi_cpu")
    if [ -n "$cpu_pid" ]; then
      log "xemsd-xdp: XDP on xra runs in NAPI thread $cpu_pid ($(cat "/proc/$cpu_pid/comm")," \
        "pinned to CPU $xdp_napi_cpu); its CPU time is the relay CPU of the packet trials"
    else
      log "xemsd-xdp: cannot move xra's NAPI to a pinned thread: XDP runs in the softirq of" \
        "the sending CPU, relay CPU per packet is not measured"
    fi
  elif [ "$name" = xemsd-xdp ]; then
    log "xemsd-xdp: XDP runs in the softirq of the CPU sending into xra (the harness's," \
      "CPU ${harness_cpu:-any}), not in xemsd: its relay CPU per packet is n/a"
  fi
}

# napi_thread DEV CPU: switches DEV's NAPI (relay namespace) to a kernel thread ("threaded
# NAPI"), pins the thread to CPU and prints its PID; prints nothing where that fails. The thread
# is the one "napi/DEV-<id>" that did not exist before.
napi_thread() {
  local dev=$1 cpu=$2 before after pid
  before=$(ps -eo pid=,comm= | awk -v p="napi/$dev-" 'index($2, p) == 1 { print $1 }' | sort)
  ip netns exec "$ns_relay" sh -c "echo 1 > /sys/class/net/$dev/threaded" 2> /dev/null \
    || return 0
  after=$(ps -eo pid=,comm= | awk -v p="napi/$dev-" 'index($2, p) == 1 { print $1 }' | sort)
  pid=$(comm -13 <(echo "$before") <(echo "$after") | grep -v '^$' || true)
  [ -n "$pid" ] && [ "$(echo "$pid" | wc -l)" = 1 ] || return 0
  taskset -p -c "$cpu" "$pid" > /dev/null 2>&1 || return 0
  echo "$pid"
}

stop_relay() {
  ip netns exec "$ns_relay" sysctl -qw net.ipv4.ip_forward=0 2> /dev/null || true
  if [ -n "$relay_pid" ]; then
    kill -TERM "$relay_pid" 2> /dev/null || true
    for _ in $(seq 50); do kill -0 "$relay_pid" 2> /dev/null || break; sleep 0.1; done
    kill -KILL "$relay_pid" 2> /dev/null || true
    wait "$relay_pid" 2> /dev/null || true
    relay_pid=""
  fi
  if [ -n "$cpu_pid" ]; then
    ip netns exec "$ns_relay" sh -c "echo 0 > /sys/class/net/xra/threaded" 2> /dev/null || true
    cpu_pid=""
  fi
}

# mount_bpffs: a bpffs in a fresh directory under /tmp, once per run (unmounted by cleanup).
mount_bpffs() {
  [ -z "$bpffs" ] || return 0
  local dir err
  dir=$(mktemp -d "${TMPDIR:-/tmp}/xems-perf-bpffs.XXXXXX") || return 1
  if ! err=$(mount -t bpf bpf "$dir" 2>&1); then
    rmdir "$dir" 2> /dev/null || true
    log "mount -t bpf: $err"
    return 1
  fi
  bpffs=$dir
}

# xems_statistics NAME: the relay's ng `statistics` (xemsd only) into OUT/NAME-statistics.json.
xems_statistics() {
  local name=$1
  if [ -z "$xemsctl_bin" ]; then
    log "no xemsctl at $build/tools/xemsctl (set XEMSCTL=path): no ng statistics for $name"
    return 0
  fi
  ip netns exec "$ns_relay" "$xemsctl_bin" --ng "127.0.0.1:$ng_port" --json statistics \
    > "$out/$name-statistics.json" 2> /dev/null || rm -f "$out/$name-statistics.json"
}

# Cores kept busy by the rest of the host over 2 s, from /proc/stat (nothing of ours runs then).
host_busy_cores() {
  local a b
  a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' \
    /proc/stat)
  sleep 2
  b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' \
    /proc/stat)
  awk -v a="$a" -v b="$b" -v n="$cpus" 'BEGIN {
    split(a, x, " "); split(b, y, " ");
    t = y[2] - x[2]; if (t <= 0) { print 0; exit }
    printf "%.2f\n", n * (y[1] - x[1]) / t }'
}

# relay_args NAME: the `xems-perf relay` options common to every trial of relay NAME.
relay_args() {
  if [ "$1" = kernel ]; then
    echo --direct
  else
    echo --ng "127.0.0.1:$ng_port" --ng-netns "$ns_relay" --direction a,b
  fi
  [ -z "$cpu_pid" ] || echo --relay-pid "$cpu_pid"
  # The NAPI thread (XDP_NAPI_CPU) lives in the host's namespace: socket drops come from the relay.
  [ -z "$relay_pid" ] || echo --relay-sockets-pid "$relay_pid"
  echo --gen-netns "$ns_gen" --sink-netns "$ns_sink" --gen-addr "$gen_ip" --sink-addr "$sink_ip" \
    "${stream_args[@]}" --seconds "$trial_seconds" --json
  echo --gen-mode "${2:-$gen_mode}" --sink-mode "${3:-$sink_mode}" \
    --payload-bytes "$payload_bytes" --ptime "$ptime"
}

# measure NAME: ng benchmark at concurrency 1 and 32, then the rate search (or the smoke trial).
# measure NAME REP: files are NAME-rREP-*.json (the smoke run has one repetition).
measure() {
  local name=$1 r=$2 rc=0
  local perf=("${pin_harness[@]}" "$xems_perf")
  if [ "$smoke" = 1 ]; then
    if [ "$name" != kernel ]; then
      "${perf[@]}" ng --netns "$ns_relay" --target "127.0.0.1:$ng_port" --direction a,b \
        --calls 50 --concurrency 4 --max-seconds 20 --json > "$out/$name-ng-smoke.json" || rc=1
    fi
    # The relays' zero-loss trials count at a UDP socket: the kernel checks every checksum
    # there (the XDP sink does not), so a relay writing bad checksums fails here. The kernel
    # baseline exercises the XDP sink.
    local sink=udp
    [ "$name" != kernel ] || sink=$sink_mode
    # shellcheck disable=SC2046
    "${perf[@]}" relay $(relay_args "$name" "$gen_mode" "$sink") --label "$name" \
      --pps "$start_pps" --warmup 0.5 --expect-zero-loss > "$out/$name-relay.json" || rc=1
    case "$name" in
      kernel|xemsd) injected_loss "$name" || rc=1 ;;
    esac
    return $rc
  fi
  if [ "$name" = kernel ]; then
    log "kernel (run $r of $repeats): no control plane to benchmark"
  else
    measure_ng "$name" "$r" || rc=1
  fi
  log "$name (run $r of $repeats): max packet rate with < $loss_max % loss (budget ${budget}s)"
  # shellcheck disable=SC2046
  "${perf[@]}" relay $(relay_args "$name") --label "$name" --pps "$start_pps" \
    --search "$search_min:$search_max" --loss-max "$loss_max" --budget "$budget" \
    --latency-max-ms "$latency_max_ms" \
    --per-stream > "$out/$name-r$r-relay.json" || rc=1
  return $rc
}

# measure_ng NAME REP: the ng benchmark at concurrency 1 and 32.
measure_ng() {
  local name=$1 r=$2 rc=0
  local perf=("${pin_harness[@]}" "$xems_perf")
  log "$name (run $r of $repeats): ng benchmark, concurrency 1"
  "${perf[@]}" ng --netns "$ns_relay" --target "127.0.0.1:$ng_port" --direction a,b \
    --calls "$ng_calls_c1" --concurrency 1 --max-seconds 30 --relay-pid "$relay_pid" --json \
    > "$out/$name-r$r-ng-c1.json" || rc=1
  log "$name (run $r of $repeats): ng benchmark, concurrency 32"
  "${perf[@]}" ng --netns "$ns_relay" --target "127.0.0.1:$ng_port" --direction a,b \
    --calls "$ng_calls_c32" --concurrency 32 --max-seconds 30 --relay-pid "$relay_pid" --json \
    > "$out/$name-r$r-ng-c32.json" || rc=1
  return $rc
}

# injected_loss NAME (smoke): drops chosen packets on purpose in the relay namespace, with
# nftables rules that count what they drop, and checks that the sink's per-stream loss equals
# those counters exactly: stream 3 loses every 10th packet, stream 7 about 10 % at random, every
# other stream nothing. The rules sit on the output hook (a userspace relay's own sends) and the
# forward hook (kernel forwarding); XDP bypasses both, so xemsd-xdp is not part of this check.
injected_loss() {
  local name=$1 rc=0 probe='meta l4proto udp @th,160,32 0x58505246'
  if ! command -v nft > /dev/null; then
    log "FAIL $name: nft (nftables) missing, cannot inject loss"
    return 1
  fi
  ip netns exec "$ns_relay" nft -f - <<NFT || { log "FAIL $name: cannot load nftables rules"; return 1; }
table inet xpinject {
  chain outchain {
    type filter hook output priority 0; policy accept;
    $probe @th,224,32 3 numgen inc mod 10 == 0 counter drop comment "stream 3"
    $probe @th,224,32 7 numgen random mod 100 < 10 counter drop comment "stream 7"
  }
  chain fwdchain {
    type filter hook forward priority 0; policy accept;
    $probe @th,224,32 3 numgen inc mod 10 == 0 counter drop comment "stream 3"
    $probe @th,224,32 7 numgen random mod 100 < 10 counter drop comment "stream 7"
  }
}
NFT
  # shellcheck disable=SC2046
  local modes=()
  # xemsd: the plain socket generator and sink (the full run uses the others).
  [ "$name" = kernel ] || modes=(udp udp)
  "${pin_harness[@]}" "$xems_perf" relay $(relay_args "$name" "${modes[@]}") \
    --label "$name, loss injected, gen ${modes[0]:-$gen_mode}, sink ${modes[1]:-$sink_mode}" \
    --pps "$start_pps" --warmup 0 --per-stream > "$out/$name-injected.json" || true
  ip netns exec "$ns_relay" nft -j list table inet xpinject > "$out/$name-injected-nft.json" \
    || rc=1
  ip netns exec "$ns_relay" nft delete table inet xpinject || rc=1
  /usr/bin/python3 "$here/check_injected_loss.py" --label "$name" "$out/$name-injected.json" \
    "$out/$name-injected-nft.json" >&2 || rc=1
  return $rc
}

setup_topology
log "namespaces $ns_gen / $ns_relay / $ns_sink; relay on CPU ${relay_cpu:-any}," \
  "harness on CPU ${harness_cpu:-any}; results in $out"

# usable NAME: whether relay NAME can run here; sets `why` when not. (Not in a subshell:
# mount_bpffs records the mount for the cleanup trap.)
usable() {
  why=""
  case "$1" in
    rtpengine)
      [ -n "$rtpengine_bin" ] && [ -x "$rtpengine_bin" ] || why="rtpengine binary not found" ;;
    xemsd|xemsd-xdp)
      [ -n "$xemsd_bin" ] || why="xemsd binary not found (set XEMSD=path)" ;;
    kernel)
      ip netns exec "$ns_relay" sysctl -qw net.ipv4.ip_forward=0 2> /dev/null \
        || why="cannot set net.ipv4.ip_forward in the relay namespace" ;;
  esac
  if [ -z "$why" ] && [ "$1" = xemsd-xdp ]; then
    if [ "$veth_ok" != 1 ]; then
      why="ethtool -K gro on tx off failed"
    elif ! mount_bpffs; then
      why="cannot mount bpffs"
    fi
  fi
  [ -z "$why" ]
}

declare -A state busy_before
failed=0
ran=0
cpu_args=()
for name in $relays; do
  case "$name" in rtpengine|xemsd|xemsd-xdp|kernel) ;;
    *) echo "relay_compare: unknown relay $name" >&2; exit 2 ;;
  esac
  rm -f "$out/$name".log "$out/$name"-r[0-9]*-*.json "$out/$name"-ng-smoke.json \
    "$out/$name"-relay.json "$out/$name"-statistics.json "$out/$name"-veth.json \
    "$out/$name"-injected*.json
  if ! usable "$name"; then
    log "SKIP $name: $why"
    state[$name]="skipped:$why"
  else
    state[$name]=pending
  fi
  case "$name" in
    xemsd-xdp)
      if [ "$xdp_napi_cpu" != off ]; then
        cpu_args+=("cpu_source_$name=NAPI thread running XDP (xra), CPU $xdp_napi_cpu")
      else
        cpu_args+=("cpu_source_$name=")
      fi ;;
    kernel) cpu_args+=("cpu_source_$name=") ;;
    *) cpu_args+=("cpu_source_$name=$name process") ;;
  esac
done

# run_once NAME REP: starts relay NAME, measures it, stops it. The repetitions interleave the
# relays (r1: A B C, r2: A B C, ...), so slow drifts of a shared host spread over all of them.
run_once() {
  local name=$1 r=$2 start_rc=0 ok=1
  veth_stats > "$out/.veth-before"
  start_relay "$name" || start_rc=$?
  if [ "$start_rc" != 0 ]; then
    rm -f "$out/.veth-before"
    # Where the host cannot do it (no XDP on veth), skip; a relay that ran before, or our own
    # daemon, not answering is a failure.
    if [ "$start_rc" = 2 ] && [ "${state[$name]}" = pending ]; then
      log "SKIP $name: XDP cannot attach here (xemsd --offload=on refused to start; see" \
        "$out/$name.log)"
      state[$name]="skipped:XDP cannot attach"
    elif [ "$name" = rtpengine ] && [ "${state[$name]}" = pending ]; then
      log "SKIP $name: it did not answer ng ping"
      state[$name]="skipped:did not answer ng ping"
    else
      log "FAIL $name: it did not start or answer ng ping (run $r); see $out/$name.log"
      state[$name]="failed:did not start or answer ng ping"
      failed=1
    fi
    return 0
  fi
  ran=$((ran + 1))
  if [ "$smoke" != 1 ] && [ "$r" = 1 ]; then
    busy_before[$name]=$(host_busy_cores)
    if awk -v b="${busy_before[$name]}" 'BEGIN { exit !(b > 0.2) }'; then
      log "WARNING: other processes keep ${busy_before[$name]} cores busy before $name starts:" \
        "rates and latencies will be pessimistic (each trial reports the other processes' CPU)"
    fi
  fi
  measure "$name" "$r" || ok=0
  case "$name" in xemsd*) xems_statistics "$name" ;; esac
  if [ "$name" = xemsd-xdp ] && [ "$smoke" = 1 ] && ! check_xdp_forwarded; then
    state[$name]="failed:forwarding in XDP not confirmed"
    failed=1
    ok=2
  fi
  if [ -n "$relay_pid" ] && ! kill -0 "$relay_pid" 2> /dev/null; then
    log "$name exited during the run; see $out/$name.log"
    ok=0
  fi
  if [ "$ok" = 0 ]; then
    state[$name]=failed
    failed=1
  elif [ "$ok" = 1 ] && [ "${state[$name]}" = pending ]; then
    state[$name]=running
  fi
  stop_relay
  veth_stats > "$out/.veth-after"
  veth_drops_json "$out/.veth-before" "$out/.veth-after" > "$out/.veth-delta"
  # The run's file keeps the repetition that showed drops, if any did.
  if [ ! -s "$out/$name-veth.json" ] || [ "$(cat "$out/.veth-delta")" != "{}" ]; then
    cp "$out/.veth-delta" "$out/$name-veth.json"
  fi
  if [ "$(cat "$out/.veth-delta")" != "{}" ]; then
    log "$name: veth drop/error counters grew: $(cat "$out/.veth-delta")"
  fi
  rm -f "$out/.veth-before" "$out/.veth-after" "$out/.veth-delta"
}

# check_xdp_forwarded (smoke): zero loss alone would also pass if the packets had gone through
# userspace; xemsd's ng statistics say how many XDP forwarded.
check_xdp_forwarded() {
  /usr/bin/python3 - "$out/xemsd-xdp-statistics.json" "$out/xemsd-xdp-relay.json" <<'PY' >&2
import json, sys
try:
    with open(sys.argv[1]) as f:
        st = json.load(f)
except (OSError, ValueError) as e:
    print(f"relay_compare: FAIL xemsd-xdp: no ng statistics ({e})")
    sys.exit(1)
st = st.get("statistics", st)
dp = st.get("datapath", {})
fwd = dp.get("counters", {}).get("forwarded", 0)
relayed = st.get("totalstatistics", {}).get("relayedpackets", "?")
try:
    with open(sys.argv[2]) as f:
        received = json.load(f)["trials"][0]["received"]
except (OSError, ValueError, KeyError, IndexError):
    received = "?"
print(f"relay_compare: xemsd-xdp: datapath mode {dp.get('mode')}, {fwd} of {relayed} relayed "
      f"packets forwarded in XDP (ng statistics datapath.counters.forwarded, warm-up "
      f"included); the sink received {received} in the measured trial")
if dp.get("mode") != "xdp" or not fwd:
    print("relay_compare: FAIL xemsd-xdp: nothing was forwarded in XDP")
    sys.exit(1)
PY
}

for r in $(seq "$repeats"); do
  for name in $relays; do
    case "${state[$name]}" in pending|running|failed) run_once "$name" "$r" ;; esac
  done
done

status_args=()
load_args=()
for name in $relays; do
  st=${state[$name]}
  [ "$st" = running ] && st=ok
  [ "$st" = pending ] && st="skipped:never ran"
  status_args+=("$name=$st")
  [ -z "${busy_before[$name]:-}" ] || load_args+=("busy_before_${name}=${busy_before[$name]}")
done

mode=full
[ "$smoke" = 1 ] && mode=smoke
/usr/bin/python3 "$here/summarize.py" --mode "$mode" --out "$out" \
  --meta "cpus=$cpus" "relay_cpu=${relay_cpu:-}" "harness_cpu=${harness_cpu:-}" \
  "relay_threads=$relay_threads" "streams=$streams" "trial_seconds=$trial_seconds" \
  "gen_mode=$gen_mode" "sink_mode=$sink_mode" "payload_bytes=$payload_bytes" "ptime=$ptime" \
  "loss_max_pct=$loss_max" "latency_max_ms=$latency_max_ms" "repeats=$repeats" \
  "kernel=$(uname -r)" \
  "rtpengine_version=$("${rtpengine_bin:-false}" --version 2> /dev/null | head -1 || true)" \
  "${load_args[@]}" "${cpu_args[@]}" --status "${status_args[@]}" || failed=1

if [ "$ran" = 0 ]; then
  skip "no relay available to measure"
fi
if command -v gnuplot > /dev/null && [ ! -s "$out/relay_compare.png" ]; then
  log "FAIL: gnuplot is installed but no plot was written ($out/relay_compare.png)"
  failed=1
fi
exit $failed
