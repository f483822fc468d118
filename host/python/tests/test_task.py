"""@wasp.task: annotated Python functions as sandboxed task components."""

import math
from dataclasses import dataclass
from typing import Optional

import pytest

import wasp

SCALE = 3.0


@pytest.fixture(autouse=True, scope="module")
def task_cache(tmp_path_factory):
    import os

    os.environ["WASP_TASK_CACHE"] = str(tmp_path_factory.mktemp("task-cache"))
    os.environ.setdefault("WASP_COMPONENTIZE_PY", str(
        __import__("pathlib").Path(__file__).resolve().parents[3] / "target" / "py-venv" / "bin" / "componentize-py"))


@dataclass
class Rect:
    w: float
    h: float


@wasp.task
def area(w: int, h: int) -> int:
    return w * h


@wasp.task
def stretch(r: Rect, by: Optional[float], tags: list[str]) -> tuple[Rect, float, int]:
    k = by if by is not None else 2.0
    out = Rect(r.w * k, r.h)
    return (out, math.sqrt(out.w * out.h), len(tags))


def test_a_task_is_still_the_plain_function_when_called():
    assert area(6, 7) == 42
    assert area.__name__ == "area" and area.signature == "area: func(w: s64, h: s64) -> s64"
    assert "record rect" in stretch.wit
    assert stretch.signature == (
        "stretch: func(r: rect, by: option<f64>, tags: list<string>) -> tuple<rect, f64, s64>"
    )


def test_tasks_run_sandboxed_on_the_engines(rc):
    lview = rc.load_balanced_view()
    widths, heights = [1, 2, 3], [6, 7, 8]
    assert lview.map_sync(area, widths, heights) == [6, 14, 24]
    assert lview.apply_sync(area, 2**31, 2) == 2**32
    # A second build of the same source comes from the cache.
    assert area.build() == area.build()

    rect, diag, n = lview.apply_sync(stretch, {"w": 2.0, "h": 8.0}, None, ["a", "b"])
    assert rect == {"w": 4.0, "h": 8.0} and diag == pytest.approx(math.sqrt(32)) and n == 2
    rect, _, _ = lview.apply_sync(stretch, Rect(1.0, 1.0), 5.0, [])
    assert rect["w"] == 5.0


def test_a_task_that_raises_fails_remotely_with_its_message(rc):
    @wasp.task
    def picky(x: int) -> int:
        if x < 0:
            raise ValueError(f"negative: {x}")
        return x

    lview = rc.load_balanced_view()
    assert lview.apply_sync(picky, 3) == 3
    with pytest.raises(wasp.RemoteError, match="negative: -1"):
        lview.apply_sync(picky, -1)


@pytest.mark.parametrize(
    "define, message",
    [
        (lambda: wasp.task(lambda x: x), "a lambda cannot be a task"),
        (lambda: _unannotated(), "argument `x` has no type annotation"),
        (lambda: _no_result(), "its result has no type annotation"),
        (lambda: _closure(), "closure over `k`"),
        (lambda: _global_value(), r"reads the global `SCALE` \(float\)"),
        (lambda: _unsupported(), "argument `x`: dict has no WIT form"),
        (lambda: _default(), "argument `x` has a default value"),
        (lambda: _varargs(), "argument `xs` is variadic positional"),
    ],
)
def test_what_cannot_be_a_task_is_refused_before_anything_is_built(define, message):
    with pytest.raises(wasp.TaskDefinitionError, match=message):
        define()


def _unannotated():
    @wasp.task
    def f(x) -> int:
        return x


def _no_result():
    @wasp.task
    def f(x: int):
        return x


def _closure():
    k = 3

    @wasp.task
    def f(x: int) -> int:
        return x * k


def _global_value():
    @wasp.task
    def f(x: float) -> float:
        return x * SCALE


def _unsupported():
    @wasp.task
    def f(x: dict) -> int:
        return 1


def _default():
    @wasp.task
    def f(x: int = 2) -> int:
        return x


def _varargs():
    @wasp.task
    def f(*xs: int) -> int:
        return 1
