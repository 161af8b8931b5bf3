#!/usr/bin/env bash
# Instruction counts per message (valgrind callgrind) for sipwire, rsip and ezk-sip-types
# on the benchmark messages, and the ratio faster-of-two / sipwire (higher = sipwire
# cheaper). Repeatable on a loaded machine, unlike timings.
#
#   benches/callgrind-parse.sh [iterations]     (default 2000)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2000}
command -v valgrind >/dev/null || { echo "valgrind is required" >&2; exit 1; }
cargo build --release --example parse_count -j 2 >&2
BIN=${CARGO_TARGET_DIR:-target}/release/examples/parse_count
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

# Instructions per iteration of the measured loop only.
count() {
    local f="$OUT/cg.$1.$2.$3"
    valgrind --tool=callgrind --callgrind-out-file="$f" --toggle-collect='*measure_loop*' \
        "$BIN" "$1" "$2" "$3" "$N" >/dev/null 2>"$f.log" || { cat "$f.log" >&2; exit 1; }
    local ir
    ir=$(grep -m1 '^summary:' "$f" | awk '{print $2}')
    echo $((ir / N))
}

printf '%-14s %-20s %12s %12s %14s %8s\n' workload message sipwire rsip ezk-sip-types ratio
for work in frame full; do
    for msg in invite-10h ims-invite-30h-sdp 200-ok register; do
        s=$(count sipwire "$work" "$msg")
        r=$(count rsip "$work" "$msg")
        e=$(count ezk "$work" "$msg")
        best=$(( r < e ? r : e ))
        ratio=$(awk -v b="$best" -v s="$s" 'BEGIN { printf "%.2f", b / s }')
        printf '%-14s %-20s %12s %12s %14s %7sx\n' "$work" "$msg" "$s" "$r" "$e" "$ratio"
    done
done
echo "(instructions per message; ratio = faster of rsip/ezk-sip-types / sipwire)"
