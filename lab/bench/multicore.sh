#!/usr/bin/env bash
# Multi-core relay: does `[proxy] workers = 2` on 2 cores do the work of 2 × one core?
# UAC `sipload --scenario call` → sipwire relay (stateful, record-routing) → UAS `sipload serve`,
# UDP→UDP and TLS→TLS, each measured with
#   1w: `[proxy] workers = 1`, the relay pinned to CPU 0, UAC and UAS pinned to CPU 1;
#   2w: `[proxy] workers = 2`, the relay on CPUs 0 and 1, UAC and UAS on CPUs 0 and 1 too.
# Each is run at saturation (closed loop) and at one open-loop offered rate (default: 60% of
# the 1w saturation rate of that case, measured first in the same run).
#
# Usage: lab/bench/multicore.sh [options] /path/to/sipwire
#   --cases L      comma-separated subset of udp-udp,tls-tls (both)
#   --rate R       open-loop calls/s (default: 60% of the 1w saturation rate of each case)
#   --rounds R     rounds, each runs every case, both worker counts, both paces (1)
#   --duration S   measured seconds per run (5)      --warmup S   warm-up seconds (1)
#   --udp-flows N  UAC UDP sockets (8; SO_REUSEPORT spreads peers by address and port)
#   --udp-window N calls outstanding per UDP socket at saturation (8)
#   --tls-flows N  UAC TLS connections, one call outstanding each at saturation (64)
#   --out DIR      raw results and logs (default: a new /tmp/multicore.* dir)
# Environment: SIPLOAD=/path/to/sipload (default: the release build in CARGO_TARGET_DIR).
#
# What this machine (2 CPUs) can and cannot show: in 2w the generator (UAC + UAS) shares the
# relay's two cores, so the 2w saturation rate is NOT the rate of 2 dedicated cores: the
# generator takes a share of them. What it does show is the relay's CPU per call with 2
# cores and 2 workers against 1 and 1: if each call costs about as much CPU in 2w as in 1w
# (efficiency = 1w µs/call ÷ 2w µs/call ≥ 0.8), the second core is not eaten by contention
# (locks, cache lines, wake-ups), and N dedicated cores would give ≥ 0.8·N of one core's
# rate as long as the work spreads (the per-shard counters say whether it does). The
# throughput ratio is printed as measured, together with the relay's and the generator's
# share of the 2 cores. Only 127.0.0.1; every wait is bounded.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=lab/bench/bench-lib.sh
. "$root/lab/bench/bench-lib.sh"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
cases="udp-udp,tls-tls" rate="" rounds=1 duration=5 warmup=1 udp_flows=8 udp_window=8 tls_flows=64 out=""
sipwire=""
proxy_port=15270 proxy_tls_port=15271 uas_port=15280 prom_port=15290

die() { echo "multicore: $*" >&2; exit 1; }
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit "${1:-0}"; }

while (($#)); do
    case "$1" in
        --cases) cases="$2"; shift ;;
        --rate) rate="$2"; shift ;;
        --rounds) rounds="$2"; shift ;;
        --duration) duration="$2"; shift ;;
        --warmup) warmup="$2"; shift ;;
        --udp-flows) udp_flows="$2"; shift ;;
        --udp-window) udp_window="$2"; shift ;;
        --tls-flows) tls_flows="$2"; shift ;;
        --out) out="$2"; shift ;;
        -h | --help) usage 0 ;;
        -*) echo "multicore: unknown option $1" >&2; usage 2 ;;
        *) [[ -z "$sipwire" ]] || die "one sipwire binary only"; sipwire="$1" ;;
    esac
    shift
