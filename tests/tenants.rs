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
/// at a time (ipyparallel's scheduler: hwm 1, no prefetch): a tenant that
/// submits behind another's backlog is not queued behind it, and while both
/// have work queued, engine time goes 1:3 by their weights. Order of the
/// tasks' start times, read off the engine's own clock; no durations.
#[tokio::test(flavor = "multi_thread")]
async fn tenants_share_the_engines_by_weight_not_by_arrival() {
    let dir = profile_with(&[
        ("alice", "alice-token-0123456789", 1),
        ("bob", "bob-token-0123456789", 3),
    ]);
    let cluster = Cluster::start_in_with(dir, 1, &["--prefetch", "0"]);
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
    let status = Client::connect_file(&cluster.client_file())
        .await
        .expect("admin")
        .status()
        .await
        .expect("status");
    assert_eq!(
        (status.queued, status.running),
        (0, 0),
        "bob's unfinished tasks were aborted"
    );
    // Its records are kept: one row for the apply, 20 for the backlog.
    let db = rusqlite::Connection::open(cluster.profile().join("tasks.sqlite")).expect("db");
    let rows: i64 = db
        .query_row("SELECT COUNT(*) FROM tasks WHERE tenant = 'bob'", [], |r| {
            r.get(0)
        })
        .expect("count");
    assert_eq!(rows, 21);

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
