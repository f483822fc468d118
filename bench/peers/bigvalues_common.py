"""What the bigvalues peer scripts share (bigvalues_ipp.py, _dask.py,
_ray.py): timing a call, summing samples up, recording a failed scenario.

Imported from beside them: Python puts a script's own folder on sys.path.
"""
import statistics, time


def summary(samples_s):
    """Samples in seconds as the bench's JSON: every sample, the median and
    the p99 (the slowest sample at up to 100), in milliseconds."""
    ms = [s * 1e3 for s in samples_s]
    ordered = sorted(ms)
    return {
        "samples_ms": ms,
        "median_ms": statistics.median(ms),
        "p99_ms": ordered[round(.99 * (len(ordered) - 1))],
    }


def timed_calls(call, expected, warmups, calls):
    """Runs `call()` warmups + calls times, checks each answer against
    `expected` (a norm), and summarizes the timed ones."""
    ts = []
    for i in range(warmups + calls):
        t = time.perf_counter()
        r = call()
        dt = time.perf_counter() - t
        assert abs(r - expected) <= 1e-9 * expected, (r, expected)
        if i >= warmups:
            ts.append(dt)
    return summary(ts)


def attempt(scenario, *args):
    """`scenario(*args)`, or its error recorded, so that the other
    scenarios still run."""
    try:
        return scenario(*args)
    except Exception as err:
        return {"error": f"{type(err).__name__}: {err}"}
