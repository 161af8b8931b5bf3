#!/usr/bin/env python3
"""Tables and plots of lab/bench/compare.sh results (python3 standard library only).

Reads the JSON lines of responder-cpu.sh (--responder) and relay-cpu.sh (--relay): medians
over rounds of the server CPU per request (per call for the relay) with the min–max spread,
ratios to Kamailio with TLSF, and the checks (losses, generator-bound runs, other load on the
server's core). --table prints Markdown; --markdown FILE writes it; --svg-dir DIR writes one
bar chart per mode (responder-cpu.svg, relay-cpu.svg), bars = systems, whiskers = min–max.
"""

import argparse
import json
import math
import statistics
import sys
from html import escape

REFERENCE = "kamailio"  # Kamailio 5.6 with -x tlsf -X tlsf
TRANSPORT_ORDER = ["udp", "tcp", "tls13", "tls12"]
CASE_ORDER = ["udp-udp", "tcp-tcp", "tls-tls", "udp-tls", "sctp-sctp", "tls-sctp"]
RELAY_ORDER = ["stateful", "stateless"]
COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
med = statistics.median
# A run that answered less than this share of its items with 200 measured the server's error
# path, not the case: it is left out of the medians and listed under the table.
MIN_ANSWERED = 0.999


def valid(r):
    return not r.get("failed") and r["answered"] >= MIN_ANSWERED * (r["answered"] + r["non_200"] + r["unanswered"])


def load(paths):
    return [json.loads(line) for p in paths for line in open(p) if line.strip()]


def systems_of(runs):
    """Systems in order of first appearance, sipwire builds first, Kamailio after."""
    names = list(dict.fromkeys(r["system"] for r in runs))
    return [n for n in names if not n.startswith("kamailio")] + [n for n in names if n.startswith("kamailio")]


def label(case):
    return case.replace("-", "→").upper() if "-" in case else {"tls13": "TLS 1.3", "tls12": "TLS 1.2"}.get(case, case.upper())


def cells(runs, key_of, keys):
    """(key, system) → runs with a CPU figure, for keys in the order given."""
    out = {}
    for r in runs:
        if r.get("server_cpu_us_per_req") and valid(r):
            out.setdefault((key_of(r), r["system"]), []).append(r)
    return {k: v for k, v in out.items() if k[0] in keys}


def stats(rs):
    c = [r["server_cpu_us_per_req"] for r in rs]
    return med(c), min(c), max(c)


def checks(all_runs, what):
    failed = [r for r in all_runs if r.get("failed")]
    runs = [r for r in all_runs if not r.get("failed")]
    bad = [r for r in runs if r["unanswered"] or r["non_200"] or r["io_errors"]]
    dropped = [r for r in runs if not valid(r)]
    bound = [r for r in runs if r["generator_bound"]]
    # A window with nothing sent in it (the generator stalled: seen under TCG in the lab VM)
    # has no CPU figure and is left out of the medians.
    empty = [r for r in runs if not r["sent"]]
    others = [r["other_on_server_core_pct"] for r in runs]
    lines = [
        f"{what}: {len(runs)} runs measured, {len(failed)} failed; with unanswered, non-200 or I/O errors: {len(bad)}; "
        f"left out of the medians (< {100 * MIN_ANSWERED:g}% answered with 200): {len(dropped)}; "
        f"generator-bound: {len(bound)}; "
        + (f"nothing sent in the window (left out): {len(empty)}; " if empty else "")
        + f"other load on the server's core: median {med(others):.0f}%, "
        f"max {max(others):.0f}%; load average {min(r['loadavg'] for r in runs):.1f}–{max(r['loadavg'] for r in runs):.1f}."
    ]
    for r in failed:
        lines.append(f"  {r['label']}: failed ({r['failed']})")
    for r in bad:
        lines.append(
            f"  {r['label']}: unanswered {r['unanswered']}, non-200 {r['non_200']}, I/O errors {r['io_errors']}, "
            f"retransmissions {r['retransmissions']}"
        )
    return lines


