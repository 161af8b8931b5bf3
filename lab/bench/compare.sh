#!/usr/bin/env bash
# sipwire against Kamailio 5.6, one command: the OPTIONS responder (responder-cpu.sh) and the
# relay (relay-cpu.sh: calls UAC → proxy → UAS, stateful and stateless, UDP→UDP, TCP→TCP,
# TLS→TLS, UDP→TLS), every system under test pinned to CPU 0 and the generator (sipload, UAC
# and UAS) to CPU 1, rounds alternated (order rotated), medians and min–max spread of the
# server CPU per request / per call; then the tables and one SVG bar chart per mode.
#
# Usage: lab/bench/compare.sh [options]
#   --quick          1 round of 0.5+2 s per run (a reviewer's check: ≈ 4 min once built);
#                    results stay in --out, docs/ is not touched
#   --rounds R       rounds (full run: 3)
#   --duration S     measured seconds per run (5)    --warmup S   warm-up seconds (1)
#   --modes L        responder,relay,latency,lab (responder,relay); lab = only the --lab part;
#                    latency: lab/bench/latency.sh, p99 at 80% of Kamailio-tlsf's maximum rate
#                    and losses over a rate sweep (UDP, TCP, TLS 1.3, relay UDP→UDP and
#                    TLS→TLS; ≈ 20 min), its own section of docs/benchmarks.md
#   --sipwire BIN    the sipwire binary (default: build the worktree's release one)
#   --kamailio L     Kamailio variants: kamailio (-x tlsf -X tlsf), kamailio-default (both)
#   --install        first install Kamailio and the openssl CLI with lab/install-deps.sh
#                    --bench-only (root)
#   --out DIR        raw results and logs (default: a new /tmp/compare.* dir)
#   --write-docs     write the tables and plots into docs/ even with --quick; a full run does
#   --no-docs        do not (full run)
#   --report-only F… redo the tables and plots from earlier results dirs of this script
#   --lab            also the relay over SCTP→SCTP and TLS→SCTP (TLS/TCP in, SCTP out), in the
#                    lab VM (lab/bench/relay-sctp-vm.sh: QEMU TCG, 2 vCPUs; this kernel has no
#                    SCTP): its own table and plot, ratios only within the VM
# Environment: CARGO_TARGET_DIR (where sipwire and sipload are built), SIPLOAD (a built
# sipload), SERVER_CORE / LOAD_CORE (0 / 1).
#
# A full run writes lab/bench/results/compare-DATE-{responder,relay}.jsonl, docs/bench/
# {responder,relay}-cpu.svg and the generated block between the compare markers in
# docs/benchmarks.md ("sipwire against Kamailio: one command"); with --lab also
# compare-DATE-lab.jsonl, docs/bench/lab-relay-cpu.svg and the block between the compare --lab
# markers.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
rounds="" duration=5 warmup=1 modes="responder,relay" sipwire="" kamailio="kamailio,kamailio-default"
install=0 out="" quick=0 docs="" report_only=() lab=0

die() { echo "compare: $*" >&2; exit 1; }
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit "${1:-0}"; }

while (($#)); do
    case "$1" in
        --quick) quick=1 ;;
        --rounds) rounds="$2"; shift ;;
        --duration) duration="$2"; shift ;;
        --warmup) warmup="$2"; shift ;;
        --modes) modes="$2"; shift ;;
        --sipwire) sipwire="$2"; shift ;;
        --kamailio) kamailio="$2"; shift ;;
        --install) install=1 ;;
        --out) out="$2"; shift ;;
        --write-docs) docs=1 ;;
        --no-docs) docs=0 ;;
        --report-only) shift; report_only=("$@"); break ;;
        --lab) lab=1 ;;
        -h | --help) usage 0 ;;
        *) echo "compare: unknown argument $1" >&2; usage 2 ;;
    esac
    shift
done
if ((quick)); then
    rounds="${rounds:-1}" duration=2 warmup=0.5 docs="${docs:-0}"
fi
rounds="${rounds:-3}" docs="${docs:-1}"
IFS=, read -r -a mode_list <<<"$modes"
for m in "${mode_list[@]}"; do
    [[ "$m" =~ ^(responder|relay|lab|latency)$ ]] || die "unknown mode $m"
    [[ "$m" == lab ]] && lab=2
