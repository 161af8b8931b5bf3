#!/usr/bin/env python3
"""Tables and plots of lab/bench/tls-conns.sh results (python3 standard library only).

Reads its JSON lines: `handshakes` lines (sipload handshakes, per round) and `base` / `step` /
`after_hold` lines (sipload conns, one per connection count). Prints Markdown tables (full TLS
handshakes/s with the ratios to Kamailio and to the bare rustls server; memory and throughput
at each connection count), and with --svg-dir writes tls-conns-memory.svg,
tls-conns-cpu.svg and tls-conns-throughput.svg with the bar chart writer of compare-report.py.
"""

import argparse
import importlib.util
import json
import os
import statistics
import sys

sys.dont_write_bytecode = True  # no __pycache__ next to the scripts
here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("compare_report", os.path.join(here, "compare-report.py"))
compare_report = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare_report)

ORDER = ["sipwire", "kamailio", "bare"]
NAMES = {"sipwire": "sipwire", "kamailio": "Kamailio-tlsf", "bare": "bare rustls"}
med = statistics.median
# Below this many connections the per-connection memory is page-granular noise (± a few
# pages over one connection): not shown.
MIN_PER_CONN = 100


def load(paths):
    return [json.loads(line) for p in paths for line in open(p) if line.strip()]


def count_text(n):
    return f"{n // 1000}k" if n >= 10000 else str(n)


def handshake_table(runs):
    hs = [r for r in runs if r.get("phase") == "handshakes"]
    if not hs:
        return []
    systems = [s for s in ORDER if any(r["system"] == s for r in hs)]
    rate = {s: med([r["handshakes_per_s"] for r in hs if r["system"] == s]) for s in systems}
    cpu = {s: med([r["server_cpu_us_per_handshake"] for r in hs if r["system"] == s
                   and r.get("server_cpu_us_per_handshake")] or [0]) for s in systems}
    # What one core could do if the server were the only limit: 1 s / CPU per handshake.
    cap = {s: (1e6 / c if c else 0) for s, c in cpu.items()}
    out = [
        "| server | handshakes/s measured (median) | min–max | server CPU µs/handshake | per core (10⁶ / CPU) | errors "
        "| × Kamailio (measured / per core) | × bare rustls (measured / per core) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in systems:
        rs = [r for r in hs if r["system"] == s]
        v = [r["handshakes_per_s"] for r in rs]

        def ratio(ref):
            if ref not in rate or not cap[ref]:
                return "–"
            return f"{rate[s] / rate[ref]:.2f} / {cap[s] / cap[ref]:.2f}"

        out.append(
            f"| {NAMES[s]} | {rate[s]:,.0f} | {min(v):,.0f}–{max(v):,.0f} | {cpu[s]:.0f} | {cap[s]:,.0f} | "
            f"{sum(r['errors'] for r in rs)} | {ratio('kamailio')} | {ratio('bare')} |"
        )
    bound = [r for r in hs if r.get("generator_bound")]
    out += ["", f"runs: {len(hs)}; generator-bound: {len(bound)}"]
    return out


def steps_of(runs, where):
    """system → [step lines] in order (the last run of each system there only)."""
    by = {}
    for r in runs:
        if r.get("where") != where:
            continue
        if r.get("phase") == "base":
            by[r["system"]] = []
        elif r.get("phase") in ("step", "after_hold", "failed") and r.get("system") in by:
            by[r["system"]].append(r)
    return by


def growth_table(runs, where):
    by = steps_of(runs, where)
    if not by:
        return []
    out = [
        "| server | connections | server PSS MiB | KiB/conn (PSS) | KiB/conn (RSS) | OPTIONS answered/s | server CPU µs/req | p99 ms | connect errors | broken / non-200 | connections/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in [s for s in ORDER if s in by]:
        for r in by[s]:
            if r["phase"] == "failed":
                out.append(f"| {NAMES[s]} | failed: {r.get('error', '')} |||||||||")
                continue
            n = r["connections"]
            what = f"{n:,}" if r["phase"] == "step" else f"{n:,} after {r['hold_s']:.0f} s idle"
            f = lambda k, fmt: (fmt.format(r[k]) if r.get(k) is not None else "–")  # noqa: E731
            if n < MIN_PER_CONN:
                r = dict(r, server_kib_per_conn=None, server_rss_kib_per_conn=None)
            out.append(
                f"| {NAMES[s]} | {what} | {r['server_pss_kib'] / 1024:,.0f} | {f('server_kib_per_conn', '{:.1f}')} | "
                f"{f('server_rss_kib_per_conn', '{:.1f}')} | {r['answered_per_s']:,.0f} | {f('server_cpu_us_per_req', '{:.1f}')} | "
                f"{r['lat_p99_us'] / 1000:.1f} | {r.get('connect_errors', 0)} | {r['broken']} / {r['non_200']} | "
                f"{f('connects_per_s', '{:,.0f}')} |"
            )
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+")
    ap.add_argument("--svg-dir", help="write tls-conns-memory.svg tls-conns-cpu.svg and tls-conns-throughput.svg here")
    ap.add_argument("--svg-where", default="host", help="which run the plots show: host or vm")
    a = ap.parse_args()
    runs = load(a.results)
    md = []
    t = handshake_table(runs)
    if t:
        md += ["**Full TLS 1.3 handshakes per second (one core each, no resumption)**", ""] + t + [""]
    for where, text in (("host", "this host"), ("vm", "lab VM, TCG")):
        g = growth_table(runs, where)
        if g:
            md += [f"**Idle TLS connections: memory and OPTIONS throughput by connection count ({text})**", ""] + g + [""]
    print("\n".join(md))
    if a.svg_dir:
        by = steps_of(runs, a.svg_where)
        names = [s for s in ORDER if s in by]
        steps = sorted({r["connections"] for s in names for r in by[s] if r["phase"] == "step"})
        groups = [(n, f"{count_text(n)} conns") for n in steps]
        for key, title, unit, path in (
            ("server_kib_per_conn", "Server memory per idle TLS connection (PSS)", "KiB per connection",
             "tls-conns-memory.svg"),
            ("server_cpu_us_per_req", "Server CPU per OPTIONS over N TLS connections (32 in flight, one core)",
             "µs per request", "tls-conns-cpu.svg"),
            ("answered_per_s", "OPTIONS throughput over N TLS connections (32 in flight, one core)",
             "answered per second", "tls-conns-throughput.svg"),
        ):
            values = {}
            for s in names:
                for r in by[s]:
                    if key == "server_kib_per_conn" and r["connections"] < MIN_PER_CONN:
                        continue
                    if r["phase"] == "step" and r.get(key) is not None:
                        v = max(float(r[key]), 0.0)
                        values[(r["connections"], NAMES[s])] = (v, v, v)
            compare_report.svg_bars(title, unit, groups, [NAMES[s] for s in names], values,
                                    os.path.join(a.svg_dir, path))


if __name__ == "__main__":
    main()
