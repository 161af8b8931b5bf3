#!/usr/bin/env bash
# Latency at 80% of Kamailio's maximum rate, and losses below saturation: the issue-13 targets
# "p99 latency at most Kamailio's at 80% of Kamailio's maximum rate" and "no request left
# unanswered (< 0.1%) at any offered rate below sipwire's CPU saturation", measured for the
# OPTIONS responder (UDP, TCP, TLS 1.3) and the stateful relay (UDP→UDP, TLS→TLS).
#
# Usage: lab/bench/latency.sh [options] --sipwire BIN
#   --sipwire BIN    the sipwire binary under test
#   --cases L        comma-separated subset of udp,tcp,tls13,relay-udp-udp,relay-tls-tls (all)
#   --rounds R       rounds of the maximum and of the 80% comparison (3)
#   --duration S     measured seconds per run (5)      --warmup S   warm-up seconds (1)
#   --sweep L        offered rates of the sweep, % of Kamailio's maximum (20,40,60,80,100,120)
#   --udp-buffer B   the sized UDP receive buffer of "sipwire-rcvbuf" ([limits]
#                    udp_recv_buffer_bytes; 4194304); 0: no sized-buffer runs
#   --quick          1 round of 0.5+2 s, sweep 40,80,120 (a check; docs/ not touched)
#   --out DIR        raw results and logs (default: a new /tmp/latency.* dir)
#   --write-docs     write the tables and the SVGs into docs/ (a full run does unless --no-docs)
#   --no-docs        do not
#   --report-only D… redo the tables and plots from earlier results dirs of this script
# Environment: SIPLOAD (a built sipload, required), SERVER_CORE / LOAD_CORE (0 / 1).
#
# Per case: (1) Kamailio-tlsf's maximum: closed loop (as responder-cpu.sh / relay-cpu.sh:
# 50 outstanding on one UDP socket, or 50 TCP/TLS connections × 1), answered/s, median of the
# rounds; a run where the generator used ≥ 90% of its core says so. (2) Open loop at 80% of
# that against Kamailio-tlsf, sipwire (default buffers) and, on UDP, sipwire-rcvbuf, rounds
# alternated with the order rotated. (3) The sweep: open loop at each --sweep share of the
# maximum, every system once. Each run starts the system afresh pinned to SERVER_CORE; the
# generator (sipload, and `sipload serve` as the relay's UAS) runs on LOAD_CORE.
# Every run records sipload's report (p50/p99/p99.9, unanswered, retransmissions, server CPU),
# the kernel's drop count of the server's UDP socket (/proc/net/udp `drops`, the number sipwire
# exports as sipwire_transport_udp_kernel_drops_total, read for Kamailio too) and of every UDP
# socket on the host (/proc/net/snmp RcvbufErrors: the generator's drops show there).
# Only 127.0.0.1; every wait is bounded.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=lab/bench/bench-lib.sh
. "$root/lab/bench/bench-lib.sh"
server_core="${SERVER_CORE:-0}"
load_core="${LOAD_CORE:-1}"
rounds=3 duration=5 warmup=1 sweep="20,40,60,80,100,120" udp_buffer=4194304 quick=0 out="" docs="" sipwire=""
cases="udp,tcp,tls13,relay-udp-udp,relay-tls-tls" report_only=()
proxy_port=15070 proxy_tls_port=15071 uas_port=15080 metrics_port=19464

die() { echo "latency: $*" >&2; exit 1; }
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit "${1:-0}"; }

while (($#)); do
    case "$1" in
        --sipwire) sipwire="$2"; shift ;;
        --cases) cases="$2"; shift ;;
        --rounds) rounds="$2"; shift ;;
        --duration) duration="$2"; shift ;;
        --warmup) warmup="$2"; shift ;;
        --sweep) sweep="$2"; shift ;;
        --udp-buffer) udp_buffer="$2"; shift ;;
        --quick) quick=1 ;;
        --out) out="$2"; shift ;;
        --write-docs) docs=1 ;;
        --no-docs) docs=0 ;;
        --report-only) shift; report_only=("$@"); break ;;
        -h | --help) usage 0 ;;
        *) echo "latency: unknown argument $1" >&2; usage 2 ;;
    esac
    shift
done

