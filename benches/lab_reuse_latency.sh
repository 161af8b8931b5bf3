#!/usr/bin/env bash
# RFC 5923 reuse benefit: latency of the first backwards-direction request with and without
# `alias`, TLS 1.3 and 1.2, netem RTT 50 ms, printed as RTT multiples measured in the same run
# (tests/lab_reuse_latency.rs). Needs network namespaces and netem: runs in the lab VM unless
# --native is given (root, a kernel with sch_netem).
#
#   benches/lab_reuse_latency.sh [--native]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
bin="$(cargo test -j 2 --test lab_reuse_latency --no-run --message-format=json 2>/dev/null \
    | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "lab_reuse_latency":
        print(m["executable"])')"
[[ -n "$bin" ]] || { echo "could not build tests/lab_reuse_latency.rs" >&2; exit 1; }
args=(--ignored --nocapture --test-threads 1 lab_bench_reuse_latency)
if [[ "${1:-}" == --native ]]; then
    "$bin" "${args[@]}"
else
    timeout 900 lab/vm/run-in-vm.sh -- "$bin" "${args[@]}"
fi
