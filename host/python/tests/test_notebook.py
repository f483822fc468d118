"""The seed notebook, examples/load-balancing.ipynb, executed as it stands in
a real Jupyter kernel (nbclient) against a real cluster, and its outputs
checked: what the seed shows is what wasp shows."""

import ast
import os
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

import wasp

REPO = Path(__file__).resolve().parents[3]
NOTEBOOK = REPO / "examples" / "load-balancing.ipynb"


def _text(cell) -> str:
    """A cell's printed output and its result's text, joined."""
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out["text"])
        elif "data" in out and "text/plain" in out["data"]:
            parts.append(out["data"]["text/plain"])
    return "".join(parts)


@pytest.fixture(scope="module")
def executed(wasp_dir, tmp_path_factory):
    """The notebook after a run on a 2-engine cluster in the profile
    `default` (as `wasp.Client()` finds it), plus a last cell of our own
    that prints numpy's norm of the notebook's `A`."""
    os.environ.setdefault("WASP_TASK_CACHE", str(tmp_path_factory.mktemp("nb-task-cache")))
    os.environ.setdefault(
        "WASP_COMPONENTIZE_PY", str(REPO / "target" / "py-venv" / "bin" / "componentize-py")
    )
    os.environ["WASP_TASKS"] = str(REPO / "target" / "tasks" / "wasm32-wasip2" / "release")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    check = nbformat.v4.new_code_cell("print(repr(float(np.linalg.norm(A))))")
    check.metadata["tags"] = ["numpy-norm"]
    nb.cells.append(check)
    with wasp.Cluster(n=2, profile="default"):
        NotebookClient(
            nb, timeout=300, kernel_name="python3",
            resources={"metadata": {"path": str(NOTEBOOK.parent)}},
        ).execute()
    return {cell.metadata["tags"][0]: cell for cell in nb.cells if cell.metadata.get("tags")}


def test_the_norm_equals_numpys(executed):
    expected = float(_text(executed["numpy-norm"]))
    for tag in ("norm-e0", "norm-lview"):
        assert float(_text(executed[tag])) == pytest.approx(expected, rel=1e-12), tag


def test_load_balanced_tasks_spread_over_the_engines(executed):
    assert _text(executed["getpid-e0"]).strip() == "0"
    ran_on = re.findall(r"task (\d+) ran on: (\d+)", _text(executed["pids"]))
    assert [int(i) for i, _ in ran_on] == [0, 1, 2, 3]
    assert {int(e) for _, e in ran_on} == {0, 1}


def test_map_equals_the_serial_map_with_a_task_per_chunk(executed):
    assert _text(executed["map-equal"]).strip() == "True"
    assert len(ast.literal_eval(_text(executed["msg-ids-1"]))) == 32
    assert len(ast.literal_eval(_text(executed["msg-ids-4"]))) == 8


def test_the_reference_sleeps_arrive_in_engine_order(executed):
    text = _text(executed["reference"])
    assert text.startswith("[0, 1]")
    arrivals = re.findall(r"^(\d+): ([\d.]+)$", text, re.M)
    assert [int(i) for i, _ in arrivals] == [0, 1]
    # Engine 0 slept 0 s and engine 1 slept 1 s: 0's result came first.
    assert float(arrivals[0][1]) <= float(arrivals[1][1])


def test_sleeps_ran_in_parallel_and_in_order(executed):
    text = _text(executed["sleep-here"])
    tasks = re.findall(r"task (\d+) on engine (\d+)", text)
    assert [int(i) for i, _ in tasks] == list(range(100))
    assert {int(e) for _, e in tasks} == {0, 1}
    # serial_time / wall_time: near the number of engines.
    speedup = float(_text(executed["speedup"]))
    assert 1.5 < speedup <= 2.1, speedup
    chunked = re.findall(r"task (\d+) on engine (\d+)", _text(executed["sleep-here-4"]))
    assert [int(i) for i, _ in chunked] == list(range(100))


def test_the_nested_loop_exercise_equals_the_serial_loop(executed):
    assert _text(executed["areas-equal"]).strip() == "True"
