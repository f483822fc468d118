"""wasp from Python: ipyparallel's model, every task a WebAssembly component
in its own sandbox.

    import wasp
    with wasp.Cluster(n=2) as rc:             # or rc = wasp.Client()
        m = wasp.Module("norm.wasm")          # a task component; exports are attributes
        lview = rc.load_balanced_view()
        lview.apply_sync(m.norm, [3.0, 4.0], 2)   # 5.0
        lview.map_sync(m.pow10, range(8))

The classes are those of ipyparallel, by the same names: `Client`,
`LoadBalancedView`, `DirectView`, `AsyncResult`, `Reference`, `RemoteError`.
What differs is the function: a `Module`'s export (`m.norm`), typed by its WIT
signature, which converts the arguments before anything is sent (a numpy array
goes to a `list<f64>` in one copy).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from pathlib import Path

from ._wasp import (
    AsyncResult,
    Client,
    DirectView,
    Function,
    LoadBalancedView,
    Module,
    Reference,
    RemoteError,
    WaspError,
)
from .task import Task, TaskDefinitionError, task

__all__ = [
    "AsyncResult",
    "Client",
    "Cluster",
    "DirectView",
    "Function",
    "LoadBalancedView",
    "Module",
    "Reference",
    "RemoteError",
    "Task",
    "TaskDefinitionError",
    "WaspError",
    "task",
]


def _wasp_binary() -> str:
    """The `wasp` command: $WASP_BIN, else `wasp` on the PATH."""
    found = os.environ.get("WASP_BIN") or shutil.which("wasp")
    if not found:
        raise WaspError(
            "no `wasp` command: put it on the PATH or set WASP_BIN "
            "(cargo build -p wasp-cli builds it as target/debug/wasp)"
        )
    return found


class Cluster:
    """A local cluster (a controller and `n` engines) in a profile of its own,
    as ipyparallel's `Cluster`:

        with wasp.Cluster(n=2) as rc:      # starts, connects, and stops at the end
            ...

        cluster = wasp.Cluster(n=2)
        rc = cluster.start_and_connect_sync()
        ...
        cluster.stop_cluster_sync()

    `profile` names the profile (a fresh `cluster-...` one by default, removed
    when the cluster stops); further keyword arguments become
    `wasp cluster start` flags (`scheme="lru"` is `--scheme lru`).
    """

    def __init__(self, n: int = 2, profile: str | None = None, **flags):
        self.n = n
        self.profile = profile or f"cluster-{secrets.token_hex(4)}"
        self._own_profile = profile is None
        self._flags = flags
        self._started = False
        self.client: Client | None = None

    @property
    def profile_dir(self) -> Path:
        """The profile's folder: $WASP_DIR/profile_NAME (~/.wasp/... by default)."""
        base = os.environ.get("WASP_DIR") or os.path.join(os.path.expanduser("~"), ".wasp")
        return Path(base) / f"profile_{self.profile}"

    def _run(self, *args: str) -> None:
        done = subprocess.run(
            [_wasp_binary(), "cluster", *args, "--profile", self.profile],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise WaspError(
                f"wasp cluster {args[0]} failed (exit {done.returncode}): "
                f"{done.stderr.strip() or done.stdout.strip()}"
            )

    def start_cluster_sync(self) -> None:
        """Starts the controller and engines in the background."""
        flags = []
        for key, value in self._flags.items():
            flag = "--" + key.replace("_", "-")
            if value is True:
                flags.append(flag)
            elif value not in (False, None):
                flags += [flag, str(value)]
        try:
            self._run("start", "-n", str(self.n), "--daemon", *flags)
        except WaspError:
            if self._own_profile:
                shutil.rmtree(self.profile_dir, ignore_errors=True)
            raise
        self._started = True

    def connect_client_sync(self) -> Client:
        """A client of the cluster, once its engines are connected."""
        self.client = Client(profile=self.profile)
        self.client.wait_for_engines(self.n)
        return self.client

    def start_and_connect_sync(self) -> Client:
        """Starts the cluster and returns a client once every engine is up."""
        self.start_cluster_sync()
        try:
            return self.connect_client_sync()
        except BaseException:
            self.stop_cluster_sync()
            raise

    def stop_cluster_sync(self) -> None:
        """Stops the controller and engines (and removes a profile made for it)."""
        if not self._started:
            return
        self._started = False
        self.client = None
        try:
            self._run("stop")
        finally:
            if self._own_profile:
                shutil.rmtree(self.profile_dir, ignore_errors=True)

    def __enter__(self) -> Client:
        return self.start_and_connect_sync()

    def __exit__(self, *exc) -> None:
        self.stop_cluster_sync()

    def __repr__(self) -> str:
        state = "running" if self._started else "stopped"
        return f"<wasp.Cluster n={self.n} profile={self.profile!r} {state}>"
