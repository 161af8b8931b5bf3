#!/usr/bin/env bash
# The SCTP transports next to TCP and TLS over TCP, in one run (examples/lab_transport_bench.rs):
# transactions/s and p50/p99 latency with 32 transactions in flight, transports alternated over 3
# rounds, and sipwire's memory per idle association vs per idle TCP connection. Prints Markdown
# tables (docs/benchmarks.md). Only ratios mean something inside the VM (TCG emulation).
#
# Usage: lab/bench/sctp-transports.sh
# Builds on the host (release), then runs natively if the kernel has SCTP, otherwise inside
# lab/vm/run-in-vm.sh.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
bin="$target/release/examples/lab_transport_bench"
if [[ "${SCTP_BENCH_INSIDE:-}" != 1 ]]; then
    (cd "$root" && cargo build --release --example lab_transport_bench -j 2)
    if python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_STREAM, 132)' 2>/dev/null; then
        SCTP_BENCH_INSIDE=1 CARGO_TARGET_DIR="$target" exec bash "$0"
    fi
    exec timeout 1200 "$root/lab/vm/run-in-vm.sh" --mem 2G -- env SCTP_BENCH_INSIDE=1 CARGO_TARGET_DIR="$target" bash "$0"
fi
[[ -x "$bin" ]] || { echo "sctp-transports: build first (missing $bin)" >&2; exit 1; }
# Both ends of the idle TCP connections are in this process, and the SCTP clients' sockets too.
ulimit -n 65536
exec "$bin"
