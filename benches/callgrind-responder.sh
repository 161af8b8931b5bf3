#!/usr/bin/env bash
# Instructions per answered OPTIONS over UDP of `sipwire run` (valgrind callgrind on the
# server, user space only: system calls count as the instructions around them, not the
# kernel's work). Deterministic enough to compare builds on a loaded machine.
#
#   benches/callgrind-responder.sh [SIPWIRE_BIN] [N]     (defaults: a fresh release build, 20000)
#
# The server runs the embedded default configuration's UDP and TCP listeners and [limits] on
# a free loopback port (other listeners left out: their start-up cost would only add noise). sipload
# sends N OPTIONS (closed loop, one socket, WINDOW outstanding, no retransmissions), then a
# tiny run of N_SMALL; instructions/request = (Ir(N) - Ir(N_SMALL)) / (N - N_SMALL), so the
# start-up and shutdown cost cancels. KEEP=DIR keeps the callgrind files (callgrind_annotate).
# Environment: WINDOW (8), N_SMALL (1000), SIPLOAD (default: built here), PORT (25360).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lab/bench/bench-lib.sh
. lab/bench/bench-lib.sh
target="${CARGO_TARGET_DIR:-target}"
N=${2:-20000}
N_SMALL=${N_SMALL:-1000}
WINDOW=${WINDOW:-8}
PORT=${PORT:-25360}
command -v valgrind >/dev/null || { echo "valgrind is required" >&2; exit 1; }
bench_pick_binaries "${1:-}"
OUT=${KEEP:-$(mktemp -d)}
mkdir -p "$OUT"
[[ -n "${KEEP:-}" ]] || trap 'rm -rf "$OUT"' EXIT

# The default configuration's UDP and TCP listeners (RFC 3261 §18.2.1 wants both; moved to
# PORT) and its limits.
cfg="$OUT/sipwire.toml"
awk -v port="$PORT" '
    /^\[\[listener\]\]/ { block = ""; keep = 0; inl = 1 }
    inl && /^transport = "(udp|tcp)"/ { keep = 1 }
    inl && /^$/ { if (keep) printf "%s\n", block; inl = 0; next }
    inl { sub(/5060/, port); block = block $0 "\n"; next }
    /^\[limits\]/ { lim = 1 }
    lim && /^$/ { lim = 0; print "" }
    lim { print }
' gateway/src/default.toml >"$cfg"

# Ir of a server run that answers `n` requests.
count() {
    local n=$1 f="$OUT/callgrind.$1"
    ss -Hlnu "( sport = :$PORT )" | grep -q . && { echo "port $PORT is taken" >&2; exit 1; }
    SIPWIRE_STATE_DIR="$OUT/state" SIPWIRE_LOG=warn valgrind --tool=callgrind \
        --callgrind-out-file="$f" "$BIN" run --config "$cfg" >"$f.log" 2>&1 &
    local pid=$!
    local up=0
    for _ in $(seq 1 600); do
        kill -0 "$pid" 2>/dev/null || break
        if "$SIPLOAD" --target "127.0.0.1:$PORT" --requests 1 --timeout-ms 2000 --no-retransmit \
            2>/dev/null | grep -q '"answered":1'; then
            up=1
            break
        fi
        sleep 0.2
    done
    [[ $up == 1 ]] || { kill "$pid"; cat "$f.log" >&2; echo "server did not answer" >&2; exit 1; }
    local res
    res=$("$SIPLOAD" --target "127.0.0.1:$PORT" --requests "$n" --window "$WINDOW" \
        --no-retransmit --timeout-ms 10000 --warmup 0)
    kill -TERM "$pid"
    wait "$pid" || true
    local answered
    answered=$(grep -o '"answered":[0-9]*' <<<"$res" | cut -d: -f2)
    [[ "$answered" == "$n" ]] || { echo "only $answered of $n answered: $res" >&2; exit 1; }
    grep -m1 '^summary:' "$f" | awk '{print $2}'
}

big=$(count "$N")
small=$(count "$N_SMALL")
per=$(( (big - small) / (N - N_SMALL) ))
echo "binary: $BIN"
echo "Ir($N) = $big, Ir($N_SMALL) = $small"
echo "instructions/request: $per"
[[ -n "${KEEP:-}" ]] && echo "callgrind files: $OUT/callgrind.$N (callgrind_annotate --inclusive=yes)"
exit 0