report() {
    local files=() d
    for d in "$@"; do [[ -s "$d/results.jsonl" ]] && files+=("$d/results.jsonl"); done
    ((${#files[@]})) || die "no results in $*"
    local args=(--markdown "$1/tables.md" --svg-dir "$1" --table)
    [[ "$docs" == 1 ]] && args=(--markdown "$1/tables.md" --svg-dir "$root/docs/bench" --doc "$root/docs/benchmarks.md"
        --about "$1/about.txt" --table)
    python3 "$root/lab/bench/latency-report.py" "${args[@]}" "${files[@]}"
}
if ((${#report_only[@]})); then
    docs="${docs:-0}"
    report "${report_only[@]}"
    exit
fi

if ((quick)); then
    [[ "$rounds" == 3 ]] && rounds=1
    duration=2 warmup=0.5 sweep="40,80,120" docs="${docs:-0}"
fi
docs="${docs:-1}"
[[ "$rounds" =~ ^[1-9][0-9]?$ ]] || die "--rounds must be 1..99"
[[ "$duration" =~ ^[0-9]+(\.[0-9]+)?$ && "$warmup" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--duration and --warmup are seconds"
[[ "$udp_buffer" =~ ^[0-9]+$ ]] || die "--udp-buffer is bytes"
[[ "$sweep" =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--sweep is a list of percentages"
IFS=, read -r -a case_list <<<"$cases"
for c in "${case_list[@]}"; do
    [[ "$c" =~ ^(udp|tcp|tls13|relay-udp-udp|relay-tls-tls)$ ]] || die "unknown case $c"
done
IFS=, read -r -a sweep_list <<<"$sweep"
[[ -x "$sipwire" ]] || die "--sipwire BIN: no executable at '$sipwire'"
[[ -x "${SIPLOAD:-}" ]] || die "SIPLOAD must name a built sipload"
command -v kamailio >/dev/null || die "kamailio is not installed (lab/install-deps.sh --bench-only)"
bench_parse_systems "lab/install-deps.sh --bench-only" kamailio "sipwire=$sipwire"
# Our ports on 127.0.0.1 only (bench-lib's checks match any address: another bench on
# 127.0.10.1:5061 is no conflict). Status 0 when none listens.
all_ports=(5060 5061 "$proxy_port" "$proxy_tls_port" "$uas_port" "$metrics_port")
ports_filter() { local p f=""; for p in "${all_ports[@]}"; do f+="${f:+ or }sport = :$p"; done; echo "( $f ) and src 127.0.0.1"; }
ports_free() { ! ss -Htlnu "$(ports_filter)" | grep -q .; }
await_our_ports_free() {
    local i
    for ((i = 0; i < 100; i++)); do ports_free && return 0; sleep 0.1; done
    return 1
}
ports_free || die "something already listens on 127.0.0.1 on one of ${all_ports[*]}: $(ss -Htlnup "$(ports_filter)" | head -2)"

out="${out:-$(mktemp -d /tmp/latency.XXXXXX)}"
mkdir -p "$out"
results="$out/results.jsonl"
: >"$results"
tls="$out/tls"
bench_make_tls "$tls"
{
    echo "date: $(date -u +%FT%TZ)"
    echo "sipwire: $sipwire ($(cd "$root" && git describe --always --dirty 2>/dev/null || echo unknown))"
    echo "kamailio: $(kamailio -v 2>/dev/null | head -1)"
    echo "kernel: $(uname -r); CPUs: $(nproc); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "net.core.rmem_default: $(cat /proc/sys/net/core/rmem_default); net.core.rmem_max: $(cat /proc/sys/net/core/rmem_max)"
    echo "rounds: $rounds; warm-up $warmup s; measured $duration s; sweep ${sweep}% of Kamailio's maximum; sized UDP buffer $udp_buffer"
} | tee "$out/about.txt"

is_relay() { [[ "$1" == relay-* ]]; }
is_udp() { [[ "$1" == udp || "$1" == relay-udp-udp ]]; }
server_udp_port() { if is_relay "$1"; then echo "$proxy_port"; else echo 5060; fi; }

# sipwire's configuration for system $1 (sipwire or sipwire-rcvbuf), case $2, into file $3:
# the embedded default's listeners (responder) or relay-cpu.sh's (relay, one stateful route to
# the UAS), the Prometheus exporter to read the drop counter at the end of the run.
sipwire_config() {
    local buf=""
    [[ "$1" == sipwire-rcvbuf ]] && buf="udp_recv_buffer_bytes = $udp_buffer"
    if is_relay "$2"; then
        local outb="${2##*-}"
        bench_relay_config "$3" "$outb"
    else
        # gateway/src/default.toml's listeners.
        cat >"$3" <<EOF
# Written by lab/bench/latency.sh.
[[listener]]
name = "udp"
transport = "udp"
addr = "127.0.0.1:5060"

[[listener]]
name = "tcp"
transport = "tcp"
addr = "127.0.0.1:5060"

[[listener]]
name = "sctp"
transport = "sctp"
addr = "127.0.0.1:5060"
optional = true

[[listener]]
name = "tls"
transport = "tls"
addr = "127.0.0.1:5061"
domain = "localhost"
client_cert = "optional"

[tls]
dev_ca = true
alpn = ["sip/2"]
alpn_policy = "offer"
EOF
    fi
    cat >>"$3" <<EOF

[limits]
max_message = 65535
idle_timeout_secs = 600
$buf

[metrics]
prometheus = "127.0.0.1:$metrics_port"
EOF
}

# sipload arguments for case $1 (without pacing and duration); $2: the CA to trust.
load_args() {
    case "$1" in
        udp) echo "--transport udp" ;;
        tcp) echo "--transport tcp" ;;
        tls13) echo "--transport tls --tls-version 1.3 --ca $2 --server-name localhost" ;;
        relay-udp-udp) echo "--transport udp --target 127.0.0.1:$proxy_port --scenario call --uri sip:uas@127.0.0.1:$uas_port" ;;
        relay-tls-tls) echo "--transport tls --tls-version 1.3 --ca $tls/ca.pem --server-name localhost --target 127.0.0.1:$proxy_tls_port --scenario call --uri sip:uas@127.0.0.1:$uas_port;transport=tls" ;;
    esac
}

cur_pid="" cur_pids=() cur_ca="" uas_pid=""
stop_all() {
    if [[ -n "$cur_pid" ]]; then
        stop_group "$cur_pid"
        cur_pid="" cur_pids=()
    fi
    if [[ -n "$uas_pid" ]]; then
        kill -TERM "$uas_pid" 2>/dev/null || true
        wait "$uas_pid" 2>/dev/null || true
        uas_pid=""
    fi
    await_our_ports_free || echo "latency: ports on 127.0.0.1 still bound after 10 s" >&2
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# Starts system $1 for case $2 (run $3) on SERVER_CORE and waits (at most 10 s) until it
# answers; fails (status 1, everything stopped) when it does not.
start_system() {
    local sys="$1" case="$2" run="$3" log="$out/$3.log"
    is_relay "$case" && bench_start_uas "${case##*-}" "$out/$run.uas" "$case"
    case "$sys" in
        sipwire | sipwire-rcvbuf)
            local state="$out/$run.state"
            sipwire_config "$sys" "$case" "$out/$run.toml"
            bench_start_sipwire "$sipwire" "$server_core" "$state" "$log" "$sys" --config "$out/$run.toml"
            cur_pids=("$cur_pid") cur_ca="$state/dev-ca/ca.pem"
            ;;
        kamailio)
            mkdir -p "$out/$run.run"
            if is_relay "$case"; then
                # As relay-cpu.sh: t_relay(), 4 GB of lazily mapped shared memory.
                setsid taskset -c "$server_core" kamailio -f "$root/lab/bench/kamailio-relay.cfg" -DD -E \
                    -Y "$out/$run.run" -P "$out/$run.run/kamailio.pid" -x tlsf -X tlsf -m 4096 -M 32 \
                    -A "TLS_CFG=\"$tls/tls.cfg\"" >"$log" 2>&1 &
            else
                setsid taskset -c "$server_core" kamailio -f "$root/lab/bench/kamailio-options.cfg" -DD -E \
                    -Y "$out/$run.run" -P "$out/$run.run/kamailio.pid" -x tlsf -X tlsf -m 256 -M 16 \
                    -A "TLS_CFG=\"$tls/tls.cfg\"" >"$log" 2>&1 &
            fi
            cur_pid=$! cur_pids=("$cur_pid") cur_ca="$tls/ca.pem"
            ;;
    esac
    # shellcheck disable=SC2046
    if bench_await_answer 10 0.3 1000 1000 $(load_args "$case" "$cur_ca"); then
        if [[ "$sys" == kamailio ]]; then
            mapfile -t children < <(ps -o pid= --ppid "$cur_pid" | tr -d ' ')
            cur_pids=("$cur_pid" "${children[@]}")
        fi
        return 0
    fi
    tail -5 "$log" >&2
    echo "latency: $sys does not answer on $case (log $log)" >&2
    stop_all
    return 1
}

# Kernel drops of the UDP sockets bound to local port $1 (/proc/net/udp, last column).
udp_drops() {
    local hex
    hex="$(printf '%04X' "$1")"
    awk -v p=":$hex" 'NR > 1 && substr($2, length($2) - 4) == p { d += $NF } END { print d + 0 }' /proc/net/udp
}
# Datagrams dropped for a full receive buffer on the whole host (every UDP socket).
rcvbuf_errors() { awk '$1 == "Udp:" && $2 ~ /^[0-9]/ { print $6 }' /proc/net/snmp; }

# sipwire's exported drop counter (its Prometheus exporter), summed over listeners; "" if none.
sipwire_metric_drops() {
    python3 - "$metrics_port" <<'EOF' 2>/dev/null || true
import sys, urllib.request
body = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=3).read().decode()
vals = [float(l.rsplit(" ", 1)[1]) for l in body.splitlines() if l.startswith("sipwire_transport_udp_kernel_drops_total")]
print(int(sum(vals)) if vals else "")
EOF
}

# One run: system $1, case $2, phase $3 (max | at80 | sweep), share of the maximum $4 (%, "" for
# max), rate $5 ("" for closed loop), round $6, Kamailio's maximum $7 ("" for max). Appends
# the JSON line to the results; status 1 when the system did not start.
measure() {
    local sys="$1" case="$2" phase="$3" pct="$4" rate="$5" rnd="$6" kmax="$7"
    local run="$phase-r$rnd-$case-${pct:+$pct-}$sys" pace pid_args=() p j metric=""
    if ! start_system "$sys" "$case" "$run"; then
        python3 -c 'import json,sys; s,c,ph,r,l=sys.argv[1:]; print(json.dumps(dict(label=l, system=s, bench_case=c, phase=ph, round=int(r), failed="no answer within 10 s")))' \
            "$sys" "$case" "$phase" "$rnd" "$run" >>"$results"
        return 1
    fi
    if [[ -z "$rate" ]]; then
        if is_udp "$case"; then pace=(--flows 1 --window 50); else pace=(--flows 50 --window 1); fi
    else
        if is_udp "$case"; then pace=(--mode open --rate "$rate" --flows 1); else pace=(--mode open --rate "$rate" --flows 50); fi
    fi
    for p in "${cur_pids[@]}"; do pid_args+=(--server-pid "$p"); done
    local sport drops0 snmp0 busy0 ticks0 lbusy0 uas0 t0 drops1 snmp1 busy1 ticks1 lbusy1 uas1 t1
    sport="$(server_udp_port "$case")"
    drops0="$(udp_drops "$sport")" snmp0="$(rcvbuf_errors)"
    busy0="$(cpu_busy "$server_core")" ticks0="$(proc_ticks "${cur_pids[@]}")"
    lbusy0="$(cpu_busy "$load_core")" uas0="$(proc_ticks $uas_pid)" t0="$(date +%s.%N)"
    # shellcheck disable=SC2046
    j="$(timeout $((${warmup%.*} + ${duration%.*} + 90)) taskset -c "$load_core" "$SIPLOAD" $(load_args "$case" "$cur_ca") \
        "${pace[@]}" --timeout-ms "$(if is_relay "$case"; then echo 4000; else echo 2000; fi)" \
        --warmup "$warmup" --duration "$duration" "${pid_args[@]}" --label "$run" 2>>"$out/$run.log")" ||
        { stop_all; die "sipload failed on $run (log $out/$run.log)"; }
    busy1="$(cpu_busy "$server_core")" ticks1="$(proc_ticks "${cur_pids[@]}")"
    lbusy1="$(cpu_busy "$load_core")" uas1="$(proc_ticks $uas_pid)" t1="$(date +%s.%N)"
    drops1="$(udp_drops "$sport")" snmp1="$(rcvbuf_errors)"
    [[ "$sys" == sipwire* ]] && metric="$(sipwire_metric_drops)"
    stop_all
    local other load_busy uas_pct
    other="$(jiffies_pct "$((busy1 - busy0 - (ticks1 - ticks0)))" "$t0" "$t1")"
    load_busy="$(jiffies_pct "$((lbusy1 - lbusy0))" "$t0" "$t1")"
    uas_pct="$(jiffies_pct "$((uas1 - uas0))" "$t0" "$t1")"
    j="$(python3 - "$j" "$sys" "$case" "$phase" "$pct" "$rnd" "$kmax" "$other" "$load_busy" "$uas_pct" \
        "$((drops1 - drops0))" "$drops1" "$((snmp1 - snmp0))" "$metric" "$(cut -d' ' -f1 /proc/loadavg)" "$udp_buffer" <<'EOF'
import json, sys
d = json.loads(sys.argv[1])
sys_, case, phase, pct, rnd, kmax, other, load_busy, uas_pct, drops, drops_all, snmp, metric, la, buf = sys.argv[2:]
uas = float(uas_pct) if case.startswith("relay-") else 0.0
gen = 100 * (d["tool_cpu_util"] or 0) + uas
items = d["answered"] + d["non_200"] + d["unanswered"]
d.update(system=sys_, bench_case=case, phase=phase, pct_of_max=float(pct) if pct else None, round=int(rnd),
         kamailio_max_per_s=float(kmax) if kmax else None, other_on_server_core_pct=float(other),
         load_core_busy_pct=float(load_busy), uas_cpu_pct=uas, generator_cpu_pct=round(gen, 1),
         uac_generator_bound=d["generator_bound"], generator_bound=d["generator_bound"] or gen >= 90,
         server_cpu_pct=round(100 * d["server_cpu_s"] / d["measured_s"], 1) if d["server_cpu_s"] is not None else None,
         unanswered_pct=100 * (d["unanswered"] + d["non_200"]) / items if items else None,
         server_udp_kernel_drops=int(drops), server_udp_kernel_drops_whole_run=int(drops_all),
         host_udp_rcvbuf_errors=int(snmp), sipwire_metric_udp_kernel_drops=int(metric) if metric else None,
         udp_recv_buffer_bytes=int(buf) if sys_ == "sipwire-rcvbuf" else None, loadavg=float(la))
print(json.dumps(d))
EOF
)"
    echo "$j" >>"$results"
    python3 - "$j" <<'EOF'
import json, sys
d = json.loads(sys.argv[1])
print(f'{d["phase"]:<6} {d["round"]:<3} {d["bench_case"]:<14} {d["system"]:<15} {d["pct_of_max"] or 0:>4.0f} '
      f'{d["offered_per_s"]:>9.0f} {d["answered_per_s"]:>9.0f} {d["lat_p50_us"]:>8} {d["lat_p99_us"]:>8} {d.get("lat_p999_us", "-"):>8} '
      f'{d["unanswered_pct"] or 0:>7.3f} {d["retransmissions"]:>6} {d["server_udp_kernel_drops"]:>7} {d["host_udp_rcvbuf_errors"]:>7} '
      f'{d["server_cpu_pct"] or 0:>5.0f} {d["generator_cpu_pct"]:>5.0f}{"!" if d["generator_bound"] else " "} {d["other_on_server_core_pct"]:>5.0f}')
EOF
}

# Median answered/s of the phase-max runs of case $1.
kamailio_max() {
    python3 - "$results" "$1" <<'EOF'
import json, statistics, sys
rs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
v = [r["answered_per_s"] for r in rs if r.get("phase") == "max" and r["bench_case"] == sys.argv[2] and not r.get("failed")]
print(f"{statistics.median(v):.0f}" if v else "")
EOF
}

echo "latency: cases ${case_list[*]}; server on CPU $server_core, generator on CPU $load_core; results in $out"
printf '%-6s %-3s %-14s %-15s %4s %9s %9s %8s %8s %8s %7s %6s %7s %7s %5s %6s %5s\n' phase rnd case system "%max" \
    offered/s answered/s "p50 µs" "p99 µs" "p99.9" "unans%" rtx kdrops hostdr cpu% gen% other
for c in "${case_list[@]}"; do
    systems=(kamailio sipwire)
    if is_udp "$c" && ((udp_buffer > 0)); then systems+=(sipwire-rcvbuf); fi
    for ((r = 1; r <= rounds; r++)); do
        measure kamailio "$c" max "" "" "$r" "" || true
    done
    kmax="$(kamailio_max "$c")"
    if [[ -z "$kmax" || "$kmax" == 0 ]]; then
        echo "latency: no maximum for Kamailio on $c: case skipped" >&2
        continue
    fi
    echo "latency: $c: Kamailio-tlsf maximum $kmax/s (median of $rounds closed-loop runs)"
    rate80=$((kmax * 80 / 100))
    n=${#systems[@]}
    for ((r = 1; r <= rounds; r++)); do
        for ((k = 0; k < n; k++)); do
            measure "${systems[$(((k + r - 1) % n))]}" "$c" at80 80 "$rate80" "$r" "$kmax" || true
        done
    done
    i=0
    for pct in "${sweep_list[@]}"; do
        i=$((i + 1))
        for ((k = 0; k < n; k++)); do
            measure "${systems[$(((k + i) % n))]}" "$c" sweep "$pct" "$((kmax * pct / 100))" 1 "$kmax" || true
        done
    done
done

echo "latency: load average at the end $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/about.txt"
if [[ "$docs" == 1 ]]; then
    cp "$results" "$root/lab/bench/results/latency-$(date -u +%F).jsonl"
    cp "$out/about.txt" "$root/lab/bench/results/latency-$(date -u +%F)-about.txt"
fi
report "$out"
echo "raw results: $results"
