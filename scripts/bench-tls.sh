#!/usr/bin/env bash
# The TLS row of `make bench`: cache hits over TLS, Vitrine (one event loop) next to nginx
# proxy_cache with TLS (one worker), both in front of the shared bench origin (port 18001, started
# by ../shared/bench/peers.sh setup), with the same certificate (the test one, RSA 2048) and the
# same bodies:
#   - HTTP/1.1 over TLS: wrk -t1 (keep-alive connections: the handshakes are done once);
#   - HTTP/2: h2load (nghttp2-client), one thread, C connections, M streams each;
#   - handshakes per second: `openssl s_time -new` (a new connection, full handshake, one small
#     request each), which is CPU-bound on the client as much as on the server: compare the two
#     servers' figures with each other, not with other machines; with the RSA 2048 certificate
#     and with an ECDSA P-256 one (made for the run), and resumed (`-reuse`: session tickets).
# Prints one table, and writes it with the raw outputs to $1 (a directory).
#   DURATION=6 REPS=3 scripts/bench-tls.sh /tmp/tls-bench
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-/tmp/vitrine-bench/tls-$(date +%Y%m%d-%H%M%S)}
duration=${DURATION:-6}
reps=${REPS:-3}
mkdir -p "$out"
certs=$PWD/Tests/Fixtures/tls
command -v h2load >/dev/null || { echo "bench-tls: h2load is missing (scripts/install-deps.sh bench installs nghttp2-client)" >&2; exit 1; }
curl -s -o /dev/null http://127.0.0.1:18001/product.json || { echo "bench-tls: the bench origin (127.0.0.1:18001) is not up: run ../shared/bench/peers.sh setup" >&2; exit 1; }

# nginx proxy_cache with TLS and h2, one worker, cache on tmpfs: the shared kit's proxy_cache
# settings with `listen ... ssl http2`.
run=$(mktemp -d /dev/shm/vitrine-tls-nginx.XXXX)
mkdir -p "$run/cache" "$run/tmp"
# An ECDSA P-256 certificate for the second handshake row (self-signed: s_time does not verify).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=shop.example -days 2 \
  -keyout "$run/ec.key" -out "$run/ec.pem" >/dev/null 2>&1
chmod -R 777 "$run"
cat >"$run/nginx.conf" <<EOF
user www-data;
worker_processes 1;
pid $run/nginx.pid;
error_log $run/error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    sendfile off;
    tcp_nodelay on;
    keepalive_timeout 65s;
    keepalive_requests 1000000;
    client_body_temp_path $run/tmp/body;
    proxy_temp_path $run/tmp/proxy;
    fastcgi_temp_path $run/tmp/fastcgi;
    uwsgi_temp_path $run/tmp/uwsgi;
    scgi_temp_path $run/tmp/scgi;
    proxy_cache_path $run/cache levels=1:2 keys_zone=edge:16m max_size=256m inactive=60m use_temp_path=off;
    upstream origin { server 127.0.0.1:18001; keepalive 64; }
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_hide_header Surrogate-Key;
    proxy_hide_header xkey;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache off;
    ssl_session_tickets on;
    server {
        listen 127.0.0.1:18015 ssl http2 backlog=4096;   # nginx 1.22 (Debian 12): http2 on the listen line
        http2_max_concurrent_streams 128;
        ssl_certificate $certs/shop.pem;
        ssl_certificate_key $certs/shop.key;
        location / {
            proxy_pass http://origin;
            proxy_cache edge;
            proxy_cache_lock on;
            add_header X-Cache-Status \$upstream_cache_status always;
        }
    }
    server {
        listen 127.0.0.1:18016 ssl http2 backlog=4096;
        ssl_certificate $run/ec.pem;
        ssl_certificate_key $run/ec.key;
        location / {
            proxy_pass http://origin;
            proxy_cache edge;
        }
    }
}
EOF
nginx -c "$run/nginx.conf"
export VITRINE_ADMIN_TOKEN=bench-token-0123456789
.build/release/vitrine serve --origin http://127.0.0.1:18001 --listen 127.0.0.1:18044 --admin-listen 127.0.0.1:18045 \
  --tls-listen 127.0.0.1:18046 --tls-certificate "$certs/shop.pem" --tls-key "$certs/shop.key" --event-loops 1 \
  --log-level error >"$out/vitrine-tls.log" 2>&1 &
