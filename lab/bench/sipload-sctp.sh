#!/usr/bin/env bash
# tools/sipload over kernel SCTP and TLS over SCTP, against itself: `sipload serve` as the UAS,
# sipload as the UAC, OPTIONS and calls, on loopback; prints the JSON lines and fails when a run
# lost anything (unanswered, non-200, I/O errors) or answered nothing. A smoke run of the
# instrument, not a benchmark (inside the VM only ratios mean something).
#
# Usage: lab/bench/sipload-sctp.sh
# Builds sipload on the host (release), then runs natively if the kernel has SCTP, otherwise
# inside lab/vm/run-in-vm.sh. Needs the openssl CLI (a throw-away certificate for TLS-SCTP).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
bin="$target/release/sipload"
if [[ "${SIPLOAD_SCTP_INSIDE:-}" != 1 ]]; then
    (cd "$root" && cargo build --release -p sipload)
    if python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_STREAM, 132)' 2>/dev/null; then
        SIPLOAD_SCTP_INSIDE=1 CARGO_TARGET_DIR="$target" exec bash "$0"
    fi
    exec timeout 900 "$root/lab/vm/run-in-vm.sh" --mem 1G -- env SIPLOAD_SCTP_INSIDE=1 CARGO_TARGET_DIR="$target" bash "$0"
fi
[[ -x "$bin" ]] || { echo "sipload-sctp: build first (missing $bin)" >&2; exit 1; }
tmp="$(mktemp -d)"
serve_pid=""
cleanup() {
    [[ -n "$serve_pid" ]] && kill "$serve_pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost \
    -addext basicConstraints=critical,CA:FALSE \
    -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
fail=0
for t in sctp tls-sctp; do
    serve_tls=() client_tls=()
    if [[ "$t" == tls-sctp ]]; then
        serve_tls=(--cert "$tmp/cert.pem" --key "$tmp/key.pem")
        client_tls=(--ca "$tmp/cert.pem")
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
        j="$("$bin" --transport "$t" --scenario "$scenario" --target "$addr" "${client_tls[@]}" \
            --flows 4 --window 4 --sctp-streams 8 --warmup 0.5 --duration 2 --label "$t-$scenario")" || {
            echo "sipload-sctp: $t $scenario failed" >&2
            fail=1
            continue
        }
        echo "$j"
        python3 -c '
import json, sys
d = json.loads(sys.argv[1])
bad = d["answered"] == 0 or d["unanswered"] or d["non_200"] or d["io_errors"]
sys.exit(1 if bad else 0)' "$j" || { echo "sipload-sctp: $t $scenario lost requests" >&2; fail=1; }
    done
    kill "$serve_pid" 2>/dev/null || true
    wait "$serve_pid" 2>/dev/null || true
    serve_pid=""
done
exit "$fail"
