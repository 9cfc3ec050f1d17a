#!/usr/bin/env bash
# The shared tier's cost, measured: the proxy CPU of an L2 hit (single Redis and a 3-primary
# cluster) against an L1 hit's, and our Redis client against redis-benchmark on one connection.
#   REPS=3 DURATION=10 RATE=12000 scripts/bench-l2.sh [OUTDIR]
# (RATE=none: peak runs only; CLIENT_REPS=0: no client runs.)
#
# One `vitrine serve --event-loops 1` in front of the demo origin, driven by
# `vitrine-load --mix products --products 10000 -c 64` after a warm-up pass that stores every
# product:
#   - L1: `--memory 512MiB`, no Redis: every answer an L1 hit;
#   - L2: `--memory 2MiB` (about 500 of the 10,000 products), so about 96% of answers come from
#     Redis, on a single server and on a cluster.
# Proxy CPU is read from /proc/PID/stat around each run: microseconds of CPU per request. Each is
# run at its own closed-loop peak and, like for like, at one open-loop rate (RATE) for all three.
# The runs are interleaved (L1, single, cluster, L1, ...) and each cell's median is reported.
# Throwaway servers (scripts/test-services.sh) on free loopback ports, stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${REPS:-3}
duration=${DURATION:-10}
rate=${RATE:-12000}
out=${1:-/tmp/vitrine-bench-l2/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
command -v redis-benchmark >/dev/null || { echo "bench-l2: redis-benchmark not found (scripts/install-deps.sh test)" >&2; exit 1; }

swift build -c release --product vitrine 2>&1 | tail -n 1
swift build -c release --package-path Benchmarks --product vitrine-load 2>&1 | tail -n 1
swift build -c release --package-path Benchmarks --product redis-throughput 2>&1 | tail -n 1
bin=.build/release/vitrine
load=Benchmarks/.build/release/vitrine-load

services=$(mktemp -d /tmp/vitrine-bench-l2.XXXXXX)
chmod 755 "$services"  # Postgres (started beside Redis) runs as its own user
origin=""
cleanup() {
  [ -n "$origin" ] && kill "$origin" 2>/dev/null || true
  scripts/test-services.sh stop "$services" >/dev/null 2>&1 || true
  rm -rf "$services"
}
trap cleanup EXIT
scripts/test-services.sh start "$services" >"$out/services.log"
# shellcheck disable=SC1091
source "$services/env"
single=$VITRINE_TEST_REDIS_URL
cluster="redis-cluster://$VITRINE_TEST_REDIS_CLUSTER"

export VITRINE_ADMIN_TOKEN=bench-token-0123456789
$bin demo --port 18180 --admin-port 18181 --origin-port 18190 >"$out/demo.log" 2>&1 &
origin=$!
for _ in $(seq 1 100); do curl -s -o /dev/null http://127.0.0.1:18190/ && break; sleep 0.1; done

# run LABEL REDIS MEMORY RATE: one measurement, appended to $out/runs.jsonl.
run() {
  local label=$1 redis=$2 memory=$3 at=$4
  local args=(serve --origin http://127.0.0.1:18190 --listen 127.0.0.1:18192 --admin-listen 127.0.0.1:18193
    --memory "$memory" --event-loops 1 --log-level error)
  [ "$redis" != none ] && args+=(--redis "$redis")
  $bin "${args[@]}" >"$out/serve-$label.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 100); do curl -s -o /dev/null http://127.0.0.1:18193/ && break; sleep 0.1; done
  "$load" --url http://127.0.0.1:18192/ --mix products --products 10000 -c 64 --duration 8s --quiet >/dev/null
  local before after result
  before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  result=$("$load" --url http://127.0.0.1:18192/ --mix products --products 10000 -c 64 --duration "${duration}s" \
    ${at:+--rate "$at"} --quiet --json)
  after=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  local stats
  stats=$(curl -s -H "Authorization: Bearer $VITRINE_ADMIN_TOKEN" http://127.0.0.1:18193/stats)
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  python3 - "$label" "${at:-peak}" "$result" "$before" "$after" "$(getconf CLK_TCK)" "$stats" >>"$out/runs.jsonl" <<'PY'
import json, sys
label, at, result, before, after, tick, stats = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), json.loads(sys.argv[7])
requests = result.get("requests") or 0
cpu = (after - before) / tick
print(json.dumps({"label": label, "at": at, "rps": result.get("rps"), "requests": requests,
    "us_per_request": cpu / max(requests, 1) * 1e6, "p99_ms": result.get("latency_ms", {}).get("p99"),
    "errors": result.get("errors", {}).get("total"), "l2_hits_total": stats.get("redis", {}).get("l2_hits", 0)}))
PY
  tail -n 1 "$out/runs.jsonl"
}

echo "== proxy CPU per request: L1 hits, L2 hits on a single Redis and on a cluster ($reps interleaved runs each)"
for rep in $(seq 1 "$reps"); do
  rates=("")
  [ "$rate" != none ] && rates+=("$rate")
  for at in "${rates[@]}"; do
    run l1 none 512MiB "$at"
    run l2-single "$single" 2MiB "$at"
    run l2-cluster "$cluster" 2MiB "$at"
  done
done

client_reps=${CLIENT_REPS:-$reps}
echo "== our Redis client against redis-benchmark, GETs on one connection, pipelines of 64 ($client_reps interleaved runs)"
port=${single#redis://127.0.0.1:}
port=${port%%/*}
for rep in $(seq 1 "$client_reps"); do
  ours=$(Benchmarks/.build/release/redis-throughput --url "$single" --pipeline 64 --in-flight 1 | grep -o '^[0-9]*')
  theirs=$(redis-benchmark -p "$port" -t get -P 64 -c 1 -n 3000000 -q | tr '\r' '\n' | grep 'GET:' | tail -n 1 | grep -o '[0-9.]* requests per second' | cut -d' ' -f1)
  echo "{\"label\": \"client\", \"ours\": $ours, \"redis_benchmark\": $theirs}" | tee -a "$out/runs.jsonl"
done

python3 - "$out/runs.jsonl" <<'PY' | tee "$out/summary.txt"
import json, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1])]
def median(values): return statistics.median(values) if values else float("nan")
print()
for at in ("peak", None):
    cells = {}
    for run in runs:
        if run["label"] == "client" or (run["at"] == "peak") != (at == "peak"): continue
        cells.setdefault(run["label"], []).append(run)
    if not cells: continue
    name = "closed loop, each at its own peak" if at == "peak" else f"open loop, {next(iter(cells.values()))[0]['at']} req/s for all"
    print(f"{name}:")
    l1 = median([r["us_per_request"] for r in cells.get("l1", [])])
    for label in ("l1", "l2-single", "l2-cluster"):
        rows = cells.get(label, [])
        us = [r["us_per_request"] for r in rows]
        print(f"  {label:10s} {median([r['rps'] for r in rows]):9.0f} req/s  {median(us):5.1f} us/request (runs {', '.join(f'{u:.1f}' for u in us)})"
              f"  ratio to L1 {median(us) / l1:.2f}  p99 {median([r['p99_ms'] for r in rows]):.2f} ms  errors {sum(r['errors'] or 0 for r in rows)}")
clients = [r for r in runs if r["label"] == "client"]
if clients:
    ratios = [r["ours"] / r["redis_benchmark"] for r in clients]
    print(f"client: {median([r['ours'] for r in clients]):.0f} GET/s against redis-benchmark's {median([r['redis_benchmark'] for r in clients]):.0f};"
          f" ratio median {median(ratios):.2f} (runs {', '.join(f'{x:.2f}' for x in ratios)})")
PY
echo "bench-l2: results in $out"
