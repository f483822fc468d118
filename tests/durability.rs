//! Issue 11, end to end: nothing accepted is lost. Real controller and
//! engine processes, `kill -9` for faults, the task database through the
//! Rust client and the CLI.

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use wasp_client::{Client, ClientError, Module, Query, RetryPolicy, Status};
use wasp_proto::msg::ErrorKind;
use wasp_proto::{TaskId, Value};
use wasp_task_artifacts as tasks;

mod common;
use common::{Cluster, kill9, role_pid, running, wasp};

fn module(path: &str) -> Module {
    Module::from_file(path).expect("module")
}

/// What the `cpu` task computes, computed here.
fn cpu(n: u64) -> u64 {
    let mut s: u64 = 0;
    for i in 0..n {
        s = s.wrapping_mul(31).wrapping_add(i) % 1_000_003;
    }
    s
}

/// The pid in an engine's status name (`host:pid`).
fn pid_of(name: &str) -> u32 {
    // `host:pid`, or `host:pid#slot` for an engine process of several
    // (`cluster start` spreads 4 engines over a process per core).
    let process = name.split('#').next().unwrap_or(name);
    process
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid in engine name {name:?}"))
}

/// Polls `check` every 20 ms until it holds, for at most a minute (a
/// deadline for a hang, not a speed assertion).
async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An engine of the cluster's that holds at least one task now, by pid.
async fn busy_engine(rc: &Client) -> Option<u32> {
    let status = rc.status().await.ok()?;
    status
        .engines
        .iter()
        .find(|e| e.outstanding > 0)
        .map(|e| pid_of(&e.name))
}

/// Flags of the clusters whose engines are killed: a killed engine's
/// connection ends silently, so the heartbeat timeout is how soon its
/// death is noticed (engines beat every second).
const FAST_DETECTION: [&str; 2] = ["--heartbeat-timeout", "3s"];

/// An engine holding a task now, other than those in `killed`, by pid.
async fn busy_engine_besides(rc: &Client, killed: &HashSet<u32>) -> u32 {
    let mut pid = None;
    until("a busy engine not killed yet", async || {
        pid = rc.status().await.ok().and_then(|status| {
            status
                .engines
                .iter()
                .map(|e| (e.outstanding, pid_of(&e.name)))
                .find(|(outstanding, pid)| *outstanding > 0 && !killed.contains(pid))
                .map(|(_, pid)| pid)
        });
        pid.is_some()
    })
    .await;
    pid.expect("a busy engine")
}