done
((lab == 1)) && mode_list+=(lab)
IFS=, read -r -a kam_list <<<"$kamailio"
for k in "${kam_list[@]}"; do [[ "$k" =~ ^(kamailio|kamailio-default)$ ]] || die "unknown Kamailio variant $k"; done

# Tables and plots from results dirs ($@); into docs/ when $docs is 1.
report() {
    local resp=() relay=() labr=() d svg_dir md
    for d in "$@"; do
        [[ -s "$d/responder/results.jsonl" ]] && resp+=("$d/responder/results.jsonl")
        [[ -s "$d/relay/results.jsonl" ]] && relay+=("$d/relay/results.jsonl")
        [[ -s "$d/lab/results.jsonl" ]] && labr+=("$d/lab/results.jsonl")
    done
    ((${#resp[@]} + ${#relay[@]} + ${#labr[@]})) || die "no results in $*"
    svg_dir="$1" md="$1/tables.md"
    [[ "$docs" == 1 ]] && svg_dir="$root/docs/bench"
    mkdir -p "$svg_dir"
    if ((${#labr[@]})); then lab_report "$1" "$svg_dir" "${labr[@]}"; fi
    ((${#resp[@]} + ${#relay[@]})) || return 0
    python3 "$root/lab/bench/compare-report.py" --responder "${resp[@]}" --relay "${relay[@]}" \
        --markdown "$md" --svg-dir "$svg_dir" --table
    echo "compare: tables in $md, plots in $svg_dir"
    if [[ "$docs" == 1 ]]; then
        python3 - "$root/docs/benchmarks.md" "$md" "$(date -u +%F)" "$1" <<'EOF'
import sys
path, md, day, src = sys.argv[1:]
begin, end = "<!-- compare.sh: begin generated -->", "<!-- compare.sh: end generated -->"
doc = open(path).read()
if begin not in doc or end not in doc:
    sys.exit(f"compare: {path} has no {begin} ... {end} block to fill")
block = (f"{begin}\n_Generated by `lab/bench/compare.sh` on {day}._\n\n"
         "![OPTIONS responder: server CPU per request](bench/responder-cpu.svg)\n\n"
         "![Relay: proxy CPU per call](bench/relay-cpu.svg)\n\n"
         + open(md).read().rstrip() + f"\n{end}")
head, rest = doc.split(begin, 1)
open(path, "w").write(head + block + rest.split(end, 1)[1])
print(f"compare: {path} updated")
EOF
    fi
}

# The lab VM's SCTP relay rows ($3…, results dir $1): their own table (ratios only within the
# VM) and plot lab-relay-cpu.svg in $2, and the docs block between the compare --lab markers.
lab_report() {
    local dir="$1" svg_dir="$2" md="$1/lab-tables.md" about
    shift 2
    python3 "$root/lab/bench/compare-report.py" --relay "$@" --markdown "$md" --svg-dir "$svg_dir" \
        --svg-prefix lab- --table
    echo "compare: lab tables in $md, plot in $svg_dir/lab-relay-cpu.svg"
    [[ "$docs" == 1 ]] || return 0
    about="$(cat "$dir/lab/vm.txt" 2>/dev/null || true)"
    python3 - "$root/docs/benchmarks.md" "$md" "$(date -u +%F)" "$about" \
        "$(cd "$root" && git describe --always --dirty 2>/dev/null || echo unknown)" <<'EOF'
import sys
path, md, day, about, commit = sys.argv[1:]
begin, end = "<!-- compare.sh --lab: begin generated -->", "<!-- compare.sh --lab: end generated -->"
doc = open(path).read()
if begin not in doc or end not in doc:
    sys.exit(f"compare: {path} has no {begin} ... {end} block to fill")
facts = "".join(f"- {line}\n" for line in about.splitlines() if line.strip())
block = (f"{begin}\n_Generated by `lab/bench/compare.sh --lab` on {day} (sipwire {commit})._\n\n"
         + facts + "\n![Relay in the lab VM: proxy CPU per call](bench/lab-relay-cpu.svg)\n\n"
         + open(md).read().rstrip().replace("**Relay (calls), server CPU per call**",
                                            "**Relay (calls) in the lab VM, server CPU per call**")
         + f"\n{end}")
head, rest = doc.split(begin, 1)
open(path, "w").write(head + block + rest.split(end, 1)[1])
print(f"compare: {path} updated (lab block)")
EOF
}

if ((${#report_only[@]})); then
    report "${report_only[@]}"
    exit
fi

if ((install)); then
    [[ $(id -u) == 0 ]] || die "--install needs root"
    "$root/lab/install-deps.sh" --bench-only
fi
command -v kamailio >/dev/null || die "kamailio is not installed (lab/install-deps.sh, or --install)"
command -v openssl >/dev/null || die "the openssl CLI is needed (--install)"
command -v taskset >/dev/null || die "taskset (util-linux) is needed"
(($(nproc) >= 2)) || die "needs 2 CPUs (server and generator on their own cores)"

if [[ -z "$sipwire" || -z "${SIPLOAD:-}" ]]; then
    (cd "$root" && cargo build --release -p sipwire-gateway -p sipload)
fi
sipwire="${sipwire:-$target_dir/release/sipwire}"
export SIPLOAD="${SIPLOAD:-$target_dir/release/sipload}"
[[ -x "$sipwire" ]] || die "no sipwire at $sipwire"

out="${out:-$(mktemp -d /tmp/compare.XXXXXX)}"
mkdir -p "$out"
{
    echo "date: $(date -u +%FT%TZ)"
    echo "sipwire: $sipwire ($(cd "$root" && git describe --always --dirty 2>/dev/null || echo unknown))"
    echo "kamailio: $(kamailio -v 2>/dev/null | head -1)"
    echo "kernel: $(uname -r); CPUs: $(nproc); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "rounds: $rounds; warm-up $warmup s; measured $duration s"
} | tee "$out/about.txt"

for m in "${mode_list[@]}"; do
    case "$m" in
        responder)
            "$root/lab/bench/responder-cpu.sh" --rounds "$rounds" --duration "$duration" --warmup "$warmup" \
                --out "$out/responder" sipwire="$sipwire" "${kam_list[@]}"
            ;;
        relay)
            "$root/lab/bench/relay-cpu.sh" --rounds "$rounds" --duration "$duration" --warmup "$warmup" \
                --out "$out/relay" sipwire="$sipwire" "${kam_list[@]}"
            ;;
        lab)
            # The VM writes only inside the repository: results there first, then beside the rest.
            mkdir -p "$root/target"
            lab_out="$(mktemp -d "$root/target/compare-lab.XXXXXX")"
            "$root/lab/bench/relay-sctp-vm.sh" --out "$lab_out" --rounds "$rounds" --duration "$duration" \
                --warmup "$warmup" sipwire="$sipwire" "${kam_list[@]}"
            rm -rf "$out/lab"
            cp -r "$lab_out" "$out/lab"
            ;;
        latency)
            # Against Kamailio-tlsf only; writes its own docs section and results file.
            lat=(--no-docs)
            [[ "$docs" == 1 ]] && lat=(--write-docs)
            ((quick)) && lat+=(--quick)
            "$root/lab/bench/latency.sh" --rounds "$rounds" --duration "$duration" --warmup "$warmup" \
                --out "$out/latency" --sipwire "$sipwire" "${lat[@]}"
            ;;
    esac
done

if [[ "$docs" == 1 ]]; then
    day="$(date -u +%F)"
    for m in "${mode_list[@]}"; do
        [[ "$m" == latency ]] && continue # latency.sh keeps its own
        cp "$out/$m/results.jsonl" "$root/lab/bench/results/compare-$day-$m.jsonl"
    done
    if [[ "${mode_list[*]}" == lab ]]; then
        # Only the lab part: the native run's about file of the day stays as it is.
        cat "$out/about.txt" "$out/lab/vm.txt" >"$root/lab/bench/results/compare-$day-lab-about.txt"
    else
        cp "$out/about.txt" "$root/lab/bench/results/compare-$day-about.txt"
        [[ -s "$out/lab/vm.txt" ]] && cp "$out/lab/vm.txt" "$root/lab/bench/results/compare-$day-lab-vm.txt"
    fi
fi
if [[ " ${mode_list[*]} " =~ \ (responder|relay|lab)\  ]]; then report "$out"; fi
