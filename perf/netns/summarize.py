#!/usr/bin/python3
"""Combines the per-relay JSON files of relay_compare.sh into relay_compare.json and a markdown
table (relay_compare.md, also printed). With several repetitions (NAME-r1-*, NAME-r2-*, ...)
every figure is the median, shown with its min-max range. Stdlib only."""
import argparse
import datetime
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys

from check_injected_loss import dropped_per_stream

RELAYS = ("rtpengine", "xemsd", "xemsd-xdp", "kernel")
# Ratio columns (numerator, denominator), shown when both relays were measured or requested.
RATIOS = (("xemsd", "rtpengine"), ("xemsd-xdp", "rtpengine"), ("xemsd-xdp", "xemsd"),
          ("xemsd-xdp", "kernel"))
# Rows whose figure is the relay's CPU in the packet trials: "n/a" where nothing measured it
# (xemsd-xdp without its pinned NAPI thread: XDP then runs in the sending CPU's softirq).
PACKET_CPU_KEYS = ("ns_per_packet", "relay_cpu_util", "ns_per_packet_latency_bounded",
                   "relay_cpu_util_latency_bounded", "ns_per_packet_ref")


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def ng_figures(doc):
    if not doc:
        return None
    cmds = doc.get("commands", {})
    return {
        "ops_per_sec": doc.get("ops_per_sec"),
        "completed": doc.get("completed"),
        "errors": doc.get("errors"),
        "offer_p50_us": cmds.get("offer", {}).get("p50_us"),
        "offer_p99_us": cmds.get("offer", {}).get("p99_us"),
        "answer_p99_us": cmds.get("answer", {}).get("p99_us"),
        "delete_p99_us": cmds.get("delete", {}).get("p99_us"),
        "server_cpu_us_per_cycle": doc.get("server_cpu_us_per_cycle"),
        "server_cpu_util": doc.get("server_cpu_util"),
    }


def relay_figures(doc):
    if not doc:
        return None
    res = doc.get("result") or {}
    bounded = doc.get("result_latency_bounded") or {}
    trials = doc.get("trials", [])
    first = trials[0] if trials else {}
    others = [t.get("other_cpu_util") for t in trials if t.get("other_cpu_util") is not None]
    return {
        "max_pps": res.get("max_pps"),
        "streams_at_max": res.get("streams"),
        "latency_p99_us_at_max": res.get("latency_p99_us"),
        "ns_per_packet": res.get("ns_per_packet"),
        "relay_cpu_util": res.get("relay_cpu_util"),
        "generator_limited": res.get("generator_limited"),
        "max_pps_latency_bounded": bounded.get("max_pps"),
        "ns_per_packet_latency_bounded": bounded.get("ns_per_packet"),
        "relay_cpu_util_latency_bounded": bounded.get("relay_cpu_util"),
        "generator_limited_latency_bounded": bounded.get("generator_limited"),
        "ref_pps": first.get("offered_pps"),
        "ns_per_packet_ref": first.get("ns_per_packet"),
        "trials": len(trials),
        "stop_reason": res.get("stop_reason"),
        "reordered_total": sum(t.get("reordered", 0) for t in trials),
        "duplicates_total": sum(t.get("duplicates", 0) for t in trials),
        "wrong_source_total": sum(t.get("wrong_source", 0) for t in trials),
        "other_cpu_max": max(others) if others else None,
        "other_cpu_mean": sum(others) / len(others) if others else None,
    }


def aggregate(reps):
    """Per key: median of the numbers, any() of booleans; plus min/max and the raw values."""
    reps = [r for r in reps if r]
    if not reps:
        return None
    out = {"repetitions": len(reps)}
    for key in reps[0]:
        vals = [r.get(key) for r in reps if r.get(key) is not None]
        if not vals:
            out[key] = None
        elif all(isinstance(v, bool) for v in vals):
            out[key] = any(vals)
        elif all(isinstance(v, (int, float)) for v in vals):
            out[key] = statistics.median(vals)
            if len(vals) > 1:
                out[key + "_range"] = [min(vals), max(vals)]
                out[key + "_all"] = vals
        else:
            out[key] = vals[0]
    return out


