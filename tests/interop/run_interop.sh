#!/usr/bin/env bash
# Interop test: SIPp UAC -> Kamailio 5.6 (rtpengine module) -> SIPp UAS, media through the relay
# under test (sipwise rtpengine as the reference, or xemsd), all on 127.0.0.1.
#
#   run_interop.sh rtpengine            # Debian's /usr/bin/rtpengine (or $RTPENGINE)
#   run_interop.sh xems PATH/TO/xemsd
#
# Exit: 0 pass, 1 fail (logs printed), 77 skip (reason printed: a tool missing, no raw sockets).
#
# Environment knobs (all optional):
#   INTEROP_CALLS=2          calls placed one after the other (SIPp -m N -l 1)
#   INTEROP_PACKETS=250      RTP packets per direction (20 ms PCMU each: 250 = 5 s of audio)
#   INTEROP_OFFER_FLAGS / INTEROP_ANSWER_FLAGS / INTEROP_DELETE_FLAGS
#                            rtpengine_offer/answer/delete flag strings for Kamailio
#   INTEROP_RELAY_ARGS       extra relay command-line options (word-split)
#   INTEROP_RELAY_IP=127.0.0.2  the relay's media address (--interface); ng is on 127.0.0.1
#   INTEROP_CAPTURE=1        tcpdump the ng port and print every ng message decoded at the end
#   INTEROP_KEEP=1           keep the temp dir (path printed); also kept automatically on failure
#                            when INTEROP_KEEP_ON_FAIL=1
#   INTEROP_VERBOSE=1        print all logs even on success
#
# What it checks (details in check_call.py): the relay answers ng ping; per call the relay's
# `list`/`query` show the two participants, mid-audio and after the audio exactly INTEROP_PACKETS
# RTP packets (and bytes) received from each side, nothing more during a settle period; the BYE's
# rtpengine_delete removes the call (the relay runs with delete-delay 0); each SIPp side saw only
# the relay's address/port in the SDP it received; both SIPp instances report success; the relay
# has no calls at the end.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=/usr/bin/python3
export PYTHONDONTWRITEBYTECODE=1  # keep the source tree clean
relay_kind=${1:-}
xemsd_bin=${2:-}

skip() { echo "SKIP: $*"; exit 77; }
say() { echo "[interop $(date +%H:%M:%S)] $*"; }

case "$relay_kind" in
  rtpengine) relay_bin=${RTPENGINE:-/usr/bin/rtpengine} ;;
  xems) relay_bin=$xemsd_bin
        [ -n "$relay_bin" ] || { echo "usage: $0 xems PATH/TO/xemsd" >&2; exit 2; } ;;
  *) echo "usage: $0 rtpengine|xems [xemsd-binary]" >&2; exit 2 ;;
esac

# ---- prerequisites (skip, not fail, when the environment lacks them) ---------------------------
[ -x "$PY" ] || skip "$PY not found"
[ -x "$relay_bin" ] || skip "relay binary '$relay_bin' not found or not executable"
command -v kamailio >/dev/null || skip "kamailio not installed (apt-get install kamailio)"
command -v sipp >/dev/null || skip "sipp not installed (apt-get install sip-tester)"
kam_mpath=""
for d in /usr/lib/x86_64-linux-gnu/kamailio/modules /usr/lib/kamailio/modules \
         /usr/lib64/kamailio/modules /usr/local/lib64/kamailio/modules; do
  if [ -f "$d/rtpengine.so" ] && [ -f "$d/tm.so" ]; then kam_mpath=$d/; break; fi
done
[ -n "$kam_mpath" ] || skip "kamailio modules (rtpengine.so, tm.so) not found"
# SIPp's play_pcap_audio sends through a raw socket: root or CAP_NET_RAW
if ! "$PY" -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP).close()' 2>/dev/null; then
  skip "no raw socket permission (SIPp play_pcap_audio needs root or CAP_NET_RAW)"
fi

# the relay's media address: a loopback address of its own (Linux routes all of 127/8 to lo), so
# that the SDP checks can tell the relay's address from the SIPp instances' 127.0.0.1
RELAY_IP=${INTEROP_RELAY_IP:-127.0.0.2}
"$PY" -c 'import socket,sys; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).bind((sys.argv[1], 0))' \
  "$RELAY_IP" 2>/dev/null || skip "cannot bind the relay media address $RELAY_IP"

