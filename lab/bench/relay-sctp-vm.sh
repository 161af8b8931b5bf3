#!/usr/bin/env bash
# The relay cases that need kernel SCTP, SCTP→SCTP and TLS→SCTP (TLS over TCP in, SCTP out:
# Kamailio has no TLS over SCTP), run by lab/bench/relay-cpu.sh inside the lab VM
# (lab/vm/run-in-vm.sh: Debian's stock kernel under QEMU TCG, 2 vCPUs pinned to the host's
# CPUs 0 and 1) with Kamailio's sctp module: the same JSON lines as the native cases, for
# lab/bench/compare-report.py. compare.sh --lab runs this.
#
# Usage: lab/bench/relay-sctp-vm.sh --out DIR [relay-cpu.sh options] SYSTEM...
#   --out DIR      results (DIR/results.jsonl, DIR/vm.txt, logs); must lie inside the
#                  repository, the only directory the VM can write to
#   everything else goes to relay-cpu.sh (--rounds, --duration, --warmup, --relays,
#   --flows, --sctp-flows, systems: NAME=/path/to/sipwire, kamailio, kamailio-default); --cases
#   is sctp-sctp,tls-sctp and --flows 10 (TLS connections and SCTP associations, one call
#   each) unless given: with 50 the generator's vCPU stalled for seconds under TCG on a busy
#   host (measured windows of a few ms with nothing sent).
# Environment: SIPLOAD (a built sipload; needed: nothing is built inside the VM),
# SIPWIRE_VM_CPUS (2), SIPWIRE_VM_PIN (1: pin the vCPUs to host CPUs; 0: do not),
# KAMAILIO_SHM_MB (1024 here: the VM has 4 GB).
#
# Inside, the proxy runs on vCPU 0 and the generator on vCPU 1 when the VM has two; with one,
# everything shares it and vm.txt says so. TCG runs several times slower than the host: only
# ratios measured in the same VM run mean anything, never the absolute figures.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
die() { echo "relay-sctp-vm: $*" >&2; exit 1; }

out="" args=() have_cases=0 have_flows=0
while (($#)); do
    case "$1" in
        --out) out="$2"; shift ;;
        --cases) have_cases=1; args+=("$1" "$2"); shift ;;
        --flows) have_flows=1; args+=("$1" "$2"); shift ;;
        -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) args+=("$1") ;;
    esac
    shift
done
[[ -n "$out" ]] || die "--out DIR is required"
((have_cases)) || args=(--cases sctp-sctp,tls-sctp "${args[@]}")
((have_flows)) || args=(--flows 10 "${args[@]}")

if [[ "${SIPWIRE_IN_VM:-}" != 1 ]]; then
    [[ -x "${SIPLOAD:-}" ]] || die "SIPLOAD must name a built sipload (nothing is built in the VM)"
    mkdir -p "$out"
    out="$(cd "$out" && pwd)"
    [[ "$out" == "$root"/* ]] || die "--out must lie inside $root (the VM writes only there)"
    vm=(--mem 4G --cpus "${SIPWIRE_VM_CPUS:-2}" --bench-clock)
    [[ "${SIPWIRE_VM_PIN:-1}" == 1 ]] && vm+=(--pin)
    # Bounded: boot, every run and its bounded waits, with a wide margin for TCG.
    exec timeout 5400 "$root/lab/vm/run-in-vm.sh" "${vm[@]}" -- \
        env SIPLOAD="$SIPLOAD" KAMAILIO_SHM_MB="${KAMAILIO_SHM_MB:-1024}" \
        bash "$root/lab/bench/relay-sctp-vm.sh" --out "$out" "${args[@]}"
fi

# Inside the VM.
mkdir -p "$out"
# State and runtime directories hold Unix sockets: on the VM's own /tmp, not the 9p share.
BENCH_STATE_ROOT="$(mktemp -d /tmp/relay-state.XXXXXX)"
export BENCH_STATE_ROOT
n="$(nproc)"
if ((n >= 2)); then
    export SERVER_CORE=0 LOAD_CORE=1
    pinning="proxy on vCPU 0, UAC and UAS on vCPU 1 (taskset inside the VM)"
else
    export SERVER_CORE=0 LOAD_CORE=0
    pinning="one vCPU: proxy, UAC and UAS share it (no pinning possible)"
fi
host_pin="vCPU threads pinned to host CPUs (vng --pin)"
[[ "${SIPWIRE_VM_PIN:-1}" == 1 ]] || host_pin="vCPU threads not pinned on the host"
{
    echo "vm: QEMU TCG (no KVM), kernel $(uname -r), $n vCPUs, $(awk '/MemTotal/ { printf "%.1f GB", $2 / 1048576 }' /proc/meminfo)"
    echo "pinning: $pinning; $host_pin"
    echo "kamailio: $(kamailio -v 2>/dev/null | head -1)"
} | tee "$out/vm.txt"
"$root/lab/bench/relay-cpu.sh" --out "$out" "${args[@]}"
