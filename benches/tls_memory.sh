#!/usr/bin/env bash
# Memory per idle TLS connection (issue 4): PSS of a server process before and after N
# TLS connections (default 10,000) are established, each has exchanged one ~1 KiB request
# and its 200, and 2 s of idleness passed. The clients run in a separate process. Once
# for the sipwire server (Transport::bind_tls) and once for a bare tokio-rustls server as
# a reference. Target: <= 22 KiB per connection.
# Usage: benches/tls_memory.sh [N] [sipwire|bare ...]
# TLS_MEMORY_BIN=path runs a given build of the bench binary (before/after comparisons).
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-10000}"
shift || true
KINDS=("$@")
[ ${#KINDS[@]} -eq 0 ] && KINDS=(sipwire bare)
# N connections need N descriptors in each process (hard limit 20,000 here).
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((N + 100)) ]; then
    echo "open-file limit $(ulimit -n) is too low for $N connections" >&2
    exit 1
fi
BIN="${TLS_MEMORY_BIN:-$(cargo bench --bench tls_memory --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -1)}"
[ -x "$BIN" ] || { echo "tls_memory binary not found" >&2; exit 1; }
TMP=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT

pss() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup"; }
fds() { ls "/proc/$1/fd" | wc -l; }

wait_line() { # file pattern seconds
    for _ in $(seq $(( $3 * 10 ))); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "timed out waiting for '$2' in $1" >&2
    return 1
}

echo "| server | connections | PSS before (KiB) | PSS after (KiB) | delta (KiB) | KiB per connection | fds delta |"
echo "|---|---|---|---|---|---|---|"
for kind in "${KINDS[@]}"; do
    mkfifo "$TMP/s_in.$kind" "$TMP/c_in.$kind"
    "$BIN" server "$kind" <"$TMP/s_in.$kind" >"$TMP/server.$kind" 2>"$TMP/server.$kind.err" &
    SPID=$!
    PIDS+=("$SPID")
    exec {SIN}>"$TMP/s_in.$kind"
    wait_line "$TMP/server.$kind" '^listening' 30
    read -r _ ADDR _ CA <"$TMP/server.$kind"
    sleep 1
    P0=$(pss "$SPID"); F0=$(fds "$SPID")
    "$BIN" clients "$ADDR" "$CA" "$N" <"$TMP/c_in.$kind" >"$TMP/clients.$kind" 2>"$TMP/clients.$kind.err" &
    CPID=$!
    PIDS+=("$CPID")
    exec {CIN}>"$TMP/c_in.$kind"
    wait_line "$TMP/clients.$kind" '^ready' 600 || { cat "$TMP/clients.$kind.err" >&2; exit 1; }
    sleep 2
    P1=$(pss "$SPID"); F1=$(fds "$SPID")
    awk -v k="$kind" -v n="$N" -v a="$P0" -v b="$P1" -v f=$((F1 - F0)) \
        'BEGIN { printf "| %s | %d | %d | %d | %d | %.1f | %d |\n", k, n, a, b, b - a, (b - a) / n, f }'
    exec {CIN}>&-
    wait "$CPID" 2>/dev/null || true
    exec {SIN}>&-
    wait "$SPID" 2>/dev/null || true
    grep "^#" "$TMP/server.$kind.err" >&2 || true
done
