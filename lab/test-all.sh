#!/usr/bin/env bash
# The whole sipwire test suite. Run as root on Debian 12; installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo nextest run --workspace --no-fail-fast