def injected_drops(nft):
    """Packets the smoke's nftables rules dropped on purpose (sum of their counters)."""
    if not nft:
        return None
    return sum(dropped_per_stream(nft).values())


def datapath_figures(doc):
    """From xemsctl --json statistics after the run: where the packets were forwarded."""
    if not doc:
        return None
    st = doc.get("statistics", doc)
    dp = st.get("datapath") or {}
    total = st.get("totalstatistics") or {}
    return {
        "mode": dp.get("mode"),
        "detail": dp.get("detail"),
        "xdp_forwarded": (dp.get("counters") or {}).get("forwarded"),
        "relayed_packets": total.get("relayedpackets"),
        "kernel_packets": total.get("kernelpackets"),
    }


def datapath_cell(entry):
    dp = get(entry, "datapath")
    if not dp or not dp.get("mode"):
        return "–"
    if dp["mode"] != "xdp":
        return dp["mode"]
    fwd, rel = dp.get("xdp_forwarded"), dp.get("relayed_packets")
    text = "xdp: {:,.0f}".format(fwd or 0)
    if rel:
        text += " of {:,.0f} ({:.0f} %)".format(rel, 100.0 * (fwd or 0) / rel)
    return text


def injected_cell(entry):
    i = get(entry, "injected_loss")
    if not i:
        return "–"
    return "{} / {} of {}".format(i.get("lost"), i.get("nft_dropped"), i.get("sent"))


def veth_cell(entry):
    v = get(entry, "veth_drops")
    if v is None:
        return "–"
    if not v:
        return "0"
    return ", ".join(f"{k} {n:,}" for k, n in sorted(v.items()))


def rep_files(out_dir, name, suffix):
    files = glob.glob(os.path.join(out_dir, f"{name}-r*-{suffix}.json"))
    return sorted(files, key=lambda f: int(re.search(r"-r(\d+)-", f).group(1)))


def ratio(a, b):
    if a is None or b is None or b == 0 or isinstance(a, bool) or isinstance(b, bool):
        return None
    return a / b


def get(e, *path):
    for p in path:
        if not isinstance(e, dict):
            return None
        e = e.get(p)
    return e


def cell(entry, path, spec):
    v = get(entry, *path)
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    text = spec.format(v)
    rng = get(entry, *path[:-1], path[-1] + "_range")
    if rng and rng[0] != rng[1]:
        text += " ({}–{})".format(spec.format(rng[0]), spec.format(rng[1]))
    return text


def plot_points(out_dir, name, mode):
    """(offered pps, delivered pps, loss %, p99 one-way ms) of every trial of relay NAME."""
    files = ([os.path.join(out_dir, f"{name}-relay.json")] if mode == "smoke"
             else rep_files(out_dir, name, "relay"))
    points = []
    for f in files:
        doc = load(f)
        for t in (doc or {}).get("trials", []):
            sent, offered = t.get("sent") or 0, t.get("offered_pps") or 0
            if sent and offered:
                delivered = offered * (t.get("received") or 0) / sent
                points.append((offered, delivered, t.get("loss_pct") or 0.0,
                               (t.get("latency_p99_us") or 0.0) / 1000))
    return sorted(points)