done
[[ -n "$sipwire" && -x "$sipwire" ]] || usage 2
[[ "$(nproc)" -ge 2 ]] || die "needs 2 CPUs (CPU 0 and 1)"
[[ "$rounds" =~ ^[1-9][0-9]?$ ]] || die "--rounds must be 1..99"
[[ -z "$rate" || "$rate" =~ ^[1-9][0-9]*$ ]] || die "--rate must be calls/s"
[[ "$duration" =~ ^[0-9]+(\.[0-9]+)?$ && "$warmup" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--duration and --warmup are seconds"
for n in "$udp_flows" "$udp_window" "$tls_flows"; do [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "flows and windows are counts"; done
IFS=, read -r -a case_list <<<"$cases"
for c in "${case_list[@]}"; do
    [[ "$c" =~ ^(udp-udp|tls-tls)$ ]] || die "unknown case $c"
done

require_ports_free "$proxy_port" "$proxy_tls_port" "$uas_port" "$prom_port" || exit 1
SIPLOAD="${SIPLOAD:-$target_dir/release/sipload}"
[[ -x "$SIPLOAD" ]] || die "no sipload at $SIPLOAD (cargo build --release -p sipload)"

out="${out:-$(mktemp -d /tmp/multicore.XXXXXX)}"
mkdir -p "$out"
results="$out/results.jsonl"
: >"$results"
tls="$out/tls"
bench_make_tls "$tls"

# The relay's configuration: $1 workers, $2 the outbound transport, into file $3.
sipwire_config() {
    bench_relay_config "$3" "$2" "" "$(printf '%s\n' '[proxy]' "workers = $1" '' '[metrics]' "prometheus = \"127.0.0.1:$prom_port\"")"
}

relay_pid="" uas_pid=""
stop_all() {
    if [[ -n "$relay_pid" ]]; then
        stop_group "$relay_pid"
        relay_pid=""
    fi
    if [[ -n "$uas_pid" ]]; then
        kill -TERM "$uas_pid" 2>/dev/null || true
        wait "$uas_pid" 2>/dev/null || true
        uas_pid=""
    fi
    await_ports_free "$proxy_port" "$proxy_tls_port" "$uas_port" "$prom_port" || echo "multicore: ports still bound after 10 s" >&2
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# UAC arguments for case $1.
uac_args() {
    local outb="${1#*-}" param=""
    [[ "$outb" != udp ]] && param=";transport=$outb"
    case "${1%-*}" in
        udp) echo "--transport udp --target 127.0.0.1:$proxy_port" ;;
        tls) echo "--transport tls --tls-version 1.3 --ca $tls/ca.pem --server-name localhost --target 127.0.0.1:$proxy_tls_port" ;;
    esac
    echo "--scenario call --uri sip:uas@127.0.0.1:$uas_port$param"
}

# Starts the UAS for case $1 on CPUs $2 (log name $3): bench_start_uas on those CPUs.
start_uas() {
    load_core="$2" bench_start_uas "${1#*-}" "$out/$3.uas" "$3"
}

# Starts the relay with $1 workers for case $2 on CPUs $3 (run name $4); at most 10 s until
# it is ready and 10 s until a call goes through.
start_relay() {
    local workers="$1" case="$2" cpus="$3" run="$4" log="$out/$4.log"
    sipwire_config "$workers" "${case#*-}" "$out/$run.toml"
    bench_start_sipwire "$sipwire" "$cpus" "$out/$run.state" "$log" "the relay ($run)" --config "$out/$run.toml"
    relay_pid=$cur_pid
    # shellcheck disable=SC2046
    bench_await_answer 10 0.3 1000 1000 $(uac_args "$case") && return 0
    tail -5 "$log" >&2
    die "calls do not go through the relay ($run)"
}

# The per-shard message counters of the running relay, e.g. "0:51234 1:50877".
shard_counts() {
    timeout 5 curl -s "http://127.0.0.1:$prom_port/metrics" 2>/dev/null |
        awk -F'[{}" ]+' '/^sipwire_proxy_shard_messages_total\{/ { printf "%s%s:%s", sep, $3, $4; sep = " " }' || true
}

# One run: case $1, workers $2, pace $3 (sat|open), open-loop rate $4, round $5.
run_one() {
    local case="$1" workers="$2" pace="$3" r="$4" rnd="$5" relay_cpus gen_cpus run j pace_args=()
    if [[ "$workers" == 1 ]]; then relay_cpus=0 gen_cpus=1; else relay_cpus=0,1 gen_cpus=0,1; fi
    run="r$rnd-$case-${workers}w-$pace"
    start_uas "$case" "$gen_cpus" "$run"
    start_relay "$workers" "$case" "$relay_cpus" "$run"
    if [[ "$pace" == open ]]; then
        if [[ "${case%-*}" == udp ]]; then pace_args=(--flows "$udp_flows"); else pace_args=(--flows "$tls_flows"); fi
        pace_args+=(--mode open --rate "$r")
    elif [[ "${case%-*}" == udp ]]; then
        pace_args=(--flows "$udp_flows" --window "$udp_window")
    else
        pace_args=(--flows "$tls_flows" --window 1)
    fi
    local uas0 t0 uas1 t1 uas_pct
    uas0="$(proc_ticks "$uas_pid")" t0="$(date +%s.%N)"
    # shellcheck disable=SC2046
    j="$(timeout $((${warmup%.*} + ${duration%.*} + 90)) taskset -c "$gen_cpus" "$SIPLOAD" $(uac_args "$case") \
        "${pace_args[@]}" --warmup "$warmup" --duration "$duration" --server-pid "$relay_pid" \
        --label "$run" 2>>"$out/$run.log")" || { stop_all; die "sipload failed on $run (log $out/$run.log)"; }
    uas1="$(proc_ticks "$uas_pid")" t1="$(date +%s.%N)"
    uas_pct="$(jiffies_pct "$((uas1 - uas0))" "$t0" "$t1")"
    local shards
    shards="$(shard_counts)"
    stop_all
    python3 - "$j" "$case" "$workers" "$pace" "$rnd" "$uas_pct" "$shards" "$(cut -d' ' -f1 /proc/loadavg)" >>"$results" <<'EOF'
import json, sys
d = json.loads(sys.argv[1])
case, workers, pace, rnd, uas_pct, shards, la = sys.argv[2:]
d.update(bench_case=case, workers=int(workers), pace=pace, round=int(rnd),
         uas_cpu_pct=float(uas_pct), loadavg=float(la),
         shard_messages={k: int(v) for k, v in (s.split(":") for s in shards.split()) if v.isdigit()})
# Cores the relay used over the measured window.
d["relay_cores"] = (d["server_cpu_s"] or 0) / d["measured_s"] if d.get("measured_s") else None
print(json.dumps(d))
EOF
    python3 - "$(tail -1 "$results")" <<'EOF'
import json, sys
d = json.loads(sys.argv[1])
lost = d["unanswered"] + d["non_200"]
sh = " ".join(f"{k}:{v}" for k, v in sorted(d["shard_messages"].items()))
print(f'{d["round"]:<5} {d["bench_case"]:<8} {d["workers"]:>2}w {d["pace"]:<5} {d["offered_per_s"] or 0:>8.0f} {d["answered_per_s"]:>8.0f} '
      f'{d["server_cpu_us_per_req"] or 0:>8.2f} {d["relay_cores"] or 0:>6.2f} {d["tool_cpu_util"] or 0:>5.2f}+{d["uas_cpu_pct"] / 100:<4.2f} '
      f'{lost:>6} {d["lat_p99_us"]:>8}  {sh}')
EOF
}

echo "multicore: $sipwire; cases ${case_list[*]}; $rounds round(s) of ${warmup}+${duration} s; saturation: UDP $udp_flows sockets × $udp_window calls, TLS $tls_flows connections × 1 call; results in $out"
echo "multicore: load average at start $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs; kernel $(uname -r)"
echo "multicore: 1w = relay on CPU 0, generator on CPU 1; 2w = relay AND generator on CPUs 0,1 (shared)"
printf '%-5s %-8s %3s %-5s %8s %8s %8s %6s %10s %6s %8s  %s\n' round case wrk pace "offer/s" "calls/s" "µs/call" "relay" "gen(uac+uas)" lost "p99 µs" "messages per shard"
for ((rnd = 1; rnd <= rounds; rnd++)); do
    for c in "${case_list[@]}"; do
        run_one "$c" 1 sat 0 "$rnd"
        run_one "$c" 2 sat 0 "$rnd"
        r="$rate"
        if [[ -z "$r" ]]; then
            r="$(python3 - "$results" "$c" "$rnd" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
sat = [d for d in rows if d["bench_case"] == sys.argv[2] and d["round"] == int(sys.argv[3]) and d["workers"] == 1 and d["pace"] == "sat"]
print(max(100, int(0.6 * sat[-1]["answered_per_s"])))
EOF
)"
        fi
        run_one "$c" 1 open "$r" "$rnd"
        run_one "$c" 2 open "$r" "$rnd"
    done
