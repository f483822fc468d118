"""The task database from Python: get_result, result_status, abort,
resubmit, db_query, purge_results, as ipyparallel's Client has them."""

import pytest

import wasp


def test_results_are_found_again_by_msg_id_from_another_client(rc, cluster, tasks):
    lview = rc.load_balanced_view()
    ar = lview.apply_async(tasks.area.area, 4, 5)
    assert ar.get(timeout=30) == 20
    (msg_id,) = ar.msg_ids

    other = wasp.Client(profile=cluster.profile)
    assert other.get_result(msg_id).get(timeout=30) == 20
    assert other.get_result([msg_id]).get(timeout=30) == [20]
    assert other.result_status([msg_id, "s999999-0"]) == {msg_id: "succeeded", "s999999-0": None}

    again = other.resubmit(msg_id)
    assert again.msg_ids != [msg_id] and again.get(timeout=30) == 20

    records = other.db_query({"func": "area", "status": "succeeded"}, keys=["status", "result", "engine"])
    mine = [r for r in records if r["msg_id"] == msg_id]
    assert mine and mine[0]["status"] == "succeeded" and mine[0]["result"] == [20]
    assert mine[0]["engine_id"] in rc.ids

    assert other.purge_results(msg_id) == 1
    assert other.result_status(msg_id) == {msg_id: None}


def test_abort_stops_a_running_task(rc, tasks):
    lview = rc.load_balanced_view()
    # `spin` computes until stopped (an interrupt stops guest code; a guest
    # blocked in a host call, a sleep, ends its call first).
    ar = lview.apply_async(tasks.evil.spin)
    (msg_id,) = ar.msg_ids
    statuses = rc.abort(msg_id)
    assert statuses[msg_id] in ("failed", "running", "queued")
    with pytest.raises(wasp.RemoteError, match="(?i)abort"):
        ar.get(timeout=30)
    assert rc.result_status(msg_id) == {msg_id: "failed"}


def test_bad_database_arguments_say_what_is_expected(rc):
    with pytest.raises(ValueError, match="is not a msg_id"):
        rc.get_result("nonsense")
    with pytest.raises(ValueError, match='no status "done"; the statuses are queued'):
        rc.db_query({"status": "done"})
    with pytest.raises(ValueError, match='no filter "owner"'):
        rc.db_query({"owner": "me"})
    with pytest.raises(ValueError, match='no key "bogus"'):
        rc.db_query(keys=["bogus"])


def test_a_tenants_connection_file_acts_as_that_tenant(rc, cluster, tasks):
    import os
    import subprocess

    added = subprocess.run(
        [os.environ["WASP_BIN"], "tenant", "add", "alice", "--profile", cluster.profile],
        capture_output=True, text=True, check=True,
    )
    url_file = added.stdout.strip().splitlines()[-1]
    alice = wasp.Client(url_file=url_file)
    assert alice.tenant == "alice" and rc.tenant == "default"
    ar = alice.load_balanced_view().apply_async(tasks.area.area, 2, 2)
    assert ar.get(timeout=30) == 4
    # Another tenant's task is not found, as if it never existed.
    (msg_id,) = ar.msg_ids
    assert rc.result_status(msg_id) == {msg_id: None}
    assert alice.result_status(msg_id) == {msg_id: "succeeded"}
