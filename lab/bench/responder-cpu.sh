#!/usr/bin/env bash
# OPTIONS responder: server CPU per request of one or more sipwire builds and Kamailio 5.6,
# over UDP, TCP, TLS 1.3 and TLS 1.2, measured with tools/sipload (closed loop by default).
#
# Usage: lab/bench/responder-cpu.sh [options] SYSTEM...
#   SYSTEM         NAME=/path/to/sipwire   a sipwire binary, run as `sipwire run` (embedded
#                                          default config, state dir = a fresh temp dir)
#                  kamailio                Kamailio with its TLSF allocator (-x tlsf -X tlsf)
#                  kamailio-default        Kamailio with its default allocator
#   --install      lab/install-deps.sh --bench-only first (Kamailio with TLS; root)
#   --rounds R     rounds; each runs every transport on every system, order rotated (3)
#   --duration S   measured seconds per run (5)      --warmup S   warm-up seconds (1)
#   --flows N      TCP/TLS connections (50)          --udp-window N   outstanding on UDP (50)
#   --transports L comma-separated subset of udp,tcp,tls13,tls12 (all)
#   --rate R       open loop at R requests/s in total instead (same flow counts; the same load
#                  for every system, as long as each keeps up)
#   --out DIR      where raw results and logs go (default: a new /tmp/responder-cpu.* dir)
#   --summarize F… only print the summary of earlier results files (pooled; the first
#                  system seen is the reference)
# Environment: SIPLOAD=/path/to/sipload skips building it; SERVER_CORE / LOAD_CORE (0 / 1).
#
# Each run: start the system pinned to SERVER_CORE, wait until it answers OPTIONS on the
# transport, run sipload pinned to LOAD_CORE, stop the system. sipload samples the server's
# utime+stime (/proc/PID/stat, every Kamailio process) at the edges of the measured window,
# so "CPU µs/req" = server CPU time in the window ÷ responses to requests sent in it.
# Only 127.0.0.1 is used; every wait is bounded.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=lab/bench/bench-lib.sh
. "$root/lab/bench/bench-lib.sh"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
server_core="${SERVER_CORE:-0}"
load_core="${LOAD_CORE:-1}"
rounds=3 duration=5 warmup=1 flows=50 udp_window=50 transports="udp,tcp,tls13,tls12" out="" install=0 rate=""
systems=()

die() { echo "responder-cpu: $*" >&2; exit 1; }
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit "${1:-0}"; }

# Medians per transport and system over every run in the given results files (JSON lines
# written by this script): summarize FILE... -- [SYSTEM...]
summarize() {
python3 - "$@" <<'EOF'
import json, statistics, sys
args = sys.argv[1:]
cut = args.index("--")
paths, names = args[:cut], args[cut + 1:]
runs = [json.loads(l) for p in paths for l in open(p) if l.strip()]
# Without names (--summarize), systems in order of first appearance; the first is the reference.
names = names or list(dict.fromkeys(r["system"] for r in runs))
transports = [t for t in ("udp", "tcp", "tls13", "tls12") if any(r["bench_transport"] == t for r in runs)]
kam = next((n for n in ("kamailio", "kamailio-default") if n in names), None)
med = statistics.median
print("Medians over rounds (spread = (max - min) / median of the CPU per request).")
print("Ratio = CPU per request of the system / that of the reference (below 1: cheaper).")
print("other % = CPU time of other processes (and steal) on the server's core during the run.")
head = f"| transport | system | answered/s | server CPU µs/req | min–max | spread | p50 µs | p99 µs | other % | × {names[0]}"
head += f" | × {kam} |" if kam else " |"
print(head)
print("|" + "---|" * (head.count("|") - 1))
for t in transports:
    sel = {n: [r for r in runs if r["bench_transport"] == t and r["system"] == n and r["server_cpu_us_per_req"]]
           for n in names}
    cpu = {n: med([r["server_cpu_us_per_req"] for r in rs]) for n, rs in sel.items() if rs}
    for n in names:
        rs = sel[n]
        if not rs:
            continue
        c = [r["server_cpu_us_per_req"] for r in rs]
        row = (f'| {t} | {n} | {med([r["answered_per_s"] for r in rs]):,.0f} | {cpu[n]:.2f} | '
               f'{min(c):.2f}–{max(c):.2f} | {100 * (max(c) - min(c)) / cpu[n]:.0f}% | {med([r["lat_p50_us"] for r in rs]):.0f} | '
               f'{med([r["lat_p99_us"] for r in rs]):.0f} | {med([r["other_on_server_core_pct"] for r in rs]):.0f} | ')
        row += f'{cpu[n] / cpu[names[0]]:.2f} |' if names[0] in cpu else "– |"
        if kam:
            row += f' {cpu[n] / cpu[kam]:.2f} |' if kam in cpu else " – |"
        print(row)
bad = [r for r in runs if r["unanswered"] or r["non_200"] or r["io_errors"] or r["duplicates"]]
bound = [r for r in runs if r["generator_bound"]]
print()
print(f"runs: {len(runs)}; with losses, non-200, I/O errors or duplicates: {len(bad)}; generator-bound: {len(bound)}")
for r in bad:
    print(f'  {r["label"]}: unanswered {r["unanswered"]}, non-200 {r["non_200"]}, io_errors {r["io_errors"]}, duplicates {r["duplicates"]}')
others = [r["other_on_server_core_pct"] for r in runs]
print(f"other load on the server's core during runs (other processes, steal): median {med(others):.0f}%, max {max(others):.0f}%;"
      f" load average {min(r['loadavg'] for r in runs):.1f}..{max(r['loadavg'] for r in runs):.1f}")
EOF
}

