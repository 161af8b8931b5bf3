#!/usr/bin/env bash
# Opens and closes 10,000 TCP connections (and 1,000 TLS ones) against one transport and
# checks that file descriptors, RSS and the flow tables return to their baseline.
# The default test suite runs the same test (tests/transport_leak.rs) in debug mode.
set -euo pipefail
cd "$(dirname "$0")/.."
SIPWIRE_LEAK_CONNECTIONS="${1:-10000}" cargo test --release --test transport_leak -- --nocapture
