#!/usr/bin/env bash
# Relay: server CPU per call of sipwire's relay and Kamailio 5.6, each transaction-stateful
# (sipwire's default, Kamailio t_relay()) and stateless (a `stateless = true` route, Kamailio
# forward()), for the inbound→outbound transports UDP→UDP, TCP→TCP, TLS→TLS and UDP→TLS, and
# where the kernel has SCTP (the lab VM: compare.sh --lab) SCTP→SCTP and TLS→SCTP.
# UAC `sipload --scenario call` → proxy under test → UAS `sipload serve`.
#
# Usage: lab/bench/relay-cpu.sh [options] SYSTEM...
#   SYSTEM         NAME=/path/to/sipwire   a sipwire binary, `sipwire run --config` a file the
#                                          script writes (listeners below, one [[route]] to
#                                          the UAS, stateless or not)
#                  kamailio                lab/bench/kamailio-relay.cfg, -x tlsf -X tlsf
#                  kamailio-default        the same with Kamailio's default allocator
#   --relays L     stateful,stateless (both)
#   --cases L      comma-separated subset of udp-udp,tcp-tcp,tls-tls,udp-tls (all of these),
#                  sctp-sctp,tls-sctp (kernel SCTP only: TLS/TCP in, SCTP out; Kamailio has
#                  no TLS over SCTP)
#   --rounds R     rounds; each runs every case and relay mode on every system, order rotated (3)
#   --duration S   measured seconds per run (5)      --warmup S   warm-up seconds (1)
#   --flows N      UAC TCP/TLS connections, one call outstanding each (50)
#   --udp-window N calls outstanding on the UAC's one UDP socket (50)
#   --sctp-flows N UAC SCTP associations, one call outstanding each (default: --flows)
#   --out DIR      where raw results and logs go (default: a new /tmp/relay-cpu.* dir)
# Environment: SIPLOAD=/path/to/sipload skips building it; SERVER_CORE / LOAD_CORE (0 / 1);
# KAMAILIO_SHM_MB (4096: Kamailio's shared memory; less in a small VM); BENCH_STATE_ROOT (--out:
# where the servers' state and runtime directories go; they hold Unix sockets, which the lab
# VM's 9p share cannot).
#
# The proxy listens on 127.0.0.1:15070 (UDP, TCP; SCTP too with an SCTP case) and
# 127.0.0.1:15071 (TLS), pinned to
# SERVER_CORE; the UAS (`sipload serve`, stateless and cheap) on 127.0.0.1:15080, and the UAC,
# both pinned to LOAD_CORE. The callee is sip:uas@127.0.0.1:15080 (;transport=tcp|tls): sipwire
# sends it to the route's target, Kamailio resolves the Request-URI (numeric, no DNS). Both
# record-route (two entries when the transport changes) and relay ACK and BYE by loose routing.
# sipload samples the proxy's utime+stime (/proc/PID/stat, every Kamailio process) at the edges
# of the measured window: "CPU µs/call" = proxy CPU ÷ calls answered (INVITE and BYE both 200).
# The generator is bound when UAC + UAS used ≥ 90% of LOAD_CORE. Only 127.0.0.1; bounded waits.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=lab/bench/bench-lib.sh
. "$root/lab/bench/bench-lib.sh"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
server_core="${SERVER_CORE:-0}"
load_core="${LOAD_CORE:-1}"
rounds=3 duration=5 warmup=1 flows=50 udp_window=50 sctp_flows="" cases="udp-udp,tcp-tcp,tls-tls,udp-tls" relays="stateful,stateless" out=""
systems=()
proxy_port=15070 proxy_tls_port=15071 uas_port=15080

die() { echo "relay-cpu: $*" >&2; exit 1; }
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit "${1:-0}"; }