CALLS=${INTEROP_CALLS:-2}
PACKETS=${INTEROP_PACKETS:-250}
PTIME=20
OFFER_FLAGS=${INTEROP_OFFER_FLAGS:-replace-origin replace-session-connection ICE=remove}
ANSWER_FLAGS=${INTEROP_ANSWER_FLAGS:-replace-origin replace-session-connection ICE=remove}
DELETE_FLAGS=${INTEROP_DELETE_FLAGS:-}

T=$(mktemp -d "${TMPDIR:-/tmp}/xems-interop.XXXXXX") || { echo "mktemp failed"; exit 1; }
status=1
pids=()          # everything we started, in start order
declare -A pname

alive() {  # alive PID: running and not a zombie
  local st
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ]
}

stop_pid() {  # stop_pid PID: TERM, bounded wait, KILL; reaps it
  local pid=$1 i
  if alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 50); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then
      say "${pname[$pid]:-$pid} did not stop on SIGTERM within 5s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null
      for i in $(seq 20); do alive "$pid" || break; sleep 0.1; done
    fi
  fi
  wait "$pid" 2>/dev/null
}

wait_exit() {  # wait_exit PID SECONDS: bounded wait for a process to end by itself; sets $rc
  local pid=$1 secs=$2 end
  end=$(( $(date +%s) + secs ))
  while alive "$pid"; do
    if [ "$(date +%s)" -ge "$end" ]; then rc=124; return 1; fi
    sleep 0.1
  done
  wait "$pid" 2>/dev/null; rc=$?
  return 0
}

