"""Minimal ng-protocol client (cookie + bencode over UDP) for tests and perf scripts.

Stdlib only. Works against xemsd and rtpengine alike.
"""
import itertools
import os
import socket


def bencode(v) -> bytes:
    if isinstance(v, bool):
        v = "yes" if v else "no"
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, (bytes, bytearray)):
        return b"%d:%s" % (len(v), bytes(v))
    if isinstance(v, (list, tuple)):
        return b"l" + b"".join(bencode(x) for x in v) + b"e"
    if isinstance(v, dict):
        out = b"d"
        for k, x in v.items():  # insertion order, as Kamailio does (rtpengine does not sort)
            out += bencode(k) + bencode(x)
        return out + b"e"
    raise TypeError(f"cannot bencode {type(v)}")


def bdecode(data: bytes):
    """Decodes one value; strings come back as str (utf-8, surrogateescape)."""
    def dec(i):
        c = data[i:i + 1]
        if c == b"i":
            j = data.index(b"e", i)
            return int(data[i + 1:j]), j + 1
        if c == b"l":
            i += 1
            out = []
            while data[i:i + 1] != b"e":
                v, i = dec(i)
                out.append(v)
            return out, i + 1
        if c == b"d":
            i += 1
            out = {}
            while data[i:i + 1] != b"e":
                k, i = dec(i)
                v, i = dec(i)
                out[k] = v
            return out, i + 1
        j = data.index(b":", i)
        n = int(data[i:j])
        s = data[j + 1:j + 1 + n]
        if len(s) != n:
            raise ValueError("truncated string")
        return s.decode("utf-8", "surrogateescape"), j + 1 + n
    v, end = dec(0)
    if end != len(data):
        raise ValueError("trailing data")
    return v


class NgClient:
    def __init__(self, addr=("127.0.0.1", 2223), timeout=2.0, retries=3):
        self.addr = addr
        fam = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_DGRAM)
        self.sock.settimeout(timeout)
        self.retries = retries
        self._seq = itertools.count(1)
        self._prefix = os.urandom(4).hex()

    def close(self):
        self.sock.close()

    def raw(self, payload: bytes, cookie=None) -> bytes:
        """Sends cookie + ' ' + payload, returns the reply payload (cookie checked and stripped)."""
        cookie = cookie or f"{self._prefix}_{next(self._seq)}"
        msg = cookie.encode() + b" " + payload
        last = None
        for _ in range(self.retries):
            self.sock.sendto(msg, self.addr)
            try:
                while True:
                    data, _ = self.sock.recvfrom(65535)
                    c, _, rest = data.partition(b" ")
                    if c == cookie.encode():
                        return rest
            except socket.timeout as e:
                last = e
        raise TimeoutError(f"no ng reply from {self.addr} for {cookie}") from last

    def request(self, command: str, cookie=None, **kw) -> dict:
        d = {"command": command}
        for k, v in kw.items():
            d[k.replace("_", "-")] = v
        return bdecode(self.raw(bencode(d), cookie))

    def ping(self) -> bool:
        return self.request("ping").get("result") == "pong"
