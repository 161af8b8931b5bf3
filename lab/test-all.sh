#!/usr/bin/env bash
# The whole sipwire test suite (README's test command). Run as root on Debian 12; installs what it needs.
#
#  1. system packages, virtme-ng, cargo-nextest           (lab/install-deps.sh)
#  2. cargo fmt --check and clippy -D warnings
#  3. every test that needs no kernel SCTP, natively      (test binaries not named lab_*)
#  4. every lab_* test binary (root, netns, kernel SCTP): natively where the kernel has SCTP, otherwise in a
#     VM booting Debian's stock kernel (lab/vm/run-in-vm.sh). A VM that cannot boot is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
start=$(date +%s)
step() { echo; echo "=== $* ($(( $(date +%s) - start ))s)"; }

step "installing dependencies"
bash lab/install-deps.sh

# A clean build of every target takes about 3 GiB; a full disk shows up as a linker crash, so say it first.
target_dir="${CARGO_TARGET_DIR:-target}"
mkdir -p "$target_dir"
free_kib=$(df -Pk "$target_dir" | awk 'NR == 2 {print $4}')
if (( free_kib < 4 * 1024 * 1024 )); then
    echo "test-all: only $((free_kib / 1024)) MiB free for $target_dir; the build needs about 4 GiB" >&2
    exit 1
fi

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

step "native tests"
cargo nextest run --workspace --no-fail-fast -E 'not binary(/^lab_/)'

step "lab tests (root, network namespaces, kernel SCTP)"
list="$target_dir/lab-tests.txt"
cargo test --workspace --no-run --message-format=json | python3 lab/lab-binaries.py > "$list"
echo "$(wc -l < "$list") lab test binaries"
if python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_STREAM, 132)' 2>/dev/null; then
    echo "kernel has SCTP: running lab tests natively"
    bash lab/run-lab-binaries.sh "$list"
else
    echo "kernel has no SCTP: running lab tests in the lab VM (Debian kernel under virtme-ng)"
    bash lab/vm/run-in-vm.sh --mem 2G -- bash lab/run-lab-binaries.sh "$list"
fi

step "all tests passed"
