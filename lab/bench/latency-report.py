#!/usr/bin/env python3
"""Tables and p99-vs-rate plots of lab/bench/latency.sh results (python3 standard library only).

Reads its JSON lines (one per run: phase max | at80 | sweep) and writes: Kamailio-tlsf's
maximum per case, the open-loop comparison at 80% of it (medians of rounds, p99 min–max, p99
ratio to Kamailio), the sweep (unanswered %, drops, server CPU % per offered rate) and the
verdicts on the two issue-13 targets. --doc fills the block between the latency markers of
docs/benchmarks.md. The SVG helper is compare-report.py's svg_lines.
"""

import argparse
import importlib.util
import json
import os
import statistics
import sys

_spec = importlib.util.spec_from_file_location(
    "compare_report", os.path.join(os.path.dirname(os.path.abspath(__file__)), "compare-report.py"))
cr = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cr)

CASES = ["udp", "tcp", "tls13", "relay-udp-udp", "relay-tls-tls"]
SYSTEMS = ["sipwire", "sipwire-rcvbuf", "kamailio"]
TEXT = {"udp": "UDP", "tcp": "TCP", "tls13": "TLS 1.3", "relay-udp-udp": "relay UDP→UDP (stateful)",
        "relay-tls-tls": "relay TLS→TLS (stateful)"}
# "Below saturation": the server's core busy less than this, the server's own CPU plus what
# else ran on that core (on a shared machine other processes take the core before the server does).
SATURATED_CPU_PCT = 90.0
LOSS_TARGET_PCT = 0.1
BEGIN, END = "<!-- latency.sh: begin generated -->", "<!-- latency.sh: end generated -->"
med = statistics.median


def ok(r):
    return not r.get("failed")


def loss(r):
    return r["unanswered_pct"] or 0.0


def p999(rs):
    """Median p99.9 of the runs ("–" from a sipload without lat_p999_us)."""
    v = [r["lat_p999_us"] for r in rs if r.get("lat_p999_us") is not None]
    return f"{med(v):,.0f}" if v else "–"


def core_busy(r):
    return r["server_cpu_pct"] + r["other_on_server_core_pct"]


def fmt_pct(v):
    return f"{v:.3f}" if v < 1 else f"{v:.1f}"