show() {  # show FILE [FILTER-CMD]
  local f=$1
  [ -s "$f" ] || return 0
  echo "======== $(basename "$f") (last 150 lines) ========"
  if [ $# -gt 1 ]; then "${@:2}" < "$f" | tail -n 150; else tail -n 150 "$f"; fi
}

print_logs() {
  show "$T/relay.log"
  show "$T/kamailio.log" grep -v -E 'DEBUG|^ *$'
  for s in uac uas; do
    show "$T/${s}_screen.log"
    show "$T/${s}_err.log"
    show "$T/${s}_msg.log"
    show "$T/${s}.out" tr -d '\033'
  done
}

cleanup() {
  local i pid kids=""
  trap - EXIT INT TERM
  # stop in reverse start order; Kamailio's forked children are ours too (by PID)
  for ((i=${#pids[@]}-1; i>=0; i--)); do
    pid=${pids[$i]}
    if [ "${pname[$pid]}" = kamailio ]; then
      kids=$(ps -o pid= --ppid "$pid" 2>/dev/null | tr '\n' ' ')
    fi
    stop_pid "$pid"
    if [ "${pname[$pid]}" = kamailio ]; then
      for k in $kids; do
        if alive "$k"; then say "kamailio child $k left over: killing it"; kill -KILL "$k" 2>/dev/null; fi
      done
    fi
  done
  if [ "${INTEROP_CAPTURE:-0}" = 1 ] && [ -s "$T/ng.pcap" ]; then
    echo "======== ng messages (tcpdump of the ng port, decoded) ========"
    echo "(the test driver's own list/query polling left out)"
    "$PY" "$here/ng_pcap_dump.py" "$T/ng.pcap" --port "$NG_PORT" --skip list,query || true
  fi
  if [ "$status" -ne 0 ] || [ "${INTEROP_VERBOSE:-0}" = 1 ]; then
    print_logs
  fi
  if [ "${INTEROP_KEEP:-0}" = 1 ] || { [ "$status" -ne 0 ] && [ "${INTEROP_KEEP_ON_FAIL:-0}" = 1 ]; }; then
    say "kept $T"
  else
    rm -rf "$T"
  fi
  if [ "$status" -eq 0 ]; then say "PASS ($relay_kind)"; else say "FAIL ($relay_kind)"; fi
  exit "$status"
}
fg_pid=
on_signal() {
  say "interrupted"
  [ -n "$fg_pid" ] && kill -TERM "$fg_pid" 2>/dev/null
  status=1
  exit 1
}
trap cleanup EXIT
trap on_signal INT TERM

# py ARGS...: the Python helper, run in the background and waited for, so that a SIGTERM/SIGINT
# to this script is handled at once (bash defers traps while a foreground child runs)
py() {
  "$PY" "$@" &
  fg_pid=$!
  wait "$fg_pid"
  local r=$?
  fg_pid=
  return $r
}

fail() { say "FAIL: $*"; status=1; exit 1; }

last_pid=
start() {  # start NAME LOG CMD...: background process, recorded by PID in pids and last_pid
  local name=$1 logf=$2; shift 2
  "$@" > "$logf" 2>&1 < /dev/null &
  last_pid=$!
  pids+=("$last_pid"); pname[$last_pid]=$name
  say "started $name (pid $last_pid): $*"
}

# ---- ports, media, configs ---------------------------------------------------------------------
eval "$("$PY" "$here/check_call.py" ports)" || fail "could not find free ports"
[ -n "${NG_PORT:-}" ] || fail "could not find free ports"
say "ports: kamailio $SIP_PORT, uac $UAC_PORT (media $UAC_MP), uas $UAS_PORT (media $UAS_MP)," \
    "ng 127.0.0.1:$NG_PORT, relay media $RELAY_IP:$RELAY_PORT_MIN-$RELAY_PORT_MAX; dir $T"

read -r npk nbytes < <("$PY" "$here/gen_rtp_pcap.py" "$T/audio.pcap" --packets "$PACKETS" \
  --ptime "$PTIME" >/dev/null && "$PY" "$here/gen_rtp_pcap.py" "$T/audio.pcap" --count)
[ "${npk:-0}" -gt 0 ] || fail "pcap generation failed"
say "pcap: $npk RTP packets, $nbytes RTP bytes (PCMU, ${PTIME} ms)"
cp "$here/uac.xml" "$here/uas.xml" "$T/"

"$PY" "$here/check_call.py" render "$here/kamailio.cfg.in" "$T/kamailio.cfg" \
  "SIP_PORT=$SIP_PORT" "UAS_PORT=$UAS_PORT" "NG_PORT=$NG_PORT" "MPATH=$kam_mpath" \
  "OFFER_FLAGS=$OFFER_FLAGS" "ANSWER_FLAGS=$ANSWER_FLAGS" "DELETE_FLAGS=$DELETE_FLAGS" \
  "DEBUG=${INTEROP_KAM_DEBUG:-2}" || fail "kamailio.cfg rendering failed"
kamailio -c -f "$T/kamailio.cfg" > "$T/kamailio-check.log" 2>&1 \
  || { cat "$T/kamailio-check.log"; fail "kamailio -c rejected the config"; }
mkdir -p "$T/kamailio-run"

# ---- relay ---------------------------------------------------------------------------------------
relay_args=("--interface=$RELAY_IP" "--listen-ng=127.0.0.1:$NG_PORT"
  "--port-min=$RELAY_PORT_MIN" "--port-max=$RELAY_PORT_MAX" --foreground --num-threads=2
  --delete-delay=0 --timeout=60 "--pidfile=$T/relay.pid")
if [ "$relay_kind" = rtpengine ]; then
  # no kernel table, log to stderr, and never read /etc/rtpengine/rtpengine.conf (its listen-cli /
  # listen-http ports and interface=any would collide with other instances)
  relay_args=(--config-file=none --table=-1 --log-stderr --log-level=6 "${relay_args[@]}")
else
  relay_args+=(--log-level=6)
fi
# shellcheck disable=SC2206
relay_args+=(${INTEROP_RELAY_ARGS:-})
start relay "$T/relay.log" "$relay_bin" "${relay_args[@]}"
relay_pid=$last_pid
py "$here/check_call.py" wait-ping --ng "127.0.0.1:$NG_PORT" --timeout 15 --pid "$relay_pid" \
  || fail "relay did not come up"

if [ "${INTEROP_CAPTURE:-0}" = 1 ]; then
  if command -v tcpdump >/dev/null; then
    start tcpdump "$T/tcpdump.log" tcpdump -i lo -U -s 0 -n -w "$T/ng.pcap" "udp port $NG_PORT"
    for _ in $(seq 50); do grep -q 'listening on' "$T/tcpdump.log" 2>/dev/null && break; sleep 0.1; done
    grep -q 'listening on' "$T/tcpdump.log" || say "tcpdump not ready after 5s (capture may be partial)"
  else
    say "INTEROP_CAPTURE=1 but no tcpdump: no capture"
  fi
fi

# ---- Kamailio ----------------------------------------------------------------------------------
start kamailio "$T/kamailio.log" kamailio -f "$T/kamailio.cfg" -DD -E -Y "$T/kamailio-run" \
  -P "$T/kamailio.pid" -m 64 -M 8
kamailio_pid=$last_pid
py "$here/check_call.py" wait-sip "127.0.0.1:$SIP_PORT" --timeout 15 --pid "$kamailio_pid" \
  || fail "kamailio did not come up"

# ---- SIPp UAS, then UAC ------------------------------------------------------------------------
# SIPp's own global bound: generous per call (audio + signalling), fails the run when hit
sipp_timeout=$(( 30 + CALLS * (PACKETS * PTIME / 1000 + 20) ))
sipp_common=(-i 127.0.0.1 -mi 127.0.0.1 -m "$CALLS" -nostdin -trace_err -trace_msg -trace_screen
  -timeout "$sipp_timeout" -timeout_error)
(cd "$T" && exec sipp -sf "$T/uas.xml" -p "$UAS_PORT" -mp "$UAS_MP" -cp "$UAS_CP" \
    "${sipp_common[@]}" -message_file "$T/uas_msg.log" -error_file "$T/uas_err.log" \
    -screen_file "$T/uas_screen.log") > "$T/uas.out" 2>&1 < /dev/null &
uas_pid=$!; pids+=("$uas_pid"); pname[$uas_pid]=sipp-uas; say "started sipp-uas (pid $uas_pid)"
py "$here/check_call.py" wait-bound "127.0.0.1:$UAS_PORT" --timeout 10 --pid "$uas_pid" \
  || fail "SIPp UAS did not come up"

(cd "$T" && exec sipp -sf "$T/uac.xml" -p "$UAC_PORT" -mp "$UAC_MP" -cp "$UAC_CP" \
    "${sipp_common[@]}" -l 1 -r 1 -s xems -message_file "$T/uac_msg.log" \
    -error_file "$T/uac_err.log" -screen_file "$T/uac_screen.log" "127.0.0.1:$SIP_PORT") \
    > "$T/uac.out" 2>&1 < /dev/null &
uac_pid=$!; pids+=("$uac_pid"); pname[$uac_pid]=sipp-uac; say "started sipp-uac (pid $uac_pid)"

# ---- per-call checks on the relay (mid-audio, exact counts after the audio, release, delete) ----
common_args=(--calls "$CALLS" --out "$T" --uac-mp "$UAC_MP" --uas-mp "$UAS_MP"
  --relay-ip "$RELAY_IP" --relay-min "$RELAY_PORT_MIN" --relay-max "$RELAY_PORT_MAX")
py "$here/check_call.py" calls "${common_args[@]}" --ng "127.0.0.1:$NG_PORT" \
  --uac "127.0.0.1:$UAC_PORT" --driver-port "$DRIVER_PORT" --packets "$npk" --bytes "$nbytes" \
  --ptime "$PTIME" --relay-pid "$relay_pid" --kamailio-pid "$kamailio_pid" --uac-pid "$uac_pid" \
  --uas-pid "$uas_pid" || fail "relay call checks failed"

# ---- SIPp results ---------------------------------------------------------------------------------
wait_exit "$uac_pid" 15 || fail "SIPp UAC still running 15s after the last call was checked"
[ "$rc" -eq 0 ] || fail "SIPp UAC exited with $rc (0 = all calls successful)"
say "SIPp UAC: all $CALLS call(s) successful"
wait_exit "$uas_pid" 15 || fail "SIPp UAS still running 15s after the UAC finished"
[ "$rc" -eq 0 ] || fail "SIPp UAS exited with $rc"
say "SIPp UAS: all $CALLS call(s) successful"

sdp_expect=()
case " $OFFER_FLAGS " in *" replace-origin "*)
  case " $ANSWER_FLAGS " in *" replace-origin "*) sdp_expect+=(--expect-origin) ;; esac ;; esac
case " $OFFER_FLAGS " in *" replace-session-connection "*)
  case " $ANSWER_FLAGS " in *" replace-session-connection "*) sdp_expect+=(--expect-session-c) ;; esac ;; esac
"$PY" "$here/check_call.py" check-sdp "${common_args[@]}" "${sdp_expect[@]}" \
  --uac-log "$T/uac_msg.log" --uas-log "$T/uas_msg.log" || fail "SDP checks failed"
py "$here/check_call.py" no-calls --ng "127.0.0.1:$NG_PORT" --timeout 5 \
  || fail "calls left on the relay"
alive "$relay_pid" || fail "relay died during the test"
alive "$kamailio_pid" || fail "kamailio died during the test"
grep -q -E 'rtpengine_(offer|answer) failed|ERROR: rtpengine' "$T/kamailio.log" \
  && fail "kamailio logged rtpengine errors"
status=0
