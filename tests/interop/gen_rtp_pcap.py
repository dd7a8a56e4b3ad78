#!/usr/bin/python3
"""Writes a pcap of one G.711 RTP stream, for SIPp's play_pcap_audio.

Stdlib only. The file is classic libpcap (magic a1b2c3d4, microsecond timestamps, LINKTYPE_ETHERNET,
snaplen 65535, caplen == len for every record) holding Ethernet/IPv4/UDP/RTP frames:
one SSRC, sequential sequence numbers and timestamps (+samples per packet), marker bit on the first
packet only, payload = mu-law (PT 0) or A-law (PT 8) encoded sine tone. Packet timestamps are
exactly ptime apart: SIPp replays with those gaps.

How SIPp 3.6 replays it (src/prepare_pcap.c, src/send_packets.c): it keeps only the UDP header and
payload of each record (UDP length taken from the UDP header, so it must be right), and sends them
through a raw IPPROTO_UDP socket (root or CAP_NET_RAW needed) bound to its media IP; it rewrites
source port = local media port (-mp, or the rtp port) + (record's dst port - lowest dst port in the
file) and destination = remote c=/m= address and port from the SDP it received, same offset. We use
one fixed dst port, so every packet goes from the media port to the SDP port. The addresses and
ports written here are therefore irrelevant; SIPp recomputes the UDP checksum.

Usage: gen_rtp_pcap.py OUT.pcap [--packets N] [--ptime MS] [--codec PCMU|PCMA] [--ssrc HEX]
                                [--freq HZ] [--seq N] [--ts N]
Prints the number of RTP packets written; --count prints packets and RTP bytes of an existing file.
"""
import argparse
import math
import struct
import sys


def linear_to_ulaw(sample: int) -> int:
    """ITU-T G.711 mu-law encoder (16-bit linear in)."""
    BIAS, CLIP = 0x84, 32635
    sign = 0x80 if sample < 0 else 0
    if sample < 0:
        sample = -sample
    sample = min(sample, CLIP) + BIAS
    exponent = 7
    mask = 0x4000
    while exponent > 0 and not (sample & mask):
        exponent -= 1
        mask >>= 1
    mantissa = (sample >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa)) & 0xFF


def linear_to_alaw(sample: int) -> int:
    """ITU-T G.711 A-law encoder (16-bit linear in), as the classic Sun g711.c."""
    pcm = sample >> 3  # 13-bit
    if pcm >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        pcm = -pcm - 1
    seg_end = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)
    seg = next((i for i, e in enumerate(seg_end) if pcm <= e), 8)
    if seg >= 8:
        return 0x7F ^ mask
    aval = (seg << 4) | ((pcm >> (1 if seg < 2 else seg)) & 0x0F)
    return aval ^ mask


def ip_checksum(hdr: bytes) -> int:
    s = sum(struct.unpack("!%dH" % (len(hdr) // 2), hdr))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def udp_checksum(src: bytes, dst: bytes, udp: bytes) -> int:
    pseudo = src + dst + struct.pack("!BBH", 0, 17, len(udp))
    data = pseudo + udp + (b"\0" if len(udp) % 2 else b"")
    c = ip_checksum(data)
    return c or 0xFFFF


def build(packets: int, ptime_ms: int, codec: str, ssrc: int, freq: float, seq0: int, ts0: int,
          src=("192.0.2.1", 6000), dst=("192.0.2.2", 6002)):
    pt = {"PCMU": 0, "PCMA": 8}[codec]
    enc = linear_to_ulaw if codec == "PCMU" else linear_to_alaw
    samples = 8 * ptime_ms  # 8 kHz clock
    src_ip = bytes(int(x) for x in src[0].split("."))
    dst_ip = bytes(int(x) for x in dst[0].split("."))
    out = bytearray()
    # pcap global header: magic, v2.4, thiszone, sigfigs, snaplen, linktype 1 (Ethernet)
    out += struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    t0_us = 1_700_000_000 * 1_000_000
    n = 0
    for i in range(packets):
        payload = bytes(
            enc(int(8000 * math.sin(2 * math.pi * freq * (i * samples + k) / 8000.0)))
            for k in range(samples))
        rtp = struct.pack("!BBHII", 0x80, (0x80 if i == 0 else 0) | pt,
                          (seq0 + i) & 0xFFFF, (ts0 + i * samples) & 0xFFFFFFFF, ssrc) + payload
        udp_len = 8 + len(rtp)
        udp = struct.pack("!HHHH", src[1], dst[1], udp_len, 0) + rtp
        udp = udp[:6] + struct.pack("!H", udp_checksum(src_ip, dst_ip, udp)) + udp[8:]
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0xB8, 20 + udp_len, (i + 1) & 0xFFFF, 0x4000, 64, 17,
                         0, src_ip, dst_ip)
        ip = ip[:10] + struct.pack("!H", ip_checksum(ip)) + ip[12:]
        eth = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00"
        frame = eth + ip + udp
        ts_us = t0_us + i * ptime_ms * 1000
        out += struct.pack("<IIII", ts_us // 1_000_000, ts_us % 1_000_000, len(frame), len(frame))
        out += frame
        n += 1
    return bytes(out), n


def count_rtp(path: str):
    """(packets, bytes) of the UDP/RTP (version 2) records of an Ethernet pcap; bytes = UDP payload
    (RTP header + payload), which is what rtpengine's stats.bytes counts."""
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    off, n, nbytes = 24, 0, 0
    while off + 16 <= len(data):
        _, _, caplen, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        frame = data[off + 16:off + 16 + caplen]
        off += 16 + caplen
        if linktype == 1 and frame[12:14] == b"\x08\x00":
            ip = frame[14:]
            ihl = (ip[0] & 0x0F) * 4
            if ip[9] == 17 and len(ip) >= ihl + 8 + 12 and (ip[ihl + 8] >> 6) == 2:
                n += 1
                nbytes += struct.unpack("!H", ip[ihl + 4:ihl + 6])[0] - 8
    return n, nbytes


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--packets", type=int, default=250)
    ap.add_argument("--ptime", type=int, default=20)
    ap.add_argument("--codec", choices=("PCMU", "PCMA"), default="PCMU")
    ap.add_argument("--ssrc", type=lambda s: int(s, 16), default=0x5EED1234)
    ap.add_argument("--freq", type=float, default=1000.0)
    ap.add_argument("--seq", type=int, default=1000)
    ap.add_argument("--ts", type=int, default=160000)
    ap.add_argument("--count", action="store_true",
                    help="only print the RTP packet count and RTP byte count of OUT")
    a = ap.parse_args()
    if a.count:
        print("%d %d" % count_rtp(a.out))
        return 0
    data, n = build(a.packets, a.ptime, a.codec, a.ssrc, a.freq, a.seq, a.ts)
    with open(a.out, "wb") as f:
        f.write(data)
    print(n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
