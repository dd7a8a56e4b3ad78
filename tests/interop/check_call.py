#!/usr/bin/python3
"""Helpers and assertions of the Kamailio + SIPp interop test (run_interop.sh), stdlib only.

Subcommands (each exits 0 on success, 1 on a failed check, 2 on bad usage):
  ports                 picks a free block of 64 loopback UDP ports, prints KEY=VALUE lines
  render                fills the @KEY@ placeholders of a template (Kamailio config)
  wait-ping             polls the relay's ng `ping` until it answers `pong` (bounded)
  wait-sip              polls a SIP UDP server with OPTIONS until any reply comes (bounded)
  wait-bound            polls until somebody has bound a UDP port (bounded)
  calls                 follows each call through the relay over ng and checks it (see run_calls)
  check-sdp             checks the SDP each SIPp side received (from SIPp -trace_msg logs)
  no-calls              checks that the relay's `list` is empty (bounded poll)

All waits are bounded polls; no fixed sleeps decide an outcome.
"""
import argparse
import json
import os
import random
import re
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from ngclient import NgClient  # noqa: E402

POLL = 0.05  # seconds between polls


class CheckError(Exception):
    pass


def log(msg):
    print(f"[check_call {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def hostport(s):
    h, _, p = s.rpartition(":")
    return (h or "127.0.0.1", int(p))


# ---------------------------------------------------------------------------------------------
# ports / render

PORT_LAYOUT = {
    # offsets inside a 64-port block; the relay gets the even-aligned upper 48 ports
    "SIP_PORT": 0,      # Kamailio
    "UAC_PORT": 1,      # SIPp UAC SIP
    "UAS_PORT": 2,      # SIPp UAS SIP
    "NG_PORT": 3,       # relay ng control
    "UAC_CP": 4,        # SIPp UAC control port (SIPp binds it on 0.0.0.0)
    "UAS_CP": 5,        # SIPp UAS control port
    "DRIVER_PORT": 6,   # source port of the driver's release OPTIONS
    "UAC_MP": 8,        # SIPp UAC media (binds MP and MP+2)
    "UAS_MP": 12,       # SIPp UAS media (binds MP and MP+2)
    "RELAY_PORT_MIN": 16,
    "RELAY_PORT_MAX": 63,
}


def cmd_ports(a):
    """A random 64-aligned block in [lo, hi) (below Linux's ephemeral range) whose every port can be
    bound on 0.0.0.0 for UDP right now (which also proves 127.0.0.1 free). Best effort against races
    with other processes: the block is held until printed."""
    rng = random.Random(os.getpid() ^ int(time.time() * 1000))
    for _ in range(200):
        base = rng.randrange(a.lo // 64, a.hi // 64) * 64
        held = []
        try:
            for p in range(base, base + 64):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                held.append(s)
                s.bind(("0.0.0.0", p))
            for k, off in PORT_LAYOUT.items():
                print(f"{k}={base + off}")
            return 0
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    print("no free 64-port block found", file=sys.stderr)
    return 1


def cmd_render(a):
    with open(a.template) as f:
        text = f.read()
    for kv in a.set:
        k, _, v = kv.partition("=")
        text = text.replace(f"@{k}@", v)
    left = sorted(set(re.findall(r"@[A-Z_]+@", text)))
    if left:
        print(f"unfilled placeholders: {' '.join(left)}", file=sys.stderr)
        return 1
    with open(a.out, "w") as f:
        f.write(text)
    return 0


# ---------------------------------------------------------------------------------------------
# readiness polls

def pid_alive(pid):
    if not pid:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie still answers kill -0: look at /proc
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def cmd_wait_ping(a):
    ng = NgClient(hostport(a.ng), timeout=0.2, retries=1)
    deadline = time.monotonic() + a.timeout
    while time.monotonic() < deadline:
        if not pid_alive(a.pid):
            log(f"relay process {a.pid} exited before answering ping")
            return 1
        try:
            if ng.ping():
                log(f"relay at {a.ng} answered ping")
                return 0
        except (TimeoutError, OSError, ValueError):
            pass
        time.sleep(POLL)
    log(f"relay at {a.ng} did not answer ping within {a.timeout}s")
    return 1


def cmd_wait_sip(a):
    host, port = hostport(a.addr)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(0.2)
    lport = s.getsockname()[1]
    deadline = time.monotonic() + a.timeout
    n = 0
    while time.monotonic() < deadline:
        if not pid_alive(a.pid):
            log(f"process {a.pid} exited before answering SIP")
            return 1
        n += 1
        msg = (f"OPTIONS sip:ping@{host}:{port} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP 127.0.0.1:{lport};branch=z9hG4bK-xemsping-{os.getpid()}-{n}\r\n"
               f"From: <sip:ping@127.0.0.1:{lport}>;tag=ping{n}\r\n"
               f"To: <sip:ping@{host}:{port}>\r\n"
               f"Call-ID: xems-interop-ping-{os.getpid()}-{n}\r\n"
               f"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
        try:
            s.sendto(msg.encode(), (host, port))
            data, _ = s.recvfrom(65535)
            first = data.split(b"\r\n", 1)[0].decode(errors="replace")
            log(f"SIP server at {a.addr} answered: {first}")
            return 0
        except (socket.timeout, ConnectionRefusedError):
            pass
    log(f"SIP server at {a.addr} did not answer within {a.timeout}s")
    return 1


def cmd_wait_bound(a):
    host, port = hostport(a.addr)
    deadline = time.monotonic() + a.timeout
    while time.monotonic() < deadline:
        if not pid_alive(a.pid):
            log(f"process {a.pid} exited before binding {a.addr}")
            return 1
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind((host, port))
        except OSError:
            return 0
        finally:
            s.close()
        time.sleep(POLL)
    log(f"nobody bound udp {a.addr} within {a.timeout}s")
    return 1


# ---------------------------------------------------------------------------------------------
# relay call checks

def rtp_stream(media):
    """The RTP stream of a media (rtpengine lists RTP then RTCP, flags say which)."""
    streams = media.get("streams") or []
    for st in streams:
        if "RTP" in (st.get("flags") or []):
            return st
    return streams[0] if streams else None


def rtcp_stream(media):
    streams = media.get("streams") or []
    for st in streams:
        if "RTCP" in (st.get("flags") or []):
            return st
    return streams[1] if len(streams) > 1 else None


def participants(q, uac_marker, uas_marker):
    """Maps 'uac'/'uas' -> (tag, monologue dict) using the SIPp tag naming of our scenarios."""
    tags = q.get("tags") or {}
    out = {}
    for tag, mono in tags.items():
        if uac_marker in tag:
            out["uac"] = (tag, mono)
        elif uas_marker in tag:
            out["uas"] = (tag, mono)
    return out


def packets_of(mono):
    medias = mono.get("medias") or []
    if not medias:
        return None
    st = rtp_stream(medias[0])
    if st is None:
        return None
    return (st.get("stats") or {}).get("packets")


class Relay:
    def __init__(self, addr):
        self.ng = NgClient(hostport(addr), timeout=1.0, retries=3)

    def list(self):
        r = self.ng.request("list", limit=1000)
        if r.get("result") != "ok":
            raise CheckError(f"list failed: {r}")
        return list(r.get("calls") or [])

    def query(self, call_id):
        return self.ng.request("query", call_id=call_id)


GUARD_PIDS = {}  # name -> pid of processes whose early exit makes waiting pointless


def wait_for(desc, timeout, fn):
    """Polls fn() until it returns a truthy value; CheckError after timeout, or as soon as one of
    GUARD_PIDS has exited."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        for name, pid in GUARD_PIDS.items():
            if not pid_alive(pid):
                raise CheckError(f"{name} (pid {pid}) exited while waiting for {desc}")
        try:
            v = fn()
            if v:
                return v
        except (TimeoutError, OSError) as e:  # ng timeouts are retried until the deadline
            last_exc = e
        if time.monotonic() >= deadline:
            raise CheckError(f"timed out after {timeout}s waiting for {desc}"
                             + (f" (last error: {last_exc})" if last_exc else ""))
        time.sleep(POLL)


def send_release(uac_addr, driver_port, call_id, n):
    """Out-of-band OPTIONS with the call's Call-ID straight to the SIPp UAC: its scenario waits for
    it before sending BYE. SIPp does not answer it (it would send the answer to Kamailio)."""
    host, port = uac_addr
    msg = (f"OPTIONS sip:uac@{host}:{port} SIP/2.0\r\n"
           f"Via: SIP/2.0/UDP 127.0.0.1:{driver_port};branch=z9hG4bK-xemsrelease-{os.getpid()}-{n}\r\n"
           f"From: <sip:driver@127.0.0.1:{driver_port}>;tag=xemsdriver{n}\r\n"
           f"To: <sip:uac@{host}:{port}>\r\n"
           f"Call-ID: {call_id}\r\n"
           f"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", driver_port))
    except OSError:
        s.bind(("127.0.0.1", 0))
    s.sendto(msg.encode(), (host, port))
    s.close()


def check_final(q, a, call_id):
    """Exact per-stream checks after the audio of both sides has been relayed."""
    errs = []
    parts = participants(q, a.uac_tag_marker, a.uas_tag_marker)
    tags = list((q.get("tags") or {}).keys())
    if set(parts) != {"uac", "uas"}:
        errs.append(f"expected one UAC and one UAS monologue, tags are {tags}")
        return errs, parts
    if len(tags) != 2:
        errs.append(f"expected exactly 2 monologues, got {tags}")
    expect_ep = {"uac": a.uac_mp, "uas": a.uas_mp}
    other = {"uac": "uas", "uas": "uac"}
    for side, (tag, mono) in parts.items():
        subs = [s.get("tag") for s in mono.get("subscriptions") or []]
        if "subscriptions" in mono and parts[other[side]][0] not in subs:
            errs.append(f"{side} {tag}: subscriptions {subs} lack the other party")
        medias = mono.get("medias") or []
        if len(medias) != 1:
            errs.append(f"{side} {tag}: expected 1 media, got {len(medias)}")
            continue
        m = medias[0]
        if m.get("type") not in (None, "audio"):
            errs.append(f"{side}: media type {m.get('type')}")
        if "codec" in m and not str(m["codec"]).startswith("PCMU"):
            errs.append(f"{side}: codec {m['codec']} (expected PCMU/8000)")
        st = rtp_stream(m)
        if st is None:
            errs.append(f"{side}: no RTP stream")
            continue
        stats = st.get("stats") or {}
        pk, by, er = stats.get("packets"), stats.get("bytes"), stats.get("errors", 0)
        if pk != a.packets:
            errs.append(f"{side} {tag}: RTP stats.packets {pk} != {a.packets} packets in the pcap")
        if a.bytes and by != a.bytes:
            errs.append(f"{side} {tag}: RTP stats.bytes {by} != {a.bytes} (RTP header+payload bytes)")
        if er:
            errs.append(f"{side} {tag}: RTP stats.errors {er}")
        ep = st.get("endpoint") or {}
        if ep.get("port") != expect_ep[side] or ep.get("address") not in ("127.0.0.1", None):
            errs.append(f"{side} {tag}: learned endpoint {ep} != 127.0.0.1:{expect_ep[side]}")
        lp = st.get("local port")
        if st.get("local address") not in (None, a.relay_ip):
            errs.append(f"{side} {tag}: local address {st.get('local address')} != {a.relay_ip}")
        if not (isinstance(lp, int) and a.relay_min <= lp <= a.relay_max):
            errs.append(f"{side} {tag}: local port {lp} outside relay range "
                        f"{a.relay_min}-{a.relay_max}")
        if "SSRC" in st and st["SSRC"] != a.ssrc:
            errs.append(f"{side} {tag}: SSRC {st['SSRC']:#x} != {a.ssrc:#x}")
        rt = rtcp_stream(m)
        if rt is not None:
            rpk = (rt.get("stats") or {}).get("packets", 0)
            if rpk:
                errs.append(f"{side} {tag}: RTCP stats.packets {rpk}, expected 0 (SIPp sends none)")
            rlp = rt.get("local port")
            if isinstance(lp, int) and isinstance(rlp, int) and rlp != lp + 1:
                errs.append(f"{side} {tag}: RTCP local port {rlp} != RTP port + 1 ({lp + 1})")
    tot = (q.get("totals") or {}).get("RTP")
    if tot is not None and tot.get("packets") != 2 * a.packets:
        errs.append(f"totals.RTP.packets {tot.get('packets')} != {2 * a.packets}")
    return errs, parts


def summary(parts):
    out = []
    for side in ("uac", "uas"):
        if side not in parts:
            continue
        tag, mono = parts[side]
        m = (mono.get("medias") or [{}])[0]
        st = rtp_stream(m) or {}
        stats = st.get("stats") or {}
        ep = st.get("endpoint") or {}
        out.append(f"{side} tag={tag} local={st.get('local address')}:{st.get('local port')} "
                   f"peer={ep.get('address')}:{ep.get('port')} packets={stats.get('packets')} "
                   f"bytes={stats.get('bytes')} flags={st.get('flags')}")
    return "; ".join(out)


def run_calls(a):
    """For each of the a.calls calls placed by the SIPp UAC (one at a time):
      1. a new call-id appears in the relay's `list`;
      2. mid-audio: `query` shows both participants (UAC and UAS tags) each with an RTP stream that
         has received packets, and never more than the pcap holds;
      3. after the audio: both RTP streams reach exactly the pcap's packet count and stay there for
         a settle period (no duplicates, nothing extra), bytes/errors/RTCP/endpoints/ports checked;
      4. release: the driver tells the UAC to hang up; Kamailio's rtpengine_delete on the BYE
         (delete-delay 0 on the relay) must make the call disappear from `list`.
    The snapshots are written to OUT/call<N>.json for check-sdp."""
    relay = Relay(a.ng)
    uac_addr = hostport(a.uac)
    for name, pid in (("relay", a.relay_pid), ("SIPp UAC", a.uac_pid), ("SIPp UAS", a.uas_pid),
                      ("kamailio", a.kamailio_pid)):
        if pid:
            GUARD_PIDS[name] = pid
    seen = set(relay.list())
    if seen:
        raise CheckError(f"relay already has calls before the test: {sorted(seen)}")
    audio_s = a.packets * a.ptime / 1000.0
    for n in range(1, a.calls + 1):
        log(f"call {n}/{a.calls}: waiting for a new call on the relay")
        new = wait_for(f"call {n} to appear in the relay's list", a.setup_timeout,
                       lambda: [c for c in relay.list() if c not in seen])
        if len(new) != 1:
            raise CheckError(f"expected one new call, got {new}")
        call_id = new[0]
        seen.add(call_id)
        log(f"call {n}: call-id {call_id}")

        def both_flowing():
            q = relay.query(call_id)
            if q.get("result") != "ok":
                raise CheckError(f"query {call_id} failed: {q}")
            parts = participants(q, a.uac_tag_marker, a.uas_tag_marker)
            if set(parts) != {"uac", "uas"}:
                return None
            pk = {s: packets_of(m) for s, (_, m) in parts.items()}
            for s, v in pk.items():
                if v is not None and v > a.packets:
                    raise CheckError(f"{s}: {v} packets > {a.packets} in the pcap: {summary(parts)}")
            if all(v is not None and v >= max(1, a.packets // 2) for v in pk.values()):
                return q, parts
            return None

        q_mid, parts = wait_for(f"call {n}: RTP flowing both ways (half the pcap each way)",
                                audio_s + a.setup_timeout, both_flowing)
        log(f"call {n} mid-audio: {summary(parts)}")

        def both_complete():
            r = both_flowing()
            if r and all(packets_of(m) >= a.packets for _, m in r[1].values()):
                return r
            return None

        try:
            q_fin, parts = wait_for(f"call {n}: all {a.packets} packets relayed each way",
                                    audio_s + a.setup_timeout, both_complete)
        except CheckError as e:
            q = relay.query(call_id)
            raise CheckError(f"{e}: {summary(participants(q, a.uac_tag_marker, a.uas_tag_marker))}")
        # settle: nothing more may arrive (duplicates, echoes, loops)
        settle_end = time.monotonic() + a.settle
        while time.monotonic() < settle_end:
            time.sleep(POLL)
            q_fin = relay.query(call_id)
            for s, (_, m) in participants(q_fin, a.uac_tag_marker, a.uas_tag_marker).items():
                if packets_of(m) != a.packets:
                    raise CheckError(f"call {n}: {s} packet count moved past {a.packets} after the "
                                     f"audio: {summary(participants(q_fin, a.uac_tag_marker, a.uas_tag_marker))}")
        errs, parts = check_final(q_fin, a, call_id)
        log(f"call {n} after audio: {summary(parts)}")
        with open(os.path.join(a.out, f"call{n}.json"), "w") as f:
            json.dump({"call-id": call_id, "mid": q_mid, "final": q_fin}, f, indent=1)
        if errs:
            raise CheckError(f"call {n}: " + "; ".join(errs))
        log(f"call {n}: exact counts OK ({a.packets} RTP packets relayed each way)")

        # release and wait for the delete
        sent = 0
        deadline = time.monotonic() + a.teardown_timeout
        while True:
            if sent == 0 or (time.monotonic() > release_at + 5.0 and sent < 2):
                send_release(uac_addr, a.driver_port, call_id, sent + 1)
                release_at = time.monotonic()
                sent += 1
            if call_id not in relay.list():
                break
            if time.monotonic() > deadline:
                raise CheckError(f"call {n}: {call_id} still on the relay {a.teardown_timeout}s "
                                 "after the release (BYE -> rtpengine_delete)")
            time.sleep(POLL)
        q = relay.query(call_id)
        log(f"call {n}: gone from the relay's list after BYE; query now answers "
            f"{q.get('result')}: {q.get('error-reason', '')}")
        if q.get("result") == "ok":
            raise CheckError(f"call {n}: query still finds {call_id} after delete")
    return 0


def cmd_calls(a):
    try:
        return run_calls(a)
    except CheckError as e:
        log(f"FAIL: {e}")
        return 1


# ---------------------------------------------------------------------------------------------
# SDP seen by the SIPp sides

def sipp_messages(path):
    """Parses a SIPp -trace_msg log into (direction, text) entries; direction 'sent'/'received'."""
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    out = []
    for chunk in re.split(r"^-{20,}.*$", text, flags=re.M):
        m = re.search(r"^\s*(?:UDP|TCP)\s+message\s+(sent|received)[^\n]*\n", chunk, flags=re.M)
        if not m:
            continue
        body = chunk[m.end():].lstrip("\r\n")
        out.append((m.group(1), body))
    return out


def parse_sip(text):
    head, _, body = text.replace("\r\n", "\n").partition("\n\n")
    lines = head.split("\n")
    hdrs = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hdrs.setdefault(k.strip().lower(), v.strip())
    return lines[0].strip(), hdrs, body


def sdp_media(body):
    """Audio media of an SDP body: dict with the effective connection address of the audio media
    ('addr', media-level c= else session-level), 'session_c', 'origin' (o= address), 'port',
    'pts' (payload types)."""
    out = {"addr": None, "session_c": None, "origin": None, "port": None, "pts": None}
    media_c = None
    section = "session"
    for ln in body.split("\n"):
        ln = ln.strip()
        if ln.startswith("o="):
            out["origin"] = ln.split()[-1]
        elif ln.startswith("m="):
            f = ln[2:].split()
            section = f[0]
            if section == "audio" and out["port"] is None:
                out["port"], out["pts"] = int(f[1]), f[3:]
        elif ln.startswith("c="):
            if section == "session":
                out["session_c"] = ln.split()[-1]
            elif section == "audio" and media_c is None:
                media_c = ln.split()[-1]
    out["addr"] = media_c or out["session_c"]
    return out


def cmd_check_sdp(a):
    calls = []
    for n in range(1, a.calls + 1):
        with open(os.path.join(a.out, f"call{n}.json")) as f:
            calls.append(json.load(f))
    by_cid = {c["call-id"]: c for c in calls}
    errs = []
    seen = {"uac": set(), "uas": set()}
    checks = (
        # side, log, what it must have received, our own media port, the other SIPp's media port
        ("uac", a.uac_log, lambda st, h: st.startswith("SIP/2.0 200") and "INVITE" in h.get("cseq", ""),
         a.uac_mp, a.uas_mp),
        ("uas", a.uas_log, lambda st, h: st.startswith("INVITE "), a.uas_mp, a.uac_mp),
    )
    for side, path, want, own_mp, other_mp in checks:
        for direction, text in sipp_messages(path):
            start, hdrs, body = parse_sip(text)
            if "m=audio" not in body:
                continue
            sdp = sdp_media(body)
            port, pts, addr = sdp["port"], sdp["pts"], sdp["addr"]
            cid = hdrs.get("call-id")
            if direction == "sent":
                if port != own_mp:
                    errs.append(f"{side} sent SDP with port {port}, expected its media port {own_mp}")
                continue
            if not want(start, hdrs) or cid not in by_cid:
                continue
            if cid in seen[side]:
                continue  # retransmission
            seen[side].add(cid)
            final = by_cid[cid]["final"]
            parts = participants(final, a.uac_tag_marker, a.uas_tag_marker)
            st = rtp_stream((parts[side][1].get("medias") or [{}])[0]) or {}
            lp = st.get("local port")
            what = (f"{side} received ({start}) for {cid}: o=..{sdp['origin']} c={addr} "
                    f"m=audio {port} {' '.join(pts or [])}")
            log(what)
            if addr != a.relay_ip:
                errs.append(f"{what}: media address is not the relay's {a.relay_ip}")
            if a.expect_session_c and sdp["session_c"] not in (None, a.relay_ip):
                errs.append(f"{what}: session-level c={sdp['session_c']} not rewritten to "
                            f"{a.relay_ip} (replace-session-connection)")
            if a.expect_origin and sdp["origin"] != a.relay_ip:
                errs.append(f"{what}: o= address {sdp['origin']} not rewritten to {a.relay_ip} "
                            "(replace-origin)")
            if port == other_mp:
                errs.append(f"{what}: port is the other SIPp's media port {other_mp} (relay bypassed)")
            if port != lp:
                errs.append(f"{what}: port != the relay's {side}-facing local port {lp}")
            if not (a.relay_min <= (port or 0) <= a.relay_max):
                errs.append(f"{what}: port outside the relay range {a.relay_min}-{a.relay_max}")
            if pts != ["0"]:
                errs.append(f"{what}: payload types {pts}, expected [0] (PCMU)")
    for side in ("uac", "uas"):
        missing = set(by_cid) - seen[side]
        if missing:
            errs.append(f"{side}: no received SDP found in its message log for {sorted(missing)}")
    if errs:
        for e in errs:
            log(f"FAIL: {e}")
        return 1
    log(f"SDP OK: both SIPp sides saw only the relay's address and ports ({len(by_cid)} call(s))")
    return 0


def cmd_no_calls(a):
    relay = Relay(a.ng)
    try:
        wait_for("the relay's list to be empty", a.timeout, lambda: relay.list() == [])
    except CheckError as e:
        log(f"FAIL: {e}: {relay.list()}")
        return 1
    log("relay has no calls left")
    return 0


# ---------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("ports")
    p.add_argument("--lo", type=int, default=20000)
    p.add_argument("--hi", type=int, default=30000)  # rtpengine's default media range starts at 30000
    p.set_defaults(fn=cmd_ports)

    p = sub.add_parser("render")
    p.add_argument("template")
    p.add_argument("out")
    p.add_argument("set", nargs="*", help="KEY=VALUE")
    p.set_defaults(fn=cmd_render)

    p = sub.add_parser("wait-ping")
    p.add_argument("--ng", required=True)
    p.add_argument("--timeout", type=float, default=15)
    p.add_argument("--pid", type=int, default=0)
    p.set_defaults(fn=cmd_wait_ping)

    p = sub.add_parser("wait-sip")
    p.add_argument("addr")
    p.add_argument("--timeout", type=float, default=15)
    p.add_argument("--pid", type=int, default=0)
    p.set_defaults(fn=cmd_wait_sip)

    p = sub.add_parser("wait-bound")
    p.add_argument("addr")
    p.add_argument("--timeout", type=float, default=15)
    p.add_argument("--pid", type=int, default=0)
    p.set_defaults(fn=cmd_wait_bound)

    def common(p):
        p.add_argument("--calls", type=int, default=1)
        p.add_argument("--out", required=True, help="directory for call<N>.json")
        p.add_argument("--uac-mp", type=int, required=True)
        p.add_argument("--uas-mp", type=int, required=True)
        p.add_argument("--relay-ip", default="127.0.0.1", help="the relay's media address")
        p.add_argument("--relay-min", type=int, required=True)
        p.add_argument("--relay-max", type=int, required=True)
        p.add_argument("--uac-tag-marker", default="XemsUac")
        p.add_argument("--uas-tag-marker", default="XemsUas")

    p = sub.add_parser("calls")
    common(p)
    p.add_argument("--ng", required=True)
    p.add_argument("--uac", required=True, help="SIPp UAC SIP address (for the release OPTIONS)")
    p.add_argument("--driver-port", type=int, default=0)
    for who in ("relay", "uac", "uas", "kamailio"):
        p.add_argument(f"--{who}-pid", type=int, default=0,
                       help=f"fail at once when the {who} process exits during a wait")
    p.add_argument("--packets", type=int, required=True, help="RTP packets in the pcap")
    p.add_argument("--bytes", type=int, default=0, help="RTP bytes (header+payload) in the pcap")
    p.add_argument("--ssrc", type=lambda s: int(s, 0), default=0x5EED1234)
    p.add_argument("--ptime", type=int, default=20)
    p.add_argument("--setup-timeout", type=float, default=20)
    p.add_argument("--teardown-timeout", type=float, default=15)
    p.add_argument("--settle", type=float, default=0.5,
                   help="seconds the final counts must stay unchanged")
    p.set_defaults(fn=cmd_calls)

    p = sub.add_parser("check-sdp")
    common(p)
    p.add_argument("--uac-log", required=True)
    p.add_argument("--uas-log", required=True)
    p.add_argument("--expect-origin", action="store_true",
                   help="o= must carry the relay address (Kamailio flag replace-origin)")
    p.add_argument("--expect-session-c", action="store_true",
                   help="a session-level c= must carry the relay address "
                        "(flag replace-session-connection)")
    p.set_defaults(fn=cmd_check_sdp)

    p = sub.add_parser("no-calls")
    p.add_argument("--ng", required=True)
    p.add_argument("--timeout", type=float, default=5)
    p.set_defaults(fn=cmd_no_calls)

    a = ap.parse_args()
    return a.fn(a)


if __name__ == "__main__":
    sys.exit(main())