while (($#)); do
    case "$1" in
        --install) install=1 ;;
        --rounds) rounds="$2"; shift ;;
        --duration) duration="$2"; shift ;;
        --warmup) warmup="$2"; shift ;;
        --flows) flows="$2"; shift ;;
        --udp-window) udp_window="$2"; shift ;;
        --transports) transports="$2"; shift ;;
        --rate) rate="$2"; shift ;;
        --summarize) shift; summarize "$@" --; exit ;;
        --out) out="$2"; shift ;;
        -h | --help) usage 0 ;;
        kamailio | kamailio-default) systems+=("$1") ;;
        *=*) systems+=("$1") ;;
        *) echo "responder-cpu: unknown argument $1" >&2; usage 2 ;;
    esac
    shift
done
((${#systems[@]})) || usage 2
[[ "$rounds" =~ ^[1-9][0-9]?$ ]] || die "--rounds must be 1..99"
[[ "$duration" =~ ^[0-9]+(\.[0-9]+)?$ && "$warmup" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--duration and --warmup are seconds"
[[ -z "$rate" || "$rate" =~ ^[1-9][0-9]*$ ]] || die "--rate must be a whole number of requests/s"
IFS=, read -r -a transport_list <<<"$transports"
for t in "${transport_list[@]}"; do
    [[ "$t" =~ ^(udp|tcp|tls13|tls12)$ ]] || die "unknown transport $t"
done

if ((install)); then
    [[ $(id -u) == 0 ]] || die "--install needs root"
    "$root/lab/install-deps.sh" --bench-only
fi

# The systems: name → how to start it.
bench_parse_systems "try --install" "${systems[@]}"

require_ports_free 5060 5061 || exit 1

if [[ -z "${SIPLOAD:-}" ]]; then
    (cd "$root" && cargo build --release -p sipload)
    SIPLOAD="$target_dir/release/sipload"
fi
[[ -x "$SIPLOAD" ]] || die "no sipload at $SIPLOAD"

out="${out:-$(mktemp -d /tmp/responder-cpu.XXXXXX)}"
mkdir -p "$out"
results="$out/results.jsonl"
: >"$results"

# Kamailio's TLS material (bench-lib.sh).
kam="$out/kamailio"
if [[ " ${names[*]} " == *" kamailio"* ]]; then
    bench_make_tls "$kam"
fi

# The running system: its main pid, every pid whose CPU counts, the CA to trust.
cur_pid="" cur_pids=() cur_ca=""

stop_system() {
    [[ -n "$cur_pid" ]] || return 0
    # Kamailio runs in its own process group (setsid): its forked workers go with it.
    stop_group "$cur_pid"
    await_ports_free 5060 5061 || echo "responder-cpu: ports 5060/5061 still bound after 10 s" >&2
    cur_pid="" cur_pids=() cur_ca=""
}
trap stop_system EXIT
trap 'exit 130' INT TERM

# sipload arguments for a transport (without pacing and duration).
transport_args() {
    case "$1" in
        udp) echo "--transport udp" ;;
        tcp) echo "--transport tcp" ;;
        tls13) echo "--transport tls --tls-version 1.3 --ca $cur_ca --server-name localhost" ;;
        tls12) echo "--transport tls --tls-version 1.2 --ca $cur_ca --server-name localhost" ;;
    esac
}


# Waits until the system answers OPTIONS on transport $1 (bench_await_answer).
await_answers() {
    # shellcheck disable=SC2046
    bench_await_answer 5 0.2 200 500 $(transport_args "$1")
}

# Starts system $1 for run $2 (a name for its logs and state) and waits for it to answer on
# transport $3.
start_system() {
    local name="$1" run="$2" transport="$3" log="$out/$2.log"
    case "${sys_kind[$name]}" in
        sipwire)
            local state="$out/$run.state"
            bench_start_sipwire "${sys_bin[$name]}" "$server_core" "$state" "$log" "$name"
            cur_pids=("$cur_pid") cur_ca="$state/dev-ca/ca.pem"
            ;;
        kamailio | kamailio-default)
            local alloc=()
            [[ "${sys_kind[$name]}" == kamailio ]] && alloc=(-x tlsf -X tlsf)
            setsid taskset -c "$server_core" "${sys_bin[$name]}" -f "$root/lab/bench/kamailio-options.cfg" -DD -E \
                "${alloc[@]}" -m 256 -M 16 -A "TLS_CFG=\"$kam/tls.cfg\"" >"$log" 2>&1 &
            cur_pid=$! cur_pids=("$cur_pid") cur_ca="$kam/ca.pem"
            ;;
    esac
    await_answers "$transport" || { tail -20 "$log" >&2; die "$name does not answer OPTIONS over $transport (log $log)"; }
    if [[ "${sys_kind[$name]}" != sipwire ]]; then
        # Every Kamailio process (workers, TCP main, timers) is forked by now.
        mapfile -t children < <(ps -o pid= --ppid "$cur_pid" | tr -d ' ')
        cur_pids=("$cur_pid" "${children[@]}")
    fi
}


