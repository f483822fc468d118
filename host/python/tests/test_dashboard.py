"""Issue 16 on a real cluster with the dashboard's server on: `/metrics` in
the Prometheus text format, read with the Prometheus client library's own
parser (prometheus_client.parser) after a map; and `/api/view`, what the
dashboard shows, scoped to the token's tenant."""

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

import wasp
from conftest import TASKS


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, token: str | None) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


@pytest.fixture(scope="module")
def dashboard_cluster(wasp_dir):
    port = _free_port()
    cluster = wasp.Cluster(n=2, dashboard=f"127.0.0.1:{port}")
    rc = cluster.start_and_connect_sync()
    yield cluster, rc, f"http://127.0.0.1:{port}"
    cluster.stop_cluster_sync()


def _samples(text: str) -> dict:
    """Every sample by (name, sorted labels), through the reference parser."""
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _token(path) -> str:
    return json.loads(open(path).read())["token"]


def _add_tenant(cluster, name: str) -> str:
    """`wasp tenant add NAME` on the cluster; the path of its connection file."""
    added = subprocess.run(
        [wasp._wasp_binary(), "tenant", "add", name, "--profile", cluster.profile],
        capture_output=True,
        text=True,
        check=True,
    )
    return added.stdout.strip().splitlines()[-1]


def test_metrics_count_a_map_by_tenant_and_outcome(dashboard_cluster):
    cluster, rc, base = dashboard_cluster
    url = f"{base}/metrics"
    token = _token(cluster.profile_dir / "security" / "wasp-client.json")
    pow10 = wasp.Module(str(TASKS / "pow10.wasm")).pow10
    view = rc.load_balanced_view()
    # 0..99: x^10 of 79 and more overflows an s64 and traps.
    results = view.map_async(pow10, range(100))
    results.wait()
    with pytest.raises(wasp.RemoteError):
        results.get()
    # The engines' memory comes with their heartbeats (each second, the
    # first as they join): wait for it rather than assume it came.
    for _ in range(60):
        status, text = _get(url, token)
        assert status == 200, text
        samples = _samples(text)
        if samples.get(("wasp_engine_process_resident_bytes_max", ()), 0) > 0:
            break
        time.sleep(0.5)
    tasks = lambda outcome: samples.get(
        ("wasp_tasks_total", (("outcome", outcome), ("tenant", "default")))
    )
    assert tasks("succeeded") == 79, text
    assert tasks("trap") == 21, text
    assert samples[("wasp_tasks_queued", (("tenant", "default"),))] == 0
    assert samples[("wasp_tasks_running", (("tenant", "default"),))] == 0
    engines = samples[("wasp_engines", (("state", "idle"),))] + samples[
        ("wasp_engines", (("state", "busy"),))
    ]
    assert engines == 2
    assert samples[("wasp_dispatches_total", ())] >= 100
    # Histograms: every ended task observed once; buckets cumulative.
    assert samples[("wasp_task_latency_seconds_count", ())] == 100
    assert samples[("wasp_task_run_seconds_count", ())] == 100
    buckets = sorted(
        (float(dict(labels)["le"]), value)
        for (name, labels), value in samples.items()
        if name == "wasp_task_latency_seconds_bucket"
    )
    assert buckets[-1] == (float("inf"), 100)
    assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:]))
    # Bytes moved and the module's cache: sent to each engine process at
    # most once, every other dispatch a hit.
    assert samples[("wasp_argument_bytes_total", ())] > 0
    assert samples[("wasp_result_bytes_total", ())] > 0
    hits = samples[("wasp_module_cache_hits_total", ())]
    misses = samples[("wasp_module_cache_misses_total", ())]
    assert misses <= 2 and hits + misses == samples[("wasp_dispatches_total", ())]
    # Memory: each engine process's resident set, from its heartbeats.
    resident = samples[("wasp_engines_resident_bytes", ())]
    largest = samples[("wasp_engine_process_resident_bytes_max", ())]
    assert 1 << 20 < largest <= resident, text


def test_metrics_need_an_admin_token_in_the_header(dashboard_cluster):
    cluster, rc, base = dashboard_cluster
    url = f"{base}/metrics"
    status, text = _get(url, None)
    assert status == 401 and "Authorization: Bearer TOKEN" in text, text
    status, text = _get(url, "not-a-token")
    assert status == 401 and "matches no tenant" in text, text
    # A tenant that is not an admin sees nothing of the others' figures.
    bob = _token(_add_tenant(cluster, "bob"))
    status, text = _get(url, bob)
    assert status == 403 and "tenant bob is not an admin" in text, text
    # The token appears in no answer.
    assert bob not in text


