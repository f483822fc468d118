"""Big values on Dask distributed (wasp's bench/src/bin/bigvalues.rs, issue 13).

    python bigvalues_dask.py ELEMENTS CALLS WARMUPS PUSH_ELEMENTS PUSH_REPS [WORKERS]

norm : client.submit(numpy.linalg.norm, A, 2, pure=False).result(), A =
       ELEMENTS float64 passed as the argument (not scattered first),
       CALLS timed calls after WARMUPS untimed ones. pure=False so that no
       call is answered from an earlier one's result (and A is not hashed).
push : client.scatter(B, broadcast=True, hash=False), waited for, B =
       PUSH_ELEMENTS float64, PUSH_REPS timed scatters after one untimed
       one. hash=False gives each scatter a fresh key, so that none is
       skipped as already there; each is released before the next.

Prints one JSON line. A scenario that fails is recorded as {"error": ...}
and the other still runs.
"""
import json, sys, time
import numpy as np
import distributed
from distributed import Client, LocalCluster, wait
from bigvalues_common import attempt, summary, timed_calls

ELEMENTS, CALLS, WARMUPS, PUSH_ELEMENTS, PUSH_REPS = (int(a) for a in sys.argv[1:6])
WORKERS = int(sys.argv[6]) if len(sys.argv) > 6 else 2


def norm_scenario(c):
    a = np.random.default_rng(0).random(ELEMENTS)
    expected = float(np.linalg.norm(a, 2))
    call = lambda: c.submit(np.linalg.norm, a, 2, pure=False).result()  # noqa: E731
    return dict(timed_calls(call, expected, WARMUPS, CALLS), elements=ELEMENTS, bytes=a.nbytes)


def push_scenario(c):
    b = np.random.default_rng(1).random(PUSH_ELEMENTS)
    ts = []
    for i in range(1 + PUSH_REPS):
        t = time.perf_counter()
        f = c.scatter(b, broadcast=True, hash=False)
        wait(f)
        dt = time.perf_counter() - t
        holders = c.who_has(f)[f.key]
        assert len(holders) == WORKERS, holders
        del f
        if i >= 1:
            ts.append(dt)
        # The released copies are gone before the next scatter starts.
        deadline = time.time() + 30
        while any(c.run(lambda dask_worker: len(dask_worker.data)).values()) and time.time() < deadline:
            time.sleep(0.05)
    return dict(summary(ts), elements=PUSH_ELEMENTS, bytes=b.nbytes)


if __name__ == "__main__":
    out = {"system": "dask.distributed " + distributed.__version__, "numpy": np.__version__, "engines": WORKERS}
    with LocalCluster(n_workers=WORKERS, threads_per_worker=1, processes=True, dashboard_address=None) as cl, Client(cl) as c:
        c.wait_for_workers(WORKERS)
        out["norm"] = attempt(norm_scenario, c)
        out["push"] = attempt(push_scenario, c)
    print(json.dumps(out))
