"""xemsd between two veth networks in namespaces: calls over ng with direction=[a, b], RTP both
ways, IPv4 and IPv6, exact counts, source addresses, a foreign source on the caller's LAN.

Each test builds its own namespaces and xemsd and removes them (bounded waits only).
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
sys.path.insert(0, os.path.join(here, "..", "lib"))
sys.path.insert(0, os.path.join(here, "..", "integration"))
from netns import SkipTest, Topology  # noqa: E402
from ngclient import NgClient  # noqa: E402
from xemsd_fixture import SO_RCVBUFFORCE, recv_all, drain, rtp_packet  # noqa: E402

XEMSD = os.environ.get("XEMSD", "build/tools/xemsd")


def sdp(host, port):
    fam = "IP6" if ":" in host else "IP4"
    return (f"v=0\r\no=- 1 1 IN {fam} {host}\r\ns=-\r\nc=IN {fam} {host}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0 8\r\n")


def media(sdp_text):
    addr = port = None
    for line in sdp_text.split("\r\n"):
        if line.startswith("c="):
            addr = line.split()[2]
        if line.startswith("m=audio"):
            port = int(line.split()[1])
    return addr, port


class NetnsRelayTest(unittest.TestCase):
    """The userspace path (--offload=off); test_netns_xdp.py runs the same cases through XDP."""
    OFFLOAD = "off"

    def xemsd_args(self):
        return [XEMSD, "--foreground", "--interface=a/192.0.2.1", "--interface=a/2001:db8:1::1",
                "--interface=b/198.51.100.1", "--interface=b/2001:db8:2::1",
                "--listen-ng=127.0.0.1:2223", "--port-min=30000", "--port-max=30999",
                "--num-threads=2", "--delete-delay=0", "--log-level=debug",
                f"--offload={self.OFFLOAD}"]

    def setUp(self):
        try:
            self.topo = Topology().__enter__()
        except SkipTest as e:
            self.skipTest(str(e))
        self.addCleanup(self.topo.__exit__, None, None, None)
        self.tmp = tempfile.TemporaryDirectory(prefix="xems-netns-")
        self.addCleanup(self.tmp.cleanup)
        self.log = open(os.path.join(self.tmp.name, "xemsd.log"), "w")
        self.socks = []
        self.prepare()
        self.start_xemsd()

    def prepare(self):
        """Hook for subclasses: runs before xemsd starts (undo things with addCleanup)."""

    def start_xemsd(self):
        self.proc = subprocess.Popen(
            self.topo.exec_args(self.topo.xems) + self.xemsd_args(),
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        with self.topo.inside(self.topo.xems):
            self.ng = NgClient(("127.0.0.1", 2223), timeout=1.0, retries=2)
        deadline = time.monotonic() + 10
        while True:
            try:
                if self.ng.ping():
                    break
            except TimeoutError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.fail("xemsd did not start:\n" + self.read_log())

    def read_log(self):
        with open(os.path.join(self.tmp.name, "xemsd.log")) as f:
            return f.read()[-6000:]

    def tearDown(self):
        if not hasattr(self, "proc"):
            return
        for s in self.socks:
            s.close()
        self.ng.close()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait(timeout=5)
        self.log.close()
        self.assertEqual(rc, 0, "xemsd did not stop cleanly")

    def phone(self, ns, host):
        s = self.topo.socket(ns, host)
        s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)
        self.socks.append(s)
        return s

    def call(self, call_id, caller_host, callee_host, extra=None):
        caller = self.phone(self.topo.caller, caller_host)
        callee = self.phone(self.topo.callee, callee_host)
        kw = extra or {}
        r = self.ng.request("offer", call_id=call_id, from_tag="a",
                            sdp=sdp(caller_host, caller.getsockname()[1]),
                            direction=["a", "b"], **kw)
        self.assertEqual(r["result"], "ok", r)
        to_callee = media(r["sdp"])
        r = self.ng.request("answer", call_id=call_id, from_tag="a", to_tag="b",
                            sdp=sdp(callee_host, callee.getsockname()[1]), **kw)
        self.assertEqual(r["result"], "ok", r)
        to_caller = media(r["sdp"])
        return caller, callee, to_caller, to_callee

    def exchange(self, caller, callee, to_caller, to_callee, n=500):
        for seq in range(n):
            caller.sendto(rtp_packet(seq, ssrc=0xCA11), to_caller)
        got = recv_all(callee, n)
        self.assertEqual(len(got), n)
        self.assertEqual({src[:2] for _, src in got}, {to_callee})
        self.assertEqual([int.from_bytes(d[2:4], "big") for d, _ in got], list(range(n)))
        for seq in range(n):
            callee.sendto(rtp_packet(seq, ssrc=0xCA1E), to_callee)
        got = recv_all(caller, n)
        self.assertEqual(len(got), n)
        self.assertEqual({src[:2] for _, src in got}, {to_caller})

    def test_ipv4_call_through_two_interfaces(self):
        caller, callee, to_caller, to_callee = self.call("v4", "192.0.2.2", "198.51.100.2")
        self.assertEqual(to_caller[0], "192.0.2.1")      # the caller is told the a-side address
        self.assertEqual(to_callee[0], "198.51.100.1")   # the callee the b-side one
        self.exchange(caller, callee, to_caller, to_callee)
        q = self.ng.request("query", call_id="v4")
        a = q["tags"]["a"]["medias"][0]["streams"][0]
        b = q["tags"]["b"]["medias"][0]["streams"][0]
        self.assertEqual((a["stats"]["packets"], b["stats"]["packets"]), (500, 500))
        self.assertEqual(a["endpoint"]["address"], "192.0.2.2")
        self.assertEqual(b["local address"], "198.51.100.1")

    def test_ipv6_call(self):
        caller, callee, to_caller, to_callee = self.call("v6", "2001:db8:1::2", "2001:db8:2::2")
        self.assertEqual(to_caller[0], "2001:db8:1::1")
        self.assertEqual(to_callee[0], "2001:db8:2::1")
        self.exchange(caller, callee, to_caller, to_callee, n=200)

    def test_ipv4_caller_to_ipv6_callee(self):
        caller = self.phone(self.topo.caller, "192.0.2.2")
        callee = self.phone(self.topo.callee, "2001:db8:2::2")
        r = self.ng.request("offer", call_id="mix", from_tag="a", direction=["a", "b"],
                            address_family="IP6", sdp=sdp("192.0.2.2", caller.getsockname()[1]))
        to_callee = media(r["sdp"])
        self.assertEqual(to_callee[0], "2001:db8:2::1")
        r = self.ng.request("answer", call_id="mix", from_tag="a", to_tag="b",
                            sdp=sdp("2001:db8:2::2", callee.getsockname()[1]))
        to_caller = media(r["sdp"])
        self.assertEqual(to_caller[0], "192.0.2.1")
        self.exchange(caller, callee, to_caller, to_callee, n=100)

    def test_foreign_source_on_the_callers_lan_is_dropped(self):
        caller, callee, to_caller, to_callee = self.call("fs", "192.0.2.2", "198.51.100.2")
        self.exchange(caller, callee, to_caller, to_callee, n=20)
        attacker = self.phone(self.topo.caller, "192.0.2.66")
        for seq in range(40):
            attacker.sendto(rtp_packet(seq, ssrc=0xBAD), to_caller)
        time.sleep(0.3)
        self.assertEqual(drain(callee, 0.3), [])
        self.assertEqual(drain(attacker, 0.2), [])
        q = self.ng.request("query", call_id="fs")
        self.assertEqual(q["tags"]["a"]["medias"][0]["streams"][0]["dropped foreign source"], 40)

    def test_no_kernel_forwarding_between_the_sides(self):
        """The callee is unreachable from the caller except through xemsd."""
        callee = self.phone(self.topo.callee, "198.51.100.2")
        caller = self.phone(self.topo.caller, "192.0.2.2")
        caller.sendto(b"direct", ("198.51.100.2", callee.getsockname()[1]))
        self.assertEqual(drain(callee, 0.5), [])


if __name__ == "__main__":
    unittest.main()
