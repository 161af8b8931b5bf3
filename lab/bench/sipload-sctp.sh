#!/usr/bin/env bash
# tools/sipload over kernel SCTP, TLS over SCTP and DTLS over SCTP: first against itself
# (`sipload serve` as the UAS, OPTIONS and calls), then OPTIONS against `sipwire run` with one
# listener of each of the three transports; on loopback. Prints the JSON lines and a summary,
# and fails when a run lost anything (unanswered, non-200, I/O errors) or answered nothing.
# A smoke run of the instrument, not a benchmark (inside the VM only ratios mean something).
#
# Usage: lab/bench/sipload-sctp.sh
# Builds sipload and sipwire on the host (release), then runs natively if the kernel has SCTP,
# otherwise inside lab/vm/run-in-vm.sh. Needs the openssl CLI (a throw-away certificate) and,
# for DTLS-SCTP, root (it sets net.sctp.auth_enable = 1: SCTP-AUTH, RFC 6083 §4.5).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
bin="$target/release/sipload"
sipwire="$target/release/sipwire"
if [[ "${SIPLOAD_SCTP_INSIDE:-}" != 1 ]]; then
    (cd "$root" && cargo build --release -p sipload -p sipwire-gateway)
    if python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_STREAM, 132)' 2>/dev/null; then
        SIPLOAD_SCTP_INSIDE=1 CARGO_TARGET_DIR="$target" exec bash "$0"
    fi
    exec timeout 900 "$root/lab/vm/run-in-vm.sh" --mem 1G -- env SIPLOAD_SCTP_INSIDE=1 CARGO_TARGET_DIR="$target" bash "$0"
fi
[[ -x "$bin" && -x "$sipwire" ]] || { echo "sipload-sctp: build first (missing $bin or $sipwire)" >&2; exit 1; }
tmp="$(mktemp -d)"
serve_pid="" sipwire_pid=""
cleanup() {
    [[ -n "$serve_pid" ]] && kill "$serve_pid" 2>/dev/null || true
    [[ -n "$sipwire_pid" ]] && kill "$sipwire_pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
# A throw-away CA and a certificate for localhost / 127.0.0.1 (rustls and OpenSSL both verify it).
# shellcheck source=lab/bench/bench-lib.sh
. "$root/lab/bench/bench-lib.sh"
bench_make_tls "$tmp/tls"
# DTLS over SCTP needs SCTP-AUTH (off by default); the first SCTP socket loads the module.
python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_STREAM, 132)'
if [[ "$(cat /proc/sys/net/sctp/auth_enable)" != 1 ]]; then
    echo 1 >/proc/sys/net/sctp/auth_enable || { echo "sipload-sctp: cannot turn SCTP-AUTH on (root?)" >&2; exit 1; }
fi
echo "sipload-sctp: kernel $(uname -r), $(nproc) CPUs$([[ "${SIPWIRE_IN_VM:-}" == 1 ]] && echo ", lab VM (TCG)")"
fail=0
: >"$tmp/all.jsonl"
# Runs sipload with "$@" (label $1): prints and keeps the JSON line, fails on any loss.
load() {
    local label="$1" j
    shift
    j="$("$bin" "$@" --warmup 0.5 --duration 2 --label "$label")" || {
        echo "sipload-sctp: $label failed" >&2
        fail=1
        return
    }
    echo "$j"
    echo "$j" >>"$tmp/all.jsonl"
    python3 -c '
import json, sys
d = json.loads(sys.argv[1])
bad = d["answered"] == 0 or d["unanswered"] or d["non_200"] or d["io_errors"]
sys.exit(1 if bad else 0)' "$j" || { echo "sipload-sctp: $label lost requests" >&2; fail=1; }
}
for t in sctp tls-sctp dtls-sctp; do
    serve_tls=() client_tls=()
    if [[ "$t" != sctp ]]; then
        serve_tls=(--cert "$tmp/tls/server.pem" --key "$tmp/tls/server.key")
        client_tls=(--ca "$tmp/tls/ca.pem")
    fi
    "$bin" serve --transport "$t" --listen 127.0.0.1:0 --trying "${serve_tls[@]}" >"$tmp/serve-$t" &
    serve_pid=$!
    addr=""
    for _ in $(seq 50); do
        addr="$(python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["listening"])' <"$tmp/serve-$t" 2>/dev/null || true)"
        [[ -n "$addr" ]] && break
        sleep 0.1
    done
    [[ -n "$addr" ]] || { echo "sipload-sctp: serve $t did not start" >&2; exit 1; }
    for scenario in options call; do
        load "serve-$t-$scenario" --transport "$t" --scenario "$scenario" --target "$addr" "${client_tls[@]}" \
            --flows 4 --window 4 --sctp-streams 8
    done
    kill "$serve_pid" 2>/dev/null || true
    wait "$serve_pid" 2>/dev/null || true
    serve_pid=""
done

# `sipwire run` answering OPTIONS itself on one listener of each transport (its relay
# answers requests addressed to it), the same certificate on both TLS listeners.
mkdir -p "$tmp/state"
cat >"$tmp/sipwire.toml" <<EOF
[[listener]]
name = "sctp"
transport = "sctp"
addr = "127.0.0.1:15160"

[[listener]]
name = "tls-sctp"
transport = "tls-sctp"
addr = "127.0.0.1:15161"
cert = "$tmp/tls/server.pem"
key = "$tmp/tls/server.key"

[[listener]]
name = "dtls-sctp"
transport = "dtls-sctp"
addr = "127.0.0.1:15162"
cert = "$tmp/tls/server.pem"
key = "$tmp/tls/server.key"

[tls]
ca_files = ["$tmp/tls/ca.pem"]
EOF
SIPWIRE_STATE_DIR="$tmp/state" SIPWIRE_LOG=warn "$sipwire" run --config "$tmp/sipwire.toml" >"$tmp/sipwire.log" 2>&1 &
sipwire_pid=$!
for _ in $(seq 100); do
    grep -q '^sipwire: ready' "$tmp/sipwire.log" && break
    kill -0 "$sipwire_pid" 2>/dev/null || break
    sleep 0.1
done
if grep -q '^sipwire: ready' "$tmp/sipwire.log"; then
    port=15160
    for t in sctp tls-sctp dtls-sctp; do
        client_tls=()
        [[ "$t" != sctp ]] && client_tls=(--ca "$tmp/tls/ca.pem")
        load "sipwire-$t-options" --transport "$t" --target "127.0.0.1:$port" "${client_tls[@]}" \
            --flows 4 --window 4 --sctp-streams 8
        port=$((port + 1))
    done
else
    cat "$tmp/sipwire.log" >&2
    echo "sipload-sctp: sipwire run did not start" >&2
    fail=1
fi
kill "$sipwire_pid" 2>/dev/null || true
wait "$sipwire_pid" 2>/dev/null || true
sipwire_pid=""

echo
python3 - "$tmp/all.jsonl" <<'EOF'
import json, sys
print("| run | answered/s | p50 / p99 µs | unanswered | sipload CPU % |")
print("|---|---|---|---|---|")
for line in open(sys.argv[1]):
    d = json.loads(line)
    print(f"| {d['label']} | {d['answered_per_s']:,.0f} | {d['lat_p50_us']:,} / {d['lat_p99_us']:,} | "
          f"{d['unanswered']} | {100 * d['tool_cpu_util']:.0f} |")
EOF
exit "$fail"
