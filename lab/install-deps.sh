#!/usr/bin/env bash
# Install everything the sipwire test suite needs on Debian 12 (run as root). Idempotent and quiet.
# --bench-only: only what lab/bench/compare.sh needs (Kamailio with TLS, openssl, taskset, ss).
set -euo pipefail
bench_only=0
[[ "${1:-}" == --bench-only ]] && bench_only=1

packages=(
    iproute2 kmod procps openssl            # netns, veth, netem (tc), TLS peer checks
    dnsmasq-base                            # the lab's real DNS server
    lksctp-tools sip-tester                 # real SCTP and SIP peers
    kamailio kamailio-sctp-modules kamailio-tls-modules   # the reference SIP server, as an interop peer
    qemu-system-x86 linux-image-amd64 busybox-static   # the lab VM: a real kernel with SCTP
    valgrind                                # repeatable instruction counts for benchmarks
    gcc                                     # C baselines of the SCTP benchmark
    libssl-dev pkg-config                   # the openssl crate (DTLS over SCTP)
    systemd                                 # systemd-analyze verify of the shipped unit
    sngrep tshark                           # HEP capture: a real collector and the pcap reader
)
if ((bench_only)); then
    packages=(kamailio kamailio-tls-modules openssl util-linux iproute2 procps python3)
fi
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    echo "install-deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
    # The tests start Kamailio themselves; the packaged service would hold port 5060.
    if [[ " ${missing[*]} " == *" kamailio "* ]] && command -v systemctl >/dev/null; then
        systemctl disable --now kamailio >/dev/null 2>&1 || true
    fi
fi

((bench_only)) && exit 0

if ! command -v vng >/dev/null; then
    echo "install-deps: installing virtme-ng"
    pip install -q 'virtme-ng==1.42' 2>/dev/null || pip install -q virtme-ng
    hash -r
fi
command -v vng >/dev/null || { echo "install-deps: vng not on PATH after pip install" >&2; exit 1; }

if ! command -v cargo-nextest >/dev/null; then
    echo "install-deps: installing cargo-nextest"
    cargo install -q cargo-nextest --locked
fi
