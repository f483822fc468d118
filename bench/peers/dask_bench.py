"""Peer anchor: dask.distributed LocalCluster, same scenarios as ipp_bench.py."""
import time, json, sys, statistics
import dask, distributed
from distributed import Client, LocalCluster

N = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
W = int(sys.argv[2]) if len(sys.argv) > 2 else 2

def pow10(x): return x ** 10
def noop(i): return 0
def sleep_here(t):
    import time; time.sleep(t); return t
def cpu(n):
    s = 0
    for i in range(n): s = (s * 31 + i) % 1000003
    return s
def chunk(xs): return [x ** 10 for x in xs]

if __name__ == "__main__":
    out = {"system": "dask.distributed " + distributed.__version__, "engines": W}
    with LocalCluster(n_workers=W, threads_per_worker=1, processes=True, dashboard_address=None) as cl, Client(cl) as c:
        c.submit(noop, -1).result()
        ts = []
        for i in range(300):
            t = time.perf_counter(); c.submit(noop, i, pure=False).result(); ts.append(time.perf_counter() - t)
        out["rtt_ms_median"] = statistics.median(ts) * 1e3
        # wasp bench/peers: p99 as well (the only change from ../shared/bench/peers)
        out["rtt_ms_p99"] = sorted(ts)[round(.99 * (len(ts) - 1))] * 1e3
        t = time.perf_counter(); r = c.gather(c.map(pow10, range(N))); dt = time.perf_counter() - t
        assert r == [x ** 10 for x in range(N)]
        out["map_chunk1_tasks_per_s"] = N / dt
        chunks = [list(range(i, min(i + 100, N))) for i in range(0, N, 100)]
        t = time.perf_counter(); r = c.gather(c.map(chunk, chunks)); dt = time.perf_counter() - t
        out["map_chunk100_tasks_per_s"] = N / dt
        xs = [.01 * t for t in range(100)]
        t = time.perf_counter(); c.gather(c.map(sleep_here, xs, pure=False)); wall = time.perf_counter() - t
        out["sleep_serial_over_wall"] = sum(xs) / wall
        n = 200000
        t = time.perf_counter(); cpu(n); one = time.perf_counter() - t
        n = int(n * 0.02 / one)
        t = time.perf_counter(); [cpu(n) for _ in range(16)]; serial = (time.perf_counter() - t) * 4
        t = time.perf_counter(); c.gather(c.map(cpu, [n] * 64, pure=False)); par = time.perf_counter() - t
        out["cpu_64x20ms_speedup"] = serial / par
    print(json.dumps(out))