def test_the_view_shows_a_tenant_its_own_work_and_an_admin_everyones(dashboard_cluster):
    cluster, rc, base = dashboard_cluster
    admin = _token(cluster.profile_dir / "security" / "wasp-client.json")
    carol_file = _add_tenant(cluster, "carol")
    carol = wasp.Client(url_file=carol_file)
    area = wasp.Module(str(TASKS / "area.wasm")).area
    assert carol.load_balanced_view().map_sync(area, range(5), range(5)) == [0, 1, 4, 9, 16]
    # The default tenant's work beside hers: a task that traps.
    pow10 = wasp.Module(str(TASKS / "pow10.wasm")).pow10
    trapped = rc.load_balanced_view().map_async(pow10, [99])
    trapped.wait()
    assert not trapped.successful()

    status, text = _get(f"{base}/api/view", _token(carol_file))
    assert status == 200, text
    view = json.loads(text)
    assert view["tenant"] == "carol" and view["admin"] is False
    assert len(view["engines"]) == 2
    assert [row["tenant"] for row in view["queue"]] == ["carol"]
    assert view["queue"][0]["succeeded"] == 5
    maps = view["maps"]
    assert [(m["func"], m["total"], m["done"]) for m in maps] == [("area", 5, 5)], maps
    assert maps[0]["finished_us"] is not None and maps[0]["eta_s"] is None
    # Her runs, each on an engine, none of the default tenant's pow10.
    assert {run["func"] for run in view["runs"]} == {"area"}
    assert len(view["runs"]) == 5
    assert all(run["completed_us"] >= run["started_us"] for run in view["runs"])
    assert all(run["peak_memory_bytes"] > 0 for run in view["runs"])
    assert all(engine["memory_bytes"] > 1 << 20 for engine in view["engines"])

    status, text = _get(f"{base}/api/view", admin)
    everyone = json.loads(text)
    assert everyone["admin"] is True
    assert {row["tenant"] for row in everyone["queue"]} >= {"default", "carol"}
    assert {m["func"] for m in everyone["maps"]} >= {"area", "pow10"}
    # The default tenant's pow10 traps are among the failures, with their
    # kind and engine.
    traps = [f for f in everyone["failures"] if f["kind"] == "trap"]
    assert traps and all(f["engine"] is not None for f in traps)
    assert not [f for f in view["failures"]], "carol sees no one else's failures"

    status, text = _get(f"{base}/api/view", None)
    assert status == 401 and "Authorization: Bearer TOKEN" in text, text


def test_a_tasks_record_shows_its_arguments_result_and_output_to_its_tenant_only(
    dashboard_cluster,
):
    cluster, rc, base = dashboard_cluster
    admin = _token(cluster.profile_dir / "security" / "wasp-client.json")
    dave_file = _add_tenant(cluster, "dave")
    dave = wasp.Client(url_file=dave_file)
    norm = wasp.Module(str(TASKS / "norm.wasm")).norm
    small = dave.load_balanced_view().apply_async(norm, [3.0, 4.0], 2)
    assert small.get() == 5.0
    # 100,000 float64: 800 KB of arguments, kept in a file of their own.
    big = dave.load_balanced_view().apply_async(norm, [1.0] * 100_000, 1)
    assert big.get() == 100_000.0
    (small_id,), (big_id,) = small.msg_ids, big.msg_ids

    status, text = _get(f"{base}/api/task/{small_id}", _token(dave_file))
    assert status == 200, text
    record = json.loads(text)
    assert record["id"] == small_id and record["status"] == "succeeded"
    assert record["func"] == "norm" and record["engine"] is not None
    assert json.loads(record["args"]) == [[3.0, 4.0], 2.0]
    assert json.loads(record["result"]) == [5.0]
    assert record["started_us"] <= record["completed_us"]

    # Too large to show: named by its size, not sent.
    status, text = _get(f"{base}/api/task/{big_id}", _token(dave_file))
    assert status == 200, text
    args = json.loads(text)["args"]
    assert "bytes of arguments: more than the 262144 bytes" in args, args
    # The 800 KB of floats were in the task's linear memory: its peak is
    # that much over the small task's (some fit in the memory it starts
    # with).
    big_peak, small_peak = json.loads(text)["peak_memory_bytes"], record["peak_memory_bytes"]
    assert small_peak > 0 and big_peak - small_peak >= 700_000, (big_peak, small_peak)

    # The admin sees it; another tenant, as one that never was.
    status, _ = _get(f"{base}/api/task/{small_id}", admin)
    assert status == 200
    erin = _token(_add_tenant(cluster, "erin"))
    status, text = _get(f"{base}/api/task/{small_id}", erin)
    assert status == 404 and "tenant erin has no task" in text, text
    status, text = _get(f"{base}/api/task/not-an-id", _token(dave_file))
    assert status == 400 and "expected one like s3-17" in text, text
    status, text = _get(f"{base}/api/task/{small_id}", None)
    assert status == 401, text
