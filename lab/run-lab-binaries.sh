#!/usr/bin/env bash
# Runs the lab test binaries listed in a file made by lab/lab-binaries.py, one test at a time, each
# from its package directory (as cargo test does). Used natively and inside the lab VM, where cargo
# is not needed. Exit status: 0 only if the list is non-empty and every binary passed.
set -uo pipefail
list="${1:?usage: $0 <list-file> [test filter]}"
filter="${2:-}"
[[ -f "$list" && -s "$list" ]] || { echo "run-lab-binaries: no lab test binaries listed in $list" >&2; exit 1; }
failed=()
total=0
while IFS=$'\t' read -r dir exe; do
    total=$((total + 1))
    name="$(basename "$exe")"
    echo "--- ${name%-*} (${dir##*/})"
    args=(--test-threads 1)
    [[ -n "$filter" ]] && args+=("$filter")
    if ! (cd "$dir" && "$exe" "${args[@]}"); then
        failed+=("${name%-*}")
    fi
done < "$list"
if [[ $total -eq 0 ]]; then
    echo "run-lab-binaries: no lab test binary could be read from $list" >&2
    exit 1
fi
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "run-lab-binaries: ${#failed[@]} of $total lab test binaries FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "run-lab-binaries: all $total lab test binaries passed"
