//! Issue 12, end to end: tenants on one cluster. Real controller and
//! engine processes, each tenant with its own connection file's token.

use wasp_client::{Client, ClientError, Module, Query};
use wasp_proto::msg::{
    Answer, Arg, ClientMsg, Items, NamespaceOp, Request, RetryPolicy, Role, Submission, TaskLimits,
    TaskSpec, ToClient,
};
use wasp_proto::{TaskId, Value};
use wasp_task_artifacts as tasks;

mod common;
use common::{Cluster, wasp};
use serde_json::json;

/// A profile whose tenants file holds `tenants` (name, token, weight),
/// written before the controller first starts; the first is the admin.
fn profile_with(tenants: &[(&str, &str, u32)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let profile = dir.path().join("profile_default");
    std::fs::create_dir_all(&profile).expect("profile");
    let entries: Vec<_> = tenants
        .iter()
        .enumerate()
        .map(|(i, (name, token, weight))| {
            serde_json::json!({"name": name, "token": token, "weight": weight, "admin": i == 0})
        })
        .collect();
    let file = serde_json::json!({"tenants": entries, "engine_token": "engine-token-0123456789"});
    let path = profile.join("controller.json");
    std::fs::write(&path, file.to_string()).expect("tenants");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    dir
}

/// A client of the cluster with another tenant's token.
async fn client_as(cluster: &Cluster, token: &str) -> Client {
    let mut file = wasp_net::ConnectionFile::read(&cluster.client_file()).expect("file");
    file.token = token.into();
    Client::connect_with(&file).await.expect("connects")
}

/// Weighted fair share between tenants, on one engine that takes one task
/// at a time (ipyparallel's scheduler: hwm 1, no prefetch, no time
/// slicing, which would run bob's tasks beside alice's): a tenant that
/// submits behind another's backlog is not queued behind it, and while both
/// have work queued, engine time goes 1:3 by their weights. Order of the
/// tasks' start times, read off the engine's own clock; no durations.
#[tokio::test(flavor = "multi_thread")]
async fn tenants_share_the_engines_by_weight_not_by_arrival() {
    let dir = profile_with(&[
        ("alice", "alice-token-0123456789", 1),
        ("bob", "bob-token-0123456789", 3),
    ]);
    let cluster = Cluster::start_in_with(dir, 1, &["--prefetch", "0", "--time-slice", "off"]);
    let alice = client_as(&cluster, "alice-token-0123456789").await;
    let bob = client_as(&cluster, "bob-token-0123456789").await;
    let sleep = Module::from_file(tasks::SLEEP).expect("module");
    // Uploaded first, so that both maps are submitted back to back.
    alice.ensure_module(&sleep).await.expect("upload");
    bob.ensure_module(&sleep).await.expect("upload");
    let times = || vec![(0..60).map(|_| Value::F64(0.01)).collect()];
    let mut a = alice
        .load_balanced_view()
        .map_async(&sleep, "sleep-here", times())
        .await
        .expect("alice's map");
    let mut b = bob
        .load_balanced_view()
        .map_async(&sleep, "sleep-here", times())
        .await
        .expect("bob's map");
    a.get(None).await.expect("alice's results");
    b.get(None).await.expect("bob's results");

    // Every task, alice's (false) and bob's (true), in the order it started.
    let mut starts: Vec<(u64, bool)> = Vec::new();
    for (result, is_bob) in [(&a, false), (&b, true)] {
        for meta in result.metadata() {
            starts.push((meta.expect("finished").started_us, is_bob));
        }
    }
    starts.sort_unstable();
    let bob_first = starts
        .iter()
        .position(|(_, is_bob)| *is_bob)
        .expect("bob's tasks ran");
    // First come, first served would run all 60 of alice's first.
    assert!(
        bob_first <= 10,
        "{bob_first} of alice's tasks started before bob's first"
    );
    // From there, while both have work queued, bob gets 3 of every 4.
    let window = &starts[bob_first..bob_first + 40];
    let bobs = window.iter().filter(|(_, is_bob)| *is_bob).count();
    assert!(
        (27..=33).contains(&bobs),
        "bob (weight 3) had {bobs} of 40 dispatches against alice (weight 1); expected 30"
    );
}

/// Sends `msgs` on a raw client session and returns the first batch the
/// controller sends back.
async fn exchange(session: &mut wasp_net::Session, msgs: Vec<ClientMsg>) -> Vec<ToClient> {
    session.send.send(&msgs).await.expect("sent");
    tokio::time::timeout(std::time::Duration::from_secs(30), session.recv.recv())
        .await
        .expect("an answer in time")
        .expect("a frame")
        .expect("not closed")
}

/// Isolation: a second tenant that names the first's task ids, module
/// hash and namespace names gets "not found", never a byte of the first
/// tenant's data; a tenant's status shows its own work, not the others'.
#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_finds_nothing_of_another_tenants() {
    let dir = profile_with(&[
        ("alice", "alice-token-0123456789", 1),
        ("bob", "bob-token-0123456789", 1),
    ]);
    let cluster = Cluster::start_in_with(dir, 1, &["--prefetch", "0"]);
    let alice = client_as(&cluster, "alice-token-0123456789").await;
    let bob = client_as(&cluster, "bob-token-0123456789").await;
    let pow10 = Module::from_file(tasks::POW10).expect("module");
    let sleep = Module::from_file(tasks::SLEEP).expect("module");
    let engine = alice.ids().await.expect("ids")[0];

    // Alice's namespace, tasks and a backlog on the one engine.
    let secret = "alice-secret-value-7f3a";
    let alice_dv = alice.view(vec![engine]);
    alice_dv
        .push(vec![("secret".into(), Value::String(secret.into()))])
        .await
        .expect("push");
    let mut done = alice
        .load_balanced_view()
        .map_async(&pow10, "pow10", vec![(0..5).map(Value::S64).collect()])
        .await
        .expect("map");
    done.get(None).await.expect("results");
    let ids = done.msg_ids().to_vec();
    let backlog = alice
        .load_balanced_view()
        .map_async(
            &sleep,
            "sleep-here",
            vec![(0..20).map(|_| Value::F64(0.1)).collect()],
        )
        .await
        .expect("backlog");

    // Status: alice (the admin) sees her backlog; bob sees the engine, not
    // its load, and none of her counts.
    let seen = alice.status().await.expect("status");
    assert!(
        seen.queued + seen.running > 0 && seen.succeeded >= 5,
        "{seen:?}"
    );
    let status = bob.status().await.expect("status");
    assert_eq!(status.engines.len(), 1, "bob may target the engine");
    assert_eq!(status.engines[0].id, engine);
    assert_eq!(
        (
            status.queued,
            status.running,
            status.succeeded,
            status.failed
        ),
        (0, 0, 0, 0),
        "bob's status counts only bob's tasks: {status:?}"
    );
    assert_eq!(status.engines[0].outstanding, 0, "{status:?}");
    assert_eq!(status.engines[0].done, 0, "{status:?}");
    assert_eq!(status.records.committed, 0, "{status:?}");

    // Task ids and records.
    let err = bob.get_result(&ids).await.expect_err("not bob's");
    assert!(
        matches!(err, ClientError::UnknownTasks(ref missing) if missing.len() == ids.len()),
        "{err}"
    );
    assert_eq!(
        bob.result_status(&ids).await.expect("status"),
        vec![None; ids.len()]
    );
    assert_eq!(
        bob.abort(backlog.msg_ids()).await.expect("abort"),
        vec![None; 20]
    );
    let err = bob.resubmit(&ids).await.expect_err("not bob's");
    assert!(matches!(err, ClientError::UnknownTasks(_)), "{err}");
    assert!(
        bob.db_query(Query::default())
            .await
            .expect("query")
            .is_empty()
    );
    assert_eq!(bob.purge_results(&ids).await.expect("purge"), 0);

    // Namespaces: bob's pull of alice's name is "not found", without her
    // value; his own value of the same name is his alone.
    let bob_dv = bob.view(vec![engine]);
    let err = bob_dv.pull("secret").await.expect_err("not bob's");
    let text = err.to_string();
    assert!(text.contains("secret"), "{text}");
    assert!(
        !text.contains(secret),
        "bob's error shows alice's value: {text}"
    );
    bob_dv
        .push(vec![("secret".into(), Value::String("bob's".into()))])
        .await
        .expect("bob's push");
    assert_eq!(
        alice_dv.pull("secret").await.expect("alice's"),
        vec![Value::String(secret.into())]
    );
    assert_eq!(
        bob_dv.pull("secret").await.expect("bob's"),
        vec![Value::String("bob's".into())]
    );

    // Modules by hash, on the wire: bob's controller knows no module of
    // alice's hash, refuses a task or a namespace load that names it, and
    // says so without her module's bytes.
    let mut file = wasp_net::ConnectionFile::read(&cluster.client_file()).expect("file");
    file.token = "bob-token-0123456789".into();
    let mut raw = wasp_net::dial(&file, Role::Client).await.expect("bob, raw");
    let hash = sleep.hash;
    let known = exchange(
        &mut raw,
        vec![ClientMsg::Request {
            id: 1,
            request: Request::HasModules(vec![hash]),
        }],
    )
    .await;
    assert!(
        matches!(&known[..], [ToClient::Answer { id: 1, answer: Answer::ModulesKnown(k) }] if k == &[false]),
        "{known:?}"
    );
    let spec = TaskSpec {
        id: TaskId::new(raw.session, 0),
        module: hash,
        func: "sleep-here".into(),
        items: Items::encode(&[vec![Arg::Value(Value::F64(0.0))]]).expect("items"),
        targets: None,
        limits: TaskLimits::default(),
        retry: RetryPolicy::default(),
    };
    let submit = ClientMsg::Submit {
        submission: Submission::whole(std::slice::from_ref(&spec)),
        specs: vec![spec],
    };
    let refused = exchange(&mut raw, vec![submit]).await;
    let [ToClient::Results(results)] = &refused[..] else {
        panic!("{refused:?}")
    };
    let message = &results[0].outcome.as_ref().expect_err("refused").message;
    assert!(
        message.contains("is not uploaded for tenant bob"),
        "{message}"
    );
    let load = exchange(
        &mut raw,
        vec![ClientMsg::Request {
            id: 2,
            request: Request::Namespace {
                targets: vec![engine],
                op: NamespaceOp::Load(hash),
            },
        }],
    )
    .await;
    assert!(
        matches!(&load[..], [ToClient::Answer { id: 2, answer: Answer::Error(e) }]
            if e.contains("is not uploaded for tenant bob")),
        "{load:?}"
    );

    // Alice's tasks were untouched by all of it.
    let mut backlog = backlog;
    backlog.get(None).await.expect("alice's backlog ran");
}

