#!/usr/bin/env bash
# What `make bench` runs: Vitrine next to nginx proxy_cache and Varnish in front of the same origin
# (../shared/bench/peers.sh, same wrk command, ratios to nginx serving the bytes from memory), then
# the load generator: next to wrk on the limit (it must not be the bottleneck), on Vitrine's hits
# in closed and open loop (the open loop on the limit too, as the machine's own tail), and the
# storefront mix on the demo. First, how steadily the idle machine's CPU runs
# (scripts/cpu-steadiness.py). Writes everything to $BENCH_OUT and regenerates docs/PERFORMANCE.md.
#   DURATION=6 REPS=3 scripts/bench.sh   (peers: median of REPS interleaved runs per cell)
set -euo pipefail
cd "$(dirname "$0")/.."
peers=${VITRINE_PEERS:-../shared/bench/peers.sh}
[ -x "$peers" ] || { echo "bench: $peers not found (set VITRINE_PEERS to the peers.sh of the shared bench kit)" >&2; exit 1; }
duration=${DURATION:-6}
reps=${REPS:-3}
out=${BENCH_OUT:-/tmp/vitrine-bench/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
# What is measured, recorded now: the tree changes afterwards (docs/PERFORMANCE.md, at least).
dirty=$(git status --porcelain --untracked-files=no | grep -q . && echo " with uncommitted changes" || true)
echo "\`$(git rev-parse --short HEAD)\`$dirty" >"$out/vitrine-commit.txt"

swift build -c release --product vitrine 2>&1 | tail -n 1
swift build -c release --package-path Benchmarks --product vitrine-load 2>&1 | tail -n 1
load=Benchmarks/.build/release/vitrine-load

"$peers" setup
export VITRINE_ADMIN_TOKEN=bench-token-0123456789
.build/release/vitrine serve --origin http://127.0.0.1:18001 --listen 127.0.0.1:18040 --admin-listen 127.0.0.1:18041 \
  >"$out/vitrine.log" 2>&1 &
serve=$!
.build/release/vitrine demo --port 18050 --admin-port 18051 >"$out/demo.log" 2>&1 &
demo=$!
cleanup() { kill "$serve" "$demo" 2>/dev/null || true; "$peers" teardown >/dev/null 2>&1 || true; }
trap cleanup EXIT
for port in 18040 18050; do
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
done

echo "== CPU steadiness of the idle machine (10 ms windows)"
python3 scripts/cpu-steadiness.py 5 | tee "$out/cpu-steadiness.json"

echo "== peers: same wrk -t1 command for every target"
"$peers" run --extra vitrine=127.0.0.1:18040 --targets "limit-w1 ngx-cache-w1 ngx-cache-nosf-w1 varnish" \
  --sizes "product category" --conns "64 256" --reps "$reps" --duration "$duration" --out "$out/peers" | tee "$out/peers.txt"

echo "== TLS: Vitrine next to nginx proxy_cache with TLS (HTTP/1.1 with wrk, HTTP/2 with h2load, handshakes)"
scripts/bench-tls.sh "$out/tls" | tee "$out/tls.txt"

echo "== vitrine-load next to wrk -t1 on the limit (nginx from memory, 2 KB): $reps interleaved runs each"
# Each run's client CPU (user + system seconds) goes next to it: the load generator must not cost
# more per request than wrk, or it, not the server, sets the pace.
with_cpu() { python3 -c 'import resource, subprocess, sys
subprocess.run(sys.argv[2:], check=True)
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], "w").write(f"{usage.ru_utime + usage.ru_stime:.3f}\n")' "$@"; }
for rep in $(seq 1 "$reps"); do
  with_cpu "$out/wrk-limit-$rep.cpu" wrk -t1 -c64 -d"${duration}s" --latency http://127.0.0.1:18030/product.json >"$out/wrk-limit-$rep.txt"
  with_cpu "$out/load-limit-$rep.cpu" "$load" --url http://127.0.0.1:18030/product.json -c 64 --duration "${duration}s" --quiet --json >"$out/load-limit-$rep.json"
  echo "run $rep: wrk $(awk '/Requests\/sec/{print $2}' "$out/wrk-limit-$rep.txt") req/s, vitrine-load $(python3 -c 'import json, sys; print(round(json.load(open(sys.argv[1]))["rps"], 2))' "$out/load-limit-$rep.json") req/s"
done

echo "== vitrine-load on Vitrine's hits (2 KB): closed loop, then open loop at 20k req/s, on the limit and on Vitrine"
"$load" --url http://127.0.0.1:18040/product.json -c 64 --duration "${duration}s" --quiet --json >"$out/load-vitrine.json"
# The same open loop on the limit: a tail both show comes from the machine, not from the server.
"$load" --url http://127.0.0.1:18030/product.json -c 64 --rate 20000 --duration "${duration}s" --quiet --json >"$out/load-limit-open.json"
"$load" --url http://127.0.0.1:18040/product.json -c 64 --rate 20000 --duration "${duration}s" --quiet --json >"$out/load-vitrine-open.json"

echo "== vitrine-load storefront mix on the demo"
"$load" --url http://127.0.0.1:18050/ --mix storefront -c 64 --duration "${duration}s" --quiet --json >"$out/load-storefront.json"

echo "== RSS under churn: --memory 32MiB, uniform reads of 100,000 products for ${SOAK_SECONDS:-60}s (must stay within 1.5x the budget)"
scripts/rss-soak.sh "${SOAK_SECONDS:-60}" | tee "$out/rss-soak.json"

if [ "${BENCH_MICRO:-1}" = 1 ]; then
  echo "== micro-benchmarks (ordo-one/benchmark)"
  (cd Benchmarks && swift package --disable-sandbox benchmark --target StoreBenchmarks --target HTTPBenchmarks --no-progress) >"$out/micro.txt" 2>&1 || true
fi
python3 scripts/performance-doc.py "$out" >docs/PERFORMANCE.md
echo "results in $out; docs/PERFORMANCE.md regenerated"
