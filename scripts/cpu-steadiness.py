#!/usr/bin/env python3
"""How steadily this machine's CPU runs: one thread spins for SECONDS and counts the work it gets
done in each 10 ms window. On a quiet machine every window does about the same work; on a VM whose
host takes the CPU away, some windows do a fraction of it. Such stretches stall whatever runs on
that CPU meanwhile, so they set the tail latency of whatever is measured then, whichever server it is.

    scripts/cpu-steadiness.py [SECONDS] > steadiness.json

Run it while nothing else is busy: it measures the machine, not a contention for it."""
import json
import sys
import time

seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
window = 0.010
clock = time.monotonic
work = []
end = clock() + seconds
while clock() < end:
    started, units = clock(), 0
    while clock() - started < window:
        for _ in range(200):
            pass
        units += 1
    work.append(units)

ordered = sorted(work)
median = ordered[len(ordered) // 2] or 1
slow = [units < median / 2 for units in work]
longest = current = 0
for is_slow in slow:
    current = current + 1 if is_slow else 0
    longest = max(longest, current)
json.dump({
    "seconds": seconds,
    "window_ms": window * 1000,
    "windows": len(work),
    "p1_of_median": round(ordered[len(ordered) // 100] / median, 3),
    "p5_of_median": round(ordered[len(ordered) // 20] / median, 3),
    "slow_share": round(sum(slow) / len(work), 4),
    "longest_slow_ms": round(longest * window * 1000),
}, sys.stdout)
print()
