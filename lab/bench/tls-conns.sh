#!/usr/bin/env bash
# Idle TLS connections and cost growth (issue 13): sipwire against Kamailio 5.6 with TLSF, and
# full TLS handshakes/s of sipwire, Kamailio and a bare tokio-rustls server.
#
# Usage: lab/bench/tls-conns.sh [options]
#   --steps L       connection counts reached in turn (1,100,10000,100000)
#   --systems L     comma-separated subset of sipwire,kamailio (both, one after the other)
#   --hold S        after the last step: idle S seconds, then every connection must answer (60)
#   --duration S    seconds of OPTIONS at each step, at least one per connection (3)
#   --sources K     loopback source addresses 127.0.0.2 … (4: ~64k ports each)
#   --mem M         VM memory (12G)
#   --conns-only | --handshakes-only    one half only
#   --native        the connection counts on this host too, not in the VM (N below the
#                   open-file limit: 20,000 per process here)
#   --out FILE      JSON lines (lab/bench/results/tls-conns-DATE.jsonl)
# Environment: SERVER_CORE / LOAD_CORE (0 / 1); TLS_CONNS_NO_BUILD=1 uses the release binaries
# already in CARGO_TARGET_DIR.
#
# Handshakes/s run natively on this host (the VM's TCG makes every handshake several times
# slower, and unevenly between OpenSSL and ring): each server pinned to SERVER_CORE,
# `sipload handshakes` (16 at a time, no resumption, one OPTIONS/200 each, abortive close) on
# LOAD_CORE, 3 rounds alternated. The connection counts run inside lab/vm/run-in-vm.sh (the
# host's open-file limit is 20,000): `sipload conns` opens the connections in steps, sends
# OPTIONS round-robin over all of them (32 in flight) and samples the server's PSS (summed
# over Kamailio's processes) after 3 s of idleness. Every wait is bounded; every process
# started is stopped.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=lab/bench/bench-lib.sh
. "$root/lab/bench/bench-lib.sh"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
server_core="${SERVER_CORE:-0}"
load_core="${LOAD_CORE:-1}"
steps="1,100,10000,100000" systems="sipwire,kamailio" hold=60 duration=3 nsources=4 mem=12G
do_conns=1 do_hs=1 native=0 out=""
args=("$@")

die() { echo "tls-conns: $*" >&2; exit 1; }
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit "${1:-0}"; }

while (($#)); do
    case "$1" in
        --steps) steps="$2"; shift ;;
        --systems) systems="$2"; shift ;;
        --hold) hold="$2"; shift ;;
        --duration) duration="$2"; shift ;;
        --sources) nsources="$2"; shift ;;
        --mem) mem="$2"; shift ;;
        --conns-only) do_hs=0 ;;
        --native) native=1 ;;
        --handshakes-only) do_conns=0 ;;
        --out) out="$2"; shift ;;
        -h | --help) usage 0 ;;
        *) echo "tls-conns: unknown argument $1" >&2; usage 2 ;;
    esac
    shift