async fn map_surviving_two_engine_deaths(chunksize: usize) {
    let cluster = Cluster::start_with(4, &FAST_DETECTION);
    let rc = cluster.client().await;
    let cpu_task = module(tasks::CPU);
    // About a millisecond each: the map outlasts both kills.
    let n: Vec<u64> = (0..10_000u64).map(|i| 100_000 + i).collect();
    let view = rc.load_balanced_view().with_chunksize(chunksize);
    let mut result = cpu_map(&view, &cpu_task, &n).await;
    let total = result.msg_ids().len();
    let mut killed = HashSet::new();
    for fraction in [5, 30] {
        until("progress", async || {
            result.progress() * 100 >= total * fraction
        })
        .await;
        let pid = busy_engine_besides(&rc, &killed).await;
        kill9(pid);
        killed.insert(pid);
        // The death lands in the middle of the map, not after it.
        assert!(result.progress() < total, "the map ended before the kill");
    }
    let values = result.get(None).await.expect("every task succeeds");
    assert_eq!(values.len(), n.len(), "no result is missing");
    for (x, value) in n.iter().zip(&values) {
        assert_eq!(value, &Some(Value::U64(cpu(*x))), "cpu({x})");
    }
    // The records hold each task once, succeeded.
    let records = rc
        .db_query(Query {
            keys: vec!["status".into()],
            limit: Some(100_000),
            ..Query::default()
        })
        .await
        .expect("query");
    let ids: HashSet<TaskId> = records.iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), records.len(), "a task recorded twice");
    assert_eq!(
        ids,
        result.msg_ids().iter().copied().collect(),
        "the records hold exactly the map's tasks"
    );
    assert!(records.iter().all(|r| r.status == Some(Status::Succeeded)));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_map_survives_two_engine_kills_chunksize_1() {
    map_surviving_two_engine_deaths(1).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_map_survives_two_engine_kills_chunksize_10() {
    map_surviving_two_engine_deaths(10).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_whose_engine_keeps_dying_fails_as_killed_worker() {
    let cluster = Cluster::start_with(4, &FAST_DETECTION);
    let rc = cluster.client().await;
    let sleep = module(tasks::SLEEP);
    let pow10 = module(tasks::POW10);
    let lview = rc.load_balanced_view();
    let mut doomed = lview
        .apply_async(&sleep, "sleep-here", vec![Value::F64(600.0)])
        .await
        .expect("submitted");
    let mut killed = HashSet::new();
    for death in 1..=3u32 {
        // Each time on the engine it went to next (the supervisor restarts
        // the killed ones under new pids).
        let pid = busy_engine_besides(&rc, &killed).await;
        kill9(pid);
        killed.insert(pid);
        if death < 3 {
            assert!(!doomed.ready(), "failed after {death} deaths");
        }
    }
    let err = doomed.get_one(None).await.expect_err("the task fails");
    let ClientError::Remote(remote) = err else {
        panic!("not a remote error: {err}")
    };
    assert_eq!(remote.kind, ErrorKind::EngineDied);
    assert!(
        remote.message.contains("KilledWorker"),
        "{}",
        remote.message
    );
    assert!(remote.message.contains("3 times"), "{}", remote.message);
    // The rest of the work completes on the engine left.
    let xs: Vec<Value> = (0..50).map(Value::S64).collect();
    let values = lview.map(&pow10, "pow10", vec![xs]).await.expect("map");
    assert_eq!(values[7], Some(Value::S64(282_475_249)), "7^10");
}

#[tokio::test(flavor = "multi_thread")]
async fn abort_queued_and_running_tasks_and_resubmit_a_failed_one() {
    let cluster = Cluster::start(1);
    let rc = cluster.client().await;
    let evil = module(tasks::EVIL);
    let pow10 = module(tasks::POW10);
    let lview = rc.load_balanced_view();
    let engine_pid = role_pid(&cluster.profile(), "engine-0").expect("engine-0");

    // `spin` loops forever (until the engine's wall-time ceiling).
    let mut spinning = lview
        .apply_async(&evil, "spin", vec![])
        .await
        .expect("spin");
    let mut queued = lview
        .map_async(&pow10, "pow10", vec![(0..3).map(Value::S64).collect()])
        .await
        .expect("queued");
    until("spin on the engine", async || {
        busy_engine(&rc).await.is_some()
    })
    .await;
    queued.abort().await.expect("abort queued");
    for _ in 0..3 {
        match queued.next().await {
            Some(Err(ClientError::Remote(err))) => assert_eq!(err.kind, ErrorKind::Aborted),
            other => panic!("a queued task ran or vanished: {other:?}"),
        }
    }
    let statuses = rc.abort(spinning.msg_ids()).await.expect("abort");
    assert_eq!(
        statuses,
        [Some(Status::Running)],
        "interrupted, not yet ended"
    );
    let err = spinning.get_one(None).await.expect_err("aborted");
    let ClientError::Remote(remote) = err else {
        panic!("{err}")
    };
    assert_eq!(remote.kind, ErrorKind::Aborted, "{}", remote.message);
    // The same engine process is free again.
    let after = lview
        .apply_sync(&pow10, "pow10", vec![Value::S64(4)])
        .await
        .expect("runs after the abort");
    assert_eq!(after, Some(Value::S64(1_048_576)), "4^10");
    assert!(running(engine_pid), "the engine survived the abort");

    // Resubmit a failed task: a new id, the same (deterministic) failure.
    let mut failed = lview
        .apply_async(&evil, "fail", vec![Value::String("on purpose".into())])
        .await
        .expect("fail");
    let first = failed.get_one(None).await.expect_err("fails");
    let mut again = rc.resubmit(failed.msg_ids()).await.expect("resubmitted");
    assert_ne!(again.msg_ids(), failed.msg_ids(), "a new id");
    let second = again.get_one(None).await.expect_err("fails again");
    let (ClientError::Remote(a), ClientError::Remote(b)) = (first, second) else {
        panic!("not remote errors")
    };
    assert_eq!(a.message, b.message);
    // Unknown ids are named.
    let unknown = TaskId::new(999, 1);
    let err = rc.get_result(&[unknown]).await.expect_err("unknown");
    assert!(err.to_string().contains("s999-1"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_with_escalation_double_the_time_limit() {
    let cluster = Cluster::start(1);
    let rc = cluster.client().await;
    let evil = module(tasks::EVIL);
    let lview = rc
        .load_balanced_view()
        .with_timeout(Duration::from_millis(100))
        .with_retries(2)
        .with_escalate(true);
    let mut result = lview
        .apply_async(&evil, "spin", vec![])
        .await
        .expect("spin");
    let err = result
        .get_one(None)
        .await
        .expect_err("spins past every limit");
    let ClientError::Remote(remote) = err else {
        panic!("{err}")
    };
    assert_eq!(remote.kind, ErrorKind::Timeout, "{}", remote.message);
    let meta = result.metadata()[0].expect("finished").clone();
    assert_eq!(meta.attempts, 2, "ran three times");
    assert_eq!(
        meta.limits.timeout_us,
        Some(400_000),
        "100 ms, doubled twice"
    );
    // Without escalation the limit stays.
    let flat = rc
        .load_balanced_view()
        .with_timeout(Duration::from_millis(100))
        .with_retries(1);
    let mut result = flat.apply_async(&evil, "spin", vec![]).await.expect("spin");
    result.get_one(None).await.expect_err("times out");
    let meta = result.metadata()[0].expect("finished").clone();
    assert_eq!((meta.attempts, meta.limits.timeout_us), (1, Some(100_000)));
    let _ = RetryPolicy::default();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_engine_is_disconnected_and_its_task_runs_elsewhere() {
    let cluster = Cluster::start_with(2, &["--heartbeat-timeout", "2s", "--hwm", "1"]);
    let rc = cluster.client().await;
    let sleep = module(tasks::SLEEP);
    let lview = rc.load_balanced_view();
    let mut task = lview
        .apply_async(&sleep, "sleep-here", vec![Value::F64(1.0)])
        .await
        .expect("submitted");
    let mut pid = None;
    let mut first_engine = None;
    until("the task on an engine", async || {
        let Ok(status) = rc.status().await else {
            return false;
        };
        let busy = status.engines.iter().find(|e| e.outstanding > 0);
        pid = busy.map(|e| pid_of(&e.name));
        first_engine = busy.map(|e| e.id);
        busy.is_some()
    })
    .await;
    let pid = pid.expect("busy");
    // A hung process: it neither answers nor dies.
    let stop = Command::new("kill")
        .args(["-STOP", &pid.to_string()])
        .status()
        .expect("kill -STOP");
    assert!(stop.success());
    let value = task.get_one(None).await.expect("ran elsewhere");
    let _ = Command::new("kill")
        .args(["-CONT", &pid.to_string()])
        .status();
    let ran_on = match value {
        Some(Value::U32(id)) => id,
        other => panic!("{other:?}"),
    };
    assert_ne!(
        Some(ran_on),
        first_engine.map(|e| e.0),
        "ran on the other engine"
    );
    let status = rc.status().await.expect("status");
    assert!(
        status.engines.iter().all(|e| Some(e.id) != first_engine),
        "the silent engine is disconnected: {status:?}"
    );
    let meta = task.metadata()[0].expect("finished").clone();
    assert_eq!(
        meta.attempts, 1,
        "once more after its engine was declared dead"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_controller_restarts_where_it_stopped() {
    let cluster = Cluster::start(2);
    let first_pid = controller_pid(&cluster).expect("a controller");
    let rc = cluster.client().await;
    // Queued behind the map when the controller dies: a task whose
    // argument (1.6 MB) is kept in a file beside the database, not in it.
    let norm = module(tasks::NORM);
    let a: Vec<f64> = (0..200_000).map(|i| f64::from(i % 7)).collect();
    let expected_norm = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let (n, result, big) = cpu_map_with_the_controller_killed(&cluster, &rc, async |rc| {
        let mut big = rc
            .load_balanced_view()
            .apply_async(&norm, "norm", vec![Value::from(a), Value::F64(2.0)])
            .await
            .expect("apply");
        assert!(big.wait_accepted(None).await, "the big task committed");
        let id = big.msg_ids()[0];
        let file = cluster.profile().join("args").join(format!("{id}.args"));
        assert!(
            file.exists(),
            "committed, its argument is {}",
            file.display()
        );
        id
    })
    .await;
    let ids = result.msg_ids().to_vec();
    drop(result);
    drop(rc);

    // The cluster's supervisor starts it again on the same profile; the
    // same connection file (certificate, token, port) works again.
    until("a new controller process", async || {
        controller_pid(&cluster).is_some_and(|pid| pid != first_pid)
    })
    .await;
    let rc = {
        let mut client = None;
        until("the restarted controller", async || {
            client = Client::connect_file(&cluster.client_file()).await.ok();
            client.is_some()
        })
        .await;
        client.expect("connected")
    };
    until("engines back", async || {
        rc.ids().await.is_ok_and(|ids| ids.len() == 2)
    })
    .await;
    let mut again = rc
        .get_result(&ids)
        .await
        .expect("every accepted task is known");
    let values = again.get(None).await.expect("every task succeeds");
    assert_eq!(values.len(), n.len());
    for (x, value) in n.iter().zip(&values) {
        assert_eq!(value, &Some(Value::U64(cpu(*x))), "cpu({x})");
    }
    let mut big = rc.get_result(&[big]).await.expect("the big task is known");
    match big.get_one(None).await.expect("the big task succeeds") {
        Some(Value::F64(got)) => assert!(
            (got - expected_norm).abs() <= 1e-9 * expected_norm,
            "norm {got}, expected {expected_norm}"
        ),
        other => panic!("norm returned {other:?}"),
    }
    // No record duplicated or overwritten: one row per task (the map's
    // and the big one), and new sessions do not reuse the old ones'
    // numbers.
    let records = rc
        .db_query(Query {
            limit: Some(100_000),
            ..Query::default()
        })
        .await
        .expect("query");
    assert_eq!(records.len(), ids.len() + 1);
    let session = rc_session(&rc).await;
    assert!(
        ids.iter().all(|id| id.session() < session),
        "session numbers continue"
    );
    // And from the command line.
    let first = ids[0].to_string();
    let out = wasp(&cluster.dir, &["result", &first]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        cpu(n[0]).to_string()
    );
}

/// The client that was waiting when its controller died reconnects by
/// itself (a new session), asks again for what it awaited, and its map
/// completes: every accepted task's result arrives once. A map submitted
/// while the controller is down either runs (submitted after the
/// reconnect) or fails as not accepted, never hangs or half-runs.
#[tokio::test(flavor = "multi_thread")]
async fn a_waiting_client_reconnects_and_its_map_completes_after_a_controller_kill() {
    let cluster = Cluster::start(2);
    let first_pid = controller_pid(&cluster).expect("a controller");
    let rc = cluster.client().await;
    let first_session = rc.session();
    let pow10 = module(tasks::POW10);
    let (n, mut result, ()) = cpu_map_with_the_controller_killed(&cluster, &rc, async |_| ()).await;

    // Submitted while the controller is down, from the same client.
    let during = rc
        .load_balanced_view()
        .map_async(&pow10, "pow10", vec![(0..20).map(Value::S64).collect()])
        .await;

    let values = result
        .get(None)
        .await
        .expect("every accepted task succeeds");
    assert_eq!(values.len(), n.len());
    for (x, value) in n.iter().zip(&values) {
        assert_eq!(value, &Some(Value::U64(cpu(*x))), "cpu({x})");
    }
    assert!(rc.reconnects() >= 1, "the client reconnected");
    assert!(
        rc.session() > first_session,
        "a reconnected client has a new session"
    );
    assert!(
        controller_pid(&cluster).is_some_and(|pid| pid != first_pid),
        "a new controller answered"
    );

    // The map of the outage: each task ran or was refused as not
    // accepted, saying why.
    if let Ok(mut during) = during {
        let mut x = 0i64;
        while let Some(outcome) = during.next().await {
            match outcome {
                Ok(value) => assert_eq!(value, Some(Value::S64(x.pow(10))), "pow10({x})"),
                Err(ClientError::Remote(err)) => {
                    assert_eq!(err.kind, ErrorKind::NotAccepted, "{err}");
                    assert!(err.message.contains("submit it again"), "{err}");
                }
                Err(other) => panic!("task {x} of the outage: {other}"),
            }
            x += 1;
        }
        assert_eq!(x, 20, "every task of the outage's map ended");
    }

    // The same client goes on working.
    let again = rc
        .load_balanced_view()
        .apply_sync(&pow10, "pow10", vec![Value::S64(2)])
        .await
        .expect("a task after the reconnect");
    assert_eq!(again, Some(Value::S64(1024)));
}

/// `view.map_async(cpu, n)`, submitted.
async fn cpu_map(
    view: &wasp_client::LoadBalancedView,
    cpu_task: &Module,
    n: &[u64],
) -> wasp_client::AsyncResult {
    view.map_async(
        cpu_task,
        "cpu",
        vec![n.iter().map(|&x| Value::U64(x)).collect()],
    )
    .await
    .expect("submitted")
}

/// Submits a 3,000-item map of `cpu` tasks, waits until every task is
/// accepted and a tenth of the results are in, then kills the controller
/// (`kill -9`) while the map still runs; the cluster's supervisor starts it
/// again. `also` runs once the map is accepted, before the kill. Returns
/// the items, the map's `AsyncResult` and what `also` returned.
async fn cpu_map_with_the_controller_killed<T>(
    cluster: &Cluster,
    rc: &Client,
    also: impl AsyncFnOnce(&Client) -> T,
) -> (Vec<u64>, wasp_client::AsyncResult, T) {
    let pid = controller_pid(cluster).expect("a controller");
    let cpu_task = module(tasks::CPU);
    let n: Vec<u64> = (0..3000u64).map(|i| 50_000 + i).collect();
    let mut result = cpu_map(&rc.load_balanced_view(), &cpu_task, &n).await;
    assert!(result.wait_accepted(None).await, "every task committed");
    let also = also(rc).await;
    let total = result.msg_ids().len();
    until("some results", async || result.progress() * 10 >= total).await;
    assert!(
        result.progress() < total,
        "the map was still running at the kill"
    );
    kill9(pid);
    (n, result, also)
}

/// The controller's pid, if one runs.
fn controller_pid(cluster: &Cluster) -> Option<u32> {
    role_pid(&cluster.profile(), "controller")
}

/// The session of a client: that of a task it submits.
async fn rc_session(rc: &Client) -> u32 {
    let pow10 = module(tasks::POW10);
    let result = rc
        .load_balanced_view()
        .apply_async(&pow10, "pow10", vec![Value::S64(1)])
        .await
        .expect("apply");
    result.msg_ids()[0].session()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_task_database_is_scoped_to_the_tenant() {
    // Two tenants, written before the controller first starts.
    let dir = tempfile::tempdir().expect("temp dir");
    let profile = dir.path().join("profile_default");
    std::fs::create_dir_all(&profile).expect("profile");
    let tenants = serde_json::json!({
        "tenants": [
            {"name": "alice", "token": "alice-token-0123456789", "admin": true},
            {"name": "bob", "token": "bob-token-0123456789", "admin": false}
        ],
        "engine_token": "engine-token-0123456789"
    });
    let path = profile.join("controller.json");
    std::fs::write(&path, tenants.to_string()).expect("tenants");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let cluster = Cluster::start_in(dir, 1);
    let alice = cluster.client().await;
    let pow10 = module(tasks::POW10);
    let mut result = alice
        .load_balanced_view()
        .map_async(&pow10, "pow10", vec![(0..5).map(Value::S64).collect()])
        .await
        .expect("map");
    result.wait(None).await;
    let ids = result.msg_ids().to_vec();

    // A second client of the same tenant sees them.
    let alice2 = cluster.client().await;
    let mut fetched = alice2.get_result(&ids).await.expect("same tenant");
    let values = fetched.get(None).await.expect("results");
    assert_eq!(values[3], Some(Value::S64(59_049)), "3^10");
    let records = alice2
        .db_query(Query {
            func: Some("pow10".into()),
            status: vec![Status::Succeeded],
            keys: vec!["status".into(), "result".into()],
            ..Query::default()
        })
        .await
        .expect("query");
    assert_eq!(records.len(), ids.len());
    assert!(
        records
            .iter()
            .all(|r| r.result.is_some() && r.func.is_none())
    );
    assert_eq!(
        alice2.result_status(&ids).await.expect("status"),
        vec![Some(Status::Succeeded); ids.len()]
    );

    // Bob's client, with Bob's token, finds none of them.
    let mut file = wasp_net::ConnectionFile::read(&cluster.client_file()).expect("file");
    file.token = "bob-token-0123456789".into();
    let bob = Client::connect_with(&file).await.expect("bob");
    let err = bob.get_result(&ids).await.expect_err("not bob's");
    assert!(matches!(err, ClientError::UnknownTasks(ref missing) if missing.len() == ids.len()));
    assert_eq!(
        bob.result_status(&ids).await.expect("status"),
        vec![None; ids.len()]
    );
    assert!(
        bob.db_query(Query::default())
            .await
            .expect("query")
            .is_empty()
    );
    assert_eq!(
        bob.purge_results(&ids).await.expect("purge"),
        0,
        "not bob's to purge"
    );
    assert_eq!(alice.purge_results(&ids[..2]).await.expect("purge"), 2);
    assert_eq!(
        alice.result_status(&ids[..3]).await.expect("status"),
        [None, None, Some(Status::Succeeded)]
    );
}

#[test]
fn the_cli_submits_without_waiting_then_fetches_lists_and_replays() {
    let cluster = Cluster::start(2);
    let out = wasp(
        &cluster.dir,
        &["apply", "--no-wait", tasks::POW10, "pow10", "7"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id: String = serde_json::from_slice(&out.stdout).expect("one JSON id");
    let out = wasp(&cluster.dir, &["result", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "282475249");

    // A map: one id per chunk; `wasp result` prints one line per item.
    let input = cluster.dir.path().join("xs.jsonl");
    std::fs::write(&input, "[1]\n[2]\n[3]\n[4]\n[5]\n").expect("input");
    let out = wasp(
        &cluster.dir,
        &[
            "map",
            tasks::POW10,
            "pow10",
            input.to_str().expect("utf-8"),
            "--chunksize",
            "2",
            "--no-wait",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON id"))
        .collect();
    assert_eq!(ids.len(), 3, "three chunks");
    let mut args = vec!["result"];
    args.extend(ids.iter().map(String::as_str));
    let out = wasp(&cluster.dir, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .collect::<Vec<_>>(),
        ["1", "1024", "59049", "1048576", "9765625"]
    );

    // A failure, listed by status.
    let out = wasp(
        &cluster.dir,
        &["apply", "--no-wait", tasks::EVIL, "fail", "boom"],
    );
    let failed: String = serde_json::from_slice(&out.stdout).expect("an id");
    let out = wasp(&cluster.dir, &["result", &failed]);
    assert!(!out.status.success(), "a failed task's result fails");
    assert!(String::from_utf8_lossy(&out.stderr).contains("boom"));
    let out = wasp(&cluster.dir, &["tasks", "--status", "failed", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], failed.as_str());
    assert_eq!(listed[0]["func"], "fail");
    let out = wasp(&cluster.dir, &["tasks", "--status", "nope"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected queued, running"));

    // Replay reruns a recorded task locally and compares.
    let out = wasp(&cluster.dir, &["replay", &ids[1]]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("replayed 2 item(s) locally: the results match the record"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = wasp(&cluster.dir, &["replay", &failed]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("failed again, as recorded"));

    // Abort and resubmit from the command line.
    let out = wasp(&cluster.dir, &["abort", &id]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{id} succeeded"),
        "a finished task stays as it is"
    );
    let out = wasp(&cluster.dir, &["resubmit", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "282475249");
}
