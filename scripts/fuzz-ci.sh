#!/usr/bin/env bash
# Run every cargo-fuzz target (or the ones named) for SECONDS each (default 30), starting
# from the committed seed corpora. Exits non-zero if any target crashes, fails an
# assertion, times out or runs out of memory; the failing input is left under
# fuzz/artifacts/<target>/ (ignored by git) and named in the output.
#
#   scripts/fuzz-ci.sh [SECONDS] [TARGET...]
#
# New corpus entries go to a temporary directory, so the committed seeds stay small.
# cargo-fuzz passes nightly-only flags (-Zsanitizer=address); RUSTC_BOOTSTRAP=1 lets a
# stable toolchain accept them.
set -euo pipefail

seconds="${1:-30}"
shift || true
cd "$(dirname "$0")/../fuzz"

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP="${RUSTC_BOOTSTRAP:-1}"

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Build every target first: a build failure fails the run.
cargo fuzz build
failed=()
for target in "${targets[@]}"; do
    mkdir -p "$work/corpus/$target" "corpus/$target"
    log="$work/$target.log"
    echo "== $target: ${seconds}s"
    status=0
    # -timeout: one input taking over 10 s is a hang; -rss_limit_mb: memory is bounded.
    cargo fuzz run "$target" "$work/corpus/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1 || status=$?
    grep -E '^(Done [0-9]+ runs|stat::number_of_executed_units|stat::peak_rss_mb)|#[0-9]+.*DONE' "$log" || true
    if [ "$status" -ne 0 ]; then
        echo "!! $target failed (exit $status):"
        grep -m1 -A3 -E "panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer" "$log" || true
        grep -E "^SUMMARY|Test unit written to|^artifact_prefix" "$log" || tail -n 40 "$log"
        failed+=("$target")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz targets that failed: ${failed[*]}"
    exit 1
fi
echo "all ${#targets[@]} fuzz targets ran ${seconds}s without a failure"
