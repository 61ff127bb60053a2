#!/usr/bin/env python3
"""Latency percentiles of rc-agent and ssh-agent from one `make bench` run, as a PNG.

   bench-plot.py RESULTS OUT.png

Reads the `side …` lines of scripts/bench.sh's results (rc-bench raw: `curve=P:µs,…`); for each
target and mode, the median over the interleaved rounds of each percentile. Needs Debian's
python3-matplotlib (the system python3).
"""
import shlex
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

results, out = sys.argv[1:3]
curves = {}
for raw in open(results):
    parts = shlex.split(raw.strip())
    if not parts or parts[0] != "side":
        continue
    f = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
    key = (f["target"], f["connecting"], int(f["connections"]))
    for point in f["curve"].split(","):
        p, us = point.split(":")
        if us != "-":
            curves.setdefault(key, {}).setdefault(float(p), []).append(float(us))

names = {"rc-json": "rc-agent GET /v1/token (JSON)", "rc-text": "rc-agent GET /v1/token (text)",
         "ssh": "ssh-agent REQUEST_IDENTITIES",
         "nio": "bare SwiftNIO HTTP/1 server (ceiling)"}
styles = {"rc-json": ("tab:blue", "-"), "rc-text": ("tab:green", "--"), "ssh": ("tab:red", ":"), "nio": ("tab:gray", "-.")}
panels = [("keep-alive", 1), ("keep-alive", 8), ("fresh", 1), ("fresh", 8)]
fig, axes = plt.subplots(2, 2, figsize=(11, 8), sharey=True)
for ax, (mode, conns) in zip(axes.flat, panels):
    for target in ("rc-json", "rc-text", "ssh", "nio"):
        points = curves.get((target, mode, conns))
        if not points:
            continue
        ps = sorted(p for p in points if p < 100)
        # x: "nines" — 50 % → 2, 99 % → 100, 99.9 % → 1000 (log scale)
        xs = [1 / (1 - p / 100) for p in ps]
        ys = [statistics.median(points[p]) for p in ps]
        color, line = styles[target]
        ax.plot(xs, ys, line, color=color, marker="o", markersize=3, label=names[target])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks([2, 10, 100, 1000, 10000])
    ax.set_xticklabels(["p50", "p90", "p99", "p99.9", "p99.99"])
    ax.set_title(f"{mode}, {conns} connection{'s' if conns > 1 else ''}" if mode == "keep-alive"
                 else f"fresh connection per request, {conns} client{'s' if conns > 1 else ''}")
    ax.grid(True, which="both", alpha=0.3)
    ax.set_ylabel("latency (µs)")
axes.flat[0].legend(fontsize=8)
fig.suptitle("Latency percentiles, one make bench run (median of the interleaved rounds)")
fig.tight_layout()
fig.savefig(out, dpi=90)
print(f"wrote {out}", file=sys.stderr)
