#!/usr/bin/env bash
# Fuzzes the wire protocol: builds the cargo-fuzz targets in fuzz/ and runs each one in turn for the given time.
#
#   scripts/fuzz.sh [seconds] [target...]     default: 600 s each, every target (docs/fuzzing.md)
#
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). One fuzzer process at a time
# (-jobs=1 -workers=1). The corpus grows in fuzz/corpus/<target>/ (seeded from the committed fuzz/seeds/<target>/),
# crash inputs land in fuzz/artifacts/<target>/, libFuzzer's output in fuzz/logs/<target>.log.
# Extra libFuzzer flags can be passed in FUZZ_ARGS. Exits 1 if any target crashed (or timed out, or ran out of memory).
set -euo pipefail

secs=${1:-600}
shift || true
root=$(cd "$(dirname "$0")/.." && pwd)
fuzz="$root/fuzz"
bin="$fuzz/target/x86_64-unknown-linux-gnu/release"
if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    mapfile -t targets < <(cd "$fuzz" && cargo +nightly fuzz list)
fi

# Release build with debug assertions and overflow checks, AddressSanitizer (cargo-fuzz's default).
cd "$fuzz"
if [[ $# -gt 0 ]]; then
    for t in "${targets[@]}"; do cargo +nightly fuzz build -a "$t"; done
else
    cargo +nightly fuzz build -a
fi

mkdir -p "$fuzz/logs"
summary=()
failed=0
for t in "${targets[@]}"; do
    corpus="$fuzz/corpus/$t" artifacts="$fuzz/artifacts/$t" log="$fuzz/logs/$t.log"
    mkdir -p "$corpus" "$artifacts"
    cp -n "$fuzz/seeds/$t/"* "$corpus/" 2>/dev/null || true
    # With -jobs, libFuzzer runs the fuzzer as a child writing to fuzz-0.log in the current directory.
    work=$(mktemp -d)
    stamp="$work/stamp"
    touch "$stamp"
    echo "== $t: fuzzing for $secs s (corpus $(ls "$corpus" | wc -l) files)"
    start=$(date +%s)
    rc=0
    # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
    (cd "$work" && ASAN_OPTIONS=detect_odr_violation=0 "$bin/$t" "$corpus" -max_total_time="$secs" -jobs=1 -workers=1 \
        -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 -artifact_prefix="$artifacts/" ${FUZZ_ARGS:-} \
        >"$work/parent.log" 2>&1) || rc=$?
    elapsed=$(($(date +%s) - start))
    cp "$work/fuzz-0.log" "$log" 2>/dev/null || cp "$work/parent.log" "$log"
    job_rc=$(sed -n 's/.*Job 0 exited with exit code \(-\?[0-9]*\).*/\1/p' "$work/parent.log" | tail -1)
    found=$(find "$artifacts" -type f -newer "$stamp" \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
        -o -name 'oom-*' \) | sort)
    rm -rf "$work"

    # The final stats, and the last status line's coverage.
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    execs=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    status=$(grep -E '^#[0-9]+.* cov: ' "$log" | tail -1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$status")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$status")
    [[ -n $runs ]] || runs=$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$status")
    [[ -n $execs ]] || execs=$(sed -n 's/.* exec\/s: \([0-9]*\).*/\1/p' <<<"$status")
    if [[ -n $found || $rc -ne 0 || (-n $job_rc && $job_rc -ne 0) || -z $status ]]; then
        failed=1
        verdict="CRASH (exit $rc${job_rc:+, job $job_rc}): ${found:-no artifact, see $log}"
        grep -E 'panicked at|^SUMMARY|ERROR: libFuzzer' "$log" | head -5 || true
    else
        verdict="no crash"
    fi
    line=$(printf '%-16s %6ss  runs %-11s exec/s %-7s cov %-6s ft %-7s %s' \
        "$t" "$elapsed" "${runs:-?}" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$verdict")
    echo "$line"
    summary+=("$line")
done

echo
echo "== fuzz summary ($(date -u +%Y-%m-%dT%H:%MZ), $secs s per target, $(nproc) cores)"
printf '%s\n' "${summary[@]}"
exit "$failed"
