#!/usr/bin/env python3
"""Purge-to-MISS latency across two nodes sharing Redis.

Starts a demo origin and two `vitrine serve` nodes on one Redis, then, N times: warms a product on
node B (HIT), purges its tag through node A's admin API, and polls node B until it answers MISS.
Prints p50/p90/p99/max of the time from sending the purge to B's first MISS.

    scripts/measure-fanout.py --redis redis://127.0.0.1:6379/0 [--binary .build/release/vitrine] [--n 1000]
"""
import argparse, http.client, json, os, subprocess, sys, time

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", required=True)
    parser.add_argument("--binary", default=".build/release/vitrine")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--base-port", type=int, default=27000)
    args = parser.parse_args()
    token = "measure-token-0123456789"
    env = dict(os.environ, VITRINE_ADMIN_TOKEN=token, VITRINE_LOG_LEVEL="error")
    p = args.base_port
    procs = [subprocess.Popen([args.binary, "origin", "--port", str(p)], env=env)]
    time.sleep(1)
    for listen, admin in ((p + 10, p + 11), (p + 20, p + 21)):
        procs.append(subprocess.Popen([args.binary, "serve", "--origin", f"http://127.0.0.1:{p}", "--listen", f"127.0.0.1:{listen}",
                                       "--admin-listen", f"127.0.0.1:{admin}", "--redis", args.redis], env=env))
    time.sleep(1.5)
    try:
        b = http.client.HTTPConnection("127.0.0.1", p + 20)
        admin_a = http.client.HTTPConnection("127.0.0.1", p + 11)
        def get(conn, path):
            conn.request("GET", path)
            r = conn.getresponse(); r.read()
            return r.getheader("X-Cache")
        samples = []
        for i in range(args.n):
            product = 1 + i % 5000
            path = f"/catalog/products/{product}"
            while get(b, path) != "HIT":
                pass
            body = json.dumps({"tags": [f"product:{product}"]})
            start = time.perf_counter()
            admin_a.request("POST", "/purge", body=body, headers={"Authorization": f"Bearer {token}"})
            r = admin_a.getresponse(); r.read()
            while get(b, path) != "MISS":
                pass
            samples.append((time.perf_counter() - start) * 1000)
        samples.sort()
        q = lambda f: samples[min(len(samples) - 1, int(f * len(samples)))]
        print(f"purge on A -> MISS on B, {len(samples)} purges: p50 {q(0.5):.2f} ms, p90 {q(0.9):.2f} ms, "
              f"p99 {q(0.99):.2f} ms, max {samples[-1]:.2f} ms")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait()

if __name__ == "__main__":
    sys.exit(main())
