#!/usr/bin/env bash
# A configuration reload (SIGHUP) in the middle of storefront traffic: the demo origin, a node
# started from config/demo.yaml, vitrine-load's storefront mix at a fixed rate; at a third of the
# run the file changes (a TTL, a new route) and the node gets SIGHUP. Prints the load's errors and
# the hit ratio (from /stats) before and after the reload.
# Usage: scripts/reload-under-load.sh [SECONDS] [RATE]   (release binaries: make release, Benchmarks)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
rate=${2:-4000}
vitrine=.build/release/vitrine
load=Benchmarks/.build/release/vitrine-load
work=$(mktemp -d)
export VITRINE_ADMIN_TOKEN=reload-token-0123456789
sed -e 's#http://127.0.0.1:9000#http://127.0.0.1:18191#' -e 's#127.0.0.1:8080#127.0.0.1:18190#' -e 's#127.0.0.1:8081#127.0.0.1:18192#' \
  config/demo.yaml > "$work/vitrine.yaml"
"$vitrine" origin --port 18191 --products 2000 > "$work/origin.log" 2>&1 &
origin=$!
"$vitrine" serve --config "$work/vitrine.yaml" --event-loops 1 > "$work/node.log" 2>&1 &
node=$!
trap 'kill $node $origin 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 200); do curl -sf -o /dev/null http://127.0.0.1:18192/readyz -H "Authorization: Bearer $VITRINE_ADMIN_TOKEN" && break; sleep 0.1; done
stats() { curl -sf http://127.0.0.1:18192/stats -H "Authorization: Bearer $VITRINE_ADMIN_TOKEN"; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
"$load" --url http://127.0.0.1:18190 --mix storefront --products 2000 --rate "$rate" --duration "${seconds}s" --json > "$work/load.json" 2> "$work/load.err" &
loader=$!
third=$((seconds / 3))
sleep 2
s0=$(stats)
sleep $((third - 2))
s1=$(stats)
# The change: catalog TTL 60s -> 120s, and a route the file did not have.
sed -i -e '0,/default_ttl: 60s/s//default_ttl: 120s/' "$work/vitrine.yaml"
sed -i -e 's#^routes:.*#routes:\n  - prefix: /catalog/new/\n    origin: catalog\n    default_ttl: 10s#' "$work/vitrine.yaml"
kill -HUP "$node"
sleep 1
s2=$(stats)
wait "$loader"
s3=$(stats)
ratio() { python3 -c "
import json,sys
a,b=json.loads(sys.argv[1]),json.loads(sys.argv[2])
h=b['hits']-a['hits']+b['stale']-a['stale']; m=b['misses']-a['misses']; p=b.get('passes',0)-a.get('passes',0)
print(f'{h/(h+m):.4f} ({h} hits, {m} misses, {p} passes)')" "$1" "$2"; }
echo "reload: $(grep -c 'configuration reloaded' "$work/node.log") applied, $(grep -c 'reload refused' "$work/node.log") refused; $(grep 'configuration reloaded' "$work/node.log" | head -1 | cut -c1-200)"
echo "hit ratio before the reload (2s..${third}s): $(ratio "$s0" "$s1")"
echo "hit ratio after the reload (+1s..end):      $(ratio "$s2" "$s3")"
python3 - "$work/load.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
keys = [k for k in d if any(w in k for w in ("error", "status", "requests", "rps", "p99", "p50", "non"))]
print("load:", {k: d[k] for k in keys})
PY