/// `wasp tenant` on a running controller: a tenant added with its own
/// connection file works at once, as itself and not as an admin; its
/// weight changes; removing it revokes its token at once (its client is
/// disconnected, its unfinished tasks aborted, its records kept); and the
/// changes hold across a controller restart.
#[tokio::test(flavor = "multi_thread")]
async fn tenants_are_added_reweighed_and_revoked_on_a_running_controller() {
    let cluster = Cluster::start_with(1, &["--prefetch", "0"]);
    let ok = |out: &std::process::Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let added = wasp(&cluster.dir, &["tenant", "add", "bob", "--weight", "2"]);
    let file = std::path::PathBuf::from(ok(&added));
    assert_eq!(file, cluster.profile().join("security/client-bob.json"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).expect("file").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "bob's connection file is private");
    let bob_file = file.to_str().expect("utf-8 path");

    // Bob works at once, as bob.
    let out = wasp(
        &cluster.dir,
        &["apply", "--file", bob_file, tasks::POW10, "pow10", "3"],
    );
    assert_eq!(ok(&out), "59049");
    let list = ok(&wasp(&cluster.dir, &["tenant", "list", "--json"]));
    let tenants: Vec<serde_json::Value> = list
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let bob = tenants
        .iter()
        .find(|t| t["name"] == "bob")
        .expect("bob listed");
    assert_eq!(
        (&bob["weight"], &bob["admin"], &bob["succeeded"]),
        (&json!(2), &json!(false), &json!(1)),
        "{list}"
    );
    // Usage, from the records: what bob moved and stored.
    assert!(
        bob["argument_bytes"].as_u64() > Some(0)
            && bob["result_bytes"].as_u64() > Some(0)
            && bob["module_bytes"].as_u64() > Some(1000),
        "{list}"
    );
    assert_eq!(bob["since_start"]["succeeded"], json!(1), "{list}");
    assert_eq!(bob["namespace_bytes"], json!(0), "{list}");

    // What bob's namespace operations move counts too (a push, and the
    // pull of it), and purging bob's records does not erase bob's usage.
    {
        let bob = Client::connect_file(&file).await.expect("bob connects");
        let dv = bob.view(vec![wasp_proto::EngineId(0)]);
        let payload = Value::String("x".repeat(10_000));
        dv.push(vec![("big".into(), payload.clone())])
            .await
            .expect("push");
        assert_eq!(dv.pull("big").await.expect("pull"), vec![payload]);
        assert_eq!(bob.purge_results(&[]).await.expect("purge"), 1);
    }
    let list = ok(&wasp(&cluster.dir, &["tenant", "list", "--json"]));
    let bob_now = list
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json"))
        .find(|t| t["name"] == "bob")
        .expect("bob listed");
    assert!(
        bob_now["namespace_bytes"].as_u64() >= Some(20_000),
        "a push and a pull of 10 kB: {list}"
    );
    assert_eq!(
        (&bob_now["succeeded"], &bob_now["argument_bytes"]),
        (&bob["succeeded"], &bob["argument_bytes"]),
        "usage outlives the purged records: {list}"
    );
    let default = tenants
        .iter()
        .find(|t| t["name"] == "default")
        .expect("default");
    assert_eq!(default["admin"], json!(true), "{list}");

    // Bob's status is bob's.
    let status = ok(&wasp(
        &cluster.dir,
        &["cluster", "status", "--file", bob_file],
    ));
    assert!(
        status.contains("queued 0, running 0, succeeded 1, failed 0"),
        "{status}"
    );

    // Not an admin: bob may not manage tenants.
    for args in [
        vec!["tenant", "list", "--file", bob_file],
        vec!["tenant", "add", "eve", "--file", bob_file],
        vec!["tenant", "remove", "default", "--file", bob_file],
    ] {
        let out = wasp(&cluster.dir, &args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("tenant bob may not manage tenants"), "{err}");
    }
    ok(&wasp(
        &cluster.dir,
        &["tenant", "set", "bob", "--weight", "5"],
    ));
    let list = ok(&wasp(&cluster.dir, &["tenant", "list", "--json"]));
    let weight_of_bob = list
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json"))
        .find(|t| t["name"] == "bob")
        .map(|t| t["weight"].clone());
    assert_eq!(weight_of_bob, Some(json!(5)), "{list}");

    // Revocation, with bob's client connected and a backlog running.
    let bob = Client::connect_file(&file).await.expect("bob connects");
    let sleep = Module::from_file(tasks::SLEEP).expect("module");
    let mut backlog = bob
        .load_balanced_view()
        .map_async(
            &sleep,
            "sleep-here",
            vec![(0..20).map(|_| Value::F64(0.2)).collect()],
        )
        .await
        .expect("bob's backlog");
    assert!(backlog.wait_accepted(None).await, "accepted");
    let conn = wasp_net::ConnectionFile::read(&file).expect("bob's file");
    let removed = wasp(&cluster.dir, &["tenant", "remove", "bob"]);
    ok(&removed);
    assert!(!file.exists(), "bob's connection file is gone");
    // Bob's client hears why, and nothing of bob's runs on.
    let err = bob.status().await.expect_err("bob is disconnected");
    assert!(err.to_string().contains("tenant bob was removed"), "{err}");
    assert!(
        !backlog.wait(None).await,
        "bob's backlog does not finish for bob"
    );
    let Err(refused) = Client::connect_with(&conn).await else {
        panic!("bob's revoked token opened a connection");
    };
    assert!(refused.to_string().contains("invalid token"), "{refused}");
    // Every one of bob's unfinished tasks ends, aborted: the queued at
    // once, the running one when its engine's answer to the abort comes
    // back.
    let admin = Client::connect_file(&cluster.client_file())
        .await
        .expect("admin");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        let status = admin.status().await.expect("status");
        if (status.queued, status.running) == (0, 0) {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "bob's unfinished tasks were not aborted: {status:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(
        status.succeeded + status.failed,
        21,
        "bob's apply and backlog, each ended once: {status:?}"
    );
    // Its records are kept: 20 for the backlog (the apply's was purged).
    let db = rusqlite::Connection::open(cluster.profile().join("tasks.sqlite")).expect("db");
    let rows: i64 = db
        .query_row("SELECT COUNT(*) FROM tasks WHERE tenant = 'bob'", [], |r| {
            r.get(0)
        })
        .expect("count");
    assert_eq!(rows, 20);

    // The changes hold across a restart.
    let pid = common::role_pid(&cluster.profile(), "controller").expect("controller");
    common::kill9(pid);
    let mut listed = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        let out = wasp(&cluster.dir, &["tenant", "list", "--json"]);
        if out.status.success() && common::role_pid(&cluster.profile(), "controller") != Some(pid) {
            listed = String::from_utf8_lossy(&out.stdout).into_owned();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        listed.contains(r#""name":"default""#),
        "restarted: {listed}"
    );
    assert!(
        !listed.contains(r#""name":"bob""#),
        "bob stays removed: {listed}"
    );
}

/// The most of `intervals` (start, end) that overlap at one instant.
fn most_at_once(intervals: &[(u64, u64)]) -> usize {
    let mut edges: Vec<(u64, i32)> = intervals
        .iter()
        .flat_map(|&(start, end)| [(start, 1), (end, -1)])
        .collect();
    // An end before a start at the same instant: touching is not overlap.
    edges.sort_unstable();
    let (mut now, mut most) = (0i32, 0i32);
    for (_, step) in edges {
        now += step;
        most = most.max(now);
    }
    most as usize
}

fn intervals(result: &wasp_client::AsyncResult) -> Vec<(u64, u64)> {
    result
        .metadata()
        .into_iter()
        .map(|meta| {
            let meta = meta.expect("finished");
            (meta.started_us, meta.completed_us)
        })
        .collect()
}

/// Issue 12, item 2: each quota, set by `wasp tenant add` flags on a running
/// controller, is refused at submission with an error naming it and its
/// value, nothing of a refused submission is submitted (a 60-task map over
/// a 50-task queued quota leaves in three slices and none of them runs),
/// and the tenant beside is not affected.
#[tokio::test(flavor = "multi_thread")]
async fn quotas_are_refused_at_submission_naming_them() {
    let cluster = Cluster::start_with(2, &["--prefetch", "0"]);
    let sleep = Module::from_file(tasks::SLEEP).expect("module");
    let pow10 = Module::from_file(tasks::POW10).expect("module");
    let evil = Module::from_file(tasks::EVIL).expect("module");
    // Room for sleep and evil, not for pow10 as well.
    let module_quota = sleep.bytes().len() + evil.bytes().len() + pow10.bytes().len() / 2;
    let module_flag = module_quota.to_string();
    let out = wasp(
        &cluster.dir,
        &[
            "tenant",
            "add",
            "bob",
            "--max-running",
            "1",
            "--max-queued",
            "50",
            "--max-task-time",
            "2s",
            "--max-task-memory",
            "64MiB",
            "--max-namespace-bytes",
            "1KiB",
            "--max-module-bytes",
            &module_flag,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let list = wasp(&cluster.dir, &["tenant", "list", "--json"]);
    let list = String::from_utf8_lossy(&list.stdout).to_string();
    let listed: serde_json::Value = list
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json"))
        .find(|t| t["name"] == "bob")
        .expect("bob listed");
    assert_eq!(
        listed["quotas"],
        json!({"running": 1, "queued": 50, "module_bytes": module_quota,
               "namespace_bytes": 1024, "task_time_s": 2.0, "task_memory_bytes": 64 << 20}),
        "{list}"
    );
    let table = wasp(&cluster.dir, &["tenant", "list"]);
    let table = String::from_utf8_lossy(&table.stdout).to_string();
    assert!(table.contains("running=1,queued=50,"), "{table}");

    let bob = Client::connect_file(&file).await.expect("bob connects");
    let admin = cluster.client().await;
    let rows = || {
        let db = rusqlite::Connection::open(cluster.profile().join("tasks.sqlite")).expect("db");
        db.query_row("SELECT COUNT(*) FROM tasks WHERE tenant = 'bob'", [], |r| {
            r.get::<_, i64>(0)
        })
        .expect("count")
    };

    // Queued: 60 tasks over a quota of 50, refused whole.
    let zeros = |n: usize| vec![(0..n).map(|_| Value::F64(0.0)).collect::<Vec<_>>()];
    let mut over = bob
        .load_balanced_view()
        .map_async(&sleep, "sleep-here", zeros(60))
        .await
        .expect("sent");
    assert!(over.wait(None).await);
    let Err(ClientError::Remote(err)) = over.get(None).await else {
        panic!("the map over the quota was not refused")
    };
    assert_eq!(err.kind, wasp_proto::msg::ErrorKind::Quota, "{err}");
    assert!(
        err.message
            .contains("tenant bob's queued-task quota is 50 tasks")
            && err.message.contains("this submission adds 60"),
        "{err}"
    );
    assert!(
        over.metadata()
            .iter()
            .all(|m| m.is_some_and(|m| m.started_us == 0)),
        "no task of the refused map ran"
    );
    assert_eq!(rows(), 0, "nothing of the refused map was recorded");

    // Running: bob's 20 tasks never run two at once; the admin's tasks,
    // submitted after, run beside them on the engine bob may not take.
    let naps = |n: usize| vec![(0..n).map(|_| Value::F64(0.05)).collect::<Vec<_>>()];
    let mut bobs = bob
        .load_balanced_view()
        .map_async(&sleep, "sleep-here", naps(20))
        .await
        .expect("bob's map");
    let mut admins = admin
        .load_balanced_view()
        .map_async(&sleep, "sleep-here", naps(20))
        .await
        .expect("the admin's map");
    bobs.get(None).await.expect("bob's results");
    admins.get(None).await.expect("the admin's results");
    let (bob_runs, admin_runs) = (intervals(&bobs), intervals(&admins));
    assert_eq!(
        most_at_once(&bob_runs),
        1,
        "bob ran more than its quota of 1"
    );
    let beside = admin_runs
        .iter()
        .filter(|&&(start, end)| bob_runs.iter().any(|&(s, e)| start < e && s < end))
        .count();
    assert!(beside > 0, "the admin's tasks waited for bob's");

    // Ceilings: asking for more is refused; asking for nothing runs under
    // the ceiling.
    let long = bob
        .load_balanced_view()
        .with_timeout(std::time::Duration::from_secs(5))
        .apply_sync(&sleep, "sleep-here", vec![Value::F64(0.0)])
        .await
        .expect_err("over the time ceiling");
    assert!(
        long.to_string()
            .contains("above tenant bob's task time ceiling of 2 s (task_time = 2 s"),
        "{long}"
    );
    let big = bob
        .load_balanced_view()
        .with_memory(128 << 20)
        .apply_sync(&sleep, "sleep-here", vec![Value::F64(0.0)])
        .await
        .expect_err("over the memory ceiling");
    assert!(big.to_string().contains("task_memory = 64 MiB"), "{big}");
    let mut spin = bob
        .load_balanced_view()
        .apply_async(&evil, "spin", vec![])
        .await
        .expect("sent");
    let Err(ClientError::Remote(err)) = spin.get(None).await else {
        panic!("spin finished")
    };
    assert_eq!(err.kind, wasp_proto::msg::ErrorKind::Timeout, "{err}");
    let ran_under = spin.metadata()[0].map(|m| m.limits.timeout_us);
    assert_eq!(ran_under, Some(Some(2_000_000)), "it ran under the ceiling");

    // Namespace bytes per engine: bob's 2 KiB push is refused, the admin's
    // is not.
    let ids = bob.ids().await.expect("engine ids");
    let value = vec![("x".to_string(), Value::String("y".repeat(2048)))];
    let refused = bob
        .view(ids.clone())
        .push(value.clone())
        .await
        .expect_err("over bob's namespace quota");
    assert!(
        refused
            .to_string()
            .contains("over tenant bob's namespace quota (namespace_bytes = 1 KiB per engine"),
        "{refused}"
    );
    let dv = bob.view(ids.clone());
    let pulled = dv.pull("x").await;
    assert!(pulled.is_err(), "nothing of the refused push was kept");
    admin
        .view(ids.clone())
        .push(value)
        .await
        .expect("the admin's push");

    // Module storage: pow10 does not fit beside sleep and evil.
    let refused = bob
        .load_balanced_view()
        .apply_sync(&pow10, "pow10", vec![Value::S64(3)])
        .await
        .expect_err("over bob's module quota");
    assert!(
        refused.to_string().contains(&format!(
            "tenant bob's module storage quota (module_bytes = {module_quota} bytes"
        )),
        "{refused}"
    );
    let admins_pow10 = admin
        .load_balanced_view()
        .apply_sync(&pow10, "pow10", vec![Value::S64(3)])
        .await
        .expect("the admin's pow10");
    assert_eq!(admins_pow10, Some(Value::S64(59049)));

    // A change applies at once: with 100, the 60 tasks go.
    let out = wasp(
        &cluster.dir,
        &["tenant", "set", "bob", "--max-queued", "100"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let values = bob
        .load_balanced_view()
        .map(&sleep, "sleep-here", zeros(60))
        .await
        .expect("60 under 100");
    assert_eq!(values.len(), 60);
}

/// Time slicing (issue 12's noisy neighbour): with `--time-slice`, a
/// tenant's tasks run beside another tenant's task that holds the only
/// engine, instead of waiting for it to end. Alice's task spins until it
/// is aborted; bob's apply and map finish meanwhile, on the same engine.
#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_is_sliced_in_beside_another_tenants_long_task() {
    let dir = profile_with(&[
        ("alice", "alice-token-0123456789", 1),
        ("bob", "bob-token-0123456789", 1),
    ]);
    let cluster = Cluster::start_in_with(dir, 1, &["--prefetch", "0", "--time-slice", "on"]);
    let alice = client_as(&cluster, "alice-token-0123456789").await;
    let bob = client_as(&cluster, "bob-token-0123456789").await;
    let evil = Module::from_file(tasks::EVIL).expect("module");
    let pow10 = Module::from_file(tasks::POW10).expect("module");
    let mut spinning = alice
        .load_balanced_view()
        .with_timeout(std::time::Duration::from_secs(600))
        .apply_async(&evil, "spin", vec![])
        .await
        .expect("alice's task");
    assert!(spinning.wait_accepted(None).await, "accepted");
    // Wait until it runs (the engine is then busy).
    while alice.status().await.expect("status").running == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let lview = bob.load_balanced_view();
    let value = lview
        .apply_sync(&pow10, "pow10", vec![Value::S64(3)])
        .await
        .expect("bob's apply, beside alice's task");
    assert_eq!(value, Some(Value::S64(59049)));
    let mut map = lview
        .map_async(&pow10, "pow10", vec![(0..5).map(Value::S64).collect()])
        .await
        .expect("bob's map");
    let results = map.get(None).await.expect("bob's map, beside alice's task");
    assert_eq!(results.len(), 5);
    assert!(!spinning.ready(), "alice's task still spins");
    for meta in map.metadata() {
        assert_eq!(
            meta.expect("finished").engine,
            Some(wasp_proto::EngineId(0))
        );
    }
    spinning.abort().await.expect("abort");
    let err = spinning.get(None).await.expect_err("aborted");
    assert!(err.to_string().contains("abort"), "{err}");
}
