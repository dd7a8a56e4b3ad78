"""Starts a real xemsd on loopback for a test and talks to it over ng.

Every wait is bounded; only the process this fixture started is ever signalled.
"""
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from ngclient import NgClient  # noqa: E402

SO_RCVBUFFORCE = 33  # from linux/socket.h; Python does not export it
XEMSD = os.environ.get("XEMSD", "build/tools/xemsd")


def free_udp_port(host="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def port_range(size=1000):
    """A random media port range unlikely to collide with parallel tests."""
    base = random.randrange(20000, 60000 - size, 2)
    return base, base + size - 1


class Xemsd:
    def __init__(self, *extra, interfaces=("127.0.0.1",), ports=None):
        self.ng_port = free_udp_port()
        self.port_min, self.port_max = ports or port_range()
        self.tmp = tempfile.TemporaryDirectory(prefix="xemsd-test-")
        self.log_path = os.path.join(self.tmp.name, "xemsd.log")
        self.args = [XEMSD, "--foreground", f"--listen-ng=127.0.0.1:{self.ng_port}",
                     f"--port-min={self.port_min}", f"--port-max={self.port_max}",
                     "--num-threads=2", "--log-level=debug", *extra]
        for i in interfaces:
            self.args.append(f"--interface={i}")
        self.proc = None
        self.ng = NgClient(("127.0.0.1", self.ng_port), timeout=1.0, retries=2)

    def start(self, wait=True):
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        if wait:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"xemsd exited with {self.proc.returncode}:\n"
                                       + self.read_log())
                try:
                    if self.ng.request("ping").get("result") == "pong":
                        return self
                except TimeoutError:
                    pass
            raise RuntimeError("xemsd did not answer ping within 10 s:\n" + self.read_log())
        return self

    def read_log(self):
        try:
            with open(self.log_path) as f:
                return f.read()[-8000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.proc:
            self.log.close()
        self.ng.close()
        rc = self.proc.returncode if self.proc else None
        self.tmp.cleanup()
        return rc

    def request(self, command, **kw):
        return self.ng.request(command, **kw)


class Phone:
    """A UDP media endpoint on loopback."""

    def __init__(self, host="127.0.0.1"):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.rtp = socket.socket(fam, socket.SOCK_DGRAM)
        # An even port with the next one free for RTCP.
        for _ in range(200):
            self.rtp.bind((host, 0))
            port = self.rtp.getsockname()[1]
            if port % 2 == 0:
                try:
                    self.rtcp = socket.socket(fam, socket.SOCK_DGRAM)
                    self.rtcp.bind((host, port + 1))
                    break
                except OSError:
                    self.rtcp.close()
            self.rtp.close()
            self.rtp = socket.socket(fam, socket.SOCK_DGRAM)
        else:
            raise RuntimeError("no even port pair")
        self.host = host
        self.port = self.rtp.getsockname()[1]
        for s in (self.rtp, self.rtcp):
            try:  # root: past rmem_max, so bursts from the tests never overflow the phone
                s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)
            except OSError:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)

    def sdp(self, sess="1", version="1", codecs=(0, 8), extra="", direction=None, host=None):
        host = host or self.host
        fam = "IP6" if ":" in host else "IP4"
        lines = ["v=0", f"o=- {sess} {version} IN {fam} {host}", "s=-", f"c=IN {fam} {host}",
                 "t=0 0", f"m=audio {self.port} RTP/AVP {' '.join(map(str, codecs))}"]
        if direction:
            lines.append(f"a={direction}")
        if extra:
            lines.extend(extra.strip().split("\n"))
        return "\r\n".join(lines) + "\r\n"

    def close(self):
        self.rtp.close()
        self.rtcp.close()


def rtp_packet(seq, ssrc=0x11223344, pt=0, ts=None, payload=b"\xff" * 160, marker=False):
    ts = seq * 160 if ts is None else ts
    b1 = pt | (0x80 if marker else 0)
    return struct.pack("!BBHII", 0x80, b1, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + payload


def rtcp_rr(ssrc=0x11223344):
    return struct.pack("!BBHI", 0x80, 201, 1, ssrc)


def sdp_media_port(sdp, index=0):
    ports = [int(l.split()[1]) for l in sdp.split("\r\n") if l.startswith("m=")]
    return ports[index]


def sdp_connection(sdp):
    for l in sdp.split("\r\n"):
        if l.startswith("c="):
            return l.split()[2]
    return None


def recv_all(sock, expected, timeout=5.0):
    """Receives until `expected` datagrams arrived or `timeout` passed; returns [(data, addr)]."""
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < expected:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            out.append(sock.recvfrom(65535))
        except socket.timeout:
            break
    return out


def drain(sock, quiet=0.3):
    """Receives whatever arrives until `quiet` seconds pass without a datagram."""
    out = []
    while True:
        sock.settimeout(quiet)
        try:
            out.append(sock.recvfrom(65535))
        except socket.timeout:
            return out