def plot(out_dir, cols, mode, loss_max, latency_max):
    """relay_compare.png with gnuplot: delivered vs offered rate, and loss vs offered rate, one
    line per relay. Returns the PNG's path, or None (and says why) without gnuplot or data."""
    series = [(n, plot_points(out_dir, n, mode)) for n in cols]
    series = [(n, p) for n, p in series if p]
    if not series:
        return None
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        print("summarize: gnuplot not installed (Debian gnuplot-nox): no plot", file=sys.stderr)
        return None
    dat = os.path.join(out_dir, "relay_compare-plot.dat")
    with open(dat, "w") as f:
        for name, pts in series:
            f.write(f"# {name}: offered_pps delivered_pps loss_pct p99_ms\n")
            for o, d, loss_pct, p99 in pts:
                f.write(f"{o:.0f} {d:.0f} {loss_pct:.6f} {p99:.3f}\n")
            f.write("\n\n")
    png = os.path.join(out_dir, "relay_compare.png")
    top = max(max(o, d) for _, pts in series for o, d, _, _ in pts) * 1.05
    floor = 1e-4  # loss 0 is drawn on the floor of the log scale
    colours = {"rtpengine": "#d62728", "xemsd": "#1f77b4", "xemsd-xdp": "#2ca02c",
               "kernel": "#7f7f7f"}

    def block(i, name, using):
        return (f"'{dat}' index {i} using {using} with linespoints lw 1.5 "
                f"lc rgb '{colours.get(name, '#9467bd')}' title '{name}'")
    delivered = ", ".join(block(i, n, "1:2") for i, (n, _) in enumerate(series))
    lost = ", ".join(block(i, n, f"1:($3 > {floor} ? $3 : {floor})")
                     for i, (n, _) in enumerate(series))
    p99 = ", ".join(block(i, n, "1:($4 > 0.01 ? $4 : 0.01)") for i, (n, _) in enumerate(series))
    script = f"""set terminal pngcairo size 1000,1300 font ',10'
set output '{png}'
set multiplot layout 3,1 title 'xems-perf: RTP through each relay (one point per trial)'
set grid
set key top left
set format x '%.0s%c'
set format y '%.0s%c'
set xrange [0:{top:.0f}]
set yrange [0:{top:.0f}]
set xlabel 'offered rate (packets/s)'
set ylabel 'delivered rate (packets/s)'
plot x with lines dashtype 2 lc 'gray' title 'delivered = offered', {delivered}
set logscale y
set format y '%g'
set yrange [{floor}:100]
set ylabel 'loss % (0 drawn at {floor})'
plot {loss_max} with lines dashtype 2 lc 'black' title 'threshold {loss_max} %', {lost}
set yrange [0.01:10000]
set format y '%g'
set ylabel 'p99 one-way latency (ms)'
plot {latency_max} with lines dashtype 2 lc 'black' title 'bound {latency_max} ms', {p99}
unset multiplot
"""
    try:
        r = subprocess.run([gnuplot], input=script, text=True, capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        print(f"summarize: gnuplot failed: {e}", file=sys.stderr)
        return None
    if r.returncode != 0 or not os.path.exists(png) or os.path.getsize(png) == 0:
        print(f"summarize: gnuplot failed: {r.stderr.strip()}", file=sys.stderr)
        return None
    return png


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=("full", "smoke"), default="full")
    ap.add_argument("--out", required=True)
    ap.add_argument("--meta", nargs="*", default=[])
    ap.add_argument("--status", nargs="*", default=[])
    a = ap.parse_args()

    meta = dict(kv.split("=", 1) for kv in a.meta if "=" in kv)
    status = {}
    for kv in a.status:
        name, _, st = kv.partition("=")
        status[name] = st
    report = {
        "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "mode": a.mode,
        "host": meta,
        "relays": {},
    }
    for name in RELAYS:
        entry = {"status": status.get(name, "not requested")}
        if meta.get(f"cpu_source_{name}") is not None:
            entry["packet_cpu_source"] = meta[f"cpu_source_{name}"] or None
        if a.mode == "smoke":
            relay = load(os.path.join(a.out, f"{name}-relay.json"))
            if relay and relay.get("trials"):
                t = relay["trials"][0]
                entry["smoke"] = {k: t.get(k) for k in ("offered_pps", "sent", "received", "lost",
                                                         "duplicates", "reordered",
                                                         "wrong_source", "ns_per_packet")}
            entry["ng"] = ng_figures(load(os.path.join(a.out, f"{name}-ng-smoke.json")))
            injected = load(os.path.join(a.out, f"{name}-injected.json"))
            if injected and injected.get("trials"):
                t = injected["trials"][0]
                entry["injected_loss"] = {"sent": t.get("sent"), "lost": t.get("lost"),
                                          "nft_dropped": injected_drops(
                                              load(os.path.join(a.out,
                                                                f"{name}-injected-nft.json")))}
        else:
            entry["ng_c1"] = aggregate(
                [ng_figures(load(f)) for f in rep_files(a.out, name, "ng-c1")])
            entry["ng_c32"] = aggregate(
                [ng_figures(load(f)) for f in rep_files(a.out, name, "ng-c32")])
            entry["relay"] = aggregate(
                [relay_figures(load(f)) for f in rep_files(a.out, name, "relay")])
        entry["datapath"] = datapath_figures(load(os.path.join(a.out, f"{name}-statistics.json")))
        entry["veth_drops"] = load(os.path.join(a.out, f"{name}-veth.json"))
        report["relays"][name] = entry

    rel = report["relays"]
    # Columns: the relays asked for (all three when the caller did not say).
    cols = [n for n in RELAYS if rel[n]["status"] != "not requested"] or list(RELAYS)
    pairs = [(n, d) for n, d in RATIOS if n in cols and d in cols]

    def cpu_na(name, path):
        return path[-1] in PACKET_CPU_KEYS and get(rel[name], "packet_cpu_source") is None and \
            f"cpu_source_{name}" in meta

    def fig(name, path):
        return None if cpu_na(name, path) else get(rel[name], *path)

    def cellc(name, path, spec):
        return "n/a" if cpu_na(name, path) else cell(rel[name], path, spec)

    loss = meta.get("loss_max_pct", "0.1")
    lines = []
    if a.mode == "full":
        # (label, path into a relay entry, format, key in the ratio table or None)
        rows = [
            ("ng ops/s, concurrency 1", ("ng_c1", "ops_per_sec"), "{:,.0f}", "ng_ops_c1"),
            ("ng ops/s, concurrency 32", ("ng_c32", "ops_per_sec"), "{:,.0f}", "ng_ops_c32"),
            ("ng relay CPU µs per cycle, concurrency 32",
             ("ng_c32", "server_cpu_us_per_cycle"), "{:,.0f}", "ng_cpu_us_per_cycle"),
            ("ng offer p50 µs, concurrency 1", ("ng_c1", "offer_p50_us"), "{:,.0f}", None),
            ("ng offer p99 µs, concurrency 32", ("ng_c32", "offer_p99_us"), "{:,.0f}", None),
            (f"max pps at < {loss} % loss", ("relay", "max_pps"), "{:,.0f}", "max_pps"),
            ("  calls (one RTP stream each) at that rate", ("relay", "streams_at_max"), "{:,.0f}",
             None),
            ("  p99 one-way latency at that rate, µs", ("relay", "latency_p99_us_at_max"),
             "{:,.0f}", None),
            ("  relay CPU ns/packet at that rate", ("relay", "ns_per_packet"), "{:,.0f}",
             "ns_per_packet"),
            ("  relay CPU at that rate (cores)", ("relay", "relay_cpu_util"), "{:.2f}", None),
            ("  generator-limited (then a lower bound)", ("relay", "generator_limited"), "{}",
             None),
            (f"max pps at < {loss} % loss and p99 ≤ {meta.get('latency_max_ms', '?')} ms",
             ("relay", "max_pps_latency_bounded"), "{:,.0f}", "max_pps_latency_bounded"),
            ("  relay CPU ns/packet at that rate", ("relay", "ns_per_packet_latency_bounded"),
             "{:,.0f}", "ns_per_packet_latency_bounded"),
            ("  relay CPU at that rate (cores)", ("relay", "relay_cpu_util_latency_bounded"),
             "{:.2f}", None),
            ("  generator-limited (then a lower bound)",
             ("relay", "generator_limited_latency_bounded"), "{}", None),
            ("relay CPU ns/packet in the first trial", ("relay", "ns_per_packet_ref"), "{:,.0f}",
             "ns_per_packet_ref"),
            ("  first-trial rate, pps", ("relay", "ref_pps"), "{:,.0f}", None),
        ]
        ratios = {f"{n}/{d}": {} for n, d in pairs}
        lines.append("| metric | " + " | ".join(cols) + " |" +
                     "".join(f" {n} / {d} |" for n, d in pairs))
        lines.append("|---|" + "---:|" * (len(cols) + len(pairs)))
        # A rate the harness could not push past is a lower bound, and so is its ratio.
        limited = {"max_pps": ("relay", "generator_limited"),
                   "max_pps_latency_bounded": ("relay", "generator_limited_latency_bounded")}
        for label, path, spec, key in rows:
            ratio_cells = []
            for n, d in pairs:
                text = ""
                if key:
                    rt = ratio(fig(n, path), fig(d, path))
                    ratios[f"{n}/{d}"][key] = rt
                    text = "–" if rt is None else f"{rt:.2f}"
                    if rt is not None and key in limited:
                        ln, ld = get(rel[n], *limited[key]), get(rel[d], *limited[key])
                        if ln and not ld:
                            text = "≥ " + text
                        elif ld and not ln:
                            text = "≤ " + text
                        elif ld:
                            text = "? " + text
                ratio_cells.append(text)
            lines.append(f"| {label} | " + " | ".join(cellc(c, path, spec) for c in cols) +
                         " |" + "".join(f" {c} |" for c in ratio_cells))

        def errors(e):
            if not get(e, "ng_c1") and not get(e, "ng_c32"):
                return "–"
            return "{:.0f}".format((get(e, "ng_c1", "errors") or 0) +
                                   (get(e, "ng_c32", "errors") or 0))

        def anomalies(e):
            r = get(e, "relay")
            if not r:
                return "–"
            return "{:.0f} / {:.0f} / {:.0f}".format(r["reordered_total"],
                                                     r["duplicates_total"],
                                                     r["wrong_source_total"])

        def cpu_source(name):
            e = rel[name]
            if "packet_cpu_source" not in e:
                return "–"
            return e["packet_cpu_source"] or "not measured"
        extra = [("relay CPU in the packet trials is", cpu_source),
                 ("datapath: packets forwarded in XDP of all relayed (whole run)",
                  lambda n: datapath_cell(rel[n])),
                 ("ng errors + timeouts (c1 + c32)", lambda n: errors(rel[n])),
                 ("reordered / duplicated / wrong-source packets, all trials",
                  lambda n: anomalies(rel[n])),
                 ("veth drops / errors (xg0, xra, xrb, xs0), whole run",
                  lambda n: veth_cell(rel[n]))]
        for label, fn in extra:
            lines.append(f"| {label} | " + " | ".join(fn(c) for c in cols) + " |" +
                         " |" * len(pairs))
        report["ratios"] = ratios
        if "xemsd/rtpengine" in ratios:
            report["ratios_xems_over_rtpengine"] = ratios["xemsd/rtpengine"]
    else:
        lines.append("| smoke | " + " | ".join(cols) + " |")
        lines.append("|---|" + "---|" * len(cols))
        for label, key in (("sent", "sent"), ("received", "received"), ("lost", "lost"),
                           ("reordered", "reordered"), ("wrong source", "wrong_source")):
            lines.append(f"| {label} | " +
                         " | ".join(cell(rel[c], ("smoke", key), "{:,.0f}") for c in cols) + " |")
        lines.append("| injected loss: lost / dropped by nftables | " +
                     " | ".join(injected_cell(rel[c]) for c in cols) + " |")
        lines.append("| ng cycles ok | " +
                     " | ".join(cell(rel[c], ("ng", "completed"), "{:,.0f}") for c in cols) +
                     " |")
        lines.append("| datapath: forwarded in XDP of relayed (ng statistics) | " +
                     " | ".join(datapath_cell(rel[c]) for c in cols) + " |")
        lines.append("| veth drops / errors | " + " | ".join(veth_cell(rel[c]) for c in cols) +
                     " |")
    lines.append("")
    for name in cols:
        lines.append(f"- {name}: {rel[name]['status']}")
    h = meta
    reps = int(h.get("repeats", "1") or 1)
    if a.mode == "full" and reps > 1:
        lines.append(f"- every figure is the median of {reps} runs, with min–max in brackets")
    lines.append(f"- host: {h.get('cpus', '?')} CPUs, kernel {h.get('kernel', '?')}; relay pinned "
                 f"to CPU {h.get('relay_cpu') or 'any'} with {h.get('relay_threads', '?')} worker "
                 f"thread(s); generator + sink + ng client on CPU {h.get('harness_cpu') or 'any'}")
    streams = h.get("streams", "?")
    if streams.startswith("rate/"):
        streams = (f"calls per trial = rate / {streams[5:]} (one {streams[5:]} pps RTP stream "
                   f"per call, gen -> relay -> sink), fresh calls every trial")
    else:
        streams = f"{streams} calls per trial (one RTP stream each), fresh calls every trial"
    payload = int(h.get("payload_bytes", "160") or 160)
    lines.append(f"- {streams}; {h.get('trial_seconds', '?')} s per trial; {payload + 12}-byte RTP "
                 f"packets (PT 0, {payload}-byte payload, ptime {h.get('ptime', '20')} ms)")
    gen = {"packet": "Ethernet frames through AF_PACKET (qdisc bypassed)",
           "udp": "sendmmsg on UDP sockets"}.get(h.get("gen_mode", ""))
    sink = {"xdp": "an XDP program on xs0 that counts and drops the probes",
            "udp": "recvmmsg on a UDP socket"}.get(h.get("sink_mode", ""))
    if gen and sink and a.mode == "smoke":
        sink = f"recvmmsg on a UDP socket (checksums checked); for kernel forwarding {sink}"
    if gen and sink:
        lines.append(f"- generator: {gen}; sink: {sink}")
    if "xemsd-xdp" in cols and a.mode == "full" and rel["xemsd-xdp"]["status"] == "ok":
        src = get(rel["xemsd-xdp"], "packet_cpu_source")
        if src:
            lines.append(f"- xemsd-xdp forwards in XDP, in the kernel: its relay CPU is that of "
                         f"the {src} (XDP, redirect and delivery to the sink's socket), while the "
                         f"userspace relays' leave out the kernel receive path, which runs on the "
                         f"harness CPU; its ng figures are xemsd's own")
        else:
            lines.append(f"- xemsd-xdp forwards in XDP, in the softirq of the CPU that sends into "
                         f"the relay (the harness's, CPU {h.get('harness_cpu') or 'any'}), not in "
                         f"xemsd's threads: its relay CPU per packet is n/a, its packet work "
                         f"competes with the generator and the sink, and its ng figures are "
                         f"xemsd's own")
    if "kernel" in cols and rel["kernel"]["status"] == "ok":
        lines.append(f"- kernel: plain IP forwarding in the relay namespace (net.ipv4.ip_forward=1, "
                     f"routes gen -> sink through it; no ng, no relay process): the baseline any "
                     f"relay is measured against. Like XDP it runs in the softirq of the sending "
                     f"CPU (CPU {h.get('harness_cpu') or 'any'}), so its CPU per packet is n/a")
    for name in cols:
        if h.get(f"busy_before_{name}"):
            lines.append(f"- other processes' CPU just before {name} started: "
                         f"{h[f'busy_before_{name}']} cores")
        rr = get(rel[name], "relay")
        if rr and rr.get("other_cpu_max") is not None:
            busy = rr["other_cpu_max"] > 0.1
            lines.append(f"- other processes during the {name} trials: mean "
                         f"{rr['other_cpu_mean']:.2f}, max {rr['other_cpu_max']:.2f} cores"
                         + (" (the host was not idle: rates and latencies are pessimistic; CPU "
                            "per packet/cycle is less affected)" if busy else ""))
    if h.get("rtpengine_version"):
        lines.append(f"- rtpengine: {h['rtpengine_version']}")
    png = plot(a.out, cols, a.mode, float(loss), float(meta.get("latency_max_ms", "50") or 50))
    if png:
        report["plot"] = os.path.basename(png)
        lines.append(f"- plot: {os.path.basename(png)} (delivered rate, loss and p99 latency vs "
                     f"offered rate, per relay; data in relay_compare-plot.dat)")
    md = "\n".join(lines) + "\n"

    with open(os.path.join(a.out, "relay_compare.json"), "w") as f:
        json.dump(report, f, indent=2)
    with open(os.path.join(a.out, "relay_compare.md"), "w") as f:
        f.write(md)
    sys.stdout.write(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
