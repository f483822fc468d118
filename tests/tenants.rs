//! Issue 12, end to end: tenants on one cluster. Real controller and
//! engine processes, each tenant with its own connection file's token.

use wasp_client::{Client, Module};
use wasp_proto::Value;
use wasp_task_artifacts as tasks;

mod common;
use common::Cluster;

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
