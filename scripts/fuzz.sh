#!/usr/bin/env bash
# Builds the libFuzzer targets (Fuzz/Sources) with -sanitize=fuzzer,address and runs each for
# FUZZ_SECONDS, starting from the committed seed corpus (Fuzz/Corpus/TARGET). New inputs found
# go to a scratch corpus, not into the repository. A crash fails the run and leaves the input in
# .build-fuzz/crashes/. Prints one line per target: executions, and crashes.
# Usage: scripts/fuzz.sh [TARGET...]   (FUZZ_SECONDS, default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
scratch=.build-fuzz
export VITRINE_FUZZ=1
swift build --scratch-path "$scratch" --product vitrine-fuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -enable-testing 2>&1 \
  | grep -vE '^\[[0-9]+/[0-9]+\] (Compiling|Emitting|Wrapping|Write|Linking|Planning|Merging)|Cannot export local symbol' || true
binary="$scratch/debug/vitrine-fuzz"
[ -x "$binary" ] || { echo "fuzz build failed" >&2; exit 1; }
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(request-decoder request-differential http-date cache-control accept-encoding-vary cache-key tag-headers resp l2-entry admin-json feed-cursor client-address http2-request)
fi
mkdir -p "$scratch/crashes"
failed=0
crashed=0
for target in "${targets[@]}"; do
  work="$scratch/corpus/$target"
  mkdir -p "$work"
  log="$scratch/$target.log"
  set +e
  VITRINE_FUZZ_TARGET="$target" ASAN_OPTIONS=detect_leaks=0 SWIFT_BACKTRACE=enable=no "$binary" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -max_len=8192 -print_final_stats=1 \
    -artifact_prefix="$scratch/crashes/$target-" "$work" "Fuzz/Corpus/$target" >"$log" 2>&1
  status=$?
  set -e
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
  if [ "$status" -eq 0 ]; then
    echo "fuzz $target: $runs executions in ${seconds}s, 0 crashes"
  else
    failed=1
    crashed=$((crashed + 1))
    echo "fuzz $target: CRASH after $runs executions (exit $status); input in $scratch/crashes/" >&2
    grep -E 'Fatal error|ERROR: |SUMMARY|differential' "$log" | head -20 >&2 || tail -30 "$log" >&2
  fi
done
# The plain summary, last: targets that ran clean and targets that crashed.
echo "fuzz: $((${#targets[@]} - crashed)) passed, $crashed failed"
exit "$failed"