serve=$!
.build/release/vitrine serve --origin http://127.0.0.1:18001 --listen 127.0.0.1:18047 --admin-listen 127.0.0.1:18048 \
  --tls-listen 127.0.0.1:18049 --tls-certificate "$run/ec.pem" --tls-key "$run/ec.key" --event-loops 1 \
  --log-level error >"$out/vitrine-tls-ec.log" 2>&1 &
serve_ec=$!
cleanup() { kill "$serve" "$serve_ec" 2>/dev/null || true; nginx -c "$run/nginx.conf" -s stop 2>/dev/null || true; rm -rf "$run"; }
trap cleanup EXIT
for _ in $(seq 1 100); do curl -sk -o /dev/null https://127.0.0.1:18046/product.json && break; sleep 0.1; done
# Warm both caches (and check that both answer hits).
for port in 18015 18046; do
  for _ in 1 2 3; do
    curl -sk -o /dev/null --http1.1 "https://127.0.0.1:$port/product.json"
    curl -sk -o /dev/null --http1.1 "https://127.0.0.1:$port/category.json"
  done
done

declare -A targets=([vitrine]=18046 [nginx]=18015)
declare -A ec_targets=([vitrine]=18049 [nginx]=18016)
for rep in $(seq 1 "$reps"); do
  for name in vitrine nginx; do
    port=${targets[$name]}
    wrk -t1 -c64 -d"${duration}s" --latency "https://127.0.0.1:$port/product.json" >"$out/$name-h1-$rep.txt"
    h2load -t1 -c16 -m16 -D "$duration" "https://127.0.0.1:$port/product.json" >"$out/$name-h2-$rep.txt" 2>&1
    h2load -t1 -c64 -m1 -D "$duration" "https://127.0.0.1:$port/product.json" >"$out/$name-h2c64-$rep.txt" 2>&1
    h2load -t1 -c16 -m16 -D "$duration" "https://127.0.0.1:$port/category.json" >"$out/$name-h2big-$rep.txt" 2>&1
    # Handshakes: new connections, each a full handshake (no session reuse) and one request.
    (cd "$run" && timeout $((duration + 10)) openssl s_time -connect "127.0.0.1:$port" -new -time "$duration" -www /product.json \
      >"$out/$name-handshakes-$rep.txt" 2>&1) || true
    (cd "$run" && timeout $((duration + 10)) openssl s_time -connect "127.0.0.1:${ec_targets[$name]}" -new -time "$duration" -www /product.json \
      >"$out/$name-handshakes-ec-$rep.txt" 2>&1) || true
    # Resumed: every connection after the first resumes its session (a ticket in TLS 1.3).
    (cd "$run" && timeout $((duration + 10)) openssl s_time -connect "127.0.0.1:$port" -reuse -time "$duration" -www /product.json \
      >"$out/$name-resumed-$rep.txt" 2>&1) || true
  done
done

python3 - "$out" "$reps" <<'PY'
import json, re, statistics, sys, pathlib
out, reps = pathlib.Path(sys.argv[1]), int(sys.argv[2])
def wrk(path):
    text = path.read_text()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    def ms(label):
        m = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", text)
        v = float(m.group(1)); return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v
    return rps, ms("99%")
def h2load(path):
    text = path.read_text()
    rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", text).group(1))
    m = re.search(r"time for request:\s+\S+\s+\S+\s+(\S+)", text)  # min max mean sd
    ok = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed", text)
    return rps, int(ok.group(2)) if ok else None
