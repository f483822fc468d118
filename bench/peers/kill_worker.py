"""A worker killed mid-map (issue 11): Ray's and Dask's figure beside wasp's.

    python kill_worker.py ray|dask N WORKERS SLEEP_S KILL_AT

Maps a task that sleeps SLEEP_S seconds and returns its item and its
process id over N items on WORKERS workers, twice in the same run: once
with no fault, once with one worker process killed (SIGKILL, as `kill -9`)
when KILL_AT of the results are in. Both systems retry a task lost with
its worker (Ray's `max_retries=3`, Dask's `allowed-failures=3`) and
restart the worker (Ray's raylet, Dask's nanny). Prints one JSON line:
each run's wall time, the ratio, and how many results were lost or wrong.
"""
import json, os, signal, sys, time

PEER = sys.argv[1]
N = int(sys.argv[2])
W = int(sys.argv[3])
SLEEP_S = float(sys.argv[4])
KILL_AT = float(sys.argv[5])


def sleepy(i):
    time.sleep(SLEEP_S)
    return (i, os.getpid())


def count_bad(results):
    """Items whose result is missing or not their own."""
    return sum(1 for i, r in enumerate(results) if not (isinstance(r, tuple) and r[0] == i))


def run_ray():
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    ray.init(num_cpus=W, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    task = ray.remote(sleepy)
    ray.get([task.remote(-1) for _ in range(W)])

    def one(kill):
        t = time.perf_counter()
        refs = [task.remote(i) for i in range(N)]
        killed = None
        if kill:
            pending, done = refs, 0
            while killed is None:
                ready, pending = ray.wait(pending, num_returns=min(len(pending), 100), timeout=0.05)
                done += len(ready)
                if done >= KILL_AT * N and ready:
                    killed = ray.get(ready[-1])[1]
                    os.kill(killed, signal.SIGKILL)
        results = []
        for ref in refs:
            try:
                results.append(tuple(ray.get(ref)))
            except Exception as err:  # a task lost for good
                results.append(repr(err))
        return time.perf_counter() - t, count_bad(results), killed

    out = report(one)
    out["system"] = "ray " + ray.__version__
    ray.shutdown()
    return out


def run_dask():
    import distributed
    from distributed import Client, LocalCluster, as_completed

    with LocalCluster(n_workers=W, threads_per_worker=1, processes=True, dashboard_address=None) as cl, Client(cl) as c:
        c.gather(c.map(sleepy, range(-W, 0), pure=False))

        def one(kill):
            t = time.perf_counter()
            futures = c.map(sleepy, range(N), pure=False)
            killed = None
            if kill:
                done = 0
                for future in as_completed(futures):
                    done += 1
                    if done >= KILL_AT * N:
                        killed = future.result()[1]
                        os.kill(killed, signal.SIGKILL)
                        break
            results = []
            for future in futures:
                try:
                    results.append(tuple(future.result()))
                except Exception as err:  # KilledWorker: lost for good
                    results.append(repr(err))
            return time.perf_counter() - t, count_bad(results), killed

        out = report(one)
        out["system"] = "dask.distributed " + distributed.__version__
        return out


def report(one):
    clean_s, clean_bad, _ = one(False)
    fault_s, fault_bad, killed = one(True)
    return {
        "items": N,
        "workers": W,
        "sleep_s": SLEEP_S,
        "kill_at": KILL_AT,
        "fault_free_s": clean_s,
        "with_kill_s": fault_s,
        "ratio": fault_s / clean_s,
        "killed_pid": killed,
        "lost_or_wrong_fault_free": clean_bad,
        "lost_or_wrong_with_kill": fault_bad,
    }


if __name__ == "__main__":
    print(json.dumps(run_ray() if PEER == "ray" else run_dask()))
