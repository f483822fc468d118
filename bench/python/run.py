"""The Python client's benchmark (issue 14, "Measure"): wasp driven from
Python against ipyparallel, Dask and Ray driven from the same Python, every
system in the same run, 2 engines or workers each.

    python run.py [--quick] [--out PATH]

Runs wasp_bench.py and the peers' scripts (bench/peers: ipp_bench.py,
dask_bench.py, ray_bench.py for the round trip and the maps;
bigvalues_ipp.py for the norm of a million float64), each in its own
process with this interpreter, prints a markdown table of wasp's ratio to
the best peer beside each target, and writes results/python.json.

Targets: round trip at most 1/10 of the best peer's; map (chunksize 1 and
100) at least 10x the best peer's; the 1M-value norm faster than
ipyparallel's. scripts/bench-python builds and installs what it needs.
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PEERS = REPO / "bench" / "peers"
TASKS = REPO / "target" / "tasks" / "wasm32-wasip2" / "release"


def run(script: Path, *args) -> dict:
    """One system's figures: the last JSON line its script prints."""
    print(f"== {script.name} {' '.join(map(str, args))}", file=sys.stderr, flush=True)
    done = subprocess.run([sys.executable, str(script), *map(str, args)], cwd=script.parent,
                          capture_output=True, text=True, timeout=1800)
    lines = [l for l in done.stdout.splitlines() if l.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1]}
    return json.loads(lines[-1])


def main():
    quick = "--quick" in sys.argv
    out_path = Path(sys.argv[sys.argv.index("--out") + 1]) if "--out" in sys.argv else HERE.parent / "results" / "python.json"
    n = 1000 if quick else 5000
    started = time.time()
    figures = {
        "wasp": run(HERE / "wasp_bench.py", TASKS, n),
        "ipyparallel": run(PEERS / "ipp_bench.py", n),
        "dask": run(PEERS / "dask_bench.py", n),
        "ray": run(PEERS / "ray_bench.py", n),
        "ipyparallel_norm": run(PEERS / "bigvalues_ipp.py", 1_000_000, 20, 2, 1, 1),
    }
    peers = ["ipyparallel", "dask", "ray"]
    rows = []

    def best(key, lower_is_better):
        values = {p: figures[p][key] for p in peers if key in figures[p]}
        if not values:
            return None, None
        name = (min if lower_is_better else max)(values, key=values.get)
        return name, values[name]

    wasp = figures["wasp"]
    summary = {}
    for key, label, lower, goal in [
        ("rtt_ms_median", "apply_sync round trip, median (ms)", True, 10.0),
        ("map_chunk1_tasks_per_s", "map, chunksize 1 (tasks/s)", False, 10.0),
        ("map_chunk100_tasks_per_s", "map, chunksize 100 (items/s)", False, 10.0),
    ]:
        name, value = best(key, lower)
        mine = wasp.get(key)
        ratio = None if mine is None or value is None else (value / mine if lower else mine / value)
        summary[key] = {"wasp": mine, "best_peer": name, "best_peer_value": value,
                        "ratio": ratio, "goal": goal, "met": ratio is not None and ratio >= goal}
        rows.append((label, mine, {p: figures[p].get(key) for p in peers}, name, ratio, f">= {goal:g}x", summary[key]["met"]))
    ipp_norm = figures["ipyparallel_norm"].get("norm", {}).get("median_ms")
    mine = wasp.get("norm_1m_ms_median")
    ratio = None if mine is None or ipp_norm is None else ipp_norm / mine
    summary["norm_1m"] = {"wasp": mine, "ipyparallel": ipp_norm, "ratio": ratio, "goal": 1.0,
                          "met": ratio is not None and ratio > 1.0}
    rows.append(("apply_sync(norm, A, 2), A = 1M float64, median (ms)", mine,
                 {"ipyparallel": ipp_norm, "dask": None, "ray": None}, "ipyparallel", ratio, "> 1x", summary["norm_1m"]["met"]))

    fmt = lambda v: "-" if v is None else (f"{v:,.0f}" if v >= 100 else f"{v:.3g}")
    lines = ["| figure | wasp | ipyparallel | Dask | Ray | best peer / wasp | target | met? |",
             "|---|---|---|---|---|---|---|---|"]
    for label, mine, theirs, name, ratio, goal, met in rows:
        lines.append(f"| {label} | {fmt(mine)} | {fmt(theirs['ipyparallel'])} | {fmt(theirs['dask'])} | "
                     f"{fmt(theirs['ray'])} | {'-' if ratio is None else f'{ratio:.1f}x'} ({name}) | {goal} | "
                     f"{'yes' if met else '**no**'} |")
    print("\n".join(lines))
    errors = {k: v["error"] for k, v in figures.items() if "error" in v}
    if errors:
        print(f"\nErrors: {errors}")
    result = {"bench": "python", "quick": quick, "unix_time": int(started), "python": sys.version.split()[0],
              "seconds": time.time() - started, "figures": figures, "summary": summary}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nwrote {out_path}", file=sys.stderr)


if __name__ == "__main__":
    main()
