#!/usr/bin/env bash
# RFC 5923 reuse benefit: latency of the first backwards-direction request with and without
# `alias`, TLS 1.3 and 1.2, netem RTT 50 ms, printed as RTT multiples measured in the same run
# (examples/lab_reuse_latency.rs). Needs network namespaces and netem: runs in the lab VM unless
# --native is given (root, a kernel with sch_netem).
#
#   benches/lab_reuse_latency.sh [--native]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build -j 2 --example lab_reuse_latency
bin="$CARGO_TARGET_DIR/debug/examples/lab_reuse_latency"
[[ -x "$bin" ]] || { echo "could not build examples/lab_reuse_latency.rs" >&2; exit 1; }
if [[ "${1:-}" == --native ]]; then
    "$bin"
else
    timeout 900 lab/vm/run-in-vm.sh -- "$bin"
fi