def tables(runs):
    cases = [c for c in CASES if any(r["bench_case"] == c for r in runs)]
    out = ["**Kamailio-tlsf's maximum (closed loop)**", "",
           "| case | answered/s, median (min–max) | p99 µs | server CPU % | generator % | generator-bound runs |",
           "|---|---|---|---|---|---|"]
    for c in cases:
        rs = [r for r in runs if ok(r) and r["bench_case"] == c and r["phase"] == "max"]
        if not rs:
            out.append(f"| {TEXT[c]} | **no maximum**: Kamailio did not answer | | | | |")
            continue
        a = [r["answered_per_s"] for r in rs]
        bound = sum(r["generator_bound"] for r in rs)
        out.append(f"| {TEXT[c]} | **{med(a):,.0f}** ({min(a):,.0f}–{max(a):,.0f}) | {med([r['lat_p99_us'] for r in rs]):,.0f} | "
                   f"{med([r['server_cpu_pct'] for r in rs]):.0f} | {med([r['generator_cpu_pct'] for r in rs]):.0f} | "
                   f"{bound} of {len(rs)}{' (the maximum is the generator’s)' if bound * 2 > len(rs) else ''} |")
    out += ["", "**Open loop at 80% of that maximum** (medians of rounds; p99 min–max over rounds)", "",
            "| case | system | offered/s | answered/s | p50 µs | p99 µs (min–max) | p99.9 µs | unanswered % | rtx | "
            "server UDP drops | host UDP drops | server CPU % | generator % | p99 × kamailio |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    verdict_p99 = []
    for c in cases:
        ref = [r["lat_p99_us"] for r in runs if ok(r) and r["bench_case"] == c and r["phase"] == "at80" and r["system"] == "kamailio"]
        for s in SYSTEMS:
            rs = [r for r in runs if ok(r) and r["bench_case"] == c and r["phase"] == "at80" and r["system"] == s]
            if not rs:
                continue
            p99 = [r["lat_p99_us"] for r in rs]
            ratio = med(p99) / med(ref) if ref and med(ref) else None
            if ratio is not None and s != "kamailio":
                verdict_p99.append((c, s, ratio))
            out.append(
                f"| {TEXT[c]} | {s} | {med([r['offered_per_s'] for r in rs]):,.0f} | {med([r['answered_per_s'] for r in rs]):,.0f} | "
                f"{med([r['lat_p50_us'] for r in rs]):,.0f} | **{med(p99):,.0f}** ({min(p99):,.0f}–{max(p99):,.0f}) | "
                f"{p999(rs)} | {fmt_pct(max(loss(r) for r in rs))} (max) | "
                f"{sum(r['retransmissions'] for r in rs)} | {sum(r['server_udp_kernel_drops'] for r in rs)} | "
                f"{sum(r['host_udp_rcvbuf_errors'] for r in rs)} | {med([r['server_cpu_pct'] for r in rs]):.0f} | "
                f"{med([r['generator_cpu_pct'] for r in rs]):.0f} | {f'**{ratio:.2f}**' if ratio is not None else '–'} |")
    out += ["", "**Sweep: offered rate as a share of Kamailio's maximum, one run each**", "",
            "| case | % of max | offered/s | system | answered/s | unanswered % | rtx | server UDP drops | host UDP drops | "
            "p99 µs | p99.9 µs | server CPU % | other on its core % | generator % |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    verdict_loss = []
    for c in cases:
        sw = [r for r in runs if ok(r) and r["bench_case"] == c and r["phase"] == "sweep"]
        for pct in sorted({r["pct_of_max"] for r in sw}):
            for s in SYSTEMS:
                for r in [r for r in sw if r["pct_of_max"] == pct and r["system"] == s]:
                    out.append(
                        f"| {TEXT[c]} | {pct:.0f} | {r['offered_per_s']:,.0f} | {s} | {r['answered_per_s']:,.0f} | "
                        f"{'**' if loss(r) >= LOSS_TARGET_PCT else ''}{fmt_pct(loss(r))}{'**' if loss(r) >= LOSS_TARGET_PCT else ''} | "
                        f"{r['retransmissions']} | {r['server_udp_kernel_drops']} | {r['host_udp_rcvbuf_errors']} | "
                        f"{r['lat_p99_us']:,} | {p999([r])} | {r['server_cpu_pct']:.0f} | {r['other_on_server_core_pct']:.0f} | "
                        f"{r['generator_cpu_pct']:.0f}{' (bound)' if r['generator_bound'] else ''} |")
        for s in SYSTEMS:
            rs = sorted((r for r in runs if ok(r) and r["bench_case"] == c and r["system"] == s and r["phase"] in ("sweep", "at80")),
                        key=lambda r: r["offered_per_s"])
            if not rs:
                continue
            clean = [r["offered_per_s"] for r in rs if loss(r) < LOSS_TARGET_PCT]
            below = [r for r in rs if core_busy(r) < SATURATED_CPU_PCT and not r["generator_bound"]]
            bad = [r for r in below if loss(r) >= LOSS_TARGET_PCT]
            verdict_loss.append((c, s, max(clean) if clean else 0, bad, len(below)))
    out += ["", "**The targets**", ""]
    for c, s, ratio in verdict_p99:
        out.append(f"- {TEXT[c]}, {s}: p99 at 80% of Kamailio's maximum = **{ratio:.2f}×** Kamailio's: "
                   f"{'met' if ratio <= 1 else 'not met'}.")
    for c, s, best, bad, n in verdict_loss:
        if s == "kamailio":
            out.append(f"- {TEXT[c]}, kamailio: highest offered rate with < {LOSS_TARGET_PCT}% unanswered: {best:,.0f}/s.")
            continue
        line = (f"- {TEXT[c]}, {s}: highest offered rate with < {LOSS_TARGET_PCT}% unanswered: {best:,.0f}/s; runs below "
                f"saturation (server's core < {SATURATED_CPU_PCT:.0f}% busy, generator not bound): {n}, of which with ≥ "
                f"{LOSS_TARGET_PCT}% unanswered: {len(bad)}")
        line += (" — **not met**: " + ", ".join(f"{r['offered_per_s']:,.0f}/s at {r['server_cpu_pct']:.0f}% server CPU: "
                                                 f"{fmt_pct(loss(r))}%" for r in bad)) if bad else (
            " — met." if n else " — **not judged**: no run had the core below saturation (other load on it).")
        out.append(line)
    bound = [r for r in runs if ok(r) and r["generator_bound"]]
    failed = [r for r in runs if not ok(r)]
    others = [r["other_on_server_core_pct"] for r in runs if ok(r)]
    las = [r["loadavg"] for r in runs if ok(r)]
    out += ["", f"Runs: {len(runs)}, failed to start: {len(failed)}, generator-bound: {len(bound)}"
            + (f"; other load on the server's core: median {med(others):.0f}%, max {max(others):.0f}%; load average "
               f"{min(las):.1f}–{max(las):.1f}." if others else ".")]
    for r in failed:
        out.append(f"  {r['label']}: {r['failed']}")
    return out


def plots(runs, svg_dir, prefix="latency-p99-"):
    names = []
    for c in CASES:
        rs = [r for r in runs if ok(r) and r["bench_case"] == c and r["phase"] == "sweep"]
        if not rs:
            continue
        series = []
        for s in SYSTEMS:
            pts = [(r["offered_per_s"], r["lat_p99_us"],
                    f"{s} {r['pct_of_max']:.0f}% ({r['offered_per_s']:,.0f}/s): p99 {r['lat_p99_us']:,} µs, "
                    f"unanswered {fmt_pct(loss(r))}%, CPU {r['server_cpu_pct']:.0f}%") for r in rs if r["system"] == s]
            if pts:
                series.append((s, pts))
        name = f"{prefix}{c}.svg"
        cr.svg_lines(f"p99 latency vs offered rate: {TEXT[c]} (one core)", "offered per second",
                     "p99 µs (log)", series, os.path.join(svg_dir, name))
        names.append((c, name))
    return names


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+")
    ap.add_argument("--table", action="store_true")
    ap.add_argument("--markdown")
    ap.add_argument("--svg-dir")
    ap.add_argument("--doc", help="docs/benchmarks.md: fill the block between the latency markers")
    ap.add_argument("--about", help="the run's about.txt, quoted in the doc block")
    a = ap.parse_args()
    runs = cr.load(a.results)
    md = tables(runs)
    svgs = plots(runs, a.svg_dir) if a.svg_dir else []
    if a.table:
        print("\n".join(md))
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write("\n".join(md) + "\n")
    if a.doc:
        doc = open(a.doc).read()
        if BEGIN not in doc or END not in doc:
            sys.exit(f"latency-report: {a.doc} has no {BEGIN} ... {END} block to fill")
        about = open(a.about).read().strip().splitlines() if a.about else []
        rel = os.path.relpath(a.svg_dir, os.path.dirname(os.path.abspath(a.doc)))
        block = [BEGIN, "_Generated by `lab/bench/latency.sh` (via `lab/bench/compare.sh`)._", "", "```"] + about + ["```", ""]
        block += [f"![p99 vs offered rate, {TEXT[c]}]({rel}/{n})" for c, n in svgs] + [""] + md + [END]
        head, rest = doc.split(BEGIN, 1)
        with open(a.doc, "w") as f:
            f.write(head + "\n".join(block) + rest.split(END, 1)[1])
        print(f"latency-report: {a.doc} updated")


if __name__ == "__main__":
    sys.exit(main())
