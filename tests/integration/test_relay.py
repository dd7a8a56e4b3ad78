"""Integration tests: a real xemsd on loopback, real UDP phones, the ng protocol.

Run one case: XEMSD=build/tools/xemsd python3 -m unittest tests/integration/test_relay.py -k name
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from xemsd_fixture import (Phone, Xemsd, XEMSD, drain, recv_all, rtcp_rr, rtp_packet,  # noqa: E402
                           sdp_connection, sdp_media_port)
from ngclient import NgClient  # noqa: E402


class RelayTest(unittest.TestCase):
    extra_args = ()
    interfaces = ("127.0.0.1",)

    def setUp(self):
        self.x = Xemsd("--delete-delay=0", *self.extra_args, interfaces=self.interfaces).start()
        self.phones = []

    def tearDown(self):
        for p in self.phones:
            p.close()
        rc = self.x.stop()
        if rc not in (0, None):
            self.fail(f"xemsd exited with {rc}:\n{self.x.read_log()}")

    def phone(self, host="127.0.0.1"):
        p = Phone(host)
        self.phones.append(p)
        return p

    def call(self, call_id="call-1", a=None, b=None, offer_kw=None, answer_kw=None):
        """Sets up A -> B over ng; returns (a, b, port_for_a, port_for_b) where A sends to
        port_for_a (from the answer) and B sends to port_for_b (from the offer)."""
        a = a or self.phone()
        b = b or self.phone()
        r = self.x.request("offer", call_id=call_id, from_tag="tag-a", sdp=a.sdp(),
                           **(offer_kw or {}))
        self.assertEqual(r.get("result"), "ok", r)
        port_b = sdp_media_port(r["sdp"])
        r = self.x.request("answer", call_id=call_id, from_tag="tag-a", to_tag="tag-b",
                           sdp=b.sdp(), **(answer_kw or {}))
        self.assertEqual(r.get("result"), "ok", r)
        port_a = sdp_media_port(r["sdp"])
        return a, b, port_a, port_b

    def stream(self, q, tag, index=0, comp=0):
        return q["tags"][tag]["medias"][index]["streams"][comp]

    # ---- tests ----------------------------------------------------------------------------

    def test_rtp_and_rtcp_both_ways_exact(self):
        a, b, port_a, port_b = self.call()
        n = 300
        for seq in range(n):
            a.rtp.sendto(rtp_packet(seq, ssrc=0xA), ("127.0.0.1", port_a))
        got = recv_all(b.rtp, n)
        self.assertEqual(len(got), n)
        self.assertEqual([int.from_bytes(d[2:4], "big") for d, _ in got], list(range(n)))
        self.assertTrue(all(src == ("127.0.0.1", port_b) for _, src in got))
        for seq in range(n):
            b.rtp.sendto(rtp_packet(seq, ssrc=0xB, pt=8), ("127.0.0.1", port_b))
        got = recv_all(a.rtp, n)
        self.assertEqual(len(got), n)
        self.assertTrue(all(src == ("127.0.0.1", port_a) for _, src in got))
        a.rtcp.sendto(rtcp_rr(0xA), ("127.0.0.1", port_a + 1))
        got = recv_all(b.rtcp, 1)
        self.assertEqual(len(got), 1)
        self.assertEqual(got[0][1], ("127.0.0.1", port_b + 1))
        self.assertEqual(drain(b.rtp, 0.2), [])  # nothing extra anywhere
        q = self.x.request("query", call_id="call-1")
        sa = self.stream(q, "tag-a")
        sb = self.stream(q, "tag-b")
        self.assertEqual(sa["stats"]["packets"], n)
        self.assertEqual(sa["stats"]["bytes"], n * 172)
        self.assertEqual(sa["forwarded"], n)
        self.assertEqual(sb["stats"]["packets"], n)
        self.assertEqual(self.stream(q, "tag-a", comp=1)["stats"]["packets"], 1)
        self.assertEqual(sa["local port"], port_a)
        self.assertEqual(sb["local port"], port_b)
        self.assertEqual(sa["endpoint"], {"family": "IPv4", "address": "127.0.0.1",
                                          "port": a.port})
        self.assertEqual(q["totals"]["RTP"]["packets"], 2 * n)
        self.assertEqual(q["totals"]["RTCP"]["packets"], 1)
        ssrc = q["SSRC"][str(0xA)]
        self.assertEqual(ssrc["packets"], n)
        self.assertEqual(ssrc["cumulative loss"], 0)
        self.assertEqual(ssrc["last RTP seq"], n - 1)

    def test_strict_source_drops_third_party(self):
        a, b, port_a, port_b = self.call()
        attacker = self.phone()
        for seq in range(20):
            a.rtp.sendto(rtp_packet(seq, ssrc=0xA), ("127.0.0.1", port_a))
        self.assertEqual(len(recv_all(b.rtp, 20)), 20)
        for seq in range(50):
            attacker.rtp.sendto(rtp_packet(seq, ssrc=0xBAD), ("127.0.0.1", port_a))
        for seq in range(20, 40):
            a.rtp.sendto(rtp_packet(seq, ssrc=0xA), ("127.0.0.1", port_a))
        got = recv_all(b.rtp, 20) + drain(b.rtp, 0.3)
        self.assertEqual(len(got), 20)
        self.assertTrue(all(int.from_bytes(d[8:12], "big") == 0xA for d, _ in got))
        self.assertEqual(drain(attacker.rtp, 0.2), [])  # and nothing leaks back (no RTP bleed)
        q = self.x.request("query", call_id="call-1")
        sa = self.stream(q, "tag-a")
        self.assertEqual(sa["dropped foreign source"], 50)
        self.assertEqual(sa["stats"]["packets"], 40)
        st = self.x.request("statistics")["statistics"]
        self.assertEqual(st["totalstatistics"]["droppedforeignsource"], 50)

    def test_rtp_bleed_probe_gets_nothing_back(self):
        """An attacker probing a port before the peer ever sent must not get media back, and
        must not take the stream over from the SDP-advertised peer (heuristic learning)."""
        a, b, port_a, port_b = self.call(offer_kw={"endpoint-learning": "heuristic"},
                                         answer_kw={"endpoint-learning": "heuristic"})
        attacker = self.phone()
        for seq in range(10):
            attacker.rtp.sendto(rtp_packet(seq, ssrc=0xBAD), ("127.0.0.1", port_b))
        drain(a.rtp, 0.3)
        for seq in range(10):
            b.rtp.sendto(rtp_packet(seq, ssrc=0xB), ("127.0.0.1", port_b))
        drain(a.rtp, 0.3)
        for seq in range(30):
            a.rtp.sendto(rtp_packet(seq, ssrc=0xA), ("127.0.0.1", port_a))
        self.assertEqual(len(recv_all(b.rtp, 30)), 30)
        self.assertEqual(drain(attacker.rtp, 0.3), [])

    def test_hold_and_unhold(self):
        a, b, port_a, port_b = self.call()
        hold = a.sdp(version="2", direction="sendonly").replace(
            f"c=IN IP4 {a.host}", "c=IN IP4 0.0.0.0")
        r = self.x.request("offer", call_id="call-1", from_tag="tag-a", to_tag="tag-b", sdp=hold)
        self.assertEqual(r["result"], "ok", r)
        self.assertIn("c=IN IP4 0.0.0.0\r\n", r["sdp"])
        self.assertIn("a=sendonly\r\n", r["sdp"])
        self.assertEqual(sdp_media_port(r["sdp"]), port_b)  # same ports on re-INVITE
        r = self.x.request("answer", call_id="call-1", from_tag="tag-a", to_tag="tag-b",
                           sdp=b.sdp(version="2", direction="recvonly"))
        self.assertEqual(sdp_media_port(r["sdp"]), port_a)
        self.assertIn("a=recvonly\r\n", r["sdp"])
        # Music on hold from A still reaches B.
        for seq in range(10):
            a.rtp.sendto(rtp_packet(seq), ("127.0.0.1", port_a))
        self.assertEqual(len(recv_all(b.rtp, 10)), 10)
        unhold = a.sdp(version="3")
        r = self.x.request("offer", call_id="call-1", from_tag="tag-a", to_tag="tag-b",
                           sdp=unhold)
        self.assertIn("a=sendrecv\r\n", r["sdp"])
        self.x.request("answer", call_id="call-1", from_tag="tag-a", to_tag="tag-b",
                       sdp=b.sdp(version="3"))
        for seq in range(10, 20):
            b.rtp.sendto(rtp_packet(seq), ("127.0.0.1", port_b))
        self.assertEqual(len(recv_all(a.rtp, 10)), 10)

    def test_delete_frees_ports(self):
        a, b, port_a, port_b = self.call()
        r = self.x.request("delete", call_id="call-1", from_tag="tag-a")
        self.assertEqual(r["result"], "ok")
        self.assertIn("tags", r)  # stats of the deleted call
        self.assertEqual(self.x.request("list")["calls"], [])
        # The sockets close asynchronously in the worker: bounded wait until we can bind them.
        for port in (port_a, port_a + 1, port_b, port_b + 1):
            deadline = time.monotonic() + 5
            while True:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                try:
                    s.bind(("127.0.0.1", port))
                    s.close()
                    break
                except OSError:
                    s.close()
                    if time.monotonic() > deadline:
                        self.fail(f"port {port} still in use after delete")
                    time.sleep(0.05)
        r = self.x.request("delete", call_id="call-1", from_tag="tag-a")
        self.assertEqual(r, {"result": "ok",
                             "warning": "Call-ID not found or tags didn't match"})
        r = self.x.request("delete", call_id="call-1", from_tag="tag-a", flags=["fatal"])
        self.assertEqual(r["result"], "error")

    def test_delete_delay_keeps_call_briefly(self):
        self.call()
        r = self.x.request("delete", call_id="call-1", from_tag="tag-a", delete_delay=2)
        self.assertEqual(r["result"], "ok")
        self.assertEqual(self.x.request("list")["calls"], ["call-1"])
        deadline = time.monotonic() + 6
        while self.x.request("list")["calls"] and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertEqual(self.x.request("list")["calls"], [])

    def test_retransmitted_offer_gets_the_same_reply(self):
        a = self.phone()
        from ngclient import bencode  # noqa: E402
        msg = bencode({"command": "offer", "call-id": "c-rtx", "from-tag": "x",
                       "sdp": a.sdp()})
        r1 = self.x.ng.raw(msg, cookie="rtx-cookie")
        r2 = self.x.ng.raw(msg, cookie="rtx-cookie")
        self.assertEqual(r1, r2)
        q = self.x.request("query", call_id="c-rtx")
        self.assertEqual(len(q["tags"]), 2)  # processed once: one offerer, one untagged
        st = self.x.request("statistics")["statistics"]
        self.assertEqual(st["controlstatistics"]["offer"]["count"], 1)
        self.assertEqual(st["controlstatistics"]["cachedreplies"], 1)

    def test_json_request_gets_json_reply(self):
        a = self.phone()
        reply = self.x.ng.raw(json.dumps({"command": "offer", "call-id": "cj", "from-tag": "x",
                                          "sdp": a.sdp()}).encode())
        d = json.loads(reply)
        self.assertEqual(d["result"], "ok")
        self.assertIn("m=audio ", d["sdp"])
        self.assertEqual(self.x.ng.raw(b'{"command":"ping"}'), b'{"result":"pong"}')

    def test_bad_input_never_hurts_other_calls(self):
        a, b, port_a, port_b = self.call()
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        junk = [b"", b"nocookie", b" leading-space", b"c1 xyz", b"c2 d7:command", b"c3 de",
                b"c4 d7:command5:bogus", b"c5 l4:pinge", b"c6 {\"command\":", b"c7 i12e",
                b"c8 d3:sdpi1ee", b"c9 d7:command5:offer7:call-id1:x8:from-tag1:y3:sdp3:xyze",
                b"c10 d7:command6:answer7:call-id6:call-18:from-tag5:tag-a6:to-tag5:tag-b"
                b"3:sdp7:garbagee",
                b"c11 " + b"l" * 60000, b"c12 d7:command5:query7:call-idi5ee",
                bytes(range(256)) * 20]
        for j in junk:
            s.sendto(j, ("127.0.0.1", self.x.ng_port))
        s.close()
        self.assertTrue(self.x.ng.ping())
        r = self.x.request("offer", call_id="c-bad", from_tag="x", sdp="v=0\r\nm=audio\r\n")
        self.assertEqual(r, {"result": "error", "error-reason": "Failed to parse SDP"})
        r = self.x.request("bogus")
        self.assertEqual(r["error-reason"], "Unrecognized command")
        r = self.x.request("answer", call_id="nope", from_tag="x", to_tag="y", sdp=a.sdp())
        self.assertEqual(r["error-reason"], "Unknown call-id")
        # The call set up before is intact and still relays.
        for seq in range(5):
            a.rtp.sendto(rtp_packet(seq), ("127.0.0.1", port_a))
        self.assertEqual(len(recv_all(b.rtp, 5)), 5)
        st = self.x.request("statistics")["statistics"]
        self.assertGreaterEqual(st["controlstatistics"]["invalid"], 5)
        self.assertGreaterEqual(st["totalstatistics"]["sdpparseerrors"], 1)
        # Garbage on a media port is relayed as rtpengine does, but counted as malformed.
        a.rtp.sendto(b"\x00\x01", ("127.0.0.1", port_a))
        self.assertEqual(len(recv_all(b.rtp, 1)), 1)
        q = self.x.request("query", call_id="call-1")
        self.assertEqual(self.stream(q, "tag-a")["malformed"], 1)

    def test_rtcp_mux_demux(self):
        """A muxes RTCP on its RTP port, B does not: xemsd demuxes between them."""
        a, b = self.phone(), self.phone()
        r = self.x.request("offer", call_id="cm", from_tag="tag-a",
                           sdp=a.sdp(extra=f"a=rtcp-mux\na=rtcp:{a.port}"))
        self.assertIn("a=rtcp-mux", r["sdp"])
        port_b = sdp_media_port(r["sdp"])
        r = self.x.request("answer", call_id="cm", from_tag="tag-a", to_tag="tag-b",
                           sdp=b.sdp(), rtcp_mux=["demux"])
        self.assertIn("a=rtcp-mux", r["sdp"])
        port_a = sdp_media_port(r["sdp"])
        self.assertIn(f"a=rtcp:{port_a}\r\n", r["sdp"])
        a.rtp.sendto(rtp_packet(1), ("127.0.0.1", port_a))
        a.rtp.sendto(rtcp_rr(0xA), ("127.0.0.1", port_a))
        self.assertEqual(len(recv_all(b.rtp, 1)), 1)
        got = recv_all(b.rtcp, 1)
        self.assertEqual(len(got), 1)
        self.assertEqual(got[0][1], ("127.0.0.1", port_b + 1))
        b.rtcp.sendto(rtcp_rr(0xB), ("127.0.0.1", port_b + 1))
        got = recv_all(a.rtp, 2)  # the RTCP arrives on A's RTP port (muxed)
        self.assertTrue(any(d[1] == 201 for d, _ in got), got)

    def test_sixty_calls_in_parallel(self):
        calls = []
        for i in range(60):
            calls.append(self.call(call_id=f"par-{i}"))
        for seq in range(5):
            for a, b, port_a, port_b in calls:
                a.rtp.sendto(rtp_packet(seq), ("127.0.0.1", port_a))
        for a, b, port_a, port_b in calls:
            self.assertEqual(len(recv_all(b.rtp, 5)), 5)
        self.assertEqual(len(self.x.request("list", limit=1000)["calls"]), 60)
        st = self.x.request("statistics")["statistics"]
        self.assertEqual(st["currentstatistics"]["sessionsown"], 60)


class XemsctlTest(unittest.TestCase):
    def test_ping_list_query_statistics_terminate(self):
        xemsctl = os.environ.get("XEMSCTL", "build/tools/xemsctl")
        x = Xemsd("--delete-delay=0").start()
        try:
            a, b = Phone(), Phone()
            x.request("offer", call_id="ctl-1", from_tag="tag-a", sdp=a.sdp())
            r = x.request("answer", call_id="ctl-1", from_tag="tag-a", to_tag="tag-b",
                          sdp=b.sdp())
            port_a = sdp_media_port(r["sdp"])
            for seq in range(7):
                a.rtp.sendto(rtp_packet(seq), ("127.0.0.1", port_a))
            self.assertEqual(len(recv_all(b.rtp, 7)), 7)

            def ctl(*args):
                return subprocess.run([xemsctl, "-n", f"127.0.0.1:{x.ng_port}", *args],
                                      capture_output=True, text=True, timeout=20)
            r = ctl("ping")
            self.assertEqual((r.returncode, r.stdout), (0, "pong\n"))
            self.assertEqual(ctl("list").stdout, "ctl-1\n")
            r = ctl("query", "ctl-1")
            self.assertEqual(r.returncode, 0, r.stderr)
            row = [l for l in r.stdout.splitlines() if l.startswith("tag-a") and " RTP " in l]
            self.assertEqual(len(row), 1, r.stdout)
            self.assertIn(f"127.0.0.1:{port_a}", row[0])
            self.assertEqual(row[0].split()[6], "7")  # packets
            q = json.loads(ctl("--json", "query", "ctl-1").stdout)
            self.assertEqual(q["result"], "ok")
            self.assertEqual(q["totals"]["RTP"]["packets"], 7)
            self.assertIn("managedsessions", ctl("statistics").stdout)
            r = ctl("terminate", "ctl-1")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(ctl("list").stdout, "")
            r = ctl("query", "ctl-1")
            self.assertEqual(r.returncode, 1)
            self.assertIn("Unknown call-id", r.stderr)
            r = ctl("terminate", "ctl-1")
            self.assertEqual(r.returncode, 1)
            r = subprocess.run([xemsctl, "-n", "127.0.0.1:9", "--timeout", "300", "ping"],
                               capture_output=True, text=True, timeout=20)
            self.assertEqual(r.returncode, 1)
            self.assertIn("no reply", r.stderr)
            a.close()
            b.close()
        finally:
            self.assertEqual(x.stop(), 0)


class TimeoutTest(unittest.TestCase):
    def test_media_timeout_ends_the_call_and_frees_ports(self):
        x = Xemsd("--timeout=2", "--delete-delay=0").start()
        try:
            a, b = Phone(), Phone()
            x.request("offer", call_id="t1", from_tag="a", sdp=a.sdp())
            x.request("answer", call_id="t1", from_tag="a", to_tag="b", sdp=b.sdp())
            self.assertEqual(x.request("list")["calls"], ["t1"])
            deadline = time.monotonic() + 8
            while x.request("list")["calls"] and time.monotonic() < deadline:
                time.sleep(0.2)
            self.assertEqual(x.request("list")["calls"], [])
            st = x.request("statistics")["statistics"]
            self.assertEqual(st["totalstatistics"]["timeoutsessions"], 1)
            self.assertEqual(st["currentstatistics"]["portsinuse"], 0)
            a.close()
            b.close()
        finally:
            self.assertEqual(x.stop(), 0)

    def test_ran_out_of_ports(self):
        x = Xemsd(ports=(46000, 46007)).start()  # four pairs: two single-media calls
        try:
            a = Phone()
            for i in range(2):
                r = x.request("offer", call_id=f"p{i}", from_tag="a", sdp=a.sdp())
                self.assertEqual(r["result"], "ok", r)
            r = x.request("offer", call_id="p2", from_tag="a", sdp=a.sdp())
            self.assertEqual(r, {"result": "error", "error-reason": "Ran out of ports"})
            self.assertEqual(sorted(x.request("list")["calls"]), ["p0", "p1"])
            a.close()
        finally:
            self.assertEqual(x.stop(), 0)


class DaemonTest(unittest.TestCase):
    def run_xemsd(self, *args):
        return subprocess.run([XEMSD, *args], capture_output=True, text=True, timeout=20,
                              stdin=subprocess.DEVNULL)

    def test_bad_config_exits_1_with_a_clear_error(self):
        r = self.run_xemsd("--interface=1.2.3", "--listen-ng=2223")
        self.assertEqual(r.returncode, 1)
        self.assertIn("not an IP address", r.stderr)
        r = self.run_xemsd("--config-file=/nonexistent/xemsd.conf")
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot read config file", r.stderr)
        r = self.run_xemsd("--port-min=9", "--interface=127.0.0.1", "--listen-ng=2223",
                           "--no-such-flag")
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown option '--no-such-flag'", r.stderr)

    def test_help_and_default_config(self):
        r = self.run_xemsd("--help")
        self.assertEqual(r.returncode, 0)
        for opt in ("--interface", "--listen-ng", "--port-min", "--port-max", "--timeout",
                    "--silent-timeout", "--final-timeout", "--delete-delay", "--num-threads",
                    "--foreground", "--pidfile", "--log-level", "--config-file"):
            self.assertIn(opt, r.stdout)
        conf = os.path.join(os.path.dirname(__file__), "..", "..", "etc", "xemsd.conf")
        # The flags given override the file's ng, ports and state dir (a `make run` may hold the
        # file's own state dir at the same time).
        state = tempfile.mkdtemp(prefix="xemsd-state-")
        x = Xemsd(f"--config-file={conf}", f"--state-dir={state}")
        x.start()
        self.assertTrue(x.ng.ping())
        self.assertEqual(x.stop(), 0)
        shutil.rmtree(state, ignore_errors=True)

    def test_kill9_restart_takes_the_calls_up_again(self):
        """Userspace only (loopback): with --state-dir a killed xemsd's successor restores its
        calls from the journal, binds the same ports, relays on and answers query/delete."""
        state = tempfile.mkdtemp(prefix="xemsd-state-")
        self.addCleanup(shutil.rmtree, state, True)
        x = Xemsd(f"--state-dir={state}", "--delete-delay=0")
        x.start()
        a, b = Phone(), Phone()
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        r = x.request("offer", call_id="k9", from_tag="a", sdp=a.sdp())
        port_b = sdp_media_port(r["sdp"])
        r = x.request("answer", call_id="k9", from_tag="a", to_tag="b", sdp=b.sdp())
        port_a = sdp_media_port(r["sdp"])
        c = Phone()
        self.addCleanup(c.close)
        x.request("offer", call_id="gone", from_tag="a", sdp=c.sdp())
        x.request("delete", call_id="gone", from_tag="a")
        for seq in range(20):
            a.rtp.sendto(rtp_packet(seq, ssrc=0xA), ("127.0.0.1", port_a))
        self.assertEqual(len(recv_all(b.rtp, 20)), 20)
        x.proc.kill()
        x.proc.wait(timeout=10)
        x.log.close()

        y = Xemsd(f"--state-dir={state}", "--delete-delay=0")
        y.args = list(x.args)  # same ng port, port range and state dir
        y.ng_port = x.ng_port
        y.ng.close()
        y.ng = NgClient(("127.0.0.1", x.ng_port), timeout=1.0, retries=2)
        y.start()
        try:
            self.assertEqual(y.request("list")["calls"], ["k9"])
            q = y.request("query", call_id="k9")
            self.assertEqual(q["result"], "ok", q)
            self.assertEqual(q["tags"]["a"]["medias"][0]["streams"][0]["local port"], port_a)
            for seq in range(20, 50):
                a.rtp.sendto(rtp_packet(seq, ssrc=0xA), ("127.0.0.1", port_a))
            got = recv_all(b.rtp, 30)
            self.assertEqual([int.from_bytes(d[2:4], "big") for d, _ in got], list(range(20, 50)))
            self.assertTrue(all(src == ("127.0.0.1", port_b) for _, src in got))
            for seq in range(10):
                b.rtp.sendto(rtp_packet(seq, ssrc=0xB), ("127.0.0.1", port_b))
            self.assertEqual(len(recv_all(a.rtp, 10)), 10)
            self.assertEqual(y.request("delete", call_id="k9", from_tag="a")["result"], "ok")
            self.assertEqual(y.request("list")["calls"], [])
        finally:
            self.assertEqual(y.stop(), 0)
        x.tmp.cleanup()

    def test_sighup_reloads_and_sigterm_stops(self):
        x = Xemsd("--timeout=60")
        conf = os.path.join(x.tmp.name, "x.conf")
        with open(conf, "w") as f:
            f.write("[xemsd]\ntimeout = 1\ndelete-delay = 0\n")
        x.args.append(f"--config-file={conf}")
        x.args.remove("--timeout=60")
        with open(conf, "w") as f:
            f.write("[xemsd]\ntimeout = 600\ndelete-delay = 0\n")
        x.start()
        try:
            a, b = Phone(), Phone()
            x.request("offer", call_id="h1", from_tag="a", sdp=a.sdp())
            x.request("answer", call_id="h1", from_tag="a", to_tag="b", sdp=b.sdp())
            with open(conf, "w") as f:
                f.write("[xemsd]\ntimeout = 1\ndelete-delay = 0\n")
            x.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 8
            while x.request("list")["calls"] and time.monotonic() < deadline:
                time.sleep(0.2)
            self.assertEqual(x.request("list")["calls"], [])  # the new timeout applied
            with open(conf, "w") as f:
                f.write("[xemsd]\ntimeout = banana\n")
            x.proc.send_signal(signal.SIGHUP)  # a bad reload keeps running on the old config
            deadline = time.monotonic() + 10
            while ("SIGHUP: keeping the running configuration" not in x.read_log()
                   and time.monotonic() < deadline):
                time.sleep(0.05)
            self.assertIn("SIGHUP: keeping the running configuration", x.read_log())
            self.assertTrue(x.ng.ping())
            a.close()
            b.close()
        finally:
            self.assertEqual(x.stop(), 0)


if __name__ == "__main__":
    unittest.main()
