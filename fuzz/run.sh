#!/usr/bin/env bash
# Runs every cargo-fuzz target of the SIP codec for a bounded time from a seed corpus, and
# fails loudly (exit 1, crash file printed) if any target crashed.
#
#   fuzz/run.sh [seconds-per-target=60] [target...]
#
# Toolchain: nightly when rustup has one, otherwise stable with RUSTC_BOOTSTRAP=1 (libFuzzer's
# instrumentation needs -Z flags). Installs cargo-fuzz if missing.
# Environment: FUZZ_SANITIZER (default none: the codec is safe Rust, so a bug shows as a panic
# and the run is about twice as fast without ASan; set `address` to use it),
# FUZZ_JOBS (parallel fuzzing processes per target, default 1), FUZZ_TOOLCHAIN=stable (use
# stable with RUSTC_BOOTSTRAP=1 even where nightly exists).
# Corpora grow in fuzz/corpus/<target>/ (not committed), crashes land in fuzz/artifacts/<target>/,
# logs in fuzz/artifacts/logs/. A crash input belongs in tests/data/fuzz-regressions/ once fixed
# (tests/fuzz_regressions.rs replays that folder on stable).
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(cd .. && pwd)
SECS=${1:-60}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(parse_message stream_framer uri edit_roundtrip)
SANITIZER=${FUZZ_SANITIZER:-none}
JOBS=${FUZZ_JOBS:-1}

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked >&2
fi
# FUZZ_TOOLCHAIN=stable forces the stable path (to check it where nightly is installed).
if [ "${FUZZ_TOOLCHAIN:-}" != stable ] && rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    FUZZ=(cargo +nightly fuzz)
    echo "toolchain: nightly"
else
    export RUSTC_BOOTSTRAP=1
    FUZZ=(cargo fuzz)
    echo "toolchain: stable with RUSTC_BOOTSTRAP=1"
fi

# Seed corpus: the RFC 4475 torture messages, the benchmark messages and the regression
# inputs. The targets read byte 0 as a selector (see fuzz/exercise.rs), so messages are
# seeded behind a few selector bytes, and the URI target gets the URIs and Via values
# found in those messages.
seed() {
    local target=$1 dir=corpus/$1
    mkdir -p "$dir"
    local -a msgs=("$ROOT"/tests/data/rfc4475/*.dat "$ROOT"/benches/data/*.sip)
    local -a regs=()
    if [ -d "$ROOT/tests/data/fuzz-regressions" ]; then
        regs=("$ROOT"/tests/data/fuzz-regressions/*)
    fi
    local f base
    for f in "${regs[@]}"; do
        [ -f "$f" ] && cp "$f" "$dir/reg-$(basename "$f")"
    done
    for f in "${msgs[@]}"; do
        base=$(basename "$f")
        case $target in
            parse_message) cp "$f" "$dir/seed-$base" ;;
            stream_framer)
                # one push; 1-byte chunks; chunks of 8 and 65 bytes; two messages in 3-byte chunks
                { printf '\x00'; cat "$f"; } >"$dir/seed-whole-$base"
                { printf '\x04\x00'; cat "$f"; } >"$dir/seed-bytes-$base"
                { printf '\x09\x07\x40'; cat "$f"; } >"$dir/seed-split-$base"
                { printf '\x04\x02'; cat "$f"; printf '\r\n\r\n'; cat "$f"; } >"$dir/seed-two-$base"
                ;;
            edit_roundtrip)
                { printf '\x00'; cat "$f"; } >"$dir/seed-0-$base"
                { printf '\x3f'; cat "$f"; } >"$dir/seed-3f-$base"
                ;;
            uri)
                local i=0 u
                while IFS= read -r u; do
                    printf '\x00%s' "$u" >"$dir/seed-uri-$i-$base"
                    i=$((i + 1))
                done < <(grep -aoE 'sips?:[^ <>",\r]+' "$f" | head -20)
                i=0
                while IFS= read -r u; do
                    printf '\x03%s' "$u" >"$dir/seed-via-$i-$base"
                    i=$((i + 1))
                done < <(grep -aiE '^(via|v)[ \t]*:' "$f" | sed -E 's/^[^:]*:[ \t]*//; s/\r$//' | head -5)
                i=0
                while IFS= read -r u; do
                    printf '\x02%s' "$u" >"$dir/seed-addr-$i-$base"
                    i=$((i + 1))
                done < <(grep -aiE '^(from|to|contact|route|f|t|m)[ \t]*:' "$f" | sed -E 's/^[^:]*:[ \t]*//; s/\r$//' | head -5)
                ;;
        esac
    done
}

mkdir -p artifacts/logs
failed=()
for t in "${TARGETS[@]}"; do
    seed "$t"
    mkdir -p "artifacts/$t"
    log=artifacts/logs/$t.log
    echo "=== $t: ${SECS}s, $(ls "corpus/$t" | wc -l) corpus files, sanitizer $SANITIZER"
    before=$(ls "artifacts/$t" | wc -l)
    par=()
    # libFuzzer's -jobs runs children that log to ./fuzz-N.log; only ask for it when wanted.
    [ "$JOBS" -gt 1 ] && par=(-jobs="$JOBS" -workers="$JOBS")
    set +e
    # Release build with debug assertions and overflow checks (cargo-fuzz's default).
    CARGO_BUILD_JOBS=2 "${FUZZ[@]}" run --sanitizer "$SANITIZER" "$t" "corpus/$t" -- \
        -max_total_time="$SECS" -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
        -dict=sip.dict -print_final_stats=1 "${par[@]}" >"$log" 2>&1
    rc=$?
    set -e
    grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" | sed 's/^/    /' || true
    after=$(ls "artifacts/$t" | wc -l)
    if [ "$rc" -ne 0 ] || [ "$after" -gt "$before" ]; then
        echo "!!! $t FAILED (exit $rc); last lines of $log:" >&2
        tail -40 "$log" >&2
        for c in $(ls -t "artifacts/$t" | head -5); do
            echo "!!! crash file: fuzz/artifacts/$t/$c ($(wc -c <"artifacts/$t/$c") bytes):" >&2
            od -c "artifacts/$t/$c" | head -40 >&2
        done
        failed+=("$t")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "FUZZING FAILED: ${failed[*]}" >&2
    echo "Reproduce: cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>; once fixed, copy the" >&2
    echo "file into tests/data/fuzz-regressions/ (tests/fuzz_regressions.rs replays it)." >&2
    exit 1
fi
echo "fuzzing passed: ${TARGETS[*]} (${SECS}s each)"
