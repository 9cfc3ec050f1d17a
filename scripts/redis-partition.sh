#!/usr/bin/env bash
# A partition of one node under load: node A reaches Redis through scripts/tcp-cut.py, which is
# cut 10 s into a 30 s open-loop run (vitrine-load, 20,000 requests/s on A) and restored 10 s
# later; A purges a tag while cut off. Prints A's hits, L2 hits, misses and origin requests per
# 2 s, its L1 drops, purges caught up and outbox backlog, and how long after the link came back
# node B (direct to Redis) applied A's held purge.
#   REDIS_PORT=6379 scripts/redis-partition.sh     (release builds of vitrine and vitrine-load)
set -u
cd "$(dirname "$0")/.."
REDIS_PORT=${REDIS_PORT:?the port of a redis-server to use (its database 200 is emptied)}
V=.build/release/vitrine
export VITRINE_ADMIN_TOKEN=bench-token-0123456789
redis-cli -p $REDIS_PORT -n 200 flushdb >/dev/null
pkill -f "vitrine (origin|serve) .*1910" ; pkill -f tcp-cut.py; sleep 0.5
$V origin --port 19100 --products 2000 >/tmp/exp-origin.log 2>&1 &
python3 scripts/tcp-cut.py 19300 $REDIS_PORT & FWD=$!
sleep 1
$V serve --origin http://127.0.0.1:19100 --listen 127.0.0.1:19101 --admin-listen 127.0.0.1:19102 --redis redis://127.0.0.1:19300/200 --event-loops 1 --log-level warning >/tmp/exp-a.log 2>&1 &
$V serve --origin http://127.0.0.1:19100 --listen 127.0.0.1:19103 --admin-listen 127.0.0.1:19104 --redis redis://127.0.0.1:$REDIS_PORT/200 --event-loops 1 --log-level warning >/tmp/exp-b.log 2>&1 &
sleep 2
# Warm both nodes' L1 with the 1,000 products the load reads.
python3 - <<'PY'
import urllib.request
for _ in range(2):
    for port in (19101, 19103):
        for i in range(1, 1001): urllib.request.urlopen(f"http://127.0.0.1:{port}/catalog/products/{i}").read()
PY
python3 - <<'PY' &
import json, time, urllib.request, subprocess, os, signal
H={"Authorization":"Bearer bench-token-0123456789"}
def stats(port):
    return json.load(urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/stats", headers=H)))
def origin():
    return json.load(urllib.request.urlopen("http://127.0.0.1:19100/_origin/stats")).get("requests", 0)
fwd = int(os.popen("pgrep -f tcp-cut.py").read().split()[0])
rows=[]; t0=time.time(); prev=None; cut_at=None; restored=None; applied=None
b0 = stats(19104)["redis"]["remote_purges"]
while time.time()-t0 < 30:
    now=time.time()-t0
    if cut_at is None and now >= 10:
        os.kill(fwd, signal.SIGUSR1); cut_at=now
    if cut_at and now >= 12 and not any(r.get("purged") for r in rows):
        req=urllib.request.Request("http://127.0.0.1:19102/purge", data=b'{"tags":["product:5"]}', headers=H, method="POST")
        urllib.request.urlopen(req).read(); rows.append({"purged": True})
    if restored is None and now >= 20:
        os.kill(fwd, signal.SIGUSR2); restored=time.time()
    if restored and applied is None and stats(19104)["redis"]["remote_purges"] > b0:
        applied=time.time()-restored
    a=stats(19102); o=origin()
    cur=(now, a["hits"], a["redis"]["l2_hits"], a["misses"], o)
    if prev and (int(cur[0])!=int(prev[0])):
        pass
    rows.append({"t":round(now,2),"hits":a["hits"],"l2":a["redis"]["l2_hits"],"misses":a["misses"],"origin":o,"drops":a["redis"]["purge_log"]["l1_drops"],"caught":a["redis"]["purge_log"]["caught_up"],"backlog":a["redis"]["outbox"]["backlog"]})
    time.sleep(0.002 if restored and applied is None else 0.5)
samples=[r for r in rows if "t" in r]
# per 2-second windows
print("window   hits/s   l2/s  misses/s  origin/s  l1_drops caught_up backlog")
w=0
while w < 30:
    inside=[r for r in samples if w <= r["t"] < w+2]
    if len(inside)>=2:
        a,b=inside[0],inside[-1]; dt=b["t"]-a["t"]
        print(f"{w:2d}-{w+2:2d}s  {(b['hits']-a['hits'])/dt:8.0f} {(b['l2']-a['l2'])/dt:6.0f} {(b['misses']-a['misses'])/dt:8.0f} {(b['origin']-a['origin'])/dt:8.0f}  {b['drops']:8d} {b['caught']:9d} {b['backlog']:7d}")
    w+=2
print(f"cut at {cut_at:.1f}s, restored at 20s; B applied A's held purge {applied*1000 if applied else float('nan'):.1f} ms after the link came back")
PY
MON=$!
Benchmarks/.build/release/vitrine-load --url http://127.0.0.1:19101/catalog/products/1 --mix products --products 1000 --rate 20000 --duration 30s 2>&1 | tail -4
wait $MON
pkill -f "vitrine (origin|serve) .*1910"; kill $FWD 2>/dev/null
