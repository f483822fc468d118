"""Big values on Ray (wasp's bench/src/bin/bigvalues.rs, issue 13).

    python bigvalues_ray.py ELEMENTS CALLS WARMUPS [CPUS]

norm     : ray.get(norm.remote(A, 2)), A = ELEMENTS float64 passed as the
           argument (Ray puts it into its object store at every call),
           CALLS timed calls after WARMUPS untimed ones
norm_put : the same with ref = ray.put(A) done once, outside the timing,
           and the ref passed (the worker reads A from shared memory)

Ray has no push to its workers' namespaces, so it has no push figure.
Prints one JSON line. A scenario that fails is recorded as {"error": ...}
and the other still runs.
"""
import json, os, sys, time
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
import numpy as np
import ray
from bigvalues_common import attempt, timed_calls

ELEMENTS, CALLS, WARMUPS = (int(a) for a in sys.argv[1:4])
CPUS = int(sys.argv[4]) if len(sys.argv) > 4 else 2


@ray.remote
def norm(a, p):
    return float(np.linalg.norm(a, p))


def timed(arg, expected):
    return timed_calls(lambda: ray.get(norm.remote(arg, 2)), expected, WARMUPS, CALLS)


if __name__ == "__main__":
    ray.init(num_cpus=CPUS, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    out = {"system": "ray " + ray.__version__, "numpy": np.__version__, "engines": CPUS}
    a = np.random.default_rng(0).random(ELEMENTS)
    expected = float(np.linalg.norm(a, 2))
    out["norm"] = attempt(lambda: dict(timed(a, expected), elements=ELEMENTS, bytes=a.nbytes))

    def with_put():
        t = time.perf_counter()
        ref = ray.put(a)
        put_ms = (time.perf_counter() - t) * 1e3
        return dict(timed(ref, expected), elements=ELEMENTS, bytes=a.nbytes, put_once_ms=put_ms)

    out["norm_put"] = attempt(with_put)
    ray.shutdown()
    print(json.dumps(out))
