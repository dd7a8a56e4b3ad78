#!/usr/bin/python3
"""Decodes the ng protocol messages (cookie + bencode/JSON over UDP) in a pcap, stdlib only.

  ng_pcap_dump.py CAPTURE.pcap --port NGPORT [--json]

Prints each datagram to or from NGPORT in order: time, direction, cookie, and the decoded
dictionary (keys in wire order; SDP and other multi-line strings shown as text blocks).
With --json, one JSON object per line instead ({"t", "src", "dst", "cookie", "msg"}).
--skip list,query leaves out those requests and their replies (the interop driver's polling).
Handles classic pcap (LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, raw IPv4), IPv4 and IPv6.
"""
import argparse
import json
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from ngclient import bdecode  # noqa: E402


def udp_datagrams(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0]
    if magic in (0xA1B2C3D4, 0xA1B23C4D):
        e = "<"
    elif magic in (0xD4C3B2A1, 0x4D3CB2A1):
        e = ">"
    else:
        raise SystemExit(f"{path}: not a classic pcap file (pcapng is not supported)")
    nsec = magic in (0xA1B23C4D, 0x4D3CB2A1)
    linktype = struct.unpack(e + "I", data[20:24])[0] & 0x0FFFFFFF
    off = 24
    while off + 16 <= len(data):
        sec, frac, caplen, _ = struct.unpack(e + "IIII", data[off:off + 16])
        frame = data[off + 16:off + 16 + caplen]
        off += 16 + caplen
        t = sec + frac / (1e9 if nsec else 1e6)
        if linktype == 1:        # Ethernet
            etype, l3 = struct.unpack("!H", frame[12:14])[0], frame[14:]
        elif linktype == 113:    # Linux cooked
            etype, l3 = struct.unpack("!H", frame[14:16])[0], frame[16:]
        elif linktype in (101, 12, 228):  # raw IP
            etype = 0x86DD if frame[0] >> 4 == 6 else 0x0800
            l3 = frame
        else:
            continue
        if etype == 0x0800 and l3[9] == 17:
            ihl = (l3[0] & 0x0F) * 4
            src, dst = ".".join(map(str, l3[12:16])), ".".join(map(str, l3[16:20]))
            udp = l3[ihl:]
        elif etype == 0x86DD and l3[6] == 17:
            import ipaddress
            src = str(ipaddress.IPv6Address(l3[8:24]))
            dst = str(ipaddress.IPv6Address(l3[24:40]))
            udp = l3[40:]
        else:
            continue
        sport, dport, ulen = struct.unpack("!HHH", udp[:6])
        yield t, (src, sport), (dst, dport), udp[8:ulen]


def decode(payload):
    cookie, _, body = payload.partition(b" ")
    try:
        if body[:1] == b"d":
            msg = bdecode(body)
        elif body[:1] == b"{":
            msg = json.loads(body)
        else:
            msg = body.decode(errors="replace")
    except ValueError as ex:
        msg = f"<undecodable: {ex}> {body[:200]!r}"
    return cookie.decode(errors="replace"), msg


def pretty(v, indent=2):
    pad = " " * indent
    if isinstance(v, dict):
        lines = []
        for k, x in v.items():
            if isinstance(x, str) and "\n" in x:
                lines.append(f"{pad}{k}: |")
                lines += [f"{pad}    {ln}" for ln in x.replace("\r\n", "\n").rstrip("\n").split("\n")]
            elif isinstance(x, list) and all(not isinstance(y, (dict, list)) for y in x):
                lines.append(f"{pad}{k}: {json.dumps(x)}")
            elif isinstance(x, (dict, list)) and x:
                lines.append(f"{pad}{k}:")
                lines.append(pretty(x, indent + 4))
            else:
                lines.append(f"{pad}{k}: {json.dumps(x)}")
        return "\n".join(lines)
    if isinstance(v, list):
        if all(not isinstance(x, (dict, list)) for x in v):
            return pad + json.dumps(v)
        return "\n".join(f"{pad}-\n{pretty(x, indent + 4)}" for x in v)
    return pad + json.dumps(v)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pcap")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--skip", default="",
                    help="comma-separated commands to leave out, with their replies "
                         "(e.g. list,query: the test driver's polling)")
    a = ap.parse_args()
    skip = {c for c in a.skip.split(",") if c}
    skipped_cookies = set()
    t0 = None
    for t, src, dst, payload in udp_datagrams(a.pcap):
        if a.port not in (src[1], dst[1]):
            continue
        t0 = t if t0 is None else t0
        cookie, msg = decode(payload)
        key = (cookie, src if dst[1] == a.port else dst)
        if dst[1] == a.port and isinstance(msg, dict) and msg.get("command") in skip:
            skipped_cookies.add(key)
            continue
        if dst[1] != a.port and key in skipped_cookies:
            continue
        if a.json:
            print(json.dumps({"t": round(t, 6), "src": f"{src[0]}:{src[1]}",
                              "dst": f"{dst[0]}:{dst[1]}", "cookie": cookie, "msg": msg}))
            continue
        arrow = "->relay" if dst[1] == a.port else "<-relay"
        what = msg.get("command") if isinstance(msg, dict) else None
        what = what or (msg.get("result") if isinstance(msg, dict) else "")
        print(f"--- +{t - t0:.3f}s {src[0]}:{src[1]} {arrow} {dst[0]}:{dst[1]} "
              f"cookie={cookie!r} [{what}] ({len(payload)} bytes)")
        print(pretty(msg) if isinstance(msg, dict) else f"  {msg}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
