"""xemsd with XDP on its veth devices (--offload=on): every userspace case again, then what only
the fast path has: forwarding from the first packet after the answer with zero packets in
userspace, kernel counters in query/statistics, kill -9 mid-call without losing a packet and a
restarted xemsd that still knows the call, and the automatic fallback when XDP is refused.

The pinned maps and links live on a bpffs the test mounts in its own temporary directory (xemsd
runs under `ip netns exec`, which gives it a fresh /sys, so /sys/fs/bpf would not outlive it).
"""
import os
import signal
import subprocess
import sys
import threading
import time
import unittest

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
from netns import run  # noqa: E402
from test_netns_relay import NetnsRelayTest, XEMSD, media, sdp  # noqa: E402,F401
from xemsd_fixture import drain, recv_all, rtp_packet  # noqa: E402

XDP_PASS_OBJ = os.environ.get("XDP_PASS_OBJ", "build/bpf/xdp_pass.bpf.o")


def stream(q, tag, rtcp=False):
    return q["tags"][tag]["medias"][0]["streams"][1 if rtcp else 0]


class NetnsXdpTest(NetnsRelayTest):
    OFFLOAD = "on"

    def prepare(self):
        self.bpffs = os.path.join(self.tmp.name, "bpffs")
        os.mkdir(self.bpffs)
        r = subprocess.run(["mount", "-t", "bpf", "bpf", self.bpffs], capture_output=True,
                           text=True, timeout=10)
        if r.returncode != 0:
            self.skipTest(f"cannot mount bpffs: {r.stderr.strip()}")
        self.addCleanup(subprocess.run, ["umount", self.bpffs], capture_output=True, timeout=10)
        self.state = os.path.join(self.tmp.name, "state")

    def xemsd_args(self):
        return super().xemsd_args() + [f"--bpf-pin-root={self.bpffs}/xems",
                                       f"--state-dir={self.state}"]

    def statistics(self):
        return self.ng.request("statistics")["statistics"]

    def test_forwarded_by_xdp_from_the_first_packet(self):
        caller, callee, to_caller, to_callee = self.call("x1", "192.0.2.2", "198.51.100.2")
        self.exchange(caller, callee, to_caller, to_callee, n=500)
        q = self.ng.request("query", call_id="x1")
        for tag in ("a", "b"):
            s = stream(q, tag)
            self.assertIn("kernelized", s["flags"], s)
            self.assertEqual(s["stats"]["packets"], 500)
            self.assertEqual(s["kernel stats"]["packets"], 500, (s, self.statistics()["datapath"]))  # not one in userspace
        st = self.statistics()
        self.assertEqual(st["datapath"]["mode"], "xdp")
        self.assertEqual(st["datapath"]["offloadfallback"], 0)
        self.assertGreaterEqual(st["datapath"]["counters"]["forwarded"], 1000)
        self.assertGreaterEqual(st["totalstatistics"]["kernelpackets"], 1000)

    def test_foreign_source_never_reaches_the_callee(self):
        caller, callee, to_caller, to_callee = self.call("x2", "192.0.2.2", "198.51.100.2")
        self.exchange(caller, callee, to_caller, to_callee, n=20)
        # Give the daemon a poll to confirm the advertised source (it locks the kernel entry).
        time.sleep(1.5)
        attacker = self.phone(self.topo.caller, "192.0.2.66")
        for seq in range(40):
            attacker.sendto(rtp_packet(seq, ssrc=0xBAD), to_caller)
        time.sleep(0.3)
        self.assertEqual(drain(callee, 0.3), [])
        time.sleep(1.2)  # the next poll reads the kernel's drop counter
        q = self.ng.request("query", call_id="x2")
        self.assertEqual(stream(q, "a")["dropped foreign source"], 40)
        self.assertGreaterEqual(self.statistics()["datapath"]["counters"]["drop_foreign_source"],
                                40)

    def test_kill9_mid_call_loses_no_packet(self):
        self.restart_mid_call(signal.SIGKILL, "k9")

    def test_sigquit_hands_the_calls_to_the_next_run(self):
        self.restart_mid_call(signal.SIGQUIT, "sq")

    def restart_mid_call(self, sig, call_id):
        caller, callee, to_caller, to_callee = self.call(call_id, "192.0.2.2", "198.51.100.2")
        self.exchange(caller, callee, to_caller, to_callee, n=10)
        total = 3000  # 3 s at 1000 pps each way; xemsd is gone for about 1 s of it
        sent = {"fwd": 0, "rev": 0}

        def send(sock, dest, key, ssrc):
            t0 = time.monotonic()
            for seq in range(total):
                delay = t0 + seq / 1000.0 - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                sock.sendto(rtp_packet(1000 + seq, ssrc=ssrc), dest)
                sent[key] += 1

        got, back = [], []
        threads = [
            threading.Thread(target=lambda: got.extend(recv_all(callee, total, 10.0))),
            threading.Thread(target=lambda: back.extend(recv_all(caller, total, 10.0))),
            threading.Thread(target=send, args=(caller, to_caller, "fwd", 0xCA11)),
            threading.Thread(target=send, args=(callee, to_callee, "rev", 0xCA1E)),
        ]
        for t in threads:
            t.start()
        time.sleep(0.8)
        self.proc.send_signal(sig)
        self.assertEqual(self.proc.wait(timeout=10), 0 if sig == signal.SIGQUIT else -sig)
        self.ng.close()
        time.sleep(0.5)
        self.start_xemsd()
        for t in threads:
            t.join(timeout=20)
        self.assertEqual(sent, {"fwd": total, "rev": total})
        for name, pkts in (("caller -> callee", got), ("callee -> caller", back)):
            seqs = [int.from_bytes(d[2:4], "big") for d, _ in pkts]
            self.assertEqual(len(pkts), total, f"{name}: lost {total - len(pkts)} of {total}")
            self.assertEqual(seqs, list(range(1000, 1000 + total)), name)
        self.assertEqual({src[:2] for _, src in back}, {to_caller})
        self.assertEqual({src[:2] for _, src in got}, {to_callee})
        # The restarted xemsd knows the call, with the kernel's counters ...
        q = self.ng.request("query", call_id=call_id)
        self.assertEqual(q["result"], "ok", q)
        self.assertGreaterEqual(stream(q, "a")["stats"]["packets"], total)
        self.assertIn("kernelized", stream(q, "a")["flags"])
        # ... still relays both ways ...
        self.exchange(caller, callee, to_caller, to_callee, n=50)
        # ... and ends it on delete: nothing is forwarded afterwards.
        r = self.ng.request("delete", call_id=call_id, from_tag="a")
        self.assertEqual(r["result"], "ok", r)
        self.assertEqual(self.ng.request("list")["calls"], [])
        for seq in range(20):
            caller.sendto(rtp_packet(seq, ssrc=0xCA11), to_caller)
        self.assertEqual(drain(callee, 0.5), [])


    def test_recreated_device_gets_xdp_again(self):
        """x1 disappears and comes back (a driver reload, a veth set up again): xemsd sees the
        link event, attaches XDP to the new device and calls are forwarded by XDP again."""
        t = self.topo
        run("ip", "-n", t.xems, "link", "del", "x1")  # takes e0 with it
        time.sleep(0.3)
        run("ip", "link", "add", "x1", "netns", t.xems, "type", "veth", "peer", "e0", "netns",
            t.callee)
        for ns, dev, v4, v6 in ((t.xems, "x1", "198.51.100.1/24", "2001:db8:2::1/64"),
                                (t.callee, "e0", "198.51.100.2/24", "2001:db8:2::2/64")):
            run("ip", "-n", ns, "addr", "add", v4, "dev", dev)
            run("ip", "-n", ns, "addr", "add", v6, "dev", dev, "nodad")
            run("ip", "-n", ns, "link", "set", dev, "up")
        run("ip", "-n", t.callee, "route", "add", "default", "via", "198.51.100.1")
        run("ip", "netns", "exec", t.callee, "ethtool", "-K", "e0", "gro", "on", "tx", "off",
            check=False)
        deadline = time.monotonic() + 5
        while "prog/xdp" not in run("ip", "-n", t.xems, "link", "show", "x1").stdout:
            self.assertLess(time.monotonic(), deadline, "no XDP on the new x1:\n" + self.read_log())
            time.sleep(0.1)
        caller, callee, to_caller, to_callee = self.call("re", "192.0.2.2", "198.51.100.2")
        self.exchange(caller, callee, to_caller, to_callee, n=100)
        q = self.ng.request("query", call_id="re")
        self.assertEqual(stream(q, "a")["kernel stats"]["packets"], 100)
        self.assertEqual(stream(q, "b")["kernel stats"]["packets"], 100)

    def test_second_daemon_on_the_same_pin_root_is_refused(self):
        args = [a for a in self.xemsd_args() if not a.startswith(("--listen-ng", "--state-dir"))]
        r = subprocess.run(self.topo.exec_args(self.topo.xems) + args +
                           ["--listen-ng=127.0.0.1:2224"],
                           capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("another xemsd uses", r.stdout + r.stderr)
        # The first one is untouched.
        caller, callee, to_caller, to_callee = self.call("two", "192.0.2.2", "198.51.100.2")
        self.exchange(caller, callee, to_caller, to_callee, n=50)


class NetnsXdpTimeoutTest(NetnsXdpTest):
    """Media that only XDP sees keeps a call alive; when it stops, the call times out."""

    def xemsd_args(self):
        return [a for a in super().xemsd_args() if a != "--delete-delay=0"] + [
            "--timeout=2", "--delete-delay=0"]

    def test_kernel_forwarded_media_keeps_the_call_alive(self):
        caller, callee, to_caller, to_callee = self.call("to", "192.0.2.2", "198.51.100.2")
        t_end = time.monotonic() + 4.0
        seq = 0
        while time.monotonic() < t_end:  # 4 s at 50 pps each way, twice the timeout
            caller.sendto(rtp_packet(seq, ssrc=0xCA11), to_caller)
            callee.sendto(rtp_packet(seq, ssrc=0xCA1E), to_callee)
            seq += 1
            time.sleep(0.02)
        q = self.ng.request("query", call_id="to")
        self.assertEqual(q["result"], "ok", q)
        self.assertEqual(stream(q, "a")["kernel stats"]["packets"], stream(q, "a")["stats"]["packets"])
        self.assertGreater(stream(q, "a")["kernel stats"]["packets"], 150)
        deadline = time.monotonic() + 6.0
        while time.monotonic() < deadline and self.ng.request("list")["calls"]:
            time.sleep(0.2)
        self.assertEqual(self.ng.request("list")["calls"], [])
        self.assertGreaterEqual(self.statistics()["totalstatistics"]["timeoutsessions"], 1)


# Only its own case: the inherited ones assume the default timeout.
for _name in [n for n in dir(NetnsXdpTest) if n.startswith("test_")]:
    setattr(NetnsXdpTimeoutTest, _name, None)


class NetnsXdpFallbackTest(NetnsRelayTest):
    """--offload=auto where XDP is refused: another program already owns x0 (attached through
    netlink, which a bpf_link attach cannot replace). xemsd warns once and relays in userspace."""
    OFFLOAD = "auto"

    def prepare(self):
        r = subprocess.run(self.topo.exec_args(self.topo.xems) +
                           ["ip", "link", "set", "dev", "x0", "xdpgeneric", "obj", XDP_PASS_OBJ,
                            "sec", "xdp"], capture_output=True, text=True, timeout=10)
        if r.returncode != 0:
            self.skipTest(f"cannot pre-attach {XDP_PASS_OBJ}: {r.stderr.strip()}")
        self.bpffs = os.path.join(self.tmp.name, "bpffs")
        os.mkdir(self.bpffs)
        subprocess.run(["mount", "-t", "bpf", "bpf", self.bpffs], check=True, timeout=10)
        self.addCleanup(subprocess.run, ["umount", self.bpffs], capture_output=True, timeout=10)

    def xemsd_args(self):
        return super().xemsd_args() + [f"--bpf-pin-root={self.bpffs}/xems"]

    def test_auto_falls_back_to_userspace_with_one_warning(self):
        caller, callee, to_caller, to_callee = self.call("fb", "192.0.2.2", "198.51.100.2")
        self.exchange(caller, callee, to_caller, to_callee, n=200)
        q = self.ng.request("query", call_id="fb")
        self.assertNotIn("kernelized", stream(q, "a")["flags"])
        self.assertEqual(stream(q, "a")["kernel stats"]["packets"], 0)
        st = self.ng.request("statistics")["statistics"]
        self.assertEqual(st["datapath"]["mode"], "userspace")
        self.assertEqual(st["datapath"]["offloadfallback"], 1)
        warnings = [line for line in self.read_log().splitlines() if "XDP offload unavailable" in line]
        self.assertEqual(len(warnings), 1, self.read_log())
        self.assertIn("x0", warnings[0])  # the device whose attach was refused

    def test_offload_on_fails_hard(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)
        self.ng.close()
        r = subprocess.run(self.topo.exec_args(self.topo.xems) +
                           [a if not a.startswith("--offload=") else "--offload=on"
                            for a in self.xemsd_args()],
                           capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--offload=on", r.stdout + r.stderr)
        self.start_xemsd()  # for tearDown


# The userspace cases of NetnsRelayTest run through XDP by inheritance; do not run them twice
# here under the base class's name.
del NetnsRelayTest

if __name__ == "__main__":
    unittest.main()