def stime(path):
    # Wall clock: `N connections in T real seconds` (its `connections/user sec` is the client's CPU).
    n = re.search(r"(\d+) connections in ([\d.]+) real seconds", path.read_text())
    return float(n.group(1)) / float(n.group(2)) if n else 0.0
rows = {}
for name in ("vitrine", "nginx"):
    h1 = [wrk(out / f"{name}-h1-{r}.txt") for r in range(1, reps + 1)]
    h2 = [h2load(out / f"{name}-h2-{r}.txt") for r in range(1, reps + 1)]
    h2c64 = [h2load(out / f"{name}-h2c64-{r}.txt") for r in range(1, reps + 1)]
    h2big = [h2load(out / f"{name}-h2big-{r}.txt") for r in range(1, reps + 1)]
    hs = [stime(out / f"{name}-handshakes-{r}.txt") for r in range(1, reps + 1)]
    ec = [stime(out / f"{name}-handshakes-ec-{r}.txt") for r in range(1, reps + 1)]
    resumed = [stime(out / f"{name}-resumed-{r}.txt") for r in range(1, reps + 1)]
    rows[name] = {
        "h1_rps": statistics.median(x[0] for x in h1), "h1_p99_ms": statistics.median(x[1] for x in h1),
        "h2_rps": statistics.median(x[0] for x in h2), "h2_failed": sum(x[1] or 0 for x in h2 + h2c64 + h2big),
        "h2_c64_rps": statistics.median(x[0] for x in h2c64), "h2_20k_rps": statistics.median(x[0] for x in h2big),
        "handshakes_per_s": statistics.median(hs),
        "handshakes_ecdsa_per_s": statistics.median(ec), "resumed_per_s": statistics.median(resumed),
    }
(out / "tls.json").write_text(json.dumps(rows, indent=2))
v, n = rows["vitrine"], rows["nginx"]
print(f"TLS, 2 KB hits, medians of {reps}: Vitrine (1 event loop) / nginx proxy_cache (1 worker) = ratio")
print(f"  HTTP/1.1 over TLS, wrk -t1 -c64: {v['h1_rps']:.0f} / {n['h1_rps']:.0f} req/s = {v['h1_rps']/n['h1_rps']:.2f}; p99 {v['h1_p99_ms']:.2f} / {n['h1_p99_ms']:.2f} ms")
print(f"  HTTP/2, h2load -t1 -c16 -m16:    {v['h2_rps']:.0f} / {n['h2_rps']:.0f} req/s = {v['h2_rps']/n['h2_rps']:.2f} (failed: {v['h2_failed']} / {n['h2_failed']})")
print(f"  HTTP/2, h2load -t1 -c64 -m1:     {v['h2_c64_rps']:.0f} / {n['h2_c64_rps']:.0f} req/s = {v['h2_c64_rps']/n['h2_c64_rps']:.2f}")
print(f"  HTTP/2, 20 KB, -c16 -m16:        {v['h2_20k_rps']:.0f} / {n['h2_20k_rps']:.0f} req/s = {v['h2_20k_rps']/n['h2_20k_rps']:.2f}")
print(f"  handshakes, openssl s_time -new:  {v['handshakes_per_s']:.0f} / {n['handshakes_per_s']:.0f} per s = {v['handshakes_per_s']/max(n['handshakes_per_s'],1):.2f} (RSA 2048)")
print(f"  handshakes, ECDSA P-256:          {v['handshakes_ecdsa_per_s']:.0f} / {n['handshakes_ecdsa_per_s']:.0f} per s = {v['handshakes_ecdsa_per_s']/max(n['handshakes_ecdsa_per_s'],1):.2f}")
print(f"  resumed, openssl s_time -reuse:   {v['resumed_per_s']:.0f} / {n['resumed_per_s']:.0f} per s = {v['resumed_per_s']/max(n['resumed_per_s'],1):.2f}")
PY
