#!/usr/bin/env bash
# The cache budget as a memory bound: `vitrine serve --memory MEMORY` under uniform random reads of
# PRODUCTS products (far more than fit), for SECONDS. RSS is read from /proc once a second; the
# run fails when RSS grows past 1.5 times the budget over what the process held before the load.
#   scripts/rss-soak.sh [SECONDS]   (MEMORY=32MiB PRODUCTS=100000 VITRINE=.build/release/vitrine; vitrine-load in release)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
memory=${MEMORY:-32MiB}
products=${PRODUCTS:-100000}
budget_kib=$(python3 -c 'import re,sys; m=re.fullmatch(r"(\d+)(KiB|MiB|GiB)", sys.argv[1]); print(int(m[1]) * {"KiB":1,"MiB":1024,"GiB":1048576}[m[2]])' "$memory")
load=Benchmarks/.build/release/vitrine-load
vitrine=${VITRINE:-.build/release/vitrine}
[ -x "$vitrine" ] && [ -x "$load" ] || { echo "rss-soak: build vitrine and vitrine-load in release first" >&2; exit 1; }
export VITRINE_ADMIN_TOKEN=soak-token-0123456789
"$vitrine" origin --port 18060 --products "$products" >/tmp/vitrine-soak-origin.log 2>&1 &
origin=$!
"$vitrine" serve --origin http://127.0.0.1:18060 --listen 127.0.0.1:18061 --admin-listen 127.0.0.1:18062 \
  --memory "$memory" --event-loops 1 >/tmp/vitrine-soak-serve.log 2>&1 &
serve=$!
trap 'kill $origin $serve 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -s -o /dev/null http://127.0.0.1:18061/catalog/products/1 && break; sleep 0.1; done
rss() { awk '/^VmRSS/{print $2}' "/proc/$serve/status"; }
before=$(rss)
"$load" --url http://127.0.0.1:18061/ --mix products --products "$products" -c 32 --duration "${seconds}s" --quiet --json \
  >/tmp/vitrine-soak-load.json &
loader=$!
peak=$before
while kill -0 "$loader" 2>/dev/null; do
  now=$(rss); [ "$now" -gt "$peak" ] && peak=$now
  sleep 1
done
wait "$loader"
after=$(rss)
stats=$(curl -s -H "Authorization: Bearer $VITRINE_ADMIN_TOKEN" http://127.0.0.1:18062/stats)
python3 - "$before" "$peak" "$after" "$budget_kib" "$seconds" "$stats" /tmp/vitrine-soak-load.json <<'PY'
import json, sys
before, peak, after, budget, seconds = map(int, sys.argv[1:6])
stats = json.loads(sys.argv[6]); load = json.load(open(sys.argv[7]))
growth = peak - before
result = {"budget_mib": budget / 1024, "rss_before_mib": round(before / 1024, 1), "rss_peak_mib": round(peak / 1024, 1),
          "rss_after_mib": round(after / 1024, 1), "growth_mib": round(growth / 1024, 1), "growth_over_budget": round(growth / budget, 2),
          "seconds": seconds, "requests": load.get("requests"), "rps": round(load.get("rps", 0)), "entries": stats["entries"],
          "cache_bytes_mib": round(stats["bytes"] / 1048576, 1)}
print(json.dumps(result))
sys.exit(0 if growth <= 1.5 * budget else 1)
PY
