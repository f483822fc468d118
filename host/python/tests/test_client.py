"""The Python client against a real cluster: ipyparallel's names, values
converted by WIT signatures, numpy arrays as typed lists, and clear errors."""

import os
import signal
import threading
import time

import numpy as np
import pytest

import wasp


def test_engines_are_indexed_as_in_ipyparallel(rc):
    ids = rc.wait_for_engines(2, timeout=30)
    assert len(ids) == 2 and rc.ids == ids
    assert rc[:].targets == ids
    assert rc[0].targets == [ids[0]]
    assert rc[-1].targets == [ids[-1]]
    assert rc[[1, 0]].targets == [ids[1], ids[0]]
    assert rc[1:].targets == ids[1:]
    assert len(rc.direct_view()) == 2
    with pytest.raises(IndexError, match="no engine at 5: 2 are connected"):
        rc[5]


def test_a_module_exposes_its_exports_with_their_signatures(tasks):
    sleep = tasks.sleep
    assert "sleep_here" in dir(sleep)
    assert sleep.sleep_here.signature == "sleep-here: func(t: f64) -> u32"
    assert sleep.sleep_here.name == "sleep-here"
    with pytest.raises(AttributeError, match="no export `nope`.*sleep, sleep_here"):
        sleep.nope
    with pytest.raises(TypeError, match="runs on a cluster"):
        sleep.sleep(1.0)


def test_norm_of_a_numpy_array_equals_numpys(rc, tasks):
    lview = rc.load_balanced_view()
    a = np.random.default_rng(7).random(100_000)
    got = lview.apply_sync(tasks.norm.norm, a, 2)
    assert got == pytest.approx(np.linalg.norm(a), rel=1e-12)
    # A plain list and a float32 array converted item by item agree too.
    assert lview.apply_sync(tasks.norm.norm, [3.0, 4.0], 2) == 5.0
    assert lview.apply_sync(tasks.norm.norm, (6, 8), 2.0) == 10.0


def test_typed_lists_round_trip_as_numpy_arrays_of_their_dtype(rc, tasks):
    lview = rc.load_balanced_view()
    lists = tasks.lists
    for name, dtype in [("reverse_f64", np.float64), ("reverse_f32", np.float32),
                        ("reverse_s64", np.int64), ("reverse_s32", np.int32),
                        ("reverse_u16", np.uint16), ("reverse_s8", np.int8)]:
        a = np.arange(1000).astype(dtype)
        back = lview.apply_sync(getattr(lists, name), a)
        assert isinstance(back, np.ndarray) and back.dtype == dtype, name
        np.testing.assert_array_equal(back, a[::-1])
    # list<u8> is bytes, both ways.
    assert lview.apply_sync(lists.reverse_u8, b"wasp") == b"psaw"
    # A tuple result is a tuple.
    scaled, total = lview.apply_sync(lists.scale, np.array([1.0, 2.0]), 3.0)
    np.testing.assert_array_equal(scaled, [3.0, 6.0])
    assert total == 9.0


def test_records_come_back_as_dicts_with_python_names(rc, tasks):
    lview = rc.load_balanced_view()
    rows = lview.apply_sync(tasks.mc_options.price_options, 100.0, [90.0, 110.0], 0.2, 0.01, 30, 200, 42)
    assert [r["strike"] for r in rows] == [90.0, 110.0]
    assert set(rows[0]) == {"strike", "european_call", "european_put", "asian_call", "asian_put"}
    assert rows[0]["european_call"] > rows[1]["european_call"]


def test_an_async_result_has_ipyparallels_surface(rc, tasks):
    lview = rc.load_balanced_view()
    ar = lview.apply_async(tasks.area.area, 3, 7)
    assert isinstance(ar, wasp.AsyncResult)
    assert ar.get(timeout=30) == 21
    assert ar.ready() and ar.successful() and ar.wait(0)
    assert len(ar.msg_ids) == 1 and len(ar) == 1
    meta = ar.metadata[0]
    assert meta["engine_id"] in rc.ids
    assert meta["completed"] >= meta["started"] >= meta["submitted"] > 0
    assert ar.wall_time >= 0 and ar.serial_time >= 0 and ar.elapsed >= 0
    assert ar.stdout == [""]


def test_map_makes_one_task_per_chunk_in_order(rc, tasks):
    lview = rc.load_balanced_view()
    pow10 = tasks.pow10.pow10
    ar = lview.map_async(pow10, range(32))
    assert len(ar.msg_ids) == 32
    assert ar.get() == [x**10 for x in range(32)]
    lview.chunksize = 4
    ar = lview.map(pow10, range(32))
    assert len(ar.msg_ids) == 8
    assert list(ar) == [x**10 for x in range(32)]
    lview.set_flags(chunksize=1, block=True)
    assert lview.map(pow10, [2, 3]) == [1024, 59049]
    assert lview.apply(tasks.area.area, 2, 3) == 6
    with pytest.raises(TypeError, match="no flag `chunk`"):
        lview.set_flags(chunk=3)


