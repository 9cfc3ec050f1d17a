#!/usr/bin/env bash
# What `make test` runs: real Redis and Postgres on free loopback ports, every test, then cleanup.
set -euo pipefail
cd "$(dirname "$0")/.."
state=$(mktemp -d /tmp/vitrine-test.XXXXXX)
chmod 755 "$state"
trap 'scripts/test-services.sh stop "$state"' EXIT
scripts/test-services.sh start "$state"
# shellcheck disable=SC1091
source "$state/env"
set +e
swift build --build-tests 2>&1 | grep -vE '^\[[0-9]+/[0-9]+\] (Compiling|Emitting|Wrapping|Write|Linking|Planning|Merging)'
build_status=${PIPESTATUS[0]}
if [ "$build_status" -ne 0 ]; then echo "build failed" >&2; exit "$build_status"; fi
echo "running tests..."
swift test --skip-build >"$state/test.log" 2>&1
status=$?
set -e
if [ "$status" -ne 0 ]; then
  # Everything, so that the failure's details are in the CI log.
  cat "$state/test.log"
else
  grep -E '^(✔|✘) Suite ' "$state/test.log" | sed -E 's/ after [0-9.]+ seconds\.//' || true
fi
# The real summary last (XCTest's "Executed 0 tests" is printed before Swift Testing's).
grep -E 'Test run with [0-9]+ tests?' "$state/test.log" | tail -n 1 || true
exit "$status"
