"""A real cluster for the Python client's tests: the `wasp` binary built by
cargo, a controller and two engines in a profile of their own under a
temporary WASP_DIR, and the task components built from tasks/."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
TASKS = REPO / "target" / "tasks" / "wasm32-wasip2" / "release"


def _require(path: Path, how: str) -> Path:
    if not path.exists():
        pytest.fail(f"{path} is missing: {how}", pytrace=False)
    return path


@pytest.fixture(scope="session", autouse=True)
def wasp_dir(tmp_path_factory):
    """Profiles live in a temporary WASP_DIR; the wasp binary is cargo's."""
    os.environ["WASP_DIR"] = str(tmp_path_factory.mktemp("wasp-dir"))
    os.environ.setdefault(
        "WASP_BIN",
        str(_require(REPO / "target" / "debug" / "wasp", "build it with `cargo build -p wasp-cli`")),
    )
    return Path(os.environ["WASP_DIR"])


@pytest.fixture(scope="session")
def cluster(wasp_dir):
    import wasp

    cluster = wasp.Cluster(n=2)
    rc = cluster.start_and_connect_sync()
    yield cluster
    cluster.stop_cluster_sync()


@pytest.fixture(scope="session")
def rc(cluster):
    return cluster.client


@pytest.fixture(scope="session")
def tasks():
    """`tasks.norm` is the component of tasks/rust/norm, as a wasp.Module."""
    import wasp

    how = "the Rust tasks are built by `cargo build -p wasp-task-artifacts`"

    class Tasks:
        def __getattr__(self, name):
            return wasp.Module(_require(TASKS / f"{name}.wasm", how))

    return Tasks()