done

echo
python3 - "$results" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(case, workers, pace, key):
    v = [d[key] for d in rows if d["bench_case"] == case and d["workers"] == workers and d["pace"] == pace and d.get(key) is not None]
    return statistics.median(v) if v else None
print("Summary (medians over rounds). cpu ratio = 2w µs/call ÷ 1w µs/call; efficiency = its inverse")
print("(≥ 0.8: a second core and worker add at least 0.8 of a core's worth of calls, contention costs ≤ 25%).")
print(f'{"case":<8} {"pace":<5} {"1w calls/s":>10} {"2w calls/s":>10} {"thr ratio":>9} {"1w µs/call":>10} {"2w µs/call":>10} {"cpu ratio":>9} {"efficiency":>10} {"2w relay cores":>14}')
for case in dict.fromkeys(d["bench_case"] for d in rows):
    for pace in ("sat", "open"):
        a1, a2 = med(case, 1, pace, "answered_per_s"), med(case, 2, pace, "answered_per_s")
        c1, c2 = med(case, 1, pace, "server_cpu_us_per_req"), med(case, 2, pace, "server_cpu_us_per_req")
        rc = med(case, 2, pace, "relay_cores")
        if None in (a1, a2, c1, c2) or not c1 or not a1:
            continue
        print(f'{case:<8} {pace:<5} {a1:>10.0f} {a2:>10.0f} {a2 / a1:>9.2f} {c1:>10.2f} {c2:>10.2f} {c2 / c1:>9.2f} {c1 / c2:>10.2f} {rc or 0:>14.2f}')
print()
print("Reading: with 2 CPUs the generator shares the relay's cores in 2w, so the 2w saturation rate")
print("(thr ratio) is bounded by what the generator leaves over and does not measure 2 dedicated cores;")
print("the efficiency (CPU per call, 1w ÷ 2w) does: ≥ 0.8 means N workers on N dedicated cores should")
print("reach ≥ 0.8·N of one core's rate, provided the work spreads over the shards (last column above).")
EOF
echo "raw results: $results"
