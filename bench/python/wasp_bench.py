"""wasp from Python, on the peers' scenarios (bench/peers/ipp_bench.py and
bigvalues_ipp.py), with the Python client (issue 14):

    python wasp_bench.py TASKS N [ENGINES]

rtt      : lview.apply_sync(area, 3, 7), 300 calls after one warm-up
map1     : lview.map_sync(pow10, [x % 32 for x in range(N)]), one task per
           item (x % 32: every power fits pow10's s64, as in the Rust
           suite; the peers' Python integers have no such bound)
map100   : the same with chunksize=100 over 20 * N items (100,000 for the
           usual N = 5000, as the Rust suite measures wasp's map100: at
           N items the run lasts a few milliseconds, mostly noise)
norm     : lview.apply_sync(norm, A, 2), A = 1,000,000 float64 (numpy),
           20 calls after 2 warm-ups

TASKS is the folder of the Rust task components; the cluster is a
wasp.Cluster of ENGINES engines (2) started with the `wasp` of $WASP_BIN.
Prints one JSON line.
"""
import json
import statistics
import sys
import time

import numpy as np

import wasp

TASKS, N = sys.argv[1], int(sys.argv[2])
ENGINES = int(sys.argv[3]) if len(sys.argv) > 3 else 2


def module(name):
    return wasp.Module(f"{TASKS}/{name}.wasm")


out = {"system": "wasp (Python client)", "engines": ENGINES}
with wasp.Cluster(n=ENGINES) as rc:
    area, pow10, norm = module("area").area, module("pow10").pow10, module("norm").norm
    for f in (area, pow10, norm):
        rc.load(f)
    lview = rc.load_balanced_view()

    lview.apply_sync(area, 3, 7)
    ts = []
    for _ in range(300):
        t = time.perf_counter()
        lview.apply_sync(area, 3, 7)
        ts.append(time.perf_counter() - t)
    out["rtt_ms_median"] = statistics.median(ts) * 1e3
    out["rtt_ms_p99"] = sorted(ts)[round(.99 * (len(ts) - 1))] * 1e3

    xs = [x % 32 for x in range(N)]
    expected = [x**10 for x in xs]
    t = time.perf_counter()
    r = lview.map_sync(pow10, xs)
    dt = time.perf_counter() - t
    assert r == expected
    out["map_chunk1_tasks_per_s"] = N / dt

    xs = [x % 32 for x in range(20 * N)]
    expected = [x**10 for x in xs]
    t = time.perf_counter()
    r = lview.map_sync(pow10, xs, chunksize=100)
    dt = time.perf_counter() - t
    assert r == expected
    out["map_chunk100_tasks_per_s"] = len(xs) / dt

    a = np.random.default_rng(0).random(1_000_000)
    want = float(np.linalg.norm(a, 2))
    ts = []
    for i in range(22):
        t = time.perf_counter()
        got = lview.apply_sync(norm, a, 2)
        dt = time.perf_counter() - t
        assert abs(got - want) <= 1e-9 * want, (got, want)
        if i >= 2:
            ts.append(dt)
    out["norm_1m_ms_median"] = statistics.median(ts) * 1e3
print(json.dumps(out))
