"""Big values on ipyparallel (wasp's bench/src/bin/bigvalues.rs, issue 13).

    python bigvalues_ipp.py ELEMENTS CALLS WARMUPS PUSH_ELEMENTS PUSH_REPS [ENGINES]

norm : lview.apply_sync(numpy.linalg.norm, A, 2), A = ELEMENTS float64,
       CALLS timed calls after WARMUPS untimed ones
push : dv.push({'x': B}, block=True) to every engine, B = PUSH_ELEMENTS
       float64, PUSH_REPS timed pushes after one untimed one

Prints one JSON line. A scenario that fails is recorded as {"error": ...}
and the other still runs.
"""
import json, sys, time
import numpy as np
import ipyparallel as ipp
from bigvalues_common import attempt, summary, timed_calls

ELEMENTS, CALLS, WARMUPS, PUSH_ELEMENTS, PUSH_REPS = (int(a) for a in sys.argv[1:6])
ENGINES = int(sys.argv[6]) if len(sys.argv) > 6 else 2


def norm_scenario(lv):
    a = np.random.default_rng(0).random(ELEMENTS)
    expected = float(np.linalg.norm(a, 2))
    timed = timed_calls(lambda: lv.apply_sync(np.linalg.norm, a, 2), expected, WARMUPS, CALLS)
    return dict(timed, elements=ELEMENTS, bytes=a.nbytes)


def push_scenario(dv):
    b = np.random.default_rng(1).random(PUSH_ELEMENTS)
    ts = []
    for i in range(1 + PUSH_REPS):
        t = time.perf_counter()
        dv.push({"x": b}, block=True)
        dt = time.perf_counter() - t
        if i >= 1:
            ts.append(dt)
    # Every engine holds all of it.
    shapes = dv.apply_sync(lambda: x.shape[0])  # noqa: F821 (x is the engine's)
    assert shapes == [PUSH_ELEMENTS] * ENGINES, shapes
    dv.execute("del x", block=True)
    return dict(summary(ts), elements=PUSH_ELEMENTS, bytes=b.nbytes)


out = {"system": "ipyparallel " + ipp.__version__, "numpy": np.__version__, "engines": ENGINES}
with ipp.Cluster(n=ENGINES, log_level=40) as rc:
    rc.wait_for_engines(ENGINES)
    lv = rc.load_balanced_view()
    dv = rc[:]
    # Engines import numpy before anything is timed, as a user's would.
    dv.execute("import numpy", block=True)
    out["norm"] = attempt(norm_scenario, lv)
    out["push"] = attempt(push_scenario, dv)
print(json.dumps(out))
