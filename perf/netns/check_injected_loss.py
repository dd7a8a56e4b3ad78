#!/usr/bin/python3
"""Checks that xems-perf counted exactly the loss injected on purpose (relay_compare.sh --smoke).

Inputs: the `xems-perf relay --per-stream --json` output of one trial, and `nft -j list table`
of the rules that dropped packets in the relay namespace. Every rule carries the comment
"stream N" and a counter. The sink's loss must equal the counters exactly, stream by stream:
  - a stream with rules lost exactly as many packets as its rules dropped, and more than none
    (otherwise the check could not fail);
  - every other stream lost nothing;
  - no duplicates, reordering or wrong-source packets anywhere; the trial's total loss is the
    sum of the counters.
Exit 0 when all hold, 1 otherwise, with one line per finding. Stdlib only."""
import argparse
import json
import re
import sys


def dropped_per_stream(nft):
    drops = {}
    for obj in nft.get("nftables", []):
        rule = obj.get("rule")
        if not rule:
            continue
        m = re.fullmatch(r"stream (\d+)", rule.get("comment", ""))
        if not m:
            continue
        packets = sum(e["counter"].get("packets", 0) for e in rule.get("expr", [])
                      if isinstance(e, dict) and "counter" in e)
        stream = int(m.group(1))
        drops[stream] = drops.get(stream, 0) + packets
    return drops


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--label", default="relay")
    ap.add_argument("relay_json")
    ap.add_argument("nft_json")
    a = ap.parse_args()
    tag = f"relay_compare: injected loss, {a.label}:"
    try:
        with open(a.relay_json) as f:
            relay = json.load(f)
        with open(a.nft_json) as f:
            nft = json.load(f)
        trial = relay["trials"][0]
    except (OSError, ValueError, KeyError, IndexError) as e:
        print(f"{tag} FAIL: no trial or no nftables counters ({e})")
        return 1
    drops = dropped_per_stream(nft)
    anomalies = {s["stream"]: s for s in trial.get("anomalies", [])}
    problems = []
    if not drops:
        problems.append("no rule with a 'stream N' comment and a counter")
    for stream, n in sorted(drops.items()):
        a_ = anomalies.get(stream)
        lost = (a_["sent"] - a_["received"]) if a_ else 0
        if n == 0:
            problems.append(f"stream {stream}: the rules dropped nothing (nothing to detect)")
        if lost != n:
            problems.append(f"stream {stream}: sink counted {lost} lost, nftables dropped {n}")
    for stream, s in sorted(anomalies.items()):
        if stream not in drops and s["sent"] != s["received"]:
            problems.append(f"stream {stream}: lost {s['sent'] - s['received']} without a rule")
        for key in ("duplicates", "reordered", "wrong_source"):
            if s.get(key):
                problems.append(f"stream {stream}: {s[key]} {key}")
    total = sum(drops.values())
    if trial.get("lost") != total:
        problems.append(f"trial lost {trial.get('lost')}, nftables dropped {total} in all")
    if trial.get("sent", 0) == 0:
        problems.append("nothing was sent")
    detail = ", ".join(f"stream {s}: {n}" for s, n in sorted(drops.items()))
    if problems:
        for p in problems:
            print(f"{tag} FAIL: {p}")
        return 1
    print(f"{tag} {trial.get('lost')} of {trial.get('sent')} packets lost, exactly those "
          f"nftables dropped ({detail}); other streams complete")
    return 0


if __name__ == "__main__":
    sys.exit(main())