while (($#)); do
    case "$1" in
        --rounds) rounds="$2"; shift ;;
        --duration) duration="$2"; shift ;;
        --warmup) warmup="$2"; shift ;;
        --flows) flows="$2"; shift ;;
        --udp-window) udp_window="$2"; shift ;;
        --sctp-flows) sctp_flows="$2"; shift ;;
        --cases) cases="$2"; shift ;;
        --relays) relays="$2"; shift ;;
        --out) out="$2"; shift ;;
        -h | --help) usage 0 ;;
        kamailio | kamailio-default) systems+=("$1") ;;
        *=*) systems+=("$1") ;;
        *) echo "relay-cpu: unknown argument $1" >&2; usage 2 ;;
    esac
    shift
done
((${#systems[@]})) || usage 2
[[ "$rounds" =~ ^[1-9][0-9]?$ ]] || die "--rounds must be 1..99"
[[ "$duration" =~ ^[0-9]+(\.[0-9]+)?$ && "$warmup" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--duration and --warmup are seconds"
with_sctp=0
IFS=, read -r -a case_list <<<"$cases"
for c in "${case_list[@]}"; do
    [[ "$c" =~ ^(udp-udp|tcp-tcp|tls-tls|udp-tls|sctp-sctp|tls-sctp)$ ]] || die "unknown case $c"
    [[ "$c" == *sctp ]] && with_sctp=1
done
sctp_flows="${sctp_flows:-$flows}"
if ((with_sctp)); then
    python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_STREAM, 132)' 2>/dev/null ||
        die "the SCTP cases need kernel SCTP (this kernel has none: compare.sh --lab runs them in the lab VM)"
    # The port checks below look at SCTP listeners too.
    export BENCH_SS_SCTP=1
fi
IFS=, read -r -a relay_list <<<"$relays"
for m in "${relay_list[@]}"; do
    [[ "$m" =~ ^(stateful|stateless)$ ]] || die "unknown relay mode $m"
done

bench_parse_systems "lab/install-deps.sh, or compare.sh --install" "${systems[@]}"

require_ports_free "$proxy_port" "$proxy_tls_port" "$uas_port" || exit 1

if [[ -z "${SIPLOAD:-}" ]]; then
    (cd "$root" && cargo build --release -p sipload)
    SIPLOAD="$target_dir/release/sipload"
fi
[[ -x "$SIPLOAD" ]] || die "no sipload at $SIPLOAD"

out="${out:-$(mktemp -d /tmp/relay-cpu.XXXXXX)}"
mkdir -p "$out"
results="$out/results.jsonl"
: >"$results"
tls="$out/tls"
bench_make_tls "$tls"

# sipwire's configuration for relay mode $1 ($2: the outbound transport) in file $3.
sipwire_config() {
    local sctp=""
    ((with_sctp)) && sctp=$(printf '%s\n' '[[listener]]' 'name = "sctp"' 'transport = "sctp"' "addr = \"127.0.0.1:$proxy_port\"")
    bench_relay_config "$3" "$2" "stateless = $([[ "$1" == stateless ]] && echo true || echo false)" "$sctp"
}

cur_pid="" cur_pids=() uas_pid=""
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
    await_ports_free "$proxy_port" "$proxy_tls_port" "$uas_port" || echo "relay-cpu: ports still bound after 10 s" >&2
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# UAC sipload arguments for case $1 (inbound transport, target, callee).
uac_args() {
    local in="${1%-*}" outb="${1#*-}" param=""
    [[ "$outb" != udp ]] && param=";transport=$outb"
    case "$in" in
        udp | tcp) echo "--transport $in --target 127.0.0.1:$proxy_port" ;;
        sctp) echo "--transport sctp --target 127.0.0.1:$proxy_port" ;;
        tls) echo "--transport tls --tls-version 1.3 --ca $tls/ca.pem --server-name localhost --target 127.0.0.1:$proxy_tls_port" ;;
    esac
    echo "--scenario call --uri sip:uas@127.0.0.1:$uas_port$param"
}

# Waits until a call goes through the proxy for case $1 (bench_await_answer).
await_calls() {
    # shellcheck disable=SC2046
    bench_await_answer 10 0.3 1000 1000 $(uac_args "$1")
}

# Starts system $1 in relay mode $2 for case $3 (run name $4), waits until calls go through;
# fails (status 1, the system stopped) when they do not within 10 s.
start_proxy() {
    local name="$1" mode="$2" case="$3" run="$4" log="$out/$4.log"
    case "${sys_kind[$name]}" in
        sipwire)
            sipwire_config "$mode" "${case#*-}" "$out/$run.toml"
            bench_start_sipwire "${sys_bin[$name]}" "$server_core" "${BENCH_STATE_ROOT:-$out}/$run.state" \
                "$log" "$name" --config "$out/$run.toml"
            cur_pids=("$cur_pid")
            ;;
        kamailio | kamailio-default)
            local args=(-x tlsf -X tlsf)
            [[ "${sys_kind[$name]}" == kamailio-default ]] && args=()
            [[ "$mode" == stateless ]] && args+=(-A STATELESS)
            ((with_sctp)) && args+=(-A SCTP)
            local rundir="${BENCH_STATE_ROOT:-$out}/$run.run"
            mkdir -p "$rundir"
            # Its own process group (setsid), so that stopping it stops every worker it forked.
            # Shared memory: t_relay() keeps each transaction for its wait timer (5 s); at
            # 10,000+ calls/s 1 GB ran out (new_t: out of mem, 500s), so 4 GB (mapped lazily).
            setsid taskset -c "$server_core" "${sys_bin[$name]}" -f "$root/lab/bench/kamailio-relay.cfg" -DD -E \
                -Y "$rundir" -P "$rundir/kamailio.pid" "${args[@]}" -m "${KAMAILIO_SHM_MB:-4096}" -M 32 \
                -A "TLS_CFG=\"$tls/tls.cfg\"" >"$log" 2>&1 &
            cur_pid=$! cur_pids=("$cur_pid")
            ;;
    esac
    if ! await_calls "$case"; then
        tail -5 "$log" >&2
        echo "relay-cpu: calls do not go through $name ($mode, $case; log $log): recorded as failed" >&2
        stop_all
        return 1
    fi
    if [[ "${sys_kind[$name]}" != sipwire ]]; then
        mapfile -t children < <(ps -o pid= --ppid "$cur_pid" | tr -d ' ')
        cur_pids=("$cur_pid" "${children[@]}")
    fi
}