echo "responder-cpu: ${names[*]}; transports ${transport_list[*]}; $rounds rounds of ${warmup}+${duration} s;" \
    "$([[ -n "$rate" ]] && echo "open loop at $rate/s" || echo "closed loop, $flows TCP/TLS flows, $udp_window outstanding on UDP");" \
    "server on CPU $server_core, sipload on CPU $load_core; results in $out"
echo "responder-cpu: load average at start $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs; kernel $(uname -r)"
printf '%-5s %-6s %-18s %10s %9s %8s %8s %6s %6s %8s\n' round trans system "answered/s" "µs/req" "p50 µs" "p99 µs" lost gen "other%"
for ((r = 1; r <= rounds; r++)); do
    for t in "${transport_list[@]}"; do
        # Rotate the order of the systems every round so that none always runs first.
        n=${#names[@]}
        for ((k = 0; k < n; k++)); do
            name="${names[$(((k + r - 1) % n))]}"
            run="r$r-$t-$name"
            start_system "$name" "$run" "$t"
            if [[ -n "$rate" ]]; then
                pace=(--mode open --rate "$rate" --flows "$([[ "$t" == udp ]] && echo 1 || echo "$flows")")
            elif [[ "$t" == udp ]]; then
                pace=(--flows 1 --window "$udp_window")
            else
                pace=(--flows "$flows" --window 1)
            fi
            pid_args=()
            for p in "${cur_pids[@]}"; do pid_args+=(--server-pid "$p"); done
            busy0="$(cpu_busy "$server_core")" ticks0="$(proc_ticks "${cur_pids[@]}")" t0="$(date +%s.%N)"
            # shellcheck disable=SC2046
            j="$(timeout $((${warmup%.*} + ${duration%.*} + 60)) taskset -c "$load_core" "$SIPLOAD" $(transport_args "$t") \
                "${pace[@]}" --warmup "$warmup" --duration "$duration" --timeout-ms 2000 "${pid_args[@]}" \
                --label "$run" 2>>"$out/$run.log")" || { stop_system; die "sipload failed on $run (log $out/$run.log)"; }
            busy1="$(cpu_busy "$server_core")" ticks1="$(proc_ticks "${cur_pids[@]}")" t1="$(date +%s.%N)"
            stop_system
            # What else ran on the server's core during the run (other engineers' builds).
            other="$(jiffies_pct "$((busy1 - busy0 - (ticks1 - ticks0)))" "$t0" "$t1")"
            j="$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d.update(system=sys.argv[2], bench_transport=sys.argv[3], round=int(sys.argv[4]), other_on_server_core_pct=float(sys.argv[5]), loadavg=float(sys.argv[6])); print(json.dumps(d))' \
                "$j" "$name" "$t" "$r" "$other" "$(cut -d' ' -f1 /proc/loadavg)")"
            echo "$j" >>"$results"
            python3 - "$j" <<'EOF'
import json, sys
d = json.loads(sys.argv[1])
lost = d["unanswered"] + d["non_200"]
print(f'{d["round"]:<5} {d["bench_transport"]:<6} {d["system"]:<18} {d["answered_per_s"]:>10.0f} '
      f'{d["server_cpu_us_per_req"] or 0:>9.2f} {d["lat_p50_us"]:>8} {d["lat_p99_us"]:>8} {lost:>6} '
      f'{"BOUND" if d["generator_bound"] else "ok":>6} {d["other_on_server_core_pct"]:>8.0f}')
EOF
        done
    done
done

echo
summarize "$results" -- "${names[@]}"
echo "raw results: $results"