def responder_table(runs):
    names = systems_of(runs)
    keys = [t for t in TRANSPORT_ORDER if any(r["bench_transport"] == t for r in runs)]
    cs = cells(runs, lambda r: r["bench_transport"], keys)
    out = [
        "| transport | system | answered/s | server CPU µs/req (min–max) | p50 / p99 µs | other % | × kamailio |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in keys:
        ref = cs.get((t, REFERENCE))
        for n in names:
            rs = cs.get((t, n))
            if not rs:
                continue
            m, lo, hi = stats(rs)
            ratio = f"{m / stats(ref)[0]:.2f}" if ref else "–"
            out.append(
                f"| {label(t)} | {n} | {med([r['answered_per_s'] for r in rs]):,.0f} | **{m:.2f}** ({lo:.2f}–{hi:.2f}) | "
                f"{med([r['lat_p50_us'] for r in rs]):,.0f} / {med([r['lat_p99_us'] for r in rs]):,.0f} | "
                f"{med([r['other_on_server_core_pct'] for r in rs]):.0f} | {ratio} |"
            )
    return out + [""] + checks(runs, "responder")


def relay_table(runs):
    names = systems_of(runs)
    keys = [(c, m) for c in CASE_ORDER for m in RELAY_ORDER if any(r["bench_case"] == c and r["relay"] == m for r in runs)]
    cs = cells(runs, lambda r: (r["bench_case"], r["relay"]), keys)
    out = [
        "| case | relay | system | calls/s | server CPU µs/call (min–max) | p50 / p99 µs | unanswered | rtx | generator % | other % | × kamailio |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for k in keys:
        ref = cs.get((k, REFERENCE))
        for n in names:
            rs = cs.get((k, n))
            relay = k[1] + (" (t_relay)" if n.startswith("kamailio") and k[1] == "stateful" else
                            " (forward)" if n.startswith("kamailio") else "")
            fails = [r for r in runs if r.get("failed") and (r["bench_case"], r["relay"], r["system"]) == (*k, n)]
            if not rs:
                if fails:
                    out.append(f"| {label(k[0])} | {relay} | {n} | – | **fails**: {fails[0]['failed']} ({len(fails)} of {len(fails)} runs) | | | | | | |")
                continue
            m, lo, hi = stats(rs)
            ratio = f"{m / stats(ref)[0]:.2f}" if ref else "–"
            out.append(
                f"| {label(k[0])} | {relay} | {n} | {med([r['answered_per_s'] for r in rs]):,.0f} | **{m:.1f}** ({lo:.1f}–{hi:.1f}) | "
                f"{med([r['lat_p50_us'] for r in rs]):,.0f} / {med([r['lat_p99_us'] for r in rs]):,.0f} | "
                f"{sum(r['unanswered'] for r in rs)} | {sum(r['retransmissions'] for r in rs)} | "
                f"{med([r['generator_cpu_pct'] for r in rs]):.0f} | {med([r['other_on_server_core_pct'] for r in rs]):.0f} | {ratio} |"
            )
    return out + [""] + checks(runs, "relay")


def round_top(vmax):
    """A round top for an axis: 1, 2 or 5 × 10^k at or above vmax."""
    step = 10 ** len(str(int(vmax))) / 10
    return next(step * f for f in (1, 2, 5, 10, 20, 50) if step * f >= vmax)


def svg_lines(title, xunit, yunit, series, path, log_y=True):
    """Lines with dots: series = [(name, [(x, y, hover text)])]; y on a log10 axis by default
    (latencies that span decades), x linear from 0. Colours as in svg_bars, by series order."""
    left, top, bottom, right, plot_w, plot_h = 64, 36, 62, 16, 460, 260
    width, height = left + plot_w + right, top + plot_h + bottom
    pts = [p for _, ps in series for p in ps if p[1] > 0]
    xmax = round_top(max([p[0] for p in pts] + [1.0]))
    if log_y:
        lo = 10 ** math.floor(math.log10(min([p[1] for p in pts] or [10.0])))
        hi = 10 ** math.ceil(math.log10(max([p[1] for p in pts] + [lo * 10])))
        hi = max(hi, lo * 10)
        y = lambda v: top + plot_h - plot_h * math.log10(max(v, lo) / lo) / math.log10(hi / lo)  # noqa: E731
        ticks = [lo * 10 ** i for i in range(round(math.log10(hi / lo)) + 1)]
    else:
        hi = round_top(max([p[1] for p in pts] + [1.0]))
        y = lambda v: top + plot_h - plot_h * v / hi  # noqa: E731
        ticks = [hi * i / 5 for i in range(6)]
    x = lambda v: left + plot_w * v / xmax  # noqa: E731
    s = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="13">{escape(title)}</text>',
        f'<text x="14" y="{top + plot_h / 2}" transform="rotate(-90 14 {top + plot_h / 2})" text-anchor="middle">{escape(yunit)}</text>',
        f'<text x="{left + plot_w / 2}" y="{top + plot_h + 30}" text-anchor="middle">{escape(xunit)}</text>',
    ]
    for v in ticks:
        s.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>')
        s.append(f'<text x="{left - 4}" y="{y(v) + 4:.1f}" text-anchor="end">{v:,.0f}</text>')
    for i in range(6):
        v = xmax * i / 5
        s.append(f'<text x="{x(v):.1f}" y="{top + plot_h + 14}" text-anchor="middle">{v:g}</text>')
    s.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="black"/>')
    s.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}" stroke="black"/>')
    lx = left
    for ni, (name, ps) in enumerate(series):
        colour = COLOURS[ni % len(COLOURS)]
        ps = sorted(p for p in ps if p[1] > 0)
        if ps:
            s.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="'
                     + " ".join(f"{x(px):.1f},{y(py):.1f}" for px, py, _ in ps) + '"/>')
        for px, py, text in ps:
            s.append(f'<circle cx="{x(px):.1f}" cy="{y(py):.1f}" r="3" fill="{colour}"><title>{escape(text)}</title></circle>')
        s.append(f'<rect x="{lx}" y="{height - 18}" width="10" height="10" fill="{colour}"/>')
        s.append(f'<text x="{lx + 14}" y="{height - 9}">{escape(name)}</text>')
        lx += 24 + 7 * len(name)
    s.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(s) + "\n")


