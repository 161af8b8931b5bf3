#!/usr/bin/env python3
"""Reads `cargo test --no-run --message-format=json` on stdin and prints one line per lab test binary
(test targets named lab_*): "<package directory>\t<executable>". Used by lab/test-all.sh."""
import json
import os
import sys

seen = set()
for line in sys.stdin:
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    if msg.get("reason") != "compiler-artifact" or not msg.get("executable"):
        continue
    target = msg.get("target", {})
    if "test" not in target.get("kind", []) or not target.get("name", "").startswith("lab_"):
        continue
    exe = msg["executable"]
    if exe in seen:
        continue
    seen.add(exe)
    print(f"{os.path.dirname(msg['manifest_path'])}\t{exe}")
