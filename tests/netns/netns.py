"""Three network namespaces joined by veth pairs, made and removed by the test itself:

    [caller] c0 192.0.2.2/24  ==veth==  x0 192.0.2.1/24 [xems] x1 198.51.100.1/24  ==veth==  e0 198.51.100.2/24 [callee]

IPv6 too: 2001:db8:1::2 / ::1 on the caller side, 2001:db8:2::1 / ::2 on the callee side.
The xems namespace does not forward (ip_forward=0), so anything reaching the callee went through
xemsd. Sockets are opened inside a namespace with setns(2) (Python 3.11 has no os.setns), so one
test process holds phones on both sides and its ng client next to xemsd.
"""
import contextlib
import ctypes
import os
import socket
import subprocess
import uuid

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


class SkipTest(Exception):
    pass


def run(*cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=30)


class Topology:
    def __init__(self):
        if os.geteuid() != 0:
            raise SkipTest("needs root for network namespaces")
        if subprocess.run(["ip", "-V"], capture_output=True).returncode != 0:
            raise SkipTest("iproute2 missing")
        tag = uuid.uuid4().hex[:6]
        self.caller, self.xems, self.callee = (f"xt-{tag}-c", f"xt-{tag}-x", f"xt-{tag}-e")
        self.created = []

    def __enter__(self):
        try:
            for ns in (self.caller, self.xems, self.callee):
                run("ip", "netns", "add", ns)
                self.created.append(ns)
                run("ip", "-n", ns, "link", "set", "lo", "up")
            run("ip", "link", "add", "c0", "netns", self.caller, "type", "veth",
                "peer", "x0", "netns", self.xems)
            run("ip", "link", "add", "x1", "netns", self.xems, "type", "veth",
                "peer", "e0", "netns", self.callee)
            for ns, dev, v4, v6 in ((self.caller, "c0", "192.0.2.2/24", "2001:db8:1::2/64"),
                                    (self.xems, "x0", "192.0.2.1/24", "2001:db8:1::1/64"),
                                    (self.xems, "x1", "198.51.100.1/24", "2001:db8:2::1/64"),
                                    (self.callee, "e0", "198.51.100.2/24", "2001:db8:2::2/64")):
                run("ip", "-n", ns, "addr", "add", v4, "dev", dev)
                run("ip", "-n", ns, "addr", "add", v6, "dev", dev, "nodad")
                run("ip", "-n", ns, "link", "set", dev, "up")
            # The phones' ends get GRO, which gives a veth NAPI: only then does it take frames
            # that XDP on the xems side redirects into its peer (as any NIC does).
            # They also compute UDP checksums themselves, as a NIC does before the wire: a veth
            # would otherwise hand over a partial checksum, which XDP on the far side cannot
            # see as such (the receiver then drops the redirected frame).
            for ns, dev in ((self.caller, "c0"), (self.callee, "e0")):
                run("ip", "netns", "exec", ns, "ethtool", "-K", dev, "gro", "on", "tx", "off",
                    check=False)
            # A second caller-side address: the "attacker" on the same LAN.
            run("ip", "-n", self.caller, "addr", "add", "192.0.2.66/24", "dev", "c0")
            run("ip", "-n", self.caller, "route", "add", "default", "via", "192.0.2.1")
            run("ip", "-n", self.callee, "route", "add", "default", "via", "198.51.100.1")
            run("ip", "-n", self.caller, "-6", "route", "add", "default", "via", "2001:db8:1::1")
            run("ip", "-n", self.callee, "-6", "route", "add", "default", "via", "2001:db8:2::1")
            run("ip", "netns", "exec", self.xems, "sysctl", "-qw", "net.ipv4.ip_forward=0")
            run("ip", "netns", "exec", self.xems, "sysctl", "-qw",
                "net.ipv6.conf.all.forwarding=0")
        except subprocess.CalledProcessError as e:
            self.__exit__(None, None, None)
            raise SkipTest(f"cannot build the veth topology: {e.stderr.strip()}") from e
        return self

    def __exit__(self, *exc):
        for ns in reversed(self.created):
            run("ip", "netns", "del", ns, check=False)
        self.created = []

    @contextlib.contextmanager
    def inside(self, ns):
        """Runs the block with this thread in namespace `ns` (sockets made there stay there)."""
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
        try:
            if _libc.setns(target, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
            yield
        finally:
            _libc.setns(own, CLONE_NEWNET)
            os.close(own)
            os.close(target)

    def socket(self, ns, host, port=0, family=None):
        family = family or (socket.AF_INET6 if ":" in host else socket.AF_INET)
        with self.inside(ns):
            s = socket.socket(family, socket.SOCK_DGRAM)
            s.bind((host, port))
        return s

    def exec_args(self, ns):
        return ["ip", "netns", "exec", ns]