def svg_bars(title, unit, groups, names, values, path):
    """Grouped bars: groups = [(key, text)], values[(key, name)] = (median, min, max)."""
    width_bar, gap = 22, 26
    n = len(names)
    group_w = n * width_bar + gap
    left, top, bottom, right = 64, 48, 70, 16
    plot_h = 300
    width = left + right + len(groups) * group_w
    height = top + plot_h + bottom
    top_val = round_top(max([v[2] for v in values.values()] + [1.0]))
    y = lambda v: top + plot_h - plot_h * v / top_val  # noqa: E731
    s = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="13">{escape(title)}</text>',
        f'<text x="14" y="{top + plot_h / 2}" transform="rotate(-90 14 {top + plot_h / 2})" text-anchor="middle">{escape(unit)}</text>',
    ]
    for i in range(6):
        v = top_val * i / 5
        s.append(f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>')
        s.append(f'<text x="{left - 4}" y="{y(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
    for gi, (key, text) in enumerate(groups):
        x0 = left + gi * group_w + gap / 2
        for ni, name in enumerate(names):
            v = values.get((key, name))
            if not v:
                continue
            m, lo, hi = v
            x = x0 + ni * width_bar
            s.append(
                f'<rect x="{x:.1f}" y="{y(m):.1f}" width="{width_bar - 3}" height="{y(0) - y(m):.1f}" '
                f'fill="{COLOURS[ni % len(COLOURS)]}"><title>{escape(name)} {escape(text)}: {m:.2f} ({lo:.2f}–{hi:.2f})</title></rect>'
            )
            cx = x + (width_bar - 3) / 2
            s.append(f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{y(lo):.1f}" y2="{y(hi):.1f}" stroke="black"/>')
            for w in (lo, hi):
                s.append(f'<line x1="{cx - 4:.1f}" x2="{cx + 4:.1f}" y1="{y(w):.1f}" y2="{y(w):.1f}" stroke="black"/>')
        for li, line in enumerate(text.split("\n")):
            s.append(f'<text x="{x0 + n * width_bar / 2:.1f}" y="{top + plot_h + 16 + 13 * li}" text-anchor="middle">{escape(line)}</text>')
    s.append(f'<line x1="{left}" x2="{width - right}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="black"/>')
    lx = left
    for ni, name in enumerate(names):
        s.append(f'<rect x="{lx}" y="{height - 18}" width="10" height="10" fill="{COLOURS[ni % len(COLOURS)]}"/>')
        s.append(f'<text x="{lx + 14}" y="{height - 9}">{escape(name)}</text>')
        lx += 24 + 7 * len(name)
    s.append(f'<text x="{width - right}" y="{height - 9}" text-anchor="end">median of rounds, whiskers min–max</text>')
    s.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(s) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--responder", nargs="*", default=[])
    ap.add_argument("--relay", nargs="*", default=[])
    ap.add_argument("--table", action="store_true", help="print the Markdown tables")
    ap.add_argument("--markdown", help="write the Markdown tables to this file")
    ap.add_argument("--svg-dir", help="write responder-cpu.svg and relay-cpu.svg here")
    ap.add_argument("--svg-prefix", default="", help="prefix of the SVG file names")
    a = ap.parse_args()
    md = []
    resp, relay = load(a.responder), load(a.relay)
    if resp:
        md += ["**OPTIONS responder, server CPU per request**", ""] + responder_table(resp) + [""]
    if relay:
        md += ["**Relay (calls), server CPU per call**", ""] + relay_table(relay) + [""]
    if a.table:
        print("\n".join(md))
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write("\n".join(md))
    if a.svg_dir:
        if resp:
            keys = [t for t in TRANSPORT_ORDER if any(r["bench_transport"] == t for r in resp)]
            cs = cells(resp, lambda r: r["bench_transport"], keys)
            svg_bars(
                "OPTIONS responder: server CPU per request (one core)", "µs per request",
                [(t, label(t)) for t in keys], systems_of(resp),
                {k: stats(v) for k, v in cs.items()}, f"{a.svg_dir}/{a.svg_prefix}responder-cpu.svg",
            )
        if relay:
            keys = [(c, m) for c in CASE_ORDER for m in RELAY_ORDER
                    if any(r["bench_case"] == c and r["relay"] == m for r in relay)]
            cs = cells(relay, lambda r: (r["bench_case"], r["relay"]), keys)
            svg_bars(
                "Relay: proxy CPU per call (INVITE/200/ACK/BYE/200, one core)", "µs per call",
                [(k, f"{label(k[0])}\n{k[1]}") for k in keys], systems_of(relay),
                {k: stats(v) for k, v in cs.items()}, f"{a.svg_dir}/{a.svg_prefix}relay-cpu.svg",
            )
    if not (a.table or a.markdown or a.svg_dir):
        ap.error("nothing to do: --table, --markdown or --svg-dir")


if __name__ == "__main__":
    sys.exit(main())