echo "relay-cpu: ${names[*]}; ${relay_list[*]}; cases ${case_list[*]}; $rounds rounds of ${warmup}+${duration} s;" \
    "closed loop, $flows TCP/TLS flows × 1 call, $udp_window calls outstanding on UDP$( ((with_sctp)) && echo ", $sctp_flows SCTP associations × 1 call");" \
    "proxy on CPU $server_core, UAC and UAS on CPU $load_core; results in $out"
echo "relay-cpu: load average at start $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs; kernel $(uname -r)"
printf '%-5s %-8s %-9s %-18s %8s %9s %8s %8s %6s %6s %6s %7s\n' round case relay system "calls/s" "µs/call" "p50 µs" "p99 µs" lost rtx gen% "other%"
for ((r = 1; r <= rounds; r++)); do
    for c in "${case_list[@]}"; do
        for m in "${relay_list[@]}"; do
            # Rotate the order of the systems every round so that none always runs first.
            n=${#names[@]}
            for ((k = 0; k < n; k++)); do
                name="${names[$(((k + r - 1) % n))]}"
                run="r$r-$c-$m-$name"
                bench_start_uas "${c#*-}" "$out/$run.uas" "$c"
                if ! start_proxy "$name" "$m" "$c" "$run"; then
                    # Kept in the results (the tables say the case failed), and the run goes on.
                    python3 -c 'import json,sys; n,c,m,r,l=sys.argv[1:]; print(json.dumps(dict(label=l, system=n, bench_case=c, relay=m, round=int(r), failed="calls did not go through")))' \
                        "$name" "$c" "$m" "$r" "$run" >>"$results"
                    continue
                fi
                if [[ "${c%-*}" == udp ]]; then
                    pace=(--flows 1 --window "$udp_window")
                elif [[ "${c%-*}" == sctp ]]; then
                    pace=(--flows "$sctp_flows" --window 1)
                else
                    pace=(--flows "$flows" --window 1)
                fi
                pid_args=()
                for p in "${cur_pids[@]}"; do pid_args+=(--server-pid "$p"); done
                busy0="$(cpu_busy "$server_core")" ticks0="$(proc_ticks "${cur_pids[@]}")"
                lbusy0="$(cpu_busy "$load_core")" uas0="$(proc_ticks "$uas_pid")" t0="$(date +%s.%N)"
                # shellcheck disable=SC2046
                j="$(timeout $((${warmup%.*} + ${duration%.*} + 90)) taskset -c "$load_core" "$SIPLOAD" $(uac_args "$c") \
                    "${pace[@]}" --warmup "$warmup" --duration "$duration" "${pid_args[@]}" \
                    --label "$run" 2>>"$out/$run.log")" || { stop_all; die "sipload failed on $run (log $out/$run.log)"; }
                busy1="$(cpu_busy "$server_core")" ticks1="$(proc_ticks "${cur_pids[@]}")"
                lbusy1="$(cpu_busy "$load_core")" uas1="$(proc_ticks "$uas_pid")" t1="$(date +%s.%N)"
                stop_all
                # What else ran on the proxy's core (other engineers' builds), how busy the
                # generator's core was, and how much of it the UAS took.
                other="$(jiffies_pct "$((busy1 - busy0 - (ticks1 - ticks0)))" "$t0" "$t1")"
                load_busy="$(jiffies_pct "$((lbusy1 - lbusy0))" "$t0" "$t1")"
                uas_pct="$(jiffies_pct "$((uas1 - uas0))" "$t0" "$t1")"
                j="$(python3 - "$j" "$name" "$c" "$m" "$r" "$other" "$load_busy" "$uas_pct" "$(cut -d' ' -f1 /proc/loadavg)" <<'EOF'
import json, sys
d = json.loads(sys.argv[1])
name, case, mode, rnd, other, load_busy, uas_pct, la = sys.argv[2:]
# Generator load: the UAC's over the measured window, the UAS's over the whole run (under load too).
gen = 100 * d["tool_cpu_util"] + float(uas_pct)
d.update(system=name, bench_case=case, relay=mode, round=int(rnd), other_on_server_core_pct=float(other),
         load_core_busy_pct=float(load_busy), uas_cpu_pct=float(uas_pct), generator_cpu_pct=round(gen, 1),
         uac_generator_bound=d["generator_bound"], generator_bound=d["generator_bound"] or gen >= 90, loadavg=float(la))
print(json.dumps(d))
EOF
)"
                echo "$j" >>"$results"
                python3 - "$j" <<'EOF'
import json, sys
d = json.loads(sys.argv[1])
lost = d["unanswered"] + d["non_200"]
print(f'{d["round"]:<5} {d["bench_case"]:<8} {d["relay"]:<9} {d["system"]:<18} {d["answered_per_s"]:>8.0f} '
      f'{d["server_cpu_us_per_req"] or 0:>9.2f} {d["lat_p50_us"]:>8} {d["lat_p99_us"]:>8} {lost:>6} {d["retransmissions"]:>6} '
      f'{d["generator_cpu_pct"]:>5.0f}{"!" if d["generator_bound"] else " "} {d["other_on_server_core_pct"]:>7.0f}')
EOF
            done
        done
    done
done

echo
python3 "$root/lab/bench/compare-report.py" --relay "$results" --table
echo "raw results: $results"
