#!/usr/bin/env python3
"""Draws the cold-sync chart of BENCHMARKS.md from bench-sync results, as SVG.

Usage: bench/chart.py RESULTS... > chart.svg

RESULTS are files holding bench-sync's JSON lines (the results markdown that
`bench-sync --out` appends to, or bench/sync-results.jsonl). For each controller run
(sealant, Bitnami raised, Bitnami default, and the `ideal` floor) and each N, the last
result in the files wins. Two panels, both on log-log axes: the time until all N
Secrets exist, and the controller's peak RSS, against N. Standard library only.
"""

import json
import math
import sys

RUNS = [
    ("sealant", "sealant", "#1f77b4"),
    ("ideal", "ideal (a plain client, mandatory work only)", "#7f7f7f"),
    ("bitnami-raised", "Bitnami, client throttle raised", "#d62728"),
    ("bitnami-default", "Bitnami, defaults", "#ff7f0e"),
]
WIDTH, HEIGHT = 920, 400
PANEL_W, PANEL_H = 340, 260
MARGIN_L, MARGIN_T = 70, 50


def load(paths):
    points = {}
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line.startswith('{"run"'):
                    continue
                r = json.loads(line)
                if r.get("ready_seconds") is not None or r.get("latency_ms") is not None:
                    continue  # restart and steady-state runs are not cold syncs
                points[(r["run"], r["n"])] = r
    return points


def log_scale(lo, hi, size, invert=False):
    lo, hi = math.log10(lo), math.log10(hi)

    def f(v):
        t = (math.log10(v) - lo) / (hi - lo)
        return size * (1 - t) if invert else size * t

    return f


def decades(lo, hi):
    return [10 ** e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)]


def panel(out, x0, title, unit, series, ns):
    values = [v for _, _, pts in series for _, v in pts]
    if not values:
        return
    xs = decades(min(ns), max(ns))
    ys = decades(min(values), max(values))
    sx = log_scale(xs[0], xs[-1], PANEL_W)
    sy = log_scale(ys[0], ys[-1], PANEL_H, invert=True)
    out.append(f'<g transform="translate({x0},{MARGIN_T})">')
    out.append(f'<text x="{PANEL_W / 2}" y="-18" text-anchor="middle" font-weight="bold">{title}</text>')
    out.append(f'<rect width="{PANEL_W}" height="{PANEL_H}" fill="none" stroke="#999"/>')
    for x in xs:
        out.append(f'<line x1="{sx(x):.1f}" x2="{sx(x):.1f}" y1="0" y2="{PANEL_H}" stroke="#eee"/>')
        out.append(f'<text x="{sx(x):.1f}" y="{PANEL_H + 16}" text-anchor="middle">{x:,}</text>')
    for y in ys:
        out.append(f'<line x1="0" x2="{PANEL_W}" y1="{sy(y):.1f}" y2="{sy(y):.1f}" stroke="#eee"/>')
        out.append(f'<text x="-6" y="{sy(y) + 4:.1f}" text-anchor="end">{y:g}</text>')
    out.append(f'<text x="{PANEL_W / 2}" y="{PANEL_H + 34}" text-anchor="middle">SealedSecrets (N)</text>')
    out.append(
        f'<text transform="translate(-50,{PANEL_H / 2}) rotate(-90)" text-anchor="middle">{unit}</text>'
    )
    for _, color, pts in series:
        if len(pts) > 1:
            path = " ".join(f"{sx(n):.1f},{sy(v):.1f}" for n, v in pts)
            out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for n, v in pts:
            out.append(f'<circle cx="{sx(n):.1f}" cy="{sy(v):.1f}" r="4" fill="{color}"><title>N={n:,}: {v:.1f}</title></circle>')
    out.append("</g>")


def main(paths):
    points = load(paths)
    ns = sorted({n for (_, n) in points})
    if not ns:
        sys.exit("chart.py: no cold-sync results in " + ", ".join(paths))
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
    ]

    def series(field):
        result = []
        for run, label, color in RUNS:
            pts = [(n, points[(run, n)][field]) for n in ns
                   if (run, n) in points and points[(run, n)].get(field)]
            if pts:
                result.append((label, color, pts))
        return result

    panel(out, MARGIN_L, "Cold sync: until every Secret exists", "seconds", series("seconds"), ns)
    panel(out, MARGIN_L + PANEL_W + 110, "Controller peak RSS", "MiB", series("peak_rss_mib"), ns)
    y = HEIGHT - 40
    x = MARGIN_L
    for run, label, color in RUNS:
        if any(r == run for (r, _) in points):
            out.append(f'<rect x="{x}" y="{y - 9}" width="14" height="4" fill="{color}"/>')
            out.append(f'<text x="{x + 20}" y="{y - 3}">{label}</text>')
            x += 40 + 7 * len(label)
    out.append(f'<text x="{MARGIN_L}" y="{HEIGHT - 12}" fill="#555">Each point: one bench-sync run '
               f'(bench/sync.sh); 10,000 and more also with as many unrelated Secrets. '
               f'The last result per run and N.</text>')
    out.append("</svg>")
    print("\n".join(out))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
