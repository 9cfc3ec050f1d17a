#!/usr/bin/env bash
# Installs the Debian packages the build, the tests and the demo need, when missing.
# Usage: scripts/install-deps.sh [build|test|bench]
set -euo pipefail
need=()
want() { dpkg -s "$1" >/dev/null 2>&1 || need+=("$1"); }
want zlib1g-dev       # gzip of stored responses (compress-nio links libz)
want libhiredis-dev   # RESP encoding and parsing for the Redis client
case "${1:-build}" in
  test) want redis-server; want postgresql; want postgresql-contrib; want openssl ;;  # openssl: s_client resumes sessions in a test
  bench) want wrk; want nginx; want varnish; want varnish-modules; want nghttp2-client ;;  # h2load: the TLS row
esac
if ! command -v swift >/dev/null 2>&1; then
  echo "swift is not on PATH: Vitrine needs the Swift 6 toolchain (swift.org)." >&2
  exit 1
fi
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "Installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
