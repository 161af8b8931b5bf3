#!/usr/bin/env bash
# Instructions per relayed call (INVITE / 100 / 200 / ACK / BYE / 200 through the Record-Route)
# of `sipwire run` (valgrind callgrind on the relay, user space only), UAC `sipload --scenario
# call` → sipwire → UAS `sipload serve`. Deterministic enough to compare builds on a loaded
# machine; the companion of benches/callgrind-responder.sh for the relay path.
#
#   benches/callgrind-relay.sh [SIPWIRE_BIN] [N]     (defaults: a fresh release build, 4000)
#
# instructions/call = (Ir(N) - Ir(N_SMALL)) / (N - N_SMALL): start-up and shutdown cancel.
# Environment: CASE (udp-udp; also tcp-tcp, tls-tls, udp-tls), MODE (stateful | stateless),
# WINDOW (8 calls outstanding), N_SMALL (500), SIPLOAD (default: built here), KEEP=DIR keeps the
# callgrind files (callgrind_annotate --inclusive=yes).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
# shellcheck source=lab/bench/bench-lib.sh
. "$root/lab/bench/bench-lib.sh"
target="${CARGO_TARGET_DIR:-target}"
N=${2:-4000}
N_SMALL=${N_SMALL:-500}
WINDOW=${WINDOW:-8}
CASE=${CASE:-udp-udp}
MODE=${MODE:-stateful}
die() { echo "callgrind-relay: $*" >&2; exit 1; }
command -v valgrind >/dev/null || die "valgrind is required"
[[ "$CASE" =~ ^(udp|tcp|tls)-(udp|tcp|tls)$ ]] || die "CASE: IN-OUT over udp, tcp, tls"
[[ "$MODE" =~ ^(stateful|stateless)$ ]] || die "MODE: stateful or stateless"
((N > N_SMALL)) || die "N must be above N_SMALL ($N_SMALL)"
bench_pick_binaries "${1:-}"
OUT=${KEEP:-$(mktemp -d)}
mkdir -p "$OUT"
# Read by bench-lib.sh's helpers.
proxy_port=${PORT:-25460} proxy_tls_port=$((${PORT:-25460} + 1)) uas_port=$((${PORT:-25460} + 2))
tls="$OUT/tls" load_core="0-$(($(nproc) - 1))"
uas_pid="" relay_pid=""
cleanup() {
    [[ -n "$relay_pid" ]] && kill "$relay_pid" 2>/dev/null
    [[ -n "$uas_pid" ]] && kill "$uas_pid" 2>/dev/null
    wait 2>/dev/null || true
    [[ -n "${KEEP:-}" ]] || rm -rf "$OUT"
}
trap cleanup EXIT
bench_make_tls "$tls"
in="${CASE%-*}" outb="${CASE#*-}"
bench_relay_config "$OUT/sipwire.toml" "$outb" "stateless = $([[ "$MODE" == stateless ]] && echo true || echo false)"
bench_start_uas "$outb" "$OUT/uas.log" "$CASE"

param=""
[[ "$outb" != udp ]] && param=";transport=$outb"
uac=(--scenario call --uri "sip:uas@127.0.0.1:$uas_port$param" --no-retransmit)
case "$in" in
    udp | tcp) uac+=(--transport "$in" --target "127.0.0.1:$proxy_port") ;;
    tls) uac+=(--transport tls --tls-version 1.3 --ca "$tls/ca.pem" --server-name localhost --target "127.0.0.1:$proxy_tls_port") ;;
esac

# Ir of a relay run that completes `n` calls.
count() {
    local n=$1 f="$OUT/callgrind.$1" i up=0 res answered
    SIPWIRE_STATE_DIR="$OUT/state" SIPWIRE_LOG=warn valgrind --tool=callgrind \
        --callgrind-out-file="$f" "$BIN" run --config "$OUT/sipwire.toml" >"$f.log" 2>&1 &
    relay_pid=$!
    for ((i = 0; i < 300; i++)); do
        kill -0 "$relay_pid" 2>/dev/null || break
        if "$SIPLOAD" "${uac[@]}" --requests 1 --timeout-ms 3000 --connect-timeout-ms 3000 \
            2>/dev/null | grep -q '"answered":1'; then
            up=1
            break
        fi
        sleep 0.3
    done
    ((up)) || { cat "$f.log" >&2; die "no call went through the relay"; }
    res=$("$SIPLOAD" "${uac[@]}" --requests "$n" --window "$WINDOW" --timeout-ms 20000 --warmup 0)
    kill -TERM "$relay_pid"
    wait "$relay_pid" || true
    relay_pid=""
    answered=$(grep -o '"answered":[0-9]*' <<<"$res" | cut -d: -f2)
    [[ "$answered" == "$n" ]] || die "only $answered of $n calls completed: $res"
    grep -m1 '^summary:' "$f" | awk '{print $2}'
}

big=$(count "$N")
small=$(count "$N_SMALL")
echo "binary: $BIN ($MODE, $CASE)"
echo "Ir($N) = $big, Ir($N_SMALL) = $small"
echo "instructions/call: $(((big - small) / (N - N_SMALL)))"
[[ -n "${KEEP:-}" ]] && echo "callgrind files: $OUT/callgrind.$N (callgrind_annotate --inclusive=yes)"
exit 0
