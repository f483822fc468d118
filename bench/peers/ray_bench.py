"""Peer anchor: Ray local cluster, same scenarios as ipp_bench.py."""
import time, json, sys, statistics, os
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
import ray

N = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
W = int(sys.argv[2]) if len(sys.argv) > 2 else 2

@ray.remote
def pow10(x): return x ** 10
@ray.remote
def noop(i): return 0
@ray.remote
def sleep_here(t):
    import time; time.sleep(t); return t
def cpu_local(n):
    s = 0
    for i in range(n): s = (s * 31 + i) % 1000003
    return s
@ray.remote
def cpu(n): return cpu_local(n)
@ray.remote
def chunk(xs): return [x ** 10 for x in xs]

if __name__ == "__main__":
    ray.init(num_cpus=W, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    out = {"system": "ray " + ray.__version__, "engines": W}
    ray.get(noop.remote(-1))
    ts = []
    for i in range(300):
        t = time.perf_counter(); ray.get(noop.remote(i)); ts.append(time.perf_counter() - t)
    out["rtt_ms_median"] = statistics.median(ts) * 1e3
    # wasp bench/peers: p99 as well (the only change from ../shared/bench/peers)
    out["rtt_ms_p99"] = sorted(ts)[round(.99 * (len(ts) - 1))] * 1e3
    t = time.perf_counter(); r = ray.get([pow10.remote(x) for x in range(N)]); dt = time.perf_counter() - t
    assert r == [x ** 10 for x in range(N)]
    out["map_chunk1_tasks_per_s"] = N / dt
    chunks = [list(range(i, min(i + 100, N))) for i in range(0, N, 100)]
    t = time.perf_counter(); ray.get([chunk.remote(c) for c in chunks]); dt = time.perf_counter() - t
    out["map_chunk100_tasks_per_s"] = N / dt
    xs = [.01 * t for t in range(100)]
    t = time.perf_counter(); ray.get([sleep_here.remote(x) for x in xs]); wall = time.perf_counter() - t
    out["sleep_serial_over_wall"] = sum(xs) / wall
    n = 200000
    t = time.perf_counter(); cpu_local(n); one = time.perf_counter() - t
    n = int(n * 0.02 / one)
    t = time.perf_counter(); [cpu_local(n) for _ in range(16)]; serial = (time.perf_counter() - t) * 4
    t = time.perf_counter(); ray.get([cpu.remote(n) for _ in range(64)]); par = time.perf_counter() - t
    out["cpu_64x20ms_speedup"] = serial / par
    ray.shutdown()
    print(json.dumps(out))
