#!/usr/bin/env bash
# SCTP socket layer benchmark: 1 KiB message rate and round-trip latency through sipwire-sys
# (sys/examples/sctp_bench.rs, tokio AsyncFd) against a plain C baseline doing the same with raw
# syscalls (lab/bench/sctp_baseline.c, no libsctp), both measured in the same run on the same kernel.
# Prints both and the ratios. Only ratios mean something (the VM is TCG emulation).
#
# Usage: lab/bench/sctp-bench.sh [messages=10000] [round_trips=1000] [rounds=3]
# Builds on the host, then runs natively if the kernel has SCTP, otherwise inside lab/vm/run-in-vm.sh.
# SCTP_BENCH_RCVBUF=<bytes> sets SO_RCVBUF on both ends of both programs (the kernel doubles it and
# caps it at net.core.rmem_max, which the script raises inside the lab VM only).
# SCTP_BENCH_PIN=1 pins both programs to CPU 0 (takes the cross-CPU wake-up out of the picture).
# In the VM, SIPWIRE_VM_APPEND="tsc=reliable clocksource=tsc" gives the guest a vDSO clock (TCG
# marks the TSC unstable and falls back to HPET, where every clock read is a system call).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
n="${1:-10000}"
m="${2:-1000}"
rounds="${3:-3}"
rust="$target/release/examples/sctp_bench"
cbin="$target/release/sctp_baseline"

if [[ "${SCTP_BENCH_INSIDE:-}" != 1 ]]; then
    (cd "$root" && cargo build --release -p sipwire-sys --example sctp_bench -j 2)
    gcc -O2 -Wall -pthread -o "$cbin" "$root/lab/bench/sctp_baseline.c"
    if python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_STREAM, 132)' 2>/dev/null; then
        SCTP_BENCH_INSIDE=1 CARGO_TARGET_DIR="$target" exec bash "$0" "$n" "$m" "$rounds"
    fi
    exec timeout 1200 "$root/lab/vm/run-in-vm.sh" -- env SCTP_BENCH_INSIDE=1 CARGO_TARGET_DIR="$target" \
        SCTP_BENCH_PIN="${SCTP_BENCH_PIN:-0}" SCTP_BENCH_RCVBUF="${SCTP_BENCH_RCVBUF:-0}" bash "$0" "$n" "$m" "$rounds"
fi

[[ -x "$rust" && -x "$cbin" ]] || { echo "sctp-bench: build first (missing $rust or $cbin)" >&2; exit 1; }
rcvbuf="${SCTP_BENCH_RCVBUF:-0}"
if [[ "$rcvbuf" != 0 && "${SIPWIRE_IN_VM:-}" == 1 ]]; then
    sysctl -q -w net.core.rmem_max="$rcvbuf"
fi
pin=()
[[ "${SCTP_BENCH_PIN:-0}" == 1 ]] && pin=(taskset -c 0)
# SCTP MIB counters that show lost DATA (discarded at a full receiver, then retransmitted after the
# 1 s minimum RTO): summed per program over all rounds.
mib() { awk '$1 == "SctpInDataChunkDiscards" {d = $2} $1 == "SctpT3RtxExpireds" {t = $2} END {print d + 0, t + 0}' /proc/net/sctp/snmp 2>/dev/null || echo "0 0"; }
# One run of a program (c: the C baseline, r: sipwire-sys) on port $2; its output goes to out[$1]
# and its discards and T3 expiries are added to its totals.
declare -A prog=([c]="$cbin" [r]="$rust") out=() disc=([c]=0 [r]=0) t3=([c]=0 [r]=0)
run() {
    local before after
    before=($(mib))
    out[$1]="$(timeout 300 "${pin[@]}" "${prog[$1]}" "$n" "$m" "$2" "$rcvbuf")"
    after=($(mib))
    disc[$1]=$((disc[$1] + after[0] - before[0]))
    t3[$1]=$((t3[$1] + after[1] - before[1]))
}
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2" | head -1; }
best_c_rate=0 best_r_rate=0 best_c_p50=0 best_r_p50=0 c_p99="" r_p99=""
for ((i = 1; i <= rounds; i++)); do
    # Alternate the order so neither always runs on a warmer machine; fresh ports each time.
    port=$((7000 + 10 * i))
    if ((i % 2)); then
        run c "$port"
        run r "$((port + 1))"
    else
        run r "$((port + 1))"
        run c "$port"
    fi
    c_out="${out[c]}" r_out="${out[r]}"
    echo "round $i C:    $(tr '\n' ' ' <<<"$c_out")"
    echo "round $i Rust: $(tr '\n' ' ' <<<"$r_out")"
    cr="$(field rate_msgs_per_s "$c_out")" rr="$(field rate_msgs_per_s "$r_out")"
    cp="$(field lat_p50_us "$c_out")" rp="$(field lat_p50_us "$r_out")"
    awk -v a="$cr" -v b="$best_c_rate" 'BEGIN{exit !(a>b)}' && best_c_rate="$cr"
    awk -v a="$rr" -v b="$best_r_rate" 'BEGIN{exit !(a>b)}' && best_r_rate="$rr"
    if [[ "$best_c_p50" == 0 ]] || awk -v a="$cp" -v b="$best_c_p50" 'BEGIN{exit !(a<b)}'; then best_c_p50="$cp"; c_p99="$(field lat_p99_us "$c_out")"; fi
    if [[ "$best_r_p50" == 0 ]] || awk -v a="$rp" -v b="$best_r_p50" 'BEGIN{exit !(a<b)}'; then best_r_p50="$rp"; r_p99="$(field lat_p99_us "$r_out")"; fi
done
echo
echo "SCTP socket layer, 1 KiB messages, best of $rounds rounds ($n messages, $m round trips), kernel $(uname -r)," \
    "clock $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null || echo '?')," \
    "$([[ ${#pin[@]} -gt 0 ]] && echo "pinned to CPU 0" || echo "not pinned")," \
    "SO_RCVBUF $([[ "$rcvbuf" == 0 ]] && echo "default ($(cat /proc/sys/net/core/rmem_default 2>/dev/null || echo '?'))" || echo "$rcvbuf")"
printf '%-22s %14s %14s %8s\n' "" "C baseline" "sipwire-sys" "ratio"
awk -v c="$best_c_rate" -v r="$best_r_rate" 'BEGIN{printf "%-22s %14.0f %14.0f %7.1f%%\n", "rate (msg/s)", c, r, 100*r/c}'
awk -v c="$best_c_p50" -v r="$best_r_p50" 'BEGIN{printf "%-22s %14.1f %14.1f %7.1f%%\n", "RTT p50 (us)", c, r, 100*c/r}'
awk -v c="$c_p99" -v r="$r_p99" 'BEGIN{printf "%-22s %14.1f %14.1f %7.1f%%\n", "RTT p99 (us)", c, r, 100*c/r}'
printf '%-22s %14s %14s\n' "DATA discarded / T3" "${disc[c]} / ${t3[c]}" "${disc[r]} / ${t3[r]}"
echo "(ratio = sipwire-sys as a percentage of the baseline's performance; >= 90% is the target)"