def test_load_balanced_tasks_spread_over_the_engines(rc, tasks):
    lview = rc.load_balanced_view()
    ids = lview.map_sync(tasks.sleep.sleep_here, [0.05] * 8)
    assert set(ids) == set(rc.ids)


def test_a_direct_view_runs_on_each_engine_and_holds_a_namespace(rc, tasks):
    dv = rc[:]
    assert sorted(dv.apply_sync(tasks.getpid.getpid)) == sorted(rc.ids)
    assert rc[0].apply_sync(tasks.getpid.getpid) == rc.ids[0]

    a = np.linspace(0.0, 1.0, 10_000)
    dv.push({"a": a, "n": 5, "name": "x"}, block=True)
    pulled = dv["a"]
    assert len(pulled) == 2
    for part in pulled:
        np.testing.assert_array_equal(part, a)
    assert dv.pull("n") == [5, 5]
    assert rc[1]["name"] == "x"
    dv["n"] = 6
    assert dv.pull(["n", "name"]) == [[6, 6], ["x", "x"]]

    lview = rc.load_balanced_view()
    got = lview.apply_sync(tasks.norm.norm, wasp.Reference("a"), 2)
    assert got == pytest.approx(np.linalg.norm(a), rel=1e-12)


def test_scatter_and_gather_split_and_join(rc):
    dv = rc[:]
    a = np.arange(11.0)
    dv.scatter("part", a)
    parts = dv["part"]
    assert [len(p) for p in parts] == [6, 5]
    back = dv.gather("part")
    assert isinstance(back, np.ndarray)
    np.testing.assert_array_equal(back, a)
    dv.scatter("xs", list(range(5)))
    assert dv.gather("xs") == list(range(5))
    dv.scatter("one", [7, 8], flatten=True)
    assert dv["one"] == [7, 8]


def test_bad_arguments_name_the_argument_and_the_wit_type(rc, tasks):
    lview = rc.load_balanced_view()
    norm = tasks.norm.norm
    with pytest.raises(TypeError, match=r"argument v: expected list<f64>, got str"):
        lview.apply_sync(norm, "abc", 2)
    with pytest.raises(TypeError, match=r"argument v\[1\]: expected f64, got str 'x'"):
        lview.apply_sync(norm, [1.0, "x"], 2)
    with pytest.raises(TypeError, match=r'dtype int64 where list<f64> takes float64; convert it with .astype\("float64"\)'):
        lview.apply_sync(norm, np.arange(3), 2)
    with pytest.raises(TypeError, match=r"norm: func\(v: list<f64>, p: f64\) -> f64 takes 2 arguments, got 1"):
        lview.apply_sync(norm, [1.0])
    with pytest.raises(TypeError, match="argument w: expected s64, got float 2.5"):
        lview.apply_sync(tasks.area.area, 2.5, 3)
    with pytest.raises(TypeError, match="argument x: 99999999999999999999 is out of range for s64"):
        lview.apply_sync(tasks.pow10.pow10, 99999999999999999999)
    with pytest.raises(TypeError, match=r"has no wasp form"):
        rc[:].push({"f": object()})


def test_a_remote_failure_names_the_task_the_engine_and_the_cause(rc, tasks):
    lview = rc.load_balanced_view()
    with pytest.raises(wasp.RemoteError) as caught:
        lview.apply_sync(tasks.boom.boom, "on purpose")
    err = caught.value
    assert err.engine in rc.ids
    assert err.task and err.task in str(err)
    assert "on purpose" in str(err) and f"engine {err.engine}" in str(err)
    assert isinstance(err, wasp.WaspError)
    ar = lview.apply_async(tasks.boom.boom, "again")
    ar.wait(30)
    assert ar.ready() and not ar.successful()


def test_blocking_calls_release_the_gil(rc, tasks):
    lview = rc.load_balanced_view()
    ticks = []
    stop = threading.Event()

    def tick():
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.01)

    thread = threading.Thread(target=tick)
    thread.start()
    before = len(ticks)
    lview.apply_sync(tasks.sleep.sleep_here, 0.5)
    during = len(ticks) - before
    stop.set()
    thread.join()
    # The other thread kept running while this one waited for the task.
    assert during >= 10, during


def test_ctrl_c_interrupts_a_wait(rc, tasks):
    lview = rc.load_balanced_view()
    ar = lview.apply_async(tasks.evil.spin)  # computes until stopped
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        ar.get()
    assert not ar.ready()
    ar.abort()
    with pytest.raises(wasp.RemoteError, match="(?i)abort"):
        ar.get(timeout=30)


def test_wait_interactive_shows_progress_until_done(rc, tasks, capsys):
    lview = rc.load_balanced_view()
    ar = lview.map_async(tasks.sleep.sleep_here, [0.02] * 6)
    ar.wait_interactive(interval=0.01)
    assert ar.ready() and ar.progress == 6
    assert "6/6" in capsys.readouterr().err