done
[[ "$steps" =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--steps: comma-separated counts"
[[ "$nsources" =~ ^[1-9][0-9]?$ ]] || die "--sources: 1..99"
[[ "$hold" =~ ^[0-9]+$ && "$duration" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--hold and --duration are seconds"
IFS=, read -r -a system_list <<<"$systems"
for s in "${system_list[@]}"; do
    [[ "$s" =~ ^(sipwire|kamailio)$ ]] || die "unknown system $s"
done
[[ " ${system_list[*]} " != *" kamailio "* ]] || command -v kamailio >/dev/null ||
    die "kamailio is not installed (lab/install-deps.sh --bench-only)"

sipwire="$target_dir/release/sipwire"
sipload="$target_dir/release/sipload"
out="${out:-$root/lab/bench/results/tls-conns-$(date -u +%F).jsonl}"

# Everything this script started, stopped on exit.
cur_pid="" cur_pids=() cur_ca="" tmp="" state=""
# The servers listen here (sipwire-conns.toml, kamailio-conns.cfg), not on 127.0.0.1: other
# benchmarks on a shared host use 127.0.0.1:5061.
server_addr=127.0.10.1:5061
bound() { ss -Htln "src $server_addr" | grep -q .; }
stop_system() {
    local i
    [[ -n "$cur_pid" ]] || return 0
    stop_group "$cur_pid"
    for ((i = 0; i < 100; i++)); do bound || break; sleep 0.1; done
    if bound; then echo "tls-conns: $server_addr still bound after 10 s" >&2; fi
    cur_pid="" cur_pids=() cur_ca=""
}
cleanup() {
    stop_system
    [[ -n "$state" ]] && rm -rf "$state"
    # Logs stay when something failed.
    [[ -n "$tmp" && "${keep_logs:-0}" == 0 ]] && rm -rf "$tmp"
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Appends JSON line $1 to the results with system=$2, where=$3, commit and date.
record() {
    python3 - "$1" "$2" "$3" "$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)" >>"$out" <<'EOF'
import json, sys, datetime
d = json.loads(sys.argv[1])
d.update(system=sys.argv[2], where=sys.argv[3], commit=sys.argv[4],
         loadavg=float(open("/proc/loadavg").read().split()[0]),
         date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%MZ"))
print(json.dumps(d))
EOF
    echo "$1"
}

# Starts system $1 ($2: a name for its logs) pinned to the server core; sets cur_pid,
# cur_pids (every process whose CPU and memory count) and cur_ca.
start_system() {
    local name="$1" log="$tmp/$2.log" i j
    case "$name" in
        sipwire)
            mkdir -p "$state/$2.state"
            SIPWIRE_STATE_DIR="$state/$2.state" SIPWIRE_LOG=warn setsid taskset -c "$server_core" \
                "$sipwire" run --config "$root/lab/bench/sipwire-conns.toml" >"$log" 2>&1 &
            cur_pid=$! cur_pids=("$cur_pid") cur_ca="$state/$2.state/dev-ca/ca.pem"
            ;;
        kamailio)
            # Shared memory holds the connections and their OpenSSL state (~40 KiB each): 6 GiB
            # for 100k in the VM, 2 GiB for < 20k on the host, little for the handshakes. (Short
            # of it, Kamailio's TLS refuses new connections: "ssl bug #1491 workaround: not
            # enough memory".)
            local shm=512
            if [[ "$2" == conns-* ]]; then
                shm=2048
                [[ "${TLS_CONNS_INSIDE:-}" == 1 ]] && shm=6144
            fi
            setsid taskset -c "$server_core" kamailio -f "$root/lab/bench/kamailio-conns.cfg" -DD -E \
                -x tlsf -X tlsf -m "${KAMAILIO_SHM_MB:-$shm}" -M 64 -A "TLS_CFG=\"$state/kam/tls.cfg\"" >"$log" 2>&1 &
            cur_pid=$! cur_pids=("$cur_pid") cur_ca="$state/kam/ca.pem"
            ;;
        bare)
            # The bare tokio-rustls server of benches/tls_memory.rs (its own CA, DER).
            setsid taskset -c "$server_core" "$tls_memory" server bare <"$tmp/bare.fifo" >"$log" 2>&1 &
            cur_pid=$!
            exec {bare_fd}>"$tmp/bare.fifo"
            ;;
    esac
    # TCG and a busy host make a handshake take a second or more: long probes, few of them.
    for ((i = 0; i < 60; i++)); do
        kill -0 "$cur_pid" 2>/dev/null || break
        if [[ "$name" == sipwire ]] && ! grep -q '^sipwire: ready' "$log" 2>/dev/null; then
            sleep 0.5
            continue
        fi
        if [[ "$name" == bare ]] && grep -q '^listening' "$log"; then
            local addr ca
            read -r _ addr _ ca <"$log"
            openssl x509 -inform der -in "$ca" -out "$tmp/bare-ca.pem"
            cur_ca="$tmp/bare-ca.pem" bare_target="$addr"
            cur_pids=("$cur_pid")
            return 0
        fi
        if [[ "$name" != bare && -s "$cur_ca" ]] &&
            j="$(timeout 30 "$sipload" handshakes --target "$server_addr" --ca "$cur_ca" --concurrency 1 --warmup 0 \
                --duration 3 --connect-timeout-ms 10000 2>/dev/null)" &&
            [[ "$(json_field "$j" handshakes)" -gt 0 ]]; then
            if [[ "$name" == kamailio ]]; then
                mapfile -t children < <(ps -o pid= --ppid "$cur_pid" | tr -d ' ')
                cur_pids=("$cur_pid" "${children[@]}")
            fi
            return 0
        fi
        sleep 0.5
    done
    tail -20 "$log" >&2
    keep_logs=1
    die "$name did not answer over TLS (60 probes; log $log)"
}

# Server state (sipwire's dev CA, its admin socket; Kamailio's certificate) in /tmp; logs in
# target/ inside the VM, so that the host sees them while it runs.
state="$(mktemp -d /tmp/tls-conns-state.XXXXXX)"
if [[ "${TLS_CONNS_INSIDE:-}" == 1 ]]; then
    mkdir -p "$root/target"
    tmp="$(mktemp -d "$root/target/tls-conns-logs.XXXXXX")"
else
    tmp="$(mktemp -d /tmp/tls-conns.XXXXXX)"
fi
if [[ " ${system_list[*]} " == *" kamailio "* ]]; then
    bench_make_tls "$state/kam"
fi

# The connection counts, here ($1: vm or host; on the host the open-file limit caps N).
run_conns() {
    local where="$1" name sources
    [[ -x "$sipwire" && -x "$sipload" ]] || die "missing $sipwire or $sipload (build on the host first)"
    ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"
    # One vCPU: server and generator share it (then only ratios mean something).
    if (($(nproc) < 2)); then server_core=0 load_core=0; fi
    sysctl -qw net.ipv4.ip_local_port_range="1024 65535" net.core.somaxconn=65535 \
        net.ipv4.tcp_max_syn_backlog=65535 fs.file-max=4194304 2>/dev/null ||
        echo "tls-conns: sysctl not permitted here; kernel defaults" >&2
    sources="$(seq -s, -f '127.0.0.%g' 2 $((nsources + 1)))"
    echo "tls-conns: $where: open files $(ulimit -n), $(nproc) CPUs, $(free -m | awk '/^Mem:/ { print $2 }') MiB, kernel $(uname -r);" \
        "steps $steps from $nsources sources, hold ${hold}s"
    for name in "${system_list[@]}"; do
        start_system "$name" "conns-$name"
        pid_args=()
        for p in "${cur_pids[@]}"; do pid_args+=(--server-pid "$p"); done
        # Bounded: 100k TCG handshakes at a few hundred per second, plus the sweeps.
        # Lines as they come, also in the repository (visible from the host while it runs).
        timeout "${TLS_CONNS_TIMEOUT:-5400}" taskset -c "$load_core" "$sipload" conns --target "$server_addr" --ca "$cur_ca" --sources "$sources" \
            --steps "$steps" --connect-concurrency 64 --window 32 --duration "$duration" --settle 3 \
            --hold "$hold" --timeout-ms 30000 --connect-timeout-ms 30000 "${pid_args[@]}" \
            --label "$name" 2>"$tmp/conns-$name.err" | tee "$tmp/conns-$name.jsonl" >"$out.progress" || {
            keep_logs=1
            echo "tls-conns: sipload conns against $name failed (exit $?): $(tail -3 "$tmp/conns-$name.err")" >&2
            echo "{\"phase\":\"failed\",\"label\":\"$name\",\"error\":$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$(tail -3 "$tmp/conns-$name.err")")}" >>"$tmp/conns-$name.jsonl"
        }
        while read -r j; do record "$j" "$name" "$where"; done <"$tmp/conns-$name.jsonl"
        grep -v '^$' "$tmp/conns-$name.log" | tail -5 >&2 || true
        stop_system
    done
    rm -f "$out.progress"
}

if [[ "${TLS_CONNS_INSIDE:-}" == 1 ]]; then
    run_conns vm
    exit 0
fi

# On the host: build, handshakes natively, then the VM.
[[ "${TLS_CONNS_NO_BUILD:-}" == 1 ]] || (cd "$root" && cargo build --release -p sipwire-gateway -p sipload)
mkdir -p "$(dirname "$out")"
echo "tls-conns: results appended to $out"
if ((do_hs)); then
    tls_memory="$(cd "$root" && cargo bench --bench tls_memory --no-run 2>&1 |
        sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -1)"
    [[ -x "$tls_memory" ]] || die "benches/tls_memory binary not found"
    mkfifo "$tmp/bare.fifo"
    ! bound || die "something already listens on $server_addr"
    hs_systems=("${system_list[@]}" bare)
    for round in 1 2 3; do
        n=${#hs_systems[@]}
        for ((k = 0; k < n; k++)); do
            name="${hs_systems[$(((k + round - 1) % n))]}"
            bare_target=""
            start_system "$name" "hs-$name-$round"
            pid_args=()
            for p in "${cur_pids[@]}"; do pid_args+=(--server-pid "$p"); done
            target_args=(--target "${bare_target:-$server_addr}")
            j="$(timeout 60 taskset -c "$load_core" "$sipload" handshakes --ca "$cur_ca" "${target_args[@]}" \
                --concurrency 16 --warmup 1 --duration 5 --sources 127.0.0.2,127.0.0.3 "${pid_args[@]}" \
                --label "hs-$name-$round")" || die "sipload handshakes against $name failed"
            if [[ "$name" == bare ]]; then exec {bare_fd}>&-; fi
            stop_system
            record "$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d["round"]=int(sys.argv[2]); print(json.dumps(d))' "$j" "$round")" "$name" host
        done
    done
fi
if ((do_conns && native)); then
    run_conns host
elif ((do_conns)); then
    inner=(--steps "$steps" --systems "$systems" --hold "$hold" --duration "$duration" --sources "$nsources" --out "$out")
    # The VM's own bound; the script inside has its own per-system bounds.
    timeout 14400 "$root/lab/vm/run-in-vm.sh" --mem "$mem" --bench-clock -- \
        env TLS_CONNS_INSIDE=1 CARGO_TARGET_DIR="$target_dir" bash "$root/lab/bench/tls-conns.sh" "${inner[@]}"
fi
echo "tls-conns: done (${args[*]:-defaults}); python3 lab/bench/tls-conns-report.py $out"
