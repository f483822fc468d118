"""Peer anchor: ipyparallel, the seed's own system, on this machine.
Scenarios mirror the seed notebook and the project's benchmark:
  rtt      : median round trip of lview.apply_sync(f) over 300 calls
  map1     : lview.map(x**10, range(N)) chunksize=1, tasks/s
  map100   : same, chunksize=100
  sleep    : seed's sleep_here over [.01*t for t in range(100)], serial_time/wall_time
  cpu      : 64 items of a ~20 ms pure-CPU loop, speedup vs 1 engine serial
"""
import time, json, sys, statistics
import ipyparallel as ipp

N = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
ENGINES = int(sys.argv[2]) if len(sys.argv) > 2 else 2
out = {"system": "ipyparallel " + ipp.__version__, "engines": ENGINES}

def pow10(x): return x ** 10
def noop(): return 0
def sleep_here(t):
    import time; time.sleep(t); return t
def cpu(n):
    s = 0
    for i in range(n): s = (s * 31 + i) % 1000003
    return s

with ipp.Cluster(n=ENGINES, log_level=40) as rc:
    rc.wait_for_engines(ENGINES)
    lv = rc.load_balanced_view()
    lv.block = True
    lv.apply_sync(noop)
    ts = []
    for _ in range(300):
        t = time.perf_counter(); lv.apply_sync(noop); ts.append(time.perf_counter() - t)
    out["rtt_ms_median"] = statistics.median(ts) * 1e3
    # wasp bench/peers: p99 as well (the only change from ../shared/bench/peers)
    out["rtt_ms_p99"] = sorted(ts)[round(.99 * (len(ts) - 1))] * 1e3
    for cs in (1, 100):
        t = time.perf_counter(); r = lv.map(pow10, range(N), chunksize=cs); dt = time.perf_counter() - t
        assert list(r) == [x ** 10 for x in range(N)]
        out[f"map_chunk{cs}_tasks_per_s"] = N / dt
    amr = lv.map_async(sleep_here, [.01 * t for t in range(100)])
    amr.get()
    out["sleep_serial_over_wall"] = amr.serial_time / amr.wall_time
    # calibrate ~20ms
    n = 200000
    t = time.perf_counter(); cpu(n); one = time.perf_counter() - t
    n = int(n * 0.02 / one)
    t = time.perf_counter(); [cpu(n) for _ in range(16)]; serial = (time.perf_counter() - t) * 4
    t = time.perf_counter(); lv.map(cpu, [n] * 64); par = time.perf_counter() - t
    out["cpu_64x20ms_speedup"] = serial / par
print(json.dumps(out))
